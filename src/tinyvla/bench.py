"""Speed and memory benchmarks (`tinyvla bench ...`): numbers go to a JSON file, not to unit tests."""

from __future__ import annotations

import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

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
