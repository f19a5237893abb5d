#!/bin/bash
# Session 21: VLA-Adapter levers, one after another, alone on the 2 cores. Only the first (128-px tower input) ran:
# its result made seeds 1-2 of it worth more than the other two, so they were stopped at their start for chain2.sh.
cd "$(dirname "$0")/../../.."
OUT=runs/s21; . docs/metaworld/lever.sh
echo "start $(date)" >> $OUT/chain.out
lever va_img128 0 "--policy.tower_image_size 128"
lever va_steps12k 0 "--train.steps 12000"
lever va_lr3e-4 0 "--train.lr 3e-4"
