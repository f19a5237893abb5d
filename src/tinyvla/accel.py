"""GPU inference without the launch overhead: `compile` (torch.compile) and `cudagraph` (CUDA graphs).

On a GPU a small policy is bound by Python and kernel launches, not by arithmetic: batch 8 costs what
batch 1 costs. Both modes remove that overhead for the network only (`predict_normalized`); validation,
tokenisation and (un)normalisation stay outside, so a new instruction never recompiles. Shapes are made
static: a batch is padded up to the next bucket (1, 2, 4, 8, ...; the padding rows repeat the last one
and are dropped from the output) and one graph is kept per (bucket, instruction length).
`cudagraph` captures each graph once (after warm-up on a side stream) and replays it; at capture its
output is checked against eager execution, so a network that cannot be captured faithfully is an error,
not silently wrong actions. `compile` uses torch.compile (`reduce-overhead` on CUDA, which also uses
CUDA graphs). The cost of compiling/capturing is paid once per shape and reported in `setup_seconds`.
"""

from __future__ import annotations

import time
from collections import deque

import torch

from tinyvla.errors import ConfigError
from tinyvla.utils import autocast_context, resolve_precision

GPU_MODES = ("compile", "cudagraph")
BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def bucket_for(n: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The smallest bucket that holds `n` rows (past the largest bucket: `n` itself, one more shape)."""
    if n < 1:
        raise ValueError("a batch needs at least one row")
    return next((b for b in buckets if b >= n), n)


def buckets_up_to(max_batch: int) -> tuple[int, ...]:
    """The buckets below `max_batch`, then `max_batch` itself (a server never batches more)."""
    return tuple(b for b in BUCKETS if b < max_batch) + (max_batch,)


def pad_rows(x: torch.Tensor | None, size: int) -> torch.Tensor | None:
    """Pad the batch dimension to `size` by repeating the last row (real data: no NaN paths, same dtype)."""
    if x is None or x.shape[0] == size:
        return x
    return torch.cat([x, x[-1:].expand(size - x.shape[0], *x.shape[1:])])


def check_mode(mode: str, device: torch.device) -> None:
    """A GPU mode on another device is a user error with the reason, in one line."""
    if mode in GPU_MODES and device.type != "cuda":
        raise ConfigError(f"--mode {mode} removes kernel-launch overhead on a CUDA GPU and needs one (this policy "
                          f"is on {device.type}); on the CPU use eager, onnx or onnx-int8")


class AcceleratedPolicy:
    """A policy whose network runs compiled or graph-captured; a drop-in for `predict_action_chunk` /
    `select_action` (eval, serve, bench). Every other attribute is the wrapped policy's."""

    def __init__(self, policy, mode: str, precision: str = "auto", buckets: tuple[int, ...] = BUCKETS,
                 tolerance: float = 1e-2, _backend: str | None = None):
        if mode not in GPU_MODES:
            raise ConfigError(f"unknown accelerated mode {mode!r}; choose from {', '.join(GPU_MODES)}")
        # `_backend` (tests): torch.compile with another backend, e.g. "eager" to check tracing on the CPU
        if _backend is None or mode != "compile":
            check_mode(mode, policy.device)
        self.policy, self.mode, self.buckets, self.tolerance = policy.eval(), mode, tuple(sorted(buckets)), tolerance
        self.precision = resolve_precision(precision, policy.device)
        self.setup_seconds: dict[str, float] = {}  # "bucket x length" -> seconds to compile / capture
        self._graphs: dict[tuple, tuple] = {}
        self._queue: deque[torch.Tensor] = deque()
        self._ensemblers: list = []
        if mode == "compile":
            import torch._dynamo

            # one graph per (bucket, instruction length): allow more than dynamo's default of 8
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            kwargs = {"backend": _backend} if _backend else (
                {"mode": "reduce-overhead"} if policy.device.type == "cuda" else {})
            self._compiled = torch.compile(self._network, dynamic=False, **kwargs)

    def __getattr__(self, name):  # config, name, stats, tokenizer, device, state_dim, ... of the policy
        return getattr(self.__dict__["policy"], name)

    def _network(self, images, tokens, mask, state):
        with autocast_context(images.device, self.precision):
            return self.policy.predict_normalized(images, tokens, mask, state).float()

    @torch.inference_mode()
    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        images, tokens, mask, state = self.policy.prepare(batch)
        n = images.shape[0]
        size = bucket_for(n, self.buckets)
        args = [pad_rows(x, size) for x in (images, tokens, mask, state)]
        out = self._run(size, args)[:n]
        return self.policy.unnormalize_action(out)

    def _run(self, size: int, args: list) -> torch.Tensor:
        key = (size, args[1].shape[1], args[3] is not None)
        if self.mode == "compile":
            if key not in self._graphs:
                t0 = time.perf_counter()
                out = self._compiled(*args)
                self._sync()
                self.setup_seconds[f"{size}x{key[1]}"] = round(time.perf_counter() - t0, 2)
                self._graphs[key] = ()
                return out.clone()
            return self._compiled(*args).clone()
        if key not in self._graphs:
            t0 = time.perf_counter()
            self._graphs[key] = self._capture(args)
            self.setup_seconds[f"{size}x{key[1]}"] = round(time.perf_counter() - t0, 2)
        graph, static, out = self._graphs[key]
        for dst, src in zip(static, args):
            if dst is not None:
                dst.copy_(src)
        graph.replay()
        return out.clone()

    def _capture(self, args: list) -> tuple:
        try:
            return self._capture_graph(args)
        except RuntimeError as e:  # e.g. a host sync inside the network: not capturable
            raise ConfigError(f"--mode cudagraph cannot capture this policy ({str(e).splitlines()[0]}); use eager "
                              "or compile") from None

    def _capture_graph(self, args: list) -> tuple:
        static = [None if a is None else a.clone() for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph (lazy inits, autotuning, allocator)
            for _ in range(3):
                reference = self._network(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._network(*static)
        graph.replay()
        err = (out - reference).abs().max().item()
        if not err <= self.tolerance:
            raise ConfigError(f"--mode cudagraph: the captured network differs from eager by {err:.3g} (> "
                              f"{self.tolerance}); this policy has data-dependent Python control flow, use eager")
        return graph, static, out

    def _sync(self) -> None:
        if self.policy.device.type == "cuda":
            torch.cuda.synchronize()

    def select_action(self, batch: dict) -> torch.Tensor:
        """The policy's own action queue / temporal ensembling, over the accelerated chunks."""
        from tinyvla.policies.base import Policy

        return Policy.select_action(self, batch)

    def reset(self) -> None:
        self._queue.clear()
        self._ensemblers = []

    def eval(self) -> "AcceleratedPolicy":
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return self.policy.num_parameters(trainable_only)


__all__ = ["GPU_MODES", "BUCKETS", "AcceleratedPolicy", "bucket_for", "buckets_up_to", "pad_rows", "check_mode"]
