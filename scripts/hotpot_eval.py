#!/usr/bin/env python3
"""scripts/hotpot_eval.py — reference HotpotQA metrics (standard library only), written for pulse from the
definitions of the official evaluation (hotpot_evaluate_v1.py, Yang et al. 2018): answer EM and token F1
after SQuAD normalisation (lower-case, string.punctuation removed, the words a / an / the removed,
whitespace collapsed; when either normalised answer is yes / no / noanswer and they differ, F1 = P = R = 0),
supporting-fact EM / F1 over sets of (title, sentence index) pairs, joint EM = EM * SP-EM, joint P / R the
products of answer and SP P / R, joint F1 from those. Every gold question counts in the denominator; a
question without a predicted answer (or sp) scores 0 there and in joint.

    python3 scripts/hotpot_eval.py PRED.json GOLD.json [--per-question] > out.json

prints one JSON object: {"metrics": {...}} (and "per_question": {id: {...}} with --per-question).
tests/fixtures/qa/expected.json is this script's output on tests/fixtures/qa/{pred,gold}.json:
    python3 scripts/hotpot_eval.py tests/fixtures/qa/pred.json tests/fixtures/qa/gold.json --per-question \
        > tests/fixtures/qa/expected.json
"""
import json
import re
import string
import sys
from collections import Counter

PUNCT = set(string.punctuation)


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def answer_scores(pred, gold):
    np_, ng = normalize(pred), normalize(gold)
    em = 1.0 if np_ == ng else 0.0
    if (np_ in ("yes", "no", "noanswer") or ng in ("yes", "no", "noanswer")) and np_ != ng:
        return em, 0.0, 0.0, 0.0
    pt, gt = np_.split(), ng.split()
    same = sum((Counter(pt) & Counter(gt)).values())
    if same == 0:
        return em, 0.0, 0.0, 0.0
    p = same / len(pt)
    r = same / len(gt)
    return em, 2 * p * r / (p + r), p, r


def sp_scores(pred, gold):
    ps = set(tuple(x) for x in pred)
    gs = set(tuple(x) for x in gold)
    tp = len(ps & gs)
    fp = len(ps - gs)
    fn = len(gs - ps)
    p = tp / (tp + fp) if tp + fp > 0 else 0.0
    r = tp / (tp + fn) if tp + fn > 0 else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return (1.0 if fp + fn == 0 else 0.0), f, p, r


KEYS = ["em", "f1", "prec", "recall", "sp_em", "sp_f1", "sp_prec", "sp_recall",
        "joint_em", "joint_f1", "joint_prec", "joint_recall"]


def evaluate(pred, gold):
    tot = dict.fromkeys(KEYS, 0.0)
    per = {}
    for g in gold:
        qid = g["_id"]
        row = dict.fromkeys(KEYS, 0.0)
        joint = True
        if qid in pred.get("answer", {}):
            row["em"], row["f1"], row["prec"], row["recall"] = answer_scores(pred["answer"][qid], g["answer"])
        else:
            joint = False
        if qid in pred.get("sp", {}):
            row["sp_em"], row["sp_f1"], row["sp_prec"], row["sp_recall"] = sp_scores(
                pred["sp"][qid], g["supporting_facts"])
        else:
            joint = False
        if joint:
            jp = row["prec"] * row["sp_prec"]
            jr = row["recall"] * row["sp_recall"]
            row["joint_prec"], row["joint_recall"] = jp, jr
            row["joint_f1"] = 2 * jp * jr / (jp + jr) if jp + jr > 0 else 0.0
            row["joint_em"] = row["em"] * row["sp_em"]
        per[qid] = row
        for k in KEYS:
            tot[k] += row[k]
    n = len(gold)
    return {k: v / n for k, v in tot.items()}, per


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        pred = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        gold = json.load(f)
    metrics, per = evaluate(pred, gold)
    out = {"metrics": metrics, "questions": len(gold)}
    if "--per-question" in argv[3:]:
        out["per_question"] = per
    json.dump(out, sys.stdout, indent=1, sort_keys=True, ensure_ascii=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
