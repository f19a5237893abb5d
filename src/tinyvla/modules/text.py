"""A small transformer encoder over instruction tokens, padding masked everywhere.

Shapes: b batch, l tokens, d width.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.modules.transformer import Block, init_weights


class TextEncoder(nn.Module):
    def __init__(
        self, *, vocab_size: int, context_length: int, dim: int, depth: int, heads: int,
        mlp_ratio: float = 4.0, dropout: float = 0.0,
    ):
        super().__init__()
        self.context_length = context_length
        self.token_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, context_length, dim))
        self.blocks = nn.ModuleList(Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        init_weights(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(b, l) ids + (b, l) bool mask -> (b, l, d). l may be shorter than the context."""
        l = tokens.shape[1]
        x = self.token_embed(tokens) + self.pos_embed[:, :l]
        for block in self.blocks:
            x = block(x, key_mask=mask)
        return self.norm(x)
