"""Glue between configs, data and policies: what `tinyvla train` and `tinyvla demo` run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyvla.config import apply_overrides, to_dict
from tinyvla.data.dataset import FrameDataset
from tinyvla.data.toy import TASK_NAME, generate_toy_dataset, with_action_chunks
from tinyvla.envs.toy_reach import all_instructions
from tinyvla.errors import ConfigError, DataError
from tinyvla.lora import LoRAConfig, apply_lora
from tinyvla.policies.base import Policy, PolicyConfig
from tinyvla.policies.registry import get_policy_class, make_policy
from tinyvla.tokenizer import InstructionTokenizer
from tinyvla.train import TrainConfig, TrainResult, train
from tinyvla.utils import set_seed


@dataclass
class DataConfig:
    # A directory from `tinyvla data toy` (with train/ and val/), or any local LeRobot-format dataset
    # (meta/info.json; e.g. from `tinyvla data metaworld`); empty = generate the toy task.
    path: str = ""
    num_train: int = 50_000
    num_val: int = 2_000
    seed: int = 0  # toy: the train split uses `seed`, the held-out split `seed + 1`; LeRobot: which episodes are held out
    val_episodes: float = 0.1  # LeRobot: fraction of episodes held out for validation (at least one)
    image_key: str = ""  # LeRobot: the camera feature to read (default observation.image or the first image)
    image_size: int = 0  # LeRobot: resize frames to this square size when loading (0 = as stored)

    def validate(self) -> None:
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError("num_train and num_val must be >= 1")
        if self.image_size < 0:
            raise ValueError("image_size must be >= 0")
        if not 0.0 < self.val_episodes < 1.0:
            raise ValueError("val_episodes must be in (0, 1)")


@dataclass
class RunConfig:
    policy: PolicyConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    init_from: str = ""  # fine-tune this checkpoint (its architecture, tokenizer and stats) instead of a new policy
    explicit: set[str] = field(default_factory=set)  # dotted keys set by the preset or the user (not defaults)


def build_run_config(policy_type: str = "tinyvla", preset: str = "tiny", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the preset, then user overrides (all dotted keys: policy.*, train.*, data.*, lora.*).

    `preset` is a built-in name or a JSON file: {"base": "tiny", "policy": {...}, "train": {...}, ...}."""
    policy_cls = get_policy_class(policy_type)
    file_overrides: dict[str, Any] = {}
    if preset.endswith(".json") or Path(preset).is_file():
        preset, file_overrides = load_preset_file(preset)
    if preset not in policy_cls.presets:
        raise ConfigError(f"unknown preset {preset!r} for policy {policy_type!r}; available: {', '.join(policy_cls.presets)}")
    merged = {**policy_cls.presets[preset], **file_overrides, **(overrides or {})}
    for key in [k for k in merged if k.startswith("backbone.")]:  # `--backbone.path DIR` = policy.backbone_path
        value = merged.pop(key)
        merged[f"policy.backbone_{key.partition('.')[2]}"] = value
        if key == "backbone.path":
            merged.setdefault("policy.backbone", "hf")
    groups: dict[str, dict[str, Any]] = {"policy": {}, "train": {}, "data": {}, "lora": {}}
    init_from = str(merged.pop("init_from", ""))
    for key, value in merged.items():
        head, _, rest = key.partition(".")
        if head not in groups or not rest:
            raise ConfigError(f"unknown config key {key!r}: keys start with policy., train., data., lora. or backbone.")
        groups[head][rest] = value
    groups["policy"].pop("type", None)
    return RunConfig(
        policy=apply_overrides(policy_cls.config_class(), groups["policy"], "policy."),
        train=apply_overrides(TrainConfig(), groups["train"], "train."),
        data=apply_overrides(DataConfig(), groups["data"], "data."),
        lora=apply_overrides(LoRAConfig(), groups["lora"], "lora."),
        init_from=init_from,
        explicit=set(merged),
    )


def load_preset_file(path: str) -> tuple[str, dict[str, Any]]:
    """A user preset: -> (base preset name, dotted overrides). Keys and types are checked when applied."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"preset file {path!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"preset file {path!r} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset file {path!r} must hold a JSON object")
    unknown = sorted(set(data) - {"base", "policy", "train", "data", "lora"})
    if unknown:
        raise ConfigError(f"preset file {path!r}: unknown key(s) {', '.join(unknown)}; valid: base, policy, train, data, lora")
    base = data.pop("base", "tiny")
    if not isinstance(base, str):
        raise ConfigError(f"preset file {path!r}: base must be a preset name")
    flat: dict[str, Any] = {}
    for group, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"preset file {path!r}: {group} must be an object of settings")
        flat.update({f"{group}.{k}": v for k, v in values.items()})
    return base, flat


def load_splits(cfg: DataConfig, chunk_size: int = 1) -> tuple[FrameDataset, FrameDataset]:
    """(train, val). A LeRobot dataset is split by episode; its actions become (N, chunk_size, a) chunks."""
    if cfg.path:
        from tinyvla.data.lerobot import is_lerobot_dataset

        root = Path(cfg.path)
        if not root.is_dir():
            raise DataError(f"dataset directory {cfg.path!r} does not exist")
        if is_lerobot_dataset(root):
            return lerobot_splits(cfg, chunk_size)
        if not (root / "train").is_dir() and any(root.parent.glob(f".{root.name}.partial-*")):
            raise DataError(f"{cfg.path!r} is incomplete (an interrupted generation left only a partial copy)")
        return FrameDataset.load(root / "train"), FrameDataset.load(root / "val")
    return generate_toy_dataset(cfg.num_train, cfg.seed, name="train"), generate_toy_dataset(cfg.num_val, cfg.seed + 1, name="val")


def lerobot_splits(cfg: DataConfig, chunk_size: int = 1) -> tuple[FrameDataset, FrameDataset]:
    import torch

    from tinyvla.data.lerobot import action_chunks, load_lerobot

    frames = load_lerobot(cfg.path, cfg.image_key, cfg.image_size)
    episodes = torch.unique(frames.episode_index)
    if len(episodes) < 2:
        raise DataError(f"{cfg.path!r} holds {len(episodes)} episode(s); at least 2 are needed (train + validation)")
    n_val = min(len(episodes) - 1, max(1, round(cfg.val_episodes * len(episodes))))
    perm = torch.randperm(len(episodes), generator=torch.Generator().manual_seed(cfg.seed))
    is_val = torch.isin(frames.episode_index, episodes[perm[:n_val]])
    actions = action_chunks(frames.actions, frames.episode_index, max(1, chunk_size))
    info = {"task": "lerobot", "path": str(cfg.path), "codebase_version": frames.info.get("codebase_version"),
            "fps": frames.info.get("fps"), "camera": dataset_camera(frames.info.get("tinyvla_camera"))}

    def split(mask: torch.Tensor, name: str) -> FrameDataset:
        idx = torch.nonzero(mask)[:, 0]
        return FrameDataset(frames.images[idx], actions[idx], frames.states[idx], frames.task_index[idx],
                            frames.tasks, name=name, info={**info, "episodes": int(torch.unique(
                                frames.episode_index[idx]).numel())})

    return split(~is_val, "train"), split(is_val, "val")


def dataset_camera(settings: dict | None) -> dict:
    """The part of a dataset's camera settings a policy must be evaluated with (the image size is the
    policy's own): {camera, camera_pos, crop}, or {} when the dataset did not record them."""
    if not settings:
        return {}
    return {"camera": settings.get("camera", "corner2"), "camera_pos": settings.get("camera_pos"),
            "crop": float(settings.get("crop", 1.0))}


def check_same_camera(checkpoint: dict, dataset: dict, what: str) -> None:
    """A policy run on data rendered from another viewpoint silently sees another scene: refuse."""
    if checkpoint and dataset and checkpoint != dataset:
        raise DataError(f"{what}: the camera settings differ -- checkpoint {checkpoint}, dataset {dataset}")


def adopt_dataset_shapes(run: RunConfig, train_ds: FrameDataset) -> None:
    """A new policy takes the image size, action and state sizes of a non-toy data set unless the preset
    or the user set them (then a mismatch is an error, raised by `new_policy`)."""
    cfg = run.policy
    if "policy.action_dim" not in run.explicit:
        cfg.action_dim = train_ds.action_dim
    if "policy.image_size" not in run.explicit and not (getattr(cfg, "vision_path", "") or getattr(cfg, "vision_config", {})):
        cfg.image_size = int(train_ds.images.shape[-1])
    if "policy.state_dim" not in run.explicit and getattr(cfg, "state_dim", None) == 0 and train_ds.states.shape[-1]:
        cfg.state_dim = -1  # proprioception when the data has it
    if "policy.camera" not in run.explicit:
        cfg.camera = dict(train_ds.info.get("camera") or {})
    cfg.validate()


def placeholder_dataset(cfg: PolicyConfig, n: int = 256, seed: int = 0) -> FrameDataset:
    """Frames shaped for `cfg`, to build a policy whose size or speed is measured (never to train on):
    the toy task when its shapes fit, else random images/actions/states with the toy's instructions."""
    if cfg.image_size == 64 and cfg.action_dim == 2 and getattr(cfg, "state_dim", -1) in (-1, 0, 2):
        return generate_toy_dataset(n, seed)
    import torch

    gen = torch.Generator().manual_seed(seed)
    tasks = sorted(set(all_instructions()))[:64]
    state_dim = max(getattr(cfg, "state_dim", 0), 0) or 2
    return FrameDataset(
        torch.randint(0, 256, (n, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8, generator=gen),
        torch.rand(n, cfg.chunk_size, cfg.action_dim, generator=gen) * 2 - 1,
        torch.randn(n, state_dim, generator=gen), torch.randint(0, len(tasks), (n,), generator=gen), tasks,
        name="placeholder", info={"task": "placeholder"},
    )


def new_tokenizer(train_ds: FrameDataset, context_length: int, pretrained_dir: str = "") -> InstructionTokenizer:
    """A pretrained language model's own tokenizer when its directory has one; otherwise a word-level one
    trained on the task's instructions (the toy task's whole grammar, or the data set's tasks)."""
    if pretrained_dir and (Path(pretrained_dir) / "tokenizer.json").is_file():
        return InstructionTokenizer.from_pretrained_dir(pretrained_dir, context_length)
    corpus = all_instructions() if train_ds.info.get("task") == TASK_NAME else train_ds.tasks
    return InstructionTokenizer.train(corpus, context_length)


def new_policy(cfg: PolicyConfig, train_ds: FrameDataset) -> Policy:
    if train_ds.action_dim != cfg.action_dim:
        raise DataError(f"dataset actions have dimension {train_ds.action_dim}, policy.action_dim is {cfg.action_dim}")
    if train_ds.images.shape[-1] != cfg.image_size:
        raise DataError(f"dataset images are {train_ds.images.shape[-1]} px, policy.image_size is {cfg.image_size}")
    if getattr(cfg, "state_dim", 0) == -1:  # "from the data set"
        cfg.state_dim = int(train_ds.states.shape[-1]) if train_ds.states.ndim == 2 else 0
    text_dir = getattr(cfg, "lang_path", "") or (getattr(cfg, "backbone_path", "") if getattr(cfg, "backbone", "") == "hf" else "")
    if getattr(cfg, "language_tower", ""):  # a packaged model's own tokenizer
        from tinyvla.modules.towers import language_dir

        text_dir = str(language_dir(cfg.language_tower))
    return make_policy(cfg, tokenizer=new_tokenizer(train_ds, cfg.context_length, text_dir), stats=train_ds.action_stats())


def run_training(run: RunConfig, out: str | Path | None, desc: str = "train",
                 splits: tuple[FrameDataset, FrameDataset] | None = None) -> tuple[Policy, TrainResult]:
    base = Policy.from_pretrained(run.init_from) if run.init_from else None
    train_ds, val_ds = splits or load_splits(run.data, base.config.chunk_size if base else run.policy.chunk_size)
    if run.policy.chunk_size > 1 and train_ds.info.get("task") == TASK_NAME and train_ds.actions.ndim == 2:
        train_ds, val_ds = with_action_chunks(train_ds, run.policy.chunk_size), with_action_chunks(val_ds, run.policy.chunk_size)
    set_seed(run.train.seed)  # the initial weights depend on the seed alone, not on what ran before
    if base is not None:
        policy = base
        if train_ds.action_dim != policy.config.action_dim:
            raise DataError(f"dataset actions have dimension {train_ds.action_dim}, {run.init_from} acts in "
                            f"{policy.config.action_dim}")
        check_same_camera(policy.config.camera, train_ds.info.get("camera") or {}, f"--init-from {run.init_from}")
    else:
        if train_ds.info.get("task") not in (TASK_NAME, None):
            adopt_dataset_shapes(run, train_ds)
        policy = new_policy(run.policy, train_ds)
    if run.lora.rank:
        trainable = apply_lora(policy, run.lora)
        print(f"LoRA rank {run.lora.rank} on {', '.join(run.lora.targets)}: {trainable:,} trainable of "
              f"{policy.num_parameters():,} parameters")
    if out is not None and int(os.environ.get("RANK", "0")) == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "run_config.json").write_text(json.dumps(
            {"policy_type": run.policy.type, "policy": to_dict(run.policy), "train": to_dict(run.train),
             "data": to_dict(run.data), "lora": to_dict(run.lora), "init_from": run.init_from}, indent=2))
    result = train(policy, train_ds, val_ds, run.train, out_dir=out, desc=desc)
    return policy, result


__all__ = ["DataConfig", "RunConfig", "build_run_config", "load_splits", "new_policy", "placeholder_dataset", "run_training"]
