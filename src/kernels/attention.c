/* kernels/attention.c — owns multi-head scaled dot-product attention on separate q, k, v (key padding mask,
 * optional causal mask), forward and backward side by side. */
#include "pulse/kernels.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/internal.h"

/* Scores and masked row softmax into att; when do_av, also out = att V per head (the no-dropout path). */
static void att_forward_heads(float *out, float *att, const float *q, const float *k, const float *v,
                              const uint8_t *key_mask, int B, int T, int C, int NH, int causal, int do_av) {
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int par = B * NH > 1 && (double)B * NH * T * T * hs > PK_PAR_ATT;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (par)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hs;
            float *A = att + ((size_t)b * NH + h) * T * T;
            const uint8_t *km = key_mask ? key_mask + (size_t)b * T : NULL;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q + off, C, k + off, C,
                        0.0f, A, T);
            for (int t = 0; t < T; t++) {
                float *arow = A + (size_t)t * T;
                int jend = causal ? t + 1 : T;
                float maxv = -INFINITY;
                if (km) {
#pragma omp simd
                    for (int j = 0; j < jend; j++) arow[j] = km[j] ? arow[j] : -INFINITY;
                }
                PK_SIMD_MAX(maxv)
                for (int j = 0; j < jend; j++) maxv = arow[j] > maxv ? arow[j] : maxv;
                if (maxv == -INFINITY) {
                    memset(arow, 0, (size_t)T * sizeof(float));
                    continue;
                }
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < jend; j++) {
                    float e = pk_expf(arow[j] - maxv); /* masked: exp(-inf) = 0 */
                    arow[j] = e;
                    sum += e;
                }
                float inv = 1.0f / sum;
#pragma omp simd
                for (int j = 0; j < jend; j++) arow[j] *= inv;
                for (int j = jend; j < T; j++) arow[j] = 0.0f;
            }
            if (do_av)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, A, T, v + off, C, 0.0f,
                            out + off, C);
        }
    }
}

/* out (B, T, C) = P V per head, P (B, NH, T, T) the (dropped-out) probabilities. */
static void att_av_heads(float *out, const float *P, const float *v, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const int par = B * NH > 1 && (double)B * NH * T * T * hs > PK_PAR_ATT;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (par)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f,
                        P + ((size_t)b * NH + h) * T * T, T, v + off, C, 0.0f, out + off, C);
        }
}

/* attd/dmask/p: the dropped-out probabilities and their keep mask (NULL, NULL, 0 without dropout). */
static void att_backward_heads(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                               const float *att, const float *attd, const uint8_t *dmask, float p,
                               const float *q, const float *k, const float *v, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    const int par = B * NH > 1 && (double)B * NH * T * T * hs > PK_PAR_ATT;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (par)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hs;
            const size_t aoff = ((size_t)b * NH + h) * T * T;
            const float *A = att + aoff;
            float *dA = datt_scratch + aoff;
            if (dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, attd ? attd + aoff : A,
                            T, dout + off, C, 1.0f, dv + off, C);
            if (!dq && !dk) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dout + off, C, v + off, C,
                        0.0f, dA, T);
            if (dmask) { /* d(probabilities) = d(dropped) * mask / (1 - p) */
                const uint8_t *M = dmask + aoff;
                const float keep = 1.0f / (1.0f - p);
#pragma omp simd
                for (size_t j = 0; j < (size_t)T * T; j++) dA[j] = M[j] ? dA[j] * keep : 0.0f;
            }
            for (int t = 0; t < T; t++) {
                const float *arow = A + (size_t)t * T;
                float *drow = dA + (size_t)t * T;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int j = 0; j < T; j++) s += arow[j] * drow[j];
#pragma omp simd
                for (int j = 0; j < T; j++) drow[j] = arow[j] * (drow[j] - s) * scale;
            }
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, dA, T, k + off, C,
                            1.0f, dq + off, C);
            if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, dA, T, q + off, C, 1.0f,
                            dk + off, C);
        }
    }
}

/* ---- forward ----
 * q, k, v, out (B, T, C), heads of hs = C / NH; att (B, NH, T, T) probabilities saved for backward;
 * key_mask (B, T) or NULL; causal: query t sees keys j <= t. A query with no visible key: att row 0, out 0.
 * Per (b, h): S = Q_h K_h^T / sqrt(hs) (sgemm), masked row softmax, O_h = A V_h (sgemm). */
void pulse_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             const uint8_t *key_mask, int B, int T, int C, int NH, int causal) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    pk_blas_single(); /* each (b, h) pair calls sgemm from inside the OpenMP region */
    att_forward_heads(out, att, q, k, v, key_mask, B, T, C, NH, causal, 1);
}

/* ---- backward ----
 * dq, dk, dv (B, T, C) accumulate; datt_scratch (B, NH, T, T) caller-owned scratch; dout (B, T, C); att from
 * forward. Per (b, h): dV_h += A^T dO_h; dA = dO_h V_h^T; dS = A * (dA - rowsum(A * dA)) / sqrt(hs);
 * dQ_h += dS K_h; dK_h += dS^T Q_h. Masked entries have A == 0, hence dS == 0: the masks need not be passed
 * again. Each (b, h) pair owns its slices of dq/dk/dv, so the result does not depend on the thread count. */
void pulse_attention_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                              const float *att, const float *q, const float *k, const float *v, int B, int T,
                              int C, int NH) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    pk_blas_single(); /* each (b, h) pair calls sgemm from inside the OpenMP region */
    att_backward_heads(dq, dk, dv, datt_scratch, dout, att, NULL, NULL, 0.0f, q, k, v, B, T, C, NH);
}

/* ---- forward with dropout on the attention probabilities (torch nn.MultiheadAttention(dropout=p)) ----
 * As pulse_attention_forward, plus attd (B, NH, T, T) = dropout(att) and its keep mask dmask (B, NH, T, T),
 * drawn serially from rng after the softmax (deterministic for any thread count); out = attd V.
 * rng NULL: dmask is the caller's keep mask (input, 0/1 bytes), only read.
 * p == 0: pulse_attention_forward (attd and dmask are not written and may be NULL). */
void pulse_attention_dropout_forward(float *out, float *att, float *attd, uint8_t *dmask, const float *q,
                                     const float *k, const float *v, const uint8_t *key_mask, int B, int T,
                                     int C, int NH, int causal, float p, pulse_rng *rng) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    pk_blas_single();
    if (p <= 0) { /* no dropout (evaluation): the plain kernel, attd and dmask untouched */
        att_forward_heads(out, att, q, k, v, key_mask, B, T, C, NH, causal, 1);
        return;
    }
    att_forward_heads(out, att, q, k, v, key_mask, B, T, C, NH, causal, 0);
    if (rng)
        pulse_dropout_forward(attd, dmask, att, (size_t)B * NH * T * T, p, rng);
    else
        pulse_dropout_apply(attd, dmask, att, (size_t)B * NH * T * T, p);
    att_av_heads(out, attd, v, B, T, C, NH);
}

/* ---- backward with attention-probability dropout ----
 * As pulse_attention_backward, with attd, dmask from the forward: dV_h += Ad^T dO_h; dAd = dO_h V_h^T;
 * dA = dAd * mask / (1 - p); then the softmax backward on the undropped A. */
void pulse_attention_dropout_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                                      const float *att, const float *attd, const uint8_t *dmask,
                                      const float *q, const float *k, const float *v, int B, int T, int C,
                                      int NH, float p) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    pk_blas_single();
    att_backward_heads(dq, dk, dv, datt_scratch, dout, att, p > 0 ? attd : NULL, p > 0 ? dmask : NULL, p, q,
                       k, v, B, T, C, NH);
}
