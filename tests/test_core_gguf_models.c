/* tests/test_core_gguf_models.c — parity of our GGUF reader and dequantisers with gguf-py (llama.cpp's Python
 * reader), from fixtures written by scripts/gguf_fixtures.py: (1) random-byte blocks of every type, always;
 * (2) tensors of the real SmolLM2 / Gemma-3 files (shape, type, first values, row sums, and qmatvec against
 * an f32 product of the dequantised rows) when the models are fetched (scripts/fetch-models.sh; found in
 * $PULSE_MODELS, $PULSE_CACHE/models or .cache/models), skipped otherwise. */
#include "test.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/gguf.h"
#include "pulse/quant.h"

static cJSON *load_json(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", PULSE_SOURCE_DIR, name);
    char *txt;
    size_t n;
    if (pulse_read_file(path, &txt, &n) != PULSE_OK) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    return j;
}

static int hexval(char c) {
    return c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

static void test_blocks(void) {
    cJSON *j = load_json("gguf_blocks.json");
    CHECK_MSG(j != NULL, "tests/fixtures/gguf_blocks.json missing or invalid");
    if (!j) return;
    cJSON *blocks = cJSON_GetObjectItem(j, "blocks"), *b;
    int ntypes = 0;
    for (b = blocks ? blocks->child : NULL; b; b = b->next) {
        const char *tn = cJSON_GetObjectItem(b, "type")->valuestring;
        int type = cJSON_GetObjectItem(b, "ggml_type")->valueint, n = cJSON_GetObjectItem(b, "n")->valueint;
        const char *hex = cJSON_GetObjectItem(b, "hex")->valuestring;
        size_t nb = strlen(hex) / 2;
        CHECK_MSG(nb == pulse_ggml_row_size(type, n), "%s: %zu bytes for %d elements", tn, nb, n);
        CHECK(strcmp(pulse_ggml_type_name(type), tn) == 0);
        uint8_t *raw = malloc(nb);
        for (size_t i = 0; i < nb; i++) raw[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        float *y = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
        pulse_dequantize_row(type, raw, y, n);
        pulse_dequantize_row_ref(type, raw, yr, n);
        cJSON *vals = cJSON_GetObjectItem(b, "values");
        int bad = 0, exact = 0;
        for (int i = 0; i < n; i++) {
            double want = cJSON_GetArrayItem(vals, i)->valuedouble;
            if (fabs(yr[i] - want) > 1e-6 * fabs(want) + 1e-30 || y[i] != yr[i]) {
                if (bad++ < 3)
                    fprintf(stderr, "%s[%d]: ours %.9g (avx2 %.9g), gguf-py %.9g\n", tn, i, yr[i], y[i],
                            want);
            }
            exact += (double)yr[i] == want;
        }
        CHECK_MSG(bad == 0, "%s: %d of %d values differ from gguf-py", tn, bad, n);
        printf("blocks %-5s %4d values, %4d bit-identical to gguf-py\n", tn, n, exact);
        ntypes++;
        free(raw), free(y), free(yr);
    }
    CHECK(ntypes >= 11);
    cJSON_Delete(j);
}

static const char *models_dir(char *buf, size_t n) {
    const char *e = getenv("PULSE_MODELS");
    if (e) return e;
    return test_cache_path(buf, n, "models");
}

static void test_model(const char *fixture) {
    cJSON *j = load_json(fixture);
    CHECK_MSG(j != NULL, "tests/fixtures/%s missing or invalid", fixture);
    if (!j) return;
    cJSON *tensors = cJSON_GetObjectItem(j, "tensors"), *t;
    CHECK(cJSON_GetArraySize(tensors) >= 5);
    for (t = tensors ? tensors->child : NULL; t; t = t->next)
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(t, "first")) > 0);
    const char *file = cJSON_GetObjectItem(j, "file")->valuestring;
    char dir[1024], path[1200];
    pulse_path_join(path, sizeof path, models_dir(dir, sizeof dir), file);
    if (!pulse_file_exists(path)) {
        test_skip_part("%s: %s not fetched (scripts/fetch-models.sh)", fixture, path);
        cJSON_Delete(j);
        return;
    }
    pulse_gguf *g;
    CHECK_OK(pulse_gguf_open(path, &g));
    if (!g) {
        cJSON_Delete(j);
        return;
    }
    CHECK((int)pulse_gguf_n_tensors(g) == cJSON_GetObjectItem(j, "n_tensors")->valueint);
    pulse_rng r;
    pulse_rng_seed(&r, 3);
    for (t = tensors ? tensors->child : NULL; t; t = t->next) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const pulse_gguf_tensor *ti = pulse_gguf_find_tensor(g, name);
        CHECK_MSG(ti != NULL, "%s: tensor %s missing", file, name);
        if (!ti) continue;
        CHECK_MSG((int)ti->type == cJSON_GetObjectItem(t, "ggml_type")->valueint, "%s type", name);
        cJSON *ne = cJSON_GetObjectItem(t, "ne");
        int64_t rows = 1;
        for (int d = 0; d < cJSON_GetArraySize(ne); d++) {
            CHECK(ti->ne[d] == (int64_t)cJSON_GetArrayItem(ne, d)->valuedouble);
            if (d > 0) rows *= ti->ne[d];
        }
        int64_t cols = ti->ne[0];
        size_t rs = pulse_ggml_row_size(ti->type, cols);
        CHECK(rs * (size_t)rows == ti->nbytes);
        float *y = malloc(sizeof(float) * cols);
        cJSON *first = cJSON_GetObjectItem(t, "first");
        pulse_dequantize_row(ti->type, ti->data, y, cols);
        int bad = 0;
        for (int i = 0; i < cJSON_GetArraySize(first); i++) {
            double want = cJSON_GetArrayItem(first, i)->valuedouble;
            bad += fabs(y[i] - want) > 1e-6 * fabs(want) + 1e-30;
        }
        CHECK_MSG(bad == 0, "%s %s: %d of the first values differ from gguf-py", file, name, bad);
        cJSON *rr, *rowsj = cJSON_GetObjectItem(t, "rows");
        int bad_sum = 0;
        for (rr = rowsj ? rowsj->child : NULL; rr; rr = rr->next) {
            int64_t ri = (int64_t)cJSON_GetObjectItem(rr, "row")->valuedouble;
            pulse_dequantize_row(ti->type, (const uint8_t *)ti->data + (size_t)ri * rs, y, cols);
            double s = 0, as = 0;
            for (int64_t i = 0; i < cols; i++) s += y[i], as += fabs(y[i]);
            double ws = cJSON_GetObjectItem(rr, "sum")->valuedouble,
                   was = cJSON_GetObjectItem(rr, "abs_sum")->valuedouble;
            if (fabs(s - ws) > 1e-6 * was + 1e-9 || fabs(as - was) > 1e-6 * was + 1e-9) {
                if (bad_sum++ < 2)
                    fprintf(stderr, "%s row %lld: sum %.9g vs %.9g\n", name, (long long)ri, s, ws);
            }
        }
        CHECK_MSG(bad_sum == 0, "%s %s: row sums differ from gguf-py", file, name);
        /* qmatvec on real weights vs f32 dot of the dequantised rows (first 64 rows) */
        if (rows > 1) {
            int nr = rows < 64 ? (int)rows : 64;
            float *x = malloc(sizeof(float) * cols), *out = malloc(sizeof(float) * nr);
            for (int64_t i = 0; i < cols; i++) x[i] = pulse_rng_normal(&r);
            pulse_qmatvec(out, ti->data, ti->type, x, nr, (int)cols);
            int bad_mv = 0;
            for (int i = 0; i < nr; i++) {
                pulse_dequantize_row(ti->type, (const uint8_t *)ti->data + (size_t)i * rs, y, cols);
                double e = 0, a = 0;
                for (int64_t k = 0; k < cols; k++) e += (double)y[k] * x[k], a += fabs((double)y[k] * x[k]);
                bad_mv += fabs(out[i] - e) > 0.005 * a + 1e-6;
            }
            CHECK_MSG(bad_mv == 0, "%s %s: qmatvec off on %d rows", file, name, bad_mv);
            free(x), free(out);
        }
        free(y);
        printf("%s %-28s %-5s ok\n", file, name, pulse_ggml_type_name(ti->type));
    }
    pulse_gguf_close(g);
    cJSON_Delete(j);
}

int main(void) {
    test_blocks();
    test_model("gguf_smollm2.json");
    test_model("gguf_gemma3.json");
    return test_summary();
}
