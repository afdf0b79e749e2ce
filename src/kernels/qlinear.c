/* kernels/qlinear.c — owns the products of training through a frozen quantised weight W (rows, cols; a ggml
 * type), forward and backward side by side: Y = X W^T and dX += dY W, each through a block of W's rows
 * dequantised at a time into the calling thread's scratch and the bf16 GEMM (pulse/kernels_bf16.h:
 * AVX512-BF16, or the fp32 sgemm where it is absent / PULSE_BF16=0), so W is never materialised whole in
 * fp32; the scalar reference of the backward; W transposed and requantised to q8_0 (the int8 tiles' dX);
 * and the output head with its cross-entropy at the rows that carry loss. */
#include "pulse/quant.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/internal.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"

enum { QDQ_FLOATS = 1 << 20 }; /* a block of dequantised rows: at most 4 MiB (or 48 rows) */

/* rows per block for rows of `cols`: a multiple of 48 (the GEMM's panel width) within QDQ_FLOATS, the
 * blocks of [0, rows) as even as that allows */
static int block_rows(int rows, int cols) {
    int kb = QDQ_FLOATS / (cols > 0 ? cols : 1);
    kb = kb / 48 * 48;
    if (kb < 48) kb = 48;
    if (kb >= rows) return rows;
    const int nblk = (rows + kb - 1) / kb;
    kb = (rows + nblk - 1) / nblk;
    return (kb + 47) / 48 * 48;
}

/* rows [r0, r0 + kb) of W into Wf (kb, cols), over the threads when not already inside a parallel region */
static void dequant_rows(float *Wf, const void *W, int type, int r0, int kb, int cols) {
    const size_t rb = pulse_ggml_row_size(type, cols);
    const uint8_t *base = (const uint8_t *)W + (size_t)r0 * rb;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && (long)kb * cols > 65536)
    for (int r = 0; r < kb; r++)
        pulse_dequantize_row(type, base + (size_t)r * rb, Wf + (size_t)r * cols, cols);
}

/* ---- forward: Y (N, rows) = X (N, cols) @ W^T, SET. Unlike pulse_qmatmul, X is not quantised to q8: the
 * products are bf16 x bf16 with fp32 sums (or fp32). ---- */
void pulse_qmatmul_dq(float *Y, const float *X, const void *W, int type, int N, int rows, int cols) {
    if (N <= 0 || rows <= 0) return;
    if (cols <= 0) {
        memset(Y, 0, sizeof(float) * (size_t)N * rows);
        return;
    }
    const int kb = block_rows(rows, cols);
    float *Wf = pk_scratch(PK_SCR_QDQ, sizeof(float) * (size_t)kb * cols);
    if (!Wf) { /* out of memory for one block: the quantised product itself */
        pulse_qmatmul(Y, W, type, X, N, rows, cols);
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += kb) {
        const int n = rows - r0 < kb ? rows - r0 : kb;
        dequant_rows(Wf, W, type, r0, n, cols);
        /* Y[:, r0:r0+n] (N, n) = X (N, cols) @ Wf^T */
        pulse_gemm_bf16(0, 1, N, n, cols, 1.0f, X, cols, Wf, cols, 0.0f, Y + r0, rows);
    }
}

/* ---- backward: dX (N, cols) += dY (N, rows; row stride ldy) @ W: per block of rows,
 * dX += dY[:, r0:r0+kb] @ Wf ---- */
void pulse_qmatmul_backward(float *dX, const float *dY, const void *W, int type, int N, int rows, int cols) {
    pulse_qmatmul_backward_ld(dX, dY, rows, W, type, N, rows, cols);
}

void pulse_qmatmul_backward_ld(float *dX, const float *dY, int ldy, const void *W, int type, int N, int rows,
                               int cols) {
    if (!dX || N <= 0 || rows <= 0 || cols <= 0) return;
    const int kb = block_rows(rows, cols);
    float *Wf = pk_scratch(PK_SCR_QDQ, sizeof(float) * (size_t)kb * cols);
    if (!Wf) { /* out of memory: row by row through a stack row is too slow to be worth it; say so loudly */
        for (size_t i = 0; i < (size_t)N * cols; i++) dX[i] = NAN;
        return;
    }
    for (int r0 = 0; r0 < rows; r0 += kb) {
        const int n = rows - r0 < kb ? rows - r0 : kb;
        dequant_rows(Wf, W, type, r0, n, cols);
        pulse_gemm_bf16(0, 0, N, cols, n, 1.0f, dY + r0, ldy, Wf, cols, 1.0f, dX, cols);
    }
}

/* ---- W^T requantised: row c of Wt (at Wt + c * ldt bytes) = column c of W in q8_0 blocks along W's rows.
 * 32 rows of W dequantised at a time per thread, each column's 32 values one q8_0 block. ---- */
int pulse_qtranspose_q8_0(void *Wt, size_t ldt, const void *W, int type, int rows, int cols) {
    if (rows <= 0 || cols <= 0 || rows % 32 || !pulse_ggml_type_supported(type) ||
        cols % pulse_ggml_block_size(type))
        return 0;
    const size_t rb = pulse_ggml_row_size(type, cols), bq = pulse_ggml_row_size(PULSE_GGML_Q8_0, 32);
    const int nblk = rows / 32;
    int ok = 1;
#pragma omp parallel for schedule(dynamic, 1) reduction(& : ok) if (!omp_in_parallel() && nblk > 1)
    for (int rb0 = 0; rb0 < nblk; rb0++) {
        float *f = pk_scratch(PK_SCR_QDQ, sizeof(float) * 32 * ((size_t)cols + 1));
        if (!f) {
            ok = 0;
            continue;
        }
        float *col = f + (size_t)32 * cols;
        for (int r = 0; r < 32; r++)
            pulse_dequantize_row(type, (const uint8_t *)W + (size_t)(rb0 * 32 + r) * rb, f + (size_t)r * cols,
                                 cols);
        for (int c = 0; c < cols; c++) {
            for (int r = 0; r < 32; r++) col[r] = f[(size_t)r * cols + c];
            pulse_quantize_row(PULSE_GGML_Q8_0, col, (uint8_t *)Wt + (size_t)c * ldt + (size_t)rb0 * bq, 32);
        }
    }
    return ok;
}

/* scalar reference: the scalar dequantiser, double sums */
void pulse_qmatmul_backward_ref(float *dX, const float *dY, const void *W, int type, int N, int rows,
                                int cols) {
    if (!dX || N <= 0 || rows <= 0 || cols <= 0) return;
    const size_t rb = pulse_ggml_row_size(type, cols);
    float *wr = pk_scratch(PK_SCR_QDQ, sizeof(float) * (size_t)rows * cols);
    if (!wr) return;
    for (int r = 0; r < rows; r++)
        pulse_dequantize_row_ref(type, (const uint8_t *)W + (size_t)r * rb, wr + (size_t)r * cols, cols);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < cols; c++) {
            double s = 0;
            for (int r = 0; r < rows; r++) s += (double)dY[(size_t)i * rows + r] * wr[(size_t)r * cols + c];
            dX[(size_t)i * cols + c] += (float)s;
        }
}

/* ---- the output head at the rows that carry loss ----
 * logits (N, V) = x (N, C) @ W^T (through pulse_qmatmul_dq), optionally capped z -> cap tanh(z / cap);
 * cross-entropy against targets (N) (-1 = ignored); dx (N, C) += dlogits @ W. nb rows at a time through
 * logits_scratch (nb, V). Returns the summed loss of the kept rows. */
double pulse_qhead_loss(float *dx, float *losses, const float *x, const void *W, int type, const int *targets,
                        int N, int C, int V, float softcap, float dloss_scale, float *logits_scratch,
                        int nb) {
    if (N <= 0 || V <= 0 || nb <= 0 || !logits_scratch) return 0.0;
    double total = 0.0;
    float *row = softcap > 0 && dx ? pk_scratch(PK_SCR_QHEAD, sizeof(float) * (size_t)V) : NULL;
    for (int n0 = 0; n0 < N; n0 += nb) {
        const int m = N - n0 < nb ? N - n0 : nb;
        float *lg = logits_scratch;
        pulse_qmatmul_dq(lg, x + (size_t)n0 * C, W, type, m, V, C);
        if (softcap > 0) {
            const float inv = 1.0f / softcap;
            for (size_t j = 0; j < (size_t)m * V; j++) lg[j] = softcap * tanhf(lg[j] * inv);
        }
        if (softcap > 0 && dx) {
            if (!row) return NAN;
            /* per row: the softmax gradient into row, then through the cap (tanh = logit / cap) */
            for (int r = 0; r < m; r++) {
                float *z = lg + (size_t)r * V;
                total += pulse_crossentropy_forward_backward(row, losses ? losses + n0 + r : NULL, z,
                                                             targets + n0 + r, 1, V, dloss_scale);
                const float inv = 1.0f / softcap;
                for (int j = 0; j < V; j++) {
                    const float t = z[j] * inv;
                    z[j] = row[j] * (1.0f - t * t);
                }
            }
        } else
            total += pulse_crossentropy_forward_backward(dx ? lg : NULL, losses ? losses + n0 : NULL, lg,
                                                         targets + n0, m, V, dloss_scale);
        if (dx) pulse_qmatmul_backward(dx + (size_t)n0 * C, lg, W, type, m, V, C);
    }
    return total;
}
