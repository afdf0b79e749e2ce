/* tests/test_sasrec_grad.c — finite-difference check of the whole SASRec backward (embeddings, both blocks,
 * attention, FFN, LayerNorms, loss head) on a tiny model with left padding, for the CE and the BCE loss, with
 * dropout active (masks fixed by reseeding the model RNG before every forward). */
#include <stdint.h>

#include "pulse/sasrec.h"
#include "test.h"

enum { NI = 9, B = 3, T = 6 };

/* rows of (B, T): left-padded inputs and next-item targets; row 1 is short, row 2 has one input */
static const int inputs[B * T] = {3, 1, 4, 1, 5, 9, 0, 0, 2, 6, 5, 3, 0, 0, 0, 0, 0, 7};
static const int targets[B * T] = {1, 4, 1, 5, 9, 2, 0, 0, 6, 5, 3, 5, 0, 0, 0, 0, 0, 8};
static const int negs[B * T] = {2, 2, 3, 3, 4, 4, 0, 0, 1, 1, 8, 9, 0, 0, 0, 0, 0, 1};

static double loss_at(pulse_sasrec *m, pulse_sasrec_loss loss) {
    double l = 0;
    pulse_sasrec_set_seed(m, 777);
    pulse_sasrec_forward_backward(m, B, inputs, targets, loss == PULSE_SASREC_BCE ? negs : NULL, 1, &l);
    return l;
}

static void check_loss(pulse_sasrec_loss loss, float dropout) {
    pulse_sasrec_params p = pulse_sasrec_default_params();
    p.dim = 8;
    p.blocks = 2;
    p.heads = 2;
    p.maxlen = T;
    p.loss = loss;
    p.dropout = dropout;
    p.seed = 5;
    pulse_sasrec *m = NULL;
    CHECK_OK(pulse_sasrec_create(NI, &p, &m));
    if (!m) return;
    size_t n = pulse_sasrec_n_params(m);
    float *w = pulse_sasrec_params_ptr(m);
    /* make the LayerNorm affine parameters and biases non-trivial so their gradients are tested too */
    pulse_rng r;
    pulse_rng_seed(&r, 99);
    for (size_t i = 0; i < n; i++) w[i] += 0.05f * pulse_rng_normal(&r);
    for (int c = 0; c < 8; c++) w[c] = 0.0f; /* padding row stays zero */
    double l0 = loss_at(m, loss);
    CHECK(l0 > 0 && isfinite(l0));
    float *g = malloc(n * sizeof(float));
    memcpy(g, pulse_sasrec_grads_ptr(m), n * sizeof(float));
    /* padding row of the item table and unused position rows get no gradient */
    double pad = 0;
    for (int c = 0; c < 8; c++) pad += fabs(g[c]);
    CHECK(pad == 0.0);
    double dot = 0, nn_a = 0, nn_f = 0, max_err = 0;
    int bad = 0;
    const float h = 1e-3f;
    for (size_t i = 8; i < n; i++) { /* skip the padding row */
        float keep = w[i];
        w[i] = keep + h;
        double lp = loss_at(m, loss);
        w[i] = keep - h;
        double lm = loss_at(m, loss);
        w[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        double err = fabs(fd - g[i]);
        if (err > max_err) max_err = err;
        if (err > 2e-3 + 2e-2 * fabs(fd)) {
            if (bad < 5) fprintf(stderr, "param %zu: analytic %.6g finite-diff %.6g\n", i, (double)g[i], fd);
            bad++;
        }
        dot += fd * g[i];
        nn_a += (double)g[i] * g[i];
        nn_f += fd * fd;
    }
    double cosv = dot / sqrt(nn_a * nn_f + 1e-30);
    printf(
        "loss %s dropout %.1f: L=%.5f  %zu params  cos(analytic, fd)=%.6f  max abs err %.2e  outliers %d\n",
        loss == PULSE_SASREC_CE ? "ce" : "bce", (double)dropout, l0, n, cosv, max_err, bad);
    CHECK(cosv > 0.9999);
    CHECK(bad <= (int)(n / 500)); /* ReLU kinks may flip for a handful of coordinates */
    CHECK(nn_a > 0);
    free(g);
    pulse_sasrec_free(m);
}

/* bf16_head: the CE head's products in bf16 (fp32 sums) give the fp32 loss and gradient within bf16 rounding
 * (where the CPU has no AVX512-BF16 they are the fp32 ones) */
static void check_bf16_head(void) {
    double l[2];
    float *g[2] = {NULL, NULL};
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        pulse_sasrec_params p = pulse_sasrec_default_params();
        p.dim = 16, p.blocks = 2, p.heads = 2, p.maxlen = T, p.dropout = 0.0f, p.seed = 5, p.bf16_head = k;
        pulse_sasrec *m = NULL;
        CHECK_OK(pulse_sasrec_create(NI, &p, &m));
        if (!m) return;
        n = pulse_sasrec_n_params(m);
        l[k] = loss_at(m, PULSE_SASREC_CE);
        g[k] = malloc(n * sizeof(float));
        memcpy(g[k], pulse_sasrec_grads_ptr(m), n * sizeof(float));
        pulse_sasrec_free(m);
    }
    double dot = 0, a = 0, b = 0;
    for (size_t i = 0; i < n; i++)
        dot += (double)g[0][i] * g[1][i], a += (double)g[0][i] * g[0][i], b += (double)g[1][i] * g[1][i];
    const double cosv = dot / sqrt(a * b + 1e-30);
    printf("bf16 head: loss %.6f vs fp32 %.6f, gradient cosine %.6f\n", l[1], l[0], cosv);
    CHECK(fabs(l[1] - l[0]) <= 1e-2 * fabs(l[0]));
    CHECK(cosv >= 0.999);
    free(g[0]), free(g[1]);
}

int main(void) {
    check_loss(PULSE_SASREC_CE, 0.0f);
    check_loss(PULSE_SASREC_CE, 0.3f);
    check_loss(PULSE_SASREC_BCE, 0.0f);
    check_loss(PULSE_SASREC_BCE, 0.3f);
    check_bf16_head();
    return test_summary();
}
