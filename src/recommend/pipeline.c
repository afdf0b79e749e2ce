/* recommend/pipeline.c — owns `pulse pipeline`: the whole method on one dataset, stage by stage, through the
 * library (never the CLI): SASRec -> similar users -> Phase 1 -> Thought Space (pairs + training) -> ToT
 * (Thought-Space and likelihood scorers) -> SFT (training lines + one LoRA per rationale variant) ->
 * evaluation of popularity, SASRec, the zero-shot SLM and every fine-tuned SLM on one stored candidate set.
 * Each method is evaluated as soon as its inputs exist (pop and SASRec first, each adapter right after its
 * training), so a long run stopped half-way has its first rows.
 *
 * Resume rule: a stage's settings and its inputs' hashes give its hash; when out/stages/<stage>.json holds
 * that hash the stage is skipped and its recorded report used. Before a stage runs,
 * out/stages/<stage>.started gets the hash: the stage's own checkpoints (SASRec, Thought Space, LoRA) are
 * resumed only when it matches, so a changed setting never continues another setting's training. The
 * rationale store resumes by user. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pulse/rationale.h"
#include "pulse/recommend.h"
#include "pulse/sasrec.h"
#include "pulse/strbuf.h"
#include "pulse/thought.h"

pulse_pipeline_params pulse_pipeline_default_params(void) {
    pulse_pipeline_params p;
    memset(&p, 0, sizeof p);
    p.users = 1000;
    p.seed = 42;
    p.candidates = 5;
    p.decoders = PULSE_PIPE_RANK | PULSE_PIPE_GENERATE;
    p.progress = 1;
    p.sasrec_epochs = 200;
    p.phase1_max_new = 150;
    p.thought_epochs = 53;
    p.tot_depth = 3;
    p.tot_branching = 3;
    p.tot_beam = 2;
    p.tot_thought_tokens = 61;
    p.rows = PULSE_PIPE_ALL_ROWS;
    p.sft_epochs = 7;
    p.sft_batch = 8;
    p.sft_grad_accum = 8;
    p.sft_max_len = 512;
    p.sft_recompute = 1;
    p.eval_max_new = 59;
    return p;
}

void pulse_pipeline_report_free(pulse_pipeline_report *r) {
    if (!r) return;
    free(r->summary);
    r->summary = NULL;
}

/* ---- the run's context ---- */
typedef struct {
    const char *data, *model, *out;
    const pulse_pipeline_params *p;
    pulse_dataset *ds;
    pulse_pipeline_report *rep;
    cJSON *stages;  /* summary "stages" (owned by the summary) */
    cJSON *metrics; /* summary "metrics" */
    int resume;     /* set for the running stage: its checkpoints belong to the same hash */
    int step;
} pipe;

static void path_of(const pipe *c, char *buf, size_t n, const char *name) {
    pulse_path_join(buf, n, c->out, name);
}

static char *read_small(const char *path) {
    char *s = NULL;
    size_t n = 0;
    if (!pulse_file_exists(path) || pulse_read_file(path, &s, &n)) return NULL;
    return s;
}

static pulse_status write_json(const char *path, const cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, s);
    pulse_strbuf_cat(&b, "\n");
    cJSON_free(s);
    pulse_status st = b.oom ? pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory")
                            : pulse_write_file_atomic(path, pulse_strbuf_str(&b), b.n);
    pulse_strbuf_free(&b);
    return st;
}

typedef pulse_status (*stage_fn)(pipe *c, void *ud, cJSON *report);

/* Runs stage `name` unless its record holds the same hash (settings + the inputs' hashes); hash gets the
 * stage's hash, *report (may be NULL) its report (owned by the summary). */
static pulse_status stage(pipe *c, const char *name, cJSON *settings, const char *const *deps, int n_deps,
                          stage_fn fn, void *ud, char hash[17], const cJSON **report) {
    char *ss = cJSON_PrintUnformatted(settings);
    pulse_strbuf hb = {0};
    pulse_strbuf_cat(&hb, name);
    pulse_strbuf_cat(&hb, ss ? ss : "");
    for (int i = 0; i < n_deps; i++) pulse_strbuf_cat(&hb, deps[i]);
    cJSON_free(ss);
    if (hb.oom) {
        pulse_strbuf_free(&hb);
        cJSON_Delete(settings);
        return pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
    }
    pulse_hash_text(pulse_strbuf_str(&hb), hash);
    pulse_strbuf_free(&hb);
    char rec_path[4096], start_path[4096], rel[256];
    snprintf(rel, sizeof rel, "stages/%s.json", name);
    path_of(c, rec_path, sizeof rec_path, rel);
    snprintf(rel, sizeof rel, "stages/%s.started", name);
    path_of(c, start_path, sizeof start_path, rel);
    c->step++;
    /* skipped when the record holds this hash */
    char *old = read_small(rec_path);
    cJSON *rec = old ? cJSON_Parse(old) : NULL;
    free(old);
    const cJSON *oh = rec ? cJSON_GetObjectItemCaseSensitive(rec, "hash") : NULL;
    cJSON *entry = NULL;
    double seconds = 0;
    int skipped = 0;
    pulse_status st = PULSE_OK;
    if (cJSON_IsString(oh) && strcmp(oh->valuestring, hash) == 0 && cJSON_GetObjectItem(rec, "report")) {
        skipped = 1;
        entry = rec;
        rec = NULL;
        const cJSON *s = cJSON_GetObjectItem(entry, "seconds");
        seconds = cJSON_IsNumber(s) ? s->valuedouble : 0;
        if (c->p->progress)
            fprintf(stderr, "pipeline: [%d] %s: done before (%.1f s), skipped\n", c->step, name, seconds);
    } else {
        cJSON_Delete(rec);
        char *sh = read_small(start_path);
        c->resume = sh && strncmp(sh, hash, 16) == 0;
        free(sh);
        if ((st = pulse_write_file_atomic(start_path, hash, 16))) {
            cJSON_Delete(settings);
            return st;
        }
        if (c->p->progress)
            fprintf(stderr, "pipeline: [%d] %s: running%s\n", c->step, name, c->resume ? " (resuming)" : "");
        cJSON *rj = cJSON_CreateObject();
        double t0 = pulse_now();
        st = rj ? fn(c, ud, rj) : pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
        seconds = pulse_now() - t0;
        if (st) {
            cJSON_Delete(rj);
            cJSON_Delete(settings);
            return pulse_wrap_error(st, "pipeline: stage %s", name);
        }
        entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "hash", hash);
        cJSON_AddNumberToObject(entry, "seconds", seconds);
        /* resumed from an earlier run's checkpoint or store: seconds are this run's only */
        if (c->resume) cJSON_AddTrueToObject(entry, "resumed");
        cJSON_AddItemToObject(entry, "settings", cJSON_Duplicate(settings, 1));
        cJSON_AddItemToObject(entry, "report", rj);
        if ((st = write_json(rec_path, entry))) {
            cJSON_Delete(entry);
            cJSON_Delete(settings);
            return st;
        }
        remove(start_path);
        if (c->p->progress) fprintf(stderr, "pipeline: [%d] %s: done in %.1f s\n", c->step, name, seconds);
    }
    cJSON_Delete(settings);
    cJSON_DeleteItemFromObject(entry, "hash");
    cJSON_DeleteItemFromObject(entry, "settings");
    cJSON_AddBoolToObject(entry, "skipped", skipped);
    cJSON_AddItemToObject(c->stages, name, entry);
    if (report) *report = cJSON_GetObjectItem(entry, "report");
    pulse_pipeline_report *r = c->rep;
    if (r->n_stages < (int)(sizeof r->stages / sizeof r->stages[0])) {
        pulse_pipeline_stage *s = &r->stages[r->n_stages++];
        snprintf(s->name, sizeof s->name, "%s", name);
        s->seconds = seconds;
        s->skipped = skipped;
    }
    return PULSE_OK;
}

static const char *report_str(const cJSON *rep, const char *key) {
    const cJSON *v = rep ? cJSON_GetObjectItemCaseSensitive(rep, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *metrics_obj(const pulse_metrics *m, int hr1_only) {
    if (hr1_only) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "HR@1", m->hr1);
        return o;
    }
    char buf[512];
    pulse_metrics_json(m, buf, sizeof buf);
    return cJSON_Parse(buf);
}

/* ---- stages ---- */
static pulse_status st_sasrec(pipe *c, void *ud, cJSON *rep) {
    (void)ud;
    char path[4096], ckpt[4096];
    path_of(c, path, sizeof path, "sasrec.bin");
    path_of(c, ckpt, sizeof ckpt, "sasrec.bin.ckpt");
    if (!c->resume) remove(ckpt);
    pulse_sasrec_params sp = pulse_sasrec_default_params();
    sp.epochs = c->p->sasrec_epochs;
    sp.seed = c->p->seed;
    sp.checkpoint = ckpt;
    sp.resume = 1;
    pulse_sasrec *m = NULL;
    pulse_sasrec_train_report tr;
    pulse_status st = pulse_sasrec_create(pulse_dataset_n_items(c->ds), &sp, &m);
    if (!st) st = pulse_sasrec_train(m, c->ds, &sp, &tr);
    if (!st) st = pulse_sasrec_save(m, path);
    pulse_sasrec_free(m);
    if (st) return st;
    cJSON_AddNumberToObject(rep, "epochs_run", tr.epochs_run);
    cJSON_AddNumberToObject(rep, "best_epoch", tr.best_epoch);
    cJSON_AddItemToObject(rep, "test_full_ranking", metrics_obj(&tr.test, 0));
    return PULSE_OK;
}

static pulse_status st_similar(pipe *c, void *ud, cJSON *rep) {
    (void)ud;
    char path[4096], outp[4096];
    path_of(c, path, sizeof path, "sasrec.bin");
    path_of(c, outp, sizeof outp, "similar.jsonl");
    pulse_sasrec *m = NULL;
    pulse_recorder *rc = NULL;
    int *users = NULL, nu = 0;
    pulse_strbuf b = {0};
    pulse_status st = pulse_sasrec_load(path, NULL, &m);
    if (!st) st = pulse_recorder_new(c->ds, m, NULL, NULL, &rc);
    if (!st) st = pulse_rec_select_users(c->ds, c->p->users, c->p->seed, &users, &nu);
    for (int i = 0; !st && i < nu; i++) {
        pulse_record r;
        if ((st = pulse_recorder_build(rc, users[i], &r))) break;
        cJSON *o = cJSON_CreateObject(), *su = cJSON_AddArrayToObject(o, "similar_users");
        cJSON_AddStringToObject(o, "user", r.user_key);
        for (int k = 0; su && k < r.n_similar_users; k++)
            cJSON_AddItemToArray(su, cJSON_CreateString(pulse_dataset_user_key(c->ds, r.similar_users[k])));
        char *items = pulse_record_similar_json(&r);
        cJSON_AddItemToObject(o, "similar_items", items ? cJSON_Parse(items) : cJSON_CreateArray());
        free(items);
        pulse_record_free(&r);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        pulse_strbuf_cat(&b, s ? s : "{}");
        pulse_strbuf_cat(&b, "\n");
        cJSON_free(s);
    }
    if (!st && b.oom) st = pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
    if (!st) st = pulse_write_file_atomic(outp, pulse_strbuf_str(&b), b.n);
    if (!st) cJSON_AddNumberToObject(rep, "users", nu);
    pulse_strbuf_free(&b);
    free(users);
    pulse_recorder_free(rc);
    pulse_sasrec_free(m);
    return st;
}

static pulse_status st_phase1(pipe *c, void *ud, cJSON *rep) {
    (void)ud;
    char sas[4096], db[4096];
    path_of(c, sas, sizeof sas, "sasrec.bin");
    path_of(c, db, sizeof db, "rationales.db");
    pulse_phase1_params pp = pulse_phase1_default_params();
    pp.users = c->p->users;
    pp.seed = c->p->seed;
    pp.max_new_tokens = c->p->phase1_max_new;
    pp.progress = c->p->progress;
    pulse_phase1_report r;
    pulse_status st = pulse_rationale_phase1(c->data, c->model, sas, db, &pp, &r);
    if (st) return st;
    cJSON_AddNumberToObject(rep, "selected", r.selected);
    cJSON_AddNumberToObject(rep, "ok_this_run", r.ok);
    cJSON_AddNumberToObject(rep, "failed_this_run", r.failed);
    cJSON_AddNumberToObject(rep, "skipped", r.skipped);
    cJSON_AddNumberToObject(rep, "gen_tok_s", r.gen_tok_s);
    cJSON_AddStringToObject(rep, "model_hash", r.model_hash);
    cJSON_AddStringToObject(rep, "settings_hash", r.settings_hash);
    return PULSE_OK;
}

/* pairs of the Thought Space from one store key's ok rows of the dataset */
typedef struct {
    const char *dataset, *phase, *mh, *sh;
    pulse_strbuf *b;
    int rows;
} pairs_ctx;

static int pair_row(void *ud, const pulse_store_row *r) {
    pairs_ctx *x = ud;
    if (!r->ok || !r->text || !r->behaviour || strcmp(r->dataset, x->dataset) != 0 ||
        strcmp(r->model_hash, x->mh) != 0 || strcmp(r->settings_hash, x->sh) != 0)
        return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", r->user);
    cJSON_AddStringToObject(o, "behaviour", r->behaviour);
    cJSON_AddStringToObject(o, "rationale", r->text);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    pulse_strbuf_cat(x->b, s ? s : "{}");
    pulse_strbuf_cat(x->b, "\n");
    cJSON_free(s);
    x->rows++;
    return 0;
}

typedef struct {
    const cJSON *phase1;
} thought_ud;

static pulse_status st_thought(pipe *c, void *ud, cJSON *rep) {
    thought_ud *t = ud;
    char db[4096], pairs[4096], space[4096];
    path_of(c, db, sizeof db, "rationales.db");
    path_of(c, pairs, sizeof pairs, "phase1-pairs.jsonl");
    path_of(c, space, sizeof space, "space");
    const char *mh = report_str(t->phase1, "model_hash"), *sh = report_str(t->phase1, "settings_hash");
    if (!mh || !sh) return pulse_set_error(PULSE_ERR_FORMAT, "pipeline: the phase1 record has no store key");
    pulse_strbuf b = {0};
    pairs_ctx x = {pulse_dataset_name(c->ds), "phase1", mh, sh, &b, 0};
    pulse_store *s = NULL;
    pulse_status st = pulse_store_open(db, 1, &s);
    if (!st) st = pulse_store_each(s, "phase1", NULL, pair_row, &x);
    pulse_store_close(s);
    if (!st && b.oom) st = pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
    if (!st && x.rows < 2)
        st = pulse_set_error(PULSE_ERR_RANGE,
                             "pipeline: %d Phase-1 rationales: too few to train a Thought Space", x.rows);
    if (!st) st = pulse_write_file_atomic(pairs, pulse_strbuf_str(&b), b.n);
    pulse_strbuf_free(&b);
    if (st) return st;
    pulse_thought_train_params tp = pulse_thought_train_default_params();
    tp.encoder = c->p->encoder;
    tp.epochs = c->p->thought_epochs;
    tp.seed = c->p->seed;
    tp.resume = c->resume;
    pulse_thought_epoch hist[1024];
    int nh = 0;
    if ((st = pulse_thought_train(pairs, space, &tp, hist, 1024, &nh))) return st;
    cJSON_AddNumberToObject(rep, "pairs", x.rows);
    cJSON_AddNumberToObject(rep, "epochs", tp.epochs);
    if (nh > 0) cJSON_AddNumberToObject(rep, "last_train_loss", hist[nh - 1].train_loss);
    return PULSE_OK;
}

typedef struct {
    pulse_tot_scorer scorer;
} tot_ud;

static pulse_status st_tot(pipe *c, void *ud, cJSON *rep) {
    tot_ud *t = ud;
    char sas[4096], db[4096], space[4096];
    path_of(c, sas, sizeof sas, "sasrec.bin");
    path_of(c, db, sizeof db, "rationales.db");
    path_of(c, space, sizeof space, "space");
    pulse_tot_job_params tp = pulse_tot_job_default_params();
    tp.users = c->p->tot_users > 0 ? c->p->tot_users : c->p->users;
    tp.seed = c->p->seed;
    tp.search.depth = c->p->tot_depth;
    tp.search.branching = c->p->tot_branching;
    tp.search.beam = c->p->tot_beam;
    tp.search.max_thought_tokens = c->p->tot_thought_tokens;
    tp.search.scorer = t->scorer;
    pulse_tot_report r;
    pulse_status st = pulse_rationale_tot(
        c->data, c->model, t->scorer == PULSE_TOT_SCORER_THOUGHT ? space : NULL, sas, db, &tp, &r);
    if (st) return st;
    cJSON_AddStringToObject(rep, "scorer", pulse_tot_scorer_name(t->scorer));
    cJSON_AddNumberToObject(rep, "selected", r.selected);
    cJSON_AddNumberToObject(rep, "ok_this_run", r.ok);
    cJSON_AddNumberToObject(rep, "failed_this_run", r.failed);
    cJSON_AddNumberToObject(rep, "skipped", r.skipped);
    if (isfinite(r.mean_score)) cJSON_AddNumberToObject(rep, "mean_score", r.mean_score);
    cJSON_AddNumberToObject(rep, "gen_tok_s", r.gen_tok_s);
    if (r.cmp_users > 0) {
        cJSON_AddNumberToObject(rep, "vs_phase1_users", r.cmp_users);
        cJSON_AddNumberToObject(rep, "tot_ts", r.cmp_tot);
        cJSON_AddNumberToObject(rep, "phase1_ts", r.cmp_phase1);
    }
    cJSON_AddStringToObject(rep, "model_hash", r.model_hash);
    cJSON_AddStringToObject(rep, "settings_hash", r.settings_hash);
    return PULSE_OK;
}

/* The test users: the first --eval-users of the run's users. */
static int eval_users(const pulse_pipeline_params *p) {
    return p->eval_users > 0 && (p->users <= 0 || p->eval_users < p->users) ? p->eval_users : p->users;
}

static pulse_status st_lists(pipe *c, void *ud, cJSON *rep) {
    const char *path = ud;
    pulse_sft_build_params sp = pulse_sft_build_default_params();
    sp.users = eval_users(c->p);
    sp.seed = c->p->seed;
    sp.test_candidates = c->p->candidates;
    pulse_sft_build_report r;
    pulse_status st = pulse_sft_build(c->data, &sp, NULL, path, &r);
    if (st) return st;
    cJSON_AddNumberToObject(rep, "lists", r.test);
    cJSON_AddStringToObject(rep, "file", pulse_path_base(path));
    return PULSE_OK;
}

typedef struct {
    const char *variant; /* none | phase1 | tot-likelihood | pulse */
    pulse_rec_rationale rationale;
    const cJSON *source; /* the report with the store key (NULL for none) */
    int users;
} sft_ud;

static pulse_status st_sft(pipe *c, void *ud, cJSON *rep) {
    sft_ud *v = ud;
    char db[4096], lines[4096], lora[4096], ckpt[4096], logp[4096], rel[128];
    path_of(c, db, sizeof db, "rationales.db");
    snprintf(rel, sizeof rel, "sft-%s.jsonl", v->variant);
    path_of(c, lines, sizeof lines, rel);
    snprintf(rel, sizeof rel, "lora-%s.gguf", v->variant);
    path_of(c, lora, sizeof lora, rel);
    snprintf(rel, sizeof rel, "lora-%s.ckpt", v->variant);
    path_of(c, ckpt, sizeof ckpt, rel);
    snprintf(rel, sizeof rel, "lora-%s.log.jsonl", v->variant);
    path_of(c, logp, sizeof logp, rel);
    pulse_sft_build_params sp = pulse_sft_build_default_params();
    sp.rationale = v->rationale;
    sp.db = v->rationale == PULSE_REC_RAT_NONE ? NULL : db;
    sp.model_hash = report_str(v->source, "model_hash");
    sp.settings_hash = report_str(v->source, "settings_hash");
    sp.users = v->users;
    sp.seed = c->p->seed;
    sp.test_candidates = c->p->candidates;
    pulse_sft_build_report br;
    pulse_status st = pulse_sft_build(c->data, &sp, lines, NULL, &br);
    if (st) return st;
    if (!c->resume) remove(ckpt);
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lora *a = NULL;
    pulse_lm_sft sft = {0};
    pulse_lm_train_result tr;
    pulse_lora_params lp = pulse_lora_default_params();
    lp.seed = c->p->seed;
    pulse_lm_train_params tp = pulse_lm_train_default_params();
    tp.seed = c->p->seed;
    tp.epochs = c->p->sft_epochs;
    tp.batch = c->p->sft_batch;
    tp.grad_accum = c->p->sft_grad_accum;
    tp.max_steps = c->p->sft_max_steps;
    tp.checkpoint_layers = c->p->sft_recompute;
    tp.checkpoint_path = ckpt;
    tp.resume = 1;
    tp.log_path = logp;
    if (!(st = pulse_lm_load(c->model, NULL, &m)) &&
        !(st = pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok)) &&
        !(st = pulse_lm_sft_read(lines, m, tok, 1, c->p->sft_max_len, &sft)) &&
        !(st = pulse_lora_new(m, &lp, &a)) && !(st = pulse_lm_train(m, a, sft.ex, sft.n, &tp, &tr)))
        st = pulse_lora_save(a, lora);
    if (!st) {
        cJSON_AddNumberToObject(rep, "lines", br.train);
        cJSON_AddNumberToObject(rep, "no_rationale", br.no_rationale);
        cJSON_AddNumberToObject(rep, "cut_to_max_len", sft.n_cut);
        cJSON_AddNumberToObject(rep, "steps", tr.steps);
        cJSON_AddNumberToObject(rep, "first_loss", tr.first_loss);
        cJSON_AddNumberToObject(rep, "final_loss", tr.final_loss);
        cJSON_AddNumberToObject(rep, "tokens", (double)tr.tokens);
        cJSON_AddStringToObject(rep, "adapter", pulse_path_base(lora));
    }
    pulse_lm_sft_free(&sft);
    pulse_lora_free(a);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return st;
}

typedef struct {
    const char *method; /* pop | sasrec | zero-shot | sft-... | pulse */
    const char *lists;  /* the candidate file */
    const char *lora;   /* adapter file (NULL: zero-shot) */
    int decoder;        /* -1: a scorer (pop, sasrec); PULSE_REC_RANK / PULSE_REC_GENERATE */
} eval_ud;

static pulse_status sasrec_fn(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                              float *scores) {
    (void)users;
    return pulse_sasrec_score(ctx, n, hist, hist_len, scores);
}

static pulse_status st_eval(pipe *c, void *ud, cJSON *rep) {
    eval_ud *e = ud;
    pulse_candset cs = {0};
    pulse_metrics m;
    memset(&m, 0, sizeof m);
    pulse_status st = pulse_candset_load(e->lists, c->ds, &cs);
    if (st) return st;
    if (!strcmp(e->method, "pop")) {
        pulse_pop *pop = NULL;
        if (!(st = pulse_pop_fit(c->ds, &pop)))
            st = pulse_evaluate_candset(c->ds, &cs, pulse_pop_score, NULL, pop, 0, &m);
        pulse_pop_free(pop);
    } else if (!strcmp(e->method, "sasrec")) {
        char path[4096];
        path_of(c, path, sizeof path, "sasrec.bin");
        pulse_sasrec *s = NULL;
        if (!(st = pulse_sasrec_load(path, NULL, &s)))
            st = pulse_evaluate_candset(c->ds, &cs, sasrec_fn, NULL, s, 0, &m);
        pulse_sasrec_free(s);
    } else {
        pulse_rec_params rp = pulse_rec_default_params();
        rp.decoder = (pulse_rec_decoder)e->decoder;
        rp.seed = c->p->seed;
        rp.max_new_tokens = c->p->eval_max_new;
        char store[4096]; /* users finished by a killed run are read back, not decoded again */
        path_of(c, store, sizeof store, "eval.db");
        rp.store = store;
        pulse_recommender *r = NULL;
        pulse_rec_eval_report er = {0};
        if (!(st = pulse_recommender_new(c->model, e->lora, &rp, &r)))
            st = pulse_rec_evaluate(r, c->ds, &cs, &m, &er, NULL);
        pulse_recommender_free(r);
        if (!st && er.resumed) cJSON_AddNumberToObject(rep, "resumed_users", er.resumed);
        if (!st && e->decoder == PULSE_REC_GENERATE) {
            cJSON_AddNumberToObject(rep, "no_match", er.no_match);
            cJSON_AddNumberToObject(rep, "multi_match", er.multi_match);
        }
    }
    if (!st) {
        cJSON_AddNumberToObject(rep, "users", m.n_users);
        cJSON_AddNumberToObject(rep, "candidates", cs.n_candidates);
        cJSON_AddItemToObject(rep, "metrics", metrics_obj(&m, e->decoder == PULSE_REC_GENERATE));
    }
    pulse_candset_free(&cs);
    return st;
}

/* metrics[method][decoder] = the eval record's metrics */
static void add_metrics(pipe *c, const char *method, const char *decoder, const cJSON *rep) {
    const cJSON *m = rep ? cJSON_GetObjectItem(rep, "metrics") : NULL;
    if (!m) return;
    cJSON *o = cJSON_GetObjectItemCaseSensitive(c->metrics, method);
    if (!o) o = cJSON_AddObjectToObject(c->metrics, method);
    if (o) cJSON_AddItemToObject(o, decoder, cJSON_Duplicate(m, 1));
}

static cJSON *settings_new(const pipe *c) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "dataset", pulse_dataset_name(c->ds));
    cJSON_AddNumberToObject(s, "seed", (double)c->p->seed);
    return s;
}

/* Stage sft-V: variant v's training lines and LoRA; dep = the hash of its rationale stage ("" for none). */
static pulse_status sft_stage(pipe *c, sft_ud *v, const char *dep, const char *model_name, char h[17]) {
    const pulse_pipeline_params *p = c->p;
    cJSON *s = settings_new(c);
    cJSON_AddNumberToObject(s, "users", v->users);
    cJSON_AddNumberToObject(s, "epochs", p->sft_epochs);
    cJSON_AddNumberToObject(s, "batch", p->sft_batch);
    cJSON_AddNumberToObject(s, "grad_accum", p->sft_grad_accum);
    cJSON_AddNumberToObject(s, "max_len", p->sft_max_len);
    cJSON_AddNumberToObject(s, "max_steps", p->sft_max_steps);
    cJSON_AddStringToObject(s, "model", model_name);
    char name[64];
    snprintf(name, sizeof name, "sft-%s", v->variant);
    const char *d[] = {dep};
    return stage(c, name, s, d, 1, st_sft, v, h, NULL);
}

static const char *const METHODS[7] = {
    "pop", "sasrec", "zero-shot", "sft-none", "sft-phase1", "sft-tot-likelihood", "pulse"};
/* each METHODS[mi]'s bit in p->rows (pop and SASRec: always) */
static const unsigned ROW_BIT[7] = {0u,
                                    0u,
                                    PULSE_PIPE_ZERO_SHOT,
                                    PULSE_PIPE_SFT_NONE,
                                    PULSE_PIPE_SFT_PHASE1,
                                    PULSE_PIPE_SFT_LIKELIHOOD,
                                    PULSE_PIPE_PULSE};

/* A comma-separated list of names[0..n) -> the OR of their bits[]; kind names the list in the error
 * ("row", "decoder"), choices the accepted names. */
static pulse_status parse_names(const char *list, const char *const *names, const unsigned *bits, int n,
                                const char *kind, const char *choices, unsigned *out) {
    if (!list || !out) return pulse_set_error(PULSE_ERR_ARG, "pipeline %ss: NULL argument", kind);
    unsigned r = 0;
    const char *t = list;
    for (;;) {
        size_t len = strcspn(t, ",");
        int k = 0;
        while (k < n && (strlen(names[k]) != len || strncmp(t, names[k], len))) k++;
        if (k == n)
            return pulse_set_error(PULSE_ERR_ARG, "%ss: '%.*s' is not a %s (%s)", kind,
                                   (int)(len > 64 ? 64 : len), t, kind, choices);
        r |= bits[k];
        if (!t[len]) break;
        t += len + 1;
    }
    *out = r;
    return PULSE_OK;
}

pulse_status pulse_pipeline_parse_rows(const char *list, unsigned *rows) {
    /* the language-model methods: METHODS[2..7) */
    return parse_names(list, METHODS + 2, ROW_BIT + 2, 5, "row",
                       "zero-shot, sft-none, sft-phase1, sft-tot-likelihood, pulse", rows);
}

pulse_status pulse_pipeline_parse_decoders(const char *list, unsigned *decoders) {
    static const char *const NAME[2] = {"rank", "generate"};
    static const unsigned BIT[2] = {PULSE_PIPE_RANK, PULSE_PIPE_GENERATE};
    return parse_names(list, NAME, BIT, 2, "decoder", "rank, generate", decoders);
}

/* The stored lists of c's dataset (stage lists-nN): lists = their path, h_lists = the stage's hash. */
static pulse_status eval_lists(pipe *c, char *lists, size_t n, char h_lists[17]) {
    const pulse_pipeline_params *p = c->p;
    char rel[128], lname[64];
    snprintf(rel, sizeof rel, "test-n%d-u%d.jsonl", p->candidates, eval_users(p));
    path_of(c, lists, n, rel);
    cJSON *s = settings_new(c);
    cJSON_AddNumberToObject(s, "users", eval_users(p));
    cJSON_AddNumberToObject(s, "candidates", p->candidates);
    snprintf(lname, sizeof lname, "lists-n%d", p->candidates);
    return stage(c, lname, s, NULL, 0, st_lists, (void *)lists, h_lists, NULL);
}

/* Method METHODS[mi] on the lists with each decoder it has (pop and SASRec: their scores; the language
 * models: rank and / or generate). dep = the hash of what the method needs (SASRec's or its SFT stage's);
 * the adapters are lora_dir's (the training dataset's). */
static pulse_status eval_method(pipe *c, int mi, const char *lists, const char *h_lists, const char *dep,
                                const char *variant, const char *lora_dir) {
    const pulse_pipeline_params *p = c->p;
    const int scorer = mi < 2;
    char lora[4096] = {0}, rel[128];
    const int tuned = mi >= 3 && variant; /* a fine-tuned row: its adapter */
    if (tuned) {
        snprintf(rel, sizeof rel, "lora-%s.gguf", variant);
        pulse_path_join(lora, sizeof lora, lora_dir, rel);
    }
    for (int di = 0; di < 2; di++) {
        if (scorer && di > 0) break;
        const int dec = di == 0 ? PULSE_REC_RANK : PULSE_REC_GENERATE;
        if (!scorer && !(p->decoders & (di == 0 ? PULSE_PIPE_RANK : PULSE_PIPE_GENERATE))) continue;
        const char *dn = scorer ? "score" : di == 0 ? "rank" : "generate";
        char name[96];
        snprintf(name, sizeof name, "eval-%s-%s-n%d", METHODS[mi], dn, p->candidates);
        cJSON *s = settings_new(c);
        cJSON_AddNumberToObject(s, "max_new", scorer || dec == PULSE_REC_RANK ? 0 : p->eval_max_new);
        if (!scorer) cJSON_AddStringToObject(s, "model", pulse_path_base(c->model));
        /* training's summation order for the SLM's products (pulse_options.qfast): its own results; absent in
         * llama.cpp's order, so the stores of runs before the option keep their hashes */
        if (!scorer && pulse_get_options()->qfast) cJSON_AddStringToObject(s, "products", "fast");
        const char *d[] = {h_lists, dep ? dep : ""};
        eval_ud e = {METHODS[mi], lists, tuned ? lora : NULL, scorer ? -1 : dec};
        const cJSON *er = NULL;
        char h[17];
        pulse_status st = stage(c, name, s, d, 2, st_eval, &e, h, &er);
        if (st) return st;
        add_metrics(c, METHODS[mi], dn, er);
    }
    return PULSE_OK;
}

/* The summary's metrics in the table's order (pop, SASRec, zero-shot, the SFT rows, PULSE), whatever order
 * the methods were evaluated in. */
static void metrics_in_order(cJSON *metrics) {
    for (int mi = 0; mi < 7; mi++) {
        cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(metrics, METHODS[mi]);
        if (o) cJSON_AddItemToObject(metrics, METHODS[mi], o);
    }
}

/* Every method on c's dataset's lists, once all adapters exist (the cross-domain test). */
static pulse_status evaluate(pipe *c, const char *h_sas, char h_sft[4][17], const sft_ud *variants,
                             const char *lora_dir) {
    char lists[4096], h_lists[17];
    pulse_status st = eval_lists(c, lists, sizeof lists, h_lists);
    for (int mi = 0; mi < 7 && !st; mi++) {
        if (mi >= 2 && !(c->p->rows & ROW_BIT[mi])) continue;
        const char *dep = mi == 1 ? h_sas : mi >= 3 ? h_sft[mi - 3] : "";
        st = eval_method(c, mi, lists, h_lists, dep, mi >= 3 ? variants[mi - 3].variant : NULL, lora_dir);
    }
    metrics_in_order(c->metrics);
    return st;
}

/* The rationale stages' hashes and reports (what the SFT stages depend on). */
typedef struct {
    char h_sas[17], h_sim[17], h_p1[17], h_ts[17], h_tot[17], h_lik[17];
    const cJSON *r_p1, *r_tot, *r_lik;
    int tot_users;
    const char *model_name;
} flow;

/* similar users of the run's users (what Phase 1 and ToT put in their prompts), then Phase 1 where a
 * selected row needs it (its own SFT row; PULSE's Thought Space learns from its pairs) */
static pulse_status flow_phase1(pipe *c, flow *f) {
    const pulse_pipeline_params *p = c->p;
    cJSON *s = settings_new(c);
    cJSON_AddNumberToObject(s, "users", p->users);
    const char *d[] = {f->h_sas};
    pulse_status st = stage(c, "similar", s, d, 1, st_similar, NULL, f->h_sim, NULL);
    if (st || !(p->rows & (PULSE_PIPE_SFT_PHASE1 | PULSE_PIPE_PULSE))) return st;
    s = settings_new(c);
    cJSON_AddNumberToObject(s, "users", p->users);
    cJSON_AddNumberToObject(s, "max_new", p->phase1_max_new);
    cJSON_AddStringToObject(s, "model", f->model_name);
    return stage(c, "phase1", s, d, 1, st_phase1, NULL, f->h_p1, &f->r_p1);
}

/* the Thought Space on the Phase-1 rationales */
static pulse_status flow_thought(pipe *c, flow *f) {
    cJSON *s = settings_new(c);
    cJSON_AddNumberToObject(s, "epochs", c->p->thought_epochs);
    cJSON_AddStringToObject(s, "encoder", c->p->encoder);
    const char *d[] = {f->h_p1};
    thought_ud t = {f->r_p1};
    return stage(c, "thought", s, d, 1, st_thought, &t, f->h_ts, NULL);
}

/* ToT scored in the Thought Space (PULSE) or by the SLM's likelihood (the ablation) */
static pulse_status flow_tot(pipe *c, flow *f, pulse_tot_scorer scorer) {
    const pulse_pipeline_params *p = c->p;
    cJSON *s = cJSON_CreateObject(); /* keys in this order: the stage's hash (its dataset and seed last) */
    cJSON_AddNumberToObject(s, "users", f->tot_users);
    cJSON_AddNumberToObject(s, "depth", p->tot_depth);
    cJSON_AddNumberToObject(s, "branching", p->tot_branching);
    cJSON_AddNumberToObject(s, "beam", p->tot_beam);
    cJSON_AddNumberToObject(s, "thought_tokens", p->tot_thought_tokens);
    cJSON_AddStringToObject(s, "model", f->model_name);
    cJSON_AddStringToObject(s, "dataset", pulse_dataset_name(c->ds));
    cJSON_AddNumberToObject(s, "seed", (double)p->seed);
    tot_ud t = {scorer};
    if (scorer == PULSE_TOT_SCORER_THOUGHT) {
        const char *d[] = {f->h_sas, f->h_ts};
        return stage(c, "tot-thought", s, d, 2, st_tot, &t, f->h_tot, &f->r_tot);
    }
    const char *d[] = {f->h_sas};
    return stage(c, "tot-likelihood", s, d, 1, st_tot, &t, f->h_lik, &f->r_lik);
}

/* the rationale rows of p->rows: which need similar users (every one) */
#define RATIONALE_ROWS (PULSE_PIPE_SFT_PHASE1 | PULSE_PIPE_SFT_LIKELIHOOD | PULSE_PIPE_PULSE)

/* every rationale stage the selected rows need, in the order each needs the last */
static pulse_status flow_rationales(pipe *c, flow *f) {
    const unsigned rows = c->p->rows;
    pulse_status st = rows & RATIONALE_ROWS ? flow_phase1(c, f) : PULSE_OK;
    if (!st && (rows & PULSE_PIPE_PULSE)) st = flow_thought(c, f);
    if (!st && (rows & PULSE_PIPE_PULSE)) st = flow_tot(c, f, PULSE_TOT_SCORER_THOUGHT);
    if (!st && (rows & PULSE_PIPE_SFT_LIKELIHOOD)) st = flow_tot(c, f, PULSE_TOT_SCORER_LIKELIHOOD);
    return st;
}

pulse_status pulse_pipeline_run(const char *data, const char *model, const char *out_dir,
                                const pulse_pipeline_params *pp, pulse_pipeline_report *r) {
    pulse_pipeline_params p = pp ? *pp : pulse_pipeline_default_params();
    if (r) memset(r, 0, sizeof *r);
    if (!data || !model || !out_dir || !p.encoder)
        return pulse_set_error(PULSE_ERR_ARG,
                               "pipeline: a dataset, a model, an encoder and an out folder are needed");
    if (p.users < 0 || p.candidates < 2 || p.eval_users < 0 || p.sasrec_epochs < 1 || p.phase1_max_new < 1 ||
        p.thought_epochs < 1 || p.tot_users < 0 || p.tot_depth < 1 || p.tot_branching < 1 || p.tot_beam < 1 ||
        p.tot_thought_tokens < 1 || p.sft_epochs < 1 || p.sft_batch < 1 || p.sft_grad_accum < 1 ||
        p.sft_max_len < 0 || p.sft_max_steps < 0 || p.eval_max_new < 1 || !(p.decoders & 3u) ||
        (p.rows & ~(unsigned)PULSE_PIPE_ALL_ROWS))
        return pulse_set_error(
            PULSE_ERR_ARG,
            "pipeline: a parameter is out of its range (users >= 0, candidates >= 2, "
            "epochs, depth, branching, beam, batch >= 1, a decoder, rows among PULSE_PIPE_ALL_ROWS)");
    if (!pulse_file_exists(model)) return pulse_set_error(PULSE_ERR_IO, "pipeline: no model file %s", model);
    pulse_pipeline_report rep_local;
    memset(&rep_local, 0, sizeof rep_local);
    pipe c = {data, model, out_dir, &p, NULL, r ? r : &rep_local, NULL, NULL, 0, 0};
    double t0 = pulse_now();
    char dir[4096];
    pulse_status st = pulse_mkdirs(out_dir);
    if (!st) st = pulse_mkdirs(pulse_path_join(dir, sizeof dir, out_dir, "stages"));
    if (st) return st;
    if ((st = pulse_dataset_load(data, NULL, &c.ds))) return st;
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "dataset", pulse_dataset_name(c.ds));
    cJSON_AddStringToObject(sum, "model", pulse_path_base(model));
    cJSON_AddStringToObject(sum, "encoder", pulse_path_base(p.encoder));
    cJSON_AddStringToObject(sum, "out", out_dir);
    cJSON_AddNumberToObject(sum, "users", p.users);
    cJSON_AddNumberToObject(sum, "seed", (double)p.seed);
    cJSON_AddNumberToObject(sum, "candidates", p.candidates);
    cJSON_AddNumberToObject(sum, "eval_users", eval_users(&p));
    c.stages = cJSON_AddObjectToObject(sum, "stages");
    c.metrics = cJSON_AddObjectToObject(sum, "metrics");
    flow f;
    memset(&f, 0, sizeof f);
    f.model_name = pulse_path_base(model);
    f.tot_users = p.tot_users > 0 ? p.tot_users : p.users;
    cJSON *s;
    /* Each method is evaluated as soon as what it needs exists, the cheap ones first, so a long run that is
     * stopped has its first rows: SASRec, the lists, pop and SASRec; SFT without rationale; Phase 1 and its
     * SFT; the Thought Space, ToT and PULSE's SFT; the likelihood ToT and its SFT; the zero-shot SLM last.
     * --rationales-first: every rationale stage right after SASRec and its rows, then the SFT rows. */
    /* SASRec */
    s = settings_new(&c);
    cJSON_AddNumberToObject(s, "epochs", p.sasrec_epochs);
    if ((st = stage(&c, "sasrec", s, NULL, 0, st_sasrec, NULL, f.h_sas, NULL))) goto out;
    char lists[4096], h_lists[17];
    if ((st = eval_lists(&c, lists, sizeof lists, h_lists)) ||
        (st = eval_method(&c, 0, lists, h_lists, "", NULL, out_dir)) ||
        (st = eval_method(&c, 1, lists, h_lists, f.h_sas, NULL, out_dir)))
        goto out;
    if (p.rationales_first && (st = flow_rationales(&c, &f))) goto out;
    /* SFT: training lines and a LoRA per rationale variant, each evaluated when trained */
    sft_ud variants[4] = {{"none", PULSE_REC_RAT_NONE, NULL, p.users},
                          {"phase1", PULSE_REC_RAT_PHASE1, NULL, p.users},
                          {"tot-likelihood", PULSE_REC_RAT_TOT, NULL, f.tot_users},
                          {"pulse", PULSE_REC_RAT_TOT, NULL, f.tot_users}};
    char h_sft[4][17] = {{0}};
    const char *vdep[4] = {"", f.h_p1, f.h_lik, f.h_tot};
    const char *model_name = f.model_name;
#define SFT_AND_EVAL(v)                                                                                      \
    do {                                                                                                     \
        if ((st = sft_stage(&c, &variants[v], vdep[v], model_name, h_sft[v])) ||                             \
            (st = eval_method(&c, 3 + (v), lists, h_lists, h_sft[v], variants[v].variant, out_dir)))         \
            goto out;                                                                                        \
    } while (0)
    if (p.rows & PULSE_PIPE_SFT_NONE) SFT_AND_EVAL(0);
    if (!p.rationales_first && (p.rows & RATIONALE_ROWS) && (st = flow_phase1(&c, &f))) goto out;
    if (p.rows & PULSE_PIPE_SFT_PHASE1) {
        variants[1].source = f.r_p1;
        SFT_AND_EVAL(1);
    }
    if (p.rows & PULSE_PIPE_PULSE) {
        if (!p.rationales_first &&
            ((st = flow_thought(&c, &f)) || (st = flow_tot(&c, &f, PULSE_TOT_SCORER_THOUGHT))))
            goto out;
        variants[3].source = f.r_tot;
        SFT_AND_EVAL(3);
    }
    if (p.rows & PULSE_PIPE_SFT_LIKELIHOOD) {
        if (!p.rationales_first && (st = flow_tot(&c, &f, PULSE_TOT_SCORER_LIKELIHOOD))) goto out;
        variants[2].source = f.r_lik;
        SFT_AND_EVAL(2);
    }
#undef SFT_AND_EVAL
    /* the zero-shot SLM */
    if ((p.rows & PULSE_PIPE_ZERO_SHOT) && (st = eval_method(&c, 2, lists, h_lists, "", NULL, out_dir)))
        goto out;
    metrics_in_order(c.metrics);
    /* cross-domain: the same adapters tested on another dataset's users, lists and titles, beside a SASRec
     * and a popularity trained there */
    if (p.test_data) {
        pipe x = c;
        char xdir[4096], xname[200];
        if ((st = pulse_dataset_load(p.test_data, NULL, &x.ds))) goto out;
        snprintf(xname, sizeof xname, "cross-%s", pulse_dataset_name(x.ds));
        pulse_path_join(xdir, sizeof xdir, out_dir, xname);
        x.data = p.test_data;
        x.out = xdir;
        cJSON *xs = cJSON_AddObjectToObject(sum, "cross_domain");
        cJSON_AddStringToObject(xs, "train_data", pulse_dataset_name(c.ds));
        cJSON_AddStringToObject(xs, "test_data", pulse_dataset_name(x.ds));
        x.stages = cJSON_AddObjectToObject(xs, "stages");
        x.metrics = cJSON_AddObjectToObject(xs, "metrics");
        char xh_sas[17];
        if (!(st = pulse_mkdirs(xdir)) &&
            !(st = pulse_mkdirs(pulse_path_join(dir, sizeof dir, xdir, "stages")))) {
            s = settings_new(&x);
            cJSON_AddNumberToObject(s, "epochs", p.sasrec_epochs);
            if (!(st = stage(&x, "sasrec", s, NULL, 0, st_sasrec, NULL, xh_sas, NULL)))
                st = evaluate(&x, xh_sas, h_sft, variants, out_dir);
        }
        pulse_dataset_free(x.ds);
        if (st) goto out;
    }
out:
    c.rep->seconds = pulse_now() - t0;
    if (!st) {
        cJSON_AddNumberToObject(sum, "seconds", c.rep->seconds);
        char path[4096];
        path_of(&c, path, sizeof path, "summary.json");
        if (!(st = write_json(path, sum))) {
            char *js = cJSON_PrintUnformatted(sum);
            c.rep->summary = js ? strdup(js) : NULL;
            cJSON_free(js);
            if (!c.rep->summary) st = pulse_set_error(PULSE_ERR_NOMEM, "pipeline: out of memory");
        }
    }
    cJSON_Delete(sum);
    pulse_dataset_free(c.ds);
    if (!r) pulse_pipeline_report_free(&rep_local);
    return st;
}
