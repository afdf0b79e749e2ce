#!/usr/bin/env bash
# scripts/fuzz-gguf.sh — build the libFuzzer target for the GGUF reader with clang (ASan + UBSan, coverage
# instrumentation on the reader and the quant kernels it calls) and run it on the committed seed corpus.
#   scripts/fuzz-gguf.sh [SECONDS] [libFuzzer args...]   (default 1800 = 30 minutes)
# New inputs go to build-fuzz/corpus (the committed seeds in fuzz/corpus/gguf are not modified); crashes to
# build-fuzz/crash-*. The target is compiled straight from its sources (fuzz/gguf.c, src/core, the quant
# kernels), so unrelated modules cannot break the fuzz build; `cmake -DPULSE_FUZZ=ON` builds the same target
# inside the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-1800}
shift || true
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y clang libclang-rt-14-dev >/dev/null 2>&1 || apt-get install -y clang >/dev/null
fi
mkdir -p build-fuzz/corpus
clang -std=c11 -D_GNU_SOURCE -g -O1 -march=x86-64-v3 -Wall -Wextra -Werror -fopenmp \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc \
    fuzz/gguf.c src/core/error.c src/core/gguf.c src/core/sys.c src/kernels/quant*.c src/kernels/scratch.c -lopenblas -lm \
    -o build-fuzz/fuzz_gguf
cd build-fuzz
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    ./fuzz_gguf corpus ../fuzz/corpus/gguf -dict=../fuzz/gguf.dict -max_len=65536 -rss_limit_mb=2048 \
    -max_total_time="$secs" -print_final_stats=1 "$@"
