#!/bin/bash
# Session 24: TinyVLA's blank-image run of the cpu_small 128-px recipe (seed 0), into session 23's folder.
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=2
echo "blank start $(date)" >> runs/s24/chain.out
.venv/bin/tinyvla reproduce mt10 --budget cpu_small --seeds 0 1 2 --eval-episodes 50 --workers 2 --threads 2 \
    --policy.tower_image_size 128 --out runs/s23/tv128 > runs/s24/tv128_blank.log 2>&1
echo "blank done $(date) rc=$?" >> runs/s24/chain.out
