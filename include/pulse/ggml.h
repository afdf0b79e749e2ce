/* pulse/ggml.h — the ggml tensor types as GGUF files store them: numbering, names, block and type sizes (the
 * type table of ggml's type traits, without the kernels). Owned by core: the GGUF reader needs it; which
 * types the kernels can multiply is pulse/quant.h's pulse_ggml_type_supported. */
#ifndef PULSE_GGML_H
#define PULSE_GGML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Numbering is ggml's (it is what GGUF files store). */
typedef enum {
    PULSE_GGML_F32 = 0,
    PULSE_GGML_F16 = 1,
    PULSE_GGML_Q4_0 = 2,
    PULSE_GGML_Q4_1 = 3,
    PULSE_GGML_Q5_0 = 6,
    PULSE_GGML_Q5_1 = 7,
    PULSE_GGML_Q8_0 = 8,
    PULSE_GGML_Q8_1 = 9,
    PULSE_GGML_Q2_K = 10,
    PULSE_GGML_Q3_K = 11,
    PULSE_GGML_Q4_K = 12,
    PULSE_GGML_Q5_K = 13,
    PULSE_GGML_Q6_K = 14,
    PULSE_GGML_Q8_K = 15,
    PULSE_GGML_BF16 = 30,
} pulse_ggml_type;

const char *pulse_ggml_type_name(int type); /* "q4_K", ... or "unknown" */
int64_t pulse_ggml_block_size(int type);    /* elements per block (1 for F32/F16/BF16), 0 if unknown */
size_t pulse_ggml_type_size(int type);      /* bytes per block, 0 if unknown */
/* Bytes of a row of n elements (n must be a multiple of the block size); 0 if invalid. */
size_t pulse_ggml_row_size(int type, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
