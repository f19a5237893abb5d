"""The LIBERO-10 experts' pure-numpy parts (no LIBERO needed): the close push, the handle grasp search, the
flight over other objects, the places side by side and the step order of a sequence."""

from types import SimpleNamespace

import numpy as np

from tinyvla.envs.libero_expert import FINGER_OPEN, PickPlaceExpert, Scene, path_top
from tinyvla.envs.libero_goal_expert import KnobExpert
from tinyvla.envs.libero_long_expert import (ORDER, AlignedPickPlaceExpert, ClearingPickPlaceExpert,
                                             ClosePushScene, CloseExpert, SequenceExpert, _footprint_axes,
                                             _free_spot, _released, _slab_grasp, _slot, _sweep_height)

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


def _scene(neighbours, eef=(-0.05, 0.0, 0.69)) -> Scene:
    """A flat box (8 x 4 x 1.8 cm) at (0.1, -0.18) to grasp, the hand up at `eef`, fingers along y."""
    lo, hi = np.array([0.06, -0.2, 0.437]), np.array([0.14, -0.16, 0.455])
    return Scene(eef_pos=np.array(eef), eef_quat=DOWN, gripper_qpos=np.array([0.04, -0.04]),
                 object_pos=(lo + hi) / 2, object_lo=lo, object_hi=hi, region_pos=np.array([0.0, 0.26, 0.43]),
                 region_half=np.array([0.05, 0.05, 0.01]), container_hi=np.array([0.08, 0.35, 0.57]), clear_z=0.57,
                 neighbours=np.array(neighbours).reshape(-1, 2, 3), finger_axis=np.array([0.0, 1.0, 0.0]))


def test_the_hover_flies_over_a_tall_carton_on_its_way():
    carton = [[0.035, -0.146, 0.44], [0.088, -0.094, 0.57]]  # 13 cm tall, between the hand and the box
    s = _scene([carton], eef=(-0.05, 0.0, 0.58))
    grasp = np.array([0.13, -0.19])
    assert _sweep_height(s, s.eef_pos[:2], grasp) > 0.57  # the open fingertips clear its top
    assert _sweep_height(_scene([]), s.eef_pos[:2], grasp) == -np.inf  # nothing in the way
    assert _sweep_height(s, grasp + np.array([0.0, 0.02]), grasp) == -np.inf  # over the grasp already
    plain, clearing = PickPlaceExpert(), ClearingPickPlaceExpert()
    up_plain, up_clearing = plain.act(s)[2], clearing.act(s)[2]
    assert clearing.phase == "hover" and up_clearing > up_plain  # (the plain hover heads down into it)


def test_the_carry_clears_what_stands_on_the_way_to_the_basket():
    carton = [[0.035, -0.146, 0.44], [0.088, -0.094, 0.62]]
    s = _scene([carton], eef=(0.1, -0.18, 0.45))
    expert = ClearingPickPlaceExpert()
    expert.act(s)
    expert.phase, expert.timer, expert.hang = "carry", 0, 0.01
    a = expert.act(s)
    assert a[2] > 0.99  # up to 5 cm over the carton's top, not the basket's rim (0.57)


def test_path_top_is_the_highest_box_or_fixture_cell_along_the_way():
    boxes = np.array([[[0.1, -0.02, 0.0], [0.14, 0.02, 0.3]],  # on the way
                      [[0.1, 0.5, 0.0], [0.14, 0.54, 0.9]]])  # far off it
    small, wide = ([-0.02, -0.02], [0.02, 0.02]), ([-0.59, -0.59], [0.59, 0.59])  # reach 0.03 / 0.6 from (0, 0)
    assert path_top(*small, [0.3, 0.0], boxes) == 0.3
    assert path_top(*small, [0.3, 0.0], boxes[1:]) == -np.inf
    assert path_top(*small, [0.3, 0.0], boxes[1:], np.array([[0.2, 0.02, 0.4], [0.2, 0.2, 0.7]])) == 0.4
    assert path_top(*wide, [0.3, 0.0], boxes) == 0.9  # a wider object meets the far box too


def test_slots_keep_a_handled_pots_footprint_on_the_stove_plate():
    # a 19 x 19 cm plate (top 0.93) under a 15 x 15 cm region; two pots whose handles stick out 9 cm along -y
    plate = np.array([[x, y, z] for x in (-0.14, 0.05) for y in (-0.295, -0.105) for z in (0.885, 0.93)])
    pots = {"pot_a": np.array([-0.04, 0.23, 0.966]), "pot_b": np.array([0.04, 0.05, 0.966])}
    inner = SimpleNamespace(
        object_sites_dict={"cook": None}, object_states_dict={"cook": SimpleNamespace(parent_name="stove")},
        obj_body_id={"stove": 0, "pot_a": 1, "pot_b": 2},
        sim=SimpleNamespace(data=SimpleNamespace(get_site_xpos=lambda _: np.array([-0.045, -0.2, 0.905]),
                                                 body_xpos=[np.zeros(3), pots["pot_a"], pots["pot_b"]])))
    worker = SimpleNamespace(env=SimpleNamespace(env=inner), _collision_geoms=lambda _: [0],
                             _geom_corners=lambda _: plate)

    def scene(obj):
        def make(_):
            pos = pots[obj]
            return Scene(eef_pos=np.zeros(3), eef_quat=DOWN, gripper_qpos=np.zeros(2), object_pos=pos,
                         object_lo=pos + np.array([-0.04, -0.091, -0.066]), object_hi=pos + np.array([0.04, 0.057, 0.086]),
                         region_pos=np.array([-0.045, -0.2, 0.905]), region_half=np.array([0.075, 0.075, 0.0025]),
                         container_hi=np.array([0.05, -0.105, 0.955]), clear_z=1.05, neighbours=np.zeros((0, 2, 3)),
                         finger_axis=np.array([0.0, 1.0, 0.0]))
        return make

    first = _slot(scene("pot_a"), 0, ["pot_a", "pot_b"], "cook")(worker)
    assert -0.295 + 0.091 - 1e-9 <= first.region_pos[1] <= -0.105 - 0.057 + 1e-9  # the handle stays on the plate
    assert np.isclose(first.container_hi[2], 0.93)  # lowered to the plate, not to the knob's top
    pots["pot_a"] = np.array([first.region_pos[0], first.region_pos[1], 0.996])  # put there
    second = _slot(scene("pot_b"), 1, ["pot_a", "pot_b"], "cook")(worker)
    assert np.linalg.norm(second.region_pos[:2] - first.region_pos[:2]) > 0.09  # side by side, not touching
    assert -0.14 + 0.04 - 1e-9 <= second.region_pos[0] <= 0.05 - 0.04 + 1e-9


def test_the_turned_book_comes_down_over_the_slot_not_beside_it():
    # the hand holds the book 1.2 cm off its body's origin; turned a quarter on the way, that offset turns with it
    s = _scene([], eef=(-0.4, -0.14, 1.2))
    s.object_pos = np.array([-0.412, -0.14, 1.1])
    expert = AlignedPickPlaceExpert()
    expert.home_quat, expert.home_axis = DOWN, np.array([0.0, 1.0])
    expert.phase, expert.turn, expert.offset = "carry", np.pi / 2, np.array([0.012, 0.0])
    expert.act(s)
    assert np.allclose(expert.offset, [0.0, 0.012]) and np.isclose(expert.yaw, np.pi / 2) and expert.turn == 0.0
