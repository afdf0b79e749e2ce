#!/usr/bin/env bash
# bench/peers/lm.sh — pulse vs llama.cpp decoder throughput on the same GGUF files and threads, back to back in one
# run: build/bench_lm then bench/peers/llamacpp_lm.py per model, REPS times interleaved (ours, peer, ours, peer,
# ...), then per side the best of the REPS runs for each figure and the ratios (pulse / llama.cpp). Best-of-REPS
# for both sides because the machine may be shared: a figure is only ever lowered by other load. Also tokens per
# second of process CPU time (per_cpu_second): work efficiency, which other load moves much less than wall time.
# Usage: bash bench/peers/lm.sh [MODEL.gguf ...]   (default: both models in $PULSE_CACHE/models; THREADS=2, REPS=3)
# LEVELS="native avx2" (default "native"): one comparison per instruction level, same run. native = both sides as
# built for this CPU (llama.cpp from scripts/pyref.sh with GGML_NATIVE=ON, pulse at its detected level); avx2 =
# pulse with --isa avx2 against the llama.cpp built with AVX-512 off (bench/peers/llamacpp_avx2.sh; it is installed
# when missing), the class of AVX2-only CPUs measured on this one. Each JSON line names its level.
# Needs the reference environment ($PULSE_CACHE/pyref, scripts/pyref.sh) for llama-cpp-python.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${PULSE_CACHE:-.cache}
PY=${PYREF:-$CACHE/pyref/bin/python}
BIN=${BUILD:-build}/bench_lm
THREADS=${THREADS:-2}
REPS=${REPS:-3}
LEVELS=${LEVELS:-native}
# Both sides use OpenMP (llama.cpp's libggml-cpu links libgomp too): the same wait policy for both. PASSIVE
# (idle threads sleep instead of spinning) keeps a shared, loaded machine from collapsing fork/join; override
# with OMP_WAIT_POLICY=ACTIVE on a quiet machine, or OMP_WAIT_POLICY=default for each OpenMP's own default (what
# a user who sets nothing gets: libgomp spins a while, then sleeps).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[ "$OMP_WAIT_POLICY" = default ] && unset OMP_WAIT_POLICY
models=("$@")
[ ${#models[@]} -eq 0 ] && models=("$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$CACHE/models/gemma-3-270m-q4_k_m.gguf")
echo "load before: $(uptime); OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}, $REPS runs per side"
for lvl in $LEVELS; do
  case "$lvl" in
    native) PPY=$PY; ISA=() ;;
    avx2) PPY=$(bash bench/peers/llamacpp_avx2.sh 2>/dev/null | tail -1)/bin/python; ISA=(--isa avx2) ;;
    *) echo "lm.sh: LEVELS takes native and avx2, not '$lvl'" >&2; exit 2 ;;
  esac
  for m in "${models[@]}"; do
    [ -f "$m" ] || { echo "SKIP $m (scripts/fetch-models.sh)"; continue; }
    ours=() peer=() loads=()
    for ((r = 0; r < REPS; r++)); do
        ours_all=$(PULSE_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$BIN" "${ISA[@]}" "$m")
        echo "$ours_all"
        peer_all=$("$PPY" bench/peers/llamacpp_lm.py "$m" --threads "$THREADS" 2>/dev/null)
        echo "$peer_all"
        ours+=("$(echo "$ours_all" | tail -1)")
        peer+=("$(echo "$peer_all" | tail -1)")
        loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    done
    "$PY" - "$lvl" "${OMP_WAIT_POLICY:-default}" "${loads[*]}" "${ours[@]}" "${peer[@]}" <<'PYEOF'
import json, sys
lvl, pol, loads, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
n = len(rest) // 2
O, P = [json.loads(x) for x in rest[:n]], [json.loads(x) for x in rest[n:]]
keys = ("prefill_tok_s", "decode_tok_s", "batched_tok_s")
ckeys = ("prefill_tok_cpu_s", "decode_tok_cpu_s", "batched_tok_cpu_s")
o = {k: max(x[k] for x in O) for k in keys + ckeys}
p = {k: max(x[k] for x in P) for k in keys + ckeys}
print(json.dumps({"bench": "lm_vs_llamacpp", "level": lvl, "model": O[0]["model"], "threads": O[0]["threads"], "runs": n,
                  "pulse": {k: round(o[k], 1) for k in keys}, "llama.cpp": {k: round(p[k], 1) for k in keys},
                  "ratio": {k: round(o[k] / p[k], 3) for k in keys},
                  "per_cpu_second": {"pulse": {k: round(o[k], 1) for k in ckeys},
                                     "llama.cpp": {k: round(p[k], 1) for k in ckeys},
                                     "ratio": {k: round(o[k] / p[k], 3) for k in ckeys}},
                  "pulse_runs": {k: [round(x[k], 1) for x in O] for k in keys},
                  "llamacpp_runs": {k: [round(x[k], 1) for x in P] for k in keys},
                  "pulse_peak_rss_mb": max(x["peak_rss_mb"] for x in O),
                  "llamacpp_peak_rss_mb": round(max(x["peak_rss_mb"] for x in P), 1),
                  "rss_within_budget": all(x["rss_within_budget"] for x in O),
                  "loadavg_1min_per_run": loads, "omp_wait_policy": pol}))
PYEOF
  done
done
echo "load after: $(uptime)"
