/* sasrec/train.c — owns SASRec training (epochs over shuffled users, negatives for BCE, Adam, per-epoch valid
 * NDCG@10 with early stopping and best-model keeping, atomic checkpoints and resume), evaluation through the
 * shared harness, per-user vectors and top-k similar users by cosine. On several MPI ranks (data-parallel,
 * include/pulse/dist.h) every rank shuffles and fills the whole global batch from the shared seed (so the
 * sampled negatives are the one-process ones, example by example), runs forward/backward on its contiguous
 * slice of the batch's rows, and the gradients are weighted by each slice's share of the batch's targets and
 * summed (MPI_Allreduce) before the one Adam step every rank takes; rank 0 alone writes checkpoints and
 * logs. Dropout masks are a hash of (seed, step, global example, layer, site, position, channel), so with
 * or without dropout the loss curve and the parameters are the one-process ones up to float summation order
 * (docs/scale-out.md).
 *
 * Checkpoint format (little-endian, version 1): char magic[8] = "PLSSCKP\0"; u32 version; u32 n_items, dim,
 * blocks, heads, maxlen, loss; f32 dropout; u32 epochs_done, best_epoch, bad_evals, adam_t, finished;
 * f64 best_ndcg10, train_seconds, epoch_seconds_sum, last_loss; u64 rng[4]; u64 n_params;
 * f32 params[n], adam_m[n], adam_v[n], best_params[n]; u32 crc32 of all preceding bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pulse/dist.h"
#include "pulse/kernels.h"
#include "sasrec_internal.h"

pulse_status sasrec_hidden_batch(pulse_sasrec *m, int n, const int *const *hist, const int *hist_len,
                                 float *h);

/* ---- evaluation ---- */

static pulse_status score_cb(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                             float *scores) {
    (void)users;
    return pulse_sasrec_score((pulse_sasrec *)ctx, n, hist, hist_len, scores);
}

pulse_status pulse_sasrec_evaluate(pulse_sasrec *m, const pulse_dataset *ds, const pulse_eval_params *ep,
                                   pulse_metrics *out) {
    if (pulse_dataset_n_items(ds) != m->V - 1)
        return pulse_set_error(PULSE_ERR_ARG, "sasrec: the model has %d items, the dataset %s has %d",
                               m->V - 1, pulse_dataset_name(ds), pulse_dataset_n_items(ds));
    return pulse_evaluate(ds, ep, score_cb, m, out);
}

/* ---- training ---- */

typedef struct {
    int epochs_done, best_epoch, bad, finished;
    double best_ndcg, train_seconds, epoch_seconds_sum, last_loss;
} train_state;

#define CKPT_MAGIC "PLSSCKP"
#define CKPT_VERSION 1u

static pulse_status ckpt_save(const pulse_sasrec *m, const train_state *s, const float *best,
                              const char *path) {
    size_t n = m->n_params, hdr = 8 + 4 * 7 + 4 + 4 * 5 + 8 * 4 + 8 * 4 + 8;
    size_t total = hdr + 4 * n * sizeof(float) + 4;
    uint8_t *buf = pulse_malloc(total), *p = buf;
    if (!buf) return PULSE_ERR_NOMEM;
    uint32_t u[] = {CKPT_VERSION,    (uint32_t)(m->V - 1), (uint32_t)m->C,   (uint32_t)m->L,
                    (uint32_t)m->NH, (uint32_t)m->T,       (uint32_t)m->loss};
    uint32_t st[] = {(uint32_t)s->epochs_done, (uint32_t)s->best_epoch, (uint32_t)s->bad, (uint32_t)m->adam_t,
                     (uint32_t)s->finished};
    double d[] = {s->best_ndcg, s->train_seconds, s->epoch_seconds_sum, s->last_loss};
    uint64_t np = n;
    memcpy(p, CKPT_MAGIC, 8), p += 8;
    memcpy(p, u, sizeof u), p += sizeof u;
    memcpy(p, &m->dropout, 4), p += 4;
    memcpy(p, st, sizeof st), p += sizeof st;
    memcpy(p, d, sizeof d), p += sizeof d;
    memcpy(p, m->rng.s, 32), p += 32;
    memcpy(p, &np, 8), p += 8;
    memcpy(p, m->params, n * sizeof(float)), p += n * sizeof(float);
    memcpy(p, m->adam_m, n * sizeof(float)), p += n * sizeof(float);
    memcpy(p, m->adam_v, n * sizeof(float)), p += n * sizeof(float);
    memcpy(p, best, n * sizeof(float)), p += n * sizeof(float);
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(total - 4));
    memcpy(p, &crc, 4);
    pulse_status r = pulse_write_file_atomic(path, buf, total);
    free(buf);
    return r;
}

static pulse_status ckpt_load(pulse_sasrec *m, train_state *s, float *best, const char *path) {
    char *data;
    size_t len;
    pulse_status st = pulse_read_file(path, &data, &len);
    if (st) return st;
    size_t n = m->n_params, hdr = 8 + 4 * 7 + 4 + 4 * 5 + 8 * 4 + 8 * 4 + 8;
    const uint8_t *p = (const uint8_t *)data;
    if (len < 8 || memcmp(p, CKPT_MAGIC, 8) != 0) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: not a pulse SASRec checkpoint", path);
    }
    if (len != hdr + 4 * n * sizeof(float) + 4) {
        free(data);
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "%s: checkpoint size %zu does not match this model (%zu parameters): truncated or "
            "trained with other dimensions",
            path, len, n);
    }
    uint32_t crc_file, crc = (uint32_t)crc32(0L, (const Bytef *)data, (uInt)(len - 4));
    memcpy(&crc_file, data + len - 4, 4);
    if (crc != crc_file) {
        free(data);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: checkpoint checksum mismatch (corrupt file)", path);
    }
    p += 8;
    uint32_t u[7], sv[5];
    double d[4];
    float dropout;
    memcpy(u, p, sizeof u), p += sizeof u;
    memcpy(&dropout, p, 4), p += 4;
    memcpy(sv, p, sizeof sv), p += sizeof sv;
    memcpy(d, p, sizeof d), p += sizeof d;
    if (u[0] != CKPT_VERSION || u[1] != (uint32_t)(m->V - 1) || u[2] != (uint32_t)m->C ||
        u[3] != (uint32_t)m->L || u[4] != (uint32_t)m->NH || u[5] != (uint32_t)m->T ||
        u[6] != (uint32_t)m->loss || dropout != m->dropout) {
        free(data);
        return pulse_set_error(
            PULSE_ERR_ARG,
            "%s: checkpoint was written with other settings (items %u dim %u blocks %u heads %u "
            "maxlen %u loss %u dropout %g); resume with the same options",
            path, u[1], u[2], u[3], u[4], u[5], u[6], (double)dropout);
    }
    memcpy(m->rng.s, p, 32), p += 32;
    p += 8;
    memcpy(m->params, p, n * sizeof(float)), p += n * sizeof(float);
    memcpy(m->adam_m, p, n * sizeof(float)), p += n * sizeof(float);
    memcpy(m->adam_v, p, n * sizeof(float)), p += n * sizeof(float);
    memcpy(best, p, n * sizeof(float));
    s->epochs_done = (int)sv[0];
    s->best_epoch = (int)sv[1];
    s->bad = (int)sv[2];
    m->adam_t = (int)sv[3];
    s->finished = (int)sv[4];
    s->best_ndcg = d[0];
    s->train_seconds = d[1];
    s->epoch_seconds_sum = d[2];
    s->last_loss = d[3];
    free(data);
    return PULSE_OK;
}

typedef struct {
    int *users, n_users; /* users with >= 2 training items, in this epoch's order */
    int *base;           /* the same users in dataset order (each epoch shuffles a fresh copy: resumable) */
    int *in, *tg, *ng;   /* (B, T) */
    int *stamp;          /* (V) */
    int stamp_id;
    double comm_seconds; /* several ranks: time in the all-reduces */
    int64_t steps;       /* optimiser steps run */
} batcher;

static void batcher_free(batcher *b) {
    free(b->users);
    free(b->base);
    free(b->in);
    free(b->tg);
    free(b->ng);
    free(b->stamp);
}

static pulse_status batcher_init(batcher *b, const pulse_dataset *ds, int B, int T, int V) {
    memset(b, 0, sizeof *b);
    int nu = pulse_dataset_n_users(ds);
    b->users = pulse_malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    b->base = pulse_malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    b->in = pulse_malloc(sizeof(int) * (size_t)B * T);
    b->tg = pulse_malloc(sizeof(int) * (size_t)B * T);
    b->ng = pulse_malloc(sizeof(int) * (size_t)B * T);
    b->stamp = pulse_calloc((size_t)V, sizeof(int));
    if (!b->users || !b->base || !b->in || !b->tg || !b->ng || !b->stamp) {
        batcher_free(b);
        return PULSE_ERR_NOMEM;
    }
    for (int u = 0; u < nu; u++)
        if (pulse_split_train_len(ds, u) >= 2) b->base[b->n_users++] = u;
    if (b->n_users == 0) {
        batcher_free(b);
        return pulse_set_error(PULSE_ERR_ARG, "sasrec: no user has 2 or more training items");
    }
    return PULSE_OK;
}

/* Rows b of (in, tg, ng): the most recent T (input, next item) pairs of the user's train prefix, left-padded;
 * for BCE one negative per target, uniform over items not in the user's train prefix (pmixer). */
static void batcher_fill(batcher *bt, const pulse_dataset *ds, const int *users, int B, int T, int V, int bce,
                         pulse_rng *rng) {
    memset(bt->in, 0, sizeof(int) * (size_t)B * T);
    memset(bt->tg, 0, sizeof(int) * (size_t)B * T);
    memset(bt->ng, 0, sizeof(int) * (size_t)B * T);
    for (int b = 0; b < B; b++) {
        int len;
        const int *s = pulse_dataset_user_seq(ds, users[b], &len);
        int L = pulse_split_train_len(ds, users[b]);
        int n = L - 1 < T ? L - 1 : T;
        int *in = bt->in + (size_t)b * T, *tg = bt->tg + (size_t)b * T, *ng = bt->ng + (size_t)b * T;
        for (int t = 0; t < n; t++) {
            in[T - n + t] = s[L - 1 - n + t];
            tg[T - n + t] = s[L - n + t];
        }
        if (!bce) continue;
        if (++bt->stamp_id == 0) {
            memset(bt->stamp, 0, sizeof(int) * (size_t)V);
            bt->stamp_id = 1;
        }
        int distinct = 0;
        for (int i = 0; i < L; i++)
            if (s[i] > 0 && s[i] < V && bt->stamp[s[i]] != bt->stamp_id) {
                bt->stamp[s[i]] = bt->stamp_id;
                distinct++;
            }
        for (int t = T - n; t < T; t++) {
            int neg;
            if (distinct >= V - 1) { /* the user has every item: any item */
                neg = 1 + (int)pulse_rng_below(rng, (uint32_t)(V - 1));
            } else {
                do neg = 1 + (int)pulse_rng_below(rng, (uint32_t)(V - 1));
                while (bt->stamp[neg] == bt->stamp_id);
            }
            ng[t] = neg;
        }
    }
}

/* One data-parallel step on several ranks over the filled global batch of n rows: this rank's slice
 * [lo, hi) forward/backward, the loss heads' gradients scaled by 1 / (the whole batch's targets, which every
 * rank counts from the batch it filled) and summed over the ranks (every rank ends with the one-process
 * mean gradient), *loss the batch's mean loss. A hidden-state hook (textrec) runs on every rank, with this
 * rank's rows (none when its slice is empty or has no target): it gathers the other ranks' rows itself and
 * returns d(extra loss)/dh of the whole batch's loss for its rows, which is not rescaled. The shared RNG
 * stream (shuffle, negatives) is not touched by the slice; dropout masks are a hash of (seed, step, global
 * example lo + b, layer, site, position, channel), the one-process masks of those rows. */
static pulse_status dp_step(pulse_sasrec *m, batcher *bt, int n, int T, int bce, double *loss) {
    const int R = pulse_dist_size(), me = pulse_dist_rank();
    int lo, hi;
    pulse_dist_share(n, me, R, &lo, &hi);
    const int k = hi - lo, hook = m->hooks && m->hooks->hidden;
    int64_t nv = 0, nv_all = 0;
    for (size_t i = 0; i < (size_t)n * T; i++) {
        const int c = bt->tg[i] > 0 && bt->tg[i] < m->V;
        nv_all += c;
        nv += c && i >= (size_t)lo * T && i < (size_t)hi * T;
    }
    if (!m->grads) {
        m->grads = pulse_calloc(m->n_params, sizeof(float));
        if (!m->grads) return PULSE_ERR_NOMEM;
        sasrec_view(m->grads, m->V, m->C, m->L, m->T, &m->g);
    }
    m->ex_base = lo; /* dropout masks hashed per global example (model.c: drop_fw) */
    double l = 0, sums[2];
    pulse_status st = PULSE_OK;
    m->dp_targets = nv_all;
    m->dp_hook = hook;
    if (nv_all > 0 && k > 0 && (nv > 0 || hook)) {
        st = pulse_sasrec_forward_backward(m, k, bt->in + (size_t)lo * T, bt->tg + (size_t)lo * T,
                                           bce ? bt->ng + (size_t)lo * T : NULL, 1, &l);
    } else {
        memset(m->grads, 0, sizeof(float) * m->n_params);
        if (nv_all > 0 && hook) l = m->hooks->hidden(m->hooks->ctx, 0, NULL, NULL); /* its collectives */
    }
    m->dp_targets = 0;
    m->dp_hook = 0;
    m->ex_base = 0;
    if ((st = pulse_dist_agree(st))) return st;
    sums[0] = l * (double)nv;
    sums[1] = (double)nv;
    double t0 = pulse_now();
    if ((st = pulse_dist_sum_f64(sums, 2))) return st;
    st = pulse_dist_sum_f32(m->grads, m->n_params);
    bt->comm_seconds += pulse_now() - t0;
    *loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
    return st;
}

static pulse_status run_epoch(pulse_sasrec *m, const pulse_dataset *ds, const pulse_sasrec_params *p,
                              batcher *bt, int epoch, double *mean_loss) {
    const int B = p->batch, T = m->T, bce = m->loss == PULSE_SASREC_BCE;
    memcpy(bt->users, bt->base, sizeof(int) * (size_t)bt->n_users);
    pulse_rng_shuffle_int(&m->rng, bt->users, (size_t)bt->n_users);
    int nb = (bt->n_users + B - 1) / B;
    char label[64], extra[64];
    snprintf(label, sizeof label, "sasrec epoch %d", epoch);
    const pulse_sasrec_hooks *hk = m->hooks;
    if (hk && hk->before_epoch) {
        pulse_status st = hk->before_epoch(hk->ctx, m, epoch);
        if (st) return st;
    }
    pulse_progress pr;
    pulse_progress_begin(&pr, label, "batch", (size_t)nb);
    double sum = 0;
    for (int i = 0; i < nb; i++) {
        int b0 = i * B, n = bt->n_users - b0 < B ? bt->n_users - b0 : B;
        batcher_fill(bt, ds, bt->users + b0, n, T, m->V, bce, &m->rng);
        double loss = 0;
        pulse_status st = PULSE_OK;
        if (hk && hk->before_step && (st = hk->before_step(hk->ctx, m, bt->users + b0, n)) != PULSE_OK)
            return st;
        if (pulse_dist_size() > 1)
            st = dp_step(m, bt, n, T, bce, &loss);
        else
            st = pulse_sasrec_forward_backward(m, n, bt->in, bt->tg, bce ? bt->ng : NULL, 1, &loss);
        if (st) return st;
        bt->steps++;
        if (hk && hk->after_backward && (st = hk->after_backward(hk->ctx, m)) != PULSE_OK) return st;
        if (!isfinite(loss))
            return pulse_set_error(PULSE_ERR_STATE, "sasrec: loss became %g at epoch %d", loss, epoch);
        pulse_sasrec_adam_step(m, p, ++m->adam_t);
        if (!m->adam_m || !m->adam_v) return PULSE_ERR_NOMEM;
        sum += loss;
        snprintf(extra, sizeof extra, "loss %.4f", sum / (i + 1));
        pulse_progress_update(&pr, (size_t)i + 1, extra);
    }
    pulse_progress_end(&pr, (size_t)nb, extra);
    *mean_loss = sum / nb;
    return PULSE_OK;
}

static pulse_status check_train_params(const pulse_sasrec *m, const pulse_dataset *ds,
                                       const pulse_sasrec_params *p) {
    if (pulse_dataset_n_items(ds) != m->V - 1)
        return pulse_set_error(PULSE_ERR_ARG, "sasrec: the model has %d items, the dataset has %d", m->V - 1,
                               pulse_dataset_n_items(ds));
    if (p->batch < 1 || p->batch > 65536)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: batch must be in [1, 65536], found %d", p->batch);
    if (!(p->lr > 0))
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: lr must be > 0, found %g", (double)p->lr);
    if (p->epochs < 0)
        return pulse_set_error(PULSE_ERR_RANGE, "sasrec: epochs must be >= 0, found %d", p->epochs);
    return PULSE_OK;
}

/* NULL params: the defaults, with the model's own loss */
static pulse_sasrec_params params_or_defaults(const pulse_sasrec *m, const pulse_sasrec_params *p) {
    if (p) return *p;
    pulse_sasrec_params d = pulse_sasrec_default_params();
    d.loss = m->loss;
    return d;
}

pulse_status pulse_sasrec_train_epoch(pulse_sasrec *m, const pulse_dataset *ds,
                                      const pulse_sasrec_params *params, double *mean_loss) {
    const pulse_sasrec_params pv = params_or_defaults(m, params), *p = &pv;
    pulse_status st = check_train_params(m, ds, p);
    if (st) return st;
    batcher bt;
    st = batcher_init(&bt, ds, p->batch, m->T, m->V);
    if (st) return st;
    st = run_epoch(m, ds, p, &bt, 1, mean_loss);
    batcher_free(&bt);
    return st;
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void log_line(const char *fmt, ...) {
    if (pulse_get_options()->quiet || pulse_dist_rank() != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

pulse_status pulse_sasrec_train(pulse_sasrec *m, const pulse_dataset *ds, const pulse_sasrec_params *params,
                                pulse_sasrec_train_report *report) {
    const pulse_sasrec_params pv = params_or_defaults(m, params), *p = &pv;
    pulse_status st = check_train_params(m, ds, p);
    if (st) return st;
    if (m->loss != p->loss)
        return pulse_set_error(PULSE_ERR_ARG,
                               "sasrec: the model was created for another loss than the params say");
    if (m->hooks && p->checkpoint)
        return pulse_set_error(PULSE_ERR_ARG,
                               "sasrec: checkpoints do not hold the state of a model's hooks; train with "
                               "hooks without a checkpoint");
    const size_t n = m->n_params;
    float *best = pulse_malloc(n * sizeof(float));
    if (!m->adam_m) m->adam_m = pulse_calloc(n, sizeof(float));
    if (!m->adam_v) m->adam_v = pulse_calloc(n, sizeof(float));
    if (!best || !m->adam_m || !m->adam_v) {
        free(best);
        return PULSE_ERR_NOMEM;
    }
    memcpy(best, m->params, n * sizeof(float));
    train_state s;
    memset(&s, 0, sizeof s);
    s.best_ndcg = -1.0;
    if (p->checkpoint && p->resume && pulse_file_exists(p->checkpoint)) {
        st = ckpt_load(m, &s, best, p->checkpoint);
        if (st) {
            free(best);
            return st;
        }
        log_line("sasrec: resumed from %s after epoch %d (best valid NDCG@10 %.4f at epoch %d)\n",
                 p->checkpoint, s.epochs_done, s.best_ndcg, s.best_epoch);
    }
    batcher bt;
    st = batcher_init(&bt, ds, p->batch, m->T, m->V);
    if (st) {
        free(best);
        return st;
    }
    const int patience = pulse_sasrec_effective_patience(p), every = pulse_sasrec_effective_eval_every(p);
    pulse_eval_params ep = pulse_eval_default_params();
    ep.protocol = PULSE_PROTOCOL_FULL;
    ep.split = PULSE_SPLIT_VALID;
    ep.max_users = p->eval_users;
    while (!s.finished && s.epochs_done < p->epochs) {
        int epoch = s.epochs_done + 1;
        double t0 = pulse_now(), loss;
        st = run_epoch(m, ds, p, &bt, epoch, &loss);
        if (st) break;
        double t1 = pulse_now();
        s.epoch_seconds_sum += t1 - t0;
        s.last_loss = loss;
        s.epochs_done = epoch;
        if (epoch % every == 0 || epoch == p->epochs) {
            pulse_metrics vm;
            if (m->hooks && m->hooks->before_eval &&
                (st = m->hooks->before_eval(m->hooks->ctx, m)) != PULSE_OK)
                break;
            st = pulse_sasrec_evaluate(m, ds, &ep, &vm);
            if (st) break;
            if (vm.ndcg10 > s.best_ndcg) {
                s.best_ndcg = vm.ndcg10;
                s.best_epoch = epoch;
                s.bad = 0;
                memcpy(best, m->params, n * sizeof(float));
                if (m->hooks && m->hooks->save_best) m->hooks->save_best(m->hooks->ctx);
            } else {
                s.bad++;
            }
            log_line("sasrec epoch %d: loss %.4f  valid NDCG@10 %.4f HR@10 %.4f  best %.4f (epoch %d)  train "
                     "%.1fs "
                     "eval %.1fs\n",
                     epoch, loss, vm.ndcg10, vm.hr10, s.best_ndcg, s.best_epoch, t1 - t0, pulse_now() - t1);
            if (s.bad >= patience) {
                s.finished = 1;
                log_line("sasrec: early stop after %d evaluations without improvement\n", s.bad);
            }
        }
        s.train_seconds += pulse_now() - t0;
        if (p->checkpoint && pulse_dist_rank() == 0) { /* rank 0 writes; every rank holds the same state */
            st = ckpt_save(m, &s, best, p->checkpoint);
            if (st) break;
        }
    }
    const double bt_comm = bt.comm_seconds;
    const int64_t bt_steps = bt.steps;
    batcher_free(&bt);
    if (!st) {
        if (s.best_epoch > 0) {
            memcpy(m->params, best, n * sizeof(float));
            if (m->hooks && m->hooks->restore_best) m->hooks->restore_best(m->hooks->ctx);
        }
        if (report) {
            memset(report, 0, sizeof *report);
            report->epochs_run = s.epochs_done;
            report->best_epoch = s.best_epoch;
            report->best_valid_ndcg10 = s.best_ndcg;
            report->train_seconds = s.train_seconds;
            report->seconds_per_epoch = s.epochs_done ? s.epoch_seconds_sum / s.epochs_done : 0;
            report->last_loss = s.last_loss;
            report->comm_seconds = bt_comm;
            report->steps = bt_steps;
            pulse_eval_params e2 = pulse_eval_default_params();
            e2.protocol = PULSE_PROTOCOL_FULL;
            e2.split = PULSE_SPLIT_VALID;
            st = pulse_sasrec_evaluate(m, ds, &e2, &report->valid);
            e2.split = PULSE_SPLIT_TEST;
            if (!st) st = pulse_sasrec_evaluate(m, ds, &e2, &report->test);
        }
    }
    free(best);
    return st;
}

/* ---- user vectors and similar users ---- */

pulse_status pulse_sasrec_user_vectors(pulse_sasrec *m, const pulse_dataset *ds, pulse_split upto,
                                       float *out) {
    int nu = pulse_dataset_n_users(ds);
    if (pulse_dataset_n_items(ds) != m->V - 1)
        return pulse_set_error(PULSE_ERR_ARG, "sasrec: the model has %d items, the dataset has %d", m->V - 1,
                               pulse_dataset_n_items(ds));
    const int CHUNK = 1024;
    const int **hist = pulse_malloc(sizeof(int *) * CHUNK);
    int *hl = pulse_malloc(sizeof(int) * CHUNK);
    if (!hist || !hl) {
        free(hist);
        free(hl);
        return PULSE_ERR_NOMEM;
    }
    pulse_status st = PULSE_OK;
    for (int s = 0; s < nu && !st; s += CHUNK) {
        int n = nu - s < CHUNK ? nu - s : CHUNK;
        for (int i = 0; i < n; i++) {
            int len;
            hist[i] = pulse_dataset_user_seq(ds, s + i, &len);
            int h = upto == PULSE_SPLIT_TEST ? len - 1 : upto == PULSE_SPLIT_VALID ? len - 2 : len;
            hl[i] = h < 0 ? 0 : h;
        }
        st = sasrec_hidden_batch(m, n, (const int *const *)hist, hl, out + (size_t)s * m->C);
    }
    free(hist);
    free(hl);
    return st;
}

/* "a is better than b": higher cosine, ties to the lower index */
static inline int better(float ca, int ia, float cb, int ib) {
    return ca > cb || (ca == cb && ia < ib);
}

/* min-heap on "worst at the root" of size k */
static void heap_sift_down(float *c, int *ix, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && better(c[w], ix[w], c[l], ix[l])) w = l;
        if (r < k && better(c[w], ix[w], c[r], ix[r])) w = r;
        if (w == i) return;
        float tc = c[i];
        c[i] = c[w];
        c[w] = tc;
        int ti = ix[i];
        ix[i] = ix[w];
        ix[w] = ti;
        i = w;
    }
}

pulse_status pulse_sasrec_similar(const float *vecs, int n, int dim, int k, int *idx, float *cosine) {
    if (n < 0 || dim < 1 || k < 1)
        return pulse_set_error(PULSE_ERR_ARG,
                               "sasrec similar: need n >= 0, dim >= 1, k >= 1 (found %d, %d, %d)", n, dim, k);
    if (n == 0) return PULSE_OK;
    float *vn = pulse_malloc(sizeof(float) * (size_t)n * dim);
    size_t bs = ((size_t)8 << 20) / (size_t)n;
    if (bs < 1) bs = 1;
    if (bs > (size_t)n) bs = (size_t)n;
    float *S = pulse_malloc(sizeof(float) * bs * (size_t)n);
    if (!vn || !S) {
        free(vn);
        free(S);
        return PULSE_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        const float *v = vecs + (size_t)i * dim;
        float *o = vn + (size_t)i * dim;
        double ss = 0;
        for (int c = 0; c < dim; c++) ss += (double)v[c] * v[c];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int c = 0; c < dim; c++) o[c] = v[c] * inv;
    }
    for (size_t s = 0; s < (size_t)n; s += bs) {
        int nb = (int)((size_t)n - s < bs ? (size_t)n - s : bs);
        /* S (nb, n) = vn[s:s+nb] vn^T */
        pulse_matmul_forward(S, vn + s * dim, vn, NULL, nb, dim, n);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < nb; r++) {
            int self = (int)s + r;
            const float *row = S + (size_t)r * n;
            float *hc = cosine + (size_t)self * k;
            int *hi = idx + (size_t)self * k, cnt = 0;
            for (int j = 0; j < n; j++) {
                if (j == self) continue;
                if (cnt < k) {
                    hc[cnt] = row[j];
                    hi[cnt] = j;
                    cnt++;
                    if (cnt == k)
                        for (int q = k / 2 - 1; q >= 0; q--) heap_sift_down(hc, hi, k, q);
                } else if (better(row[j], j, hc[0], hi[0])) {
                    hc[0] = row[j];
                    hi[0] = j;
                    heap_sift_down(hc, hi, k, 0);
                }
            }
            /* sort the cnt entries best-first (insertion sort, k is small) */
            for (int a = 1; a < cnt; a++) {
                float c = hc[a];
                int ii = hi[a], b = a - 1;
                while (b >= 0 && better(c, ii, hc[b], hi[b])) {
                    hc[b + 1] = hc[b];
                    hi[b + 1] = hi[b];
                    b--;
                }
                hc[b + 1] = c;
                hi[b + 1] = ii;
            }
            for (int a = cnt; a < k; a++) {
                hc[a] = 0.0f;
                hi[a] = -1;
            }
        }
    }
    free(vn);
    free(S);
    return PULSE_OK;
}
