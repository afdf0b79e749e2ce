/* kernels/attend_f16.h — the decoder's attention of one query position (a group of query heads sharing one
 * kv head) over an f16 paged KV cache, as ggml's non-flash CPU path computes it, rounding for rounding
 * (src/kernels/attend_f16.c says how). Called by lm_attend (src/lm/attend.c); tests/test_kernels_attend.c
 * compares every instruction level with the scalar reference bit for bit. Not a public header. */
#ifndef PULSE_KERNELS_ATTEND_F16_H
#define PULSE_KERNELS_ATTEND_F16_H

#include <stddef.h>
#include <stdint.h>

/* One kv head's K and V rows (f16, head_dim values each) of one sequence in a paged cache: position j's row
 * starts at pool + blocks[j / B] * blk + (j % B) * row, k and v already offset to the layer and kv head.
 * kt, vt (may be NULL): the same K and V transposed within each block of B = 16 positions, K[j][t] at
 * kt + blocks[j / 16] * blk + t * 16 + j % 16 (offset to the layer and kv head as k): a dimension's 16
 * positions side by side, which the AVX-512 KQ and P.V read as one vector (pk_attend_wants_transposed). */
typedef struct pk_kv_span {
    const uint16_t *k, *v;
    const int *blocks;
    size_t blk, row;
    int B;
    const uint16_t *kt, *vt;
    int v_finite; /* every V value of the cache is finite (the transposed P.V paths need it; 0: not used) */
} pk_kv_span;

/* Does pk_attend_f16 read transposed copies of K and V (kt, vt) at blocks of B positions and head_dim HD on
 * this CPU (AVX-512, B = 16, HD a multiple of 16)? A cache keeps them only then. */
int pk_attend_wants_transposed(int B, int HD);

/* floats of scratch one call needs for ng heads of head_dim HD and positions below n_ctx */
size_t pk_attend_scratch_floats(int ng, int n_ctx, int HD);

/* out (ng, HD) = softmax(scale * q . K) . V over positions [lo, p] (p < n_ctx), for the ng query heads q16
 * (ng, HD) f16: KQ in R lanes (16: tinyBLAS, 2 or more tokens of the sequence in the batch; 64:
 * ggml_vec_dot_f16, one), softmax in f32 with 16-position partial sums in f64 (chunks from position 0),
 * probabilities rounded to f16, P.V in the same R lanes over positions. The fastest path the CPU allows
 * (pulse_cpu_get: AVX-512, AVX2, scalar); every one gives the bits of pk_attend_f16_ref. */
void pk_attend_f16(float *out, const uint16_t *q16, int ng, int HD, const pk_kv_span *kv, int lo, int p,
                   int R, float scale, int n_ctx, float *scratch);
/* the scalar reference: the same numbers, one element at a time */
void pk_attend_f16_ref(float *out, const uint16_t *q16, int ng, int HD, const pk_kv_span *kv, int lo, int p,
                       int R, float scale, int n_ctx, float *scratch);

#endif
