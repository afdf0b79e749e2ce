/* pulse/lm.h — decoder-only language models from GGUF files (llama, gemma3, qwen2, phi3): loading, a paged
 * KV cache holding many sequences, one batched forward over tokens of many sequences (continuous batching),
 * forks that share a prompt's KV prefix, sampling, generation and scoring. In the manner of llama.h:
 *
 *   pulse_lm *m;          pulse_lm_load("model.gguf", NULL, &m);
 *   pulse_lm_ctx *c;      pulse_lm_ctx_new(m, NULL, &c);
 *   int s = pulse_lm_seq_new(c);
 *   pulse_lm_batch b = {n, tokens, seq_ids, want_logits};  pulse_lm_decode(c, &b);
 *   const float *logits = pulse_lm_logits(c, n - 1);
 *
 * Weights stay quantised in the file mapping; activations are float32, the KV cache float16 (computed as
 * llama.cpp's CPU backend does, see src/lm/forward.c). Positions are
 * implicit: every token of a batch is appended at the end of its sequence, in batch order. */
#ifndef PULSE_LM_H
#define PULSE_LM_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/gguf.h"
#include "pulse/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_lm pulse_lm;
typedef struct pulse_lm_ctx pulse_lm_ctx;

typedef enum {
    PULSE_LM_ARCH_LLAMA = 0,
    PULSE_LM_ARCH_GEMMA3 = 1,
    PULSE_LM_ARCH_QWEN2 = 2,
    PULSE_LM_ARCH_PHI3 = 3,
} pulse_lm_arch;

/* Hyper-parameters read from the GGUF metadata (per-layer values are those of layer 0 where they vary). */
typedef struct {
    pulse_lm_arch arch;
    const char *arch_name; /* "llama", "gemma3", ... */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int n_rot;           /* rotary dimensions per head (<= head_dim) */
    int rope_neox;       /* 1: rotate pairs (i, i + n_rot/2) (NEOX); 0: adjacent pairs (2i, 2i+1) */
    float rope_base;     /* global layers */
    float rope_base_swa; /* sliding-window layers */
    float rope_scale;    /* linear position scaling (1 = none) */
    float norm_eps;
    int n_swa;        /* sliding window in tokens (0 = none) */
    int swa_pattern;  /* layer il is sliding-window when n_swa > 0 and il % swa_pattern < swa_pattern - 1 */
    float attn_scale; /* multiplier of q.k */
    float final_softcap;        /* tanh soft-capping of the logits (0 = none) */
    int bos_id, eos_id, eot_id; /* -1 when absent */
    int add_bos;                /* tokenizer.ggml.add_bos_token */
} pulse_lm_hparams;

typedef struct {
    int n_threads; /* threads of this model's contexts whose own n_threads is <= 0; <= 0: the caller's OpenMP
                      setting when the context is made. Loading changes no process-wide setting. */
} pulse_lm_params;
pulse_lm_params pulse_lm_default_params(void);

pulse_status pulse_lm_load(const char *path, const pulse_lm_params *params /* NULL = defaults */,
                           pulse_lm **out);
void pulse_lm_free(pulse_lm *m);
const pulse_lm_hparams *pulse_lm_get_hparams(const pulse_lm *m);
const pulse_gguf *pulse_lm_gguf(const pulse_lm *m); /* the open file, e.g. to build its tokenizer */
/* 1 when token id is an end-of-generation token (eos, eot, <end_of_turn>, <|im_end|>, <|endoftext|>, ...). */
int pulse_lm_is_eog(const pulse_lm *m, int token);
/* Bytes of the file mapping (weights) and of the KV cache per token (all layers, K and V). */
size_t pulse_lm_file_bytes(const pulse_lm *m);
size_t pulse_lm_kv_bytes_per_token(const pulse_lm *m);

/* ---- contexts: a KV cache of fixed-size blocks shared by up to n_seq_max sequences ---- */
/* What the text-level calls do with a prompt that does not fit the model's trained context (n_ctx_train)
 * together with its continuation (score) or its max_new_tokens (generate). The token-level calls always
 * refuse. */
typedef enum {
    PULSE_LM_TRUNCATE_NONE = 0, /* refuse: PULSE_ERR_RANGE naming the prompt and the limit */
    PULSE_LM_TRUNCATE_LEFT,     /* drop the oldest prompt tokens (a leading BOS is kept) */
    PULSE_LM_TRUNCATE_RIGHT,    /* drop the last prompt tokens */
} pulse_lm_truncate;

typedef struct {
    int n_ctx;                  /* max tokens of one sequence */
    int n_seq_max;              /* max live sequences */
    int n_batch;                /* max tokens in one pulse_lm_decode */
    int n_kv_tokens;            /* KV pool capacity in tokens over all sequences (0 = n_ctx * n_seq_max) */
    int kv_block;               /* tokens per KV block (16) */
    int keep_activations;       /* 1: keep every layer's input (residual stream) of the last decode */
    pulse_lm_truncate truncate; /* prompts too long for n_ctx_train in the text-level calls (NONE: refuse) */
    int n_threads;    /* threads of this context's calls (pulse_threads_enter around each decode); <= 0: the
                         model's n_threads */
    int kv_rows_only; /* 1: no transposed K / V copies for the AVX2 / AVX-512 attention: half the KV memory,
                         the row kernels, the same logits bit for bit (slower attention) */
} pulse_lm_ctx_params;
pulse_lm_ctx_params pulse_lm_ctx_default_params(void);

pulse_status pulse_lm_ctx_new(const pulse_lm *m, const pulse_lm_ctx_params *params /* NULL = defaults */,
                              pulse_lm_ctx **out);
void pulse_lm_ctx_free(pulse_lm_ctx *c);
const pulse_lm *pulse_lm_ctx_model(const pulse_lm_ctx *c);
/* Prompt tokens dropped by truncation in the last pulse_lm_generate_text / pulse_lm_score_text call on c
 * (over all its prompts; 0 when none), so a caller can say so. */
int pulse_lm_ctx_n_truncated(const pulse_lm_ctx *c);

/* Sequences: ids in [0, n_seq_max). seq_new returns -1 (error set) when none is free. */
int pulse_lm_seq_new(pulse_lm_ctx *c);
/* A new sequence holding the same tokens as parent; the parent's KV blocks are shared (copy-on-write of
 * the partly filled last block), so the prefix is neither recomputed nor copied. */
pulse_status pulse_lm_seq_fork(pulse_lm_ctx *c, int parent, int *child);
void pulse_lm_seq_free(pulse_lm_ctx *c, int seq);
int pulse_lm_seq_len(const pulse_lm_ctx *c, int seq);
/* Drop the tokens at positions >= n (n <= len). */
pulse_status pulse_lm_seq_truncate(pulse_lm_ctx *c, int seq, int n);
/* KV blocks currently in use over all sequences (shared blocks counted once). */
int pulse_lm_kv_blocks_used(const pulse_lm_ctx *c);
/* Bytes of KV cache those blocks hold: K and V, and their transposed copies where the CPU's attention reads
 * them (AVX2 / AVX-512: twice pulse_lm_kv_bytes_per_token per cached token). */
size_t pulse_lm_kv_bytes_used(const pulse_lm_ctx *c);

/* ---- the batched forward ---- */
typedef struct {
    int n_tokens;
    const int *tokens;     /* (n_tokens) */
    const int *seq;        /* (n_tokens) sequence of each token; tokens are appended in batch order */
    const uint8_t *logits; /* (n_tokens) 1 = compute logits for this token; NULL = only the last one */
} pulse_lm_batch;
/* Runs the model on the batch (split internally into chunks of n_batch tokens). */
pulse_status pulse_lm_decode(pulse_lm_ctx *c, const pulse_lm_batch *b);
/* Logits (n_vocab) of batch token i of the last decode, or NULL when they were not asked for. */
const float *pulse_lm_logits(const pulse_lm_ctx *c, int i);
/* Residual-stream input of layer il (il == n_layer: the final norm's input) for the tokens of the last
 * decode chunk, (n_tokens, n_embd); NULL unless keep_activations. */
const float *pulse_lm_activations(const pulse_lm_ctx *c, int il, int *n_tokens);

/* ---- sampling ---- */
typedef struct {
    float temp;           /* <= 0: greedy (argmax) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float repeat_penalty; /* 1: off; llama.cpp semantics (logit > 0 ? /p : *p) over the last repeat_last_n */
    int repeat_last_n;
    uint64_t seed;
} pulse_lm_sampler_params;
pulse_lm_sampler_params pulse_lm_sampler_default_params(void);

typedef struct pulse_lm_sampler pulse_lm_sampler;
pulse_status pulse_lm_sampler_new(const pulse_lm_sampler_params *p, int n_vocab, pulse_lm_sampler **out);
void pulse_lm_sampler_free(pulse_lm_sampler *s);
/* Reseed (each sequence of a batch has its own sampler for reproducibility independent of batching). */
void pulse_lm_sampler_seed(pulse_lm_sampler *s, uint64_t seed);
/* Pick a token from logits (n_vocab; not modified). history: the tokens so far (for the penalty). */
int pulse_lm_sample(pulse_lm_sampler *s, const float *logits, const int *history, int n_history);
/* log softmax(logits)[token] */
double pulse_lm_logprob(const float *logits, int n_vocab, int token);

/* ---- generation over token ids (continuous batching) ---- */
typedef struct {
    int max_new_tokens;
    pulse_lm_sampler_params sampler; /* request r is seeded with sampler.seed + r */
    int n_stop;
    const char *const *stop; /* stop strings (need a detokenizer: token_piece below) */
    /* Optional detokenizer for stop strings: writes the bytes of token into buf (cap), returns the length. */
    int (*token_piece)(void *ud, int token, char *buf, int cap);
    void *token_piece_ud;
    int stop_at_eog; /* 1 (default): stop on end-of-generation tokens (not emitted) */
    /* 1: the longest token prefix all n requests share (each keeps >= 1 own token) is prefilled once into a
     * root sequence that every request forks, so a common instruction is neither recomputed nor copied;
     * the root takes one sequence of the context. 0 (default): off (identical prompts are still shared). */
    int share_prefix;
    const uint64_t
        *seeds; /* (n) per-request sampler seeds; NULL (default): request r gets sampler.seed + r */
    /* Called as request r finishes (its out / n_out / stop_hit are final), e.g. to commit it; a status other
     * than PULSE_OK stops the generation and is returned (the callback sets the message). NULL: none. */
    pulse_status (*on_done)(void *ud, int r);
    void *on_done_ud;
    struct pulse_lm_gen_stats *stats; /* NULL, or filled on return */
} pulse_lm_gen_params;
/* What one pulse_lm_generate call computed. */
typedef struct pulse_lm_gen_stats {
    int64_t prompt_tokens;   /* prompt tokens of the requests admitted */
    int64_t prompt_computed; /* prompt tokens that went through the model (shared prefixes once) */
    int64_t gen_tokens;      /* tokens sampled (end-of-generation tokens included) */
    int64_t steps;           /* batched forwards */
    int shared_prefix;       /* tokens of the shared root prefix (0: none) */
} pulse_lm_gen_stats;
pulse_lm_gen_params pulse_lm_gen_default_params(void);

typedef struct {
    const int *prompt; /* token ids (the caller adds BOS if the model wants one) */
    int n_prompt;
    int *out;     /* caller's buffer of max_new_tokens ids */
    int n_out;    /* set: tokens generated (a matched stop string's tokens are kept; see stop_hit) */
    int stop_hit; /* set: 0 max tokens, 1 end-of-generation token, 2 stop string */
} pulse_lm_request;

/* Generates for n requests; up to n_seq_max of them run at once, sequences join as others finish (a finished
 * request's slot is refilled in the next step). Requests with identical prompts are prefilled once and
 * forked; with share_prefix, so is the prefix all prompts share. */
pulse_status pulse_lm_generate(pulse_lm_ctx *c, pulse_lm_request *reqs, int n, const pulse_lm_gen_params *p);

/* ---- scoring ---- */
/* logprob[i] = sum over continuation tokens of log p(cont | prompt, earlier cont tokens), for n pairs.
 * Pairs with the same prompt share one prefill (forks). n_prompt must be >= 1. */
pulse_status pulse_lm_score(pulse_lm_ctx *c, const int *const *prompts, const int *n_prompts,
                            const int *const *conts, const int *n_conts, int n, double *logprob);

/* ---- text level (the GGUF's tokenizer) ---- */
/* Tokenize text into a malloc'ed array (*ids, *n): add_bos as the tokenizer wants it when add_bos < 0. */
pulse_status pulse_lm_tokenize_alloc(const pulse_tokenizer *tok, const char *text, int add_bos,
                                     int parse_special, int **ids, int *n);
/* A prompt whose answer has begun: chat (and the tokenizer has a chat format): the optional system message
 * and the user turn in the model's chat format with the assistant opener, then assistant_prefix as text;
 * else (raw) the text system + "\n\n" + user + "\n" + assistant_prefix (empty parts and their separators
 * left out) with BOS as the tokenizer wants. Control-token text inside any part stays text. *ids malloc'ed.
 */
pulse_status pulse_lm_chat_prompt(const pulse_tokenizer *tok, int chat, const char *system, const char *user,
                                  const char *assistant_prefix, int **ids, int *n);
/* Generate a continuation of each prompt. chat: wrap the prompt as a user turn (after an optional system
 * message) in the model's chat format with the assistant opener; else the raw prompt (BOS as the tokenizer
 * wants). Stop strings of p are matched on the detokenized text and cut from the returned text. outs[i] are
 * malloc'ed NUL-terminated strings; n_tokens (may be NULL) gets the generated token counts. */
pulse_status pulse_lm_generate_text(pulse_lm_ctx *c, const pulse_tokenizer *tok, const char *const *prompts,
                                    int n, int chat, const char *system, const pulse_lm_gen_params *p,
                                    char **outs, int *n_tokens);
/* log p(continuation | prompt) of each pair; the prompt is tokenized with BOS as the tokenizer wants, the
 * continuation separately without. n_tokens (may be NULL) gets the continuation token counts. */
pulse_status pulse_lm_score_text(pulse_lm_ctx *c, const pulse_tokenizer *tok, const char *const *prompts,
                                 const char *const *conts, int n, double *logprob, int *n_tokens);

/* ---- LoRA adapters (src/lm/lora.c) ----
 * Low-rank updates of the decoder's projections: W x becomes W x + scale * (alpha / r) * B (A x), A (r, in),
 * B (out, r), fp32. Files are llama.cpp's GGUF LoRA adapters (general.type = adapter, adapter.type = lora,
 * adapter.lora.alpha; tensors "<base tensor name>.lora_a" with ne [in, r] and ".lora_b" with ne [r, out]), so
 * `llama-cli --lora` loads ours and we load theirs (f32, f16, bf16 or q8_0 tensors; the rank may differ per
 * tensor). An adapter without adapter.lora.alpha scales by the runtime scale alone, as llama.cpp does. */
typedef struct pulse_lora pulse_lora;
enum {
    PULSE_LORA_Q = 1u << 0,
    PULSE_LORA_K = 1u << 1,
    PULSE_LORA_V = 1u << 2,
    PULSE_LORA_O = 1u << 3,
    PULSE_LORA_GATE = 1u << 4,
    PULSE_LORA_UP = 1u << 5,
    PULSE_LORA_DOWN = 1u << 6,
    PULSE_LORA_ATTN = PULSE_LORA_Q | PULSE_LORA_K | PULSE_LORA_V | PULSE_LORA_O,
};
typedef struct {
    int rank;         /* 8 */
    float alpha;      /* 16 */
    unsigned targets; /* PULSE_LORA_* mask (PULSE_LORA_ATTN); q/k/v map onto a fused attn_qkv (phi3) */
    uint64_t seed;    /* A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform(a = sqrt 5); B = 0 */
} pulse_lora_params;
pulse_lora_params pulse_lora_default_params(void);
/* "q,k,v,o" (any of q k v o gate up down, or "attn", "all") into a PULSE_LORA_* mask. */
pulse_status pulse_lora_parse_targets(const char *s, unsigned *mask);
/* A fresh adapter for model m (every layer, the targets of p). */
pulse_status pulse_lora_new(const pulse_lm *m, const pulse_lora_params *p /* NULL = defaults */,
                            pulse_lora **out);
/* Read an adapter file and check it against m: adapter type, architecture, every tensor a known projection
 * of an existing layer, both halves present, shapes matching the model and each other (PULSE_ERR_FORMAT
 * naming the tensor otherwise). */
pulse_status pulse_lora_load(const pulse_lm *m, const char *path, pulse_lora **out);
/* Write the adapter as an f32 GGUF LoRA file, atomically. */
pulse_status pulse_lora_save(const pulse_lora *a, const char *path);
void pulse_lora_free(pulse_lora *a);
int pulse_lora_rank(const pulse_lora *a); /* the largest rank of its tensors */
float pulse_lora_alpha(const pulse_lora *a);
unsigned pulse_lora_targets(const pulse_lora *a);
int pulse_lora_n_tensors(const pulse_lora *a); /* (A, B) pairs */
/* All A and B values in one array (n_params floats; the optimizer's view), in pair order, A before B. */
float *pulse_lora_params_data(pulse_lora *a, size_t *n_params);
/* Pair i: the base tensor name ("blk.3.attn_q.weight"), its A (r, in) and B (out, r). */
pulse_status pulse_lora_pair(const pulse_lora *a, int i, const char **name, const float **A, const float **B,
                             int *r, int *in, int *out);
/* Attach an adapter to a context (NULL detaches): every later decode adds scale * alpha / r * B (A x) on the
 * adapted projections. The adapter must outlive the attachment and have been made for the context's model.
 * B is read here (the context keeps B^T for its products): after changing the adapter's values
 * (pulse_lora_params_data), attach it again. */
pulse_status pulse_lm_ctx_set_lora(pulse_lm_ctx *c, const pulse_lora *a, float scale);
/* A new GGUF with every adapted weight replaced by W + scale * alpha / r * B A (written f32), all other
 * tensors and metadata copied as they are; atomic. */
pulse_status pulse_lora_export_merged(const pulse_lm *m, const pulse_lora *a, float scale, const char *path);

/* ---- LoRA training (src/lm/train.c) ----
 * The base model stays quantised in its mapping; only the adapter's A and B learn. One example is a token
 * sequence whose tokens [n_prompt, n_tokens) carry the loss (each predicted from the tokens before it). The
 * loss of a step is the mean cross-entropy over all loss tokens of its micro-batches (HF / PEFT's). */
typedef struct {
    const int *tokens;
    int n_tokens;
    int n_prompt; /* >= 1; the loss is on tokens n_prompt..n_tokens-1 */
} pulse_lm_example;

typedef enum { PULSE_LM_SCHED_COSINE = 0, PULSE_LM_SCHED_LINEAR, PULSE_LM_SCHED_CONSTANT } pulse_lm_sched;

typedef struct {
    float lr;                     /* peak learning rate (2e-4) */
    float weight_decay;           /* AdamW decoupled decay (0) */
    float beta1, beta2, adam_eps; /* 0.9, 0.999, 1e-8 */
    float clip;                   /* max global gradient norm (1; <= 0 off) */
    float dropout;                /* on the adapter input, one mask per adapted projection (0.05) */
    pulse_lm_sched schedule;      /* after warm-up (cosine) */
    int warmup_steps;             /* linear warm-up from 0 (-1: 3% of the total steps) */
    int total_steps;              /* steps the schedule spans (pulse_lm_train sets it) */
    int checkpoint_layers;        /* 1: keep only each layer's input, recompute the layer in backward (1) */
    int exact_base;               /* 1: base products with unquantised activations (pulse_qmatmul_dq, as
                                     the fp32 reference computes) and dX through the bf16 GEMM; 0: q8
                                     activations on inference's int8 tiles and dX on the same tiles through
                                     transposed q8_0 copies of the weights (pulse_qtranspose_q8_0, ~1.06
                                     bytes per base parameter, built by pulse_lm_trainer_new) (0) */
    uint64_t seed;                /* dropout masks and data order (42) */
    /* pulse_lm_train only */
    int epochs, batch, grad_accum; /* 1, 8, 1 */
    int max_steps;                 /* stop after this many optimizer steps (0: all epochs) */
    const char *checkpoint_path;   /* resumable state (adapter + optimizer + position; NULL: none) */
    int checkpoint_every;          /* optimizer steps between checkpoints (50) */
    int resume;                    /* 1: continue from checkpoint_path when it exists */
    const char *log_path;          /* JSONL, one line per optimizer step (NULL: none) */
} pulse_lm_train_params;
pulse_lm_train_params pulse_lm_train_default_params(void);

/* One optimizer's worth of training state for adapter a on model m (workspace grows on demand). */
typedef struct pulse_lm_trainer pulse_lm_trainer;
pulse_status pulse_lm_trainer_new(const pulse_lm *m, pulse_lora *a, const pulse_lm_train_params *p,
                                  pulse_lm_trainer **out);
void pulse_lm_trainer_free(pulse_lm_trainer *t);
/* Mean loss over the loss tokens of ex[0..n) and its gradient w.r.t. every adapter value (grad: the
 * n_params of pulse_lora_params_data, SET; may be NULL). dropout_on 0: no dropout (gradient checks). */
pulse_status pulse_lm_trainer_loss_grad(pulse_lm_trainer *t, const pulse_lm_example *ex, int n,
                                        int dropout_on, float *grad, double *loss, int *n_loss_tokens);
/* One optimizer step over ex[0..n) split into micro-batches of micro examples: gradients accumulated,
 * clipped, AdamW at the scheduled rate of step pulse_lm_trainer_steps(t) + 1. loss: the step's mean loss. */
pulse_status pulse_lm_trainer_step(pulse_lm_trainer *t, const pulse_lm_example *ex, int n, int micro,
                                   double *loss, double *grad_norm);
int pulse_lm_trainer_steps(const pulse_lm_trainer *t);
/* Wall seconds spent so far in the layers' forward, the head + loss, the recomputed forwards (checkpointing)
 * and the layers' backward. */
void pulse_lm_trainer_profile(const pulse_lm_trainer *t, double sec[4]);
float pulse_lm_trainer_lr(const pulse_lm_trainer *t, int step); /* the schedule's rate at 1-based step */

typedef struct {
    double final_loss; /* mean loss of the last optimizer step */
    double first_loss; /* of the first step run */
    long tokens;       /* tokens processed (prompt + completion, all epochs) */
    long loss_tokens;
    double seconds;
    int steps;        /* optimizer steps done (resumed ones included) */
    int resumed_from; /* step the run resumed from (0: fresh) */
    size_t peak_rss;
    double comm_seconds; /* several MPI ranks: this rank's seconds in the gradient all-reduces */
} pulse_lm_train_result;
/* Fine-tuning data: JSON lines {"prompt": "...", "completion": "..."} tokenized with tok (the prompt with
 * BOS as the tokenizer wants; a line with "chat": {"system"?, "user", "assistant"?} has its prompt built by
 * pulse_lm_chat_prompt(tok, 1, system, user, assistant) instead, "prompt" then being its raw text; the
 * completion alone, then EOS when add_eos and the model has one; text is never parsed for special tokens).
 * Examples longer than max_len (<= 0: the model's context) lose their oldest prompt tokens (a leading BOS
 * kept). PULSE_ERR_PARSE names path:line of a malformed line. */
typedef struct {
    pulse_lm_example *ex;
    int n;
    int n_cut;     /* examples shortened to max_len */
    long n_tokens; /* over all examples */
    int *ids;      /* the token storage ex[] points into */
} pulse_lm_sft;
pulse_status pulse_lm_sft_read(const char *path, const pulse_lm *m, const pulse_tokenizer *tok, int add_eos,
                               int max_len, pulse_lm_sft *out);
void pulse_lm_sft_free(pulse_lm_sft *s);

/* Epochs over the examples (shuffled with the seed each epoch), batches of batch x grad_accum examples per
 * optimizer step; progress on stderr (loss, tokens/s, ETA), the JSONL log and checkpoints as p says. */
pulse_status pulse_lm_train(const pulse_lm *m, pulse_lora *a, const pulse_lm_example *ex, int n,
                            const pulse_lm_train_params *p, pulse_lm_train_result *r);

/* ---- throughput ---- */
typedef struct {
    int n_prompt;          /* prefill length (tokens) */
    int n_gen;             /* decode steps */
    int n_parallel;        /* sequences decoded together in the batched measurement */
    int n_prompt_parallel; /* prompt tokens of each of those sequences */
    uint64_t seed;         /* for the random token ids */
} pulse_lm_bench_params;
pulse_lm_bench_params pulse_lm_bench_default_params(void);
typedef struct {
    double prefill_tok_s; /* n_prompt tokens in one sequence, logits of the last */
    double decode_tok_s;  /* batch 1: n_gen greedy steps after the prefill */
    double batched_tok_s; /* n_parallel sequences x n_gen greedy steps, one forward per step */
    double batched_prefill_tok_s;
    size_t peak_rss, file_bytes, kv_bytes;
    /* the same three per second of process CPU time (all threads): work efficiency, little moved by other
     * load on a shared machine (with OMP_WAIT_POLICY=PASSIVE idle threads cost no CPU time) */
    double prefill_tok_cpu_s, decode_tok_cpu_s, batched_tok_cpu_s;
} pulse_lm_bench_result;
pulse_status pulse_lm_bench(const pulse_lm *m, const pulse_lm_bench_params *p, pulse_lm_bench_result *r);

#ifdef __cplusplus
}
#endif
#endif
