/* tests/test_dist_textrec.c — data-parallel `pulse textrec train` on two MPI ranks (mpirun -np 2, launched by
 * this test; exits 77 = Skipped when the build has no MPI) against one process: it trains through SASRec's
 * data-parallel step, with textrec's hooks on every rank. A synthetic dataset (300 users, 60 items with
 * titles) and a tiny random BERT for the item texts; 3 optimiser steps (3 epochs of one global batch of
 * every user), fp32 products, dropout 0 but in the last run. Four runs: MoRec; MoRec with the encoder's top
 * layer fine-tuned end to end (--finetune-layers 1: every rank re-encodes the batch's items and steps the
 * encoder on the summed item gradients); the Thought arch with a weight 0.5 on the rationale term (InfoNCE
 * over the batch's rows: the ranks' last hidden states are all-gathered, every rank computes the whole
 * batch's term and back-propagates its own rows); the same with SASRec dropout 0.3 (masks hashed per global
 * example). Checked: the last loss (and the rationale term) within 1e-6 relative, SASRec's parameters within
 * 1e-4 absolute at most and 5e-6 root-mean-square, and the scores of every item for 30 users (which also
 * carry the text projection W, b and the fine-tuned encoder's item vectors) within 1e-4 of the largest score
 * (measured: losses within 3.4e-9, parameters max 2.5e-5, RMS 8.8e-7, scores 4.1e-7). Why these tolerances:
 * as test_dist_sasrec: the ranks sum the gradients of their halves, another float summation order, and Adam
 * divides each element by its own RMS, so an element whose terms nearly cancel can step differently by up to
 * lr = 1e-3 per step; most move alike. Rank 0 alone writes the model; the JSON line carries "ranks". */
#include <cjson/cJSON.h>
#include <math.h>

#include "dist_test.h"
#include "pulse/data.h"
#include "pulse/sasrec.h"
#include "pulse/textrec.h"
#include "test.h"
#include "tiny_encoder.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];

/* max |a - b| over the scores of every item for the first 30 users, relative to the largest |a| */
static double score_diff(pulse_textrec *a, pulse_textrec *b, const pulse_dataset *ds) {
    enum { NU = 30 };
    const int V = pulse_dataset_n_items(ds) + 1;
    int users[NU], len[NU];
    const int *hist[NU];
    for (int u = 0; u < NU; u++) {
        users[u] = u;
        hist[u] = pulse_dataset_user_seq(ds, u, &len[u]);
        len[u] = pulse_split_train_len(ds, u);
    }
    float *sa = calloc((size_t)NU * V, sizeof(float)), *sb = calloc((size_t)NU * V, sizeof(float));
    double md = NAN;
    if (sa && sb && pulse_textrec_score_fn(a, NU, users, hist, len, sa) == PULSE_OK &&
        pulse_textrec_score_fn(b, NU, users, hist, len, sb) == PULSE_OK) {
        double mx = 0, d = 0;
        for (int u = 0; u < NU; u++)
            for (int i = 1; i < V; i++) {
                const size_t k = (size_t)u * V + i;
                if (fabs(sa[k]) > mx) mx = fabs(sa[k]);
                if (!(fabs((double)sa[k] - sb[k]) <= d)) d = fabs((double)sa[k] - sb[k]);
            }
        md = mx > 0 ? d / mx : d;
    }
    free(sa);
    free(sb);
    return md;
}

static void compare(const char *dir, const char *data, const char *enc, const char *tag, const char *dropout,
                    const char *extra) {
    char cmd[4096], args[2048], m1[600], m2[600];
    snprintf(m1, sizeof m1, "%s/one_%s.bin", dir, tag);
    snprintf(m2, sizeof m2, "%s/two_%s.bin", dir, tag);
    snprintf(args, sizeof args,
             "textrec train --data %s --encoder %s --epochs 3 --batch 1000 --dim 16 --maxlen 10 --seed 3 "
             "--dropout %s --text-len 16 --precision fp32 --threads 1 %s",
             data, enc, dropout, extra);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --out %s 2>/dev/null", PULSE_CLI, args, m1);
    int rc1 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, m2);
    int rc2 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc1 == 0 && rc2 == 0 && a && b);
    double la = dist_num(a, "last_loss"), lb = dist_num(b, "last_loss");
    printf("%s: 1 process -> %d, loss %.12f; 2 ranks -> %d, loss %.12f, steps %g, %g bytes/step\n", tag, rc1,
           la, rc2, lb, dist_num(b, "steps"), dist_num(b, "allreduce_bytes_per_step"));
    CHECK(dist_num(a, "steps") == 3 && dist_num(b, "steps") == 3);
    CHECK(dist_num(b, "ranks") == 2 && cJSON_GetObjectItem(a, "ranks") == NULL);
    CHECK(dist_num(b, "allreduce_bytes_per_step") > 0);
    CHECK_MSG(fabs(la - lb) <= 1e-6 * fabs(la), "loss %.12f vs %.12f", la, lb);
    if (cJSON_GetObjectItem(a, "align_loss")) {
        double xa = dist_num(a, "align_loss"), xb = dist_num(b, "align_loss");
        printf("%s: rationale term %.12f vs %.12f\n", tag, xa, xb);
        CHECK(xa > 0 && fabs(xa - xb) <= 1e-6 * xa);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    pulse_textrec *t1 = NULL, *t2 = NULL;
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_textrec_load(m1, &t1));
    CHECK_OK(pulse_textrec_load(m2, &t2));
    CHECK_OK(pulse_dataset_load(data, NULL, &ds));
    if (t1 && t2 && ds) {
        pulse_sasrec *s1 = pulse_textrec_sasrec(t1), *s2 = pulse_textrec_sasrec(t2);
        size_t n = pulse_sasrec_n_params(s1);
        CHECK(n == pulse_sasrec_n_params(s2));
        const float *p1 = pulse_sasrec_params_ptr(s1), *p2 = pulse_sasrec_params_ptr(s2);
        double md = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)p1[i] - (double)p2[i]);
            if (!(d <= md)) md = d; /* NaN counts as the largest */
            ss += d * d;
        }
        double rms = sqrt(ss / (double)(n ? n : 1)), sd = score_diff(t1, t2, ds);
        printf(
            "%s: %zu SASRec parameters, max |difference| %.3g, RMS %.3g; scores: max %.3g of the largest\n",
            tag, n, md, rms, sd);
        CHECK(md <= 1e-4);
        CHECK(rms <= 5e-6);
        CHECK(sd <= 1e-4);
    }
    pulse_textrec_free(t1);
    pulse_textrec_free(t2);
    pulse_dataset_free(ds);
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_txXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], enc[512], pairs[512], cmd[2048], extra[1200];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(enc, sizeof enc, "%s/enc", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    snprintf(cmd, sizeof cmd, "%s data synth --out %s --users 300 --items 60 --seed 7 >/dev/null", PULSE_CLI,
             data);
    CHECK(system(cmd) == 0);
    CHECK(write_model(enc, 0, 16, 2, 2, 32, 64, 3));
    /* rationales of 200 users in the tiny encoder's vocabulary (words it does not know would all be [UNK]:
     * equal vectors, a rationale term without gradient) */
    static const char *const W[] = {"cat", "dog", "mat", "red", "blue", "nail", "polish", "skin", "oil"};
    FILE *f = fopen(pairs, "w");
    CHECK(f != NULL);
    for (int u = 1; f && u <= 200; u++)
        fprintf(
            f, "{\"user\":\"%d\",\"history\":[\"a b\"],\"answer\":\"c\",\"rationale\":\"it is %s and %s\"}\n",
            u, W[u % 9], W[(u / 9) % 9]);
    if (f) fclose(f);
    compare(dir, data, enc, "morec0", "0", "--arch morec");
    compare(dir, data, enc, "morec", "0", "--arch morec --finetune-layers 1 --ft-items 16");
    snprintf(extra, sizeof extra, "--arch thought --pairs %s --lambda 0.5 --negatives 8", pairs);
    compare(dir, data, enc, "thought", "0", extra);
    compare(dir, data, enc, "thought_drop", "0.3", extra); /* SASRec's masks hashed per example */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
