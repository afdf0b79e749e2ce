/* bench/bench.h — what every benchmark program shares: at start-up the fp32 products are put at the CPU's
 * level as the pulse tool does (pulse_blas_select; an OPENBLAS_CORETYPE set by the user is respected), and
 * every JSON line a benchmark prints carries the machine and the level each product family ran at
 * (pulse_runtime_json: cpu, cpu_level, isa, fp32, bf16, quant), so no figure is reported without them. The
 * environment switches of tools/pulse/env.h, and --isa, apply to the benchmarks as to the pulse tool. */
#ifndef PULSE_BENCH_H
#define PULSE_BENCH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "pulse/core.h"
#include "pulse/kernels.h"

#include "../tools/pulse/env.h"

/* argc/argv: `--isa scalar|avx2|avx512|native` is taken out of them (tools/pulse/env.h; PULSE_ISA when
 * absent) before the bench parses its own options; exits 2 on a bad level */
static inline void bench_init(int *argc, char **argv) {
    pulse_blas_threads_env(argv); /* OpenBLAS without its own thread pool (tools/pulse/env.h) */
    pulse_options_from_env();     /* PULSE_QUIET, PULSE_BF16, PULSE_QTILE, PULSE_LM_PROFILE: the library reads
                                     none */
    if (pulse_isa_from_args(argv[0], argc, argv)) exit(2);
    pulse_blas_params bp = pulse_blas_default_params();
    bp.explicit_core = getenv("OPENBLAS_CORETYPE");
    if (pulse_blas_select(&bp, NULL))
        fprintf(stderr, "bench: fp32 products stay below this CPU's level: %s\n", pulse_last_error());
}

/* print one JSON object (text) as a line, with the runtime fields added at its end (as it is when either
 * side does not parse) */
static inline void bench_emit(const char *obj) {
    char rt[4096];
    int n = pulse_runtime_json(rt, sizeof rt);
    cJSON *o = cJSON_Parse(obj), *r = n > 0 && (size_t)n < sizeof rt ? cJSON_Parse(rt) : NULL;
    char *txt = NULL;
    if (cJSON_IsObject(o) && cJSON_IsObject(r)) {
        while (r->child) {
            cJSON *it = cJSON_DetachItemViaPointer(r, r->child);
            cJSON_AddItemToObject(o, it->string, it);
        }
        txt = cJSON_PrintUnformatted(o);
    }
    if (txt)
        puts(txt);
    else
        printf("%s\n", obj);
    free(txt);
    cJSON_Delete(o);
    cJSON_Delete(r);
}

/* The machine's read bandwidth in GB/s with `threads` OpenMP threads over a buffer of `bytes` (at least 64
 * MiB): the best of 5 vectorised passes summing it, each thread its own contiguous share. The limit a decode
 * step (every weight read once per token) is measured against, with the buffer the size of the weights one
 * token reads, so the caches hold as much of it as they hold of the weights (a model smaller than the last
 * level cache is measured against that cache's rate). Until session 20 the pass was a scalar sum that GCC
 * -O2 does not vectorise: on the Intel Xeon (family 6 model 207) it read 15.5 GB/s where the vector sum
 * reads 26 GB/s from DRAM (52 GB/s from a 96 MB, L3-resident buffer). */
static inline double bench_read_gbs(int threads, double bytes) {
    size_t n = (size_t)(bytes / sizeof(uint64_t));
    if (n < ((size_t)8 << 20)) n = (size_t)8 << 20; /* 64 MiB */
    uint64_t *a = (uint64_t *)malloc(n * sizeof *a);
    if (!a) return 0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = i; /* touched by the thread that reads it */
    double best = 0;
    uint64_t sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t s = 0;
#pragma omp parallel for simd num_threads(threads) schedule(static) reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += a[i];
        clock_gettime(CLOCK_MONOTONIC, &t1);
        sink += s;
        const double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (dt > 0 && n * sizeof *a / dt / 1e9 > best) best = (double)(n * sizeof *a) / dt / 1e9;
    }
    free(a);
    return sink == 1 ? -best : best; /* the sums are used, so the reads stay */
}

static inline void bench_emitf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void bench_emitf(const char *fmt, ...) {
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bench_emit(buf);
}

#endif
