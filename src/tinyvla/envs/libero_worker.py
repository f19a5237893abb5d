"""The LIBERO side of `tinyvla.envs.libero`: a process of LIBERO's own Python environment.

Run as `<libero python> -m tinyvla.envs.libero_worker` with tinyvla's src/ on PYTHONPATH; tinyvla's venv
imports only its message codec. LIBERO's pinned stack (mujoco 2.3.7, robosuite 1.4.0, numpy 1.26) cannot
share a venv with Meta-World's mujoco 3.x. The worker reads requests from stdin and writes replies to the
stdout it started with, each a length-prefixed message (the parent is the only peer); anything the
libraries print goes to stderr. Needs only numpy, LIBERO and tinyvla.envs.libero_expert / libero_goal_expert
(pure numpy).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import time
import traceback

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ["MUJOCO_GL"] == "osmesa":
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import numpy as np  # noqa: E402

from tinyvla.envs.libero_expert import PickPlaceExpert, Scene, path_top, quat_to_axis_angle  # noqa: E402
from tinyvla.envs.libero_goal_expert import EXPERT_GOALS, GoalExpert  # noqa: E402
from tinyvla.envs.libero_long_expert import expert_for  # noqa: E402

CAMERAS = {"image": "agentview", "wrist_image": "robot0_eye_in_hand"}
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1.0])  # what the LIBERO evaluations step while objects settle


class Worker:
    def __init__(self):
        self.env = None

    # ---- setup -----------------------------------------------------------------------------------
    def make(self, suite: str, task_id: int, image_size: int, render_quality: str, image_convention: str,
             cameras: list[str]) -> dict:
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs.env_wrapper import ControlEnv

        bench = benchmark.get_benchmark_dict()[suite](task_order_index=0)
        task = bench.get_task(task_id)
        bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
        t0 = time.perf_counter()
        # No robosuite renderer and no camera observables: frames are rendered here, only when asked for.
        self.env = ControlEnv(bddl_file_name=bddl, use_camera_obs=False, has_offscreen_renderer=False,
                              hard_reset=False, ignore_done=True, horizon=10_000)
        self.init_states = np.asarray(bench.get_task_init_states(task_id))
        self.image_size, self.convention, self.cameras = image_size, image_convention, cameras
        self.renderer = None
        inner = self.env.env
        model = inner.sim.model._model
        if render_quality == "fast":  # the shadow map and multisampling dominate a software-rendered frame
            model.vis.quality.shadowsize = 0
            model.vis.quality.offsamples = 0
        self.render_quality = render_quality
        goal = inner.parsed_problem["goal_state"]
        self.expert_goal = None  # a single pick-and-place goal: (in|on, movable object, region or object)
        if len(goal) == 1 and len(goal[0]) == 3 and goal[0][0].lower() in ("in", "on") \
                and goal[0][1] in inner.objects_dict:
            self.expert_goal = [goal[0][0].lower(), *goal[0][1:]]
        # drawers, knobs, pushing, a place into a closed drawer or onto an object: the goal experts (None: not theirs);
        # a goal of several predicates: their experts in sequence (None: some predicate has none, all refused)
        self.goal_expert = expert_for(goal, self)
        if GoalExpert.unhandled(goal, self):  # (a tall object onto the table itself): no expert, said up front
            self.expert_goal = None
        return {"instruction": task.language, "task_name": task.name,
                "n_init_states": len(self.init_states), "goal": goal, "make_seconds": time.perf_counter() - t0,
                "expert": self.expert_goal is not None or self.goal_expert is not None}

    # ---- observation -----------------------------------------------------------------------------
    def render_frames(self) -> dict:
        import mujoco

        inner = self.env.env
        if self.renderer is None:
            self.renderer = mujoco.Renderer(inner.sim.model._model, self.image_size, self.image_size)
            self.scene_option = mujoco.MjvOption()
            self.scene_option.geomgroup[0] = 0  # collision geoms (robosuite's group 0) stay hidden, as in robosuite
        out = {}
        for key in self.cameras:
            self.renderer.update_scene(inner.sim.data._data, camera=CAMERAS[key], scene_option=self.scene_option)
            if self.render_quality == "fast":
                flags = mujoco.mjtRndFlag
                for flag in (flags.mjRND_SHADOW, flags.mjRND_REFLECTION, flags.mjRND_SKYBOX):
                    self.renderer.scene.flags[flag] = 0
            frame = self.renderer.render()  # upright (mujoco.Renderer flips the bottom-up GL buffer)
            if self.convention == "lerobot":  # LeRobot's / OpenVLA's LIBERO data: robosuite's frame turned 180°
                frame = frame[:, ::-1]
            out[key] = np.ascontiguousarray(frame)
        return out

    def _state(self) -> np.ndarray:
        """The 8-D state of the LIBERO papers / LeRobot: eef position, eef axis-angle, finger positions."""
        obs = self._raw_obs
        return np.concatenate([obs["robot0_eef_pos"], quat_to_axis_angle(obs["robot0_eef_quat"]),
                               obs["robot0_gripper_qpos"]]).astype(np.float32)

    def _obs(self, render: bool) -> dict:
        return {"state": self._state(), "images": self.render_frames() if render else None}

    # ---- episode ---------------------------------------------------------------------------------
    def reset(self, init_state: int, settle_steps: int, render: bool) -> dict:
        # LIBERO re-places the fixtures (cabinet, stove: +-1 cm, +-2 degrees) at every reset from numpy's global
        # generator, which the fixed initial states do not cover: seeded by the initial state, a state's scene no
        # longer depends on which episodes the worker ran before it (the same episode in any order or subset).
        np.random.seed(init_state)
        self.env.reset()
        # What a hard reset (LIBERO's default, which reloads the model: seconds) would also clear, so that a
        # fixed initial state gives the same episode every time: the gripper's action smoothing and the
        # solver's warm start.
        for robot in self.env.env.robots:
            robot.gripper.current_action = np.zeros_like(robot.gripper.current_action)
        self._raw_obs = self.env.set_init_state(self.init_states[init_state])
        self.env.env.sim.data._data.qacc_warmstart[:] = 0
        for _ in range(settle_steps):
            self._raw_obs, _, _, _ = self.env.step(SETTLE_ACTION)
        self.expert = PickPlaceExpert()
        if self.goal_expert is not None:
            self.goal_expert.reset()
        self.fixture_points = None  # the expert's height map of the fixtures: built on its first scene
        return self._obs(render)

    def step(self, action, render: bool) -> tuple[dict, bool]:
        self._raw_obs, _, _, _ = self.env.step(np.asarray(action, dtype=np.float64))
        return self._obs(render), bool(self.env.check_success())

    def raw_frame(self, camera: str) -> np.ndarray:
        """robosuite's own frame of `camera`, as its camera observations come out (bottom-up): for tests."""
        from robosuite.utils.binding_utils import MjRenderContextOffscreen

        sim = self.env.env.sim
        if sim._render_context_offscreen is None:
            MjRenderContextOffscreen(sim, device_id=-1)  # registers itself with the sim
        return sim.render(camera_name=CAMERAS[camera], width=self.image_size, height=self.image_size)

    def get_init_state(self, index: int) -> np.ndarray:
        return self.init_states[index]

    # ---- privileged state and the expert ---------------------------------------------------------
    def _collision_geoms(self, body_name: str) -> list[int]:
        """The collision geoms of a body and its descendants."""
        inner = self.env.env
        model = inner.sim.model._model
        root = inner.obj_body_id[body_name]
        if not hasattr(self, "_geoms_of"):
            self._geoms_of = {}
        if body_name not in self._geoms_of:
            bodies = {root}
            for b in range(model.nbody):
                p = b
                while p > 0 and p not in bodies:
                    p = model.body_parentid[p]
                if p in bodies:
                    bodies.add(b)
            self._geoms_of[body_name] = [g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies
                                         and (model.geom_contype[g] or model.geom_conaffinity[g])]
        return self._geoms_of[body_name]

    def _geom_corners(self, g: int) -> np.ndarray:
        """(8, 3) world corners of geom g's bounding box (in the geom's frame, so tight for a rotated box)."""
        model, data = self.env.env.sim.model._model, self.env.env.sim.data._data
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        corners = model.geom_aabb[g, :3] + signs * model.geom_aabb[g, 3:]
        return data.geom_xpos[g] + corners @ data.geom_xmat[g].reshape(3, 3).T

    def _aabb(self, body_name: str) -> tuple[np.ndarray, np.ndarray]:
        """World AABB of the collision geoms of a body and its descendants."""
        points = np.concatenate([self._geom_corners(g) for g in self._collision_geoms(body_name)])
        return points.min(0), points.max(0)

    def _fixture_points(self, cell: float = 0.005) -> np.ndarray:
        """The fixtures' (cabinet, stove, ...) collision geoms as a height map: (n, 3) cells of a `cell` grid,
        each its x, y and the highest top over it. Per geom, not per body: a rotated cabinet's world AABB
        would also cover its open drawer's inside and the space around it."""
        inner = self.env.env
        cells = []
        for name in inner.fixtures_dict:
            if name not in inner.obj_body_id:
                continue
            for g in self._collision_geoms(name):
                corners = self._geom_corners(g)
                hull = _convex_hull(corners[:, :2])  # the box's footprint
                lo, hi = np.floor(hull.min(0) / cell), np.ceil(hull.max(0) / cell)
                grid = np.stack(np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1)), -1)
                grid = grid.reshape(-1, 2) * cell
                edges = np.roll(hull, -1, axis=0) - hull  # counter-clockwise: inside is left of every edge
                rel = grid[:, None, :] - hull[None]
                inside = (edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0] >= -1e-9).all(1)
                if len(hull) < 3:
                    inside[:] = False
                cells.append(np.column_stack([grid[inside], np.full(inside.sum(), corners[:, 2].max())]))
        if not cells:
            return np.zeros((0, 3))
        cells = np.concatenate(cells)
        keys = np.round(cells[:, :2] / cell).astype(np.int64)
        _, idx, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        top = np.full(len(idx), -np.inf)
        np.maximum.at(top, inv.reshape(-1), cells[:, 2])
        return np.column_stack([cells[idx, :2], top])

    def scene(self) -> Scene:
        if self.fixture_points is None:  # fixtures do not move: once per episode, and only for the expert
            self.fixture_points = self._fixture_points()
        inner = self.env.env
        data = inner.sim.data
        predicate, obj, target = self.expert_goal
        if target in inner.object_sites_dict:  # a region: a site with a size, on its parent object
            container = inner.object_states_dict[target].parent_name
            region_pos = np.array(data.get_site_xpos(target))
            region_half = np.abs(data.get_site_xmat(target) @ np.asarray(inner.object_sites_dict[target].size, float))
            container_hi = self._aabb(container)[1]
        else:  # an object: its top
            container = target
            lo_t, container_hi = self._aabb(target)
            region_pos = np.array([*(lo_t[:2] + container_hi[:2]) / 2, container_hi[2]])
            region_half = np.array([*(container_hi[:2] - lo_t[:2]) / 2, 0.0])
        lo, hi = self._aabb(obj)
        others = [n for n in inner.objects_dict if n not in (obj, container)]
        neighbours = np.array([self._aabb(n) for n in others]).reshape(-1, 2, 3)
        # 'in' keeps to the container's rim (what LIBERO-Object was measured with); 'on' clears whatever stands
        # in the carried object's way: the other objects and the fixtures (the cabinet it may stand on / in)
        # along its straight path to the target
        clear_z = container_hi[2] if predicate == "in" else max(
            container_hi[2], path_top(lo, hi, region_pos, neighbours, self.fixture_points))
        obs = self._raw_obs
        return Scene(eef_pos=np.asarray(obs["robot0_eef_pos"], dtype=np.float64),
                     eef_quat=np.asarray(obs["robot0_eef_quat"]), gripper_qpos=np.asarray(obs["robot0_gripper_qpos"]),
                     object_pos=np.array(data.body_xpos[inner.obj_body_id[obj]]), object_lo=lo, object_hi=hi,
                     region_pos=region_pos, region_half=region_half, container_hi=container_hi, clear_z=float(clear_z),
                     neighbours=neighbours, finger_axis=self._finger_axis(), fixture_points=self.fixture_points)

    def _finger_axis(self) -> np.ndarray:
        data = self.env.env.sim.data
        axis = np.array(data.get_body_xpos("gripper0_rightfinger")) - data.get_body_xpos("gripper0_leftfinger")
        return axis / max(np.linalg.norm(axis), 1e-9)

    def expert_action(self) -> np.ndarray:
        if self.goal_expert is not None:
            return self.goal_expert.act(self)
        if self.expert_goal is None:
            raise RuntimeError(f"no scripted expert for this task's goal; experts so far: {EXPERT_GOALS}")
        return self.expert.act(self.scene())

    def rollout(self, init_state: int, settle_steps: int, max_steps: int, render: bool) -> dict:
        """One expert episode, recorded (obs before each action) up to and including the first success."""
        t0 = time.perf_counter()
        obs = self.reset(init_state, settle_steps, render)
        states, actions, images, success = [], [], {k: [] for k in self.cameras} if render else {}, False
        for _ in range(max_steps):
            action = self.expert_action()
            states.append(obs["state"])
            actions.append(action)
            for k in images:
                images[k].append(obs["images"][k])
            obs, success = self.step(action, render)
            if success:
                break
        return {"states": np.stack(states), "actions": np.stack(actions).astype(np.float32),
                "images": {k: np.stack(v) for k, v in images.items()}, "success": success,
                "init_state": init_state, "seconds": time.perf_counter() - t0}

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
        if self.env is not None:
            self.env.close()
            self.env = None


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """2-D convex hull, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, np.round(points, 6))))
    if len(pts) < 3:
        return np.array(pts)

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) \
                    - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def _plain(obj):
    """numpy -> plain Python (arrays as (dtype, shape, bytes)): the two venvs run different numpy majors,
    whose pickles of arrays do not load in each other."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": (obj.dtype.str, obj.shape, np.ascontiguousarray(obj).tobytes())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _numpy(obj):
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            dtype, shape, data = obj["__ndarray__"]
            return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()
        return {k: _numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_numpy(v) for v in obj)
    return obj


def write_message(stream, obj) -> None:
    data = pickle.dumps(_plain(obj), protocol=4)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def read_message(stream):
    """-> the next message, or None at the end of the stream."""
    header = stream.read(8)
    if len(header) < 8:
        return None
    (n,) = struct.unpack("<Q", header)
    data = stream.read(n)
    if len(data) < n:
        return None
    return _numpy(pickle.loads(data))  # plain Python from our own parent / child process


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # library prints must not corrupt the reply stream
    inp = sys.stdin.buffer
    worker = Worker()
    while True:
        request = read_message(inp)
        if request is None or request["cmd"] == "exit":
            break
        try:
            reply = {"ok": getattr(worker, request["cmd"])(**request.get("args", {}))}
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it there
            reply = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        write_message(out, reply)
    worker.close()


if __name__ == "__main__":
    main()
