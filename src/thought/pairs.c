/* thought/pairs.c — owns (behaviour, rationale) pair files: the authors' behaviour text, the JSONL reader,
 * and the stand-in pair builder (rationale = chosen item's categories + brand + title words absent from the
 * history) used until Phase-1 rationales exist. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/data.h"
#include "pulse/strbuf.h"
#include "pulse/thought.h"

char *pulse_behaviour_text(const char *const *history, int n, const char *answer) {
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, "[CONTEXT] History: ");
    for (int i = 0; i < n; i++) {
        if (i) pulse_strbuf_cat(&b, ", ");
        pulse_strbuf_cat(&b, history[i]);
    }
    pulse_strbuf_cat(&b, " [CHOSEN_ITEM] ");
    pulse_strbuf_cat(&b, answer);
    if (b.oom) {
        pulse_strbuf_free(&b);
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory building behaviour text");
        return NULL;
    }
    return b.s;
}

void pulse_pairs_free(pulse_pair *p, int n) {
    for (int i = 0; p && i < n; i++) {
        free(p[i].user);
        free(p[i].behaviour);
        free(p[i].rationale);
    }
    free(p);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* a JSON escape \u0000 in s (an escaped backslash followed by u0000 is text, not NUL) */
static int has_escaped_nul(const char *s) {
    for (; *s; s++) {
        if (*s != '\\') continue;
        if (s[1] == 'u' && strncmp(s + 2, "0000", 4) == 0) return 1;
        if (s[1]) s++; /* skip the escaped character */
    }
    return 0;
}

pulse_status pulse_pairs_load(const char *path, pulse_pair **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return pulse_set_error(PULSE_ERR_IO, "%s: cannot open", path);
    pulse_pair *v = NULL;
    int n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    pulse_status st = PULSE_OK;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if ((ssize_t)strlen(line) != got) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%d: NUL byte inside a line", path, lineno);
            break;
        }
        if (has_escaped_nul(line)) { /* cJSON would end the string there: a silently cut text */
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%d: \\u0000 (NUL) inside a string", path, lineno);
            break;
        }
        cJSON *j = cJSON_Parse(line);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%d: expected a JSON object per line", path, lineno);
            break;
        }
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(j, "user");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(j, "behaviour");
        const cJSON *rat = cJSON_GetObjectItemCaseSensitive(j, "rationale");
        char ubuf[32], *behaviour = NULL;
        const char *ustr = NULL;
        if (cJSON_IsString(user))
            ustr = user->valuestring;
        else if (cJSON_IsNumber(user)) {
            snprintf(ubuf, sizeof ubuf, "%.0f", user->valuedouble);
            ustr = ubuf;
        }
        if (cJSON_IsString(beh)) {
            behaviour = dupstr(beh->valuestring);
        } else {
            const cJSON *hist = cJSON_GetObjectItemCaseSensitive(j, "history");
            const cJSON *ans = cJSON_GetObjectItemCaseSensitive(j, "answer");
            if (cJSON_IsString(ans) && (cJSON_IsArray(hist) || cJSON_IsString(hist))) {
                if (cJSON_IsString(hist)) {
                    const char *h1[1] = {hist->valuestring};
                    behaviour = pulse_behaviour_text(h1, 1, ans->valuestring);
                } else {
                    int hn = cJSON_GetArraySize(hist);
                    const char **hs = calloc((size_t)(hn ? hn : 1), sizeof(char *));
                    int k = 0, bad = !hs;
                    const cJSON *it;
                    cJSON_ArrayForEach(it, hist) {
                        if (!bad && cJSON_IsString(it))
                            hs[k++] = it->valuestring;
                        else
                            bad = 1;
                    }
                    if (!bad) behaviour = pulse_behaviour_text(hs, k, ans->valuestring);
                    free(hs);
                }
            }
        }
        if (!ustr || !behaviour || !cJSON_IsString(rat)) {
            free(behaviour);
            cJSON_Delete(j);
            st = pulse_set_error(
                PULSE_ERR_PARSE,
                "%s:%d: expected fields \"user\", \"rationale\" (string) and \"behaviour\" (string) "
                "or \"history\" (array of strings) + \"answer\" (string)",
                path, lineno);
            break;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 256;
            pulse_pair *nv = realloc(v, sizeof(pulse_pair) * (size_t)nc);
            if (!nv) {
                free(behaviour);
                cJSON_Delete(j);
                st = pulse_set_error(PULSE_ERR_NOMEM, "%s:%d: out of memory", path, lineno);
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n].user = dupstr(ustr);
        v[n].behaviour = behaviour;
        v[n].rationale = dupstr(rat->valuestring);
        n++;
        cJSON_Delete(j);
        if (!v[n - 1].user || !v[n - 1].rationale) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "%s:%d: out of memory", path, lineno);
            break;
        }
    }
    free(line);
    fclose(f);
    if (st != PULSE_OK) {
        pulse_pairs_free(v, n);
        return st;
    }
    if (n == 0) {
        free(v);
        return pulse_set_error(PULSE_ERR_PARSE, "%s: no pairs found", path);
    }
    *out = v;
    *n_out = n;
    return PULSE_OK;
}

pulse_standin_params pulse_standin_default_params(void) {
    pulse_standin_params p = {6000, 1000, 10, 42};
    return p;
}

/* lower-cased alphanumeric words of s, each appended to the list in words (separated by NULs) */
static int word_in(const char *w, size_t wl, const char *text) {
    /* case-insensitive whole-word search */
    size_t tl = strlen(text);
    for (size_t i = 0; i + wl <= tl; i++) {
        if (i > 0 && isalnum((unsigned char)text[i - 1])) continue;
        if (strncasecmp(text + i, w, wl) != 0) continue;
        if (i + wl < tl && isalnum((unsigned char)text[i + wl])) continue;
        return 1;
    }
    return 0;
}

static int emit_pair(FILE *f, const pulse_dataset *ds, int u, int max_hist) {
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, u, &len);
    int tl = pulse_split_train_len(ds, u);
    if (tl < 2) return 0;
    int chosen = seq[tl - 1], h0 = tl - 1 > max_hist ? tl - 1 - max_hist : 0;
    const char *ctitle = pulse_dataset_item_title(ds, chosen);
    if (!ctitle) return 0;
    cJSON *o = cJSON_CreateObject(), *hist = cJSON_AddArrayToObject(o, "history");
    cJSON_AddStringToObject(o, "user", pulse_dataset_user_key(ds, u));
    for (int i = h0; i < tl - 1; i++) {
        const char *t = pulse_dataset_item_title(ds, seq[i]);
        cJSON_AddItemToArray(hist, cJSON_CreateString(t ? t : ""));
    }
    cJSON_AddStringToObject(o, "answer", ctitle);
    /* rationale: categories (leaf path) + brand + title words not in any history title */
    pulse_strbuf r = {0};
    const char *cats = pulse_dataset_item_field(ds, chosen, "categories");
    const char *brand = pulse_dataset_item_field(ds, chosen, "brand");
    if (cats && *cats) {
        const char *bar = strstr(cats, " | ");
        pulse_strbuf_cat(&r, "It belongs to ");
        pulse_strbuf_put(&r, cats, bar ? (size_t)(bar - cats) : strlen(cats));
        pulse_strbuf_cat(&r, ". ");
    }
    if (brand && *brand && strcmp(brand, "Unknown") != 0) {
        pulse_strbuf_cat(&r, "The brand is ");
        pulse_strbuf_cat(&r, brand);
        pulse_strbuf_cat(&r, ". ");
    }
    pulse_strbuf words = {0};
    for (const char *p = ctitle; *p;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        const char *s = p;
        while (*p && isalnum((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - s);
        if (wl < 3) continue;
        int seen = 0;
        for (int i = h0; i < tl - 1 && !seen; i++) {
            const char *t = pulse_dataset_item_title(ds, seq[i]);
            seen = t && word_in(s, wl, t);
        }
        if (!seen && !(words.s && word_in(s, wl, words.s))) {
            if (words.n) pulse_strbuf_cat(&words, " ");
            pulse_strbuf_put(&words, s, wl);
        }
    }
    if (words.n) {
        pulse_strbuf_cat(&r, "New to this user: ");
        for (size_t i = 0; i < words.n; i++) words.s[i] = (char)tolower((unsigned char)words.s[i]);
        pulse_strbuf_cat(&r, words.s);
        pulse_strbuf_cat(&r, ".");
    }
    const int oom = words.oom || r.oom;
    pulse_strbuf_free(&words);
    cJSON_AddStringToObject(o, "rationale", r.n ? r.s : ctitle);
    pulse_strbuf_free(&r);
    if (oom) {
        cJSON_Delete(o);
        return -1;
    }
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return -1;
    fprintf(f, "%s\n", line);
    cJSON_free(line);
    return 1;
}

pulse_status pulse_thought_build_standin_pairs(const pulse_dataset *ds, const pulse_standin_params *pp,
                                               const char *train_path, const char *heldout_path, int *n_train,
                                               int *n_heldout) {
    pulse_standin_params p = pp ? *pp : pulse_standin_default_params();
    int U = pulse_dataset_n_users(ds);
    if (!pulse_dataset_item_title(ds, 1))
        return pulse_set_error(PULSE_ERR_ARG, "dataset '%s' has no item titles: stand-in pairs need them",
                               pulse_dataset_name(ds));
    int *order = malloc(sizeof(int) * (size_t)U);
    if (!order) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < U; i++) order[i] = i;
    pulse_rng rng;
    pulse_rng_seed(&rng, p.seed);
    pulse_rng_shuffle_int(&rng, order, (size_t)U);
    char *tb = NULL, *hb = NULL;
    size_t tl = 0, hl = 0;
    FILE *ft = open_memstream(&tb, &tl), *fh = open_memstream(&hb, &hl);
    int nt = 0, nh = 0, err = 0;
    for (int k = 0; k < U && (nt < p.n_train || nh < p.n_heldout) && !err; k++) {
        int held = nh < p.n_heldout && (k % 2 == 1 || nt >= p.n_train);
        int r = emit_pair(held ? fh : ft, ds, order[k], p.max_history);
        if (r < 0) err = 1;
        if (r > 0) {
            if (held)
                nh++;
            else
                nt++;
        }
    }
    fclose(ft);
    fclose(fh);
    free(order);
    pulse_status st = err ? pulse_set_error(PULSE_ERR_NOMEM, "out of memory writing pairs") : PULSE_OK;
    if (st == PULSE_OK) st = pulse_write_file_atomic(train_path, tb, tl);
    if (st == PULSE_OK && heldout_path) st = pulse_write_file_atomic(heldout_path, hb, hl);
    free(tb);
    free(hb);
    if (n_train) *n_train = nt;
    if (n_heldout) *n_heldout = nh;
    return st;
}
