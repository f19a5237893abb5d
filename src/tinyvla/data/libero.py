"""LIBERO demonstrations from the privileged-state scripted expert, written as a LeRobot v3.0 dataset.

Episodes start from each task's fixed initial states in order (0, 1, 2, ...): the k-th demonstration of
a task comes from the k-th initial state the expert solved, so a run is reproducible and a policy can be
evaluated on the states it was not trained on. Only successes are kept; every attempt is counted.
Feature names are those of LeRobot's LIBERO datasets: observation.images.image (agent view),
observation.images.wrist_image, observation.state (8-D), action (7-D).

Every expert episode (success or failure) is cached on disk as soon as it is rolled out
($TINYVLA_CACHE_DIR or ~/.cache/tinyvla, under libero/<settings>-<expert code hash>/), so an interrupted
generation picks up where it stopped when run again, and a larger run reuses a smaller one's episodes;
editing the expert's code (or the worker's, which builds its scene) starts a new cache.

Each worker is a thread driving one LIBERO process (the simulation and rendering run there, a whole
episode per round trip); the main thread writes episodes in task order, so the dataset does not depend
on scheduling, and holds at most the tasks that finished ahead of the one being written.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinyvla.envs.libero import (ACTION_NAMES, CAMERAS, FPS, INIT_STATES_PER_TASK, STATE_NAMES, LiberoEnv,
                                 libero_python, resolve_suite, resolve_task_ids)
from tinyvla.envs.libero_goal_expert import EXPERT_GOALS
from tinyvla.errors import ConfigError
from tinyvla.progress import progress_interval

IMAGE_KEYS = {"image": "observation.images.image", "wrist_image": "observation.images.wrist_image"}


@dataclass
class LiberoGenerationConfig:
    suite: str = "object"
    tasks: str = "all"  # task ids of the suite: 'all' | '0,3,7'
    episodes_per_task: int = 50  # successful demos kept per task (each from a different initial state)
    image_size: int = 128
    image_convention: str = "upright"  # 'lerobot': mirrored left-right, as LeRobot's/OpenVLA's LIBERO data
    max_steps: int = 0  # 0: the suite's evaluation limit (tinyvla.envs.libero.MAX_STEPS)
    workers: int = 1  # LIBERO processes (each ~1 core; rendering two cameras is the cost)


EXPERT_SOURCES = ("libero_expert.py", "libero_worker.py", "libero_goal_expert.py", "libero_long_expert.py")


def episode_cache(suite: str, cfg: LiberoGenerationConfig) -> Path:
    """Where this suite's expert episodes at these settings are cached (the key holds the source of the experts
    and of the worker that hands them the scene: a change to any of them rolls the episodes out again)."""
    from tinyvla.envs import libero_expert

    here = Path(libero_expert.__file__)  # the worker is read, not imported: importing it sets MUJOCO_GL
    code = hashlib.sha256(b"".join(here.with_name(f).read_bytes() for f in EXPERT_SOURCES)).hexdigest()[:12]
    root = Path(os.environ.get("TINYVLA_CACHE_DIR") or Path.home() / ".cache" / "tinyvla") / "libero"
    return root / f"{suite}-{cfg.image_size}px-{cfg.image_convention}-max{cfg.max_steps or 0}-{code}"


def _load_episode(path: Path) -> dict | None:
    try:
        with np.load(path) as z:
            ep = {"states": z["states"], "actions": z["actions"], "success": bool(z["success"]),
                  "init_state": int(z["init_state"]), "images": {c: z[f"image_{c}"] for c in CAMERAS}}
    except (OSError, ValueError, KeyError):
        return None  # unreadable: roll it out again
    ep["seconds"] = 0.0
    return ep


def _save_episode(path: Path, ep: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    np.savez_compressed(tmp, states=ep["states"], actions=ep["actions"], success=ep["success"],
                        init_state=ep["init_state"], **{f"image_{c}": ep["images"][c] for c in CAMERAS})
    os.replace(tmp, path)  # a crash never leaves a half-written episode under the final name


def _task_worker(suite: str, task_id: int, cfg: LiberoGenerationConfig, emit) -> dict:
    """Roll out the expert from initial states 0, 1, ... until `episodes_per_task` successes; each
    episode goes to `emit(episode or None)` (None: the attempt failed)."""
    env = LiberoEnv(suite, task_id, cfg.image_size, max_steps=cfg.max_steps or None,
                    image_convention=cfg.image_convention)
    if not env.has_expert:
        env.close()
        raise ConfigError(f"no scripted expert for {suite} task {task_id} yet (goal {env.goal}); experts so far: "
                          f"{EXPERT_GOALS}")
    kept, attempts, steps, lengths, t0 = 0, 0, 0, [], time.perf_counter()
    cache = episode_cache(suite, cfg)
    try:
        for init_state in range(env.n_init_states):
            if kept >= cfg.episodes_per_task:
                break
            cached = cache / f"task{task_id}_init{init_state}.npz"
            ep = _load_episode(cached) if cached.is_file() else None
            if ep is None:
                ep = env.rollout_expert(init_state, render=True)
                _save_episode(cached, ep)
            attempts += 1
            steps += len(ep["actions"])
            if ep["success"]:
                kept += 1
                lengths.append(len(ep["actions"]))
                emit({**ep, "instruction": env.instruction, "task_name": env.task_name})
            else:
                emit(None)
    finally:
        env.close()
    seconds = time.perf_counter() - t0
    # attempts: states 0 .. attempts-1 were tried in order; the demonstrations come from among them (first_unseen_state)
    return {"task_name": env.task_name, "instruction": env.instruction, "attempts": attempts, "successes": kept,
            "expert_success_rate": kept / max(attempts, 1), "frames": int(sum(lengths)),
            "mean_length": float(np.mean(lengths)) if lengths else 0.0, "steps": steps, "seconds": seconds,
            "steps_per_s": steps / max(seconds, 1e-9)}


def generate_libero(out: str | Path, cfg: LiberoGenerationConfig, progress: bool = True) -> dict:
    """Roll out the expert on the suite's tasks and write a LeRobot dataset at `out`; -> the report
    (also in meta/tinyvla.json)."""
    from tinyvla.data.lerobot import LeRobotWriter

    suite = resolve_suite(cfg.suite)
    task_ids = resolve_task_ids(cfg.tasks, suite)
    if not 1 <= cfg.episodes_per_task <= INIT_STATES_PER_TASK:
        raise ConfigError(f"--episodes-per-task must be 1-{INIT_STATES_PER_TASK} (one per fixed initial state)")
    if Path(out).exists():
        raise ConfigError(f"{str(out)!r} already exists; choose a new --out directory")
    libero_python()  # fail fast, before any output, when LIBERO is not installed
    writer = LeRobotWriter(Path(out), fps=FPS, image_shape=(cfg.image_size, cfg.image_size, 3),
                           state_names=STATE_NAMES, action_names=ACTION_NAMES, robot_type="panda",
                           image_keys=tuple(IMAGE_KEYS[c] for c in CAMERAS))
    bar = tqdm(total=len(task_ids) * cfg.episodes_per_task, desc="expert episodes", unit="ep", disable=not progress,
               mininterval=progress_interval())
    # Per task: the episodes not written yet; the main thread writes task k before task k + 1.
    pending: dict[int, list] = {t: [] for t in task_ids}
    cond = threading.Condition()
    t0 = time.perf_counter()
    report: dict = {"config": vars(cfg).copy(), "suite": suite, "tasks": {}}

    def emitter(task_id: int):
        def emit(ep):
            with cond:
                pending[task_id].append(ep)
                cond.notify_all()
        return emit

    with writer, ThreadPoolExecutor(max(1, cfg.workers)) as pool:
        futures = {t: pool.submit(_task_worker, suite, t, cfg, emitter(t)) for t in task_ids}
        try:
            for task_id in task_ids:
                while True:
                    with cond:
                        while not pending[task_id] and not futures[task_id].done():
                            cond.wait(timeout=0.5)
                        batch, pending[task_id] = pending[task_id], []
                    for ep in batch:
                        if ep is not None:
                            writer.add_episode({IMAGE_KEYS[c]: ep["images"][c] for c in CAMERAS}, ep["states"],
                                               ep["actions"], ep["instruction"], task_name=ep["task_name"],
                                               suite=suite, task_id=task_id, init_state=ep["init_state"],
                                               success=ep["success"])
                            bar.update(1)
                    if not batch and futures[task_id].done():
                        break
                task_report = futures[task_id].result()  # re-raises a worker's error
                report["tasks"][task_id] = task_report
                bar.update(cfg.episodes_per_task - task_report["successes"])  # the bar counts wanted episodes
        except BaseException:
            for f in futures.values():
                f.cancel()
            raise
        finally:
            bar.close()
        per_task = report["tasks"].values()
        seconds = time.perf_counter() - t0
        report.update({
            "episodes": sum(r["successes"] for r in per_task), "frames": sum(r["frames"] for r in per_task),
            "attempts": sum(r["attempts"] for r in per_task), "seconds": seconds,
            "env_steps_per_s": sum(r["steps"] for r in per_task) / seconds,
        })
        report["expert_success_rate"] = report["episodes"] / max(report["attempts"], 1)
        writer.extra_meta = {"generator": "tinyvla data libero", "suite": suite,
                             "libero_cameras": {"cameras": list(CAMERAS), "image_size": cfg.image_size,
                                        "image_convention": cfg.image_convention}, "report": report}
        writer.close()
    return report


def first_unseen_state(data_dir: str | Path) -> int:
    """The first initial state no demonstration of a `tinyvla data libero` dataset started from, in any of its
    tasks: where a held-out evaluation begins. Each task tries states 0, 1, ... until it has its episodes, so
    a task whose expert failed some reaches past `episodes_per_task`."""
    meta = Path(data_dir) / "meta" / "tinyvla.json"
    try:
        tasks = json.loads(meta.read_text())["report"]["tasks"]
        return max(int(r["attempts"]) for r in tasks.values())
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{str(data_dir)!r} has no `tinyvla data libero` report ({meta}): {e}") from None


__all__ = ["LiberoGenerationConfig", "generate_libero", "IMAGE_KEYS", "episode_cache", "first_unseen_state"]
