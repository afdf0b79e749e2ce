/* qa/job.c — owns the QA job (pulse_qa_run): supporting facts for the job's questions (k chosen on the
 * held-in split unless given), prompts for the questions not yet in the store, one continuously batched
 * generation (direct / cot) or the Tree-of-Thought search (tot), each answer extracted and committed to the
 * store (phase "qa-<mode>", user = the question's _id) the moment it finishes, progress with rate and ETA,
 * then the predictions file and the metrics. A killed run loses only the questions in flight; a rerun with
 * the same settings skips every stored question. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/lm.h"
#include "pulse/strbuf.h"
#include "qa/internal.h"

pulse_qa_params pulse_qa_default_params(void) {
    pulse_qa_params p;
    memset(&p, 0, sizeof p);
    p.mode = PULSE_QA_MODE_DIRECT;
    p.sp = pulse_qa_sp_default_params();
    p.pooling = PULSE_POOL_AUTO;
    p.k_max = 8;
    p.held_in = 30;
    p.lora_scale = 1.0f;
    p.seed = 42;
    p.parallel = 8;
    p.chat = -1;
    p.progress = 1;
    p.tot = pulse_tot_default_params();
    p.tot.scorer = PULSE_TOT_SCORER_LIKELIHOOD;
    return p;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* one question of the job */
typedef struct {
    int q;                /* index in the file */
    pulse_qa_fact *facts; /* the selected supporting facts (k room) */
    int n_facts;          /* -1: none (closed-book) */
    char *answer;         /* extracted (or read back from the store) */
    int *ids;             /* prompt tokens */
    int n_ids;
    char *prefix;   /* what the answer was primed with (tot: the kept chain and "The answer is:") */
    double score;   /* tot: the kept chain's score (NAN otherwise) */
    int tot_tokens; /* tokens of earlier stages (the ToT search; a cot chain without an answer) */
    char *user;     /* the user turn (context + question) */
} qa_item;

typedef struct {
    const pulse_qa_set *set;
    const pulse_qa_params *p;
    const pulse_tokenizer *tok;
    pulse_store *store;
    const char *dataset, *phase, *settings, *model_name;
    char mh[17], sh[17];
    qa_item *it;
    const int *req_item; /* item of each request */
    pulse_lm_request *rq;
    pulse_progress prog;
    int done, total, searched;
    int stage2;  /* the generation running is cot's second stage */
    int *second; /* items whose cot chain ended without an answer */
    int n_second;
    double t0;
    int64_t gen_tokens, prompt_tokens;
} qa_job;

static char *facts_json(const qa_item *it) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "sp");
    for (int i = 0; a && i < it->n_facts; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(it->facts[i].title));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(it->facts[i].sent));
        cJSON_AddItemToArray(a, pair);
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* commit one answered question */
static pulse_status commit(qa_job *J, qa_item *it, const char *raw, int prompt_tokens, int gen_tokens,
                           double score) {
    const pulse_qa_question *q = pulse_qa_get(J->set, it->q);
    char *ans = NULL;
    pulse_status st = pulse_qa_extract_answer(raw, pulse_qa_is_yes_no(q->question), &ans);
    if (st) return st;
    free(it->answer);
    it->answer = ans;
    J->done++;
    J->gen_tokens += gen_tokens;
    J->prompt_tokens += prompt_tokens;
    if (J->store) {
        char *extra = facts_json(it);
        pulse_store_row r;
        memset(&r, 0, sizeof r);
        r.dataset = J->dataset;
        r.user = q->id;
        r.user_index = it->q;
        r.phase = J->phase;
        r.model_hash = J->mh;
        r.settings_hash = J->sh;
        r.ok = ans[0] != 0; /* an empty answer is stored as a failure (raw kept); a rerun does not retry it */
        r.text = r.ok ? ans : NULL;
        r.score = score;
        r.raw = raw;
        r.attempts = 1;
        r.prompt_tokens = prompt_tokens;
        r.gen_tokens = gen_tokens;
        r.seconds = (pulse_now() - J->t0) / (J->done > 0 ? J->done : 1);
        r.model = J->model_name;
        r.behaviour = q->question;
        r.chosen = q->answer;
        r.settings = J->settings;
        r.extra = extra;
        st = pulse_store_put(J->store, &r, 1);
        free(extra);
    }
    if (J->p->progress) {
        char extra[96];
        snprintf(extra, sizeof extra, "%.1f gen tok/s",
                 J->gen_tokens / (pulse_now() - J->t0 > 1e-9 ? pulse_now() - J->t0 : 1e-9));
        pulse_progress_update(&J->prog, (size_t)J->done, extra);
    }
    return st;
}

static pulse_status on_done(void *ud, int r) {
    qa_job *J = ud;
    const pulse_lm_request *rq = &J->rq[r];
    qa_item *it = &J->it[J->req_item[r]];
    char *out = NULL;
    pulse_status st = pulse_detokenize(J->tok, rq->out, rq->n_out, 0, &out, NULL);
    if (st) return st;
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, it->prefix);
    pulse_strbuf_cat(&b, out);
    free(out);
    if (b.oom) {
        pulse_strbuf_free(&b);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    if (J->p->mode == PULSE_QA_MODE_COT && !J->stage2 && !qa_has_answer_cue(b.s)) {
        /* a chain without its answer: asked for it in a second stage */
        pulse_strbuf_cat(&b, "\n");
        pulse_strbuf_cat(&b, qa_primer(PULSE_QA_MODE_TOT));
        if (b.oom) {
            pulse_strbuf_free(&b);
            return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        }
        free(it->prefix);
        it->prefix = b.s;
        it->tot_tokens += rq->n_prompt + rq->n_out;
        J->gen_tokens += rq->n_out;
        J->second[J->n_second++] = J->req_item[r];
        return PULSE_OK;
    }
    st = commit(J, it, b.s, rq->n_prompt + it->tot_tokens, rq->n_out, it->score);
    pulse_strbuf_free(&b);
    return st;
}

/* ToT: each question's kept chain primes its answer */
static pulse_status tot_done(void *ud, int i, const pulse_tot_result *r) {
    qa_job *J = ud;
    qa_item *it = &J->it[J->req_item[i]];
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, qa_primer(PULSE_QA_MODE_COT));
    pulse_strbuf_cat(&b, " ");
    if (r->ok && r->chain) pulse_strbuf_cat(&b, r->chain);
    pulse_strbuf_cat(&b, "\n");
    pulse_strbuf_cat(&b, qa_primer(PULSE_QA_MODE_TOT));
    if (b.oom) {
        pulse_strbuf_free(&b);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    free(it->prefix);
    it->prefix = b.s;
    it->score = r->ok ? r->score : NAN;
    it->tot_tokens = r->prompt_tokens;
    J->gen_tokens += r->gen_tokens;
    J->searched++;
    if (J->p->progress) pulse_progress_update(&J->prog, (size_t)J->searched, NULL);
    return PULSE_OK;
}

typedef struct {
    qa_job *J;
    int n;
} readback;

static int read_cb(void *ud, const pulse_store_row *row) {
    readback *R = ud;
    qa_job *J = R->J;
    if (strcmp(row->dataset, J->dataset) || strcmp(row->model_hash, J->mh) ||
        strcmp(row->settings_hash, J->sh))
        return 0; /* a failed row (an empty answer) reads back as "" */
    for (int i = 0; i < R->n; i++)
        if (J->it[i].q == row->user_index && !J->it[i].answer)
            J->it[i].answer = strdup(row->text ? row->text : "");
    return 0;
}

static char *settings_json(const pulse_qa_params *p, int chat, int k, const char *lora_hash,
                           const char *space_hash, const char *tot_space_hash) {
    char ih[17];
    pulse_strbuf ins = {0};
    pulse_strbuf_cat(&ins, qa_system(p->mode, 1));
    pulse_strbuf_cat(&ins, qa_system(p->mode, 0));
    pulse_strbuf_cat(&ins, qa_primer(p->mode));
    pulse_hash_text(pulse_strbuf_str(&ins), ih);
    pulse_strbuf_free(&ins);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", pulse_qa_mode_name(p->mode));
    cJSON_AddStringToObject(o, "instruction_hash", ih);
    cJSON_AddNumberToObject(o, "chat", chat);
    cJSON_AddStringToObject(o, "context", p->context_all ? "all" : "sp");
    cJSON_AddStringToObject(o, "sp", p->sp.method == PULSE_QA_SP_BM25 ? "bm25" : "space");
    cJSON_AddNumberToObject(o, "sp_title", p->sp.with_title);
    cJSON_AddNumberToObject(o, "sp_pooling", p->pooling);
    if (space_hash) cJSON_AddStringToObject(o, "space_hash", space_hash);
    cJSON_AddNumberToObject(o, "k", k);
    if (lora_hash) {
        cJSON_AddStringToObject(o, "lora_hash", lora_hash);
        cJSON_AddNumberToObject(o, "lora_scale", p->lora_scale);
    }
    cJSON_AddNumberToObject(o, "max_new_tokens", p->max_new_tokens);
    cJSON_AddNumberToObject(o, "temp", p->temp);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    if (p->mode == PULSE_QA_MODE_TOT) {
        const pulse_tot_params *t = &p->tot;
        cJSON_AddStringToObject(o, "tot_scorer", pulse_tot_scorer_name(t->scorer));
        if (tot_space_hash) cJSON_AddStringToObject(o, "tot_space_hash", tot_space_hash);
        cJSON_AddNumberToObject(o, "tot_depth", t->depth);
        cJSON_AddNumberToObject(o, "tot_branching", t->branching);
        cJSON_AddNumberToObject(o, "tot_beam", t->beam);
        cJSON_AddNumberToObject(o, "tot_max_thought_tokens", t->max_thought_tokens);
        cJSON_AddNumberToObject(o, "tot_temp", t->temp);
        cJSON_AddNumberToObject(o, "tot_top_k", t->top_k);
        cJSON_AddNumberToObject(o, "tot_top_p", t->top_p);
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* the hash of a space folder: its space.json when it has one, else its config.json */
static pulse_status dir_hash(const char *dir, char hex[17]) {
    char path[4096];
    pulse_path_join(path, sizeof path, dir, "space.json");
    if (!pulse_file_exists(path)) pulse_path_join(path, sizeof path, dir, "config.json");
    return pulse_hash_file(path, hex);
}

/* the user turn of a question's prompt */
static char *user_of(const pulse_qa_set *s, const qa_item *it, int context_all) {
    const pulse_qa_question *q = pulse_qa_get(s, it->q);
    if (context_all || it->n_facts < 0) return qa_user_text(q, NULL, 0);
    return qa_user_text(q, it->facts, it->n_facts);
}

/* One batched generation for items idx[0..n): each item's prompt is its user turn, primed with its prefix
 * (the mode's primer; a cot chain's second stage or a ToT chain: the chain and "The answer is:"); on_done
 * commits each answer as it finishes. */
static pulse_status generate(qa_job *J, const pulse_lm *m, const pulse_lora *lora, int chat, int *idx, int n,
                             int max_new) {
    const pulse_qa_params *p = J->p;
    const int T = pulse_lm_get_hparams(m)->n_ctx_train;
    const int stage2 = idx == J->second;
    int max_prompt = 0;
    pulse_status st = PULSE_OK;
    for (int i = 0; i < n && !st; i++) {
        qa_item *it = &J->it[idx[i]];
        const pulse_qa_mode sys = p->mode == PULSE_QA_MODE_TOT ? PULSE_QA_MODE_COT : p->mode;
        free(it->ids);
        it->ids = NULL;
        st = pulse_lm_chat_prompt(J->tok, chat, qa_system(sys, pulse_qa_get(J->set, it->q)->n_para > 0),
                                  it->user, it->prefix, &it->ids, &it->n_ids);
        if (!st && it->n_ids + max_new > T)
            st =
                pulse_set_error(PULSE_ERR_RANGE,
                                "qa: question %s: a prompt of %d tokens + %d new tokens exceeds %s's trained "
                                "context of %d tokens; give the selected sentences as context (not all "
                                "paragraphs), a smaller k or fewer new tokens",
                                pulse_qa_get(J->set, it->q)->id, it->n_ids, max_new, J->model_name, T);
        if (!st && it->n_ids > max_prompt) max_prompt = it->n_ids;
    }
    if (st) return st;
    pulse_lm_ctx *c = NULL;
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = max_prompt + max_new + 1;
    cp.n_seq_max = p->parallel + 1;
    cp.n_threads = p->n_threads;
    pulse_lm_request *rq = calloc((size_t)n, sizeof *rq);
    int *obuf = malloc(sizeof(int) * (size_t)n * (size_t)max_new + 1);
    uint64_t *seeds = malloc(sizeof(uint64_t) * (size_t)n);
    if (!rq || !obuf || !seeds) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    if (!st) st = pulse_lm_ctx_new(m, &cp, &c);
    if (!st && lora) st = pulse_lm_ctx_set_lora(c, lora, p->lora_scale);
    for (int i = 0; i < n && !st; i++) {
        qa_item *it = &J->it[idx[i]];
        rq[i].prompt = it->ids;
        rq[i].n_prompt = it->n_ids;
        rq[i].out = obuf + (size_t)i * (size_t)max_new;
        pulse_rng g; /* a question's seed depends on (seed, its index, the stage) only, not on the batch */
        pulse_rng_seed(&g, p->seed ^ ((uint64_t)it->q * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)stage2);
        seeds[i] = pulse_rng_u64(&g);
    }
    if (!st) {
        J->rq = rq;
        J->req_item = idx;
        J->stage2 = stage2;
        pulse_lm_gen_params gp = pulse_lm_gen_default_params();
        gp.max_new_tokens = max_new;
        gp.sampler.temp = p->temp;
        gp.sampler.top_k = 0;
        gp.sampler.top_p = 1.0f;
        gp.seeds = seeds;
        gp.share_prefix = 1;
        gp.on_done = on_done;
        gp.on_done_ud = J;
        st = pulse_lm_generate(c, rq, n, &gp);
    }
    pulse_lm_ctx_free(c);
    free(rq);
    free(obuf);
    free(seeds);
    return st;
}

/* The answers of the job's questions not yet in the store: model, tokenizer, context, the store's rows read
 * back, one batched generation (or the ToT search), each answer committed as it finishes. */
static pulse_status answer_lm(qa_job *J, const char *model, pulse_qa_report *rep, int n_items, const char *lh,
                              const char *sh, const char *th) {
    const pulse_qa_params *p = J->p;
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lora *lora = NULL;
    pulse_store *store = NULL;
    pulse_thought_space *tspace = NULL;
    char *settings = NULL;
    int *pending = NULL;
    pulse_tot_input *tin = NULL;
    int n_pending = 0;
    pulse_lm_params lp = pulse_lm_default_params();
    lp.n_threads = p->n_threads;
    pulse_status st = pulse_lm_load(model, &lp, &m);
    if (!st) st = pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok);
    if (st) goto out;
    J->tok = tok;
    const int chat = p->chat >= 0 ? p->chat : pulse_chat_detect(tok) != PULSE_CHAT_RAW;
    rep->chat = chat;
    pulse_qa_params pr = *p; /* the resolved sizes, for the settings */
    if (pr.max_new_tokens <= 0) pr.max_new_tokens = p->mode == PULSE_QA_MODE_COT ? 256 : 32;
    const int max_new = pr.max_new_tokens;
    if (!(settings = settings_json(&pr, chat, rep->k, lh, sh, th))) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto out;
    }
    pulse_hash_text(settings, J->sh);
    J->settings = settings;
    if (p->store) {
        if ((st = pulse_store_open(p->store, 0, &store))) goto out;
        J->store = store;
        readback R = {J, n_items};
        if ((st = pulse_store_each(store, J->phase, NULL, read_cb, &R))) goto out;
    }
    pending = calloc((size_t)n_items + 1, sizeof *pending);
    if (!pending) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n_items; i++)
        if (!J->it[i].answer) pending[n_pending++] = i;
    rep->skipped = n_items - n_pending;
    if (n_pending == 0) goto out;
    J->second = calloc((size_t)n_pending + 1, sizeof *J->second);
    if (!J->second) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n_pending; i++)
        if (!(J->it[pending[i]].user = user_of(J->set, &J->it[pending[i]], p->context_all))) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto out;
        }
    if (p->lora && (st = pulse_lora_load(m, p->lora, &lora))) goto out;
    J->req_item = pending;
    J->total = n_pending;
    J->t0 = pulse_now();
    for (int i = 0; i < n_pending; i++) {
        qa_item *it = &J->it[pending[i]];
        it->score = NAN;
        if (!(it->prefix = strdup(qa_primer(p->mode)))) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (p->mode == PULSE_QA_MODE_TOT) { /* the search first: its kept chain primes each answer */
        tin = calloc((size_t)n_pending, sizeof *tin);
        if (!tin) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < n_pending; i++) {
            const pulse_qa_question *q = pulse_qa_get(J->set, J->it[pending[i]].q);
            tin[i].user = q->id;
            tin[i].prompt = J->it[pending[i]].user;
            tin[i].behaviour = q->question;
            tin[i].chosen = qa_tot_target();
        }
        pulse_tot_params tp = p->tot;
        const pulse_tot_prompts pr = qa_tot_prompts();
        tp.chat = chat;
        tp.prompts = &pr;
        tp.lora = lora;
        tp.lora_scale = p->lora_scale;
        if (tp.scorer == PULSE_TOT_SCORER_THOUGHT &&
            (st = pulse_thought_space_load(p->tot_space, NULL, &tspace)))
            goto out;
        if (p->progress) pulse_progress_begin(&J->prog, "qa-tot search", "q", (size_t)n_pending);
        if ((st = pulse_tot_run(m, tok, tspace, tin, n_pending, &tp, tot_done, J, NULL))) goto out;
        if (p->progress) pulse_progress_end(&J->prog, (size_t)J->searched, NULL);
    }
    if (p->progress) pulse_progress_begin(&J->prog, J->phase, "q", (size_t)n_pending);
    if ((st = generate(J, m, lora, chat, pending, n_pending, max_new))) goto out;
    if (J->n_second > 0) /* cot chains that ended without an answer: "The answer is:" after them */
        st = generate(J, m, lora, chat, J->second, J->n_second, 32);
    if (p->progress) {
        char extra[96];
        snprintf(extra, sizeof extra, "%.2f s/q", (pulse_now() - J->t0) / (J->done > 0 ? J->done : 1));
        pulse_progress_end(&J->prog, (size_t)J->done, extra);
    }
out:
    rep->answered = J->done;
    rep->gen_tokens = J->gen_tokens;
    rep->prompt_tokens = J->prompt_tokens;
    free(J->second);
    J->second = NULL;
    free(tin);
    free(pending);
    free(settings);
    J->settings = NULL;
    J->store = NULL;
    pulse_store_close(store);
    pulse_thought_space_free(tspace);
    pulse_lora_free(lora);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return st;
}

pulse_status pulse_qa_run(const char *data, const char *model, const char *pred_path,
                          const pulse_qa_params *pp, pulse_qa_report *out) {
    pulse_qa_params p = pp ? *pp : pulse_qa_default_params();
    pulse_qa_report rep;
    memset(&rep, 0, sizeof rep);
    if (out) *out = rep;
    if (p.mode != PULSE_QA_MODE_NONE && !model)
        return pulse_set_error(PULSE_ERR_ARG, "qa: mode %s needs a model (GGUF)", pulse_qa_mode_name(p.mode));
    if (p.k < 0 || p.k_max < 1 || p.held_in < 0 || p.first < 0 || p.questions < 0 || p.sample < 0 ||
        p.parallel < 1)
        return pulse_set_error(PULSE_ERR_ARG,
                               "qa: k >= 0, k_max >= 1, held_in >= 0, first >= 0, questions >= 0, "
                               "sample >= 0 and parallel >= 1 expected");
    const double t_start = pulse_now();
    pulse_qa_set *set = NULL;
    pulse_status st = pulse_qa_load(data, NULL, &set);
    if (st) return st;
    const int nq = pulse_qa_count(set);
    const int first = p.first < nq ? p.first : nq;
    const int end = p.questions > 0 && p.questions < nq - first ? first + p.questions : nq;
    const int n_range = end - first;
    const int n_items = p.sample > 0 && p.sample < n_range ? p.sample : n_range;
    const int has_ctx = pulse_qa_has_context(set);
    qa_item *it = calloc((size_t)n_range + 1, sizeof *it);
    int *order = calloc((size_t)n_range + 1, sizeof *order);
    pulse_qa_pred *preds = calloc((size_t)nq + 1, sizeof *preds);
    float **scores = NULL;
    int n_scored = 0;
    pulse_thought_space *space = NULL;
    qa_job J;
    memset(&J, 0, sizeof J);
    if (!it || !preds || !order) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_range; i++) order[i] = first + i;
    if (n_items < n_range) { /* a seeded sample of the range, in file order */
        pulse_rng g;
        pulse_rng_seed(&g, p.seed);
        pulse_rng_shuffle_int(&g, order, (size_t)n_range);
        qsort(order, (size_t)n_items, sizeof *order, cmp_int);
    }
    for (int i = 0; i < n_items; i++) {
        it[i].q = order[i];
        it[i].n_facts = -1;
    }
    rep.questions = n_items;
    /* supporting facts */
    if (has_ctx) {
        const double t0 = pulse_now();
        if (p.sp.method == PULSE_QA_SP_SPACE) {
            if (!p.space) {
                st = pulse_set_error(PULSE_ERR_ARG,
                                     "qa: supporting facts by cosine need a space or encoder folder");
                goto done;
            }
            pulse_thought_space_params tsp = pulse_thought_space_default_params();
            tsp.pooling = p.pooling;
            if ((st = pulse_thought_space_load(p.space, &tsp, &space))) goto done;
        }
        const int held = p.k == 0 ? (p.held_in < nq ? p.held_in : nq) : 0;
        n_scored = end > held ? end : held;
        uint8_t *need = calloc((size_t)n_scored + 1, 1); /* the held-in questions and the job's */
        if (!need) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < held; i++) need[i] = 1;
        for (int i = 0; i < n_items; i++) need[it[i].q] = 1;
        st = pulse_qa_sp_scores(set, n_scored, need, &p.sp, space, &scores);
        free(need);
        if (st) goto done;
        rep.k = p.k;
        if (p.k == 0) {
            rep.held_in = held;
            rep.k = held > 0 ? pulse_qa_sp_choose_k(set, scores, 0, held, p.k_max, &rep.k_f1) : 2;
        }
        for (int i = 0; i < n_items; i++) {
            it[i].facts = calloc((size_t)rep.k, sizeof *it[i].facts);
            if (!it[i].facts) {
                st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
                goto done;
            }
            it[i].n_facts = pulse_qa_sp_topk(pulse_qa_get(set, it[i].q), scores[it[i].q], rep.k, it[i].facts);
        }
        rep.sp_seconds = pulse_now() - t0;
    }
    /* answers */
    J.set = set;
    J.p = &p;
    J.it = it;
    if (p.mode != PULSE_QA_MODE_NONE) {
        char lh[17], sh[17], th[17];
        if (p.lora && (st = pulse_hash_file(p.lora, lh))) goto done;
        if (p.space && p.sp.method == PULSE_QA_SP_SPACE && (st = dir_hash(p.space, sh))) goto done;
        if (p.mode == PULSE_QA_MODE_TOT && p.tot.scorer == PULSE_TOT_SCORER_THOUGHT) {
            if (!p.tot_space) {
                st =
                    pulse_set_error(PULSE_ERR_ARG, "qa: tot with the thought scorer needs a space (--space)");
                goto done;
            }
            if ((st = dir_hash(p.tot_space, th))) goto done;
        }
        J.dataset = pulse_path_base(data);
        J.model_name = pulse_path_base(model);
        char phase[32];
        snprintf(phase, sizeof phase, "qa-%s", pulse_qa_mode_name(p.mode));
        J.phase = phase;
        if ((st = pulse_hash_file(model, J.mh))) goto done;
        const double t0 = pulse_now();
        st = answer_lm(&J, model, &rep, n_items, p.lora ? lh : NULL,
                       p.space && p.sp.method == PULSE_QA_SP_SPACE ? sh : NULL,
                       p.mode == PULSE_QA_MODE_TOT && p.tot.scorer == PULSE_TOT_SCORER_THOUGHT ? th : NULL);
        rep.lm_seconds = pulse_now() - t0;
        if (st) goto done;
    }
    /* predictions and metrics */
    for (int i = 0; i < nq; i++) preds[i].n_sp = -1;
    for (int i = 0; i < n_items; i++) {
        pulse_qa_pred *pr = &preds[it[i].q];
        pr->answer = p.mode == PULSE_QA_MODE_NONE ? NULL : it[i].answer ? it[i].answer : "";
        pr->n_sp = it[i].n_facts;
        pr->sp = it[i].facts;
    }
    if (pred_path && (st = pulse_qa_pred_write(pred_path, set, preds, nq))) goto done;
    rep.has_answers = pulse_qa_has_answers(set);
    for (int i = 0; i < n_items && rep.has_answers && !st; i++) {
        const pulse_qa_question *q = pulse_qa_get(set, it[i].q);
        st = pulse_qa_metrics_add(&rep.metrics, q, &preds[it[i].q]);
        if (!st && it[i].q >= rep.held_in) st = pulse_qa_metrics_add(&rep.metrics_out, q, &preds[it[i].q]);
    }
    pulse_qa_metrics_finish(&rep.metrics);
    pulse_qa_metrics_finish(&rep.metrics_out);
    rep.seconds = pulse_now() - t_start;
    memcpy(rep.model_hash, J.mh, 17);
    memcpy(rep.settings_hash, J.sh, 17);
    if (out) *out = rep;
done:
    for (int i = 0; it && i < n_items; i++) {
        free(it[i].facts);
        free(it[i].answer);
        free(it[i].ids);
        free(it[i].prefix);
        free(it[i].user);
    }
    free(it);
    free(order);
    free(preds);
    pulse_qa_scores_free(scores, n_scored);
    pulse_thought_space_free(space);
    pulse_qa_free(set);
    return st;
}
