/* encoder/train.c — owns training an encoder: the training params, train_begin / train_end (gradients, AdamW
 * state, the activation block of model.c), the optional projection head's initialisation, the trainable
 * slice above frozen layers, gradient norm and clipping, and the AdamW step. The passes themselves
 * (forward_train, backward) are in model.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/internal.h"
#include "pulse/kernels.h"

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

/* ------------------------------------------------------------------------------------------------------ */
/* training */

float enc_train_dropout(const pulse_encoder *e) {
    return e->tp.dropout < 0.0f ? e->cfg_dropout : e->tp.dropout;
}

void pulse_encoder_train_end(pulse_encoder *e) {
    if (!e || !e->training) return;
    enc_free_acts(e);
    free(e->g);
    free(e->m);
    free(e->v);
    free(e->lg);
    /* clear every training field, keep the rest (the step count too) */
    e->training = 0;
    free(e->ex_ids);
    e->ex_ids = NULL;
    e->ex_n = 0;
    e->g = e->m = e->v = NULL;
    e->lg = NULL;
    e->gwte = e->gwpe = e->gwtt = e->gelnw = e->gelnb = e->gpw = e->gpb = NULL;
}

static pulse_status check_train_params(const pulse_encoder *e, const pulse_encoder_train_params *t) {
    if (!(t->lr >= 0.0f) || !(t->weight_decay >= 0.0f) || !(t->beta1 >= 0.0f && t->beta1 < 1.0f) ||
        !(t->beta2 >= 0.0f && t->beta2 < 1.0f) || !(t->eps > 0.0f) || !(t->dropout < 1.0f))
        return pulse_set_error(PULSE_ERR_ARG,
                               "encoder training: lr, weight_decay, betas, eps or dropout out of range");
    if (t->freeze_layers < 0 || t->freeze_layers > e->L)
        return pulse_set_error(PULSE_ERR_ARG, "encoder training: freeze_layers %d outside 0..%d",
                               t->freeze_layers, e->L);
    if (t->precision != PULSE_PREC_FP32 && t->precision != PULSE_PREC_BF16 && t->precision != PULSE_PREC_AUTO)
        return pulse_set_error(
            PULSE_ERR_ARG, "encoder training: precision: expected fp32 (0), bf16 (1) or auto (2), found %d",
            (int)t->precision);
    if (t->max_batch < 1 || t->max_batch > 1 << 16 || t->proj_dim < 0 || t->proj_dim > 65536)
        return pulse_set_error(PULSE_ERR_ARG, "encoder training: max_batch or proj_dim out of range");
    return PULSE_OK;
}

static pulse_status add_proj_head(pulse_encoder *e, int D, uint64_t seed) {
    e->proj_dim = D;
    size_t n = enc_layout(e, NULL, &e->wte, &e->wpe, &e->wtt, &e->elnw, &e->elnb, e->lw, &e->pw, &e->pb);
    enc_drop_packs(e);
    float *w = realloc(e->w, sizeof(float) * n);
    if (!w) {
        e->proj_dim = 0;
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    e->w = w;
    enc_relayout(e);
    pulse_rng r;
    pulse_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    float a = sqrtf(6.0f / (float)(e->C + D)); /* Xavier uniform */
    for (size_t i = 0; i < (size_t)D * e->C; i++) e->pw[i] = (2.0f * pulse_rng_float(&r) - 1.0f) * a;
    memset(e->pb, 0, sizeof(float) * (size_t)D);
    enc_free_scratch(e);
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
    e->tp.precision = pulse_precision_resolve(t.precision); /* AUTO: this CPU's faster one */
    pulse_rng_seed(&e->rng, t.seed);
    e->training = 1;
    e->g = pulse_calloc(e->nw, sizeof(float));
    e->m = pulse_calloc(e->nw, sizeof(float));
    e->v = pulse_calloc(e->nw, sizeof(float));
    e->lg = pulse_calloc((size_t)e->L, sizeof *e->lg);
    if (!e->g || !e->m || !e->v || !e->lg) {
        pulse_encoder_train_end(e);
        return pulse_set_error(PULSE_ERR_NOMEM, "encoder training: out of memory for %zu gradients", e->nw);
    }
    enc_relayout(e);
    if ((rc = enc_alloc_acts(e, t.max_batch, e->p.max_len)) != PULSE_OK) {
        pulse_encoder_train_end(e);
        return rc;
    }
    return PULSE_OK;
}

pulse_status pulse_encoder_set_example_ids(pulse_encoder *e, const int64_t *ids, int n) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: set_example_ids before train_begin");
    if (!ids || n <= 0) {
        e->ex_n = 0;
        return PULSE_OK;
    }
    if (n > e->tp.max_batch)
        return pulse_set_error(PULSE_ERR_RANGE, "encoder: %d example ids; expected at most max_batch = %d", n,
                               e->tp.max_batch);
    if (!e->ex_ids && !(e->ex_ids = pulse_malloc(sizeof(int64_t) * (size_t)e->tp.max_batch)))
        return PULSE_ERR_NOMEM;
    memcpy(e->ex_ids, ids, sizeof(int64_t) * (size_t)n);
    e->ex_n = n;
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
    e->tp.precision = pulse_precision_resolve(tp->precision);
    e->tp.max_batch = mb;
    e->tp.proj_dim = pd;
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
    const int thr = pulse_threads_enter(e->p.threads);
    double gn = sqrt(pulse_grad_norm_sq(e->g + off, e->nw - off));
    pulse_threads_leave(thr);
    return gn;
}

static pulse_status step_run(pulse_encoder *e, float lr, double *grad_norm) {
    if (!e->training) return pulse_set_error(PULSE_ERR_STATE, "encoder: step before train_begin");
    if (lr <= 0.0f) lr = e->tp.lr;
    size_t off = trainable_off(e), n = e->nw - off;
    double gn = sqrt(pulse_grad_norm_sq(e->g + off, n));
    if (grad_norm) *grad_norm = gn;
    if (!isfinite(gn)) return pulse_set_error(PULSE_ERR_RANGE, "encoder: gradient norm is %g", gn);
    if (e->tp.grad_clip > 0.0f && gn > e->tp.grad_clip)
        pulse_scale(e->g + off, n, (float)(e->tp.grad_clip / gn));
    e->step++;
    enc_drop_packs(e); /* the weights change: bf16 inference packs them again */
    pulse_adamw_update(e->w + off, e->g + off, e->m + off, e->v + off, n, lr, e->tp.beta1, e->tp.beta2,
                       e->tp.eps, e->tp.weight_decay, e->step);
    return PULSE_OK;
}

pulse_status pulse_encoder_step(pulse_encoder *e, float lr, double *grad_norm) {
    const int thr = pulse_threads_enter(e->p.threads); /* the encoder's threads, for this call only */
    pulse_status rc = step_run(e, lr, grad_norm);
    pulse_threads_leave(thr);
    return rc;
}
