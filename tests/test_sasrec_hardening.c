/* tests/test_sasrec_hardening.c — regression tests for SASRec defects found in issue 9: pulse_sasrec_create
 * with dropout 1 (a use after free in its error path), and a 60-byte model file whose header claims huge
 * sizes (terabytes allocated before the size was checked against the file). Both must fail with a message,
 * allocate nothing large and leave *out NULL. */
#include <stdint.h>
#include <unistd.h>

#include "pulse/sasrec.h"
#include "test.h"

static void write_header(const char *path, uint32_t items, uint32_t dim, uint32_t blocks, uint32_t heads,
                         uint32_t maxlen, uint64_t n_params, size_t total) {
    unsigned char buf[256];
    memset(buf, 0, sizeof buf);
    memcpy(buf, "PLSSASR", 8);
    uint32_t u[8] = {1, items, dim, blocks, heads, maxlen, 0, 0}; /* version .. loss, dropout 0.0f */
    memcpy(buf + 8, u, sizeof u);
    memcpy(buf + 40, &n_params, 8);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(buf, 1, total, f) == total);
    fclose(f);
}

int main(void) {
    /* dropout 1 (and other values outside [0, 1)): a range error before anything is allocated */
    float bad[3] = {1.0f, 1.5f, NAN};
    for (int i = 0; i < 3; i++) {
        pulse_sasrec_params p = pulse_sasrec_default_params();
        p.dropout = bad[i];
        pulse_sasrec *m = (pulse_sasrec *)&p; /* must be reset to NULL */
        CHECK(pulse_sasrec_create(10, &p, &m) == PULSE_ERR_RANGE && m == NULL);
        CHECK_MSG(strstr(pulse_last_error(), "dropout") != NULL, "%s", pulse_last_error());
    }
    {
        pulse_sasrec_params p = pulse_sasrec_default_params();
        p.loss = (pulse_sasrec_loss)7;
        pulse_sasrec *m = NULL;
        CHECK(pulse_sasrec_create(10, &p, &m) == PULSE_ERR_RANGE && m == NULL);
        CHECK_MSG(strstr(pulse_last_error(), "loss") != NULL, "%s", pulse_last_error());
    }
    /* NULL params = the defaults */
    {
        pulse_sasrec *m = NULL;
        CHECK_OK(pulse_sasrec_create(10, NULL, &m));
        CHECK(m && pulse_sasrec_dim(m) == 64 && pulse_sasrec_maxlen(m) == 50);
        pulse_sasrec_free(m);
    }

    char dir[] = "/tmp/pulse_sasrec_hardXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/huge.bin", dir);
    /* 60 bytes claiming 1e8 items x 4096 dims (1.6 TB of parameters): refused from the file size alone */
    write_header(path, 100000000u, 4096u, 64u, 1u, 4096u, (uint64_t)1 << 40, 60);
    pulse_sasrec *m = (pulse_sasrec *)path;
    pulse_status st = pulse_sasrec_load(path, NULL, &m);
    CHECK_MSG(st == PULSE_ERR_FORMAT && m == NULL, "-> %d (%s)", (int)st, pulse_last_error());
    CHECK_MSG(strstr(pulse_last_error(), "found 60") != NULL, "%s", pulse_last_error());
    /* a plausible header, with n_params matching it, but the body missing */
    write_header(path, 10u, 8u, 1u, 1u, 5u, 0, 60);
    st = pulse_sasrec_load(path, NULL, &m);
    CHECK_MSG(st == PULSE_ERR_FORMAT && m == NULL, "-> %d (%s)", (int)st, pulse_last_error());
    /* heads that do not divide dim */
    write_header(path, 10u, 8u, 1u, 3u, 5u, 0, 60);
    st = pulse_sasrec_load(path, NULL, &m);
    CHECK_MSG(st != PULSE_OK && m == NULL, "-> %d", (int)st);
    /* a saved model still loads */
    pulse_sasrec_params p = pulse_sasrec_default_params();
    p.dim = 8;
    p.maxlen = 5;
    p.blocks = 1;
    pulse_sasrec *a = NULL;
    CHECK_OK(pulse_sasrec_create(10, &p, &a));
    snprintf(path, sizeof path, "%s/ok.bin", dir);
    CHECK_OK(pulse_sasrec_save(a, path));
    CHECK_OK(pulse_sasrec_load(path, NULL, &m));
    CHECK(m && pulse_sasrec_n_params(m) == pulse_sasrec_n_params(a) &&
          memcmp(pulse_sasrec_params_ptr(m), pulse_sasrec_params_ptr(a),
                 sizeof(float) * pulse_sasrec_n_params(a)) == 0);
    pulse_sasrec_free(a);
    pulse_sasrec_free(m);
    remove(path);
    snprintf(path, sizeof path, "%s/huge.bin", dir);
    remove(path);
    rmdir(dir);
    return test_summary();
}
