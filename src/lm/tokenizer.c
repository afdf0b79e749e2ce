/* src/lm/tokenizer.c — owns the GGUF tokenizers: vocabulary loading (tokenizer.ggml.*), special-token
 * partitioning, byte-level BPE with the pre-tokenizers llama.cpp names, SentencePiece-style score merges with
 * byte fallback, and detokenization. Behaviour follows llama.cpp's llama-vocab.cpp so that ids match it
 * exactly (see tests/test_lm_tokenizer.c and scripts/tokenizer_fixtures.py). */
#include "pulse/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "lm/tokenizer_internal.h"
#include "lm/unicode.h"

/* ------------------------------------------------------------------------------------------------------ */
/* string table + hash map (string -> id) and pair map ((id, id) -> rank, merged id)                       */

typedef struct {
    char *data;
    size_t used, cap;
    uint32_t *off, *len;
    int n, cap_n;
} strtab;

static int strtab_add(strtab *t, const char *s, size_t n) {
    if (t->n == t->cap_n) {
        int nc = t->cap_n ? t->cap_n * 2 : 1024;
        uint32_t *o = pulse_realloc(t->off, (size_t)nc * sizeof *o);
        if (!o) return -1;
        t->off = o;
        uint32_t *l = pulse_realloc(t->len, (size_t)nc * sizeof *l);
        if (!l) return -1;
        t->len = l;
        t->cap_n = nc;
    }
    if (t->used + n + 1 > t->cap) {
        size_t nc = t->cap ? t->cap : 65536;
        while (t->used + n + 1 > nc) nc *= 2;
        if (nc > UINT32_MAX) {
            pulse_set_error(PULSE_ERR_NOMEM, "tokenizer: vocabulary text exceeds 4 GiB");
            return -1;
        }
        char *d = pulse_realloc(t->data, nc);
        if (!d) return -1;
        t->data = d;
        t->cap = nc;
    }
    memcpy(t->data + t->used, s, n);
    t->data[t->used + n] = 0;
    t->off[t->n] = (uint32_t)t->used;
    t->len[t->n] = (uint32_t)n;
    t->used += n + 1;
    return t->n++;
}

static inline const char *strtab_str(const strtab *t, int i) {
    return t->data + t->off[i];
}

static inline uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)(uint8_t)s[i] << (8 * i);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 29;
    return h;
}

/* open addressing; one 64-bit entry per slot: low 32 bits id + 1 (0 = empty), high 32 bits a tag made of 24
 * hash bits and the key's length (capped at 255), so a probe touches one cache line and compares bytes only
 * when the tag matches */
typedef struct {
    uint64_t *slot;
    uint32_t mask;
    uint32_t count;
} strmap;

static inline uint32_t strmap_tag(uint64_t h, size_t n) {
    return ((uint32_t)(h >> 8) & 0xFFFFFF00u) | (uint32_t)(n < 255 ? n : 255);
}

static int strmap_init(strmap *m, size_t expected) {
    size_t cap = 1024;
    while (cap < expected * 2) cap *= 2;
    m->slot = pulse_calloc(cap, sizeof *m->slot);
    if (!m->slot) return -1;
    m->mask = (uint32_t)(cap - 1);
    m->count = 0;
    return 0;
}

static void strmap_free(strmap *m) {
    free(m->slot);
}

/* slot index of s, or of the empty slot where it would go */
static inline uint32_t strmap_probe(const strmap *m, const strtab *t, const char *s, size_t n, uint64_t h) {
    uint32_t i = (uint32_t)h & m->mask, tag = strmap_tag(h, n);
    for (;;) {
        uint64_t v = m->slot[i];
        if (!v) return i;
        if ((uint32_t)(v >> 32) == tag) {
            int id = (int)(uint32_t)v - 1;
            if (t->len[id] == n && memcmp(strtab_str(t, id), s, n) == 0) return i;
        }
        i = (i + 1) & m->mask;
    }
}

static inline int strmap_get(const strmap *m, const strtab *t, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    uint64_t v = m->slot[strmap_probe(m, t, s, n, h)];
    return v ? (int)(uint32_t)v - 1 : -1;
}

static int strmap_grow(strmap *m, const strtab *t) {
    strmap nm;
    if (strmap_init(&nm, (size_t)(m->mask + 1)) != 0) return -1;
    for (uint32_t i = 0; i <= m->mask; i++) {
        if (!m->slot[i]) continue;
        int id = (int)(uint32_t)m->slot[i] - 1;
        uint64_t h = hash_bytes(strtab_str(t, id), t->len[id]);
        uint32_t j = (uint32_t)h & nm.mask;
        while (nm.slot[j]) j = (j + 1) & nm.mask;
        nm.slot[j] = m->slot[i];
    }
    nm.count = m->count;
    strmap_free(m);
    *m = nm;
    return 0;
}

/* map s -> id; overwrite: an existing key takes the new id (llama.cpp's token_to_id: last one wins) */
static int strmap_put(strmap *m, const strtab *t, int id, int overwrite) {
    if ((m->count + 1) * 2 > m->mask + 1 && strmap_grow(m, t) != 0) return -1;
    const char *s = strtab_str(t, id);
    size_t n = t->len[id];
    uint64_t h = hash_bytes(s, n);
    uint32_t i = strmap_probe(m, t, s, n, h);
    uint64_t e = ((uint64_t)strmap_tag(h, n) << 32) | ((uint64_t)(uint32_t)id + 1);
    if (m->slot[i]) {
        if (overwrite) m->slot[i] = e;
        return 0;
    }
    m->slot[i] = e;
    m->count++;
    return 0;
}

typedef struct {
    uint64_t *key; /* (left << 32) | right; UINT64_MAX = empty */
    int32_t *rank, *merged;
    uint64_t mask;
} pairmap;

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

static int pairmap_init(pairmap *m, size_t expected) {
    size_t cap = 1024;
    while (cap < expected * 2) cap *= 2;
    m->key = pulse_malloc(cap * sizeof *m->key);
    m->rank = pulse_malloc(cap * sizeof *m->rank);
    m->merged = pulse_malloc(cap * sizeof *m->merged);
    if (!m->key || !m->rank || !m->merged) return -1;
    memset(m->key, 0xFF, cap * sizeof *m->key);
    m->mask = cap - 1;
    return 0;
}

static void pairmap_free(pairmap *m) {
    free(m->key);
    free(m->rank);
    free(m->merged);
}

/* first insertion of a key wins (llama.cpp's bpe_ranks.emplace) */
static void pairmap_put(pairmap *m, uint32_t l, uint32_t r, int rank, int merged) {
    uint64_t k = ((uint64_t)l << 32) | r;
    uint64_t i = mix64(k) & m->mask;
    while (m->key[i] != UINT64_MAX) {
        if (m->key[i] == k) return;
        i = (i + 1) & m->mask;
    }
    m->key[i] = k;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

static inline int pairmap_get(const pairmap *m, uint32_t l, uint32_t r, int *merged) {
    uint64_t k = ((uint64_t)l << 32) | r;
    uint64_t i = mix64(k) & m->mask;
    for (;;) {
        uint64_t v = m->key[i];
        if (v == k) {
            *merged = m->merged[i];
            return m->rank[i];
        }
        if (v == UINT64_MAX) return -1;
        i = (i + 1) & m->mask;
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* the tokenizer                                                                                            */

enum { PASS_GPT2, PASS_LLAMA3, PASS_QWEN2, PASS_GPT4O, PASS_DIGIT1, PASS_PUNCT, PASS_NUMS, PASS_DIGIT3 };
/* llama.cpp's token attributes (a bit set: text-based detection adds CONTROL to a token's own type) */
enum {
    A_UNKNOWN = 1 << 0,
    A_UNUSED = 1 << 1,
    A_NORMAL = 1 << 2,
    A_CONTROL = 1 << 3,
    A_USER_DEFINED = 1 << 4,
    A_BYTE = 1 << 5,
    A_LSTRIP = 1 << 7,
    A_RSTRIP = 1 << 8,
};
#define A_SPECIAL (A_CONTROL | A_USER_DEFINED | A_UNKNOWN)

typedef struct {
    int32_t child, sibling, tok; /* tok: special id ending here (first in partition order), -1 */
    uint8_t byte;
} trie_node;

struct pulse_tokenizer {
    pulse_vocab_kind kind;
    int n_vocab;
    strtab tab;     /* ids 0..n_vocab-1: the vocabulary; beyond: strings reachable by BPE merges only */
    strmap map;     /* every string of tab -> its id (vocabulary: last duplicate wins) */
    uint16_t *attr; /* A_* bits */
    float *score;
    uint8_t *eog;
    /* special / added tokens in llama.cpp's partition order (text length descending) */
    int *special;      /* ids in partition order */
    int *special_rank; /* id -> index in special (-1) */
    int n_special;
    trie_node *trie;
    int n_trie;
    /* BPE */
    pairmap merges;
    int byte_sym[256]; /* id in tab of the byte-level character of each byte */
    int passes[4], n_passes;
    int ignore_merges;
    char pre[64];
    /* SPM */
    int byte_tok[256]; /* <0xXX> token, or the 1-byte token, or -1 */
    int add_space_prefix;
    /* specials */
    int bos, eos, eot, eom, unk, pad, sep;
    int add_bos;
    char *chat_template;
};

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100.. in order */
static uint32_t byte_to_cp(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

static int cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int n = 0;
    for (int c = 0; c < 256; c++) {
        if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) continue;
        if ((uint32_t)(256 + n) == cp) return c;
        n++;
    }
    return -1;
}

void pulse_tokenizer_free(pulse_tokenizer *t) {
    if (!t) return;
    free(t->tab.data);
    free(t->tab.off);
    free(t->tab.len);
    strmap_free(&t->map);
    free(t->attr);
    free(t->score);
    free(t->eog);
    free(t->special);
    free(t->special_rank);
    free(t->trie);
    pairmap_free(&t->merges);
    free(t->chat_template);
    free(t);
}

static int str_is(pulse_gguf_str s, const char *c) {
    return pulse_gguf_str_eq(s, c);
}

/* an id key; out-of-range values keep the default (llama.cpp warns "bad special token" and does the same) */
static int get_id_key(const pulse_gguf *g, const char *key, int n_vocab, int *dst) {
    if (pulse_gguf_find_key(g, key) < 0) return 0;
    int64_t v;
    pulse_status st = pulse_gguf_get_i64(g, key, &v);
    if (st != PULSE_OK) return -1;
    if (v >= 0 && v < n_vocab) *dst = (int)v;
    return 0;
}

static int set_pre(pulse_tokenizer *t, const char *pre) {
    static const char *gpt2[] = {"gpt-2",      "phi-2",      "jina-es",     "jina-de",      "gigachat",
                                 "jina-v1-en", "jina-v2-es", "jina-v2-de",  "jina-v2-code", "roberta-bpe",
                                 "a.x-4.0",    "mellum",     "modern-bert", "mpt",          "olmo"};
    static const char *smollm[] = {"smollm",    "starcoder", "refact",    "command-r",
                                   "codeshell", "exaone",    "minerva-7b"};
    static const char *llama3[] = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                   "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
    static const char *qwen2[] = {"qwen2", "deepseek-r1-qwen", "megrez"};
    static const char *gpt4o[] = {"gpt-4o", "llama4"};
    snprintf(t->pre, sizeof t->pre, "%s", pre);
    for (size_t i = 0; i < sizeof gpt2 / sizeof *gpt2; i++)
        if (!strcmp(pre, gpt2[i])) {
            t->passes[0] = PASS_GPT2;
            t->n_passes = 1;
            return 0;
        }
    for (size_t i = 0; i < sizeof smollm / sizeof *smollm; i++)
        if (!strcmp(pre, smollm[i])) {
            t->passes[0] = PASS_DIGIT1;
            t->passes[1] = PASS_GPT2;
            t->n_passes = 2;
            return 0;
        }
    for (size_t i = 0; i < sizeof llama3 / sizeof *llama3; i++)
        if (!strcmp(pre, llama3[i])) {
            t->passes[0] = PASS_LLAMA3;
            t->n_passes = 1;
            t->ignore_merges = 1;
            t->add_bos = 1; /* llama.cpp's default for these; tokenizer.ggml.add_bos_token overrides */
            return 0;
        }
    for (size_t i = 0; i < sizeof qwen2 / sizeof *qwen2; i++)
        if (!strcmp(pre, qwen2[i])) {
            t->passes[0] = PASS_QWEN2;
            t->n_passes = 1;
            return 0;
        }
    for (size_t i = 0; i < sizeof gpt4o / sizeof *gpt4o; i++)
        if (!strcmp(pre, gpt4o[i])) {
            t->passes[0] = PASS_GPT4O;
            t->n_passes = 1;
            return 0;
        }
    if (!strcmp(pre, "default")) {
        t->passes[0] = PASS_PUNCT;
        t->passes[1] = PASS_GPT2;
        t->passes[2] = PASS_NUMS;
        t->passes[3] = PASS_DIGIT3;
        t->n_passes = 4;
        return 0;
    }
    return -1;
}

static int find_text(const pulse_tokenizer *t, const char *s) {
    int id = strmap_get(&t->map, &t->tab, s, strlen(s));
    return id < t->n_vocab ? id : -1;
}

/* llama.cpp's text-based detection of EOT/EOM/FIM/EOG tokens (llama_vocab::impl::load): the tokens found get
 * CONTROL added to their attributes; the lists follow llama.cpp as of the reference used for the fixtures. */
static int find_first(const pulse_tokenizer *t, const char *const *texts, size_t n) {
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        int id = find_text(t, texts[i]);
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

static void detect_specials(pulse_tokenizer *t) {
#define N_OF(a) (sizeof(a) / sizeof *(a))
    static const char *eot_texts[] = {"<|eot_id|>",    "<|im_end|>",        "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<|end_of_text|>",   "<EOT>",   "_<EOT>",
                                      "[EOT]",         "<end_of_utterance>"};
    static const char *eom_texts[] = {"<|eom_id|>"};
    static const char *fim_pre[] = {"<|fim_prefix|>", "<fim-prefix>",    "<fim_prefix>",
                                    "<PRE>",          "<|code_prefix|>", "<|prefix|>"};
    static const char *fim_suf[] = {"<|fim_suffix|>", "<fim-suffix>",    "<fim_suffix>",
                                    "<SUF>",          "<|code_suffix|>", "<|suffix|>"};
    static const char *fim_mid[] = {"<|fim_middle|>", "<fim-middle>",    "<fim_middle>",
                                    "<MID>",          "<|code_middle|>", "<|middle|>"};
    static const char *fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
    static const char *fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
    static const char *fim_sep[] = {"<|file_sep|>"};
    static const char *eog_texts[] = {"<|eot_id|>",
                                      "<|im_end|>",
                                      "<|end|>",
                                      "<|return|>",
                                      "<|call|>",
                                      "<|flush|>",
                                      "<|calls|>",
                                      "<end_of_turn>",
                                      "<|endoftext|>",
                                      "</s>",
                                      "<|eom_id|>",
                                      "<EOT>",
                                      "_<EOT>",
                                      "[EOT]",
                                      "[EOS]",
                                      "<|end_of_text|>",
                                      "<end_of_utterance>",
                                      "<eos>",
                                      "<turn|>",
                                      "<|tool_response>"};
    static const char *gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    int id;
    if (t->eot < 0 && (id = find_first(t, eot_texts, N_OF(eot_texts))) >= 0) {
        t->eot = id;
        t->attr[id] |= A_CONTROL;
    }
    if (t->eom < 0 && (id = find_first(t, eom_texts, N_OF(eom_texts))) >= 0) {
        t->eom = id;
        t->attr[id] |= A_CONTROL;
    }
    const char *const *fims[] = {fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep};
    const size_t nfims[] = {N_OF(fim_pre), N_OF(fim_suf), N_OF(fim_mid),
                            N_OF(fim_pad), N_OF(fim_rep), N_OF(fim_sep)};
    for (int k = 0; k < 6; k++)
        if ((id = find_first(t, fims[k], nfims[k])) >= 0) {
            t->attr[id] |= A_CONTROL;
            if (k >= 3) t->eog[id] = 1; /* FIM pad / repo / sep end generation */
        }
    /* control tokens named "unused" are unused */
    for (int i = 0; i < t->n_vocab; i++)
        if ((t->attr[i] & A_CONTROL) && memmem(strtab_str(&t->tab, i), t->tab.len[i], "unused", 6))
            t->attr[i] |= A_UNUSED;
    for (size_t i = 0; i < N_OF(eog_texts); i++)
        if ((id = find_text(t, eog_texts[i])) >= 0) {
            t->eog[id] = 1;
            t->attr[id] |= A_CONTROL;
        }
    for (size_t i = 0; i < N_OF(gpt_oss); i++)
        if ((id = find_text(t, gpt_oss[i])) >= 0) t->attr[id] = A_USER_DEFINED;
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
    /* o200k_harmony / solar-open: "<|end|>" is no end of generation when "<|return|>"+"<|call|>" (or
     * "<|calls|>"+"<|flush|>") are; gemma4 / paddleocr: "</s>" is none when "<|tool_response>" is one */
    int end = find_text(t, "<|end|>"), ret = find_text(t, "<|return|>"), call = find_text(t, "<|call|>"),
        calls = find_text(t, "<|calls|>"), flush = find_text(t, "<|flush|>");
    int has_call = (call >= 0 && t->eog[call]) || (calls >= 0 && t->eog[calls]);
    if (end >= 0 && t->eog[end] && has_call && ((ret >= 0 && t->eog[ret]) || (flush >= 0 && t->eog[flush]))) {
        t->eog[end] = 0;
        t->attr[end] = A_USER_DEFINED;
    }
    int tr = find_text(t, "<|tool_response>"), es = find_text(t, "</s>");
    if (tr >= 0 && t->eog[tr] && es >= 0 && t->eog[es]) {
        t->eog[es] = 0;
        t->attr[es] = A_NORMAL;
    }
#undef N_OF
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const pulse_tokenizer *t = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (t->tab.len[x] != t->tab.len[y]) return t->tab.len[x] > t->tab.len[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static pulse_status build_specials(pulse_tokenizer *t) {
    int n = 0;
    for (int i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & A_SPECIAL) n++;
    t->special = pulse_malloc((size_t)(n ? n : 1) * sizeof *t->special);
    if (!t->special) return PULSE_ERR_NOMEM;
    n = 0;
    size_t total = 1;
    for (int i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & A_SPECIAL) {
            t->special[n++] = i;
            total += t->tab.len[i];
        }
    t->n_special = n;
    qsort_r(t->special, (size_t)n, sizeof *t->special, cmp_special, t);
    t->special_rank = pulse_malloc((size_t)t->n_vocab * sizeof *t->special_rank);
    if (!t->special_rank) return PULSE_ERR_NOMEM;
    for (int i = 0; i < t->n_vocab; i++) t->special_rank[i] = -1;
    for (int k = 0; k < n; k++) t->special_rank[t->special[k]] = k;
    /* trie over the special texts; a node keeps the first id in partition order */
    t->trie = pulse_malloc(total * sizeof *t->trie);
    if (!t->trie) return PULSE_ERR_NOMEM;
    t->trie[0] = (trie_node){-1, -1, -1, 0};
    t->n_trie = 1;
    for (int k = 0; k < n; k++) {
        int id = t->special[k];
        const uint8_t *s = (const uint8_t *)strtab_str(&t->tab, id);
        int node = 0;
        for (uint32_t j = 0; j < t->tab.len[id]; j++) {
            int c = t->trie[node].child;
            while (c >= 0 && t->trie[c].byte != s[j]) c = t->trie[c].sibling;
            if (c < 0) {
                c = t->n_trie++;
                t->trie[c] = (trie_node){-1, t->trie[node].child, -1, s[j]};
                t->trie[node].child = c;
            }
            node = c;
        }
        if (t->trie[node].tok < 0) t->trie[node].tok = id;
    }
    return PULSE_OK;
}

pulse_status pulse_tokenizer_from_gguf(const pulse_gguf *g, pulse_tokenizer **out) {
    *out = NULL;
    pulse_gguf_str model;
    if (pulse_gguf_get_str(g, "tokenizer.ggml.model", &model) != PULSE_OK)
        return pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: expected string key tokenizer.ggml.model");
    pulse_vocab_kind kind;
    if (str_is(model, "gpt2"))
        kind = PULSE_VOCAB_BPE;
    else if (str_is(model, "llama"))
        kind = PULSE_VOCAB_SPM;
    else
        return pulse_set_error(
            PULSE_ERR_UNSUPPORTED,
            "tokenizer: tokenizer.ggml.model '%.*s' is not supported (expected gpt2 or llama)",
            (int)(model.len > 64 ? 64 : model.len), model.ptr);
    pulse_gguf_type et;
    uint64_t n_tok;
    if (pulse_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n_tok) != PULSE_OK ||
        et != PULSE_GGUF_STRING)
        return pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: expected string array tokenizer.ggml.tokens");
    if (n_tok == 0 || n_tok > (1u << 24))
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "tokenizer: tokenizer.ggml.tokens has %llu entries (expected 1..%u)",
                               (unsigned long long)n_tok, 1u << 24);
    pulse_tokenizer *t = pulse_calloc(1, sizeof *t);
    if (!t) return PULSE_ERR_NOMEM;
    pulse_status st = PULSE_ERR_NOMEM;
    t->kind = kind;
    t->n_vocab = (int)n_tok;
    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = t->sep = -1;
    uint64_t n_merges = 0;
    if (kind == PULSE_VOCAB_BPE) {
        if (pulse_gguf_get_arr_info(g, "tokenizer.ggml.merges", &et, &n_merges) != PULSE_OK ||
            et != PULSE_GGUF_STRING) {
            st = pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: expected string array tokenizer.ggml.merges");
            goto fail;
        }
        if (n_merges > (1u << 24)) {
            st = pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: %llu merges (expected at most %u)",
                                 (unsigned long long)n_merges, 1u << 24);
            goto fail;
        }
    }
    t->attr = pulse_malloc((size_t)n_tok * sizeof *t->attr);
    t->score = pulse_calloc((size_t)n_tok, sizeof *t->score);
    t->eog = pulse_calloc((size_t)n_tok, 1);
    if (!t->attr || !t->score || !t->eog) goto fail;
    if (strmap_init(&t->map, (size_t)n_tok + 3 * (size_t)n_merges + 256) != 0) goto fail;
    if (pairmap_init(&t->merges, (size_t)n_merges + 1) != 0) goto fail;
    for (uint64_t i = 0; i < n_tok; i++) {
        pulse_gguf_str s;
        if ((st = pulse_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s)) != PULSE_OK) goto fail;
        int id;
        if (s.len == 0) {
            char buf[32];
            int l = snprintf(buf, sizeof buf, "[EMPTY_%llu]", (unsigned long long)i);
            id = strtab_add(&t->tab, buf, (size_t)l);
        } else {
            if (s.len > (1u << 20)) {
                st = pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: token %llu is %llu bytes long",
                                     (unsigned long long)i, (unsigned long long)s.len);
                goto fail;
            }
            id = strtab_add(&t->tab, s.ptr, (size_t)s.len);
        }
        if (id < 0 || strmap_put(&t->map, &t->tab, id, 1) != 0) {
            st = PULSE_ERR_NOMEM;
            goto fail;
        }
    }
    /* token types and scores */
    for (uint64_t i = 0; i < n_tok; i++) t->attr[i] = A_NORMAL;
    if (pulse_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        uint64_t cnt;
        if (pulse_gguf_get_arr_info(g, "tokenizer.ggml.token_type", &et, &cnt) != PULSE_OK || cnt != n_tok) {
            st = pulse_set_error(PULSE_ERR_FORMAT,
                                 "tokenizer: tokenizer.ggml.token_type: expected %llu entries",
                                 (unsigned long long)n_tok);
            goto fail;
        }
        int32_t *tt = pulse_malloc((size_t)n_tok * sizeof *tt);
        if (!tt) goto fail;
        st = pulse_gguf_get_arr_i32(g, "tokenizer.ggml.token_type", tt, n_tok);
        for (uint64_t i = 0; st == PULSE_OK && i < n_tok; i++)
            t->attr[i] = tt[i] == PULSE_TOKEN_UNKNOWN        ? A_UNKNOWN
                         : tt[i] == PULSE_TOKEN_UNUSED       ? A_UNUSED
                         : tt[i] == PULSE_TOKEN_NORMAL       ? A_NORMAL
                         : tt[i] == PULSE_TOKEN_CONTROL      ? A_CONTROL
                         : tt[i] == PULSE_TOKEN_USER_DEFINED ? A_USER_DEFINED
                         : tt[i] == PULSE_TOKEN_BYTE         ? A_BYTE
                                                             : 0;
        free(tt);
        if (st != PULSE_OK) goto fail;
    }
    if (pulse_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        uint64_t cnt;
        if (pulse_gguf_get_arr_info(g, "tokenizer.ggml.scores", &et, &cnt) != PULSE_OK || cnt != n_tok) {
            st = pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores: expected %llu entries",
                                 (unsigned long long)n_tok);
            goto fail;
        }
        if ((st = pulse_gguf_get_arr_f32(g, "tokenizer.ggml.scores", t->score, n_tok)) != PULSE_OK) goto fail;
    }
    /* special ids: llama.cpp's defaults, then the metadata */
    if (kind == PULSE_VOCAB_SPM) {
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = 1;
        t->add_space_prefix = 1;
    } else {
        t->bos = t->eos = 11;
    }
    if (get_id_key(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos) ||
        get_id_key(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos) ||
        get_id_key(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot) ||
        get_id_key(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom) ||
        get_id_key(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk) ||
        get_id_key(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad) ||
        get_id_key(g, "tokenizer.ggml.seperator_token_id", t->n_vocab, &t->sep)) {
        st = pulse_wrap_error(PULSE_ERR_FORMAT, "tokenizer: special token id");
        goto fail;
    }
    int *ids[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &t->pad, &t->sep};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        if (*ids[i] >= t->n_vocab) *ids[i] = -1;
    int flag;
    if (pulse_gguf_find_key(g, "tokenizer.ggml.add_bos_token") >= 0 &&
        pulse_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag) == PULSE_OK)
        t->add_bos = flag;
    if (pulse_gguf_find_key(g, "tokenizer.ggml.add_space_prefix") >= 0 &&
        pulse_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &flag) == PULSE_OK)
        t->add_space_prefix = flag;
    pulse_gguf_str s;
    if (pulse_gguf_find_key(g, "tokenizer.chat_template") >= 0 &&
        pulse_gguf_get_str(g, "tokenizer.chat_template", &s) == PULSE_OK) {
        t->chat_template = pulse_malloc((size_t)s.len + 1);
        if (!t->chat_template) goto fail;
        memcpy(t->chat_template, s.ptr, (size_t)s.len);
        t->chat_template[s.len] = 0;
    }
    detect_specials(t);
    /* phi-3: special tokens strip the whitespace to their right (llama.cpp sets this by model name) */
    if (pulse_gguf_find_key(g, "general.name") >= 0 &&
        pulse_gguf_get_str(g, "general.name", &s) == PULSE_OK) {
        char name[256];
        size_t l = s.len < sizeof name - 1 ? (size_t)s.len : sizeof name - 1;
        for (size_t i = 0; i < l; i++)
            name[i] = (char)((s.ptr[i] >= 'A' && s.ptr[i] <= 'Z') ? s.ptr[i] + 32 : s.ptr[i]);
        name[l] = 0;
        if (strstr(name, "phi-3") || strstr(name, "phi3")) {
            for (int i = 0; i < t->n_vocab; i++)
                if (t->attr[i] & A_SPECIAL) t->attr[i] |= A_RSTRIP;
            int id = find_text(t, "</s>");
            if (id >= 0) t->attr[id] |= A_RSTRIP;
            const char *no[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int k = 0; k < 3; k++)
                if ((id = find_text(t, no[k])) >= 0) t->attr[id] &= (uint16_t)~A_RSTRIP;
        }
    }
    if ((st = build_specials(t)) != PULSE_OK) goto fail;

    if (kind == PULSE_VOCAB_BPE) {
        char pre[64] = "default";
        if (pulse_gguf_find_key(g, "tokenizer.ggml.pre") >= 0 &&
            pulse_gguf_get_str(g, "tokenizer.ggml.pre", &s) == PULSE_OK) {
            size_t l = s.len < sizeof pre - 1 ? (size_t)s.len : sizeof pre - 1;
            memcpy(pre, s.ptr, l);
            pre[l] = 0;
        }
        if (set_pre(t, pre) != 0) {
            st =
                pulse_set_error(PULSE_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer '%s' is not supported", pre);
            goto fail;
        }
        if (pulse_gguf_find_key(g, "tokenizer.ggml.add_bos_token") >= 0 &&
            pulse_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag) == PULSE_OK)
            t->add_bos = flag; /* the metadata wins over the pre-tokenizer's default */
        /* the 256 byte-level characters */
        for (int b = 0; b < 256; b++) {
            char u[4];
            int l = pulse_utf8_encode(byte_to_cp(b), u);
            int id = strmap_get(&t->map, &t->tab, u, (size_t)l);
            if (id < 0) {
                id = strtab_add(&t->tab, u, (size_t)l);
                if (id < 0 || strmap_put(&t->map, &t->tab, id, 0) != 0) goto fail;
            }
            t->byte_sym[b] = id;
        }
        /* merges "A B" (split at the first space after position 0) -> (id A, id B) -> rank, id of AB */
        char *buf = NULL;
        size_t bufcap = 0;
        for (uint64_t i = 0; i < n_merges; i++) {
            if ((st = pulse_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s)) != PULSE_OK) {
                free(buf);
                goto fail;
            }
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', (size_t)s.len - 1) : NULL;
            size_t la = sp ? (size_t)(sp - s.ptr) : 0, lb = sp ? (size_t)s.len - la - 1 : 0;
            if (la + lb + 1 > bufcap) {
                bufcap = (la + lb + 1) * 2;
                char *nb = pulse_realloc(buf, bufcap);
                if (!nb) {
                    free(buf);
                    goto fail;
                }
                buf = nb;
            }
            const char *pa = sp ? s.ptr : "", *pb = sp ? sp + 1 : "";
            int ida = strmap_get(&t->map, &t->tab, pa, la);
            if (ida < 0 &&
                ((ida = strtab_add(&t->tab, pa, la)) < 0 || strmap_put(&t->map, &t->tab, ida, 0))) {
                free(buf);
                goto fail;
            }
            int idb = strmap_get(&t->map, &t->tab, pb, lb);
            if (idb < 0 &&
                ((idb = strtab_add(&t->tab, pb, lb)) < 0 || strmap_put(&t->map, &t->tab, idb, 0))) {
                free(buf);
                goto fail;
            }
            memcpy(buf, pa, la);
            memcpy(buf + la, pb, lb);
            int idm = strmap_get(&t->map, &t->tab, buf, la + lb);
            if (idm < 0 &&
                ((idm = strtab_add(&t->tab, buf, la + lb)) < 0 || strmap_put(&t->map, &t->tab, idm, 0))) {
                free(buf);
                goto fail;
            }
            pairmap_put(&t->merges, (uint32_t)ida, (uint32_t)idb, (int)i, idm);
        }
        free(buf);
    } else {
        snprintf(t->pre, sizeof t->pre, "default");
        for (int b = 0; b < 256; b++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            int id = find_text(t, hex);
            if (id < 0) {
                char c = (char)b;
                id = strmap_get(&t->map, &t->tab, &c, 1);
            }
            t->byte_tok[b] = id;
        }
    }
    *out = t;
    return PULSE_OK;
fail:
    pulse_tokenizer_free(t);
    if (st == PULSE_OK) st = PULSE_ERR_NOMEM;
    return st;
}

pulse_status pulse_tokenizer_load(const char *path, pulse_tokenizer **out) {
    pulse_gguf *g;
    pulse_status st = pulse_gguf_open(path, &g);
    if (st != PULSE_OK) return st;
    st = pulse_tokenizer_from_gguf(g, out);
    pulse_gguf_close(g);
    if (st != PULSE_OK) pulse_wrap_error(st, "%s", path);
    return st;
}

pulse_vocab_kind pulse_tokenizer_kind(const pulse_tokenizer *t) {
    return t->kind;
}
int pulse_tokenizer_n_vocab(const pulse_tokenizer *t) {
    return t->n_vocab;
}
const char *pulse_tokenizer_pre(const pulse_tokenizer *t) {
    return t->pre;
}
int pulse_tokenizer_add_bos(const pulse_tokenizer *t) {
    return t->add_bos;
}
const char *pulse_tokenizer_chat_template(const pulse_tokenizer *t) {
    return t->chat_template;
}
int pulse_token_bos(const pulse_tokenizer *t) {
    return t->bos;
}
int pulse_token_eos(const pulse_tokenizer *t) {
    return t->eos;
}
int pulse_token_eot(const pulse_tokenizer *t) {
    return t->eot;
}
int pulse_token_unk(const pulse_tokenizer *t) {
    return t->unk;
}
int pulse_token_pad(const pulse_tokenizer *t) {
    return t->pad;
}
int pulse_token_is_eog(const pulse_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

pulse_token_type pulse_token_get_type(const pulse_tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) return PULSE_TOKEN_UNDEFINED;
    uint16_t a = t->attr[id];
    return (a & A_CONTROL)        ? PULSE_TOKEN_CONTROL
           : (a & A_USER_DEFINED) ? PULSE_TOKEN_USER_DEFINED
           : (a & A_UNKNOWN)      ? PULSE_TOKEN_UNKNOWN
           : (a & A_BYTE)         ? PULSE_TOKEN_BYTE
           : (a & A_UNUSED)       ? PULSE_TOKEN_UNUSED
           : (a & A_NORMAL)       ? PULSE_TOKEN_NORMAL
                                  : PULSE_TOKEN_UNDEFINED;
}

const char *pulse_token_text(const pulse_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tab.len[id];
    return strtab_str(&t->tab, id);
}

int pulse_token_lookup(const pulse_tokenizer *t, const char *text, size_t len) {
    int id = strmap_get(&t->map, &t->tab, text, len);
    return id < t->n_vocab ? id : -1;
}

/* ------------------------------------------------------------------------------------------------------ */
/* per-call working memory                                                                                  */

typedef struct {
    int *ids;
    int max, n; /* written up to max; n counts all */
} emitter;

static inline void emit(emitter *e, int id) {
    if (e->n < e->max) e->ids[e->n] = id;
    e->n++;
}

typedef struct {
    int tok; /* >= 0: a special token; -1: raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct {
    int left, right, size;
    int merged; /* BPE: id of the merged string; SPM: token id */
    float key;  /* BPE: rank (as float-free int below); SPM: score */
    int rank;
} bigram;

typedef struct {
    int prev, next;
    int id;       /* BPE: string id in tab */
    size_t start; /* byte offset in the word/text */
    int n;        /* bytes; 0 once merged away */
} symbol;

typedef struct {
    frag *frags, *frags2;
    size_t cap_frags, cap_frags2;
    int *found;
    size_t cap_found;
    uint32_t *cpts;
    uint8_t *flags;
    size_t *segs, *segs2;
    size_t cap_cpts, cap_flags, cap_segs, cap_segs2;
    char *word, *bl;
    size_t cap_word, cap_bl;
    symbol *syms;
    size_t cap_syms;
    bigram *heap;
    size_t cap_heap, n_heap;
} work;

static void work_free(work *w) {
    free(w->frags);
    free(w->frags2);
    free(w->cpts);
    free(w->flags);
    free(w->segs);
    free(w->segs2);
    free(w->word);
    free(w->bl);
    free(w->found);
    free(w->syms);
    free(w->heap);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = pulse_realloc(*p, nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* heaps: BPE pops the lowest (rank, left); SPM the highest score, then the lowest left */
static inline int bigram_before(const bigram *a, const bigram *b, int spm) {
    if (spm) {
        if (a->key != b->key) return a->key > b->key;
        return a->left < b->left;
    }
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->left < b->left;
}

static int heap_push(work *w, const bigram *b, int spm) {
    if (w->n_heap + 1 > w->cap_heap && grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap))
        return -1;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(b, &w->heap[p], spm)) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = *b;
    return 0;
}

static bigram heap_pop(work *w, int spm) {
    bigram top = w->heap[0];
    bigram last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&w->heap[c + 1], &w->heap[c], spm)) c++;
        if (!bigram_before(&w->heap[c], &last, spm)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* ------------------------------------------------------------------------------------------------------ */
/* special-token partition (llama.cpp's tokenizer_st_partition)                                            */

static inline int is_space_c(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* llama.cpp: without parse_special, CONTROL and UNKNOWN tokens are left in the text */
static int special_eligible(const pulse_tokenizer *t, int id, int parse_special) {
    return parse_special || !(t->attr[id] & (A_CONTROL | A_UNKNOWN));
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* 1 when [at, at + n) overlaps one of the plain spans (pairs [start, end) of text offsets, ascending) */
static int in_plain(const size_t *plain, int n_plain, size_t at, size_t n) {
    for (int k = 0; k < n_plain; k++)
        if (at < plain[2 * k + 1] && plain[2 * k] < at + n) return 1;
    return 0;
}

/* plain (n_plain pairs, may be NULL): spans of text in which CONTROL and UNKNOWN tokens are not matched even
 * with parse_special (message contents of a chat prompt: pulse_chat_tokenize) */
static pulse_status partition(const pulse_tokenizer *t, work *w, const char *text, size_t len,
                              int parse_special, const size_t *plain, int n_plain, size_t *n_frags) {
    /* every occurrence adds at most two fragments: 2 * len + 1 bounds the list */
    if (grow((void **)&w->frags, &w->cap_frags, 2 * len + 2, sizeof *w->frags) ||
        grow((void **)&w->frags2, &w->cap_frags2, 2 * len + 2, sizeof *w->frags2))
        return PULSE_ERR_NOMEM;
    w->frags[0] = (frag){-1, 0, len};
    size_t nf = 1;
    *n_frags = nf;
    if (!t->n_special) return PULSE_OK;
    /* which special texts occur at all (trie scan); the llama.cpp pass below runs only for those, in the
     * vocabulary's partition order (longest text first) */
    size_t n_found = 0;
    for (size_t i = 0; i < len; i++) {
        int node = 0;
        for (size_t j = i; j < len; j++) {
            int c = t->trie[node].child;
            while (c >= 0 && t->trie[c].byte != (uint8_t)text[j]) c = t->trie[c].sibling;
            if (c < 0) break;
            node = c;
            int id = t->trie[node].tok;
            if (id >= 0 && special_eligible(t, id, parse_special)) {
                if (grow((void **)&w->found, &w->cap_found, n_found + 1, sizeof *w->found))
                    return PULSE_ERR_NOMEM;
                w->found[n_found++] = t->special_rank[id];
            }
        }
    }
    if (!n_found) return PULSE_OK;
    qsort(w->found, n_found, sizeof *w->found, cmp_int);
    for (size_t s = 0; s < n_found; s++) {
        if (s > 0 && w->found[s] == w->found[s - 1]) continue;
        int id = t->special[w->found[s]];
        const char *st = strtab_str(&t->tab, id);
        size_t sl = t->tab.len[id];
        size_t n2 = 0;
        for (size_t f = 0; f < nf; f++) {
            frag fr = w->frags[f];
            if (fr.tok >= 0) {
                w->frags2[n2++] = fr;
                continue;
            }
            const int guarded = n_plain > 0 && !special_eligible(t, id, 0);
            size_t pos = fr.off, end = fr.off + fr.len, from = pos;
            for (;;) {
                const char *m = end - from >= sl ? memmem(text + from, end - from, st, sl) : NULL;
                if (!m) {
                    if (end > pos) w->frags2[n2++] = (frag){-1, pos, end - pos};
                    break;
                }
                size_t mo = (size_t)(m - text);
                if (guarded && in_plain(plain, n_plain, mo, sl)) {
                    from = mo + 1; /* text that looks like a control token inside a content: stays text */
                    continue;
                }
                size_t ll = mo - pos;
                if (t->attr[id] & A_LSTRIP)
                    while (ll > 0 && is_space_c(text[pos + ll - 1])) ll--;
                if (ll > 0) w->frags2[n2++] = (frag){-1, pos, ll};
                w->frags2[n2++] = (frag){id, 0, 0};
                pos = mo + sl;
                if (t->attr[id] & A_RSTRIP)
                    while (pos < end && is_space_c(text[pos])) pos++;
                from = pos;
                if (pos >= end) break;
            }
        }
        frag *tmp = w->frags;
        size_t tc = w->cap_frags;
        w->frags = w->frags2;
        w->frags2 = tmp;
        w->cap_frags = w->cap_frags2;
        w->cap_frags2 = tc;
        nf = n2;
    }
    *n_frags = nf;
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* pre-tokenizer: llama.cpp's unicode_regex_split with its custom gpt2 / llama3 splitters                  */

#define F_VALID 0x10
#define IS_L(f) (((f)&7) == PULSE_UCAT_L)
#define IS_N(f) (((f)&7) == PULSE_UCAT_N)
#define IS_P(f) (((f)&7) == PULSE_UCAT_P)
#define IS_WS(f) ((f)&PULSE_UCAT_WS)

typedef struct {
    const uint32_t *cpts;
    const uint8_t *flags;
    size_t ini, end, prev_end;
    size_t *out;
    size_t n_out;
} split_ctx;

static inline uint32_t sc_cpt(const split_ctx *c, size_t pos) {
    return (pos >= c->ini && pos < c->end) ? c->cpts[pos] : 0xFFFFFFFFu;
}
static inline uint8_t sc_flags(const split_ctx *c, size_t pos) {
    return (pos >= c->ini && pos < c->end) ? c->flags[pos] : 0;
}
static inline size_t sc_add(split_ctx *c, size_t end) {
    size_t len = end - c->prev_end;
    if (len > 0) c->out[c->n_out++] = len;
    c->prev_end = end;
    return len;
}

static inline uint32_t ascii_lower(uint32_t c) {
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static void split_gpt2(split_ctx *c) {
    for (size_t pos = c->ini; pos < c->end;) {
        uint32_t cpt = sc_cpt(c, pos);
        uint8_t flags = sc_flags(c, pos);
        if (cpt == '\'' && pos + 1 < c->end) {
            uint32_t nx = sc_cpt(c, pos + 1);
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') {
                pos += sc_add(c, pos + 2);
                continue;
            }
            if (pos + 2 < c->end) {
                uint32_t nn = sc_cpt(c, pos + 2);
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) {
                    pos += sc_add(c, pos + 3);
                    continue;
                }
            }
        }
        uint8_t f2 = cpt == ' ' ? sc_flags(c, pos + 1) : flags;
        if (IS_L(f2) && f2) {
            pos += (cpt == ' ');
            while (IS_L(f2) && f2) f2 = sc_flags(c, ++pos);
            sc_add(c, pos);
            continue;
        }
        if (IS_N(f2) && f2) {
            pos += (cpt == ' ');
            while (IS_N(f2) && f2) f2 = sc_flags(c, ++pos);
            sc_add(c, pos);
            continue;
        }
        if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) {
            pos += (cpt == ' ');
            while (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) f2 = sc_flags(c, ++pos);
            sc_add(c, pos);
            continue;
        }
        size_t nws = 0;
        while (IS_WS(sc_flags(c, pos + nws))) nws++;
        if (nws > 1 && sc_cpt(c, pos + nws) != 0xFFFFFFFFu) {
            pos += nws - 1;
            sc_add(c, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            sc_add(c, pos);
            continue;
        }
        sc_add(c, ++pos);
    }
}

/* llama3 (max_digits 3) and qwen2 (max_digits 1) */
static void split_llama3(split_ctx *c, size_t max_digits) {
    for (size_t pos = c->ini; pos < c->end;) {
        uint32_t cpt = sc_cpt(c, pos);
        uint8_t flags = sc_flags(c, pos);
        if (cpt == '\'' && pos + 1 < c->end) {
            uint32_t nx = ascii_lower(sc_cpt(c, pos + 1));
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') {
                pos += sc_add(c, pos + 2);
                continue;
            }
            if (pos + 2 < c->end) {
                uint32_t nn = ascii_lower(sc_cpt(c, pos + 2));
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) {
                    pos += sc_add(c, pos + 3);
                    continue;
                }
            }
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(cpt == '\r' || cpt == '\n' || IS_N(flags))) {
            if ((IS_L(flags) && flags) || IS_L(sc_flags(c, pos + 1))) {
                uint8_t f1 = sc_flags(c, pos + 1);
                if ((IS_L(flags) && flags) || (IS_L(f1) && f1)) {
                    pos++;
                    for (;;) {
                        uint8_t f = sc_flags(c, pos);
                        if (!(IS_L(f) && f)) break;
                        pos++;
                    }
                    sc_add(c, pos);
                    continue;
                }
            }
        }
        /* \p{N}{1,max} */
        if (IS_N(flags) && flags) {
            size_t ini = pos;
            for (;;) {
                uint8_t f = sc_flags(c, pos);
                if (!(IS_N(f) && f)) break;
                if (++pos - ini >= max_digits) {
                    sc_add(c, pos);
                    ini = pos;
                }
            }
            sc_add(c, pos);
            continue;
        }
        /* <space>?[^\s\p{L}\p{N}]+[\r\n]* */
        uint8_t f2 = cpt == ' ' ? sc_flags(c, pos + 1) : flags;
        if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && flags) {
            pos += (cpt == ' ');
            while (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) f2 = sc_flags(c, ++pos);
            uint32_t c2 = sc_cpt(c, pos);
            while (c2 == '\r' || c2 == '\n') c2 = sc_cpt(c, ++pos);
            sc_add(c, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (IS_WS(sc_flags(c, pos + nws))) {
            uint32_t c2 = sc_cpt(c, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            sc_add(c, pos);
            continue;
        }
        if (nws > 1 && sc_cpt(c, pos + nws) != 0xFFFFFFFFu) {
            pos += nws - 1;
            sc_add(c, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            sc_add(c, pos);
            continue;
        }
        sc_add(c, ++pos);
    }
}

/* GPT-4o / Phi-4-mini / Llama-4: llama.cpp runs its adapted regex through std::regex (categories collapsed):
 *   [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?
 *  |[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|...)?
 *  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * "UP" = a letter that is not a-z, "LO" = a letter that is not A-Z (letters beyond ASCII are both). Every
 * code point starts some alternative, so the matches tile the segment; this reproduces the backtracking by
 * hand. */
static inline int g4_up(const split_ctx *c, size_t p) {
    uint8_t f = sc_flags(c, p);
    uint32_t cp = sc_cpt(c, p);
    return f && IS_L(f) && !(cp >= 'a' && cp <= 'z');
}
static inline int g4_lo(const split_ctx *c, size_t p) {
    uint8_t f = sc_flags(c, p);
    uint32_t cp = sc_cpt(c, p);
    return f && IS_L(f) && !(cp >= 'A' && cp <= 'Z');
}
static size_t g4_contraction(const split_ctx *c, size_t e) {
    if (sc_cpt(c, e) != '\'') return e;
    uint32_t a = ascii_lower(sc_cpt(c, e + 1)), b = ascii_lower(sc_cpt(c, e + 2));
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return e + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return e + 3;
    return e;
}

static void split_gpt4o(split_ctx *c) {
    for (size_t pos = c->ini; pos < c->end;) {
        uint32_t cpt = sc_cpt(c, pos);
        uint8_t flags = sc_flags(c, pos);
        /* the optional prefix: not \r \n, not a letter, not a number (the letters must follow it) */
        size_t q = pos;
        if (!(cpt == '\r' || cpt == '\n' || IS_L(flags) || IS_N(flags))) q = pos + 1;
        if (q == pos || g4_up(c, q) || g4_lo(c, q)) {
            /* alternative 1: UP* LO+ (greedy UP*, backtracking until a LO follows) */
            size_t a = 0;
            while (g4_up(c, q + a)) a++;
            size_t end = 0;
            for (size_t j = a + 1; j-- > 0;)
                if (g4_lo(c, q + j)) {
                    size_t b = 0;
                    while (g4_lo(c, q + j + b)) b++;
                    end = q + j + b;
                    break;
                }
            /* alternative 2: UP+ LO* */
            if (!end && a > 0) {
                size_t b = 0;
                while (g4_lo(c, q + a + b)) b++;
                end = q + a + b;
            }
            if (end) {
                end = g4_contraction(c, end);
                sc_add(c, end);
                pos = end;
                continue;
            }
        }
        /* \p{N}{1,3} */
        if (IS_N(flags) && flags) {
            size_t n = 0;
            while (n < 3 && IS_N(sc_flags(c, pos + n)) && sc_flags(c, pos + n)) n++;
            pos += n;
            sc_add(c, pos);
            continue;
        }
        /* <space>?[^\s\p{L}\p{N}]+[\r\n/]* */
        uint8_t f2 = cpt == ' ' ? sc_flags(c, pos + 1) : flags;
        if (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) {
            pos += (cpt == ' ');
            while (!(IS_WS(f2) || IS_L(f2) || IS_N(f2)) && f2) f2 = sc_flags(c, ++pos);
            uint32_t c2 = sc_cpt(c, pos);
            while (c2 == '\r' || c2 == '\n' || c2 == '/') c2 = sc_cpt(c, ++pos);
            sc_add(c, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (IS_WS(sc_flags(c, pos + nws))) {
            uint32_t c2 = sc_cpt(c, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            sc_add(c, pos);
            continue;
        }
        if (nws > 1 && sc_cpt(c, pos + nws) != 0xFFFFFFFFu) {
            pos += nws - 1;
            sc_add(c, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            sc_add(c, pos);
            continue;
        }
        sc_add(c, ++pos);
    }
}

/* the std::regex passes: every match and every gap between matches becomes a segment */
static inline int punct_like(uint32_t cp, uint8_t f) {
    return IS_P(f) || cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' ||
           cp == '~' || cp == '|';
}

static void split_regex(split_ctx *c, int pass) {
    size_t pos = c->ini;
    while (pos < c->end) {
        size_t ms = pos, me = pos;
        int found = 0;
        for (ms = pos; ms < c->end; ms++) {
            uint32_t cp = c->cpts[ms];
            uint8_t f = c->flags[ms];
            if (pass == PASS_DIGIT1 && IS_N(f) && f) {
                me = ms + 1;
                found = 1;
            } else if (pass == PASS_NUMS && IS_N(f) && f) {
                me = ms + 1;
                while (me < c->end && IS_N(c->flags[me]) && c->flags[me]) me++;
                found = 1;
            } else if (pass == PASS_PUNCT && punct_like(cp, f)) {
                me = ms + 1;
                while (me < c->end && punct_like(c->cpts[me], c->flags[me])) me++;
                found = 1;
            } else if (pass == PASS_DIGIT3 && ms + 2 < c->end && cp >= '0' && cp <= '9' &&
                       c->cpts[ms + 1] >= '0' && c->cpts[ms + 1] <= '9' && c->cpts[ms + 2] >= '0' &&
                       c->cpts[ms + 2] <= '9') {
                me = ms + 3;
                found = 1;
            }
            if (found) break;
        }
        if (!found) break;
        if (ms > pos) c->out[c->n_out++] = ms - pos;
        c->out[c->n_out++] = me - ms;
        pos = me;
    }
    if (c->end > pos) c->out[c->n_out++] = c->end - pos;
}

/* ------------------------------------------------------------------------------------------------------ */
/* BPE                                                                                                      */

static int bpe_add_bigram(const pulse_tokenizer *t, work *w, int l, int r) {
    if (l < 0 || r < 0) return 0;
    int merged;
    int rank = pairmap_get(&t->merges, (uint32_t)w->syms[l].id, (uint32_t)w->syms[r].id, &merged);
    if (rank < 0) return 0;
    bigram b = {l, r, w->syms[l].n + w->syms[r].n, merged, 0.0f, rank};
    return heap_push(w, &b, 0);
}

/* one pre-tokenized word (raw UTF-8 bytes) */
static pulse_status bpe_word(const pulse_tokenizer *t, work *w, const uint8_t *bytes, size_t nb, emitter *e) {
    if (nb == 0) return PULSE_OK;
    if (t->ignore_merges) {
        /* the whole word as byte-level text: a vocabulary token? */
        if (grow((void **)&w->bl, &w->cap_bl, nb * 4, 1)) return PULSE_ERR_NOMEM;
        size_t l = 0;
        for (size_t i = 0; i < nb; i++) {
            int id = t->byte_sym[bytes[i]];
            memcpy(w->bl + l, strtab_str(&t->tab, id), t->tab.len[id]);
            l += t->tab.len[id];
        }
        int id = strmap_get(&t->map, &t->tab, w->bl, l);
        if (id >= 0 && id < t->n_vocab) {
            emit(e, id);
            return PULSE_OK;
        }
    }
    if (grow((void **)&w->syms, &w->cap_syms, nb, sizeof *w->syms)) return PULSE_ERR_NOMEM;
    symbol *sy = w->syms;
    for (size_t i = 0; i < nb; i++)
        sy[i] = (symbol){(int)i - 1, i + 1 == nb ? -1 : (int)i + 1, t->byte_sym[bytes[i]], i, 1};
    w->n_heap = 0;
    for (size_t i = 1; i < nb; i++)
        if (bpe_add_bigram(t, w, (int)i - 1, (int)i)) return PULSE_ERR_NOMEM;
    while (w->n_heap) {
        bigram b = heap_pop(w, 0);
        symbol *L = &sy[b.left], *R = &sy[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->id = b.merged;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = b.left;
        if (bpe_add_bigram(t, w, L->prev, b.left) || bpe_add_bigram(t, w, b.left, L->next))
            return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i != -1; i = sy[i].next) {
        if (sy[i].n == 0) continue;
        int id = sy[i].id;
        if (id < t->n_vocab) {
            emit(e, id);
            continue;
        }
        /* a merged string that is not a token: llama.cpp looks up each of its bytes as a 1-byte token */
        const char *s = strtab_str(&t->tab, id);
        for (uint32_t j = 0; j < t->tab.len[id]; j++) {
            int b1 = strmap_get(&t->map, &t->tab, s + j, 1);
            if (b1 >= 0 && b1 < t->n_vocab) emit(e, b1);
        }
    }
    return PULSE_OK;
}

static pulse_status bpe_fragment(const pulse_tokenizer *t, work *w, const char *text, size_t len,
                                 emitter *e) {
    /* decode to code points */
    if (grow((void **)&w->cpts, &w->cap_cpts, len + 1, sizeof *w->cpts) ||
        grow((void **)&w->flags, &w->cap_flags, len + 1, 1) ||
        grow((void **)&w->segs, &w->cap_segs, len + 1, sizeof *w->segs) ||
        grow((void **)&w->segs2, &w->cap_segs2, len + 1, sizeof *w->segs2))
        return PULSE_ERR_NOMEM;
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        uint32_t cp = pulse_utf8_decode(text, len, &off);
        w->cpts[n] = cp;
        w->flags[n] = cp < 0x110000 ? (uint8_t)(pulse_ucat(cp) | F_VALID) : 0;
        n++;
    }
    size_t nseg = 1;
    w->segs[0] = n;
    for (int ps = 0; ps < t->n_passes; ps++) {
        split_ctx c = {w->cpts, w->flags, 0, 0, 0, w->segs2, 0};
        size_t start = 0;
        for (size_t s = 0; s < nseg; s++) {
            c.ini = start;
            c.end = start + w->segs[s];
            c.prev_end = start;
            int pass = t->passes[ps];
            if (pass == PASS_GPT2)
                split_gpt2(&c);
            else if (pass == PASS_LLAMA3)
                split_llama3(&c, 3);
            else if (pass == PASS_QWEN2)
                split_llama3(&c, 1);
            else if (pass == PASS_GPT4O)
                split_gpt4o(&c);
            else
                split_regex(&c, pass);
            start = c.end;
        }
        size_t *tmp = w->segs, tc = w->cap_segs;
        w->segs = w->segs2;
        w->segs2 = tmp;
        w->cap_segs = w->cap_segs2;
        w->cap_segs2 = tc;
        nseg = c.n_out;
    }
    /* each word: back to UTF-8, then BPE over its bytes */
    if (grow((void **)&w->word, &w->cap_word, 4 * n + 8, 1)) return PULSE_ERR_NOMEM;
    size_t start = 0;
    for (size_t s = 0; s < nseg; s++) {
        size_t nb = 0;
        for (size_t i = start; i < start + w->segs[s]; i++)
            nb += (size_t)pulse_utf8_encode(w->cpts[i], w->word + nb);
        pulse_status st = bpe_word(t, w, (const uint8_t *)w->word, nb, e);
        if (st != PULSE_OK) return st;
        start += w->segs[s];
    }
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* SPM                                                                                                      */

static int spm_add_bigram(const pulse_tokenizer *t, work *w, const char *text, int l, int r) {
    if (l < 0 || r < 0) return 0;
    const symbol *L = &w->syms[l], *R = &w->syms[r];
    int id = strmap_get(&t->map, &t->tab, text + L->start, (size_t)(L->n + R->n));
    if (id < 0 || id >= t->n_vocab) return 0;
    bigram b = {l, r, L->n + R->n, id, t->score[id], 0};
    return heap_push(w, &b, 1);
}

static pulse_status spm_text(const pulse_tokenizer *t, work *w, const char *text, size_t len, emitter *e) {
    if (len == 0) return PULSE_OK;
    if (grow((void **)&w->syms, &w->cap_syms, len, sizeof *w->syms)) return PULSE_ERR_NOMEM;
    symbol *sy = w->syms;
    int ns = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = pulse_utf8_len((uint8_t)text[off]);
        if (cl > len - off) cl = len - off;
        sy[ns] = (symbol){ns - 1, off + cl == len ? -1 : ns + 1, -1, off, (int)cl};
        off += cl;
        ns++;
    }
    w->n_heap = 0;
    for (int i = 1; i < ns; i++)
        if (spm_add_bigram(t, w, text, i - 1, i)) return PULSE_ERR_NOMEM;
    while (w->n_heap) {
        bigram b = heap_pop(w, 1);
        symbol *L = &sy[b.left], *R = &sy[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = b.left;
        if (spm_add_bigram(t, w, text, L->prev, b.left) || spm_add_bigram(t, w, text, b.left, L->next))
            return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i != -1; i = sy[i].next) {
        int id = strmap_get(&t->map, &t->tab, text + sy[i].start, (size_t)sy[i].n);
        if (id >= 0 && id < t->n_vocab) {
            emit(e, id);
            continue;
        }
        for (int j = 0; j < sy[i].n; j++) {
            int bt = t->byte_tok[(uint8_t)text[sy[i].start + (size_t)j]];
            if (bt >= 0) emit(e, bt);
        }
    }
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */

pulse_status pulse_tokenize(const pulse_tokenizer *t, const char *text, size_t len, int add_bos,
                            int parse_special, int *ids, int max, int *n) {
    return lm_tokenize_guarded(t, text, len, add_bos, parse_special, NULL, 0, ids, max, n);
}

pulse_status lm_tokenize_guarded(const pulse_tokenizer *t, const char *text, size_t len, int add_bos,
                                 int parse_special, const size_t *plain, int n_plain, int *ids, int max,
                                 int *n) {
    if (!t || (!text && len) || !n || max < 0 || (max > 0 && !ids))
        return pulse_set_error(PULSE_ERR_ARG, "pulse_tokenize: invalid arguments");
    emitter e = {ids, max, 0};
    *n = 0;
    if (add_bos && t->bos >= 0) emit(&e, t->bos);
    work w;
    memset(&w, 0, sizeof w);
    pulse_status st = PULSE_OK;
    size_t nf = 0;
    if (len > 0) st = partition(t, &w, text, len, parse_special, plain, n_plain, &nf);
    int prev_special = 1;
    char *esc = NULL;
    for (size_t f = 0; st == PULSE_OK && f < nf; f++) {
        frag fr = w.frags[f];
        if (fr.tok >= 0) {
            emit(&e, fr.tok);
            prev_special = 1;
            continue;
        }
        if (t->kind == PULSE_VOCAB_BPE) {
            st = bpe_fragment(t, &w, text + fr.off, fr.len, &e);
        } else {
            /* optional leading space, then " " -> U+2581 */
            size_t cap = 3 * (fr.len + 1), el = 0;
            char *ne = pulse_realloc(esc, cap);
            if (!ne) {
                st = PULSE_ERR_NOMEM;
                break;
            }
            esc = ne;
            if (t->add_space_prefix && prev_special) {
                memcpy(esc, "\xE2\x96\x81", 3);
                el = 3;
            }
            for (size_t i = 0; i < fr.len; i++) {
                char c = text[fr.off + i];
                if (c == ' ') {
                    memcpy(esc + el, "\xE2\x96\x81", 3);
                    el += 3;
                } else {
                    esc[el++] = c;
                }
            }
            st = spm_text(t, &w, esc, el, &e);
        }
        prev_special = 0;
    }
    free(esc);
    work_free(&w);
    if (st != PULSE_OK) return st;
    *n = e.n;
    if (e.n > max)
        return pulse_set_error(PULSE_ERR_RANGE, "pulse_tokenize: %d ids do not fit in a buffer of %d", e.n,
                               max);
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* detokenize                                                                                               */

static int put(char *buf, int cap, int at, const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (at + i < cap) buf[at + i] = s[i];
    return at + n;
}

int pulse_token_to_piece(const pulse_tokenizer *t, int id, int special, char *buf, int cap) {
    if (!t || id < 0 || id >= t->n_vocab || cap < 0 || (cap > 0 && !buf)) return -1;
    uint16_t a = t->attr[id];
    const char *s = strtab_str(&t->tab, id);
    int len = (int)t->tab.len[id];
    if (!special && (a & (A_CONTROL | A_UNKNOWN))) return 0;
    if (a & A_SPECIAL) return put(buf, cap, 0, s, len);
    if (t->kind == PULSE_VOCAB_SPM) {
        if (a & A_NORMAL) {
            int at = 0;
            for (int i = 0; i < len; i++) {
                if (i + 2 < len && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 &&
                    (uint8_t)s[i + 2] == 0x81) {
                    at = put(buf, cap, at, " ", 1);
                    i += 2;
                } else {
                    at = put(buf, cap, at, s + i, 1);
                }
            }
            return at;
        }
        if (a & A_BYTE) {
            unsigned v = 0;
            if (len == 6 && sscanf(s, "<0x%2X>", &v) == 1) {
                char c = (char)v;
                return put(buf, cap, 0, &c, 1);
            }
            return put(buf, cap, 0, s, len);
        }
        return 0;
    }
    if (!(a & A_NORMAL)) return 0;
    int at = 0;
    for (size_t off = 0; off < (size_t)len;) {
        size_t o0 = off;
        uint32_t cp = pulse_utf8_decode(s, (size_t)len, &off);
        int b = cp_to_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            at = put(buf, cap, at, &c, 1);
        } else {
            at = put(buf, cap, at, s + o0, (int)(off - o0));
        }
    }
    return at;
}

pulse_status pulse_detokenize(const pulse_tokenizer *t, const int *ids, int n, int special, char **out,
                              size_t *len) {
    *out = NULL;
    if (n < 0 || (n > 0 && !ids))
        return pulse_set_error(PULSE_ERR_ARG, "pulse_detokenize: invalid arguments");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int l = pulse_token_to_piece(t, ids[i], special, NULL, 0);
        if (l < 0)
            return pulse_set_error(PULSE_ERR_RANGE, "pulse_detokenize: id %d at %d outside 0..%d", ids[i], i,
                                   t->n_vocab - 1);
        total += (size_t)l;
    }
    char *s = pulse_malloc(total + 1);
    if (!s) return PULSE_ERR_NOMEM;
    size_t at = 0;
    for (int i = 0; i < n; i++)
        at += (size_t)pulse_token_to_piece(t, ids[i], special, s + at, (int)(total - at));
    s[at] = 0;
    /* SPM with add_space_prefix: the space the tokenizer put in front goes again */
    if (t->kind == PULSE_VOCAB_SPM && t->add_space_prefix && at > 0 && s[0] == ' ') {
        memmove(s, s + 1, at);
        at--;
    }
    *out = s;
    if (len) *len = at;
    return PULSE_OK;
}
