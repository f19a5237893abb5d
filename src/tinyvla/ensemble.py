"""Temporal ensembling of overlapping action chunks (ACT, Zhao et al. 2023; BAKU uses it with 0.01).

A policy that predicts a chunk of k actions at every step has, for step t, up to k predictions: from
the chunks made at t-k+1 .. t. They are averaged with weights exp(-coef * i), i = 0 for the oldest
prediction, so older (already partly executed) plans count a little more and actions change smoothly.
"""

from __future__ import annotations

import numpy as np


class TemporalEnsembler:
    """One episode's ensembler: `add(chunk)` at every step, then `act()` gives that step's action."""

    def __init__(self, coef: float = 0.01):
        if coef < 0:
            raise ValueError("the temporal-ensemble coefficient must be >= 0")
        self.coef = coef
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self._chunks: list[tuple[int, np.ndarray]] = []  # (step the chunk was made at, (k, a) actions)

    def add(self, chunk) -> None:
        """The chunk predicted from the current step's observation: (k, a)."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2:
            raise ValueError(f"a chunk is (steps, action_dim), got shape {chunk.shape}")
        self._chunks.append((self.t, chunk))

    def act(self) -> np.ndarray:
        """The ensembled action for the current step; advances to the next step."""
        live = [(s, c) for s, c in self._chunks if 0 <= self.t - s < len(c)]
        if not live:
            raise RuntimeError("no chunk covers this step: call add() before act()")
        self._chunks = live  # oldest first
        preds = np.stack([c[self.t - s] for s, c in live])  # (m, a)
        w = np.exp(-self.coef * np.arange(len(live)))
        self.t += 1
        return (w[:, None] * preds).sum(0) / w.sum()


__all__ = ["TemporalEnsembler"]
