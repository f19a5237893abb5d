"""The `smol` preset: pretrained vision + language towers from LOCAL directories, frozen, end to end.

Tiny random-weight models of the real architectures (SigLIP vision, Qwen2 decoder) are saved to a temp
dir and loaded through the same code path a downloaded checkpoint takes."""

import json
import shutil

import pytest
import torch

from conftest import TINY_OVERRIDES

from tinyvla.errors import ConfigError
from tinyvla.pipeline import build_run_config, new_policy
from tinyvla.policies.base import Policy

pytest.importorskip("transformers")


@pytest.fixture
def towers(tmp_path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=32, patch_size=8)).save_pretrained(tmp_path / "siglip")
    Qwen2ForCausalLM(Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(tmp_path / "qwen")
    # A tokenizer.json like a real LM's: its own vocabulary, no [PAD], an end-of-text token.
    words = ["<|endoftext|>", "[UNK]"] + "go to move reach the red green blue yellow block cube square".split()
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(tmp_path / "qwen" / "tokenizer.json"))
    return tmp_path / "siglip", tmp_path / "qwen"


def smol(toy_splits, vision, lang, **extra):
    run = build_run_config("tinyvla", "smol", {**TINY_OVERRIDES, "policy.lang_heads": 2,
                                                "policy.vision_path": str(vision), "policy.lang_path": str(lang), **extra})
    torch.manual_seed(0)
    return run, new_policy(run.policy, toy_splits[0])


def test_smol_trains_only_fusion_and_head_and_reloads_offline(toy_splits, towers, tmp_path):
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.train import TrainConfig, train

    vision, lang = towers
    _, policy = smol(toy_splits, vision, lang)
    assert type(policy.vision.model).__name__ == "SiglipVisionModel"
    assert type(policy.language.model).__name__ == "Qwen2Model"
    assert policy.tokenizer.pad_id == 0 and policy.tokenizer.vocab_size == 14  # the LM's own tokenizer
    assert policy.config.fusion == "cross_attention" and policy.config.lang_width == 32
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    ds = toy_splits[0]
    small = FrameDataset(ds.images[:64], ds.actions[:64], ds.states[:64], ds.task_index[:64], ds.tasks, info=ds.info)
    batch = ds.batch(torch.arange(64))
    with torch.no_grad():
        start = policy(batch)[0].item()
    train(policy, small, toy_splits[1], TrainConfig(steps=300, lr=2e-3, warmup_steps=10, eval_every=300,
                                                   progress=False, device="cpu", precision="fp32"))
    with torch.no_grad():
        end = policy.train()(batch)[0].item()
    assert end < 0.5 * start, (start, end)
    after = policy.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fusion", "head"}
    policy.save_pretrained(tmp_path / "ckpt")
    shutil.rmtree(vision)
    shutil.rmtree(lang)
    again = Policy.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(again.predict_action_chunk(batch), policy.predict_action_chunk(batch))


def test_smol_from_the_command_line(toy_splits, towers, tmp_path):
    from tests_helpers import TINY_FLAGS

    from tinyvla.cli import main

    vision, lang = towers
    rc = main(["train", "--preset", "smol", *TINY_FLAGS, "--policy.lang_heads", "2", "--policy.vision_path", str(vision),
               "--policy.lang_path", str(lang), "--data.num_train", "64", "--data.num_val", "16",
               "--train.steps", "2", "--out", str(tmp_path / "run")])
    assert rc == 0
    saved = json.loads((tmp_path / "run" / "best" / "config.json").read_text())["config"]
    assert saved["vision_config"]["model_type"] == "siglip_vision_model" and saved["lang_config"]["model_type"] == "qwen2"


def test_smol_preset_is_sized_like_smolvla_offline():
    from tinyvla.pipeline import placeholder_dataset

    run = build_run_config("tinyvla", "smol", {})
    policy = new_policy(run.policy, placeholder_dataset(run.policy, 8))
    assert 400e6 < policy.num_parameters() < 500e6  # SmolVLA: ~450M
    assert not any(p.requires_grad for p in policy.vision.parameters())


def test_bad_pretrained_paths_are_clear_errors(toy_splits, towers, tmp_path):
    vision, lang = towers
    with pytest.raises(ConfigError, match="does not exist"):
        smol(toy_splits, tmp_path / "nowhere", lang)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "not_a_model"}))
    with pytest.raises(ConfigError, match="unsupported model_type"):
        smol(toy_splits, tmp_path / "odd", lang)
    with pytest.raises(ConfigError, match="not a vision model"):
        smol(toy_splits, lang, lang)  # a language model where the vision tower should be
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        smol(toy_splits, vision, tmp_path / "empty")
