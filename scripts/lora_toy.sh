#!/usr/bin/env bash
# scripts/lora_toy.sh — issue 11's learning acceptance: SmolLM2-135M + LoRA on the toy task of
# scripts/lora_toy.py (2,000 prompts "Item list: a, b, c, d, e. The item chosen is" -> the alphabetically first
# item), exact match on 200 held-out prompts (greedy, 4 new tokens) before and after training, the loss curve in
# DIR/toy.gguf.log.jsonl. Usage (from the repository root, after a build):
#   scripts/lora_toy.sh [DIR] [more `pulse lm train` flags, e.g. --max-steps 5 for a trial]
# Environment: MODEL (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf), PULSE (build/pulse), THREADS (2).
set -euo pipefail
M=${MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
PULSE=${PULSE:-build/pulse}
T=${THREADS:-2}
D=${1:-/tmp/pulse_lora_toy}
shift || true
mkdir -p "$D"
python3 scripts/lora_toy.py gen "$D" --n 2000 --eval 200 --seed 1
mapfile -t PROMPTS < <(python3 -c "import json,sys; [print(json.loads(l)['prompt']) for l in open(sys.argv[1])]" "$D/eval.jsonl")
ARGS=()
for p in "${PROMPTS[@]}"; do ARGS+=(-p "$p"); done
echo "== before" >&2
"$PULSE" lm generate -m "$M" "${ARGS[@]}" -n 4 --temp 0 --json -t "$T" > "$D/before.jsonl"
python3 scripts/lora_toy.py score "$D/eval.jsonl" "$D/before.jsonl" | tee "$D/em_before.json"
echo "== train" >&2
"$PULSE" lm train --model "$M" --data "$D/train.jsonl" --out "$D/toy.gguf" --rank 8 --alpha 16 --lr 1e-3 \
    --epochs 2 --batch 8 --grad-accum 1 --targets q,k,v,o,gate,up,down --seed 1 -t "$T" "$@" | tail -1 | tee "$D/train.json"
echo "== after" >&2
"$PULSE" lm generate -m "$M" "${ARGS[@]}" -n 4 --temp 0 --json -t "$T" --lora "$D/toy.gguf" > "$D/after.jsonl"
python3 scripts/lora_toy.py score "$D/eval.jsonl" "$D/after.jsonl" | tee "$D/em_after.json"
