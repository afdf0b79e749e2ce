/* pulse/safetensors.h — reader (mmap, bounds-checked) and atomic writer for the safetensors format:
 *   u64 little-endian header length N | N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [b, e]},
 *   "__metadata__": {str: str}} | data (offsets relative to the end of the header).
 * Every offset, shape and dtype is checked against the file before any tensor is exposed. */
#ifndef PULSE_SAFETENSORS_H
#define PULSE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PULSE_ST_F32 = 0,
    PULSE_ST_F16 = 1,
    PULSE_ST_BF16 = 2,
    PULSE_ST_OTHER = 3, /* any other dtype (I64, U8, F64, ...): listed, but not convertible to f32 */
} pulse_st_dtype;

#define PULSE_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    pulse_st_dtype dtype;
    const char *dtype_name; /* as in the file: "F32", "BF16", "I64", ... */
    int n_dims;
    int64_t shape[PULSE_ST_MAX_DIMS];
    size_t n_elements;
    const void *data; /* inside the mapping; valid until close */
    size_t nbytes;
} pulse_st_tensor;

typedef struct pulse_safetensors pulse_safetensors;

pulse_status pulse_safetensors_open(pulse_safetensors **out, const char *path);
void pulse_safetensors_close(pulse_safetensors *st);
int pulse_safetensors_count(const pulse_safetensors *st);
const pulse_st_tensor *pulse_safetensors_at(const pulse_safetensors *st, int i);
const pulse_st_tensor *pulse_safetensors_find(const pulse_safetensors *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *pulse_safetensors_metadata(const pulse_safetensors *st, const char *key);
/* Convert a tensor (F32/F16/BF16) to f32. When n_dims > 0 the tensor's shape must equal shape[0..n_dims);
 * n_dims == 0 only requires n_elements == n. Errors name the file, the tensor and expected vs found. */
pulse_status pulse_safetensors_read_f32(const pulse_safetensors *st, const char *name, float *dst, size_t n,
                                        int n_dims, const int64_t *shape);

/* ---- writer ---- */
typedef struct {
    const char *name;
    const float *data; /* written as F32 */
    int n_dims;
    int64_t shape[PULSE_ST_MAX_DIMS];
} pulse_st_out;

/* Write tensors (and optional metadata key/value pairs, meta[2*i], meta[2*i+1]) to path atomically
 * (path.tmp, fsync, rename). Names must be unique. */
pulse_status pulse_safetensors_write(const char *path, const pulse_st_out *tensors, int n,
                                     const char *const *meta, int n_meta);

#ifdef __cplusplus
}
#endif
#endif
