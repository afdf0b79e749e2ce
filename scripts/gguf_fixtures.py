#!/usr/bin/env python3
"""scripts/gguf_fixtures.py — reference numbers for the GGUF reader and dequantisers, from the `gguf` Python
package (llama.cpp's gguf-py, an independent implementation), for tests/test_core_gguf_models.c:

  tests/fixtures/gguf_blocks.json   random bytes (with sane fp16 scales) for every supported ggml type, two
                                    blocks each, and gguf-py's dequantisation of them (checks every bit position
                                    of each block layout, including types the real models do not use);
  tests/fixtures/gguf_smollm2.json  for a few tensors of each real model: type, shape, the first 64
  tests/fixtures/gguf_gemma3.json   dequantised values, and the sums of a few rows (first 4, middle, last).

Usage: /work/cache/pyref/bin/python scripts/gguf_fixtures.py [MODELS_DIR]   (default ${PULSE_CACHE:-.cache}/models;
real-model fixtures are skipped when a model is absent: run scripts/fetch-models.sh first)."""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
fix = os.path.join(root, "tests", "fixtures")
os.makedirs(fix, exist_ok=True)
models = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("PULSE_CACHE", os.path.join(root, ".cache")),
                                                             "models")

# ---- synthetic blocks ----
rng = np.random.default_rng(20260101)
# type: (block elems, block bytes, [(byte offset, 'e' (fp16) or 'f' (f32))] scale fields to make finite)
TYPES = {
    "F32": (Q.F32, 1, 4, []), "F16": (Q.F16, 1, 2, []), "BF16": (Q.BF16, 1, 2, []),
    "Q4_0": (Q.Q4_0, 32, 18, [(0, "e")]), "Q4_1": (Q.Q4_1, 32, 20, [(0, "e"), (2, "e")]),
    "Q5_0": (Q.Q5_0, 32, 22, [(0, "e")]), "Q5_1": (Q.Q5_1, 32, 24, [(0, "e"), (2, "e")]),
    "Q8_0": (Q.Q8_0, 32, 34, [(0, "e")]), "Q4_K": (Q.Q4_K, 256, 144, [(0, "e"), (2, "e")]),
    "Q5_K": (Q.Q5_K, 256, 176, [(0, "e"), (2, "e")]), "Q6_K": (Q.Q6_K, 256, 210, [(208, "e")]),
}  # (Q8_K is only an activation format: gguf-py has no dequantiser for it)
blocks = []
for name, (qt, be, bb, scales) in TYPES.items():
    nblk = 2 if be > 1 else 64
    raw = bytearray(rng.integers(0, 256, size=nblk * bb, dtype=np.uint8).tobytes())
    for b in range(nblk):
        for off, kind in scales:
            v = float(rng.uniform(-0.05, 0.05))
            raw[b * bb + off: b * bb + off + (2 if kind == "e" else 4)] = np.array([v], dtype="<f2" if kind == "e" else "<f4").tobytes()
    if name in ("F32",):  # finite floats
        raw = bytearray(rng.standard_normal(nblk).astype("<f4").tobytes())
    if name in ("F16",):
        raw = bytearray(rng.standard_normal(nblk).astype("<f2").tobytes())
    if name in ("BF16",):
        f = rng.standard_normal(nblk).astype("<f4").view("<u4") >> 16
        raw = bytearray(f.astype("<u2").tobytes())
    n = nblk * be
    arr = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
    y = dequantize(arr, qt).reshape(-1)
    assert y.size == n, (name, y.size, n)
    blocks.append({"type": name.lower().replace("_k", "_K"), "ggml_type": int(qt), "n": n, "hex": bytes(raw).hex(),
                   "values": [float(v) for v in y.astype(np.float32)]})
with open(os.path.join(fix, "gguf_blocks.json"), "w") as f:
    json.dump({"generator": "scripts/gguf_fixtures.py (gguf-py %s)" % getattr(gguf, "__version__", "?"),
               "blocks": blocks}, f, indent=0)
print("wrote gguf_blocks.json:", len(blocks), "types")

# ---- real models ----
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.29.ffn_up.weight",
                 "blk.0.attn_norm.weight", "output_norm.weight"]),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf",
               ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
                "blk.0.ffn_down.weight", "blk.17.ffn_gate.weight", "blk.0.attn_q_norm.weight", "output_norm.weight"]),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


for key, (fname, names) in MODELS.items():
    path = os.path.join(models, fname)
    if not os.path.exists(path):
        print("skip", key, "(", path, "absent )")
        continue
    r = gguf.GGUFReader(path)
    by = {t.name: t for t in r.tensors}
    out = []
    for nm in names:
        t = by[nm]
        ne = [int(x) for x in t.shape]  # ne[0] first (gguf-py keeps GGUF order)
        rows = int(np.prod(ne[1:])) if len(ne) > 1 else 1
        data = np.asarray(t.data)
        if data.ndim == 1:
            data = data.reshape(rows, -1)
        else:
            data = data.reshape(rows, -1)
        pick = sorted(set([0, 1, 2, 3, rows // 2, rows - 1]) & set(range(rows)))
        sums = []
        first = None
        for ri in pick:
            row = dequantize(data[ri:ri + 1], t.tensor_type).reshape(-1).astype(np.float64)
            assert row.size == ne[0]
            if ri == 0:
                first = [float(np.float32(v)) for v in row[:64]]
            sums.append({"row": ri, "sum": float(row.sum()), "abs_sum": float(np.abs(row).sum())})
        out.append({"name": nm, "type": t.tensor_type.name.lower().replace("_k", "_K"), "ggml_type": int(t.tensor_type),
                    "ne": ne, "first": first, "rows": sums})
    doc = {"generator": "scripts/gguf_fixtures.py", "file": fname, "sha256": sha256(path),
           "n_tensors": len(r.tensors), "tensors": out}
    with open(os.path.join(fix, "gguf_%s.json" % key), "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote gguf_%s.json:" % key, len(out), "tensors")
