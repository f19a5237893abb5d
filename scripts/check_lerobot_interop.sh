#!/usr/bin/env bash
# LeRobot interop check, both directions, against the real `lerobot` package (not run by CI: it builds a
# ~7 GB virtual environment). What it checks and the last result: docs/datasets.md.
#
#   bash scripts/check_lerobot_interop.sh              # or: make lerobot-check
#
# Environment:
#   LEROBOT_VENV   where lerobot's own virtual environment lives (default /work/lerobot-venv; outside the repo)
#   INTEROP_DIR    scratch directory for the datasets and training runs (default /tmp/tinyvla-lerobot-interop)
#   PYTHON         the interpreter that creates LEROBOT_VENV (default python3.11)
#   TINYVLA        tinyvla's console script (default .venv/bin/tinyvla)
#
# lerobot 0.4.4 pins torch<2.11 and torchvision<0.26, which do not install here; its pins are overridden:
# torch/torchvision from the local wheels, lerobot itself --no-deps, then its other requirements as declared.
set -euo pipefail
cd "$(dirname "$0")/.."

LEROBOT_VERSION=0.4.4
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
TORCHCODEC_VERSION=0.14.*
LEROBOT_VENV=${LEROBOT_VENV:-/work/lerobot-venv}
INTEROP_DIR=${INTEROP_DIR:-/tmp/tinyvla-lerobot-interop}
PYTHON=${PYTHON:-python3.11}
TINYVLA=${TINYVLA:-.venv/bin/tinyvla}
LR="$LEROBOT_VENV/bin"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled SVT_LOG=1
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}

# ---- 1. lerobot's environment (once; a stamp file marks it complete) -----------------------------
STAMP="$LEROBOT_VENV/.tinyvla-interop-$LEROBOT_VERSION"
if [[ ! -f "$STAMP" ]]; then
    start=$(date +%s)
    if ! command -v ffmpeg >/dev/null; then  # torchcodec decodes with the system's FFmpeg libraries
        if [[ $(id -u) == 0 ]]; then apt-get install -y -q ffmpeg >/dev/null; else
            echo "install ffmpeg first (apt-get install ffmpeg)" >&2; exit 1; fi
    fi
    "$PYTHON" -m venv "$LEROBOT_VENV"
    "$LR/python" -m pip install -q --upgrade pip
    "$LR/python" -m pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
    "$LR/python" -m pip install -q --no-deps "lerobot==$LEROBOT_VERSION"
    # lerobot's own requirements (not its extras) except the three whose pins are overridden
    reqs_file="$LEROBOT_VENV/lerobot-requirements.txt"
    "$LR/python" - > "$reqs_file" <<'EOF'
import re
from importlib.metadata import requires
for line in requires("lerobot"):
    name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
    if name not in ("torch", "torchvision", "torchcodec") and "extra ==" not in line:
        print(line)
EOF
    mapfile -t reqs < "$reqs_file"
    (( ${#reqs[@]} > 10 )) || { echo "could not read lerobot's requirements" >&2; exit 1; }
    "$LR/python" -m pip install -q "${reqs[@]}" "torchcodec==$TORCHCODEC_VERSION"
    touch "$STAMP"
    echo "lerobot environment installed in $(( $(date +%s) - start )) s: $(du -sh "$LEROBOT_VENV" | cut -f1)"
fi
"$LR/python" - <<'EOF'
import importlib.metadata as m, subprocess
print("versions:", ", ".join(f"{p} {m.version(p)}" for p in ("lerobot", "torch", "torchvision", "torchcodec", "datasets", "av")),
      "|", subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0])
EOF

# ---- 2. the checks --------------------------------------------------------------------------------
D="$INTEROP_DIR"
rm -rf "$D" && mkdir -p "$D"
ours() { .venv/bin/python scripts/lerobot_interop.py "$@"; }     # tinyvla's venv (our reader)
theirs() { "$LR/python" scripts/lerobot_interop.py "$@"; }       # lerobot's venv (LeRobotDataset)
quiet() {  # run, keep the log, show its tail only on failure
    local log="$1"; shift
    "$@" > "$log" 2>&1 || { tail -40 "$log"; echo "FAIL: $* (log: $log)" >&2; exit 1; }
}
act() {  # lerobot-train, ACT, 3 steps on CPU; state and action normalised with QUANTILE10 (needs q10/q90)
    local name="$1" root="$2"
    quiet "$D/act_$name.log" "$LR/lerobot-train" --dataset.repo_id="local/$name" --dataset.root="$root" \
        --policy.type=act --policy.device=cpu --policy.push_to_hub=false --policy.pretrained_backbone_weights=null \
        --policy.normalization_mapping='{"VISUAL": "MEAN_STD", "STATE": "QUANTILE10", "ACTION": "QUANTILE10"}' \
        --steps=3 --batch_size=2 --num_workers=0 --log_freq=1 --save_checkpoint=false --wandb.enable=false \
        --output_dir="$D/act_$name"
    echo "PASS lerobot-train --policy.type=act, 3 steps, QUANTILE10 state/action, on $name ($(grep -o 'loss:[^ ]*' "$D/act_$name.log" | tail -1))"
}

echo "== tinyvla -> lerobot: Meta-World, 2 tasks x 2 episodes, 32 px, PNG frames and AV1 video"
for kind in images video; do
    flag=(); [[ $kind == video ]] && flag=(--video)
    quiet "$D/data_$kind.log" "$TINYVLA" data metaworld --tasks reach,drawer-open --episodes-per-task 2 \
        --image-size 32 --workers 1 "${flag[@]}" --out "$D/mw_$kind"
    ours dump "$D/mw_$kind" "$D/mw_$kind.npz"
    theirs read "$D/mw_$kind" "$D/mw_$kind.npz"
    act "mw_$kind" "$D/mw_$kind"
done

echo "== lerobot's dataset tools on our datasets, their output read back by both readers"
quiet "$D/tools.log" theirs tools "$D/mw_images" "$D/mw_video" "$D/tools"
grep PASS "$D/tools.log"
check_tool() {  # OUTPUT  SOURCE  EPISODES  [--lossy]  [lerobot_interop.py read options]
    local out="$D/tools/$1" name="${1//\//_}"
    ours dump "$out" "$D/$name.npz"
    theirs read "$out" "$D/$name.npz" "${@:5}"
    ours same "$D/$name.npz" "$D/$2.npz" --episodes "$3" ${4:+"$4"}
}
for kind in images video; do
    lossy=(); [[ $kind == video ]] && lossy=(--lossy)  # video tools re-encode what they cut
    check_tool "${kind}_deleted" "mw_$kind" 0,2,3 "${lossy[@]}"
    check_tool "${kind}_split/even" "mw_$kind" 0,2 "${lossy[@]}"
    check_tool "${kind}_split/odd" "mw_$kind" 1,3 "${lossy[@]}"
    check_tool "${kind}_merged" "mw_$kind" 0,2,1,3 "${lossy[@]}"
done
check_tool images_to_video mw_images 0,1,2,3 --lossy --no-camera-stats  # the tool drops the camera's stats

echo "== lerobot -> tinyvla: written by LeRobotDataset.create / add_frame / save_episode, camera $(
    "$LR/python" -c 'import sys; sys.path.insert(0, "scripts"); import lerobot_interop as m; print(m.CAMERA_FRONT)')"
for mode in image av1 h264; do
    quiet "$D/write_$mode.log" theirs write "$D/lr_$mode" --mode "$mode"
    grep PASS "$D/write_$mode.log"
    ours dump "$D/lr_$mode" "$D/lr_$mode.npz"
    theirs read "$D/lr_$mode" "$D/lr_$mode.npz"
    quiet "$D/train_$mode.log" "$TINYVLA" train --dataset "$D/lr_$mode" --out "$D/tinyvla_$mode" --device cpu \
        --train.steps 3 --train.eval_every 3 --train.progress false
    echo "PASS tinyvla train --dataset lr_$mode: $(tail -1 "$D/train_$mode.log")"
done
echo "ALL PASS"
