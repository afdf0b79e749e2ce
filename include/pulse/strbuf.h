/* pulse/strbuf.h — the library's one growable string: appended bytes, always NUL-terminated, capacity doubled
 * as it grows. An allocation failure sets `oom` and makes every later append a no-op, so a builder runs its
 * appends unchecked and tests `oom` once at the end. A zero-initialised pulse_strbuf is empty and ready;
 * pulse_strbuf_free releases it (s may be taken over by the caller instead: then do not free). */
#ifndef PULSE_STRBUF_H
#define PULSE_STRBUF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *s; /* NULL until the first append; NUL-terminated after it */
    size_t n, cap;
    int oom;
} pulse_strbuf;

/* append s[0..n) */
void pulse_strbuf_put(pulse_strbuf *b, const char *s, size_t n);
/* append the NUL-terminated s (NULL appends nothing) */
void pulse_strbuf_cat(pulse_strbuf *b, const char *s);
/* append a formatted text of any length */
void pulse_strbuf_printf(pulse_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the text so far, "" when nothing was appended (never NULL) */
const char *pulse_strbuf_str(const pulse_strbuf *b);
void pulse_strbuf_free(pulse_strbuf *b);

#ifdef __cplusplus
}
#endif

#endif
