"""The README's commands run as written: every `tinyvla ...` line parses (known command, flags and config
keys), the cheap ones run, and the Python snippet works on a freshly trained tiny checkpoint."""

import re
import shlex
from pathlib import Path

import pytest

from tinyvla.cli import build_parser, main, parse_overrides

README = Path(__file__).resolve().parents[1] / "README.md"
CHEAP = ("reproduce --list", "info")  # run for real; the others only parse (they train, render or serve)


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def readme_commands() -> list[list[str]]:
    cmds = []
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("tinyvla "):
                cmds.append(shlex.split(line)[1:])
    return cmds


def test_readme_has_the_two_commands_and_stays_short():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert len(text.splitlines()) < 250
    assert "../shared" not in text  # users only have the repository


def test_readme_links_point_inside_the_repository():
    for target in re.findall(r"\]\(([^)#\s]+)", README.read_text()):
        if not target.startswith("http"):
            assert (README.parent / target).exists(), target


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses(argv, capsys):
    args, extra = build_parser().parse_known_args(argv)
    overrides = parse_overrides(extra)
    if args.command == "train":  # config keys are checked when the run config is built
        from tinyvla.pipeline import build_run_config

        build_run_config(overrides.pop("policy.type", "tinyvla"), args.preset, overrides)
    if " ".join(argv).startswith(CHEAP):
        assert main(argv) == 0, capsys.readouterr().err


def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "runs/demo/tinyvla", "--data.num_train", "64", "--data.num_val", "16",
                 "--train.steps", "2", "--train.eval_every", "1", "--policy.vision_layers", "1",
                 "--policy.lang_layers", "1", "--train.progress", "false"]) == 0
    import torch

    scope = {"images": torch.zeros(1, 3, 64, 64, dtype=torch.uint8)}
    exec(readme_blocks("python")[0], scope)
    assert scope["actions"].shape == (1, 2)
