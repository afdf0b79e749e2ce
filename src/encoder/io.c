/* encoder/io.c — owns the encoder's files: config.json (sizes, activation, dropout; integer fields checked),
 * tensor names of BERT / DistilBERT checkpoints and the parameter layout, model.safetensors loading, the
 * tokenizer (through wordpiece.c), load / free and the facts, inference params, and saving as an HF folder
 * plus the AdamW state file. The forward and backward passes are in model.c, training in train.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "encoder/internal.h"
#include "pulse/safetensors.h"

/* ------------------------------------------------------------------------------------------------------ */
/* parameters layout */

static size_t layer_floats(int C, int FF) {
    return (size_t)4 * C * C + 4 * (size_t)C + 4 * (size_t)C + (size_t)2 * C * FF + FF + C;
}

/* assigns weight pointers in base; returns the float count */
size_t enc_layout(const pulse_encoder *e, float *base, float **wte, float **wpe, float **wtt, float **elnw,
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

void enc_relayout(pulse_encoder *e) {
    e->nw = enc_layout(e, e->w, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    if (e->g)
        enc_layout(e, e->g, &e->gwte, &e->gwpe, &e->gwtt, &e->gelnw, &e->gelnb, e->lg, &e->gpw, &e->gpb);
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
    /* the sizes config.json claims must be backed by the file before anything is allocated for them: every
     * tensor below is read with its exact shape, so the file holds at least that many weights (a 7 KB folder
     * whose config says vocab 1e7 x hidden 65536 asked for 3.5 TB here; found by fuzz/thought.c) */
    tensor_ref *want = pulse_calloc((size_t)n_tensor_refs(e), sizeof *want);
    if (!want) {
        pulse_safetensors_close(st);
        return PULSE_ERR_NOMEM;
    }
    int nw = tensor_refs(e, e->lw, NULL, NULL, NULL, NULL, NULL, NULL, NULL, want);
    size_t need = 0, have = 0;
    for (int i = 0; i < nw; i++)
        need += (size_t)want[i].shape[0] * (size_t)(want[i].n_dims == 2 ? want[i].shape[1] : 1);
    free(want);
    for (int i = 0; i < pulse_safetensors_count(st); i++) have += pulse_safetensors_at(st, i)->n_elements;
    if (need > have) {
        pulse_safetensors_close(st);
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "%s: config.json's sizes (vocab %d, hidden %d, layers %d, ffn %d, positions %d) "
            "need %zu weights, the file holds %zu",
            path, e->V, e->C, e->L, e->FF, e->P, need, have);
    }
    size_t n = enc_layout(e, NULL, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    size_t bytes;
    if (pulse_mul_overflows(n, sizeof(float), &bytes) || !(e->w = pulse_malloc(bytes))) {
        pulse_safetensors_close(st);
        return PULSE_ERR_NOMEM;
    }
    enc_relayout(e);
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
    pulse_encoder_params p = {PULSE_POOL_AUTO, 128, 1, 0, 64, PULSE_PREC_AUTO};
    return p;
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
    if (p->precision != PULSE_PREC_FP32 && p->precision != PULSE_PREC_BF16 && p->precision != PULSE_PREC_AUTO)
        return pulse_set_error(PULSE_ERR_ARG,
                               "encoder precision: expected fp32 (0), bf16 (1) or auto (2), found %d",
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

void pulse_encoder_free(pulse_encoder *e) {
    if (!e) return;
    enc_drop_packs(e);
    pulse_encoder_train_end(e);
    enc_free_scratch(e);
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
    enc_drop_packs(e); /* the caller may write the weights */
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
    e->p = p;
    e->pooling = resolve_pooling(e, p.pooling);
    return PULSE_OK;
}

const char *pulse_encoder_token(const pulse_encoder *e, int id) {
    return pulse_wordpiece_token(&e->tok, id);
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

pulse_status pulse_encoder_save(const pulse_encoder *e, const char *dir) {
    pulse_status rc = pulse_mkdirs(dir);
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
    if ((rc = pulse_mkdirs(path)) != PULSE_OK) return rc;
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
