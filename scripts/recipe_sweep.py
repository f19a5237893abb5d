"""Re-run the README's recipe sweep (TinyVLA on toy_reach at a fixed sample budget).

    python scripts/recipe_sweep.py --list
    python scripts/recipe_sweep.py default_r1 seed_r1 --seeds 0 1 2 3 --device cuda

Each run prints one JSON line: name, seed, params, best val L2, train seconds and the val-L2 curve.
The README's table came from these runs on one H100 (one process per run, 50k train / 2k val frames).
"""

from __future__ import annotations

import argparse
import json

from tinyvla.pipeline import build_run_config, load_splits, run_training

R1 = {"train.batch_size": 64, "train.steps": 800, "train.lr": 3e-4, "train.warmup_steps": 80}
R2 = {"train.batch_size": 32, "train.steps": 1200, "train.lr": 3e-4, "train.warmup_steps": 100}
SEED = {"policy.fusion": "pool_add", "policy.vision_pool": "cls"}
OLD = {"train.batch_size": 128, "train.steps": 500, "train.warmup_steps": 50, "train.lr": 1e-3}
SWEEP: dict[str, dict] = {
    "lr1e-3_bs128": OLD,
    "lr3e-3_bs128": {**OLD, "train.lr": 3e-3},
    "lr2e-3_bs64": {**OLD, "train.batch_size": 64, "train.steps": 1000, "train.warmup_steps": 100, "train.lr": 2e-3},
    "lr3e-4_bs128": {**OLD, "train.lr": 3e-4},
    "lr5e-4_bs64_600": {"train.batch_size": 64, "train.steps": 600, "train.lr": 5e-4, "train.warmup_steps": 60},
    "default_r1": R1,
    "r2_bs32": R2,
    "r2_bs32_1000": {**R2, "train.steps": 1000},
    "r2_bs32_lr4e-4": {**R2, "train.lr": 4e-4},
    "randpos_lr1e-3_bs128": {**OLD, "policy.vision_pos_init": "random"},
    "seed_lr1e-3_bs128": {**OLD, **SEED},
    "seed_lr5e-4_bs64_1000": {**SEED, "train.batch_size": 64, "train.steps": 1000, "train.lr": 5e-4, "train.warmup_steps": 100},
    "seed_r1": {**SEED, **R1},
    "seed_r2": {**SEED, **R2},
    "seed_randpos_r1": {**SEED, **R1, "policy.vision_pos_init": "random"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list or not args.names:
        print("\n".join(f"{k}: {v}" for k, v in SWEEP.items()))
        return
    splits = None
    for name in args.names:
        for seed in args.seeds:
            run = build_run_config("tinyvla", "tiny", {**SWEEP[name], "train.seed": seed, "train.device": args.device,
                                                       "train.progress": False})
            splits = splits or load_splits(run.data)
            policy, r = run_training(run, None, splits=splits)
            print(json.dumps({"name": name, "seed": seed, "params": policy.num_parameters(), "best_val_l2": r.best_val_l2,
                              "train_seconds": r.train_seconds,
                              "curve": [(h["samples"], round(h["val_l2"], 4)) for h in r.history]}), flush=True)


if __name__ == "__main__":
    main()
