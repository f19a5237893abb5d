"""Run by tests/test_distributed.py, under torchrun or alone: train a tiny policy, then write this
rank's final-weights digest and history to OUT/rank<r>.json."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY_OVERRIDES  # noqa: E402

from tinyvla.pipeline import build_run_config, run_training  # noqa: E402

out = Path(sys.argv[1])
accum = int(sys.argv[2]) if len(sys.argv) > 2 else 1
torch.set_num_threads(1)
run = build_run_config("tinyvla", "tiny", {
    **TINY_OVERRIDES, "data.num_train": 64, "data.num_val": 64, "train.steps": 100, "train.batch_size": 32,
    "train.eval_every": 10, "train.precision": "fp32", "train.lr": 2e-3, "train.warmup_steps": 5,
    "train.grad_accum_steps": accum,
})
policy, result = run_training(run, out / "ckpt")
digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in policy.parameters())).hexdigest()
rank = int(os.environ.get("RANK", "0"))
(out / f"rank{rank}.json").write_text(json.dumps({
    "digest": digest, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    "params": [p.detach().flatten()[:8].tolist() for p in list(policy.parameters())[:3]],
    "final_val_l2": result.final_val_l2, "history": result.history}))
