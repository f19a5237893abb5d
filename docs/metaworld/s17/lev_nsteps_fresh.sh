#!/bin/bash
# Session 17, issue 13: n_action_steps 8 vs the recipe's 4 on FRESH scenes (eval --seed 1: 200 scenes that no lever
# was chosen on), cpu_small TinyVLA seeds 0 and 1 of runs/s16/mt10_small. One worker, beside the seed-2 run.
cd /work/main
while pgrep -f "lev_nsteps.sh" > /dev/null; do sleep 20; done
export OMP_NUM_THREADS=1
for s in 0 1; do
  for n in 8 4; do
    date
    .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --seed 1 --checkpoint runs/s16/mt10_small/seed$s/best \
        --workers 1 --precision fp32 --no-blind --n-action-steps $n --out runs/s17/fresh_nsteps${n}_seed$s
  done
done
date
