"""`tinyvla reproduce NAME`: every table the docs show, from nothing, in one command.

`RECIPES` names each result (`tinyvla reproduce --list` prints them with their cost on a 2-core CPU):
the toy demo table, the ablation grids, the speed and serving tables, the Meta-World benchmarks and LIBERO.
Every recipe writes `table.md` + `table.json` (and its own plots) into the output folder and keeps
what is finished, so the same command resumes after a crash.

Meta-World (`mt10`, `mt50`): generates the demonstrations, trains the policy for each seed, trains the same recipe on blank images
(the blind-trained baseline), evaluates every checkpoint with the wrong-scene blind control, and
writes a report folder: report.md / report.json (per seed, mean with Wilson CIs over all episodes,
per task, by difficulty, the reference table, wall time per stage). Each stage's output is kept, so a
crashed or interrupted run picks up where it stopped (finished stages are skipped, training resumes).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyvla.errors import ConfigError
from tinyvla.eval.results import ClosedLoopResult
from tinyvla.report import try_write_report

BENCHMARKS = {"mt10": "mt10", "mt50": "mt50"}


@dataclass
class Budget:
    """One recipe: the data, the training run (dotted overrides on `preset`) and the evaluation."""

    data: dict[str, Any]
    train: dict[str, Any]
    preset: str = "metaworld"
    eval_episodes: int = 20
    eval_max_steps: int | None = None  # LIBERO: None = the suite's limit
    device: str = "cpu"
    note: str = ""
    # Per policy type, what changes in `train` (None drops a key the other policy does not have): the
    # recipe above is TinyVLA's; a VLA-Adapter step through a LoRA'd backbone costs far more on a CPU.
    policy_train: dict[str, dict[str, Any]] = field(default_factory=dict)

    def train_for(self, policy_type: str) -> dict[str, Any]:
        merged = {**self.train, **self.policy_train.get(policy_type, {})}
        return {k: v for k, v in merged.items() if v is not None}


# The smoke budgets' TinyVLA sizes, replaced by VLA-Adapter's (smallest that builds).
_SMOKE_VLA_ADAPTER = {"policy.lang_width": None, "policy.lang_layers": None, "policy.lang_heads": None,
                      "policy.pool_heads": None, "policy.head_hidden": None, "policy.width": 32, "policy.layers": 1,
                      "policy.heads": 2, "policy.policy_width": 32, "policy.policy_heads": 2, "policy.num_queries": 2}


def _frozen_tower_recipe(n_action_steps: int = 4, tower_image_size: int = 0) -> dict[str, dict[str, Any]]:
    """The data and training of the frozen-tower Meta-World budgets (a fresh copy per budget). `n_action_steps` is
    read only when acting (training is the same for any value): how many of each chunk's 8 actions are executed.
    `tower_image_size` (0: the data's 96 px) is the size the frames are resized to before the frozen tower."""
    train = {"train.steps": 6000, "train.batch_size": 64, "train.lr": 1e-3, "train.eval_every": 1000,
             "train.warmup_steps": 200, "policy.state_dropout": 0.5, "policy.chunk_size": 8,
             "policy.n_action_steps": n_action_steps, "policy.head_layers": 3}
    if tower_image_size:
        train["policy.tower_image_size"] = tower_image_size
    return {"data": {"episodes_per_task": 100, "image_size": 96, "camera_pos": "close", "action_noise": 0.1},
            "train": train}


BUDGETS: dict[str, Budget] = {
    # What fits a 2-core laptop CPU in under an hour of generation + training (docs/metaworld.md): the
    # recipe of the best measured run (state dropout 0.5 is what made the camera matter; docs/metaworld/seeing.md).
    "cpu": Budget(
        data={"episodes_per_task": 100, "image_size": 96, "camera_pos": "close", "action_noise": 0.1},
        train={"train.steps": 3000, "train.batch_size": 64, "train.lr": 1e-3, "train.augment_shift": 6,
               "train.augment_color": 0.2, "train.eval_every": 500, "train.warmup_steps": 200,
               "policy.state_dropout": 0.5, "train.time_budget_s": 2700},
        note="2-core CPU, ~1 h of generation + training per seed",
    ),
    # One GPU: more demonstrations, a longer run, a bigger batch.
    "gpu": Budget(
        data={"episodes_per_task": 100, "image_size": 96, "camera_pos": "close", "action_noise": 0.1},
        train={"train.steps": 20000, "train.batch_size": 256, "train.lr": 1e-3, "train.augment_shift": 6,
               "train.augment_color": 0.2, "train.eval_every": 2000, "train.warmup_steps": 500,
               "policy.state_dropout": 0.5,
               "train.time_budget_s": 1800},
        device="cuda", note="one GPU (not yet run: no GPU was lent to the session that wrote it)",
    ),
    # The best measured CPU recipe (docs/metaworld.md): the packaged pretrained towers, frozen, their features
    # computed once and cached (so no image augmentation), chunk 8 executed 4 at a time, state dropout 0.5.
    "cpu_pretrained": Budget(
        **_frozen_tower_recipe(), preset="pretrained",
        note="2-core CPU shared by 3-6 jobs: ~40-50 min of tower features once, ~30 min of training per seed (alone, "
             "cpu_small's same stages took 7 and 5 min); pip install 'tinyvla[pretrained]'",
    ),
    # The Meta-World issue's CPU class (<= 10M parameters, generation + training within an hour on 2 cores):
    # cpu_pretrained's recipe with only the vision tower pretrained (EfficientNet-Lite0, frozen, features cached)
    # and a small text encoder trained from scratch instead of MiniLM: 7.7M parameters instead of 30.8M. The whole
    # chunk of 8 is executed before planning again (4 of 8 scored the same in session 19). The tower sees the 96-px
    # frames resized to 128 px: 4x4 feature cells instead of 3x3 (session 21: VLA-Adapter +4.9 points over 3 seeds;
    # session 23: TinyVLA's 3 seeds; docs/metaworld/seeing.md), for ~14 more minutes of tower features once.
    "cpu_small": Budget(
        **_frozen_tower_recipe(n_action_steps=8, tower_image_size=128), preset="pretrained_vision",
        policy_train={"vla_adapter": {"policy.head_layers": None}},  # VLA-Adapter's own `pretrained_vision` (4.9M)
        note="2-core CPU, alone (sessions 19-23's machine): 10 min of generation and 24 min of tower features once, "
             "then per seed 14 min (TinyVLA) or 23 min (VLA-Adapter) of training and 13 min of evaluation with the "
             "blind control (26 min with --eval-episodes 50) (docs/metaworld.md); mt50 with --episodes-per-task 50 (at 100 "
             "the frames + tower features would take ~26 GB): 27 min of demos and 74 min of tower features once, 16 min of training; "
             "pip install 'tinyvla[pretrained]'",
    ),
    # Seconds, for tests and to check an installation: the whole pipeline at toy scale.
    "smoke": Budget(
        data={"episodes_per_task": 2, "image_size": 32, "camera_pos": "close", "action_noise": 0.1, "max_steps": 60},
        train={"train.steps": 4, "train.batch_size": 8, "train.eval_every": 2, "train.warmup_steps": 1,
               "policy.vision_width": 32, "policy.lang_width": 32, "policy.lang_layers": 1, "policy.lang_heads": 2,
               "policy.pool_heads": 2, "policy.head_hidden": 32, "policy.conv_channels": [8, 8, 8, 8],
               "train.progress": False},
        policy_train={"vla_adapter": _SMOKE_VLA_ADAPTER},
        eval_episodes=2,
    ),
}

TABLE_BUDGETS = ("cpu", "gpu", "smoke")  # the budgets the docs' other tables (toy, grids, speed) have; the rest are Meta-World's

# Reference points (other data, budgets and hardware; not like for like), from the issue / metaworld-anchors.md.
REFERENCES = [
    ("SmolVLA 0.45B (50 demos/task, MT50 model, 512 px, GPU)", "MT50 57.3% (easy 82.5 / medium 41.8 / hard 45.0 / "
     "very hard 60.0); ~71% weighted to MT10's mix"),
    ("Diffusion Policy, image (DP3 paper; 10 demos, one model per task, 128 px)", "67.1% mean over the MT10 tasks"),
    ("BAKU ~10M (multi-task, 84 px, no robot state)", "~79% on its 30 tasks"),
    ("TinyVLA (Wen et al., 1.3B)", "MT50 31.6%"),
]


@dataclass
class ReproduceConfig:
    benchmark: str = "mt10"
    budget: str = "cpu"
    seeds: list[int] | None = None  # None: default_seeds(benchmark, budget), the docs' seeds for this result
    policy_type: str = "tinyvla"
    blank_baseline: bool = True  # also train the recipe on blank images (seed = the first seed)
    workers: int = 2
    num_threads: int = 0  # torch threads for training (0 = torch's default)
    eval_episodes: int | None = None  # per task (LIBERO: initial states per task); None = the budget's
    episodes_per_task: int | None = None  # demonstrations per task; None = the budget's (MT50 on 24 GiB: 50)
    device: str = ""  # "" = the budget's
    overrides: dict[str, Any] = field(default_factory=dict)  # extra dotted overrides for training

    def __post_init__(self):
        if self.seeds is None:
            self.seeds = default_seeds(self.benchmark, self.budget)

    def data_for(self, budget: Budget) -> dict[str, Any]:
        """The budget's data settings, with the user's demonstrations per task."""
        return {**budget.data, **({"episodes_per_task": self.episodes_per_task} if self.episodes_per_task else {})}

    @property
    def is_libero(self) -> bool:
        return self.benchmark in LIBERO_BENCHMARKS

    def validate(self) -> None:
        if self.benchmark not in BENCHMARKS and not self.is_libero:
            raise ConfigError(f"unknown benchmark {self.benchmark!r}; choose from "
                              f"{', '.join([*BENCHMARKS, *LIBERO_BENCHMARKS])}")
        budgets, where = (LIBERO_BUDGETS, " for LIBERO") if self.is_libero else (BUDGETS, "")
        if self.budget not in budgets:
            raise ConfigError(f"unknown budget {self.budget!r}{where}; choose from {', '.join(budgets)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("--seeds needs one or more distinct seeds")
        if self.eval_episodes is not None and self.eval_episodes < 1:
            raise ConfigError("--eval-episodes must be >= 1")
        if self.episodes_per_task is not None and self.episodes_per_task < 1:
            raise ConfigError("--episodes-per-task must be >= 1")
        # Before an hour of demonstrations: the recipe (with the user's overrides) must build for this policy.
        error = _recipe_error(budgets[self.budget], self.policy_type, self.overrides)
        if error:
            fits = [n for n, b in budgets.items() if not _recipe_error(b, self.policy_type, self.overrides)]
            raise ConfigError(f"budget {self.budget!r} has no {self.policy_type} recipe ({error}); "
                              f"budgets with one: {', '.join(fits) or 'none'}")


def _recipe_error(budget: Budget, policy_type: str, overrides: dict) -> str:
    from tinyvla.pipeline import build_run_config

    try:
        build_run_config(policy_type, budget.preset, {**budget.train_for(policy_type), **overrides})
    except ConfigError as e:
        return str(e).split("; valid:")[0]
    return ""


def _eval_plan(cfg: ReproduceConfig, budget: Budget, run_dir: Path) -> tuple[int, Path, str]:
    """(episodes per task, folder of the run's evaluation, its name in times.json): the budget's count goes to
    eval/, another count to eval_<n>ep/, so that a rerun asking for more episodes evaluates again and keeps the first."""
    n = cfg.eval_episodes or budget.eval_episodes
    suffix = "" if n == budget.eval_episodes else f"_{n}ep"
    return n, run_dir / f"eval{suffix}", f"eval_{run_dir.name}{suffix}"


def _stage(times: dict, name: str, fn):
    t0 = time.perf_counter()
    out = fn()
    times[name] = round(time.perf_counter() - t0, 1)
    return out


def reproduce(cfg: ReproduceConfig, out: str | Path, progress: bool = True) -> dict:
    """Run every stage into `out` and return the report (also written to out/report.json and .md). LIBERO
    benchmarks go through `reproduce_libero`."""
    from tinyvla.data.metaworld import GenerationConfig, generate_metaworld

    cfg.validate()
    if cfg.is_libero:
        return reproduce_libero(cfg, out, progress)
    budget = BUDGETS[cfg.budget]
    runs = [(f"seed{s}", s, "none") for s in cfg.seeds]
    if cfg.blank_baseline:
        runs.append((f"blank_seed{cfg.seeds[0]}", cfg.seeds[0], "blank_image"))
    gen = GenerationConfig(tasks=BENCHMARKS[cfg.benchmark], workers=cfg.workers, **cfg.data_for(budget))
    return _run_stages(
        cfg, budget, Path(out), lambda data_dir: generate_metaworld(data_dir, gen, progress=progress), runs,
        lambda data_dir, run_dir, seed, ablation, times: _train_and_eval(cfg, budget, data_dir, run_dir, seed, ablation,
                                                                         times, progress),
        summarize, report_markdown)


def _typed_settings(policy_type: str, preset: str, train: dict) -> dict:
    """Dotted training settings as the config types them, so that `--policy.tower_image_size 128` from the command
    line (the string "128") and a budget's 128 are the same setting; a key the config does not have stays as given."""
    from tinyvla.pipeline import build_run_config

    try:
        run = build_run_config(policy_type, preset, train)
    except ConfigError:
        return train
    typed = {}
    for key, value in train.items():
        obj: Any = run
        for part in key.split("."):
            obj = getattr(obj, part, None)
        typed[key] = value if obj is None else json.loads(json.dumps(obj, default=str))
    return typed


def _check_recipe(cfg: ReproduceConfig, budget: Budget, out: Path) -> None:
    """Kept stages are reused on a rerun, so a rerun into `out` must ask for the same recipe: its data and
    training settings are written to out/recipe.json once and compared on every later call (more seeds are fine)."""
    recipe = json.loads(json.dumps({"benchmark": cfg.benchmark, "budget": cfg.budget, "policy_type": cfg.policy_type,
                                    "preset": budget.preset, "data": cfg.data_for(budget),
                                    "train": {**budget.train_for(cfg.policy_type), **cfg.overrides}}))
    recipe["train"] = _typed_settings(cfg.policy_type, budget.preset, recipe["train"])
    path = out / "recipe.json"
    if path.is_file():
        kept = json.loads(path.read_text())
        what = [f"{k} {kept.get(k)!r} there, {v!r} asked" for k, v in recipe.items() if k != "train" and kept.get(k) != v]
        kept_train = _typed_settings(cfg.policy_type, budget.preset, kept.get("train", {}))
        if train := sorted(k for k in {*kept_train, *recipe["train"]} if kept_train.get(k) != recipe["train"].get(k)):
            what.append(f"training settings {', '.join(train)}")
        if what:
            raise ConfigError(f"{out} holds a run of another recipe ({', '.join(what)}); rerun with its settings or "
                              "pass a new --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recipe, indent=2))


def _run_stages(cfg: ReproduceConfig, budget: Budget, out: Path, generate, runs: list[tuple[str, int, str]],
                train_and_eval, summarize_fn, markdown_fn) -> dict:
    """The benchmark recipes' shared skeleton: generate the data unless it is there, train and evaluate each
    run unless finished, summarize; stage times are kept in out/times.json across resumes."""
    from tinyvla.data.lerobot import is_lerobot_dataset

    _check_recipe(cfg, budget, out)
    times_path = out / "times.json"
    times: dict = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def save_times():
        times_path.write_text(json.dumps(times, indent=2))

    data_dir = out / "data"
    if not is_lerobot_dataset(data_dir):
        _stage(times, "generate", lambda: generate(data_dir))
        save_times()
    results = {}
    for name, seed, ablation in runs:
        results[name] = train_and_eval(data_dir, out / name, seed, ablation, times)
        save_times()
    report = summarize_fn(cfg, budget, results, times)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown_fn(report))
    try_write_report(out)
    return report


def _trained_policy(cfg: ReproduceConfig, budget: Budget, data_dir: Path, run_dir: Path, seed: int, times: dict,
                    progress: bool, extra: dict | None = None):
    """Train the budget's recipe into `run_dir` unless a finished run is there (resuming a crashed one), and
    load its best checkpoint."""
    from tinyvla.pipeline import build_run_config, run_training
    from tinyvla.policies.base import Policy
    from tinyvla.utils import resolve_device

    device = cfg.device or budget.device
    if device == "cuda" and resolve_device("auto").type != "cuda":
        raise ConfigError(f"budget {cfg.budget!r} trains on a GPU and none is available here (try --budget cpu)")
    overrides = {**budget.train_for(cfg.policy_type), "data.path": str(data_dir), "train.seed": seed, "train.device": device,
                 "train.num_threads": cfg.num_threads, **(extra or {}), **cfg.overrides}
    if not (run_dir / "history.json").is_file():  # written when a training run completes
        run = build_run_config(cfg.policy_type, budget.preset, overrides)
        run.train.resume = True  # picks up <run_dir>/last after a crash; "nothing to resume" otherwise
        run.train.progress = run.train.progress and progress
        _stage(times, f"train_{run_dir.name}", lambda: run_training(run, run_dir))
    return Policy.from_pretrained(run_dir / "best", device=resolve_device(device))


def _training_facts(run_dir: Path, seed: int, policy) -> dict:
    """What every run's evaluation report says about the training behind it (from its history.json)."""
    history = json.loads((run_dir / "history.json").read_text())
    return {"checkpoint": str(run_dir / "best"), "train_seed": seed, "best_val_l2": history["best_val_l2"],
            "train_steps": history["steps"], "train_seconds": history["train_seconds"],
            "parameters": policy.num_parameters()}


def _train_and_eval(cfg: ReproduceConfig, budget: Budget, data_dir: Path, run_dir: Path, seed: int, ablation: str,
                    times: dict, progress: bool) -> dict:
    from tinyvla.eval.metaworld import MetaWorldEvalConfig, evaluate_metaworld, write_report

    episodes, eval_dir, stage = _eval_plan(cfg, budget, run_dir)
    results_path = eval_dir / "results.json"
    if results_path.is_file():
        return json.loads(results_path.read_text())
    policy = _trained_policy(cfg, budget, data_dir, run_dir, seed, times, progress, {"policy.input_ablation": ablation})
    ecfg = MetaWorldEvalConfig(tasks=BENCHMARKS[cfg.benchmark], episodes=episodes, seed=0,
                               max_steps=budget.data.get("max_steps", 500), workers=cfg.workers,
                               blind=ablation == "none")  # a blank-trained policy never sees an image
    result = _stage(times, stage, lambda: evaluate_metaworld(policy, ecfg, eval_dir, progress=progress))
    report = {**_training_facts(run_dir, seed, policy), "episodes_per_task": ecfg.episodes,
              "max_steps": ecfg.max_steps, "seed": ecfg.seed, "input_ablation": ablation, **result.to_dict()}
    write_report(report, eval_dir, title=f"{cfg.benchmark.upper()} ({run_dir.name})")
    return report


def _pooled(reports: list[dict], key: str = "success_rate") -> dict:
    """Mean over seeds of the per-task mean, and a Wilson CI over every episode of every seed."""
    episodes = sum(r["overall"]["episodes"] for r in reports)
    successes = sum(r["overall"]["successes"] for r in reports)
    lo, hi = ClosedLoopResult(episodes, successes, 0.0).confidence_interval()
    means = [r["mean_success_rate"] for r in reports]
    return {"mean": float(np.mean(means)), "per_seed": means, "std": float(np.std(means)), "episodes": episodes,
            "ci95": [lo, hi]}


def summarize(cfg: ReproduceConfig, budget: Budget, results: dict[str, dict], times: dict) -> dict:
    seeded = [results[f"seed{s}"] for s in cfg.seeds]
    tasks = list(seeded[0]["tasks"])
    per_task = {}
    for t in tasks:
        n = sum(r["tasks"][t]["episodes"] for r in seeded)
        k = sum(r["tasks"][t]["successes"] for r in seeded)
        lo, hi = ClosedLoopResult(n, k, 0.0).confidence_interval()
        blind = [r["tasks"][t]["blind_success"] for r in seeded if "blind_success" in r["tasks"][t]]
        per_task[t] = {"difficulty": seeded[0]["tasks"][t]["difficulty"], "success_rate": k / n, "ci95": [lo, hi],
                       "blind_success": float(np.mean(blind)) if blind else None}
        if blind:
            per_task[t]["vision_dependence"] = 100 * (k / n - per_task[t]["blind_success"])
    groups: dict[str, list[float]] = {}
    for row in per_task.values():
        groups.setdefault(row["difficulty"], []).append(row["success_rate"])
    blind = [r["overall"]["blind_success"] for r in seeded if "blind_success" in r["overall"]]
    sighted = _pooled(seeded)
    report = {
        "benchmark": cfg.benchmark, "budget": cfg.budget, "policy_type": cfg.policy_type, "preset": budget.preset,
        "seeds": cfg.seeds, "budget_note": budget.note, "data": cfg.data_for(budget), "train": {**budget.train_for(cfg.policy_type), **cfg.overrides},
        "eval_episodes_per_task": seeded[0]["episodes_per_task"], "success": sighted, "blind_success": float(np.mean(blind)) if blind else None,
        "vision_dependence": 100 * (sighted["mean"] - float(np.mean(blind))) if blind else None,
        "tasks": per_task, "by_difficulty": {g: float(np.mean(v)) for g, v in groups.items()},
        "runs": {name: {"mean_success_rate": r["mean_success_rate"], "overall": r["overall"],
                        "best_val_l2": r["best_val_l2"], "train_seconds": r["train_seconds"],
                        "train_steps": r["train_steps"], "parameters": r["parameters"]} for name, r in results.items()},
        "times_s": times,
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                     "cpu_count": os.cpu_count(), "device": cfg.device or budget.device},
        "references": REFERENCES,
    }
    blank = [r for name, r in results.items() if name.startswith("blank")]
    if blank:
        report["blank_trained"] = _pooled(blank)
    # None when a stage was not timed by this folder: its data or its first seed's run was there before (a linked
    # data folder, a run copied in), so no wall time of this folder's stages can stand for it.
    first_train = times.get(f"train_seed{cfg.seeds[0]}")
    report["wall_s_train_first_seed"] = first_train
    report["wall_s_generate_plus_train_first_seed"] = (times["generate"] + first_train
                                                       if "generate" in times and first_train is not None else None)
    return report


def _first_seed_time(r: dict) -> str:
    both, train = r.get("wall_s_generate_plus_train_first_seed"), r.get("wall_s_train_first_seed")
    if both is not None:
        return f"generation + training of the first seed: {both / 60:.1f} min."
    generate = r["times_s"].get("generate")
    data = ("the data was there before this run (not generated by it)" if generate is None
            else f"generation {generate / 60:.1f} min")
    if train is None:
        return f"{data}; the first seed was trained before this run (its history.json has the training time)."
    return f"{data}; training of the first seed: {train / 60:.1f} min."


def report_markdown(r: dict) -> str:
    s, pct = r["success"], (lambda x: "-" if x is None else f"{100 * x:.1f}%")
    lines = [f"# {r['benchmark'].upper()} with `tinyvla reproduce` (budget `{r['budget']}`, {r['policy_type']} "
             f"preset `{r['preset']}`)", "",
             f"Seeds {r['seeds']}; data {r['data']}; training {r['train']}; "
             f"{r.get('eval_episodes_per_task', '?')} evaluation episodes per task per seed.", "",
             "| | success (mean over tasks) | 95% CI (all episodes) | per seed |", "|---|---|---|---|",
             f"| sighted | **{pct(s['mean'])}** | {pct(s['ci95'][0])}-{pct(s['ci95'][1])} | "
             f"{', '.join(pct(x) for x in s['per_seed'])} |",
             f"| blind control (another scene's camera, same checkpoints) | {pct(r['blind_success'])} | | |"]
    if "blank_trained" in r:
        b = r["blank_trained"]
        lines.append(f"| trained and evaluated on blank images | {pct(b['mean'])} | {pct(b['ci95'][0])}-"
                     f"{pct(b['ci95'][1])} | {', '.join(pct(x) for x in b['per_seed'])} |")
    if r["vision_dependence"] is not None:
        lines += ["", f"**Vision dependence** (success - blind control): **{r['vision_dependence']:+.1f} points**."]
    lines += ["", "| task | difficulty | success | 95% CI | blind control | vision dependence |", "|---|---|---|---|---|---|"]
    for t, row in r["tasks"].items():
        vd = row.get("vision_dependence")
        lines.append(f"| {t} | {row['difficulty']} | {pct(row['success_rate'])} | {pct(row['ci95'][0])}-"
                     f"{pct(row['ci95'][1])} | {pct(row['blind_success'])} | "
                     f"{'-' if vd is None else f'{vd:+.0f}'} |")
    lines += ["", "By difficulty: " + ", ".join(f"{g} {pct(v)}" for g, v in r["by_difficulty"].items()), "",
              "Wall time per stage (s): " + ", ".join(f"{k} {v}" for k, v in r["times_s"].items()) + "; "
              + _first_seed_time(r),
              f"Hardware: {r['hardware']}.", "", "Reference points (other data, budgets and hardware):", ""]
    lines += [f"- {name}: {result}" for name, result in r["references"]]
    return "\n".join(lines) + "\n"


# ---- LIBERO ------------------------------------------------------------------------------------
# suites the scripted experts cover (>= 90% on every task)
LIBERO_BENCHMARKS = {"libero_object": "object", "libero_spatial": "spatial", "libero_goal": "goal",
                     "libero_10": "10"}

# Demonstrations come from initial states 0 .. n-1 of each task (n = episodes_per_task) and the policy is
# evaluated on the next `eval_episodes` of the others (n .. 49): fixed states of the published protocol that
# no demonstration started from.
LIBERO_BUDGETS: dict[str, Budget] = {
    # The frozen-tower recipe of Meta-World's cpu_pretrained budget on 25 demos per task at 128 px.
    "cpu": Budget(
        data={"episodes_per_task": 25, "image_size": 128},
        train={"train.steps": 5000, "train.batch_size": 64, "train.lr": 1e-3, "train.eval_every": 1000,
               "train.warmup_steps": 200, "policy.state_dropout": 0.5, "policy.chunk_size": 8,
               "policy.n_action_steps": 4, "policy.head_layers": 3},
        preset="pretrained", eval_episodes=10,
        note="2-core CPU (docs/libero.md): ~1 h of demonstrations (2 workers), ~30 min of tower features once, "
             "~30 min of training and ~20 min of evaluation (the 10 states after those the demos came from, blind "
             "control) per seed; "
             "pip install 'tinyvla[pretrained]'",
        # VLA-Adapter: every step runs MiniLM (LoRA) forward and backward, ~2.5 s at batch 32 on one core.
        policy_train={"vla_adapter": {"policy.head_layers": None, "train.steps": 2000, "train.batch_size": 32,
                                      "train.lr": 5e-4, "train.warmup_steps": 100, "train.eval_every": 500}},
    ),
    "gpu": Budget(
        data={"episodes_per_task": 25, "image_size": 128},
        train={"train.steps": 20000, "train.batch_size": 256, "train.lr": 1e-3, "train.eval_every": 2000,
               "train.warmup_steps": 500, "policy.state_dropout": 0.5, "policy.chunk_size": 8,
               "policy.n_action_steps": 4, "policy.head_layers": 3},
        preset="pretrained", eval_episodes=25, device="cuda",
        note="one GPU (not yet run: no GPU was lent to the session that wrote it)",
        policy_train={"vla_adapter": {"policy.head_layers": None, "train.lr": 5e-4}},
    ),
    # Seconds to minutes, to check an installation: one task, two demos, a short episode.
    "smoke": Budget(
        data={"episodes_per_task": 2, "image_size": 32, "tasks": "0"},
        train={"train.steps": 4, "train.batch_size": 8, "train.eval_every": 2, "train.warmup_steps": 1,
               "policy.vision_width": 32, "policy.lang_width": 32, "policy.lang_layers": 1, "policy.lang_heads": 2,
               "policy.pool_heads": 2, "policy.head_hidden": 32, "policy.conv_channels": [8, 8, 8, 8],
               "train.progress": False},
        policy_train={"vla_adapter": _SMOKE_VLA_ADAPTER},
        preset="metaworld", eval_episodes=1, eval_max_steps=8,
    ),
}

# The published LIBERO table as issue 17 quotes it (success %; each method's own human demonstrations, all 50
# initial states, GPUs: not like for like). (spatial, object, goal, long, average); None: not quoted per suite.
LIBERO_REFERENCES = {
    "VLA-Adapter (0.5B, Qwen2.5)": (97.8, 99.2, 97.2, 95.0, 97.3),
    "VLA-Adapter-Pro": (None, None, None, None, 98.5),
    "OpenVLA-OFT (7B)": (None, None, None, None, 97.1),
    "SmolVLA (0.45B)": (90.0, 96.0, 92.0, 71.0, 87.3),
    "Octo": (None, None, None, None, 75.1),
    "Diffusion Policy": (None, None, None, None, 72.4),
}


def reproduce_libero(cfg: ReproduceConfig, out: str | Path, progress: bool = True) -> dict:
    """LIBERO: scripted demos, training per seed, evaluation on the held-out initial states with the blind
    control; report.md / report.json in `out` beside the published table. Resumes like `reproduce`."""
    from tinyvla.data.libero import LiberoGenerationConfig, generate_libero

    cfg.validate()
    if not cfg.is_libero:
        raise ConfigError(f"unknown LIBERO benchmark {cfg.benchmark!r}; choose from {', '.join(LIBERO_BENCHMARKS)}")
    budget, suite = LIBERO_BUDGETS[cfg.budget], LIBERO_BENCHMARKS[cfg.benchmark]
    gen = LiberoGenerationConfig(suite=suite, workers=cfg.workers, **cfg.data_for(budget))
    return _run_stages(
        cfg, budget, Path(out), lambda data_dir: generate_libero(data_dir, gen, progress=progress),
        [(f"seed{s}", s, "none") for s in cfg.seeds],
        lambda data_dir, run_dir, seed, _, times: _train_and_eval_libero(cfg, budget, suite, data_dir, run_dir, seed,
                                                                         times, progress),
        summarize_libero, libero_report_markdown)


def _train_and_eval_libero(cfg: ReproduceConfig, budget: Budget, suite: str, data_dir: Path, run_dir: Path, seed: int,
                           times: dict, progress: bool) -> dict:
    from tinyvla.data.libero import first_unseen_state
    from tinyvla.eval.libero import LiberoEvalConfig, evaluate_libero, markdown
    from tinyvla.eval.results import write_results

    episodes, eval_dir, stage = _eval_plan(cfg, budget, run_dir)
    results_path = eval_dir / "results.json"
    if results_path.is_file():
        return json.loads(results_path.read_text())
    policy = _trained_policy(cfg, budget, data_dir, run_dir, seed, times, progress)
    # demos came from initial states 0 .. first-1 (past episodes_per_task where the expert failed some)
    first = first_unseen_state(data_dir)
    ecfg = LiberoEvalConfig(suite=suite, tasks=budget.data.get("tasks", "all"),
                            init_states=f"{first}-{min(49, first + episodes - 1)}", workers=cfg.workers,
                            max_steps=budget.eval_max_steps, videos=1)
    result = _stage(times, stage, lambda: evaluate_libero(policy, ecfg, eval_dir, progress=progress))
    report = {**_training_facts(run_dir, seed, policy), **result}
    write_results(eval_dir, report, markdown(report))
    return report


def summarize_libero(cfg: ReproduceConfig, budget: Budget, results: dict[str, dict], times: dict) -> dict:
    seeded = list(results.values())
    per_task = {}
    for t, first in seeded[0]["tasks"].items():
        n = sum(r["tasks"][t]["episodes"] for r in seeded)
        k = sum(r["tasks"][t]["successes"] for r in seeded)
        lo, hi = ClosedLoopResult(n, k, 0.0).confidence_interval()
        blind = float(np.mean([r["tasks"][t]["blind_success"] for r in seeded]))
        per_task[t] = {"instruction": first["instruction"], "success_rate": k / n, "ci95": [lo, hi],
                       "blind_success": blind, "vision_dependence": 100 * (k / n - blind)}
    sighted = _pooled(seeded)
    blind = float(np.mean([r["overall"]["blind_success"] for r in seeded]))
    return {"benchmark": cfg.benchmark, "budget": cfg.budget, "policy_type": cfg.policy_type, "preset": budget.preset,
            "seeds": cfg.seeds, "budget_note": budget.note, "data": cfg.data_for(budget),
            "train": {**budget.train_for(cfg.policy_type), **cfg.overrides}, "init_states": seeded[0]["init_states"],
            "demo_states": f"0-{int(seeded[0]['init_states'].split('-')[0]) - 1}",
            "success": sighted, "blind_success": blind, "vision_dependence": 100 * (sighted["mean"] - blind),
            "tasks": per_task, "episodes_per_minute": [r["episodes_per_minute"] for r in seeded],
            "runs": {name: {"mean_success_rate": r["mean_success_rate"], "overall": r["overall"],
                            "best_val_l2": r["best_val_l2"], "train_seconds": r["train_seconds"],
                            "train_steps": r["train_steps"], "parameters": r["parameters"]}
                     for name, r in results.items()},
            "times_s": times, "references": LIBERO_REFERENCES,
            "hardware": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                         "cpu_count": os.cpu_count(), "device": cfg.device or budget.device}}


POLICY_LABELS = {"tinyvla": "TinyVLA", "vla_adapter": "VLA-Adapter"}


def libero_report_markdown(r: dict) -> str:
    s, pct = r["success"], (lambda x: f"{100 * x:.1f}%")
    column = ("libero_spatial", "libero_object", "libero_goal", "libero_10").index(f"libero_{r['benchmark'][7:]}")
    params = max(run["parameters"] for run in r["runs"].values())
    lines = [f"# {r['benchmark']} with `tinyvla reproduce` (budget `{r['budget']}`, {r['policy_type']} preset "
             f"`{r['preset']}`)", "",
             f"Seeds {r['seeds']}; demonstrations {r['data']} (from initial states "
             f"{r.get('demo_states', '0-' + str(r['data']['episodes_per_task'] - 1))} of each task: the expert's "
             f"successes in order); evaluated on initial states {r['init_states']} of each task (never seen in training); "
             f"training {r['train']}.", "",
             "| | success (mean over tasks) | 95% CI (all episodes) | per seed |", "|---|---|---|---|",
             f"| sighted | **{pct(s['mean'])}** | {pct(s['ci95'][0])}-{pct(s['ci95'][1])} | "
             f"{', '.join(pct(x) for x in s['per_seed'])} |",
             f"| blind control (another scene's camera, same checkpoints) | {pct(r['blind_success'])} | | |", "",
             f"**Vision dependence** (success - blind control): **{r['vision_dependence']:+.1f} points**.", "",
             "| task | instruction | success | 95% CI | blind control | vision dependence |", "|---|---|---|---|---|---|"]
    for t, row in r["tasks"].items():
        lines.append(f"| {t} | {row['instruction']} | {pct(row['success_rate'])} | {pct(row['ci95'][0])}-"
                     f"{pct(row['ci95'][1])} | {pct(row['blind_success'])} | {row['vision_dependence']:+.0f} |")
    lines += ["", f"Beside the published table ({r['benchmark']}; theirs: human demonstrations, all 50 initial states, "
              "GPUs; not like for like):", "", f"| method | {r['benchmark']} | LIBERO average (4 suites) |",
              "|---|---|---|",
              f"| **{POLICY_LABELS.get(r['policy_type'], r['policy_type'])} `{r['preset']}` (tinyvla), {params / 1e6:.1f}M "
              "parameters, scripted demos, "
              f"this run** | **{pct(s['mean'])}** | - |"]
    lines += [f"| {name} | {'-' if row[column] is None else f'{row[column]:.1f}%'} | {row[4]:.1f}% |"
              for name, row in r["references"].items()]
    lines += ["", "Evaluation throughput: " + ", ".join(f"{x:.1f}" for x in r["episodes_per_minute"])
              + " episodes/min (sighted + blind).",
              "Wall time per stage (s): " + ", ".join(f"{k} {v}" for k, v in r["times_s"].items()) + ".",
              f"Hardware: {r['hardware']}."]
    return "\n".join(lines) + "\n"


# ---- every other table the docs show -------------------------------------------------------------
@dataclass
class Recipe:
    """One result: what it is, what it costs on the 2-core CPU of our docs, where the docs show it."""

    what: str
    cost_cpu: str
    docs: str
    seeds: list[int] = field(default_factory=lambda: [0])


# The VLA grids as the docs' tables were made, per preset: the runs' overrides and closed-loop episodes per run. 600
# steps is what a CPU allows; the scratch grids at small widths (docs/vla-adapter.md); the pretrained backbone
# (`pretrained` preset as it is: MiniLM-L6 with LoRA, frozen EfficientNet-Lite0; docs/pretrained.md, sessions 22 and 24)
# scores its condition grid on 20 episodes to fit the CPU (success does not separate those rows, val L2 does).
VLA_GRID_STEPS = {"train.steps": 600, "train.eval_every": 100}
VLA_GRIDS = {
    "tiny": ({"policy.width": 128, "policy.heads": 4, "policy.vision_width": 96, "policy.vision_layers": 2,
              "policy.vision_heads": 2, **VLA_GRID_STEPS}, {"vla_gate": 50, "vla_conditions": 50}),
    "pretrained": (VLA_GRID_STEPS, {"vla_gate": 50, "vla_conditions": 20}),
}
SMOKE_TRAIN = {"train.steps": 2, "train.eval_every": 1, "data.num_train": 128, "data.num_val": 32,
               "train.progress": False}

RECIPES: dict[str, Recipe] = {
    "toy": Recipe("the demo table: TinyVLA vs random / vision-only / language-only / seed fusion on toy_reach",
                  "~9 min per seed (`make demo`: 536 s, 2 threads)", "docs/toy-task.md"),
    "fusion_head": Recipe("ablation grid: fusion (pool+add, cross-attention) x head (MLP, chunked, discrete)",
                          "6 runs per seed, ~4 min each on one core (estimate)", "docs/toy-task.md",
                          [0, 1, 2]),
    "vla_gate": Recipe("VLA-Adapter's gate ablation (tanh(g) on Raw / none / AQ / both) on the toy task; "
                       "--preset pretrained: on the MiniLM-L6 backbone (docs/pretrained.md)",
                       "4 runs per seed, ~4 min each on one core (measured 240 s); --preset pretrained: ~21 min per run, "
                       "two side by side", "docs/vla-adapter.md", [0, 1, 2]),
    "vla_conditions": Recipe("VLA-Adapter's condition ablation (both / AQ / Raw, all or one layer) on the toy task; "
                             "--preset pretrained: on the MiniLM-L6 backbone (docs/pretrained.md)",
                             "5 runs per seed, ~4 min each on one core (measured 211-242 s); --preset pretrained: "
                             "~16-22 min per run, two side by side", "docs/vla-adapter.md", [0, 1, 2]),
    "towers": Recipe("scratch encoders vs the packaged pretrained towers (frozen) on the toy task",
                     "feature extraction once (tens of minutes) + 2 runs per seed", "docs/pretrained.md", [0, 1, 2]),
    "speed": Recipe("inference latency/throughput per mode (TinyVLA tiny, VLA-Adapter tiny) and training samples/s",
                    "~3 min", "docs/speed.md"),
    "serve": Recipe("`tinyvla serve` latency and throughput for 1 / 8 / 32 clients over HTTP and WebSocket",
                    "~2 min", "docs/serving.md"),
    "mt10": Recipe("Meta-World MT10: expert demos, training, closed-loop success with the blind control",
                   f"--budget cpu_small: {BUDGETS['cpu_small'].note}", "docs/metaworld.md"),
    "mt50": Recipe("Meta-World MT50, as mt10 over all 50 tasks", "several hours per seed", "docs/metaworld.md"),
    "libero_object": Recipe("LIBERO-Object: scripted demos, training, success on held-out initial states with the "
                            "blind control, beside the published table (needs `make setup-libero`)",
                            "~1 h of demos once + ~1 h per seed", "docs/libero.md", [0, 1]),
    "libero_spatial": Recipe("LIBERO-Spatial, as libero_object", "~1 h of demos once + ~1 h per seed",
                             "docs/libero.md", [0, 1]),
    "libero_goal": Recipe("LIBERO-Goal, as libero_object (drawers, knob, push experts)",
                          "28 min of demos + ~20 min of tower features once, then 12 min of training + 18 min of "
                          "evaluation per seed (measured alone)", "docs/libero.md", [0, 1]),
    "libero_10": Recipe("LIBERO-10 (Long), as libero_object (two or three goals in sequence, 520-step episodes)",
                        "~67 min of demos once (253 rollouts, 2 workers) + ~17 min of tower features once, then "
                        "16 min of training + 51 min of evaluation per seed (measured, seed 0; 200 episodes at 3.9 "
                        "episodes/min, partly beside a test run)", "docs/libero.md", [0, 1]),
}


def default_seeds(name: str, budget: str) -> list[int]:
    """The seeds result `name` is shown with in the docs; one for a smoke budget, which only tests an installation."""
    if budget == "smoke" or name not in RECIPES:
        return [0]
    return list(RECIPES[name].seeds)


def list_recipes() -> str:
    lines = []
    for name, r in RECIPES.items():
        lines += [f"{name:15s} {r.what}", f"{'':15s} cost on a 2-core CPU: {r.cost_cpu}; seeds {r.seeds}; shown in {r.docs}"]
    return "\n".join(lines)


def _write_table(out: Path, name: str, markdown: str, data: dict, command: str) -> None:
    """table.md (stamped with the command, date and machine) + table.json, then the run's report.html."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    header = f"<!-- made by `{command}` on {stamp}, {platform.machine()} x{os.cpu_count()} -->\n"
    (out / "table.md").write_text(header + markdown)
    (out / "table.json").write_text(json.dumps({"recipe": name, "command": command, "made": stamp, **data}, indent=2))
    try_write_report(out)


def reproduce_result(name: str, out: str | Path, *, budget: str = "cpu", seeds: list[int] | None = None,
                     workers: int = 2, device: str = "", command: str = "", preset: str = "") -> dict:
    """Run recipe `name` into `out` (kept runs are reused) and write table.md / table.json there. `preset`
    "pretrained": the VLA-Adapter grids on the pretrained backbone (VLA_GRIDS)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown result {name!r}; `tinyvla reproduce --list` shows: {', '.join(RECIPES)}")
    grids = VLA_GRIDS["pretrained"][1]
    if preset and (preset != "pretrained" or name not in grids):
        raise ConfigError(f"--preset {preset} does not apply to {name}: only --preset pretrained, for "
                          f"{' and '.join(grids)} (the other results run the preset of their docs)")
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    seeds = list(seeds or default_seeds(name, budget))
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds needs distinct seeds")
    if budget not in TABLE_BUDGETS:
        raise ConfigError(f"budget {budget} is a Meta-World recipe (mt10, mt50); use {', '.join(TABLE_BUDGETS[:-1])} "
                          f"or {TABLE_BUDGETS[-1]}")
    device = device or ("cuda" if budget == "gpu" else "cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = command or (f"tinyvla reproduce {name} --budget {budget} --seeds {' '.join(map(str, seeds))}"
                          + (f" --preset {preset}" if preset else ""))
    smoke = budget == "smoke"
    if name == "toy":
        return _reproduce_toy(out, seeds, smoke, device, command)
    if name in ("fusion_head", "vla_gate", "vla_conditions", "towers"):
        return _reproduce_grid(name, out, seeds, smoke, device, workers, command, preset)
    if name == "speed":
        return _reproduce_speed(out, smoke, device, command)
    if name == "serve":
        return _reproduce_serve(out, smoke, device, command)
    raise ConfigError(f"{name} runs through reproduce() (tinyvla reproduce {name})")  # mt10 / mt50


def _reproduce_toy(out: Path, seeds: list[int], smoke: bool, device: str, command: str) -> dict:
    from tinyvla.demo import results_markdown, run_demo

    per_seed = {}
    for seed in seeds:
        seed_dir = out / f"seed{seed}"
        done = seed_dir / "results.json"
        per_seed[seed] = (json.loads(done.read_text()) if done.is_file()
                          else run_demo(seed_dir, seed=seed, episodes=100, quick=smoke, device=device))
    if len(seeds) == 1:
        md = results_markdown(per_seed[seeds[0]])
    else:  # mean +- std of val L2 over seeds, success pooled over every episode with its Wilson CI
        lines = [f"Task toy_reach, {len(seeds)} seeds {seeds}: val L2 mean ± std; closed-loop success pooled over "
                 "all episodes (95% Wilson CI).", "", "| policy | val L2 | closed-loop success (95% CI) | params |",
                 "|---|---|---|---|"]
        for i, row in enumerate(per_seed[seeds[0]]["rows"]):
            rows = [per_seed[s]["rows"][i] for s in seeds]
            l2 = [r["val_l2"] for r in rows]
            n = sum(per_seed[s]["episodes"] for s in seeds)
            k = sum(round(r["success_rate"] * per_seed[s]["episodes"]) for r, s in zip(rows, seeds))
            lo, hi = ClosedLoopResult(n, k, 0.0).confidence_interval()
            lines.append(f"| {row['policy']} | {np.mean(l2):.4f} ± {np.std(l2):.4f} | {k / n:.0%} ({lo:.0%}-{hi:.0%}) "
                         f"| {row['params']:,} |")
        md = "\n".join(lines) + "\n"
    _write_table(out, "toy", md, {"seeds": seeds, "per_seed": {str(s): r for s, r in per_seed.items()}}, command)
    return {"table": md, "out": str(out)}


def _reproduce_grid(name: str, out: Path, seeds: list[int], smoke: bool, device: str, workers: int,
                    command: str, preset: str = "") -> dict:
    from tinyvla.ablate import ablation_markdown, run_ablation

    extra: dict[str, Any] = {}
    episodes = 100
    if name in ("vla_gate", "vla_conditions"):
        overrides, grid_episodes = VLA_GRIDS[preset or "tiny"]
        extra, episodes = dict(overrides), grid_episodes[name]
        if name == "vla_conditions":
            extra["policy.gate"] = "none"  # the conditions grid compares sources without a gate
    if smoke:
        extra.update(SMOKE_TRAIN)
        episodes = 2
    results = run_ablation(name, seeds, out, episodes=episodes, device=device, workers=workers, extra=extra,
                           preset=preset or "tiny")
    md = ablation_markdown(results)
    _write_table(out, name, md, {"seeds": seeds, "extra_overrides": extra, "rows": results["rows"]}, command)
    return {"table": md, "out": str(out)}


def _reproduce_speed(out: Path, smoke: bool, device: str, command: str) -> dict:
    from tinyvla.bench import infer_benchmark, train_benchmark

    calls, seconds, batch = (5, 2.0, 8) if smoke else (200, 30.0, 64)
    rows = {}
    for label, policy_type in (("tinyvla tiny", "tinyvla"), ("vla_adapter tiny", "vla_adapter")):
        path = out / f"infer_{policy_type}.json"
        if not path.is_file():
            r = infer_benchmark(preset="tiny", policy_type=policy_type, device=device, calls=calls,
                                batch_size=batch)
            path.write_text(json.dumps(r, indent=2))
        rows[label] = json.loads(path.read_text())
    path = out / "train_tinyvla.json"
    if not path.is_file():
        path.write_text(json.dumps(train_benchmark(preset="tiny", seconds=seconds, device=device), indent=2))
    train = json.loads(path.read_text())
    lines = [f"Inference, random weights at the preset's shape, {rows['tinyvla tiny']['threads']} torch thread(s), "
             f"device {rows['tinyvla tiny']['device']}: batch-1 `predict_action_chunk` (p50 / p99 over {calls} calls) "
             f"and batch-{batch} throughput, per mode.", "",
             f"| policy | mode | batch-1 p50 | p99 | chunks/s (batch {batch}) | max error vs eager |", "|---|---|---|---|---|---|"]
    for label, r in rows.items():
        for mode, m in r["modes"].items():
            if "error" in m:
                lines.append(f"| {label} | {mode} | failed: {m['error']} | | | |")
                continue
            lines.append(f"| {label} | {mode} | {m['latency_ms_p50']:.2f} ms | {m['latency_ms_p99']:.2f} ms | "
                         f"{m['chunks_per_s']:.0f} | {m['max_abs_err_vs_eager']:.1g} |")
    lines += ["", f"Training `tiny` TinyVLA on toy data for {seconds:.0f} s: " + ", ".join(
        f"{k} {train[k]}" for k in ("samples_per_s", "batch_size", "dtype", "threads", "device", "mfu") if k in train), ""]
    md = "\n".join(lines)
    _write_table(out, "speed", md, {"infer": rows, "train": train}, command)
    return {"table": md, "out": str(out)}


def _reproduce_serve(out: Path, smoke: bool, device: str, command: str) -> dict:
    from tinyvla.pipeline import build_run_config, new_policy, placeholder_dataset
    from tinyvla.serving.bench import bench_serve_checkpoint

    ckpt = out / "checkpoint"
    if not (ckpt / "model.safetensors").is_file():  # speed does not depend on the weights: random ones
        import torch

        run = build_run_config("tinyvla", "tiny", {})
        torch.manual_seed(0)
        new_policy(run.policy, placeholder_dataset(run.policy, 64)).save_pretrained(ckpt)
    grid = [(1, "http"), (2, "ws")] if smoke else [(1, "http"), (8, "http"), (32, "http"), (1, "ws"), (32, "ws")]
    requests = 3 if smoke else 50
    rows = []
    for clients, transport in grid:
        path = out / f"serve_{clients}_{transport}.json"
        if not path.is_file():
            path.write_text(json.dumps(bench_serve_checkpoint(str(ckpt), clients=clients, requests=requests,
                                                              device=device, transport=transport), indent=2))
        rows.append(json.loads(path.read_text()))
    lines = [f"`tinyvla serve` on loopback, `tiny` TinyVLA (random weights), server and clients on one machine, "
             f"{requests} requests per client, each sent when the previous answer arrives.", "",
             "| clients | transport | p50 | p99 | requests/s | mean batch | errors |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clients']} | {r['transport']} | {r['latency_ms_p50']} ms | {r['latency_ms_p99']} ms | "
                     f"{r['requests_per_s']} | {r['mean_batch_size']} | {r['errors']} |")
    md = "\n".join(lines) + "\n"
    _write_table(out, "serve", md, {"runs": rows}, command)
    return {"table": md, "out": str(out)}


__all__ = ["BUDGETS", "Budget", "ReproduceConfig", "reproduce", "summarize", "report_markdown", "RECIPES",
           "list_recipes", "reproduce_result"]
