import json

import pytest

from tinyvla.ablate import GRIDS, run_ablation
from tinyvla.data.toy import generate_toy_dataset, with_action_chunks
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


def test_a_grid_can_run_some_of_its_rows(tmp_path):
    results = run_ablation("fusion_head", [0], tmp_path, episodes=1, extra=TINY, row_numbers=[4, 1])
    assert [r["config"] for r in results["rows"]] == ["pool+add + MLP", "cross-attention + MLP"]
    with pytest.raises(ConfigError, match=r"has rows 1..6: 1. pool\+add \+ MLP"):
        run_ablation("fusion_head", [0], tmp_path, row_numbers=[7])
