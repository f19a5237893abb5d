"""`tinyvla data metaworld` options: camera placement and crop (recorded and carried to the checkpoint),
noise injection with clean labels, bad input."""

import json

import numpy as np
import pytest

from tinyvla.cli import main
from tinyvla.data.metaworld import rollout_expert
from tinyvla.envs.metaworld import CAMERA_PLACEMENTS, MetaWorldEnv


def test_noisy_generation_executes_noise_but_records_the_clean_expert_action():
    env = MetaWorldEnv("reach-v3", image_size=16, max_steps=15)
    expert, executed = [], []
    clean_action, clean_step = env.expert_action, env.step

    def spy_expert():
        expert.append(clean_action())
        return expert[-1]

    def spy_step(action, render=True):
        executed.append(np.asarray(action, dtype=np.float32))
        return clean_step(action, render)

    env.expert_action, env.step = spy_expert, spy_step
    ep = rollout_expert(env, seed=3, action_noise=0.2)
    env.close()
    n = len(ep["actions"])
    np.testing.assert_array_equal(ep["actions"], np.stack(expert[:n]))  # labels: exactly the expert's
    noise = np.stack(executed[:n]) - ep["actions"]
    assert 0.1 < noise.std() < 0.3  # ... while the arm moved with N(0, 0.2^2) added


def test_crop_keeps_the_centre_of_a_larger_render():
    full = MetaWorldEnv("reach-v3", image_size=64)
    crop = MetaWorldEnv("reach-v3", image_size=32, crop=0.5)
    a = full.reset(seed=1)[0]["image"]
    b = crop.reset(seed=1)[0]["image"]
    full.close(), crop.close()
    assert crop.render_size == 64
    np.testing.assert_array_equal(a[:, 16:48, 16:48], b)


def test_camera_settings_go_from_data_to_checkpoint(tmp_path):
    from tinyvla.policies.base import Policy

    data = tmp_path / "d"
    assert main(["data", "metaworld", "--tasks", "reach", "--episodes-per-task", "2", "--image-size", "32",
                 "--camera-pos", "close", "--crop", "0.8", "--action-noise", "0.1", "--workers", "1",
                 "--max-steps", "60", "--out", str(data)]) == 0
    camera = json.loads((data / "meta" / "tinyvla.json").read_text())["camera"]
    assert camera == {"camera": "corner2", "camera_pos": list(CAMERA_PLACEMENTS["close"]), "crop": 0.8,
                      "image_size": 32}
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--out", str(run), "--train.steps", "2", "--train.eval_every", "2",
                 "--train.progress", "false", "--policy.vision_width", "32", "--policy.lang_width", "32",
                 "--policy.lang_layers", "1", "--policy.lang_heads", "2", "--policy.pool_heads", "2",
                 "--policy.head_hidden", "32", "--policy.vision_layers", "1", "--policy.vision_heads", "2"]) == 0
    assert Policy.from_pretrained(run / "best").config.camera == {
        "camera": "corner2", "camera_pos": list(CAMERA_PLACEMENTS["close"]), "crop": 0.8}
    # fine-tuning on data from another viewpoint is refused
    other = tmp_path / "other"
    assert main(["data", "metaworld", "--tasks", "reach", "--episodes-per-task", "2", "--image-size", "32",
                 "--workers", "1", "--max-steps", "60", "--out", str(other)]) == 0
    assert main(["train", "--dataset", str(other), "--init-from", str(run / "best"), "--out", str(tmp_path / "ft"),
                 "--train.steps", "1"]) == 2


@pytest.mark.parametrize("flags, message", [
    (["--camera", "nope"], "unknown camera"),
    (["--camera-pos", "1,2"], "not X,Y,Z"),
    (["--camera-pos", "far"], "not X,Y,Z"),
    (["--crop", "0"], "outside (0, 1]"),
    (["--crop", "1.5"], "outside (0, 1]"),
    (["--action-noise", "-0.1"], "--action-noise"),
    (["--image-size", "400", "--crop", "0.5"], "out of range"),
])
def test_bad_generation_options_are_one_line_errors(flags, message, tmp_path, capsys):
    assert main(["data", "metaworld", "--tasks", "reach", "--out", str(tmp_path / "x"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
