#!/usr/bin/env bash
# bench/peers/encoder.sh — runs bench_encoder (pulse) and bench/peers/encoder_torch.py (sentence-transformers /
# torch, CPU) back to back on the same checkpoint, texts, threads and shapes, in fp32 and in bf16 (ours: bf16
# products with fp32 sums; torch: torch.autocast('cpu', dtype=torch.bfloat16)), and prints the ratios:
# ours fp32 vs torch fp32, ours bf16 vs torch fp32, ours bf16 vs torch bf16.
# Usage: bash bench/peers/encoder.sh [BUILD_DIR] [extra args for both, e.g. --threads 2 --n 512]
#   PRECISIONS="fp32 bf16" (default) picks the precisions run. REPS=2 (default): each side runs that many
#   times, interleaved (ours, peer, ours, peer), and each figure is the side's best (the host's speed moves
#   between runs; a figure is only ever lowered by it).
#   LEVEL=avx2 measures both sides at the AVX2 level on any machine (the class of AVX2-only CPUs): pulse with
#   --isa avx2 (AVX2 + FMA products, OpenBLAS's Haswell kernels, no AVX-512 / VNNI / BF16), torch with
#   ATEN_CPU_CAPABILITY=avx2 (its AVX2 kernels; oneDNN and MKL capped at AVX2: ONEDNN_MAX_CPU_ISA,
#   MKL_ENABLE_INSTRUCTIONS; its JSON line names the capability torch reports). The default LEVEL=native runs
#   each at its best for this CPU. bf16 at avx2: both sides fall back to their non-bf16 paths, so PRECISIONS
#   defaults to fp32 there.
# Both get the same OpenMP environment: OMP_NUM_THREADS = MKL_NUM_THREADS = OPENBLAS_NUM_THREADS = 2 and
# OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning; override with OMP_WAIT_POLICY=...).
# PASSIVE is the peer-friendly choice on a shared machine: measured at load 5-7 on 2 cores (n 256, fp32
# inference), torch went from 16-20 texts/s with the runtime default to 29-30 with PASSIVE, ours from 21-28 to
# 26-37.
# Needs: the weights (scripts/fetch-encoders.sh) and the reference venv (scripts/pyref.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
shift || true
CACHE="${PULSE_CACHE:-$PWD/.cache}"
ENC="${PULSE_ENCODER:-$CACHE/encoders/minilm-l6}"
PY="$CACHE/pyref/bin/python"
LEVEL="${LEVEL:-native}"
REPS="${REPS:-2}"
case "$LEVEL" in
native) isa=(); peer_env=(); PRECISIONS="${PRECISIONS:-fp32 bf16}" ;;
avx2) isa=(--isa avx2); peer_env=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2); PRECISIONS="${PRECISIONS:-fp32}" ;;
*) echo "encoder.sh: LEVEL takes native or avx2, not '$LEVEL'" >&2; exit 2 ;;
esac
[ -x "$BUILD/bench_encoder" ] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }
[ -f "$ENC/model.safetensors" ] || { echo "no weights in $ENC: bash scripts/fetch-encoders.sh" >&2; exit 1; }
[ -x "$PY" ] || { echo "no reference venv: bash scripts/pyref.sh --no-llama" >&2; exit 1; }
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
echo "load: $(uptime)  OMP_WAIT_POLICY=$OMP_WAIT_POLICY  LEVEL=$LEVEL"
results=()
for prec in $PRECISIONS; do
  for ((rep = 0; rep < REPS; rep++)); do
    out_ours="$(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$BUILD/bench_encoder" "${isa[@]}" --encoder "$ENC" --precision "$prec" "$@")"
    echo "$out_ours"
    out_peer="$(env "${peer_env[@]}" OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 "$PY" bench/peers/encoder_torch.py --encoder "$ENC" --precision "$prec" "$@" 2>/dev/null)"
    echo "$out_peer"
    results+=("$(echo "$out_ours" | tail -1)" "$(echo "$out_peer" | tail -1)")
  done
done
echo "load: $(uptime)"
python3 - "$LEVEL" "${results[@]}" <<'PY'
import json, sys
level = sys.argv.pop(1)
runs = {}
for s in sys.argv[1:]:  # best of the repetitions per side: highest texts/s, lowest s/step
    o = json.loads(s)
    key = ("pulse" if o["impl"] == "pulse" else "torch", o.get("precision", "fp32"))
    if key in runs:
        b = runs[key]
        o["infer_texts_per_s"] = max(o["infer_texts_per_s"], b["infer_texts_per_s"])
        o["train_s_per_step"] = min(o["train_s_per_step"], b["train_s_per_step"])
    o["reps"] = runs[key]["reps"] + 1 if key in runs else 1
    runs[key] = o
rows = []
def cmp(ours, peer):
    if ours not in runs or peer not in runs:
        return
    o, p = runs[ours], runs[peer]
    inf = o["infer_texts_per_s"] / p["infer_texts_per_s"]
    tr = p["train_s_per_step"] / o["train_s_per_step"]
    # issue 16's targets: >= 1.5x torch at AVX2 (fp32), >= 2x torch's best at the native level
    tgt = "1.5x" if level == "avx2" else "2x"
    print("[%s] pulse %s vs torch %s: inference %.1f vs %.1f texts/s -> %.2fx (target >= %s); "
          "training %.3f vs %.3f s/step -> %.2fx faster (target >= %s)" % (
              level, ours[1], peer[1], o["infer_texts_per_s"], p["infer_texts_per_s"], inf, tgt,
              o["train_s_per_step"], p["train_s_per_step"], tr, tgt))
    rows.append({"pulse": ours[1], "torch": peer[1], "infer_speedup": round(inf, 3), "train_speedup": round(tr, 3)})
cmp(("pulse", "fp32"), ("torch", "fp32"))
cmp(("pulse", "bf16"), ("torch", "fp32"))
cmp(("pulse", "bf16"), ("torch", "bf16"))
print(json.dumps({"bench": "encoder_vs_torch", "level": level, "runs": list(runs.values()), "comparisons": rows}))
PY
