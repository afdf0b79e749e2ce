/* pulse/sasrec.h — SASRec (Kang & McAuley 2018, pmixer/SASRec.pytorch semantics) in C: model, training with
 * BCE (one sampled negative per position) or full-softmax cross-entropy, evaluation through the shared
 * harness, per-user vectors and top-k similar users by cosine.
 *
 * Architecture (d = dim, T = maxlen, L = blocks):
 *   x = dropout(E[item] * sqrt(d) + P[pos]) * timeline_mask          (left-padded, most recent T items)
 *   for each block:  Q = LN1(x);  x = Q + MHA(Q, x, x)   (causal + padding-key mask)
 *                    y = LN2(x);  x = (y + dropout(W2 relu(dropout(W1 y + b1)) + b2)) * timeline_mask
 *   h = LN_final(x);  logits = h . E[item]
 * Item 0 is padding. MHA has dropout p on its probabilities (nn.MultiheadAttention(dropout=p)).
 * Training dropout masks are a pure function of (seed, step = Adam steps taken, the example's place in the
 * global batch, layer, site, absolute position, channel / key position): a counter-based hash, no RNG
 * stream, so data-parallel ranks draw the one-process masks.
 *
 * Model file format (little-endian, version 1):
 *   char magic[8] = "PLSSASR\0"; u32 version = 1; u32 n_items, dim, blocks, heads, maxlen; u32 loss;
 *   f32 dropout; u64 n_params; f32 params[n_params] (layout below); u32 crc32 (zlib) of all preceding bytes.
 *   Parameter layout: item_emb (n_items+1, d), pos_emb (T, d), then per block: ln1_w, ln1_b (d), wq (d,d),
 *   bq (d), wk, bk, wv, bv, wo, bo, ln2_w, ln2_b, w1 (d,d), b1, w2 (d,d), b2; then lnf_w, lnf_b (d).
 *   Linear weights are (out, in), as PyTorch's nn.Linear. */
#ifndef PULSE_SASREC_H
#define PULSE_SASREC_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/data.h"
#include "pulse/eval.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_sasrec pulse_sasrec;

typedef enum { PULSE_SASREC_CE = 0, PULSE_SASREC_BCE = 1 } pulse_sasrec_loss;

typedef struct {
    /* architecture */
    int dim;                /* default 64 */
    int blocks;             /* default 2 */
    int heads;              /* default 1 */
    int maxlen;             /* default 50 */
    float dropout;          /* < 0 = per-loss default: 0.2 for CE, 0.3 for BCE (chosen on Beauty valid NDCG@10
                               over 0.2 and the SASRec paper's 0.5; dropout includes the attention probabilities) */
    pulse_sasrec_loss loss; /* default CE */
    int bf16_head; /* 1: the CE head's products (logits over the catalogue and their two gradients, most of an
                      epoch) in bf16 with fp32 sums (pulse/kernels_bf16.h: AVX512-BF16, else the fp32 sgemm);
                      default 0 (fp32). Training only: scoring stays fp32. */
    /* training */
    int batch;      /* default 128 */
    float lr;       /* default 1e-3 */
    float beta1;    /* default 0.9 */
    float beta2;    /* default 0.98 */
    float adam_eps; /* default 1e-8 */
    int epochs;     /* max epochs, default 200 */
    int patience;   /* evaluations without a better valid NDCG@10 before stopping; <= 0 = per-loss default
                       (CE 10, BCE 8) */
    int eval_every; /* evaluate valid every k epochs; <= 0 = per-loss default (CE 1, BCE 4: BCE learns slowly
                       over ~150 epochs and its valid curve is noisy) */
    int eval_users; /* 0 = all users in the per-epoch valid evaluation */
    uint64_t seed;  /* default 42 */
    const char *checkpoint; /* training state written atomically after each epoch (NULL = none) */
    int resume;             /* continue from checkpoint when it exists */
} pulse_sasrec_params;
pulse_sasrec_params pulse_sasrec_default_params(void);
/* The dropout / patience / eval interval actually used for p (resolving the per-loss defaults). */
float pulse_sasrec_effective_dropout(const pulse_sasrec_params *p);
int pulse_sasrec_effective_patience(const pulse_sasrec_params *p);
int pulse_sasrec_effective_eval_every(const pulse_sasrec_params *p);

/* A new model with pmixer's initialisation (Xavier-normal matrices, PyTorch default Conv1d biases, LN 1/0),
 * drawn from p->seed. p may be NULL (defaults). Out-of-range values fail before anything is allocated; *out
 * is NULL on failure. */
pulse_status pulse_sasrec_create(int n_items, const pulse_sasrec_params *p, pulse_sasrec **out);
void pulse_sasrec_free(pulse_sasrec *m);
pulse_status pulse_sasrec_save(const pulse_sasrec *m, const char *path);
/* Load a model file. The architecture, loss and dropout come from the file; of p (may be NULL: defaults) only
 * seed is used, for the RNG of further training. The header's sizes are checked against the file's size
 * before anything is allocated. */
pulse_status pulse_sasrec_load(const char *path, const pulse_sasrec_params *p, pulse_sasrec **out);

int pulse_sasrec_n_items(const pulse_sasrec *m);
int pulse_sasrec_dim(const pulse_sasrec *m);
int pulse_sasrec_maxlen(const pulse_sasrec *m);
int pulse_sasrec_blocks(const pulse_sasrec *m);
int pulse_sasrec_heads(const pulse_sasrec *m);
pulse_sasrec_loss pulse_sasrec_loss_kind(const pulse_sasrec *m);
float pulse_sasrec_dropout(const pulse_sasrec *m);

/* ---- training ---- */
typedef struct {
    int epochs_run;           /* epochs completed (including resumed ones) */
    int best_epoch;           /* 1-based epoch of the best valid NDCG@10 */
    double best_valid_ndcg10; /* on the per-epoch valid evaluation */
    double train_seconds;     /* wall time of training + per-epoch validation (including resumed part) */
    double seconds_per_epoch; /* mean training time of one epoch (without validation) */
    double last_loss;         /* mean loss of the last epoch */
    pulse_metrics valid;      /* best model, valid split, full ranking */
    pulse_metrics test;       /* best model, test split, full ranking */
    double comm_seconds;      /* several MPI ranks: time this rank spent in the gradient all-reduces */
    int64_t steps;            /* optimiser steps this run took */
} pulse_sasrec_train_report;

/* Train m on ds (leave-one-out train prefixes) with early stopping on valid NDCG@10; m ends with the best
 * parameters; report (may be NULL) gets the best model's valid and test metrics. p may be NULL: the defaults
 * with the model's loss (also for train_epoch). */
pulse_status pulse_sasrec_train(pulse_sasrec *m, const pulse_dataset *ds, const pulse_sasrec_params *p,
                                pulse_sasrec_train_report *report);
/* One epoch only (training and no evaluation); returns the mean loss. For benchmarks. */
pulse_status pulse_sasrec_train_epoch(pulse_sasrec *m, const pulse_dataset *ds, const pulse_sasrec_params *p,
                                      double *mean_loss);

/* ---- inference ---- */
/* Scores of all items for n histories: scores (n, n_items + 1), index 0 unused (set to -inf-like). */
pulse_status pulse_sasrec_score(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len,
                                float *scores);
/* Evaluate with the shared harness (full ranking or sampled, valid or test). */
pulse_status pulse_sasrec_evaluate(pulse_sasrec *m, const pulse_dataset *ds, const pulse_eval_params *ep,
                                   pulse_metrics *out);
/* Per-user vectors (n_users, dim): the final hidden state at the last position of the user's history.
 * upto = PULSE_SPLIT_TEST uses the history before the test item (train + valid prefix), PULSE_SPLIT_VALID
 * the train prefix, PULSE_SPLIT_TRAIN the whole sequence. Users with an empty history get a zero vector. */
pulse_status pulse_sasrec_user_vectors(pulse_sasrec *m, const pulse_dataset *ds, pulse_split upto,
                                       float *out);
/* Top-k most cosine-similar other rows of vecs (n, dim) for every row: idx (n, k), cosine (n, k), sorted by
 * descending cosine (ties: lower index first). Rows with fewer than k others get -1 / 0 in the tail. */
pulse_status pulse_sasrec_similar(const float *vecs, int n, int dim, int k, int *idx, float *cosine);

/* ---- low level (tests, benchmarks) ---- */
size_t pulse_sasrec_n_params(const pulse_sasrec *m);
float *pulse_sasrec_params_ptr(pulse_sasrec *m);
float *pulse_sasrec_grads_ptr(pulse_sasrec *m); /* allocated by the first forward_backward */
/* Reseed the model's RNG (negatives, shuffling) and set the dropout masks' seed. */
void pulse_sasrec_set_seed(pulse_sasrec *m, uint64_t seed);
/* One forward + backward on a batch: inputs, targets, negatives are (B, maxlen), left-padded with 0; a
 * position contributes to the loss when its target != 0. negatives is used by BCE (NULL for CE). training
 * = 1 applies dropout, masks hashed from (seed, Adam steps taken, row b, ...): repeated calls between two
 * Adam steps use the same masks. Gradients are SET (not accumulated) into the grads buffer; loss
 * gets the mean loss over the contributing positions. */
pulse_status pulse_sasrec_forward_backward(pulse_sasrec *m, int B, const int *inputs, const int *targets,
                                           const int *negatives, int training, double *loss);
/* One Adam step with the gradients of the last forward_backward (t is the 1-based step). */
void pulse_sasrec_adam_step(pulse_sasrec *m, const pulse_sasrec_params *p, int t);

/* ---- hooks for models built on SASRec (textrec: MoRec, the Thought-Space recommender) ----
 * Item-vector offset: X (n_items + 1, dim), owned by the caller and read at every forward / score, so the
 * item table used everywhere (input embedding and output logits) is E + X. Row 0 of X must be zero. The
 * gradient w.r.t. X equals the item_emb gradient: the first (n_items + 1) * dim floats of the grads buffer
 * after a forward_backward. NULL removes it. Not saved with the model. */
void pulse_sasrec_set_item_offset(pulse_sasrec *m, const float *X);
/* Callbacks into the training loop (pulse_sasrec_train) and forward_backward; any member may be NULL. The
 * model keeps the pointer (the struct must outlive its use); NULL removes them. Checkpoints do not hold the
 * caller's state: pulse_sasrec_train refuses a checkpoint while hooks are set. */
typedef struct {
    void *ctx;
    /* before each epoch's first batch (epoch is 1-based) */
    pulse_status (*before_epoch)(void *ctx, pulse_sasrec *m, int epoch);
    /* before each training batch: the dataset indices of its n users, in batch-row order */
    pulse_status (*before_step)(void *ctx, pulse_sasrec *m, const int *users, int n);
    /* inside forward_backward, after the loss head: h (B, dim) is the final hidden state at the last real
     * position of each of the B sequences (zero rows for empty ones); the hook writes d(extra loss)/dh into
     * dh (B, dim, zeroed before) and returns the extra loss (added to *loss). */
    double (*hidden)(void *ctx, int B, const float *h, float *dh);
    /* after each forward_backward, before the Adam step (the grads buffer holds the batch's gradients, and
     * may be changed: zeroing item_emb's rows freezes the ID embeddings) */
    pulse_status (*after_backward)(void *ctx, pulse_sasrec *m);
    /* a new best valid model: keep the caller's own parameters (save), and put them back at the end (restore)
     */
    void (*save_best)(void *ctx);
    void (*restore_best)(void *ctx);
    /* before each validation evaluation inside pulse_sasrec_train (the caller's state made exact for scoring)
     */
    pulse_status (*before_eval)(void *ctx, pulse_sasrec *m);
} pulse_sasrec_hooks;
void pulse_sasrec_set_hooks(pulse_sasrec *m, const pulse_sasrec_hooks *hooks);

#ifdef __cplusplus
}
#endif
#endif
