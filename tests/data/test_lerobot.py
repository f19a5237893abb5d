"""LeRobot v3.0 format: writer -> reader round trip, metadata LeRobot reads, crash safety, bad input."""

import json

import numpy as np
import pytest
import torch

from tinyvla.data.lerobot import LeRobotWriter, action_chunks, load_lerobot
from tinyvla.errors import DataError


def _episodes(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n):
        t = 5 + e
        out.append((rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8),
                    rng.normal(size=(t, 4)).astype(np.float32), rng.uniform(-1, 1, (t, 4)).astype(np.float32),
                    ["open the drawer", "close the drawer"][e % 2]))
    return out


def _write(root, episodes, **kw):
    with LeRobotWriter(root, fps=80, image_shape=(16, 16, 3), state_names=list("abcd"),
                       action_names=list("wxyz"), **kw) as w:
        for images, states, actions, task in episodes:
            w.add_episode(images, states, actions, task, seed=1)
        return w.close()


def test_round_trip_is_exact_and_metadata_follows_v3(tmp_path):
    import pandas as pd

    eps = _episodes()
    root = _write(tmp_path / "ds", eps)
    frames = load_lerobot(root)
    assert frames.images.shape == (5 + 6 + 7, 3, 16, 16)
    assert torch.equal(frames.images[:5], torch.from_numpy(eps[0][0]).permute(0, 3, 1, 2))
    assert torch.allclose(frames.actions[5:11], torch.from_numpy(eps[1][2]))
    assert torch.allclose(frames.states[11:], torch.from_numpy(eps[2][1]))
    assert frames.episode_index.tolist() == [0] * 5 + [1] * 6 + [2] * 7
    assert [frames.tasks[i] for i in frames.task_index[[0, 5, 11]].tolist()] == \
        ["open the drawer", "close the drawer", "open the drawer"]

    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_frames"] == 18 and info["total_episodes"] == 3
    assert info["features"]["observation.image"]["dtype"] == "image"
    assert info["features"]["action"]["shape"] == [4]
    tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    assert tasks.index.name == "task" and tasks.loc["close the drawer", "task_index"] == 1
    episodes = pd.read_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert episodes["length"].tolist() == [5, 6, 7]
    assert episodes["dataset_to_index"].tolist() == [5, 11, 18]
    stats = json.loads((root / "meta" / "stats.json").read_text())
    all_actions = np.concatenate([e[2] for e in eps])
    assert np.allclose(stats["action"]["mean"], all_actions.mean(0), atol=1e-6)
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.image"]["count"] == [18]


QUANTILE_KEYS = ("q01", "q10", "q50", "q90", "q99")


def test_metadata_matches_what_current_lerobot_writes(tmp_path):
    """lerobot 0.4.4 names image axes "channels", keeps q01..q99 for every feature (its QUANTILE10
    normalisation needs q10/q90) and stats for the index columns, and its parquet files declare `List`."""
    import pandas as pd
    import pyarrow.parquet as pq

    eps = _episodes()
    root = _write(tmp_path / "ds", eps)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"]["observation.image"]["names"] == ["height", "width", "channels"]
    hf = json.loads(pq.read_schema(next((root / "data").glob("**/*.parquet"))).metadata[b"huggingface"])
    features = hf["info"]["features"]
    assert features["action"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4, "_type": "List"}
    assert features["observation.state"]["_type"] == "List" and features["observation.image"] == {"_type": "Image"}

    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert set(stats) == {"observation.image", "observation.state", "action", "timestamp", "frame_index",
                          "episode_index", "index", "task_index"}
    for key, s in stats.items():
        assert set(s) == {"min", "max", "mean", "std", "count", *QUANTILE_KEYS}, key
    pixels = np.concatenate([e[0] for e in eps]).reshape(-1, 3).astype(np.float64)
    for k, q in zip(QUANTILE_KEYS, (0.01, 0.1, 0.5, 0.9, 0.99)):  # exact, from per-channel histograms
        assert np.allclose(np.array(stats["observation.image"][k])[:, 0, 0], np.quantile(pixels, q, axis=0) / 255)
        assert np.allclose(stats["action"][k], np.quantile(np.concatenate([e[2] for e in eps]), q, axis=0))
    image = stats["observation.image"]
    assert np.allclose(np.array(image["mean"])[:, 0, 0], pixels.mean(0) / 255)
    assert np.allclose(np.array(image["std"])[:, 0, 0], pixels.std(0) / 255)
    assert np.allclose(np.array(image["min"])[:, 0, 0], pixels.min(0) / 255)
    assert np.allclose(np.array(image["max"])[:, 0, 0], pixels.max(0) / 255)
    assert stats["frame_index"]["max"] == [6] and stats["index"]["max"] == [17] and stats["episode_index"]["q50"] == [1]
    assert stats["timestamp"]["max"] == pytest.approx([6 / 80])

    episodes = pd.read_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert {f"stats/{k}/{q}" for k in stats for q in QUANTILE_KEYS} <= set(episodes.columns)
    assert list(episodes["stats/frame_index/max"][2]) == [6]
    first = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()[0]
    assert np.array(first["stats/observation.image/q50"]).shape == (3, 1, 1)


def test_datasets_written_before_the_metadata_update_still_read(tmp_path):
    """Older tinyvla datasets: image axes named "channel", stats without q10/q50/q90 or index columns,
    parquet metadata declaring `Sequence`."""
    import pyarrow.parquet as pq

    eps = _episodes()
    root = _write(tmp_path / "ds", eps)
    expected = load_lerobot(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    info["features"]["observation.image"]["names"] = ["height", "width", "channel"]
    (root / "meta" / "info.json").write_text(json.dumps(info))
    stats = json.loads((root / "meta" / "stats.json").read_text())
    old = {k: {s: v for s, v in stats[k].items() if s not in ("q10", "q50", "q90")}
           for k in ("observation.image", "observation.state", "action")}
    (root / "meta" / "stats.json").write_text(json.dumps(old))
    for f in (root / "data").glob("**/*.parquet"):
        table = pq.read_table(f)
        hf = table.schema.metadata[b"huggingface"].replace(b'"List"', b'"Sequence"')
        pq.write_table(table.replace_schema_metadata({b"huggingface": hf}), f)
    frames = load_lerobot(root)
    for name in ("images", "states", "actions", "episode_index", "task_index"):
        assert torch.equal(getattr(frames, name), getattr(expected, name)), name


def test_video_storage_round_trip_and_resize(tmp_path):
    rng = np.random.default_rng(0)
    eps = []
    for e in range(3):  # smooth images: video compression keeps them close
        t = 4 + e
        yy, xx = np.mgrid[0:64, 0:64]
        base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).clip(0, 255)
        images = np.stack([np.roll(base, 3 * i + 7 * e, axis=1) for i in range(t)]).astype(np.uint8)
        eps.append((images, rng.normal(size=(t, 4)).astype(np.float32), rng.uniform(-1, 1, (t, 4)).astype(np.float32),
                    "open the drawer"))
    with LeRobotWriter(tmp_path / "ds", fps=80, image_shape=(64, 64, 3), state_names=list("abcd"),
                       action_names=list("wxyz"), video=True) as w:
        for images, states, actions, task in eps:
            w.add_episode(images, states, actions, task)
        root = w.close()
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"]["observation.image"]["dtype"] == "video"
    assert (root / "videos" / "observation.image" / "chunk-000" / "file-000.mp4").is_file()
    frames = load_lerobot(root)
    expected = torch.from_numpy(np.concatenate([e[0] for e in eps])).permute(0, 3, 1, 2).float()
    assert frames.images.shape == (15, 3, 64, 64)
    assert (frames.images.float() - expected).abs().mean() < 8  # lossy AV1, same frames in the same order
    assert torch.allclose(frames.actions, torch.from_numpy(np.concatenate([e[2] for e in eps])))
    assert load_lerobot(root, image_size=32).images.shape == (15, 3, 32, 32)


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path):
    eps = _episodes()
    with pytest.raises(RuntimeError):
        with LeRobotWriter(tmp_path / "ds", fps=80, image_shape=(16, 16, 3), state_names=list("abcd"),
                           action_names=list("wxyz")) as w:
            w.add_episode(*eps[0][:3], eps[0][3])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="does not exist"):
        load_lerobot(tmp_path / "ds")


def test_bad_datasets_are_clear_errors(tmp_path):
    root = _write(tmp_path / "ds", _episodes())
    with pytest.raises(DataError, match="already exists"):
        _write(root, _episodes())
    (root / "meta" / "info.json").unlink()
    with pytest.raises(DataError, match="not a LeRobot dataset"):
        load_lerobot(root)
    root2 = _write(tmp_path / "ds2", _episodes())
    for f in (root2 / "data").glob("**/*.parquet"):
        f.unlink()
    with pytest.raises(DataError, match="no data"):
        load_lerobot(root2)
    root3 = _write(tmp_path / "ds3", _episodes())
    info = json.loads((root3 / "meta" / "info.json").read_text())
    info["total_frames"] = 99
    (root3 / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="incomplete"):
        load_lerobot(root3)
    with pytest.raises(DataError, match="uint8"):
        _write(tmp_path / "ds4", [(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 4), np.float32),
                                   np.zeros((3, 4), np.float32), "x")])


def test_action_chunks_stop_at_episode_ends():
    actions = torch.arange(7, dtype=torch.float32)[:, None]  # episodes [0, 1, 2] and [3, 4, 5, 6]
    episode = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    chunks = action_chunks(actions, episode, 3)[..., 0]
    assert chunks.tolist() == [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 5], [4, 5, 6], [5, 6, 6], [6, 6, 6]]


def test_training_on_a_lerobot_dataset_adopts_its_shapes_and_learns(tmp_path, tiny_run_config):
    from tinyvla.pipeline import run_training

    # Actions that depend on the image: which quadrant holds the bright square (one per episode).
    eps = []
    for e in range(12):
        quadrant = np.full(8, e % 4)  # fixed per episode, like a goal position
        qx, qy = quadrant % 2, quadrant // 2
        images = np.zeros((8, 16, 16, 3), np.uint8)
        for i in range(8):
            images[i, qy[i] * 8 + 2: qy[i] * 8 + 6, qx[i] * 8 + 2: qx[i] * 8 + 6] = 255
        actions = np.stack([qx * 2 - 1, qy * 2 - 1, qx, -qy], 1).astype(np.float32)
        eps.append((images, np.zeros((8, 4), np.float32), actions, "push the puck"))
    root = _write(tmp_path / "ds", eps)
    run = tiny_run_config(**{"data.path": str(root), "policy.patch_size": 8, "policy.chunk_size": 2,
                             "train.steps": 400, "train.eval_every": 100, "train.lr": 1e-3, "train.warmup_steps": 10,
                             "train.augment_shift": 1})
    policy, result = run_training(run, tmp_path / "run")
    assert (policy.config.action_dim, policy.config.image_size, policy.state_dim) == (4, 16, 4)
    # Learned: well below the error of always predicting the mean action (which ignores the image).
    from tinyvla.pipeline import load_splits

    train, val = load_splits(run.data, 2)
    first = val.actions[:, 0]
    baseline = torch.linalg.vector_norm(first - train.actions[:, 0].mean(0), dim=-1).mean().item()
    assert result.best_val_l2 < 0.5 * baseline, (result.best_val_l2, baseline)
    assert (tmp_path / "run" / "best" / "config.json").is_file()
