"""Collect scripts/gpu_check.sh's runs into OUT/train.json, OUT/serve.json and OUT/summary.md, beside the
issue's targets (vla_adapter paper batch-1 p50 <= 8 ms, batch 8 >= 500 chunks/s; tinyvla tiny val L2 <= 0.05
within 15 s of training; vla_adapter tiny val L2 <= 0.05 within 2 min).

    python scripts/gpu_summary.py WORK_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path


def time_to(history: list[dict], target: float) -> float | None:
    return next((r["train_seconds"] for r in history if r.get("val_l2") is not None and r["val_l2"] <= target), None)


def main(work: Path, out: Path) -> None:
    machine = json.loads((out / "machine.json").read_text())
    lines = [f"# GPU check on {machine['gpu'] or 'no GPU (CPU smoke run)'}", "",
             f"torch {machine['torch']}, CUDA {machine['cuda']}, Python {machine['python']}", "",
             "## Inference (`bench infer`, full `predict_action_chunk`)", "",
             "| policy | mode | batch-1 p50 | p99 | chunks/s at batch 8 | max err vs eager | first calls (compile/capture) |",
             "|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("infer_*.json")):
        r = json.loads(path.read_text())
        for mode, m in r["modes"].items():
            if "error" in m:
                lines.append(f"| {path.stem[6:]} | {mode} | failed: {m['error']} | | | | |")
            else:
                lines.append(f"| {path.stem[6:]} | {mode} | {m['latency_ms_p50']:.2f} ms | {m['latency_ms_p99']:.2f} ms "
                             f"| {m['chunks_per_s']:.0f} | {m['max_abs_err_vs_eager']:.2g} | {m.get('first_calls_s', '-')} s |")
    train = {}
    for run in sorted(work.glob("train_*")):
        h = json.loads((run / "history.json").read_text())
        train[run.name] = {"best_val_l2": h["best_val_l2"], "steps": h["steps"], "train_seconds": h["train_seconds"],
                           "seconds_to_0.05": time_to(h["history"], 0.05)}
    (out / "train.json").write_text(json.dumps(train, indent=2))
    lines += ["", "## Training", "", "| run | best val L2 | steps | train s | s to val L2 <= 0.05 |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['best_val_l2']:.4f} | {v['steps']} | {v['train_seconds']:.1f} | {v['seconds_to_0.05']} |"
              for k, v in train.items()]
    serve = {p.stem: json.loads(p.read_text()) for p in sorted(work.glob("serve_*.json"))}
    (out / "serve.json").write_text(json.dumps(serve, indent=2))
    lines += ["", "## Serving (WebSocket/msgpack)", "", "| clients | mode | p50 | p99 | requests/s | mean batch | errors |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['clients']} | {r.get('mode', 'eager')} | {r['latency_ms_p50']} ms | {r['latency_ms_p99']} ms | "
              f"{r['requests_per_s']} | {r['mean_batch_size']} | {r['errors']} |" for r in serve.values()]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
