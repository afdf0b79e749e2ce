/* sasrec/model.c — owns the SASRec model: parameter layout and initialisation, activations, the forward and
 * backward passes (llm.c style: every step's shapes in a comment, kernels from pulse/kernels.h), the CE and
 * BCE loss heads, Adam, and the model file (save/load, format documented in pulse/sasrec.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"
#include "sasrec_internal.h"

#define LN_EPS 1e-8f /* pmixer's LayerNorm eps */
#define MASKED_LOGIT (-1e30f)

pulse_sasrec_params pulse_sasrec_default_params(void) {
    pulse_sasrec_params p;
    memset(&p, 0, sizeof p);
    p.dim = 64;
    p.blocks = 2;
    p.heads = 1;
    p.maxlen = 50;
    p.dropout = -1.0f;
    p.loss = PULSE_SASREC_CE;
    p.batch = 128;
    p.lr = 1e-3f;
    p.beta1 = 0.9f;
    p.beta2 = 0.98f;
    p.adam_eps = 1e-8f;
    p.epochs = 200;
    p.patience = 0;
    p.eval_every = 0;
    p.eval_users = 0;
    p.seed = 42;
    p.checkpoint = NULL;
    p.resume = 0;
    return p;
}

float pulse_sasrec_effective_dropout(const pulse_sasrec_params *p) {
    if (p->dropout >= 0) return p->dropout;
    return p->loss == PULSE_SASREC_BCE ? 0.3f
                                       : 0.2f; /* BCE: 0.3 chosen on Beauty valid NDCG@10 over 0.2/0.5 */
}

int pulse_sasrec_effective_patience(const pulse_sasrec_params *p) {
    if (p->patience > 0) return p->patience;
    return p->loss == PULSE_SASREC_BCE ? 8 : 10;
}

int pulse_sasrec_effective_eval_every(const pulse_sasrec_params *p) {
    if (p->eval_every > 0) return p->eval_every;
    return p->loss == PULSE_SASREC_BCE ? 4 : 1;
}

/* ---- parameter layout ---- */

size_t sasrec_count_params(int V, int C, int L, int T) {
    size_t c = (size_t)C;
    size_t blk = 2 * c + 4 * (c * c + c) + 2 * c + 2 * (c * c + c);
    return (size_t)V * c + (size_t)T * c + (size_t)L * blk + 2 * c;
}

void sasrec_view(float *base, int V, int C, int L, int T, sasrec_params_view *v) {
    size_t c = (size_t)C;
    float *p = base;
    v->item_emb = p;
    p += (size_t)V * c;
    v->pos_emb = p;
    p += (size_t)T * c;
    for (int l = 0; l < L; l++) {
        sasrec_block_params *b = &v->blk[l];
        b->ln1w = p, p += c;
        b->ln1b = p, p += c;
        b->wq = p, p += c * c;
        b->bq = p, p += c;
        b->wk = p, p += c * c;
        b->bk = p, p += c;
        b->wv = p, p += c * c;
        b->bv = p, p += c;
        b->wo = p, p += c * c;
        b->bo = p, p += c;
        b->ln2w = p, p += c;
        b->ln2b = p, p += c;
        b->w1 = p, p += c * c;
        b->b1 = p, p += c;
        b->w2 = p, p += c * c;
        b->b2 = p, p += c;
    }
    v->lnfw = p, p += c;
    v->lnfb = p;
}

static pulse_status check_dims(int n_items, int C, int L, int NH, int T) {
    if (n_items < 1 || n_items > 100000000)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: n_items must be in [1, 1e8], found %d", n_items);
    if (C < 1 || C > 4096)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: dim must be in [1, 4096], found %d", C);
    if (L < 1 || L > 64)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: blocks must be in [1, 64], found %d", L);
    if (NH < 1 || C % NH != 0)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: heads must divide dim (%d), found %d", C, NH);
    if (T < 1 || T > 4096)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: maxlen must be in [1, 4096], found %d", T);
    return PULSE_OK;
}

static pulse_status model_alloc(int n_items, int C, int L, int NH, int T, pulse_sasrec **out) {
    *out = NULL;
    pulse_status st = check_dims(n_items, C, L, NH, T);
    if (st) return st;
    pulse_sasrec *m = pulse_calloc(1, sizeof *m);
    if (!m) return PULSE_ERR_NOMEM;
    m->V = n_items + 1;
    m->C = C;
    m->L = L;
    m->NH = NH;
    m->T = T;
    m->n_params = sasrec_count_params(m->V, C, L, T);
    m->params = pulse_calloc(m->n_params, sizeof(float));
    m->p.blk = pulse_calloc((size_t)L, sizeof(sasrec_block_params));
    m->g.blk = pulse_calloc((size_t)L, sizeof(sasrec_block_params));
    if (!m->params || !m->p.blk || !m->g.blk) {
        pulse_sasrec_free(m);
        return PULSE_ERR_NOMEM;
    }
    sasrec_view(m->params, m->V, C, L, T, &m->p);
    pulse_rng_seed(&m->rng, 42);
    *out = m;
    return PULSE_OK;
}

static void xavier_normal(float *w, size_t n, int fan_in, int fan_out, pulse_rng *r) {
    float std = sqrtf(2.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < n; i++) w[i] = std * pulse_rng_normal(r);
}

static void uniform(float *w, size_t n, float bound, pulse_rng *r) {
    for (size_t i = 0; i < n; i++) w[i] = bound * (2.0f * pulse_rng_float(r) - 1.0f);
}

pulse_status pulse_sasrec_create(int n_items, const pulse_sasrec_params *params, pulse_sasrec **out) {
    *out = NULL;
    const pulse_sasrec_params dflt = pulse_sasrec_default_params();
    const pulse_sasrec_params *p = params ? params : &dflt;
    const float dropout = pulse_sasrec_effective_dropout(p);
    if (isnan(p->dropout) || !(dropout >= 0 && dropout < 1)) /* checked before anything is allocated */
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: dropout must be in [0, 1), found %g",
                               (double)dropout);
    if (p->loss != PULSE_SASREC_CE && p->loss != PULSE_SASREC_BCE)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: loss must be CE (0) or BCE (1), found %d",
                               (int)p->loss);
    pulse_sasrec *m;
    pulse_status st = model_alloc(n_items, p->dim, p->blocks, p->heads, p->maxlen, &m);
    if (st) return st;
    m->dropout = dropout;
    m->loss = p->loss;
    m->bf16_head = p->bf16_head;
    pulse_rng r;
    pulse_rng_seed(&r, p->seed ^ 0x5a5eca11ULL);
    int C = m->C, V = m->V, T = m->T;
    size_t cc = (size_t)C * C;
    /* pmixer: xavier_normal_ on every matrix; in_proj_weight is one (3C, C) tensor. */
    xavier_normal(m->p.item_emb, (size_t)V * C, C, V, &r);
    memset(m->p.item_emb, 0, sizeof(float) * (size_t)C); /* padding row */
    xavier_normal(m->p.pos_emb, (size_t)T * C, C, T, &r);
    float bbound = 1.0f / sqrtf((float)C); /* PyTorch Conv1d default bias init */
    for (int l = 0; l < m->L; l++) {
        sasrec_block_params *b = &m->p.blk[l];
        for (int i = 0; i < C; i++) b->ln1w[i] = b->ln2w[i] = 1.0f;
        xavier_normal(b->wq, cc, C, 3 * C, &r);
        xavier_normal(b->wk, cc, C, 3 * C, &r);
        xavier_normal(b->wv, cc, C, 3 * C, &r);
        xavier_normal(b->wo, cc, C, C, &r);
        xavier_normal(b->w1, cc, C, C, &r);
        uniform(b->b1, (size_t)C, bbound, &r);
        xavier_normal(b->w2, cc, C, C, &r);
        uniform(b->b2, (size_t)C, bbound, &r);
    }
    for (int i = 0; i < C; i++) m->p.lnfw[i] = 1.0f;
    pulse_rng_seed(&m->rng, p->seed);
    m->seed = p->seed;
    *out = m;
    return PULSE_OK;
}

/* Every activation buffer, for free/alloc: pointer to the field and its size in elements of B*T*C (big),
 * B*T (row) or B*NH*T*T (att). */
/* clang-format off */
#define ACT_FIELDS(X)                                                                                        \
    X(emb, big) X(x0, big) X(lnf, big) X(lnf_mean, row) X(lnf_rstd, row) X(scratch, big) X(attyp, big)      \
    X(dx, big) X(dx2, big) X(dlnf, big) X(d_ln2, big) X(d_h2, big) X(d_h1r, big) X(d_h1d, big) X(d_h1, big) \
    X(d_xmid, big) X(d_atty, big) X(d_q, big) X(d_k, big) X(d_v, big) X(d_Q, big) X(d_attyp, big)           \
    X(d_qp, big) X(d_kp, big) X(d_vp, big) X(d_att, att) X(ids, row) X(keymask, row) X(pids, row)           \
    X(ppos, row) X(pmap, row) X(lastrow, b) X(emb_mask, big) X(rows, row) X(tg, row) X(ng, row)             \
    X(bx, row2) X(by, row2) X(bdx, row2)
#define BLOCK_FIELDS(X)                                                                                      \
    X(ln1, big) X(ln1_mean, row) X(ln1_rstd, row) X(q, big) X(k, big) X(v, big) X(att, att) X(atty, big)    \
    X(attd, att) X(attmask, att)                                                                             \
    X(xmid, big) X(ln2, big) X(ln2_mean, row) X(ln2_rstd, row) X(h1, big) X(h1d, big) X(h1r, big)           \
    X(h2, big) X(h2d, big) X(mask1, big) X(mask2, big) X(xout, big)
/* clang-format on */

static void free_acts(pulse_sasrec *m) {
    free(m->act_block);
    m->act_block = NULL;
    free(m->acts);
    m->acts = NULL;
#define CLEAR_M(f, sz) m->f = NULL;
    ACT_FIELDS(CLEAR_M)
#undef CLEAR_M
    m->hv = m->dhv = m->logits = NULL;
    free(m->dl16);
    m->dl16 = NULL;
    m->B_cap = 0;
}

void pulse_sasrec_free(pulse_sasrec *m) {
    if (!m) return;
    free_acts(m);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->p.blk);
    free(m->g.blk);
    free(m->item_eff);
    free(m->dl16);
    free(m->hk_h);
    free(m->hk_dh);
    free(m);
}

/* adds n elements of size sz at a 64-byte boundary to *off; returns 1 on overflow */
static int take_bytes(size_t *off, size_t n, size_t sz) {
    if (n > (SIZE_MAX - 64 - *off) / sz) return 1;
    *off += (n * sz + 63) / 64 * 64;
    return 0;
}

/* Every activation in one block (llm.c's malloc_and_point_activations): the size table is ACT_FIELDS and
 * BLOCK_FIELDS (per layer) with the CE chunk buffers; each tensor starts on a 64-byte boundary. */
pulse_status sasrec_alloc_acts(pulse_sasrec *m, int B_cap) {
    if (m->B_cap >= B_cap) return PULSE_OK;
    free_acts(m);
    const size_t row = (size_t)B_cap * m->T, big = row * m->C, att = (size_t)B_cap * m->NH * m->T * m->T,
                 b = (size_t)B_cap, row2 = 2 * row;
    /* CE logits are computed in chunks of CH rows: at most ~16M floats (64 MB) of logits at once. */
    size_t ch = (size_t)(16u << 20) / (size_t)m->V;
    if (ch < 16) ch = 16;
    if (ch > row) ch = row;
    m->acts = calloc((size_t)m->L, sizeof(sasrec_block_acts));
    if (!m->acts) return pulse_set_error(PULSE_ERR_NOMEM, "sasrec: out of memory for activations");
    /* pass 1: the block's size */
    size_t bytes = 0;
    int ovf = 0;
#define SIZE_OF(f, sz) ovf |= take_bytes(&bytes, sz, sizeof(*m->acts->f));
    for (int l = 0; l < m->L; l++) {
        BLOCK_FIELDS(SIZE_OF)
    }
#undef SIZE_OF
#define SIZE_OF(f, sz) ovf |= take_bytes(&bytes, sz, sizeof(*m->f));
    ACT_FIELDS(SIZE_OF)
#undef SIZE_OF
    ovf |= take_bytes(&bytes, ch * m->C, sizeof(float));
    ovf |= take_bytes(&bytes, ch * m->C, sizeof(float));
    ovf |= take_bytes(&bytes, ch * m->V, sizeof(float));
    char *blk = ovf ? NULL : aligned_alloc(64, bytes);
    if (!blk) {
        free_acts(m);
        return pulse_set_error(PULSE_ERR_NOMEM, "sasrec: out of memory for activations (batch %d)", B_cap);
    }
    m->act_block = blk;
    /* pass 2: point every tensor into it */
    size_t o = 0;
#define POINT(f, sz)                                                                                         \
    a->f = (void *)(blk + o);                                                                                \
    take_bytes(&o, sz, sizeof(*a->f));
    for (int l = 0; l < m->L; l++) {
        sasrec_block_acts *a = &m->acts[l];
        BLOCK_FIELDS(POINT)
    }
#undef POINT
#define POINT(f, sz)                                                                                         \
    m->f = (void *)(blk + o);                                                                                \
    take_bytes(&o, sz, sizeof(*m->f));
    ACT_FIELDS(POINT)
#undef POINT
    (void)b;
    m->CH = (int)ch;
    m->hv = (void *)(blk + o);
    take_bytes(&o, ch * m->C, sizeof(float));
    m->dhv = (void *)(blk + o);
    take_bytes(&o, ch * m->C, sizeof(float));
    m->logits = (void *)(blk + o);
    m->B_cap = B_cap;
    return PULSE_OK;
}

/* ---- forward ---- */

int sasrec_load_ids(pulse_sasrec *m, int B, const int *inputs) {
    int T = m->T, first = T - 1; /* the leftmost column holding a real item in any row */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < first; t++)
            if (inputs[(size_t)b * T + t] != 0) {
                first = t;
                break;
            }
    int Tb = T - first;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Tb; t++) {
            int id = inputs[(size_t)b * T + first + t];
            m->ids[(size_t)b * Tb + t] = (id < 0 || id >= m->V) ? 0 : id;
        }
    return Tb;
}

/* Packed rows from m->ids (B, Tb): the real tokens in (b, t) order. */
static void sasrec_pack(pulse_sasrec *m, int B, int Tb) {
    int r = 0;
    for (int b = 0; b < B; b++) {
        m->lastrow[b] = -1;
        for (int t = 0; t < Tb; t++) {
            size_t i = (size_t)b * Tb + t;
            int id = m->ids[i];
            m->keymask[i] = (uint8_t)(id != 0);
            if (!id) continue;
            m->pids[r] = id;
            m->ppos[r] = m->T - Tb + t;
            m->pmap[r] = (int)i;
            m->lastrow[b] = r;
            r++;
        }
    }
    m->Np = r;
}

/* padded (B*Tb, C) <- packed (Np, C), zero at padding */
static void scatter_rows(float *padded, const float *packed, const int *pmap, int Np, size_t nrows, int C) {
    memset(padded, 0, sizeof(float) * nrows * C);
    for (int r = 0; r < Np; r++)
        memcpy(padded + (size_t)pmap[r] * C, packed + (size_t)r * C, sizeof(float) * (size_t)C);
}

/* packed (Np, C) <- padded (B*Tb, C) */
static void gather_rows(float *packed, const float *padded, const int *pmap, int Np, int C) {
    for (int r = 0; r < Np; r++)
        memcpy(packed + (size_t)r * C, padded + (size_t)pmap[r] * C, sizeof(float) * (size_t)C);
}

static uint64_t sas_mix64(uint64_t z) { /* splitmix64's finaliser */
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Dropout key of one site for this step: site 0 = embeddings; layer l: 1 + 3 l attention probabilities,
 * 2 + 3 l FFN hidden, 3 + 3 l FFN output. The step is m->adam_t (steps taken), the same on every rank. */
static uint64_t drop_key(const pulse_sasrec *m, int site) {
    return sas_mix64(sas_mix64(m->seed ^ sas_mix64((uint64_t)m->adam_t)) + (uint64_t)site);
}

/* keep iff the top 32 bits of hash(key, counter) >= p 2^32 (the kernels' rule) */
static inline uint8_t drop_keep(uint64_t key, uint64_t ctr, uint64_t thr) {
    return (sas_mix64(key + (ctr + 1) * 0x9e3779b97f4a7c15ULL) >> 32) >= thr;
}

/* out (N, C) = dropout(inp) on the packed rows: element (n, c) kept by a hash of (seed, step, site, global
 * example ex_base + b, absolute position ppos[n] in the T window, c) alone, so the mask is the same for any
 * rank count, slice, batch width Tb and thread count; mask (N, C) kept for the backward. */
static void drop_fw(pulse_sasrec *m, float *out, uint8_t *mask, const float *inp, int N, int Tb, float p,
                    int site) {
    const int C = m->C;
    if (!(p > 0)) {
        memcpy(out, inp, (size_t)N * C * sizeof(float));
        return;
    }
    const uint64_t key = drop_key(m, site), thr = (uint64_t)((double)p * 4294967296.0);
    const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((long)N * C > 65536)
    for (int n = 0; n < N; n++) {
        const uint64_t ex = (uint64_t)(m->ex_base + m->pmap[n] / Tb);
        const uint64_t base = (ex * (uint64_t)m->T + (uint64_t)m->ppos[n]) * (uint64_t)C;
        const size_t row = (size_t)n * C;
        for (int c = 0; c < C; c++) {
            const uint8_t keep = drop_keep(key, base + (uint64_t)c, thr);
            mask[row + c] = keep;
            out[row + c] = keep ? inp[row + c] * scale : 0.0f;
        }
    }
}

/* dmask (B, NH, Tb, Tb): attention-probability keep mask of layer l, element (b, h, i, j) by a hash of (seed,
 * step, site, global example ex_base + b, h, absolute query / key positions T - Tb + i, T - Tb + j). */
static void att_mask(const pulse_sasrec *m, uint8_t *dmask, int B, int Tb, float p, int l) {
    const int NH = m->NH, T = m->T, off = m->T - Tb;
    const uint64_t key = drop_key(m, 1 + 3 * l), thr = (uint64_t)((double)p * 4294967296.0);
#pragma omp parallel for schedule(static) if ((long)B * NH * Tb * Tb > 65536)
    for (int r = 0; r < B * NH * Tb; r++) { /* r = (b, h, i) */
        const int b = r / (NH * Tb), h = (r / Tb) % NH, i = r % Tb;
        const uint64_t ex = (uint64_t)(m->ex_base + b);
        const uint64_t base =
            ((ex * (uint64_t)NH + (uint64_t)h) * (uint64_t)T + (uint64_t)(off + i)) * (uint64_t)T;
        uint8_t *row = dmask + (size_t)r * Tb;
        for (int j = 0; j < Tb; j++) row[j] = drop_keep(key, base + (uint64_t)(off + j), thr);
    }
}

static void drop_bw(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    if (p > 0)
        pulse_dropout_backward(dinp, dout, mask, n, p);
    else
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
}

void sasrec_forward(pulse_sasrec *m, int B, int Tb, int training) {
    sasrec_pack(m, B, Tb);
    const int C = m->C, V = m->V, NH = m->NH, N = m->Np;
    const size_t NC = (size_t)N * C, BT = (size_t)B * Tb;
    const float p = training ? m->dropout : 0.0f;
    if (N == 0) return;
    /* emb (N, C) = E[ids] * sqrt(C) + P[pos] */
    pulse_embedding_forward(m->emb, m->pids, sasrec_items(m), N, C, V);
    const float scale = sqrtf((float)C);
    for (int n = 0; n < N; n++) {
        float *e = m->emb + (size_t)n * C;
        const float *pe = m->p.pos_emb + (size_t)m->ppos[n] * C;
        for (int c = 0; c < C; c++) e[c] = e[c] * scale + pe[c];
    }
    /* x0 (N, C) = dropout(emb)  (padding rows are absent: the timeline mask is implicit) */
    drop_fw(m, m->x0, m->emb_mask, m->emb, N, Tb, p, 0);
    const float *x = m->x0;
    for (int l = 0; l < m->L; l++) {
        sasrec_block_acts *a = &m->acts[l];
        const sasrec_block_params *w = &m->p.blk[l];
        /* Q (N, C) = LN1(x) */
        pulse_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1w, w->ln1b, N, C, LN_EPS);
        /* q = Q Wq^T + bq; k = x Wk^T + bk; v = x Wv^T + bv: (N, C), scattered to padded (B, Tb, C) */
        pulse_matmul_forward(m->scratch, a->ln1, w->wq, w->bq, N, C, C);
        scatter_rows(a->q, m->scratch, m->pmap, N, BT, C);
        pulse_matmul_forward(m->scratch, x, w->wk, w->bk, N, C, C);
        scatter_rows(a->k, m->scratch, m->pmap, N, BT, C);
        pulse_matmul_forward(m->scratch, x, w->wv, w->bv, N, C, C);
        scatter_rows(a->v, m->scratch, m->pmap, N, BT, C);
        /* attyp (B, Tb, C), att (B, NH, Tb, Tb): causal attention over real keys with dropout p on the
         * probabilities (pmixer: nn.MultiheadAttention(dropout=p)); atty (N, C) packed */
        if (p > 0) att_mask(m, a->attmask, B, Tb, p, l);
        pulse_attention_dropout_forward(m->attyp, a->att, a->attd, a->attmask, a->q, a->k, a->v, m->keymask,
                                        B, Tb, C, NH, 1, p, NULL);
        gather_rows(a->atty, m->attyp, m->pmap, N, C);
        /* xmid = Q + atty Wo^T + bo */
        pulse_matmul_forward(a->xmid, a->atty, w->wo, w->bo, N, C, C);
        for (size_t i = 0; i < NC; i++) a->xmid[i] += a->ln1[i];
        /* y = LN2(xmid); h1 = y W1^T + b1; h1r = relu(dropout(h1)); h2 = h1r W2^T + b2 */
        pulse_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->xmid, w->ln2w, w->ln2b, N, C, LN_EPS);
        pulse_matmul_forward(a->h1, a->ln2, w->w1, w->b1, N, C, C);
        drop_fw(m, a->h1d, a->mask1, a->h1, N, Tb, p, 2 + 3 * l);
        pulse_relu_forward(a->h1r, a->h1d, NC);
        pulse_matmul_forward(a->h2, a->h1r, w->w2, w->b2, N, C, C);
        drop_fw(m, a->h2d, a->mask2, a->h2, N, Tb, p, 3 + 3 * l);
        /* xout = y + dropout(h2) */
        for (size_t i = 0; i < NC; i++) a->xout[i] = a->ln2[i] + a->h2d[i];
        x = a->xout;
    }
    /* lnf (N, C) = LN_final(x) */
    pulse_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, x, m->p.lnfw, m->p.lnfb, N, C, LN_EPS);
}

/* ---- backward: m->dlnf (Np, C) holds dLoss/dlnf; gradients accumulate into m->g ---- */
static void sasrec_backward(pulse_sasrec *m, int B, int Tb, int training) {
    const int C = m->C, V = m->V, NH = m->NH, N = m->Np;
    const size_t NC = (size_t)N * C, BT = (size_t)B * Tb, NA = (size_t)B * NH * Tb * Tb;
    const float p = training ? m->dropout : 0.0f;
    const float *xL = m->L ? m->acts[m->L - 1].xout : m->x0;
    float *dx = m->dx, *dx2 = m->dx2;
    memset(dx, 0, NC * sizeof(float));
    pulse_layernorm_backward(dx, m->g.lnfw, m->g.lnfb, m->dlnf, xL, m->p.lnfw, m->lnf_mean, m->lnf_rstd, N,
                             C);
    for (int l = m->L - 1; l >= 0; l--) {
        sasrec_block_acts *a = &m->acts[l];
        const sasrec_block_params *w = &m->p.blk[l];
        sasrec_block_params *gw = &m->g.blk[l];
        const float *x_in = l ? m->acts[l - 1].xout : m->x0;
        /* dx = d xout; xout = y + dropout(h2) */
        memcpy(m->d_ln2, dx, NC * sizeof(float));
        memset(m->d_h2, 0, NC * sizeof(float));
        drop_bw(m->d_h2, dx, a->mask2, NC, p);
        memset(m->d_h1r, 0, NC * sizeof(float));
        pulse_matmul_backward(m->d_h1r, gw->w2, gw->b2, m->d_h2, a->h1r, w->w2, N, C, C);
        memset(m->d_h1d, 0, NC * sizeof(float));
        pulse_relu_backward(m->d_h1d, a->h1d, m->d_h1r, NC);
        memset(m->d_h1, 0, NC * sizeof(float));
        drop_bw(m->d_h1, m->d_h1d, a->mask1, NC, p);
        pulse_matmul_backward(m->d_ln2, gw->w1, gw->b1, m->d_h1, a->ln2, w->w1, N, C, C);
        memset(m->d_xmid, 0, NC * sizeof(float));
        pulse_layernorm_backward(m->d_xmid, gw->ln2w, gw->ln2b, m->d_ln2, a->xmid, w->ln2w, a->ln2_mean,
                                 a->ln2_rstd, N, C);
        /* xmid = Q + atty Wo^T + bo */
        memcpy(m->d_Q, m->d_xmid, NC * sizeof(float));
        memset(m->d_atty, 0, NC * sizeof(float));
        pulse_matmul_backward(m->d_atty, gw->wo, gw->bo, m->d_xmid, a->atty, w->wo, N, C, C);
        /* attention on the padded layout */
        scatter_rows(m->d_attyp, m->d_atty, m->pmap, N, BT, C);
        memset(m->d_qp, 0, BT * C * sizeof(float));
        memset(m->d_kp, 0, BT * C * sizeof(float));
        memset(m->d_vp, 0, BT * C * sizeof(float));
        memset(m->d_att, 0, NA * sizeof(float));
        pulse_attention_dropout_backward(m->d_qp, m->d_kp, m->d_vp, m->d_att, m->d_attyp, a->att, a->attd,
                                         a->attmask, a->q, a->k, a->v, B, Tb, C, NH, p);
        gather_rows(m->d_q, m->d_qp, m->pmap, N, C);
        gather_rows(m->d_k, m->d_kp, m->pmap, N, C);
        gather_rows(m->d_v, m->d_vp, m->pmap, N, C);
        pulse_matmul_backward(m->d_Q, gw->wq, gw->bq, m->d_q, a->ln1, w->wq, N, C, C);
        memset(dx2, 0, NC * sizeof(float));
        pulse_matmul_backward(dx2, gw->wk, gw->bk, m->d_k, x_in, w->wk, N, C, C);
        pulse_matmul_backward(dx2, gw->wv, gw->bv, m->d_v, x_in, w->wv, N, C, C);
        pulse_layernorm_backward(dx2, gw->ln1w, gw->ln1b, m->d_Q, x_in, w->ln1w, a->ln1_mean, a->ln1_rstd, N,
                                 C);
        float *t = dx;
        dx = dx2;
        dx2 = t;
    }
    /* dx = d x0; x0 = dropout(emb); emb = E[ids] * sqrt(C) + P[pos] */
    float *demb = m->d_h1;
    memset(demb, 0, NC * sizeof(float));
    drop_bw(demb, dx, m->emb_mask, NC, p);
    for (int n = 0; n < N; n++) { /* serial: deterministic */
        float *gp = m->g.pos_emb + (size_t)m->ppos[n] * C;
        const float *d = demb + (size_t)n * C;
        for (int c = 0; c < C; c++) gp[c] += d[c];
    }
    pulse_scale(demb, NC, sqrtf((float)C));
    pulse_embedding_backward(m->g.item_emb, demb, m->pids, N, C, V);
    memset(m->g.item_emb, 0, sizeof(float) * (size_t)C); /* padding row stays 0 */
}

/* ---- loss heads ---- */

/* Full softmax CE over items 1..V-1 at the nv contributing rows; sets m->dlnf. Returns the mean loss. */
static double ce_head(pulse_sasrec *m, int nv) {
    const int C = m->C, V = m->V, CH = m->CH;
    const float scale = 1.0f / (float)(m->dp_targets > 0 ? m->dp_targets : nv);
    double total = 0.0;
    /* bf16 head on an AVX512-BF16 CPU: dlogits written once in bf16, the form both backward products read
     * (the same products as converting fp32 dlogits, at half the traffic); NULL = the fp32-gradient form */
    if (m->bf16_head && pulse_bf16_supported() && !m->dl16)
        m->dl16 = pulse_malloc(sizeof(uint16_t) * (size_t)CH * V);
    const int b16 = m->bf16_head && m->dl16;
    for (int s = 0; s < nv; s += CH) {
        int n = nv - s < CH ? nv - s : CH;
        /* hv (n, C) = lnf[rows] */
        for (int i = 0; i < n; i++)
            memcpy(m->hv + (size_t)i * C, m->lnf + (size_t)m->rows[s + i] * C, sizeof(float) * C);
        /* logits (n, V) = hv E^T, item 0 masked */
        if (m->bf16_head)
            pulse_matmul_forward_bf16(m->logits, m->hv, sasrec_items(m), NULL, n, C, V);
        else
            pulse_matmul_forward(m->logits, m->hv, sasrec_items(m), NULL, n, C, V);
        for (int i = 0; i < n; i++) m->logits[(size_t)i * V] = MASKED_LOGIT;
        /* losses go to bdx (scratch of >= n floats); dlogits overwrite logits (or go to dl16) */
        if (b16) {
            total +=
                pulse_crossentropy_forward_backward_bf16(m->dl16, m->bdx, m->logits, m->tg + s, n, V, scale);
            for (int i = 0; i < n; i++) m->dl16[(size_t)i * V] = 0;
            /* dhv (n, C) = dlogits E; dE (V, C) += dlogits^T hv */
            pulse_gemm_bf16a(0, 0, n, C, V, 1.0f, m->dl16, V, sasrec_items(m), C, 0.0f, m->dhv, C);
            pulse_gemm_bf16a(1, 0, V, C, n, 1.0f, m->dl16, V, m->hv, C, 1.0f, m->g.item_emb, C);
        } else {
            total +=
                pulse_crossentropy_forward_backward(m->logits, m->bdx, m->logits, m->tg + s, n, V, scale);
            for (int i = 0; i < n; i++) m->logits[(size_t)i * V] = 0.0f;
            memset(m->dhv, 0, sizeof(float) * (size_t)n * C);
            if (m->bf16_head)
                pulse_matmul_backward_bf16(m->dhv, m->g.item_emb, NULL, m->logits, m->hv, sasrec_items(m), n,
                                           C, V);
            else
                pulse_matmul_backward(m->dhv, m->g.item_emb, NULL, m->logits, m->hv, sasrec_items(m), n, C,
                                      V);
        }
        for (int i = 0; i < n; i++) {
            float *d = m->dlnf + (size_t)m->rows[s + i] * C;
            const float *g = m->dhv + (size_t)i * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    }
    return total / nv;
}

/* BCE on one positive and one negative logit per contributing row (pmixer: mean over positions of each). */
static double bce_head(pulse_sasrec *m, int nv) {
    const int C = m->C;
    const float *E = sasrec_items(m);
    float *gE = m->g.item_emb;
#pragma omp parallel for schedule(static) if ((long)nv * C > 65536)
    for (int i = 0; i < nv; i++) {
        const float *h = m->lnf + (size_t)m->rows[i] * C;
        const float *ep = E + (size_t)m->tg[i] * C, *en = E + (size_t)m->ng[i] * C;
        float sp = 0, sn = 0;
        for (int c = 0; c < C; c++) {
            sp += h[c] * ep[c];
            sn += h[c] * en[c];
        }
        m->bx[i] = sp;
        m->bx[nv + i] = sn;
        m->by[i] = 1.0f;
        m->by[nv + i] = 0.0f;
    }
    double total = pulse_bce_logits_forward_backward(m->bdx, m->bx, m->by, 2 * (size_t)nv,
                                                     1.0f / (float)(m->dp_targets > 0 ? m->dp_targets : nv));
    for (int i = 0; i < nv; i++) { /* serial: deterministic scatter into the item table */
        const float *h = m->lnf + (size_t)m->rows[i] * C;
        float *dh = m->dlnf + (size_t)m->rows[i] * C;
        const float *ep = E + (size_t)m->tg[i] * C, *en = E + (size_t)m->ng[i] * C;
        float *gp = gE + (size_t)m->tg[i] * C, *gn = gE + (size_t)m->ng[i] * C;
        float dp = m->bdx[i], dn = m->bdx[nv + i];
        for (int c = 0; c < C; c++) {
            dh[c] += dp * ep[c] + dn * en[c];
            gp[c] += dp * h[c];
            gn[c] += dn * h[c];
        }
    }
    return total / nv;
}

/* hooks->hidden on the final state at each sequence's last real position; its gradient goes into dlnf. */
static pulse_status hidden_hook(pulse_sasrec *m, int B, double *loss) {
    const int C = m->C;
    if (m->hk_cap < B) {
        free(m->hk_h);
        free(m->hk_dh);
        m->hk_h = pulse_malloc(sizeof(float) * (size_t)B * C);
        m->hk_dh = pulse_malloc(sizeof(float) * (size_t)B * C);
        m->hk_cap = (m->hk_h && m->hk_dh) ? B : 0;
        if (!m->hk_cap) return PULSE_ERR_NOMEM;
    }
    for (int b = 0; b < B; b++) {
        int r = m->lastrow[b];
        if (r < 0)
            memset(m->hk_h + (size_t)b * C, 0, sizeof(float) * C);
        else
            memcpy(m->hk_h + (size_t)b * C, m->lnf + (size_t)r * C, sizeof(float) * C);
    }
    memset(m->hk_dh, 0, sizeof(float) * (size_t)B * C);
    *loss += m->hooks->hidden(m->hooks->ctx, B, m->hk_h, m->hk_dh);
    for (int b = 0; b < B; b++) {
        int r = m->lastrow[b];
        if (r < 0) continue;
        float *d = m->dlnf + (size_t)r * C;
        const float *g = m->hk_dh + (size_t)b * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
    return PULSE_OK;
}

pulse_status pulse_sasrec_forward_backward(pulse_sasrec *m, int B, const int *inputs, const int *targets,
                                           const int *negatives, int training, double *loss) {
    if (B < 1) return pulse_set_error(PULSE_ERR_ARG, "sasrec: batch size must be >= 1, found %d", B);
    if (m->loss == PULSE_SASREC_BCE && !negatives)
        return pulse_set_error(PULSE_ERR_ARG, "sasrec: the BCE loss needs negatives");
    pulse_status st = sasrec_alloc_acts(m, B);
    if (st) return st;
    if (!m->grads) {
        m->grads = pulse_calloc(m->n_params, sizeof(float));
        if (!m->grads) return PULSE_ERR_NOMEM;
        sasrec_view(m->grads, m->V, m->C, m->L, m->T, &m->g);
    }
    if ((st = sasrec_refresh_items(m)) != PULSE_OK) return st;
    const int T = m->T;
    int Tb = sasrec_load_ids(m, B, inputs);
    memset(m->grads, 0, m->n_params * sizeof(float));
    sasrec_forward(m, B, Tb, training);
    /* contributing rows: a real input whose target != 0 */
    int nv = 0;
    for (int r = 0; r < m->Np; r++) {
        int b = m->pmap[r] / Tb, t = m->pmap[r] % Tb;
        size_t src = (size_t)b * T + (T - Tb) + t;
        int tg = targets[src];
        if (tg <= 0 || tg >= m->V) continue;
        if (m->loss == PULSE_SASREC_BCE) {
            int ng = negatives[src];
            if (ng <= 0 || ng >= m->V)
                return pulse_set_error(PULSE_ERR_RANGE, "sasrec: negative item %d out of range [1, %d]", ng,
                                       m->V - 1);
            m->ng[nv] = ng;
        }
        m->rows[nv] = r;
        m->tg[nv] = tg;
        nv++;
    }
    if (nv == 0 && !(m->dp_hook && m->hooks && m->hooks->hidden)) {
        if (loss) *loss = 0.0;
        return PULSE_OK;
    }
    memset(m->dlnf, 0, sizeof(float) * (size_t)m->Np * m->C);
    double l = nv == 0 ? 0.0 : m->loss == PULSE_SASREC_CE ? ce_head(m, nv) : bce_head(m, nv);
    if (m->hooks && m->hooks->hidden) {
        if ((st = hidden_hook(m, B, &l)) != PULSE_OK) return st;
    }
    sasrec_backward(m, B, Tb, training);
    if (loss) *loss = l;
    return PULSE_OK;
}

void pulse_sasrec_adam_step(pulse_sasrec *m, const pulse_sasrec_params *p, int t) {
    if (!m->grads) return;
    if (!m->adam_m) m->adam_m = pulse_calloc(m->n_params, sizeof(float));
    if (!m->adam_v) m->adam_v = pulse_calloc(m->n_params, sizeof(float));
    if (!m->adam_m || !m->adam_v) return;
    pulse_adamw_update(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, p->lr, p->beta1, p->beta2,
                       p->adam_eps, 0.0f, t);
}

/* ---- scoring: last-position hidden state . E ---- */

/* Fill m->ids for n histories (most recent T items, left-padded), run the eval forward, and copy the final
 * hidden state of the last position of each row into h (n, C). */
static void last_hidden(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len, float *h) {
    const int T = m->T, C = m->C;
    int Tb = 1;
    for (int b = 0; b < n; b++) {
        int len = hist_len[b] < T ? hist_len[b] : T;
        if (len > Tb) Tb = len;
    }
    for (int b = 0; b < n; b++) {
        int len = hist_len[b] < T ? hist_len[b] : T;
        if (len < 0) len = 0;
        int *row = m->ids + (size_t)b * Tb;
        memset(row, 0, sizeof(int) * (size_t)(Tb - len));
        for (int t = 0; t < len; t++) {
            int id = hist[b][hist_len[b] - len + t];
            row[Tb - len + t] = (id < 0 || id >= m->V) ? 0 : id;
        }
    }
    sasrec_forward(m, n, Tb, 0);
    for (int b = 0; b < n; b++) {
        int r = m->lastrow[b];
        if (r < 0 || m->pmap[r] != b * Tb + Tb - 1) /* no item, or the last history item is not a valid id */
            memset(h + (size_t)b * C, 0, sizeof(float) * C);
        else
            memcpy(h + (size_t)b * C, m->lnf + (size_t)r * C, sizeof(float) * C);
    }
}

pulse_status sasrec_hidden_batch(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len,
                                 float *h);
pulse_status sasrec_hidden_batch(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len,
                                 float *h) {
    int cap = m->B_cap > 0 ? m->B_cap : 128;
    pulse_status st = sasrec_alloc_acts(m, cap);
    if (st) return st;
    if ((st = sasrec_refresh_items(m)) != PULSE_OK) return st;
    for (int s = 0; s < n; s += cap) {
        int nb = n - s < cap ? n - s : cap;
        last_hidden(m, nb, hist + s, hist_len + s, h + (size_t)s * m->C);
    }
    return PULSE_OK;
}

pulse_status pulse_sasrec_score(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len,
                                float *scores) {
    if (n <= 0) return PULSE_OK;
    float *h = pulse_malloc(sizeof(float) * (size_t)n * m->C);
    if (!h) return PULSE_ERR_NOMEM;
    pulse_status st = sasrec_hidden_batch(m, n, hist, hist_len, h);
    if (!st) {
        pulse_matmul_forward(scores, h, sasrec_items(m), NULL, n, m->C, m->V);
        for (int b = 0; b < n; b++) scores[(size_t)b * m->V] = MASKED_LOGIT;
    }
    free(h);
    return st;
}

/* ---- hooks ---- */

const float *sasrec_items(const pulse_sasrec *m) {
    return m->item_off ? m->item_eff : m->p.item_emb;
}

pulse_status sasrec_refresh_items(pulse_sasrec *m) {
    if (!m->item_off) return PULSE_OK;
    const size_t n = (size_t)m->V * m->C;
    if (!m->item_eff && !(m->item_eff = pulse_malloc(n * sizeof(float)))) return PULSE_ERR_NOMEM;
    /* item_eff (V, C) = E + X */
    for (size_t i = 0; i < n; i++) m->item_eff[i] = m->p.item_emb[i] + m->item_off[i];
    return PULSE_OK;
}

void pulse_sasrec_set_item_offset(pulse_sasrec *m, const float *X) {
    m->item_off = X;
}

void pulse_sasrec_set_hooks(pulse_sasrec *m, const pulse_sasrec_hooks *hooks) {
    m->hooks = hooks;
}

/* ---- accessors ---- */
int pulse_sasrec_n_items(const pulse_sasrec *m) {
    return m->V - 1;
}
int pulse_sasrec_dim(const pulse_sasrec *m) {
    return m->C;
}
int pulse_sasrec_maxlen(const pulse_sasrec *m) {
    return m->T;
}
int pulse_sasrec_blocks(const pulse_sasrec *m) {
    return m->L;
}
int pulse_sasrec_heads(const pulse_sasrec *m) {
    return m->NH;
}
pulse_sasrec_loss pulse_sasrec_loss_kind(const pulse_sasrec *m) {
    return m->loss;
}
float pulse_sasrec_dropout(const pulse_sasrec *m) {
    return m->dropout;
}
size_t pulse_sasrec_n_params(const pulse_sasrec *m) {
    return m->n_params;
}
float *pulse_sasrec_params_ptr(pulse_sasrec *m) {
    return m->params;
}
float *pulse_sasrec_grads_ptr(pulse_sasrec *m) {
    return m->grads;
}
void pulse_sasrec_set_seed(pulse_sasrec *m, uint64_t seed) {
    pulse_rng_seed(&m->rng, seed);
    m->seed = seed;
}

/* ---- model file ---- */

#define SASREC_MAGIC "PLSSASR"
#define SASREC_VERSION 1u
#define HEADER_BYTES (8 + 4 * 7 + 4 + 8)

static void put_u32(uint8_t **p, uint32_t v) {
    memcpy(*p, &v, 4);
    *p += 4;
}
static uint32_t get_u32(const uint8_t **p) {
    uint32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

pulse_status pulse_sasrec_save(const pulse_sasrec *m, const char *path) {
    size_t body = m->n_params * sizeof(float), total = HEADER_BYTES + body + 4;
    uint8_t *buf = pulse_malloc(total);
    if (!buf) return PULSE_ERR_NOMEM;
    uint8_t *p = buf;
    memcpy(p, SASREC_MAGIC, 8);
    p += 8;
    put_u32(&p, SASREC_VERSION);
    put_u32(&p, (uint32_t)(m->V - 1));
    put_u32(&p, (uint32_t)m->C);
    put_u32(&p, (uint32_t)m->L);
    put_u32(&p, (uint32_t)m->NH);
    put_u32(&p, (uint32_t)m->T);
    put_u32(&p, (uint32_t)m->loss);
    memcpy(p, &m->dropout, 4);
    p += 4;
    uint64_t np = m->n_params;
    memcpy(p, &np, 8);
    p += 8;
    memcpy(p, m->params, body);
    p += body;
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(total - 4));
    put_u32(&p, crc);
    pulse_status st = pulse_write_file_atomic(path, buf, total);
    free(buf);
    return st;
}

pulse_status pulse_sasrec_load(const char *path, const pulse_sasrec_params *params, pulse_sasrec **out) {
    *out = NULL;
    char *data;
    size_t len;
    pulse_status st = pulse_read_file(path, &data, &len);
    if (st) return st;
    const uint8_t *p = (const uint8_t *)data;
    if (len < HEADER_BYTES + 4 || memcmp(p, SASREC_MAGIC, 8) != 0) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: not a pulse SASRec model (expected magic \"%s\")", path,
                               SASREC_MAGIC);
    }
    p += 8;
    uint32_t ver = get_u32(&p), n_items = get_u32(&p), C = get_u32(&p), L = get_u32(&p), NH = get_u32(&p),
             T = get_u32(&p), loss = get_u32(&p);
    float dropout;
    memcpy(&dropout, p, 4);
    p += 4;
    uint64_t np;
    memcpy(&np, p, 8);
    p += 8;
    if (ver != SASREC_VERSION) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: SASRec model version %u, expected %u", path, ver,
                               SASREC_VERSION);
    }
    if (n_items > 100000000u || C > 4096u || L > 64u || NH > 4096u || T > 4096u || loss > 1u ||
        !(dropout >= 0 && dropout < 1)) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: implausible SASRec header (items %u dim %u blocks %u)",
                               path, n_items, C, L);
    }
    if ((st = check_dims((int)n_items, (int)C, (int)L, (int)NH, (int)T)) != PULSE_OK) {
        free(data);
        return pulse_wrap_error(st, "%s", path);
    }
    /* the sizes the header claims must match the file before anything is allocated for them */
    const size_t n_params = sasrec_count_params((int)n_items + 1, (int)C, (int)L, (int)T);
    const size_t want = HEADER_BYTES + n_params * sizeof(float) + 4;
    if (np != n_params || len != want) {
        free(data);
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "%s: truncated or corrupt SASRec model: header (items %u dim %u blocks %u maxlen "
            "%u, %llu parameters) needs %zu bytes, found %zu",
            path, n_items, C, L, T, (unsigned long long)np, want, len);
    }
    pulse_sasrec *m;
    st = model_alloc((int)n_items, (int)C, (int)L, (int)NH, (int)T, &m);
    if (st) {
        free(data);
        return pulse_wrap_error(st, "%s", path);
    }
    uint32_t crc_file;
    memcpy(&crc_file, data + len - 4, 4);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)data, (uInt)(len - 4));
    if (crc != crc_file) {
        pulse_sasrec_free(m);
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: SASRec model checksum mismatch (file is corrupt)",
                               path);
    }
    memcpy(m->params, p, m->n_params * sizeof(float));
    m->loss = (pulse_sasrec_loss)loss;
    m->dropout = dropout;
    m->bf16_head = params ? params->bf16_head : 0;
    pulse_rng_seed(&m->rng, params ? params->seed : pulse_sasrec_default_params().seed);
    m->seed = params ? params->seed : pulse_sasrec_default_params().seed;
    free(data);
    *out = m;
    return PULSE_OK;
}
