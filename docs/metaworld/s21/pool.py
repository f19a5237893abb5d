"""Pool several Meta-World results.json (one per seed) into one success rate with its Wilson 95% interval, and the
per-task rates (percent) of the pooled episodes. Run from the repository root with the project's venv.

python docs/metaworld/s21/pool.py runs/s21/va_img128/eval/results.json runs/s21/va_img128_seed1/eval/results.json
"""
import json
import sys

from tinyvla.eval.results import ClosedLoopResult

results = [json.load(open(p)) for p in sys.argv[1:]]
episodes = sum(r["overall"]["episodes"] for r in results)
successes = sum(r["overall"]["successes"] for r in results)
pooled = ClosedLoopResult(episodes=episodes, successes=successes, mean_steps=0.0)
lo, hi = pooled.confidence_interval()
print(f"{len(results)} runs, {episodes} episodes: {pooled.success_rate:.1%} ({lo:.1%}-{hi:.1%}); per run "
      + " / ".join(f"{r['overall']['success_rate']:.1%}" for r in results))
for task in results[0]["tasks"]:
    s = sum(r["tasks"][task]["successes"] for r in results)
    n = sum(r["tasks"][task]["episodes"] for r in results)
    print(f"  {task:28s} {100 * s / n:5.1f}%  ({s}/{n})")
