"""Pre-norm transformer blocks with proper key-padding masks.

Shapes: b batch, n tokens, d width, h heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None,
              dropout: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over (b, h, n, d) tensors; `key_mask` (b, n_k) is True where a key is real
    (or a full boolean mask broadcastable to (b, h, n_q, n_k), e.g. for causal attention).

    On CUDA this is PyTorch's fused SDPA. On CPU, for our short sequences (<= 65 tokens), the fused
    kernel's backward is ~5x slower than three plain bf16 matmuls (measured: 30 ms vs 6 ms for
    b=64, h=3, n=65, d=64), so the CPU path spells the maths out."""
    mask = key_mask[:, None, None, :] if key_mask is not None and key_mask.ndim == 2 else key_mask  # (b, 1, 1, n_k)
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (b, h, n_q, n_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1).to(v.dtype)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, *, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (b, h, n, d/h)
        out = attention(q, k, v, key_mask, dropout=self.dropout if self.training else 0.0)  # (b, h, n, d/h)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Sequential):
    def __init__(self, *, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class Block(nn.Module):
    """x + attn(norm(x)); x + mlp(norm(x))."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim=dim, heads=heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim=dim, hidden=int(dim * mlp_ratio), dropout=dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """ViT-style init: truncated-normal linears, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over tokens that the mask keeps (b, n, d) -> (b, d); padding never counts."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)  # (b, n, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
