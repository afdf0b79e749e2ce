/* textrec/cold.c — owns the cold-start split (users whose held-out item never occurs in any training prefix,
 * so no ID model was trained on it) and full-ranking evaluation over a chosen set of users with any scorer
 * (the same ranking rule, pulse_rank_full, and metrics as pulse_evaluate). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

pulse_status pulse_textrec_cold_users(const pulse_dataset *ds, pulse_split s, int **users, int *n) {
    *users = NULL;
    *n = 0;
    if (s != PULSE_SPLIT_VALID && s != PULSE_SPLIT_TEST)
        return pulse_set_error(PULSE_ERR_ARG, "textrec cold users: split must be valid or test");
    int nu = pulse_dataset_n_users(ds), NI = pulse_dataset_n_items(ds);
    uint8_t *seen = pulse_calloc((size_t)NI + 1, 1);
    int *u = pulse_malloc(sizeof(int) * (size_t)(nu + 1));
    if (!seen || !u) {
        free(seen);
        free(u);
        return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i < nu; i++) {
        int len, L = pulse_split_train_len(ds, i);
        const int *q = pulse_dataset_user_seq(ds, i, &len);
        for (int t = 0; t < L; t++)
            if (q[t] > 0 && q[t] <= NI) seen[q[t]] = 1;
    }
    int k = 0;
    for (int i = 0; i < nu; i++) {
        int hl, tg = pulse_split_target(ds, i, s, &hl);
        if (tg > 0 && tg <= NI && !seen[tg]) u[k++] = i;
    }
    free(seen);
    *users = u;
    *n = k;
    return PULSE_OK;
}

pulse_status pulse_textrec_evaluate_users(const pulse_dataset *ds, const pulse_eval_params *ep,
                                          const int *users, int n, pulse_score_fn fn, void *ctx,
                                          pulse_metrics *out) {
    memset(out, 0, sizeof *out);
    if (ep->protocol != PULSE_PROTOCOL_FULL)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: evaluation over chosen users is full ranking only");
    if (n <= 0) return PULSE_OK;
    const int NI = pulse_dataset_n_items(ds), B = 128;
    const size_t row = (size_t)NI + 1;
    float *scores = pulse_malloc(sizeof(float) * row * B);
    const int **hist = pulse_malloc(sizeof(int *) * B);
    int *hl = pulse_malloc(sizeof(int) * B), *ranks = pulse_malloc(sizeof(int) * B);
    pulse_status st = (!scores || !hist || !hl || !ranks) ? PULSE_ERR_NOMEM : PULSE_OK;
    for (int b0 = 0; b0 < n && !st; b0 += B) {
        int nb = n - b0 < B ? n - b0 : B;
        for (int b = 0; b < nb; b++) {
            int len;
            if (users[b0 + b] < 0 || users[b0 + b] >= pulse_dataset_n_users(ds)) {
                st = pulse_set_error(PULSE_ERR_RANGE, "textrec: user %d out of range", users[b0 + b]);
                break;
            }
            pulse_split_target(ds, users[b0 + b], ep->split, &hl[b]);
            hist[b] = pulse_dataset_user_seq(ds, users[b0 + b], &len);
        }
        if (st) break;
        for (size_t i = 0; i < row * (size_t)nb; i++) scores[i] = NAN;
        if ((st = fn(ctx, nb, users + b0, hist, hl, scores)) != PULSE_OK) break;
#pragma omp parallel for schedule(dynamic, 4)
        for (int b = 0; b < nb; b++) {
            int h, tg = pulse_split_target(ds, users[b0 + b], ep->split, &h);
            ranks[b] =
                tg > 0 ? pulse_rank_full(scores + row * (size_t)b, NI, hist[b], h, tg, ep->history) : NI;
        }
        for (int b = 0; b < nb; b++) {
            if (pulse_split_target_repeats(ds, users[b0 + b], ep->split)) out->n_repeat++;
            pulse_metrics_add_rank(out, ranks[b]);
        }
    }
    if (!st) pulse_metrics_finish(out);
    free(scores);
    free(hist);
    free(hl);
    free(ranks);
    return st;
}
