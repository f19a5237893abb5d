"""Closed-loop evaluation on LIBERO with the published protocol: every task of a suite from its fixed
initial states (50 per task; `episodes` takes the first N, `init_states` names others, e.g. the states a
dataset did not use), the suite's step limit after the no-op settling steps, success from the task's own
check; per task with a Wilson CI, the suite mean. Tasks run in parallel, one pair of LIBERO processes per
worker thread; the policy is called under a lock, so one network serves all workers.

Frames are rendered only when the policy reads one (once per executed chunk). The blind control, as on
Meta-World, replays each episode with the camera of another scene of the same task (a second env started
from initial state (i + 25) mod 50 and driven by the same actions): the drop in success is how much the
policy depends on what it sees. LIBERO runs in its own venv (`make setup-libero`, tinyvla.envs.libero)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.errors import ConfigError
from tinyvla.eval.results import ClosedLoopResult, save_gif, write_results
from tinyvla.utils import autocast_context

SHADOW_OFFSET = 25  # the blind control's other scene: initial state (i + 25) mod 50


@dataclass
class LiberoEvalConfig:
    suite: str = "object"
    tasks: str = "all"  # task ids: all | 0,3,7
    episodes: int = 50  # per task: initial states 0 .. episodes-1
    init_states: str = ""  # instead of the first `episodes`: 'A-B' (inclusive) or 'i,j,k', e.g. 25-49
    camera: str = "image"  # the camera the policy reads: image (agent view) | wrist_image
    max_steps: int | None = None  # default: the suite's (220 / 280 / 300 / 520)
    blind: bool = True
    videos: int = 1  # episodes recorded per task (GIF of the frames the policy saw)
    precision: str = "fp32"
    workers: int = 2  # tasks evaluated at once (each runs one or two LIBERO processes, ~1 core)

    def validate(self, n_init_states: int = 50) -> None:
        if not 1 <= self.episodes <= n_init_states:
            raise ConfigError(f"--episodes is per task and LIBERO has {n_init_states} initial states per task: "
                              f"1-{n_init_states}")
        if self.workers < 1:
            raise ConfigError("--workers must be >= 1")
        self.initial_states(n_init_states)

    def initial_states(self, n_init_states: int = 50) -> list[int]:
        """The initial states every task is evaluated from."""
        spec = self.init_states.strip()
        if not spec:
            return list(range(self.episodes))
        try:
            if "-" in spec:
                lo, hi = (int(x) for x in spec.split("-"))
                states = list(range(lo, hi + 1))
            else:
                states = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            states = []
        if not states or len(set(states)) != len(states) or not all(0 <= i < n_init_states for i in states):
            raise ConfigError(f"--init-states {self.init_states!r}: give 'A-B' or 'i,j,k' of distinct initial states "
                              f"0-{n_init_states - 1}")
        return states
        if self.camera not in ("image", "wrist_image"):
            raise ConfigError(f"--camera for LIBERO is image or wrist_image, not {self.camera!r}")


def check_policy(policy) -> None:
    """A checkpoint that cannot act in LIBERO (7-D actions, an 8-D state or none) is a one-line error."""
    config = policy.config
    if config.action_dim != 7:
        raise ConfigError(f"this policy outputs {config.action_dim}-D actions; LIBERO's are 7-D (train on a LIBERO "
                          "dataset, `tinyvla data libero`)")
    state_dim = getattr(policy, "state_dim", 0)
    if state_dim not in (0, 8):
        raise ConfigError(f"this policy reads a state of size {state_dim}; LIBERO's robot state has 8")


def _episode(policy, env, shadow, cfg: LiberoEvalConfig, init_state: int, frames: list | None,
             lock: threading.Lock) -> tuple[bool, int]:
    """One episode; the policy sees `shadow`'s camera when given (the blind control)."""
    chunk_steps = max(1, policy.config.n_action_steps)
    obs, info = env.reset(options={"init_state": init_state})
    seen = shadow.reset(options={"init_state": (init_state + SHADOW_OFFSET) % env.n_init_states})[0] if shadow else obs
    device = getattr(policy, "device", torch.device("cpu"))
    steps, done, success = 0, False, False
    while not done:
        image = seen[cfg.camera]
        if frames is not None:
            frames.append(image)
        batch = {OBS_IMAGE: torch.from_numpy(np.ascontiguousarray(image))[None],
                 OBS_STATE: torch.from_numpy(obs["state"])[None], TASK: [env.instruction]}
        with lock, torch.inference_mode(), autocast_context(device, cfg.precision):
            chunk = policy.predict_action_chunk(batch)[0, :chunk_steps].float().cpu().numpy()
        for k, action in enumerate(chunk):
            last = k == len(chunk) - 1
            obs, _, success, truncated, _ = env.step(action, render=last and shadow is None)
            if shadow is not None:
                seen = shadow.step(action, render=last)[0]
            else:
                seen = obs
            steps += 1
            if success or truncated:
                done = True
                break
    return bool(success), steps


def _evaluate_task(policy, task_id: int, suite: str, cfg: LiberoEvalConfig, states: list[int], size: int,
                   out: Path | None, lock: threading.Lock, tick) -> tuple[dict, int, list[str]]:
    """All episodes of one task (and their blind twins) -> (task result, env steps, video paths)."""
    from tinyvla.envs.libero import LiberoEnv

    env = LiberoEnv(suite, task_id, image_size=size, cameras=(cfg.camera,), max_steps=cfg.max_steps)
    shadow = None
    env_steps, videos, counts = 0, [], {"sighted": [0, 0], "blind": 0}
    try:
        if cfg.blind:
            shadow = LiberoEnv(suite, task_id, image_size=size, cameras=(cfg.camera,), max_steps=cfg.max_steps)
        for n, i in enumerate(states):
            frames = [] if out is not None and n < cfg.videos else None
            ok, steps = _episode(policy, env, None, cfg, i, frames, lock)
            counts["sighted"][0] += ok
            counts["sighted"][1] += steps
            env_steps += steps
            tick()
            if frames:
                path = out / "videos" / f"task{task_id}_init{i}_{'success' if ok else 'fail'}.gif"
                save_gif(frames, path, scale=2)
                videos.append(str(path))
            if shadow is not None:
                ok_blind, steps = _episode(policy, env, shadow, cfg, i, None, lock)
                counts["blind"] += ok_blind
                env_steps += steps
                tick()
    finally:
        env.close()
        if shadow is not None:
            shadow.close()
    r = ClosedLoopResult(len(states), counts["sighted"][0], counts["sighted"][1] / len(states))
    result = {"instruction": env.instruction, **r.to_dict()}
    if cfg.blind:
        result["blind_success"] = counts["blind"] / len(states)
        result["vision_dependence"] = 100 * (r.success_rate - result["blind_success"])
    return result, env_steps, videos


def evaluate_libero(policy, cfg: LiberoEvalConfig, out_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Run the suite's tasks from their initial states -> report dict (per task, overall, blind control)."""
    from tinyvla.envs.libero import resolve_suite, resolve_task_ids

    check_policy(policy)
    suite = resolve_suite(cfg.suite)
    task_ids = resolve_task_ids(cfg.tasks, suite)
    cfg.validate()
    states = cfg.initial_states()
    size = policy.config.image_size
    out = Path(out_dir) if out_dir else None
    bar = tqdm(total=len(task_ids) * len(states) * (2 if cfg.blind else 1), desc=f"LIBERO {suite}",
               disable=not progress, leave=False)
    lock, bar_lock = threading.Lock(), threading.Lock()

    def tick():
        with bar_lock:
            bar.update(1)

    policy.reset()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(min(cfg.workers, len(task_ids))) as pool:
        futures = {t: pool.submit(_evaluate_task, policy, t, suite, cfg, states, size, out, lock, tick) for t in task_ids}
        try:
            results = {t: f.result() for t, f in futures.items()}
        except BaseException:
            for f in futures.values():
                f.cancel()
            raise
    bar.close()
    seconds = time.perf_counter() - t0
    tasks = {str(t): r[0] for t, r in results.items()}
    env_steps = sum(r[1] for r in results.values())
    videos = [v for r in results.values() for v in r[2]]
    n = sum(t["episodes"] for t in tasks.values())
    k = sum(t["successes"] for t in tasks.values())
    overall = ClosedLoopResult(n, k, sum(t["mean_episode_steps"] * t["episodes"] for t in tasks.values()) / n).to_dict()
    mean = float(np.mean([t["success_rate"] for t in tasks.values()]))
    if cfg.blind:
        overall["blind_success"] = float(np.mean([t["blind_success"] for t in tasks.values()]))
        overall["vision_dependence"] = 100 * (mean - overall["blind_success"])
    return {"env": "libero", "suite": suite, "episodes_per_task": len(states), "init_states": _span(states),
            "camera": cfg.camera, "max_steps": cfg.max_steps, "workers": cfg.workers, "tasks": tasks,
            "overall": overall, "mean_success_rate": mean, "seconds": round(seconds, 1),
            "env_steps_per_s": env_steps / max(seconds, 1e-9),
            "episodes_per_minute": 60 * n * (2 if cfg.blind else 1) / max(seconds, 1e-9), "videos": videos}


def _span(states: list[int]) -> str:
    """'0-49' for a contiguous range, else 'i,j,k'."""
    if states == list(range(states[0], states[0] + len(states))):
        return f"{states[0]}-{states[-1]}"
    return ",".join(map(str, states))


def markdown(report: dict) -> list[str]:
    o, blind = report["overall"], "blind_success" in report["overall"]
    states = report.get("init_states") or f"0-{report['episodes_per_task'] - 1}"
    lines = [f"# LIBERO {report['suite']}: closed-loop success", "",
             f"checkpoint `{report.get('checkpoint', '')}`, initial states {states} of each task, camera "
             f"`{report['camera']}`, {report['episodes_per_minute']:.1f} episodes/min", "",
             "| task | instruction | success | 95% CI | mean steps |" + (" blind | vision dep. |" if blind else ""),
             "|---|---|---|---|---|" + ("---|---|" if blind else "")]
    for tid, r in report["tasks"].items():
        lo, hi = r["success_ci95"]
        lines.append(f"| {tid} | {r['instruction']} | {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}) | "
                     f"{lo:.0%}-{hi:.0%} | {r['mean_episode_steps']:.0f} |"
                     + (f" {r['blind_success']:.0%} | {r['vision_dependence']:+.0f} pts |" if blind else ""))
    lo, hi = o["success_ci95"]
    lines.append(f"| **mean** | | **{report['mean_success_rate']:.1%}** | {lo:.0%}-{hi:.0%} | |"
                 + (f" **{o['blind_success']:.1%}** | **{o['vision_dependence']:+.1f} pts** |" if blind else ""))
    return lines


def run_libero_eval(cfg: LiberoEvalConfig, *, checkpoint: str = "", server: str = "", token: str = "",
                    transport: str = "http", device: str = "auto", precision: str = "auto", mode: str = "eager",
                    out: str = "") -> tuple[dict, str]:
    """`tinyvla eval --env libero`: load the checkpoint (or connect to `server`), evaluate, write
    results.json / results.md / report.html into `out`."""
    from tinyvla.utils import resolve_device, resolve_precision

    if server:
        from tinyvla.serving.client import PolicyClient

        if mode != "eager":
            raise ConfigError("--mode applies to a local checkpoint; --server evaluates the served policy as it runs")
        policy, name, cfg.precision = PolicyClient(server, token=token, transport=transport), server, "fp32"
    elif checkpoint:
        from tinyvla.policies.base import Policy

        dev = resolve_device(device)
        policy, name = Policy.from_pretrained(checkpoint, device=dev), checkpoint
        cfg.precision = resolve_precision(precision, dev)
        if mode != "eager":
            from tinyvla.bench import make_runner

            policy, cfg.precision = make_runner(policy, mode, cfg.precision), "fp32"
    else:
        raise ConfigError("give --checkpoint DIR (or --server URL)")
    out = out or (str(Path(checkpoint).parent / "eval_libero") if checkpoint else "runs/eval_libero")
    try:
        report = {"checkpoint": name, "mode": mode, **evaluate_libero(policy, cfg, out_dir=out)}
    finally:
        if hasattr(policy, "close"):
            policy.close()
    write_results(out, report, markdown(report))
    return report, out


__all__ = ["LiberoEvalConfig", "evaluate_libero", "run_libero_eval", "check_policy", "markdown"]
