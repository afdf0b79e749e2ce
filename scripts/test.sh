#!/usr/bin/env bash
# scripts/test.sh — the test command: configure, build (Release, x86-64-v3) and run the whole CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
cd build && ctest --output-on-failure -j2
