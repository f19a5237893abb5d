"""A scripted pick-and-place expert for LIBERO that reads privileged simulator state.

Pure numpy (no LIBERO, no torch): it runs inside the LIBERO worker process (tinyvla.envs.libero_worker),
which hands it, every step, a `Scene` of world-frame quantities read from the simulator: the gripper's
position and orientation, the collision-geometry bounding box (AABB) of the object to move and of the
container, and the goal region. Actions are LIBERO's: OSC_POSE deltas in [-1, 1] (x, y, z, then
axis-angle rotation) and the gripper (-1 open, +1 close), at 20 Hz.

The plan, a small state machine: hover above the object's AABB with the gripper pointing down (the
orientation at reset is held), descend to a grasp height inside the box, close, slide the object
out from under any fixture that overhangs it (a bowl in an open drawer, under the cabinet's top), lift high
enough to clear the container, carry the object (not the hand) over the goal region, lower, open, back off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HAND_HALF_LENGTH = 0.105  # the Panda hand's collision box around the grip point, along the finger axis
HAND_HALF_WIDTH = 0.035  # ... and across it
HAND_ABOVE_GRIP = 0.035  # its underside above the grip point
FINGER_OPEN = 0.04  # each finger's distance from the grip point, open
POS_SCALE = 0.05  # metres per unit of action (the OSC controller's output_max for x, y, z)
ROT_SCALE = 0.5  # radians per unit of action
FIXTURE_CELL = 0.005  # the side of a Scene.fixture_points cell


@dataclass
class Scene:
    """World-frame privileged state for one step (metres; quaternions x, y, z, w)."""

    eef_pos: np.ndarray  # (3,)
    eef_quat: np.ndarray  # (4,)
    gripper_qpos: np.ndarray  # (2,) finger joint positions
    object_pos: np.ndarray  # (3,) the moved object's body position (what the success check tests)
    object_lo: np.ndarray  # (3,) its collision AABB
    object_hi: np.ndarray
    region_pos: np.ndarray  # (3,) the goal region's centre
    region_half: np.ndarray  # (3,) its half extents (world axes)
    container_hi: np.ndarray  # (3,) top corner of the container's (or target's) AABB (z: its rim / top)
    clear_z: float  # the height the carried object's bottom must clear on its way (>= container_hi[2])
    neighbours: np.ndarray  # (k, 2, 3) AABBs (lo, hi) of the other movable objects
    finger_axis: np.ndarray  # (3,) unit vector from one fingertip to the other
    # the fixtures' collision geoms (a cabinet, a stove) as a height map: (n, 3) cells of a 5 mm grid, each
    # its x, y and the highest top over it
    fixture_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


def path_top(lo: np.ndarray, hi: np.ndarray, goal: np.ndarray, neighbours, fixture_points=None) -> float:
    """The highest top an object (its AABB lo, hi) meets carried straight (x-y) from where it is to `goal`: the
    neighbours' AABBs ((k, 2, 3) lo/hi) and the fixture cells ((m, 3) x, y, top) within its footprint's reach
    (half its longer side + 1 cm) of the path; -inf when nothing is. What the carry must clear (the worker's
    Scene.clear_z, the LIBERO-10 experts)."""
    lo, hi = np.asarray(lo, dtype=np.float64)[:2], np.asarray(hi, dtype=np.float64)[:2]
    start, goal, radius = (lo + hi) / 2, np.asarray(goal, dtype=np.float64)[:2], np.max(hi - lo) / 2 + 0.01
    n = int(np.ceil(np.linalg.norm(goal - start) / 0.01)) + 1
    path = start + np.linspace(0.0, 1.0, n)[:, None] * (goal - start)  # (n, 2)
    top = -np.inf
    for nlo, nhi in neighbours:
        gap = np.maximum(np.maximum(nlo[:2] - path, path - nhi[:2]), 0.0)  # distance to the box, per axis
        if (np.hypot(gap[:, 0], gap[:, 1]) < radius).any():
            top = max(top, nhi[2])
    if fixture_points is not None and len(fixture_points):
        near = fixture_points[(fixture_points[:, :2] > path.min(0) - radius).all(1)
                              & (fixture_points[:, :2] < path.max(0) + radius).all(1)]
        if len(near):
            d = np.linalg.norm(near[None, :, :2] - path[:, None], axis=-1).min(0)
            if (d < radius).any():
                top = max(top, near[d < radius, 2].max())
    return float(top)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) -> axis * angle (3,), angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    s = np.sqrt(max(1.0 - q[3] * q[3], 0.0))
    if s < 1e-8:
        return np.zeros(3)
    return q[:3] / s * 2.0 * np.arccos(np.clip(q[3], -1.0, 1.0))


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz])


def _quat_inv(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]]) / np.dot(q, q)


class PickPlaceExpert:
    """Pick the object up and put it down in / on the goal (`in X basket` of LIBERO-Object, `on X plate`)."""

    hover = 0.08  # metres above the object's top before descending
    clearance = 0.05  # the carried object's bottom above the container's rim
    gain = 1.0 / POS_SCALE  # action per metre of error: the controller's goal is the target (full speed beyond 5 cm)

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.phase, self.timer = "hover", 0
        self.home_quat: np.ndarray | None = None
        self.grasp: np.ndarray | None = None  # the grasp point, fixed when the hover starts
        self.hang = 0.0  # grip point minus the object's bottom, measured when lifted
        self.offset = np.zeros(2)  # hand minus object (x, y), measured when the carry starts
        self.retries = 0
        self.path: list[np.ndarray] = []  # the hand's positions, one per step
        self.lift_from = np.zeros(2)  # the hand's and the object's heights when the lift starts
        self.lift_xy = np.zeros(2)  # where the hand rises, the grasp point moved by the slide
        self.home_axis: np.ndarray | None = None  # the finger axis (x, y) at the reset orientation
        self.heights: list[float] = []  # the hand's height, each step of the descent
        self.rim = False  # grasping a wide round object by its rim
        self.yaw = 0.0  # the hand's turn about the vertical from the reset orientation, for a rim grasp

    def _grasp_point(self, s: Scene) -> np.ndarray:
        centre = (s.object_lo + s.object_hi) / 2
        height = s.object_hi[2] - s.object_lo[2]
        u = np.asarray(s.finger_axis[:2], dtype=np.float64)
        u = u / max(np.linalg.norm(u), 1e-9)
        v = np.array([-u[1], u[0]])
        corners = np.array([[x, y] for x in (s.object_lo[0], s.object_hi[0]) for y in (s.object_lo[1], s.object_hi[1])])
        half_u = np.abs((corners - centre[:2]) @ u).max()
        half_v = np.abs((corners - centre[:2]) @ v).max()
        self.rim = min(half_u, half_v) > FINGER_OPEN - 0.008
        if self.rim:  # wider than the open gripper every way (a bowl): its rim
            return self._rim_grasp(s, centre, min(s.object_hi[:2] - s.object_lo[:2]) / 2)
        z = max(s.object_hi[2] - 0.03, s.object_lo[2] + min(0.02, height / 2))
        shift = self._free_shift(s, centre[:2], z, u, v, half_u, half_v)
        return np.array([centre[0] + shift[0], centre[1] + shift[1], z])

    def _rim_grasp(self, s: Scene, centre: np.ndarray, radius: float, extra_blocked=None) -> np.ndarray:
        """A round object wider than the open gripper is grasped by its rim, the fingers across the wall, so
        the finger axis is radial. Of 16 points around the rim, the one whose hand and fingers are least in
        the way of the neighbours and the fixtures (a drawer's or a cabinet's walls, the top it stands on),
        then the smallest turn of the hand; sets self.yaw (the finger axis is symmetric: |yaw| <= 90 deg).
        `extra_blocked(point, z)` adds to a point's blockage (a subclass's other constraints)."""
        z = s.object_hi[2] - 0.02
        home = np.arctan2(self.home_axis[1], self.home_axis[0])
        best, best_cost = None, np.inf
        for angle in np.arange(16) * np.pi / 8:
            u = np.array([np.cos(angle), np.sin(angle)])
            yaw = (angle - home + np.pi / 2) % np.pi - np.pi / 2
            p = centre[:2] + (radius - 0.012) * u
            blocked = self._blocked(s, p, z, u, np.array([-u[1], u[0]]))
            if extra_blocked is not None:
                blocked = blocked + extra_blocked(p, z)
            cost = blocked * 1e4 + 0.1 * abs(yaw)
            if cost < best_cost:
                best, best_cost, self.yaw = p, cost, yaw
        return np.array([best[0], best[1], z])

    @staticmethod
    def _blocked(s: Scene, p: np.ndarray, z: float, u: np.ndarray, v: np.ndarray) -> float:
        """How much of the hand's and the open fingers' footprint at grasp point (p, z) neighbours and fixtures
        take (m^2)."""
        # (u half-extent, v half-extent, height above the grasp point from which a neighbour blocks the part)
        parts = [(HAND_HALF_LENGTH, HAND_HALF_WIDTH, HAND_ABOVE_GRIP),
                 (FINGER_OPEN + 0.015, 0.015, -0.005)]  # both open fingers' pads (and a margin)
        blocked = 0.0
        fixtures = s.fixture_points
        if len(fixtures):  # only the cells within the hand's reach and above the grasp's lowest part
            d = fixtures[:, :2] - p
            fixtures = fixtures[(np.abs(d) < HAND_HALF_LENGTH).all(1) & (fixtures[:, 2] > z - 0.015)]
        if len(fixtures):
            d = fixtures[:, :2] - p
            fu, fv = np.abs(d @ u), np.abs(d @ v)
            for pu, pv, above in parts:  # 1 cm of margin: the hand's underside met a cabinet's top 3 cm above
                blocked += np.sum((fu < pu) & (fv < pv) & (fixtures[:, 2] > z + above - 0.01)) * FIXTURE_CELL ** 2
        for lo, hi in s.neighbours:
            for pu, pv, above in parts:
                if hi[2] <= z + above:
                    continue
                nc = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])]) - p
                nu, nv = nc @ u, nc @ v
                overlap_u = min(nu.max(), pu) - max(nu.min(), -pu)
                overlap_v = min(nv.max(), pv) - max(nv.min(), -pv)
                if overlap_u > 0 and overlap_v > 0:
                    blocked += overlap_u * overlap_v
        return blocked

    def _free_shift(self, s: Scene, centre: np.ndarray, z: float, u: np.ndarray, v: np.ndarray, half_u: float,
                    half_v: float) -> np.ndarray:
        """The smallest horizontal shift of the grasp point that keeps the hand and the open fingers off the
        neighbours (the hand is ~21 cm long along the finger axis: a flat object next to a tall one is
        grasped off-centre), while the fingers still straddle the object."""
        best, best_cost = np.zeros(2), np.inf
        steps = np.arange(-0.03, 0.0301, 0.005)
        for du in steps:
            if abs(du) + half_u > FINGER_OPEN - 0.008:
                continue
            for dv in steps:
                if abs(dv) > max(half_v - 0.012, 0.0):
                    continue
                cost = self._blocked(s, centre + du * u + dv * v, z, u, v) * 1e4 + np.hypot(du, dv)
                if cost < best_cost:
                    best, best_cost = du * u + dv * v, cost
        return best

    def _start_lift(self, s: Scene) -> None:
        self.hang = s.eef_pos[2] - s.object_lo[2]
        self.lift_from = np.array([s.eef_pos[2], s.object_pos[2]])

    @staticmethod
    def _lift_shift(s: Scene, margin: float = 0.015) -> np.ndarray:
        """The smallest horizontal shift (<= 4 cm) of the grasped object that keeps its footprint, widened by
        `margin`, off the fixture cells that rise above its bottom: in an open drawer the bowl's rim may sit
        under the cabinet's top; lifted straight up it catches there, tilts and slips out of the fingers."""
        fixtures = s.fixture_points
        centre = (s.object_lo[:2] + s.object_hi[:2]) / 2
        radius = np.max(s.object_hi[:2] - s.object_lo[:2]) / 2 + margin
        if not len(fixtures):
            return np.zeros(2)
        near = fixtures[(np.linalg.norm(fixtures[:, :2] - centre, axis=1) < radius + 0.045)
                        & (fixtures[:, 2] > s.object_lo[2] + 0.01)]
        if not len(near) or (np.linalg.norm(near[:, :2] - centre, axis=1) >= radius).all():
            return np.zeros(2)
        best, best_cost = np.zeros(2), np.inf
        steps = np.arange(-0.04, 0.0401, 0.005)
        for dx in steps:
            for dy in steps:
                d = np.array([dx, dy])
                hits = np.sum(np.linalg.norm(near[:, :2] - centre - d, axis=1) < radius)
                cost = hits + np.linalg.norm(d)
                if cost < best_cost:
                    best, best_cost = d, cost
        return best

    def flight_height(self, s: Scene, target: np.ndarray) -> float:
        """The height at which the hand flies from where it is to `target` (x, y): the target's own here."""
        return target[2]

    def _move(self, s: Scene, target: np.ndarray, gripper: float) -> np.ndarray:
        delta = np.clip((target - s.eef_pos) * self.gain, -1.0, 1.0)
        rot = np.clip(self._rot_error(s) / ROT_SCALE * 2.0, -1.0, 1.0)
        return np.concatenate([delta, rot, [gripper]]).astype(np.float32)

    def _rot_error(self, s: Scene) -> np.ndarray:
        """Axis-angle from the hand's orientation to the reset one (gripper pointing down, held against
        drift) turned by self.yaw about the vertical."""
        turn = np.array([0.0, 0.0, np.sin(self.yaw / 2), np.cos(self.yaw / 2)])
        return quat_to_axis_angle(_quat_mul(_quat_mul(turn, self.home_quat), _quat_inv(s.eef_quat)))

    def _stalled(self, steps: int = 5, tol: float = 0.003) -> bool:
        """The hand has moved less than `tol` over the last `steps` steps of this phase."""
        return self.timer > steps and np.linalg.norm(self.path[-1] - self.path[-1 - steps]) < tol

    def act(self, s: Scene) -> np.ndarray:
        self.path.append(np.asarray(s.eef_pos, dtype=np.float64).copy())
        if self.home_quat is None:
            self.home_quat = np.asarray(s.eef_quat, dtype=np.float64).copy()
            axis = np.asarray(s.finger_axis[:2], dtype=np.float64)
            self.home_axis = axis / max(np.linalg.norm(axis), 1e-9)
        self.timer += 1
        close = 1.0
        if self.phase == "hover":
            if self.timer == 1 or not self.rim:  # a rim point (and the hand's turn) is chosen once: no dithering
                self.grasp = self._grasp_point(s)
            target = self.grasp + np.array([0, 0, s.object_hi[2] - self.grasp[2] + self.hover])
            turned = np.linalg.norm(self._rot_error(s)) < 0.1
            # far out, the turned hand may stop short of the hover point (the arm near its reach): near enough
            # once it stalls, the descent goes on correcting
            stuck = self._stalled(8) and np.linalg.norm(target[:2] - s.eef_pos[:2]) < 0.02
            if (np.linalg.norm(target - s.eef_pos) < 0.01 and turned) or stuck or self.timer > 80:
                self.phase, self.timer, self.heights = "descend", 0, []
            return self._move(s, target, -1.0)
        if self.phase == "descend":
            self.heights.append(s.eef_pos[2])
            stalled = len(self.heights) > 6 and self.heights[-7] - s.eef_pos[2] < 0.002  # fingers on something
            if np.linalg.norm(self.grasp - s.eef_pos) < 0.008 or stalled or self.timer > 40:
                self.phase, self.timer = "close", 0
            action = self._move(s, self.grasp, -1.0)
            action[2] = max(action[2], -0.5)  # down at half speed: a fast descent far from the robot swerves
            return action
        if self.phase == "close":
            if self.timer > 12:
                shift = self._lift_shift(s)
                if np.linalg.norm(shift) > 0.003:
                    self.phase, self.timer, self.lift_xy = "slide", 0, s.eef_pos[:2] + shift
                else:
                    self.phase, self.timer, self.lift_xy = "lift", 0, self.grasp[:2].copy()
                    self._start_lift(s)
            return self._move(s, self.grasp, close)
        if self.phase == "slide":  # out from under an overhang, the object still on its support
            target = np.array([*self.lift_xy, self.grasp[2]])
            if np.linalg.norm(target[:2] - s.eef_pos[:2]) < 0.004 or self._stalled() or self.timer > 30:
                self.phase, self.timer = "lift", 0
                self.lift_xy = s.eef_pos[:2].copy()
                self._start_lift(s)
            action = self._move(s, target, close)
            action[:2] = np.clip(action[:2], -0.3, 0.3)  # slowly: the bowl is held by its thin rim
            return action
        carry_z = s.clear_z + self.clearance + self.hang
        above = np.array([*(s.region_pos[:2] + self.offset), carry_z])  # the object, not the hand, over the region
        if self.phase == "lift":
            target = np.array([self.lift_xy[0], self.lift_xy[1], carry_z])
            # (not for a rim: the fingers holding a bowl's thin wall are as closed as on nothing)
            if self.timer > 8 and not self.rim and np.sum(np.abs(s.gripper_qpos)) < 0.006 and self.retries < 2:
                self.phase, self.timer, self.retries = "hover", 0, self.retries + 1  # closed on nothing: again
                return self._move(s, target, -1.0)
            rose = s.eef_pos[2] - self.lift_from[0]
            if rose > 0.03 and s.object_pos[2] - self.lift_from[1] < rose / 2 and self.retries < 3:
                # the hand rises without the object (a rim held by the fingertips slips out): again
                self.phase, self.timer, self.retries = "hover", 0, self.retries + 1
                return self._move(s, target, -1.0)
            if s.eef_pos[2] > carry_z - 0.02 or self.timer > 60:
                self.phase, self.timer = "carry", 0
                self.offset = s.eef_pos[:2] - s.object_pos[:2]
            return self._move(s, target, close)
        if self.phase == "carry":
            # the object over the region; the loaded hand far out may stop a centimetre or two short of its
            # target: then near is good enough (a plate is 13 cm across)
            miss = np.linalg.norm(s.region_pos[:2] - s.object_pos[:2])
            if min(np.linalg.norm(above[:2] - s.eef_pos[:2]), miss) < 0.01 or (miss < 0.025 and self._stalled()) \
                    or self.timer > 100:
                self.phase, self.timer = "lower", 0
            return self._move(s, above, close)
        if self.phase == "lower":
            target = np.array([above[0], above[1], s.container_hi[2] + 0.01 + self.hang])
            if abs(target[2] - s.eef_pos[2]) < 0.01 or self._stalled() or self.timer > 30:  # or set down
                self.phase, self.timer = "release", 0
            return self._move(s, target, close)
        if self.phase == "release":
            if self.timer > 10:
                self.phase, self.timer = "retreat", 0
            return self._move(s, s.eef_pos.copy(), -1.0)
        return self._move(s, np.array([s.eef_pos[0], s.eef_pos[1], carry_z + 0.05]), -1.0)  # retreat


EXPERTS = {"pick_place": PickPlaceExpert}

__all__ = ["Scene", "PickPlaceExpert", "EXPERTS", "quat_to_axis_angle"]
