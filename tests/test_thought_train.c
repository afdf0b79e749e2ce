/* tests/test_thought_train.c — Thought Space training end to end on a tiny random BERT: the InfoNCE loss
 * falls and Recall@1 rises on held-out pairs whose word combinations were never trained on (a space that
 * memorised its training pairs fails this); a killed-and-resumed run equals an uninterrupted one; max_pairs
 * below the file's count trains on a prefix and frees every pair (ASan/LSan: a leak before); the saved space
 * loads and scores; bad arguments are refused. */
#include <unistd.h>

#include "pulse/encoder.h"
#include "pulse/thought.h"
#include "test.h"
#include "tiny_encoder.h"

static const char *WORDS[] = {"cat", "dog", "mat", "red", "blue", "nail", "polish", "skin", "oil", "the"};
#define NW 10

/* pairs [from, to) of a fixed order of the 90 (a, b) word combinations (a != b): disjoint ranges share no
 * combination, so held-out pairs are ones the space was not trained on */
static void write_pairs(const char *path, int from, int to) {
    int combo[NW * NW], n = 0;
    for (int a = 0; a < NW; a++)
        for (int b = 0; b < NW; b++)
            if (a != b) combo[n++] = a * NW + b;
    pulse_rng r;
    pulse_rng_seed(&r, 5);
    pulse_rng_shuffle_int(&r, combo, (size_t)n);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = from; i < to && i < n; i++) {
        const char *a = WORDS[combo[i] / NW], *b = WORDS[combo[i] % NW];
        fprintf(f,
                "{\"user\":\"u%d\",\"history\":[\"%s %s\",\"a b\"],\"answer\":\"%s\",\"rationale\":\"it is "
                "%s and %s\"}\n",
                i, a, b, a, a, b);
    }
    fclose(f);
}

int main(void) {
    pulse_progress_set_quiet(1);
    char tmp[] = "/tmp/pulse_thought_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char enc[512], pairs[512], held[512], out1[512], out2[512], cmd[1200];
    snprintf(enc, sizeof enc, "%s/enc", tmp);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", tmp);
    snprintf(held, sizeof held, "%s/heldout.jsonl", tmp);
    snprintf(out1, sizeof out1, "%s/space1", tmp);
    snprintf(out2, sizeof out2, "%s/space2", tmp);
    CHECK(write_model(enc, 0, 16, 2, 1, 32, 64, 3));
    write_pairs(pairs, 0, 50); /* trained on: the first 40 (max_pairs); 40..49 are never used */
    write_pairs(held, 60, 90); /* held out: combinations absent from the training file */

    pulse_thought_train_params p = pulse_thought_train_default_params();
    p.encoder = enc;
    p.heldout = held;
    p.max_pairs = 40; /* fewer than the file holds: the unused pairs are freed as well */
    p.epochs = 6;
    p.batch = 8;
    p.negatives = 5;
    p.tau = 0.1f;
    p.lr = 3e-3f;
    p.max_len = 24;
    p.dropout = 0.0f;
    pulse_thought_epoch h1[16], h2[16];
    int n1 = 0, n2 = 0;
    CHECK_OK(pulse_thought_train(pairs, out1, &p, h1, 16, &n1));
    CHECK(n1 == 7);
    if (n1 == 7) {
        CHECK_MSG(h1[6].val.loss < h1[0].val.loss - 0.2, "held loss %g -> %g", h1[0].val.loss,
                  h1[6].val.loss);
        CHECK_MSG(h1[6].val.recall1 > h1[0].val.recall1 + 0.2, "R@1 %g -> %g", h1[0].val.recall1,
                  h1[6].val.recall1);
        CHECK(h1[6].val.pos_cos - h1[6].val.neg_cos > h1[0].val.pos_cos - h1[0].val.neg_cos);
        CHECK(h1[6].train_loss < h1[1].train_loss);
    }

    /* interrupted after 3 epochs, then resumed to 6: same numbers as the uninterrupted run */
    p.epochs = 3;
    CHECK_OK(pulse_thought_train(pairs, out2, &p, h2, 16, &n2));
    CHECK(n2 == 4);
    p.epochs = 6;
    CHECK_OK(pulse_thought_train(pairs, out2, &p, h2, 16, &n2));
    CHECK(n2 == 7);
    if (n1 == 7 && n2 == 7) {
        CHECK_NEAR(h2[6].val.loss, h1[6].val.loss, 1e-4);
        CHECK_NEAR(h2[6].train_loss, h1[6].train_loss, 1e-4);
        CHECK_NEAR(h2[3].val.recall1, h1[3].val.recall1, 1e-9);
    }
    snprintf(cmd, sizeof cmd, "%s/ckpt-6/behaviour/model.safetensors", out1);
    CHECK(pulse_file_exists(cmd));
    snprintf(cmd, sizeof cmd, "%s/ckpt-5", out1);
    CHECK(!pulse_file_exists(cmd)); /* superseded checkpoints are removed */

    /* the trained space scores its own pairs' rationales best more often than the untrained encoder */
    pulse_thought_space *s = NULL, *s0 = NULL;
    CHECK_OK(pulse_thought_space_load(out1, NULL, &s));
    CHECK_OK(pulse_thought_space_load(enc, NULL, &s0));
    if (s && s0) {
        pulse_pair *pp = NULL;
        int n = 0;
        CHECK_OK(pulse_pairs_load(held, &pp, &n)); /* held-out pairs: the per-epoch validation set */
        pulse_infonce_stats a, b;
        CHECK_OK(pulse_thought_evaluate(s, pp, n, 5, 42, &a));
        CHECK_OK(pulse_thought_evaluate(s0, pp, n, 5, 42, &b));
        CHECK(a.recall1 > b.recall1);
        CHECK_NEAR(a.recall1, h1[6].val.recall1, 1e-9);
        const char *rats[3] = {pp[1].rationale, pp[0].rationale, pp[2].rationale};
        float cos[3], c2[3];
        int idx[3];
        CHECK_OK(pulse_thought_score(s, pp[0].behaviour, rats, 3, cos));
        CHECK(cos[0] >= -1.001f && cos[0] <= 1.001f);
        CHECK_OK(pulse_thought_topk(s, pp[0].behaviour, rats, 3, 2, idx, c2));
        CHECK(c2[0] >= c2[1] && c2[0] == cos[idx[0]]);
        pulse_pairs_free(pp, n);
    }
    pulse_thought_space_free(s);
    pulse_thought_space_free(s0);

    /* refusals */
    p.encoder = NULL;
    CHECK(pulse_thought_train(pairs, out1, &p, NULL, 0, NULL) == PULSE_ERR_ARG);
    p.encoder = enc;
    p.tau = 0;
    CHECK(pulse_thought_train(pairs, out1, &p, NULL, 0, NULL) == PULSE_ERR_ARG);
    p.tau = 1;
    CHECK(pulse_thought_train("/nonexistent.jsonl", out1, &p, NULL, 0, NULL) == PULSE_ERR_IO);

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
