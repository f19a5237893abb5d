#!/bin/bash
# Session 17, issue 13: the cpu_small TinyVLA checkpoints (runs/s16/mt10_small seeds 0, 1) with n_action_steps 8 under
# reproduce's protocol (fp32, 20 episodes per task, eval seed 0, WITH the blind control). One worker, beside the
# fresh-scene evaluations (2 jobs on 2 cores).
cd /work/main
export OMP_NUM_THREADS=1
for s in 0 1; do
  date
  .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s16/mt10_small/seed$s/best \
      --workers 1 --precision fp32 --n-action-steps 8 --out runs/s17/n8_blind_seed$s
done
date
