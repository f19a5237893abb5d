"""Closed-loop evaluation on Meta-World: success rate per task with a confidence interval.

Environments run in worker processes (one per core by default), several per worker; the policy runs
batched in the main process. Each env asks for a camera frame only when the policy will read it: a
policy that executes `n_action_steps` actions per chunk needs one image every `n_action_steps` steps.
Episodes are fixed by (task, seed), so two evaluations of one checkpoint see the same scenes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.envs.metaworld import MT50, difficulty_of, resolve_tasks
from tinyvla.errors import ConfigError
from tinyvla.evaluate import ClosedLoopResult
from tinyvla.progress import progress_interval
from tinyvla.utils import autocast_context

EVAL_SEED_BASE = 10_000_000  # far from the seeds `tinyvla data metaworld` draws demonstrations from


@dataclass
class MetaWorldEvalConfig:
    tasks: str = "mt10"
    episodes: int = 20  # per task
    seed: int = 0
    max_steps: int = 500
    camera: str = "corner2"
    workers: int = 2  # env processes
    envs_per_worker: int = 8
    videos: int = 1  # episodes recorded per task (GIF)
    precision: str = "fp32"

    def validate(self) -> None:
        if self.episodes < 1 or self.workers < 1 or self.envs_per_worker < 1 or self.max_steps < 1:
            raise ConfigError("--episodes, --workers, --envs-per-worker and --max-steps must be >= 1")


def eval_seed(seed: int, task: str, k: int) -> int:
    return EVAL_SEED_BASE + seed * 100_000 + MT50.index(task) * 1_000 + k


# ---- worker process -------------------------------------------------------------------------------
def _worker(conn, image_size: int, camera: str, max_steps: int) -> None:
    """Holds one env per slot; answers ("reset", [(slot, task, seed)]) and ("step", [(slot, action, render)])."""
    from tinyvla.envs.metaworld import MetaWorldEnv

    envs: dict[int, MetaWorldEnv] = {}
    try:
        while True:
            cmd, items = conn.recv()
            if cmd == "close":
                break
            out = []
            if cmd == "reset":
                for slot, task, seed in items:
                    if slot not in envs or envs[slot].task != task:
                        if slot in envs:
                            envs[slot].close()
                        envs[slot] = MetaWorldEnv(task, image_size, camera, max_steps)
                    obs, info = envs[slot].reset(seed=seed)
                    out.append((slot, obs, info["instruction"], False, False))
            else:
                for slot, action, render in items:
                    obs, _, success, truncated, _ = envs[slot].step(action, render=render)
                    out.append((slot, obs, None, success, success or truncated))
            conn.send(("ok", out))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        for env in envs.values():
            env.close()


class _EnvPool:
    def __init__(self, workers: int, slots_per_worker: int, image_size: int, camera: str, max_steps: int):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, image_size, camera, max_steps), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.slots = workers * slots_per_worker
        self.per_worker = slots_per_worker

    def call(self, cmd: str, items: list[tuple]) -> list[tuple]:
        """Send each worker its slots' items at once (they run in parallel), then gather."""
        by_worker: dict[int, list] = {}
        for item in items:
            by_worker.setdefault(item[0] // self.per_worker, []).append(item)
        for w, chunk in by_worker.items():
            self.conns[w].send((cmd, chunk))
        out = []
        for w in by_worker:
            status, payload = self.conns[w].recv()
            if status != "ok":
                raise RuntimeError(f"Meta-World worker failed: {payload}")
            out += payload
        return out

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("close", []))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


@dataclass
class _Slot:
    task: str = ""
    k: int = 0
    seed: int = 0
    obs: dict | None = None
    instruction: str = ""
    queue: deque = field(default_factory=deque)
    steps: int = 0
    frames: list | None = None


@dataclass
class MetaWorldResult:
    per_task: dict[str, ClosedLoopResult]
    seconds: float
    env_steps: int
    videos: list[str]

    def to_dict(self) -> dict:
        total = ClosedLoopResult(sum(r.episodes for r in self.per_task.values()),
                                 sum(r.successes for r in self.per_task.values()),
                                 float(np.mean([r.mean_steps for r in self.per_task.values()])))
        rows = {}
        for task, r in self.per_task.items():
            lo, hi = r.confidence_interval()
            rows[task] = {"episodes": r.episodes, "successes": r.successes, "success_rate": r.success_rate,
                          "success_ci95": [lo, hi], "mean_episode_steps": r.mean_steps,
                          "difficulty": difficulty_of(task)}
        groups = {}
        for task, row in rows.items():
            groups.setdefault(row["difficulty"], []).append(row["success_rate"])
        lo, hi = total.confidence_interval()
        return {"tasks": rows, "mean_success_rate": float(np.mean([r["success_rate"] for r in rows.values()])),
                "overall": {"episodes": total.episodes, "successes": total.successes, "success_rate":
                            total.success_rate, "success_ci95": [lo, hi]},
                "by_difficulty": {g: float(np.mean(v)) for g, v in groups.items()},
                "seconds": self.seconds, "env_steps": self.env_steps,
                "env_steps_per_s": self.env_steps / max(self.seconds, 1e-9), "videos": self.videos}


def _save_gif(frames: list[np.ndarray], path: Path, scale: int = 4) -> None:
    from PIL import Image

    images = [Image.fromarray(np.kron(f.transpose(1, 2, 0), np.ones((scale, scale, 1), dtype=np.uint8))) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)


@torch.no_grad()
def evaluate_metaworld(policy, cfg: MetaWorldEvalConfig, out_dir: str | Path | None = None,
                       progress: bool = True) -> MetaWorldResult:
    """Roll out `policy` (a tinyvla Policy or a PolicyClient) on each task's `episodes` fixed scenes."""
    cfg.validate()
    tasks = resolve_tasks(cfg.tasks)
    config = getattr(policy, "config", None)
    image_size = int(getattr(config, "image_size", 0) or getattr(policy, "image_size", 64))
    action_dim = int(getattr(config, "action_dim", 4))
    if action_dim != 4:
        raise ConfigError(f"this policy acts in {action_dim} dimensions; Meta-World's actions have 4 "
                          "(train it on a `tinyvla data metaworld` dataset)")
    n_steps = int(getattr(config, "n_action_steps", 1))
    state_dim = getattr(policy, "state_dim", 4)
    if state_dim not in (0, 4):
        raise ConfigError(f"this policy reads a state of size {state_dim}; Meta-World's robot state has 4")
    pending = deque((task, k) for task in tasks for k in range(cfg.episodes))
    device = getattr(policy, "device", torch.device("cpu"))
    slots_per_worker = max(1, min(cfg.envs_per_worker, -(-len(pending) // cfg.workers)))
    pool = _EnvPool(min(cfg.workers, len(pending)), slots_per_worker, image_size, cfg.camera, cfg.max_steps)
    slots: dict[int, _Slot] = {}
    results = {task: [0, 0, 0] for task in tasks}  # episodes, successes, steps
    videos, env_steps, t0 = [], 0, time.perf_counter()
    out = Path(out_dir) if out_dir else None
    bar = tqdm(total=len(pending), desc="meta-world episodes", unit="ep", disable=not progress,
               mininterval=progress_interval())

    def start(slot_ids: list[int]) -> None:
        items = []
        for s in slot_ids:
            task, k = pending.popleft()
            slots[s] = _Slot(task=task, k=k, seed=eval_seed(cfg.seed, task, k),
                             frames=[] if (out is not None and k < cfg.videos) else None)
            items.append((s, task, slots[s].seed))
        for s, obs, instruction, _, _ in pool.call("reset", items):
            slots[s].obs, slots[s].instruction = obs, instruction
            if slots[s].frames is not None:
                slots[s].frames.append(obs["image"])

    try:
        start([s for s in range(pool.slots) if pending][: len(pending)])
        while slots:
            plan = [s for s, sl in slots.items() if not sl.queue]
            if plan:
                batch = {OBS_IMAGE: torch.from_numpy(np.stack([slots[s].obs["image"] for s in plan])),
                         OBS_STATE: torch.from_numpy(np.stack([slots[s].obs["state"] for s in plan])),
                         TASK: [slots[s].instruction for s in plan]}
                with autocast_context(device, cfg.precision):
                    chunks = policy.predict_action_chunk(batch)[:, :n_steps].float().cpu().numpy()
                for s, chunk in zip(plan, chunks):
                    slots[s].queue.extend(chunk)
            items = []
            for s, sl in slots.items():
                action = sl.queue.popleft()
                items.append((s, action, not sl.queue or sl.frames is not None))
            finished = []
            for s, obs, _, success, done in pool.call("step", items):
                sl = slots[s]
                sl.steps += 1
                env_steps += 1
                if obs["image"] is not None or sl.obs is None:
                    sl.obs = obs
                else:
                    sl.obs = {"image": sl.obs["image"], "state": obs["state"]}
                if sl.frames is not None:
                    sl.frames.append(obs["image"])
                if done:
                    r = results[sl.task]
                    r[0], r[1], r[2] = r[0] + 1, r[1] + int(success), r[2] + sl.steps
                    if sl.frames is not None:
                        path = out / "videos" / f"{sl.task}_ep{sl.k}_{'success' if success else 'fail'}.gif"
                        _save_gif(sl.frames, path)
                        videos.append(str(path))
                    finished.append(s)
                    bar.update(1)
            for s in finished:
                del slots[s]
            if finished and pending:
                start(finished[: len(pending)])
    finally:
        bar.close()
        pool.close()
    per_task = {t: ClosedLoopResult(r[0], r[1], r[2] / max(r[0], 1)) for t, r in results.items()}
    return MetaWorldResult(per_task, time.perf_counter() - t0, env_steps, videos)


def write_report(report: dict, out_dir: str | Path, title: str = "Meta-World closed-loop success") -> None:
    """results.json, results.md (per task, CI) and success.png (bar chart with 95% CI whiskers)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    rows = report["tasks"]
    lines = [f"# {title}", "", f"checkpoint: `{report.get('checkpoint', '')}`, {report.get('episodes_per_task')} "
             f"episodes per task, max {report.get('max_steps')} steps, seed {report.get('seed')}", "",
             "| task | difficulty | success | 95% CI | mean steps |", "|---|---|---|---|---|"]
    for task, r in rows.items():
        lo, hi = r["success_ci95"]
        lines.append(f"| {task} | {r['difficulty']} | {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}) "
                     f"| {lo:.0%}-{hi:.0%} | {r['mean_episode_steps']:.0f} |")
    o = report["overall"]
    lines += [f"| **mean** | | **{report['mean_success_rate']:.1%}** | {o['success_ci95'][0]:.0%}-"
              f"{o['success_ci95'][1]:.0%} (all episodes) | |", ""]
    lines += [f"By difficulty: " + ", ".join(f"{g} {v:.1%}" for g, v in report["by_difficulty"].items()), ""]
    (out / "results.md").write_text("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    rates = np.array([rows[t]["success_rate"] for t in names])
    ci = np.array([rows[t]["success_ci95"] for t in names])
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 2), 4))
    ax.bar(range(len(names)), rates * 100, yerr=[(rates - ci[:, 0]) * 100, (ci[:, 1] - rates) * 100],
           capsize=3, color="tab:blue")
    ax.axhline(report["mean_success_rate"] * 100, color="tab:red", ls="--", label=f"mean {report['mean_success_rate']:.0%}")
    ax.set_xticks(range(len(names)), [n[:-3] for n in names], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=120)
    plt.close(fig)


__all__ = ["MetaWorldEvalConfig", "evaluate_metaworld", "write_report", "MetaWorldResult", "eval_seed"]
