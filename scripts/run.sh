#!/usr/bin/env bash
# scripts/run.sh — the README's main job: install the build dependencies, build (Release), fetch the SLM
# (SmolLM2-135M-Instruct) and the encoder (MiniLM-L6) when missing, then run the whole PULSE method with
# `pulse pipeline` on the default dataset (../shared/data/amazon-beauty, or --data DIR) and print its table:
# SASRec -> similar users -> Phase 1 -> Thought Space -> ToT (Thought-Space and likelihood scorers) -> SFT
# (a LoRA per rationale variant) -> evaluation of popularity, SASRec, the zero-shot SLM and the fine-tuned
# ones on the same stored candidate lists (rank and generate decoders). The last stdout line is the summary
# JSON (metrics per method, each stage's wall time).
#
#   bash scripts/run.sh [--data DIR] [--out DIR] [--users N|all] [--model GGUF] [--encoder DIR]
#                       [any further `pulse pipeline` option, e.g. --candidates 20]
#
# Default: a small real subset sized to finish in under 30 minutes on 2 cores: the first 40 users of the
# seeded order, SASRec for 3 epochs on the whole dataset, Phase 1 at 150 tokens, 1 Thought-Space epoch, ToT
# of depth 2 (branching 2, beam 1, 48 tokens a thought), one LoRA epoch per variant (r 8, alpha 16, lr 2e-4,
# batch 8, every activation kept: the same adapter as with recomputation, ~1.5x faster), 40 test users,
# N = 5. `--users N` keeps those sizes for N users; `--users all` runs the full scale: every user, the
# authors' settings (SASRec to early stopping, 53 Thought-Space epochs, ToT depth 3 / branching 3 / beam 2 /
# 61 tokens, 7 LoRA epochs of batch 64): days on 2 cores. Options given after these
# override them. The run is resumable: rerunning skips every stage already in --out (out/<dataset>/ by
# default, git-ignored); see OUT/stages/ and OUT/summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

data=""
out=""
users="40"
cache="${PULSE_CACHE:-.cache}"
model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
encoder="$cache/encoders/minilm-l6"
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --encoder) encoder="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
    esac
done
if [ -z "$data" ]; then
    for d in ../shared/data/amazon-beauty "$cache/data/amazon-beauty"; do
        if [ -f "$d/sequences.txt" ]; then data="$d"; break; fi
    done
fi
if [ -z "$data" ] || [ ! -d "$data" ]; then
    echo "run.sh: no dataset found: expected ../shared/data/amazon-beauty; fetch it with" >&2
    echo "  bash scripts/fetch-data.sh --titles amazon-beauty   (then: bash scripts/run.sh --data $cache/data/amazon-beauty)" >&2
    exit 1
fi
name="$(basename "$data")"
out="${out:-out/$name}"

bash scripts/install-deps.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >&2
[ -f "$model" ] || bash scripts/fetch-models.sh smollm2 >&2
[ -f "$encoder/config.json" ] || bash scripts/fetch-encoders.sh minilm-l6 >&2

if [ "$users" = "all" ]; then
    sizes=(--users 0)
else
    sizes=(--users "$users" --sasrec-epochs 3 --thought-epochs 1 --tot-depth 2 --tot-branching 2 --tot-beam 1
        --tot-thought-tokens 48 --sft-epochs 1 --sft-grad-accum 1 --sft-no-recompute)
fi
mkdir -p "$out"
echo "== pulse pipeline --data $data --model $model --encoder $encoder --out $out ${sizes[*]} ${extra[*]:-}" >&2
./build/pulse pipeline --data "$data" --model "$model" --encoder "$encoder" --out "$out" "${sizes[@]}" "${extra[@]}"
