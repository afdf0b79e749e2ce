/* pulse/kernels.h — float32 kernels shared by every model (SASRec, BERT encoders, the decoder LM), written in
 * the llm.c manner: forward and backward side by side, shapes in the comments (B batch, T time, C channels,
 * OC output channels, NH heads, V vocabulary), no allocation inside them, OpenMP over rows, sgemm/sgemv from
 * OpenBLAS. Backward functions ACCUMULATE (+=) into gradient buffers, as in llm.c, so callers zero them once
 * per step; any gradient pointer may be NULL when that gradient is not needed. */
#ifndef PULSE_KERNELS_H
#define PULSE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear layer (PyTorch nn.Linear layout: weight is (OC, C)) ----
 * out (N, OC) = inp (N, C) @ weight^T + bias (OC); bias may be NULL. N == 1 uses sgemv. */
void pulse_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                          int OC);
/* dinp (N, C) += dout (N, OC) @ weight; dweight (OC, C) += dout^T @ inp; dbias (OC) += column sums of dout.
 */
void pulse_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, int N, int C, int OC);

/* ---- embeddings ----
 * out (N, C) = table[ids[n]] (V, C). ids outside [0, V) are a caller bug (checked by assert-free clamp: row
 * of 0s). */
void pulse_embedding_forward(float *out, const int *ids, const float *table, int N, int C, int V);
/* dtable (V, C) += scatter of dout (N, C) by ids; serial over N so duplicate ids are deterministic. */
void pulse_embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C, int V);

/* ---- LayerNorm over the last dim ----
 * out (N, C), saves mean (N) and rstd (N) for backward; weight/bias (C). */
void pulse_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int C, float eps);
void pulse_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int N, int C);

/* ---- activations (elementwise, n elements) ---- */
void pulse_gelu_forward(float *out, const float *inp, size_t n); /* exact erf GELU (BERT) */
void pulse_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void pulse_gelu_tanh_forward(float *out, const float *inp, size_t n); /* tanh approximation (GPT-2, Gemma) */
void pulse_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, size_t n);
void pulse_relu_forward(float *out, const float *inp, size_t n);
void pulse_relu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* ---- residual add: out (n) = a + b; backward is dinp_a += dout, dinp_b += dout ---- */
void pulse_residual_forward(float *out, const float *a, const float *b, size_t n);
void pulse_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- dropout (inverted): out = inp * mask / (1-p); mask (n) of 0/1 bytes drawn from rng. p == 0 copies.
 * ---- */
void pulse_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, pulse_rng *rng);
void pulse_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* ---- multi-head scaled dot-product attention on separate q, k, v ----
 * q, k, v, out: (B, T, C) with NH heads of hs = C/NH, head h in channels [h*hs, (h+1)*hs).
 * att: (B, NH, T, T) softmax probabilities, saved for backward.
 * key_mask: (B, T) 1 = position may be attended to, 0 = padding; NULL = all valid.
 * causal: query i sees keys j <= i only. A query row with no visible key gets all-zero probabilities and out
 * = 0. Scale 1/sqrt(hs). */
void pulse_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             const uint8_t *key_mask, int B, int T, int C, int NH, int causal);
/* datt_scratch: (B, NH, T, T) scratch the caller owns. dq, dk, dv (B, T, C) accumulate. */
void pulse_attention_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                              const float *att, const float *q, const float *k, const float *v, int B, int T,
                              int C, int NH);

/* ---- attention with dropout on the probabilities (torch nn.MultiheadAttention(dropout=p), training) ----
 * As above, plus attd (B, NH, T, T) = dropout(att) and dmask (B, NH, T, T) its keep mask (0/1 bytes), drawn
 * serially from rng after the softmax; out = attd V. att keeps the undropped probabilities for backward.
 * p == 0 is pulse_attention_forward (evaluation: attd and dmask are neither written nor read, may be NULL).
 */
void pulse_attention_dropout_forward(float *out, float *att, float *attd, uint8_t *dmask, const float *q,
                                     const float *k, const float *v, const uint8_t *key_mask, int B, int T,
                                     int C, int NH, int causal, float p, pulse_rng *rng);
void pulse_attention_dropout_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                                      const float *att, const float *attd, const uint8_t *dmask,
                                      const float *q, const float *k, const float *v, int B, int T, int C,
                                      int NH, float p);

/* ---- softmax cross-entropy over V classes ----
 * logits (N, V), targets (N) in [0, V) or -1 = ignore. losses (N) gets -log p[target] (0 for ignored).
 * dlogits (N, V) (may alias logits) is SET to (softmax - onehot) * dloss_scale for kept rows, 0 for ignored
 * rows. Returns the summed loss over kept rows. */
double pulse_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
                                           const int *targets, int N, int V, float dloss_scale);
/* Row softmax in place: x (N, V). */
void pulse_softmax_rows(float *x, int N, int V);

/* ---- binary cross-entropy with logits: loss = -[y log s(x) + (1-y) log(1-s(x))], stable form.
 * x, y, dx (n); dx is SET to (sigmoid(x) - y) * scale. Returns the summed loss. */
double pulse_bce_logits_forward_backward(float *dx, const float *x, const float *y, size_t n, float scale);

/* ---- row L2 normalisation (cosine similarity heads, InfoNCE) ----
 * out (N, C) = inp / max(||inp||, eps); norms (N) saved. */
void pulse_l2norm_forward(float *out, float *norms, const float *inp, int N, int C, float eps);
void pulse_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norms, int N,
                           int C);

/* ---- optimisers and gradient utilities ----
 * AdamW (decoupled weight decay, PyTorch semantics); t is the 1-based step count. weight_decay 0 = Adam. */
void pulse_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                        float beta1, float beta2, float eps, float weight_decay, int t);
double pulse_grad_norm_sq(const float *g, size_t n);
void pulse_scale(float *x, size_t n, float s);

#ifdef __cplusplus
}
#endif
#endif
