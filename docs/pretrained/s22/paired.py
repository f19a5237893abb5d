"""The paired columns of docs/pretrained.md's gate and condition tables: per row, val L2 minus the reference row's on
the same seed, mean and 95% t-interval over the seeds. Success and its Wilson interval are in each grid's ablation.md.
Run from the repository root after gate.sh and cond.sh."""
import json
import statistics
from pathlib import Path

T975 = {2: 4.303, 3: 3.182, 4: 2.776}  # Student t, 97.5% quantile, by degrees of freedom (seeds - 1)


def load(*paths: str) -> dict:
    return {(r["config"], r["seed"]): r["val_l2"] for p in paths
            for r in map(json.loads, Path(p).read_text().splitlines())}


def paired(runs: dict, row: str, ref: str) -> str:
    d = [runs[row, s] - runs[ref, s] for (c, s) in sorted(runs) if c == row and (ref, s) in runs]
    m = statistics.fmean(d)
    h = T975[len(d) - 1] * statistics.stdev(d) / len(d) ** 0.5
    return f"{row} minus {ref}: {m:+.3f} ({m - h:+.3f} to {m + h:+.3f}); per seed {[round(x, 4) for x in d]}"


gate = load("runs/s22/vla_gate_pre/runs.jsonl")
for row in ("no gate", "tanh(g) on AQ", "tanh(g) on both"):
    print(paired(gate, row, "tanh(g) on Raw"))
print(paired(gate, "no gate", "tanh(g) on AQ"))
# Row 1 of the condition grid ("both, all layers", no gate) is the gate grid's "no gate" run.
cond = {**load("runs/s22/vla_cond_pre/runs.jsonl"), **{("both, all layers", s): v for (c, s), v in gate.items()
                                                          if c == "no gate"}}
for row in ("AQ, all layers", "Raw, all layers"):
    print(paired(cond, row, "both, all layers"))
print(paired(cond, "Raw, all layers", "AQ, all layers"))
