/* encoder/model.c — owns the encoder's computation: the activations (one block each for inference and for
 * training, pointed by a size table as llm.c's malloc_and_point_activations), the embeddings, one
 * transformer block's forward and backward side by side, pooling + projection head + L2 normalisation and
 * their backward, inference with length-sorted padded batches and a key mask, and the whole-model forward
 * (training, saved activations, hidden dropout) and backward. Built on the shared kernels (pulse/kernels.h).
 * Shapes and the block equations: internal.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/internal.h"
#include "pulse/kernels.h"

/* ------------------------------------------------------------------------------------------------------ */
/* activations: one block per use, every tensor pointed into it by a size table (llm.c's
 * malloc_and_point_activations); each tensor starts on a 64-byte boundary and the block starts zeroed */

enum { MAX_TENSORS = 64 };
typedef struct {
    float **f[MAX_TENSORS];
    size_t nf[MAX_TENSORS];
    int n_f;
    int **i[8];
    size_t ni[8];
    int n_i;
    uint8_t **b[8];
    size_t nb[8];
    int n_b;
} size_table;

static void tab_f(size_table *t, float **p, size_t n) {
    t->f[t->n_f] = p;
    t->nf[t->n_f++] = n;
}
static void tab_i(size_table *t, int **p, size_t n) {
    t->i[t->n_i] = p;
    t->ni[t->n_i++] = n;
}
static void tab_b(size_table *t, uint8_t **p, size_t n) {
    t->b[t->n_b] = p;
    t->nb[t->n_b++] = n;
}

/* adds n elements of size sz to *bytes, 64-byte aligned; returns 1 on overflow */
static int add_bytes(size_t *bytes, size_t n, size_t sz) {
    size_t b;
    if (pulse_mul_overflows(n, sz, &b) || b > SIZE_MAX - 64 - *bytes) return 1;
    *bytes += (b + 63) / 64 * 64;
    return 0;
}

/* one zeroed 64-byte aligned block for every tensor of t, the pointers set; NULL when out of memory */
static void *alloc_and_point(const size_table *t, size_t *out_bytes) {
    size_t bytes = 0;
    int ovf = 0;
    for (int k = 0; k < t->n_f; k++) ovf |= add_bytes(&bytes, t->nf[k], sizeof(float));
    for (int k = 0; k < t->n_i; k++) ovf |= add_bytes(&bytes, t->ni[k], sizeof(int));
    for (int k = 0; k < t->n_b; k++) ovf |= add_bytes(&bytes, t->nb[k], 1);
    if (out_bytes) *out_bytes = bytes;
    char *blk = ovf ? NULL : aligned_alloc(64, bytes ? bytes : 64);
    if (!blk) return NULL;
    memset(blk, 0, bytes);
    size_t o = 0;
    for (int k = 0; k < t->n_f; k++) {
        *t->f[k] = (void *)(blk + o);
        add_bytes(&o, t->nf[k], sizeof(float));
    }
    for (int k = 0; k < t->n_i; k++) {
        *t->i[k] = (void *)(blk + o);
        add_bytes(&o, t->ni[k], sizeof(int));
    }
    for (int k = 0; k < t->n_b; k++) {
        *t->b[k] = (void *)(blk + o);
        add_bytes(&o, t->nb[k], 1);
    }
    return blk;
}

/* inference in bf16: asked for and the kernel is there (else the fp32 path, not the kernels' fallbacks) */
static int infer_bf16(const pulse_encoder *e) {
    return pulse_precision_resolve(e->p.precision) == PULSE_PREC_BF16 && pulse_bf16_supported();
}

pulse_precision pulse_precision_resolve(pulse_precision p) {
    if (p != PULSE_PREC_AUTO) return p;
    return pulse_cpu_bf16_fast(pulse_cpu_get()) ? PULSE_PREC_BF16 : PULSE_PREC_FP32;
}

/* the inference scratch's size table for B texts of T tokens; f32: the fp32 path's attention
 * probabilities and fused QKV product (bf16 inference keeps no probabilities and splits the QKV product in
 * its stores) */
static void scratch_sizes(const pulse_encoder *e, enc_scratch *s, size_table *t, int B, int T, int f32) {
    const size_t R = (size_t)B * T, C = (size_t)e->C, FF = (size_t)e->FF, D = (size_t)pulse_encoder_dim(e);
    memset(t, 0, sizeof *t);
    float **rc[] = {&s->x, &s->x1, &s->t, &s->q, &s->k, &s->v, &s->y};
    for (size_t k = 0; k < sizeof rc / sizeof rc[0]; k++) tab_f(t, rc[k], R * C);
    tab_f(t, &s->h, R * FF);
    tab_f(t, &s->att, f32 ? (size_t)B * e->NH * T * T : 1);
    tab_f(t, &s->mean, R);
    tab_f(t, &s->rstd, R);
    tab_f(t, &s->pool, (size_t)B * C);
    tab_f(t, &s->proj, (size_t)B * D);
    tab_f(t, &s->norm, (size_t)B);
    tab_f(t, &s->qkv, f32 ? R * 3 * C : 1);
    tab_i(t, &s->pos, R);
    tab_i(t, &s->ids, R);
    tab_b(t, &s->kmask, R);
}

void enc_free_scratch(pulse_encoder *e) {
    free(e->s_block);
    e->s_block = NULL;
    memset(&e->s, 0, sizeof e->s);
    e->s_cap_b = e->s_cap_t = 0;
}

/* scratch for a batch of B texts of T tokens: reused when both fit (every tensor's size grows with B and T)
 */
static pulse_status ensure_scratch(pulse_encoder *e, int B, int T) {
    const int f32 = !infer_bf16(e);
    if (e->s_block && B <= e->s_cap_b && T <= e->s_cap_t && (!f32 || e->s_f32)) return PULSE_OK;
    if (e->s_block) { /* grow to cover both the old and the new batch shape */
        B = B > e->s_cap_b ? B : e->s_cap_b;
        T = T > e->s_cap_t ? T : e->s_cap_t;
    }
    enc_free_scratch(e);
    size_table t;
    scratch_sizes(e, &e->s, &t, B, T, f32);
    e->s_block = alloc_and_point(&t, NULL);
    if (!e->s_block) {
        memset(&e->s, 0, sizeof e->s);
        return pulse_set_error(PULSE_ERR_NOMEM, "encoder: out of memory for a batch of %d x %d tokens", B, T);
    }
    e->s_cap_b = B;
    e->s_cap_t = T;
    e->s_f32 = f32;
    return PULSE_OK;
}

/* the training activations' size table for MB texts of T tokens (R = MB * T rows) */
static void train_sizes(const pulse_encoder *e, enc_acts *a, size_table *t, int MB, int T) {
    const size_t L = (size_t)e->L, R = (size_t)MB * T, C = (size_t)e->C, FF = (size_t)e->FF,
                 D = (size_t)pulse_encoder_dim(e), ATT = (size_t)MB * e->NH * T * T;
    memset(t, 0, sizeof *t);
    tab_f(t, &a->e, R * C);
    tab_f(t, &a->eln, R * C);
    tab_f(t, &a->emean, R);
    tab_f(t, &a->erstd, R);
    tab_f(t, &a->x0, R * C);
    float **lrc[] = {&a->q, &a->k, &a->v, &a->atty, &a->res1, &a->x1, &a->res2, &a->x2};
    for (size_t k = 0; k < sizeof lrc / sizeof lrc[0]; k++) tab_f(t, lrc[k], L * R * C);
    tab_f(t, &a->att, L * ATT);
    float **lr[] = {&a->mean1, &a->rstd1, &a->mean2, &a->rstd2};
    for (size_t k = 0; k < sizeof lr / sizeof lr[0]; k++) tab_f(t, lr[k], L * R);
    tab_f(t, &a->h, L * R * FF);
    tab_f(t, &a->g, L * R * FF);
    tab_f(t, &a->o, R * C);
    tab_f(t, &a->qkv, R * 3 * C);
    tab_f(t, &a->pool, (size_t)MB * C);
    tab_f(t, &a->proj, (size_t)MB * D);
    tab_f(t, &a->out, (size_t)MB * D);
    tab_f(t, &a->norm, (size_t)MB);
    float **drc[] = {&a->d_x, &a->d_res, &a->d_x1, &a->d_o, &a->d_atty, &a->d_q, &a->d_k, &a->d_v};
    for (size_t k = 0; k < sizeof drc / sizeof drc[0]; k++) tab_f(t, drc[k], R * C);
    tab_f(t, &a->d_att, ATT);
    tab_f(t, &a->d_g, R * FF);
    tab_f(t, &a->d_h, R * FF);
    tab_f(t, &a->d_pool, (size_t)MB * C);
    tab_f(t, &a->d_proj, (size_t)MB * D);
    tab_i(t, &a->ids, R);
    tab_i(t, &a->pos, R);
    tab_i(t, &a->zero, R);
    tab_i(t, &a->lens, (size_t)MB);
    tab_b(t, &a->kmask, R);
    tab_b(t, &a->emask, R * C);
    tab_b(t, &a->mo, L * R * C);
    tab_b(t, &a->mf, L * R * C);
}

void enc_free_acts(pulse_encoder *e) {
    free(e->a_block);
    free(e->la);
    e->a_block = NULL;
    e->la = NULL;
    memset(&e->a, 0, sizeof e->a);
    e->a_valid = 0;
}

pulse_status enc_alloc_acts(pulse_encoder *e, int MB, int T) {
    enc_free_acts(e);
    size_table t;
    train_sizes(e, &e->a, &t, MB, T);
    e->la = pulse_calloc((size_t)e->L, sizeof *e->la);
    e->a_block = e->la ? alloc_and_point(&t, NULL) : NULL;
    if (!e->a_block) {
        enc_free_acts(e);
        return pulse_set_error(PULSE_ERR_NOMEM, "encoder training: out of memory for %d x %d tokens", MB, T);
    }
    /* layer l's views: slice l of the (L, ...) tensors */
    const size_t R = (size_t)MB * T, C = (size_t)e->C, FF = (size_t)e->FF, ATT = (size_t)MB * e->NH * T * T;
    const enc_acts *a = &e->a;
    for (int l = 0; l < e->L; l++) {
        const size_t rc = (size_t)l * R * C, r = (size_t)l * R, rf = (size_t)l * R * FF;
        e->la[l] = (layer_a){a->q + rc,    a->k + rc,    a->v + rc,    a->att + (size_t)l * ATT,
                             a->atty + rc, a->res1 + rc, a->x1 + rc,   a->mean1 + r,
                             a->rstd1 + r, a->h + rf,    a->g + rf,    a->res2 + rc,
                             a->x2 + rc,   a->mean2 + r, a->rstd2 + r, a->mo + rc,
                             a->mf + rc};
    }
    return PULSE_OK;
}

void enc_drop_packs(pulse_encoder *e) {
    if (e->pk32) {
        for (int i = 0; i < 4 * e->L; i++) pulse_f32_weight_free(e->pk32[i]);
        free(e->pk32);
        e->pk32 = NULL;
    }
    if (!e->pk) return;
    for (int i = 0; i < 4 * e->L; i++) pulse_bf16_weight_free(e->pk[i]);
    free(e->pk);
    e->pk = NULL;
}

/* the packed weights of fp32 inference (none without the AVX-512 kernel, or out of memory: then the OpenBLAS
 * path) */
static void ensure_packs32(pulse_encoder *e) {
    if (e->pk32) return;
    pulse_f32_weight **pk = calloc((size_t)4 * e->L, sizeof *pk);
    if (!pk) return;
    const int C = e->C, FF = e->FF;
    int ok = 1;
    for (int l = 0; l < e->L && ok; l++) {
        const layer_w *w = &e->lw[l];
        pk[4 * l + 0] = pulse_f32_weight_pack(w->qw, 3 * C, C);
        pk[4 * l + 1] = pulse_f32_weight_pack(w->ow, C, C);
        pk[4 * l + 2] = pulse_f32_weight_pack(w->f1w, FF, C);
        pk[4 * l + 3] = pulse_f32_weight_pack(w->f2w, C, FF);
        for (int i = 0; i < 4; i++) ok &= pk[4 * l + i] != NULL;
    }
    if (!ok) {
        for (int i = 0; i < 4 * e->L; i++) pulse_f32_weight_free(pk[i]);
        free(pk);
        return;
    }
    e->pk32 = pk;
}

/* the packed weights of bf16 inference (nothing when the bf16 kernel is not used) */
static void ensure_packs(pulse_encoder *e) {
    if (e->pk || !pulse_bf16_supported()) return;
    e->pk = calloc((size_t)4 * e->L, sizeof *e->pk);
    if (!e->pk) return; /* the products convert their weights per call */
    const int C = e->C, FF = e->FF;
    for (int l = 0; l < e->L; l++) {
        const layer_w *w = &e->lw[l];
        e->pk[4 * l + 0] = pulse_bf16_weight_pack(w->qw, 3 * C, C);
        e->pk[4 * l + 1] = pulse_bf16_weight_pack(w->ow, C, C);
        e->pk[4 * l + 2] = pulse_bf16_weight_pack(w->f1w, FF, C);
        e->pk[4 * l + 3] = pulse_bf16_weight_pack(w->f2w, C, FF);
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* tokenizer */

pulse_status pulse_encoder_tokenize(const pulse_encoder *e, const char *text, int *ids, int max_ids,
                                    int *n_ids) {
    if (!text || !ids || max_ids < 2)
        return pulse_set_error(PULSE_ERR_ARG, "encoder tokenize: need text and room for >= 2 ids");
    int cap = max_ids < e->p.max_len ? max_ids : e->p.max_len;
    int n = pulse_wordpiece_encode(&e->tok, text, ids, cap);
    if (n < 0) return pulse_set_error(PULSE_ERR_NOMEM, "encoder tokenize: out of memory");
    *n_ids = n;
    return PULSE_OK;
}

/* the threads of one of this encoder's parallel regions: its params', else the caller's setting */
static int enc_threads(const pulse_encoder *e) {
    return e->p.threads > 0 ? e->p.threads : omp_get_max_threads();
}

pulse_status pulse_encoder_tokenize_batch(const pulse_encoder *e, const char *const *texts, int n, int *ids,
                                          int *lens) {
    const int T = e->p.max_len;
    int bad = -1;
#pragma omp parallel for schedule(dynamic, 16) num_threads(enc_threads(e)) if (n > 32)
    for (int i = 0; i < n; i++) {
        int *row = ids + (size_t)i * T;
        int k = texts[i] ? pulse_wordpiece_encode(&e->tok, texts[i], row, T) : -1;
        if (k < 0) {
#pragma omp critical
            bad = i;
            k = 0;
        }
        lens[i] = k;
        for (int t = k; t < T; t++) row[t] = e->tok.pad_id;
    }
    if (bad >= 0)
        return pulse_set_error(PULSE_ERR_ARG, "encoder tokenize: text %d is NULL or out of memory", bad);
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* forward */

static void act_forward(const pulse_encoder *e, float *out, const float *inp, size_t n) {
    if (e->act == ACT_GELU)
        pulse_gelu_forward(out, inp, n);
    else if (e->act == ACT_GELU_TANH)
        pulse_gelu_tanh_forward(out, inp, n);
    else
        pulse_relu_forward(out, inp, n);
}

static void act_backward(const pulse_encoder *e, float *dinp, const float *inp, const float *dout, size_t n) {
    if (e->act == ACT_GELU)
        pulse_gelu_backward(dinp, inp, dout, n);
    else if (e->act == ACT_GELU_TANH)
        pulse_gelu_tanh_backward(dinp, inp, dout, n);
    else
        pulse_relu_backward(dinp, inp, dout, n);
}

/* the linear layer in the chosen precision */
static void mm_forward(int bf16, float *out, const float *inp, const float *w, const float *b, int N, int C,
                       int OC) {
    if (bf16)
        pulse_matmul_forward_bf16(out, inp, w, b, N, C, OC);
    else
        pulse_matmul_forward(out, inp, w, b, N, C, OC);
}

static void mm_backward(int bf16, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC) {
    if (bf16)
        pulse_matmul_backward_bf16(dinp, dw, db, dout, inp, w, N, C, OC);
    else
        pulse_matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

/* embeddings: out (N, C) = wte[ids] + wpe[pos] (+ wtt[0]) */
static void embed_sum(const pulse_encoder *e, float *out, const int *ids, const int *pos, int N) {
    const int C = e->C;
    pulse_embedding_forward(out, ids, e->wte, N, C, e->V);
#pragma omp parallel for schedule(static) if (N > 64)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *p = e->wpe + (size_t)pos[n] * C;
        if (e->wtt)
            for (int c = 0; c < C; c++) o[c] += p[c] + e->wtt[c];
        else
            for (int c = 0; c < C; c++) o[c] += p[c];
    }
}

static uint64_t enc_mix64(uint64_t z) { /* splitmix64's finaliser */
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Training dropout at one site (0: embeddings, 1 + 2 l / 2 + 2 l: layer l's attention / FFN output) of a
 * (B, T, C) activation. Without example ids: the kernel's stream for the whole block, keyed from the
 * encoder's RNG. With them (pulse_encoder_set_example_ids): element (b, t, c) kept by a hash of (seed, step,
 * site, ids[b], t, c) alone, the kernel's rule (keep iff the top 32 bits >= p 2^32), mask kept for the
 * backward. */
static void enc_dropout(pulse_encoder *e, float *out, uint8_t *mask, const float *inp, int B, int T, float p,
                        int site) {
    const int C = e->C;
    if (e->ex_n <= 0) {
        pulse_dropout_forward(out, mask, inp, (size_t)B * T * C, p, &e->rng);
        return;
    }
    const uint64_t key = enc_mix64(e->tp.seed ^ enc_mix64(((uint64_t)e->step << 8) + (uint64_t)site + 1));
    const uint64_t thr = (uint64_t)((double)p * 4294967296.0);
    const float scale = 1.0f / (1.0f - p);
    const uint64_t P = (uint64_t)e->P;
#pragma omp parallel for schedule(static) if ((long)B * T * C > 65536)
    for (int r = 0; r < B * T; r++) {
        const int b = r / T, t = r % T;
        const uint64_t base = ((uint64_t)e->ex_ids[b] * P + (uint64_t)t) * (uint64_t)C;
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t)r * C + c;
            const uint64_t h = enc_mix64(key + (base + (uint64_t)c + 1) * 0x9e3779b97f4a7c15ULL);
            const uint8_t keep = (h >> 32) >= thr;
            mask[i] = keep;
            out[i] = keep ? inp[i] * scale : 0.0f;
        }
    }
}

/* one block; x (N, C) input, a's buffers receive the activations (a->x2 = output). p = dropout (0 = off).
 * bf16: the linear layers in bf16; att_bf16 (inference, bf16): the attention products too, and the FFN in one
 * pass (a->h, a->g not kept); pk: the layer's 4 packed weights (qkv, o, ffn1, ffn2) or NULL. */
static void layer_forward(pulse_encoder *e, const layer_w *w, const layer_a *a, const float *x,
                          float *o_scratch, float *qkv, const uint8_t *kmask, int B, int T, float p, int bf16,
                          int att_bf16, pulse_bf16_weight *const *pk) {
    const int C = e->C, FF = e->FF, N = B * T;
    const size_t NC = (size_t)N * C;
    /* qkv (N, 3C) = x @ [Wq; Wk; Wv]^T + [bq; bk; bv], split into q, k, v (N, C) (bf16: by the product's
     * own stores) */
    if (bf16) {
        float *const qkv_out[3] = {a->q, a->k, a->v};
        pulse_matmul_forward_split_bf16(qkv_out, 3, x, w->qw, w->qb, N, C, 3 * C, pk ? pk[0] : NULL);
    } else {
        mm_forward(0, qkv, x, w->qw, w->qb, N, C, 3 * C);
#pragma omp parallel for schedule(static) if (N > 256)
        for (int n = 0; n < N; n++) {
            const float *r = qkv + (size_t)n * 3 * C;
            memcpy(a->q + (size_t)n * C, r, sizeof(float) * (size_t)C);
            memcpy(a->k + (size_t)n * C, r + C, sizeof(float) * (size_t)C);
            memcpy(a->v + (size_t)n * C, r + 2 * C, sizeof(float) * (size_t)C);
        }
    }
    if (att_bf16) /* inference: the probabilities are not kept */
        pulse_attention_forward_bf16(a->atty, NULL, a->q, a->k, a->v, kmask, B, T, C, e->NH, 0);
    else
        pulse_attention_forward(a->atty, a->att, a->q, a->k, a->v, kmask, B, T, C, e->NH, 0);
    if (p > 0.0f) {
        mm_forward(bf16, o_scratch, a->atty, w->ow, w->ob, N, C, C);
        enc_dropout(e, a->res1, a->mo, o_scratch, B, T, p, 1 + 2 * (int)(w - e->lw));
        pulse_residual_forward(a->res1, a->res1, x, NC);
    } else if (bf16) { /* residual added by the product's stores */
        pulse_matmul_forward_residual_bf16(a->res1, a->atty, w->ow, w->ob, x, N, C, C, pk ? pk[1] : NULL);
    } else {
        mm_forward(0, a->res1, a->atty, w->ow, w->ob, N, C, C);
        pulse_residual_forward(a->res1, a->res1, x, NC);
    }
    pulse_layernorm_forward(a->x1, a->mean1, a->rstd1, a->res1, w->ln1w, w->ln1b, N, C, e->eps);
    if (att_bf16 && e->act == ACT_GELU && p <= 0.0f) {
        /* inference: the whole FFN per block of rows, its hidden activations kept in bf16 per thread (a->h
         * only as the fallback's scratch) */
        pulse_ffn_forward_bf16(a->res2, a->h, a->x1, w->f1w, w->f1b, w->f2w, w->f2b, a->x1, N, C, FF,
                               pk ? pk[2] : NULL, pk ? pk[3] : NULL);
        pulse_layernorm_forward(a->x2, a->mean2, a->rstd2, a->res2, w->ln2w, w->ln2b, N, C, e->eps);
        return;
    }
    if (bf16 && e->act == ACT_GELU) { /* GELU by the product's stores (h kept when it has its own buffer) */
        pulse_matmul_forward_gelu_bf16(a->h != a->g ? a->h : NULL, a->g, a->x1, w->f1w, w->f1b, N, C, FF,
                                       pk ? pk[2] : NULL);
    } else {
        mm_forward(bf16, a->h, a->x1, w->f1w, w->f1b, N, C, FF);
        act_forward(e, a->g, a->h, (size_t)N * FF);
    }
    if (p > 0.0f) {
        mm_forward(bf16, o_scratch, a->g, w->f2w, w->f2b, N, FF, C);
        enc_dropout(e, a->res2, a->mf, o_scratch, B, T, p, 2 + 2 * (int)(w - e->lw));
        pulse_residual_forward(a->res2, a->res2, a->x1, NC);
    } else if (bf16) {
        pulse_matmul_forward_residual_bf16(a->res2, a->g, w->f2w, w->f2b, a->x1, N, FF, C, pk ? pk[3] : NULL);
    } else {
        mm_forward(0, a->res2, a->g, w->f2w, w->f2b, N, FF, C);
        pulse_residual_forward(a->res2, a->res2, a->x1, NC);
    }
    pulse_layernorm_forward(a->x2, a->mean2, a->rstd2, a->res2, w->ln2w, w->ln2b, N, C, e->eps);
}

/* backward through y = LN(skip + dropout(branch)) of one block, (N, C): the LN's gradient goes to dlnw, dlnb
 * and, as d(skip + ...), into d_skip (the residual path, overwritten); returns d(branch output) (through the
 * dropout mask when p > 0), in the activations' scratch (d_res or d_o) */
static const float *post_ln_backward(pulse_encoder *e, float *d_skip, float *dlnw, float *dlnb,
                                     const float *dy, const float *res, const float *lnw, const float *mean,
                                     const float *rstd, const uint8_t *mask, float p) {
    const size_t NC = (size_t)e->a_B * e->a_T * e->C;
    memset(e->a.d_res, 0, sizeof(float) * NC);
    pulse_layernorm_backward(e->a.d_res, dlnw, dlnb, dy, res, lnw, mean, rstd, e->a_B * e->a_T, e->C);
    memcpy(d_skip, e->a.d_res, sizeof(float) * NC);
    if (!(p > 0.0f)) return e->a.d_res;
    memset(e->a.d_o, 0, sizeof(float) * NC);
    pulse_dropout_backward(e->a.d_o, e->a.d_res, mask, NC, p);
    return e->a.d_o;
}

/* gradient of one block: dx (N, C) holds d(x2) on entry and d(x) (the block input) on exit */
static void layer_backward(pulse_encoder *e, int l, const float *x, float p) {
    const layer_w *w = &e->lw[l], *g = &e->lg[l];
    const layer_a *a = &e->la[l];
    const int B = e->a_B, T = e->a_T, C = e->C, FF = e->FF, N = B * T;
    const size_t NC = (size_t)N * C, NF = (size_t)N * FF;
    const int bf16 = e->tp.precision == PULSE_PREC_BF16;
    /* x2 = LN2(x1 + dropout(FFN(x1))) */
    const float *dff = post_ln_backward(e, e->a.d_x1, g->ln2w, g->ln2b, e->a.d_x, a->res2, w->ln2w, a->mean2,
                                        a->rstd2, a->mf, p);
    if (bf16 && e->act == ACT_GELU) { /* d_h = (dff W2) * GELU'(h) by the product's stores */
        mm_backward(bf16, NULL, g->f2w, g->f2b, dff, a->g, w->f2w, N, FF, C);
        pulse_matmul_backward_gelu_bf16(e->a.d_h, dff, w->f2w, a->h, N, FF, C);
    } else {
        memset(e->a.d_g, 0, sizeof(float) * NF);
        mm_backward(bf16, e->a.d_g, g->f2w, g->f2b, dff, a->g, w->f2w, N, FF, C);
        memset(e->a.d_h, 0, sizeof(float) * NF);
        act_backward(e, e->a.d_h, a->h, e->a.d_g, NF);
    }
    mm_backward(bf16, e->a.d_x1, g->f1w, g->f1b, e->a.d_h, a->x1, w->f1w, N, C, FF);
    /* x1 = LN1(x + dropout(attention(x) Wo)) */
    const float *dop = post_ln_backward(e, e->a.d_x, g->ln1w, g->ln1b, e->a.d_x1, a->res1, w->ln1w, a->mean1,
                                        a->rstd1, a->mo, p);
    memset(e->a.d_atty, 0, sizeof(float) * NC);
    mm_backward(bf16, e->a.d_atty, g->ow, g->ob, dop, a->atty, w->ow, N, C, C);
    memset(e->a.d_q, 0, sizeof(float) * NC);
    memset(e->a.d_k, 0, sizeof(float) * NC);
    memset(e->a.d_v, 0, sizeof(float) * NC);
    pulse_attention_backward(e->a.d_q, e->a.d_k, e->a.d_v, e->a.d_att, e->a.d_atty, a->att, a->q, a->k, a->v,
                             B, T, C, e->NH);
    /* pack dq, dk, dv into d(qkv) (N, 3C): one product for dx and one for d[Wq; Wk; Wv] */
    float *dqkv = e->a.qkv;
#pragma omp parallel for schedule(static) if (N > 256)
    for (int n = 0; n < N; n++) {
        float *r = dqkv + (size_t)n * 3 * C;
        memcpy(r, e->a.d_q + (size_t)n * C, sizeof(float) * (size_t)C);
        memcpy(r + C, e->a.d_k + (size_t)n * C, sizeof(float) * (size_t)C);
        memcpy(r + 2 * C, e->a.d_v + (size_t)n * C, sizeof(float) * (size_t)C);
    }
    /* the lowest trainable layer above frozen ones: nothing below needs d(x), skip that product */
    const int need_dx = !(e->tp.freeze_layers > 0 && l == e->tp.freeze_layers);
    mm_backward(bf16, need_dx ? e->a.d_x : NULL, g->qw, g->qb, dqkv, x, w->qw, N, C, 3 * C);
}

/* pooled (B, C) from x (B, T, C); then the head and normalisation into out (B, D) */
static void pool_head(const pulse_encoder *e, const float *x, const int *lens, int B, int T, float *pooled,
                      float *proj, float *norms, float *out) {
    const int C = e->C, D = pulse_encoder_dim(e);
    for (int b = 0; b < B; b++) {
        float *pb = pooled + (size_t)b * C;
        const float *xb = x + (size_t)b * T * C;
        if (e->pooling == PULSE_POOL_CLS) {
            memcpy(pb, xb, sizeof(float) * (size_t)C);
        } else {
            memset(pb, 0, sizeof(float) * (size_t)C);
            for (int t = 0; t < lens[b]; t++)
                for (int c = 0; c < C; c++) pb[c] += xb[(size_t)t * C + c];
            float inv = 1.0f / (float)(lens[b] > 0 ? lens[b] : 1);
            for (int c = 0; c < C; c++) pb[c] *= inv;
        }
    }
    const float *y = pooled;
    if (e->proj_dim > 0) {
        pulse_matmul_forward(proj, pooled, e->pw, e->pb, B, C, D);
        y = proj;
    }
    if (e->p.normalize)
        pulse_l2norm_forward(out, norms, y, B, D, 1e-12f);
    else
        memcpy(out, y, sizeof(float) * (size_t)B * D);
}

/* one block of fp32 inference on the packed weights pk (qkv, o, ffn1, ffn2): four fused products, q / k / v
 * split by the QKV product's stores, each residual + LayerNorm and the GELU in the products' epilogues */
static void layer_forward_f32(const pulse_encoder *e, const layer_w *w, const layer_a *a, const float *x,
                              const uint8_t *kmask, int B, int T, pulse_f32_weight *const *pk) {
    const int C = e->C, FF = e->FF, N = B * T;
    float *const qkv[3] = {a->q, a->k, a->v};
    pulse_linear_fused(x, w->qw, pk[0], N, C, 3 * C,
                       &(pulse_linear_epilogue){.bias = w->qb, .segs = qkv, .nseg = 3});
    pulse_attention_forward(a->atty, a->att, a->q, a->k, a->v, kmask, B, T, C, e->NH, 0);
    /* x1 = LN1(x + atty Wo^T + bo) */
    pulse_linear_fused(a->atty, w->ow, pk[1], N, C, C,
                       &(pulse_linear_epilogue){.bias = w->ob,
                                                .res = x,
                                                .out = a->res1,
                                                .ln_out = a->x1,
                                                .ln_w = w->ln1w,
                                                .ln_b = w->ln1b,
                                                .ln_eps = e->eps});
    /* g = act(x1 W1^T + b1) */
    if (e->act == ACT_GELU) {
        pulse_linear_fused(a->x1, w->f1w, pk[2], N, C, FF,
                           &(pulse_linear_epilogue){.bias = w->f1b, .gelu = a->g});
    } else {
        pulse_linear_fused(a->x1, w->f1w, pk[2], N, C, FF,
                           &(pulse_linear_epilogue){.bias = w->f1b, .out = a->h});
        act_forward(e, a->g, a->h, (size_t)N * FF);
    }
    /* x2 = LN2(x1 + g W2^T + b2) */
    pulse_linear_fused(a->g, w->f2w, pk[3], N, FF, C,
                       &(pulse_linear_epilogue){.bias = w->f2b,
                                                .res = a->x1,
                                                .out = a->res2,
                                                .ln_out = a->x2,
                                                .ln_w = w->ln2w,
                                                .ln_b = w->ln2b,
                                                .ln_eps = e->eps});
}

/* the encoder on B texts of T tokens, ids (B, T) with lens, out (B, D); its tensors are e->s's from text b0
 * on (rows from b0 * T0, probabilities from b0 * NH * T0 * T0, T0 >= T the batch's length): the blocked path
 * gives each block of texts its own slice. The last hidden state stays in the slice of s.x. */
static void infer_rows(pulse_encoder *e, const int *ids, const int *lens, int B, int T, int b0, int T0,
                       float *out, int bf16) {
    const int C = e->C, N = B * T, D = pulse_encoder_dim(e);
    const size_t row0 = (size_t)b0 * T0;
    enc_scratch s = e->s;
    float **rc[] = {&s.x, &s.x1, &s.t, &s.q, &s.k, &s.v, &s.y};
    for (size_t k = 0; k < sizeof rc / sizeof rc[0]; k++) *rc[k] += row0 * C;
    s.h += row0 * e->FF;
    if (!bf16) { /* bf16 inference has neither (1 float each) */
        s.qkv += row0 * 3 * C;
        s.att += (size_t)b0 * e->NH * T0 * T0;
    }
    s.mean += row0;
    s.rstd += row0;
    s.pos += row0;
    s.kmask += row0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            s.pos[b * T + t] = t;
            s.kmask[b * T + t] = t < lens[b];
        }
    embed_sum(e, s.t, ids, s.pos, N);
    pulse_layernorm_forward(s.x, s.mean, s.rstd, s.t, e->elnw, e->elnb, N, C, e->eps);
    layer_a a = {s.q, s.k, s.v, s.att, s.y,    s.t,    s.x1, s.mean, s.rstd,
                 s.h, s.h, s.t, s.x,   s.mean, s.rstd, NULL, NULL};
    for (int l = 0; l < e->L; l++) {
        if (!bf16 && e->pk32)
            layer_forward_f32(e, &e->lw[l], &a, s.x, s.kmask, B, T, e->pk32 + 4 * l);
        else
            layer_forward(e, &e->lw[l], &a, s.x, NULL, s.qkv, s.kmask, B, T, 0.0f, bf16, bf16,
                          bf16 && e->pk ? e->pk + 4 * l : NULL);
    }
    pool_head(e, s.x, lens, B, T, s.pool + (size_t)b0 * C, s.proj + (size_t)b0 * D, s.norm + b0, out);
}

/* texts per block of the blocked fp32 path: about 256 rows (a block's activations stay in the core's L2
 * between its products), fewer when the batch would give under two blocks per thread */
static int infer_block_texts(int B, int T, int nth) {
    int sb = T >= 256 ? 1 : (256 + T - 1) / T;
    while (sb > 1 && (B + sb - 1) / sb < 2 * nth) sb--;
    return sb;
}

/* inference on a padded batch: ids (B, T) with lens; out (B, D); last hidden state stays in s_x (text b at
 * row b * T when B == 1 or on the unblocked path)
 * fp32: the texts go in blocks of about 256 rows, each block through the whole encoder on one thread
 * (single-threaded products, its activations in that core's cache, its own length: the longest of its
 * texts); the unblocked path (bf16, or fewer than two blocks per thread) splits each product over the
 * threads instead. */
static pulse_status forward_infer(pulse_encoder *e, const int *ids, const int *lens, int B, int T,
                                  float *out) {
    pulse_status rc = ensure_scratch(e, B, T);
    if (rc != PULSE_OK) return rc;
    const int bf16 = infer_bf16(e);
    if (bf16)
        ensure_packs(e);
    else
        ensure_packs32(e);
    const int nth = omp_in_parallel() ? 1 : enc_threads(e), sb = infer_block_texts(B, T, nth);
    const int nblk = (B + sb - 1) / sb, D = pulse_encoder_dim(e);
    if (bf16 || (nth > 1 && nblk < 2 * nth)) {
        infer_rows(e, ids, lens, B, T, 0, T, out, bf16);
        return PULSE_OK;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int k = 0; k < nblk; k++) {
        const int b0 = k * sb, nb = B - b0 < sb ? B - b0 : sb;
        int Tb = 1;
        for (int b = b0; b < b0 + nb; b++) Tb = lens[b] > Tb ? lens[b] : Tb;
        int *bid = e->s.ids + (size_t)b0 * T; /* the block's ids at its own length Tb */
        for (int b = 0; b < nb; b++)
            memcpy(bid + (size_t)b * Tb, ids + (size_t)(b0 + b) * T, sizeof(int) * (size_t)Tb);
        infer_rows(e, bid, lens + b0, nb, Tb, b0, T, out + (size_t)b0 * D, 0);
    }
    return PULSE_OK;
}

static pulse_status check_ids(const pulse_encoder *e, const int *ids, const int *lens, int n, int stride) {
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > stride || lens[i] > e->p.max_len)
            return pulse_set_error(PULSE_ERR_RANGE, "encoder: text %d has %d tokens, expected 1..%d", i,
                                   lens[i], stride < e->p.max_len ? stride : e->p.max_len);
        for (int t = 0; t < lens[i]; t++)
            if (ids[(size_t)i * stride + t] < 0 || ids[(size_t)i * stride + t] >= e->V)
                return pulse_set_error(PULSE_ERR_RANGE, "encoder: text %d token %d: id %d outside [0, %d)", i,
                                       t, ids[(size_t)i * stride + t], e->V);
    }
    return PULSE_OK;
}

typedef struct {
    int len, idx;
} len_idx;
static int cmp_len_desc(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return y->len - x->len;
    return x->idx - y->idx;
}

static pulse_status encode_ids_run(pulse_encoder *e, const int *ids, const int *lens, int n, int stride,
                                   float *out) {
    if (n <= 0) return PULSE_OK;
    pulse_status rc = check_ids(e, ids, lens, n, stride);
    if (rc != PULSE_OK) return rc;
    const int D = pulse_encoder_dim(e), BS = e->p.batch_size;
    len_idx *ord = pulse_malloc(sizeof *ord * (size_t)n);
    int *bids = pulse_malloc(sizeof(int) * (size_t)(BS < n ? BS : n) * (size_t)e->p.max_len);
    int *blens = pulse_malloc(sizeof(int) * (size_t)BS);
    float *bout = pulse_malloc(sizeof(float) * (size_t)BS * D);
    if (!ord || !bids || !blens || !bout) {
        free(ord);
        free(bids);
        free(blens);
        free(bout);
        return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) ord[i] = (len_idx){lens[i], i};
    qsort(ord, (size_t)n, sizeof *ord, cmp_len_desc);
    for (int s = 0; s < n && rc == PULSE_OK; s += BS) {
        int B = n - s < BS ? n - s : BS, T = ord[s].len;
        for (int b = 0; b < B; b++) {
            const int *src = ids + (size_t)ord[s + b].idx * stride;
            int L = ord[s + b].len;
            blens[b] = L;
            for (int t = 0; t < T; t++) bids[(size_t)b * T + t] = t < L ? src[t] : e->tok.pad_id;
        }
        rc = forward_infer(e, bids, blens, B, T, bout);
        for (int b = 0; b < B && rc == PULSE_OK; b++)
            memcpy(out + (size_t)ord[s + b].idx * D, bout + (size_t)b * D, sizeof(float) * (size_t)D);
    }
    free(ord);
    free(bids);
    free(blens);
    free(bout);
    return rc;
}

pulse_status pulse_encoder_encode_ids(pulse_encoder *e, const int *ids, const int *lens, int n, int stride,
                                      float *out) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = encode_ids_run(e, ids, lens, n, stride, out);
    pulse_threads_leave(thr);
    return rc;
}

static pulse_status encode_run(pulse_encoder *e, const char *const *texts, int n, float *out) {
    if (n <= 0) return PULSE_OK;
    if (!texts || !out) return pulse_set_error(PULSE_ERR_ARG, "encoder encode: NULL texts or output");
    int *ids = pulse_malloc(sizeof(int) * (size_t)n * (size_t)e->p.max_len);
    int *lens = pulse_malloc(sizeof(int) * (size_t)n);
    pulse_status rc =
        (!ids || !lens) ? PULSE_ERR_NOMEM : pulse_encoder_tokenize_batch(e, texts, n, ids, lens);
    if (rc == PULSE_OK) rc = pulse_encoder_encode_ids(e, ids, lens, n, e->p.max_len, out);
    free(ids);
    free(lens);
    return rc;
}

pulse_status pulse_encoder_encode(pulse_encoder *e, const char *const *texts, int n, float *out) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = encode_run(e, texts, n, out);
    pulse_threads_leave(thr);
    return rc;
}

static pulse_status hidden_states_run(pulse_encoder *e, const char *text, float *hidden, int max_tokens,
                                      int *n_tokens) {
    int *ids = pulse_malloc(sizeof(int) * (size_t)e->p.max_len);
    if (!ids) return PULSE_ERR_NOMEM;
    int n = 0;
    pulse_status rc = pulse_encoder_tokenize(e, text, ids, e->p.max_len, &n);
    float *out = rc == PULSE_OK ? pulse_malloc(sizeof(float) * (size_t)pulse_encoder_dim(e)) : NULL;
    if (rc == PULSE_OK && !out) rc = PULSE_ERR_NOMEM;
    if (rc == PULSE_OK) rc = forward_infer(e, ids, &n, 1, n, out);
    if (rc == PULSE_OK) {
        int k = n < max_tokens ? n : max_tokens;
        memcpy(hidden, e->s.x, sizeof(float) * (size_t)k * e->C);
        *n_tokens = n;
    }
    free(out);
    free(ids);
    return rc;
}

pulse_status pulse_encoder_hidden_states(pulse_encoder *e, const char *text, float *hidden, int max_tokens,
                                         int *n_tokens) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = hidden_states_run(e, text, hidden, max_tokens, n_tokens);
    pulse_threads_leave(thr);
    return rc;
}

static pulse_status forward_train_ids_run(pulse_encoder *e, const int *ids, const int *lens, int n,
                                          int stride, float *out) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: forward_train before train_begin");
    if (n < 1 || n > e->tp.max_batch)
        return pulse_set_error(PULSE_ERR_RANGE, "encoder: forward_train batch %d outside 1..%d (max_batch)",
                               n, e->tp.max_batch);
    pulse_status rc = check_ids(e, ids, lens, n, stride);
    if (rc != PULSE_OK) return rc;
    if (e->ex_n > 0 && n != e->ex_n)
        return pulse_set_error(
            PULSE_ERR_ARG, "encoder: forward_train of %d rows after set_example_ids of %d; expected as many",
            n, e->ex_n);
    int T = 0;
    for (int b = 0; b < n; b++) T = lens[b] > T ? lens[b] : T;
    const int B = n, C = e->C, N = B * T;
    const float p = enc_train_dropout(e);
    for (int b = 0; b < B; b++) {
        e->a.lens[b] = lens[b];
        for (int t = 0; t < T; t++) {
            e->a.ids[b * T + t] = t < lens[b] ? ids[(size_t)b * stride + t] : e->tok.pad_id;
            e->a.pos[b * T + t] = t;
            e->a.kmask[b * T + t] = t < lens[b];
        }
    }
    embed_sum(e, e->a.e, e->a.ids, e->a.pos, N);
    pulse_layernorm_forward(e->a.eln, e->a.emean, e->a.erstd, e->a.e, e->elnw, e->elnb, N, C, e->eps);
    if (p > 0.0f)
        enc_dropout(e, e->a.x0, e->a.emask, e->a.eln, B, T, p, 0);
    else
        memcpy(e->a.x0, e->a.eln, sizeof(float) * (size_t)N * C);
    const float *x = e->a.x0;
    for (int l = 0; l < e->L; l++) {
        layer_forward(e, &e->lw[l], &e->la[l], x, e->a.o, e->a.qkv, e->a.kmask, B, T, p,
                      e->tp.precision == PULSE_PREC_BF16, 0, NULL);
        x = e->la[l].x2;
    }
    pool_head(e, x, e->a.lens, B, T, e->a.pool, e->a.proj, e->a.norm, e->a.out);
    memcpy(out, e->a.out, sizeof(float) * (size_t)B * pulse_encoder_dim(e));
    e->a_B = B;
    e->a_T = T;
    e->a_valid = 1;
    return PULSE_OK;
}

pulse_status pulse_encoder_forward_train_ids(pulse_encoder *e, const int *ids, const int *lens, int n,
                                             int stride, float *out) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = forward_train_ids_run(e, ids, lens, n, stride, out);
    pulse_threads_leave(thr);
    return rc;
}

static pulse_status forward_train_run(pulse_encoder *e, const char *const *texts, int n, float *out) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: forward_train before train_begin");
    if (n < 1 || n > e->tp.max_batch)
        return pulse_set_error(PULSE_ERR_RANGE, "encoder: forward_train batch %d outside 1..%d (max_batch)",
                               n, e->tp.max_batch);
    int *ids = pulse_malloc(sizeof(int) * (size_t)n * (size_t)e->p.max_len);
    int *lens = pulse_malloc(sizeof(int) * (size_t)n);
    pulse_status rc =
        (!ids || !lens) ? PULSE_ERR_NOMEM : pulse_encoder_tokenize_batch(e, texts, n, ids, lens);
    if (rc == PULSE_OK) rc = pulse_encoder_forward_train_ids(e, ids, lens, n, e->p.max_len, out);
    free(ids);
    free(lens);
    return rc;
}

pulse_status pulse_encoder_forward_train(pulse_encoder *e, const char *const *texts, int n, float *out) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = forward_train_run(e, texts, n, out);
    pulse_threads_leave(thr);
    return rc;
}

static pulse_status backward_run(pulse_encoder *e, const float *dout) {
    if (!e->training || !e->a_valid)
        return pulse_set_error(PULSE_ERR_STATE, "encoder: backward needs a forward_train first");
    const int B = e->a_B, T = e->a_T, C = e->C, D = pulse_encoder_dim(e), N = B * T;
    const size_t NC = (size_t)N * C;
    const float p = enc_train_dropout(e);
    /* head: normalisation, projection */
    const float *dy = dout;
    if (e->p.normalize) {
        memset(e->a.d_proj, 0, sizeof(float) * (size_t)B * D);
        pulse_l2norm_backward(e->a.d_proj, dout, e->a.out, e->a.norm, B, D);
        dy = e->a.d_proj;
    }
    const float *dpool = dy;
    if (e->proj_dim > 0) {
        memset(e->a.d_pool, 0, sizeof(float) * (size_t)B * C);
        pulse_matmul_backward(e->a.d_pool, e->gpw, e->gpb, dy, e->a.pool, e->pw, B, C, D);
        dpool = e->a.d_pool;
    }
    /* pooling */
    memset(e->a.d_x, 0, sizeof(float) * NC);
    for (int b = 0; b < B; b++) {
        const float *dp = dpool + (size_t)b * C;
        float *dx = e->a.d_x + (size_t)b * T * C;
        if (e->pooling == PULSE_POOL_CLS) {
            memcpy(dx, dp, sizeof(float) * (size_t)C);
        } else {
            float inv = 1.0f / (float)e->a.lens[b];
            for (int t = 0; t < e->a.lens[b]; t++)
                for (int c = 0; c < C; c++) dx[(size_t)t * C + c] = dp[c] * inv;
        }
    }
    const int fz = e->tp.freeze_layers;
    for (int l = e->L - 1; l >= fz; l--) layer_backward(e, l, l > 0 ? e->la[l - 1].x2 : e->a.x0, p);
    if (fz > 0) return PULSE_OK;
    /* embeddings: dropout, LayerNorm, tables */
    const float *dln = e->a.d_x;
    if (p > 0.0f) {
        memset(e->a.d_res, 0, sizeof(float) * NC);
        pulse_dropout_backward(e->a.d_res, e->a.d_x, e->a.emask, NC, p);
        dln = e->a.d_res;
    }
    memset(e->a.d_x1, 0, sizeof(float) * NC);
    pulse_layernorm_backward(e->a.d_x1, e->gelnw, e->gelnb, dln, e->a.e, e->elnw, e->a.emean, e->a.erstd, N,
                             C);
    pulse_embedding_backward(e->gwte, e->a.d_x1, e->a.ids, N, C, e->V);
    pulse_embedding_backward(e->gwpe, e->a.d_x1, e->a.pos, N, C, e->P);
    if (e->NTT > 0) pulse_embedding_backward(e->gwtt, e->a.d_x1, e->a.zero, N, C, e->NTT);
    return PULSE_OK;
}

pulse_status pulse_encoder_backward(pulse_encoder *e, const float *dout) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = backward_run(e, dout);
    pulse_threads_leave(thr);
    return rc;
}
