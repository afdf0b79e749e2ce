/* tests/test_threads.c — a model's thread count is its own: loading an encoder or an LM with a thread count
 * leaves the caller's setting (pulse_get_num_threads, omp_get_max_threads) as it was, and so do their calls,
 * which run inside pulse_threads_enter / pulse_threads_leave with the model's count. Models: a tiny random
 * BERT (tests/tiny_encoder.h) and a synthetic llama GGUF (tests/lm_synth.h), so nothing is downloaded. */
#include <omp.h>
#include <stdint.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/encoder.h"
#include "pulse/kernels.h"
#include "pulse/lm.h"
#include "test.h"
#include "tiny_encoder.h"

#define BASE 3 /* the caller's setting; every model below asks for another count */

static int team_size(void) {
    int n = 0;
#pragma omp parallel
    {
#pragma omp single
        n = omp_get_num_threads();
    }
    return n;
}

static void scope(void) {
    CHECK(pulse_get_num_threads() == BASE);
    int prev = pulse_threads_enter(1);
    CHECK(prev == BASE);
    CHECK(omp_get_max_threads() == 1 && team_size() == 1);
    int inner = pulse_threads_enter(2); /* nested: a call inside a call */
    CHECK(inner == 1 && omp_get_max_threads() == 2);
    pulse_threads_leave(inner);
    CHECK(omp_get_max_threads() == 1);
    pulse_threads_leave(prev);
    CHECK(omp_get_max_threads() == BASE && pulse_get_num_threads() == BASE);
    prev = pulse_threads_enter(0); /* <= 0: as set */
    CHECK(omp_get_max_threads() == BASE);
    pulse_threads_leave(prev);
    CHECK(omp_get_max_threads() == BASE);
}

static void encoder(const char *dir) {
    static const char *const texts[] = {"the cat sat on the mat", "red nail polish", "a dog",
                                        "blue skin oil"};
    const int n = 4;
    pulse_encoder_params p = pulse_encoder_default_params();
    p.precision = PULSE_PREC_FP32;
    pulse_encoder *ref = NULL, *one = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &ref)); /* threads 0: the caller's setting */
    p.threads = 1;
    CHECK_OK(pulse_encoder_load(dir, &p, &one));
    CHECK_MSG(omp_get_max_threads() == BASE, "encoder load with threads 1: omp_get_max_threads() = %d",
              omp_get_max_threads());
    if (!ref || !one) {
        pulse_encoder_free(ref);
        pulse_encoder_free(one);
        return;
    }
    const int D = pulse_encoder_dim(one);
    float *a = calloc((size_t)n * D, sizeof *a), *b = calloc((size_t)n * D, sizeof *b);
    CHECK_OK(pulse_encoder_encode(ref, texts, n, a));
    CHECK_OK(pulse_encoder_encode(one, texts, n, b));
    CHECK_MSG(omp_get_max_threads() == BASE, "after encode: %d", omp_get_max_threads());
    double d = 0;
    for (int i = 0; i < n * D; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    CHECK_MSG(d < 1e-5, "1 thread vs %d: max |diff| %g", BASE, d);
    /* training calls too */
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.max_batch = n;
    CHECK_OK(pulse_encoder_train_begin(one, &tp));
    CHECK_OK(pulse_encoder_forward_train(one, texts, n, b));
    for (int i = 0; i < n * D; i++) a[i] = 0.01f * (float)(i % 7);
    CHECK_OK(pulse_encoder_backward(one, a));
    double gn = 0;
    CHECK_OK(pulse_encoder_step(one, 1e-4f, &gn));
    CHECK(gn > 0 && isfinite(gn));
    CHECK_MSG(omp_get_max_threads() == BASE, "after a training step: %d", omp_get_max_threads());
    /* the count can change after load; get_params reports it */
    pulse_encoder_params q = pulse_encoder_get_params(one);
    q.threads = 2;
    CHECK_OK(pulse_encoder_set_params(one, &q));
    CHECK(pulse_encoder_get_params(one).threads == 2);
    CHECK(omp_get_max_threads() == BASE);
    free(a);
    free(b);
    pulse_encoder_free(ref);
    pulse_encoder_free(one);
}

/* logits of SYNTH_TOKENS on one context of m with n_threads nt */
static int lm_logits(const pulse_lm *m, int nt, float *out) {
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = 64;
    cp.n_seq_max = 1;
    cp.n_threads = nt;
    pulse_lm_ctx *c = NULL;
    if (pulse_lm_ctx_new(m, &cp, &c) != PULSE_OK) return -1;
    CHECK_MSG(omp_get_max_threads() == BASE, "after ctx_new (n_threads %d): %d", nt, omp_get_max_threads());
    int s = pulse_lm_seq_new(c), seq[SYNTH_T];
    uint8_t want[SYNTH_T];
    for (int i = 0; i < SYNTH_T; i++) seq[i] = s, want[i] = 1;
    pulse_lm_batch b = {SYNTH_T, SYNTH_TOKENS, seq, want};
    pulse_status st = pulse_lm_decode(c, &b);
    CHECK_MSG(omp_get_max_threads() == BASE, "after decode (n_threads %d): %d", nt, omp_get_max_threads());
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    for (int i = 0; i < SYNTH_T && !st; i++)
        memcpy(out + (size_t)i * V, pulse_lm_logits(c, i), sizeof(float) * V);
    pulse_lm_ctx_free(c);
    return st == PULSE_OK ? 0 : -1;
}

static void lm(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/synth_llama.gguf", dir);
    CHECK(synth_write(&SYNTH_CFGS[0], path) == 0);
    pulse_lm_params p = pulse_lm_default_params();
    p.n_threads = 1;
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(path, &p, &m));
    CHECK_MSG(omp_get_max_threads() == BASE, "LM load with n_threads 1: omp_get_max_threads() = %d",
              omp_get_max_threads());
    if (!m) return;
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    float *a = malloc(sizeof(float) * SYNTH_T * V), *b = malloc(sizeof(float) * SYNTH_T * V);
    CHECK(lm_logits(m, 0, a) == 0); /* the model's 1 */
    CHECK(lm_logits(m, 2, b) == 0); /* the context's own */
    CHECK_MSG(memcmp(a, b, sizeof(float) * SYNTH_T * V) == 0, "logits differ between 1 and 2 threads");
    free(a);
    free(b);
    pulse_lm_free(m);
    CHECK(omp_get_max_threads() == BASE);
}

int main(void) {
    pulse_set_num_threads(BASE);
    char tmp[] = "/tmp/pulse_test_threads_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    scope();
    char bert[600];
    snprintf(bert, sizeof bert, "%s/bert", tmp);
    CHECK(write_model(bert, 0, 16, 2, 2, 32, 64, 7));
    encoder(bert);
    lm(tmp);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
