#!/bin/bash
# Session 24, issue 13: VLA-Adapter's cpu_small 128-px seeds 0-2 (session 21, this machine, copied into runs/s23/va128)
# evaluated through reproduce at 50 episodes per task with the blind control; then TinyVLA's blank-image run of the
# same recipe (runs/s23/tv128/blank_seed0). Alone on the 2 cores.
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=2
R=".venv/bin/tinyvla reproduce mt10 --budget cpu_small --seeds 0 1 2 --eval-episodes 50 --workers 2 --threads 2 --policy.tower_image_size 128"
echo "va start $(date)" >> runs/s24/chain.out
$R --no-blank --policy.type vla_adapter --out runs/s23/va128 > runs/s24/va128.log 2>&1
echo "va done $(date) rc=$?" >> runs/s24/chain.out
$R --out runs/s23/tv128 > runs/s24/tv128_blank.log 2>&1
echo "tv blank done $(date) rc=$?" >> runs/s24/chain.out
