#!/bin/bash
# MT50 demonstrations for `tinyvla reproduce mt50 --budget cpu_small --data.episodes_per_task 50` (same config)
cd /work/main
export OMP_NUM_THREADS=1
.venv/bin/tinyvla data metaworld --tasks mt50 --episodes-per-task 50 --image-size 96 --camera-pos close \
    --action-noise 0.1 --workers 2 --out runs/s25/mt50/data
