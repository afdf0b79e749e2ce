/* bench/peers/ggml_quant.c — peer for bench/quant.c: llama.cpp's own CPU kernels (ggml's type traits
 * from_float + vec_dot, from the libggml-cpu that llama-cpp-python built here, for this CPU) against
 * pulse_qmatvec on the same weights, one thread, back to back. Also checks both give the same products.
 * Build + run: bash bench/peers/ggml_quant.sh */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"
#include "pulse/core.h"
#include "pulse/quant.h"

static double min_time = 0.2;

/* thread CPU time: single-threaded runs on a shared, loaded machine are timed without the time the thread
 * spends descheduled */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void ggml_mv(float *y, const void *W, int type, const float *x, int rows, int cols, void *xq) {
    const struct ggml_type_traits_cpu *tr = ggml_get_type_traits_cpu((enum ggml_type)type);
    const void *xv = x;
    if (tr->vec_dot_type != GGML_TYPE_F32) {
        ggml_get_type_traits_cpu(tr->vec_dot_type)->from_float(x, xq, cols); /* activations in the dot type */
        xv = xq;
    }
    size_t rs = pulse_ggml_row_size(type, cols);
    for (int r = 0; r < rows; r++) tr->vec_dot(cols, &y[r], 0, (const char *)W + (size_t)r * rs, 0, xv, 0, 1);
}

/* batched: N activation rows, each weight row against every activation row (what ggml's mul_mat does for
 * these types: one vec_dot per (row, column) pair) */
static void ggml_mm(float *Y, const void *W, int type, const float *X, int N, int rows, int cols,
                    uint8_t *xq) {
    const struct ggml_type_traits_cpu *tr = ggml_get_type_traits_cpu((enum ggml_type)type);
    const struct ggml_type_traits_cpu *td = ggml_get_type_traits_cpu(tr->vec_dot_type);
    size_t xs = (size_t)cols * 4;
    const uint8_t *xv = (const uint8_t *)X;
    if (tr->vec_dot_type != GGML_TYPE_F32) {
        xs = pulse_ggml_row_size(tr->vec_dot_type, cols);
        for (int n = 0; n < N; n++) td->from_float(X + (size_t)n * cols, xq + (size_t)n * xs, cols);
        xv = xq;
    }
    size_t rs = pulse_ggml_row_size(type, cols);
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < N; n++)
            tr->vec_dot(cols, &Y[(size_t)n * rows + r], 0, (const char *)W + (size_t)r * rs, 0,
                        xv + (size_t)n * xs, 0, 1);
}

int main(int argc, char **argv) {
    if (argc > 1) min_time = atof(argv[1]);
    ggml_cpu_init();
    if (getenv("PULSE_VNNI")) pulse_quant_use_vnni(atoi(getenv("PULSE_VNNI")));
    fprintf(stderr, "pulse kernels: %s\n", pulse_quant_use_vnni(-1) ? "avx512-vnni" : "avx2");
    omp_set_num_threads(1);
    const int types[] = {PULSE_GGML_Q4_0, PULSE_GGML_Q4_1, PULSE_GGML_Q5_0, PULSE_GGML_Q5_1, PULSE_GGML_Q8_0,
                         PULSE_GGML_Q4_K, PULSE_GGML_Q5_K, PULSE_GGML_Q6_K, PULSE_GGML_F16};
    const int shapes[2][2] = {{1536, 576}, {640, 2048}};
    pulse_rng r;
    pulse_rng_seed(&r, 5);
    fprintf(stderr, "%-5s %11s | %10s %10s %7s | %9s %9s %7s | %s\n", "type", "rows x cols", "pulse GB/s",
            "ggml GB/s", "ratio", "N=32 GF/s", "ggml GF/s", "ratio", "max |diff|/scale");
    printf("{\"bench\":\"quant_vs_ggml\",\"threads\":1,\"results\":[");
    fflush(stdout);
    int first = 1;
    char lines[4096] = "";
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int si = 0; si < 2; si++) {
            int t = types[ti], rows = shapes[si][0], cols = shapes[si][1];
            if (cols % pulse_ggml_block_size(t)) continue;
            size_t rs = pulse_ggml_row_size(t, cols);
            uint8_t *W = malloc(rs * rows);
            float *wf = malloc(sizeof(float) * cols), *x = malloc(sizeof(float) * cols);
            float *y1 = malloc(sizeof(float) * rows), *y2 = malloc(sizeof(float) * rows);
            void *xq = malloc(cols * 4 + 4096);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) wf[j] = pulse_rng_normal(&r);
                pulse_quantize_row(t, wf, W + (size_t)i * rs, cols);
            }
            for (int j = 0; j < cols; j++) x[j] = pulse_rng_normal(&r);
            double best[2] = {1e30, 1e30};
            /* alternate short timed runs of both; keep the best of each */
            for (int round = 0; round < 15; round++)
                for (int who = 0; who < 2; who++) {
                    int reps = 0;
                    double t0 = cpu_now(), dt;
                    do {
                        if (who == 0)
                            pulse_qmatvec(y1, W, t, x, rows, cols);
                        else
                            ggml_mv(y2, W, t, x, rows, cols, xq);
                        reps++;
                        dt = cpu_now() - t0;
                    } while (dt < min_time / 15);
                    if (dt / reps < best[who]) best[who] = dt / reps;
                }
            if (0)
                fprintf(stderr, "%s y1 %g %g y2 %g %g vdt %d\n", pulse_ggml_type_name(t), y1[0], y1[1], y2[0],
                        y2[1], (int)ggml_get_type_traits_cpu((enum ggml_type)t)->vec_dot_type);
            /* batched N = 32 */
            const int N = 32;
            float *X = malloc(sizeof(float) * N * cols), *Y1 = malloc(sizeof(float) * N * rows),
                  *Y2 = malloc(sizeof(float) * N * rows);
            uint8_t *XQ = malloc((size_t)N * (cols * 4 + 4096));
            for (int j = 0; j < N * cols; j++) X[j] = pulse_rng_normal(&r);
            double bb[2] = {1e30, 1e30};
            for (int round = 0; round < 5; round++)
                for (int who = 0; who < 2; who++) {
                    double t0 = cpu_now();
                    if (who == 0)
                        pulse_qmatmul(Y1, W, t, X, N, rows, cols);
                    else
                        ggml_mm(Y2, W, t, X, N, rows, cols, XQ);
                    double dt = cpu_now() - t0;
                    if (dt < bb[who]) bb[who] = dt;
                }
            double gf = 2.0 * rows * cols * N;
            free(X), free(Y1), free(Y2), free(XQ);
            double md = 0, sc = 0;
            for (int i = 0; i < rows; i++) md = fmax(md, fabs(y1[i] - y2[i])), sc = fmax(sc, fabs(y2[i]));
            double bytes = (double)rs * rows;
            char line[256];
            snprintf(line, sizeof line, "%-5s %5d x %4d | %10.2f %10.2f %6.2fx | %9.1f %9.1f %6.2fx | %.2e\n",
                     pulse_ggml_type_name(t), rows, cols, bytes / best[0] / 1e9, bytes / best[1] / 1e9,
                     best[1] / best[0], gf / bb[0] / 1e9, gf / bb[1] / 1e9, bb[1] / bb[0], md / sc);
            strncat(lines, line, sizeof lines - strlen(lines) - 1);
            printf("%s{\"type\":\"%s\",\"rows\":%d,\"cols\":%d,\"pulse_gbs\":%.2f,\"ggml_gbs\":%.2f,"
                   "\"pulse_vs_ggml\":%.2f,\"batch32_pulse_gflops\":%.1f,\"batch32_ggml_gflops\":%.1f,"
                   "\"batch32_pulse_vs_ggml\":%.2f}",
                   first ? "" : ",", pulse_ggml_type_name(t), rows, cols, bytes / best[0] / 1e9,
                   bytes / best[1] / 1e9, best[1] / best[0], gf / bb[0] / 1e9, gf / bb[1] / 1e9,
                   bb[1] / bb[0]);
            fflush(stdout);
            first = 0;
            free(W), free(wf), free(x), free(y1), free(y2), free(xq);
        }
    printf("]}\n");
    fputs(lines, stderr);
    return 0;
}
