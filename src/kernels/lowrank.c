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

/* ---- down: T (n, r) = scale X (n, C; row stride ldx) W^T, W (r, C) ----
 * per output: 8 lanes l_k = fma(x[c + k], w[c + k], l_k) over c in steps of 8, their horizontal sum, then
 * the tail fma'd in order, times scale */
static float lr_dot_ref(const float *x, const float *w, int C) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int k = 0; k < 8; k++) l[k] = fmaf(x[c + k], w[c + k], l[k]);
    float s = lr_hsum8(l);
    for (; c < C; c++) s = fmaf(x[c], w[c], s);
    return s;
}

void pulse_lowrank_down_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                            float scale) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < r; j++)
            T[(size_t)i * r + j] = scale * lr_dot_ref(X + (size_t)i * ldx, W + (size_t)j * C, C);
}

/* ---- up: Y (n, C; row stride ldy) (+)= scale T (n, r) W, W (r, C) ----
 * per output: a = fma(t_j, w[j][c], a) over j in order, then y = fma(scale, a, y) (add) or scale a */
void pulse_lowrank_up_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                          int add) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            float a = 0;
            for (int j = 0; j < r; j++) a = fmaf(T[(size_t)i * r + j], W[(size_t)j * C + c], a);
            float *y = Y + (size_t)i * ldy + c;
            *y = add ? fmaf(scale, a, *y) : scale * a;
        }
}

/* ---- grad: G += scale T^T (r, n) X (n, C; row stride ldx); G is (r, C), or (C, r) with gt ----
 * per output: a = fma(t[i][j], x[i][c], a) over the rows in order, then g = fma(scale, a, g) */
void pulse_lowrank_grad_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                            float scale) {
    for (int j = 0; j < r; j++)
        for (int c = 0; c < C; c++) {
            float a = 0;
            for (int i = 0; i < n; i++) a = fmaf(T[(size_t)i * r + j], X[(size_t)i * ldx + c], a);
            float *g = gt ? G + (size_t)c * r + j : G + (size_t)j * C + c;
            *g = fmaf(scale, a, *g);
        }
}

#ifdef __AVX2__
#include <immintrin.h>

static inline float lr_hsum(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return lr_hsum8(l);
}

/* outputs j0..j0+JB-1 of one row: JB accumulators over the row, read once */
static inline __attribute__((always_inline)) void lr_down_rows(float *t, const float *x, const float *W,
                                                               int C, int j0, const int JB, float scale) {
    __m256 acc[8];
    for (int k = 0; k < JB; k++) acc[k] = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        for (int k = 0; k < JB; k++)
            acc[k] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(W + (size_t)(j0 + k) * C + c), acc[k]);
    }
    for (int k = 0; k < JB; k++) {
        float s = lr_hsum(acc[k]);
        const float *w = W + (size_t)(j0 + k) * C;
        for (int cc = c; cc < C; cc++) s = fmaf(x[cc], w[cc], s);
        t[j0 + k] = scale * s;
    }
}

void pulse_lowrank_down(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale) {
    if (n <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        pulse_lowrank_down_ref(T, X, ldx, W, n, C, r, scale);
        return;
    }
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * ldx;
        float *t = T + (size_t)i * r;
        int j = 0;
        for (; j + 8 <= r; j += 8) lr_down_rows(t, x, W, C, j, 8, scale);
        for (; j < r; j++) lr_down_rows(t, x, W, C, j, 1, scale);
    }
}

void pulse_lowrank_up(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                      int add) {
    if (n <= 0 || C <= 0) return;
    if (!pc_simd_v3) {
        pulse_lowrank_up_ref(Y, ldy, T, W, n, C, r, scale, add);
        return;
    }
    const __m256 sv = _mm256_set1_ps(scale);
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int i = 0; i < n; i++) {
        const float *t = T + (size_t)i * r;
        float *y = Y + (size_t)i * ldy;
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < r; j++) {
                const __m256 tj = _mm256_set1_ps(t[j]);
                const float *w = W + (size_t)j * C + c;
                a0 = _mm256_fmadd_ps(tj, _mm256_loadu_ps(w), a0);
                a1 = _mm256_fmadd_ps(tj, _mm256_loadu_ps(w + 8), a1);
                a2 = _mm256_fmadd_ps(tj, _mm256_loadu_ps(w + 16), a2);
                a3 = _mm256_fmadd_ps(tj, _mm256_loadu_ps(w + 24), a3);
            }
            if (add) {
                a0 = _mm256_fmadd_ps(sv, a0, _mm256_loadu_ps(y + c));
                a1 = _mm256_fmadd_ps(sv, a1, _mm256_loadu_ps(y + c + 8));
                a2 = _mm256_fmadd_ps(sv, a2, _mm256_loadu_ps(y + c + 16));
                a3 = _mm256_fmadd_ps(sv, a3, _mm256_loadu_ps(y + c + 24));
            } else {
                a0 = _mm256_mul_ps(sv, a0), a1 = _mm256_mul_ps(sv, a1);
                a2 = _mm256_mul_ps(sv, a2), a3 = _mm256_mul_ps(sv, a3);
            }
            _mm256_storeu_ps(y + c, a0), _mm256_storeu_ps(y + c + 8, a1);
            _mm256_storeu_ps(y + c + 16, a2), _mm256_storeu_ps(y + c + 24, a3);
        }
        for (; c + 8 <= C; c += 8) {
            __m256 a = _mm256_setzero_ps();
            for (int j = 0; j < r; j++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(t[j]), _mm256_loadu_ps(W + (size_t)j * C + c), a);
            a = add ? _mm256_fmadd_ps(sv, a, _mm256_loadu_ps(y + c)) : _mm256_mul_ps(sv, a);
            _mm256_storeu_ps(y + c, a);
        }
        for (; c < C; c++) {
            float a = 0;
            for (int j = 0; j < r; j++) a = fmaf(t[j], W[(size_t)j * C + c], a);
            y[c] = add ? fmaf(scale, a, y[c]) : scale * a;
        }
    }
}

/* columns c0..c0+7, outputs j0..j0+JB-1: JB accumulators down the rows */
static inline __attribute__((always_inline)) void lr_grad_block(float *G, int gt, const float *T,
                                                                const float *X, int ldx, int n, int C, int r,
                                                                int c0, int j0, const int JB, float scale) {
    __m256 acc[8];
    for (int k = 0; k < JB; k++) acc[k] = _mm256_setzero_ps();
    for (int i = 0; i < n; i++) {
        const __m256 xv = _mm256_loadu_ps(X + (size_t)i * ldx + c0);
        const float *t = T + (size_t)i * r + j0;
        for (int k = 0; k < JB; k++) acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(t[k]), xv, acc[k]);
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

void pulse_lowrank_grad(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                        float scale) {
    if (n <= 0 || C <= 0 || r <= 0) return;
    if (!pc_simd_v3) {
        pulse_lowrank_grad_ref(G, gt, T, X, ldx, n, C, r, scale);
        return;
    }
    const int nblk = C / 8;
#pragma omp parallel for schedule(static) LR_PAR((double)n *C *r)
    for (int b = 0; b <= nblk; b++) {
        if (b == nblk) { /* the last C % 8 columns, as the reference */
            for (int j = 0; j < r; j++)
                for (int c = 8 * nblk; c < C; c++) {
                    float a = 0;
                    for (int i = 0; i < n; i++) a = fmaf(T[(size_t)i * r + j], X[(size_t)i * ldx + c], a);
                    float *g = gt ? G + (size_t)c * r + j : G + (size_t)j * C + c;
                    *g = fmaf(scale, a, *g);
                }
            continue;
        }
        int j = 0;
        for (; j + 8 <= r; j += 8) lr_grad_block(G, gt, T, X, ldx, n, C, r, 8 * b, j, 8, scale);
        for (; j < r; j++) lr_grad_block(G, gt, T, X, ldx, n, C, r, 8 * b, j, 1, scale);
    }
}
#else
void pulse_lowrank_down(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale) {
    pulse_lowrank_down_ref(T, X, ldx, W, n, C, r, scale);
}
void pulse_lowrank_up(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                      int add) {
    pulse_lowrank_up_ref(Y, ldy, T, W, n, C, r, scale, add);
}
void pulse_lowrank_grad(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                        float scale) {
    pulse_lowrank_grad_ref(G, gt, T, X, ldx, n, C, r, scale);
}
#endif
