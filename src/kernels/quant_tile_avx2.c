/* kernels/quant_tile_avx2.c — owns the batched quantised products at the AVX2 level (AVX2 + FMA + F16C: no
 * AVX-512, no VNNI; u8 x i8 products with vpmaddubsw / vpmaddwd as ggml's AVX2 code computes them), which
 * quant.c uses for batches of activation rows where quant_tile.c's AVX512-VNNI kernels are not chosen (an
 * AVX2-only CPU, or --isa avx2): the 32-element weights (type 0: q4_0, q5_0, q8_0; type 1: q4_1, q5_1) in 4
 * weight rows x 2 activation rows register tiles (PQ_T0A_MIN_N rows or more), and q4_K and q6_K (rows in
 * llama.cpp's tiled order) with the activation rows in the vector lanes, 4 weight rows x 2 groups of 8
 * activation rows per tile (PQ_K4A_MIN_N / PQ_K6A_MIN_N or more); and training's order for the 32-element
 * types (pulse_qmatmul_fast without VNNI: 4 weight rows x 8 activation columns in the lanes; its section at
 * the end). pulse_options.qtile = 0 keeps the per-row
 * kernels. Each tile's weights are unpacked once into a per-thread scratch and the next tile's are
 * prefetched while it computes (the weights stream from memory once per product).
 *
 * Type-0 / type-1 tiles. The sums are llama.cpp's, bit for bit (ggml_vec_dot_q*_0_q8_0 / _q*_1_q8_1 and
 * quant_avx2_dot.h's DEF_DOT32): per block 8 int32 lanes (lane l: the 4 products of elements 4l..4l+3, from
 * maddubs(|w|, sign(x, w)) for type 0 or maddubs(w, x) for the unsigned type-1 weights, then madd with ones),
 * converted to float, acc = fma(dw * dx, lanes, acc) block after block, then ggml's horizontal sum ((l0+l4) +
 * (l2+l6)) + ((l1+l5) + (l3+l7)); type 1 adds the float sum of mw * sx (mul, then add, block after block).
 * What is cheaper than one vec_dot per (row, column): each weight block is unpacked once per tile of 4 rows
 * (into a per-thread scratch, |w| and w, the scales) and reused by every activation row of the work item;
 * the 8 scale products dw_r * dx_c of a block come from one multiply; the 8 (row, column) accumulators and
 * the type-1 sums (the 8 pairs in the lanes of one vector) stay in registers over the blocks. Its limit is
 * that order itself: per 32 products one vpmaddubsw, one vpmaddwd, one conversion and one fma (ggml rounds
 * once per block and lane), and the multiplies and the fma share the same two ports.
 *
 * q4_K tiles (columns in the lanes). llama.cpp's q4_K sums (dot_q4_k_exact in quant_avx2_dot.h): per
 * 64-element group j of a block, the exact isum_j = sc_2j * dot(sub-block 2j) + sc_2j+1 * dot(sub-block
 * 2j+1) and imin_j = m_2j * bs_2j + m_2j+1 * bs_2j+1; acc = fma(isum_j, dw * dx, acc), accm = fma(imin_j,
 * dmin * dx, accm) per group (rows in 4-row gemm order) or once per block with the sums of the four
 * (PULSE_QROW_ONE); result acc - accm. The activations are packed once per product in groups of 8 rows, per
 * 4 elements the 8 rows' 4 bytes side by side (32 bytes), so one vpmaddubsw (the weight row's 4 nibbles
 * broadcast, unsigned, x the 8 rows' bytes) gives 2 elements' products of 8 outputs per int16 lane; the 8
 * groups of 4 of a 32-element sub-block are summed in int16 (at most 8 * 2 * 15 * 127 = 30480: exact), and
 * one vpmaddwd with the sub-block scale makes them int32. The float work is once per group for 8 outputs,
 * each lane the scalar sequence. A group whose rows mix the two orders (sequences of a few tokens each: the
 * last n % 4 of each are in the one-row order) steps each lane in its own order, blending by a lane mask from
 * the packing. q6_K: see its section below.
 *
 * Integer sums are exact and every float operation is the one llama.cpp does, so the results equal the
 * per-row kernels (tests/test_kernels_quant.c compares them bit for bit). */
#include "quant_internal.h"

#include <omp.h>
#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* llama.cpp's rounding, operation by operation */
#endif

#if defined(__AVX2__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TA_UNROLL _Pragma("GCC unroll 8")

static inline float ta_f16(const uint8_t *p) {
    return _cvtsh_ss(pq_rd16(p));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31) */
static inline __m256i ta_nibbles(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0x10 where bit i is set */
static inline __m256i ta_bits_x10(const uint8_t *p) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                          2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)pq_rd32(p)), shuf);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask), _mm256_set1_epi8(0x10));
}

/* The same block of the next tile's row (stride bytes on) on its way to L1 while this tile computes: the
 * weights stream from memory once per product (a prefetch past the matrix is harmless) */
static inline void ta_prefetch_next(const uint8_t *blk, size_t stride, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)blk + stride + o, _MM_HINT_T0);
    _mm_prefetch((const char *)blk + stride + bytes - 1, _MM_HINT_T0);
}

int pq_t0a_type(int type) {
    return type == PULSE_GGML_Q4_0 || type == PULSE_GGML_Q5_0 || type == PULSE_GGML_Q8_0 ? 1
           : type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1                          ? 2
                                                                                         : 0;
}

/* ---- type 0 / type 1: 4 weight rows x 2 activation rows ---- */
#define T0A_R 4
#define T0A_C 2

/* One weight block -> the signed values (type 0) or the unsigned stored ones (type 1), as DEF_DOT32 */
static inline __m256i t0a_bytes(const int type, const uint8_t *w) {
    switch (type) {
    case PULSE_GGML_Q4_1:
        return ta_nibbles(w + 4);
    case PULSE_GGML_Q5_1:
        return _mm256_or_si256(ta_nibbles(w + 8), ta_bits_x10(w + 4));
    case PULSE_GGML_Q8_0:
        return _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
    case PULSE_GGML_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(ta_nibbles(w + 6), ta_bits_x10(w + 2)), _mm256_set1_epi8(16));
    default: /* q4_0 */
        return _mm256_sub_epi8(ta_nibbles(w + 2), _mm256_set1_epi8(8));
    }
}

/* The weight tile of one block: the unsigned operand (|w| for type 0), the signs (type 0: w itself), the
 * scales dw in lanes 2r, 2r + 1 and the type-1 offsets mw likewise. */
typedef struct {
    __m256i u[T0A_R];
    __m256i s[T0A_R];
    __m256 a, m;
} t0a_wblk;

static inline __attribute__((always_inline)) void t0a_unpack(const int type, const uint8_t *W, size_t wrow,
                                                             int rt, int nr, int64_t nb, t0a_wblk *T) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const size_t BS = type == PULSE_GGML_Q8_0   ? 34
                      : type == PULSE_GGML_Q5_0 ? 22
                      : type == PULSE_GGML_Q4_1 ? 20
                      : type == PULSE_GGML_Q5_1 ? 24
                                                : 18;
    for (int64_t b = 0; b < nb; b++) {
        float dw[T0A_R] = {0, 0, 0, 0}, mw[T0A_R] = {0, 0, 0, 0};
        for (int r = 0; r < T0A_R; r++) {
            if (r >= nr) { /* missing rows: zero weights and scales, computed but never stored */
                T[b].u[r] = T[b].s[r] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *w = W + (size_t)(rt + r) * wrow + (size_t)b * BS;
            const __m256i v = t0a_bytes(type, w);
            dw[r] = ta_f16(w);
            if (T1) {
                mw[r] = ta_f16(w + 2);
                T[b].u[r] = v;
            } else {
                T[b].u[r] = _mm256_sign_epi8(v, v);
                T[b].s[r] = v;
            }
        }
        T[b].a = _mm256_setr_ps(dw[0], dw[0], dw[1], dw[1], dw[2], dw[2], dw[3], dw[3]);
        T[b].m = _mm256_setr_ps(mw[0], mw[0], mw[1], mw[1], mw[2], mw[2], mw[3], mw[3]);
    }
}

/* ggml's hsum_float_8 of 4 accumulators at once -> lane k: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) of acc k */
static inline __m128 ta_hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m128 s0 = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    __m128 s1 = _mm_add_ps(_mm256_castps256_ps128(a1), _mm256_extractf128_ps(a1, 1));
    __m128 s2 = _mm_add_ps(_mm256_castps256_ps128(a2), _mm256_extractf128_ps(a2, 1));
    __m128 s3 = _mm_add_ps(_mm256_castps256_ps128(a3), _mm256_extractf128_ps(a3, 1));
    _MM_TRANSPOSE4_PS(s0, s1, s2, s3);
    return _mm_add_ps(_mm_add_ps(s0, s2), _mm_add_ps(s1, s3));
}

/* The (4 x 2) tile: weight tile T against activation rows x0, x1 (pq_a32 rows) -> o[c][r]. */
static inline __attribute__((always_inline)) void t0a_tile(const int T1, const t0a_wblk *T, const pq_a32 *x0,
                                                           const pq_a32 *x1, int64_t nb,
                                                           float o[T0A_C][T0A_R]) {
    __m256 acc[T0A_R][T0A_C];
    TA_UNROLL for (int r = 0; r < T0A_R; r++) TA_UNROLL for (int c = 0; c < T0A_C; c++) acc[r][c] =
        _mm256_setzero_ps();
    __m256 summs = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i X[T0A_C] = {_mm256_loadu_si256((const __m256i *)(const void *)x0[b].qs),
                                  _mm256_loadu_si256((const __m256i *)(const void *)x1[b].qs)};
        /* D[2r + c] = dw_r * dx_c: the products llama.cpp forms one at a time */
        const __m128 dx = _mm_unpacklo_ps(_mm_set_ss(x0[b].d), _mm_set_ss(x1[b].d));
        float D[8] __attribute__((aligned(32)));
        _mm256_store_ps(D, _mm256_mul_ps(T[b].a, _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(dx)))));
        __asm__("" : "+m"(D)); /* each product reaches its fma as a broadcast load */
        if (T1) {              /* summs += mw_r * sx_c in lane 2r + c */
            const __m128 sx = _mm_unpacklo_ps(_mm_set_ss(x0[b].s), _mm_set_ss(x1[b].s));
            summs = _mm256_add_ps(
                summs, _mm256_mul_ps(T[b].m, _mm256_castpd_ps(_mm256_broadcastsd_pd(_mm_castps_pd(sx)))));
        }
        TA_UNROLL for (int r = 0; r < T0A_R; r++) TA_UNROLL for (int c = 0; c < T0A_C; c++) {
            const __m256i p = T1 ? _mm256_maddubs_epi16(T[b].u[r], X[c])
                                 : _mm256_maddubs_epi16(T[b].u[r], _mm256_sign_epi8(X[c], T[b].s[r]));
            acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(D[2 * r + c]),
                                        _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[r][c]);
        }
    }
    const __m128 h0 = ta_hsum4(acc[0][0], acc[0][1], acc[1][0], acc[1][1]); /* lanes 2r + c, r = 0, 1 */
    const __m128 h1 = ta_hsum4(acc[2][0], acc[2][1], acc[3][0], acc[3][1]);
    float s[8], hs[8];
    _mm_storeu_ps(hs, h0);
    _mm_storeu_ps(hs + 4, h1);
    _mm256_storeu_ps(s, summs);
    for (int r = 0; r < T0A_R; r++)
        for (int c = 0; c < T0A_C; c++) o[c][r] = T1 ? hs[2 * r + c] + s[2 * r + c] : hs[2 * r + c];
}

static inline __attribute__((always_inline)) void t0a_rows(const int type, const uint8_t *W, size_t wrow,
                                                           int r0, int r1, const uint8_t *xa, size_t xs,
                                                           int N, int64_t nb, float *Y, size_t ldy,
                                                           t0a_wblk *T) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    for (int rt = r0; rt < r1; rt += T0A_R) {
        const int nr = r1 - rt < T0A_R ? r1 - rt : T0A_R;
        t0a_unpack(type, W, wrow, rt, nr, nb, T);
        /* the next tile's 4 weight rows on their way, a share per column pair (in one burst at the unpack
         * the prefetches outnumber the miss buffers; a prefetch past the matrix is harmless) */
        const char *nx = (const char *)W + (size_t)(rt + T0A_R) * wrow;
        const size_t nlines = (T0A_R * wrow + 63) / 64, npairs = (size_t)(N + T0A_C - 1) / T0A_C,
                     per = (nlines + npairs - 1) / npairs;
        for (int n = 0; n < N; n += T0A_C) {
            for (size_t l = (size_t)(n / T0A_C) * per; l < (size_t)(n / T0A_C + 1) * per && l < nlines; l++)
                _mm_prefetch(nx + 64 * l, _MM_HINT_T0);
            const int nc = N - n < T0A_C ? N - n : T0A_C;
            const pq_a32 *x0 = (const pq_a32 *)(const void *)(xa + (size_t)n * xs);
            const pq_a32 *x1 =
                (const pq_a32 *)(const void *)(xa + (size_t)(n + nc - 1) * xs); /* tail: again */
            float o[T0A_C][T0A_R];
            if (T1)
                t0a_tile(1, T, x0, x1, nb, o);
            else
                t0a_tile(0, T, x0, x1, nb, o);
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++) Y[(size_t)(n + c) * ldy + rt + r] = o[c][r];
        }
    }
}

int pq_t0a_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const uint8_t *xa, size_t xs, int N,
                int64_t nb, float *Y, size_t ldy) {
    t0a_wblk *T = pk_scratch(PK_SCR_T0_TILE, (size_t)nb * sizeof(t0a_wblk));
    if (!T) return 0;
    switch (type) {
    case PULSE_GGML_Q8_0:
        t0a_rows(PULSE_GGML_Q8_0, W, wrow, r0, r1, xa, xs, N, nb, Y, ldy, T);
        return 1;
    case PULSE_GGML_Q5_0:
        t0a_rows(PULSE_GGML_Q5_0, W, wrow, r0, r1, xa, xs, N, nb, Y, ldy, T);
        return 1;
    case PULSE_GGML_Q4_0:
        t0a_rows(PULSE_GGML_Q4_0, W, wrow, r0, r1, xa, xs, N, nb, Y, ldy, T);
        return 1;
    case PULSE_GGML_Q4_1:
        t0a_rows(PULSE_GGML_Q4_1, W, wrow, r0, r1, xa, xs, N, nb, Y, ldy, T);
        return 1;
    case PULSE_GGML_Q5_1:
        t0a_rows(PULSE_GGML_Q5_1, W, wrow, r0, r1, xa, xs, N, nb, Y, ldy, T);
        return 1;
    default:
        return 0;
    }
}

/* ---- q4_K: 8 activation rows in the lanes ---- */
size_t pq_k4a_pack_bytes(int N, int64_t nb) {
    const size_t G = (size_t)((N + 7) / 8);
    return G * (size_t)nb * sizeof(pq_k4a_blk) + G * 8 * sizeof(int32_t) + G;
}

void pq_k4a_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k4a_blk *out) {
    const int G = (N + 7) / 8;
    int32_t *masks = (int32_t *)(void *)(out + (size_t)G * (size_t)nb);
    uint8_t *flags = (uint8_t *)(masks + (size_t)G * 8);
    memset(out, 0, pq_k4a_pack_bytes(N, nb));
    for (int g = 0; g < G; g++) {
        int n_one = 0, n = 0;
        for (int c = 0; c < 8 && 8 * g + c < N; c++, n++) {
            const pq_a256 *a = (const pq_a256 *)(const void *)(xa + (size_t)(8 * g + c) * xs);
            n_one += (a[0].order & PULSE_QROW_ONE) != 0;
            masks[8 * g + c] = (a[0].order & PULSE_QROW_ONE) ? -1 : 0;
            for (int64_t b = 0; b < nb; b++) {
                pq_k4a_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                for (int e = 0; e < 64; e++) memcpy(k->xq[e] + 4 * c, a[b].qs + 4 * e, 4);
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

#ifndef K4A_R
/* one 4-weight-row x 8-lane tile's results (lane c = activation row c) into Y: rows nr of 4, columns
 * min(nc, 8), Y[c * ldy + r] (the q4_K and q6_K lane tiles share it) */
static inline void ta_store_lanes(const __m256 out[4], int nr, int nc, float *Y, size_t ldy) {
    float o[4][8] __attribute__((aligned(32)));
    for (int r = 0; r < 4; r++) _mm256_store_ps(o[r], out[r]);
    if (nc > 8) nc = 8;
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++) Y[(size_t)c * ldy + r] = o[r][c];
}

#define K4A_R 4 /* weight rows per tile */
_Static_assert(K4A_R == 4, "ta_store_lanes stores 4 weight rows");
#endif
#ifndef K4A_NV
#define K4A_NV 2 /* groups of 8 activation rows per tile */
#endif
typedef struct {
    _Alignas(32) uint8_t w[K4A_R][256]; /* the rows' nibbles in element order */
    int32_t sc[K4A_R][8];               /* sc_s as an int16 pair (sc, sc) */
    int32_t mp[K4A_R][4];               /* (m_2j, m_2j+1) as an int16 pair */
    float d[K4A_R], dmin[K4A_R];
} k4a_wtile;

static void k4a_unpack(const uint8_t *blk, int r, k4a_wtile *t) {
    const uint8_t *q = blk + 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; j++) { /* 64-element group j: low nibbles (sub-block 2j), then high (2j + 1) */
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32 * j));
        _mm256_store_si256((__m256i *)(void *)(t->w[r] + 64 * j), _mm256_and_si256(raw, m4));
        _mm256_store_si256((__m256i *)(void *)(t->w[r] + 64 * j + 32),
                           _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
    }
    /* the 6-bit scales and mins with 32-bit word operations (as pq_scale_min_k4) */
    const uint32_t q0 = pq_rd32(blk + 4), q1 = pq_rd32(blk + 8), q2 = pq_rd32(blk + 12);
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_setr_epi32(
                      (int)(q0 & 0x3F3F3F3Fu), (int)((q2 & 0x0F0F0F0Fu) | ((q0 >> 2) & 0x30303030u)), 0, 0)),
                  mn16 = _mm_cvtepu8_epi16(
                      _mm_setr_epi32((int)(q1 & 0x3F3F3F3Fu),
                                     (int)(((q2 >> 4) & 0x0F0F0F0Fu) | ((q1 >> 2) & 0x30303030u)), 0, 0));
    _mm_storeu_si128((__m128i *)(void *)t->sc[r], _mm_unpacklo_epi16(sc16, sc16));
    _mm_storeu_si128((__m128i *)(void *)(t->sc[r] + 4), _mm_unpackhi_epi16(sc16, sc16));
    _mm_storeu_si128((__m128i *)(void *)t->mp[r], mn16);
    t->d[r] = ta_f16(blk);
    t->dmin[r] = ta_f16(blk + 2);
}

static inline __m256i ta_bcast32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* NV groups of 8 activation rows (adjacent in the packing: k, k + nb) x K4A_R weight rows -> out[v][r] */
static inline __attribute__((always_inline)) void k4a_tile(const k4a_wtile *t, const pq_k4a_blk *k,
                                                           int64_t nb, const int ONE, const int NV,
                                                           const int32_t *mask, __m256 out[2][K4A_R]) {
    __m256 facc[2][K4A_R], faccm[2][K4A_R];
    TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) facc[v][r] =
        faccm[v][r] = _mm256_setzero_ps();
    __m256 mk[2]; /* ONE == 2 (rows of both orders): the lanes in the one-row order */
    TA_UNROLL for (int v = 0; v < NV; v++) mk[v] =
        ONE == 2 ? _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(const void *)(mask + 8 * v)))
                 : _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, t++) {
        __m256i It[2][K4A_R], Mt[2][K4A_R];
        __m256 dd[2][K4A_R], dm[2][K4A_R]; /* dw * dx and dmin * dx, the products llama.cpp forms */
        TA_UNROLL for (int v = 0; v < NV; v++) {
            const __m256 ad = _mm256_load_ps(k[v * nb].d);
            TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                It[v][r] = Mt[v][r] = _mm256_setzero_si256();
                dd[v][r] = _mm256_mul_ps(_mm256_set1_ps(t->d[r]), ad);
                dm[v][r] = _mm256_mul_ps(_mm256_set1_ps(t->dmin[r]), ad);
            }
        }
        for (int j = 0; j < 4; j++) {
            __m256i I[2][K4A_R];
            TA_UNROLL for (int h = 0; h < 2; h++) {
                const int s = 2 * j + h;
                __m256i a[2][K4A_R];
                TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) a[v][r] =
                    _mm256_setzero_si256();
                TA_UNROLL for (int kk = 0; kk < 8; kk++) {
                    __m256i y[2];
                    TA_UNROLL for (int v = 0; v < NV; v++) y[v] =
                        _mm256_load_si256((const __m256i *)(const void *)k[v * nb].xq[8 * s + kk]);
                    TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                        const __m256i w = ta_bcast32(t->w[r] + 32 * s + 4 * kk);
                        TA_UNROLL for (int v = 0; v < NV; v++) a[v][r] =
                            _mm256_add_epi16(a[v][r], _mm256_maddubs_epi16(w, y[v]));
                    }
                }
                TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                    const __m256i p = _mm256_madd_epi16(a[v][r], _mm256_set1_epi32(t->sc[r][s]));
                    I[v][r] = h ? _mm256_add_epi32(I[v][r], p) : p;
                }
            }
            TA_UNROLL for (int v = 0; v < NV; v++) {
                const __m256i bs = _mm256_load_si256((const __m256i *)(const void *)k[v * nb].bs[j]);
                TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                    const __m256i M = _mm256_madd_epi16(bs, _mm256_set1_epi32(t->mp[r][j]));
                    if (ONE) {
                        It[v][r] = _mm256_add_epi32(It[v][r], I[v][r]);
                        Mt[v][r] = _mm256_add_epi32(Mt[v][r], M);
                    }
                    if (ONE == 0) {
                        facc[v][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I[v][r]), dd[v][r], facc[v][r]);
                        faccm[v][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(M), dm[v][r], faccm[v][r]);
                    } else if (ONE == 2) { /* the group order's lanes step, the one-row lanes keep */
                        facc[v][r] = _mm256_blendv_ps(
                            _mm256_fmadd_ps(_mm256_cvtepi32_ps(I[v][r]), dd[v][r], facc[v][r]), facc[v][r],
                            mk[v]);
                        faccm[v][r] =
                            _mm256_blendv_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(M), dm[v][r], faccm[v][r]),
                                             faccm[v][r], mk[v]);
                    }
                }
            }
        }
        if (ONE == 1) TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                facc[v][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(It[v][r]), dd[v][r], facc[v][r]);
                faccm[v][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Mt[v][r]), dm[v][r], faccm[v][r]);
            }
        if (ONE == 2) /* the one-row lanes step once per block */
            TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) {
                facc[v][r] = _mm256_blendv_ps(
                    facc[v][r], _mm256_fmadd_ps(_mm256_cvtepi32_ps(It[v][r]), dd[v][r], facc[v][r]), mk[v]);
                faccm[v][r] = _mm256_blendv_ps(
                    faccm[v][r], _mm256_fmadd_ps(_mm256_cvtepi32_ps(Mt[v][r]), dm[v][r], faccm[v][r]), mk[v]);
            }
    }
    TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K4A_R; r++) out[v][r] =
        _mm256_sub_ps(facc[v][r], faccm[v][r]);
}

int pq_k4a_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k4a_blk *pk, int G_total, int g0,
                int N, int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy) {
    const size_t need = (size_t)nb * sizeof(k4a_wtile);
    k4a_wtile *T = pk_scratch(PK_SCR_K4_TILE, need);
    if (!T) return 0;
    const int32_t *masks = (const int32_t *)(const void *)(pk + (size_t)G_total * (size_t)nb);
    const uint8_t *flags = (const uint8_t *)(masks + (size_t)G_total * 8);
    const int G = (N + 7) / 8;
    (void)xa, (void)xs;
    for (int rt = r0; rt < r1; rt += K4A_R) {
        const int nr = r1 - rt < K4A_R ? r1 - rt : K4A_R;
        if (nr < K4A_R) memset(T, 0, need); /* the missing rows: zero weights and scales */
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < nr; r++) {
                const uint8_t *blk = W + (size_t)(rt + r) * wrow + (size_t)b * 144;
                ta_prefetch_next(blk, wrow * K4A_R, 144);
                k4a_unpack(blk, r, &T[b]);
            }
        for (int g = 0; g < G;) {
            const int fl = flags[g0 + g];
            const int32_t *mask = masks + (size_t)(g0 + g) * 8;
            /* two groups at once where the next one has the same order */
            const int nv = K4A_NV == 2 && g + 1 < G && flags[g0 + g + 1] == fl ? 2 : 1;
            __m256 out[2][K4A_R];
            const pq_k4a_blk *k = pk + (size_t)(g0 + g) * (size_t)nb;
            if (nv == 2) {
                if (fl == 2)
                    k4a_tile(T, k, nb, 2, 2, mask, out);
                else if (fl)
                    k4a_tile(T, k, nb, 1, 2, mask, out);
                else
                    k4a_tile(T, k, nb, 0, 2, mask, out);
            } else if (fl == 2)
                k4a_tile(T, k, nb, 2, 1, mask, out);
            else if (fl)
                k4a_tile(T, k, nb, 1, 1, mask, out);
            else
                k4a_tile(T, k, nb, 0, 1, mask, out);
            for (int v = 0; v < nv; v++, g++)
                ta_store_lanes(out[v], nr, N - 8 * g, Y + (size_t)(8 * g) * ldy + rt, ldy);
        }
    }
    return 1;
}

/* ---- q4_K against one activation row (decode), one weight row at a time ----
 * In address order, 4 blocks of the row at a time: per block and 64 elements, the low / high nibbles times
 * the activations (vpmaddubsw, at most 2 * 15 * 127 per int16) times the sub-block's scale (vpmaddwd) give 8
 * exact int32 lanes; the 4 blocks' lanes are summed by one transposing tree instead of each block alone, then
 * the row's scalar sequence acc = fma(isum, dw * dx, acc), accm = fma(imin, dmin * dx, accm) block by block:
 * llama.cpp's one-row order (PULSE_QROW_ONE), the same bits as quant_avx2_dot.h's dot_q4_k_exact. */
static void k4_gemv_row1_avx2(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                              float *y) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i dup_m = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m256i bc[8] = {_mm256_set1_epi16(0x0100), _mm256_set1_epi16(0x0302), _mm256_set1_epi16(0x0504),
                           _mm256_set1_epi16(0x0706), _mm256_set1_epi16(0x0908), _mm256_set1_epi16(0x0B0A),
                           _mm256_set1_epi16(0x0D0C), _mm256_set1_epi16(0x0F0E)};
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * wrow;
        __m128 acc = _mm_setzero_ps(); /* (acc, accm) */
        for (int64_t b0 = 0; b0 < nb; b0 += 4) {
            const int nk = nb - b0 < 4 ? (int)(nb - b0) : 4;
            __m256i I[4], M[4];
            pq_k4_row1_prefetch(w, b0);
            TA_UNROLL for (int k = 0; k < 4; k++) {
                if (k >= nk) { /* past the row's end */
                    I[k] = M[k] = _mm256_setzero_si256();
                    continue;
                }
                const pq_a256 *a = x + b0 + k;
                const int64_t b = b0 + k;
                const uint8_t *blk = w + (size_t)b * 144;
                const __m128i scm = pq_k4_scales(blk);
                const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
                __m256i s = _mm256_setzero_si256();
                TA_UNROLL for (int j = 0; j < 4; j++) {
                    const __m256i raw = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * j));
                    const __m256i lo = _mm256_and_si256(raw, m4),
                                  hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                    const __m256i p0 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * j))),
                        _mm256_shuffle_epi8(sc16, bc[2 * j]));
                    const __m256i p1 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * j + 32))),
                        _mm256_shuffle_epi8(sc16, bc[2 * j + 1]));
                    s = _mm256_add_epi32(s, _mm256_add_epi32(p0, p1));
                }
                I[k] = s;
                M[k] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a->bsums),
                                         _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup_m)));
            }
            /* lane k of each: the sum of the 8 lanes of I[k] / M[k] (integers: any order) */
            const __m256i hi4 =
                _mm256_hadd_epi32(_mm256_hadd_epi32(I[0], I[1]), _mm256_hadd_epi32(I[2], I[3]));
            const __m256i hm4 =
                _mm256_hadd_epi32(_mm256_hadd_epi32(M[0], M[1]), _mm256_hadd_epi32(M[2], M[3]));
            const __m128 x4 = _mm_setr_ps(x[b0].d, nk > 1 ? x[b0 + 1].d : 0, nk > 2 ? x[b0 + 2].d : 0,
                                          nk > 3 ? x[b0 + 3].d : 0);
            pq_k4_row1_fma(
                w, b0, nk, x4, _mm_add_epi32(_mm256_castsi256_si128(hi4), _mm256_extracti128_si256(hi4, 1)),
                _mm_add_epi32(_mm256_castsi256_si128(hm4), _mm256_extracti128_si256(hm4, 1)), &acc);
        }
        y[r] = _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc));
    }
}

/* ---- q6_K against one activation row (decode), one weight row at a time ----
 * quant_avx2_dot.h's dot_q6_k_n for one row in llama.cpp's one-row order, its operations unchanged (per block
 * the exact lanes sum_c,g madd(maddubs(q6, x), scale pair) - 32 madd(sc, bsums), then acc = fma(lanes, dw dx,
 * acc), ggml's horizontal sum at the end), written without the batched form's per-block order test and
 * arrays: that form ran at 23 GB/s in cache at AVX2 against ggml's 25.6. */
static void k6_gemv_row1_avx2(const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                              float *y) {
    const __m256i p0 = _mm256_setr_m128i(_mm_set1_epi16((short)0x0100), _mm_set1_epi16((short)0x0302)),
                  p1 = _mm256_setr_m128i(_mm_set1_epi16((short)0x0504), _mm_set1_epi16((short)0x0706)),
                  p2 = _mm256_setr_m128i(_mm_set1_epi16((short)0x0908), _mm_set1_epi16((short)0x0B0A)),
                  p3 = _mm256_setr_m128i(_mm_set1_epi16((short)0x0D0C), _mm_set1_epi16((short)0x0F0E));
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * wrow;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++, w += 210) {
            const pq_a256 *a = x + b;
            const __m256i sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 192)));
            __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
            for (int c = 0; c < 2; c++) {
                const __m256i half = c ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                                       : _mm256_permute2x128_si256(sc16, sc16, 0x00);
                const int8_t *q8 = a->qs + 128 * c;
                __m256i v[4];
                pq_q6k_unpack128(w + 64 * c, w + 128 + 32 * c, v);
#define K6R1(g, P)                                                                                           \
    sumi = _mm256_add_epi32(                                                                                 \
        sumi,                                                                                                \
        _mm256_madd_epi16(                                                                                   \
            _mm256_maddubs_epi16(v[g], _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 32 * (g)))),  \
            _mm256_shuffle_epi8(half, P)))
                K6R1(0, p0);
                K6R1(1, p1);
                K6R1(2, p2);
                K6R1(3, p3);
#undef K6R1
            }
            const __m256i off = _mm256_slli_epi32(
                _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(const void *)a->bsums)), 5);
            sumi = _mm256_sub_epi32(sumi, off);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(ta_f16(w + 208) * a->d), acc);
        }
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)); /* hsum_ps */
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        y[r] = _mm_cvtss_f32(s);
    }
}

int pq_k_gemv_row1_avx2(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                        float *y) {
    if (type == PULSE_GGML_Q4_K && (x[0].order & PULSE_QROW_ONE)) {
        k4_gemv_row1_avx2(W, wrow, r0, r1, x, nb, y);
        return 1;
    }
    if (type == PULSE_GGML_Q6_K && (x[0].order & PULSE_QROW_ONE)) {
        k6_gemv_row1_avx2(W, wrow, r0, r1, x, nb, y);
        return 1;
    }
    return 0;
}

/* ---- q6_K: 8 activation rows in the lanes, rows in llama.cpp's tiled order ----
 * vec_dot_q6_k's tiled order (PULSE_QROW_TILED, see quant_ref.c): per (row, column) and block the exact isum
 * = sum over the 16 sub-blocks of sc_s * (q6 . x) minus 32 * sum_s sc_s * bsum_s, then acc = fma(isum * dw,
 * dx, acc). The 6-bit values are unsigned (0..63), so a vpmaddubsw (4 weight bytes broadcast x the 8 rows'
 * bytes) gives int16 pairs of at most 2 * 63 * 127; two of them are summed in int16 (<= 32004: exact) and one
 * vpmaddwd with the sub-block scale makes them int32; the -32 terms are one vpmaddwd per pair of sub-blocks
 * with (-32 sc_2l, -32 sc_2l+1). Rows in vec_dot's per-lane order (batches under 8 rows, per-sequence orders
 * of short sequences) take the per-row kernels: that order accumulates 8 float lanes per output, each from
 * one group of 4 elements per 32, so lanes in the vector lanes need one vpmaddubsw + vpmaddwd + add per 32
 * products, as the per-row kernel does (measured: no faster, so not kept). */
size_t pq_k6a_pack_bytes(int N, int64_t nb) {
    const size_t G = (size_t)((N + 7) / 8);
    return G * (size_t)nb * sizeof(pq_k6a_blk) + G;
}

void pq_k6a_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k6a_blk *out) {
    const int G = (N + 7) / 8;
    uint8_t *flags = (uint8_t *)(out + (size_t)G * (size_t)nb);
    memset(out, 0, pq_k6a_pack_bytes(N, nb));
    for (int g = 0; g < G; g++) {
        int n_tiled = 0, n = 0;
        for (int c = 0; c < 8 && 8 * g + c < N; c++, n++) {
            const pq_a256 *a = (const pq_a256 *)(const void *)(xa + (size_t)(8 * g + c) * xs);
            n_tiled += (a[0].order & PULSE_QROW_TILED) != 0;
            for (int64_t b = 0; b < nb; b++) {
                pq_k6a_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                for (int e = 0; e < 64; e++) memcpy(k->xq[e] + 4 * c, a[b].qs + 4 * e, 4);
                for (int l = 0; l < 8; l++)
                    k->bp[l][c] = (int32_t)(((uint32_t)(uint16_t)a[b].bsums[2 * l + 1] << 16) |
                                            (uint16_t)a[b].bsums[2 * l]);
                k->d[c] = a[b].d;
            }
        }
        flags[g] = (uint8_t)(n_tiled == 0 ? 0 : n_tiled == n ? 1 : 2);
    }
}

#ifndef K6A_R
#define K6A_R 4 /* weight rows per tile */
_Static_assert(K6A_R == 4, "ta_store_lanes stores 4 weight rows");
#endif
#ifndef K6A_NV
#define K6A_NV 2 /* groups of 8 activation rows per tile */
#endif
typedef struct {
    _Alignas(32) uint8_t w[K6A_R][256]; /* the rows' 6-bit values in element order */
    int32_t sc[K6A_R][16];              /* sc_s as an int16 pair (sc, sc) */
    int32_t cp[K6A_R][8];               /* (-32 sc_2l, -32 sc_2l+1) as an int16 pair */
    float d[K6A_R];
} k6a_wtile;

static void k6a_unpack(const uint8_t *blk, int r, k6a_wtile *t) {
    const int8_t *sc = (const int8_t *)(blk + 192);
    for (int c = 0; c < 2; c++) {
        __m256i v[4];
        pq_q6k_unpack128(blk + 64 * c, blk + 128 + 32 * c, v);
        for (int g = 0; g < 4; g++) _mm256_store_si256((__m256i *)(void *)(t->w[r] + 128 * c + 32 * g), v[g]);
    }
    /* sc as int16, (sc, sc) pairs, and -32 sc in int16 order = the (-32 sc_2l, -32 sc_2l+1) pairs */
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)sc));
    const __m256i sp = _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(3, 1, 2, 0)); /* s 0-3, 8-11 | 4-7, 12-15 */
    _mm256_storeu_si256((__m256i *)(void *)t->sc[r], _mm256_unpacklo_epi16(sp, sp));
    _mm256_storeu_si256((__m256i *)(void *)(t->sc[r] + 8), _mm256_unpackhi_epi16(sp, sp));
    _mm256_storeu_si256((__m256i *)(void *)t->cp[r],
                        _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5));
    t->d[r] = ta_f16(blk + 208);
}

/* NV groups of 8 activation rows (adjacent in the packing: k, k + nb) x K6A_R weight rows -> out[v][r] */
static inline __attribute__((always_inline)) void k6a_tile(const k6a_wtile *t, const pq_k6a_blk *k,
                                                           int64_t nb, const int NV, __m256 out[2][K6A_R]) {
    __m256 facc[2][K6A_R];
    TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K6A_R; r++) facc[v][r] =
        _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, t++) {
        __m256i I[2][K6A_R];
        TA_UNROLL for (int v = 0; v < NV; v++) {
            TA_UNROLL for (int r = 0; r < K6A_R; r++) I[v][r] = _mm256_setzero_si256();
            TA_UNROLL for (int l = 0; l < 8; l++) { /* the -32 terms */
                const __m256i bp = _mm256_load_si256((const __m256i *)(const void *)k[v * nb].bp[l]);
                TA_UNROLL for (int r = 0; r < K6A_R; r++) I[v][r] =
                    _mm256_add_epi32(I[v][r], _mm256_madd_epi16(bp, _mm256_set1_epi32(t->cp[r][l])));
            }
        }
        for (int s = 0; s < 16; s++) {
            TA_UNROLL for (int hh = 0; hh < 2; hh++) { /* 8 elements: two groups of 4 summed in int16 */
                const int e = 4 * s + 2 * hh;
                __m256i y0[2], y1[2];
                TA_UNROLL for (int v = 0; v < NV; v++) {
                    y0[v] = _mm256_load_si256((const __m256i *)(const void *)k[v * nb].xq[e]);
                    y1[v] = _mm256_load_si256((const __m256i *)(const void *)k[v * nb].xq[e + 1]);
                }
                TA_UNROLL for (int r = 0; r < K6A_R; r++) {
                    const __m256i w0 = ta_bcast32(t->w[r] + 4 * e), w1 = ta_bcast32(t->w[r] + 4 * e + 4),
                                  sc = _mm256_set1_epi32(t->sc[r][s]);
                    TA_UNROLL for (int v = 0; v < NV; v++) {
                        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, y0[v]),
                                                           _mm256_maddubs_epi16(w1, y1[v]));
                        I[v][r] = _mm256_add_epi32(I[v][r], _mm256_madd_epi16(p, sc));
                    }
                }
            }
        }
        TA_UNROLL for (int v = 0; v < NV; v++) {
            const __m256 dx = _mm256_load_ps(k[v * nb].d);
            TA_UNROLL for (int r = 0; r < K6A_R; r++) facc[v][r] = _mm256_fmadd_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(I[v][r]), _mm256_set1_ps(t->d[r])), dx, facc[v][r]);
        }
    }
    TA_UNROLL for (int v = 0; v < NV; v++) TA_UNROLL for (int r = 0; r < K6A_R; r++) out[v][r] = facc[v][r];
}

int pq_k6a_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k6a_blk *pk, int G_total, int g0,
                int N, int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy) {
    const size_t need = (size_t)nb * sizeof(k6a_wtile);
    k6a_wtile *T = pk_scratch(PK_SCR_K6_TILE, need);
    if (!T) return 0;
    const uint8_t *flags = (const uint8_t *)(pk + (size_t)G_total * (size_t)nb);
    const int G = (N + 7) / 8;
    for (int g = 0; g < G;) /* groups not all in the tiled order: the per-row kernels, a run at a time */
        if (flags[g0 + g] != 1) {
            int g1 = g + 1;
            while (g1 < G && flags[g0 + g1] != 1) g1++;
            const int nc = N < 8 * g1 ? N - 8 * g : 8 * (g1 - g);
            pq_rows_avx2(PULSE_GGML_Q6_K, W, wrow, r0, r1, xa + (size_t)(8 * g) * xs, xs, nc, 256 * nb,
                         Y + (size_t)(8 * g) * ldy, ldy);
            g = g1;
        } else
            g++;
    for (int rt = r0; rt < r1; rt += K6A_R) {
        const int nr = r1 - rt < K6A_R ? r1 - rt : K6A_R;
        if (nr < K6A_R) memset(T, 0, need); /* the missing rows: zero weights and scales */
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < nr; r++) {
                const uint8_t *blk = W + (size_t)(rt + r) * wrow + (size_t)b * 210;
                ta_prefetch_next(blk, wrow * K6A_R, 210);
                k6a_unpack(blk, r, &T[b]);
            }
        for (int g = 0; g < G;) {
            if (flags[g0 + g] != 1) {
                g++;
                continue;
            }
            const int nv =
                K6A_NV == 2 && g + 1 < G && flags[g0 + g + 1] == 1 ? 2 : 1; /* two groups at once */
            __m256 out[2][K6A_R];
            if (nv == 2)
                k6a_tile(T, pk + (size_t)(g0 + g) * (size_t)nb, nb, 2, out);
            else
                k6a_tile(T, pk + (size_t)(g0 + g) * (size_t)nb, nb, 1, out);
            for (int v = 0; v < nv; v++, g++)
                ta_store_lanes(out[v], nr, N - 8 * g, Y + (size_t)(8 * g) * ldy + rt, ldy);
        }
    }
    return 1;
}

/* ---- training's order (pulse_qmatmul_fast without VNNI): 4 weight rows x 8 activation columns in the lanes
 * ---- The integer block sums of pq_dot_fast_ref, then its float steps. The activations are packed 8 columns
 * per vector (per 4 elements the 8 columns' 4 signed bytes side by side) with each column's block byte sum;
 * the weight row's 4 bytes are broadcast as vpmaddubsw's unsigned operand: q + C as q4_0 / q5_0 store them (C
 * 8 / 16), q4_1 / q5_1 as stored. One vpmaddubsw gives 2 elements' products of 8 columns per int16 lane; the
 * block's 8 groups are summed in int16 (q4: at most 16 * 15 * 127 = 30480; q5: two halves of 4 groups, at
 * most 8 * 31 * 127 = 31496: exact), made int32 by one vpmaddwd each, minus C sum(x) for type 0. q8_0's
 * signed weights (to +-128) leave no room in int16: |w| against sign(x, w), one vpmaddwd per group. Then per
 * row and block one conversion, one multiply (dx of the 8 columns x dw) and one fma (+ mw s for type 1),
 * each lane the scalar sequence of pq_dot_fast_ref, bit for bit. */
size_t pq_t0g_pack_bytes(int N, int64_t nb) {
    return (size_t)((N + 7) / 8) * (size_t)nb * sizeof(pq_t0g_blk);
}

void pq_t0g_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_t0g_blk *out) {
    const int G = (N + 7) / 8;
#pragma omp parallel for schedule(static) if ((long)N * nb >= 8192 && !omp_in_parallel())
    for (int g = 0; g < G; g++) {
        memset(out + (size_t)g * (size_t)nb, 0, sizeof(pq_t0g_blk) * (size_t)nb);
        for (int c = 0; c < 8 && 8 * g + c < N; c++) {
            const pq_a32 *a = (const pq_a32 *)(const void *)(xa + (size_t)(8 * g + c) * xs);
            for (int64_t b = 0; b < nb; b++) {
                pq_t0g_blk *k = out + (size_t)g * (size_t)nb + (size_t)b;
                int sum = 0;
                for (int q = 0; q < 8; q++) memcpy(k->x[q] + 4 * c, a[b].qs + 4 * q, 4);
                for (int j = 0; j < 32; j++) sum += a[b].qs[j];
                k->sx[c] = sum;
                k->d[c] = a[b].d;
                k->s[c] = a[b].s;
            }
        }
    }
}

typedef struct {
    uint8_t u[4][32]; /* the unsigned operand: q + C, the stored q (type 1), |w| (q8_0) */
    int8_t w[4][32];  /* q8_0: the signed weights (their signs) */
    float dw[4], mw[4];
} t0g_wblk;

static inline __attribute__((always_inline)) void t0g_unpack(const int type, const uint8_t *W, size_t wrow,
                                                             size_t BS, int rt, int nr, int64_t nb,
                                                             t0g_wblk *wk) {
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < 4; r++) {
            t0g_wblk *o = wk + b;
            if (r >= nr) {
                memset(o->u[r], 0, 32), memset(o->w[r], 0, 32);
                o->dw[r] = o->mw[r] = 0;
                continue;
            }
            const uint8_t *blk = W + (size_t)(rt + r) * wrow + (size_t)b * BS;
            __m256i u;
            switch (type) {
            case PULSE_GGML_Q8_0: {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
                _mm256_storeu_si256((__m256i *)(void *)o->w[r], w);
                u = _mm256_abs_epi8(w);
                break;
            }
            case PULSE_GGML_Q5_0:
                u = _mm256_or_si256(ta_nibbles(blk + 6), ta_bits_x10(blk + 2));
                break;
            case PULSE_GGML_Q4_1:
                u = ta_nibbles(blk + 4);
                break;
            case PULSE_GGML_Q5_1:
                u = _mm256_or_si256(ta_nibbles(blk + 8), ta_bits_x10(blk + 4));
                break;
            default: /* q4_0 */
                u = ta_nibbles(blk + 2);
            }
            _mm256_storeu_si256((__m256i *)(void *)o->u[r], u);
            o->dw[r] = ta_f16(blk);
            o->mw[r] = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1 ? ta_f16(blk + 2) : 0.0f;
        }
}

static inline __m256i t0g_b4(const uint8_t *p) {
    return _mm256_set1_epi32((int)pq_rd32(p));
}

static inline __attribute__((always_inline)) void t0g_tile(const int type, const int SH, const t0g_wblk *wk,
                                                           const pq_t0g_blk *k, int64_t nb, __m256 acc[4]) {
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const int NH = type == PULSE_GGML_Q5_0 || type == PULSE_GGML_Q5_1 ? 2 : 1; /* int16 runs per block */
    const __m256i ones = _mm256_set1_epi16(1);
    TA_UNROLL for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, k++, wk++) {
        __m256i is[4];
        TA_UNROLL for (int r = 0; r < 4; r++) is[r] = _mm256_setzero_si256();
        if (type == PULSE_GGML_Q8_0) {
            TA_UNROLL for (int q = 0; q < 8; q++) {
                const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)k->x[q]);
                TA_UNROLL for (int r = 0; r < 4; r++) {
                    const __m256i p =
                        _mm256_maddubs_epi16(t0g_b4(wk->u[r] + 4 * q),
                                             _mm256_sign_epi8(x, t0g_b4((const uint8_t *)wk->w[r] + 4 * q)));
                    is[r] = _mm256_add_epi32(is[r], _mm256_madd_epi16(p, ones));
                }
            }
        } else {
            for (int h = 0; h < NH; h++) {
                __m256i s16[4];
                TA_UNROLL for (int r = 0; r < 4; r++) s16[r] = _mm256_setzero_si256();
                const int q0 = h * (8 / NH), q1 = q0 + 8 / NH;
                for (int q = q0; q < q1; q++) {
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)k->x[q]);
                    TA_UNROLL for (int r = 0; r < 4; r++) s16[r] =
                        _mm256_add_epi16(s16[r], _mm256_maddubs_epi16(t0g_b4(wk->u[r] + 4 * q), x));
                }
                TA_UNROLL for (int r = 0; r < 4; r++) is[r] =
                    _mm256_add_epi32(is[r], _mm256_madd_epi16(s16[r], ones));
            }
            if (!T1) { /* q + C against x: minus C sum(x) */
                const __m256i corr =
                    _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(const void *)k->sx), SH);
                TA_UNROLL for (int r = 0; r < 4; r++) is[r] = _mm256_sub_epi32(is[r], corr);
            }
        }
        const __m256 dx = _mm256_loadu_ps(k->d);
        TA_UNROLL for (int r = 0; r < 4; r++) acc[r] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]), _mm256_mul_ps(dx, _mm256_set1_ps(wk->dw[r])), acc[r]);
        if (T1) {
            const __m256 sx = _mm256_loadu_ps(k->s);
            TA_UNROLL for (int r = 0; r < 4; r++) acc[r] =
                _mm256_fmadd_ps(_mm256_set1_ps(wk->mw[r]), sx, acc[r]);
        }
    }
}

static inline __attribute__((always_inline)) void t0g_rows(const int type, const int SH, const uint8_t *W,
                                                           size_t wrow, int r0, int r1, const pq_t0g_blk *pk,
                                                           int g0, int N, int64_t nb, float *Y, size_t ldy,
                                                           t0g_wblk *wk) {
    const size_t BS = pulse_ggml_type_size(type);
    const int G = (N + 7) / 8;
    for (int rt = r0; rt < r1; rt += 4) {
        const int nr = r1 - rt < 4 ? r1 - rt : 4;
        t0g_unpack(type, W, wrow, BS, rt, nr, nb, wk);
        for (int g = 0; g < G; g++) {
            __m256 acc[4];
            t0g_tile(type, SH, wk, pk + (size_t)(g0 + g) * (size_t)nb, nb, acc);
            ta_store_lanes(acc, nr, N - 8 * g, Y + (size_t)(8 * g) * ldy + rt, ldy);
        }
    }
}

int pq_t0g_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0g_blk *pk, int g0, int N,
                int64_t nb, float *Y, size_t ldy) {
    t0g_wblk *wk = pk_scratch(PK_SCR_T0F_TILE, (size_t)nb * sizeof(t0g_wblk));
    if (!wk) return 0;
    switch (type) {
    case PULSE_GGML_Q8_0:
        t0g_rows(PULSE_GGML_Q8_0, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q5_0:
        t0g_rows(PULSE_GGML_Q5_0, 4, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q4_0:
        t0g_rows(PULSE_GGML_Q4_0, 3, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q4_1:
        t0g_rows(PULSE_GGML_Q4_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    case PULSE_GGML_Q5_1:
        t0g_rows(PULSE_GGML_Q5_1, 0, W, wrow, r0, r1, pk, g0, N, nb, Y, ldy, wk);
        return 1;
    default:
        return 0;
    }
}
#endif
