"""Crash-safe training: SIGKILL a real training process mid-way, resume it, compare with an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

from tests_helpers import TINY_FLAGS
from tinyvla.cli import main
from tinyvla.policies.base import Policy

FLAGS = [*TINY_FLAGS, "--data.num_train", "512", "--data.num_val", "64", "--train.steps", "240",
         "--train.eval_every", "10", "--train.precision", "fp32", "--train.warmup_steps", "20"]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    crashed = tmp_path / "crashed"
    proc = subprocess.Popen([sys.executable, "-m", "tinyvla.cli", "train", "--out", str(crashed), *FLAGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "2"})
    state_file = crashed / "last" / "train_state.json"
    deadline = time.time() + 120
    step = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            step = json.loads(state_file.read_text())["step"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            step = 0  # not written yet (reads never see a half-written file: the directory is renamed in)
        if step >= 80:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 80 <= step < 240

    Policy.from_pretrained(crashed / "last")  # whatever the kill interrupted, the checkpoint is whole
    assert main(["train", "--out", str(crashed), *FLAGS, "--resume"]) == 0
    resumed = json.loads((crashed / "history.json").read_text())

    straight = tmp_path / "straight"
    assert main(["train", "--out", str(straight), *FLAGS]) == 0
    reference = json.loads((straight / "history.json").read_text())

    assert resumed["steps"] == reference["steps"] == 240
    assert [h["step"] for h in resumed["history"]] == [h["step"] for h in reference["history"]]
    print("resumed", resumed["final_val_l2"], "reference", reference["final_val_l2"], "killed at", step)
    assert abs(resumed["final_val_l2"] - reference["final_val_l2"]) < 1e-3 * max(1.0, reference["final_val_l2"])
    assert not list(crashed.glob(".*tmp*")) and not list(crashed.glob(".*old*"))


def test_resume_without_a_checkpoint_starts_fresh(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "new"), *TINY_FLAGS, "--data.num_train", "64", "--data.num_val", "16",
                 "--train.steps", "3", "--train.eval_every", "3", "--resume"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
