/* tests/lm_synth.h — writes tiny synthetic decoder GGUF files (llama, gemma3, qwen2, phi3) with weights drawn
 * from pulse_rng, so tests can check every architecture path against reference logits computed from the
 * same files by an independent implementation (scripts/lm_synth_ref.py, numpy + the gguf package). */
#ifndef PULSE_TESTS_LM_SYNTH_H
#define PULSE_TESTS_LM_SYNTH_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/core.h"
#include "pulse/quant.h"

typedef struct {
    const char *name; /* file and fixture name */
    const char *arch;
    int V, E, L, H, KVH, HD, F, n_rot, n_swa;
    int wtype;   /* type of the weight matrices */
    int embtype; /* type of token_embd */
    int bias;    /* q/k/v biases (qwen2) */
    int fused;   /* attn_qkv and gate|up in ffn_up (phi3) */
    int gemma;   /* qk-norm, post norms */
    int tied;    /* no output.weight */
    float rope_base;
    uint64_t seed;
    float tol; /* max |logit - reference| against the float reference: 1e-2 covers llama.cpp's f16 KV cache,
                  f16 attention probabilities and f16 GELU table (measured <= 4.1e-3); quantised dots round
                  the activations too: looser */
} synth_cfg;

static const synth_cfg SYNTH_CFGS[] = {
    {"llama",        "llama",        96, 64, 2, 4, 2,       16, 64,   16, 0,
     PULSE_GGML_F32, PULSE_GGML_F16, 0,  0,  0, 1, 10000.f, 11, 1e-2f},
    {"gemma3",        "gemma3",       80, 64, 6, 2, 1,    32, 64,   32, 5,
     PULSE_GGML_BF16, PULSE_GGML_F32, 0,  0,  1, 1, 1e6f, 12, 1e-2f},
    {"qwen2",        "qwen2",        72, 32, 2, 4, 2,    8,  48,   8, 0,
     PULSE_GGML_F16, PULSE_GGML_F32, 1,  0,  0, 0, 1e6f, 13, 1e-2f},
    {"phi3",         "phi3",         64, 32, 2, 4, 4,       8,  48,   6, 0,
     PULSE_GGML_F32, PULSE_GGML_F32, 0,  1,  0, 0, 10000.f, 14, 1e-2f},
    {"llama_q8",      "llama",         96, 64, 2, 4, 2,       16, 64,   16, 0,
     PULSE_GGML_Q8_0, PULSE_GGML_Q8_0, 0,  0,  0, 1, 10000.f, 15, 0.25f},
};
#define SYNTH_N_CFGS ((int)(sizeof SYNTH_CFGS / sizeof SYNTH_CFGS[0]))

/* ---- a minimal GGUF v3 writer ---- */
typedef struct {
    char name[64];
    int type;
    int n_dims;
    int64_t ne[2];
    void *data;
    size_t nbytes;
} synth_tensor;

typedef struct {
    FILE *kv; /* key/value bytes, assembled in a memory stream */
    char *kvbuf;
    size_t kvlen;
    int n_kv;
    synth_tensor t[256];
    int n_t;
    pulse_rng rng;
} synth_writer;

static void sw_str(FILE *f, const char *s) {
    uint64_t n = strlen(s);
    fwrite(&n, 8, 1, f);
    fwrite(s, 1, n, f);
}
static void sw_kv_u32(synth_writer *w, const char *k, uint32_t v) {
    uint32_t t = 4;
    sw_str(w->kv, k);
    fwrite(&t, 4, 1, w->kv);
    fwrite(&v, 4, 1, w->kv);
    w->n_kv++;
}
static void sw_kv_f32(synth_writer *w, const char *k, float v) {
    uint32_t t = 6;
    sw_str(w->kv, k);
    fwrite(&t, 4, 1, w->kv);
    fwrite(&v, 4, 1, w->kv);
    w->n_kv++;
}
static void sw_kv_str(synth_writer *w, const char *k, const char *v) {
    uint32_t t = 8;
    sw_str(w->kv, k);
    fwrite(&t, 4, 1, w->kv);
    sw_str(w->kv, v);
    w->n_kv++;
}

/* an array kv's key, type (9), element type and count; the elements follow */
static void sw_arr_head(synth_writer *w, const char *k, uint32_t et, int n) {
    uint32_t t = 9;
    uint64_t cnt = (uint64_t)n;
    sw_str(w->kv, k);
    fwrite(&t, 4, 1, w->kv);
    fwrite(&et, 4, 1, w->kv);
    fwrite(&cnt, 8, 1, w->kv);
    w->n_kv++;
}
static void sw_kv_arr_str(synth_writer *w, const char *k, const char *const *v, int n) {
    sw_arr_head(w, k, 8, n);
    for (int i = 0; i < n; i++) sw_str(w->kv, v[i]);
}
static void sw_kv_arr_i32(synth_writer *w, const char *k, const int32_t *v, int n) {
    sw_arr_head(w, k, 5, n);
    fwrite(v, 4, (size_t)n, w->kv);
}

/* Hyper-parameter overrides and an optional vocabulary for synth_write_opts (tests of load-time validation
 * and of the text-level calls). */
typedef struct {
    int set_eps, set_rope_base;
    float eps, rope_base; /* written instead of the defaults when set_* (NaN, negative, 0 allowed) */
    int ctx_len;          /* context_length (0: 256) */
    /* 1: a byte-level BPE tokenizer (gpt2): ids 0..255 the GPT-2 byte symbols, then SYNTH_TOK_HI ("hi", one
     * merge), SYNTH_TOK_IM_START / SYNTH_TOK_IM_END (CONTROL, ChatML template) and SYNTH_TOK_BOS; the
     * config's V must be SYNTH_TOK_V */
    int tokenizer;
} synth_opts;
enum { SYNTH_TOK_HI = 256, SYNTH_TOK_IM_START, SYNTH_TOK_IM_END, SYNTH_TOK_BOS, SYNTH_TOK_V };

static void synth_write_tokenizer(synth_writer *w) {
    static char bytes[256][4];
    const char *toks[SYNTH_TOK_V];
    int32_t types[SYNTH_TOK_V];
    for (int b = 0; b < 256; b++) {
        /* GPT-2 bytes_to_unicode: printable bytes stand for themselves, the others are U+0100.. in order */
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = (uint32_t)b;
        if (!printable) {
            int k = 0;
            for (int c = 0; c < b; c++)
                k += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
            cp = 256u + (uint32_t)k;
        }
        if (cp < 0x80) {
            bytes[b][0] = (char)cp;
            bytes[b][1] = 0;
        } else {
            bytes[b][0] = (char)(0xC0 | (cp >> 6));
            bytes[b][1] = (char)(0x80 | (cp & 0x3F));
            bytes[b][2] = 0;
        }
        toks[b] = bytes[b];
        types[b] = 1;
    }
    toks[SYNTH_TOK_HI] = "hi";
    toks[SYNTH_TOK_IM_START] = "<|im_start|>";
    toks[SYNTH_TOK_IM_END] = "<|im_end|>";
    toks[SYNTH_TOK_BOS] = "<s>";
    types[SYNTH_TOK_HI] = 1;
    types[SYNTH_TOK_IM_START] = types[SYNTH_TOK_IM_END] = types[SYNTH_TOK_BOS] = 3;
    const char *merges[] = {"h i"};
    sw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    sw_kv_str(w, "tokenizer.ggml.pre", "default");
    sw_kv_arr_str(w, "tokenizer.ggml.tokens", toks, SYNTH_TOK_V);
    sw_kv_arr_i32(w, "tokenizer.ggml.token_type", types, SYNTH_TOK_V);
    sw_kv_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    sw_kv_str(w, "tokenizer.chat_template",
              "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + "
              "'\\n'}}{% endfor %}");
}

/* Tensor of rows x cols (rows == 0: vector) filled with normal * scale + shift, stored as type. */
static int sw_tensor(synth_writer *w, const char *name, int rows, int cols, int type, float scale,
                     float shift) {
    synth_tensor *t = &w->t[w->n_t++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = rows ? 2 : 1;
    t->ne[0] = cols;
    t->ne[1] = rows ? rows : 1;
    int R = rows ? rows : 1;
    float *f = malloc(sizeof(float) * (size_t)R * cols);
    if (!f) return -1;
    for (size_t i = 0; i < (size_t)R * cols; i++) f[i] = pulse_rng_normal(&w->rng) * scale + shift;
    size_t rb = pulse_ggml_row_size(type, cols);
    t->nbytes = rb * (size_t)R;
    t->data = malloc(t->nbytes);
    if (!t->data) return -1;
    for (int r = 0; r < R; r++) {
        const float *src = f + (size_t)r * cols;
        uint8_t *dst = (uint8_t *)t->data + (size_t)r * rb;
        if (type == PULSE_GGML_F32)
            memcpy(dst, src, sizeof(float) * (size_t)cols);
        else if (type == PULSE_GGML_F16)
            for (int j = 0; j < cols; j++) ((uint16_t *)dst)[j] = pulse_fp32_to_fp16(src[j]);
        else if (type == PULSE_GGML_BF16)
            for (int j = 0; j < cols; j++) {
                uint32_t u;
                memcpy(&u, &src[j], 4);
                ((uint16_t *)dst)[j] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            }
        else if (pulse_quantize_row(type, src, dst, cols) != rb)
            return -1;
    }
    free(f);
    return 0;
}

static int synth_write_opts(const synth_cfg *c, const char *path, const synth_opts *o) {
    static const synth_opts none;
    if (!o) o = &none;
    synth_writer w;
    memset(&w, 0, sizeof w);
    pulse_rng_seed(&w.rng, c->seed);
    w.kv = open_memstream(&w.kvbuf, &w.kvlen);
    if (!w.kv) return -1;
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", c->arch, s), k)
    sw_kv_str(&w, "general.architecture", c->arch);
    sw_kv_u32(&w, KEY("context_length"), o->ctx_len ? (uint32_t)o->ctx_len : 256u);
    sw_kv_u32(&w, KEY("embedding_length"), (uint32_t)c->E);
    sw_kv_u32(&w, KEY("block_count"), (uint32_t)c->L);
    sw_kv_u32(&w, KEY("feed_forward_length"), (uint32_t)c->F);
    sw_kv_u32(&w, KEY("attention.head_count"), (uint32_t)c->H);
    sw_kv_u32(&w, KEY("attention.head_count_kv"), (uint32_t)c->KVH);
    sw_kv_u32(&w, KEY("attention.key_length"), (uint32_t)c->HD);
    sw_kv_u32(&w, KEY("attention.value_length"), (uint32_t)c->HD);
    sw_kv_u32(&w, KEY("rope.dimension_count"), (uint32_t)c->n_rot);
    sw_kv_f32(&w, KEY("rope.freq_base"), o->set_rope_base ? o->rope_base : c->rope_base);
    sw_kv_f32(&w, KEY("attention.layer_norm_rms_epsilon"), o->set_eps ? o->eps : c->gemma ? 1e-6f : 1e-5f);
    if (c->n_swa) sw_kv_u32(&w, KEY("attention.sliding_window"), (uint32_t)c->n_swa);
    sw_kv_u32(&w, "tokenizer.ggml.bos_token_id", o->tokenizer ? SYNTH_TOK_BOS : 1);
    sw_kv_u32(&w, "tokenizer.ggml.eos_token_id", o->tokenizer ? SYNTH_TOK_IM_END : 2);
    if (o->tokenizer) synth_write_tokenizer(&w);
#undef KEY
    const int E = c->E, Q = c->H * c->HD, KV = c->KVH * c->HD, F = c->F;
    const float se = 1.0f / sqrtf((float)E), sf = 1.0f / sqrtf((float)F), sq = 1.0f / sqrtf((float)Q);
    int bad = 0;
    bad |= sw_tensor(&w, "token_embd.weight", c->V, E, c->embtype, c->gemma ? 0.15f : 0.3f, 0);
    bad |= sw_tensor(&w, "output_norm.weight", 0, E, PULSE_GGML_F32, 0.1f, 1.0f);
    if (!c->tied) bad |= sw_tensor(&w, "output.weight", c->V, E, c->wtype, se, 0);
    for (int il = 0; il < c->L; il++) {
        char n[96];
#define T(name, r, cc, ty, s, sh)                                                                            \
    (snprintf(n, sizeof n, "blk.%d." name, il), sw_tensor(&w, n, r, cc, ty, s, sh))
        bad |= T("attn_norm.weight", 0, E, PULSE_GGML_F32, 0.1f, 1.0f);
        if (c->fused)
            bad |= T("attn_qkv.weight", Q + 2 * KV, E, c->wtype, se, 0);
        else {
            bad |= T("attn_q.weight", Q, E, c->wtype, se, 0);
            bad |= T("attn_k.weight", KV, E, c->wtype, se, 0);
            bad |= T("attn_v.weight", KV, E, c->wtype, se, 0);
        }
        if (c->bias) {
            bad |= T("attn_q.bias", 0, Q, PULSE_GGML_F32, 0.3f, 0);
            bad |= T("attn_k.bias", 0, KV, PULSE_GGML_F32, 0.3f, 0);
            bad |= T("attn_v.bias", 0, KV, PULSE_GGML_F32, 0.3f, 0);
        }
        if (c->gemma) {
            bad |= T("attn_q_norm.weight", 0, c->HD, PULSE_GGML_F32, 0.1f, 1.0f);
            bad |= T("attn_k_norm.weight", 0, c->HD, PULSE_GGML_F32, 0.1f, 1.0f);
            bad |= T("post_attention_norm.weight", 0, E, PULSE_GGML_F32, 0.1f, 1.0f);
            bad |= T("post_ffw_norm.weight", 0, E, PULSE_GGML_F32, 0.1f, 1.0f);
        }
        bad |= T("attn_output.weight", E, Q, c->wtype, sq, 0);
        bad |= T("ffn_norm.weight", 0, E, PULSE_GGML_F32, 0.1f, 1.0f);
        if (c->fused)
            bad |= T("ffn_up.weight", 2 * F, E, c->wtype, se, 0);
        else {
            bad |= T("ffn_gate.weight", F, E, c->wtype, se, 0);
            bad |= T("ffn_up.weight", F, E, c->wtype, se, 0);
        }
        bad |= T("ffn_down.weight", E, F, c->wtype, sf, 0);
#undef T
    }
    fclose(w.kv);
    FILE *f = bad ? NULL : fopen(path, "wb");
    if (f) {
        uint32_t magic = 0x46554747, ver = 3;
        uint64_t nt = (uint64_t)w.n_t, nkv = (uint64_t)w.n_kv;
        fwrite(&magic, 4, 1, f);
        fwrite(&ver, 4, 1, f);
        fwrite(&nt, 8, 1, f);
        fwrite(&nkv, 8, 1, f);
        fwrite(w.kvbuf, 1, w.kvlen, f);
        uint64_t off = 0;
        for (int i = 0; i < w.n_t; i++) {
            synth_tensor *t = &w.t[i];
            uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
            sw_str(f, t->name);
            fwrite(&nd, 4, 1, f);
            for (int d = 0; d < t->n_dims; d++) {
                uint64_t ne = (uint64_t)t->ne[d];
                fwrite(&ne, 8, 1, f);
            }
            fwrite(&ty, 4, 1, f);
            fwrite(&off, 8, 1, f);
            off += (t->nbytes + 31) / 32 * 32;
        }
        static const uint8_t zeros[32];
        long pos = ftell(f);
        fwrite(zeros, 1, (size_t)((32 - pos % 32) % 32), f);
        for (int i = 0; i < w.n_t; i++) {
            fwrite(w.t[i].data, 1, w.t[i].nbytes, f);
            fwrite(zeros, 1, (w.t[i].nbytes + 31) / 32 * 32 - w.t[i].nbytes, f);
        }
        bad |= fclose(f) != 0;
    } else
        bad = 1;
    for (int i = 0; i < w.n_t; i++) free(w.t[i].data);
    free(w.kvbuf);
    return bad ? -1 : 0;
}

static inline int synth_write(const synth_cfg *c, const char *path) {
    return synth_write_opts(c, path, NULL);
}

/* The token sequence the synthetic fixture is computed on (positions 0..SYNTH_T-1). */
#define SYNTH_T 12
static const int SYNTH_TOKENS[SYNTH_T] = {1, 17, 5, 42, 9, 33, 60, 7, 7, 21, 50, 3};

#endif
