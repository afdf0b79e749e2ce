/* tests/kernels_util.h — helpers for the kernel tests (tests/test_kernels_*.c): random fills and a central
 * finite-difference gradient checker in double precision. Include after test.h. */
#ifndef PULSE_TESTS_KERNELS_UTIL_H
#define PULSE_TESTS_KERNELS_UTIL_H

#include "pulse/core.h"
#include "pulse/kernels.h"

static pulse_rng ku_rng;

static inline void ku_fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * pulse_rng_float(&ku_rng);
}

/* fill with values whose magnitude lies in [lo, hi], random sign (keeps ReLU inputs away from the kink) */
static inline void ku_fill_away(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        float m = lo + (hi - lo) * pulse_rng_float(&ku_rng);
        x[i] = (pulse_rng_u64(&ku_rng) & 1) ? m : -m;
    }
}

static inline float *ku_alloc(size_t n) {
    float *p = (float *)calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

static inline double ku_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static inline double ku_max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as "large" */
    }
    return m;
}

typedef double (*ku_loss_fn)(void *ctx);

/* Compare the analytic gradient ana (n) of f with respect to x (n) against central differences
 * (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-), using the rounded float steps actually taken. An element
 * passes when |ana - num| <= atol or the relative error <= rtol. Also asserts the gradient is not all 0. */
static inline void ku_fd_check(const char *name, ku_loss_fn f, void *ctx, float *x, const float *ana,
                               size_t n, float h, double rtol, double atol) {
    int bad = 0;
    double worst = 0.0, maxana = 0.0;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h;
        float xp = x[i];
        double lp = f(ctx);
        x[i] = x0 - h;
        float xm = x[i];
        double lm = f(ctx);
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm);
        double err = fabs(num - (double)ana[i]);
        double den = fmax(fabs(num), fabs((double)ana[i]));
        double rel = den > 0 ? err / den : 0.0;
        if (fabs((double)ana[i]) > maxana) maxana = fabs((double)ana[i]);
        if (!(err <= atol || rel <= rtol)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: analytic %.7g numeric %.7g (abs %.3g rel %.3g)\n", name, i,
                        (double)ana[i], num, err, rel);
            bad++;
        }
        if (err > worst) worst = err;
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu gradient entries off (worst abs %.3g)", name, bad, n, worst);
    CHECK_MSG(maxana > 0.0, "%s: analytic gradient is all zero", name);
}

/* backward accumulates: after a second identical call, buf must equal twice the first result */
static inline void ku_check_accum(const char *name, const float *buf, const float *once, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)buf[i] - 2.0 * once[i]) > 1e-5 * (1.0 + fabs((double)once[i]))) bad++;
    CHECK_MSG(bad == 0, "%s: backward does not accumulate (%d entries)", name, bad);
}

#endif
