/* dist/serial.c — include/pulse/dist.h for a build without MPI (PULSE_HAVE_MPI undefined): one process,
 * rank 0 of 1; the collectives leave their buffers as they are; the work queue hands out ranges to this
 * process and passes each result straight to on_result. */
#ifndef PULSE_HAVE_MPI
#include <stdlib.h>

#include "dist/internal.h"
#include "pulse/dist.h"

struct pulse_dist_queue {
    pulse_dist_queue_params p;
    int next, stopped;
    pulse_status err;
};

int pulse_dist_available(void) {
    return 0;
}

pulse_status pulse_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return pulse_set_error(PULSE_ERR_UNSUPPORTED,
                           "dist: this pulse was built without MPI (configure with -DPULSE_MPI=ON and "
                           "libopenmpi-dev installed to run on several ranks)");
}

void pulse_dist_finalize(void) {}

void pulse_dist_abort(int code) {
    exit(code);
}

int pulse_dist_rank(void) {
    return 0;
}

int pulse_dist_size(void) {
    return 1;
}

pulse_status pulse_dist_sum_f32(float *x, size_t n) {
    (void)x;
    (void)n;
    return PULSE_OK;
}

pulse_status pulse_dist_sum_f64(double *x, size_t n) {
    (void)x;
    (void)n;
    return PULSE_OK;
}

pulse_status pulse_dist_sum_i64(int64_t *x, size_t n) {
    (void)x;
    (void)n;
    return PULSE_OK;
}

pulse_status pulse_dist_bcast(void *buf, size_t bytes) {
    (void)buf;
    (void)bytes;
    return PULSE_OK;
}

pulse_status pulse_dist_allgather_f32(float *x, const size_t *counts) {
    (void)x;
    (void)counts;
    return PULSE_OK;
}

void pulse_dist_share(int n, int rank, int size, int *lo, int *hi) {
    pdist_share(n, rank, size, lo, hi);
}

pulse_status pulse_dist_agree(pulse_status st) {
    return st;
}

pulse_status pulse_dist_queue_new(const pulse_dist_queue_params *p, pulse_dist_queue **out) {
    *out = NULL;
    if (!p || p->n_items < 0 || p->max_range < 1 || p->guided < 0 || !p->on_result)
        return pulse_set_error(PULSE_ERR_ARG,
                               "dist queue: expected n_items >= 0, max_range >= 1, guided >= 0 "
                               "and an on_result callback");
    pulse_dist_queue *q = pulse_calloc(1, sizeof *q);
    if (!q) return PULSE_ERR_NOMEM;
    q->p = *p;
    *out = q;
    return PULSE_OK;
}

pulse_status pulse_dist_queue_next(pulse_dist_queue *q, int max, int *first, int *count) {
    *first = q->next;
    *count = 0;
    if (max < 1) return pulse_set_error(PULSE_ERR_ARG, "dist queue: expected max >= 1, found %d", max);
    if (q->stopped) return PULSE_OK;
    *count = pdist_range_size(q->p.n_items - q->next, 1, max, q->p.max_range, q->p.guided);
    q->next += *count;
    return PULSE_OK;
}

pulse_status pulse_dist_queue_result(pulse_dist_queue *q, const void *msg, size_t n) {
    pulse_status st = q->p.on_result(q->p.ud, 0, msg, n);
    if (st && !q->err) q->err = st;
    return st;
}

int pulse_dist_queue_stopped(pulse_dist_queue *q) {
    return q->stopped;
}

void pulse_dist_queue_stop(pulse_dist_queue *q) {
    q->stopped = 1;
}

pulse_status pulse_dist_queue_finish(pulse_dist_queue *q, pulse_status st, const void *tail, size_t n) {
    if (!q) return st;
    if (!st && q->p.on_tail) st = q->p.on_tail(q->p.ud, 0, tail, n);
    free(q);
    return st;
}
#endif
