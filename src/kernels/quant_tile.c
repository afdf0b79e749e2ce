/* kernels/quant_tile.c — owns the batched AVX512-VNNI products that quant.c uses for batches of activation
 * rows on CPUs with AVX512-VNNI/VL/BW/DQ (chosen at run time; the x86-64-v3 build stays runnable on any AVX2
 * machine): the 32-element weights (type 0: q4_0, q5_0, q8_0; type 1: q4_1, q5_1) in 4 weight rows x 4
 * activation rows register tiles (PQ_T0_MIN_N rows or more), and q4_K with 16 activation rows in the vector
 * lanes (PQ_K4_MIN_N or more; see its section below); and training's order for the 32-element types
 * (pulse_qmatmul_fast: 8 weight rows x 16 activation columns in the lanes, one fma per block; its section).
 * pulse_options.qtile = 0 (PULSE_QTILE=0 for the CLI and
 * bench programs) keeps the per-row kernels.
 *
 * Type-0 tiles.
 * The sums are llama.cpp's, bit for bit (as ggml_vec_dot_q*_0_q8_0 and tinyBLAS_Q0_AVX compute them): per
 * block, 8 int32 lanes (lane l: the 4 products of elements 4l..4l+3), converted to float, acc = fma(lanes,
 * dw * dx, acc) block after block, then ggml's horizontal sum ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). What
 * is cheaper than one vec_dot per (row, column):
 *   - the weights are biased to unsigned once per 4-row tile (u = q + C: q8_0 flips the sign bit, C = 128;
 *     q5_0 / q4_0 are stored as q + 16 / q + 8 already), so one vpdpbusd(-C * s4(x), u, x) gives the exact
 *     signed lanes (s4: the per-lane sums of the activation bytes, packed once per product) with no sign
 *     fix-ups per pair;
 *   - the 16 scale products dw_r * dx_c of a block come from one 512-bit multiply;
 *   - two activation rows share a vector (their 4-byte lanes interleaved, the weight lanes doubled), so one
 *     vpdpbusd, one conversion and one 512-bit fma serve two (row, column) pairs of the same block;
 *   - each weight block is unpacked once for all the activation rows, each activation block loaded once
 *     per 4 weight rows.
 * Type 1 (q4_1, q5_1 against q8_1 activations, as ggml_vec_dot_q4_1_q8_1 / _q5_1_q8_1): the same lanes and
 * fma chain with the stored 0..15 / 0..31 as the unsigned operand (no bias: vpdpbusd(0, u, x)), plus per
 * (row, column) the float sum summs += mw * sx block after block (mul, then add), added to the horizontal
 * sum at the end; the 16 pairs of a tile keep their sums in the lanes of one vector.
 * Integer sums are exact and every float operation is the one llama.cpp does, so the result equals the
 * per-row kernels (tests/test_kernels_quant.c compares them bit for bit). */
#include "quant_internal.h"

#include <omp.h>
#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* llama.cpp's rounding, operation by operation */
#endif

#if defined(__AVX2__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

size_t pq_t0_pack_bytes(int N, int64_t nb) {
    return (size_t)((N + 3) / 4) * (size_t)nb * sizeof(pq_t0_blk);
}

int pq_t0_type(int type) {
    return type == PULSE_GGML_Q4_0 || type == PULSE_GGML_Q5_0 || type == PULSE_GGML_Q8_0 ? 1
           : type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1                          ? 2
                                                                                         : 0;
}

/* Portable packing (no AVX-512 needed). Rows past N are zero (scale 0): they are computed but never stored
 * or accumulated. Column c of the group sits in pair c / 2, at the odd (c odd) or even 4-byte lanes. */
void pq_t0_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, int t1, pq_t0_blk *out) {
    const int G = (N + 3) / 4;
#pragma omp parallel for schedule(static) if ((long)N * nb >= 8192 && !omp_in_parallel())
    for (int g = 0; g < G; g++) {
        memset(out + (size_t)g * (size_t)nb, 0, sizeof(pq_t0_blk) * (size_t)nb);
        for (int64_t b = 0; b < nb; b++) {
            pq_t0_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
            for (int c = 0; c < 4 && 4 * g + c < N; c++) {
                const pq_a32 *a = (const pq_a32 *)(xa + (size_t)(4 * g + c) * xs) + b;
                const int p = c / 2, e = c & 1;
                for (int l = 0; l < 8; l++) {
                    memcpy(k->qs[p] + 8 * l + 4 * e, a->qs + 4 * l, 4);
                    if (!t1)
                        k->ns4[p][2 * l + e] =
                            -(a->qs[4 * l] + a->qs[4 * l + 1] + a->qs[4 * l + 2] + a->qs[4 * l + 3]);
                }
                k->d[c] = a->d;
                k->s[c] = a->s;
            }
        }
    }
}

/* ---- training order (pq_t0f_*), activation columns in the lanes: packing (portable) ---- */
size_t pq_t0f_pack_bytes(int N, int64_t nb) {
    return (size_t)((N + 15) / 16) * (size_t)nb * sizeof(pq_t0f_blk);
}

/* Columns past N are zero bytes with scale 0: computed, never stored. */
void pq_t0f_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_t0f_blk *out) {
    const int G = (N + 15) / 16;
#pragma omp parallel for schedule(static) if ((long)N * nb >= 8192 && !omp_in_parallel())
    for (int g = 0; g < G; g++) {
        if (16 * g + 16 > N) /* a full group writes every byte; only the last one has empty columns */
            memset(out + (size_t)g * (size_t)nb, 0, sizeof(pq_t0f_blk) * (size_t)nb);
        for (int c = 0; c < 16 && 16 * g + c < N; c++) {
            const pq_a32 *a = (const pq_a32 *)(const void *)(xa + (size_t)(16 * g + c) * xs);
            for (int64_t b = 0; b < nb; b++) {
                pq_t0f_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                for (int q = 0; q < 8; q++) {
                    uint32_t v;
                    memcpy(&v, a[b].qs + 4 * q, 4);
                    v ^= 0x80808080u; /* + 128: the unsigned operand */
                    memcpy(k->xu[q] + 4 * c, &v, 4);
                }
                k->d[c] = a[b].d;
                k->s[c] = a[b].s;
            }
        }
    }
}

/* ---- q4_K, activation columns in the lanes ---- */
size_t pq_k4_pack_bytes(int N, int64_t nb) {
    const size_t G = (size_t)((N + 15) / 16);
    return G * (size_t)nb * sizeof(pq_k4_blk) + G;
}

void pq_k4_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k4_blk *out) {
    const int G = (N + 15) / 16;
    uint8_t *flags = (uint8_t *)(out + (size_t)G * (size_t)nb);
    memset(out, 0, pq_k4_pack_bytes(N, nb));
    for (int g = 0; g < G; g++) {
        int n_one = 0, n = 0;
        for (int c = 0; c < 16 && 16 * g + c < N; c++, n++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)(16 * g + c) * xs);
            n_one += (a[0].order & PULSE_QROW_ONE) != 0;
            for (int64_t b = 0; b < nb; b++) {
                pq_k4_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                for (int e = 0; e < 256; e += 4) { /* 4 bytes at a time, + 128 = sign bit flipped */
                    uint32_t v;
                    memcpy(&v, a[b].qs + e, 4);
                    v ^= 0x80808080u;
                    memcpy(k->yu[e / 4] + 4 * c, &v, 4);
                }
                for (int j = 0; j < 4; j++) {
                    const int bs0 = a[b].bsums[4 * j] + a[b].bsums[4 * j + 1];
                    const int bs1 = a[b].bsums[4 * j + 2] + a[b].bsums[4 * j + 3];
                    k->bs[j][c] = (int32_t)(((uint32_t)(uint16_t)bs1 << 16) | (uint16_t)bs0);
                }
                k->d[c] = a[b].d;
            }
        }
        flags[g] = (uint8_t)(n_one == 0 ? 0 : n_one == n ? 1 : 2);
    }
}

/* ---- q6_K, activation columns in the lanes (packing) ---- */
size_t pq_k6_pack_bytes(int N, int64_t nb) {
    const size_t G = (size_t)((N + 15) / 16);
    return G * (size_t)nb * sizeof(pq_k6_blk) + G;
}

void pq_k6_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k6_blk *out) {
    const int G = (N + 15) / 16;
    uint8_t *flags = (uint8_t *)(out + (size_t)G * (size_t)nb);
    memset(out, 0, pq_k6_pack_bytes(N, nb));
    for (int g = 0; g < G; g++) {
        int n_tiled = 0, n = 0;
        for (int c = 0; c < 16 && 16 * g + c < N; c++, n++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)(16 * g + c) * xs);
            n_tiled += (a[0].order & PULSE_QROW_TILED) != 0;
            for (int64_t b = 0; b < nb; b++) {
                pq_k6_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                for (int p = 0; p < 128; p++)
                    k->xp[p][c] =
                        (int32_t)(((uint32_t)(uint16_t)a[b].qs[2 * p + 1] << 16) | (uint16_t)a[b].qs[2 * p]);
                for (int l = 0; l < 8; l++)
                    k->bp[l][c] = (int32_t)(((uint32_t)(uint16_t)a[b].bsums[2 * l + 1] << 16) |
                                            (uint16_t)a[b].bsums[2 * l]);
                k->d[c] = a[b].d;
            }
        }
        flags[g] = (uint8_t)(n_tiled == 0 ? 0 : n_tiled == n ? 1 : 2);
    }
}

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))),       \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#endif

#define T0_UNROLL _Pragma("GCC unroll 4")

static inline float t0_f16(const uint8_t *p) {
    return _cvtsh_ss(pq_rd16(p));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31) */
static inline __m256i t0_nibbles(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0x10 where bit i is set */
static inline __m256i t0_bits_x10(const uint8_t *p) {
    const __mmask32 m = (__mmask32)pq_rd32(p);
    return _mm256_maskz_mov_epi8(m, _mm256_set1_epi8(0x10));
}

/* One weight block -> the unsigned bytes u = q + C (type 1: the stored 0..15 / 0..31). */
static inline __m256i t0_bytes(int type, const uint8_t *w) {
    switch (type) {
    case PULSE_GGML_Q4_1:
        return t0_nibbles(w + 4);
    case PULSE_GGML_Q5_1:
        return _mm256_or_si256(t0_nibbles(w + 8), t0_bits_x10(w + 4));
    case PULSE_GGML_Q8_0:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 2)), _mm256_set1_epi8((char)0x80));
    case PULSE_GGML_Q5_0:
        return _mm256_or_si256(t0_nibbles(w + 6), t0_bits_x10(w + 2));
    default: /* q4_0 */
        return t0_nibbles(w + 2);
    }
}

/* ... and the scale and the type-1 offset m */
static inline __m256i t0_unpack(int type, const uint8_t *w, float *d, float *m) {
    *d = t0_f16(w);
    if (type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1) *m = t0_f16(w + 2);
    return t0_bytes(type, w);
}

/* The (4 x 4) tile: 4 unpacked weight rows U (per block and row the 32 bytes u with each 4-byte lane twice)
 * x activation group k (per block the column pairs (0, 1) and (2, 3), their 4-byte lanes interleaved) ->
 * out[c][r] (ggml's horizontal sums). One vpdpbusd gives the 8 exact lanes of block b for two pairs (r, c)
 * and (r, c + 1) (even / odd lanes), so one conversion and one fma with the scale products (dw_r * dx_c,
 * dw_r * dx_c+1) broadcast as a 64-bit pair serve both: per pair the fma chain block after block, as
 * llama.cpp's. SH: log2 C. T1 (type 1: q4_1 / q5_1): no bias (SH unused), and per pair the float sum of
 * mw * sx block after block (M: the row offsets as A holds the scales), added after the horizontal sum as
 * ggml_vec_dot_q4_1_q8_1 does; the 16 pairs' sums in one vector (lane 4r + c), each lane its own pair's
 * sequence, so the rounding is the scalar one. */
static inline __attribute__((always_inline)) void t0_tile(const __m512i *U, const __m512 *A, const __m512 *M,
                                                          const pq_t0_blk *k, int64_t nb, const int SH,
                                                          const int T1, __m128 out[4]) {
    __m512 acc[4][2];
    T0_UNROLL for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    __m512 summs = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, U += 4) {
        /* D[4r + c] = dw_r * dx_c: the products llama.cpp forms one at a time */
        float D[16] __attribute__((aligned(64)));
        _mm512_store_ps(D, _mm512_mul_ps(A[b], _mm512_broadcast_f32x4(_mm_loadu_ps(k->d))));
        /* read back from memory: each pair of products reaches its fma as a 64-bit broadcast load */
        __asm__("" : "+m"(D));
        if (T1) /* summs += mw_r * sx_c */
            summs = _mm512_add_ps(summs, _mm512_mul_ps(M[b], _mm512_broadcast_f32x4(_mm_loadu_ps(k->s))));
        T0_UNROLL for (int p = 0; p < 2; p++) {
            const __m512i y = _mm512_loadu_si512((const void *)k->qs[p]);
            const __m512i corr = T1 ? _mm512_setzero_si512()
                                    : _mm512_slli_epi32(_mm512_loadu_si512((const void *)k->ns4[p]), SH);
            T0_UNROLL for (int r = 0; r < 4; r++) {
                double dd;
                memcpy(&dd, D + 4 * r + 2 * p, 8);
                acc[r][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, U[r], y)),
                                            _mm512_castpd_ps(_mm512_set1_pd(dd)), acc[r][p]);
            }
        }
    }
    /* per (r, c): lanes l of the pair at 2l + (c & 1); t_l = l_l + l_l+4, then (t0 + t2) + (t1 + t3), as
     * ggml's hsum_float_8 */
    __m128 q[4];
    T0_UNROLL for (int r = 0; r < 4; r++) {
        __m128 w[2];
        T0_UNROLL for (int p = 0; p < 2; p++) {
            const __m256 t =
                _mm256_add_ps(_mm512_castps512_ps256(acc[r][p]), _mm512_extractf32x8_ps(acc[r][p], 1));
            const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
            w[p] = _mm_add_ps(u, _mm_movehl_ps(u, u)); /* lanes 0, 1: columns 2p, 2p + 1 */
        }
        q[r] = _mm_movelh_ps(w[0], w[1]); /* row r, columns 0..3 */
    }
    _MM_TRANSPOSE4_PS(q[0], q[1], q[2], q[3]); /* q[c]: column c, rows 0..3 */
    T0_UNROLL for (int c = 0; c < 4; c++) out[c] = q[c];
    if (T1) { /* + summs: lanes (4r + c) regrouped per column c */
        const __m512 t = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), summs);
        out[0] = _mm_add_ps(out[0], _mm512_castps512_ps128(t));
        out[1] = _mm_add_ps(out[1], _mm512_extractf32x4_ps(t, 1));
        out[2] = _mm_add_ps(out[2], _mm512_extractf32x4_ps(t, 2));
        out[3] = _mm_add_ps(out[3], _mm512_extractf32x4_ps(t, 3));
    }
}

static inline __attribute__((always_inline)) void t0_rows(const int type, const int SH, const uint8_t *W,
                                                          size_t wrow, int r0, int r1, const pq_t0_blk *pk,
                                                          int g0, int N, int64_t nb, float *Y, size_t ldy,
                                                          __m512i *U, __m512 *A, __m512 *M) {
    const int G = (N + 3) / 4;
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const size_t BS = type == PULSE_GGML_Q8_0   ? 34
                      : type == PULSE_GGML_Q5_0 ? 22
                      : type == PULSE_GGML_Q4_1 ? 20
                      : type == PULSE_GGML_Q5_1 ? 24
                                                : 18;
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        /* unpack the tile's rows once; missing rows are zero, scale 0 */
        for (int64_t b = 0; b < nb; b++) {
            float dw[4] = {0, 0, 0, 0}, mw[4] = {0, 0, 0, 0};
            for (int r = 0; r < 4; r++) {
                const __m256i u =
                    r < nr ? t0_unpack(type, W + (size_t)(rt + r) * wrow + (size_t)b * BS, &dw[r], &mw[r])
                           : _mm256_setzero_si256();
                U[4 * b + r] = _mm512_permutexvar_epi32(dup, _mm512_castsi256_si512(u));
            }
            A[b] = _mm512_setr_ps(dw[0], dw[0], dw[0], dw[0], dw[1], dw[1], dw[1], dw[1], dw[2], dw[2], dw[2],
                                  dw[2], dw[3], dw[3], dw[3], dw[3]);
            if (T1)
                M[b] = _mm512_setr_ps(mw[0], mw[0], mw[0], mw[0], mw[1], mw[1], mw[1], mw[1], mw[2], mw[2],
                                      mw[2], mw[2], mw[3], mw[3], mw[3], mw[3]);
        }
        /* the next tile's weights (inside this item's rows) on their way while this one computes */
        const char *nx = rt + 4 < r1 ? (const char *)W + (size_t)(rt + 4) * wrow : NULL;
        const size_t nlines = nx ? ((size_t)(r1 - rt - 4 < 4 ? r1 - rt - 4 : 4) * wrow + 63) / 64 : 0,
                     per = (nlines + (size_t)G - 1) / (size_t)G;
        for (int g = 0; g < G; g++) {
            for (size_t l = (size_t)g * per; l < (size_t)(g + 1) * per && l < nlines; l++)
                _mm_prefetch(nx + 64 * l, _MM_HINT_T0);
            __m128 out[4];
            t0_tile(U, A, M, pk + (size_t)(g0 + g) * (size_t)nb, nb, SH, T1, out);
            const int nc = N - 4 * g < 4 ? N - 4 * g : 4;
            for (int c = 0; c < nc; c++) {
                float *y = Y + (size_t)(4 * g + c) * ldy + rt;
                if (nr == 4)
                    _mm_storeu_ps(y, out[c]);
                else
                    _mm_mask_storeu_ps(y, (__mmask8)((1u << nr) - 1), out[c]);
            }
        }
    }
}

int pq_t0_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0_blk *pk, int g0, int N,
               int64_t nb, float *Y, size_t ldy) {
    __m512 *A =
        pk_scratch(PK_SCR_T0_TILE, (size_t)nb * 2 * sizeof(__m512) + (size_t)nb * 4 * sizeof(__m512i));
    if (!A) return 0;
    __m512 *M = A + nb;
    __m512i *U = (__m512i *)(void *)(M + nb);
    switch (type) {
    case PULSE_GGML_Q8_0:
        t0_rows(PULSE_GGML_Q8_0, 7, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, U, A, M);
        return 1;
    case PULSE_GGML_Q5_0:
        t0_rows(PULSE_GGML_Q5_0, 4, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, U, A, M);
        return 1;
    case PULSE_GGML_Q4_0:
        t0_rows(PULSE_GGML_Q4_0, 3, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, U, A, M);
        return 1;
    case PULSE_GGML_Q4_1:
        t0_rows(PULSE_GGML_Q4_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, U, A, M);
        return 1;
    case PULSE_GGML_Q5_1:
        t0_rows(PULSE_GGML_Q5_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, U, A, M);
        return 1;
    default:
        return 0;
    }
}

/* ---- training order: 8 weight rows x 16 activation columns (in the lanes) ----
 * The weights are the signed operand, broadcast 4 bytes at a time (vpdpbusd's m32bcst), the activations + 128
 * the unsigned one, 16 columns per vector, so a block's 8 vpdpbusd per weight row give its 16 exact integer
 * sums, which start from -128 sum(w) (the bias's correction, found when the row is unpacked). Then one
 * conversion, one multiply (dx of the 16 columns x dw of the row) and one fma per row and block — against 8
 * conversions and 8 fmas per block and 2 (row, column) pairs in llama.cpp's order (t0_tile). */
typedef struct {
    int8_t w[8][32]; /* the rows' signed values (type 1: 0..15 / 0..31) */
    int32_t corr[8]; /* -128 sum(w) */
    float dw[8], mw[8];
} t0f_wblk;
#define T0F_UNROLL _Pragma("GCC unroll 8")

/* rows rt..rt+nr-1 (nr <= 8) of every block -> wk[b]; missing rows zero (scale 0) */
static inline __attribute__((always_inline)) void t0f_unpack(const int type, const int C, const uint8_t *W,
                                                             size_t wrow, size_t BS, int rt, int nr,
                                                             int64_t nb, t0f_wblk *wk) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    for (int64_t b = 0; b < nb; b++) {
        t0f_wblk *o = wk + b;
        for (int r = 0; r < 8; r++) {
            if (r >= nr) {
                memset(o->w[r], 0, 32);
                o->corr[r] = 0;
                o->dw[r] = o->mw[r] = 0;
                continue;
            }
            const uint8_t *blk = W + (size_t)(rt + r) * wrow + (size_t)b * BS;
            const __m256i u = t0_bytes(type, blk); /* q + C */
            _mm256_storeu_si256((__m256i *)(void *)o->w[r], _mm256_sub_epi8(u, _mm256_set1_epi8((char)C)));
            const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
            const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            const int su = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1));
            o->corr[r] = -128 * (su - 32 * C);
            o->dw[r] = t0_f16(blk);
            o->mw[r] = T1 ? t0_f16(blk + 2) : 0.0f;
        }
    }
}

static inline __attribute__((always_inline)) void t0f_tile(const t0f_wblk *wk, const pq_t0f_blk *k,
                                                           int64_t nb, const int T1, __m512 acc[8]) {
    T0F_UNROLL for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, wk++) {
        __m512i ia[8];
        T0F_UNROLL for (int r = 0; r < 8; r++) ia[r] = _mm512_set1_epi32(wk->corr[r]);
        T0F_UNROLL for (int q = 0; q < 8; q++) {
            const __m512i x = _mm512_loadu_si512((const void *)k->xu[q]);
            T0F_UNROLL for (int r = 0; r < 8; r++) {
                int32_t wq;
                memcpy(&wq, wk->w[r] + 4 * q, 4);
                ia[r] = _mm512_dpbusd_epi32(ia[r], x, _mm512_set1_epi32(wq));
            }
        }
        const __m512 dx = _mm512_loadu_ps(k->d);
        T0F_UNROLL for (int r = 0; r < 8; r++) acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r]), _mm512_mul_ps(dx, _mm512_set1_ps(wk->dw[r])), acc[r]);
        if (T1) {
            const __m512 sx = _mm512_loadu_ps(k->s);
            T0F_UNROLL for (int r = 0; r < 8; r++) acc[r] =
                _mm512_fmadd_ps(_mm512_set1_ps(wk->mw[r]), sx, acc[r]);
        }
    }
}

/* acc[r] lane c -> Y[c * ldy + r] for c < nc, r < nr */
static inline void t0f_store(const __m512 acc[8], int nr, int nc, float *Y, size_t ldy) {
    if (nr == 8 && nc == 16) { /* 4 x 4 transposes in each 128-bit lane: uv[h][j] lane L = column 4L + j */
        __m512 uv[2][4];       /* rows 0..3, rows 4..7 */
        for (int h = 0; h < 2; h++) {
            const __m512 *a = acc + 4 * h;
            const __m512 t0 = _mm512_unpacklo_ps(a[0], a[1]), t1 = _mm512_unpackhi_ps(a[0], a[1]);
            const __m512 t2 = _mm512_unpacklo_ps(a[2], a[3]), t3 = _mm512_unpackhi_ps(a[2], a[3]);
            __m512 *o = uv[h];
            o[0] = _mm512_shuffle_ps(t0, t2, 0x44);
            o[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
            o[2] = _mm512_shuffle_ps(t1, t3, 0x44);
            o[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
        }
        for (int j = 0; j < 4; j++) {
            _mm_storeu_ps(Y + (size_t)j * ldy, _mm512_castps512_ps128(uv[0][j]));
            _mm_storeu_ps(Y + (size_t)j * ldy + 4, _mm512_castps512_ps128(uv[1][j]));
            _mm_storeu_ps(Y + (size_t)(4 + j) * ldy, _mm512_extractf32x4_ps(uv[0][j], 1));
            _mm_storeu_ps(Y + (size_t)(4 + j) * ldy + 4, _mm512_extractf32x4_ps(uv[1][j], 1));
            _mm_storeu_ps(Y + (size_t)(8 + j) * ldy, _mm512_extractf32x4_ps(uv[0][j], 2));
            _mm_storeu_ps(Y + (size_t)(8 + j) * ldy + 4, _mm512_extractf32x4_ps(uv[1][j], 2));
            _mm_storeu_ps(Y + (size_t)(12 + j) * ldy, _mm512_extractf32x4_ps(uv[0][j], 3));
            _mm_storeu_ps(Y + (size_t)(12 + j) * ldy + 4, _mm512_extractf32x4_ps(uv[1][j], 3));
        }
        return;
    }
    float t[8][16] __attribute__((aligned(64)));
    for (int r = 0; r < 8; r++) _mm512_store_ps(t[r], acc[r]);
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) Y[(size_t)c * ldy + r] = t[r][c];
}

static inline __attribute__((always_inline)) void t0f_rows(const int type, const int C, const uint8_t *W,
                                                           size_t wrow, int r0, int r1, const pq_t0f_blk *pk,
                                                           int g0, int N, int64_t nb, float *Y, size_t ldy,
                                                           t0f_wblk *wk) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const size_t BS = pulse_ggml_type_size(type);
    const int G = (N + 15) / 16;
    for (int rt = r0; rt < r1; rt += 8) {
        const int nr = r1 - rt < 8 ? r1 - rt : 8;
        t0f_unpack(type, C, W, wrow, BS, rt, nr, nb, wk);
        for (int g = 0; g < G; g++) {
            __m512 acc[8];
            t0f_tile(wk, pk + (size_t)(g0 + g) * (size_t)nb, nb, T1, acc);
            t0f_store(acc, nr, N - 16 * g < 16 ? N - 16 * g : 16, Y + (size_t)(16 * g) * ldy + rt, ldy);
        }
    }
}

int pq_t0f_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0f_blk *pk, int g0, int N,
                int64_t nb, float *Y, size_t ldy) {
    t0f_wblk *wk = pk_scratch(PK_SCR_T0F_TILE, (size_t)nb * sizeof(t0f_wblk));
    if (!wk) return 0;
    switch (type) {
    case PULSE_GGML_Q8_0:
        t0f_rows(PULSE_GGML_Q8_0, 128, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q5_0:
        t0f_rows(PULSE_GGML_Q5_0, 16, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q4_0:
        t0f_rows(PULSE_GGML_Q4_0, 8, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q4_1:
        t0f_rows(PULSE_GGML_Q4_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q5_1:
        t0f_rows(PULSE_GGML_Q5_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    default:
        return 0;
    }
}

/* ---- one activation row (decode): 4 weight rows at a time ----
 * The same sums as the per-row kernels (dot_*_n with one activation row): per weight row its own fma chain
 * acc = fma(dw * dx, lanes, acc) and, for type 1, summs += mw * sx (the 4 rows' summs in the lanes of one
 * vector), then ggml's horizontal sum (+ summs). Four independent chains per block instead of one, the
 * scale products of the 4 rows in one multiply, and for type 0 the bias correction -C * s4(x) from one
 * vpdpbusd per block for all 4 rows. */
static inline __attribute__((always_inline)) void t0_gemv_rows(const int type, const int SH, const uint8_t *W,
                                                               size_t wrow, int r0, int r1, const pq_a32 *x,
                                                               int64_t nb, float *y) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const size_t BS = type == PULSE_GGML_Q8_0   ? 34
                      : type == PULSE_GGML_Q5_0 ? 22
                      : type == PULSE_GGML_Q4_1 ? 20
                      : type == PULSE_GGML_Q5_1 ? 24
                                                : 18;
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        const uint8_t *w[4];
        for (int r = 0; r < 4; r++)
            w[r] = W + (size_t)(rt + (r < nr ? r : nr - 1)) * wrow; /* past nr: again */
        __m256 acc[4];
        T0_UNROLL for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
        __m256 summs = _mm256_setzero_ps();
        /* the next 4 rows' 4 * wrow bytes on their way, 4 * BS per block: one address-ordered stream of
         * prefetches (AMD Zen 4's prefetcher does not follow the 4 rows' interleaved streams: Qwen2.5-0.5B
         * decode 30 tok/s without it, 76 with it, 58-60 per row) */
        const char *pf = (const char *)W + (size_t)(rt + 4) * wrow;
        for (int64_t b = 0; b < nb; b++, pf += 4 * BS) {
            for (int l = 0; l <= (int)(4 * BS + 63) / 64; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
            const pq_a32 *a = x + b;
            const __m256i yq = _mm256_loadu_si256((const __m256i *)a->qs);
            const __m256i corr = /* type 0: -C * s4(x), C = 1 << SH as vpdpbusd's unsigned byte */
                T1 ? _mm256_setzero_si256()
                   : _mm256_sub_epi32(
                         _mm256_setzero_si256(),
                         _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)(1 << SH)), yq));
            /* the 4 rows' scale products dw_r * dx (type 1: lanes 2r, with mw_r * sx in lanes 2r + 1) */
            float P[8] __attribute__((aligned(32)));
            if (T1) {
                int64_t ds;
                memcpy(&ds, &a->d, 8); /* (dx, sx) */
                const __m128i h =
                    _mm_setr_epi32((int)pq_rd32(w[0] + (size_t)b * BS), (int)pq_rd32(w[1] + (size_t)b * BS),
                                   (int)pq_rd32(w[2] + (size_t)b * BS), (int)pq_rd32(w[3] + (size_t)b * BS));
                const __m256 p =
                    _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_castsi256_ps(_mm256_set1_epi64x(ds)));
                summs = _mm256_add_ps(summs, p); /* lanes 2r + 1: summs += mw_r * sx */
                _mm256_store_ps(P, p);
            } else {
                const __m128i h = _mm_setr_epi16(
                    (short)pq_rd16(w[0] + (size_t)b * BS), (short)pq_rd16(w[1] + (size_t)b * BS),
                    (short)pq_rd16(w[2] + (size_t)b * BS), (short)pq_rd16(w[3] + (size_t)b * BS), 0, 0, 0, 0);
                const __m128 p = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(a->d));
                _mm_store_ps(P, _mm_unpacklo_ps(p, p));
                _mm_store_ps(P + 4, _mm_unpackhi_ps(p, p));
            }
            __asm__("" : "+m"(P)); /* each product reaches its fma as a broadcast operand */
            T0_UNROLL for (int r = 0; r < 4; r++) acc[r] = _mm256_fmadd_ps(
                _mm256_set1_ps(P[2 * r]),
                _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, t0_bytes(type, w[r] + (size_t)b * BS), yq)),
                acc[r]);
        }
        __m128 s0 = _mm_add_ps(_mm256_castps256_ps128(acc[0]), _mm256_extractf128_ps(acc[0], 1));
        __m128 s1 = _mm_add_ps(_mm256_castps256_ps128(acc[1]), _mm256_extractf128_ps(acc[1], 1));
        __m128 s2 = _mm_add_ps(_mm256_castps256_ps128(acc[2]), _mm256_extractf128_ps(acc[2], 1));
        __m128 s3 = _mm_add_ps(_mm256_castps256_ps128(acc[3]), _mm256_extractf128_ps(acc[3], 1));
        _MM_TRANSPOSE4_PS(s0, s1, s2, s3);
        __m128 o = _mm_add_ps(_mm_add_ps(s0, s2), _mm_add_ps(s1, s3));
        if (T1) /* + the odd lanes of summs */
            o = _mm_add_ps(o, _mm_shuffle_ps(_mm256_castps256_ps128(summs), _mm256_extractf128_ps(summs, 1),
                                             _MM_SHUFFLE(3, 1, 3, 1)));
        _mm_mask_storeu_ps(y + rt, (__mmask8)((1u << nr) - 1), o);
    }
}

int pq_t0_gemv(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a32 *x, int64_t nb,
               float *y) {
    switch (type) {
    case PULSE_GGML_Q8_0:
        t0_gemv_rows(PULSE_GGML_Q8_0, 7, W, wrow, r0, r1, x, nb, y);
        return 1;
    case PULSE_GGML_Q5_0:
        t0_gemv_rows(PULSE_GGML_Q5_0, 4, W, wrow, r0, r1, x, nb, y);
        return 1;
    case PULSE_GGML_Q4_0:
        t0_gemv_rows(PULSE_GGML_Q4_0, 3, W, wrow, r0, r1, x, nb, y);
        return 1;
    case PULSE_GGML_Q4_1:
        t0_gemv_rows(PULSE_GGML_Q4_1, 0, W, wrow, r0, r1, x, nb, y);
        return 1;
    case PULSE_GGML_Q5_1:
        t0_gemv_rows(PULSE_GGML_Q5_1, 0, W, wrow, r0, r1, x, nb, y);
        return 1;
    default:
        return 0;
    }
}

/* ---- q4_K, activation columns in the lanes ----
 * llama.cpp's q4_K sums (see dot_q4_k_exact in quant_avx2_dot.h): per 64-element group j of a block, the
 * exact integer isum_j = sc_2j * dot(sub-block 2j) + sc_2j+1 * dot(sub-block 2j+1) and imin_j = m_2j * bs_2j
 * + m_2j+1 * bs_2j+1; then acc = fma(isum_j, dw * dx, acc), accm = fma(imin_j, dmin * dx, accm) per group
 * (rows in 4-row gemm order) or once per block with the sums of the four (PULSE_QROW_ONE); result acc -
 * accm. Here 16 activation rows sit in the lanes: per 4 elements one vpdpbusd (weights broadcast, the
 * activations + 128 unsigned; -128 * the weight sum of the sub-block starts each sum), so the integer sums
 * need no horizontal reduction and the float work is once per group for 16 outputs. */
typedef struct {
    _Alignas(64) int8_t w[4][256]; /* rows' nibbles in element order */
    int32_t corr[4][8];            /* -128 * sum of the sub-block's nibbles */
    int32_t sc[4][8];
    int32_t mp[4][4]; /* (m_2j, m_2j+1) as an int16 pair */
    float d[4], dmin[4];
} k4_wtile;

static void k4_unpack(const uint8_t *blk, int r, k4_wtile *t) {
    const uint8_t *q = blk + 16;
    const __m512i m4 = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();
    __m512i S[2];
    for (int h = 0; h < 2; h++) { /* 64-element groups j = 2h, 2h + 1 */
        const __m512i raw = _mm512_loadu_si512((const void *)(q + 64 * h));
        const __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
        /* group j: its low nibbles (sub-block 2j) then its high ones (2j + 1) */
        const __m512i x0 = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)),
                      x1 = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
        _mm512_store_si512((void *)(t->w[r] + 128 * h), x0);
        _mm512_store_si512((void *)(t->w[r] + 128 * h + 64), x1);
        /* per qword k: 8-byte sums of x0 (sub-blocks 4h: k < 4, 4h + 1) in the low dword, of x1 (4h + 2,
         * 4h + 3) in the high one */
        const __m512i sv =
            _mm512_or_si512(_mm512_sad_epu8(x0, z), _mm512_slli_epi64(_mm512_sad_epu8(x1, z), 32));
        const __m512i a = _mm512_add_epi32(sv, _mm512_shuffle_epi32(sv, _MM_PERM_BADC));
        S[h] = _mm512_add_epi32(a, _mm512_shuffle_i64x2(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
        /* dword 0: sub-block 4h, 1: 4h + 2, 8: 4h + 1, 9: 4h + 3 */
    }
    const __m256i sums = _mm512_castsi512_si256(_mm512_permutex2var_epi32(
        S[0], _mm512_setr_epi32(0, 8, 1, 9, 16, 24, 17, 25, 0, 0, 0, 0, 0, 0, 0, 0), S[1]));
    _mm256_storeu_si256((__m256i *)(void *)t->corr[r],
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7)));
    /* the 6-bit scales and mins with 32-bit word operations (as pq_scale_min_k4) */
    const uint32_t q0 = pq_rd32(blk + 4), q1 = pq_rd32(blk + 8), q2 = pq_rd32(blk + 12);
    const uint64_t sc =
        (uint64_t)(q0 & 0x3F3F3F3Fu) | (uint64_t)((q2 & 0x0F0F0F0Fu) | ((q0 >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = (uint64_t)(q1 & 0x3F3F3F3Fu) |
                        (uint64_t)(((q2 >> 4) & 0x0F0F0F0Fu) | ((q1 >> 2) & 0x30303030u)) << 32;
    _mm256_storeu_si256((__m256i *)(void *)t->sc[r], _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc)));
    _mm_storeu_si128((__m128i *)(void *)t->mp[r], _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn)));
    t->d[r] = t0_f16(blk);
    t->dmin[r] = t0_f16(blk + 2);
}

/* acc += the unsigned bytes of y times the 4 signed bytes at w broadcast to the 16 lanes, one instruction
 * with an embedded broadcast operand (the compilers keep a separate broadcast load for the intrinsic) */
static inline __attribute__((always_inline)) __m512i k4_dp(__m512i acc, __m512i y, const int32_t *w) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(y), "m"(*w));
    return acc;
}

/* One 64-element group j: I[r] = isum_j, M[r] = imin_j (16 columns in the lanes) */
#define K4_GROUP(J)                                                                                          \
    T0_UNROLL for (int h = 0; h < 2; h++) {                                                                  \
        const int s = 2 * (J) + h;                                                                           \
        __m512i a[4];                                                                                        \
        T0_UNROLL for (int r = 0; r < 4; r++) a[r] = _mm512_set1_epi32(t->corr[r][s]);                       \
        T0_UNROLL for (int kk = 0; kk < 8; kk++) {                                                           \
            const __m512i y = _mm512_load_si512((const void *)k->yu[8 * s + kk]);                            \
            T0_UNROLL for (int r = 0; r < 4; r++) a[r] =                                                     \
                k4_dp(a[r], y, (const int32_t *)(const void *)(t->w[r] + 32 * s + 4 * kk));                  \
        }                                                                                                    \
        T0_UNROLL for (int r = 0; r < 4; r++) {                                                              \
            const __m512i p = _mm512_mullo_epi32(a[r], _mm512_set1_epi32(t->sc[r][s]));                      \
            I[r] = h ? _mm512_add_epi32(I[r], p) : p;                                                        \
        }                                                                                                    \
    }                                                                                                        \
    {                                                                                                        \
        const __m512i bs = _mm512_load_si512((const void *)k->bs[J]);                                        \
        T0_UNROLL for (int r = 0; r < 4; r++) M[r] =                                                         \
            _mm512_dpwssd_epi32(_mm512_setzero_si512(), bs, _mm512_set1_epi32(t->mp[r][J]));                 \
    }

static inline __attribute__((always_inline)) void k4_tile(const k4_wtile *t, const pq_k4_blk *k, int64_t nb,
                                                          const int ONE, __m512 out[4]) {
    __m512 facc[4], faccm[4];
    T0_UNROLL for (int r = 0; r < 4; r++) facc[r] = faccm[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, t++) {
        __m512i I[4], M[4], It[4], Mt[4];
        T0_UNROLL for (int r = 0; r < 4; r++) It[r] = Mt[r] = _mm512_setzero_si512();
        const __m512 ad = _mm512_load_ps(k->d);
        for (int j = 0; j < 4; j++) {
            K4_GROUP(j)
            if (ONE) {
                T0_UNROLL for (int r = 0; r < 4; r++) {
                    It[r] = _mm512_add_epi32(It[r], I[r]);
                    Mt[r] = _mm512_add_epi32(Mt[r], M[r]);
                }
            } else {
                T0_UNROLL for (int r = 0; r < 4; r++) {
                    facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I[r]),
                                              _mm512_mul_ps(_mm512_set1_ps(t->d[r]), ad), facc[r]);
                    faccm[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(M[r]),
                                               _mm512_mul_ps(_mm512_set1_ps(t->dmin[r]), ad), faccm[r]);
                }
            }
        }
        if (ONE) T0_UNROLL for (int r = 0; r < 4; r++) {
                facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(It[r]),
                                          _mm512_mul_ps(_mm512_set1_ps(t->d[r]), ad), facc[r]);
                faccm[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(Mt[r]),
                                           _mm512_mul_ps(_mm512_set1_ps(t->dmin[r]), ad), faccm[r]);
            }
    }
    T0_UNROLL for (int r = 0; r < 4; r++) out[r] = _mm512_sub_ps(facc[r], faccm[r]);
}

int pq_k4_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k4_blk *pk, int G_total, int g0, int N,
               int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy) {
    const size_t need = (size_t)nb * sizeof(k4_wtile);
    k4_wtile *T = pk_scratch(PK_SCR_K4_TILE, need);
    if (!T) return 0;
    const uint8_t *flags = (const uint8_t *)(pk + (size_t)G_total * (size_t)nb);
    const int G = (N + 15) / 16;
    for (int g = 0; g < G; g++) /* mixed orders: the per-row kernels for that group */
        if (flags[g0 + g] == 2) {
            const int nc = N - 16 * g < 16 ? N - 16 * g : 16;
            pq_rows_vnni(PULSE_GGML_Q4_K, W, wrow, r0, r1, xa + (size_t)(16 * g) * xs, xs, nc, 256 * nb,
                         Y + (size_t)(16 * g) * ldy, ldy);
        }
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        if (nr < 4)
            memset(T, 0, need); /* the missing rows: zero weights and scales (full tiles overwrite all) */
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < nr; r++) k4_unpack(W + (size_t)(rt + r) * wrow + (size_t)b * 144, r, &T[b]);
        for (int g = 0; g < G; g++) {
            const int fl = flags[g0 + g];
            if (fl == 2) continue;
            __m512 out[4];
            const pq_k4_blk *k = pk + (size_t)(g0 + g) * (size_t)nb;
            if (fl)
                k4_tile(T, k, nb, 1, out);
            else
                k4_tile(T, k, nb, 0, out);
            float o[4][16] __attribute__((aligned(64)));
            for (int r = 0; r < 4; r++) _mm512_store_ps(o[r], out[r]);
            const int nc = N - 16 * g < 16 ? N - 16 * g : 16;
            for (int c = 0; c < nc; c++) {
                float *y = Y + (size_t)(16 * g + c) * ldy + rt;
                for (int r = 0; r < nr; r++) y[r] = o[r][c];
            }
        }
    }
    return 1;
}

/* ---- q6_K, activation columns in the lanes ----
 * llama.cpp's q6_K sums (vec_dot_q6_K_q8_K and its tiled kernel, see quant_ref.c's vec_dot_q6_k): per block
 * 8 exact int32 lanes (lane l: sc * q6 * x over elements 4l..4l+3 of every 32, minus 32 * (sc_2l * bsum_2l +
 * sc_2l+1 * bsum_2l+1)); rows PULSE_QROW_TILED: acc = fma(isum * dw, dx, acc) with isum the lanes' sum, else
 * per lane acc_l = fma(dw * dx, lane_l, acc_l) and ggml's horizontal sum at the end. Here 16 activation rows
 * sit in the vector lanes as int16 element pairs; the weights are unpacked per tile to q6 * sc (int16, at
 * most 63 * 128) pairs, so one vpdpwssd (broadcast weight pair x 16 columns' pairs) adds 2 elements of 16
 * outputs into the lane they belong to, and the -32 terms are one vpdpwssd per lane with (-32 sc) pairs. */
#define K6_R 2 /* weight rows per tile: 8 int32 lane accumulators each */
typedef struct {
    _Alignas(64) int16_t w[K6_R][256]; /* q6 * sc, element order */
    int32_t cp[K6_R][8];               /* (-32 sc_2l, -32 sc_2l+1) as an int16 pair */
    float d[K6_R];
} k6_wtile;

static void k6_unpack(const uint8_t *blk, int r, k6_wtile *t) {
    const int8_t *sc = (const int8_t *)(blk + 192);
    for (int c = 0; c < 2; c++) {
        const uint8_t *ql = blk + 64 * c, *qh = blk + 128 + 32 * c;
        __m256i v[4];
        pq_q6k_unpack128(ql, qh, v);
        for (int g = 0; g < 4; g++) { /* elements 128c + 32g ..+31: sub-blocks 8c + 2g, 8c + 2g + 1 */
            const int s = 8 * c + 2 * g;
            const __m512i scv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(sc[s])),
                                                   _mm256_set1_epi16(sc[s + 1]), 1);
            _mm512_store_si512((void *)(t->w[r] + 128 * c + 32 * g),
                               _mm512_mullo_epi16(_mm512_cvtepu8_epi16(v[g]), scv));
        }
    }
    for (int l = 0; l < 8; l++)
        t->cp[r][l] =
            (int32_t)(((uint32_t)(uint16_t)(-32 * sc[2 * l + 1]) << 16) | (uint16_t)(-32 * sc[2 * l]));
    t->d[r] = t0_f16(blk + 208);
}

/* acc += the int16 pairs of x times the pair at w broadcast to the 16 lanes, as one instruction with an
 * embedded broadcast operand (the compilers keep a separate broadcast load for the intrinsic) */
static inline __attribute__((always_inline)) __m512i k6_dp(__m512i acc, __m512i x, const int32_t *w) {
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*w));
    return acc;
}

static inline __attribute__((always_inline)) void k6_tile(const k6_wtile *t, const pq_k6_blk *k, int64_t nb,
                                                          const int TILED, __m512 out[K6_R]) {
    __m512 facc[K6_R][8];
    T0_UNROLL for (int r = 0; r < K6_R; r++) for (int l = 0; l < 8; l++) facc[r][l] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, t++) {
        __m512i L[K6_R][8];
        const int32_t *wp[K6_R];
        T0_UNROLL for (int r = 0; r < K6_R; r++) wp[r] = (const int32_t *)(const void *)t->w[r];
        _Pragma("GCC unroll 8") for (int l = 0; l < 8; l++) {
            const __m512i bp = _mm512_load_si512((const void *)k->bp[l]);
            T0_UNROLL for (int r = 0; r < K6_R; r++) L[r][l] =
                _mm512_dpwssd_epi32(_mm512_setzero_si512(), bp, _mm512_set1_epi32(t->cp[r][l]));
        }
        _Pragma("GCC unroll 8") for (int G = 0; G < 8; G++) {
            _Pragma("GCC unroll 8") for (int l = 0; l < 8; l++) {
                T0_UNROLL for (int kk = 0; kk < 2; kk++) {
                    const int p = 16 * G + 2 * l + kk;
                    const __m512i x = _mm512_load_si512((const void *)k->xp[p]);
                    T0_UNROLL for (int r = 0; r < K6_R; r++) L[r][l] = k6_dp(L[r][l], x, wp[r] + p);
                }
            }
        }
        const __m512 dx = _mm512_load_ps(k->d);
        if (TILED) {
            T0_UNROLL for (int r = 0; r < K6_R; r++) {
                const __m512i s = _mm512_add_epi32(
                    _mm512_add_epi32(_mm512_add_epi32(L[r][0], L[r][1]), _mm512_add_epi32(L[r][2], L[r][3])),
                    _mm512_add_epi32(_mm512_add_epi32(L[r][4], L[r][5]), _mm512_add_epi32(L[r][6], L[r][7])));
                facc[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(t->d[r])),
                                             dx, facc[r][0]);
            }
        } else {
            T0_UNROLL for (int r = 0; r < K6_R; r++) {
                const __m512 dd = _mm512_mul_ps(_mm512_set1_ps(t->d[r]), dx);
                _Pragma("GCC unroll 8") for (int l = 0; l < 8; l++) facc[r][l] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(L[r][l]), dd, facc[r][l]);
            }
        }
    }
    T0_UNROLL for (int r = 0; r < K6_R; r++) {
        if (TILED)
            out[r] = facc[r][0];
        else /* ggml's hsum_float_8: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) */
            out[r] = _mm512_add_ps(
                _mm512_add_ps(_mm512_add_ps(facc[r][0], facc[r][4]), _mm512_add_ps(facc[r][2], facc[r][6])),
                _mm512_add_ps(_mm512_add_ps(facc[r][1], facc[r][5]), _mm512_add_ps(facc[r][3], facc[r][7])));
    }
}

int pq_k6_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k6_blk *pk, int G_total, int g0, int N,
               int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy) {
    const size_t need = (size_t)nb * sizeof(k6_wtile);
    k6_wtile *T = pk_scratch(PK_SCR_K6_TILE, need);
    if (!T) return 0;
    const uint8_t *flags = (const uint8_t *)(pk + (size_t)G_total * (size_t)nb);
    const int G = (N + 15) / 16;
    for (int g = 0; g < G; g++) /* mixed orders: the per-row kernels for that group */
        if (flags[g0 + g] == 2) {
            const int nc = N - 16 * g < 16 ? N - 16 * g : 16;
            pq_rows_vnni(PULSE_GGML_Q6_K, W, wrow, r0, r1, xa + (size_t)(16 * g) * xs, xs, nc, 256 * nb,
                         Y + (size_t)(16 * g) * ldy, ldy);
        }
    for (int rt = r0; rt < r1; rt += K6_R) {
        const int nr = r1 - rt < K6_R ? r1 - rt : K6_R;
        if (nr < K6_R)
            memset(T, 0, need); /* the missing rows: zero weights and scales (full tiles overwrite all) */
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < nr; r++) k6_unpack(W + (size_t)(rt + r) * wrow + (size_t)b * 210, r, &T[b]);
        for (int g = 0; g < G; g++) {
            const int fl = flags[g0 + g];
            if (fl == 2) continue;
            __m512 out[K6_R];
            const pq_k6_blk *k = pk + (size_t)(g0 + g) * (size_t)nb;
            if (fl)
                k6_tile(T, k, nb, 1, out);
            else
                k6_tile(T, k, nb, 0, out);
            float o[K6_R][16] __attribute__((aligned(64)));
            for (int r = 0; r < K6_R; r++) _mm512_store_ps(o[r], out[r]);
            const int nc = N - 16 * g < 16 ? N - 16 * g : 16;
            for (int c = 0; c < nc; c++) {
                float *y = Y + (size_t)(16 * g + c) * ldy + rt;
                for (int r = 0; r < nr; r++) y[r] = o[r][c];
            }
        }
    }
    return 1;
}

/* ---- q4_K and q6_K against one activation row (decode): 4 weight rows at a time ----
 * q4_K in llama.cpp's one-row order (PULSE_QROW_ONE, ggml_gemv_q4_K_8x8_q8_K): per row and block the exact
 * isum (scales times sub-block dots) and imin (mins times bsums), acc = fma(isum, dw * dx, acc), accm =
 * fma(imin, dmin * dx, accm), result acc - accm. A 64-byte load of the nibbles gives sub-blocks (0, 2) in
 * its low and (1, 3) in its high nibbles, so one vpdpbusd against the activations arranged to match leaves
 * each sub-block's partial sums (at most 4 * 15 * 127, an int16) in 8 lanes, and one vpdpwssd with the
 * scale in each lane's low int16 adds them scaled; the 4 rows' lanes are summed by a transposing tree and
 * the float work is 4-wide (rows in the lanes), each lane the scalar sequence. */
static inline __attribute__((always_inline)) __m512i k4g_x(const int8_t *x, int a, int b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x + a))),
                              _mm256_loadu_si256((const __m256i *)(x + b)), 1);
}

/* 4 vectors of 16 int32 -> their 4 lane sums (integers: any order) */
static inline __m128i k4g_hsum4(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
    const __m256i a0 = _mm256_add_epi32(_mm512_castsi512_si256(v0), _mm512_extracti64x4_epi64(v0, 1));
    const __m256i a1 = _mm256_add_epi32(_mm512_castsi512_si256(v1), _mm512_extracti64x4_epi64(v1, 1));
    const __m256i a2 = _mm256_add_epi32(_mm512_castsi512_si256(v2), _mm512_extracti64x4_epi64(v2, 1));
    const __m256i a3 = _mm256_add_epi32(_mm512_castsi512_si256(v3), _mm512_extracti64x4_epi64(v3, 1));
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* One q4_K block against activations xq (k4g_x: (0..31 | 64..95), (32..63 | 96..127), then + 128) and
 * bsums bs: *I = 16 int32 lanes whose sum is the block's isum (scales times sub-block dots), *M = 4 int32
 * lanes whose sum is its imin (mins times bsums). */
static inline __attribute__((always_inline)) void k4g_block(const uint8_t *blk, const __m512i xq[4],
                                                            __m256i bs, __m512i *I, __m128i *M) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* scale of each dword lane: byte 0 of the lane picks it from scm (in every 128-bit lane), the rest zero
     */
    const __mmask64 b0 = 0x1111111111111111ull;
    const __m512i sh0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
                  sh1 = _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
                  sh2 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
                  sh3 = _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7);
    const __m128i dup_m = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m128i scm = pq_k4_scales(blk);
    const __m512i sb = _mm512_broadcast_i32x4(scm);
    const __m512i Q0 = _mm512_loadu_si512((const void *)(blk + 16)),
                  Q1 = _mm512_loadu_si512((const void *)(blk + 80));
    const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(Q0, m4), xq[0]);
    const __m512i d1 =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(Q0, 4), m4), xq[1]);
    const __m512i d2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(Q1, m4), xq[2]);
    const __m512i d3 =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(Q1, 4), m4), xq[3]);
    __m512i t = _mm512_dpwssd_epi32(_mm512_setzero_si512(), d0, _mm512_maskz_shuffle_epi8(b0, sb, sh0));
    t = _mm512_dpwssd_epi32(t, d1, _mm512_maskz_shuffle_epi8(b0, sb, sh1));
    t = _mm512_dpwssd_epi32(t, d2, _mm512_maskz_shuffle_epi8(b0, sb, sh2));
    *I = _mm512_dpwssd_epi32(t, d3, _mm512_maskz_shuffle_epi8(b0, sb, sh3));
    /* mins: m_s * (bsums 2s + 2s+1) */
    const __m256i mi = _mm256_madd_epi16(bs, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup_m)));
    *M = _mm_add_epi32(_mm256_castsi256_si128(mi), _mm256_extracti128_si256(mi, 1));
}

/* the activations of one block as k4g_block takes them */
static inline __attribute__((always_inline)) void k4g_acts(const pq_a256 *a, __m512i xq[4]) {
    xq[0] = k4g_x(a->qs, 0, 64), xq[1] = k4g_x(a->qs, 32, 96), xq[2] = k4g_x(a->qs, 128, 192),
    xq[3] = k4g_x(a->qs, 160, 224);
}

static void k4_gemv_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                         float *y) {
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        const uint8_t *w[4];
        for (int r = 0; r < 4; r++)
            w[r] = W + (size_t)(rt + (r < nr ? r : nr - 1)) * wrow; /* past nr: again */
        __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
        /* the next 4 rows on their way as one address-ordered stream, 4 * 144 bytes per block (as
         * t0_gemv_rows; a prefetch past the matrix is harmless). Zen 4, Qwen2.5-1.5B decode forced through
         * the 4-row kernels (PULSE_QGEMV=1), two interleaved rounds: 17.3 / 17.6 tok/s with each row's next
         * block prefetched, 28.7 / 27.9 with the stream, level with the per-row kernels (28.5 / 28.7) that
         * AMD keeps by default */
        const char *pf = (const char *)W + (size_t)(rt + 4) * wrow;
        for (int64_t b = 0; b < nb; b++, pf += 4 * 144) {
            for (int l = 0; l < 9; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
            const pq_a256 *a = x + b;
            __m512i xq[4];
            k4g_acts(a, xq);
            const __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
            __m512i I[4];
            __m128i M[4];
            uint32_t dm[4];
            T0_UNROLL for (int r = 0; r < 4; r++) {
                const uint8_t *blk = w[r] + (size_t)b * 144;
                dm[r] = pq_rd32(blk);
                k4g_block(blk, xq, bs, &I[r], &M[r]);
            }
            const __m128i isum = k4g_hsum4(I[0], I[1], I[2], I[3]);
            const __m128i imin = _mm_hadd_epi32(_mm_hadd_epi32(M[0], M[1]), _mm_hadd_epi32(M[2], M[3]));
            /* (d, dmin) of the 4 rows: d in the even, dmin in the odd halves */
            const __m256 f = _mm256_cvtph_ps(_mm_setr_epi32((int)dm[0], (int)dm[1], (int)dm[2], (int)dm[3]));
            const __m256 p = _mm256_mul_ps(f, _mm256_set1_ps(a->d));
            const __m128 lo = _mm256_castps256_ps128(p), hi = _mm256_extractf128_ps(p, 1);
            const __m128 dd = _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)),
                         dmn = _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(isum), dd, acc);
            accm = _mm_fmadd_ps(_mm_cvtepi32_ps(imin), dmn, accm);
        }
        _mm_mask_storeu_ps(y + rt, (__mmask8)((1u << nr) - 1), _mm_sub_ps(acc, accm));
    }
}

/* q4_K against one activation row, one weight row at a time, read in address order (for the CPUs whose
 * prefetchers lose k4_gemv_rows' side-by-side rows: AMD Zen 4): the per-block integer work of k4_gemv_rows
 * (512-bit vpdpbusd of the nibbles, vpdpwssd with the scales), 4 blocks of the row reduced together by the
 * same transposing tree instead of each block alone, then the row's scalar sequence acc = fma(isum, dw * dx,
 * acc), accm = fma(imin, dmin * dx, accm) block by block: llama.cpp's one-row order, the same bits. */
static int k4_gemv_row1(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                        float *y) {
    /* (nb, 4) the activations as k4g_block takes them, arranged once for all the rows (NULL: per block) */
    __m512i *X =
        pk_scratch(PK_SCR_K4_ROW1, (size_t)nb * 4 * sizeof(__m512i) + (size_t)(nb + 3) * sizeof(float));
    if (!X) return 0;
    float *xd = (float *)(void *)(X + 4 * nb); /* the blocks' scales, 3 zeros past the end */
    for (int64_t b = 0; b < nb; b++) {
        xd[b] = x[b].d;
        k4g_acts(x + b, X + 4 * b);
    }
    xd[nb] = xd[nb + 1] = xd[nb + 2] = 0;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * wrow;
        __m128 acc = _mm_setzero_ps(); /* (acc, accm) */
        for (int64_t b0 = 0; b0 < nb; b0 += 4) {
            const int nk = nb - b0 < 4 ? (int)(nb - b0) : 4;
            __m512i I[4];
            __m128i M[4];
            pq_k4_row1_prefetch(w, b0);
            T0_UNROLL for (int k = 0; k < 4; k++) {
                const int64_t b = b0 + k;
                if (k < nk)
                    k4g_block(w + (size_t)b * 144, X + 4 * b, _mm256_loadu_si256((const __m256i *)x[b].bsums),
                              &I[k], &M[k]);
                else /* past the row's end */
                    I[k] = _mm512_setzero_si512(), M[k] = _mm_setzero_si128();
            }
            pq_k4_row1_fma(w, b0, nk, _mm_loadu_ps(xd + b0), k4g_hsum4(I[0], I[1], I[2], I[3]),
                           _mm_hadd_epi32(_mm_hadd_epi32(M[0], M[1]), _mm_hadd_epi32(M[2], M[3])), &acc);
        }
        y[r] = _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc));
    }
    return 1;
}

/* q6_K in vec_dot_q6_K_q8_K's order (rows not PULSE_QROW_TILED): per block 8 exact lanes (lane l: sc * q6 *
 * x over elements 4l..4l+3 of every 32, minus 32 (sc_2l bsum_2l + sc_2l+1 bsum_2l+1)), acc_l = fma(dw * dx,
 * lane_l, acc_l), ggml's horizontal sum at the end. A 64-byte vector holds two 32-element groups, so one
 * vpdpbusd (q6 unsigned x activations) gives both groups' lanes (each at most 4 * 63 * 127, an int16) and
 * one vpdpwssd adds them times their sub-block scale; the two groups' halves are added at the block's end. */
/* One q6_K block blk against the activations xq (4 x 64 bytes) and bsums bs of scale dx: acc += the block's 8
 * exact lanes times dw * dx (k6_gemv_rows' per-row work; si: the lanes' sub-block indices) */
static inline __attribute__((always_inline)) __m256
k6g_block(const uint8_t *blk, const __m512i xq[4], __m256i bs, float dx, const __m512i si[4], __m256 acc) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(blk + 192));
    const __m512i sc32 = _mm512_cvtepu16_epi32(_mm256_cvtepi8_epi16(sc8)); /* sc in each low int16 */
    __m512i L = _mm512_setzero_si512();
    T0_UNROLL for (int c = 0; c < 2; c++) {
        /* elements 128c + (0..63) and 128c + (64..127): ql's low / high nibbles, qh's bit pairs (0, 2) / (4,
         * 6) for the two 32-element halves */
        const __m512i Q = _mm512_loadu_si512((const void *)(blk + 64 * c));
        const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * c)));
        const __m512i v01 =
            _mm512_ternarylogic_epi32(Q, m4, _mm512_and_si512(_mm512_sllv_epi16(H, shl), m30), 0xEA);
        const __m512i v23 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(Q, 4), m4,
                                                      _mm512_and_si512(_mm512_srlv_epi16(H, shr), m30), 0xEA);
        L = _mm512_dpwssd_epi32(L, _mm512_dpbusd_epi32(_mm512_setzero_si512(), v01, xq[2 * c]),
                                _mm512_permutexvar_epi32(si[2 * c], sc32));
        L = _mm512_dpwssd_epi32(L, _mm512_dpbusd_epi32(_mm512_setzero_si512(), v23, xq[2 * c + 1]),
                                _mm512_permutexvar_epi32(si[2 * c + 1], sc32));
    }
    /* lane l: both groups' halves, minus 32 (sc_2l bsum_2l + sc_2l+1 bsum_2l+1) */
    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8)), 5);
    const __m256i l8 =
        _mm256_sub_epi32(_mm256_add_epi32(_mm512_castsi512_si256(L), _mm512_extracti64x4_epi64(L, 1)), corr);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(l8), _mm256_set1_ps(t0_f16(blk + 208) * dx), acc);
}

/* scale index of each lane for the 4 x 64 elements: sub-blocks 4k + (lane / 4) */
#define K6_SI                                                                                                \
    {                                                                                                        \
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),                                   \
            _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),                               \
            _mm512_setr_epi32(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11),                       \
            _mm512_setr_epi32(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15)                \
    }

/* ggml's hsum_float_8: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) */
static inline float k6g_hsum(__m256 a) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

static void k6_gemv_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                         float *y) {
    const __m512i si[4] = K6_SI;
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        const uint8_t *w[4];
        for (int r = 0; r < 4; r++) w[r] = W + (size_t)(rt + (r < nr ? r : nr - 1)) * wrow;
        __m256 acc[4];
        T0_UNROLL for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
        /* the next 4 rows as one address-ordered stream, 4 * 210 bytes per block (as k4_gemv_rows) */
        const char *pf = (const char *)W + (size_t)(rt + 4) * wrow;
        for (int64_t b = 0; b < nb; b++, pf += 4 * 210) {
            for (int l = 0; l < 14; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
            const pq_a256 *a = x + b;
            __m512i xq[4];
            T0_UNROLL for (int k = 0; k < 4; k++) xq[k] = _mm512_loadu_si512((const void *)(a->qs + 64 * k));
            const __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
            T0_UNROLL for (int r = 0; r < 4; r++) {
                const uint8_t *blk = w[r] + (size_t)b * 210;
                acc[r] = k6g_block(blk, xq, bs, a->d, si, acc[r]);
            }
        }
        /* ggml's hsum_float_8 per row: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) */
        __m128 s0 = _mm_add_ps(_mm256_castps256_ps128(acc[0]), _mm256_extractf128_ps(acc[0], 1));
        __m128 s1 = _mm_add_ps(_mm256_castps256_ps128(acc[1]), _mm256_extractf128_ps(acc[1], 1));
        __m128 s2 = _mm_add_ps(_mm256_castps256_ps128(acc[2]), _mm256_extractf128_ps(acc[2], 1));
        __m128 s3 = _mm_add_ps(_mm256_castps256_ps128(acc[3]), _mm256_extractf128_ps(acc[3], 1));
        _MM_TRANSPOSE4_PS(s0, s1, s2, s3);
        _mm_mask_storeu_ps(y + rt, (__mmask8)((1u << nr) - 1),
                           _mm_add_ps(_mm_add_ps(s0, s2), _mm_add_ps(s1, s3)));
    }
}

/* q6_K one row at a time in address order (the AMD decode path, as k4_gemv_row1): k6_gemv_rows' block work,
 * the row's 8 lane sums, ggml's horizontal sum; the same bits. */
#define K6_ROW1_AHEAD 2520 /* 12 blocks */
static void k6_gemv_row1(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                         float *y) {
    const __m512i si[4] = K6_SI;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * wrow;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const pq_a256 *a = x + b;
            const uint8_t *blk = w + (size_t)b * 210;
            for (int l = 0; l < 4; l++) _mm_prefetch((const char *)blk + K6_ROW1_AHEAD + 64 * l, _MM_HINT_T0);
            __m512i xq[4];
            T0_UNROLL for (int k = 0; k < 4; k++) xq[k] = _mm512_loadu_si512((const void *)(a->qs + 64 * k));
            acc = k6g_block(blk, xq, _mm256_loadu_si256((const __m256i *)a->bsums), a->d, si, acc);
        }
        y[r] = k6g_hsum(acc);
    }
}

int pq_k_gemv(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
              float *y) {
    if (type == PULSE_GGML_Q4_K && (x[0].order & PULSE_QROW_ONE)) {
        k4_gemv_rows(W, wrow, r0, r1, x, nb, y);
        return 1;
    }
    if (type == PULSE_GGML_Q6_K && !(x[0].order & PULSE_QROW_TILED)) {
        k6_gemv_rows(W, wrow, r0, r1, x, nb, y);
        return 1;
    }
    return 0;
}

int pq_k_gemv_row1(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                   float *y) {
    if (type == PULSE_GGML_Q4_K && (x[0].order & PULSE_QROW_ONE)) {
        return k4_gemv_row1(W, wrow, r0, r1, x, nb, y);
    }
    if (type == PULSE_GGML_Q6_K && !(x[0].order & PULSE_QROW_TILED)) {
        k6_gemv_row1(W, wrow, r0, r1, x, nb, y);
        return 1;
    }
    return 0;
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
