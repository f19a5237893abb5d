#!/bin/bash
# Session 20: VLA-Adapter levers under cpu_small (seed 0, 20 eps/task, same scenes as session 19, no blind), then the
# baseline's third seed (with blind). Jobs one after another, alone on the 2 cores.
cd "$(dirname "$0")/../../.."
OUT=runs/s20; . docs/metaworld/lever.sh
echo "start $(date)" >> runs/s20/chain.out
lever va_mse 0 "--policy.loss mse"
lever va_ffn 0 "--policy.ffn mlp"
export OMP_NUM_THREADS=2
.venv/bin/tinyvla reproduce mt10 --budget cpu_small --policy.type vla_adapter --seeds 0 1 2 --eval-episodes 20 \
  --no-blank --workers 2 --threads 2 --out runs/s19/va_small > runs/s20/va_seed2.log 2>&1
echo "va seed2 done $(date)" >> runs/s20/chain.out
