/* textrec/internal.h — the text-aware recommender's struct and the helpers shared by text.c (item text, text
 * vectors, their cache), model.c (parameters, hooks into SASRec, training, model file, transfer) and cold.c
 * (cold-start users, subset evaluation). */
#ifndef PULSE_TEXTREC_INTERNAL_H
#define PULSE_TEXTREC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/encoder.h"
#include "pulse/textrec.h"

struct pulse_textrec {
    pulse_textrec_arch arch;
    int use_id, V, D, C; /* V = n_items + 1 */
    int bf16_x;          /* the training steps' X = T W^T + b and its gradient in bf16 (--bf16-head) */
    uint16_t *T16;       /* (V, D) T in bf16 while a fit runs with bf16_x and T frozen (no fine-tuning) */
    float *gWt;          /* (D, C) scratch: gW^T of the bf16 form */
    int text_len, ft_layers;
    float lambda, tau;
    int K;
    uint64_t seed;
    char *encoder_dir; /* encoder (morec) or space (thought) folder, or "" */
    pulse_sasrec *sr;
    float *T; /* (V, D) item text vectors, row 0 zero */
    float *X; /* (V, C) item offsets W t + b, row 0 zero: the SASRec item-offset hook */
    /* own parameters, one flat array: W (C, D), b (C), P (D, C) when thought */
    size_t n_own;
    float *own, *own_g, *own_m, *own_v, *own_best;
    float *W, *b, *P, *gW, *gb, *gP;
    int own_t;
    float lr, beta1, beta2, eps;
    /* rationale term */
    float *R;       /* (n_r, D) rationale vectors */
    int *r_of_user; /* (n_users) row of R or -1 */
    int n_users;
    const int *batch_users; /* users of the current batch (row order) */
    int batch_n;
    uint64_t step;
    int cap; /* rows of the hook scratch below */
    float *hs, *dhs, *rs, *us, *dus, *nce;
    int *rows, *neg;
    /* data-parallel training on several MPI ranks (model.c: hook_hidden_dp): the whole batch's last hidden
     * states and their gradients (dp_cap rows), the all-gather's counts */
    int dp, dp_cap;
    float *dp_h, *dp_dh;
    size_t *dp_counts;
    double align_sum;
    int align_n;
    /* end to end (ft_layers > 0) */
    pulse_encoder *enc;
    int *tok, *tok_len; /* (V, text_len), (V) */
    int ft_items, refresh_step;
    float ft_lr;
    int *ft_idx, ft_n;   /* items re-encoded with gradient this step */
    float *ft_t, *ft_dt; /* (ft_items, D) */
    float *ft_dx, *ft_x; /* (ft_items, C) */
    float *T_best;       /* (V, D) */
    float *enc_best;     /* encoder parameters at the best epoch */
    size_t enc_n;
    pulse_sasrec_hooks hooks;
};

/* X (V, C) = T W^T + b, row 0 zero */
void textrec_refresh_x(pulse_textrec *m);
/* FNV-1a 64 over bytes, chained */
uint64_t textrec_hash(uint64_t h, const void *p, size_t n);
/* Vectors of n texts from an encoder folder (morec) or a space's R (thought), cached in cache_dir (may be
 * NULL) under the hash of (texts, folder, arch, text_len). out (n, D) malloc'd. */
pulse_status textrec_encode_texts(const char *const *texts, int n, pulse_textrec_arch arch, const char *dir,
                                  int text_len, pulse_precision prec, const char *cache_dir, const char *what,
                                  float **out, int *D);
/* All item texts 0..n_items (0 = ""), malloc'd array of malloc'd strings. */
pulse_status textrec_item_texts(const pulse_dataset *ds, char ***texts);
void textrec_free_texts(char **texts, int n);

#endif
