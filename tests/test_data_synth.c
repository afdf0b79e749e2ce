/* tests/test_data_synth.c — data: the synthetic generator is deterministic per seed, well-formed (lengths,
 * ids, unique attribute-word titles), round-trips through the S3-Rec writer, and carries sequential signal: a
 * first-order transition model fitted on the training prefixes clearly beats popularity on the test split. */
#include "test.h"

#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"

/* bigram model: score[j] = count(prev -> j) over training prefixes + a popularity tie-breaker */
typedef struct {
    int n_items;
    float *trans; /* [(n_items+1) * (n_items+1)] */
    float *pop;
} bigram;

static pulse_status bigram_score(void *ctx, int n, const int *users, const int *const *hist,
                                 const int *hist_len, float *scores) {
    (void)users;
    const bigram *m = ctx;
    size_t row = (size_t)m->n_items + 1;
    for (int b = 0; b < n; b++) {
        int prev = hist_len[b] > 0 ? hist[b][hist_len[b] - 1] : 0;
        for (size_t j = 0; j < row; j++) scores[b * row + j] = m->trans[prev * row + j] + 1e-3f * m->pop[j];
    }
    return PULSE_OK;
}

static int same_data(const pulse_dataset *a, const pulse_dataset *b) {
    if (pulse_dataset_n_users(a) != pulse_dataset_n_users(b) ||
        pulse_dataset_n_interactions(a) != pulse_dataset_n_interactions(b))
        return 0;
    for (int u = 0; u < pulse_dataset_n_users(a); u++) {
        int la, lb;
        const int *sa = pulse_dataset_user_seq(a, u, &la), *sb = pulse_dataset_user_seq(b, u, &lb);
        if (la != lb || memcmp(sa, sb, sizeof(int) * (size_t)la)) return 0;
    }
    for (int i = 1; i <= pulse_dataset_n_items(a) && i <= pulse_dataset_n_items(b); i++) {
        const char *ta = pulse_dataset_item_title(a, i), *tb = pulse_dataset_item_title(b, i);
        if (!ta || !tb || strcmp(ta, tb)) return 0;
    }
    return 1;
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_synth_params sp = pulse_synth_default_params();
    CHECK(sp.n_users == 500 && sp.n_items == 300 && sp.n_attributes == 12 && sp.min_len == 5 &&
          sp.max_len == 30);
    pulse_dataset *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &a));
    CHECK_OK(pulse_dataset_synthetic(&sp, &b));
    pulse_synth_params sp2 = sp;
    sp2.seed = 2;
    CHECK_OK(pulse_dataset_synthetic(&sp2, &c));
    if (!a || !b || !c) return test_summary();
    CHECK(same_data(a, b));
    CHECK(!same_data(a, c));
    CHECK(strcmp(pulse_dataset_format(a), "synthetic") == 0);

    /* shape */
    int ni = pulse_dataset_n_items(a), ok = 1, consecutive_repeat = 0;
    CHECK(pulse_dataset_n_users(a) == 500 && ni == 300);
    for (int u = 0; u < 500; u++) {
        int len;
        const int *s = pulse_dataset_user_seq(a, u, &len);
        ok &= len >= 5 && len <= 30;
        for (int k = 0; k < len; k++) {
            ok &= s[k] >= 1 && s[k] <= ni;
            for (int q = 0; q < k; q++) consecutive_repeat += s[q] == s[k];
        }
    }
    CHECK(ok);
    CHECK(consecutive_repeat == 0); /* no item twice in a sequence */
    pulse_data_stats st;
    pulse_dataset_stats(a, &st);
    printf("synthetic: %d users, %d items seen, %zu interactions, avg len %.2f\n", st.users, st.items,
           st.interactions, st.avg_len);
    CHECK(st.items > 250); /* most items occur */
    CHECK(st.avg_len > 8 && st.avg_len < 15);
    CHECK(st.titled_items == 300);
    /* titles: four attribute words (+ a model number when the combination repeats), all distinct */
    int words_ok = 1, distinct = 1;
    for (int i = 1; i <= ni; i++) {
        const char *t = pulse_dataset_item_title(a, i);
        int spaces = 0;
        for (const char *p = t; *p; p++) spaces += *p == ' ';
        words_ok &= spaces == 3 || (spaces == 5 && strstr(t, " No. "));
        for (int j = 1; j < i; j++) distinct &= strcmp(t, pulse_dataset_item_title(a, j)) != 0;
    }
    CHECK(words_ok);
    CHECK(distinct);
    CHECK(pulse_dataset_item_field(a, 1, "brand") != NULL);
    CHECK(strncmp(pulse_dataset_item_field(a, 1, "categories"), "Synthetic > ", 12) == 0);
    printf("item 1: %s (%s)\n", pulse_dataset_item_title(a, 1), pulse_dataset_item_field(a, 1, "categories"));

    /* S3-Rec round trip */
    char dir[] = "/tmp/pulse_synth_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(pulse_dataset_write_s3rec(a, dir));
    pulse_dataset *r = NULL;
    CHECK_OK(pulse_dataset_load(dir, NULL, &r));
    if (r) {
        CHECK(same_data(a, r));
        CHECK(strcmp(pulse_dataset_item_field(r, 7, "brand"), pulse_dataset_item_field(a, 7, "brand")) == 0);
        pulse_dataset_free(r);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);

    /* learnability: transitions beat popularity */
    bigram m = {ni, calloc((size_t)(ni + 1) * (ni + 1), sizeof(float)),
                calloc((size_t)ni + 1, sizeof(float))};
    for (int u = 0; u < pulse_dataset_n_users(a); u++) {
        int len;
        const int *s = pulse_dataset_user_seq(a, u, &len);
        int tl = pulse_split_train_len(a, u);
        for (int k = 0; k < tl; k++) {
            m.pop[s[k]] += 1;
            if (k > 0) m.trans[(size_t)s[k - 1] * (ni + 1) + s[k]] += 1;
        }
    }
    pulse_pop *pop = NULL;
    CHECK_OK(pulse_pop_fit(a, &pop));
    pulse_eval_params ep = pulse_eval_default_params();
    pulse_metrics pm, bm;
    CHECK_OK(pulse_evaluate(a, &ep, pulse_pop_score, pop, &pm));
    CHECK_OK(pulse_evaluate(a, &ep, bigram_score, &m, &bm));
    printf("test NDCG@10: pop %.4f, bigram %.4f; HR@10: pop %.4f, bigram %.4f\n", pm.ndcg10, bm.ndcg10,
           pm.hr10, bm.hr10);
    CHECK(bm.ndcg10 > 1.3 * pm.ndcg10);
    CHECK(bm.hr10 > pm.hr10);
    pulse_pop_free(pop);
    free(m.trans);
    free(m.pop);

    /* bad parameters are refused */
    pulse_synth_params bad = sp;
    bad.min_len = 2;
    pulse_dataset *x = NULL;
    CHECK(pulse_dataset_synthetic(&bad, &x) == PULSE_ERR_ARG && x == NULL);
    bad = sp;
    bad.n_items = 1;
    CHECK(pulse_dataset_synthetic(&bad, &x) == PULSE_ERR_ARG);
    /* larger sets stay valid (their speed: bench/data.c, no timing in a unit test) */
    pulse_synth_params big = sp;
    big.n_users = 5000;
    big.n_items = 2000;
    CHECK_OK(pulse_dataset_synthetic(&big, &x));
    CHECK(x && pulse_dataset_n_users(x) == 5000);
    if (x) {
        int bad = 0;
        size_t tot = 0;
        for (int u = 0; u < 5000; u++) {
            int len;
            const int *q = pulse_dataset_user_seq(x, u, &len);
            bad += len < big.min_len;
            for (int i = 0; i < len; i++) bad += q[i] < 1 || q[i] > pulse_dataset_n_items(x);
            tot += (size_t)len;
        }
        CHECK_MSG(bad == 0, "%d short sequences or out-of-range items", bad);
        CHECK(tot == pulse_dataset_n_interactions(x));
    }
    pulse_dataset_free(x);

    pulse_dataset_free(a);
    pulse_dataset_free(b);
    pulse_dataset_free(c);
    return test_summary();
}
