/* tests/test_thought_loss.c — InfoNCE (Eq. 1): hand-checked forward, finite-difference gradients for both
 * towers, negative sampler; t-SNE separates clusters; the Figure-3 SVG is written. */
#include "test.h"

#include <unistd.h>

#include "pulse/thought.h"

static double loss_at(const float *b, const float *r, const int *neg, int N, int D, int K, float tau,
                      float *scr) {
    return pulse_infonce_forward_backward(NULL, NULL, b, r, neg, N, D, K, tau, scr, NULL);
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_rng rng;
    pulse_rng_seed(&rng, 7);

    /* sampler: K distinct, never i */
    int N = 6, D = 5, K = 3;
    int neg[6 * 3];
    pulse_infonce_sample_negatives(neg, N, K, &rng);
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            int v = neg[i * K + k];
            ok &= v != i && v >= 0 && v < N;
            for (int q = 0; q < k; q++) ok &= neg[i * K + q] != v;
        }
    CHECK(ok);

    /* forward on a hand case: D=2, N=2, K=1, tau=1. b0 = r0 = (1,0); b1 = r1 = (0,1): cos pos 1, neg 0 */
    float b2[] = {2, 0, 0, 3}, r2[] = {1, 0, 0, 5};
    int n2[] = {1, 0};
    float scr2[64];
    pulse_infonce_stats st;
    double l = pulse_infonce_forward_backward(NULL, NULL, b2, r2, n2, 2, 2, 1, 1.0f, scr2, &st);
    CHECK_NEAR(l, -log(exp(1.0) / (exp(1.0) + 1.0)), 1e-6);
    CHECK_NEAR(st.recall1, 1.0, 0);
    CHECK_NEAR(st.pos_cos, 1.0, 1e-6);
    CHECK_NEAR(st.neg_cos, 0.0, 1e-6);

    /* gradients vs central differences */
    float b[6 * 5], r[6 * 5], db[6 * 5] = {0}, dr[6 * 5] = {0};
    for (int i = 0; i < N * D; i++) b[i] = pulse_rng_normal(&rng), r[i] = pulse_rng_normal(&rng);
    float tau = 0.5f;
    float *scr = malloc(pulse_infonce_scratch_floats(N, D, K) * sizeof(float));
    pulse_infonce_forward_backward(db, dr, b, r, neg, N, D, K, tau, scr, NULL);
    double maxerr = 0;
    for (int t = 0; t < 2; t++) {
        float *x = t ? r : b, *g = t ? dr : db;
        for (int i = 0; i < N * D; i++) {
            float keep = x[i], h = 1e-3f;
            x[i] = keep + h;
            double lp = loss_at(b, r, neg, N, D, K, tau, scr);
            x[i] = keep - h;
            double lm = loss_at(b, r, neg, N, D, K, tau, scr);
            x[i] = keep;
            double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i]) / (fabs(fd) + fabs(g[i]) + 1e-3);
            if (err > maxerr) maxerr = err;
        }
    }
    CHECK_MSG(maxerr < 2e-2, "max relative gradient error %g", maxerr);
    free(scr);

    /* t-SNE: three well separated Gaussian clusters in 10-d stay separated in 2-d */
    int M = 90, DD = 10;
    float *X = malloc(sizeof(float) * M * DD), *Y = malloc(sizeof(float) * M * 2);
    for (int i = 0; i < M; i++)
        for (int d = 0; d < DD; d++) X[i * DD + d] = (d == i / 30 ? 10.0f : 0.0f) + pulse_rng_normal(&rng);
    pulse_tsne_params tp = pulse_tsne_default_params();
    tp.iterations = 400;
    double kl = -1;
    CHECK_OK(pulse_tsne(X, M, DD, &tp, Y, &kl));
    CHECK(kl >= 0 && kl < 2.0);
    /* every point's nearest 2-d neighbour lies in its own cluster (1-NN accuracy) */
    int nn_ok = 0;
    for (int i = 0; i < M; i++) {
        int best = -1;
        double bd = 1e300;
        for (int j = 0; j < M; j++) {
            if (j == i) continue;
            double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1], d = dx * dx + dy * dy;
            if (d < bd) bd = d, best = j;
        }
        nn_ok += best / 30 == i / 30;
    }
    CHECK_MSG(nn_ok >= M - 2, "1-NN accuracy %d/%d", nn_ok, M);
    float Y2[180];
    CHECK_OK(pulse_tsne(X, M, DD, &tp, Y2, NULL));
    CHECK(memcmp(Y, Y2, sizeof Y2) == 0); /* seeded: identical */

    /* the SVG: 30 anchors / positives / negatives */
    char path[] = "/tmp/pulse_plot_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_OK(pulse_thought_plot_svg(path, Y, Y2, 30, "before", "after", "caption & <test>"));
    char *svg = NULL;
    size_t len = 0;
    CHECK_OK(pulse_read_file(path, &svg, &len));
    int circles = 0;
    for (const char *p = svg; p && (p = strstr(p, "<circle")); p++) circles++;
    CHECK(circles == 2 * 30 + 1); /* two panels + the legend */
    CHECK(svg && strstr(svg, "caption &amp; &lt;test&gt;") != NULL);
    free(svg);
    unlink(path);
    free(X);
    free(Y);
    return test_summary();
}
