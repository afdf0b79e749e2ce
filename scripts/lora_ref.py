#!/usr/bin/env python3
"""scripts/lora_ref.py — the PEFT reference of LoRA training that tests/fixtures/lora_ref_smollm2.json holds:
the SmolLM2 GGUF loaded in transformers (which dequantises GGUF to fp32 and un-permutes llama.cpp's q / k
rows), PEFT LoRA r=8, alpha=16 on q, k, v, o (no dropout, no bias) with a deterministic initial A / B, one
fixed batch of prompt -> completion pairs (loss on the completion tokens only, mean over them): the loss, the
gradient of every LoRA tensor, and the losses of 20 AdamW steps.

Layout: everything in the fixture is in llama.cpp's GGUF LoRA layout (what convert_lora_to_gguf.py writes
and `llama-cli --lora` reads): lora_a (r, n_in) row-major (ggml ne = [n_in, r]), lora_b (n_out, r) row-major
(ggml ne = [r, n_out]) with the rows of q and k in the GGUF's RoPE order, i.e. B_gguf = permute(B_hf) as
convert_hf_to_gguf's LlamaModel.permute (A is unchanged). The initial values are a formula (init_value) so
the C side regenerates them instead of reading 900k numbers. See /work/wt/notes/lora_kernels.md (format).

Run: .cache/pyref/bin/python scripts/lora_ref.py [MODEL.gguf] [OUT.json]   (pip install peft in that venv)
"""
import base64
import json
import os
import sys

import numpy as np
import torch

MASK64 = (1 << 64) - 1
TARGETS = ["q", "k", "v", "o"]
HF_NAME = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj"}
GGUF_NAME = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output"}
RANK, ALPHA = 8, 16
AMP_A, AMP_B = 0.04, 0.01
LR, BETAS, EPS, WD, STEPS = 2e-4, (0.9, 0.999), 1e-8, 0.0, 20
PAIRS = [
    ("The capital of France is", " Paris, a city on the Seine."),
    ("Item list: apple, pear, plum. The item chosen is", " pear, the second item."),
    ("Question: what is 2 + 2? Answer:", " 2 + 2 = 4."),
    ("Translate to French: the black cat ->", " le chat noir"),
]


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def init_value(layer, target, is_b, shape, amp):
    """float32 (rows, cols), element e (row-major) = f32(amp) * f32(2 u - 1), u = (splitmix64(key * 2^32 + e)
    >> 40) / 2^24, key = (layer * 4 + target_index) * 2 + is_b; target_index: q 0, k 1, v 2, o 3."""
    key = (layer * 4 + TARGETS.index(target)) * 2 + is_b
    n = shape[0] * shape[1]
    z = (np.uint64(key) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    v = np.float32(amp) * (2.0 * u - 1.0).astype(np.float32)
    assert float(np.float32(amp) * np.float32(2.0 * (splitmix64(key << 32) >> 40) / (1 << 24) - 1.0)) == float(
        v[0]
    )
    return v.reshape(shape)


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rows -> GGUF (RoPE-interleaved) rows"""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def f16_b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f2").tobytes()).decode()


def main():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    model_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "tests/fixtures/lora_ref_smollm2.json")
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    d, f = os.path.split(os.path.abspath(model_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32, attn_implementation="eager")
    cfg = model.config
    NH, NKV, L = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_hidden_layers
    model = get_peft_model(
        model,
        LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, bias="none",
                   target_modules=[HF_NAME[t] for t in TARGETS]),
    )
    # the deterministic initial A / B (GGUF layout) into PEFT (HF layout)
    mods = {}
    for name, mod in model.named_modules():
        for t in TARGETS:
            suffix = f".self_attn.{HF_NAME[t]}"
            if name.endswith(suffix) and hasattr(mod, "lora_A"):
                il = int(name.split(".layers.")[1].split(".")[0])
                mods[(il, t)] = mod
    assert len(mods) == 4 * L, len(mods)
    for (il, t), mod in mods.items():
        A = mod.lora_A["default"].weight
        B = mod.lora_B["default"].weight
        a = init_value(il, t, 0, tuple(A.shape), AMP_A)
        b = init_value(il, t, 1, tuple(B.shape), AMP_B)  # GGUF row order
        if t in ("q", "k"):
            b = unpermute(b, NH, NH if t == "q" else NKV)
        with torch.no_grad():
            A.copy_(torch.from_numpy(a))
            B.copy_(torch.from_numpy(np.ascontiguousarray(b)))

    # the batch: right-padded, labels -100 on the prompt and the padding
    seqs = []
    for p, c in PAIRS:
        pi = tok(p, add_special_tokens=False)["input_ids"]
        ci = tok(c, add_special_tokens=False)["input_ids"]
        seqs.append((pi, ci))
    T = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    att = torch.zeros(len(seqs), T, dtype=torch.long)
    lab = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        n = len(p) + len(c)
        ids[i, :n] = torch.tensor(p + c)
        att[i, :n] = 1
        lab[i, len(p):n] = torch.tensor(c)
    n_loss = int((lab[:, 1:] != -100).sum())

    def step_loss():
        return model(input_ids=ids, attention_mask=att, labels=lab).loss

    params = [p for n, p in model.named_parameters() if p.requires_grad]
    model.train()
    loss = step_loss()
    loss.backward()
    L0 = loss.item()
    # per-tensor gradients in GGUF layout
    full_layers = sorted({0, L // 2, L - 1})
    grads = []
    for (il, t), mod in sorted(mods.items(), key=lambda kv: (kv[0][0], TARGETS.index(kv[0][1]))):
        for ab, w in (("lora_a", mod.lora_A["default"].weight), ("lora_b", mod.lora_B["default"].weight)):
            g = w.grad.detach().numpy().astype(np.float64)
            if ab == "lora_b" and t in ("q", "k"):
                g = permute(g, NH, NH if t == "q" else NKV)
            flat = g.reshape(-1)
            # 8 projections on +-1 vectors: sign bit 63 of splitmix64(((p + 1) << 40) + e)
            e = np.arange(flat.size, dtype=np.uint64)
            proj = []
            for pk in range(8):
                z = (np.uint64(pk + 1) << np.uint64(40)) + e
                with np.errstate(over="ignore"):
                    z = z + np.uint64(0x9E3779B97F4A7C15)
                    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                    z = z ^ (z >> np.uint64(31))
                sgn = np.where((z >> np.uint64(63)) == 1, -1.0, 1.0)
                proj.append(float((flat * sgn).sum()))
            ent = {
                "name": f"blk.{il}.{GGUF_NAME[t]}.weight.{ab}",
                "shape": list(g.shape),
                "norm": float(np.sqrt((flat ** 2).sum())),
                "sum": float(flat.sum()),
                "proj": proj,
                "sample": [[int(i), float(flat[i])] for i in np.linspace(0, flat.size - 1, 8).astype(int)],
            }
            if il in full_layers:
                ent["f16_b64"] = f16_b64(g.reshape(-1))
            grads.append(ent)

    # 20 AdamW steps (the first on the gradient above); losses[k] = loss before step k, losses[20] after all
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    losses = [L0]
    for s in range(STEPS):
        opt.step()
        opt.zero_grad()
        loss = step_loss()
        losses.append(loss.item())
        if s + 1 < STEPS:
            loss.backward()

    out = {
        "what": "PEFT LoRA reference (scripts/lora_ref.py): loss, LoRA gradients, 20 AdamW steps",
        "model": os.path.basename(model_path),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
        "layout": "llama.cpp GGUF LoRA: lora_a (r, n_in), lora_b (n_out, r) row-major, q/k rows of lora_b in "
                  "GGUF (RoPE-permuted) order",
        "lora": {"rank": RANK, "alpha": ALPHA, "scale": ALPHA / RANK, "dropout": 0.0, "targets": TARGETS},
        "init": {"formula": "e-th element (row-major, GGUF layout) = f32(amp) * f32(2u - 1), u = (splitmix64("
                            "(key << 32) + e) >> 40) / 2^24, key = (layer * 4 + t) * 2 + is_b, t: q0 k1 v2 o3",
                 "amp_a": AMP_A, "amp_b": AMP_B},
        "batch": [{"prompt": p, "completion": c, "tokens": pi + ci, "n_prompt": len(pi)}
                  for (p, c), (pi, ci) in zip(PAIRS, seqs)],
        "loss_def": "mean over every completion token of every sequence of -log p(token | previous tokens); "
                    "position t predicts tokens[t + 1] for t in [n_prompt - 1, len - 2]",
        "n_loss_tokens": n_loss,
        "loss": L0,
        "adamw": {"lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": WD, "steps": STEPS,
                  "schedule": "constant", "grad_clip": None, "grad_accum": 1},
        "losses": losses,
        "proj_def": "proj[p] = sum_e g[e] * s_p(e), s_p(e) = -1 if bit 63 of splitmix64(((p + 1) << 40) + e) "
                    "else +1, e the row-major element index in GGUF layout, p = 0..7",
        "full_grad_layers": full_layers,
        "grads": grads,
    }
    with open(out_path, "w") as fo:
        json.dump(out, fo, indent=0)
        fo.write("\n")
    print(json.dumps({"loss": L0, "losses": losses, "n_loss_tokens": n_loss, "out": out_path}))


if __name__ == "__main__":
    main()
