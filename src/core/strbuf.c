/* core/strbuf.c — owns pulse_strbuf (pulse/strbuf.h): the growable string every text builder of the library
 * uses (chat prompts, Tree-of-Thought node texts and logs, dataset writers). */
#include "pulse/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/core.h"

void pulse_strbuf_put(pulse_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) {
            if (c > ((size_t)-1) / 2) {
                b->oom = 1;
                return;
            }
            c *= 2;
        }
        char *q = pulse_realloc(b->s, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = c;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void pulse_strbuf_cat(pulse_strbuf *b, const char *s) {
    if (s) pulse_strbuf_put(b, s, strlen(s));
}

void pulse_strbuf_printf(pulse_strbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        pulse_strbuf_put(b, tmp, (size_t)k);
        return;
    }
    char *big = malloc((size_t)k + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    pulse_strbuf_put(b, big, (size_t)k);
    free(big);
}

const char *pulse_strbuf_str(const pulse_strbuf *b) {
    return b->s ? b->s : "";
}

void pulse_strbuf_free(pulse_strbuf *b) {
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}
