/* kernels/attention_train.c — owns the decoders' training-time causal self-attention (LoRA training), forward
 * and backward side by side: fp32, grouped-query heads, sliding window, optional logit soft-cap, padded
 * sequences. Flash-attention style bookkeeping: the forward saves only each query row's log-sum-exp, the
 * backward recomputes the probabilities tile by tile, so nothing of size T x T lives between the two passes.
 * Each (sequence, kv head) is one work item (its query heads write the same dk / dv rows, so they stay on one
 * thread); inside, query rows go in tiles of QB and each tile only meets the keys it can see (causal and
 * window), the products through OpenBLAS sgemm on the strided head columns. */
#include "pulse/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/internal.h"
#include "pulse/kernels_bf16.h"

enum { QB = 64 }; /* query rows per tile */

/* keys [*j0, *j1) that rows [i0, i1) may see */
static void tile_keys(int i0, int i1, int window, int *j0, int *j1) {
    *j0 = window > 0 && i0 - window + 1 > 0 ? i0 - window + 1 : 0;
    *j1 = i1;
}

/* S (qb, nk) = scale * q rows [i0, i1) of head column qc . k rows [j0, j1) of kv column kc, then capped;
 * entries a row may not see become -inf. tq: cap's tanh values kept in th (same shape) when softcap > 0 */
static void tile_scores(float *S, float *th, const float *q, const float *k, int ldq, int ldk, int i0, int i1,
                        int j0, int j1, const pulse_attn_params *p) {
    const int qb = i1 - i0, nk = j1 - j0, HD = p->head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, nk, HD, p->scale, q + (size_t)i0 * ldq, ldq,
                k + (size_t)j0 * ldk, ldk, 0.0f, S, nk);
    for (int r = 0; r < qb; r++) {
        const int i = i0 + r, lo = p->window > 0 && i - p->window + 1 > 0 ? i - p->window + 1 : 0;
        float *s = S + (size_t)r * nk;
        if (p->softcap > 0) {
            const float cap = p->softcap, inv = 1.0f / cap;
            float *t = th + (size_t)r * nk;
#pragma omp simd
            for (int c = 0; c < nk; c++) {
                t[c] = pk_tanhf(s[c] * inv);
                s[c] = cap * t[c];
            }
        }
        for (int c = 0; c < lo - j0; c++) s[c] = -INFINITY;
        for (int c = i + 1 - j0; c < nk; c++) s[c] = -INFINITY;
    }
}

/* per-thread scratch: S, dP / th (QB, T) each */
static float *att_scratch(int T, int which) {
    float *w = pk_scratch(PK_SCR_ATT_TRAIN, sizeof(float) * (size_t)QB * (size_t)T * 3);
    return w ? w + (size_t)which * QB * T : NULL;
}

static int att_threads(int B, int T, const pulse_attn_params *p) {
    const double work = (double)B * p->n_head * (double)T * T * p->head_dim;
    return B * p->n_head_kv > 1 && work > 4e6; /* smaller: the fork / join costs more than it saves */
}

/* the bf16 form (attention_train_bf16.c) where asked for and the CPU and shapes allow it */
static int use_bf16(const pulse_attn_params *p) {
    return p->bf16 && p->softcap <= 0 && p->head_dim % 16 == 0 && pulse_bf16_supported();
}

/* ---- forward: out (B, T, NH * HD), lse (B, NH, T) ---- */
void pulse_causal_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                    const int *lens, int B, int T, const pulse_attn_params *p) {
    const int NH = p->n_head, NKV = p->n_head_kv, HD = p->head_dim, grp = NH / NKV;
    const int ldq = NH * HD, ldk = NKV * HD;
    if (B <= 0 || T <= 0) return;
    if (use_bf16(p)) {
#pragma omp parallel for schedule(dynamic, 1) if (att_threads(B, T, p))
        for (int it = 0; it < B * NKV; it++) pk_attn_train_bf16_forward(out, lse, q, k, v, lens, B, T, p, it);
        return;
    }
    pk_blas_single();
#pragma omp parallel for schedule(dynamic, 1) if (att_threads(B, T, p))
    for (int it = 0; it < B * NKV; it++) {
        const int b = it / NKV, kh = it % NKV;
        const int L = lens ? (lens[b] < 0 ? 0 : lens[b] > T ? T : lens[b]) : T;
        float *S = att_scratch(T, 0), *th = att_scratch(T, 1);
        const size_t r0 = p->row0 ? (size_t)p->row0[b] : (size_t)b * T; /* the sequence's first row */
        const float *kb = k + r0 * ldk + (size_t)kh * HD, *vb = v + r0 * ldk + (size_t)kh * HD;
        for (int g = 0; g < grp; g++) {
            const int h = kh * grp + g;
            const float *qb = q + r0 * ldq + (size_t)h * HD;
            float *ob = out + r0 * ldq + (size_t)h * HD, *lb = lse + ((size_t)b * NH + h) * T;
            for (int i = L; i < T; i++) { /* padding rows (packed: the next sequence's rows, untouched) */
                if (!p->row0) memset(ob + (size_t)i * ldq, 0, sizeof(float) * (size_t)HD);
                lb[i] = 0.0f;
            }
            if (!S || !th) { /* out of memory: NaN out, never a crash */
                for (int i = 0; i < L; i++)
                    for (int d = 0; d < HD; d++) ob[(size_t)i * ldq + d] = NAN;
                continue;
            }
            for (int i0 = 0; i0 < L; i0 += QB) {
                const int i1 = i0 + QB < L ? i0 + QB : L;
                int j0, j1;
                tile_keys(i0, i1, p->window, &j0, &j1);
                const int nk = j1 - j0;
                tile_scores(S, th, qb, kb, ldq, ldk, i0, i1, j0, j1, p);
                for (int r = 0; r < i1 - i0; r++) {
                    float *s = S + (size_t)r * nk, mx = -INFINITY;
                    PK_SIMD_MAX(mx)
                    for (int c = 0; c < nk; c++) mx = s[c] > mx ? s[c] : mx;
                    double sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (int c = 0; c < nk; c++) {
                        s[c] = pk_expf(s[c] - mx); /* -inf -> 0 */
                        sum += s[c];
                    }
                    const float inv = (float)(1.0 / sum);
#pragma omp simd
                    for (int c = 0; c < nk; c++) s[c] *= inv;
                    /* sum >= 1: the key i itself is always visible and gives exp(0) */
                    // cppcheck-suppress invalidFunctionArg
                    lb[i0 + r] = mx + (float)log(sum);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, HD, nk, 1.0f, S, nk,
                            vb + (size_t)j0 * ldk, ldk, 0.0f, ob + (size_t)i0 * ldq, ldq);
            }
        }
    }
}

/* ---- backward: with P = exp(score - lse) and D_i = dout_i . out_i,
 *   dV += P^T dout;  dP = dout V^T;  dS = P * (dP - D) (times 1 - tanh^2 through the cap);
 *   dQ += scale dS K;  dK += scale dS^T Q. ---- */
void pulse_causal_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                     const float *lse, const float *q, const float *k, const float *v,
                                     const int *lens, int B, int T, const pulse_attn_params *p) {
    const int NH = p->n_head, NKV = p->n_head_kv, HD = p->head_dim, grp = NH / NKV;
    const int ldq = NH * HD, ldk = NKV * HD;
    if (B <= 0 || T <= 0 || (!dq && !dk && !dv)) return;
    if (use_bf16(p)) {
#pragma omp parallel for schedule(dynamic, 1) if (att_threads(B, T, p))
        for (int it = 0; it < B * NKV; it++)
            pk_attn_train_bf16_backward(dq, dk, dv, dout, out, lse, q, k, v, lens, B, T, p, it);
        return;
    }
    pk_blas_single();
#pragma omp parallel for schedule(dynamic, 1) if (att_threads(B, T, p))
    for (int it = 0; it < B * NKV; it++) {
        const int b = it / NKV, kh = it % NKV;
        const int L = lens ? (lens[b] < 0 ? 0 : lens[b] > T ? T : lens[b]) : T;
        float *S = att_scratch(T, 0), *th = att_scratch(T, 1), *dP = att_scratch(T, 2);
        if (!S) continue; /* out of memory: no gradient rather than a crash */
        const size_t r0 = p->row0 ? (size_t)p->row0[b] : (size_t)b * T; /* the sequence's first row */
        const size_t kvo = r0 * ldk + (size_t)kh * HD;
        const float *kb = k + kvo, *vb = v + kvo;
        for (int g = 0; g < grp; g++) {
            const int h = kh * grp + g;
            const size_t qo = r0 * ldq + (size_t)h * HD;
            const float *qb = q + qo, *ob = out + qo, *dob = dout + qo, *lb = lse + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < L; i0 += QB) {
                const int i1 = i0 + QB < L ? i0 + QB : L, qb_n = i1 - i0;
                int j0, j1;
                tile_keys(i0, i1, p->window, &j0, &j1);
                const int nk = j1 - j0;
                tile_scores(S, th, qb, kb, ldq, ldk, i0, i1, j0, j1, p);
                for (int r = 0; r < qb_n; r++) { /* P in place of the scores */
                    float *s = S + (size_t)r * nk;
                    const float l = lb[i0 + r];
#pragma omp simd
                    for (int c = 0; c < nk; c++) s[c] = pk_expf(s[c] - l);
                }
                if (dv)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HD, qb_n, 1.0f, S, nk,
                                dob + (size_t)i0 * ldq, ldq, 1.0f, dv + kvo + (size_t)j0 * ldk, ldk);
                if (!dq && !dk) continue;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb_n, nk, HD, 1.0f,
                            dob + (size_t)i0 * ldq, ldq, vb + (size_t)j0 * ldk, ldk, 0.0f, dP, nk);
                for (int r = 0; r < qb_n; r++) {
                    const float *o = ob + (size_t)(i0 + r) * ldq, *d = dob + (size_t)(i0 + r) * ldq;
                    double D = 0;
                    for (int e = 0; e < HD; e++) D += (double)o[e] * d[e];
                    const float Df = (float)D;
                    float *s = S + (size_t)r * nk, *dp = dP + (size_t)r * nk;
                    if (p->softcap > 0) {
                        const float *t = th + (size_t)r * nk;
#pragma omp simd
                        for (int c = 0; c < nk; c++) dp[c] = s[c] * (dp[c] - Df) * (1.0f - t[c] * t[c]);
                    } else {
#pragma omp simd
                        for (int c = 0; c < nk; c++) dp[c] = s[c] * (dp[c] - Df);
                    }
                }
                if (dq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qb_n, HD, nk, p->scale, dP, nk,
                                kb + (size_t)j0 * ldk, ldk, 1.0f, dq + qo + (size_t)i0 * ldq, ldq);
                if (dk)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HD, qb_n, p->scale, dP, nk,
                                qb + (size_t)i0 * ldq, ldq, 1.0f, dk + kvo + (size_t)j0 * ldk, ldk);
            }
        }
    }
}
