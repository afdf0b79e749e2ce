/* kernels/lowrank.c — owns the low-rank products of LoRA (rank r of 1 to a few dozen against a wide side C):
 * T = s X W^T (down), Y (+)= s T W (up) and G += s T^T X (the factor gradients), forward and backward of
 * y += s B A x being these three. BLAS sgemm runs such skinny shapes far below its speed on square ones
 * (one side of 8), so each has its own loop: AVX2 + FMA 8-float lanes, rows (down, up) or column blocks
 * (grad) over the OpenMP threads, and every output summed in one fixed order — the same bits at any thread
 * count. Each *_ref is the scalar reference of the same order (bit for bit: tests/test_kernels_lowrank.c). */
#include "pulse/kernels.h"

#include <math.h>
#include <omp.h>

#include "core/simd.h"
#include "kernels/internal.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* fmaf where the vector code has an fma, nothing else fused */
#endif

#define LR_PAR(work) if ((double)(work) > 200000.0 && !omp_in_parallel())

/* the horizontal order of the 8 lanes: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) */
static inline float lr_hsum8(const float *l) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* the mask value of element c of row i: keep or 0 (1 without a mask) */
static inline float lr_m(const pulse_lr_drop *d, int i, int c) {
    if (!d) return 1.0f;
    uint8_t *b = d->bits ? d->bits + (size_t)i * d->bits_ld + c / 8 : NULL;
    if (b && d->bits_mode == 2) return (*b >> (c & 7)) & 1 ? d->keep : 0.0f;
    const uint32_t *rs = d->rows + 3 * (size_t)i;
    const int k = pulse_drop_hash(rs[2] + (uint32_t)c, rs[0], rs[1]) >= d->thr;
    if (b && d->bits_mode == 1) *b = (uint8_t)(k ? *b | (1u << (c & 7)) : *b & ~(1u << (c & 7)));
    return k ? d->keep : 0.0f;
}

/* ---- down: T (n, r) = scale d(X) (n, C; row stride ldx) W^T, W (r, C) ----
 * per output: 8 lanes l_k = fma(x[c + k] m, w[c + k], l_k) over c in steps of 8, their horizontal sum, then
 * the tail fma'd in order, times scale (no mask: x itself) */
static float lr_dot_ref(const float *x, const float *w, int C, const pulse_lr_drop *d, int i) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int k = 0; k < 8; k++) l[k] = fmaf(d ? x[c + k] * lr_m(d, i, c + k) : x[c + k], w[c + k], l[k]);
    float s = lr_hsum8(l);
    for (; c < C; c++) s = fmaf(d ? x[c] * lr_m(d, i, c) : x[c], w[c], s);
    return s;
}

static void down_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale,
                     const pulse_lr_drop *d) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < r; j++)
            T[(size_t)i * r + j] = scale * lr_dot_ref(X + (size_t)i * ldx, W + (size_t)j * C, C, d, i);
}

void pulse_lowrank_down_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                            float scale) {
    down_ref(T, X, ldx, W, n, C, r, scale, NULL);
}

void pulse_lowrank_down_drop_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                                 float scale, const pulse_lr_drop *d) {
    down_ref(T, X, ldx, W, n, C, r, scale, d);
}

/* ---- up: Y (n, C; row stride ldy) (+)= scale T (n, r) W, W (r, C) ----
 * per output: a = fma(t_j, w[j][c], a) over j in order, then y = fma(scale, a, y) (add) or scale a; with a
 * mask (add only): y = y + (scale a) m */
static void up_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                   int add, const pulse_lr_drop *d) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            float a = 0;
            for (int j = 0; j < r; j++) a = fmaf(T[(size_t)i * r + j], W[(size_t)j * C + c], a);
            float *y = Y + (size_t)i * ldy + c;
            if (d) {
                const float v = scale * a;
                *y = *y + v * lr_m(d, i, c);
            } else
                *y = add ? fmaf(scale, a, *y) : scale * a;
        }
}

void pulse_lowrank_up_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                          int add) {
    up_ref(Y, ldy, T, W, n, C, r, scale, add, NULL);
}

void pulse_lowrank_up_drop_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r,
                               float scale, const pulse_lr_drop *d) {
    up_ref(Y, ldy, T, W, n, C, r, scale, 1, d);
}

/* ---- grad: G += scale T^T (r, n) d(X) (n, C; row stride ldx); G is (r, C), or (C, r) with gt ----
 * per output: a = fma(t[i][j], x[i][c] m, a) over the rows in order, then g = fma(scale, a, g) */
static void grad_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                     float scale, const pulse_lr_drop *d) {
    for (int j = 0; j < r; j++)
        for (int c = 0; c < C; c++) {
            float a = 0;
            for (int i = 0; i < n; i++) {
                const float x = X[(size_t)i * ldx + c];
                a = fmaf(T[(size_t)i * r + j], d ? x * lr_m(d, i, c) : x, a);
            }
            float *g = gt ? G + (size_t)c * r + j : G + (size_t)j * C + c;
            *g = fmaf(scale, a, *g);
        }
}

void pulse_lowrank_grad_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                            float scale) {
    grad_ref(G, gt, T, X, ldx, n, C, r, scale, NULL);
}

void pulse_lowrank_grad_drop_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C,
                                 int r, float scale, const pulse_lr_drop *d) {
    grad_ref(G, gt, T, X, ldx, n, C, r, scale, d);
}

#ifdef __AVX2__
#include <immintrin.h>

/* the accumulator loops fully unrolled: without it GCC -O2 keeps acc[] on the stack (a load, fma and store
 * per step, bound by store-to-load forwarding) */
#define LR_UNROLL _Pragma("GCC unroll 8")

static inline float lr_hsum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return lr_hsum8(l);
}

/* the masks of columns c .. c + 7 of a row (rs: its lo, hi, base): keep or 0 in each lane */
static inline __m256 lr_mask8(const uint32_t *rs, int c, __m256i thr, __m256 kv) {
    const __m256i j = _mm256_add_epi32(_mm256_set1_epi32((int)(rs[2] + (uint32_t)c + rs[0])),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i h = _mm256_xor_si256(_mm256_mullo_epi32(j, _mm256_set1_epi32((int)0x9e3779b1u)),
                                 _mm256_set1_epi32((int)rs[1]));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    const __m256i ge = _mm256_cmpeq_epi32(_mm256_max_epu32(h, thr), h); /* h >= thr, unsigned */
    return _mm256_and_ps(_mm256_castsi256_ps(ge), kv);
}

/* the masks of columns c .. c + 7 of row i per d's bits mode: drawn (and their byte written: mode 1), or read
 * from the byte (mode 2) */
static inline __m256 lr_maskv(const pulse_lr_drop *d, int i, int c, __m256i thr, __m256 kv) {
    if (d->bits && d->bits_mode == 2) {
        const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        const __m256i v = _mm256_and_si256(_mm256_set1_epi32(d->bits[(size_t)i * d->bits_ld + c / 8]), sel);
        return _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, sel)), kv);
    }
    const __m256 m = lr_mask8(d->rows + 3 * (size_t)i, c, thr, kv);
    if (d->bits && d->bits_mode == 1)
        d->bits[(size_t)i * d->bits_ld + c / 8] =
            (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_NEQ_OQ));
    return m;
}

/* outputs j0..j0+JB-1 of row i: JB accumulators over the row, read once (masked by d when given) */
static inline __attribute__((always_inline)) void lr_down_rows(float *t, const float *x, const float *W,
                                                               int C, int j0, const int JB, float scale,
                                                               const pulse_lr_drop *d, int i) {
    __m256 acc[8];
    LR_UNROLL for (int k = 0; k < JB; k++) acc[k] = _mm256_setzero_ps();
    const __m256i thr = _mm256_set1_epi32(d ? (int)d->thr : 0);
    const __m256 kv = _mm256_set1_ps(d ? d->keep : 1.0f);
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        __m256 xv = _mm256_loadu_ps(x + c);
        if (d) xv = _mm256_mul_ps(xv, lr_maskv(d, i, c, thr, kv));
        LR_UNROLL for (int k = 0; k < JB; k++) acc[k] =
            _mm256_fmadd_ps(xv, _mm256_loadu_ps(W + (size_t)(j0 + k) * C + c), acc[k]);
    }
    for (int k = 0; k < JB; k++) {
        float s = lr_hsum(acc[k]);
        const float *w = W + (size_t)(j0 + k) * C;
        for (int cc = c; cc < C; cc++) s = fmaf(d ? x[cc] * lr_m(d, i, cc) : x[cc], w[cc], s);
        t[j0 + k] = scale * s;
    }
}

static void down_simd(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale,
                      const pulse_lr_drop *d) {
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * ldx;
        float *t = T + (size_t)i * r;
        int j = 0;
        for (; j + 8 <= r; j += 8) lr_down_rows(t, x, W, C, j, 8, scale, d, i);
        for (; j < r; j++) lr_down_rows(t, x, W, C, j, 1, scale, d, i);
    }
}

void pulse_lowrank_down(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale) {
    if (n <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        down_ref(T, X, ldx, W, n, C, r, scale, NULL);
        return;
    }
    down_simd(T, X, ldx, W, n, C, r, scale, NULL);
}

void pulse_lowrank_down_drop(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                             float scale, const pulse_lr_drop *d) {
    if (n <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        down_ref(T, X, ldx, W, n, C, r, scale, d);
        return;
    }
    down_simd(T, X, ldx, W, n, C, r, scale, d);
}

/* y (C) of one row: with d (add only), y += (scale a) m */
static inline __attribute__((always_inline)) void lr_up_row(float *y, const float *t, const float *W, int C,
                                                            int r, float scale, int add,
                                                            const pulse_lr_drop *d, int i) {
    const __m256 sv = _mm256_set1_ps(scale);
    const __m256i thr = _mm256_set1_epi32(d ? (int)d->thr : 0);
    const __m256 kv = _mm256_set1_ps(d ? d->keep : 1.0f);
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int j = 0; j < r; j++) {
            const __m256 tj = _mm256_set1_ps(t[j]);
            const float *w = W + (size_t)j * C + c;
            for (int q = 0; q < 4; q++) a[q] = _mm256_fmadd_ps(tj, _mm256_loadu_ps(w + 8 * q), a[q]);
        }
        for (int q = 0; q < 4; q++) {
            float *yy = y + c + 8 * q;
            __m256 v;
            if (d)
                v = _mm256_add_ps(_mm256_loadu_ps(yy),
                                  _mm256_mul_ps(_mm256_mul_ps(sv, a[q]), lr_maskv(d, i, c + 8 * q, thr, kv)));
            else
                v = add ? _mm256_fmadd_ps(sv, a[q], _mm256_loadu_ps(yy)) : _mm256_mul_ps(sv, a[q]);
            _mm256_storeu_ps(yy, v);
        }
    }
    for (; c + 8 <= C; c += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int j = 0; j < r; j++)
            a = _mm256_fmadd_ps(_mm256_set1_ps(t[j]), _mm256_loadu_ps(W + (size_t)j * C + c), a);
        __m256 v;
        if (d)
            v = _mm256_add_ps(_mm256_loadu_ps(y + c),
                              _mm256_mul_ps(_mm256_mul_ps(sv, a), lr_maskv(d, i, c, thr, kv)));
        else
            v = add ? _mm256_fmadd_ps(sv, a, _mm256_loadu_ps(y + c)) : _mm256_mul_ps(sv, a);
        _mm256_storeu_ps(y + c, v);
    }
    for (; c < C; c++) {
        float a = 0;
        for (int j = 0; j < r; j++) a = fmaf(t[j], W[(size_t)j * C + c], a);
        if (d) {
            const float v = scale * a;
            y[c] = y[c] + v * lr_m(d, i, c);
        } else
            y[c] = add ? fmaf(scale, a, y[c]) : scale * a;
    }
}

static void up_simd(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                    int add, const pulse_lr_drop *d) {
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int i = 0; i < n; i++) lr_up_row(Y + (size_t)i * ldy, T + (size_t)i * r, W, C, r, scale, add, d, i);
}

void pulse_lowrank_up(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                      int add) {
    if (n <= 0 || C <= 0) return;
    if (!pc_simd_v3) {
        up_ref(Y, ldy, T, W, n, C, r, scale, add, NULL);
        return;
    }
    up_simd(Y, ldy, T, W, n, C, r, scale, add, NULL);
}

void pulse_lowrank_up_drop(float *Y, int ldy, const float *T, const float *W, int n, int C, int r,
                           float scale, const pulse_lr_drop *d) {
    if (n <= 0 || C <= 0) return;
    if (!pc_simd_v3) {
        up_ref(Y, ldy, T, W, n, C, r, scale, 1, d);
        return;
    }
    up_simd(Y, ldy, T, W, n, C, r, scale, 1, d);
}

/* columns c0..c0+7, outputs j0..j0+JB-1: JB accumulators down the rows */
static inline __attribute__((always_inline)) void lr_grad_block(float *G, int gt, const float *T,
                                                                const float *X, int ldx, int n, int C, int r,
                                                                int c0, int j0, const int JB, float scale,
                                                                const pulse_lr_drop *d) {
    __m256 acc[8];
    LR_UNROLL for (int k = 0; k < JB; k++) acc[k] = _mm256_setzero_ps();
    const __m256i thr = _mm256_set1_epi32(d ? (int)d->thr : 0);
    const __m256 kv = _mm256_set1_ps(d ? d->keep : 1.0f);
    for (int i = 0; i < n; i++) {
        __m256 xv = _mm256_loadu_ps(X + (size_t)i * ldx + c0);
        if (d) xv = _mm256_mul_ps(xv, lr_maskv(d, i, c0, thr, kv));
        const float *t = T + (size_t)i * r + j0;
        LR_UNROLL for (int k = 0; k < JB; k++) acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(t[k]), xv, acc[k]);
    }
    for (int k = 0; k < JB; k++) {
        if (!gt) {
            float *g = G + (size_t)(j0 + k) * C + c0;
            _mm256_storeu_ps(g, _mm256_fmadd_ps(_mm256_set1_ps(scale), acc[k], _mm256_loadu_ps(g)));
        } else {
            float a[8];
            _mm256_storeu_ps(a, acc[k]);
            for (int l = 0; l < 8; l++) {
                float *g = G + (size_t)(c0 + l) * r + j0 + k;
                *g = fmaf(scale, a[l], *g);
            }
        }
    }
}

static void grad_simd(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                      float scale, const pulse_lr_drop *d) {
    const int nblk = C / 8;
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int b = 0; b <= nblk; b++) {
        if (b == nblk) { /* the last C % 8 columns, as the reference */
            for (int j = 0; j < r; j++)
                for (int c = 8 * nblk; c < C; c++) {
                    float a = 0;
                    for (int i = 0; i < n; i++) {
                        const float x = X[(size_t)i * ldx + c];
                        a = fmaf(T[(size_t)i * r + j], d ? x * lr_m(d, i, c) : x, a);
                    }
                    float *g = gt ? G + (size_t)c * r + j : G + (size_t)j * C + c;
                    *g = fmaf(scale, a, *g);
                }
            continue;
        }
        int j = 0;
        for (; j + 8 <= r; j += 8) lr_grad_block(G, gt, T, X, ldx, n, C, r, 8 * b, j, 8, scale, d);
        for (; j < r; j++) lr_grad_block(G, gt, T, X, ldx, n, C, r, 8 * b, j, 1, scale, d);
    }
}

void pulse_lowrank_grad(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                        float scale) {
    if (n <= 0 || C <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        grad_ref(G, gt, T, X, ldx, n, C, r, scale, NULL);
        return;
    }
    grad_simd(G, gt, T, X, ldx, n, C, r, scale, NULL);
}

void pulse_lowrank_grad_drop(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                             float scale, const pulse_lr_drop *d) {
    if (n <= 0 || C <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        grad_ref(G, gt, T, X, ldx, n, C, r, scale, d);
        return;
    }
    grad_simd(G, gt, T, X, ldx, n, C, r, scale, d);
}
#else
void pulse_lowrank_down(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale) {
    down_ref(T, X, ldx, W, n, C, r, scale, NULL);
}
void pulse_lowrank_up(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                      int add) {
    up_ref(Y, ldy, T, W, n, C, r, scale, add, NULL);
}
void pulse_lowrank_grad(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                        float scale) {
    grad_ref(G, gt, T, X, ldx, n, C, r, scale, NULL);
}
void pulse_lowrank_down_drop(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                             float scale, const pulse_lr_drop *d) {
    down_ref(T, X, ldx, W, n, C, r, scale, d);
}
void pulse_lowrank_up_drop(float *Y, int ldy, const float *T, const float *W, int n, int C, int r,
                           float scale, const pulse_lr_drop *d) {
    up_ref(Y, ldy, T, W, n, C, r, scale, 1, d);
}
void pulse_lowrank_grad_drop(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                             float scale, const pulse_lr_drop *d) {
    grad_ref(G, gt, T, X, ldx, n, C, r, scale, d);
}
#endif
