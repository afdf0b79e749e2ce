/* dist/internal.h — what the MPI (src/dist/mpi.c) and the serial (src/dist/serial.c) implementations of
 * include/pulse/dist.h share: the size of the next range the work queue hands out, the even split of a batch.
 */
#ifndef PULSE_DIST_INTERNAL_H
#define PULSE_DIST_INTERNAL_H

/* the size of the next range: left items, ranks, the caller's max and the queue's params */
static inline int pdist_range_size(int left, int ranks, int max, int max_range, int guided) {
    int n = max < max_range ? max : max_range;
    if (ranks > 1 && guided > 0) {
        long long div = (long long)guided * ranks;
        int g = (int)((left + div - 1) / div);
        if (g < n) n = g;
    }
    if (n > left) n = left;
    return n < 1 && left > 0 ? 1 : n;
}

/* the even contiguous split of n items over size ranks (pulse_dist_share) */
static inline void pdist_share(int n, int rank, int size, int *lo, int *hi) {
    if (size < 1) size = 1;
    *lo = (int)((long long)n * rank / size);
    *hi = (int)((long long)n * (rank + 1) / size);
}

#endif
