#!/usr/bin/env bash
# scripts/fuzz-gguf.sh — build the libFuzzer target for the GGUF reader (clang, ASan + UBSan, the whole
# library instrumented for coverage) and run it on the committed seed corpus.
#   scripts/fuzz-gguf.sh [SECONDS]   (default 1800 = 30 minutes; extra args go to libFuzzer)
# New inputs go to build-fuzz/corpus (the committed seeds in fuzz/corpus/gguf are not modified); crashes to
# build-fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1800}
shift || true
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y clang libclang-rt-14-dev >/dev/null 2>&1 || apt-get install -y clang >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPULSE_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" >/dev/null
cmake --build build-fuzz --target fuzz_gguf -j2
mkdir -p build-fuzz/corpus
cd build-fuzz
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    ./fuzz_gguf corpus ../fuzz/corpus/gguf -dict=../fuzz/gguf.dict -max_len=65536 -rss_limit_mb=2048 \
    -max_total_time="$secs" -print_final_stats=1 "$@"
