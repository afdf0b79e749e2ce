/* tests/test_textrec_train.c — the text-aware recommender trained on the synthetic dataset (titles built
 * from the attributes users' tastes are drawn over) with bag-of-words text vectors (no encoder needed):
 * MoRec-frozen and the Thought-Space arch (a rationale per user from its last training item's text) beat
 * popularity on test NDCG@10; the model file round-trips to the same metrics; evaluation over chosen users
 * equals the harness's over the same users; cold-start users are exactly those whose held-out item no
 * training prefix has; zero-shot transfer to another synthetic catalogue ranks it from text alone. */
#include <ctype.h>
#include <stdint.h>
#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"
#include "pulse/kernels.h"
#include "pulse/textrec.h"
#include "test.h"

enum { D = 48 };

/* L2-normalised hashed bag of words of a text into v (D) */
static void bow(const char *s, float *v) {
    memset(v, 0, sizeof(float) * D);
    while (*s) {
        while (*s && !isalnum((unsigned char)*s)) s++;
        uint64_t h = 1469598103934665603ULL;
        int n = 0;
        while (*s && isalnum((unsigned char)*s)) {
            h = (h ^ (uint64_t)tolower((unsigned char)*s++)) * 1099511628211ULL;
            n++;
        }
        if (n) v[h % D] += (h >> 32) & 1 ? 1.0f : -1.0f;
    }
    double ss = 0;
    for (int i = 0; i < D; i++) ss += (double)v[i] * v[i];
    for (int i = 0; i < D && ss > 0; i++) v[i] /= (float)sqrt(ss);
}

static float *item_bow(const pulse_dataset *ds) {
    int NI = pulse_dataset_n_items(ds);
    float *T = calloc((size_t)(NI + 1) * D, sizeof(float));
    for (int i = 1; i <= NI; i++) {
        char *t = pulse_textrec_item_text(ds, i);
        CHECK(t && *t);
        if (t) bow(t, T + (size_t)i * D);
        free(t);
    }
    return T;
}

static pulse_textrec_params params(pulse_textrec_arch arch) {
    pulse_textrec_params p = pulse_textrec_default_params();
    p.arch = arch;
    p.lambda = 0.2f;
    p.sasrec.epochs = 12;
    p.sasrec.patience = 100;
    p.sasrec.seed = 7;
    return p;
}

static void same_metrics(const pulse_metrics *a, const pulse_metrics *b) {
    CHECK_NEAR(a->ndcg10, b->ndcg10, 1e-9);
    CHECK_NEAR(a->hr10, b->hr10, 1e-9);
    CHECK_NEAR(a->mrr, b->mrr, 1e-9);
    CHECK(a->n_users == b->n_users);
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_blas_select(NULL, NULL);
    pulse_synth_params sp = pulse_synth_default_params();
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (!ds) return test_summary();
    const int NU = pulse_dataset_n_users(ds), NI = pulse_dataset_n_items(ds);
    float *T = item_bow(ds);

    pulse_pop *pop = NULL;
    pulse_metrics pm;
    pulse_eval_params ep = pulse_eval_default_params();
    CHECK_OK(pulse_pop_fit(ds, &pop));
    CHECK_OK(pulse_evaluate(ds, &ep, pulse_pop_score, pop, &pm));

    /* MoRec, frozen text vectors + ID embeddings */
    pulse_textrec_params p = params(PULSE_TEXTREC_MOREC);
    pulse_textrec *m = NULL;
    pulse_textrec_train_report rep;
    CHECK_OK(pulse_textrec_create(NI, T, D, NULL, NULL, 0, &p, &m));
    CHECK_OK(pulse_textrec_fit(m, ds, &p, &rep));
    printf("pop test NDCG@10 %.4f HR@10 %.4f\n", pm.ndcg10, pm.hr10);
    printf("morec test NDCG@10 %.4f HR@10 %.4f (best epoch %d)\n", rep.sasrec.test.ndcg10,
           rep.sasrec.test.hr10, rep.sasrec.best_epoch);
    CHECK_MSG(rep.sasrec.test.ndcg10 > 1.5 * pm.ndcg10, "morec %.4f vs pop %.4f", rep.sasrec.test.ndcg10,
              pm.ndcg10);

    /* --bf16-head (the head and the item projection in bf16 while training; T converted once): learns as the
     * fp32 fit does, and its reported test metrics are the fp32 scoring of the kept model */
    pulse_textrec_params pb = p;
    pb.sasrec.bf16_head = 1;
    pulse_textrec *mb = NULL;
    pulse_textrec_train_report rb;
    CHECK_OK(pulse_textrec_create(NI, T, D, NULL, NULL, 0, &pb, &mb));
    if (mb) {
        CHECK_OK(pulse_textrec_fit(mb, ds, &pb, &rb));
        printf("morec --bf16-head test NDCG@10 %.4f (fp32 %.4f)\n", rb.sasrec.test.ndcg10,
               rep.sasrec.test.ndcg10);
        CHECK(rb.sasrec.test.ndcg10 > 1.5 * pm.ndcg10);
        CHECK(fabs(rb.sasrec.test.ndcg10 - rep.sasrec.test.ndcg10) <= 0.1 * rep.sasrec.test.ndcg10);
        pulse_metrics again;
        CHECK_OK(pulse_textrec_evaluate(mb, ds, &ep, &again));
        same_metrics(&again, &rb.sasrec.test);
    }
    pulse_textrec_free(mb);

    /* the file round-trips to the same scores */
    char path[256];
    snprintf(path, sizeof path, "/tmp/test_textrec_%d.bin", (int)getpid());
    CHECK_OK(pulse_textrec_save(m, path));
    pulse_textrec *m2 = NULL;
    CHECK_OK(pulse_textrec_load(path, &m2));
    if (m2) {
        pulse_metrics a;
        CHECK_OK(pulse_textrec_evaluate(m2, ds, &ep, &a));
        same_metrics(&a, &rep.sasrec.test);
        CHECK(pulse_textrec_get_arch(m2) == PULSE_TEXTREC_MOREC && pulse_textrec_use_id(m2) == 1);
    }
    /* a corrupt file fails with a message */
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 100, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    pulse_textrec *bad = NULL;
    CHECK(pulse_textrec_load(path, &bad) == PULSE_ERR_FORMAT && bad == NULL);
    remove(path);

    /* subset evaluation over every evaluable user = the harness */
    int *all = malloc(sizeof(int) * (size_t)NU), na = 0;
    for (int u = 0; u < NU; u++) {
        int hl;
        if (pulse_split_target(ds, u, PULSE_SPLIT_TEST, &hl) > 0) all[na++] = u;
    }
    pulse_metrics sub;
    CHECK_OK(pulse_textrec_evaluate_users(ds, &ep, all, na, pulse_textrec_score_fn, m, &sub));
    same_metrics(&sub, &rep.sasrec.test);

    /* cold-start users: held-out item absent from every training prefix */
    int *cold = NULL, nc = -1;
    CHECK_OK(pulse_textrec_cold_users(ds, PULSE_SPLIT_TEST, &cold, &nc));
    uint8_t *seen = calloc((size_t)NI + 1, 1);
    for (int u = 0; u < NU; u++) {
        int len, L = pulse_split_train_len(ds, u);
        const int *s = pulse_dataset_user_seq(ds, u, &len);
        for (int t = 0; t < L; t++) seen[s[t]] = 1;
    }
    int want = 0;
    for (int u = 0; u < NU; u++) {
        int hl, tg = pulse_split_target(ds, u, PULSE_SPLIT_TEST, &hl);
        want += tg > 0 && !seen[tg];
    }
    CHECK(nc == want);
    for (int i = 0; i < nc; i++) {
        int hl;
        CHECK(!seen[pulse_split_target(ds, cold[i], PULSE_SPLIT_TEST, &hl)]);
    }
    printf("cold-start test users: %d\n", nc);
    free(seen);
    free(cold);
    /* the same data with one more user whose held-out item is a new item: that user alone is cold */
    char dir[256], fpath[300];
    snprintf(dir, sizeof dir, "/tmp/test_textrec_cold_%d", (int)getpid());
    CHECK_OK(pulse_dataset_write_s3rec(ds, dir));
    snprintf(fpath, sizeof fpath, "%s/sequences.txt", dir);
    FILE *sf = fopen(fpath, "a");
    snprintf(fpath, sizeof fpath, "%s/items.tsv", dir);
    FILE *itf = fopen(fpath, "a");
    CHECK(sf && itf);
    if (sf) fprintf(sf, "%d 1 2 3 %d\n", NU + 1, NI + 1), fclose(sf);
    if (itf) fprintf(itf, "%d\tBrand New Thing\tNobody\tSynthetic > New\n", NI + 1), fclose(itf);
    pulse_dataset *dc = NULL;
    CHECK_OK(pulse_dataset_load(dir, NULL, &dc));
    if (dc) {
        CHECK(pulse_dataset_n_items(dc) == NI + 1 && pulse_dataset_n_users(dc) == NU + 1);
        CHECK_OK(pulse_textrec_cold_users(dc, PULSE_SPLIT_TEST, &cold, &nc));
        CHECK(nc == want + 1 && cold && cold[nc - 1] == NU);
        free(cold);
        CHECK_OK(pulse_textrec_cold_users(dc, PULSE_SPLIT_VALID, &cold, &nc));
        CHECK(nc >= 0);
        free(cold);
    }
    pulse_dataset_free(dc);
    snprintf(fpath, sizeof fpath, "rm -rf '%s'", dir);
    CHECK(system(fpath) == 0);

    /* Thought arch: each user's "rationale" = the text of its last training item */
    float *R = calloc((size_t)NU * D, sizeof(float));
    uint8_t *has = calloc((size_t)NU, 1);
    for (int u = 0; u < NU; u++) {
        int len, L = pulse_split_train_len(ds, u);
        const int *s = pulse_dataset_user_seq(ds, u, &len);
        if (L < 2 || u % 3 == 2) continue; /* a third of the users have none */
        memcpy(R + (size_t)u * D, T + (size_t)s[L - 1] * D, sizeof(float) * D);
        has[u] = 1;
    }
    pulse_textrec_params pt = params(PULSE_TEXTREC_THOUGHT);
    pulse_textrec *mt = NULL;
    pulse_textrec_train_report rt;
    CHECK_OK(pulse_textrec_create(NI, T, D, R, has, NU, &pt, &mt));
    CHECK_OK(pulse_textrec_fit(mt, ds, &pt, &rt));
    printf("thought test NDCG@10 %.4f HR@10 %.4f (best epoch %d), pair users %d, InfoNCE %.4f\n",
           rt.sasrec.test.ndcg10, rt.sasrec.test.hr10, rt.sasrec.best_epoch, rt.pair_users,
           rt.last_align_loss);
    CHECK(rt.pair_users > NU / 2 && rt.pair_users < NU);
    CHECK(rt.last_align_loss > 0 && isfinite(rt.last_align_loss));
    CHECK_MSG(rt.sasrec.test.ndcg10 > 1.5 * pm.ndcg10, "thought %.4f vs pop %.4f", rt.sasrec.test.ndcg10,
              pm.ndcg10);

    /* zero-shot transfer: a text-only model (no ID embeddings) moved onto the same catalogue keeps its
     * metrics exactly (the stack and projection are copied, the item vectors rebuilt from text); onto another
     * synthetic catalogue (other seed: other items and tastes) it only has to rank it */
    pulse_textrec_params p0 = params(PULSE_TEXTREC_MOREC);
    p0.use_id = 0;
    p0.sasrec.epochs = 6;
    pulse_textrec *m0 = NULL, *z = NULL;
    pulse_textrec_train_report r0;
    CHECK_OK(pulse_textrec_create(NI, T, D, NULL, NULL, 0, &p0, &m0));
    if (m0) {
        CHECK_OK(pulse_textrec_fit(m0, ds, &p0, &r0));
        printf("morec text only (6 epochs) test NDCG@10 %.4f\n", r0.sasrec.test.ndcg10);
        CHECK(r0.sasrec.test.ndcg10 > pm.ndcg10);
        CHECK_OK(pulse_textrec_transfer_vectors(m0, NI, T, D, &z));
        pulse_metrics zm;
        if (z) {
            CHECK_OK(pulse_textrec_evaluate(z, ds, &ep, &zm));
            same_metrics(&zm, &r0.sasrec.test);
        }
        pulse_textrec_free(z);
        z = NULL;
        CHECK(pulse_textrec_transfer_vectors(m0, NI, T, D + 1, &z) == PULSE_ERR_ARG && !z);
        CHECK(pulse_textrec_transfer(m0, ds, "/nonexistent/encoder", NULL, &z) != PULSE_OK && !z);
        pulse_synth_params sp2 = sp;
        sp2.seed = 99;
        pulse_dataset *ds2 = NULL;
        CHECK_OK(pulse_dataset_synthetic(&sp2, &ds2));
        if (ds2) {
            float *T2 = item_bow(ds2);
            CHECK_OK(pulse_textrec_transfer_vectors(m0, pulse_dataset_n_items(ds2), T2, D, &z));
            if (z) {
                CHECK_OK(pulse_textrec_evaluate(z, ds2, &ep, &zm));
                printf("zero-shot onto the seed-99 catalogue: NDCG@10 %.4f over %d users\n", zm.ndcg10,
                       zm.n_users);
                CHECK(zm.n_users > 0 && isfinite(zm.ndcg10));
            }
            free(T2);
        }
        pulse_dataset_free(ds2);
    }
    pulse_textrec_free(z);
    pulse_textrec_free(m0);

    free(R);
    free(has);
    free(all);
    pulse_textrec_free(mt);
    pulse_textrec_free(m2);
    pulse_textrec_free(m);
    pulse_pop_free(pop);
    free(T);
    pulse_dataset_free(ds);
    return test_summary();
}
