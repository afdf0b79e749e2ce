/* tests/test_kernels_quant.c — the ggml weight types: fp16 conversion, hand-built blocks with known values,
 * and for every type: random data -> reference quantiser -> AVX2 dequant identical to the scalar one,
 * qmatvec / qmatmul AVX2 vs the scalar reference, and vs an f32 matvec of the dequantised weights within
 * the error that quantising x to 8 bits allows. */
#include "test.h"

#include <stdint.h>

#include "pulse/core.h"
#include "pulse/quant.h"
#include "kernels/quant_internal.h" /* pq_dot_fast_ref, the scalar reference of the training order */

static const int TYPES[] = {PULSE_GGML_F32,  PULSE_GGML_F16,  PULSE_GGML_BF16, PULSE_GGML_Q8_0,
                            PULSE_GGML_Q4_0, PULSE_GGML_Q4_1, PULSE_GGML_Q5_0, PULSE_GGML_Q5_1,
                            PULSE_GGML_Q4_K, PULSE_GGML_Q5_K, PULSE_GGML_Q6_K, PULSE_GGML_Q8_K};

static void test_fp16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = pulse_fp16_to_fp32((uint16_t)h);
        if (f != f) continue; /* nan */
        if (pulse_fp32_to_fp16(f) != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d halves do not round-trip", bad);
    CHECK(pulse_fp16_to_fp32(0x3C00) == 1.0f);
    CHECK(pulse_fp16_to_fp32(0xC000) == -2.0f);
    CHECK(pulse_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f);
    CHECK(pulse_fp32_to_fp16(65504.0f) == 0x7BFF);
    CHECK(pulse_fp32_to_fp16(1e6f) == 0x7C00);
    CHECK(pulse_fp32_to_fp16(1.0f + 1.0f / 4096) == 0x3C00); /* tie -> even */
    CHECK(pulse_fp32_to_fp16(1.0f + 3.0f / 4096) == 0x3C01);
    CHECK(pulse_fp32_to_fp16(1.0f + 6.0f / 4096) == 0x3C02);
    CHECK(pulse_bf16_to_fp32(0x3F80) == 1.0f);
}

static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

/* Blocks written by hand from the ggml layouts: dequantised values known in closed form. */
static void test_known_blocks(void) {
    float y[256];
    uint8_t b[292];
    /* q4_0: d = 0.5, qs[j] = j | (15-j)<<4 -> y[j] = (j-8)*0.5, y[j+16] = (7-j)*0.5 */
    put16(b, pulse_fp32_to_fp16(0.5f));
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    pulse_dequantize_row_ref(PULSE_GGML_Q4_0, b, y, 32);
    int ok = 1;
    for (int j = 0; j < 16; j++) ok &= y[j] == (j - 8) * 0.5f && y[j + 16] == (7 - j) * 0.5f;
    CHECK(ok);
    /* q5_1: d = 0.25, m = -1, qh bit j set for odd j -> y[j] = (nib + 16*(j odd)) * 0.25 - 1 */
    put16(b, pulse_fp32_to_fp16(0.25f));
    put16(b + 2, pulse_fp32_to_fp16(-1.0f));
    uint32_t qh = 0xAAAAAAAAu;
    memcpy(b + 4, &qh, 4);
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(3 | (5 << 4));
    pulse_dequantize_row_ref(PULSE_GGML_Q5_1, b, y, 32);
    ok = 1;
    for (int j = 0; j < 32; j++) ok &= y[j] == (float)((j < 16 ? 3 : 5) + 16 * (j & 1)) * 0.25f - 1.0f;
    CHECK(ok);
    /* q4_K: d = 1, dmin = 0.5; sub-block s has scale s+1 and min s+60 for s >= 4 (exercises the 6-bit
     * packing of the upper four); all quants 2 -> y = (s+1)*2 - 0.5*min */
    memset(b, 0, sizeof b);
    put16(b, pulse_fp32_to_fp16(1.0f));
    put16(b + 2, pulse_fp32_to_fp16(0.5f));
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; s++)
        sc[s] = (uint8_t)(s + 1 + (s >= 4 ? 40 : 0)), mn[s] = (uint8_t)(s < 4 ? s : s + 56);
    for (int j = 0; j < 4; j++) {
        b[4 + j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        b[8 + j] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        b[12 + j] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    memset(b + 16, 0x22, 128);
    pulse_dequantize_row_ref(PULSE_GGML_Q4_K, b, y, 256);
    ok = 1;
    for (int i = 0; i < 256; i++) ok &= y[i] == (float)sc[i / 32] * 2.0f - 0.5f * (float)mn[i / 32];
    CHECK(ok);
    /* q6_K: d = 0.5, scales[s] = s - 8, all quants 40 (ql nibble 8, qh 2 bits = 2) -> y = 0.5*(s-8)*8 */
    memset(b, 0, sizeof b);
    memset(b, 0x88, 128);
    memset(b + 128, 0xAA, 64);
    for (int s = 0; s < 16; s++) b[192 + s] = (uint8_t)(int8_t)(s - 8);
    put16(b + 208, pulse_fp32_to_fp16(0.5f));
    pulse_dequantize_row_ref(PULSE_GGML_Q6_K, b, y, 256);
    ok = 1;
    for (int i = 0; i < 256; i++) ok &= y[i] == 0.5f * (float)(i / 16 - 8) * 8.0f;
    CHECK(ok);
}

static void fill(pulse_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * pulse_rng_normal(r);
}

/* relative RMS error the reference quantiser may leave on N(0,1) data */
static double max_rel_rms(int t) {
    switch (t) {
    case PULSE_GGML_F32:
        return 0;
    case PULSE_GGML_F16:
        return 1e-3;
    case PULSE_GGML_BF16:
        return 5e-3;
    case PULSE_GGML_Q8_0:
    case PULSE_GGML_Q8_K:
        return 0.02;
    case PULSE_GGML_Q6_K:
        return 0.05;
    case PULSE_GGML_Q5_0:
    case PULSE_GGML_Q5_1:
    case PULSE_GGML_Q5_K:
        return 0.09;
    default:
        return 0.18;
    }
}

/* Types whose scalar reference follows llama.cpp's summation order exactly, so the AVX2 products must equal
 * it bit for bit (the others: within rounding). */
static int exact_ref(int t) {
    return t == PULSE_GGML_Q4_0 || t == PULSE_GGML_Q4_1 || t == PULSE_GGML_Q5_0 || t == PULSE_GGML_Q5_1 ||
           t == PULSE_GGML_Q8_0 || t == PULSE_GGML_Q4_K || t == PULSE_GGML_Q6_K;
}

static void test_type(int t, pulse_rng *r) {
    const char *tn = pulse_ggml_type_name(t);
    int cols = pulse_ggml_block_size(t) == 256 ? 768 : 576, rows = 37;
    size_t rs = pulse_ggml_row_size(t, cols);
    CHECK_MSG(rs > 0 && pulse_ggml_type_supported(t), "%s", tn);
    float *w = malloc(sizeof(float) * rows * cols), *wd = malloc(sizeof(float) * rows * cols);
    float *wd2 = malloc(sizeof(float) * cols);
    uint8_t *q = malloc(rs * rows);
    fill(r, w, (size_t)rows * cols, 1.0f);
    /* outliers and a zero block exercise scale extremes */
    w[5] = 9.0f;
    w[cols + 7] = -11.0f;
    for (int i = 0; i < 256; i++) w[2 * cols + i] = 0;
    for (int i = 0; i < rows; i++) CHECK(pulse_quantize_row(t, w + (size_t)i * cols, q + i * rs, cols) == rs);
    /* dequant: AVX2 (or whatever pulse_dequantize_row dispatches to) identical to the reference */
    int same = 1;
    double err = 0, ref = 0;
    for (int i = 0; i < rows; i++) {
        pulse_dequantize_row_ref(t, q + i * rs, wd + (size_t)i * cols, cols);
        pulse_dequantize_row(t, q + i * rs, wd2, cols);
        same &= memcmp(wd2, wd + (size_t)i * cols, sizeof(float) * cols) == 0;
        for (int j = 0; j < cols; j++) {
            double e = (double)wd[(size_t)i * cols + j] - w[(size_t)i * cols + j];
            err += e * e;
            ref += (double)w[(size_t)i * cols + j] * w[(size_t)i * cols + j];
        }
    }
    CHECK_MSG(same, "%s: dequant AVX2 != scalar", tn);
    double rel = sqrt(err / ref);
    CHECK_MSG(rel <= max_rel_rms(t), "%s: quantisation rel rms %.4f > %.4f", tn, rel, max_rel_rms(t));
    for (int i = 0; i < 256; i++) CHECK_MSG(wd[2 * cols + i] == 0.0f, "%s: zero block not zero", tn);

    /* qmatvec */
    float *x = malloc(sizeof(float) * cols), *y = malloc(sizeof(float) * rows),
          *yr = malloc(sizeof(float) * rows);
    fill(r, x, cols, 0.7f);
    x[3] = 5.0f;
    pulse_qmatvec(y, q, t, x, rows, cols);
    pulse_qmatvec_ref(yr, q, t, x, rows, cols);
    int bs32 = pulse_ggml_block_size(t) == 256 ? 256 : 32;
    int xquant = !(t == PULSE_GGML_F32 || t == PULSE_GGML_F16 || t == PULSE_GGML_BF16);
    int bad_ref = 0, bad_f32 = 0;
    for (int i = 0; i < rows; i++) {
        const float *wr = wd + (size_t)i * cols;
        double exact = 0, absw = 0, bound = 0;
        for (int j = 0; j < cols; j++) exact += (double)wr[j] * x[j], absw += fabs(wr[j] * x[j]);
        if (xquant) /* |dot error| <= sum_b (amax_b / 127 / 2) * sum_{i in b} |w_i| */
            for (int b0 = 0; b0 < cols; b0 += bs32) {
                double amax = 0, sw = 0;
                for (int j = b0; j < b0 + bs32; j++) amax = fmax(amax, fabs(x[j])), sw += fabs(wr[j]);
                bound += amax / 254.0 * sw;
            }
        bound = bound * 1.001 + 1e-5 * absw + 1e-6;
        if (exact_ref(t) ? y[i] != yr[i] : fabs(y[i] - yr[i]) > 2e-6 * absw + 1e-6) {
            if (bad_ref++ < 3) fprintf(stderr, "%s row %d: avx2 %.7g ref %.7g\n", tn, i, y[i], yr[i]);
        }
        if (fabs(yr[i] - exact) > bound) {
            if (bad_f32++ < 3)
                fprintf(stderr, "%s row %d: ref %.7g f32 %.7g bound %.3g\n", tn, i, yr[i], exact, bound);
        }
    }
    CHECK_MSG(bad_ref == 0, "%s: qmatvec AVX2 vs scalar: %d rows differ", tn, bad_ref);
    CHECK_MSG(bad_f32 == 0, "%s: qmatvec vs f32 matvec of dequantised W: %d rows outside the bound", tn,
              bad_f32);

    /* qmatmul: N activation rows (across the 64-row tile) == N separate qmatvecs, bit for bit; and vs ref */
    const int Ns[] = {1, 3, 5, 70};
    for (size_t k = 0; k < sizeof Ns / sizeof Ns[0]; k++) {
        int N = Ns[k];
        float *X = malloc(sizeof(float) * N * cols), *Y = malloc(sizeof(float) * N * rows);
        float *Yr = malloc(sizeof(float) * N * rows), *yv = malloc(sizeof(float) * rows);
        fill(r, X, (size_t)N * cols, 1.0f);
        /* llama.cpp's batch orders (the default for N rows): AVX2 == reference */
        pulse_qmatmul(Y, q, t, X, N, rows, cols);
        pulse_qmatmul_ref(Yr, q, t, X, N, rows, cols);
        int eq = 1, near = 1;
        if (exact_ref(t)) near = memcmp(Y, Yr, sizeof(float) * N * rows) == 0;
        /* every row in the one-row order: == N separate qmatvecs */
        uint8_t one[70];
        for (int n = 0; n < N; n++) one[n] = PULSE_QROW_ONE;
        pulse_quant_set_row_orders(one, N);
        pulse_qmatmul(Y, q, t, X, N, rows, cols);
        pulse_quant_set_row_orders(NULL, 0);
        for (int n = 0; n < N; n++) {
            pulse_qmatvec(yv, q, t, X + (size_t)n * cols, rows, cols);
            eq &= memcmp(yv, Y + (size_t)n * rows, sizeof(float) * rows) == 0;
            for (int i = 0; i < rows; i++) {
                double absw = 0;
                for (int j = 0; j < cols; j++)
                    absw += fabs(wd[(size_t)i * cols + j] * X[(size_t)n * cols + j]);
                if (!exact_ref(t))
                    near &= fabs(Y[(size_t)n * rows + i] - Yr[(size_t)n * rows + i]) <= 2e-6 * absw + 1e-6;
            }
        }
        CHECK_MSG(eq, "%s: qmatmul N=%d differs from per-row qmatvec", tn, N);
        CHECK_MSG(near, "%s: qmatmul N=%d differs from the scalar reference", tn, N);
        free(X), free(Y), free(Yr), free(yv);
    }
    /* AVX512-VNNI kernels (where this CPU has them) == plain AVX2 kernels, bit for bit */
    if (pulse_quant_use_vnni(1)) {
        int N = 7;
        float *X = malloc(sizeof(float) * N * cols), *Y1 = malloc(sizeof(float) * N * rows),
              *Y0 = malloc(sizeof(float) * N * rows);
        fill(r, X, (size_t)N * cols, 1.0f);
        pulse_qmatmul(Y1, q, t, X, N, rows, cols);
        pulse_quant_use_vnni(0);
        pulse_qmatmul(Y0, q, t, X, N, rows, cols);
        pulse_quant_use_vnni(1);
        CHECK_MSG(memcmp(Y0, Y1, sizeof(float) * N * rows) == 0, "%s: VNNI kernels differ from AVX2", tn);
        free(X), free(Y1), free(Y0);
    }
    free(w), free(wd), free(wd2), free(q), free(x), free(y), free(yr);
}

/* The batched kernels for AVX512-VNNI (4 x 4 register tiles for q4_0 / q5_0 / q8_0 / q4_1 / q5_1 and their
 * 4-weight-row one-activation-row form for N = 1, 16 activation rows in the lanes for q4_K and q6_K) and for
 * AVX2 (quant_tile_avx2.c: 4 x 2 tiles for the 32-element types, 8 activation rows in the lanes for q4_K and
 * q6_K's tiled order; what an AVX2-only CPU and PULSE_ISA=avx2 run) == the scalar reference and the per-row
 * kernels of the same level (PULSE_QTILE=0's path) bit for bit over the shapes their edges handle: an odd
 * last block, rows not a multiple of 4 (of 2 for q6_K), activation rows not a multiple of the group, q8_0
 * weights of -128 (the sign-bit bias), type-1 offsets of both signs, q6_K scales of -128 and 6-bit values of
 * 63, q4_K groups whose rows mix llama.cpp's one-row and 4-row orders, and q6_K groups all in its tiled
 * order, none, and mixed. */
static void batched_shapes_level(pulse_rng *r, int level) {
    const int types[7] = {PULSE_GGML_Q8_0, PULSE_GGML_Q5_0, PULSE_GGML_Q4_0, PULSE_GGML_Q4_1,
                          PULSE_GGML_Q5_1, PULSE_GGML_Q4_K, PULSE_GGML_Q6_K};
    const int colsets[7][2] = {{32, 224}, {32, 224}, {32, 224}, {32, 224}, {64, 576}, {256, 768}, {256, 768}};
    const int rowset[3] = {1, 6, 37}, Nset[6] = {1, 2, 4, 9, 33, 70};
    for (int ti = 0; ti < 7; ti++)
        for (int ci = 0; ci < 2; ci++)
            for (int ri = 0; ri < 3; ri++)
                for (int ni = 0; ni < 6; ni++) {
                    const int t = types[ti], cols = colsets[ti][ci], rows = rowset[ri], N = Nset[ni];
                    const size_t rs = pulse_ggml_row_size(t, cols);
                    uint8_t *q = malloc(rs * rows);
                    float *w = malloc(sizeof(float) * cols), *X = malloc(sizeof(float) * N * cols);
                    float *Y = malloc(sizeof(float) * N * rows), *Yr = malloc(sizeof(float) * N * rows);
                    for (int i = 0; i < rows; i++) {
                        fill(r, w, cols, 1.0f);
                        if (i % 3 == 1) /* type 1: an offset m > 0 (all positive) as well as m < 0 */
                            for (int j = 0; j < cols; j++) w[j] = fabsf(w[j]) + 0.25f;
                        pulse_quantize_row(t, w, q + i * rs, cols);
                        if (t == PULSE_GGML_Q8_0) /* -128 does not come out of the quantiser */
                            for (int b = 0; b < cols / 32; b++) q[i * rs + 34 * b + 2 + (i + b) % 32] = 0x80;
                        if (t == PULSE_GGML_Q6_K) /* a scale of -128 and a value of 63 in each block */
                            for (int b = 0; b < cols / 256; b++) {
                                q[i * rs + 210 * b + 192 + (i + b) % 16] = 0x80;
                                q[i * rs + 210 * b + (i + 3 * b) % 128] = 0xFF;
                                q[i * rs + 210 * b + 128 + (i + 5 * b) % 64] = 0xFF;
                            }
                    }
                    fill(r, X, (size_t)N * cols, 1.0f);
                    uint8_t orders[70];
                    for (int pass = 0; pass < 3; pass++) {
                        /* pass 0: llama.cpp's default orders for N rows; pass 1: a pattern that mixes the
                         * one-row order, none tiled; pass 2: and rows 0..15 tiled, 16..31 not, then mixed */
                        for (int n = 0; n < N; n++)
                            orders[n] =
                                (uint8_t)(((n * 7 + 3) % 5 < 2 ? PULSE_QROW_ONE : 0) |
                                          (pass == 2 && (n < 16 || (n >= 32 && n % 3 != 0)) ? PULSE_QROW_TILED
                                                                                            : 0));
                        pulse_quant_set_row_orders(pass ? orders : NULL, pass ? N : 0);
                        pulse_qmatmul(Y, q, t, X, N, rows, cols);
                        pulse_qmatmul_ref(Yr, q, t, X, N, rows, cols);
                        CHECK_MSG(memcmp(Y, Yr, sizeof(float) * N * rows) == 0,
                                  "%s rows %d cols %d N %d pass %d: batched %s kernel != reference",
                                  pulse_ggml_type_name(t), rows, cols, N, pass, level ? "VNNI" : "AVX2");
                        /* the per-row kernels of the level (what qtile = 0 runs) give the same bits */
                        pulse_options o = *pulse_get_options();
                        o.qtile = 0;
                        pulse_set_options(&o);
                        pulse_quant_use_vnni(level);
                        pulse_qmatmul(Yr, q, t, X, N, rows, cols);
                        o.qtile = 1;
                        pulse_set_options(&o);
                        pulse_quant_use_vnni(level);
                        pulse_quant_set_row_orders(NULL, 0);
                        CHECK_MSG(memcmp(Y, Yr, sizeof(float) * N * rows) == 0,
                                  "%s rows %d cols %d N %d pass %d: batched %s kernel != per-row kernels",
                                  pulse_ggml_type_name(t), rows, cols, N, pass, level ? "VNNI" : "AVX2");
                    }
                    free(q), free(w), free(X), free(Y), free(Yr);
                }
}

static void test_batched_shapes(pulse_rng *r) {
    const int vnni = pulse_quant_use_vnni(-1);
    if (!vnni) {
        if (pulse_cpu_limit_get() != PULSE_ISA_NATIVE) /* the level's own paths: nothing is left out */
            printf("batched VNNI kernels: not at isa %s\n", pulse_isa_name(pulse_cpu_limit_get()));
        else
            test_skip_part("batched VNNI kernels: this CPU has no AVX512-VNNI");
    }
    if (!pulse_quant_has_avx2()) { /* the scalar level: the reference is all there is */
        printf("batched AVX2 kernels: not at isa %s\n", pulse_isa_name(pulse_cpu_limit_get()));
        return;
    }
    for (int level = vnni; level >= 0; level--) { /* 1: the VNNI tiles, 0: the AVX2 ones */
        pulse_quant_use_vnni(level);
        printf("batched %s kernels\n", level ? "VNNI" : "AVX2");
        batched_shapes_level(r, level);
    }
    pulse_quant_use_vnni(vnni);
}

/* pulse_qmatmul_multi == separate pulse_qmatmul calls, bit for bit, with mixed types and activation formats
 * (type-0 and type-1 tiles in one call: two packings, q8_0 and q8_1) */
static void test_multi(pulse_rng *r) {
    enum { NJ = 8 };
    const int types[NJ] = {PULSE_GGML_Q5_0, PULSE_GGML_Q4_1, PULSE_GGML_Q8_0, PULSE_GGML_Q4_K,
                           PULSE_GGML_F32,  PULSE_GGML_Q5_1, PULSE_GGML_Q6_K, PULSE_GGML_Q4_0};
    const int rows[NJ] = {37, 23, 20, 11, 5, 6, 9, 13}, cols = 512;
    void *W[NJ];
    for (int j = 0; j < NJ; j++) {
        size_t rs = pulse_ggml_row_size(types[j], cols);
        float *wf = malloc(sizeof(float) * cols);
        W[j] = malloc(rs * rows[j]);
        for (int i = 0; i < rows[j]; i++) {
            fill(r, wf, cols, 1.0f);
            pulse_quantize_row(types[j], wf, (uint8_t *)W[j] + i * rs, cols);
        }
        free(wf);
    }
    const int Ns[3] = {1, 6, 70};
    for (int k = 0; k < 3; k++) {
        int N = Ns[k];
        float *X = malloc(sizeof(float) * N * cols);
        fill(r, X, (size_t)N * cols, 1.0f);
        pulse_qmm_job jobs[NJ];
        float *Yref[NJ];
        for (int j = 0; j < NJ; j++) {
            jobs[j] = (pulse_qmm_job){W[j], types[j], rows[j], malloc(sizeof(float) * N * rows[j])};
            Yref[j] = malloc(sizeof(float) * N * rows[j]);
            pulse_qmatmul(Yref[j], W[j], types[j], X, N, rows[j], cols);
        }
        pulse_qmatmul_multi(jobs, NJ, X, N, cols);
        for (int j = 0; j < NJ; j++) {
            CHECK_MSG(memcmp(jobs[j].Y, Yref[j], sizeof(float) * N * rows[j]) == 0, "multi job %d (%s) N=%d",
                      j, pulse_ggml_type_name(types[j]), N);
            free(jobs[j].Y), free(Yref[j]);
        }
        free(X);
    }
    for (int j = 0; j < NJ; j++) free(W[j]);
}

/* pulse_qmatmul_fast / _multi_fast: where VNNI and the tiles are in use (16+ activation rows), training's
 * order bit for bit as its scalar reference pq_dot_fast_ref on the same quantised activations; elsewhere
 * exactly pulse_qmatmul. Either way within rounding of pulse_qmatmul, the same bits at 1 and 3 threads, and
 * the multi form equal to separate calls. */
static void test_fast(pulse_rng *r) {
    const int types[5] = {PULSE_GGML_Q4_0, PULSE_GGML_Q5_0, PULSE_GGML_Q8_0, PULSE_GGML_Q4_1,
                          PULSE_GGML_Q5_1};
    const int shapes[5][3] = {{37, 576, 70}, {16, 64, 16}, {9, 1536, 33}, {8, 32, 300}, {21, 96, 5}};
    /* the VNNI tiles, or the AVX2 ones (pq_t0g_rows) below VNNI; not the portable level */
    const int fast_here =
        pulse_get_options()->qtile && pulse_quant_has_avx2() && pulse_cpu_get()->level >= PULSE_LEVEL_AVX2;
    for (int ti = 0; ti < 5; ti++)
        for (int si = 0; si < 5; si++) {
            const int t = types[ti], rows = shapes[si][0], cols = shapes[si][1], N = shapes[si][2];
            const int t1 = t == PULSE_GGML_Q4_1 || t == PULSE_GGML_Q5_1;
            const size_t rs = pulse_ggml_row_size(t, cols);
            float *wf = malloc(sizeof(float) * cols), *X = malloc(sizeof(float) * N * cols);
            uint8_t *W = malloc(rs * rows);
            for (int i = 0; i < rows; i++) {
                fill(r, wf, cols, 1.0f);
                pulse_quantize_row(t, wf, W + i * rs, cols);
            }
            fill(r, X, (size_t)N * cols, 1.0f);
            float *Y = malloc(sizeof(float) * N * rows), *Y1 = malloc(sizeof(float) * N * rows),
                  *E = malloc(sizeof(float) * N * rows), *R = malloc(sizeof(float) * N * rows);
            const int prev = pulse_get_num_threads();
            pulse_set_num_threads(3);
            pulse_qmatmul_fast(Y, W, t, X, N, rows, cols);
            pulse_set_num_threads(1);
            pulse_qmatmul_fast(Y1, W, t, X, N, rows, cols);
            pulse_set_num_threads(prev);
            pulse_qmatmul(E, W, t, X, N, rows, cols);
            pq_a32 *xa = malloc(sizeof(pq_a32) * (cols / 32));
            double err = 0, mag = 0;
            for (int n = 0; n < N; n++) {
                pq_quantize_a32_ref(X + (size_t)n * cols, xa, cols, t1);
                for (int i = 0; i < rows; i++) {
                    R[(size_t)n * rows + i] = pq_dot_fast_ref(t, W + i * rs, xa, cols);
                    const double d = fabs((double)Y[(size_t)n * rows + i] - E[(size_t)n * rows + i]);
                    err = d > err ? d : err;
                    mag = fabs(E[(size_t)n * rows + i]) > mag ? fabs(E[(size_t)n * rows + i]) : mag;
                }
            }
            const int fast = fast_here && N >= 16;
            CHECK_MSG(memcmp(Y, fast ? R : E, sizeof(float) * N * rows) == 0, "fast %s %dx%d N=%d: %s",
                      pulse_ggml_type_name(t), rows, cols, N,
                      fast ? "vs pq_dot_fast_ref" : "vs pulse_qmatmul");
            CHECK_MSG(memcmp(Y, Y1, sizeof(float) * N * rows) == 0, "fast %s N=%d: 3 vs 1 threads",
                      pulse_ggml_type_name(t), N);
            CHECK_MSG(err <= 1e-5 * mag, "fast %s N=%d: %g from llama.cpp's order (max |y| %g)",
                      pulse_ggml_type_name(t), N, err, mag);
            /* pulse_options.qfast: pulse_qmatmul itself in training's order */
            pulse_options o = *pulse_get_options();
            o.qfast = 1;
            pulse_set_options(&o);
            pulse_qmatmul(E, W, t, X, N, rows, cols);
            o.qfast = 0;
            pulse_set_options(&o);
            CHECK_MSG(memcmp(Y, E, sizeof(float) * N * rows) == 0, "qfast pulse_qmatmul %s N=%d",
                      pulse_ggml_type_name(t), N);
            free(wf), free(X), free(W), free(Y), free(Y1), free(E), free(R), free(xa);
        }
    /* multi == separate calls: two jobs per activation format */
    enum { NJ = 2, N = 40, COLS = 256 };
    const int pairs[2][NJ] = {{PULSE_GGML_Q5_0, PULSE_GGML_Q8_0}, {PULSE_GGML_Q4_1, PULSE_GGML_Q5_1}};
    const int rows[NJ] = {19, 24};
    float *X = malloc(sizeof(float) * N * COLS), *wf = malloc(sizeof(float) * COLS);
    fill(r, X, (size_t)N * COLS, 1.0f);
    for (int p = 0; p < 2; p++) {
        pulse_qmm_job jobs[NJ];
        uint8_t *W[NJ];
        float *Ys[NJ];
        for (int j = 0; j < NJ; j++) {
            const size_t rs = pulse_ggml_row_size(pairs[p][j], COLS);
            W[j] = malloc(rs * rows[j]);
            for (int i = 0; i < rows[j]; i++) {
                fill(r, wf, COLS, 1.0f);
                pulse_quantize_row(pairs[p][j], wf, W[j] + i * rs, COLS);
            }
            jobs[j] = (pulse_qmm_job){W[j], pairs[p][j], rows[j], malloc(sizeof(float) * N * rows[j])};
            Ys[j] = malloc(sizeof(float) * N * rows[j]);
            pulse_qmatmul_fast(Ys[j], W[j], pairs[p][j], X, N, rows[j], COLS);
        }
        pulse_qmatmul_multi_fast(jobs, NJ, X, N, COLS);
        for (int j = 0; j < NJ; j++)
            CHECK_MSG(memcmp(jobs[j].Y, Ys[j], sizeof(float) * N * rows[j]) == 0, "multi_fast %s",
                      pulse_ggml_type_name(pairs[p][j]));
        pulse_options o = *pulse_get_options();
        o.qfast = 1;
        pulse_set_options(&o);
        pulse_qmatmul_multi(jobs, NJ, X, N, COLS);
        o.qfast = 0;
        pulse_set_options(&o);
        for (int j = 0; j < NJ; j++) {
            CHECK_MSG(memcmp(jobs[j].Y, Ys[j], sizeof(float) * N * rows[j]) == 0, "qfast multi %s",
                      pulse_ggml_type_name(pairs[p][j]));
            free(W[j]), free(jobs[j].Y), free(Ys[j]);
        }
    }
    free(X), free(wf);
}

/* The one-row 32-element products (decode: type 0 and type 1) — on AVX512-VNNI the 4-row pq_t0_gemv (qgemv 1
 * / by CPU) or the per-row kernels (qgemv 0); at plain AVX2 (the _avx2 run of this test) the two-row kernel
 * with the lane corrections, and past its 16,384 columns the per-row one — equal the scalar reference bit for
 * bit, for row counts that leave 0-3 rows over, with q8_0's -128 in every row. */
static void test_rows1_type0(pulse_rng *r) {
    const int types[5] = {PULSE_GGML_Q4_0, PULSE_GGML_Q5_0, PULSE_GGML_Q8_0, PULSE_GGML_Q4_1,
                          PULSE_GGML_Q5_1};
    const int colset[2] = {896, 16416}, rowset[4] = {1, 2, 7, 10};
    for (int ti = 0; ti < 5; ti++)
        for (int ci = 0; ci < 2; ci++)
            for (int ri = 0; ri < 4; ri++) {
                const int t = types[ti], cols = colset[ci], rows = rowset[ri];
                const size_t rs = pulse_ggml_row_size(t, cols);
                uint8_t *q = malloc(rs * rows);
                float *w = malloc(sizeof(float) * cols), *x = malloc(sizeof(float) * cols);
                float *y = malloc(sizeof(float) * rows), *yr = malloc(sizeof(float) * rows);
                for (int i = 0; i < rows; i++) {
                    fill(r, w, cols, 1.0f);
                    pulse_quantize_row(t, w, q + i * rs, cols);
                    if (t == PULSE_GGML_Q8_0)
                        for (int b = 0; b < cols / 32; b++) q[i * rs + 34 * b + 2 + (i + b) % 32] = 0x80;
                }
                fill(r, x, cols, 1.0f);
                pulse_qmatvec(y, q, t, x, rows, cols);
                pulse_qmatvec_ref(yr, q, t, x, rows, cols);
                CHECK_MSG(memcmp(y, yr, sizeof(float) * rows) == 0, "one-row %s rows %d cols %d != reference",
                          pulse_ggml_type_name(t), rows, cols);
                free(q), free(w), free(x), free(y), free(yr);
            }
}

/* The float-weight products (f32 / f16 / bf16 weights, f32 activations) in the AVX2 and VNNI builds: the
 * order quant_avx2_dot.h documents (four 8-lane fma chains over 32-element steps, (c0 + c1) + (c2 + c3), one
 * chain over the 8-element rest, the 8-to-1 horizontal sum, the scalar tail), modelled here with fmaf, bit
 * for bit for every output of every tile shape (1..7 activation rows, odd weight-row counts) and column
 * counts with and without the 8-element and scalar tails; batched == per-row qmatvec. */
static float float_order_model(const float *w, const float *x, int n) {
    float c[4][8] = {{0}};
    int i = 0;
    for (; i + 32 <= n; i += 32)
        for (int u = 0; u < 4; u++)
            for (int l = 0; l < 8; l++) c[u][l] = fmaf(w[i + 8 * u + l], x[i + 8 * u + l], c[u][l]);
    float s[8];
    for (int l = 0; l < 8; l++) s[l] = (c[0][l] + c[1][l]) + (c[2][l] + c[3][l]);
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] = fmaf(w[i + l], x[i + l], s[l]);
    float h[4];
    for (int l = 0; l < 4; l++) h[l] = s[l] + s[l + 4];
    float t = (h[0] + h[2]) + (h[1] + h[3]);
    for (; i < n; i++) t += w[i] * x[i];
    return t;
}

static void test_float_orders(pulse_rng *r) {
    if (!pulse_quant_has_avx2()) return; /* the portable build sums in element order */
    const int types[] = {PULSE_GGML_F32, PULSE_GGML_F16, PULSE_GGML_BF16}, colss[] = {7, 40, 1003};
    const int rows = 5, NMAX = 7;
    for (int vn = 1; vn >= 0; vn--) {
        if (vn && !pulse_quant_use_vnni(1)) continue;
        pulse_quant_use_vnni(vn);
        for (int ti = 0; ti < 3; ti++)
            for (int ci = 0; ci < 3; ci++) {
                const int t = types[ti], cols = colss[ci];
                size_t rs = pulse_ggml_row_size(t, cols);
                float *w = malloc(sizeof(float) * rows * cols), *wd = malloc(sizeof(float) * rows * cols);
                float *X = malloc(sizeof(float) * NMAX * cols), *Y = malloc(sizeof(float) * NMAX * rows);
                float *yv = malloc(sizeof(float) * rows);
                uint8_t *q = malloc(rs * rows);
                fill(r, w, (size_t)rows * cols, 1.0f);
                fill(r, X, (size_t)NMAX * cols, 1.0f);
                for (int i = 0; i < rows; i++) {
                    pulse_quantize_row(t, w + (size_t)i * cols, q + i * rs, cols);
                    pulse_dequantize_row_ref(t, q + i * rs, wd + (size_t)i * cols, cols);
                }
                int bad = 0, neq = 0;
                for (int N = 1; N <= NMAX; N++) {
                    pulse_qmatmul(Y, q, t, X, N, rows, cols);
                    for (int n = 0; n < N; n++) {
                        pulse_qmatvec(yv, q, t, X + (size_t)n * cols, rows, cols);
                        neq += memcmp(yv, Y + (size_t)n * rows, sizeof(float) * rows) != 0;
                        for (int i = 0; i < rows; i++)
                            bad += Y[(size_t)n * rows + i] !=
                                   float_order_model(wd + (size_t)i * cols, X + (size_t)n * cols, cols);
                    }
                }
                CHECK_MSG(bad == 0, "%s cols %d (%s): %d outputs differ from the documented order",
                          pulse_ggml_type_name(t), cols, vn ? "vnni" : "avx2", bad);
                CHECK_MSG(neq == 0, "%s cols %d (%s): %d batched rows differ from qmatvec",
                          pulse_ggml_type_name(t), cols, vn ? "vnni" : "avx2", neq);
                free(w), free(wd), free(X), free(Y), free(yv), free(q);
            }
    }
    pulse_quant_use_vnni(1);
}

int main(void) {
    test_fp16();
    test_known_blocks();
    CHECK(pulse_ggml_row_size(PULSE_GGML_Q4_K, 640) == 0); /* not a multiple of 256 */
    CHECK(pulse_ggml_row_size(PULSE_GGML_Q4_1, 576) == 18 * 20);
    CHECK(strcmp(pulse_ggml_type_name(PULSE_GGML_Q6_K), "q6_K") == 0);
    CHECK(!pulse_ggml_type_supported(PULSE_GGML_Q2_K) && pulse_ggml_type_size(PULSE_GGML_Q2_K) == 84);
    printf("avx2 kernels: %s, vnni: %s\n", pulse_quant_has_avx2() ? "yes" : "no (scalar build)",
           pulse_quant_use_vnni(-1) ? "yes" : "no");
    pulse_rng r;
    pulse_rng_seed(&r, 42);
    /* the one-row products both ways on every CPU: the 4-weight-rows kernels and the per-row ones */
    for (int gv = 1; gv >= 0; gv--) {
        pulse_options o = *pulse_get_options();
        o.qgemv = gv;
        pulse_set_options(&o);
        pulse_quant_use_vnni(1);
        printf("one-row products: %s\n", gv ? "4 weight rows at a time" : "per row");
        for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) test_type(TYPES[i], &r);
        test_multi(&r);
        test_rows1_type0(&r);
    }
    pulse_options o = *pulse_get_options();
    o.qgemv = -1;
    pulse_set_options(&o);
    pulse_quant_use_vnni(1);
    if (pulse_quant_use_vnni(-1)) { /* and with the AVX2 tiles on this VNNI CPU */
        pulse_quant_use_vnni(0);
        test_multi(&r);
        pulse_quant_use_vnni(1);
    }
    test_batched_shapes(&r);
    test_float_orders(&r);
    test_fast(&r);
    if (pulse_quant_use_vnni(-1)) { /* training's order at the AVX2 level on this VNNI CPU too */
        pulse_quant_use_vnni(0);
        test_fast(&r);
        pulse_quant_use_vnni(1);
    }
    /* invalid shape: NaN-filled output, no crash */
    float y[4];
    float x[40] = {0};
    uint8_t w[256] = {0};
    pulse_qmatvec(y, w, PULSE_GGML_Q4_0, x, 1, 40);
    CHECK(y[0] != y[0]);
    return test_summary();
}
