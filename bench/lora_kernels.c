/* bench/lora_kernels.c — the LoRA training kernels at SmolLM2-135M shapes (batch 8 x 256 tokens = 2048 rows,
 * n_embd 576, n_ff 1536, 9 / 3 heads of 64, vocabulary 49152, 30 layers): per weight type, the frozen
 * products' forward (pulse_qmatmul: int8 activations, vs pulse_qmatmul_dq: dequantised blocks + bf16 GEMM)
 * and input gradient (pulse_qmatmul_backward) in GFLOP/s; the training attention forward / backward and the
 * head + cross-entropy at 128 loss rows in ms; and what they add up to per layer and per training step
 * (forward + input gradients of every frozen product, attention forward + backward, the head). Times: the
 * best of several runs, wall clock with T threads. One JSON line at the end.
 * Usage: bench_lora_kernels [--threads T] [--min-time S] [--types q4_1,q4_0,q8_0] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pulse/core.h"
#include "pulse/ggml.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"
#include "pulse/quant.h"

static double min_time = 0.5;

#define TIME_BEST(best, stmt)                                                                                \
    do {                                                                                                     \
        double t_end_ = pulse_now() + min_time;                                                              \
        best = 1e30;                                                                                         \
        stmt; /* warm-up */                                                                                  \
        for (int k_ = 0; k_ < 3 || pulse_now() < t_end_; k_++) {                                             \
            double t0_ = pulse_now();                                                                        \
            stmt;                                                                                            \
            double dt_ = pulse_now() - t0_;                                                                  \
            if (dt_ < best) best = dt_;                                                                      \
        }                                                                                                    \
    } while (0)

static float *frand(size_t n, pulse_rng *r, float a) {
    float *p = malloc(n * sizeof(float));
    if (!p) abort();
    for (size_t i = 0; i < n; i++) p[i] = a * (pulse_rng_float(r) * 2.0f - 1.0f);
    return p;
}

static void *qweight(int type, int rows, int cols, pulse_rng *r) {
    const size_t rb = pulse_ggml_row_size(type, cols);
    uint8_t *W = malloc(rb * (size_t)rows);
    float *row = frand((size_t)cols, r, 0.05f);
    if (!W) abort();
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) row[j] = 0.05f * (pulse_rng_float(r) * 2.0f - 1.0f);
        pulse_quantize_row(type, row, W + (size_t)i * rb, cols);
    }
    free(row);
    return W;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    int threads = 2;
    const char *types_arg = "q4_1,q4_0,q8_0";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            types_arg = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_lora_kernels [--threads T] [--min-time S] [--types q4_1,q4_0,...]\n");
            return 2;
        }
    }
    pulse_set_num_threads(threads);
    const int B = 8, T = 256, N = B * T, E = 576, F = 1536, NH = 9, NKV = 3, HD = 64, V = 49152, NL = 30;
    const int NLOSS = B * 16;
    pulse_rng r;
    pulse_rng_seed(&r, 7);
    /* the layer's frozen products: q, k, v, o, gate, up, down as (rows, cols) */
    const int shp[7][2] = {{E, E}, {NKV * HD, E}, {NKV * HD, E}, {E, E}, {F, E}, {F, E}, {E, F}};
    float *X = frand((size_t)N * F, &r, 1.0f), *Y = frand((size_t)N * F, &r, 1.0f);
    float *dX = calloc((size_t)N * F, sizeof(float));
    char json[8192];
    int jn = snprintf(json, sizeof json, "{\"bench\":\"lora_kernels\",\"threads\":%d,\"rows\":%d,\"types\":{",
                      threads, N);
    int first = 1;
    double step_best = 1e30;
    char tbuf[64];
    snprintf(tbuf, sizeof tbuf, "%s", types_arg);
    for (char *tok = strtok(tbuf, ","); tok; tok = strtok(NULL, ",")) {
        int type = -1;
        for (int t = 0; t < 40; t++) {
            const char *nm = pulse_ggml_type_name(t);
            if (nm && !strcmp(nm, tok)) type = t;
        }
        if (type < 0 || !pulse_ggml_type_supported(type)) {
            fprintf(stderr, "unknown type %s\n", tok);
            continue;
        }
        double tq = 0, tdq = 0, tbw = 0, flop = 0;
        for (int m = 0; m < 7; m++) {
            const int rows = shp[m][0], cols = shp[m][1];
            void *W = qweight(type, rows, cols, &r);
            double a, b, c;
            TIME_BEST(a, pulse_qmatmul(Y, W, type, X, N, rows, cols));
            TIME_BEST(b, pulse_qmatmul_dq(Y, X, W, type, N, rows, cols));
            TIME_BEST(c, pulse_qmatmul_backward(dX, Y, W, type, N, rows, cols));
            tq += a, tdq += b, tbw += c;
            flop += 2.0 * N * rows * cols;
            free(W);
        }
        const double fwd = tq < tdq ? tq : tdq, layer = fwd + tbw;
        printf("%-5s per layer (7 products, %d rows): forward qmatmul %.1f ms (%.0f GFLOP/s), qmatmul_dq "
               "%.1f ms "
               "(%.0f), backward dX %.1f ms (%.0f)\n",
               tok, N, 1e3 * tq, flop / tq / 1e9, 1e3 * tdq, flop / tdq / 1e9, 1e3 * tbw, flop / tbw / 1e9);
        jn += snprintf(json + jn, sizeof json - (size_t)jn,
                       "%s\"%s\":{\"fwd_qmatmul_ms\":%.2f,\"fwd_dq_ms\":%.2f,\"bwd_ms\":%.2f,\"gflops_fwd_"
                       "qmatmul\":%.1f,"
                       "\"gflops_fwd_dq\":%.1f,\"gflops_bwd\":%.1f}",
                       first ? "" : ",", tok, 1e3 * tq, 1e3 * tdq, 1e3 * tbw, flop / tq / 1e9,
                       flop / tdq / 1e9, flop / tbw / 1e9);
        first = 0;
        if (layer < step_best) step_best = layer;
    }
    /* attention */
    const pulse_attn_params ap = {NH, NKV, HD, 0.125f, 0.0f, 0, NULL, 0},
                            ab = {NH, NKV, HD, 0.125f, 0.0f, 0, NULL, 1}; /* fp32; bf16 products */
    const size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD;
    float *q = frand(nq, &r, 1.0f), *k = frand(nk, &r, 1.0f), *v = frand(nk, &r, 1.0f),
          *o = frand(nq, &r, 1.0f);
    float *lse = calloc((size_t)B * NH * T, sizeof(float)), *dq = calloc(nq, sizeof(float));
    float *dk = calloc(nk, sizeof(float)), *dv = calloc(nk, sizeof(float));
    double ta, tb, ta16 = 0, tb16 = 0;
    TIME_BEST(ta, pulse_causal_attention_forward(o, lse, q, k, v, NULL, B, T, &ap));
    TIME_BEST(tb, pulse_causal_attention_backward(dq, dk, dv, q, o, lse, q, k, v, NULL, B, T, &ap));
    printf("attention B%d T%d %d/%d heads x %d, fp32: forward %.1f ms, backward %.1f ms\n", B, T, NH, NKV, HD,
           1e3 * ta, 1e3 * tb);
    if (pulse_bf16_supported()) { /* the trainer's default where the CPU has AVX512-BF16 */
        TIME_BEST(ta16, pulse_causal_attention_forward(o, lse, q, k, v, NULL, B, T, &ab));
        TIME_BEST(tb16, pulse_causal_attention_backward(dq, dk, dv, q, o, lse, q, k, v, NULL, B, T, &ab));
        printf("attention B%d T%d %d/%d heads x %d, bf16 products: forward %.1f ms, backward %.1f ms\n", B, T,
               NH, NKV, HD, 1e3 * ta16, 1e3 * tb16);
        ta = ta16, tb = tb16;
    }
    /* head at the loss rows */
    void *Wh = qweight(PULSE_GGML_Q8_0, V, E, &r);
    int *tg = malloc(sizeof(int) * (size_t)NLOSS);
    for (int i = 0; i < NLOSS; i++) tg[i] = (int)(pulse_rng_u64(&r) % (uint64_t)V);
    float *xh = frand((size_t)NLOSS * E, &r, 1.0f), *dxh = calloc((size_t)NLOSS * E, sizeof(float));
    float *lg = malloc(sizeof(float) * (size_t)NLOSS * V);
    double th;
    TIME_BEST(th,
              pulse_qhead_loss(dxh, NULL, xh, Wh, PULSE_GGML_Q8_0, tg, NLOSS, E, V, 0.0f, 1.0f, lg, NLOSS));
    printf("head q8_0 + cross-entropy at %d loss rows (V %d): %.1f ms\n", NLOSS, V, 1e3 * th);
    /* the LoRA factor products of one adapter (r 8, 576 -> 576; dropout 0.05 drawn by counter, keep bits
     * written by the forward's down and read by the backward's, as the trainer runs them) */
    const int R = 8;
    float *xa = frand((size_t)N * E, &r, 1.0f), *ya = frand((size_t)N * E, &r, 1.0f);
    float *ta8 = calloc((size_t)N * R, sizeof(float)), *Aw = frand((size_t)R * E, &r, 0.05f),
          *Bw = frand((size_t)E * R, &r, 0.05f), *gA = calloc((size_t)R * E, sizeof(float));
    uint32_t *rows = malloc(sizeof(uint32_t) * 3 * (size_t)N);
    uint8_t *kb = malloc((size_t)N * (size_t)((E + 7) / 8));
    for (int i = 0; i < N; i++) rows[3 * i] = (uint32_t)i * 31u, rows[3 * i + 1] = 7u, rows[3 * i + 2] = 0u;
    pulse_lr_drop d1 = {rows, (uint32_t)(0.05 * 4294967296.0), 1.0f / 0.95f, kb, (E + 7) / 8, 1}, d2 = d1;
    d2.bits_mode = 2;
    double tdn, tup, tgr, tupd;
    TIME_BEST(tdn, pulse_lowrank_down_drop(ta8, xa, E, Aw, N, E, R, 1.0f, &d1));
    TIME_BEST(tup, pulse_lowrank_up(ya, E, ta8, Bw, N, E, R, 2.0f, 1));
    TIME_BEST(tgr, pulse_lowrank_grad_drop(gA, 0, ta8, xa, E, N, E, R, 1.0f, &d2));
    TIME_BEST(tupd, pulse_lowrank_up_drop(xa, E, ta8, Aw, N, E, R, 1e-6f, &d2));
    printf("LoRA r %d, %d x %d, dropout by counter: down (writes keep bits) %.3f ms, up %.3f ms, grad (reads "
           "them) %.3f ms, up with mask %.3f ms\n",
           R, N, E, 1e3 * tdn, 1e3 * tup, 1e3 * tgr, 1e3 * tupd);
    free(xa), free(ya), free(ta8), free(Aw), free(Bw), free(gA), free(rows), free(kb);
    const double step = NL * (step_best + ta + tb) + th;
    printf(
        "per step (%d layers: best forward + dX of the products, attention fwd + bwd; head): %.2f s -> %.0f "
        "tokens/s (no recompute, no elementwise ops, no LoRA products)\n",
        NL, step, N / step);
    jn += snprintf(json + jn, sizeof json - (size_t)jn,
                   "},\"attn_fwd_ms\":%.2f,\"attn_bwd_ms\":%.2f,\"attn_bf16\":%s,\"head_ms\":%.2f,"
                   "\"kernel_step_s\":%.3f,\"kernel_tokens_s\":%.1f,\"lora_ms\":{\"down_drop\":%.3f,"
                   "\"up\":%.3f,\"grad_drop\":%.3f,\"up_drop\":%.3f}}",
                   1e3 * ta, 1e3 * tb, ta16 > 0 ? "true" : "false", 1e3 * th, step, N / step, 1e3 * tdn,
                   1e3 * tup, 1e3 * tgr, 1e3 * tupd);
    bench_emit(json);
    free(X), free(Y), free(dX), free(q), free(k), free(v), free(o), free(lse), free(dq), free(dk), free(dv);
    free(Wh), free(tg), free(xh), free(dxh), free(lg);
    return 0;
}
