/* pulse/kernels.h — float32 kernels shared by every model (SASRec, BERT encoders, the decoder LM), written in
 * the llm.c manner: forward and backward side by side, shapes in the comments (B batch, T time, C channels,
 * OC output channels, NH heads, V vocabulary), no allocation inside them, OpenMP over rows, sgemm/sgemv from
 * OpenBLAS. Backward functions ACCUMULATE (+=) into gradient buffers, as in llm.c, so callers zero them once
 * per step; any gradient pointer may be NULL when that gradient is not needed. */
#ifndef PULSE_KERNELS_H
#define PULSE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear layer (PyTorch nn.Linear layout: weight is (OC, C)) ----
 * out (N, OC) = inp (N, C) @ weight^T + bias (OC); bias may be NULL. N == 1 uses sgemv. */
void pulse_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                          int OC);
/* dinp (N, C) += dout (N, OC) @ weight; dweight (OC, C) += dout^T @ inp; dbias (OC) += column sums of dout.
 */
void pulse_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, int N, int C, int OC);

/* ---- low-rank products (LoRA; src/kernels/lowrank.c): r small (1 to a few dozen), C wide ----
 * Every output summed in one fixed order (the same bits at any thread count); *_ref: the scalar reference
 * of the same order. down: T (n, r) = scale X (n, C; row stride ldx) W^T, W (r, C). up: Y (n, C; row stride
 * ldy) = scale T (n, r) W (+ Y when add), W (r, C). grad: G += scale T^T X (n, C; row stride ldx), G (r, C)
 * or, with gt, (C, r). */
void pulse_lowrank_down(float *T, const float *X, int ldx, const float *W, int n, int C, int r, float scale);
void pulse_lowrank_up(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                      int add);
void pulse_lowrank_grad(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                        float scale);
void pulse_lowrank_down_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                            float scale);
void pulse_lowrank_up_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r, float scale,
                          int add);
void pulse_lowrank_grad_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                            float scale);
/* Dropout on the LoRA adapter's input, drawn by counter, nothing stored: element c of row i of an (n, C)
 * input is kept iff pulse_drop_hash(rows[3i + 2] + c, rows[3i], rows[3i + 1]) >= thr (thr = p 2^32), and a
 * kept element is multiplied by keep = 1 / (1 - p), a dropped one by 0 — so a mask is the same whatever the
 * thread count, chunking or kernel that evaluates it. The _drop forms apply it inside the product, with the
 * same bits as masking into a buffer first (d(X) = X * m element by element) and calling the plain form:
 * down_drop: T = scale d(X) W^T; grad_drop: G += scale T^T d(X); up_drop: Y += m * (scale T W) (add only). */
typedef struct {
    const uint32_t *rows; /* (n, 3): lo, hi, base of each row's stream */
    uint32_t thr;
    float keep;
    uint8_t *bits; /* (n, bits_ld) keep bits (bit c % 8 of byte c / 8), or NULL: bits_mode 1 (down_drop only)
                      draws the masks and writes them here, 2 reads them instead of drawing (the same masks:
                      a later product on the same rows, e.g. the backward after the recomputation) */
    int bits_ld, bits_mode;
} pulse_lr_drop;
static inline uint32_t pulse_drop_hash(uint32_t j, uint32_t lo, uint32_t hi) { /* murmur3's finaliser */
    uint32_t h = ((j + lo) * 0x9e3779b1u) ^ hi;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}
void pulse_lowrank_down_drop(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                             float scale, const pulse_lr_drop *d);
void pulse_lowrank_up_drop(float *Y, int ldy, const float *T, const float *W, int n, int C, int r,
                           float scale, const pulse_lr_drop *d);
void pulse_lowrank_grad_drop(float *G, int gt, const float *T, const float *X, int ldx, int n, int C, int r,
                             float scale, const pulse_lr_drop *d);
void pulse_lowrank_down_drop_ref(float *T, const float *X, int ldx, const float *W, int n, int C, int r,
                                 float scale, const pulse_lr_drop *d);
void pulse_lowrank_up_drop_ref(float *Y, int ldy, const float *T, const float *W, int n, int C, int r,
                               float scale, const pulse_lr_drop *d);
void pulse_lowrank_grad_drop_ref(float *G, int gt, const float *T, const float *X, int ldx, int n, int C,
                                 int r, float scale, const pulse_lr_drop *d);

/* ---- the fused linear layer (fp32; src/kernels/gemm_f32.c) ----
 * y (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC) (+ res (N, OC)), then, per the epilogue: y into out
 * (N, OC) or, split by columns, into nseg outputs segs[i] (N, OC / nseg) holding columns [i OC/nseg, (i+1)
 * OC/nseg); GELU(erf)(y) into gelu (N, OC); LayerNorm(y) with ln_w, ln_b, ln_eps into ln_out (N, OC) (needs
 * out; ln_mean, ln_rstd (N) saved when not NULL). Any pointer may be NULL except: out or segs or gelu; segs
 * takes no res, gelu or ln_out. Outputs must not alias inp, res or each other. The numbers of
 * pulse_matmul_forward followed by pulse_residual_forward, pulse_gelu_forward and pulse_layernorm_forward, to
 * the product's rounding. */
typedef struct {
    const float *bias, *res;
    float *out;
    float *const *segs;
    int nseg;
    float *gelu;
    float *ln_out, *ln_mean, *ln_rstd;
    const float *ln_w, *ln_b;
    float ln_eps;
} pulse_linear_epilogue;
/* A weight (OC, C) packed once for the AVX-512 kernel (panels of 48 output columns); NULL without AVX-512F or
 * out of memory. It does not follow later changes of the weight: pack again after an update. */
typedef struct pulse_f32_weight pulse_f32_weight;
pulse_f32_weight *pulse_f32_weight_pack(const float *weight, int OC, int C);
void pulse_f32_weight_free(pulse_f32_weight *w);
/* On a CPU with AVX-512F: the kernel, each block of rows finished (epilogue and LayerNorm) while in cache,
 * blocks split over OpenMP threads outside a parallel region; pw (of this weight's shape) is used as packed,
 * pw NULL packs the weight per call (products of 1M+ multiply-adds). Else the plain kernels (OpenBLAS
 * product, then one pass per epilogue step). */
void pulse_linear_fused(const float *inp, const float *weight, const pulse_f32_weight *pw, int N, int C,
                        int OC, const pulse_linear_epilogue *ep);
/* Scalar reference of the same (double sums, libm erf): what the tests compare the kernel with. */
void pulse_linear_fused_ref(const float *inp, const float *weight, int N, int C, int OC,
                            const pulse_linear_epilogue *ep);

/* ---- embeddings ----
 * out (N, C) = table[ids[n]] (V, C). ids outside [0, V) are a caller bug (checked by assert-free clamp: row
 * of 0s). */
void pulse_embedding_forward(float *out, const int *ids, const float *table, int N, int C, int V);
/* dtable (V, C) += scatter of dout (N, C) by ids; serial over N so duplicate ids are deterministic. */
void pulse_embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C, int V);

/* ---- LayerNorm over the last dim ----
 * out (N, C), saves mean (N) and rstd (N) for backward; weight/bias (C). */
void pulse_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                             const float *bias, int N, int C, float eps);
void pulse_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, const float *mean, const float *rstd, int N, int C);

/* ---- the decoders' (GGUF language models) ops, as llama.cpp's CPU backend computes them: bit-identical to
 * it (tests/test_lm_parity.c), so their float operations must not be reordered. Forward passes; the backward
 * ones (LoRA training) go beside each in the same file. ---- */
/* RMSNorm (src/kernels/norm.c): out (N, C) = inp / sqrt(mean(inp^2) + eps) * w (C); out may alias inp. */
void pulse_rmsnorm_forward(float *out, const float *inp, const float *w, int N, int C, float eps);
/* Training (LoRA): the forward with rstd (N) = 1 / sqrt(mean(inp^2) + eps) saved (may be NULL; same
 * numbers as above), and the backward: dinp (N, C) += dout * d out/d inp, dw (C) += sum over rows of
 * dout * inp * rstd (either may be NULL); rstd NULL = recomputed from inp and eps; dinp must not alias dout.
 * Per-head QK-norm: N = tokens * heads, C = head_dim. */
void pulse_rmsnorm_forward_train(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                                 float eps);
void pulse_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, int N, int C, float eps);
/* RoPE (src/kernels/rope.c): cos / sin cache cs, sn (n, n_rot/2) of positions pos (n) for a base, linear
 * position scale and optional per-dimension frequency divisors ff (n_rot/2, may be NULL). */
void pulse_rope_cache(float *cs, float *sn, const int *pos, int n, int n_rot, float base, float scale,
                      const float *ff);
/* Rotate the first n_rot dims of nh heads of hd dims of every row of x (n, nh * hd) in place, pairs (d,
 * d + n_rot/2) when neox, else (2d, 2d + 1). */
void pulse_rope_forward(float *x, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                        int neox);
/* Backward in place: dx (n, nh * hd) holds d out on entry, d in on return (the inverse rotation with the same
 * tables and pairing). */
void pulse_rope_backward(float *dx, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                         int neox);
/* Gated units (src/kernels/glu.c), on one row of n: h (n) = silu(g (n)) * h (SwiGLU) or gelu_tanh(g) * h with
 * ggml's f16 GELU table (GEGLU; x <= -10 gives 0, x >= 10 gives x). */
void pulse_swiglu_forward(float *h, const float *g, size_t n);
void pulse_geglu_forward(float *h, const float *g, size_t n);
/* Training: h (n) = act(g) * u keeping u (h may alias u: the in-place forward), gelu 0 = SwiGLU, 1 = GEGLU;
 * backward: dg (n) += dh * u * act'(g), du (n) += dh * act(g) (either may be NULL), act' of the analytic
 * silu / tanh GELU. */
void pulse_glu_forward(float *h, const float *g, const float *u, size_t n, int gelu);
void pulse_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
void pulse_geglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
/* the same, SET (dg = ..., du = ...; both non-NULL): no zeroing pass before it */
void pulse_glu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n,
                        int gelu);

/* Training-time causal self-attention of the decoders (src/kernels/attention_train.c), fp32, GQA, sliding
 * window, optional logit soft-cap. q, out: (B, T, NH * HD); k, v: (B, T, NKV * HD); query head h reads kv
 * head h / (NH / NKV). score(i, j) = cap(scale * q_i . k_j) for max(0, i - window + 1) <= j <= i (window 0:
 * every j <= i), cap(x) = softcap * tanh(x / softcap) when softcap > 0, else x. lse (B, NH, T): each query
 * row's log-sum-exp of its scores, saved for the backward, which recomputes the probabilities from q, k and
 * lse (nothing of size T x T is kept). lens (B): valid positions per sequence, rows >= lens[b] are padding
 * (out 0, no gradient), NULL = all T. */
typedef struct {
    int n_head, n_head_kv, head_dim;
    float scale;     /* multiplies q . k: 1/sqrt(head_dim), or gemma's query_pre_attn_scalar^-1/2 */
    float softcap;   /* > 0: attention logit soft-cap; 0 = none */
    int window;      /* > 0: sliding window of that many positions (the key itself included); 0 = causal */
    const int *row0; /* NULL: sequence b's rows of q, k, v, out start at b * T (padded to T); else at row0[b],
                        the sequences packed back to back (lens[b] rows each, no padding rows; lse keeps its
                        (B, NH, T) layout) */
    int bf16;        /* 1: the products in bf16 with fp32 sums where the CPU has AVX512-BF16
                        (pulse_bf16_supported), softcap 0 and head_dim a multiple of 16; softmax, lse and
                        the gradients' elementwise parts stay fp32 (attention_train_bf16.c); else, and 0: fp32 */
} pulse_attn_params;
void pulse_causal_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                    const int *lens, int B, int T, const pulse_attn_params *p);
/* dq (B, T, NH * HD), dk, dv (B, T, NKV * HD) accumulate; out and lse from the forward. */
void pulse_causal_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                     const float *lse, const float *q, const float *k, const float *v,
                                     const int *lens, int B, int T, const pulse_attn_params *p);

/* ---- activations (elementwise, n elements) ---- */
void pulse_gelu_forward(float *out, const float *inp, size_t n); /* exact erf GELU (BERT) */
void pulse_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void pulse_gelu_tanh_forward(float *out, const float *inp, size_t n); /* tanh approximation (GPT-2, Gemma) */
void pulse_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, size_t n);
void pulse_relu_forward(float *out, const float *inp, size_t n);
void pulse_relu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* ---- residual add: out (n) = a + b; backward is dinp_a += dout, dinp_b += dout ---- */
void pulse_residual_forward(float *out, const float *a, const float *b, size_t n);
void pulse_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- dropout (inverted): out = inp * mask / (1-p); mask (n) of 0/1 bytes drawn from rng. p == 0 copies.
 * ---- */
void pulse_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, pulse_rng *rng);
void pulse_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);
/* out (n) = inp * mask / (1 - p) with a keep mask (n) the caller drew (a pure function of its own indices,
 * e.g. per-example masks for data-parallel training); p <= 0 copies. out may alias inp. */
void pulse_dropout_apply(float *out, const uint8_t *mask, const float *inp, size_t n, float p);

/* ---- multi-head scaled dot-product attention on separate q, k, v ----
 * q, k, v, out: (B, T, C) with NH heads of hs = C/NH, head h in channels [h*hs, (h+1)*hs).
 * att: (B, NH, T, T) softmax probabilities, saved for backward.
 * key_mask: (B, T) 1 = position may be attended to, 0 = padding; NULL = all valid.
 * causal: query i sees keys j <= i only. A query row with no visible key gets all-zero probabilities and out
 * = 0. Scale 1/sqrt(hs). */
void pulse_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             const uint8_t *key_mask, int B, int T, int C, int NH, int causal);
/* datt_scratch: (B, NH, T, T) scratch the caller owns. dq, dk, dv (B, T, C) accumulate. */
void pulse_attention_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                              const float *att, const float *q, const float *k, const float *v, int B, int T,
                              int C, int NH);

/* ---- attention with dropout on the probabilities (torch nn.MultiheadAttention(dropout=p), training) ----
 * As above, plus attd (B, NH, T, T) = dropout(att) and dmask (B, NH, T, T) its keep mask (0/1 bytes), drawn
 * serially from rng after the softmax; out = attd V. att keeps the undropped probabilities for backward.
 * rng NULL: dmask is an input, the caller's keep mask (0/1 bytes), e.g. hashed per example (SASRec).
 * p == 0 is pulse_attention_forward (evaluation: attd and dmask are neither written nor read, may be NULL).
 */
void pulse_attention_dropout_forward(float *out, float *att, float *attd, uint8_t *dmask, const float *q,
                                     const float *k, const float *v, const uint8_t *key_mask, int B, int T,
                                     int C, int NH, int causal, float p, pulse_rng *rng);
void pulse_attention_dropout_backward(float *dq, float *dk, float *dv, float *datt_scratch, const float *dout,
                                      const float *att, const float *attd, const uint8_t *dmask,
                                      const float *q, const float *k, const float *v, int B, int T, int C,
                                      int NH, float p);

/* ---- softmax cross-entropy over V classes ----
 * logits (N, V), targets (N) in [0, V) or -1 = ignore. losses (N) gets -log p[target] (0 for ignored).
 * dlogits (N, V) (may alias logits) is SET to (softmax - onehot) * dloss_scale for kept rows, 0 for ignored
 * rows. Returns the summed loss over kept rows. */
double pulse_crossentropy_forward_backward(float *dlogits, float *losses, const float *logits,
                                           const int *targets, int N, int V, float dloss_scale);
/* Row softmax in place: x (N, V). */
void pulse_softmax_rows(float *x, int N, int V);

/* ---- binary cross-entropy with logits: loss = -[y log s(x) + (1-y) log(1-s(x))], stable form.
 * x, y, dx (n); dx is SET to (sigmoid(x) - y) * scale. Returns the summed loss. */
double pulse_bce_logits_forward_backward(float *dx, const float *x, const float *y, size_t n, float scale);

/* ---- row L2 normalisation (cosine similarity heads, InfoNCE) ----
 * out (N, C) = inp / max(||inp||, eps); norms (N) saved. */
void pulse_l2norm_forward(float *out, float *norms, const float *inp, int N, int C, float eps);
void pulse_l2norm_backward(float *dinp, const float *dout, const float *out, const float *norms, int N,
                           int C);

/* ---- optimisers and gradient utilities ----
 * AdamW (decoupled weight decay, PyTorch semantics); t is the 1-based step count. weight_decay 0 = Adam. */
void pulse_adamw_update(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                        float beta1, float beta2, float eps, float weight_decay, int t);
double pulse_grad_norm_sq(const float *g, size_t n);
void pulse_scale(float *x, size_t n, float s);

/* ---- threads: OpenMP's. The kernels split BLAS products over OpenMP threads themselves and keep OpenBLAS at
 * one thread (its own pool would spin against OpenMP's on the same cores; src/kernels/blas.c). ---- */
/* The application's setting (the CLI's --threads): what every later parallel region of the calling thread
 * uses unless a model says otherwise. The library itself never calls it. n <= 0 keeps the default. */
void pulse_set_num_threads(int n);
int pulse_get_num_threads(void);
/* One library call on n threads (n <= 0: as set): OpenMP's thread count (nthreads-var) belongs to the calling
 * thread, so entering sets it for this thread until leaving restores it; every kernel the call runs (the
 * quantised products, norms, attention, the BLAS splits) then uses n, and the setting the caller sees
 * (pulse_get_num_threads, omp_get_max_threads) is the same before and after. The encoder's and the LM
 * contexts' calls run inside one of these with their params' thread count.
 *     int prev = pulse_threads_enter(n); ... pulse_threads_leave(prev); */
int pulse_threads_enter(int n);
void pulse_threads_leave(int prev);

/* ---- the level the fp32 products run at (src/kernels/blas_level.c) ----
 * The fp32 products go through OpenBLAS, whose DYNAMIC_ARCH build picks its kernels ("core") from the CPU
 * models it knew when it was built: on a newer CPU it may run SSE kernels on an AVX-512 machine. */
typedef struct {
    char backend[16];       /* "openblas" */
    char version[128];      /* openblas_get_config(): version, build options, core */
    char core[32];          /* the kernels in use now ("SkylakeX", "Haswell", "Prescott", ...) */
    char detected_core[32]; /* the core OpenBLAS chose itself, before any pulse_blas_select */
    pulse_level level;      /* the SIMD level of core's sgemm kernels */
    int threads;            /* OpenBLAS's own threads (pulse keeps 1 and splits products over OpenMP) */
    char parallel[16];      /* OpenBLAS's threading: "pthreads" | "openmp" | "sequential" */
    int explicit_core;      /* the user chose the core (pulse_blas_params.explicit_core): left alone */
    int corrected;          /* pulse_blas_select moved the core up to the CPU's level */
    int can_select;         /* this BLAS can change its core at run time (OpenBLAS DYNAMIC_ARCH) */
} pulse_blas_info;
pulse_status pulse_blas_probe(pulse_blas_info *out);

typedef struct {
    /* the core the user forced on the BLAS (e.g. the value of OPENBLAS_CORETYPE, which the CLI reads; some
     * machines set it on purpose because an old BLAS miscomputes there): when set, pulse changes nothing */
    const char *explicit_core;
} pulse_blas_params;
pulse_blas_params pulse_blas_default_params(void);
/* Run the fp32 products at the CPU's level: when the BLAS's kernels are below pulse_cpu_get()->level and the
 * user chose no core, switch OpenBLAS to the core of the CPU's level (SkylakeX for AVX-512, Haswell / Zen for
 * AVX2, Sandybridge for AVX) through its own initialisation. Call once at start-up, from one thread, before
 * any product runs (the pulse tools and benchmarks do). out (may be NULL) gets the result. Without it, the
 * first fp32 product of a process below the CPU's level prints one warning naming this remedy. */
pulse_status pulse_blas_select(const pulse_blas_params *p, pulse_blas_info *out);
/* Put OpenBLAS on the named core (its names: "SkylakeX", "Haswell", "Prescott", ...): tests simulate a BLAS
 * that mis-detects the CPU with it. Same calling rules as pulse_blas_select. */
pulse_status pulse_blas_force_core(const char *name);
/* The machine and the level of every product family as one JSON object written into buf (snprintf rules;
 * returns the length it needed, or -1 when out of memory): {"cpu":{vendor, model, family, model_id, flags[]},
 * "cpu_level", "fp32": {backend, version, core, detected_core, level, explicit, corrected, threads,
 * parallel}, "bf16":{kernel}, "quant":{kernel}}. pulse info prints it; every benchmark's JSON line carries
 * its fields. */
int pulse_runtime_json(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
