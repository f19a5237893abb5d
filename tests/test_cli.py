"""The CLI end to end (in-process for speed, plus one real console-script run) and its error paths."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyvla.cli import main
from tests_helpers import TINY_FLAGS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = main(["train", "--preset", "tiny", "--out", str(out), *TINY_FLAGS,
               "--data.num_train", "128", "--data.num_val", "32", "--train.steps", "4", "--train.eval_every", "2"])
    assert rc == 0
    return out


def test_train_writes_best_and_last(trained):
    for name in ("best", "last"):
        for f in ("config.json", "model.safetensors", "tokenizer.json", "stats.json"):
            assert (trained / name / f).is_file()
    assert json.loads((trained / "run_config.json").read_text())["policy_type"] == "tinyvla"


def test_eval_reports_l2_and_success(trained, tmp_path, capsys):
    rc = main(["eval", "--checkpoint", str(trained / "best"), "--episodes", "4", "--num-val", "32",
               "--json", str(tmp_path / "eval.json"), "--out", str(tmp_path / "eval")])
    assert rc == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["episodes"] == 4 and 0 <= report["success_rate"] <= 1 and report["val_l2"] > 0
    # the shared report format: the same results.json / results.md every environment writes
    assert json.loads((tmp_path / "eval" / "results.json").read_text()) == report
    assert "| val L2 |" in (tmp_path / "eval" / "results.md").read_text()
    assert "Toy task evaluation" in (tmp_path / "eval" / "report.html").read_text()


def one_line_error(capsys, argv, needle):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_user_mistakes_are_one_line_errors(trained, tmp_path, capsys):
    one_line_error(capsys, ["eval", "--checkpoint", str(tmp_path / "missing")], "does not exist")
    broken = tmp_path / "broken"
    shutil.copytree(trained / "best", broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 10)
    one_line_error(capsys, ["eval", "--checkpoint", str(broken)], "corrupt weights")
    one_line_error(capsys, ["train", "--preset", "giant"], "unknown preset")
    one_line_error(capsys, ["train", "--train.stepz", "3"], "unknown config key train.stepz")
    one_line_error(capsys, ["train", "--train.steps", "many"], "expected an integer")
    one_line_error(capsys, ["train", "--policy.type", "nope"], "unknown policy type")
    one_line_error(capsys, ["train", "--verbose"], "unknown argument")


def test_nan_actions_in_a_dataset_directory(tmp_path, capsys):
    from tinyvla.data.toy import generate_toy_dataset

    for split in ("train", "val"):
        generate_toy_dataset(16, 0).save(tmp_path / "ds" / split)
    frames = tmp_path / "ds" / "train" / "frames.safetensors"
    from safetensors.torch import load_file, save_file

    data = load_file(str(frames))
    data["actions"][2, 1] = float("nan")
    save_file(data, str(frames))
    one_line_error(capsys, ["train", "--data.path", str(tmp_path / "ds"), *TINY_FLAGS], "NaN")


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).parent / "tinyvla"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    out = subprocess.run([str(exe), "info", "--preset", "tiny"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "parameters" in out.stdout
    bad = subprocess.run([str(exe), "eval", "--checkpoint", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
