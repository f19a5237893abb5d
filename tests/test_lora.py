"""LoRA via peft: only adapters (+ fusion and head) train, merging preserves outputs, bad targets are errors."""

import pytest
import torch

pytest.importorskip("peft")

from tests_helpers import TINY_FLAGS  # noqa: E402
from tinyvla.cli import main  # noqa: E402
from tinyvla.errors import ConfigError  # noqa: E402
from tinyvla.lora import LoRAConfig, apply_lora, merged_copy  # noqa: E402
from tinyvla.pipeline import new_policy  # noqa: E402
from tinyvla.policies.base import Policy  # noqa: E402
from tinyvla.train import TrainConfig, train  # noqa: E402


def test_only_adapters_and_head_change_and_merge_is_exact(tiny_run_config, toy_splits):
    train_ds, val_ds = toy_splits
    torch.manual_seed(0)
    policy = new_policy(tiny_run_config().policy, train_ds)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    trainable = apply_lora(policy, LoRAConfig(rank=4, alpha=8, targets=["qkv", "proj"]))
    assert 0 < trainable < policy.num_parameters()
    # lora_B starts at zero, so the adapted model starts identical; give the adapters something to learn
    train(policy, train_ds, val_ds, TrainConfig(steps=6, batch_size=16, eval_every=100, lr=1e-2, warmup_steps=1,
                                                progress=False, precision="fp32"))
    after = policy.state_dict()
    for key, value in before.items():
        lora_key = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        now = after[key] if key in after else after[lora_key]
        top = key.split(".", 1)[0]
        if top in ("fusion", "head"):
            continue  # trained fully
        assert torch.equal(now, value), f"frozen weight {key} changed"
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in after.items() if "lora_B" in k)

    batch = val_ds.batch(torch.arange(8))
    merged = merged_copy(policy)
    assert not any("lora_" in k for k in merged.state_dict())
    assert torch.allclose(merged.predict_action_chunk(batch), policy.predict_action_chunk(batch), atol=1e-5)


def test_cli_lora_finetune_saves_a_plain_merged_checkpoint(tmp_path, capsys):
    data = ["--data.num_train", "64", "--data.num_val", "16"]
    assert main(["train", "--out", str(tmp_path / "base"), *TINY_FLAGS, *data, "--train.steps", "2",
                 "--train.eval_every", "2"]) == 0
    assert main(["train", "--out", str(tmp_path / "ft"), "--init-from", str(tmp_path / "base" / "best"), *data,
                 "--lora.rank", "4", "--lora.targets", "qkv", "--train.steps", "3", "--train.eval_every", "3",
                 "--train.progress", "false"]) == 0
    assert "trainable of" in capsys.readouterr().out
    Policy.from_pretrained(tmp_path / "ft" / "best")  # merged: loads as a plain policy


def test_lora_targets_that_match_nothing(tiny_run_config, toy_splits):
    policy = new_policy(tiny_run_config().policy, toy_splits[0])
    with pytest.raises(ConfigError, match="match no linear layer"):
        apply_lora(policy, LoRAConfig(rank=4, targets=["q_proj"]))
    with pytest.raises(ConfigError, match="unknown module"):
        apply_lora(policy, LoRAConfig(rank=4, trainable=["decoder"]))
