/* tests/test_dist_eval.c — `pulse eval` (pop: full ranking, sampled candidates, stored candidate lists) and
 * `pulse sasrec eval` (full, sampled) on two MPI ranks (mpirun -np 2, launched by this test; exits 77 =
 * Skipped when the build has no MPI) print exactly the metrics of one process (the JSON "metrics" objects
 * compared as text, so to the last printed digit) on a synthetic dataset of 600 users (3 batches of 256,
 * so both ranks score users); the 2-rank line carries "ranks": 2; a language-model eval refuses two ranks. */
#include <cjson/cJSON.h>

#include "dist_test.h"
#include "test.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];

/* the "metrics" and "users" of the last stdout line, as text; ranks_out = its "ranks" (0 when none) */
static char *metrics_of(const char *cmd, int *rc, int *ranks_out) {
    *rc = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *j = cJSON_Parse(test_last_line(out_buf));
    char *m = NULL;
    *ranks_out = 0;
    if (j) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "metrics", cJSON_Duplicate(cJSON_GetObjectItem(j, "metrics"), 1));
        cJSON_AddItemToObject(o, "users", cJSON_Duplicate(cJSON_GetObjectItem(j, "users"), 1));
        m = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        const cJSON *r = cJSON_GetObjectItem(j, "ranks");
        if (cJSON_IsNumber(r)) *ranks_out = r->valueint;
        cJSON_Delete(j);
    }
    return m;
}

/* runs args on one process and on two ranks: the same metrics */
static void same_metrics(const char *args) {
    char cmd[4096];
    int rc1, rc2, r1, r2;
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s", PULSE_CLI, args);
    char *a = metrics_of(cmd, &rc1, &r1);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s", MPIRUN, PULSE_CLI, args);
    char *b = metrics_of(cmd, &rc2, &r2);
    printf("%.120s: 1 process -> %d, 2 ranks -> %d\n  %s\n  %s\n", args, rc1, rc2, a ? a : "(none)",
           b ? b : "(none)");
    CHECK(rc1 == 0 && rc2 == 0);
    CHECK(r1 == 0 && r2 == 2);
    CHECK(a && b && strstr(a, "NDCG@10") && strcmp(a, b) == 0);
    cJSON_free(a);
    cJSON_free(b);
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_evXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], cmd[4096], args[2048];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cmd, sizeof cmd, "%s data synth --out %s --users 600 --items 150 --seed 7 >/dev/null", PULSE_CLI,
             data);
    CHECK(system(cmd) == 0);

    snprintf(args, sizeof args, "eval --data %s --model pop", data);
    same_metrics(args);
    snprintf(args, sizeof args, "eval --data %s --model pop --protocol sampled --candidates 20 --seed 5",
             data);
    same_metrics(args);
    snprintf(args, sizeof args, "eval --data %s --model pop --users 0 --candidates 10 --seed 5", data);
    same_metrics(args);

    /* a small SASRec (one process), then its evaluation */
    snprintf(cmd, sizeof cmd,
             "PULSE_QUIET=1 OMP_NUM_THREADS=1 %s sasrec train --data %s --out %s/m.bin --epochs 1 --dim 16 "
             "--maxlen 10 --seed 3 >/dev/null 2>&1",
             PULSE_CLI, data, dir);
    CHECK(system(cmd) == 0);
    snprintf(args, sizeof args, "sasrec eval --data %s --model %s/m.bin", data, dir);
    same_metrics(args);
    snprintf(args, sizeof args, "sasrec eval --data %s --model %s/m.bin --protocol sampled --candidates 20",
             data, dir);
    same_metrics(args);

    /* the language-model evaluation stays on one rank */
    snprintf(cmd, sizeof cmd, "%s %s eval --data %s --model %s/none.gguf --users 4 2>&1", MPIRUN, PULSE_CLI,
             data, dir);
    int rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc != 0 && strstr(out_buf, "runs on one rank"));

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
