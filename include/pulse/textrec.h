/* pulse/textrec.h — text-aware sequential recommenders over the whole catalogue, built on SASRec-CE
 * (pulse/sasrec.h: its stack, full-softmax CE, trainer and evaluation harness) through its item-offset and
 * hidden-state hooks:
 *
 *   MoRec (Yuan et al., SIGIR 2023):  t_i = encoder(text_i)                         (V, D), L2-normalised
 *                                     item_i = [E_id[i]] + W t_i + b                (V, C)
 *     frozen (the cheap variant, --finetune-layers 0): t_i computed once for the catalogue;
 *     end to end (--finetune-layers K): the top K encoder layers are trained; the catalogue is re-encoded
 *     every epoch (or every step) and, at each step, up to ft_items of the batch's target items are
 *     re-encoded with gradient (d t_i = W^T d item_i through the encoder).
 *   Thought-Space recommender (ours): t_i = R(text_i), R the rationale encoder of a Thought Space;
 *                                     item_i = E_id[i] + W t_i + b;
 *     loss = CE(next item) + lambda * InfoNCE(u, r):  u = P h_last (D), r = R(the user's rationale) (D),
 *     h_last the SASRec state at the last training position, in-batch negatives, temperature tau.
 * Item text: "title. brand. categories. description" (the fields the dataset has).
 *
 * Model file (little-endian, version 1): char magic[8] = "PLSTXRC\0"; u32 version, arch, use_id, n_items,
 * D, dim, blocks, heads, maxlen, text_len, finetune_layers; f32 dropout, lambda, tau; u32 len + bytes of the
 * encoder / space folder; u64 n_sasrec_params; f32 sasrec params (pulse/sasrec.h layout), W (dim, D),
 * b (dim), P (D, dim) (thought only), T (n_items + 1, D) the item text vectors (row 0 zero: eval needs no
 * encoder); u32 crc32 of all preceding bytes. An end-to-end model also writes its fine-tuned encoder to the
 * folder FILE.encoder (for zero-shot transfer). */
#ifndef PULSE_TEXTREC_H
#define PULSE_TEXTREC_H

#include <stdint.h>

#include "pulse/core.h"
#include "pulse/data.h"
#include "pulse/encoder.h"
#include "pulse/eval.h"
#include "pulse/sasrec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_textrec pulse_textrec;

typedef enum { PULSE_TEXTREC_MOREC = 0, PULSE_TEXTREC_THOUGHT = 1 } pulse_textrec_arch;
const char *pulse_textrec_arch_name(pulse_textrec_arch a); /* "morec" | "thought" */

typedef struct {
    pulse_textrec_arch arch;    /* default MOREC */
    const char *encoder;        /* HF encoder folder (morec: required) */
    const char *space;          /* thought: a trained space (space.json) or an encoder folder (default:
                                   encoder) */
    const char *pairs;          /* thought: JSONL with "user" and "rationale" (pulse thought pairs, pulse
                                   rationale export); required for lambda > 0 */
    const char *cache_dir;      /* text vectors cached here by a hash of (texts, encoder, arch, text_len);
                                   NULL = no cache */
    int text_len;               /* tokens per item text incl. [CLS]/[SEP]; default 64 */
    int use_id;                 /* 1 = ID embeddings summed with the text vectors; default 1 */
    int finetune_layers;        /* morec end to end: top encoder layers trained; default 0 (frozen) */
    int refresh_every_step;     /* end to end: re-encode the catalogue every step (1) or every epoch (0) */
    int ft_items;               /* end to end: target items re-encoded with gradient per step; default 32 */
    float ft_lr;                /* end to end: encoder AdamW learning rate; default 5e-5 */
    float lambda;               /* thought: weight of the InfoNCE term; default 0.1 */
    float tau;                  /* thought: InfoNCE temperature; default 0.1 */
    int negatives;              /* thought: in-batch negatives K (capped at rows - 1); default 16 */
    pulse_precision precision;  /* encoder inference products; default AUTO (bf16 where faster) */
    pulse_sasrec_params sasrec; /* the SASRec stack and its training (loss must be CE; checkpoint unused) */
} pulse_textrec_params;
pulse_textrec_params pulse_textrec_default_params(void);

/* ---- item text and vectors ---- */
/* The text of item i (malloc'd): the title, brand, categories and description fields the dataset has,
 * joined with ". "; "" when it has none. NULL on out of memory. */
char *pulse_textrec_item_text(const pulse_dataset *ds, int item);
/* Text vectors of the whole catalogue: out (n_items + 1, D), row 0 zero, L2-normalised rows, from the
 * encoder (morec) or the space's rationale encoder R (thought), in batches; read from / written to
 * p->cache_dir when set. *out is malloc'd. */
pulse_status pulse_textrec_item_vectors(const pulse_dataset *ds, const pulse_textrec_params *p, float **out,
                                        int *D);

/* ---- model ---- */
typedef struct {
    pulse_sasrec_train_report sasrec; /* epochs, best epoch, valid / test metrics of the best model */
    double encode_seconds;            /* item (and rationale) text vectors */
    int pair_users;                   /* thought: training users with a rationale */
    double last_align_loss;           /* thought: mean InfoNCE term of the last epoch (unweighted) */
} pulse_textrec_train_report;

/* Build the text vectors, train with early stopping on valid NDCG@10 (the best model is kept) and fill
 * report (may be NULL). p may not be NULL (the encoder is required). */
pulse_status pulse_textrec_train(const pulse_dataset *ds, const pulse_textrec_params *p, pulse_textrec **out,
                                 pulse_textrec_train_report *report);
void pulse_textrec_free(pulse_textrec *m);
pulse_status pulse_textrec_save(const pulse_textrec *m, const char *path);
pulse_status pulse_textrec_load(const char *path, pulse_textrec **out);
pulse_textrec_arch pulse_textrec_get_arch(const pulse_textrec *m);
int pulse_textrec_n_items(const pulse_textrec *m);
int pulse_textrec_use_id(const pulse_textrec *m);
int pulse_textrec_finetune_layers(const pulse_textrec *m);
const char *pulse_textrec_encoder_dir(const pulse_textrec *m); /* the encoder / space folder trained with */
pulse_sasrec *pulse_textrec_sasrec(pulse_textrec *m);          /* the underlying stack (offset set) */

/* Scores of all items for n histories, as pulse_sasrec_score (a pulse_score_fn with ctx = the model). */
pulse_status pulse_textrec_score_fn(void *ctx, int n, const int *users, const int *const *hist,
                                    const int *hist_len, float *scores);
pulse_status pulse_textrec_evaluate(pulse_textrec *m, const pulse_dataset *ds, const pulse_eval_params *ep,
                                    pulse_metrics *out);

/* Zero-shot transfer: a model for ds_new's catalogue (another domain) from m's trained stack, projection and
 * text encoder, with no training on ds_new: item vectors from text only (W t_i + b; ID embeddings zero).
 * encoder (may be NULL) overrides the folder the model was trained with. */
pulse_status pulse_textrec_transfer(const pulse_textrec *m, const pulse_dataset *ds_new, const char *encoder,
                                    const char *cache_dir, pulse_textrec **out);
/* The same with the new catalogue's text vectors given: T (n_items + 1, D), row 0 ignored. */
pulse_status pulse_textrec_transfer_vectors(const pulse_textrec *m, int n_items, const float *T, int D,
                                            pulse_textrec **out);

/* ---- cold start ----
 * Users whose held-out item of split s never occurs in any user's training prefix (an item no ID model was
 * trained on). users (malloc'd, ascending), *n may be 0. */
pulse_status pulse_textrec_cold_users(const pulse_dataset *ds, pulse_split s, int **users, int *n);
/* Full ranking (ep->history applies, ep->protocol must be FULL) over the given users only, with any
 * scorer. */
pulse_status pulse_textrec_evaluate_users(const pulse_dataset *ds, const pulse_eval_params *ep,
                                          const int *users, int n, pulse_score_fn fn, void *ctx,
                                          pulse_metrics *out);

/* ---- low level (tests) ----
 * One forward + backward on a batch without an update: users (B) their dataset indices (for the rationale
 * term), inputs / targets (B, maxlen) as pulse_sasrec_forward_backward; training = 0 turns dropout off.
 * Gradients of the projection and (thought) P are SET; *loss gets CE + lambda * InfoNCE. */
pulse_status pulse_textrec_forward_backward(pulse_textrec *m, int B, const int *users, const int *inputs,
                                            const int *targets, int training, double *loss);
/* Flat own parameters [W (dim, D), b (dim), P (D, dim) when thought] and their gradients. */
size_t pulse_textrec_n_own_params(const pulse_textrec *m);
float *pulse_textrec_own_params(pulse_textrec *m);
float *pulse_textrec_own_grads(pulse_textrec *m);
/* Recompute the item offsets after writing own params directly. */
void pulse_textrec_refresh(pulse_textrec *m);
/* A model over given text vectors, for tests and callers with their own vectors: T (n_items + 1, D) copied
 * (row 0 ignored); rationale vectors R (n_users, D) with has_r (n_users) 0/1 per user (NULL: no term). */
pulse_status pulse_textrec_create(int n_items, const float *T, int D, const float *R, const uint8_t *has_r,
                                  int n_users, const pulse_textrec_params *p, pulse_textrec **out);
/* Train a created model (no text encoding); report may be NULL. */
pulse_status pulse_textrec_fit(pulse_textrec *m, const pulse_dataset *ds, const pulse_textrec_params *p,
                               pulse_textrec_train_report *report);

#ifdef __cplusplus
}
#endif
#endif
