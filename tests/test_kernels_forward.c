/* tests/test_kernels_forward.c — forward kernels (include/pulse/kernels.h) against naive double-precision
 * loops on small random shapes: odd sizes, N == 1, masks, causal and non-causal attention, a fully masked
 * row, ignored cross-entropy targets, the L2-norm clamp. */
#include "test.h"
#include "kernels_util.h"
#include "kernels/internal.h"

static void test_matmul(int N, int C, int OC, int with_bias) {
    float *inp = ku_alloc((size_t)N * C), *w = ku_alloc((size_t)OC * C), *b = ku_alloc(OC);
    float *out = ku_alloc((size_t)N * OC);
    double *ref = (double *)calloc((size_t)N * OC, sizeof(double));
    ku_fill(inp, (size_t)N * C, -1, 1);
    ku_fill(w, (size_t)OC * C, -1, 1);
    ku_fill(b, OC, -1, 1);
    for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = NAN; /* forward must overwrite */
    pulse_matmul_forward(out, inp, w, with_bias ? b : NULL, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = with_bias ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[n * C + c] * w[o * C + c];
            ref[n * OC + o] = s;
        }
    double err = ku_max_abs_diff(out, ref, (size_t)N * OC);
    CHECK_MSG(err < 1e-4 * (1 + C / 16.0), "matmul N=%d C=%d OC=%d bias=%d err %.3g", N, C, OC, with_bias,
              err);
    free(inp), free(w), free(b), free(out), free(ref);
}

/* backward against naive double loops at shapes big enough for the OpenMP-split sgemm/sgemv/sger paths
 * (the finite-difference tests in test_kernels_grad.c use small shapes) */
static void test_matmul_backward_ref(int N, int C, int OC) {
    float *inp = ku_alloc((size_t)N * C), *w = ku_alloc((size_t)OC * C), *dout = ku_alloc((size_t)N * OC);
    float *di = ku_alloc((size_t)N * C), *dw = ku_alloc((size_t)OC * C), *db = ku_alloc(OC);
    double *rdi = (double *)calloc((size_t)N * C, sizeof(double)),
           *rdw = (double *)calloc((size_t)OC * C, sizeof(double));
    double *rdb = (double *)calloc(OC, sizeof(double));
    ku_fill(inp, (size_t)N * C, -1, 1);
    ku_fill(w, (size_t)OC * C, -1, 1);
    ku_fill(dout, (size_t)N * OC, -1, 1);
    for (size_t i = 0; i < (size_t)N * C; i++) rdi[i] = di[i] = 0.5f; /* accumulates onto existing values */
    for (size_t i = 0; i < (size_t)OC * C; i++) rdw[i] = dw[i] = -0.25f;
    for (int o = 0; o < OC; o++) rdb[o] = db[o] = 1.0f;
    pulse_matmul_backward(di, dw, db, dout, inp, w, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double d = dout[(size_t)n * OC + o];
            rdb[o] += d;
            for (int c = 0; c < C; c++) {
                rdi[(size_t)n * C + c] += d * w[(size_t)o * C + c];
                rdw[(size_t)o * C + c] += d * inp[(size_t)n * C + c];
            }
        }
    double tol_i = 1e-5 * (OC + 8), tol_w = 1e-5 * (N + 8);
    double ei = ku_max_abs_diff(di, rdi, (size_t)N * C), ew = ku_max_abs_diff(dw, rdw, (size_t)OC * C);
    double eb = ku_max_abs_diff(db, rdb, OC);
    CHECK_MSG(ei < tol_i && ew < tol_w && eb < tol_w,
              "matmul backward N=%d C=%d OC=%d: dinp %.3g dweight %.3g dbias %.3g", N, C, OC, ei, ew, eb);
    free(inp), free(w), free(dout), free(di), free(dw), free(db), free(rdi), free(rdw), free(rdb);
}

static void test_embedding(void) {
    const int N = 9, C = 5, V = 4;
    int ids[9] = {0, 3, 3, 1, -1, 4, 2, 0, 100};
    float *tab = ku_alloc(V * C), *out = ku_alloc(N * C);
    ku_fill(tab, V * C, -1, 1);
    for (int i = 0; i < N * C; i++) out[i] = NAN;
    pulse_embedding_forward(out, ids, tab, N, C, V);
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float want = (ids[n] >= 0 && ids[n] < V) ? tab[ids[n] * C + c] : 0.0f;
            if (out[n * C + c] != want) bad++;
        }
    CHECK_MSG(bad == 0, "embedding: %d wrong entries (out-of-range ids must give zeros)", bad);
    free(tab), free(out);
}

static void test_layernorm(int N, int C, int affine) {
    float *x = ku_alloc((size_t)N * C), *w = ku_alloc(C), *b = ku_alloc(C), *out = ku_alloc((size_t)N * C);
    float *mean = ku_alloc(N), *rstd = ku_alloc(N);
    double *ref = (double *)calloc((size_t)N * C, sizeof(double));
    ku_fill(x, (size_t)N * C, -2, 3);
    ku_fill(w, C, 0.5f, 1.5f);
    ku_fill(b, C, -1, 1);
    const float eps = 1e-5f;
    pulse_layernorm_forward(out, mean, rstd, x, affine ? w : NULL, affine ? b : NULL, N, C, eps);
    double merr = 0, rerr = 0;
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
        v /= C;
        double r = 1.0 / sqrt(v + eps);
        merr = fmax(merr, fabs(mean[n] - m));
        rerr = fmax(rerr, fabs(rstd[n] - r) / r);
        for (int c = 0; c < C; c++)
            ref[n * C + c] = (x[n * C + c] - m) * r * (affine ? w[c] : 1.0) + (affine ? b[c] : 0.0);
    }
    double err = ku_max_abs_diff(out, ref, (size_t)N * C);
    CHECK_MSG(err < 1e-5 && merr < 1e-6 && rerr < 1e-5, "layernorm N=%d C=%d: out %.3g mean %.3g rstd %.3g",
              N, C, err, merr, rerr);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(ref);
}

static void test_activations(void) {
    const size_t n = 1001;
    float *x = ku_alloc(n), *o = ku_alloc(n), *y = ku_alloc(n);
    double *ref = (double *)calloc(n, sizeof(double));
    ku_fill(x, n, -6, 6);
    x[0] = 0.0f;
    pulse_gelu_forward(o, x, n);
    for (size_t i = 0; i < n; i++) ref[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
    CHECK_MSG(ku_max_abs_diff(o, ref, n) < 2e-6, "gelu erf err %.3g", ku_max_abs_diff(o, ref, n));
    pulse_gelu_tanh_forward(o, x, n);
    for (size_t i = 0; i < n; i++)
        ref[i] = 0.5 * x[i] * (1.0 + tanh(sqrt(2.0 / M_PI) * (x[i] + 0.044715 * pow(x[i], 3))));
    CHECK_MSG(ku_max_abs_diff(o, ref, n) < 2e-6, "gelu tanh err %.3g", ku_max_abs_diff(o, ref, n));
    /* the two GELUs differ, but by little (max |diff| ~ 5e-4 near |x| ~ 2) */
    pulse_gelu_forward(y, x, n);
    double gd = 0;
    for (size_t i = 0; i < n; i++) gd = fmax(gd, fabs(o[i] - y[i]));
    CHECK_MSG(gd > 1e-5 && gd < 1e-3, "gelu erf vs tanh max diff %.3g", gd);
    pulse_relu_forward(o, x, n);
    for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
    CHECK(ku_max_abs_diff(o, ref, n) == 0.0);
    ku_fill(y, n, -1, 1);
    pulse_residual_forward(o, x, y, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] + y[i];
    CHECK(ku_max_abs_diff(o, ref, n) < 1e-6);
    /* big enough to take the OpenMP path */
    const size_t big = 100003;
    float *bx = ku_alloc(big), *bo = ku_alloc(big);
    ku_fill(bx, big, -4, 4);
    pulse_gelu_forward(bo, bx, big);
    int bad = 0;
    for (size_t i = 0; i < big; i++)
        if (fabs(bo[i] - 0.5 * bx[i] * (1.0 + erf(bx[i] / sqrt(2.0)))) > 2e-6) bad++;
    CHECK_MSG(bad == 0, "gelu (parallel) %d bad", bad);
    free(bx), free(bo);
    free(x), free(o), free(y), free(ref);
}

static void test_dropout(void) {
    const size_t n = 50000;
    float *x = ku_alloc(n), *o = ku_alloc(n);
    uint8_t *mask = (uint8_t *)malloc(n);
    ku_fill(x, n, -1, 1);
    pulse_rng r;
    pulse_rng_seed(&r, 7);
    pulse_dropout_forward(o, mask, x, n, 0.0f, &r);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != x[i] || mask[i] != 1;
    CHECK_MSG(bad == 0, "dropout p=0 must copy");
    const float p = 0.3f;
    pulse_dropout_forward(o, mask, x, n, p, &r);
    size_t kept = 0;
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        kept += mask[i];
        if (mask[i] > 1) bad++;
        float want = mask[i] ? x[i] / (1.0f - p) : 0.0f;
        if (fabsf(o[i] - want) > 1e-6f) bad++;
    }
    double frac = (double)kept / n;
    CHECK_MSG(bad == 0, "dropout out != inp * mask / (1 - p): %d", bad);
    CHECK_MSG(fabs(frac - 0.7) < 0.01, "dropout keep fraction %.4f, expected 0.7", frac);
    /* the rng advances: a second call gives a different mask */
    uint8_t *m2 = (uint8_t *)malloc(n);
    pulse_dropout_forward(o, m2, x, n, p, &r);
    CHECK(memcmp(mask, m2, n) != 0);
    /* a caller-drawn mask (pulse_dropout_apply) gives the kernel's own output for the same mask */
    float *o2 = ku_alloc(n);
    pulse_dropout_apply(o2, m2, x, n, p);
    CHECK_MSG(memcmp(o, o2, n * sizeof(float)) == 0, "dropout_apply differs from dropout_forward");
    pulse_dropout_apply(o2, m2, x, n, 0.0f);
    CHECK_MSG(memcmp(o2, x, n * sizeof(float)) == 0, "dropout_apply p=0 must copy");
    free(o2);
    pulse_dropout_forward(o, mask, x, n, 1.0f, &r);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != 0.0f || mask[i] != 0;
    CHECK_MSG(bad == 0, "dropout p=1 must zero");
    free(x), free(o), free(mask), free(m2);
}

/* naive double attention, same masking rules as the header */
static void ref_attention(double *out, double *att, const float *q, const float *k, const float *v,
                          const uint8_t *km, int B, int T, int C, int NH, int causal) {
    int hs = C / NH;
    double sc = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double *a = att + (((size_t)b * NH + h) * T + t) * T;
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    int vis = (!causal || j <= t) && (!km || km[b * T + j]);
                    if (!vis) {
                        a[j] = -INFINITY;
                        continue;
                    }
                    double s = 0;
                    for (int i = 0; i < hs; i++)
                        s += (double)q[(b * T + t) * C + h * hs + i] * k[(b * T + j) * C + h * hs + i];
                    a[j] = s * sc;
                    if (a[j] > mx) mx = a[j];
                }
                double sum = 0;
                for (int j = 0; j < T; j++) {
                    a[j] = (mx == -INFINITY || a[j] == -INFINITY) ? 0.0 : exp(a[j] - mx);
                    sum += a[j];
                }
                for (int j = 0; j < T; j++) a[j] = sum > 0 ? a[j] / sum : 0.0;
                for (int i = 0; i < hs; i++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) s += a[j] * v[(b * T + j) * C + h * hs + i];
                    out[(b * T + t) * C + h * hs + i] = s;
                }
            }
}

static void test_attention(int B, int T, int C, int NH, int causal, int use_mask) {
    size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *q = ku_alloc(n), *k = ku_alloc(n), *v = ku_alloc(n), *out = ku_alloc(n), *att = ku_alloc(na);
    double *rout = (double *)calloc(n, sizeof(double)), *ratt = (double *)calloc(na, sizeof(double));
    uint8_t *km = (uint8_t *)malloc((size_t)B * T);
    ku_fill(q, n, -2, 2);
    ku_fill(k, n, -2, 2);
    ku_fill(v, n, -1, 1);
    for (int i = 0; i < B * T; i++) km[i] = (pulse_rng_u64(&ku_rng) % 4) != 0;
    if (B > 1)
        for (int t = 0; t < T; t++) km[T + t] = 0; /* batch row 1 fully masked */
    km[0] = 0;                                     /* causal: query 0 of batch 0 sees nothing */
    for (size_t i = 0; i < n; i++) out[i] = NAN;
    for (size_t i = 0; i < na; i++) att[i] = NAN;
    pulse_attention_forward(out, att, q, k, v, use_mask ? km : NULL, B, T, C, NH, causal);
    ref_attention(rout, ratt, q, k, v, use_mask ? km : NULL, B, T, C, NH, causal);
    double eo = ku_max_abs_diff(out, rout, n), ea = ku_max_abs_diff(att, ratt, na);
    CHECK_MSG(eo < 1e-5 && ea < 1e-5, "attention B=%d T=%d C=%d NH=%d causal=%d mask=%d: out %.3g att %.3g",
              B, T, C, NH, causal, use_mask, eo, ea);
    /* rows sum to 1, or are all 0 when nothing is visible */
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                int vis = 0;
                for (int j = 0; j < T; j++) vis += (!causal || j <= t) && (!use_mask || km[b * T + j]);
                double s = 0;
                for (int j = 0; j < T; j++) s += att[(((size_t)b * NH + h) * T + t) * T + j];
                if (vis ? fabs(s - 1) > 1e-5 : s != 0) bad++;
                if (!vis)
                    for (int i = 0; i < C / NH; i++)
                        bad += out[((size_t)b * T + t) * C + h * (C / NH) + i] != 0.0f;
            }
    CHECK_MSG(bad == 0, "attention row sums / empty rows: %d bad", bad);
    free(q), free(k), free(v), free(out), free(att), free(rout), free(ratt), free(km);
}

static void test_softmax_ce(void) {
    const int N = 7, V = 11;
    float *x = ku_alloc(N * V), *d = ku_alloc(N * V), *loss = ku_alloc(N), *al = ku_alloc(N * V);
    int tg[7] = {3, -1, 0, 10, 5, -1, 7};
    ku_fill(x, N * V, -4, 4);
    x[2 * V + 0] = 40.0f; /* large logit: stable max subtraction */
    const float scale = 0.25f;
    double tot = pulse_crossentropy_forward_backward(d, loss, x, tg, N, V, scale);
    double rtot = 0, lerr = 0, derr = 0;
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, x[n * V + j]);
        for (int j = 0; j < V; j++) s += exp(x[n * V + j] - mx);
        double rl = tg[n] < 0 ? 0 : mx + log(s) - x[n * V + tg[n]];
        rtot += rl;
        lerr = fmax(lerr, fabs(loss[n] - rl));
        for (int j = 0; j < V; j++) {
            double g = tg[n] < 0 ? 0 : (exp(x[n * V + j] - mx) / s - (j == tg[n])) * scale;
            derr = fmax(derr, fabs(d[n * V + j] - g));
        }
    }
    CHECK_NEAR(tot, rtot, 1e-5);
    CHECK_MSG(lerr < 1e-5 && derr < 1e-6, "crossentropy loss err %.3g dlogits err %.3g", lerr, derr);
    /* dlogits aliasing logits */
    memcpy(al, x, sizeof(float) * N * V);
    double tot2 = pulse_crossentropy_forward_backward(al, NULL, al, tg, N, V, scale);
    CHECK(tot2 == tot);
    CHECK(memcmp(al, d, sizeof(float) * N * V) == 0);
    /* softmax rows */
    memcpy(al, x, sizeof(float) * N * V);
    for (int j = 0; j < V; j++) al[6 * V + j] = -INFINITY; /* an all -inf row becomes 0 */
    pulse_softmax_rows(al, N, V);
    double serr = 0;
    for (int n = 0; n < 6; n++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, x[n * V + j]);
        for (int j = 0; j < V; j++) s += exp(x[n * V + j] - mx);
        for (int j = 0; j < V; j++) serr = fmax(serr, fabs(al[n * V + j] - exp(x[n * V + j] - mx) / s));
    }
    int zero = 1;
    for (int j = 0; j < V; j++) zero &= al[6 * V + j] == 0.0f;
    CHECK_MSG(serr < 1e-6 && zero, "softmax_rows err %.3g", serr);
    free(x), free(d), free(loss), free(al);
}

static void test_bce(void) {
    const size_t n = 37;
    float *x = ku_alloc(n), *y = ku_alloc(n), *dx = ku_alloc(n);
    ku_fill(x, n, -8, 8);
    for (size_t i = 0; i < n; i++) y[i] = (i % 3 == 0) ? 0.5f : (float)(i & 1);
    x[0] = 90.0f;
    x[1] = -90.0f; /* no overflow in the stable form */
    double tot = pulse_bce_logits_forward_backward(dx, x, y, n, 2.0f);
    double rt = 0, derr = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        rt += fmax(x[i], 0) - (double)x[i] * y[i] + log1p(exp(-fabs(x[i])));
        derr = fmax(derr, fabs(dx[i] - 2.0 * (s - y[i])));
    }
    CHECK_MSG(isfinite(tot) && fabs(tot - rt) < 1e-4 && derr < 1e-6, "bce loss %.9g vs %.9g dx err %.3g", tot,
              rt, derr);
    free(x), free(y), free(dx);
}

static void test_l2norm(void) {
    const int N = 5, C = 9;
    float *x = ku_alloc(N * C), *o = ku_alloc(N * C), *nr = ku_alloc(N);
    ku_fill(x, N * C, -1, 1);
    for (int c = 0; c < C; c++) x[3 * C + c] = 1e-5f; /* below eps: clamped */
    for (int c = 0; c < C; c++) x[4 * C + c] = 0.0f;  /* zero row: stays zero, finite */
    const float eps = 1e-3f;
    pulse_l2norm_forward(o, nr, x, N, C, eps);
    double err = 0;
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)x[n * C + c] * x[n * C + c];
        double den = fmax(sqrt(s), eps);
        err = fmax(err, fabs(nr[n] - den) / den);
        for (int c = 0; c < C; c++) err = fmax(err, fabs(o[n * C + c] - x[n * C + c] / den));
    }
    CHECK_MSG(err < 1e-6, "l2norm err %.3g", err);
    free(x), free(o), free(nr);
}

/* the vectorisable exp / erf / tanh of kernels/internal.h against libm in double */
static void test_pk_math(void) {
    double we = 0, wf = 0, wt = 0;
    for (double x = -87.0; x < 88.0; x += 7e-4) {
        float xf = (float)x;
        double r = exp((double)xf);
        we = fmax(we, fabs(pk_expf(xf) - r) / r);
    }
    for (double x = -7.0; x < 7.0; x += 3e-5) {
        float xf = (float)x;
        wf = fmax(wf, fabs(pk_erff(xf) - erf((double)xf)));
        wt = fmax(wt, fabs(pk_tanhf(xf) - tanh((double)xf)));
    }
    CHECK_MSG(we < 2e-7, "pk_expf max rel err %.3g", we);
    CHECK_MSG(wf < 2.5e-7, "pk_erff max abs err %.3g", wf);
    CHECK_MSG(wt < 2e-7, "pk_tanhf max abs err %.3g", wt);
    CHECK(pk_expf(-INFINITY) == 0.0f && pk_expf(-100.0f) == 0.0f && pk_expf(0.0f) == 1.0f);
    CHECK(isfinite(pk_expf(1000.0f)) && pk_tanhf(60.0f) == 1.0f && pk_tanhf(-60.0f) == -1.0f);
    CHECK(pk_erff(0.0f) == 0.0f && pk_erff(9.0f) == 1.0f && pk_erff(-9.0f) == -1.0f);
}

static void test_utils(void) {
    const size_t n = 70001;
    float *g = ku_alloc(n);
    ku_fill(g, n, -1, 1);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    CHECK_NEAR(pulse_grad_norm_sq(g, n), s, 1e-9 * s);
    CHECK(pulse_grad_norm_sq(g, 0) == 0.0);
    float g5 = g[5];
    pulse_scale(g, n, -0.5f);
    CHECK(g[5] == g5 * -0.5f);
    free(g);
}

int main(void) {
    pulse_rng_seed(&ku_rng, 1234);
    int shapes[][3] = {{1, 7, 5}, {1, 64, 1}, {5, 1, 3}, {13, 17, 9}, {33, 64, 65}, {2, 3, 1}, {130, 20, 31}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bias = 0; bias < 2; bias++) test_matmul(shapes[i][0], shapes[i][1], shapes[i][2], bias);
    /* OpenMP-split products: rows, columns, gemv, odd sizes */
    int big[][3] = {{301, 64, 41}, {9, 100, 1003}, {1, 512, 4099}, {1, 4099, 512}, {257, 33, 129}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        test_matmul(big[i][0], big[i][1], big[i][2], 1);
        test_matmul_backward_ref(big[i][0], big[i][1], big[i][2]);
    }
    test_matmul_backward_ref(7, 5, 3);
    test_embedding();
    test_layernorm(1, 7, 1);
    test_layernorm(9, 33, 1);
    test_layernorm(600, 64, 0);
    test_activations();
    test_dropout();
    for (int causal = 0; causal < 2; causal++)
        for (int mask = 0; mask < 2; mask++) {
            test_attention(3, 7, 12, 3, causal, mask);
            test_attention(1, 1, 4, 1, causal, mask);
            test_attention(2, 33, 16, 2, causal, mask);
            test_attention(4, 40, 32, 2, causal, mask); /* takes the OpenMP path */
        }
    test_softmax_ce();
    test_bce();
    test_l2norm();
    test_pk_math();
    test_utils();
    return test_summary();
}
