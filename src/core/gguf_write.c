/* core/gguf_write.c — owns the GGUF v3 writer: metadata key/values and tensors appended in memory, then one
 * file laid out as the reader (src/core/gguf.c) and ggml expect (header, key/values, tensor infos, padding to
 * general.alignment = 32, data section with every tensor aligned) and written atomically (PATH.tmp, fsync,
 * rename). Used for LoRA adapter files (src/lm/lora.c) and merged model exports. */
#include "pulse/gguf.h"

#include <stdlib.h>
#include <string.h>

#define GW_ALIGN 32u

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} gw_buf;

struct pulse_gguf_writer {
    gw_buf kv, ti, data;
    uint64_t n_kv, n_tensors;
};

static void put(gw_buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t c = b->cap ? b->cap : 256;
        while (c - b->n < n) {
            if (c > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            c *= 2;
        }
        uint8_t *np = realloc(b->p, c);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(gw_buf *b, uint32_t v) {
    put(b, &v, 4);
}
static void put_u64(gw_buf *b, uint64_t v) {
    put(b, &v, 8);
}
static void put_str(gw_buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

pulse_status pulse_gguf_writer_new(pulse_gguf_writer **out) {
    *out = pulse_calloc(1, sizeof **out);
    return *out ? PULSE_OK : pulse_set_error(PULSE_ERR_NOMEM, "gguf writer: out of memory");
}

void pulse_gguf_writer_free(pulse_gguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    free(w->ti.p);
    free(w->data.p);
    free(w);
}

static pulse_status kv_head(pulse_gguf_writer *w, const char *key, pulse_gguf_type t) {
    if (!key || !*key) return pulse_set_error(PULSE_ERR_ARG, "gguf writer: empty key");
    put_str(&w->kv, key);
    put_u32(&w->kv, (uint32_t)t);
    w->n_kv++;
    return PULSE_OK;
}

pulse_status pulse_gguf_writer_kv_str(pulse_gguf_writer *w, const char *key, const char *value) {
    pulse_status st = kv_head(w, key, PULSE_GGUF_STRING);
    if (!st) put_str(&w->kv, value ? value : "");
    return st;
}

pulse_status pulse_gguf_writer_kv_u32(pulse_gguf_writer *w, const char *key, uint32_t value) {
    pulse_status st = kv_head(w, key, PULSE_GGUF_UINT32);
    if (!st) put_u32(&w->kv, value);
    return st;
}

pulse_status pulse_gguf_writer_kv_f32(pulse_gguf_writer *w, const char *key, float value) {
    pulse_status st = kv_head(w, key, PULSE_GGUF_FLOAT32);
    if (!st) put(&w->kv, &value, 4);
    return st;
}

pulse_status pulse_gguf_writer_kv_raw(pulse_gguf_writer *w, const char *key, pulse_gguf_type type,
                                      const void *value, size_t nbytes) {
    pulse_status st = kv_head(w, key, type);
    if (!st) put(&w->kv, value, nbytes);
    return st;
}

pulse_status pulse_gguf_writer_tensor(pulse_gguf_writer *w, const char *name, pulse_ggml_type type,
                                      int n_dims, const int64_t *ne, const void *data, size_t nbytes) {
    if (!name || !*name || n_dims < 1 || n_dims > 4)
        return pulse_set_error(PULSE_ERR_ARG, "gguf writer: tensor '%s': bad name or %d dimensions",
                               name ? name : "", n_dims);
    int64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= ne[d];
    const size_t rb = pulse_ggml_row_size((int)type, ne[0]);
    if (rb == 0 || rb * (size_t)rows != nbytes)
        return pulse_set_error(PULSE_ERR_ARG, "gguf writer: tensor '%s': %zu bytes for %s [%lld x %lld]",
                               name, nbytes, pulse_ggml_type_name((int)type), (long long)ne[0],
                               (long long)rows);
    while (w->data.n % GW_ALIGN) put(&w->data, "", 1);
    put_str(&w->ti, name);
    put_u32(&w->ti, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++) put_u64(&w->ti, (uint64_t)ne[d]);
    put_u32(&w->ti, (uint32_t)type);
    put_u64(&w->ti, w->data.n);
    put(&w->data, data, nbytes);
    w->n_tensors++;
    return PULSE_OK;
}

pulse_status pulse_gguf_writer_save(pulse_gguf_writer *w, const char *path) {
    gw_buf f = {0};
    put(&f, "GGUF", 4);
    put_u32(&f, 3);
    put_u64(&f, w->n_tensors);
    put_u64(&f, w->n_kv);
    put(&f, w->kv.p, w->kv.n);
    put(&f, w->ti.p, w->ti.n);
    while (f.n % GW_ALIGN) put(&f, "", 1);
    put(&f, w->data.p, w->data.n);
    pulse_status st;
    if (f.oom || w->kv.oom || w->ti.oom || w->data.oom)
        st = pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory assembling the GGUF file", path);
    else
        st = pulse_write_file_atomic(path, f.p, f.n);
    free(f.p);
    return st;
}
