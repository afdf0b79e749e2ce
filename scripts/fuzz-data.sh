#!/usr/bin/env bash
# scripts/fuzz-data.sh — build the libFuzzer target for the dataset readers (fuzz/data.c: S3-Rec, RecBole,
# LastFM, Amazon 2018 JSON lines, then pop evaluation of what loads; clang, ASan + UBSan, the whole library
# instrumented) and run it on the committed seeds.
#   scripts/fuzz-data.sh [SECONDS]   (default 600; extra args go to libFuzzer)
# New inputs go to build-fuzz/corpus-data (fuzz/corpus/data is not modified); crashes to build-fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y clang libclang-rt-14-dev >/dev/null 2>&1 || apt-get install -y clang >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPULSE_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Wno-pass-failed" >/dev/null
cmake --build build-fuzz --target fuzz_data -j2
mkdir -p build-fuzz/corpus-data
cd build-fuzz
[ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm # inputs are written as files: on a tmpfs
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    ./fuzz_data corpus-data ../fuzz/corpus/data -max_len=4096 -rss_limit_mb=2048 \
    -max_total_time="$secs" -print_final_stats=1 "$@"
