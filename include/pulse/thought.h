/* pulse/thought.h — the Thought Space: two BERT-family encoders, B (behaviour text) and R (rationales),
 * aligned with InfoNCE (the PULSE authors' Eq. 1); scoring by cosine; the stand-in pair builder; t-SNE + SVG
 * plot (the paper's Figure 3). */
#ifndef PULSE_THOUGHT_H
#define PULSE_THOUGHT_H

#include <stdint.h>

#include "pulse/core.h"
#include "pulse/encoder.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- InfoNCE (Eq. 1) ----
 * b, r: (N, D) raw (unnormalised) behaviour and rationale vectors. neg: (N, K) row indices into r (each !=
 * i). For row i: logits = [cos(b_i, r_i), cos(b_i, r_neg[i][0]), ...] / tau; loss_i = CE(logits, label 0).
 * Returns the mean loss over N. db, dr (N, D) ACCUMULATE d(mean loss)/d(raw vectors) (NULL to skip: forward
 * only). scratch: at least pulse_infonce_scratch_floats(N, D, K) floats. stats (may be NULL) gets Recall@1 /
 * MRR of the positive among the K+1 candidates and the mean positive / negative cosine. */
typedef struct {
    double loss, recall1, mrr, pos_cos, neg_cos;
    int n;
} pulse_infonce_stats;
size_t pulse_infonce_scratch_floats(int N, int D, int K);
double pulse_infonce_forward_backward(float *db, float *dr, const float *b, const float *r, const int *neg,
                                      int N, int D, int K, float tau, float *scratch,
                                      pulse_infonce_stats *stats);
/* K distinct in-batch negatives per row, drawn from the other N-1 rows (K <= N-1), seeded. neg: (N, K). */
void pulse_infonce_sample_negatives(int *neg, int N, int K, pulse_rng *rng);

/* ---- t-SNE (exact, van der Maaten 2008): X (N, D) -> Y (N, 2) ---- */
typedef struct {
    float perplexity;         /* default 30 */
    int iterations;           /* default 1000 */
    float learning_rate;      /* <= 0: auto = max(N / exaggeration / 4, 50), as scikit-learn; default auto */
    float early_exaggeration; /* default 12, for the first exaggeration_iters */
    int exaggeration_iters;   /* default 250 */
    uint64_t seed;            /* default 42 */
} pulse_tsne_params;
pulse_tsne_params pulse_tsne_default_params(void);
/* Returns the final KL divergence in *kl (may be NULL). */
pulse_status pulse_tsne(const float *X, int N, int D, const pulse_tsne_params *p, float *Y, double *kl);

/* ---- the Figure-3 plot: two panels (before / after training) in one SVG.
 * Each panel's xy (3n, 2) holds n anchors (behaviour), then their n positive rationales, then n negatives;
 * positives are linked to their anchors. */
pulse_status pulse_thought_plot_svg(const char *path, const float *xy_before, const float *xy_after, int n,
                                    const char *title_before, const char *title_after, const char *caption);

/* ---- (behaviour, rationale) pairs ---- */
typedef struct {
    char *user, *behaviour, *rationale;
} pulse_pair;
/* The authors' behaviour text: "[CONTEXT] History: t1, t2, ... [CHOSEN_ITEM] answer" (malloc'd; NULL on OOM).
 */
char *pulse_behaviour_text(const char *const *history, int n, const char *answer);
/* JSONL, one object per line: "user", "rationale", and "behaviour" or ("history" array/string + "answer"). */
pulse_status pulse_pairs_load(const char *path, pulse_pair **pairs, int *n);
void pulse_pairs_free(pulse_pair *pairs, int n);

/* Stand-in pairs from a dataset with titles (until Phase-1 rationales exist): behaviour = the authors' text
 * from the user's training history (last max_history items) and chosen item (the last training item);
 * "rationale" = the chosen item's category path + brand + title words absent from the history. Users are
 * shuffled (seed) and split into n_train and n_heldout disjoint users. */
typedef struct {
    int n_train;     /* default 6000 */
    int n_heldout;   /* default 1000 */
    int max_history; /* default 10 */
    uint64_t seed;   /* default 42 */
} pulse_standin_params;
pulse_standin_params pulse_standin_default_params(void);
struct pulse_dataset;
pulse_status pulse_thought_build_standin_pairs(const struct pulse_dataset *ds, const pulse_standin_params *p,
                                               const char *train_path, const char *heldout_path, int *n_train,
                                               int *n_heldout);

/* ---- training the Thought Space (two encoders B and R, InfoNCE with in-batch negatives) ----
 * Defaults follow the authors' released code: separate encoders, [CLS] pooling, max 128 tokens, K = 10
 * in-batch negatives, tau = 1, batch 16, AdamW lr 2e-5 (weight decay 0.01), 53 epochs. */
typedef struct {
    const char *encoder;       /* HF folder both towers start from (required) */
    const char *heldout;       /* held-out pairs JSONL for the per-epoch validation metric (NULL: none) */
    int shared;                /* 1 = one encoder for B and R; default 0 (separate, as the authors) */
    int epochs;                /* default 53 */
    int batch;                 /* default 16 */
    int negatives;             /* K, default 10 (capped at batch-1) */
    float tau;                 /* default 1.0 */
    float lr;                  /* default 2e-5 */
    float weight_decay;        /* default 0.01 */
    float grad_clip;           /* global-norm clip per encoder; default 0 (off, as the authors) */
    int max_len;               /* default 128 */
    pulse_pooling pooling;     /* default PULSE_POOL_CLS as the authors */
    int freeze_layers;         /* default 0 */
    int proj_dim;              /* linear projection head; default 0 (none, as the authors) */
    float dropout;             /* < 0 = the config's; default -1 */
    int max_pairs;             /* 0 = all training pairs */
    uint64_t seed;             /* default 42 */
    int resume;                /* 1 = continue from out_dir's last checkpoint when present; default 1 */
    pulse_precision precision; /* of the encoders' products in training (PULSE_PREC_BF16: bf16 products,
                                  fp32 sums and master weights); default PULSE_PREC_FP32 */
} pulse_thought_train_params;
pulse_thought_train_params pulse_thought_train_default_params(void);

/* One epoch's validation figures (epoch 0 = before training). */
typedef struct {
    int epoch;
    double train_loss;
    pulse_infonce_stats val; /* held-out: Recall@1 / MRR among 1 + K candidates, mean pos / neg cosine */
    double seconds;
    /* on several MPI ranks (data-parallel): this rank's seconds in the epoch's collectives, and the bytes
     * each rank contributes per step (its embeddings to the all-gather + the encoders' gradients to the
     * all-reduce); 0 on one rank */
    double comm_seconds, comm_bytes_per_step;
} pulse_thought_epoch;

/* Trains and writes out_dir/space.json + out_dir/ckpt-E/{behaviour,rationale}/ (HF folders) after every
 * epoch, atomically switched, resumable. history (may be NULL) receives up to max_hist epochs (epoch 0
 * first). */
pulse_status pulse_thought_train(const char *pairs_path, const char *out_dir,
                                 const pulse_thought_train_params *p, pulse_thought_epoch *history,
                                 int max_hist, int *n_hist);

/* ---- using a trained space ---- */
typedef struct pulse_thought_space pulse_thought_space;
typedef struct {
    pulse_pooling pooling; /* of a plain encoder folder (a trained space keeps its own); default AUTO */
    int max_len;           /* tokens per text; default 128 */
} pulse_thought_space_params;
pulse_thought_space_params pulse_thought_space_default_params(void);
/* dir is a trained space (space.json) or a plain encoder folder (then B = R = that encoder, untrained).
 * params may be NULL (defaults). */
pulse_status pulse_thought_space_load(const char *dir, const pulse_thought_space_params *params,
                                      pulse_thought_space **out);
void pulse_thought_space_free(pulse_thought_space *s);
int pulse_thought_space_dim(const pulse_thought_space *s);
/* out (n, D), L2-normalised. */
pulse_status pulse_thought_embed_behaviour(pulse_thought_space *s, const char *const *texts, int n,
                                           float *out);
pulse_status pulse_thought_embed_rationale(pulse_thought_space *s, const char *const *texts, int n,
                                           float *out);
/* cosine (n) of each rationale with one behaviour text. */
pulse_status pulse_thought_score(pulse_thought_space *s, const char *behaviour, const char *const *rationales,
                                 int n, float *cosine);
/* The k best rationales for a behaviour: idx (k) and cosine (k), best first; k is capped at n. */
pulse_status pulse_thought_topk(pulse_thought_space *s, const char *behaviour, const char *const *rationales,
                                int n, int k, int *idx, float *cosine);
/* Held-out evaluation on pairs: Recall@1 / MRR of the own rationale among 1 + K sampled others (seeded). */
pulse_status pulse_thought_evaluate(pulse_thought_space *s, const pulse_pair *pairs, int n, int K,
                                    uint64_t seed, pulse_infonce_stats *out);

#ifdef __cplusplus
}
#endif
#endif
