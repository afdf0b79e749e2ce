/* kernels/optim.c — owns AdamW (PyTorch semantics: decoupled weight decay, bias correction), the squared
 * gradient norm (deterministic blocked reduction) and in-place scaling. */
#include "pulse/kernels.h"

#include <math.h>

#include "kernels/internal.h"

/* ---- AdamW on params, grads, m, v (n); t is the 1-based step. As torch.optim.AdamW:
 * p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) ---- */
void pulse_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                        float beta1, float beta2, float eps, float weight_decay, int t) {
    if (t < 1) t = 1;
    double bc1 = 1.0 - pow((double)beta1, t);
    double bc2 = 1.0 - pow((double)beta2, t);
    float step = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float decay = 1.0f - lr * weight_decay;
    long nn = (long)n;
#if defined(__clang__) /* clang keeps sqrtf a libm call (errno) and cannot vectorise it: plain loop */
#pragma omp parallel for schedule(static) if (nn > PK_PAR_ELEMS)
#else
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
#endif
    for (long i = 0; i < nn; i++) {
        float g = grads[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = params[i] * decay;
        params[i] = p - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

/* ---- sum of g^2 over n, in double, bit-identical for any thread count ---- */
double pulse_grad_norm_sq(const float *g, size_t n) {
    if (n == 0) return 0.0;
    double part[PK_RED_BLOCKS];
    size_t per = (n + PK_RED_BLOCKS - 1) / PK_RED_BLOCKS;
#pragma omp parallel for schedule(static) if (n > PK_PAR_ELEMS)
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) {
        double acc = 0.0;
        size_t i0 = (size_t)blk * per, i1 = i0 + per < n ? i0 + per : n;
#pragma omp simd reduction(+ : acc)
        for (size_t i = i0; i < i1; i++) acc += (double)g[i] * g[i];
        part[blk] = acc;
    }
    double total = 0.0;
    for (int blk = 0; blk < PK_RED_BLOCKS; blk++) total += part[blk];
    return total;
}

/* ---- x (n) *= s ---- */
void pulse_scale(float *x, size_t n, float s) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) x[i] *= s;
}
