/* kernels/linear.c — owns the linear layer (sgemm/sgemv from OpenBLAS) and the embedding lookup, forward
 * and backward side by side. The products go through kernels/blas.c (OpenMP-split, OpenBLAS at 1 thread). */
#include "pulse/kernels.h"

#include <string.h>

#include "kernels/internal.h"

/* ---- linear: out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC) ---- */
void pulse_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                          int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) {
        for (int n = 0; n < N; n++) {
            if (bias)
                memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
            else
                memset(out + (size_t)n * OC, 0, (size_t)OC * sizeof(float));
        }
        return;
    }
    float beta = 0.0f;
    if (bias) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    if (N == 1)
        pk_sgemv(0, OC, C, 1.0f, weight, C, inp, beta, out);
    else
        pk_sgemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

/* dinp (N, C) += dout (N, OC) @ weight (OC, C); dweight (OC, C) += dout^T @ inp; dbias (OC) += sum_n dout */
void pulse_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C > 0 && dinp) {
        if (N == 1)
            pk_sgemv(1, OC, C, 1.0f, weight, C, dout, 1.0f, dinp);
        else
            pk_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    }
    if (C > 0 && dweight) {
        if (N == 1)
            pk_sger(OC, C, 1.0f, dout, inp, dweight, C);
        else
            pk_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    }
    if (dbias) {
        /* column sums; each thread owns a contiguous block of output channels and walks all rows in order,
         * so the result is deterministic for any thread count */
        int nblk = (OC + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)N * OC > PK_PAR_WORK * 4)
        for (int blk = 0; blk < nblk; blk++) {
            int o0 = blk * 64, o1 = o0 + 64 < OC ? o0 + 64 : OC;
            float acc[64];
            for (int o = o0; o < o1; o++) acc[o - o0] = 0.0f;
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
#pragma omp simd
                for (int o = o0; o < o1; o++) acc[o - o0] += d[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}

/* ---- embedding: out (N, C) = table (V, C)[ids (N)]; ids outside [0, V) give a row of zeros ---- */
void pulse_embedding_forward(float *out, const int *ids, const float *table, int N, int C, int V) {
#pragma omp parallel for schedule(static) if ((long)N * C > PK_PAR_ELEMS)
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        float *o = out + (size_t)n * C;
        if (id < 0 || id >= V)
            memset(o, 0, (size_t)C * sizeof(float));
        else
            memcpy(o, table + (size_t)id * C, (size_t)C * sizeof(float));
    }
}

/* dtable (V, C) += scatter of dout (N, C) by ids; serial over N (duplicate ids accumulate in order);
 * out-of-range ids are skipped */
void pulse_embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C, int V) {
    if (!dtable) return;
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        if (id < 0 || id >= V) continue;
        float *dt = dtable + (size_t)id * C;
        const float *d = dout + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) dt[c] += d[c];
    }
}
