"""Vision-language fusion by pooling + add.

Shapes: b batch, n vision tokens, l text tokens, d width, h heads.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.modules.transformer import attention, masked_mean


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


class MLPHead(nn.Module):
    """`depth` linear layers with GELU between them: features (b, d) -> actions (b, t, a)."""

    def __init__(self, *, dim: int, hidden: int, depth: int, chunk_size: int, action_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, chunk_size * action_dim))
        self.net = nn.Sequential(*layers)
        self.chunk_size, self.action_dim = chunk_size, action_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0], self.chunk_size, self.action_dim)
