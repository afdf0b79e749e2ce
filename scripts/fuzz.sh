#!/usr/bin/env bash
# scripts/fuzz.sh — build one libFuzzer target (fuzz/TARGET.c; clang, ASan + UBSan, the whole library
# instrumented, cmake -DPULSE_FUZZ=ON) and run it on its committed seeds fuzz/corpus/TARGET.
#   scripts/fuzz.sh TARGET [SECONDS] [libFuzzer args...]   (default 1800 = 30 minutes)
# TARGET: gguf (also scripts/fuzz-gguf.sh), safetensors, wordpiece, lm_vocab, sasrec, thought, data (also
# scripts/fuzz-data.sh). New inputs go to $FUZZ_OUT/corpus-TARGET (the committed
# seeds are not modified), crashes to $FUZZ_OUT/crash-* (FUZZ_OUT defaults to build-fuzz). Scripts for the
# seeds: scripts/gen-fuzz-corpus.py. A crash exits non-zero with the reproducer's path; rerun it with
#   build-fuzz/fuzz_TARGET CRASH_FILE
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer args...]}
secs=${2:-1800}
shift
shift || true
[ -f "fuzz/$target.c" ] || { echo "fuzz.sh: no fuzz/$target.c" >&2; exit 2; }
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y clang libclang-rt-14-dev >/dev/null 2>&1 || apt-get install -y clang >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPULSE_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Wno-pass-failed" >/dev/null
cmake --build build-fuzz --target "fuzz_$target" -j2 >/dev/null
out=${FUZZ_OUT:-build-fuzz}
mkdir -p "$out/corpus-$target"
out=$(cd "$out" && pwd)
dict=()
[ -f "fuzz/$target.dict" ] && dict=(-dict="$PWD/fuzz/$target.dict")
corpus=$PWD/fuzz/corpus/$target
cd build-fuzz
# Every execution writes its input as files (fuzz/fuzz_files.h): on a tmpfs, not a busy disk.
[ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "./fuzz_$target" "$out/corpus-$target" "$corpus" "${dict[@]}" -artifact_prefix="$out/crash-$target-" \
    -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=30 -max_total_time="$secs" \
    -print_final_stats=1 "$@"
