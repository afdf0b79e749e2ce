/* bench/peers/blis_sgemm.c — the BLIS peer of build/bench_blas: the same product, C (n, n) = A (n, n) @ B^T
 * in fp32 through BLIS's own CBLAS (Debian's libblis, which picks its kernels by CPU features, not by model
 * table), on 1 and on T threads (bli_thread_set_num_threads), best of reps after one warm-up; prints a line
 * and a JSON line. Built and run by bench/peers/blis_sgemm.sh. */
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double best_of(int n, int reps, const float *A, const float *B, float *C) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv) {
    int n = 1024, T = 2, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
    }
    float *A = malloc(sizeof(float) * (size_t)n * n), *B = malloc(sizeof(float) * (size_t)n * n),
          *C = malloc(sizeof(float) * (size_t)n * n);
    if (!A || !B || !C) return 1;
    for (size_t i = 0; i < (size_t)n * n; i++)
        A[i] = (float)(i % 97) / 97 - 0.5f, B[i] = (float)(i % 89) / 89 - 0.5f;
    bli_thread_set_num_threads(1);
    double t1 = best_of(n, reps, A, B, C);
    bli_thread_set_num_threads(T);
    double tt = best_of(n, reps, A, B, C);
    const char *arch = bli_arch_string(bli_arch_query_id());
    double f = 2.0 * n * (double)n * n / 1e9;
    printf("BLIS %s, kernels %s: sgemm %d^3 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n",
           bli_info_get_version_str(), arch, n, f / t1, T, f / tt);
    printf(
        "{\"bench\":\"blas\",\"impl\":\"blis\",\"version\":\"%s\",\"kernels\":\"%s\",\"n\":%d,\"threads\":%d,"
        "\"gflops_1t\":%.1f,\"gflops_threads\":%.1f}\n",
        bli_info_get_version_str(), arch, n, T, f / t1, f / tt);
    free(A);
    free(B);
    free(C);
    return 0;
}
