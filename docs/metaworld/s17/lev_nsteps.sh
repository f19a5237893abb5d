#!/bin/bash
# Session 17, issue 13 eval-only lever: actions executed per chunk (the recipe: 4 of 8) on the cpu_small TinyVLA
# checkpoints of runs/s16/mt10_small (seeds 0, 1), fp32, the same 200 scenes as reproduce; no blind control.
# One worker, beside the 200-demo lever (2 jobs on 2 cores). Starts when the vla_adapter reproduce run ends.
cd /work/main
while pgrep -f "reproduce mt10 --budget cpu_small --policy.type vla_adapter" > /dev/null; do sleep 20; done
export OMP_NUM_THREADS=1
for n in 2 8; do
  for s in 0 1; do
    date
    .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s16/mt10_small/seed$s/best \
        --workers 1 --precision fp32 --no-blind --n-action-steps $n --out runs/s17/nsteps${n}_seed$s
  done
done
date
