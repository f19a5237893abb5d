#!/bin/bash
# Session 17, issue 13: the cpu_small recipe as it now stands (whole chunks executed: n_action_steps 8), retrained
# from session 16's data (linked; tower features from the cache) for seeds 0 and 1, evaluated with the blind control.
# Beside the VLA-Adapter n=8 evaluation (one worker) for its first ~10 minutes, then beside CI.
cd /work/main
export OMP_NUM_THREADS=2
date
/usr/bin/time -v .venv/bin/tinyvla reproduce mt10 --budget cpu_small --seeds 0 1 --workers 2 --threads 2 --no-blank \
    --out runs/s17/mt10_small_n8
date
