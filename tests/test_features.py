"""The frozen-tower feature cache: shards that survive a crash and are the cache, filled in place."""

import torch
from torch import nn

from tinyvla import features


class _Tower(nn.Module):
    """A frozen stand-in for a vision tower: (b, 3, H, W) -> (b, 2, 3), counting the frames it sees (in attributes
    the cache key ignores); `fail_after` frames in, it raises (a crash in the middle of a long computation)."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self._seen = 0
        self._fail_after = fail_after

    def forward(self, x):
        if self._fail_after is not None and self._seen >= self._fail_after:
            raise KeyboardInterrupt
        self._seen += len(x)
        return self.conv(x).mean(dim=(2, 3)).unsqueeze(1).expand(-1, 2, -1)


def test_a_cut_computation_resumes_from_its_shards_and_matches_an_uncut_one(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "SHARD_FRAMES", 4)
    monkeypatch.setenv("TINYVLA_CACHE_DIR", str(tmp_path))
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    torch.manual_seed(0)
    whole = features.compute_features(_Tower(), images, torch.device("cpu"), batch_size=3, progress=False)
    assert whole.shape == (10, 2, 3) and whole.dtype == torch.float16

    torch.manual_seed(0)
    crashing = _Tower(fail_after=4)  # finishes the first shard (frames 0-3), dies in the second
    try:
        features.cached_features(crashing, images, torch.device("cpu"), progress=False)
        raise AssertionError("the tower should have crashed")
    except KeyboardInterrupt:
        pass
    parts = list((tmp_path / "features").glob("*.parts/*.safetensors"))
    assert len(parts) == 1

    torch.manual_seed(0)
    tower = _Tower()
    resumed = features.cached_features(tower, images, torch.device("cpu"), progress=False)
    assert tower._seen == 6  # the finished shard was read back, not recomputed
    torch.testing.assert_close(resumed, whole)
    assert len(list((tmp_path / "features").glob("*.parts/*.safetensors"))) == 3  # the shards are the cache
    again = _Tower()
    again.load_state_dict(tower.state_dict())
    torch.testing.assert_close(features.cached_features(again, images, torch.device("cpu"), progress=False), whole)
    assert again._seen == 0  # read from the cache
