/* kernels/attend_f16.c — owns the decoder's attention kernel over the f16 paged KV cache (attend_f16.h): one
 * query position's group of query heads against one kv head's positions [lo, p], computed as ggml's non-flash
 * CPU path, rounding for rounding, with the primitives of kernels/ggml_exact.h:
 *   KQ[j] = scale * red(lanes), lane u = sum over t = u mod R of q[t] K[j][t] (fma chain in t order; R = 16
 *           tinyBLAS, R = 64 vec_dot_f16 whose 64 lanes fold (u, u+32) + (u+16, u+48) first), red = red16;
 *   softmax: ggml_v_expf(KQ - max), 16-position partial sums (chunks from position 0) red16'ed and added in
 *           f64, probabilities f16(e * (float)(1 / sum));
 *   out[t] = red(lanes), lane u = fma chain over positions j = u mod R (in j order, zero probabilities
 *           skipped) of w[j] V[j][t].
 * Three builds of it give the same bits: the scalar reference (pk_attend_f16_ref, the formulation above one
 * element at a time), the AVX2 path (a position at a time: its row's lanes in ymm registers) and the AVX-512
 * path, chosen at run time (pulse_cpu_get), which puts positions in vector lanes: KQ of 16 positions at once
 * (each position's lane vector as above, then the 16 red16 trees of 16 positions as one transposing network
 * of shuffles and adds: the same additions, element by element), and P.V one 16-dimension column at a time,
 * 8 of the R lanes and up to 3 heads in registers, each V row read from the cache and converted once for
 * those heads (rank decoding at N = 20, 16 users: attention 10.8-11.6 -> 9.6-10.0 s); KQ's R = 16 chains of
 * 4 positions side by side (scores 20% fewer samples). With R = 16 and the cache's transposed K
 * (pk_kv_span.kt, blocks of 16 positions) KQ puts positions in lanes instead: each lane of the 16 positions'
 * chains is one vector fma chain and red16 is 15 vector adds (no shuffles, no K scratch): rank decoding at N
 * = 20, 16 users, one thread: attention 18.1 -> 13.9 s, the whole forward 33.4 -> 29.1 s. P.V from the
 * transposed V likewise (pv_t_avx512: lane u of a dimension's accumulator is one vector fma chain over
 * blocks, the probabilities a plain vector load, red16 of 16 dimensions one red16x16): attention 13.8 -> 11.7
 * s, forward 29.0 -> 26.9 s; at the AVX2 level (scores_kt_avx2, pv_t_avx2) attention 28.5 -> 22.0 s. Decode
 * (R = 64) reads the copies too at both levels (kt64_heads / pvt64_cols, kt64x8_heads / pvt64x8_dim). Memory:
 * the transposed copies double the cache. The reordering is
 * across independent sums only; within each sum the operations and their order are the reference's, so
 * tests/test_kernels_attend.c checks equality bit for bit. */
#include "kernels/attend_f16.h"

#include <math.h>
#include <string.h>

#include "kernels/ggml_exact.h"
#include "pulse/core.h"
#include "pulse/quant.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif

/* scores row stride: positions up to n_ctx rounded up to 64, plus a block of slack */
static size_t sc_stride(int n_ctx) {
    return (size_t)(n_ctx + 63) / 64 * 64 + 64;
}

/* scratch: scores (ng, S); row offsets (S size_t); work: the reference's lane rows (ng, 64, HD) (q and a K
 * row as floats before them), or the AVX-512 path's q (ng, HD), 16 K rows (16, HD), a V column (S, 16) and 64
 * lane vectors */
size_t pk_attend_scratch_floats(int ng, int n_ctx, int HD) {
    const size_t S = sc_stride(n_ctx), lanes = (size_t)ng * 64 * (size_t)HD;
    const size_t v512 = (size_t)(ng + 16) * (size_t)HD + 16 * S + 64 * 16;
    return (size_t)ng * S + 2 * S + (lanes > v512 ? lanes : v512) + 16;
}

/* ---- scalar reference ---- */

static float dot_lanes_ref(const float *a, const float *b, int n, int R) {
    float l[64];
    for (int u = 0; u < R; u++) l[u] = 0;
    for (int t = 0; t < n; t++) l[t % R] = fmaf(a[t], b[t], l[t % R]);
    if (R == 64)
        for (int u = 0; u < 16; u++) l[u] = (l[u] + l[u + 32]) + (l[u + 16] + l[u + 48]);
    return pk_red16(l);
}

/* one 16-position softmax chunk [j0, j0 + 16) element by element: positions inside [lo, p] become
 * exp(s - mx), the others count 0; returns the chunk's pk_red16 sum (every path's partial chunks) */
static inline float softmax_chunk_ref(float *sg, int j0, int lo, int p, float mx) {
    float e[16];
    for (int u = 0; u < 16; u++) {
        const int j = j0 + u;
        e[u] = j >= lo && j <= p ? pk_ggml_expf(sg[j] - mx) : 0.0f;
        if (j >= lo && j <= p) sg[j] = e[u];
    }
    return pk_red16(e);
}

static void scores_ref(float *sc, size_t S, const float *qf, int ng, int HD, const pk_kv_span *kv,
                       const size_t *off, int lo, int p, int R, float scale, float *kf) {
    for (int j = lo; j <= p; j++) {
        const uint16_t *kr = kv->k + off[j];
        for (int t = 0; t < HD; t++) kf[t] = pulse_fp16_to_fp32(kr[t]);
        for (int g = 0; g < ng; g++)
            sc[(size_t)g * S + j] = dot_lanes_ref(qf + (size_t)g * HD, kf, HD, R) * scale;
    }
}

static void softmax_ref(float *sg, int lo, int p) {
    float mx = -INFINITY;
    for (int j = lo; j <= p; j++)
        if (sg[j] > mx) mx = sg[j];
    double sum = 0;
    for (int j0 = lo / 16 * 16; j0 <= p; j0 += 16) { /* 16-position chunks from position 0 */
        sum += (double)softmax_chunk_ref(sg, j0, lo, p, mx);
    }
    const float inv = (float)(1.0 / sum);
    for (int j = lo; j <= p; j++) sg[j] = pulse_fp16_to_fp32(pulse_fp32_to_fp16(sg[j] * inv));
}

static void pv_ref(float *out, const float *sc, size_t S, int ng, int HD, const pk_kv_span *kv,
                   const size_t *off, int lo, int p, int R, float *acc) {
    memset(acc, 0, sizeof(float) * (size_t)ng * R * HD);
    for (int j = lo; j <= p; j++) {
        const uint16_t *vr = kv->v + off[j];
        for (int g = 0; g < ng; g++) {
            const float w = sc[(size_t)g * S + j];
            float *a = acc + ((size_t)g * R + (size_t)(j & (R - 1))) * HD;
            if (w != 0.0f)
                for (int t = 0; t < HD; t++) a[t] = fmaf(w, pulse_fp16_to_fp32(vr[t]), a[t]);
        }
    }
    for (int g = 0; g < ng; g++) pk_reduce_lane_rows(out + (size_t)g * HD, acc + (size_t)g * R * HD, R, HD);
}

/* off[j] = where position j's row starts in the pools, for j in [lo, p] */
static void row_offsets(size_t *off, const pk_kv_span *kv, int lo, int p) {
    const int B = kv->B;
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const size_t base = (size_t)kv->blocks[bi] * kv->blk;
        for (; j <= end; j++) off[j] = base + (size_t)(j - bi * B) * kv->row;
    }
}

void pk_attend_f16_ref(float *out, const uint16_t *q16, int ng, int HD, const pk_kv_span *kv, int lo, int p,
                       int R, float scale, int n_ctx, float *scratch) {
    const size_t S = sc_stride(n_ctx);
    float *sc = scratch, *acc = sc + (size_t)ng * S + 2 * S, *qf = acc, *kf = acc + (size_t)ng * HD;
    size_t *off = (size_t *)(void *)(sc + (size_t)ng * S);
    row_offsets(off, kv, lo, p);
    for (size_t x = 0; x < (size_t)ng * HD; x++) qf[x] = pulse_fp16_to_fp32(q16[x]);
    scores_ref(sc, S, qf, ng, HD, kv, off, lo, p, R, scale, kf);
    for (int g = 0; g < ng; g++) softmax_ref(sc + (size_t)g * S, lo, p);
    pv_ref(out, sc, S, ng, HD, kv, off, lo, p, R, acc);
}

/* ---- AVX2: a position at a time ---- */
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define PK_HAVE_ATTEND_AVX 1

/* HD a multiple of R */
static void scores_avx2(float *sc, size_t S, const float *qf, int ng, int HD, const pk_kv_span *kv,
                        const size_t *off, int lo, int p, int R, float scale, float *kf) {
    for (int j = lo; j <= p; j++) {
        const uint16_t *kr = kv->k + off[j];
        for (int t = 0; t < HD; t += 8)
            _mm256_storeu_ps(kf + t, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + t))));
        for (int g = 0; g < ng; g++) {
            const float *q = qf + (size_t)g * HD;
            sc[(size_t)g * S + j] =
                (R == 64 ? pk_dot_lanes_avx(q, kf, HD, 64) : pk_dot_lanes_avx(q, kf, HD, 16)) * scale;
        }
    }
}

static void softmax_avx2(float *sg, int lo, int p) {
    float mx = -INFINITY;
    for (int j = lo; j <= p; j++)
        if (sg[j] > mx) mx = sg[j];
    double sum = 0;
    for (int j0 = lo / 16 * 16; j0 <= p; j0 += 16) {
        float e[16];
        if (j0 >= lo && j0 + 16 <= p + 1) { /* a whole chunk inside [lo, p] */
            const __m256 m = _mm256_set1_ps(mx);
            _mm256_storeu_ps(e, pk_ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0), m)));
            _mm256_storeu_ps(e + 8, pk_ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0 + 8), m)));
            memcpy(sg + j0, e, sizeof e);
            sum += (double)pk_red16(e);
            continue;
        }
        sum += (double)softmax_chunk_ref(sg, j0, lo, p, mx);
    }
    const float inv = (float)(1.0 / sum);
    int j = lo;
    const __m256 iv = _mm256_set1_ps(inv); /* the same product and f16 rounding, 8 at a time */
    for (; j + 8 <= p + 1; j += 8)
        _mm256_storeu_ps(sg + j,
                         _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(sg + j), iv), 0)));
    for (; j <= p; j++) sg[j] = pulse_fp16_to_fp32(pulse_fp32_to_fp16(sg[j] * inv));
}

/* HD a multiple of 8, ng <= 8: the reference's sums 8 dimensions at a time, the R lane accumulators of each
 * head in registers / L1 */
static void pv_avx2(float *out, const float *sc, size_t S, int ng, int HD, const pk_kv_span *kv,
                    const size_t *off, int lo, int p, int R) {
    __m256 A[8 * 64];
    for (int tc = 0; tc < HD; tc += 8) {
        for (int x = 0; x < ng * R; x++) A[x] = _mm256_setzero_ps();
        for (int j = lo; j <= p; j++) {
            const __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kv->v + off[j] + tc)));
            for (int g = 0; g < ng; g++) {
                const float w = sc[(size_t)g * S + j];
                if (w != 0.0f) {
                    __m256 *a = &A[g * R + (j & (R - 1))]; /* R: 16 or 64 */
                    *a = _mm256_fmadd_ps(_mm256_set1_ps(w), vv, *a);
                }
            }
        }
        for (int g = 0; g < ng; g++) { /* the reduction tree of reduce_rows */
            __m256 *l = A + g * R;
            if (R == 64)
                for (int u = 0; u < 16; u++)
                    l[u] = _mm256_add_ps(_mm256_add_ps(l[u], l[u + 32]), _mm256_add_ps(l[u + 16], l[u + 48]));
            __m256 t3[8], t6[4];
            for (int x = 0; x < 8; x++) t3[x] = _mm256_add_ps(l[x + 8], l[x]);
            for (int x = 0; x < 4; x++) t6[x] = _mm256_add_ps(t3[x + 4], t3[x]);
            _mm256_storeu_ps(out + (size_t)g * HD + tc,
                             _mm256_add_ps(_mm256_add_ps(t6[0], t6[2]), _mm256_add_ps(t6[1], t6[3])));
        }
    }
}

/* ---- AVX2 from the transposed K and V (pk_kv_span.kt / vt, blocks of 16 positions), R = 16 ----
 * As the AVX-512 paths below: positions in vector lanes, 8 at a time (half a block). KQ: lane u of 8
 * positions' chains is one vector fma chain over t = u + 16 m, lanes 4 at a time for up to 3 heads (12
 * accumulators), then red16's tree as vector adds. P.V: lane u (positions j = u mod 16) of a dimension's
 * accumulator is one fma chain over blocks, 4 dimensions x 2 heads at a time; zero probabilities are included
 * (their fma adds +0: the same bits while V is finite, which the cache tells: v_finite). Positions of a block
 * outside [lo, p] read as zero. */

/* the 8 u16 lanes of positions [j0 + 8 h, j0 + 8 h + 8) inside [lo, p] as all ones */
static inline __m128i half_mask(int j0, int h, int lo, int p) {
    const int b = j0 + 8 * h;
    uint16_t m[8];
    for (int v = 0; v < 8; v++) m[v] = b + v >= lo && b + v <= p ? 0xFFFF : 0;
    return _mm_loadu_si128((const __m128i *)m);
}

static inline __m256 kt_load8(const uint16_t *x, __m128i vm, int masked) {
    __m128i h = _mm_loadu_si128((const __m128i *)x);
    if (masked) h = _mm_and_si128(h, vm);
    return _mm256_cvtph_ps(h);
}

/* KQ of NG (<= 3) heads for 8 positions (kb: the block's transposed K at the half's first position) */
static inline __attribute__((always_inline)) void kt8_heads(float *sc, size_t S, const float *q, int HD,
                                                            const uint16_t *kb, __m128i vm, int masked,
                                                            __m256 vs, const int NG) {
    __m256 L[3][16];
    for (int Q = 0; Q < 4; Q++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
#define KT8(i, A, B, C)                                                                                      \
    do {                                                                                                     \
        const int t = 16 * m + 4 * Q + (i);                                                                  \
        const __m256 k = kt_load8(kb + (size_t)t * 16, vm, masked);                                          \
        A = _mm256_fmadd_ps(_mm256_set1_ps(q[t]), k, A);                                                     \
        if (NG > 1) B = _mm256_fmadd_ps(_mm256_set1_ps(q[HD + t]), k, B);                                    \
        if (NG > 2) C = _mm256_fmadd_ps(_mm256_set1_ps(q[2 * HD + t]), k, C);                                \
    } while (0)
        for (int m = 0; m < HD / 16; m++) {
            KT8(0, a0, b0, c0);
            KT8(1, a1, b1, c1);
            KT8(2, a2, b2, c2);
            KT8(3, a3, b3, c3);
        }
#undef KT8
        L[0][4 * Q] = a0, L[0][4 * Q + 1] = a1, L[0][4 * Q + 2] = a2, L[0][4 * Q + 3] = a3;
        if (NG > 1) L[1][4 * Q] = b0, L[1][4 * Q + 1] = b1, L[1][4 * Q + 2] = b2, L[1][4 * Q + 3] = b3;
        if (NG > 2) L[2][4 * Q] = c0, L[2][4 * Q + 1] = c1, L[2][4 * Q + 2] = c2, L[2][4 * Q + 3] = c3;
    }
    for (int g = 0; g < NG; g++) {
        __m256 t3[8], t6[4];
        for (int x = 0; x < 8; x++) t3[x] = _mm256_add_ps(L[g][x + 8], L[g][x]);
        for (int x = 0; x < 4; x++) t6[x] = _mm256_add_ps(t3[x + 4], t3[x]);
        const __m256 r = _mm256_add_ps(_mm256_add_ps(t6[0], t6[2]), _mm256_add_ps(t6[1], t6[3]));
        _mm256_storeu_ps(sc + (size_t)g * S, _mm256_mul_ps(r, vs));
    }
}

/* ---- AVX2, R = 64 (one token of a sequence in the batch: decode) from the transposed copies ----
 * As the AVX-512 R = 64 paths (kt64_heads, pvt64_cols) with 8 positions (half a block) per vector. KQ: lane v
 * of 64 is the chain over t = v + 64 c (c in order, from zero), l16[u] = (l[u] + l[u+32]) + (l[u+16] +
 * l[u+48]), then red16 -- vector adds for 8 positions at once. P.V: block b's half h feeds lanes 16 (b mod 4)
 * + 8 h + (0..7) of a dimension's 64, so four accumulators per dimension and half (b mod 4), folded as above;
 * the two halves' folds are the 16 lanes red16 takes. */

/* KQ (R = 64, HD a multiple of 64) of NG (<= 3) heads for 8 positions (kb: the block's transposed K at the
 * half's first position); t6 of red16 built x and x + 4 at a time */
static inline __attribute__((always_inline)) void kt64x8_heads(float *sc, size_t S, const float *q, int HD,
                                                               const uint16_t *kb, __m128i vm, int masked,
                                                               __m256 vs, const int NG) {
    __m256 t6[3][4];
    for (int x = 0; x < 4; x++) {
        __m256 t3[2][3];
        for (int xx = 0; xx < 2; xx++) {
            __m256 f[2][3];
            for (int hh = 0; hh < 2; hh++) { /* l16[u] for u = x + 4 xx + 8 hh */
                const int u = x + 4 * xx + 8 * hh;
                __m256 l[3][4];
#pragma GCC unroll 3
                for (int g = 0; g < NG; g++)
#pragma GCC unroll 4
                    for (int s = 0; s < 4; s++) l[g][s] = _mm256_setzero_ps();
                for (int c = 0; c < HD / 64; c++)
#pragma GCC unroll 4
                    for (int s = 0; s < 4; s++) { /* lane u + 16 s */
                        const int t = 64 * c + u + 16 * s;
                        const __m256 k = kt_load8(kb + (size_t)t * 16, vm, masked);
#pragma GCC unroll 3
                        for (int g = 0; g < NG; g++)
                            l[g][s] = _mm256_fmadd_ps(_mm256_set1_ps(q[(size_t)g * HD + t]), k, l[g][s]);
                    }
#pragma GCC unroll 3
                for (int g = 0; g < NG; g++)
                    f[hh][g] =
                        _mm256_add_ps(_mm256_add_ps(l[g][0], l[g][2]), _mm256_add_ps(l[g][1], l[g][3]));
            }
#pragma GCC unroll 3
            for (int g = 0; g < NG; g++) t3[xx][g] = _mm256_add_ps(f[1][g], f[0][g]); /* t3 of x + 4 xx */
        }
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++) t6[g][x] = _mm256_add_ps(t3[1][g], t3[0][g]);
    }
    for (int g = 0; g < NG; g++) {
        const __m256 r = _mm256_add_ps(_mm256_add_ps(t6[g][0], t6[g][2]), _mm256_add_ps(t6[g][1], t6[g][3]));
        _mm256_storeu_ps(sc + (size_t)g * S, _mm256_mul_ps(r, vs));
    }
}

/* HD a multiple of 16 (R = 16) or of 64 (R = 64); scores of [lo, p] (others of the blocks touched may be left
 * as they were) */
static void scores_kt_avx2(float *sc, size_t S, const float *qf, int ng, int HD, const pk_kv_span *kv, int lo,
                           int p, float scale, int R) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int j0 = lo & ~15; j0 <= p; j0 += 16) {
        const uint16_t *kb = kv->kt + (size_t)kv->blocks[j0 / 16] * kv->blk;
        for (int h = 0; h < 2; h++) {
            const int b = j0 + 8 * h;
            if (b + 7 < lo || b > p) continue;
            const int masked = b < lo || b + 7 > p;
            const __m128i vm = masked ? half_mask(j0, h, lo, p) : _mm_setzero_si128();
            for (int g0 = 0; g0 < ng; g0 += 3) {
                const int NG = ng - g0 < 3 ? ng - g0 : 3;
                float *s0 = sc + (size_t)g0 * S + b;
                const float *q = qf + (size_t)g0 * HD;
                if (R == 64) {
                    if (NG == 3)
                        kt64x8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 3);
                    else if (NG == 2)
                        kt64x8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 2);
                    else
                        kt64x8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 1);
                } else if (NG == 3)
                    kt8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 3);
                else if (NG == 2)
                    kt8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 2);
                else
                    kt8_heads(s0, S, q, HD, kb + 8 * h, vm, masked, vs, 1);
            }
        }
    }
}

/* red16 of a dimension's 16 lanes given as t3 = lanes 8-15 + lanes 0-7 */
static inline float red_t3(__m256 t3) {
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    t6 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    t6 = _mm_add_ss(t6, _mm_movehdup_ps(t6));
    return _mm_cvtss_f32(t6);
}

/* P.V of NG (<= 2) heads for dimensions tc .. tc + 3 */
static inline __attribute__((always_inline)) void pvt8_dims(float *out, const float *sc, size_t S, int HD,
                                                            const pk_kv_span *kv, int lo, int p, int tc,
                                                            const int NG) {
    __m256 T[2][4][2];
    for (int h = 0; h < 2; h++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int j0 = lo & ~15; j0 <= p; j0 += 16) {
            const int b = j0 + 8 * h;
            if (b + 7 < lo || b > p) continue; /* zero probabilities only: their fmas add +0 */
            const int masked = b < lo || b + 7 > p;
            const __m128i vm = masked ? half_mask(j0, h, lo, p) : _mm_setzero_si128();
            const uint16_t *vb = kv->vt + (size_t)kv->blocks[j0 / 16] * kv->blk + (size_t)tc * 16 + 8 * h;
            __m256 w0 = _mm256_loadu_ps(sc + b), w1 = NG > 1 ? _mm256_loadu_ps(sc + S + b) : w0;
            if (masked) {
                const __m256 fm = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(vm));
                w0 = _mm256_and_ps(w0, fm);
                w1 = _mm256_and_ps(w1, fm);
            }
#define PVT8(i, A, B)                                                                                        \
    do {                                                                                                     \
        const __m256 v = kt_load8(vb + (size_t)(i)*16, vm, masked);                                          \
        A = _mm256_fmadd_ps(w0, v, A);                                                                       \
        if (NG > 1) B = _mm256_fmadd_ps(w1, v, B);                                                           \
    } while (0)
            PVT8(0, a0, b0);
            PVT8(1, a1, b1);
            PVT8(2, a2, b2);
            PVT8(3, a3, b3);
#undef PVT8
        }
        T[0][0][h] = a0, T[0][1][h] = a1, T[0][2][h] = a2, T[0][3][h] = a3;
        if (NG > 1) T[1][0][h] = b0, T[1][1][h] = b1, T[1][2][h] = b2, T[1][3][h] = b3;
    }
    for (int g = 0; g < NG; g++)
        for (int i = 0; i < 4; i++)
            out[(size_t)g * HD + tc + i] = red_t3(_mm256_add_ps(T[g][i][1], T[g][i][0]));
}

/* P.V (R = 64) of NG (<= 3) heads for dimension tc: per half h, a[g][b mod 4] over the blocks in order */
static inline __attribute__((always_inline)) void pvt64x8_dim(float *out, const float *sc, size_t S, int HD,
                                                              const pk_kv_span *kv, int lo, int p, int tc,
                                                              const int NG) {
    __m256 F[3][2];
    const int b_lo = lo / 16, b_hi = p / 16;
    for (int h = 0; h < 2; h++) {
        __m256 a[3][4];
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) a[g][s] = _mm256_setzero_ps();
        for (int bb = b_lo & ~3; bb <= b_hi; bb += 4)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const int b = bb + s, j0 = 16 * b, base = j0 + 8 * h;
                if (b < b_lo || b > b_hi || base + 7 < lo || base > p) continue; /* zero probabilities only */
                const int masked = base < lo || base + 7 > p;
                const __m128i vm = masked ? half_mask(j0, h, lo, p) : _mm_setzero_si128();
                const __m256 fm = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(vm));
                const uint16_t *vb = kv->vt + (size_t)kv->blocks[b] * kv->blk + (size_t)tc * 16 + 8 * h;
                const __m256 v = kt_load8(vb, vm, masked);
#pragma GCC unroll 3
                for (int g = 0; g < NG; g++) {
                    __m256 w = _mm256_loadu_ps(sc + (size_t)g * S + base);
                    if (masked) w = _mm256_and_ps(w, fm);
                    a[g][s] = _mm256_fmadd_ps(w, v, a[g][s]);
                }
            }
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++)
            F[g][h] = _mm256_add_ps(_mm256_add_ps(a[g][0], a[g][2]), _mm256_add_ps(a[g][1], a[g][3]));
    }
    for (int g = 0; g < NG; g++) out[(size_t)g * HD + tc] = red_t3(_mm256_add_ps(F[g][1], F[g][0]));
}

/* P.V (R = 16 or 64) from kv->vt (HD a multiple of 16), V finite (kv->v_finite: a zero probability's fma adds
 * +0) */
static void pv_t_avx2(float *out, const float *sc, size_t S, int ng, int HD, const pk_kv_span *kv, int lo,
                      int p, int R) {
    if (R == 64) {
        for (int tc = 0; tc < HD; tc++)
            for (int g0 = 0; g0 < ng; g0 += 3) {
                float *o = out + (size_t)g0 * HD;
                const float *w = sc + (size_t)g0 * S;
                if (ng - g0 >= 3)
                    pvt64x8_dim(o, w, S, HD, kv, lo, p, tc, 3);
                else if (ng - g0 == 2)
                    pvt64x8_dim(o, w, S, HD, kv, lo, p, tc, 2);
                else
                    pvt64x8_dim(o, w, S, HD, kv, lo, p, tc, 1);
            }
        return;
    }
    for (int tc = 0; tc < HD; tc += 4)
        for (int g0 = 0; g0 < ng; g0 += 2) {
            float *o = out + (size_t)g0 * HD;
            const float *w = sc + (size_t)g0 * S;
            if (ng - g0 >= 2)
                pvt8_dims(o, w, S, HD, kv, lo, p, tc, 2);
            else
                pvt8_dims(o, w, S, HD, kv, lo, p, tc, 1);
        }
}

#endif

/* ---- AVX-512: positions in vector lanes ---- */
#if defined(PK_HAVE_ATTEND_AVX) && (defined(__GNUC__) || defined(__clang__))
#define PK_HAVE_ATTEND_512 1
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))),                  \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#endif

#define PK_AI static inline __attribute__((always_inline))

/* s[i] = red16 of the lanes of the vector of position i, for 16 vectors given in slot order: slot s holds
 * position 4 (s % 4) + s / 4. Each position's additions are red16's (t3 = hi 8 + lo 8, t6 = hi 4 + lo 4,
 * (t6[0] + t6[2]) + (t6[1] + t6[3])), done for 2, 4, 8 and 16 positions at once */
PK_AI __m512 red16x16(const __m512 *v) {
    __m512 c[8], d[4], e[2];
    for (int m = 0; m < 8; m++) /* [t3 of slot 2m | t3 of slot 2m+1] */
        c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0xEE),
                             _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0x44));
    for (int n = 0; n < 4; n++) /* 128-bit part L: t6 of slot 4n + L */
        d[n] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * n], c[2 * n + 1], 0xDD),
                             _mm512_shuffle_f32x4(c[2 * n], c[2 * n + 1], 0x88));
    for (int k = 0; k < 2; k++) /* part L: t6[0] + t6[2], t6[1] + t6[3] of slots 8k + L, 8k + 4 + L */
        e[k] = _mm512_add_ps(_mm512_shuffle_ps(d[2 * k], d[2 * k + 1], 0x44),
                             _mm512_shuffle_ps(d[2 * k], d[2 * k + 1], 0xEE));
    /* part L, element m: slot L + 4m */
    return _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xDD));
}

/* lanes of block [j0, j0 + 16) inside [lo, p] */
PK_AI __mmask16 block_mask(int j0, int lo, int p) {
    const int a = lo > j0 ? lo - j0 : 0, e = p - j0 < 15 ? p - j0 : 15;
    return (__mmask16)((0xFFFFu >> (15 - e)) & (0xFFFFu << a));
}

/* out[0..15] = red16 of each of 16 dimensions' lane vectors F[0..15] (red16x16, in its slot order) */
PK_AI void store_red16(float *out, const __m512 *F) {
    __m512 v[16];
    for (int s = 0; s < 16; s++) v[s] = F[4 * (s & 3) + (s >> 2)];
    _mm512_storeu_ps(out, red16x16(v));
}

/* red16 of one vector's lanes */
PK_AI float red16z(__m512 x) {
    const __m256 t3 = _mm256_add_ps(_mm512_extractf32x8_ps(x, 1), _mm512_castps512_ps256(x));
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    t6 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    t6 = _mm_add_ss(t6, _mm_movehdup_ps(t6));
    return _mm_cvtss_f32(t6);
}

/* the reduction of R lane vectors, element by element (pk_reduce_lane_rows): l[0..15] for R = 16; for R = 64
 * l[0..63], folded (u, u+32) + (u+16, u+48) first (l is overwritten) */
PK_AI __m512 reduce_lanes(__m512 *l, const int R) {
    if (R == 64)
        for (int u = 0; u < 16; u++)
            l[u] = _mm512_add_ps(_mm512_add_ps(l[u], l[u + 32]), _mm512_add_ps(l[u + 16], l[u + 48]));
    __m512 t3[8], t6[4];
    for (int x = 0; x < 8; x++) t3[x] = _mm512_add_ps(l[x + 8], l[x]);
    for (int x = 0; x < 4; x++) t6[x] = _mm512_add_ps(t3[x + 4], t3[x]);
    return _mm512_add_ps(_mm512_add_ps(t6[0], t6[2]), _mm512_add_ps(t6[1], t6[3]));
}

/* ggml_v_expf on 16 lanes, the operations of pk_ggml_expf8 (vectors with n outside [-125, 127] lane by lane)
 */
PK_AI __m512 ggml_expf16(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __mmask16 ok = _mm512_cmp_ps_mask(n, _mm512_set1_ps(-125.0f), _CMP_GE_OQ) &
                         _mm512_cmp_ps_mask(n, _mm512_set1_ps(127.0f), _CMP_LE_OQ);
    if (ok != 0xFFFF) {
        float v[16];
        _mm512_storeu_ps(v, x);
        for (int i = 0; i < 16; i++) v[i] = pk_ggml_expf(v[i]);
        return _mm512_loadu_ps(v);
    }
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(j, _mm512_castsi512_ps(e));
}

/* the lane vector of one position: R = 64: lanes (x0 + x2) + (x1 + x3) of 4 vectors of 16 (nc a multiple of
 * 4); R = 16: one vector; chains in dimension order */
PK_AI __m512 pos_lanes(const float *q, const float *k, int nc, const int R) {
    if (R == 64) {
        __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0;
        for (int c = 0; c < nc; c += 4) {
            x0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(k + 16 * c), x0);
            x1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c + 16), _mm512_loadu_ps(k + 16 * c + 16), x1);
            x2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c + 32), _mm512_loadu_ps(k + 16 * c + 32), x2);
            x3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c + 48), _mm512_loadu_ps(k + 16 * c + 48), x3);
        }
        return _mm512_add_ps(_mm512_add_ps(x0, x2), _mm512_add_ps(x1, x3));
    }
    __m512 x = _mm512_setzero_ps();
    for (int c = 0; c < nc; c++)
        x = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(k + 16 * c), x);
    return x;
}

PK_AI void scores_heads(float *sc, size_t S, const float *qf, int ng, int HD, const float *kf, int j0,
                        __m512 vs, const int R) {
    const int nc = HD / 16;
    for (int g = 0; g < ng; g++) {
        const float *q = qf + (size_t)g * HD;
        __m512 v[16];
        if (R == 16 && nc <= 8) {
            /* the same chains (dimension order, from zero), 4 positions' side by side: a position's 4-8 fmas
             * depend on each other, 4 positions' do not */
            __m512 qv[8];
            for (int c = 0; c < nc; c++) qv[c] = _mm512_loadu_ps(q + 16 * c);
            for (int s = 0; s < 16; s += 4) {
                const float *k0 = kf + (size_t)(4 * (s & 3) + (s >> 2)) * HD;
                const float *k1 = kf + (size_t)(4 * ((s + 1) & 3) + ((s + 1) >> 2)) * HD;
                const float *k2 = kf + (size_t)(4 * ((s + 2) & 3) + ((s + 2) >> 2)) * HD;
                const float *k3 = kf + (size_t)(4 * ((s + 3) & 3) + ((s + 3) >> 2)) * HD;
                __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0;
                for (int c = 0; c < nc; c++) {
                    x0 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 16 * c), x0);
                    x1 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k1 + 16 * c), x1);
                    x2 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k2 + 16 * c), x2);
                    x3 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k3 + 16 * c), x3);
                }
                v[s] = x0, v[s + 1] = x1, v[s + 2] = x2, v[s + 3] = x3;
            }
        } else
            for (int s = 0; s < 16; s++)
                v[s] = pos_lanes(q, kf + (size_t)(4 * (s & 3) + (s >> 2)) * HD, nc, R);
        _mm512_storeu_ps(sc + (size_t)g * S + j0, _mm512_mul_ps(red16x16(v), vs));
    }
}

/* HD a multiple of 16 (of 64 for R = 64); kf (16, HD). Positions of the 16-blocks outside [lo, p] get the
 * scores of zero rows (not used) */
static void scores_avx512(float *sc, size_t S, const float *qf, int ng, int HD, const pk_kv_span *kv,
                          const size_t *off, int lo, int p, int R, float scale, float *kf) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int j0 = lo & ~15; j0 <= p; j0 += 16) {
        for (int u = 0; u < 16; u++) {
            const int j = j0 + u;
            float *d = kf + (size_t)u * HD;
            if (j < lo || j > p)
                for (int t = 0; t < HD; t += 16) _mm512_storeu_ps(d + t, _mm512_setzero_ps());
            else
                for (int t = 0; t < HD; t += 16)
                    _mm512_storeu_ps(
                        d + t, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kv->k + off[j] + t))));
        }
        /* head dims 64 and 128 as constants: the lane chains unrolled (about 10% faster) */
        if (R == 64 && HD == 64)
            scores_heads(sc, S, qf, ng, 64, kf, j0, vs, 64);
        else if (R == 64 && HD == 128)
            scores_heads(sc, S, qf, ng, 128, kf, j0, vs, 64);
        else if (R == 64)
            scores_heads(sc, S, qf, ng, HD, kf, j0, vs, 64);
        else if (HD == 64)
            scores_heads(sc, S, qf, ng, 64, kf, j0, vs, 16);
        else if (HD == 128)
            scores_heads(sc, S, qf, ng, 128, kf, j0, vs, 16);
        else
            scores_heads(sc, S, qf, ng, HD, kf, j0, vs, 16);
    }
}

/* KQ of NG heads (q: (NG, HD)) for one block of 16 positions from its transposed K (kb: row t = the 16
 * positions' K[.][t]; positions outside mask mk read as zero): positions in vector lanes, so lane u of the 16
 * positions' chains is one vector a_u = fma over t = u + 16 m in m order from zero, and red16's additions
 * (t3 = lane u + 8 and u, t6 = t3 x + 4 and x, (t6 0 + t6 2) + (t6 1 + t6 3)) are 15 vector adds: the
 * operations of scores_heads with R = 16 element by element, without its transposing shuffles or the K
 * scratch. Lanes 0-7 first, then 8-15, 8 accumulators per head. */
/* lanes 8 h .. 8 h + 7 of NG heads' chains over the block (see kt_heads), into a (NG, 8) */
PK_AI void kt_half(__m512 *a, const float *q, const int HD, const uint16_t *kb, __mmask16 mk, const int h,
                   const int NG) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    __m512 c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
#define KT_LANE(i, A, B, C)                                                                                  \
    do {                                                                                                     \
        const int t = 16 * m + 8 * h + (i);                                                                  \
        const __m512 k = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, kb + (size_t)t * 16));                 \
        A = _mm512_fmadd_ps(_mm512_set1_ps(q[t]), k, A);                                                     \
        if (NG > 1) B = _mm512_fmadd_ps(_mm512_set1_ps(q[HD + t]), k, B);                                    \
        if (NG > 2) C = _mm512_fmadd_ps(_mm512_set1_ps(q[2 * HD + t]), k, C);                                \
    } while (0)
    for (int m = 0; m < HD / 16; m++) {
        KT_LANE(0, a0, b0, c0);
        KT_LANE(1, a1, b1, c1);
        KT_LANE(2, a2, b2, c2);
        KT_LANE(3, a3, b3, c3);
        KT_LANE(4, a4, b4, c4);
        KT_LANE(5, a5, b5, c5);
        KT_LANE(6, a6, b6, c6);
        KT_LANE(7, a7, b7, c7);
    }
#undef KT_LANE
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3, a[4] = a4, a[5] = a5, a[6] = a6, a[7] = a7;
    if (NG > 1) a[8] = b0, a[9] = b1, a[10] = b2, a[11] = b3, a[12] = b4, a[13] = b5, a[14] = b6, a[15] = b7;
    if (NG > 2)
        a[16] = c0, a[17] = c1, a[18] = c2, a[19] = c3, a[20] = c4, a[21] = c5, a[22] = c6, a[23] = c7;
}

/* KQ of NG heads (q: (NG, HD)) for one block of 16 positions from its transposed K (kb: row t = the 16
 * positions' K[.][t]; positions outside mask mk read as zero): positions in vector lanes, so lane u of the 16
 * positions' chains is one vector a_u = fma over t = u + 16 m in m order from zero, and red16's additions
 * (t3 = lane u + 8 and u, t6 = t3 x + 4 and x, (t6 0 + t6 2) + (t6 1 + t6 3)) are 15 vector adds: the
 * operations of scores_heads with R = 16 element by element, without its transposing shuffles or the K
 * scratch. Lanes 0-7 first, then 8-15, 8 accumulators per head in registers. */
PK_AI void kt_heads(float *sc, size_t S, const float *q, const int HD, const uint16_t *kb, __mmask16 mk,
                    __m512 vs, const int NG) {
    __m512 lo[24], hi[24];
    kt_half(lo, q, HD, kb, mk, 0, NG);
    kt_half(hi, q, HD, kb, mk, 1, NG);
    for (int g = 0; g < NG; g++) {
        __m512 t3[8], t6[4];
        for (int i = 0; i < 8; i++) t3[i] = _mm512_add_ps(hi[8 * g + i], lo[8 * g + i]);
        for (int x = 0; x < 4; x++) t6[x] = _mm512_add_ps(t3[x + 4], t3[x]);
        const __m512 r = _mm512_add_ps(_mm512_add_ps(t6[0], t6[2]), _mm512_add_ps(t6[1], t6[3]));
        _mm512_storeu_ps(sc + (size_t)g * S, _mm512_mul_ps(r, vs));
    }
}

/* as softmax_ref, 16 positions at a time; also zeroes the probabilities of [lo & -R, lo) and (p, p rounded up
 * to R) (the P.V lanes run over whole periods of R) */
static void softmax_avx512(float *sg, int lo, int p, int R) {
    float mx = -INFINITY;
    int j = lo;
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (; j + 16 <= p + 1; j += 16) { /* m = s > m ? s : m, the reference's comparison lane by lane */
        const __m512 s = _mm512_loadu_ps(sg + j);
        m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s, m, _CMP_GT_OQ), m, s);
    }
    for (; j <= p; j++)
        if (sg[j] > mx) mx = sg[j];
    float mv[16];
    _mm512_storeu_ps(mv, m);
    for (int u = 0; u < 16; u++)
        if (mv[u] > mx) mx = mv[u];
    const __m512 vm = _mm512_set1_ps(mx);
    double sum = 0;
    for (int j0 = lo / 16 * 16; j0 <= p; j0 += 16) {
        if (j0 >= lo && j0 + 16 <= p + 1) { /* a whole chunk inside [lo, p] */
            const __m512 e = ggml_expf16(_mm512_sub_ps(_mm512_loadu_ps(sg + j0), vm));
            _mm512_storeu_ps(sg + j0, e);
            sum += (double)red16z(e);
            continue;
        }
        sum += (double)softmax_chunk_ref(sg, j0, lo, p, mx);
    }
    const float inv = (float)(1.0 / sum);
    const __m512 iv = _mm512_set1_ps(inv);
    for (j = lo; j + 16 <= p + 1; j += 16)
        _mm512_storeu_ps(sg + j,
                         _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(_mm512_loadu_ps(sg + j), iv), 0)));
    for (; j <= p; j++) sg[j] = pulse_fp16_to_fp32(pulse_fp32_to_fp16(sg[j] * inv));
    for (j = lo & -R; j < lo; j++) sg[j] = 0.0f;
    for (j = p + 1; j < ((p + R) & -R); j++) sg[j] = 0.0f;
}

/* Lanes u0..u0+7 of NG heads (g0..g0+NG-1) over one 16-dimension column: lane u = the fma chain over
 * positions j = jb + u + R m (m = 0, 1, ... while j < je) in order of w_g[j] V[j]; each V row's 16 f16 values
 * are read and converted once for the NG heads (positions outside [lo, p] count as zero rows: their
 * probabilities are zero). l: (NG, R) lane vectors, lane u of head g at l[g * R + u]. */
PK_AI void pv_group(__m512 *l, const float *sc, size_t S, int g0, const int NG, const uint16_t *vt,
                    const size_t *off, int jb, int je, int lo, int p, int u0, const int R, __m256i *mx) {
    const __m256i m15 = _mm256_set1_epi16(0x7FFF);
    __m256i hx = *mx; /* the largest |V| bits seen (inf / nan: >= 0x7C00) */
    __m512 a[3][8];
#pragma GCC unroll 3
    for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) a[g][u] = _mm512_setzero_ps();
    const float *w0 = sc + (size_t)g0 * S, *w1 = w0 + S, *w2 = w1 + S;
    for (int j0 = jb + u0; j0 < je; j0 += R) {
        if (j0 >= lo && j0 + 7 <= p) {
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) {
                const int j = j0 + u;
                const __m256i h = _mm256_loadu_si256((const __m256i *)(vt + off[j]));
                hx = _mm256_max_epu16(hx, _mm256_and_si256(h, m15));
                const __m512 v = _mm512_cvtph_ps(h);
                a[0][u] = _mm512_fmadd_ps(_mm512_set1_ps(w0[j]), v, a[0][u]);
                if (NG > 1) a[1][u] = _mm512_fmadd_ps(_mm512_set1_ps(w1[j]), v, a[1][u]);
                if (NG > 2) a[2][u] = _mm512_fmadd_ps(_mm512_set1_ps(w2[j]), v, a[2][u]);
            }
        } else {
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) {
                const int j = j0 + u;
                const __m256i h = j >= lo && j <= p ? _mm256_loadu_si256((const __m256i *)(vt + off[j]))
                                                    : _mm256_setzero_si256();
                hx = _mm256_max_epu16(hx, _mm256_and_si256(h, m15));
                const __m512 v = _mm512_cvtph_ps(h);
                a[0][u] = _mm512_fmadd_ps(_mm512_set1_ps(w0[j]), v, a[0][u]);
                if (NG > 1) a[1][u] = _mm512_fmadd_ps(_mm512_set1_ps(w1[j]), v, a[1][u]);
                if (NG > 2) a[2][u] = _mm512_fmadd_ps(_mm512_set1_ps(w2[j]), v, a[2][u]);
            }
        }
    }
#pragma GCC unroll 3
    for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) l[g * R + u0 + u] = a[g][u];
    *mx = hx;
}

/* HD a multiple of 16. Positions of [jb, je) (whole periods of R) outside [lo, p] have probability 0 (see
 * softmax_avx512) and count as zero V rows. A zero probability's fma adds +-0 to a lane that is never -0 (it
 * starts +0, and f16 x f16 products do not underflow), so it changes nothing while V is finite, which is
 * checked: returns 0, its output not to be used, when a V row holds inf or nan (the caller then skips
 * zeros as the reference does; the largest |V| bit pattern read is kept on the way). Per 16-dimension column
 * and up to 3 heads at a time (pv_group), 8 lanes at a time: each V row is read and converted once for the 3
 * heads, straight from the cache. */
static int pv_avx512(float *out, const float *sc, size_t S, int ng, int HD, const pk_kv_span *kv,
                     const size_t *off, int lo, int p, int R) {
    const int jb = lo & -R, je = (p + R) & -R;
    __m256i mx = _mm256_setzero_si256();
    __m512 l[3 * 64];
    for (int tc = 0; tc < HD; tc += 16) {
        const uint16_t *vt = kv->v + tc;
        for (int g0 = 0; g0 < ng; g0 += 3) {
            const int NG = ng - g0 < 3 ? ng - g0 : 3;
            for (int u0 = 0; u0 < R; u0 += 8) {
                if (NG == 3)
                    pv_group(l, sc, S, g0, 3, vt, off, jb, je, lo, p, u0, R, &mx);
                else if (NG == 2)
                    pv_group(l, sc, S, g0, 2, vt, off, jb, je, lo, p, u0, R, &mx);
                else
                    pv_group(l, sc, S, g0, 1, vt, off, jb, je, lo, p, u0, R, &mx);
            }
            for (int g = 0; g < NG; g++)
                _mm512_storeu_ps(out + (size_t)(g0 + g) * HD + tc,
                                 R == 64 ? reduce_lanes(l + g * 64, 64) : reduce_lanes(l + g * 16, 16));
        }
    }
    /* a V value with every exponent bit set (inf or nan): out is not the reference's; the caller redoes it */
    return _mm256_cmpge_epu16_mask(mx, _mm256_set1_epi16(0x7C00)) == 0;
}

/* P.V of NG heads for output dimensions tc .. tc + 15 from the transposed V (see pv_t_avx512): lane u of
 * dimension t's accumulator = the fma chain over blocks of w[16 b + u] V[16 b + u][t] in block order from
 * zero, i.e. the reference's lane u (positions j = u mod 16 in j order); red16 of the 16 dimensions'
 * accumulators as one red16x16. 8 dimensions at a time: (NG, 8) accumulators in registers. */
PK_AI void pvt_cols(float *out, const float *sc, size_t S, const int HD, const pk_kv_span *kv, int lo, int p,
                    int tc, const int NG) {
    __m512 acc[3][16];
    for (int h = 0; h < 2; h++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
        __m512 c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        for (int j0 = lo & ~15; j0 <= p; j0 += 16) {
            const uint16_t *vb = kv->vt + (size_t)kv->blocks[j0 / 16] * kv->blk + (size_t)(tc + 8 * h) * 16;
            const __mmask16 mk = block_mask(j0, lo, p);
            const __m512 w0 = _mm512_loadu_ps(sc + j0);
            const __m512 w1 = NG > 1 ? _mm512_loadu_ps(sc + S + j0) : w0;
            const __m512 w2 = NG > 2 ? _mm512_loadu_ps(sc + 2 * S + j0) : w0;
#define PVT_DIM(i, A, B, C)                                                                                  \
    do {                                                                                                     \
        const __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, vb + (size_t)(i)*16));                 \
        A = _mm512_fmadd_ps(w0, v, A);                                                                       \
        if (NG > 1) B = _mm512_fmadd_ps(w1, v, B);                                                           \
        if (NG > 2) C = _mm512_fmadd_ps(w2, v, C);                                                           \
    } while (0)
            PVT_DIM(0, a0, b0, c0);
            PVT_DIM(1, a1, b1, c1);
            PVT_DIM(2, a2, b2, c2);
            PVT_DIM(3, a3, b3, c3);
            PVT_DIM(4, a4, b4, c4);
            PVT_DIM(5, a5, b5, c5);
            PVT_DIM(6, a6, b6, c6);
            PVT_DIM(7, a7, b7, c7);
#undef PVT_DIM
        }
        __m512 *d = acc[0] + 8 * h;
        d[0] = a0, d[1] = a1, d[2] = a2, d[3] = a3, d[4] = a4, d[5] = a5, d[6] = a6, d[7] = a7;
        if (NG > 1) {
            d = acc[1] + 8 * h;
            d[0] = b0, d[1] = b1, d[2] = b2, d[3] = b3, d[4] = b4, d[5] = b5, d[6] = b6, d[7] = b7;
        }
        if (NG > 2) {
            d = acc[2] + 8 * h;
            d[0] = c0, d[1] = c1, d[2] = c2, d[3] = c3, d[4] = c4, d[5] = c5, d[6] = c6, d[7] = c7;
        }
    }
    for (int g = 0; g < NG; g++) store_red16(out + (size_t)g * HD + tc, acc[g]);
}

/* ---- R = 64 (one token of the sequence in the batch: decode) from the transposed copies ----
 * KQ: lane v of 64 holds the chain over t = v + 64 c (c in order, from zero); l16[u] = (l[u] + l[u+32]) +
 * (l[u+16] + l[u+48]), then red16 -- with positions in vector lanes each lane is one vector, so the fold and
 * the tree are vector adds. P.V: lane v holds positions j = v mod 64, so a block b of 16 positions feeds
 * lanes 16 (b mod 4) + u: four accumulators per dimension (b mod 4), folded as above and red16'ed 16
 * dimensions at a time. The same operations per sum as the row paths (scores_heads and pv_avx512 with R =
 * 64). */

/* t3 (= l16[x + 8] + l16[x], x < 8) of NG heads for one block of 16 positions, into t3 (NG, 8) */
PK_AI void kt64_heads(float *sc, size_t S, const float *q, const int HD, const uint16_t *kb, __mmask16 mk,
                      __m512 vs, const int NG) {
    __m512 t3[3][8];
    for (int x = 0; x < 8; x++) {
        __m512 f[3][2];
        for (int hh = 0; hh < 2; hh++) { /* u = x, then x + 8 */
            const int u = x + 8 * hh;
            __m512 l[3][4];
#pragma GCC unroll 3
            for (int g = 0; g < NG; g++)
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) l[g][s] = _mm512_setzero_ps();
            for (int c = 0; c < HD / 64; c++)
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) { /* lane u + 16 s */
                    const int t = 64 * c + u + 16 * s;
                    const __m512 k = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, kb + (size_t)t * 16));
#pragma GCC unroll 3
                    for (int g = 0; g < NG; g++)
                        l[g][s] = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)g * HD + t]), k, l[g][s]);
                }
#pragma GCC unroll 3
            for (int g = 0; g < NG; g++)
                f[g][hh] = _mm512_add_ps(_mm512_add_ps(l[g][0], l[g][2]), _mm512_add_ps(l[g][1], l[g][3]));
        }
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++) t3[g][x] = _mm512_add_ps(f[g][1], f[g][0]);
    }
    for (int g = 0; g < NG; g++) {
        __m512 t6[4];
        for (int x = 0; x < 4; x++) t6[x] = _mm512_add_ps(t3[g][x + 4], t3[g][x]);
        const __m512 r = _mm512_add_ps(_mm512_add_ps(t6[0], t6[2]), _mm512_add_ps(t6[1], t6[3]));
        _mm512_storeu_ps(sc + (size_t)g * S, _mm512_mul_ps(r, vs));
    }
}

/* one head group of a block (R = 16: kt_heads with HD 64 and 128 as constants; R = 64: kt64_heads) */
PK_AI void kt_group(float *s0, size_t S, const float *q, int HD, const uint16_t *kb, __mmask16 mk, __m512 vs,
                    const int NG, const int R) {
    if (R == 64) /* kt64_heads, below */
        kt64_heads(s0, S, q, HD == 64 ? 64 : HD, kb, mk, vs, NG);
    else if (HD == 64)
        kt_heads(s0, S, q, 64, kb, mk, vs, NG);
    else if (HD == 128)
        kt_heads(s0, S, q, 128, kb, mk, vs, NG);
    else
        kt_heads(s0, S, q, HD, kb, mk, vs, NG);
}

/* KQ (R = 16, or 64 with HD a multiple of 64) from kv->kt (blocks of 16 positions, HD a multiple of 16),
 * heads 3 at a time (kt_heads, kt64_heads) */
static void scores_kt_avx512(float *sc, size_t S, const float *qf, int ng, int HD, const pk_kv_span *kv,
                             int lo, int p, float scale, int R) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int j0 = lo & ~15; j0 <= p; j0 += 16) {
        const uint16_t *kb = kv->kt + (size_t)kv->blocks[j0 / 16] * kv->blk;
        const __mmask16 mk = block_mask(j0, lo, p);
        for (int g0 = 0; g0 < ng; g0 += 3) {
            const int NG = ng - g0 < 3 ? ng - g0 : 3;
            float *s0 = sc + (size_t)g0 * S + j0;
            const float *q = qf + (size_t)g0 * HD;
            if (R == 64) {
                if (NG == 3)
                    kt_group(s0, S, q, HD, kb, mk, vs, 3, 64);
                else if (NG == 2)
                    kt_group(s0, S, q, HD, kb, mk, vs, 2, 64);
                else
                    kt_group(s0, S, q, HD, kb, mk, vs, 1, 64);
            } else if (NG == 3)
                kt_group(s0, S, q, HD, kb, mk, vs, 3, 16);
            else if (NG == 2)
                kt_group(s0, S, q, HD, kb, mk, vs, 2, 16);
            else
                kt_group(s0, S, q, HD, kb, mk, vs, 1, 16);
        }
    }
}

/* P.V (R = 64) of NG heads for dimensions tc .. tc + 15, two at a time: acc[set b mod 4] per dimension */
PK_AI void pvt64_cols(float *out, const float *sc, size_t S, const int HD, const pk_kv_span *kv, int lo,
                      int p, int tc, const int NG) {
    __m512 F[3][16];
    const int b_lo = lo / 16, b_hi = p / 16;
    for (int d = 0; d < 16; d += 2) {
        __m512 a[3][2][4];
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) a[g][i][s] = _mm512_setzero_ps();
        for (int bb = b_lo & ~3; bb <= b_hi; bb += 4)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const int b = bb + s;
                if (b < b_lo || b > b_hi) continue; /* no position of [lo, p]: zero probabilities only */
                const int j0 = 16 * b;
                const __mmask16 mk = block_mask(j0, lo, p);
                const uint16_t *vb = kv->vt + (size_t)kv->blocks[b] * kv->blk + (size_t)(tc + d) * 16;
                const __m512 v0 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, vb));
                const __m512 v1 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, vb + 16));
#pragma GCC unroll 3
                for (int g = 0; g < NG; g++) {
                    const __m512 w = _mm512_maskz_loadu_ps(mk, sc + (size_t)g * S + j0);
                    a[g][0][s] = _mm512_fmadd_ps(w, v0, a[g][0][s]);
                    a[g][1][s] = _mm512_fmadd_ps(w, v1, a[g][1][s]);
                }
            }
#pragma GCC unroll 3
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++)
                F[g][d + i] = _mm512_add_ps(_mm512_add_ps(a[g][i][0], a[g][i][2]),
                                            _mm512_add_ps(a[g][i][1], a[g][i][3]));
    }
    for (int g = 0; g < NG; g++) store_red16(out + (size_t)g * HD + tc, F[g]);
}

/* P.V (R = 16 or 64) from kv->vt (blocks of 16 positions, HD a multiple of 16), V finite (kv->v_finite: a
 * zero probability's fma then adds +0); positions of a block outside [lo, p] read as zero */
static void pv_t_avx512(float *out, const float *sc, size_t S, int ng, int HD, const pk_kv_span *kv, int lo,
                        int p, int R) {
    for (int tc = 0; tc < HD; tc += 16)
        for (int g0 = 0; g0 < ng; g0 += 3) {
            const int NG = ng - g0 < 3 ? ng - g0 : 3;
            float *o = out + (size_t)g0 * HD;
            const float *w = sc + (size_t)g0 * S;
            if (R == 64) {
                if (NG == 3)
                    pvt64_cols(o, w, S, HD, kv, lo, p, tc, 3);
                else if (NG == 2)
                    pvt64_cols(o, w, S, HD, kv, lo, p, tc, 2);
                else
                    pvt64_cols(o, w, S, HD, kv, lo, p, tc, 1);
            } else if (NG == 3)
                pvt_cols(o, w, S, HD, kv, lo, p, tc, 3);
            else if (NG == 2)
                pvt_cols(o, w, S, HD, kv, lo, p, tc, 2);
            else
                pvt_cols(o, w, S, HD, kv, lo, p, tc, 1);
        }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* AVX-512 */

static int attend512_ok(void) {
#ifdef PK_HAVE_ATTEND_512
    const pulse_cpu *c = pulse_cpu_get(); /* the one place that knows the CPU (core/cpu.c) */
    return c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl;
#else
    return 0;
#endif
}

int pk_attend_wants_transposed(int B, int HD) {
#ifdef PK_HAVE_ATTEND_AVX
    return pc_simd_v3 && B == 16 && HD % 16 == 0;
#else
    (void)B, (void)HD;
    return 0;
#endif
}

void pk_attend_f16(float *out, const uint16_t *q16, int ng, int HD, const pk_kv_span *kv, int lo, int p,
                   int R, float scale, int n_ctx, float *scratch) {
#ifdef PK_HAVE_ATTEND_AVX
    if (!pc_simd_v3) {
        pk_attend_f16_ref(out, q16, ng, HD, kv, lo, p, R, scale, n_ctx, scratch);
        return;
    }
    const size_t S = sc_stride(n_ctx);
    float *sc = scratch, *work = sc + (size_t)ng * S + 2 * S, *qf = work, *kf = work + (size_t)ng * HD;
    size_t *off = (size_t *)(void *)(sc + (size_t)ng * S);
    const int v512 = attend512_ok();
    (void)v512;
    row_offsets(off, kv, lo, p);
    pulse_dequantize_row(PULSE_GGML_F16, q16, qf, (int64_t)ng * HD); /* exact */
    int done = 0;
#ifdef PK_HAVE_ATTEND_512
    if (v512 && R == 16 && kv->kt && kv->B == 16 && HD % 16 == 0) {
        scores_kt_avx512(sc, S, qf, ng, HD, kv, lo, p, scale, 16);
        done = 1;
    } else if (v512 && R == 64 && kv->kt && kv->B == 16 && HD % 64 == 0) {
        scores_kt_avx512(sc, S, qf, ng, HD, kv, lo, p, scale, 64);
        done = 1;
    } else if (v512 && HD % (R == 64 ? 64 : 16) == 0) {
        scores_avx512(sc, S, qf, ng, HD, kv, off, lo, p, R, scale, kf);
        done = 1;
    }
#endif
    if (!done && kv->kt && kv->B == 16 && HD % (R == 64 ? 64 : 16) == 0)
        scores_kt_avx2(sc, S, qf, ng, HD, kv, lo, p, scale, R);
    else if (!done && HD % R == 0)
        scores_avx2(sc, S, qf, ng, HD, kv, off, lo, p, R, scale, kf);
    else if (!done)
        scores_ref(sc, S, qf, ng, HD, kv, off, lo, p, R, scale, kf);
    for (int g = 0; g < ng; g++) {
#ifdef PK_HAVE_ATTEND_512
        if (v512) {
            softmax_avx512(sc + (size_t)g * S, lo, p, R);
            continue;
        }
#endif
        softmax_avx2(sc + (size_t)g * S, lo, p);
    }
    /* from the transposed V: R = 16 or 64, V finite */
    const int vt_ok = (R == 16 || R == 64) && kv->vt && kv->v_finite && kv->B == 16 && HD % 16 == 0;
#ifdef PK_HAVE_ATTEND_512
    if (v512 && vt_ok) {
        pv_t_avx512(out, sc, S, ng, HD, kv, lo, p, R);
        return;
    }
    if (v512 && HD % 16 == 0 && pv_avx512(out, sc, S, ng, HD, kv, off, lo, p, R)) return;
#endif
    if (!v512 && vt_ok) {
        pv_t_avx2(out, sc, S, ng, HD, kv, lo, p, R);
        return;
    }
    if (HD % 8 == 0 && ng <= 8)
        pv_avx2(out, sc, S, ng, HD, kv, off, lo, p, R);
    else
        pv_ref(out, sc, S, ng, HD, kv, off, lo, p, R, work);
#else
    pk_attend_f16_ref(out, q16, ng, HD, kv, lo, p, R, scale, n_ctx, scratch);
#endif
}
