/* lm/forward.c — owns the batched decoder forward, read top to bottom as llama2.c's forward(): one chunk of
 * tokens from any number of sequences goes through the embedding, every layer (RMSNorm, q/k/v projections
 * with optional biases and QK-norm, RoPE, attention over each token's own sequence in the paged KV cache
 * (src/lm/attend.c), output projection, optional post-norms, gated FFN), the final norm and the output
 * projection. The ops are the kernels' (pulse/kernels.h: RMSNorm, RoPE, SwiGLU / GEGLU; kernels/ggml_exact.h:
 * exp and the f16 helpers), the matrix products the quantised kernels (pulse_qmatvec / pulse_qmatmul)
 * straight from the file mapping. Also pulse_lm_decode, which splits a batch into chunks and reserves KV
 * slots. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif
#include "kernels/ggml_exact.h"
#include "pulse/kernels.h"
#include "pulse/quant.h"

/* out (n, W.rows) = X (n, W.cols) @ W^T (+ bias) */
static void linear(float *out, const lm_tensor *W, const lm_tensor *bias, const float *X, int n) {
    if (n == 1)
        pulse_qmatvec(out, W->data, W->type, X, W->rows, W->cols);
    else
        pulse_qmatmul(out, W->data, W->type, X, n, W->rows, W->cols);
    if (bias && bias->data) {
        const float *b = bias->data;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < W->rows; j++) out[(size_t)i * W->rows + j] += b[j];
    }
}

static void add_bias(float *out, const lm_tensor *bias, int n, int C) {
    if (!bias->data) return;
    const float *b = bias->data;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j];
}

/* y (n, out) += the attached adapter's update of layer il's projection t from x (n, in); nothing without one
 */
static void lora(pulse_lm_ctx *c, int il, int t, float *y, const float *x, int n) {
    if (!c->lora) return;
    const int i = il * LM_LT_N + t;
    lm_lora_apply(&c->lora->w[i], c->lora_scale, y, x, n, c->lora_t, c->lora_bt + c->lora_bt_off[i]);
}

/* pulse_options.lm_profile: charge the time since *t to section sec */
static void prof_mark(pulse_lm_ctx *c, double *t, int sec) {
    if (!c->prof_active) return;
    double now = pulse_now();
    c->prof[sec] += now - *t;
    *t = now;
}

/* Keep the rows of x (n, E) whose logits are wanted, in order, and give them the K-quant orders llama.cpp
 * gives its output rows (per sequence: rank among that sequence's wanted rows, of how many). Returns their
 * count. The last layer's FFN and the head then run on these rows only. */
static int gather_wanted(pulse_lm_ctx *c, float *x, const uint8_t *want, int n, int E) {
    int nw = 0;
    for (int i = 0; i < n; i++) {
        if (!want[i]) continue;
        int rank = 0, cnt = 0;
        for (int j = 0; j < n; j++)
            if (want[j] && c->sq[j] == c->sq[i]) {
                rank += j < i;
                cnt++;
            }
        if (nw != i) memmove(x + (size_t)nw * E, x + (size_t)i * E, sizeof(float) * (size_t)E);
        c->row_order[nw++] = pulse_quant_row_order(rank, cnt);
    }
    pulse_quant_set_row_orders(c->row_order, nw);
    return nw;
}

pulse_status lm_forward_chunk(pulse_lm_ctx *c, const int *tokens, int n, const uint8_t *want, float *out) {
    const pulse_lm *m = c->m;
    const pulse_lm_hparams *hp = &m->hp;
    const int E = hp->n_embd, HD = hp->head_dim, NH = hp->n_head, NKV = hp->n_head_kv, F = hp->n_ff;
    const int Q = NH * HD, KV = NKV * HD, half = hp->n_rot / 2;
    float *x = c->x, *xn = c->xn, *q = c->q, *k = c->k, *v = c->v, *att = c->att, *o = c->o;
    /* lm_profile 1: every chunk; N > 1: chunks of N tokens only (the batched steps) */
    c->prof_active = c->prof_on == 1 || (c->prof_on > 1 && c->prof_on == n);
    double pt = c->prof_active ? pulse_now() : 0;
    int all_wanted = 1, gathered = 0;
    for (int i = 0; i < n; i++) all_wanted &= want[i] != 0;

    /* summation orders of the K-quant products as llama.cpp evaluating each sequence's tokens of this chunk
     * as one batch (pulse_quant_set_row_orders) */
    for (int i = 0; i < n; i++) {
        const int s = c->sq[i];
        c->row_order[i] = pulse_quant_row_order(c->pos[i] - c->seqs[s].len, c->seq_cnt[s]);
    }
    pulse_quant_set_row_orders(c->row_order, n);
    /* embeddings */
    for (int i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes;
        pulse_dequantize_row(m->tok_embd.type, row, x + (size_t)i * E, E);
        if (m->emb_scale != 1.0f)
            for (int j = 0; j < E; j++) x[(size_t)i * E + j] *= m->emb_scale;
    }
    /* rope tables for both bases */
    float *cos_g = c->rope_cos, *sin_g = c->rope_sin;
    float *cos_l = c->rope_cos + (size_t)c->nb * (half + 1),
          *sin_l = c->rope_sin + (size_t)c->nb * (half + 1);
    pulse_rope_cache(cos_g, sin_g, c->pos, n, hp->n_rot, hp->rope_base, hp->rope_scale, m->freq_factors);
    if (hp->n_swa > 0)
        pulse_rope_cache(cos_l, sin_l, c->pos, n, hp->n_rot, hp->rope_base_swa, 1.0f, m->freq_factors);
    c->acts_n = n;
    prof_mark(c, &pt, LM_PROF_EMBD);

    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        if (c->acts) memcpy(c->acts + (size_t)il * c->nb * E, x, sizeof(float) * (size_t)n * E);
        pulse_rmsnorm_forward(xn, x, L->attn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        if (L->wqkv.data) {
            linear(q, &L->wqkv, &L->bqkv, xn, n);
            lora(c, il, LM_LT_QKV, q, xn, n);
            const int W = Q + 2 * KV;
            for (int i = 0; i < n; i++) {
                memcpy(k + (size_t)i * KV, q + (size_t)i * W + Q, sizeof(float) * KV);
                memcpy(v + (size_t)i * KV, q + (size_t)i * W + Q + KV, sizeof(float) * KV);
                memmove(q + (size_t)i * Q, q + (size_t)i * W, sizeof(float) * Q);
            }
        } else {
            /* one parallel region for the three projections, xn quantised once */
            pulse_qmm_job jobs[3] = {{L->wq.data, L->wq.type, L->wq.rows, q},
                                     {L->wk.data, L->wk.type, L->wk.rows, k},
                                     {L->wv.data, L->wv.type, L->wv.rows, v}};
            pulse_qmatmul_multi(jobs, 3, xn, n, E);
            add_bias(q, &L->bq, n, Q);
            add_bias(k, &L->bk, n, KV);
            add_bias(v, &L->bv, n, KV);
            lora(c, il, LM_LT_Q, q, xn, n);
            lora(c, il, LM_LT_K, k, xn, n);
            lora(c, il, LM_LT_V, v, xn, n);
        }
        prof_mark(c, &pt, LM_PROF_QKV);
        if (L->attn_q_norm.data) pulse_rmsnorm_forward(q, q, L->attn_q_norm.data, n * NH, HD, hp->norm_eps);
        if (L->attn_k_norm.data) pulse_rmsnorm_forward(k, k, L->attn_k_norm.data, n * NKV, HD, hp->norm_eps);
        const float *rc = L->is_swa ? cos_l : cos_g, *rs = L->is_swa ? sin_l : sin_g;
        pulse_rope_forward(q, rc, rs, n, NH, HD, hp->n_rot, hp->rope_neox);
        pulse_rope_forward(k, rc, rs, n, NKV, HD, hp->n_rot, hp->rope_neox);
        for (int i = 0; i < n; i++) { /* the cache holds f16 (llama.cpp's default type_k / type_v) */
            lm_kv_put(c, c->sq[i], il, c->pos[i], 0, k + (size_t)i * KV);
            lm_kv_put(c, c->sq[i], il, c->pos[i], 1, v + (size_t)i * KV);
        }
        /* attention: each (token, kv head) with its group of query heads over the sequence's positions, as
         * ggml's CPU path without flash attention computes it (see attend) */
        long work = 0; /* multiply-adds of this layer's attention: go parallel only when it pays */
        for (int i = 0; i < n; i++) work += (long)(c->pos[i] + 1) * NH * HD * 2;
        /* items: (token, kv head), or (token, query head) when there are too few of those for the threads */
        const int grp = NH / NKV, split = n * NKV < 2 * c->n_thr ? grp : 1, per = grp / split;
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if (work > 32768)
        for (int ik = 0; ik < n * NKV * split; ik++) {
            const int t = ik / split, g0 = ik % split * per;
            lm_attend(c, L, il, t / NKV, t % NKV, g0, g0 + per, q, att, omp_get_thread_num());
        }
        prof_mark(c, &pt, LM_PROF_ATTN);
        linear(o, &L->wo, &L->bo, att, n);
        lora(c, il, LM_LT_O, o, att, n);
        prof_mark(c, &pt, LM_PROF_WO);
        if (L->post_attn_norm.data) pulse_rmsnorm_forward(o, o, L->post_attn_norm.data, n, E, hp->norm_eps);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];
        if (il == hp->n_layer - 1 && !c->acts && !all_wanted) {
            /* as llama.cpp (inp_out_ids): the last FFN, the final norm and the head only for the wanted rows
             */
            n = gather_wanted(c, x, want, n, E);
            gathered = 1;
            if (n == 0) break;
        }

        /* feed-forward */
        pulse_rmsnorm_forward(xn, x, L->ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        float *h = c->h, *gu = c->gu;
        if (L->w_gate.data) {
            pulse_qmm_job jobs[2] = {{L->w_gate.data, L->w_gate.type, F, gu},
                                     {L->w_up.data, L->w_up.type, F, h}};
            pulse_qmatmul_multi(jobs, 2, xn, n, E);
            add_bias(gu, &L->b_gate, n, F);
            add_bias(h, &L->b_up, n, F);
            lora(c, il, LM_LT_GATE, gu, xn, n);
            lora(c, il, LM_LT_UP, h, xn, n);
            /* gate activation times up (ggml's geglu / swiglu), rows split over the threads */
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if ((long)n * F >= 16384)
            for (int i = 0; i < n; i++) {
                if (m->act_gelu)
                    pulse_geglu_forward(h + (size_t)i * F, gu + (size_t)i * F, (size_t)F);
                else
                    pulse_swiglu_forward(h + (size_t)i * F, gu + (size_t)i * F, (size_t)F);
            }
        } else {
            linear(gu, &L->w_up, &L->b_up, xn, n); /* (n, 2F): gate | up */
            lora(c, il, LM_LT_UP, gu, xn, n);
            for (int i = 0; i < n; i++) {
                const float *g = gu + (size_t)i * 2 * F, *u = g + F;
                float *hh = h + (size_t)i * F;
                if (m->act_gelu) {
                    memcpy(hh, u, sizeof(float) * (size_t)F);
                    pulse_geglu_forward(hh, g, (size_t)F);
                } else
                    memcpy(hh, u, sizeof(float) * (size_t)F), pulse_swiglu_forward(hh, g, (size_t)F);
            }
        }
        linear(o, &L->w_down, &L->b_down, h, n);
        lora(c, il, LM_LT_DOWN, o, h, n);
        if (L->post_ffn_norm.data) pulse_rmsnorm_forward(o, o, L->post_ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_FFN);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];
    }
    if (c->acts) memcpy(c->acts + (size_t)hp->n_layer * c->nb * E, x, sizeof(float) * (size_t)n * E);

    /* final norm and logits for the wanted rows only */
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (gathered || want[i]) {
            pulse_rmsnorm_forward(o + (size_t)nw * E, x + (size_t)i * E, m->output_norm.data, 1, E,
                                  hp->norm_eps);
            nw++;
        }
    if (nw > 0) {
        const int V = hp->n_vocab;
        linear(out, &m->output, &m->output_b, o, nw);
        if (hp->final_softcap > 0) {
            const float cap = hp->final_softcap;
            for (size_t j = 0; j < (size_t)nw * V; j++) out[j] = cap * tanhf(out[j] / cap);
        }
    }
    prof_mark(c, &pt, LM_PROF_HEAD);
    pulse_quant_set_row_orders(NULL, 0);
    return PULSE_OK;
}

pulse_status pulse_lm_decode(pulse_lm_ctx *c, const pulse_lm_batch *b) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int n = b->n_tokens, V = hp->n_vocab;
    if (n <= 0 || !b->tokens || !b->seq) return pulse_set_error(PULSE_ERR_ARG, "LM decode: empty batch");
    int n_want = 0;
    for (int i = 0; i < n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= V)
            return pulse_set_error(PULSE_ERR_RANGE, "LM decode: token %d at batch index %d outside [0, %d)",
                                   b->tokens[i], i, V);
        int s = b->seq[i];
        if (s < 0 || s >= c->p.n_seq_max || !c->seqs[s].live)
            return pulse_set_error(PULSE_ERR_ARG, "LM decode: sequence %d at batch index %d is not live", s,
                                   i);
        if (b->logits ? b->logits[i] : i == n - 1) n_want++;
    }
    /* capacity checks before touching anything */
    for (int s = 0; s < c->p.n_seq_max; s++) c->seq_cnt[s] = 0;
    for (int i = 0; i < n; i++) c->seq_cnt[b->seq[i]]++;
    for (int s = 0; s < c->p.n_seq_max; s++)
        if (c->seq_cnt[s] && c->seqs[s].len + c->seq_cnt[s] > c->p.n_ctx)
            return pulse_set_error(PULSE_ERR_RANGE, "LM decode: sequence %d: %d + %d tokens exceed n_ctx %d",
                                   s, c->seqs[s].len, c->seq_cnt[s], c->p.n_ctx);
    if (n > c->n_idx_cap) {
        int *ni = realloc(c->out_idx, sizeof(int) * (size_t)n);
        if (!ni) return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory");
        c->out_idx = ni;
        c->n_idx_cap = n;
    }
    if (n_want > c->n_out_cap) {
        size_t bytes;
        if (pulse_mul_overflows((size_t)n_want * sizeof(float), (size_t)V, &bytes)) return PULSE_ERR_NOMEM;
        float *nl = realloc(c->logits, bytes);
        if (!nl)
            return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory for %d rows of logits", n_want);
        c->logits = nl;
        c->n_out_cap = n_want;
    }
    c->n_last = n;
    uint8_t wbuf[512];
    int row = 0;
    for (int i0 = 0; i0 < n; i0 += c->nb) {
        const int nc = n - i0 < c->nb ? n - i0 : c->nb;
        for (int s = 0; s < c->p.n_seq_max; s++) c->seq_cnt[s] = 0;
        for (int i = 0; i < nc; i++) {
            int s = b->seq[i0 + i];
            c->sq[i] = s;
            c->pos[i] = c->seqs[s].len + c->seq_cnt[s]++;
        }
        for (int s = 0; s < c->p.n_seq_max; s++)
            if (c->seq_cnt[s]) {
                pulse_status st = lm_kv_reserve(c, s, c->seq_cnt[s]);
                if (st) return st;
            }
        uint8_t *want = nc <= (int)sizeof wbuf ? wbuf : malloc((size_t)nc);
        if (!want) return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory");
        int nw = 0;
        for (int i = 0; i < nc; i++) {
            const int gi = i0 + i;
            want[i] = (uint8_t)(b->logits ? b->logits[gi] != 0 : gi == n - 1);
            c->out_idx[gi] = want[i] ? row + nw++ : -1;
        }
        const int thr = pulse_threads_enter(c->n_thr); /* the context's threads for every kernel inside */
        pulse_status st = lm_forward_chunk(c, b->tokens + i0, nc, want, c->logits + (size_t)row * V);
        pulse_threads_leave(thr);
        if (want != wbuf) free(want);
        if (st) return st;
        row += nw;
        for (int s = 0; s < c->p.n_seq_max; s++) c->seqs[s].len += c->seq_cnt[s];
    }
    return PULSE_OK;
}

const float *pulse_lm_logits(const pulse_lm_ctx *c, int i) {
    if (i < 0 || i >= c->n_last || c->out_idx[i] < 0) return NULL;
    return c->logits + (size_t)c->out_idx[i] * c->m->hp.n_vocab;
}

const float *pulse_lm_activations(const pulse_lm_ctx *c, int il, int *n_tokens) {
    if (!c->acts || il < 0 || il > c->m->hp.n_layer) return NULL;
    if (n_tokens) *n_tokens = c->acts_n;
    return c->acts + (size_t)il * c->nb * c->m->hp.n_embd;
}
