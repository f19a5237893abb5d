"""Two `tinyvla reproduce` Meta-World reports side by side: pooled success, blind control, per seed, by difficulty
and per task, and the difference of the pooled rates with a 95% interval (Newcombe's hybrid score interval from the
two Wilson intervals; the episodes of the two reports are the same scenes, but the runs are independent trainings).

python docs/metaworld/s23/compare.py docs/metaworld/s18/mt10_small_report.json docs/metaworld/s23/mt10_small_128px_report.json
"""
import json
import math
import sys

a, b = (json.load(open(p)) for p in sys.argv[1:3])
names = [p.split("/")[-1].removesuffix("_report.json").removesuffix(".json") for p in sys.argv[1:3]]


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


for name, r in zip(names, (a, b)):
    s = r["success"]
    print(f"{name}: {pct(s['mean'])} ({pct(s['ci95'][0])}-{pct(s['ci95'][1])}, {s['episodes']} episodes), per seed "
          f"{' / '.join(pct(x) for x in s['per_seed'])}; blind control {pct(r['blind_success'])}, vision dependence "
          f"{r['vision_dependence']:+.1f} pts; " + " / ".join(f"{g} {pct(v)}" for g, v in sorted(r["by_difficulty"].items())))
# Newcombe (1998) method 10: the difference's interval from each rate's Wilson interval.
(p1, (l1, u1)), (p2, (l2, u2)) = ((r["success"]["mean"], r["success"]["ci95"]) for r in (a, b))
d = p2 - p1
lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
print(f"{names[1]} - {names[0]}: {100 * d:+.1f} points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f})")
print("per seed, the same scenes: " + ", ".join(f"{100 * (y - x):+.1f}" for x, y in
                                                 zip(a["success"]["per_seed"], b["success"]["per_seed"])))
print(f"{'task':28s} {names[0]:>22s} {names[1]:>22s}  (success / blind)")
for t in a["tasks"]:
    x, y = a["tasks"][t], b["tasks"][t]
    print(f"{t:28s} {pct(x['success_rate']):>11s} / {pct(x['blind_success']):>7s} "
          f"{pct(y['success_rate']):>11s} / {pct(y['blind_success']):>7s}")
