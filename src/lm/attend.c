/* lm/attend.c — owns the decoder's attention over the paged KV cache: one chunk token's query heads of one kv
 * head against its sequence's positions (sliding window included): the f16 queries and the cache's view for
 * the kernel kernels/attend_f16.c, which computes it as ggml's non-flash CPU path. Called by lm_forward_chunk
 * (src/lm/forward.c). */
#include <stdint.h>

#include "kernels/attend_f16.h"
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
 * one. The kernel (kernels/attend_f16.c) picks its instruction level. Scratch: thread thr's att_stride
 * floats. */
void lm_attend(pulse_lm_ctx *c, const lm_layer *L, int il, int i, int kh, int g0, int g1, const float *q,
               float *att, int thr) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int HD = hp->head_dim, NH = hp->n_head, grp = NH / hp->n_head_kv, B = c->p.kv_block;
    const int s = c->sq[i], p = c->pos[i], nctx = c->p.n_ctx, ng = g1 - g0;
    const int swa = L->is_swa ? hp->n_swa : 0;
    const int lo = swa > 0 && p - swa + 1 > 0 ? p - swa + 1 : 0;
    const int R = c->seq_cnt[s] >= 2 ? 16 : 64;
    const size_t layer_off = (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)kh * HD;
    const int scale_q = hp->arch == PULSE_LM_ARCH_GEMMA3 || hp->arch == PULSE_LM_ARCH_PHI3;
    const float scale = scale_q ? 1.0f : hp->attn_scale, qscale = scale_q ? hp->attn_scale : 1.0f;
    float *scratch = c->att_scratch + (size_t)thr * c->att_stride; /* the kernel's, then q16 */
    uint16_t *q16 = (uint16_t *)(void *)(scratch + pk_attend_scratch_floats(grp, nctx, HD)); /* (ng, HD) */
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
    const size_t t_off =
        (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)kh * HD * B; /* kt_pool, vt_pool */
    const pk_kv_span kv = {c->k_pool + layer_off,
                           c->v_pool + layer_off,
                           c->seqs[s].blocks,
                           c->blk_floats,
                           (size_t)c->kv_dim,
                           B,
                           c->kt_pool ? c->kt_pool + t_off : NULL,
                           c->vt_pool ? c->vt_pool + t_off : NULL,
                           !c->v_nonfinite};
    pk_attend_f16(att + ((size_t)i * NH + (size_t)kh * grp + g0) * HD, q16, ng, HD, &kv, lo, p, R, scale,
                  nctx, scratch);
}
