"""MT50 report -> the difficulty breakdown beside SmolVLA's, Wilson CIs per group, and the MT10 tasks inside it.

python docs/metaworld/s25/summary.py docs/metaworld/s25/mt50_report.json [docs/metaworld/s23/mt10_small_128px_report.json]
"""

import json
import sys

from tinyvla.envs.metaworld import DIFFICULTY, MT10
from tinyvla.eval.results import ClosedLoopResult


def wilson_interval(successes: int, episodes: int) -> tuple[float, float]:
    return ClosedLoopResult(episodes, successes, 0.0).confidence_interval()


SMOLVLA = {"easy": 82.5, "medium": 41.8, "hard": 45.0, "very_hard": 60.0, "MT50": 57.3}

r = json.load(open(sys.argv[1]))
episodes = r["eval_episodes_per_task"] * len(r["seeds"])
print(f"MT50, {len(r['seeds'])} seed(s), {episodes} episodes per task; SmolVLA 0.45B from its paper (GPU, 512 px)")
print("| group | tasks | success (95% CI) | blind control | vision dependence | SmolVLA |")
print("|---|---|---|---|---|---|")
groups = {**DIFFICULTY, "MT50": [t for ts in DIFFICULTY.values() for t in ts]}
for name, tasks in groups.items():
    rows = [r["tasks"][t] for t in tasks]
    s = sum(x["success_rate"] for x in rows) / len(rows)
    b = sum(x["blind_success"] for x in rows) / len(rows)
    lo, hi = wilson_interval(round(s * episodes * len(rows)), episodes * len(rows))
    print(f"| {name} | {len(rows)} | {100 * s:.1f}% ({100 * lo:.1f}-{100 * hi:.1f}%) | {100 * b:.1f}% | "
          f"{100 * (s - b):+.1f} | {SMOLVLA[name]:.1f}% |")
rows = [r["tasks"][t] for t in MT10]
s = sum(x["success_rate"] for x in rows) / len(rows)
lo, hi = wilson_interval(round(s * episodes * 10), episodes * 10)
print(f"\nThe MT10 tasks inside this MT50 policy: {100 * s:.1f}% ({100 * lo:.1f}-{100 * hi:.1f}%, {episodes * 10} episodes)")
if len(sys.argv) > 2:
    m = json.load(open(sys.argv[2]))
    print(f"the MT10 policy ({m['success']['episodes']} episodes): {100 * m['success']['mean']:.1f}%")
    for t in MT10:
        print(f"  {t:28s} MT50 policy {100 * r['tasks'][t]['success_rate']:5.1f}%   MT10 policy "
              f"{100 * m['tasks'][t]['success_rate']:5.1f}%")
print("\nPer task, lowest first:")
for t, x in sorted(r["tasks"].items(), key=lambda kv: kv[1]["success_rate"]):
    print(f"  {t:30s} {x['difficulty']:9s} {100 * x['success_rate']:5.1f}%  blind {100 * x['blind_success']:5.1f}%")
