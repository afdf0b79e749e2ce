/* pulse/eval.h — the evaluation harness every recommender shares: metrics (HR@K, NDCG@K, MRR) and protocols
 * (full ranking over all items with the user's history masked; sampled 1 positive + N-1 unseen negatives). */
#ifndef PULSE_EVAL_H
#define PULSE_EVAL_H

#include <cjson/cJSON.h>

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

/* The sampled protocol for models that score only a candidate list (language-model recommenders): for each
 * of the n users, score its n_cands candidates cands[b * n_cands + j] into scores[b * n_cands + j]. The lists
 * are the same ones pulse_evaluate uses (pulse_eval_candidates). p->protocol must be SAMPLED. */
typedef pulse_status (*pulse_cand_score_fn)(void *ctx, int n, const int *users, const int *const *hist,
                                            const int *hist_len, const int *cands, int n_cands,
                                            float *scores);
pulse_status pulse_evaluate_candidates(const pulse_dataset *ds, const pulse_eval_params *p,
                                       pulse_cand_score_fn fn, void *ctx, pulse_metrics *out);

/* The sampled protocol's candidate list of `user` for target `positive`: p->n_candidates items (1 positive +
 * unseen negatives) from an RNG seeded by (p->seed, p->split, user), so every model and every run sees the
 * same lists, whatever the batch size or thread count. *pos_index gets the positive's position. */
pulse_status pulse_eval_candidates(const pulse_dataset *ds, const pulse_eval_params *p, int user,
                                   int positive, int *out, int *pos_index);

/* Ranking rules (documented tie rule: pessimistic). The 0-based rank of the target is the number of competing
 * items whose score is not strictly below the target's: ties count against the target, a NaN competitor
 * counts against it, and a NaN target gets the worst rank. Full ranking: competitors are items 1..n_items
 * except the target and except every item in hist (the user's history before the target). Sampled: the other
 * entries of the candidate list. */
int pulse_rank_full(const float *scores, int n_items, const int *hist, int hist_len, int target);
int pulse_rank_list(const float *scores, int n, int pos_index);

/* The popularity baseline: items scored by how often they occur in the training prefixes (all but the last
 * two items of each sequence). pulse_pop_score is a pulse_score_fn with ctx = the pulse_pop. */
typedef struct pulse_pop pulse_pop;
pulse_status pulse_pop_fit(const pulse_dataset *ds, pulse_pop **out);
void pulse_pop_free(pulse_pop *pop);
pulse_status pulse_pop_score(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                             float *scores);

/* Metrics as the JSON object every eval prints: {"HR@1":…,…,"MRR":…} with exactly those keys in the fixed
 * order (values rounded to 6 decimals). NULL on allocation failure. */
cJSON *pulse_metrics_to_json(const pulse_metrics *m);

/* Rank-based accumulation, usable by any protocol: rank is the 0-based rank of the positive. */
void pulse_metrics_add_rank(pulse_metrics *m, int rank);
void pulse_metrics_finish(pulse_metrics *m); /* divide sums by n_users */

#ifdef __cplusplus
}
#endif
#endif
