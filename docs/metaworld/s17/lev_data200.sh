#!/bin/bash
# Session 17, issue 13 lever "more demonstrations": the cpu_small recipe (as reproduce trains it) on 200 demos per task
# instead of 100, seeds 0 and 1, each evaluated as reproduce does (fp32, 20 episodes per task, seed 0, blind control).
# One thread / one worker, beside the vla_adapter reproduce run (2 jobs on 2 cores).
cd /work/main
while pgrep -f "data metaworld --out runs/s17/data200" > /dev/null; do sleep 20; done
D=runs/s17/data200
export OMP_NUM_THREADS=1
COMMON="--dataset $D --preset pretrained_vision --policy.chunk_size 8 --policy.n_action_steps 4 --policy.state_dropout 0.5 \
 --policy.head_layers 3 --train.batch_size 64 --train.lr 1e-3 --train.warmup_steps 200 --train.eval_every 1000 \
 --train.num_threads 1 --train.steps 6000"
for s in 0 1; do
  date
  .venv/bin/tinyvla train $COMMON --train.seed $s --out runs/s17/d200_seed$s
  date
  .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s17/d200_seed$s/best --workers 1 \
      --precision fp32 --out runs/s17/d200_seed$s/eval
done
date
