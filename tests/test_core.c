/* tests/test_core.c — core: errors, RNG determinism and uniformity, atomic writes, mmap, CLI option parsing,
 * the progress line of a resumed job.
 */
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pulse/core.h"
#include "pulse/strbuf.h"
#include "pulse/strmap.h"

/* pulse_strmap: ids in order of addition, first or last duplicate wins as asked, growth past the initial
 * table, intern, the empty string, and the strings kept byte for byte */
static void test_strmap(void) {
    pulse_strmap m = {0};
    CHECK(pulse_strmap_get(&m, "a", 1) == -1);
    char buf[32];
    int ok = 1;
    for (int i = 0; i < 5000; i++) {
        int l = snprintf(buf, sizeof buf, "key%d", i);
        ok &= pulse_strmap_add(&m, buf, (size_t)l) == i && pulse_strmap_map(&m, i, 0) == -1;
    }
    CHECK(ok && m.count == 5000);
    for (int i = 0; i < 5000; i += 7) {
        int l = snprintf(buf, sizeof buf, "key%d", i);
        ok &= pulse_strmap_get(&m, buf, (size_t)l) == i && pulse_strmap_len(&m, i) == (size_t)l &&
              !memcmp(pulse_strmap_str(&m, i), buf, (size_t)l + 1);
    }
    CHECK(ok);
    CHECK(pulse_strmap_get(&m, "key5000", 7) == -1 && pulse_strmap_get(&m, "key1", 3) == -1);
    int d = pulse_strmap_add(&m, "key3", 4); /* a repeat: kept as its own id, the first stays mapped */
    CHECK(d == 5000 && pulse_strmap_map(&m, d, 0) == 3 && pulse_strmap_get(&m, "key3", 4) == 3);
    CHECK(pulse_strmap_map(&m, d, 1) == 3 && pulse_strmap_get(&m, "key3", 4) == d); /* replace: last wins */
    int e = pulse_strmap_intern(&m, "", 0), e2 = pulse_strmap_intern(&m, "", 0);
    CHECK(e == 5001 && e2 == e && pulse_strmap_len(&m, e) == 0);
    CHECK(pulse_strmap_add(&m, "a\0b", 3) == 5002 && pulse_strmap_map(&m, 5002, 0) == -1 &&
          pulse_strmap_get(&m, "a\0b", 3) == 5002 && pulse_strmap_get(&m, "a", 1) == -1);
    pulse_strmap_free(&m);
    CHECK(m.n == 0 && m.slot == NULL);
}

/* pulse_strbuf: appends, growth past the first capacity, long printf (past its 256-byte stack buffer) */
static void test_strbuf(void) {
    pulse_strbuf b = {0};
    CHECK(strcmp(pulse_strbuf_str(&b), "") == 0);
    pulse_strbuf_cat(&b, "");
    CHECK(b.s && b.n == 0 && b.s[0] == 0);
    pulse_strbuf_cat(&b, NULL);
    pulse_strbuf_put(&b, "abcdef", 3);
    pulse_strbuf_printf(&b, "-%d-%s", 42, "x");
    CHECK(strcmp(b.s, "abc-42-x") == 0 && b.n == 8);
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pulse_strbuf_printf(&b, "[%s]", big);
    CHECK(b.n == 8 + 1001 && b.s[8] == '[' && b.s[9 + 998] == 'y' && b.s[b.n - 1] == ']' && b.s[b.n] == 0);
    CHECK(!b.oom && b.cap >= b.n + 1);
    pulse_strbuf_free(&b);
    CHECK(b.s == NULL && b.n == 0);
}

/* The progress line's last print (stderr sent to a file): label, done/total, rate, ETA; "buf" gets it */
static void progress_line(size_t start, size_t done, char *buf, size_t n) {
    char path[] = "/tmp/pulse_progXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    pulse_progress_set_quiet(0);
    pulse_progress pr;
    pulse_progress_begin_at(&pr, "job", "steps", 100, start);
    usleep(1200 * 1000); /* 1.2 s: one step of this run is < 1 step/s */
    pulse_progress_end(&pr, done, NULL);
    pulse_progress_set_quiet(1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    buf[0] = 0;
    if (f) {
        if (!fgets(buf, (int)n, f)) buf[0] = 0;
        fclose(f);
    }
    close(fd);
    unlink(path);
}

/* A job resumed at step 40 that has done one step in this run: its rate is one step per ~1.2 s and its ETA
 * the 59 steps left at that rate (~71 s), not 41 steps' worth of rate; from 0 the same line counts all 41. */
static void test_progress_resume(void) {
    char line[256];
    progress_line(40, 41, line, sizeof line);
    const char *eta = strstr(line, "ETA ");
    CHECK_MSG(strstr(line, "job 41/100 steps") && strstr(line, " s/steps") && eta && strchr(eta, 'm'), "%s",
              line);
    progress_line(0, 41, line, sizeof line);
    eta = strstr(line, "ETA ");
    CHECK_MSG(strstr(line, "job 41/100 steps") && strstr(line, " steps/s") && eta && !strchr(eta, 'm'), "%s",
              line);
}

int main(void) {
    test_strmap();
    test_progress_resume();
    pulse_progress_set_quiet(1);
    /* errors */
    pulse_status st = pulse_set_error(PULSE_ERR_PARSE, "%s:%d: expected %s", "f.txt", 3, "an id");
    CHECK(st == PULSE_ERR_PARSE);
    CHECK(strcmp(pulse_last_error(), "f.txt:3: expected an id") == 0);
    pulse_wrap_error(st, "loading");
    CHECK(strcmp(pulse_last_error(), "loading: f.txt:3: expected an id") == 0);
    CHECK(strcmp(pulse_status_str(PULSE_ERR_IO), "io error") == 0);

    /* rng: deterministic, bounded, roughly uniform, normal has ~unit variance */
    pulse_rng a, b;
    pulse_rng_seed(&a, 42);
    pulse_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= pulse_rng_u64(&a) == pulse_rng_u64(&b);
    CHECK(same);
    int counts[10] = {0}, inrange = 1;
    for (int i = 0; i < 100000; i++) {
        uint32_t v = pulse_rng_below(&a, 10);
        inrange &= v < 10;
        if (v < 10) counts[v]++;
    }
    CHECK(inrange);
    for (int i = 0; i < 10; i++) CHECK(counts[i] > 9500 && counts[i] < 10500);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = pulse_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    CHECK_NEAR(s / 100000, 0.0, 0.02);
    CHECK_NEAR(s2 / 100000, 1.0, 0.03);
    float f = pulse_rng_float(&a);
    CHECK(f >= 0.0f && f < 1.0f);
    int perm[50], seen[50] = {0}, okp = 1;
    for (int i = 0; i < 50; i++) perm[i] = i;
    pulse_rng_shuffle_int(&a, perm, 50);
    for (int i = 0; i < 50; i++) seen[perm[i]]++;
    for (int i = 0; i < 50; i++) okp &= seen[i] == 1;
    CHECK(okp);

    /* files */
    char path[] = "/tmp/pulse_test_core_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(pulse_write_file_atomic(path, "hello\n", 6));
    char *data = NULL;
    size_t len = 0;
    CHECK_OK(pulse_read_file(path, &data, &len));
    CHECK(len == 6 && data && strcmp(data, "hello\n") == 0);
    free(data);
    pulse_mmap m;
    CHECK_OK(pulse_mmap_open(path, &m));
    CHECK(m.size == 6 && memcmp(m.data, "hello\n", 6) == 0);
    pulse_mmap_close(&m);
    /* pulse_mkdirs: parents made, an existing folder fine, a file in the way named */
    char dir[] = "/tmp/pulse_test_core_dir_XXXXXX", nested[128], blocked[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(nested, sizeof nested, "%s/a/b/c/", dir);
    CHECK_OK(pulse_mkdirs(nested));
    CHECK_OK(pulse_mkdirs(nested));
    struct stat sb;
    CHECK(stat(nested, &sb) == 0 && S_ISDIR(sb.st_mode));
    snprintf(blocked, sizeof blocked, "%s/a/b/c/x", path);
    CHECK(pulse_mkdirs(path) == PULSE_ERR_IO && strstr(pulse_last_error(), path) &&
          strstr(pulse_last_error(), "file of that name"));
    CHECK(pulse_mkdirs(blocked) == PULSE_ERR_IO);
    CHECK(pulse_mkdirs("") == PULSE_ERR_ARG);
    char rm[160];
    snprintf(rm, sizeof rm, "rm -r '%s'", dir);
    CHECK(system(rm) == 0);
    unlink(path);
    CHECK(pulse_read_file("/nonexistent/x", &data, &len) == PULSE_ERR_IO);
    CHECK(strstr(pulse_last_error(), "/nonexistent/x") != NULL);
    size_t prod;
    CHECK(pulse_mul_overflows(SIZE_MAX / 2, 3, &prod) == 1);
    CHECK(pulse_mul_overflows(1000, 1000, &prod) == 0 && prod == 1000000);
    char jp[64];
    CHECK(strcmp(pulse_path_join(jp, sizeof jp, "a/", "b"), "a/b") == 0);
    CHECK(strcmp(pulse_path_join(jp, sizeof jp, "a", "b"), "a/b") == 0);
    CHECK(strcmp(pulse_path_base("a/b/c.gguf"), "c.gguf") == 0 &&
          strcmp(pulse_path_base("c.gguf"), "c.gguf") == 0 && strcmp(pulse_path_base("a/"), "") == 0);
    CHECK(pulse_peak_rss_bytes() > 0);
    test_strbuf();
    return test_summary();
}
