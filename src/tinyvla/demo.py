"""`tinyvla demo`: the toy task end to end — data, TinyVLA + baselines, evaluation, table and plot."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tinyvla.data.toy import TASK_NAME
from tinyvla.eval.toy import RandomActionPolicy, closed_loop, random_offline_l2
from tinyvla.pipeline import build_run_config, load_splits, run_training
from tinyvla.policies.base import Policy

# The seed document's figures (TinyVLA deep dive, "Validation").
SEED_FIGURES = {"random": 1.4, "vision_only": 0.5, "language_only": 0.8, "tinyvla": 0.05}

# (row name, preset, overrides). Step budgets are sized so the whole demo runs in < 10 min on 2 CPU cores;
# the baselines converge to their analytic optimum well within theirs (see docs/toy-task.md).
ROWS: list[tuple[str, str, dict]] = [
    ("tinyvla", "tiny", {}),
    ("vision_only", "tiny", {"policy.input_ablation": "constant_instruction", "train.steps": 600}),
    ("language_only", "tiny", {"policy.input_ablation": "blank_image", "train.steps": 300}),
    ("tinyvla_seed_fusion", "seed", {"train.steps": 600}),
]


def run_demo(out: str | Path = "runs/demo", *, seed: int = 0, episodes: int = 100, quick: bool = False,
             device: str = "auto") -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = {"data.seed": seed, "train.seed": seed, "train.device": device}
    if quick:  # a smoke run of the same pipeline (tests, CI): tiny data, tiny models, few steps
        common.update({"data.num_train": 512, "data.num_val": 128, "train.steps": 30, "train.eval_every": 15,
                       "policy.vision_layers": 1, "policy.lang_layers": 1, "train.progress": False})
        episodes = min(episodes, 10)
    base = build_run_config("tinyvla", "tiny", common)
    t0 = time.perf_counter()
    splits = load_splits(base.data)
    splits[0].save(out / "data" / "train")
    splits[1].save(out / "data" / "val")
    print(f"data: {len(splits[0])} train / {len(splits[1])} val frames ({time.perf_counter() - t0:.1f} s) -> {out / 'data'}")
    val = splits[1]
    rows, curves = [], {}
    for distribution, name in (("normal", "random"), ("uniform", "random_uniform")):
        cl = closed_loop(RandomActionPolicy(val.action_dim, distribution, seed), episodes, seed=10_000 + seed)
        rows.append(_row(name, random_offline_l2(val, distribution, seed), 0.0, 0, cl, distribution=distribution))
    for name, preset, overrides in ROWS:
        run = build_run_config("tinyvla", preset, {**common, **({} if quick else overrides)})
        policy, result = run_training(run, out / name, desc=name, splits=splits)
        best = Policy.from_pretrained(out / name / "best", device=policy.device)
        cl = closed_loop(best, episodes, seed=10_000 + seed)
        rows.append(_row(name, result.best_val_l2, result.train_seconds, policy.num_parameters(), cl,
                         steps=result.steps, samples=result.samples, checkpoint=str(out / name / "best")))
        curves[name] = result.history
        print(f"{name}: val L2 {result.best_val_l2:.4f}, success {cl.success_rate:.0%}, {result.train_seconds:.0f} s")
    results = {"task": TASK_NAME, "seed": seed, "quick": quick, "episodes": episodes, "rows": rows,
               "seed_figures": SEED_FIGURES, "total_seconds": round(time.perf_counter() - t0, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(results_markdown(results))
    plot_curves(curves, out / "curves.png")
    print(results_markdown(results))
    return results


def _row(name: str, val_l2: float, seconds: float, params: int, cl, **extra) -> dict:
    lo, hi = cl.confidence_interval()
    return {"policy": name, "val_l2": round(val_l2, 4), "train_seconds": round(seconds, 1), "params": params,
            "success_rate": round(cl.success_rate, 4), "success_ci95": [round(lo, 4), round(hi, 4)], **extra}


def results_markdown(results: dict) -> str:
    lines = [
        f"Task `{results['task']}`, seed {results['seed']}, closed loop over {results['episodes']} episodes.",
        "",
        "| policy | val L2 | seed's figure | closed-loop success (95% CI) | train s | params |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        fig = results["seed_figures"].get(r["policy"])
        lo, hi = r["success_ci95"]
        lines.append(
            f"| {r['policy']} | {r['val_l2']:.4f} | {'~' + str(fig) if fig is not None else '-'} | "
            f"{r['success_rate']:.0%} ({lo:.0%}-{hi:.0%}) | {r['train_seconds']:.0f} | {r['params']:,} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, hist in curves.items():
        ax.plot([h["train_seconds"] for h in hist], [h["val_l2"] for h in hist], marker="o", ms=3, label=name)
    ax.axhline(0.05, color="grey", ls="--", lw=1, label="target 0.05")
    ax.set_yscale("log")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("validation L2 (mean action error)")
    ax.set_title("toy_reach: validation L2 vs training time")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
