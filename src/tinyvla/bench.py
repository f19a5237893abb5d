"""Speed and memory benchmarks (`tinyvla bench ...`): numbers go to a JSON file, not to unit tests."""

from __future__ import annotations

import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from tinyvla.errors import ConfigError, TinyVLAError
from tinyvla.policies.base import Policy
from tinyvla.train import TokenTable, TrainConfig, make_optimizer, tensor_batch
from tinyvla.utils import autocast_context, resolve_device, resolve_precision


def matmul_peak_tflops(device: torch.device, precision: str, size: int = 2048, seconds: float = 3.0) -> float:
    """Best sustained dense matmul rate on this device, dtype and thread count (the MFU denominator)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(device)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - t0) / 1e12)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step_flops(policy: Policy, batch: dict, device: torch.device, precision: str) -> int:
    """FLOPs of one forward + backward on `batch`, counted by PyTorch's FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast_context(device, precision):
            loss, _ = policy(batch)
        loss.backward()
    policy.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_train(policy: Policy, dataset, *, batch_size: int, seconds: float, device_name: str = "auto",
                precision: str = "auto") -> dict:
    device = resolve_device(device_name)
    precision = resolve_precision(precision, device)
    policy.to(device).train()
    cfg = TrainConfig(batch_size=batch_size)
    opt = make_optimizer(policy, cfg)
    tokens = TokenTable(policy, dataset, device)
    gen = torch.Generator().manual_seed(0)

    def batch():
        return tensor_batch(dataset, torch.randint(len(dataset), (batch_size,), generator=gen), tokens, device)

    flops_per_sample = train_step_flops(policy, batch(), device, precision) / batch_size
    for _ in range(3):  # warm-up (allocator, kernels)
        _step(policy, opt, batch(), device, precision)
    _sync(device)
    samples, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _step(policy, opt, batch(), device, precision)
        samples += batch_size
    _sync(device)
    elapsed = time.perf_counter() - t0
    peak = matmul_peak_tflops(device, precision)
    samples_per_s = samples / elapsed
    achieved = samples_per_s * flops_per_sample / 1e12
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "samples_per_s": round(samples_per_s, 2),
        "flops_per_sample": int(flops_per_sample),
        "achieved_tflops": round(achieved, 4),
        "peak_tflops": round(peak, 4),
        "mfu": round(achieved / peak, 4),
        "peak_rss_mb": round(rss_mb, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else None,
        "dtype": "bfloat16" if precision == "bf16" else "float32",
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "seconds": round(elapsed, 2),
        "params": policy.num_parameters(),
    }


def _step(policy: Policy, opt: torch.optim.Optimizer, batch: dict, device: torch.device, precision: str) -> None:
    with autocast_context(device, precision):
        loss, _ = policy(batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()


# ---- inference ---------------------------------------------------------------------------------
INFER_MODES = ("eager", "onnx", "onnx-int8", "compile", "cudagraph")
CPU_MODES, CUDA_MODES = ("eager", "onnx", "onnx-int8"), ("eager", "compile", "cudagraph")


def check_device(mode: str, device: torch.device) -> None:
    """ONNX Runtime runs on the CPU, compile / cudagraph on a CUDA GPU: another device is a one-line error."""
    from tinyvla.accel import check_mode

    check_mode(mode, device)
    if mode.startswith("onnx") and device.type != "cpu":
        raise ConfigError(f"--mode {mode} runs ONNX Runtime on the CPU; use --device cpu (or compile / cudagraph "
                          "on a GPU)")


def make_runner(policy: Policy, mode: str, precision: str = "auto", max_batch: int = 0):
    """A predict_action_chunk-compatible runner for `mode`: eager PyTorch, ONNX Runtime (CPU) or the
    compiled / graph-captured network (CUDA; `precision` bf16 where supported, batch buckets up to
    `max_batch` when given; see tinyvla.accel). A mode the policy's device cannot run is a user error."""
    if mode == "eager":
        return policy.eval()
    if mode in ("compile", "cudagraph"):
        from tinyvla.accel import BUCKETS, AcceleratedPolicy, buckets_up_to

        return AcceleratedPolicy(policy, mode, precision=precision,
                                 buckets=buckets_up_to(max_batch) if max_batch else BUCKETS)
    if mode in ("onnx", "onnx-int8"):
        from tinyvla.export import OnnxPolicy

        check_device(mode, policy.device)
        return OnnxPolicy(policy, quantize=mode == "onnx-int8")
    raise ConfigError(f"unknown inference mode {mode!r}; choose from {', '.join(INFER_MODES)}")


def _percentiles(times_ms: list[float]) -> tuple[float, float]:
    ts = sorted(times_ms)
    return ts[len(ts) // 2], ts[min(len(ts) - 1, int(round(0.99 * (len(ts) - 1))))]


@torch.inference_mode()
def time_calls(runner, batch: dict, calls: int, device: torch.device, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        runner.predict_action_chunk(batch)
    times = []
    for _ in range(calls):
        _sync(device)
        t0 = time.perf_counter()
        runner.predict_action_chunk(batch)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench_infer(policy: Policy, make_batch, *, modes: list[str], calls: int = 200, throughput_batch: int = 64,
                tolerance: float = 1e-3, precision: str = "auto") -> dict:
    """Batch-1 latency (p50/p99 over `calls`) and batch-N throughput per mode; parity against eager.

    The headline keys describe the fastest mode whose outputs stay within `tolerance` (action units)
    of eager PyTorch; every mode's figures are under "modes"."""
    device = policy.device
    one, many = make_batch(1), make_batch(throughput_batch)
    with torch.inference_mode():
        reference = policy.eval().predict_action_chunk(many)
    chunk = policy.config.chunk_size
    results: dict[str, dict] = {}
    for mode in modes:
        try:
            runner = make_runner(policy, mode, precision)
            t0 = time.perf_counter()
            with torch.inference_mode():  # first calls: ONNX session warm-up, compilation or graph capture
                runner.predict_action_chunk(one), runner.predict_action_chunk(many)
            setup_s = time.perf_counter() - t0
            p50, p99 = _percentiles(time_calls(runner, one, calls, device))
            many_times = time_calls(runner, many, max(10, calls // 10), device, warmup=3)
        except (ValueError, RuntimeError, TinyVLAError) as e:  # e.g. an op the exporter does not support
            results[mode] = {"error": str(e).splitlines()[0]}
            continue
        chunks_per_s = throughput_batch / (sum(many_times) / len(many_times) / 1000)
        with torch.inference_mode():
            err = (runner.predict_action_chunk(many).float().cpu() - reference.float().cpu()).abs().max().item()
        results[mode] = {
            "latency_ms_p50": round(p50, 4), "latency_ms_p99": round(p99, 4),
            "batch1_chunks_per_s": round(1000 / p50, 1), "chunks_per_s": round(chunks_per_s, 1),
            "actions_per_s": round(chunks_per_s * chunk, 1), "max_abs_err_vs_eager": err,
            "within_tolerance": err <= tolerance, "first_calls_s": round(setup_s, 2),
            **({"precision": runner.precision, "setup_seconds": runner.setup_seconds}
               if hasattr(runner, "setup_seconds") else {}),
        }
    ok = {m: r for m, r in results.items() if "error" not in r and r["within_tolerance"]}
    best = min(ok, key=lambda m: ok[m]["latency_ms_p50"])
    counts = policy.parameter_counts()
    return {
        "mode": best, **{k: ok[best][k] for k in ("latency_ms_p50", "latency_ms_p99", "chunks_per_s", "actions_per_s")},
        "chunk": chunk, "throughput_batch": throughput_batch, "calls": calls,
        "params_policy": counts["policy"], "params_backbone": counts["backbone"], "params_total": policy.num_parameters(),
        "device": str(device), "threads": torch.get_num_threads(), "tolerance": tolerance, "modes": results,
    }


# ---- what `tinyvla bench train|infer` and `tinyvla reproduce speed` run ------------------------------
def parse_modes(mode: str, device: torch.device) -> list[str]:
    """"all" (what this device runs) or a comma list -> the modes to time (eager first, as the parity
    reference). An unknown mode, or one this device cannot run, is a user error before any model is built."""
    if mode == "all":  # what runs on this device
        return list(CUDA_MODES if device.type == "cuda" else CPU_MODES)
    modes = [m.strip() for m in mode.split(",") if m.strip()]
    unknown = [m for m in modes if m not in INFER_MODES]
    if unknown or not modes:
        raise ConfigError(f"unknown inference mode {', '.join(unknown) or repr(mode)}; choose all or a comma list "
                          f"of {', '.join(INFER_MODES)}")
    for m in modes:
        check_device(m, device)
    return modes if "eager" in modes else ["eager", *modes]


def infer_benchmark(*, preset: str = "tiny", policy_type: str = "tinyvla", overrides: dict | None = None,
                    checkpoint: str = "", device: str = "auto", mode: str = "all", calls: int = 200,
                    batch_size: int = 64, tolerance: float = 1e-2, precision: str = "auto") -> dict:
    """Inference speed of a checkpoint, or of a preset with random weights (speed does not depend on values)."""
    from tinyvla.pipeline import build_run_config, new_policy, placeholder_dataset

    dev = resolve_device(device)
    modes = parse_modes(mode, dev)
    if checkpoint:
        if overrides:
            raise ConfigError("config overrides do not apply to a saved --checkpoint")
        policy, source = Policy.from_pretrained(checkpoint, device=dev), checkpoint
        data = placeholder_dataset(policy.config, 256)
    else:  # random weights at the preset's shape: speed does not depend on the values
        run = build_run_config(policy_type, preset, dict(overrides or {}))
        data = placeholder_dataset(run.policy, 256)  # the toy task where its shapes fit the preset
        torch.manual_seed(0)
        policy, source = new_policy(run.policy, data).to(dev), f"preset {preset} (random weights)"

    def make_batch(n):
        return data.batch(torch.arange(n) % len(data))

    result = {"policy": policy.name, "source": source,
              **bench_infer(policy, make_batch, modes=modes, calls=calls, throughput_batch=batch_size or 64,
                            tolerance=tolerance, precision=precision)}
    if policy.name == "vla_adapter":
        counts = policy.parameter_counts()
        from tinyvla.policies.vla_adapter.modeling import paper_comparison

        result["params_adapter"], result["params_vision"] = counts["adapter"], counts["vision"]
        result["paper_comparison"] = paper_comparison(policy)
    return result


def train_benchmark(*, preset: str = "tiny", policy_type: str = "tinyvla", overrides: dict | None = None,
                    batch_size: int = 0, seconds: float = 30.0, device: str = "auto", precision: str = "auto") -> dict:
    """Training throughput of a preset on toy data for `seconds` (samples/s, MFU, memory)."""
    from tinyvla.data.toy import generate_toy_dataset
    from tinyvla.pipeline import build_run_config, new_policy

    data = generate_toy_dataset(2048, 0)
    run = build_run_config(policy_type, preset, dict(overrides or {}))
    policy = new_policy(run.policy, data)
    result = bench_train(policy, data, batch_size=batch_size or run.train.batch_size, seconds=seconds,
                         device_name=device, precision=precision)
    return {"preset": preset, "policy": run.policy.type, **result}
