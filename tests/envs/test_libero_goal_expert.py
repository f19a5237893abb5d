"""The LIBERO-Goal experts' pure-numpy parts (no LIBERO needed): the joint goals they aim at, the hand's
turns, and well-formed actions on a synthetic scene."""

import numpy as np

from tinyvla.envs.libero_goal_expert import DrawerExpert, JointScene, KnobExpert, _range_goal, _yaw_to, quat_about

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
