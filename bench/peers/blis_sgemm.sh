#!/usr/bin/env bash
# bench/peers/blis_sgemm.sh — BLIS (feature-based kernel choice) against pulse's fp32 path on the same product:
# runs build/bench_blas (OpenBLAS: its own core choice, each core, pulse's selection) and the BLIS peer
# (bench/peers/blis_sgemm.c, Debian's libblis-dev, built into an ignored folder) back to back.
# Usage: bash bench/peers/blis_sgemm.sh [BUILD_DIR] [--n 1024 --threads 2 --reps 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
shift || true
[ -x "$BUILD/bench_blas" ] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }
INC=$(ls -d /usr/include/x86_64-linux-gnu/blis-* 2>/dev/null | head -1 || true)
if [ -z "$INC" ]; then
    apt-get install -y -qq libblis-dev >/dev/null
    INC=$(ls -d /usr/include/x86_64-linux-gnu/blis-* | head -1)
fi
LIB=/usr/lib/x86_64-linux-gnu/$(basename "$INC")
OUT=${PULSE_CACHE:-.cache}/peers
mkdir -p "$OUT"
cc -O2 -I"$INC" bench/peers/blis_sgemm.c -o "$OUT/blis_sgemm" -L"$LIB" -Wl,-rpath,"$LIB" -lblis -lm
echo "load: $(uptime)"
"$BUILD/bench_blas" "$@"
"$OUT/blis_sgemm" "$@"
echo "load: $(uptime)"
