/* src/lm/tokenize.c — owns tokenizing with a GGUF vocabulary: the special-token partition (llama.cpp's
 * tokenizer_st_partition, with the guarded spans of chat contents), byte-level BPE over pre-tokenized words
 * (src/lm/pretok.c), SentencePiece-style score merges with byte fallback, and detokenization, as llama.cpp's
 * llama-vocab.cpp does. */
#include "pulse/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "lm/tokenizer_internal.h"

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
        const char *st = pulse_strmap_str(&t->map, id);
        size_t sl = t->map.len[id];
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
            memcpy(w->bl + l, pulse_strmap_str(&t->map, id), t->map.len[id]);
            l += t->map.len[id];
        }
        int id = pulse_strmap_get(&t->map, w->bl, l);
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
        const char *s = pulse_strmap_str(&t->map, id);
        for (uint32_t j = 0; j < t->map.len[id]; j++) {
            int b1 = pulse_strmap_get(&t->map, s + j, 1);
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
    size_t nseg = lm_pre_split(t, w->cpts, w->flags, n, &w->segs, &w->cap_segs, &w->segs2, &w->cap_segs2);
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
    int id = pulse_strmap_get(&t->map, text + L->start, (size_t)(L->n + R->n));
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
        int id = pulse_strmap_get(&t->map, text + sy[i].start, (size_t)sy[i].n);
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
    const char *s = pulse_strmap_str(&t->map, id);
    int len = (int)t->map.len[id];
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
        int b = lm_cp_to_byte(cp);
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
