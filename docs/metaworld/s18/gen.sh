#!/bin/bash
# cpu_small's data (the recipe's generation settings), alone on the 2 cores
cd /work/main
export OMP_NUM_THREADS=1
/usr/bin/time -v .venv/bin/tinyvla data metaworld --tasks mt10 --episodes-per-task 100 --image-size 96 --camera-pos close \
  --action-noise 0.1 --workers 2 --out runs/s18/mt10_small/data > runs/s18/gen.log 2>&1
echo done >> runs/s18/gen.log
