/* bench/encoder.c — encoder throughput on a real checkpoint (default all-MiniLM-L6-v2):
 *   inference: texts/s embedding N texts of exactly LEN tokens in batches of BATCH (tokenisation included);
 *   training: seconds per step of the Thought-Space shape — two encoders, B texts each of TLEN tokens,
 *             forward + InfoNCE-style loss (in-batch cosine / tau) + backward + AdamW on both.
 * The texts are the same deterministic word sequences bench/peers/encoder_torch.py builds.
 * --precision bf16: the matrix products of both (inference and training) in bf16 with fp32 sums
 * (pulse/kernels_bf16.h; fp32 fallback on a CPU without AVX512-BF16, reported as "bf16_kernel": false).
 * Usage: bench_encoder [--encoder DIR] [--threads 2] [--n 512] [--batch 64] [--len 64] [--train-batch 16]
 *                      [--train-len 128] [--steps 5] [--precision fp32|bf16]
 * Prints a human summary and, last, one JSON object. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pulse/core.h"
#include "pulse/encoder.h"
#include "pulse/kernels_bf16.h"

static const char *WORDS[] = {
    "the",     "skin",  "cream",  "hair",    "nail",    "polish", "oil",     "light",   "color",   "brush",
    "natural", "face",  "body",   "wash",    "shampoo", "dry",    "soft",    "fresh",   "scent",   "gentle",
    "daily",   "care",  "red",    "pink",    "gold",    "matte",  "gloss",   "lip",     "eye",     "liner",
    "mask",    "clean", "serum",  "vitamin", "organic", "smooth", "long",    "lasting", "formula", "set",
    "for",     "with",  "and",    "of",      "a",       "to",     "in",      "bought",  "because", "she",
    "likes",   "brand", "beauty", "value",   "quality", "shade",  "perfect", "travel",  "size",    "pack"};
#define NWORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

/* text i: 200 words chosen by (i * 7 + j * 13 + j * j) % NWORDS — every word is one WordPiece token */
static char *make_text(int i) {
    size_t cap = 200 * 12, o = 0;
    char *s = malloc(cap);
    for (int j = 0; j < 200; j++) {
        const char *w = WORDS[(i * 7 + j * 13 + j * j) % NWORDS];
        o += (size_t)snprintf(s + o, cap - o, "%s%s", j ? " " : "", w);
    }
    return s;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    const char *dir = NULL;
    int threads = 2, n = 512, batch = 64, len = 64, tb = 16, tlen = 128, steps = 5, prec = PULSE_PREC_FP32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--encoder"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--len"))
            len = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-batch"))
            tb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--train-len"))
            tlen = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--precision") && !strcmp(argv[i + 1], "fp32"))
            prec = PULSE_PREC_FP32;
        else if (!strcmp(argv[i], "--precision") && !strcmp(argv[i + 1], "bf16"))
            prec = PULSE_PREC_BF16;
        else {
            fprintf(stderr, "bench_encoder: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char def[1024];
    if (!dir) {
        const char *c = getenv("PULSE_CACHE");
        snprintf(def, sizeof def, "%s/encoders/minilm-l6", c ? c : ".cache");
        dir = def;
    }
    pulse_progress_set_quiet(1);
    pulse_set_num_threads(threads);
    char **texts = malloc(sizeof(char *) * (size_t)(n > 2 * tb ? n : 2 * tb));
    for (int i = 0; i < (n > 2 * tb ? n : 2 * tb); i++) texts[i] = make_text(i);

    /* ---- inference ---- */
    pulse_encoder_params p = pulse_encoder_default_params();
    p.max_len = len;
    p.batch_size = batch;
    p.precision = prec;
    pulse_encoder *enc = NULL;
    if (pulse_encoder_load(dir, &p, &enc)) {
        fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
        return 1;
    }
    const int D = pulse_encoder_dim(enc);
    int ids[512], k = 0;
    pulse_encoder_tokenize(enc, texts[0], ids, len, &k);
    float *out = malloc(sizeof(float) * (size_t)n * D);
    pulse_encoder_encode(enc, (const char *const *)texts, batch < n ? batch : n, out); /* warm-up */
    double t0 = pulse_now();
    if (pulse_encoder_encode(enc, (const char *const *)texts, n, out)) {
        fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
        return 1;
    }
    double t_inf = pulse_now() - t0, tps = n / t_inf;
    const char *pname = prec == PULSE_PREC_BF16 ? "bf16" : "fp32";
    printf("inference (%s): %d texts x %d tokens, batch %d, %d threads: %.3f s, %.1f texts/s\n", pname, n, k,
           batch, threads, t_inf, tps);
    pulse_encoder_free(enc);

    if (steps <= 0) { /* inference only */
        bench_emitf("{\"bench\":\"encoder\",\"impl\":\"pulse\",\"threads\":%d,\"precision\":\"%s\",\"infer_"
                    "texts\":%d,"
                    "\"infer_len\":%d,\"infer_batch\":%d,\"infer_texts_per_s\":%.1f}\n",
                    threads, pname, n, k, batch, tps);
        return 0;
    }
    /* ---- training: two encoders ---- */
    pulse_encoder *eb = NULL, *er = NULL;
    p.max_len = tlen;
    if (pulse_encoder_load(dir, &p, &eb) || pulse_encoder_load(dir, &p, &er)) {
        fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
        return 1;
    }
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.max_batch = tb;
    tp.precision = prec;
    if (pulse_encoder_train_begin(eb, &tp) || pulse_encoder_train_begin(er, &tp)) {
        fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
        return 1;
    }
    float *yb = malloc(sizeof(float) * (size_t)tb * D), *yr = malloc(sizeof(float) * (size_t)tb * D);
    float *db = malloc(sizeof(float) * (size_t)tb * D), *dr = malloc(sizeof(float) * (size_t)tb * D);
    float *prob = malloc(sizeof(float) * (size_t)tb * tb);
    double t_total = 0, loss = 0;
    for (int s = 0; s <= steps; s++) {
        double ts = pulse_now();
        pulse_encoder_zero_grad(eb);
        pulse_encoder_zero_grad(er);
        if (pulse_encoder_forward_train(eb, (const char *const *)texts, tb, yb) ||
            pulse_encoder_forward_train(er, (const char *const *)texts + tb, tb, yr)) {
            fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
            return 1;
        }
        /* InfoNCE over the batch, tau = 0.05: logits[i][j] = yb_i . yr_j / tau, label i */
        const float tau = 0.05f;
        memset(db, 0, sizeof(float) * (size_t)tb * D);
        memset(dr, 0, sizeof(float) * (size_t)tb * D);
        loss = 0;
        for (int i = 0; i < tb; i++) {
            float mx = -1e30f;
            for (int j = 0; j < tb; j++) {
                double dot = 0;
                for (int d = 0; d < D; d++) dot += (double)yb[i * D + d] * yr[j * D + d];
                prob[i * tb + j] = (float)(dot / tau);
                if (prob[i * tb + j] > mx) mx = prob[i * tb + j];
            }
            double z = exp(prob[i * tb + i] - mx); /* >= exp(min - max) > 0 */
            for (int j = 0; j < tb; j++)
                if (j != i) z += exp(prob[i * tb + j] - mx);
            loss += -(prob[i * tb + i] - mx - log(z)) / tb;
            for (int j = 0; j < tb; j++) {
                float g = (float)((exp(prob[i * tb + j] - mx) / z - (i == j)) / tb / tau);
                for (int d = 0; d < D; d++) {
                    db[i * D + d] += g * yr[j * D + d];
                    dr[j * D + d] += g * yb[i * D + d];
                }
            }
        }
        if (pulse_encoder_backward(eb, db) || pulse_encoder_backward(er, dr) ||
            pulse_encoder_step(eb, 0.0f, NULL) || pulse_encoder_step(er, 0.0f, NULL)) {
            fprintf(stderr, "bench_encoder: %s\n", pulse_last_error());
            return 1;
        }
        double dt = pulse_now() - ts;
        if (s > 0) t_total += dt; /* step 0 is the warm-up */
    }
    double sps = t_total / steps;
    printf(
        "training (%s): 2 encoders, batch %d x %d tokens, forward+backward+AdamW: %.3f s/step (loss %.4f)\n",
        pname, tb, tlen, sps, loss);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "encoder");
    cJSON_AddStringToObject(o, "impl", "pulse");
    cJSON_AddStringToObject(o, "encoder", dir);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddStringToObject(o, "precision", pname);
    cJSON_AddBoolToObject(o, "bf16_kernel", prec == PULSE_PREC_BF16 && pulse_bf16_supported());
    cJSON_AddNumberToObject(o, "infer_texts", n);
    cJSON_AddNumberToObject(o, "infer_len", k);
    cJSON_AddNumberToObject(o, "infer_batch", batch);
    cJSON_AddNumberToObject(o, "infer_texts_per_s", round(tps * 10) / 10);
    cJSON_AddNumberToObject(o, "train_batch", tb);
    cJSON_AddNumberToObject(o, "train_len", tlen);
    cJSON_AddNumberToObject(o, "train_s_per_step", round(sps * 10000) / 10000);
    char *js = cJSON_PrintUnformatted(o);
    bench_emit(js);
    free(js);
    cJSON_Delete(o);
    pulse_encoder_free(eb);
    pulse_encoder_free(er);
    for (int i = 0; i < (n > 2 * tb ? n : 2 * tb); i++) free(texts[i]);
    free(texts);
    free(out);
    free(yb);
    free(yr);
    free(db);
    free(dr);
    free(prob);
    return 0;
}
