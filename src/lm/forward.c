/* lm/forward.c — owns the batched decoder forward: one chunk of tokens from any number of sequences goes
 * through embedding, every layer (RMSNorm, q/k/v projections with optional biases and QK-norm, RoPE,
 * attention over each token's own sequence in the paged KV cache with optional sliding window, output
 * projection, optional post-norms, gated FFN), the final norm and the output projection. Matrix products
 * use the quantised kernels (pulse_qmatvec / pulse_qmatmul) straight from the file mapping. Also
 * pulse_lm_decode, which splits a batch into chunks and reserves KV slots. */
#include <math.h>
#include <omp.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"
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

/* RMSNorm over rows: out (n, C) = inp / sqrt(mean(inp^2) + eps) * w (C). out may alias inp. */
static void rmsnorm(float *out, const float *inp, const float *w, int n, int C, float eps) {
    for (int i = 0; i < n; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)x[j] * x[j];
        const float s = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int j = 0; j < C; j++) y[j] = x[j] * s * w[j];
    }
}

/* cos/sin tables (n, n_rot/2) for positions pos[] and the given base. */
static void rope_tables(float *cs, float *sn, const int *pos, int n, int n_rot, float base, float scale,
                        const float *ff) {
    const int half = n_rot / 2;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < half; d++) {
            double inv = pow((double)base, -2.0 * d / n_rot);
            double th = (double)pos[i] * scale * inv;
            if (ff) th /= ff[d];
            cs[(size_t)i * half + d] = (float)cos(th);
            sn[(size_t)i * half + d] = (float)sin(th);
        }
}

/* Rotate nh heads of hd dims of every row of x (n, nh * hd) in place. */
static void rope_apply(float *x, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                       int neox) {
    const int half = n_rot / 2;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)i * nh + h) * hd;
            const float *c = cs + (size_t)i * half, *s = sn + (size_t)i * half;
            for (int d = 0; d < half; d++) {
                int a = neox ? d : 2 * d, b = neox ? d + half : 2 * d + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c[d] - x1 * s[d];
                v[b] = x0 * s[d] + x1 * c[d];
            }
        }
}

/* dot product of two float vectors of n */
static inline float dot_f32(const float *a, const float *b, int n) {
    int t = 0;
    float d = 0;
#ifdef __AVX2__
    if (n >= 16) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (; t + 16 <= n; t += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t), _mm256_loadu_ps(b + t), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t + 8), _mm256_loadu_ps(b + t + 8), s1);
        }
        s0 = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        d = _mm_cvtss_f32(h);
    }
#endif
    for (; t < n; t++) d += a[t] * b[t];
    return d;
}

/* y (n) += a * x (n), a product then a sum per element (no fused multiply-add: the scalar loop's rounding) */
static inline void axpy_f32(float *y, float a, const float *x, int n) {
    int t = 0;
#ifdef __AVX2__
    const __m256 av = _mm256_set1_ps(a);
    for (; t + 8 <= n; t += 8)
        _mm256_storeu_ps(y + t,
                         _mm256_add_ps(_mm256_loadu_ps(y + t), _mm256_mul_ps(av, _mm256_loadu_ps(x + t))));
#endif
    for (; t < n; t++) y[t] += a * x[t];
}

/* Attention of chunk token i for kv head kh at layer il: query heads g0..g1-1 of its group of
 * grp = n_head / n_head_kv (adjacent in q) over positions [lo, pos] of its sequence, the window of a
 * sliding-window layer; each K and V row is read once for the whole group, walking the sequence's KV blocks
 * (rows of a block are contiguous). att (n, n_head * head_dim) gets the group's outputs. Scratch: thread
 * thr's (grp, n_ctx) scores. */
static void attend(pulse_lm_ctx *c, const lm_layer *L, int il, int i, int kh, int g0, int g1, const float *q,
                   float *att, int thr) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int HD = hp->head_dim, NH = hp->n_head, grp = NH / hp->n_head_kv, B = c->p.kv_block;
    const int s = c->sq[i], p = c->pos[i], nctx = c->p.n_ctx;
    const int swa = L->is_swa ? hp->n_swa : 0;
    const int lo = swa > 0 && p - swa + 1 > 0 ? p - swa + 1 : 0;
    const int *blocks = c->seqs[s].blocks;
    const size_t layer_off = (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)kh * HD;
    const float scale = hp->attn_scale;
    const float *qg = q + ((size_t)i * NH + (size_t)kh * grp) * HD;
    float *sc = c->att_scratch + (size_t)thr * grp * nctx;
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const float *kb = c->k_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            const float *kr = kb + (size_t)(j % B) * c->kv_dim;
            for (int g = g0; g < g1; g++)
                sc[(size_t)(g - g0) * nctx + (j - lo)] = dot_f32(qg + (size_t)g * HD, kr, HD) * scale;
        }
    }
    const int nj = p - lo + 1;
    for (int g = g0; g < g1; g++) {
        float *sg = sc + (size_t)(g - g0) * nctx, mx = -INFINITY, sum = 0;
        for (int j = 0; j < nj; j++)
            if (sg[j] > mx) mx = sg[j];
        for (int j = 0; j < nj; j++) {
            sg[j] = expf(sg[j] - mx);
            sum += sg[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < nj; j++) sg[j] *= inv;
        memset(att + ((size_t)i * NH + (size_t)kh * grp + g) * HD, 0, sizeof(float) * HD);
    }
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const float *vb = c->v_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            const float *vr = vb + (size_t)(j % B) * c->kv_dim;
            for (int g = g0; g < g1; g++)
                axpy_f32(att + ((size_t)i * NH + (size_t)kh * grp + g) * HD,
                         sc[(size_t)(g - g0) * nctx + (j - lo)], vr, HD);
        }
    }
}

/* PULSE_LM_PROFILE: charge the time since *t to section sec */
static void prof_mark(pulse_lm_ctx *c, double *t, int sec) {
    if (!c->prof_on) return;
    double now = pulse_now();
    c->prof[sec] += now - *t;
    *t = now;
}

static float silu(float x) {
    return x / (1.0f + expf(-x));
}

pulse_status lm_forward_chunk(pulse_lm_ctx *c, const int *tokens, int n, const uint8_t *want, float *out) {
    const pulse_lm *m = c->m;
    const pulse_lm_hparams *hp = &m->hp;
    const int E = hp->n_embd, HD = hp->head_dim, NH = hp->n_head, NKV = hp->n_head_kv, F = hp->n_ff;
    const int Q = NH * HD, KV = NKV * HD, half = hp->n_rot / 2;
    float *x = c->x, *xn = c->xn, *q = c->q, *k = c->k, *v = c->v, *att = c->att, *o = c->o;
    double pt = c->prof_on ? pulse_now() : 0;

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
    rope_tables(cos_g, sin_g, c->pos, n, hp->n_rot, hp->rope_base, hp->rope_scale, m->freq_factors);
    if (hp->n_swa > 0)
        rope_tables(cos_l, sin_l, c->pos, n, hp->n_rot, hp->rope_base_swa, 1.0f, m->freq_factors);
    c->acts_n = n;
    prof_mark(c, &pt, LM_PROF_EMBD);

    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        if (c->acts) memcpy(c->acts + (size_t)il * c->nb * E, x, sizeof(float) * (size_t)n * E);
        rmsnorm(xn, x, L->attn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        if (L->wqkv.data) {
            linear(q, &L->wqkv, &L->bqkv, xn, n);
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
        }
        prof_mark(c, &pt, LM_PROF_QKV);
        if (L->attn_q_norm.data) rmsnorm(q, q, L->attn_q_norm.data, n * NH, HD, hp->norm_eps);
        if (L->attn_k_norm.data) rmsnorm(k, k, L->attn_k_norm.data, n * NKV, HD, hp->norm_eps);
        const float *rc = L->is_swa ? cos_l : cos_g, *rs = L->is_swa ? sin_l : sin_g;
        rope_apply(q, rc, rs, n, NH, HD, hp->n_rot, hp->rope_neox);
        rope_apply(k, rc, rs, n, NKV, HD, hp->n_rot, hp->rope_neox);
        for (int i = 0; i < n; i++) {
            memcpy(lm_kv_row(c, c->sq[i], il, c->pos[i], 0), k + (size_t)i * KV, sizeof(float) * KV);
            memcpy(lm_kv_row(c, c->sq[i], il, c->pos[i], 1), v + (size_t)i * KV, sizeof(float) * KV);
        }
        /* attention: each (token, kv head) with its group of query heads over the sequence's positions */
        long work = 0; /* multiply-adds of this layer's attention: go parallel only when it pays */
        for (int i = 0; i < n; i++) work += (long)(c->pos[i] + 1) * NH * HD * 2;
        /* items: (token, kv head), or (token, query head) when there are too few of those for the threads */
        const int grp = NH / NKV, split = n * NKV < 2 * c->n_thr ? grp : 1, per = grp / split;
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if (work > 32768)
        for (int ik = 0; ik < n * NKV * split; ik++) {
            const int t = ik / split, g0 = ik % split * per;
            attend(c, L, il, t / NKV, t % NKV, g0, g0 + per, q, att, omp_get_thread_num());
        }
        prof_mark(c, &pt, LM_PROF_ATTN);
        linear(o, &L->wo, &L->bo, att, n);
        prof_mark(c, &pt, LM_PROF_WO);
        if (L->post_attn_norm.data) rmsnorm(o, o, L->post_attn_norm.data, n, E, hp->norm_eps);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];

        /* feed-forward */
        rmsnorm(xn, x, L->ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        float *h = c->h, *gu = c->gu;
        if (L->w_gate.data) {
            pulse_qmm_job jobs[2] = {{L->w_gate.data, L->w_gate.type, F, gu},
                                     {L->w_up.data, L->w_up.type, F, h}};
            pulse_qmatmul_multi(jobs, 2, xn, n, E);
            add_bias(gu, &L->b_gate, n, F);
            add_bias(h, &L->b_up, n, F);
            /* gate activation times up, rows split over the threads */
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if ((long)n * F >= 16384)
            for (int i = 0; i < n; i++) {
                float *g = gu + (size_t)i * F, *u = h + (size_t)i * F;
                if (m->act_gelu) {
                    pulse_gelu_tanh_forward(g, g, (size_t)F);
                    for (int j = 0; j < F; j++) u[j] *= g[j];
                } else
                    for (int j = 0; j < F; j++) u[j] *= silu(g[j]);
            }
        } else {
            linear(gu, &L->w_up, &L->b_up, xn, n); /* (n, 2F): gate | up */
            for (int i = 0; i < n; i++) {
                const float *g = gu + (size_t)i * 2 * F, *u = g + F;
                float *hh = h + (size_t)i * F;
                if (m->act_gelu) {
                    pulse_gelu_tanh_forward(hh, g, (size_t)F);
                    for (int j = 0; j < F; j++) hh[j] *= u[j];
                } else
                    for (int j = 0; j < F; j++) hh[j] = silu(g[j]) * u[j];
            }
        }
        linear(o, &L->w_down, &L->b_down, h, n);
        if (L->post_ffn_norm.data) rmsnorm(o, o, L->post_ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_FFN);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];
    }
    if (c->acts) memcpy(c->acts + (size_t)hp->n_layer * c->nb * E, x, sizeof(float) * (size_t)n * E);

    /* final norm and logits for the wanted rows only */
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (want[i]) {
            rmsnorm(o + (size_t)nw * E, x + (size_t)i * E, m->output_norm.data, 1, E, hp->norm_eps);
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
        pulse_status st = lm_forward_chunk(c, b->tokens + i0, nc, want, c->logits + (size_t)row * V);
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
