"""Pool several Meta-World results.json (one per seed) the way `tinyvla reproduce` pools its seeds: one success
rate with its Wilson 95% interval over every episode, and the per-task rates of the pooled episodes.

python docs/metaworld/s21/pool.py runs/s21/va_img128/eval/results.json runs/s21/va_img128_seed1/eval/results.json
"""
import json
import sys

from tinyvla.reproduce import _pooled

results = [json.load(open(p)) for p in sys.argv[1:]]
p = _pooled(results)
lo, hi = p["ci95"]
print(f"{len(results)} runs, {p['episodes']} episodes: {p['mean']:.1%} ({lo:.1%}-{hi:.1%}); per run "
      + " / ".join(f"{m:.1%}" for m in p["per_seed"]))
for task in results[0]["tasks"]:
    s = sum(r["tasks"][task]["successes"] for r in results)
    n = sum(r["tasks"][task]["episodes"] for r in results)
    print(f"  {task:28s} {100 * s / n:5.1f}%  ({s}/{n})")
