/* tests/test_dist_thought.c — data-parallel `pulse thought train` on two MPI ranks (mpirun -np 2, launched by
 * this test; exits 77 = Skipped when the build has no MPI) against one process, on a tiny random BERT: 3
 * optimiser steps (3 epochs of one global batch of 23 pairs: shares of 11 and 12): two encoders and one
 * shared encoder with dropout 0, and two encoders with dropout 0.1 (the masks are drawn per example from
 * (seed, step, example, position, channel): pulse_encoder_set_example_ids, the same on any number of
 * ranks). Checked: the 3 losses equal within 1e-5 relative (measured: step 1 bit-identical,
 * steps 2-3 within 1.3e-7), every parameter but the attention key biases within 1e-5 absolute and 1e-6
 * root-mean-square (measured: 1.3e-6 and 2.7e-8), the key biases within 6 lr. Why: each rank encodes its
 * share of the batch, whose padding length and GEMM row counts differ from the whole batch's, and the
 * gradients are the sum of two shares, another float summation order: a few ulp per element. AdamW divides
 * each element by its own RMS, so an element whose terms nearly cancel steps differently. The attention key
 * bias is the extreme case: its gradient is zero in exact arithmetic (a softmax does not change when the same
 * number is added to every score of a row, and the key bias adds q.b to the whole row), so Adam steps on
 * rounding noise, about lr per step with either sign, in both runs alike (measured: those 16 elements per
 * layer are the only ones above 1e-4, up to 3.5e-3 at lr 3e-3). Rank 0 alone writes the space; the JSON line
 * carries "ranks" and the bytes per step. */
#include <cjson/cJSON.h>
#include <math.h>

#include <string.h>

#include "pulse/safetensors.h"
#include "dist_test.h"
#include "test.h"
#include "tiny_encoder.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];
static const char *WORDS[] = {"cat", "dog", "mat", "red", "blue", "nail", "polish", "skin", "oil", "the"};

/* the train_loss of history entry i */
static double hist_loss(const cJSON *o, int i) {
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "history");
    return dist_num(cJSON_GetArrayItem(h, i), "train_loss");
}

/* every tensor of the two checkpoints' model.safetensors: max |difference| and RMS over all but the
 * attention key biases (kb), and the largest kb difference apart */
static void compare_params(const char *d1, const char *d2, const char *what, double lr) {
    char f1[800], f2[800];
    snprintf(f1, sizeof f1, "%s/model.safetensors", d1);
    snprintf(f2, sizeof f2, "%s/model.safetensors", d2);
    pulse_safetensors *a = NULL, *b = NULL;
    CHECK_OK(pulse_safetensors_open(&a, f1));
    CHECK_OK(pulse_safetensors_open(&b, f2));
    if (!a || !b) {
        pulse_safetensors_close(a);
        pulse_safetensors_close(b);
        return;
    }
    CHECK(pulse_safetensors_count(a) == pulse_safetensors_count(b));
    double md = 0, ss = 0, mk = 0;
    size_t n = 0, nk = 0;
    for (int t = 0; t < pulse_safetensors_count(a); t++) {
        const pulse_st_tensor *x = pulse_safetensors_at(a, t), *y = pulse_safetensors_find(b, x->name);
        CHECK(y && y->n_elements == x->n_elements && x->dtype == PULSE_ST_F32 && y->dtype == PULSE_ST_F32);
        if (!y || y->n_elements != x->n_elements || x->dtype != PULSE_ST_F32 || y->dtype != PULSE_ST_F32)
            continue;
        const float *p1 = x->data, *p2 = y->data;
        const int kb = strstr(x->name, "attention.self.key.bias") != NULL;
        for (size_t i = 0; i < x->n_elements; i++) {
            double d = fabs((double)p1[i] - (double)p2[i]);
            if (kb) {
                if (!(d <= mk)) mk = d;
                nk++;
                continue;
            }
            if (!(d <= md)) md = d; /* NaN counts as the largest */
            ss += d * d;
            n++;
        }
    }
    double rms = sqrt(ss / (double)(n ? n : 1));
    printf("%s: %zu parameters, max |difference| %.3g, RMS %.3g; %zu attention key biases: max %.3g\n", what,
           n, md, rms, nk, mk);
    CHECK(n > 1000 && nk > 0);
    CHECK(md <= 1e-5);
    CHECK(rms <= 1e-6);
    CHECK(mk <= 3 * 2 * lr); /* Adam on rounding noise: at most about lr per step, either sign */
    pulse_safetensors_close(a);
    pulse_safetensors_close(b);
}

static void compare(const char *dir, const char *enc, const char *pairs, int shared, const char *dropout) {
    char cmd[4096], args[2048], o1[600], o2[600];
    char tag[64];
    snprintf(tag, sizeof tag, "%s, dropout %s", shared ? "shared" : "two towers", dropout);
    snprintf(o1, sizeof o1, "%s/one_%d_%s", dir, shared, dropout);
    snprintf(o2, sizeof o2, "%s/mpi_%d_%s", dir, shared, dropout);
    snprintf(args, sizeof args,
             "thought train --pairs %s --encoder %s --epochs 3 --batch 23 --negatives 5 --tau 0.1 --lr 3e-3 "
             "--max-len 24 --dropout %s --seed 3 --threads 1 --no-resume%s",
             pairs, enc, dropout, shared ? " --shared" : "");
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --out %s 2>/dev/null", PULSE_CLI, args, o1);
    int rc1 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, o2);
    int rc2 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc1 == 0 && rc2 == 0 && a && b);
    if (!a || !b) {
        cJSON_Delete(a);
        cJSON_Delete(b);
        return;
    }
    CHECK(dist_num(b, "ranks") == 2 && cJSON_GetObjectItem(a, "ranks") == NULL);
    CHECK(dist_num(b, "comm_bytes_per_step") > 0 && dist_num(b, "comm_seconds") >= 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(a, "history")) == 3);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(b, "history")) == 3);
    for (int i = 0; i < 3; i++) {
        double la = hist_loss(a, i), lb = hist_loss(b, i);
        printf("%s step %d: 1 process loss %.12f, 2 ranks %.12f (rel %.3g)\n", tag, i + 1, la, lb,
               fabs(la - lb) / fabs(la));
        CHECK_MSG(fabs(la - lb) <= 1e-5 * fabs(la), "step %d loss %.12f vs %.12f", i + 1, la, lb);
    }
    if (strcmp(dropout, "0") == 0) CHECK(hist_loss(a, 2) < hist_loss(a, 0)); /* it trains */
    printf("%s: %g bytes per step, %g s in collectives\n", tag, dist_num(b, "comm_bytes_per_step"),
           dist_num(b, "comm_seconds"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    char d1[700], d2[700];
    snprintf(d1, sizeof d1, "%s/ckpt-3/behaviour", o1);
    snprintf(d2, sizeof d2, "%s/ckpt-3/behaviour", o2);
    snprintf(tag, sizeof tag, "%s encoder, dropout %s", shared ? "shared" : "behaviour", dropout);
    compare_params(d1, d2, tag, 3e-3);
    if (!shared) {
        snprintf(d1, sizeof d1, "%s/ckpt-3/rationale", o1);
        snprintf(d2, sizeof d2, "%s/ckpt-3/rationale", o2);
        snprintf(tag, sizeof tag, "rationale encoder, dropout %s", dropout);
        compare_params(d1, d2, tag, 3e-3);
    }
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_thXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char enc[512], pairs[512], cmd[2048];
    snprintf(enc, sizeof enc, "%s/enc", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    CHECK(write_model(enc, 0, 16, 2, 1, 32, 64, 3));
    FILE *f = fopen(pairs, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 23; i++) {
            const char *x = WORDS[i % 10], *y = WORDS[(i * 3 + 1) % 10];
            fprintf(f,
                    "{\"user\":\"u%d\",\"history\":[\"%s %s\",\"a b\"],\"answer\":\"%s\",\"rationale\":\"it "
                    "is %s and %s\"}\n",
                    i, x, y, x, x, y);
        }
        fclose(f);
    }
    compare(dir, enc, pairs, 0, "0");
    compare(dir, enc, pairs, 1, "0");
    compare(dir, enc, pairs, 0, "0.1"); /* masks per example: the same on any number of ranks */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
