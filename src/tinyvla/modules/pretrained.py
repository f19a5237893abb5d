"""Pretrained Hugging Face components from LOCAL directories (never a hub download).

Every loader turns the ways a user's directory can be wrong (missing, no config, a model type this
transformers does not know, the wrong kind of model) into one clear `ConfigError`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tinyvla.errors import ConfigError


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError("pretrained components need transformers: pip install 'tinyvla[hf]'") from None
    transformers.utils.logging.disable_progress_bar()  # a bar per local load is noise, not progress
    return transformers


def _read_config(path: str | Path, what: str) -> dict[str, Any]:
    directory = Path(path)
    if not directory.is_dir():
        raise ConfigError(f"{what} directory {str(path)!r} does not exist (models are loaded from local "
                          "directories; download one first, e.g. with `huggingface-cli download`)")
    cfg_file = directory / "config.json"
    if not cfg_file.is_file():
        raise ConfigError(f"{what} directory {str(path)!r} has no config.json: not a Hugging Face model directory")
    try:
        return json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} config {str(cfg_file)!r} is not valid JSON ({e})") from None


def causal_lm_config(path_or_dict: str | Path | dict[str, Any]):
    """A transformers config for a decoder LM, from a local directory or a config dict."""
    tf = _transformers()
    raw = dict(path_or_dict) if isinstance(path_or_dict, dict) else _read_config(path_or_dict, "backbone")
    model_type = raw.get("model_type")
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        where = f"{str(path_or_dict)!r}" if not isinstance(path_or_dict, dict) else "the config"
        raise ConfigError(f"backbone {where} has model_type {model_type!r}, which is not a causal language model "
                          "this transformers can build (e.g. qwen2, llama, gpt2)")
    return tf.AutoConfig.for_model(model_type, **{k: v for k, v in raw.items() if k != "model_type"})


def load_causal_lm(path: str | Path | None = None, config: dict[str, Any] | None = None) -> nn.Module:
    """A decoder LM's base model (no LM head): pretrained weights from `path`, or random ones from `config`."""
    tf = _transformers()
    if path:
        causal_lm_config(path)  # clear errors before transformers' own
        try:
            model = tf.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype="float32")
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"could not load a causal LM from {str(path)!r}: {str(e).splitlines()[0]}") from None
    elif config is not None:
        model = tf.AutoModelForCausalLM.from_config(causal_lm_config(config))
    else:
        raise ConfigError("a Hugging Face backbone needs a local directory (policy.backbone_path) or a config")
    base = model.base_model  # Qwen2ForCausalLM.model etc.: embeddings + layers + final norm
    if base is model:
        raise ConfigError(f"backbone {str(path)!r} has no separable base model")
    return base


def load_vision_model(path: str | Path) -> nn.Module:
    """A vision tower (SigLIP, CLIP, DINOv2, ViT, ...) through `AutoModel`; CLIP/SigLIP keep the vision half."""
    tf = _transformers()
    raw = _read_config(path, "vision model")
    model_type = raw.get("model_type")
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    if model_type not in MODEL_MAPPING_NAMES:
        raise ConfigError(f"vision model {str(path)!r} has unsupported model_type {model_type!r}")
    try:
        model = tf.AutoModel.from_pretrained(str(path), local_files_only=True, dtype="float32")
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"could not load a vision model from {str(path)!r}: {str(e).splitlines()[0]}") from None
    if hasattr(model, "vision_model") and not hasattr(model, "embeddings"):  # a two-tower CLIP/SigLIP checkpoint
        model = model.vision_model
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "hidden_size") or not hasattr(cfg, "image_size"):
        raise ConfigError(f"{str(path)!r} ({model_type}) is not a vision model (no image_size/hidden_size)")
    return model


def config_dict(model: nn.Module) -> dict[str, Any]:
    """A model's architecture as a JSON-able dict (what a checkpoint stores to rebuild it offline)."""
    cfg = model.config
    out = {"model_type": cfg.model_type, **{k: v for k, v in cfg.to_diff_dict().items() if k != "model_type"}}
    out.pop("transformers_version", None)
    return out


def vision_model_from_config(config: dict[str, Any]) -> nn.Module:
    """Random weights of a vision tower's architecture (the checkpoint's weights are loaded afterwards)."""
    tf = _transformers()
    raw = dict(config)
    model_type = raw.pop("model_type", None)
    try:
        cfg = tf.AutoConfig.for_model(model_type, **raw)
    except ValueError as e:
        raise ConfigError(f"unsupported vision model_type {model_type!r}: {e}") from None
    return tf.AutoModel.from_config(cfg)


# Bidirectional encoders that transformers can also wrap in a causal-LM head: load them as encoders.
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "ernie", "roformer", "data2vec-text",
                 "big_bird", "megatron-bert", "bert-generation")


def language_model(path: str | Path | None = None, config: dict[str, Any] | None = None) -> nn.Module:
    """A text model's base (no head): a causal LM's decoder, or an encoder (BERT-style) via AutoModel."""
    tf = _transformers()
    raw = dict(config) if config else _read_config(path, "language model")
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_MAPPING_NAMES

    model_type = raw.get("model_type")
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in ENCODER_TYPES:
        return load_causal_lm(path=path, config=None if path else raw)
    if model_type not in MODEL_MAPPING_NAMES:
        raise ConfigError(f"language model {str(path or 'config')!r} has unsupported model_type {model_type!r}")
    if path:
        try:
            model = tf.AutoModel.from_pretrained(str(path), local_files_only=True, dtype="float32")
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"could not load a language model from {str(path)!r}: {str(e).splitlines()[0]}") from None
    else:
        model = tf.AutoModel.from_config(tf.AutoConfig.for_model(model_type, **{k: v for k, v in raw.items()
                                                                                if k != "model_type"}))
    if getattr(model, "pooler", None) is not None:  # BERT's [CLS] pooler: unused here, and it would get no gradient
        model.pooler = None
    return model


def is_encoder(model: nn.Module) -> bool:
    """A bidirectional text encoder (BERT-style) rather than a causal decoder."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = model.config.model_type
    return model_type in ENCODER_TYPES or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def image_normalisation(path: str | Path | None) -> tuple[list[float], list[float]]:
    """The tower's image mean/std from its preprocessor_config.json (SigLIP's 0.5/0.5 otherwise)."""
    pre = Path(path) / "preprocessor_config.json" if path else None
    if pre is not None and pre.is_file():
        try:
            cfg = json.loads(pre.read_text())
            return list(cfg["image_mean"]), list(cfg["image_std"])
        except (KeyError, ValueError, TypeError):
            pass
    return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


class HFVision(nn.Module):
    """A pretrained vision tower: resize + normalise, then its patch tokens (b, p, dv)."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        cfg = getattr(model.config, "vision_config", model.config)
        self.size, self.width = cfg.image_size, cfg.hidden_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(pixel_values=(images - self.mean) / self.std).last_hidden_state


class HFText(nn.Module):
    """A pretrained text model: token ids + mask -> hidden states (b, l, d)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.width = model.config.hidden_size

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if any(p.requires_grad for p in self.parameters()) or tokens.shape[0] == 1:
            return self.model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        # Frozen: a batch holds few distinct instructions (MT10: 10), so each is encoded once.
        rows, inverse = torch.unique(tokens, dim=0, return_inverse=True)
        row_mask = torch.zeros_like(rows, dtype=torch.bool).index_copy_(0, inverse, mask.bool())
        with torch.no_grad():
            hidden = self.model(input_ids=rows, attention_mask=row_mask.long()).last_hidden_state
        return hidden[inverse]


def build_vision(path: str, config: dict[str, Any], load_pretrained: bool) -> tuple[HFVision, dict[str, Any]]:
    """A vision tower from a local directory (pretrained) or from a stored config (random, then loaded).

    The stored config keeps the tower's image mean/std (`tinyvla_image_mean/std`), so that a checkpoint
    normalises images as in training even where the original directory is gone."""
    config = dict(config)
    stored_norm = config.pop("tinyvla_image_mean", None), config.pop("tinyvla_image_std", None)
    input_size = config.pop("tinyvla_input_size", None)  # resize to this instead of the config's image_size
    if path and load_pretrained:
        model = load_vision_model(path)
    elif config:
        model = vision_model_from_config(config)
        if hasattr(model, "vision_model") and not hasattr(model, "embeddings"):
            model = model.vision_model
    else:
        raise ConfigError(f"vision model directory {path!r} is needed")
    if stored_norm[0] is not None and not (path and load_pretrained):
        mean, std = list(stored_norm[0]), list(stored_norm[1])
    else:
        mean, std = image_normalisation(path if path and Path(path).is_dir() else None)
    return wrap_vision(model, mean, std, input_size)


def wrap_vision(model: nn.Module, mean: list[float], std: list[float],
                input_size: int | None = None) -> tuple[HFVision, dict[str, Any]]:
    """-> the tower module and the config a checkpoint stores to rebuild it (architecture, mean/std and,
    when it differs from the architecture's image_size, the size images are resized to)."""
    vision = HFVision(model, mean, std)
    stored = {**config_dict(model), "tinyvla_image_mean": mean, "tinyvla_image_std": std}
    if input_size:
        vision.size = stored["tinyvla_input_size"] = int(input_size)
    return vision, stored
