/* thought/space.c — owns the Thought Space: training two encoders (B for behaviour text, R for rationales)
 * with InfoNCE and in-batch negatives, per-epoch held-out validation, resumable checkpoints (space.json + HF
 * folders), and scoring / top-k / evaluation with a trained space. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pulse/dist.h"
#include "pulse/encoder.h"
#include "pulse/thought.h"

struct pulse_thought_space {
    pulse_encoder *b, *r; /* r == b when shared */
    int dim;
};

pulse_thought_train_params pulse_thought_train_default_params(void) {
    pulse_thought_train_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 53;
    p.batch = 16;
    p.negatives = 10;
    p.tau = 1.0f;
    p.lr = 2e-5f;
    p.weight_decay = 0.01f;
    p.grad_clip = 0.0f;
    p.max_len = 128;
    p.pooling = PULSE_POOL_CLS;
    p.dropout = -1.0f;
    p.seed = 42;
    p.resume = 1;
    return p;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}
static void rm_rf(const char *path) {
    if (pulse_file_exists(path)) nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static pulse_status load_pair_encoders(const char *bdir, const char *rdir, int shared, pulse_pooling pooling,
                                       int max_len, pulse_encoder **b, pulse_encoder **r) {
    pulse_encoder_params ep = pulse_encoder_default_params();
    ep.pooling = pooling;
    ep.max_len = max_len;
    ep.normalize = 1;
    *b = *r = NULL;
    pulse_status st = pulse_encoder_load(bdir, &ep, b);
    if (st != PULSE_OK) return pulse_wrap_error(st, "behaviour encoder %s", bdir);
    if (shared) {
        *r = *b;
        return PULSE_OK;
    }
    st = pulse_encoder_load(rdir, &ep, r);
    if (st != PULSE_OK) {
        pulse_encoder_free(*b);
        *b = NULL;
        return pulse_wrap_error(st, "rationale encoder %s", rdir);
    }
    return PULSE_OK;
}

/* ---- evaluation ---- */

static pulse_status eval_embedded(const float *eb, const float *er, int n, int D, int K, uint64_t seed,
                                  pulse_infonce_stats *out) {
    if (n < 2) return pulse_set_error(PULSE_ERR_ARG, "evaluation needs at least 2 pairs (got %d)", n);
    if (K > n - 1) K = n - 1;
    int *neg = malloc(sizeof(int) * (size_t)n * (size_t)K);
    float *scr = malloc(sizeof(float) * pulse_infonce_scratch_floats(n, D, K));
    if (!neg || !scr) {
        free(neg), free(scr);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    pulse_rng rng;
    pulse_rng_seed(&rng, seed);
    pulse_infonce_sample_negatives(neg, n, K, &rng);
    pulse_infonce_forward_backward(NULL, NULL, eb, er, neg, n, D, K, 1.0f, scr, out);
    free(neg), free(scr);
    return PULSE_OK;
}

static pulse_status eval_pairs(pulse_encoder *b, pulse_encoder *r, const pulse_pair *pairs, int n, int K,
                               uint64_t seed, pulse_infonce_stats *out) {
    int D = pulse_encoder_dim(b);
    const char **bt = malloc(sizeof(char *) * (size_t)n), **rt = malloc(sizeof(char *) * (size_t)n);
    float *eb = malloc(sizeof(float) * (size_t)n * D), *er = malloc(sizeof(float) * (size_t)n * D);
    pulse_status st = PULSE_OK;
    if (!bt || !rt || !eb || !er) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (int i = 0; st == PULSE_OK && i < n; i++) bt[i] = pairs[i].behaviour, rt[i] = pairs[i].rationale;
    if (st == PULSE_OK) st = pulse_encoder_encode(b, bt, n, eb);
    if (st == PULSE_OK) st = pulse_encoder_encode(r, rt, n, er);
    if (st == PULSE_OK) st = eval_embedded(eb, er, n, D, K, seed, out);
    free(bt), free(rt), free(eb), free(er);
    return st;
}

/* ---- checkpoints ---- */

static cJSON *history_json(const pulse_thought_epoch *h, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", h[i].epoch);
        cJSON_AddNumberToObject(o, "train_loss", h[i].train_loss);
        cJSON_AddNumberToObject(o, "val_recall1", h[i].val.recall1);
        cJSON_AddNumberToObject(o, "val_mrr", h[i].val.mrr);
        cJSON_AddNumberToObject(o, "val_loss", h[i].val.loss);
        cJSON_AddNumberToObject(o, "val_pos_cos", h[i].val.pos_cos);
        cJSON_AddNumberToObject(o, "val_neg_cos", h[i].val.neg_cos);
        cJSON_AddNumberToObject(o, "val_n", h[i].val.n);
        cJSON_AddNumberToObject(o, "seconds", h[i].seconds);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static int history_from_json(const cJSON *a, pulse_thought_epoch *h, int max) {
    int n = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, a) {
        if (n >= max) break;
        pulse_thought_epoch *e = &h[n++];
        memset(e, 0, sizeof *e);
#define GETN(key, dst)                                                                                       \
    do {                                                                                                     \
        const cJSON *v_ = cJSON_GetObjectItemCaseSensitive(o, key);                                          \
        if (cJSON_IsNumber(v_)) dst = v_->valuedouble;                                                       \
    } while (0)
        double ep = 0, vn = 0;
        GETN("epoch", ep);
        GETN("train_loss", e->train_loss);
        GETN("val_recall1", e->val.recall1);
        GETN("val_mrr", e->val.mrr);
        GETN("val_loss", e->val.loss);
        GETN("val_pos_cos", e->val.pos_cos);
        GETN("val_neg_cos", e->val.neg_cos);
        GETN("val_n", vn);
        GETN("seconds", e->seconds);
#undef GETN
        e->epoch = (int)ep;
        e->val.n = (int)vn;
    }
    return n;
}

static pulse_status save_checkpoint(const char *out_dir, int epoch, const pulse_thought_train_params *p,
                                    pulse_encoder *b, pulse_encoder *r, const pulse_thought_epoch *hist,
                                    int nh) {
    char dir[4096], tmpdir[4096], sub[4200], sub2[4200];
    if (strlen(out_dir) > 3800) return pulse_set_error(PULSE_ERR_ARG, "output path too long: %s", out_dir);
    snprintf(dir, sizeof dir, "%s/ckpt-%d", out_dir, epoch);
    snprintf(tmpdir, sizeof tmpdir, "%s/ckpt-%d.tmp", out_dir, epoch);
    rm_rf(tmpdir);
    pulse_status st = pulse_mkdirs(tmpdir);
    snprintf(sub, sizeof sub, "%s/behaviour", tmpdir);
    if (st == PULSE_OK) st = pulse_encoder_save(b, sub);
    snprintf(sub2, sizeof sub2, "%s/behaviour.adam", tmpdir);
    if (st == PULSE_OK) st = pulse_encoder_save_train_state(b, sub2);
    if (!p->shared) {
        snprintf(sub, sizeof sub, "%s/rationale", tmpdir);
        if (st == PULSE_OK) st = pulse_encoder_save(r, sub);
        snprintf(sub2, sizeof sub2, "%s/rationale.adam", tmpdir);
        if (st == PULSE_OK) st = pulse_encoder_save_train_state(r, sub2);
    }
    if (st != PULSE_OK) return pulse_wrap_error(st, "saving checkpoint %s", tmpdir);
    rm_rf(dir);
    if (rename(tmpdir, dir) != 0)
        return pulse_set_error(PULSE_ERR_IO, "%s: cannot rename to %s: %s", tmpdir, dir, strerror(errno));
    cJSON *o = cJSON_CreateObject();
    char rel[64];
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "epochs", p->epochs);
    cJSON_AddBoolToObject(o, "shared", p->shared);
    snprintf(rel, sizeof rel, "ckpt-%d/behaviour", epoch);
    cJSON_AddStringToObject(o, "behaviour", rel);
    if (!p->shared) snprintf(rel, sizeof rel, "ckpt-%d/rationale", epoch);
    cJSON_AddStringToObject(o, "rationale", rel);
    cJSON_AddStringToObject(o, "encoder", p->encoder);
    cJSON_AddNumberToObject(o, "tau", p->tau);
    cJSON_AddNumberToObject(o, "negatives", p->negatives);
    cJSON_AddNumberToObject(o, "batch", p->batch);
    cJSON_AddNumberToObject(o, "lr", p->lr);
    cJSON_AddNumberToObject(o, "max_len", p->max_len);
    cJSON_AddNumberToObject(o, "pooling", p->pooling);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    cJSON_AddItemToObject(o, "history", history_json(hist, nh));
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    char sj[4096];
    pulse_path_join(sj, sizeof sj, out_dir, "space.json");
    st = pulse_write_file_atomic(sj, txt, strlen(txt));
    cJSON_free(txt);
    if (st != PULSE_OK) return st;
    if (epoch > 0) { /* the previous checkpoint is no longer referenced */
        snprintf(dir, sizeof dir, "%s/ckpt-%d", out_dir, epoch - 1);
        rm_rf(dir);
    }
    return PULSE_OK;
}

/* Reads out_dir/space.json: epoch, the two folders, the history. Returns PULSE_ERR_IO when absent. */
static pulse_status read_space_json(const char *dir, int *epoch, char *bdir, char *rdir, size_t n,
                                    int *shared, pulse_thought_epoch *hist, int max_hist, int *nh) {
    char sj[4096], *txt = NULL;
    pulse_path_join(sj, sizeof sj, dir, "space.json");
    if (!pulse_file_exists(sj)) return pulse_set_error(PULSE_ERR_IO, "%s: no space.json", dir);
    pulse_status st = pulse_read_file(sj, &txt, NULL);
    if (st != PULSE_OK) return st;
    cJSON *o = cJSON_Parse(txt);
    free(txt);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "behaviour");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rationale");
    if (!o || !cJSON_IsNumber(e) || !cJSON_IsString(b) || !cJSON_IsString(r)) {
        cJSON_Delete(o);
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "%s: expected an object with \"epoch\", \"behaviour\" and \"rationale\"", sj);
    }
    *epoch = e->valueint;
    pulse_path_join(bdir, n, dir, b->valuestring);
    pulse_path_join(rdir, n, dir, r->valuestring);
    if (shared) *shared = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "shared"));
    if (nh)
        *nh = hist ? history_from_json(cJSON_GetObjectItemCaseSensitive(o, "history"), hist, max_hist) : 0;
    cJSON_Delete(o);
    return PULSE_OK;
}

/* ---- training ---- */

/* One step's embeddings and gradients, on one rank or data-parallel on several. Every rank encodes its
 * share [lo, hi) of the nb pairs (texts: the share's behaviours then its rationales; yl: their 2k outputs),
 * the shares' embeddings are all-gathered into y = [yb (nb, D); yr (nb, D)], and every rank computes the
 * whole batch's InfoNCE (the same numbers on every rank: B (K + 1) D multiply-adds, nothing beside the
 * encoders) and back-propagates its own rows of dy; the encoders' gradients are then summed over the ranks,
 * so every rank takes the one-process AdamW step. */
typedef struct {
    const pulse_thought_train_params *p;
    pulse_encoder *b, *r;
    int D, R, me;
    const char **texts;
    float *yl, *y, *dy, *scr;
    size_t *counts;
    int64_t *ids;
    double comm;
} step_ctx;

static pulse_status gather_half(step_ctx *c, float *half, const float *mine, int nb, int lo, int k) {
    const int D = c->D;
    memcpy(half + (size_t)lo * D, mine, sizeof(float) * (size_t)k * D);
    for (int q = 0; q < c->R; q++) {
        int a, z;
        pulse_dist_share(nb, q, c->R, &a, &z);
        c->counts[q] = (size_t)(z - a) * D;
    }
    return pulse_dist_allgather_f32(half, c->counts);
}

static pulse_status sum_grads(pulse_encoder *e) {
    return pulse_dist_sum_f32(pulse_encoder_grads_data(e), pulse_encoder_n_params(e));
}

static pulse_status train_step(step_ctx *c, const pulse_pair *pairs, const int *order, int nb, const int *neg,
                               int k_neg, double *loss) {
    const pulse_thought_train_params *p = c->p;
    const int D = c->D;
    int lo, hi;
    pulse_dist_share(nb, c->me, c->R, &lo, &hi);
    const int k = hi - lo;
    for (int i = 0; i < k; i++) {
        c->texts[i] = pairs[order[lo + i]].behaviour;
        c->texts[k + i] = pairs[order[lo + i]].rationale;
        c->ids[i] = lo + i; /* dropout masks per example: behaviour texts 0..nb-1, rationales nb..2nb-1 */
        c->ids[k + i] = nb + lo + i;
    }
    pulse_encoder_zero_grad(c->b);
    if (!p->shared) pulse_encoder_zero_grad(c->r);
    float *yb = c->y, *yr = c->y + (size_t)nb * D, *dyb = c->dy, *dyr = c->dy + (size_t)nb * D;
    pulse_status st = PULSE_OK;
    if (k > 0) {
        if (p->shared) {
            st = pulse_encoder_set_example_ids(c->b, c->ids, 2 * k);
            if (st == PULSE_OK) st = pulse_encoder_forward_train(c->b, c->texts, 2 * k, c->yl);
        } else {
            st = pulse_encoder_set_example_ids(c->b, c->ids, k);
            if (st == PULSE_OK) st = pulse_encoder_forward_train(c->b, c->texts, k, c->yl);
            if (st == PULSE_OK) st = pulse_encoder_set_example_ids(c->r, c->ids + k, k);
            if (st == PULSE_OK)
                st = pulse_encoder_forward_train(c->r, c->texts + k, k, c->yl + (size_t)k * D);
        }
    }
    if (c->R > 1) {
        if ((st = pulse_dist_agree(st)) != PULSE_OK) return st;
        double t0 = pulse_now();
        st = gather_half(c, yb, c->yl, nb, lo, k);
        if (st == PULSE_OK) st = gather_half(c, yr, c->yl + (size_t)k * D, nb, lo, k);
        c->comm += pulse_now() - t0;
    } else if (st == PULSE_OK) {
        memcpy(c->y, c->yl, sizeof(float) * 2 * (size_t)nb * D); /* k = nb: the same layout */
    }
    if (st != PULSE_OK) return st;
    memset(c->dy, 0, sizeof(float) * 2 * (size_t)nb * D);
    double l = pulse_infonce_forward_backward(dyb, dyr, yb, yr, neg, nb, D, k_neg, p->tau, c->scr, NULL);
    *loss = l;
    if (!isfinite(l)) return pulse_set_error(PULSE_ERR_STATE, "loss became %g", l);
    /* this rank's rows of dy, in the order of yl */
    memcpy(c->yl, dyb + (size_t)lo * D, sizeof(float) * (size_t)k * D);
    memcpy(c->yl + (size_t)k * D, dyr + (size_t)lo * D, sizeof(float) * (size_t)k * D);
    if (k > 0) {
        if (p->shared) {
            st = pulse_encoder_backward(c->b, c->yl);
        } else {
            st = pulse_encoder_backward(c->b, c->yl);
            if (st == PULSE_OK) st = pulse_encoder_backward(c->r, c->yl + (size_t)k * D);
        }
    }
    if (c->R > 1) {
        if ((st = pulse_dist_agree(st)) != PULSE_OK) return st;
        double t0 = pulse_now();
        st = sum_grads(c->b);
        if (st == PULSE_OK && !p->shared) st = sum_grads(c->r);
        c->comm += pulse_now() - t0;
    }
    if (st == PULSE_OK) st = pulse_encoder_step(c->b, p->lr, NULL);
    if (st == PULSE_OK && !p->shared) st = pulse_encoder_step(c->r, p->lr, NULL);
    return st;
}

pulse_status pulse_thought_train(const char *pairs_path, const char *out_dir,
                                 const pulse_thought_train_params *pp, pulse_thought_epoch *history,
                                 int max_hist, int *n_hist) {
    pulse_thought_train_params p = pp ? *pp : pulse_thought_train_default_params();
    if (!p.encoder) return pulse_set_error(PULSE_ERR_ARG, "thought train: an encoder folder is required");
    if (p.batch < 2)
        return pulse_set_error(PULSE_ERR_ARG, "thought train: batch must be >= 2 (got %d)", p.batch);
    if (p.tau <= 0) return pulse_set_error(PULSE_ERR_ARG, "thought train: tau must be > 0 (got %g)", p.tau);
    if (p.negatives < 1) return pulse_set_error(PULSE_ERR_ARG, "thought train: negatives must be >= 1");
    if (p.negatives > p.batch - 1) p.negatives = p.batch - 1;
    pulse_pair *pairs = NULL, *held = NULL;
    int n_loaded = 0, nheld = 0;
    pulse_status st = pulse_pairs_load(pairs_path, &pairs, &n_loaded);
    if (st != PULSE_OK) return st;
    int n = p.max_pairs > 0 && p.max_pairs < n_loaded ? p.max_pairs : n_loaded; /* pairs trained on */
    if (p.heldout && (st = pulse_pairs_load(p.heldout, &held, &nheld)) != PULSE_OK) {
        pulse_pairs_free(pairs, n_loaded);
        return st;
    }
    if ((st = pulse_mkdirs(out_dir)) != PULSE_OK) goto done_pairs;

    enum { MAXH = 1024 };
    pulse_thought_epoch *hist = calloc(MAXH, sizeof *hist);
    int nh = 0, start_epoch = 0;
    char bdir[4096], rdir[4096];
    int resumed = 0;
    if (!hist) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto done_pairs;
    }
    if (p.resume &&
        read_space_json(out_dir, &start_epoch, bdir, rdir, sizeof bdir, NULL, hist, MAXH, &nh) == PULSE_OK) {
        resumed = 1;
    } else {
        start_epoch = 0;
        nh = 0;
        snprintf(bdir, sizeof bdir, "%s", p.encoder);
        snprintf(rdir, sizeof rdir, "%s", p.encoder);
    }
    pulse_clear_error();
    pulse_encoder *b = NULL, *r = NULL;
    if ((st = load_pair_encoders(bdir, rdir, p.shared, p.pooling, p.max_len, &b, &r)) != PULSE_OK)
        goto done_hist;
    pulse_encoder_train_params tp = pulse_encoder_train_default_params();
    tp.lr = p.lr;
    tp.weight_decay = p.weight_decay;
    tp.grad_clip = p.grad_clip;
    tp.dropout = p.dropout;
    tp.freeze_layers = p.freeze_layers;
    tp.proj_dim = p.proj_dim;
    tp.max_batch = p.shared ? 2 * p.batch : p.batch;
    tp.seed = p.seed;
    tp.precision = p.precision;
    if ((st = pulse_encoder_train_begin(b, &tp)) != PULSE_OK) goto done_enc;
    if (!p.shared && (st = pulse_encoder_train_begin(r, &tp)) != PULSE_OK) goto done_enc;
    if (resumed) {
        char sp[4200];
        snprintf(sp, sizeof sp, "%s/ckpt-%d/behaviour.adam", out_dir, start_epoch);
        if (pulse_file_exists(sp) && (st = pulse_encoder_load_train_state(b, sp)) != PULSE_OK) goto done_enc;
        snprintf(sp, sizeof sp, "%s/ckpt-%d/rationale.adam", out_dir, start_epoch);
        if (!p.shared && pulse_file_exists(sp) && (st = pulse_encoder_load_train_state(r, sp)) != PULSE_OK)
            goto done_enc;
        if (pulse_dist_rank() == 0)
            fprintf(stderr, "thought train: resuming after epoch %d from %s\n", start_epoch, out_dir);
    }
    int D = pulse_encoder_dim(b), B = p.batch, K = p.negatives;
    if (pulse_encoder_dim(r) != D) {
        st = pulse_set_error(PULSE_ERR_ARG,
                             "behaviour and rationale encoders differ in output size (%d vs %d)", D,
                             pulse_encoder_dim(r));
        goto done_enc;
    }
    const int R = pulse_dist_size(), me = pulse_dist_rank();
    int *order = malloc(sizeof(int) * (size_t)n), *neg = malloc(sizeof(int) * (size_t)B * K);
    const char **texts = malloc(sizeof(char *) * 2 * (size_t)B);
    float *y = malloc(sizeof(float) * 2 * (size_t)B * D), *dy = malloc(sizeof(float) * 2 * (size_t)B * D);
    float *yl = malloc(sizeof(float) * 2 * (size_t)B * D);
    float *scr = malloc(sizeof(float) * pulse_infonce_scratch_floats(B, D, K));
    size_t *counts = malloc(sizeof(size_t) * (size_t)R);
    int64_t *ids = malloc(sizeof(int64_t) * 2 * (size_t)B);
    step_ctx sc = {&p, b, r, D, R, me, texts, yl, y, dy, scr, counts, ids, 0.0};
    if (!order || !neg || !texts || !y || !dy || !yl || !scr || !counts || !ids) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto done_bufs;
    }
    if (!resumed && held && me == 0) { /* epoch 0: the untrained encoders (rank 0 validates and writes) */
        double t0 = pulse_now();
        memset(&hist[0], 0, sizeof hist[0]);
        if ((st = eval_pairs(b, r, held, nheld, K, p.seed, &hist[0].val)) != PULSE_OK) goto done_bufs;
        hist[0].seconds = pulse_now() - t0;
        nh = 1;
        fprintf(stderr, "thought train: epoch 0 (untrained) held-out R@1 %.4f MRR %.4f pos %.3f neg %.3f\n",
                hist[0].val.recall1, hist[0].val.mrr, hist[0].val.pos_cos, hist[0].val.neg_cos);
    }
    int steps_per_epoch = (n + B - 1) / B;
    for (int epoch = start_epoch + 1; epoch <= p.epochs; epoch++) {
        double t0 = pulse_now(), loss_sum = 0;
        int steps = 0;
        sc.comm = 0;
        pulse_rng rng; /* per-epoch seed: a resumed run shuffles exactly as an uninterrupted one */
        pulse_rng_seed(&rng, p.seed * 1000003ULL + (uint64_t)epoch);
        for (int i = 0; i < n; i++) order[i] = i;
        pulse_rng_shuffle_int(&rng, order, (size_t)n);
        char label[64];
        snprintf(label, sizeof label, "thought epoch %d/%d", epoch, p.epochs);
        pulse_progress prog;
        pulse_progress_begin(&prog, label, "step", (size_t)steps_per_epoch);
        for (int s0 = 0; s0 < n; s0 += B) {
            int nb = n - s0 < B ? n - s0 : B;
            if (nb < 2) break; /* a lone last pair has no in-batch negative */
            int k = K < nb - 1 ? K : nb - 1;
            pulse_infonce_sample_negatives(neg, nb, k, &rng); /* the same stream on every rank */
            double l = 0;
            if ((st = train_step(&sc, pairs, order + s0, nb, neg, k, &l)) != PULSE_OK) {
                st = pulse_wrap_error(st, "thought train: epoch %d step %d", epoch, steps);
                goto done_bufs;
            }
            loss_sum += l;
            steps++;
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f", loss_sum / steps);
            pulse_progress_update(&prog, (size_t)steps, extra);
        }
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f", steps ? loss_sum / steps : 0.0);
        pulse_progress_end(&prog, (size_t)steps, extra);
        pulse_thought_epoch *e = &hist[nh < MAXH ? nh : MAXH - 1];
        memset(e, 0, sizeof *e);
        e->epoch = epoch;
        e->train_loss = steps ? loss_sum / steps : 0;
        if (R > 1) {
            e->comm_seconds = sc.comm;
            e->comm_bytes_per_step = 4.0 * (2.0 * B * D + (double)pulse_encoder_n_params(b) +
                                            (p.shared ? 0.0 : (double)pulse_encoder_n_params(r)));
        }
        if (me == 0) { /* every rank holds the same encoders: rank 0 validates, logs and writes */
            if (held && (st = eval_pairs(b, r, held, nheld, K, p.seed, &e->val)) != PULSE_OK) goto done_bufs;
            e->seconds = pulse_now() - t0;
            fprintf(
                stderr,
                "thought train: epoch %d loss %.4f held-out R@1 %.4f MRR %.4f pos %.3f neg %.3f (%.1fs)\n",
                epoch, e->train_loss, e->val.recall1, e->val.mrr, e->val.pos_cos, e->val.neg_cos, e->seconds);
        }
        if (nh < MAXH) nh++;
        if (me == 0 && (st = save_checkpoint(out_dir, epoch, &p, b, r, hist, nh)) != PULSE_OK) goto done_bufs;
    }
    if (start_epoch >= p.epochs && !pulse_file_exists(out_dir)) st = PULSE_OK;
    if (p.epochs == 0 && !resumed && me == 0) st = save_checkpoint(out_dir, 0, &p, b, r, hist, nh);
done_bufs:
    free(order), free(neg), free(texts), free(y), free(dy), free(yl), free(scr), free(counts), free(ids);
done_enc:
    if (r && r != b) pulse_encoder_free(r);
    pulse_encoder_free(b);
done_hist:
    if (history && n_hist) {
        int m = nh < max_hist ? nh : max_hist;
        memcpy(history, hist, sizeof *hist * (size_t)m);
        *n_hist = m;
    }
    free(hist);
done_pairs:
    pulse_pairs_free(pairs, n_loaded);
    pulse_pairs_free(held, nheld);
    return st;
}

/* ---- using a space ---- */

pulse_thought_space_params pulse_thought_space_default_params(void) {
    pulse_thought_space_params p = {PULSE_POOL_AUTO, 128};
    return p;
}

pulse_status pulse_thought_space_load(const char *dir, const pulse_thought_space_params *params,
                                      pulse_thought_space **out) {
    *out = NULL;
    const pulse_thought_space_params p = params ? *params : pulse_thought_space_default_params();
    char bdir[4096], rdir[4096];
    int epoch = 0, shared = 0;
    pulse_encoder *b = NULL, *r = NULL;
    pulse_status st;
    if (read_space_json(dir, &epoch, bdir, rdir, sizeof bdir, &shared, NULL, 0, NULL) == PULSE_OK) {
        st = load_pair_encoders(bdir, rdir, shared || strcmp(bdir, rdir) == 0, PULSE_POOL_AUTO, p.max_len, &b,
                                &r);
    } else { /* a plain encoder folder: B = R, untrained */
        pulse_clear_error();
        st = load_pair_encoders(dir, dir, 1, p.pooling, p.max_len, &b, &r);
    }
    if (st != PULSE_OK) return st;
    pulse_thought_space *s = calloc(1, sizeof *s);
    if (!s) {
        if (r != b) pulse_encoder_free(r);
        pulse_encoder_free(b);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    s->b = b;
    s->r = r;
    s->dim = pulse_encoder_dim(b);
    *out = s;
    return PULSE_OK;
}

void pulse_thought_space_free(pulse_thought_space *s) {
    if (!s) return;
    if (s->r != s->b) pulse_encoder_free(s->r);
    pulse_encoder_free(s->b);
    free(s);
}

int pulse_thought_space_dim(const pulse_thought_space *s) {
    return s->dim;
}

static void normalize_rows(float *x, int n, int D) {
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)x[(size_t)i * D + c] * x[(size_t)i * D + c];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int c = 0; c < D; c++) x[(size_t)i * D + c] *= inv;
    }
}

pulse_status pulse_thought_embed_behaviour(pulse_thought_space *s, const char *const *texts, int n,
                                           float *out) {
    pulse_status st = pulse_encoder_encode(s->b, texts, n, out);
    if (st == PULSE_OK) normalize_rows(out, n, s->dim);
    return st;
}

pulse_status pulse_thought_embed_rationale(pulse_thought_space *s, const char *const *texts, int n,
                                           float *out) {
    pulse_status st = pulse_encoder_encode(s->r, texts, n, out);
    if (st == PULSE_OK) normalize_rows(out, n, s->dim);
    return st;
}

pulse_status pulse_thought_score(pulse_thought_space *s, const char *behaviour, const char *const *rationales,
                                 int n, float *cosine) {
    if (n <= 0) return PULSE_OK;
    int D = s->dim;
    float *eb = malloc(sizeof(float) * (size_t)D), *er = malloc(sizeof(float) * (size_t)n * D);
    pulse_status st = (!eb || !er) ? pulse_set_error(PULSE_ERR_NOMEM, "out of memory") : PULSE_OK;
    if (st == PULSE_OK) st = pulse_thought_embed_behaviour(s, &behaviour, 1, eb);
    if (st == PULSE_OK) st = pulse_thought_embed_rationale(s, rationales, n, er);
    for (int i = 0; st == PULSE_OK && i < n; i++) {
        double dot = 0;
        for (int c = 0; c < D; c++) dot += (double)eb[c] * er[(size_t)i * D + c];
        cosine[i] = (float)dot;
    }
    free(eb), free(er);
    return st;
}

pulse_status pulse_thought_topk(pulse_thought_space *s, const char *behaviour, const char *const *rationales,
                                int n, int k, int *idx, float *cosine) {
    if (k > n) k = n;
    float *c = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!c) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    pulse_status st = pulse_thought_score(s, behaviour, rationales, n, c);
    for (int j = 0; st == PULSE_OK && j < k; j++) { /* selection: k is small */
        int best = -1;
        for (int i = 0; i < n; i++) {
            int used = 0;
            for (int q = 0; q < j; q++) used |= idx[q] == i;
            if (!used && (best < 0 || c[i] > c[best])) best = i;
        }
        idx[j] = best;
        cosine[j] = c[best];
    }
    free(c);
    return st;
}

pulse_status pulse_thought_evaluate(pulse_thought_space *s, const pulse_pair *pairs, int n, int K,
                                    uint64_t seed, pulse_infonce_stats *out) {
    return eval_pairs(s->b, s->r, pairs, n, K, seed, out);
}
