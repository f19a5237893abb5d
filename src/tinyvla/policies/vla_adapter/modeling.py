"""VLA-Adapter (arXiv 2509.09372): a VLM backbone with learnable ActionQuery tokens, and a policy whose
Bridge Attention reads every layer's Raw (vision) and ActionQuery features.

Shapes: b batch, p vision tokens, l instruction tokens, q ActionQuery tokens, L backbone layers,
d width, t chunk, a action dim, s state dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tinyvla.errors import ConfigError
from tinyvla.modules.conv import ConvEncoder, token_grid_side
from tinyvla.modules.towers import FROZEN_EFFICIENTNET, freeze
from tinyvla.modules.transformer import init_weights, masked_mean
from tinyvla.modules.vit import ViT
from tinyvla.policies.base import Policy
from tinyvla.policies.registry import register_policy
from tinyvla.policies.vla_adapter.backbone import HFBackbone, ScratchBackbone
from tinyvla.policies.vla_adapter.bridge import BridgePolicy
from tinyvla.policies.vla_adapter.configuration import QWEN25_05B_SHAPE, VLAAdapterConfig
from tinyvla.tokenizer import InstructionTokenizer

PAPER_POLICY_PARAMS = 97.3e6  # the paper's policy size with Qwen2.5-0.5B


class Projector(nn.Sequential):
    """Vision features -> backbone width: 3 linear layers with GELU (the paper's projector).

    `norm=False` (default): He-initialised linears, so image tokens enter the LM at the ViT's unit scale
    and differences between images pass through at full size. `norm=True` (checkpoints written before
    this option): small-init linears + a LayerNorm with gain = the token embeddings' RMS. Measured on the
    toy task, that variant collapses: the pre-LayerNorm content is ~1e-2 and Adam's bias updates soon
    outweigh it, so every image token becomes the same vector (spread 0.41 -> 0.002) and the policy
    never leaves the instruction-only error."""

    def __init__(self, in_dim: int, out_dim: int, embed_rms: float = 1.0, norm: bool = False):
        layers = [nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim), nn.GELU(),
                  nn.Linear(out_dim, out_dim)]
        super().__init__(*layers, *([nn.LayerNorm(out_dim)] if norm else []))
        init_weights(self)
        if norm:
            nn.init.constant_(self[-1].weight, embed_rms)
            return
        for m in layers:
            if isinstance(m, nn.Linear):  # He for GELU; the last linear has no GELU after it
                gain = 2.0 if m is not layers[-1] else 1.0
                nn.init.normal_(m.weight, std=(gain / m.in_features) ** 0.5)


def vocab_rows(backbone: nn.Module) -> int:
    return backbone.model.get_input_embeddings().num_embeddings if isinstance(backbone, HFBackbone) \
        else backbone.embed_tokens.num_embeddings


@register_policy("vla_adapter")
class VLAAdapterPolicy(Policy):
    config_class = VLAAdapterConfig
    presets = {
        # CPU-sized: scratch backbone 128x4 (4 policy blocks), ViT 96x2 at 64 px, 16 ActionQuery tokens, and
        # a 6,000-step recipe: what reached TinyVLA's quality on the toy task on one CPU core (docs/vla-adapter.md). At
        # 256x4 / ViT 192x4 the model stayed at the instruction-only error within the CPU budgets tried.
        # The gate on AQ, not Raw: with a from-scratch backbone a tanh(g) gate at 0 on Raw never opens, and
        # open AQ features (which carry the instruction long before the image) hold the policy at the
        # instruction-only error; starting with AQ closed makes it read Raw (toy task, 3 of 3 seeds; docs/vla-adapter.md).
        "tiny": {"policy.width": 128, "policy.heads": 4, "policy.vision_width": 96, "policy.vision_layers": 2,
                 "policy.vision_heads": 2, "policy.num_queries": 16, "policy.gate": "aq",
                 "train.steps": 6000, "train.eval_every": 400},
        # Robot data (Meta-World): the tiny backbone, the FiLM ConvNet as vision encoder, the paper's gate on
        # Raw (on MT10 the gate on AQ trails it; docs/vla-adapter.md), chunks of 8. Data: `--image-size 96 --camera-pos close`.
        # Cells pooled to 6x6 image tokens: the backbone's cost grows with the square of the sequence length.
        "metaworld": {"policy.width": 128, "policy.heads": 4, "policy.vision_encoder": "conv", "policy.film": True,
                      "policy.vision_width": 128, "policy.conv_token_grid": 6, "policy.num_queries": 16,
                      "policy.gate": "raw",
                      "policy.chunk_size": 8, "policy.n_action_steps": 4},
        # The Meta-World <= 10M class (TinyVLA's `pretrained_vision`): the packaged EfficientNet-Lite0, frozen
        # (features cached), its 3x3 cells at 96 px as image tokens into the `metaworld` preset's scratch
        # 128x4 backbone; the paper's gate on Raw, chunks of 8. 4.9M parameters, 3.4M of them frozen.
        "pretrained_vision": {**FROZEN_EFFICIENTNET, "policy.width": 128, "policy.heads": 4, "policy.num_queries": 16,
                              "policy.gate": "raw", "policy.chunk_size": 8, "policy.n_action_steps": 4},
        # The paper's design on real pretrained parts that ship in pip packages (offline; pip install
        # 'tinyvla[pretrained]'): MiniLM-L6 (a 6-layer BERT encoder, bidirectional like the reference code)
        # reads [BOS, EfficientNet-Lite0 image tokens via the projector, instruction, ActionQuery], LoRA on
        # its linear layers (as the paper, scaled to width 384); the vision tower frozen (features cached).
        "pretrained": {**FROZEN_EFFICIENTNET, "policy.language_tower": "minilm-l6", "policy.num_queries": 16,
                       "policy.policy_heads": 8,
                       "lora.rank": 16, "lora.alpha": 32, "lora.scope": "backbone",
                       "lora.targets": ["query", "key", "value", "dense"],
                       "lora.trainable": ["projector", "action_queries", "policy", "bos"],
                       "train.steps": 3000, "train.lr": 5e-4, "train.eval_every": 250},
        # The paper's shape: Qwen2.5-0.5B (random weights unless --policy.backbone_path points at a local
        # copy), 64 queries, 8 policy heads, chunk 8 of 7-D actions, 224 px image with 256 patches.
        "paper": {"policy.backbone": "hf", "policy.backbone_config": QWEN25_05B_SHAPE, "policy.num_queries": 64,
                  "policy.image_size": 224, "policy.patch_size": 14, "policy.vision_width": 384,
                  "policy.vision_layers": 6, "policy.vision_heads": 6, "policy.chunk_size": 8,
                  "policy.n_action_steps": 8, "policy.action_dim": 7, "policy.state_dim": 8,
                  "lora.targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                  "lora.scope": "backbone", "lora.rank": 64, "lora.alpha": 128,
                  "lora.trainable": ["vision", "projector", "action_queries", "policy", "bos"]},
    }

    def __init__(self, config: VLAAdapterConfig, *, tokenizer: InstructionTokenizer, stats: dict,
                 load_pretrained: bool = True):
        super().__init__(config, tokenizer=tokenizer, stats=stats)
        c = config
        # ---- backbone ----
        if c.backbone == "hf":
            from tinyvla.modules.pretrained import config_dict, is_encoder, language_model, load_causal_lm
            from tinyvla.modules.towers import language_dir

            if c.language_tower and load_pretrained:  # a decoder LM or a BERT-style encoder
                model = language_model(path=language_dir(c.language_tower))
            elif c.backbone_path and load_pretrained:
                model = load_causal_lm(path=c.backbone_path)
            elif c.backbone_config:
                model = language_model(config=c.backbone_config)
            else:
                raise ConfigError("policy.backbone hf needs policy.backbone_path (a local model directory)")
            c.backbone_config = config_dict(model)
            self.backbone = HFBackbone(model)
            if c.causal and is_encoder(model):
                raise ConfigError(f"the {model.config.model_type} backbone is a bidirectional encoder: "
                                  "policy.causal must be false")
            vocab = model.get_input_embeddings().num_embeddings
            if tokenizer.vocab_size > vocab:
                raise ConfigError(f"the instruction tokenizer has {tokenizer.vocab_size} ids, the backbone's "
                                  f"embedding {vocab}")
        else:
            c.vocab_size = c.vocab_size or tokenizer.vocab_size
            if c.vocab_size < tokenizer.vocab_size:
                raise ConfigError(f"vocab_size {c.vocab_size} < tokenizer's {tokenizer.vocab_size}")
            self.backbone = ScratchBackbone(vocab_size=c.vocab_size, width=c.width, layers=c.layers, heads=c.heads,
                                            mlp_ratio=c.mlp_ratio, max_len=self._max_len())
        width, layers = self.backbone.width, self.backbone.num_layers
        if c.policy_width and c.policy_width != width:
            raise ConfigError(f"policy.policy_width {c.policy_width} does not match the backbone's hidden size "
                              f"{width}: Bridge Attention reads backbone features at the backbone's width")
        if c.policy_width == 0:
            c.policy_width = width
        if c.condition_layer >= layers:
            raise ConfigError(f"policy.condition_layer {c.condition_layer} is out of range: the backbone has "
                              f"{layers} layers (0..{layers - 1})")
        # ---- vision ----
        if c.vision_tower or c.vision_path or c.vision_config:
            from tinyvla.modules.towers import build_vision_tower

            self.vision, c.vision_config = build_vision_tower(c.vision_tower or c.vision_path, c.vision_config,
                                                              load_pretrained, size=c.tower_image_size)
            vision_width = self.vision.width
        elif c.vision_encoder == "conv":
            self.vision = ConvEncoder(image_size=c.image_size, dim=c.vision_width, channels=tuple(c.conv_channels),
                                      cond_dim=width if c.film else 0, token_grid=c.conv_token_grid)
            vision_width = c.vision_width
        else:
            self.vision = ViT(image_size=c.image_size, patch_size=c.patch_size, dim=c.vision_width,
                              depth=c.vision_layers, heads=c.vision_heads, mlp_ratio=c.mlp_ratio)
            vision_width = c.vision_width
        if c.projector == "mlp_ln":  # the old projector's LayerNorm gain: the token embeddings' RMS
            with torch.no_grad():
                rows = torch.arange(min(1024, vocab_rows(self.backbone)))
                embed_rms = self.backbone.embed(rows).pow(2).mean().sqrt().item()
            self.projector = Projector(vision_width, width, embed_rms, norm=True)
        else:
            self.projector = Projector(vision_width, width)
        self.bos = nn.Parameter(torch.zeros(1, 1, width))
        nn.init.trunc_normal_(self.bos, std=0.02)
        self.action_queries = nn.Embedding(max(c.num_queries, 1), width)
        nn.init.zeros_(self.action_queries.weight)  # zero-initialised, as in the paper
        # ---- policy ----
        sources = ["self"]
        if c.conditions in ("aq", "both") or c.state_dim:
            sources.append("aq")
        if c.conditions in ("raw", "both"):
            sources.append("raw")
        gated = {"raw": ("raw",), "aq": ("aq",), "both": ("raw", "aq"), "none": ()}[c.gate]
        self.policy = BridgePolicy(dim=width, heads=c.policy_heads, blocks=layers, chunk=c.chunk_size,
                                   action_dim=c.action_dim, state_dim=c.state_dim, sources=tuple(sources),
                                   gated=tuple(g for g in gated if g in sources), softmax=c.bridge_softmax,
                                   separate_kv=c.separate_kv, ffn=c.ffn, gate_proprio=c.gate_proprio)
        for module, frozen in ((self.backbone, c.freeze_backbone), (self.vision, c.freeze_vision)):
            if frozen:
                freeze(module)
        q01 = torch.tensor(stats["action"].get("q01", stats["action"].get("min")), dtype=torch.float32)
        q99 = torch.tensor(stats["action"].get("q99", stats["action"].get("max")), dtype=torch.float32)
        self.register_buffer("action_q01", q01, persistent=False)
        self.register_buffer("action_span", (q99 - q01).clamp_min(1e-6), persistent=False)

    @classmethod
    def upgrade_config(cls, raw: dict) -> dict:
        # Checkpoints from before `projector` existed hold the LayerNorm projector's weights.
        return raw if not isinstance(raw, dict) or "projector" in raw else {**raw, "projector": "mlp_ln"}

    @classmethod
    def from_checkpoint_config(cls, config, *, tokenizer, stats):
        # The checkpoint holds every weight (backbone included): build the architecture from its config.
        return cls(config, tokenizer=tokenizer, stats=stats, load_pretrained=False)

    def _max_len(self) -> int:
        c = self.config
        conv = c.vision_encoder == "conv"
        grid = token_grid_side(c.image_size, c.conv_token_grid) if conv else c.image_size // c.patch_size
        vision_tokens = grid ** 2 + 1
        if c.vision_tower or c.vision_path or c.vision_config:  # a pretrained tower's own token count
            vision_tokens = 1025
        return 1 + vision_tokens + c.context_length + c.num_queries

    # ---- normalisation: [q01, q99] -> [-1, 1] per dimension (the paper's) --------------------------
    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_q01) / self.action_span * 2 - 1

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action + 1) / 2 * self.action_span + self.action_q01

    def parameter_counts(self) -> dict[str, int]:
        def count(*modules):
            return sum(p.numel() for m in modules for p in (m.parameters() if isinstance(m, nn.Module) else [m]))

        return {"backbone": count(self.backbone), "vision": count(self.vision),
                "adapter": count(self.projector, self.action_queries, self.bos), "policy": count(self.policy)}

    # ---- the model -----------------------------------------------------------------------------
    def conditions(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor):
        """-> per-layer Raw features [(b, 1+p, d)] and ActionQuery features [(b, q, d)]."""
        c = self.config
        b = images.shape[0]
        text = self.backbone.embed(tokens)  # (b, l, d)
        if isinstance(self.vision, ConvEncoder) and self.vision.cond_dim:  # FiLM on the instruction's embedding
            vision = self.projector(self.vision(images, masked_mean(text, mask).to(images.dtype)))
        else:  # 3-D "images" are pre-computed features of a frozen tower (tinyvla.features)
            vision = self.projector(images if images.ndim == 3 else self.vision(images))  # (b, p, d)
        queries = self.action_queries.weight[: c.num_queries].unsqueeze(0).expand(b, -1, -1)  # (b, q, d)
        seq = torch.cat([self.bos.expand(b, -1, -1).to(text.dtype), vision.to(text.dtype), text,
                         queries.to(text.dtype)], dim=1)
        p = vision.shape[1]
        ones = torch.ones(b, 1 + p, dtype=torch.bool, device=seq.device)
        key_mask = torch.cat([ones, mask.bool(), torch.ones(b, c.num_queries, dtype=torch.bool, device=seq.device)], 1)
        hidden = self.backbone(seq, key_mask, c.causal)  # L x (b, n, d)
        if c.condition_layer >= 0:
            hidden = [hidden[c.condition_layer]] * len(hidden)
        use_raw = c.conditions in ("raw", "both")
        use_aq = c.conditions in ("aq", "both")
        raw = [h[:, : 1 + p] if use_raw else None for h in hidden]
        aq = [h[:, h.shape[1] - c.num_queries:] if use_aq else None for h in hidden]
        return raw, aq

    def predict_normalized(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                           state: torch.Tensor | None = None) -> torch.Tensor:
        raw, aq = self.conditions(images, tokens, mask)
        return self.policy(raw, aq, state)  # (b, t, a) in [-1, 1] (roughly)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """L1 (or MSE) between predicted and demonstrated actions, both normalised to [-1, 1] by q01/q99."""
        pred = self.predict_normalized(*self.prepare(batch))
        target = self.normalize_action(self.target_chunk(batch, pred.shape[1]))
        loss = (F.l1_loss if self.config.loss == "l1" else F.mse_loss)(pred.float(), target)
        return loss, {"loss": loss.detach()}

    def parameters_without_gradient(self) -> set[str]:
        """Names of parameters that get no gradient by design: backbone layers after a single
        `condition_layer`, and those behind gates that are exactly 0 (as at init, `bridge_softmax
        separate`): a gated source's norm/projection, the proprio MLP behind a closed AQ gate, and
        everything upstream of the policy when every condition is gated shut."""
        names = [n for n, _ in self.named_parameters()]
        closed = set()
        k = self.config.condition_layer
        if k >= 0:
            later = tuple(f"{stem}{j}." for j in range(k + 1, self.backbone.num_layers)
                          for stem in ("backbone.blocks.", "backbone.model.layers."))
            closed |= {n for n in names if n.startswith(later + ("backbone.norm.", "backbone.model.norm."))}
        if self.config.bridge_softmax != "separate":
            return closed
        shut = {}
        # An ungated proprio token still goes through the AQ source's norm and K/V projection.
        open_proprio = self.policy.proprio is not None and not self.config.gate_proprio
        for i, blk in enumerate(self.policy.blocks):
            for source in blk.cond_norms:
                is_shut = source in blk.attn.gates and blk.attn.gates[source].item() == 0.0
                shut.setdefault(source, []).append(is_shut)
                if is_shut and not (source == "aq" and open_proprio):
                    prefix = f"policy.blocks.{i}"
                    closed |= {f"{prefix}.cond_norms.{source}.{p}" for p in ("weight", "bias")}
                    if source in blk.attn.kv:
                        closed |= {f"{prefix}.attn.kv.{source}.{p}" for p in ("weight", "bias")}
        if all(shut.get("aq", [False])) and not open_proprio:
            closed |= {n for n in names if n.startswith("policy.proprio.")}
        if shut and all(all(v) for v in shut.values()):
            closed |= {n for n in names if not n.startswith("policy.")}
        return closed

    # ---- instrumentation -------------------------------------------------------------------------
    @torch.no_grad()
    def diagnostics(self, batch: dict) -> dict[str, float]:
        """tanh(g) per block and the share each source takes per block (see bridge.py), on `batch`."""
        blocks = [blk.attn for blk in self.policy.blocks]
        for attn in blocks:
            attn.record = True
        was_training = self.training
        self.eval()
        try:
            self.predict_normalized(*self.prepare(batch))
        finally:
            self.train(was_training)
            for attn in blocks:
                attn.record = False
        out = {}
        for i, (gates, attn) in enumerate(zip(self.policy.gate_values(), blocks)):
            out.update({f"block{i}/tanh_g_{n}": v for n, v in gates.items()})
            out.update({f"block{i}/mass_{n}": v for n, v in attn.last_mass.items()})
        return out


def paper_comparison(policy: VLAAdapterPolicy) -> str:
    counts = policy.parameter_counts()
    return (f"policy {counts['policy'] / 1e6:.1f}M parameters (paper: {PAPER_POLICY_PARAMS / 1e6:.1f}M with "
            f"Qwen2.5-0.5B), backbone {counts['backbone'] / 1e6:.1f}M")

