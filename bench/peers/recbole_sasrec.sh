#!/usr/bin/env bash
# bench/peers/recbole_sasrec.sh — peer benchmark for bench/sasrec: RecBole 1.2.1's SASRec (CPU torch) on the same
# dataset, converted to RecBole's atomic format, with the same dims / length / batch / loss, full ranking; then our
# build/bench_sasrec in the same run, back to back, both evaluating the valid split after every epoch, and one final
# JSON line with, for both: s/epoch, s per training target (one (prefix -> next item) loss term), the best valid
# NDCG@10 (valid paired with valid; RecBole's test figures are listed apart, pulse's bench evaluates no test), and the
# training time each took to first reach the same valid NDCG@10 (the lower of the two bests), with the ratios.
#
# Usage: bash bench/peers/recbole_sasrec.sh [--data DIR] [--epochs N] [--full] [--max-epochs N] [--threads T]
#            [--timing-batches N] [--resume PTH] [--time-limit S] [--ours-epochs N] [--skip-ours] [--skip-recbole] [--omp-active] [--setup-only]
#   --epochs N      RecBole trains exactly N epochs (default 3), validating after each
#   --timing-batches N  instead of whole epochs, time N RecBole training batches (after 5 warm-up) and report
#                   mean x batches/epoch as its s/epoch, no evaluation (one RecBole epoch on Beauty = 1027 batches)
#   --resume PTH    continue a RecBole run from its checkpoint (printed as "checkpoint" in its JSON)
#   --full          quality run instead: up to --max-epochs (default 200) with early stopping on valid NDCG@10
#                   (RecBole's stopping_step 10); the best-valid model is evaluated on test
#   --threads T     torch / OpenMP / OpenBLAS threads for both programs (default 2, the issue's "same 2 cores")
#   --time-limit S  quality run: start no new RecBole epoch after S seconds (test uses the best-valid model so far)
#   --ours-epochs N epochs for build/bench_sasrec (default: RecBole's --epochs; with --full, up to --max-epochs with
#                   the same early stopping, 10 epochs without a better valid NDCG@10)
#   --omp-active    keep OpenMP's default spin-waiting (default here: OMP_WAIT_POLICY=PASSIVE for BOTH programs; on a
#                   shared, oversubscribed machine a spinning 2-thread OpenMP program slows 3-10x: measured on this
#                   machine at load ~16, torch's 128x64x12102 matmul took 70 ms with 2 spinning threads, 21 ms passive)
# Environment: PULSE_SHARED (default ../shared; default data = PULSE_SHARED/data/amazon-beauty); PULSE_CACHE (default
# .cache/) holds the venv (PULSE_CACHE/peers/recbole, ignored, never committed) and the converted data, RecBole logs and
# checkpoints (PULSE_CACHE/peers/recbole-work/); BUILD_DIR (default build) holds bench_sasrec.
#
# What an epoch is: one pass over the same 131,413 (prefix -> next item) training targets on Beauty on both sides
# (RecBole: one sample per prefix, loss on its last position, 1027 Adam steps of 128; pulse: each user's sequence once,
# loss at every position, 175 steps of 128), so s/epoch compares the same training signal, not the same number of steps.
# Versions: recbole 1.2.1 pins colorlog==4.7.2, colorama==0.4.4, ray<=2.6.3 and uses np.float_/np.long, so numpy must be
# < 2 and pandas 2.2 (pandas 3 changes string dtypes / copy semantics). ray (and hyperopt, plotly) are only imported by
# recbole.quick_start's hyper-parameter tuning, which the driver does not use, so recbole is installed with --no-deps
# and its real run-time deps are pinned below. torch >= 2.6 loads checkpoints with weights_only=True, which RecBole's
# best-model reload predates: the driver sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.
set -euo pipefail

# The whole script is one function, parsed before it runs: editing this file during a (long) run is safe.
main() {
    cd "$(dirname "$0")/../.."
    ROOT=$PWD

    DATA=""
    EPOCHS=3
    FULL=0
    MAX_EPOCHS=200
    THREADS=2
    OURS_EPOCHS=""
    SKIP_OURS=0
    SKIP_RECBOLE=0
    SETUP_ONLY=0
    TIME_LIMIT=0
    TIMING_BATCHES=0
    RESUME=""
    OMP_PASSIVE=1
    while [ $# -gt 0 ]; do
        case "$1" in
        --data) DATA="$2"; shift 2 ;;
        --epochs) EPOCHS="$2"; shift 2 ;;
        --full) FULL=1; shift ;;
        --max-epochs) MAX_EPOCHS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --ours-epochs) OURS_EPOCHS="$2"; shift 2 ;;
        --skip-ours) SKIP_OURS=1; shift ;;
        --skip-recbole) SKIP_RECBOLE=1; shift ;;
        --setup-only) SETUP_ONLY=1; shift ;;
        --time-limit) TIME_LIMIT="$2"; shift 2 ;;
        --timing-batches) TIMING_BATCHES="$2"; shift 2 ;;
        --resume) RESUME="$2"; shift 2 ;;
        --omp-active) OMP_PASSIVE=0; shift ;;
        -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "recbole_sasrec.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        esac
    done
    CACHE="${PULSE_CACHE:-$ROOT/.cache}"
    VENV="$CACHE/peers/recbole"
    WORK="$CACHE/peers/recbole-work"
    BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
    mkdir -p "$CACHE/peers" "$WORK"

    # ---- 1. the venv (pinned; reinstalled when the pin line changes) ----
    PINS="torch==2.15.0 numpy==1.26.4 scipy==1.13.1 pandas==2.2.3 scikit-learn==1.5.2 colorlog==4.7.2 colorama==0.4.4 \
    pyyaml==6.0.3 tqdm==4.67.1 tensorboard==2.18.0 protobuf==7.36.2 thop==0.1.1.post2209072238 tabulate==0.9.0 \
    texttable==1.7.0 psutil==6.1.1"
    STAMP="$VENV/.pulse-pins"
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$PINS recbole==1.2.1" ]; then
        echo "recbole_sasrec.sh: installing RecBole 1.2.1 + CPU torch into $VENV (first time: a few GB, minutes)" >&2
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
        # shellcheck disable=SC2086
        "$VENV/bin/pip" install -q $PINS
        "$VENV/bin/pip" install -q --no-deps recbole==1.2.1
        "$VENV/bin/python" -c "import recbole, torch, numpy, pandas; print('recbole', recbole.__version__, 'torch', \
    torch.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)" >&2
        echo "$PINS recbole==1.2.1" >"$STAMP"
    fi
    [ "$SETUP_ONLY" = 1 ] && { echo "$VENV"; exit 0; }
    # default data: $PULSE_SHARED (as the tests) or ../shared next to the repository
    [ -n "$DATA" ] || DATA="${PULSE_SHARED:-$ROOT/../shared}/data/amazon-beauty"
    DATA=$(cd "$DATA" 2>/dev/null && pwd) || { echo "recbole_sasrec.sh: data folder not found (--data DIR or PULSE_SHARED)" >&2; exit 2; }

    export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" PULSE_THREADS="$THREADS"
    export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 CUDA_VISIBLE_DEVICES=""
    [ "$OMP_PASSIVE" = 1 ] && export OMP_WAIT_POLICY=PASSIVE
    NAME=$(basename "$DATA" | tr -c 'a-zA-Z0-9_\n' '_')
    load() { cut -d' ' -f1-3 /proc/loadavg; }
    LOAD_START=$(load)
    echo "recbole_sasrec.sh: data $DATA, threads $THREADS, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}," \
        "load at start $LOAD_START ($(nproc) cpus)" >&2

    # ---- 2+3. convert + RecBole SASRec ----
    # JSON of this run's RecBole step; quality runs (whole epochs, with valid/test metrics) are also kept as
    # $NAME.recbole-quality.json so that a later timing-only run can still report RecBole's NDCG@10 (marked as such).
    RB_JSON="$WORK/$NAME.recbole.json"
    RB_QUALITY="$WORK/$NAME.recbole-quality.json"
    if [ "$SKIP_RECBOLE" = 0 ]; then
        MODE=(--epochs "$EPOCHS")
        [ "$FULL" = 1 ] && MODE=(--epochs "$MAX_EPOCHS" --early-stop 10)
        PULSE_BIN=""
        [ -x "$BUILD_DIR/pulse" ] && PULSE_BIN="$BUILD_DIR/pulse"  # also convert with `pulse data convert`, check equal
        "$VENV/bin/python" "$ROOT/bench/peers/recbole_sasrec.py" --data "$DATA" --work "$WORK" --name "$NAME" \
            --pulse "$PULSE_BIN" \
            --threads "$THREADS" --time-limit "$TIME_LIMIT" --timing-batches "$TIMING_BATCHES" --resume "$RESUME" \
            "${MODE[@]}" | tee "$WORK/$NAME.recbole.out"
        tail -n 1 "$WORK/$NAME.recbole.out" >"$RB_JSON"
        grep -q '"test"' "$RB_JSON" && cp "$RB_JSON" "$RB_QUALITY"
    else
        echo "recbole_sasrec.sh: --skip-recbole: reusing $RB_JSON from an earlier run" >&2
        [ -f "$RB_JSON" ] || echo '{}' >"$RB_JSON"
    fi
    LOAD_MID=$(load)

    # ---- 4. ours, same run, same threads ----
    OURS_JSON="$WORK/$NAME.pulse.json"
    echo '{}' >"$OURS_JSON"
    OURS_NOTE=""
    if [ "$SKIP_OURS" = 1 ]; then
        OURS_NOTE="skipped (--skip-ours)"
    elif [ ! -x "$BUILD_DIR/bench_sasrec" ]; then
        OURS_NOTE="skipped: $BUILD_DIR/bench_sasrec not built (bench/sasrec.c missing on this branch, or run cmake --build)"
        echo "recbole_sasrec.sh: $OURS_NOTE" >&2
    else
        OURS_ARGS=(--valid-every-epoch)
        if [ -z "$OURS_EPOCHS" ]; then
            OURS_EPOCHS=$EPOCHS
            [ "$FULL" = 1 ] && OURS_EPOCHS=$MAX_EPOCHS && OURS_ARGS=(--patience 10)
        fi
        echo "recbole_sasrec.sh: $BUILD_DIR/bench_sasrec --data $DATA --loss ce --epochs $OURS_EPOCHS --threads $THREADS ${OURS_ARGS[*]}" >&2
        "$BUILD_DIR/bench_sasrec" --data "$DATA" --loss ce --epochs "$OURS_EPOCHS" --threads "$THREADS" "${OURS_ARGS[@]}" \
            >"$WORK/$NAME.pulse.out" 2> >(tee "$WORK/$NAME.pulse.err" >&2) ||
            OURS_NOTE="bench_sasrec failed (rc $?, see $WORK/$NAME.pulse.err)"
        cat "$WORK/$NAME.pulse.out"
        grep -E '^\{' "$WORK/$NAME.pulse.out" | tail -n 1 >"$OURS_JSON" || true
        [ -s "$OURS_JSON" ] || echo '{}' >"$OURS_JSON"
    fi
    LOAD_END=$(load)

    # ---- final JSON line ----
    "$VENV/bin/python" - "$RB_JSON" "$OURS_JSON" "$THREADS" "$LOAD_START" "$LOAD_MID" "$LOAD_END" "$OURS_NOTE" "$DATA" \
        "$RB_QUALITY" <<'EOF'
import json, os, sys
rb_path, ours_path, threads, l0, l1, l2, note, data, q_path = sys.argv[1:10]
def load(p):
    try:
        with open(p) as f:
            return json.loads(f.read().strip() or "{}")
    except (OSError, ValueError):
        return {}
rb, ours, q = load(rb_path), load(ours_path), load(q_path)
if "test" in rb:
    q, q_src = rb, "this run"
else:
    q_src = f"an earlier quality run ({q_path}, {q.get('epochs')} epochs)" if q else None
def find(obj, keys):
    """first value under any of keys, searching nested objects (bench_sasrec's JSON layout is its own)"""
    if isinstance(obj, dict):
        for k in keys:
            if k in obj and isinstance(obj[k], (int, float)):
                return obj[k]
        for v in obj.values():
            r = find(v, keys)
            if r is not None:
                return r
    return None
ours_spe = find(ours, ["seconds_per_epoch", "sec_per_epoch"])
ours_cpu = find(ours, ["cpu_seconds_per_epoch", "cpu_s_per_epoch"])
rb_spe = rb.get("sec_per_epoch")
def ratio(a, b):
    return round(a / b, 3) if (a and b) else None
# valid with valid: each side's best valid NDCG@10 over its per-epoch evaluations (this run)
rb_curve, ours_curve = rb.get("valid_curve") or [], ours.get("valid_curve") or []
rb_best = max((c["ndcg10"] for c in rb_curve), default=None)
ours_best = max((c["ndcg10"] for c in ours_curve), default=None)
if ours_best is None:
    ours_best = ours.get("best_valid_ndcg10")
def first_reach(curve, thr):
    for c in curve:
        if c["ndcg10"] >= thr - 1e-12:
            return c
    return None
reach = None
if rb_curve and ours_curve:
    thr = min(rb_best, ours_best)
    r, o = first_reach(rb_curve, thr), first_reach(ours_curve, thr)
    reach = {"valid_NDCG@10": thr, "recbole_epoch": r["epoch"], "recbole_train_s": r["train_s"],
             "pulse_epoch": o["epoch"], "pulse_train_s": o["train_s"], "speedup": ratio(r["train_s"], o["train_s"]),
             "note": "training seconds (evaluation excluded) until the first epoch whose valid NDCG@10 reaches the "
                     "lower of the two best valid NDCG@10"}
out = {
    "bench": "sasrec_vs_recbole", "dataset": data, "threads": int(threads),
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    "load_avg": {"start": l0, "after_recbole": l1, "end": l2},
    "recbole": {k: rb.get(k) for k in ("sec_per_epoch", "cpu_s_per_epoch", "sec_per_target", "sec_per_epoch_method",
                                       "epochs", "truncated_by_time_limit", "checkpoint", "best_epoch", "valid", "test",
                                       "train_samples", "valid_curve", "torch", "recbole") if k in rb},
    "pulse": ours if ours else {"note": note or "no JSON from bench_sasrec"},
    "recbole_sec_per_epoch": rb_spe, "pulse_sec_per_epoch": ours_spe, "speedup_per_epoch": ratio(rb_spe, ours_spe),
    "recbole_cpu_s_per_epoch": rb.get("cpu_s_per_epoch"), "pulse_cpu_s_per_epoch": ours_cpu,
    "speedup_cpu_per_epoch": ratio(rb.get("cpu_s_per_epoch"), ours_cpu),
    "recbole_train_targets_per_epoch": rb.get("train_samples"),
    "pulse_train_targets_per_epoch": ours.get("train_targets_per_epoch"),
    "recbole_sec_per_target": rb.get("sec_per_target"), "pulse_sec_per_target": ours.get("seconds_per_target"),
    "speedup_per_target": ratio(rb.get("sec_per_target"), ours.get("seconds_per_target")),
    "recbole_epochs": rb.get("epochs"), "pulse_epochs": ours.get("epochs"),
    "valid_NDCG@10": {"recbole_best": rb_best, "pulse_best": ours_best,
                      "recbole_best_epoch": (max(rb_curve, key=lambda c: c["ndcg10"])["epoch"] if rb_curve else None),
                      "pulse_best_epoch": ours.get("best_epoch")},
    "time_to_same_valid_NDCG@10": reach,
    # RecBole's test figures (pulse's bench evaluates valid only: nothing to pair them with here)
    "recbole_quality_from": q_src, "recbole_quality_epochs": q.get("epochs"),
    "recbole_quality_truncated": q.get("truncated_by_time_limit"),
    "recbole_test_NDCG@10": (q.get("test") or {}).get("ndcg@10"),
    "recbole_test_HR@10": (q.get("test") or {}).get("hit@10"),
}
print(json.dumps(out))
EOF
}

main "$@"
exit
