/* pulse/encoder.h — BERT-family text encoders (BERT: all-MiniLM-L6-v2, bge-small-en-v1.5; DistilBERT) read
 * from Hugging Face folders (config.json, model.safetensors, vocab.txt or tokenizer.json): WordPiece
 * tokenizer, batched multi-threaded inference with CLS or mean pooling, and training (forward with saved
 * activations, backward through the whole encoder, AdamW with weight decay and gradient clipping, frozen
 * lower layers, an optional linear projection head). A trained encoder is saved as an HF folder again, so it
 * loads like any other.
 *
 * Output vector of one text (dimension D = pulse_encoder_dim()):
 *     h = encoder(tokens)              (T, H) last hidden state, H = hidden size
 *     p = pool(h)                      (H)    [CLS] row, or mean over the real (non-pad) tokens
 *     y = proj ? p @ Wp^T + bp : p     (D)    optional linear projection head (D = proj_dim, else H)
 *     out = normalize ? y / ||y|| : y  (D)
 * pulse_encoder_encode() and pulse_encoder_forward_train() both produce `out`; backward takes d(out).
 *
 * Thread-safety: one pulse_encoder is used by one thread at a time (it owns its scratch buffers); the work
 * inside a call is spread over OpenMP/OpenBLAS threads. */
#ifndef PULSE_ENCODER_H
#define PULSE_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_encoder pulse_encoder;

typedef enum {
    PULSE_POOL_AUTO = -1, /* from the folder: "pulse_pooling" in config.json (a saved encoder), else
                             sentence-transformers 1_Pooling/config.json, else CLS */
    PULSE_POOL_CLS = 0,   /* the [CLS] row (bge-small, the PULSE authors' DistilBERT) */
    PULSE_POOL_MEAN = 1,  /* mean over the real tokens, [CLS]/[SEP] included (all-MiniLM-L6-v2) */
} pulse_pooling;

/* Precision of the matrix products (everything else is fp32 in both): */
typedef enum {
    PULSE_PREC_FP32 = 0, /* OpenBLAS sgemm */
    PULSE_PREC_BF16 = 1, /* inputs rounded to bfloat16, fp32 sums (AVX512-BF16 kernel, pulse/kernels_bf16.h);
                            on a CPU without AVX512-BF16 the products run in fp32 */
    PULSE_PREC_AUTO = 2, /* BF16 where the CPU's bf16 products are the faster (pulse_cpu_bf16_fast: AMD Zen 4
                            and later), FP32 elsewhere (Intel's vdpbf16ps runs at half its fp32 FMA rate) */
} pulse_precision;
/* The precision p runs at on this CPU: AUTO resolved (FP32 or BF16); FP32 and BF16 as they are. */
pulse_precision pulse_precision_resolve(pulse_precision p);

typedef struct {
    pulse_pooling pooling; /* default PULSE_POOL_AUTO */
    int max_len;           /* tokens per text incl. [CLS] and [SEP], longer texts are truncated; default 128,
                              capped at the model's max_position_embeddings */
    int normalize;         /* 1 = L2-normalise output vectors (default 1) */
    int threads;           /* > 0: the threads of this encoder's calls (pulse_threads_enter around each);
                              <= 0: the caller's setting. Loading changes no process-wide setting. */
    int batch_size;        /* texts per inference batch (sorted by length, padded per batch); default 64 */
    pulse_precision precision; /* of the inference products; default PULSE_PREC_AUTO (bf16 where it is the
                                  faster; parity with sentence-transformers fp32 holds at cosine >= 0.9999
                                  in bf16; fp32 on CPUs without AVX512-BF16) */
} pulse_encoder_params;

pulse_encoder_params pulse_encoder_default_params(void);

/* Load an HF folder. params may be NULL (defaults). Errors name the file and field / tensor; *out is NULL on
 * failure. */
pulse_status pulse_encoder_load(const char *dir, const pulse_encoder_params *params, pulse_encoder **out);
void pulse_encoder_free(pulse_encoder *enc);

/* ---- facts ---- */
int pulse_encoder_dim(const pulse_encoder *enc);      /* D: output size (projection head or hidden size) */
int pulse_encoder_hidden(const pulse_encoder *enc);   /* H: hidden size */
int pulse_encoder_n_layers(const pulse_encoder *enc); /* transformer layers */
int pulse_encoder_vocab_size(const pulse_encoder *enc);
const char *pulse_encoder_arch(const pulse_encoder *enc); /* "bert" or "distilbert" */
pulse_encoder_params pulse_encoder_get_params(const pulse_encoder *enc);
/* Change pooling / normalize / max_len / threads / batch_size / precision after load; NULL params = the
 * defaults. */
pulse_status pulse_encoder_set_params(pulse_encoder *enc, const pulse_encoder_params *params);
size_t pulse_encoder_n_params(const pulse_encoder *enc); /* float parameters (incl. the projection head) */

/* ---- tokenizer (BERT BasicTokenizer + greedy longest-match WordPiece) ----
 * ids gets [CLS] tokens... [SEP], truncated to min(max_ids, params.max_len); *n_ids = count. */
pulse_status pulse_encoder_tokenize(const pulse_encoder *enc, const char *text, int *ids, int max_ids,
                                    int *n_ids);
/* Batch form: ids (n, max_len) row-major, rows padded with the pad id; lens (n). max_len = params.max_len. */
pulse_status pulse_encoder_tokenize_batch(const pulse_encoder *enc, const char *const *texts, int n, int *ids,
                                          int *lens);
/* The vocabulary entry of an id (NULL when out of range). */
const char *pulse_encoder_token(const pulse_encoder *enc, int id);

/* ---- inference ----
 * out (n, D) in input order. Texts are sorted by token length and run in batches of params.batch_size,
 * each padded only to its own longest text. */
pulse_status pulse_encoder_encode(pulse_encoder *enc, const char *const *texts, int n, float *out);
/* The same on already tokenized input: ids (n, stride) rows, lens (n) each in [2, params.max_len]. */
pulse_status pulse_encoder_encode_ids(pulse_encoder *enc, const int *ids, const int *lens, int n, int stride,
                                      float *out);
/* Last hidden state of one text (for tests / debugging): hidden (n_tokens, H), *n_tokens set. */
pulse_status pulse_encoder_hidden_states(pulse_encoder *enc, const char *text, float *hidden, int max_tokens,
                                         int *n_tokens);

/* ---- training ----
 * Typical step (two encoders B and R, InfoNCE on their outputs):
 *     pulse_encoder_zero_grad(b); pulse_encoder_zero_grad(r);
 *     pulse_encoder_forward_train(b, behaviours, n, yb);   pulse_encoder_forward_train(r, rationales, n, yr);
 *     ... loss, dyb, dyr ...
 *     pulse_encoder_backward(b, dyb);  pulse_encoder_backward(r, dyr);
 *     pulse_encoder_step(b, lr, &gn_b); pulse_encoder_step(r, lr, &gn_r);
 * Each forward_train keeps the activations of its batch until the next forward_train; a shared B/R encoder
 * runs behaviours and rationales as ONE batch of 2n texts. Gradients accumulate across backward calls until
 * zero_grad. */
typedef struct {
    float lr;           /* default learning rate when step() gets lr <= 0; default 2e-5 */
    float weight_decay; /* AdamW decoupled weight decay; default 0.01 (LayerNorm and biases included, as
                           torch.optim.AdamW(model.parameters()) does) */
    float beta1, beta2; /* 0.9, 0.999 */
    float eps;          /* 1e-8 */
    float grad_clip;   /* clip the global L2 norm of all trainable gradients to this; <= 0 = off; default 1 */
    float dropout;     /* hidden dropout probability in training (embeddings, attention output, FFN output);
                          < 0 = the config's (hidden_dropout_prob / dropout), 0 = off; default -1.
                          Attention-probability dropout is not applied. */
    int freeze_layers; /* the embeddings and the lower n transformer layers get no gradient or update;
                          default 0 */
    int proj_dim;      /* > 0: add a linear projection head H -> proj_dim (Xavier-uniform init, zero bias)
                          when the encoder has none; an existing head is kept; default 0 */
    int max_batch;     /* largest n given to forward_train (activation buffers are sized for it at
                          max_len tokens); default 32 */
    uint64_t seed;     /* dropout masks and projection-head init; default 42 */
    pulse_precision precision; /* of the products in forward_train and backward (master weights, gradients
                                  and AdamW state stay fp32); default PULSE_PREC_FP32; AUTO as above */
} pulse_encoder_train_params;

pulse_encoder_train_params pulse_encoder_train_default_params(void);

/* Allocate gradients, AdamW state and activation buffers. tp may be NULL (defaults). */
pulse_status pulse_encoder_train_begin(pulse_encoder *enc, const pulse_encoder_train_params *tp);
/* Release the training buffers (the weights stay as trained). */
void pulse_encoder_train_end(pulse_encoder *enc);
/* Forward in training mode (dropout on if configured): out (n, D), activations saved. n <= max_batch. */
pulse_status pulse_encoder_forward_train(pulse_encoder *enc, const char *const *texts, int n, float *out);
/* Same on tokenized input (ids (n, stride), lens (n)). */
pulse_status pulse_encoder_forward_train_ids(pulse_encoder *enc, const int *ids, const int *lens, int n,
                                             int stride, float *out);
/* Per-example dropout masks for the following forward_train calls (until set again): row b of each batch
 * is example ids[b] (the n ids are copied; each batch must then have n rows). Every mask element is a hash
 * of (the training seed, the optimizer steps taken, the example id, the token position, the channel), so
 * an example's masks do not depend on the other rows of its batch, the batch's padding or the process
 * that runs it: data-parallel training over MPI ranks draws the one-process masks. Call it before each
 * forward_train of a step with distinct ids for distinct texts. ids NULL or n 0: the default again (one
 * stream for the whole batch, drawn from the seed). */
pulse_status pulse_encoder_set_example_ids(pulse_encoder *enc, const int64_t *ids, int n);
/* dout (n, D) = dLoss/d(out) of the last forward_train; parameter gradients ACCUMULATE. */
pulse_status pulse_encoder_backward(pulse_encoder *enc, const float *dout);
void pulse_encoder_zero_grad(pulse_encoder *enc);
/* Global L2 norm of the trainable gradients. */
double pulse_encoder_grad_norm(const pulse_encoder *enc);
/* Clip (tp.grad_clip) then one AdamW step with learning rate lr (<= 0: tp.lr). *grad_norm (may be NULL) gets
 * the norm before clipping. */
pulse_status pulse_encoder_step(pulse_encoder *enc, float lr, double *grad_norm);
/* Set training mode options after train_begin (freeze_layers, dropout, grad_clip, weight_decay, lr); NULL tp
 * = the defaults. */
pulse_status pulse_encoder_set_train_params(pulse_encoder *enc, const pulse_encoder_train_params *tp);
/* Raw access for tests and custom optimisers: number of float parameters and pointers into the flat
 * parameter / gradient arrays (grads is NULL before train_begin). Order is internal but stable. Fetching the
 * parameter pointer drops bf16 inference's packed copies of the weights: fetch it again before each round of
 * writes (a pointer kept across an encode and written later leaves that copy stale). */
float *pulse_encoder_params_data(pulse_encoder *enc);
float *pulse_encoder_grads_data(pulse_encoder *enc);

/* ---- saving ----
 * An HF folder: config.json (the loaded config, plus "pulse_pooling", "pulse_proj_dim"), model.safetensors
 * (F32, HF tensor names; the head as "pulse_proj.weight"/"pulse_proj.bias"), vocab.txt,
 * tokenizer_config.json, 1_Pooling/config.json. Every file is written atomically; dir is created when
 * missing. */
pulse_status pulse_encoder_save(const pulse_encoder *enc, const char *dir);
/* AdamW state (m, v, step count) for resuming training, as one safetensors file (atomic). Load requires
 * train_begin first and the same parameter layout. */
pulse_status pulse_encoder_save_train_state(const pulse_encoder *enc, const char *path);
pulse_status pulse_encoder_load_train_state(pulse_encoder *enc, const char *path);
int pulse_encoder_train_step_count(const pulse_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
