/* eval/eval.c — owns the evaluation harness: metric accumulation (HR@K, NDCG@K, MRR), the one rule of what a
 * protocol excludes (pulse_eval_excluded: history MASK or KEEP), the ranking rules (full ranking, sampled
 * candidate lists; pessimistic ties), the batched OpenMP-parallel pulse_evaluate / pulse_evaluate_candidates
 * drivers, deterministic candidate lists and the metrics JSON. On several MPI ranks (include/pulse/dist.h)
 * the drivers are collective: batch k of users goes to rank k mod N (the batches are the one-process ones,
 * so every user is scored among the same batch-mates), the per-user ranks are summed over the ranks (each
 * user's rank comes from one rank, the others add 0) and every rank adds the metrics up in user order, so
 * the numbers are those of one process, bit for bit. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "eval/internal.h"
#include "pulse/dist.h"
#include "pulse/eval.h"

pulse_eval_params pulse_eval_default_params(void) {
    pulse_eval_params p;
    p.protocol = PULSE_PROTOCOL_FULL;
    p.split = PULSE_SPLIT_TEST;
    p.history = PULSE_HISTORY_MASK;
    p.n_candidates = 20;
    p.seed = 42;
    p.max_users = 0;
    p.batch_users = 256;
    return p;
}

const char *pulse_history_name(pulse_history h) {
    return h == PULSE_HISTORY_KEEP ? "keep" : h == PULSE_HISTORY_MASK ? "mask" : "?";
}

void pulse_metrics_add_rank(pulse_metrics *m, int rank) {
    if (rank < 0) rank = 0;
    double g = 1.0 / log2((double)rank + 2.0);
    m->hr1 += rank < 1;
    m->hr5 += rank < 5;
    m->hr10 += rank < 10;
    m->hr20 += rank < 20;
    m->ndcg5 += rank < 5 ? g : 0;
    m->ndcg10 += rank < 10 ? g : 0;
    m->ndcg20 += rank < 20 ? g : 0;
    m->mrr += 1.0 / ((double)rank + 1.0);
    m->n_users++;
}

void pulse_metrics_finish(pulse_metrics *m) {
    if (m->n_users <= 0) return;
    double n = m->n_users;
    m->hr1 /= n;
    m->hr5 /= n;
    m->hr10 /= n;
    m->hr20 /= n;
    m->ndcg5 /= n;
    m->ndcg10 /= n;
    m->ndcg20 /= n;
    m->mrr /= n;
}

int pulse_metrics_json(const pulse_metrics *m, char *buf, size_t n) {
    const char *k[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
    double v[8] = {m->hr1, m->hr5, m->hr10, m->hr20, m->ndcg5, m->ndcg10, m->ndcg20, m->mrr};
    size_t o = 0;
    int need = 0;
    for (int i = 0; i < 8; i++) {
        int w = snprintf(buf ? buf + o : NULL, buf && o < n ? n - o : 0, "%s\"%s\":%.6f", i ? "," : "{", k[i],
                         isfinite(v[i]) ? v[i] : 0.0);
        need += w;
        o = (size_t)need < n ? (size_t)need : n;
    }
    int w = snprintf(buf ? buf + o : NULL, buf && o < n ? n - o : 0, "}");
    return need + w;
}

/* ---- what a protocol excludes ---- */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int pulse_eval_excluded(pulse_history mode, const int *hist, int hist_len, int n_items, int target, int *out,
                        int *target_excluded) {
    if (target_excluded) *target_excluded = 0;
    if (mode == PULSE_HISTORY_KEEP || !hist || hist_len <= 0) return 0;
    int n = 0;
    for (int i = 0; i < hist_len; i++)
        if (hist[i] >= 1 && hist[i] <= n_items) out[n++] = hist[i];
    qsort(out, (size_t)n, sizeof(int), cmp_int);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || out[m - 1] != out[i]) out[m++] = out[i];
    if (target_excluded) *target_excluded = bsearch(&target, out, (size_t)m, sizeof(int), cmp_int) != NULL;
    return m;
}

/* ---- ranking rules ---- */
/* counts competitors that beat or tie the target (or are NaN) */
static inline int beats(float s, float t) {
    return !(s < t);
}

/* rank against items 1..n_items minus the sorted distinct `ex` (which does not hold the target) */
static int rank_excluding(const float *scores, int n_items, const int *ex, int n_ex, int target) {
    float t = scores[target];
    if (isnan(t)) return n_items - 1;
    int rank = 0;
    for (int j = 1; j <= n_items; j++) rank += beats(scores[j], t);
    rank -= 1; /* the target itself (t is not NaN, so it counted) */
    for (int i = 0; i < n_ex; i++) rank -= beats(scores[ex[i]], t);
    return rank;
}

int pulse_rank_full(const float *scores, int n_items, const int *hist, int hist_len, int target,
                    pulse_history mode) {
    if (target < 1 || target > n_items) return n_items;
    int small[256], *ex = small, tex = 0;
    if (hist_len > 256 && mode != PULSE_HISTORY_KEEP) {
        ex = malloc(sizeof(int) * (size_t)hist_len);
        if (!ex) { /* no room for the sorted set: a quadratic distinct scan under the same rule */
            for (int i = 0; i < hist_len; i++) tex |= hist[i] == target;
            if (tex) return n_items - 1;
            float t = scores[target];
            if (isnan(t)) return n_items - 1;
            int rank = -1;
            for (int j = 1; j <= n_items; j++) rank += beats(scores[j], t);
            for (int i = 0; i < hist_len; i++) {
                int j = hist[i], dup = 0;
                if (j < 1 || j > n_items) continue;
                for (int q = 0; q < i && !dup; q++) dup = hist[q] == j;
                if (!dup) rank -= beats(scores[j], t);
            }
            return rank;
        }
    }
    int n_ex = pulse_eval_excluded(mode, hist, hist_len, n_items, target, ex, &tex);
    /* an excluded held-out item is out of the competition like every other history item: a miss */
    int rank = tex ? n_items - 1 : rank_excluding(scores, n_items, ex, n_ex, target);
    if (ex != small) free(ex);
    return rank;
}

int pulse_rank_list(const float *scores, int n, int pos_index) {
    if (pos_index < 0 || pos_index >= n) return n - 1; /* the positive was excluded: a miss */
    float t = scores[pos_index];
    if (isnan(t)) return n - 1;
    int rank = 0;
    for (int j = 0; j < n; j++)
        if (j != pos_index) rank += beats(scores[j], t);
    return rank;
}

/* ---- candidate lists ---- */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

pulse_status pulse_eval_candidates(const pulse_dataset *ds, const pulse_eval_params *p, int user,
                                   int positive, int *out, int *pos_index) {
    pulse_rng rng;
    pulse_rng_seed(&rng, mix64(p->seed ^ mix64((uint64_t)(unsigned)user * 4 + (uint64_t)p->split)));
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    if (!seq)
        return pulse_set_error(PULSE_ERR_RANGE, "candidates: user %d out of range [0, %d)", user,
                               pulse_dataset_n_users(ds));
    /* the history is the sequence before the held-out item (pulse_split_target's prefix); a positive that is
     * not the split's target has the whole sequence as history */
    int hl = 0;
    if (pulse_split_target(ds, user, p->split, &hl) != positive) hl = len;
    int small[256], *ex = small, tex = 0, n_items = pulse_dataset_n_items(ds);
    if (len > 256 && !(ex = malloc(sizeof(int) * (size_t)len)))
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    /* whether the positive itself is excluded: by the history alone */
    pulse_eval_excluded(p->history, seq, hl, n_items, positive, ex, &tex);
    /* negatives: the same rule over every item of the user but the held-out one (under MASK the items after
     * it are known interactions too, never negatives; S3-Rec's lists), so that valid and test lists agree */
    int n_ex = 0;
    if (p->history == PULSE_HISTORY_MASK) {
        for (int i = 0; i < len; i++)
            if (i != hl) ex[n_ex++] = seq[i];
        n_ex = pulse_eval_excluded(p->history, ex, n_ex, n_items, positive, ex, NULL);
    }
    pulse_status st =
        pulse_sample_candidates(ds, tex ? 0 : positive, ex, n_ex, p->n_candidates, &rng, out, pos_index);
    if (ex != small) free(ex);
    if (st) pulse_wrap_error(st, "candidates of user %d", user);
    return st;
}

/* ---- drivers ---- */
static pulse_status check_params(const pulse_dataset *ds, const pulse_eval_params *p) {
    if (!ds) return pulse_set_error(PULSE_ERR_ARG, "evaluate: no dataset");
    if (p->split != PULSE_SPLIT_VALID && p->split != PULSE_SPLIT_TEST)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected the valid or test split, found %d",
                               (int)p->split);
    if (p->protocol != PULSE_PROTOCOL_FULL && p->protocol != PULSE_PROTOCOL_SAMPLED)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: unknown protocol %d", (int)p->protocol);
    if (p->history != PULSE_HISTORY_MASK && p->history != PULSE_HISTORY_KEEP)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected history mask or keep, found %d",
                               (int)p->history);
    if (p->max_users < 0)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected max_users >= 0 (0 = all), found %d",
                               p->max_users);
    if (p->protocol == PULSE_PROTOCOL_SAMPLED &&
        (p->n_candidates < 2 || p->n_candidates > pulse_dataset_n_items(ds)))
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected 2 <= candidates <= %d items, found %d",
                               pulse_dataset_n_items(ds), p->n_candidates);
    return PULSE_OK;
}

/* users with a target for the split, in dataset order, at most max_users; *n_skipped counts the users passed
 * over for too short a sequence. No evaluable user is an error (metrics of nobody are no result). */
static pulse_status eval_users(const pulse_dataset *ds, const pulse_eval_params *p, int **out, int *n_out,
                               int *n_skipped) {
    int nu = pulse_dataset_n_users(ds), n = 0, sk = 0;
    int *u = malloc(sizeof(int) * (size_t)(nu ? nu : 1));
    *out = NULL;
    if (!u) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nu; i++) {
        if (p->max_users > 0 && n >= p->max_users) break;
        if (pulse_split_target(ds, i, p->split, NULL) > 0)
            u[n++] = i;
        else
            sk++;
    }
    *n_out = n;
    *n_skipped = sk;
    if (n == 0) {
        free(u);
        return pulse_set_error(
            PULSE_ERR_RANGE,
            "evaluate: no user of %s has a %s target (%d users; leave-one-out needs at least 3 "
            "items per user)",
            pulse_dataset_name(ds), p->split == PULSE_SPLIT_TEST ? "test" : "valid", nu);
    }
    *out = u;
    return PULSE_OK;
}

/* several ranks: batch bi is this rank's */
static int my_batch(int bi) {
    return bi % pulse_dist_size() == pulse_dist_rank();
}

/* several ranks: agree on the outcome, then every rank gets every user's rank (each came from one rank) */
pulse_status pulse_eval_gather_ranks(pulse_status st, int *ranks, int n) {
    if (pulse_dist_size() <= 1) return st;
    if ((st = pulse_dist_agree(st))) return st;
    int64_t *r = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!r) st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory gathering %d ranks", n);
    if ((st = pulse_dist_agree(st))) {
        free(r);
        return st;
    }
    for (int i = 0; i < n; i++) r[i] = ranks[i];
    st = pulse_dist_sum_i64(r, (size_t)n);
    for (int i = 0; i < n; i++) ranks[i] = (int)r[i];
    free(r);
    return st;
}

/* counts the evaluated users whose held-out item repeats an earlier item of theirs */
static int count_repeats(const pulse_dataset *ds, const pulse_eval_params *p, const int *users, int n) {
    int r = 0;
    for (int i = 0; i < n; i++) r += pulse_split_target_repeats(ds, users[i], p->split);
    return r;
}

pulse_status pulse_evaluate(const pulse_dataset *ds, const pulse_eval_params *pp, pulse_score_fn fn,
                            void *ctx, pulse_metrics *out) {
    memset(out, 0, sizeof *out);
    pulse_eval_params p = pp ? *pp : pulse_eval_default_params();
    pulse_status st = check_params(ds, &p);
    if (st) return st;
    if (!fn) return pulse_set_error(PULSE_ERR_ARG, "evaluate: no scoring function");
    int NI = pulse_dataset_n_items(ds), nev = 0, nskip = 0;
    size_t row = (size_t)NI + 1;
    int *users;
    st = eval_users(ds, &p, &users, &nev, &nskip);
    if (st) return st;
    /* batch size: as asked, but the score buffer stays under 512 MiB */
    int B = p.batch_users > 0 ? p.batch_users : 256;
    size_t maxb = ((size_t)512 << 20) / (row * sizeof(float));
    if (maxb < 1) maxb = 1;
    if ((size_t)B > maxb) B = (int)maxb;
    if (B > nev && nev > 0) B = nev;
    int K = p.n_candidates;
    float *scores = malloc(sizeof(float) * row * (size_t)(B > 0 ? B : 1));
    const int **hist = malloc(sizeof(int *) * (size_t)(B > 0 ? B : 1));
    int *hlen = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    int *ranks = calloc((size_t)(nev ? nev : 1), sizeof(int));
    int nth = omp_get_max_threads();
    int *cand_buf = malloc(sizeof(int) * (size_t)K * (size_t)nth);
    float *cs_buf = malloc(sizeof(float) * (size_t)K * (size_t)nth);
    if (!scores || !hist || !hlen || !ranks || !cand_buf || !cs_buf) /* no batch runs; ranks agree below */
        st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory for a batch of %d x %d scores", B, NI);
    pulse_progress pr;
    pulse_progress_begin(&pr, p.split == PULSE_SPLIT_TEST ? "eval test" : "eval valid", "user", (size_t)nev);
    for (int b0 = 0, bi = 0; b0 < nev && !st; b0 += B, bi++) {
        int nb = nev - b0 < B ? nev - b0 : B;
        if (!my_batch(bi)) continue;
        for (int b = 0; b < nb; b++) {
            int len;
            pulse_split_target(ds, users[b0 + b], p.split, &hlen[b]);
            hist[b] = pulse_dataset_user_seq(ds, users[b0 + b], &len);
        }
        /* unfilled scores read as NaN, which ranks against the model */
        for (size_t i = 0; i < row * (size_t)nb; i++) scores[i] = NAN;
        st = fn(ctx, nb, users + b0, hist, hlen, scores);
        if (st) {
            pulse_wrap_error(st, "evaluate: the model failed to score users %d..%d", users[b0],
                             users[b0 + nb - 1]);
            break;
        }
        pulse_error_box box = {0};
#pragma omp parallel for schedule(dynamic, 4)
        for (int b = 0; b < nb; b++) {
            int u = users[b0 + b], hl;
            int target = pulse_split_target(ds, u, p.split, &hl);
            const float *s = scores + row * (size_t)b;
            if (p.protocol == PULSE_PROTOCOL_FULL) {
                ranks[b0 + b] = pulse_rank_full(s, NI, hist[b], hl, target, p.history);
            } else {
                int tid = omp_get_thread_num();
                int *c = cand_buf + (size_t)K * (size_t)tid;
                float *cs = cs_buf + (size_t)K * (size_t)tid;
                int pos = 0;
                pulse_status cst = pulse_eval_candidates(ds, &p, u, target, c, &pos);
                if (cst) {
                    pulse_error_box_keep(&box, cst);
                    ranks[b0 + b] = K - 1;
                } else {
                    for (int j = 0; j < K; j++) cs[j] = s[c[j]];
                    ranks[b0 + b] = pulse_rank_list(cs, K, pos);
                }
            }
        }
        st = pulse_error_box_raise(&box);
        if (st) pulse_wrap_error(st, "evaluate");
        pulse_progress_update(&pr, (size_t)(b0 + nb), NULL);
    }
    st = pulse_eval_gather_ranks(st, ranks, nev);
    if (!st && ranks) {
        pulse_progress_end(&pr, (size_t)nev, NULL);
        for (int i = 0; i < nev; i++) pulse_metrics_add_rank(out, ranks[i]);
        pulse_metrics_finish(out);
        out->n_repeat = count_repeats(ds, &p, users, nev);
        out->n_skipped = nskip;
    }
    free(users);
    free(scores);
    free(hist);
    free(hlen);
    free(ranks);
    free(cand_buf);
    free(cs_buf);
    return st;
}

pulse_status pulse_evaluate_candidates(const pulse_dataset *ds, const pulse_eval_params *pp,
                                       pulse_cand_score_fn fn, void *ctx, pulse_metrics *out) {
    memset(out, 0, sizeof *out);
    pulse_eval_params p = pp ? *pp : pulse_eval_default_params();
    if (p.protocol != PULSE_PROTOCOL_SAMPLED)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate_candidates: expected the sampled protocol");
    pulse_status st = check_params(ds, &p);
    if (st) return st;
    if (!fn) return pulse_set_error(PULSE_ERR_ARG, "evaluate: no scoring function");
    int nev = 0, nskip = 0, K = p.n_candidates;
    int *users;
    st = eval_users(ds, &p, &users, &nev, &nskip);
    if (st) return st;
    int B = p.batch_users > 0 ? p.batch_users : 256;
    if (B > nev && nev > 0) B = nev;
    size_t bk = (size_t)K * (size_t)(B > 0 ? B : 1);
    int *cands = malloc(sizeof(int) * bk), *pos = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    float *scores = malloc(sizeof(float) * bk);
    const int **hist = malloc(sizeof(int *) * (size_t)(B > 0 ? B : 1));
    int *hlen = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    int *ranks = calloc((size_t)(nev ? nev : 1), sizeof(int));
    if (!cands || !pos || !scores || !hist || !hlen || !ranks) /* no batch runs; ranks agree below */
        st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory");
    pulse_progress pr;
    pulse_progress_begin(&pr, p.split == PULSE_SPLIT_TEST ? "eval test" : "eval valid", "user", (size_t)nev);
    for (int b0 = 0, bi = 0; b0 < nev && !st; b0 += B, bi++) {
        int nb = nev - b0 < B ? nev - b0 : B;
        if (!my_batch(bi)) continue;
        for (int b = 0; b < nb && !st; b++) {
            int len, u = users[b0 + b];
            int target = pulse_split_target(ds, u, p.split, &hlen[b]);
            hist[b] = pulse_dataset_user_seq(ds, u, &len);
            st = pulse_eval_candidates(ds, &p, u, target, cands + (size_t)K * b, &pos[b]);
        }
        if (st) break;
        for (size_t i = 0; i < (size_t)K * (size_t)nb; i++) scores[i] = NAN;
        st = fn(ctx, nb, users + b0, hist, hlen, cands, K, scores);
        if (st) {
            pulse_wrap_error(st, "evaluate: the model failed to score users %d..%d", users[b0],
                             users[b0 + nb - 1]);
            break;
        }
        for (int b = 0; b < nb; b++) ranks[b0 + b] = pulse_rank_list(scores + (size_t)K * b, K, pos[b]);
        pulse_progress_update(&pr, (size_t)(b0 + nb), NULL);
    }
    st = pulse_eval_gather_ranks(st, ranks, nev);
    if (!st && ranks) {
        pulse_progress_end(&pr, (size_t)nev, NULL);
        for (int i = 0; i < nev; i++) pulse_metrics_add_rank(out, ranks[i]);
        pulse_metrics_finish(out);
        out->n_repeat = count_repeats(ds, &p, users, nev);
        out->n_skipped = nskip;
    }
    free(users);
    free(cands);
    free(pos);
    free(scores);
    free(hist);
    free(hlen);
    free(ranks);
    return st;
}
