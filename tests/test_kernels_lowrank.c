/* tests/test_kernels_lowrank.c — the LoRA low-rank products (kernels/lowrank.c): each against its scalar
 * reference of the same summation order bit for bit, against a double-precision product within rounding,
 * the same bits at 1 and 3 threads; ranks and widths with tails (r not a multiple of 8, C not of 8 / 32),
 * row strides wider than C, and the (C, r) gradient layout; the _drop forms (dropout masks inside the
 * products) against masking first. */
#include "test.h"

#include "pulse/core.h"
#include "pulse/kernels.h"

static void fill(pulse_rng *g, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = pulse_rng_normal(g);
}

static int same(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void run_shape(pulse_rng *g, int n, int C, int r, int ld) {
    const float scale = 0.75f;
    float *X = malloc(sizeof(float) * n * ld), *W = malloc(sizeof(float) * r * C),
          *T = malloc(sizeof(float) * n * r);
    float *T1 = malloc(sizeof(float) * n * r), *T2 = malloc(sizeof(float) * n * r);
    float *Y0 = malloc(sizeof(float) * n * ld), *Y1 = malloc(sizeof(float) * n * ld),
          *Y2 = malloc(sizeof(float) * n * ld);
    float *G0 = malloc(sizeof(float) * r * C), *G1 = malloc(sizeof(float) * r * C),
          *G2 = malloc(sizeof(float) * r * C);
    fill(g, X, (size_t)n * ld), fill(g, W, (size_t)r * C), fill(g, T, (size_t)n * r);
    const int prev = pulse_get_num_threads();
    /* down */
    pulse_lowrank_down_ref(T1, X, ld, W, n, C, r, scale);
    pulse_set_num_threads(3);
    pulse_lowrank_down(T2, X, ld, W, n, C, r, scale);
    CHECK_MSG(same(T1, T2, (size_t)n * r), "down n=%d C=%d r=%d: vs reference", n, C, r);
    pulse_set_num_threads(1);
    pulse_lowrank_down(T2, X, ld, W, n, C, r, scale);
    CHECK_MSG(same(T1, T2, (size_t)n * r), "down n=%d C=%d r=%d: 1 thread", n, C, r);
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < r; j++) {
            double e = 0, m = 0;
            for (int c = 0; c < C; c++)
                e += (double)X[(size_t)i * ld + c] * W[(size_t)j * C + c],
                    m += fabs((double)X[(size_t)i * ld + c] * W[(size_t)j * C + c]);
            const double d = fabs(scale * e - T1[(size_t)i * r + j]) / (fabs(scale) * m + 1e-30);
            worst = d > worst ? d : worst;
        }
    CHECK_MSG(worst < 1e-6, "down n=%d C=%d r=%d: %g of sum |terms| from the double product", n, C, r, worst);
    /* up, add and set */
    for (int add = 0; add < 2; add++) {
        fill(g, Y0, (size_t)n * ld);
        memcpy(Y1, Y0, sizeof(float) * n * ld), memcpy(Y2, Y0, sizeof(float) * n * ld);
        pulse_lowrank_up_ref(Y1, ld, T, W, n, C, r, scale, add);
        pulse_set_num_threads(3);
        pulse_lowrank_up(Y2, ld, T, W, n, C, r, scale, add);
        CHECK_MSG(same(Y1, Y2, (size_t)n * ld), "up n=%d C=%d r=%d add=%d: vs reference", n, C, r, add);
        worst = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < ld; c++) {
                double e = 0, m = 0;
                if (c < C)
                    for (int j = 0; j < r; j++)
                        e += (double)T[(size_t)i * r + j] * W[(size_t)j * C + c],
                            m += fabs((double)T[(size_t)i * r + j] * W[(size_t)j * C + c]);
                const double want =
                    c >= C ? Y0[(size_t)i * ld + c] : (add ? Y0[(size_t)i * ld + c] : 0) + scale * e;
                const double d = fabs(want - Y2[(size_t)i * ld + c]) /
                                 (scale * m + fabs(add ? Y0[(size_t)i * ld + c] : 0) + 1e-30);
                worst = d > worst ? d : worst;
            }
        CHECK_MSG(worst < 1e-6,
                  "up n=%d C=%d r=%d add=%d: %g from the double product (columns past C untouched)", n, C, r,
                  add, worst);
    }
    /* grad, both layouts */
    for (int gt = 0; gt < 2; gt++) {
        fill(g, G0, (size_t)r * C);
        memcpy(G1, G0, sizeof(float) * r * C), memcpy(G2, G0, sizeof(float) * r * C);
        pulse_lowrank_grad_ref(G1, gt, T, X, ld, n, C, r, scale);
        pulse_set_num_threads(3);
        pulse_lowrank_grad(G2, gt, T, X, ld, n, C, r, scale);
        CHECK_MSG(same(G1, G2, (size_t)r * C), "grad n=%d C=%d r=%d gt=%d: vs reference", n, C, r, gt);
        memcpy(G2, G0, sizeof(float) * r * C);
        pulse_set_num_threads(1);
        pulse_lowrank_grad(G2, gt, T, X, ld, n, C, r, scale);
        CHECK_MSG(same(G1, G2, (size_t)r * C), "grad n=%d C=%d r=%d gt=%d: 1 thread", n, C, r, gt);
        worst = 0;
        for (int j = 0; j < r; j++)
            for (int c = 0; c < C; c++) {
                double e = 0, m = 0;
                for (int i = 0; i < n; i++)
                    e += (double)T[(size_t)i * r + j] * X[(size_t)i * ld + c],
                        m += fabs((double)T[(size_t)i * r + j] * X[(size_t)i * ld + c]);
                const size_t k = gt ? (size_t)c * r + j : (size_t)j * C + c;
                const double d = fabs(G0[k] + scale * e - G1[k]) / (scale * m + fabs(G0[k]) + 1e-30);
                worst = d > worst ? d : worst;
            }
        CHECK_MSG(worst < 1e-6, "grad n=%d C=%d r=%d gt=%d: %g from the double product", n, C, r, gt, worst);
    }
    pulse_set_num_threads(prev);
    free(X), free(W), free(T), free(T1), free(T2), free(Y0), free(Y1), free(Y2), free(G0), free(G1), free(G2);
}

/* The _drop forms: the same bits as masking into a buffer (x * m, m = keep or 0 from pulse_drop_hash) and
 * the plain forms (up: y + (plain SET product) * m), SIMD = reference, 1 and 3 threads, and the masks drop
 * about p of the elements. */
static void run_drop(pulse_rng *g, int n, int C, int r, int ld, float p) {
    const float scale = 0.75f;
    uint32_t *rows = malloc(sizeof(uint32_t) * 3 * (size_t)n);
    for (int i = 0; i < n; i++)
        rows[3 * i] = (uint32_t)pulse_rng_u64(g), rows[3 * i + 1] = (uint32_t)pulse_rng_u64(g),
                 rows[3 * i + 2] = (uint32_t)(i * C);
    const double v = (double)p * 4294967296.0;
    const pulse_lr_drop d = {rows, v >= 4294967295.0 ? 0xffffffffu : (uint32_t)v, 1.0f / (1.0f - p), NULL, 0,
                             0};
    float *X = malloc(sizeof(float) * n * ld), *Xm = malloc(sizeof(float) * n * ld),
          *W = malloc(sizeof(float) * r * C), *T = malloc(sizeof(float) * n * r),
          *T1 = malloc(sizeof(float) * n * r), *T2 = malloc(sizeof(float) * n * r),
          *Y0 = malloc(sizeof(float) * n * ld), *Y1 = malloc(sizeof(float) * n * ld),
          *Y2 = malloc(sizeof(float) * n * ld), *P = malloc(sizeof(float) * n * ld),
          *G0 = malloc(sizeof(float) * r * C), *G1 = malloc(sizeof(float) * r * C),
          *G2 = malloc(sizeof(float) * r * C);
    fill(g, X, (size_t)n * ld), fill(g, W, (size_t)r * C), fill(g, T, (size_t)n * r),
        fill(g, Y0, (size_t)n * ld);
    long dropped = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < ld; c++) {
            const float m =
                c < C && pulse_drop_hash(rows[3 * i + 2] + (uint32_t)c, rows[3 * i], rows[3 * i + 1]) < d.thr
                    ? 0.0f
                    : d.keep;
            dropped += c < C && m == 0.0f;
            Xm[(size_t)i * ld + c] = X[(size_t)i * ld + c] * m;
        }
    const double frac = (double)dropped / ((double)n * C);
    CHECK_MSG(fabs(frac - p) < 0.02 + 4 * sqrt(p * (1 - p) / ((double)n * C)),
              "drop n=%d C=%d: dropped %g, p %g", n, C, frac, (double)p);
    const int prev = pulse_get_num_threads();
    for (int th = 1; th <= 3; th += 2) {
        pulse_set_num_threads(th);
        /* down */
        pulse_lowrank_down_ref(T1, Xm, ld, W, n, C, r, scale);
        pulse_lowrank_down_drop(T2, X, ld, W, n, C, r, scale, &d);
        CHECK_MSG(same(T1, T2, (size_t)n * r), "down_drop n=%d C=%d r=%d (%d threads)", n, C, r, th);
        pulse_lowrank_down_drop_ref(T2, X, ld, W, n, C, r, scale, &d);
        CHECK_MSG(same(T1, T2, (size_t)n * r), "down_drop_ref n=%d C=%d r=%d", n, C, r);
        /* grad */
        for (int gt = 0; gt < 2; gt++) {
            fill(g, G0, (size_t)r * C);
            memcpy(G1, G0, sizeof(float) * r * C), memcpy(G2, G0, sizeof(float) * r * C);
            pulse_lowrank_grad_ref(G1, gt, T, Xm, ld, n, C, r, scale);
            pulse_lowrank_grad_drop(G2, gt, T, X, ld, n, C, r, scale, &d);
            CHECK_MSG(same(G1, G2, (size_t)r * C), "grad_drop n=%d C=%d r=%d gt=%d (%d threads)", n, C, r, gt,
                      th);
            memcpy(G2, G0, sizeof(float) * r * C);
            pulse_lowrank_grad_drop_ref(G2, gt, T, X, ld, n, C, r, scale, &d);
            CHECK_MSG(same(G1, G2, (size_t)r * C), "grad_drop_ref n=%d C=%d r=%d gt=%d", n, C, r, gt);
        }
        /* the keep bits: down_drop draws and writes them (mode 1), grad / up read them (mode 2): the same */
        const int bld = (C + 7) / 8 + 1;
        uint8_t *bits = malloc((size_t)n * bld);
        memset(bits, 0xa5, (size_t)n * bld);
        pulse_lr_drop d1 = d, d2 = d;
        d1.bits = d2.bits = bits, d1.bits_ld = d2.bits_ld = bld, d1.bits_mode = 1, d2.bits_mode = 2;
        pulse_lowrank_down_drop(T2, X, ld, W, n, C, r, scale, &d1);
        CHECK_MSG(same(T1, T2, (size_t)n * r), "down_drop writing bits n=%d C=%d r=%d", n, C, r);
        memcpy(G1, G0, sizeof(float) * r * C), memcpy(G2, G0, sizeof(float) * r * C);
        pulse_lowrank_grad_drop(G1, 0, T, X, ld, n, C, r, scale, &d);
        pulse_lowrank_grad_drop(G2, 0, T, X, ld, n, C, r, scale, &d2);
        CHECK_MSG(same(G1, G2, (size_t)r * C), "grad_drop from bits n=%d C=%d r=%d", n, C, r);
        memcpy(G2, G0, sizeof(float) * r * C);
        pulse_lowrank_grad_drop_ref(G2, 0, T, X, ld, n, C, r, scale, &d2);
        CHECK_MSG(same(G1, G2, (size_t)r * C), "grad_drop_ref from bits n=%d C=%d r=%d", n, C, r);
        memset(bits, 0x5a, (size_t)n * bld);
        pulse_lowrank_down_drop_ref(T2, X, ld, W, n, C, r, scale, &d1);
        memcpy(Y1, Y0, sizeof(float) * n * ld), memcpy(Y2, Y0, sizeof(float) * n * ld);
        pulse_lowrank_up_drop(Y1, ld, T, W, n, C, r, scale, &d);
        pulse_lowrank_up_drop(Y2, ld, T, W, n, C, r, scale, &d2);
        CHECK_MSG(same(Y1, Y2, (size_t)n * ld), "up_drop from the reference's bits n=%d C=%d r=%d", n, C, r);
        free(bits);
        /* up: y + (the SET product) * m */
        pulse_lowrank_up_ref(P, ld, T, W, n, C, r, scale, 0);
        memcpy(Y1, Y0, sizeof(float) * n * ld), memcpy(Y2, Y0, sizeof(float) * n * ld);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                const size_t k = (size_t)i * ld + c;
                const float m = Xm[k] == 0.0f && X[k] != 0.0f ? 0.0f : d.keep;
                Y1[k] = Y1[k] + P[k] * m;
            }
        pulse_lowrank_up_drop(Y2, ld, T, W, n, C, r, scale, &d);
        CHECK_MSG(same(Y1, Y2, (size_t)n * ld), "up_drop n=%d C=%d r=%d (%d threads)", n, C, r, th);
        memcpy(Y2, Y0, sizeof(float) * n * ld);
        pulse_lowrank_up_drop_ref(Y2, ld, T, W, n, C, r, scale, &d);
        CHECK_MSG(same(Y1, Y2, (size_t)n * ld), "up_drop_ref n=%d C=%d r=%d", n, C, r);
    }
    pulse_set_num_threads(prev);
    free(rows), free(X), free(Xm), free(W), free(T), free(T1), free(T2), free(Y0), free(Y1), free(Y2),
        free(P);
    free(G0), free(G1), free(G2);
}

int main(void) {
    pulse_rng g;
    pulse_rng_seed(&g, 7);
    /* {n, C, r, row stride}: SmolLM2's q (576 -> 8), k (8 -> 192) shapes, tails of every kind */
    const int shapes[][4] = {{300, 576, 8, 576}, {257, 192, 8, 200}, {64, 37, 5, 40},    {9, 100, 16, 100},
                             {130, 8, 1, 9},     {1, 33, 12, 33},    {77, 1536, 4, 1536}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        run_shape(&g, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        run_drop(&g, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], s % 2 ? 0.05f : 0.3f);
    return test_summary();
}
