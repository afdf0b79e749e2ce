#!/usr/bin/env python3
"""bench/peers/peft_lora.py — the peer of bench/lora: one LoRA training step of the same GGUF model in PyTorch +
PEFT on CPU (transformers dequantises the GGUF to fp32), r=8, alpha=16 on q, k, v, o, no dropout, AdamW
lr 2e-4: batch 8 prompts of 256 tokens, the loss on the last 16 tokens of each (labels -100 elsewhere), fp32
or bf16 autocast (torch.autocast('cpu', dtype=torch.bfloat16): bf16 products, fp32 master weights and
optimiser). Synthetic token ids (seeded), so no tokenizer is involved. Prints one human line and a last line of
JSON: bench, impl, precision, threads, batch, seq, loss_tokens, steps, s_per_step (best and median of the
timed steps), tokens_s (batch * seq / best step: every token goes through forward and backward),
loss_tokens_s, peak_rss_mb (ru_maxrss of the whole run, model load included), rss_after_load_mb.
Usage: python bench/peers/peft_lora.py MODEL.gguf [--precision fp32|bf16] [--threads 2] [--steps 3]
       [--batch 8] [--seq 256] [--loss-tokens 16]"""
import argparse
import json
import os
import resource
import statistics
import time


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--loss-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    d, f = os.path.split(os.path.abspath(a.model))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    after_load = rss_mb()
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, V, (a.batch, a.seq), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, a.seq - a.loss_tokens:] = ids[:, a.seq - a.loss_tokens:]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)

    def step():
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t, float(loss)

    step()  # warm-up (first-call allocations, oneDNN kernels)
    times, loss = [], 0.0
    for _ in range(a.steps):
        dt, loss = step()
        times.append(dt)
    best, med = min(times), statistics.median(times)
    tok = a.batch * a.seq
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("peft lora (%s): batch %d x %d tokens (%d loss tokens each), %d threads: %.3f s/step best, %.3f median,"
          " %.1f tokens/s, peak RSS %.0f MB, loss %.4f" % (a.precision, a.batch, a.seq, a.loss_tokens, a.threads,
                                                         best, med, tok / best, peak, loss))
    import peft
    import transformers
    print(json.dumps({
        "bench": "lora", "impl": "torch %s / transformers %s / peft %s" % (
            torch.__version__, transformers.__version__, peft.__version__),
        "model": os.path.basename(a.model), "precision": a.precision, "threads": a.threads, "batch": a.batch,
        "seq": a.seq, "loss_tokens": a.loss_tokens, "steps": a.steps, "s_per_step": best,
        "s_per_step_median": med, "tokens_s": tok / best, "loss_tokens_s": a.batch * a.loss_tokens / best,
        "peak_rss_mb": peak, "rss_after_load_mb": after_load, "loss": loss}))


if __name__ == "__main__":
    main()
