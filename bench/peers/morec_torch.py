#!/usr/bin/env python3
"""bench/peers/morec_torch.py — a plain PyTorch peer of `pulse textrec train --arch morec` (frozen text vectors,
`--finetune-layers 0`), the training-time half of bench/peers/morec_torch.sh (runs inside the reference venv
$PULSE_CACHE/pyref of scripts/pyref.sh: torch, sentence-transformers / transformers).

What it reproduces, read off src/data, src/textrec and src/sasrec:
  data      an S3-Rec/P5 folder: sequences.txt ("user item item ...", chronological; --max-users N keeps the first N
            lines, and the catalogue is then items 1..max id among them, as pulse's loader) and items.tsv (header with
            item_id; the title column is the first of title / movie_title / artist_name / name; a trailing CR is
            dropped). Leave-one-out: the last item is test, the one before valid, the rest the training prefix.
  item text the non-empty ones of title, brand, categories, description joined with ". " (pulse_textrec_item_text);
            item 0 (padding) is "" and its vector row is zeroed.
  t_i       MiniLM-L6 (the encoder folder, sentence-transformers layout) over the item text cut at --text-len tokens
            ([CLS]/[SEP] included), mean pooling over the real tokens, L2-normalised: pulse's encoder with the
            folder's 1_Pooling config (mean) and normalize=1. Computed once, before training (like pulse's cached
            vectors), in batches of 64 texts, timed apart from the training epochs.
  model     SASRec-CE, pmixer-style pre-LN blocks: emb = E[i] * sqrt(d) + P[pos] (pos = the column of the
            left-padded maxlen window), dropout; per block Q = LN1(x), attention(q = Q Wq, k = x Wk, v = x Wv),
            causal over the real keys, dropout on the probabilities, x = Q + att Wo; y = LN2(x);
            x = y + dropout(W2 relu(dropout(W1 y))); final LN; every LayerNorm eps 1e-8. d 64, 2 blocks, 1 head,
            maxlen 50, dropout 0.2. Item vectors E_i = E_id[i] + W t_i + b (MoRec + ID) or W t_i + b (--no-id),
            used at the input and as the tied output table; W t + b recomputed for the whole catalogue every step.
  init      xavier-normal E_id, P, Wq/Wk/Wv (fans d, 3d), Wo, W1, W2, W (fans d, 384); b1, b2 uniform +-1/sqrt(d);
            other biases 0, LayerNorm 1 / 0 (pulse's sasrec_create / textrec_create; other random streams).
  training  one pass over the users with >= 2 training items per epoch, shuffled, batches of 128; each user's
            most recent maxlen (input -> next item) pairs of the training prefix, loss = full-softmax CE over items
            1..V-1 at every position, mean over the batch's positions; Adam lr 1e-3, betas (0.9, 0.98), eps 1e-8,
            no weight decay, one optimiser over every parameter (pulse: the same update for SASRec's and W, b).
  eval      (--eval) full ranking on the valid split after each epoch, history masked (the user's earlier items
            cannot be recommended; a held-out item that repeats one of them is a miss), ties counted against the
            target: pulse_rank_full's rule, over users with >= 3 items.

Last stdout line: one JSON object (seconds per training epoch: each epoch, best, mean; text-encoding seconds; losses;
the valid curve with --eval). Timed epochs cover batching, forward, backward and the Adam step only.
--parity-model FILE instead loads a `pulse textrec train` model file into this model and prints its valid and test
metrics: equal to pulse's own = the same forward, item vectors, scoring and ranking rule (checked: identical to 6
digits on Beauty's first 500 and 2,000 users, with and without ID embeddings).

Differences from pulse that remain (none changes what is computed per real token):
  - random streams: initial values, the user shuffle and the dropout masks are torch's / numpy's draws (pulse hashes
    its masks per example); the distributions, the keep rate and the 1/(1-p) scaling are the same;
  - layout: the row-wise layers run on the padded (B, Tb) batch (Tb = the batch's longest sequence, as pulse trims;
    the padding rows are computed and never read, a padding query attends to itself only so that no row is NaN);
    pulse runs them on the packed real tokens only. This is how PyTorch SASRec implementations work (pmixer, RecBole);
  - text vectors: sentence-transformers fp32 here, pulse bf16 products by default (cosine >= 0.9999 to fp32;
    --check-pulse measures it on the first items), so the two sides train on very slightly different t_i;
  - the output softmax runs over items 1..V-1 (the padding column left out), pulse masks column 0 with -1e30:
    the same probabilities.
"""
import argparse
import hashlib
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-8


# ---------------------------------------------------------------- data (as src/data/read_seq.c, dataset.c)
def read_lines(path):
    """lines as pulse's reader gives them: split at \\n, one trailing \\r dropped"""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(l[:-1] if l.endswith(b"\r") else l).decode("utf-8", errors="surrogateescape") for l in lines]


def load_sequences(path, max_users):
    seqs = []
    for no, line in enumerate(read_lines(path), 1):
        if max_users > 0 and len(seqs) >= max_users:
            break
        tok = line.split()
        if len(tok) < 2:
            raise SystemExit(f"{path}:{no}: expected 'user item item ...', found '{line[:60]}'")
        seqs.append(np.asarray([int(t) for t in tok[1:]], dtype=np.int64))
    n_items = max(int(s.max()) for s in seqs)
    return seqs, n_items


def load_item_texts(path, n_items):
    """texts[0..n_items] (texts[0] = ""), pulse_textrec_item_text over pd_read_items_tsv's fields"""
    fields = {}
    if os.path.exists(path):
        lines = read_lines(path)
        header = lines[0].split("\t")
        if "item_id" not in header:
            raise SystemExit(f"{path}:1: expected a header with an 'item_id' column")
        idc = header.index("item_id")
        names = header
        for name in names:
            if name and name != "item_id":
                fields.setdefault(name, [None] * (n_items + 1))
        for line in lines[1:]:
            if not line:
                continue
            f = line.split("\t")
            it = int(f[idc])
            if it < 1 or it > n_items:
                continue
            for c, v in enumerate(f):
                if c != idc and names[c]:
                    fields[names[c]][it] = v
    title = next((fields[n] for n in ("title", "movie_title", "artist_name", "name") if n in fields), None)
    parts = [title] + [fields.get(n) for n in ("brand", "categories", "description")]
    texts = [""]
    for i in range(1, n_items + 1):
        texts.append(". ".join(p[i] for p in parts if p is not None and p[i]))
    return texts


# ---------------------------------------------------------------- text vectors
def encode_texts(texts, encoder, text_len, dtype, cache_dir):
    """(V, D) float32 L2-normalised mean-pooled vectors (row 0 zero), seconds, read from the cache?, how computed"""
    key = None
    if cache_dir:
        h = hashlib.sha256()
        st = os.stat(os.path.join(encoder, "model.safetensors"))
        h.update(f"{os.path.abspath(encoder)}|{st.st_size}|{int(st.st_mtime)}|{text_len}|{dtype}".encode())
        for t in texts:
            h.update(t.encode("utf-8", errors="surrogateescape") + b"\0")
        key = os.path.join(cache_dir, f"torch-textvec-{h.hexdigest()[:16]}.npy")
        if os.path.exists(key):
            t0 = time.perf_counter()
            v = np.load(key)
            return v, time.perf_counter() - t0, True, "cache"
    t0 = time.perf_counter()
    impl = "sentence-transformers"
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast("cpu", enabled=False)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    with torch.inference_mode(), ctx:
        if SentenceTransformer is not None:
            st_model = SentenceTransformer(encoder, device="cpu")
            st_model.max_seq_length = text_len
            v = st_model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
        else:  # transformers: the same mean pooling over the attention mask + L2 normalisation
            impl = "transformers"
            from transformers import AutoModel, AutoTokenizer
            tok = AutoTokenizer.from_pretrained(encoder)
            model = AutoModel.from_pretrained(encoder).eval()
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            v = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
            for s in range(0, len(order), 64):
                idx = order[s:s + 64]
                b = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=text_len,
                        return_tensors="pt")
                x = model(**b).last_hidden_state.float()
                m = b["attention_mask"].unsqueeze(-1).float()
                pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
                v[idx] = F.normalize(pooled, dim=-1).numpy()
    v = np.ascontiguousarray(v, dtype=np.float32)
    v[0] = 0.0
    secs = time.perf_counter() - t0
    if key:
        os.makedirs(cache_dir, exist_ok=True)
        np.save(key + ".tmp.npy", v)
        os.replace(key + ".tmp.npy", key)
    return v, secs, False, impl


# ---------------------------------------------------------------- model
def xavier_(w, fan_in, fan_out):
    with torch.no_grad():
        w.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))


class Block(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.heads, self.p = heads, p
        self.ln1 = nn.LayerNorm(d, eps=LN_EPS)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)  # k and v from the block input (pmixer), one product
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=LN_EPS)
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, d)
        for w in (self.q.weight, self.kv.weight[:d], self.kv.weight[d:]):
            xavier_(w, d, 3 * d)
        for lin in (self.o, self.w1, self.w2):
            xavier_(lin.weight, d, d)
        nn.init.zeros_(self.q.bias), nn.init.zeros_(self.kv.bias), nn.init.zeros_(self.o.bias)
        bound = 1.0 / math.sqrt(d)
        nn.init.uniform_(self.w1.bias, -bound, bound)
        nn.init.uniform_(self.w2.bias, -bound, bound)

    def forward(self, x, mask):
        B, T, d = x.shape
        h, p = self.heads, self.p if self.training else 0.0
        Q = self.ln1(x)
        q = self.q(Q).view(B, T, h, d // h).transpose(1, 2)
        k, v = self.kv(x).view(B, T, 2, h, d // h).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = Q + self.o(a.transpose(1, 2).reshape(B, T, d))
        y = self.ln2(x)
        f = self.w2(F.relu(F.dropout(self.w1(y), p, self.training)))
        return y + F.dropout(f, p, self.training)


class MoRecSASRec(nn.Module):
    def __init__(self, text_vecs, d=64, blocks=2, heads=1, maxlen=50, dropout=0.2, use_id=True):
        super().__init__()
        V, D = text_vecs.shape
        self.V, self.d, self.T, self.p = V, d, maxlen, dropout
        # items 1..V-1; row 0 (padding) is a constant zero row, as pulse keeps it
        self.register_buffer("text", torch.from_numpy(text_vecs[1:]).contiguous())
        self.item_emb = nn.Parameter(torch.empty(V - 1, d)) if use_id else None
        if use_id:
            xavier_(self.item_emb, d, V)
        self.proj = nn.Linear(D, d)  # W (d, D), b (d): the MoRec projection
        xavier_(self.proj.weight, d, D)
        nn.init.zeros_(self.proj.bias)
        self.pos_emb = nn.Parameter(torch.empty(maxlen, d))
        xavier_(self.pos_emb, d, maxlen)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(blocks))
        self.ln_f = nn.LayerNorm(d, eps=LN_EPS)

    def item_vectors(self):
        """(V-1, d): items 1..V-1, E_id + W t + b recomputed from the frozen text vectors"""
        x = self.proj(self.text)
        return x + self.item_emb if self.item_emb is not None else x

    def hidden(self, ids, items):
        """ids (B, Tb) left-padded, absolute window columns maxlen-Tb..maxlen-1; final states (B, Tb, d)"""
        B, Tb = ids.shape
        table = F.pad(items, (0, 0, 1, 0))  # row 0 = padding = 0
        real = ids > 0
        x = F.embedding(ids, table) * math.sqrt(self.d) + self.pos_emb[self.T - Tb:]
        x = F.dropout(x, self.p, self.training)
        # causal over real keys; a padding query sees itself only (its row is never read: no NaN rows)
        causal = torch.ones(Tb, Tb, dtype=torch.bool, device=ids.device).tril()
        mask = (causal & real[:, None, :]) | torch.eye(Tb, dtype=torch.bool, device=ids.device)
        mask = mask[:, None]  # (B, 1, Tb, Tb)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.ln_f(x)

    def loss(self, ids, targets):
        items = self.item_vectors()
        h = self.hidden(ids, items)
        sel = targets > 0
        logits = h[sel] @ items.t()  # (N, V-1): items 1..V-1 (pulse masks column 0)
        return F.cross_entropy(logits, targets[sel] - 1)


# ---------------------------------------------------------------- batching (src/sasrec/train.c: batcher_fill)
def training_rows(seqs, T):
    """(users, inputs (U, T), targets (U, T), lengths) for users with >= 2 training items, left-padded"""
    users, lens = [], []
    IN, TG = [], []
    for u, s in enumerate(seqs):
        L = len(s) - 2 if len(s) > 2 else 0
        if L < 2:
            continue
        n = min(L - 1, T)
        a = np.zeros(T, dtype=np.int64)
        b = np.zeros(T, dtype=np.int64)
        a[T - n:] = s[L - 1 - n:L - 1]
        b[T - n:] = s[L - n:L]
        users.append(u), IN.append(a), TG.append(b), lens.append(n)
    return np.asarray(users), np.stack(IN), np.stack(TG), np.asarray(lens)


def run_epoch(model, opt, IN, TG, lens, batch, rng):
    model.train()
    order = rng.permutation(len(IN))
    total, steps = 0.0, 0
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        Tb = int(lens[idx].max())
        ids = torch.from_numpy(IN[idx, -Tb:])
        tg = torch.from_numpy(TG[idx, -Tb:])
        loss = model.loss(ids, tg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1), steps


# ---------------------------------------------------------------- evaluation (src/eval/eval.c, full ranking)
@torch.no_grad()
def evaluate(model, seqs, n_items, split="valid", batch=256):
    model.eval()
    T = model.T
    items = model.item_vectors()
    off = 2 if split == "valid" else 1
    users = [u for u, s in enumerate(seqs) if len(s) >= 3]
    ranks = []
    for s0 in range(0, len(users), batch):
        us = users[s0:s0 + batch]
        hists = [seqs[u][:len(seqs[u]) - off] for u in us]
        tgt = torch.tensor([int(seqs[u][len(seqs[u]) - off]) for u in us])
        Tb = max(1, min(T, max(len(h) for h in hists)))
        ids = np.zeros((len(us), Tb), dtype=np.int64)
        for b, h in enumerate(hists):
            w = h[-Tb:]
            ids[b, Tb - len(w):] = w
        h = model.hidden(torch.from_numpy(ids), items)[:, -1]  # last history item at the last column
        scores = h @ items.t()  # (n, V-1) for items 1..V-1
        t = scores.gather(1, (tgt - 1)[:, None])
        excl = torch.zeros_like(scores, dtype=torch.bool)
        tex = torch.zeros(len(us), dtype=torch.bool)
        for b, hi in enumerate(hists):
            hi = torch.from_numpy(hi[(hi >= 1) & (hi <= n_items)])
            excl[b, hi - 1] = True
            tex[b] = bool((hi == tgt[b]).any())
        beats = (scores >= t) & ~excl
        r = beats.sum(1) - 1  # the target itself
        r = torch.where(tex | torch.isnan(t[:, 0]), torch.full_like(r, n_items - 1), r)
        ranks.append(r)
    r = torch.cat(ranks).double()
    g = 1.0 / torch.log2(r + 2.0)
    return {"users": len(users), "ndcg10": float(torch.where(r < 10, g, 0.0).mean()),
            "hr10": float((r < 10).double().mean()), "ndcg20": float(torch.where(r < 20, g, 0.0).mean()),
            "hr20": float((r < 20).double().mean()), "mrr": float((1.0 / (r + 1.0)).mean())}


# ---------------------------------------------------------------- pulse cross-check of the text vectors
def check_vectors(pulse_bin, encoder, texts, vecs, text_len, k, threads, precision):
    """min / mean cosine between this side's vectors and `pulse encode`'s for the first k non-empty item texts"""
    import subprocess
    import tempfile
    idx = [i for i in range(1, len(texts)) if texts[i].strip()][:k]
    if not idx:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8",
                                     errors="surrogateescape") as f:
        f.write("\n".join(texts[i] for i in idx) + "\n")
        path = f.name
    try:
        out = subprocess.run([pulse_bin, "encode", "--encoder", encoder, "--input", path, "--max-len", str(text_len),
                              "--threads", str(threads), "--precision", precision],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    pv = np.asarray([json.loads(l) for l in out.splitlines() if l.startswith("[")], dtype=np.float64)
    if len(pv) != len(idx):
        return {"error": f"pulse encode gave {len(pv)} vectors for {len(idx)} texts"}
    tv = vecs[idx].astype(np.float64)
    cos = (pv * tv).sum(1) / (np.linalg.norm(pv, axis=1) * np.linalg.norm(tv, axis=1))
    return {"texts": len(idx), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "pulse_precision": precision}


# ---------------------------------------------------------------- parity: a pulse textrec model file in this model
def load_pulse_model(path):
    """a `pulse textrec train` model file (src/textrec/model.c: pulse_textrec_save) as a MoRecSASRec in eval mode:
    the SASRec parameters (item_emb (V, C), pos_emb (T, C), per block ln1 w/b, Wq bq Wk bk Wv bv Wo bo, ln2 w/b,
    W1 b1 W2 b2 (weights (out, in) as nn.Linear), final LN w/b), the projection W (C, D), b (C), the text vectors"""
    import struct
    buf = open(path, "rb").read()
    if buf[:8] != b"PLSTXRC\0":
        raise SystemExit(f"{path}: not a pulse textrec model")
    u = struct.unpack_from("<11I", buf, 8)
    ver, arch, use_id, n_items, D, C, L, NH, T = u[:9]
    if ver != 1 or arch != 0:
        raise SystemExit(f"{path}: version {ver} arch {arch}: expected a version-1 morec model")
    o = 8 + 44 + 12
    (dl,) = struct.unpack_from("<I", buf, o)
    o += 4 + dl
    (nsp,) = struct.unpack_from("<Q", buf, o)
    o += 8
    V = n_items + 1
    f = np.frombuffer(buf, dtype="<f4", count=(len(buf) - o - 4) // 4, offset=o)
    sp, own, tv = f[:nsp], f[nsp:nsp + C * D + C], f[nsp + C * D + C:].reshape(V, D)
    model = MoRecSASRec(np.array(tv, dtype=np.float32), C, L, NH, T, 0.0, use_id=bool(use_id))
    k = 0

    def take(n, shape=None):
        nonlocal k
        x = torch.from_numpy(np.array(sp[k:k + n], dtype=np.float32))
        k += n
        return x.view(*shape) if shape else x

    with torch.no_grad():
        E = take(V * C, (V, C))
        if model.item_emb is not None:
            model.item_emb.copy_(E[1:])
        model.pos_emb.copy_(take(T * C, (T, C)))
        for b in model.blocks:
            b.ln1.weight.copy_(take(C)), b.ln1.bias.copy_(take(C))
            b.q.weight.copy_(take(C * C, (C, C))), b.q.bias.copy_(take(C))
            wk, bk = take(C * C, (C, C)), take(C)
            wv, bv = take(C * C, (C, C)), take(C)
            b.kv.weight.copy_(torch.cat([wk, wv])), b.kv.bias.copy_(torch.cat([bk, bv]))
            b.o.weight.copy_(take(C * C, (C, C))), b.o.bias.copy_(take(C))
            b.ln2.weight.copy_(take(C)), b.ln2.bias.copy_(take(C))
            b.w1.weight.copy_(take(C * C, (C, C))), b.w1.bias.copy_(take(C))
            b.w2.weight.copy_(take(C * C, (C, C))), b.w2.bias.copy_(take(C))
        model.ln_f.weight.copy_(take(C)), model.ln_f.bias.copy_(take(C))
        if k != nsp:
            raise SystemExit(f"{path}: {nsp} SASRec parameters, the layout reads {k}")
        model.proj.weight.copy_(torch.from_numpy(np.array(own[:C * D], dtype=np.float32)).view(C, D))
        model.proj.bias.copy_(torch.from_numpy(np.array(own[C * D:], dtype=np.float32)))
    return model.eval()


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--encoder", default="", help="encoder folder (sentence-transformers layout)")
    ap.add_argument("--parity-model", default="",
                    help="instead of training: load this `pulse textrec train` model file into the torch model and "
                         "print its full-ranking valid and test metrics (the forward semantics check)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-users", type=int, default=0)
    ap.add_argument("--no-id", action="store_true", help="text only: W t + b (MoRec proper)")
    ap.add_argument("--eval", action="store_true", help="full-ranking valid metrics after every epoch")
    ap.add_argument("--text-len", type=int, default=64)
    ap.add_argument("--encode-dtype", choices=("fp32", "bf16"), default="fp32",
                    help="text encoding products: fp32 (sentence-transformers' default) or bf16 autocast")
    ap.add_argument("--cache", default="", help="folder caching the text vectors (default: none, encode each run)")
    ap.add_argument("--check-pulse", default="", help="pulse binary: compare the first --check-texts vectors")
    ap.add_argument("--check-texts", type=int, default=64)
    ap.add_argument("--check-precision", default="bf16")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--maxlen", type=int, default=50)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    t0 = time.perf_counter()
    seqs, n_items = load_sequences(os.path.join(a.data, "sequences.txt"), a.max_users)
    if a.parity_model:
        model = load_pulse_model(a.parity_model)
        if model.V != n_items + 1:
            raise SystemExit(f"{a.parity_model}: {model.V - 1} items, the data (--max-users {a.max_users}) {n_items}")
        out = {"bench": "morec_torch_parity", "model": os.path.abspath(a.parity_model),
               "id_embeddings": model.item_emb is not None, "threads": torch.get_num_threads(),
               "valid": evaluate(model, seqs, n_items, "valid"), "test": evaluate(model, seqs, n_items, "test")}
        print(json.dumps(out))
        return
    if not a.encoder:
        raise SystemExit("morec_torch.py: --encoder DIR is required (except with --parity-model)")
    texts = load_item_texts(os.path.join(a.data, "items.tsv"), n_items)
    load_s = time.perf_counter() - t0
    print(f"morec_torch: {len(seqs)} users, {n_items} items, threads {torch.get_num_threads()}, torch "
          f"{torch.__version__}; encoding {len(texts)} item texts ({a.encode_dtype}, text-len {a.text_len})",
          file=sys.stderr, flush=True)
    cpu0 = time.process_time()
    vecs, enc_s, cached, enc_impl = encode_texts(texts, a.encoder, a.text_len, a.encode_dtype, a.cache)
    enc_cpu = time.process_time() - cpu0
    print(f"morec_torch: text vectors {vecs.shape} in {enc_s:.1f} s{' (cache)' if cached else ''}",
          file=sys.stderr, flush=True)
    check = None
    if a.check_pulse:
        check = check_vectors(a.check_pulse, a.encoder, texts, vecs, a.text_len, a.check_texts, a.threads,
                              a.check_precision)
        print(f"morec_torch: vectors vs pulse encode: {check}", file=sys.stderr, flush=True)

    model = MoRecSASRec(vecs, a.dim, a.blocks, a.heads, a.maxlen, a.dropout, use_id=not a.no_id)
    kw = dict(lr=a.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.0)
    try:
        opt, opt_impl = torch.optim.Adam(model.parameters(), fused=True, **kw), "fused"
    except (RuntimeError, TypeError, ValueError):
        opt, opt_impl = torch.optim.Adam(model.parameters(), foreach=True, **kw), "foreach"
    users, IN, TG, lens = training_rows(seqs, a.maxlen)
    n_targets = int(lens.sum())
    n_params = sum(p.numel() for p in model.parameters())

    epochs, curve = [], []
    train_s = 0.0
    for ep in range(1, a.epochs + 1):
        c0, w0 = time.process_time(), time.perf_counter()
        loss, steps = run_epoch(model, opt, IN, TG, lens, a.batch, rng)
        w1, c1 = time.perf_counter(), time.process_time()
        train_s += w1 - w0
        e = {"epoch": ep, "train_s": round(w1 - w0, 4), "cpu_s": round(c1 - c0, 3), "loss": round(loss, 5),
             "steps": steps}
        msg = f"morec_torch epoch {ep}: loss {loss:.4f}  train {w1 - w0:.2f}s (cpu {c1 - c0:.1f}s)"
        if a.eval:
            t2 = time.perf_counter()
            m = evaluate(model, seqs, n_items, "valid")
            e["valid"] = m
            e["eval_s"] = round(time.perf_counter() - t2, 3)
            curve.append({"epoch": ep, "train_s": round(train_s, 3), "ndcg10": m["ndcg10"]})
            msg += f"  valid NDCG@10 {m['ndcg10']:.4f} HR@10 {m['hr10']:.4f} ({m['users']} users, {e['eval_s']:.1f}s)"
        print(msg, file=sys.stderr, flush=True)
        epochs.append(e)

    times = [e["train_s"] for e in epochs]
    out = {
        "bench": "morec_torch", "dataset": os.path.abspath(a.data), "encoder": os.path.abspath(a.encoder),
        "arch": "morec", "id_embeddings": not a.no_id, "finetune_layers": 0,
        "users": len(seqs), "items": n_items, "train_users": int(len(users)), "train_targets_per_epoch": n_targets,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "optimizer": f"Adam ({opt_impl})",
        "params": n_params, "dim": a.dim, "blocks": a.blocks, "heads": a.heads, "maxlen": a.maxlen,
        "dropout": a.dropout, "batch": a.batch, "lr": a.lr, "text_len": a.text_len, "seed": a.seed,
        "load_seconds": round(load_s, 3),
        "encode_seconds": round(enc_s, 3), "encode_cpu_seconds": round(enc_cpu, 3), "encode_cached": cached,
        "encode_impl": enc_impl, "encode_dtype": a.encode_dtype,
        "text_dim": int(vecs.shape[1]), "vector_check": check,
        "epochs": len(epochs), "per_epoch": epochs,
        "sec_per_epoch_best": min(times) if times else None,
        "sec_per_epoch_mean": round(sum(times) / len(times), 4) if times else None,
        "cpu_s_per_epoch_best": min(e["cpu_s"] for e in epochs) if epochs else None,
        "last_loss": epochs[-1]["loss"] if epochs else None,
        "valid_curve": curve or None,
        "best_valid_ndcg10": max((c["ndcg10"] for c in curve), default=None),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
