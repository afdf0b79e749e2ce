/* src/kernels/bf16_tile.h — owns the AVX512-BF16 pieces shared by the bf16 products (gemm_bf16.c: the GEMM,
 * inference attention; attention_train_bf16.c: the training attention): pair words (two bf16 halves in one
 * 32-bit word, the operand layout of vdpbf16ps, the even element in the low half) converted from fp32 rows,
 * and the 8-row tile of small products on packed pair words. Conversions round to nearest even (the vector
 * instruction's rounding). Include it only inside a region compiled for AVX512-BF16 (the files' `#pragma GCC
 * target` / clang attribute push), after <immintrin.h>. */
#ifndef PULSE_KERNELS_BF16_TILE_H
#define PULSE_KERNELS_BF16_TILE_H

#include <stddef.h>
#include <stdint.h>

/* the first n of 16 lanes (n <= 0: none) */
static inline __mmask16 pk_lanes16(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* the pair word of (x, y) */
static inline uint32_t pk_pair1(float x, float y) {
    const __m128i v = (__m128i)_mm_cvtneps_pbh(_mm_setr_ps(x, y, 0.0f, 0.0f));
    return (uint32_t)_mm_cvtsi128_si32(v);
}

/* 16 words of the pairs (r0[j], r1[j]), j < 16 */
static inline __m512i pk_pair_rows16(const float *r0, const float *r1) {
    const __m256i lo = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(r0));
    const __m256i hi = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(r1));
    return _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
}

/* w[j] = (r0[j], r1[j]) for j < n (n a multiple of 16) */
static inline void pk_pair_rows(uint32_t *w, const float *r0, const float *r1, int n) {
    for (int j = 0; j < n; j += 16) _mm512_storeu_si512(w + j, pk_pair_rows16(r0 + j, r1 + j));
}

/* w[p] = (x[2p], x[2p + 1]) for p < np over a contiguous row of n floats (zero past n; nothing past n read)
 */
static inline void pk_pair_row(uint32_t *w, const float *x, int n, int np) {
    for (int p = 0; p < np; p += 16) {
        const int e = n - 2 * p; /* elements of x left at this word */
        const __m512 lo = _mm512_maskz_loadu_ps(pk_lanes16(e), x + 2 * p);
        const __m512 hi = _mm512_maskz_loadu_ps(pk_lanes16(e - 16), x + 2 * p + 16);
        _mm512_mask_storeu_epi32(w + p, pk_lanes16(np - p), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

/* c (8 rows, nc <= 16 nv columns, ldc; rows >= mr not stored) = alpha acc (+ c when add), acc = sum_p
 * a[r lda + p] (x) b[p ldb + 16 q ..]: a has 8 readable rows of pair words (rows past mr zero or ignored), b
 * 16 nv readable words per row. nv (1-3) a constant at each call. */
static inline __attribute__((always_inline)) void pk_bf16_tile(const int nv, int np, const uint32_t *a,
                                                               int lda, const uint32_t *b, int ldb, float *c,
                                                               int ldc, int mr, int nc, float alpha,
                                                               int add) {
    __m512 acc[8][3];
    for (int r = 0; r < 8; r++)
        for (int q = 0; q < nv; q++) acc[r][q] = _mm512_setzero_ps();
    for (int p = 0; p < np; p++) {
        __m512bh bv[3];
        for (int q = 0; q < nv; q++) bv[q] = (__m512bh)_mm512_loadu_si512(b + 16 * q);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[(size_t)r * lda + p]);
            for (int q = 0; q < nv; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], ar, bv[q]);
        }
        b += ldb;
    }
    const __m512 va = _mm512_set1_ps(alpha);
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nv; q++) {
            const __mmask16 k = pk_lanes16(nc - 16 * q);
            float *cc = c + (size_t)r * ldc + 16 * q;
            const __m512 v = add ? _mm512_fmadd_ps(acc[r][q], va, _mm512_maskz_loadu_ps(k, cc))
                                 : _mm512_mul_ps(acc[r][q], va);
            _mm512_mask_storeu_ps(cc, k, v);
        }
}

#endif
