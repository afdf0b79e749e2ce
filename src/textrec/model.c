/* textrec/model.c — owns the text-aware recommender (pulse/textrec.h): its own parameters (projection W, b;
 * the Thought-Space user projection P), the hooks into SASRec's trainer (item offsets X = T W^T + b, the
 * InfoNCE term on the last hidden state, the end-to-end encoder step), training, scoring, the model file and
 * zero-shot transfer to another catalogue. The SASRec stack, its loss and its trainer are SASRec's own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "pulse/dist.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"
#include "pulse/strmap.h"
#include "pulse/thought.h"

#define TX_MAGIC "PLSTXRC"
#define TX_VERSION 1u

pulse_textrec_params pulse_textrec_default_params(void) {
    pulse_textrec_params p;
    memset(&p, 0, sizeof p);
    p.arch = PULSE_TEXTREC_MOREC;
    p.text_len = 64;
    p.use_id = 1;
    p.finetune_layers = 0;
    p.refresh_every_step = 0;
    p.ft_items = 32;
    p.ft_lr = 5e-5f;
    p.lambda = 0.1f;
    p.tau = 0.1f;
    p.negatives = 16;
    p.precision = PULSE_PREC_AUTO;
    p.sasrec = pulse_sasrec_default_params();
    return p;
}

/* ---- parameters ---- */

void textrec_refresh_x(pulse_textrec *m) {
    /* X (V, C) = T (V, D) W^T + b */
    pulse_matmul_forward(m->X, m->T, m->W, m->b, m->V, m->D, m->C);
    memset(m->X, 0, sizeof(float) * (size_t)m->C);
}

/* the training steps' X: in bf16 with fp32 sums under --bf16-head (a product over the whole catalogue, as the
 * head's), else textrec_refresh_x; scoring always refreshes in fp32 first (hook_before_eval, restore_best) */
static void refresh_x_train(pulse_textrec *m) {
    if (!m->bf16_x) {
        textrec_refresh_x(m);
        return;
    }
    if (m->T16) { /* X = b in every row, then += T W^T: the bias form's single rounding of acc + b */
        for (int i = 1; i < m->V; i++) memcpy(m->X + (size_t)i * m->C, m->b, sizeof(float) * m->C);
        pulse_gemm_bf16a(0, 1, m->V, m->C, m->D, 1.0f, m->T16, m->D, m->W, m->D, 1.0f, m->X, m->C);
    } else {
        pulse_matmul_forward_bf16(m->X, m->T, m->W, m->b, m->V, m->D, m->C);
    }
    memset(m->X, 0, sizeof(float) * (size_t)m->C);
}

void pulse_textrec_refresh(pulse_textrec *m) {
    textrec_refresh_x(m);
}

static void view_own(pulse_textrec *m, float *base, float **W, float **b, float **P) {
    *W = base;
    *b = base + (size_t)m->C * m->D;
    *P = m->arch == PULSE_TEXTREC_THOUGHT ? *b + m->C : NULL;
}

void pulse_textrec_free(pulse_textrec *m) {
    if (!m) return;
    pulse_sasrec_free(m->sr);
    pulse_encoder_free(m->enc);
    free(m->encoder_dir);
    free(m->T);
    free(m->X);
    free(m->own);
    free(m->own_g);
    free(m->own_m);
    free(m->own_v);
    free(m->own_best);
    free(m->R);
    free(m->r_of_user);
    free(m->hs);
    free(m->dhs);
    free(m->rs);
    free(m->us);
    free(m->dus);
    free(m->nce);
    free(m->rows);
    free(m->neg);
    free(m->dp_h);
    free(m->dp_dh);
    free(m->dp_counts);
    free(m->tok);
    free(m->tok_len);
    free(m->ft_idx);
    free(m->ft_t);
    free(m->ft_dt);
    free(m->ft_dx);
    free(m->ft_x);
    free(m->T_best);
    free(m->enc_best);
    free(m);
}

static pulse_status check_params(const pulse_textrec_params *p) {
    if (p->arch != PULSE_TEXTREC_MOREC && p->arch != PULSE_TEXTREC_THOUGHT)
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: arch must be morec (0) or thought (1), found %d",
                               (int)p->arch);
    if (p->text_len < 2 || p->text_len > 512)
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: text_len must be in [2, 512], found %d",
                               p->text_len);
    if (!(p->lambda >= 0) || !isfinite(p->lambda))
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: lambda must be >= 0, found %g", (double)p->lambda);
    if (!(p->tau > 0) || !isfinite(p->tau))
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: tau must be > 0, found %g", (double)p->tau);
    if (p->negatives < 1)
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: negatives must be >= 1, found %d", p->negatives);
    if (p->finetune_layers < 0 || p->ft_items < 1 || !(p->ft_lr > 0))
        return pulse_set_error(
            PULSE_ERR_RANGE,
            "textrec: finetune_layers must be >= 0, ft_items >= 1, ft_lr > 0 (found %d, %d, "
            "%g)",
            p->finetune_layers, p->ft_items, (double)p->ft_lr);
    if (p->finetune_layers > 0 && p->arch != PULSE_TEXTREC_MOREC)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: encoder fine-tuning is a MoRec option (arch morec)");
    if (p->sasrec.loss != PULSE_SASREC_CE)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: the SASRec stack is trained with full-softmax CE");
    return PULSE_OK;
}

pulse_status pulse_textrec_create(int n_items, const float *T, int D, const float *R, const uint8_t *has_r,
                                  int n_users, const pulse_textrec_params *p, pulse_textrec **out) {
    *out = NULL;
    pulse_status st = check_params(p);
    if (st) return st;
    if (D < 1 || D > 65536)
        return pulse_set_error(PULSE_ERR_RANGE, "textrec: text dim must be in [1, 65536]");
    pulse_sasrec_params sp = p->sasrec;
    sp.checkpoint = NULL;
    pulse_textrec *m = pulse_calloc(1, sizeof *m);
    if (!m) return PULSE_ERR_NOMEM;
    if ((st = pulse_sasrec_create(n_items, &sp, &m->sr)) != PULSE_OK) {
        free(m);
        return st;
    }
    m->arch = p->arch;
    m->use_id = p->use_id ? 1 : 0;
    m->bf16_x = sp.bf16_head && pulse_bf16_supported();
    m->V = n_items + 1;
    m->D = D;
    m->C = pulse_sasrec_dim(m->sr);
    m->text_len = p->text_len;
    m->ft_layers = p->finetune_layers;
    m->lambda = p->arch == PULSE_TEXTREC_THOUGHT ? p->lambda : 0.0f;
    m->tau = p->tau;
    m->K = p->negatives;
    m->seed = sp.seed;
    m->lr = sp.lr;
    m->beta1 = sp.beta1;
    m->beta2 = sp.beta2;
    m->eps = sp.adam_eps;
    m->ft_items = p->ft_items;
    m->ft_lr = p->ft_lr;
    m->refresh_step = p->refresh_every_step;
    const char *dir = p->arch == PULSE_TEXTREC_THOUGHT && p->space ? p->space : p->encoder;
    m->encoder_dir = strdup(dir ? dir : "");
    size_t VD = (size_t)m->V * D, VC = (size_t)m->V * m->C;
    m->n_own = (size_t)m->C * D + m->C + (p->arch == PULSE_TEXTREC_THOUGHT ? (size_t)D * m->C : 0);
    m->T = pulse_malloc(VD * sizeof(float));
    m->X = pulse_calloc(VC, sizeof(float));
    m->own = pulse_calloc(m->n_own, sizeof(float));
    m->own_g = pulse_calloc(m->n_own, sizeof(float));
    m->own_m = pulse_calloc(m->n_own, sizeof(float));
    m->own_v = pulse_calloc(m->n_own, sizeof(float));
    m->own_best = pulse_calloc(m->n_own, sizeof(float));
    if (!m->encoder_dir || !m->T || !m->X || !m->own || !m->own_g || !m->own_m || !m->own_v || !m->own_best) {
        pulse_textrec_free(m);
        return PULSE_ERR_NOMEM;
    }
    memcpy(m->T, T, VD * sizeof(float));
    memset(m->T, 0, sizeof(float) * (size_t)D);
    view_own(m, m->own, &m->W, &m->b, &m->P);
    view_own(m, m->own_g, &m->gW, &m->gb, &m->gP);
    /* Xavier-normal W (C, D) and P (D, C), zero b (drawn after SASRec's own initialisation) */
    pulse_rng r;
    pulse_rng_seed(&r, sp.seed ^ 0x7e47ec00ULL);
    float sw = sqrtf(2.0f / (float)(m->C + D));
    for (size_t i = 0; i < (size_t)m->C * D; i++) m->W[i] = sw * pulse_rng_normal(&r);
    if (m->P)
        for (size_t i = 0; i < (size_t)m->C * D; i++) m->P[i] = sw * pulse_rng_normal(&r);
    if (!m->use_id) memset(pulse_sasrec_params_ptr(m->sr), 0, VC * sizeof(float));
    if (R && has_r && n_users > 0) {
        int nr = 0;
        for (int u = 0; u < n_users; u++) nr += has_r[u] != 0;
        m->n_users = n_users;
        m->r_of_user = pulse_malloc(sizeof(int) * (size_t)n_users);
        m->R = pulse_malloc(sizeof(float) * ((size_t)nr * D + 1));
        if (!m->r_of_user || !m->R) {
            pulse_textrec_free(m);
            return PULSE_ERR_NOMEM;
        }
        for (int u = 0, k = 0; u < n_users; u++) {
            m->r_of_user[u] = has_r[u] ? k : -1;
            if (has_r[u]) memcpy(m->R + (size_t)k++ * D, R + (size_t)u * D, sizeof(float) * D);
        }
    }
    textrec_refresh_x(m);
    pulse_sasrec_set_item_offset(m->sr, m->X);
    *out = m;
    return PULSE_OK;
}

/* the ctx of every hook */
typedef struct {
    pulse_textrec *m;
    const pulse_dataset *ds;
} hook_ctx;

/* ---- the rationale term: lambda * InfoNCE(P h_last, R(rationale)) over the batch rows that have one ---- */

static pulse_status hook_scratch(pulse_textrec *m, int B) {
    if (m->cap >= B) return PULSE_OK;
    const int C = m->C, D = m->D, K = m->K;
    size_t sc = pulse_infonce_scratch_floats(B, D, K);
    free(m->hs), free(m->dhs), free(m->rs), free(m->us), free(m->dus), free(m->nce), free(m->rows),
        free(m->neg);
    m->hs = pulse_malloc(sizeof(float) * (size_t)B * C);
    m->dhs = pulse_malloc(sizeof(float) * (size_t)B * C);
    m->rs = pulse_malloc(sizeof(float) * (size_t)B * D);
    m->us = pulse_malloc(sizeof(float) * (size_t)B * D);
    m->dus = pulse_malloc(sizeof(float) * (size_t)B * D);
    m->nce = pulse_malloc(sizeof(float) * (sc + 1));
    m->rows = pulse_malloc(sizeof(int) * (size_t)B);
    m->neg = pulse_malloc(sizeof(int) * (size_t)B * K);
    if (!m->hs || !m->dhs || !m->rs || !m->us || !m->dus || !m->nce || !m->rows || !m->neg) {
        m->cap = 0;
        return PULSE_ERR_NOMEM;
    }
    m->cap = B;
    return PULSE_OK;
}

/* the rationale term on the B rows h (the whole batch's): its loss, d/dh into dh */
static double hook_rows(pulse_textrec *m, int B, const float *h, float *dh) {
    if (hook_scratch(m, B)) return 0.0;
    const int C = m->C, D = m->D;
    int N = 0;
    for (int b = 0; b < B; b++) {
        int u = m->batch_users[b];
        int r = u >= 0 && u < m->n_users ? m->r_of_user[u] : -1;
        if (r < 0) continue;
        m->rows[N] = b;
        memcpy(m->hs + (size_t)N * C, h + (size_t)b * C, sizeof(float) * C);
        memcpy(m->rs + (size_t)N * D, m->R + (size_t)r * D, sizeof(float) * D);
        N++;
    }
    if (N < 2) return 0.0;
    int K = m->K < N - 1 ? m->K : N - 1;
    /* negatives from a generator seeded by (seed, step): the same for repeated calls within one step */
    pulse_rng rng;
    pulse_rng_seed(&rng, m->seed ^ (0x9e3779b97f4a7c15ULL * (m->step + 1)));
    pulse_infonce_sample_negatives(m->neg, N, K, &rng);
    /* us (N, D) = hs (N, C) P^T */
    pulse_matmul_forward(m->us, m->hs, m->P, NULL, N, C, D);
    memset(m->dus, 0, sizeof(float) * (size_t)N * D);
    double loss =
        pulse_infonce_forward_backward(m->dus, NULL, m->us, m->rs, m->neg, N, D, K, m->tau, m->nce, NULL);
    m->align_sum += loss;
    m->align_n++;
    pulse_scale(m->dus, (size_t)N * D, m->lambda);
    /* dhs (N, C) = dus P; gP (D, C) += dus^T hs */
    memset(m->dhs, 0, sizeof(float) * (size_t)N * C);
    pulse_matmul_backward(m->dhs, m->gP, NULL, m->dus, m->hs, m->P, N, C, D);
    for (int i = 0; i < N; i++) {
        float *d = dh + (size_t)m->rows[i] * C;
        const float *g = m->dhs + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
    return m->lambda * loss;
}

/* Several MPI ranks (pulse_sasrec_train's data-parallel step): this rank holds rows [lo, hi) of the batch
 * (h, B = hi - lo rows, maybe none); the rows of every rank are all-gathered, every rank computes the whole
 * batch's term (the same numbers as one process: the negatives come from (seed, step)) and keeps d/dh of
 * its own rows. A failure here cannot be returned through the hook: it ends the job. */
static double hook_hidden_dp(pulse_textrec *m, int B, const float *h, float *dh) {
    const int R = pulse_dist_size(), me = pulse_dist_rank(), C = m->C, n = m->batch_n;
    int lo, hi;
    pulse_dist_share(n, me, R, &lo, &hi);
    pulse_status st = hi - lo == B ? PULSE_OK
                                   : pulse_set_error(PULSE_ERR_STATE,
                                                     "textrec: rank %d holds %d rows of a batch of %d; "
                                                     "expected rows %d..%d",
                                                     me, B, n, lo, hi);
    if (!st && m->dp_cap < n) {
        free(m->dp_h), free(m->dp_dh), free(m->dp_counts);
        m->dp_h = pulse_malloc(sizeof(float) * (size_t)n * C);
        m->dp_dh = pulse_malloc(sizeof(float) * (size_t)n * C);
        m->dp_counts = pulse_malloc(sizeof(size_t) * (size_t)R);
        m->dp_cap = m->dp_h && m->dp_dh && m->dp_counts ? n : 0;
        if (!m->dp_cap) st = PULSE_ERR_NOMEM;
    }
    if (!st) {
        if (B > 0) memcpy(m->dp_h + (size_t)lo * C, h, sizeof(float) * (size_t)B * C);
        for (int q = 0; q < R; q++) {
            int a, z;
            pulse_dist_share(n, q, R, &a, &z);
            m->dp_counts[q] = (size_t)(z - a) * C;
        }
        st = pulse_dist_allgather_f32(m->dp_h, m->dp_counts);
    }
    if (st) {
        fprintf(stderr, "pulse: textrec (rank %d of %d): %s\n", me, R, pulse_last_error());
        pulse_dist_abort(1);
        return 0.0;
    }
    memset(m->dp_dh, 0, sizeof(float) * (size_t)n * C);
    const double l = hook_rows(m, n, m->dp_h, m->dp_dh);
    for (int i = 0; i < B; i++) {
        float *d = dh + (size_t)i * C;
        const float *g = m->dp_dh + (size_t)(lo + i) * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
    return l;
}

static double hook_hidden(void *ctx, int B, const float *h, float *dh) {
    pulse_textrec *m = ((hook_ctx *)ctx)->m;
    if (!m->R || m->lambda <= 0 || !m->batch_users) return 0.0;
    if (m->dp) return hook_hidden_dp(m, B, h, dh);
    if (m->batch_n != B) return 0.0;
    return hook_rows(m, B, h, dh);
}

/* ---- end to end: the encoder's top layers ---- */

static pulse_status encode_catalogue(pulse_textrec *m) {
    pulse_status st = pulse_encoder_encode_ids(m->enc, m->tok, m->tok_len, m->V, m->text_len, m->T);
    if (st) return st;
    memset(m->T, 0, sizeof(float) * (size_t)m->D);
    textrec_refresh_x(m);
    return PULSE_OK;
}

/* The batch's items re-encoded with gradient: the users' last training items (distinct, at most ft_items),
 * their rows of T and X replaced by the fresh vectors. */
static pulse_status ft_forward(pulse_textrec *m, const pulse_dataset *ds, const int *users, int n) {
    m->ft_n = 0;
    for (int i = 0; i < n && m->ft_n < m->ft_items; i++) {
        int len, L = pulse_split_train_len(ds, users[i]);
        const int *s = pulse_dataset_user_seq(ds, users[i], &len);
        if (L < 1) continue;
        int it = s[L - 1], dup = 0;
        if (it <= 0 || it >= m->V) continue;
        for (int j = 0; j < m->ft_n; j++) dup |= m->ft_idx[j] == it;
        if (!dup) m->ft_idx[m->ft_n++] = it;
    }
    if (!m->ft_n) return PULSE_OK;
    int *ids = pulse_malloc(sizeof(int) * (size_t)m->ft_n * m->text_len),
        *lens = pulse_malloc(sizeof(int) * m->ft_n);
    if (!ids || !lens) {
        free(ids);
        free(lens);
        return PULSE_ERR_NOMEM;
    }
    for (int j = 0; j < m->ft_n; j++) {
        memcpy(ids + (size_t)j * m->text_len, m->tok + (size_t)m->ft_idx[j] * m->text_len,
               sizeof(int) * m->text_len);
        lens[j] = m->tok_len[m->ft_idx[j]];
    }
    pulse_encoder_zero_grad(m->enc);
    pulse_status st = pulse_encoder_forward_train_ids(m->enc, ids, lens, m->ft_n, m->text_len, m->ft_t);
    free(ids);
    free(lens);
    if (st) return st;
    /* x (ft_n, C) = t W^T + b, into their rows of T and X */
    pulse_matmul_forward(m->ft_x, m->ft_t, m->W, m->b, m->ft_n, m->D, m->C);
    for (int j = 0; j < m->ft_n; j++) {
        memcpy(m->T + (size_t)m->ft_idx[j] * m->D, m->ft_t + (size_t)j * m->D, sizeof(float) * m->D);
        memcpy(m->X + (size_t)m->ft_idx[j] * m->C, m->ft_x + (size_t)j * m->C, sizeof(float) * m->C);
    }
    return PULSE_OK;
}

/* dt (ft_n, D) = dX[ft rows] W through the encoder, one AdamW step of its trainable layers */
static pulse_status ft_backward(pulse_textrec *m, const float *dX) {
    if (!m->ft_n) return PULSE_OK;
    for (int j = 0; j < m->ft_n; j++)
        memcpy(m->ft_dx + (size_t)j * m->C, dX + (size_t)m->ft_idx[j] * m->C, sizeof(float) * m->C);
    memset(m->ft_dt, 0, sizeof(float) * (size_t)m->ft_n * m->D);
    pulse_matmul_backward(m->ft_dt, NULL, NULL, m->ft_dx, m->ft_t, m->W, m->ft_n, m->D, m->C);
    pulse_status st = pulse_encoder_backward(m->enc, m->ft_dt);
    if (!st) st = pulse_encoder_step(m->enc, m->ft_lr, NULL);
    return st;
}

/* ---- hooks ---- */

static pulse_status hook_before_epoch(void *ctx, pulse_sasrec *sr, int epoch) {
    (void)sr;
    hook_ctx *c = ctx;
    c->m->align_sum = 0;
    c->m->align_n = 0;
    if (c->m->enc && !c->m->refresh_step && epoch > 1) return encode_catalogue(c->m);
    return PULSE_OK;
}

static pulse_status hook_before_step(void *ctx, pulse_sasrec *sr, const int *users, int n) {
    (void)sr;
    hook_ctx *c = ctx;
    pulse_textrec *m = c->m;
    m->step++;
    m->batch_users = users;
    m->batch_n = n;
    memset(m->own_g, 0, m->n_own * sizeof(float));
    if (!m->enc) return PULSE_OK;
    pulse_status st = m->refresh_step ? encode_catalogue(m) : PULSE_OK;
    return st ? st : ft_forward(m, c->ds, users, n);
}

/* gradients of W, b from dX = the item_emb gradient (V, C); the ID embeddings frozen at zero without use_id
 */
static void own_grads(pulse_textrec *m) {
    float *dX = pulse_sasrec_grads_ptr(m->sr);
    /* gW (C, D) += dX^T T; gb (C) += column sums of dX (row 0 of dX is zero) */
    if (m->bf16_x && m->T16) { /* gW^T (D, C) = T^T dX: T read as stored in bf16, D rows for the threads */
        pulse_gemm_bf16a(1, 0, m->D, m->C, m->V, 1.0f, m->T16, m->D, dX, m->C, 0.0f, m->gWt, m->C);
        for (int c = 0; c < m->C; c++)
            for (int d = 0; d < m->D; d++) m->gW[(size_t)c * m->D + d] += m->gWt[(size_t)d * m->C + c];
        pulse_matmul_backward(NULL, NULL, m->gb, dX, m->T, m->W, m->V, m->D, m->C);
    } else if (m->bf16_x)
        pulse_matmul_backward_bf16(NULL, m->gW, m->gb, dX, m->T, m->W, m->V, m->D, m->C);
    else
        pulse_matmul_backward(NULL, m->gW, m->gb, dX, m->T, m->W, m->V, m->D, m->C);
    if (!m->use_id) memset(dX, 0, sizeof(float) * (size_t)m->V * m->C);
}

static pulse_status hook_after_backward(void *ctx, pulse_sasrec *sr) {
    (void)sr;
    pulse_textrec *m = ((hook_ctx *)ctx)->m;
    pulse_status st = m->enc ? ft_backward(m, pulse_sasrec_grads_ptr(m->sr)) : PULSE_OK;
    if (st) return st;
    own_grads(m);
    pulse_adamw_update(m->own, m->own_g, m->own_m, m->own_v, m->n_own, m->lr, m->beta1, m->beta2, m->eps,
                       0.0f, ++m->own_t);
    refresh_x_train(m);
    return PULSE_OK;
}

static pulse_status hook_before_eval(void *ctx, pulse_sasrec *sr) {
    (void)sr;
    pulse_textrec *m = ((hook_ctx *)ctx)->m;
    if (m->bf16_x) textrec_refresh_x(m);
    return PULSE_OK;
}

static void hook_save_best(void *ctx) {
    pulse_textrec *m = ((hook_ctx *)ctx)->m;
    memcpy(m->own_best, m->own, m->n_own * sizeof(float));
    if (m->enc && m->T_best && m->enc_best) {
        memcpy(m->T_best, m->T, sizeof(float) * (size_t)m->V * m->D);
        memcpy(m->enc_best, pulse_encoder_params_data(m->enc), m->enc_n * sizeof(float));
    }
}

static void hook_restore_best(void *ctx) {
    pulse_textrec *m = ((hook_ctx *)ctx)->m;
    memcpy(m->own, m->own_best, m->n_own * sizeof(float));
    if (m->enc && m->T_best && m->enc_best) {
        memcpy(m->T, m->T_best, sizeof(float) * (size_t)m->V * m->D);
        memcpy(pulse_encoder_params_data(m->enc), m->enc_best, m->enc_n * sizeof(float));
    }
    textrec_refresh_x(m);
}

pulse_status pulse_textrec_forward_backward(pulse_textrec *m, int B, const int *users, const int *inputs,
                                            const int *targets, int training, double *loss) {
    hook_ctx c = {m, NULL};
    m->hooks = (pulse_sasrec_hooks){.ctx = &c, .hidden = hook_hidden};
    m->batch_users = users;
    m->batch_n = B;
    memset(m->own_g, 0, m->n_own * sizeof(float));
    textrec_refresh_x(m);
    pulse_sasrec_set_hooks(m->sr, &m->hooks);
    pulse_status st = pulse_sasrec_forward_backward(m->sr, B, inputs, targets, NULL, training, loss);
    pulse_sasrec_set_hooks(m->sr, NULL);
    m->batch_users = NULL;
    if (!st) own_grads(m);
    return st;
}

/* ---- training ---- */

static pulse_status ft_begin(pulse_textrec *m, const pulse_dataset *ds, pulse_precision prec) {
    pulse_encoder_params ep = pulse_encoder_default_params();
    ep.max_len = m->text_len;
    ep.precision = prec; /* the catalogue's re-encoding at each epoch, as the first encoding (--precision) */
    pulse_status st = pulse_encoder_load(m->encoder_dir, &ep, &m->enc);
    if (st) return st;
    if (pulse_encoder_dim(m->enc) != m->D)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: encoder dim %d differs from the text vectors' %d",
                               pulse_encoder_dim(m->enc), m->D);
    int nl = pulse_encoder_n_layers(m->enc);
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.freeze_layers = m->ft_layers >= nl ? 0 : nl - m->ft_layers;
    tp.max_batch = m->ft_items;
    tp.lr = m->ft_lr;
    tp.dropout = 0.0f; /* the re-encoded rows replace the cached ones in T: no dropout noise in them */
    tp.seed = m->seed;
    if ((st = pulse_encoder_train_begin(m->enc, &tp)) != PULSE_OK) return st;
    m->enc_n = pulse_encoder_n_params(m->enc);
    size_t VD = (size_t)m->V * m->D;
    m->tok = pulse_malloc(sizeof(int) * (size_t)m->V * m->text_len);
    m->tok_len = pulse_malloc(sizeof(int) * (size_t)m->V);
    m->ft_idx = pulse_malloc(sizeof(int) * (size_t)m->ft_items);
    m->ft_t = pulse_malloc(sizeof(float) * (size_t)m->ft_items * m->D);
    m->ft_dt = pulse_malloc(sizeof(float) * (size_t)m->ft_items * m->D);
    m->ft_x = pulse_malloc(sizeof(float) * (size_t)m->ft_items * m->C);
    m->ft_dx = pulse_malloc(sizeof(float) * (size_t)m->ft_items * m->C);
    m->T_best = pulse_malloc(sizeof(float) * VD);
    m->enc_best = pulse_malloc(sizeof(float) * m->enc_n);
    if (!m->tok || !m->tok_len || !m->ft_idx || !m->ft_t || !m->ft_dt || !m->ft_x || !m->ft_dx ||
        !m->T_best || !m->enc_best)
        return PULSE_ERR_NOMEM;
    char **texts = NULL;
    if ((st = textrec_item_texts(ds, &texts)) != PULSE_OK) return st;
    st = pulse_encoder_tokenize_batch(m->enc, (const char *const *)texts, m->V, m->tok, m->tok_len);
    textrec_free_texts(texts, m->V);
    if (st) return st;
    memcpy(m->T_best, m->T, sizeof(float) * VD);
    memcpy(m->enc_best, pulse_encoder_params_data(m->enc), m->enc_n * sizeof(float));
    return PULSE_OK;
}

pulse_status pulse_textrec_fit(pulse_textrec *m, const pulse_dataset *ds, const pulse_textrec_params *p,
                               pulse_textrec_train_report *report) {
    if (pulse_dataset_n_items(ds) != m->V - 1)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: the model has %d items, the dataset %s has %d",
                               m->V - 1, pulse_dataset_name(ds), pulse_dataset_n_items(ds));
    if (m->R && m->n_users != pulse_dataset_n_users(ds))
        return pulse_set_error(PULSE_ERR_ARG, "textrec: rationale vectors for %d users, the dataset has %d",
                               m->n_users, pulse_dataset_n_users(ds));
    pulse_status st;
    if (m->ft_layers > 0 && !m->enc && (st = ft_begin(m, ds, p->precision)) != PULSE_OK) return st;
    pulse_sasrec_params sp = p->sasrec;
    sp.checkpoint = NULL;
    sp.resume = 0;
    hook_ctx c = {m, ds};
    m->hooks = (pulse_sasrec_hooks){.ctx = &c,
                                    .before_epoch = hook_before_epoch,
                                    .before_step = hook_before_step,
                                    .hidden = hook_hidden,
                                    .after_backward = hook_after_backward,
                                    .save_best = hook_save_best,
                                    .restore_best = hook_restore_best,
                                    .before_eval = hook_before_eval};
    memcpy(m->own_best, m->own, m->n_own * sizeof(float));
    if (m->bf16_x && !m->enc) { /* T frozen for the whole fit: converted once (NULL: the float form) */
        m->T16 = pulse_malloc(sizeof(uint16_t) * (size_t)m->V * m->D);
        m->gWt = pulse_malloc(sizeof(float) * (size_t)m->D * m->C);
        if (m->T16 && m->gWt) {
            pulse_bf16_convert(m->T16, m->T, (size_t)m->V * m->D);
        } else {
            free(m->T16), free(m->gWt);
            m->T16 = NULL, m->gWt = NULL;
        }
    }
    pulse_sasrec_set_hooks(m->sr, &m->hooks);
    pulse_textrec_train_report rep;
    memset(&rep, 0, sizeof rep);
    m->dp = pulse_dist_size() > 1; /* data-parallel: the rationale term gathers the ranks' rows */
    st = pulse_sasrec_train(m->sr, ds, &sp, &rep.sasrec);
    free(m->T16), free(m->gWt);
    m->T16 = NULL, m->gWt = NULL;
    m->dp = 0;
    pulse_sasrec_set_hooks(m->sr, NULL);
    m->batch_users = NULL;
    if (st) return st;
    rep.last_align_loss = m->align_n ? m->align_sum / m->align_n : 0.0;
    if (m->r_of_user)
        for (int u = 0; u < m->n_users; u++) rep.pair_users += m->r_of_user[u] >= 0;
    if (report) {
        rep.encode_seconds = report->encode_seconds;
        *report = rep;
    }
    return PULSE_OK;
}

/* rationale vectors (n_users, D) and has_r from a pairs file: the user's last pair wins */
static pulse_status rationale_vectors(const pulse_dataset *ds, const pulse_textrec_params *p, float **R,
                                      uint8_t **has_r, int *n_with) {
    pulse_pair *pairs = NULL;
    int np = 0;
    pulse_status st = pulse_pairs_load(p->pairs, &pairs, &np);
    if (st) return st;
    int nu = pulse_dataset_n_users(ds);
    pulse_strmap keys = {0};
    int *pair_of = pulse_malloc(sizeof(int) * (size_t)(nu + 1));
    *has_r = pulse_calloc((size_t)nu + 1, 1);
    const char **texts = pulse_malloc(sizeof(char *) * (size_t)(np + 1));
    int *user_of = pulse_malloc(sizeof(int) * (size_t)(np + 1));
    if (!pair_of || !*has_r || !texts || !user_of || pulse_strmap_reserve(&keys, (size_t)nu)) {
        st = PULSE_ERR_NOMEM;
        goto done;
    }
    for (int u = 0; u < nu; u++) {
        const char *k = pulse_dataset_user_key(ds, u);
        if (pulse_strmap_intern(&keys, k, strlen(k)) < 0) {
            st = PULSE_ERR_NOMEM;
            goto done;
        }
        pair_of[u] = -1;
    }
    for (int i = 0; i < np; i++) {
        int id = pulse_strmap_get(&keys, pairs[i].user, strlen(pairs[i].user));
        /* the interned id is the first user with that key */
        if (id >= 0 && id < nu) pair_of[id] = i;
    }
    int n = 0;
    for (int u = 0; u < nu; u++)
        if (pair_of[u] >= 0) {
            texts[n] = pairs[pair_of[u]].rationale;
            user_of[n++] = u;
        }
    if (n == 0) {
        st = pulse_set_error(PULSE_ERR_ARG, "%s: no pair's \"user\" is a user of the dataset %s", p->pairs,
                             pulse_dataset_name(ds));
        goto done;
    }
    float *v = NULL;
    int D = 0;
    const char *dir = p->space ? p->space : p->encoder;
    st = textrec_encode_texts(texts, n, PULSE_TEXTREC_THOUGHT, dir, p->text_len, p->precision, p->cache_dir,
                              "the rationales", &v, &D);
    if (st) goto done;
    *R = pulse_calloc((size_t)nu * D + 1, sizeof(float));
    if (!*R) {
        free(v);
        st = PULSE_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        memcpy(*R + (size_t)user_of[i] * D, v + (size_t)i * D, sizeof(float) * D);
        (*has_r)[user_of[i]] = 1;
    }
    free(v);
    *n_with = n;
done:
    if (st) {
        free(*has_r);
        *has_r = NULL;
    }
    pulse_strmap_free(&keys);
    free(pair_of);
    free(texts);
    free(user_of);
    pulse_pairs_free(pairs, np);
    return st;
}

pulse_status pulse_textrec_train(const pulse_dataset *ds, const pulse_textrec_params *p, pulse_textrec **out,
                                 pulse_textrec_train_report *report) {
    *out = NULL;
    pulse_status st = check_params(p);
    if (st) return st;
    if (p->arch == PULSE_TEXTREC_THOUGHT && p->lambda > 0 && !p->pairs)
        return pulse_set_error(
            PULSE_ERR_ARG, "textrec: the thought arch with lambda > 0 needs a pairs file (--pairs) with the "
                           "users' rationales");
    double t0 = pulse_now();
    float *T = NULL, *R = NULL;
    uint8_t *has_r = NULL;
    int D = 0, n_with = 0;
    if ((st = pulse_textrec_item_vectors(ds, p, &T, &D)) != PULSE_OK) return st;
    if (p->arch == PULSE_TEXTREC_THOUGHT && p->lambda > 0 &&
        (st = rationale_vectors(ds, p, &R, &has_r, &n_with))) {
        free(T);
        return st;
    }
    double enc_s = pulse_now() - t0;
    pulse_textrec *m = NULL;
    st = pulse_textrec_create(pulse_dataset_n_items(ds), T, D, R, has_r, pulse_dataset_n_users(ds), p, &m);
    free(T);
    free(R);
    free(has_r);
    if (st) return st;
    pulse_textrec_train_report rep;
    memset(&rep, 0, sizeof rep);
    rep.encode_seconds = enc_s;
    if ((st = pulse_textrec_fit(m, ds, p, &rep)) != PULSE_OK) {
        pulse_textrec_free(m);
        return st;
    }
    if (report) *report = rep;
    *out = m;
    return PULSE_OK;
}

/* ---- scoring ---- */

pulse_status pulse_textrec_score_fn(void *ctx, int n, const int *users, const int *const *hist,
                                    const int *hist_len, float *scores) {
    (void)users;
    pulse_textrec *m = ctx;
    return pulse_sasrec_score(m->sr, n, hist, hist_len, scores);
}

pulse_status pulse_textrec_evaluate(pulse_textrec *m, const pulse_dataset *ds, const pulse_eval_params *ep,
                                    pulse_metrics *out) {
    return pulse_sasrec_evaluate(m->sr, ds, ep, out);
}

pulse_textrec_arch pulse_textrec_get_arch(const pulse_textrec *m) {
    return m->arch;
}
int pulse_textrec_n_items(const pulse_textrec *m) {
    return m->V - 1;
}
int pulse_textrec_use_id(const pulse_textrec *m) {
    return m->use_id;
}
int pulse_textrec_finetune_layers(const pulse_textrec *m) {
    return m->ft_layers;
}
const char *pulse_textrec_encoder_dir(const pulse_textrec *m) {
    return m->encoder_dir;
}
pulse_sasrec *pulse_textrec_sasrec(pulse_textrec *m) {
    return m->sr;
}
size_t pulse_textrec_n_own_params(const pulse_textrec *m) {
    return m->n_own;
}
float *pulse_textrec_own_params(pulse_textrec *m) {
    return m->own;
}
float *pulse_textrec_own_grads(pulse_textrec *m) {
    return m->own_g;
}

/* ---- model file ---- */

static void put(uint8_t **p, const void *v, size_t n) {
    memcpy(*p, v, n);
    *p += n;
}

pulse_status pulse_textrec_save(const pulse_textrec *m, const char *path) {
    uint32_t dl = (uint32_t)strlen(m->encoder_dir);
    size_t nsp = pulse_sasrec_n_params(m->sr), VD = (size_t)m->V * m->D;
    size_t total = 8 + 4 * 11 + 4 * 3 + 4 + dl + 8 + (nsp + m->n_own + VD) * sizeof(float) + 4;
    uint8_t *buf = pulse_malloc(total), *p = buf;
    if (!buf) return PULSE_ERR_NOMEM;
    pulse_sasrec *sr = m->sr;
    uint32_t u[] = {TX_VERSION,
                    (uint32_t)m->arch,
                    (uint32_t)m->use_id,
                    (uint32_t)(m->V - 1),
                    (uint32_t)m->D,
                    (uint32_t)m->C,
                    (uint32_t)pulse_sasrec_blocks(sr),
                    (uint32_t)pulse_sasrec_heads(sr),
                    (uint32_t)pulse_sasrec_maxlen(sr),
                    (uint32_t)m->text_len,
                    (uint32_t)m->ft_layers};
    float f[] = {pulse_sasrec_dropout(sr), m->lambda, m->tau};
    uint64_t n64 = nsp;
    put(&p, TX_MAGIC, 8);
    put(&p, u, sizeof u);
    put(&p, f, sizeof f);
    put(&p, &dl, 4);
    put(&p, m->encoder_dir, dl);
    put(&p, &n64, 8);
    put(&p, pulse_sasrec_params_ptr(sr), nsp * sizeof(float));
    put(&p, m->own, m->n_own * sizeof(float));
    put(&p, m->T, VD * sizeof(float));
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(total - 4));
    put(&p, &crc, 4);
    pulse_status st = pulse_write_file_atomic(path, buf, total);
    free(buf);
    if (!st && m->enc) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s.encoder", path);
        st = pulse_encoder_save(m->enc, dir);
    }
    return st;
}

pulse_status pulse_textrec_load(const char *path, pulse_textrec **out) {
    *out = NULL;
    char *data;
    size_t len;
    pulse_status st = pulse_read_file(path, &data, &len);
    if (st) return st;
    const uint8_t *p = (const uint8_t *)data, *end = p + len;
    uint32_t u[11], dl;
    float f[3];
    if (len < 8 + sizeof u + sizeof f + 4 + 4 || memcmp(p, TX_MAGIC, 8) != 0) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: not a pulse textrec model (expected magic \"%s\")",
                               path, TX_MAGIC);
    }
    uint32_t crc_file, crc = (uint32_t)crc32(0L, (const Bytef *)data, (uInt)(len - 4));
    memcpy(&crc_file, data + len - 4, 4);
    if (crc != crc_file) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: textrec model checksum mismatch (file is corrupt)",
                               path);
    }
    p += 8;
    memcpy(u, p, sizeof u), p += sizeof u;
    memcpy(f, p, sizeof f), p += sizeof f;
    memcpy(&dl, p, 4), p += 4;
    if (u[0] != TX_VERSION || u[1] > 1 || u[2] > 1 || u[3] < 1 || u[3] > 100000000u || u[4] < 1 ||
        u[4] > 65536 || u[9] < 2 || u[9] > 512 || dl > 4096 || (size_t)(end - p) < (size_t)dl + 8 + 4) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "%s: implausible textrec header (version %u arch %u items %u D %u)", path,
                               u[0], u[1], u[3], u[4]);
    }
    char *dir = pulse_malloc(dl + 1);
    if (!dir) {
        free(data);
        return PULSE_ERR_NOMEM;
    }
    memcpy(dir, p, dl), p += dl;
    dir[dl] = 0;
    uint64_t nsp;
    memcpy(&nsp, p, 8), p += 8;
    pulse_textrec_params tp = pulse_textrec_default_params();
    tp.arch = (pulse_textrec_arch)u[1];
    tp.use_id = (int)u[2];
    tp.text_len = (int)u[9];
    tp.finetune_layers = (int)u[10];
    tp.lambda = f[1];
    tp.tau = f[2] > 0 ? f[2] : 0.1f;
    tp.sasrec.dim = (int)u[5];
    tp.sasrec.blocks = (int)u[6];
    tp.sasrec.heads = (int)u[7];
    tp.sasrec.maxlen = (int)u[8];
    tp.sasrec.dropout = f[0];
    tp.encoder = dir;
    tp.space = dir;
    const int V = (int)u[3] + 1, D = (int)u[4];
    size_t n_own = (size_t)u[5] * D + u[5] + (u[1] == PULSE_TEXTREC_THOUGHT ? (size_t)D * u[5] : 0);
    size_t VD = (size_t)V * D;
    /* the sizes the header claims must match the file before anything is allocated for them */
    size_t left = (size_t)(end - p) - 4;
    if (u[5] < 1 || u[5] > 4096 || nsp > left / sizeof(float) || left != (nsp + n_own + VD) * sizeof(float)) {
        free(dir);
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "%s: truncated or corrupt textrec model (items %u D %u dim %u)", path, u[3], D,
                               u[5]);
    }
    pulse_textrec *m = NULL;
    /* T is copied by create: the file's table sits after the parameters */
    const float *Tf = (const float *)(const void *)(p + (nsp + n_own) * sizeof(float));
    float *T = pulse_malloc(VD * sizeof(float));
    if (!T) {
        free(dir);
        free(data);
        return PULSE_ERR_NOMEM;
    }
    memcpy(T, Tf, VD * sizeof(float));
    st = pulse_textrec_create((int)u[3], T, D, NULL, NULL, 0, &tp, &m);
    free(T);
    free(dir);
    if (st) {
        free(data);
        return pulse_wrap_error(st, "%s", path);
    }
    if (pulse_sasrec_n_params(m->sr) != nsp) {
        pulse_textrec_free(m);
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: SASRec part has %llu parameters, the header needs %zu",
                               path, (unsigned long long)nsp, pulse_sasrec_n_params(m->sr));
    }
    memcpy(pulse_sasrec_params_ptr(m->sr), p, nsp * sizeof(float));
    memcpy(m->own, p + nsp * sizeof(float), n_own * sizeof(float));
    m->lambda = f[1];
    free(data);
    textrec_refresh_x(m);
    *out = m;
    return PULSE_OK;
}

/* ---- zero-shot transfer ---- */

static pulse_textrec_params transfer_params(const pulse_textrec *m) {
    pulse_textrec_params tp = pulse_textrec_default_params();
    tp.arch = m->arch;
    tp.use_id = 0;
    tp.text_len = m->text_len;
    tp.lambda = m->lambda;
    tp.tau = m->tau;
    pulse_sasrec *sr = m->sr;
    tp.sasrec.dim = m->C;
    tp.sasrec.blocks = pulse_sasrec_blocks(sr);
    tp.sasrec.heads = pulse_sasrec_heads(sr);
    tp.sasrec.maxlen = pulse_sasrec_maxlen(sr);
    tp.sasrec.dropout = pulse_sasrec_dropout(sr);
    return tp;
}

pulse_status pulse_textrec_transfer_vectors(const pulse_textrec *m, int n_items, const float *T, int D,
                                            pulse_textrec **out) {
    *out = NULL;
    if (D != m->D)
        return pulse_set_error(PULSE_ERR_ARG, "textrec transfer: %d-dim text vectors, the model has %d", D,
                               m->D);
    pulse_textrec_params tp = transfer_params(m);
    pulse_textrec *n = NULL;
    pulse_status st = pulse_textrec_create(n_items, T, D, NULL, NULL, 0, &tp, &n);
    if (st) return st;
    /* everything but the item table (the layout puts item_emb (V, C) first); the new table stays zero */
    pulse_sasrec *sr = m->sr;
    size_t skip_old = (size_t)m->V * m->C, skip_new = (size_t)n->V * n->C;
    size_t rest = pulse_sasrec_n_params(sr) - skip_old;
    memcpy(pulse_sasrec_params_ptr(n->sr) + skip_new, pulse_sasrec_params_ptr(sr) + skip_old,
           rest * sizeof(float));
    memset(pulse_sasrec_params_ptr(n->sr), 0, skip_new * sizeof(float));
    memcpy(n->own, m->own, m->n_own * sizeof(float));
    textrec_refresh_x(n);
    *out = n;
    return PULSE_OK;
}

pulse_status pulse_textrec_transfer(const pulse_textrec *m, const pulse_dataset *ds_new, const char *encoder,
                                    const char *cache_dir, pulse_textrec **out) {
    *out = NULL;
    pulse_textrec_params tp = transfer_params(m);
    tp.cache_dir = cache_dir;
    const char *dir = encoder ? encoder : m->encoder_dir;
    tp.encoder = tp.space = dir;
    float *T = NULL;
    int D = 0;
    pulse_status st = pulse_textrec_item_vectors(ds_new, &tp, &T, &D);
    if (st) return st;
    if (D != m->D) {
        free(T);
        return pulse_set_error(PULSE_ERR_ARG,
                               "textrec transfer: the encoder %s gives %d-dim vectors, the model %d", dir, D,
                               m->D);
    }
    st = pulse_textrec_transfer_vectors(m, pulse_dataset_n_items(ds_new), T, D, out);
    free(T);
    return st;
}
