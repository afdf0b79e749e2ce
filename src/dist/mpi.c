/* dist/mpi.c — include/pulse/dist.h on MPI (built when PULSE_HAVE_MPI is defined; the only file that
 * includes mpi.h): start-up with thread support, rank and size, the collectives on MPI_COMM_WORLD with errors
 * returned (MPI_ERRORS_RETURN) as pulse_status, and the work queue: rank 0 runs a service thread that polls
 * (MPI_Iprobe, sleeping 0.2 ms when idle, so it takes no core from rank 0's own work) for the other ranks'
 * range requests, results and closing messages, while rank 0's main thread takes ranges and hands its own
 * results in under the queue's lock. */
#ifdef PULSE_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/internal.h"
#include "pulse/dist.h"

enum { TAG_REQ = 101, TAG_RANGE, TAG_RESULT, TAG_TAIL, TAG_FAIL };

static int g_inited, g_rank, g_size = 1;

static pulse_status mpi_fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    return pulse_set_error(PULSE_ERR_IO, "dist: %s failed on rank %d of %d: %s", what, g_rank, g_size, s);
}

int pulse_dist_available(void) {
    return 1;
}

pulse_status pulse_dist_init(int *argc, char ***argv) {
    if (g_inited) return PULSE_OK;
    int provided = 0, already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread");
    } else
        MPI_Query_thread(&provided);
    g_inited = already ? 2 : 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (provided < MPI_THREAD_SERIALIZED)
        return pulse_set_error(
            PULSE_ERR_UNSUPPORTED,
            "dist: this MPI gives thread level %d; expected MPI_THREAD_SERIALIZED or above "
            "(rank 0 serves the work queue from a second thread)",
            provided);
    return PULSE_OK;
}

void pulse_dist_finalize(void) {
    if (g_inited == 1) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
    }
    g_inited = 0;
    g_rank = 0;
    g_size = 1;
}

void pulse_dist_abort(int code) {
    if (g_inited && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int pulse_dist_rank(void) {
    return g_rank;
}

int pulse_dist_size(void) {
    return g_size;
}

/* MPI counts are int: large arrays go in pieces */
#define PD_PIECE ((size_t)1 << 28)

static pulse_status sum(void *x, size_t n, size_t esize, MPI_Datatype t, const char *what) {
    if (g_size <= 1 || n == 0) return PULSE_OK;
    char *p = x;
    for (size_t off = 0; off < n; off += PD_PIECE) {
        size_t k = n - off < PD_PIECE ? n - off : PD_PIECE;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + off * esize, (int)k, t, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
    }
    return PULSE_OK;
}

pulse_status pulse_dist_sum_f32(float *x, size_t n) {
    return sum(x, n, sizeof *x, MPI_FLOAT, "MPI_Allreduce (float sum)");
}

pulse_status pulse_dist_sum_f64(double *x, size_t n) {
    return sum(x, n, sizeof *x, MPI_DOUBLE, "MPI_Allreduce (double sum)");
}

pulse_status pulse_dist_sum_i64(int64_t *x, size_t n) {
    return sum(x, n, sizeof *x, MPI_INT64_T, "MPI_Allreduce (int64 sum)");
}

pulse_status pulse_dist_bcast(void *buf, size_t bytes) {
    if (g_size <= 1 || bytes == 0) return PULSE_OK;
    char *p = buf;
    for (size_t off = 0; off < bytes; off += PD_PIECE) {
        size_t k = bytes - off < PD_PIECE ? bytes - off : PD_PIECE;
        int rc = MPI_Bcast(p + off, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return PULSE_OK;
}

pulse_status pulse_dist_allgather_f32(float *x, const size_t *counts) {
    if (g_size <= 1) return PULSE_OK;
    int *cnt = malloc(sizeof(int) * 2 * (size_t)g_size);
    if (!cnt) return pulse_set_error(PULSE_ERR_NOMEM, "dist: out of memory for an all-gather");
    int *disp = cnt + g_size;
    size_t off = 0;
    for (int r = 0; r < g_size; r++) {
        if (counts[r] > (size_t)0x7fffffff || off > (size_t)0x7fffffff) {
            free(cnt);
            return pulse_set_error(PULSE_ERR_RANGE,
                                   "dist: an all-gather of %zu floats from rank %d at offset %zu; expected "
                                   "blocks and offsets below 2^31",
                                   counts[r], r, off);
        }
        cnt[r] = (int)counts[r];
        disp[r] = (int)off;
        off += counts[r];
    }
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, disp, MPI_FLOAT, MPI_COMM_WORLD);
    free(cnt);
    return rc == MPI_SUCCESS ? PULSE_OK : mpi_fail(rc, "MPI_Allgatherv (float)");
}

void pulse_dist_share(int n, int rank, int size, int *lo, int *hi) {
    pdist_share(n, rank, size, lo, hi);
}

pulse_status pulse_dist_agree(pulse_status st) {
    if (g_size <= 1) return st;
    int mine = st ? g_rank : g_size, first = g_size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce (agree)");
    if (first == g_size) return PULSE_OK;
    struct {
        int st;
        char msg[1536];
    } m;
    memset(&m, 0, sizeof m);
    if (g_rank == first) {
        m.st = (int)st;
        snprintf(m.msg, sizeof m.msg, "%s", pulse_last_error());
    }
    rc = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast (agree)");
    m.msg[sizeof m.msg - 1] = 0;
    return pulse_set_error((pulse_status)m.st, "rank %d of %d: %s", first, g_size, m.msg);
}

/* ---- the work queue ---- */
struct pulse_dist_queue {
    pulse_dist_queue_params p;
    pthread_mutex_t mu;
    pthread_t th;
    int has_thread, has_mutex;
    int next, stopped, active; /* next item, stopped flag, ranks (other than 0) still running */
    pulse_status err;          /* rank 0: the first failure (message in errmsg) */
    char errmsg[2048];
};

static void keep_error(pulse_dist_queue *q, pulse_status st, const char *msg) {
    if (q->err) return;
    q->err = st;
    snprintf(q->errmsg, sizeof q->errmsg, "%s", msg);
    q->stopped = 1;
}

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* rank 0's service thread: answers requests, takes results and closing messages until every other rank has
 * ended (or rank 0's main thread stopped it after its own failure: active set to 0 under the lock) */
static void *serve(void *arg) {
    pulse_dist_queue *q = arg;
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        int active = q->active;
        pthread_mutex_unlock(&q->mu);
        if (active <= 0) break;
        int flag = 0;
        MPI_Status s;
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s) != MPI_SUCCESS) {
            pthread_mutex_lock(&q->mu);
            keep_error(q, PULSE_ERR_IO, "dist: MPI_Iprobe failed on rank 0 (a rank may have died)");
            q->active = 0;
            pthread_mutex_unlock(&q->mu);
            break;
        }
        if (!flag) {
            sleep_us(200);
            continue;
        }
        int n = 0;
        MPI_Get_count(&s, MPI_BYTE, &n);
        if ((size_t)n + 1 > cap) {
            char *nb = realloc(buf, (size_t)n + 1);
            if (!nb) {
                pthread_mutex_lock(&q->mu);
                keep_error(q, PULSE_ERR_NOMEM, "dist: out of memory receiving a message on rank 0");
                q->active = 0;
                pthread_mutex_unlock(&q->mu);
                break;
            }
            buf = nb;
            cap = (size_t)n + 1;
        }
        const int src = s.MPI_SOURCE, tag = s.MPI_TAG;
        if (MPI_Recv(buf, n, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            pthread_mutex_lock(&q->mu);
            keep_error(q, PULSE_ERR_IO, "dist: MPI_Recv failed on rank 0");
            q->active = 0;
            pthread_mutex_unlock(&q->mu);
            break;
        }
        buf[n] = 0;
        pthread_mutex_lock(&q->mu);
        if (tag == TAG_REQ) {
            int max = 1, r[2] = {q->next, 0};
            if (n == (int)sizeof max) memcpy(&max, buf, sizeof max);
            if (!q->stopped && max >= 1) {
                r[1] = pdist_range_size(q->p.n_items - q->next, g_size, max, q->p.max_range, q->p.guided);
                q->next += r[1];
            }
            pthread_mutex_unlock(&q->mu);
            if (MPI_Send(r, 2, MPI_INT, src, TAG_RANGE, MPI_COMM_WORLD) != MPI_SUCCESS) {
                pthread_mutex_lock(&q->mu);
                keep_error(q, PULSE_ERR_IO, "dist: MPI_Send of a range failed on rank 0");
                q->active = 0;
                pthread_mutex_unlock(&q->mu);
                break;
            }
            continue;
        }
        if (tag == TAG_RESULT) {
            if (!q->err) {
                pulse_status st = q->p.on_result(q->p.ud, src, buf, (size_t)n);
                if (st) keep_error(q, st, pulse_last_error());
            }
        } else if (tag == TAG_TAIL) {
            if (q->p.on_tail) { /* counters, also after a stop */
                pulse_status st = q->p.on_tail(q->p.ud, src, buf, (size_t)n);
                if (st) keep_error(q, st, pulse_last_error());
            }
            q->active--;
        } else if (tag == TAG_FAIL) {
            int code = (int)PULSE_ERR_STATE;
            char msg[2048];
            if (n >= (int)sizeof code) memcpy(&code, buf, sizeof code);
            snprintf(msg, sizeof msg, "rank %d of %d: %s", src, g_size,
                     n > (int)sizeof code ? buf + sizeof code : "failed");
            keep_error(q, code ? (pulse_status)code : PULSE_ERR_STATE, msg);
            q->active--;
        }
        pthread_mutex_unlock(&q->mu);
    }
    free(buf);
    return NULL;
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
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q);
        return pulse_set_error(PULSE_ERR_STATE, "dist queue: pthread_mutex_init failed");
    }
    q->has_mutex = 1;
    if (g_rank == 0 && g_size > 1) {
        q->active = g_size - 1;
        if (pthread_create(&q->th, NULL, serve, q) != 0) {
            pthread_mutex_destroy(&q->mu);
            free(q);
            return pulse_set_error(PULSE_ERR_STATE, "dist queue: could not start rank 0's service thread");
        }
        q->has_thread = 1;
    }
    *out = q;
    return PULSE_OK;
}

pulse_status pulse_dist_queue_next(pulse_dist_queue *q, int max, int *first, int *count) {
    *first = 0;
    *count = 0;
    if (max < 1) return pulse_set_error(PULSE_ERR_ARG, "dist queue: expected max >= 1, found %d", max);
    if (g_rank == 0) {
        pthread_mutex_lock(&q->mu);
        *first = q->next;
        if (!q->stopped) {
            *count = pdist_range_size(q->p.n_items - q->next, g_size, max, q->p.max_range, q->p.guided);
            q->next += *count;
        }
        pthread_mutex_unlock(&q->mu);
        return PULSE_OK;
    }
    if (q->stopped) return PULSE_OK;
    int rc = MPI_Send(&max, 1, MPI_INT, 0, TAG_REQ, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Send (range request to rank 0)");
    /* wait without spinning a core: rank 0 answers within a poll period */
    int r[2] = {0, 0}, flag = 0;
    MPI_Request req;
    rc = MPI_Irecv(r, 2, MPI_INT, 0, TAG_RANGE, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Irecv (range from rank 0)");
    while (!flag) {
        rc = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Test (range from rank 0)");
        if (!flag) sleep_us(100);
    }
    *first = r[0];
    *count = r[1];
    if (*count == 0) q->stopped = 1;
    return PULSE_OK;
}

pulse_status pulse_dist_queue_result(pulse_dist_queue *q, const void *msg, size_t n) {
    if (n > (size_t)0x7fffffff)
        return pulse_set_error(PULSE_ERR_RANGE, "dist queue: a result of %zu bytes; expected < 2 GiB", n);
    if (g_rank == 0) {
        pthread_mutex_lock(&q->mu);
        pulse_status st = q->err;
        if (!st) {
            st = q->p.on_result(q->p.ud, 0, msg, n);
            if (st) keep_error(q, st, pulse_last_error());
        }
        if (st) pulse_set_error(st, "%s", q->errmsg);
        pthread_mutex_unlock(&q->mu);
        return st;
    }
    int rc = MPI_Send(msg, (int)n, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? PULSE_OK : mpi_fail(rc, "MPI_Send (a result to rank 0)");
}

int pulse_dist_queue_stopped(pulse_dist_queue *q) {
    if (g_rank != 0) return q->stopped;
    pthread_mutex_lock(&q->mu);
    int s = q->stopped;
    pthread_mutex_unlock(&q->mu);
    return s;
}

void pulse_dist_queue_stop(pulse_dist_queue *q) {
    if (g_rank != 0) {
        q->stopped = 1;
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->stopped = 1;
    pthread_mutex_unlock(&q->mu);
}

static void queue_free(pulse_dist_queue *q) {
    if (q->has_mutex) pthread_mutex_destroy(&q->mu);
    free(q);
}

pulse_status pulse_dist_queue_finish(pulse_dist_queue *q, pulse_status st, const void *tail, size_t n) {
    if (!q) return st;
    if (g_rank != 0) {
        int rc;
        if (st) {
            const char *m = pulse_last_error();
            size_t ml = strlen(m);
            char *b = malloc(sizeof(int) + ml + 1);
            int code = (int)st;
            if (b) {
                memcpy(b, &code, sizeof code);
                memcpy(b + sizeof code, m, ml + 1);
                rc = MPI_Send(b, (int)(sizeof code + ml), MPI_BYTE, 0, TAG_FAIL, MPI_COMM_WORLD);
                free(b);
            } else
                rc = MPI_Send(&code, 1, MPI_INT, 0, TAG_FAIL, MPI_COMM_WORLD);
        } else
            rc = MPI_Send(tail, (int)n, MPI_BYTE, 0, TAG_TAIL, MPI_COMM_WORLD);
        queue_free(q);
        if (!st && rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Send (closing message to rank 0)");
        return st;
    }
    char own[2048];
    if (st) snprintf(own, sizeof own, "%s", pulse_last_error());
    pthread_mutex_lock(&q->mu);
    if (st) {
        q->stopped = 1;
        q->active = 0;         /* rank 0 failed: stop serving; the caller ends the job (pulse_dist_abort) */
    } else if (q->p.on_tail) { /* rank 0's own counters, also after a stop */
        pulse_status ts = q->p.on_tail(q->p.ud, 0, tail, n);
        if (ts) keep_error(q, ts, pulse_last_error());
    }
    pthread_mutex_unlock(&q->mu);
    if (q->has_thread) pthread_join(q->th, NULL);
    if (st)
        pulse_set_error(st, "%s", own);
    else if (q->err) {
        st = q->err;
        pulse_set_error(st, "%s", q->errmsg);
    }
    queue_free(q);
    return st;
}
#endif
