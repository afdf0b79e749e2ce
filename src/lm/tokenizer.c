/* src/lm/tokenizer.c — owns the GGUF tokenizers' vocabulary loading (tokenizer.ggml.*: tokens, types, scores,
 * merges, the pre-tokenizer name, special ids), the text-based detection of special and end-of-generation
 * tokens, the special-token trie, and the accessors. Tokenizing is src/lm/tokenize.c, the pre-tokenizers
 * src/lm/pretok.c. Behaviour follows llama.cpp's llama-vocab.cpp so that ids match it exactly (see
 * tests/test_lm_tokenizer.c and scripts/tokenizer_fixtures.py). */
#include "pulse/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "lm/tokenizer_internal.h"

/* ---- the merge pair map (lookup: tokenizer_internal.h) ---- */
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

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100.. in order */
uint32_t lm_byte_to_cp(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

int lm_cp_to_byte(uint32_t cp) {
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
    pulse_strmap_free(&t->map);
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
    int id = pulse_strmap_get(&t->map, s, strlen(s));
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
        if ((t->attr[i] & A_CONTROL) && memmem(pulse_strmap_str(&t->map, i), t->map.len[i], "unused", 6))
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
    if (t->map.len[x] != t->map.len[y]) return t->map.len[x] > t->map.len[y] ? -1 : 1;
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
            total += t->map.len[i];
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
        const uint8_t *s = (const uint8_t *)pulse_strmap_str(&t->map, id);
        int node = 0;
        for (uint32_t j = 0; j < t->map.len[id]; j++) {
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
    if (pulse_strmap_reserve(&t->map, (size_t)n_tok + 3 * (size_t)n_merges + 256) != 0) goto fail;
    if (pairmap_init(&t->merges, (size_t)n_merges + 1) != 0) goto fail;
    for (uint64_t i = 0; i < n_tok; i++) {
        pulse_gguf_str s;
        if ((st = pulse_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s)) != PULSE_OK) goto fail;
        int id;
        if (s.len == 0) {
            char buf[32];
            int l = snprintf(buf, sizeof buf, "[EMPTY_%llu]", (unsigned long long)i);
            id = pulse_strmap_add(&t->map, buf, (size_t)l);
        } else {
            if (s.len > (1u << 20)) {
                st = pulse_set_error(PULSE_ERR_FORMAT, "tokenizer: token %llu is %llu bytes long",
                                     (unsigned long long)i, (unsigned long long)s.len);
                goto fail;
            }
            id = pulse_strmap_add(&t->map, s.ptr, (size_t)s.len);
        }
        if (id < 0 || pulse_strmap_map(&t->map, id, 1) < -1) {
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
            int l = pulse_utf8_encode(lm_byte_to_cp(b), u);
            int id = pulse_strmap_get(&t->map, u, (size_t)l);
            if (id < 0) {
                id = pulse_strmap_add(&t->map, u, (size_t)l);
                if (id < 0 || pulse_strmap_map(&t->map, id, 0) < -1) goto fail;
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
            int ida = pulse_strmap_get(&t->map, pa, la);
            if (ida < 0 &&
                ((ida = pulse_strmap_add(&t->map, pa, la)) < 0 || pulse_strmap_map(&t->map, ida, 0) < -1)) {
                free(buf);
                goto fail;
            }
            int idb = pulse_strmap_get(&t->map, pb, lb);
            if (idb < 0 &&
                ((idb = pulse_strmap_add(&t->map, pb, lb)) < 0 || pulse_strmap_map(&t->map, idb, 0) < -1)) {
                free(buf);
                goto fail;
            }
            memcpy(buf, pa, la);
            memcpy(buf + la, pb, lb);
            int idm = pulse_strmap_get(&t->map, buf, la + lb);
            if (idm < 0 && ((idm = pulse_strmap_add(&t->map, buf, la + lb)) < 0 ||
                            pulse_strmap_map(&t->map, idm, 0) < -1)) {
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
                id = pulse_strmap_get(&t->map, &c, 1);
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
    if (len) *len = t->map.len[id];
    return pulse_strmap_str(&t->map, id);
}

int pulse_token_lookup(const pulse_tokenizer *t, const char *text, size_t len) {
    int id = pulse_strmap_get(&t->map, text, len);
    return id < t->n_vocab ? id : -1;
}
