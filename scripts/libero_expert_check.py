"""Measure the scripted LIBERO expert: success per task over fixed initial states, no rendering.

    TINYVLA_LIBERO_PYTHON=.venv-libero/bin/python PYTHONPATH=src OMP_NUM_THREADS=1 \\
        .venv/bin/python scripts/libero_expert_check.py --suite spatial --tasks 0-9 --init-states 0-49

Prints one line per episode (to stderr) and a markdown table (to stdout). Uses the suite's step limit unless
--max-steps is given; one LIBERO worker, one env per task reused across initial states.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def parse_range(spec: str) -> list[int]:
    """'0-4,7,9' -> [0, 1, 2, 3, 4, 7, 9]"""
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="spatial")
    ap.add_argument("--tasks", default="0-9")
    ap.add_argument("--init-states", default="0-49")
    ap.add_argument("--max-steps", type=int, default=None, help="default: the suite's limit")
    args = ap.parse_args()

    from tinyvla.envs.libero import LiberoEnv

    tasks, inits = parse_range(args.tasks), parse_range(args.init_states)
    rows, total, total_ok, all_lengths, all_secs = [], 0, 0, [], []
    for task in tasks:
        env = LiberoEnv(args.suite, task, image_size=64, cameras=("image",), max_steps=args.max_steps)
        ok, lengths, secs, failed = 0, [], [], []
        for i in inits:
            t0 = time.perf_counter()
            ep = env.rollout_expert(i, render=False)
            secs.append(time.perf_counter() - t0)
            lengths.append(len(ep["actions"]))
            ok += bool(ep["success"])
            if not ep["success"]:
                failed.append(i)
            print(f"task {task} init {i}: {'ok' if ep['success'] else 'FAIL'} {len(ep['actions'])} steps "
                  f"{secs[-1]:.1f}s", file=sys.stderr, flush=True)
        limit = env.max_steps
        env.close()
        rows.append((task, ok, len(inits), statistics.median(lengths), statistics.mean(secs), failed))
        total, total_ok = total + len(inits), total_ok + ok
        all_lengths += lengths
        all_secs += secs
    spec = args.init_states
    print(f"\nsuite {args.suite}, initial states {spec}, step limit {limit}, no rendering\n")
    print("| task | successes | median episode length (steps) | seconds / episode | failed initial states |")
    print("|---|---|---|---|---|")
    for task, ok, n, med, sec, failed in rows:
        print(f"| {task} | {ok}/{n} | {med:g} | {sec:.1f} | {','.join(map(str, failed)) or '-'} |")
    print(f"| all | **{total_ok}/{total}** | {statistics.median(all_lengths):g} | "
          f"{statistics.mean(all_secs):.1f} | |")


if __name__ == "__main__":
    main()
