"""Scripted experts for the LIBERO goals the pick-and-place expert (tinyvla.envs.libero_expert) alone does not
cover: open a drawer (`open <drawer region>`), turn a knob (`turnon <stove>`), push a low object (a plate) onto
a region of the table (`on <object> <table region>`), a pick-and-place into a closed drawer (open it first),
and a pick-and-place onto an object standing by a fixture (a bowl onto a plate in front of a cabinet: the
rim grasp also keeps the hand clear where the bowl is set down).

Pure numpy, like libero_expert: it runs inside the LIBERO worker (tinyvla.envs.libero_worker). The worker's
simulator is read here through the worker's own handles (`worker.env.env.sim`, its AABB helpers), by
attribute access only: no LIBERO or mujoco import. What LIBERO's checks measure (libero/envs/object_states,
libero/envs/objects/articulated_objects.py) drives the plans:
  - a drawer is open when its slide joint's qpos passes the open range's inner end (the wooden cabinet:
    qpos < -0.14 of a [-0.16, 0.01] slide);
  - a stove is on when its knob's hinge qpos >= 0.5 rad (about the vertical);
  - `in X <drawer region>` holds when X's body position is inside the region's box (the drawer's open state
    is not tested): the drawer is opened only as far as the object to put in it allows.
  - `on X <table region>` holds when X's body position is inside the region's x-y box, up to 10 cm above it.
Actions are LIBERO's OSC_POSE deltas in [-1, 1] and the gripper (-1 open, +1 close), at 20 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyvla.envs.libero_expert import (HAND_HALF_LENGTH, HAND_HALF_WIDTH, POS_SCALE, ROT_SCALE, PickPlaceExpert,
                                        Scene, _quat_inv, _quat_mul, quat_to_axis_angle)

OPEN, CLOSE = -1.0, 1.0
# How far from its base (x-y) the Panda's grip point gets near the table: past ~0.8 m its shoulder and elbow
# (joints 2 and 4) are at their limits.
REACH = 0.78
# What the scripted experts (this module's and libero_expert's) cover: the one list for every message that says so.
EXPERT_GOALS = ("one pick-and-place goal, 'in' a region or 'on' an object; 'open' a drawer; 'turnon' a knob; a low "
                "object pushed 'on' a table region; 'in' a closed drawer; a flat object 'in' a narrow region; goals of "
                "several of these (and of 'in' a microwave, 'on' by a handle, 'close' a drawer or a door), one by one")


def quat_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a turn by `angle` about `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    return np.array([*(axis * np.sin(angle / 2)), np.cos(angle / 2)])


@dataclass
class JointScene:
    """World-frame privileged state for an articulated part (a drawer, a knob), one step."""

    eef_pos: np.ndarray  # (3,) the grip point
    eef_quat: np.ndarray  # (4,) x, y, z, w
    gripper_qpos: np.ndarray  # (2,)
    finger_axis: np.ndarray  # (3,) unit, fingertip to fingertip
    handle_lo: np.ndarray  # (3,) AABB of the part to take hold of (a drawer's handle bar, a knob's grip)
    handle_hi: np.ndarray
    handle_dir: np.ndarray  # (2,) unit x-y direction of the handle's long side
    axis: np.ndarray  # (3,) the joint's world axis: the slide direction / the turn axis of +qpos
    anchor: np.ndarray  # (3,) a point on the joint's axis
    qpos: float  # the joint's position now
    goal_qpos: float  # the position to reach (inside the range LIBERO's check accepts)
    obstacle_top: float = 0.0  # the highest top of the movable objects (the hand travels above it)


class _Base:
    """Shared by the experts here: an action toward a position and an orientation."""

    gain = 1.0 / POS_SCALE  # full speed beyond 5 cm of error

    def _act(self, s, target: np.ndarray, quat: np.ndarray, gripper: float, speed: float = 1.0) -> np.ndarray:
        delta = np.clip((np.asarray(target) - s.eef_pos) * self.gain, -speed, speed)
        rot = quat_to_axis_angle(_quat_mul(quat, _quat_inv(np.asarray(s.eef_quat, dtype=np.float64))))
        return np.concatenate([delta, np.clip(rot / ROT_SCALE * 2.0, -1.0, 1.0), [gripper]]).astype(np.float32)

    @staticmethod
    def _rot_err(s, quat: np.ndarray) -> float:
        return float(np.linalg.norm(quat_to_axis_angle(_quat_mul(quat, _quat_inv(np.asarray(s.eef_quat))))))


def _yaw_to(axis_xy: np.ndarray, want_xy: np.ndarray) -> float:
    """The smallest turn about the vertical that lines the (symmetric) finger axis up with `want_xy`."""
    a = np.arctan2(want_xy[1], want_xy[0]) - np.arctan2(axis_xy[1], axis_xy[0])
    return float((a + np.pi / 2) % np.pi - np.pi / 2)


class DrawerExpert(_Base):
    """Open a drawer: grasp its handle bar from the front with the hand level (pointing into the drawer, the
    fingers one above and one below the bar: a hand pointing down does not fit between a cabinet's stacked
    handles), pull along the slide until the joint passes the goal, let go, back off and rise (`done`)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase, self.timer = "approach", 0
        self.home_quat: np.ndarray | None = None
        self.grip_quat: np.ndarray | None = None
        self.pull = np.zeros(3)
        self.start = np.zeros(3)
        self.done = False
        self.sign = 1.0
        self.path: list[np.ndarray] = []

    def _setup(self, s: JointScene) -> None:
        self.home_quat = np.asarray(s.eef_quat, dtype=np.float64).copy()
        self.home_axis = s.finger_axis[:2] / max(np.linalg.norm(s.finger_axis[:2]), 1e-9)
        # the direction the handle moves as the drawer opens
        self.sign = np.sign(s.goal_qpos - s.qpos) or 1.0
        self.pull = s.axis * self.sign
        self.pull[2] = 0.0
        self.pull /= max(np.linalg.norm(self.pull), 1e-9)
        # turn the finger axis to the pull direction (about the vertical), then tip the hand 90 degrees about
        # the horizontal across the pull so that it points into the drawer: the finger axis is then vertical
        yaw = quat_about([0, 0, 1], _yaw_to(s.finger_axis[:2], self.pull[:2]))
        tip = quat_about(np.cross([0.0, 0.0, 1.0], self.pull), np.pi / 2)
        self.grip_quat = _quat_mul(tip, _quat_mul(yaw, self.home_quat))

    def _stalled(self, steps: int = 6, tol: float = 0.002) -> bool:
        """The hand has moved less than `tol` over the last `steps` steps."""
        return len(self.path) > steps and np.linalg.norm(self.path[-1] - self.path[-1 - steps]) < tol

    def act(self, s: JointScene) -> np.ndarray:
        if self.home_quat is None:
            self._setup(s)
            if abs(s.goal_qpos - s.qpos) < 0.005:  # (already open as far as asked)
                self.done = True
        self.path.append(np.asarray(s.eef_pos, dtype=np.float64).copy())
        self.timer += 1
        centre = (s.handle_lo + s.handle_hi) / 2
        grip = centre.copy()
        grip[:2] = centre[:2] - self.pull[:2] * 0.005  # the bar's middle, a little past its centre
        front = grip + self.pull * 0.12  # in front of the handle, level with it
        if self.phase == "approach":  # above the pre-grasp point, turning the hand on the way
            high = np.array([front[0], front[1], max(s.eef_pos[2], grip[2] + 0.02)])
            if (np.linalg.norm(high - s.eef_pos) < 0.02 and self._rot_err(s, self.grip_quat) < 0.15) \
                    or self.timer > 80:
                self.phase, self.timer = "lower", 0
            return self._act(s, high, self.grip_quat, OPEN)
        if self.phase == "lower":
            if np.linalg.norm(front - s.eef_pos) < 0.01 or self.timer > 40:
                self.phase, self.timer = "insert", 0
            return self._act(s, front, self.grip_quat, OPEN)
        if self.phase == "insert":
            if np.linalg.norm(grip - s.eef_pos) < 0.008 or self.timer > 40:
                self.phase, self.timer = "close", 0
            return self._act(s, grip, self.grip_quat, OPEN, speed=0.6)
        if self.phase == "close":
            if self.timer > 10:
                self.phase, self.timer = "pull", 0
                self.start = s.eef_pos.copy()
            return self._act(s, grip, self.grip_quat, CLOSE)
        if self.phase == "pull":  # toward where the handle is when the joint is past its goal
            left = (s.goal_qpos - s.qpos) * self.sign
            # (no further than needed: an open drawer stands in the way of what comes next)
            target = s.eef_pos + self.pull * (max(left, 0.0) + 0.01)
            if left <= 0 or (self.timer > 10 and self._stalled()) or self.timer > 80:
                self.phase, self.timer = "release", 0
            return self._act(s, target, self.grip_quat, CLOSE, speed=0.6)
        if self.phase == "release":
            if self.timer > 5:
                self.phase, self.timer = "back", 0
                self.start = s.eef_pos.copy()
            return self._act(s, s.eef_pos, self.grip_quat, OPEN)
        # back off along the pull, then halfway back to where the hand started, pointing down again (the hand
        # at a drawer is near the arm's reach: turned there, it stalls)
        back = self.start + self.pull * 0.05
        if self.phase == "back":
            if np.linalg.norm(back - s.eef_pos) < 0.015 or self.timer > 30:
                self.phase, self.timer = "up", 0
            return self._act(s, back, self.grip_quat, OPEN)
        up = (back + self.path[0]) / 2
        up[2] = max(up[2], s.obstacle_top + 0.10)
        # done once clear of the handle (what comes next turns the hand its own way), or back where it started
        if s.eef_pos[2] > back[2] + 0.03 or (np.linalg.norm(up - s.eef_pos) < 0.03
                                             and self._rot_err(s, self.home_quat) < 0.1) or self.timer > 60:
            self.done = True
        # turn only once clear of the handle
        quat = self.home_quat if np.linalg.norm(s.eef_pos - back) > 0.04 else self.grip_quat
        return self._act(s, up, quat, OPEN)


class KnobExpert(_Base):
    """Turn a knob: grasp its grip with the fingers across it at the turn axis, turn the hand about the
    vertical past the goal angle, let go, rise."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase, self.timer = "hover", 0
        self.home_quat: np.ndarray | None = None
        self.grip_quat: np.ndarray | None = None
        self.turn_quat: np.ndarray | None = None
        self.q0, self.sign = 0.0, 1.0  # the knob's angle when grasped, the way it turns to the goal

    def act(self, s: JointScene) -> np.ndarray:
        if self.home_quat is None:
            self.home_quat = np.asarray(s.eef_quat, dtype=np.float64).copy()
            across = np.array([-s.handle_dir[1], s.handle_dir[0]])
            self.grip_quat = _quat_mul(quat_about([0, 0, 1], _yaw_to(s.finger_axis[:2], across)), self.home_quat)
        self.timer += 1
        grip = np.array([s.anchor[0], s.anchor[1], s.handle_hi[2] - 0.02])
        hover = grip + np.array([0, 0, 0.08])
        if self.phase == "hover":
            if (np.linalg.norm(hover - s.eef_pos) < 0.01 and self._rot_err(s, self.grip_quat) < 0.1) or self.timer > 80:
                self.phase, self.timer = "descend", 0
            return self._act(s, hover, self.grip_quat, OPEN)
        if self.phase == "descend":
            if np.linalg.norm(grip - s.eef_pos) < 0.006 or self.timer > 40:
                self.phase, self.timer = "close", 0
            return self._act(s, grip, self.grip_quat, OPEN, speed=0.5)
        if self.phase == "close":
            if self.timer > 10:
                self.phase, self.timer = "turn", 0
                self.q0, self.sign = s.qpos, np.sign(s.goal_qpos - s.qpos) or 1.0
            return self._act(s, grip, self.grip_quat, CLOSE)
        if self.phase == "turn":
            # the hand's target: the grasp orientation turned (about the joint's axis) by what is left + a margin
            left = s.goal_qpos - s.qpos
            turn = quat_about(s.axis, (s.qpos - self.q0) + left + 0.25 * self.sign)
            if self.sign * left <= 0 or self.timer > 80:
                self.phase, self.timer = "release", 0
            self.turn_quat = _quat_mul(turn, self.grip_quat)
            return self._act(s, grip, self.turn_quat, CLOSE)
        if self.phase == "release":
            if self.timer > 8:
                self.phase, self.timer = "up", 0
            return self._act(s, grip, self.turn_quat, OPEN)
        return self._act(s, hover, self.turn_quat, OPEN)


@dataclass
class PushScene:
    """World-frame privileged state for pushing an object across the table, one step."""

    eef_pos: np.ndarray
    eef_quat: np.ndarray
    finger_axis: np.ndarray  # (3,) unit, fingertip to fingertip
    object_pos: np.ndarray  # (3,) its body position (what LIBERO's check tests)
    object_lo: np.ndarray  # (3,) its collision AABB
    object_hi: np.ndarray
    region_pos: np.ndarray  # (3,) the goal region's centre
    region_half: np.ndarray  # (3,) its half extents
    high: float  # a height the hand travels at, clear of everything
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))  # (n, lo/hi, x/y) what else stands
    base: np.ndarray = field(default_factory=lambda: np.array([-0.66, 0.0]))  # (2,) the arm's base, x-y
    fixture_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (n, 3) the fixtures' height map


def push_goal(start: np.ndarray, radius: float, region_pos: np.ndarray, region_half: np.ndarray,
              obstacles: np.ndarray, base: np.ndarray, reach: float = REACH) -> np.ndarray:
    """Where in the region (x-y, at least 1.2 cm inside it) to push a round object's centre straight to from
    `start`. The cheapest push by: its length, + the point's distance from the region's centre (its margin for
    error), + 3x how far the object's disc (`radius` + 5 mm) reaches into an obstacle's box on the way at worst
    (pushed into what stands in its way, a plate climbs onto it: the cream cheese in front of the stove), +
    10x how far the hand behind the object, at the start and at the end, is beyond the arm's `reach`."""
    start = np.asarray(start, dtype=np.float64)[:2]
    centre = np.asarray(region_pos, dtype=np.float64)[:2]
    half = np.maximum(np.asarray(region_half, dtype=np.float64)[:2] - 0.012, 0.0)
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 7)), -1).reshape(-1, 2)
    goals = centre + grid * half  # (g, 2)
    boxes = np.asarray(obstacles, dtype=np.float64).reshape(-1, 2, 2)  # (n, lo/hi, x/y)

    def gaps(pts: np.ndarray) -> np.ndarray:  # (..., 2) -> (..., n) the distances to the boxes
        return np.linalg.norm(np.maximum(np.maximum(boxes[:, 0] - pts[..., None, :], pts[..., None, :] - boxes[:, 1]),
                                         0.0), axis=-1)

    length = np.linalg.norm(goals - start, axis=1)
    cost = length + np.linalg.norm(goals - centre, axis=1)
    if len(boxes):
        # (what the object already stands closer to than that, it only has to get no closer to)
        keep = np.minimum(radius + 0.005, gaps(start) - 0.002)
        sweep = start + np.linspace(0.0, 1.0, 25)[None, :, None] * (goals - start)[:, None]  # (g, 25, 2)
        cost += 3.0 * np.maximum(keep - gaps(sweep), 0.0).max(axis=(1, 2))
    u = (goals - start) / np.maximum(length, 1e-9)[:, None]
    hands = np.stack([np.broadcast_to(start, goals.shape), goals]) - u * (radius + 0.015)  # (2, g, 2) start, end
    cost += 10.0 * np.maximum(np.linalg.norm(hands - np.asarray(base)[:2], axis=-1) - reach, 0.0).max(axis=0)
    return goals[int(np.argmin(cost))]


class PushExpert(_Base):
    """Push a low object (a plate) over the table into a region with the closed fingertips against its edge,
    just above the table, on the side away from the goal, straight to a point of the region clear of what
    stands in the way (`push_goal`). The hand is turned with its long side across the push and tipped back over
    the object (its fingers point down and away from the goal): with a fixture close behind, far (the hand
    and the wrist upright above a plate's far side reach into a cabinet's drawer handles); in the open, less
    and set down further back (the slanted fingers press the rim down and tip the plate up onto whatever it
    meets, and set down close they land on its rim). Re-aimed every step; lifted and set down again behind
    the object (re-planned from there) when the object has turned off the line or slid under the hand.
    """

    tilt = 0.35  # radians the fingers point away from the goal, in the open
    gap = 0.025  # the grip point's distance behind the object's edge when set down, in the open
    tilt_near = 0.9  # ... and with a fixture close behind the hand (the hand then stays on the goal side)
    gap_near = 0.015

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase, self.timer = "over", 0
        self.home_quat: np.ndarray | None = None
        self.quat: np.ndarray | None = None  # the hand's orientation for this approach (None: to turn afresh)
        self.goal = np.zeros(2)
        self.pushed = False  # down at the object once (then re-approached just over it)
        self.zs: list[float] = []  # the hand's heights while set down (stalled: resting on something)

    @staticmethod
    def _fixture_behind(s: PushScene, behind: np.ndarray, u: np.ndarray) -> bool:
        """Whether a fixture stands within 4 cm behind the hand pushing from `behind` along u (across the
        hand's length), above the object: a hand tipped less would reach into it."""
        rel = s.fixture_points[:, :2] - behind
        along, across = rel @ u, np.abs(rel @ np.array([-u[1], u[0]]))
        return bool(((along > -0.04) & (along < 0.0) & (across < HAND_HALF_LENGTH + 0.01)
                     & (s.fixture_points[:, 2] > s.object_hi[2])).any())

    @staticmethod
    def _inside(s: PushScene, margin: float) -> bool:
        """Whether the object's body position is in the region's x-y box, `margin` inside its edges."""
        return bool((np.abs(s.object_pos[:2] - s.region_pos[:2]) < s.region_half[:2] - margin).all())

    def _stalled(self, s: PushScene) -> bool:
        """The hand has gone down less than 2 mm over the last 4 steps."""
        self.zs.append(float(s.eef_pos[2]))
        return len(self.zs) > 4 and self.zs[-5] - self.zs[-1] < 0.002

    def act(self, s: PushScene) -> np.ndarray:
        if self.home_quat is None:
            self.home_quat = np.asarray(s.eef_quat, dtype=np.float64).copy()
            self.home_axis = s.finger_axis[:2] / max(np.linalg.norm(s.finger_axis[:2]), 1e-9)
        self.timer += 1
        radius = min(s.object_hi[:2] - s.object_lo[:2]) / 2  # round: its AABB's corners are not the plate
        if self.phase == "over" and self.quat is None:  # an approach: from where the object is now
            self.goal = push_goal(s.object_pos, radius, s.region_pos, s.region_half, s.obstacles, s.base)
        to_goal = self.goal - s.object_pos[:2]  # the body position is what is checked
        dist = float(np.linalg.norm(to_goal))
        u = to_goal / max(dist, 1e-9)
        centre = (s.object_lo[:2] + s.object_hi[:2]) / 2
        near = self._fixture_behind(s, centre - u * (radius + self.gap_near), u)
        behind = centre - u * (radius + (self.gap_near if near else self.gap))
        low = s.object_lo[2] + 0.015  # the fingertips (~1 cm below the grip point) just above the table
        # the first time over everything on the table (and the fixtures beside the object); again just over it
        high = s.high if not self.pushed else s.object_hi[2] + 0.05
        if self.phase == "over":  # above the point behind the object, turning and tipping the hand
            if self.quat is None:
                yaw = quat_about([0, 0, 1], _yaw_to(self.home_axis, np.array([-u[1], u[0]])))
                tip = quat_about(np.cross([0.0, 0.0, 1.0], [u[0], u[1], 0.0]), self.tilt_near if near else self.tilt)
                self.quat = _quat_mul(tip, _quat_mul(yaw, self.home_quat))
            target = np.array([*behind, high])
            if (np.linalg.norm(target - s.eef_pos) < 0.015 and self._rot_err(s, self.quat) < 0.1) or self.timer > 80:
                self.phase, self.timer, self.zs, self.pushed = "down", 0, [], True
            return self._act(s, target, self.quat, CLOSE)
        if self.phase == "down":  # just over the object's edge (the fingertips clear of a cabinet's handles) ...
            target = np.array([*(behind + u * (0.02 if near else 0.0)), s.object_hi[2] + 0.025])
            if np.linalg.norm(target - s.eef_pos) < 0.01 or self._stalled(s) or self.timer > 40:
                self.phase, self.timer, self.zs = "in", 0, []
            return self._act(s, target, self.quat, CLOSE, speed=0.6)
        if self.phase == "in":  # ... then in behind it, down to `low` or onto the table (the tipped fingers
            # reach lower)
            target = np.array([*behind, low])
            if abs(low - s.eef_pos[2]) < 0.006 or (self._stalled(s) and s.eef_pos[2] < low + 0.02) \
                    or self.timer > 40:
                self.phase, self.timer = "push", 0
            return self._act(s, target, self.quat, CLOSE, speed=0.6)
        if self.phase == "push":
            rel = s.eef_pos[:2] - centre
            across = rel - (rel @ u) * u  # the hand off the line through the object's centre
            if self._inside(s, 0.01) or self.timer > 150:
                self.phase, self.timer = "up", 0
            elif np.linalg.norm(across) > 0.045 or rel @ u > -radius + 0.01:  # off the line / past its edge
                self.phase, self.timer = "lift", 0
            # toward where the hand is when the object is at the goal (a step at most), back onto the line
            target = np.array([*(s.eef_pos[:2] + u * min(dist, 0.03) - across), low])
            return self._act(s, target, self.quat, CLOSE, speed=0.5)
        # lifted ("lift": to approach again, turned and tipped afresh; "up": done, unless it slid back out)
        quat = self.quat
        if (self.phase == "lift" and (s.eef_pos[2] > high - 0.01 or self.timer > 30)) \
                or (self.phase == "up" and not self._inside(s, 0.0) and self.timer > 10):
            self.phase, self.timer, self.quat = "over", 0, None
        return self._act(s, np.array([s.eef_pos[0], s.eef_pos[1], high]), quat, CLOSE)


class PlaceAwarePickPlaceExpert(PickPlaceExpert):
    """The pick-and-place expert whose rim grasp (a bowl's) also keeps the hand off the fixtures where the
    object is set down: a plate in front of a cabinet is reached with the hand 21 cm long along the finger
    axis, and a rim point chosen only for the pick can put the hand into the cabinet's drawer handles there.
    PickPlaceExpert's own choice stands wherever it leaves the hand clear at the place."""

    def _rim_grasp(self, s: Scene, centre: np.ndarray, radius: float) -> np.ndarray:
        grasp = super()._rim_grasp(s, centre, radius)
        if self._place_blocked(s, centre, grasp[:2], grasp[2]) == 0.0:
            return grasp
        return super()._rim_grasp(s, centre, radius, lambda p, z: self._place_blocked(s, centre, p, z))

    def _place_blocked(self, s: Scene, centre: np.ndarray, p: np.ndarray, z: float) -> float:
        """The fixtures' and neighbours' area in the hand's footprint when the object (grasped at rim point
        p, height z, the finger axis radial) is let go over the region."""
        u = (p - centre[:2]) / max(np.linalg.norm(p - centre[:2]), 1e-9)
        shift = s.region_pos[:2] - centre[:2]  # the object's centre goes over the region's
        z_place = z + (s.container_hi[2] + 0.01) - s.object_lo[2]  # the grasp's height when let go
        return self._blocked(s, p + shift, z_place, u, np.array([-u[1], u[0]]))


# ---- the worker side: scenes from the simulator, and which expert a goal gets ----------------------------
def _range_goal(check, ranges, q_now: float) -> float | None:
    """A joint position that LIBERO's `check(qpos)` accepts: of the range's points that pass, the nearest to
    the joint's position now, moved a quarter of the range further in (a margin against springing back)."""
    lo, hi = min(ranges), max(ranges)
    points = [q for q in np.linspace(lo, hi, 41) if check(q)]
    if not points:
        return None
    q = min(points, key=lambda p: abs(p - q_now))
    inward = 1.0 if abs(q - lo) < abs(q - hi) else -1.0
    goal = q + inward * 0.25 * (hi - lo)
    return float(goal) if check(goal) else float(q)


class _JointTarget:
    """One articulated joint to move (by name), the LIBERO check's goal for it and the part to hold."""

    def __init__(self, worker, joint: str, goal_qpos: float, kind: str):
        self.joint, self.goal_qpos, self.kind = joint, goal_qpos, kind
        self.open_sign = 1.0  # the sign of qpos's change that opens it (set by a plan that needs it)
        sim = worker.env.env.sim
        self.jid = sim.model.joint_name2id(joint)
        model = sim.model._model
        self.qadr = int(model.jnt_qposadr[self.jid])
        self.body = int(model.jnt_bodyid[self.jid])
        self.geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == self.body
                      and (model.geom_contype[g] or model.geom_conaffinity[g])]

    def qpos(self, worker) -> float:
        return float(worker.env.env.sim.data.qpos[self.qadr])

    def handle(self, worker, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """AABB and long x-y direction of the part to hold. A drawer: the geom that sticks out furthest the
        way the drawer opens (its handle bar). A knob: its tall geoms (the grip, not the dial's ring)."""
        corners = {g: worker._geom_corners(g) for g in self.geoms}
        if self.kind == "slide":
            g = max(self.geoms, key=lambda g: (corners[g] @ axis).max())
            pts = corners[g]
        else:
            bottom = min(c[:, 2].min() for c in corners.values())
            top = max(c[:, 2].max() for c in corners.values())
            pts = np.concatenate([c for c in corners.values() if c[:, 2].max() > bottom + 0.6 * (top - bottom)])
        xy = pts[:, :2] - pts[:, :2].mean(0)
        direction = np.linalg.eigh(xy.T @ xy)[1][:, -1]
        return pts.min(0), pts.max(0), direction

    def scene(self, worker) -> JointScene:
        data = worker.env.env.sim.data._data
        axis = np.array(data.xaxis[self.jid])
        if self.kind == "slide":
            # the direction the handle moves as the drawer opens: toward the goal position
            open_dir = axis * (np.sign(self.goal_qpos - self.qpos(worker)) or 1.0)
            lo, hi, direction = self.handle(worker, open_dir)
        else:
            lo, hi, direction = self.handle(worker, axis)
        obs = worker._raw_obs
        inner = worker.env.env
        tops = [worker._aabb(n)[1][2] for n in inner.objects_dict]
        return JointScene(eef_pos=np.asarray(obs["robot0_eef_pos"], dtype=np.float64),
                          eef_quat=np.asarray(obs["robot0_eef_quat"], dtype=np.float64),
                          gripper_qpos=np.asarray(obs["robot0_gripper_qpos"]), finger_axis=worker._finger_axis(),
                          handle_lo=lo, handle_hi=hi, handle_dir=direction, axis=axis,
                          anchor=np.array(data.xanchor[self.jid]), qpos=self.qpos(worker), goal_qpos=self.goal_qpos,
                          obstacle_top=float(max(tops, default=0.0)))


def _articulation(inner, name: str):
    """-> (the LIBERO object whose ranges judge it, its joint names) for an object or a region (site)."""
    if name in inner.object_sites_dict:
        site = inner.object_sites_dict[name]
        return inner.get_object(inner.object_states_dict[name].parent_name), list(getattr(site, "joints", []) or [])
    obj = inner.get_object(name)
    return obj, list(getattr(obj, "joints", []) or [])


class GoalExpert:
    """The expert for one LIBERO goal the pick-and-place expert alone does not handle, as a list of stages
    (each an expert and the scene it reads), run one after another. `for_goal` says which goals: None for
    the rest."""

    def __init__(self, stages: list, on_reset=None):
        self.stages = stages  # [(name, make_expert, make_scene(worker) -> scene)]
        self.on_reset = on_reset  # called at each episode's start (the initial state set): per-episode plans
        self.index = 0
        self.experts = [make() for _, make, _ in self.stages]
        self.transit: tuple | None = None  # (position, orientation, steps) between two stages

    def reset(self) -> None:
        self.index = 0
        self.experts = [make() for _, make, _ in self.stages]
        self.transit: tuple | None = None  # (position, orientation, steps) between two stages
        if self.on_reset is not None:
            self.on_reset()

    def _transit(self, s: Scene, expert: PickPlaceExpert) -> tuple:
        """Where the hand goes before a pick-and-place takes over from another stage: above its grasp, high
        (over the container: a cabinet), already turned to it. The pick-and-place hover moves and turns at
        once, from wherever the hand is: from a drawer's handle that sweeps the hand through the drawer."""
        grasp = expert._grasp_point(s)  # also sets its rim grasp's turn (expert.yaw)
        turn = quat_about([0, 0, 1], expert.yaw)
        high = max(s.clear_z + 0.02, s.object_hi[2] + 0.08)  # the hand's underside clear of the container
        return np.array([grasp[0], grasp[1], high]), _quat_mul(turn, expert.home_quat)

    @staticmethod
    def unhandled(goal: list, worker) -> bool:
        """A single pick-and-place goal that no expert handles: a tall object onto a region of the table
        itself (its site's parent is the table, which the pick-and-place scene has no AABB for)."""
        inner = worker.env.env
        if len(goal) != 1 or len(goal[0]) != 3 or goal[0][2] not in inner.object_sites_dict:
            return False
        parent = inner.object_states_dict[goal[0][2]].parent_name
        return (parent is None or parent not in inner.obj_body_id) and GoalExpert.for_goal(goal, worker) is None

    @staticmethod
    def for_goal(goal: list, worker) -> "GoalExpert | None":
        inner = worker.env.env
        if len(goal) != 1:
            return None
        pred = [goal[0][0].lower(), *goal[0][1:]]
        if pred[0] in ("open", "turnon") and len(pred) == 2:
            obj, joints = _articulation(inner, pred[1])
            if obj is None or not joints:
                return None
            check = obj.is_open if pred[0] == "open" else obj.turn_on
            props = obj.object_properties["articulation"]
            ranges = props.get("default_open_ranges" if pred[0] == "open" else "default_turnon_ranges")
            if not ranges:
                return None
            sim = inner.sim
            # the joint to move: a region's (a drawer's) one joint, or an object's first (LIBERO's turn_on
            # passes when any one of them does)
            joint = joints[0]
            q_now = float(sim.data.qpos[sim.model.get_joint_qpos_addr(joint)])
            goal_qpos = _range_goal(check, ranges, q_now)
            jtype = int(sim.model._model.jnt_type[sim.model.joint_name2id(joint)])
            if goal_qpos is None or jtype not in (2, 3):  # slide, hinge
                return None
            kind = "slide" if jtype == 2 else "hinge"
            target = _JointTarget(worker, joint, goal_qpos, kind)
            expert = DrawerExpert if kind == "slide" else KnobExpert
            return GoalExpert([(pred[0], expert, target.scene)])
        if pred[0] in ("in", "on") and len(pred) == 3 and pred[1] in inner.objects_dict:
            obj, target = pred[1], pred[2]
            if target in inner.object_sites_dict:
                parent = inner.object_states_dict[target].parent_name
                if parent is None or parent not in inner.obj_body_id:  # a region of the table itself
                    lo, hi = worker._aabb(obj)
                    if hi[2] - lo[2] > 0.03:  # (only a low object is pushed: a plate)
                        return None
                    return GoalExpert([("push", PushExpert, lambda w: _push_scene(w, obj, target))])
                owner, joints = _articulation(inner, target)
                if joints and hasattr(owner, "is_open"):  # a region inside a drawer: open it first
                    sim = inner.sim
                    joint = joints[0]
                    q_now = float(sim.data.qpos[sim.model.get_joint_qpos_addr(joint)])
                    goal_qpos = _range_goal(owner.is_open, owner.object_properties["articulation"]
                                            ["default_open_ranges"], q_now)
                    if goal_qpos is None:
                        return None
                    drawer = _JointTarget(worker, joint, goal_qpos, "slide")
                    place = (pred[0], PickPlaceExpert, lambda w: _drawer_place_scene(w, drawer))

                    def plan():  # how far to open, from where the object stands in this episode
                        q = drawer.qpos(worker)
                        props = owner.object_properties["articulation"]
                        full = _range_goal(owner.is_open, props["default_open_ranges"], q)
                        # (from the ranges, not from `full - q`: that is 0 for a drawer that starts open)
                        drawer.open_sign = np.sign(np.mean(props["default_open_ranges"])
                                                   - np.mean(props["default_close_ranges"])) or 1.0
                        # a drawer that starts open (LIBERO-10's) is left as it is: reaching for its handle
                        # only risks the arm on what stands around it
                        drawer.goal_qpos = q if owner.is_open(q) else _clear_of(worker, drawer, obj, q, full)

                    return GoalExpert([("open", DrawerExpert, drawer.scene), place], on_reset=plan)
            elif target in inner.objects_dict:  # on / in another object: the worker's own scene
                return GoalExpert([(pred[0], PlaceAwarePickPlaceExpert, lambda w: w.scene())])
        return None

    def act(self, worker) -> np.ndarray:
        _, _, scene = self.stages[self.index]
        expert = self.experts[self.index]
        s = scene(worker)
        if getattr(expert, "done", False) and self.index + 1 < len(self.stages):
            previous = expert
            self.index += 1
            expert = self.experts[self.index]
            # the next expert holds the orientation the episode started with (pointing down), not this one's
            if isinstance(expert, PickPlaceExpert) and getattr(previous, "home_quat", None) is not None:
                expert.home_quat = previous.home_quat.copy()
                expert.home_axis = np.asarray(previous.home_axis, dtype=np.float64)
            worker.fixture_points = None  # the fixtures' height map, again: a drawer may have moved
            s = self.stages[self.index][2](worker)
            if isinstance(expert, PickPlaceExpert):
                self.transit = (*self._transit(s, expert), 0)
        if self.transit is not None:
            target, quat, steps = self.transit
            high = np.array([s.eef_pos[0], s.eef_pos[1], target[2]])  # up first, then over
            goal = target if s.eef_pos[2] > target[2] - 0.03 else high
            turned = _Base._rot_err(s, quat) < 0.1
            if (np.linalg.norm(target - s.eef_pos) < 0.015 and turned) or steps > 60:
                self.transit = None
            else:
                self.transit = (target, quat, steps + 1)
                return _Base()._act(s, goal, quat, OPEN)
        return expert.act(s)


def _clear_of(worker, drawer: _JointTarget, obj: str, q_now: float, goal_qpos: float) -> float:
    """How far to open a drawer that an object is to go into: LIBERO's `in` tests only the object's position
    in the drawer's region, not the drawer's open state, and a drawer opened all the way overhangs an object
    standing in front of it, where the hand must reach down to grasp it. So: its front stops short of the
    hand grasping the object at its middle (half the hand's width and a centimetre), at most `goal_qpos`."""
    model = worker.env.env.sim.model._model
    data = worker.env.env.sim.data._data
    sign = np.sign(goal_qpos - q_now) or 1.0
    pull = np.array(data.xaxis[drawer.jid]) * sign
    pull[2] = 0.0
    pull /= max(np.linalg.norm(pull), 1e-9)
    reach = {g: (worker._geom_corners(g) @ pull).max() for g in drawer.geoms}
    handle = max(reach, key=reach.get)
    front = max(v for g, v in reach.items() if g != handle)
    lo, hi = worker._aabb(obj)
    stop = ((lo + hi) / 2) @ pull - HAND_HALF_WIDTH - 0.01
    travel = min(max(stop - front, 0.0), abs(goal_qpos - q_now))
    lo_q, hi_q = model.jnt_range[drawer.jid]
    return float(np.clip(q_now + sign * travel, lo_q, hi_q))


def _push_scene(worker, obj: str, region: str) -> PushScene:
    inner = worker.env.env
    data = inner.sim.data
    lo, hi = worker._aabb(obj)
    if worker.fixture_points is None:  # fixtures do not move: once per episode
        worker.fixture_points = worker._fixture_points()
    cells = worker.fixture_points
    # the hand travels over the other objects and the fixtures beside the object (the tipped hand reaches over
    # a cabinet's top just behind a plate)
    beside = np.linalg.norm(cells[:, :2] - (lo[:2] + hi[:2]) / 2, axis=1) < np.ptp([lo, hi], axis=0)[:2].max() / 2 + 0.1
    tops = [worker._aabb(n)[1][2] for n in inner.objects_dict if n != obj] + list(cells[beside, 2])
    # what the object's push keeps off: the other objects and the fixtures standing on the table
    others = [n for n in inner.objects_dict if n != obj] + [n for n in inner.fixtures_dict if n in inner.obj_body_id]
    obstacles = np.array([np.stack(worker._aabb(n))[:, :2] for n in others]).reshape(-1, 2, 2)
    obs = worker._raw_obs
    return PushScene(eef_pos=np.asarray(obs["robot0_eef_pos"], dtype=np.float64),
                     eef_quat=np.asarray(obs["robot0_eef_quat"], dtype=np.float64), finger_axis=worker._finger_axis(),
                     object_pos=np.array(data.body_xpos[inner.obj_body_id[obj]]), object_lo=lo, object_hi=hi,
                     region_pos=np.array(data.get_site_xpos(region)),
                     region_half=np.asarray(inner.object_sites_dict[region].size, dtype=np.float64),
                     high=float(max([hi[2], *tops])) + 0.06, obstacles=obstacles,
                     base=np.array(data.get_body_xpos(inner.robots[0].robot_model.root_body))[:2], fixture_points=cells)


def _drawer_place_scene(worker, drawer: _JointTarget) -> Scene:
    """The pick-and-place scene for a region inside a drawer: carried over the cabinet's top (clear_z), but
    lowered down to the drawer's floor (container_hi) rather than let go of above its walls."""
    s = worker.scene()
    extent = {g: np.ptp(worker._geom_corners(g)[:, :2], axis=0) for g in drawer.geoms}
    floor = max(drawer.geoms, key=lambda g: extent[g][0] * extent[g][1])  # its widest geom
    s.container_hi = s.container_hi.copy()
    s.container_hi[2] = worker._geom_corners(floor)[:, 2].max()
    # the object's centre over the middle of the drawer's open part (between the cabinet's front and the
    # drawer's front wall), not the region's centre further in, under the cabinet's top, kept in the region
    data = worker.env.env.sim.data._data
    model = worker.env.env.sim.model._model
    pull = np.array(data.xaxis[drawer.jid]) * drawer.open_sign
    pull[2] = 0.0
    pull /= max(np.linalg.norm(pull), 1e-9)
    carcass = [g for g in range(model.ngeom) if model.geom_bodyid[g] == model.body_parentid[drawer.body]
               and (model.geom_contype[g] or model.geom_conaffinity[g])]
    cabinet_front = max((worker._geom_corners(g) @ pull).max() for g in carcass)
    walls = [g for g in drawer.geoms if g != floor and extent[g] @ np.abs(pull[:2]) < 0.02
             and extent[g] @ np.abs([pull[1], pull[0]]) > 0.1]  # thin along the pull, wide across: front, back
    drawer_front = max((worker._geom_corners(g) @ pull).min() for g in walls)  # the front wall's inner face
    middle = (cabinet_front + drawer_front) / 2
    along = s.region_pos[:2] @ pull[:2]
    shift = np.clip(middle, along - s.region_half[:2] @ np.abs(pull[:2]) + 0.01,
                    along + s.region_half[:2] @ np.abs(pull[:2]) - 0.01) - along
    s.region_pos = s.region_pos.copy()
    s.region_pos[:2] += shift * pull[:2]
    return s
