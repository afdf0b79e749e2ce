/* tests/test_eval_history.c — eval: what a protocol excludes (issue: a held-out item that repeats an earlier
 * one must not be exempted from history masking). A tiny repeat-consumption dataset whose ranks under
 * --history-mode mask and keep (and under the old rule, for the record) are written out by hand, for the full
 * and the sampled protocols; the repeat counts of pulse data stats and of the metrics; no evaluable user is
 * an error; an error raised inside the parallel ranking reaches the caller with its message. */
#include "test.h"

#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

/* every user scores item j as tab[j] (items 1..8: item 1 best, item 8 worst) */
static const float TAB[9] = {0, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f};
static pulse_status fixed_score(void *ctx, int n, const int *users, const int *const *hist,
                                const int *hist_len, float *scores) {
    (void)ctx, (void)users, (void)hist, (void)hist_len;
    for (int b = 0; b < n; b++)
        for (int j = 0; j <= 8; j++) scores[(size_t)b * 9 + j] = TAB[j];
    return PULSE_OK;
}
static pulse_status fixed_cand(void *ctx, int n, const int *users, const int *const *hist,
                               const int *hist_len, const int *cands, int K, float *scores) {
    (void)ctx, (void)users, (void)hist, (void)hist_len;
    for (int b = 0; b < n; b++)
        for (int j = 0; j < K; j++) scores[b * K + j] = TAB[cands[b * K + j]];
    return PULSE_OK;
}

/* metrics of a list of 0-based ranks, the same formulas the harness documents */
static pulse_metrics of_ranks(const int *r, int n) {
    pulse_metrics m = {0};
    for (int i = 0; i < n; i++) pulse_metrics_add_rank(&m, r[i]);
    pulse_metrics_finish(&m);
    return m;
}
static int same(const pulse_metrics *a, const pulse_metrics *b) {
    return a->n_users == b->n_users && fabs(a->hr1 - b->hr1) < 1e-12 && fabs(a->hr5 - b->hr5) < 1e-12 &&
           fabs(a->hr10 - b->hr10) < 1e-12 && fabs(a->ndcg5 - b->ndcg5) < 1e-12 &&
           fabs(a->ndcg10 - b->ndcg10) < 1e-12 && fabs(a->mrr - b->mrr) < 1e-12;
}

int main(void) {
    char dir[] = "/tmp/pulse_evalhist_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/sequences.txt", dir);
    /* user 1: test target 5 repeats the first item          (history 5 2 7 3)
     * user 2: no repeat                                      (history 6 1 8)
     * user 3: no repeat, every history item scores below the target (history 7 8 6)
     * user 4: test target 3 repeats the item just before it (history 1 3); valid target 3 does not repeat
     * user 5: too short for any target */
    write_text(path, "1 5 2 7 3 5\n2 6 1 8 4\n3 7 8 6 2\n4 1 3 3\n5 4 2\n");
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(dir, NULL, &ds));
    if (!ds) return test_summary();
    CHECK(pulse_dataset_n_items(ds) == 8);

    /* ---- the rule itself ---- */
    int ex[8], tex = -1;
    const int h0[] = {5, 2, 7, 3};
    CHECK(pulse_eval_excluded(PULSE_HISTORY_MASK, h0, 4, 8, 5, ex, &tex) == 4);
    CHECK(tex == 1 && ex[0] == 2 && ex[1] == 3 && ex[2] == 5 && ex[3] == 7);
    CHECK(pulse_eval_excluded(PULSE_HISTORY_KEEP, h0, 4, 8, 5, ex, &tex) == 0 && tex == 0);
    CHECK(pulse_eval_excluded(PULSE_HISTORY_MASK, h0, 4, 8, 4, ex, &tex) == 4 && tex == 0);

    /* ---- stats: users whose held-out item repeats ---- */
    pulse_data_stats st;
    pulse_dataset_stats(ds, &st);
    CHECK(st.repeat_test == 2);  /* users 1 and 4 */
    CHECK(st.repeat_valid == 0); /* valid targets 3, 8, 6, 3: none occurs earlier */
    CHECK(st.short_users == 1);

    /* ---- full ranking, test split, by hand (8 items, worst rank 7) ----
     *            mask  keep  old rule (held-out item exempted from masking)
     * user 1:     7     4     2   (old: 1 and 4 above 5 once 2, 3 are masked: the leak)
     * user 2:     2     3     2   (items 1..3 above 4; mask removes 1)
     * user 3:     1     1     1   (history scores below the target: both modes agree)
     * user 4:     7     2     1   (old: only 2 above 3 once 1 is masked) */
    const int mask_r[4] = {7, 2, 1, 7}, keep_r[4] = {4, 3, 1, 2}, old_r[4] = {2, 2, 1, 1};
    pulse_eval_params ep = pulse_eval_default_params();
    pulse_metrics got, want;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &got));
    want = of_ranks(mask_r, 4);
    CHECK(same(&got, &want));
    CHECK(got.n_repeat == 2 && got.n_skipped == 1);
    CHECK(got.hr1 == 0.0 && fabs(got.hr5 - 0.5) < 1e-12); /* the repeated users are misses */
    ep.history = PULSE_HISTORY_KEEP;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &got));
    want = of_ranks(keep_r, 4);
    CHECK(same(&got, &want));
    CHECK(got.n_repeat == 2);
    /* the old rule's figures are higher than both: it knew which history item was the answer */
    pulse_metrics old = of_ranks(old_r, 4), km = of_ranks(keep_r, 4), mm = of_ranks(mask_r, 4);
    CHECK(old.mrr > km.mrr && old.mrr > mm.mrr);
    /* rank by rank through pulse_rank_full */
    float s9[9];
    memcpy(s9, TAB, sizeof s9);
    for (int u = 0; u < 4; u++) {
        int hl, len, t = pulse_split_target(ds, u, PULSE_SPLIT_TEST, &hl);
        const int *seq = pulse_dataset_user_seq(ds, u, &len);
        CHECK_MSG(pulse_rank_full(s9, 8, seq, hl, t, PULSE_HISTORY_MASK) == mask_r[u], "user %d mask", u + 1);
        CHECK_MSG(pulse_rank_full(s9, 8, seq, hl, t, PULSE_HISTORY_KEEP) == keep_r[u], "user %d keep", u + 1);
    }

    /* ---- valid split: no repeats, user 4's valid target 3 has history {1} ----
     * user 1 (target 3, history 5 2 7): mask 1 (item 1), keep 2; user 2 (8, history 6 1): mask 5, keep 7;
     * user 3 (6, history 7 8): mask 5, keep 5 (the history scores below); user 4 (3, history 1): mask 1, keep
     * 2 */
    const int vmask[4] = {1, 5, 5, 1}, vkeep[4] = {2, 7, 5, 2};
    ep = pulse_eval_default_params();
    ep.split = PULSE_SPLIT_VALID;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &got));
    want = of_ranks(vmask, 4);
    CHECK(same(&got, &want) && got.n_repeat == 0);
    ep.history = PULSE_HISTORY_KEEP;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &got));
    want = of_ranks(vkeep, 4);
    CHECK(same(&got, &want));

    /* ---- sampled: 4 candidates ---- */
    ep = pulse_eval_default_params();
    ep.protocol = PULSE_PROTOCOL_SAMPLED;
    ep.n_candidates = 4;
    for (int u = 0; u < 4; u++) {
        int hl, len, t = pulse_split_target(ds, u, PULSE_SPLIT_TEST, &hl), c[4], pos = -2;
        const int *seq = pulse_dataset_user_seq(ds, u, &len);
        /* mask: negatives never in the user's sequence; a repeated positive is out of the list */
        ep.history = PULSE_HISTORY_MASK;
        CHECK_OK(pulse_eval_candidates(ds, &ep, u, t, c, &pos));
        int repeat = pulse_split_target_repeats(ds, u, PULSE_SPLIT_TEST);
        CHECK_MSG(repeat ? pos == -1 : (pos >= 0 && c[pos] == t), "user %d pos %d", u + 1, pos);
        int ok = 1;
        for (int a = 0; a < 4; a++) {
            if (a == pos) continue;
            for (int k = 0; k < len; k++) ok &= c[a] != seq[k];
            for (int b = 0; b < a; b++) ok &= c[a] != c[b];
        }
        CHECK_MSG(ok, "user %d: mask negatives", u + 1);
        if (u == 0) { /* items outside {5,2,7,3}: exactly 1 4 6 8 */
            int seen = 0;
            for (int a = 0; a < 4; a++) seen |= 1 << c[a];
            CHECK(seen == ((1 << 1) | (1 << 4) | (1 << 6) | (1 << 8)));
        }
        /* keep: the positive is always in the list, scored like any candidate; negatives may be history */
        ep.history = PULSE_HISTORY_KEEP;
        CHECK_OK(pulse_eval_candidates(ds, &ep, u, t, c, &pos));
        CHECK(pos >= 0 && pos < 4 && c[pos] == t);
        ok = 1;
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < a; b++) ok &= c[a] != c[b] && c[a] >= 1 && c[a] <= 8;
        CHECK(ok);
    }
    /* sampled metrics: the two drivers agree, and the repeated users are misses under mask */
    pulse_metrics a, b;
    ep.history = PULSE_HISTORY_MASK;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &a));
    CHECK_OK(pulse_evaluate_candidates(ds, &ep, fixed_cand, NULL, &b));
    CHECK(same(&a, &b) && a.n_repeat == 2);
    CHECK(a.hr1 <= 0.5 && a.mrr <= 0.5 * 1.0 + 0.5 * 0.25 + 1e-12);
    ep.history = PULSE_HISTORY_KEEP;
    CHECK_OK(pulse_evaluate(ds, &ep, fixed_score, NULL, &a));
    CHECK_OK(pulse_evaluate_candidates(ds, &ep, fixed_cand, NULL, &b));
    CHECK(same(&a, &b));

    /* ---- an error inside the parallel ranking keeps its message: 8 candidates need 7 or 8 negatives, no
     * user (mask) has that many items outside its sequence; whichever worker fails first, its message arrives
     */
    ep.history = PULSE_HISTORY_MASK;
    ep.n_candidates = 8;
    pulse_clear_error();
    pulse_status est = pulse_evaluate(ds, &ep, fixed_score, NULL, &a);
    CHECK(est == PULSE_ERR_RANGE);
    CHECK_MSG(strstr(pulse_last_error(), "items are not excluded") != NULL, "message: '%s'",
              pulse_last_error());
    CHECK(strstr(pulse_last_error(), "candidates of user ") != NULL);
    pulse_dataset_free(ds);

    /* ---- no evaluable user is an error, not zero metrics ---- */
    write_text(path, "1 4 2\n2 1\n");
    CHECK_OK(pulse_dataset_load(dir, NULL, &ds));
    if (ds) {
        ep = pulse_eval_default_params();
        est = pulse_evaluate(ds, &ep, fixed_score, NULL, &a);
        CHECK(est == PULSE_ERR_RANGE && strstr(pulse_last_error(), "no user") != NULL);
        pulse_dataset_free(ds);
    }
    unlink(path);
    rmdir(dir);
    return test_summary();
}
