"""Meta-World demonstrations from the scripted experts, written as a LeRobot v3.0 dataset.

One worker process per core rolls out one task's episodes at a time (rendering is the cost);
the main process writes episodes in task order, so the same seed gives the same dataset.
Only successful demonstrations are kept; every attempt is counted in the report.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinyvla.envs.metaworld import ACTION_NAMES, FPS, MT50, STATE_NAMES, MetaWorldEnv, resolve_tasks
from tinyvla.errors import ConfigError
from tinyvla.progress import progress_interval


@dataclass
class GenerationConfig:
    tasks: str = "mt10"
    episodes_per_task: int = 50
    image_size: int = 64
    camera: str = "corner2"
    camera_pos: str = ""  # '' = the camera's own position; 'close' | 'closer' | 'X,Y,Z' (metres)
    crop: float = 1.0  # keep this centre fraction of a frame rendered at image_size / crop
    # DART-style noise injection: execute expert action + N(0, sigma^2) (clipped), record the clean expert
    # action, so the demonstrations cover recoveries from the policy's own small errors.
    action_noise: float = 0.0
    seed: int = 0
    max_steps: int = 500
    max_attempts_factor: float = 2.0  # give up on a task after this many attempts per wanted episode
    workers: int = 2
    video: bool = False  # camera frames as AV1 video (LeRobot's default storage) instead of PNG images


def episode_seed(seed: int, task: str, attempt: int) -> int:
    """Distinct, reproducible seeds per (run seed, task, attempt); evaluation uses another range."""
    return seed * 100_000 + MT50.index(task) * 1_000 + attempt


def rollout_expert(env: MetaWorldEnv, seed: int, action_noise: float = 0.0) -> dict:
    """One expert episode: frames up to and including the first success (or max_steps). With
    `action_noise` the executed action is perturbed; the recorded label is always the clean one."""
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    images, states, actions = [], [], []
    success = False
    for _ in range(env.max_steps):
        action = env.expert_action()
        images.append(obs["image"].transpose(1, 2, 0))
        states.append(obs["state"])
        actions.append(action)
        executed = action + rng.normal(0.0, action_noise, action.shape).astype(np.float32) if action_noise else action
        obs, _, success, truncated, _ = env.step(executed, render=True)
        if success or truncated:
            break
    return {"images": np.stack(images), "states": np.stack(states), "actions": np.stack(actions),
            "instruction": info["instruction"], "success": success, "seed": seed}


def make_env(task: str, cfg: GenerationConfig) -> MetaWorldEnv:
    return MetaWorldEnv(task, cfg.image_size, cfg.camera, cfg.max_steps, camera_pos=cfg.camera_pos or None,
                        crop=cfg.crop)


def _task_worker(task: str, cfg: GenerationConfig, progress) -> tuple[str, list[dict], dict]:
    env = make_env(task, cfg)
    kept, attempts, steps, t0 = [], 0, 0, time.perf_counter()
    limit = max(cfg.episodes_per_task, int(np.ceil(cfg.episodes_per_task * cfg.max_attempts_factor)))
    while len(kept) < cfg.episodes_per_task and attempts < limit:
        ep = rollout_expert(env, episode_seed(cfg.seed, task, attempts), cfg.action_noise)
        attempts += 1
        steps += len(ep["actions"])
        if ep["success"]:
            kept.append(ep)
        if progress is not None:
            progress.put(1)
    env.close()
    seconds = time.perf_counter() - t0
    report = {"attempts": attempts, "successes": len(kept), "expert_success_rate": len(kept) / attempts,
              "frames": int(sum(len(e["actions"]) for e in kept)),
              "mean_length": float(np.mean([len(e["actions"]) for e in kept])) if kept else 0.0,
              "steps": steps, "seconds": seconds, "steps_per_s": steps / max(seconds, 1e-9)}
    return task, kept, report


def generate_metaworld(out: str | Path, cfg: GenerationConfig, progress: bool = True) -> dict:
    """Roll out the experts and write a LeRobot dataset at `out`; -> the report (also in meta/tinyvla.json)."""
    from tinyvla.data.lerobot import LeRobotWriter

    tasks = resolve_tasks(cfg.tasks)
    if cfg.episodes_per_task < 1:
        raise ConfigError("--episodes-per-task must be >= 1")
    if not 0.0 <= cfg.action_noise <= 1.0:
        raise ConfigError(f"--action-noise {cfg.action_noise} is outside [0, 1] (actions live in [-1, 1])")
    probe = make_env(tasks[0], cfg)  # fail fast: package, GL, args (and the camera settings, validated)
    camera = probe.settings
    probe.close()
    t0 = time.perf_counter()
    report: dict = {"config": vars(cfg).copy(), "tasks": {}}
    writer = LeRobotWriter(Path(out), fps=FPS, image_shape=(cfg.image_size, cfg.image_size, 3),
                           state_names=STATE_NAMES, action_names=ACTION_NAMES, robot_type="sawyer", video=cfg.video)
    bar = tqdm(total=len(tasks) * cfg.episodes_per_task, desc="expert episodes", unit="ep", disable=not progress,
               mininterval=progress_interval())
    ctx = mp.get_context("spawn")  # fresh interpreters: no inherited GL or torch thread state
    with writer, ctx.Manager() as manager, ProcessPoolExecutor(max(1, cfg.workers), mp_context=ctx) as pool:
        queue = manager.Queue()
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                try:
                    bar.update(queue.get(timeout=0.2))
                except Exception:  # noqa: BLE001 - queue.Empty, or the manager shutting down
                    continue

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        futures = [pool.submit(_task_worker, task, cfg, queue) for task in tasks]
        try:
            for future in futures:  # in task order: the dataset does not depend on scheduling
                task, episodes, task_report = future.result()
                for ep in episodes:
                    writer.add_episode(ep["images"], ep["states"], ep["actions"], ep["instruction"],
                                       task_name=task, seed=ep["seed"], success=ep["success"])
                report["tasks"][task] = task_report
        finally:
            stop.set()
            ticker.join()
            bar.close()
        seconds = time.perf_counter() - t0
        per_task = report["tasks"].values()
        report.update({
            "episodes": sum(r["successes"] for r in per_task), "frames": sum(r["frames"] for r in per_task),
            "attempts": sum(r["attempts"] for r in per_task), "seconds": seconds,
            "env_steps_per_s": sum(r["steps"] for r in per_task) / seconds,
        })
        report["expert_success_rate"] = report["episodes"] / max(report["attempts"], 1)
        writer.extra_meta = {"generator": "tinyvla data metaworld", "camera": camera, "report": report}
        writer.close()
    return report


__all__ = ["GenerationConfig", "generate_metaworld", "rollout_expert", "episode_seed"]
