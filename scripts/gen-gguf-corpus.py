#!/usr/bin/env python3
"""scripts/gen-gguf-corpus.py — write the fuzz seed corpus fuzz/corpus/gguf/: tiny valid GGUF files (v2/v3, every
metadata type, string arrays, one tensor of each supported ggml type, alignment 64, vocab-only) and invalid ones
(bad magic, truncation, duplicate keys, bad n_dims, data out of range, huge counts). Pure Python (struct), no
dependencies; deterministic. Usage: scripts/gen-gguf-corpus.py [OUTDIR]"""
import os
import random
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "gguf")
os.makedirs(out, exist_ok=True)
rnd = random.Random(1234)

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q",
       F64: "<d"}
# ggml type: (block elements, block bytes)
TYPES = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292)}


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(val(et, i) for i in items)
    return struct.pack(FMT[t], v)


def gguf(kvs, tensors=(), version=3, align=32, n_kv=None, n_t=None):
    """kvs: [(key, type, value)]; tensors: [(name, ggml_type, ne list, data bytes)]"""
    body = b"".join(s(k) + struct.pack("<I", t) + val(t, v) for k, t, v in kvs)
    infos, data = b"", b""
    for name, gt, ne, d in tensors:
        while len(data) % align:
            data += b"\0"
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", gt, len(data))
        data += d
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_t is None else n_t,
                                 len(kvs) if n_kv is None else n_kv)
    f = head + body + infos
    if tensors:
        while len(f) % align:
            f += b"\0"
    return f + data


def block(gt):
    n, size = TYPES[gt]
    b = bytearray(rnd.getrandbits(8) for _ in range(size))
    half_one = struct.pack("<e", 0.01)
    if gt in (2, 3, 6, 7, 8, 12, 13):
        b[0:2] = half_one
    if gt in (3, 7, 12, 13):
        b[2:4] = half_one
    if gt == 14:
        b[208:210] = half_one
    if gt == 15:
        b[0:4] = struct.pack("<f", 0.01)
    if gt in (0,):
        b = bytearray(struct.pack("<f", rnd.uniform(-1, 1)))
    return bytes(b)


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


arch = ("general.architecture", STR, "llama")
write("valid_min.seed", gguf([arch]))
toks = ["<unk>", "<s>", "</s>", "a", "b", "ab", "\u0120the", "\u00e9t\u00e9", "", "<0x0A>"]
vocab = [arch, ("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "smollm"),
         ("tokenizer.ggml.tokens", ARR, (STR, toks)),
         ("tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(len(toks))])),
         ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3] + [1] * (len(toks) - 3))),
         ("tokenizer.ggml.merges", ARR, (STR, ["a b", "\u0120 t"])),
         ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.add_bos_token", BOOL, 1),
         ("tokenizer.chat_template", STR, "{% for m in messages %}{{ m['content'] }}{% endfor %}")]
write("valid_vocab_v2.seed", gguf(vocab, version=2))
write("valid_vocab_v3.seed", gguf(vocab))
scal = [arch] + [("t.%d" % t, t, v) for t, v in
                 [(U8, 200), (I8, -3), (U16, 60000), (I16, -300), (U32, 4000000000), (I32, -7), (F32, 1.5),
                  (BOOL, 0), (STR, "x"), (U64, 1 << 40), (I64, -(1 << 40)), (F64, 0.125)]]
scal += [("a.%d" % t, ARR, (t, [v, v])) for t, v in
         [(U8, 1), (I8, -1), (U16, 2), (I16, -2), (U32, 3), (I32, -3), (F32, 0.5), (BOOL, 1), (U64, 4), (I64, -4),
          (F64, 0.25)]]
write("valid_scalars.seed", gguf(scal))
tens = []
for gt, (n, size) in sorted(TYPES.items()):
    ne0 = 256 if n == 256 else (32 if n == 32 else 4)
    nb = ne0 // n
    tens.append(("t.%d.weight" % gt, gt, [ne0, 2], b"".join(block(gt) for _ in range(2 * nb))))
hp = [arch, ("llama.block_count", U32, 1), ("llama.embedding_length", U32, 32),
      ("llama.attention.head_count", U32, 2), ("llama.rope.freq_base", F32, 10000.0)]
write("valid_tensors.seed", gguf(hp, tens))
write("valid_align64.seed", gguf(hp + [("general.alignment", U32, 64)], tens[:3], align=64))
write("valid_3d.seed", gguf([arch], [("x", 0, [2, 3, 4], b"\0" * 96), ("y", 8, [32, 1, 1, 2], block(8) * 2)]))

full = gguf(hp, tens)
write("invalid_magic.seed", b"GGUX" + full[4:])
write("invalid_version1.seed", full[:4] + struct.pack("<I", 1) + full[8:])
write("invalid_truncated_header.seed", full[:60])
write("invalid_truncated_data.seed", full[: len(full) - 100])
write("invalid_dup_key.seed", gguf([arch, arch]))
write("invalid_dup_tensor.seed", gguf([arch], [("x", 0, [4], b"\0" * 16), ("x", 0, [4], b"\0" * 16)]))
write("invalid_ndims.seed", gguf([arch], [("x", 0, [1, 1, 1, 1, 4], b"\0" * 16)]))
write("invalid_ne_zero.seed", gguf([arch], [("x", 0, [4, 0], b"\0" * 16)]))
write("invalid_block_multiple.seed", gguf([arch], [("x", 2, [33], b"\0" * 18)]))
write("invalid_align.seed", gguf([arch, ("general.alignment", U32, 48)], [("x", 0, [4], b"\0" * 16)]))
write("invalid_counts.seed", gguf([arch], n_kv=1 << 40, n_t=1 << 40))
bad_off = bytearray(gguf([arch], [("x", 0, [4], b"\0" * 16)]))
i = bad_off.find(b"x\x01\x00\x00\x00")
bad_off[i + 1 + 4 + 8 + 4: i + 1 + 4 + 8 + 4 + 8] = struct.pack("<Q", 1 << 20)
write("invalid_offset.seed", bytes(bad_off))
huge_str = bytearray(gguf([("k", STR, "abc")]))
huge_str[24:32] = struct.pack("<Q", 1 << 62)
write("invalid_strlen.seed", bytes(huge_str))
nested = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + s("nested") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 0)
write("invalid_nested.seed", nested)
print("wrote", len(os.listdir(out)), "files to", out)
