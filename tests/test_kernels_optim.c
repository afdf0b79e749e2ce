/* tests/test_kernels_optim.c — AdamW against a hand-computed (double) PyTorch-AdamW reference over several
 * steps, and determinism: the same seed gives identical dropout masks, and reductions give bit-identical
 * sums, with 1 and 2 OpenMP threads. */
#include "test.h"
#include "kernels_util.h"

#include "pulse/kernels.h"

static void test_adamw(float wd) {
    const size_t n = 37;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float *p = ku_alloc(n), *g = ku_alloc(n), *m = ku_alloc(n), *v = ku_alloc(n);
    double rp[37], rm[37] = {0}, rv[37] = {0};
    ku_fill(p, n, -1, 1);
    for (size_t i = 0; i < n; i++) rp[i] = p[i];
    double err = 0;
    for (int t = 1; t <= 5; t++) {
        ku_fill(g, n, -2, 2);
        if (t == 3) g[0] = 0.0f; /* zero gradient still moves the parameter through m and decay */
        pulse_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, t);
        for (size_t i = 0; i < n; i++) {
            /* torch.optim.AdamW: p *= 1 - lr*wd; m, v EMA; p -= lr * mhat / (sqrt(vhat) + eps) */
            rp[i] *= 1.0 - (double)lr * wd;
            rm[i] = b1 * rm[i] + (1.0 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1.0 - b2) * (double)g[i] * g[i];
            double mh = rm[i] / (1.0 - pow(b1, t)), vh = rv[i] / (1.0 - pow(b2, t));
            rp[i] -= lr * mh / (sqrt(vh) + eps);
            err = fmax(err, fabs(p[i] - rp[i]));
            err = fmax(err, fabs(m[i] - rm[i]) + fabs(v[i] - rv[i]));
        }
    }
    CHECK_MSG(err < 2e-6, "adamw wd=%g: max err %.3g vs reference", wd, err);
    /* first step of Adam moves each parameter by about lr in the direction -sign(g) */
    float q[2] = {0.5f, -0.5f}, gq[2] = {3.0f, -1e-3f}, mq[2] = {0, 0}, vq[2] = {0, 0};
    pulse_adamw_update(q, gq, mq, vq, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
    CHECK_NEAR(q[0], 0.4f, 1e-5);
    CHECK_NEAR(q[1], -0.4f, 1e-4);
    free(p), free(g), free(m), free(v);
}

static void test_determinism(void) {
    const size_t n = 300007; /* large enough for the parallel path */
    float *x = ku_alloc(n), *o1 = ku_alloc(n), *o2 = ku_alloc(n);
    uint8_t *m1 = (uint8_t *)malloc(n), *m2 = (uint8_t *)malloc(n);
    ku_fill(x, n, -1, 1);
    pulse_rng r1, r2;
    pulse_set_num_threads(1);
    pulse_rng_seed(&r1, 2024);
    pulse_dropout_forward(o1, m1, x, n, 0.2f, &r1);
    pulse_set_num_threads(2);
    pulse_rng_seed(&r2, 2024);
    pulse_dropout_forward(o2, m2, x, n, 0.2f, &r2);
    CHECK_MSG(memcmp(m1, m2, n) == 0 && memcmp(o1, o2, n * sizeof(float)) == 0,
              "dropout: masks differ between 1 and 2 threads");
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0); /* the rng advanced identically */
    /* a different seed gives a different mask */
    pulse_rng_seed(&r2, 2025);
    pulse_dropout_forward(o2, m2, x, n, 0.2f, &r2);
    CHECK(memcmp(m1, m2, n) != 0);

    /* reductions: bit-identical for 1 and 2 threads */
    const int N = 3000, V = 101;
    float *lg = ku_alloc((size_t)N * V), *d1 = ku_alloc((size_t)N * V), *d2 = ku_alloc((size_t)N * V);
    int *tg = (int *)malloc(sizeof(int) * N);
    ku_fill(lg, (size_t)N * V, -3, 3);
    for (int i = 0; i < N; i++) tg[i] = (i % 17 == 0) ? -1 : (int)pulse_rng_below(&ku_rng, V);
    pulse_set_num_threads(1);
    double ce1 = pulse_crossentropy_forward_backward(d1, NULL, lg, tg, N, V, 1.0f / N);
    double gn1 = pulse_grad_norm_sq(x, n);
    double bce1 = pulse_bce_logits_forward_backward(o1, x, o1, n, 1.0f);
    pulse_set_num_threads(2);
    double ce2 = pulse_crossentropy_forward_backward(d2, NULL, lg, tg, N, V, 1.0f / N);
    double gn2 = pulse_grad_norm_sq(x, n);
    pulse_rng_seed(&r1, 2024);
    pulse_dropout_forward(o2, m2, x, n, 0.2f, &r1);
    double bce2 = pulse_bce_logits_forward_backward(o2, x, o2, n, 1.0f);
    CHECK(ce1 == ce2);
    CHECK(gn1 == gn2);
    CHECK(bce1 == bce2);
    CHECK(memcmp(d1, d2, sizeof(float) * N * V) == 0);
    free(x), free(o1), free(o2), free(m1), free(m2), free(lg), free(d1), free(d2), free(tg);
}

/* attention forward + backward: identical results with 1 and 2 threads (each (b, h) pair owns its slices) */
static void test_attention_threads(void) {
    const int B = 6, T = 37, C = 48, NH = 3;
    size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *q = ku_alloc(n), *k = ku_alloc(n), *v = ku_alloc(n), *dout = ku_alloc(n), *scr = ku_alloc(na);
    float *out[2], *att[2], *dq[2], *dk[2], *dv[2];
    uint8_t km[6 * 37];
    for (int i = 0; i < B * T; i++) km[i] = (i % 7) != 3;
    ku_fill(q, n, -1, 1), ku_fill(k, n, -1, 1), ku_fill(v, n, -1, 1), ku_fill(dout, n, -1, 1);
    for (int r = 0; r < 2; r++) {
        out[r] = ku_alloc(n), att[r] = ku_alloc(na), dq[r] = ku_alloc(n), dk[r] = ku_alloc(n),
        dv[r] = ku_alloc(n);
        pulse_set_num_threads(r + 1);
        pulse_attention_forward(out[r], att[r], q, k, v, km, B, T, C, NH, 1);
        pulse_attention_backward(dq[r], dk[r], dv[r], scr, dout, att[r], q, k, v, B, T, C, NH);
    }
    CHECK(memcmp(out[0], out[1], n * sizeof(float)) == 0);
    CHECK(memcmp(att[0], att[1], na * sizeof(float)) == 0);
    CHECK(memcmp(dq[0], dq[1], n * sizeof(float)) == 0);
    CHECK(memcmp(dk[0], dk[1], n * sizeof(float)) == 0);
    CHECK(memcmp(dv[0], dv[1], n * sizeof(float)) == 0);
    CHECK(pulse_grad_norm_sq(dq[0], n) > 0.0);
    for (int r = 0; r < 2; r++) free(out[r]), free(att[r]), free(dq[r]), free(dk[r]), free(dv[r]);
    free(q), free(k), free(v), free(dout), free(scr);
}

int main(void) {
    pulse_rng_seed(&ku_rng, 5);
    test_adamw(0.0f);
    test_adamw(0.1f);
    test_determinism();
    test_attention_threads();
    return test_summary();
}
