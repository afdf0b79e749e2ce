/* kernels/norm.c — owns RMSNorm (the decoders: inference forward, training forward and backward), LayerNorm
 * over the last dimension and row L2 normalisation, forward and backward side by side. Row statistics are
 * reduced with `omp simd` inside a row, so results do not depend on the number of threads. */
#include "pulse/kernels.h"

#include <math.h>

#include "kernels/internal.h"

/* ---- RMSNorm as ggml_rms_norm (the decoders): f32 squares summed in f64, then a scale per row ---- */
/* RMSNorm over rows: out (n, C) = inp / sqrt(mean(inp^2) + eps) * w (C). out may alias inp. */
void pulse_rmsnorm_forward(float *out, const float *inp, const float *w, int n, int C, float eps) {
    for (int i = 0; i < n; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)(x[j] * x[j]); /* ggml: f32 squares, f64 sum */
        const float s = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int j = 0; j < C; j++) y[j] = x[j] * s * w[j];
    }
}

/* Training's row sums (forward and backward): f32 products summed in 8 f64 lanes (lane k takes j = k mod 8),
 * the lanes combined in a fixed order, then the tail in order: vectorised (ggml's one sequential f64 sum runs
 * at one add per latency), the same bits on every CPU and thread count. */
static double lanes8(const double l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static double tsumsq(const float *a, int C) { /* sum (double)(a_j a_j) */
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= C; j += 8)
#pragma omp simd
        for (int k = 0; k < 8; k++) l[k] += (double)(a[j + k] * a[j + k]);
    double s = lanes8(l);
    for (; j < C; j++) s += (double)(a[j] * a[j]);
    return s;
}

static double tdot(const float *a, const float *b, int C) { /* sum (double)a_j b_j */
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= C; j += 8)
#pragma omp simd
        for (int k = 0; k < 8; k++) l[k] += (double)a[j + k] * b[j + k];
    double s = lanes8(l);
    for (; j < C; j++) s += (double)a[j] * b[j];
    return s;
}

/* RMSNorm forward that also saves rstd (N) = 1 / sqrt(mean(inp^2) + eps) per row (may be NULL) for the
 * backward: pulse_rmsnorm_forward's formula with training's row sums (tsumsq), so within rounding of it, not
 * bit-equal. out may alias inp. */
void pulse_rmsnorm_forward_train(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                                 float eps) {
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        const float s = 1.0f / sqrtf((float)(tsumsq(x, C) / C) + eps);
#pragma omp simd
        for (int j = 0; j < C; j++) y[j] = x[j] * s * w[j];
        if (rstd) rstd[i] = s;
    }
}

/* RMSNorm backward. y_j = x_j s w_j with s = (mean(x^2) + eps)^-1/2:
 *   dx_j = s (w_j dy_j) - x_j s^3 / C * sum_k w_k dy_k x_k,   dw_j = sum_rows dy_j x_j s.
 * dinp (N, C) and dw (C) accumulate (either may be NULL); dout, inp (N, C); rstd (N) from the forward or
 * NULL (recomputed from inp and eps). dinp must not alias dout. */
void pulse_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, int N, int C, float eps) {
    if (N <= 0 || C <= 0) return;
    if (dinp) {
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
        for (int i = 0; i < N; i++) {
            const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
            float *dx = dinp + (size_t)i * C;
            float s;
            if (rstd)
                s = rstd[i];
            else
                s = 1.0f / sqrtf((float)(tsumsq(x, C) / C) + eps);
            float *wdy = pk_scratch(PK_SCR_NORM_ROW, sizeof(float) * (size_t)C);
            if (!wdy) continue; /* out of memory: no gradient for the row rather than a crash */
#pragma omp simd
            for (int j = 0; j < C; j++) wdy[j] = w[j] * dy[j];
            const float k = (float)(tdot(wdy, x, C) / C) * s * s * s;
#pragma omp simd
            for (int j = 0; j < C; j++) dx[j] += s * w[j] * dy[j] - k * x[j];
        }
    }
    if (dw) {
        /* each thread owns a block of channels and walks all rows in order (deterministic, no scratch) */
        const int nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK * 4)
        for (int blk = 0; blk < nblk; blk++) {
            const int c0 = blk * 64, len = C - c0 < 64 ? C - c0 : 64;
            float aw[64] = {0};
            for (int i = 0; i < N; i++) {
                const float *x = inp + (size_t)i * C + c0, *dy = dout + (size_t)i * C + c0;
                float s;
                if (rstd)
                    s = rstd[i];
                else
                    s = 1.0f / sqrtf((float)(tsumsq(inp + (size_t)i * C, C) / C) + eps);
#pragma omp simd
                for (int c = 0; c < len; c++) aw[c] += dy[c] * x[c] * s;
            }
            for (int c = 0; c < len; c++) dw[c0 + c] += aw[c];
        }
    }
}

/* ---- LayerNorm: out (N, C) = (inp - mean) * rstd * weight (C) + bias (C); mean, rstd (N) saved ----
 * weight/bias may be NULL (no affine part); mean/rstd may be NULL when no backward follows. */
void pulse_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int C, float eps) {
    if (C <= 0) return;
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float m = (float)(s / C);
        double v = 0.0;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += (double)(d * d);
        }
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        if (weight && bias) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + bias[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float y = (x[c] - m) * r;
                y = weight ? y * weight[c] : y;
                o[c] = bias ? y + bias[c] : y;
            }
        }
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

/* dinp (N, C), dweight (C), dbias (C) accumulate; dout, inp (N, C); mean, rstd (N) from forward */
void pulse_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (C <= 0 || N <= 0) return;
    if (dinp) {
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            const float m = mean[n], r = rstd[n];
            /* dnorm = weight * dout; dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) */
            float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
            for (int c = 0; c < C; c++) {
                float xn = (x[c] - m) * r;
                float dn = weight ? weight[c] * d[c] : d[c];
                s1 += dn;
                s2 += dn * xn;
            }
            s1 /= (float)C;
            s2 /= (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xn = (x[c] - m) * r;
                float dn = weight ? weight[c] * d[c] : d[c];
                dx[c] += (dn - s1 - xn * s2) * r;
            }
        }
    }
    if (dweight || dbias) {
        /* parameter gradients: each thread owns a block of channels and walks all rows in order
         * (deterministic, no scratch) */
        int nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK * 4)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * 64, len = C - c0 < 64 ? C - c0 : 64;
            float aw[64], ab[64];
            for (int c = 0; c < len; c++) aw[c] = ab[c] = 0.0f;
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + c0, *d = dout + (size_t)n * C + c0;
                const float m = mean[n], r = rstd[n];
#pragma omp simd
                for (int c = 0; c < len; c++) {
                    aw[c] += (x[c] - m) * r * d[c];
                    ab[c] += d[c];
                }
            }
            for (int c = 0; c < len; c++) {
                if (dweight) dweight[c0 + c] += aw[c];
                if (dbias) dbias[c0 + c] += ab[c];
            }
        }
    }
}

/* ---- row L2 normalisation: out (N, C) = inp / max(||inp||, eps); norms (N) = max(||inp||, eps), the
 * divisor used (may be NULL when no backward follows) ---- */
void pulse_l2norm_forward(float *out, float *norms, const float *inp, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += (double)(x[c] * x[c]);
        float nrm = (float)sqrt(s);
        float den = nrm > eps ? nrm : eps;
        float inv = 1.0f / den;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] * inv;
        if (norms) norms[n] = den;
    }
}

/* dinp (N, C) += d/dinp given dout, out (N, C) and norms (N) from forward. Where ||inp|| > eps:
 * dinp += (dout - out * <out, dout>) / norm; where the clamp was active (||out|| < 1): dinp += dout / eps. */
void pulse_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norms, int N,
                           int C) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_WORK)
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *o = out + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float inv = 1.0f / norms[n];
        float od = 0.0f, oo = 0.0f;
#pragma omp simd reduction(+ : od, oo)
        for (int c = 0; c < C; c++) {
            od += o[c] * d[c];
            oo += o[c] * o[c];
        }
        /* unclamped rows have ||out|| == 1 up to rounding; clamped ones have ||out|| = ||inp|| / eps <= 1 */
        if (oo < 1.0f - 1e-4f) od = 0.0f;
#pragma omp simd
        for (int c = 0; c < C; c++) dx[c] += (d[c] - o[c] * od) * inv;
    }
}
