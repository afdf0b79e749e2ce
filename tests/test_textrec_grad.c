/* tests/test_textrec_grad.c — finite-difference check of the text-aware recommender's backward: the item
 * projection (W, b: item_i = E[i] + W t_i + b, through SASRec's item-offset hook, in both the input embedding
 * and the tied output logits), the Thought-Space InfoNCE term (P and the user state through SASRec's hidden-
 * state hook) and every SASRec parameter under the summed loss; with and without ID embeddings. */
#include <stdint.h>

#include "pulse/kernels.h"
#include "pulse/textrec.h"
#include "test.h"

enum { NI = 9, B = 4, T = 6, D = 5, C = 8 };

/* rows of (B, T): left-padded inputs and next-item targets */
static const int inputs[B * T] = {3, 1, 4, 1, 5, 9, 0, 0, 2, 6, 5, 3, 0, 0, 0, 0, 0, 7, 0, 0, 0, 8, 2, 4};
static const int targets[B * T] = {1, 4, 1, 5, 9, 2, 0, 0, 6, 5, 3, 5, 0, 0, 0, 0, 0, 8, 0, 0, 0, 2, 4, 6};
static const int users[B] = {0, 1, 2, 3};

static double loss_at(pulse_textrec *m) {
    double l = 0;
    pulse_textrec_forward_backward(m, B, users, inputs, targets, 0, &l);
    return l;
}

/* central differences over every entry of w (n), against the analytic gradient g */
static void fd_check(const char *what, pulse_textrec *m, float *w, const float *g, size_t n, size_t skip) {
    double dot = 0, na = 0, nf = 0, max_err = 0;
    int bad = 0;
    const float h = 1e-3f;
    for (size_t i = skip; i < n; i++) {
        float keep = w[i];
        w[i] = keep + h;
        double lp = loss_at(m);
        w[i] = keep - h;
        double lm = loss_at(m);
        w[i] = keep;
        double fd = (lp - lm) / (2.0 * h), err = fabs(fd - g[i]);
        if (err > max_err) max_err = err;
        if (err > 2e-3 + 2e-2 * fabs(fd)) {
            if (bad < 5)
                fprintf(stderr, "%s %zu: analytic %.6g finite-diff %.6g\n", what, i, (double)g[i], fd);
            bad++;
        }
        dot += fd * g[i];
        na += (double)g[i] * g[i];
        nf += fd * fd;
    }
    double cosv = dot / sqrt(na * nf + 1e-30);
    printf("  %s: %zu params  cos(analytic, fd) = %.6f  max abs err %.2e  outliers %d\n", what, n - skip,
           cosv, max_err, bad);
    CHECK(na > 0);
    CHECK(cosv > 0.9999);
    CHECK(bad <= (int)((n - skip) / 200));
}

static void check(pulse_textrec_arch arch, int use_id, float lambda) {
    printf("arch %s use_id %d lambda %.2f\n", pulse_textrec_arch_name(arch), use_id, (double)lambda);
    pulse_rng r;
    pulse_rng_seed(&r, 31);
    float Tv[(NI + 1) * D], R[B * D];
    for (int i = 0; i < (NI + 1) * D; i++) Tv[i] = pulse_rng_normal(&r) * 0.5f;
    for (int i = 0; i < B * D; i++) R[i] = pulse_rng_normal(&r);
    const uint8_t has_r[B] = {1, 1, 0, 1}; /* user 2 has no rationale: left out of the InfoNCE term */
    pulse_textrec_params p = pulse_textrec_default_params();
    p.arch = arch;
    p.use_id = use_id;
    p.lambda = lambda;
    p.tau = 0.5f;
    p.negatives = 2;
    p.sasrec.dim = C;
    p.sasrec.blocks = 1;
    p.sasrec.heads = 2;
    p.sasrec.maxlen = T;
    p.sasrec.dropout = 0.0f;
    p.sasrec.seed = 3;
    pulse_textrec *m = NULL;
    CHECK_OK(pulse_textrec_create(NI, Tv, D, arch == PULSE_TEXTREC_THOUGHT ? R : NULL, has_r, B, &p, &m));
    if (!m) return;
    /* non-trivial own parameters (b starts at zero) */
    float *own = pulse_textrec_own_params(m);
    size_t no = pulse_textrec_n_own_params(m);
    CHECK(no == (size_t)C * D + C + (arch == PULSE_TEXTREC_THOUGHT ? (size_t)D * C : 0));
    for (size_t i = 0; i < no; i++) own[i] += 0.1f * pulse_rng_normal(&r);
    pulse_sasrec *sr = pulse_textrec_sasrec(m);
    size_t ns = pulse_sasrec_n_params(sr);
    float *sw = pulse_sasrec_params_ptr(sr);
    for (size_t i = (size_t)(NI + 1) * C; i < ns; i++) sw[i] += 0.05f * pulse_rng_normal(&r);
    double l0 = loss_at(m);
    CHECK(l0 > 0 && isfinite(l0));
    float *go = malloc(no * sizeof(float)), *gs = malloc(ns * sizeof(float));
    memcpy(go, pulse_textrec_own_grads(m), no * sizeof(float));
    memcpy(gs, pulse_sasrec_grads_ptr(sr), ns * sizeof(float));
    /* the loss with the term differs from the loss without it */
    if (arch == PULSE_TEXTREC_THOUGHT && lambda > 0) {
        pulse_textrec_params p0 = p;
        p0.lambda = 0;
        pulse_textrec *m0 = NULL;
        CHECK_OK(pulse_textrec_create(NI, Tv, D, R, has_r, B, &p0, &m0));
        if (m0) {
            memcpy(pulse_textrec_own_params(m0), own, no * sizeof(float));
            memcpy(pulse_sasrec_params_ptr(pulse_textrec_sasrec(m0)), sw, ns * sizeof(float));
            double l1 = loss_at(m0);
            CHECK_MSG(l0 > l1 + 1e-4, "with lambda %.4f, without %.4f", l0, l1);
        }
        pulse_textrec_free(m0);
    }
    fd_check("own (W, b, P)", m, own, go, no, 0);
    if (use_id) /* the ID table, padding row skipped, and the rest of the stack */
        fd_check("sasrec", m, sw, gs, ns, (size_t)C);
    else { /* ID embeddings frozen at zero: no gradient, FD over the stack without the table */
        double s = 0;
        for (size_t i = 0; i < (size_t)(NI + 1) * C; i++) s += fabs(gs[i]) + fabs(sw[i]);
        CHECK(s == 0.0);
        fd_check("sasrec (no table)", m, sw, gs, ns, (size_t)(NI + 1) * C);
    }
    free(go);
    free(gs);
    pulse_textrec_free(m);
}

/* --bf16-head: the item projection's gradient (gW, gb from the catalogue's dX) in bf16 with fp32 sums, as the
 * head's products, is the fp32 one within bf16 rounding (equal where the CPU has no AVX512-BF16) */
static void check_bf16(void) {
    pulse_rng r;
    pulse_rng_seed(&r, 33);
    float Tv[(NI + 1) * D];
    for (int i = 0; i < (NI + 1) * D; i++) Tv[i] = pulse_rng_normal(&r) * 0.5f;
    double l[2];
    float *g[2] = {NULL, NULL};
    size_t no = 0;
    for (int k = 0; k < 2; k++) {
        pulse_textrec_params p = pulse_textrec_default_params();
        p.sasrec.dim = C, p.sasrec.blocks = 1, p.sasrec.heads = 2, p.sasrec.maxlen = T;
        p.sasrec.dropout = 0.0f, p.sasrec.seed = 3, p.sasrec.bf16_head = k;
        pulse_textrec *m = NULL;
        CHECK_OK(pulse_textrec_create(NI, Tv, D, NULL, NULL, B, &p, &m));
        if (!m) return;
        no = pulse_textrec_n_own_params(m);
        float *own = pulse_textrec_own_params(m);
        pulse_rng_seed(&r, 34);
        for (size_t i = 0; i < no; i++) own[i] += 0.1f * pulse_rng_normal(&r);
        l[k] = loss_at(m);
        g[k] = malloc(no * sizeof(float));
        if (g[k]) memcpy(g[k], pulse_textrec_own_grads(m), no * sizeof(float));
        pulse_textrec_free(m);
    }
    if (g[0] && g[1]) {
        double dot = 0, a = 0, b = 0;
        for (size_t i = 0; i < no; i++)
            dot += (double)g[0][i] * g[1][i], a += (double)g[0][i] * g[0][i], b += (double)g[1][i] * g[1][i];
        const double cosv = dot / sqrt(a * b + 1e-30);
        printf("bf16 head + projection: loss %.6f vs fp32 %.6f, own gradient cosine %.6f\n", l[1], l[0],
               cosv);
        CHECK(a > 0);
        CHECK(fabs(l[1] - l[0]) <= 1e-2 * fabs(l[0]));
        CHECK(cosv >= 0.999);
    }
    free(g[0]), free(g[1]);
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_blas_select(NULL, NULL);
    check(PULSE_TEXTREC_MOREC, 1, 0.0f);
    check(PULSE_TEXTREC_MOREC, 0, 0.0f);
    check(PULSE_TEXTREC_THOUGHT, 1, 0.7f);
    check_bf16();
    return test_summary();
}
