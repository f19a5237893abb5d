"""Knowledge distillation: train a (smaller) student on a teacher's actions, optionally mixed with the
demonstrations: target = alpha * teacher + (1 - alpha) * ground truth. Validation stays on ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tinyvla.data.dataset import FrameDataset
from tinyvla.errors import ConfigError
from tinyvla.pipeline import RunConfig, load_splits, run_training
from tinyvla.policies.base import Policy
from tinyvla.train import TokenTable, offline_l2, tensor_batch
from tinyvla.utils import autocast_context, resolve_device, resolve_precision


@torch.no_grad()
def teacher_labels(teacher: Policy, ds: FrameDataset, batch_size: int = 512, precision: str = "fp32") -> torch.Tensor:
    """The teacher's action chunks for every frame of `ds`: (N, t, a) on the CPU."""
    table = TokenTable(teacher, ds, teacher.device)
    out = []
    for start in range(0, len(ds), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(ds)))
        with autocast_context(teacher.device, precision):
            out.append(teacher.predict_action_chunk(tensor_batch(ds, idx, table, teacher.device)).float().cpu())
    return torch.cat(out)


def distill(teacher_dir: str | Path, student: RunConfig, out: str | Path, alpha: float = 1.0) -> dict:
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    device = resolve_device(student.train.device)
    precision = resolve_precision(student.train.precision, device)
    teacher = Policy.from_pretrained(teacher_dir, device=device).eval()
    if teacher.config.action_dim != student.policy.action_dim:
        raise ConfigError(f"teacher acts in {teacher.config.action_dim} dimensions, the student in {student.policy.action_dim}")
    if student.policy.chunk_size > teacher.config.chunk_size:
        raise ConfigError(f"student chunk_size {student.policy.chunk_size} > teacher's {teacher.config.chunk_size}")
    train_ds, val_ds = load_splits(student.data)
    t = student.policy.chunk_size
    soft = teacher_labels(teacher, train_ds, precision=precision)[:, :t]  # (N, t, a)
    hard = train_ds.actions.reshape(len(train_ds), -1, train_ds.action_dim)[:, :1].expand(-1, t, -1)
    targets = alpha * soft + (1 - alpha) * hard
    distill_ds = FrameDataset(train_ds.images, targets.squeeze(1) if t == 1 else targets, train_ds.states,
                              train_ds.task_index, train_ds.tasks, name="distill", info=train_ds.info)
    teacher_l2 = offline_l2(teacher, val_ds, precision=precision)
    policy, result = run_training(student, out, desc="student", splits=(distill_ds, val_ds))
    report = {
        "teacher": str(teacher_dir), "teacher_params": teacher.num_parameters(), "teacher_val_l2": teacher_l2,
        "student_params": policy.num_parameters(), "student_val_l2": result.best_val_l2, "alpha": alpha,
        "gap": result.best_val_l2 - teacher_l2, "student_train_seconds": result.train_seconds,
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "distill.json").write_text(json.dumps(report, indent=2))
    return report
