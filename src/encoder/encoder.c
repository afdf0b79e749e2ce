/* encoder/encoder.c — owns the BERT-family encoder: loading an HF folder (config.json, model.safetensors,
 * tokenizer), the forward pass (inference with length-sorted padded batches and a key mask; training with
 * saved activations and hidden dropout), pooling (CLS / mean), the optional projection head, L2
 * normalisation, the backward pass through the whole encoder, AdamW with gradient clipping and frozen lower
 * layers, and saving as an HF folder. Built on the shared kernels (pulse/kernels.h).
 *
 * Shapes: B texts, T tokens (the batch's longest), C hidden, NH heads, FF intermediate, V vocabulary,
 * P positions, D output dim. Post-LN blocks (BERT and DistilBERT alike):
 *   x0 = LN(wte[ids] + wpe[t] (+ wtt[0]))
 *   x1 = LN(x + drop(Attn(x) Wo + bo));  x' = LN(x1 + drop(GELU(x1 W1 + b1) W2 + b2)) */
#include "pulse/encoder.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "encoder/wordpiece.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"
#include "pulse/safetensors.h"

enum { ARCH_BERT = 0, ARCH_DISTIL = 1 };
enum { ACT_GELU = 0, ACT_GELU_TANH = 1, ACT_RELU = 2 };

typedef struct {
    float *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob, *ln1w, *ln1b, *f1w, *f1b, *f2w, *f2b, *ln2w, *ln2b;
} layer_w;

/* activations of one layer (training: one set per layer; inference: one shared, aliased set) */
typedef struct {
    float *q, *k, *v, *att, *atty, *res1, *x1, *mean1, *rstd1, *h, *g, *res2, *x2, *mean2, *rstd2;
    uint8_t *mo, *mf; /* dropout masks after the attention projection and the FFN */
} layer_a;

struct pulse_encoder {
    int arch, act;
    int V, P, NTT, C, NH, L, FF;
    float eps, cfg_dropout;
    cJSON *config;
    char *dir;
    pulse_wordpiece tok;
    pulse_encoder_params p;
    pulse_pooling pooling; /* resolved: PULSE_POOL_CLS or PULSE_POOL_MEAN */
    int proj_dim;

    /* weights: one flat array; embeddings, then layers 0..L-1, then the projection head */
    float *w;
    size_t nw, emb_n, layer_n;
    float *wte, *wpe, *wtt, *elnw, *elnb, *pw, *pb;
    layer_w *lw;

    /* inference scratch, sized for s_cap_rows = B*T rows, s_cap_att attention floats and s_cap_b texts (the
     * pooled / projected / norm rows) */
    size_t s_cap_rows, s_cap_att, s_cap_b;
    float *s_x, *s_x1, *s_t, *s_q, *s_k, *s_v, *s_y, *s_h, *s_att, *s_mean, *s_rstd, *s_pool, *s_proj,
        *s_norm;
    int *s_pos;
    uint8_t *s_kmask;
    float *s_qkv; /* (rows, 3C) fused QKV product */
    int s_f32;    /* the scratch holds the fp32 path's s_att / s_qkv (bf16 inference needs neither) */
    /* bf16 inference: each layer's weights packed once for the kernel (qkv, o, ffn1, ffn2 per layer; an entry
     * may be NULL: that product converts its weight per call); dropped whenever the weights may change */
    pulse_bf16_weight **pk;

    /* training */
    int training;
    pulse_encoder_train_params tp;
    float *g, *m, *v;
    layer_w *lg; /* gradient views with the weights' layout */
    float *gwte, *gwpe, *gwtt, *gelnw, *gelnb, *gpw, *gpb;
    int step;
    pulse_rng rng;
    size_t a_rows, a_att; /* capacity per activation buffer */
    int a_B, a_T, a_valid;
    int *a_ids, *a_pos, *a_zero, *a_lens;
    uint8_t *a_kmask, *a_emask;
    float *a_e, *a_eln, *a_emean, *a_erstd, *a_x0, *a_o;
    float *a_qkv; /* (rows, 3C) scratch of the fused QKV product (forward) and its gradient (backward) */
    layer_a *la;
    float *a_pool, *a_proj, *a_out, *a_norm;
    float *d_x, *d_res, *d_x1, *d_o, *d_atty, *d_q, *d_k, *d_v, *d_att, *d_g, *d_h, *d_pool, *d_proj;
};

/* ------------------------------------------------------------------------------------------------------ */
/* parameters layout */

static size_t layer_floats(int C, int FF) {
    return (size_t)4 * C * C + 4 * (size_t)C + 4 * (size_t)C + (size_t)2 * C * FF + FF + C;
}

/* assigns weight pointers in base; returns the float count */
static size_t layout(const pulse_encoder *e, float *base, float **wte, float **wpe, float **wtt, float **elnw,
                     float **elnb, layer_w *lw, float **pw, float **pb) {
    size_t o = 0;
    const size_t C = (size_t)e->C, FF = (size_t)e->FF;
#define TAKE(ptr, n)                                                                                         \
    do {                                                                                                     \
        *(ptr) = base ? base + o : NULL;                                                                     \
        o += (n);                                                                                            \
    } while (0)
    TAKE(wte, (size_t)e->V * C);
    TAKE(wpe, (size_t)e->P * C);
    TAKE(wtt, (size_t)e->NTT * C);
    TAKE(elnw, C);
    TAKE(elnb, C);
    for (int l = 0; l < e->L; l++) {
        layer_w *w = &lw[l];
        TAKE(&w->qw, C * C); /* q, k, v weights adjacent: one (3C, C) matrix for the fused QKV product */
        TAKE(&w->kw, C * C);
        TAKE(&w->vw, C * C);
        TAKE(&w->qb, C); /* and their biases: one (3C) vector */
        TAKE(&w->kb, C);
        TAKE(&w->vb, C);
        TAKE(&w->ow, C * C);
        TAKE(&w->ob, C);
        TAKE(&w->ln1w, C);
        TAKE(&w->ln1b, C);
        TAKE(&w->f1w, FF * C);
        TAKE(&w->f1b, FF);
        TAKE(&w->f2w, C * FF);
        TAKE(&w->f2b, C);
        TAKE(&w->ln2w, C);
        TAKE(&w->ln2b, C);
    }
    TAKE(pw, (size_t)e->proj_dim * C);
    TAKE(pb, (size_t)e->proj_dim);
#undef TAKE
    return o;
}

static void relayout(pulse_encoder *e) {
    e->nw = layout(e, e->w, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    if (e->g) layout(e, e->g, &e->gwte, &e->gwpe, &e->gwtt, &e->gelnw, &e->gelnb, e->lg, &e->gpw, &e->gpb);
    e->emb_n = (size_t)(e->V + e->P + e->NTT) * e->C + 2 * (size_t)e->C;
    e->layer_n = layer_floats(e->C, e->FF);
    if (e->NTT == 0) e->wtt = NULL, e->gwtt = NULL;
    if (e->proj_dim == 0) e->pw = e->pb = e->gpw = e->gpb = NULL;
}

/* ------------------------------------------------------------------------------------------------------ */
/* config */

static int cfg_int(const cJSON *c, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}
static double cfg_num(const cJSON *c, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
static const char *cfg_str(const cJSON *c, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static pulse_status read_json(const char *path, cJSON **out) {
    char *text = NULL;
    size_t len = 0;
    pulse_status rc = pulse_read_file(path, &text, &len);
    if (rc != PULSE_OK) return rc;
    *out = cJSON_ParseWithLength(text, len);
    free(text);
    if (!*out) return pulse_set_error(PULSE_ERR_PARSE, "%s: not valid JSON", path);
    return PULSE_OK;
}

/* every present key of keys (NULL-terminated) holds an integer number (not 384.5, not "384") */
static pulse_status cfg_check_ints(const cJSON *c, const char *const *keys, const char *path) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, *keys);
        if (!v) continue;
        if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) < 2147483647.0) ||
            v->valuedouble != (double)v->valueint) {
            char *txt = cJSON_PrintUnformatted(v);
            pulse_status rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: %s: expected an integer, found %.40s",
                                              path, *keys, txt ? txt : "?");
            cJSON_free(txt);
            return rc;
        }
    }
    return PULSE_OK;
}

static pulse_status parse_config(pulse_encoder *e, const char *path) {
    const cJSON *c = e->config;
    if (!cJSON_IsObject(c)) return pulse_set_error(PULSE_ERR_FORMAT, "%s: expected a JSON object", path);
    static const char *const int_keys[] = {"vocab_size",
                                           "hidden_size",
                                           "num_hidden_layers",
                                           "num_attention_heads",
                                           "intermediate_size",
                                           "max_position_embeddings",
                                           "type_vocab_size",
                                           "dim",
                                           "n_layers",
                                           "n_heads",
                                           "hidden_dim",
                                           "pulse_proj_dim",
                                           NULL};
    pulse_status rc = cfg_check_ints(c, int_keys, path);
    if (rc != PULSE_OK) return rc;
    const char *mt = cfg_str(c, "model_type");
    if (!mt) {
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(c, "architectures");
        const cJSON *a0 = cJSON_GetArrayItem(arch, 0);
        if (cJSON_IsString(a0)) mt = strncmp(a0->valuestring, "DistilBert", 10) == 0 ? "distilbert" : "bert";
    }
    if (!mt)
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: model_type: expected \"bert\" or \"distilbert\"", path);
    const char *act;
    if (strcmp(mt, "bert") == 0) {
        e->arch = ARCH_BERT;
        e->V = cfg_int(c, "vocab_size", -1);
        e->C = cfg_int(c, "hidden_size", -1);
        e->L = cfg_int(c, "num_hidden_layers", -1);
        e->NH = cfg_int(c, "num_attention_heads", -1);
        e->FF = cfg_int(c, "intermediate_size", -1);
        e->P = cfg_int(c, "max_position_embeddings", 512);
        e->NTT = cfg_int(c, "type_vocab_size", 2);
        e->eps = (float)cfg_num(c, "layer_norm_eps", 1e-12);
        e->cfg_dropout = (float)cfg_num(c, "hidden_dropout_prob", 0.1);
        act = cfg_str(c, "hidden_act");
        const char *pet = cfg_str(c, "position_embedding_type");
        if (pet && strcmp(pet, "absolute") != 0)
            return pulse_set_error(PULSE_ERR_UNSUPPORTED,
                                   "%s: position_embedding_type: expected absolute, found %s", path, pet);
    } else if (strcmp(mt, "distilbert") == 0) {
        e->arch = ARCH_DISTIL;
        e->V = cfg_int(c, "vocab_size", -1);
        e->C = cfg_int(c, "dim", -1);
        e->L = cfg_int(c, "n_layers", -1);
        e->NH = cfg_int(c, "n_heads", -1);
        e->FF = cfg_int(c, "hidden_dim", -1);
        e->P = cfg_int(c, "max_position_embeddings", 512);
        e->NTT = 0;
        e->eps = 1e-12f;
        e->cfg_dropout = (float)cfg_num(c, "dropout", 0.1);
        act = cfg_str(c, "activation");
    } else {
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "%s: model_type: expected bert or distilbert, found %s",
                               path, mt);
    }
    if (!act || strcmp(act, "gelu") == 0)
        e->act = ACT_GELU;
    else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0)
        e->act = ACT_GELU_TANH;
    else if (strcmp(act, "relu") == 0)
        e->act = ACT_RELU;
    else
        return pulse_set_error(PULSE_ERR_UNSUPPORTED,
                               "%s: activation: expected gelu, gelu_new or relu, found %s", path, act);
    if (e->V <= 0 || e->C <= 0 || e->L <= 0 || e->NH <= 0 || e->FF <= 0 || e->P <= 1 || e->NTT < 0 ||
        e->C % e->NH != 0 || e->V > 10000000 || e->C > 65536 || e->L > 1000 || e->FF > 1 << 20 ||
        e->P > 1 << 20 || e->NTT > 1024)
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "%s: expected positive sizes with hidden %% heads == 0, found vocab %d hidden %d "
            "layers %d heads %d ffn %d positions %d",
            path, e->V, e->C, e->L, e->NH, e->FF, e->P);
    if (!(e->eps > 0.0f) || !(e->cfg_dropout >= 0.0f && e->cfg_dropout < 1.0f))
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: layer_norm_eps / dropout out of range", path);
    e->proj_dim = cfg_int(c, "pulse_proj_dim", 0);
    if (e->proj_dim < 0 || e->proj_dim > 65536)
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: pulse_proj_dim %d out of range", path, e->proj_dim);
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* tensor names */

static const char *bert_layer_names[8] = {
    "attention.self.query",       "attention.self.key", "attention.self.value", "attention.output.dense",
    "attention.output.LayerNorm", "intermediate.dense", "output.dense",         "output.LayerNorm"};
static const char *distil_layer_names[8] = {"attention.q_lin",   "attention.k_lin",  "attention.v_lin",
                                            "attention.out_lin", "sa_layer_norm",    "ffn.lin1",
                                            "ffn.lin2",          "output_layer_norm"};

typedef struct {
    char name[160];
    float *data;
    int n_dims;
    int64_t shape[2];
    int is_ln; /* LayerNorm weight/bias: older files name them gamma/beta */
} tensor_ref;

/* all tensors of the model with their canonical HF names (no prefix); returns the count */
static int tensor_refs(const pulse_encoder *e, const layer_w *lw, float *wte, float *wpe, float *wtt,
                       float *elnw, float *elnb, float *pw, float *pb, tensor_ref *r) {
    int n = 0;
    const int64_t C = e->C, FF = e->FF;
#define REF(nm, ptr, nd, s0, s1, ln)                                                                         \
    do {                                                                                                     \
        snprintf(r[n].name, sizeof r[n].name, "%s", nm);                                                     \
        r[n].data = (ptr);                                                                                   \
        r[n].n_dims = (nd);                                                                                  \
        r[n].shape[0] = (s0);                                                                                \
        r[n].shape[1] = (s1);                                                                                \
        r[n].is_ln = (ln);                                                                                   \
        n++;                                                                                                 \
    } while (0)
    REF("embeddings.word_embeddings.weight", wte, 2, e->V, C, 0);
    REF("embeddings.position_embeddings.weight", wpe, 2, e->P, C, 0);
    if (e->NTT > 0) REF("embeddings.token_type_embeddings.weight", wtt, 2, e->NTT, C, 0);
    REF("embeddings.LayerNorm.weight", elnw, 1, C, 0, 1);
    REF("embeddings.LayerNorm.bias", elnb, 1, C, 0, 1);
    const char **ln = e->arch == ARCH_BERT ? bert_layer_names : distil_layer_names;
    const char *stem = e->arch == ARCH_BERT ? "encoder.layer" : "transformer.layer";
    for (int l = 0; l < e->L; l++) {
        const layer_w *w = &lw[l];
        float *ws[8] = {w->qw, w->kw, w->vw, w->ow, w->ln1w, w->f1w, w->f2w, w->ln2w};
        float *bs[8] = {w->qb, w->kb, w->vb, w->ob, w->ln1b, w->f1b, w->f2b, w->ln2b};
        int64_t rows[8] = {C, C, C, C, C, FF, C, C}, cols[8] = {C, C, C, C, 0, C, FF, 0};
        for (int k = 0; k < 8; k++) {
            char nm[160];
            int isln = cols[k] == 0;
            snprintf(nm, sizeof nm, "%s.%d.%s.weight", stem, l, ln[k]);
            REF(nm, ws[k], isln ? 1 : 2, rows[k], cols[k], isln);
            snprintf(nm, sizeof nm, "%s.%d.%s.bias", stem, l, ln[k]);
            REF(nm, bs[k], 1, rows[k], 0, isln);
        }
    }
    if (e->proj_dim > 0) {
        REF("pulse_proj.weight", pw, 2, e->proj_dim, C, 0);
        REF("pulse_proj.bias", pb, 1, e->proj_dim, 0, 0);
    }
#undef REF
    return n;
}

static int n_tensor_refs(const pulse_encoder *e) {
    return 5 + (e->NTT > 0) + 16 * e->L + 2;
}

static pulse_status load_weights(pulse_encoder *e, const char *path) {
    pulse_safetensors *st = NULL;
    pulse_status rc = pulse_safetensors_open(&st, path);
    if (rc != PULSE_OK) return rc;
    static const char *prefixes[] = {"", "bert.", "distilbert.", "model.", "0.auto_model.", "encoder."};
    const char *prefix = NULL;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !prefix; i++) {
        char nm[200];
        snprintf(nm, sizeof nm, "%sembeddings.word_embeddings.weight", prefixes[i]);
        if (pulse_safetensors_find(st, nm)) prefix = prefixes[i];
    }
    if (!prefix) {
        pulse_safetensors_close(st);
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "%s: no tensor embeddings.word_embeddings.weight (any prefix)", path);
    }
    if (e->NTT == 0) { /* a table the config says is absent would be silently ignored */
        char nm[200];
        snprintf(nm, sizeof nm, "%sembeddings.token_type_embeddings.weight", prefix);
        if (pulse_safetensors_find(st, nm)) {
            pulse_safetensors_close(st);
            return pulse_set_error(
                PULSE_ERR_FORMAT,
                "%s: tensor %s present, but config.json says type_vocab_size 0 (expected >= 1 "
                "for a model with token-type embeddings)",
                path, nm);
        }
    }
    if (e->proj_dim == 0) {
        const pulse_st_tensor *t = pulse_safetensors_find(st, "pulse_proj.weight");
        if (t && t->n_dims == 2 && t->shape[1] == e->C && t->shape[0] > 0 && t->shape[0] <= 65536)
            e->proj_dim = (int)t->shape[0];
    }
    e->lw = pulse_calloc((size_t)e->L, sizeof *e->lw);
    if (!e->lw) {
        pulse_safetensors_close(st);
        return PULSE_ERR_NOMEM;
    }
    size_t n = layout(e, NULL, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    size_t bytes;
    if (pulse_mul_overflows(n, sizeof(float), &bytes) || !(e->w = pulse_malloc(bytes))) {
        pulse_safetensors_close(st);
        return PULSE_ERR_NOMEM;
    }
    relayout(e);
    tensor_ref *refs = pulse_calloc((size_t)n_tensor_refs(e), sizeof *refs);
    if (!refs) {
        pulse_safetensors_close(st);
        return PULSE_ERR_NOMEM;
    }
    int nr = tensor_refs(e, e->lw, e->wte, e->wpe, e->wtt, e->elnw, e->elnb, e->pw, e->pb, refs);
    for (int i = 0; i < nr && rc == PULSE_OK; i++) {
        char nm[200];
        int is_proj = strncmp(refs[i].name, "pulse_proj.", 11) == 0;
        snprintf(nm, sizeof nm, "%s%s", is_proj ? "" : prefix, refs[i].name);
        if (refs[i].is_ln && !pulse_safetensors_find(st, nm)) { /* gamma/beta */
            size_t l = strlen(nm);
            if (l > 7 && strcmp(nm + l - 7, ".weight") == 0)
                strcpy(nm + l - 7, ".gamma");
            else if (l > 5 && strcmp(nm + l - 5, ".bias") == 0)
                strcpy(nm + l - 5, ".beta");
        }
        size_t cnt = (size_t)refs[i].shape[0] * (size_t)(refs[i].n_dims == 2 ? refs[i].shape[1] : 1);
        rc = pulse_safetensors_read_f32(st, nm, refs[i].data, cnt, refs[i].n_dims, refs[i].shape);
    }
    free(refs);
    pulse_safetensors_close(st);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------ */
/* load / free / facts */

pulse_encoder_params pulse_encoder_default_params(void) {
    /* bf16 inference products by default: on MiniLM-L6 every one of the 220 fixture texts stays at cosine >=
     * 0.9999 to sentence-transformers' fp32 vectors (tests/test_encoder_parity.c), at about twice the GEMM
     * rate; a CPU without AVX512-BF16 runs fp32 anyway */
    pulse_encoder_params p = {PULSE_POOL_AUTO, 128, 1, 0, 64, PULSE_PREC_BF16};
    return p;
}

pulse_encoder_train_params pulse_encoder_train_default_params(void) {
    pulse_encoder_train_params t;
    memset(&t, 0, sizeof t);
    t.lr = 2e-5f;
    t.weight_decay = 0.01f;
    t.beta1 = 0.9f;
    t.beta2 = 0.999f;
    t.eps = 1e-8f;
    t.grad_clip = 1.0f;
    t.dropout = -1.0f;
    t.freeze_layers = 0;
    t.proj_dim = 0;
    t.max_batch = 32;
    t.seed = 42;
    return t;
}

static pulse_pooling resolve_pooling(const pulse_encoder *e, pulse_pooling want) {
    if (want == PULSE_POOL_CLS || want == PULSE_POOL_MEAN) return want;
    const char *pp = cfg_str(e->config, "pulse_pooling");
    if (pp) return strcmp(pp, "mean") == 0 ? PULSE_POOL_MEAN : PULSE_POOL_CLS;
    char path[4096];
    pulse_path_join(path, sizeof path, e->dir, "1_Pooling/config.json");
    cJSON *c = NULL;
    pulse_pooling pool = PULSE_POOL_CLS;
    if (pulse_file_exists(path) && read_json(path, &c) == PULSE_OK) {
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(c, "pooling_mode_mean_tokens");
        if (cJSON_IsTrue(mean)) pool = PULSE_POOL_MEAN;
        cJSON_Delete(c);
    }
    pulse_clear_error();
    return pool;
}

static pulse_status check_params(const pulse_encoder_params *p) {
    if (p->pooling < PULSE_POOL_AUTO || p->pooling > PULSE_POOL_MEAN)
        return pulse_set_error(PULSE_ERR_ARG, "encoder pooling: expected auto, cls or mean, found %d",
                               (int)p->pooling);
    if (p->max_len < 2 || p->max_len > 1 << 16)
        return pulse_set_error(PULSE_ERR_ARG, "encoder max_len: expected 2..65536, found %d", p->max_len);
    if (p->precision != PULSE_PREC_FP32 && p->precision != PULSE_PREC_BF16)
        return pulse_set_error(PULSE_ERR_ARG, "encoder precision: expected fp32 (0) or bf16 (1), found %d",
                               (int)p->precision);
    if (p->batch_size < 1 || p->batch_size > 1 << 16)
        return pulse_set_error(PULSE_ERR_ARG, "encoder batch_size: expected 1..65536, found %d",
                               p->batch_size);
    return PULSE_OK;
}

pulse_status pulse_encoder_load(const char *dir, const pulse_encoder_params *params, pulse_encoder **out) {
    *out = NULL;
    pulse_encoder_params p = params ? *params : pulse_encoder_default_params();
    pulse_status rc = check_params(&p);
    if (rc != PULSE_OK) return rc;
    if (p.threads > 0) pulse_set_num_threads(p.threads);
    pulse_encoder *e = pulse_calloc(1, sizeof *e);
    if (!e) return PULSE_ERR_NOMEM;
    size_t dl = strlen(dir);
    e->dir = pulse_malloc(dl + 1);
    if (!e->dir) {
        free(e);
        return PULSE_ERR_NOMEM;
    }
    memcpy(e->dir, dir, dl + 1);
    char path[4096];
    pulse_path_join(path, sizeof path, dir, "config.json");
    if ((rc = read_json(path, &e->config)) != PULSE_OK) goto fail;
    if ((rc = parse_config(e, path)) != PULSE_OK) goto fail;
    if ((rc = pulse_wordpiece_load(&e->tok, dir)) != PULSE_OK) goto fail;
    if (e->tok.n_vocab > e->V) {
        rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tokenizer has %d ids, the model's vocab_size is %d", dir,
                             e->tok.n_vocab, e->V);
        goto fail;
    }
    pulse_path_join(path, sizeof path, dir, "model.safetensors");
    if ((rc = load_weights(e, path)) != PULSE_OK) goto fail;
    if (p.max_len > e->P) p.max_len = e->P;
    e->p = p;
    e->pooling = resolve_pooling(e, p.pooling);
    pulse_rng_seed(&e->rng, 42);
    *out = e;
    return PULSE_OK;
fail:
    pulse_wrap_error(rc, "loading encoder %s", dir);
    pulse_encoder_free(e);
    return rc;
}

static void free_scratch(pulse_encoder *e) {
    float **fs[] = {&e->s_x, &e->s_x1,  &e->s_t,    &e->s_q,    &e->s_k,    &e->s_v,    &e->s_y,
                    &e->s_h, &e->s_att, &e->s_mean, &e->s_rstd, &e->s_pool, &e->s_proj, &e->s_norm};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        free(*fs[i]);
        *fs[i] = NULL;
    }
    free(e->s_pos);
    free(e->s_kmask);
    free(e->s_qkv);
    e->s_qkv = NULL;
    e->s_pos = NULL;
    e->s_kmask = NULL;
    e->s_cap_rows = e->s_cap_att = e->s_cap_b = 0;
}

static void drop_packs(pulse_encoder *e) {
    if (!e->pk) return;
    for (int i = 0; i < 4 * e->L; i++) pulse_bf16_weight_free(e->pk[i]);
    free(e->pk);
    e->pk = NULL;
}

/* the packed weights of bf16 inference (nothing when the bf16 kernel is not used) */
static void ensure_packs(pulse_encoder *e) {
    if (e->pk || !pulse_bf16_supported()) return;
    e->pk = calloc((size_t)4 * e->L, sizeof *e->pk);
    if (!e->pk) return; /* the products convert their weights per call */
    const int C = e->C, FF = e->FF;
    for (int l = 0; l < e->L; l++) {
        const layer_w *w = &e->lw[l];
        e->pk[4 * l + 0] = pulse_bf16_weight_pack(w->qw, 3 * C, C);
        e->pk[4 * l + 1] = pulse_bf16_weight_pack(w->ow, C, C);
        e->pk[4 * l + 2] = pulse_bf16_weight_pack(w->f1w, FF, C);
        e->pk[4 * l + 3] = pulse_bf16_weight_pack(w->f2w, C, FF);
    }
}

void pulse_encoder_free(pulse_encoder *e) {
    if (!e) return;
    drop_packs(e);
    pulse_encoder_train_end(e);
    free_scratch(e);
    pulse_wordpiece_free(&e->tok);
    cJSON_Delete(e->config);
    free(e->w);
    free(e->lw);
    free(e->dir);
    free(e);
}

int pulse_encoder_dim(const pulse_encoder *e) {
    return e->proj_dim > 0 ? e->proj_dim : e->C;
}
int pulse_encoder_hidden(const pulse_encoder *e) {
    return e->C;
}
int pulse_encoder_n_layers(const pulse_encoder *e) {
    return e->L;
}
int pulse_encoder_vocab_size(const pulse_encoder *e) {
    return e->V;
}
const char *pulse_encoder_arch(const pulse_encoder *e) {
    return e->arch == ARCH_BERT ? "bert" : "distilbert";
}
size_t pulse_encoder_n_params(const pulse_encoder *e) {
    return e->nw;
}
float *pulse_encoder_params_data(pulse_encoder *e) {
    drop_packs(e); /* the caller may write the weights */
    return e->w;
}
float *pulse_encoder_grads_data(pulse_encoder *e) {
    return e->g;
}
int pulse_encoder_train_step_count(const pulse_encoder *e) {
    return e->step;
}

pulse_encoder_params pulse_encoder_get_params(const pulse_encoder *e) {
    pulse_encoder_params p = e->p;
    p.pooling = e->pooling;
    return p;
}

pulse_status pulse_encoder_set_params(pulse_encoder *e, const pulse_encoder_params *params) {
    pulse_encoder_params p = params ? *params : pulse_encoder_default_params();
    pulse_status rc = check_params(&p);
    if (rc != PULSE_OK) return rc;
    if (p.max_len > e->P) p.max_len = e->P;
    if (e->training && p.max_len > e->p.max_len)
        return pulse_set_error(PULSE_ERR_STATE, "encoder: max_len cannot grow during training (%d > %d)",
                               p.max_len, e->p.max_len);
    p.threads = e->p.threads;
    e->p = p;
    e->pooling = resolve_pooling(e, p.pooling);
    return PULSE_OK;
}

const char *pulse_encoder_token(const pulse_encoder *e, int id) {
    return (id >= 0 && id < e->tok.n_vocab) ? e->tok.tokens[id] : NULL;
}

/* ------------------------------------------------------------------------------------------------------ */
/* tokenizer */

pulse_status pulse_encoder_tokenize(const pulse_encoder *e, const char *text, int *ids, int max_ids,
                                    int *n_ids) {
    if (!text || !ids || max_ids < 2)
        return pulse_set_error(PULSE_ERR_ARG, "encoder tokenize: need text and room for >= 2 ids");
    int cap = max_ids < e->p.max_len ? max_ids : e->p.max_len;
    int n = pulse_wordpiece_encode(&e->tok, text, ids, cap);
    if (n < 0) return pulse_set_error(PULSE_ERR_NOMEM, "encoder tokenize: out of memory");
    *n_ids = n;
    return PULSE_OK;
}

pulse_status pulse_encoder_tokenize_batch(const pulse_encoder *e, const char *const *texts, int n, int *ids,
                                          int *lens) {
    const int T = e->p.max_len;
    int bad = -1;
#pragma omp parallel for schedule(dynamic, 16) if (n > 32)
    for (int i = 0; i < n; i++) {
        int *row = ids + (size_t)i * T;
        int k = texts[i] ? pulse_wordpiece_encode(&e->tok, texts[i], row, T) : -1;
        if (k < 0) {
#pragma omp critical
            bad = i;
            k = 0;
        }
        lens[i] = k;
        for (int t = k; t < T; t++) row[t] = e->tok.pad_id;
    }
    if (bad >= 0)
        return pulse_set_error(PULSE_ERR_ARG, "encoder tokenize: text %d is NULL or out of memory", bad);
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* forward */

static void act_forward(const pulse_encoder *e, float *out, const float *inp, size_t n) {
    if (e->act == ACT_GELU)
        pulse_gelu_forward(out, inp, n);
    else if (e->act == ACT_GELU_TANH)
        pulse_gelu_tanh_forward(out, inp, n);
    else
        pulse_relu_forward(out, inp, n);
}

static void act_backward(const pulse_encoder *e, float *dinp, const float *inp, const float *dout, size_t n) {
    if (e->act == ACT_GELU)
        pulse_gelu_backward(dinp, inp, dout, n);
    else if (e->act == ACT_GELU_TANH)
        pulse_gelu_tanh_backward(dinp, inp, dout, n);
    else
        pulse_relu_backward(dinp, inp, dout, n);
}

/* the linear layer in the chosen precision */
static void mm_forward(int bf16, float *out, const float *inp, const float *w, const float *b, int N, int C,
                       int OC) {
    if (bf16)
        pulse_matmul_forward_bf16(out, inp, w, b, N, C, OC);
    else
        pulse_matmul_forward(out, inp, w, b, N, C, OC);
}

static void mm_backward(int bf16, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC) {
    if (bf16)
        pulse_matmul_backward_bf16(dinp, dw, db, dout, inp, w, N, C, OC);
    else
        pulse_matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

/* embeddings: out (N, C) = wte[ids] + wpe[pos] (+ wtt[0]) */
static void embed_sum(const pulse_encoder *e, float *out, const int *ids, const int *pos, int N) {
    const int C = e->C;
    pulse_embedding_forward(out, ids, e->wte, N, C, e->V);
#pragma omp parallel for schedule(static) if (N > 64)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *p = e->wpe + (size_t)pos[n] * C;
        if (e->wtt)
            for (int c = 0; c < C; c++) o[c] += p[c] + e->wtt[c];
        else
            for (int c = 0; c < C; c++) o[c] += p[c];
    }
}

/* one block; x (N, C) input, a's buffers receive the activations (a->x2 = output). p = dropout (0 = off).
 * bf16: the linear layers in bf16; att_bf16 (inference, bf16): the attention products too, and the FFN in one
 * pass (a->h, a->g not kept); pk: the layer's 4 packed weights (qkv, o, ffn1, ffn2) or NULL. */
static void layer_forward(pulse_encoder *e, const layer_w *w, const layer_a *a, const float *x,
                          float *o_scratch, float *qkv, const uint8_t *kmask, int B, int T, float p, int bf16,
                          int att_bf16, pulse_bf16_weight *const *pk) {
    const int C = e->C, FF = e->FF, N = B * T;
    const size_t NC = (size_t)N * C;
    /* qkv (N, 3C) = x @ [Wq; Wk; Wv]^T + [bq; bk; bv], split into q, k, v (N, C) (bf16: by the product's
     * own stores) */
    if (bf16) {
        float *const qkv_out[3] = {a->q, a->k, a->v};
        pulse_matmul_forward_split_bf16(qkv_out, 3, x, w->qw, w->qb, N, C, 3 * C, pk ? pk[0] : NULL);
    } else {
        mm_forward(0, qkv, x, w->qw, w->qb, N, C, 3 * C);
#pragma omp parallel for schedule(static) if (N > 256)
        for (int n = 0; n < N; n++) {
            const float *r = qkv + (size_t)n * 3 * C;
            memcpy(a->q + (size_t)n * C, r, sizeof(float) * (size_t)C);
            memcpy(a->k + (size_t)n * C, r + C, sizeof(float) * (size_t)C);
            memcpy(a->v + (size_t)n * C, r + 2 * C, sizeof(float) * (size_t)C);
        }
    }
    if (att_bf16) /* inference: the probabilities are not kept */
        pulse_attention_forward_bf16(a->atty, NULL, a->q, a->k, a->v, kmask, B, T, C, e->NH, 0);
    else
        pulse_attention_forward(a->atty, a->att, a->q, a->k, a->v, kmask, B, T, C, e->NH, 0);
    if (p > 0.0f) {
        mm_forward(bf16, o_scratch, a->atty, w->ow, w->ob, N, C, C);
        pulse_dropout_forward(a->res1, a->mo, o_scratch, NC, p, &e->rng);
        pulse_residual_forward(a->res1, a->res1, x, NC);
    } else if (bf16) { /* residual added by the product's stores */
        pulse_matmul_forward_residual_bf16(a->res1, a->atty, w->ow, w->ob, x, N, C, C, pk ? pk[1] : NULL);
    } else {
        mm_forward(0, a->res1, a->atty, w->ow, w->ob, N, C, C);
        pulse_residual_forward(a->res1, a->res1, x, NC);
    }
    pulse_layernorm_forward(a->x1, a->mean1, a->rstd1, a->res1, w->ln1w, w->ln1b, N, C, e->eps);
    if (att_bf16 && e->act == ACT_GELU && p <= 0.0f) {
        /* inference: the whole FFN per block of rows, its hidden activations kept in bf16 per thread (a->h
         * only as the fallback's scratch) */
        pulse_ffn_forward_bf16(a->res2, a->h, a->x1, w->f1w, w->f1b, w->f2w, w->f2b, a->x1, N, C, FF,
                               pk ? pk[2] : NULL, pk ? pk[3] : NULL);
        pulse_layernorm_forward(a->x2, a->mean2, a->rstd2, a->res2, w->ln2w, w->ln2b, N, C, e->eps);
        return;
    }
    if (bf16 && e->act == ACT_GELU) { /* GELU by the product's stores (h kept when it has its own buffer) */
        pulse_matmul_forward_gelu_bf16(a->h != a->g ? a->h : NULL, a->g, a->x1, w->f1w, w->f1b, N, C, FF,
                                       pk ? pk[2] : NULL);
    } else {
        mm_forward(bf16, a->h, a->x1, w->f1w, w->f1b, N, C, FF);
        act_forward(e, a->g, a->h, (size_t)N * FF);
    }
    if (p > 0.0f) {
        mm_forward(bf16, o_scratch, a->g, w->f2w, w->f2b, N, FF, C);
        pulse_dropout_forward(a->res2, a->mf, o_scratch, NC, p, &e->rng);
        pulse_residual_forward(a->res2, a->res2, a->x1, NC);
    } else if (bf16) {
        pulse_matmul_forward_residual_bf16(a->res2, a->g, w->f2w, w->f2b, a->x1, N, FF, C, pk ? pk[3] : NULL);
    } else {
        mm_forward(0, a->res2, a->g, w->f2w, w->f2b, N, FF, C);
        pulse_residual_forward(a->res2, a->res2, a->x1, NC);
    }
    pulse_layernorm_forward(a->x2, a->mean2, a->rstd2, a->res2, w->ln2w, w->ln2b, N, C, e->eps);
}

/* pooled (B, C) from x (B, T, C); then the head and normalisation into out (B, D) */
static void pool_head(const pulse_encoder *e, const float *x, const int *lens, int B, int T, float *pooled,
                      float *proj, float *norms, float *out) {
    const int C = e->C, D = pulse_encoder_dim(e);
    for (int b = 0; b < B; b++) {
        float *pb = pooled + (size_t)b * C;
        const float *xb = x + (size_t)b * T * C;
        if (e->pooling == PULSE_POOL_CLS) {
            memcpy(pb, xb, sizeof(float) * (size_t)C);
        } else {
            memset(pb, 0, sizeof(float) * (size_t)C);
            for (int t = 0; t < lens[b]; t++)
                for (int c = 0; c < C; c++) pb[c] += xb[(size_t)t * C + c];
            float inv = 1.0f / (float)(lens[b] > 0 ? lens[b] : 1);
            for (int c = 0; c < C; c++) pb[c] *= inv;
        }
    }
    const float *y = pooled;
    if (e->proj_dim > 0) {
        pulse_matmul_forward(proj, pooled, e->pw, e->pb, B, C, D);
        y = proj;
    }
    if (e->p.normalize)
        pulse_l2norm_forward(out, norms, y, B, D, 1e-12f);
    else
        memcpy(out, y, sizeof(float) * (size_t)B * D);
}

/* inference in bf16: asked for and the kernel is there (else the fp32 path, not the kernels' fallbacks) */
static int infer_bf16(const pulse_encoder *e) {
    return e->p.precision == PULSE_PREC_BF16 && pulse_bf16_supported();
}

static pulse_status ensure_scratch(pulse_encoder *e, int B, int T) {
    /* bf16 inference keeps no probabilities (B, NH, T, T) and splits the QKV product in its stores */
    const int f32 = !infer_bf16(e);
    size_t rows = (size_t)B * T, att = f32 ? (size_t)B * e->NH * T * T : 1;
    if (rows <= e->s_cap_rows && att <= e->s_cap_att && (size_t)B <= e->s_cap_b && e->s_pool &&
        (!f32 || e->s_f32))
        return PULSE_OK;
    free_scratch(e);
    const size_t C = (size_t)e->C, FF = (size_t)e->FF, D = (size_t)pulse_encoder_dim(e);
    e->s_x = pulse_malloc(sizeof(float) * rows * C);
    e->s_x1 = pulse_malloc(sizeof(float) * rows * C);
    e->s_t = pulse_malloc(sizeof(float) * rows * C);
    e->s_q = pulse_malloc(sizeof(float) * rows * C);
    e->s_k = pulse_malloc(sizeof(float) * rows * C);
    e->s_v = pulse_malloc(sizeof(float) * rows * C);
    e->s_y = pulse_malloc(sizeof(float) * rows * C);
    e->s_h = pulse_malloc(sizeof(float) * rows * FF);
    e->s_att = pulse_malloc(sizeof(float) * att);
    e->s_mean = pulse_malloc(sizeof(float) * rows);
    e->s_rstd = pulse_malloc(sizeof(float) * rows);
    e->s_pool = pulse_malloc(sizeof(float) * (size_t)B * C);
    e->s_proj = pulse_malloc(sizeof(float) * (size_t)B * D);
    e->s_norm = pulse_malloc(sizeof(float) * (size_t)B);
    e->s_pos = pulse_malloc(sizeof(int) * rows);
    e->s_kmask = pulse_malloc(rows);
    e->s_qkv = pulse_malloc(sizeof(float) * (f32 ? rows * 3 * C : 1));
    if (!e->s_x || !e->s_x1 || !e->s_t || !e->s_q || !e->s_k || !e->s_v || !e->s_y || !e->s_h || !e->s_att ||
        !e->s_mean || !e->s_rstd || !e->s_pool || !e->s_proj || !e->s_norm || !e->s_pos || !e->s_kmask ||
        !e->s_qkv) {
        free_scratch(e);
        return pulse_set_error(PULSE_ERR_NOMEM, "encoder: out of memory for a batch of %d x %d tokens", B, T);
    }
    e->s_cap_rows = rows;
    e->s_cap_att = att;
    e->s_cap_b = (size_t)B;
    e->s_f32 = f32;
    return PULSE_OK;
}

/* inference on a padded batch: ids (B, T) with lens; out (B, D); last hidden state stays in s_x */
static pulse_status forward_infer(pulse_encoder *e, const int *ids, const int *lens, int B, int T,
                                  float *out) {
    pulse_status rc = ensure_scratch(e, B, T);
    if (rc != PULSE_OK) return rc;
    const int C = e->C, N = B * T;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            e->s_pos[b * T + t] = t;
            e->s_kmask[b * T + t] = t < lens[b];
        }
    embed_sum(e, e->s_t, ids, e->s_pos, N);
    pulse_layernorm_forward(e->s_x, e->s_mean, e->s_rstd, e->s_t, e->elnw, e->elnb, N, C, e->eps);
    layer_a a = {e->s_q, e->s_k, e->s_v, e->s_att, e->s_y,    e->s_t,    e->s_x1, e->s_mean, e->s_rstd,
                 e->s_h, e->s_h, e->s_t, e->s_x,   e->s_mean, e->s_rstd, NULL,    NULL};
    const int bf16 = infer_bf16(e);
    if (bf16) ensure_packs(e);
    for (int l = 0; l < e->L; l++)
        layer_forward(e, &e->lw[l], &a, e->s_x, NULL, e->s_qkv, e->s_kmask, B, T, 0.0f, bf16, bf16,
                      bf16 && e->pk ? e->pk + 4 * l : NULL);
    pool_head(e, e->s_x, lens, B, T, e->s_pool, e->s_proj, e->s_norm, out);
    return PULSE_OK;
}

static pulse_status check_ids(const pulse_encoder *e, const int *ids, const int *lens, int n, int stride) {
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > stride || lens[i] > e->p.max_len)
            return pulse_set_error(PULSE_ERR_RANGE, "encoder: text %d has %d tokens, expected 1..%d", i,
                                   lens[i], stride < e->p.max_len ? stride : e->p.max_len);
        for (int t = 0; t < lens[i]; t++)
            if (ids[(size_t)i * stride + t] < 0 || ids[(size_t)i * stride + t] >= e->V)
                return pulse_set_error(PULSE_ERR_RANGE, "encoder: text %d token %d: id %d outside [0, %d)", i,
                                       t, ids[(size_t)i * stride + t], e->V);
    }
    return PULSE_OK;
}

typedef struct {
    int len, idx;
} len_idx;
static int cmp_len_desc(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return y->len - x->len;
    return x->idx - y->idx;
}

pulse_status pulse_encoder_encode_ids(pulse_encoder *e, const int *ids, const int *lens, int n, int stride,
                                      float *out) {
    if (n <= 0) return PULSE_OK;
    pulse_status rc = check_ids(e, ids, lens, n, stride);
    if (rc != PULSE_OK) return rc;
    const int D = pulse_encoder_dim(e), BS = e->p.batch_size;
    len_idx *ord = pulse_malloc(sizeof *ord * (size_t)n);
    int *bids = pulse_malloc(sizeof(int) * (size_t)(BS < n ? BS : n) * (size_t)e->p.max_len);
    int *blens = pulse_malloc(sizeof(int) * (size_t)BS);
    float *bout = pulse_malloc(sizeof(float) * (size_t)BS * D);
    if (!ord || !bids || !blens || !bout) {
        free(ord);
        free(bids);
        free(blens);
        free(bout);
        return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) ord[i] = (len_idx){lens[i], i};
    qsort(ord, (size_t)n, sizeof *ord, cmp_len_desc);
    for (int s = 0; s < n && rc == PULSE_OK; s += BS) {
        int B = n - s < BS ? n - s : BS, T = ord[s].len;
        for (int b = 0; b < B; b++) {
            const int *src = ids + (size_t)ord[s + b].idx * stride;
            int L = ord[s + b].len;
            blens[b] = L;
            for (int t = 0; t < T; t++) bids[(size_t)b * T + t] = t < L ? src[t] : e->tok.pad_id;
        }
        rc = forward_infer(e, bids, blens, B, T, bout);
        for (int b = 0; b < B && rc == PULSE_OK; b++)
            memcpy(out + (size_t)ord[s + b].idx * D, bout + (size_t)b * D, sizeof(float) * (size_t)D);
    }
    free(ord);
    free(bids);
    free(blens);
    free(bout);
    return rc;
}

pulse_status pulse_encoder_encode(pulse_encoder *e, const char *const *texts, int n, float *out) {
    if (n <= 0) return PULSE_OK;
    if (!texts || !out) return pulse_set_error(PULSE_ERR_ARG, "encoder encode: NULL texts or output");
    int *ids = pulse_malloc(sizeof(int) * (size_t)n * (size_t)e->p.max_len);
    int *lens = pulse_malloc(sizeof(int) * (size_t)n);
    pulse_status rc =
        (!ids || !lens) ? PULSE_ERR_NOMEM : pulse_encoder_tokenize_batch(e, texts, n, ids, lens);
    if (rc == PULSE_OK) rc = pulse_encoder_encode_ids(e, ids, lens, n, e->p.max_len, out);
    free(ids);
    free(lens);
    return rc;
}

pulse_status pulse_encoder_hidden_states(pulse_encoder *e, const char *text, float *hidden, int max_tokens,
                                         int *n_tokens) {
    int *ids = pulse_malloc(sizeof(int) * (size_t)e->p.max_len);
    if (!ids) return PULSE_ERR_NOMEM;
    int n = 0;
    pulse_status rc = pulse_encoder_tokenize(e, text, ids, e->p.max_len, &n);
    float *out = rc == PULSE_OK ? pulse_malloc(sizeof(float) * (size_t)pulse_encoder_dim(e)) : NULL;
    if (rc == PULSE_OK && !out) rc = PULSE_ERR_NOMEM;
    if (rc == PULSE_OK) rc = forward_infer(e, ids, &n, 1, n, out);
    if (rc == PULSE_OK) {
        int k = n < max_tokens ? n : max_tokens;
        memcpy(hidden, e->s_x, sizeof(float) * (size_t)k * e->C);
        *n_tokens = n;
    }
    free(out);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------------------------------------------ */
/* training */

static float train_dropout(const pulse_encoder *e) {
    return e->tp.dropout < 0.0f ? e->cfg_dropout : e->tp.dropout;
}

void pulse_encoder_train_end(pulse_encoder *e) {
    if (!e || !e->training) return;
    if (e->la) {
        for (int l = 0; l < e->L; l++) {
            layer_a *a = &e->la[l];
            float *fs[] = {a->q,     a->k, a->v, a->att,  a->atty, a->res1,  a->x1,   a->mean1,
                           a->rstd1, a->h, a->g, a->res2, a->x2,   a->mean2, a->rstd2};
            for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(fs[i]);
            free(a->mo);
            free(a->mf);
        }
    }
    float *fs[] = {e->g,     e->m,    e->v,      e->a_e,    e->a_eln, e->a_emean, e->a_erstd,
                   e->a_x0,  e->a_o,  e->a_pool, e->a_proj, e->a_out, e->a_norm,  e->d_x,
                   e->d_res, e->d_x1, e->d_o,    e->d_atty, e->d_q,   e->d_k,     e->d_v,
                   e->d_att, e->d_g,  e->d_h,    e->d_pool, e->d_proj};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(fs[i]);
    free(e->a_qkv);
    free(e->la);
    free(e->lg);
    free(e->a_ids);
    free(e->a_pos);
    free(e->a_zero);
    free(e->a_lens);
    free(e->a_kmask);
    free(e->a_emask);
    int step = e->step;
    /* clear every training field, keep the rest */
    e->training = 0;
    e->g = e->m = e->v = NULL;
    e->lg = NULL;
    e->gwte = e->gwpe = e->gwtt = e->gelnw = e->gelnb = e->gpw = e->gpb = NULL;
    e->a_ids = e->a_pos = e->a_zero = e->a_lens = NULL;
    e->a_kmask = e->a_emask = NULL;
    e->a_e = e->a_eln = e->a_emean = e->a_erstd = e->a_x0 = e->a_o = e->a_qkv = NULL;
    e->la = NULL;
    e->a_pool = e->a_proj = e->a_out = e->a_norm = NULL;
    e->d_x = e->d_res = e->d_x1 = e->d_o = e->d_atty = e->d_q = e->d_k = e->d_v = e->d_att = e->d_g = e->d_h =
        e->d_pool = e->d_proj = NULL;
    e->a_rows = e->a_att = 0;
    e->a_valid = 0;
    e->step = step;
}

static pulse_status check_train_params(const pulse_encoder *e, const pulse_encoder_train_params *t) {
    if (!(t->lr >= 0.0f) || !(t->weight_decay >= 0.0f) || !(t->beta1 >= 0.0f && t->beta1 < 1.0f) ||
        !(t->beta2 >= 0.0f && t->beta2 < 1.0f) || !(t->eps > 0.0f) || !(t->dropout < 1.0f))
        return pulse_set_error(PULSE_ERR_ARG,
                               "encoder training: lr, weight_decay, betas, eps or dropout out of range");
    if (t->freeze_layers < 0 || t->freeze_layers > e->L)
        return pulse_set_error(PULSE_ERR_ARG, "encoder training: freeze_layers %d outside 0..%d",
                               t->freeze_layers, e->L);
    if (t->precision != PULSE_PREC_FP32 && t->precision != PULSE_PREC_BF16)
        return pulse_set_error(PULSE_ERR_ARG,
                               "encoder training: precision: expected fp32 (0) or bf16 (1), found %d",
                               (int)t->precision);
    if (t->max_batch < 1 || t->max_batch > 1 << 16 || t->proj_dim < 0 || t->proj_dim > 65536)
        return pulse_set_error(PULSE_ERR_ARG, "encoder training: max_batch or proj_dim out of range");
    return PULSE_OK;
}

static pulse_status add_proj_head(pulse_encoder *e, int D, uint64_t seed) {
    e->proj_dim = D;
    size_t n = layout(e, NULL, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    drop_packs(e);
    float *w = realloc(e->w, sizeof(float) * n);
    if (!w) {
        e->proj_dim = 0;
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    e->w = w;
    relayout(e);
    pulse_rng r;
    pulse_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    float a = sqrtf(6.0f / (float)(e->C + D)); /* Xavier uniform */
    for (size_t i = 0; i < (size_t)D * e->C; i++) e->pw[i] = (2.0f * pulse_rng_float(&r) - 1.0f) * a;
    memset(e->pb, 0, sizeof(float) * (size_t)D);
    free_scratch(e);
    return PULSE_OK;
}

pulse_status pulse_encoder_train_begin(pulse_encoder *e, const pulse_encoder_train_params *tp) {
    pulse_encoder_train_params t = tp ? *tp : pulse_encoder_train_default_params();
    pulse_status rc = check_train_params(e, &t);
    if (rc != PULSE_OK) return rc;
    pulse_encoder_train_end(e);
    if (t.proj_dim > 0 && e->proj_dim == 0 && (rc = add_proj_head(e, t.proj_dim, t.seed)) != PULSE_OK)
        return rc;
    e->tp = t;
    pulse_rng_seed(&e->rng, t.seed);
    const size_t C = (size_t)e->C, FF = (size_t)e->FF, D = (size_t)pulse_encoder_dim(e);
    const size_t MB = (size_t)t.max_batch, rows = MB * (size_t)e->p.max_len;
    const size_t att = MB * (size_t)e->NH * (size_t)e->p.max_len * (size_t)e->p.max_len;
    e->training = 1;
    int ok = 1;
#define AF(ptr, n) ok = ok && ((ptr) = pulse_malloc(sizeof(float) * (n))) != NULL
#define AZ(ptr, n) ok = ok && ((ptr) = pulse_calloc((n), sizeof(float))) != NULL
    AZ(e->g, e->nw);
    AZ(e->m, e->nw);
    AZ(e->v, e->nw);
    ok = ok && (e->lg = pulse_calloc((size_t)e->L, sizeof *e->lg)) != NULL;
    ok = ok && (e->la = pulse_calloc((size_t)e->L, sizeof *e->la)) != NULL;
    if (ok) relayout(e);
    for (int l = 0; ok && l < e->L; l++) {
        layer_a *a = &e->la[l];
        AF(a->q, rows * C);
        AF(a->k, rows * C);
        AF(a->v, rows * C);
        AF(a->att, att);
        AF(a->atty, rows * C);
        AF(a->res1, rows * C);
        AF(a->x1, rows * C);
        AF(a->mean1, rows);
        AF(a->rstd1, rows);
        AF(a->h, rows * FF);
        AF(a->g, rows * FF);
        AF(a->res2, rows * C);
        AF(a->x2, rows * C);
        AF(a->mean2, rows);
        AF(a->rstd2, rows);
        ok = ok && (a->mo = pulse_malloc(rows * C)) != NULL;
        ok = ok && (a->mf = pulse_malloc(rows * C)) != NULL;
    }
    AF(e->a_e, rows * C);
    AF(e->a_eln, rows * C);
    AF(e->a_emean, rows);
    AF(e->a_erstd, rows);
    AF(e->a_x0, rows * C);
    AF(e->a_o, rows * C);
    AF(e->a_qkv, rows * 3 * C);
    AF(e->a_pool, MB * C);
    AF(e->a_proj, MB * D);
    AF(e->a_out, MB * D);
    AF(e->a_norm, MB);
    AF(e->d_x, rows * C);
    AF(e->d_res, rows * C);
    AF(e->d_x1, rows * C);
    AF(e->d_o, rows * C);
    AF(e->d_atty, rows * C);
    AF(e->d_q, rows * C);
    AF(e->d_k, rows * C);
    AF(e->d_v, rows * C);
    AF(e->d_att, att);
    AF(e->d_g, rows * FF);
    AF(e->d_h, rows * FF);
    AF(e->d_pool, MB * C);
    AF(e->d_proj, MB * D);
#undef AF
#undef AZ
    ok = ok && (e->a_ids = pulse_malloc(sizeof(int) * rows)) != NULL;
    ok = ok && (e->a_pos = pulse_malloc(sizeof(int) * rows)) != NULL;
    ok = ok && (e->a_zero = pulse_calloc(rows, sizeof(int))) != NULL;
    ok = ok && (e->a_lens = pulse_malloc(sizeof(int) * MB)) != NULL;
    ok = ok && (e->a_kmask = pulse_malloc(rows)) != NULL;
    ok = ok && (e->a_emask = pulse_malloc(rows * C)) != NULL;
    if (!ok) {
        pulse_encoder_train_end(e);
        return pulse_set_error(PULSE_ERR_NOMEM, "encoder training: out of memory for %zu x %d tokens", MB,
                               e->p.max_len);
    }
    e->a_rows = rows;
    e->a_att = att;
    e->a_valid = 0;
    return PULSE_OK;
}

pulse_status pulse_encoder_set_train_params(pulse_encoder *e, const pulse_encoder_train_params *params) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: set_train_params before train_begin");
    const pulse_encoder_train_params dflt = pulse_encoder_train_default_params(),
                                     *tp = params ? params : &dflt;
    pulse_status rc = check_train_params(e, tp);
    if (rc != PULSE_OK) return rc;
    if (tp->max_batch > e->tp.max_batch || (tp->proj_dim > 0 && tp->proj_dim != pulse_encoder_dim(e)))
        return pulse_set_error(PULSE_ERR_STATE,
                               "encoder: max_batch / proj_dim change needs a new train_begin");
    int mb = e->tp.max_batch, pd = e->tp.proj_dim;
    e->tp = *tp;
    e->tp.max_batch = mb;
    e->tp.proj_dim = pd;
    return PULSE_OK;
}

pulse_status pulse_encoder_forward_train_ids(pulse_encoder *e, const int *ids, const int *lens, int n,
                                             int stride, float *out) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: forward_train before train_begin");
    if (n < 1 || n > e->tp.max_batch)
        return pulse_set_error(PULSE_ERR_RANGE, "encoder: forward_train batch %d outside 1..%d (max_batch)",
                               n, e->tp.max_batch);
    pulse_status rc = check_ids(e, ids, lens, n, stride);
    if (rc != PULSE_OK) return rc;
    int T = 0;
    for (int b = 0; b < n; b++) T = lens[b] > T ? lens[b] : T;
    const int B = n, C = e->C, N = B * T;
    const float p = train_dropout(e);
    for (int b = 0; b < B; b++) {
        e->a_lens[b] = lens[b];
        for (int t = 0; t < T; t++) {
            e->a_ids[b * T + t] = t < lens[b] ? ids[(size_t)b * stride + t] : e->tok.pad_id;
            e->a_pos[b * T + t] = t;
            e->a_kmask[b * T + t] = t < lens[b];
        }
    }
    embed_sum(e, e->a_e, e->a_ids, e->a_pos, N);
    pulse_layernorm_forward(e->a_eln, e->a_emean, e->a_erstd, e->a_e, e->elnw, e->elnb, N, C, e->eps);
    if (p > 0.0f)
        pulse_dropout_forward(e->a_x0, e->a_emask, e->a_eln, (size_t)N * C, p, &e->rng);
    else
        memcpy(e->a_x0, e->a_eln, sizeof(float) * (size_t)N * C);
    const float *x = e->a_x0;
    for (int l = 0; l < e->L; l++) {
        layer_forward(e, &e->lw[l], &e->la[l], x, e->a_o, e->a_qkv, e->a_kmask, B, T, p,
                      e->tp.precision == PULSE_PREC_BF16, 0, NULL);
        x = e->la[l].x2;
    }
    pool_head(e, x, e->a_lens, B, T, e->a_pool, e->a_proj, e->a_norm, e->a_out);
    memcpy(out, e->a_out, sizeof(float) * (size_t)B * pulse_encoder_dim(e));
    e->a_B = B;
    e->a_T = T;
    e->a_valid = 1;
    return PULSE_OK;
}

pulse_status pulse_encoder_forward_train(pulse_encoder *e, const char *const *texts, int n, float *out) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: forward_train before train_begin");
    if (n < 1 || n > e->tp.max_batch)
        return pulse_set_error(PULSE_ERR_RANGE, "encoder: forward_train batch %d outside 1..%d (max_batch)",
                               n, e->tp.max_batch);
    int *ids = pulse_malloc(sizeof(int) * (size_t)n * (size_t)e->p.max_len);
    int *lens = pulse_malloc(sizeof(int) * (size_t)n);
    pulse_status rc =
        (!ids || !lens) ? PULSE_ERR_NOMEM : pulse_encoder_tokenize_batch(e, texts, n, ids, lens);
    if (rc == PULSE_OK) rc = pulse_encoder_forward_train_ids(e, ids, lens, n, e->p.max_len, out);
    free(ids);
    free(lens);
    return rc;
}

/* gradient of one block: dx (N, C) holds d(x2) on entry and d(x) (the block input) on exit */
static void layer_backward(pulse_encoder *e, int l, const float *x, float p) {
    const layer_w *w = &e->lw[l], *g = &e->lg[l];
    const layer_a *a = &e->la[l];
    const int B = e->a_B, T = e->a_T, C = e->C, FF = e->FF, N = B * T;
    const size_t NC = (size_t)N * C, NF = (size_t)N * FF;
    const int bf16 = e->tp.precision == PULSE_PREC_BF16;
    memset(e->d_res, 0, sizeof(float) * NC);
    pulse_layernorm_backward(e->d_res, g->ln2w, g->ln2b, e->d_x, a->res2, w->ln2w, a->mean2, a->rstd2, N, C);
    memcpy(e->d_x1, e->d_res, sizeof(float) * NC); /* residual path into x1 */
    const float *dff = e->d_res;
    if (p > 0.0f) {
        memset(e->d_o, 0, sizeof(float) * NC);
        pulse_dropout_backward(e->d_o, e->d_res, a->mf, NC, p);
        dff = e->d_o;
    }
    if (bf16 && e->act == ACT_GELU) { /* d_h = (dff W2) * GELU'(h) by the product's stores */
        mm_backward(bf16, NULL, g->f2w, g->f2b, dff, a->g, w->f2w, N, FF, C);
        pulse_matmul_backward_gelu_bf16(e->d_h, dff, w->f2w, a->h, N, FF, C);
    } else {
        memset(e->d_g, 0, sizeof(float) * NF);
        mm_backward(bf16, e->d_g, g->f2w, g->f2b, dff, a->g, w->f2w, N, FF, C);
        memset(e->d_h, 0, sizeof(float) * NF);
        act_backward(e, e->d_h, a->h, e->d_g, NF);
    }
    mm_backward(bf16, e->d_x1, g->f1w, g->f1b, e->d_h, a->x1, w->f1w, N, C, FF);
    memset(e->d_res, 0, sizeof(float) * NC);
    pulse_layernorm_backward(e->d_res, g->ln1w, g->ln1b, e->d_x1, a->res1, w->ln1w, a->mean1, a->rstd1, N, C);
    memcpy(e->d_x, e->d_res, sizeof(float) * NC); /* residual path into x */
    const float *dop = e->d_res;
    if (p > 0.0f) {
        memset(e->d_o, 0, sizeof(float) * NC);
        pulse_dropout_backward(e->d_o, e->d_res, a->mo, NC, p);
        dop = e->d_o;
    }
    memset(e->d_atty, 0, sizeof(float) * NC);
    mm_backward(bf16, e->d_atty, g->ow, g->ob, dop, a->atty, w->ow, N, C, C);
    memset(e->d_q, 0, sizeof(float) * NC);
    memset(e->d_k, 0, sizeof(float) * NC);
    memset(e->d_v, 0, sizeof(float) * NC);
    pulse_attention_backward(e->d_q, e->d_k, e->d_v, e->d_att, e->d_atty, a->att, a->q, a->k, a->v, B, T, C,
                             e->NH);
    /* pack dq, dk, dv into d(qkv) (N, 3C): one product for dx and one for d[Wq; Wk; Wv] */
    float *dqkv = e->a_qkv;
#pragma omp parallel for schedule(static) if (N > 256)
    for (int n = 0; n < N; n++) {
        float *r = dqkv + (size_t)n * 3 * C;
        memcpy(r, e->d_q + (size_t)n * C, sizeof(float) * (size_t)C);
        memcpy(r + C, e->d_k + (size_t)n * C, sizeof(float) * (size_t)C);
        memcpy(r + 2 * C, e->d_v + (size_t)n * C, sizeof(float) * (size_t)C);
    }
    /* the lowest trainable layer above frozen ones: nothing below needs d(x), skip that product */
    const int need_dx = !(e->tp.freeze_layers > 0 && l == e->tp.freeze_layers);
    mm_backward(bf16, need_dx ? e->d_x : NULL, g->qw, g->qb, dqkv, x, w->qw, N, C, 3 * C);
}

pulse_status pulse_encoder_backward(pulse_encoder *e, const float *dout) {
    if (!e->training || !e->a_valid)
        return pulse_set_error(PULSE_ERR_STATE, "encoder: backward needs a forward_train first");
    const int B = e->a_B, T = e->a_T, C = e->C, D = pulse_encoder_dim(e), N = B * T;
    const size_t NC = (size_t)N * C;
    const float p = train_dropout(e);
    /* head: normalisation, projection */
    const float *dy = dout;
    if (e->p.normalize) {
        memset(e->d_proj, 0, sizeof(float) * (size_t)B * D);
        pulse_l2norm_backward(e->d_proj, dout, e->a_out, e->a_norm, B, D);
        dy = e->d_proj;
    }
    const float *dpool = dy;
    if (e->proj_dim > 0) {
        memset(e->d_pool, 0, sizeof(float) * (size_t)B * C);
        pulse_matmul_backward(e->d_pool, e->gpw, e->gpb, dy, e->a_pool, e->pw, B, C, D);
        dpool = e->d_pool;
    }
    /* pooling */
    memset(e->d_x, 0, sizeof(float) * NC);
    for (int b = 0; b < B; b++) {
        const float *dp = dpool + (size_t)b * C;
        float *dx = e->d_x + (size_t)b * T * C;
        if (e->pooling == PULSE_POOL_CLS) {
            memcpy(dx, dp, sizeof(float) * (size_t)C);
        } else {
            float inv = 1.0f / (float)e->a_lens[b];
            for (int t = 0; t < e->a_lens[b]; t++)
                for (int c = 0; c < C; c++) dx[(size_t)t * C + c] = dp[c] * inv;
        }
    }
    const int fz = e->tp.freeze_layers;
    for (int l = e->L - 1; l >= fz; l--) layer_backward(e, l, l > 0 ? e->la[l - 1].x2 : e->a_x0, p);
    if (fz > 0) return PULSE_OK;
    /* embeddings: dropout, LayerNorm, tables */
    const float *dln = e->d_x;
    if (p > 0.0f) {
        memset(e->d_res, 0, sizeof(float) * NC);
        pulse_dropout_backward(e->d_res, e->d_x, e->a_emask, NC, p);
        dln = e->d_res;
    }
    memset(e->d_x1, 0, sizeof(float) * NC);
    pulse_layernorm_backward(e->d_x1, e->gelnw, e->gelnb, dln, e->a_e, e->elnw, e->a_emean, e->a_erstd, N, C);
    pulse_embedding_backward(e->gwte, e->d_x1, e->a_ids, N, C, e->V);
    pulse_embedding_backward(e->gwpe, e->d_x1, e->a_pos, N, C, e->P);
    if (e->NTT > 0) pulse_embedding_backward(e->gwtt, e->d_x1, e->a_zero, N, C, e->NTT);
    return PULSE_OK;
}

/* the trainable slice of the flat arrays: everything above the frozen prefix */
static size_t trainable_off(const pulse_encoder *e) {
    return e->tp.freeze_layers > 0 ? e->emb_n + (size_t)e->tp.freeze_layers * e->layer_n : 0;
}

void pulse_encoder_zero_grad(pulse_encoder *e) {
    if (e->g) memset(e->g, 0, sizeof(float) * e->nw);
}

double pulse_encoder_grad_norm(const pulse_encoder *e) {
    if (!e->g) return 0.0;
    size_t off = trainable_off(e);
    return sqrt(pulse_grad_norm_sq(e->g + off, e->nw - off));
}

pulse_status pulse_encoder_step(pulse_encoder *e, float lr, double *grad_norm) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: step before train_begin");
    if (lr <= 0.0f) lr = e->tp.lr;
    size_t off = trainable_off(e), n = e->nw - off;
    double gn = sqrt(pulse_grad_norm_sq(e->g + off, n));
    if (grad_norm) *grad_norm = gn;
    if (!isfinite(gn)) return pulse_set_error(PULSE_ERR_RANGE, "encoder: gradient norm is %g", gn);
    if (e->tp.grad_clip > 0.0f && gn > e->tp.grad_clip)
        pulse_scale(e->g + off, n, (float)(e->tp.grad_clip / gn));
    e->step++;
    drop_packs(e); /* the weights change: bf16 inference packs them again */
    pulse_adamw_update(e->w + off, e->g + off, e->m + off, e->v + off, n, lr, e->tp.beta1, e->tp.beta2,
                       e->tp.eps, e->tp.weight_decay, e->step);
    return PULSE_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* saving */

static pulse_status write_json(const char *path, cJSON *obj) {
    char *s = cJSON_Print(obj);
    if (!s) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    pulse_status rc = pulse_write_file_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

static pulse_status make_dir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return pulse_set_error(PULSE_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return PULSE_OK;
}

pulse_status pulse_encoder_save(const pulse_encoder *e, const char *dir) {
    pulse_status rc = make_dir(dir);
    if (rc != PULSE_OK) return rc;
    char path[4096];
    /* weights */
    int nr = n_tensor_refs(e);
    tensor_ref *refs = pulse_calloc((size_t)nr, sizeof *refs);
    pulse_st_out *outs = pulse_calloc((size_t)nr, sizeof *outs);
    if (!refs || !outs) {
        free(refs);
        free(outs);
        return PULSE_ERR_NOMEM;
    }
    nr = tensor_refs(e, e->lw, e->wte, e->wpe, e->wtt, e->elnw, e->elnb, e->pw, e->pb, refs);
    for (int i = 0; i < nr; i++) {
        outs[i].name = refs[i].name;
        outs[i].data = refs[i].data;
        outs[i].n_dims = refs[i].n_dims;
        outs[i].shape[0] = refs[i].shape[0];
        outs[i].shape[1] = refs[i].shape[1];
    }
    const char *meta[2] = {"format", "pt"};
    pulse_path_join(path, sizeof path, dir, "model.safetensors");
    rc = pulse_safetensors_write(path, outs, nr, meta, 1);
    free(refs);
    free(outs);
    if (rc != PULSE_OK) return rc;
    /* config */
    cJSON *cfg = cJSON_Duplicate(e->config, 1);
    if (!cfg) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "pulse_pooling");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "pulse_proj_dim");
    cJSON_AddStringToObject(cfg, "pulse_pooling", e->pooling == PULSE_POOL_MEAN ? "mean" : "cls");
    cJSON_AddNumberToObject(cfg, "pulse_proj_dim", e->proj_dim);
    pulse_path_join(path, sizeof path, dir, "config.json");
    rc = write_json(path, cfg);
    cJSON_Delete(cfg);
    if (rc != PULSE_OK) return rc;
    /* tokenizer: vocab.txt + tokenizer_config.json; tokenizer.json copied verbatim when the source had one */
    pulse_path_join(path, sizeof path, dir, "vocab.txt");
    if ((rc = pulse_wordpiece_save_vocab(&e->tok, path)) != PULSE_OK) return rc;
    cJSON *tc = cJSON_CreateObject();
    if (!tc) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    cJSON_AddBoolToObject(tc, "do_lower_case", e->tok.lowercase);
    cJSON_AddBoolToObject(tc, "strip_accents", e->tok.strip_accents);
    cJSON_AddBoolToObject(tc, "tokenize_chinese_chars", e->tok.chinese);
    cJSON_AddStringToObject(tc, "tokenizer_class",
                            e->arch == ARCH_BERT ? "BertTokenizer" : "DistilBertTokenizer");
    cJSON_AddNumberToObject(tc, "model_max_length", e->P);
    pulse_path_join(path, sizeof path, dir, "tokenizer_config.json");
    rc = write_json(path, tc);
    cJSON_Delete(tc);
    if (rc != PULSE_OK) return rc;
    char src[4096];
    pulse_path_join(src, sizeof src, e->dir, "tokenizer.json");
    pulse_path_join(path, sizeof path, dir, "tokenizer.json");
    if (strcmp(src, path) != 0 && pulse_file_exists(src)) {
        char *data = NULL;
        size_t len = 0;
        if ((rc = pulse_read_file(src, &data, &len)) != PULSE_OK) return rc;
        rc = pulse_write_file_atomic(path, data, len);
        free(data);
        if (rc != PULSE_OK) return rc;
    }
    /* sentence-transformers pooling config */
    pulse_path_join(path, sizeof path, dir, "1_Pooling");
    if ((rc = make_dir(path)) != PULSE_OK) return rc;
    cJSON *pc = cJSON_CreateObject();
    if (!pc) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(pc, "word_embedding_dimension", e->C);
    cJSON_AddBoolToObject(pc, "pooling_mode_cls_token", e->pooling == PULSE_POOL_CLS);
    cJSON_AddBoolToObject(pc, "pooling_mode_mean_tokens", e->pooling == PULSE_POOL_MEAN);
    cJSON_AddBoolToObject(pc, "pooling_mode_max_tokens", 0);
    cJSON_AddBoolToObject(pc, "pooling_mode_mean_sqrt_len_tokens", 0);
    pulse_path_join(path, sizeof path, dir, "1_Pooling/config.json");
    rc = write_json(path, pc);
    cJSON_Delete(pc);
    return rc;
}

pulse_status pulse_encoder_save_train_state(const pulse_encoder *e, const char *path) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: save_train_state before train_begin");
    pulse_st_out outs[2] = {{"adamw.m", e->m, 1, {(int64_t)e->nw}}, {"adamw.v", e->v, 1, {(int64_t)e->nw}}};
    char step[32], nw[32];
    snprintf(step, sizeof step, "%d", e->step);
    snprintf(nw, sizeof nw, "%zu", e->nw);
    const char *meta[4] = {"step", step, "n_params", nw};
    return pulse_safetensors_write(path, outs, 2, meta, 2);
}

pulse_status pulse_encoder_load_train_state(pulse_encoder *e, const char *path) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: load_train_state before train_begin");
    pulse_safetensors *st = NULL;
    pulse_status rc = pulse_safetensors_open(&st, path);
    if (rc != PULSE_OK) return rc;
    int64_t shape[1] = {(int64_t)e->nw};
    rc = pulse_safetensors_read_f32(st, "adamw.m", e->m, e->nw, 1, shape);
    if (rc == PULSE_OK) rc = pulse_safetensors_read_f32(st, "adamw.v", e->v, e->nw, 1, shape);
    const char *s = pulse_safetensors_metadata(st, "step");
    if (rc == PULSE_OK) {
        char *end = NULL;
        long v = s ? strtol(s, &end, 10) : -1;
        if (!s || *end || v < 0 || v > 1000000000L)
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: metadata step missing or invalid", path);
        else
            e->step = (int)v;
    }
    pulse_safetensors_close(st);
    return rc;
}
