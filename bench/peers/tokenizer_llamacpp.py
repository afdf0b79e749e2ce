#!/usr/bin/env python3
"""bench/peers/tokenizer_llamacpp.py — the peer of bench/tokenizer.c: llama.cpp's tokenizer (llama-cpp-python,
vocab_only=True) on the same texts, same repeats, special tokens parsed, no BOS. Note the per-call Python/ctypes
overhead it includes (measured separately: 'empty-call' rate). Last stdout line: one JSON object.
Usage: python bench/peers/tokenizer_llamacpp.py MODEL.gguf [TEXTS] [REPEATS]   (reference env: scripts/pyref.sh)
"""
import json
import os
import sys
import time

import llama_cpp


def main():
    model = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/amazon-beauty/items.tsv"
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if path.endswith(".tsv"):
        texts = [l.split(b"\t")[2] for l in lines[1:] if l.count(b"\t") >= 2]
    else:
        texts = lines
    texts = [t for t in texts if t]
    t0 = time.perf_counter()
    m = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    t_load = time.perf_counter() - t0
    for t in texts:
        m.tokenize(t, add_bos=False, special=True)
    total = 0
    t1 = time.perf_counter()
    for _ in range(repeats):
        for t in texts:
            total += len(m.tokenize(t, add_bos=False, special=True))
    dt = time.perf_counter() - t1
    t2 = time.perf_counter()
    for _ in range(repeats):
        for _t in texts:
            m.tokenize(b"", add_bos=False, special=True)
    dt_empty = time.perf_counter() - t2
    n = len(texts)
    print("llama.cpp %s: %d texts x %d: %d tokens in %.3f s: %.0f tokens/s, %.0f texts/s (empty calls alone: %.3f s)"
          % (os.path.basename(model), n, repeats, total, dt, total / dt, n * repeats / dt, dt_empty))
    print(json.dumps({"bench": "tokenizer", "peer": "llama-cpp-python " + llama_cpp.__version__,
                      "model": os.path.basename(model), "texts": n, "repeats": repeats, "tokens": total,
                      "seconds": round(dt, 4), "tokens_per_s": round(total / dt), "texts_per_s": round(n * repeats / dt),
                      "empty_call_seconds": round(dt_empty, 4), "load_s": round(t_load, 3)}))


if __name__ == "__main__":
    main()
