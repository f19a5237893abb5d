# Sourced by chain.sh: one VLA-Adapter lever run = reproduce's cpu_small recipe + extra flags, trained alone on the
# 2 cores, then evaluated on reproduce's 200 scenes (eval seed 0) without the blind control. Flags given later on the
# command line override the recipe's (e.g. --train.steps).
D=runs/s19/mt10_small/data
OUT=runs/s21
mkdir -p $OUT
RECIPE="--policy.type vla_adapter --preset pretrained_vision --train.steps 6000 --train.batch_size 64 --train.lr 1e-3 \
 --train.eval_every 1000 --train.warmup_steps 200 --policy.state_dropout 0.5 --policy.chunk_size 8 --policy.n_action_steps 8 \
 --train.num_threads 2"
lever() {  # name, training seed, extra flags
  export OMP_NUM_THREADS=2
  .venv/bin/tinyvla train --dataset $D --out $OUT/$1 $RECIPE --train.seed $2 $3 > $OUT/$1.train.log 2>&1
  export OMP_NUM_THREADS=1
  .venv/bin/tinyvla eval --env metaworld --checkpoint $OUT/$1/best --tasks mt10 --episodes 20 --seed 0 --no-blind \
    --workers 2 --out $OUT/$1/eval > $OUT/$1.eval.log 2>&1
  echo "$1 done $(date)" >> $OUT/chain.out
}
TV_RECIPE="--policy.type tinyvla --preset pretrained_vision --train.steps 6000 --train.batch_size 64 --train.lr 1e-3 \
 --train.eval_every 1000 --train.warmup_steps 200 --policy.state_dropout 0.5 --policy.chunk_size 8 --policy.n_action_steps 8 \
 --policy.head_layers 3 --train.num_threads 2"
tv_lever() {  # the same for TinyVLA (reproduce's cpu_small TinyVLA recipe + extra flags)
  RECIPE=$TV_RECIPE lever "$@"
}
