/* pulse/eval.h — the evaluation harness every recommender shares: metrics (HR@K, NDCG@K, MRR), protocols
 * (full ranking over all items; sampled 1 positive + N-1 negatives) and the one rule of what a protocol
 * excludes (pulse_eval_excluded: the whole history by default, a repeated held-out item included; or
 * nothing). */
#ifndef PULSE_EVAL_H
#define PULSE_EVAL_H

#include <stddef.h>

#include "pulse/core.h"
#include "pulse/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PULSE_PROTOCOL_FULL = 0, PULSE_PROTOCOL_SAMPLED = 1 } pulse_protocol;

/* What the user's history (the items before the held-out one) does in a protocol.
 *  MASK (default; RecBole's and S3-Rec's convention): every history item leaves the competition (full
 * ranking) and is never drawn as a negative (sampled). A held-out item that repeats an earlier item of the
 * user is a history item like any other: it is excluded too, and the user counts as a miss (worst rank). KEEP
 * (repeat-aware evaluation): nothing is excluded; every item, history included, competes, and negatives are
 * drawn from every item but the held-out one. No mode treats the held-out item differently from any other
 * history item. */
typedef enum { PULSE_HISTORY_MASK = 0, PULSE_HISTORY_KEEP = 1 } pulse_history;
const char *pulse_history_name(pulse_history h); /* "mask" | "keep" */

/* Metrics in the fixed order of the JSON keys: HR@1, HR@5, HR@10, HR@20, NDCG@5, NDCG@10, NDCG@20, MRR. */
typedef struct {
    double hr1, hr5, hr10, hr20, ndcg5, ndcg10, ndcg20, mrr;
    int n_users;   /* users evaluated */
    int n_repeat;  /* of them, users whose held-out item repeats an earlier item of theirs */
    int n_skipped; /* users without a target for the split (fewer than 3 items), not evaluated */
} pulse_metrics;

typedef struct {
    pulse_protocol protocol; /* default FULL */
    pulse_split split;       /* default TEST */
    pulse_history history;   /* default MASK */
    int n_candidates;        /* sampled protocol: list size incl. the positive; default 20 */
    uint64_t seed;           /* sampled protocol negatives; default 42 */
    int max_users;           /* 0 = all users */
    int batch_users;         /* users scored per callback call; default 256 */
} pulse_eval_params;
pulse_eval_params pulse_eval_default_params(void);

/* The model under evaluation scores users in batches: for each of the n users, given its history prefix
 * (hist[b], hist_len[b]), fill scores[b * (n_items + 1) + item] for items 1..n_items (index 0 is ignored).
 * Return PULSE_OK or an error status. The harness applies p->history (pulse_eval_excluded) and ranks.
 * Errors: PULSE_ERR_ARG/RANGE for bad params; a split with no evaluable user is an error (PULSE_ERR_DATA). */
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
 * negatives outside pulse_eval_excluded's set; under MASK that rule runs over all the user's items but the
 * held-out one, so a negative is an item the user never interacted with, as in S3-Rec's lists) from an RNG
 * seeded by (p->seed, p->split, user), so every model and every run sees the same lists, whatever the batch
 * size or thread count. *pos_index gets the positive's position; under PULSE_HISTORY_MASK a positive that
 * repeats a history item is itself excluded: the list then holds n_candidates negatives and *pos_index = -1
 * (the user is a miss). */
pulse_status pulse_eval_candidates(const pulse_dataset *ds, const pulse_eval_params *p, int user,
                                   int positive, int *out, int *pos_index);

/* The one rule of what a protocol excludes, used by the full ranking, the sampled lists and every candidate
 * set a later stage stores. For a user whose history before the target is hist[0..hist_len), writes the
 * excluded items, sorted and distinct, to out (room for hist_len ints) and returns their count: MASK -> every
 * distinct history item in 1..n_items, KEEP -> none. *target_excluded (may be NULL) gets whether target is
 * among them (MASK and a repeated held-out item). out may be hist itself (in place). */
int pulse_eval_excluded(pulse_history mode, const int *hist, int hist_len, int n_items, int target, int *out,
                        int *target_excluded);

/* Ranking rules (documented tie rule: pessimistic). The 0-based rank of the target is the number of competing
 * items whose score is not strictly below the target's: ties count against the target, a NaN competitor
 * counts against it, and a NaN target gets the worst rank. Full ranking: competitors are items 1..n_items
 * except the target and except pulse_eval_excluded(mode, hist, ...) (the user's history before the target
 * under MASK); an excluded target gets the worst rank, n_items - 1. Sampled: the other entries of the
 * candidate list; pos_index < 0 (the positive was excluded) gives the worst rank, n - 1. */
int pulse_rank_full(const float *scores, int n_items, const int *hist, int hist_len, int target,
                    pulse_history mode);
int pulse_rank_list(const float *scores, int n, int pos_index);

/* The popularity baseline: items scored by how often they occur in the training prefixes (all but the last
 * two items of each sequence). pulse_pop_score is a pulse_score_fn with ctx = the pulse_pop. */
typedef struct pulse_pop pulse_pop;
pulse_status pulse_pop_fit(const pulse_dataset *ds, pulse_pop **out);
void pulse_pop_free(pulse_pop *pop);
pulse_status pulse_pop_score(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                             float *scores);

/* ---- stored candidate sets (src/eval/candset.c) ----
 * One fixed candidate list per (dataset, split, user, N, seed, history mode), written as JSON lines so that
 * every method of a table (popularity, SASRec, the language-model recommenders) is scored on exactly the same
 * lists. A list is pulse_eval_candidates' list for the user's held-out item of the split. One line per user:
 *   {"dataset":"amazon-beauty","split":"test","seed":42,"history":"mask","user":12,"user_key":"13",
 *    "target":345,"target_pos":2,"items":[...]}
 * (target_pos -1: the held-out item repeats a history item and is excluded under mask: a miss). Other keys
 * are allowed and ignored (the test lines of `pulse sft build` are candidate files). */
typedef struct {
    int user;   /* dataset user index */
    int target; /* the held-out item */
    int pos;    /* index of target in items; -1: excluded (the user counts as a miss) */
    int *items; /* (n_candidates) */
} pulse_candlist;
typedef struct {
    char dataset[128];
    pulse_split split;
    pulse_history history;
    uint64_t seed;
    int n_candidates; /* every list has this length */
    int n;            /* lists */
    pulse_candlist *lists;
    int *storage; /* the items of all lists */
} pulse_candset;
/* The lists of users[0..n) (each must have a target for p->split; p->protocol is ignored). */
pulse_status pulse_candset_build(const pulse_dataset *ds, const pulse_eval_params *p, const int *users, int n,
                                 pulse_candset *out);
void pulse_candset_free(pulse_candset *cs);
/* One JSON line of list i (malloc'd, no newline). */
char *pulse_candset_line(const pulse_candset *cs, const pulse_dataset *ds, int i);
/* Write all lines, atomically. */
pulse_status pulse_candset_save(const pulse_candset *cs, const pulse_dataset *ds, const char *path);
/* Read a candidate file and check it against ds: the dataset name, every user in range with the same key,
 * the target the split's held-out item, items in range, one list length, target_pos consistent;
 * PULSE_ERR_PARSE / PULSE_ERR_RANGE naming path:line otherwise. */
pulse_status pulse_candset_load(const char *path, const pulse_dataset *ds, pulse_candset *out);
/* Metrics over a candidate set: with a full scorer (fn, every item scored, as pulse_evaluate's) or a list
 * scorer (cfn, as pulse_evaluate_candidates'); exactly one of them non-NULL. batch: users per call (<= 0:
 * 256). The histories are the split's prefixes. */
pulse_status pulse_evaluate_candset(const pulse_dataset *ds, const pulse_candset *cs, pulse_score_fn fn,
                                    pulse_cand_score_fn cfn, void *ctx, int batch, pulse_metrics *out);

/* Metrics as the JSON object every eval prints, written into buf (snprintf rules: returns the length it
 * needed): {"HR@1":…,…,"MRR":…} with exactly those keys in the fixed order, values with 6 decimals. */
int pulse_metrics_json(const pulse_metrics *m, char *buf, size_t n);

/* Rank-based accumulation, usable by any protocol: rank is the 0-based rank of the positive. */
void pulse_metrics_add_rank(pulse_metrics *m, int rank);
void pulse_metrics_finish(pulse_metrics *m); /* divide sums by n_users */

#ifdef __cplusplus
}
#endif
#endif
