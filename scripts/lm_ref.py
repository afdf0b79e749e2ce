#!/usr/bin/env python3
"""scripts/lm_ref.py — an independent numpy reference of the decoder architectures pulse runs (llama, gemma3,
qwen2, phi3), reading GGUF files with the `gguf` package and dequantising with gguf.quants. Full causal
attention over a token sequence (no KV cache), float64 accumulation where it is cheap.

Used by scripts/lm_synth_ref.py (reference logits of the synthetic models the C tests write) and as a
second opinion on real models:  python scripts/lm_ref.py MODEL.gguf 1 2 3 ...  → top-5 of the last position.
Run with the reference environment: $PULSE_CACHE/pyref/bin/python (see scripts/pyref.sh)."""
import sys

import numpy as np
import gguf
from gguf import GGUFReader
from gguf.quants import dequantize


Q8_0_DOT = {2, 3, 6, 7, 8}  # q4_0 q4_1 q5_0 q5_1 q8_0: activations quantised per 32 (q8_0 / q8_1)
Q8_K_DOT = {10, 11, 12, 13, 14}  # k-quants: activations quantised per 256 (q8_K)


def act_quant(x, wtype):
    """The activation rounding llama.cpp's CPU matmul applies before its integer dot products."""
    t = int(wtype)
    shp = x.shape
    if t in Q8_0_DOT:
        b = x.reshape(-1, 32).astype(np.float32)
        d = np.abs(b).max(-1, keepdims=True) / np.float32(127)
        idv = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), 0).astype(np.float32)
        q = np.round(b * idv)  # ties: numpy rounds half to even, ggml roundf half away; measure-zero here
        return (q * d.astype(np.float16).astype(np.float32)).reshape(shp)
    if t in Q8_K_DOT:
        b = x.reshape(-1, 256).astype(np.float32)
        i = np.abs(b).argmax(-1)
        mx = b[np.arange(b.shape[0]), i][:, None]
        iscale = np.where(mx != 0, np.float32(-127) / np.where(mx != 0, mx, 1), 0).astype(np.float32)
        q = np.minimum(127, np.round(iscale * b))
        d = np.where(iscale != 0, np.float32(1) / np.where(iscale != 0, iscale, 1), 0).astype(np.float32)
        return (q * d).reshape(shp)
    if t == 1:  # f16 weights: activations go to f16
        return x.astype(np.float16).astype(np.float32)
    return x


def _field(r, key, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class RefLM:
    def __init__(self, path, act_quant=True):
        self.act_quant = act_quant
        r = GGUFReader(path)
        self.arch = _field(r, "general.architecture")
        a = self.arch
        g = lambda k, d=None: _field(r, f"{a}.{k}", d)
        self.n_embd = int(g("embedding_length"))
        self.n_layer = int(g("block_count"))
        self.n_head = int(g("attention.head_count"))
        hkv = g("attention.head_count_kv", self.n_head)
        self.n_head_kv = int(hkv[0] if isinstance(hkv, list) else hkv)
        self.head_dim = int(g("attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(g("rope.dimension_count", self.head_dim))
        self.rope_base = float(g("rope.freq_base", 10000.0))
        self.eps = float(g("attention.layer_norm_rms_epsilon", 1e-5))
        self.n_swa = int(g("attention.sliding_window", 0)) if a == "gemma3" else 0
        self.swa_pattern = int(g("attention.sliding_window_pattern", 6)) if a == "gemma3" else 0
        self.rope_base_swa = float(g("rope.freq_base_swa", 10000.0)) if a == "gemma3" else self.rope_base
        self.softcap = float(g("final_logit_softcapping", 0.0))
        self.neox = a != "llama"
        self.t = {}
        self.types = {}
        for t in r.tensors:
            self.types[t.name] = t.tensor_type
            arr = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            shape = tuple(int(x) for x in reversed(list(t.shape)))
            self.t[t.name] = arr.reshape(shape) if len(shape) > 1 else arr.reshape(-1)
        self.emb = self.t["token_embd.weight"]
        self.out = self.t.get("output.weight", self.emb)
        self.n_vocab = self.emb.shape[0]
        self.ff = self.t.get("rope_freqs.weight", self.t.get("rope_factors_short.weight"))

    def mm(self, x, name):
        """x @ W^T; with self.act_quant, llama.cpp's rounding of the activations for W's type first."""
        w = self.t[name]
        return (act_quant(x, self.types[name]) if self.act_quant else x) @ w.T

    def rms(self, x, w):
        x64 = x.astype(np.float64)
        s = 1.0 / np.sqrt((x64 * x64).mean(-1, keepdims=True) + self.eps)
        return (x64 * s).astype(np.float32) * w

    def rope(self, x, pos, base):
        # x (T, H, D)
        half = self.n_rot // 2
        inv = base ** (-2.0 * np.arange(half) / self.n_rot)
        if self.ff is not None:
            inv = inv / self.ff.astype(np.float64)
        th = pos[:, None].astype(np.float64) * inv[None, :]
        c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
        y = x.copy()
        if self.neox:
            x0, x1 = x[..., :half], x[..., half:self.n_rot]
            y[..., :half] = x0 * c - x1 * s
            y[..., half:self.n_rot] = x0 * s + x1 * c
        else:
            x0, x1 = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
            y[..., 0:self.n_rot:2] = x0 * c - x1 * s
            y[..., 1:self.n_rot:2] = x0 * s + x1 * c
        return y

    def forward(self, tokens):
        """logits (T, V) for a token list, positions 0..T-1."""
        T = len(tokens)
        E, H, KVH, D = self.n_embd, self.n_head, self.n_head_kv, self.head_dim
        x = self.emb[np.asarray(tokens)].astype(np.float32)
        if self.arch == "gemma3":
            x = x * np.float32(np.sqrt(E))
        pos = np.arange(T)
        self.trace = []  # residual stream entering each layer and the final norm (debugging aid)
        for il in range(self.n_layer):
            self.trace.append(x)
            p = lambda n: self.t.get(f"blk.{il}.{n}")
            h = self.rms(x, p("attn_norm.weight"))
            if p("attn_qkv.weight") is not None:
                qkv = self.mm(h, f"blk.{il}.attn_qkv.weight")
                q, k, v = qkv[:, :H * D], qkv[:, H * D:H * D + KVH * D], qkv[:, H * D + KVH * D:]
            else:
                q, k, v = (self.mm(h, f"blk.{il}.attn_{n}.weight") for n in "qkv")
                if p("attn_q.bias") is not None:
                    q, k, v = q + p("attn_q.bias"), k + p("attn_k.bias"), v + p("attn_v.bias")
            q, k, v = q.reshape(T, H, D), k.reshape(T, KVH, D), v.reshape(T, KVH, D)
            if p("attn_q_norm.weight") is not None:
                q = self.rms(q, p("attn_q_norm.weight"))
                k = self.rms(k, p("attn_k_norm.weight"))
            swa = self.n_swa > 0 and (il % self.swa_pattern) < self.swa_pattern - 1
            base = self.rope_base_swa if swa else self.rope_base
            q, k = self.rope(q, pos, base), self.rope(k, pos, base)
            rep = H // KVH
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            if getattr(self, "kv_f16", False):  # llama.cpp's default f16 KV cache (and f16 Q in the KQ dot)
                q = q.astype(np.float16).astype(np.float32)
                k = k.astype(np.float16).astype(np.float32)
                v = v.astype(np.float16).astype(np.float32)
            sc = np.einsum("thd,shd->hts", q.astype(np.float64), k.astype(np.float64)) / np.sqrt(D)
            mask = pos[None, :] > pos[:, None]
            if swa:
                mask |= (pos[:, None] - pos[None, :]) >= self.n_swa
            sc = np.where(mask[None], -np.inf, sc)
            sc = sc - sc.max(-1, keepdims=True)
            pr = np.exp(sc)
            pr /= pr.sum(-1, keepdims=True)
            att = np.einsum("hts,shd->thd", pr, v.astype(np.float64)).astype(np.float32).reshape(T, H * D)
            o = self.mm(att, f"blk.{il}.attn_output.weight")
            if p("attn_output.bias") is not None:
                o = o + p("attn_output.bias")
            if p("post_attention_norm.weight") is not None:
                o = self.rms(o, p("post_attention_norm.weight"))
            x = x + o
            h = self.rms(x, p("ffn_norm.weight"))
            if p("ffn_gate.weight") is not None:
                gte, up = self.mm(h, f"blk.{il}.ffn_gate.weight"), self.mm(h, f"blk.{il}.ffn_up.weight")
            else:
                gu = self.mm(h, f"blk.{il}.ffn_up.weight")
                F = gu.shape[1] // 2
                gte, up = gu[:, :F], gu[:, F:]
            if self.arch == "gemma3":
                g64 = gte.astype(np.float64)
                act = 0.5 * g64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (g64 + 0.044715 * g64 ** 3)))
            else:
                g64 = gte.astype(np.float64)
                act = g64 / (1 + np.exp(-g64))
            hh = (act * up).astype(np.float32)
            o = self.mm(hh, f"blk.{il}.ffn_down.weight")
            if p("post_ffw_norm.weight") is not None:
                o = self.rms(o, p("post_ffw_norm.weight"))
            x = x + o
        self.trace.append(x)
        x = self.rms(x, self.t["output_norm.weight"])
        lg = self.mm(x, "output.weight" if "output.weight" in self.t else "token_embd.weight")
        if self.softcap > 0:
            lg = self.softcap * np.tanh(lg / self.softcap)
        return lg


def log_softmax(lg):
    lg = lg.astype(np.float64)
    m = lg.max(-1, keepdims=True)
    return lg - m - np.log(np.exp(lg - m).sum(-1, keepdims=True))


if __name__ == "__main__":
    m = RefLM(sys.argv[1])
    toks = [int(t) for t in sys.argv[2:]]
    lg = m.forward(toks)
    lp = log_softmax(lg[-1])
    top = np.argsort(-lp)[:5]
    print(" ".join(f"{int(t)}:{lp[t]:.4f}" for t in top))
