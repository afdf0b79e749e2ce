#!/usr/bin/env bash
# bench/peers/lm.sh — pulse vs llama.cpp decoder throughput on the same GGUF files and threads, back to back in one
# run: build/bench_lm then bench/peers/llamacpp_lm.py per model, then the ratios (pulse / llama.cpp).
# Usage: bash bench/peers/lm.sh [MODEL.gguf ...]   (default: both models in $PULSE_CACHE/models; THREADS=2)
# Needs the reference environment ($PULSE_CACHE/pyref, scripts/pyref.sh) for llama-cpp-python.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${PULSE_CACHE:-.cache}
PY=${PYREF:-$CACHE/pyref/bin/python}
BIN=${BUILD:-build}/bench_lm
THREADS=${THREADS:-2}
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$CACHE/models/gemma-3-270m-q4_k_m.gguf")
echo "load before: $(uptime)"
for m in "${models[@]}"; do
    [ -f "$m" ] || { echo "SKIP $m (scripts/fetch-models.sh)"; continue; }
    ours_all=$(PULSE_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$BIN" "$m")
    echo "$ours_all"
    peer_all=$("$PY" bench/peers/llamacpp_lm.py "$m" --threads "$THREADS" 2>/dev/null)
    echo "$peer_all"
    ours=$(echo "$ours_all" | tail -1)
    peer=$(echo "$peer_all" | tail -1)
    "$PY" - "$ours" "$peer" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = {k: o[k] / p[k] for k in ("prefill_tok_s", "decode_tok_s", "batched_tok_s")}
print(json.dumps({"bench": "lm_vs_llamacpp", "model": o["model"], "threads": o["threads"],
                  "pulse": {k: round(o[k], 1) for k in r}, "llama.cpp": {k: round(p[k], 1) for k in r},
                  "ratio": {k: round(v, 3) for k, v in r.items()}, "pulse_peak_rss_mb": o["peak_rss_mb"],
                  "llamacpp_peak_rss_mb": round(p["peak_rss_mb"], 1), "rss_within_budget": o["rss_within_budget"]}))
PYEOF
done
echo "load after: $(uptime)"
