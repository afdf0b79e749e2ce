#!/usr/bin/env bash
# bench/peers/peft_lora.sh — the PyTorch + PEFT peer of bench/lora (LoRA training tokens/s and peak RSS):
# bench/peers/peft_lora.py once per precision (fp32, then bf16 autocast), each in its own process (peak RSS is
# per process), the same model, shapes and threads as bench/lora: batch 8 prompts of 256 tokens, 16 loss
# tokens each, 2 threads. Each run's last line is JSON; this script prints them and then one summary JSON line
# {"bench":"lora_peers","fp32":{...},"bf16":{...}} for the lead's comparison with pulse's bench/lora output.
# Usage: bash bench/peers/peft_lora.sh [MODEL.gguf] [extra args for peft_lora.py, e.g. --steps 5]
#   PRECISIONS="fp32 bf16" (default), THREADS=2. Run it on a quiet machine: it takes minutes.
# Same OpenMP environment for both sides: OMP_NUM_THREADS = MKL_NUM_THREADS = THREADS, OMP_WAIT_POLICY=PASSIVE
# (OMP_WAIT_POLICY=default: unset, each OpenMP's own default, what a user who sets nothing gets).
# Needs the reference venv (scripts/pyref.sh) with peft (pip install peft).
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${PULSE_CACHE:-$PWD/.cache}"
PY="${PYREF:-$CACHE/pyref/bin/python}"
MODEL="${1:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
shift || true
THREADS="${THREADS:-2}"
PRECISIONS="${PRECISIONS:-fp32 bf16}"
[ -f "$MODEL" ] || { echo "no model $MODEL: bash scripts/fetch-models.sh" >&2; exit 1; }
[ -x "$PY" ] || { echo "no reference venv: bash scripts/pyref.sh --no-llama" >&2; exit 1; }
"$PY" -c "import peft" 2>/dev/null || { echo "no peft in $PY: $(dirname "$PY")/pip install peft" >&2; exit 1; }
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
[ "$OMP_WAIT_POLICY" = default ] && unset OMP_WAIT_POLICY # each OpenMP's own default, as bench/peers/lm.sh
echo "load: $(uptime)  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default} threads=$THREADS"
summary="{\"bench\":\"lora_peers\""
for prec in $PRECISIONS; do
    out="$("$PY" bench/peers/peft_lora.py "$MODEL" --precision "$prec" --threads "$THREADS" "$@" 2>/dev/null)"
    echo "$out"
    summary="$summary,\"$prec\":$(echo "$out" | tail -1)"
done
echo "$summary}"
