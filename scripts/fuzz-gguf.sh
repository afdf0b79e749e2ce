#!/usr/bin/env bash
# scripts/fuzz-gguf.sh — the libFuzzer target for the GGUF reader (fuzz/gguf.c: header, metadata, tensor table,
# then every quant kernel on the tensors that load), run on the committed seeds fuzz/corpus/gguf with the dict
# fuzz/gguf.dict. Kept for its documented name; it is `scripts/fuzz.sh gguf`, which builds the target in the
# clang + libFuzzer + ASan/UBSan tree build-fuzz (cmake -DPULSE_FUZZ=ON, the whole library instrumented).
# It used to compile a hand-written list of sources, which broke at link time as soon as the reader's kernels
# needed a new file (src/core/cpu.c).
#   scripts/fuzz-gguf.sh [SECONDS] [libFuzzer args...]   (default 1800 = 30 minutes)
# New inputs go to $FUZZ_OUT/corpus-gguf (default build-fuzz), crashes to $FUZZ_OUT/crash-gguf-*.
set -euo pipefail
secs=${1:-1800}
shift || true
exec "$(dirname "$0")/fuzz.sh" gguf "$secs" "$@"
