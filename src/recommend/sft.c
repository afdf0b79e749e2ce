/* recommend/sft.c — owns `pulse sft build`: the users of the seeded order, their rationales from the store
 * (phase1 or tot rows of one model / settings key), the training lines (the authors' training prompt with the
 * rationale, completion = the target title in quotes; what `pulse lm train` reads) and the test lines (the
 * stored candidate lists of the test split with their prompts). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/rationale.h"
#include "pulse/recommend.h"
#include "pulse/strbuf.h"

pulse_sft_build_params pulse_sft_build_default_params(void) {
    pulse_sft_build_params p;
    memset(&p, 0, sizeof p);
    p.prompt = pulse_rec_prompt_default_params();
    p.rationale = PULSE_REC_RAT_NONE;
    p.seed = 42;
    p.test_candidates = 5;
    p.history = PULSE_HISTORY_MASK;
    return p;
}

pulse_status pulse_rec_select_users(const pulse_dataset *ds, int n, uint64_t seed, int **users, int *n_out) {
    int nu = pulse_dataset_n_users(ds);
    if (n <= 0 || n > nu) n = nu;
    *users = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    *n_out = 0;
    if (!*users) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    pulse_status st = pulse_record_select_users(ds, n, seed, *users, n_out);
    if (st) {
        free(*users);
        *users = NULL;
    }
    return st;
}

/* ---- the store's rationales ---- */
typedef struct {
    char mh[17], sh[17];
    int ok;
} key_count;

typedef struct {
    const pulse_dataset *ds;
    const char *name;
    key_count *keys;
    int n_keys, cap_keys;
    const char *want_mh, *want_sh; /* second pass: the key */
    char **text;                   /* (n_users) second pass */
    int oom;
} store_scan;

static int scan_count(void *ud, const pulse_store_row *row) {
    store_scan *s = ud;
    if (!row->ok || !row->text || strcmp(row->dataset, s->name) != 0) return 0;
    if (s->want_mh && strcmp(row->model_hash, s->want_mh) != 0) return 0;
    if (s->want_sh && strcmp(row->settings_hash, s->want_sh) != 0) return 0;
    for (int i = 0; i < s->n_keys; i++)
        if (!strcmp(s->keys[i].mh, row->model_hash) && !strcmp(s->keys[i].sh, row->settings_hash)) {
            s->keys[i].ok++;
            return 0;
        }
    if (s->n_keys == s->cap_keys) {
        int c = s->cap_keys ? 2 * s->cap_keys : 8;
        key_count *k = realloc(s->keys, sizeof *k * (size_t)c);
        if (!k) {
            s->oom = 1;
            return 1;
        }
        s->keys = k;
        s->cap_keys = c;
    }
    key_count *k = &s->keys[s->n_keys++];
    snprintf(k->mh, sizeof k->mh, "%s", row->model_hash);
    snprintf(k->sh, sizeof k->sh, "%s", row->settings_hash);
    k->ok = 1;
    return 0;
}

static int scan_text(void *ud, const pulse_store_row *row) {
    store_scan *s = ud;
    if (!row->ok || !row->text || strcmp(row->dataset, s->name) != 0) return 0;
    if (strcmp(row->model_hash, s->want_mh) != 0 || strcmp(row->settings_hash, s->want_sh) != 0) return 0;
    int u = row->user_index;
    if (u < 0 || u >= pulse_dataset_n_users(s->ds)) return 0;
    const char *key = pulse_dataset_user_key(s->ds, u);
    if (!key || strcmp(key, row->user) != 0) return 0; /* a row of another version of the dataset */
    if (s->text[u]) return 0;
    if (!(s->text[u] = strdup(row->text))) {
        s->oom = 1;
        return 1;
    }
    return 0;
}

/* text[u] = the rationale of user u under the chosen key (NULL: none) */
static pulse_status load_rationales(const pulse_dataset *ds, const pulse_sft_build_params *p, char **text,
                                    pulse_sft_build_report *r) {
    if (!p->db)
        return pulse_set_error(PULSE_ERR_ARG, "sft build: --rationales %s needs a store (--db FILE)",
                               pulse_rec_rationale_name(p->rationale));
    const char *phase = p->rationale == PULSE_REC_RAT_PHASE1 ? "phase1" : "tot";
    pulse_store *db = NULL;
    pulse_status st = pulse_store_open(p->db, 1, &db);
    if (st) return pulse_wrap_error(st, "sft build: opening the store %s", p->db);
    store_scan s = {0};
    s.ds = ds;
    s.name = pulse_dataset_name(ds);
    s.want_mh = p->model_hash;
    s.want_sh = p->settings_hash;
    s.text = text;
    st = pulse_store_each(db, phase, NULL, scan_count, &s);
    if (!st && s.oom) st = pulse_set_error(PULSE_ERR_NOMEM, "sft build: out of memory");
    if (!st && s.n_keys == 0)
        st = pulse_set_error(
            PULSE_ERR_RANGE, "sft build: the store %s has no ok %s rationale of dataset %s%s%s%s%s", p->db,
            phase, s.name, p->model_hash ? " with model hash " : "", p->model_hash ? p->model_hash : "",
            p->settings_hash ? " and settings hash " : "", p->settings_hash ? p->settings_hash : "");
    if (!st) {
        /* the key with the most ok rows (ties: the smaller hashes) */
        int best = 0;
        for (int i = 1; i < s.n_keys; i++) {
            int c = s.keys[i].ok - s.keys[best].ok;
            if (c == 0) c = -strcmp(s.keys[i].mh, s.keys[best].mh);
            if (c == 0) c = -strcmp(s.keys[i].sh, s.keys[best].sh);
            if (c > 0) best = i;
        }
        snprintf(r->model_hash, sizeof r->model_hash, "%s", s.keys[best].mh);
        snprintf(r->settings_hash, sizeof r->settings_hash, "%s", s.keys[best].sh);
        s.want_mh = r->model_hash;
        s.want_sh = r->settings_hash;
        st = pulse_store_each(db, phase, NULL, scan_text, &s);
        if (!st && s.oom) st = pulse_set_error(PULSE_ERR_NOMEM, "sft build: out of memory");
    }
    free(s.keys);
    pulse_store_close(db);
    return st;
}

/* ---- lines ---- */
static pulse_status ob_line(pulse_strbuf *b, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return pulse_set_error(PULSE_ERR_NOMEM, "sft build: out of memory");
    pulse_strbuf_cat(b, s);
    pulse_strbuf_cat(b, "\n");
    cJSON_free(s);
    return b->oom ? pulse_set_error(PULSE_ERR_NOMEM, "sft build: out of memory") : PULSE_OK;
}

/* "prompt" (raw text), "completion" and, for chat, "chat": {"user", "assistant"} */
static void add_prompt(cJSON *o, const pulse_rec_prompt *pr, int chat) {
    char *raw = pulse_rec_prompt_raw(pr);
    cJSON_AddStringToObject(o, "prompt", raw ? raw : "");
    free(raw);
    if (pr->completion) cJSON_AddStringToObject(o, "completion", pr->completion);
    if (chat) {
        cJSON *c = cJSON_AddObjectToObject(o, "chat");
        if (c) {
            cJSON_AddStringToObject(c, "user", pr->user);
            cJSON_AddStringToObject(c, "assistant", pr->prefix);
        }
    }
}

pulse_status pulse_sft_build(const char *data, const pulse_sft_build_params *pp, const char *out_train,
                             const char *out_test, pulse_sft_build_report *r) {
    pulse_sft_build_params p = pp ? *pp : pulse_sft_build_default_params();
    pulse_sft_build_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = pulse_now();
    if (p.prompt.train_candidates < 2 || p.test_candidates < 2)
        return pulse_set_error(PULSE_ERR_ARG, "sft build: expected >= 2 candidates");
    pulse_dataset *ds = NULL;
    pulse_status st = pulse_dataset_load(data, NULL, &ds);
    if (st) return st;
    int *users = NULL, nu = 0, N = pulse_dataset_n_users(ds);
    char **rat = calloc((size_t)(N > 0 ? N : 1), sizeof(char *));
    int *cands = malloc(sizeof(int) * (size_t)p.prompt.train_candidates);
    pulse_strbuf tr = {0}, te = {0};
    pulse_candset cs = {0};
    if (!rat || !cands) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "sft build: out of memory");
        goto out;
    }
    if ((st = pulse_rec_select_users(ds, p.users, p.seed, &users, &nu))) goto out;
    rep.users = nu;
    if (p.rationale != PULSE_REC_RAT_NONE && (st = load_rationales(ds, &p, rat, &rep))) goto out;
    /* training lines */
    for (int i = 0; out_train && i < nu && !st; i++) {
        int u = users[i], target, hl, pos, len;
        const char *rt = rat[u];
        if (p.rationale != PULSE_REC_RAT_NONE && !rt) {
            rep.no_rationale++;
            continue;
        }
        if (pulse_split_train_len(ds, u) < 2) continue;
        if ((st = pulse_rec_train_candidates(ds, u, p.prompt.train_candidates, p.seed, &target, &hl, cands,
                                             &pos)))
            break;
        const int *seq = pulse_dataset_user_seq(ds, u, &len);
        rep.train_cut += hl < p.prompt.train_history;
        pulse_rec_prompt pr;
        if ((st = pulse_rec_prompt_build(ds, seq, hl, p.prompt.train_history, cands,
                                         p.prompt.train_candidates, rt, target, p.prompt.title_bytes, &pr)))
            break;
        cJSON *o = cJSON_CreateObject();
        add_prompt(o, &pr, p.prompt.chat);
        cJSON_AddNumberToObject(o, "user", u);
        cJSON_AddStringToObject(o, "user_key", pulse_dataset_user_key(ds, u));
        cJSON_AddNumberToObject(o, "target", target);
        cJSON_AddNumberToObject(o, "target_pos", pos);
        cJSON *a = cJSON_CreateIntArray(cands, p.prompt.train_candidates);
        if (a) cJSON_AddItemToObject(o, "items", a);
        cJSON_AddStringToObject(o, "rationale", pulse_rec_rationale_name(p.rationale));
        pulse_rec_prompt_free(&pr);
        if ((st = ob_line(&tr, o))) break;
        rep.train++;
    }
    /* test lines: the stored candidate lists of the test split */
    if (!st && out_test) {
        pulse_eval_params ep = pulse_eval_default_params();
        ep.protocol = PULSE_PROTOCOL_SAMPLED;
        ep.split = PULSE_SPLIT_TEST;
        ep.history = p.history;
        ep.n_candidates = p.test_candidates;
        ep.seed = p.seed;
        if ((st = pulse_candset_build(ds, &ep, users, nu, &cs))) goto out;
        for (int i = 0; i < cs.n && !st; i++) {
            const pulse_candlist *l = &cs.lists[i];
            int hl, len;
            pulse_split_target(ds, l->user, PULSE_SPLIT_TEST, &hl);
            const int *seq = pulse_dataset_user_seq(ds, l->user, &len);
            pulse_rec_prompt pr;
            if ((st = pulse_rec_prompt_build(ds, seq, hl, p.prompt.test_history, l->items, cs.n_candidates,
                                             NULL, l->target, p.prompt.title_bytes, &pr)))
                break;
            char *line = pulse_candset_line(&cs, ds, i);
            cJSON *o = line ? cJSON_Parse(line) : NULL;
            cJSON_free(line);
            if (o) add_prompt(o, &pr, p.prompt.chat);
            pulse_rec_prompt_free(&pr);
            if ((st = ob_line(&te, o))) break;
            rep.test++;
        }
    }
    if (!st && out_train && rep.train == 0)
        st = pulse_set_error(PULSE_ERR_RANGE,
                             "sft build: no training example (%d users, %d without a rationale)", nu,
                             rep.no_rationale);
    if (!st && out_train) st = pulse_write_file_atomic(out_train, pulse_strbuf_str(&tr), tr.n);
    if (!st && out_test) st = pulse_write_file_atomic(out_test, pulse_strbuf_str(&te), te.n);
out:
    rep.seconds = pulse_now() - t0;
    if (r) *r = rep;
    pulse_candset_free(&cs);
    pulse_strbuf_free(&tr);
    pulse_strbuf_free(&te);
    for (int u = 0; rat && u < N; u++) free(rat[u]);
    free(rat);
    free(cands);
    free(users);
    pulse_dataset_free(ds);
    return st;
}
