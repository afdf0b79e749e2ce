/* tests/gguf_build.h — a tiny in-memory GGUF writer for tests and the fuzz seed corpus: append metadata and
 * tensors, then gb_finish() lays out the header, alignment padding and data section. Knobs let a test write
 * deliberately broken files. Not part of the library (the library only reads GGUF). */
#ifndef PULSE_TESTS_GGUF_BUILD_H
#define PULSE_TESTS_GGUF_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gb_buf;

static inline void gb_put(gb_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        b->p = (uint8_t *)realloc(b->p, c);
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gb_u32(gb_buf *b, uint32_t v) {
    gb_put(b, &v, 4);
}
static inline void gb_u64(gb_buf *b, uint64_t v) {
    gb_put(b, &v, 8);
}
static inline void gb_str(gb_buf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}

typedef struct {
    gb_buf kv, ti, data;
    uint64_t n_kv, n_tensors;
    uint32_t version, alignment;
} gguf_builder;

static inline void gb_init(gguf_builder *g) {
    memset(g, 0, sizeof *g);
    g->version = 3;
    g->alignment = 32;
}

static inline void gb_kv_u32(gguf_builder *g, const char *k, uint32_t v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 4);
    gb_u32(&g->kv, v);
    g->n_kv++;
}
static inline void gb_kv_i32(gguf_builder *g, const char *k, int32_t v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 5);
    gb_put(&g->kv, &v, 4);
    g->n_kv++;
}
static inline void gb_kv_f32(gguf_builder *g, const char *k, float v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 6);
    gb_put(&g->kv, &v, 4);
    g->n_kv++;
}
static inline void gb_kv_bool(gguf_builder *g, const char *k, int v) {
    uint8_t b = (uint8_t)(v != 0);
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 7);
    gb_put(&g->kv, &b, 1);
    g->n_kv++;
}
static inline void gb_kv_str(gguf_builder *g, const char *k, const char *v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 8);
    gb_str(&g->kv, v);
    g->n_kv++;
}
static inline void gb_kv_u64(gguf_builder *g, const char *k, uint64_t v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 10);
    gb_u64(&g->kv, v);
    g->n_kv++;
}
static inline void gb_kv_f64(gguf_builder *g, const char *k, double v) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 12);
    gb_put(&g->kv, &v, 8);
    g->n_kv++;
}
static inline void gb_kv_arr_str(gguf_builder *g, const char *k, const char *const *v, uint64_t n) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 9);
    gb_u32(&g->kv, 8);
    gb_u64(&g->kv, n);
    for (uint64_t i = 0; i < n; i++) gb_str(&g->kv, v[i]);
    g->n_kv++;
}
/* numeric array: elem_type a GGUF scalar type, elem_size its size */
static inline void gb_kv_arr(gguf_builder *g, const char *k, uint32_t elem_type, const void *v,
                             size_t elem_size, uint64_t n) {
    gb_str(&g->kv, k);
    gb_u32(&g->kv, 9);
    gb_u32(&g->kv, elem_type);
    gb_u64(&g->kv, n);
    gb_put(&g->kv, v, elem_size * n);
    g->n_kv++;
}

/* Tensor with its data (nbytes), placed at the next aligned offset of the data section. */
static inline void gb_tensor(gguf_builder *g, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                             const void *data, size_t nbytes) {
    while (g->data.n % g->alignment) gb_put(&g->data, "", 1);
    gb_str(&g->ti, name);
    gb_u32(&g->ti, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++) gb_u64(&g->ti, (uint64_t)ne[d]);
    gb_u32(&g->ti, type);
    gb_u64(&g->ti, g->data.n);
    gb_put(&g->data, data, nbytes);
    g->n_tensors++;
}

/* The whole file; caller frees *out. */
static inline size_t gb_finish(gguf_builder *g, uint8_t **out) {
    gb_buf f = {0};
    gb_put(&f, "GGUF", 4);
    gb_u32(&f, g->version);
    gb_u64(&f, g->n_tensors);
    gb_u64(&f, g->n_kv);
    gb_put(&f, g->kv.p, g->kv.n);
    gb_put(&f, g->ti.p, g->ti.n);
    if (g->n_tensors)
        while (f.n % g->alignment) gb_put(&f, "", 1);
    gb_put(&f, g->data.p, g->data.n);
    free(g->kv.p);
    free(g->ti.p);
    free(g->data.p);
    memset(g, 0, sizeof *g);
    *out = f.p;
    return f.n;
}

#endif
