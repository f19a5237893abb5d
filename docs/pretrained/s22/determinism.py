"""Same-machine determinism of one gate-grid run: 'no gate' seed 0, trained again exactly as ablate's _run_one does
(1 torch thread, no closed loop); its best val L2 against the grid's 0.5819073791503906."""
import json
import sys

import torch

from tinyvla.pipeline import build_run_config, run_training

torch.set_num_threads(1)
run = build_run_config("vla_adapter", "pretrained", {"policy.gate": "none", "train.steps": "600",
                                                    "train.eval_every": "100", "train.seed": 0, "train.device": "auto",
                                                    "train.progress": False})
_, result = run_training(run, None)
grid = [json.loads(line) for line in open(sys.argv[1])]
kept = next(r for r in grid if r["config"] == "no gate" and r["seed"] == 0)
print(json.dumps({"rerun_val_l2": result.best_val_l2, "grid_val_l2": kept["val_l2"],
                  "identical": result.best_val_l2 == kept["val_l2"], "train_seconds": result.train_seconds}))
