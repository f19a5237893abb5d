#!/bin/bash
# Session 17, issue 13 lever "more demonstrations": cpu_small's data with 200 demos per task instead of 100
# (the first 100 per task are the same episodes as runs/s16/mt10_small/data: seeds by attempt index).
cd /work/main
export OMP_NUM_THREADS=1
date
/usr/bin/time -v .venv/bin/tinyvla data metaworld --out runs/s17/data200 --tasks mt10 --episodes-per-task 200 \
    --image-size 96 --camera-pos close --action-noise 0.1 --workers 1
date
