"""LoRA fine-tuning with `peft` on any policy's linear layers, and merging for deployment.

Adapters are injected into the named linear layers (peft `target_modules`: name suffixes such as
"qkv" or "proj"); everything else is frozen except the modules listed in `trainable` (by default the
fusion and the action head). Checkpoints are saved merged, so they load as plain policies."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

from tinyvla.errors import ConfigError


@dataclass
class LoRAConfig:
    rank: int = 0  # 0 = LoRA off
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["qkv", "proj"])
    trainable: list[str] = field(default_factory=lambda: ["fusion", "head"])  # top-level modules trained fully
    scope: str = ""  # only inject adapters under this top-level module (e.g. "backbone"); empty = anywhere

    def validate(self) -> None:
        if self.rank < 0 or self.alpha <= 0:
            raise ValueError("rank must be >= 0 and alpha > 0")


def has_lora(model: nn.Module) -> bool:
    return any("lora_" in name for name, _ in model.named_parameters())


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> int:
    """Inject adapters in place and freeze the rest; returns the number of trainable parameters."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError("LoRA needs peft: pip install 'tinyvla[lora]'") from None
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if cfg.scope:
        if cfg.scope not in dict(model.named_children()):
            raise ConfigError(f"lora.scope {cfg.scope!r} is not a module of this policy; have: "
                              f"{', '.join(dict(model.named_children()))}")
        linear_names = [n for n in linear_names if n.startswith(cfg.scope + ".")]
    unmatched = [t for t in cfg.targets if not any(n == t or n.endswith("." + t) for n in linear_names)]
    if unmatched:
        raise ConfigError(f"LoRA target module(s) {', '.join(unmatched)} match no linear layer"
                          f"{' under ' + cfg.scope if cfg.scope else ''}; linear layers end in: "
                          f"{', '.join(sorted({n.rsplit('.', 1)[-1] for n in linear_names}))}")
    top_level = set(dict(model.named_children())) | {n for n, _ in model.named_parameters(recurse=False)}
    unknown = [t for t in cfg.trainable if t not in top_level]
    if unknown:
        raise ConfigError(f"lora.trainable names unknown module(s) {', '.join(unknown)}; have: {', '.join(sorted(top_level))}")
    # Full module names when scoped, so that equally named layers elsewhere (the policy's `proj`) stay plain.
    targets = [n for n in linear_names if any(n == t or n.endswith("." + t) for t in cfg.targets)] if cfg.scope \
        else list(cfg.targets)
    inject_adapter_in_model(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                       target_modules=targets), model)
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or name.split(".", 1)[0] in cfg.trainable
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and put the plain nn.Linear back (in place)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, module.get_base_layer())
    for p in model.parameters():
        p.requires_grad = True
    return model


def merged_copy(model: nn.Module) -> nn.Module:
    return merge_lora(copy.deepcopy(model))
