/* encoder/wordpiece.h — the BERT tokenizer (BasicTokenizer normalisation and splitting + greedy longest-match
 * WordPiece), loaded from tokenizer.json or vocab.txt (+ tokenizer_config.json). Internal to the encoder. */
#ifndef PULSE_ENCODER_WORDPIECE_H
#define PULSE_ENCODER_WORDPIECE_H

#include "pulse/core.h"
#include "pulse/strmap.h"

typedef struct {
    pulse_strmap vocab;    /* string id = token id, for ids 0..n_vocab-1; token -> id */
    unsigned char *absent; /* absent[id]: id lies in no entry (its string is "" and no key); NULL = none */
    int n_vocab;           /* 1 + largest id */
    int lowercase, strip_accents, chinese, clean_text;
    int unk_id, cls_id, sep_id, pad_id;
    int max_chars; /* words longer than this (in characters) become [UNK]; 100 */
    char prefix[16];
    char **added; /* special tokens matched verbatim in the raw text */
    int *added_ids;
    int n_added;
    unsigned char added_first[256];
} pulse_wordpiece;

/* dir holds tokenizer.json (preferred) or vocab.txt; tokenizer_config.json refines vocab.txt's options. */
pulse_status pulse_wordpiece_load(pulse_wordpiece *wp, const char *dir);
void pulse_wordpiece_free(pulse_wordpiece *wp);
/* id of an exact token, or -1 */
int pulse_wordpiece_lookup(const pulse_wordpiece *wp, const char *s, size_t len);
/* the token of id, or NULL (out of range or absent from the vocabulary) */
static inline const char *pulse_wordpiece_token(const pulse_wordpiece *wp, int id) {
    if (id < 0 || id >= wp->n_vocab || (wp->absent && wp->absent[id])) return NULL;
    return pulse_strmap_str(&wp->vocab, id);
}
/* [CLS] pieces... [SEP] into ids, at most max_tokens (>= 2) in all (pieces truncated); returns the count or
 * -1 on allocation failure. */
int pulse_wordpiece_encode(const pulse_wordpiece *wp, const char *text, int *ids, int max_tokens);
/* Write the vocabulary as vocab.txt lines (id order) to path, atomically. */
pulse_status pulse_wordpiece_save_vocab(const pulse_wordpiece *wp, const char *path);

#endif
