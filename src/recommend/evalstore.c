/* recommend/evalstore.c — owns the evaluation's per-user store (pulse_rec_params.store): the key a user's
 * result is kept under (dataset, user, phase "eval-rank" / "eval-generate", a model hash over the GGUF, the
 * adapter and its scale, a settings hash over everything that changes a user's result), reading stored
 * results back for the lists of a candidate set (a row counts only when its stored candidate list and target
 * position equal the list's) and writing a chunk of users in one transaction. The store is the rationale
 * store's SQLite file (src/rationale/store.c), so a killed evaluation loses at most the chunk in flight. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/rationale.h"
#include "recommend/internal.h"

pulse_status rec_evalstore_key(const char *model, const char *lora, float lora_scale,
                               const pulse_rec_params *p, int chat, const pulse_candset *cs,
                               char model_hash[17], char settings_hash[17], char **settings_json) {
    *settings_json = NULL;
    char hm[17], hl[17] = "none";
    pulse_status st = pulse_hash_file(model, hm);
    if (!st && lora) st = pulse_hash_file(lora, hl);
    if (st) return st;
    const int qfast = pulse_get_options()->qfast;
    char buf[128];
    snprintf(buf, sizeof buf, "%s|%s|%.9g|%s", hm, hl, (double)lora_scale, qfast ? "fast" : "llama.cpp");
    pulse_hash_text(buf, model_hash);
    cJSON *s = cJSON_CreateObject();
    if (!s) return pulse_set_error(PULSE_ERR_NOMEM, "eval store: out of memory");
    const int rank = p->decoder == PULSE_REC_RANK;
    cJSON_AddStringToObject(s, "decoder", rank ? "rank" : "generate");
    cJSON_AddNumberToObject(s, "candidates", cs->n_candidates);
    cJSON_AddNumberToObject(s, "split", (double)cs->split);
    cJSON_AddNumberToObject(s, "history_titles", p->prompt.test_history);
    cJSON_AddNumberToObject(s, "title_bytes", p->prompt.title_bytes);
    cJSON_AddBoolToObject(s, "chat", chat);
    cJSON_AddNumberToObject(s, "parallel", p->parallel); /* the chunks: users decoded together */
    if (rank)
        cJSON_AddStringToObject(s, "rank_score", p->rank_score == PULSE_REC_SCORE_SUM ? "sum" : "mean");
    else {
        cJSON_AddNumberToObject(s, "temp", (double)p->temp);
        cJSON_AddNumberToObject(s, "top_p", (double)p->top_p);
        cJSON_AddNumberToObject(s, "max_new", p->max_new_tokens);
        cJSON_AddNumberToObject(s, "seed", (double)p->seed);
    }
    char *js = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    if (!js) return pulse_set_error(PULSE_ERR_NOMEM, "eval store: out of memory");
    pulse_hash_text(js, settings_hash);
    *settings_json = js;
    return PULSE_OK;
}

typedef struct {
    const pulse_candset *cs;
    const char *dataset, *phase, *mh, *sh;
    const int *list_of; /* dataset user index -> list index (-1: none) */
    int n_users;
    rec_eval_result *res;
    int found, mismatched;
} read_ctx;

static int read_cb(void *ud, const pulse_store_row *row) {
    read_ctx *x = ud;
    if (strcmp(row->dataset, x->dataset) || strcmp(row->phase, x->phase) || strcmp(row->model_hash, x->mh) ||
        strcmp(row->settings_hash, x->sh) || !row->ok || !row->text || !row->extra)
        return 0;
    if (row->user_index < 0 || row->user_index >= x->n_users) return 0;
    const int i = x->list_of[row->user_index];
    if (i < 0 || x->res[i].done) return 0;
    const pulse_candlist *l = &x->cs->lists[i];
    const int K = x->cs->n_candidates;
    cJSON *e = cJSON_Parse(row->extra), *t = cJSON_Parse(row->text);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(e, "items");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(e, "pos");
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(e, "rank");
    const cJSON *hit = cJSON_GetObjectItemCaseSensitive(e, "hit");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "matches");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(e, "cand_tokens");
    int ok = e && t && cJSON_IsArray(items) && cJSON_GetArraySize(items) == K && cJSON_IsNumber(pos) &&
             pos->valueint == l->pos && cJSON_IsNumber(ct) &&
             (cJSON_IsArray(t) ? cJSON_IsNumber(rk)
                               : cJSON_IsString(t) && cJSON_IsNumber(hit) && cJSON_IsNumber(nm));
    for (int j = 0; ok && j < K; j++) {
        const cJSON *v = cJSON_GetArrayItem(items, j);
        ok = cJSON_IsNumber(v) && v->valueint == l->items[j];
    }
    if (ok) {
        rec_eval_result *r = &x->res[i];
        char *out = cJSON_IsArray(t) ? cJSON_PrintUnformatted(t) : strdup(t->valuestring);
        if (out) {
            r->done = 1;
            r->rank = cJSON_IsNumber(rk) ? rk->valueint : 0;
            r->hit = cJSON_IsNumber(hit) ? hit->valueint : 0;
            r->matches = cJSON_IsNumber(nm) ? nm->valueint : 0;
            r->cand_tokens = (int64_t)ct->valuedouble;
            r->text = out;
            x->found++;
        }
    } else
        x->mismatched++;
    cJSON_Delete(e);
    cJSON_Delete(t);
    return 0;
}

pulse_status rec_evalstore_read(pulse_store *s, const pulse_dataset *ds, const pulse_candset *cs,
                                const char *phase, const char *mh, const char *sh, rec_eval_result *res,
                                int *found) {
    *found = 0;
    const int nu = pulse_dataset_n_users(ds);
    int *list_of = malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    if (!list_of) return pulse_set_error(PULSE_ERR_NOMEM, "eval store: out of memory");
    for (int u = 0; u < nu; u++) list_of[u] = -1;
    for (int i = 0; i < cs->n; i++)
        if (cs->lists[i].user >= 0 && cs->lists[i].user < nu && list_of[cs->lists[i].user] < 0)
            list_of[cs->lists[i].user] = i;
    read_ctx x = {cs, pulse_dataset_name(ds), phase, mh, sh, list_of, nu, res, 0, 0};
    pulse_status st = pulse_store_each(s, phase, NULL, read_cb, &x);
    free(list_of);
    if (!st && x.mismatched)
        fprintf(stderr,
                "eval store: %d stored users had another candidate list or target; they are decoded again\n",
                x.mismatched);
    *found = x.found;
    return st;
}

pulse_status rec_evalstore_put(pulse_store *s, const pulse_dataset *ds, const pulse_candset *cs,
                               const char *phase, const char *mh, const char *sh, const char *settings_json,
                               const char *model_name, const int *idx, int n, const rec_eval_result *res,
                               double seconds) {
    pulse_store_row *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
    char **texts = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    char **extras = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    char(*ukey)[24] = calloc((size_t)(n > 0 ? n : 1), sizeof *ukey); /* users without a key: the index */
    pulse_status st =
        rows && texts && extras && ukey ? PULSE_OK : pulse_set_error(PULSE_ERR_NOMEM, "eval store: oom");
    const int K = cs->n_candidates;
    for (int b = 0; b < n && !st; b++) {
        const int i = idx[b];
        const pulse_candlist *l = &cs->lists[i];
        const rec_eval_result *r = &res[i];
        cJSON *e = cJSON_CreateObject();
        cJSON *items = e ? cJSON_AddArrayToObject(e, "items") : NULL;
        for (int j = 0; items && j < K; j++) cJSON_AddItemToArray(items, cJSON_CreateNumber(l->items[j]));
        cJSON_AddNumberToObject(e, "pos", l->pos);
        cJSON_AddNumberToObject(e, "cand_tokens", (double)r->cand_tokens);
        cJSON *t;
        if (!strcmp(phase, "eval-rank")) {
            cJSON_AddNumberToObject(e, "rank", r->rank);
            t = cJSON_Parse(r->text ? r->text : "");
        } else {
            cJSON_AddNumberToObject(e, "hit", r->hit);
            cJSON_AddNumberToObject(e, "matches", r->matches);
            t = cJSON_CreateString(r->text ? r->text : "");
        }
        extras[b] = e ? cJSON_PrintUnformatted(e) : NULL;
        texts[b] = t ? cJSON_PrintUnformatted(t) : NULL;
        cJSON_Delete(e);
        cJSON_Delete(t);
        if (!extras[b] || !texts[b]) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "eval store: out of memory (user %d)", l->user);
            break;
        }
        pulse_store_row *w = &rows[b];
        w->dataset = pulse_dataset_name(ds);
        w->user = pulse_dataset_user_key(ds, l->user);
        if (!w->user || !*w->user) {
            snprintf(ukey[b], sizeof ukey[b], "#%d", l->user);
            w->user = ukey[b];
        }
        w->phase = phase;
        w->model_hash = mh;
        w->settings_hash = sh;
        w->user_index = l->user;
        w->ok = 1;
        w->text = texts[b];
        w->score = !strcmp(phase, "eval-rank") ? (double)r->rank : (double)r->hit;
        w->attempts = 1;
        w->seconds = seconds / n;
        w->model = model_name;
        w->settings = settings_json;
        w->extra = extras[b];
    }
    if (!st) st = pulse_store_put(s, rows, n);
    for (int b = 0; b < n; b++) {
        if (texts) cJSON_free(texts[b]);
        if (extras) cJSON_free(extras[b]);
    }
    free(rows), free(texts), free(extras), free(ukey);
    return st;
}
