/* kernels/internal.h — helpers shared by the float kernels in src/kernels/ (not public): OpenMP thresholds
 * and a deterministic blocked double reduction whose result does not depend on the thread count.
 * Why two exps (this pk_expf and ggml_exact.h's pk_ggml_expf): the decoder must round as llama.cpp does and
 * ggml's exp differs from this one in 58% of inputs on [-87, 0] (up to 2.4e-7 relative), while ggml's,
 * written scalar, does not vectorise in these `omp simd` loops (a branch and ldexpf): 82 vs 11 ns per element
 * measured with GCC -O2 -march=x86-64-v3, for no gain in accuracy (2.2e-7 vs 7.8e-8 max relative error). */
#ifndef PULSE_KERNELS_INTERNAL_H
#define PULSE_KERNELS_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "pulse/kernels.h"

/* Parallelise an elementwise loop only above this many elements (below, thread start-up costs more). */
#define PK_PAR_ELEMS 32768
/* Parallelise a row loop only when rows * cols is above this. */
#define PK_PAR_WORK 16384

/* Parallelise attention over (b, h) only when B * NH * T * T * hs is above this. */
#define PK_PAR_ATT 131072.0

/* Number of fixed reduction blocks: every reduction is split into PK_RED_BLOCKS contiguous chunks whose
 * partial sums are added in a fixed order, so sums are bit-identical for any number of threads. */
#define PK_RED_BLOCKS 64

/* GCC will not if-convert (hence not vectorise) loops with float selects such as the clamps below unless it
 * may assume floating-point operations do not trap; the kernels never enable FP traps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* `omp simd` max-reduction over floats: GCC vectorises it (with no-trapping-math); clang cannot without
 * fast-math and -Werror turns its "loop not vectorized" warning into an error, so it gets a plain loop. */
#define PK_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define PK_SIMD_MAX(v)
#else
#define PK_SIMD_MAX(v) PK_PRAGMA(omp simd reduction(max : v))
#endif

/* ---- vectorisable float math (plain arithmetic, so `#pragma omp simd` loops vectorise; libm's
 * expf/erff/tanhf are scalar calls) ---- */

/* exp(x): Cephes expf (range reduction by ln 2, degree-6 polynomial), max relative error about 1e-7;
 * x < -87 (including -inf) gives 0, x > 88 gives e^88 (no inf), which is what softmax and GELU need. */
static inline float pk_expf(float x0) {
    float x = x0 < 88.0f ? x0 : 88.0f;
    x = x > -87.0f ? x : -87.0f;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick; 2^n built from t's bits (no float->int conversion) */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    int32_t tb;
    memcpy(&tb, &t, sizeof tb);
    int32_t e = (tb - 0x4B400000 + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return x0 < -87.0f ? 0.0f : p * scale;
}

/* out (n) = exp(x - max) (out may be x), max = max(x) given; returns the sum of the exps in double (the
 * softmax and cross-entropy rows' shared step; vectorised, the sum's order fixed by the loop's simd lanes) */
static inline double pk_exp_shift_sum(float *out, const float *x, int n, float maxv) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        const float e = pk_expf(x[j] - maxv);
        out[j] = e;
        sum += e;
    }
    return sum;
}

/* erf(x): |x| < 1: Taylor series of erf(x) / x in x^2 to x^22 (truncation < 1e-8); |x| >= 1: Abramowitz &
 * Stegun 7.1.26 (|error| <= 1.5e-7). Both are computed and one selected, so the loop vectorises. Measured
 * max |error| vs double erf: about 2e-7 (tests/test_kernels_forward.c). */
static inline float pk_erff(float x) {
    float ax = fabsf(x);
    float x2 = x * x;
    float q = -1.2290555302e-09f;
    q = q * x2 + 1.4807192816e-08f;
    q = q * x2 + -1.6365844691e-07f;
    q = q * x2 + 1.6462114366e-06f;
    q = q * x2 + -1.4925650358e-05f;
    q = q * x2 + 1.2055332982e-04f;
    q = q * x2 + -8.5483270235e-04f;
    q = q * x2 + 5.2239776254e-03f;
    q = q * x2 + -2.6866170645e-02f;
    q = q * x2 + 1.1283791671e-01f;
    q = q * x2 + -3.7612638903e-01f;
    q = q * x2 + 1.1283791671e+00f;
    float small = x * q;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float y = 1.061405429f;
    y = y * t - 1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t - 0.284496736f;
    y = y * t + 0.254829592f;
    y = 1.0f - y * t * pk_expf(-x2);
    float big = copysignf(y, x);
    return ax < 1.0f ? small : big;
}

#define PK_SQRT1_2 0.70710678118654752440f
#define PK_INV_SQRT_2PI 0.39894228040143267794f

/* d GELU(x) / dx = Phi(x) + x phi(x) (exact erf GELU) */
static inline float pk_gelu_grad(float x) {
    const float cdf = 0.5f * (1.0f + pk_erff(x * PK_SQRT1_2));
    return cdf + x * (PK_INV_SQRT_2PI * pk_expf(-0.5f * x * x));
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1) on |x|, sign restored; |error| about 1e-7 */
static inline float pk_tanhf(float x) {
    float ax = fabsf(x);
    float y = 1.0f - 2.0f / (pk_expf(2.0f * ax) + 1.0f);
    return copysignf(y, x);
}

/* Per-thread scratch (kernels/scratch.c): the calling thread's buffer of a slot, grown to bytes (64-byte
 * aligned; NULL if out of memory). Slots 0..3: the quantised activations of each kind (quant.c). */
enum {
    PK_SCR_T0_PACK = 4, /* quant_tile.c: packed activations and weight tiles */
    PK_SCR_T1_PACK,     /* the q8_1 activations of the type-1 tiles (q4_1 / q5_1) */
    PK_SCR_K4_PACK,
    PK_SCR_T0_TILE,
    PK_SCR_K4_TILE,
    PK_SCR_K4_ROW1, /* k4_gemv_row1: the activation row arranged once for every weight row */
    PK_SCR_K6_PACK, /* the q6_K tile's int16 activations and unpacked weights */
    PK_SCR_K6_TILE,
    PK_SCR_BF16_B,     /* gemm_bf16.c: B converted to the kernel's panels */
    PK_SCR_BF16_FFN,   /* the FFN's per-thread bf16 hidden rows */
    PK_SCR_BF16_ATT_W, /* attention's per-thread words and score rows */
    PK_SCR_BF16_ATT_S,
    PK_SCR_ATT_TRAIN,      /* attention_train.c: per-thread score / probability tiles */
    PK_SCR_QDQ,            /* qlinear.c: a block of dequantised weight rows */
    PK_SCR_QHEAD,          /* qlinear.c: one row of logit gradients (soft-capped head) */
    PK_SCR_F32_B,          /* gemm_f32.c: op(B) packed into the kernel's panels */
    PK_SCR_T0F_PACK,       /* quant_tile.c: activations packed for the training-order tiles */
    PK_SCR_T0F_TILE,       /* ... and each thread's unpacked weight rows */
    PK_SCR_ATT_TRAIN_BF16, /* attention_train_bf16.c: one work item's bf16 words and fp32 tiles */
    PK_SCR_NORM_ROW,       /* norm.c: one row of w * dy (RMSNorm backward) */
    PK_SCR_SLOTS
};
void *pk_scratch(int slot, size_t bytes);

/* The bf16 training attention (attention_train_bf16.c): work item it = (sequence it / NKV, kv head it % NKV)
 * of pulse_causal_attention_forward / _backward with pulse_attn_params.bf16; only after
 * pulse_bf16_supported() and for softcap 0, head_dim a multiple of 16 (attention_train.c decides). */
void pk_attn_train_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                const int *lens, int B, int T, const pulse_attn_params *p, int it);
void pk_attn_train_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v,
                                 const int *lens, int B, int T, const pulse_attn_params *p, int it);

/* OpenBLAS wrappers (kernels/blas.c): row-major, OpenMP-split, OpenBLAS held at 1 thread (see blas.c).
 * trans flags: 0 = as stored, 1 = transposed. Same argument meaning as cblas_sgemm / sgemv / sger. */
void pk_blas_single(void);
/* Once per process, before the first fp32 product: warn when the BLAS runs below the CPU's level and nobody
 * called pulse_blas_select (blas_level.c). */
void pk_blas_check_level(void);
void pk_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void pk_sgemv(int trans, int M, int N, float alpha, const float *A, int lda, const float *x, float beta,
              float *y);
void pk_sger(int M, int N, float alpha, const float *x, const float *y, float *A, int lda);

#endif
