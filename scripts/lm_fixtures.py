#!/usr/bin/env python3
"""scripts/lm_fixtures.py — reference numbers from llama.cpp (llama-cpp-python) for tests/test_lm_parity.c.

For each model: varied documents (product titles, prose, JSON, a >512-token document that crosses Gemma-3's
sliding window) are tokenized by llama.cpp and evaluated teacher-forced with logits_all; for every position
the fixture keeps the next token id, llama.cpp's top-1 token and its log-prob of the next token. Then 5
prompts are continued greedily for 64 tokens. Output: tests/fixtures/lm_parity_<name>.txt (small text).

Usage: $PULSE_CACHE/pyref/bin/python scripts/lm_fixtures.py NAME MODEL.gguf [--threads 2]
  (NAME: smollm2 | gemma3 | qwen05 | qwen15; models from scripts/fetch-models.sh).

The Qwen2.5 files (qwen05, qwen15) get a lighter set, sized for CI: the documents cut to --max-tokens (256 for
qwen05, 128 for qwen15) and evaluated as cut, log-probs with 6 decimals, and 4 prompts continued for 64 tokens whatever they produce (no
stop at end-of-generation tokens, as the test generates): "The capital of France is", two others and a chat
turn rendered by the GGUF's own template (jinja2, as llama-cpp-python's chat handler renders it: ChatML with
Qwen's default system message) and tokenized with control tokens parsed in the markup only.

The context is pinned to what pulse reproduces bit for bit (src/lm/forward.c, src/kernels/quant*.c): the CPU
backend, flash attention off (ggml's soft_max + f16 mul_mat path), f16 K and V cache, each document in one
batch. pulse follows the summation orders of a llama.cpp built for AVX512 (VNNI) x86, the build this script
ran on (llama-cpp-python 0.3.36 compiled natively); a llama.cpp built for another CPU sums in other orders
and its numbers differ in the last bits, so regenerate the fixtures only with such a build."""
import argparse
import hashlib
import json
import os
import random
import sys

import numpy as np
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROSE = [
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk. He had done it for forty years, "
    "through storms that rattled the windows and calm nights when the sea lay flat as a mirror. Tonight the fog "
    "rolled in early, thick and grey, and he could barely see the rocks below. He lit the lamp, wound the "
    "clockwork, and sat down with a cup of tea to listen to the foghorn calling across the water. Somewhere out "
    "there a fishing boat was making its way home, and he knew the captain would be counting on the light.",
    "Photosynthesis converts light energy into chemical energy. In the chloroplasts of plant cells, chlorophyll "
    "absorbs photons, which drive the splitting of water molecules into oxygen, protons and electrons. The "
    "electrons move along a transport chain, pumping protons across the thylakoid membrane; the resulting "
    "gradient powers ATP synthase. In the Calvin cycle, the enzyme RuBisCO fixes carbon dioxide into "
    "three-carbon sugars, using the ATP and NADPH produced by the light reactions. Roughly 6 CO2 + 6 H2O "
    "become one molecule of glucose and 6 O2.",
    "Customer review: I bought this moisturizer after my dermatologist recommended something fragrance-free. "
    "After three weeks of using it twice a day, my skin feels softer and the dry patches on my cheeks are gone. "
    "The pump bottle is convenient, although it is hard to get the last bit out. At $18.99 for 16 oz it is a "
    "good value compared with the department-store brands. Four stars, would buy again!",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
    "print([fibonacci(i) for i in range(10)])  # [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\n",
    "In 1969, Apollo 11 landed on the Moon. Neil Armstrong and Buzz Aldrin spent about two and a half hours "
    "outside the lunar module, collecting 21.5 kilograms of rock and soil, while Michael Collins orbited above "
    "in the command module Columbia. The mission returned safely to Earth on July 24, splashing down in the "
    "Pacific Ocean, where the crew was recovered by the USS Hornet.",
]



def load_titles(n=120):
    shared = os.environ.get("PULSE_SHARED", os.path.join(ROOT, "..", "shared"))
    path = os.path.join(shared, "data", "amazon-beauty", "items.tsv")
    titles = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            next(f)
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) > 2 and cols[2]:
                    titles.append(cols[2])
                if len(titles) >= n:
                    break
    if len(titles) < n:
        sys.exit(f"{path}: need {n} product titles (set PULSE_SHARED to the shared folder)")
    return titles


def documents():
    titles = load_titles()
    rng = random.Random(7)
    docs = []
    docs.append("Recently purchased items:\n" + "\n".join(f"- {t}" for t in titles[:30]))
    recs = [{"item_id": i + 1, "title": t, "price": round(rng.uniform(2, 60), 2), "rating": rng.randint(1, 5),
             "in_stock": rng.random() < 0.8} for i, t in enumerate(titles[30:42])]
    docs.append(json.dumps({"user": "A3NHUQ33CFH3VM", "history": recs}, indent=2))
    docs += PROSE
    # a long document (> 512 tokens): prose and titles interleaved, crosses Gemma-3's sliding window
    long_parts = []
    for i, t in enumerate(titles[42:80]):
        long_parts.append(f"Item {i + 1}: {t}.")
        if i % 6 == 5:
            long_parts.append(PROSE[(i // 6) % len(PROSE)])
    docs.append(" ".join(long_parts))
    recs = [{"asin": f"B00{rng.randint(1000000, 9999999)}", "title": t, "brand": t.split()[0],
             "reviews": rng.randint(0, 5000), "tags": t.lower().split()[:3]} for t in titles[80:96]]
    docs.append(json.dumps(recs))
    docs.append("Top sellers this week: " + ", ".join(titles[96:120]) + ".")
    docs.append("Q: A user bought " + "; ".join(titles[:6]) + ". What will they buy next, and why?\nA: The user "
                "seems to care about nail care and makeup, so a top coat or a gentle nail polish remover is a "
                "likely next purchase.")
    return docs


PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "A user who bought OPI nail lacquer and a top coat will probably also like",
    "def add(a, b):\n",
    '{"title": "Neutrogena Hydro Boost Water Gel", "category":',
]


# a user turn for the chat-formatted continuation (Qwen files)
CHAT_USER = "Explain in three sentences why someone who bought a nail polish might also want a top coat."

QWEN_PROMPTS = [PROMPTS[0], PROMPTS[1], PROMPTS[3], None]  # None: the chat turn


def chat_ids(llm, user):
    """llama.cpp's ids of one user turn as the GGUF's chat template renders it (add_generation_prompt), the
    markup tokenized with special tokens parsed and the user text without (it holds none here, so this equals
    tokenizing the whole rendered string with special=True, which the script checks)."""
    import jinja2
    tmpl = llm.metadata["tokenizer.chat_template"]
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(tmpl).render(messages=[{"role": "user", "content": user}], add_generation_prompt=True)
    i = text.index(user)
    head, tail = text[:i], text[i + len(user):]
    ids = (llm.tokenize(head.encode(), add_bos=False, special=True) +
           llm.tokenize(user.encode(), add_bos=False, special=False) +
           llm.tokenize(tail.encode(), add_bos=False, special=True))
    assert ids == llm.tokenize(text.encode(), add_bos=False, special=True), "chat ids depend on the split"
    return text, ids


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-tokens", type=int, default=None, help="cut each document to this many tokens")
    a = ap.parse_args()
    qwen = a.name.startswith("qwen")
    if a.max_tokens is None:
        a.max_tokens = {"qwen05": 256, "qwen15": 128}.get(a.name, 1000)
    sha = hashlib.sha256(open(a.model, "rb").read()).hexdigest()
    llm = Llama(model_path=a.model, n_ctx=1024, n_batch=1024, n_ubatch=1024, logits_all=True, n_threads=a.threads,
                n_threads_batch=a.threads, verbose=False, seed=0, n_gpu_layers=0, flash_attn=False,
                type_k=1, type_v=1)  # 1 = GGML_TYPE_F16
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
    lines = [f"# llama.cpp (llama-cpp-python {__import__('llama_cpp').__version__}) reference for {a.name}",
             f"# model sha256 {sha}", "# CPU, flash_attn off, f16 KV cache, one batch per document", "# doc: ids (n+1 tokens); top1 and lp for positions 0..n-1 (predicting ids[i+1])"]
    n_pos = 0
    for d in documents():
        ids = llm.tokenize(d.encode("utf-8"), add_bos=add_bos, special=False)[:a.max_tokens]
        llm.reset()
        llm.eval(ids)
        lg = np.array(llm.scores[: len(ids)], dtype=np.float32)
        top1, lps = [], []
        for i in range(len(ids) - 1):
            lp = log_softmax(lg[i])
            top1.append(int(np.argmax(lg[i])))
            lps.append(float(lp[ids[i + 1]]))
        n_pos += len(ids) - 1
        lines.append(f"doc {len(ids)}")
        lines.append("ids " + " ".join(map(str, ids)))
        lines.append("top1 " + " ".join(map(str, top1)))
        lines.append("lp " + " ".join(f"{x:.{6 if qwen else 4}f}" for x in lps))
    for p in QWEN_PROMPTS if qwen else PROMPTS:
        if p is None:
            p, ids = chat_ids(llm, CHAT_USER)
        else:
            ids = llm.tokenize(p.encode("utf-8"), add_bos=add_bos, special=False)
        llm.reset()
        out = []
        toks = list(ids)
        llm.eval(toks)
        for _ in range(64):
            nxt = int(np.argmax(np.array(llm.scores[len(toks) - 1], dtype=np.float32)))
            if not qwen and nxt == llm.token_eos():
                break
            out.append(nxt)
            toks.append(nxt)
            llm.eval([nxt])
        lines.append(f"gen {len(ids)} {len(out)}")
        lines.append("ids " + " ".join(map(str, ids)))
        lines.append("out " + " ".join(map(str, out)))
        lines.append("# " + json.dumps(p + llm.detokenize(out).decode("utf-8", "replace"))[:300])
    out = a.out or os.path.join(ROOT, "tests", "fixtures", f"lm_parity_{a.name}.txt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {n_pos} teacher-forced positions, {len(QWEN_PROMPTS if qwen else PROMPTS)} greedy continuations",
          file=sys.stderr)


if __name__ == "__main__":
    main()
