"""Generate the toy reach task's demonstrations (scripted expert) as FrameDatasets."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tinyvla.data.dataset import FrameDataset
from tinyvla.envs.toy_reach import ToyTaskConfig, expert_action, render, sample_scene

TASK_NAME = "toy_reach"


def generate_toy_dataset(num_frames: int, seed: int, cfg: ToyTaskConfig | None = None, name: str = TASK_NAME) -> FrameDataset:
    """Each frame is an independent scene with the end-effector anywhere: the expert's action
    (the named block's centre) does not depend on it, so frames need no episode structure."""
    cfg = cfg or ToyTaskConfig()
    cfg.validate()
    rng = np.random.default_rng(seed)
    images = np.empty((num_frames, 3, cfg.image_size, cfg.image_size), dtype=np.uint8)
    actions = np.empty((num_frames, 2), dtype=np.float32)
    states = np.empty((num_frames, 2), dtype=np.float32)
    task_ids: dict[str, int] = {}
    task_index = np.empty(num_frames, dtype=np.int64)
    for i in range(num_frames):
        scene = sample_scene(rng, cfg)
        render(scene, cfg, out=images[i])
        actions[i] = expert_action(scene, cfg)
        states[i] = scene.ee
        task_index[i] = task_ids.setdefault(scene.instruction, len(task_ids))
    return FrameDataset(
        torch.from_numpy(images), torch.from_numpy(actions), torch.from_numpy(states), torch.from_numpy(task_index),
        tasks=list(task_ids), name=name, info={"task": TASK_NAME, "seed": seed, "config": dataclasses.asdict(cfg)},
    )


def with_action_chunks(ds: FrameDataset, steps: int) -> FrameDataset:
    """Actions (N, a) -> (N, steps, a). Valid for this task only: its expert commands the same position
    at every step of an episode, so the next `steps` commands are the current one repeated."""
    if ds.info.get("task") != TASK_NAME:
        raise ValueError("with_action_chunks only applies to the toy task")
    actions = ds.actions.reshape(len(ds), -1, ds.action_dim)[:, :1].expand(-1, steps, -1).contiguous()
    return FrameDataset(ds.images, actions, ds.states, ds.task_index, ds.tasks, name=ds.name, info=ds.info)
