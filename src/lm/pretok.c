/* src/lm/pretok.c — owns the BPE pre-tokenizers: llama.cpp's unicode_regex_split with its hand-written gpt2
 * and llama3 / qwen2 splitters, GPT-4o's, and the std::regex passes of the older vocabularies, over code
 * points classified by the Unicode category table (lm/unicode.h). */
#include <stdint.h>
#include <string.h>

#include "lm/tokenizer_internal.h"

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

/* The whitespace alternatives every pattern ends with, from pos (the last alternatives, so something
 * matches): with_rn: \s*[\r\n]+ first; then \s+(?!\S) (a run before a non-space gives up its last space),
 * \s+, and a lone code point otherwise. Adds the segment and returns where the next one starts. */
static size_t ws_tail(split_ctx *c, size_t pos, int with_rn) {
    size_t nws = 0, last_rn = 0;
    while (IS_WS(sc_flags(c, pos + nws))) {
        uint32_t c2 = sc_cpt(c, pos + nws);
        if (with_rn && (c2 == '\r' || c2 == '\n')) last_rn = pos + nws + 1;
        nws++;
    }
    if (last_rn > 0)
        pos = last_rn;
    else if (nws > 1 && sc_cpt(c, pos + nws) != 0xFFFFFFFFu)
        pos += nws - 1;
    else if (nws > 0)
        pos += nws;
    else
        pos++;
    sc_add(c, pos);
    return pos;
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
        pos = ws_tail(c, pos, 0);
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
        pos = ws_tail(c, pos, 1);
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
        pos = ws_tail(c, pos, 1);
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

size_t lm_pre_split(const pulse_tokenizer *t, const uint32_t *cpts, const uint8_t *flags, size_t n,
                    size_t **segs, size_t *cap_segs, size_t **segs2, size_t *cap_segs2) {
    size_t nseg = 1;
    (*segs)[0] = n;
    for (int ps = 0; ps < t->n_passes; ps++) {
        split_ctx c = {cpts, flags, 0, 0, 0, (*segs2), 0};
        size_t start = 0;
        for (size_t s = 0; s < nseg; s++) {
            c.ini = start;
            c.end = start + (*segs)[s];
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
        size_t *tmp = *segs, tc = *cap_segs;
        *segs = *segs2;
        *segs2 = tmp;
        *cap_segs = *cap_segs2;
        *cap_segs2 = tc;
        nseg = c.n_out;
    }
    return nseg;
}
