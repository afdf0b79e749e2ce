#!/usr/bin/env bash
# bench/peers/llamacpp_avx2.sh — installs the second llama.cpp peer: llama-cpp-python compiled with AVX-512 off
# (GGML_NATIVE=OFF; AVX, AVX2, FMA, F16C on; every AVX-512 and AVX-VNNI option off), into its own venv
# ${PULSE_CACHE:-.cache}/peers/llama-avx2 (ignored, never committed), beside the native build of scripts/pyref.sh.
# It is the peer of pulse's `--isa avx2` in bench/peers/lm.sh and ggml_quant.sh (LEVELS=avx2): the instruction
# level of an AVX2-only CPU (Haswell ... Zen 3), measured on any machine. Idempotent; prints the venv path.
# llama.cpp is compiled from the sdist (2 cores: ~10-20 min); --no-cache-dir so pip cannot reuse the native wheel
# it built for scripts/pyref.sh from the same sdist.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${PULSE_CACHE:-$PWD/.cache}"
VENV="$CACHE/peers/llama-avx2"
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$CACHE/peers"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
if ! "$VENV/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
    "$VENV/bin/pip" install -q numpy
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        MAKEFLAGS=-j2 "$VENV/bin/pip" install -q --no-cache-dir --no-binary llama-cpp-python llama-cpp-python
fi
# what the build says of itself (llama_print_system_info): AVX512 must read 0 here
"$VENV/bin/python" -c "import llama_cpp as L; print(L.llama_print_system_info().decode())" >&2
echo "$VENV"
