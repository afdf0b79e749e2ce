/* core/gguf.c — owns the GGUF v2/v3 reader: header, metadata key/values, tensor infos and the data section,
 * all over a read-only mmap. Every length, count, offset and size is checked against the bytes that remain
 * before it is used, so a truncated or hostile file yields PULSE_ERR_FORMAT naming the field and never a
 * crash or an allocation larger than the file. String arrays get an offset index at open (O(1) access). */
#include "pulse/gguf.h"
#include "pulse/strmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32u

typedef struct {
    pulse_gguf_str key;
    pulse_gguf_type type;
    const uint8_t *val;      /* scalar value, string (len prefix) or first array element */
    pulse_gguf_type el_type; /* arrays only */
    uint64_t count;          /* arrays only */
    uint64_t *str_off;       /* string arrays: offset of each element's length prefix, relative to val */
} gguf_kv;

struct pulse_gguf {
    pulse_mmap map;
    int owns_map;
    uint32_t version;
    uint32_t alignment;
    size_t n_kv, n_tensors;
    gguf_kv *kv;
    pulse_gguf_tensor *tensors;
    size_t data_start;
    pulse_strmap kv_map, t_map; /* key -> kv index, tensor name -> tensor index */
};

/* ---- a bounds-checked cursor over the mapping ---- */
typedef struct {
    const uint8_t *base;
    size_t size, pos;
    const char *path;
} cursor;

static pulse_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "gguf: %s: %s needs %llu bytes at offset %zu but only %zu remain (file size %zu)", c->path, what,
            (unsigned long long)n, c->pos, c->size - c->pos, c->size);
    return PULSE_OK;
}

static pulse_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    pulse_status st = need(c, 4, what);
    if (st) return st;
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return PULSE_OK;
}

static pulse_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    pulse_status st = need(c, 8, what);
    if (st) return st;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return PULSE_OK;
}

static pulse_status rd_str(cursor *c, pulse_gguf_str *s, const char *what) {
    uint64_t len;
    pulse_status st = rd_u64(c, &len, what);
    if (st) return st;
    if (len > c->size - c->pos)
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "gguf: %s: %s: string length %llu at offset %zu exceeds the %zu bytes remaining", c->path, what,
            (unsigned long long)len, c->pos - 8, c->size - c->pos);
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return PULSE_OK;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case PULSE_GGUF_UINT8:
    case PULSE_GGUF_INT8:
    case PULSE_GGUF_BOOL:
        return 1;
    case PULSE_GGUF_UINT16:
    case PULSE_GGUF_INT16:
        return 2;
    case PULSE_GGUF_UINT32:
    case PULSE_GGUF_INT32:
    case PULSE_GGUF_FLOAT32:
        return 4;
    case PULSE_GGUF_UINT64:
    case PULSE_GGUF_INT64:
    case PULSE_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static const char *gguf_type_name(uint32_t t) {
    static const char *names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "invalid";
}

/* Printable, truncated copy of a GGUF string for error messages. */
static const char *show(pulse_gguf_str s, char *buf, size_t n) {
    size_t l = s.len < n - 1 ? (size_t)s.len : n - 1;
    for (size_t i = 0; i < l; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[i] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    buf[l] = 0;
    return buf;
}

/* A key or tensor name holding control bytes is a length field gone wrong (the text runs into the binary
 * fields after it): index of the first such byte, or -1 when the text is clean. */
static int64_t first_control(pulse_gguf_str s) {
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch < 32 || ch == 127) return (int64_t)i;
    }
    return -1;
}

/* Map the name of entry i (its string copied into m) and say whether an earlier entry has it: that entry's
 * index, -1 when new, -2 out of memory. Ids are the entries' indices, added in order. */
static int64_t name_insert(pulse_strmap *m, pulse_gguf_str name, size_t i) {
    int id = pulse_strmap_add(m, name.ptr, (size_t)name.len);
    if (id < 0 || (size_t)id != i) return -2;
    return pulse_strmap_map(m, id, 0);
}

/* a key or tensor name just read (its 8-byte length before it) must hold no control byte: one there is most
 * often a wrong length field, so say where the text starts and what it looked like */
static pulse_status no_control_bytes(const cursor *c, pulse_gguf_str s, const char *item, size_t idx,
                                     const char *noun) {
    int64_t bad = first_control(s);
    if (bad < 0) return PULSE_OK;
    char hb[80];
    pulse_gguf_str head = {s.ptr, (uint64_t)bad};
    return pulse_set_error(PULSE_ERR_FORMAT,
                           "gguf: %s: %s %zu: %s at offset %zu has length %llu but a control byte at %lld (a "
                           "wrong length field?); the %s starts '%s'",
                           c->path, item, idx, noun, c->pos - (size_t)s.len - 8, (unsigned long long)s.len,
                           (long long)bad, noun, show(head, hb, sizeof hb));
}

/* kv idx; prev: the kv before it (NULL for the first), named when this key cannot be read, since a wrong
 * length in the previous value is the usual cause */
static pulse_status parse_kv(cursor *c, gguf_kv *kv, size_t idx, const gguf_kv *prev) {
    char kb[80], what[160];
    if (prev)
        snprintf(what, sizeof what, "kv %zu key (after kv %zu '%s')", idx, idx - 1,
                 show(prev->key, kb, sizeof kb));
    else
        snprintf(what, sizeof what, "kv %zu key", idx);
    pulse_status st = rd_str(c, &kv->key, what);
    if (st) return st;
    if (kv->key.len == 0)
        return pulse_set_error(PULSE_ERR_FORMAT, "gguf: %s: kv %zu: empty key at offset %zu", c->path, idx,
                               c->pos);
    if ((st = no_control_bytes(c, kv->key, "kv", idx, "key"))) return st;
    show(kv->key, kb, sizeof kb);
    uint32_t t;
    snprintf(what, sizeof what, "kv %zu '%s' value type", idx, kb);
    if ((st = rd_u32(c, &t, what))) return st;
    if (t > PULSE_GGUF_FLOAT64)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: kv %zu '%s': value type %u is not a GGUF type (0..12)", c->path,
                               idx, kb, t);
    kv->type = (pulse_gguf_type)t;
    if (t == PULSE_GGUF_STRING) {
        kv->val = c->base + c->pos;
        pulse_gguf_str s;
        snprintf(what, sizeof what, "kv %zu '%s' string value", idx, kb);
        return rd_str(c, &s, what);
    }
    if (t != PULSE_GGUF_ARRAY) {
        snprintf(what, sizeof what, "kv %zu '%s' %s value", idx, kb, gguf_type_name(t));
        if ((st = need(c, scalar_size(t), what))) return st;
        kv->val = c->base + c->pos;
        c->pos += scalar_size(t);
        return PULSE_OK;
    }
    uint32_t et;
    uint64_t n;
    snprintf(what, sizeof what, "kv %zu '%s' array element type", idx, kb);
    if ((st = rd_u32(c, &et, what))) return st;
    if (et > PULSE_GGUF_FLOAT64 || et == PULSE_GGUF_ARRAY)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: kv %zu '%s': array element type %u is not supported (%s)", c->path,
                               idx, kb, et, et == PULSE_GGUF_ARRAY ? "nested arrays" : "not a GGUF type");
    snprintf(what, sizeof what, "kv %zu '%s' array count", idx, kb);
    if ((st = rd_u64(c, &n, what))) return st;
    kv->el_type = (pulse_gguf_type)et;
    kv->count = n;
    kv->val = c->base + c->pos;
    if (et == PULSE_GGUF_STRING) {
        /* every element needs at least its 8-byte length: cap the count by the remaining bytes before
         * allocating the index */
        if (n > (c->size - c->pos) / 8)
            return pulse_set_error(
                PULSE_ERR_FORMAT,
                "gguf: %s: kv %zu '%s': string array count %llu cannot fit in the %zu bytes "
                "remaining at offset %zu",
                c->path, idx, kb, (unsigned long long)n, c->size - c->pos, c->pos);
        kv->str_off = malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
        if (!kv->str_off)
            return pulse_set_error(PULSE_ERR_NOMEM, "gguf: %s: kv '%s': out of memory for %llu strings",
                                   c->path, kb, (unsigned long long)n);
        size_t start = c->pos;
        for (uint64_t i = 0; i < n; i++) {
            kv->str_off[i] = c->pos - start;
            pulse_gguf_str s;
            snprintf(what, sizeof what, "kv %zu '%s' string element %llu", idx, kb, (unsigned long long)i);
            if ((st = rd_str(c, &s, what))) return st;
        }
        return PULSE_OK;
    }
    size_t es = scalar_size(et);
    if (n > (c->size - c->pos) / es) {
        char bytes[48];
        if (n > UINT64_MAX / es)
            snprintf(bytes, sizeof bytes, "more than 2^64 bytes");
        else
            snprintf(bytes, sizeof bytes, "%llu bytes", (unsigned long long)(n * es));
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "gguf: %s: kv %zu '%s': array of %llu %s (%s) exceeds the %zu bytes remaining at "
            "offset %zu",
            c->path, idx, kb, (unsigned long long)n, gguf_type_name(et), bytes, c->size - c->pos, c->pos);
    }
    c->pos += (size_t)n * es;
    return PULSE_OK;
}

static pulse_status parse_tensor(cursor *c, pulse_gguf_tensor *t, size_t idx) {
    char nb[80], what[160];
    snprintf(what, sizeof what, "tensor %zu name", idx);
    pulse_status st = rd_str(c, &t->name, what);
    if (st) return st;
    if ((st = no_control_bytes(c, t->name, "tensor", idx, "name"))) return st;
    show(t->name, nb, sizeof nb);
    snprintf(what, sizeof what, "tensor %zu '%s' n_dims", idx, nb);
    if ((st = rd_u32(c, &t->n_dims, what))) return st;
    if (t->n_dims < 1 || t->n_dims > 4)
        return pulse_set_error(PULSE_ERR_FORMAT, "gguf: %s: tensor %zu '%s': n_dims %u not in 1..4", c->path,
                               idx, nb, t->n_dims);
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        snprintf(what, sizeof what, "tensor %zu '%s' ne[%u]", idx, nb, d);
        if ((st = rd_u64(c, &ne, what))) return st;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: tensor %zu '%s': ne[%u] = %llu must be in 1..2^63", c->path,
                                   idx, nb, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    uint32_t type;
    snprintf(what, sizeof what, "tensor %zu '%s' type", idx, nb);
    if ((st = rd_u32(c, &type, what))) return st;
    snprintf(what, sizeof what, "tensor %zu '%s' offset", idx, nb);
    if ((st = rd_u64(c, &t->offset, what))) return st;
    int64_t bs = pulse_ggml_block_size((int)type);
    if (bs <= 0)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "gguf: %s: tensor %zu '%s': unknown ggml type %u",
                               c->path, idx, nb, type);
    t->type = (pulse_ggml_type)type;
    if (t->ne[0] % bs != 0)
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "gguf: %s: tensor %zu '%s': ne[0] = %lld is not a multiple of the %s block size %lld", c->path,
            idx, nb, (long long)t->ne[0], pulse_ggml_type_name((int)type), (long long)bs);
    /* nbytes = row_size * ne1 * ne2 * ne3, overflow-checked; also the element count must fit int64 */
    uint64_t nel = (uint64_t)t->ne[0], nbytes = (uint64_t)(t->ne[0] / bs) * pulse_ggml_type_size((int)type);
    if ((uint64_t)(t->ne[0] / bs) > UINT64_MAX / pulse_ggml_type_size((int)type)) nbytes = UINT64_MAX;
    for (int d = 1; d < 4; d++) {
        uint64_t ne = (uint64_t)t->ne[d];
        if (nel > (uint64_t)INT64_MAX / ne || nbytes > UINT64_MAX / ne)
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: tensor %zu '%s': shape [%lld, %lld, %lld, %lld] overflows",
                                   c->path, idx, nb, (long long)t->ne[0], (long long)t->ne[1],
                                   (long long)t->ne[2], (long long)t->ne[3]);
        nel *= ne;
        nbytes *= ne;
    }
    if (nbytes > (uint64_t)SIZE_MAX)
        return pulse_set_error(PULSE_ERR_FORMAT, "gguf: %s: tensor %zu '%s': %llu bytes do not fit in memory",
                               c->path, idx, nb, (unsigned long long)nbytes);
    t->nbytes = (size_t)nbytes;
    return PULSE_OK;
}

static pulse_status gguf_parse(pulse_gguf *g, const char *path) {
    cursor cur = {g->map.data, g->map.size, 0, path};
    cursor *c = &cur;
    pulse_status st = need(c, 4, "magic");
    if (st) return st;
    if (memcmp(c->base, "GGUF", 4) != 0)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: magic: expected 'GGUF', found %02x %02x %02x %02x", path,
                               c->base[0], c->base[1], c->base[2], c->base[3]);
    c->pos = 4;
    if ((st = rd_u32(c, &g->version, "version"))) return st;
    if (g->version != 2 && g->version != 3)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "gguf: %s: version: expected 2 or 3, found %u", path,
                               g->version);
    uint64_t nt, nkv;
    if ((st = rd_u64(c, &nt, "tensor count"))) return st;
    if ((st = rd_u64(c, &nkv, "kv count"))) return st;
    /* a kv needs >= 8 (key len) + 1 (key) + 4 (type) + 1 bytes, a tensor info >= 8+1+4+8+4+8 */
    if (nkv > (c->size - c->pos) / 14)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: kv count %llu cannot fit in the %zu remaining bytes", path,
                               (unsigned long long)nkv, c->size - c->pos);
    if (nt > (c->size - c->pos) / 33 || nt >= UINT32_MAX)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: tensor count %llu cannot fit in the %zu remaining bytes", path,
                               (unsigned long long)nt, c->size - c->pos);
    g->kv = calloc((size_t)(nkv ? nkv : 1), sizeof *g->kv);
    g->tensors = calloc((size_t)(nt ? nt : 1), sizeof *g->tensors);
    if (!g->kv || !g->tensors || pulse_strmap_reserve(&g->kv_map, (size_t)nkv) ||
        pulse_strmap_reserve(&g->t_map, (size_t)nt))
        return pulse_set_error(PULSE_ERR_NOMEM, "gguf: %s: out of memory for %llu kv / %llu tensors", path,
                               (unsigned long long)nkv, (unsigned long long)nt);
    char nbuf[80];
    for (size_t i = 0; i < (size_t)nkv; i++) {
        g->n_kv = i + 1; /* so close() frees a partly built entry */
        if ((st = parse_kv(c, &g->kv[i], i, i ? &g->kv[i - 1] : NULL))) return st;
        int64_t dup = name_insert(&g->kv_map, g->kv[i].key, i);
        if (dup == -2) return pulse_set_error(PULSE_ERR_NOMEM, "gguf: %s: out of memory for the keys", path);
        if (dup >= 0)
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: kv %zu: duplicate key '%s' (first at kv %lld)", path, i,
                                   show(g->kv[i].key, nbuf, sizeof nbuf), (long long)dup);
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = pulse_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a = 0;
        if (g->kv[ai].type != PULSE_GGUF_UINT32 || (st = pulse_gguf_get_u32(g, "general.alignment", &a)))
            return pulse_set_error(PULSE_ERR_FORMAT, "gguf: %s: general.alignment: expected u32, found %s",
                                   path, gguf_type_name(g->kv[ai].type));
        if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 20))
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: general.alignment: expected a power of two <= 2^20, found %u",
                                   path, a);
        g->alignment = a;
    }
    for (size_t i = 0; i < (size_t)nt; i++) {
        g->n_tensors = i + 1;
        if ((st = parse_tensor(c, &g->tensors[i], i))) return st;
        int64_t dup = name_insert(&g->t_map, g->tensors[i].name, i);
        if (dup == -2)
            return pulse_set_error(PULSE_ERR_NOMEM, "gguf: %s: out of memory for the tensor names", path);
        if (dup >= 0)
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: tensor %zu: duplicate name '%s' (first at tensor %lld)", path,
                                   i, show(g->tensors[i].name, nbuf, sizeof nbuf), (long long)dup);
    }
    g->n_tensors = (size_t)nt;
    /* data section: header end rounded up to the alignment (may equal the file size when there are no
     * tensors, e.g. vocab-only files) */
    size_t ds = (c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (nt > 0 && ds > c->size)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "gguf: %s: data section starts at %zu, beyond the file size %zu", path, ds,
                               c->size);
    g->data_start = ds;
    size_t data_size = ds <= c->size ? c->size - ds : 0;
    for (size_t i = 0; i < (size_t)nt; i++) {
        pulse_gguf_tensor *t = &g->tensors[i];
        show(t->name, nbuf, sizeof nbuf);
        if (t->offset % g->alignment != 0)
            return pulse_set_error(PULSE_ERR_FORMAT,
                                   "gguf: %s: tensor %zu '%s': offset %llu is not a multiple of the "
                                   "alignment %u",
                                   path, i, nbuf, (unsigned long long)t->offset, g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            char end[48];
            if ((uint64_t)t->nbytes > UINT64_MAX - t->offset)
                snprintf(end, sizeof end, "2^64 or more");
            else
                snprintf(end, sizeof end, "%llu",
                         (unsigned long long)t->offset + (unsigned long long)t->nbytes);
            return pulse_set_error(
                PULSE_ERR_FORMAT,
                "gguf: %s: tensor %zu '%s': data range [%llu, %s) (%zu bytes) + data start "
                "%zu exceeds file size %zu",
                path, i, nbuf, (unsigned long long)t->offset, end, t->nbytes, ds, c->size);
        }
        t->data = g->map.data + ds + t->offset;
    }
    return PULSE_OK;
}

static pulse_status gguf_open_map(pulse_mmap map, int owns, const char *path, pulse_gguf **out) {
    *out = NULL;
    pulse_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (owns) pulse_mmap_close(&map);
        return pulse_set_error(PULSE_ERR_NOMEM, "gguf: %s: out of memory", path);
    }
    g->map = map;
    g->owns_map = owns;
    pulse_status st = gguf_parse(g, path);
    if (st) {
        pulse_gguf_close(g);
        return st;
    }
    *out = g;
    return PULSE_OK;
}

pulse_status pulse_gguf_open(const char *path, pulse_gguf **out) {
    *out = NULL;
    pulse_mmap m;
    pulse_status st = pulse_mmap_open(path, &m);
    if (st) return st;
    return gguf_open_map(m, 1, path, out);
}

pulse_status pulse_gguf_open_memory(const void *data, size_t size, pulse_gguf **out) {
    pulse_mmap m = {(const uint8_t *)(data ? data : ""), data ? size : 0};
    return gguf_open_map(m, 0, "<memory>", out);
}

void pulse_gguf_close(pulse_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (size_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    pulse_strmap_free(&g->kv_map);
    pulse_strmap_free(&g->t_map);
    if (g->owns_map) pulse_mmap_close(&g->map);
    free(g);
}

uint32_t pulse_gguf_version(const pulse_gguf *g) {
    return g->version;
}
size_t pulse_gguf_n_kv(const pulse_gguf *g) {
    return g->n_kv;
}
size_t pulse_gguf_n_tensors(const pulse_gguf *g) {
    return g->n_tensors;
}
uint32_t pulse_gguf_alignment(const pulse_gguf *g) {
    return g->alignment;
}
size_t pulse_gguf_data_offset(const pulse_gguf *g) {
    return g->data_start;
}
size_t pulse_gguf_file_size(const pulse_gguf *g) {
    return g->map.size;
}

pulse_gguf_str pulse_gguf_kv_key(const pulse_gguf *g, size_t i) {
    pulse_gguf_str none = {"", 0};
    return i < g->n_kv ? g->kv[i].key : none;
}

pulse_gguf_type pulse_gguf_kv_type(const pulse_gguf *g, size_t i) {
    return i < g->n_kv ? g->kv[i].type : (pulse_gguf_type)-1;
}

int64_t pulse_gguf_find_key(const pulse_gguf *g, const char *key) {
    if (!g->kv || !key) return -1;
    return pulse_strmap_get(&g->kv_map, key, strlen(key));
}

static pulse_status lookup(const pulse_gguf *g, const char *key, const gguf_kv **kv) {
    int64_t i = pulse_gguf_find_key(g, key);
    if (i < 0) return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s' not found", key);
    *kv = &g->kv[i];
    return PULSE_OK;
}

/* Read an integer scalar of GGUF type t at p: signed flag + magnitudes as int64/uint64. */
static int read_int(uint32_t t, const uint8_t *p, int64_t *sv, uint64_t *uv, int *is_signed) {
    *is_signed = 0;
    switch (t) {
    case PULSE_GGUF_UINT8:
    case PULSE_GGUF_BOOL:
        *uv = p[0];
        break;
    case PULSE_GGUF_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        *sv = v;
        *is_signed = 1;
        break;
    }
    case PULSE_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *uv = v;
        break;
    }
    case PULSE_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *sv = v;
        *is_signed = 1;
        break;
    }
    case PULSE_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *uv = v;
        break;
    }
    case PULSE_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *sv = v;
        *is_signed = 1;
        break;
    }
    case PULSE_GGUF_UINT64:
        memcpy(uv, p, 8);
        break;
    case PULSE_GGUF_INT64:
        memcpy(sv, p, 8);
        *is_signed = 1;
        break;
    default:
        return 0;
    }
    if (*is_signed && *sv >= 0) {
        *uv = (uint64_t)*sv;
        *is_signed = 0;
    }
    return 1;
}

pulse_status pulse_gguf_get_u32(const pulse_gguf *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup(g, key, &kv);
    if (st) return st;
    int64_t sv = 0;
    uint64_t uv = 0;
    int neg;
    if (kv->type == PULSE_GGUF_BOOL || !read_int(kv->type, kv->val, &sv, &uv, &neg))
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected an integer, found %s", key,
                               gguf_type_name(kv->type));
    if (neg || uv > UINT32_MAX)
        return pulse_set_error(PULSE_ERR_RANGE, "gguf: key '%s': value %s%llu does not fit u32", key,
                               neg ? "-" : "",
                               neg ? (unsigned long long)(-(sv + 1)) + 1 : (unsigned long long)uv);
    *out = (uint32_t)uv;
    return PULSE_OK;
}

pulse_status pulse_gguf_get_i64(const pulse_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup(g, key, &kv);
    if (st) return st;
    int64_t sv = 0;
    uint64_t uv = 0;
    int neg;
    if (kv->type == PULSE_GGUF_BOOL || !read_int(kv->type, kv->val, &sv, &uv, &neg))
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected an integer, found %s", key,
                               gguf_type_name(kv->type));
    if (neg) {
        *out = sv;
        return PULSE_OK;
    }
    if (uv > (uint64_t)INT64_MAX)
        return pulse_set_error(PULSE_ERR_RANGE, "gguf: key '%s': value %llu does not fit i64", key,
                               (unsigned long long)uv);
    *out = (int64_t)uv;
    return PULSE_OK;
}

pulse_status pulse_gguf_get_f32(const pulse_gguf *g, const char *key, float *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type == PULSE_GGUF_FLOAT32) {
        memcpy(out, kv->val, 4);
        return PULSE_OK;
    }
    if (kv->type == PULSE_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
        return PULSE_OK;
    }
    return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected f32/f64, found %s", key,
                           gguf_type_name(kv->type));
}

pulse_status pulse_gguf_get_bool(const pulse_gguf *g, const char *key, int *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != PULSE_GGUF_BOOL)
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected bool, found %s", key,
                               gguf_type_name(kv->type));
    *out = kv->val[0] != 0;
    return PULSE_OK;
}

static pulse_gguf_str str_at(const uint8_t *p) {
    pulse_gguf_str s;
    memcpy(&s.len, p, 8);
    s.ptr = (const char *)p + 8;
    return s;
}

pulse_status pulse_gguf_get_str(const pulse_gguf *g, const char *key, pulse_gguf_str *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup(g, key, &kv);
    if (st) return st;
    if (kv->type != PULSE_GGUF_STRING)
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected string, found %s", key,
                               gguf_type_name(kv->type));
    *out = str_at(kv->val);
    return PULSE_OK;
}

static pulse_status lookup_arr(const pulse_gguf *g, const char *key, const gguf_kv **kv) {
    pulse_status st = lookup(g, key, kv);
    if (st) return st;
    if ((*kv)->type != PULSE_GGUF_ARRAY)
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected array, found %s", key,
                               gguf_type_name((*kv)->type));
    return PULSE_OK;
}

pulse_status pulse_gguf_get_arr_info(const pulse_gguf *g, const char *key, pulse_gguf_type *elem_type,
                                     uint64_t *count) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup_arr(g, key, &kv);
    if (st) return st;
    if (elem_type) *elem_type = kv->el_type;
    if (count) *count = kv->count;
    return PULSE_OK;
}

pulse_status pulse_gguf_kv_arr_info(const pulse_gguf *g, size_t i, pulse_gguf_type *elem_type,
                                    uint64_t *count) {
    if (i >= g->n_kv || g->kv[i].type != PULSE_GGUF_ARRAY)
        return pulse_set_error(PULSE_ERR_ARG, "gguf: kv %zu is not an array", i);
    if (elem_type) *elem_type = g->kv[i].el_type;
    if (count) *count = g->kv[i].count;
    return PULSE_OK;
}

pulse_status pulse_gguf_get_arr_str(const pulse_gguf *g, const char *key, uint64_t i, pulse_gguf_str *out) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup_arr(g, key, &kv);
    if (st) return st;
    if (kv->el_type != PULSE_GGUF_STRING)
        return pulse_set_error(PULSE_ERR_ARG, "gguf: key '%s': expected a string array, found an array of %s",
                               key, gguf_type_name(kv->el_type));
    if (i >= kv->count)
        return pulse_set_error(PULSE_ERR_RANGE, "gguf: key '%s': index %llu out of range (%llu strings)", key,
                               (unsigned long long)i, (unsigned long long)kv->count);
    *out = str_at(kv->val + kv->str_off[i]);
    return PULSE_OK;
}

static pulse_status arr_num(const pulse_gguf *g, const char *key, float *of, int32_t *oi, uint64_t count) {
    const gguf_kv *kv = NULL;
    pulse_status st = lookup_arr(g, key, &kv);
    if (st) return st;
    size_t es = scalar_size(kv->el_type);
    if (es == 0)
        return pulse_set_error(PULSE_ERR_ARG,
                               "gguf: key '%s': expected a numeric array, found an array of %s", key,
                               gguf_type_name(kv->el_type));
    if (count > kv->count)
        return pulse_set_error(PULSE_ERR_RANGE, "gguf: key '%s': asked for %llu elements, array has %llu",
                               key, (unsigned long long)count, (unsigned long long)kv->count);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *p = kv->val + i * es;
        double v;
        if (kv->el_type == PULSE_GGUF_FLOAT32) {
            float f;
            memcpy(&f, p, 4);
            v = f;
        } else if (kv->el_type == PULSE_GGUF_FLOAT64) {
            memcpy(&v, p, 8);
        } else {
            int64_t sv = 0;
            uint64_t uv = 0;
            int neg;
            read_int(kv->el_type, p, &sv, &uv, &neg);
            v = neg ? (double)sv : (double)uv;
        }
        if (of) of[i] = (float)v;
        if (oi) {
            if (!(v >= (double)INT32_MIN && v <= (double)INT32_MAX))
                return pulse_set_error(PULSE_ERR_RANGE, "gguf: key '%s': element %llu = %g does not fit i32",
                                       key, (unsigned long long)i, v);
            oi[i] = (int32_t)v;
        }
    }
    return PULSE_OK;
}

pulse_status pulse_gguf_get_arr_f32(const pulse_gguf *g, const char *key, float *out, uint64_t count) {
    return arr_num(g, key, out, NULL, count);
}

pulse_status pulse_gguf_get_arr_i32(const pulse_gguf *g, const char *key, int32_t *out, uint64_t count) {
    return arr_num(g, key, NULL, out, count);
}

const pulse_gguf_tensor *pulse_gguf_tensor_at(const pulse_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const pulse_gguf_tensor *pulse_gguf_find_tensor(const pulse_gguf *g, const char *name) {
    if (!g->tensors) return NULL;
    int64_t i = name ? pulse_strmap_get(&g->t_map, name, strlen(name)) : -1;
    return i < 0 ? NULL : &g->tensors[i];
}

int pulse_gguf_str_eq(pulse_gguf_str s, const char *c) {
    size_t l = strlen(c);
    return s.len == l && memcmp(s.ptr, c, l) == 0;
}

const char *pulse_gguf_type_name(int t) {
    return t >= 0 ? gguf_type_name((uint32_t)t) : "invalid";
}

/* Short human-readable rendering of kv i's value: scalars in full, strings up to n bytes, arrays as
 * "[count x type]" followed by their first elements. */
int pulse_gguf_kv_format(const pulse_gguf *g, size_t i, char *buf, size_t n) {
    if (!buf || n == 0) return 0;
    buf[0] = 0;
    if (i >= g->n_kv) return 0;
    const gguf_kv *kv = &g->kv[i];
    uint32_t t = kv->type;
    const uint8_t *p = kv->val;
    uint64_t count = 1;
    size_t w = 0;
    if (t == PULSE_GGUF_ARRAY) {
        t = kv->el_type;
        count = kv->count;
        w += (size_t)snprintf(buf, n, "[%llu x %s]", (unsigned long long)count, gguf_type_name(t));
    }
    for (uint64_t k = 0; k < count && k < 8 && w + 1 < n; k++) {
        const char *sep = kv->type == PULSE_GGUF_ARRAY ? " " : "";
        if (t == PULSE_GGUF_STRING) {
            pulse_gguf_str s = kv->type == PULSE_GGUF_ARRAY ? str_at(p + kv->str_off[k]) : str_at(p);
            char sb[96];
            w += (size_t)snprintf(buf + w, n - w, "%s\"%s%s\"", sep, show(s, sb, sizeof sb),
                                  s.len > 95 ? "..." : "");
        } else if (t == PULSE_GGUF_FLOAT32) {
            float f;
            memcpy(&f, p + k * 4, 4);
            w += (size_t)snprintf(buf + w, n - w, "%s%g", sep, (double)f);
        } else if (t == PULSE_GGUF_FLOAT64) {
            double d;
            memcpy(&d, p + k * 8, 8);
            w += (size_t)snprintf(buf + w, n - w, "%s%g", sep, d);
        } else if (t == PULSE_GGUF_BOOL) {
            w += (size_t)snprintf(buf + w, n - w, "%s%s", sep, p[k] ? "true" : "false");
        } else {
            int64_t sv = 0;
            uint64_t uv = 0;
            int neg;
            read_int(t, p + k * scalar_size(t), &sv, &uv, &neg);
            if (neg)
                w += (size_t)snprintf(buf + w, n - w, "%s%lld", sep, (long long)sv);
            else
                w += (size_t)snprintf(buf + w, n - w, "%s%llu", sep, (unsigned long long)uv);
        }
    }
    if (count > 8 && w + 1 < n) w += (size_t)snprintf(buf + w, n - w, " ...");
    return (int)(w < n ? w : n - 1);
}

pulse_status pulse_gguf_kv_raw(const pulse_gguf *g, size_t i, const void **value, size_t *nbytes) {
    if (i >= g->n_kv) return pulse_set_error(PULSE_ERR_ARG, "gguf: kv %zu outside [0, %zu)", i, g->n_kv);
    const gguf_kv *kv = &g->kv[i];
    if (kv->type == PULSE_GGUF_STRING) {
        *value = kv->val;
        *nbytes = 8 + (size_t)str_at(kv->val).len;
    } else if (kv->type != PULSE_GGUF_ARRAY) {
        *value = kv->val;
        *nbytes = scalar_size(kv->type);
    } else {
        size_t n = 0;
        if (kv->el_type == PULSE_GGUF_STRING) {
            if (kv->count)
                n = (size_t)kv->str_off[kv->count - 1] + 8 +
                    (size_t)str_at(kv->val + kv->str_off[kv->count - 1]).len;
        } else
            n = (size_t)kv->count * scalar_size(kv->el_type);
        *value = kv->val - 12; /* element type (u32) and count (u64) precede the elements */
        *nbytes = 12 + n;
    }
    return PULSE_OK;
}
