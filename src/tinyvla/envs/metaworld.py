"""Meta-World (MuJoCo) manipulation tasks with their scripted experts, rendered headless on the CPU.

`MetaWorldEnv(task)` is a gymnasium env whose observation is what a VLA sees: a camera image
(3, H, W) uint8 and the robot state (hand x, y, z and gripper opening); the instruction is one of a
few paraphrases of the task. Object and goal positions are re-drawn at every reset from the seed.

Rendering is the cost (physics runs ~1,000+ steps/s with the expert): software OpenGL (OSMesa) with
MuJoCo's default 4096-px shadow map and 4x multisampling takes ~115 ms per 64 px frame here. We
render with shadows, reflections, skybox and multisampling off (~7 ms), and only when a frame is
needed (a policy that executes chunks of k actions needs one image every k steps).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from tinyvla.errors import ConfigError, TinyVLAError

MT10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
        "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3"]

# The difficulty groups of Seo et al. 2022 (Masked World Models, appendix), which SmolVLA reports on MT50.
DIFFICULTY = {
    "easy": ["button-press-v3", "button-press-topdown-v3", "button-press-topdown-wall-v3", "button-press-wall-v3",
             "coffee-button-v3", "dial-turn-v3", "door-close-v3", "door-lock-v3", "door-open-v3", "door-unlock-v3",
             "drawer-close-v3", "drawer-open-v3", "faucet-close-v3", "faucet-open-v3", "handle-press-v3",
             "handle-press-side-v3", "handle-pull-v3", "handle-pull-side-v3", "lever-pull-v3", "plate-slide-v3",
             "plate-slide-back-v3", "plate-slide-back-side-v3", "plate-slide-side-v3", "reach-v3", "reach-wall-v3",
             "window-close-v3", "window-open-v3", "peg-unplug-side-v3"],
    "medium": ["basketball-v3", "bin-picking-v3", "box-close-v3", "coffee-pull-v3", "coffee-push-v3", "hammer-v3",
               "peg-insert-side-v3", "push-wall-v3", "soccer-v3", "sweep-v3", "sweep-into-v3"],
    "hard": ["assembly-v3", "hand-insert-v3", "pick-out-of-hole-v3", "pick-place-v3", "push-v3", "push-back-v3"],
    "very_hard": ["shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3", "pick-place-wall-v3"],
}

# A few paraphrases per task: in a multi-task policy the instruction is what tells the tasks apart.
INSTRUCTIONS: dict[str, list[str]] = {
    "assembly-v3": ["put the ring on the peg", "assemble the nut onto the peg", "slide the round nut over the peg"],
    "basketball-v3": ["dunk the ball into the basket", "put the ball in the hoop", "score the ball through the hoop"],
    "bin-picking-v3": ["move the cube to the other bin", "pick the block from one bin and place it in the other",
                       "transfer the cube between the bins"],
    "box-close-v3": ["close the box with its lid", "put the lid on the box", "cover the box"],
    "button-press-topdown-v3": ["press the button from the top", "push the button down from above",
                                "press down on the button"],
    "button-press-topdown-wall-v3": ["press the button from the top behind the wall",
                                     "push the button down from above past the wall",
                                     "reach over the wall and press the button down"],
    "button-press-v3": ["press the button", "push the button in", "press the button on the front"],
    "button-press-wall-v3": ["press the button behind the wall", "push the button that is behind a wall",
                             "reach around the wall and press the button"],
    "coffee-button-v3": ["press the coffee machine button", "push the button on the coffee machine",
                         "start the coffee machine"],
    "coffee-pull-v3": ["pull the mug away from the coffee machine", "take the cup out of the coffee machine",
                       "slide the mug out from the machine"],
    "coffee-push-v3": ["push the mug under the coffee machine", "slide the cup into the coffee machine",
                       "put the mug under the coffee spout"],
    "dial-turn-v3": ["turn the dial", "rotate the dial", "spin the knob around"],
    "disassemble-v3": ["take the ring off the peg", "remove the nut from the peg", "lift the round nut off the peg"],
    "door-close-v3": ["close the door", "shut the door", "push the door closed"],
    "door-lock-v3": ["lock the door", "turn the lock on the door", "lock the door by turning its lock"],
    "door-open-v3": ["open the door", "pull the door open", "swing the door open"],
    "door-unlock-v3": ["unlock the door", "turn the door lock to unlock it", "release the lock on the door"],
    "drawer-close-v3": ["close the drawer", "push the drawer shut", "slide the drawer closed"],
    "drawer-open-v3": ["open the drawer", "pull the drawer out", "slide the drawer open"],
    "faucet-close-v3": ["turn the faucet off", "close the faucet", "rotate the faucet handle to close it"],
    "faucet-open-v3": ["turn the faucet on", "open the faucet", "rotate the faucet handle to open it"],
    "hammer-v3": ["hammer the nail in", "drive the nail with the hammer", "use the hammer to hit the nail"],
    "hand-insert-v3": ["put the block into the hole", "insert the cube into the hole in the table",
                       "push the block into the opening"],
    "handle-press-side-v3": ["press the handle down from the side", "push the side handle down",
                             "press down on the handle from the side"],
    "handle-press-v3": ["press the handle down", "push the handle down", "press down on the handle"],
    "handle-pull-side-v3": ["pull the handle up from the side", "lift the side handle up",
                            "pull up on the handle from the side"],
    "handle-pull-v3": ["pull the handle up", "lift the handle", "pull up on the handle"],
    "lever-pull-v3": ["pull the lever up", "raise the lever", "lift the lever"],
    "peg-insert-side-v3": ["insert the peg into the hole from the side", "push the peg sideways into the hole",
                           "put the peg in the side hole"],
    "peg-unplug-side-v3": ["unplug the peg from the side", "pull the peg out sideways", "remove the peg from the hole"],
    "pick-out-of-hole-v3": ["pick the block out of the hole", "lift the cube out of the hole",
                            "take the block out of the hole and raise it"],
    "pick-place-v3": ["pick up the puck and place it at the goal", "put the puck on the target",
                      "grasp the puck and move it to the goal"],
    "pick-place-wall-v3": ["pick up the puck and place it at the goal behind the wall",
                           "lift the puck over the wall onto the target", "carry the puck past the wall to the goal"],
    "plate-slide-back-side-v3": ["slide the plate back from the side into the goal",
                                 "push the plate sideways back into the net", "slide the plate back in from the side"],
    "plate-slide-back-v3": ["slide the plate back into the goal", "pull the plate back into the net",
                            "slide the plate backwards into the goal"],
    "plate-slide-side-v3": ["slide the plate sideways into the goal", "push the plate into the net from the side",
                            "slide the plate to the side goal"],
    "plate-slide-v3": ["slide the plate into the goal", "push the plate into the net", "slide the plate forward"],
    "push-back-v3": ["push the puck back to the goal", "slide the puck backwards to the target",
                     "push the puck toward the robot to the goal"],
    "push-v3": ["push the puck to the goal", "slide the puck to the target", "push the puck to the goal position"],
    "push-wall-v3": ["push the puck to the goal behind the wall", "slide the puck around the wall to the target",
                     "push the puck past the wall to the goal"],
    "reach-v3": ["reach the goal position", "move the gripper to the target", "go to the goal"],
    "reach-wall-v3": ["reach the goal behind the wall", "move the gripper over the wall to the target",
                      "go to the goal past the wall"],
    "shelf-place-v3": ["put the block on the shelf", "place the cube onto the shelf", "lift the block onto the shelf"],
    "soccer-v3": ["kick the ball into the goal", "push the soccer ball into the net", "score a goal with the ball"],
    "stick-pull-v3": ["use the stick to pull the box", "grab the stick and pull the container with it",
                      "pull the box toward you with the stick"],
    "stick-push-v3": ["use the stick to push the box", "grab the stick and push the container with it",
                      "push the box away with the stick"],
    "sweep-into-v3": ["sweep the block into the hole", "push the cube into the hole", "sweep the puck into the hole"],
    "sweep-v3": ["sweep the block off the table", "push the cube off the edge", "sweep the puck off the table"],
    "window-close-v3": ["close the window", "slide the window shut", "push the window closed"],
    "window-open-v3": ["open the window", "slide the window open", "push the window open"],
}
MT50 = sorted(INSTRUCTIONS)
TASK_SETS = {"mt10": MT10, "mt50": MT50, **DIFFICULTY}
CAMERAS = ("corner", "corner2", "corner3", "topview", "behindGripper", "gripperPOV")
# Named camera positions (world x, y, z; the camera keeps its orientation). corner2 from 1.3, -0.2, 1.1
# leaves the reach goal (a 2 cm sphere) 1-2 px wide at 64 px; these move it closer to the table.
CAMERA_PLACEMENTS = {
    "close": (0.75, 0.075, 0.7),  # LeRobot's / QueST's Meta-World corner2
    "closer": (0.6, 0.295, 0.8),  # the DP3 paper's corner2
}
STATE_NAMES = ["hand_x", "hand_y", "hand_z", "gripper_opening"]
ACTION_NAMES = ["delta_x", "delta_y", "delta_z", "gripper"]
FPS = 80  # 5 MuJoCo substeps of 2.5 ms per env step (what the simulation's time advances by)


class EnvError(TinyVLAError):
    """An environment that cannot run here (a missing package or rendering backend)."""


def resolve_tasks(spec: str) -> list[str]:
    """'mt10' | 'mt50' | 'easy' | 'medium' | 'hard' | 'very_hard' | task names ('reach' or 'reach-v3'),
    comma-separated and combinable -> a list of task names without duplicates."""
    out: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        key = part.lower().replace(" ", "_")
        if key in TASK_SETS:
            names = TASK_SETS[key]
        else:
            name = part if part.endswith("-v3") else f"{part}-v3"
            if name not in INSTRUCTIONS:
                raise ConfigError(f"unknown Meta-World task {part!r}; task sets: {', '.join(TASK_SETS)}; "
                                  f"tasks: {', '.join(n[:-3] for n in MT50)}")
            names = [name]
        out += [n for n in names if n not in out]
    if not out:
        raise ConfigError("no Meta-World task given (e.g. --tasks mt10, --tasks reach,push)")
    return out


def parse_camera_pos(spec: str | list | tuple | None) -> tuple[float, float, float] | None:
    """'' / None -> None (the camera's own position); 'close' | 'closer' | 'X,Y,Z' -> (x, y, z)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in CAMERA_PLACEMENTS:
            return CAMERA_PLACEMENTS[key]
        parts = [p.strip() for p in key.split(",")]
    else:
        parts = list(spec)
    try:
        values = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ConfigError(f"camera position {spec!r} is not X,Y,Z (three numbers, metres) or one of "
                          f"{', '.join(CAMERA_PLACEMENTS)}")
    return values


def camera_settings(camera: str = "corner2", camera_pos=None, crop: float = 1.0, image_size: int = 64) -> dict:
    """The settings that decide what a policy sees, validated; stored with datasets and checkpoints so
    that evaluation renders the scene the way the training data did."""
    if camera not in CAMERAS:
        raise ConfigError(f"unknown camera {camera!r}; choose from {', '.join(CAMERAS)}")
    pos = parse_camera_pos(camera_pos)
    if not 0.0 < float(crop) <= 1.0:
        raise ConfigError(f"crop {crop} is outside (0, 1] (the centre fraction of the frame kept)")
    if image_size < 8 or image_size > 480 or round(image_size / float(crop)) > 480:
        raise ConfigError(f"image size {image_size} (rendered at {round(image_size / float(crop))} px before the "
                          "crop) is out of range: 8-480 px")
    return {"camera": camera, "camera_pos": list(pos) if pos else None, "crop": float(crop), "image_size": int(image_size)}


def difficulty_of(task: str) -> str:
    return next(group for group, names in DIFFICULTY.items() if task in names)


def setup_rendering() -> None:
    """Headless OpenGL for MuJoCo: OSMesa unless the user chose a backend (MUJOCO_GL=egl|osmesa|glfw).
    Must run before mujoco is imported."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if os.environ["MUJOCO_GL"] == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


setup_rendering()  # at import: mujoco reads MUJOCO_GL once, when it is first imported


def gl_error(e: BaseException) -> str:
    """One line for an OpenGL failure (e.g. PyOpenGL's `'NoneType' object has no attribute 'glGetError'`
    when libOSMesa is missing), naming the Debian package that fixes it."""
    backend = os.environ.get("MUJOCO_GL", "")
    hint = {"osmesa": "install Debian's libosmesa6 (apt-get install libosmesa6)",
            "egl": "install Debian's libegl1 and libegl-mesa0, or set MUJOCO_GL=osmesa with libosmesa6"}.get(
        backend, "set MUJOCO_GL=osmesa and install Debian's libosmesa6")
    return f"MuJoCo cannot render with MUJOCO_GL={backend} ({type(e).__name__}: {e}): {hint}"


def _import_metaworld():
    setup_rendering()
    try:
        import metaworld  # noqa: F401
        import metaworld.policies
        import mujoco
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
        from mujoco import gl_context
    except ImportError as e:
        raise EnvError(f"Meta-World is not installed ({e}): pip install 'tinyvla[metaworld]'") from None
    except Exception as e:  # noqa: BLE001 - a missing or broken GL library fails inside PyOpenGL in many ways
        raise EnvError(gl_error(e)) from None
    chosen = getattr(gl_context, "_MUJOCO_GL", None)
    if chosen is not None and chosen != os.environ["MUJOCO_GL"].lower() and not os.environ.get("DISPLAY"):
        raise EnvError(f"mujoco was imported before tinyvla chose headless rendering (it uses MUJOCO_GL="
                       f"{chosen or 'glfw'}); set MUJOCO_GL=osmesa in the environment")
    return ALL_V3_ENVIRONMENTS, metaworld.policies, mujoco


def expert_for(task: str):
    """Meta-World's scripted policy for `task` (e.g. SawyerPickPlaceV3Policy for pick-place-v3)."""
    _, policies, _ = _import_metaworld()
    return policies.ENV_POLICY_MAP[task]()


class MetaWorldEnv(gym.Env):
    """One Meta-World task seen through a camera: obs {"image": (3, H, W) uint8, "state": (4,) float32}.

    `reset(seed=s)` draws new object/goal positions from `s` (reproducible). An episode ends with
    `terminated=True` at the first success (`info["is_success"]`) or is truncated after `max_steps`.
    `step(action, render=False)` skips the camera when the caller does not need the next frame.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, image_size: int = 64, camera: str = "corner2", max_steps: int = 500,
                 render_quality: str = "fast", camera_pos=None, crop: float = 1.0):
        if task not in INSTRUCTIONS:
            resolve_tasks(task)  # raises with the list of valid names
        self.settings = camera_settings(camera, camera_pos, crop, image_size)
        envs, _, mujoco = _import_metaworld()
        self.task, self.image_size, self.camera, self.max_steps = task, image_size, camera, max_steps
        # --crop F renders at size / F and keeps the centre: more pixels on the work area at the same size.
        self.render_size = round(image_size / self.settings["crop"])
        self.instructions = INSTRUCTIONS[task]
        env = envs[task]()
        # Goal-observable (the scripted expert reads the goal from the observation; the VLA never sees
        # it) and new object/goal positions at every reset, drawn from the env's seeded generator.
        env._partially_observable = False
        del env.sawyer_observation_space  # a cached property that depends on observability
        env._freeze_rand_vec = False
        env._set_task_called = True
        env.seeded_rand_vec = True
        env.max_path_length = max_steps
        self._env, self._mujoco = env, mujoco
        if self.settings["camera_pos"] is not None:  # data.cam_xpos follows at the next reset's forward pass
            env.model.cam_pos[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)] = self.settings["camera_pos"]
        if render_quality not in ("fast", "default"):
            raise ConfigError(f"render_quality is 'fast' or 'default', not {render_quality!r}")
        if render_quality == "fast":  # the shadow map and multisampling cost ~90% of a software-rendered frame
            env.model.vis.quality.shadowsize = 0
            env.model.vis.quality.offsamples = 0
        try:
            self._renderer = mujoco.Renderer(env.model, self.render_size, self.render_size)
        except Exception as e:  # noqa: BLE001 - the GL stack reports many kinds of errors
            raise EnvError(gl_error(e)) from None
        flags = mujoco.mjtRndFlag
        self._flags = ([(flags.mjRND_SHADOW, 0), (flags.mjRND_REFLECTION, 0), (flags.mjRND_SKYBOX, 0)]
                       if render_quality == "fast" else [])
        self._raw_obs: np.ndarray | None = None
        self._steps = 0
        self.instruction = self.instructions[0]
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
        })
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    # ---- observation -----------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The camera image (H, W, 3) uint8, upright (MuJoCo's offscreen buffer is bottom-up)."""
        self._renderer.update_scene(self._env.data, camera=self.camera)
        for flag, value in self._flags:
            self._renderer.scene.flags[flag] = value
        # A GL failure makes mjr_readPixels write nothing, and the frame would be whatever memory the buffer held:
        # it is pre-filled with a pattern no render produces, so such a frame is an error, never a silent input.
        out = np.empty((self.render_size, self.render_size, 3), np.uint8)
        out[..., 0], out[..., 1:] = 0, 255
        frame = self._renderer.render(out=out)
        if not frame[..., 0].any() and (frame[..., 1:] == 255).all():
            raise EnvError(f"{self.task}: the renderer produced no image (a broken GL context)")
        frame = frame[::-1, ::-1]
        if self.render_size != self.image_size:
            o = (self.render_size - self.image_size) // 2
            frame = frame[o : o + self.image_size, o : o + self.image_size]
        return np.ascontiguousarray(frame)

    def _obs(self, render: bool) -> dict[str, Any]:
        image = self.render().transpose(2, 0, 1) if render else None
        return {"image": image, "state": self._raw_obs[:4].astype(np.float32)}

    # ---- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None, render: bool = True):
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(int(seed))
            self.instruction = self.instructions[int(np.random.default_rng(seed).integers(len(self.instructions)))]
        self._raw_obs, _ = self._env.reset()
        self._steps = 0
        return self._obs(render), {"instruction": self.instruction, "task": self.task}

    def step(self, action, render: bool = True):
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(4), -1.0, 1.0)
        self._raw_obs, reward, _, _, info = self._env.step(action)
        self._steps += 1
        success = bool(info.get("success", 0.0))
        truncated = not success and self._steps >= self.max_steps
        return self._obs(render), float(reward), success, truncated, {"is_success": success, "task": self.task}

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state."""
        if not hasattr(self, "_expert"):
            import warnings

            self._expert = expert_for(self.task)
            warnings.filterwarnings("ignore", message="Constant.*may be too high")
        return np.clip(self._expert.get_action(self._raw_obs), -1.0, 1.0).astype(np.float32)

    def close(self) -> None:
        r = getattr(self, "_renderer", None)
        if r is not None:
            # mujoco's Renderer.close() destroys its GL context, then frees the MjrContext's GL objects in whatever
            # context is current -- another env's when several live in one process (the evaluation's slots), whose
            # framebuffer then renders nothing. Free our objects in our own context first.
            if getattr(r, "_gl_context", None) and getattr(r, "_mjr_context", None):
                r._gl_context.make_current()
                r._mjr_context.free()
                r._mjr_context = None
            r.close()
            self._renderer = None
        self._env.close()


def bench_env(tasks: str = "mt10", steps: int = 300, image_size: int = 64, camera: str = "corner2") -> dict:
    """Env steps per second on one core, expert acting: physics only, physics + a fast-quality frame
    per step, physics + a frame at MuJoCo's default quality (4096-px shadow map, 4x multisampling)."""
    import time

    setup_rendering()
    names = resolve_tasks(tasks)
    out: dict = {"tasks": names, "image_size": image_size, "camera": camera, "steps_per_task": steps,
                 "gl_backend": os.environ.get("MUJOCO_GL", "")}
    for mode, quality, render in (("physics", "fast", False), ("render_fast", "fast", True),
                                  ("render_default", "default", True)):
        total, seconds = 0, 0.0
        for task in names:
            env = MetaWorldEnv(task, image_size, camera, render_quality=quality)
            env.reset(seed=0, render=render)
            t0 = time.perf_counter()
            for i in range(steps):
                _, _, success, truncated, _ = env.step(env.expert_action(), render=render)
                if success or truncated:
                    env.reset(seed=i + 1, render=render)
            seconds += time.perf_counter() - t0
            total += steps
            env.close()
        out[f"{mode}_steps_per_s"] = total / seconds
    out["speedup_fast_vs_default"] = out["render_fast_steps_per_s"] / out["render_default_steps_per_s"]
    return out


__all__ = ["bench_env", "camera_settings", "parse_camera_pos", "CAMERA_PLACEMENTS", "MetaWorldEnv", "resolve_tasks", "TASK_SETS", "INSTRUCTIONS", "DIFFICULTY", "MT10", "MT50", "EnvError"]
