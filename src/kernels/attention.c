/* kernels/attention.c — owns multi-head scaled dot-product attention on separate q, k, v (key padding mask,
 * optional causal mask), forward and backward side by side. */
#include "pulse/kernels.h"

#include <math.h>
#include <string.h>

#include "kernels/internal.h"

/* ---- forward ----
 * q, k, v, out (B, T, C), heads of hs = C / NH; att (B, NH, T, T) probabilities saved for backward;
 * key_mask (B, T) or NULL; causal: query t sees keys j <= t. A query with no visible key: att row 0, out 0.
 */
void pulse_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             const uint8_t *key_mask, int B, int T, int C, int NH, int causal) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(3) schedule(static) if ((long)B * NH * T * T * hs > PK_PAR_WORK * 4)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * C + (size_t)h * hs;
                float *arow = att + (((size_t)b * NH + h) * T + t) * T;
                float *ot = out + ((size_t)b * T + t) * C + (size_t)h * hs;
                const uint8_t *km = key_mask ? key_mask + (size_t)b * T : NULL;
                int jend = causal ? t + 1 : T;
                float maxv = -INFINITY;
                int any = 0;
                for (int j = 0; j < jend; j++) {
                    if (km && !km[j]) continue;
                    const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * hs;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int i = 0; i < hs; i++) s += qt[i] * kj[i];
                    s *= scale;
                    arow[j] = s;
                    if (s > maxv) maxv = s;
                    any = 1;
                }
                memset(ot, 0, (size_t)hs * sizeof(float));
                if (!any) {
                    memset(arow, 0, (size_t)T * sizeof(float));
                    continue;
                }
                float sum = 0.0f;
                for (int j = 0; j < jend; j++) {
                    if (km && !km[j]) {
                        arow[j] = 0.0f;
                        continue;
                    }
                    float e = expf(arow[j] - maxv);
                    arow[j] = e;
                    sum += e;
                }
                for (int j = jend; j < T; j++) arow[j] = 0.0f;
                float inv = 1.0f / sum;
                for (int j = 0; j < jend; j++) {
                    float a = arow[j] * inv;
                    arow[j] = a;
                    if (a == 0.0f) continue;
                    const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * hs;
#pragma omp simd
                    for (int i = 0; i < hs; i++) ot[i] += a * vj[i];
                }
            }
        }
    }
}

/* ---- backward ----
 * dq, dk, dv (B, T, C) accumulate; datt_scratch (B, NH, T, T) caller-owned scratch; dout (B, T, C); att from
 * forward. Entries with att == 0 (masked, causal, or underflowed) carry no gradient and are skipped, so the
 * causal and key masks need not be passed again. Parallel over (b, h): each pair owns its slices of dq/dk/dv.
 */
void pulse_attention_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                              const float *att, const float *q, const float *k, const float *v, int B, int T,
                              int C, int NH) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((long)B * NH * T * T * hs > PK_PAR_WORK * 4)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float *arow = att + (((size_t)b * NH + h) * T + t) * T;
                float *drow = datt_scratch + (((size_t)b * NH + h) * T + t) * T;
                const float *dot = dout + ((size_t)b * T + t) * C + (size_t)h * hs;
                const float *qt = q + ((size_t)b * T + t) * C + (size_t)h * hs;
                /* datt = dout_t . v_j ; dv_j += att * dout_t ; sum_j att * datt */
                float s = 0.0f;
                for (int j = 0; j < T; j++) {
                    float a = arow[j];
                    if (a == 0.0f) {
                        drow[j] = 0.0f;
                        continue;
                    }
                    const float *vj = v + ((size_t)b * T + j) * C + (size_t)h * hs;
                    float d = 0.0f;
#pragma omp simd reduction(+ : d)
                    for (int i = 0; i < hs; i++) d += dot[i] * vj[i];
                    drow[j] = d;
                    s += a * d;
                    if (dv) {
                        float *dvj = dv + ((size_t)b * T + j) * C + (size_t)h * hs;
#pragma omp simd
                        for (int i = 0; i < hs; i++) dvj[i] += a * dot[i];
                    }
                }
                if (!dq && !dk) continue;
                /* softmax backward: dpre_j = att_j (datt_j - s); dq_t += scale dpre_j k_j; dk_j += scale
                 * dpre_j q_t */
                float *dqt = dq ? dq + ((size_t)b * T + t) * C + (size_t)h * hs : NULL;
                for (int j = 0; j < T; j++) {
                    float a = arow[j];
                    if (a == 0.0f) continue;
                    float g = a * (drow[j] - s) * scale;
                    drow[j] = g;
                    if (dqt) {
                        const float *kj = k + ((size_t)b * T + j) * C + (size_t)h * hs;
#pragma omp simd
                        for (int i = 0; i < hs; i++) dqt[i] += g * kj[i];
                    }
                    if (dk) {
                        float *dkj = dk + ((size_t)b * T + j) * C + (size_t)h * hs;
#pragma omp simd
                        for (int i = 0; i < hs; i++) dkj[i] += g * qt[i];
                    }
                }
            }
        }
    }
}
