#!/bin/bash
# Pretrained toy condition grid, all-layer AQ and Raw rows, 3 seeds on this machine (row 1 "both, all layers" with no
# gate is the gate grid's "no gate" row). 20 episodes per run instead of 50 to fit the session (success does not
# separate these rows; val L2 does).
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1
tinyvla ablate --grid vla_conditions --rows 2 3 --preset pretrained --seeds 0 1 2 --episodes 20 --train.steps 600 \
    --train.eval_every 100 --policy.gate none --workers 2 --out runs/s22/vla_cond_pre
