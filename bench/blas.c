/* bench/blas.c — fp32 product throughput per OpenBLAS core and threading arrangement, all in one process and
 * one run (docs/cpu-levels.md): sgemm C (n, n) = A (n, n) @ B^T, best of --reps, for
 *   - each core: the one OpenBLAS detected itself, then the --cores list (default: Prescott, Haswell and,
 *     where the CPU has AVX-512, SkylakeX), switched in-process with pulse_blas_force_core;
 *   - 1 thread (cblas_sgemm), T threads through OpenBLAS's own pool (openblas_set_num_threads(T) — its
 *     pthreads or OpenMP build, whichever is linked), and T threads through pulse's products
 *     (pulse_matmul_forward: OpenBLAS held at one thread, rows split over OpenMP).
 * Usage: build/bench_blas [--n 1024] [--threads 2] [--reps 5] [--cores Prescott,Haswell,SkylakeX]
 * Run it under LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp for Debian's OpenMP build. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pulse/core.h"
#include "pulse/kernels.h"

static double gflops(int n, double s) {
    return 2.0 * n * (double)n * n / s / 1e9;
}

/* best seconds of reps runs of one product arrangement: 0 cblas 1 thread, 1 OpenBLAS's T threads, 2 pulse */
static double time_mode(int mode, int n, int T, int reps, const float *A, const float *B, float *C) {
    double best = 1e30;
    if (mode == 0) openblas_set_num_threads(1);
    if (mode == 1) openblas_set_num_threads(T);
    omp_set_num_threads(mode == 2 ? T : 1);
    for (int r = 0; r < reps + 1; r++) { /* one warm-up */
        double t0 = pulse_now();
        if (mode == 2)
            pulse_matmul_forward(C, A, B, NULL, n, n, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        double dt = pulse_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    openblas_set_num_threads(1);
    return best;
}

int main(int argc, char **argv) {
    if (pulse_isa_from_args(argv[0], &argc, argv)) return 2; /* --isa caps the cores compared */
    int n = 1024, T = 2, reps = 5;
    const char *cores = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cores") && i + 1 < argc)
            cores = argv[++i];
        else {
            fprintf(stderr, "usage: bench_blas [--n N] [--threads T] [--reps R] [--cores A,B,...]\n");
            return 2;
        }
    }
    if (n < 16 || T < 1 || reps < 1) {
        fprintf(stderr, "bench_blas: expected --n >= 16, --threads >= 1, --reps >= 1\n");
        return 2;
    }
    const pulse_cpu *cpu = pulse_cpu_get();
    char list[256];
    snprintf(list, sizeof list, "%s",
             cores                              ? cores
             : cpu->level >= PULSE_LEVEL_AVX512 ? "Prescott,Haswell,SkylakeX"
             : cpu->level >= PULSE_LEVEL_AVX2   ? "Prescott,Haswell"
                                                : "Prescott");
    float *A = malloc(sizeof(float) * (size_t)n * n), *B = malloc(sizeof(float) * (size_t)n * n),
          *C = malloc(sizeof(float) * (size_t)n * n);
    if (!A || !B || !C) return 1;
    pulse_rng rng;
    pulse_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++)
        A[i] = pulse_rng_float(&rng) - 0.5f, B[i] = pulse_rng_float(&rng) - 0.5f;
    pulse_blas_info b;
    pulse_blas_probe(&b);
    printf("cpu %s (%s level); OpenBLAS %s, threading %s; sgemm %d^3, %d threads, best of %d\n", cpu->model,
           pulse_level_name(cpu->level), b.version, b.parallel, n, T, reps);
    char json[4096];
    int jl = snprintf(json, sizeof json,
                      "{\"bench\":\"blas\",\"n\":%d,\"threads\":%d,\"parallel\":\"%s\",\"cores\":[", n, T,
                      b.parallel);
    char detected[32];
    snprintf(detected, sizeof detected, "%s", b.core);
    pulse_blas_force_core(detected); /* the bench manages the core itself (no below-level warning) */
    char all[300];
    snprintf(all, sizeof all, "%s,%s", detected, list);
    int first = 1;
    for (char *save = NULL, *c = strtok_r(all, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        if (!first && !strcasecmp(c, detected)) continue;
        if (!first && pulse_blas_force_core(c)) {
            printf("%-12s unavailable: %s\n", c, pulse_last_error());
            continue;
        }
        pulse_blas_probe(&b);
        double t1 = time_mode(0, n, T, reps, A, B, C), tb = time_mode(1, n, T, reps, A, B, C),
               tp = time_mode(2, n, T, reps, A, B, C);
        printf("%-12s %-7s 1 thread %6.1f GFLOP/s | %d threads: OpenBLAS's own %6.1f, pulse (OpenMP split) "
               "%6.1f%s\n",
               b.core, pulse_level_name(b.level), gflops(n, t1), T, gflops(n, tb), gflops(n, tp),
               first ? "  (OpenBLAS's own choice)" : "");
        jl += snprintf(json + jl, sizeof json - (size_t)jl,
                       "%s{\"core\":\"%s\",\"level\":\"%s\",\"detected\":%s,\"gflops_1t\":%.1f,"
                       "\"gflops_openblas_threads\":%.1f,\"gflops_pulse_threads\":%.1f}",
                       first ? "" : ",", b.core, pulse_level_name(b.level), first ? "true" : "false",
                       gflops(n, t1), gflops(n, tb), gflops(n, tp));
        first = 0;
    }
    snprintf(json + jl, sizeof json - (size_t)jl, "]}");
    bench_init(&argc, argv); /* leave the BLAS at the CPU's level for the runtime fields */
    bench_emit(json);
    free(A);
    free(B);
    free(C);
    return 0;
}
