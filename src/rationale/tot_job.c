/* rationale/tot_job.c — owns Phase 2 as a job: load the dataset, the SLM, the Thought Space and the optional
 * SASRec model; pick the job's users (the seeded order Phase 1 uses); skip those already stored under the
 * same (dataset, "tot", model hash, settings hash); build their records (history + similar users' items for
 * the prompt, the behaviour text and chosen title for the scorers); run the search (rationale/tot.c) and
 * commit each user's row as it finishes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/rationale.h"

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

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
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
} job_ctx;

static pulse_status on_done(void *ud, int i, const pulse_tot_result *r) {
    job_ctx *J = ud;
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
    pulse_status st = pulse_dataset_load(data, NULL, &ds);
    if (st) goto out;
    pulse_lm_params lp = pulse_lm_default_params();
    lp.n_threads = p.n_threads;
    if ((st = pulse_lm_load(model, &lp, &m))) goto out;
    if ((st = pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok))) goto out;
    if ((st = pulse_hash_file(model, rep.model_hash))) goto out;
    if (space_dir) { /* the thought scorer's, and the comparison with Phase 1 for either scorer */
        if ((st = pulse_thought_space_load(space_dir, NULL, &space))) goto out;
        if ((st = space_hash(space_dir, shash))) goto out;
    }
    if (sasrec) {
        if ((st = pulse_sasrec_load(sasrec, NULL, &sr))) goto out;
        if ((st = pulse_hash_file(sasrec, rhash))) goto out;
    }
    rep.chat = p.search.chat >= 0 ? p.search.chat : pulse_chat_detect(tok) != PULSE_CHAT_RAW;
    rep.fork = p.search.fork;
    p.search.chat = rep.chat;
    const int ts = p.search.scorer == PULSE_TOT_SCORER_THOUGHT; /* the space changes the results */
    if (!(settings = settings_json(&p, rep.chat, ts ? shash : NULL, sr ? rhash : NULL))) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto out;
    }
    pulse_hash_text(settings, rep.settings_hash);
    const int nu = pulse_dataset_n_users(ds);
    users = malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    done = calloc((size_t)(nu > 0 ? nu : 1), 1);
    if (!users || !done) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto out;
    }
    if ((st = pulse_record_select_users(ds, p.users > 0 ? p.users : nu, p.seed, users, &rep.selected)))
        goto out;
    if ((st = pulse_store_open(db, 0, &store))) goto out;
    if ((st = pulse_store_done(store, pulse_dataset_name(ds), "tot", rep.model_hash, rep.settings_hash, nu,
                               done)))
        goto out;
    todo = malloc(sizeof(int) * (size_t)(rep.selected > 0 ? rep.selected : 1));
    if (!todo) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto out;
    }
    for (int i = 0; i < rep.selected; i++) {
        if (done[users[i]])
            rep.skipped++;
        else
            todo[n_todo++] = users[i];
    }
    if ((st = pulse_recorder_new(ds, sr, tok, &p.record, &recorder))) goto out;
    recs = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *recs);
    in = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *in);
    prompts = calloc((size_t)(n_todo > 0 ? n_todo : 1), sizeof *prompts);
    if (!recs || !in || !prompts) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        goto out;
    }
    for (int i = 0; i < n_todo && !st; i++) {
        if ((st = pulse_recorder_build(recorder, todo[i], &recs[i]))) break;
        if (!(prompts[i] = tot_user_text(&recs[i])))
            st = pulse_set_error(PULSE_ERR_NOMEM, "ToT job: out of memory");
        in[i] = (pulse_tot_input){recs[i].user_key, prompts[i], recs[i].behaviour, recs[i].chosen_text};
    }
    if (st) goto out;
    job_ctx J = {store, ds, recs,         &p, base_name(model), rep.model_hash, rep.settings_hash, settings,
                 &rep,  0,  p.stop_after, 0};
    pulse_tot_stats tst;
    st = pulse_tot_run(m, tok, ts ? space : NULL, in, n_todo, &p.search, on_done, &J, &tst);
    if (st && J.stopped) {
        pulse_clear_error();
        st = PULSE_OK;
    }
    rep.gen_tokens = tst.gen_tokens;
    rep.prompt_tokens = tst.prompt_tokens;
    rep.gen_tok_s = tst.gen_tok_s;
    rep.mean_score = rep.ok > 0 ? J.score_sum / rep.ok : NAN;
    rep.cmp_tot = rep.cmp_phase1 = NAN;
    if (!st && space)
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
