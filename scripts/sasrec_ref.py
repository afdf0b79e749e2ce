#!/usr/bin/env python3
"""scripts/sasrec_ref.py — PyTorch reference for pulse's SASRec (pmixer/SASRec.pytorch semantics, pre-LN,
Q = LN(x); x = Q + MHA(Q, x, x); x = LN(x); x = x + FFN(x); timeline mask; final LN), used to write the
parity fixture tests/fixtures/sasrec_parity.json: parameters in pulse's flat layout, a fixed left-padded
batch, and PyTorch's loss + gradients for the CE and BCE losses and last-position scores.

Differences from pmixer that pulse makes on purpose (and this reference shares): padded keys are masked in
the attention (pmixer masks only the future), and there is no dropout on attention probabilities.

Run:  /work/cache/pyref/bin/python scripts/sasrec_ref.py [--out tests/fixtures/sasrec_parity.json]
"""
import argparse
import json
import math

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # the reference in double; pulse runs in float32

N_ITEMS, C, L, NH, T = 11, 8, 2, 2, 7
INPUTS = [[3, 1, 4, 1, 5, 9, 2], [0, 0, 0, 2, 6, 5, 3], [0, 0, 0, 0, 0, 0, 7], [0, 11, 10, 8, 8, 4, 6]]
TARGETS = [[1, 4, 1, 5, 9, 2, 6], [0, 0, 0, 6, 5, 3, 5], [0, 0, 0, 0, 0, 0, 8], [0, 10, 8, 8, 4, 6, 2]]
NEGS = [[2, 2, 3, 3, 4, 4, 5], [0, 0, 0, 1, 1, 8, 9], [0, 0, 0, 0, 0, 0, 1], [0, 1, 2, 3, 5, 7, 9]]


class SASRec(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.item_emb = torch.nn.Embedding(N_ITEMS + 1, C, padding_idx=0)
        self.pos_emb = torch.nn.Embedding(T, C)
        self.attn_ln = torch.nn.ModuleList([torch.nn.LayerNorm(C, eps=1e-8) for _ in range(L)])
        self.attn = torch.nn.ModuleList([torch.nn.MultiheadAttention(C, NH, dropout=0.0) for _ in range(L)])
        self.fwd_ln = torch.nn.ModuleList([torch.nn.LayerNorm(C, eps=1e-8) for _ in range(L)])
        self.conv1 = torch.nn.ModuleList([torch.nn.Conv1d(C, C, 1) for _ in range(L)])
        self.conv2 = torch.nn.ModuleList([torch.nn.Conv1d(C, C, 1) for _ in range(L)])
        self.last_ln = torch.nn.LayerNorm(C, eps=1e-8)
        for name, p in self.named_parameters():  # pmixer's init, then perturb everything (LN affine too)
            try:
                torch.nn.init.xavier_normal_(p.data)
            except ValueError:
                pass
            p.data += 0.05 * torch.randn_like(p)
        self.item_emb.weight.data[0] = 0

    def feats(self, seqs):
        s = torch.tensor(seqs)
        B = s.shape[0]
        x = self.item_emb(s) * math.sqrt(C)
        x = x + self.pos_emb(torch.arange(T).expand(B, T))
        tmask = (s != 0).unsqueeze(-1).to(x.dtype)
        x = x * tmask
        # additive mask (B*NH, T, T): causal + padded keys; -1e9 instead of -inf keeps all-padding rows finite
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        keypad = (s == 0).unsqueeze(1).expand(B, T, T)
        m = (causal.unsqueeze(0) | keypad).to(x.dtype) * -1e9
        m = m.repeat_interleave(NH, dim=0)
        for i in range(L):
            xt = x.transpose(0, 1)
            Q = self.attn_ln[i](xt)
            out, _ = self.attn[i](Q, xt, xt, attn_mask=m, need_weights=False)
            xt = Q + out
            x = xt.transpose(0, 1)
            x = self.fwd_ln[i](x)
            h = self.conv2[i](torch.relu(self.conv1[i](x.transpose(-1, -2)))).transpose(-1, -2)
            x = (x + h) * tmask
        return self.last_ln(x)

    def flat(self, grads=False):
        def g(p):
            t = p.grad if grads else p.data
            return t.reshape(-1).tolist()

        out = g(self.item_emb.weight) + g(self.pos_emb.weight)
        for i in range(L):
            a = self.attn[i]
            W = a.in_proj_weight.grad if grads else a.in_proj_weight.data
            bb = a.in_proj_bias.grad if grads else a.in_proj_bias.data
            out += g(self.attn_ln[i].weight) + g(self.attn_ln[i].bias)
            for j in range(3):
                out += W[j * C:(j + 1) * C].reshape(-1).tolist() + bb[j * C:(j + 1) * C].tolist()
            out += g(a.out_proj.weight) + g(a.out_proj.bias)
            out += g(self.fwd_ln[i].weight) + g(self.fwd_ln[i].bias)
            out += g(self.conv1[i].weight) + g(self.conv1[i].bias) + g(self.conv2[i].weight) + g(self.conv2[i].bias)
        out += g(self.last_ln.weight) + g(self.last_ln.bias)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/sasrec_parity.json")
    args = ap.parse_args()
    model = SASRec()
    fix = {"n_items": N_ITEMS, "dim": C, "blocks": L, "heads": NH, "maxlen": T, "inputs": INPUTS,
           "targets": TARGETS, "negatives": NEGS, "params": model.flat()}
    tg = torch.tensor(TARGETS)
    valid = tg != 0
    # CE: full softmax over items 1..N, item 0 masked, mean over non-padded positions
    model.zero_grad()
    h = model.feats(INPUTS)
    logits = h @ model.item_emb.weight.T
    logits[..., 0] = float("-inf")
    loss = torch.nn.functional.cross_entropy(logits[valid], tg[valid])
    loss.backward()
    fix["ce_loss"] = loss.item()
    fix["ce_grads"] = model.flat(grads=True)
    # BCE (pmixer): one negative per position, mean over positions for the positive and the negative terms
    model.zero_grad()
    h = model.feats(INPUTS)
    pe, ne = model.item_emb(tg), model.item_emb(torch.tensor(NEGS))
    pl, nl = (h * pe).sum(-1), (h * ne).sum(-1)
    bce = torch.nn.BCEWithLogitsLoss()
    loss = bce(pl[valid], torch.ones_like(pl[valid])) + bce(nl[valid], torch.zeros_like(nl[valid]))
    loss.backward()
    fix["bce_loss"] = loss.item()
    fix["bce_grads"] = model.flat(grads=True)
    # scores of all items from the last position (eval)
    with torch.no_grad():
        h = model.feats(INPUTS)[:, -1, :]
        fix["last_scores"] = (h @ model.item_emb.weight.T)[:, 1:].tolist()
    with open(args.out, "w") as f:
        json.dump(fix, f)
    print(f"wrote {args.out}: {len(fix['params'])} params, ce {fix['ce_loss']:.6f}, bce {fix['bce_loss']:.6f}")


if __name__ == "__main__":
    main()
