#!/bin/bash
# Session 19: cpu_small data once; VLA-Adapter 3 seeds (20 eps/task + blind); TinyVLA seed 0 + blank-trained (20 eps/task)
cd /work/main
export OMP_NUM_THREADS=1
/usr/bin/time -v .venv/bin/tinyvla data metaworld --tasks mt10 --episodes-per-task 100 --image-size 96 --camera-pos close \
  --action-noise 0.1 --workers 2 --out runs/s19/mt10_small/data > runs/s19/gen.log 2>&1
echo done >> runs/s19/gen.log
mkdir -p runs/s19/va_small && ln -sfn ../mt10_small/data runs/s19/va_small/data
export OMP_NUM_THREADS=2
/usr/bin/time -v .venv/bin/tinyvla reproduce mt10 --budget cpu_small --policy.type vla_adapter --seeds 0 1 2 --eval-episodes 20 \
  --no-blank --workers 2 --threads 2 --out runs/s19/va_small > runs/s19/va.log 2>&1
echo done >> runs/s19/va.log
/usr/bin/time -v .venv/bin/tinyvla reproduce mt10 --budget cpu_small --seeds 0 --eval-episodes 20 \
  --workers 2 --threads 2 --out runs/s19/mt10_small > runs/s19/tv.log 2>&1
echo done >> runs/s19/tv.log
