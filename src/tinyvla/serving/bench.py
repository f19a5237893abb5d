"""`tinyvla bench serve`: N concurrent clients x M requests against a policy server on loopback."""

from __future__ import annotations

import statistics
import threading
import time

import torch

from tinyvla.serving.client import PolicyClient, ServerError


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def bench_serve(url: str, *, clients: int, requests: int, token: str | None = None, transport: str = "http",
                image_size: int | None = None, instruction: str = "go to the red block", seed: int = 0) -> dict:
    """Each client thread sends `requests` observations one after another (a robot's control loop)."""
    probe = PolicyClient(url, token=token, transport="http")
    meta = probe.metadata()
    size = image_size or meta["image_shape"][-1]
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8, generator=gen)
    state = torch.zeros(meta["state_dim"]) if meta["state_dim"] else None
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client_loop(k: int) -> None:
        client = PolicyClient(url, token=token, transport=transport, max_parallel=1)
        barrier.wait()
        mine, bad = [], []
        for r in range(requests):
            t0 = time.perf_counter()
            try:
                client.act(images[(k + r) % len(images)], instruction, state)
                mine.append((time.perf_counter() - t0) * 1000)
            except ServerError as e:
                bad.append(str(e))
        client.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    after = probe.health()
    probe.close()
    return {
        "clients": clients, "requests": clients * requests, "errors": len(errors),
        "latency_ms_p50": round(statistics.median(latencies), 3) if latencies else None,
        "latency_ms_p99": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "requests_per_s": round(len(latencies) / wall, 1), "transport": transport, "wall_s": round(wall, 3),
        "mean_batch_size": round(after.get("mean_batch_size", 0.0), 2), "policy": meta["policy"],
        "first_errors": errors[:3],
    }
