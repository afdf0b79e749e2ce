/* data/read_seq.c — owns the one-user-per-line readers: S3-Rec/P5 sequences.txt ("user item item ...") and
 * LLaRA LastFM sequences.tsv ("user_idx \t split \t items"), each with its items.tsv of text fields. */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

typedef struct {
    int *items;
    size_t n, cap;
    size_t *offs;
    size_t nu, ucap;
    char **ukeys;
    char **usplit; /* LastFM: the user's split label (train / val / test), else NULL */
} seq_builder;

static pulse_status sb_push_item(seq_builder *b, int it) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        int *ni = realloc(b->items, nc * sizeof(int));
        if (!ni) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory at %zu interactions", b->n);
        b->items = ni;
        b->cap = nc;
    }
    b->items[b->n++] = it;
    return PULSE_OK;
}

static pulse_status sb_push_user(seq_builder *b, char *key, char *split) {
    if (b->nu + 2 > b->ucap) {
        size_t nc = b->ucap ? b->ucap * 2 : 1024;
        size_t *no = realloc(b->offs, nc * sizeof(size_t));
        if (!no) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory at %zu users", b->nu);
        b->offs = no;
        char **nk = realloc(b->ukeys, nc * sizeof(char *));
        if (!nk) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory at %zu users", b->nu);
        b->ukeys = nk;
        char **ns = realloc(b->usplit, nc * sizeof(char *));
        if (!ns) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory at %zu users", b->nu);
        b->usplit = ns;
        b->ucap = nc;
    }
    if (b->nu == 0) b->offs[0] = 0;
    b->ukeys[b->nu] = key;
    b->usplit[b->nu] = split;
    b->offs[b->nu + 1] = b->n;
    b->nu++;
    return PULSE_OK;
}

static void sb_free(seq_builder *b) {
    free(b->items);
    free(b->offs);
    free(b->ukeys);
    free(b->usplit);
}

/* Hand the builder's arrays to the dataset and give every item that occurs a key (its id as in the file). */
static pulse_status sb_finish(seq_builder *b, pulse_dataset *ds, int max_item, int key_offset) {
    if (b->nu == 0) return pulse_set_error(PULSE_ERR_PARSE, "expected at least one user, found none");
    if (b->nu > 0x7fffffff) return pulse_set_error(PULSE_ERR_RANGE, "too many users (%zu)", b->nu);
    ds->n_users = (int)b->nu;
    ds->n_items = max_item;
    ds->n_inter = b->n;
    ds->items = b->items;
    ds->offs = b->offs;
    ds->user_key = b->ukeys;
    int has_split = 0;
    for (size_t u = 0; u < b->nu; u++) has_split |= b->usplit[u] != NULL;
    if (has_split) {
        ds->user_split = b->usplit;
        b->usplit = NULL;
    }
    free(b->usplit);
    memset(b, 0, sizeof *b);
    ds->item_key = calloc((size_t)max_item + 1, sizeof(char *));
    if (!ds->item_key) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ds->n_inter; i++) {
        int it = ds->items[i];
        if (ds->item_key[it]) continue;
        char buf[24];
        int l = snprintf(buf, sizeof buf, "%d", it - key_offset);
        ds->item_key[it] = pd_arena_strndup(&ds->arena, buf, (size_t)l);
        if (!ds->item_key[it]) return PULSE_ERR_NOMEM;
    }
    return PULSE_OK;
}

/* Parse space-separated item ids from s (NUL-terminated). id_offset is added to each id; the result must be
 * >= 1. Returns PULSE_OK and the count parsed in *count. */
static pulse_status parse_items(seq_builder *b, const char *s, const char *path, size_t line, int id_offset,
                                int *max_item, int *count) {
    const char *p = s;
    *count = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *t = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        size_t n = (size_t)(p - t);
        long long v;
        int pr = pd_parse_uint(t, n, PD_MAX_ITEM_ID, &v);
        if (pr == -1)
            return pulse_set_error(PULSE_ERR_PARSE,
                                   "%s:%zu: expected an item id (a non-negative integer), found '%s'", path,
                                   line, pd_esc(t, n, 40));
        if (pr == -2)
            return pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected an item id <= %d, found '%s'", path,
                                   line, PD_MAX_ITEM_ID - (id_offset > 0 ? id_offset : 0), pd_esc(t, n, 40));
        long long it = v + id_offset;
        if (it < 1)
            return pulse_set_error(PULSE_ERR_PARSE,
                                   "%s:%zu: expected an item id >= %d (0 is padding), found '%s'", path, line,
                                   1 - id_offset, pd_esc(t, n, 40));
        if (it > PD_MAX_ITEM_ID)
            return pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected an item id <= %d, found '%s'", path,
                                   line, PD_MAX_ITEM_ID - id_offset, pd_esc(t, n, 40));
        pulse_status st = sb_push_item(b, (int)it);
        if (st) return st;
        if (it > *max_item) *max_item = (int)it;
        (*count)++;
    }
    return PULSE_OK;
}

/* Register a user key (normalised decimal) and reject duplicates, naming the first line. */
static pulse_status user_key(pd_strmap *users, pulse_dataset *ds, const char *path, size_t line,
                             const char *tok, size_t n, char **key_out) {
    long long v;
    int pr = pd_parse_uint(tok, n, 0x7fffffffLL, &v);
    if (pr == -1)
        return pulse_set_error(PULSE_ERR_PARSE,
                               "%s:%zu: expected a user id (a non-negative integer), found '%s'", path, line,
                               pd_esc(tok, n, 40));
    if (pr == -2)
        return pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected a user id <= 2147483647, found '%s'", path,
                               line, pd_esc(tok, n, 40));
    char buf[24];
    int l = snprintf(buf, sizeof buf, "%lld", v);
    int found = 0, first = 0;
    pulse_status st = pd_strmap_put(users, buf, (size_t)l, (int)line, &found, &first);
    if (st) return st;
    if (found)
        return pulse_set_error(PULSE_ERR_PARSE,
                               "%s:%zu: expected a new user id, found '%s' again (first on line %d)", path,
                               line, buf, first);
    *key_out = pd_arena_strndup(&ds->arena, buf, (size_t)l);
    return *key_out ? PULSE_OK : PULSE_ERR_NOMEM;
}

pulse_status pd_load_s3rec(const char *path_seq, const char *path_items, const pulse_data_params *p,
                           pulse_dataset *ds) {
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path_seq);
    if (st) return st;
    seq_builder b;
    memset(&b, 0, sizeof b);
    pd_strmap users;
    pd_strmap_init(&users);
    int max_item = 0, got;
    char *line;
    size_t len;
    while ((got = pd_reader_next(&r, &line, &len)) == 1) {
        if (p->max_users > 0 && b.nu >= (size_t)p->max_users) break;
        const char *q = line;
        while (*q == ' ' || *q == '\t') q++;
        if (!*q) {
            st =
                pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected 'user item item ...', found an empty line",
                                path_seq, r.line_no);
            break;
        }
        const char *t = q;
        while (*q && *q != ' ' && *q != '\t') q++;
        char *key = NULL;
        st = user_key(&users, ds, path_seq, r.line_no, t, (size_t)(q - t), &key);
        if (st) break;
        int cnt = 0;
        st = parse_items(&b, q, path_seq, r.line_no, 0, &max_item, &cnt);
        if (st) break;
        if (cnt == 0) {
            st = pulse_set_error(PULSE_ERR_PARSE,
                                 "%s:%zu: expected at least one item after user '%s', found none", path_seq,
                                 r.line_no, pd_esc(key, (size_t)-1, 40));
            break;
        }
        st = sb_push_user(&b, key, NULL);
        if (st) break;
    }
    if (got < 0) st = r.err;
    pd_reader_close(&r);
    pd_strmap_free(&users);
    if (!st && b.nu == 0)
        st = pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected 'user item item ...', found an empty file",
                             path_seq);
    if (!st) st = sb_finish(&b, ds, max_item, 0);
    sb_free(&b);
    if (!st && path_items) st = pd_read_items_tsv(ds, path_items, "item_id", 0, 0, NULL);
    return st;
}

pulse_status pd_load_lastfm(const char *path_seq, const char *path_items, const pulse_data_params *p,
                            pulse_dataset *ds) {
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path_seq);
    if (st) return st;
    seq_builder b;
    memset(&b, 0, sizeof b);
    pd_strmap users;
    pd_strmap_init(&users);
    int max_item = 0, got;
    char *line;
    size_t len;
    got = pd_reader_next(&r, &line, &len);
    if (got == 1 && strncmp(line, "user_idx\t", 9) != 0) {
        st = pulse_set_error(PULSE_ERR_PARSE,
                             "%s:1: expected the header 'user_idx<TAB>split<TAB>items', found '%s'", path_seq,
                             pd_esc(line, (size_t)-1, 80));
    } else if (got == 0) {
        st = pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected a header line, found an empty file", path_seq);
    }
    while (!st && got == 1 && (got = pd_reader_next(&r, &line, &len)) == 1) {
        if (p->max_users > 0 && b.nu >= (size_t)p->max_users) break;
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) {
            st = pulse_set_error(PULSE_ERR_PARSE,
                                 "%s:%zu: expected 'user_idx<TAB>split<TAB>items', found '%s'", path_seq,
                                 r.line_no, pd_esc(line, (size_t)-1, 80));
            break;
        }
        char *key = NULL;
        st = user_key(&users, ds, path_seq, r.line_no, line, (size_t)(t1 - line), &key);
        if (st) break;
        int cnt = 0;
        st = parse_items(&b, t2 + 1, path_seq, r.line_no, 1, &max_item, &cnt);
        if (st) break;
        if (cnt == 0) {
            st = pulse_set_error(PULSE_ERR_PARSE,
                                 "%s:%zu: expected at least one item for user '%s', found none", path_seq,
                                 r.line_no, pd_esc(key, (size_t)-1, 40));
            break;
        }
        char *label = pd_arena_strndup(&ds->arena, t1 + 1, (size_t)(t2 - t1 - 1));
        st = label ? sb_push_user(&b, key, label) : PULSE_ERR_NOMEM;
    }
    if (got < 0) st = r.err;
    pd_reader_close(&r);
    pd_strmap_free(&users);
    if (!st) st = sb_finish(&b, ds, max_item, 1);
    sb_free(&b);
    if (!st && path_items) st = pd_read_items_tsv(ds, path_items, "item_id", 1, 0, NULL);
    return st;
}
