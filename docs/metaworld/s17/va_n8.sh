#!/bin/bash
# Session 17, issue 13: the cpu_small VLA-Adapter checkpoints (runs/s17/mt10_small_va seeds 0, 1) with n_action_steps 8,
# reproduce's scenes (eval seed 0), no blind control. One worker, beside the n=8 blind-control run (2 jobs).
cd /work/main
export OMP_NUM_THREADS=1
for s in 0 1; do
  date
  .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s17/mt10_small_va/seed$s/best \
      --workers 1 --precision fp32 --no-blind --n-action-steps 8 --out runs/s17/va_n8_seed$s
done
date
