import json

from tinyvla.cli import main
from tests_helpers import TINY_FLAGS

DATA = ["--data.num_train", "96", "--data.num_val", "32"]


def test_distill_from_a_teacher_checkpoint(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "teacher"), *TINY_FLAGS, *DATA, "--train.steps", "4",
                 "--train.eval_every", "4"]) == 0
    assert main(["distill", "--teacher", str(tmp_path / "teacher" / "best"), "--out", str(tmp_path / "student"),
                 "--alpha", "0.5", *TINY_FLAGS, *DATA, "--train.steps", "4", "--train.eval_every", "4"]) == 0
    report = json.loads((tmp_path / "student" / "distill.json").read_text())
    assert report["alpha"] == 0.5 and report["student_val_l2"] > 0 and report["teacher_val_l2"] > 0
    assert (tmp_path / "student" / "best" / "model.safetensors").is_file()


def test_distill_errors(tmp_path, capsys):
    assert main(["distill", "--teacher", str(tmp_path / "none"), "--out", str(tmp_path / "s")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(tmp_path / "none"), "--alpha", "2"]) == 2
    assert "alpha" in capsys.readouterr().err
