/* pulse/quant.h — ggml weight types: block layouts, dequantisation, and quantised matrix-vector /
 * matrix-matrix products. Each product has a scalar reference (the _ref functions) that tests compare the
 * AVX2 path against. Weights are row-major in ggml's sense: a matrix of `rows` rows, each `cols` contiguous
 * elements (ne[0] = cols). */
#ifndef PULSE_QUANT_H
#define PULSE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/ggml.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The type numbering, names and block sizes are core's (pulse/ggml.h). */
int pulse_ggml_type_supported(int type); /* 1 if this build can dequantise and multiply it */

/* dst (n) = dequantised src row of n elements. */
void pulse_dequantize_row(int type, const void *src, float *dst, int64_t n);
void pulse_dequantize_row_ref(int type, const void *src, float *dst, int64_t n);

/* y (rows) = W (rows, cols; type) @ x (cols). x is quantised internally to the matching dot format
 * (q8_0 / q8_K) where the type needs it; the scratch for that lives in a thread-local buffer. OpenMP over
 * rows. */
void pulse_qmatvec(float *y, const void *W, int type, const float *x, int rows, int cols);
void pulse_qmatvec_ref(float *y, const void *W, int type, const float *x, int rows, int cols);
/* Y (N, rows) = X (N, cols) @ W^T: several activation rows against one weight matrix (prefill, batched
 * decode). */
void pulse_qmatmul(float *Y, const void *W, int type, const float *X, int N, int rows, int cols);

/* ---- training through a frozen quantised W (src/kernels/qlinear.c): a block of W's rows dequantised at a
 * time into the calling thread's scratch (at most 4 MiB) and the bf16 GEMM of pulse/kernels_bf16.h (fp32
 * sgemm without AVX512-BF16 or with PULSE_BF16=0); W is never materialised whole in fp32. ----
 * Y (N, rows) = X (N, cols) @ W^T, SET; X is not quantised (unlike pulse_qmatmul). */
void pulse_qmatmul_dq(float *Y, const float *X, const void *W, int type, int N, int rows, int cols);
/* The input gradient of Y = X W^T: dX (N, cols) += dY (N, rows) @ W. */
void pulse_qmatmul_backward(float *dX, const float *dY, const void *W, int type, int N, int rows, int cols);
/* The same with dY's rows ldy floats apart (ldy >= rows). */
void pulse_qmatmul_backward_ld(float *dX, const float *dY, int ldy, const void *W, int type, int N, int rows,
                               int cols);
/* W (rows, cols; type) transposed and requantised for dX = dY W on the int8 tiles: row c of Wt, at
 * Wt + c * ldt bytes, is column c of W as rows / 32 q8_0 blocks along W's rows (ldt >=
 * pulse_ggml_row_size(Q8_0, rows); a larger ldt and an offset Wt lay several weights side by side, the
 * transpose of their row-wise concatenation). Then pulse_qmatmul(dX, Wt, PULSE_GGML_Q8_0, dY, N, cols, rows)
 * sets dX (N, cols) = dY (N, rows) @ W with dY quantised to q8_0 (error of the order of bf16's). Needs
 * rows % 32 == 0; returns 0 otherwise or out of memory (Wt then incomplete), 1 on success. */
int pulse_qtranspose_q8_0(void *Wt, size_t ldt, const void *W, int type, int rows, int cols);
/* Scalar reference of the same (scalar dequantiser, double sums), for tests. */
void pulse_qmatmul_backward_ref(float *dX, const float *dY, const void *W, int type, int N, int rows,
                                int cols);
/* The output head and cross-entropy at the rows that carry loss only: x (N, C) the final-normed hidden rows
 * of those positions, W (V, C) the tied or separate head, targets (N) in [0, V) or -1 (ignored), softcap > 0
 * caps the logits (z -> softcap tanh(z / softcap)). nb rows at a time through logits_scratch (nb, V). losses
 * (N) may be NULL; dx (N, C) += d(sum of losses * dloss_scale) / dx, NULL = loss only. Returns the summed
 * loss of the kept rows. */
double pulse_qhead_loss(float *dx, float *losses, const float *x, const void *W, int type, const int *targets,
                        int N, int C, int V, float softcap, float dloss_scale, float *logits_scratch, int nb);

/* fp16 / bf16 conversions. */
float pulse_fp16_to_fp32(uint16_t h);
uint16_t pulse_fp32_to_fp16(float f);
float pulse_bf16_to_fp32(uint16_t h);

/* ---- additions (lmcore) ---- */
/* Reference quantiser: dst = src (n elements, a multiple of the block size) in `type` (simple min/max
 * scales, not llama.cpp's search; for tests and synthetic GGUF files). Returns bytes written, 0 if the type
 * cannot be quantised here. */
size_t pulse_quantize_row(int type, const float *src, void *dst, int64_t n);
/* Scalar reference of pulse_qmatmul (same activation quantisation, integer dot products). */
void pulse_qmatmul_ref(float *Y, const void *W, int type, const float *X, int N, int rows, int cols);
/* The dot kernels use AVX512-VNNI (256-bit vpdpbusd) when the CPU has it, chosen at the first product; with
 * it, batches of activation rows also take the tiled VNNI kernels (q4_0 / q5_0 / q8_0 / q4_1 / q5_1, q4_K,
 * q6_K), without it the tiled AVX2 ones (the same types; q6_K in its tiled order), unless
 * pulse_options.qtile is 0 at that moment (the CLI's PULSE_QTILE=0: the per-row kernels). enable = 0 / 1
 * forces the plain AVX2 kernels / VNNI where supported (tests, benchmarks); -1 only queries. Returns whether
 * VNNI is in use. Results are identical either way (integer sums are exact, float orders llama.cpp's). */
int pulse_quant_use_vnni(int enable);
/* Several weight matrices that read the same input (Q/K/V, gate/up): Y_j (N, rows_j) = X (N, cols) @ W_j^T
 * for each job, with X quantised once per activation format and all the rows in one parallel region (one
 * fork/join instead of one per matrix). Results are identical to separate pulse_qmatmul calls. */
typedef struct {
    const void *W; /* rows x cols weights of `type` */
    int type;
    int rows;
    float *Y; /* N x rows */
} pulse_qmm_job;
#define PULSE_QMM_MAX_JOBS 16
void pulse_qmatmul_multi(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols);
/* pulse_qmatmul / pulse_qmatmul_multi in training's order where this CPU has its kernels (AVX512-VNNI or
 * AVX2 tiles; q4_0 / q5_0 / q8_0 / q4_1 / q5_1 weights, 16 or more activation rows): the same quantised
 * activations, each block's integer sum completed before one fma per block (acc = fma(isum, dw dx, acc), then
 * + mw s for q4_1 / q5_1), where llama.cpp keeps 8 float lanes per block — 2.0-2.2x the tiles' throughput
 * with VNNI, 1.3-2.0x at AVX2 (Zen 4), within rounding of llama.cpp's order but not bit-equal to it.
 * Elsewhere (other types, the portable level, PULSE_QTILE=0, small batches) exactly pulse_qmatmul.
 * Independent of the thread count. For LoRA training's frozen products; inference keeps llama.cpp's order. */
void pulse_qmatmul_fast(float *Y, const void *W, int type, const float *X, int N, int rows, int cols);
void pulse_qmatmul_multi_fast(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols);
/* llama.cpp's CPU backend sums K-quant products in orders that depend on the batch: q4_K (repacked weights)
 * takes rows in groups of four and the last N % 4 rows one at a time (PULSE_QROW_ONE); q6_K goes through its
 * tiled kernel when the batch has 8 or more rows (PULSE_QROW_TILED), else through vec_dot. The products here
 * reproduce each order bit for bit (q5_K, which neither model uses, is within rounding, not in order);
 * pulse_quant_set_row_orders(orders, n) sets, for the following products on the calling thread, the flags of
 * activation row i to orders[i] (the LM sets them per sequence, as llama.cpp would evaluate that sequence
 * alone). NULL restores the default for N rows: ONE for the last N % 4, TILED for all when N >= 8. The array
 * must stay valid until reset. */
enum { PULSE_QROW_ONE = 1, PULSE_QROW_TILED = 2 };
void pulse_quant_set_row_orders(const uint8_t *orders, int n);
/* The flags llama.cpp's orders give row i of a batch of n rows (the default above). */
static inline uint8_t pulse_quant_row_order(int i, int n) {
    return (uint8_t)((i >= n - n % 4 ? PULSE_QROW_ONE : 0) | (n >= 8 ? PULSE_QROW_TILED : 0));
}
/* 1 when the AVX2 kernels are compiled in. */
int pulse_quant_has_avx2(void);

#ifdef __cplusplus
}
#endif
#endif
