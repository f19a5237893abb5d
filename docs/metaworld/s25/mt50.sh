#!/bin/bash
# MT50 once with the seeing recipe (cpu_small, TinyVLA), 50 demos per task (100 would not fit 24 GiB with the tower
# features), one seed, 10 evaluation episodes per task with the blind control. Waits for runs/s25/gen.sh's data.
cd /work/main
while pgrep -f "runs/s25/gen.sh" > /dev/null; do sleep 20; done
export OMP_NUM_THREADS=2
/usr/bin/time -v .venv/bin/tinyvla reproduce mt50 --budget cpu_small --seeds 0 --no-blank --eval-episodes 10 \
    --episodes-per-task 50 --workers 2 --threads 2 --out runs/s25/mt50
