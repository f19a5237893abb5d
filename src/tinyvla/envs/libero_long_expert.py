"""Scripted experts for LIBERO goals of more than one predicate (LIBERO-10: put both X and Y in the basket,
turn on the stove and put the moka pot on it, put the bowl in the drawer and close it, ...): one step per
predicate, each the single-goal expert of tinyvla.envs.libero_expert / libero_goal_expert (or this module's
`CloseExpert`), run one after another.

A step ends when its predicate holds (LIBERO's own check, the worker env's `_eval_predicate`) and its expert
has let go and backed off; a step whose predicate already holds when its turn comes is skipped (a drawer that
starts closed). The order: turn knobs on first (the pot put on the stove afterwards stands by the knob), then
the pick-and-places and pushes in the goal's order (a push first would shove its object into the plate the
mug is to go on), then close what was opened (`close` a drawer after putting the bowl in).

Pure numpy, like the other experts: the worker's simulator is read by attribute access only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from tinyvla.envs.libero_expert import (FINGER_OPEN, HAND_ABOVE_GRIP, HAND_HALF_LENGTH, HAND_HALF_WIDTH,
                                        PickPlaceExpert, Scene, _quat_inv, _quat_mul, path_top,
                                        quat_to_axis_angle)
from tinyvla.envs.libero_goal_expert import (OPEN, GoalExpert, KnobExpert, PushExpert, _articulation, _Base,
                                             _JointTarget, _range_goal, _yaw_to, quat_about)

ORDER = {"turnon": 0, "open": 0, "in": 1, "on": 1, "close": 2}  # which predicates' steps go first


def _released(expert) -> bool:
    """The expert has done its part and the hand is off what it moved: `done`, or its last phase for a while."""
    if getattr(expert, "done", False):
        return True
    if isinstance(expert, PickPlaceExpert):
        return expert.phase == "retreat" and expert.timer > 12
    if isinstance(expert, (KnobExpert, PushExpert)):
        return expert.phase == "up" and expert.timer > 12
    return False


class SequenceExpert:
    """The expert for a goal of several predicates: one GoalExpert step per predicate, in ORDER.

    Each step is `(predicate, GoalExpert)`. The worker's `expert_goal` is set to the step's predicate while a
    pick-and-place step runs: the existing scenes (`worker.scene()`) read what to move and where from it."""

    retries = 1  # a step that ended without its predicate holding is run again this many times

    def __init__(self, steps: list[tuple[list, GoalExpert]]):
        self.steps = steps
        self.reset()

    def reset(self) -> None:
        self.index, self.tries, self.started = 0, 0, False
        self.home: tuple | None = None  # the hand's orientation and finger axis at the episode's start
        for _, step in self.steps:
            step.reset()

    @staticmethod
    def for_goal(goal: list, worker) -> "SequenceExpert | None":
        """The sequence for `goal`, or None when a predicate has no expert (the whole goal is then refused)."""
        if len(goal) < 2:
            return None
        steps = []
        for pred in ([p[0].lower(), *p[1:]] for p in goal):
            step = _step_for(pred, worker)
            if step is None:
                return None
            steps.append((pred, step))
        steps.sort(key=lambda ps: ORDER.get(ps[0][0], 9))  # (stable: the goal's order within a rank)
        # several objects `on` one region go side by side (`in` a basket they may land on each other)
        for target in {p[2] for p, _ in steps if p[0] == "on"}:
            sharing = [(p[1], step) for p, step in steps if p[0] == "on" and p[2] == target]
            objects = [obj for obj, _ in sharing]
            for k, (_, step) in enumerate(sharing if len(sharing) > 1 else []):
                step.stages = [(name, make, _slot(scene, k, objects, target)) for name, make, scene in step.stages]
        return SequenceExpert(steps)

    def _holds(self, worker, pred: list) -> bool:
        return bool(worker.env.env._eval_predicate([pred[0], *pred[1:]]))

    def _start(self, worker) -> None:
        """Point the worker's pick-and-place goal at this step, skip steps whose predicate already holds."""
        while self.index < len(self.steps) and self._holds(worker, self.steps[self.index][0]):
            self.index += 1
        if self.index >= len(self.steps):
            return
        pred, step = self.steps[self.index]
        worker.expert_goal = pred if pred[0] in ("in", "on") else None
        worker.fixture_points = None  # the fixtures' height map, again: a drawer may have moved
        self.started = True
        if self.index == 0 and self.tries == 0:
            return
        first = step.experts[0]
        if isinstance(first, PickPlaceExpert):  # from wherever the last step left the hand: over to the grasp
            first.home_quat, first.home_axis = self.home[0].copy(), self.home[1].copy()
            s = step.stages[0][2](worker)
            target, quat = step._transit(s, first)
            target[2] = first.flight_height(s, target)  # (a ClearingPickPlaceExpert's: over the other objects)
            step.transit = (target, quat, 0)

    def act(self, worker) -> np.ndarray:
        if self.home is None:
            axis = worker._finger_axis()[:2]
            self.home = (_hand(worker).eef_quat.copy(), axis / max(np.linalg.norm(axis), 1e-9))
        if not self.started:
            self._start(worker)
        if self.index < len(self.steps):
            pred, step = self.steps[self.index]
            if _released(step.experts[-1]) and step.index == len(step.stages) - 1:
                if not self._holds(worker, pred) and self.tries < self.retries:
                    self.tries += 1
                    step.reset()
                else:
                    self.index, self.tries = self.index + 1, 0
                self.started = False
                self._start(worker)
        if self.index >= len(self.steps):  # all done (or given up): hold still, open, over the table
            hand = _hand(worker)
            return _Base()._act(hand, hand.eef_pos, self.home[0], OPEN, speed=0.3)
        return self.steps[self.index][1].act(worker)


@dataclass
class PartsScene(Scene):
    """The pick-and-place scene plus the moved object's collision boxes: where a handle is."""

    object_parts: np.ndarray = field(default_factory=lambda: np.zeros((0, 8, 3)))  # (k, 8, 3) box corners


class HandleGraspExpert(PickPlaceExpert):
    """The pick-and-place expert for a solid object wider than the open gripper every way (a moka pot): grasped
    where a part of it is thin enough for the fingers (its handle), the fingers and the hand clear of the rest.
    A rim grasp (PickPlaceExpert's, for a hollow bowl) closes here on the pot's lid, not on a wall."""

    def _grasp_point(self, s: PartsScene) -> np.ndarray:
        grasp = _slab_grasp(s.object_parts, s.object_pos[:2], self.home_axis)
        if grasp is None:
            return super()._grasp_point(s)
        point, self.yaw = grasp
        self.rim = True  # (chosen once, like a rim point: no dithering; the closed fingers hold a thin part)
        return point


class ClearingPickPlaceExpert(PickPlaceExpert):
    """The pick-and-place expert that flies over the other objects: to its hover point at a height where the
    open hand passes over them (the plain hover, 8 cm above a flat box, sweeps a 13 cm milk carton beside it
    over onto the box), and carried with the object's bottom clear of those along its way, not only of the
    basket's rim (the box hanging from the hand knocks a tall carton over into its own way)."""

    def act(self, s: Scene) -> np.ndarray:
        if self.phase in ("lift", "carry"):
            s = copy.copy(s)
            s.clear_z = max(s.clear_z, path_top(s.object_lo, s.object_hi, s.region_pos, s.neighbours))
        return super().act(s)

    def flight_height(self, s: Scene, target: np.ndarray) -> float:
        """High enough for the open hand to pass over the other objects on the straight way to `target`."""
        return max(target[2], _sweep_height(s, s.eef_pos[:2], target[:2]))

    def _move(self, s: Scene, target: np.ndarray, gripper: float) -> np.ndarray:
        if self.phase == "hover":
            target = np.array([*target[:2], self.flight_height(s, target)])
        return super()._move(s, target, gripper)


def _sweep_height(s: Scene, start: np.ndarray, goal: np.ndarray, skip: float = 0.03,
                  margin: float = 0.02) -> float:
    """The lowest grip height at which the hand, open and pointing down (its finger axis s.finger_axis), passes
    straight from `start` to `goal` (x-y) over the neighbours' AABBs; -inf when none is in the way. Its last
    `skip` metres are left out: the grasp point is chosen with the hand clear of the neighbours there."""
    length = np.linalg.norm(goal - start)
    if length <= skip:
        return -np.inf
    u = np.asarray(s.finger_axis[:2], dtype=np.float64)
    u = u / max(np.linalg.norm(u), 1e-9)
    v = np.array([-u[1], u[0]])
    path = start + np.linspace(0.0, 1.0 - skip / length, int(np.ceil(length / 0.01)) + 1)[:, None] * (goal - start)
    # (half length along u, half width along v, the part's underside above the grip point): the hand, the
    # open fingers down to their tips
    parts = [(HAND_HALF_LENGTH, HAND_HALF_WIDTH, HAND_ABOVE_GRIP), (FINGER_OPEN + 0.015, 0.015, -0.015)]
    need = -np.inf
    for lo, hi in s.neighbours:
        corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
        rel = corners[None] - path[:, None]  # (n, 4, 2)
        nu, nv = rel @ u, rel @ v
        for pu, pv, above in parts:
            if ((nu.min(1) < pu + margin) & (nu.max(1) > -pu - margin)
                    & (nv.min(1) < pv + margin) & (nv.max(1) > -pv - margin)).any():
                need = max(need, hi[2] - above + margin)
    return float(need)


class AlignedPickPlaceExpert(PickPlaceExpert):
    """The pick-and-place expert for a flat object (a book on its edge) into a region narrower than the object
    is long (a caddy's compartment): grasped at its middle across its thickness, turned on the way so that its
    thin side lies across the region's narrow side, and lowered into the region down to its floor."""

    def reset(self) -> None:
        super().reset()
        self.turn = 0.0  # the turn about the vertical that lines the object up with the region

    def _grasp_point(self, s: PartsScene) -> np.ndarray:
        thin, _ = _footprint_axes(s.object_parts)
        centre = (s.object_lo + s.object_hi) / 2
        self.rim = True  # (chosen once: no dithering; the closed fingers hold a thin object)
        self.yaw = _yaw_to(self.home_axis, thin)
        narrow = np.array([1.0, 0.0]) if s.region_half[0] < s.region_half[1] else np.array([0.0, 1.0])
        self.turn = _yaw_to(thin, narrow)
        return np.array([centre[0], centre[1], max(s.object_hi[2] - 0.03, s.object_lo[2] + 0.02)])

    def act(self, s: PartsScene) -> np.ndarray:
        if self.phase in ("carry", "lower") and self.turn:  # (once lifted: the object turns clear of the table)
            turn, self.turn = self.turn, 0.0
            self.yaw += turn
            # the object turns with the hand about the grip point: the hand's offset from it (measured as the carry
            # started, unturned) turns too, or the object comes down 1-2 cm beside the slot, onto its wall
            c, sn = np.cos(turn), np.sin(turn)
            self.offset = np.array([[c, -sn], [sn, c]]) @ self.offset
        return super().act(s)


class FrontInsertExpert(PickPlaceExpert):
    """The pick-and-place expert for a region under a roof (a microwave's inside): the hand cannot go in over
    the object. So: grasped by its handle (the thin part farthest out), turned on the way so that the handle
    points out of the opening, carried level through it just above the region's floor, as deep as the hand
    stays clear of the opening's top and sides, let go, and the hand withdrawn the way it came (`done`)."""

    def reset(self) -> None:
        super().reset()
        self.handle: np.ndarray | None = None  # grip point minus the object's position (x-y), at the grasp
        self.outward: np.ndarray | None = None  # (x, y) out of the opening
        self.goal: np.ndarray | None = None  # the object's position (x, y) to let go at
        self.bottom = 0.0  # the object's bottom's height on the way in
        self.done = False

    def _grasp_point(self, s: PartsScene) -> np.ndarray:
        grasp = _slab_grasp(s.object_parts, s.object_pos[:2], self.home_axis, far=True)
        if grasp is None:
            return super()._grasp_point(s)
        point, self.yaw = grasp
        self.rim = True  # (chosen once, no dithering)
        self.handle = point[:2] - s.object_pos[:2]
        return point

    def _rot_error(self, s: PartsScene) -> np.ndarray:
        """On the way to the hover point the hand keeps its reset orientation and turns to the handle only once
        over it: turned on the way, its 21 cm long fingers sweep round and catch on the open microwave door."""
        if self.phase != "hover" or self.grasp is None or np.linalg.norm(self.grasp[:2] - s.eef_pos[:2]) < 0.03:
            return super()._rot_error(s)
        return quat_to_axis_angle(_quat_mul(self.home_quat, _quat_inv(s.eef_quat)))

    def _plan(self, s: PartsScene) -> None:
        """The turn that points the handle out of the opening and where the object goes in the region."""
        d = s.object_pos[:2] - s.region_pos[:2]  # out of the opening: the world axis nearest the way back
        self.outward = np.array([np.sign(d[0]), 0.0]) if abs(d[0]) > abs(d[1]) else np.array([0.0, np.sign(d[1])])
        turn = np.arctan2(self.outward[1], self.outward[0]) - np.arctan2(self.handle[1], self.handle[0])
        turn = min((turn + k * 2 * np.pi for k in (-1, 0, 1)), key=lambda t: abs(self.yaw + t))  # the wrist's way
        c, sn = np.cos(turn), np.sin(turn)
        rot = np.array([[c, -sn], [sn, c]])
        h = rot @ (s.eef_pos[:2] - s.object_pos[:2])  # grip minus object, once turned
        u = rot @ s.finger_axis[:2]
        u = u / max(np.linalg.norm(u), 1e-9)
        lateral = np.array([-self.outward[1], self.outward[0]])
        half_out, half_lat = abs(s.region_half[:2] @ self.outward), abs(s.region_half[:2] @ lateral)
        edge = s.region_pos[:2] + self.outward * half_out
        self.bottom = s.region_pos[2] - s.region_half[2] + 0.02
        grip_z = self.bottom + self.hang
        best = None  # (lateral offset, [depths the hand is clear at])
        for lat in sorted(np.arange(-half_lat + 0.01, half_lat - 0.01 + 1e-9, 0.005), key=abs):
            depths = [dep for dep in np.arange(0.005, 2 * half_out - 0.005, 0.0025)
                      if self._blocked(s, edge - self.outward * dep + lateral * lat + h, grip_z, u,
                                       np.array([-u[1], u[0]])) == 0.0]
            if depths and (best is None or max(depths) > max(best[1]) + 0.005):
                best = (lat, depths)
        lat, depths = best if best is not None else (0.0, [0.02])
        self.goal = edge - self.outward * (min(depths) + max(depths)) / 2 + lateral * lat
        self.yaw += turn

    def act(self, s: PartsScene) -> np.ndarray:
        if self.phase in ("hover", "descend", "close", "slide") or self.handle is None:
            action = super().act(s)
            if self.phase == "lift" and self.handle is not None:  # (just closed) from here on this class's plan
                self.phase, self.timer = "raise", 0
                self._start_lift(s)
                self._plan(s)
            return action
        self.path.append(np.asarray(s.eef_pos, dtype=np.float64).copy())
        self.timer += 1
        hand_off = s.eef_pos[:2] - s.object_pos[:2]  # grip minus object now (turning)
        z = self.bottom + self.hang
        outside = self.goal + self.outward * (np.max(s.object_hi[:2] - s.object_lo[:2]) + 0.02)
        if self.phase == "raise":  # up to the way-in height, turning
            target = np.array([*self.lift_xy, z])
            if (abs(z - s.eef_pos[2]) < 0.01 and np.linalg.norm(self._rot_error(s)) < 0.1) or self.timer > 60:
                self.phase, self.timer = "front", 0
            return self._move(s, target, 1.0)
        if self.phase == "front":  # the object in front of the opening
            target = np.array([*(outside + hand_off), z])
            if np.linalg.norm(outside - s.object_pos[:2]) < 0.01 or self.timer > 80:
                self.phase, self.timer = "insert", 0
            return self._move(s, target, 1.0)
        if self.phase == "insert":
            target = np.array([*(self.goal + hand_off), z])
            if np.linalg.norm(self.goal - s.object_pos[:2]) < 0.008 or self._stalled() or self.timer > 60:
                self.phase, self.timer = "lower", 0
            action = self._move(s, target, 1.0)
            action[:3] = np.clip(action[:3], -0.5, 0.5)
            return action
        if self.phase == "lower":
            target = np.array([s.eef_pos[0], s.eef_pos[1], z - 0.03])
            if self._stalled() or self.timer > 20:
                self.phase, self.timer = "release", 0
            action = self._move(s, target, 1.0)
            action[2] = max(action[2], -0.3)
            return action
        if self.phase == "release":
            if self.timer > 10:
                self.phase, self.timer = "withdraw", 0
                self.lift_xy = s.eef_pos[:2] + self.outward * 0.12
            return self._move(s, s.eef_pos.copy(), -1.0)
        if self.timer > 25 or np.linalg.norm(self.lift_xy - s.eef_pos[:2]) < 0.01:  # withdraw
            self.done = True
        return self._move(s, np.array([*self.lift_xy, s.eef_pos[2]]), -1.0)


def _footprint_axes(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (thin, long) unit x-y directions of the object's footprint (its parts' corners' principal axes)."""
    xy = parts.reshape(-1, 3)[:, :2]
    xy = xy - xy.mean(0)
    vecs = np.linalg.eigh(xy.T @ xy)[1]  # ascending eigenvalues: the thin direction first
    return vecs[:, 0], vecs[:, 1]


def _needs_alignment(worker, obj: str, region: str) -> bool:
    """A slot (a region narrower than the open hand, 8 cm) that a flat object's thin side fits with a centimetre
    to spare, but not its long side: unturned it does not go in. (A basket, wider, takes a long object as it is.)"""
    inner = worker.env.env
    if region not in inner.object_sites_dict:
        return False
    half = np.asarray(inner.object_sites_dict[region].size, dtype=np.float64)[:2]
    parts = _parts(worker, obj)
    thin, long = _footprint_axes(parts)
    xy = parts.reshape(-1, 3)[:, :2]
    thick, length = np.ptp(xy @ thin), np.ptp(xy @ long)
    return bool(2 * half.min() < 2 * FINGER_OPEN and thick < 2 * half.min() - 0.01 and length > 2 * half.min())


def _slab_grasp(parts: np.ndarray, centre: np.ndarray, home_axis: np.ndarray, step: float = 0.005,
                far: bool = False):
    """-> (grasp point, the hand's turn from the reset orientation) where what lies between the open fingers is
    thinner than their opening and nothing of the object is in the fingers' way down or under the hand; of
    those at the highest height that has one, the nearest to `centre` (the less the object hangs off the grasp),
    or (`far`) of all, the farthest from it (a mug's handle, not its rim). None when there is none."""
    lo, hi = parts.reshape(-1, 3).min(0), parts.reshape(-1, 3).max(0)
    home = np.arctan2(home_axis[1], home_axis[0])
    boxes = np.stack([parts.min(1), parts.max(1)], 1)  # (k, 2, 3): world AABBs of the parts
    xs, ys = np.arange(lo[0], hi[0] + 1e-9, step), np.arange(lo[1], hi[1] + 1e-9, step)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)  # (n, 2)
    best, best_cost = None, np.inf
    for z in np.arange(hi[2] - 0.015, lo[2] + 0.02, -0.01):
        for angle in np.arange(8) * np.pi / 8:
            u = np.array([np.cos(angle), np.sin(angle)])
            v = np.array([-u[1], u[0]])
            rel = parts[:, :, :2][None] - grid[:, None, None]  # (n, k, 8, 2)
            pu, pv = rel @ u, rel @ v  # (n, k, 8)
            zlo, zhi = boxes[None, :, 0, 2], boxes[None, :, 1, 2]  # (1, k)
            # a part's extent along u / v (its box's corners projected; a box is convex)
            umin, umax, vmin, vmax = pu.min(-1), pu.max(-1), pv.min(-1), pv.max(-1)
            # between the pads: within 1 cm across (v) and at the grip's height
            between = (vmin < 0.01) & (vmax > -0.01) & (zlo < z - 0.005) & (zhi > z + 0.005) \
                & (umin < FINGER_OPEN) & (umax > -FINGER_OPEN)
            held = (between & (vmin < 0.004) & (vmax > -0.004)).any(1)  # under the pads' middles, not their edges
            width_lo = np.where(between, umin, np.inf).min(1)
            width_hi = np.where(between, umax, -np.inf).max(1)
            fits = held & (width_lo > -FINGER_OPEN + 0.012) & (width_hi < FINGER_OPEN - 0.012)
            # the pads' way down (outside the held span, out to the open finger's outside) and the hand's
            # underside (3.5 cm above the grip point) over everything of the object
            reach = (vmin < 0.015) & (vmax > -0.015) & (zhi > z - 0.012)
            pads = reach & (((umax > width_hi[:, None] + 0.004) & (umin < FINGER_OPEN + 0.015))
                            | ((umin < width_lo[:, None] - 0.004) & (umax > -FINGER_OPEN - 0.015)))
            hand = (zhi > z + HAND_ABOVE_GRIP - 0.005) & (umin < HAND_HALF_LENGTH) & (umax > -HAND_HALF_LENGTH) \
                & (vmin < HAND_HALF_WIDTH) & (vmax > -HAND_HALF_WIDTH)
            ok = fits & ~pads.any(1) & ~hand.any(1)
            if not ok.any():
                continue
            middle = (np.where(ok, width_lo, 0.0) + np.where(ok, width_hi, 0.0)) / 2
            mid = grid + middle[:, None] * u  # the held span's middle
            dist = np.linalg.norm(mid - centre, axis=1)
            cost = np.where(ok, -dist if far else dist, np.inf)
            i = int(np.argmin(cost))
            if cost[i] < best_cost:
                yaw = (angle - home + np.pi / 2) % np.pi - np.pi / 2
                best, best_cost = (np.array([mid[i, 0], mid[i, 1], z]), float(yaw)), cost[i]
        if best is not None and not far:  # the highest height that has one
            return best
    return best


def _slot(scene, k: int, siblings: list[str], region: str, spacing: float = 0.1):
    """`scene` with its goal region's centre moved to the k-th of several places in it, side by side along the
    longer side (y on a tie) of where the object's footprint (as carried: a moka pot's handle sticks out 9 cm)
    stays on the region's support: a handle over the stove's edge tips the pot off as it is let go, and two pots
    set down at one stove's centre knock each other over. After the first, the place farthest from where the
    ones before were put. Lowered to the support's top (a stove's knob, higher, is not under the pot)."""

    def slotted(worker):
        s = scene(worker)
        centre, half = s.region_pos[:2], s.region_half[:2]
        lo, hi = centre - half + 0.02, centre + half - 0.02  # 2 cm in from the region's edges
        support = _support(worker, region)
        if support is not None:
            lo = np.maximum(lo, support[0] - (s.object_lo[:2] - s.object_pos[:2]))
            hi = np.minimum(hi, support[1] - (s.object_hi[:2] - s.object_pos[:2]))
            narrow = lo > hi  # the footprint does not fit on it that way: its middle, in the region
            lo[narrow] = hi[narrow] = np.clip((lo + hi)[narrow] / 2, (centre - half + 0.02)[narrow],
                                              (centre + half - 0.02)[narrow])
            s.container_hi = np.array([*s.container_hi[:2], support[2]])
        axis = np.array([1.0, 0.0]) if hi[0] - lo[0] > hi[1] - lo[1] else np.array([0.0, 1.0])
        step = min(spacing, float((hi - lo) @ axis) / max(len(siblings) - 1, 1))
        nominal = (lo + hi) / 2 + (k - (len(siblings) - 1) / 2) * step * axis
        spot = _free_spot(np.array([*(lo + hi) / 2, 0.0]), np.array([*(hi - lo) / 2, 0.0]), nominal,
                          [worker.env.env.sim.data.body_xpos[worker.env.env.obj_body_id[o]][:2]
                           for o in siblings[:k]], margin=0.0)
        s.region_pos = np.array([spot[0], spot[1], s.region_pos[2]])
        return s

    return slotted


def _support(worker, region: str):
    """-> (lo, hi, top): the x-y box and the top of the region's parent's collision parts under the region's
    centre (a stove's plate), or None (a region of the table)."""
    inner = worker.env.env
    parent = inner.object_states_dict[region].parent_name if region in inner.object_sites_dict else None
    if parent is None or parent not in inner.obj_body_id:
        return None
    centre = np.array(inner.sim.data.get_site_xpos(region))[:2]
    boxes = [(c.min(0), c.max(0)) for c in map(worker._geom_corners, worker._collision_geoms(parent))]
    under = [(lo, hi) for lo, hi in boxes if (lo[:2] <= centre).all() and (hi[:2] >= centre).all()]
    if not under:
        return None
    return (np.min([lo[:2] for lo, _ in under], 0), np.max([hi[:2] for _, hi in under], 0),
            float(max(hi[2] for _, hi in under)))


def _free_spot(centre: np.ndarray, half: np.ndarray, nominal: np.ndarray, others: list, margin: float = 0.02,
               cell: float = 0.005) -> np.ndarray:
    """The point of the region (x-y box, `margin` in from its edges) farthest from `others` (x-y), the nearest
    to `nominal` among those within 5 mm of the farthest; `nominal` when there are none."""
    if not others:
        return nominal
    half = np.maximum(half[:2] - margin, 0.0)
    xs = np.arange(-half[0], half[0] + 1e-9, cell) + centre[0]
    ys = np.arange(-half[1], half[1] + 1e-9, cell) + centre[1]
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    clear = np.min(np.linalg.norm(grid[:, None] - np.asarray(others)[None], axis=-1), axis=1)
    near = grid[clear > clear.max() - 0.005]
    best = near[np.argmin(np.linalg.norm(near - nominal[:2], axis=1))]
    return np.array([best[0], best[1], centre[2]])


def _hand(worker) -> SimpleNamespace:
    obs = worker._raw_obs
    return SimpleNamespace(eef_pos=np.asarray(obs["robot0_eef_pos"], dtype=np.float64),
                           eef_quat=np.asarray(obs["robot0_eef_quat"], dtype=np.float64))


def expert_for(goal: list, worker) -> "GoalExpert | SequenceExpert | None":
    """The worker's expert for a LIBERO goal: the goal experts' for one predicate (None: the worker's own
    pick-and-place, or nothing), a flat object turned into a narrow region, or a sequence for several."""
    if len(goal) != 1:
        return SequenceExpert.for_goal(goal, worker)
    expert = GoalExpert.for_goal(goal, worker)
    pred = [goal[0][0].lower(), *goal[0][1:]]
    if expert is None and pred[0] == "in" and len(pred) == 3 and pred[1] in worker.env.env.objects_dict \
            and _needs_alignment(worker, pred[1], pred[2]):
        return _aligned_step(pred)
    return expert


def _aligned_step(pred: list) -> GoalExpert:
    """`in <flat object> <narrow region>`: turned on the way, lowered to the region's floor."""
    return GoalExpert([(pred[0], AlignedPickPlaceExpert, lambda w: _floor_scene(w, pred[1], pred[2]))])


def _step_for(pred: list, worker) -> GoalExpert | None:
    """One predicate's expert: the goal experts' (drawers, knobs, pushes, places by fixtures), else the plain
    pick-and-place's (`in` a region on an object, `on` ... ), else `close`; None when nothing handles it."""
    inner = worker.env.env
    if pred[0] == "close" and len(pred) == 2:
        return _close_step(pred[1], worker)
    step = GoalExpert.for_goal([pred], worker)
    if step is not None:
        return step
    if pred[0] in ("in", "on") and len(pred) == 3 and pred[1] in inner.objects_dict:
        if GoalExpert.unhandled([pred], worker):
            return None
        if _solid_and_wide(worker, pred[1]):
            return GoalExpert([(pred[0], HandleGraspExpert, lambda w: _parts_scene(w, pred[1]))])
        if pred[0] == "in" and _roofed(worker, pred[1], pred[2]):
            return GoalExpert([(pred[0], FrontInsertExpert, lambda w: _parts_scene(w, pred[1]))])
        if pred[0] == "in" and _needs_alignment(worker, pred[1], pred[2]):
            return _aligned_step(pred)
        return GoalExpert([(pred[0], ClearingPickPlaceExpert, lambda w: w.scene())])
    return None


def _parts(worker, obj: str) -> np.ndarray:
    return np.stack([worker._geom_corners(g) for g in worker._collision_geoms(obj)])


def _parts_scene(worker, obj: str) -> PartsScene:
    s = worker.scene()
    return PartsScene(**vars(s), object_parts=_parts(worker, obj))


def _floor_scene(worker, obj: str, region: str) -> PartsScene:
    """The parts scene, lowered to the region's floor (not let go of above the container's top): a book let go
    over a narrow compartment tips onto its wall."""
    s = _parts_scene(worker, obj)
    s.container_hi = s.container_hi.copy()
    s.container_hi[2] = s.region_pos[2] - s.region_half[2]
    return s


def _roofed(worker, obj: str, region: str) -> bool:
    """A region under its container's roof: a part of the container over the region's centre, lower than the
    region's floor plus the object's height and the hand above it (a microwave's top, not a basket's handle)."""
    inner = worker.env.env
    if region not in inner.object_sites_dict:
        return False
    parent = inner.object_states_dict[region].parent_name
    if parent is None or parent not in inner.obj_body_id:
        return False
    centre = np.array(inner.sim.data.get_site_xpos(region))
    half = np.asarray(inner.object_sites_dict[region].size, dtype=np.float64)
    lo, hi = worker._aabb(obj)
    floor = centre[2] - half[2]
    for g in worker._collision_geoms(parent):
        c = worker._geom_corners(g)
        over = (c.min(0)[:2] < centre[:2]).all() and (c.max(0)[:2] > centre[:2]).all()
        if over and floor + 0.02 < c.min(0)[2] < floor + (hi[2] - lo[2]) + HAND_ABOVE_GRIP + 0.05:
            return True
    return False


def _solid_and_wide(worker, obj: str) -> bool:
    """Wider than the open gripper every way (PickPlaceExpert would grasp a rim) but not hollow: a part of it
    stands under the middle of its footprint 2 cm below its top, where a bowl has none."""
    lo, hi = worker._aabb(obj)
    if min(hi[:2] - lo[:2]) / 2 <= FINGER_OPEN - 0.008:
        return False
    parts = _parts(worker, obj)
    centre, z = (lo[:2] + hi[:2]) / 2, hi[2] - 0.02
    inside = (parts.min(1)[:, :2] < centre).all(1) & (parts.max(1)[:, :2] > centre).all(1)
    return bool((inside & (parts.min(1)[:, 2] < z) & (parts.max(1)[:, 2] > z)).any())


@dataclass
class ClosePushScene:
    """World-frame privileged state for closing a drawer or a door by pushing it, one step."""

    eef_pos: np.ndarray  # (3,)
    eef_quat: np.ndarray  # (4,)
    finger_axis: np.ndarray  # (3,) unit, fingertip to fingertip
    contact: np.ndarray  # (3,) the point of the moving part the fingertips push (a handle's front, a door's face)
    direction: np.ndarray  # (3,) unit, horizontal: the way that point moves as the part closes
    qpos: float
    goal_qpos: float
    high: float  # a height the hand travels at, clear of the fixture and the objects


class CloseExpert(_Base):
    """Close a drawer or a door: the closed fingertips, pointing down, set against the moving part on the side
    away from where it closes to, then pushed along its path until the joint passes the goal; back off, rise
    (`done`). Pushed, not grasped: a drawer holding a bowl hangs out in front of the cabinet, and a door's
    handle is on the side the hand would then have to reach around."""

    standoff = 0.035  # the grip point behind the contact point when set down (the fingertips' half thickness, a margin)
    lead = 0.03  # how far ahead of the contact point the hand aims while pushing
    tilt = 0.6  # radians the fingers point toward the push

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase, self.timer = "over", 0
        self.home_quat: np.ndarray | None = None
        self.quat: np.ndarray | None = None
        self.done = False
        self.sign = 1.0

    def act(self, s: ClosePushScene) -> np.ndarray:
        if self.home_quat is None:
            self.home_quat = np.asarray(s.eef_quat, dtype=np.float64).copy()
            self.sign = np.sign(s.goal_qpos - s.qpos) or 1.0
            # the hand's long side (the finger axis, 21 cm) across the push: along it, the hand would run into
            # the cabinet's front (the drawers above) before the drawer is in
            across = np.array([-s.direction[1], s.direction[0]])
            yaw = quat_about([0, 0, 1], _yaw_to(s.finger_axis[:2], across))
            # and the fingers tipped toward the push: upright, the forearm over a low drawer's handle reaches the
            # cabinet's top edge before the drawer is in
            tip = quat_about(np.cross([0.0, 0.0, 1.0], s.direction), -self.tilt)
            self.quat = _quat_mul(tip, _quat_mul(yaw, self.home_quat))
        self.timer += 1
        behind = s.contact - s.direction * self.standoff
        if self.phase == "over":
            target = np.array([behind[0], behind[1], max(s.high, s.eef_pos[2])])
            if np.linalg.norm(target[:2] - s.eef_pos[:2]) < 0.015 or self.timer > 80:
                self.phase, self.timer = "down", 0
            return self._act(s, target, self.quat, 1.0)
        if self.phase == "down":
            if abs(behind[2] - s.eef_pos[2]) < 0.01 or self.timer > 50:
                self.phase, self.timer = "push", 0
            return self._act(s, behind, self.quat, 1.0, speed=0.6)
        if self.phase == "push":
            if (s.goal_qpos - s.qpos) * self.sign <= 0 or self.timer > 120:
                self.phase, self.timer = "back", 0
            return self._act(s, s.contact + s.direction * self.lead, self.quat, 1.0, speed=0.5)
        back = np.array([*(s.eef_pos[:2] - s.direction[:2] * 0.05), s.eef_pos[2] + 0.03])
        if self.timer > 15:
            self.done = True
        return self._act(s, back, self.quat, 1.0, speed=0.5)


class _CloseTarget(_JointTarget):
    """A joint to close and the point of its part to push: a drawer's handle front, a door's face near its free
    edge at mid-height."""

    def scene(self, worker) -> ClosePushScene:
        data = worker.env.env.sim.data._data
        axis = np.array(data.xaxis[self.jid])
        sign = np.sign(self.goal_qpos - self.qpos(worker)) or 1.0
        corners = np.concatenate([worker._geom_corners(g) for g in self.geoms])
        if self.kind == "slide":
            direction = axis * sign  # the way the drawer moves as it closes
            lo, hi, _ = self.handle(worker, -direction)
            centre = (lo + hi) / 2
            contact = centre - direction * ((hi - lo) @ np.abs(direction)) / 2  # the handle's front face
        else:  # a door: the point 80% of the way out to its free edge, mid-height, on the face that leads
            anchor = np.array(data.xanchor[self.jid])
            rel = corners - anchor
            radial = rel - np.outer(rel @ axis, axis)
            far = radial[np.argmax(np.linalg.norm(radial, axis=1))]
            r = far / max(np.linalg.norm(far), 1e-9)
            direction = np.cross(axis, r) * sign
            thick = np.ptp(rel @ direction) / 2
            mid = (corners[:, 2].min() + corners[:, 2].max()) / 2
            contact = anchor + 0.8 * far - direction * thick
            contact[2] = mid
        direction = direction.copy()
        direction[2] = 0.0
        direction /= max(np.linalg.norm(direction), 1e-9)
        inner = worker.env.env
        tops = [worker._aabb(n)[1][2] for n in inner.objects_dict]
        hand = _hand(worker)
        return ClosePushScene(eef_pos=hand.eef_pos, eef_quat=hand.eef_quat, finger_axis=worker._finger_axis(), contact=contact,
                              direction=direction, qpos=self.qpos(worker), goal_qpos=self.goal_qpos,
                              high=float(max([corners[:, 2].max(), *tops])) + 0.08)


def _close_step(name: str, worker) -> GoalExpert | None:
    """`close <drawer region | door object>`: the joint's goal inside LIBERO's close range, pushed there."""
    inner = worker.env.env
    obj, joints = _articulation(inner, name)
    if obj is None or not joints or not hasattr(obj, "is_close"):
        return None
    ranges = obj.object_properties["articulation"].get("default_close_ranges")
    sim = inner.sim
    joint = joints[0]
    jtype = int(sim.model._model.jnt_type[sim.model.joint_name2id(joint)])
    if not ranges or jtype not in (2, 3):  # slide, hinge
        return None
    target = _CloseTarget(worker, joint, 0.0, "slide" if jtype == 2 else "hinge")

    def plan():  # the goal from the joint's position at this episode's start (its close range's inner end)
        target.goal_qpos = _range_goal(obj.is_close, ranges, target.qpos(worker))

    plan()
    if target.goal_qpos is None:
        return None
    return GoalExpert([("close", CloseExpert, target.scene)], on_reset=plan)
