/* core/progress.c — owns the stderr progress line (done/total, rate, ETA) for long jobs: redrawn in place on
 * a terminal, whole newline-terminated lines (throttled to one per 10 s) in logs and pipes. */
#include "pulse/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* pulse_options.quiet (core/options.c) */
static int quiet_now(void) {
    return pulse_get_options()->quiet;
}

static void fmt_secs(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%dh%02dm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
    else
        snprintf(buf, n, "%ds", t);
}

static void print_line(pulse_progress *p, size_t done, const char *extra, int final) {
    double now = pulse_now(), el = now - p->t_start;
    const size_t run = done > p->start ? done - p->start : 0; /* this run's work */
    double rate = el > 0 ? (double)run / el : 0;
    char eta[32], elapsed[32], rs[48], tot[32] = "";
    fmt_secs(elapsed, sizeof elapsed, el);
    fmt_secs(eta, sizeof eta, (rate > 0 && p->total >= done) ? (double)(p->total - done) / rate : -1);
    if (rate >= 1.0 || run == 0)
        snprintf(rs, sizeof rs, "%.1f %s/s", rate, p->unit);
    else
        snprintf(rs, sizeof rs, "%.2f s/%s", el / (double)run, p->unit);
    if (p->total) snprintf(tot, sizeof tot, "/%zu", p->total);
    fprintf(stderr, "%s%s %zu%s %s  %s  elapsed %s", p->tty ? "\r" : "", p->label, done, tot, p->unit, rs,
            elapsed);
    if (p->total) fprintf(stderr, "  ETA %s", eta);
    fprintf(stderr, "%s%s%s", extra ? "  " : "", extra ? extra : "", final || !p->tty ? "\n" : "");
    fflush(stderr);
}

void pulse_progress_begin(pulse_progress *p, const char *label, const char *unit, size_t total) {
    pulse_progress_begin_at(p, label, unit, total, 0);
}

void pulse_progress_begin_at(pulse_progress *p, const char *label, const char *unit, size_t total,
                             size_t start) {
    p->label = label;
    p->unit = unit ? unit : "it";
    p->total = total;
    p->start = start;
    p->t_start = p->t_last = pulse_now();
    p->quiet = quiet_now();
    p->tty = isatty(fileno(stderr));
}

void pulse_progress_update(pulse_progress *p, size_t done, const char *extra) {
    if (p->quiet) return;
    double now = pulse_now();
    if (now - p->t_last < (p->tty ? 0.25 : 10.0)) return;
    p->t_last = now;
    print_line(p, done, extra, 0);
}

void pulse_progress_end(pulse_progress *p, size_t done, const char *extra) {
    if (p->quiet) return;
    print_line(p, done, extra, 1);
}
