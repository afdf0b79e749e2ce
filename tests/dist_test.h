/* tests/dist_test.h — what the MPI tests (tests/test_dist_*.c) share: the mpirun line they launch the CLI
 * with: 2 ranks, more ranks than cores allowed, root allowed, shared memory only (containers need no
 * network, no cross-memory attach), and LeakSanitizer off in the launched ranks (ASAN_OPTIONS=detect_leaks=0
 * for them alone; every other ASan and UBSan check stays on). Why: Open MPI keeps what it allocates at
 * MPI_Init until exit inside components it dlopen()s and closes at MPI_Finalize, so LeakSanitizer reports
 * them from an "<unknown module>" that no suppression can name (measured: 55 such reports for a 2-rank
 * phase-1 run, none with a pulse frame). Each test runs the same commands on one process too, where leak
 * checking stays on. A build without MPI has no PULSE_MPIEXEC: the tests exit 77 (Skipped). */
#ifndef PULSE_DIST_TEST_H
#define PULSE_DIST_TEST_H

#include <cjson/cJSON.h>
#include <math.h>

/* a number of a report's JSON line; NAN when the key is missing or not a number, so that comparing the
 * 1-process and the 2-rank reports fails on a missing key instead of passing (-1 == -1) */
static inline double dist_num(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

#ifdef PULSE_MPIEXEC
#define MPIRUN                                                                                               \
    PULSE_MPIEXEC " -np 2 --oversubscribe --allow-run-as-root --mca btl self,vader "                         \
                  "--mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS=detect_leaks=0"
#endif

#endif
