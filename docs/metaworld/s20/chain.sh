#!/bin/bash
# Session 20: VLA-Adapter levers under cpu_small (seed 0, 20 eps/task, same scenes as session 19, no blind), then the
# baseline's third seed (with blind). Jobs one after another, alone on the 2 cores.
cd /work/main
D=runs/s19/mt10_small/data
RECIPE="--policy.type vla_adapter --preset pretrained_vision --train.steps 6000 --train.batch_size 64 --train.lr 1e-3 \
 --train.eval_every 1000 --train.warmup_steps 200 --policy.state_dropout 0.5 --policy.chunk_size 8 --policy.n_action_steps 8 \
 --train.seed 0 --train.num_threads 2"
lever() {  # name, extra flags
  export OMP_NUM_THREADS=2
  .venv/bin/tinyvla train --dataset $D --out runs/s20/$1 $RECIPE $2 > runs/s20/$1.train.log 2>&1
  export OMP_NUM_THREADS=1
  .venv/bin/tinyvla eval --env metaworld --checkpoint runs/s20/$1/best --tasks mt10 --episodes 20 --seed 0 --no-blind \
    --workers 2 --out runs/s20/$1/eval > runs/s20/$1.eval.log 2>&1
  echo "$1 done $(date)" >> runs/s20/chain.out
}
echo "start $(date)" >> runs/s20/chain.out
lever va_mse "--policy.loss mse"
lever va_ffn "--policy.ffn mlp"
export OMP_NUM_THREADS=2
.venv/bin/tinyvla reproduce mt10 --budget cpu_small --policy.type vla_adapter --seeds 0 1 2 --eval-episodes 20 \
  --no-blank --workers 2 --threads 2 --out runs/s19/va_small > runs/s20/va_seed2.log 2>&1
echo "va seed2 done $(date)" >> runs/s20/chain.out
