/* encoder/internal.h — the encoder's private types, shared by its files: io.c (config, weights, load / save,
 * facts), model.c (activations, the forward and backward passes, inference), train.c (training state,
 * AdamW). Not part of the public API.
 *
 * Shapes: B texts, T tokens (the batch's longest), C hidden, NH heads, FF intermediate, V vocabulary,
 * P positions, D output dim, L layers. Post-LN blocks (BERT and DistilBERT alike):
 *   x0 = LN(wte[ids] + wpe[t] (+ wtt[0]))
 *   x1 = LN(x + drop(Attn(x) Wo + bo));  x' = LN(x1 + drop(GELU(x1 W1 + b1) W2 + b2)) */
#ifndef PULSE_ENCODER_INTERNAL_H
#define PULSE_ENCODER_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "encoder/wordpiece.h"
#include "pulse/encoder.h"
#include "pulse/kernels_bf16.h"
#include "pulse/kernels.h"

enum { ARCH_BERT = 0, ARCH_DISTIL = 1 };
enum { ACT_GELU = 0, ACT_GELU_TANH = 1, ACT_RELU = 2 };

typedef struct {
    float *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob, *ln1w, *ln1b, *f1w, *f1b, *f2w, *f2b, *ln2w, *ln2b;
} layer_w;

/* activations of one layer (training: views of layer l in the (L, R, ...) tensors; inference: one shared,
 * aliased set) */
typedef struct {
    float *q, *k, *v, *att, *atty, *res1, *x1, *mean1, *rstd1, *h, *g, *res2, *x2, *mean2, *rstd2;
    uint8_t *mo, *mf; /* dropout masks after the attention projection and the FFN */
} layer_a;

/* inference scratch, one block (model.c: scratch_sizes): R = B*T rows, A attention floats */
typedef struct {
    float *x, *x1, *t, *q, *k, *v, *y; /* (R, C) */
    float *h;                          /* (R, FF) */
    float *att;                        /* (B, NH, T, T) fp32 path; 1 float in bf16 */
    float *mean, *rstd;                /* (R) */
    float *pool, *proj, *norm;         /* (B, C), (B, D), (B) */
    float *qkv;                        /* (R, 3C) fused QKV product (fp32 path; 1 float in bf16) */
    int *pos;                          /* (R) */
    int *ids;                          /* (R) the blocked fp32 path's token ids */
    uint8_t *kmask;                    /* (R) */
} enc_scratch;

/* training activations and their gradients, one block (model.c: train_sizes; llm.c's ActivationTensors).
 * R = max_batch * max_len rows of capacity, MB = max_batch; per-layer tensors hold all L layers. */
typedef struct {
    float *e, *eln, *emean, *erstd, *x0;      /* (R, C), (R, C), (R), (R), (R, C) embeddings */
    float *q, *k, *v, *atty, *res1, *x1;      /* (L, R, C) */
    float *att;                               /* (L, MB, NH, T, T) */
    float *mean1, *rstd1, *mean2, *rstd2;     /* (L, R) */
    float *h, *g;                             /* (L, R, FF) */
    float *res2, *x2;                         /* (L, R, C) */
    float *o;                                 /* (R, C) projection before dropout */
    float *qkv;                               /* (R, 3C) fused QKV product (forward) and d(qkv) (backward) */
    float *pool, *proj, *out, *norm;          /* (MB, C), (MB, D), (MB, D), (MB) */
    float *d_x, *d_res, *d_x1, *d_o, *d_atty; /* (R, C) */
    float *d_q, *d_k, *d_v;                   /* (R, C) */
    float *d_att;                             /* (MB, NH, T, T) */
    float *d_g, *d_h;                         /* (R, FF) */
    float *d_pool, *d_proj;                   /* (MB, C), (MB, D) */
    int *ids, *pos, *zero;                    /* (R) token ids, positions, token types (0) */
    int *lens;                                /* (MB) */
    uint8_t *kmask;                           /* (R) key mask */
    uint8_t *emask;                           /* (R, C) embedding dropout mask */
    uint8_t *mo, *mf;                         /* (L, R, C) dropout masks */
} enc_acts;

struct pulse_encoder {
    int arch, act;
    int V, P, NTT, C, NH, L, FF;
    float eps, cfg_dropout;
    cJSON *config;
    char *dir;
    pulse_wordpiece tok;
    pulse_encoder_params p;
    pulse_pooling pooling; /* resolved: PULSE_POOL_CLS or PULSE_POOL_MEAN */
    int proj_dim;

    /* weights: one flat array; embeddings, then layers 0..L-1, then the projection head */
    float *w;
    size_t nw, emb_n, layer_n;
    float *wte, *wpe, *wtt, *elnw, *elnb, *pw, *pb;
    layer_w *lw;

    /* inference scratch in one block, sized for s_cap_b texts of s_cap_t tokens */
    void *s_block;
    enc_scratch s;
    int s_cap_b, s_cap_t;
    int s_f32; /* the scratch holds the fp32 path's att / qkv (bf16 inference needs neither) */
    /* bf16 inference: each layer's weights packed once for the kernel (qkv, o, ffn1, ffn2 per layer; an entry
     * may be NULL: that product converts its weight per call); dropped whenever the weights may change */
    pulse_bf16_weight **pk;
    /* fp32 inference on AVX-512: the same four per layer packed for pulse_linear_fused (NULL: not packed, the
     * OpenBLAS path); dropped with pk */
    pulse_f32_weight **pk32;

    /* training */
    int training;
    pulse_encoder_train_params tp;
    float *g, *m, *v; /* gradients and AdamW moments, the weights' layout */
    layer_w *lg;      /* gradient views with the weights' layout */
    float *gwte, *gwpe, *gwtt, *gelnw, *gelnb, *gpw, *gpb;
    int step;
    pulse_rng rng;
    int64_t *ex_ids; /* (ex_n) pulse_encoder_set_example_ids: per-example dropout masks; ex_n 0 = off */
    int ex_n;
    void *a_block; /* every training activation (enc_acts a) */
    enc_acts a;
    layer_a *la; /* per-layer views into a */
    int a_B, a_T, a_valid;
};

/* io.c: point the weight (and gradient) views into the flat arrays for the current sizes */
size_t enc_layout(const pulse_encoder *e, float *base, float **wte, float **wpe, float **wtt, float **elnw,
                  float **elnb, layer_w *lw, float **pw, float **pb);
void enc_relayout(pulse_encoder *e);

/* model.c */
void enc_free_scratch(pulse_encoder *e);
void enc_drop_packs(pulse_encoder *e); /* the weights may change: bf16 inference packs them again */
/* training activations for max_batch texts of max_len tokens (zeroed), and their per-layer views */
pulse_status enc_alloc_acts(pulse_encoder *e, int max_batch, int max_len);
void enc_free_acts(pulse_encoder *e);
float enc_train_dropout(const pulse_encoder *e);

#endif
