"""VLA-Adapter: shapes for every ablation switch, the gate, checkpoints, LoRA, HF backbones, bad input."""

import json
import shutil

import pytest
import torch

from conftest import VLA_TINY_OVERRIDES

from tinyvla.constants import ACTION, OBS_STATE
from tinyvla.errors import CheckpointError, ConfigError, DataError
from tinyvla.pipeline import build_run_config, new_policy
from tinyvla.policies.base import Policy

VLA_TINY = VLA_TINY_OVERRIDES


def make_policy(toy_splits, **overrides):
    run = build_run_config("vla_adapter", "tiny", {**VLA_TINY, "policy.gate": "raw", **overrides})  # the paper's gate
    torch.manual_seed(0)
    return new_policy(run.policy, toy_splits[0])


def save_tiny_qwen2(directory, hidden=32, layers=2):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=300, hidden_size=hidden, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("conditions", ["both", "raw", "aq"])
@pytest.mark.parametrize("gate", ["raw", "none", "aq", "both"])
def test_shapes_for_every_condition_and_gate(toy_splits, conditions, gate):
    policy = make_policy(toy_splits, **{"policy.conditions": conditions, "policy.gate": gate,
                                        "policy.chunk_size": 3})
    batch = toy_splits[0].batch(torch.arange(5))
    assert policy.predict_action_chunk(batch).shape == (5, 3, 2)
    loss, _ = policy(toy_splits[0].batch(torch.arange(5)) | {ACTION: torch.randn(5, 3, 2)})
    loss.backward()
    gates = policy.policy.gate_values()[0]
    present = {"both": {"raw", "aq"}, "raw": {"raw", "aq"}, "aq": {"aq"}}[conditions]  # proprio keeps "aq"
    expected = {"raw": {"raw"}, "aq": {"aq"}, "both": {"raw", "aq"}, "none": set()}[gate] & present
    assert set(gates) == expected


@pytest.mark.parametrize("softmax", ["separate", "joint"])
@pytest.mark.parametrize("layer", [-1, 0])
def test_layer_choice_and_softmax_modes(toy_splits, softmax, layer):
    policy = make_policy(toy_splits, **{"policy.bridge_softmax": softmax, "policy.condition_layer": layer})
    assert policy.predict_action_chunk(toy_splits[0].batch(torch.arange(3))).shape == (3, 1, 2)


def test_gate_starts_at_zero_and_gets_a_gradient(toy_splits):
    policy = make_policy(toy_splits)
    assert all(v == 0.0 for g in policy.policy.gate_values() for v in g.values())
    loss, _ = policy(toy_splits[0].batch(torch.arange(16)))
    loss.backward()
    grads = [blk.attn.gates["raw"].grad for blk in policy.policy.blocks]
    assert all(g is not None and g.abs().item() > 0 for g in grads)


def test_gate_at_zero_blocks_raw_features_and_joint_softmax_leaks(toy_splits):
    batch = toy_splits[0].batch(torch.arange(4))
    for softmax, should_change in (("separate", False), ("joint", True)):
        policy = make_policy(toy_splits, **{"policy.bridge_softmax": softmax}).eval()
        images, tokens, mask, state = policy.prepare(batch)
        with torch.no_grad():
            raw, aq = policy.conditions(images, tokens, mask)
            out = policy.policy(raw, aq, state)
            out_noise = policy.policy([torch.randn_like(r) * 5 for r in raw], aq, state)
        changed = not torch.allclose(out, out_noise, atol=1e-6)
        assert changed == should_change, softmax


def test_gate_on_aq_gates_the_proprio_token_unless_told_not_to(toy_splits):
    batch = toy_splits[0].batch(torch.arange(4))
    for gate_proprio in (True, False):
        policy = make_policy(toy_splits, **{"policy.gate": "aq", "policy.gate_proprio": gate_proprio}).eval()
        images, tokens, mask, state = policy.prepare(batch)
        with torch.no_grad():
            raw, aq = policy.conditions(images, tokens, mask)
            out = policy.policy(raw, aq, state)
            other_state = policy.policy(raw, aq, torch.randn_like(state) * 3)
            other_aq = policy.policy(raw, [torch.randn_like(a) * 5 for a in aq], state)
        assert torch.allclose(out, other_aq, atol=1e-6)  # the AQ features stay shut either way
        assert torch.allclose(out, other_state, atol=1e-6) == gate_proprio, gate_proprio


def test_diagnostics_report_gates_and_mass(toy_splits):
    policy = make_policy(toy_splits, **{"policy.bridge_softmax": "joint"})
    diag = policy.diagnostics(toy_splits[0].batch(torch.arange(8)))
    assert diag["block0/tanh_g_raw"] == 0.0
    masses = [diag[f"block1/mass_{s}"] for s in ("self", "aq", "raw")]
    assert abs(sum(masses) - 1) < 1e-4 and diag["block1/mass_raw"] > 0.5  # zero logits still take mass


def test_save_load_exact_and_chunk_mismatch(toy_splits, tmp_path):
    policy = make_policy(toy_splits, **{"policy.chunk_size": 2})
    with torch.no_grad():  # move the gates off zero so that every path matters
        for blk in policy.policy.blocks:
            blk.attn.gates["raw"].fill_(0.3)
    batch = toy_splits[0].batch(torch.arange(6))
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = Policy.from_pretrained(tmp_path / "ckpt")
    assert loaded.name == "vla_adapter" and loaded.config.state_dim == 2
    assert torch.equal(policy.predict_action_chunk(batch), loaded.predict_action_chunk(batch))
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    meta["config"]["chunk_size"] = 4
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match"):
        Policy.from_pretrained(tmp_path / "ckpt")


def test_state_of_the_wrong_size_is_a_clear_error(toy_splits):
    policy = make_policy(toy_splits)
    batch = toy_splits[0].batch(torch.arange(3))
    with pytest.raises(DataError, match="observation.state must have shape"):
        policy.predict_action_chunk({**batch, OBS_STATE: torch.zeros(3, 5)})
    with pytest.raises(DataError, match="lacks"):
        policy.predict_action_chunk({k: v for k, v in batch.items() if k != OBS_STATE})


def test_lora_trains_only_adapters_and_policy(toy_splits):
    from tinyvla.lora import LoRAConfig, apply_lora
    from tinyvla.train import TrainConfig, make_optimizer

    policy = make_policy(toy_splits)
    cfg = LoRAConfig(rank=4, targets=["qkv", "proj"], scope="backbone",
                     trainable=["projector", "action_queries", "policy", "bos"])
    apply_lora(policy, cfg)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    opt = make_optimizer(policy, TrainConfig(lr=1e-2))
    for i in range(3):
        opt.zero_grad()
        loss, _ = policy(toy_splits[0].batch(torch.arange(8 * i, 8 * i + 8)))
        loss.backward()
        opt.step()
    after = policy.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("lora_" in k for k in changed) and any(k.startswith("policy.") for k in changed)
    frozen = [k for k in changed if k.startswith(("backbone.", "vision.")) and "lora_" not in k]
    assert frozen == []
    # Only the backbone got adapters: the policy's own `proj` layers stay plain.
    assert not any("lora_" in k for k in after if k.startswith("policy."))


def test_freeze_backbone(toy_splits):
    policy = make_policy(toy_splits, **{"policy.freeze_backbone": True})
    assert not any(p.requires_grad for p in policy.backbone.parameters())
    assert all(p.requires_grad for p in policy.policy.parameters())


def test_tiny_qwen2_from_a_local_directory(toy_splits, tmp_path):
    qwen = save_tiny_qwen2(tmp_path / "qwen")
    policy = make_policy(toy_splits, **{"policy.backbone": "hf", "policy.backbone_path": str(qwen)})
    assert policy.backbone.num_layers == 2 and len(policy.policy.blocks) == 2
    assert type(policy.backbone.model).__name__ == "Qwen2Model"
    from transformers import Qwen2ForCausalLM

    ref = Qwen2ForCausalLM.from_pretrained(qwen).model
    assert torch.equal(policy.backbone.model.layers[0].mlp.up_proj.weight, ref.layers[0].mlp.up_proj.weight)
    batch = toy_splits[0].batch(torch.arange(4))
    loss, _ = policy(batch)
    loss.backward()
    assert policy.backbone.model.layers[0].self_attn.q_proj.weight.grad is not None
    # bidirectional (default) and causal attention give different features
    images, tokens, mask, _ = policy.prepare(batch)
    with torch.no_grad():
        bi = policy.conditions(images, tokens, mask)[0][0]
        policy.config.causal = True
        causal = policy.conditions(images, tokens, mask)[0][0]
        policy.config.causal = False
    assert not torch.allclose(bi, causal)
    # the checkpoint is self-contained: it loads after the backbone directory is gone
    policy.save_pretrained(tmp_path / "ckpt")
    shutil.rmtree(qwen)
    loaded = Policy.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(policy.predict_action_chunk(batch), loaded.predict_action_chunk(batch))


def test_hf_vision_tower_from_a_local_directory(toy_splits, tmp_path):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=32, patch_size=8)).save_pretrained(tmp_path / "siglip")
    policy = make_policy(toy_splits, **{"policy.vision_path": str(tmp_path / "siglip"), "policy.freeze_vision": True})
    batch = toy_splits[0].batch(torch.arange(2))
    out = policy.predict_action_chunk(batch)
    assert out.shape == (2, 1, 2)
    assert not any(p.requires_grad for p in policy.vision.parameters())
    policy.save_pretrained(tmp_path / "ckpt")
    shutil.rmtree(tmp_path / "siglip")  # the checkpoint holds the tower's config and weights
    assert torch.equal(Policy.from_pretrained(tmp_path / "ckpt").predict_action_chunk(batch), out)


def test_bad_backbones_are_clear_errors(toy_splits, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_policy(toy_splits, **{"policy.backbone": "hf", "policy.backbone_path": str(tmp_path / "nope")})
    from transformers import SiglipVisionConfig

    SiglipVisionConfig(hidden_size=32).save_pretrained(tmp_path / "vision")
    with pytest.raises(ConfigError, match="not a causal language model"):
        make_policy(toy_splits, **{"policy.backbone": "hf", "policy.backbone_path": str(tmp_path / "vision")})
    qwen = save_tiny_qwen2(tmp_path / "qwen")
    with pytest.raises(ConfigError, match="does not match the backbone's hidden size 32"):
        make_policy(toy_splits, **{"policy.backbone": "hf", "policy.backbone_path": str(qwen),
                                   "policy.policy_width": 64})
    with pytest.raises(ConfigError, match="out of range"):
        make_policy(toy_splits, **{"policy.condition_layer": 5})


def test_vla_adapter_learns(toy_splits):
    """Fit 64 frames: the L1 loss on them must fall far below its start (learning happened); the
    full toy-task figure is a CPU-minutes run reported in the README, too slow for a unit test."""
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.train import TrainConfig, train

    policy = make_policy(toy_splits, **{"policy.gate": "none"})
    batch = toy_splits[0].batch(torch.arange(64))
    with torch.no_grad():
        start = policy(batch)[0].item()
    small = FrameDataset(toy_splits[0].images[:64], toy_splits[0].actions[:64], toy_splits[0].states[:64],
                                toy_splits[0].task_index[:64], toy_splits[0].tasks, name="small",
                                info=toy_splits[0].info)
    result = train(policy, small, toy_splits[1], TrainConfig(steps=300, batch_size=32, lr=1e-3, warmup_steps=10,
                                                            eval_every=300, progress=False, device="cpu",
                                                            precision="fp32"))
    with torch.no_grad():
        end = policy.train()(batch)[0].item()
    assert end < 0.5 * start, (start, end)
    assert "block0/mass_raw" in result.history[-1]["diagnostics"]


VLA_FLAGS = [x for k, v in VLA_TINY.items() for x in (f"--{k}", str(v))]


def test_cli_bench_infer_writes_the_issue_keys(tmp_path, capsys):
    from tinyvla.cli import main

    out = tmp_path / "bench.json"
    rc = main(["bench", "infer", "--policy.type", "vla_adapter", "--preset", "tiny", *VLA_FLAGS[:-2],
               "--policy.chunk_size", "4", "--calls", "5", "--batch-size", "2", "--mode", "eager", "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    for key in ("latency_ms_p50", "latency_ms_p99", "chunks_per_s", "actions_per_s", "chunk", "params_policy",
                "params_backbone", "device"):
        assert key in result, key
    # both figures are rounded to 0.1 in the JSON, so compare within that rounding, not a relative 1e-3
    # (at a few chunks/s on a loaded machine the rounding alone is ~1e-2)
    assert result["chunk"] == 4
    assert result["actions_per_s"] == pytest.approx(4 * result["chunks_per_s"], abs=0.05 * 4 + 0.05)
    assert "paper: 97.3M" in capsys.readouterr().out


def test_cli_bad_backbone_is_a_one_line_error(tmp_path, capsys):
    from tinyvla.cli import main

    rc = main(["train", "--policy.type", "vla_adapter", "--backbone.path", str(tmp_path / "missing"),
               "--data.num_train", "64", "--data.num_val", "16", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "does not exist" in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_projector_keeps_image_differences_and_old_checkpoints_load(toy_splits, tmp_path):
    from tinyvla.policies.vla_adapter.modeling import Projector

    torch.manual_seed(0)
    x = torch.randn(8, 17, 32)

    def relative_spread(t):  # spread of the tokens around their common mean vector, relative to their size
        return ((t - t.mean(dim=(0, 1))).pow(2).mean().sqrt() / t.pow(2).mean().sqrt()).item()

    with torch.no_grad():
        new, old = Projector(32, 48, 1.0), Projector(32, 48, 1.0, norm=True)
        # Biases of the size a few dozen Adam steps give them: they swamp the small-init signal that the
        # LayerNorm then blows up, so every token becomes the same vector; He-init tokens keep their spread.
        new[-1].bias.normal_(0, 0.01)
        old[-2].bias.normal_(0, 0.01)
        assert relative_spread(new(x)) > 0.5
        assert relative_spread(old(x)) < 0.2
    # A checkpoint written before `policy.projector` existed has the LayerNorm projector: it still loads.
    policy = make_policy(toy_splits, **{"policy.projector": "mlp_ln"})
    policy.save_pretrained(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "config.json").read_text())
    del meta["config"]["projector"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(meta))
    loaded = Policy.from_pretrained(tmp_path / "old")
    batch = toy_splits[0].batch(torch.arange(4))
    assert loaded.config.projector == "mlp_ln"
    assert torch.equal(policy.predict_action_chunk(batch), loaded.predict_action_chunk(batch))
