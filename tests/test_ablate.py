import json

import pytest

from tinyvla.ablate import GRIDS, GridEnv, run_ablation
from tinyvla.cli import main
from tinyvla.data.toy import generate_toy_dataset, with_action_chunks
from tinyvla.envs.libero import libero_missing
from tinyvla.errors import ConfigError

TINY = {"data.num_train": 64, "data.num_val": 16, "train.steps": 2, "train.eval_every": 2,
        "policy.vision_layers": 1, "policy.lang_layers": 1, "policy.vision_width": 32, "policy.vision_heads": 2,
        "policy.lang_width": 32, "policy.lang_heads": 2, "policy.pool_heads": 2, "policy.head_hidden": 32}


def test_fusion_head_grid_writes_table_and_plot(tmp_path, capsys):
    results = run_ablation("fusion_head", [0, 1], tmp_path, episodes=2, extra=TINY)
    assert [r["config"] for r in results["rows"]] == [label for label, _ in GRIDS["fusion_head"]]
    for row in results["rows"]:
        assert row["seeds"] == [0, 1] and row["val_l2"] > 0 and row["val_l2_std"] >= 0
    assert json.loads((tmp_path / "ablation.json").read_text())["grid"] == "fusion_head"
    assert "| cross-attention + discrete tokens |" in (tmp_path / "ablation.md").read_text()
    assert (tmp_path / "ablation.png").stat().st_size > 1000
    # Each finished run was kept as it ended: the same command again (after a crash, say) re-runs nothing,
    # a line cut short is ignored, and a new seed runs only its own jobs.
    runs_log = tmp_path / "runs.jsonl"
    assert len(runs_log.read_text().splitlines()) == 2 * len(GRIDS["fusion_head"])
    with runs_log.open("a") as f:
        f.write('{"config": "pool+add + ML')
    capsys.readouterr()
    again = run_ablation("fusion_head", [0, 1], tmp_path, episodes=2, extra=TINY)
    assert f"{2 * len(GRIDS['fusion_head'])} of {2 * len(GRIDS['fusion_head'])} runs already" in capsys.readouterr().err
    assert [r["val_l2"] for r in again["rows"]] == [r["val_l2"] for r in results["rows"]]
    assert (results["reused_runs"], again["reused_runs"]) == (0, 2 * len(GRIDS["fusion_head"]))


def test_unknown_grid():
    with pytest.raises(ConfigError, match="unknown grid"):
        run_ablation("nope", [0], "/tmp/unused")


def test_toy_action_chunks_repeat_the_expert_command():
    ds = with_action_chunks(generate_toy_dataset(8, 0), 3)
    assert ds.actions.shape == (8, 3, 2) and (ds.actions[:, 2] == ds.actions[:, 0]).all()


def test_single_layer_rows_name_the_layer_by_role():
    from tinyvla.ablate import LAYER_ROLES, _backbone_layers
    from tinyvla.pipeline import build_run_config

    roles = {ov["policy.condition_layer"] for _, ov in GRIDS["vla_conditions"] if "policy.condition_layer" in ov}
    assert roles == {"last", "middle"}
    n = _backbone_layers(build_run_config("vla_adapter", "tiny").policy)  # scratch: 4 layers
    assert (n, LAYER_ROLES["last"](n), LAYER_ROLES["middle"](n)) == (4, 3, 1)  # the indices the grid used before
    assert LAYER_ROLES["middle"](6) == 2 and LAYER_ROLES["last"](6) == 5  # MiniLM-L6


def test_toy_rows_pool_their_episodes_and_another_episode_count_scores_again(tmp_path, capsys):
    results = run_ablation("fusion_head", [0, 1], tmp_path, episodes=2, extra=TINY, row_numbers=[1])
    row = results["rows"][0]
    assert row["episodes"] == 4 and row["successes"] == round(4 * row["success_rate"])
    assert row["ci95"][0] <= row["success_rate"] <= row["ci95"][1]
    assert f"({row['successes']}/4) |" in (tmp_path / "ablation.md").read_text()
    # A kept toy run was scored on 2 episodes: asking for 3 scores every run again instead of reusing it.
    capsys.readouterr()
    again = run_ablation("fusion_head", [0, 1], tmp_path, episodes=3, extra=TINY, row_numbers=[1])
    assert "already" not in capsys.readouterr().err and again["rows"][0]["episodes"] == 6
    run_ablation("fusion_head", [0, 1], tmp_path, episodes=2, extra=TINY, row_numbers=[1])
    assert "2 of 2 runs already" in capsys.readouterr().err


def test_a_grid_can_run_some_of_its_rows(tmp_path):
    results = run_ablation("fusion_head", [0], tmp_path, episodes=1, extra=TINY, row_numbers=[4, 1])
    assert [r["config"] for r in results["rows"]] == ["pool+add + MLP", "cross-attention + MLP"]
    with pytest.raises(ConfigError, match=r"has rows 1..6: 1. pool\+add \+ MLP"):
        run_ablation("fusion_head", [0], tmp_path, row_numbers=[7])


def test_libero_grid_bad_input_is_one_line(tmp_path, capsys):
    assert main(["ablate", "--env", "nope", "--out", str(tmp_path)]) == 2
    assert main(["ablate", "--env", "libero", "--out", str(tmp_path)]) == 2
    assert main(["ablate", "--dataset", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 3 and "choose from toy, libero" in err[0] and "needs --dataset" in err[1]
    assert "are for --env libero" in err[2]
    assert not (tmp_path / "runs.jsonl").exists()
    data = tmp_path / "data"  # a dataset's metadata is all these checks read
    (data / "meta").mkdir(parents=True)
    (data / "meta" / "info.json").write_text("{}")
    (data / "meta" / "tinyvla.json").write_text(json.dumps({"suite": "libero_object"}))
    for bad, says in ((["--init-states", "45-60"], "--init-states '45-60'"), (["--task-ids", "12"], "12")):
        assert main(["ablate", "--env", "libero", "--dataset", str(data), *bad, "--out", str(tmp_path)]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and says in err[0]


@pytest.mark.skipif(libero_missing() is not None, reason=f"LIBERO is not installed ({libero_missing()})")
def test_gate_grid_on_a_libero_dataset_trains_scores_and_keeps_each_run(tmp_path, capsys, monkeypatch):
    """Two rows of the gate grid, trained on two LIBERO-Object demos and scored on a held-out initial state."""
    from tinyvla.reproduce import _SMOKE_VLA_ADAPTER

    monkeypatch.setenv("TINYVLA_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    assert main(["data", "libero", "--suite", "object", "--task-ids", "0", "--episodes-per-task", "2",
                 "--image-size", "32", "--workers", "1", "--out", str(data)]) == 0
    tiny = {k: v for k, v in _SMOKE_VLA_ADAPTER.items() if v is not None}
    extra = {**tiny, "train.steps": 2, "train.eval_every": 1, "train.batch_size": 4, "train.progress": False}
    env = GridEnv(env="libero", dataset=str(data), tasks="0", eval_workers=1, max_steps=6)
    results = run_ablation("vla_gate", [0], tmp_path / "grid", episodes=1, extra=extra, preset="metaworld",
                           row_numbers=[1, 2], env=env)
    assert results["task"] == "libero_object" and [r["config"] for r in results["rows"]] == ["tanh(g) on Raw", "no gate"]
    for row, paper in zip(results["rows"], (95.0, 91.4)):
        assert row["episodes"] == 1 and 0 <= row["ci95"][0] <= row["ci95"][1] <= 1
        assert row["paper_libero_long"] == paper and row["val_l2"] > 0
    assert results["runs"][0]["init_states"] == "2-2"  # the demos came from states 0-1
    md = (tmp_path / "grid" / "ablation.md").read_text()
    assert "initial states 2-2 of each task (held out)" in md and "| tanh(g) on Raw |" in md and "95.0 |" in md
    for slug in ("tanh_g__on_raw-seed0-", "no_gate-seed0-"):
        [run] = (tmp_path / "grid" / "runs").glob(slug + "*")
        assert (run / "best" / "model.safetensors").is_file() and (run / "eval" / "results.json").is_file()
    capsys.readouterr()
    again = run_ablation("vla_gate", [0], tmp_path / "grid", episodes=1, extra=extra, preset="metaworld",
                         row_numbers=[1, 2], env=env)
    assert "2 of 2 runs already" in capsys.readouterr().err
    assert [r["success_rate"] for r in again["rows"]] == [r["success_rate"] for r in results["rows"]]
