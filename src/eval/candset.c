/* eval/candset.c — owns stored candidate sets: building one list per user from pulse_eval_candidates (so
 * the lists are the sampled protocol's, the history excluded by pulse_eval_excluded), writing them as JSON
 * lines, reading them back with every field checked against the dataset, and the metrics of a model over a
 * set (full scorers such as popularity and SASRec, or list scorers such as the language-model decoders);
 * on several MPI ranks that is collective, split by batches as pulse_evaluate (src/eval/eval.c). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/internal.h"
#include "pulse/dist.h"
#include "pulse/eval.h"
#include "pulse/strbuf.h"

static const char *split_name(pulse_split s) {
    return s == PULSE_SPLIT_TEST ? "test" : s == PULSE_SPLIT_VALID ? "valid" : "train";
}

void pulse_candset_free(pulse_candset *cs) {
    if (!cs) return;
    free(cs->lists);
    free(cs->storage);
    memset(cs, 0, sizeof *cs);
}

static pulse_status candset_alloc(pulse_candset *cs, int n, int k) {
    cs->lists = calloc((size_t)(n > 0 ? n : 1), sizeof *cs->lists);
    cs->storage = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    if (!cs->lists || !cs->storage) {
        pulse_candset_free(cs);
        return pulse_set_error(PULSE_ERR_NOMEM, "candidate set: out of memory for %d lists of %d", n, k);
    }
    for (int i = 0; i < n; i++) cs->lists[i].items = cs->storage + (size_t)i * k;
    return PULSE_OK;
}

pulse_status pulse_candset_build(const pulse_dataset *ds, const pulse_eval_params *pp, const int *users,
                                 int n, pulse_candset *out) {
    memset(out, 0, sizeof *out);
    pulse_eval_params p = pp ? *pp : pulse_eval_default_params();
    if (!ds || n < 0 || (n > 0 && !users)) return pulse_set_error(PULSE_ERR_ARG, "candidate set: no users");
    if (p.split != PULSE_SPLIT_TEST && p.split != PULSE_SPLIT_VALID)
        return pulse_set_error(PULSE_ERR_ARG, "candidate set: expected the valid or test split");
    if (p.n_candidates < 2 || p.n_candidates > pulse_dataset_n_items(ds))
        return pulse_set_error(PULSE_ERR_ARG, "candidate set: expected 2 <= candidates <= %d items, found %d",
                               pulse_dataset_n_items(ds), p.n_candidates);
    pulse_status st = candset_alloc(out, n, p.n_candidates);
    if (st) return st;
    snprintf(out->dataset, sizeof out->dataset, "%s", pulse_dataset_name(ds));
    out->split = p.split;
    out->history = p.history;
    out->seed = p.seed;
    out->n_candidates = p.n_candidates;
    for (int i = 0; i < n && !st; i++) {
        pulse_candlist *l = &out->lists[i];
        l->user = users[i];
        if (users[i] < 0 || users[i] >= pulse_dataset_n_users(ds)) {
            st = pulse_set_error(PULSE_ERR_RANGE, "candidate set: user %d out of range [0, %d)", users[i],
                                 pulse_dataset_n_users(ds));
            break;
        }
        l->target = pulse_split_target(ds, users[i], p.split, NULL);
        if (l->target <= 0) {
            st = pulse_set_error(PULSE_ERR_RANGE,
                                 "candidate set: user %d has no %s target (fewer than 3 items)", users[i],
                                 split_name(p.split));
            break;
        }
        st = pulse_eval_candidates(ds, &p, users[i], l->target, l->items, &l->pos);
    }
    if (st)
        pulse_candset_free(out);
    else
        out->n = n;
    return st;
}

char *pulse_candset_line(const pulse_candset *cs, const pulse_dataset *ds, int i) {
    const pulse_candlist *l = &cs->lists[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", cs->dataset);
    cJSON_AddStringToObject(o, "split", split_name(cs->split));
    cJSON_AddNumberToObject(o, "seed", (double)cs->seed);
    cJSON_AddStringToObject(o, "history", pulse_history_name(cs->history));
    cJSON_AddNumberToObject(o, "user", l->user);
    const char *key = ds ? pulse_dataset_user_key(ds, l->user) : NULL;
    if (key) cJSON_AddStringToObject(o, "user_key", key);
    cJSON_AddNumberToObject(o, "target", l->target);
    cJSON_AddNumberToObject(o, "target_pos", l->pos);
    cJSON *a = cJSON_CreateIntArray(l->items, cs->n_candidates);
    if (a) cJSON_AddItemToObject(o, "items", a);
    char *s = a ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) pulse_set_error(PULSE_ERR_NOMEM, "candidate set: out of memory");
    return s;
}

pulse_status pulse_candset_save(const pulse_candset *cs, const pulse_dataset *ds, const char *path) {
    pulse_strbuf b = {0};
    for (int i = 0; i < cs->n; i++) {
        char *s = pulse_candset_line(cs, ds, i);
        if (!s) {
            pulse_strbuf_free(&b);
            return PULSE_ERR_NOMEM;
        }
        pulse_strbuf_cat(&b, s);
        pulse_strbuf_cat(&b, "\n");
        cJSON_free(s);
    }
    pulse_status st = b.oom ? pulse_set_error(PULSE_ERR_NOMEM, "candidate set: out of memory")
                            : pulse_write_file_atomic(path, pulse_strbuf_str(&b), b.n);
    pulse_strbuf_free(&b);
    return st;
}

static int json_int(const cJSON *o, const char *k, int *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 2147483647.0)
        return -1;
    *v = (int)j->valuedouble;
    return 0;
}

pulse_status pulse_candset_load(const char *path, const pulse_dataset *ds, pulse_candset *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    pulse_status st = pulse_read_file(path, &text, &len);
    if (st) return st;
    int n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    n_lines++;
    int cap = n_lines, n = 0, K = 0, NI = pulse_dataset_n_items(ds), NU = pulse_dataset_n_users(ds);
    pulse_candlist *lists = calloc((size_t)cap, sizeof *lists);
    int *store = NULL;
    size_t store_cap = 0;
    if (!lists) {
        free(text);
        return pulse_set_error(PULSE_ERR_NOMEM, "candidate set: out of memory");
    }
    size_t line_no = 0;
    uint8_t *seen = calloc((size_t)(NU > 0 ? NU : 1), 1);
    if (!seen) st = pulse_set_error(PULSE_ERR_NOMEM, "candidate set: out of memory");
    for (char *p = text; !st && p < text + len;) {
        char *e = memchr(p, '\n', (size_t)(text + len - p));
        if (!e) e = text + len;
        line_no++;
        char *q = p;
        p = e + 1;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == e) continue;
        cJSON *o = cJSON_ParseWithLength(q, (size_t)(e - q));
#define BAD(code, ...)                                                                                       \
    do {                                                                                                     \
        char m_[512];                                                                                        \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                                                \
        st = pulse_set_error(code, "%s:%zu: %s", path, line_no, m_);                                         \
        cJSON_Delete(o);                                                                                     \
        goto next;                                                                                           \
    } while (0)
        if (!cJSON_IsObject(o)) BAD(PULSE_ERR_PARSE, "expected a JSON object");
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(o, "dataset");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "split");
        const cJSON *jh = cJSON_GetObjectItemCaseSensitive(o, "history");
        const cJSON *jseed = cJSON_GetObjectItemCaseSensitive(o, "seed");
        const cJSON *ji = cJSON_GetObjectItemCaseSensitive(o, "items");
        const cJSON *jk = cJSON_GetObjectItemCaseSensitive(o, "user_key");
        if (!cJSON_IsString(jd) || strcmp(jd->valuestring, pulse_dataset_name(ds)) != 0)
            BAD(PULSE_ERR_RANGE, "expected \"dataset\": \"%s\", found %s", pulse_dataset_name(ds),
                cJSON_IsString(jd) ? jd->valuestring : "none");
        pulse_split sp;
        if (cJSON_IsString(js) && !strcmp(js->valuestring, "test"))
            sp = PULSE_SPLIT_TEST;
        else if (cJSON_IsString(js) && !strcmp(js->valuestring, "valid"))
            sp = PULSE_SPLIT_VALID;
        else
            BAD(PULSE_ERR_PARSE, "expected \"split\": \"test\" or \"valid\"");
        pulse_history hm = PULSE_HISTORY_MASK;
        if (cJSON_IsString(jh) && !strcmp(jh->valuestring, "keep")) hm = PULSE_HISTORY_KEEP;
        uint64_t seed = cJSON_IsNumber(jseed) ? (uint64_t)(int64_t)jseed->valuedouble : 0;
        int user, target, pos;
        if (json_int(o, "user", &user) || user < 0 || user >= NU)
            BAD(PULSE_ERR_RANGE, "expected \"user\": an index in [0, %d)", NU);
        if (jk && (!cJSON_IsString(jk) || strcmp(jk->valuestring, pulse_dataset_user_key(ds, user)) != 0))
            BAD(PULSE_ERR_RANGE, "user %d has key '%s' in %s, not '%s'", user,
                pulse_dataset_user_key(ds, user), pulse_dataset_name(ds),
                cJSON_IsString(jk) ? jk->valuestring : "?");
        if (seen[user]) BAD(PULSE_ERR_RANGE, "user %d listed twice", user);
        seen[user] = 1;
        if (json_int(o, "target", &target) || target != pulse_split_target(ds, user, sp, NULL))
            BAD(PULSE_ERR_RANGE, "expected \"target\": %d (user %d's %s item)",
                pulse_split_target(ds, user, sp, NULL), user, sp == PULSE_SPLIT_TEST ? "test" : "valid");
        int k = cJSON_IsArray(ji) ? cJSON_GetArraySize(ji) : 0;
        if (k < 2) BAD(PULSE_ERR_PARSE, "expected \"items\": an array of at least 2 item ids");
        if (n == 0) {
            K = k;
            snprintf(out->dataset, sizeof out->dataset, "%s", jd->valuestring);
            out->split = sp;
            out->history = hm;
            out->seed = seed;
        } else if (k != K)
            BAD(PULSE_ERR_RANGE, "expected %d items as on the first line, found %d", K, k);
        else if (sp != out->split)
            BAD(PULSE_ERR_RANGE, "a different split than the first line");
        if (json_int(o, "target_pos", &pos) || pos < -1 || pos >= k)
            BAD(PULSE_ERR_PARSE, "expected \"target_pos\" in [-1, %d)", k);
        if ((size_t)(n + 1) * (size_t)K > store_cap) {
            size_t nc = store_cap ? store_cap * 2 : (size_t)K * 1024;
            int *ns = realloc(store, sizeof(int) * nc);
            if (!ns) BAD(PULSE_ERR_NOMEM, "out of memory");
            store = ns;
            store_cap = nc;
        }
        int *it = store + (size_t)n * K, j = 0;
        for (const cJSON *x = ji->child; x; x = x->next, j++) {
            if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 1 ||
                x->valuedouble > NI)
                BAD(PULSE_ERR_RANGE, "items[%d]: expected an item id in [1, %d]", j, NI);
            it[j] = (int)x->valuedouble;
        }
        for (j = 0; j < K; j++) {
            if ((j == pos) != (it[j] == target))
                BAD(PULSE_ERR_RANGE, "items[%d] = %d disagrees with target %d at target_pos %d", j, it[j],
                    target, pos);
            for (int q2 = 0; q2 < j; q2++)
                if (it[q2] == it[j]) BAD(PULSE_ERR_RANGE, "item %d listed twice", it[j]);
        }
        lists[n].user = user;
        lists[n].target = target;
        lists[n].pos = pos;
        n++;
        cJSON_Delete(o);
    next:;
#undef BAD
    }
    free(text);
    free(seen);
    if (!st && n == 0) st = pulse_set_error(PULSE_ERR_PARSE, "%s: no candidate lists", path);
    if (st) {
        free(lists);
        free(store);
        memset(out, 0, sizeof *out);
        return st;
    }
    for (int i = 0; i < n; i++) lists[i].items = store + (size_t)i * K;
    out->lists = lists;
    out->storage = store;
    out->n = n;
    out->n_candidates = K;
    return PULSE_OK;
}

pulse_status pulse_evaluate_candset(const pulse_dataset *ds, const pulse_candset *cs, pulse_score_fn fn,
                                    pulse_cand_score_fn cfn, void *ctx, int batch, pulse_metrics *out) {
    memset(out, 0, sizeof *out);
    if (!ds || !cs || cs->n <= 0) return pulse_set_error(PULSE_ERR_ARG, "evaluate: empty candidate set");
    if (!fn == !cfn) return pulse_set_error(PULSE_ERR_ARG, "evaluate: give one scoring function");
    const int K = cs->n_candidates, NI = pulse_dataset_n_items(ds);
    int B = batch > 0 ? batch : 256;
    if (B > cs->n) B = cs->n;
    const size_t row = (size_t)NI + 1;
    if (fn) {
        size_t maxb = ((size_t)512 << 20) / (row * sizeof(float));
        if (maxb < 1) maxb = 1;
        if ((size_t)B > maxb) B = (int)maxb;
    }
    int *users = malloc(sizeof(int) * (size_t)B), *hlen = malloc(sizeof(int) * (size_t)B);
    const int **hist = malloc(sizeof(int *) * (size_t)B);
    int *cands = malloc(sizeof(int) * (size_t)B * K);
    float *scores = malloc(sizeof(float) * (fn ? row : (size_t)K) * (size_t)B);
    float *cs_buf = malloc(sizeof(float) * (size_t)K);
    int *ranks = calloc((size_t)cs->n, sizeof(int)); /* per list, added up in list order at the end */
    pulse_status st = PULSE_OK;
    if (!users || !hlen || !hist || !cands || !scores || !cs_buf || !ranks)
        st = pulse_set_error(PULSE_ERR_NOMEM,
                             "evaluate: out of memory"); /* no batch runs; ranks agree below */
    pulse_progress pr;
    pulse_progress_begin(&pr, "eval candidates", "user", (size_t)cs->n);
    for (int b0 = 0, bi = 0; b0 < cs->n && !st; b0 += B, bi++) {
        int nb = cs->n - b0 < B ? cs->n - b0 : B;
        if (bi % pulse_dist_size() != pulse_dist_rank()) continue; /* another rank's batch */
        for (int b = 0; b < nb; b++) {
            const pulse_candlist *l = &cs->lists[b0 + b];
            int len;
            users[b] = l->user;
            pulse_split_target(ds, l->user, cs->split, &hlen[b]);
            hist[b] = pulse_dataset_user_seq(ds, l->user, &len);
            memcpy(cands + (size_t)b * K, l->items, sizeof(int) * (size_t)K);
        }
        size_t ns = (fn ? row : (size_t)K) * (size_t)nb;
        for (size_t i = 0; i < ns; i++) scores[i] = NAN;
        st = fn ? fn(ctx, nb, users, hist, hlen, scores) : cfn(ctx, nb, users, hist, hlen, cands, K, scores);
        if (st) {
            pulse_wrap_error(st, "evaluate: the model failed to score users %d..%d", users[0], users[nb - 1]);
            break;
        }
        for (int b = 0; b < nb; b++) {
            const pulse_candlist *l = &cs->lists[b0 + b];
            const float *s;
            if (fn) {
                for (int j = 0; j < K; j++) cs_buf[j] = scores[row * (size_t)b + (size_t)l->items[j]];
                s = cs_buf;
            } else
                s = scores + (size_t)K * b;
            ranks[b0 + b] = pulse_rank_list(s, K, l->pos);
        }
        pulse_progress_update(&pr, (size_t)(b0 + nb), NULL);
    }
    st = pulse_eval_gather_ranks(st, ranks, cs->n);
    if (!st) {
        for (int i = 0; i < cs->n; i++) {
            pulse_metrics_add_rank(out, ranks[i]);
            out->n_repeat += pulse_split_target_repeats(ds, cs->lists[i].user, cs->split);
        }
        pulse_progress_end(&pr, (size_t)cs->n, NULL);
        pulse_metrics_finish(out);
    }
    free(users);
    free(hlen);
    free(hist);
    free(cands);
    free(scores);
    free(cs_buf);
    free(ranks);
    return st;
}
