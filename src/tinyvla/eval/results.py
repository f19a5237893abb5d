"""What every evaluator reports: a success count with its Wilson interval, and the report files.

One format for all environments: `results.json` (the whole report), `results.md` (a table a person
reads) and, where there is something to plot, `success.png`, all in one output directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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

    def to_dict(self) -> dict:
        lo, hi = self.confidence_interval()
        return {"episodes": self.episodes, "successes": self.successes, "success_rate": self.success_rate,
                "success_ci95": [lo, hi], "mean_episode_steps": self.mean_steps}


def write_results(out_dir: str | Path, report: dict, markdown: list[str]) -> Path:
    """results.json + results.md in `out_dir` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text("\n".join(markdown) + "\n")
    return out


__all__ = ["ClosedLoopResult", "write_results"]
