/* lm/lm_internal.h — the decoder model and context structures shared by src/lm/model.c (loading),
 * src/lm/kv.c (paged KV cache and sequences), src/lm/forward.c (the batched forward), src/lm/sample.c and
 * src/lm/generate.c. Not a public header. */
#ifndef PULSE_LM_INTERNAL_H
#define PULSE_LM_INTERNAL_H

#include "pulse/lm.h"
#include "pulse/quant.h"

/* A weight matrix (rows, cols) or vector in the mapping; data == NULL when the tensor is absent. */
typedef struct {
    const void *data;
    int type;
    int rows, cols;
    size_t row_bytes;
} lm_tensor;

typedef struct {
    lm_tensor attn_norm, attn_q_norm, attn_k_norm, post_attn_norm;
    lm_tensor wq, wk, wv, wqkv, wo;
    lm_tensor bq, bk, bv, bqkv, bo;
    lm_tensor ffn_norm, post_ffn_norm;
    lm_tensor w_gate, w_up, w_down; /* w_up holds gate|up when w_gate is absent (phi3) */
    lm_tensor b_gate, b_up, b_down;
    int is_swa;
} lm_layer;

/* LoRA targets of a layer (src/lm/lora.c): the projections a pulse_lora adapts */
enum { LM_LT_Q, LM_LT_K, LM_LT_V, LM_LT_QKV, LM_LT_O, LM_LT_GATE, LM_LT_UP, LM_LT_DOWN, LM_LT_N };

/* One adapted projection: W x + s * B (A x); A (r, in), B (out, r) point into pulse_lora.data. */
typedef struct {
    float *A, *B; /* NULL when this projection is not adapted */
    int r, in, out;
    float s; /* alpha / r (1 when the file has no alpha) */
} lm_lora_w;

struct pulse_lora {
    int n_layer;
    char arch[32];
    float alpha;
    int has_alpha;
    unsigned targets;
    int r_max, out_max;
    lm_lora_w *w; /* (n_layer, LM_LT_N) */
    float *data;  /* every A and B, pair order */
    size_t n_params;
    int n_pairs;
    int *pair_w;       /* (n_pairs) index into w */
    char (*names)[64]; /* (n_pairs) base tensor names */
};

struct pulse_lm {
    pulse_gguf *g;
    pulse_lm_hparams hp;
    char arch_name[32];
    int n_threads; /* contexts' default (pulse_lm_params.n_threads); 0: the caller's setting */
    lm_tensor tok_embd, output_norm, output, output_b;
    lm_layer *layers;
    float *freq_factors; /* (n_rot/2) or NULL */
    float emb_scale;     /* multiplies the embedding rows (gemma: sqrt(n_embd)) */
    int act_gelu;        /* 1: gelu-tanh gate (gemma), 0: silu (swiglu) */
    int n_eog;
    int eog[16];
    size_t file_bytes;
};

typedef struct {
    int live;
    int len;     /* tokens held */
    int n_blk;   /* blocks in the table */
    int *blocks; /* (max_blocks_per_seq) */
} lm_seq;

/* forward profile sections (pulse_options.lm_profile) */
enum {
    LM_PROF_EMBD,
    LM_PROF_QKV,
    LM_PROF_ATTN,
    LM_PROF_WO,
    LM_PROF_FFN,
    LM_PROF_HEAD,
    LM_PROF_MISC,
    LM_PROF_N
};

struct pulse_lm_ctx {
    const pulse_lm *m;
    pulse_lm_ctx_params p;
    int kv_dim;                /* n_head_kv * head_dim */
    int n_blocks;              /* pool size */
    int max_blk_seq;           /* blocks per sequence at most */
    size_t blk_floats;         /* values per block for K (same for V): n_layer * kv_block * kv_dim */
    uint16_t *k_pool, *v_pool; /* f16, as llama.cpp's default KV cache */
    /* K and V again, transposed within each block ([layer][kv_dim row][kv_block]: a dimension's 16 positions
     * side by side) for the AVX-512 KQ and P.V (pk_attend_wants_transposed); NULL when the kernel does not
     * read them */
    uint16_t *kt_pool, *vt_pool;
    int v_nonfinite; /* a V value written was inf or nan (the transposed P.V paths then stand aside) */
    int *ref;        /* (n_blocks) reference counts */
    int *free_blk;   /* stack of free block ids */
    int n_free;
    lm_seq *seqs;

    /* per-chunk scratch, sized for n_batch tokens */
    int nb;                                       /* n_batch */
    float *x, *xn, *q, *k, *v, *att, *o, *gu, *h; /* activations */
    int *pos, *sq;                                /* (nb) position and sequence of each chunk token */
    uint8_t *row_order; /* (nb) PULSE_QROW_* flags of each chunk token (forward.c) */
    float *att_scratch; /* (n_threads, att_stride) */
    size_t att_stride;
    int n_thr;
    float *acts; /* (n_layer + 1, nb, n_embd) when keep_activations */
    int acts_n;
    /* logits of the last decode */
    float *logits; /* (n_out_cap, n_vocab), grown on demand */
    int n_out_cap;
    int *out_idx; /* (n_idx_cap) batch index -> logits row or -1 */
    int n_idx_cap;
    int n_last;                 /* n_tokens of the last decode */
    float *rope_cos, *rope_sin; /* (2, nb, n_rot/2): global and sliding-window bases, per chunk token */
    int *seq_cnt;               /* (n_seq_max) tokens per sequence in a chunk */
    /* pulse_options.lm_profile 1: seconds per forward section (LM_PROF_*), printed to stderr by
     * pulse_lm_ctx_free */
    int prof_on, prof_active;
    double prof[LM_PROF_N];
    int n_truncated; /* prompt tokens dropped by the last text-level call (text.c) */
    /* pulse_lm_ctx_set_lora: the attached adapter, its runtime scale, scratch (nb, r_max) for A x, and each
     * adapted projection's B^T (lm_lora_bt), made once when the adapter is attached: lora_bt + lora_bt_off[i]
     * for w[i] = (layer, target) i */
    const pulse_lora *lora;
    float lora_scale;
    float *lora_t;
    float *lora_bt;
    size_t *lora_bt_off; /* (n_layer * LM_LT_N) */
};

/* lora.c: the base tensor of target t in layer L (NULL data when the layer has none), its GGUF name part. */
const lm_tensor *lm_lora_base(const lm_layer *L, int t);
extern const char *const lm_lora_names[LM_LT_N];
/* lora.c: y (n, w->out) += scale * w->s * B (A x), x (n, w->in); t (n, w->r) scratch; bt = lm_lora_bt's B^T
 * of w. */
void lm_lora_apply(const lm_lora_w *w, float scale, float *y, const float *x, int n, float *t,
                   const float *bt);
/* lora.c: floats of w's B^T as lm_lora_apply reads it (w->r, w->out rounded up to 16); lm_lora_bt writes it.
 */
size_t lm_lora_bt_size(const lm_lora_w *w);
void lm_lora_bt(const lm_lora_w *w, float *bt);

/* forward.c: one chunk of at most nb tokens whose KV slots are already reserved; rows of logits for the
 * tokens with want[i] go to out (n_want, n_vocab) in order. */
pulse_status lm_forward_chunk(pulse_lm_ctx *c, const int *tokens, int n, const uint8_t *want, float *out);
/* attend.c: attention output of chunk token i for query heads g0..g1-1 of kv head kh at layer il, into att
 * (n, n_head * head_dim), with thread thr's scratch. */
void lm_attend(pulse_lm_ctx *c, const lm_layer *L, int il, int i, int kh, int g0, int g1, const float *q,
               float *att, int thr);
/* sample.c: index of the largest of x[0..n) (the first one on ties), AVX2 when compiled in. */
int lm_argmax(const float *x, int n);
/* kv.c: pointer to the K (or V) row (f16) of position pos of sequence s at layer il. */
uint16_t *lm_kv_row(pulse_lm_ctx *c, int s, int il, int pos, int want_v);
/* kv.c: store K (want_v 0) or V (1) (kv_dim floats, f16-rounded) of sequence s at layer il, position pos: its
 * row and, when the context keeps them, its column of the transposed copy (kt_pool / vt_pool) */
void lm_kv_put(pulse_lm_ctx *c, int s, int il, int pos, int want_v, const float *x);
/* kv.c: make room for n more tokens of sequence s (allocate blocks, copy a shared last block). */
pulse_status lm_kv_reserve(pulse_lm_ctx *c, int s, int n);

#endif
