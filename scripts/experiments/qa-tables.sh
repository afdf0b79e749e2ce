#!/usr/bin/env bash
# scripts/experiments/qa-tables.sh — issue 19's HotpotQA tables (docs/qa.md): supporting facts by BM25,
# MiniLM and the recommendation-trained Thought Space; answers of Qwen2.5-Coder-0.5B and -1.5B-Instruct
# (Q4_K_M), base and PULSE-tuned (a LoRA trained on the recommend pipeline's PULSE SFT lines), in the modes
# direct, cot, tot with the likelihood scorer and with the Thought-Space scorer, on the 70 held-out
# distractor questions (the first 30 choose k), BM25 top-k context; closed-book direct and cot on a seeded
# 1,000 of the simplified dev questions. Each row's answers are kept in a store beside its predictions and
# each adapter checkpoints every 10 steps, so rerunning the same command continues where it stopped; a row
# whose metrics file exists is skipped. Needs the recommend pipeline's OUT (scripts/experiments/
# recommend-tables.sh: OUT/space, OUT/sft-pulse.jsonl) for the space rows and the adapters; without it those
# rows are skipped with a message. Hours to days of one core; run it in the background:
#
#   OMP_WAIT_POLICY=PASSIVE nohup nice -n 10 bash scripts/experiments/qa-tables.sh QOUT [PIPELINE_OUT] > q.log 2>&1 &
#
# Environment: MODELS ("0.5b 1.5b"), ROWS (default all: sp direct cot tot-lik tot-thought cb-direct cb-cot),
# TUNED ("base pulse": which side of each model; "pulse" alone trains the adapter and runs its rows first),
# THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: qa-tables.sh QOUT [PIPELINE_OUT]}"
pipe="${2:-}"
threads="${THREADS:-1}"
rows=" ${ROWS:-sp direct cot tot-lik tot-thought cb-direct cb-cot} "
dist=../shared/data/hotpotqa/hotpot_dev_distractor_sample100.json
simple=../shared/data/hotpotqa/hotpot_dev_v1_simplified.json
enc=.cache/encoders/minilm-l6
[ -x build/pulse ] || { echo "qa-tables.sh: build first (bash scripts/test.sh)" >&2; exit 1; }
mkdir -p "$out"
space=""
[ -n "$pipe" ] && [ -f "$pipe/space/space.json" ] && space="$pipe/space"
sft=""
[ -n "$pipe" ] && [ -f "$pipe/sft-pulse.jsonl" ] && sft="$pipe/sft-pulse.jsonl"
# one row: NAME then pulse qa arguments; skipped when NAME.json (its metrics) exists
row() {
    local name="$1"
    shift
    [ -s "$out/$name.json" ] && return 0
    echo "qa-tables.sh: $name ($(date -u +%FT%TZ))" >&2
    local t0=$SECONDS
    build/pulse qa "$@" -t "$threads" --out "$out/$name.pred.json" > "$out/$name.txt"
    tail -n 1 "$out/$name.txt" > "$out/$name.json"
    echo "qa-tables.sh: $name done in $((SECONDS - t0)) s: $(cat "$out/$name.json")" >&2
}
held=(--first 30 --questions 70)
if [[ "$rows" == *" sp "* ]]; then
    row sp-bm25 sp --data "$dist" --sp bm25
    [ -f "$enc/config.json" ] || bash scripts/fetch-encoders.sh minilm-l6 >&2
    row sp-minilm sp --data "$dist" --sp encoder --encoder "$enc"
    if [ -n "$space" ]; then row sp-space sp --data "$dist" --sp space --space "$space"; else
        echo "qa-tables.sh: no PIPELINE_OUT/space: the Thought-Space SP row is skipped" >&2; fi
fi
for size in ${MODELS:-0.5b 1.5b}; do
    model=.cache/models/qwen2.5-coder-$size-instruct-q4_k_m.gguf
    case "$size" in 0.5b) which=qwen05 ;; 1.5b) which=qwen15 ;; *) echo "qa-tables.sh: MODELS: 0.5b or 1.5b, found $size" >&2; exit 2 ;; esac
    [ -f "$model" ] || bash scripts/fetch-models.sh "$which" >&2
    adapter=""
    if [ -n "$sft" ]; then
        adapter="$out/q$size-pulse.gguf"
        if [ ! -s "$adapter" ]; then
            echo "qa-tables.sh: training $adapter on $sft ($(date -u +%FT%TZ))" >&2
            build/pulse lm train --model "$model" --data "$sft" --out "$adapter" --epochs 1 --batch 8 \
                --max-len 512 --checkpoint-every 10 --resume -t "$threads" > "$out/q$size-pulse.train.json"
        fi
    else
        echo "qa-tables.sh: no PIPELINE_OUT/sft-pulse.jsonl: the PULSE-tuned rows of $size are skipped" >&2
    fi
    for tuned in ${TUNED:-base pulse}; do
        case "$tuned" in base | pulse) ;; *) echo "qa-tables.sh: TUNED: base or pulse, found $tuned" >&2; exit 2 ;; esac
        lora=()
        if [ "$tuned" = pulse ]; then [ -n "$adapter" ] || continue; lora=(--lora "$adapter"); fi
        m=(--model "$model" "${lora[@]}")
        tag="$size-$tuned"
        [[ "$rows" == *" direct "* ]] && row "direct-$tag" eval --data "$dist" "${m[@]}" --mode direct "${held[@]}"
        [[ "$rows" == *" cot "* ]] && row "cot-$tag" eval --data "$dist" "${m[@]}" --mode cot "${held[@]}"
        [[ "$rows" == *" tot-lik "* ]] &&
            row "tot-lik-$tag" eval --data "$dist" "${m[@]}" --mode tot --scorer likelihood "${held[@]}"
        if [[ "$rows" == *" tot-thought "* ]]; then
            if [ -n "$space" ]; then
                row "tot-thought-$tag" eval --data "$dist" "${m[@]}" --mode tot --scorer thought --space "$space" \
                    "${held[@]}"
            else echo "qa-tables.sh: no PIPELINE_OUT/space: tot-thought-$tag is skipped" >&2; fi
        fi
        if [ "$tuned" = base ]; then
            [[ "$rows" == *" cb-direct "* ]] &&
                row "cb-direct-$size" eval --data "$simple" "${m[@]}" --mode direct --sample 1000 --seed 42
            [[ "$rows" == *" cb-cot "* ]] &&
                row "cb-cot-$size" eval --data "$simple" "${m[@]}" --mode cot --sample 1000 --seed 42
        fi
    done
done
echo "qa-tables.sh: every row of $out done" >&2
