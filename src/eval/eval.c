/* eval/eval.c — owns the evaluation harness: metric accumulation (HR@K, NDCG@K, MRR), the ranking rules (full
 * ranking with history masked, sampled candidate lists; pessimistic ties), the batched OpenMP-parallel
 * pulse_evaluate / pulse_evaluate_candidates drivers, deterministic candidate lists and the metrics JSON. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/eval.h"

pulse_eval_params pulse_eval_default_params(void) {
    pulse_eval_params p;
    p.protocol = PULSE_PROTOCOL_FULL;
    p.split = PULSE_SPLIT_TEST;
    p.n_candidates = 20;
    p.seed = 42;
    p.max_users = 0;
    p.batch_users = 256;
    return p;
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

static double r6(double x) {
    return round(x * 1e6) / 1e6;
}

cJSON *pulse_metrics_to_json(const pulse_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const char *k[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
    double v[8] = {m->hr1, m->hr5, m->hr10, m->hr20, m->ndcg5, m->ndcg10, m->ndcg20, m->mrr};
    for (int i = 0; i < 8; i++)
        if (!cJSON_AddNumberToObject(o, k[i], r6(v[i]))) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

/* ---- ranking rules ---- */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* counts competitors that beat or tie the target (or are NaN) */
static inline int beats(float s, float t) {
    return !(s < t);
}

int pulse_rank_full(const float *scores, int n_items, const int *hist, int hist_len, int target) {
    if (target < 1 || target > n_items) return n_items;
    float t = scores[target];
    if (isnan(t)) return n_items - 1;
    int rank = 0;
    for (int j = 1; j <= n_items; j++) rank += beats(scores[j], t);
    rank -= 1; /* the target itself (t is not NaN, so it counted) */
    /* history items are not competitors: subtract the distinct ones that counted */
    int small[256], *h = small;
    if (hist_len > 256) {
        h = malloc(sizeof(int) * (size_t)hist_len);
        if (!h) { /* fall back to a quadratic distinct scan */
            for (int i = 0; i < hist_len; i++) {
                int j = hist[i], dup = 0;
                if (j == target || j < 1 || j > n_items) continue;
                for (int q = 0; q < i && !dup; q++) dup = hist[q] == j;
                if (!dup) rank -= beats(scores[j], t);
            }
            return rank;
        }
    }
    if (hist_len > 0) memcpy(h, hist, sizeof(int) * (size_t)hist_len);
    qsort(h, (size_t)(hist_len > 0 ? hist_len : 0), sizeof(int), cmp_int);
    for (int i = 0; i < hist_len; i++) {
        int j = h[i];
        if ((i > 0 && h[i - 1] == j) || j == target || j < 1 || j > n_items) continue;
        rank -= beats(scores[j], t);
    }
    if (h != small) free(h);
    return rank;
}

int pulse_rank_list(const float *scores, int n, int pos_index) {
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
    return pulse_sample_candidates(ds, user, positive, p->n_candidates, &rng, out, pos_index);
}

/* ---- drivers ---- */
static pulse_status check_params(const pulse_dataset *ds, const pulse_eval_params *p) {
    if (!ds) return pulse_set_error(PULSE_ERR_ARG, "evaluate: no dataset");
    if (p->split != PULSE_SPLIT_VALID && p->split != PULSE_SPLIT_TEST)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected the valid or test split, found %d",
                               (int)p->split);
    if (p->protocol != PULSE_PROTOCOL_FULL && p->protocol != PULSE_PROTOCOL_SAMPLED)
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: unknown protocol %d", (int)p->protocol);
    if (p->protocol == PULSE_PROTOCOL_SAMPLED &&
        (p->n_candidates < 2 || p->n_candidates > pulse_dataset_n_items(ds)))
        return pulse_set_error(PULSE_ERR_ARG, "evaluate: expected 2 <= candidates <= %d items, found %d",
                               pulse_dataset_n_items(ds), p->n_candidates);
    return PULSE_OK;
}

/* users with a target for the split, in dataset order, at most max_users */
static int *eval_users(const pulse_dataset *ds, const pulse_eval_params *p, int *n_out) {
    int nu = pulse_dataset_n_users(ds), n = 0;
    int *u = malloc(sizeof(int) * (size_t)(nu ? nu : 1));
    if (!u) {
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < nu; i++) {
        if (p->max_users > 0 && n >= p->max_users) break;
        if (pulse_split_target(ds, i, p->split, NULL) > 0) u[n++] = i;
    }
    *n_out = n;
    return u;
}

pulse_status pulse_evaluate(const pulse_dataset *ds, const pulse_eval_params *pp, pulse_score_fn fn,
                            void *ctx, pulse_metrics *out) {
    memset(out, 0, sizeof *out);
    pulse_eval_params p = pp ? *pp : pulse_eval_default_params();
    pulse_status st = check_params(ds, &p);
    if (st) return st;
    if (!fn) return pulse_set_error(PULSE_ERR_ARG, "evaluate: no scoring function");
    int NI = pulse_dataset_n_items(ds), nev = 0;
    size_t row = (size_t)NI + 1;
    int *users = eval_users(ds, &p, &nev);
    if (!users) return PULSE_ERR_NOMEM;
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
    int *ranks = malloc(sizeof(int) * (size_t)(nev ? nev : 1));
    int nth = omp_get_max_threads();
    int *cand_buf = malloc(sizeof(int) * (size_t)K * (size_t)nth);
    float *cs_buf = malloc(sizeof(float) * (size_t)K * (size_t)nth);
    if (!scores || !hist || !hlen || !ranks || !cand_buf || !cs_buf) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory for a batch of %d x %d scores", B, NI);
        goto done;
    }
    pulse_progress pr;
    pulse_progress_begin(&pr, p.split == PULSE_SPLIT_TEST ? "eval test" : "eval valid", "user", (size_t)nev);
    for (int b0 = 0; b0 < nev && !st; b0 += B) {
        int nb = nev - b0 < B ? nev - b0 : B;
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
        pulse_status pst = PULSE_OK;
#pragma omp parallel for schedule(dynamic, 4)
        for (int b = 0; b < nb; b++) {
            int u = users[b0 + b], hl;
            int target = pulse_split_target(ds, u, p.split, &hl);
            const float *s = scores + row * (size_t)b;
            if (p.protocol == PULSE_PROTOCOL_FULL) {
                ranks[b0 + b] = pulse_rank_full(s, NI, hist[b], hl, target);
            } else {
                int tid = omp_get_thread_num();
                int *c = cand_buf + (size_t)K * (size_t)tid;
                float *cs = cs_buf + (size_t)K * (size_t)tid;
                int pos = 0;
                pulse_status cst = pulse_eval_candidates(ds, &p, u, target, c, &pos);
                if (cst) {
#pragma omp critical
                    pst = cst;
                    ranks[b0 + b] = K - 1;
                } else {
                    for (int j = 0; j < K; j++) cs[j] = s[c[j]];
                    ranks[b0 + b] = pulse_rank_list(cs, K, pos);
                }
            }
        }
        if (pst) st = pst;
        pulse_progress_update(&pr, (size_t)(b0 + nb), NULL);
    }
    if (!st) {
        pulse_progress_end(&pr, (size_t)nev, NULL);
        for (int i = 0; i < nev; i++) pulse_metrics_add_rank(out, ranks[i]);
        pulse_metrics_finish(out);
    }
done:
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
    int nev = 0, K = p.n_candidates;
    int *users = eval_users(ds, &p, &nev);
    if (!users) return PULSE_ERR_NOMEM;
    int B = p.batch_users > 0 ? p.batch_users : 256;
    if (B > nev && nev > 0) B = nev;
    size_t bk = (size_t)K * (size_t)(B > 0 ? B : 1);
    int *cands = malloc(sizeof(int) * bk), *pos = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    float *scores = malloc(sizeof(float) * bk);
    const int **hist = malloc(sizeof(int *) * (size_t)(B > 0 ? B : 1));
    int *hlen = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    int *ranks = malloc(sizeof(int) * (size_t)(nev ? nev : 1));
    if (!cands || !pos || !scores || !hist || !hlen || !ranks) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory");
        goto done;
    }
    pulse_progress pr;
    pulse_progress_begin(&pr, p.split == PULSE_SPLIT_TEST ? "eval test" : "eval valid", "user", (size_t)nev);
    for (int b0 = 0; b0 < nev && !st; b0 += B) {
        int nb = nev - b0 < B ? nev - b0 : B;
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
    if (!st) {
        pulse_progress_end(&pr, (size_t)nev, NULL);
        for (int i = 0; i < nev; i++) pulse_metrics_add_rank(out, ranks[i]);
        pulse_metrics_finish(out);
    }
done:
    free(users);
    free(cands);
    free(pos);
    free(scores);
    free(hist);
    free(hlen);
    free(ranks);
    return st;
}
