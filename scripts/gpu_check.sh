#!/usr/bin/env bash
# The one-shot GPU check: every GPU figure of docs/speed.md in one run of ~8-10 minutes (TRAIN_COMPILE=0: -1.5), written as JSON and
# summary.md to $OUT (default runs/gpu_check); runs and checkpoints go to $WORK (default /tmp/tinyvla_gpu_check).
# On a GPU machine (torch + transformers installed; carry gymnasium + farama-notifications wheels in .whl/):
#   bash scripts/gpu_check.sh
# To check the script itself on a CPU in a minute:  SMOKE=1 DEVICE=cpu bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}; WORK=${WORK:-/tmp/tinyvla_gpu_check}; DEVICE=${DEVICE:-cuda}; SMOKE=${SMOKE:-0}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
if [ -d .whl ] && ! $PY -c "import gymnasium" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
TV="$PY -m tinyvla.cli"
if [ "$SMOKE" = 1 ]; then
    MODES=eager; CALLS=3; STEPS=4; VLA_BUDGET=5; PAPER=tiny; SERVE_MODE=eager; DATA="--data.num_train 256 --data.num_val 64"
else
    MODES=eager,compile,cudagraph; CALLS=100; STEPS=1200; VLA_BUDGET=120; PAPER=paper; SERVE_MODE=cudagraph; DATA=""
fi
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/gpu_check.log"; }

$PY - > "$OUT/machine.json" <<'PYEOF'
import json, platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
print(json.dumps({"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}))
PYEOF

log "1/4 inference: vla_adapter --preset $PAPER and tinyvla tiny, modes $MODES, batch 1 and 8"
$TV bench infer --policy.type vla_adapter --preset $PAPER --mode $MODES --calls $CALLS --batch-size 8 \
    --device "$DEVICE" --json "$OUT/infer_vla_adapter_$PAPER.json" >> "$WORK/infer.log" 2>&1
$TV bench infer --policy.type tinyvla --preset tiny --mode $MODES --calls $CALLS --batch-size 8 \
    --device "$DEVICE" --json "$OUT/infer_tinyvla_tiny.json" >> "$WORK/infer.log" 2>&1

log "2/4 training: tinyvla tiny, 3 seeds, $STEPS steps (time to val L2 <= 0.05 from each history)"
for s in 0 1 2; do
    $TV train --preset tiny --device "$DEVICE" --train.seed $s --train.steps $STEPS --train.eval_every 100 \
        --train.progress false $DATA --out "$WORK/train_tiny_s$s" >> "$WORK/train.log" 2>&1
done
if [ "${TRAIN_COMPILE:-1}" = 1 ]; then  # the same run with a compiled training forward + fused AdamW
    $TV train --preset tiny --device "$DEVICE" --train.seed 0 --train.steps $STEPS --train.eval_every 100 \
        --train.compile $([ "$SMOKE" = 1 ] && echo false || echo true) --train.progress false $DATA \
        --out "$WORK/train_tiny_compiled_s0" >> "$WORK/train.log" 2>&1
fi
log "3/4 training: vla_adapter tiny for ${VLA_BUDGET} s"
$TV train --policy.type vla_adapter --preset tiny --device "$DEVICE" --train.time_budget_s $VLA_BUDGET \
    --train.eval_every 200 --train.progress false $DATA --out "$WORK/train_vla_tiny" >> "$WORK/train.log" 2>&1

log "4/4 serving: 1 and 32 clients, mode $SERVE_MODE"
for c in 1 32; do
    $TV bench serve --checkpoint "$WORK/train_tiny_s0/best" --device "$DEVICE" --mode $SERVE_MODE --clients $c \
        --requests $([ "$SMOKE" = 1 ] && echo 3 || echo 50) --transport ws --json "$WORK/serve_$c.json" >> "$WORK/serve.log" 2>&1
done
$PY scripts/gpu_summary.py "$WORK" "$OUT"
log "done: $OUT/summary.md"
