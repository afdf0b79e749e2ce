/* kernels/gemm_bf16.c — owns the bf16 mixed-precision GEMM (include/pulse/kernels_bf16.h): an AVX512-BF16
 * kernel (vdpbf16ps, fp32 accumulators) chosen at run time, the scalar reference the tests compare it with,
 * the fp32 sgemm fallback, and the linear layer (forward and backward) built on it.
 *
 * Kernel (GotoBLAS shape): B is converted once per call into bf16 panels of NR columns, [k pair][column] u32
 * words (low half = row 2p, high half = row 2p + 1); then each thread takes MC-row blocks of A, converts a
 * (MC, KC) block into MR-row micro-panels [k pair][row], and runs the MR x NR micro-kernel over every panel:
 * per k pair, NR/16 loads of B, MR broadcasts of an A pair, MR * NR/16 vdpbf16ps. Edges are zero-padded in
 * the packed copies and masked on the stores. The default x86-64-v3 build stays runnable on any AVX2 machine:
 * only the functions between the target pragmas use AVX-512, and only after the CPU check. */
#include "pulse/kernels_bf16.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "pulse/core.h"
#include "pulse/kernels.h"

/* ---- scalar conversion and reference ---- */

/* bf16 bits of x, round to nearest even; NaN stays a (quiet) NaN */
static inline uint32_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

float pulse_bf16_round(float x) {
    uint32_t u = bf16_bits(x) << 16;
    float y;
    memcpy(&y, &u, sizeof y);
    return y;
}

void pulse_gemm_bf16_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                float b = transB ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                s += (double)pulse_bf16_round(a) * (double)pulse_bf16_round(b);
            }
            float *c = C + (size_t)m * ldc + n;
            *c = beta == 0.0f ? alpha * (float)s : alpha * (float)s + beta * *c;
        }
}

/* ---- AVX512-BF16 kernel ---- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PK_HAVE_BF16_KERNEL 1
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))),                \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#endif

enum { MR = 8, NR = 48, KC = 512, KCP = KC / 2, MC = 64 };

#include "kernels/bf16_tile.h"

/* panel p of op(B) (K, N): dst[kp * NR + j] = (B[2kp][n0 + j], B[2kp + 1][n0 + j]), zero outside */
static void pack_b_panel(uint32_t *dst, const float *B, int ldb, int transB, int K, int N, int n0) {
    const int KP = (K + 1) / 2, nr = N - n0 < NR ? N - n0 : NR;
    if (transB) { /* B[k][n] = B[n * ldb + k]: the pairs are contiguous along a row of the stored matrix */
        uint32_t tmp[KCP];
        for (int j = 0; j < NR; j++) {
            if (j >= nr) {
                for (int kp = 0; kp < KP; kp++) dst[(size_t)kp * NR + j] = 0u;
                continue;
            }
            const float *row = B + (size_t)(n0 + j) * ldb;
            for (int kp0 = 0; kp0 < KP; kp0 += KCP) {
                int np = KP - kp0 < KCP ? KP - kp0 : KCP;
                pk_pair_row(tmp, row + 2 * kp0, K - 2 * kp0, np);
                for (int p = 0; p < np; p++) dst[(size_t)(kp0 + p) * NR + j] = tmp[p];
            }
        }
        return;
    }
    for (int kp = 0; kp < KP; kp++) { /* B[k][n] = B[k * ldb + n]: rows 2kp and 2kp + 1 */
        const float *r0 = B + (size_t)(2 * kp) * ldb + n0, *r1 = r0 + ldb;
        uint32_t *d = dst + (size_t)kp * NR;
        int odd = 2 * kp + 1 >= K;
        if (nr == NR && !odd) {
            for (int q = 0; q < NR; q += 16) _mm512_storeu_si512(d + q, pk_pair_rows16(r0 + q, r1 + q));
            continue;
        }
        for (int j = 0; j < NR; j++)
            d[j] = j < nr ? (bf16_bits(r0[j]) | (odd ? 0u : bf16_bits(r1[j]) << 16)) : 0u;
    }
}

/* rows m0.. m0 + mc of op(A), k in [k0, k0 + kc): micro-panel i at dst + i * KCP * MR; words [r][kp] (row
 * stride KCP) when A is as stored (each row converted in one vector pass), [kp][r] when transposed (MR
 * words of one k pair come from two stored rows) */
static void pack_a_block(uint32_t *dst, const float *A, int lda, int transA, int m0, int mc, int k0, int kc) {
    const int np = (kc + 1) / 2, nmr = (mc + MR - 1) / MR;
    for (int i = 0; i < nmr; i++) {
        uint32_t *d = dst + (size_t)i * KCP * MR;
        for (int r = 0; r < MR && !transA; r++) { /* A[m][k] = A[m * lda + k]: pairs contiguous */
            int m = i * MR + r;
            if (m >= mc)
                memset(d + (size_t)r * KCP, 0, sizeof(uint32_t) * (size_t)np);
            else
                pk_pair_row(d + (size_t)r * KCP, A + (size_t)(m0 + m) * lda + k0, kc, np);
        }
        if (transA) { /* A[m][k] = A[k * lda + m]: rows 2p and 2p + 1 of the stored matrix, MR at a time */
            const int full = mc - i * MR >= MR;
            for (int p = 0; p < np; p++) {
                const float *r0 = A + (size_t)(k0 + 2 * p) * lda + m0 + i * MR, *r1 = r0 + lda;
                const int odd = 2 * p + 1 >= kc;
                uint32_t *dp = d + (size_t)p * MR;
                if (full && !odd) {
                    __m256i lo = _mm256_cvtepu16_epi32((__m128i)_mm256_cvtneps_pbh(_mm256_loadu_ps(r0)));
                    __m256i hi = _mm256_cvtepu16_epi32((__m128i)_mm256_cvtneps_pbh(_mm256_loadu_ps(r1)));
                    _mm256_storeu_si256((__m256i *)dp, _mm256_or_si256(lo, _mm256_slli_epi32(hi, 16)));
                    continue;
                }
                for (int r = 0; r < MR; r++)
                    dp[r] = i * MR + r < mc ? (bf16_bits(r0[r]) | (odd ? 0u : bf16_bits(r1[r]) << 16)) : 0u;
            }
        }
    }
}

/* pack_a_block for A given in bf16 (A16: bit patterns, row-major with lda): the same words without a
 * conversion (as stored: a row's pairs are its consecutive halves; transposed: two stored rows interleaved)
 */
static void pack_a_block16(uint32_t *dst, const uint16_t *A16, int lda, int transA, int m0, int mc, int k0,
                           int kc) {
    const int np = (kc + 1) / 2, nmr = (mc + MR - 1) / MR, full_w = kc / 2;
    for (int i = 0; i < nmr; i++) {
        uint32_t *d = dst + (size_t)i * KCP * MR;
        for (int r = 0; r < MR && !transA; r++) {
            int m = i * MR + r;
            uint32_t *dr = d + (size_t)r * KCP;
            if (m >= mc) {
                memset(dr, 0, sizeof(uint32_t) * (size_t)np);
                continue;
            }
            const uint16_t *src = A16 + (size_t)(m0 + m) * lda + k0;
            memcpy(dr, src, sizeof(uint32_t) * (size_t)full_w);
            if (full_w < np) dr[full_w] = src[kc - 1]; /* odd kc: the last pair's second half is zero */
        }
        if (transA) {
            const int full = mc - i * MR >= MR;
            for (int p = 0; p < np; p++) {
                const uint16_t *r0 = A16 + (size_t)(k0 + 2 * p) * lda + m0 + i * MR, *r1 = r0 + lda;
                const int odd = 2 * p + 1 >= kc;
                uint32_t *dp = d + (size_t)p * MR;
                if (full && !odd) {
                    const __m128i a = _mm_loadu_si128((const __m128i *)r0),
                                  b = _mm_loadu_si128((const __m128i *)r1);
                    _mm_storeu_si128((__m128i *)dp, _mm_unpacklo_epi16(a, b));
                    _mm_storeu_si128((__m128i *)(dp + 4), _mm_unpackhi_epi16(a, b));
                    continue;
                }
                for (int r = 0; r < MR; r++)
                    dp[r] = i * MR + r < mc ? ((uint32_t)r0[r] | (odd ? 0u : (uint32_t)r1[r] << 16)) : 0u;
            }
        }
    }
}

/* where the product goes: C (ldc), or split by columns into nseg outputs of seg columns each (seg a multiple
 * of NR; output i (M, seg) row-major holds columns [i seg, (i + 1) seg)); bias (N) added; g: when not NULL,
 * GELU(erf) of the result is stored there too (same layout as the output; g == the output = GELU only) */
typedef struct {
    float *c;
    int ldc;
    float *const *segs;
    int seg;
    const float *bias;
    float *const *gsegs; /* GELU outputs, per segment like segs (or {g} with segs NULL) */
    const float *res;    /* (M, N) with ldc, added like the bias (a residual); NULL = none */
    const float
        *dgelu; /* (M, N) with ldc: the result is multiplied by GELU'(dgelu) (last block); NULL = none */
} out_desc;

/* GELU(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), erf by a rational minimax form on [-4, 4] (Eigen's
 * float erf: x P(x^2) / Q(x^2), clamped; max |error| 4e-7 against double erf, the same order as pk_erff's
 * 2e-7 and far below the bf16 rounding of the next product's input) with one reciprocal refined by Newton:
 * about 20 vector operations instead of pk_erff's two branches */
static inline __m512 gelu16(__m512 x) {
    __m512 u = _mm512_mul_ps(x, _mm512_set1_ps(PK_SQRT1_2));
    u = _mm512_max_ps(_mm512_min_ps(u, _mm512_set1_ps(4.0f)), _mm512_set1_ps(-4.0f));
    const __m512 u2 = _mm512_mul_ps(u, u);
    __m512 p =
        _mm512_fmadd_ps(u2, _mm512_set1_ps(-2.72614225801306e-10f), _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(u2, p, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(u2, p, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(u2, p, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(u2, p, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(u2, p, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(u, p);
    __m512 q =
        _mm512_fmadd_ps(u2, _mm512_set1_ps(-1.45660718464996e-05f), _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(u2, q, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(u2, q, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(u2, q, _mm512_set1_ps(-1.42647390514189e-02f));
    __m512 rq = _mm512_rcp14_ps(q); /* q in [-0.03, -0.014]: relative error 2^-14, then 2^-28 */
    rq = _mm512_mul_ps(rq, _mm512_fnmadd_ps(q, rq, _mm512_set1_ps(2.0f)));
    const __m512 erf = _mm512_mul_ps(p, rq);
    const __m512 hx = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    return _mm512_fmadd_ps(hx, erf, hx);
}

/* d GELU(x) / dx = Phi(x) + x phi(x), as pulse_gelu_backward */
static inline __m512 dgelu16(__m512 x) {
    _Alignas(64) float t[16];
    _mm512_store_ps(t, x);
#pragma omp simd
    for (int j = 0; j < 16; j++) {
        t[j] = pk_gelu_grad(t[j]);
    }
    return _mm512_load_ps(t);
}

/* tile (mr <= MR, nr <= NR) at c (ldc) = alpha * a_panel @ b_panel + beta * tile (beta == 0: not read)
 * + bias (nr, NULL = none) + res (ldc, NULL = none), times GELU'(dg) (ldc, NULL = none); g (ldc, NULL =
 * none) gets GELU of the result, g == c stores only that */
static inline __attribute__((always_inline)) void
ukernel_q(const int nq, int np, const uint32_t *a, const uint32_t *b, float *c, int ldc, int mr, int nr,
          float alpha, float beta, const float *bias, const float *res, const float *dg, float *g,
          const int arow, const int astr, uint32_t *gw, const int ldw) {
    /* nq (a constant at each call): the 16-column vectors of the panel that hold columns (nr <= 16 nq); the
     * others are not computed (a 64-column product is one full panel and a 16-column one, not two full) */
    __m512 acc[MR][3];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    /* the epilogue's operands, fetched while the products run (the residual and the destination rows are
     * usually out of cache: without this their misses stall the stores) */
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 3; q++) {
            if (res) __builtin_prefetch(res + (size_t)r * ldc + 16 * q, 0, 3);
            if (g) __builtin_prefetch(g + (size_t)r * ldc + 16 * q, 1, 3);
            if (g != c && !gw) __builtin_prefetch(c + (size_t)r * ldc + 16 * q, 1, 3);
        }
    for (int p = 0; p < np; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = nq > 1 ? (__m512bh)_mm512_loadu_si512(b + 16) : (__m512bh)_mm512_setzero_si512();
        const __m512bh b2 = nq > 2 ? (__m512bh)_mm512_loadu_si512(b + 32) : (__m512bh)_mm512_setzero_si512();
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)(arow ? a[r * astr + p] : a[p * MR + r]));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], b0, ar);
            if (nq > 1) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], b1, ar);
            if (nq > 2) acc[r][2] = _mm512_dpbf16_ps(acc[r][2], b2, ar);
        }
        b += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (gw) { /* GELU(alpha acc + bias) as bf16 pair words: row r's columns 2w, 2w + 1 in gw[r ldw + w] (nr ==
                 NR, beta 0) */
        for (int r = 0; r < MR; r++) {
            uint32_t *wr = gw + (size_t)r * ldw;
            if (r >= mr) { /* rows past the block: zero (the next product reads whole micro-panels) */
                memset(wr, 0, sizeof(uint32_t) * NR / 2);
                continue;
            }
            __m512 v[3];
            for (int q = 0; q < 3; q++)
                v[q] = gelu16(_mm512_add_ps(_mm512_mul_ps(acc[r][q], va), _mm512_loadu_ps(bias + 16 * q)));
            _mm512_storeu_si512(wr, (__m512i)_mm512_cvtne2ps_pbh(v[1], v[0]));
            _mm256_storeu_si256((__m256i *)(wr + 16), (__m256i)_mm512_cvtneps_pbh(v[2]));
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int q = 0; q < 3; q++) {
            int cnt = nr - 16 * q;
            if (cnt <= 0) break;
            __mmask16 k = cnt >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cnt) - 1u);
            __m512 v = _mm512_mul_ps(acc[r][q], va);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + 16 * q));
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, res + (size_t)r * ldc + 16 * q));
            if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, cr + 16 * q), vb, v);
            if (dg) v = _mm512_mul_ps(v, dgelu16(_mm512_maskz_loadu_ps(k, dg + (size_t)r * ldc + 16 * q)));
            if (g != c) _mm512_mask_storeu_ps(cr + 16 * q, k, v);
            if (g) _mm512_mask_storeu_ps(g + (size_t)r * ldc + 16 * q, k, gelu16(v));
        }
    }
}

/* the full-width tile (nq 3): the FFN's products, whose widths are multiples of NR */
static inline __attribute__((always_inline)) void ukernel(int np, const uint32_t *a, const uint32_t *b,
                                                          float *c, int ldc, int mr, int nr, float alpha,
                                                          float beta, const float *bias, const float *res,
                                                          const float *dg, float *g, const int arow,
                                                          const int astr, uint32_t *gw, const int ldw) {
    ukernel_q(3, np, a, b, c, ldc, mr, nr, alpha, beta, bias, res, dg, g, arow, astr, gw, ldw);
}

/* one tile of gemm_mblock: the kernel specialised by the panel's width in 16-column vectors and A's layout */
static void gemm_tile(int np, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
                      float alpha, float bt, const float *bs, const float *rs, const float *dg, float *gt,
                      int transA) {
    const int nq = (nr + 15) / 16;
    if (transA) { /* [kp][r] micro-panel */
        if (nq == 3)
            ukernel_q(3, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 0, KCP, NULL, 0);
        else if (nq == 2)
            ukernel_q(2, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 0, KCP, NULL, 0);
        else
            ukernel_q(1, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 0, KCP, NULL, 0);
    } else { /* [r][kp] */
        if (nq == 3)
            ukernel_q(3, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 1, KCP, NULL, 0);
        else if (nq == 2)
            ukernel_q(2, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 1, KCP, NULL, 0);
        else
            ukernel_q(1, np, ap, bp, c, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, 1, KCP, NULL, 0);
    }
}

/* rows [mb MC, mb MC + MC) of the product, every k block and panel; Ap: the thread's (MC, KC) packing buffer
 */
static void gemm_mblock(int mb, int pa, int pb, int transA, int M, int N, int K, float alpha, const float *A,
                        const uint16_t *A16, int lda, float beta, const out_desc *o, const uint32_t *Bp,
                        uint32_t *Ap) {
    const int KP = (K + 1) / 2;
    const int m0 = mb * MC, mc = M - m0 < MC ? M - m0 : MC;
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC, np = (kc + 1) / 2, last = k0 + KC >= K;
        const float bt = k0 == 0 ? beta : 1.0f;
        if (A16)
            pack_a_block16(Ap, A16, lda, transA, m0, mc, k0, kc);
        else
            pack_a_block(Ap, A, lda, transA, m0, mc, k0, kc);
        for (int p = pa; p < pb; p++) {
            const int n0 = p * NR, nr = N - n0 < NR ? N - n0 : NR;
            const uint32_t *bp = Bp + ((size_t)p * KP + (size_t)(k0 / 2)) * NR;
            float *c = o->c, *g = o->gsegs && last ? o->gsegs[0] : NULL;
            int ldc = o->ldc, col = n0;
            if (o->segs) {
                c = o->segs[n0 / o->seg];
                g = o->gsegs && last ? o->gsegs[n0 / o->seg] : NULL;
                ldc = o->seg;
                col = n0 % o->seg;
            }
            for (int i = 0; i * MR < mc; i++) {
                const int mr = mc - i * MR < MR ? mc - i * MR : MR;
                const size_t off = (size_t)(m0 + i * MR) * ldc + col;
                const uint32_t *ap = Ap + (size_t)i * KCP * MR;
                const float *bs = k0 == 0 && o->bias ? o->bias + n0 : NULL;
                const float *rs = k0 == 0 && o->res ? o->res + off : NULL;
                float *gt = g ? g + off : NULL;
                const float *dg = last && o->dgelu ? o->dgelu + off : NULL;
                gemm_tile(np, ap, bp, c + off, ldc, mr, nr, alpha, bt, bs, rs, dg, gt, transA);
            }
        }
    }
}

/* Rows [mb MC, mb MC + MC) of the inference FFN: out = GELU(inp W1^T + b1) W2^T + b2 (+ res). inp (N, C)
 * with C <= KC, FF a multiple of NR; B1, B2: the packed weights (op(B) = W1^T (C, FF), W2^T (FF, C)); Ap
 * the thread's A buffer; G (MC, FF / 2) the thread's hidden rows as bf16 pair words (the second product's A
 * micro-panels, row stride FF / 2), never stored in fp32. */
static void ffn_mblock(int mb, int N, int C, int FF, const float *inp, const uint32_t *B1, const float *b1,
                       const uint32_t *B2, const float *b2, const float *res, float *out, uint32_t *Ap,
                       uint32_t *G) {
    const int m0 = mb * MC, mc = N - m0 < MC ? N - m0 : MC, np1 = (C + 1) / 2, np2 = FF / 2;
    const int KP1 = (C + 1) / 2, KP2 = FF / 2, NP1 = FF / NR, NP2 = (C + NR - 1) / NR;
    pack_a_block(Ap, inp, C, 0, m0, mc, 0, C);
    for (int p = 0; p < NP1; p++)
        for (int i = 0; i * MR < mc; i++) {
            const int mr = mc - i * MR < MR ? mc - i * MR : MR;
            ukernel(np1, Ap + (size_t)i * KCP * MR, B1 + (size_t)p * KP1 * NR, NULL, 0, mr, NR, 1.0f, 0.0f,
                    b1 + p * NR, NULL, NULL, NULL, 1, KCP, G + (size_t)i * MR * np2 + p * NR / 2, np2);
        }
    for (int p = 0; p < NP2; p++) {
        const int n0 = p * NR, nr = C - n0 < NR ? C - n0 : NR;
        for (int i = 0; i * MR < mc; i++) {
            const int mr = mc - i * MR < MR ? mc - i * MR : MR;
            const size_t off = (size_t)(m0 + i * MR) * C + n0;
            ukernel(np2, G + (size_t)i * MR * np2, B2 + (size_t)p * KP2 * NR, out + off, C, mr, nr, 1.0f,
                    0.0f, b2 + n0, res ? res + off : NULL, NULL, NULL, 1, np2, NULL, 0);
        }
    }
}

/* ---- attention (one (batch, head) pair per call) ----
 * Small products on packed pair words: c (mr <= 8 rows, nc <= 16 nv columns, ldc) = alpha * sum_p a[r lda +
 * p] (x) b[p ldb + ..]; a holds 8 rows of pair words (rows past mr zero), b pair words 16 nv columns wide. */
static void att_tile_any(int nv, int np, const uint32_t *a, int lda, const uint32_t *b, int ldb, float *c,
                         int ldc, int mr, int nc, float alpha) {
    if (nv >= 3)
        pk_bf16_tile(3, np, a, lda, b, ldb, c, ldc, mr, nc, alpha, 0);
    else if (nv == 2)
        pk_bf16_tile(2, np, a, lda, b, ldb, c, ldc, mr, nc, alpha, 0);
    else
        pk_bf16_tile(1, np, a, lda, b, ldb, c, ldc, mr, nc, alpha, 0);
}

#include "kernels/avx512_math.h"

/* row (T) of scores -> probabilities in place: keys j < jend with km[j] != 0 (km NULL = all) visible, the
 * rest 0; no visible key: all 0 */
static void softmax_row(float *row, const uint8_t *km, int T, int jend) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = ninf;
    for (int j = 0; j < jend; j += 16) {
        __mmask16 k = jend - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (jend - j)) - 1u);
        if (km) k &= _mm_test_epi8_mask(_mm_maskz_loadu_epi8(k, km + j), _mm_set1_epi8(-1));
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(ninf, k, row + j));
    }
    const float maxv = _mm512_reduce_max_ps(vmax);
    if (maxv == -INFINITY) {
        memset(row, 0, sizeof(float) * (size_t)T);
        return;
    }
    const __m512 vm = _mm512_set1_ps(maxv);
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < jend; j += 16) {
        const __mmask16 kt = jend - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (jend - j)) - 1u);
        __mmask16 k = kt;
        if (km) k &= _mm_test_epi8_mask(_mm_maskz_loadu_epi8(kt, km + j), _mm_set1_epi8(-1));
        const __m512 e = pk_exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, k, row + j), vm));
        vsum = _mm512_add_ps(vsum, e);
        _mm512_mask_storeu_ps(row + j, kt, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int j = 0; j < jend; j += 16) {
        const __mmask16 kt = jend - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (jend - j)) - 1u);
        _mm512_mask_storeu_ps(row + j, kt, _mm512_mul_ps(_mm512_maskz_loadu_ps(kt, row + j), inv));
    }
    for (int j = jend; j < T; j++) row[j] = 0.0f;
}

/* One sequence, every head: q, k, v, o (T, C) with NH heads of hs (even) columns; A (NH, T, T) gets the
 * probabilities, or NULL. The sequence is converted once (whole rows, streaming): qw [T8][C/2] pair words of
 * the rows (head h at word h hs/2), kw [C/2][Tv] the same transposed (head h's K^T at row h hs/2; Tv = T
 * rounded up to 16, zero columns past T), vw [Tp][C + 16] pair words of row pairs (2jp, 2jp + 1); then per
 * head and block of 8 query rows: scores (8, T) into A or sb [8][T], softmax, their pair words pb [8][Tp],
 * and the block's output from pb and vw. */
static void att_seq(float *o, float *A, const float *q, const float *k, const float *v, const uint8_t *km,
                    int T, int C, int NH, int causal, float scale, uint32_t *w, float *sb) {
    const int hs = C / NH, hp = hs / 2, Cw = C / 2, T8 = (T + 7) / 8 * 8, Tv = (T + 15) / 16 * 16,
              Tp = (T + 1) / 2, ldv = C + 16;
    uint32_t *qw = w, *kw = qw + (size_t)T8 * Cw, *vw = kw + (size_t)Cw * Tv, *pb = vw + (size_t)Tp * ldv;
    uint32_t *tmp = pb + 8 * (size_t)Tp;
    for (int i = 0; i < T8; i++) {
        if (i < T)
            pk_pair_row(qw + (size_t)i * Cw, q + (size_t)i * C, C, Cw);
        else
            memset(qw + (size_t)i * Cw, 0, sizeof(uint32_t) * (size_t)Cw);
    }
    for (int j = 0; j < Tv; j++) {
        if (j < T)
            pk_pair_row(tmp, k + (size_t)j * C, C, Cw);
        else
            memset(tmp, 0, sizeof(uint32_t) * (size_t)Cw);
        for (int p = 0; p < Cw; p++) kw[(size_t)p * Tv + j] = tmp[p];
    }
    for (int jp = 0; jp < Tp; jp++) {
        const float *r0 = v + (size_t)(2 * jp) * C, *r1 = r0 + C;
        const int odd = 2 * jp + 1 >= T;
        uint32_t *d = vw + (size_t)jp * ldv;
        int c = 0;
        for (; c + 16 <= C && !odd; c += 16) _mm512_storeu_si512(d + c, pk_pair_rows16(r0 + c, r1 + c));
        for (; c < ldv; c++) d[c] = c < C ? (bf16_bits(r0[c]) | (odd ? 0u : bf16_bits(r1[c]) << 16)) : 0u;
    }
    memset(pb, 0, sizeof(uint32_t) * 8 * (size_t)Tp);
    for (int h = 0; h < NH; h++) {
        const uint32_t *qh = qw + (size_t)h * hp, *kh = kw + (size_t)h * hp * Tv, *vh = vw + (size_t)h * hs;
        float *Ah = A ? A + (size_t)h * T * T : NULL, *oh = o + (size_t)h * hs;
        for (int i0 = 0; i0 < T; i0 += 8) {
            const int mr = T - i0 < 8 ? T - i0 : 8;
            float *Ab = Ah ? Ah + (size_t)i0 * T : sb;
            for (int c0 = 0; c0 < T; c0 += 48)
                att_tile_any((T - c0 + 15) / 16, hp, qh + (size_t)i0 * Cw, Cw, kh + c0, Tv, Ab + c0, T, mr,
                             T - c0, scale);
            for (int r = 0; r < mr; r++) {
                float *arow = Ab + (size_t)r * T;
                softmax_row(arow, km, T, causal ? i0 + r + 1 : T);
                pk_pair_row(pb + (size_t)r * Tp, arow, T, Tp);
            }
            for (int c0 = 0; c0 < hs; c0 += 48)
                att_tile_any((hs - c0 + 15) / 16, Tp, pb, Tp, vh + c0, ldv, oh + (size_t)i0 * C + c0, C, mr,
                             hs - c0, 1.0f);
        }
    }
}

/* one row of pulse_crossentropy_forward_backward_bf16 on 16 lanes: x (V) -> exp(x - max) in place, dx (V)
 * = the gradient in bf16; returns the row's loss. The sum of the exps in two 8-lane double accumulators. */
static double ce_row_bf16_avx512(uint16_t *dx, float *x, int V, int tg, float scale) {
    const float xt = x[tg];
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < V; j += 16) {
        const __mmask16 k = V - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (V - j)) - 1u);
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + j));
    }
    const float maxv = _mm512_reduce_max_ps(vmax);
    const __m512 vm = _mm512_set1_ps(maxv);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int j = 0; j < V; j += 16) {
        const __mmask16 k = V - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (V - j)) - 1u);
        const __m512 e = _mm512_maskz_mov_ps(k, pk_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm)));
        _mm512_mask_storeu_ps(x + j, k, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1,
                           _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    const double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)); /* >= 1: exp(0) is a term */
    const float mul = (float)(1.0 / sum) * scale;
    const __m512 vmul = _mm512_set1_ps(mul);
    for (int j = 0; j < V; j += 16) {
        const __mmask16 k = V - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (V - j)) - 1u);
        const __m256bh b = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), vmul));
        _mm256_mask_storeu_epi16(dx + j, k, (__m256i)b);
    }
    float gt = x[tg] * mul; /* the target's term: two roundings, as the fp32 form, then bf16 */
    gt -= scale;
    dx[tg] = (uint16_t)(bf16_bits(gt) & 0xffffu);
    return (double)maxv + log(sum) - (double)xt;
}

/* n floats -> bf16 patterns, 16 at a time (vcvtneps2bf16), the tail by bf16_bits */
static void convert_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = (uint16_t)(bf16_bits(src[i]) & 0xffffu);
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* The OpenMP driver stays outside the AVX-512 region (clang does not carry the target attribute into outlined
 * parallel regions); it only calls the AVX-512 functions above. */
static void gemm_bf16_avx512(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                             const uint16_t *A16, int lda, const float *B, int ldb, float beta,
                             const out_desc *o, uint32_t *Bp, const uint32_t *Bpre, int nth) {
    const int KP = (K + 1) / 2, NP = (N + NR - 1) / NR, NMB = (M + MC - 1) / MC;
    /* fewer row blocks than threads (a weight gradient of 64 rows over a long K): each block's panels split
     * NS ways, each part packing the block's A itself */
    const int NS = NMB >= nth ? 1 : (nth + NMB - 1) / NMB < NP ? (nth + NMB - 1) / NMB : NP;
    const uint32_t *Bu = Bpre ? Bpre : Bp;
#pragma omp parallel num_threads(nth)
    {
        if (!Bpre) {
#pragma omp for schedule(static)
            for (int p = 0; p < NP; p++) pack_b_panel(Bp + (size_t)p * KP * NR, B, ldb, transB, K, N, p * NR);
        }
        _Alignas(64) uint32_t Ap[MC * KCP];
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < NMB * NS; t++) {
            const int mb = t / NS, s = t % NS;
            gemm_mblock(mb, NP * s / NS, NP * (s + 1) / NS, transA, M, N, K, alpha, A, A16, lda, beta, o, Bu,
                        Ap);
        }
    }
}

/* every panel of op(B) (K, N) into Bp */
static void pack_b_all(uint32_t *Bp, const float *B, int ldb, int transB, int K, int N, int nth) {
    const int KP = (K + 1) / 2, NP = (N + NR - 1) / NR;
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int p = 0; p < NP; p++) pack_b_panel(Bp + (size_t)p * KP * NR, B, ldb, transB, K, N, p * NR);
}

static void ffn_bf16_avx512(int N, int C, int FF, const float *inp, const uint32_t *B1, const float *b1,
                            const uint32_t *B2, const float *b2, const float *res, float *out, uint32_t *G,
                            int nth) {
    const int NMB = (N + MC - 1) / MC;
#pragma omp parallel num_threads(nth)
    {
        _Alignas(64) uint32_t Ap[MC * KCP];
        uint32_t *Gt = G + (size_t)omp_get_thread_num() * MC * (FF / 2);
#pragma omp for schedule(dynamic, 1)
        for (int mb = 0; mb < NMB; mb++) ffn_mblock(mb, N, C, FF, inp, B1, b1, B2, b2, res, out, Ap, Gt);
    }
}

/* scratch words of att_seq per thread */
static size_t att_words(int T, int C) {
    const size_t Cw = (size_t)C / 2, T8 = (size_t)(T + 7) / 8 * 8, Tv = (size_t)(T + 15) / 16 * 16,
                 Tp = (size_t)(T + 1) / 2;
    return T8 * Cw + Cw * Tv + Tp * (size_t)(C + 16) + 8 * Tp + Cw;
}

static void att_bf16_avx512(float *out, float *att, const float *q, const float *k, const float *v,
                            const uint8_t *key_mask, int B, int T, int C, int NH, int causal, uint32_t *w,
                            size_t words, float *sb, size_t floats, int nth) {
    const float scale = 1.0f / sqrtf((float)(C / NH));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int b = 0; b < B; b++) {
        const size_t off = (size_t)b * T * C;
        att_seq(out + off, att ? att + (size_t)b * NH * T * T : NULL, q + off, k + off, v + off,
                key_mask ? key_mask + (size_t)b * T : NULL, T, C, NH, causal, scale,
                w + (size_t)omp_get_thread_num() * words, sb + (size_t)omp_get_thread_num() * floats);
    }
}
#endif /* x86-64 */

/* ---- dispatch ---- */

static _Atomic int g_bf16 = -1; /* -1 unknown, 0 fallback, 1 AVX512-BF16 */

int pulse_bf16_supported(void) {
    if (g_bf16 < 0) {
        int ok = 0;
#ifdef PK_HAVE_BF16_KERNEL
        const pulse_cpu *c = pulse_cpu_get(); /* the one place that knows the CPU (core/cpu.c) */
        ok = c->avx512f && c->avx512bw && c->avx512vl && c->avx512bf16;
#endif
        if (!pulse_get_options()->bf16) ok = 0;
        g_bf16 = ok;
    }
    return g_bf16;
}

/* a weight (OC, C) as op(B) = weight^T (C, OC) in the kernel's panels */
struct pulse_bf16_weight {
    uint32_t *bp;
    int OC, C;
};

static size_t packed_words(int K, int N) {
    return (size_t)((K + 1) / 2) * (size_t)((N + 47) / 48) * 48;
}

pulse_bf16_weight *pulse_bf16_weight_pack(const float *weight, int OC, int C) {
#ifdef PK_HAVE_BF16_KERNEL
    if (!weight || OC <= 0 || C <= 0 || !pulse_bf16_supported()) return NULL;
    pulse_bf16_weight *w = malloc(sizeof *w);
    const size_t words = packed_words(C, OC);
    uint32_t *bp = w ? aligned_alloc(64, (words * sizeof(uint32_t) + 63) / 64 * 64) : NULL;
    if (!bp) {
        free(w);
        return NULL;
    }
    pack_b_all(bp, weight, C, 1, C, OC, omp_in_parallel() ? 1 : omp_get_max_threads());
    w->bp = bp;
    w->OC = OC;
    w->C = C;
    return w;
#else
    (void)weight, (void)OC, (void)C;
    return NULL;
#endif
}

void pulse_bf16_weight_free(pulse_bf16_weight *w) {
    if (!w) return;
    free(w->bp);
    free(w);
}

/* C = alpha op(A) op(B) + beta C into o (see out_desc); pw, when it is op(B) (B = a weight (N, K) used
 * transposed), replaces the conversion of B; 1 when the bf16 kernel ran, 0 = not run (no AVX512-BF16, or out
 * of memory): the caller falls back to fp32 */
static int gemm_bf16_out16(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                           const uint16_t *A16, int lda, const float *B, int ldb, float beta,
                           const out_desc *o, const pulse_bf16_weight *pw) {
#ifdef PK_HAVE_BF16_KERNEL
    if (K > 0 && pulse_bf16_supported()) {
        const int pre = pw && transB && pw->OC == N && pw->C == K;
        uint32_t *Bp = pre ? NULL : pk_scratch(PK_SCR_BF16_B, packed_words(K, N) * sizeof(uint32_t));
        if (Bp || pre) {
            int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
            double work = 2.0 * M * N * (double)K;
            if (work < 2.0e6 * nth) nth = (int)(work / 2.0e6) > 1 ? (int)(work / 2.0e6) : 1;
            gemm_bf16_avx512(transA, transB, M, N, K, alpha, A, A16, lda, B, ldb, beta, o, Bp,
                             pre ? pw->bp : NULL, nth);
            return 1;
        }
    }
#else
    (void)transA, (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)A16, (void)lda,
        (void)B, (void)ldb;
    (void)beta, (void)o, (void)pw;
#endif
    return 0;
}

static int gemm_bf16_out(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, const out_desc *o,
                         const pulse_bf16_weight *pw) {
    return gemm_bf16_out16(transA, transB, M, N, K, alpha, A, NULL, lda, B, ldb, beta, o, pw);
}

void pulse_gemm_bf16a(int transA, int transB, int M, int N, int K, float alpha, const uint16_t *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const out_desc o = {C, ldc, NULL, 0, NULL, NULL, NULL, NULL};
    if (gemm_bf16_out16(transA, transB, M, N, K, alpha, NULL, A, lda, B, ldb, beta, &o, NULL)) return;
    /* fallback: op(A)'s values in fp32 (exact: every bf16 is a float), then the fp32 product */
    const size_t rows = transA ? (size_t)K : (size_t)M, cols = transA ? (size_t)M : (size_t)K;
    float *Af = K > 0 ? malloc(sizeof(float) * rows * (size_t)lda) : NULL;
    if (K > 0 && !Af) return; /* out of memory: C unchanged */
    for (size_t i = 0; Af && i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            uint32_t u = (uint32_t)A[i * (size_t)lda + j] << 16;
            memcpy(Af + i * (size_t)lda + j, &u, sizeof u);
        }
    pk_sgemm(transA, transB, M, N, K, alpha, Af, lda, B, ldb, beta, C, ldc);
    free(Af);
}

void pulse_gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const out_desc o = {C, ldc, NULL, 0, NULL, NULL, NULL, NULL};
    if (!gemm_bf16_out(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, &o, NULL))
        pk_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* the portable row of pulse_crossentropy_forward_backward_bf16 (the fp32 form's row work, the gradient
 * rounded to bf16 by bf16_bits) */
static double ce_row_bf16(uint16_t *dx, float *x, int V, int tg, float scale) {
    const float xt = x[tg];
    float maxv = -INFINITY;
    PK_SIMD_MAX(maxv)
    for (int j = 0; j < V; j++) maxv = x[j] > maxv ? x[j] : maxv;
    const double sum = pk_exp_shift_sum(x, x, V, maxv);
    const float mul = (float)(1.0 / sum) * scale;
    for (int j = 0; j < V; j++) dx[j] = (uint16_t)(bf16_bits(x[j] * mul) & 0xffffu);
    float gt = x[tg] * mul;
    gt -= scale;
    dx[tg] = (uint16_t)(bf16_bits(gt) & 0xffffu);
    // cppcheck-suppress invalidFunctionArg
    return (double)maxv + log(sum) - (double)xt;
}

double pulse_crossentropy_forward_backward_bf16(uint16_t *dlogits, float *losses, float *logits,
                                                const int *targets, int N, int V, float dloss_scale) {
    if (N <= 0 || V <= 0) return 0.0;
    double part[PK_RED_BLOCKS];
    const int rows_per = (N + PK_RED_BLOCKS - 1) / PK_RED_BLOCKS;
#ifdef PK_HAVE_BF16_KERNEL
    const int vec = pulse_bf16_supported();
#endif
#pragma omp parallel for schedule(static) if ((long)N * V > PK_PAR_WORK)
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) {
        double acc = 0.0;
        const int n0 = blk * rows_per, n1 = n0 + rows_per < N ? n0 + rows_per : N;
        for (int n = n0; n < n1; n++) {
            float *x = logits + (size_t)n * V;
            uint16_t *dx = dlogits + (size_t)n * V;
            const int tg = targets[n];
            double l = 0.0;
            if (tg < 0 || tg >= V) memset(dx, 0, (size_t)V * sizeof(uint16_t));
#ifdef PK_HAVE_BF16_KERNEL
            else if (vec)
                l = ce_row_bf16_avx512(dx, x, V, tg, dloss_scale);
#endif
            else
                l = ce_row_bf16(dx, x, V, tg, dloss_scale);
            if (losses) losses[n] = (float)l;
            acc += l;
        }
        part[blk] = acc;
    }
    double total = 0.0;
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) total += part[blk];
    return total;
}

void pulse_bf16_convert(uint16_t *dst, const float *src, size_t n) {
    const size_t blk = 65536, nb = (n + blk - 1) / blk;
#pragma omp parallel for schedule(static) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * blk, i1 = i0 + blk < n ? i0 + blk : n;
#ifdef PK_HAVE_BF16_KERNEL
        if (pulse_bf16_supported()) {
            convert_avx512(dst + i0, src + i0, i1 - i0);
            continue;
        }
#endif
        for (size_t i = i0; i < i1; i++) dst[i] = (uint16_t)(bf16_bits(src[i]) & 0xffffu);
    }
}

/* ---- linear layer ---- */

void pulse_matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int N,
                               int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) {
        pulse_matmul_forward(out, inp, weight, bias, N, C, OC);
        return;
    }
    /* the bias is added in the kernel's store (no pass over out before the product) */
    const out_desc o = {out, OC, NULL, 0, bias, NULL, NULL, NULL};
    if (gemm_bf16_out(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, &o, NULL)) return;
    pulse_matmul_forward(out, inp, weight, bias, N, C, OC);
}

void pulse_matmul_forward_residual_bf16(float *out, const float *inp, const float *weight, const float *bias,
                                        const float *res, int N, int C, int OC, const pulse_bf16_weight *pw) {
    if (N <= 0 || OC <= 0) return;
    const out_desc o = {out, OC, NULL, 0, bias, NULL, res, NULL};
    if (C > 0 && gemm_bf16_out(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, &o, pw)) return;
    pulse_matmul_forward(out, inp, weight, bias, N, C, OC);
    pulse_residual_forward(out, out, res, (size_t)N * OC);
}

void pulse_matmul_forward_gelu_bf16(float *h, float *g, const float *inp, const float *weight,
                                    const float *bias, int N, int C, int OC, const pulse_bf16_weight *pw) {
    if (N <= 0 || OC <= 0) return;
    float *gs[1] = {g};
    const out_desc o = {h ? h : g, OC, NULL, 0, bias, gs, NULL, NULL}; /* c == g: only GELU stored */
    if (C > 0 && gemm_bf16_out(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, &o, pw)) return;
    pulse_matmul_forward(h ? h : g, inp, weight, bias, N, C, OC);
    pulse_gelu_forward(g, h ? h : g, (size_t)N * OC);
}

void pulse_matmul_forward_split_bf16(float *const *outs, int nout, const float *inp, const float *weight,
                                     const float *bias, int N, int C, int OC, const pulse_bf16_weight *pw) {
    if (N <= 0 || OC <= 0 || nout < 1) return;
    const int seg = OC / nout;
    if (C > 0 && seg * nout == OC && seg % 48 == 0) {
        const out_desc o = {NULL, 0, outs, seg, bias, NULL, NULL, NULL};
        if (gemm_bf16_out(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, &o, pw)) return;
    }
    /* fallback: each output its own product (rows [i seg, (i + 1) seg) of weight) */
    for (int i = 0; i < nout; i++) {
        const int lo = (int)((long)OC * i / nout), hi = (int)((long)OC * (i + 1) / nout);
        pulse_matmul_forward_bf16(outs[i], inp, weight + (size_t)lo * C, bias ? bias + lo : NULL, N, C,
                                  hi - lo);
    }
}

void pulse_matmul_backward_gelu_bf16(float *dh, const float *dout, const float *weight, const float *h, int N,
                                     int C, int OC) {
    if (N <= 0 || C <= 0) return;
    const out_desc o = {dh, C, NULL, 0, NULL, NULL, NULL, h};
    if (OC > 0 && gemm_bf16_out(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, &o, NULL)) return;
    pk_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dh, C);
    const long n = (long)N * C;
#pragma omp parallel for simd schedule(static) if (n > PK_PAR_ELEMS)
    for (long i = 0; i < n; i++) {
        dh[i] *= pk_gelu_grad(h[i]);
    }
}

void pulse_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C > 0 && dinp) pulse_gemm_bf16(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (C > 0 && dweight) pulse_gemm_bf16(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) pulse_matmul_backward(NULL, NULL, dbias, dout, inp, weight, N, C, OC);
}

/* ---- inference FFN ---- */

void pulse_ffn_forward_bf16(float *out, float *hidden, const float *inp, const float *w1, const float *b1,
                            const float *w2, const float *b2, const float *res, int N, int C, int FF,
                            const pulse_bf16_weight *pw1, const pulse_bf16_weight *pw2) {
    if (N <= 0 || C <= 0 || FF <= 0) return;
#ifdef PK_HAVE_BF16_KERNEL
    if (C <= KC && FF % NR == 0 && b1 && b2 && pw1 && pw2 && pw1->OC == FF && pw1->C == C && pw2->OC == C &&
        pw2->C == FF && pulse_bf16_supported()) {
        int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
        const int NMB = (N + MC - 1) / MC;
        if (nth > NMB) nth = NMB;
        uint32_t *G = pk_scratch(PK_SCR_BF16_FFN, sizeof(uint32_t) * (size_t)MC * (FF / 2) * (size_t)nth);
        if (G) {
            ffn_bf16_avx512(N, C, FF, inp, pw1->bp, b1, pw2->bp, b2, res, out, G, nth);
            return;
        }
    }
#endif
    pulse_matmul_forward_gelu_bf16(NULL, hidden, inp, w1, b1, N, C, FF, pw1);
    if (res)
        pulse_matmul_forward_residual_bf16(out, hidden, w2, b2, res, N, FF, C, pw2);
    else
        pulse_matmul_forward_bf16(out, hidden, w2, b2, N, FF, C);
}

/* ---- attention ---- */

void pulse_attention_forward_bf16(float *out, float *att, const float *q, const float *k, const float *v,
                                  const uint8_t *key_mask, int B, int T, int C, int NH, int causal) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
#ifdef PK_HAVE_BF16_KERNEL
    if ((C / NH) % 2 == 0 && C % NH == 0 && pulse_bf16_supported()) {
        int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
        if (nth > B) nth = B;
        if ((double)B * T * T * C < PK_PAR_ATT) nth = 1;
        /* per thread, whole cache lines: the words of att_seq and a block of 8 score rows */
        const size_t words = (att_words(T, C) + 15) / 16 * 16, floats = (8 * (size_t)T + 15) / 16 * 16;
        uint32_t *w = pk_scratch(PK_SCR_BF16_ATT_W, words * sizeof(uint32_t) * (size_t)nth);
        float *sb = pk_scratch(PK_SCR_BF16_ATT_S, floats * sizeof(float) * (size_t)nth);
        if (w && sb) {
            att_bf16_avx512(out, att, q, k, v, key_mask, B, T, C, NH, causal, w, words, sb, floats, nth);
            return;
        }
    }
#endif
    if (att) {
        pulse_attention_forward(out, att, q, k, v, key_mask, B, T, C, NH, causal);
        return;
    }
    /* no probabilities wanted: one sequence at a time through a (NH, T, T) buffer (NaN out if none) */
    float *a1 = pk_scratch(PK_SCR_BF16_ATT_S, sizeof(float) * (size_t)NH * T * T);
    for (int b = 0; b < B; b++) {
        const size_t off = (size_t)b * T * C;
        if (a1)
            pulse_attention_forward(out + off, a1, q + off, k + off, v + off,
                                    key_mask ? key_mask + (size_t)b * T : NULL, 1, T, C, NH, causal);
        else
            for (size_t i = 0; i < (size_t)T * C; i++) out[off + i] = NAN;
    }
}

void pulse_attention_forward_bf16_ref(float *out, float *att, const float *q, const float *k, const float *v,
                                      const uint8_t *key_mask, int B, int T, int C, int NH, int causal) {
    const int hs = C / NH;
    const double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hs;
            float *A = att + ((size_t)b * NH + h) * T * T;
            for (int i = 0; i < T; i++) {
                float *arow = A + (size_t)i * T;
                const int jend = causal ? i + 1 : T;
                double maxv = -INFINITY;
                for (int j = 0; j < jend; j++) {
                    if (key_mask && !key_mask[(size_t)b * T + j]) continue;
                    double s = 0.0;
                    for (int d = 0; d < hs; d++)
                        s += (double)pulse_bf16_round(q[off + (size_t)i * C + d]) *
                             (double)pulse_bf16_round(k[off + (size_t)j * C + d]);
                    arow[j] = (float)(s * scale);
                    if (arow[j] > maxv) maxv = arow[j];
                }
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    const int vis = j < jend && (!key_mask || key_mask[(size_t)b * T + j]);
                    arow[j] = vis ? (float)exp(arow[j] - maxv) : 0.0f;
                    sum += arow[j];
                }
                for (int j = 0; j < T; j++) arow[j] = sum > 0.0 ? (float)(arow[j] / sum) : 0.0f;
                for (int d = 0; d < hs; d++) {
                    double s = 0.0;
                    for (int j = 0; j < T; j++)
                        s += (double)pulse_bf16_round(arow[j]) *
                             (double)pulse_bf16_round(v[off + (size_t)j * C + d]);
                    out[off + (size_t)i * C + d] = (float)s;
                }
            }
        }
}
