#!/bin/bash
# Session 21, after va_img128 seed 0 (chain.sh's first run; its two later runs were stopped for these): the
# 128 px tower input on two more VLA-Adapter seeds, TinyVLA with the same input, and seed 0's blind control.
cd "$(dirname "$0")/../../.."
OUT=runs/s21; . docs/metaworld/lever.sh
echo "chain2 start $(date)" >> $OUT/chain.out
lever va_img128_seed1 1 "--policy.tower_image_size 128"
lever va_img128_seed2 2 "--policy.tower_image_size 128"
tv_lever tv_img128 0 "--policy.tower_image_size 128"
export OMP_NUM_THREADS=1
.venv/bin/tinyvla eval --env metaworld --checkpoint $OUT/va_img128/best --tasks mt10 --episodes 20 --seed 0 \
  --workers 2 --out $OUT/va_img128/eval_blind > $OUT/va_img128.eval_blind.log 2>&1
echo "va_img128 blind done $(date)" >> $OUT/chain.out
