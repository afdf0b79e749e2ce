/* sasrec/sasrec_internal.h — the SASRec model struct shared by model.c (parameters, forward/backward,
 * save/load) and train.c (training loop, checkpoints, evaluation, similar users). */
#ifndef PULSE_SASREC_INTERNAL_H
#define PULSE_SASREC_INTERNAL_H

#include <stdint.h>

#include "pulse/sasrec.h"

typedef struct {
    float *ln1w, *ln1b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *ln2w, *ln2b, *w1, *b1, *w2, *b2;
} sasrec_block_params;

typedef struct {
    float *item_emb; /* (V, C) */
    float *pos_emb;  /* (T, C) */
    sasrec_block_params *blk;
    float *lnfw, *lnfb;
} sasrec_params_view;

/* Activations of one block: packed (Np, C) rows unless noted; allocated once for B_cap x maxlen. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* Q = LN1(x_in) */
    float *q, *k, *v;                 /* (B, Tb, C) padded, zero at padding */
    float *att;                       /* (B, NH, Tb, Tb) softmax probabilities */
    float *attd;                      /* (B, NH, Tb, Tb) the same after attention dropout */
    uint8_t *attmask;                 /* (B, NH, Tb, Tb) attention-dropout keep mask */
    float *atty;
    float *xmid; /* Q + atty Wo^T + bo */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *h1;  /* ln2 W1^T + b1 */
    float *h1d; /* dropout(h1) */
    float *h1r; /* relu(h1d) */
    float *h2;  /* h1r W2^T + b2 */
    float *h2d; /* dropout(h2) */
    uint8_t *mask1, *mask2;
    float *xout; /* ln2 + h2d */
} sasrec_block_acts;

struct pulse_sasrec {
    int V, C, L, NH, T; /* V = n_items + 1 */
    float dropout;
    pulse_sasrec_loss loss;
    int bf16_head; /* pulse_sasrec_params.bf16_head */
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v;
    int adam_t; /* Adam steps taken */
    sasrec_params_view p, g;
    pulse_rng rng; /* shuffling and negatives (train.c); dropout masks are hashed, not drawn from it */
    uint64_t seed; /* dropout mask key (pulse_sasrec_set_seed / the params' seed) */
    int ex_base;   /* global index of batch row 0 (train.c: dp_step sets this rank's slice start) */

    /* activations for up to B_cap sequences of length T (allocated on first use). Row-wise layers run on
     * the packed real tokens only (Np rows); attention runs on the padded (B, Tb) layout. */
    int B_cap;
    int *ids;                /* (B, Tb) padded inputs of the current batch */
    uint8_t *keymask;        /* (B, Tb) 1 = real item */
    int Np;                  /* real tokens in the batch */
    int *pids, *ppos, *pmap; /* (Np) item id, position index, padded index b*Tb+t of each packed row */
    int *lastrow;            /* (B) packed row of the last real token of each sequence, -1 if none */
    float *emb;              /* (Np, C) E[id]*sqrt(C) + P[pos] */
    uint8_t *emb_mask;
    float *x0; /* (Np, C) dropout(emb) */
    sasrec_block_acts *acts;
    float *lnf, *lnf_mean, *lnf_rstd; /* (Np, C), (Np), (Np) */
    float *scratch;                   /* (Np, C) */
    float *attyp;                     /* (B, Tb, C) padded attention output */
    /* gradient scratch: packed (Np, C) unless noted */
    float *dx, *dx2, *dlnf, *d_ln2, *d_h2, *d_h1r, *d_h1d, *d_h1, *d_xmid, *d_atty, *d_q, *d_k, *d_v, *d_Q;
    float *d_attyp, *d_qp, *d_kp, *d_vp; /* (B, Tb, C) padded */
    float *d_att;                        /* (B, NH, Tb, Tb) */
    /* loss head */
    int *rows, *tg, *ng;  /* (Np) contributing packed rows, their targets and negatives */
    float *hv, *dhv;      /* (CH, C) */
    float *logits;        /* (CH, V) */
    uint16_t *dl16;       /* (CH, V) the bf16 head's dlogits (bf16_head on an AVX512-BF16 CPU), or NULL */
    float *bx, *by, *bdx; /* (2*B*T) BCE logits, labels, gradients */
    int CH;
    void *act_block; /* every activation above, one allocation (model.c: sasrec_alloc_acts) */
    /* hooks (pulse_sasrec_set_item_offset / set_hooks) */
    const float *item_off;           /* (V, C) caller's offset, or NULL */
    float *item_eff;                 /* (V, C) item_emb + item_off, refreshed at each forward */
    const pulse_sasrec_hooks *hooks; /* or NULL */
    float *hk_h, *hk_dh;             /* (hk_cap, C) last-position states for hooks->hidden */
    int hk_cap;
    /* data-parallel steps (train.c: dp_step): the loss heads' gradients are scaled by 1 / dp_targets (the
     * global batch's contributing positions) instead of 1 / (this rank's); dp_hook: call hooks->hidden also
     * when this rank's share has no contributing position (the hook's collectives need every rank) */
    int64_t dp_targets;
    int dp_hook;
};

void sasrec_view(float *base, int V, int C, int L, int T, sasrec_params_view *v);
size_t sasrec_count_params(int V, int C, int L, int T);
pulse_status sasrec_alloc_acts(pulse_sasrec *m, int B_cap);
/* Forward through the final LayerNorm for B sequences of T_b columns (ids already in m->ids, row stride
 * T_b). training applies dropout. Output in m->lnf (Np, C) for the packed real tokens. */
void sasrec_forward(pulse_sasrec *m, int B, int T_b, int training);
/* Copy inputs (B, T) left-padded into m->ids with the shortest common width T_b; returns T_b (>= 1). */
int sasrec_load_ids(pulse_sasrec *m, int B, const int *inputs);
/* The item table in use: item_emb, or item_emb + the caller's offset (recomputed by sasrec_refresh_items). */
const float *sasrec_items(const pulse_sasrec *m);
pulse_status sasrec_refresh_items(pulse_sasrec *m);

#endif
