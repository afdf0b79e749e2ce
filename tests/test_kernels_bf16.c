/* tests/test_kernels_bf16.c — the bf16 GEMM (include/pulse/kernels_bf16.h): the AVX512-BF16 kernel (or, on a
 * CPU without it, the fp32 fallback) against the scalar reference on every transpose combination, odd and
 * edge sizes (M, N not multiples of the 8 x 48 tile, odd K, K across several 256 blocks), alpha/beta, and
 * beta == 0 over a NaN-filled C; the bf16 linear layer against naive double loops on bf16-rounded inputs;
 * the fused forwards (bias + GELU, bias + residual, column-split outputs) against the plain ones; the
 * rounding itself (ties to even, NaN); the bf16 attention against its scalar reference and the fp32 kernel;
 * the product with A given in bf16 and the CE writing a bf16 gradient, bit for bit against the float forms.
 */
#include <float.h>

#include "test.h"
#include "kernels_util.h"
#include "pulse/kernels_bf16.h"

/* the bf16 bit pattern of pulse_bf16_round(x) */
static uint16_t ku_bf16_bits(float x) {
    float r = pulse_bf16_round(x);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    return (uint16_t)(u >> 16);
}

static void test_round(void) {
    CHECK(pulse_bf16_round(1.0f) == 1.0f);
    CHECK(pulse_bf16_round(-2.5f) == -2.5f);
    /* 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to even gives 1 */
    CHECK(pulse_bf16_round(1.0f + 1.0f / 256.0f) == 1.0f);
    /* 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: ties to even gives 1 + 2^-6 */
    CHECK(pulse_bf16_round(1.0f + 3.0f / 256.0f) == 1.0f + 1.0f / 64.0f);
    CHECK(pulse_bf16_round(1.0f + 1.5f / 256.0f) == 1.0f + 1.0f / 128.0f);
    CHECK(isnan(pulse_bf16_round(NAN)));
    CHECK(isinf(pulse_bf16_round(INFINITY)));
    float x = 0.123456789f, r = pulse_bf16_round(x);
    CHECK(fabsf(r - x) <= fabsf(x) / 256.0f);
}

/* max |C - Cref| relative to sum_k |a||b| (the scale of the fp32 rounding of a sum of K products) */
static void test_gemm(int ta, int tb, int M, int N, int K, float alpha, float beta) {
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = ku_alloc(na), *B = ku_alloc(nb), *C = ku_alloc(nc), *R = ku_alloc(nc);
    ku_fill(A, na, -1, 1);
    ku_fill(B, nb, -1, 1);
    if (beta == 0.0f) {
        for (size_t i = 0; i < nc; i++) C[i] = R[i] = NAN; /* must not be read */
    } else {
        ku_fill(C, nc, -1, 1);
        memcpy(R, C, nc * sizeof(float));
    }
    float *R0 = ku_alloc(nc);
    memcpy(R0, C, nc * sizeof(float));
    pulse_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    pulse_gemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    /* without the bf16 kernel the fallback is fp32 sgemm: it differs from the reference by the input
     * rounding, |a b| 2^-8 per product */
    const double tol = pulse_bf16_supported() ? 2e-6 * (K + 16) : 8e-3 * (K + 16) / 4;
    double err = 0.0;
    int untouched = 1;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < ldc; n++) {
            size_t i = (size_t)m * ldc + n;
            if (n >= N) { /* padding columns of C stay as they were */
                if (!(C[i] == R[i] || (isnan(C[i]) && isnan(R[i])))) untouched = 0;
                continue;
            }
            double d = fabs((double)C[i] - R[i]);
            if (!(d <= err)) err = d;
        }
    CHECK_MSG(err < tol * fabs(alpha) + 1e-6 && untouched,
              "gemm_bf16 ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: err %.3g (tol %.3g) untouched %d", ta,
              tb, M, N, K, alpha, beta, err, tol, untouched);
    /* A given in bf16 (pulse_gemm_bf16a): the kernel's product bit for bit (it converted A the same way);
     * the fallback (exact widening, then fp32) within the reference's tolerance */
    uint16_t *A16 = malloc(na * sizeof(uint16_t));
    float *C2 = ku_alloc(nc);
    for (size_t i = 0; i < na; i++) A16[i] = ku_bf16_bits(A[i]);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) C2[i] = NAN;
    else
        memcpy(C2, R0, nc * sizeof(float));
    pulse_gemm_bf16a(ta, tb, M, N, K, alpha, A16, lda, B, ldb, beta, C2, ldc);
    int same = 1;
    double err2 = 0.0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            size_t i = (size_t)m * ldc + n;
            same &= memcmp(&C2[i], &C[i], sizeof(float)) == 0;
            double d = fabs((double)C2[i] - R[i]);
            if (!(d <= err2)) err2 = d;
        }
    if (pulse_bf16_supported())
        CHECK_MSG(same, "gemm_bf16a ta=%d tb=%d M=%d N=%d K=%d: differs from gemm_bf16", ta, tb, M, N, K);
    else
        CHECK_MSG(err2 < tol * fabs(alpha) + 1e-6, "gemm_bf16a fallback ta=%d tb=%d M=%d N=%d K=%d: err %.3g",
                  ta, tb, M, N, K, err2);
    free(A16), free(C2);
    free(A), free(B), free(C), free(R), free(R0);
}

/* the CE with a bf16 gradient: the fp32 form's gradient rounded to bf16 and its row losses bit for bit (the
 * total within the order of the double sums) */
static void test_ce_bf16(int N, int V) {
    float *x = ku_alloc((size_t)N * V), *x2 = ku_alloc((size_t)N * V), *l1 = ku_alloc(N), *l2 = ku_alloc(N);
    uint16_t *d16 = malloc(sizeof(uint16_t) * (size_t)N * V);
    int *tg = malloc(sizeof(int) * N);
    ku_fill(x, (size_t)N * V, -8, 8);
    memcpy(x2, x, sizeof(float) * (size_t)N * V);
    for (int n = 0; n < N; n++) tg[n] = n == 1 ? -1 : (n * 7919) % V; /* row 1: no target */
    double a = pulse_crossentropy_forward_backward(x, l1, x, tg, N, V, 0.25f);
    double b = pulse_crossentropy_forward_backward_bf16(d16, l2, x2, tg, N, V, 0.25f);
    int same = 1;
    for (size_t i = 0; i < (size_t)N * V; i++) same &= d16[i] == ku_bf16_bits(x[i]);
    for (int n = 0; n < N; n++) same &= l1[n] == l2[n];
    CHECK_MSG(same && fabs(a - b) <= 1e-9 * fabs(a), "ce bf16 N=%d V=%d: loss %.17g vs %.17g, same %d", N, V,
              b, a, same);
    free(x), free(x2), free(l1), free(l2), free(d16), free(tg);
}

/* the bf16 linear layer against double loops on bf16-rounded inputs */
static void test_linear(int N, int C, int OC) {
    float *inp = ku_alloc((size_t)N * C), *w = ku_alloc((size_t)OC * C), *b = ku_alloc(OC);
    float *out = ku_alloc((size_t)N * OC), *dout = ku_alloc((size_t)N * OC);
    float *di = ku_alloc((size_t)N * C), *dw = ku_alloc((size_t)OC * C), *db = ku_alloc(OC);
    double *ro = calloc((size_t)N * OC, sizeof(double)), *rdi = calloc((size_t)N * C, sizeof(double)),
           *rdw = calloc((size_t)OC * C, sizeof(double)), *rdb = calloc(OC, sizeof(double));
    ku_fill(inp, (size_t)N * C, -1, 1);
    ku_fill(w, (size_t)OC * C, -1, 1);
    ku_fill(b, OC, -1, 1);
    ku_fill(dout, (size_t)N * OC, -1, 1);
    for (size_t i = 0; i < (size_t)N * C; i++) rdi[i] = di[i] = 0.5f; /* backward accumulates */
    for (size_t i = 0; i < (size_t)OC * C; i++) rdw[i] = dw[i] = -0.25f;
    for (int o = 0; o < OC; o++) rdb[o] = db[o] = 1.0f;
    pulse_matmul_forward_bf16(out, inp, w, b, N, C, OC);
    pulse_matmul_backward_bf16(di, dw, db, dout, inp, w, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b[o], d = dout[(size_t)n * OC + o], dr = pulse_bf16_round(dout[(size_t)n * OC + o]);
            for (int c = 0; c < C; c++)
                s +=
                    (double)pulse_bf16_round(inp[(size_t)n * C + c]) * pulse_bf16_round(w[(size_t)o * C + c]);
            ro[(size_t)n * OC + o] = s;
            rdb[o] += d;
            for (int c = 0; c < C; c++) {
                rdi[(size_t)n * C + c] += dr * pulse_bf16_round(w[(size_t)o * C + c]);
                rdw[(size_t)o * C + c] += dr * pulse_bf16_round(inp[(size_t)n * C + c]);
            }
        }
    const double scale = pulse_bf16_supported() ? 2e-6 : 8e-3 / 4;
    double eo = ku_max_abs_diff(out, ro, (size_t)N * OC), ei = ku_max_abs_diff(di, rdi, (size_t)N * C);
    double ew = ku_max_abs_diff(dw, rdw, (size_t)OC * C), eb = ku_max_abs_diff(db, rdb, OC);
    CHECK_MSG(eo < scale * (C + 16) && ei < scale * (OC + 16) && ew < scale * (N + 16) && eb < 1e-4 * (N + 8),
              "linear bf16 N=%d C=%d OC=%d: out %.3g dinp %.3g dweight %.3g dbias %.3g", N, C, OC, eo, ei, ew,
              eb);
    free(inp), free(w), free(b), free(out), free(dout), free(di), free(dw), free(db);
    free(ro), free(rdi), free(rdw), free(rdb);
}

/* the fused forwards against the plain bf16 forward followed by the separate fp32 kernels */
static void test_fused(int N, int C, int OC, int nout, int packed) {
    float *inp = ku_alloc((size_t)N * C), *w = ku_alloc((size_t)OC * C), *b = ku_alloc(OC);
    float *res = ku_alloc((size_t)N * OC), *ref = ku_alloc((size_t)N * OC), *refg = ku_alloc((size_t)N * OC);
    float *out = ku_alloc((size_t)N * OC), *g = ku_alloc((size_t)N * OC);
    ku_fill(inp, (size_t)N * C, -1, 1);
    ku_fill(w, (size_t)OC * C, -1, 1);
    ku_fill(b, OC, -1, 1);
    ku_fill(res, (size_t)N * OC, -1, 1);
    const size_t n = (size_t)N * OC;
    /* packed: the weight converted once (pulse_bf16_weight_pack); the results must not change */
    pulse_bf16_weight *pw = packed ? pulse_bf16_weight_pack(w, OC, C) : NULL;
    if (packed) CHECK(pulse_bf16_supported() ? pw != NULL : pw == NULL);
    pulse_matmul_forward_bf16(ref, inp, w, b, N, C, OC);
    pulse_gelu_forward(refg, ref, n);
    double e_h = 0, e_g = 0, e_g1 = 0, e_r = 0, e_s = 0;
    pulse_matmul_forward_gelu_bf16(out, g, inp, w, b, N, C, OC, NULL);
    for (size_t i = 0; i < n; i++)
        e_h = fmax(e_h, fabs(out[i] - ref[i])), e_g = fmax(e_g, fabs(g[i] - refg[i]));
    /* the epilogue's GELU of its own h against double erf: |error| <= 2e-6 max(1, |h|) */
    double e_gd = 0;
    for (size_t i = 0; i < n; i++) {
        const double h = out[i], gd = 0.5 * h * (1.0 + erf(h / sqrt(2.0)));
        e_gd = fmax(e_gd, fabs(g[i] - gd) / fmax(1.0, fabs(h)));
    }
    CHECK_MSG(e_gd < 2e-6, "fused bf16 GELU vs double erf: %.3g", e_gd);
    memset(g, 0, n * sizeof(float));
    pulse_matmul_forward_gelu_bf16(NULL, g, inp, w, b, N, C, OC, pw);
    for (size_t i = 0; i < n; i++) e_g1 = fmax(e_g1, fabs(g[i] - refg[i]));
    pulse_matmul_forward_residual_bf16(out, inp, w, b, res, N, C, OC, pw);
    for (size_t i = 0; i < n; i++) e_r = fmax(e_r, fabs(out[i] - (ref[i] + res[i])));
    /* split: output i holds columns [i OC / nout, (i + 1) OC / nout) */
    float *outs[4];
    const int seg = OC / nout;
    for (int i = 0; i < nout; i++) outs[i] = ku_alloc((size_t)N * seg);
    pulse_matmul_forward_split_bf16(outs, nout, inp, w, b, N, C, OC, pw);
    /* relative to the sum of |terms| |b| + sum_c |x w|: without the bf16 kernel the split is nout fp32
     * products of OC / nout columns each, and OpenBLAS's Haswell / Zen sgemm sums K in an order that depends
     * on the number of columns (N=130 C=600 OC=96: 854 of 12,480 outputs differ by up to 0.75 FLT_EPSILON of
     * that sum, the whole and the split both within 0.85 FLT_EPSILON of it from the exact one); a wrong term
     * is |x w| ~ 1/C of it, far above the bound */
    for (int i = 0; i < nout; i++)
        for (int r = 0; r < N; r++)
            for (int c = 0; c < seg; c++) {
                const int o = i * seg + c;
                double t = fabs(b[o]);
                for (int k = 0; k < C; k++) t += fabs((double)inp[(size_t)r * C + k] * w[(size_t)o * C + k]);
                e_s = fmax(e_s, fabs(outs[i][(size_t)r * seg + c] - ref[(size_t)r * OC + o]) / t);
            }
    /* input gradient through GELU: dh = (dout @ W) * GELU'(h), here with dout = res (N, OC), W (OC, C) */
    float *dh = ku_alloc((size_t)N * C), *dref = ku_alloc((size_t)N * C), *dg = ku_alloc((size_t)N * C);
    float *hh = ku_alloc((size_t)N * C);
    ku_fill(hh, (size_t)N * C, -3, 3);
    pulse_matmul_backward_bf16(dg, NULL, NULL, res, inp, w, N, C, OC); /* dg = 0 + res @ W */
    pulse_gelu_backward(dref, hh, dg, (size_t)N * C);                  /* dref = 0 + dg * GELU'(h) */
    pulse_matmul_backward_gelu_bf16(dh, res, w, hh, N, C, OC);
    double e_d = 0;
    for (size_t i = 0; i < (size_t)N * C; i++) e_d = fmax(e_d, fabs(dh[i] - dref[i]));
    free(dh), free(dref), free(dg), free(hh);
    CHECK_MSG(e_h < 1e-5 && e_g < 1e-5 && e_g1 < 1e-5 && e_r < 1e-5 && e_s < 8 * FLT_EPSILON && e_d < 1e-5,
              "fused bf16 N=%d C=%d OC=%d: h %.3g gelu %.3g gelu-only %.3g residual %.3g split(%d) %.3g (of "
              "the sum "
              "of |terms|) dgelu %.3g",
              N, C, OC, e_h, e_g, e_g1, e_r, nout, e_s, e_d);
    for (int i = 0; i < nout; i++) free(outs[i]);
    if (pw) { /* a packed weight of another shape is not used: the call converts its weight */
        pulse_bf16_weight *other = pulse_bf16_weight_pack(w, OC, C > 1 ? C - 1 : 1);
        pulse_matmul_forward_residual_bf16(out, inp, w, b, res, N, C, OC, other);
        double e_o = 0;
        for (size_t i = 0; i < n; i++) e_o = fmax(e_o, fabs(out[i] - (ref[i] + res[i])));
        CHECK_MSG(e_o < 1e-5, "packed weight of another shape: %.3g", e_o);
        pulse_bf16_weight_free(other);
    }
    pulse_bf16_weight_free(pw);
    free(inp), free(w), free(b), free(res), free(ref), free(refg), free(out), free(g);
}

/* the one-pass inference FFN against the two fused forwards (the same bf16 roundings; sums split differently
 * over K): GELU(x W1^T + b1) W2^T + b2 (+ res) */
static void test_ffn(int N, int C, int FF, int with_res) {
    float *x = ku_alloc((size_t)N * C), *w1 = ku_alloc((size_t)FF * C), *b1 = ku_alloc(FF);
    float *w2 = ku_alloc((size_t)C * FF), *b2 = ku_alloc(C), *res = ku_alloc((size_t)N * C);
    float *h = ku_alloc((size_t)N * FF), *ref = ku_alloc((size_t)N * C), *out = ku_alloc((size_t)N * C);
    float *h2 = ku_alloc((size_t)N * FF);
    ku_fill(x, (size_t)N * C, -1, 1);
    ku_fill(w1, (size_t)FF * C, -0.2f, 0.2f);
    ku_fill(b1, FF, -1, 1);
    ku_fill(w2, (size_t)C * FF, -0.2f, 0.2f);
    ku_fill(b2, C, -1, 1);
    ku_fill(res, (size_t)N * C, -1, 1);
    pulse_bf16_weight *p1 = pulse_bf16_weight_pack(w1, FF, C), *p2 = pulse_bf16_weight_pack(w2, C, FF);
    pulse_matmul_forward_gelu_bf16(NULL, h, x, w1, b1, N, C, FF, NULL);
    if (with_res)
        pulse_matmul_forward_residual_bf16(ref, h, w2, b2, res, N, FF, C, NULL);
    else
        pulse_matmul_forward_bf16(ref, h, w2, b2, N, FF, C);
    for (size_t i = 0; i < (size_t)N * C; i++) out[i] = NAN;
    pulse_ffn_forward_bf16(out, h2, x, w1, b1, w2, b2, with_res ? res : NULL, N, C, FF, p1, p2);
    double e = 0, scale = 0;
    for (size_t i = 0; i < (size_t)N * C; i++) {
        e = isnan(out[i]) ? INFINITY : fmax(e, fabs((double)out[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    CHECK_MSG(e <= 1e-5 * (scale + 1), "ffn bf16 N=%d C=%d FF=%d res=%d: max diff %.3g (scale %.3g)", N, C,
              FF, with_res, e, scale);
    /* without packed weights it must take the two-product path (a dispatch check: those are the calls the
     * reference made, so the numbers are the same); without the bf16 kernel both calls are that path */
    for (size_t i = 0; i < (size_t)N * C; i++) out[i] = NAN;
    pulse_ffn_forward_bf16(out, h2, x, w1, b1, w2, b2, with_res ? res : NULL, N, C, FF, NULL, NULL);
    double e2 = 0;
    for (size_t i = 0; i < (size_t)N * C; i++)
        e2 = isnan(out[i]) ? INFINITY : fmax(e2, fabs((double)out[i] - ref[i]));
    CHECK_MSG(e2 <= 1e-6 * (scale + 1), "ffn bf16 unpacked N=%d C=%d FF=%d: %.3g", N, C, FF, e2);
    pulse_bf16_weight_free(p1);
    pulse_bf16_weight_free(p2);
    free(x), free(w1), free(b1), free(w2), free(b2), free(res), free(h), free(ref), free(out), free(h2);
}

/* bf16 attention against its scalar reference (probabilities to fp32 level; out: the mean error at fp32
 * level, the largest within one bf16 step of one probability (<= 2^-8 |v| <= 3.9e-3), as a last-bit
 * difference of a probability can flip its rounding) and against the fp32 kernel (bf16 level) */
static void test_attention(int B, int T, int C, int NH, int causal, int masked) {
    const size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *q = ku_alloc(n), *k = ku_alloc(n), *v = ku_alloc(n), *o = ku_alloc(n), *ro = ku_alloc(n);
    float *fo = ku_alloc(n), *a = ku_alloc(na), *ra = ku_alloc(na), *fa = ku_alloc(na);
    uint8_t *km = malloc((size_t)B * T);
    ku_fill(q, n, -2, 2);
    ku_fill(k, n, -2, 2);
    ku_fill(v, n, -1, 1);
    for (int b = 0; b < B; b++) /* sequence b: its first T - 3b keys visible; the last sequence none */
        for (int t = 0; t < T; t++) km[b * T + t] = b == B - 1 && B > 1 ? 0 : t < T - 3 * b;
    for (size_t i = 0; i < n; i++) o[i] = NAN; /* every output element is written */
    const uint8_t *m = masked ? km : NULL;
    pulse_attention_forward_bf16(o, a, q, k, v, m, B, T, C, NH, causal);
    pulse_attention_forward_bf16_ref(ro, ra, q, k, v, m, B, T, C, NH, causal);
    pulse_attention_forward(fo, fa, q, k, v, m, B, T, C, NH, causal);
    float *o2 = ku_alloc(n); /* without the probabilities (inference): the same out */
    pulse_attention_forward_bf16(o2, NULL, q, k, v, m, B, T, C, NH, causal);
    double e2 = 0;
    for (size_t i = 0; i < n; i++) e2 = isnan(o2[i]) ? INFINITY : fmax(e2, fabs((double)o2[i] - o[i]));
    CHECK_MSG(e2 <= 1e-6, "attention bf16 without att: differs by %.3g", e2);
    free(o2);
    double ea = 0, eo = 0, mo = 0, ef = 0;
    for (size_t i = 0; i < na; i++) ea = fmax(ea, fabs((double)a[i] - ra[i]));
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)o[i] - ro[i]);
        eo = isnan(o[i]) ? INFINITY : fmax(eo, d);
        mo += d / (double)n;
        ef = fmax(ef, fabs((double)o[i] - fo[i]));
    }
    const int bf = pulse_bf16_supported();
    /* without the kernel the fp32 fallback runs: it equals pulse_attention_forward and differs from the
     * reference by the input rounding */
    CHECK_MSG(
        ea < (bf ? 2e-6 : 2e-2) && eo < (bf ? 4e-3 : 3e-2) && mo < (bf ? 1e-6 : 5e-3) &&
            ef < (bf ? 3e-2 : 1e-6),
        "attention bf16 B=%d T=%d C=%d NH=%d causal=%d mask=%d: att %.3g out max %.3g mean %.3g vs fp32 %.3g",
        B, T, C, NH, causal, masked, ea, eo, mo, ef);
    printf("attention B=%d T=%d C=%d NH=%d: att %.3g out max %.3g mean %.3g vs fp32 %.3g\n", B, T, C, NH, ea,
           eo, mo, ef);
    free(q), free(k), free(v), free(o), free(ro), free(fo), free(a), free(ra), free(fa), free(km);
}

int main(void) {
    pulse_rng_seed(&ku_rng, 7);
    printf("bf16 kernel: %s\n", pulse_bf16_supported() ? "AVX512-BF16" : "fp32 fallback");
    test_round();
    static const int shapes[][3] = {{1, 1, 1},     {3, 5, 7},     {8, 48, 2},    {9, 49, 3},
                                    {17, 100, 33}, {64, 96, 256}, {65, 97, 257}, {130, 50, 600},
                                    {7, 200, 513}, {200, 16, 64}, {33, 80, 70},  {70, 64, 600},
                                    {19, 32, 9}};
    /* last panels of 1-16, 17-32 and 33-48 columns: each width of the tile kernel (gemm_tile's nq) */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                test_gemm(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
                test_gemm(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.5f, 1.0f);
            }
    test_ce_bf16(5, 1000);
    test_ce_bf16(70, 12102);                      /* the Beauty head's width */
    test_gemm(0, 1, 300, 144, 384, -2.0f, 0.25f); /* several row blocks: both threads work */
    test_gemm(1, 0, 384, 384, 515, 1.0f, 1.0f);   /* dW shape with an odd row count */
    test_gemm(1, 0, 64, 400, 3001, 1.0f, 1.0f);   /* one row block: its panels split between the threads */
    test_linear(1, 5, 3);
    test_linear(37, 40, 50);
    test_linear(130, 64, 96);
    for (int packed = 0; packed < 2; packed++) {
        test_fused(70, 40, 144, 3, packed); /* split along 48-column panels */
        test_fused(9, 16, 30, 3, packed);   /* 10-column outputs: one product per output */
        test_fused(130, 600, 96, 2, packed);
        test_fused(200, 1536, 384, 1, packed); /* the FFN's second product: K over several 512 blocks */
    }
    test_ffn(200, 384, 1536, 1);          /* MiniLM's FFN; a last block of 8 rows */
    test_ffn(70, 45, 96, 0);              /* odd C, no residual, a block of 6 rows */
    test_ffn(9, 600, 96, 1);              /* C over one 512 block: the two-product path */
    test_ffn(33, 64, 100, 1);             /* FF not a multiple of 48: the two-product path */
    test_attention(3, 64, 384, 12, 0, 1); /* MiniLM's heads (hs 32) with padding and a fully masked row */
    test_attention(2, 13, 48, 2, 0, 0);   /* hs 24: not a multiple of 16; odd T */
    test_attention(2, 100, 160, 2, 1, 1); /* hs 80 (two column chunks), T over two 48-column chunks, causal */
    test_attention(4, 33, 256, 4, 0, 1);  /* hs 64 */
    test_attention(1, 1, 32, 1, 0, 0);
    test_attention(1, 200, 384, 12, 0, 1); /* a long sequence: 25 query blocks, 5 score column chunks */
    return test_summary();
}
