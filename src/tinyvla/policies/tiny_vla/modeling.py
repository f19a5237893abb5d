"""TinyVLA: image -> ViT tokens; instruction -> transformer tokens; fuse by pooling + add; MLP head.

Shapes: b batch, n = 1 + patches vision tokens, l text tokens, d width, t chunk, a action dim.
"""

from __future__ import annotations

import torch

from tinyvla.modules.fusion import InstructionPoolAddFusion, MLPHead, PoolAddFusion
from tinyvla.modules.text import TextEncoder
from tinyvla.modules.vit import ViT
from tinyvla.policies.base import Policy
from tinyvla.policies.registry import register_policy
from tinyvla.policies.tiny_vla.configuration import TinyVLAConfig
from tinyvla.tokenizer import InstructionTokenizer


@register_policy("tinyvla")
class TinyVLAPolicy(Policy):
    config_class = TinyVLAConfig
    presets = {
        "tiny": {},
        # The seed's fusion exactly: ViT CLS token projected and added to the mean-pooled language.
        "seed": {"policy.fusion": "pool_add", "policy.vision_pool": "cls"},
    }

    def __init__(self, config: TinyVLAConfig, *, tokenizer: InstructionTokenizer, stats: dict):
        super().__init__(config, tokenizer=tokenizer, stats=stats)
        config.vocab_size = config.vocab_size or tokenizer.vocab_size
        if config.vocab_size < tokenizer.vocab_size:
            raise ValueError(f"vocab_size {config.vocab_size} < tokenizer's {tokenizer.vocab_size}")
        c = config
        self.vision = ViT(
            image_size=c.image_size, patch_size=c.patch_size, dim=c.vision_width, depth=c.vision_layers,
            heads=c.vision_heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout, pos_init=c.vision_pos_init,
        )
        self.language = TextEncoder(
            vocab_size=c.vocab_size, context_length=c.context_length, dim=c.lang_width, depth=c.lang_layers,
            heads=c.lang_heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout,
        )
        if c.fusion == "pool_add":
            self.fusion = PoolAddFusion(vision_dim=c.vision_width, lang_dim=c.lang_width, vision_pool=c.vision_pool)
        else:
            self.fusion = InstructionPoolAddFusion(vision_dim=c.vision_width, lang_dim=c.lang_width, heads=c.pool_heads)
        self.head = MLPHead(
            dim=c.lang_width, hidden=c.head_hidden, depth=c.head_layers, chunk_size=c.chunk_size, action_dim=c.action_dim
        )

    def parameter_counts(self) -> dict[str, int]:
        backbone = sum(p.numel() for m in (self.vision, self.language) for p in m.parameters())
        return {"backbone": backbone, "policy": self.num_parameters() - backbone}

    def predict_normalized(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vision = self.vision(images)  # (b, n, dv)
        text = self.language(tokens, mask)  # (b, l, d)
        return self.head(self.fusion(vision, text, mask))  # (b, t, a)
