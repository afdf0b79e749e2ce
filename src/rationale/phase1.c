/* rationale/phase1.c — owns the Phase-1 job: hindsight rationales for a seeded set of users. Records and
 * prompts for every pending user are built first (instruction first: one shared KV prefix, forked); users
 * decode together with continuous batching in chunks; each user is extracted and committed to the store the
 * moment it finishes (a failed extraction is retried with a new seed in the next chunk, up to `retries`,
 * then stored as a failure with its raw text), so a kill loses only the users in flight and a rerun skips
 * every stored user. On several MPI ranks (include/pulse/dist.h) every rank loads the model and builds the
 * pending users' prompts; rank 0 alone reads and writes the store and hands out ranges of the pending users
 * from the dynamic work queue (generating between requests itself); every rank's finished users travel to
 * rank 0 as one message each (the wire format below) and are committed there as they arrive. Seeds depend
 * on (seed, user, attempt) only, so which rank decodes a user does not change its sampled tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/dist.h"
#include "rationale/internal.h"
#include "pulse/rationale.h"

pulse_phase1_params pulse_phase1_default_params(void) {
    pulse_phase1_params p;
    memset(&p, 0, sizeof p);
    p.record = pulse_record_default_params();
    p.users = 1000;
    p.seed = 42;
    p.retries = 2;
    p.max_new_tokens = 150;
    p.temp = 0.7f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.chat = -1;
    p.prime = 1;
    p.n_parallel = 32;
    p.chunk = 0;
    p.share_prefix = 1;
    p.progress = 1;
    return p;
}

typedef struct {
    int user; /* dataset index */
    int *ids; /* prompt tokens */
    int n_ids;
    char *prompt_text; /* instruction + per-user text (the copy check) */
    char *behaviour, *history_json, *similar_json, *chosen;
    int attempts, gen_tokens;
    double seconds;
    char *last_raw;
} job_user;

typedef struct {
    pulse_store *store;
    const pulse_dataset *ds;
    const pulse_tokenizer *tok;
    const pulse_phase1_params *p;
    job_user *u;
    const char *model_name, *settings;
    char mh[17], sh[17];
    /* the current chunk */
    const int *items; /* job_user index of each request */
    pulse_lm_request *rq;
    int *retry, n_retry; /* job_user indices to retry in the next chunk */
    double t_chunk;
    int stored, stop, ok, failed, retried;
    int64_t gen_tokens, attempts;
    double *words;
    int n_words;
    pulse_progress prog;
    double t0;
    /* scale-out: the queue, this rank, the results' message buffer, counters from the other ranks' tails */
    pulse_dist_queue *q;
    int rank, n_pending;
    char *msg;
    size_t msg_cap;
    int64_t prompt_tokens, prompt_computed;
} job;

/* One finished user on the wire (any rank -> rank 0): this header, then text (n_text bytes; n_text = -1:
 * none, the user failed) and the last raw output (n_raw bytes). */
typedef struct {
    int32_t idx; /* index into the pending users (identical on every rank) */
    int32_t ok, attempts, gen_tokens, n_text, n_raw;
    double seconds;
} wire_user;

/* A rank's closing counters (the other counters come with each user) */
typedef struct {
    int64_t prompt_tokens, prompt_computed;
} wire_tail;

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static pulse_status store_user(job *J, job_user *ju, const char *text) {
    pulse_store_row r;
    memset(&r, 0, sizeof r);
    r.dataset = pulse_dataset_name(J->ds);
    r.user = pulse_dataset_user_key(J->ds, ju->user);
    r.user_index = ju->user;
    r.phase = "phase1";
    r.model_hash = J->mh;
    r.settings_hash = J->sh;
    r.ok = text != NULL;
    r.text = text;
    r.score = NAN;
    r.raw = ju->last_raw;
    r.attempts = ju->attempts;
    r.prompt_tokens = ju->n_ids;
    r.gen_tokens = ju->gen_tokens;
    r.seconds = ju->seconds;
    r.model = J->model_name;
    r.behaviour = ju->behaviour;
    r.history = ju->history_json;
    r.chosen = ju->chosen;
    r.similar = ju->similar_json;
    r.settings = J->settings;
    return pulse_store_put(J->store, &r, 1);
}

/* rank 0 (the queue's lock held): one finished user from any rank -> the store, the counters, progress */
static pulse_status on_result(void *ud, int rank, const void *msg, size_t n) {
    job *J = ud;
    const pulse_phase1_params *p = J->p;
    wire_user w;
    if (n < sizeof w)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "phase1: a result of %zu bytes from rank %d; "
                               "expected >= %zu",
                               n, rank, sizeof w);
    memcpy(&w, msg, sizeof w);
    if (w.idx < 0 || w.idx >= J->n_pending || w.n_raw < 0 || w.n_text < -1 ||
        sizeof w + (size_t)(w.n_text > 0 ? w.n_text : 0) + (size_t)w.n_raw != n)
        return pulse_set_error(
            PULSE_ERR_FORMAT,
            "phase1: a malformed result from rank %d (user %d of %d, %d + %d text bytes in "
            "%zu)",
            rank, (int)w.idx, J->n_pending, (int)w.n_text, (int)w.n_raw, n);
    if (J->stop) return PULSE_OK; /* stop_after reached: users still in flight are not stored */
    job_user *ju = &J->u[w.idx];
    const char *body = (const char *)msg + sizeof w;
    char *text = NULL, *raw = malloc((size_t)w.n_raw + 1);
    if (w.n_text >= 0) text = malloc((size_t)w.n_text + 1);
    if (!raw || (w.n_text >= 0 && !text)) {
        free(raw);
        free(text);
        return pulse_set_error(PULSE_ERR_NOMEM, "phase1: out of memory");
    }
    if (text) {
        memcpy(text, body, (size_t)w.n_text);
        text[w.n_text] = 0;
        body += w.n_text;
    }
    memcpy(raw, body, (size_t)w.n_raw);
    raw[w.n_raw] = 0;
    free(ju->last_raw);
    ju->last_raw = raw;
    ju->attempts = w.attempts;
    ju->gen_tokens = w.gen_tokens;
    ju->seconds = w.seconds;
    J->attempts += w.attempts;
    J->gen_tokens += w.gen_tokens;
    pulse_status st = store_user(J, ju, w.ok ? text : NULL);
    if (!st) {
        J->stored++;
        if (w.ok) {
            J->ok++;
            J->words[J->n_words++] = pulse_count_words(text);
        } else
            J->failed++;
        J->retried += ju->attempts > 1;
        if (p->progress) {
            char extra[128];
            double el = pulse_now() - J->t0;
            snprintf(extra, sizeof extra, "%.1f gen tok/s, ok %d, failed %d",
                     el > 0 ? J->gen_tokens / el : 0.0, J->ok, J->failed);
            pulse_progress_update(&J->prog, (size_t)J->stored, extra);
        }
        if (p->stop_after > 0 && J->stored >= p->stop_after) {
            J->stop = 1;
            st = pulse_set_error(PULSE_ERR_STATE, "phase1: stopped after %d users (stop_after)", J->stored);
        }
    }
    free(text);
    return st;
}

/* rank 0: another rank's closing counters */
static pulse_status on_tail(void *ud, int rank, const void *msg, size_t n) {
    job *J = ud;
    wire_tail t;
    if (n != sizeof t)
        return pulse_set_error(PULSE_ERR_FORMAT,
                               "phase1: closing counters of %zu bytes from rank %d; expected %zu", n, rank,
                               sizeof t);
    memcpy(&t, msg, sizeof t);
    J->prompt_tokens += t.prompt_tokens;
    J->prompt_computed += t.prompt_computed;
    return PULSE_OK;
}

/* a request finished (on any rank): extract, then queue a retry or send the user to rank 0's store */
static pulse_status on_done(void *ud, int ri) {
    job *J = ud;
    const pulse_phase1_params *p = J->p;
    job_user *ju = &J->u[J->items[ri]];
    const pulse_lm_request *rq = &J->rq[ri];
    ju->attempts++;
    ju->gen_tokens += rq->n_out;
    ju->seconds += pulse_now() - J->t_chunk;
    char *out = NULL;
    pulse_status st = pulse_detokenize(J->tok, rq->out, rq->n_out, 0, &out, NULL);
    if (st) return st;
    const char *primer = p->prime ? pulse_phase1_primer() : "";
    size_t len = strlen(primer) + strlen(out) + 1;
    free(ju->last_raw);
    ju->last_raw = malloc(len);
    if (!ju->last_raw) {
        free(out);
        return pulse_set_error(PULSE_ERR_NOMEM, "phase1: out of memory");
    }
    snprintf(ju->last_raw, len, "%s%s", primer, out);
    free(out);
    char *text = NULL;
    pulse_extract_status es = pulse_rationale_extract(ju->last_raw, ju->prompt_text, &text);
    if (es != PULSE_EXTRACT_OK && ju->attempts <= p->retries) {
        J->retry[J->n_retry++] = J->items[ri];
        return PULSE_OK;
    }
    wire_user w;
    memset(&w, 0, sizeof w);
    w.idx = J->items[ri];
    w.ok = es == PULSE_EXTRACT_OK;
    w.attempts = ju->attempts;
    w.gen_tokens = ju->gen_tokens;
    w.n_text = w.ok && text ? (int32_t)strlen(text) : -1;
    w.n_raw = (int32_t)strlen(ju->last_raw);
    w.seconds = ju->seconds;
    size_t need = sizeof w + (size_t)(w.n_text > 0 ? w.n_text : 0) + (size_t)w.n_raw;
    if (need > J->msg_cap) {
        char *nb = realloc(J->msg, need);
        if (!nb) {
            free(text);
            return pulse_set_error(PULSE_ERR_NOMEM, "phase1: out of memory");
        }
        J->msg = nb;
        J->msg_cap = need;
    }
    memcpy(J->msg, &w, sizeof w);
    if (w.n_text > 0) memcpy(J->msg + sizeof w, text, (size_t)w.n_text);
    memcpy(J->msg + sizeof w + (size_t)(w.n_text > 0 ? w.n_text : 0), ju->last_raw, (size_t)w.n_raw);
    free(text);
    return pulse_dist_queue_result(J->q, J->msg, need);
}

static int piece_cb(void *ud, int token, char *buf, int cap) {
    return pulse_token_to_piece((const pulse_tokenizer *)ud, token, 0, buf, cap);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the settings that change what a row holds, as JSON (their hash is part of the row key) */
static char *settings_json(const pulse_phase1_params *p, int chat, const char *sasrec_hash) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char ih[17];
    pulse_hash_text(pulse_phase1_instruction(), ih);
    cJSON_AddStringToObject(o, "prompt", "phase1-v1");
    cJSON_AddStringToObject(o, "instruction_hash", ih);
    cJSON_AddBoolToObject(o, "chat", chat);
    cJSON_AddBoolToObject(o, "prime", p->prime);
    cJSON_AddNumberToObject(o, "temp", p->temp);
    cJSON_AddNumberToObject(o, "top_k", p->top_k);
    cJSON_AddNumberToObject(o, "top_p", p->top_p);
    cJSON_AddNumberToObject(o, "max_new_tokens", p->max_new_tokens);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    cJSON_AddNumberToObject(o, "max_history", p->record.max_history);
    cJSON_AddNumberToObject(o, "history_tokens", p->record.history_tokens);
    cJSON_AddNumberToObject(o, "title_bytes", p->record.title_bytes);
    cJSON_AddNumberToObject(o, "n_similar", sasrec_hash ? p->record.n_similar : 0);
    cJSON_AddNumberToObject(o, "similar_per_user", p->record.similar_per_user);
    cJSON_AddNumberToObject(o, "similar_tokens", p->record.similar_tokens);
    if (sasrec_hash)
        cJSON_AddStringToObject(o, "sasrec_hash", sasrec_hash);
    else
        cJSON_AddNullToObject(o, "sasrec_hash");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void free_users(job_user *u, int n) {
    for (int i = 0; u && i < n; i++) {
        free(u[i].ids);
        free(u[i].prompt_text);
        free(u[i].behaviour);
        free(u[i].history_json);
        free(u[i].similar_json);
        free(u[i].chosen);
        free(u[i].last_raw);
    }
    free(u);
}

/* rank 0: the job's users minus those stored, into *pending (malloc'd), counts into rep */
static pulse_status pending_users(const pulse_dataset *ds, pulse_store *store, const pulse_phase1_params *p,
                                  const char *mh, const char *sh, int **pending, int *n_pending,
                                  pulse_phase1_report *rep) {
    const int nu = pulse_dataset_n_users(ds);
    const int want = p->users > 0 && p->users < nu ? p->users : nu;
    int *sel = pulse_malloc(sizeof(int) * (size_t)(want > 0 ? want : 1));
    uint8_t *done = pulse_calloc((size_t)(nu > 0 ? nu : 1), 1);
    int *pd = NULL, n_sel = 0, n = 0;
    pulse_status st = PULSE_OK;
    if (!sel || !done) st = PULSE_ERR_NOMEM;
    if (!st) st = pulse_record_select_users(ds, want, p->seed, sel, &n_sel);
    if (!st) st = pulse_store_done(store, pulse_dataset_name(ds), "phase1", mh, sh, nu, done);
    if (!st && !(pd = pulse_malloc(sizeof(int) * (size_t)(n_sel > 0 ? n_sel : 1)))) st = PULSE_ERR_NOMEM;
    if (!st) {
        for (int i = 0; i < n_sel; i++)
            if (!done[sel[i]]) pd[n++] = sel[i];
        rep->selected = n_sel;
        rep->skipped = n_sel - n;
    }
    free(sel);
    free(done);
    if (st) {
        free(pd);
        pd = NULL;
        n = 0;
    }
    *pending = pd;
    *n_pending = n;
    return st;
}

pulse_status rat_share_users(int **pending, int *n_pending) {
    int n = *n_pending;
    pulse_status st = pulse_dist_bcast(&n, sizeof n);
    if (st) return st;
    if (pulse_dist_rank() != 0) {
        free(*pending);
        *pending = pulse_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (!*pending) return PULSE_ERR_NOMEM;
        *n_pending = n;
    }
    return pulse_dist_bcast(*pending, sizeof(int) * (size_t)n);
}

pulse_status pulse_rationale_phase1(const char *data, const char *model, const char *sasrec_path,
                                    const char *db, const pulse_phase1_params *pp, pulse_phase1_report *out) {
    pulse_phase1_params p = pp ? *pp : pulse_phase1_default_params();
    pulse_phase1_report rep;
    memset(&rep, 0, sizeof rep);
    if (out) *out = rep;
    if (p.users < 0 || p.retries < 0 || p.max_new_tokens < 1 || p.n_parallel < 1 || p.chunk < 0 ||
        !(p.temp >= 0) || p.top_k < 0 || !(p.top_p > 0))
        return pulse_set_error(PULSE_ERR_ARG,
                               "phase1: expected users >= 0, retries >= 0, max_new_tokens >= 1, "
                               "n_parallel >= 1, chunk >= 0, temp >= 0, top_k >= 0, top_p > 0");
    const double t0 = pulse_now();
    const int rank = pulse_dist_rank(), size = pulse_dist_size();
    if (rank != 0) p.progress = 0; /* rank 0 reports for every rank */
    pulse_dataset *ds = NULL;
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_sasrec *sr = NULL;
    pulse_store *store = NULL;
    pulse_recorder *rec = NULL;
    pulse_lm_ctx *c = NULL;
    job_user *U = NULL;
    int *pending = NULL, *items = NULL, *obuf = NULL, *retry = NULL, *next_retry = NULL;
    uint64_t *seeds = NULL;
    pulse_lm_request *rq = NULL;
    char *settings = NULL;
    double *words = NULL;
    int n_pending = 0, n_built = 0, max_prompt = 0;
    job J;
    memset(&J, 0, sizeof J);
    J.rank = rank;
    pulse_status st;
    char sasrec_hash[17];
    int chat = 0;
    /* every rank loads the inputs; rank 0 alone opens the store and finds the pending users */
    if ((st = pulse_dataset_load(data, NULL, &ds))) goto loaded;
    pulse_lm_params lp = pulse_lm_default_params();
    lp.n_threads = p.n_threads;
    if ((st = pulse_lm_load(model, &lp, &m))) goto loaded;
    if ((st = pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok))) goto loaded;
    if (sasrec_path) {
        if ((st = pulse_sasrec_load(sasrec_path, NULL, &sr))) goto loaded;
        if ((st = pulse_hash_file(sasrec_path, sasrec_hash))) goto loaded;
    }
    chat = p.chat < 0 ? pulse_tokenizer_chat_template(tok) != NULL : p.chat;
    rep.chat = chat;
    if ((st = pulse_hash_file(model, J.mh))) goto loaded;
    settings = settings_json(&p, chat, sr ? sasrec_hash : NULL);
    if (!settings) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "phase1: out of memory");
        goto loaded;
    }
    pulse_hash_text(settings, J.sh);
    memcpy(rep.model_hash, J.mh, 17);
    memcpy(rep.settings_hash, J.sh, 17);
    if (rank == 0) {
        if ((st = pulse_store_open(db, 0, &store))) goto loaded;
        st = pending_users(ds, store, &p, J.mh, J.sh, &pending, &n_pending, &rep);
    }
loaded:
    if ((st = pulse_dist_agree(st))) goto out;
    if ((st = rat_share_users(&pending, &n_pending))) goto out;
    if (n_pending == 0) goto out;
    /* records and prompt tokens of every pending user (every rank: any of them may be handed out to it) */
    pulse_record_params rp = p.record;
    if (!sr) rp.n_similar = 0;
    if ((st = pulse_recorder_new(ds, sr, tok, &rp, &rec))) goto built;
    U = pulse_calloc((size_t)n_pending, sizeof *U);
    if (!U) {
        st = PULSE_ERR_NOMEM;
        goto built;
    }
    n_built = n_pending;
    const char *ins = pulse_phase1_instruction();
    for (int i = 0; i < n_pending && !st; i++) {
        pulse_record r;
        if ((st = pulse_recorder_build(rec, pending[i], &r))) break;
        char *ut = pulse_phase1_user_text(&r);
        U[i].user = pending[i];
        if (ut) {
            size_t n = strlen(ins) + strlen(ut) + 2;
            U[i].prompt_text = malloc(n);
            if (U[i].prompt_text) snprintf(U[i].prompt_text, n, "%s\n%s", ins, ut);
            st = pulse_prompt_tokenize(tok, chat, ins, ut, p.prime ? pulse_phase1_primer() : NULL, &U[i].ids,
                                       &U[i].n_ids);
        } else
            st = PULSE_ERR_NOMEM;
        U[i].behaviour = r.behaviour;
        r.behaviour = NULL;
        U[i].chosen = r.chosen_text;
        r.chosen_text = NULL;
        U[i].history_json = pulse_record_history_json(&r);
        U[i].similar_json = sr ? pulse_record_similar_json(&r) : NULL;
        if (!st && (!U[i].prompt_text || !U[i].behaviour || !U[i].history_json || (sr && !U[i].similar_json)))
            st = pulse_set_error(PULSE_ERR_NOMEM, "phase1: out of memory");
        free(ut);
        pulse_record_free(&r);
        if (!st && U[i].n_ids > max_prompt) max_prompt = U[i].n_ids;
    }
    if (st) goto built;
    const int T = pulse_lm_get_hparams(m)->n_ctx_train;
    if (max_prompt + p.max_new_tokens > T) {
        st = pulse_set_error(
            PULSE_ERR_RANGE,
            "phase1: a prompt of %d tokens + %d new tokens exceeds %s's trained context of %d "
            "tokens; lower --history-tokens / --similar-tokens / --max-new",
            max_prompt, p.max_new_tokens, pulse_path_base(model), T);
        goto built;
    }
    /* the context: n_parallel sequences + the shared prefix's root */
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = max_prompt + p.max_new_tokens + 1;
    cp.n_seq_max = p.n_parallel + 1;
    if ((st = pulse_lm_ctx_new(m, &cp, &c))) goto built;
built:
    if ((st = pulse_dist_agree(st))) goto out;
    /* one rank: ranges of `chunk` users (0 = all), as before scale-out. Several: ranges of at most --chunk
     * (default --parallel) users, and at the end the remaining users split evenly over the ranks (guided,
     * factor 1: ceil(left / ranks)), so that the ranks finish together with batches as full as they can be
     * (decoding is cheaper per token in bigger batches: docs/scale-out.md) */
    int chunk = p.chunk > 0 && p.chunk < n_pending ? p.chunk : n_pending;
    if (size > 1) {
        chunk = p.chunk > 0 ? p.chunk : p.n_parallel;
        if (chunk > n_pending) chunk = n_pending;
    }
    items = pulse_malloc(sizeof(int) * (size_t)chunk);
    retry = pulse_malloc(sizeof(int) * (size_t)chunk);
    next_retry = pulse_malloc(sizeof(int) * (size_t)chunk);
    seeds = pulse_malloc(sizeof(uint64_t) * (size_t)chunk);
    rq = pulse_calloc((size_t)chunk, sizeof *rq);
    obuf = pulse_malloc(sizeof(int) * (size_t)chunk * (size_t)p.max_new_tokens);
    words = pulse_malloc(sizeof(double) * (size_t)n_pending);
    if (!items || !retry || !next_retry || !seeds || !rq || !obuf || !words) st = PULSE_ERR_NOMEM;
    if ((st = pulse_dist_agree(st))) goto out;
    J.store = store;
    J.ds = ds;
    J.tok = tok;
    J.p = &p;
    J.u = U;
    J.n_pending = n_pending;
    J.model_name = pulse_path_base(model);
    J.settings = settings;
    J.items = items;
    J.rq = rq;
    J.words = words;
    J.t0 = pulse_now();
    if (p.progress) pulse_progress_begin(&J.prog, "phase1", "users", (size_t)n_pending);
    pulse_dist_queue_params qp = {n_pending, chunk, size > 1 ? 1 : 0, on_result, on_tail, &J};
    if ((st = pulse_dist_queue_new(&qp, &J.q))) goto out; /* the caller ends the job (pulse_dist_abort) */
    pulse_lm_gen_params gp = pulse_lm_gen_default_params();
    gp.max_new_tokens = p.max_new_tokens;
    gp.sampler.temp = p.temp;
    gp.sampler.top_k = p.top_k;
    gp.sampler.top_p = p.top_p;
    gp.share_prefix = p.share_prefix;
    gp.seeds = seeds;
    gp.on_done = on_done;
    gp.on_done_ud = &J;
    static const char *const stops[] = {"\"}", "\"\n}"};
    gp.stop = stops;
    gp.n_stop = 2;
    gp.token_piece = piece_cb;
    gp.token_piece_ud = tok;
    int n_carry = 0, drained = 0;
    int64_t my_prompt = 0, my_computed = 0;
    int *carry = next_retry; /* retries queued by the last chunk */
    while (!st) {
        int n = 0;
        for (int i = 0; i < n_carry && n < chunk; i++) items[n++] = carry[i];
        n_carry = 0;
        if (!drained && n < chunk) {
            int first = 0, count = 0;
            if ((st = pulse_dist_queue_next(J.q, chunk - n, &first, &count))) break;
            if (count == 0) drained = 1;
            for (int k = 0; k < count; k++) items[n++] = first + k;
        }
        if (n == 0) break;
        for (int i = 0; i < n; i++) {
            job_user *ju = &U[items[i]];
            memset(&rq[i], 0, sizeof rq[i]);
            rq[i].prompt = ju->ids;
            rq[i].n_prompt = ju->n_ids;
            rq[i].out = obuf + (size_t)i * (size_t)p.max_new_tokens;
            seeds[i] = mix64(p.seed ^ mix64((uint64_t)ju->user * 1000003ULL + (uint64_t)ju->attempts));
        }
        J.n_retry = 0;
        J.retry = retry;
        J.t_chunk = pulse_now();
        pulse_lm_gen_stats gs;
        memset(&gs, 0, sizeof gs);
        gp.stats = &gs;
        st = pulse_lm_generate(c, rq, n, &gp);
        my_prompt += gs.prompt_tokens;
        my_computed += gs.prompt_computed;
        if (st && J.stop) {
            st = PULSE_OK;
            break;
        }
        /* the retries go first in the next chunk */
        memcpy(carry, retry, sizeof(int) * (size_t)J.n_retry);
        n_carry = J.n_retry;
    }
    {
        wire_tail t = {my_prompt, my_computed};
        st = pulse_dist_queue_finish(J.q, st, &t, sizeof t);
        J.q = NULL;
        if (st && J.stop) st = PULSE_OK; /* stop_after: the stop is not a failure */
        rep.prompt_tokens = J.prompt_tokens;
        rep.prompt_computed = J.prompt_computed;
    }
    if (p.progress) {
        char extra[128];
        double el = pulse_now() - J.t0;
        snprintf(extra, sizeof extra, "%.1f gen tok/s, ok %d, failed %d", el > 0 ? J.gen_tokens / el : 0.0,
                 J.ok, J.failed);
        pulse_progress_end(&J.prog, (size_t)J.stored, extra);
    }
out:
    rep.done = J.stored;
    rep.ok = J.ok;
    rep.failed = J.failed;
    rep.retried = J.retried;
    rep.attempts = J.attempts;
    rep.gen_tokens = J.gen_tokens;
    rep.seconds = pulse_now() - t0;
    {
        double gen_s = J.t0 > 0 ? pulse_now() - J.t0 : 0;
        rep.gen_tok_s = gen_s > 0 ? (double)J.gen_tokens / gen_s : 0;
        rep.users_s = gen_s > 0 ? J.stored / gen_s : 0;
    }
    if (J.n_words > 0) {
        qsort(words, (size_t)J.n_words, sizeof(double), cmp_double);
        rep.median_words =
            J.n_words % 2 ? words[J.n_words / 2] : 0.5 * (words[J.n_words / 2 - 1] + words[J.n_words / 2]);
    }
    if (out) *out = rep;
    free(J.msg);
    free(words);
    free(obuf);
    free(rq);
    free(seeds);
    free(next_retry);
    free(retry);
    free(items);
    free_users(U, n_built);
    free(pending);
    free(settings);
    pulse_lm_ctx_free(c);
    pulse_recorder_free(rec);
    pulse_store_close(store);
    pulse_sasrec_free(sr);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    pulse_dataset_free(ds);
    return st;
}
