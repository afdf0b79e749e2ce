#!/usr/bin/env bash
# bench/peers/morec_torch.sh — peer benchmark for `pulse textrec train --arch morec` (frozen MiniLM text vectors +
# ID embeddings summed, --finetune-layers 0; --no-id: text only): a plain PyTorch implementation of the same model
# (bench/peers/morec_torch.py: same data reading and item text, same MiniLM-L6 mean-pooled normalised text vectors,
# same pmixer-style SASRec-CE stack, init distributions, batching, loss and Adam) and then build/pulse in the same run,
# back to back, on the same data and threads, each for N epochs. One final JSON line: both sides' training seconds
# per epoch (best of the N epochs, and the mean; training only: text encoding and evaluation excluded), the ratio
# torch / pulse, and the text-encoding seconds of each side apart (done once before training on both sides).
#
# Usage: bash bench/peers/morec_torch.sh [--data DIR] [--encoder DIR] [--epochs N] [--threads T] [--max-users N]
#            [--no-id] [--eval] [--text-len L] [--precision bf16|fp32] [--torch-encode-dtype fp32|bf16]
#            [--cache] [--parity] [--skip-torch] [--skip-pulse] [--omp-active] [--bf16-head]
#   --epochs N       epochs on each side (default 2); s/epoch is the best of them (the first carries warm-up) and the mean
#   --threads T      torch.set_num_threads / OMP / OpenBLAS threads and pulse --threads (default 2)
#   --max-users N    the first N users of sequences.txt on both sides (the catalogue = items up to their max id, as
#                    pulse's loader); for short functional checks
#   --no-id          the text-only variant on both sides (item vector W t + b)
#   --eval           the torch side also reports full-ranking valid NDCG@10 / HR@10 after each epoch (history
#                    masked, pulse's rule); pulse always validates after each epoch (outside its s/epoch)
#   --text-len L     tokens per item text incl. [CLS]/[SEP] (default 64)
#   --precision P    pulse's encoder products (default bf16, pulse's default; fp32 = sentence-transformers' arithmetic)
#   --torch-encode-dtype D  the torch side's encoding: fp32 (default, sentence-transformers' default) or bf16 autocast
#   --cache          both sides keep their text vectors in the work folder (pulse --cache, torch .npy by hash): a second
#                    run then reports cache-read seconds as encoding time (marked encode_cached)
#   --parity         after pulse's run, load pulse's model file into the torch model and evaluate it there (valid and
#                    test, full ranking, history masked): equal metrics = the same forward, scoring and ranking rule
#   --bf16-head      pulse's CE head products over the catalogue in bf16 with fp32 sums (pulse --bf16-head; torch
#                    stays fp32)
#   --omp-active     keep OpenMP's spin-waiting (default: OMP_WAIT_POLICY=PASSIVE for BOTH programs, as
#                    recbole_sasrec.sh: spinning 2-thread programs slow 3-10x on a shared machine)
# Environment: PULSE_SHARED (default ../shared; default data = PULSE_SHARED/data/amazon-beauty); PULSE_CACHE (default
# .cache/) holds the reference venv PULSE_CACHE/pyref (scripts/pyref.sh: torch, transformers, sentence-transformers;
# created with --no-llama when it cannot import them), the encoder PULSE_CACHE/encoders/minilm-l6 (default --encoder)
# and the work folder PULSE_CACHE/peers/morec-work/ (outputs, logs, pulse's model file, caches); BUILD_DIR (default
# build) holds pulse.
#
# What an epoch is, on both sides: one pass over the users with >= 2 training items, shuffled, 128 per Adam step, the
# loss at every position of each user's most recent 50 training pairs (Beauty: 22,363 users, 175 steps). The item
# vectors E_id + W t + b of the whole catalogue are recomputed every step on both sides. The differences that remain
# (random streams, torch's padded layout, fp32 vs bf16 text encoding) are listed in morec_torch.py's docstring.
# Examples: the measurement (quiet window)   bash bench/peers/morec_torch.sh --epochs 2 --threads 2 --eval
#           a functional check (minutes)     bash bench/peers/morec_torch.sh --max-users 2000 --epochs 1 --eval --parity
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file during a (long) run is safe.
main() {
    cd "$(dirname "$0")/../.."
    ROOT=$PWD

    DATA=""
    ENCODER=""
    EPOCHS=2
    THREADS=2
    MAX_USERS=0
    NO_ID=0
    EVAL=0
    TEXT_LEN=64
    PRECISION=bf16
    TORCH_DTYPE=fp32
    USE_CACHE=0
    PARITY=0
    SKIP_TORCH=0
    SKIP_PULSE=0
    OMP_PASSIVE=1
    BF16_HEAD=0
    while [ $# -gt 0 ]; do
        case "$1" in
        --data) DATA="$2"; shift 2 ;;
        --encoder) ENCODER="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --max-users) MAX_USERS="$2"; shift 2 ;;
        --no-id) NO_ID=1; shift ;;
        --eval) EVAL=1; shift ;;
        --text-len) TEXT_LEN="$2"; shift 2 ;;
        --precision) PRECISION="$2"; shift 2 ;;
        --torch-encode-dtype) TORCH_DTYPE="$2"; shift 2 ;;
        --cache) USE_CACHE=1; shift ;;
        --parity) PARITY=1; shift ;;
        --skip-torch) SKIP_TORCH=1; shift ;;
        --skip-pulse) SKIP_PULSE=1; shift ;;
        --omp-active) OMP_PASSIVE=0; shift ;;
        --bf16-head) BF16_HEAD=1; shift ;;
        -h | --help) sed -n '2,42p' "$0"; exit 0 ;;
        *) echo "morec_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        esac
    done
    CACHE="${PULSE_CACHE:-$ROOT/.cache}"
    PY="$CACHE/pyref/bin/python"
    WORK="$CACHE/peers/morec-work"
    BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
    PULSE="$BUILD_DIR/pulse"
    mkdir -p "$WORK"

    # ---- 1. the reference venv ----
    if ! "$PY" -c "import torch, transformers, sentence_transformers" 2>/dev/null; then
        echo "morec_torch.sh: $CACHE/pyref cannot import torch / transformers / sentence-transformers: running" \
            "scripts/pyref.sh --no-llama (first time: a few GB, minutes)" >&2
        PULSE_CACHE="$CACHE" bash "$ROOT/scripts/pyref.sh" --no-llama >&2
    fi
    [ -n "$DATA" ] || DATA="${PULSE_SHARED:-$ROOT/../shared}/data/amazon-beauty"
    DATA=$(cd "$DATA" 2>/dev/null && pwd) || { echo "morec_torch.sh: data folder not found (--data DIR or PULSE_SHARED)" >&2; exit 2; }
    [ -n "$ENCODER" ] || ENCODER="$CACHE/encoders/minilm-l6"
    ENCODER=$(cd "$ENCODER" 2>/dev/null && pwd) || { echo "morec_torch.sh: encoder folder not found (--encoder DIR)" >&2; exit 2; }
    [ -f "$DATA/sequences.txt" ] || { echo "morec_torch.sh: $DATA has no sequences.txt (an S3-Rec/P5 folder)" >&2; exit 2; }

    NCPU=$(nproc --all)  # before OMP_NUM_THREADS, which nproc honours
    export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" PULSE_THREADS="$THREADS"
    export CUDA_VISIBLE_DEVICES="" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    [ "$OMP_PASSIVE" = 1 ] && export OMP_WAIT_POLICY=PASSIVE
    NAME=$(basename "$DATA" | tr -c 'a-zA-Z0-9_\n' '_')
    [ "$MAX_USERS" != 0 ] && NAME="${NAME}_u$MAX_USERS"
    [ "$NO_ID" = 1 ] && NAME="${NAME}_noid"
    load() { cut -d' ' -f1-3 /proc/loadavg; }
    LOAD_START=$(load)
    echo "morec_torch.sh: data $DATA, encoder $ENCODER, epochs $EPOCHS, threads $THREADS, max users $MAX_USERS," \
        "no-id $NO_ID, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}, load at start $LOAD_START ($NCPU cpus)" >&2

    COMMON=()
    [ "$MAX_USERS" != 0 ] && COMMON+=(--max-users "$MAX_USERS")
    [ "$NO_ID" = 1 ] && COMMON+=(--no-id)

    # ---- 2. torch ----
    TORCH_JSON="$WORK/$NAME.torch.json"
    echo '{}' >"$TORCH_JSON"
    TORCH_NOTE=""
    if [ "$SKIP_TORCH" = 1 ]; then
        TORCH_NOTE="skipped (--skip-torch)"
    else
        TARGS=(--data "$DATA" --encoder "$ENCODER" --epochs "$EPOCHS" --threads "$THREADS" --text-len "$TEXT_LEN"
            --encode-dtype "$TORCH_DTYPE" "${COMMON[@]}")
        [ "$EVAL" = 1 ] && TARGS+=(--eval)
        [ "$USE_CACHE" = 1 ] && TARGS+=(--cache "$WORK/textvec")
        # cross-check: the torch text vectors of the first 64 items against `pulse encode` (cosine)
        [ -x "$PULSE" ] && TARGS+=(--check-pulse "$PULSE" --check-precision "$PRECISION")
        echo "morec_torch.sh: $PY bench/peers/morec_torch.py ${TARGS[*]}" >&2
        "$PY" "$ROOT/bench/peers/morec_torch.py" "${TARGS[@]}" >"$WORK/$NAME.torch.out" \
            2> >(tee "$WORK/$NAME.torch.err" >&2) || TORCH_NOTE="morec_torch.py failed (rc $?, see $WORK/$NAME.torch.err)"
        grep -E '^\{' "$WORK/$NAME.torch.out" | tail -n 1 >"$TORCH_JSON" || true
        [ -s "$TORCH_JSON" ] || echo '{}' >"$TORCH_JSON"
    fi
    LOAD_MID=$(load)

    # ---- 3. pulse, same run, same threads ----
    PULSE_JSON="$WORK/$NAME.pulse.json"
    echo '{}' >"$PULSE_JSON"
    : >"$WORK/$NAME.pulse.err"
    PULSE_NOTE=""
    if [ "$SKIP_PULSE" = 1 ]; then
        PULSE_NOTE="skipped (--skip-pulse)"
    elif [ ! -x "$PULSE" ]; then
        PULSE_NOTE="skipped: $PULSE not built (cmake --build $BUILD_DIR)"
        echo "morec_torch.sh: $PULSE_NOTE" >&2
    else
        PARGS=(textrec train --data "$DATA" --encoder "$ENCODER" --out "$WORK/$NAME.pulse-morec.bin" --arch morec
            --epochs "$EPOCHS" --threads "$THREADS" --text-len "$TEXT_LEN" --precision "$PRECISION" "${COMMON[@]}")
        [ "$USE_CACHE" = 1 ] && mkdir -p "$WORK/textvec" && PARGS+=(--cache "$WORK/textvec")
        [ "$BF16_HEAD" = 1 ] && PARGS+=(--bf16-head)
        echo "morec_torch.sh: $PULSE ${PARGS[*]}" >&2
        "$PULSE" "${PARGS[@]}" >"$WORK/$NAME.pulse.out" 2> >(tee "$WORK/$NAME.pulse.err" >&2) ||
            PULSE_NOTE="pulse textrec train failed (rc $?, see $WORK/$NAME.pulse.err)"
        grep -E '^\{' "$WORK/$NAME.pulse.out" | tail -n 1 >"$PULSE_JSON" || true
        [ -s "$PULSE_JSON" ] || echo '{}' >"$PULSE_JSON"
    fi
    LOAD_END=$(load)

    # ---- 4. parity: pulse's trained model evaluated by the torch model ----
    PARITY_JSON="$WORK/$NAME.parity.json"
    echo '{}' >"$PARITY_JSON"
    if [ "$PARITY" = 1 ] && [ -f "$WORK/$NAME.pulse-morec.bin" ] && [ -z "$PULSE_NOTE" ]; then
        "$PY" "$ROOT/bench/peers/morec_torch.py" --data "$DATA" --threads "$THREADS" "${COMMON[@]}" \
            --parity-model "$WORK/$NAME.pulse-morec.bin" | grep -E '^\{' | tail -n 1 >"$PARITY_JSON" || true
        [ -s "$PARITY_JSON" ] || echo '{}' >"$PARITY_JSON"
    fi
    sleep 0.2  # the tee process substitutions flush their files

    # ---- final JSON line ----
    "$PY" - "$TORCH_JSON" "$PULSE_JSON" "$WORK/$NAME.pulse.err" "$THREADS" "$LOAD_START" "$LOAD_MID" "$LOAD_END" \
        "$TORCH_NOTE" "$PULSE_NOTE" "$DATA" "$MAX_USERS" "$NO_ID" "$EPOCHS" "$PRECISION" "$USE_CACHE" "$PARITY_JSON" <<'EOF'
import json, os, re, sys
(t_path, p_path, p_err, threads, l0, l1, l2, t_note, p_note, data, max_users, no_id, epochs, precision,
 use_cache, par_path) = sys.argv[1:17]
def load(p):
    try:
        with open(p) as f:
            return json.loads(f.read().strip() or "{}")
    except (OSError, ValueError):
        return {}
t, p, par = load(t_path), load(p_path), load(par_path)
# pulse's per-epoch training seconds (0.1 s resolution) from its log lines
# "sasrec epoch N: loss L  valid NDCG@10 V HR@10 H  best ... train X.Xs eval Y.Ys"
p_epochs = []
try:
    with open(p_err, errors="replace") as f:
        for line in f.read().replace("\r", "\n").splitlines():
            m = re.search(r"sasrec epoch (\d+): loss ([0-9.eE+-]+)\s+valid NDCG@10 ([0-9.]+) HR@10 ([0-9.]+).*"
                          r"train ([0-9.]+)s eval ([0-9.]+)s", line)
            if m:
                p_epochs.append({"epoch": int(m[1]), "loss": float(m[2]), "valid_ndcg10": float(m[3]),
                                 "valid_hr10": float(m[4]), "train_s": float(m[5]), "eval_s": float(m[6])})
except OSError:
    pass
p_best = min((e["train_s"] for e in p_epochs), default=None)
p_mean = p.get("seconds_per_epoch")
t_best, t_mean = t.get("sec_per_epoch_best"), t.get("sec_per_epoch_mean")
def ratio(a, b):
    return round(a / b, 3) if (a and b) else None
t_curve = t.get("valid_curve") or []
parity = None
if "valid" in par:  # pulse's best model (its model file) evaluated by the torch model, beside pulse's own figures
    pv, pt = p.get("valid_metrics") or {}, p.get("metrics") or {}
    parity = {"users_valid": par["valid"]["users"], "pulse_users_test": p.get("users")}
    for split, mine, theirs in (("valid", par["valid"], pv), ("test", par["test"], pt)):
        for k_t, k_p in (("ndcg10", "NDCG@10"), ("hr10", "HR@10"), ("mrr", "MRR")):
            parity[f"torch_{split}_{k_p}"] = round(mine[k_t], 6)
            parity[f"pulse_{split}_{k_p}"] = theirs.get(k_p)
out = {
    "bench": "morec_vs_torch", "dataset": data, "threads": int(threads), "epochs": int(epochs),
    "max_users": int(max_users), "id_embeddings": no_id != "1", "finetune_layers": 0,
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    "load_avg": {"start": l0, "after_torch": l1, "end": l2},
    "torch": t if t else {"note": t_note or "no JSON from morec_torch.py"},
    "pulse": dict(p, per_epoch_from_log=p_epochs) if p else {"note": p_note or "no JSON from pulse textrec train"},
    "torch_sec_per_epoch": t_best, "pulse_sec_per_epoch": p_best,
    "ratio_torch_over_pulse": ratio(t_best, p_best),
    "torch_sec_per_epoch_mean": t_mean, "pulse_sec_per_epoch_mean": p_mean,
    "ratio_torch_over_pulse_mean": ratio(t_mean, p_mean),
    "sec_per_epoch_note": "best of the epochs (pulse's from its 'train X.Xs' log lines, 0.1 s resolution); the "
                          "means are pulse's seconds_per_epoch and torch's mean; training only",
    "torch_encode_seconds": t.get("encode_seconds"), "pulse_encode_seconds": p.get("encode_seconds"),
    "encode_ratio_torch_over_pulse": ratio(t.get("encode_seconds"), p.get("encode_seconds")),
    "encode_note": f"text vectors of the whole catalogue, once before training: torch {t.get('encode_impl')} "
                   f"{t.get('encode_dtype')}, pulse {precision} products"
                   + ("; --cache: a cached run reports the cache read" if use_cache == "1" else ""),
    "torch_encode_cached": t.get("encode_cached"),
    "vector_check": t.get("vector_check"),
    "torch_last_loss": t.get("last_loss"), "pulse_last_loss": p.get("last_loss"),
    "valid_NDCG@10": {"torch_best": t.get("best_valid_ndcg10"),
                      "pulse_best": max((e["valid_ndcg10"] for e in p_epochs), default=None),
                      "torch_curve": [c["ndcg10"] for c in t_curve] or None,
                      "pulse_curve": [e["valid_ndcg10"] for e in p_epochs] or None},
    "parity": parity,
    "notes": [x for x in (t_note, p_note) if x],
}
print(json.dumps(out))
EOF
}

main "$@"
exit
