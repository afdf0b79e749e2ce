/* tests/dist_test.h — what the MPI tests (tests/test_dist_*.c) share: the mpirun line they launch the CLI
 * with (2 ranks, more ranks than cores allowed, root allowed, shared memory only so that containers need no
 * network, no cross-memory attach) and the sanitizer set-up of the launched ranks: Open MPI keeps memory it
 * allocates at MPI_Init until exit (its components, hwloc, PMIx), which LeakSanitizer would report in an
 * ASan build, so LSAN_OPTIONS gains tests/lsan-mpi.supp (those libraries only; pulse's own leaks are still
 * reported). A build without MPI has no PULSE_MPIEXEC: the tests exit 77 (Skipped). */
#ifndef PULSE_DIST_TEST_H
#define PULSE_DIST_TEST_H

#include <stdio.h>
#include <stdlib.h>

#ifdef PULSE_MPIEXEC
#define MPIRUN                                                                                               \
    PULSE_MPIEXEC " -np 2 --oversubscribe --allow-run-as-root --mca btl self,vader "                         \
                  "--mca btl_vader_single_copy_mechanism none"

/* LSAN_OPTIONS for the launched ranks: the caller's options plus the Open MPI suppressions */
static inline void dist_test_env(void) {
    const char *old = getenv("LSAN_OPTIONS");
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%ssuppressions=%s/tests/lsan-mpi.supp:print_suppressions=0", old ? old : "",
             old && *old ? ":" : "", PULSE_SOURCE_DIR);
    setenv("LSAN_OPTIONS", buf, 1);
}
#endif

#endif
