"""The LIBERO-Goal experts' pure-numpy parts (no LIBERO needed): the joint goals they aim at, the hand's
turns, and well-formed actions on a synthetic scene."""

import numpy as np

from tinyvla.envs.libero_goal_expert import (DrawerExpert, JointScene, KnobExpert, PushExpert, PushScene, _range_goal,
                                             _yaw_to, push_goal, quat_about)

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # the reset orientation: the gripper pointing down (x, y, z, w)


def test_range_goal_lands_inside_what_libero_accepts():
    drawer_open = lambda q: q < -0.14  # noqa: E731 - the wooden cabinet's check
    goal = _range_goal(drawer_open, [-0.16, -0.14], 0.0)
    assert drawer_open(goal) and -0.16 <= goal < -0.14
    knob_on = lambda q: q >= 0.5  # noqa: E731 - the flat stove's
    goal = _range_goal(knob_on, [0.5, 2.1], 0.0)
    assert knob_on(goal) and 0.5 < goal < 1.3
    assert _range_goal(lambda q: False, [0.0, 1.0], 0.0) is None


def test_turns():
    assert np.isclose(abs(_yaw_to(np.array([1.0, 0.0]), np.array([0.0, 1.0]))), np.pi / 2)  # either way
    assert np.isclose(_yaw_to(np.array([1.0, 0.0]), np.array([-1.0, 0.0])), 0.0)  # the finger axis is symmetric
    q = quat_about([0, 0, 1], np.pi / 2)
    assert np.allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)])


def _scene(kind: str) -> JointScene:
    return JointScene(eef_pos=np.array([-0.2, 0.0, 1.17]), eef_quat=DOWN, gripper_qpos=np.array([0.04, -0.04]),
                      finger_axis=np.array([0.0, 1.0, 0.0]), handle_lo=np.array([0.0, -0.15, 1.0]),
                      handle_hi=np.array([0.08, -0.13, 1.02]), handle_dir=np.array([1.0, 0.0]),
                      axis=np.array([0.0, -1.0, 0.0]) if kind == "slide" else np.array([0.0, 0.0, 1.0]),
                      anchor=np.array([0.04, -0.14, 1.01]), qpos=0.0,
                      goal_qpos=-0.15 if kind == "slide" else 0.9, obstacle_top=0.95)


def test_joint_experts_give_well_formed_actions():
    for expert, kind in ((DrawerExpert(), "slide"), (KnobExpert(), "hinge")):
        s = _scene(kind)
        for _ in range(5):
            a = expert.act(s)
            assert a.shape == (7,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
    drawer = DrawerExpert()
    drawer.act(_scene("slide"))
    assert np.allclose(drawer.pull, [0.0, 1.0, 0.0])  # opening a drawer whose qpos falls: toward +y


def test_push_goal_goes_round_what_stands_in_the_way():
    base, region, half = np.array([-0.66, 0.0]), np.array([-0.05, 0.21, 0.9]), np.array([0.04, 0.04, 0.007])
    start = np.array([-0.05, 0.0])
    # nothing in the way: straight at the region's centre (the push stops once the plate is inside the region)
    goal = push_goal(start, 0.07, region, half, np.zeros((0, 2, 2)), base)
    assert np.isclose(goal[0], region[0]) and abs(goal[1] - region[1]) < half[1]
    # a box (the cream cheese) just in front of the region, to the left of the straight line: a point of the
    # region further right, the plate's disc clear of the box on the way
    cheese = np.array([[[-0.13, 0.11], [-0.06, 0.15]]])
    goal = push_goal(start, 0.07, region, half, cheese, base)
    assert np.all(np.abs(goal - region[:2]) <= half[:2] - 0.012 + 1e-9) and goal[0] > region[0]
    # out of the arm's reach everywhere: still a point of the region
    far = push_goal(np.array([0.3, 0.21]), 0.07, region, half, cheese, base, reach=0.5)
    assert np.all(np.abs(far - region[:2]) <= half[:2])


def test_push_expert_gives_well_formed_actions():
    s = PushScene(eef_pos=np.array([-0.2, 0.0, 1.17]), eef_quat=DOWN, finger_axis=np.array([0.0, 1.0, 0.0]),
                  object_pos=np.array([0.05, -0.02, 0.902]), object_lo=np.array([-0.02, -0.09, 0.9]),
                  object_hi=np.array([0.12, 0.05, 0.919]), region_pos=np.array([-0.05, 0.21, 0.895]),
                  region_half=np.array([0.04, 0.04, 0.007]), high=1.12,
                  fixture_points=np.array([[0.05, -0.14, 1.1]]))  # a cabinet's front just behind the plate
    expert = PushExpert()
    for _ in range(5):
        a = expert.act(s)
        assert a.shape == (7,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
    assert expert.phase == "over" and np.isclose(expert.goal[0], -0.05)
