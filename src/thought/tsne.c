/* thought/tsne.c — owns exact t-SNE (van der Maaten & Hinton 2008): perplexity-calibrated affinities by
 * binary search, early exaggeration, momentum + gains, seeded initialisation. O(N^2) memory and time: fine
 * for the few thousand points a Figure-3 plot holds. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/thought.h"

pulse_tsne_params pulse_tsne_default_params(void) {
    pulse_tsne_params p = {30.0f, 1000, 0.0f, 12.0f, 250, 42};
    return p;
}

/* Row i of conditional affinities P(j|i) whose entropy is log(perplexity); d2 is row i of squared distances.
 */
static void calibrate_row(double *prow, const double *d2, int N, int i, double target_h) {
    double beta = 1.0, lo = -INFINITY, hi = INFINITY;
    for (int it = 0; it < 100; it++) {
        double sum = 0, sdp = 0;
        for (int j = 0; j < N; j++) {
            if (j == i) {
                prow[j] = 0;
                continue;
            }
            double v = exp(-d2[j] * beta);
            prow[j] = v;
            sum += v;
            sdp += d2[j] * v;
        }
        if (sum <= 0) sum = 1e-300;
        double h = log(sum) + beta * sdp / sum;
        for (int j = 0; j < N; j++) prow[j] /= sum;
        double diff = h - target_h;
        if (fabs(diff) < 1e-5) break;
        if (diff > 0) { /* entropy too high: sharpen */
            lo = beta;
            beta = isinf(hi) ? beta * 2 : (beta + hi) / 2;
        } else {
            hi = beta;
            beta = isinf(lo) ? beta / 2 : (beta + lo) / 2;
        }
    }
}

pulse_status pulse_tsne(const float *X, int N, int D, const pulse_tsne_params *pp, float *Y, double *kl) {
    pulse_tsne_params p = pp ? *pp : pulse_tsne_default_params();
    if (N < 2 || D < 1) return pulse_set_error(PULSE_ERR_ARG, "t-SNE needs at least 2 points (got %d)", N);
    if (p.perplexity <= 0 || p.perplexity * 3 > (float)(N - 1))
        p.perplexity = (float)(N - 1) / 3.0f > 1.0f ? (float)(N - 1) / 3.0f : 1.0f;
    if (p.learning_rate <=
        0) { /* 'auto' (Belkina et al. 2019, as scikit-learn): N / exaggeration / 4, at least 50 */
        p.learning_rate = (float)N / (p.early_exaggeration > 0 ? p.early_exaggeration : 1.0f) / 4.0f;
        if (p.learning_rate < 50.0f) p.learning_rate = 50.0f;
    }
    size_t NN = (size_t)N * N;
    double *P = malloc(NN * sizeof(double)), *d2 = malloc(NN * sizeof(double));
    double *num = malloc(NN * sizeof(double));
    double *y = malloc((size_t)N * 2 * sizeof(double)), *g = calloc((size_t)N * 2, sizeof(double));
    double *upd = calloc((size_t)N * 2, sizeof(double)), *gains = malloc((size_t)N * 2 * sizeof(double));
    float *sq = malloc((size_t)N * sizeof(float)), *gram = malloc(NN * sizeof(float));
    if (!P || !d2 || !num || !y || !g || !upd || !gains || !sq || !gram) {
        free(P), free(d2), free(num), free(y), free(g), free(upd), free(gains), free(sq), free(gram);
        return pulse_set_error(PULSE_ERR_NOMEM, "t-SNE: out of memory for %d points", N);
    }
    /* squared distances via the Gram matrix */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, D, 1.0f, X, D, X, D, 0.0f, gram, N);
    for (int i = 0; i < N; i++) sq[i] = gram[(size_t)i * N + i];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double v = (double)sq[i] + sq[j] - 2.0 * gram[(size_t)i * N + j];
            d2[(size_t)i * N + j] = v > 0 ? v : 0;
        }
    double target_h = log((double)p.perplexity);
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < N; i++) calibrate_row(P + (size_t)i * N, d2 + (size_t)i * N, N, i, target_h);
    /* symmetrise: p_ij = (p_j|i + p_i|j) / 2N */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double v = (P[(size_t)i * N + j] + P[(size_t)j * N + i]) / (2.0 * N);
            if (v < 1e-12) v = 1e-12;
            P[(size_t)i * N + j] = P[(size_t)j * N + i] = v;
        }
    for (int i = 0; i < N; i++) P[(size_t)i * N + i] = 0;
    pulse_rng rng;
    pulse_rng_seed(&rng, p.seed);
    for (int i = 0; i < 2 * N; i++) {
        y[i] = 1e-4 * pulse_rng_normal(&rng);
        gains[i] = 1.0;
    }
    double last_kl = 0;
    for (int it = 0; it < p.iterations; it++) {
        double exag = it < p.exaggeration_iters ? p.early_exaggeration : 1.0;
        double mom = it < p.exaggeration_iters ? 0.5 : 0.8;
        double zsum = 0;
#pragma omp parallel for reduction(+ : zsum) schedule(static)
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) {
                if (i == j) {
                    num[(size_t)i * N + j] = 0;
                    continue;
                }
                double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
                double v = 1.0 / (1.0 + dx * dx + dy * dy);
                num[(size_t)i * N + j] = v;
                zsum += v;
            }
        }
        double klsum = 0;
#pragma omp parallel for reduction(+ : klsum) schedule(static)
        for (int i = 0; i < N; i++) {
            double gx = 0, gy = 0;
            for (int j = 0; j < N; j++) {
                if (i == j) continue;
                double q = num[(size_t)i * N + j] / zsum;
                if (q < 1e-12) q = 1e-12;
                double pij = P[(size_t)i * N + j];
                double m = (exag * pij - q) * num[(size_t)i * N + j];
                gx += m * (y[2 * i] - y[2 * j]);
                gy += m * (y[2 * i + 1] - y[2 * j + 1]);
                klsum += pij * log(pij / q);
            }
            g[2 * i] = 4 * gx;
            g[2 * i + 1] = 4 * gy;
        }
        last_kl = klsum;
        for (int k = 0; k < 2 * N; k++) {
            gains[k] = ((g[k] > 0) != (upd[k] > 0)) ? gains[k] + 0.2 : gains[k] * 0.8;
            if (gains[k] < 0.01) gains[k] = 0.01;
            upd[k] = mom * upd[k] - p.learning_rate * gains[k] * g[k];
            y[k] += upd[k];
        }
        double mx = 0, my = 0; /* re-centre */
        for (int i = 0; i < N; i++) mx += y[2 * i], my += y[2 * i + 1];
        mx /= N, my /= N;
        for (int i = 0; i < N; i++) y[2 * i] -= mx, y[2 * i + 1] -= my;
    }
    for (int k = 0; k < 2 * N; k++) Y[k] = (float)y[k];
    if (kl) *kl = last_kl;
    free(P), free(d2), free(num), free(y), free(g), free(upd), free(gains), free(sq), free(gram);
    return PULSE_OK;
}
