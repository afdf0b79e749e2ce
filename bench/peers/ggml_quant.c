/* bench/peers/ggml_quant.c — peer for bench/quant.c: llama.cpp's own CPU kernels (from the libggml-cpu that
 * llama-cpp-python built here, for this CPU) against pulse on the same weights, one thread, back to back:
 * one activation row with ggml's type traits (from_float + vec_dot per weight row: the raw dot kernels) vs
 * pulse_qmatvec, and a batch of N = 32 rows through ggml_mul_mat in a graph on the CPU backend, with the
 * weight in the buffer type llama.cpp would give it (repack / llamafile kernels) vs pulse_qmatmul. Also
 * checks that both give the same products. `--isa avx2` (bench_init) puts pulse at the AVX2 level; the .sh
 * then links the llama.cpp built with AVX-512 off (LEVEL=avx2).
 * Build + run: bash bench/peers/ggml_quant.sh [--isa avx2] [MIN_TIME] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "pulse/core.h"
#include "pulse/quant.h"

#include "../bench.h"

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

/* batched: ggml's real path, as llama.cpp runs a weight matrix against a batch of tokens: the weight lives in
 * the first buffer type that supports this mul_mat (the CPU backend's extra types first, e.g. CPU_REPACK,
 * which re-lays the weights out for its GEMM kernels when they are set; then the plain CPU buffer, where
 * ggml_compute_forward_mul_mat takes llamafile's sgemm when it handles the type), chosen the way llama.cpp
 * chooses weight buffers (the op is probed with ggml_backend_dev_supports_op); then ggml_mul_mat in a graph,
 * computed by the CPU backend on one thread. Only the graph compute is timed (the activation copy into the
 * graph's input tensor is not). */
typedef struct {
    ggml_backend_t be;
    struct ggml_context *cw, *cc; /* the weight's context, the input/output/graph context */
    ggml_backend_buffer_t bw, bc;
    struct ggml_cgraph *gf;
    struct ggml_tensor *a, *b, *c; /* a (cols, rows) weight, b (cols, N) activations, c (rows, N) = a^T b */
    const char *buft;              /* name of the weight's buffer type */
} ggml_mm_plan;

static void mm_free(ggml_mm_plan *p) {
    if (p->bc) ggml_backend_buffer_free(p->bc);
    if (p->bw) ggml_backend_buffer_free(p->bw);
    if (p->cc) ggml_free(p->cc);
    if (p->cw) ggml_free(p->cw);
    p->bc = p->bw = NULL;
    p->cc = p->cw = NULL;
}

static int mm_init(ggml_mm_plan *p, ggml_backend_t be, const void *W, int type, int N, int rows, int cols) {
    memset(p, 0, sizeof *p);
    p->be = be;
    ggml_backend_dev_t dev = ggml_backend_get_device(be);
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    ggml_backend_dev_get_extra_bufts_t get_extra =
        (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(
            reg, "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t cands[16];
    int nc = 0;
    for (ggml_backend_buffer_type_t *e = get_extra ? get_extra(dev) : NULL; e && *e && nc < 15; e++)
        cands[nc++] = *e;
    cands[nc++] = ggml_backend_cpu_buffer_type();
    for (int i = 0; i < nc; i++) {
        struct ggml_init_params pw = {2 * ggml_tensor_overhead(), NULL, true};
        struct ggml_init_params pc = {8 * ggml_tensor_overhead() + ggml_graph_overhead(), NULL, true};
        p->cw = ggml_init(pw);
        p->cc = ggml_init(pc);
        p->a = ggml_new_tensor_2d(p->cw, (enum ggml_type)type, cols, rows);
        p->b = ggml_new_tensor_2d(p->cc, GGML_TYPE_F32, cols, N);
        p->c = ggml_mul_mat(p->cc, p->a, p->b);
        ggml_backend_buffer_t probe = ggml_backend_buft_alloc_buffer(cands[i], 0);
        p->a->buffer = probe;
        int ok = ggml_backend_dev_supports_op(dev, p->c);
        p->a->buffer = NULL;
        ggml_backend_buffer_free(probe);
        if (!ok) {
            mm_free(p);
            continue;
        }
        p->bw = ggml_backend_alloc_ctx_tensors_from_buft(p->cw, cands[i]);
        p->bc = ggml_backend_alloc_ctx_tensors(p->cc, be);
        if (!p->bw || !p->bc) {
            mm_free(p);
            continue;
        }
        ggml_backend_buffer_set_usage(p->bw, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        ggml_backend_tensor_set(p->a, W, 0, ggml_nbytes(p->a)); /* repacked here by an extra buffer type */
        p->gf = ggml_new_graph(p->cc);
        ggml_build_forward_expand(p->gf, p->c);
        p->buft = ggml_backend_buft_name(cands[i]);
        return 0;
    }
    return -1;
}

static void mm_set_input(ggml_mm_plan *p, const float *X) {
    ggml_backend_tensor_set(p->b, X, 0, ggml_nbytes(p->b));
}

static void mm_compute(ggml_mm_plan *p) {
    ggml_backend_graph_compute(p->be, p->gf);
}

static void mm_get_output(ggml_mm_plan *p, float *Y) {
    ggml_backend_tensor_get(p->c, Y, 0, ggml_nbytes(p->c)); /* (N, rows) row-major, as pulse_qmatmul */
}

int main(int argc, char **argv) {
    bench_init(&argc, argv); /* --isa */
    if (argc > 1) min_time = atof(argv[1]);
    ggml_cpu_init();
    ggml_backend_t be = ggml_backend_cpu_init();
    if (!be) {
        fprintf(stderr, "ggml_quant: ggml_backend_cpu_init failed\n");
        return 1;
    }
    ggml_backend_cpu_set_n_threads(be, 1);
    fprintf(stderr, "ggml: llamafile sgemm %s\n", ggml_cpu_has_llamafile() ? "built in" : "not built");
    if (getenv("PULSE_VNNI")) pulse_quant_use_vnni(atoi(getenv("PULSE_VNNI")));
    fprintf(stderr, "pulse kernels: %s\n", pulse_quant_use_vnni(-1) ? "avx512-vnni" : "avx2");
    omp_set_num_threads(1);
    const int types[] = {PULSE_GGML_Q4_0, PULSE_GGML_Q4_1, PULSE_GGML_Q5_0, PULSE_GGML_Q5_1, PULSE_GGML_Q8_0,
                         PULSE_GGML_Q4_K, PULSE_GGML_Q5_K, PULSE_GGML_Q6_K, PULSE_GGML_F16};
    const int shapes[2][2] = {{1536, 576}, {640, 2048}};
    pulse_rng r;
    pulse_rng_seed(&r, 5);
    fprintf(stderr, "%-5s %11s | %10s %10s %7s | %9s %9s %7s %-10s | %s\n", "type", "rows x cols",
            "pulse GB/s", "ggml GB/s", "ratio", "N=32 GF/s", "ggml GF/s", "ratio", "ggml buffer",
            "max |diff|/scale (1 row, N=32)");
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
            /* batched N = 32: pulse_qmatmul vs ggml_mul_mat in a graph on the CPU backend */
            const int N = 32;
            float *X = malloc(sizeof(float) * N * cols), *Y1 = malloc(sizeof(float) * N * rows),
                  *Y2 = malloc(sizeof(float) * N * rows);
            for (int j = 0; j < N * cols; j++) X[j] = pulse_rng_normal(&r);
            ggml_mm_plan mp;
            if (mm_init(&mp, be, W, t, N, rows, cols) != 0) {
                fprintf(stderr, "ggml_quant: no CPU buffer type supports mul_mat for %s\n",
                        pulse_ggml_type_name(t));
                return 1;
            }
            mm_set_input(&mp, X);
            double bb[2] = {1e30, 1e30};
            for (int round = 0; round < 5; round++)
                for (int who = 0; who < 2; who++) {
                    double t0 = cpu_now();
                    if (who == 0)
                        pulse_qmatmul(Y1, W, t, X, N, rows, cols);
                    else
                        mm_compute(&mp);
                    double dt = cpu_now() - t0;
                    if (dt < bb[who]) bb[who] = dt;
                }
            mm_get_output(&mp, Y2);
            double gf = 2.0 * rows * cols * N, bmd = 0, bsc = 0;
            for (size_t i = 0; i < (size_t)N * rows; i++)
                bmd = fmax(bmd, fabs(Y1[i] - Y2[i])), bsc = fmax(bsc, fabs(Y2[i]));
            const char *buft = mp.buft;
            mm_free(&mp);
            free(X), free(Y1), free(Y2);
            double md = 0, sc = 0;
            for (int i = 0; i < rows; i++) md = fmax(md, fabs(y1[i] - y2[i])), sc = fmax(sc, fabs(y2[i]));
            double bytes = (double)rs * rows;
            char line[256];
            snprintf(line, sizeof line,
                     "%-5s %5d x %4d | %10.2f %10.2f %6.2fx | %9.1f %9.1f %6.2fx %-10s | %.2e %.2e\n",
                     pulse_ggml_type_name(t), rows, cols, bytes / best[0] / 1e9, bytes / best[1] / 1e9,
                     best[1] / best[0], gf / bb[0] / 1e9, gf / bb[1] / 1e9, bb[1] / bb[0], buft, md / sc,
                     bmd / bsc);
            strncat(lines, line, sizeof lines - strlen(lines) - 1);
            printf("%s{\"type\":\"%s\",\"rows\":%d,\"cols\":%d,\"pulse_gbs\":%.2f,\"ggml_gbs\":%.2f,"
                   "\"pulse_vs_ggml\":%.2f,\"batch32_pulse_gflops\":%.1f,\"batch32_ggml_gflops\":%.1f,"
                   "\"batch32_pulse_vs_ggml\":%.2f,\"batch32_ggml_weight_buffer\":\"%s\","
                   "\"matvec_max_rel_diff\":%.2e,\"batch32_max_rel_diff\":%.2e}",
                   first ? "" : ",", pulse_ggml_type_name(t), rows, cols, bytes / best[0] / 1e9,
                   bytes / best[1] / 1e9, best[1] / best[0], gf / bb[0] / 1e9, gf / bb[1] / 1e9,
                   bb[1] / bb[0], buft, md / sc, bmd / bsc);
            fflush(stdout);
            first = 0;
            free(W), free(wf), free(x), free(y1), free(y2), free(xq);
        }
    printf("]}\n");
    fputs(lines, stderr);
    ggml_backend_free(be);
    return 0;
}
