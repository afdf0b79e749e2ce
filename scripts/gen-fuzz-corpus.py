#!/usr/bin/env python3
"""scripts/gen-fuzz-corpus.py — write the seed corpora of the fuzz targets fuzz/safetensors.c, fuzz/wordpiece.c,
fuzz/lm_vocab.c, fuzz/sasrec.c and fuzz/thought.c into fuzz/corpus/<target>/: tiny valid inputs (a one-layer BERT
of hidden size 8, a SASRec model of dimension 4, BPE and SPM vocab-only GGUFs) and the known crashing or
hostile ones (a tokenizer.json whose added_tokens id is >= 1e7, a 60-byte SASRec file whose header claims huge
sizes, safetensors with overlapping / out-of-range offsets). Pure Python (struct, json, zlib), deterministic.
Usage: scripts/gen-fuzz-corpus.py [OUTDIR]   (default fuzz/corpus)

Multi-file targets (wordpiece, thought) read a container: records of
  u8 file index | u32 little-endian length | that many bytes
(file names: fuzz/fuzz_files.h); files a record does not name are absent."""
import json
import os
import random
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz",
                                                          "corpus")
rnd = random.Random(20261203)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- safetensors ----
def safetensors(tensors, meta=None, header_extra=None, raw_header=None):
    """tensors: [(name, dtype, shape, bytes)] laid out back to back"""
    hdr, data = {}, b""
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    if meta:
        hdr["__metadata__"] = meta
    if header_extra:
        hdr.update(header_extra)
    h = raw_header if raw_header is not None else json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data


def f32(n, scale=0.05):
    return struct.pack("<%df" % n, *[scale * rnd.uniform(-1, 1) for _ in range(n)])


def st_corpus():
    t = "safetensors"
    write(t, "valid_f32.st", safetensors([("a", "F32", [2, 3], f32(6)), ("b", "F32", [4], f32(4))], {"format": "pt"}))
    write(t, "valid_f16_bf16.st", safetensors([("h", "F16", [3], struct.pack("<3e", 1.0, -2.0, 0.5)),
                                               ("b", "BF16", [2, 2], b"\x80\x3f\x00\x40\x00\xc0\x00\x00")]))
    write(t, "valid_other.st", safetensors([("i", "I64", [2], struct.pack("<2q", 1, -1)), ("s", "F32", [], f32(1))]))
    write(t, "valid_empty.st", safetensors([]))
    write(t, "bad_overlap.st", safetensors([], header_extra={
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + f32(3))
    write(t, "bad_offset_past_end.st", safetensors([], header_extra={
        "a": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 4 << 40]}}) + f32(1))
    write(t, "bad_shape_mismatch.st", safetensors([], header_extra={
        "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}) + f32(2))
    write(t, "bad_negative_shape.st", safetensors([], header_extra={
        "a": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}) + f32(4))
    write(t, "bad_header_len.st", struct.pack("<Q", 1 << 62) + b"{}")
    write(t, "bad_json.st", safetensors([], raw_header=b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0,'))
    write(t, "bad_dims9.st", safetensors([("a", "F32", [1] * 9, f32(1))]))
    write(t, "bad_meta_type.st", safetensors([("a", "F32", [1], f32(1))], meta={"k": 3}))


# ---- encoder folders (config.json, vocab.txt, model.safetensors) ----
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "user", "likes", "movie", "item", "because",
         "it", "is", "good", "##s", "##ing", "##ed", "she", "he", ",", ".", "!", "?", "and", "of", "to", "in",
         "caf\u00e9", "\u4e2d", "##ly", "buy"]


def bert_files(C=8, L=1, NH=2, FF=16, P=16, NTT=2, proj=0, pooling=None):
    V = len(VOCAB)
    cfg = {"model_type": "bert", "vocab_size": V, "hidden_size": C, "num_hidden_layers": L,
           "num_attention_heads": NH, "intermediate_size": FF, "max_position_embeddings": P,
           "type_vocab_size": NTT, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    if proj:
        cfg["pulse_proj_dim"] = proj
    if pooling:
        cfg["pulse_pooling"] = pooling
    ts = [("embeddings.word_embeddings.weight", [V, C]), ("embeddings.position_embeddings.weight", [P, C])]
    if NTT:
        ts.append(("embeddings.token_type_embeddings.weight", [NTT, C]))
    ts += [("embeddings.LayerNorm.weight", [C]), ("embeddings.LayerNorm.bias", [C])]
    names = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"]
    rows, cols = [C, C, C, C, C, FF, C, C], [C, C, C, C, 0, C, FF, 0]
    for l in range(L):
        for k in range(8):
            ts.append(("encoder.layer.%d.%s.weight" % (l, names[k]), [rows[k], cols[k]] if cols[k] else [rows[k]]))
            ts.append(("encoder.layer.%d.%s.bias" % (l, names[k]), [rows[k]]))
    if proj:
        ts += [("pulse_proj.weight", [proj, C]), ("pulse_proj.bias", [proj])]
    tensors = []
    for name, shape in ts:
        n = 1
        for s in shape:
            n *= s
        if "LayerNorm.weight" in name:
            b = struct.pack("<%df" % n, *[1.0 + 0.1 * rnd.uniform(-1, 1) for _ in range(n)])
        else:
            b = f32(n)
        tensors.append((name, "F32", shape, b))
    return json.dumps(cfg).encode(), ("\n".join(VOCAB) + "\n").encode(), safetensors(tensors)


def container(files):
    """files: [(index, bytes)]"""
    return b"".join(struct.pack("<BI", i, len(b)) + b for i, b in files)


# file indexes of fuzz/fuzz_files.h
WP_TOKJSON, WP_VOCAB, WP_TOKCFG = 0, 1, 2
TH = {"space.json": 0, "b/config.json": 1, "b/vocab.txt": 2, "b/model.safetensors": 3, "r/config.json": 4,
      "r/vocab.txt": 5, "r/model.safetensors": 6, "b/tokenizer.json": 7, "config.json": 8, "vocab.txt": 9,
      "model.safetensors": 10, "tokenizer.json": 11, "1_Pooling/config.json": 12, "tokenizer_config.json": 13,
      "b/tokenizer_config.json": 14, "r/1_Pooling/config.json": 15}


def tokenizer_json(vocab, added, lowercase=True, extra=None):
    d = {"version": "1.0", "added_tokens": added,
         "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                        "strip_accents": None, "lowercase": lowercase},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                   "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}}}
    if extra:
        d.update(extra)
    return json.dumps(d, ensure_ascii=False).encode()


def added(tok, i):
    return {"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
            "special": True}


def wp_corpus():
    t = "wordpiece"
    specials = [added(s, i) for i, s in enumerate(VOCAB[:5])]
    vtxt = ("\n".join(VOCAB) + "\n").encode()
    write(t, "valid_tokenizer_json", container([(WP_TOKJSON, tokenizer_json(VOCAB, specials))]))
    write(t, "valid_tokenizer_json_cased", container([(WP_TOKJSON, tokenizer_json(VOCAB, specials, False, {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "BertNormalizer", "lowercase": False}]}}))]))
    write(t, "valid_vocab_txt", container([(WP_VOCAB, vtxt)]))
    write(t, "valid_vocab_txt_config", container([(WP_VOCAB, vtxt), (WP_TOKCFG, json.dumps(
        {"do_lower_case": False, "tokenize_chinese_chars": False, "strip_accents": True}).encode())]))
    write(t, "valid_vocab_crlf", container([(WP_VOCAB, vtxt.replace(b"\n", b"\r\n"))]))
    # known crash (issue 9): an added_tokens id >= 1e7 was left out of the vocabulary size, then indexed
    write(t, "crash_added_id_1e7", container([(WP_TOKJSON, tokenizer_json(
        VOCAB, specials + [added("<huge>", 10000000), added("<huger>", 2147483647)]))]))
    write(t, "bad_added_negative_float", container([(WP_TOKJSON, tokenizer_json(
        VOCAB, [added("<neg>", -1), {"id": 3.5, "content": "<f>"}, {"id": 7, "content": 5}]))]))
    write(t, "bad_vocab_ids", container([(WP_TOKJSON, json.dumps(
        {"model": {"type": "WordPiece", "vocab": {"a": 9999999, "b": -3, "c": "x"}}}).encode())]))
    write(t, "bad_duplicate_ids", container([(WP_TOKJSON, json.dumps(
        {"model": {"type": "WordPiece", "vocab": {"a": 1, "b": 1, "##": 0, "": 2}}}).encode())]))
    write(t, "bad_empty_vocab", container([(WP_VOCAB, b"")]))
    write(t, "bad_nul_vocab", container([(WP_VOCAB, b"[UNK]\n\x00x\n[CLS]\n")]))
    write(t, "bad_model_type", container([(WP_TOKJSON, b'{"model": {"type": "BPE", "vocab": {}}}')]))


# ---- LM vocabularies (vocab-only GGUF) ----
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gs(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STR:
        return gs(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, i) for i in items)
    return struct.pack({U32: "<I", I32: "<i", F32: "<f", BOOL: "<B"}[t], v)


def gguf_vocab(kvs):
    body = b"".join(gs(k) + struct.pack("<I", t) + gval(t, v) for k, t, v in kvs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + body


def lm_corpus():
    t = "lm_vocab"
    # byte-level BPE (GPT-2 style): the 256 byte symbols, a few merges, chat tokens
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(
        range(ord("\u00ae"), ord("\u00ff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_syms = [chr(c) for c in cs]
    merges = ["\u0120 t", "\u0120 a", "h e", "\u0120t he", "i n", "e r", "o n", "\u0120a n"]
    toks = byte_syms + ["\u0120t", "\u0120a", "he", "\u0120the", "in", "er", "on", "\u0120an", "<|im_start|>",
                        "<|im_end|>", "<|endoftext|>"]
    types = [1] * (len(toks) - 3) + [3, 3, 3]
    for pre in ("smollm", "gpt-2", "llama3", "qwen2", "default"):
        write(t, "bpe_%s.seed" % pre, gguf_vocab([
            ("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, pre),
            ("tokenizer.ggml.tokens", ARR, (STR, toks)), ("tokenizer.ggml.token_type", ARR, (I32, types)),
            ("tokenizer.ggml.merges", ARR, (STR, merges)),
            ("tokenizer.ggml.bos_token_id", U32, len(toks) - 1), ("tokenizer.ggml.eos_token_id", U32, len(toks) - 2),
            ("tokenizer.chat_template", STR, "{% for m in messages %}<|im_start|>{{m}}<|im_end|>{% endfor %}")]))
    # SentencePiece (llama / gemma style): <unk> <s> </s>, byte fallback <0xXX>, scored pieces
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + [
        "\u2581", "\u2581the", "\u2581a", "e", "t", "h", "\u2581th", "in", "g", "\u2581in", "<start_of_turn>",
        "<end_of_turn>"]
    ptypes = [2, 3, 3] + [6] * 256 + [1] * (len(pieces) - 261) + [3, 3]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(pieces) - 259)]
    for asp in (1, 0):
        write(t, "spm_asp%d.seed" % asp, gguf_vocab([
            ("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, pieces)),
            ("tokenizer.ggml.scores", ARR, (F32, scores)), ("tokenizer.ggml.token_type", ARR, (I32, ptypes)),
            ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.bos_token_id", U32, 1),
            ("tokenizer.ggml.eos_token_id", U32, 2), ("tokenizer.ggml.add_space_prefix", BOOL, asp),
            ("tokenizer.ggml.eot_token_id", U32, len(pieces) - 1)]))
    write(t, "bad_ids_out_of_range.seed", gguf_vocab([
        ("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "a"])),
        ("tokenizer.ggml.scores", ARR, (F32, [0.0])), ("tokenizer.ggml.token_type", ARR, (I32, [2, 9, 1])),
        ("tokenizer.ggml.bos_token_id", U32, 4000000000), ("tokenizer.ggml.eos_token_id", U32, 7)]))
    write(t, "bad_merges.seed", gguf_vocab([
        ("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.tokens", ARR, (STR, ["a", "b", ""])),
        ("tokenizer.ggml.merges", ARR, (STR, ["a", "a b c", " ", "zz yy"]))]))


# ---- SASRec model files ----
MAGIC = b"PLSSASR\x00"


def sasrec_n(n_items, C, L, T):
    """src/sasrec/model.c sasrec_count_params"""
    blk = 2 * C + 4 * (C * C + C) + 2 * C + 2 * (C * C + C)
    return (n_items + 1) * C + T * C + L * blk + 2 * C


def sasrec_file(n_items, C, L, NH, T, loss=0, dropout=0.2, np_=None, body=None):
    n = sasrec_n(n_items, C, L, T)
    hdr = MAGIC + struct.pack("<7If", 1, n_items, C, L, NH, T, loss, dropout) + struct.pack(
        "<Q", n if np_ is None else np_)
    if body is None:
        body = f32(n, 0.1)
    data = hdr + body
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def sasrec_corpus():
    t = "sasrec"
    write(t, "valid_small.bin", sasrec_file(12, 4, 1, 2, 6))
    write(t, "valid_bce.bin", sasrec_file(5, 2, 2, 1, 3, loss=1, dropout=0.5))
    # known crash (issue 9): 60 bytes whose header claims 1e8 items x 4096 dims: allocated before the size check
    huge = MAGIC + struct.pack("<7If", 1, 100000000, 4096, 64, 1, 4096, 0, 0.2) + struct.pack("<Q", 1 << 60)
    huge += b"\x00" * (56 - len(huge))
    write(t, "crash_huge_header_60b.bin", huge + struct.pack("<I", zlib.crc32(huge) & 0xFFFFFFFF))
    write(t, "bad_np_mismatch.bin", sasrec_file(12, 4, 1, 2, 6, np_=7))
    write(t, "bad_heads.bin", sasrec_file(3, 4, 1, 3, 2))
    write(t, "bad_truncated.bin", sasrec_file(12, 4, 1, 2, 6)[:100])
    write(t, "bad_nan_weights.bin", sasrec_file(3, 2, 1, 1, 2, body=struct.pack("<f", float("nan")) * sasrec_n(3, 2, 1, 2)))


# ---- Thought-Space folders ----
def thought_corpus():
    t = "thought"
    bc, bv, bm = bert_files(pooling="mean")
    rc, rv, rm = bert_files(proj=4, pooling="cls")
    bc2, _, bm2 = bert_files(proj=4, pooling="mean")
    space = json.dumps({"epoch": 1, "behaviour": "b", "rationale": "r", "shared": False,
                        "history": [{"epoch": 0, "train_loss": 1.0}]}).encode()
    write(t, "valid_space", container([(TH["space.json"], space), (TH["b/config.json"], bc2),
                                       (TH["b/vocab.txt"], bv), (TH["b/model.safetensors"], bm2),
                                       (TH["r/config.json"], rc), (TH["r/vocab.txt"], rv),
                                       (TH["r/model.safetensors"], rm)]))
    shared = json.dumps({"epoch": 2, "behaviour": "b", "rationale": "b", "shared": True}).encode()
    write(t, "valid_shared", container([(TH["space.json"], shared), (TH["b/config.json"], bc),
                                        (TH["b/vocab.txt"], bv), (TH["b/model.safetensors"], bm)]))
    write(t, "valid_plain_encoder", container([(TH["config.json"], bc), (TH["vocab.txt"], bv),
                                               (TH["model.safetensors"], bm)]))
    # tokenizer.json instead of vocab.txt, and the known added_tokens crash inside a space
    specials = [added(s, i) for i, s in enumerate(VOCAB[:5])]
    write(t, "crash_added_id_1e7", container([(TH["config.json"], bc), (TH["tokenizer.json"], tokenizer_json(
        VOCAB, specials + [added("<huge>", 10000000)])), (TH["model.safetensors"], bm)]))
    write(t, "bad_space_paths", container([(TH["space.json"], json.dumps(
        {"epoch": 1, "behaviour": "../nonexistent", "rationale": "/", "shared": False}).encode())]))
    big = dict(json.loads(bc))
    big.update({"vocab_size": 10000000, "hidden_size": 65536, "num_attention_heads": 1,
                "intermediate_size": 1 << 20, "max_position_embeddings": 1 << 20})
    write(t, "bad_config_huge_sizes", container([(TH["config.json"], json.dumps(big).encode()),
                                                 (TH["vocab.txt"], bv), (TH["model.safetensors"], bm)]))
    small = dict(json.loads(bc))
    small.update({"type_vocab_size": 0})
    write(t, "bad_config_type_vocab_0", container([(TH["config.json"], json.dumps(small).encode()),
                                                   (TH["vocab.txt"], bv), (TH["model.safetensors"], bm)]))
    write(t, "bad_pooling_config", container([(TH["config.json"], bc), (TH["vocab.txt"], bv),
                                              (TH["model.safetensors"], bm), (TH["1_Pooling/config.json"],
                                                                              b'{"pooling_mode_mean_tokens": 7}')]))


st_corpus()
wp_corpus()
lm_corpus()
sasrec_corpus()
thought_corpus()
