/* core/error.c — owns pulse_status names, the thread-local error message buffer and the box that carries an
 * error out of a parallel region. */
#include "pulse/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_err[2048];

const char *pulse_status_str(pulse_status st) {
    switch (st) {
    case PULSE_OK:
        return "ok";
    case PULSE_ERR_IO:
        return "io error";
    case PULSE_ERR_PARSE:
        return "parse error";
    case PULSE_ERR_FORMAT:
        return "format error";
    case PULSE_ERR_ARG:
        return "invalid argument";
    case PULSE_ERR_NOMEM:
        return "out of memory";
    case PULSE_ERR_UNSUPPORTED:
        return "unsupported";
    case PULSE_ERR_STATE:
        return "invalid state";
    case PULSE_ERR_RANGE:
        return "out of range";
    }
    return "unknown status";
}

const char *pulse_last_error(void) {
    return g_err;
}

void pulse_clear_error(void) {
    g_err[0] = 0;
}

pulse_status pulse_set_error(pulse_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

pulse_status pulse_wrap_error(pulse_status st, const char *fmt, ...) {
    char prefix[1024], old[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    size_t pl = strlen(prefix), ol = strlen(old);
    if (pl > sizeof g_err - 3) pl = sizeof g_err - 3;
    memcpy(g_err, prefix, pl);
    memcpy(g_err + pl, ": ", 2);
    if (ol > sizeof g_err - pl - 3) ol = sizeof g_err - pl - 3;
    memcpy(g_err + pl + 2, old, ol);
    g_err[pl + 2 + ol] = 0;
    return st;
}

void pulse_error_box_keep(pulse_error_box *b, pulse_status st) {
    if (!b || st == PULSE_OK) return;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&b->claimed, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    snprintf(b->msg, sizeof b->msg, "%s", g_err);
    __atomic_store_n(&b->st, st, __ATOMIC_RELEASE);
}

pulse_status pulse_error_box_raise(const pulse_error_box *b) {
    pulse_status st = b ? __atomic_load_n(&b->st, __ATOMIC_ACQUIRE) : PULSE_OK;
    if (st == PULSE_OK) return PULSE_OK;
    return pulse_set_error(st, "%s", b->msg[0] ? b->msg : pulse_status_str(st));
}
