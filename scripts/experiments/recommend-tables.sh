#!/usr/bin/env bash
# scripts/experiments/recommend-tables.sh — issue 12's tables (docs/recommend.md): the whole method with
# `pulse pipeline` on 1,000 Beauty users (seed 42) at the settings of the measured tables, evaluated on
# stored lists of 5 and of 20, in-domain and Beauty -> Toys. Every stage and every evaluated user is kept in
# OUT (stages/, eval.db; cross-amazon-toys/), so rerunning the same command after an interruption continues
# where it stopped; a finished table reprints at once. Days of one core in all (docs/recommend.md has each
# stage's wall time); run it in the background:
#
#   OMP_WAIT_POLICY=PASSIVE nohup nice -n 10 bash scripts/experiments/recommend-tables.sh OUT > OUT.log 2>&1 &
#
# Environment: MODEL (SmolLM2-135M-Instruct Q4_1), ENCODER (MiniLM-L6), DATA / TEST_DATA (Beauty / Toys),
# THREADS (1), SETTINGS ("5 20 5x 20x": the protocols to run, in order; "x" = also Beauty -> Toys), USERS (1000),
# EXTRA (further `pulse pipeline` options, e.g. "--sasrec-epochs 2" for a quick smoke run), BUILD_FIRST (1: first
# every stage that trains or writes rationales, rationales first, with 20-user evaluations, then the settings'
# full evaluations; 0: each setting's run as it comes).
# PULSE_QFAST=1 (the batched products' faster order; set here, as for every N = 20 figure) is part of the
# evaluation store's key.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: recommend-tables.sh OUT}"
model="${MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
encoder="${ENCODER:-.cache/encoders/minilm-l6}"
data="${DATA:-../shared/data/amazon-beauty}"
test_data="${TEST_DATA:-../shared/data/amazon-toys}"
threads="${THREADS:-1}"
export PULSE_QFAST="${PULSE_QFAST:-1}"
[ -x build/pulse ] || { echo "recommend-tables.sh: build first (bash scripts/test.sh)" >&2; exit 1; }
[ -f "$model" ] || bash scripts/fetch-models.sh smollm2 >&2
[ -f "$encoder/config.json" ] || bash scripts/fetch-encoders.sh minilm-l6 >&2
mkdir -p "$out"
common=(--data "$data" --model "$model" --encoder "$encoder" --out "$out" --users "${USERS:-1000}" --seed 42
    --thought-epochs 3 --tot-depth 2 --tot-branching 2 --tot-beam 1 --tot-thought-tokens 48 --sft-epochs 1
    --sft-grad-accum 1 --sft-no-recompute --rationales-first -t "$threads")
if [ "${BUILD_FIRST:-1}" = 1 ]; then
    # the stages' order and the evaluated users are in no training stage's hash: this pass builds what the
    # settings below then only evaluate (and what qa-tables.sh reads: the space, the PULSE SFT lines)
    echo "recommend-tables.sh: every training stage first, 20-user evaluations ($(date -u +%FT%TZ))" >&2
    first="${SETTINGS:-5 20 5x 20x}"
    first="${first%% *}"
    build/pulse pipeline "${common[@]}" --candidates "${first%x}" --eval-users 20 ${EXTRA:-} > "$out/table-build.txt"
fi
for setting in ${SETTINGS:-5 20 5x 20x}; do
    n="${setting%x}"
    cross=()
    [ "$setting" != "$n" ] && cross=(--test-data "$test_data")
    echo "recommend-tables.sh: N = $n${cross[*]:+, cross-domain} ($(date -u +%FT%TZ))" >&2
    # the settings of docs/recommend.md's 1,000-user tables
    build/pulse pipeline "${common[@]}" --candidates "$n" "${cross[@]}" ${EXTRA:-} > "$out/table-n$setting.txt"
    tail -n 1 "$out/table-n$setting.txt" > "$out/summary-n$setting.json"
done
