/* recommend/decode.c — owns the recommender's runtime: the model, its tokenizer, an optional LoRA adapter and
 * one context sized for the call; the rank decoder (the prompts of up to `parallel` users prefilled in one
 * batched forward, every candidate title forked from its user's prompt KV and all titles of all those users
 * fed together, log p of each title token summed), the generate decoder (continuous batching through
 * pulse_lm_generate, one seeded sampler per user) and the evaluation and single-user drivers on them. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/recommend.h"
#include "pulse/strbuf.h"
#include "recommend/internal.h"

struct pulse_recommender {
    pulse_lm *m;
    pulse_tokenizer *tok;
    pulse_lora *lora;
    pulse_lm_ctx *c;
    int c_ctx, c_seq, c_kv; /* the context's sizes */
    int chat;
    pulse_rec_params p;
    char *model_path, *lora_path; /* the files (the evaluation store's key hashes them) */
};

pulse_rec_params pulse_rec_default_params(void) {
    pulse_rec_params p;
    memset(&p, 0, sizeof p);
    p.prompt = pulse_rec_prompt_default_params();
    p.decoder = PULSE_REC_RANK;
    p.rank_score = PULSE_REC_SCORE_MEAN;
    p.temp = 0.3f;
    p.top_p = 0.9f;
    p.max_new_tokens = 59;
    p.seed = 42;
    p.parallel = 16;
    p.lora_scale = 1.0f;
    return p;
}

pulse_status pulse_recommender_new(const char *model, const char *lora, const pulse_rec_params *pp,
                                   pulse_recommender **out) {
    *out = NULL;
    pulse_recommender *r = calloc(1, sizeof *r);
    if (!r) return pulse_set_error(PULSE_ERR_NOMEM, "recommender: out of memory");
    r->p = pp ? *pp : pulse_rec_default_params();
    if (r->p.parallel < 1) r->p.parallel = 1;
    r->model_path = strdup(model);
    r->lora_path = lora ? strdup(lora) : NULL;
    if (!r->model_path || (lora && !r->lora_path)) {
        pulse_recommender_free(r);
        return pulse_set_error(PULSE_ERR_NOMEM, "recommender: out of memory");
    }
    pulse_lm_params lp = pulse_lm_default_params();
    lp.n_threads = r->p.n_threads;
    pulse_status st = pulse_lm_load(model, &lp, &r->m);
    if (!st) st = pulse_tokenizer_from_gguf(pulse_lm_gguf(r->m), &r->tok);
    if (!st && lora) st = pulse_lora_load(r->m, lora, &r->lora);
    if (st) {
        pulse_recommender_free(r);
        return st;
    }
    r->chat = r->p.prompt.chat && pulse_chat_detect(r->tok) != PULSE_CHAT_RAW;
    *out = r;
    return PULSE_OK;
}

void pulse_recommender_free(pulse_recommender *r) {
    if (!r) return;
    pulse_lm_ctx_free(r->c);
    pulse_lora_free(r->lora);
    pulse_tokenizer_free(r->tok);
    pulse_lm_free(r->m);
    free(r->model_path), free(r->lora_path);
    free(r);
}

const pulse_tokenizer *pulse_recommender_tokenizer(const pulse_recommender *r) {
    return r->tok;
}

int pulse_recommender_chat(const pulse_recommender *r) {
    return r->chat;
}

/* a context with at least these sizes (made anew when the current one is smaller) */
static pulse_status ensure_ctx(pulse_recommender *r, int n_ctx, int n_seq, int n_kv) {
    if (r->c && r->c_ctx >= n_ctx && r->c_seq >= n_seq && r->c_kv >= n_kv) return PULSE_OK;
    pulse_lm_ctx_free(r->c);
    r->c = NULL;
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = n_ctx > r->c_ctx ? n_ctx : r->c_ctx;
    cp.n_seq_max = n_seq > r->c_seq ? n_seq : r->c_seq;
    cp.n_kv_tokens = n_kv > r->c_kv ? n_kv : r->c_kv;
    cp.n_batch = 256;
    cp.n_threads = r->p.n_threads;
    pulse_status st = pulse_lm_ctx_new(r->m, &cp, &r->c);
    if (!st && r->lora) st = pulse_lm_ctx_set_lora(r->c, r->lora, r->p.lora_scale);
    if (st) {
        pulse_lm_ctx_free(r->c);
        r->c = NULL;
        return st;
    }
    r->c_ctx = cp.n_ctx;
    r->c_seq = cp.n_seq_max;
    r->c_kv = cp.n_kv_tokens;
    return PULSE_OK;
}

/* ---- rank ---- */
/* users g0..g0+G of one round: prompts in one batch, then every title of every user from forks */
static pulse_status rank_round(pulse_recommender *r, int G, int K, int *const *pi, const int *np,
                               int *const *ci, const int *nc, double *lp) {
    pulse_lm_ctx *c = r->c;
    const int V = pulse_lm_get_hparams(r->m)->n_vocab;
    int *root = malloc(sizeof(int) * (size_t)G), *fk = malloc(sizeof(int) * (size_t)G * K);
    int ntot = 0, cap = 256;
    for (int g = 0; g < G; g++) ntot += np[g];
    int *bt = malloc(sizeof(int) * (size_t)(ntot > cap ? ntot : cap));
    int *bs = malloc(sizeof(int) * (size_t)(ntot > cap ? ntot : cap));
    uint8_t *bw = malloc((size_t)(ntot > cap ? ntot : cap));
    int *bm = malloc(sizeof(int) * (size_t)cap), *bj = malloc(sizeof(int) * (size_t)cap);
    pulse_status st = PULSE_OK;
    if (!root || !fk || !bt || !bs || !bw || !bm || !bj) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "rank: out of memory");
        goto out;
    }
    for (int g = 0; g < G; g++) root[g] = -1;
    for (int i = 0; i < G * K; i++) fk[i] = -1;
    /* the prefix all prompts share (chat template, system message, the list's opening; each prompt keeps
     * >= 1 own token) is prefilled once and forked into every user's root */
    int n_base = np[0] - 1;
    for (int g = 1; g < G && n_base > 0; g++) {
        int k = 0, lim = np[g] - 1 < n_base ? np[g] - 1 : n_base;
        while (k < lim && pi[g][k] == pi[0][k]) k++;
        n_base = k;
    }
    if (G < 2 || n_base < 8) n_base = 0;
    if (n_base > 0) {
        int base = pulse_lm_seq_new(c);
        if (base < 0) {
            st = PULSE_ERR_RANGE;
            goto out;
        }
        for (int t = 0; t < n_base; t++) {
            bt[t] = pi[0][t];
            bs[t] = base;
            bw[t] = 0;
        }
        pulse_lm_batch b0 = {n_base, bt, bs, bw};
        st = pulse_lm_decode(c, &b0);
        for (int g = 0; g < G && !st; g++) st = pulse_lm_seq_fork(c, base, &root[g]);
        pulse_lm_seq_free(c, base);
        if (st) goto out;
    } else
        for (int g = 0; g < G; g++)
            if ((root[g] = pulse_lm_seq_new(c)) < 0) {
                st = PULSE_ERR_RANGE;
                goto out;
            }
    /* the rest of every prompt in one batch, logits at each prompt's last token */
    int nt = 0;
    for (int g = 0; g < G; g++)
        for (int t = n_base; t < np[g]; t++) {
            bt[nt] = pi[g][t];
            bs[nt] = root[g];
            bw[nt] = t == np[g] - 1;
            nt++;
        }
    pulse_lm_batch b = {nt, bt, bs, bw};
    if ((st = pulse_lm_decode(c, &b))) goto out;
    nt = 0;
    for (int g = 0; g < G; g++) {
        nt += np[g] - n_base;
        const float *last = pulse_lm_logits(c, nt - 1);
        for (int j = 0; j < K; j++) lp[g * K + j] = pulse_lm_logprob(last, V, ci[g * K + j][0]);
    }
    /* forks of each prompt for its titles; the roots are not needed after */
    for (int g = 0; g < G && !st; g++) {
        for (int j = 0; j < K && !st; j++) st = pulse_lm_seq_fork(c, root[g], &fk[g * K + j]);
        pulse_lm_seq_free(c, root[g]);
        root[g] = -1;
    }
    if (st) goto out;
    /* (title, position) pairs of all users, cap tokens per forward */
    int q = 0, t = 0; /* the title and the token within it */
    while (!st) {
        nt = 0;
        while (nt < cap && q < G * K) {
            if (t + 1 >= nc[q]) {
                q++;
                t = 0;
                continue;
            }
            bt[nt] = ci[q][t];
            bs[nt] = fk[q];
            bw[nt] = 1;
            bm[nt] = q;
            bj[nt] = t + 1;
            nt++;
            t++;
        }
        if (nt == 0) break;
        pulse_lm_batch b2 = {nt, bt, bs, bw};
        if ((st = pulse_lm_decode(c, &b2))) break;
        for (int i = 0; i < nt; i++)
            lp[bm[i]] += pulse_lm_logprob(pulse_lm_logits(c, i), V, ci[bm[i]][bj[i]]);
    }
out:
    for (int g = 0; root && g < G; g++)
        if (root[g] >= 0) pulse_lm_seq_free(c, root[g]);
    for (int i = 0; fk && i < G * K; i++)
        if (fk[i] >= 0) pulse_lm_seq_free(c, fk[i]);
    free(root), free(fk), free(bt), free(bs), free(bw), free(bm), free(bj);
    return st;
}

pulse_status pulse_rec_rank(pulse_recommender *r, const pulse_rec_prompt *prompts, int n,
                            const char *const *titles, int n_cands, double *logprob, int *n_tokens) {
    if (n <= 0 || n_cands <= 0) return pulse_set_error(PULSE_ERR_ARG, "rank: no prompt or no candidate");
    const int K = n_cands, P = r->p.parallel < n ? r->p.parallel : n;
    const int T = pulse_lm_get_hparams(r->m)->n_ctx_train;
    int **pi = calloc((size_t)n, sizeof(int *)), *np = calloc((size_t)n, sizeof(int));
    int **ci = calloc((size_t)n * K, sizeof(int *)), *nc = calloc((size_t)n * K, sizeof(int));
    pulse_status st = PULSE_OK;
    if (!pi || !np || !ci || !nc) st = pulse_set_error(PULSE_ERR_NOMEM, "rank: out of memory");
    int max_p = 0, max_c = 0;
    for (int i = 0; i < n && !st; i++) {
        if ((st = pulse_rec_prompt_tokenize(r->tok, r->chat, &prompts[i], &pi[i], &np[i]))) break;
        if (np[i] < 1) st = pulse_set_error(PULSE_ERR_RANGE, "rank: prompt %d is empty", i);
        if (np[i] > max_p) max_p = np[i];
        for (int j = 0; j < K && !st; j++) {
            char *q = pulse_rec_quoted(titles[(size_t)i * K + j] ? titles[(size_t)i * K + j] : "");
            if (!q) {
                st = PULSE_ERR_NOMEM;
                break;
            }
            st = pulse_lm_tokenize_alloc(r->tok, q, 0, 0, &ci[i * K + j], &nc[i * K + j]);
            free(q);
            if (!st && nc[i * K + j] < 1) st = pulse_set_error(PULSE_ERR_RANGE, "rank: an empty title");
            if (!st && nc[i * K + j] > max_c) max_c = nc[i * K + j];
        }
        if (!st && np[i] + max_c > T)
            st = pulse_set_error(
                PULSE_ERR_RANGE,
                "rank: prompt %d (%d tokens) and a title (%d tokens) exceed the model's trained "
                "context of %d tokens; lower --title-bytes",
                i, np[i], max_c, T);
    }
    if (!st) {
        /* KV: each user's prompt once plus every title (a fork copies the prompt's partly filled block) */
        const int blk = 16;
        int64_t kv = (int64_t)P * (max_p + blk + (int64_t)K * (max_c + 2 * blk));
        if (kv > (1 << 26)) kv = 1 << 26;
        st = ensure_ctx(r, max_p + max_c + 1, P * (K + 1), (int)kv);
    }
    for (int g0 = 0; g0 < n && !st; g0 += P) {
        int G = n - g0 < P ? n - g0 : P;
        st = rank_round(r, G, K, pi + g0, np + g0, ci + (size_t)g0 * K, nc + (size_t)g0 * K,
                        logprob + (size_t)g0 * K);
    }
    if (!st && n_tokens)
        for (int i = 0; i < n * K; i++) n_tokens[i] = nc[i];
    for (int i = 0; pi && i < n; i++) free(pi[i]);
    for (int i = 0; ci && i < n * K; i++) free(ci[i]);
    free(pi), free(np), free(ci), free(nc);
    return st;
}

/* ---- generate ---- */
pulse_status pulse_rec_generate(pulse_recommender *r, const pulse_rec_prompt *prompts, int n,
                                const uint64_t *seeds, int max_new_tokens, char **outs) {
    for (int i = 0; i < n; i++) outs[i] = NULL;
    if (n <= 0) return PULSE_OK;
    if (max_new_tokens < 1) return pulse_set_error(PULSE_ERR_ARG, "generate: max_new_tokens must be >= 1");
    const int T = pulse_lm_get_hparams(r->m)->n_ctx_train, P = r->p.parallel < n ? r->p.parallel : n;
    pulse_lm_request *rq = calloc((size_t)n, sizeof *rq);
    int **pi = calloc((size_t)n, sizeof(int *));
    int *obuf = malloc(sizeof(int) * (size_t)n * max_new_tokens);
    pulse_status st = PULSE_OK;
    if (!rq || !pi || !obuf) st = pulse_set_error(PULSE_ERR_NOMEM, "generate: out of memory");
    int max_p = 0;
    for (int i = 0; i < n && !st; i++) {
        int np = 0;
        if ((st = pulse_rec_prompt_tokenize(r->tok, r->chat, &prompts[i], &pi[i], &np))) break;
        if (np + max_new_tokens > T)
            st = pulse_set_error(
                PULSE_ERR_RANGE,
                "generate: prompt %d (%d tokens) and %d new tokens exceed the model's trained "
                "context of %d tokens",
                i, np, max_new_tokens, T);
        rq[i].prompt = pi[i];
        rq[i].n_prompt = np;
        rq[i].out = obuf + (size_t)i * max_new_tokens;
        if (np > max_p) max_p = np;
    }
    if (!st) {
        /* pulse_lm_generate runs as many requests as the context has sequences: room for all of them */
        const int n_seq = P + 1 > r->c_seq ? P + 1 : r->c_seq;
        int64_t kv = (int64_t)n_seq * (max_p + max_new_tokens + 32);
        st = ensure_ctx(r, max_p + max_new_tokens + 1, n_seq, (int)(kv > (1 << 26) ? (1 << 26) : kv));
    }
    if (!st) {
        pulse_lm_gen_params gp = pulse_lm_gen_default_params();
        gp.max_new_tokens = max_new_tokens;
        gp.sampler.temp = r->p.temp;
        gp.sampler.top_p = r->p.top_p;
        gp.sampler.top_k = 0;
        gp.seeds = seeds;
        gp.share_prefix = 1;
        gp.stop_at_eog = 1;
        /* the context holds P sequences + the shared root */
        for (int i0 = 0; i0 < n && !st; i0 += 4 * P) {
            int nb = n - i0 < 4 * P ? n - i0 : 4 * P;
            gp.seeds = seeds ? seeds + i0 : NULL;
            st = pulse_lm_generate(r->c, rq + i0, nb, &gp);
        }
    }
    for (int i = 0; i < n && !st; i++)
        st = pulse_detokenize(r->tok, rq[i].out, rq[i].n_out, 0, &outs[i], NULL);
    if (st)
        for (int i = 0; i < n; i++) free(outs[i]), outs[i] = NULL;
    for (int i = 0; pi && i < n; i++) free(pi[i]);
    free(pi), free(rq), free(obuf);
    return st;
}

/* ---- evaluation ---- */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double title_score(const pulse_rec_params *p, double sum, int n) {
    return p->rank_score == PULSE_REC_SCORE_SUM || n <= 0 ? sum : sum / n;
}

pulse_status pulse_rec_evaluate(pulse_recommender *r, const pulse_dataset *ds, const pulse_candset *cs,
                                pulse_metrics *out, pulse_rec_eval_report *rep, char **outputs) {
    memset(out, 0, sizeof *out);
    pulse_rec_eval_report rp;
    memset(&rp, 0, sizeof rp);
    if (!cs || cs->n <= 0) return pulse_set_error(PULSE_ERR_ARG, "evaluate: empty candidate set");
    double t0 = pulse_now();
    const int K = cs->n_candidates, tb = r->p.prompt.title_bytes, rank = r->p.decoder == PULSE_REC_RANK;
    const int CH = rank ? 4 * r->p.parallel : 8 * r->p.parallel; /* users per call: a fixed chunk of lists */
    const char *phase = rank ? "eval-rank" : "eval-generate";
    pulse_rec_prompt *pr = calloc((size_t)CH, sizeof *pr);
    char **titles = calloc((size_t)CH * K, sizeof(char *));
    double *lp = malloc(sizeof(double) * (size_t)CH * K);
    int *ntk = malloc(sizeof(int) * (size_t)CH * K), *idx = malloc(sizeof(int) * (size_t)CH);
    uint64_t *seeds = malloc(sizeof(uint64_t) * (size_t)CH);
    char **gen = calloc((size_t)CH, sizeof(char *));
    float *sc = malloc(sizeof(float) * (size_t)K);
    rec_eval_result *res = calloc((size_t)cs->n, sizeof *res);
    pulse_store *store = NULL;
    char mh[17] = "", sh[17] = "", *sjs = NULL;
    pulse_status st = PULSE_OK;
    if (!pr || !titles || !lp || !ntk || !idx || !seeds || !gen || !sc || !res) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory");
        goto out;
    }
    if (outputs)
        for (int i = 0; i < cs->n; i++) outputs[i] = NULL;
    if (r->p.store) { /* users stored by an earlier run under the same key are read back */
        if (!(st = rec_evalstore_key(r->model_path, r->lora_path, r->p.lora_scale, &r->p, r->chat, cs, mh, sh,
                                     &sjs)) &&
            !(st = pulse_store_open(r->p.store, 0, &store)))
            st = rec_evalstore_read(store, ds, cs, phase, mh, sh, res, &rp.resumed);
        if (st) {
            st = pulse_wrap_error(st, "evaluate: store %s", r->p.store);
            goto out;
        }
    }
    pulse_progress prg;
    pulse_progress_begin(&prg, rank ? "eval rank" : "eval generate", "user", (size_t)(cs->n - rp.resumed));
    int ran = 0;
    for (int i0 = 0; i0 < cs->n && !st; i0 += CH) {
        int nb = 0;
        for (int i = i0; i < cs->n && i < i0 + CH; i++)
            if (!res[i].done) idx[nb++] = i;
        if (!nb) continue;
        const double tc = pulse_now();
        for (int b = 0; b < nb && !st; b++) {
            const pulse_candlist *l = &cs->lists[idx[b]];
            int hl, len;
            pulse_split_target(ds, l->user, cs->split, &hl);
            const int *seq = pulse_dataset_user_seq(ds, l->user, &len);
            st = pulse_rec_prompt_build(ds, seq, hl, r->p.prompt.test_history, l->items, K, NULL, 0, tb,
                                        &pr[b]);
            for (int j = 0; j < K && !st; j++)
                if (!(titles[(size_t)b * K + j] = pulse_rec_item_title(ds, l->items[j], tb)))
                    st = PULSE_ERR_NOMEM;
            seeds[b] = mix64(r->p.seed ^ mix64((uint64_t)(unsigned)l->user));
        }
        if (!st && rank) {
            st = pulse_rec_rank(r, pr, nb, (const char *const *)titles, K, lp, ntk);
            for (int b = 0; b < nb && !st; b++) {
                const pulse_candlist *l = &cs->lists[idx[b]];
                rec_eval_result *e = &res[idx[b]];
                for (int j = 0; j < K; j++) {
                    sc[j] = (float)title_score(&r->p, lp[b * K + j], ntk[b * K + j]);
                    e->cand_tokens += ntk[b * K + j];
                }
                e->rank = pulse_rank_list(sc, K, l->pos);
                pulse_strbuf sb = {0};
                for (int j = 0; j < K; j++) pulse_strbuf_printf(&sb, "%s%.4f", j ? "," : "[", (double)sc[j]);
                pulse_strbuf_cat(&sb, "]");
                if (sb.oom) {
                    pulse_strbuf_free(&sb);
                    st = pulse_set_error(PULSE_ERR_NOMEM, "evaluate: out of memory");
                }
                e->text = sb.s;
                e->done = !st;
            }
        } else if (!st) {
            st = pulse_rec_generate(r, pr, nb, seeds, r->p.max_new_tokens, gen);
            for (int b = 0; b < nb && !st; b++) {
                const pulse_candlist *l = &cs->lists[idx[b]];
                rec_eval_result *e = &res[idx[b]];
                for (int j = 0; j < K; j++)
                    e->matches += pulse_rec_title_match(titles[(size_t)b * K + j], gen[b]);
                e->hit = l->pos >= 0 && pulse_rec_title_match(titles[(size_t)b * K + l->pos], gen[b]);
                e->text = gen[b];
                gen[b] = NULL;
                e->done = 1;
            }
        }
        if (!st && store)
            st = rec_evalstore_put(store, ds, cs, phase, mh, sh, sjs, pulse_path_base(r->model_path), idx, nb,
                                   res, pulse_now() - tc);
        for (int b = 0; b < nb; b++) {
            pulse_rec_prompt_free(&pr[b]);
            free(gen[b]);
            gen[b] = NULL;
            for (int j = 0; j < K; j++) free(titles[(size_t)b * K + j]), titles[(size_t)b * K + j] = NULL;
        }
        ran += nb;
        pulse_progress_update(&prg, (size_t)ran, NULL);
    }
    if (!st) {
        pulse_progress_end(&prg, (size_t)ran, NULL);
        /* the metrics in list order, whether a user was decoded now or read back */
        int hits = 0;
        for (int i = 0; i < cs->n; i++) {
            const rec_eval_result *e = &res[i];
            rp.cand_tokens += e->cand_tokens;
            if (rank)
                pulse_metrics_add_rank(out, e->rank);
            else {
                rp.multi_match += e->matches > 1;
                rp.no_match += e->matches == 0;
                hits += e->hit;
                out->n_users++;
            }
            out->n_repeat += pulse_split_target_repeats(ds, cs->lists[i].user, cs->split);
        }
        if (rank)
            pulse_metrics_finish(out);
        else
            out->hr1 = out->n_users ? (double)hits / out->n_users : 0;
        for (int i = 0; outputs && i < cs->n; i++) {
            outputs[i] = res[i].text;
            res[i].text = NULL;
        }
    }
out:
    rp.users = out->n_users;
    rp.seconds = pulse_now() - t0;
    if (rep) *rep = rp;
    pulse_store_close(store);
    cJSON_free(sjs);
    for (int i = 0; res && i < cs->n; i++) free(res[i].text);
    free(pr), free(titles), free(lp), free(ntk), free(idx), free(seeds), free(gen), free(sc), free(res);
    return st;
}

/* ---- one recommendation with a why ---- */
pulse_status pulse_rec_recommend(pulse_recommender *r, const char *const *hist, int n_hist,
                                 const char *const *cands, int n_cands, double *score, int *order,
                                 char **why) {
    *why = NULL;
    pulse_rec_prompt pr;
    int nh = n_hist > r->p.prompt.test_history ? r->p.prompt.test_history : n_hist;
    pulse_status st = pulse_rec_prompt_from_titles(hist + (n_hist - nh), nh, cands, n_cands, NULL, NULL, &pr);
    if (st) return st;
    int *ntk = malloc(sizeof(int) * (size_t)n_cands);
    if (!ntk) st = pulse_set_error(PULSE_ERR_NOMEM, "recommend: out of memory");
    if (!st) st = pulse_rec_rank(r, &pr, 1, cands, n_cands, score, ntk);
    if (!st) {
        for (int j = 0; j < n_cands; j++) {
            score[j] = title_score(&r->p, score[j], ntk[j]);
            order[j] = j;
        }
        for (int a = 1; a < n_cands; a++) /* insertion sort: best first, ties in list order */
            for (int b = a; b > 0 && score[order[b]] > score[order[b - 1]]; b--) {
                int t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        /* the why: the answer begun with the best title, continued after "because" */
        const char *best = cands[order[0]];
        size_t n = strlen(best) + 64;
        char *pre = malloc(n);
        if (!pre) st = pulse_set_error(PULSE_ERR_NOMEM, "recommend: out of memory");
        if (!st) {
            snprintf(pre, n, "The recommendation is \"%s\" because", best);
            free(pr.prefix);
            pr.prefix = pre;
            char *out = NULL;
            uint64_t seed = r->p.seed;
            st = pulse_rec_generate(r, &pr, 1, &seed, r->p.max_new_tokens, &out);
            if (!st) {
                /* the first line, trimmed; "because ..." restored */
                char *e = strchr(out, '\n');
                if (e) *e = 0;
                char *s = out;
                while (*s == ' ') s++;
                size_t l = strlen(s);
                while (l > 0 && s[l - 1] == ' ') s[--l] = 0;
                size_t wn = l + 16;
                *why = malloc(wn);
                if (*why)
                    snprintf(*why, wn, "because %s", s);
                else
                    st = pulse_set_error(PULSE_ERR_NOMEM, "recommend: out of memory");
                free(out);
            }
        }
    }
    free(ntk);
    pulse_rec_prompt_free(&pr);
    return st;
}
