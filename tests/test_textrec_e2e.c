/* tests/test_textrec_e2e.c — the encoder paths of the text-aware recommender with a tiny random BERT
 * (tests/tiny_encoder.h) on a small synthetic dataset: item vectors from the encoder, cached and read back
 * bit for bit; MoRec end to end (top layer trained, catalogue re-encoded per epoch and per step) changes the
 * encoder, writes FILE.encoder, and the saved model transfers zero-shot through that folder; the thought
 * arch takes its item vectors from a plain encoder folder (B = R) and its rationales from a pairs file. */
#include <unistd.h>

#include "pulse/data.h"
#include "pulse/encoder.h"
#include "pulse/kernels.h"
#include "pulse/textrec.h"
#include "test.h"
#include "tiny_encoder.h"

static pulse_textrec_params params(const char *enc, const char *cache) {
    pulse_textrec_params p = pulse_textrec_default_params();
    p.encoder = enc;
    p.cache_dir = cache;
    p.text_len = 16;
    p.precision = PULSE_PREC_FP32;
    p.sasrec.dim = 16;
    p.sasrec.epochs = 2;
    p.sasrec.batch = 64;
    p.sasrec.seed = 5;
    return p;
}

static float encoder_sum(const char *dir) {
    pulse_encoder *e = NULL;
    float s = 0;
    if (pulse_encoder_load(dir, NULL, &e) == PULSE_OK) {
        const float *w = pulse_encoder_params_data(e);
        for (size_t i = 0; i < pulse_encoder_n_params(e); i++) s += w[i] * (float)((i % 7) + 1);
    }
    pulse_encoder_free(e);
    return s;
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_blas_select(NULL, NULL);
    char tmp[128], enc[200], cache[200], model[200], encdir[220], pairs[200], cmd[300];
    snprintf(tmp, sizeof tmp, "/tmp/test_textrec_e2e_%d", (int)getpid());
    snprintf(enc, sizeof enc, "%s/enc", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    snprintf(model, sizeof model, "%s/m.bin", tmp);
    snprintf(encdir, sizeof encdir, "%s.encoder", model);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", cache);
    CHECK(system(cmd) == 0);
    CHECK(write_model(enc, 0, 16, 2, 2, 32, 24, 11));
    pulse_synth_params sp = pulse_synth_default_params();
    sp.n_users = 150;
    sp.n_items = 80;
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (!ds) return test_summary();
    const int NI = pulse_dataset_n_items(ds);

    /* item vectors: computed, cached, read back identical */
    pulse_textrec_params p = params(enc, cache);
    float *T1 = NULL, *T2 = NULL;
    int D1 = 0, D2 = 0;
    CHECK_OK(pulse_textrec_item_vectors(ds, &p, &T1, &D1));
    CHECK_OK(pulse_textrec_item_vectors(ds, &p, &T2, &D2));
    CHECK(D1 == 16 && D2 == 16);
    if (T1 && T2) {
        CHECK(memcmp(T1, T2, sizeof(float) * (size_t)(NI + 1) * D1) == 0);
        double n0 = 0, n5 = 0;
        for (int c = 0; c < D1; c++) n0 += fabs(T1[c]), n5 += (double)T1[5 * D1 + c] * T1[5 * D1 + c];
        CHECK(n0 == 0.0);          /* padding row */
        CHECK_NEAR(n5, 1.0, 1e-4); /* L2-normalised */
    }
    free(T1);
    free(T2);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c textvec-", cache);
    char out[256];
    CHECK(test_run(cmd, out, sizeof out) == 0 && atoi(out) == 1);

    /* end to end: the top layer trained */
    float before = encoder_sum(enc);
    for (int step = 0; step < 2; step++) {
        pulse_textrec_params pe = params(enc, cache);
        pe.finetune_layers = 1;
        pe.ft_items = 8;
        pe.refresh_every_step = step;
        pe.sasrec.epochs = step ? 1 : 2;
        pulse_textrec *m = NULL;
        pulse_textrec_train_report r;
        CHECK_OK(pulse_textrec_train(ds, &pe, &m, &r));
        if (!m) continue;
        printf("end to end (refresh %s): test NDCG@10 %.4f, %d epochs\n", step ? "step" : "epoch",
               r.sasrec.test.ndcg10, r.sasrec.epochs_run);
        CHECK(r.sasrec.epochs_run == pe.sasrec.epochs && isfinite(r.sasrec.test.ndcg10));
        CHECK(pulse_textrec_finetune_layers(m) == 1);
        CHECK_OK(pulse_textrec_save(m, model));
        float after = encoder_sum(encdir);
        CHECK_MSG(after != before, "encoder unchanged by fine-tuning (%g)", (double)after);
        pulse_textrec *l = NULL, *z = NULL;
        CHECK_OK(pulse_textrec_load(model, &l));
        if (l) {
            pulse_metrics a;
            pulse_eval_params ep = pulse_eval_default_params();
            CHECK_OK(pulse_textrec_evaluate(l, ds, &ep, &a));
            CHECK_NEAR(a.ndcg10, r.sasrec.test.ndcg10, 1e-9);
            /* zero-shot through the fine-tuned encoder folder */
            CHECK_OK(pulse_textrec_transfer(l, ds, encdir, NULL, &z));
            if (z) {
                CHECK(pulse_textrec_n_items(z) == NI && pulse_textrec_use_id(z) == 0);
                CHECK_OK(pulse_textrec_evaluate(z, ds, &ep, &a));
                CHECK(a.n_users > 0 && isfinite(a.ndcg10));
            }
        }
        pulse_textrec_free(z);
        pulse_textrec_free(l);
        pulse_textrec_free(m);
    }
    /* fine-tuning is a MoRec option */
    pulse_textrec_params bad = params(enc, cache);
    bad.arch = PULSE_TEXTREC_THOUGHT;
    bad.finetune_layers = 1;
    bad.lambda = 0;
    pulse_textrec *nm = NULL;
    CHECK(pulse_textrec_train(ds, &bad, &nm, NULL) == PULSE_ERR_ARG && !nm);

    /* thought arch: R = the plain folder; rationales from a pairs file, users by key */
    FILE *f = fopen(pairs, "w");
    if (f) {
        for (int u = 0; u < 100; u++)
            fprintf(f, "{\"user\":\"%s\",\"behaviour\":\"a b\",\"rationale\":\"the %s polish\"}\n",
                    pulse_dataset_user_key(ds, u), u % 2 ? "red" : "blue");
        fprintf(f, "{\"user\":\"no-such-user\",\"behaviour\":\"a\",\"rationale\":\"c\"}\n");
        fclose(f);
    }
    pulse_textrec_params pt = params(enc, cache);
    pt.arch = PULSE_TEXTREC_THOUGHT;
    pt.space = enc;
    pt.pairs = pairs;
    pulse_textrec *mt = NULL;
    pulse_textrec_train_report rt;
    CHECK_OK(pulse_textrec_train(ds, &pt, &mt, &rt));
    CHECK(rt.pair_users == 100);
    CHECK(rt.last_align_loss > 0 && isfinite(rt.last_align_loss));
    pulse_textrec_free(mt);
    pt.pairs = NULL;
    CHECK(pulse_textrec_train(ds, &pt, &mt, NULL) == PULSE_ERR_ARG && !mt);

    pulse_dataset_free(ds);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
