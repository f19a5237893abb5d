"""The FiLM ConvNet encoder, state dropout, colour jitter, and a task that only the image can solve."""

import pytest
import torch

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.data.dataset import FrameDataset
from tinyvla.errors import ConfigError
from tinyvla.modules.conv import ConvEncoder, SpatialSoftmax, conv_grid
from tinyvla.pipeline import build_run_config, run_training
from tinyvla.train import color_jitter
from tinyvla.utils import set_seed


def test_conv_encoder_tokens_and_film_starts_as_identity():
    enc = ConvEncoder(image_size=32, dim=16, channels=(8, 8, 16, 16), cond_dim=4)
    assert enc.grid == conv_grid(32) == 4
    x = torch.rand(2, 3, 32, 32)
    out = enc(x, torch.randn(2, 4))
    assert out.shape == (2, 1 + 16, 16) and torch.isfinite(out).all()
    # zero-initialised FiLM: the condition changes nothing until it is trained
    assert torch.allclose(out, enc(x, torch.randn(2, 4)))
    with pytest.raises(ValueError, match="FiLM"):
        enc(x)
    pooled = ConvEncoder(image_size=64, dim=16, channels=(8, 8, 16, 16), token_grid=3)
    assert pooled.map_grid == 8 and pooled(torch.rand(2, 3, 64, 64)).shape == (2, 1 + 9, 16)


def test_spatial_softmax_finds_the_peak():
    feat = torch.full((1, 1, 5, 5), -50.0)
    feat[0, 0, 4, 0] = 50.0  # bottom-left cell
    xy = SpatialSoftmax(5, 5)(feat)
    assert torch.allclose(xy, torch.tensor([[-1.0, 1.0]]), atol=1e-3)


def test_too_small_an_image_for_the_conv_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="too small"):
        build_run_config("tinyvla", "metaworld", {"policy.image_size": 8})


def test_color_jitter_keeps_shape_and_changes_pixels():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    out = color_jitter(images, 0.3, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape and not torch.equal(out, images)
    assert torch.equal(color_jitter(images, 0.0, torch.Generator().manual_seed(0)), images)


def two_dot_dataset(n: int, seed: int) -> FrameDataset:
    """Two tasks, "touch the red dot" / "touch the blue dot": the action is the named dot's (x, y) in
    [-1, 1]. The dots move every frame and the state is noise, so only the image holds the answer."""
    gen = torch.Generator().manual_seed(seed)
    size = 32
    images = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    pos = torch.randint(2, size - 2, (n, 2, 2), generator=gen)  # (frame, dot, (x, y))
    for i in range(n):
        for dot, channel in ((0, 0), (1, 2)):
            x, y = pos[i, dot].tolist()
            images[i, channel, y - 2 : y + 2, x - 2 : x + 2] = 255
    task = torch.randint(0, 2, (n,), generator=gen)
    actions = pos[torch.arange(n), task].float() / (size - 1) * 2 - 1  # (n, 2)
    return FrameDataset(images, actions[:, None], torch.randn(n, 2, generator=gen), task,
                        ["touch the red dot", "touch the blue dot"], name="dots", info={"task": "dots"})


def scene_swapped_l2(policy, ds: FrameDataset) -> tuple[float, float]:
    """Action error with each frame's own image, and with another frame's image of the same task
    (the wrong-scene control of `tinyvla eval --env metaworld`, offline)."""
    batch = ds.batch(torch.arange(len(ds)))
    target = ds.actions[:, 0]
    own = (policy.predict_action_chunk(batch)[:, 0] - target).norm(dim=-1).mean().item()
    swapped = {**batch, OBS_IMAGE: batch[OBS_IMAGE].roll(1, 0)}
    same_task = ds.task_index == ds.task_index.roll(1, 0)
    err = (policy.predict_action_chunk(swapped)[:, 0] - target).norm(dim=-1)
    return own, err[same_task].mean().item()


@pytest.mark.parametrize("policy_type", ["tinyvla", "vla_adapter"])
def test_a_policy_that_must_look_learns_to_and_its_wrong_scene_control_fails(policy_type):
    from conftest import TINY_BY_POLICY

    train_ds, val_ds = two_dot_dataset(768, 0), two_dot_dataset(128, 1)
    overrides = {**TINY_BY_POLICY[policy_type], "policy.vision_encoder": "conv", "policy.film": True,
                 "policy.conv_channels": [16, 16, 32, 32], "policy.image_size": 32, "policy.action_dim": 2,
                 "policy.state_dim": 2, "policy.state_dropout": 0.5, "train.steps": 300, "train.lr": 2e-3,
                 "train.eval_every": 300, "train.warmup_steps": 20}
    if policy_type == "vla_adapter":
        overrides.update({"policy.gate": "none", "policy.loss": "mse"})
    set_seed(0)
    policy, _ = run_training(build_run_config(policy_type, "tiny", overrides), None, splits=(train_ds, val_ds))
    own, swapped = scene_swapped_l2(policy, val_ds)
    chance = (val_ds.actions[:, 0] - train_ds.actions[:, 0].mean(0)).norm(dim=-1).mean().item()  # the mean action
    assert own < 0.5 * chance, (own, chance)  # it learned from the image ...
    assert swapped > 2 * own, (own, swapped)  # ... and another scene's image misleads it


def test_state_dropout_only_in_training(tiny_run_config, toy_splits):
    from tinyvla.pipeline import new_policy

    cfg = tiny_run_config(**{"policy.state_dim": 2, "policy.state_dropout": 1.0}).policy
    policy = new_policy(cfg, toy_splits[0])
    batch = {OBS_IMAGE: toy_splits[0].images[:4], OBS_STATE: toy_splits[0].states[:4] + 5, TASK: ["x"] * 4}
    policy.train()
    assert torch.equal(policy.prepare(batch)[3], torch.zeros(4, 2))
    policy.eval()
    assert policy.prepare(batch)[3].abs().sum() > 0
