/* kernels/ggml_exact.h — the llama.cpp-exact primitives of the decoder runtime, inline because they sit in
 * its innermost loops (src/lm/attend.c, src/kernels/glu.c, src/lm/forward.c): ggml's exp (one implementation,
 * scalar and 8 lanes with the same operations), its 16-lane horizontal sum, f32 -> f16 rows, f16 dot products
 * in ggml's lane orders with their reduction tree, and f16 multiply-add rows. Every operation is the one
 * ggml's CPU backend performs, so results are bit-identical to llama.cpp's (tests/test_lm_parity.c); change
 * none of them without that test. Each SIMD form runs only while core/simd.h's pc_simd_v3 allows it (not
 * under pulse_cpu_limit(PULSE_ISA_SCALAR)); its scalar twin gives the same bits. Not a public header: for
 * src/kernels and src/lm. Its exp is not the float kernels' pk_expf (kernels/internal.h) because that one
 * rounds differently from ggml's (58% of inputs on [-87, 0]), and pk_expf is not this one because this one
 * does not vectorise (internal.h says the numbers). */
#ifndef PULSE_KERNELS_GGML_EXACT_H
#define PULSE_KERNELS_GGML_EXACT_H

#include <math.h>
#include <stdint.h>

#include "core/simd.h"
#include "pulse/quant.h"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding (GCC: -std=c11)  \
                              */
#endif

/* ggml_v_expf (ggml-cpu/vec.h, AVX512 build) one element at a time: the same operations, so the same
 * bits; x - max of a softmax and -x of silu go through it. */
static inline float pk_ggml_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (!(fabsf(n) <= 192.0f)) return n <= 0 ? 0.0f : INFINITY; /* also -inf (masked) and nan */
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j =
        fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
             fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n); /* _mm512_scalef_ps(j, n) */
}

#if defined(__AVX2__) && defined(__FMA__)
/* ggml_expf on 8 lanes: the same operations; scalef(j, n) is j * 2^n, exact while the result stays a normal
 * float (n in [-125, 127]); other vectors go lane by lane. */
static inline __m256 pk_ggml_expf8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-125.0f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(n, _mm256_set1_ps(127.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(ok) != 0xFF) {
        float v[8];
        _mm256_storeu_ps(v, x);
        for (int i = 0; i < 8; i++) v[i] = pk_ggml_expf(v[i]);
        return _mm256_loadu_ps(v);
    }
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(j, _mm256_castsi256_ps(e));
}
#endif

/* ggml's 16-lane horizontal sum (GCC's _mm512_reduce_add_ps): halves, quarters, then pairs */
static inline float pk_red16(const float *l) {
    float t3[8], t6[4];
    for (int i = 0; i < 8; i++) t3[i] = l[i + 8] + l[i];
    for (int i = 0; i < 4; i++) t6[i] = t3[i + 4] + t3[i];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

/* f32 -> f16 (round to nearest even, as F16C) */
static inline void pk_f16_row(uint16_t *dst, const float *src, int n) {
    int i = 0;
#ifdef __F16C__
    if (pc_simd_v3)
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), 0));
#endif
    for (; i < n; i++) dst[i] = pulse_fp32_to_fp16(src[i]);
}

/* f16 dot products in ggml's lane order: element t goes to lane t % R (R = 16: llamafile's tinyBLAS, used
 * for 2 or more tokens; R = 64: ggml_vec_dot_f16's 4 x 16 lanes, one token), fused multiply-add lane by
 * lane, then the lanes reduced as ggml does. The operands are f16 values held as floats (converted once). */
#if defined(__F16C__) && defined(__FMA__)
/* n a multiple of R; R constant (16 or 64) so that the lane accumulators stay in registers */
static inline __attribute__((always_inline)) float pk_dot_lanes_avx(const float *a, const float *b, int n,
                                                                    const int R) {
    __m256 v[8];
    for (int u = 0; u < R / 8; u++) v[u] = _mm256_setzero_ps();
    for (int t = 0; t < n; t += R)
        for (int u = 0; u < R / 8; u++)
            v[u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + t + 8 * u), _mm256_loadu_ps(b + t + 8 * u), v[u]);
    if (R == 64) /* (x0 + x2) + (x1 + x3), x_j = lanes 16j..16j+15 */
        for (int u = 0; u < 2; u++)
            v[u] = _mm256_add_ps(_mm256_add_ps(v[u], v[u + 4]), _mm256_add_ps(v[u + 2], v[u + 6]));
    /* red16: (hi + lo) then the 8-lane tree */
    __m256 t3 = _mm256_add_ps(v[1], v[0]);
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    t6 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    t6 = _mm_add_ss(t6, _mm_movehdup_ps(t6));
    return _mm_cvtss_f32(t6);
}
#endif

static inline float pk_dot_f16_lanes(const float *a, const float *b, int n, int R) {
    float l[64];
    int t = 0;
#if defined(__F16C__) && defined(__FMA__)
    if (n % R == 0 && pc_simd_v3)
        return R == 64 ? pk_dot_lanes_avx(a, b, n, 64) : pk_dot_lanes_avx(a, b, n, 16);
#endif
    for (int u = 0; u < R; u++) l[u] = 0;
    for (; t < n; t++) l[t % R] = fmaf(a[t], b[t], l[t % R]);
    if (R == 64)
        for (int u = 0; u < 16; u++) l[u] = (l[u] + l[u + 32]) + (l[u + 16] + l[u + 48]);
    return pk_red16(l);
}

/* out (HD) = red16 over lane rows acc (R, HD), elementwise (the reduction tree of dot_f16_lanes) */
static inline void pk_reduce_lane_rows(float *out, float *acc, int R, int HD) {
    if (R == 64)
        for (int u = 0; u < 16; u++) {
            float *r0 = acc + (size_t)u * HD, *r1 = r0 + (size_t)16 * HD, *r2 = r0 + (size_t)32 * HD,
                  *r3 = r0 + (size_t)48 * HD;
            for (int t = 0; t < HD; t++) r0[t] = (r0[t] + r2[t]) + (r1[t] + r3[t]);
        }
    for (int i = 0; i < 8; i++) { /* t3[i] = l[i + 8] + l[i] */
        float *a = acc + (size_t)i * HD, *b = acc + (size_t)(i + 8) * HD;
        for (int t = 0; t < HD; t++) a[t] = b[t] + a[t];
    }
    for (int i = 0; i < 4; i++) { /* t6[i] = t3[i + 4] + t3[i] */
        float *a = acc + (size_t)i * HD, *b = acc + (size_t)(i + 4) * HD;
        for (int t = 0; t < HD; t++) a[t] = b[t] + a[t];
    }
    const float *l0 = acc, *l1 = acc + HD, *l2 = acc + 2 * (size_t)HD, *l3 = acc + 3 * (size_t)HD;
    for (int t = 0; t < HD; t++) out[t] = (l0[t] + l2[t]) + (l1[t] + l3[t]);
}

/* rows (HD) += w * v (HD, f16), one fused multiply-add per element */
static inline void pk_fma_row_f16(float *row, float w, const uint16_t *v, int HD) {
    int t = 0;
#if defined(__F16C__) && defined(__FMA__)
    const __m256 wv = _mm256_set1_ps(w);
    for (; pc_simd_v3 && t + 8 <= HD; t += 8)
        _mm256_storeu_ps(row + t,
                         _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + t))),
                                         _mm256_loadu_ps(row + t)));
#endif
    for (; t < HD; t++) row[t] = fmaf(w, pulse_fp16_to_fp32(v[t]), row[t]);
}

#endif
