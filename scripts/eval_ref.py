#!/usr/bin/env python3
"""scripts/eval_ref.py — an independent reference for the evaluation harness (numpy only): the popularity
baseline under full ranking, leave-one-out, pessimistic ties, with the history masked or kept, on S3-Rec style
sequences.txt files (the synthetic dataset, the synthetic dataset with repeat consumption, shared datasets).
Writes tests/fixtures/eval_pop_ref.json, which tests/test_eval_ref.c compares pulse's numbers against.

  python3 scripts/eval_ref.py                       # synthetic (via the pulse CLI) + shared datasets present
  PULSE_CLI=build/pulse SHARED=../shared python3 scripts/eval_ref.py

Rules (the same as include/pulse/eval.h, written independently here):
  * test target = last item, history = everything before it; valid target = second to last, history before it
  * popularity = item counts over every user's training prefix (all but the last two items)
  * history "mask" (default): competitors = all items 1..n except the target and except every item of the
    history; a target that occurs in its own history is masked like the rest: the user is a miss (rank n-1)
  * history "keep": competitors = all items 1..n except the target
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


def pop_metrics(seqs, split, history):
    n = max(max(s) for s in seqs)
    cnt = np.zeros(n + 1)
    for s in seqs:
        for x in s[:-2]:
            cnt[x] += 1
    ranks = []
    repeats = 0
    for s in seqs:
        if len(s) < 3:
            continue
        h = len(s) - 1 if split == "test" else len(s) - 2
        t = s[h]
        past = set(s[:h])
        if history == "mask" and t in past:
            repeats += 1
            ranks.append(n - 1)
            continue
        repeats += t in past
        r = int((cnt[1:] >= cnt[t]).sum()) - 1
        if history == "mask":
            r -= sum(1 for m in past if cnt[m] >= cnt[t])
        ranks.append(r)
    r = np.array(ranks, dtype=np.float64)
    out = {}
    for k in (1, 5, 10, 20):
        out[f"HR@{k}"] = float((r < k).mean())
    for k in (5, 10, 20):
        out[f"NDCG@{k}"] = float(np.where(r < k, 1.0 / np.log2(r + 2), 0.0).mean())
    out["MRR"] = float((1.0 / (r + 1)).mean())
    return {"users": len(ranks), "repeats": repeats, "metrics": out}


def all_modes(seqs):
    return {hm: {sp: pop_metrics(seqs, sp, hm) for sp in ("test", "valid")} for hm in ("mask", "keep")}


def main():
    cli = os.environ.get("PULSE_CLI", os.path.join(ROOT, "build", "pulse"))
    shared = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        # the synthetic dataset as the C generator writes it (default parameters, seed 1)
        subprocess.run([cli, "data", "synth", "--out", tmp], check=True, stdout=subprocess.DEVNULL)
        result["synthetic"] = all_modes(read_seqs(os.path.join(tmp, "sequences.txt")))
        # the same generator with repeat consumption (--repeat 0.1): about one user in ten re-consumes
        rep = os.path.join(tmp, "repeat")
        subprocess.run([cli, "data", "synth", "--out", rep, "--repeat", "0.1"], check=True,
                       stdout=subprocess.DEVNULL)
        result["synthetic-repeat"] = all_modes(read_seqs(os.path.join(rep, "sequences.txt")))
    for name in ("amazon-beauty", "movielens-100k"):
        p = os.path.join(shared, "data", name, "sequences.txt")
        if os.path.exists(p):
            result[name] = all_modes(read_seqs(p))
    out = os.path.join(ROOT, "tests", "fixtures", "eval_pop_ref.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {out}: {', '.join(result)}")


if __name__ == "__main__":
    sys.exit(main())
