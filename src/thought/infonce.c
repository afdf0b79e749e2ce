/* thought/infonce.c — owns the Thought Space loss: InfoNCE over cosine similarities with in-batch negatives
 * (PULSE Eq. 1), forward and backward side by side, and the in-batch negative sampler. */
#include <math.h>
#include <string.h>

#include "pulse/kernels.h"
#include "pulse/thought.h"

size_t pulse_infonce_scratch_floats(int N, int D, int K) {
    return 4 * (size_t)N * (size_t)D + 2 * (size_t)N + (size_t)(K + 1);
}

void pulse_infonce_sample_negatives(int *neg, int N, int K, pulse_rng *rng) {
    for (int i = 0; i < N; i++) {
        int *row = neg + (size_t)i * K;
        for (int k = 0; k < K; k++) {
            int v, dup;
            do { /* uniform over {0..N-1} \ {i}, distinct within the row */
                v = (int)pulse_rng_below(rng, (uint32_t)(N - 1));
                if (v >= i) v++;
                dup = 0;
                for (int q = 0; q < k; q++) dup |= row[q] == v;
            } while (dup);
            row[k] = v;
        }
    }
}

/* b, r: (N, D); neg: (N, K).
 * scratch: bn (N,D) | rn (N,D) | dbn (N,D) | drn (N,D) | nb (N) | nr (N) | lg (K+1) */
double pulse_infonce_forward_backward(float *db, float *dr, const float *b, const float *r, const int *neg,
                                      int N, int D, int K, float tau, float *scratch,
                                      pulse_infonce_stats *stats) {
    size_t ND = (size_t)N * D;
    float *bn = scratch, *rn = bn + ND, *dbn = rn + ND, *drn = dbn + ND, *nb = drn + ND, *nr = nb + N;
    float *lg = nr + N;
    const float eps = 1e-12f;
    pulse_l2norm_forward(bn, nb, b, N, D, eps);
    pulse_l2norm_forward(rn, nr, r, N, D, eps);
    int want_grad = db || dr;
    if (want_grad) {
        memset(dbn, 0, ND * sizeof(float));
        memset(drn, 0, ND * sizeof(float));
    }
    double loss = 0, r1 = 0, mrr = 0, pos = 0, negs = 0;
    float inv_tau = 1.0f / tau, gscale = 1.0f / (float)N;
    for (int i = 0; i < N; i++) {
        const float *bi = bn + (size_t)i * D;
        for (int k = 0; k <= K; k++) {
            int j = k == 0 ? i : neg[(size_t)i * K + k - 1];
            const float *rj = rn + (size_t)j * D;
            double dot = 0;
            for (int c = 0; c < D; c++) dot += (double)bi[c] * rj[c];
            lg[k] = (float)dot * inv_tau;
            if (k == 0)
                pos += dot;
            else
                negs += dot;
        }
        float mx = lg[0];
        int rank = 0;
        for (int k = 1; k <= K; k++) {
            if (lg[k] > mx) mx = lg[k];
            if (lg[k] >= lg[0]) rank++; /* ties count against the positive */
        }
        r1 += rank == 0;
        mrr += 1.0 / (rank + 1);
        double sum = 0;
        for (int k = 0; k <= K; k++) sum += exp((double)(lg[k] - mx));
        loss += -((double)(lg[0] - mx) - log(fmax(sum, 1.0))); /* sum >= 1: the max term is exp(0) */
        if (!want_grad) continue;
        float *dbi = dbn + (size_t)i * D;
        for (int k = 0; k <= K; k++) {
            int j = k == 0 ? i : neg[(size_t)i * K + k - 1];
            float p = (float)(exp((double)(lg[k] - mx)) / sum);
            float g = (p - (k == 0 ? 1.0f : 0.0f)) * gscale * inv_tau; /* d(mean loss)/d(cos) */
            const float *rj = rn + (size_t)j * D;
            float *drj = drn + (size_t)j * D;
            for (int c = 0; c < D; c++) {
                dbi[c] += g * rj[c];
                drj[c] += g * bi[c];
            }
        }
    }
    if (db) pulse_l2norm_backward(db, dbn, bn, nb, N, D);
    if (dr) pulse_l2norm_backward(dr, drn, rn, nr, N, D);
    if (stats) {
        stats->n = N;
        stats->loss = loss / N;
        stats->recall1 = r1 / N;
        stats->mrr = mrr / N;
        stats->pos_cos = pos / N;
        stats->neg_cos = K > 0 ? negs / ((double)N * K) : 0;
    }
    return loss / N;
}
