#!/usr/bin/env python3
"""scripts/lora_llama_check.py — does a LoRA adapter change llama.cpp's output the way it changes pulse's?
Teacher-forced log-probabilities of every completion token of prompt/completion JSON lines, with the adapter,
from llama-cpp-python (lora_path) and from pulse (libpulse.so through ctypes: pulse_lora_load +
pulse_lm_ctx_set_lora + pulse_lm_decode), on the same token ids (llama.cpp's tokenizer). Prints one JSON line:
mean and max |delta| per token with the adapter, the same without it, and how much the adapter moved the
logprobs (so a tiny delta is not a no-op adapter). Needs the reference venv (scripts/pyref.sh).

  python scripts/lora_llama_check.py MODEL.gguf ADAPTER.gguf DATA.jsonl [--n 20] [--lib build/libpulse.so]
"""
import ctypes as C
import json
import sys

import numpy as np
from llama_cpp import Llama


class Batch(C.Structure):
    _fields_ = [("n_tokens", C.c_int), ("tokens", C.POINTER(C.c_int)), ("seq", C.POINTER(C.c_int)),
                ("logits", C.POINTER(C.c_uint8))]


class HParams(C.Structure):  # the head of pulse_lm_hparams
    _fields_ = [("arch", C.c_int), ("arch_name", C.c_char_p), ("n_vocab", C.c_int)]


class CtxParams(C.Structure):
    _fields_ = [("n_ctx", C.c_int), ("n_seq_max", C.c_int), ("n_batch", C.c_int), ("n_kv_tokens", C.c_int),
                ("kv_block", C.c_int), ("keep_activations", C.c_int), ("truncate", C.c_int)]


def log_softmax_at(row, t):
    row = np.asarray(row, dtype=np.float64)
    m = row.max()
    return row[t] - (m + np.log(np.exp(row - m).sum()))


class Pulse:
    def __init__(self, lib, model, adapter):
        self.L = L = C.CDLL(lib)
        L.pulse_last_error.restype = C.c_char_p
        L.pulse_lm_logits.restype = C.POINTER(C.c_float)
        L.pulse_lm_get_hparams.restype = C.POINTER(HParams)
        self.m = C.c_void_p()
        self.a = C.c_void_p()
        self.check(L.pulse_lm_load(model.encode(), None, C.byref(self.m)))
        if adapter:
            self.check(L.pulse_lora_load(self.m, adapter.encode(), C.byref(self.a)))
        self.n_vocab = L.pulse_lm_get_hparams(self.m).contents.n_vocab

    def check(self, st):
        if st != 0:
            raise RuntimeError(self.L.pulse_last_error().decode())

    def logprobs(self, ids, n_prompt):
        L = self.L
        p = CtxParams(len(ids) + 8, 1, 512, 0, 16, 0, 0)  # n_batch 512: llama-cpp-python's
        c = C.c_void_p()
        self.check(L.pulse_lm_ctx_new(self.m, C.byref(p), C.byref(c)))
        if self.a:
            self.check(L.pulse_lm_ctx_set_lora(c, self.a, C.c_float(1.0)))
        s = L.pulse_lm_seq_new(c)
        n = len(ids)
        toks = (C.c_int * n)(*ids)
        seq = (C.c_int * n)(*([s] * n))
        want = (C.c_uint8 * n)(*[1 if i >= n_prompt - 1 else 0 for i in range(n)])
        b = Batch(n, toks, seq, want)
        self.check(L.pulse_lm_decode(c, C.byref(b)))
        out = []
        for i in range(n_prompt - 1, n - 1):
            row = np.ctypeslib.as_array(L.pulse_lm_logits(c, i), shape=(self.n_vocab,))
            out.append(log_softmax_at(row, ids[i + 1]))
        L.pulse_lm_ctx_free(c)
        return out


def llama_logprobs(llm, ids, n_prompt):
    llm.reset()
    llm.eval(ids)
    sc = llm.scores
    return [log_softmax_at(sc[i], ids[i + 1]) for i in range(n_prompt - 1, len(ids) - 1)]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    model, adapter, data = sys.argv[1:4]
    opt = {"--n": "20", "--lib": "build/libpulse.so"}
    for i in range(4, len(sys.argv) - 1, 2):
        opt[sys.argv[i]] = sys.argv[i + 1]
    rows = [json.loads(l) for l in open(data) if l.strip()][: int(opt["--n"])]
    kw = dict(n_ctx=1024, logits_all=True, verbose=False, n_threads=2, n_batch=512)
    base = Llama(model_path=model, **kw)
    lora = Llama(model_path=model, lora_path=adapter, **kw)
    pb, pa = Pulse(opt["--lib"], model, None), Pulse(opt["--lib"], model, adapter)
    d_lora, d_base, moved = [], [], []
    for r in rows:
        p = base.tokenize(r["prompt"].encode(), add_bos=True, special=False)
        c = base.tokenize(r["completion"].encode(), add_bos=False, special=False)
        ids = p + c
        lb, la = llama_logprobs(base, ids, len(p)), llama_logprobs(lora, ids, len(p))
        qb, qa = pb.logprobs(ids, len(p)), pa.logprobs(ids, len(p))
        d_lora += [abs(x - y) for x, y in zip(la, qa)]
        d_base += [abs(x - y) for x, y in zip(lb, qb)]
        moved += [abs(x - y) for x, y in zip(la, lb)]
    print(json.dumps({"pairs": len(rows), "tokens": len(d_lora), "mean_abs_delta_lora": float(np.mean(d_lora)),
                      "max_abs_delta_lora": float(np.max(d_lora)), "mean_abs_delta_base": float(np.mean(d_base)),
                      "mean_abs_adapter_effect": float(np.mean(moved)), "adapter": adapter}))


if __name__ == "__main__":
    main()
