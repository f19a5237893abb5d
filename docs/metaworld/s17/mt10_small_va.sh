#!/bin/bash
# Session 17, issue 13: vla_adapter under the cpu_small budget (preset pretrained_vision: frozen EfficientNet-Lite0,
# scratch 128x4 backbone, gate on Raw), on the data of runs/s16/mt10_small (linked), 2 seeds with the blind control.
# One thread / one worker, beside the 200-demo lever (2 jobs on 2 cores).
cd /work/main
export OMP_NUM_THREADS=1
date
/usr/bin/time -v .venv/bin/tinyvla reproduce mt10 --budget cpu_small --policy.type vla_adapter --seeds 0 1 --workers 1 \
    --threads 1 --no-blank --out runs/s17/mt10_small_va
date
