"""Session 24: the condition grid with its single-layer rows, pretrained backbone, 3 seeds on one machine. Per row:
val L2 per seed, mean +- std, and the differences paired by seed (mean and 95% t-interval) to "both, all layers" and
to the same condition read from all layers. Run from the repository root after docs/pretrained/s24/cond.sh.
Row 1 ("both, all layers", no gate) is the gate grid's "no gate" run (session 22, the same configuration)."""
import json
import statistics
from pathlib import Path

T975 = {1: 12.706, 2: 4.303, 3: 3.182}  # Student t, 97.5% quantile, by degrees of freedom (seeds - 1)

def load(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


runs = {("both, all layers", r["seed"]): r for r in load("runs/s22/vla_gate_pre/runs.jsonl") if r["config"] == "no gate"}
runs.update({(r["config"], r["seed"]): r for r in load("runs/s22/vla_cond_pre/runs.jsonl")})


def paired(row: str, ref: str) -> str:
    d = [runs[row, s]["val_l2"] - runs[ref, s]["val_l2"] for s in range(3) if (row, s) in runs and (ref, s) in runs]
    if len(d) < 2:
        return f"minus {ref}: {len(d)} paired seed(s)"
    m, h = statistics.fmean(d), T975[len(d) - 1] * statistics.stdev(d) / len(d) ** 0.5
    return f"minus {ref}: {m:+.3f} ({m - h:+.3f} to {m + h:+.3f}), per seed {[round(x, 4) for x in d]}"


for row, ref in (("both, all layers", None), ("AQ, all layers", None), ("Raw, all layers", None),
                 ("AQ, last layer", "AQ, all layers"), ("Raw, middle layer", "Raw, all layers")):
    seeds = [s for s in range(3) if (row, s) in runs]
    if not seeds:
        print(f"{row}: not run yet")
        continue
    v = [runs[row, s]["val_l2"] for s in seeds]
    k = sum(runs[row, s]["successes"] if "successes" in runs[row, s] else
            round(runs[row, s]["success_rate"] * runs[row, s].get("episodes", 50)) for s in seeds)
    n = sum(runs[row, s].get("episodes", 50) for s in seeds)
    share = [runs[row, s]["mass_raw"] for s in seeds if "mass_raw" in runs[row, s]]
    print(f"{row}: val L2 {' / '.join(f'{x:.4f}' for x in v)}, {statistics.fmean(v):.4f} +- "
          f"{statistics.stdev(v) if len(v) > 1 else 0:.4f}; success {k}/{n}; Raw share "
          f"{statistics.fmean(share) if share else '-'}; train s {[round(runs[row, s]['train_seconds']) for s in seeds]}")
    if row != "both, all layers":
        print("   ", paired(row, "both, all layers"))
    if ref:
        print("   ", paired(row, ref))
