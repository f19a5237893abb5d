"""GPU inference modes (tinyvla.accel): the bucket logic, the compile path traced on the CPU, and the
one-line refusals where no GPU is present. The CUDA-graph capture itself runs in scripts/gpu_check.sh."""

import pytest
import torch

from tinyvla.accel import AcceleratedPolicy, bucket_for, pad_rows
from tinyvla.cli import main
from tinyvla.errors import ConfigError
from tinyvla.pipeline import new_policy


@pytest.fixture(scope="module", params=["tinyvla", "vla_adapter"])
def policy(request, toy_splits):
    from tinyvla.pipeline import build_run_config

    from conftest import TINY_BY_POLICY

    torch.manual_seed(0)
    cfg = build_run_config(request.param, "tiny", TINY_BY_POLICY[request.param]).policy
    return new_policy(cfg, toy_splits[0]).eval()


def test_buckets_pad_up_and_rows_repeat_the_last():
    assert [bucket_for(n) for n in (1, 2, 3, 5, 8, 9, 256, 300)] == [1, 2, 4, 8, 8, 16, 256, 300]
    assert bucket_for(3, (1, 6)) == 6
    x = torch.arange(6.0).reshape(3, 2)
    padded = pad_rows(x, 4)
    assert padded.shape == (4, 2) and torch.equal(padded[:3], x) and torch.equal(padded[3], x[2])
    assert pad_rows(None, 4) is None and pad_rows(x, 3) is x
    with pytest.raises(ValueError):
        bucket_for(0)


def test_compile_path_matches_eager_for_padded_batches(policy, toy_splits):
    """torch.compile (dynamo, eager backend on the CPU) over padded batches gives eager's actions;
    one compiled shape per (bucket, instruction length)."""
    fast = AcceleratedPolicy(policy, "compile", precision="fp32", _backend="eager")
    for n, task in ((3, "go to the red block"), (1, "go to the red block"), (3, "please move the arm over to the crimson cube")):
        batch = toy_splits[1].batch(torch.arange(n))
        batch["task"] = [task] * n
        out = fast.predict_action_chunk(batch)
        assert out.shape == policy.predict_action_chunk(batch).shape
        assert torch.allclose(out, policy.predict_action_chunk(batch), atol=1e-5)
    assert len(fast.setup_seconds) == 3  # 4 x len(a), 1 x len(a), 4 x len(b)
    assert fast.name == policy.name and fast.config is policy.config  # the policy's attributes show through
    fast.reset()
    batch = toy_splits[1].batch(torch.arange(2))
    assert fast.select_action(batch).shape == (2, policy.config.action_dim)


def test_gpu_modes_refuse_the_cpu_in_one_line(policy, tmp_path, capsys):
    for mode in ("compile", "cudagraph"):
        with pytest.raises(ConfigError, match="CUDA GPU"):
            AcceleratedPolicy(policy, mode)
    with pytest.raises(ConfigError, match="unknown"):
        AcceleratedPolicy(policy, "turbo")
    policy.save_pretrained(tmp_path / "ckpt")
    for argv in (["bench", "infer", "--mode", "cudagraph", "--device", "cpu"],
                 ["eval", "--checkpoint", str(tmp_path / "ckpt"), "--mode", "compile", "--device", "cpu"],
                 ["serve", str(tmp_path / "ckpt"), "--mode", "cudagraph", "--device", "cpu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "needs one" in err and len(err.splitlines()) == 1, err


def test_bench_infer_all_means_what_this_device_runs():
    from tinyvla.bench import CPU_MODES, parse_modes

    assert parse_modes("all", torch.device("cpu")) == list(CPU_MODES)
    assert parse_modes("onnx", torch.device("cpu")) == ["eager", "onnx"]
    with pytest.raises(ConfigError, match="unknown inference mode"):
        parse_modes("eager,turbo", torch.device("cpu"))
