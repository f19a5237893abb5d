"""The LIBERO-10 experts' pure-numpy parts (no LIBERO needed): the close push, the handle grasp search and the
step order of a sequence."""

import numpy as np

from tinyvla.envs.libero_expert import FINGER_OPEN, PickPlaceExpert
from tinyvla.envs.libero_goal_expert import KnobExpert
from tinyvla.envs.libero_long_expert import (ORDER, ClosePushScene, CloseExpert, SequenceExpert, _footprint_axes,
                                             _free_spot, _released, _slab_grasp)

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # the reset orientation: the gripper pointing down (x, y, z, w)


def _box(lo, hi) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def test_close_expert_pushes_along_the_closing_direction():
    expert = CloseExpert()
    s = ClosePushScene(eef_pos=np.array([0.0, 0.0, 1.2]), eef_quat=DOWN, finger_axis=np.array([0.0, 1.0, 0.0]),
                       contact=np.array([0.0, 0.05, 0.95]), direction=np.array([0.0, 1.0, 0.0]), qpos=-0.15,
                       goal_qpos=0.001, high=1.2)
    for _ in range(3):
        a = expert.act(s)
        assert a.shape == (7,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0) and a[6] == 1.0
    # the hand's long side (the finger axis) turned across the push: a quarter turn about the vertical, then tipped
    assert expert.sign == 1.0 and expert.quat is not None
    expert.phase = "push"
    s.eef_pos = s.contact - s.direction * expert.standoff
    assert expert.act(s)[1] > 0  # toward +y, the way the drawer closes
    s.qpos = 0.002  # past the goal: back off
    expert.act(s)
    assert expert.phase == "back"
    for _ in range(20):
        expert.act(s)
    assert expert.done


def test_slab_grasp_finds_a_pots_handle():
    # a pot 8 cm across (wider than the open gripper) with a 1.2 cm thick handle plate sticking out along -y
    body = _box([-0.04, -0.04, 0.90], [0.04, 0.04, 1.03])
    handle = _box([-0.006, -0.10, 0.96], [0.006, -0.045, 1.03])
    parts = np.stack([body, handle])
    point, yaw = _slab_grasp(parts, np.zeros(2), home_axis=np.array([0.0, 1.0]))
    assert -0.10 < point[1] < -0.045 and abs(point[0]) < 0.005  # on the handle, centred across it
    assert np.isclose(abs(yaw), np.pi / 2)  # the finger axis across the handle plate (along x)
    assert point[2] < 1.03 - 0.005
    # a solid block wider than the opening every way and nothing thin: no grasp
    assert _slab_grasp(body[None], np.zeros(2), np.array([0.0, 1.0])) is None
    assert 2 * FINGER_OPEN < 0.09


def test_released_and_order():
    pick = PickPlaceExpert()
    assert not _released(pick)
    pick.phase, pick.timer = "retreat", 20
    assert _released(pick)
    knob = KnobExpert()
    knob.phase, knob.timer = "up", 20
    assert _released(knob)
    close = CloseExpert()
    close.done = True
    assert _released(close)
    assert ORDER["turnon"] < ORDER["on"] < ORDER["close"]


def test_a_mug_is_held_by_its_handle_not_its_rim():
    # a thin-walled cup (four wall boxes) 8.6 cm across with a handle plate along -y: `far` picks the handle
    r, t, top = 0.043, 0.004, 1.0
    walls = [_box([-r, -r, 0.9], [r, -r + t, top]), _box([-r, r - t, 0.9], [r, r, top]),
             _box([-r, -r, 0.9], [-r + t, r, top]), _box([r - t, -r, 0.9], [r, r, top])]
    handle = _box([-0.008, -0.075, 0.92], [0.008, -r, 0.985])
    parts = np.stack([*walls, handle])
    near, _ = _slab_grasp(parts, np.zeros(2), np.array([0.0, 1.0]))
    far, _ = _slab_grasp(parts, np.zeros(2), np.array([0.0, 1.0]), far=True)
    assert np.linalg.norm(near[:2]) < r + 0.005  # the rim
    assert -0.075 - 0.005 < far[1] < -r and abs(far[0]) < 0.008 + 0.005  # the handle


def test_footprint_axes_and_free_spot():
    book = _box([-0.015, -0.05, 0.9], [0.015, 0.05, 1.0])  # 3 cm thick along x
    thin, long = _footprint_axes(book[None])
    assert np.isclose(abs(thin[0]), 1.0) and np.isclose(abs(long[1]), 1.0)
    centre, half = np.array([0.0, 0.0, 0.9]), np.array([0.075, 0.075, 0.0025])
    nominal = np.array([0.0, 0.05, 0.9])
    assert np.allclose(_free_spot(centre, half, nominal, []), nominal)  # the first: where asked
    spot = _free_spot(centre, half, nominal, [np.array([0.0, -0.04])])
    assert spot[1] > 0.04 and abs(spot[0]) > 0.0  # the second: away from the first, inside the region
    assert np.all(np.abs(spot[:2]) <= 0.075 - 0.02 + 1e-9)


class _Step:
    """A stand-in for a GoalExpert step: one stage whose expert is done after `steps` actions."""

    def __init__(self, steps: int):
        self.steps, self.resets, self.index, self.transit = steps, 0, 0, None
        self.stages = [("x", object, lambda w: None)]
        self.reset()

    def reset(self):
        self.resets += 1
        self.experts = [type("E", (), {"done": False, "n": 0})()]

    def act(self, worker):
        e = self.experts[0]
        e.n += 1
        e.done = e.n >= self.steps
        return np.zeros(7, dtype=np.float32)


class _Worker:
    """What SequenceExpert reads of the LIBERO worker: the hand and LIBERO's predicate check."""

    def __init__(self, holds: dict):
        self.holds = holds
        self._raw_obs = {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": DOWN}
        self.env = type("Env", (), {})()
        self.env.env = type("Inner", (), {"_eval_predicate": lambda _, p: self.holds[p[0]]})()
        self.expert_goal, self.fixture_points = None, None

    def _finger_axis(self):
        return np.array([0.0, 1.0, 0.0])


def test_sequence_skips_what_holds_runs_the_rest_and_retries_once():
    first, second = _Step(3), _Step(2)
    seq = SequenceExpert([(["turnon", "stove"], first), (["close", "drawer"], second)])
    worker = _Worker({"turnon": True, "close": False})
    seq.act(worker)
    assert seq.index == 1 and first.experts[0].n == 0  # the stove was on already: skipped
    for _ in range(3):
        seq.act(worker)
    assert seq.index == 1 and seq.tries == 1 and second.resets == 3  # done without the drawer closed: again
    for _ in range(3):
        seq.act(worker)
    assert seq.index == 2  # given up after one retry: the rest (none) runs; the hand holds still
    assert seq.act(worker).shape == (7,)
