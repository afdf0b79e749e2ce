/* lm/kv.c — owns contexts: the paged KV cache (a pool of fixed-size blocks of kv_block tokens, each holding
 * K and V of every layer, reference-counted so forked sequences share their common prefix; a shared,
 * partly filled last block is copied on the first write), the sequence table, and the per-chunk scratch of
 * the forward. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attend_f16.h"
#include "kernels/ggml_exact.h"
#include "lm/lm_internal.h"

pulse_lm_ctx_params pulse_lm_ctx_default_params(void) {
    pulse_lm_ctx_params p = {0};
    p.n_ctx = 2048;
    p.n_seq_max = 8;
    p.n_batch = 64;
    p.n_kv_tokens = 0;
    p.kv_block = 16;
    p.keep_activations = 0;
    return p;
}

const pulse_lm *pulse_lm_ctx_model(const pulse_lm_ctx *c) {
    return c->m;
}

int pulse_lm_ctx_n_truncated(const pulse_lm_ctx *c) {
    return c->n_truncated;
}

void pulse_lm_ctx_free(pulse_lm_ctx *c) {
    if (!c) return;
    if (c->prof_on) {
        static const char *names[LM_PROF_N] = {"embd+rope", "qkv", "attention", "wo", "ffn", "head", "misc"};
        double tot = 0;
        for (int i = 0; i < LM_PROF_N; i++) tot += c->prof[i];
        fprintf(stderr, "LM forward profile: %.3f s", tot);
        for (int i = 0; i < LM_PROF_N; i++)
            fprintf(stderr, ", %s %.3f (%.1f%%)", names[i], c->prof[i], tot > 0 ? 100 * c->prof[i] / tot : 0);
        fprintf(stderr, "\n");
    }
    free(c->k_pool);
    free(c->v_pool);
    free(c->kt_pool);
    free(c->vt_pool);
    free(c->ref);
    free(c->free_blk);
    if (c->seqs)
        for (int i = 0; i < c->p.n_seq_max; i++) free(c->seqs[i].blocks);
    free(c->seqs);
    free(c->lora_t);
    free(c->lora_bt);
    free(c->lora_bt_off);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->o);
    free(c->gu);
    free(c->h);
    free(c->pos);
    free(c->sq);
    free(c->row_order);
    free(c->seq_cnt);
    free(c->att_scratch);
    free(c->acts);
    free(c->logits);
    free(c->out_idx);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c);
}

static void *ealloc(size_t a, size_t b, size_t elt, pulse_status *st) {
    size_t n;
    if (*st) return NULL;
    if (pulse_mul_overflows(a, b, &n) || pulse_mul_overflows(n, elt, &n)) {
        *st = PULSE_ERR_NOMEM;
        return NULL;
    }
    void *p = calloc(1, n ? n : 1); /* calloc: untouched pages of a big pool cost no memory */
    if (!p)
        *st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory allocating %zu bytes for the LM context", n);
    return p;
}

static float *falloc(size_t a, size_t b, pulse_status *st) {
    return ealloc(a, b, sizeof(float), st);
}

pulse_status pulse_lm_ctx_new(const pulse_lm *m, const pulse_lm_ctx_params *params, pulse_lm_ctx **out) {
    *out = NULL;
    pulse_lm_ctx_params p = params ? *params : pulse_lm_ctx_default_params();
    if (p.n_ctx <= 0 || p.n_seq_max <= 0 || p.n_batch <= 0 || p.kv_block <= 0 || p.n_kv_tokens < 0 ||
        p.n_ctx > (1 << 24) || p.n_seq_max > (1 << 16) || p.n_batch > (1 << 16) || p.kv_block > 4096 ||
        (unsigned)p.truncate > PULSE_LM_TRUNCATE_RIGHT)
        return pulse_set_error(PULSE_ERR_ARG,
                               "LM context: n_ctx %d, n_seq_max %d, n_batch %d, kv_block %d, n_kv_tokens %d, "
                               "truncate %d out of range",
                               p.n_ctx, p.n_seq_max, p.n_batch, p.kv_block, p.n_kv_tokens, (int)p.truncate);
    if (p.n_kv_tokens == 0) {
        int64_t t = (int64_t)p.n_ctx * p.n_seq_max;
        p.n_kv_tokens = t > (1 << 26) ? (1 << 26) : (int)t;
    }
    const pulse_lm_hparams *hp = &m->hp;
    pulse_lm_ctx *c = pulse_calloc(1, sizeof *c);
    if (!c) return PULSE_ERR_NOMEM;
    c->m = m;
    c->p = p;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    c->max_blk_seq = (p.n_ctx + p.kv_block - 1) / p.kv_block;
    c->n_blocks = (p.n_kv_tokens + p.kv_block - 1) / p.kv_block;
    c->blk_floats = (size_t)hp->n_layer * (size_t)p.kv_block * (size_t)c->kv_dim;
    c->nb = p.n_batch;
    c->prof_on = pulse_get_options()->lm_profile; /* 1: all chunks; N > 1: chunks of N tokens */
    /* the context's thread count: its params, the model's, or the caller's setting now */
    c->n_thr = p.n_threads > 0 ? p.n_threads : m->n_threads > 0 ? m->n_threads : omp_get_max_threads();
    if (c->n_thr < 1) c->n_thr = 1;
    pulse_status st = PULSE_OK;
    c->k_pool = ealloc((size_t)c->n_blocks, c->blk_floats, sizeof(uint16_t), &st);
    c->v_pool = ealloc((size_t)c->n_blocks, c->blk_floats, sizeof(uint16_t), &st);
    if (!st && !p.kv_rows_only && pk_attend_wants_transposed(p.kv_block, hp->head_dim)) {
        /* the transposed copies are a speed-up only: without the memory for them, the row kernels */
        pulse_status tst = PULSE_OK;
        c->kt_pool = ealloc((size_t)c->n_blocks, c->blk_floats, sizeof(uint16_t), &tst);
        c->vt_pool = ealloc((size_t)c->n_blocks, c->blk_floats, sizeof(uint16_t), &tst);
        if (tst) {
            free(c->kt_pool), free(c->vt_pool);
            c->kt_pool = c->vt_pool = NULL;
            pulse_clear_error();
        }
    }
    if (!st) {
        c->ref = calloc((size_t)c->n_blocks, sizeof(int));
        c->free_blk = malloc(sizeof(int) * (size_t)c->n_blocks);
        c->seqs = calloc((size_t)p.n_seq_max, sizeof(lm_seq));
        if (!c->ref || !c->free_blk || !c->seqs)
            st = pulse_set_error(PULSE_ERR_NOMEM, "LM context: out of memory");
    }
    if (!st) {
        /* stack: pop from the end, lowest ids first (reuses recently touched memory) */
        for (int i = 0; i < c->n_blocks; i++) c->free_blk[i] = c->n_blocks - 1 - i;
        c->n_free = c->n_blocks;
        for (int i = 0; i < p.n_seq_max && !st; i++) {
            c->seqs[i].blocks = malloc(sizeof(int) * (size_t)c->max_blk_seq);
            if (!c->seqs[i].blocks) st = pulse_set_error(PULSE_ERR_NOMEM, "LM context: out of memory");
        }
    }
    const size_t nb = (size_t)p.n_batch, E = (size_t)hp->n_embd;
    const size_t Q = (size_t)hp->n_head * (size_t)hp->head_dim, KV = (size_t)c->kv_dim;
    c->x = falloc(nb, E, &st);
    c->xn = falloc(nb, E, &st);
    c->q = falloc(nb, Q + 2 * KV, &st); /* room for a fused qkv product */
    c->k = falloc(nb, KV, &st);
    c->v = falloc(nb, KV, &st);
    c->att = falloc(nb, Q, &st);
    c->o = falloc(nb, E, &st);
    c->gu = falloc(nb, 2 * (size_t)hp->n_ff, &st);
    c->h = falloc(nb, hp->n_ff, &st);
    /* per thread: the attention kernel's scratch for a kv group's query heads, then their f16 queries (see
     * lm/attend.c) */
    c->att_stride = pk_attend_scratch_floats(hp->n_head / hp->n_head_kv, p.n_ctx, hp->head_dim) +
                    (size_t)(hp->n_head / hp->n_head_kv) * (size_t)hp->head_dim / 2 + 16;
    c->att_scratch = falloc((size_t)c->n_thr, c->att_stride, &st);
    c->rope_cos = falloc(2 * nb, (size_t)hp->n_rot / 2 + 1, &st);
    c->rope_sin = falloc(2 * nb, (size_t)hp->n_rot / 2 + 1, &st);
    if (p.keep_activations) c->acts = falloc((size_t)(hp->n_layer + 1) * nb, E, &st);
    if (!st) {
        c->pos = malloc(sizeof(int) * nb);
        c->sq = malloc(sizeof(int) * nb);
        c->row_order = malloc(nb);
        c->seq_cnt = calloc((size_t)p.n_seq_max, sizeof(int));
        if (!c->pos || !c->sq || !c->row_order || !c->seq_cnt)
            st = pulse_set_error(PULSE_ERR_NOMEM, "LM context: out of memory");
    }
    if (st) {
        pulse_lm_ctx_free(c);
        return st;
    }
    *out = c;
    return PULSE_OK;
}

int pulse_lm_seq_new(pulse_lm_ctx *c) {
    for (int i = 0; i < c->p.n_seq_max; i++)
        if (!c->seqs[i].live) {
            c->seqs[i].live = 1;
            c->seqs[i].len = 0;
            c->seqs[i].n_blk = 0;
            return i;
        }
    pulse_set_error(PULSE_ERR_RANGE, "LM context: all %d sequences are in use", c->p.n_seq_max);
    return -1;
}

static int seq_ok(const pulse_lm_ctx *c, int s) {
    return s >= 0 && s < c->p.n_seq_max && c->seqs[s].live;
}

static void blk_release(pulse_lm_ctx *c, int b) {
    if (--c->ref[b] == 0) c->free_blk[c->n_free++] = b;
}

void pulse_lm_seq_free(pulse_lm_ctx *c, int s) {
    if (!seq_ok(c, s)) return;
    lm_seq *q = &c->seqs[s];
    for (int i = q->n_blk - 1; i >= 0; i--) blk_release(c, q->blocks[i]);
    q->n_blk = 0;
    q->len = 0;
    q->live = 0;
}

int pulse_lm_seq_len(const pulse_lm_ctx *c, int s) {
    return seq_ok(c, s) ? c->seqs[s].len : -1;
}

pulse_status pulse_lm_seq_fork(pulse_lm_ctx *c, int parent, int *child) {
    *child = -1;
    if (!seq_ok(c, parent)) return pulse_set_error(PULSE_ERR_ARG, "LM fork: sequence %d is not live", parent);
    int s = pulse_lm_seq_new(c);
    if (s < 0) return PULSE_ERR_RANGE;
    lm_seq *p = &c->seqs[parent], *q = &c->seqs[s];
    for (int i = 0; i < p->n_blk; i++) {
        q->blocks[i] = p->blocks[i];
        c->ref[p->blocks[i]]++;
    }
    q->n_blk = p->n_blk;
    q->len = p->len;
    *child = s;
    return PULSE_OK;
}

pulse_status pulse_lm_seq_truncate(pulse_lm_ctx *c, int s, int n) {
    if (!seq_ok(c, s)) return pulse_set_error(PULSE_ERR_ARG, "LM truncate: sequence %d is not live", s);
    lm_seq *q = &c->seqs[s];
    if (n < 0 || n > q->len)
        return pulse_set_error(PULSE_ERR_RANGE, "LM truncate: %d outside [0, %d]", n, q->len);
    int keep = (n + c->p.kv_block - 1) / c->p.kv_block;
    for (int i = q->n_blk - 1; i >= keep; i--) blk_release(c, q->blocks[i]);
    q->n_blk = keep;
    q->len = n;
    return PULSE_OK;
}

int pulse_lm_kv_blocks_used(const pulse_lm_ctx *c) {
    return c->n_blocks - c->n_free;
}

size_t pulse_lm_kv_bytes_used(const pulse_lm_ctx *c) {
    const size_t pools = c->kt_pool ? 4 : 2; /* K, V (and K^T, V^T) */
    return (size_t)pulse_lm_kv_blocks_used(c) * c->blk_floats * sizeof(uint16_t) * pools;
}

static int blk_alloc(pulse_lm_ctx *c) {
    if (c->n_free == 0) return -1;
    int b = c->free_blk[--c->n_free];
    c->ref[b] = 1;
    return b;
}

pulse_status lm_kv_reserve(pulse_lm_ctx *c, int s, int n) {
    lm_seq *q = &c->seqs[s];
    const int B = c->p.kv_block;
    if (q->len + n > c->p.n_ctx)
        return pulse_set_error(PULSE_ERR_RANGE, "LM sequence %d: %d + %d tokens exceed n_ctx %d", s, q->len,
                               n, c->p.n_ctx);
    /* the block that the next token goes to, if it already exists and is shared: copy it */
    if (n > 0 && q->len % B != 0) {
        int bi = q->len / B, b = q->blocks[bi];
        if (c->ref[b] > 1) {
            int nbk = blk_alloc(c);
            if (nbk < 0) return pulse_set_error(PULSE_ERR_NOMEM, "LM KV cache full (%d blocks)", c->n_blocks);
            memcpy(c->k_pool + (size_t)nbk * c->blk_floats, c->k_pool + (size_t)b * c->blk_floats,
                   c->blk_floats * sizeof(uint16_t));
            memcpy(c->v_pool + (size_t)nbk * c->blk_floats, c->v_pool + (size_t)b * c->blk_floats,
                   c->blk_floats * sizeof(uint16_t));
            if (c->kt_pool) {
                memcpy(c->kt_pool + (size_t)nbk * c->blk_floats, c->kt_pool + (size_t)b * c->blk_floats,
                       c->blk_floats * sizeof(uint16_t));
                memcpy(c->vt_pool + (size_t)nbk * c->blk_floats, c->vt_pool + (size_t)b * c->blk_floats,
                       c->blk_floats * sizeof(uint16_t));
            }
            c->ref[b]--;
            q->blocks[bi] = nbk;
        }
    }
    int need = (q->len + n + B - 1) / B;
    while (q->n_blk < need) {
        int b = blk_alloc(c);
        if (b < 0) return pulse_set_error(PULSE_ERR_NOMEM, "LM KV cache full (%d blocks)", c->n_blocks);
        q->blocks[q->n_blk++] = b;
    }
    return PULSE_OK;
}

void lm_kv_put(pulse_lm_ctx *c, int s, int il, int pos, int want_v, const float *x) {
    uint16_t *row = lm_kv_row(c, s, il, pos, want_v);
    pk_f16_row(row, x, c->kv_dim);
    uint16_t *pool = want_v ? c->vt_pool : c->kt_pool;
    if (!pool) return;
    if (want_v && !c->v_nonfinite)
        for (int r = 0; r < c->kv_dim; r++)
            if ((row[r] & 0x7C00) == 0x7C00) c->v_nonfinite = 1;
    const int B = c->p.kv_block;
    uint16_t *col = pool + (size_t)c->seqs[s].blocks[pos / B] * c->blk_floats +
                    (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)(pos % B);
    for (int r = 0; r < c->kv_dim; r++) col[(size_t)r * B] = row[r];
}

uint16_t *lm_kv_row(pulse_lm_ctx *c, int s, int il, int pos, int want_v) {
    const int B = c->p.kv_block;
    int b = c->seqs[s].blocks[pos / B];
    uint16_t *pool = want_v ? c->v_pool : c->k_pool;
    return pool + (size_t)b * c->blk_floats +
           ((size_t)il * (size_t)B + (size_t)(pos % B)) * (size_t)c->kv_dim;
}
