/* lm/model.c — owns loading a decoder model from GGUF: architecture hyper-parameters (llama, gemma3, qwen2,
 * phi3), tensor lookup with shape/type checks (weights stay quantised in the mapping), end-of-generation
 * tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"

#include "pulse/kernels.h"

pulse_lm_params pulse_lm_default_params(void) {
    pulse_lm_params p = {0};
    return p;
}

static void key(char *buf, size_t n, const char *arch, const char *k) {
    snprintf(buf, n, "%s.%s", arch, k);
}

static pulse_status get_int(const pulse_gguf *g, const char *arch, const char *k, int *out, int dflt,
                            int required) {
    char kb[128];
    key(kb, sizeof kb, arch, k);
    if (pulse_gguf_find_key(g, kb) < 0) {
        if (required) return pulse_set_error(PULSE_ERR_FORMAT, "GGUF: missing metadata key %s", kb);
        *out = dflt;
        return PULSE_OK;
    }
    /* some keys may be per-layer arrays (e.g. head_count_kv); take element 0 */
    int64_t idx = pulse_gguf_find_key(g, kb);
    if (pulse_gguf_kv_type(g, (size_t)idx) == PULSE_GGUF_ARRAY) {
        pulse_gguf_type et;
        uint64_t cnt;
        pulse_status st = pulse_gguf_get_arr_info(g, kb, &et, &cnt);
        if (st) return st;
        if (cnt == 0) return pulse_set_error(PULSE_ERR_FORMAT, "GGUF: %s is an empty array", kb);
        int32_t *tmp = pulse_malloc(cnt * sizeof(int32_t));
        if (!tmp) return PULSE_ERR_NOMEM;
        st = pulse_gguf_get_arr_i32(g, kb, tmp, cnt);
        *out = tmp[0];
        free(tmp);
        return st;
    }
    int64_t v;
    pulse_status st = pulse_gguf_get_i64(g, kb, &v);
    if (st) return st;
    if (v < 0 || v > (1 << 30))
        return pulse_set_error(PULSE_ERR_RANGE, "GGUF: %s = %lld out of range", kb, (long long)v);
    *out = (int)v;
    return PULSE_OK;
}

/* A float hyper-parameter: dflt when the key is absent; an error naming the key when it is not a number or
 * outside [lo, hi] (NaN and infinities never pass). lo_open: the lower bound itself is excluded. */
static pulse_status get_f32(const pulse_gguf *g, const char *arch, const char *k, float dflt, double lo,
                            int lo_open, double hi, float *out) {
    char kb[128];
    key(kb, sizeof kb, arch, k);
    *out = dflt;
    if (pulse_gguf_find_key(g, kb) < 0) return PULSE_OK;
    float v;
    pulse_status st = pulse_gguf_get_f32(g, kb, &v);
    if (st) return st;
    if (!(isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi)) {
        char upper[40] = "";
        if (hi < 1e30) snprintf(upper, sizeof upper, " and <= %g", hi);
        return pulse_set_error(PULSE_ERR_FORMAT, "GGUF: %s = %g: expected a finite number %s %g%s", kb,
                               (double)v, lo_open ? ">" : ">=", lo, upper);
    }
    *out = v;
    return PULSE_OK;
}

static int get_tok_id(const pulse_gguf *g, const char *k) {
    int64_t v;
    if (pulse_gguf_find_key(g, k) < 0 || pulse_gguf_get_i64(g, k, &v) != PULSE_OK) return -1;
    return v >= 0 && v < (1 << 30) ? (int)v : -1;
}

/* Look up a tensor and check it is (rows, cols) (cols = ne[0]); rows == 0 means a vector of cols. */
static pulse_status tensor(const pulse_lm *m, const char *name, int rows, int cols, int required,
                           lm_tensor *out) {
    memset(out, 0, sizeof *out);
    const pulse_gguf_tensor *t = pulse_gguf_find_tensor(m->g, name);
    if (!t) {
        if (required) return pulse_set_error(PULSE_ERR_FORMAT, "GGUF: missing tensor %s", name);
        return PULSE_OK;
    }
    int64_t r = t->n_dims >= 2 ? t->ne[1] : 1;
    for (uint32_t d = 2; d < t->n_dims; d++) r *= t->ne[d];
    int want_r = rows == 0 ? 1 : rows;
    if (t->ne[0] != cols || r != want_r)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "GGUF: tensor %s: expected shape [%d, %d], found [%lld, %lld]", name, cols,
                               want_r, (long long)t->ne[0], (long long)r);
    if (!pulse_ggml_type_supported((int)t->type))
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "GGUF: tensor %s has type %s, not supported", name,
                               pulse_ggml_type_name((int)t->type));
    if (rows == 0 && t->type != PULSE_GGML_F32)
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "GGUF: vector %s must be f32, found %s", name,
                               pulse_ggml_type_name((int)t->type));
    size_t rb = pulse_ggml_row_size((int)t->type, cols);
    if (rb == 0 || rb * (size_t)want_r > t->nbytes)
        return pulse_set_error(PULSE_ERR_FORMAT, "GGUF: tensor %s: %zu bytes for [%d, %d] of %s", name,
                               t->nbytes, cols, want_r, pulse_ggml_type_name((int)t->type));
    out->data = t->data;
    out->type = (int)t->type;
    out->rows = want_r;
    out->cols = cols;
    out->row_bytes = rb;
    return PULSE_OK;
}

static pulse_status ltensor(const pulse_lm *m, int il, const char *name, int rows, int cols, int required,
                            lm_tensor *out) {
    char nb[96];
    snprintf(nb, sizeof nb, "blk.%d.%s", il, name);
    return tensor(m, nb, rows, cols, required, out);
}

static void add_eog(pulse_lm *m, int id) {
    if (id < 0 || id >= m->hp.n_vocab) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < (int)(sizeof m->eog / sizeof m->eog[0])) m->eog[m->n_eog++] = id;
}

/* End-of-generation tokens as llama.cpp finds them: eos, eot, and well-known texts of control tokens. */
static void find_eog(pulse_lm *m) {
    pulse_lm_hparams *hp = &m->hp;
    add_eog(m, hp->eos_id);
    add_eog(m, hp->eot_id);
    static const char *names[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                  "<|endoftext|>", "<|eom_id|>", "<EOT>",   "<|end_of_text|>"};
    uint64_t cnt = 0;
    pulse_gguf_type et;
    if (pulse_gguf_get_arr_info(m->g, "tokenizer.ggml.tokens", &et, &cnt) != PULSE_OK) return;
    if (et != PULSE_GGUF_STRING) return;
    /* control tokens live at the start or the end of vocabularies; scan all (cheap: once at load) */
    for (uint64_t i = 0; i < cnt && i < (uint64_t)hp->n_vocab; i++) {
        pulse_gguf_str s;
        if (pulse_gguf_get_arr_str(m->g, "tokenizer.ggml.tokens", i, &s) != PULSE_OK) continue;
        if (s.len < 5 || s.len > 16 || s.ptr[0] != '<') continue;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (pulse_gguf_str_eq(s, names[k])) add_eog(m, (int)i);
    }
}

pulse_status pulse_lm_load(const char *path, const pulse_lm_params *params, pulse_lm **out) {
    *out = NULL;
    pulse_lm_params p = params ? *params : pulse_lm_default_params();
    pulse_lm *m = pulse_calloc(1, sizeof *m);
    if (!m) return PULSE_ERR_NOMEM;
    m->n_threads = p.n_threads > 0 ? p.n_threads : 0;
    pulse_status st = pulse_gguf_open(path, &m->g);
    if (st) {
        free(m);
        return st;
    }
    pulse_lm_hparams *hp = &m->hp;
    pulse_gguf_str as;
    if ((st = pulse_gguf_get_str(m->g, "general.architecture", &as))) goto fail;
    if (as.len >= sizeof m->arch_name) {
        st = pulse_set_error(PULSE_ERR_UNSUPPORTED, "GGUF: general.architecture: name too long");
        goto fail;
    }
    memcpy(m->arch_name, as.ptr, as.len);
    m->arch_name[as.len] = 0;
    const char *a = m->arch_name;
    hp->arch_name = m->arch_name;
    if (!strcmp(a, "llama"))
        hp->arch = PULSE_LM_ARCH_LLAMA;
    else if (!strcmp(a, "gemma3"))
        hp->arch = PULSE_LM_ARCH_GEMMA3;
    else if (!strcmp(a, "qwen2"))
        hp->arch = PULSE_LM_ARCH_QWEN2;
    else if (!strcmp(a, "phi3"))
        hp->arch = PULSE_LM_ARCH_PHI3;
    else {
        st = pulse_set_error(PULSE_ERR_UNSUPPORTED,
                             "GGUF: general.architecture '%s' not supported (llama, gemma3, qwen2, phi3)", a);
        goto fail;
    }
    if ((st = get_int(m->g, a, "embedding_length", &hp->n_embd, 0, 1))) goto fail;
    if ((st = get_int(m->g, a, "block_count", &hp->n_layer, 0, 1))) goto fail;
    if ((st = get_int(m->g, a, "feed_forward_length", &hp->n_ff, 0, 1))) goto fail;
    if ((st = get_int(m->g, a, "attention.head_count", &hp->n_head, 0, 1))) goto fail;
    if ((st = get_int(m->g, a, "attention.head_count_kv", &hp->n_head_kv, hp->n_head, 0))) goto fail;
    if ((st = get_int(m->g, a, "context_length", &hp->n_ctx_train, 2048, 0))) goto fail;
    if (hp->n_ctx_train < 1) {
        st = pulse_set_error(PULSE_ERR_FORMAT, "GGUF: %s.context_length = %d: expected >= 1", a,
                             hp->n_ctx_train);
        goto fail;
    }
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0 ||
        hp->n_head % hp->n_head_kv != 0 || hp->n_layer > 4096) {
        st = pulse_set_error(PULSE_ERR_FORMAT,
                             "GGUF: inconsistent hyper-parameters (n_embd %d, n_layer %d, n_head %d, "
                             "n_head_kv %d, n_ff %d)",
                             hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
        goto fail;
    }
    if ((st = get_int(m->g, a, "attention.key_length", &hp->head_dim, hp->n_embd / hp->n_head, 0))) goto fail;
    int vdim;
    if ((st = get_int(m->g, a, "attention.value_length", &vdim, hp->head_dim, 0))) goto fail;
    if (vdim != hp->head_dim || hp->head_dim <= 0 || hp->head_dim > 1024 || hp->head_dim % 2) {
        st = pulse_set_error(PULSE_ERR_UNSUPPORTED, "GGUF: head sizes k %d v %d not supported", hp->head_dim,
                             vdim);
        goto fail;
    }
    if ((st = get_int(m->g, a, "rope.dimension_count", &hp->n_rot, hp->head_dim, 0))) goto fail;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2) {
        st = pulse_set_error(PULSE_ERR_FORMAT, "GGUF: rope.dimension_count %d with head size %d", hp->n_rot,
                             hp->head_dim);
        goto fail;
    }
    /* NaN, zero or negative values here give NaN logits, never an error later: refuse them at load */
    if ((st = get_f32(m->g, a, "rope.freq_base", 10000.0f, 0, 1, 1e30, &hp->rope_base))) goto fail;
    if ((st = get_f32(m->g, a, "rope.freq_base_swa",
                      hp->arch == PULSE_LM_ARCH_GEMMA3 ? 10000.0f : hp->rope_base, 0, 1, 1e30,
                      &hp->rope_base_swa)))
        goto fail;
    hp->rope_scale = 1.0f;
    {
        char kb[128];
        pulse_gguf_str stype;
        key(kb, sizeof kb, a, "rope.scaling.type");
        if (pulse_gguf_find_key(m->g, kb) >= 0 && pulse_gguf_get_str(m->g, kb, &stype) == PULSE_OK &&
            pulse_gguf_str_eq(stype, "linear")) {
            float f;
            if ((st = get_f32(m->g, a, "rope.scaling.factor", 1.0f, 0, 1, 1e30, &f))) goto fail;
            hp->rope_scale = 1.0f / f;
        }
    }
    if ((st = get_f32(m->g, a, "attention.layer_norm_rms_epsilon", 1e-5f, 0, 1, 1.0, &hp->norm_eps)))
        goto fail;
    if ((st = get_int(m->g, a, "attention.sliding_window", &hp->n_swa, 0, 0))) goto fail;
    hp->swa_pattern = 0;
    if (hp->arch == PULSE_LM_ARCH_GEMMA3) {
        hp->swa_pattern = 6; /* llama.cpp's fixed Gemma-3 pattern: 5 local layers, then 1 global */
        int pat;
        if ((st = get_int(m->g, a, "attention.sliding_window_pattern", &pat, 6, 0))) goto fail;
        if (pat > 0) hp->swa_pattern = pat;
    } else
        hp->n_swa = 0; /* qwen2/phi3/llama: full attention, as llama.cpp does for these files */
    hp->rope_neox = hp->arch != PULSE_LM_ARCH_LLAMA;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if ((st = get_f32(m->g, a, "final_logit_softcapping", 0.0f, 0, 0, 1e30, &hp->final_softcap))) goto fail;
    hp->bos_id = get_tok_id(m->g, "tokenizer.ggml.bos_token_id");
    hp->eos_id = get_tok_id(m->g, "tokenizer.ggml.eos_token_id");
    hp->eot_id = get_tok_id(m->g, "tokenizer.ggml.eot_token_id");
    {
        int ab = hp->arch == PULSE_LM_ARCH_GEMMA3 ? 1 : 0;
        if (pulse_gguf_find_key(m->g, "tokenizer.ggml.add_bos_token") >= 0)
            pulse_gguf_get_bool(m->g, "tokenizer.ggml.add_bos_token", &ab);
        hp->add_bos = ab;
    }

    /* tensors */
    const pulse_gguf_tensor *te = pulse_gguf_find_tensor(m->g, "token_embd.weight");
    if (!te || te->n_dims < 2) {
        st = pulse_set_error(PULSE_ERR_FORMAT, "GGUF: missing tensor token_embd.weight");
        goto fail;
    }
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        st = pulse_set_error(PULSE_ERR_FORMAT, "GGUF: token_embd.weight has %lld rows", (long long)te->ne[1]);
        goto fail;
    }
    hp->n_vocab = (int)te->ne[1];
    const int E = hp->n_embd, HD = hp->head_dim, Q = hp->n_head * HD, KV = hp->n_head_kv * HD, F = hp->n_ff;
    if ((st = tensor(m, "token_embd.weight", hp->n_vocab, E, 1, &m->tok_embd))) goto fail;
    if ((st = tensor(m, "output_norm.weight", 0, E, 1, &m->output_norm))) goto fail;
    if ((st = tensor(m, "output.weight", hp->n_vocab, E, 0, &m->output))) goto fail;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if ((st = tensor(m, "output.bias", 0, hp->n_vocab, 0, &m->output_b))) goto fail;
    m->layers = pulse_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = PULSE_ERR_NOMEM;
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++) {
        lm_layer *L = &m->layers[il];
        if ((st = ltensor(m, il, "attn_norm.weight", 0, E, 1, &L->attn_norm))) goto fail;
        if ((st = ltensor(m, il, "attn_qkv.weight", Q + 2 * KV, E, 0, &L->wqkv))) goto fail;
        if (!L->wqkv.data) {
            if ((st = ltensor(m, il, "attn_q.weight", Q, E, 1, &L->wq))) goto fail;
            if ((st = ltensor(m, il, "attn_k.weight", KV, E, 1, &L->wk))) goto fail;
            if ((st = ltensor(m, il, "attn_v.weight", KV, E, 1, &L->wv))) goto fail;
            if ((st = ltensor(m, il, "attn_q.bias", 0, Q, 0, &L->bq))) goto fail;
            if ((st = ltensor(m, il, "attn_k.bias", 0, KV, 0, &L->bk))) goto fail;
            if ((st = ltensor(m, il, "attn_v.bias", 0, KV, 0, &L->bv))) goto fail;
        } else if ((st = ltensor(m, il, "attn_qkv.bias", 0, Q + 2 * KV, 0, &L->bqkv)))
            goto fail;
        if ((st = ltensor(m, il, "attn_output.weight", E, Q, 1, &L->wo))) goto fail;
        if ((st = ltensor(m, il, "attn_output.bias", 0, E, 0, &L->bo))) goto fail;
        if ((st = ltensor(m, il, "attn_q_norm.weight", 0, HD, 0, &L->attn_q_norm))) goto fail;
        if ((st = ltensor(m, il, "attn_k_norm.weight", 0, HD, 0, &L->attn_k_norm))) goto fail;
        if ((st = ltensor(m, il, "post_attention_norm.weight", 0, E, 0, &L->post_attn_norm))) goto fail;
        if ((st = ltensor(m, il, "ffn_norm.weight", 0, E, 1, &L->ffn_norm))) goto fail;
        if ((st = ltensor(m, il, "post_ffw_norm.weight", 0, E, 0, &L->post_ffn_norm))) goto fail;
        if ((st = ltensor(m, il, "ffn_gate.weight", F, E, 0, &L->w_gate))) goto fail;
        if ((st = ltensor(m, il, "ffn_up.weight", L->w_gate.data ? F : 2 * F, E, 1, &L->w_up))) goto fail;
        if ((st = ltensor(m, il, "ffn_down.weight", E, F, 1, &L->w_down))) goto fail;
        if ((st = ltensor(m, il, "ffn_up.bias", 0, L->w_gate.data ? F : 2 * F, 0, &L->b_up))) goto fail;
        if ((st = ltensor(m, il, "ffn_gate.bias", 0, F, 0, &L->b_gate))) goto fail;
        if ((st = ltensor(m, il, "ffn_down.bias", 0, E, 0, &L->b_down))) goto fail;
        L->is_swa = hp->n_swa > 0 && hp->swa_pattern > 0 && (il % hp->swa_pattern < hp->swa_pattern - 1);
    }
    /* per-dimension rope frequency divisors (llama-3 rope_freqs, phi3 short factors) */
    {
        lm_tensor ff;
        const char *names[] = {"rope_freqs.weight", "rope_factors_short.weight"};
        for (int i = 0; i < 2 && !m->freq_factors; i++) {
            if ((st = tensor(m, names[i], 0, hp->n_rot / 2, 0, &ff))) goto fail;
            if (ff.data) {
                m->freq_factors = pulse_malloc(sizeof(float) * (size_t)(hp->n_rot / 2));
                if (!m->freq_factors) {
                    st = PULSE_ERR_NOMEM;
                    goto fail;
                }
                memcpy(m->freq_factors, ff.data, sizeof(float) * (size_t)(hp->n_rot / 2));
            }
        }
    }
    m->emb_scale = hp->arch == PULSE_LM_ARCH_GEMMA3 ? sqrtf((float)E) : 1.0f;
    m->act_gelu = hp->arch == PULSE_LM_ARCH_GEMMA3;
    find_eog(m);
    {
        m->file_bytes = 0;
        FILE *f = fopen(path, "rb");
        if (f) {
            if (fseek(f, 0, SEEK_END) == 0) {
                long sz = ftell(f);
                if (sz > 0) m->file_bytes = (size_t)sz;
            }
            fclose(f);
        }
    }
    *out = m;
    return PULSE_OK;
fail:
    pulse_wrap_error(st, "%s", path);
    pulse_lm_free(m);
    return st;
}

void pulse_lm_free(pulse_lm *m) {
    if (!m) return;
    if (m->g) pulse_gguf_close(m->g);
    free(m->layers);
    free(m->freq_factors);
    free(m);
}

const pulse_lm_hparams *pulse_lm_get_hparams(const pulse_lm *m) {
    return &m->hp;
}
const pulse_gguf *pulse_lm_gguf(const pulse_lm *m) {
    return m->g;
}
size_t pulse_lm_file_bytes(const pulse_lm *m) {
    return m->file_bytes;
}
size_t pulse_lm_kv_bytes_per_token(const pulse_lm *m) {
    return (size_t)2 * sizeof(uint16_t) * (size_t)m->hp.n_layer * (size_t)m->hp.n_head_kv *
           (size_t)m->hp.head_dim;
}

int pulse_lm_is_eog(const pulse_lm *m, int token) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == token) return 1;
    return 0;
}
