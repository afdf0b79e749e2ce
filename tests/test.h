/* tests/test.h — the tiny test harness every tests/test_*.c uses: CHECK macros, a summary line
 * "N passed, N failed" that CI reads, skips that CTest reports as Skipped (exit 77, SKIP_RETURN_CODE in
 * CMakeLists.txt), and paths to the source tree and shared data.
 * Exit status of a test: 1 when a check failed or nothing was checked, 77 when something was skipped (a model
 * not fetched, no shared data, a CPU without the feature), else 0. A skip never hides a failure. */
#ifndef PULSE_TEST_H
#define PULSE_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pulse/core.h"
#include "pulse/kernels.h"

static int t_pass, t_fail, t_skip;

#define TEST_SKIP_EXIT 77 /* CTest: SKIP_RETURN_CODE */

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (cond)                                                                                            \
            t_pass++;                                                                                        \
        else {                                                                                               \
            t_fail++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                         \
        }                                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                 \
    do {                                                                                                     \
        if (cond)                                                                                            \
            t_pass++;                                                                                        \
        else {                                                                                               \
            t_fail++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
        }                                                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                                \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%s=%.9g %s=%.9g tol=%g", #a, (double)(a), #b,       \
              (double)(b), (double)(tol))

#define CHECK_OK(expr)                                                                                       \
    do {                                                                                                     \
        pulse_status st_ = (expr);                                                                           \
        CHECK_MSG(st_ == PULSE_OK, "%s -> %d (%s)", #expr, (int)st_, pulse_last_error());                    \
    } while (0)

static inline int test_summary(void) {
    if (t_skip)
        printf("%d passed, %d failed, %d skipped\n", t_pass, t_fail, t_skip);
    else
        printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : t_skip ? TEST_SKIP_EXIT : t_pass ? 0 : 1;
}

/* "SKIP <why>" on stdout, counted */
static inline void test_vskip(const char *fmt, va_list ap) {
    printf("SKIP ");
    vprintf(fmt, ap);
    printf("\n");
    t_skip++;
}

/* A part of the test that cannot run here (a model not fetched, no shared data): "SKIP <why>" on stdout; the
 * rest still runs and test_summary() then exits 77 unless a check failed. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static inline void
test_skip_part(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    test_vskip(fmt, ap);
    va_end(ap);
}

/* The whole test cannot run here: "SKIP <why>", then exit 77 (or 1 if a check already failed). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void
test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    test_vskip(fmt, ap);
    va_end(ap);
    fflush(stdout);
    exit(test_summary());
}

/* PULSE_ISA=scalar|avx2|avx512|native: every test runs its kernels at that instruction level (CMakeLists.txt
 * adds <test>_avx2 and <test>_scalar variants of the kernel tests, so the lower levels' paths are tested on
 * an AVX-512 machine too). Read here, before main, through the API (the library reads no environment): the
 * level is capped (pulse_cpu_limit) and OpenBLAS put on its core (pulse_blas_select), as the CLI does for
 * --isa; the CLI commands a test runs read the same variable. A level the CPU does not have: the test skips.
 * Unset: nothing changes. */
#if defined(__GNUC__)
__attribute__((constructor))
#endif
static void
test_isa_from_env(void) {
    const char *e = getenv("PULSE_ISA");
    if (!e || !*e) return;
    pulse_isa isa;
    if (pulse_isa_parse(e, &isa) != PULSE_OK) {
        fprintf(stderr, "PULSE_ISA: %s\n", pulse_last_error());
        exit(1);
    }
    if (pulse_cpu_limit(isa) != PULSE_OK) test_skip("PULSE_ISA=%s: %s", e, pulse_last_error());
    pulse_blas_params bp = pulse_blas_default_params();
    bp.explicit_core = getenv("OPENBLAS_CORETYPE");
    if (pulse_blas_select(&bp, NULL) != PULSE_OK)
        fprintf(stderr, "PULSE_ISA=%s: OpenBLAS stays on its own core: %s\n", e, pulse_last_error());
    printf("instruction level: %s (PULSE_ISA=%s)\n", pulse_level_name(pulse_cpu_get()->level), e);
}

/* Run a shell command: its stdout (up to cap-1 bytes) into out, NUL-terminated; returns its exit status, -1
 * when it could not start or did not exit. */
static inline int test_run(const char *cmd, char *out, size_t cap) {
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#ifdef PULSE_CLI
/* Run `pulse ARGS` (the CLI under test, progress silenced) in folder dir, ARGS from a printf format: its
 * stdout into out (cap bytes); prints the command and its exit status, which it returns. Tests name it
 * through a one-line macro over their folder and buffer, e.g.
 *   #define pulse(...) test_pulse_in(tmp, out_buf, sizeof out_buf, __VA_ARGS__) */
static inline int test_pulse_in(const char *dir, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int test_pulse_in(const char *dir, char *out, size_t cap, const char *fmt, ...) {
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && PULSE_QUIET=1 '%s' %s", dir, PULSE_CLI, args);
    int rc = test_run(cmd, out, cap);
    printf("pulse %.200s -> %d\n", args, rc);
    return rc;
}
#endif

/* The last line of s (trailing newlines cut off in place): where a measuring command puts its JSON. */
static inline const char *test_last_line(char *s) {
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\n') s[--n] = 0;
    char *l = strrchr(s, '\n');
    return l ? l + 1 : s;
}

/* test_run keeping only the last stdout line (in last, n bytes) */
static inline int test_run_last(const char *cmd, char *last, size_t n) {
    static char buf[1 << 20];
    int rc = test_run(cmd, buf, sizeof buf);
    snprintf(last, n, "%s", test_last_line(buf));
    return rc;
}

/* base64 (standard alphabet; other bytes skipped) -> malloc'ed bytes (caller frees), *n = bytes; NULL on OOM
 */
static inline uint8_t *test_b64_decode(const char *s, size_t *n) {
    size_t len = strlen(s), o = 0;
    uint8_t *out = malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; out && i < len; i++) {
        const int c = (unsigned char)s[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0) continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *n = o;
    return out;
}

static inline const char *test_shared_dir(void) {
    const char *e = getenv("PULSE_SHARED");
    return e ? e : PULSE_SOURCE_DIR "/../shared";
}

/* A path under the download cache: $PULSE_CACHE/sub, else <source>/.cache/sub (where scripts/fetch-*.sh put
 * models and encoders by default). */
static inline const char *test_cache_path(char *buf, size_t n, const char *sub) {
    const char *e = getenv("PULSE_CACHE");
    snprintf(buf, n, "%s/%s", e && *e ? e : PULSE_SOURCE_DIR "/.cache", sub);
    return buf;
}

#endif
