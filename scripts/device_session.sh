#!/usr/bin/env bash
# One GPU session (the device tool's machine): train the default model on the carried solo
# cache, then measure the CUDA paths. Writes everything worth keeping under $OUT.
#   MINUTES: training budget; DATA: carried cache; PY: python with torch (CUDA build).
#   RESUME=1 continues /tmp/run (a second call on the same warm machine).
#   INIT=default fine-tunes the shipped weights; STREAM=128 adds the streaming loss and
#   streaming validation (pixelplayer-train --stream-context). LR sets all three nets' rates.
# What ran for the shipped weights (docs/MODEL.md): MINUTES=4.5, then RESUME=1 MINUTES=2
# (first session); then INIT=default STREAM=128 MINUTES=6 (second session); then
# INIT=default STREAM=128 LR=3e-4 VAL=64 MINUTES=8 SKIP_BENCH=1 (third session).
set -uo pipefail
OUT=${OUT:-/tmp/out}; PY=${PY:-python3}; MINUTES=${MINUTES:-6}; DATA=${DATA:-cache/gpu_carry}
mkdir -p "$OUT"
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
# The GPU image has no Debian emoji font: the carried cache brings its own copy (subset to
# the 13 instrument glyphs with fontTools: 30 KB instead of 11 MB, identical bitmaps).
[ -f "$DATA/font/NotoColorEmoji.ttf" ] && export PIXELPLAYER_EMOJI_FONT=$PWD/$DATA/font/NotoColorEmoji.ttf
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/machine.txt" 2>&1
$PY -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, platform.python_version())" >> "$OUT/machine.txt" 2>&1
date -u >> "$OUT/machine.txt"
date -u +"train start %T"
timeout $(( ${MINUTES%.*} * 60 + 120 )) $PY -m pixelplayer.train_cli --data "$DATA" --out /tmp/run \
  --preset light --epochs 1000 --steps-per-epoch ${STEPS:-150} --batch-size ${BATCH:-32} --vary-visuals \
  --val-mixtures ${VAL:-32} --workers ${WORKERS:-14} --max-minutes "$MINUTES" --seed ${SEED:-0} \
  ${RESUME:+--resume} ${INIT:+--init $INIT} ${STREAM:+--stream-context $STREAM} \
  ${STREAM_WEIGHT:+--stream-weight $STREAM_WEIGHT} ${STREAM_EDGE:+--stream-edge $STREAM_EDGE} \
  ${LR:+--lr-frame $LR --lr-sound $LR --lr-synth $LR} 2>&1 \
  | tr '\r' '\n' | grep -v 'it/s\]$' | grep -v 's/it\]$' > "$OUT/train.log"
date -u +"train end %T"
tail -n 3 "$OUT/train.log"
cp /tmp/run/log.jsonl /tmp/run/summary.json "$OUT/" 2>/dev/null
$PY - <<'PYEOF'
import os, torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open
src = "/tmp/run/best.safetensors"
if os.path.exists(src):
    with safe_open(src, "pt") as fh:
        meta = fh.metadata()
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(src).items()}
    save_file(state, os.path.join(os.environ.get("OUT", "/tmp/out"), "best_fp16.safetensors"), metadata=meta)
    print("saved fp16 weights")
PYEOF
[ -n "${SKIP_BENCH:-}" ] && exit 0
$PY benchmarks/bench_model.py --device cuda --repeats 20 > "$OUT/bench_model_cuda.txt" 2>&1
$PY benchmarks/bench_engines.py --quick --backends ${BACKENDS:-torch-cuda,torch-cuda-eager} > "$OUT/bench_engines_cuda.txt" 2>&1
$PY benchmarks/bench_engines.py --quick --hop-frames 1 --pixels 1 --streams 1,8,32,128 --backends ${BACKENDS:-torch-cuda,torch-cuda-eager} >> "$OUT/bench_engines_cuda.txt" 2>&1
date -u +"all done %T"
