#!/bin/bash
# Session 19: 4 of 8 actions executed per chunk, the same 20 episodes per task as the 8-of-8 evaluations (sighted only)
cd /work/main
while ! grep -q '^done' runs/s19/tv.log 2>/dev/null; do sleep 20; done
export OMP_NUM_THREADS=2
for ck in mt10_small/seed0; do
  /usr/bin/time -v .venv/bin/tinyvla eval --env metaworld --checkpoint runs/s19/$ck/best --tasks mt10 --episodes 20 \
    --n-action-steps 4 --no-blind --workers 2 --threads 2 --out runs/s19/$ck/eval_4of8_20ep > runs/s19/${ck//\//_}_4of8.log 2>&1
done
echo done >> runs/s19/chain2.log
