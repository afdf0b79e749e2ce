#!/usr/bin/env bash
# bench/peers/ggml_quant.sh — build and run bench/peers/ggml_quant.c: pulse_qmatvec vs llama.cpp's ggml CPU
# kernels (from the llama-cpp-python that scripts/pyref.sh builds into ${PULSE_CACHE:-.cache}/pyref), one
# thread, same weights. Needs the pulse build in build/ (cmake --build build).
set -euo pipefail
cd "$(dirname "$0")/../.."
SP=$(ls -d "${PULSE_CACHE:-.cache}"/pyref/lib/python3*/site-packages | head -1)
LIB="$SP/llama_cpp/lib"
[ -f "$LIB/libggml-cpu.so" ] || { echo "ggml_quant: $LIB/libggml-cpu.so missing (run scripts/pyref.sh)" >&2; exit 1; }
mkdir -p build/peers
gcc -O2 -march=x86-64-v3 -std=c11 -D_GNU_SOURCE -fopenmp -Iinclude -I"$SP/include" bench/peers/ggml_quant.c \
    build/libpulse.a -L"$LIB" -lggml-cpu -lggml-base -Wl,-rpath,"$(cd "$LIB" && pwd)" \
    $(pkg-config --libs openblas libcjson sqlite3 zlib) -lm -o build/peers/ggml_quant
OMP_NUM_THREADS=1 build/peers/ggml_quant "$@"
