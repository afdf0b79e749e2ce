/* tests/test_sasrec_cli.c — the `pulse sasrec` interface on a synthetic dataset written as S3-Rec files:
 * train prints a last JSON line with the test metrics, eval's "metrics" has exactly the eight keys and equals
 * the library's evaluation of the same model file (sampled, valid split), similar
 * writes one JSONL line per user with k neighbours, --resume of a finished run re-reports the same metrics,
 * and bad input (missing model, foreign file, wrong dataset) fails with a message and a non-zero exit. */
#include <cjson/cJSON.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"
#include "pulse/kernels.h"
#include "pulse/sasrec.h"
#include "test.h"

static char out_buf[1 << 16];

static cJSON *last_json(void) {
    return cJSON_Parse(test_last_line(out_buf));
}

static const char *keys[] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};

static void check_metrics(cJSON *j) {
    cJSON *m = cJSON_GetObjectItem(j, "metrics");
    CHECK(cJSON_IsObject(m));
    CHECK(cJSON_GetArraySize(m) == 8);
    for (int i = 0; i < 8; i++) {
        cJSON *v = cJSON_GetObjectItem(m, keys[i]);
        CHECK_MSG(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1, "%s", keys[i]);
    }
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "sasrec") == 0);
}

/* The CLI's metrics (6 decimals) == the library's evaluation of the same model file on the same files */
static void check_against_library(cJSON *j, const char *data, const char *model,
                                  const pulse_eval_params *ep) {
    pulse_dataset *ds = NULL;
    pulse_sasrec *m = NULL;
    pulse_metrics mt;
    CHECK_OK(pulse_dataset_load(data, NULL, &ds));
    CHECK_OK(pulse_sasrec_load(model, NULL, &m));
    if (ds && m) {
        CHECK_OK(pulse_sasrec_evaluate(m, ds, ep, &mt));
        const double want[8] = {mt.hr1, mt.hr5, mt.hr10, mt.hr20, mt.ndcg5, mt.ndcg10, mt.ndcg20, mt.mrr};
        cJSON *jm = cJSON_GetObjectItem(j, "metrics");
        for (int i = 0; i < 8; i++) {
            cJSON *v = cJSON_GetObjectItem(jm, keys[i]);
            CHECK_MSG(cJSON_IsNumber(v) && fabs(v->valuedouble - want[i]) <= 1e-6,
                      "%s: CLI %.6f, library %.6f", keys[i], cJSON_IsNumber(v) ? v->valuedouble : -1.0,
                      want[i]);
        }
    }
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_blas_select(NULL, NULL); /* the BLAS kernels the CLI runs, for the in-process comparison */
    char dir[] = "/tmp/pulse_sasrec_cliXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    pulse_synth_params sp = pulse_synth_default_params();
    sp.n_users = 200;
    sp.n_items = 120;
    pulse_dataset *ds = NULL;
    char data[512], other[512], cmd[2048];
    snprintf(data, sizeof data, "%s/synth", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    CHECK_OK(pulse_dataset_write_s3rec(ds, data));
    pulse_dataset_free(ds);
    sp.n_items = 90;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    CHECK_OK(pulse_dataset_write_s3rec(ds, other));
    pulse_dataset_free(ds);

    const char *env = "PULSE_QUIET=1 OMP_NUM_THREADS=1";
    snprintf(
        cmd, sizeof cmd,
        "%s %s sasrec train --data %s --out %s/m.bin --epochs 3 --dim 16 --maxlen 10 --seed 3 2>/dev/null",
        env, PULSE_CLI, data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
    cJSON *j = last_json();
    CHECK(j != NULL);
    double ndcg = -1;
    if (j) {
        check_metrics(j);
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "protocol")), "full") == 0);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "train_seconds")));
        CHECK(cJSON_GetObjectItem(j, "epochs")->valueint == 3);
        ndcg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), "NDCG@10")->valuedouble;
        cJSON_Delete(j);
    }
    /* resuming a finished run trains nothing more and reports the same model */
    snprintf(cmd, sizeof cmd,
             "%s %s sasrec train --data %s --out %s/m.bin --epochs 3 --dim 16 --maxlen 10 --seed 3 --resume "
             "2>/dev/null",
             env, PULSE_CLI, data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
    j = last_json();
    if (j) {
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), "NDCG@10")->valuedouble == ndcg);
        cJSON_Delete(j);
    }
    /* eval: full and sampled, valid and test */
    snprintf(cmd, sizeof cmd, "%s %s sasrec eval --data %s --model %s/m.bin 2>/dev/null", env, PULSE_CLI,
             data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
    j = last_json();
    CHECK(j != NULL);
    if (j) {
        check_metrics(j);
        CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), "NDCG@10")->valuedouble, ndcg,
                   1e-12);
        cJSON_Delete(j);
    }
    snprintf(cmd, sizeof cmd,
             "%s %s sasrec eval --data %s --model %s/m.bin --protocol sampled --candidates 5 --split valid "
             "2>/dev/null",
             env, PULSE_CLI, data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
    j = last_json();
    CHECK(j != NULL);
    if (j) {
        check_metrics(j);
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "protocol")), "sampled") == 0);
        /* the same numbers as the library's sampled evaluation (5 candidates, valid split) of m.bin */
        pulse_eval_params ep = pulse_eval_default_params();
        ep.protocol = PULSE_PROTOCOL_SAMPLED;
        ep.n_candidates = 5;
        ep.split = PULSE_SPLIT_VALID;
        char model[600];
        snprintf(model, sizeof model, "%s/m.bin", dir);
        check_against_library(j, data, model, &ep);
        cJSON_Delete(j);
    }
    /* similar users: JSONL file, one line per user, k neighbours each */
    snprintf(cmd, sizeof cmd,
             "%s %s sasrec similar --data %s --model %s/m.bin --k 4 --out %s/sim.jsonl 2>/dev/null", env,
             PULSE_CLI, data, dir, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/sim.jsonl", dir);
    char *text;
    size_t len;
    CHECK_OK(pulse_read_file(path, &text, &len));
    int lines = 0, good = 0;
    for (char *s = text, *e; s && *s; s = e ? e + 1 : NULL) {
        e = strchr(s, '\n');
        if (e) *e = 0;
        cJSON *o = cJSON_Parse(s);
        lines++;
        if (o) {
            cJSON *sim = cJSON_GetObjectItem(o, "similar");
            int u = cJSON_GetObjectItem(o, "user")->valueint;
            good += cJSON_GetArraySize(sim) == 4 && cJSON_IsString(cJSON_GetObjectItem(o, "user_key")) &&
                    cJSON_GetObjectItem(cJSON_GetArrayItem(sim, 0), "user")->valueint != u;
            cJSON_Delete(o);
        }
    }
    CHECK(lines == 200);
    CHECK(good == 200);
    free(text);
    /* errors */
    snprintf(cmd, sizeof cmd, "%s %s sasrec eval --data %s --model %s/missing.bin 2>&1", env, PULSE_CLI, data,
             dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 1);
    CHECK(strstr(out_buf, "missing.bin") != NULL);
    snprintf(cmd, sizeof cmd, "%s %s sasrec eval --data %s --model %s/synth/sequences.txt 2>&1", env,
             PULSE_CLI, data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 1);
    CHECK(strstr(out_buf, "not a pulse SASRec model") != NULL);
    snprintf(cmd, sizeof cmd, "%s %s sasrec eval --data %s --model %s/m.bin 2>&1", env, PULSE_CLI, other,
             dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 1);
    CHECK(strstr(out_buf, "items") != NULL);
    snprintf(cmd, sizeof cmd, "%s %s sasrec train --data %s --out %s/x.bin --loss mse 2>&1", env, PULSE_CLI,
             data, dir);
    CHECK(test_run(cmd, out_buf, sizeof out_buf) == 2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
