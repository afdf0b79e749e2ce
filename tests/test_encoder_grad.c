/* tests/test_encoder_grad.c — the whole encoder backward against central finite differences, on tiny random
 * BERT and DistilBERT checkpoints written by the test (config.json + vocab.txt + model.safetensors):
 * embeddings (word, position, token type, LayerNorm), attention, FFN, LayerNorms, CLS / mean pooling, the
 * projection head and L2 normalisation, with padding in the batch; dropout off. Then: frozen layers get no
 * gradient and no update, AdamW + clipping move the trainable weights, training lowers a simple loss,
 * save -> load reproduces the outputs, the AdamW state round-trips, and bad inputs are refused; bf16
 * training products give the fp32 loss and gradients to within bf16 rounding; bf16 inference's packed weights
 * follow a training step and a write through params_data. */
#include <unistd.h>

#include "pulse/encoder.h"
#include "pulse/safetensors.h"
#include "test.h"
#include "pulse/kernels_bf16.h"
#include "tiny_encoder.h"

static const char *TEXTS[3] = {"the cat sat on the mat.", "red nail polish",
                               "a dog, a cat and blue skin oil"};

/* loss = sum out * R */
static double loss_of(pulse_encoder *e, const float *R, int B) {
    float out[3 * 64];
    pulse_encoder_forward_train(e, TEXTS, B, out);
    double s = 0;
    for (int i = 0; i < B * pulse_encoder_dim(e); i++) s += (double)out[i] * R[i];
    return s;
}

/* the tiny checkpoint loaded for training checks: max 16 tokens, the given pooling / normalisation */
static pulse_encoder *load_small(const char *dir, int pooling, int normalize) {
    pulse_encoder_params p = pulse_encoder_default_params();
    p.pooling = pooling;
    p.normalize = normalize;
    p.max_len = 16;
    pulse_encoder *e = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &e));
    return e;
}

static void fd_check(const char *dir, const char *what, int pooling, int normalize, int proj) {
    pulse_encoder *e = load_small(dir, pooling, normalize);
    if (!e) return;
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.dropout = 0.0f;
    tp.grad_clip = 0.0f;
    tp.max_batch = 3;
    tp.proj_dim = proj;
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    const int B = 3, D = pulse_encoder_dim(e);
    CHECK(D == (proj ? proj : pulse_encoder_hidden(e)));
    float R[3 * 64];
    pulse_rng r;
    pulse_rng_seed(&r, 7);
    for (int i = 0; i < B * D; i++) R[i] = pulse_rng_normal(&r);
    pulse_encoder_zero_grad(e);
    loss_of(e, R, B);
    CHECK_OK(pulse_encoder_backward(e, R));
    float *w = pulse_encoder_params_data(e);
    const float *g = pulse_encoder_grads_data(e);
    size_t n = pulse_encoder_n_params(e);
    float *ga = malloc(sizeof(float) * n);
    memcpy(ga, g, sizeof(float) * n);
    /* ids that occur: their word-embedding rows are checked, the rest must have exactly zero gradient */
    int used[NV] = {0}, ids[16], k = 0;
    for (int b = 0; b < B; b++) {
        CHECK_OK(pulse_encoder_tokenize(e, TEXTS[b], ids, 16, &k));
        for (int i = 0; i < k; i++) used[ids[i]] = 1;
    }
    const int C = pulse_encoder_hidden(e);
    const float h = 1e-3f;
    double max_err = 0, num = 0, den = 0;
    int checked = 0, bad = 0, zero_bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (i < (size_t)NV * C && !used[i / C]) {
            zero_bad += ga[i] != 0.0f;
            continue;
        }
        if (((i * 2654435761u) >> 7) % 5 != 0) continue; /* a fifth of the parameters, spread over all */
        float w0 = w[i];
        w[i] = w0 + h;
        double lp = loss_of(e, R, B);
        w[i] = w0 - h;
        double lm = loss_of(e, R, B);
        w[i] = w0;
        double fd = (lp - lm) / (2.0 * h), err = fabs(fd - ga[i]);
        if (err > 3e-3 + 3e-2 * fabs(fd)) {
            if (bad++ < 5)
                fprintf(stderr, "%s: param %zu: analytic %.6g, numeric %.6g\n", what, i, ga[i], fd);
        }
        max_err = err > max_err ? err : max_err;
        num += (fd - ga[i]) * (fd - ga[i]);
        den += fd * fd;
        checked++;
    }
    double rel = sqrt(num / (den + 1e-30));
    CHECK_MSG(bad == 0, "%s: %d of %d gradients off", what, bad, checked);
    CHECK_MSG(rel < 5e-3, "%s: relative L2 error %.3g", what, rel);
    CHECK_MSG(zero_bad == 0, "%s: %d unused embedding gradients are not zero", what, zero_bad);
    CHECK(den > 0);
    printf("%s: %d parameters checked, max abs err %.2e, relative L2 error %.2e\n", what, checked, max_err,
           rel);
    free(ga);
    pulse_encoder_free(e);
}

/* bf16 products (training precision) against fp32: the same loss and gradients up to bf16 input rounding
 * (the finite-difference checks above stay on fp32) */
static void bf16_vs_fp32(const char *dir) {
    pulse_encoder *e = load_small(dir, PULSE_POOL_MEAN, 1);
    if (!e) return;
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.dropout = 0.0f;
    tp.max_batch = 3;
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    const int B = 3, D = pulse_encoder_dim(e);
    const size_t n = pulse_encoder_n_params(e);
    float R[3 * 64];
    pulse_rng r;
    pulse_rng_seed(&r, 11);
    for (int i = 0; i < B * D; i++) R[i] = pulse_rng_normal(&r);
    double loss[2], num = 0, den = 0;
    float *g32 = malloc(sizeof(float) * n);
    for (int prec = 0; prec < 2; prec++) {
        tp.precision = prec ? PULSE_PREC_BF16 : PULSE_PREC_FP32;
        CHECK_OK(pulse_encoder_set_train_params(e, &tp));
        pulse_encoder_zero_grad(e);
        loss[prec] = loss_of(e, R, B);
        CHECK_OK(pulse_encoder_backward(e, R));
        const float *g = pulse_encoder_grads_data(e);
        if (!prec) memcpy(g32, g, sizeof(float) * n);
        for (size_t i = 0; prec && i < n; i++) {
            num += ((double)g[i] - g32[i]) * ((double)g[i] - g32[i]);
            den += (double)g32[i] * g32[i];
        }
    }
    const double rel = sqrt(num / (den + 1e-30));
    CHECK_MSG(fabs(loss[1] - loss[0]) < 2e-2 * (fabs(loss[0]) + 1) && rel < 3e-2 && den > 0,
              "bf16 training: loss %.6f vs fp32 %.6f, gradient relative L2 difference %.3g", loss[1], loss[0],
              rel);
    printf("bf16 training products%s: loss %.6f (fp32 %.6f), gradients relative L2 difference %.2e\n",
           pulse_bf16_supported() ? "" : " (no AVX512-BF16: fp32 fallback)", loss[1], loss[0], rel);
    free(g32);
    pulse_encoder_free(e);
}

static void training_checks(const char *dir, const char *tmp) {
    pulse_encoder *e = load_small(dir, PULSE_POOL_MEAN, 1);
    if (!e) return;
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.max_batch = 3;
    tp.freeze_layers = 1;
    tp.lr = 1e-2f;
    tp.grad_clip = 0.5f;
    tp.dropout = 0.1f;
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    size_t n = pulse_encoder_n_params(e);
    float *w0 = malloc(sizeof(float) * n);
    memcpy(w0, pulse_encoder_params_data(e), sizeof(float) * n);
    const int D = pulse_encoder_dim(e);
    /* a loss that pulls text 0 towards text 1's vector and away from text 2's: L = -cos(0,1) + cos(0,2) */
    double first = 0, last = 0;
    for (int it = 0; it < 30; it++) {
        float out[3 * 64], dout[3 * 64] = {0};
        pulse_encoder_zero_grad(e);
        CHECK_OK(pulse_encoder_forward_train(e, TEXTS, 3, out));
        double c01 = 0, c02 = 0;
        for (int d = 0; d < D; d++) {
            c01 += out[d] * out[D + d];
            c02 += out[d] * out[2 * D + d];
            dout[d] = -out[D + d] + out[2 * D + d];
            dout[D + d] = -out[d];
            dout[2 * D + d] = out[d];
        }
        if (it == 0) first = -c01 + c02;
        last = -c01 + c02;
        CHECK_OK(pulse_encoder_backward(e, dout));
        double gn = 0;
        CHECK_OK(pulse_encoder_step(e, 0.0f, &gn));
        CHECK(isfinite(gn) && gn > 0);
        if (it == 0) {
            /* clipping: after step the stored gradients were scaled to the clip norm (if above it) */
            double after = pulse_encoder_grad_norm(e);
            CHECK(gn <= 0.5 ? fabs(after - gn) < 1e-6 * (1 + gn) : fabs(after - 0.5) < 1e-3);
        }
    }
    printf("training (frozen lower layer, dropout 0.1): loss %.4f -> %.4f\n", first, last);
    CHECK_MSG(last < first - 0.1, "loss did not fall: %.4f -> %.4f", first, last);
    CHECK(pulse_encoder_train_step_count(e) == 30);
    /* the frozen prefix (embeddings + layer 0) is untouched, the rest moved */
    const float *w = pulse_encoder_params_data(e);
    size_t frozen = 0, moved = 0, i;
    for (i = 0; i < n && w[i] == w0[i]; i++) frozen++;
    for (; i < n; i++) moved += w[i] != w0[i];
    size_t C = (size_t)pulse_encoder_hidden(e);
    CHECK_MSG(frozen >= (size_t)NV * C, "only %zu leading params unchanged", frozen);
    CHECK(moved > (n - frozen) / 2);
    CHECK(pulse_encoder_grads_data(e)[0] == 0.0f);

    /* save -> load gives the same vectors; AdamW state round trip */
    float a[3 * 64], b[3 * 64];
    CHECK_OK(pulse_encoder_encode(e, TEXTS, 3, a));
    char path[512];
    snprintf(path, sizeof path, "%s/state.safetensors", tmp);
    CHECK_OK(pulse_encoder_save_train_state(e, path));
    char out_dir[512];
    snprintf(out_dir, sizeof out_dir, "%s/trained", tmp);
    CHECK_OK(pulse_encoder_save(e, out_dir));
    pulse_encoder *e2 = NULL;
    pulse_encoder_params p2 = pulse_encoder_default_params(); /* pooling from the saved config */
    p2.max_len = 16;
    CHECK_OK(pulse_encoder_load(out_dir, &p2, &e2));
    if (e2) {
        CHECK(pulse_encoder_get_params(e2).pooling == PULSE_POOL_MEAN);
        CHECK_OK(pulse_encoder_encode(e2, TEXTS, 3, b));
        double md = 0;
        for (int k = 0; k < 3 * D; k++) md = fmax(md, fabs(a[k] - b[k]));
        CHECK_MSG(md == 0.0, "reloaded encoder differs by %g", md);
        CHECK_OK(pulse_encoder_train_begin(e2, &tp));
        CHECK_OK(pulse_encoder_load_train_state(e2, path));
        CHECK(pulse_encoder_train_step_count(e2) == 30);
        pulse_encoder_free(e2);
    }
    /* refused: backward without forward state after a new train_begin, too large a batch, bad ids */
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    float dummy[3 * 64] = {0};
    CHECK(pulse_encoder_backward(e, dummy) == PULSE_ERR_STATE);
    const char *four[4] = {"a", "b", "c", "d"};
    CHECK(pulse_encoder_forward_train(e, four, 4, dummy) == PULSE_ERR_RANGE);
    int badids[4] = {2, 999, 3, 0}, lens[1] = {3};
    CHECK(pulse_encoder_encode_ids(e, badids, lens, 1, 4, dummy) == PULSE_ERR_RANGE);
    free(w0);
    pulse_encoder_free(e);
}

static void projection_head_save(const char *dir, const char *tmp) {
    pulse_encoder_params p = pulse_encoder_default_params();
    p.max_len = 16;
    pulse_encoder *e = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &e));
    if (!e) return;
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.max_batch = 3;
    tp.proj_dim = 8;
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    CHECK(pulse_encoder_dim(e) == 8);
    float a[3 * 8], b[3 * 8];
    CHECK_OK(pulse_encoder_encode(e, TEXTS, 3, a));
    char out_dir[512];
    snprintf(out_dir, sizeof out_dir, "%s/proj", tmp);
    CHECK_OK(pulse_encoder_save(e, out_dir));
    pulse_encoder *e2 = NULL;
    CHECK_OK(pulse_encoder_load(out_dir, &p, &e2));
    if (e2) {
        CHECK(pulse_encoder_dim(e2) == 8);
        CHECK_OK(pulse_encoder_encode(e2, TEXTS, 3, b));
        CHECK(memcmp(a, b, sizeof a) == 0);
        pulse_encoder_free(e2);
    }
    pulse_encoder_free(e);
}

static double cos_of(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb + 1e-30);
}

/* bf16 inference packs the weights once per encoder: the packs must follow every change of the weights (an
 * AdamW step, a write through params_data), i.e. bf16 inference keeps agreeing with fp32 inference */
static void packed_weights_follow(const char *dir) {
    pulse_encoder *e = load_small(dir, PULSE_POOL_MEAN, 1);
    if (!e) return;
    const int D = pulse_encoder_dim(e);
    float v0[64], v1[64], f1[64];
    pulse_encoder_params p = pulse_encoder_get_params(e);
    CHECK(p.precision == PULSE_PREC_AUTO); /* the default; bf16 asked for explicitly below */
    /* one text through bf16 (b = 1) and fp32 (b = 0) inference */
#define ENC(out, b)                                                                                          \
    do {                                                                                                     \
        p.precision = (b) ? PULSE_PREC_BF16 : PULSE_PREC_FP32;                                               \
        CHECK_OK(pulse_encoder_set_params(e, &p));                                                           \
        CHECK_OK(pulse_encoder_encode(e, TEXTS, 1, out));                                                    \
    } while (0)
    ENC(v0, 1);
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.dropout = 0.0f;
    tp.max_batch = 3;
    CHECK_OK(pulse_encoder_train_begin(e, &tp));
    float R[3 * 64], out[3 * 64];
    pulse_rng r;
    pulse_rng_seed(&r, 11);
    for (int i = 0; i < 3 * D; i++) R[i] = pulse_rng_normal(&r);
    pulse_encoder_zero_grad(e);
    CHECK_OK(pulse_encoder_forward_train(e, TEXTS, 3, out));
    CHECK_OK(pulse_encoder_backward(e, R));
    CHECK_OK(pulse_encoder_step(e, 0.05f, NULL));
    ENC(v1, 1);
    ENC(f1, 0);
    const double moved = cos_of(v0, v1, D), agree = cos_of(v1, f1, D);
    CHECK_MSG(moved < 0.99 && agree > 0.9995,
              "after a step: bf16 moved to cos %.6f, agrees with fp32 at %.6f", moved, agree);
    float *w = pulse_encoder_params_data(e); /* a write through the raw pointer */
    for (size_t i = 0; i < pulse_encoder_n_params(e); i++) w[i] += 0.1f * pulse_rng_normal(&r);
    float v2[64], f2[64];
    ENC(v2, 1);
    ENC(f2, 0);
    const double moved2 = cos_of(v1, v2, D), agree2 = cos_of(v2, f2, D);
    CHECK_MSG(moved2 < 0.99 && agree2 > 0.9995,
              "after a params_data write: bf16 moved to cos %.6f, agrees with fp32 at %.6f", moved2, agree2);
#undef ENC
    pulse_encoder_free(e);
}

int main(void) {
    char tmp[128], bert[160], distil[160], cmd[300];
    snprintf(tmp, sizeof tmp, "/tmp/pulse_test_encgrad_%d", (int)getpid());
    snprintf(bert, sizeof bert, "%s/bert", tmp);
    snprintf(distil, sizeof distil, "%s/distil", tmp);
    CHECK(write_model(bert, 0, 16, 2, 2, 32, 24, 11));
    CHECK(write_model(distil, 1, 16, 4, 2, 24, 24, 12));
    fd_check(bert, "bert mean+normalize", PULSE_POOL_MEAN, 1, 0);
    fd_check(bert, "bert cls+proj+normalize", PULSE_POOL_CLS, 1, 6);
    fd_check(distil, "distilbert cls", PULSE_POOL_CLS, 0, 0);
    fd_check(distil, "distilbert mean+proj", PULSE_POOL_MEAN, 0, 5);
    bf16_vs_fp32(bert);
    packed_weights_follow(bert);
    training_checks(bert, tmp);
    projection_head_save(distil, tmp);
    /* malformed folders are refused with a message */
    pulse_encoder *e = NULL;
    CHECK(pulse_encoder_load("/nonexistent/dir", NULL, &e) != PULSE_OK && e == NULL);
    snprintf(cmd, sizeof cmd, "%s/config.json", bert);
    FILE *f = fopen(cmd, "w");
    fputs("{\"model_type\": \"bert\", \"hidden_size\": 15, \"num_attention_heads\": 2}", f);
    fclose(f);
    CHECK(pulse_encoder_load(bert, NULL, &e) == PULSE_ERR_FORMAT);
    CHECK(strstr(pulse_last_error(), "config.json") != NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
