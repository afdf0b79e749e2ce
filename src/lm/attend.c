/* lm/attend.c — owns the decoder's attention over the paged KV cache: one chunk token's query heads of one kv
 * head against its sequence's positions (sliding window included), computed as ggml's non-flash CPU path with
 * the llama.cpp-exact primitives of kernels/ggml_exact.h. Called by lm_forward_chunk (src/lm/forward.c). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ggml_exact.h"
#include "lm/lm_internal.h"
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif

/* Attention of chunk token i for kv head kh at layer il: query heads g0..g1-1 of its group of
 * grp = n_head / n_head_kv (adjacent in q) over positions [lo, pos] of its sequence, the window of a
 * sliding-window layer; each K and V row is read once for the group, walking the sequence's KV blocks (rows
 * of a block are contiguous). att (n, n_head * head_dim) gets the group's outputs. The numbers are ggml's
 * non-flash CPU path: KQ = f16(q) . K (f16 dot in the lanes of dot_f16_lanes), softmax(scale * KQ) in f32
 * (ggml_v_expf, 16-position partial sums added in f64), the probabilities rounded to f16 and multiplied into
 * V (f16) with the same lane structure over positions. llama / qwen2 scale KQ in the softmax, gemma3 / phi3
 * scale Q itself (which differs once f16 rounds small values to subnormals). llama.cpp evaluates a
 * sequence's tokens of one batch together: tinyBLAS lanes (16) for 2 or more tokens, vec_dot_f16's (64) for
 * one. Scratch: thread thr's att_stride floats. */
void lm_attend(pulse_lm_ctx *c, const lm_layer *L, int il, int i, int kh, int g0, int g1, const float *q,
               float *att, int thr) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int HD = hp->head_dim, NH = hp->n_head, grp = NH / hp->n_head_kv, B = c->p.kv_block;
    const int s = c->sq[i], p = c->pos[i], nctx = c->p.n_ctx, ng = g1 - g0;
    const int swa = L->is_swa ? hp->n_swa : 0;
    const int lo = swa > 0 && p - swa + 1 > 0 ? p - swa + 1 : 0;
    const int R = c->seq_cnt[s] >= 2 ? 16 : 64;
    const int *blocks = c->seqs[s].blocks;
    const size_t layer_off = (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)kh * HD;
    const int scale_q = hp->arch == PULSE_LM_ARCH_GEMMA3 || hp->arch == PULSE_LM_ARCH_PHI3;
    const float scale = scale_q ? 1.0f : hp->attn_scale, qscale = scale_q ? hp->attn_scale : 1.0f;
    float *sc = c->att_scratch + (size_t)thr * c->att_stride;          /* (ng, n_ctx) by absolute position */
    float *acc = sc + (size_t)grp * nctx + 16;                         /* (ng, R, HD) lane accumulators */
    uint16_t *q16 = (uint16_t *)(void *)(acc + (size_t)grp * 64 * HD); /* (ng, HD) */
    for (int g = g0; g < g1; g++) {
        const float *qh = q + ((size_t)i * NH + (size_t)kh * grp + g) * HD;
        uint16_t *qd = q16 + (size_t)(g - g0) * HD;
        if (qscale != 1.0f) {
            float qs[1024]; /* head_dim <= 1024 (checked at load) */
            for (int t = 0; t < HD; t++) qs[t] = qh[t] * qscale;
            pk_f16_row(qd, qs, HD);
        } else
            pk_f16_row(qd, qh, HD);
    }
    /* the f16 operands as floats (exact): q once per head, each K row once for the group's heads (acc is
     * free until P.V) */
    float *qf = acc, *kf = acc + (size_t)ng * HD;
    pulse_dequantize_row(PULSE_GGML_F16, q16, qf, (int64_t)ng * HD);
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const uint16_t *kb = c->k_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            pulse_dequantize_row(PULSE_GGML_F16, kb + (size_t)(j - bi * B) * c->kv_dim, kf, HD);
            for (int g = 0; g < ng; g++)
                sc[(size_t)g * nctx + j] = pk_dot_f16_lanes(qf + (size_t)g * HD, kf, HD, R) * scale;
        }
    }
    for (int g = 0; g < ng; g++) {
        float *sg = sc + (size_t)g * nctx, mx = -INFINITY;
        for (int j = lo; j <= p; j++)
            if (sg[j] > mx) mx = sg[j];
        double sum = 0;
        for (int j0 = lo / 16 * 16; j0 <= p; j0 += 16) { /* 16-position chunks from position 0 */
            float e[16];
#if defined(__AVX2__) && defined(__FMA__)
            if (j0 >= lo && j0 + 16 <= p + 1 && pc_simd_v3) { /* a whole chunk inside [lo, p] */
                const __m256 m = _mm256_set1_ps(mx);
                _mm256_storeu_ps(e, pk_ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0), m)));
                _mm256_storeu_ps(e + 8, pk_ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0 + 8), m)));
                memcpy(sg + j0, e, sizeof e);
                sum += (double)pk_red16(e);
                continue;
            }
#endif
            for (int u = 0; u < 16; u++) {
                const int j = j0 + u;
                e[u] = j >= lo && j <= p ? pk_ggml_expf(sg[j] - mx) : 0.0f;
                if (j >= lo && j <= p) sg[j] = e[u];
            }
            sum += (double)pk_red16(e);
        }
        const float inv = (float)(1.0 / sum);
        int j = lo;
#ifdef __F16C__
        const __m256 iv = _mm256_set1_ps(inv); /* the same product and f16 rounding, 8 at a time */
        for (; pc_simd_v3 && j + 8 <= p + 1; j += 8)
            _mm256_storeu_ps(sg + j,
                             _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(sg + j), iv), 0)));
#endif
        for (; j <= p; j++) sg[j] = pulse_fp16_to_fp32(pulse_fp32_to_fp16(sg[j] * inv));
    }
#if defined(__F16C__) && defined(__FMA__)
    if (HD % 8 == 0 && ng <= 8 && pc_simd_v3) {
        /* the same sums 8 dimensions at a time, the R lane accumulators of each head in registers / L1
         * instead of (R, HD) rows in memory */
        __m256 A[8 * 64];
        for (int tc = 0; tc < HD; tc += 8) {
            for (int x = 0; x < ng * R; x++) A[x] = _mm256_setzero_ps();
            for (int j = lo; j <= p;) {
                const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
                const uint16_t *vb = c->v_pool + (size_t)blocks[bi] * c->blk_floats + layer_off + tc;
                for (; j <= end; j++) {
                    const __m256 vv = _mm256_cvtph_ps(
                        _mm_loadu_si128((const __m128i *)(vb + (size_t)(j - bi * B) * c->kv_dim)));
                    for (int g = 0; g < ng; g++) {
                        const float w = sc[(size_t)g * nctx + j];
                        if (w != 0.0f) {
                            __m256 *a = &A[g * R + (j & (R - 1))]; /* R: 16 or 64 */
                            *a = _mm256_fmadd_ps(_mm256_set1_ps(w), vv, *a);
                        }
                    }
                }
            }
            for (int g = 0; g < ng; g++) { /* the reduction tree of reduce_rows */
                __m256 *l = A + g * R;
                if (R == 64)
                    for (int u = 0; u < 16; u++)
                        l[u] = _mm256_add_ps(_mm256_add_ps(l[u], l[u + 32]),
                                             _mm256_add_ps(l[u + 16], l[u + 48]));
                __m256 t3[8], t6[4];
                for (int x = 0; x < 8; x++) t3[x] = _mm256_add_ps(l[x + 8], l[x]);
                for (int x = 0; x < 4; x++) t6[x] = _mm256_add_ps(t3[x + 4], t3[x]);
                _mm256_storeu_ps(att + ((size_t)i * NH + (size_t)kh * grp + g0 + g) * HD + tc,
                                 _mm256_add_ps(_mm256_add_ps(t6[0], t6[2]), _mm256_add_ps(t6[1], t6[3])));
            }
        }
        return;
    }
#endif
    memset(acc, 0, sizeof(float) * (size_t)ng * R * HD);
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const uint16_t *vb = c->v_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            const uint16_t *vr = vb + (size_t)(j - bi * B) * c->kv_dim;
            for (int g = 0; g < ng; g++) {
                const float w = sc[(size_t)g * nctx + j];
                if (w != 0.0f) pk_fma_row_f16(acc + ((size_t)g * R + (size_t)(j & (R - 1))) * HD, w, vr, HD);
            }
        }
    }
    for (int g = 0; g < ng; g++)
        pk_reduce_lane_rows(att + ((size_t)i * NH + (size_t)kh * grp + g0 + g) * HD, acc + (size_t)g * R * HD,
                            R, HD);
}
