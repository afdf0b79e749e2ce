/* data/io.c — owns the data module's plumbing: the string arena, the string->index map, the streaming
 * line reader (plain or gzip through zlib, bounded line length, NUL bytes rejected, folders refused),
 * integer parsing and the quoting of dataset text in error messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/internal.h"

/* ---- arena ---- */
char *pd_arena_strndup(pd_arena *a, const char *s, size_t n) {
    pd_block *b = a->head;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > (1u << 20) ? n + 1 : (1u << 20);
        pd_block *nb = malloc(sizeof(pd_block) + cap);
        if (!nb) {
            pulse_set_error(PULSE_ERR_NOMEM, "out of memory storing a %zu-byte string", n);
            return NULL;
        }
        nb->used = 0;
        nb->cap = cap;
        if (b && n + 1 > (1u << 19)) { /* a big string gets its own block behind the current one */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    char *d = b->data + b->used;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    b->used += n + 1;
    return d;
}

void pd_arena_free(pd_arena *a) {
    pd_block *b = a->head;
    while (b) {
        pd_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* ---- string map: pulse_strmap + one value per key ---- */
void pd_strmap_init(pd_strmap *m) {
    memset(m, 0, sizeof *m);
}

void pd_strmap_free(pd_strmap *m) {
    pulse_strmap_free(&m->s);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int pd_strmap_get(const pd_strmap *m, const char *key, size_t len) {
    int id = pulse_strmap_get(&m->s, key, len);
    return id < 0 ? -1 : m->vals[id];
}

pulse_status pd_strmap_put(pd_strmap *m, const char *key, size_t len, int val, int *found, int *val_out) {
    int id = pulse_strmap_get(&m->s, key, len);
    if (id >= 0) {
        if (found) *found = 1;
        if (val_out) *val_out = m->vals[id];
        return PULSE_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        int *v = realloc(m->vals, cap * sizeof *v);
        if (!v)
            return pulse_set_error(PULSE_ERR_NOMEM, "out of memory growing a string map to %zu keys", cap);
        m->vals = v;
        m->cap = cap;
    }
    id = pulse_strmap_add(&m->s, key, len);
    if (id < 0 || pulse_strmap_map(&m->s, id, 0) < -1) return PULSE_ERR_NOMEM;
    m->vals[id] = val;
    m->n++;
    if (found) *found = 0;
    if (val_out) *val_out = val;
    return PULSE_OK;
}

/* ---- quoting dataset text in messages ---- */
/* length of the well-formed UTF-8 sequence at s (n bytes left), 0 when it is not one */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t l = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    if (l == 0 || l > n || (l == 2 && s[0] < 0xc2) || (l == 4 && s[0] > 0xf4)) return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (l == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (l == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return l;
}

const char *pd_esc(const char *s, size_t len, size_t max) {
    static _Thread_local char bufs[4][1024];
    static _Thread_local int slot;
    char *out = bufs[slot];
    slot = (slot + 1) & 3;
    const size_t cap = sizeof bufs[0] - 8; /* room for "..." and the NUL */
    if (!s) s = "";
    if (len == (size_t)-1) len = strlen(s);
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len && i < max) {
        size_t l = utf8_len(u + i, len - i);
        char esc[16];
        size_t el;
        if (l == 3 && u[i] == 0xef && u[i + 1] == 0xbb && u[i + 2] == 0xbf) /* BOM, invisible otherwise */
            el = (size_t)snprintf(esc, sizeof esc, "\\xEF\\xBB\\xBF");
        else if (l == 1 && (u[i] < 0x20 || u[i] == 0x7f))
            el = u[i] == '\r'   ? (size_t)snprintf(esc, sizeof esc, "\\r")
                 : u[i] == '\n' ? (size_t)snprintf(esc, sizeof esc, "\\n")
                 : u[i] == '\t' ? (size_t)snprintf(esc, sizeof esc, "\\t")
                                : (size_t)snprintf(esc, sizeof esc, "\\x%02X", u[i]);
        else if (l == 0)
            el = (size_t)snprintf(esc, sizeof esc, "\\x%02X", u[i]), l = 1;
        else
            el = 0;
        size_t need = el ? el : l;
        if (o + need > cap || i + (l ? l : 1) > max) break;
        if (el)
            memcpy(out + o, esc, el);
        else
            memcpy(out + o, s + i, l);
        o += need;
        i += l ? l : 1;
    }
    if (i < len) memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
    return out;
}

/* ---- line reader ---- */
pulse_status pd_reader_open(pd_reader *r, const char *path) {
    memset(r, 0, offsetof(pd_reader, rbuf));
    r->rpos = r->rlen = 0;
    r->eof = 0;
    r->path = path;
    r->max_line = PD_MAX_LINE;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pulse_set_error(PULSE_ERR_IO, "%s: is a directory; expected a file", path);
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return pulse_set_error(PULSE_ERR_IO, "%s: cannot open: %s", path,
                               errno ? strerror(errno) : "out of memory");
    gzbuffer(r->gz, 1 << 17);
    r->cap = 4096;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        gzclose(r->gz);
        r->gz = NULL;
        return pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory", path);
    }
    return PULSE_OK;
}

void pd_reader_close(pd_reader *r) {
    if (r->gz) gzclose(r->gz);
    r->gz = NULL;
    free(r->buf);
    r->buf = NULL;
}

static int reader_fill(pd_reader *r) {
    if (r->eof) return 0;
    int got = gzread(r->gz, r->rbuf, (unsigned)sizeof r->rbuf);
    if (got < 0) {
        int zerr = 0;
        const char *msg = gzerror(r->gz, &zerr);
        r->err = pulse_set_error(PULSE_ERR_IO, "%s:%zu: read error (%s)", r->path, r->line_no + 1,
                                 msg ? msg : "unknown");
        return -1;
    }
    if (got == 0) {
        /* a truncated gzip stream reads as a short file; zlib reports it through gzerror */
        int zerr = 0;
        const char *msg = gzerror(r->gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END) {
            r->err = pulse_set_error(PULSE_ERR_IO, "%s:%zu: read error (%s)", r->path, r->line_no + 1,
                                     msg ? msg : "unknown");
            return -1;
        }
        r->eof = 1;
        return 0;
    }
    r->rpos = 0;
    r->rlen = (size_t)got;
    return 1;
}

int pd_reader_next(pd_reader *r, char **line, size_t *len) {
    r->len = 0;
    int any = 0;
    for (;;) {
        if (r->rpos >= r->rlen) {
            int f = reader_fill(r);
            if (f < 0) return -1;
            if (f == 0) break;
        }
        any = 1;
        const unsigned char *s = r->rbuf + r->rpos;
        size_t avail = r->rlen - r->rpos;
        const unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (r->len + take + 1 > r->max_line) {
            r->err = pulse_set_error(PULSE_ERR_PARSE,
                                     "%s:%zu: expected a line shorter than %zu bytes, found a longer one",
                                     r->path, r->line_no + 1, r->max_line);
            return -1;
        }
        if (r->len + take + 1 > r->cap) {
            size_t nc = r->cap;
            while (nc < r->len + take + 1) nc *= 2;
            char *nb = realloc(r->buf, nc);
            if (!nb) {
                r->err = pulse_set_error(PULSE_ERR_NOMEM, "%s:%zu: out of memory reading a line", r->path,
                                         r->line_no + 1);
                return -1;
            }
            r->buf = nb;
            r->cap = nc;
        }
        memcpy(r->buf + r->len, s, take);
        r->len += take;
        r->rpos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any && r->len == 0) return 0;
    r->line_no++;
    if (r->len && r->buf[r->len - 1] == '\r') r->len--;
    r->buf[r->len] = 0;
    if (memchr(r->buf, 0, r->len)) {
        r->err =
            pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: expected text, found a NUL byte", r->path, r->line_no);
        return -1;
    }
    *line = r->buf;
    *len = r->len;
    return 1;
}

int pd_parse_uint(const char *s, size_t n, long long max, long long *out) {
    if (n == 0) return -1;
    long long v = 0;
    int big = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (!big) {
            v = v * 10 + (s[i] - '0');
            if (v > max) big = 1;
        }
    }
    if (big) return -2;
    *out = v;
    return 0;
}

/* Split line in place at tabs: f[0..min(n, maxf)) point at the fields; returns the field count n. */
size_t pd_split_tabs(char *line, char **f, size_t maxf) {
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *t = strchr(p, '\t');
        if (n < maxf) f[n] = p;
        n++;
        if (!t) break;
        *t = 0;
        p = t + 1;
    }
    return n;
}
