#!/usr/bin/env python3
"""scripts/lm_synth_ref.py — reference logits of the synthetic decoder models for tests/test_lm_synth.c.

The C test writes the tiny GGUF files (tests/lm_synth.h; weights from pulse_rng) and its token sequence:
    build/test_lm_synth --write DIR
then this script computes the logits of every position with the independent numpy implementation
(scripts/lm_ref.py: gguf-py reader + gguf.quants dequantisation) and writes tests/fixtures/lm_synth.txt:
    $PULSE_CACHE/pyref/bin/python scripts/lm_synth_ref.py DIR"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lm_ref import RefLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    d = sys.argv[1]
    toks = [int(t) for t in open(os.path.join(d, "tokens.txt")).read().split()]
    lines = ["# reference logits (numpy, scripts/lm_ref.py) of the synthetic models of tests/lm_synth.h",
             "# arch T V, then T lines of V logits"]
    for arch in ["llama", "gemma3", "qwen2", "phi3", "llama_q8"]:
        # exact float products: the test's tolerance covers the activation rounding of quantised dots
        m = RefLM(os.path.join(d, f"synth_{arch}.gguf"), act_quant=False)
        lg = m.forward(toks)
        lines.append(f"{arch} {lg.shape[0]} {lg.shape[1]}")
        for row in lg:
            lines.append(" ".join(f"{x:.5f}" for x in row))
    out = os.path.join(ROOT, "tests", "fixtures", "lm_synth.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main()
