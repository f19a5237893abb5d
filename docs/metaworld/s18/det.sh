#!/bin/bash
# Ran before the renderer fix (15429f0): w1 and w2 differed (push mean steps 391.5 vs 391.375).
# Does an evaluation reproduce with another worker count? seed 0's checkpoint, 3 tasks x 8 episodes, no blind
# control, the policy on 1 torch thread; workers 1 vs 2 at the default --envs 16 (and --envs 8 for contrast).
cd /work/main
export OMP_NUM_THREADS=1
C=runs/s18/mt10_small/seed0/best
for w in 1 2; do
  .venv/bin/tinyvla eval --env metaworld --tasks reach,push,door-open --episodes 8 --no-blind --videos 0 --threads 1 \
    --workers $w --checkpoint $C --out runs/s18/det_w$w > runs/s18/det_w$w.log 2>&1
done
.venv/bin/tinyvla eval --env metaworld --tasks reach,push,door-open --episodes 8 --no-blind --videos 0 --threads 1 \
  --workers 1 --envs 8 --checkpoint $C --out runs/s18/det_e8 > runs/s18/det_e8.log 2>&1
.venv/bin/python - <<'PY'
import json
r = {k: json.load(open(f"runs/s18/det_{k}/results.json")) for k in ("w1", "w2", "e8")}
for k, v in r.items():
    print(k, "envs", v["envs"], "threads", v["threads"], {t: (x["successes"], round(x["mean_episode_steps"], 3)) for t, x in v["tasks"].items()})
print("w1 == w2:", r["w1"]["tasks"] == r["w2"]["tasks"])
PY
