# Sourced (from the repository root) by the session chains in s20/ and s21/: one lever run = reproduce's cpu_small
# recipe for a policy + extra flags, trained alone on the 2 cores, then evaluated on reproduce's 200 scenes (eval
# seed 0) without the blind control. Extra flags come last, so they override the recipe's (e.g. --train.steps).
# Set OUT (the runs folder) before sourcing.
D=runs/s19/mt10_small/data
mkdir -p "$OUT"
RECIPE="--preset pretrained_vision --train.steps 6000 --train.batch_size 64 --train.lr 1e-3 --train.eval_every 1000 \
 --train.warmup_steps 200 --policy.state_dropout 0.5 --policy.chunk_size 8 --policy.n_action_steps 8 --train.num_threads 2"
_run() {  # policy flags, name, training seed, extra flags
  export OMP_NUM_THREADS=2
  .venv/bin/tinyvla train --dataset $D --out $OUT/$2 $1 $RECIPE --train.seed $3 $4 > $OUT/$2.train.log 2>&1
  export OMP_NUM_THREADS=1
  .venv/bin/tinyvla eval --env metaworld --checkpoint $OUT/$2/best --tasks mt10 --episodes 20 --seed 0 --no-blind \
    --workers 2 --out $OUT/$2/eval > $OUT/$2.eval.log 2>&1
  echo "$2 done $(date)" >> $OUT/chain.out
}
lever() { _run "--policy.type vla_adapter" "$@"; }                        # name, training seed, extra flags
tv_lever() { _run "--policy.type tinyvla --policy.head_layers 3" "$@"; }  # the same for TinyVLA
