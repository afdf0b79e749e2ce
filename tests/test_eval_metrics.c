/* tests/test_eval_metrics.c — eval: hand-computed metrics and ranks (masking, pessimistic ties, NaN), a tiny
 * dataset evaluated end to end with known ranks, candidate lists (distinct, unseen, deterministic),
 * batch-size and thread invariance, an oracle scorer (HR@1 = 1) and the popularity baseline on the synthetic
 * data. */
#include "test.h"

#include <cjson/cJSON.h>

#include <omp.h>
#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

/* scores from a fixed table: item j gets tab[j] for every user */
typedef struct {
    const float *tab;
    int n_items;
} fixed_ctx;
static pulse_status fixed_score(void *ctx, int n, const int *users, const int *const *hist,
                                const int *hist_len, float *scores) {
    (void)users, (void)hist, (void)hist_len;
    const fixed_ctx *c = ctx;
    for (int b = 0; b < n; b++)
        for (int j = 0; j <= c->n_items; j++) scores[(size_t)b * (c->n_items + 1) + j] = c->tab[j];
    return PULSE_OK;
}

/* the oracle knows the next item: the one after the history */
typedef struct {
    const pulse_dataset *ds;
} oracle_ctx;
static pulse_status oracle_score(void *ctx, int n, const int *users, const int *const *hist,
                                 const int *hist_len, float *scores) {
    const oracle_ctx *c = ctx;
    int ni = pulse_dataset_n_items(c->ds);
    for (int b = 0; b < n; b++) {
        float *s = scores + (size_t)b * (ni + 1);
        for (int j = 0; j <= ni; j++) s[j] = 0;
        int len;
        const int *seq = pulse_dataset_user_seq(c->ds, users[b], &len);
        if (seq != hist[b])
            return pulse_set_error(PULSE_ERR_STATE, "history pointer is not the user's sequence");
        s[seq[hist_len[b]]] = 1;
    }
    return PULSE_OK;
}
static pulse_status oracle_cand(void *ctx, int n, const int *users, const int *const *hist,
                                const int *hist_len, const int *cands, int K, float *scores) {
    (void)ctx, (void)users;
    for (int b = 0; b < n; b++)
        for (int j = 0; j < K; j++) scores[b * K + j] = cands[b * K + j] == hist[b][hist_len[b]] ? 1.f : 0.f;
    return PULSE_OK;
}

typedef struct {
    pulse_pop *pop;
    int n_items;
} popc_ctx;
static pulse_status pop_cand(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                             const int *cands, int K, float *scores) {
    const popc_ctx *c = ctx;
    float *row = malloc(sizeof(float) * (size_t)(c->n_items + 1));
    for (int b = 0; b < n; b++) {
        pulse_pop_score(c->pop, 1, users + b, hist + b, hist_len + b, row);
        for (int j = 0; j < K; j++) scores[b * K + j] = row[cands[b * K + j]];
    }
    free(row);
    return PULSE_OK;
}

static pulse_status failing_score(void *ctx, int n, const int *users, const int *const *hist,
                                  const int *hist_len, float *scores) {
    (void)ctx, (void)n, (void)users, (void)hist, (void)hist_len, (void)scores;
    return pulse_set_error(PULSE_ERR_STATE, "model not ready");
}

static int same_metrics(const pulse_metrics *a, const pulse_metrics *b) {
    return a->n_users == b->n_users && a->hr1 == b->hr1 && a->hr5 == b->hr5 && a->hr10 == b->hr10 &&
           a->hr20 == b->hr20 && a->ndcg5 == b->ndcg5 && a->ndcg10 == b->ndcg10 && a->ndcg20 == b->ndcg20 &&
           a->mrr == b->mrr;
}

int main(void) {
    pulse_progress_set_quiet(1);

    /* ---- metric accumulation by hand ---- */
    pulse_metrics m = {0};
    pulse_metrics_add_rank(&m, 0); /* hit at the top */
    pulse_metrics_add_rank(&m, 3); /* 4th place */
    pulse_metrics_add_rank(&m, 12);
    pulse_metrics_add_rank(&m, 40);
    pulse_metrics_finish(&m);
    CHECK(m.n_users == 4);
    CHECK_NEAR(m.hr1, 0.25, 1e-12);
    CHECK_NEAR(m.hr5, 0.5, 1e-12);
    CHECK_NEAR(m.hr10, 0.5, 1e-12);
    CHECK_NEAR(m.hr20, 0.75, 1e-12);
    CHECK_NEAR(m.ndcg5, (1.0 + 1.0 / log2(5.0)) / 4, 1e-12);
    CHECK_NEAR(m.ndcg10, (1.0 + 1.0 / log2(5.0)) / 4, 1e-12);
    CHECK_NEAR(m.ndcg20, (1.0 + 1.0 / log2(5.0) + 1.0 / log2(14.0)) / 4, 1e-12);
    CHECK_NEAR(m.mrr, (1.0 + 0.25 + 1.0 / 13 + 1.0 / 41) / 4, 1e-12);
    char jbuf[512];
    CHECK(pulse_metrics_json(&m, jbuf, sizeof jbuf) < (int)sizeof jbuf);
    CHECK(pulse_metrics_json(&m, NULL, 0) == (int)strlen(jbuf)); /* the length it needs, snprintf's rule */
    cJSON *j = cJSON_Parse(jbuf);
    const char *keys[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
    int nk = 0;
    for (cJSON *e = j ? j->child : NULL; e; e = e->next, nk++)
        CHECK(nk < 8 && strcmp(e->string, keys[nk]) == 0);
    CHECK(nk == 8);
    CHECK_NEAR(cJSON_GetObjectItem(j, "HR@20")->valuedouble, 0.75, 1e-12);
    cJSON_Delete(j);

    /* ---- rank rules ---- */
    /* items 1..6; target 3 scores 0.5 */
    float s[7] = {99, 0.9f, 0.1f, 0.5f, 0.5f, 0.7f, 0.2f};
    const pulse_history M = PULSE_HISTORY_MASK, KP = PULSE_HISTORY_KEEP;
    CHECK(pulse_rank_full(s, 6, NULL, 0, 3, M) == 3); /* 0.9, 0.7 beat; 0.5 tie counts against */
    int h1[] = {1, 1, 2};                             /* history masks item 1 (twice) and 2 */
    CHECK(pulse_rank_full(s, 6, h1, 3, 3, M) == 2);   /* 0.7 and the tie remain */
    CHECK(pulse_rank_full(s, 6, h1, 3, 3, KP) == 3);  /* keep: item 1 competes again */
    int h2[] = {3, 5, 4};                             /* the held-out item repeats a history item */
    CHECK(pulse_rank_full(s, 6, h2, 3, 3, M) == 5);   /* mask: excluded like items 4, 5: a miss */
    CHECK(pulse_rank_full(s, 6, h2, 3, 3, KP) == 3);  /* keep: 0.9, 0.7 and the tie, as with no history */
    float sn[7] = {0, 0.9f, NAN, 0.5f, 0.1f, 0.1f, 0.1f};
    CHECK(pulse_rank_full(sn, 6, NULL, 0, 3, M) == 2); /* a NaN competitor counts against the target */
    sn[3] = NAN;
    CHECK(pulse_rank_full(sn, 6, NULL, 0, 3, M) == 5); /* a NaN target is last */
    float c4[4] = {0.3f, 0.8f, 0.3f, 0.1f};
    CHECK(pulse_rank_list(c4, 4, 1) == 0);
    CHECK(pulse_rank_list(c4, 4, 0) == 2); /* 0.8 beats, 0.3 ties */
    CHECK(pulse_rank_list(c4, 4, 3) == 3);
    float cst[5] = {1, 1, 1, 1, 1};
    CHECK(pulse_rank_full(cst, 4, NULL, 0, 2, M) == 3); /* a constant scorer never gets credit */
    CHECK(pulse_rank_list(c4, 4, -1) == 3);             /* an excluded positive is a miss */

    /* ---- a tiny dataset end to end, ranks worked out by hand ---- */
    char dir[] = "/tmp/pulse_eval_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/sequences.txt", dir);
    /* items 1..8. user 1: test 4 after history {1,2,3}; user 2: test 6 after {5,1,6}? no: 6 repeats */
    write_text(path, "1 1 2 3 4\n"
                     "2 5 1 7 6\n"
                     "3 8 2\n" /* too short: no valid/test */
                     "4 2 3 8 1 5\n");
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(dir, NULL, &ds));
    if (ds) {
        CHECK(pulse_dataset_n_items(ds) == 8);
        /* fixed scores: higher id = higher score, except item 4 = 0.95 */
        float tab[9] = {0, 0.1f, 0.2f, 0.3f, 0.95f, 0.5f, 0.6f, 0.7f, 0.8f};
        fixed_ctx fc = {tab, 8};
        pulse_eval_params ep = pulse_eval_default_params();
        ep.batch_users = 2;
        pulse_metrics got;
        CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, &fc, &got));
        /* test: user1 target 4 (0.95), hist {1,2,3}: nothing above -> rank 0
         *       user2 target 6 (0.6), hist {5,1,7}: item 8 (0.8) and 4 (0.95) above, 7 masked -> rank 2
         *       user4 target 5 (0.5), hist {2,3,8,1}: items 4,6,7 above -> rank 3 */
        pulse_metrics want = {0};
        pulse_metrics_add_rank(&want, 0);
        pulse_metrics_add_rank(&want, 2);
        pulse_metrics_add_rank(&want, 3);
        pulse_metrics_finish(&want);
        CHECK(got.n_users == 3);
        CHECK(same_metrics(&got, &want));
        CHECK_NEAR(got.ndcg5, (1 + 1 / log2(4.0) + 1 / log2(5.0)) / 3, 1e-12);
        /* valid: user1 target 3, hist {1,2}: 4,5,6,7,8 above -> 5; user2 target 7 (0.7), hist {5,1}: 8,4 ->
         * 2; user4 target 1 (0.1), hist {2,3,8}: 4,5,6,7 above -> 4 */
        ep.split = PULSE_SPLIT_VALID;
        CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, &fc, &got));
        pulse_metrics wv = {0};
        pulse_metrics_add_rank(&wv, 5);
        pulse_metrics_add_rank(&wv, 2);
        pulse_metrics_add_rank(&wv, 4);
        pulse_metrics_finish(&wv);
        CHECK(same_metrics(&got, &wv));
        /* max_users counts evaluated users */
        ep.max_users = 1;
        CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, &fc, &got));
        CHECK(got.n_users == 1 && got.hr20 == 1.0 && got.hr5 == 0.0);
        /* a failing model propagates its error */
        ep = pulse_eval_default_params();
        CHECK(pulse_evaluate(ds, &ep, failing_score, NULL, &got) == PULSE_ERR_STATE);
        CHECK(strstr(pulse_last_error(), "model not ready") != NULL);
        /* sampled with more candidates than unseen items is refused per user */
        ep.protocol = PULSE_PROTOCOL_SAMPLED;
        ep.n_candidates = 6;
        CHECK(pulse_evaluate(ds, &ep, fixed_score, &fc, &got) == PULSE_ERR_RANGE);
        ep.n_candidates = 4; /* user 4 has 5 distinct items: 3 unseen remain */
        CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, &fc, &got));
        CHECK(got.n_users == 3);
        pulse_dataset_free(ds);
    }
    unlink(path);
    rmdir(dir);

    /* ---- synthetic data: candidates, oracle, popularity, invariances ---- */
    pulse_synth_params sp = pulse_synth_default_params();
    pulse_dataset *syn = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &syn));
    if (!syn) return test_summary();
    int ni = pulse_dataset_n_items(syn);
    pulse_eval_params ep = pulse_eval_default_params();
    ep.protocol = PULSE_PROTOCOL_SAMPLED;
    ep.n_candidates = 20;
    int ok_lists = 1, same_again = 1, pos_spread[20] = {0};
    for (int u = 0; u < pulse_dataset_n_users(syn); u++) {
        int hl, target = pulse_split_target(syn, u, PULSE_SPLIT_TEST, &hl);
        int c[20], c2[20], pos, pos2, len;
        const int *seq = pulse_dataset_user_seq(syn, u, &len);
        if (pulse_eval_candidates(syn, &ep, u, target, c, &pos) != PULSE_OK) {
            ok_lists = 0;
            continue;
        }
        pulse_eval_candidates(syn, &ep, u, target, c2, &pos2);
        same_again &= pos == pos2 && memcmp(c, c2, sizeof c) == 0;
        ok_lists &= c[pos] == target;
        pos_spread[pos]++;
        for (int a = 0; a < 20; a++) {
            ok_lists &= c[a] >= 1 && c[a] <= ni;
            for (int b = 0; b < a; b++) ok_lists &= c[a] != c[b];
            if (a == pos) continue;
            for (int k = 0; k < len; k++) ok_lists &= c[a] != seq[k]; /* never interacted with */
        }
    }
    CHECK(ok_lists);
    CHECK(same_again);
    int spread = 0;
    for (int k = 0; k < 20; k++) spread += pos_spread[k] > 0;
    CHECK(spread == 20); /* the positive is not always in the same place */

    oracle_ctx oc = {syn};
    pulse_metrics om;
    pulse_eval_params fp = pulse_eval_default_params();
    CHECK_OK(pulse_evaluate(syn, &fp, oracle_score, &oc, &om));
    CHECK(om.n_users == pulse_dataset_n_users(syn));
    CHECK(om.hr1 == 1.0 && om.ndcg10 == 1.0 && om.mrr == 1.0);
    CHECK_OK(pulse_evaluate(syn, &ep, oracle_score, &oc, &om));
    CHECK(om.hr1 == 1.0 && om.mrr == 1.0);
    CHECK_OK(pulse_evaluate_candidates(syn, &ep, oracle_cand, NULL, &om));
    CHECK(om.hr1 == 1.0);

    pulse_pop *pop = NULL;
    CHECK_OK(pulse_pop_fit(syn, &pop));
    pulse_metrics pm, pm1, pmc;
    CHECK_OK(pulse_evaluate(syn, &fp, pulse_pop_score, pop, &pm));
    /* random guessing gets HR@10 ~ 10/300; popularity should clearly beat it but be far from perfect */
    printf("pop on synthetic (full): HR@10 %.4f NDCG@10 %.4f MRR %.4f\n", pm.hr10, pm.ndcg10, pm.mrr);
    CHECK(pm.hr10 > 2.0 * 10.0 / ni && pm.hr10 < 0.6);
    CHECK(pm.hr1 <= pm.hr5 && pm.hr5 <= pm.hr10 && pm.hr10 <= pm.hr20);
    CHECK(pm.ndcg5 <= pm.ndcg10 && pm.ndcg10 <= pm.ndcg20 && pm.ndcg20 <= pm.hr20);
    /* batch size and thread count do not change anything */
    pulse_eval_params fp1 = fp;
    fp1.batch_users = 1;
    omp_set_num_threads(1);
    CHECK_OK(pulse_evaluate(syn, &fp1, pulse_pop_score, pop, &pm1));
    omp_set_num_threads(2);
    CHECK(same_metrics(&pm, &pm1));
    CHECK_OK(pulse_evaluate(syn, &ep, pulse_pop_score, pop, &pm));
    ep.batch_users = 7;
    CHECK_OK(pulse_evaluate(syn, &ep, pulse_pop_score, pop, &pm1));
    CHECK(same_metrics(&pm, &pm1));
    printf("pop on synthetic (sampled 20): HR@1 %.4f HR@5 %.4f NDCG@10 %.4f\n", pm.hr1, pm.hr5, pm.ndcg10);
    CHECK(pm.hr1 > 1.0 / 20 && pm.hr1 < 0.9);
    /* the candidate-list driver agrees with the full-score driver on the same lists */
    popc_ctx pc = {pop, ni};
    CHECK_OK(pulse_evaluate_candidates(syn, &ep, pop_cand, &pc, &pmc));
    CHECK(same_metrics(&pm, &pmc));
    /* another seed gives other lists */
    ep.seed = 7;
    CHECK_OK(pulse_evaluate(syn, &ep, pulse_pop_score, pop, &pm1));
    CHECK(!same_metrics(&pm, &pm1));
    pulse_pop_free(pop);
    pulse_dataset_free(syn);
    return test_summary();
}
