/* bench/quant.c — throughput of the quantised products per weight type at SmolLM2 / Gemma-3 layer shapes:
 * qmatvec scalar reference vs AVX2 (1 thread), AVX2 with T threads, and qmatmul with N activation rows
 * (batched decode) vs N separate qmatvecs, one thread (timed in thread CPU time, the machine may be shared);
 * and qmatvec with T threads (wall time, the best of many short runs). Weight GB/s and GFLOP/s; one JSON
 * line at the end. The batched figure is also given as a fraction of one core's int8 peak at the level the
 * products ran at (mm1 %peak): AVX2 (no VNNI) 2 vpmaddubsw per cycle x 32 u8 x i8 products = 64 MACs = 128
 * int8 ops per cycle; AVX512-VNNI 2 x 64 MACs (two 512-bit vpdpbusd per cycle, Intel's server cores; a core
 * that splits 512-bit operations, as AMD Zen 4 does, has half that); times the clock of /proc/cpuinfo's first
 * "cpu MHz" (the nominal clock on a VM; --ghz X overrides). Beside it, the vpmaddubsw throughput measured
 * at start (12 independent chains, x 32 MACs x 2): what the int8 units give at that moment.
 * "fast GF/s": pulse_qmatmul_fast, training's order (one fma per block; the 32-element types on AVX512-VNNI),
 * same N.
 * --one: the N activation rows in llama.cpp's one-row orders (PULSE_QROW_ONE, not tiled: N sequences decoding
 * one token each) instead of the default orders of an N-row batch (one prompt's prefill); --seq L: the rows
 * as sequences of L tokens each in their own orders (the rank decoder's candidate titles, forked prompts).
 * Usage: bench_quant [--threads T] [--n N] [--min-time S] [--quick] [--no-vnni] [--shape ROWS,COLS]...
 *                    [--type NAME]... [--ghz X] [--one] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "pulse/core.h"
#include "pulse/quant.h"

typedef void (*mv_fn)(float *, const void *, int, const float *, int, int);

static double min_time = 0.15;
static int use_cpu_clock; /* single-thread runs: thread CPU time (the machine may be shared and loaded) */

static double now(void) {
    if (!use_cpu_clock) return pulse_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* seconds per call: the minimum over many short timed runs (each ~0.2 ms or one call), which filters out
 * the runs where a thread was preempted */
static double time_call(int kind, float *Y, const void *W, int type, const float *X, int N, int rows,
                        int cols) {
    double best = 1e30, t_end = pulse_now() + min_time;
    int reps = 1;
    for (int it = 0; pulse_now() < t_end || it < 3; it++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) {
            if (kind == 0)
                pulse_qmatvec_ref(Y, W, type, X, rows, cols);
            else if (kind == 1)
                pulse_qmatvec(Y, W, type, X, rows, cols);
            else if (kind == 2)
                pulse_qmatmul(Y, W, type, X, N, rows, cols);
            else if (kind == 4)
                pulse_qmatmul_fast(Y, W, type, X, N, rows, cols);
            else
                for (int n = 0; n < N; n++)
                    pulse_qmatvec(Y + (size_t)n * rows, W, type, X + (size_t)n * cols, rows, cols);
        }
        double dt = (now() - t0) / reps;
        if (dt < best) best = dt;
        if (dt * reps < 2e-4) reps *= 2;
    }
    return best;
}

/* the clock in GHz from /proc/cpuinfo's first "cpu MHz" line, 0 if none */
static double cpuinfo_ghz(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[256];
    double mhz = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "cpu MHz", 7)) {
            const char *c = strchr(line, ':');
            if (c) mhz = atof(c + 1);
            break;
        }
    fclose(f);
    return mhz / 1000.0;
}

#ifdef __AVX2__
#include <immintrin.h>
/* vpmaddubsw ymm per second on this thread (12 independent chains, thread CPU time, best of 5): what the
 * int8 units give right now (a busy SMT sibling or a lower clock shows here, not in the nominal peak) */
#define MB_STEP(x)                                                                                           \
    x = _mm256_maddubs_epi16(w, x);                                                                          \
    __asm__("" : "+x"(x))
static double maddubs_rate(void) {
    const __m256i w = _mm256_set1_epi8(1);
    __m256i a0 = _mm256_set1_epi8(0), a1 = _mm256_set1_epi8(1), a2 = _mm256_set1_epi8(2),
            a3 = _mm256_set1_epi8(3), a4 = _mm256_set1_epi8(4), a5 = _mm256_set1_epi8(5),
            a6 = _mm256_set1_epi8(6), a7 = _mm256_set1_epi8(7), a8 = _mm256_set1_epi8(8),
            a9 = _mm256_set1_epi8(9), a10 = _mm256_set1_epi8(10), a11 = _mm256_set1_epi8(11);
    const long n = 4000000;
    double best = 1e30;
    use_cpu_clock = 1;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (long k = 0; k < n; k++) {
            MB_STEP(a0);
            MB_STEP(a1);
            MB_STEP(a2);
            MB_STEP(a3);
            MB_STEP(a4);
            MB_STEP(a5);
            MB_STEP(a6);
            MB_STEP(a7);
            MB_STEP(a8);
            MB_STEP(a9);
            MB_STEP(a10);
            MB_STEP(a11);
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    __m256i s = _mm256_add_epi16(_mm256_add_epi16(_mm256_add_epi16(a0, a1), _mm256_add_epi16(a2, a3)),
                                 _mm256_add_epi16(_mm256_add_epi16(a4, a5), _mm256_add_epi16(a6, a7)));
    s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_add_epi16(a8, a9), _mm256_add_epi16(a10, a11)));
    return _mm256_extract_epi16(s, 0) == 12345 ? 0 : 12.0 * (double)n / best; /* keeps the chains */
}
#else
static double maddubs_rate(void) {
    return 0;
}
#endif

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    int threads = 2, N = 32, quick = 0, n_shapes = 0, n_only = 0, only[16];
    int shapes[16][2];
    double ghz = 0;
    static uint8_t orders[4096];
    int one = 0, seq = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            N = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-vnni"))
            pulse_quant_use_vnni(0);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1, min_time = 0.03;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && n_shapes < 16 &&
                 sscanf(argv[i + 1], "%d,%d", &shapes[n_shapes][0], &shapes[n_shapes][1]) == 2)
            n_shapes++, i++;
        else if (!strcmp(argv[i], "--type") && i + 1 < argc && n_only < 16) {
            only[n_only] = -1;
            for (int t = 0; t < 64; t++)
                if (pulse_ggml_type_supported(t) && !strcmp(pulse_ggml_type_name(t), argv[i + 1]))
                    only[n_only] = t;
            if (only[n_only++] < 0) {
                fprintf(stderr, "bench_quant: unknown type %s\n", argv[i + 1]);
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--one"))
            one = 1;
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc)
            seq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ghz") && i + 1 < argc)
            ghz = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_quant [--threads T] [--n N] [--min-time S] [--quick] [--no-vnni] "
                            "[--shape ROWS,COLS]... [--type NAME]... [--ghz X] [--one] [--seq L]\n");
            return 2;
        }
    }
    if (ghz <= 0) ghz = cpuinfo_ghz();
    if (one ||
        seq > 0) { /* the benchmark's thread makes the single-thread calls: the orders are per thread */
        if (N > 4096) N = 4096;
        for (int i = 0; i < N; i++)
            orders[i] = one ? PULSE_QROW_ONE
                            : pulse_quant_row_order(i % seq, N - i + i % seq < seq ? N - i + i % seq : seq);
        pulse_quant_set_row_orders(orders, N);
    }
    const int vnni = pulse_quant_use_vnni(-1);
    /* int8 ops (2 per MAC) per cycle of one core at the level the batched products run at */
    const double peak_gops = ghz * (vnni ? 256.0 : pulse_quant_has_avx2() ? 128.0 : 0.0);
    const int types[] = {PULSE_GGML_Q4_0, PULSE_GGML_Q4_1, PULSE_GGML_Q5_0, PULSE_GGML_Q5_1,
                         PULSE_GGML_Q8_0, PULSE_GGML_Q4_K, PULSE_GGML_Q5_K, PULSE_GGML_Q6_K,
                         PULSE_GGML_F16,  PULSE_GGML_BF16, PULSE_GGML_F32};
    /* {rows, cols}: SmolLM2 ffn_up (1536 x 576) and ffn_down (576 x 1536); Gemma-3 ffn_gate (2048 x 640) and
     * ffn_down (640 x 2048). K-quants need cols % 256 == 0, so they run on the down shapes only. */
    if (!n_shapes) {
        const int def[4][2] = {{1536, 576}, {576, 1536}, {2048, 640}, {640, 2048}};
        memcpy(shapes, def, sizeof def);
        n_shapes = 4;
    }
    pulse_rng r;
    pulse_rng_seed(&r, 1);
    cJSON *res = cJSON_CreateArray();
    printf("avx2: %s, vnni: %s, threads %d, batch N %d%s", pulse_quant_has_avx2() ? "yes" : "no",
           pulse_quant_use_vnni(-1) ? "yes" : "no", threads, N, one ? " (one-row orders)" : "");
    if (seq > 0 && !one) printf(" (sequences of %d rows)", seq);
    printf("\n");
    const double mrate = pulse_quant_has_avx2() ? maddubs_rate() : 0;
    printf("int8 peak of one core at this level: %.0f GOP/s (%.3f GHz x %s); vpmaddubsw ymm measured now: "
           "%.2f G/s = %.0f GOP/s\n",
           peak_gops, ghz, vnni ? "2 x 64 MACs x 2" : "2 x 32 MACs x 2", mrate / 1e9, mrate * 64 / 1e9);
    printf("%-5s %11s | %9s %9s %7s | %9s %9s | %10s %10s %7s %6s | %9s %6s\n", "type", "rows x cols",
           "ref GB/s", "avx2 GB/s", "x", "T GB/s", "T GFLOP/s", "mm1 GF/s", "loop1 GF/s", "mm/loop", "%peak",
           "fast GF/s", "%peak");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int t = types[ti];
        int want = !n_only;
        for (int k = 0; k < n_only; k++) want |= only[k] == t;
        if (!want) continue;
        for (int si = 0; si < n_shapes; si++) {
            int rows = shapes[si][0], cols = shapes[si][1];
            if (cols % pulse_ggml_block_size(t)) continue;
            if (quick && n_shapes == 4 && si != 3 && si != 1) continue;
            size_t rs = pulse_ggml_row_size(t, cols), wbytes = rs * rows;
            float *wf = malloc(sizeof(float) * cols);
            uint8_t *W = malloc(wbytes);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) wf[j] = pulse_rng_normal(&r);
                pulse_quantize_row(t, wf, W + (size_t)i * rs, cols);
            }
            float *X = malloc(sizeof(float) * N * cols), *Y = malloc(sizeof(float) * N * rows);
            for (int i = 0; i < N * cols; i++) X[i] = pulse_rng_normal(&r);
            omp_set_num_threads(1);
            use_cpu_clock = 1;
            double t_ref = time_call(0, Y, W, t, X, N, rows, cols);
            double t_1 = time_call(1, Y, W, t, X, N, rows, cols);
            double t_mm = time_call(2, Y, W, t, X, N, rows, cols);
            double t_loop = time_call(3, Y, W, t, X, N, rows, cols);
            double t_fast = time_call(4, Y, W, t, X, N, rows, cols); /* training's order (t0 types) */
            omp_set_num_threads(threads);
            use_cpu_clock = 0;
            double t_T = time_call(1, Y, W, t, X, N, rows, cols);
            double flop = 2.0 * rows * cols;
            const double frac = peak_gops > 0 ? flop * N / t_mm / 1e9 / peak_gops : 0;
            const double frac_fast = peak_gops > 0 ? flop * N / t_fast / 1e9 / peak_gops : 0;
            printf("%-5s %5d x %4d | %9.2f %9.2f %6.1fx | %9.2f %9.2f | %10.2f %10.2f %6.2fx %5.1f%% | %9.2f "
                   "%5.1f%%\n",
                   pulse_ggml_type_name(t), rows, cols, wbytes / t_ref / 1e9, wbytes / t_1 / 1e9, t_ref / t_1,
                   wbytes / t_T / 1e9, flop / t_T / 1e9, flop * N / t_mm / 1e9, flop * N / t_loop / 1e9,
                   t_loop / t_mm, 100 * frac, flop * N / t_fast / 1e9, 100 * frac_fast);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "type", pulse_ggml_type_name(t));
            cJSON_AddNumberToObject(o, "rows", rows);
            cJSON_AddNumberToObject(o, "cols", cols);
            cJSON_AddNumberToObject(o, "ref_gbs", round(wbytes / t_ref / 1e7) / 100);
            cJSON_AddNumberToObject(o, "avx2_gbs", round(wbytes / t_1 / 1e7) / 100);
            cJSON_AddNumberToObject(o, "avx2_vs_ref", round(t_ref / t_1 * 10) / 10);
            cJSON_AddNumberToObject(o, "mv_us_T", round(t_T * 1e7) / 10);
            cJSON_AddNumberToObject(o, "mv_gflops_T", round(flop / t_T / 1e7) / 100);
            cJSON_AddNumberToObject(o, "mm_gflops_1", round(flop * N / t_mm / 1e7) / 100);
            cJSON_AddNumberToObject(o, "mm_vs_loop", round(t_loop / t_mm * 100) / 100);
            cJSON_AddNumberToObject(o, "mm_peak_frac", round(frac * 1000) / 1000);
            cJSON_AddNumberToObject(o, "mm_fast_gflops_1", round(flop * N / t_fast / 1e7) / 100);
            cJSON_AddItemToArray(res, o);
            free(wf), free(W), free(X), free(Y);
        }
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "bench", "quant");
    cJSON_AddNumberToObject(out, "threads", threads);
    cJSON_AddNumberToObject(out, "batch", N);
    cJSON_AddBoolToObject(out, "one_row_orders", one);
    cJSON_AddNumberToObject(out, "seq_rows", one ? 1 : seq);
    cJSON_AddBoolToObject(out, "avx2", pulse_quant_has_avx2());
    cJSON_AddBoolToObject(out, "vnni", pulse_quant_use_vnni(-1));
    cJSON_AddNumberToObject(out, "ghz", round(ghz * 1000) / 1000);
    cJSON_AddNumberToObject(out, "int8_peak_gops", round(peak_gops * 10) / 10);
    cJSON_AddNumberToObject(out, "maddubs_gops_measured", round(mrate * 64 / 1e8) / 10);
    cJSON_AddItemToObject(out, "results", res);
    char *s = cJSON_PrintUnformatted(out);
    bench_emit(s);
    free(s);
    cJSON_Delete(out);
    return 0;
}
