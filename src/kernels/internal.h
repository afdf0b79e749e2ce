/* kernels/internal.h — helpers shared by the float kernels in src/kernels/ (not public): OpenMP thresholds
 * and a deterministic blocked double reduction whose result does not depend on the thread count. */
#ifndef PULSE_KERNELS_INTERNAL_H
#define PULSE_KERNELS_INTERNAL_H

#include <stddef.h>

/* Parallelise an elementwise loop only above this many elements (below, thread start-up costs more). */
#define PK_PAR_ELEMS 32768
/* Parallelise a row loop only when rows * cols is above this. */
#define PK_PAR_WORK 16384

/* Number of fixed reduction blocks: every reduction is split into PK_RED_BLOCKS contiguous chunks whose
 * partial sums are added in a fixed order, so sums are bit-identical for any number of threads. */
#define PK_RED_BLOCKS 64

#endif
