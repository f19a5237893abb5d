"""A shallow ConvNet image encoder for small robot datasets, with optional FiLM on the instruction.

At 50-100 demos per task a few conv layers trained from scratch with random-shift augmentation see
as well as large pretrained encoders (Hansen et al. 2022, arXiv 2212.05749); FiLM (Perez et al. 2018)
lets the instruction modulate every layer, so the features already attend to the object that was
named (as in BAKU / RT-1). Output tokens match the ViT's, so every fusion and the VLA-Adapter bridge
take it unchanged: token 0 is a spatial-softmax summary (per channel the expected x, y of its
activation: object positions, what Meta-World's tasks need), tokens 1.. are the feature-map cells.

Shapes: b batch, c channels, H/W image size, h/w feature-map size, n = h*w cells, d width.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.modules.vit import sincos_2d

STRIDES = (2, 2, 2, 1)  # 96 px -> 12x12 cells, 64 px -> 8x8


def conv_grid(image_size: int, strides: tuple[int, ...] = STRIDES) -> int:
    """Feature-map side for 3x3 convs with padding 1."""
    g = image_size
    for s in strides:
        g = (g - 1) // s + 1
    return g


def token_grid_side(image_size: int, token_grid: int = 0, strides: tuple[int, ...] = STRIDES) -> int:
    """Side of the cell-token grid: the feature map's, or `token_grid` when that pools it smaller."""
    side = conv_grid(image_size, strides)
    return min(token_grid, side) if token_grid else side


def check_conv(image_size: int, channels: list[int]) -> None:
    """ValueError unless the encoder can be built for these settings (what the policy configs validate)."""
    if len(channels) != len(STRIDES) or min(channels) < 1:
        raise ValueError(f"conv_channels needs {len(STRIDES)} positive widths, got {channels}")
    if conv_grid(image_size) < 2:
        raise ValueError(f"image_size {image_size} is too small for the conv encoder (>= 16 px)")


class FiLMConvBlock(nn.Module):
    """conv 3x3 -> GroupNorm -> FiLM (1 + gamma, beta from the condition) -> GELU."""

    def __init__(self, c_in: int, c_out: int, stride: int, cond_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(min(8, c_out), c_out)
        self.film = nn.Linear(cond_dim, 2 * c_out) if cond_dim else None
        if self.film is not None:  # start as the identity: FiLM learns to modulate, not to destroy
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.film is not None:
            gamma, beta = self.film(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # (b, c, 1, 1) each
            x = x * (1 + gamma) + beta
        return nn.functional.gelu(x)


class SpatialSoftmax(nn.Module):
    """(b, c, h, w) -> (b, 2c): per channel the softmax-weighted mean x and y in [-1, 1] (Levine et al. 2016)."""

    def __init__(self, h: int, w: int, temperature: float = 1.0):
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], 1), persistent=False)  # (n, 2)
        self.log_temperature = nn.Parameter(torch.tensor(float(temperature)).log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        attn = (x.flatten(2) / self.log_temperature.exp()).softmax(dim=-1)  # (b, c, n)
        return (attn @ self.grid.to(attn.dtype)).reshape(b, 2 * c)


class ConvEncoder(nn.Module):
    def __init__(self, *, image_size: int, dim: int, channels: tuple[int, ...] = (32, 64, 128, 128),
                 cond_dim: int = 0, strides: tuple[int, ...] = STRIDES, token_grid: int = 0):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"{len(channels)} conv channel widths for {len(strides)} layers")
        self.map_grid = conv_grid(image_size, strides)
        if self.map_grid < 2:
            raise ValueError(f"image size {image_size} is too small for the conv encoder (>= 16 px)")
        # Cell tokens average-pooled to token_grid x token_grid (0 = one per cell): a transformer that reads
        # the tokens (VLA-Adapter's backbone) costs ~ tokens^2; the keypoints still see the full map.
        self.grid = token_grid_side(image_size, token_grid, strides)
        self.cond_dim = cond_dim
        widths = (3, *channels)
        self.blocks = nn.ModuleList(FiLMConvBlock(widths[i], widths[i + 1], s, cond_dim) for i, s in enumerate(strides))
        c = channels[-1]
        self.keypoints = SpatialSoftmax(self.map_grid, self.map_grid)
        self.summary = nn.Sequential(nn.Linear(2 * c, dim), nn.GELU(), nn.Linear(dim, dim))
        self.cell_proj = nn.Linear(c, dim)
        self.register_buffer("pos", sincos_2d(self.grid, dim) * 0.1, persistent=False)  # (n, d): where each cell is
        self.norm = nn.LayerNorm(dim)

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid + 1

    def forward(self, images: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """(b, 3, H, W) in [0, 1], condition (b, cond_dim) or None -> (b, 1 + n, d); token 0 is the summary."""
        if self.cond_dim and cond is None:
            raise ValueError("this conv encoder is FiLM-conditioned: pass the instruction embedding")
        x = images * 2.0 - 1.0
        for block in self.blocks:
            x = block(x, cond)  # (b, c, h, w)
        summary = self.summary(self.keypoints(x)).unsqueeze(1)  # (b, 1, d)
        if self.grid != self.map_grid:
            x = nn.functional.adaptive_avg_pool2d(x, self.grid)
        cells = self.cell_proj(x.flatten(2).transpose(1, 2)) + self.pos.to(x.dtype)  # (b, n, d)
        return self.norm(torch.cat([summary, cells], dim=1))


__all__ = ["ConvEncoder", "SpatialSoftmax", "check_conv", "conv_grid", "token_grid_side"]
