#!/usr/bin/env bash
# bench/peers/ggml_quant.sh — build and run bench/peers/ggml_quant.c: pulse_qmatvec vs llama.cpp's ggml CPU
# kernels (from the llama-cpp-python that scripts/pyref.sh builds into ${PULSE_CACHE:-.cache}/pyref), one
# thread, same weights. Needs the pulse build in build/ (cmake --build build).
# LEVEL=avx2: pulse with --isa avx2 against the ggml of bench/peers/llamacpp_avx2.sh (AVX-512 off; installed
# when missing): the AVX2-only class on any machine. Default LEVEL=native: both as built for this CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
LEVEL=${LEVEL:-native}
case "$LEVEL" in
    native) VENV="${PULSE_CACHE:-.cache}/pyref"; ISA=(); OUT=build/peers/ggml_quant ;;
    avx2) VENV=$(bash bench/peers/llamacpp_avx2.sh 2>/dev/null | tail -1); ISA=(--isa avx2); OUT=build/peers/ggml_quant_avx2 ;;
    *) echo "ggml_quant: LEVEL is native or avx2, not '$LEVEL'" >&2; exit 2 ;;
esac
SP=$(ls -d "$VENV"/lib/python3*/site-packages | head -1)
LIB="$SP/llama_cpp/lib"
[ -f "$LIB/libggml-cpu.so" ] || { echo "ggml_quant: $LIB/libggml-cpu.so missing (run scripts/pyref.sh)" >&2; exit 1; }
mkdir -p build/peers
gcc -O2 -march=x86-64-v3 -std=c11 -D_GNU_SOURCE -fopenmp -Iinclude -I"$SP/include" bench/peers/ggml_quant.c \
    build/libpulse.a -L"$LIB" -lggml-cpu -lggml-base -Wl,-rpath,"$(cd "$LIB" && pwd)" \
    $(pkg-config --libs openblas libcjson sqlite3 zlib) -lm -o "$OUT"
OMP_NUM_THREADS=1 "$OUT" "${ISA[@]}" "$@"
