/* data/internal.h — the dataset struct shared by the readers, the writers and the generator, plus the
 * streaming line reader (plain or gzip), a string arena, a string->index map (on pulse_strmap) and the
 * builder helpers. */
#ifndef PULSE_DATA_INTERNAL_H
#define PULSE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "pulse/data.h"
#include "pulse/strmap.h"

#define PD_MAX_ITEM_ID 100000000 /* ids above this are rejected (bounded memory) */
#define PD_MAX_LINE (256u << 20) /* longest accepted line: 256 MiB */

/* ---- string arena: strings never move once stored ---- */
typedef struct pd_block {
    struct pd_block *next;
    size_t used, cap;
    char data[];
} pd_block;
typedef struct {
    pd_block *head;
} pd_arena;
char *pd_arena_strndup(pd_arena *a, const char *s, size_t n); /* NULL + NOMEM error on failure */
void pd_arena_free(pd_arena *a);

/* ---- string -> int map: the core's pulse_strmap (key k = string id k, in order of insertion) + values ----
 */
typedef struct {
    pulse_strmap s;
    int *vals; /* string id -> value */
    size_t n;  /* keys */
    size_t cap;
} pd_strmap;
void pd_strmap_init(pd_strmap *m);
void pd_strmap_free(pd_strmap *m);
/* Returns the value of key, or -1 when absent. */
int pd_strmap_get(const pd_strmap *m, const char *key, size_t len);
/* Inserts key -> val when absent; *found tells whether it existed (then *val_out is the old value). */
pulse_status pd_strmap_put(pd_strmap *m, const char *key, size_t len, int val, int *found, int *val_out);
/* The key inserted k-th (0-based); valid until the map is freed. */
static inline const char *pd_strmap_key(const pd_strmap *m, size_t k) {
    return pulse_strmap_str(&m->s, (int)k);
}

/* ---- streaming line reader over plain or gzip files (zlib reads plain files transparently) ---- */
typedef struct {
    gzFile gz;
    const char *path;
    size_t line_no; /* 1-based number of the line last returned */
    char *buf;
    size_t cap, len;
    unsigned char rbuf[1 << 16];
    size_t rpos, rlen;
    int eof;
    size_t max_line;
    pulse_status err; /* the status of the last failure */
} pd_reader;
pulse_status pd_reader_open(pd_reader *r, const char *path);
/* 1: a line is in *line (NUL-terminated, without '\n' / "\r\n"), 0: end of file, -1: error (status set). A
 * NUL byte inside a line is an error. */
int pd_reader_next(pd_reader *r, char **line, size_t *len);
void pd_reader_close(pd_reader *r);

/* Dataset text quoted for an error message: at most max bytes of s[0..len) (len (size_t)-1: up to the NUL),
 * with control bytes, DEL, a byte-order mark and bytes that are not UTF-8 written as \r, \t, \n, \xNN and
 * "..." appended when cut. Returns a thread-local buffer (4 in rotation: up to 4 in one message). */
const char *pd_esc(const char *s, size_t len, size_t max);

/* Parse a non-negative decimal integer token of length n (digits only) into *out; 0 on success, -1 when not
 * all digits or empty, -2 when it exceeds max. */
int pd_parse_uint(const char *s, size_t n, long long max, long long *out);

/* ---- the dataset ---- */
struct pulse_dataset {
    char name[256];
    char format[32];
    int n_users, n_items;
    size_t n_inter;
    size_t *offs;      /* [n_users + 1] */
    int *items;        /* [n_inter] */
    double *ts;        /* [n_inter] or NULL */
    float *rating;     /* [n_inter] or NULL */
    char **summary;    /* [n_inter] or NULL */
    char **text;       /* [n_inter] or NULL */
    char **user_key;   /* [n_users] */
    char **user_split; /* [n_users] or NULL: LastFM's train / val / test user label */
    char **item_key;   /* [n_items + 1] (entries may be NULL) */
    int n_fields;
    char **field_name; /* [n_fields] */
    char ***field_val; /* [n_fields][n_items + 1] */
    int title_field;   /* index into field_*, or -1 */
    pd_arena arena;
};

pulse_dataset *pd_new(const char *name, const char *format);
/* Add a text field column (all values NULL); returns its index or -1 (NOMEM). n_items must be set. */
int pd_add_field(pulse_dataset *ds, const char *name);
int pd_find_field(const pulse_dataset *ds, const char *name);
/* Chooses title_field among title/movie_title/artist_name/name. */
void pd_pick_title(pulse_dataset *ds);
/* Read an items.tsv-style file (header row of names; an id column) into fields. id_col names the id column;
 * id_offset is added to the id (LastFM: +1). Rows whose id is beyond n_items are skipped. With idmap, ids are
 * tokens looked up there (RecBole) and rows with unknown tokens are skipped. recbole_header strips ":type".
 */
pulse_status pd_read_items_tsv(pulse_dataset *ds, const char *path, const char *id_col, int id_offset,
                               int recbole_header, const pd_strmap *idmap);
/* Split line in place at tabs; f[0..min(n, maxf)) get the fields; returns the number of fields n. */
size_t pd_split_tabs(char *line, char **f, size_t maxf);
/* Apply params->max_users (truncate to the first N users). */
void pd_truncate_users(pulse_dataset *ds, int max_users);

pulse_status pd_load_s3rec(const char *path_seq, const char *path_items, const pulse_data_params *p,
                           pulse_dataset *ds);
pulse_status pd_load_lastfm(const char *path_seq, const char *path_items, const pulse_data_params *p,
                            pulse_dataset *ds);
pulse_status pd_load_recbole(const char *path_inter, const char *path_item, const pulse_data_params *p,
                             pulse_dataset *ds);
pulse_status pd_load_amazon(const char *path_reviews, const char *path_meta, const pulse_data_params *p,
                            pulse_dataset *ds);

#endif
