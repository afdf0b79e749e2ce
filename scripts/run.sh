#!/usr/bin/env bash
# scripts/run.sh — the README's main job: install the build dependencies, build (Release), then on the default
# dataset (../shared/data/amazon-beauty, or --data DIR) print the dataset statistics and train + evaluate SASRec
# with the defaults (full-softmax CE, d=64, 2 blocks, 1 head, dropout 0.2, len 50, batch 128, Adam 1e-3, early
# stopping on valid NDCG@10). The last stdout line is the test metrics JSON of the best-valid model.
#
#   bash scripts/run.sh [--data DIR] [--out DIR] [any further `pulse sasrec train` options, e.g. --loss bce]
#
# Without ../shared/data, fetch the data first: scripts/fetch-data.sh --titles amazon-beauty (then --data
# .cache/data/amazon-beauty). The run is resumable: rerunning continues from out/<dataset>/sasrec.bin.ckpt (out/ is git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

data=""
out=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
    esac
done
if [ -z "$data" ]; then
    for d in ../shared/data/amazon-beauty "${PULSE_CACHE:-.cache}/data/amazon-beauty"; do
        if [ -f "$d/sequences.txt" ]; then data="$d"; break; fi
    done
fi
if [ -z "$data" ] || [ ! -d "$data" ]; then
    echo "run.sh: no dataset found: expected ../shared/data/amazon-beauty; fetch it with" >&2
    echo "  bash scripts/fetch-data.sh --titles amazon-beauty   (then: bash scripts/run.sh --data .cache/data/amazon-beauty)" >&2
    exit 1
fi
name="$(basename "$data")"
out="${out:-out/$name}"

bash scripts/install-deps.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >&2

mkdir -p "$out"
echo "== pulse data stats --data $data" >&2
./build/pulse data stats --data "$data"
echo "== pulse sasrec train --data $data --out $out/sasrec.bin --resume ${extra[*]:-}" >&2
./build/pulse sasrec train --data "$data" --out "$out/sasrec.bin" --resume "${extra[@]}" | tee "$out/sasrec_metrics.txt" | tail -n 1
