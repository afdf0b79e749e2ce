/* kernels/loss.c — owns row softmax, softmax cross-entropy (fused forward + backward, ignore index -1) and
 * binary cross-entropy with logits. Summed losses use a fixed blocked reduction, so they are bit-identical
 * for any number of threads. */
#include "pulse/kernels.h"

#include <math.h>
#include <string.h>

#include "kernels/internal.h"

/* ---- row softmax in place: x (N, V). A row whose entries are all -inf becomes all 0. ---- */
void pulse_softmax_rows(float *x, int N, int V) {
    if (V <= 0) return;
#pragma omp parallel for schedule(static) if ((long)N * V > PK_PAR_WORK)
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * V;
        float maxv = -INFINITY;
        PK_SIMD_MAX(maxv)
        for (int j = 0; j < V; j++) maxv = r[j] > maxv ? r[j] : maxv;
        if (maxv == -INFINITY) {
            memset(r, 0, (size_t)V * sizeof(float));
            continue;
        }
        const double sum = pk_exp_shift_sum(r, r, V, maxv);
        float inv = (float)(1.0 / sum);
#pragma omp simd
        for (int j = 0; j < V; j++) r[j] *= inv;
    }
}

/* ---- softmax cross-entropy: logits (N, V), targets (N) in [0, V) or ignored (-1; any target outside
 * [0, V) is treated as ignored). losses (N) (may be NULL) = -log softmax[target], 0 when ignored. dlogits
 * (N, V) (may be NULL, may alias logits) is SET to (softmax - onehot) * dloss_scale, 0 for ignored rows.
 * Returns the sum of the kept rows' losses. ---- */
double pulse_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
                                           const int *targets, int N, int V, float dloss_scale) {
    if (N <= 0 || V <= 0) return 0.0;
    double part[PK_RED_BLOCKS];
    int rows_per = (N + PK_RED_BLOCKS - 1) / PK_RED_BLOCKS;
#pragma omp parallel for schedule(static) if ((long)N * V > PK_PAR_WORK)
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) {
        double acc = 0.0;
        int n0 = blk * rows_per, n1 = n0 + rows_per < N ? n0 + rows_per : N;
        for (int n = n0; n < n1; n++) {
            const float *x = logits + (size_t)n * V;
            float *dx = dlogits ? dlogits + (size_t)n * V : NULL;
            int tg = targets[n];
            if (tg < 0 || tg >= V) {
                if (losses) losses[n] = 0.0f;
                if (dx) memset(dx, 0, (size_t)V * sizeof(float));
                continue;
            }
            float maxv = -INFINITY;
            PK_SIMD_MAX(maxv)
            for (int j = 0; j < V; j++) maxv = x[j] > maxv ? x[j] : maxv;
            const float xt = x[tg]; /* before dx (which may alias x) is written */
            double sum = 0.0;
            if (dx) { /* dx = exp(x - max) once, scaled below: one exp per logit (x[j] read before dx[j]) */
                sum = pk_exp_shift_sum(dx, x, V, maxv);
            } else {
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < V; j++) sum += pk_expf(x[j] - maxv);
            }
            /* sum >= 1: the max term contributes exp(0) */
            // cppcheck-suppress invalidFunctionArg
            double lse = (double)maxv + log(sum);
            double loss = lse - (double)xt;
            if (losses) losses[n] = (float)loss;
            acc += loss;
            if (dx) {
                float mul = (float)(1.0 / sum) * dloss_scale;
#pragma omp simd
                for (int j = 0; j < V; j++) dx[j] *= mul;
                dx[tg] -= dloss_scale;
            }
        }
        part[blk] = acc;
    }
    double total = 0.0;
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) total += part[blk];
    return total;
}

/* ---- binary cross-entropy with logits: x, y, dx (n). loss_i = max(x,0) - x y + log1p(exp(-|x|));
 * dx (may be NULL) is SET to (sigmoid(x) - y) * scale. Returns the summed loss. ---- */
double pulse_bce_logits_forward_backward(float *dx, const float *x, const float *y, size_t n, float scale) {
    if (n == 0) return 0.0;
    double part[PK_RED_BLOCKS];
    size_t per = (n + PK_RED_BLOCKS - 1) / PK_RED_BLOCKS;
#pragma omp parallel for schedule(static) if (n > PK_PAR_ELEMS)
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) {
        double acc = 0.0;
        size_t i0 = (size_t)blk * per, i1 = i0 + per < n ? i0 + per : n;
        for (size_t i = i0; i < i1; i++) {
            float xi = x[i], yi = y[i];
            float ax = fabsf(xi);
            float e = expf(-ax);
            acc += (double)(xi > 0.0f ? xi : 0.0f) - (double)xi * yi + log1p((double)e);
            if (dx) {
                float sig = xi >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
                dx[i] = (sig - yi) * scale;
            }
        }
        part[blk] = acc;
    }
    double total = 0.0;
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) total += part[blk];
    return total;
}
