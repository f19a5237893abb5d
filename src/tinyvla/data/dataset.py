"""An in-memory frame dataset (image, instruction, state, action) with a versioned on-disk format.

On disk: `frames.safetensors` (images uint8, actions, states, task_index) + `meta.json`
(format version, task name, the instruction table, shapes). Training keeps everything as tensors:
the whole toy set is a few hundred MB at most and indexing tensors is far faster than a DataLoader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tinyvla.constants import ACTION, DATASET_FORMAT_VERSION, OBS_IMAGE, OBS_STATE, TASK
from tinyvla.errors import DataError

FRAMES_NAME = "frames.safetensors"
META_NAME = "meta.json"


@dataclass
class FrameDataset:
    images: torch.Tensor  # (N, 3, H, W) uint8
    actions: torch.Tensor  # (N, a) or (N, t, a) float32
    states: torch.Tensor  # (N, s) float32
    task_index: torch.Tensor  # (N,) int64 into `tasks`
    tasks: list[str]
    name: str = "dataset"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise DataError(f"{self.name}: images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        for label, t in (("actions", self.actions), ("states", self.states), ("task_index", self.task_index)):
            if t.shape[0] != n:
                raise DataError(f"{self.name}: {label} has {t.shape[0]} rows for {n} images")
        if not torch.isfinite(self.actions).all():
            bad = (~torch.isfinite(self.actions)).reshape(n, -1).any(dim=1).nonzero()[:5, 0].tolist()
            raise DataError(f"{self.name}: actions contain NaN/inf (frames {bad}...)")
        if not torch.isfinite(self.states).all():
            raise DataError(f"{self.name}: states contain NaN/inf")
        if n and (self.task_index.min() < 0 or self.task_index.max() >= len(self.tasks)):
            raise DataError(f"{self.name}: task_index out of range of the {len(self.tasks)} tasks")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[-1]

    def batch(self, idx: torch.Tensor) -> dict:
        return {
            OBS_IMAGE: self.images[idx],
            OBS_STATE: self.states[idx],
            TASK: [self.tasks[i] for i in self.task_index[idx].tolist()],
            ACTION: self.actions[idx],
        }

    def action_stats(self) -> dict:
        """Per-dimension statistics of actions and states: mean, std, min, max, q01, q99."""

        def describe(x: torch.Tensor) -> dict:
            x = x.double()
            if len(x) > 1_000_000:  # torch.quantile's input limit; a strided subsample is plenty
                x = x[:: len(x) // 1_000_000 + 1]
            q = torch.quantile(x, torch.tensor([0.01, 0.99], dtype=torch.float64), dim=0)
            return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).values.tolist(),
                    "max": x.max(0).values.tolist(), "q01": q[0].tolist(), "q99": q[1].tolist()}

        stats = {"action": describe(self.actions.reshape(-1, self.action_dim))}
        if self.states.ndim == 2 and self.states.shape[-1] > 0:
            stats["state"] = describe(self.states)
        return stats

    def save(self, directory: str | Path) -> None:
        from tinyvla.policies.base import atomic_write_dir

        meta = {
            "format_version": DATASET_FORMAT_VERSION, "name": self.name, "num_frames": len(self),
            "image_shape": list(self.images.shape[1:]), "action_shape": list(self.actions.shape[1:]),
            "state_dim": int(self.states.shape[-1]), "tasks": self.tasks, "info": self.info,
        }

        def write(tmp: Path) -> None:
            save_file(
                {"images": self.images.contiguous(), "actions": self.actions.contiguous(),
                 "states": self.states.contiguous(), "task_index": self.task_index.contiguous()},
                str(tmp / FRAMES_NAME),
            )
            (tmp / META_NAME).write_text(json.dumps(meta, indent=2))

        atomic_write_dir(Path(directory), write)

    @classmethod
    def load(cls, directory: str | Path) -> "FrameDataset":
        directory = Path(directory)
        if not (directory / META_NAME).is_file() or not (directory / FRAMES_NAME).is_file():
            raise DataError(f"{str(directory)!r} is not a tinyvla dataset (needs {META_NAME} and {FRAMES_NAME})")
        try:
            meta = json.loads((directory / META_NAME).read_text())
            frames = load_file(str(directory / FRAMES_NAME))
        except Exception as e:
            raise DataError(f"dataset {str(directory)!r} is corrupt ({e})") from None
        if meta.get("format_version", 0) > DATASET_FORMAT_VERSION:
            raise DataError(f"dataset format {meta['format_version']} is newer than this tinyvla supports")
        try:
            return cls(frames["images"], frames["actions"], frames["states"], frames["task_index"],
                       list(meta["tasks"]), name=meta.get("name", directory.name), info=meta.get("info", {}))
        except KeyError as e:
            raise DataError(f"dataset {str(directory)!r} lacks {e}") from None
