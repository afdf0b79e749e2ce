/* pulse/eval.h — the evaluation harness every recommender shares: metrics (HR@K, NDCG@K, MRR) and protocols
 * (full ranking over all items with the user's history masked; sampled 1 positive + N-1 unseen negatives). */
#ifndef PULSE_EVAL_H
#define PULSE_EVAL_H

#include "pulse/core.h"
#include "pulse/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PULSE_PROTOCOL_FULL = 0, PULSE_PROTOCOL_SAMPLED = 1 } pulse_protocol;

/* Metrics in the fixed order of the JSON keys: HR@1, HR@5, HR@10, HR@20, NDCG@5, NDCG@10, NDCG@20, MRR. */
typedef struct {
    double hr1, hr5, hr10, hr20, ndcg5, ndcg10, ndcg20, mrr;
    int n_users; /* users evaluated */
} pulse_metrics;

typedef struct {
    pulse_protocol protocol; /* default FULL */
    pulse_split split;       /* default TEST */
    int n_candidates;        /* sampled protocol: list size incl. the positive; default 20 */
    uint64_t seed;           /* sampled protocol negatives; default 42 */
    int max_users;           /* 0 = all users */
    int batch_users;         /* users scored per callback call; default 256 */
} pulse_eval_params;
pulse_eval_params pulse_eval_default_params(void);

/* The model under evaluation scores users in batches: for each of the n users, given its history prefix
 * (hist[b], hist_len[b]), fill scores[b * (n_items + 1) + item] for items 1..n_items (index 0 is ignored).
 * Return PULSE_OK or an error status. The harness masks history items (full protocol) and ranks. */
typedef pulse_status (*pulse_score_fn)(void *ctx, int n, const int *users, const int *const *hist,
                                       const int *hist_len, float *scores);

pulse_status pulse_evaluate(const pulse_dataset *ds, const pulse_eval_params *p, pulse_score_fn fn, void *ctx,
                            pulse_metrics *out);

/* Rank-based accumulation, usable by any protocol: rank is the 0-based rank of the positive. */
void pulse_metrics_add_rank(pulse_metrics *m, int rank);
void pulse_metrics_finish(pulse_metrics *m); /* divide sums by n_users */

#ifdef __cplusplus
}
#endif
#endif
