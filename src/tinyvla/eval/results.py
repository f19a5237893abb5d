"""What every evaluator reports: a success count with its Wilson interval, and the report files.

One format for all environments: `results.json` (the whole report), `results.md` (a table a person
reads) and, where there is something to plot, `success.png`, all in one output directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyvla.report import try_write_report


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


def write_results(out_dir: str | Path, report: dict, markdown: list[str], page: bool = True) -> Path:
    """results.json + results.md in `out_dir` (created), then its report.html unless `page` is off (a caller
    that adds files first writes the page itself)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text("\n".join(markdown) + "\n")
    if page:
        try_write_report(out)  # a page that cannot be written is a warning, never a failed evaluation
    return out


def save_gif(frames: list[np.ndarray], path: Path, scale: int = 4) -> None:
    """(3, H, W) uint8 frames -> an animated GIF, each pixel scaled up `scale` times."""
    from PIL import Image

    images = [Image.fromarray(np.kron(f.transpose(1, 2, 0), np.ones((scale, scale, 1), dtype=np.uint8))) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)


__all__ = ["ClosedLoopResult", "write_results", "save_gif"]
