/* pulse/strmap.h — a string table with a hash map from its strings to their ids, for vocabularies and name
 * lookups (the GGUF reader's keys and tensor names, the GGUF tokenizers' and WordPiece's vocabularies).
 * Strings are appended (ids in order of addition, repeats allowed) and copied into one arena; mapping an id
 * makes its string a key, and the map keeps one id per distinct key (the first mapped or the last, as the
 * caller asks). Open addressing with one 64-bit slot per entry: id + 1 and a tag of 24 hash bits and the
 * length, so a probe compares bytes only when the tag matches. A zero-initialised pulse_strmap is empty and
 * ready. */
#ifndef PULSE_STRMAP_H
#define PULSE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *data; /* the strings, each NUL-terminated, back to back */
    size_t used, cap;
    uint32_t *off, *len; /* string id at data + off[id], len[id] bytes */
    int n, cap_n;
    uint64_t *slot; /* the map: (tag << 32) | (id + 1), 0 = empty */
    uint32_t mask, count;
} pulse_strmap;

/* Room for n_keys keys without re-hashing. 0, or -1 out of memory (error set). */
int pulse_strmap_reserve(pulse_strmap *m, size_t n_keys);
/* Append s[0..n) as the next id (not a key yet). Returns the id, or -1 (out of memory / over 4 GiB of text).
 */
int pulse_strmap_add(pulse_strmap *m, const char *s, size_t n);
/* Make id's string a key for id. When the key is already mapped: replace = 1 gives it to id, 0 keeps the
 * earlier id. Returns that earlier id (>= 0), -1 when the key was new, -2 out of memory. */
int pulse_strmap_map(pulse_strmap *m, int id, int replace);
/* The id mapped to s[0..n), or -1. */
int pulse_strmap_get(const pulse_strmap *m, const char *s, size_t n);
/* The id of s[0..n), added and mapped when absent; -1 out of memory. */
int pulse_strmap_intern(pulse_strmap *m, const char *s, size_t n);
static inline const char *pulse_strmap_str(const pulse_strmap *m, int id) {
    return m->data + m->off[id];
}
static inline size_t pulse_strmap_len(const pulse_strmap *m, int id) {
    return m->len[id];
}
void pulse_strmap_free(pulse_strmap *m);

#ifdef __cplusplus
}
#endif
#endif
