"""A small Vision Transformer: patchify, CLS token, learned positions, pre-norm blocks.

Shapes: b batch, c channels, H/W image size, n = (H/p)*(W/p) patch tokens, d width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tinyvla.modules.transformer import Block, init_weights


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """2D sin-cos table (grid*grid, dim): a good *starting point* for learned positions, so that
    patch coordinates are linearly readable from step 0 (the toy task regresses positions)."""
    if dim % 4:
        raise ValueError(f"width {dim} must be divisible by 4 for 2D sin-cos positions")
    quarter = dim // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    coords = torch.arange(grid, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    out = []
    for c in (xx.flatten(), yy.flatten()):
        angles = c[:, None] * omega[None, :] * (math.pi / grid)
        out += [angles.sin(), angles.cos()]
    return torch.cat(out, dim=1)


class ViT(nn.Module):
    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        pos_init: str = "sincos",
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
        self.grid = image_size // patch_size
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, dim))
        self.blocks = nn.ModuleList(Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        init_weights(self)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if pos_init == "sincos":
            with torch.no_grad():
                self.pos_embed[0, 1:] = sincos_2d(self.grid, dim)
        else:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid + 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) in [0, 1] -> (b, 1 + n, d); token 0 is CLS."""
        x = self.patch_embed(images * 2.0 - 1.0).flatten(2).transpose(1, 2)  # (b, n, d)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
