/* pulse/kernels_bf16.h — bf16 mixed-precision matrix products: inputs rounded to bfloat16 (round to nearest
 * even), products summed in fp32, fp32 in and out. Where the CPU has AVX512-BF16 (vdpbf16ps) the product runs
 * on it (about twice the fp32 FMA rate); elsewhere, or with pulse_options.bf16 = 0 (the CLI's PULSE_BF16=0),
 * every call falls back to the fp32 OpenBLAS sgemm, so callers never need to check. Everything around the
 * products (bias, LayerNorm, softmax, optimiser state, master weights) stays fp32. */
#ifndef PULSE_KERNELS_BF16_H
#define PULSE_KERNELS_BF16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the AVX512-BF16 kernel runs (CPU support and pulse_options.bf16, decided at the first call), 0 when
 * calls fall back to fp32 */
int pulse_bf16_supported(void);
/* x rounded to the nearest bfloat16 (ties to even), returned as a float (NaN stays NaN) */
float pulse_bf16_round(float x);

/* dst (n) = the bf16 bit patterns of src (n) as the products round their inputs (pulse_bf16_round's, ties to
 * even): a matrix that several products read, converted once (pulse_gemm_bf16a) */
void pulse_bf16_convert(uint16_t *dst, const float *src, size_t n);

/* C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C, row-major, as cblas_sgemm (trans flags: 0 = as
 * stored, 1 = transposed); beta == 0 never reads C. op(A) and op(B) are rounded to bf16, sums are fp32. */
void pulse_gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);
/* The same product with A already in bf16: A holds the bit patterns (the upper halves of the floats
 * pulse_bf16_round gives), row-major with lda, so nothing converts it again; equal to pulse_gemm_bf16 on the
 * floats those patterns stand for. The fp32 fallback widens A first (exact). */
void pulse_gemm_bf16a(int transA, int transB, int M, int N, int K, float alpha, const uint16_t *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);
/* Softmax cross-entropy with its gradient in bf16, for a head whose backward products read it in bf16
 * anyway (pulse_gemm_bf16a): as pulse_crossentropy_forward_backward (kernels.h) with dlogits (N, V) stored
 * rounded to bf16 (ties to even: the rounding pulse_gemm_bf16 applies to its inputs), so the products see
 * exactly what they would convert, at half the memory traffic. logits (N, V) is used as scratch (its values
 * are lost). Returns the summed loss; losses (N) may be NULL. */
double pulse_crossentropy_forward_backward_bf16(uint16_t *dlogits, float *losses, float *logits,
                                                const int *targets, int N, int V, float dloss_scale);
/* Scalar reference of the same product (inputs rounded with pulse_bf16_round, double sums): what the tests
 * compare pulse_gemm_bf16 against on any CPU. */
void pulse_gemm_bf16_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);

/* The linear layer of pulse/kernels.h with its products in bf16 (same shapes and accumulation rules):
 * out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC);
 * dinp (N, C) += dout (N, OC) @ weight; dweight (OC, C) += dout^T @ inp; dbias (OC) += column sums (fp32). */
void pulse_matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int N,
                               int C, int OC);
/* A weight (OC, C) converted once into the kernel's packed bf16 panels, for products whose weights do not
 * change between calls (inference): the fused forwards below take it as pw and skip converting the weight
 * each call. NULL when the kernel is not used (no AVX512-BF16, PULSE_BF16=0) or out of memory; pw == NULL
 * (or of another shape) makes a call convert the weight itself. The packed copy does not follow later changes
 * of the weight: pack again (or pass NULL) after an update. */
typedef struct pulse_bf16_weight pulse_bf16_weight;
pulse_bf16_weight *pulse_bf16_weight_pack(const float *weight, int OC, int C);
void pulse_bf16_weight_free(pulse_bf16_weight *w);

/* Fused forms of the forward (the epilogue of the product writes them, no extra pass over the output); pw:
 * the packed weight or NULL (above).
 * out (N, OC) = inp @ weight^T + bias + res (N, OC) (a residual connection; res must not alias out): */
void pulse_matmul_forward_residual_bf16(float *out, const float *inp, const float *weight, const float *bias,
                                        const float *res, int N, int C, int OC, const pulse_bf16_weight *pw);
/* h (N, OC) = inp @ weight^T + bias and g (N, OC) = GELU(h) (exact erf form, as pulse_gelu_forward); h may
 * be NULL when only g is wanted: */
void pulse_matmul_forward_gelu_bf16(float *h, float *g, const float *inp, const float *weight,
                                    const float *bias, int N, int C, int OC, const pulse_bf16_weight *pw);
/* the output split by columns into nout row-major arrays outs[i] (N, OC / nout) (the fused QKV product
 * straight into q, k, v); OC / nout not a multiple of 48 runs one product per output. */
void pulse_matmul_forward_split_bf16(float *const *outs, int nout, const float *inp, const float *weight,
                                     const float *bias, int N, int C, int OC, const pulse_bf16_weight *pw);
/* The transformer FFN of inference in one pass: out (N, C) = GELU(inp (N, C) @ w1 (FF, C)^T + b1) @ w2 (C,
 * FF)^T + b2 + res (N, C) (res NULL: none; must not alias out). With the kernel, pw1 and pw2 given (packed
 * w1, w2), C <= 512 and FF a multiple of 48, each block of 64 rows runs both products on one thread and its
 * hidden rows stay in bf16 (the second product's input) in the thread's cache: hidden is not touched.
 * Otherwise the two fused forwards above run through hidden (N, FF) scratch. */
void pulse_ffn_forward_bf16(float *out, float *hidden, const float *inp, const float *w1, const float *b1,
                            const float *w2, const float *b2, const float *res, int N, int C, int FF,
                            const pulse_bf16_weight *pw1, const pulse_bf16_weight *pw2);
/* The input gradient through a GELU (the FFN's second product): dh (N, C) = (dout (N, OC) @ weight (OC, C)) *
 * GELU'(h) with h (N, C) the GELU's input; dh is SET (the weight gradients come from
 * pulse_matmul_backward_bf16 with dinp NULL). */
void pulse_matmul_backward_gelu_bf16(float *dh, const float *dout, const float *weight, const float *h, int N,
                                     int C, int OC);
void pulse_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int N, int C, int OC);

/* Multi-head attention (pulse_attention_forward's shapes, masks and probabilities att (B, NH, T, T), kept in
 * fp32) with both products in bf16: scores from bf16 q and k with fp32 sums, the fp32 softmax, then out from
 * the probabilities and v rounded to bf16 (fp32 sums). att may be NULL when the probabilities are not wanted
 * (inference: no (B, NH, T, T) write). Falls back to pulse_attention_forward (fp32). */
void pulse_attention_forward_bf16(float *out, float *att, const float *q, const float *k, const float *v,
                                  const uint8_t *key_mask, int B, int T, int C, int NH, int causal);
/* Scalar reference of the same (double sums, libm exp) for the tests. */
void pulse_attention_forward_bf16_ref(float *out, float *att, const float *q, const float *k, const float *v,
                                      const uint8_t *key_mask, int B, int T, int C, int NH, int causal);

#ifdef __cplusplus
}
#endif
#endif
