"""`tinyvla bench serve`: N concurrent clients x M requests against a policy server on loopback."""

from __future__ import annotations

import statistics
import threading
import time

import torch

from tinyvla.serving.client import PolicyClient


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def _observations(meta: dict, n: int, seed: int) -> list[tuple[torch.Tensor, str, torch.Tensor | None]]:
    """`n` valid observations: rendered toy-env scenes when the served image size fits the toy task,
    random uint8 images with a toy instruction otherwise."""
    from tinyvla.envs.toy_reach import ToyReachEnv, ToyTaskConfig

    size, state_dim = meta["image_shape"][-1], meta["state_dim"]
    out = []
    if size == ToyTaskConfig().image_size and state_dim in (0, 2):
        env = ToyReachEnv()
        for k in range(n):
            obs, _ = env.reset(seed=seed + k)
            out.append((torch.from_numpy(obs["image"]), obs["instruction"],
                        torch.from_numpy(obs["state"]) if state_dim else None))
        return out
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen)
        out.append((image, "go to the red block", torch.zeros(state_dim) if state_dim else None))
    return out


def bench_serve(url: str, *, clients: int, requests: int, token: str | None = None, transport: str = "http",
                seed: int = 0) -> dict:
    """Each client thread sends `requests` observations one after another (a robot's control loop).

    -> {"clients", "requests" (= clients x requests), "errors", "latency_ms_p50", "latency_ms_p99",
    "requests_per_s" (answered requests / wall time), "transport", "mean_batch_size", ...}."""
    probe = PolicyClient(url, token=token, transport="http")
    meta = probe.metadata()
    before = probe.health()
    observations = _observations(meta, 16, seed)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    pool = [PolicyClient(url, token=token, transport=transport, max_parallel=1) for _ in range(clients)]
    for client in pool:
        client.connect()  # WebSocket handshakes happen before the clock starts

    def client_loop(k: int) -> None:
        client = pool[k]
        mine, bad = [], []
        barrier.wait()
        for r in range(requests):
            t0 = time.perf_counter()
            try:
                client.act(*observations[(k + r) % len(observations)])
                mine.append((time.perf_counter() - t0) * 1000)
            except Exception as e:  # noqa: BLE001 - count every failure, keep the load going
                bad.append(str(e))
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client_loop, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for client in pool:
        client.close()
    after = probe.health()
    probe.close()
    batches = after.get("batches", 0) - before.get("batches", 0)
    batched = after.get("batched_requests", 0) - before.get("batched_requests", 0)
    return {
        "clients": clients, "requests": clients * requests, "errors": len(errors),
        "latency_ms_p50": round(statistics.median(latencies), 3) if latencies else None,
        "latency_ms_p99": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "requests_per_s": round(len(latencies) / wall, 1), "transport": transport, "wall_s": round(wall, 3),
        "mean_batch_size": round(batched / batches, 2) if batches else None, "policy": meta["policy"],
        "first_errors": errors[:3],
    }


def bench_serve_checkpoint(checkpoint: str, *, clients: int, requests: int, device: str = "auto", max_batch: int = 32,
                           max_wait_ms: float = 5.0, transport: str = "http", mode: str = "eager",
                           precision: str = "auto") -> dict:
    """`bench_serve` against the checkpoint served in this process (port chosen by the OS)."""
    from tinyvla.serving.server import PolicyServer, ServeConfig, load_for_serving

    cfg = ServeConfig(port=0, max_batch=max_batch, max_wait_ms=max_wait_ms)
    policy = load_for_serving(checkpoint, device=device, mode=mode, precision=precision, max_batch=max_batch)
    with PolicyServer(policy, cfg).start_background() as server:
        result = bench_serve(server.url, clients=clients, requests=requests, transport=transport)
    return {**result, "device": str(policy.device), "mode": mode, "max_batch": cfg.max_batch,
            "max_wait_ms": cfg.max_wait_ms}
