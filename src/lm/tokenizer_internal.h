/* lm/tokenizer_internal.h — what the tokenizer files of src/lm share beyond pulse/tokenizer.h: the tokenizer
 * structure, its merge pair map and token attributes, the pre-tokenizer's entry point. The files: tokenizer.c
 * (vocabulary loading, special tokens, accessors), pretok.c (the pre-tokenizers), tokenize.c (special-token
 * partition, BPE and SPM, detokenization), chat.c. Not a public header. */
#ifndef PULSE_LM_TOKENIZER_INTERNAL_H
#define PULSE_LM_TOKENIZER_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "lm/unicode.h"
#include "pulse/strmap.h"
#include "pulse/tokenizer.h"

/* ---- the pair map of BPE merges ((id, id) -> rank, merged id; the vocabulary's strings are a pulse_strmap)
 * ---- */
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

/* ---- the tokenizer ---- */
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
    pulse_strmap map; /* ids 0..n_vocab-1: the vocabulary; beyond: strings reachable by BPE merges only; every
                         string -> its id (vocabulary: last duplicate wins) */
    uint16_t *attr;   /* A_* bits */
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

/* code point flags of the pre-tokenizer: pulse_ucat categories (lm/unicode.h) | F_VALID */
#define F_VALID 0x10 /* a valid code point */
#define IS_L(f) (((f)&7) == PULSE_UCAT_L)
#define IS_N(f) (((f)&7) == PULSE_UCAT_N)
#define IS_P(f) (((f)&7) == PULSE_UCAT_P)
#define IS_WS(f) ((f)&PULSE_UCAT_WS)

/* pretok.c: split n code points (cpts, flags) into words as t's pre-tokenizer passes say; the word lengths go
 * to *segs (both buffers hold >= n + 1, they are swapped between passes). Returns the number of words. */
size_t lm_pre_split(const pulse_tokenizer *t, const uint32_t *cpts, const uint8_t *flags, size_t n,
                    size_t **segs, size_t *cap_segs, size_t **segs2, size_t *cap_segs2);
/* tokenizer.c: GPT-2's bytes_to_unicode and its inverse (-1: not a byte's code point) */
uint32_t lm_byte_to_cp(int b);
int lm_cp_to_byte(uint32_t cp);

/* pulse_tokenize, except that inside the plain spans (n_plain pairs [start, end) of byte offsets into text,
 * ascending) CONTROL and UNKNOWN tokens are never matched, even with parse_special: the message contents of a
 * chat prompt (pulse_chat_tokenize), whose text is untrusted. */
pulse_status lm_tokenize_guarded(const pulse_tokenizer *t, const char *text, size_t len, int add_bos,
                                 int parse_special, const size_t *plain, int n_plain, int *ids, int max,
                                 int *n);

#endif
