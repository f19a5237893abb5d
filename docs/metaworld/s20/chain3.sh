#!/bin/bash
# Session 20, after chain2.sh: the no-gate lever's second seed (seed 1, paired with session 19's VLA-Adapter seed 1
# on the same 200 scenes). Alone on the 2 cores.
cd /work/main
while pgrep -f runs/s20/chain2.sh > /dev/null; do sleep 20; done
D=runs/s19/mt10_small/data
export OMP_NUM_THREADS=2
.venv/bin/tinyvla train --dataset $D --out runs/s20/va_nogate_seed1 --policy.type vla_adapter --preset pretrained_vision \
  --train.steps 6000 --train.batch_size 64 --train.lr 1e-3 --train.eval_every 1000 --train.warmup_steps 200 \
  --policy.state_dropout 0.5 --policy.chunk_size 8 --policy.n_action_steps 8 --train.seed 1 --train.num_threads 2 \
  --policy.gate none > runs/s20/va_nogate_seed1.train.log 2>&1
export OMP_NUM_THREADS=1
.venv/bin/tinyvla eval --env metaworld --checkpoint runs/s20/va_nogate_seed1/best --tasks mt10 --episodes 20 --seed 0 \
  --no-blind --workers 2 --out runs/s20/va_nogate_seed1/eval > runs/s20/va_nogate_seed1.eval.log 2>&1
echo "va_nogate_seed1 done $(date)" >> runs/s20/chain.out
