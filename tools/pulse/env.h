/* tools/pulse/env.h — the environment variables of the pulse programs (the CLI and the bench programs), read
 * here because the library reads none: PULSE_QUIET=1 (no progress lines), PULSE_BF16=0 (fp32 instead of the
 * AVX512-BF16 products), PULSE_QTILE=0 (per-row quantised kernels only), PULSE_QGEMV=0|1 (one-row products
 * per row / 4 weight rows at a time; default: by CPU), PULSE_QFAST=1 (batched 32-element products in
 * training's order for inference too: faster, within rounding of llama.cpp's, not bit-equal),
 * PULSE_LM_PROFILE=1|N (LM forward time per section), PULSE_ISA=scalar|avx2|avx512|native (the instruction
 * level; --isa on the command line wins). pulse_options_from_env() fills pulse_options from them and hands
 * them to the library; pulse_isa_from_args reads the level. */
#ifndef PULSE_TOOLS_ENV_H
#define PULSE_TOOLS_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pulse/core.h"
#include "pulse/dist.h"

/* Whether to initialise MPI (include/pulse/dist.h): PULSE_MPI=1 always, PULSE_MPI=0 never, otherwise when
 * a launcher started this process (mpirun / mpiexec: OMPI_COMM_WORLD_SIZE; srun --mpi=pmix or any PMIx / PMI
 * launcher: PMIX_RANK, PMI_RANK). A plain `pulse ...` never starts MPI, so it runs exactly as a build
 * without MPI. Returns 1, 0, or -1 (message printed) when PULSE_MPI asks for MPI this build does not have. */
static inline int cli_env_mpi(void) {
    const char *e = getenv("PULSE_MPI");
    int want = -1;
    if (e && *e) want = !(e[0] == '0' && !e[1]);
    if (want < 0) want = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    if (want && !pulse_dist_available()) {
        if (e && *e && want) {
            fprintf(stderr, "pulse: PULSE_MPI=%s but this pulse was built without MPI (-DPULSE_MPI=ON)\n", e);
            return -1;
        }
        return 0; /* launched by mpirun but built without MPI: every process runs alone, as before */
    }
    return want;
}

/* pulse runs OpenBLAS at one thread inside its own OpenMP splits (src/kernels/blas.c). A pthreads OpenBLAS
 * that started with more threads keeps its worker pool, and under libgomp's default wait policy the two pools
 * cost SASRec-CE training 3.5x (Zen 4, 2 vCPUs, one Beauty epoch: 34.2 s, against 9.7 s with
 * OPENBLAS_NUM_THREADS=1 and 8.5 s under OMP_WAIT_POLICY=PASSIVE). OpenBLAS reads its thread count when it is
 * loaded, before main, so when OPENBLAS_NUM_THREADS is unset the program starts itself again with it set to 1
 * (execv: same pid, arguments and environment otherwise; once, as the variable is then set). A value the user
 * set is kept. Call first thing in main. */
static inline void pulse_blas_threads_env(char **argv) {
    if (getenv("OPENBLAS_NUM_THREADS") || setenv("OPENBLAS_NUM_THREADS", "1", 1)) return;
    execv("/proc/self/exe", argv); /* returns only on failure: carry on with OpenBLAS's pool */
}

static inline void pulse_options_from_env(void) {
    pulse_options o = pulse_default_options();
    const char *e;
    if ((e = getenv("PULSE_QUIET")) && *e && *e != '0') o.quiet = 1;
    if ((e = getenv("PULSE_BF16")) && e[0] == '0' && !e[1]) o.bf16 = 0;
    if ((e = getenv("PULSE_QTILE")) && e[0] == '0') o.qtile = 0;
    if ((e = getenv("PULSE_QGEMV")) && (e[0] == '0' || e[0] == '1') && !e[1]) o.qgemv = e[0] - '0';
    if ((e = getenv("PULSE_QFAST")) && e[0] == '1' && !e[1]) o.qfast = 1;
    if ((e = getenv("PULSE_LM_PROFILE")) && *e) o.lm_profile = atoi(e);
    pulse_set_options(&o);
}

/* The instruction level the kernels may use: `--isa NAME` or `--isa=NAME` anywhere in argv before a "--"
 * (taken out of argv; the last one wins, and set as PULSE_ISA for child processes), else PULSE_ISA; scalar |
 * avx2 | avx512 | native. Applied with pulse_cpu_limit; call it before pulse_blas_select and before any
 * kernel runs. Returns 0, or -1 with the message printed (an unknown name, or a level this CPU does not
 * have). */
static inline int pulse_isa_from_args(const char *prog, int *argc, char **argv) {
    const char *name = getenv("PULSE_ISA"), *from = "PULSE_ISA";
    if (name && !*name) name = NULL;
    int j = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) { /* the rest is the command's, untouched */
            while (i < *argc) argv[j++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--isa") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "%s: --isa needs a value: scalar, avx2, avx512 or native\n", prog);
                return -1;
            }
            name = argv[++i];
            from = "--isa";
        } else if (strncmp(argv[i], "--isa=", 6) == 0) {
            name = argv[i] + 6;
            from = "--isa";
        } else
            argv[j++] = argv[i];
    }
    *argc = j;
    argv[j] = NULL;
    if (!name) return 0;
    pulse_isa isa;
    if (pulse_isa_parse(name, &isa) != PULSE_OK || pulse_cpu_limit(isa) != PULSE_OK) {
        fprintf(stderr, "%s: %s: %s\n", prog, from, pulse_last_error());
        return -1;
    }
    if (from[0] == '-')
        setenv("PULSE_ISA", name, 1); /* programs that re-run themselves (bench_lm) pass it on */
    return 0;
}

#endif
