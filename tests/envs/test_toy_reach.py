import numpy as np
import pytest

from tinyvla.data.toy import generate_toy_dataset
from tinyvla.envs.toy_reach import (
    COLORS, SYNONYMS, ToyReachEnv, ToyTaskConfig, block_centres, render, sample_scene,
)


def test_expert_solves_every_episode():
    env = ToyReachEnv()
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs)
        for _ in range(env.cfg.max_episode_steps):
            obs, reward, terminated, truncated, info = env.step(env.expert_action())
            if terminated or truncated:
                break
        assert terminated and info["is_success"]


def test_wrong_block_fails():
    env = ToyReachEnv()
    obs, _ = env.reset(seed=3)
    other = block_centres(env.scene, env.cfg)[1 - env.scene.target]
    for _ in range(env.cfg.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(other)
        if terminated or truncated:
            break
    assert truncated and not info["is_success"]


def test_reset_is_deterministic_and_instruction_names_the_target():
    env = ToyReachEnv()
    a, _ = env.reset(seed=7)
    colour = env.scene.colors[env.scene.target]
    b, _ = ToyReachEnv().reset(seed=7)
    assert a["instruction"] == b["instruction"] and np.array_equal(a["image"], b["image"])
    assert any(word in a["instruction"].split() for word in SYNONYMS[colour])


def test_render_draws_blocks_in_their_colours():
    cfg = ToyTaskConfig()
    scene = sample_scene(np.random.default_rng(0), cfg)
    img = render(scene, cfg)
    for (x, y), colour in zip(scene.corners, scene.colors):
        centre = img[:, y + cfg.block_size // 2 - 1, x + cfg.block_size // 2 - 1]
        assert tuple(centre) in (COLORS[colour], (255, 255, 255))  # the end-effector cross may overlap


def test_task_needs_both_modalities():
    """The README's analytic argument, by Monte Carlo: the best language-only guess (workspace centre)
    and the best vision-only guess (midpoint of the two blocks) leave large errors."""
    cfg, rng = ToyTaskConfig(), np.random.default_rng(5)
    lang_only, vision_only = [], []
    for _ in range(5000):
        scene = sample_scene(rng, cfg)
        centres = block_centres(scene, cfg)
        target = centres[scene.target]
        lang_only.append(np.linalg.norm(target))
        vision_only.append(np.linalg.norm(target - centres.mean(axis=0)))
    assert 0.68 < np.mean(lang_only) < 0.73  # README: 0.707
    assert 0.47 < np.mean(vision_only) < 0.53  # README: 0.499
    ds = generate_toy_dataset(3000, 5)
    assert np.abs(ds.actions.mean(0).numpy()).max() < 0.05  # the centre is the best constant guess
    assert len(ds.tasks) > 200  # many templates x synonyms


def test_bad_task_config():
    with pytest.raises(ValueError):
        ToyReachEnv(ToyTaskConfig(num_blocks=9))
