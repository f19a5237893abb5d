"""Every registered policy (and every fusion variant) checked for shapes, gradients, save/load and bad input."""

import json

import pytest
import torch

from tinyvla.constants import ACTION, OBS_IMAGE, OBS_STATE, TASK, WEIGHTS_NAME
from tinyvla.errors import CheckpointError, DataError
from tinyvla.pipeline import new_policy
from tinyvla.policies.base import Policy
from tinyvla.policies.registry import available_policies

VARIANTS = [(name, {}) for name in available_policies()] + [
    ("tinyvla", {"policy.fusion": "pool_add", "policy.vision_pool": "cls"}),
    ("tinyvla", {"policy.fusion": "pool_add", "policy.vision_pool": "mean"}),
    ("tinyvla", {"policy.chunk_size": 3, "policy.n_action_steps": 2, "policy.head_layers": 3}),
    ("tinyvla", {"policy.fusion": "cross_attention", "policy.cross_attention_layers": 2}),
    ("tinyvla", {"policy.head": "discrete", "policy.action_bins": 16}),
    ("tinyvla", {"policy.vision_encoder": "conv", "policy.conv_channels": [8, 8, 16, 16]}),
    ("tinyvla", {"policy.vision_encoder": "conv", "policy.film": False, "policy.fusion": "cross_attention"}),
    ("vla_adapter", {"policy.vision_encoder": "conv", "policy.film": True, "policy.conv_channels": [8, 8, 16, 16],
                     "policy.conv_token_grid": 2}),
    ("vla_adapter", {"policy.chunk_size": 3, "policy.n_action_steps": 2, "policy.separate_kv": True,
                     "policy.ffn": "mlp", "policy.gate": "aq"}),
    ("vla_adapter", {"policy.gate": "both", "policy.bridge_softmax": "joint", "policy.condition_layer": 0}),
    ("vla_adapter", {"policy.gate": "both", "policy.gate_proprio": False, "policy.chunk_size": 3}),
    ("vla_adapter", {"policy.gate": "aq", "policy.gate_proprio": False, "policy.bridge_softmax": "joint"}),
]


@pytest.fixture(params=VARIANTS, ids=lambda v: f"{v[0]}-{'-'.join(f'{k}={x}' for k, x in v[1].items()) or 'default'}")
def policy(request, tiny_run_config, toy_splits):
    name, overrides = request.param
    torch.manual_seed(0)
    return new_policy(tiny_run_config(name, **overrides).policy, toy_splits[0])


def make_batch(ds, n=4):
    b = ds.batch(torch.arange(n))
    t = b[ACTION][:, None].expand(-1, 3, -1)  # enough chunk steps for every variant
    return {**b, ACTION: t}


def test_shapes_and_finite(policy, toy_splits):
    batch = make_batch(toy_splits[0])
    chunk = policy.predict_action_chunk(batch)
    assert chunk.shape == (4, policy.config.chunk_size, policy.config.action_dim)
    assert torch.isfinite(chunk).all()
    loss, info = policy(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and "loss" in info


def test_every_trainable_parameter_gets_a_gradient(policy, toy_splits):
    loss, _ = policy(make_batch(toy_splits[0]))
    loss.backward()
    closed = policy.parameters_without_gradient() if hasattr(policy, "parameters_without_gradient") else set()
    missing = [n for n, p in policy.named_parameters()
               if p.requires_grad and n not in closed and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, missing


def test_save_load_round_trip_is_exact(policy, toy_splits, tmp_path):
    policy.save_pretrained(tmp_path / "ckpt")
    again = Policy.from_pretrained(tmp_path / "ckpt")
    assert type(again) is type(policy) and again.config == policy.config
    batch = make_batch(toy_splits[1])
    assert torch.equal(policy.predict_action_chunk(batch), again.predict_action_chunk(batch))
    for (k, v), (k2, v2) in zip(policy.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_select_action_uses_the_chunk_queue(policy, toy_splits):
    batch = make_batch(toy_splits[0], n=2)
    chunk = policy.predict_action_chunk(batch)
    policy.reset()
    for step in range(policy.config.n_action_steps):
        assert torch.allclose(policy.select_action(batch), chunk[:, step])
    assert not policy._queue  # the next call re-plans
    policy.reset()


def test_strings_and_uint8_images_are_accepted(policy, toy_splits):
    b = toy_splits[0].batch(torch.arange(2))
    a = policy.predict_action_chunk({OBS_IMAGE: b[OBS_IMAGE], TASK: b[TASK], OBS_STATE: b[OBS_STATE]})
    f = policy.predict_action_chunk({OBS_IMAGE: b[OBS_IMAGE].float() / 255, TASK: b[TASK], OBS_STATE: b[OBS_STATE]})
    assert torch.allclose(a, f)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: {**b, OBS_IMAGE: b[OBS_IMAGE][:, :, :32]}, "must have shape"),
        (lambda b: {**b, OBS_IMAGE: b[OBS_IMAGE].to(torch.int32)}, "must be uint8 or float"),
        (lambda b: {**b, OBS_IMAGE: b[OBS_IMAGE].numpy()}, "must be a torch tensor"),
        (lambda b: {**b, OBS_IMAGE: torch.full(b[OBS_IMAGE].shape, float("nan"))}, "NaN"),
        (lambda b: {**b, TASK: ["", "go to the red block"]}, "empty"),
        (lambda b: {OBS_IMAGE: b[OBS_IMAGE]}, "lacks an instruction"),
        (lambda b: {**b, TASK: ["go to the red block"]}, "1 instructions for 2 images"),
    ],
)
def test_bad_inputs_are_clear_errors(policy, toy_splits, mutate, message):
    b = toy_splits[0].batch(torch.arange(2))
    with pytest.raises(DataError, match=message):
        policy.predict_action_chunk(mutate({OBS_IMAGE: b[OBS_IMAGE], TASK: b[TASK], OBS_STATE: b[OBS_STATE]}))


def test_input_ablations_remove_one_modality(tiny_run_config, toy_splits):
    train = toy_splits[0]
    b = train.batch(torch.arange(2))
    swapped = {OBS_IMAGE: b[OBS_IMAGE], TASK: list(reversed(b[TASK]))}
    vision_only = new_policy(tiny_run_config(**{"policy.input_ablation": "constant_instruction"}).policy, train)
    out = vision_only.predict_action_chunk(b)
    assert torch.equal(out, vision_only.predict_action_chunk(swapped))
    language_only = new_policy(tiny_run_config(**{"policy.input_ablation": "blank_image"}).policy, train)
    noise = {OBS_IMAGE: torch.rand_like(b[OBS_IMAGE].float()), TASK: b[TASK]}
    assert torch.equal(language_only.predict_action_chunk(b), language_only.predict_action_chunk(noise))


def test_missing_and_corrupt_checkpoints(policy, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Policy.from_pretrained(tmp_path / "nothing")
    policy.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / WEIGHTS_NAME).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="corrupt weights"):
        Policy.from_pretrained(tmp_path / "ckpt")
    policy.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="corrupt config"):
        Policy.from_pretrained(tmp_path / "ckpt")
    policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    width_key = "lang_width" if "lang_width" in meta["config"] else "width"
    meta["config"][width_key] *= 2
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        Policy.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "stats.json").unlink()
    with pytest.raises(CheckpointError, match="missing stats.json"):
        Policy.from_pretrained(tmp_path / "ckpt")


def test_missing_normalisation_stats_are_an_error(tiny_run_config, toy_splits):
    from tinyvla.policies.registry import make_policy
    from tinyvla.pipeline import new_tokenizer

    cfg = tiny_run_config().policy
    with pytest.raises(CheckpointError, match="stats"):
        make_policy(cfg, tokenizer=new_tokenizer(toy_splits[0], 32), stats={})


def test_discrete_head_round_trips_actions_through_bins(tiny_run_config, toy_splits):
    policy = new_policy(tiny_run_config(**{"policy.head": "discrete"}).policy, toy_splits[0])
    actions = toy_splits[0].actions[:50]
    bins = policy.config.action_bins
    labels = ((policy.normalize_action(actions) + 1) / 2 * (bins - 1)).round()
    recovered = policy.unnormalize_action(policy.bin_centres[labels.long()])
    step = (policy.action_range / (bins - 1)).max()
    assert (recovered - actions).abs().max() <= step / 2 + 1e-5  # quantisation error: half a bin


def test_chunk_longer_than_the_data_is_an_error(tiny_run_config, toy_splits):
    policy = new_policy(tiny_run_config(**{"policy.chunk_size": 4}).policy, toy_splits[0])
    with pytest.raises(DataError, match="chunk_size 4"):
        policy(toy_splits[0].batch(torch.arange(4)))
