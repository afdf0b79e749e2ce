#!/usr/bin/env python3
"""scripts/lora_toy.py — the LoRA toy task with a known answer (issue 11's acceptance): prompts
"Item list: a, b, c, d, e. The item chosen is" whose completion is " <the rule's item>.", the rule fixed: the
item that comes first in alphabetical order. Python's standard library only.

  python3 scripts/lora_toy.py gen DIR [--n 2000] [--eval 200] [--seed 1]
      writes DIR/train.jsonl ({"prompt", "completion"} lines for `pulse lm train`) and DIR/eval.jsonl
  python3 scripts/lora_toy.py score DIR/eval.jsonl GENERATIONS.jsonl
      exact match of `pulse lm generate --json` output lines (in prompt order) against the answers; prints
      one JSON line {"exact_match", "n", "chance"}
"""
import json
import random
import sys

ITEMS = [
    "apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "orange", "peach", "pear", "plum", "kiwi",
    "hammer", "ladder", "candle", "basket", "bottle", "button", "carpet", "pencil", "wallet", "helmet",
    "guitar", "violin", "trumpet", "drum", "piano", "flute", "rocket", "wagon", "tractor", "bicycle", "canoe",
    "garden", "castle", "bridge", "tunnel", "island", "forest", "desert", "river", "valley", "meadow", "harbor",
]
K = 5


def example(rng):
    items = rng.sample(ITEMS, K)
    answer = min(items)
    prompt = "Item list: " + ", ".join(items) + ". The item chosen is"
    return {"prompt": prompt, "completion": " " + answer + "."}


def gen(out_dir, n, n_eval, seed):
    rng = random.Random(seed)
    seen = set()
    rows = []
    while len(rows) < n + n_eval:
        ex = example(rng)
        if ex["prompt"] in seen:
            continue
        seen.add(ex["prompt"])
        rows.append(ex)
    with open(f"{out_dir}/train.jsonl", "w") as f:
        for r in rows[:n]:
            f.write(json.dumps(r) + "\n")
    with open(f"{out_dir}/eval.jsonl", "w") as f:
        for r in rows[n:]:
            f.write(json.dumps(r) + "\n")


def first_word(text):
    w = text.strip().split()
    return w[0].strip(".,;:!\"'").lower() if w else ""


def score(eval_path, gen_path):
    answers = [json.loads(l)["completion"].strip().rstrip(".") for l in open(eval_path) if l.strip()]
    outs = {}
    for line in open(gen_path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        o = json.loads(line)
        if "index" in o and "text" in o:
            outs[o["index"]] = o["text"]
    hits = sum(1 for i, a in enumerate(answers) if first_word(outs.get(i, "")) == a)
    print(json.dumps({"exact_match": hits / len(answers), "n": len(answers), "chance": 1.0 / K}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        args = sys.argv[3:]
        opt = {"--n": 2000, "--eval": 200, "--seed": 1}
        for i in range(0, len(args) - 1, 2):
            opt[args[i]] = int(args[i + 1])
        gen(sys.argv[2], opt["--n"], opt["--eval"], opt["--seed"])
    elif len(sys.argv) == 4 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
