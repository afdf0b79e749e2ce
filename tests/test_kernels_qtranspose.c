/* tests/test_kernels_qtranspose.c — the transposed q8_0 copy of a frozen quantised weight
 * (pulse_qtranspose_q8_0) and the dX = dY W it gives on the int8 tiles: the layout (row c of Wt dequantises
 * to column c of W within q8_0 rounding, side by side for a concatenation), the product against the scalar
 * double-sum reference for q4_1, q8_0 and q4_K weights and batches on and off the tiles, with the bf16 GEMM's
 * error printed beside it, and the shapes it refuses. */
#include "test.h"

#include "pulse/core.h"
#include "pulse/kernels.h"
#include "pulse/quant.h"

static double rel_err(const float *a, const float *ref, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++)
        e += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]), r += (double)ref[i] * ref[i];
    return sqrt(e / (r + 1e-300));
}

static void check_type(int type, int rows, int cols, int N, pulse_rng *rng) {
    const size_t rb = pulse_ggml_row_size(type, cols), lt = pulse_ggml_row_size(PULSE_GGML_Q8_0, rows);
    uint8_t *W = malloc(rb * rows), *Wt = malloc(lt * cols);
    float *wf = malloc(sizeof(float) * (size_t)rows * cols), *row = malloc(sizeof(float) * (size_t)rows);
    float *dY = malloc(sizeof(float) * (size_t)N * rows), *ref = calloc((size_t)N * cols, sizeof(float));
    float *d8 = malloc(sizeof(float) * (size_t)N * cols), *db = calloc((size_t)N * cols, sizeof(float));
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) wf[(size_t)r * cols + c] = pulse_rng_normal(rng) * 0.05f;
        CHECK(pulse_quantize_row(type, wf + (size_t)r * cols, W + (size_t)r * rb, cols) == rb);
        pulse_dequantize_row_ref(type, W + (size_t)r * rb, wf + (size_t)r * cols, cols);
    }
    for (size_t i = 0; i < (size_t)N * rows; i++) dY[i] = pulse_rng_normal(rng);
    CHECK(pulse_qtranspose_q8_0(Wt, lt, W, type, rows, cols) == 1);
    /* layout: row c of Wt is column c of W, within half a q8_0 step of its block's largest value */
    int bad = 0;
    for (int c = 0; c < cols; c++) {
        pulse_dequantize_row(PULSE_GGML_Q8_0, Wt + (size_t)c * lt, row, rows);
        for (int b = 0; b < rows / 32; b++) {
            float amax = 0;
            for (int r = 32 * b; r < 32 * b + 32; r++) amax = fmaxf(amax, fabsf(wf[(size_t)r * cols + c]));
            for (int r = 32 * b; r < 32 * b + 32; r++)
                bad += fabsf(row[r] - wf[(size_t)r * cols + c]) > amax / 127.0f * 0.51f + 1e-3f * amax;
        }
    }
    CHECK_MSG(bad == 0, "type %d: %d transposed values off", type, bad);
    pulse_qmatmul_backward_ref(ref, dY, W, type, N, rows, cols);
    pulse_qmatmul(d8, Wt, PULSE_GGML_Q8_0, dY, N, cols, rows);
    pulse_qmatmul_backward(db, dY, W, type, N, rows, cols);
    const double e8 = rel_err(d8, ref, (size_t)N * cols), eb = rel_err(db, ref, (size_t)N * cols);
    printf("type %2d (%d x %d), %3d rows of dY: dX relative error int8 %.2e, bf16 GEMM %.2e\n", type, rows,
           cols, N, e8, eb);
    CHECK_MSG(e8 < 1.5e-2, "type %d: int8 dX error %g", type, e8);
    free(W), free(Wt), free(wf), free(row), free(dY), free(ref), free(d8), free(db);
}

int main(void) {
    pulse_options o = pulse_default_options();
    o.quiet = 1;
    pulse_set_options(&o);
    pulse_rng rng;
    pulse_rng_seed(&rng, 3);
    const int Ns[] = {1, 5, 70};
    for (int i = 0; i < 3; i++) {
        check_type(PULSE_GGML_Q4_1, 96, 64, Ns[i], &rng);
        check_type(PULSE_GGML_Q8_0, 64, 96, Ns[i], &rng);
        check_type(PULSE_GGML_Q4_K, 64, 256, Ns[i], &rng);
    }
    /* side by side: [A; B]^T from two calls with an offset equals the transpose of the stacked rows */
    {
        const int ra = 64, rb2 = 32, cols = 64;
        const size_t rs = pulse_ggml_row_size(PULSE_GGML_Q4_1, cols),
                     lt = pulse_ggml_row_size(PULSE_GGML_Q8_0, ra + rb2);
        uint8_t *W = malloc(rs * (ra + rb2)), *T1 = malloc(lt * cols), *T2 = malloc(lt * cols);
        float *x = malloc(sizeof(float) * cols);
        for (int r = 0; r < ra + rb2; r++) {
            for (int c = 0; c < cols; c++) x[c] = pulse_rng_normal(&rng);
            pulse_quantize_row(PULSE_GGML_Q4_1, x, W + (size_t)r * rs, cols);
        }
        CHECK(pulse_qtranspose_q8_0(T1, lt, W, PULSE_GGML_Q4_1, ra + rb2, cols) == 1);
        CHECK(pulse_qtranspose_q8_0(T2, lt, W, PULSE_GGML_Q4_1, ra, cols) == 1);
        CHECK(pulse_qtranspose_q8_0(T2 + pulse_ggml_row_size(PULSE_GGML_Q8_0, ra), lt, W + rs * ra,
                                    PULSE_GGML_Q4_1, rb2, cols) == 1);
        CHECK(memcmp(T1, T2, lt * cols) == 0);
        /* refused: rows not a multiple of 32, columns not whole blocks, an unknown type */
        CHECK(pulse_qtranspose_q8_0(T1, lt, W, PULSE_GGML_Q4_1, 40, cols) == 0);
        CHECK(pulse_qtranspose_q8_0(T1, lt, W, PULSE_GGML_Q4_1, 32, 48) == 0);
        CHECK(pulse_qtranspose_q8_0(T1, lt, W, 999, 32, cols) == 0);
        free(W), free(T1), free(T2), free(x);
    }
    return test_summary();
}
