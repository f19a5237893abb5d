#!/bin/bash
# Session 23, issue 13: reproduce's cpu_small recipe with the tower fed 128 px, 3 seeds x 50 episodes per task,
# blind control on every seed; seed 0 (TinyVLA) and seeds 0-2 (VLA-Adapter) were trained in session 21 with the same
# recipe on this machine (runs/s21, copied in; run_config.json checked equal). Alone on the 2 cores.
# Only the first reproduce ran: the chain was stopped during it (each 50-episode evaluation with the blind control
# took 24-26 min, so the VLA-Adapter evaluations and the blank-image run did not fit the session).
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=2
R=".venv/bin/tinyvla reproduce mt10 --budget cpu_small --seeds 0 1 2 --eval-episodes 50 --workers 2 --threads 2 --policy.tower_image_size 128"
echo "tv start $(date)" >> runs/s23/chain.out
$R --no-blank --out runs/s23/tv128 > runs/s23/tv128.log 2>&1
echo "tv done $(date) rc=$?" >> runs/s23/chain.out
$R --no-blank --policy.type vla_adapter --out runs/s23/va128 > runs/s23/va128.log 2>&1
echo "va done $(date) rc=$?" >> runs/s23/chain.out
$R --out runs/s23/tv128 > runs/s23/tv128_blank.log 2>&1
echo "tv blank done $(date) rc=$?" >> runs/s23/chain.out
