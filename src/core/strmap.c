/* core/strmap.c — owns pulse_strmap (pulse/strmap.h): the one string table + string -> id hash map of the
 * library (GGUF keys and tensor names, the GGUF tokenizers' and WordPiece's vocabularies). */
#include "pulse/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "pulse/core.h"

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

int pulse_strmap_add(pulse_strmap *m, const char *s, size_t n) {
    if (m->n == m->cap_n) {
        int nc = m->cap_n ? m->cap_n * 2 : 1024;
        uint32_t *o = pulse_realloc(m->off, (size_t)nc * sizeof *o);
        if (!o) return -1;
        m->off = o;
        uint32_t *l = pulse_realloc(m->len, (size_t)nc * sizeof *l);
        if (!l) return -1;
        m->len = l;
        m->cap_n = nc;
    }
    if (m->used + n + 1 > m->cap) {
        size_t nc = m->cap ? m->cap : 65536;
        while (m->used + n + 1 > nc) nc *= 2;
        if (nc > UINT32_MAX) {
            pulse_set_error(PULSE_ERR_NOMEM, "string map: the strings exceed 4 GiB");
            return -1;
        }
        char *d = pulse_realloc(m->data, nc);
        if (!d) return -1;
        m->data = d;
        m->cap = nc;
    }
    if (n) memcpy(m->data + m->used, s, n);
    m->data[m->used + n] = 0;
    m->off[m->n] = (uint32_t)m->used;
    m->len[m->n] = (uint32_t)n;
    m->used += n + 1;
    return m->n++;
}

static inline uint32_t tag_of(uint64_t h, size_t n) {
    return ((uint32_t)(h >> 8) & 0xFFFFFF00u) | (uint32_t)(n < 255 ? n : 255);
}

/* slot index of s, or of the empty slot where it would go (the map has slots) */
static inline uint32_t probe(const pulse_strmap *m, const char *s, size_t n, uint64_t h) {
    uint32_t i = (uint32_t)h & m->mask, tag = tag_of(h, n);
    for (;;) {
        uint64_t v = m->slot[i];
        if (!v) return i;
        if ((uint32_t)(v >> 32) == tag) {
            int id = (int)(uint32_t)v - 1;
            if (m->len[id] == n && memcmp(pulse_strmap_str(m, id), s, n) == 0) return i;
        }
        i = (i + 1) & m->mask;
    }
}

int pulse_strmap_get(const pulse_strmap *m, const char *s, size_t n) {
    if (!m->slot) return -1;
    uint64_t v = m->slot[probe(m, s, n, hash_bytes(s, n))];
    return v ? (int)(uint32_t)v - 1 : -1;
}

/* re-hash into a table of at least 2 * want slots */
static int rehash(pulse_strmap *m, size_t want) {
    size_t cap = 1024;
    while (cap < want * 2) cap *= 2;
    if (m->slot && cap <= (size_t)m->mask + 1) return 0;
    uint64_t *ns = pulse_calloc(cap, sizeof *ns);
    if (!ns) return -1;
    const uint32_t nmask = (uint32_t)(cap - 1);
    for (uint32_t i = 0; m->slot && i <= m->mask; i++) {
        if (!m->slot[i]) continue;
        int id = (int)(uint32_t)m->slot[i] - 1;
        uint32_t j = (uint32_t)hash_bytes(pulse_strmap_str(m, id), m->len[id]) & nmask;
        while (ns[j]) j = (j + 1) & nmask;
        ns[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = ns;
    m->mask = nmask;
    return 0;
}

int pulse_strmap_reserve(pulse_strmap *m, size_t n_keys) {
    return rehash(m, n_keys);
}

int pulse_strmap_map(pulse_strmap *m, int id, int replace) {
    if ((!m->slot || ((size_t)m->count + 1) * 2 > (size_t)m->mask + 1) &&
        rehash(m, m->slot ? (size_t)m->mask + 1 : 512) != 0)
        return -2;
    const char *s = pulse_strmap_str(m, id);
    size_t n = m->len[id];
    uint64_t h = hash_bytes(s, n);
    uint32_t i = probe(m, s, n, h);
    uint64_t e = ((uint64_t)tag_of(h, n) << 32) | ((uint64_t)(uint32_t)id + 1);
    if (m->slot[i]) {
        int prev = (int)(uint32_t)m->slot[i] - 1;
        if (replace) m->slot[i] = e;
        return prev;
    }
    m->slot[i] = e;
    m->count++;
    return -1;
}

int pulse_strmap_intern(pulse_strmap *m, const char *s, size_t n) {
    int id = pulse_strmap_get(m, s, n);
    if (id >= 0) return id;
    id = pulse_strmap_add(m, s, n);
    if (id < 0 || pulse_strmap_map(m, id, 0) < -1) return -1;
    return id;
}

void pulse_strmap_free(pulse_strmap *m) {
    free(m->data);
    free(m->off);
    free(m->len);
    free(m->slot);
    memset(m, 0, sizeof *m);
}
