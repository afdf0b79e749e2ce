/* kernels/internal.h — helpers shared by the float kernels in src/kernels/ (not public): OpenMP thresholds
 * and a deterministic blocked double reduction whose result does not depend on the thread count. */
#ifndef PULSE_KERNELS_INTERNAL_H
#define PULSE_KERNELS_INTERNAL_H

#include <stddef.h>

/* Parallelise an elementwise loop only above this many elements (below, thread start-up costs more). */
#define PK_PAR_ELEMS 32768
/* Parallelise a row loop only when rows * cols is above this. */
#define PK_PAR_WORK 16384

/* Parallelise attention over (b, h) only when B * NH * T * T * hs is above this. */
#define PK_PAR_ATT 131072.0

/* Number of fixed reduction blocks: every reduction is split into PK_RED_BLOCKS contiguous chunks whose
 * partial sums are added in a fixed order, so sums are bit-identical for any number of threads. */
#define PK_RED_BLOCKS 64

/* OpenBLAS wrappers (kernels/blas.c): row-major, OpenMP-split, OpenBLAS held at 1 thread (see blas.c).
 * trans flags: 0 = as stored, 1 = transposed. Same argument meaning as cblas_sgemm / sgemv / sger. */
void pk_blas_single(void);
void pk_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void pk_sgemv(int trans, int M, int N, float alpha, const float *A, int lda, const float *x, float beta,
              float *y);
void pk_sger(int M, int N, float alpha, const float *x, const float *y, float *A, int lda);

#endif
