/* bench/peak.c — the machine's limits that the other benchmarks' figures are fractions of, measured rather
 * than computed from a nominal clock (a VM's or a boosting CPU's clock is not the one /proc/cpuinfo names):
 * the throughput of the product instructions each kernel family is built on, on 1 thread and on T threads —
 * fp32 FMA at 256 and 512 bits (the fp32 products), vdpbf16ps (bf16), vpdpbusd (int8 with VNNI) and
 * vpmaddubsw + vpmaddwd (int8 at the AVX2 level) — each as 12 independent accumulator chains with no memory
 * traffic (an upper bound no kernel with loads and stores reaches), best of 5 runs; and the read bandwidth
 * of a 256 MB buffer on T threads (decode's limit). Instructions the CPU (or --isa) does not have are
 * skipped. Usage: bench_peak [--threads T] (default PULSE_THREADS, else 2). Prints a table and one JSON line.
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PEAK_X86 1
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

enum { CHAINS = 12 };

#ifdef PEAK_X86
/* each: n rounds of CHAINS dependent-free instructions; returns a value that depends on all of them */
__attribute__((target("avx2,fma"))) static float fma256(long n) {
    __m256 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps(0.001f * (float)i);
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
    for (long k = 0; k < n; k++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, a[i]);
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0];
}

__attribute__((target("avx512f"))) static float fma512(long n) {
    __m512 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps(0.001f * (float)i);
    const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
    for (long k = 0; k < n; k++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float dpbf16(long n) {
    __m512 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps(0.001f * (float)i);
    const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3f803f80), c = (__m512bh)_mm512_set1_epi32(0x38003800);
    for (long k = 0; k < n; k++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static float dpbusd(long n) {
    __m512i a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_epi32(i);
    const __m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5);
    for (long k = 0; k < n; k++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    }
    __m512i s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_epi32(s, a[i]);
    return (float)_mm512_reduce_add_epi32(s);
}

/* the AVX2 int8 product step: vpmaddubsw (32 u8 x i8 -> 16 i16 pair sums) then vpmaddwd by ones into i32 */
__attribute__((target("avx2"))) static float maddubs(long n) {
    __m256i a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_epi32(i);
    const __m256i b = _mm256_set1_epi8(3), c = _mm256_set1_epi8(5), one = _mm256_set1_epi16(1);
    for (long k = 0; k < n; k++) {
        _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) a[i] = _mm256_add_epi32(
            a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(b, _mm256_xor_si256(c, a[i])), one));
    }
    __m256i s = a[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
    return (float)_mm256_extract_epi32(s, 0);
}
#endif

typedef float (*kern_fn)(long);

/* best rate (operations / s) over 5 runs of th threads each running fn(n), ops per call = n * ops_round */
static double rate(kern_fn fn, long n, double ops_round, int th) {
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        float part[64] = {0};
        const double t0 = now_s();
#pragma omp parallel num_threads(th)
        part[omp_get_thread_num() & 63] = fn(n);
        const double t = now_s() - t0;
        for (int i = 0; i < 64; i++) sink += part[i];
        const double r = (double)th * (double)n * ops_round / t;
        if (r > best) best = r;
    }
    (void)sink;
    return best;
}

/* read bandwidth: th threads summing disjoint parts of a 256 MB buffer, best of 5, bytes / s */
static double read_bw(int th) {
    const size_t n = (size_t)64 << 20; /* floats */
    float *buf = malloc(n * sizeof(float));
    if (!buf) return 0;
#pragma omp parallel for num_threads(th) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023);
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        float s = 0;
        const double t0 = now_s();
#pragma omp parallel for simd num_threads(th) schedule(static) reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += buf[i];
        const double t = now_s() - t0;
        sink += s;
        if (n * sizeof(float) / t > best) best = n * sizeof(float) / t;
    }
    (void)sink;
    free(buf);
    return best;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    const char *env_t = getenv("PULSE_THREADS");
    int threads = env_t ? atoi(env_t) : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_peak [--threads T]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64) threads = 2;
    const pulse_cpu *c = pulse_cpu_get();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "peak");
    cJSON_AddNumberToObject(o, "threads", threads);
    printf("measured limits (12 independent chains, no memory traffic; best of 5), %d thread(s) vs 1:\n",
           threads);
#ifdef PEAK_X86
    const long n = 20000000 / CHAINS * 4;
    struct {
        const char *name, *unit;
        int ok;
        kern_fn fn;
        double ops; /* per round of CHAINS instructions */
    } k[] = {
        {"fp32_fma_ymm", "GFLOP/s", c->avx2 && c->fma, fma256, CHAINS * 8.0 * 2},
        {"fp32_fma_zmm", "GFLOP/s", c->avx512f, fma512, CHAINS * 16.0 * 2},
        {"bf16_dpbf16ps_zmm", "GFLOP/s", c->avx512f && c->avx512bf16, dpbf16, CHAINS * 32.0 * 2},
        {"int8_vpdpbusd_zmm", "GOP/s", c->avx512f && c->avx512bw && c->avx512vnni, dpbusd, CHAINS * 64.0 * 2},
        {"int8_vpmaddubsw_ymm", "GOP/s", c->avx2, maddubs, CHAINS * 32.0 * 2},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (!k[i].ok) {
            printf("  %-22s not available at this level\n", k[i].name);
            continue;
        }
        const double r1 = rate(k[i].fn, n, k[i].ops, 1) / 1e9, rt = rate(k[i].fn, n, k[i].ops, threads) / 1e9;
        printf("  %-22s %8.1f %s on %d thread(s), %8.1f on 1\n", k[i].name, rt, k[i].unit, threads, r1);
        char key[64];
        snprintf(key, sizeof key, "%s", k[i].name);
        cJSON *e = cJSON_AddObjectToObject(o, key);
        cJSON_AddNumberToObject(e, "threads_rate", rt);
        cJSON_AddNumberToObject(e, "one_thread_rate", r1);
        cJSON_AddStringToObject(e, "unit", k[i].unit);
    }
#else
    (void)c;
    printf("  (no x86 SIMD in this build)\n");
#endif
    const double bw = read_bw(threads) / 1e9;
    printf("  %-22s %8.1f GB/s on %d thread(s) (256 MB buffer)\n", "read_bandwidth", bw, threads);
    cJSON_AddNumberToObject(o, "read_gb_s", bw);
    char *s = cJSON_PrintUnformatted(o);
    if (s) bench_emit(s);
    free(s);
    cJSON_Delete(o);
    return 0;
}
