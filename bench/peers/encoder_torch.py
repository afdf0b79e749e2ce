#!/usr/bin/env python3
"""bench/peers/encoder_torch.py — the peer of bench/encoder.c: sentence-transformers / torch on CPU with the
same texts, threads and shapes:
  inference: SentenceTransformer.encode of N texts of LEN tokens, batch BATCH (tokenisation included);
  training: two encoders (BertModel + mean pooling + normalize, dropout on), B texts of TLEN tokens each,
            in-batch InfoNCE (tau 0.05), backward, grad clip 1.0, AdamW (lr 2e-5, wd 0.01) on both.
--precision bf16 runs both under torch.autocast('cpu', dtype=torch.bfloat16) (bf16 matmuls via oneDNN,
fp32 master weights and optimiser; the backward outside the autocast region, as PyTorch recommends).
Prints a human summary and, last, one JSON object.
Usage: python encoder_torch.py [--encoder DIR] [--threads 2] [--n 512] [--batch 64] [--len 64]
                               [--train-batch 16] [--train-len 128] [--steps 5] [--precision fp32|bf16]"""
import argparse
import contextlib
import json
import os
import time

import torch

WORDS = ["the", "skin", "cream", "hair", "nail", "polish", "oil", "light", "color", "brush",
         "natural", "face", "body", "wash", "shampoo", "dry", "soft", "fresh", "scent", "gentle",
         "daily", "care", "red", "pink", "gold", "matte", "gloss", "lip", "eye", "liner",
         "mask", "clean", "serum", "vitamin", "organic", "smooth", "long", "lasting", "formula", "set",
         "for", "with", "and", "of", "a", "to", "in", "bought", "because", "she",
         "likes", "brand", "beauty", "value", "quality", "shade", "perfect", "travel", "size", "pack"]


def make_text(i):
    return " ".join(WORDS[(i * 7 + j * 13 + j * j) % len(WORDS)] for j in range(200))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default=os.path.join(os.environ.get("PULSE_CACHE", ".cache"), "encoders", "minilm-l6"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--len", type=int, default=64)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--train-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()

    def amp():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    texts = [make_text(i) for i in range(max(a.n, 2 * a.train_batch))]
    st = SentenceTransformer(a.encoder, device="cpu")
    st.max_seq_length = a.len
    ntok = len(st.tokenizer(texts[0], truncation=True, max_length=a.len)["input_ids"])
    with amp():
        st.encode(texts[:a.batch], batch_size=a.batch, normalize_embeddings=True)  # warm-up
        t0 = time.perf_counter()
        st.encode(texts[:a.n], batch_size=a.batch, normalize_embeddings=True)
        t_inf = time.perf_counter() - t0
    tps = a.n / t_inf
    print("inference (%s): %d texts x %d tokens, batch %d, %d threads: %.3f s, %.1f texts/s" % (
        a.precision, a.n, ntok, a.batch, a.threads, t_inf, tps))
    del st
    if a.steps <= 0:  # inference only
        print(json.dumps({"bench": "encoder", "impl": "torch %s / sentence-transformers" % torch.__version__,
                          "threads": a.threads, "precision": a.precision, "infer_texts": a.n, "infer_len": ntok,
                          "infer_batch": a.batch, "infer_texts_per_s": round(tps, 1)}))
        return

    tok = AutoTokenizer.from_pretrained(a.encoder)
    encs = [AutoModel.from_pretrained(a.encoder).train() for _ in range(2)]
    opts = [torch.optim.AdamW(m.parameters(), lr=2e-5, weight_decay=0.01) for m in encs]

    def embed(m, batch):
        x = tok(batch, truncation=True, max_length=a.train_len, padding=True, return_tensors="pt")
        h = m(**x).last_hidden_state
        mask = x["attention_mask"].unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=1)

    tb = a.train_batch
    total, loss = 0.0, None
    for s in range(a.steps + 1):
        ts = time.perf_counter()
        for o in opts:
            o.zero_grad(set_to_none=False)
        with amp():
            yb = embed(encs[0], texts[:tb]).float()
            yr = embed(encs[1], texts[tb:2 * tb]).float()
        logits = yb @ yr.T / 0.05
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(tb))
        loss.backward()
        for m, o in zip(encs, opts):
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            o.step()
        dt = time.perf_counter() - ts
        if s > 0:
            total += dt
    sps = total / a.steps
    print("training (%s): 2 encoders, batch %d x %d tokens, forward+backward+AdamW: %.3f s/step (loss %.4f)" % (
        a.precision, tb, a.train_len, sps, float(loss)))
    print(json.dumps({"bench": "encoder", "impl": "torch %s / sentence-transformers" % torch.__version__,
                      "threads": a.threads, "precision": a.precision, "infer_texts": a.n, "infer_len": ntok, "infer_batch": a.batch,
                      "infer_texts_per_s": round(tps, 1), "train_batch": tb, "train_len": a.train_len,
                      "train_s_per_step": round(sps, 4),
                      "cpu_capability": torch.backends.cpu.get_cpu_capability()}))


if __name__ == "__main__":
    main()
