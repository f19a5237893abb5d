"""report.html: built from whatever a run directory holds (sections only where their data exists), and
self-contained: every src/href is inline data or an in-page anchor, no script, rollouts under a size cap."""

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_BY_POLICY
from PIL import Image

from tinyvla.cli import main
from tinyvla.pipeline import build_run_config, run_training
from tinyvla.policies.registry import available_policies
from tinyvla.report import GIF_MAX_FRAMES, GIF_MAX_SIDE, REPORT_NAME, build_report, shrink_gif, try_write_report

DOCS = Path(__file__).resolve().parents[1] / "docs"


def tiny_train(out: Path, policy_type: str = "tinyvla") -> Path:
    run = build_run_config(policy_type, "tiny", {**TINY_BY_POLICY[policy_type], "data.num_train": 64,
                                                 "data.num_val": 32, "train.steps": 4, "train.eval_every": 2,
                                                 "train.batch_size": 8, "train.num_threads": 1})
    run_training(run, out)
    return out


def assert_self_contained(page: str) -> None:
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:60] for r in refs if not r.startswith("d")]
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "could not read" not in page  # every result file rendered


def noise_gif(path: Path, frames: int, side: int) -> Path:
    """Palette frames of noise: large files, written without (slow) colour quantisation."""
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, 768, dtype=np.uint8).tolist()
    images = []
    for _ in range(frames):
        images.append(Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8), mode="P"))
        images[-1].putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)
    return path


@pytest.mark.parametrize("policy_type", available_policies())
def test_training_writes_a_report_with_its_sections(policy_type, tmp_path):
    run = tiny_train(tmp_path / "run", policy_type)
    page = (run / REPORT_NAME).read_text()  # written by train() itself
    for section in ("Configuration", "Parameters (best/)", "Validation", "Speed", "Training curves"):
        assert section in page
    assert ("Gates and attention" in page) == (policy_type == "vla_adapter")
    assert "Meta-World" not in page and "Rollouts" not in page and "Ablation" not in page
    assert page.count('src="data:image/png;base64,') >= 1
    assert_self_contained(page)


def test_a_folder_of_runs_gets_every_kind_of_section(tmp_path):
    """Train run + toy eval + Meta-World eval with a rollout + ablation grid + reproduction, in one folder."""
    from tinyvla.reproduce import BUDGETS, ReproduceConfig, summarize

    root = tmp_path / "runs"
    tiny_train(root / "train")
    toy = {"env": "toy", "checkpoint": "train/best", "policy": "tinyvla", "val_l2": 0.5, "episodes": 10,
           "successes": 3, "success_rate": 0.3, "success_ci95": [0.1, 0.6], "mean_episode_steps": 20.0}
    (root / "train" / "eval_toy.json").write_text(json.dumps(toy))
    mw = json.loads((DOCS / "pretrained" / "p1.json").read_text())
    gif = noise_gif(root / "mw_eval" / "videos" / "reach-v3_ep0_success.gif", 30, 96)
    (root / "mw_eval" / "results.json").write_text(json.dumps({**mw, "videos": [f"elsewhere/videos/{gif.name}"]}))
    (root / "grid").mkdir()
    shutil.copy(DOCS / "ablation_vla_gate.json", root / "grid" / "ablation.json")
    run = {**mw, "best_val_l2": 0.2, "train_seconds": 100.0, "train_steps": 50, "parameters": 1000}
    report = summarize(ReproduceConfig(budget="smoke"), BUDGETS["smoke"], {"seed0": run, "blank_seed0": run},
                       {"train_seed0": 1.0})
    (root / "repro").mkdir()
    (root / "repro" / "report.json").write_text(json.dumps(report))

    page = build_report(root, media_cap=200_000)
    for title in ("Training", "Toy task evaluation", "Meta-World closed loop", "Ablation", "Reproduction",
                  "Rollouts", "Blind control", "vision dep."):
        assert title in page, title
    for anchor in ("train", "mw_eval", "grid", "repro"):
        assert f">{anchor}</a>" in page  # one table-of-contents row per run folder
    gifs = re.findall(r'src="data:image/gif;base64,([^"]+)"', page)
    assert len(gifs) == 1  # found in videos/ although results.json names another folder
    assert_self_contained(page)


def test_a_large_rollout_is_shrunk_under_the_cap(tmp_path):
    gif = noise_gif(tmp_path / "big.gif", 2 * GIF_MAX_FRAMES + 10, 192)
    assert gif.stat().st_size > 3_000_000
    data = shrink_gif(gif, 1_000_000)
    assert data is not None and len(data) <= 1_000_000
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) <= GIF_MAX_SIDE and im.n_frames <= GIF_MAX_FRAMES


def test_rollouts_past_the_page_budget_are_named_not_inlined(tmp_path):
    mw = json.loads((DOCS / "pretrained" / "p1.json").read_text())
    for k in range(3):
        noise_gif(tmp_path / "videos" / f"push-v3_ep{k}_fail.gif", 10, 64)
    (tmp_path / "results.json").write_text(json.dumps({**mw, "videos": []}))
    size = (tmp_path / "videos" / "push-v3_ep0_fail.gif").stat().st_size
    page = build_report(tmp_path, media_cap=10 * size, media_total=int(1.5 * size))
    gifs = re.findall(r'src="data:image/gif;base64,([^"]+)"', page)
    assert len(gifs) == 1 and base64.b64decode(gifs[0])[:6] == b"GIF89a"
    assert page.count("media budget is spent") == 2
    assert_self_contained(page)


def test_cli_report_and_a_folder_without_results(tmp_path, capsys):
    run = tiny_train(tmp_path / "run")
    (run / REPORT_NAME).unlink()
    assert main(["report", str(run), "--out", str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").is_file() and not (run / REPORT_NAME).exists()
    # a run killed before history.json (its history is in last/) and a result file of another version
    (run / "history.json").unlink()
    (run / "results.json").write_text(json.dumps({"tasks": {"reach-v3": {}}, "overall": {}, "mean_success_rate": 0.5}))
    page = build_report(run)
    assert "in progress or interrupted" in page and "Training curves" in page
    assert "could not read results.json: KeyError" in page
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no run files found" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="could not write"):
        assert try_write_report(tmp_path / "empty") is None
