"""`tinyvla eval --env libero`: the published protocol on a short episode (needs LIBERO's venv, `make
setup-libero`; skipped without it), and the checks that run everywhere: a checkpoint that cannot act in
LIBERO and bad episode counts are one-line errors."""

import json

import pytest
import torch

from tinyvla.cli import main
from tinyvla.envs.libero import libero_missing

MISSING = libero_missing()


@pytest.fixture(scope="module")
def libero_checkpoint(tmp_path_factory):
    """A tiny random-weight TinyVLA shaped for LIBERO: 32 px camera, 8-D state, 7-D actions, chunk 4."""
    from tinyvla.pipeline import build_run_config, new_policy, placeholder_dataset

    from conftest import TINY_OVERRIDES

    run = build_run_config("tinyvla", "tiny", {**TINY_OVERRIDES, "policy.image_size": 32, "policy.action_dim": 7,
                                               "policy.state_dim": 8, "policy.chunk_size": 4,
                                               "policy.n_action_steps": 4})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("libero") / "ckpt"
    new_policy(run.policy, placeholder_dataset(run.policy, 16)).save_pretrained(path)
    return path


def one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_checkpoints_that_cannot_act_in_libero_are_refused(libero_checkpoint, tmp_path, capsys):
    from tinyvla.pipeline import build_run_config, new_policy, placeholder_dataset

    from conftest import TINY_OVERRIDES

    toy = build_run_config("tinyvla", "tiny", TINY_OVERRIDES)
    new_policy(toy.policy, placeholder_dataset(toy.policy, 16)).save_pretrained(tmp_path / "toy")
    one_line_error(capsys, ["eval", "--env", "libero", "--checkpoint", str(tmp_path / "toy")], "LIBERO's are 7-D")
    one_line_error(capsys, ["eval", "--env", "libero", "--checkpoint", str(libero_checkpoint), "--episodes", "60"],
                   "50 initial states")
    one_line_error(capsys, ["eval", "--env", "libero", "--checkpoint", str(libero_checkpoint), "--suite", "objekt"],
                   "unknown LIBERO suite")
    one_line_error(capsys, ["eval", "--env", "libero", "--checkpoint", str(libero_checkpoint), "--init-states", "40-55"],
                   "distinct initial states 0-49")


def test_init_states_parse():
    from tinyvla.eval.libero import LiberoEvalConfig

    assert LiberoEvalConfig(episodes=3).initial_states() == [0, 1, 2]
    assert LiberoEvalConfig(init_states="25-49").initial_states() == list(range(25, 50))
    assert LiberoEvalConfig(init_states="7,3").initial_states() == [7, 3]


@pytest.mark.skipif(MISSING is not None, reason=f"LIBERO is not installed ({MISSING})")
def test_short_libero_eval_writes_the_report(libero_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--env", "libero", "--suite", "object", "--task-ids", "0", "--episodes", "1",
                 "--max-steps", "8", "--checkpoint", str(libero_checkpoint), "--device", "cpu",
                 "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    task = report["tasks"]["0"]
    assert task["episodes"] == 1 and task["mean_episode_steps"] <= 8 and "blind_success" in task
    assert report["suite"] == "libero_object" and report["episodes_per_minute"] > 0
    assert "| **mean** |" in (out / "results.md").read_text()
    assert (out / "report.html").is_file() and list((out / "videos").glob("task0_init0_*.gif"))


@pytest.mark.skipif(MISSING is not None, reason=f"LIBERO is not installed ({MISSING})")
def test_libero_eval_runs_tasks_in_parallel_from_named_initial_states(libero_checkpoint, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--env", "libero", "--suite", "object", "--task-ids", "0,1", "--init-states", "30,31",
                 "--max-steps", "4", "--no-blind", "--workers", "2", "--videos", "0",
                 "--checkpoint", str(libero_checkpoint), "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert sorted(report["tasks"]) == ["0", "1"] and report["init_states"] == "30-31"
    assert all(t["episodes"] == 2 and t["mean_episode_steps"] <= 4 for t in report["tasks"].values())
    assert "initial states 30-31" in (out / "results.md").read_text()
