"""Evaluation: offline action error on a held-out split and closed-loop success in the toy env."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from tinyvla.constants import OBS_IMAGE, OBS_STATE, TASK
from tinyvla.data.dataset import FrameDataset
from tinyvla.envs.toy_reach import ToyReachEnv, ToyTaskConfig
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


@dataclass
class ClosedLoopResult:
    episodes: int
    successes: int
    mean_steps: float

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)

    def confidence_interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval for the success rate."""
        n, p = self.episodes, self.success_rate
        if n == 0:
            return (0.0, 1.0)
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return (max(0.0, centre - half), min(1.0, centre + half))


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


__all__ = ["RandomActionPolicy", "random_offline_l2", "closed_loop", "ClosedLoopResult", "offline_l2"]
