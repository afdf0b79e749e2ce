/* tests/test_sasrec_parity.c — SASRec against PyTorch: loss and every parameter gradient for the CE and the
 * BCE loss, and the last-position scores, on the fixed batch of tests/fixtures/sasrec_parity.json (written by
 * scripts/sasrec_ref.py, a pmixer-style PyTorch SASRec in double precision). */
#include <cjson/cJSON.h>

#include "pulse/sasrec.h"
#include "test.h"

static int read_ints(const cJSON *a, int *out, int n) {
    int k = 0;
    for (const cJSON *row = a ? a->child : NULL; row; row = row->next)
        for (const cJSON *v = row->child; v; v = v->next) {
            if (k < n) out[k] = v->valueint;
            k++;
        }
    return k;
}

static int read_floats(const cJSON *a, float *out, int n) {
    int k = 0;
    for (const cJSON *v = a ? a->child : NULL; v; v = v->next) {
        if (cJSON_IsArray(v)) {
            for (const cJSON *w = v->child; w; w = w->next) {
                if (k < n) out[k] = (float)w->valuedouble;
                k++;
            }
        } else {
            if (k < n) out[k] = (float)v->valuedouble;
            k++;
        }
    }
    return k;
}

static void compare(const char *what, const float *got, const float *want, int n, double atol, double rtol) {
    int bad = 0;
    double maxe = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > maxe) maxe = e;
        if (e > atol + rtol * fabs(want[i])) {
            if (bad < 5)
                fprintf(stderr, "%s[%d]: pulse %.7g torch %.7g\n", what, i, (double)got[i], (double)want[i]);
            bad++;
        }
    }
    printf("%s: %d values, max abs diff %.2e\n", what, n, maxe);
    CHECK_MSG(bad == 0, "%s: %d of %d values differ", what, bad, n);
}

int main(void) {
    char *text;
    size_t len;
    CHECK_OK(pulse_read_file(PULSE_SOURCE_DIR "/tests/fixtures/sasrec_parity.json", &text, &len));
    cJSON *fx = cJSON_Parse(text);
    CHECK(fx != NULL);
    if (!fx) return test_summary();
    int ni = cJSON_GetObjectItem(fx, "n_items")->valueint, T = cJSON_GetObjectItem(fx, "maxlen")->valueint;
    int B = cJSON_GetArraySize(cJSON_GetObjectItem(fx, "inputs"));
    int *in = calloc((size_t)B * T, sizeof(int)), *tg = calloc((size_t)B * T, sizeof(int)),
        *ng = calloc((size_t)B * T, sizeof(int));
    CHECK(read_ints(cJSON_GetObjectItem(fx, "inputs"), in, B * T) == B * T);
    CHECK(read_ints(cJSON_GetObjectItem(fx, "targets"), tg, B * T) == B * T);
    CHECK(read_ints(cJSON_GetObjectItem(fx, "negatives"), ng, B * T) == B * T);
    for (int li = 0; li < 2; li++) {
        pulse_sasrec_params p = pulse_sasrec_default_params();
        p.dim = cJSON_GetObjectItem(fx, "dim")->valueint;
        p.blocks = cJSON_GetObjectItem(fx, "blocks")->valueint;
        p.heads = cJSON_GetObjectItem(fx, "heads")->valueint;
        p.maxlen = T;
        p.loss = li ? PULSE_SASREC_BCE : PULSE_SASREC_CE;
        pulse_sasrec *m = NULL;
        CHECK_OK(pulse_sasrec_create(ni, &p, &m));
        if (!m) break;
        int n = (int)pulse_sasrec_n_params(m);
        CHECK(read_floats(cJSON_GetObjectItem(fx, "params"), pulse_sasrec_params_ptr(m), n) == n);
        double loss = 0;
        CHECK_OK(pulse_sasrec_forward_backward(m, B, in, tg, li ? ng : NULL, 0, &loss));
        double want = cJSON_GetObjectItem(fx, li ? "bce_loss" : "ce_loss")->valuedouble;
        printf("%s loss: pulse %.7f torch %.7f\n", li ? "bce" : "ce", loss, want);
        CHECK_NEAR(loss, want, 1e-5 * fabs(want));
        float *wg = malloc(sizeof(float) * (size_t)n);
        CHECK(read_floats(cJSON_GetObjectItem(fx, li ? "bce_grads" : "ce_grads"), wg, n) == n);
        compare(li ? "bce grads" : "ce grads", pulse_sasrec_grads_ptr(m), wg, n, 2e-6, 1e-3);
        free(wg);
        if (li == 0) { /* eval scores from the histories (the non-padded part of each input row) */
            const int *hist[16];
            int hl[16];
            for (int b = 0; b < B && b < 16; b++) {
                int s = 0;
                while (s < T && in[b * T + s] == 0) s++;
                hist[b] = in + b * T + s;
                hl[b] = T - s;
            }
            float *sc = malloc(sizeof(float) * (size_t)B * (ni + 1)),
                  *ws = malloc(sizeof(float) * (size_t)B * ni), *g = malloc(sizeof(float) * (size_t)B * ni);
            CHECK_OK(pulse_sasrec_score(m, B, hist, hl, sc));
            for (int b = 0; b < B; b++)
                for (int i = 0; i < ni; i++) g[b * ni + i] = sc[b * (ni + 1) + 1 + i];
            CHECK(read_floats(cJSON_GetObjectItem(fx, "last_scores"), ws, B * ni) == B * ni);
            compare("last-position scores", g, ws, B * ni, 1e-5, 1e-4);
            free(sc);
            free(ws);
            free(g);
        }
        pulse_sasrec_free(m);
    }
    free(in);
    free(tg);
    free(ng);
    cJSON_Delete(fx);
    free(text);
    return test_summary();
}
