#!/usr/bin/env python3
"""scripts/eval_ref.py — an independent reference for the evaluation harness (numpy only): the popularity
baseline under full ranking with the user's history masked, leave-one-out, pessimistic ties, on S3-Rec style
sequences.txt files. Writes tests/fixtures/eval_pop_ref.json, which tests/test_eval_ref.c compares pulse's
numbers against.

  python3 scripts/eval_ref.py                       # synthetic (via the pulse CLI) + shared datasets present
  PULSE_CLI=build/pulse SHARED=../shared python3 scripts/eval_ref.py

Rules (the same as include/pulse/eval.h, written independently here):
  * test target = last item, history = everything before it; valid target = second to last, history before it
  * popularity = item counts over every user's training prefix (all but the last two items)
  * competitors = all items 1..n except the target and except every item of the history
  * rank = number of competitors whose score is >= the target's (ties count against the target)
  * HR@K = mean(rank < K), NDCG@K = mean(1/log2(rank+2) if rank < K), MRR = mean(1/(rank+1))
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_seqs(path):
    with open(path) as f:
        return [list(map(int, line.split()))[1:] for line in f]


def pop_metrics(seqs, split):
    n = max(max(s) for s in seqs)
    cnt = np.zeros(n + 1)
    for s in seqs:
        for x in s[:-2]:
            cnt[x] += 1
    ranks = []
    for s in seqs:
        if len(s) < 3:
            continue
        h = len(s) - 1 if split == "test" else len(s) - 2
        t = s[h]
        masked = set(s[:h]) - {t}
        r = int((cnt[1:] >= cnt[t]).sum()) - 1
        r -= sum(1 for m in masked if cnt[m] >= cnt[t])
        ranks.append(r)
    r = np.array(ranks, dtype=np.float64)
    out = {}
    for k in (1, 5, 10, 20):
        out[f"HR@{k}"] = float((r < k).mean())
    for k in (5, 10, 20):
        out[f"NDCG@{k}"] = float(np.where(r < k, 1.0 / np.log2(r + 2), 0.0).mean())
    out["MRR"] = float((1.0 / (r + 1)).mean())
    return {"users": len(ranks), "metrics": out}


def main():
    cli = os.environ.get("PULSE_CLI", os.path.join(ROOT, "build", "pulse"))
    shared = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        # the synthetic dataset as the C generator writes it (default parameters, seed 1)
        subprocess.run([cli, "data", "synth", "--out", tmp], check=True, stdout=subprocess.DEVNULL)
        seqs = read_seqs(os.path.join(tmp, "sequences.txt"))
        result["synthetic"] = {s: pop_metrics(seqs, s) for s in ("test", "valid")}
    for name in ("amazon-beauty", "movielens-100k"):
        p = os.path.join(shared, "data", name, "sequences.txt")
        if os.path.exists(p):
            result[name] = {s: pop_metrics(read_seqs(p), s) for s in ("test", "valid")}
    out = os.path.join(ROOT, "tests", "fixtures", "eval_pop_ref.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {out}: {', '.join(result)}")


if __name__ == "__main__":
    sys.exit(main())
