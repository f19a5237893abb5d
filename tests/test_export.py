"""The fast inference path (ONNX Runtime) against eager PyTorch, and `bench infer`'s report."""

import pytest
import torch

pytest.importorskip("onnxruntime")

from tinyvla.bench import bench_infer  # noqa: E402
from tinyvla.export import OnnxPolicy  # noqa: E402
from tinyvla.pipeline import new_policy  # noqa: E402


@pytest.fixture(scope="module")
def policy(toy_splits):
    from tinyvla.pipeline import build_run_config

    from conftest import TINY_OVERRIDES

    torch.manual_seed(0)
    return new_policy(build_run_config("tinyvla", "tiny", TINY_OVERRIDES).policy, toy_splits[0]).eval()


def test_onnx_matches_eager_for_any_batch_and_instruction_length(policy, toy_splits):
    fast = OnnxPolicy(policy)
    for n in (1, 5):
        batch = toy_splits[1].batch(torch.arange(n))
        batch["task"] = ["go to the red block", "please move the arm to the crimson cube", "touch it", "a", "b"][:n]
        assert torch.allclose(fast.predict_action_chunk(batch), policy.predict_action_chunk(batch), atol=1e-4)


def test_int8_stays_close_and_select_action_works(policy, toy_splits):
    fast = OnnxPolicy(policy, quantize=True)
    batch = toy_splits[1].batch(torch.arange(8))
    err = (fast.predict_action_chunk(batch) - policy.predict_action_chunk(batch)).abs().max().item()
    assert err < 0.05
    fast.reset()
    assert fast.select_action(batch).shape == (8, policy.config.action_dim)


def test_bench_infer_reports_the_fastest_mode_within_tolerance(policy, toy_splits):
    r = bench_infer(policy, lambda n: toy_splits[1].batch(torch.arange(n) % 64), modes=["eager", "onnx"],
                    calls=20, throughput_batch=8, tolerance=1e-3)
    for key in ("latency_ms_p50", "latency_ms_p99", "chunks_per_s", "actions_per_s", "device", "mode", "chunk",
                "params_policy", "params_backbone"):
        assert key in r
    assert r["mode"] in ("eager", "onnx") and r["modes"]["onnx"]["max_abs_err_vs_eager"] < 1e-3
    assert r["params_policy"] + r["params_backbone"] == policy.num_parameters()
    assert r["latency_ms_p99"] >= r["latency_ms_p50"] > 0
