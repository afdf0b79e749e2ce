#!/usr/bin/env bash
# scripts/pyref.sh — creates the Python *reference* environment used only by fixture scripts (scripts/) and peer
# benchmarks (bench/peers/): torch, transformers, sentence-transformers, safetensors, tokenizers, gguf,
# llama-cpp-python (built from source here). The pulse product never needs it.
# Usage: bash scripts/pyref.sh [--no-llama]   → prints the venv path; activate with: . "$PULSE_CACHE/pyref/bin/activate"
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PULSE_CACHE:-$PWD/.cache}"
VENV="$CACHE/pyref"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch, transformers, sentence_transformers, safetensors, tokenizers, gguf, numpy" 2>/dev/null; then
    "$VENV/bin/pip" install -q torch transformers sentence-transformers safetensors tokenizers gguf numpy sentencepiece
fi
if [ "${1:-}" != "--no-llama" ] && ! "$PY" -c "import llama_cpp" 2>/dev/null; then
    # llama.cpp compiled for this CPU (2 cores: ~10-20 min the first time)
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" MAKEFLAGS=-j2 \
        "$VENV/bin/pip" install -q llama-cpp-python
fi
echo "$VENV"
