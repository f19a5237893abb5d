#!/bin/bash
# Session 24 (issue 14): the condition grid's single-layer rows (4: AQ from the last layer, 5: Raw from the middle
# layer) with the pretrained backbone, 3 seeds, into the folder of session 22's all-layer rows (the same recipe: 600
# steps, 20 episodes, no gate; two runs side by side on one torch thread each). As run from runs/s24/chain2.sh, after
# the Meta-World evaluations of that session finished.
cd "$(dirname "$0")/../../.." && source .venv/bin/activate
export OMP_NUM_THREADS=1
tinyvla ablate --grid vla_conditions --rows 4 5 --preset pretrained --seeds 0 1 2 --episodes 20 --train.steps 600 \
    --train.eval_every 100 --policy.gate none --workers 2 --out runs/s22/vla_cond_pre
python docs/pretrained/s24/paired.py
