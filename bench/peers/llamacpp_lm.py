#!/usr/bin/env python3
"""bench/peers/llamacpp_lm.py — llama.cpp (llama-cpp-python, low-level API) throughput on a GGUF file, measured the
way bench/lm.c measures pulse: prefill tok/s (one sequence of N random tokens, logits of the last), decode tok/s
(batch 1, greedy, after the prefill), and generation tok/s with P sequences decoded together (one llama_decode of P
tokens per step, greedy argmax per sequence), same threads; each also per second of process CPU time (*_cpu_s).
Last stdout line: one JSON object.
Usage: $PULSE_CACHE/pyref/bin/python bench/peers/llamacpp_lm.py MODEL.gguf [--threads 2] [--prompt 128] [--gen 64]
       [--parallel 32] [--parallel-prompt 32]"""
import argparse
import json
import random
import resource
import time

import numpy as np
import llama_cpp as L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--parallel-prompt", type=int, default=32)
    a = ap.parse_args()
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    model = L.llama_model_load_from_file(a.model.encode(), mp)
    vocab = L.llama_model_get_vocab(model)
    nv = L.llama_vocab_n_tokens(vocab)
    P, npp = a.parallel, a.parallel_prompt
    per_seq = max(a.prompt, npp) + a.gen + 8
    cp = L.llama_context_default_params()
    cp.n_ctx = max(per_seq * P, a.prompt + a.gen + 8)
    cp.n_batch = max(a.prompt, P * npp)
    cp.n_ubatch = 512
    cp.n_seq_max = P
    cp.n_threads = a.threads
    cp.n_threads_batch = a.threads
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    mem = L.llama_get_memory(ctx)
    nmax = max(a.prompt, P * npp, P)
    batch = L.llama_batch_init(nmax, 0, 1)
    rng = random.Random(1)
    lo, span = (1000, nv // 2 - 1000) if nv > 2000 else (0, nv)

    def decode(toks, poss, seqs, outs):
        batch.n_tokens = len(toks)
        for i, (t, p, s, o) in enumerate(zip(toks, poss, seqs, outs)):
            batch.token[i] = t
            batch.pos[i] = p
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = s
            batch.logits[i] = 1 if o else 0
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def argmax_ith(i):
        ptr = L.llama_get_logits_ith(ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(nv,))))

    # warm-up
    decode([lo], [0], [0], [1])
    L.llama_memory_clear(mem, True)
    # prefill + decode, one sequence
    toks = [lo + rng.randrange(span) for _ in range(a.prompt)]
    t0, c0 = time.perf_counter(), time.process_time()
    decode(toks, list(range(a.prompt)), [0] * a.prompt, [i == a.prompt - 1 for i in range(a.prompt)])
    L.llama_synchronize(ctx)
    prefill = a.prompt / (time.perf_counter() - t0)
    prefill_cpu = a.prompt / (time.process_time() - c0)
    t = argmax_ith(a.prompt - 1)
    t0, c0 = time.perf_counter(), time.process_time()
    for g in range(a.gen):
        decode([t], [a.prompt + g], [0], [1])
        t = argmax_ith(0)
    dec = a.gen / (time.perf_counter() - t0)
    dec_cpu = a.gen / (time.process_time() - c0)
    L.llama_memory_clear(mem, True)
    # P sequences together
    toks, poss, seqs, outs = [], [], [], []
    for s in range(P):
        for i in range(npp):
            toks.append(lo + rng.randrange(span))
            poss.append(i)
            seqs.append(s)
            outs.append(i == npp - 1)
    t0 = time.perf_counter()
    decode(toks, poss, seqs, outs)
    L.llama_synchronize(ctx)
    bpre = P * npp / (time.perf_counter() - t0)
    nxt = [argmax_ith(s * npp + npp - 1) for s in range(P)]
    t0, c0 = time.perf_counter(), time.process_time()
    for g in range(a.gen):
        decode(nxt, [npp + g] * P, list(range(P)), [1] * P)
        nxt = [argmax_ith(s) for s in range(P)]
    bat = P * a.gen / (time.perf_counter() - t0)
    bat_cpu = P * a.gen / (time.process_time() - c0)
    res = {"peer": "llama.cpp", "version": L.__version__, "model": a.model, "threads": a.threads,
           "prefill_tok_s": prefill, "decode_tok_s": dec, "batched_tok_s": bat, "batched_prefill_tok_s": bpre,
           "n_parallel": P, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
           "prefill_tok_cpu_s": prefill_cpu, "decode_tok_cpu_s": dec_cpu, "batched_tok_cpu_s": bat_cpu}
    print(f"llama.cpp {a.model}: prefill {prefill:.1f} tok/s, decode {dec:.1f} tok/s, "
          f"{P} sequences {bat:.1f} tok/s, peak RSS {res['peak_rss_mb']:.1f} MB")
    print(json.dumps(res))
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)


if __name__ == "__main__":
    main()
