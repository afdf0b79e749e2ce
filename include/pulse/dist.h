/* pulse/dist.h — scale-out over MPI (src/dist/): this process's rank and the number of ranks, start-up and
 * shut-down, the collectives the stages call (sums of float / double / int64 arrays, broadcast, all-gather,
 * agreeing on a failure) and the dynamic work queue of the generation stages. src/dist/ is the only place
 * that includes mpi.h. A build without MPI (-DPULSE_MPI=OFF, or no MPI found) compiles a serial
 * implementation of the same calls: rank 0 of 1, every collective a no-op, the queue handing out ranges to
 * the one process. A program that never calls pulse_dist_init runs as rank 0 of 1 as well (the CLI
 * initialises MPI only when a launcher such as mpirun or srun started it). */
#ifndef PULSE_DIST_H
#define PULSE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has MPI. */
int pulse_dist_available(void);
/* Initialises MPI (threads: serialized at least, for the queue's service thread on rank 0). Without MPI in
 * the build: PULSE_ERR_UNSUPPORTED. Idempotent. */
pulse_status pulse_dist_init(int *argc, char ***argv);
/* Finalises MPI when pulse_dist_init started it; a no-op otherwise. */
void pulse_dist_finalize(void);
/* Ends every rank of the job (MPI_Abort) with this exit code; exits the process without MPI. */
void pulse_dist_abort(int code);
int pulse_dist_rank(void); /* 0 when MPI is not running */
int pulse_dist_size(void); /* 1 when MPI is not running */

/* ---- collectives: every rank calls them in the same order (no-ops on one rank) ---- */
pulse_status pulse_dist_sum_f32(float *x, size_t n);    /* x = the sum of every rank's x, on every rank */
pulse_status pulse_dist_sum_f64(double *x, size_t n);   /* the same for doubles */
pulse_status pulse_dist_sum_i64(int64_t *x, size_t n);  /* the same for int64 */
pulse_status pulse_dist_bcast(void *buf, size_t bytes); /* rank 0's bytes to every rank */
/* x holds this rank's block of counts[rank] floats at offset counts[0] + ... + counts[rank - 1]; afterwards
 * every rank holds every rank's block (an all-gather in place). counts: pulse_dist_size() entries, the same
 * on every rank, each below 2^31. */
pulse_status pulse_dist_allgather_f32(float *x, const size_t *counts);
/* The contiguous share [*lo, *hi) of n items that rank `rank` of `size` takes in an even split (the first
 * ranks' shares may be one smaller): floor(n r / size) .. floor(n (r + 1) / size). */
void pulse_dist_share(int n, int rank, int size, int *lo, int *hi);
/* Every rank passes its status; all get PULSE_OK when every rank had PULSE_OK, otherwise the status of the
 * lowest failing rank with its message ("rank R of N: <message>") on every rank. */
pulse_status pulse_dist_agree(pulse_status st);

/* ---- the dynamic work queue (generation: rank 0 hands out ranges of n items, results flow to rank 0) ----
 * Every rank creates the queue with the same n_items after a collective point; rank 0 runs a service thread
 * that answers the other ranks' requests and receives their results while rank 0 works on ranges itself.
 * on_result runs on rank 0 for every result of every rank (its own included), one at a time (the queue's
 * lock held), in arrival order; on_tail runs on rank 0 once for every rank's closing bytes. Neither runs on
 * the other ranks. */
typedef struct pulse_dist_queue pulse_dist_queue;
typedef pulse_status (*pulse_dist_result_fn)(void *ud, int rank, const void *msg, size_t n);
typedef struct {
    int n_items;
    int max_range; /* the largest range handed out at once (>= 1) */
    /* > 1 ranks: a range is ceil(left / (guided * ranks)) items, at most max_range, at least 1 (guided
     * self-scheduling: big ranges first, small ones at the end so that ranks finish together); 0 = always
     * max_range. One rank always gets max_range. */
    int guided;
    pulse_dist_result_fn on_result;
    pulse_dist_result_fn on_tail; /* may be NULL */
    void *ud;
} pulse_dist_queue_params;
pulse_status pulse_dist_queue_new(const pulse_dist_queue_params *p, pulse_dist_queue **out);
/* The next range [*first, *first + *count) for this rank, *count <= max (max >= 1); *count = 0 when the
 * queue is drained or stopped. */
pulse_status pulse_dist_queue_next(pulse_dist_queue *q, int max, int *first, int *count);
/* Hands one result to rank 0's on_result (a call on rank 0, a message from the others). A status from
 * on_result (or a failure another rank reported) comes back here on rank 0, so the caller stops. */
pulse_status pulse_dist_queue_result(pulse_dist_queue *q, const void *msg, size_t n);
/* 1 once the queue was stopped (pulse_dist_queue_stop, or a failure reported by a rank). */
int pulse_dist_queue_stopped(pulse_dist_queue *q);
/* Stops handing out ranges (rank 0: e.g. a requested number of results was reached). Results still
 * arriving are passed on. */
void pulse_dist_queue_stop(pulse_dist_queue *q);
/* Ends this rank's part: st is this rank's outcome, tail (may be NULL) its closing bytes (e.g. counters).
 * Other ranks send both to rank 0 (a failure with its message) and return st. Rank 0 passes its own tail,
 * waits until every rank has ended, stops the service thread and returns: st when it failed, else the
 * first failure another rank reported ("rank R: <message>") or an on_result / on_tail failure. Frees q. */
pulse_status pulse_dist_queue_finish(pulse_dist_queue *q, pulse_status st, const void *tail, size_t n);

#ifdef __cplusplus
}
#endif
#endif
