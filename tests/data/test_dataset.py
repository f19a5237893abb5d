import pytest
import torch

from tinyvla.data.dataset import FrameDataset
from tinyvla.errors import DataError


def test_save_load_round_trip(toy_splits, tmp_path):
    train, _ = toy_splits
    train.save(tmp_path / "ds")
    again = FrameDataset.load(tmp_path / "ds")
    assert torch.equal(again.images, train.images) and torch.equal(again.actions, train.actions)
    assert again.tasks == train.tasks and again.info == train.info


def test_nan_actions_are_rejected(toy_splits):
    train, _ = toy_splits
    actions = train.actions.clone()
    actions[3, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        FrameDataset(train.images, actions, train.states, train.task_index, train.tasks)


def test_missing_or_corrupt_dataset(tmp_path):
    with pytest.raises(DataError, match="not a tinyvla dataset"):
        FrameDataset.load(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    (tmp_path / "frames.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt"):
        FrameDataset.load(tmp_path)


def test_action_stats(toy_splits):
    stats = toy_splits[0].action_stats()["action"]
    assert len(stats["mean"]) == 2 and all(s > 0.3 for s in stats["std"])
