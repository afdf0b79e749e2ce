/* data/write.c — owns the dataset writers: S3-Rec files (sequences.txt + items.tsv) and RecBole atomic files
 * (.inter with timestamp = position, so RecBole's chronological leave-one-out equals ours, and .item). Files
 * are written atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1 << 16;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}
static void sb_int(sbuf *b, long long v) {
    char t[32];
    int l = snprintf(t, sizeof t, "%lld", v);
    sb_add(b, t, (size_t)l);
}
/* a field value with tabs / newlines turned into spaces (the TSV formats have no quoting) */
static void sb_field(sbuf *b, const char *s) {
    if (!s) return;
    for (const char *p = s; *p; p++) {
        char c = (*p == '\t' || *p == '\n' || *p == '\r') ? ' ' : *p;
        sb_add(b, &c, 1);
    }
}

static pulse_status mkdirs(const char *dir) {
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", dir);
    size_t l = strlen(tmp);
    for (size_t i = 1; i <= l; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return pulse_set_error(PULSE_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
            tmp[i] = c;
        }
    }
    return PULSE_OK;
}

static pulse_status flush_to(sbuf *b, const char *dir, const char *name) {
    if (b->oom) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory writing %s", name);
    char path[2048];
    pulse_path_join(path, sizeof path, dir, name);
    return pulse_write_file_atomic(path, b->p ? b->p : "", b->n);
}

static int numeric_key(const char *k) {
    long long v;
    return k && pd_parse_uint(k, strlen(k), 0x7fffffffLL, &v) == 0;
}

static pulse_status write_items(const pulse_dataset *ds, const char *dir, const char *name, int recbole) {
    sbuf b = {0};
    sb_str(&b, recbole ? "item_id:token" : "item_id");
    for (int f = 0; f < ds->n_fields; f++) {
        sb_str(&b, "\t");
        sb_field(&b, ds->field_name[f]);
        if (recbole) sb_str(&b, ":token_seq");
    }
    sb_str(&b, "\n");
    for (int it = 1; it <= ds->n_items; it++) {
        sb_int(&b, it);
        for (int f = 0; f < ds->n_fields; f++) {
            sb_str(&b, "\t");
            sb_field(&b, ds->field_val[f][it]);
        }
        sb_str(&b, "\n");
    }
    pulse_status st = flush_to(&b, dir, name);
    free(b.p);
    return st;
}

pulse_status pulse_dataset_write_s3rec(const pulse_dataset *ds, const char *dir) {
    pulse_status st = mkdirs(dir);
    if (st) return st;
    /* numeric user keys are kept when they are all numbers (S3-Rec round trip), else users are 1..n */
    int keep = 1;
    for (int u = 0; u < ds->n_users && keep; u++) keep = numeric_key(ds->user_key ? ds->user_key[u] : NULL);
    sbuf b = {0};
    for (int u = 0; u < ds->n_users; u++) {
        if (keep)
            sb_str(&b, ds->user_key[u]);
        else
            sb_int(&b, u + 1);
        for (size_t i = ds->offs[u]; i < ds->offs[u + 1]; i++) {
            sb_str(&b, " ");
            sb_int(&b, ds->items[i]);
        }
        sb_str(&b, "\n");
    }
    st = flush_to(&b, dir, "sequences.txt");
    free(b.p);
    if (!st && ds->n_fields > 0) st = write_items(ds, dir, "items.tsv", 0);
    return st;
}

pulse_status pulse_dataset_write_recbole(const pulse_dataset *ds, const char *dir, const char *name) {
    if (!name || !*name || strchr(name, '/'))
        return pulse_set_error(PULSE_ERR_ARG, "expected a dataset name without '/', found '%s'",
                               name ? name : "");
    pulse_status st = mkdirs(dir);
    if (st) return st;
    sbuf b = {0};
    sb_str(&b, "user_id:token\titem_id:token\ttimestamp:float\n");
    for (int u = 0; u < ds->n_users; u++) {
        for (size_t i = ds->offs[u]; i < ds->offs[u + 1]; i++) {
            sb_int(&b, u + 1);
            sb_str(&b, "\t");
            sb_int(&b, ds->items[i]);
            sb_str(&b, "\t");
            sb_int(&b, (long long)(i - ds->offs[u]));
            sb_str(&b, "\n");
        }
    }
    char fn[512];
    snprintf(fn, sizeof fn, "%s.inter", name);
    st = flush_to(&b, dir, fn);
    free(b.p);
    if (!st && ds->n_fields > 0) {
        snprintf(fn, sizeof fn, "%s.item", name);
        st = write_items(ds, dir, fn, 1);
    }
    return st;
}
