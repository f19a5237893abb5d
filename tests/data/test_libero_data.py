"""`tinyvla data libero`: expert demos from fixed initial states -> a LeRobot v3.0 dataset with LeRobot's
LIBERO feature names, read back by our reader. Needs LIBERO's venv (`make setup-libero`); skips without it."""

import json

import numpy as np
import pytest

from tinyvla.cli import main
from tinyvla.data.lerobot import load_lerobot
from tinyvla.envs.libero import libero_missing

MISSING = libero_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"LIBERO is not installed ({MISSING})")


def test_generated_dataset_round_trips_through_our_reader(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYVLA_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "libero"
    assert main(["data", "libero", "--suite", "object", "--task-ids", "0", "--episodes-per-task", "2",
                 "--image-size", "32", "--workers", "1", "--out", str(out)]) == 0
    assert "expert success 2/2" in capsys.readouterr().out
    assert not list(tmp_path.glob(".libero.partial-*"))  # written atomically: the temporary copy was renamed
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["robot_type"] == "panda"
    assert info["total_episodes"] == 2
    features = info["features"]
    for key in ("observation.images.image", "observation.images.wrist_image"):
        assert features[key]["dtype"] == "image" and features[key]["shape"] == [32, 32, 3]
    assert features["observation.state"]["shape"] == [8] and features["action"]["shape"] == [7]
    meta = json.loads((out / "meta" / "tinyvla.json").read_text())
    assert meta["suite"] == "libero_object" and meta["report"]["episodes"] == 2
    assert meta["report"]["tasks"]["0"]["attempts"] == 2

    agent = load_lerobot(out, image_key="observation.images.image")
    wrist = load_lerobot(out, image_key="observation.images.wrist_image")
    n = info["total_frames"]
    assert agent.images.shape == wrist.images.shape == (n, 3, 32, 32)
    assert not np.array_equal(agent.images.numpy(), wrist.images.numpy())
    assert agent.states.shape == (n, 8) and agent.actions.shape == (n, 7)
    assert agent.tasks == ["pick up the alphabet soup and place it in the basket"]
    assert sorted(set(agent.episode_index.tolist())) == [0, 1]
    assert float(agent.actions.abs().max()) <= 1.0

    # Interrupted or repeated: every rolled-out episode is cached, so a second run reads them back
    # instead of simulating, and writes the same data.
    assert len(list((tmp_path / "cache" / "libero").glob("*/task0_init*.npz"))) == 2
    again = tmp_path / "again"
    assert main(["data", "libero", "--suite", "object", "--task-ids", "0", "--episodes-per-task", "2",
                 "--image-size", "32", "--workers", "1", "--out", str(again)]) == 0
    second = load_lerobot(again, image_key="observation.images.image")
    assert np.array_equal(second.images.numpy(), agent.images.numpy())
    assert np.array_equal(second.actions.numpy(), agent.actions.numpy())
