#!/usr/bin/env bash
# The prepared GPU training run of HiRQA-S, one command (docs/gpu_training.md):
#
#   bash training/gpu_run.sh [--minutes 7 | --budget-s S] [--out DIR] [--device auto|cuda|cpu]
#                            [--init DIR|FILE|none] [--config FILE] [--work DIR] [--smoke] [--no-gate]
#                            [--baseline DIR]
#
# Runs on a bare CUDA machine (torch, numpy, opencv, pyyaml; no internet, no install: the package is
# used from this checkout through PYTHONPATH). Needs data/pristine/{train,val} (+ manifest.json),
# data/cache/text (cached prompt embeddings); continues from the shipped model models/hirqa-s by
# default (--init: a model dir, a checkpoint, an init file, or none). --budget-s: the device seconds
# left; the training minutes are what remains after set-up, gate and pack (~4 min). Other trunks: --config
# config/train_hirqa_mnv2_gpu.yaml --init data/init/<fp16 copy of a CPU run> (docs/gpu_training.md).
# --baseline: the model dir the gate compares with (default: --init when it is one, else models/hirqa-s).
# Writes to --out (default $OUT, else out/gpu_run): weights.pt.partNN (fp16 state dict, <= 15 MiB
# each), gpu_run.json (sha256 of the parts + run summary), metrics.csv, val.csv, config.yaml, train.log,
# gate.json (full-frame evaluation of the run beside the baseline model: ship only if "improves").
# Reassemble on the CPU: hirqa gpu-run unpack --parts DIR --run runs/hirqa-s-gpu
set -uo pipefail
cd "$(dirname "$0")/.."

MINUTES=7
DEST=${OUT:-out/gpu_run}
DEVICE=auto
INIT=models/hirqa-s
BUDGET_S=""
GATE=1
CONFIG=config/train_hirqa_s_gpu.yaml
WORK=""
BASELINE=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --budget-s) BUDGET_S=$2; shift 2 ;;
    --no-gate) GATE=0; shift ;;
    --out) DEST=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --init) INIT=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    --smoke) EXTRA+=(--smoke); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ -z "$BASELINE" ]; then BASELINE=$INIT; [ -e "$BASELINE/model.yaml" ] || BASELINE=models/hirqa-s; fi
if [ -n "$BUDGET_S" ]; then  # set-up (~60 s), end validation + pack (~30 s), gate (~90 s), margin
  MINUTES=$("$PY" -c "print(max(1.0, round((float('$BUDGET_S') - 240) / 60, 1)))")
fi
WORK=${WORK:-${TMPDIR:-/tmp}/hirqa-gpu-run-$(date +%Y%m%d-%H%M%S)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-20}
mkdir -p "$DEST"
LOG="$DEST/train.log"

{
  echo "== gpu_run.sh $(date -u +%FT%TZ) minutes=$MINUTES device=$DEVICE init=$INIT config=$CONFIG work=$WORK"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import sys, torch, cv2, numpy, yaml; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
  ls data/pristine/train | wc -l | sed 's/^/train photos: /'; ls data/pristine/val | wc -l | sed 's/^/val photos: /'
} 2>&1 | tee -a "$LOG"

# hard stop well past the budget (setup + end-of-run validation); the last checkpoint is packed if it hits
LIMIT=$("$PY" -c "print(int(float('$MINUTES') * 60 + ${GPU_RUN_SLACK_S:-120}))")
timeout -k 10 "$LIMIT" "$PY" -m hirqa_ros.cli.main gpu-run train --config "$CONFIG" --work "$WORK" \
  --minutes "$MINUTES" --device "$DEVICE" --init-from "$INIT" "${EXTRA[@]}" 2>&1 | tee -a "$LOG"
RC=${PIPESTATUS[0]}
echo "== train exit code $RC" | tee -a "$LOG"
"$PY" -m hirqa_ros.cli.main gpu-run pack --work "$WORK" --out "$DEST" 2>&1 | tee -a "$LOG"
PRC=${PIPESTATUS[0]}
if [ "$GATE" -eq 1 ] && [ -d data/pristine_native/val ] && [ -e "$BASELINE/model.yaml" ]; then
  GDEV=$DEVICE; [ "$GDEV" = auto ] && GDEV=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
  GATE_ARGS=(); [ ${#EXTRA[@]} -gt 0 ] && GATE_ARGS=(--types shake jpeg_camera --frame-sizes 160x120 --max-images 2)
  timeout -k 10 "${GPU_GATE_TIMEOUT_S:-240}" "$PY" -m hirqa_ros.cli.main release gate --work "$WORK" \
    --baseline "$BASELINE" --out "$DEST" --device "$GDEV" "${GATE_ARGS[@]}" 2>&1 | tee -a "$LOG"
else
  echo "== gate skipped (needs data/pristine_native/val and a model dir as --baseline)" | tee -a "$LOG"
fi
ls -l "$DEST" | tee -a "$LOG"
[ "$RC" -eq 0 ] && [ "$PRC" -eq 0 ]
