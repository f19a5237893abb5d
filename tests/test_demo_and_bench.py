import json

from tinyvla.bench import bench_train
from tinyvla.demo import run_demo
from tinyvla.pipeline import new_policy


def test_quick_demo_writes_results(tmp_path):
    results = run_demo(tmp_path / "demo", quick=True, episodes=4)
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["task"] == "toy_reach" and isinstance(saved["seed"], int)
    names = [r["policy"] for r in saved["rows"]]
    for name in ("random", "vision_only", "language_only", "tinyvla"):
        assert name in names
    for row in saved["rows"]:
        assert {"policy", "val_l2", "train_seconds", "params"} <= set(row)
        assert row["val_l2"] > 0
    assert (tmp_path / "demo" / "curves.png").stat().st_size > 1000
    assert "| tinyvla |" in (tmp_path / "demo" / "results.md").read_text()
    assert results == saved


def test_bench_train_reports_all_keys(tiny_run_config, toy_splits):
    policy = new_policy(tiny_run_config().policy, toy_splits[0])
    r = bench_train(policy, toy_splits[0], batch_size=8, seconds=0.5)
    for key in ("samples_per_s", "flops_per_sample", "achieved_tflops", "peak_tflops", "mfu", "peak_rss_mb", "dtype", "batch_size"):
        assert key in r
    assert r["samples_per_s"] > 0 and r["flops_per_sample"] > 1e5 and 0 < r["mfu"] < 1.5
