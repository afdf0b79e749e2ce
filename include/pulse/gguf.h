/* pulse/gguf.h — read-only GGUF v2/v3 reader over mmap. Every offset, size and count is bounds-checked at
 * open: a truncated or hostile file gives PULSE_ERR_FORMAT naming the field, never a crash or a huge
 * allocation. Strings are not NUL-terminated in GGUF: they come back as (pointer, length) views into the
 * mapping. */
#ifndef PULSE_GGUF_H
#define PULSE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PULSE_GGUF_UINT8 = 0,
    PULSE_GGUF_INT8 = 1,
    PULSE_GGUF_UINT16 = 2,
    PULSE_GGUF_INT16 = 3,
    PULSE_GGUF_UINT32 = 4,
    PULSE_GGUF_INT32 = 5,
    PULSE_GGUF_FLOAT32 = 6,
    PULSE_GGUF_BOOL = 7,
    PULSE_GGUF_STRING = 8,
    PULSE_GGUF_ARRAY = 9,
    PULSE_GGUF_UINT64 = 10,
    PULSE_GGUF_INT64 = 11,
    PULSE_GGUF_FLOAT64 = 12,
} pulse_gguf_type;

typedef struct {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} pulse_gguf_str;

typedef struct {
    pulse_gguf_str name;
    pulse_ggml_type type;
    uint32_t n_dims;
    int64_t ne[4];    /* ne[0] is the contiguous (row) dimension, as in ggml */
    uint64_t offset;  /* relative to the data section */
    const void *data; /* into the mapping, aligned per general.alignment */
    size_t nbytes;
} pulse_gguf_tensor;

typedef struct pulse_gguf pulse_gguf;

pulse_status pulse_gguf_open(const char *path, pulse_gguf **out);
void pulse_gguf_close(pulse_gguf *g);

uint32_t pulse_gguf_version(const pulse_gguf *g);
size_t pulse_gguf_n_kv(const pulse_gguf *g);
size_t pulse_gguf_n_tensors(const pulse_gguf *g);

/* Metadata by index: key, value type; for arrays also the element type and count. */
pulse_gguf_str pulse_gguf_kv_key(const pulse_gguf *g, size_t i);
pulse_gguf_type pulse_gguf_kv_type(const pulse_gguf *g, size_t i);
/* Index of key, or -1. */
int64_t pulse_gguf_find_key(const pulse_gguf *g, const char *key);

/* Typed getters by key. Integer getters accept any integer type that fits (else PULSE_ERR_RANGE);
 * float getters accept float32/float64. A missing key is PULSE_ERR_ARG naming the key. */
pulse_status pulse_gguf_get_u32(const pulse_gguf *g, const char *key, uint32_t *out);
pulse_status pulse_gguf_get_i64(const pulse_gguf *g, const char *key, int64_t *out);
pulse_status pulse_gguf_get_f32(const pulse_gguf *g, const char *key, float *out);
pulse_status pulse_gguf_get_bool(const pulse_gguf *g, const char *key, int *out);
pulse_status pulse_gguf_get_str(const pulse_gguf *g, const char *key, pulse_gguf_str *out);
/* Arrays: element type and count. */
pulse_status pulse_gguf_get_arr_info(const pulse_gguf *g, const char *key, pulse_gguf_type *elem_type,
                                     uint64_t *count);
/* Element i of a string array (O(1): offsets are indexed at open). */
pulse_status pulse_gguf_get_arr_str(const pulse_gguf *g, const char *key, uint64_t i, pulse_gguf_str *out);
/* Numeric array copied out converted to float / int32 (caller provides count elements). */
pulse_status pulse_gguf_get_arr_f32(const pulse_gguf *g, const char *key, float *out, uint64_t count);
pulse_status pulse_gguf_get_arr_i32(const pulse_gguf *g, const char *key, int32_t *out, uint64_t count);

const pulse_gguf_tensor *pulse_gguf_tensor_at(const pulse_gguf *g, size_t i);
const pulse_gguf_tensor *pulse_gguf_find_tensor(const pulse_gguf *g, const char *name); /* NULL if absent */

/* Compare a GGUF string view with a C string. */
int pulse_gguf_str_eq(pulse_gguf_str s, const char *c);

/* ---- additions (lmcore) ---- */
/* Parse a GGUF image already in memory (not copied: data must outlive the handle). For fuzzing and tests. */
pulse_status pulse_gguf_open_memory(const void *data, size_t size, pulse_gguf **out);
uint32_t pulse_gguf_alignment(const pulse_gguf *g);
size_t pulse_gguf_data_offset(const pulse_gguf *g); /* start of the data section in the file */
size_t pulse_gguf_file_size(const pulse_gguf *g);
/* Array element type and count of kv i (PULSE_ERR_ARG when kv i is not an array). */
pulse_status pulse_gguf_kv_arr_info(const pulse_gguf *g, size_t i, pulse_gguf_type *elem_type,
                                    uint64_t *count);
/* Render kv i's value into buf (scalars in full, strings/arrays abbreviated); returns the length written. */
int pulse_gguf_kv_format(const pulse_gguf *g, size_t i, char *buf, size_t n);
const char *pulse_gguf_type_name(int type); /* "u32", "string", ... */
/* kv i's value as the file encodes it (after its type field: an array's element type, count and elements),
 * for copying metadata into a new file (pulse_gguf_writer_kv_raw). */
pulse_status pulse_gguf_kv_raw(const pulse_gguf *g, size_t i, const void **value, size_t *nbytes);

/* ---- writer (GGUF v3, alignment 32; src/core/gguf_write.c) ----
 * Key/values and tensors are appended in memory (tensor data copied), then pulse_gguf_writer_save writes the
 * whole file atomically (PATH.tmp, fsync, rename). ne[0] is the contiguous dimension, as in the reader. */
typedef struct pulse_gguf_writer pulse_gguf_writer;
pulse_status pulse_gguf_writer_new(pulse_gguf_writer **out);
void pulse_gguf_writer_free(pulse_gguf_writer *w);
pulse_status pulse_gguf_writer_kv_str(pulse_gguf_writer *w, const char *key, const char *value);
pulse_status pulse_gguf_writer_kv_u32(pulse_gguf_writer *w, const char *key, uint32_t value);
pulse_status pulse_gguf_writer_kv_f32(pulse_gguf_writer *w, const char *key, float value);
/* A value already in GGUF's encoding (e.g. copied from a reader with pulse_gguf_kv_raw). */
pulse_status pulse_gguf_writer_kv_raw(pulse_gguf_writer *w, const char *key, pulse_gguf_type type,
                                      const void *value, size_t nbytes);
/* nbytes must be the row size of type for ne[0] times the other dimensions. */
pulse_status pulse_gguf_writer_tensor(pulse_gguf_writer *w, const char *name, pulse_ggml_type type,
                                      int n_dims, const int64_t *ne, const void *data, size_t nbytes);
pulse_status pulse_gguf_writer_save(pulse_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
