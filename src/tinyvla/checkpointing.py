"""Resumable trainer state, without pickle: tensors in safetensors, everything else in JSON.

A `last/` checkpoint directory holds the policy files (see `Policy.save_pretrained`) plus
`trainer_state.safetensors` (optimiser moments, RNG states, the epoch's sample order) and
`train_state.json` (step, data position, scheduler step, history, best score). It is written
atomically, so a crash at any moment leaves either the previous or the new checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tinyvla.constants import TRAIN_STATE_NAME
from tinyvla.errors import CheckpointError

TRAINER_TENSORS_NAME = "trainer_state.safetensors"


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    try:
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"optimiser state does not match this model ({e})") from None


def trainer_files(opt, sched, gen: torch.Generator, order: torch.Tensor, pos: int, state: dict) -> dict:
    """The extra files for `Policy.save_pretrained(..., files=...)`: name -> writer(path)."""
    tensors, opt_meta = optimizer_tensors(opt)
    tensors.update({"rng.torch": torch.get_rng_state(), "rng.data": gen.get_state(), "data.order": order.cpu()})
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {**state, "data_position": pos, "scheduler_step": sched.last_epoch, "optimizer": opt_meta}
    return {
        TRAINER_TENSORS_NAME: lambda p: save_file(tensors, str(p)),
        TRAIN_STATE_NAME: lambda p: Path(p).write_text(json.dumps(meta, indent=2)),
    }


def load_trainer_state(directory: Path, opt, sched, gen: torch.Generator) -> tuple[torch.Tensor, int, dict]:
    """Restore optimiser, scheduler and RNGs from `directory`; return (order, data position, json state)."""
    try:
        meta = json.loads((directory / TRAIN_STATE_NAME).read_text())
        tensors = load_file(str(directory / TRAINER_TENSORS_NAME))
    except FileNotFoundError:
        raise CheckpointError(f"{str(directory)!r} has no trainer state to resume from") from None
    except Exception as e:
        raise CheckpointError(f"trainer state in {str(directory)!r} is corrupt ({e})") from None
    load_optimizer(opt, tensors, meta["optimizer"])
    sched.last_epoch = meta["scheduler_step"]
    sched._last_lr = [g["lr"] for g in opt.param_groups]
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.data"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return tensors["data.order"], int(meta["data_position"]), meta


def recover_checkpoint_dir(target: Path) -> None:
    """Undo what a crash in the middle of an atomic directory write can leave: a missing target with
    its previous version set aside (restore it), and stale temp directories (remove them)."""
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{target.name}.old-*"), key=os.path.getmtime)
    if not target.exists() and olds:
        os.replace(olds[-1], target)
        olds = olds[:-1]
    for stale in [*olds, *parent.glob(f".{target.name}.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)
