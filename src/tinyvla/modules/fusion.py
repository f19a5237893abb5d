"""Vision-language fusion (pooling + add, cross-attention) and action heads.

Shapes: b batch, n vision tokens, l text tokens, d width, h heads.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.modules.transformer import FeedForward, attention, masked_mean


class PoolAddFusion(nn.Module):
    """The seed's fusion: pool vision (CLS token or mean), project to the language width, add the
    masked-mean language features. Vision is summarised before it knows what was asked."""

    def __init__(self, *, vision_dim: int, lang_dim: int, vision_pool: str = "cls"):
        super().__init__()
        self.vision_pool = vision_pool
        self.proj = nn.Linear(vision_dim, lang_dim)

    def forward(self, vision: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        v = vision[:, 0] if self.vision_pool == "cls" else vision[:, 1:].mean(dim=1)  # (b, dv)
        return self.proj(v) + masked_mean(text, text_mask)  # (b, d)


class InstructionPoolAddFusion(nn.Module):
    """Pooling conditioned on the instruction, then add: the pooled instruction is the query of a
    multi-head attention *pool* over the vision tokens (a weighted mean, no token mixing), so the
    vision summary keeps the block that was named. Still pooling + add, as in the seed."""

    def __init__(self, *, vision_dim: int, lang_dim: int, heads: int):
        super().__init__()
        if vision_dim % heads:
            raise ValueError(f"vision width {vision_dim} is not divisible by {heads} pooling heads")
        self.heads = heads
        self.query = nn.Linear(lang_dim, vision_dim)
        self.key = nn.Linear(vision_dim, vision_dim)
        self.value = nn.Linear(vision_dim, vision_dim)
        self.proj = nn.Linear(vision_dim, lang_dim)

    def forward(self, vision: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        b, n, dv = vision.shape
        h = self.heads
        lang = masked_mean(text, text_mask)  # (b, d)
        q = self.query(lang).view(b, h, 1, dv // h)  # (b, h, 1, dv/h)
        k = self.key(vision).view(b, n, h, dv // h).transpose(1, 2)  # (b, h, n, dv/h)
        v = self.value(vision).view(b, n, h, dv // h).transpose(1, 2)
        pooled = attention(q, k, v)  # (b, h, 1, dv/h)
        return self.proj(pooled.reshape(b, dv)) + lang  # (b, d)


class CrossAttentionBlock(nn.Module):
    """x + cross_attn(norm(x), norm(memory)); x + mlp(norm(x)). Queries from x, keys/values from memory."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = FeedForward(dim=dim, hidden=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape
        n, h = memory.shape[1], self.heads
        q = self.q(self.norm_q(x)).view(b, l, h, d // h).transpose(1, 2)  # (b, h, l, d/h)
        k, v = self.kv(self.norm_kv(memory)).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 x (b, h, n, d/h)
        x = x + self.proj(attention(q, k, v).transpose(1, 2).reshape(b, l, d))
        return x + self.mlp(self.norm_mlp(x))


class CrossAttentionFusion(nn.Module):
    """SmolVLA/OpenVLA-style fusion: every instruction token queries the vision tokens (projected to the
    language width) in `depth` cross-attention blocks; the result is mean-pooled over real tokens."""

    def __init__(self, *, vision_dim: int, lang_dim: int, heads: int, depth: int = 1, mlp_ratio: float = 4.0):
        super().__init__()
        if lang_dim % heads:
            raise ValueError(f"language width {lang_dim} is not divisible by {heads} cross-attention heads")
        self.memory_proj = nn.Linear(vision_dim, lang_dim)
        self.blocks = nn.ModuleList(CrossAttentionBlock(dim=lang_dim, heads=heads, mlp_ratio=mlp_ratio) for _ in range(depth))

    def forward(self, vision: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        memory = self.memory_proj(vision)  # (b, n, d)
        x = text
        for block in self.blocks:
            x = block(x, memory)  # (b, l, d)
        return masked_mean(x, text_mask)  # (b, d)


class MLPHead(nn.Module):
    """`depth` linear layers with GELU between them: features (b, d) -> actions (b, t, a)."""

    def __init__(self, *, dim: int, hidden: int, depth: int, chunk_size: int, action_dim: int, bins: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, chunk_size * action_dim * bins))
        self.net = nn.Sequential(*layers)
        self.chunk_size, self.action_dim, self.bins = chunk_size, action_dim, bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """-> (b, t, a) continuous actions, or (b, t, a, bins) logits when bins > 1."""
        shape = (x.shape[0], self.chunk_size, self.action_dim) + ((self.bins,) if self.bins > 1 else ())
        return self.net(x).view(shape)
