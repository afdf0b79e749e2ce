/* kernels/activation.c — owns the elementwise kernels: GELU (erf and tanh forms, vectorised with the pk_ math
 * of kernels/internal.h), ReLU, residual add and inverted dropout, forward and backward side by side. */
#include "pulse/kernels.h"

#include <math.h>
#include <string.h>

#include "kernels/internal.h"

#define PK_GELU_TANH_K 0.79788456080286535588f /* sqrt(2/pi) */

/* ---- exact GELU: out (n) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) ---- */
void pulse_gelu_forward(float *out, const float *inp, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + pk_erff(x * PK_SQRT1_2));
    }
}

/* dinp (n) += dout * (Phi(x) + x phi(x)) */
void pulse_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) {
        dinp[i] += dout[i] * pk_gelu_grad(inp[i]);
    }
}

/* ---- tanh GELU: out (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ---- */
void pulse_gelu_tanh_forward(float *out, const float *inp, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = PK_GELU_TANH_K * (x + 0.044715f * x * x * x);
        out[i] = 0.5f * x * (1.0f + pk_tanhf(u));
    }
}

/* dinp (n) += dout * (0.5 (1 + tanh u) + 0.5 x sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)) */
void pulse_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = PK_GELU_TANH_K * (x + 0.044715f * x * x * x);
        float th = pk_tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * PK_GELU_TANH_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += dout[i] * g;
    }
}

/* ---- ReLU: out (n) = max(x, 0); dinp += dout where x > 0 ---- */
void pulse_relu_forward(float *out, const float *inp, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void pulse_relu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

/* ---- residual: out (n) = a + b; da += dout, db += dout (either may be NULL) ---- */
void pulse_residual_forward(float *out, const float *a, const float *b, size_t n) {
    long nn = (long)n;
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) out[i] = a[i] + b[i];
}

void pulse_residual_backward(float *da, float *db, const float *dout, size_t n) {
    long nn = (long)n;
    if (da) {
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
        for (long i = 0; i < nn; i++) da[i] += dout[i];
    }
    if (db) {
#pragma omp parallel for simd schedule(static) if (nn > PK_PAR_ELEMS)
        for (long i = 0; i < nn; i++) db[i] += dout[i];
    }
}

/* ---- inverted dropout: out (n) = inp * mask / (1 - p), mask (n) of 0/1 bytes ----
 * The rng is advanced by exactly one draw (a 64-bit key); element i keeps iff a counter-based hash of
 * (key, i) clears p. The mask therefore depends only on the rng state and i, never on the thread count.
 * p <= 0 copies (mask all 1); p >= 1 drops everything. mask may be NULL only when p <= 0. */
static inline uint64_t pk_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pulse_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, pulse_rng *rng) {
    long nn = (long)n;
    if (!(p > 0.0f)) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        if (mask) memset(mask, 1, n);
        return;
    }
    if (p >= 1.0f) {
        memset(out, 0, n * sizeof(float));
        if (mask) memset(mask, 0, n);
        return;
    }
    uint64_t key = pulse_rng_u64(rng);
    /* keep iff the top 32 bits of the hash are >= p * 2^32 */
    uint64_t thr = (uint64_t)((double)p * 4294967296.0);
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) {
        uint64_t h = pk_mix64(key + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
        uint8_t keep = (h >> 32) >= thr;
        if (mask) mask[i] = keep;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
}

/* out (n) = inp * mask / (1 - p) with a keep mask (n) of 0/1 bytes the caller drew (e.g. from a
 * counter-based hash of its own indices); p <= 0 copies, p >= 1 zeroes. out may alias inp. */
void pulse_dropout_apply(float *out, const uint8_t *mask, const float *inp, size_t n, float p) {
    long nn = (long)n;
    if (!(p > 0.0f)) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        return;
    }
    if (p >= 1.0f) {
        memset(out, 0, n * sizeof(float));
        return;
    }
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

/* dinp (n) += dout * mask / (1 - p) */
void pulse_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    long nn = (long)n;
    if (!dinp) return;
    if (!(p > 0.0f)) {
#pragma omp parallel for schedule(static) if (nn > PK_PAR_ELEMS)
        for (long i = 0; i < nn; i++) dinp[i] += mask && !mask[i] ? 0.0f : dout[i];
        return;
    }
    if (p >= 1.0f) return;
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (nn > PK_PAR_ELEMS)
    for (long i = 0; i < nn; i++) dinp[i] += mask[i] ? dout[i] * scale : 0.0f;
}
