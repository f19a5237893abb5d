#!/bin/bash
# Session 16, issue 13: levers on the cpu_small recipe (seed 0 of runs/s16/mt10_small), after the reproduce run.
cd /work/main
while pgrep -f "reproduce mt10 --budget cpu_small" > /dev/null; do sleep 20; done
D=runs/s16/mt10_small/data; C=runs/s16/mt10_small/seed0/best
export OMP_NUM_THREADS=1
date
# eval-only levers, side by side (1 worker each): the CLI's default precision (auto = bf16 on this AMX CPU)
# against reproduce's fp32, and temporal ensembling (fp32)
.venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint $C --workers 1 --no-blind \
    --out runs/s16/lev_auto > runs/s16/lev_auto.log 2>&1 &
.venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint $C --workers 1 --no-blind \
    --precision fp32 --temporal-ensemble on --out runs/s16/lev_te > runs/s16/lev_te.log 2>&1 &
wait
date
# training levers, side by side (1 thread each): 12,000 steps; tower input 128 px (4x4 cells instead of 3x3)
COMMON="--dataset $D --preset pretrained_vision --policy.chunk_size 8 --policy.n_action_steps 4 --policy.state_dropout 0.5 \
 --policy.head_layers 3 --train.batch_size 64 --train.lr 1e-3 --train.warmup_steps 200 --train.eval_every 1000 --train.num_threads 1 --train.seed 0"
(.venv/bin/tinyvla train $COMMON --train.steps 12000 --out runs/s16/lev_12k > runs/s16/lev_12k.log 2>&1 && \
 .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s16/lev_12k/best --workers 1 \
    --precision fp32 --no-blind --out runs/s16/lev_12k_eval >> runs/s16/lev_12k.log 2>&1) &
(.venv/bin/tinyvla train $COMMON --train.steps 6000 --policy.tower_image_size 128 --out runs/s16/lev_128 > runs/s16/lev_128.log 2>&1 && \
 .venv/bin/tinyvla eval --env metaworld --tasks mt10 --episodes 20 --checkpoint runs/s16/lev_128/best --workers 1 \
    --precision fp32 --no-blind --out runs/s16/lev_128_eval >> runs/s16/lev_128.log 2>&1) &
wait
date
