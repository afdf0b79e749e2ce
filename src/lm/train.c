/* lm/train.c — owns LoRA training of the decoder (llama, gemma3, qwen2): the training forward over a
 * micro-batch (B sequences packed back to back) keeping what the backward needs (per-layer checkpointing:
 * only each layer's input is kept and the layer is recomputed during the backward), the backward through
 * every layer with the kernels' backward ops (RMSNorm, RoPE, SwiGLU / GEGLU, causal attention with GQA and
 * sliding window, dX through the frozen quantised weights), the output head and cross-entropy at the loss
 * positions only, dropout on the adapter inputs, gradient accumulation, clipping, AdamW with a warm-up +
 * cosine / linear schedule, resumable checkpoints (adapter, optimizer moments and the position in the data,
 * written atomically), progress and a JSONL loss log.
 *
 * The micro-batch's sequences are packed back to back (N rows = the sum of their lengths, no padding rows):
 * every product, norm and elementwise op runs on real tokens only, attention finds each sequence at its first
 * row (pulse_attn_params.row0), dropout masks come from (example, position), so the numbers are those of the
 * padded layout's real rows.
 *
 * Base products (exact_base 0, the default): the forward on int8 tiles (activations quantised to q8 once per
 * product, q/k/v and gate/up in one call each), dX = dY W on the same tiles through transposed q8_0 copies of
 * the frozen weights built at trainer creation, both in training's order where the CPU has it
 * (pulse_qmatmul_fast: one fma per block instead of llama.cpp's 8 float lanes; about 2x the throughput of
 * inference's tiles on AVX512-VNNI, within rounding of them); exact_base 1: unquantised activations through
 * the dequantised-block bf16 / fp32 GEMM (the reference's numbers). Attention's products (exact_base 0) in
 * bf16 with fp32 sums where the CPU has AVX512-BF16 (attention_train_bf16.c; softmax, lse and dS in fp32),
 * fp32 otherwise and with exact_base. The FFN's tail and its backward run in chunks of RC rows so their
 * scratch does not grow with the micro-batch.
 *
 * Per adapted projection y = W x + s B (A d(x)), d the dropout: the forward keeps t = A d(x) (N, r); the
 * masks are counter-based draws (seed, element), drawn again in the backward, never stored; the backward
 * gives dB += s dy^T t, dt = s dy B, dA += dt^T d(x), dx += d'(dt A). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"
#include "pulse/dist.h"
#include "pulse/kernels.h"
#include "pulse/quant.h"

enum { RC = 512 }; /* rows per chunk of the FFN's tail (glu, down) and of the backward's dX products */

pulse_lm_train_params pulse_lm_train_default_params(void) {
    pulse_lm_train_params p;
    memset(&p, 0, sizeof p);
    p.lr = 2e-4f;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    p.adam_eps = 1e-8f;
    p.clip = 1.0f;
    p.dropout = 0.05f;
    p.schedule = PULSE_LM_SCHED_COSINE;
    p.warmup_steps = -1;
    p.checkpoint_layers = 1;
    p.exact_base = 0;
    p.seed = 42;
    p.epochs = 1;
    p.batch = 8;
    p.grad_accum = 1;
    p.checkpoint_every = 50;
    return p;
}

/* What the backward of one layer needs (N rows: the micro-batch's packed sequences). */
typedef struct {
    float *xn1, *rstd1, *qp, *kp, *q, *k, *v, *att, *lse, *op, *x2, *xn2, *rstd2, *g, *u, *h, *dp;
    float *t[LM_LT_N]; /* (N, r) A d(x) of each adapted projection */
} lcache;

/* The frozen weights of one layer transposed and requantised to q8_0 for dX = dY W on the int8 tiles
 * (exact_base 0): qkv (E, Q + 2 KV) = [Wq; Wk; Wv]^T, o (Q, E), gu (E, 2F) = [Wgate; Wup]^T, down (F, E);
 * NULL where a shape does not allow it (then the bf16 GEMM of pulse_qmatmul_backward). */
typedef struct {
    const uint8_t *qkv, *o, *gu, *down;
} lwt;

struct pulse_lm_trainer {
    const pulse_lm *m;
    pulse_lora *a;
    pulse_lm_train_params p;
    int step;         /* optimizer steps done */
    float *mom, *vel; /* AdamW moments (n_params) */
    float *grad;      /* (n_params) accumulated */
    /* workspace for N rows (grown on demand) */
    int cap;    /* rows the buffers hold */
    int ncache; /* layer caches: 1 (checkpointing) or n_layer */
    lcache *lc;
    float *xs; /* (n_layer, N, E) layer inputs (the last layer's output goes to dx) */
    float *dx, *dx2, *dxn, *dq, *dk, *dv, *datt, *dgu, *dh, *tmp; /* gradients and scratch */
    uint32_t *drows;         /* (RC, 3): the dropout streams of a chunk's rows (drop_rows) */
    uint8_t *dbits[LM_LT_N]; /* per projection (N, (in + 7) / 8): the keep bits the last forward of a layer
                              * drew, read by that layer's backward (recompute mode) */
    float *lu, *ldt;         /* LoRA scratch: (r_max, out_max): B^T (r, out); (RC, r_max): dt */
    uint8_t *wt_buf;         /* the transposed q8_0 weights (exact_base 0) */
    lwt *wt;                 /* (n_layer) */
    float *cos_g, *sin_g, *cos_l, *sin_l;
    int *pos, *tok, *lens; /* per row: position, token; per sequence: length */
    int *row0, *rex;       /* per sequence: its first row; per row: its sequence in the micro-batch */
    int cap_lse;           /* lse rows (B T) the caches hold */
    /* loss rows */
    int lcap;
    int *lrow, *ltgt;
    float *xf, *xin, *dxf, *rstdf, *logits;
    int dropout_on;
    uint64_t mb_seed;      /* dropout seed of the current step (of the batch in loss_grad) */
    int mb_e0, mb_T, mb_N; /* the current micro-batch: its first example's index in the step, its longest
                              sequence, its rows (the sum of the lengths) */
    double comm;           /* seconds in the ranks' collectives (several MPI ranks) */
    double prof[4];        /* seconds: forward, head + loss, recompute, backward */
};

static void lcache_free(lcache *c) {
    float **f[] = {&c->xn1, &c->rstd1, &c->qp,  &c->kp,    &c->q, &c->k, &c->v, &c->att, &c->lse,
                   &c->op,  &c->x2,    &c->xn2, &c->rstd2, &c->g, &c->u, &c->h, &c->dp};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]), *f[i] = NULL;
    for (int t = 0; t < LM_LT_N; t++) free(c->t[t]), c->t[t] = NULL;
}

static void ws_free(pulse_lm_trainer *t) {
    for (int i = 0; t->lc && i < t->ncache; i++) lcache_free(&t->lc[i]);
    free(t->lc);
    t->lc = NULL;
    float **f[] = {&t->xs, &t->dx,  &t->dx2, &t->dxn, &t->dq,    &t->dk,    &t->dv,    &t->datt, &t->dgu,
                   &t->dh, &t->tmp, &t->lu,  &t->ldt, &t->cos_g, &t->sin_g, &t->cos_l, &t->sin_l};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]), *f[i] = NULL;
    free(t->pos), free(t->tok), free(t->lens), free(t->row0), free(t->rex), free(t->drows);
    t->pos = t->tok = t->lens = t->row0 = t->rex = NULL;
    t->drows = NULL;
    for (int k = 0; k < LM_LT_N; k++) free(t->dbits[k]), t->dbits[k] = NULL;
    t->cap = t->cap_lse = 0;
}

static float *fal(size_t n, int *bad) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) *bad = 1;
    return p;
}

/* Buffers for N rows of B sequences. */
/* Buffers for N rows (packed sequences) of B sequences, the attention's lse for lse_rows = B x the longest.
 */
static pulse_status ws_reserve(pulse_lm_trainer *t, int N, int B, int lse_rows) {
    if (N <= t->cap && t->lens && B <= t->cap && lse_rows <= t->cap_lse) return PULSE_OK;
    ws_free(t);
    const pulse_lm_hparams *hp = &t->m->hp;
    const size_t E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim,
                 KV = (size_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff, n = (size_t)N, half = hp->n_rot / 2;
    const pulse_lora *a = t->a;
    /* h and xn2 are kept only when the down / gate, up adapters need them in the backward */
    int down_lora = 0, gu_lora = 0;
    for (int il = 0; il < a->n_layer; il++) {
        down_lora |= a->w[il * LM_LT_N + LM_LT_DOWN].A != NULL;
        gu_lora |= a->w[il * LM_LT_N + LM_LT_GATE].A != NULL || a->w[il * LM_LT_N + LM_LT_UP].A != NULL;
    }
    const size_t rc = (size_t)(N < RC ? N : RC); /* rows of the FFN chunks */
    int bad = 0;
    t->ncache = t->p.checkpoint_layers ? 1 : hp->n_layer;
    t->lc = pulse_calloc((size_t)t->ncache, sizeof *t->lc);
    if (!t->lc) return pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory");
    int gemma = 0; /* QK-norms or post-norms anywhere: their buffers */
    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &t->m->layers[il];
        gemma |=
            L->attn_q_norm.data || L->attn_k_norm.data || L->post_attn_norm.data || L->post_ffn_norm.data;
    }
    for (int i = 0; i < t->ncache; i++) {
        lcache *c = &t->lc[i];
        c->xn1 = fal(n * E, &bad), c->rstd1 = fal(n, &bad);
        if (gemma)
            c->qp = fal(n * Q, &bad), c->kp = fal(n * KV, &bad), c->op = fal(n * E, &bad),
            c->dp = fal(n * E, &bad);
        c->q = fal(n * Q, &bad), c->k = fal(n * KV, &bad), c->v = fal(n * KV, &bad),
        c->att = fal(n * Q, &bad);
        c->lse = fal((size_t)lse_rows * (size_t)hp->n_head, &bad), c->x2 = fal(n * E, &bad);
        if (gu_lora) c->xn2 = fal(n * E, &bad);
        c->rstd2 = fal(n, &bad), c->g = fal(n * F, &bad), c->u = fal(n * F, &bad);
        if (down_lora) c->h = fal(n * F, &bad);
        for (int tt = 0; tt < LM_LT_N; tt++) {
            int r = 0;
            for (int il = 0; il < a->n_layer; il++)
                if (a->w[il * LM_LT_N + tt].r > r) r = a->w[il * LM_LT_N + tt].r;
            if (r > 0) c->t[tt] = fal(n * (size_t)r, &bad);
        }
    }
    t->xs = fal((size_t)hp->n_layer * n * E, &bad); /* the last layer's output goes to dx */
    t->dx = fal(n * E, &bad), t->dxn = fal(n * E, &bad), t->dq = fal(n * Q, &bad);
    if (gemma) t->dx2 = fal(n * E, &bad), t->tmp = fal(n * (E > KV ? E : KV), &bad);
    t->dk = fal(n * KV, &bad), t->dv = fal(n * KV, &bad), t->datt = fal(n * Q, &bad);
    /* per chunk of rc rows: [dgate | dup] (rc, 2F), then [dq | dk | dv] (rc, Q + 2 KV) of the int8 dX;
     * dh (rc, F), also h in the forward */
    t->dgu = fal(rc * (2 * F > Q + 2 * KV ? 2 * F : Q + 2 * KV), &bad);
    t->dh = fal(rc * F, &bad);
    t->lu = fal((size_t)a->r_max * (size_t)a->out_max, &bad); /* B^T of one adapter */
    t->ldt = fal(n * (size_t)a->r_max, &bad);
    t->drows = malloc(sizeof(uint32_t) * 3 * n);
    if (!t->drows) bad = 1;
    for (int k = 0; k < LM_LT_N; k++) { /* the widest input of each adapted projection */
        int in = 0;
        for (int il = 0; il < a->n_layer; il++)
            if (a->w[il * LM_LT_N + k].A && a->w[il * LM_LT_N + k].in > in) in = a->w[il * LM_LT_N + k].in;
        if (in && !(t->dbits[k] = malloc(n * (size_t)((in + 7) / 8)))) bad = 1;
    }
    t->cos_g = fal(n * half, &bad), t->sin_g = fal(n * half, &bad), t->cos_l = fal(n * half, &bad);
    t->sin_l = fal(n * half, &bad);
    t->pos = malloc(sizeof(int) * n), t->tok = malloc(sizeof(int) * n), t->lens = malloc(sizeof(int) * n);
    t->row0 = malloc(sizeof(int) * n), t->rex = malloc(sizeof(int) * n);
    if (bad || !t->pos || !t->tok || !t->lens || !t->row0 || !t->rex) {
        ws_free(t);
        return pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory for a micro-batch of %d rows",
                               N);
    }
    t->cap = N;
    t->cap_lse = lse_rows;
    return PULSE_OK;
}

static pulse_status loss_reserve(pulse_lm_trainer *t, int NL) {
    if (NL <= t->lcap) return PULSE_OK;
    const size_t E = t->m->hp.n_embd, nb = 64;
    free(t->lrow), free(t->ltgt), free(t->xf), free(t->xin), free(t->dxf), free(t->rstdf), free(t->logits);
    int bad = 0;
    t->lrow = malloc(sizeof(int) * (size_t)NL), t->ltgt = malloc(sizeof(int) * (size_t)NL);
    t->xf = fal((size_t)NL * E, &bad), t->dxf = fal((size_t)NL * E, &bad), t->rstdf = fal((size_t)NL, &bad);
    t->xin = fal((size_t)NL * E, &bad);
    t->logits = fal(nb * (size_t)t->m->hp.n_vocab, &bad);
    if (bad || !t->lrow || !t->ltgt) {
        t->lcap = 0;
        return pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory for %d loss rows", NL);
    }
    t->lcap = NL;
    return PULSE_OK;
}

/* The transposed q8_0 copies of every layer's frozen weights (lwt), built once: about 1.06 bytes per base
 * parameter. A weight whose rows are not a multiple of 32 keeps the bf16 GEMM. */
static size_t q8_row(int n) {
    return pulse_ggml_row_size(PULSE_GGML_Q8_0, n);
}

static pulse_status wt_build(pulse_lm_trainer *t) {
    const pulse_lm_hparams *hp = &t->m->hp;
    const int E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    /* the dot runs along W's rows: Q, KV (qkv), E (o, down), F (gate | up) must be multiples of 32 */
    const int ok_qkv = Q % 32 == 0 && KV % 32 == 0, ok_e = E % 32 == 0, ok_f = F % 32 == 0;
    const size_t b_qkv = ok_qkv ? (size_t)E * q8_row(Q + 2 * KV) : 0, b_o = ok_e ? (size_t)Q * q8_row(E) : 0,
                 b_gu = ok_f ? (size_t)E * q8_row(2 * F) : 0, b_down = ok_e ? (size_t)F * q8_row(E) : 0,
                 per = b_qkv + b_o + b_gu + b_down;
    t->wt = pulse_calloc((size_t)hp->n_layer, sizeof *t->wt);
    t->wt_buf = per ? malloc(per * (size_t)hp->n_layer) : NULL;
    if (!t->wt || (per && !t->wt_buf)) return PULSE_ERR_NOMEM;
    uint8_t *p = t->wt_buf;
    for (int il = 0; il < hp->n_layer; il++, p += per) {
        const lm_layer *L = &t->m->layers[il];
        lwt *w = &t->wt[il];
        uint8_t *pq = p, *po = p + b_qkv, *pgu = po + b_o, *pd = pgu + b_gu;
        const size_t lqkv = q8_row(Q + 2 * KV), lgu = q8_row(2 * F);
        if (ok_qkv && pulse_qtranspose_q8_0(pq, lqkv, L->wq.data, L->wq.type, Q, E) &&
            pulse_qtranspose_q8_0(pq + q8_row(Q), lqkv, L->wk.data, L->wk.type, KV, E) &&
            pulse_qtranspose_q8_0(pq + q8_row(Q + KV), lqkv, L->wv.data, L->wv.type, KV, E))
            w->qkv = pq;
        if (ok_e && pulse_qtranspose_q8_0(po, q8_row(E), L->wo.data, L->wo.type, E, Q)) w->o = po;
        if (ok_f && pulse_qtranspose_q8_0(pgu, lgu, L->w_gate.data, L->w_gate.type, F, E) &&
            pulse_qtranspose_q8_0(pgu + q8_row(F), lgu, L->w_up.data, L->w_up.type, F, E))
            w->gu = pgu;
        if (ok_e && pulse_qtranspose_q8_0(pd, q8_row(E), L->w_down.data, L->w_down.type, E, F)) w->down = pd;
    }
    return PULSE_OK;
}

pulse_status pulse_lm_trainer_new(const pulse_lm *m, pulse_lora *a, const pulse_lm_train_params *params,
                                  pulse_lm_trainer **out) {
    *out = NULL;
    pulse_lm_train_params p = params ? *params : pulse_lm_train_default_params();
    const pulse_lm_hparams *hp = &m->hp;
    if (hp->arch == PULSE_LM_ARCH_PHI3 || m->layers[0].wqkv.data || !m->layers[0].w_gate.data)
        return pulse_set_error(
            PULSE_ERR_UNSUPPORTED,
            "LoRA training: fused attn_qkv / gate|up tensors (%s) are not supported (llama, "
            "gemma3, qwen2 are)",
            hp->arch_name);
    if (m->output_b.data)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "LoRA training: an output bias is not supported");
    if (strcmp(a->arch, m->arch_name) || a->n_layer != hp->n_layer)
        return pulse_set_error(PULSE_ERR_ARG,
                               "LoRA training: the adapter was made for another model (%s, %d layers)",
                               a->arch, a->n_layer);
    if (!(p.lr > 0) || !isfinite(p.lr) || !(p.dropout >= 0 && p.dropout < 1) ||
        !(p.beta1 >= 0 && p.beta1 < 1) || !(p.beta2 >= 0 && p.beta2 < 1) || !(p.adam_eps > 0) ||
        !isfinite(p.weight_decay) || !isfinite(p.clip))
        return pulse_set_error(
            PULSE_ERR_ARG,
            "LoRA training: lr %g, dropout %g, betas %g %g, eps %g: expected lr > 0, dropout in "
            "[0, 1), betas in [0, 1), eps > 0",
            (double)p.lr, (double)p.dropout, (double)p.beta1, (double)p.beta2, (double)p.adam_eps);
    pulse_lm_trainer *t = pulse_calloc(1, sizeof *t);
    if (!t) return PULSE_ERR_NOMEM;
    t->m = m;
    t->a = a;
    t->p = p;
    if (!p.exact_base && wt_build(t)) {
        pulse_lm_trainer_free(t);
        return pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory for the transposed weights");
    }
    t->mom = pulse_calloc(a->n_params, sizeof(float));
    t->vel = pulse_calloc(a->n_params, sizeof(float));
    t->grad = pulse_calloc(a->n_params, sizeof(float));
    if (!t->mom || !t->vel || !t->grad) {
        pulse_lm_trainer_free(t);
        return pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory for the optimizer");
    }
    *out = t;
    return PULSE_OK;
}

void pulse_lm_trainer_free(pulse_lm_trainer *t) {
    if (!t) return;
    ws_free(t);
    free(t->lrow), free(t->ltgt), free(t->xf), free(t->xin), free(t->dxf), free(t->rstdf), free(t->logits);
    free(t->mom), free(t->vel), free(t->grad);
    free(t->wt), free(t->wt_buf);
    free(t);
}

void pulse_lm_trainer_profile(const pulse_lm_trainer *t, double sec[4]) {
    memcpy(sec, t->prof, sizeof t->prof);
}

int pulse_lm_trainer_steps(const pulse_lm_trainer *t) {
    return t->step;
}

/* ---- the forward / backward pieces ---- */

/* Elementwise work over the threads, in row chunks (the same numbers as one thread). */
#define PAR_ELEMS 65536

/* z (n) = x + y */
static void vadd(float *z, const float *x, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_ELEMS)
    for (size_t j = 0; j < n; j++) z[j] = x[j] + y[j];
}

/* Y (n, C) += bias (C) */
static void add_bias(float *Y, const lm_tensor *b, int n, int C) {
    if (!b || !b->data) return;
    const float *bb = b->data;
#pragma omp parallel for schedule(static) if ((long)n * C >= PAR_ELEMS)
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) Y[(size_t)i * C + j] += bb[j];
}

/* RoPE forward / backward over row chunks of the (n, nh * hd) rows */
static void rope_rows(int bwd, float *x, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                      int neox) {
    const int chunk = 64, nc = (n + chunk - 1) / chunk, half = n_rot / 2;
#pragma omp parallel for schedule(static) if ((long)n * nh * hd >= PAR_ELEMS)
    for (int ci = 0; ci < nc; ci++) {
        const int i0 = ci * chunk, m = n - i0 < chunk ? n - i0 : chunk;
        const size_t off = (size_t)i0 * nh * hd, toff = (size_t)i0 * half;
        if (bwd)
            pulse_rope_backward(x + off, cs + toff, sn + toff, m, nh, hd, n_rot, neox);
        else
            pulse_rope_forward(x + off, cs + toff, sn + toff, m, nh, hd, n_rot, neox);
    }
}

/* h (n, F) = act(g) * u, rows over the threads */
static void glu_rows(float *h, const float *g, const float *u, int n, int F, int gelu) {
#pragma omp parallel for schedule(static) if ((long)n * F >= PAR_ELEMS)
    for (int i = 0; i < n; i++) {
        const size_t o = (size_t)i * F;
        pulse_glu_forward(h + o, g + o, u + o, (size_t)F, gelu);
    }
}

/* Y_j (n, W_j.rows) = X (n, cols) W_j^T + bias_j for nj weights reading the same X: exact_base through the
 * dequantised-block GEMM, else the int8 tiles in training's order with X quantised once
 * (pulse_qmatmul_multi_fast). */
static void base_fwd(const pulse_lm_trainer *t, float *const *Y, const lm_tensor *const *W,
                     const lm_tensor *const *b, int nj, const float *X, int n) {
    if (t->p.exact_base)
        for (int j = 0; j < nj; j++)
            pulse_qmatmul_dq(Y[j], X, W[j]->data, W[j]->type, n, W[j]->rows, W[j]->cols);
    else {
        pulse_qmm_job jobs[4];
        for (int j = 0; j < nj; j++) jobs[j] = (pulse_qmm_job){W[j]->data, W[j]->type, W[j]->rows, Y[j]};
        pulse_qmatmul_multi_fast(jobs, nj, X, n, W[0]->cols);
    }
    for (int j = 0; j < nj; j++) add_bias(Y[j], b[j], n, W[j]->rows);
}

/* dX (n, W.cols) = dY (n, W.rows; row stride ldy) @ W, SET: through the transposed q8_0 copy Wt on the int8
 * tiles when there is one (dY contiguous), else the bf16 GEMM of the dequantised blocks */
static void base_bwd(float *dX, const float *dY, int ldy, const lm_tensor *W, const uint8_t *Wt, int n) {
    if (Wt && ldy == W->rows) {
        pulse_qmatmul_fast(dX, Wt, PULSE_GGML_Q8_0, dY, n, W->cols, W->rows);
        return;
    }
    memset(dX, 0, sizeof(float) * (size_t)n * W->cols);
    pulse_qmatmul_backward_ld(dX, dY, ldy, W->data, W->type, n, W->rows, W->cols);
}

static uint64_t mix64(uint64_t z) { /* splitmix64's finaliser */
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The dropout stream of projection tt of layer il in the micro-batch of seed s, so the recomputation in the
 * backward draws the same masks. */
static uint64_t mask_seed(uint64_t s, int il, int tt) {
    return mix64(s ^ mix64((uint64_t)(il * LM_LT_N + tt + 1)));
}

/* The keep decision of element j of a (rows, in) input: counter-based, a 32-bit hash of (seed, j) (murmur3's
 * finaliser; 32-bit lanes, so the loops vectorise), kept iff it is >= thr = p 2^32. Nothing is stored: the
 * backward draws the same decisions again, and any thread count or chunking gives the same masks. */
static uint32_t drop_thr(float p) {
    const double v = (double)p * 4294967296.0;
    return v >= 4294967295.0 ? 0xffffffffu : (uint32_t)v;
}

/* The masks of projection tt of layer il over rows [i0, i0 + n) of the micro-batch's (N, in) input, row i
 * being position pos[i] of example mb_e0 + rex[i] of the step: element j of a row is kept iff
 * pulse_drop_hash(pos in + j, lo, hi) >= thr with (lo, hi) the stream of (the step's seed, the example's
 * index in the step, layer, projection) — counter-based 32-bit hashes (murmur3's finaliser), nothing stored:
 * the recomputation and the backward draw the same decisions, inside the low-rank products
 * (pulse_lowrank_*_drop), and any thread count, chunking, micro-batch or rank gives the same masks. Fills
 * t->drows. */
static pulse_lr_drop drop_rows(const pulse_lm_trainer *t, int il, int tt, int n, int in, int i0, int bwd) {
    for (int r = 0; r < n; r++) {
        const int row = i0 + r, e = t->mb_e0 + t->rex[row];
        const uint64_t seed = mask_seed(mix64(t->mb_seed ^ mix64((uint64_t)e + 1)), il, tt);
        t->drows[3 * (size_t)r] = (uint32_t)seed;
        t->drows[3 * (size_t)r + 1] = (uint32_t)(seed >> 32);
        t->drows[3 * (size_t)r + 2] = (uint32_t)t->pos[row] * (uint32_t)in;
    }
    /* with one layer cache (recompute) the backward of a layer follows its last forward: the forward writes
     * the keep bits, the backward's two products read them; with every layer kept, draw again */
    const int ld = (in + 7) / 8, mode = t->ncache == 1 ? (bwd ? 2 : 1) : 0;
    return (pulse_lr_drop){t->drows,
                           drop_thr(t->p.dropout),
                           1.0f / (1.0f - t->p.dropout),
                           mode ? t->dbits[tt] + (size_t)i0 * ld : NULL,
                           ld,
                           mode};
}

static int dropping(const pulse_lm_trainer *t) {
    return t->dropout_on && t->p.dropout > 0;
}

/* B^T (r, out) of the adapter into t->lu, for the low-rank products (B is (out, r)) */
static const float *lora_bt(pulse_lm_trainer *t, const lm_lora_w *w) {
    for (int o = 0; o < w->out; o++)
        for (int j = 0; j < w->r; j++) t->lu[(size_t)j * w->out + o] = w->B[(size_t)o * w->r + j];
    return t->lu;
}

/* y (n, out) += s B (A d(x)) for rows [i0, i0 + n); keeps t = A d(x) */
static void lora_fwd_rows(pulse_lm_trainer *t, lcache *c, int il, int tt, float *y, const float *x, int n,
                          int i0) {
    const lm_lora_w *w = &t->a->w[il * LM_LT_N + tt];
    if (!w->A) return;
    float *ct = c->t[tt] + (size_t)i0 * w->r;
    if (dropping(t)) {
        const pulse_lr_drop d = drop_rows(t, il, tt, n, w->in, i0, 0);
        pulse_lowrank_down_drop(ct, x, w->in, w->A, n, w->in, w->r, 1.0f, &d);
    } else
        pulse_lowrank_down(ct, x, w->in, w->A, n, w->in, w->r, 1.0f);
    pulse_lowrank_up(y, w->out, ct, lora_bt(t, w), n, w->out, w->r, w->s, 1);
}

/* gradients of the adapter of (il, tt) from dy (n, out; row stride ldy) of rows [i0, i0 + n);
 * dx (n, in) += the input gradient through it */
static void lora_bwd_rows(pulse_lm_trainer *t, lcache *c, int il, int tt, const float *dy, int ldy,
                          const float *x, float *dx, int n, int i0) {
    const lm_lora_w *w = &t->a->w[il * LM_LT_N + tt];
    if (!w->A) return;
    float *gA = t->grad + (w->A - t->a->data), *gB = t->grad + (w->B - t->a->data);
    const float *ct = c->t[tt] + (size_t)i0 * w->r;
    const float s = w->s;
    const int out = w->out, in = w->in, r = w->r;
    pulse_lowrank_down(t->ldt, dy, ldy, lora_bt(t, w), n, out, r, s); /* dt = s dy B */
    pulse_lowrank_grad(gB, 1, ct, dy, ldy, n, out, r, s);             /* dB += s dy^T t */
    if (!dropping(t)) {
        pulse_lowrank_grad(gA, 0, t->ldt, x, in, n, in, r, 1.0f);  /* dA += dt^T x */
        pulse_lowrank_up(dx, in, t->ldt, w->A, n, in, r, 1.0f, 1); /* dx += dt A */
        return;
    }
    const pulse_lr_drop d = drop_rows(t, il, tt, n, in, i0, 1);
    pulse_lowrank_grad_drop(gA, 0, t->ldt, x, in, n, in, r, 1.0f, &d); /* dA += dt^T d(x) */
    pulse_lowrank_up_drop(dx, in, t->ldt, w->A, n, in, r, 1.0f, &d);   /* dx += m (dt A) */
}

/* lora_fwd_rows / lora_bwd_rows over all n rows in one call each (their scratch holds N rows: one OpenMP
 * region per product instead of one per RC chunk) */
static void lora_fwd(pulse_lm_trainer *t, lcache *c, int il, int tt, float *y, const float *x, int n,
                     int i0) {
    lora_fwd_rows(t, c, il, tt, y, x, n, i0);
}

static void lora_bwd(pulse_lm_trainer *t, lcache *c, int il, int tt, const float *dy, int ldy, const float *x,
                     float *dx, int n, int i0) {
    lora_bwd_rows(t, c, il, tt, dy, ldy, x, dx, n, i0);
}

static void attn_params(const pulse_lm *m, const lm_layer *L, pulse_attn_params *ap) {
    ap->n_head = m->hp.n_head;
    ap->n_head_kv = m->hp.n_head_kv;
    ap->head_dim = m->hp.head_dim;
    ap->scale = m->hp.attn_scale;
    ap->softcap = 0;
    ap->window = L->is_swa ? m->hp.n_swa : 0;
    ap->row0 = NULL;
    ap->bf16 = 0;
}

/* Layer il on x (N, E: B packed sequences, the longest T) into xo, filling c. recomp: the recomputation
 * before the backward, where xo is already known: the FFN's tail (GLU, down) is skipped when the backward
 * needs none of it (no down adapter, no post-FFN norm). */
static void layer_fwd(pulse_lm_trainer *t, lcache *c, int il, const float *x, float *xo, int B, int T,
                      int recomp) {
    const pulse_lm *m = t->m;
    const pulse_lm_hparams *hp = &m->hp;
    const lm_layer *L = &m->layers[il];
    const int n = t->mb_N, E = hp->n_embd, NH = hp->n_head, NKV = hp->n_head_kv, HD = hp->head_dim,
              F = hp->n_ff;
    const size_t nE = (size_t)n * E;
    pulse_rmsnorm_forward_train(c->xn1, c->rstd1, x, L->attn_norm.data, n, E, hp->norm_eps);
    float *q = L->attn_q_norm.data ? c->qp : c->q, *k = L->attn_k_norm.data ? c->kp : c->k;
    {
        float *Y[3] = {q, k, c->v};
        const lm_tensor *W[3] = {&L->wq, &L->wk, &L->wv}, *b[3] = {&L->bq, &L->bk, &L->bv};
        base_fwd(t, Y, W, b, 3, c->xn1, n);
    }
    lora_fwd(t, c, il, LM_LT_Q, q, c->xn1, n, 0);
    lora_fwd(t, c, il, LM_LT_K, k, c->xn1, n, 0);
    lora_fwd(t, c, il, LM_LT_V, c->v, c->xn1, n, 0);
    if (L->attn_q_norm.data)
        pulse_rmsnorm_forward(c->q, c->qp, L->attn_q_norm.data, n * NH, HD, hp->norm_eps);
    if (L->attn_k_norm.data)
        pulse_rmsnorm_forward(c->k, c->kp, L->attn_k_norm.data, n * NKV, HD, hp->norm_eps);
    const float *rc = L->is_swa ? t->cos_l : t->cos_g, *rs = L->is_swa ? t->sin_l : t->sin_g;
    rope_rows(0, c->q, rc, rs, n, NH, HD, hp->n_rot, hp->rope_neox);
    rope_rows(0, c->k, rc, rs, n, NKV, HD, hp->n_rot, hp->rope_neox);
    pulse_attn_params ap;
    attn_params(m, L, &ap);
    ap.row0 = t->row0;
    ap.bf16 = !t->p.exact_base; /* bf16 products where the CPU has them (the fp32 reference: exact_base) */
    pulse_causal_attention_forward(c->att, c->lse, c->q, c->k, c->v, t->lens, B, T, &ap);
    float *o = L->post_attn_norm.data ? c->op : c->x2; /* without a post-norm straight into x2 */
    {
        float *Y[1] = {o};
        const lm_tensor *W[1] = {&L->wo}, *b[1] = {&L->bo};
        base_fwd(t, Y, W, b, 1, c->att, n);
    }
    lora_fwd(t, c, il, LM_LT_O, o, c->att, n, 0);
    if (L->post_attn_norm.data) {
        pulse_rmsnorm_forward(t->tmp, c->op, L->post_attn_norm.data, n, E, hp->norm_eps);
        o = t->tmp;
    }
    vadd(c->x2, x, o, nE);
    float *xn2 = c->xn2 ? c->xn2 : t->dxn; /* xn2 is kept only for the gate / up adapters' backward */
    pulse_rmsnorm_forward_train(xn2, c->rstd2, c->x2, L->ffn_norm.data, n, E, hp->norm_eps);
    {
        float *Y[2] = {c->g, c->u};
        const lm_tensor *W[2] = {&L->w_gate, &L->w_up}, *b[2] = {&L->b_gate, &L->b_up};
        base_fwd(t, Y, W, b, 2, xn2, n);
    }
    lora_fwd(t, c, il, LM_LT_GATE, c->g, xn2, n, 0);
    lora_fwd(t, c, il, LM_LT_UP, c->u, xn2, n, 0);
    if (recomp && !c->h && !L->post_ffn_norm.data) return;
    /* glu and down in chunks of rows (h is kept only for the down adapter's backward) */
    float *d = L->post_ffn_norm.data ? c->dp : xo; /* without a post-norm straight into xo */
    for (int i0 = 0; i0 < n; i0 += RC) {
        const int mm = n - i0 < RC ? n - i0 : RC;
        float *h = c->h ? c->h + (size_t)i0 * F : t->dh;
        glu_rows(h, c->g + (size_t)i0 * F, c->u + (size_t)i0 * F, mm, F, m->act_gelu);
        float *Y[1] = {d + (size_t)i0 * E};
        const lm_tensor *W[1] = {&L->w_down}, *b[1] = {&L->b_down};
        base_fwd(t, Y, W, b, 1, h, mm);
        lora_fwd(t, c, il, LM_LT_DOWN, d + (size_t)i0 * E, h, mm, i0);
    }
    if (L->post_ffn_norm.data) {
        pulse_rmsnorm_forward(t->tmp, c->dp, L->post_ffn_norm.data, n, E, hp->norm_eps);
        d = t->tmp;
    }
    vadd(xo, c->x2, d, nE);
}

/* dx (N, E) holds d xo on entry and d x on return. */
static void layer_bwd(pulse_lm_trainer *t, lcache *c, int il, const float *x, float *dx, int B, int T) {
    const pulse_lm *m = t->m;
    const pulse_lm_hparams *hp = &m->hp;
    const lm_layer *L = &m->layers[il];
    const lwt *wt = t->wt ? &t->wt[il] : &(lwt){NULL, NULL, NULL, NULL};
    const int n = t->mb_N, E = hp->n_embd, HD = hp->head_dim, NH = hp->n_head, NKV = hp->n_head_kv,
              F = hp->n_ff, Q = NH * HD, KV = NKV * HD;
    const size_t nQ = (size_t)n * Q, nKV = (size_t)n * KV, nE = (size_t)n * E;
    /* FFN: xo = x2 + post(down(h)) */
    const float *dd = dx;
    if (L->post_ffn_norm.data) {
        memset(t->dx2, 0, sizeof(float) * nE);
        pulse_rmsnorm_backward(t->dx2, NULL, dx, c->dp, L->post_ffn_norm.data, NULL, n, E, hp->norm_eps);
        dd = t->dx2;
    }
    /* in chunks of rows: dh, then [dgate | dup] rows (mm, 2F), then d xn2 */
    float *dgu = t->dgu;
    const int gelu = m->act_gelu;
    for (int i0 = 0; i0 < n; i0 += RC) {
        const int mm = n - i0 < RC ? n - i0 : RC;
        const float *ddc = dd + (size_t)i0 * E, *g = c->g + (size_t)i0 * F, *u = c->u + (size_t)i0 * F;
        const float *dh = t->dh;
        float *dxc = t->dxn + (size_t)i0 * E;
        base_bwd(t->dh, ddc, E, &L->w_down, wt->down, mm);
        lora_bwd(t, c, il, LM_LT_DOWN, ddc, E, c->h ? c->h + (size_t)i0 * F : NULL, t->dh, mm, i0);
#pragma omp parallel for schedule(static) if ((long)mm * F >= PAR_ELEMS)
        for (int i = 0; i < mm; i++) {
            float *dg = dgu + (size_t)i * 2 * F, *du = dg + F;
            const size_t o = (size_t)i * F;
            pulse_glu_backward(dg, du, dh + o, g + o, u + o, (size_t)F, gelu);
        }
        if (wt->gu)
            pulse_qmatmul_fast(dxc, wt->gu, PULSE_GGML_Q8_0, dgu, mm, E, 2 * F);
        else {
            memset(dxc, 0, sizeof(float) * (size_t)mm * E);
            pulse_qmatmul_backward_ld(dxc, dgu, 2 * F, L->w_gate.data, L->w_gate.type, mm, F, E);
            pulse_qmatmul_backward_ld(dxc, dgu + F, 2 * F, L->w_up.data, L->w_up.type, mm, F, E);
        }
        const float *xn2 = c->xn2 ? c->xn2 + (size_t)i0 * E : NULL;
        lora_bwd(t, c, il, LM_LT_GATE, dgu, 2 * F, xn2, dxc, mm, i0);
        lora_bwd(t, c, il, LM_LT_UP, dgu + F, 2 * F, xn2, dxc, mm, i0);
    }
    /* dx now becomes d x2: the residual plus the norm's input gradient */
    pulse_rmsnorm_backward(dx, NULL, t->dxn, c->x2, L->ffn_norm.data, c->rstd2, n, E, hp->norm_eps);
    /* attention: x2 = x + post(wo(att)) */
    const float *dob = dx;
    if (L->post_attn_norm.data) {
        memset(t->dx2, 0, sizeof(float) * nE);
        pulse_rmsnorm_backward(t->dx2, NULL, dx, c->op, L->post_attn_norm.data, NULL, n, E, hp->norm_eps);
        dob = t->dx2;
    }
    base_bwd(t->datt, dob, E, &L->wo, wt->o, n);
    lora_bwd(t, c, il, LM_LT_O, dob, E, c->att, t->datt, n, 0);
    memset(t->dq, 0, sizeof(float) * nQ);
    memset(t->dk, 0, sizeof(float) * nKV);
    memset(t->dv, 0, sizeof(float) * nKV);
    pulse_attn_params ap;
    attn_params(m, L, &ap);
    ap.row0 = t->row0;
    ap.bf16 = !t->p.exact_base; /* bf16 products where the CPU has them (the fp32 reference: exact_base) */
    pulse_causal_attention_backward(t->dq, t->dk, t->dv, t->datt, c->att, c->lse, c->q, c->k, c->v, t->lens,
                                    B, T, &ap);
    const float *rc = L->is_swa ? t->cos_l : t->cos_g, *rs = L->is_swa ? t->sin_l : t->sin_g;
    rope_rows(1, t->dq, rc, rs, n, NH, HD, hp->n_rot, hp->rope_neox);
    rope_rows(1, t->dk, rc, rs, n, NKV, HD, hp->n_rot, hp->rope_neox);
    float *dq = t->dq, *dk = t->dk;
    if (L->attn_q_norm
            .data) { /* through the per-head QK norms into the pre-norm projections (datt, tmp free) */
        memset(t->datt, 0, sizeof(float) * nQ);
        pulse_rmsnorm_backward(t->datt, NULL, t->dq, c->qp, L->attn_q_norm.data, NULL, n * NH, HD,
                               hp->norm_eps);
        dq = t->datt;
    }
    if (L->attn_k_norm.data) {
        memset(t->tmp, 0, sizeof(float) * nKV);
        pulse_rmsnorm_backward(t->tmp, NULL, t->dk, c->kp, L->attn_k_norm.data, NULL, n * NKV, HD,
                               hp->norm_eps);
        dk = t->tmp;
    }
    if (wt->qkv) { /* [dq | dk | dv] rows (mm, Q + 2 KV) through [Wq; Wk; Wv]^T, in chunks of rows */
        const int W3 = Q + 2 * KV;
        const float *dv = t->dv;
        for (int i0 = 0; i0 < n; i0 += RC) {
            const int mm = n - i0 < RC ? n - i0 : RC;
#pragma omp parallel for schedule(static) if ((long)mm * W3 >= PAR_ELEMS)
            for (int i = 0; i < mm; i++) {
                float *r = dgu + (size_t)i * W3;
                const size_t ii = (size_t)(i0 + i);
                memcpy(r, dq + ii * Q, sizeof(float) * (size_t)Q);
                memcpy(r + Q, dk + ii * KV, sizeof(float) * (size_t)KV);
                memcpy(r + Q + KV, dv + ii * KV, sizeof(float) * (size_t)KV);
            }
            pulse_qmatmul_fast(t->dxn + (size_t)i0 * E, wt->qkv, PULSE_GGML_Q8_0, dgu, mm, E, W3);
        }
    } else {
        memset(t->dxn, 0, sizeof(float) * nE);
        pulse_qmatmul_backward(t->dxn, dq, L->wq.data, L->wq.type, n, Q, E);
        pulse_qmatmul_backward(t->dxn, dk, L->wk.data, L->wk.type, n, KV, E);
        pulse_qmatmul_backward(t->dxn, t->dv, L->wv.data, L->wv.type, n, KV, E);
    }
    lora_bwd(t, c, il, LM_LT_Q, dq, Q, c->xn1, t->dxn, n, 0);
    lora_bwd(t, c, il, LM_LT_K, dk, KV, c->xn1, t->dxn, n, 0);
    lora_bwd(t, c, il, LM_LT_V, t->dv, KV, c->xn1, t->dxn, n, 0);
    pulse_rmsnorm_backward(dx, NULL, t->dxn, x, L->attn_norm.data, c->rstd1, n, E, hp->norm_eps);
}

/* Forward + backward of one micro-batch ex[0..B): accumulates into t->grad with dloss_scale per loss token;
 * *loss_sum gets the summed cross-entropy. */
static pulse_status micro_batch(pulse_lm_trainer *t, const pulse_lm_example *ex, int B, float dloss_scale,
                                double *loss_sum, int *n_loss, long *n_tok) {
    const pulse_lm *m = t->m;
    const pulse_lm_hparams *hp = &m->hp;
    const int E = hp->n_embd, V = hp->n_vocab;
    int T = 0, NL = 0, N = 0;
    for (int b = 0; b < B; b++) {
        if (!ex[b].tokens || ex[b].n_tokens < 2 || ex[b].n_prompt < 1 || ex[b].n_prompt >= ex[b].n_tokens)
            return pulse_set_error(
                PULSE_ERR_ARG,
                "LoRA training: example %d: %d tokens with a prompt of %d: expected a prompt of "
                ">= 1 token and >= 1 completion token",
                b, ex[b].n_tokens, ex[b].n_prompt);
        if (ex[b].n_tokens > hp->n_ctx_train)
            return pulse_set_error(PULSE_ERR_RANGE,
                                   "LoRA training: example %d: %d tokens exceed the model's context %d", b,
                                   ex[b].n_tokens, hp->n_ctx_train);
        for (int i = 0; i < ex[b].n_tokens; i++)
            if (ex[b].tokens[i] < 0 || ex[b].tokens[i] >= V)
                return pulse_set_error(PULSE_ERR_RANGE, "LoRA training: example %d: token %d outside [0, %d)",
                                       b, ex[b].tokens[i], V);
        if (ex[b].n_tokens > T) T = ex[b].n_tokens;
        NL += ex[b].n_tokens - ex[b].n_prompt;
        N += ex[b].n_tokens;
    }
    t->mb_T = T;
    t->mb_N = N;
    pulse_status st = ws_reserve(t, N, B, B * T);
    if (!st) st = loss_reserve(t, NL);
    if (st) return st;
    /* the sequences back to back: sequence b at rows row0[b] .. row0[b] + lens[b] - 1 */
    for (int b = 0, r = 0; b < B; r += ex[b].n_tokens, b++) {
        t->lens[b] = ex[b].n_tokens;
        t->row0[b] = r;
        *n_tok += ex[b].n_tokens;
        for (int i = 0; i < ex[b].n_tokens; i++) {
            t->tok[r + i] = ex[b].tokens[i];
            t->pos[r + i] = i;
            t->rex[r + i] = b;
        }
    }
    /* loss rows: position i predicts token i + 1 */
    NL = 0;
    for (int b = 0; b < B; b++)
        for (int i = ex[b].n_prompt - 1; i < ex[b].n_tokens - 1; i++) {
            t->lrow[NL] = t->row0[b] + i;
            t->ltgt[NL++] = ex[b].tokens[i + 1];
        }
    pulse_rope_cache(t->cos_g, t->sin_g, t->pos, N, hp->n_rot, hp->rope_base, hp->rope_scale,
                     m->freq_factors);
    if (hp->n_swa > 0)
        pulse_rope_cache(t->cos_l, t->sin_l, t->pos, N, hp->n_rot, hp->rope_base_swa, 1.0f, m->freq_factors);
    /* embeddings */
    float *x0 = t->xs;
    for (int i = 0; i < N; i++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)t->tok[i] * m->tok_embd.row_bytes;
        pulse_dequantize_row(m->tok_embd.type, row, x0 + (size_t)i * E, E);
        if (m->emb_scale != 1.0f)
            for (int j = 0; j < E; j++) x0[(size_t)i * E + j] *= m->emb_scale;
    }
    const size_t nE = (size_t)N * E;
    double tp = pulse_now(), tq;
    for (int il = 0; il < hp->n_layer; il++)
        layer_fwd(t, &t->lc[t->ncache == 1 ? 0 : il], il, t->xs + (size_t)il * nE,
                  il + 1 < hp->n_layer ? t->xs + (size_t)(il + 1) * nE : t->dx, B, T, 0);
    tq = pulse_now();
    t->prof[0] += tq - tp;
    tp = tq;
    /* final norm and head at the loss rows */
    const float *xL = t->dx; /* the last layer's output */
    for (int j = 0; j < NL; j++)
        memcpy(t->xf + (size_t)j * E, xL + (size_t)t->lrow[j] * E, sizeof(float) * E);
    memcpy(t->xin, t->xf, sizeof(float) * (size_t)NL * E); /* the norm's input */
    pulse_rmsnorm_forward_train(t->xf, t->rstdf, t->xin, m->output_norm.data, NL, E, hp->norm_eps);
    memset(t->dxf, 0, sizeof(float) * (size_t)NL * E);
    *loss_sum += pulse_qhead_loss(t->dxf, NULL, t->xf, m->output.data, m->output.type, t->ltgt, NL, E, V,
                                  hp->final_softcap, dloss_scale, t->logits, 64);
    *n_loss += NL;
    memset(t->dx, 0, sizeof(float) * nE);
    memset(t->xf, 0, sizeof(float) * (size_t)NL * E);
    pulse_rmsnorm_backward(t->xf, NULL, t->dxf, t->xin, m->output_norm.data, t->rstdf, NL, E, hp->norm_eps);
    for (int j = 0; j < NL; j++) {
        float *d = t->dx + (size_t)t->lrow[j] * E;
        const float *s = t->xf + (size_t)j * E;
        for (int e = 0; e < E; e++) d[e] += s[e];
    }
    tq = pulse_now();
    t->prof[1] += tq - tp;
    tp = tq;
    for (int il = hp->n_layer - 1; il >= 0; il--) {
        lcache *c = &t->lc[t->ncache == 1 ? 0 : il];
        const float *x = t->xs + (size_t)il * nE;
        if (t->ncache == 1 && il != hp->n_layer - 1) { /* recompute (same dropout masks: same seeds) */
            layer_fwd(t, c, il, x, t->xs + (size_t)(il + 1) * nE, B, T, 1);
            tq = pulse_now();
            t->prof[2] += tq - tp;
            tp = tq;
        }
        layer_bwd(t, c, il, x, t->dx, B, T);
        tq = pulse_now();
        t->prof[3] += tq - tp;
        tp = tq;
    }
    return PULSE_OK;
}

pulse_status pulse_lm_trainer_loss_grad(pulse_lm_trainer *t, const pulse_lm_example *ex, int n,
                                        int dropout_on, float *grad, double *loss, int *n_loss_tokens) {
    if (n <= 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA training: no examples");
    int NL = 0;
    for (int b = 0; b < n; b++) NL += ex[b].n_tokens - ex[b].n_prompt;
    if (NL <= 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA training: no loss tokens");
    memset(t->grad, 0, sizeof(float) * t->a->n_params);
    t->dropout_on = dropout_on;
    t->mb_seed = t->p.seed ^ 0x5eedull;
    t->mb_e0 = 0;
    double ls = 0;
    int nl = 0;
    long ntok = 0;
    pulse_status st = micro_batch(t, ex, n, 1.0f / (float)NL, &ls, &nl, &ntok);
    if (st) return st;
    if (grad) memcpy(grad, t->grad, sizeof(float) * t->a->n_params);
    if (loss) *loss = ls / nl;
    if (n_loss_tokens) *n_loss_tokens = nl;
    return PULSE_OK;
}

float pulse_lm_trainer_lr(const pulse_lm_trainer *t, int step) {
    const pulse_lm_train_params *p = &t->p;
    int total = p->total_steps > 0 ? p->total_steps : 1;
    int warm = p->warmup_steps >= 0 ? p->warmup_steps : (int)(0.03 * total + 0.5);
    if (step <= warm && warm > 0) return p->lr * (float)step / (float)warm;
    if (p->schedule == PULSE_LM_SCHED_CONSTANT || total <= warm) return p->lr;
    double prog = (double)(step - warm) / (double)(total - warm);
    if (prog > 1) prog = 1;
    if (p->schedule == PULSE_LM_SCHED_LINEAR) return (float)(p->lr * (1.0 - prog));
    return (float)(p->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * prog)));
}

/* One optimizer step over the n examples ex (micro-batches of at most micro). On several MPI ranks
 * (data-parallel) each rank runs a contiguous share of the step: whole micro-batches when there are at
 * least as many as ranks (so each is computed exactly as on one process), else a share of the examples
 * (pulse_dist_share); every loss token weighs 1 / (the step's loss tokens), so the sum of the ranks'
 * gradients (MPI_Allreduce: the adapter's n_params floats) is the one-process gradient; the loss sums and
 * token counts are summed with it, and every rank takes the same clipped AdamW step. Dropout masks are
 * drawn per example (dropout_rows), so they are the one-process ones on any number of ranks. */
static pulse_status step_impl(pulse_lm_trainer *t, const pulse_lm_example *ex, int n, int micro, double *loss,
                              double *grad_norm, long *n_tok) {
    if (n <= 0 || micro <= 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA training: empty step");
    int NL = 0;
    for (int b = 0; b < n; b++) NL += ex[b].n_tokens - ex[b].n_prompt;
    if (NL <= 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA training: a step without loss tokens");
    memset(t->grad, 0, sizeof(float) * t->a->n_params);
    t->dropout_on = 1;
    t->mb_seed = mix64(t->p.seed ^ mix64((uint64_t)t->step << 32));
    const int R = pulse_dist_size(), n_mb = (n + micro - 1) / micro;
    int lo, hi;
    if (n_mb >= R) { /* whole micro-batches: each is the one-process micro-batch (the same rows, padding) */
        pulse_dist_share(n_mb, pulse_dist_rank(), R, &lo, &hi);
        lo *= micro;
        hi = hi * micro < n ? hi * micro : n;
    } else { /* fewer micro-batches than ranks: the examples */
        pulse_dist_share(n, pulse_dist_rank(), R, &lo, &hi);
    }
    double ls = 0;
    int nl = 0;
    long ntok = 0;
    pulse_status st = PULSE_OK;
    for (int b0 = lo; b0 < hi && !st; b0 += micro) {
        const int nb = hi - b0 < micro ? hi - b0 : micro;
        t->mb_e0 = b0;
        st = micro_batch(t, ex + b0, nb, 1.0f / (float)NL, &ls, &nl, &ntok);
    }
    const size_t np = t->a->n_params;
    if (R > 1) {
        if ((st = pulse_dist_agree(st))) return st;
        const double t0 = pulse_now();
        double sums[3] = {ls, (double)nl, (double)ntok};
        st = pulse_dist_sum_f64(sums, 3);
        if (!st) st = pulse_dist_sum_f32(t->grad, np);
        t->comm += pulse_now() - t0;
        ls = sums[0];
        nl = (int)sums[1];
        ntok = (long)sums[2];
    }
    if (st) return st;
    *n_tok += ntok;
    double gn = sqrt(pulse_grad_norm_sq(t->grad, np));
    if (!isfinite(gn))
        return pulse_set_error(PULSE_ERR_RANGE, "LoRA training: step %d: the gradient is not finite",
                               t->step + 1);
    if (t->p.clip > 0 && gn > t->p.clip) pulse_scale(t->grad, np, (float)(t->p.clip / (gn + 1e-6)));
    t->step++;
    const float lr = pulse_lm_trainer_lr(t, t->step);
    pulse_adamw_update(t->a->data, t->grad, t->mom, t->vel, np, lr, t->p.beta1, t->p.beta2, t->p.adam_eps,
                       t->p.weight_decay, t->step);
    if (loss) *loss = ls / nl;
    if (grad_norm) *grad_norm = gn;
    return PULSE_OK;
}

pulse_status pulse_lm_trainer_step(pulse_lm_trainer *t, const pulse_lm_example *ex, int n, int micro,
                                   double *loss, double *grad_norm) {
    long nt = 0;
    return step_impl(t, ex, n, micro, loss, grad_norm, &nt);
}

/* ---- checkpoints: "PLCK" v1, n_params, step, epoch, next example, then data, m, v (float32) ---- */
#define CK_MAGIC 0x4b434c50u

static pulse_status ck_save(const pulse_lm_trainer *t, const char *path, int epoch, int next) {
    const size_t np = t->a->n_params, hdr = 8 * sizeof(uint64_t);
    const size_t len = hdr + 3 * np * sizeof(float);
    uint8_t *buf = malloc(len);
    if (!buf) return pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory for the checkpoint", path);
    uint64_t h[8] = {CK_MAGIC,
                     1,
                     np,
                     (uint64_t)t->step,
                     (uint64_t)epoch,
                     (uint64_t)next,
                     t->p.seed,
                     (uint64_t)t->a->n_pairs};
    memcpy(buf, h, hdr);
    memcpy(buf + hdr, t->a->data, np * sizeof(float));
    memcpy(buf + hdr + np * sizeof(float), t->mom, np * sizeof(float));
    memcpy(buf + hdr + 2 * np * sizeof(float), t->vel, np * sizeof(float));
    pulse_status st = pulse_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

static pulse_status ck_load(pulse_lm_trainer *t, const char *path, int *epoch, int *next) {
    FILE *f = fopen(path, "rb");
    if (!f) return pulse_set_error(PULSE_ERR_IO, "%s: cannot open the checkpoint", path);
    uint64_t h[8];
    const size_t np = t->a->n_params;
    pulse_status st = PULSE_OK;
    if (fread(h, sizeof h, 1, f) != 1 || h[0] != CK_MAGIC || h[1] != 1)
        st = pulse_set_error(PULSE_ERR_FORMAT, "%s: not a pulse LoRA training checkpoint (v1)", path);
    else if (h[2] != np || h[7] != (uint64_t)t->a->n_pairs || h[6] != t->p.seed)
        st = pulse_set_error(
            PULSE_ERR_FORMAT,
            "%s: checkpoint of %llu parameters in %llu tensors with seed %llu; this run has %zu in "
            "%d with seed %llu",
            path, (unsigned long long)h[2], (unsigned long long)h[7], (unsigned long long)h[6], np,
            t->a->n_pairs, (unsigned long long)t->p.seed);
    else if (fread(t->a->data, sizeof(float), np, f) != np || fread(t->mom, sizeof(float), np, f) != np ||
             fread(t->vel, sizeof(float), np, f) != np)
        st = pulse_set_error(PULSE_ERR_FORMAT, "%s: truncated checkpoint", path);
    fclose(f);
    if (st) return st;
    t->step = (int)h[3];
    *epoch = (int)h[4];
    *next = (int)h[5];
    return PULSE_OK;
}

pulse_status pulse_lm_train(const pulse_lm *m, pulse_lora *a, const pulse_lm_example *ex, int n,
                            const pulse_lm_train_params *params, pulse_lm_train_result *r) {
    memset(r, 0, sizeof *r);
    pulse_lm_train_params p = params ? *params : pulse_lm_train_default_params();
    if (n <= 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA training: no examples");
    if (p.epochs < 1 || p.batch < 1 || p.grad_accum < 1)
        return pulse_set_error(PULSE_ERR_ARG,
                               "LoRA training: epochs %d, batch %d, grad_accum %d: expected >= 1", p.epochs,
                               p.batch, p.grad_accum);
    const int per_step = p.batch * p.grad_accum, steps_epoch = (n + per_step - 1) / per_step;
    p.total_steps = steps_epoch * p.epochs;
    if (p.max_steps > 0 && p.max_steps < p.total_steps) p.total_steps = p.max_steps;
    pulse_lm_trainer *t = NULL;
    pulse_status st = pulse_lm_trainer_new(m, a, &p, &t);
    if (st) return st;
    const int me = pulse_dist_rank();
    int *perm = malloc(sizeof(int) * (size_t)n);
    pulse_lm_example *bx = malloc(sizeof *bx * (size_t)per_step);
    FILE *log = NULL;
    if (!perm || !bx) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "LoRA training: out of memory");
        goto done;
    }
    int epoch0 = 0, next0 = 0;
    if (p.resume && p.checkpoint_path && pulse_file_exists(p.checkpoint_path)) {
        if ((st = ck_load(t, p.checkpoint_path, &epoch0, &next0))) goto done;
        r->resumed_from = t->step;
        if (me == 0)
            fprintf(stderr, "LoRA training: resumed from %s at step %d (epoch %d, example %d)\n",
                    p.checkpoint_path, t->step, epoch0 + 1, next0);
    }
    if (p.log_path &&
        me == 0) { /* rank 0 writes the log and the checkpoints: every rank holds the same state */
        log = fopen(p.log_path, r->resumed_from ? "a" : "w");
        if (!log) {
            st = pulse_set_error(PULSE_ERR_IO, "%s: cannot open the loss log for writing", p.log_path);
            goto done;
        }
    }
    pulse_progress pr;
    /* a resumed run: steps count from the checkpoint's, the rate and ETA from this run's */
    pulse_progress_begin_at(&pr, "lora train", "steps", (size_t)p.total_steps, (size_t)t->step);
    const double t0 = pulse_now();
    long tok_run = 0;
    int first = 1, cur_ep = epoch0, cur_next = next0;
    for (int ep = epoch0; ep < p.epochs && t->step < p.total_steps; ep++) {
        pulse_rng rng;
        pulse_rng_seed(&rng, p.seed + 1000003ull * (uint64_t)(ep + 1));
        for (int i = 0; i < n; i++) perm[i] = i;
        pulse_rng_shuffle_int(&rng, perm, (size_t)n);
        for (int i0 = ep == epoch0 ? next0 : 0; i0 < n && t->step < p.total_steps; i0 += per_step) {
            const int nb = n - i0 < per_step ? n - i0 : per_step;
            for (int j = 0; j < nb; j++) bx[j] = ex[perm[i0 + j]];
            double loss = 0, gn = 0;
            long ntok = 0;
            if ((st = step_impl(t, bx, nb, p.batch, &loss, &gn, &ntok))) goto done_pr;
            tok_run += ntok;
            for (int j = 0; j < nb; j++) r->loss_tokens += bx[j].n_tokens - bx[j].n_prompt;
            if (first) r->first_loss = loss, first = 0;
            r->final_loss = loss;
            const double el = pulse_now() - t0;
            if (log) {
                fprintf(
                    log,
                    "{\"step\":%d,\"epoch\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6g,\"tokens\":%ld,"
                    "\"seconds\":%.3f}\n",
                    t->step, ep + 1, loss, (double)pulse_lm_trainer_lr(t, t->step), gn, tok_run, el);
                fflush(log);
            }
            char extra[128];
            snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", loss, el > 0 ? tok_run / el : 0.0);
            pulse_progress_update(&pr, (size_t)t->step, extra);
            const int nx = i0 + nb;
            cur_ep = nx >= n ? ep + 1 : ep;
            cur_next = nx >= n ? 0 : nx;
            if (me == 0 && p.checkpoint_path && p.checkpoint_every > 0 && t->step % p.checkpoint_every == 0)
                if ((st = ck_save(t, p.checkpoint_path, cur_ep, cur_next))) goto done_pr;
        }
    }
    if (p.checkpoint_path && me == 0) st = ck_save(t, p.checkpoint_path, cur_ep, cur_next);
done_pr:
    pulse_progress_end(&pr, (size_t)t->step, NULL);
    r->tokens = tok_run;
    r->seconds = pulse_now() - t0;
    r->steps = t->step;
    r->peak_rss = pulse_peak_rss_bytes();
    r->comm_seconds = t->comm;
done:
    if (log) fclose(log);
    free(perm);
    free(bx);
    pulse_lm_trainer_free(t);
    return st;
}
