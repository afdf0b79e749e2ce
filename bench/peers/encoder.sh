#!/usr/bin/env bash
# bench/peers/encoder.sh — runs bench_encoder (pulse) and bench/peers/encoder_torch.py (sentence-transformers /
# torch, CPU) back to back on the same checkpoint, texts, threads and shapes, and prints the ratios.
# Usage: bash bench/peers/encoder.sh [BUILD_DIR] [extra args for both, e.g. --threads 2 --n 512]
# Needs: the weights (scripts/fetch-encoders.sh) and the reference venv (scripts/pyref.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
shift || true
CACHE="${PULSE_CACHE:-$PWD/.cache}"
ENC="${PULSE_ENCODER:-$CACHE/encoders/minilm-l6}"
PY="$CACHE/pyref/bin/python"
[ -x "$BUILD/bench_encoder" ] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }
[ -f "$ENC/model.safetensors" ] || { echo "no weights in $ENC: bash scripts/fetch-encoders.sh" >&2; exit 1; }
[ -x "$PY" ] || { echo "no reference venv: bash scripts/pyref.sh --no-llama" >&2; exit 1; }
# Same OpenMP settings for both. PASSIVE: idle OpenMP threads sleep instead of spinning, so they do not take
# the cores from OpenBLAS's (or MKL's) own threads between parallel regions (override with OMP_WAIT_POLICY=...).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
echo "load: $(uptime)  OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
out_ours="$(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$BUILD/bench_encoder" --encoder "$ENC" "$@")"
echo "$out_ours"
out_peer="$(OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 "$PY" bench/peers/encoder_torch.py --encoder "$ENC" "$@" 2>/dev/null)"
echo "$out_peer"
ours="$(echo "$out_ours" | tail -1)"
peer="$(echo "$out_peer" | tail -1)"
echo "load: $(uptime)"
python3 - "$ours" "$peer" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
inf = o["infer_texts_per_s"] / p["infer_texts_per_s"]
tr = p["train_s_per_step"] / o["train_s_per_step"]
print("inference: pulse %.1f texts/s, torch %.1f texts/s -> %.2fx (target >= 2x)" % (o["infer_texts_per_s"], p["infer_texts_per_s"], inf))
print("training:  pulse %.3f s/step, torch %.3f s/step -> %.2fx faster (target >= 1.5x)" % (o["train_s_per_step"], p["train_s_per_step"], tr))
print(json.dumps({"bench": "encoder_vs_torch", "pulse": o, "torch": p, "infer_speedup": round(inf, 3), "train_speedup": round(tr, 3)}))
PY
