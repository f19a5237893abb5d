"""Toy-task evaluation: offline action error on a held-out split and closed-loop success in `toy_reach`."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.data.dataset import FrameDataset
from tinyvla.envs.toy_reach import ToyReachEnv, ToyTaskConfig
from tinyvla.eval.results import ClosedLoopResult, write_results
from tinyvla.train import offline_l2
from tinyvla.utils import autocast_context


class RandomActionPolicy:
    """A baseline that ignores its inputs.

    `normal`: each action dimension ~ N(0, 1), the "torch.randn" policy the seed's ~1.4 figure implies;
    `uniform`: uniform over the action space's box [-1, 1]^a (gymnasium's `action_space.sample()`)."""

    def __init__(self, action_dim: int, distribution: str = "normal", seed: int = 0):
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"unknown random distribution {distribution!r}")
        self.action_dim, self.distribution = action_dim, distribution
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> torch.Tensor:
        if self.distribution == "normal":
            return torch.randn(n, self.action_dim, generator=self.gen)
        return torch.rand(n, self.action_dim, generator=self.gen) * 2 - 1

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        return self.sample(batch[OBS_IMAGE].shape[0])[:, None]  # (b, 1, a)

    def reset(self) -> None:
        pass


def random_offline_l2(ds: FrameDataset, distribution: str, seed: int = 0) -> float:
    pred = RandomActionPolicy(ds.action_dim, distribution, seed).sample(len(ds))
    target = ds.actions.reshape(len(ds), -1, ds.action_dim)[:, 0]
    return torch.linalg.vector_norm(pred - target, dim=-1).mean().item()


@torch.no_grad()
def closed_loop(policy, episodes: int, seed: int = 0, cfg: ToyTaskConfig | None = None, batch: int = 50,
                precision: str = "fp32", progress: bool = False) -> ClosedLoopResult:
    """Run `episodes` toy-env episodes, `batch` environments in lockstep (one batched policy call per step)."""
    successes, steps_total, done_eps = 0, 0, 0
    device = getattr(policy, "device", torch.device("cpu"))
    bar = tqdm(total=episodes, desc="closed loop", disable=not progress, leave=False)
    while done_eps < episodes:
        n = min(batch, episodes - done_eps)
        envs = [ToyReachEnv(cfg) for _ in range(n)]
        obs = [env.reset(seed=seed + done_eps + i)[0] for i, env in enumerate(envs)]
        active = list(range(n))
        step = 0
        while active:
            b = {
                OBS_IMAGE: torch.from_numpy(np.stack([obs[i]["image"] for i in active])),
                OBS_STATE: torch.from_numpy(np.stack([obs[i]["state"] for i in active])),
                TASK: [obs[i]["instruction"] for i in active],
            }
            with autocast_context(device, precision):  # re-plan every step: envs finish at different times
                actions = policy.predict_action_chunk(b)[:, 0].float().cpu().numpy()
            still = []
            for a, i in zip(actions, active):
                obs[i], _, terminated, truncated, info = envs[i].step(a)
                if terminated or truncated:
                    successes += int(info["is_success"])
                    steps_total += step + 1
                else:
                    still.append(i)
            active = still
            step += 1
        done_eps += n
        bar.update(n)
    bar.close()
    return ClosedLoopResult(episodes, successes, steps_total / max(episodes, 1))


def _markdown(report: dict, title: str) -> list[str]:
    lo, hi = report["success_ci95"]
    src = report.get("checkpoint") or report.get("server", "")
    lines = [f"# {title}", "", f"policy `{report['policy']}` from `{src}`, {report['episodes']} episodes, seed "
             f"{report['seed']}", "", "| val L2 | success | 95% CI | mean steps |", "|---|---|---|---|"]
    l2 = report.get("val_l2")
    lines.append(f"| {'-' if l2 is None else f'{l2:.4f}'} | {report['success_rate']:.1%} "
                 f"({report['successes']}/{report['episodes']}) | {lo:.1%}-{hi:.1%} | {report['mean_episode_steps']:.1f} |")
    return lines


def evaluate_checkpoint(checkpoint: str, *, dataset: str = "", num_val: int = 2000, episodes: int = 100,
                        seed: int = 0, device: str = "auto", precision: str = "auto", mode: str = "eager",
                        out: str | None = None, progress: bool = True) -> dict:
    """Offline L2 on a held-out split (a saved one, else the toy task's own) + closed-loop success of a
    checkpoint, optionally through ONNX Runtime (`mode`). Writes results.json/.md into `out` if given."""
    from tinyvla.data.toy import generate_toy_dataset
    from tinyvla.errors import ConfigError
    from tinyvla.policies.base import Policy
    from tinyvla.utils import resolve_device, resolve_precision

    if not checkpoint:
        raise ConfigError("give --checkpoint DIR (or --server URL to evaluate a served policy)")
    dev = resolve_device(device)
    policy = Policy.from_pretrained(checkpoint, device=dev)
    prec = resolve_precision(precision, dev)
    if mode != "eager":
        from tinyvla.bench import make_runner

        policy = make_runner(policy, mode, prec)  # a mode this device cannot run: a one-line error
        prec = "fp32"  # the runner applies its own precision
    val = FrameDataset.load(dataset) if dataset else generate_toy_dataset(num_val, seed + 1)
    l2 = offline_l2(policy, val, precision=prec)
    cl = closed_loop(policy, episodes, seed=10_000 + seed, precision=prec, progress=progress)
    report = {"env": "toy", "checkpoint": str(checkpoint), "policy": policy.name, "mode": mode, "val_l2": l2,
              "val_frames": len(val), "seed": seed, **cl.to_dict(), "device": str(dev)}
    if out:
        write_results(out, report, _markdown(report, "Toy task: offline L2 and closed-loop success"))
    return report


def evaluate_server(server: str, *, checkpoint: str = "", episodes: int = 100, seed: int = 0, token: str = "",
                    transport: str = "http", out: str | None = None, progress: bool = True) -> dict:
    """The same closed-loop episodes as `evaluate_checkpoint`, actions from a `tinyvla serve` server. With a
    checkpoint, first checks that the server serves that checkpoint's policy (offline L2 is skipped)."""
    import json
    from pathlib import Path

    from tinyvla.errors import ConfigError
    from tinyvla.serving.client import PolicyClient

    expected = {}
    if checkpoint:
        try:
            expected = json.loads((Path(checkpoint) / "config.json").read_text())
            expected = {"policy": expected["type"], "action_dim": expected["config"]["action_dim"]}
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"--checkpoint {checkpoint}: no readable config.json") from None
    client = PolicyClient(server, token=token, transport=transport)
    meta = client.metadata() if expected else {}
    served = {k: meta.get(k) for k in expected}
    if served != expected:
        client.close()
        raise ConfigError(f"{server} serves {served}, not the policy in {checkpoint} ({expected})")
    try:
        cl = closed_loop(client, episodes, seed=10_000 + seed, progress=progress)
    finally:
        client.close()
    report = {"env": "toy", "server": server, "checkpoint": str(checkpoint), "policy": client.name,
              "transport": transport, "seed": seed, **cl.to_dict()}
    if out:
        write_results(out, report, _markdown(report, "Toy task: closed-loop success of a served policy"))
    return report


__all__ = ["RandomActionPolicy", "random_offline_l2", "closed_loop", "ClosedLoopResult", "offline_l2",
           "evaluate_checkpoint", "evaluate_server"]
