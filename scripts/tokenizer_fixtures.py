#!/usr/bin/env python3
"""scripts/tokenizer_fixtures.py — reference token ids for the tokenizer parity test (tests/test_lm_tokenizer.c).

The reference is llama.cpp itself (PyPI llama-cpp-python, vocab_only=True), i.e. the same GGUF metadata read by
the tokenizer pulse re-implements. Run it in the reference environment (scripts/pyref.sh):

  python scripts/tokenizer_fixtures.py corpus [--items ../shared/data/amazon-beauty/items.tsv]
      -> (re)writes tests/fixtures/tok_corpus.txt (product titles + hand-written hard cases + seeded random mixes)
  python scripts/tokenizer_fixtures.py fixtures --model smollm2=PATH.gguf --model gemma3=PATH.gguf
      [--model qwen05=PATH.gguf --model qwen15=PATH.gguf]
      -> tests/fixtures/tok_<name>.json: for every corpus line the ids with parse_special off and on (no BOS),
         plus a few invalid-UTF-8 byte strings (hex); for the Qwen files (qwen*) also the texts of QWEN_EXTRA
         (digit runs, CJK, emoji, code, \r\n, long whitespace runs) and "chat": a user turn as the GGUF's
         template renders it (jinja2, add_generation_prompt; ChatML with Qwen's default system message) and
         llama.cpp's ids of it (special tokens parsed in the markup, never in the user's text);
         and tok_<name>-<variant>.json for vocab-only GGUF files derived from those vocabularies with another
         pre-tokenizer (smollm2: gpt-2, llama-bpe, qwen2, default, gpt-4o) or add_space_prefix=true (gemma3), written
         here with gguf-py exactly as tests/test_lm_tokenizer.c writes them with its own GGUF writer.

Corpus format: one text per line; the escapes \\n \\t \\r \\\\ and \\uXXXX stand for those characters (so texts may
hold newlines). The JSON fixtures hold the decoded texts themselves.
"""
import argparse
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fixtures", "tok_corpus.txt")

HAND = [
    "Hello world",
    "Hello, world! How's it going? I'm fine, you're great, we'll see, they've gone, he'd say.",
    "IT'S ALL CAPS AND SHE'LL SHOUT, WE'VE SEEN IT, I'D SAY, THEY'RE HERE",
    "don't won't can't shouldn't y'all o'clock rock'n'roll 'quoted' \"double\"",
    "",
    " ",
    "  ",
    "   leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e",
    "tab\tseparated\tvalues\t\tdouble tab",
    "line one\nline two\n\nline four\n\n\n\nafter four newlines",
    "windows\r\nline\r\nendings\r\n",
    "\n",
    "\n\n",
    " \n \n ",
    "mixed \t \n whitespace \u00a0 nbsp \u2003 em space \u3000 ideographic",
    "0",
    "12",
    "123",
    "1234",
    "12345678901234567890",
    "3.14159 2,718 1e-10 -42 +7 0x1F 0b1010 1_000_000",
    "Price: $19.99 (was $24.99) — save 20%!",
    "Phone: +1 (555) 123-4567, ZIP 90210-1234",
    "2024-01-15T10:30:00Z 12:45 pm 31/12/1999",
    "1st 2nd 3rd 4th 21st 100th",
    "café naïve résumé façade coöperate jalapeño Ångström",
    "Größe Straße Übermäßig ÄÖÜ äöü ß",
    "Ça va? Où est la bibliothèque? L'été dernier.",
    "español: ¿Cómo estás? ¡Muy bien! mañana",
    "Português: ação, coração, não, pão",
    "Ελληνικά: Καλημέρα κόσμε",
    "Русский: Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Українська: Ґанок, їжак, є",
    "עברית: שלום עולם",
    "العربية: مرحبا بالعالم ١٢٣",
    "हिन्दी: नमस्ते दुनिया १२३",
    "বাংলা: হ্যালো বিশ্ব",
    "ไทย: สวัสดีชาวโลก",
    "日本語のテキスト、カタカナ、ひらがな。",
    "中文：你好，世界！这是一个测试。",
    "한국어: 안녕하세요 세계",
    "Tiếng Việt: Xin chào thế giới",
    "emoji 🤗😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇫🇷 ✨",
    "🙂🙂🙂🙂🙂",
    "math: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ± × ÷ π θ λ µ",
    "superscripts ² ³ ¹ ½ ¼ ¾ Ⅻ ⅷ ① ② ⑩",
    "fullwidth ＡＢＣ １２３ ！？",
    "combining: e\u0301 a\u0300 n\u0303 o\u0308 Z\u0351\u0352\u0353",
    "zero\u200bwidth\u200cjoiner\u200dand\ufeffbom",
    "control \u0001\u0002\u007f chars",
    "private use \ue000\uf8ff",
    "Symbols: © ® ™ ° § ¶ † ‡ • … ‰ ′ ″ € £ ¥ ₹ ₿",
    "quotes: “smart” ‘single’ «guillemets» „low“",
    "dashes: - – — ― hyphen-ated em—dash en–dash",
    "def main():\n    print(\"hello\")\n    return 0\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "if x >= 10 and y != 3: z = x ** 2 // 4 % 7",
    "const f = (a, b) => a + b; // arrow\n/* block */",
    "<html><body><h1>Title</h1><p class=\"x\">text</p></body></html>",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "https://www.example.com/path?query=1&b=2#frag",
    "email: someone@example.org, @handle #hashtag",
    "$$$ ^^^ ``` ||| <<< >>> === +++ --- ~~~ *** ### @@@ !!! ???",
    "a.b,c;d:e!f?g(h)i[j]k{l}m<n>o",
    "...,,,;;;:::",
    "''''",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
    "CamelCaseWordsAndSNAKE_CASE_words and kebab-case-words",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "abcabcabcabcabcabcabcabcabcabcabcabc",
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "<|endoftext|>after end",
    "text<|im_end|>text<|im_start|>",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><unk><mask>",
    "<|user|>\nHi<|end|>\n<|assistant|>\n",
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<repo_name>x<file_sep>y<filename>z<gh_stars>",
    "< |im_start| > <im_start> <|im_start <|",
    "[INST] Hello [/INST] </s> <s>",
    "<unused0><unused99><start_of_image>",
    "User: Given the purchase history, recommend the next item.\nAssistant: Based on the items, the user likes nail polish.",
    "Rationale: The user bought OPI Nail Lacquer and Essie polish, so they will likely buy a top coat next.",
    "Item 1: \"CND Shellac Power Polish\" | Item 2: 'Maybelline New York Color Sensational' | Item 3: (L'Oreal)",
    "HTTPServer XMLHttpRequest iPhone macOS McDonald's eBay NASA's ÉCOLE élève ÀbC aÉb",
    "ΑΒΓ αβγ ΣΊΣΥΦΟΣ Δelta ǅemal ǈj ǋ Straße STRASSE ﬁne ﬀ",
    "path/to/file.txt C:\\Windows\\System32 ./run.sh --flag=1 //comment\n/* x */",
    "x=1;y=2\r\nz = x/y\n\n\tw = [1,2,3]\n",
    "He said: 'HELLO'S world' and 'goodbye'LL'",
]

POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3 + list("0123456789") * 3 +
        [" "] * 12 + ["\n", "\t", "\r", "\u00a0", "\u3000", "\u2009"] +
        list("'\".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`") + list("éèàçñüößøåœæ") + list("日本語中文한국") +
        ["🤗", "😀", "👍🏽", "❤️", "🇫🇷"] + list("²½①Ⅻ٣३") + ["\u0301", "\u200d", "\ufeff"] +
        ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "'s", "'LL", "  ", "\n\n"])


def escape(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ch in "\u2028\u2029\x85\x7f" or 0xD800 <= ord(ch) < 0xE000:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def unescape(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            d = s[i + 1]
            if d == "n":
                out.append("\n")
            elif d == "t":
                out.append("\t")
            elif d == "r":
                out.append("\r")
            elif d == "\\":
                out.append("\\")
            elif d == "u":
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 4
            else:
                out.append(c + d)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def make_corpus(items_path, n_titles, n_random):
    lines = list(HAND)
    if items_path and os.path.exists(items_path):
        with open(items_path, encoding="utf-8") as f:
            rows = f.read().split("\n")[1:]
        titles = [r.split("\t")[2] for r in rows if r.count("\t") >= 2 and r.split("\t")[2].strip()]
        step = max(1, len(titles) // n_titles)
        lines += titles[::step][:n_titles]
        # a few whole rows (brand, category path, keywords) too
        lines += [" | ".join(r.split("\t")[2:]) for r in rows[5::len(rows) // 20][:20] if r.count("\t") >= 5]
    else:
        print("items file not found: no product titles added", file=sys.stderr)
    rng = random.Random(2510)
    for _ in range(n_random):
        k = rng.randint(1, 40)
        lines.append("".join(rng.choice(POOL) for _ in range(k)))
    with open(CORPUS, "w", encoding="utf-8") as f:
        for s in lines:
            f.write(escape(s) + "\n")
    print("%s: %d lines" % (CORPUS, len(lines)))


def read_corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return [unescape(l.rstrip("\n")) for l in f]


# byte strings that are not valid UTF-8 (kept clear of code points above U+10FFFF, which llama.cpp rejects)
BAD_UTF8 = [b"\xff", b"\xc3(", b"abc\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong",
            b"hello \xfe world \x80\x80", b"\xe2\x96", b"caf\xe9 latin-1", b"\xf0\x9f\xa4\x97\xf0\x9f"]

VARIANTS = {"smollm2": [("gpt2", {"pre": "gpt-2"}), ("llama-bpe", {"pre": "llama-bpe"}), ("qwen2", {"pre": "qwen2"}),
                        ("default", {"pre": "default"}), ("gpt-4o", {"pre": "gpt-4o"})],
            "gemma3": [("prefix", {"add_space_prefix": True})]}


# Qwen2.5's pre-tokenizer splits digits one by one and CJK / emoji / code / whitespace runs its own way
QWEN_EXTRA = [
    "1234567890 12345678901234567890123 3.14159265358979 -0.001 1,000,000 2^64=18446744073709551616",
    "Order #000123 shipped 2024-12-31 23:59:59; total $1,299.00 (x3 = $3,897.00)",
    "通义千问是阿里云研发的大语言模型。它可以回答问题、写代码、翻译文本，还能进行多轮对话。",
    "日本語と中文と한국어が混ざった文章：東京タワー（333m）、上海中心大厦（632米）、롯데월드타워（555m）。",
    "繁體中文：這個產品的品質非常好，價格也很合理！簡體：这个产品的质量非常好。",
    "😀😃😄😁😆😅😂🤣 👍🏻👍🏼👍🏽👍🏾👍🏿 🏳️‍🌈 🧑‍💻 👩🏽‍🔬 #️⃣ 1️⃣ 🇯🇵🇨🇳🇰🇷",
    "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n    p, *rest = xs\n    return quicksort([x for x in rest if x < p]) + [p] + quicksort([x for x in rest if x >= p])\n",
    "#include <stdio.h>\r\nint main(void) {\r\n\tprintf(\"%d\\n\", 42);\r\n\treturn 0;\r\n}\r\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot\n\t\t/* tabs */\n",
    "SELECT id, title FROM items WHERE price <= 19.99 AND title LIKE '%nail%' ORDER BY id DESC;",
    "{\"user\": \"A3NHUQ33CFH3VM\", \"items\": [101, 202, 303], \"scores\": [0.91, 0.07, 0.02]}",
    "line1\r\n\r\n\r\nline4\r\n   \r\n\t\r\nend\r",
    "a" + " " * 40 + "b" + "\t" * 12 + "c" + "\n" * 9 + "d" + " \n" * 6 + "e",
    " " * 64,
    "\n" * 33,
    "    indented 4\n        indented 8\n                indented 16\n\t\t\t3 tabs",
    "x" * 200,
    "<|im_start|>user\nnot a turn<|im_end|> <|endoftext|> <|fim_prefix|>code<|fim_suffix|><|fim_middle|>",
]
QWEN_CHAT_USER = "Recommend one item for a user who bought OPI nail lacquer, a top coat and cuticle oil. 你好!"


def qwen_chat(m, path):
    """(rendered text, ids) of one user turn as llama-cpp-python's chat handler renders the GGUF's template"""
    import gguf
    import jinja2
    r = gguf.GGUFReader(path)
    tmpl = r.fields["tokenizer.chat_template"].contents()
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(tmpl).render(messages=[{"role": "user", "content": QWEN_CHAT_USER}],
                                        add_generation_prompt=True)
    i = text.index(QWEN_CHAT_USER)
    head, tail = text[:i], text[i + len(QWEN_CHAT_USER):]
    ids = (m.tokenize(head.encode(), add_bos=False, special=True) +
           m.tokenize(QWEN_CHAT_USER.encode(), add_bos=False, special=False) +
           m.tokenize(tail.encode(), add_bos=False, special=True))
    return text, ids


def write_vocab_only(src, dst, pre=None, add_space_prefix=None):
    """The tokenizer.* keys of src (tokens, types, merges/scores, special ids, flags) into a vocab-only GGUF."""
    import gguf
    r = gguf.GGUFReader(src)

    def arr(key):
        f = r.fields.get(key)
        return None if f is None else [f.parts[i] for i in f.data]

    def scalar(key):
        f = r.fields.get(key)
        return None if f is None else f.parts[f.data[0]][0]

    model = r.fields["tokenizer.ggml.model"].contents()
    w = gguf.GGUFWriter(dst, "llama")
    w.add_tokenizer_model(model)
    old_pre = r.fields.get("tokenizer.ggml.pre")
    p = pre if pre is not None else (old_pre.contents() if old_pre is not None else None)
    if p is not None:
        w.add_tokenizer_pre(p)
    w.add_token_list([bytes(x) for x in arr("tokenizer.ggml.tokens")])
    if "tokenizer.ggml.token_type" in r.fields:
        w.add_token_types([int(x[0]) for x in arr("tokenizer.ggml.token_type")])
    if "tokenizer.ggml.merges" in r.fields:
        w.add_token_merges([bytes(x) for x in arr("tokenizer.ggml.merges")])
    if "tokenizer.ggml.scores" in r.fields:
        w.add_token_scores([float(x[0]) for x in arr("tokenizer.ggml.scores")])
    for k in ("bos", "eos", "unknown", "padding"):
        v = scalar("tokenizer.ggml.%s_token_id" % k)
        if v is not None:
            w.add_uint32("tokenizer.ggml.%s_token_id" % k, int(v))
    v = scalar("tokenizer.ggml.add_bos_token")
    if v is not None:
        w.add_bool("tokenizer.ggml.add_bos_token", bool(v))
    v = add_space_prefix if add_space_prefix is not None else scalar("tokenizer.ggml.add_space_prefix")
    if v is not None:
        w.add_bool("tokenizer.ggml.add_space_prefix", bool(v))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def make_fixtures(models, tmpdir):
    import llama_cpp
    texts = read_corpus()
    jobs = []
    for spec in models:
        name, path = spec.split("=", 1)
        jobs.append((name, path, None))
        for vname, over in VARIANTS.get(name, []):
            vpath = os.path.join(tmpdir, "vocab-%s-%s.gguf" % (name, vname))
            write_vocab_only(path, vpath, **over)
            jobs.append(("%s-%s" % (name, vname), vpath, over))
    for name, path, over in jobs:
        m = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        entries = []
        for t in texts + (QWEN_EXTRA if name.startswith("qwen") else []):
            b = t.encode("utf-8")
            ids = m.tokenize(b, add_bos=False, special=False) if b else []
            ids_sp = m.tokenize(b, add_bos=False, special=True) if b else []
            entries.append({"text": t, "ids": ids, "ids_special": ids_sp})
        bad = [{"hex": b.hex(), "ids": m.tokenize(b, add_bos=False, special=False)} for b in BAD_UTF8]
        out = {
            "model": os.path.basename(path),
            "variant": over,
            "reference": "llama-cpp-python %s, Llama(vocab_only=True).tokenize(add_bos=False, special=False/True)"
                         % llama_cpp.__version__,
            "n_vocab": m.n_vocab(),
            "bos": m.token_bos(),
            "eos": m.token_eos(),
            "entries": entries,
            "bad_utf8": bad,
        }
        if name.startswith("qwen"):
            text, ids = qwen_chat(m, path)
            out["chat"] = {"user": QWEN_CHAT_USER, "text": text, "ids": ids}
        dst = os.path.join(ROOT, "tests", "fixtures", "tok_%s.json" % name)
        with open(dst, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        n_ids = sum(len(e["ids"]) + len(e["ids_special"]) for e in entries)
        print("%s: %d texts, %d reference ids" % (dst, len(entries), n_ids))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--items", default=os.path.join(ROOT, "..", "shared", "data", "amazon-beauty", "items.tsv"))
    c.add_argument("--titles", type=int, default=250)
    c.add_argument("--random", type=int, default=120)
    fx = sub.add_parser("fixtures")
    fx.add_argument("--model", action="append", required=True, help="NAME=PATH.gguf")
    fx.add_argument("--tmp", default="/tmp", help="where the derived vocab-only GGUF files are written")
    a = ap.parse_args()
    if a.cmd == "corpus":
        make_corpus(a.items, a.titles, a.random)
    else:
        make_fixtures(a.model, a.tmp)


if __name__ == "__main__":
    main()
