#!/usr/bin/env bash
# The recipe of the shipped default model (docs/MODEL.md). Environment overrides:
#   DATA (solo cache root, default cache/data), OUT (run folder, default runs/default),
#   PY (python, default .venv/bin/python), WORKERS (data loader processes), MINUTES (time budget
#   of stage 1), STREAM_MINUTES (stage 2), SETTLE_MINUTES (stage 3), WORLD (the broad world's
#   solo cache, default cache/world), INSTRUMENT_MINUTES (stage 4).
# Stage 1: mix-and-separate from scratch (OUT). Stage 2: fine-tune those weights with the
# streaming loss (masks of the newest frames of mirrored 128-frame windows, as realtime-sep
# separates) and pick the epoch best in both views (OUT-stream/best.safetensors).
# Stage 3: the same at a third of the learning rate, picked on twice the validation
# mixtures (OUT-settle/best.safetensors).
# Stage 4: store the stage-3 model's instrument features in it (what a synchrony click picks
# among), then fine-tune the sound net and synthesizer alone on the broad world's sounds and
# the original ones, each source conditioned on its instrument's feature, the frame net
# frozen (OUT-instrument/best.safetensors: the shipped weights, stored as fp16 by
# scripts/ship_default.py). Stages 1-3 ran on a GPU, stage 4 on a 2-core CPU (docs/MODEL.md);
# the shipped stage 4 started from the fp16-stored stage-3 weights (`--init default` then),
# this script from the float32 ones.
# The solo caches need FluidSynth (scripts/setup); they are generated here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-cache/data}
OUT=${OUT:-runs/default}
WORLD=${WORLD:-cache/world}
PY=${PY:-.venv/bin/python}
if [ ! -f "$DATA/solos/manifest.json" ]; then
  "$PY" -m pixelplayer.data.cli solos --root "$DATA" --per-instrument 46 --val 4 --test 12 --seconds 8 --seed 0
fi
if [ ! -f "$WORLD/solos/manifest.json" ]; then
  "$PY" -m pixelplayer.data.cli solos --root "$WORLD" --soundfonts all --per-instrument 60 --val 4 \
    --test 8 --seconds 8 --seed 1
fi
COMMON=(--data "$DATA" --preset light --epochs 1000 --steps-per-epoch 150 --batch-size 32
        --vary-visuals --lr-frame 1e-3 --lr-sound 1e-3 --lr-synth 1e-3 --val-mixtures 32
        --workers "${WORKERS:-8}" --seed 0)
"$PY" -m pixelplayer.train_cli "${COMMON[@]}" --out "$OUT" --max-minutes "${MINUTES:-360}"
STREAM=(--stream-context 128 --stream-edge 16 --stream-weight 1)
"$PY" -m pixelplayer.train_cli "${COMMON[@]}" --out "$OUT-stream" \
  --init "$OUT/best.safetensors" "${STREAM[@]}" --max-minutes "${STREAM_MINUTES:-120}"
# Later flags win in argparse: these override COMMON's learning rates and validation size.
"$PY" -m pixelplayer.train_cli "${COMMON[@]}" --out "$OUT-settle" \
  --init "$OUT-stream/best.safetensors" "${STREAM[@]}" --max-minutes "${SETTLE_MINUTES:-60}" \
  --lr-frame 3e-4 --lr-sound 3e-4 --lr-synth 3e-4 --val-mixtures 64
"$PY" scripts/attach_instrument_features.py "$OUT-settle/best.safetensors"
exec "$PY" -m pixelplayer.train_cli --world "$WORLD" --data "$DATA" --instrument-features \
  --init "$OUT-settle/best.safetensors" --out "$OUT-instrument" --batch-size 16 \
  --steps-per-epoch 250 --epochs 40 --lr-sound 3e-4 --lr-synth 3e-4 --cpu-bf16 \
  --workers "${WORKERS:-2}" --val-mixtures 32 --stream-context 128 --stream-edge 8 \
  --max-minutes "${INSTRUMENT_MINUTES:-50}"
