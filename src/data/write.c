/* data/write.c — owns the dataset writers: S3-Rec files (sequences.txt + items.tsv) and RecBole atomic files
 * (.inter with timestamp = position, so RecBole's chronological leave-one-out equals ours, and .item). Files
 * are written atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"
#include "pulse/strbuf.h"

static void sb_int(pulse_strbuf *b, long long v) {
    pulse_strbuf_printf(b, "%lld", v);
}
/* a field value with tabs / newlines turned into spaces (the TSV formats have no quoting) */
static void sb_field(pulse_strbuf *b, const char *s) {
    if (!s) return;
    for (const char *p = s; *p; p++) {
        char c = (*p == '\t' || *p == '\n' || *p == '\r') ? ' ' : *p;
        pulse_strbuf_put(b, &c, 1);
    }
}

static pulse_status flush_to(pulse_strbuf *b, const char *dir, const char *name) {
    if (b->oom) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory writing %s", name);
    char path[2048];
    pulse_path_join(path, sizeof path, dir, name);
    return pulse_write_file_atomic(path, pulse_strbuf_str(b), b->n);
}

static int numeric_key(const char *k) {
    long long v;
    return k && pd_parse_uint(k, strlen(k), 0x7fffffffLL, &v) == 0;
}

static pulse_status write_items(const pulse_dataset *ds, const char *dir, const char *name, int recbole) {
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, recbole ? "item_id:token" : "item_id");
    for (int f = 0; f < ds->n_fields; f++) {
        pulse_strbuf_cat(&b, "\t");
        sb_field(&b, ds->field_name[f]);
        if (recbole) pulse_strbuf_cat(&b, ":token_seq");
    }
    pulse_strbuf_cat(&b, "\n");
    for (int it = 1; it <= ds->n_items; it++) {
        sb_int(&b, it);
        for (int f = 0; f < ds->n_fields; f++) {
            pulse_strbuf_cat(&b, "\t");
            sb_field(&b, ds->field_val[f][it]);
        }
        pulse_strbuf_cat(&b, "\n");
    }
    pulse_status st = flush_to(&b, dir, name);
    pulse_strbuf_free(&b);
    return st;
}

pulse_status pulse_dataset_write_s3rec(const pulse_dataset *ds, const char *dir) {
    pulse_status st = pulse_mkdirs(dir);
    if (st) return st;
    /* numeric user keys are kept when they are all numbers (S3-Rec round trip), else users are 1..n */
    int keep = 1;
    for (int u = 0; u < ds->n_users && keep; u++) keep = numeric_key(ds->user_key ? ds->user_key[u] : NULL);
    pulse_strbuf b = {0};
    for (int u = 0; u < ds->n_users; u++) {
        if (keep)
            pulse_strbuf_cat(&b, ds->user_key[u]);
        else
            sb_int(&b, u + 1);
        for (size_t i = ds->offs[u]; i < ds->offs[u + 1]; i++) {
            pulse_strbuf_cat(&b, " ");
            sb_int(&b, ds->items[i]);
        }
        pulse_strbuf_cat(&b, "\n");
    }
    st = flush_to(&b, dir, "sequences.txt");
    pulse_strbuf_free(&b);
    if (!st && ds->n_fields > 0) st = write_items(ds, dir, "items.tsv", 0);
    return st;
}

pulse_status pulse_dataset_write_recbole(const pulse_dataset *ds, const char *dir, const char *name) {
    if (!name || !*name || strchr(name, '/'))
        return pulse_set_error(PULSE_ERR_ARG, "expected a dataset name without '/', found '%s'",
                               name ? name : "");
    pulse_status st = pulse_mkdirs(dir);
    if (st) return st;
    pulse_strbuf b = {0};
    pulse_strbuf_cat(&b, "user_id:token\titem_id:token\ttimestamp:float\n");
    for (int u = 0; u < ds->n_users; u++) {
        for (size_t i = ds->offs[u]; i < ds->offs[u + 1]; i++) {
            sb_int(&b, u + 1);
            pulse_strbuf_cat(&b, "\t");
            sb_int(&b, ds->items[i]);
            pulse_strbuf_cat(&b, "\t");
            sb_int(&b, (long long)(i - ds->offs[u]));
            pulse_strbuf_cat(&b, "\n");
        }
    }
    char fn[512];
    snprintf(fn, sizeof fn, "%s.inter", name);
    st = flush_to(&b, dir, fn);
    pulse_strbuf_free(&b);
    if (!st && ds->n_fields > 0) {
        snprintf(fn, sizeof fn, "%s.item", name);
        st = write_items(ds, dir, fn, 1);
    }
    return st;
}
