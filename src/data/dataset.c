/* data/dataset.c — owns the pulse_dataset object: format detection and loading, accessors, statistics,
 * leave-one-out splits, sampled candidates, the items.tsv-style field reader and max_users truncation. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"

pulse_data_params pulse_data_default_params(void) {
    pulse_data_params p;
    memset(&p, 0, sizeof p);
    p.min_interactions = 5;
    p.keep_text = 0;
    p.max_users = 0;
    p.format = NULL;
    return p;
}

pulse_dataset *pd_new(const char *name, const char *format) {
    pulse_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(ds->name, sizeof ds->name, "%s", name ? name : "");
    snprintf(ds->format, sizeof ds->format, "%s", format ? format : "");
    ds->title_field = -1;
    return ds;
}

void pulse_dataset_free(pulse_dataset *ds) {
    if (!ds) return;
    free(ds->offs);
    free(ds->items);
    free(ds->ts);
    free(ds->rating);
    free(ds->summary);
    free(ds->text);
    free(ds->user_key);
    free(ds->user_split);
    free(ds->item_key);
    for (int f = 0; f < ds->n_fields; f++) free(ds->field_val[f]);
    free(ds->field_val);
    free(ds->field_name);
    pd_arena_free(&ds->arena);
    free(ds);
}

int pd_add_field(pulse_dataset *ds, const char *name) {
    int f = pd_find_field(ds, name);
    if (f >= 0) return f;
    char **nn = realloc(ds->field_name, sizeof(char *) * (size_t)(ds->n_fields + 1));
    if (!nn) goto nomem;
    ds->field_name = nn;
    char ***nv = realloc(ds->field_val, sizeof(char **) * (size_t)(ds->n_fields + 1));
    if (!nv) goto nomem;
    ds->field_val = nv;
    char *nm = pd_arena_strndup(&ds->arena, name, strlen(name));
    char **vals = calloc((size_t)ds->n_items + 1, sizeof(char *));
    if (!nm || !vals) {
        free(vals);
        goto nomem;
    }
    ds->field_name[ds->n_fields] = nm;
    ds->field_val[ds->n_fields] = vals;
    return ds->n_fields++;
nomem:
    pulse_set_error(PULSE_ERR_NOMEM, "out of memory adding item field '%s'", name);
    return -1;
}

int pd_find_field(const pulse_dataset *ds, const char *name) {
    for (int f = 0; f < ds->n_fields; f++)
        if (strcmp(ds->field_name[f], name) == 0) return f;
    return -1;
}

void pd_pick_title(pulse_dataset *ds) {
    static const char *names[] = {"title", "movie_title", "artist_name", "name"};
    ds->title_field = -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int f = pd_find_field(ds, names[i]);
        if (f >= 0) {
            ds->title_field = f;
            return;
        }
    }
}

/* ---- accessors ---- */
const char *pulse_dataset_name(const pulse_dataset *ds) {
    return ds->name;
}
const char *pulse_dataset_format(const pulse_dataset *ds) {
    return ds->format;
}
int pulse_dataset_n_users(const pulse_dataset *ds) {
    return ds->n_users;
}
int pulse_dataset_n_items(const pulse_dataset *ds) {
    return ds->n_items;
}
size_t pulse_dataset_n_interactions(const pulse_dataset *ds) {
    return ds->n_inter;
}

const int *pulse_dataset_user_seq(const pulse_dataset *ds, int user, int *len) {
    if (user < 0 || user >= ds->n_users) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = (int)(ds->offs[user + 1] - ds->offs[user]);
    return ds->items + ds->offs[user];
}

const char *pulse_dataset_item_field(const pulse_dataset *ds, int item, const char *field) {
    if (item < 1 || item > ds->n_items || !field) return NULL;
    int f = pd_find_field(ds, field);
    if (f < 0) return NULL;
    return ds->field_val[f][item];
}

const char *pulse_dataset_item_title(const pulse_dataset *ds, int item) {
    if (item < 1 || item > ds->n_items || ds->title_field < 0) return NULL;
    const char *t = ds->field_val[ds->title_field][item];
    return (t && *t) ? t : NULL;
}

const char *pulse_dataset_user_key(const pulse_dataset *ds, int user) {
    if (user < 0 || user >= ds->n_users || !ds->user_key) return NULL;
    return ds->user_key[user];
}

const char *pulse_dataset_user_field(const pulse_dataset *ds, int user, const char *field) {
    if (user < 0 || user >= ds->n_users || !field) return NULL;
    if (strcmp(field, "split") == 0 && ds->user_split) return ds->user_split[user];
    return NULL;
}

const char *pulse_dataset_item_key(const pulse_dataset *ds, int item) {
    if (item < 1 || item > ds->n_items || !ds->item_key) return NULL;
    return ds->item_key[item];
}

static long inter_index(const pulse_dataset *ds, int user, int pos) {
    if (user < 0 || user >= ds->n_users || pos < 0) return -1;
    size_t i = ds->offs[user] + (size_t)pos;
    if (i >= ds->offs[user + 1]) return -1;
    return (long)i;
}

double pulse_dataset_timestamp(const pulse_dataset *ds, int user, int pos) {
    long i = inter_index(ds, user, pos);
    return (i < 0 || !ds->ts) ? NAN : ds->ts[i];
}
float pulse_dataset_rating(const pulse_dataset *ds, int user, int pos) {
    long i = inter_index(ds, user, pos);
    return (i < 0 || !ds->rating) ? NAN : ds->rating[i];
}
const char *pulse_dataset_review_summary(const pulse_dataset *ds, int user, int pos) {
    long i = inter_index(ds, user, pos);
    return (i < 0 || !ds->summary) ? NULL : ds->summary[i];
}
const char *pulse_dataset_review_text(const pulse_dataset *ds, int user, int pos) {
    long i = inter_index(ds, user, pos);
    return (i < 0 || !ds->text) ? NULL : ds->text[i];
}
int pulse_dataset_n_fields(const pulse_dataset *ds) {
    return ds->n_fields;
}
const char *pulse_dataset_field_name(const pulse_dataset *ds, int i) {
    return (i < 0 || i >= ds->n_fields) ? NULL : ds->field_name[i];
}

void pulse_dataset_stats(const pulse_dataset *ds, pulse_data_stats *o) {
    memset(o, 0, sizeof *o);
    o->users = ds->n_users;
    o->item_ids = ds->n_items;
    o->interactions = ds->n_inter;
    unsigned char *seen = calloc((size_t)ds->n_items + 1, 1);
    int distinct = 0;
    for (size_t i = 0; i < ds->n_inter; i++) {
        int it = ds->items[i];
        if (seen && !seen[it]) {
            seen[it] = 1;
            distinct++;
        }
    }
    free(seen);
    o->items = distinct;
    o->min_len = ds->n_users ? 1 << 30 : 0;
    for (int u = 0; u < ds->n_users; u++) {
        int l = (int)(ds->offs[u + 1] - ds->offs[u]);
        if (l < o->min_len) o->min_len = l;
        if (l > o->max_len) o->max_len = l;
        if (l < 3) o->short_users++;
        o->repeat_valid += pulse_split_target_repeats(ds, u, PULSE_SPLIT_VALID);
        o->repeat_test += pulse_split_target_repeats(ds, u, PULSE_SPLIT_TEST);
    }
    o->avg_len = ds->n_users ? (double)ds->n_inter / ds->n_users : 0;
    o->density = (ds->n_users && distinct) ? (double)ds->n_inter / ((double)ds->n_users * distinct) : 0;
    for (int it = 1; it <= ds->n_items; it++)
        if (pulse_dataset_item_title(ds, it)) o->titled_items++;
}

void pd_truncate_users(pulse_dataset *ds, int max_users) {
    if (max_users <= 0 || max_users >= ds->n_users) return;
    ds->n_users = max_users;
    ds->n_inter = ds->offs[max_users];
}

/* ---- splits ---- */
int pulse_split_target(const pulse_dataset *ds, int user, pulse_split s, int *hist_len) {
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    if (hist_len) *hist_len = 0;
    if (!seq || len < 3) return 0; /* needs at least one training item, a valid and a test item */
    int h;
    if (s == PULSE_SPLIT_TEST)
        h = len - 1;
    else if (s == PULSE_SPLIT_VALID)
        h = len - 2;
    else
        return 0;
    if (hist_len) *hist_len = h;
    return seq[h];
}

int pulse_split_target_repeats(const pulse_dataset *ds, int user, pulse_split s) {
    int h, len;
    int target = pulse_split_target(ds, user, s, &h);
    if (target <= 0) return 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    for (int i = 0; i < h; i++)
        if (seq[i] == target) return 1;
    return 0;
}

int pulse_split_train_len(const pulse_dataset *ds, int user) {
    int len = 0;
    pulse_dataset_user_seq(ds, user, &len);
    return len > 2 ? len - 2 : 0;
}

/* ---- sampled candidates ---- */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

pulse_status pulse_sample_candidates(const pulse_dataset *ds, int positive, const int *excluded,
                                     int n_excluded, int n, pulse_rng *rng, int *out, int *pos_index) {
    if (n < 1) return pulse_set_error(PULSE_ERR_ARG, "candidate list size must be >= 1, got %d", n);
    if (positive > ds->n_items)
        return pulse_set_error(PULSE_ERR_RANGE, "positive item %d out of range [1, %d]", positive,
                               ds->n_items);
    if (n_excluded < 0 || (n_excluded > 0 && !excluded))
        return pulse_set_error(PULSE_ERR_ARG, "candidates: %d excluded items given without a list",
                               n_excluded);
    /* sorted distinct excluded items + the positive, for membership tests */
    int *h = malloc(sizeof(int) * ((size_t)n_excluded + 1));
    if (!h) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    int nh = 0;
    for (int i = 0; i < n_excluded; i++) {
        if (excluded[i] < 1 || excluded[i] > ds->n_items || (i > 0 && excluded[i] <= excluded[i - 1])) {
            free(h);
            return pulse_set_error(
                PULSE_ERR_ARG,
                "candidates: excluded items must be sorted distinct ids in [1, %d] (entry %d "
                "is %d)",
                ds->n_items, i, excluded[i]);
        }
        h[nh++] = excluded[i];
    }
    if (positive > 0) {
        /* insert the positive in order unless it is already there */
        int at = nh;
        while (at > 0 && h[at - 1] > positive) at--;
        if (!(at > 0 && h[at - 1] == positive)) {
            memmove(h + at + 1, h + at, sizeof(int) * (size_t)(nh - at));
            h[at] = positive;
            nh++;
        }
    }
    int n_neg = positive > 0 ? n - 1 : n;
    int avail = ds->n_items - nh;
    if (avail < n_neg) {
        free(h);
        return pulse_set_error(PULSE_ERR_RANGE,
                               "%d candidates need %d negatives, only %d items are not excluded", n, n_neg,
                               avail);
    }
    /* the positive's position is drawn first either way, so lists are the same stream for every mode */
    int pos = (int)pulse_rng_below(rng, (uint32_t)n);
    if (positive <= 0) pos = -1;
    int k = 0;
    if (avail <= 4 * n_neg + 16) {
        /* dense case: enumerate the allowed items and take a seeded partial shuffle */
        int *pool = malloc(sizeof(int) * (size_t)(avail > 0 ? avail : 1));
        if (!pool) {
            free(h);
            return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        }
        int m = 0, j = 0;
        for (int it = 1; it <= ds->n_items; it++) {
            while (j < nh && h[j] < it) j++;
            if (j < nh && h[j] == it) continue;
            pool[m++] = it;
        }
        for (int i = 0; i < n_neg; i++) {
            int r = i + (int)pulse_rng_below(rng, (uint32_t)(m - i));
            int t = pool[i];
            pool[i] = pool[r];
            pool[r] = t;
        }
        for (int i = 0; i < n; i++) out[i] = i == pos ? positive : pool[k++];
        free(pool);
    } else {
        /* sparse case: rejection sampling against the excluded items and the items drawn so far */
        for (int i = 0; i < n; i++) {
            if (i == pos) {
                out[i] = positive;
                continue;
            }
            for (;;) {
                int it = 1 + (int)pulse_rng_below(rng, (uint32_t)ds->n_items);
                if (bsearch(&it, h, (size_t)nh, sizeof(int), cmp_int)) continue;
                int dup = 0;
                for (int q = 0; q < i && !dup; q++) dup = (q != pos && out[q] == it);
                if (dup) continue;
                out[i] = it;
                break;
            }
        }
    }
    free(h);
    if (pos_index) *pos_index = pos;
    return PULSE_OK;
}

/* ---- items.tsv-style field files ---- */

pulse_status pd_read_items_tsv(pulse_dataset *ds, const char *path, const char *id_col, int id_offset,
                               int recbole_header, const pd_strmap *idmap) {
    pd_reader r;
    pulse_status st = pd_reader_open(&r, path);
    if (st) return st;
    char *line;
    size_t len;
    int got = pd_reader_next(&r, &line, &len);
    if (got <= 0) {
        pd_reader_close(&r);
        if (got < 0) return r.err;
        return pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected a header line, found an empty file", path);
    }
    enum { MAXC = 64 };
    char *cols[MAXC];
    size_t nc = pd_split_tabs(line, cols, MAXC);
    if (nc > MAXC) {
        pd_reader_close(&r);
        return pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected at most %d columns, found %zu", path, MAXC,
                               nc);
    }
    int id_idx = -1;
    int fidx[MAXC];
    for (size_t c = 0; c < nc; c++) {
        char name[128];
        snprintf(name, sizeof name, "%s", cols[c]);
        if (recbole_header) {
            char *colon = strchr(name, ':');
            if (colon) *colon = 0;
        }
        fidx[c] = -1;
        if (strcmp(name, id_col) == 0) {
            id_idx = (int)c;
            continue;
        }
        if (!name[0]) continue;
        fidx[c] = pd_add_field(ds, name);
        if (fidx[c] < 0) {
            pd_reader_close(&r);
            return PULSE_ERR_NOMEM;
        }
    }
    if (id_idx < 0) {
        st = pulse_set_error(PULSE_ERR_PARSE, "%s:1: expected a header with an '%s' column, found '%s'", path,
                             id_col, pd_esc(cols[0], (size_t)-1, 200));
        pd_reader_close(&r);
        return st;
    }
    unsigned char *seen = calloc((size_t)ds->n_items + 1, 1);
    if (!seen) {
        pd_reader_close(&r);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    }
    st = PULSE_OK;
    while ((got = pd_reader_next(&r, &line, &len)) == 1) {
        if (len == 0) continue; /* tolerate blank lines in item files */
        char *f[MAXC];
        size_t n = pd_split_tabs(line, f, MAXC);
        if (n > nc) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected %zu tab-separated fields, found %zu",
                                 path, r.line_no, nc, n);
            break;
        }
        if ((size_t)id_idx >= n) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected an '%s' field, found %zu fields", path,
                                 r.line_no, id_col, n);
            break;
        }
        long long it;
        if (idmap) {
            it = pd_strmap_get(idmap, f[id_idx], strlen(f[id_idx]));
        } else {
            long long id;
            int pr = pd_parse_uint(f[id_idx], strlen(f[id_idx]), PD_MAX_ITEM_ID, &id);
            if (pr != 0) {
                st = pulse_set_error(PULSE_ERR_PARSE,
                                     "%s:%zu: expected an item id (integer 0..%d), found '%s'", path,
                                     r.line_no, PD_MAX_ITEM_ID, pd_esc(f[id_idx], (size_t)-1, 40));
                break;
            }
            it = id + id_offset;
        }
        if (it < 1 || it > ds->n_items) continue; /* not in the interaction data */
        if (seen[it]) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected each item id once, found '%s' again",
                                 path, r.line_no, pd_esc(f[id_idx], (size_t)-1, 40));
            break;
        }
        seen[it] = 1;
        for (size_t c = 0; c < n; c++) {
            if (fidx[c] < 0) continue;
            char *v = pd_arena_strndup(&ds->arena, f[c], strlen(f[c]));
            if (!v) {
                st = PULSE_ERR_NOMEM;
                break;
            }
            ds->field_val[fidx[c]][it] = v;
        }
        if (st) break;
    }
    if (got < 0) st = r.err;
    free(seen);
    pd_reader_close(&r);
    if (!st) pd_pick_title(ds);
    return st;
}

/* ---- format detection and loading ---- */
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int is_json_name(const char *n) {
    return ends_with(n, ".json") || ends_with(n, ".jsonl") || ends_with(n, ".json.gz") ||
           ends_with(n, ".jsonl.gz");
}

/* Find the first file in dir (sorted by name) satisfying pred (and not starting with skip_prefix when
 * given). Returns the count of matches. */
static int find_file(const char *dir, int (*pred)(const char *), const char *prefix, int want_prefix,
                     char *out, size_t outn) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int count = 0;
    char best[1024] = "";
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.') continue;
        if (!pred(n)) continue;
        int hp = prefix && strncmp(n, prefix, strlen(prefix)) == 0;
        if (prefix && hp != want_prefix) continue;
        count++;
        if (!best[0] || strcmp(n, best) < 0) snprintf(best, sizeof best, "%s", n);
    }
    closedir(d);
    if (count) pulse_path_join(out, outn, dir, best);
    return count;
}

static int is_inter(const char *n) {
    return ends_with(n, ".inter");
}
static int is_item(const char *n) {
    return ends_with(n, ".item");
}

static void base_name(const char *path, char *out, size_t n) {
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    size_t s = l;
    while (s > 0 && path[s - 1] != '/') s--;
    size_t m = l - s;
    if (m >= n) m = n - 1;
    memcpy(out, path + s, m);
    out[m] = 0;
}

pulse_status pulse_dataset_load(const char *dir, const pulse_data_params *params, pulse_dataset **out) {
    *out = NULL;
    pulse_data_params defp = pulse_data_default_params();
    const pulse_data_params *p = params ? params : &defp;
    if (!dir || !*dir) return pulse_set_error(PULSE_ERR_ARG, "no dataset folder given");
    struct stat sb;
    if (stat(dir, &sb) != 0) return pulse_set_error(PULSE_ERR_IO, "%s: no such file or folder", dir);

    char folder[2048], file[2048] = "";
    if (S_ISDIR(sb.st_mode)) {
        snprintf(folder, sizeof folder, "%s", dir);
    } else {
        /* a file was named: its folder is the dataset, the file picks the format */
        snprintf(file, sizeof file, "%s", dir);
        snprintf(folder, sizeof folder, "%s", dir);
        char *sl = strrchr(folder, '/');
        if (sl)
            *sl = 0;
        else
            snprintf(folder, sizeof folder, ".");
    }
    char name[256];
    base_name(S_ISDIR(sb.st_mode) ? folder : (strcmp(folder, ".") ? folder : "dataset"), name, sizeof name);

    char a[2048] = "", b[2048] = "", fmt[32] = "";
    if (p->format && *p->format) {
        snprintf(fmt, sizeof fmt, "%s", p->format);
    } else if (file[0]) {
        if (ends_with(file, ".inter"))
            snprintf(fmt, sizeof fmt, "recbole");
        else if (ends_with(file, ".tsv"))
            snprintf(fmt, sizeof fmt, "lastfm");
        else if (is_json_name(file))
            snprintf(fmt, sizeof fmt, "amazon2018");
        else
            snprintf(fmt, sizeof fmt, "s3rec");
    } else {
        char t[2048];
        if (find_file(folder, is_inter, NULL, 0, t, sizeof t))
            snprintf(fmt, sizeof fmt, "recbole");
        else if (pulse_file_exists(pulse_path_join(t, sizeof t, folder, "sequences.txt")))
            snprintf(fmt, sizeof fmt, "s3rec");
        else if (pulse_file_exists(pulse_path_join(t, sizeof t, folder, "sequences.tsv")))
            snprintf(fmt, sizeof fmt, "lastfm");
        else if (find_file(folder, is_json_name, "meta_", 0, t, sizeof t))
            snprintf(fmt, sizeof fmt, "amazon2018");
        else
            return pulse_set_error(PULSE_ERR_IO,
                                   "%s: expected a dataset folder (sequences.txt, *.inter, sequences.tsv or "
                                   "Amazon *.json reviews), found none of them",
                                   folder);
    }

    if (strcmp(fmt, "s3rec") == 0) {
        if (file[0])
            snprintf(a, sizeof a, "%s", file);
        else
            pulse_path_join(a, sizeof a, folder, "sequences.txt");
        pulse_path_join(b, sizeof b, folder, "items.tsv");
    } else if (strcmp(fmt, "lastfm") == 0) {
        if (file[0])
            snprintf(a, sizeof a, "%s", file);
        else
            pulse_path_join(a, sizeof a, folder, "sequences.tsv");
        pulse_path_join(b, sizeof b, folder, "items.tsv");
        if (file[0] && strcmp(a, b) == 0)
            return pulse_set_error(PULSE_ERR_ARG, "%s: name the sequences.tsv file or the folder", file);
    } else if (strcmp(fmt, "recbole") == 0) {
        if (file[0])
            snprintf(a, sizeof a, "%s", file);
        else if (!find_file(folder, is_inter, NULL, 0, a, sizeof a))
            return pulse_set_error(PULSE_ERR_IO, "%s: expected a *.inter file, found none", folder);
        /* the .item file with the same stem, else any .item */
        snprintf(b, sizeof b, "%.*s.item", (int)(strlen(a) - 6), a);
        if (!pulse_file_exists(b) && !find_file(folder, is_item, NULL, 0, b, sizeof b)) b[0] = 0;
    } else if (strcmp(fmt, "amazon2018") == 0) {
        int nrev = 0;
        if (file[0])
            snprintf(a, sizeof a, "%s", file), nrev = 1;
        else
            nrev = find_file(folder, is_json_name, "meta_", 0, a, sizeof a);
        if (nrev != 1)
            return pulse_set_error(
                PULSE_ERR_ARG,
                "%s: expected exactly one review file (*.json[l][.gz] not starting with meta_), "
                "found %d",
                folder, nrev);
        if (!find_file(folder, is_json_name, "meta_", 1, b, sizeof b)) b[0] = 0;
    } else {
        return pulse_set_error(PULSE_ERR_ARG,
                               "unknown dataset format '%s' (expected s3rec, recbole, lastfm or "
                               "amazon2018)",
                               fmt);
    }

    pulse_dataset *ds = pd_new(name, fmt);
    if (!ds) return PULSE_ERR_NOMEM;
    pulse_status st;
    if (strcmp(fmt, "s3rec") == 0)
        st = pd_load_s3rec(a, pulse_file_exists(b) ? b : NULL, p, ds);
    else if (strcmp(fmt, "lastfm") == 0)
        st = pd_load_lastfm(a, pulse_file_exists(b) ? b : NULL, p, ds);
    else if (strcmp(fmt, "recbole") == 0)
        st = pd_load_recbole(a, b[0] ? b : NULL, p, ds);
    else
        st = pd_load_amazon(a, b[0] ? b : NULL, p, ds);
    if (st) {
        pulse_dataset_free(ds);
        return st;
    }
    pd_truncate_users(ds, p->max_users);
    *out = ds;
    return PULSE_OK;
}
