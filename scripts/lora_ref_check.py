#!/usr/bin/env python3
"""scripts/lora_ref_check.py — an independent check of tests/fixtures/lora_ref_smollm2.json's layout: the
initial A / B regenerated from the fixture's formula in GGUF layout, merged into the GGUF's own (still
RoPE-permuted) q / k / v / o weights (W + scale * B @ A), and the batch's loss computed by scripts/lm_ref.py's
numpy decoder (fp32 weights, no activation rounding). It must equal the fixture's PEFT loss (which ran on
transformers' un-permuted weights with the B rows un-permuted): if the q / k rows of lora_b were in the wrong
order, the two would differ. Prints {"fixture_loss", "numpy_gguf_loss", "rel"} and exits 1 when rel > 1e-4.
Run: .cache/pyref/bin/python scripts/lora_ref_check.py [MODEL.gguf] [FIXTURE.json]"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lm_ref import RefLM, log_softmax  # noqa: E402
from lora_ref import AMP_A, AMP_B, GGUF_NAME, TARGETS, init_value  # noqa: E402


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    fix = json.load(open(sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "tests/fixtures/lora_ref_smollm2.json")))
    m = RefLM(model, act_quant=False)
    scale = fix["lora"]["scale"]
    for il in range(m.n_layer):
        for t in TARGETS:
            name = f"blk.{il}.{GGUF_NAME[t]}.weight"
            w = m.t[name]
            r = fix["lora"]["rank"]
            a = init_value(il, t, 0, (r, w.shape[1]), AMP_A)
            b = init_value(il, t, 1, (w.shape[0], r), AMP_B)
            m.t[name] = (w.astype(np.float64) + scale * (b.astype(np.float64) @ a.astype(np.float64))).astype(np.float32)
    tot, n = 0.0, 0
    for s in fix["batch"]:
        toks, npr = s["tokens"], s["n_prompt"]
        lp = log_softmax(m.forward(toks))
        for t in range(npr - 1, len(toks) - 1):
            tot -= lp[t, toks[t + 1]]
            n += 1
    loss = tot / n
    rel = abs(loss - fix["loss"]) / fix["loss"]
    print(json.dumps({"fixture_loss": fix["loss"], "numpy_gguf_loss": loss, "n": n, "rel": rel}))
    sys.exit(0 if rel <= 1e-4 and n == fix["n_loss_tokens"] else 1)


if __name__ == "__main__":
    main()
