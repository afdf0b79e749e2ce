/* kernels/blas.c — owns how the kernels call OpenBLAS: one thread pool (OpenMP) for everything. A pthreads
 * OpenBLAS keeps its own worker threads spinning after each call; interleaved with OpenMP regions (layernorm,
 * attention, GELU, ...) the two pools fight for the cores and a 2 ms backward can take 100 ms. So the kernels
 * hold OpenBLAS at 1 thread and split each product over OpenMP threads themselves (along the larger output
 * dimension), which keeps sgemm's own blocking intact. A model's thread count reaches these splits through
 * OpenMP's per-thread setting (pulse_threads_enter); OpenBLAS has no per-call count, and its one global
 * setting is the only process-wide thing the kernels change (to 1, for a pthreads build: pk_blas_single). */
#include <cblas.h>
#include <omp.h>

#include "kernels/internal.h"

void pk_blas_single(void) {
    pk_blas_check_level();
    /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP (already single-threaded inside our regions)
     */
    if (openblas_get_parallel() == 1 && openblas_get_num_threads() > 1) openblas_set_num_threads(1);
}

void pulse_set_num_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
}

int pulse_get_num_threads(void) {
    return omp_get_max_threads();
}

int pulse_threads_enter(int n) {
    const int prev = omp_get_max_threads();
    if (n > 0 && n != prev) omp_set_num_threads(n);
    return prev;
}

void pulse_threads_leave(int prev) {
    if (prev > 0 && omp_get_max_threads() != prev) omp_set_num_threads(prev);
}

/* threads for a product of `work` units: one thread per `per_thread` units, at most the OpenMP maximum */
static int pk_threads_for(double work, double per_thread) {
    if (omp_in_parallel()) return 1;
    int nth = omp_get_max_threads();
    int by_work = (int)(work / per_thread);
    if (by_work < nth) nth = by_work;
    return nth < 1 ? 1 : nth;
}

/* chunk [lo, hi) of [0, n) for part i of p, boundaries on multiples of align */
static void pk_chunk(int n, int p, int i, int align, int *lo, int *hi) {
    int per = (n + p - 1) / p;
    per = (per + align - 1) / align * align;
    *lo = i * per < n ? i * per : n;
    *hi = (i + 1) * per < n ? (i + 1) * per : n;
}

void pk_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    pk_blas_single();
    const enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
    int nth = pk_threads_for(2.0 * M * N * (double)K, 1.0e6); /* ~20 us of sgemm per thread */
    if (nth <= 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int split_rows = M >= N;
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int i = 0; i < nth; i++) {
        int lo, hi;
        if (split_rows) {
            pk_chunk(M, nth, i, 4, &lo, &hi);
            if (hi <= lo) continue;
            const float *Ab = transA ? A + lo : A + (size_t)lo * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, Ab, lda, B, ldb, beta,
                        C + (size_t)lo * ldc, ldc);
        } else {
            pk_chunk(N, nth, i, 16, &lo, &hi);
            if (hi <= lo) continue;
            const float *Bb = transB ? B + (size_t)lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, A, lda, Bb, ldb, beta, C + lo, ldc);
        }
    }
}

void pk_sgemv(int trans, int M, int N, float alpha, const float *A, int lda, const float *x, float beta,
              float *y) {
    if (M <= 0 || N <= 0) return;
    pk_blas_single();
    int ylen = trans ? N : M;
    /* memory-bound (one pass over A): split only for matrices of 1M+ floats per thread */
    int nth = pk_threads_for((double)M * N, 1.0e6);
    if (nth <= 1) {
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int i = 0; i < nth; i++) {
        int lo, hi;
        pk_chunk(ylen, nth, i, 16, &lo, &hi);
        if (hi <= lo) continue;
        if (trans) /* y[lo:hi] = alpha A[:, lo:hi]^T x + beta y[lo:hi] */
            cblas_sgemv(CblasRowMajor, CblasTrans, M, hi - lo, alpha, A + lo, lda, x, 1, beta, y + lo, 1);
        else /* y[lo:hi] = alpha A[lo:hi, :] x + beta y[lo:hi] */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, N, alpha, A + (size_t)lo * lda, lda, x, 1, beta,
                        y + lo, 1);
    }
}

void pk_sger(int M, int N, float alpha, const float *x, const float *y, float *A, int lda) {
    if (M <= 0 || N <= 0) return;
    pk_blas_single();
    int nth = pk_threads_for((double)M * N, 1.0e6);
    if (nth <= 1) {
        cblas_sger(CblasRowMajor, M, N, alpha, x, 1, y, 1, A, lda);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int i = 0; i < nth; i++) {
        int lo, hi;
        pk_chunk(M, nth, i, 1, &lo, &hi);
        if (hi > lo) cblas_sger(CblasRowMajor, hi - lo, N, alpha, x + lo, 1, y, 1, A + (size_t)lo * lda, lda);
    }
}
