/* data/read_table.c — owns the interaction-table readers: RecBole atomic .inter/.item files and Amazon Review
 * 2018 raw JSON-lines reviews + meta_*.json (plain or .gz; exact duplicates dropped, k-core filter iterated
 * to a fixed point, chronological order with ties kept in file order, titles/brand/categories from the
 * metadata, ratings and optionally review text per interaction). Both build the dataset through the same row
 * sorter. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

typedef struct {
    int u, i; /* user / item index in order of first appearance */
    float r;
    int keep;
    double t;
    size_t order; /* row number among the valid rows of the file */
} row;

typedef struct {
    row *v;
    size_t n, cap;
} rows;

static pulse_status rows_push(rows *a, row x) {
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 1 << 14;
        row *nv = realloc(a->v, nc * sizeof(row));
        if (!nv) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory at %zu interactions", a->n);
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return PULSE_OK;
}

static int cmp_row(const void *pa, const void *pb) {
    const row *a = pa, *b = pb;
    if (a->u != b->u) return a->u < b->u ? -1 : 1;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* keys in first-appearance order (index -> key) out of a strmap */
static const char **keys_by_index(const pd_strmap *m) {
    const char **k = calloc(m->n ? m->n : 1, sizeof(char *));
    if (!k) {
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < m->n; i++) k[m->vals[i]] = pd_strmap_key(m, i);
    return k;
}

static int all_numeric(const char **k, size_t n) {
    for (size_t i = 0; i < n; i++) {
        long long v;
        if (pd_parse_uint(k[i], strlen(k[i]), 999999999999LL, &v) != 0) return 0;
    }
    return 1;
}

static _Thread_local const char **g_sort_keys;
static int cmp_numkey(const void *pa, const void *pb) {
    long long a = atoll(g_sort_keys[*(const int *)pa]), b = atoll(g_sort_keys[*(const int *)pb]);
    if (a != b) return a < b ? -1 : 1;
    return (*(const int *)pa > *(const int *)pb) - (*(const int *)pa < *(const int *)pb);
}

/* newid[old] = 0-based rank: numeric order when every key is a number, else first appearance. */
static pulse_status number_keys(const char **keys, size_t n, int *newid) {
    if (!all_numeric(keys, n)) {
        for (size_t i = 0; i < n; i++) newid[i] = (int)i;
        return PULSE_OK;
    }
    int *perm = malloc(sizeof(int) * (n ? n : 1));
    if (!perm) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    g_sort_keys = keys; /* qsort has no context argument: thread-local, so loaders may run in parallel */
    qsort(perm, n, sizeof(int), cmp_numkey);
    for (size_t i = 0; i < n; i++) newid[perm[i]] = (int)i;
    free(perm);
    return PULSE_OK;
}

/* Build ds from the kept rows. unew[old user] = new user index (-1 dropped); inew[old item] = new item id
 * (1-based) or 0 to number items by first appearance in the sorted sequences. */
static pulse_status build(pulse_dataset *ds, rows *a, const char **ukeys, int n_uold, int *unew,
                          const char **ikeys, int n_iold, int *inew, int has_ts, int has_rating) {
    size_t n = 0;
    int nu = 0;
    for (int u = 0; u < n_uold; u++)
        if (unew[u] >= 0 && unew[u] + 1 > nu) nu = unew[u] + 1;
    for (size_t k = 0; k < a->n; k++) {
        if (!a->v[k].keep) continue;
        row x = a->v[k];
        x.u = unew[x.u];
        a->v[n++] = x;
    }
    a->n = n;
    qsort(a->v, n, sizeof(row), cmp_row);
    int ni = 0;
    for (int i = 0; i < n_iold; i++)
        if (inew[i] > ni) ni = inew[i];
    if (ni == 0) { /* first appearance in the sorted sequences */
        for (size_t k = 0; k < n; k++)
            if (inew[a->v[k].i] == 0) inew[a->v[k].i] = ++ni;
    }
    ds->n_users = nu;
    ds->n_items = ni;
    ds->n_inter = n;
    ds->offs = calloc((size_t)nu + 1, sizeof(size_t));
    ds->items = malloc(sizeof(int) * (n ? n : 1));
    ds->user_key = calloc((size_t)nu + 1, sizeof(char *));
    ds->item_key = calloc((size_t)ni + 1, sizeof(char *));
    if (has_ts) ds->ts = malloc(sizeof(double) * (n ? n : 1));
    if (has_rating) ds->rating = malloc(sizeof(float) * (n ? n : 1));
    if (!ds->offs || !ds->items || !ds->user_key || !ds->item_key || (has_ts && !ds->ts) ||
        (has_rating && !ds->rating))
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory building a dataset of %zu interactions", n);
    for (size_t k = 0; k < n; k++) {
        const row *x = &a->v[k];
        ds->items[k] = inew[x->i];
        ds->offs[x->u + 1]++;
        if (has_ts) ds->ts[k] = x->t;
        if (has_rating) ds->rating[k] = x->r;
    }
    for (int u = 0; u < nu; u++) ds->offs[u + 1] += ds->offs[u];
    for (int u = 0; u < n_uold; u++)
        if (unew[u] >= 0) {
            ds->user_key[unew[u]] = pd_arena_strndup(&ds->arena, ukeys[u], strlen(ukeys[u]));
            if (!ds->user_key[unew[u]]) return PULSE_ERR_NOMEM;
        }
    for (int i = 0; i < n_iold; i++)
        if (inew[i] > 0) {
            ds->item_key[inew[i]] = pd_arena_strndup(&ds->arena, ikeys[i], strlen(ikeys[i]));
            if (!ds->item_key[inew[i]]) return PULSE_ERR_NOMEM;
        }
    return PULSE_OK;
}

/* ======================= RecBole atomic files ======================= */

static int parse_double(const char *s, double *out) {
    char *end = NULL;
    if (!*s) return -1;
    double v = strtod(s, &end);
    if (!end || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

pulse_status pd_load_recbole(const char *path_inter, const char *path_item, const pulse_data_params *p,
                             pulse_dataset *ds) {
    (void)p;
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path_inter);
    if (st) return st;
    char *line;
    size_t len;
    int got = pd_reader_next(&r, &line, &len);
    if (got <= 0) {
        pd_reader_close(&r);
        return got < 0 ? r.err
                       : pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected a header line, found an empty file",
                                         path_inter);
    }
    enum { MAXC = 64 };
    char *f[MAXC];
    size_t nc = pd_split_tabs(line, f, MAXC);
    int cu = -1, ci = -1, ct = -1, cr = -1;
    for (size_t c = 0; c < nc && c < MAXC; c++) {
        if (strncmp(f[c], "user_id:", 8) == 0) cu = (int)c;
        if (strncmp(f[c], "item_id:", 8) == 0) ci = (int)c;
        if (strncmp(f[c], "timestamp:", 10) == 0) ct = (int)c;
        if (strncmp(f[c], "rating:", 7) == 0) cr = (int)c;
    }
    if (cu < 0 || ci < 0) {
        st = pulse_set_error(PULSE_ERR_PARSE,
                             "%s:1: expected a RecBole header with user_id:token and item_id:token columns, "
                             "found '%s'",
                             path_inter, pd_esc(f[0], (size_t)-1, 120));
        pd_reader_close(&r);
        return st;
    }
    pd_strmap um, im;
    pd_strmap_init(&um);
    pd_strmap_init(&im);
    rows a = {0};
    while ((got = pd_reader_next(&r, &line, &len)) == 1) {
        if (len == 0) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected an interaction row, found an empty line",
                                 path_inter, r.line_no);
            break;
        }
        size_t n = pd_split_tabs(line, f, MAXC);
        if (n != nc) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected %zu tab-separated fields, found %zu",
                                 path_inter, r.line_no, nc, n);
            break;
        }
        if (!f[cu][0] || !f[ci][0]) {
            st = pulse_set_error(PULSE_ERR_PARSE,
                                 "%s:%zu: expected a user and an item token, found an empty field",
                                 path_inter, r.line_no);
            break;
        }
        row x = {0};
        x.keep = 1;
        x.order = a.n;
        x.r = NAN;
        if (ct >= 0 && parse_double(f[ct], &x.t) != 0) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected a timestamp (a number), found '%s'",
                                 path_inter, r.line_no, pd_esc(f[ct], (size_t)-1, 40));
            break;
        }
        double rv;
        if (cr >= 0) {
            if (parse_double(f[cr], &rv) != 0) {
                st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected a rating (a number), found '%s'",
                                     path_inter, r.line_no, pd_esc(f[cr], (size_t)-1, 40));
                break;
            }
            x.r = (float)rv;
        }
        if (um.n >= 0x7fffffff || im.n >= PD_MAX_ITEM_ID) {
            st = pulse_set_error(PULSE_ERR_RANGE, "%s:%zu: too many distinct users or items", path_inter,
                                 r.line_no);
            break;
        }
        if ((st = pd_strmap_put(&um, f[cu], strlen(f[cu]), (int)um.n, NULL, &x.u))) break;
        if ((st = pd_strmap_put(&im, f[ci], strlen(f[ci]), (int)im.n, NULL, &x.i))) break;
        if ((st = rows_push(&a, x))) break;
    }
    if (got < 0) st = r.err;
    pd_reader_close(&r);
    if (!st && a.n == 0)
        st = pulse_set_error(PULSE_ERR_PARSE, "%s:2: expected interaction rows, found none", path_inter);
    const char **uk = NULL, **ik = NULL;
    int *unew = NULL, *inew = NULL;
    if (!st) {
        uk = keys_by_index(&um);
        ik = keys_by_index(&im);
        unew = malloc(sizeof(int) * (um.n + 1));
        inew = malloc(sizeof(int) * (im.n + 1));
        if (!uk || !ik || !unew || !inew) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    if (!st) st = number_keys(uk, um.n, unew);
    if (!st) st = number_keys(ik, im.n, inew);
    if (!st) {
        for (size_t i = 0; i < im.n; i++) inew[i] += 1;
        st = build(ds, &a, uk, (int)um.n, unew, ik, (int)im.n, inew, ct >= 0, cr >= 0);
    }
    if (!st && path_item) {
        /* the .item file joins through the item tokens: map token -> new id */
        pd_strmap tm;
        pd_strmap_init(&tm);
        for (size_t i = 0; i < im.n && !st; i++)
            st = pd_strmap_put(&tm, ik[i], strlen(ik[i]), inew[i], NULL, NULL);
        if (!st) st = pd_read_items_tsv(ds, path_item, "item_id", 0, 1, &tm);
        pd_strmap_free(&tm);
    }
    free(uk);
    free(ik);
    free(unew);
    free(inew);
    free(a.v);
    pd_strmap_free(&um);
    pd_strmap_free(&im);
    return st;
}

/* ======================= Amazon Review 2018 ======================= */
static const char *json_str(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static pulse_status parse_json_line(const char *path, size_t line_no, const char *line, size_t len,
                                    cJSON **out) {
    *out = cJSON_ParseWithLength(line, len);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return pulse_set_error(PULSE_ERR_PARSE,
                               "%s:%zu: expected a JSON object (Amazon 2018 JSON lines), found '%s'", path,
                               line_no, pd_esc(line, (size_t)-1, 60));
    }
    return PULSE_OK;
}

/* One pass over the review file. Pass 1 (texts == NULL) collects rows; pass 2 stores summary/text of kept
 * rows (row_of_order maps a valid row number to its index in the final dataset, or -1). */
static pulse_status amazon_pass(const char *path, pd_strmap *um, pd_strmap *im, rows *a, pulse_dataset *ds,
                                const long *row_of_order) {
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path);
    if (st) return st;
    char *line;
    size_t len;
    int got;
    size_t order = 0;
    pulse_progress pr;
    pulse_progress_begin(&pr, row_of_order ? "review text" : "reviews", "line", 0);
    while ((got = pd_reader_next(&r, &line, &len)) == 1) {
        if ((r.line_no & 16383) == 0) pulse_progress_update(&pr, r.line_no, NULL);
        if (len == 0) continue; /* JSON-lines files may end with blank lines */
        if (row_of_order) {
            long k = row_of_order[order++];
            if (k < 0) continue;
            cJSON *o;
            if ((st = parse_json_line(path, r.line_no, line, len, &o))) break;
            const char *sm = json_str(o, "summary"), *tx = json_str(o, "reviewText");
            if (sm) ds->summary[k] = pd_arena_strndup(&ds->arena, sm, strlen(sm));
            if (tx) ds->text[k] = pd_arena_strndup(&ds->arena, tx, strlen(tx));
            cJSON_Delete(o);
            if ((sm && !ds->summary[k]) || (tx && !ds->text[k])) {
                st = PULSE_ERR_NOMEM;
                break;
            }
            continue;
        }
        cJSON *o;
        if ((st = parse_json_line(path, r.line_no, line, len, &o))) break;
        const char *uid = json_str(o, "reviewerID"), *asin = json_str(o, "asin");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "unixReviewTime");
        const cJSON *ov = cJSON_GetObjectItemCaseSensitive(o, "overall");
        const char *missing = !uid                 ? "reviewerID (a string)"
                              : !asin              ? "asin (a string)"
                              : !cJSON_IsNumber(t) ? "unixReviewTime (a number)"
                                                   : NULL;
        if (missing) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected a review with field %s, found '%s'", path,
                                 r.line_no, missing, pd_esc(line, (size_t)-1, 60));
            cJSON_Delete(o);
            break;
        }
        row x = {0};
        x.keep = 1;
        x.order = a->n;
        x.t = t->valuedouble;
        x.r = cJSON_IsNumber(ov) ? (float)ov->valuedouble : NAN;
        if (um->n >= 0x7fffffff || im->n >= PD_MAX_ITEM_ID)
            st =
                pulse_set_error(PULSE_ERR_RANGE, "%s:%zu: too many distinct users or items", path, r.line_no);
        if (!st) st = pd_strmap_put(um, uid, strlen(uid), (int)um->n, NULL, &x.u);
        if (!st) st = pd_strmap_put(im, asin, strlen(asin), (int)im->n, NULL, &x.i);
        cJSON_Delete(o);
        if (!st) st = rows_push(a, x);
        if (st) break;
    }
    if (got < 0) st = r.err;
    if (!st && r.line_no >= 16384) pulse_progress_end(&pr, r.line_no, NULL);
    pd_reader_close(&r);
    return st;
}

static pulse_status amazon_meta(const char *path, pulse_dataset *ds, const pd_strmap *asin_to_item) {
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path);
    if (st) return st;
    int ft = pd_add_field(ds, "title"), fb = pd_add_field(ds, "brand"), fc = pd_add_field(ds, "categories");
    if (ft < 0 || fb < 0 || fc < 0) {
        pd_reader_close(&r);
        return PULSE_ERR_NOMEM;
    }
    char *line;
    size_t len;
    int got;
    while ((got = pd_reader_next(&r, &line, &len)) == 1) {
        if (len == 0) continue;
        /* only parse lines whose asin we need: a cheap pre-check keeps huge meta files fast (lines of items
         * outside the data are skipped unparsed) */
        const char *q = strstr(line, "\"asin\"");
        if (q) {
            q += 6;
            while (*q == ' ' || *q == ':') q++;
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                if (e && !memchr(q + 1, '\\', (size_t)(e - q - 1)) &&
                    pd_strmap_get(asin_to_item, q + 1, (size_t)(e - q - 1)) < 0)
                    continue;
            }
        }
        cJSON *o;
        if ((st = parse_json_line(path, r.line_no, line, len, &o))) break;
        const char *asin = json_str(o, "asin");
        int it = asin ? pd_strmap_get(asin_to_item, asin, strlen(asin)) : -1;
        if (it > 0 && !ds->field_val[ft][it]) {
            const char *title = json_str(o, "title"), *brand = json_str(o, "brand");
            char cats[2048] = "";
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "category");
            if (cJSON_IsArray(c)) {
                size_t cl = 0;
                const cJSON *e;
                cJSON_ArrayForEach(e, c) {
                    if (!cJSON_IsString(e)) continue;
                    int w = snprintf(cats + cl, sizeof cats - cl, "%s%s", cl ? " > " : "", e->valuestring);
                    if (w < 0 || (size_t)w >= sizeof cats - cl) break;
                    cl += (size_t)w;
                }
            }
            ds->field_val[ft][it] =
                pd_arena_strndup(&ds->arena, title ? title : "", title ? strlen(title) : 0);
            ds->field_val[fb][it] =
                pd_arena_strndup(&ds->arena, brand ? brand : "", brand ? strlen(brand) : 0);
            ds->field_val[fc][it] = pd_arena_strndup(&ds->arena, cats, strlen(cats));
            if (!ds->field_val[ft][it] || !ds->field_val[fb][it] || !ds->field_val[fc][it])
                st = PULSE_ERR_NOMEM;
        }
        cJSON_Delete(o);
        if (st) break;
    }
    if (got < 0) st = r.err;
    pd_reader_close(&r);
    pd_pick_title(ds);
    return st;
}

pulse_status pd_load_amazon(const char *path_reviews, const char *path_meta, const pulse_data_params *p,
                            pulse_dataset *ds) {
    pd_strmap um, im;
    pd_strmap_init(&um);
    pd_strmap_init(&im);
    rows a = {0};
    const char **uk = NULL, **ik = NULL;
    int *unew = NULL, *inew = NULL, *ucnt = NULL, *icnt = NULL;
    long *row_of_order = NULL;
    size_t n_valid = 0;
    pulse_status st = amazon_pass(path_reviews, &um, &im, &a, ds, NULL);
    if (!st && a.n == 0)
        st = pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected reviews, found none", path_reviews);
    if (st) goto done;
    n_valid = a.n;
    uk = keys_by_index(&um);
    ik = keys_by_index(&im);
    unew = malloc(sizeof(int) * (um.n + 1));
    inew = calloc(im.n + 1, sizeof(int));
    ucnt = malloc(sizeof(int) * (um.n + 1));
    icnt = malloc(sizeof(int) * (im.n + 1));
    if (!uk || !ik || !unew || !inew || !ucnt || !icnt) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* exact duplicates (same user, item and time) keep their first row */
    qsort(a.v, a.n, sizeof(row), cmp_row);
    for (size_t k = 0; k < a.n;) {
        size_t e = k;
        while (e < a.n && a.v[e].u == a.v[k].u && a.v[e].t == a.v[k].t) e++;
        for (size_t x = k; x < e; x++)
            for (size_t y = k; y < x && a.v[x].keep; y++)
                if (a.v[y].keep && a.v[y].i == a.v[x].i) a.v[x].keep = 0;
        k = e;
    }
    /* k-core to a fixed point */
    int kc = p->min_interactions > 1 ? p->min_interactions : 1;
    for (int changed = 1; changed;) {
        changed = 0;
        memset(ucnt, 0, sizeof(int) * um.n);
        memset(icnt, 0, sizeof(int) * im.n);
        for (size_t k = 0; k < a.n; k++)
            if (a.v[k].keep) ucnt[a.v[k].u]++, icnt[a.v[k].i]++;
        for (size_t k = 0; k < a.n; k++)
            if (a.v[k].keep && (ucnt[a.v[k].u] < kc || icnt[a.v[k].i] < kc)) a.v[k].keep = 0, changed = 1;
    }
    /* users keep their order of first appearance; items are numbered as they first occur in the sequences */
    memset(ucnt, 0, sizeof(int) * um.n);
    for (size_t k = 0; k < a.n; k++)
        if (a.v[k].keep) ucnt[a.v[k].u] = 1;
    int nu = 0;
    for (size_t u = 0; u < um.n; u++) unew[u] = ucnt[u] ? nu++ : -1;
    if (nu == 0) {
        st = pulse_set_error(PULSE_ERR_RANGE, "%s: no user is left after the %d-core filter", path_reviews,
                             kc);
        goto done;
    }
    if (p->keep_text) {
        row_of_order = malloc(sizeof(long) * (n_valid ? n_valid : 1));
        if (!row_of_order) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    /* build() sorts the kept rows; remember each row's final position through its file order */
    st = build(ds, &a, uk, (int)um.n, unew, ik, (int)im.n, inew, 1, 1);
    if (st) goto done;
    if (p->keep_text) {
        for (size_t k = 0; k < n_valid; k++) row_of_order[k] = -1;
        for (size_t k = 0; k < a.n; k++) row_of_order[a.v[k].order] = (long)k;
        ds->summary = calloc(ds->n_inter ? ds->n_inter : 1, sizeof(char *));
        ds->text = calloc(ds->n_inter ? ds->n_inter : 1, sizeof(char *));
        if (!ds->summary || !ds->text) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            goto done;
        }
        st = amazon_pass(path_reviews, NULL, NULL, NULL, ds, row_of_order);
        if (st) goto done;
    }
    if (path_meta) {
        pd_strmap am;
        pd_strmap_init(&am);
        for (size_t i = 0; i < im.n && !st; i++)
            if (inew[i] > 0) st = pd_strmap_put(&am, ik[i], strlen(ik[i]), inew[i], NULL, NULL);
        if (!st) st = amazon_meta(path_meta, ds, &am);
        pd_strmap_free(&am);
    }
done:
    free(row_of_order);
    free(uk);
    free(ik);
    free(unew);
    free(inew);
    free(ucnt);
    free(icnt);
    free(a.v);
    pd_strmap_free(&um);
    pd_strmap_free(&im);
    return st;
}
