/* rationale/tot_job.c — owns Phase 2 as a job: load the dataset, the SLM, the Thought Space and the optional
 * SASRec model; pick the job's users (the seeded order Phase 1 uses); skip those already stored under the
 * same (dataset, "tot", model hash, settings hash); build their records (history + similar users' items for
 * the prompt, the behaviour text and chosen title for the scorers); run the search (rationale/tot.c) and
 * commit each user's row as it finishes. On several MPI ranks (include/pulse/dist.h) rank 0 alone reads and
 * writes the store and hands out ranges of the pending users from the dynamic work queue; every rank (rank
 * 0 too) searches its ranges and sends each finished user's result to rank 0 (the wire format below), which
 * commits it. The search seeds each branch from (seed, user id, depth, node, branch), and its results do not
 * depend on which users are searched together, so the store is the one-process store. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/dist.h"
#include "pulse/rationale.h"
#include "pulse/strbuf.h"
#include "rationale/internal.h"

pulse_tot_job_params pulse_tot_job_default_params(void) {
    pulse_tot_job_params p;
    memset(&p, 0, sizeof p);
    p.record = pulse_record_default_params();
    p.search = pulse_tot_default_params();
    p.users = 0;
    p.seed = 42;
    return p;
}

/* The user's part of the prompt: history and similar users' items (never the chosen item). */
static char *tot_user_text(const pulse_record *rec) {
    const char *h = rec->history_text ? rec->history_text : "";
    const char *s = rec->similar_text ? rec->similar_text : "";
    const char *fmt = *s ? "History (oldest first):\n%sItems that similar users liked:\n%s"
                         : "History (oldest first):\n%s%s";
    size_t n = strlen(fmt) + strlen(h) + strlen(s) + 1;
    char *t = malloc(n);
    if (t) snprintf(t, n, fmt, h, s);
    return t;
}

typedef struct {
    pulse_store *store;
    const pulse_dataset *ds;
    const pulse_record *recs;
    const pulse_tot_job_params *p;
    const char *model_name, *model_hash, *settings_hash, *settings;
    pulse_tot_report *rep;
    double score_sum;
    int stop_after, stopped;
    /* scale-out: the queue, the first index of the range being searched, the message buffer */
    pulse_dist_queue *q;
    int first, n_todo;
    pulse_strbuf msg;
    int64_t gen_tokens, prompt_tokens; /* every rank's, from the closing counters */
} job_ctx;

/* One finished user on the wire (any rank -> rank 0): this header, then chain (n_chain bytes; -1: none),
 * raw (n_raw bytes) and n_thoughts thoughts, each an int32 length and its bytes. */
typedef struct {
    int32_t idx, ok, n_thoughts, gen_tokens, prompt_tokens, candidates, duplicates, n_chain, n_raw;
    double score, seconds;
} wire_tot;

typedef struct {
    int64_t gen_tokens, prompt_tokens;
} wire_tail;

/* rank 0: a finished user (from any rank) -> its store row and the counters */
static pulse_status store_result(job_ctx *J, int i, const pulse_tot_result *r) {
    const pulse_record *rec = &J->recs[i];
    char *hist = pulse_record_history_json(rec), *sim = pulse_record_similar_json(rec);
    cJSON *ex = cJSON_CreateObject();
    cJSON *th = cJSON_AddArrayToObject(ex, "thoughts");
    for (int k = 0; th && k < r->n_thoughts; k++)
        cJSON_AddItemToArray(th, cJSON_CreateString(r->thoughts[k]));
    cJSON_AddStringToObject(ex, "scorer", pulse_tot_scorer_name(J->p->search.scorer));
    cJSON_AddNumberToObject(ex, "candidates", r->candidates);
    cJSON_AddNumberToObject(ex, "duplicates", r->duplicates);
    char *extra = cJSON_PrintUnformatted(ex);
    cJSON_Delete(ex);
    pulse_store_row row;
    memset(&row, 0, sizeof row);
    row.dataset = pulse_dataset_name(J->ds);
    row.user = rec->user_key;
    row.user_index = rec->user;
    row.phase = "tot";
    row.model_hash = J->model_hash;
    row.settings_hash = J->settings_hash;
    row.ok = r->ok;
    row.text = r->ok ? r->chain : NULL;
    row.score = r->ok ? r->score : NAN;
    row.raw = r->raw ? r->raw : "";
    row.attempts = 1;
    row.prompt_tokens = r->prompt_tokens;
    row.gen_tokens = r->gen_tokens;
    row.seconds = r->seconds;
    row.model = J->model_name;
    row.behaviour = rec->behaviour;
    row.history = hist;
    row.chosen = rec->chosen_text;
    row.similar = sim;
    row.settings = J->settings;
    row.extra = extra;
    pulse_status st = hist && sim && extra ? pulse_store_put(J->store, &row, 1)
                                           : pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
    free(hist);
    free(sim);
    cJSON_free(extra);
    if (st) return st;
    J->rep->done++;
    if (r->ok) {
        J->rep->ok++;
        J->score_sum += r->score;
    } else
        J->rep->failed++;
    if (J->stop_after > 0 && J->rep->done >= J->stop_after) {
        J->stopped = 1;
        return pulse_set_error(PULSE_ERR_STATE, "ToT job: stopped after %d users", J->rep->done);
    }
    return PULSE_OK;
}

/* any rank: a finished user of the range being searched -> rank 0 */
static pulse_status on_done(void *ud, int i, const pulse_tot_result *r) {
    job_ctx *J = ud;
    wire_tot w;
    memset(&w, 0, sizeof w);
    w.idx = J->first + i;
    w.ok = r->ok;
    w.n_thoughts = r->n_thoughts > 0 ? r->n_thoughts : 0;
    w.gen_tokens = r->gen_tokens;
    w.prompt_tokens = r->prompt_tokens;
    w.candidates = r->candidates;
    w.duplicates = r->duplicates;
    w.n_chain = r->ok && r->chain ? (int32_t)strlen(r->chain) : -1;
    w.n_raw = r->raw ? (int32_t)strlen(r->raw) : 0;
    w.score = r->score;
    w.seconds = r->seconds;
    pulse_strbuf *b = &J->msg;
    b->n = 0;
    pulse_strbuf_put(b, (const char *)&w, sizeof w);
    if (w.n_chain > 0) pulse_strbuf_put(b, r->chain, (size_t)w.n_chain);
    if (w.n_raw > 0) pulse_strbuf_put(b, r->raw, (size_t)w.n_raw);
    for (int k = 0; k < w.n_thoughts; k++) {
        const char *t = r->thoughts[k] ? r->thoughts[k] : "";
        int32_t n = (int32_t)strlen(t);
        pulse_strbuf_put(b, (const char *)&n, sizeof n);
        pulse_strbuf_put(b, t, (size_t)n);
    }
    if (b->oom) return pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
    return pulse_dist_queue_result(J->q, b->s, b->n);
}

/* rank 0 (the queue's lock held): one user's result from any rank */
static pulse_status on_result(void *ud, int rank, const void *msg, size_t n) {
    job_ctx *J = ud;
    wire_tot w;
    const char *p = msg, *end = (const char *)msg + n;
    if (n < sizeof w)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "ToT job: a result of %zu bytes from rank %d; expected >= %zu", n, rank,
                               sizeof w);
    memcpy(&w, p, sizeof w);
    p += sizeof w;
    if (w.idx < 0 || w.idx >= J->n_todo || w.n_chain < -1 || w.n_raw < 0 || w.n_thoughts < 0 ||
        (size_t)(end - p) < (size_t)(w.n_chain > 0 ? w.n_chain : 0) + (size_t)w.n_raw)
        return pulse_set_error(PULSE_ERR_FORMAT, "ToT job: a malformed result from rank %d (user %d of %d)",
                               rank, (int)w.idx, J->n_todo);
    if (J->stopped) return PULSE_OK; /* stop_after reached: users still in flight are not stored */
    pulse_tot_result r;
    memset(&r, 0, sizeof r);
    pulse_status st = PULSE_OK;
    r.ok = w.ok;
    r.score = w.score;
    r.seconds = w.seconds;
    r.gen_tokens = w.gen_tokens;
    r.prompt_tokens = w.prompt_tokens;
    r.candidates = w.candidates;
    r.duplicates = w.duplicates;
    r.chain = w.n_chain >= 0 ? pulse_malloc((size_t)w.n_chain + 1) : NULL;
    r.raw = pulse_malloc((size_t)w.n_raw + 1);
    r.thoughts = pulse_calloc((size_t)(w.n_thoughts > 0 ? w.n_thoughts : 1), sizeof(char *));
    if ((w.n_chain >= 0 && !r.chain) || !r.raw || !r.thoughts) st = PULSE_ERR_NOMEM;
    if (!st) {
        if (r.chain) {
            memcpy(r.chain, p, (size_t)w.n_chain);
            r.chain[w.n_chain] = 0;
            p += w.n_chain;
        }
        memcpy(r.raw, p, (size_t)w.n_raw);
        r.raw[w.n_raw] = 0;
        p += w.n_raw;
    }
    for (int k = 0; !st && k < w.n_thoughts; k++) {
        int32_t tl;
        if ((size_t)(end - p) < sizeof tl) break;
        memcpy(&tl, p, sizeof tl);
        p += sizeof tl;
        if (tl < 0 || (size_t)(end - p) < (size_t)tl) break;
        if (!(r.thoughts[k] = pulse_malloc((size_t)tl + 1))) {
            st = PULSE_ERR_NOMEM;
            break;
        }
        memcpy(r.thoughts[k], p, (size_t)tl);
        r.thoughts[k][tl] = 0;
        p += tl;
        r.n_thoughts = k + 1;
    }
    if (!st && r.n_thoughts != w.n_thoughts)
        st = pulse_set_error(PULSE_ERR_FORMAT, "ToT job: a truncated result from rank %d (user %d)", rank,
                             (int)w.idx);
    if (!st) st = store_result(J, w.idx, &r);
    for (int k = 0; k < r.n_thoughts; k++) free(r.thoughts[k]);
    free(r.thoughts);
    free(r.chain);
    free(r.raw);
    return st;
}

/* rank 0: a rank's closing counters */
static pulse_status on_tail(void *ud, int rank, const void *msg, size_t n) {
    job_ctx *J = ud;
    wire_tail t;
    if (n != sizeof t)
        return pulse_set_error(PULSE_ERR_FORMAT, "ToT job: closing counters of %zu bytes from rank %d", n,
                               rank);
    memcpy(&t, msg, sizeof t);
    J->gen_tokens += t.gen_tokens;
    J->prompt_tokens += t.prompt_tokens;
    return PULSE_OK;
}

/* The settings that change results, as JSON (hashed into the store key). */
static char *settings_json(const pulse_tot_job_params *p, int chat, const char *space_hash,
                           const char *sasrec_hash) {
    const pulse_tot_params *s = &p->search;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", "tot");
    cJSON_AddNumberToObject(o, "depth", s->depth);
    cJSON_AddNumberToObject(o, "branching", s->branching);
    cJSON_AddNumberToObject(o, "beam", s->beam);
    cJSON_AddNumberToObject(o, "max_thought_tokens", s->max_thought_tokens);
    cJSON_AddNumberToObject(o, "temp", s->temp);
    cJSON_AddNumberToObject(o, "top_k", s->top_k);
    cJSON_AddNumberToObject(o, "top_p", s->top_p);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    cJSON_AddStringToObject(o, "scorer", pulse_tot_scorer_name(s->scorer));
    cJSON_AddStringToObject(o, "chat", chat ? "chat" : "raw");
    if (space_hash)
        cJSON_AddStringToObject(o, "space", space_hash);
    else
        cJSON_AddNullToObject(o, "space");
    if (sasrec_hash)
        cJSON_AddStringToObject(o, "sasrec", sasrec_hash);
    else
        cJSON_AddNullToObject(o, "sasrec");
    cJSON *r = cJSON_AddObjectToObject(o, "record");
    cJSON_AddNumberToObject(r, "max_history", p->record.max_history);
    cJSON_AddNumberToObject(r, "history_tokens", p->record.history_tokens);
    cJSON_AddNumberToObject(r, "title_bytes", p->record.title_bytes);
    cJSON_AddNumberToObject(r, "n_similar", p->record.n_similar);
    cJSON_AddNumberToObject(r, "similar_per_user", p->record.similar_per_user);
    cJSON_AddNumberToObject(r, "similar_tokens", p->record.similar_tokens);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* ---- the Thought-Space comparison with Phase 1 over the job's users ---- */
typedef struct {
    const char *dataset, *model_hash, *settings_hash;
    int nu;
    const uint8_t *sel;
    char **tot, **p1, **beh;
    uint8_t *p1_same; /* p1[u] came from the same model */
    int oom;
} cmp_ctx;

static char *xstrdup(cmp_ctx *C, const char *s) {
    char *d = strdup(s ? s : "");
    C->oom |= !d;
    return d;
}

static int cmp_tot_cb(void *ud, const pulse_store_row *r) {
    cmp_ctx *C = ud;
    const int u = r->user_index;
    if (!r->ok || !r->text || !r->behaviour || u < 0 || u >= C->nu || !C->sel[u] ||
        strcmp(r->dataset, C->dataset) || strcmp(r->model_hash, C->model_hash) ||
        strcmp(r->settings_hash, C->settings_hash) || C->tot[u])
        return 0;
    C->tot[u] = xstrdup(C, r->text);
    C->beh[u] = xstrdup(C, r->behaviour);
    return C->oom;
}

static int cmp_p1_cb(void *ud, const pulse_store_row *r) {
    cmp_ctx *C = ud;
    const int u = r->user_index;
    if (!r->ok || !r->text || u < 0 || u >= C->nu || !C->sel[u] || strcmp(r->dataset, C->dataset)) return 0;
    const int same = !strcmp(r->model_hash, C->model_hash);
    if (C->p1[u] && (C->p1_same[u] || !same)) return 0; /* keep the first, a same-model row over another */
    free(C->p1[u]);
    C->p1[u] = xstrdup(C, r->text);
    C->p1_same[u] = (uint8_t)same;
    return C->oom;
}

/* Mean cos(R(text), B(behaviour)) of the kept chains and of the same users' Phase-1 rationales (users that
 * have both in the store). */
static pulse_status compare_phase1(pulse_store *store, pulse_thought_space *space, const char *dataset,
                                   const pulse_tot_report *rep, const int *users, int n_users, int nu,
                                   pulse_tot_report *out) {
    cmp_ctx C = {dataset, rep->model_hash, rep->settings_hash, nu, NULL, NULL, NULL, NULL, NULL, 0};
    uint8_t *sel = calloc((size_t)nu, 1);
    C.tot = calloc((size_t)nu, sizeof(char *));
    C.p1 = calloc((size_t)nu, sizeof(char *));
    C.beh = calloc((size_t)nu, sizeof(char *));
    C.p1_same = calloc((size_t)nu, 1);
    const char **bt = NULL, **tt = NULL, **pt = NULL;
    float *eb = NULL, *et = NULL, *ep = NULL;
    pulse_status st = sel && C.tot && C.p1 && C.beh && C.p1_same ? PULSE_OK : PULSE_ERR_NOMEM;
    if (!st) {
        for (int i = 0; i < n_users; i++) sel[users[i]] = 1;
        C.sel = sel;
        st = pulse_store_each(store, "tot", NULL, cmp_tot_cb, &C);
    }
    if (!st) st = pulse_store_each(store, "phase1", NULL, cmp_p1_cb, &C);
    if (!st && C.oom) st = PULSE_ERR_NOMEM;
    int n = 0;
    for (int u = 0; !st && u < nu; u++) n += C.tot[u] && C.p1[u];
    const int D = pulse_thought_space_dim(space);
    if (!st && n > 0) {
        bt = malloc(sizeof(char *) * (size_t)n), tt = malloc(sizeof(char *) * (size_t)n);
        pt = malloc(sizeof(char *) * (size_t)n);
        eb = malloc(sizeof(float) * (size_t)n * D), et = malloc(sizeof(float) * (size_t)n * D);
        ep = malloc(sizeof(float) * (size_t)n * D);
        if (!bt || !tt || !pt || !eb || !et || !ep) st = PULSE_ERR_NOMEM;
        for (int u = 0, k = 0; !st && u < nu; u++)
            if (C.tot[u] && C.p1[u]) bt[k] = C.beh[u], tt[k] = C.tot[u], pt[k] = C.p1[u], k++;
        if (!st) st = pulse_thought_embed_behaviour(space, bt, n, eb);
        if (!st) st = pulse_thought_embed_rationale(space, tt, n, et);
        if (!st) st = pulse_thought_embed_rationale(space, pt, n, ep);
        double s1 = 0, s2 = 0;
        for (int i = 0; !st && i < n; i++)
            for (int j = 0; j < D; j++) {
                s1 += (double)eb[(size_t)i * D + j] * et[(size_t)i * D + j];
                s2 += (double)eb[(size_t)i * D + j] * ep[(size_t)i * D + j];
            }
        if (!st) {
            out->cmp_users = n;
            out->cmp_tot = s1 / n;
            out->cmp_phase1 = s2 / n;
        }
    }
    if (st == PULSE_ERR_NOMEM) pulse_set_error(st, "ToT job: out of memory comparing with Phase 1");
    for (int u = 0; u < nu; u++) {
        if (C.tot) free(C.tot[u]);
        if (C.p1) free(C.p1[u]);
        if (C.beh) free(C.beh[u]);
    }
    free(C.tot), free(C.p1), free(C.beh), free(C.p1_same), free(sel);
    free(bt), free(tt), free(pt), free(eb), free(et), free(ep);
    return st;
}

/* space.json's text hashed (a trained space), else the folder's path (a plain encoder) */
static pulse_status space_hash(const char *dir, char hex[17]) {
    char path[4096];
    pulse_path_join(path, sizeof path, dir, "space.json");
    if (!pulse_file_exists(path)) {
        pulse_hash_text(dir, hex);
        return PULSE_OK;
    }
    return pulse_hash_file(path, hex);
}

pulse_status pulse_rationale_tot(const char *data, const char *model, const char *space_dir,
                                 const char *sasrec, const char *db, const pulse_tot_job_params *pp,
                                 pulse_tot_report *out) {
    pulse_tot_job_params p = pp ? *pp : pulse_tot_job_default_params();
    p.search.seed = p.seed;
    pulse_tot_report rep;
    memset(&rep, 0, sizeof rep);
    if (out) *out = rep;
    if (!data || !model || !db)
        return pulse_set_error(PULSE_ERR_ARG, "ToT job: a data folder, a model and a store are required");
    if (p.search.scorer == PULSE_TOT_SCORER_THOUGHT && !space_dir)
        return pulse_set_error(PULSE_ERR_ARG, "ToT job: the thought scorer needs a Thought Space (--space)");
    if (p.users < 0) return pulse_set_error(PULSE_ERR_ARG, "ToT job: users must be >= 0 (got %d)", p.users);
    const double t0 = pulse_now();
    const int rank = pulse_dist_rank(), size = pulse_dist_size();
    pulse_dataset *ds = NULL;
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_thought_space *space = NULL;
    pulse_sasrec *sr = NULL;
    pulse_store *store = NULL;
    pulse_recorder *recorder = NULL;
    pulse_record *recs = NULL;
    pulse_tot_input *in = NULL;
    char **prompts = NULL;
    int *users = NULL, *todo = NULL, n_todo = 0;
    uint8_t *done = NULL;
    char *settings = NULL;
    char shash[17] = {0}, rhash[17] = {0};
    int ts = 0, nu = 0; /* the thought scorer is used; users of the dataset */
    pulse_status st = pulse_dataset_load(data, NULL, &ds);
    if (st) goto loaded;
    pulse_lm_params lp = pulse_lm_default_params();
    lp.n_threads = p.n_threads;
    if ((st = pulse_lm_load(model, &lp, &m))) goto loaded;
    if ((st = pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok))) goto loaded;
    if ((st = pulse_hash_file(model, rep.model_hash))) goto loaded;
    if (space_dir) { /* the thought scorer's, and the comparison with Phase 1 for either scorer */
        if ((st = pulse_thought_space_load(space_dir, NULL, &space))) goto loaded;
        if ((st = space_hash(space_dir, shash))) goto loaded;
    }
    if (sasrec) {
        if ((st = pulse_sasrec_load(sasrec, NULL, &sr))) goto loaded;
        if ((st = pulse_hash_file(sasrec, rhash))) goto loaded;
    }
    rep.chat = p.search.chat >= 0 ? p.search.chat : pulse_chat_detect(tok) != PULSE_CHAT_RAW;
    rep.fork = p.search.fork;
    p.search.chat = rep.chat;
    ts = p.search.scorer == PULSE_TOT_SCORER_THOUGHT; /* the space changes the results */
    if (!(settings = settings_json(&p, rep.chat, ts ? shash : NULL, sr ? rhash : NULL))) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto loaded;
    }
    pulse_hash_text(settings, rep.settings_hash);
    nu = pulse_dataset_n_users(ds);
    users = malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    done = calloc((size_t)(nu > 0 ? nu : 1), 1);
    if (!users || !done) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto loaded;
    }
    if ((st = pulse_record_select_users(ds, p.users > 0 ? p.users : nu, p.seed, users, &rep.selected)))
        goto loaded;
    todo = malloc(sizeof(int) * (size_t)(rep.selected > 0 ? rep.selected : 1));
    if (!todo) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto loaded;
    }
    if (rank == 0) { /* rank 0 alone reads and writes the store */
        if ((st = pulse_store_open(db, 0, &store))) goto loaded;
        if ((st = pulse_store_done(store, pulse_dataset_name(ds), "tot", rep.model_hash, rep.settings_hash,
                                   nu, done)))
            goto loaded;
        for (int i = 0; i < rep.selected; i++) {
            if (done[users[i]])
                rep.skipped++;
            else
                todo[n_todo++] = users[i];
        }
    }
loaded:
    if ((st = pulse_dist_agree(st))) goto out;
    if ((st = rat_share_users(&todo, &n_todo))) goto out;
    if ((st = pulse_recorder_new(ds, sr, tok, &p.record, &recorder))) goto built;
    recs = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *recs);
    in = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *in);
    prompts = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *prompts);
    if (!recs || !in || !prompts) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto built;
    }
    for (int i = 0; i < n_todo && !st; i++) {
        if ((st = pulse_recorder_build(recorder, todo[i], &recs[i]))) break;
        if (!(prompts[i] = tot_user_text(&recs[i])))
            st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        in[i] = (pulse_tot_input){recs[i].user_key, prompts[i], recs[i].behaviour, recs[i].chosen_text};
    }
built:
    if ((st = pulse_dist_agree(st))) goto out;
    job_ctx J;
    memset(&J, 0, sizeof J);
    J.store = store;
    J.ds = ds;
    J.recs = recs;
    J.p = &p;
    J.model_name = pulse_path_base(model);
    J.model_hash = rep.model_hash;
    J.settings_hash = rep.settings_hash;
    J.settings = settings;
    J.rep = &rep;
    J.stop_after = p.stop_after;
    J.n_todo = n_todo;
    /* one rank: every user in one search (as before scale-out); several: ranges of `parallel` users, the
     * rest split evenly over the ranks at the end */
    const int range = size > 1 ? p.search.parallel : (n_todo > 0 ? n_todo : 1);
    pulse_dist_queue_params qp = {n_todo, range, size > 1 ? 1 : 0, on_result, on_tail, &J};
    if ((st = pulse_dist_queue_new(&qp, &J.q))) goto out; /* the caller ends the job (pulse_dist_abort) */
    const double ts0 = pulse_now();
    int64_t my_gen = 0, my_prompt = 0;
    while (!st) {
        int first = 0, count = 0;
        if ((st = pulse_dist_queue_next(J.q, range, &first, &count)) || count == 0) break;
        J.first = first;
        pulse_tot_stats tst;
        memset(&tst, 0, sizeof tst);
        st = pulse_tot_run(m, tok, ts ? space : NULL, in + first, count, &p.search, on_done, &J, &tst);
        my_gen += tst.gen_tokens;
        my_prompt += tst.prompt_tokens;
    }
    if (st && J.stopped) {
        pulse_clear_error();
        st = PULSE_OK;
    }
    {
        wire_tail t = {my_gen, my_prompt};
        st = pulse_dist_queue_finish(J.q, st, &t, sizeof t);
        J.q = NULL;
        if (st && J.stopped) { /* stop_after: the stop is not a failure */
            pulse_clear_error();
            st = PULSE_OK;
        }
    }
    free(J.msg.s);
    rep.gen_tokens = J.gen_tokens;
    rep.prompt_tokens = J.prompt_tokens;
    rep.gen_tok_s = pulse_now() - ts0 > 0 ? (double)J.gen_tokens / (pulse_now() - ts0) : 0;
    rep.mean_score = rep.ok > 0 ? J.score_sum / rep.ok : NAN;
    rep.cmp_tot = rep.cmp_phase1 = NAN;
    if (!st && space && rank == 0)
        st = compare_phase1(store, space, pulse_dataset_name(ds), &rep, users, rep.selected, nu, &rep);
out:
    rep.seconds = pulse_now() - t0;
    rep.users_s = rep.seconds > 0 ? rep.done / rep.seconds : 0;
    if (out) *out = rep;
    for (int i = 0; recs && i < n_todo; i++) pulse_record_free(&recs[i]);
    for (int i = 0; prompts && i < n_todo; i++) free(prompts[i]);
    free(recs);
    free(prompts);
    free(in);
    free(users);
    free(todo);
    free(done);
    cJSON_free(settings);
    pulse_recorder_free(recorder);
    pulse_store_close(store);
    pulse_sasrec_free(sr);
    pulse_thought_space_free(space);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    pulse_dataset_free(ds);
    return st;
}
