/* tests/test_dist_sasrec.c — data-parallel `pulse sasrec train` on two MPI ranks (mpirun -np 2, launched by
 * this test; exits 77 = Skipped when the build has no MPI) against one process, 3 optimiser steps (3 epochs
 * of one global batch of every user), CE and BCE (sampled negatives), dropout 0 and 0.3 (masks hashed from
 * (seed, step, global example, layer, site, position, channel), so the one-process masks): the same last loss
 * within 1e-6 relative, and parameters within 1e-4 absolute at most and 5e-6 root-mean-square. Why these
 * tolerances: the ranks sum the gradients of their halves of the batch, another float summation order than
 * one process, so each gradient element differs by a few ulp of its terms; Adam divides each element by its
 * own running RMS, so an element whose terms nearly cancel (relative error large) can move by up to lr =
 * 1e-3 per step differently: the worst element is bounded by 3 lr, most elements move alike (measured: max
 * 2.4e-5, RMS 8e-7). Rank 0 alone writes the model; the JSON line carries "ranks", the steps
 * and the all-reduce's time and bytes. */
#include <cjson/cJSON.h>
#include <math.h>

#include "pulse/sasrec.h"
#include "dist_test.h"
#include "test.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];

static void compare(const char *dir, const char *data, const char *loss, const char *dropout) {
    char cmd[4096], args[2048], m1[600], m2[600];
    snprintf(m1, sizeof m1, "%s/one_%s_%s.bin", dir, loss, dropout);
    snprintf(m2, sizeof m2, "%s/two_%s_%s.bin", dir, loss, dropout);
    snprintf(
        args, sizeof args,
        "sasrec train --data %s --epochs 3 --batch 1000 --dim 16 --maxlen 10 --seed 3 --dropout %s --loss %s "
        "--threads 1",
        data, dropout, loss);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --out %s 2>/dev/null", PULSE_CLI, args, m1);
    int rc1 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, m2);
    int rc2 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc1 == 0 && rc2 == 0 && a && b);
    double la = dist_num(a, "last_loss"), lb = dist_num(b, "last_loss");
    printf(
        "%s dropout %s: 1 process -> %d, loss %.12f; 2 ranks -> %d, loss %.12f, steps %g, all-reduce %g s, "
        "%g bytes/step\n",
        loss, dropout, rc1, la, rc2, lb, dist_num(b, "steps"), dist_num(b, "comm_seconds"),
        dist_num(b, "allreduce_bytes_per_step"));
    CHECK(dist_num(a, "steps") == 3 && dist_num(b, "steps") == 3);
    CHECK(dist_num(b, "ranks") == 2 && cJSON_GetObjectItem(a, "ranks") == NULL);
    CHECK(dist_num(b, "allreduce_bytes_per_step") > 0 && dist_num(b, "comm_seconds") >= 0);
    CHECK_MSG(fabs(la - lb) <= 1e-6 * fabs(la), "loss %.12f vs %.12f", la, lb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    pulse_sasrec *s1 = NULL, *s2 = NULL;
    CHECK_OK(pulse_sasrec_load(m1, NULL, &s1));
    CHECK_OK(pulse_sasrec_load(m2, NULL, &s2));
    if (s1 && s2) {
        size_t n = pulse_sasrec_n_params(s1);
        CHECK(n == pulse_sasrec_n_params(s2));
        const float *p1 = pulse_sasrec_params_ptr(s1), *p2 = pulse_sasrec_params_ptr(s2);
        double md = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)p1[i] - (double)p2[i]);
            if (!(d <= md)) md = d; /* NaN counts as the largest */
            ss += d * d;
        }
        double rms = sqrt(ss / (double)(n ? n : 1));
        printf("%s dropout %s: %zu parameters, max |difference| %.3g, RMS %.3g\n", loss, dropout, n, md, rms);
        CHECK(md <= 1e-4);
        CHECK(rms <= 5e-6);
    }
    pulse_sasrec_free(s1);
    pulse_sasrec_free(s2);
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_srXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], cmd[2048];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cmd, sizeof cmd, "%s data synth --out %s --users 300 --items 120 --seed 7 >/dev/null", PULSE_CLI,
             data);
    CHECK(system(cmd) == 0);
    compare(dir, data, "ce", "0");
    compare(dir, data, "bce", "0");
    compare(dir, data, "ce", "0.3"); /* dropout masks hashed per example: the one-process masks */
    compare(dir, data, "bce", "0.3");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
