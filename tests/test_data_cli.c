/* tests/test_data_cli.c — the CLI contract of `pulse data synth|stats|convert` and `pulse eval --model pop`:
 * exit codes, the JSON last line with the exact keys and the library's numbers (pop, full and sampled), and a
 * clear error for a malformed file. */
#include "test.h"

#include <cjson/cJSON.h>

#include "pulse/data.h"
#include "pulse/eval.h"
#include <sys/wait.h>
#include <unistd.h>

static int num(cJSON *o, const char *k, double *v) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(e)) return 0;
    *v = e->valuedouble;
    return 1;
}

/* The CLI's metrics (6 decimals) == the library's pulse_evaluate of pop on the same files with the same
 * protocol, and ordered as metrics must be (HR@k and NDCG@k grow with k, NDCG@k <= HR@k, HR@1 <= MRR). */
static void check_against_library(cJSON *mt, const char *data_dir, const pulse_eval_params *ep) {
    pulse_dataset *ds = NULL;
    pulse_pop *pop = NULL;
    pulse_metrics m;
    CHECK_OK(pulse_dataset_load(data_dir, NULL, &ds));
    if (ds) CHECK_OK(pulse_pop_fit(ds, &pop));
    if (!pop) {
        pulse_dataset_free(ds);
        return;
    }
    CHECK_OK(pulse_evaluate(ds, ep, pulse_pop_score, pop, &m));
    const double want[8] = {m.hr1, m.hr5, m.hr10, m.hr20, m.ndcg5, m.ndcg10, m.ndcg20, m.mrr};
    const char *keys[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
    double got[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    for (int i = 0; i < 8; i++) {
        CHECK(num(mt, keys[i], &got[i]));
        CHECK_MSG(fabs(got[i] - want[i]) <= 1e-6, "%s: CLI %.6f, library %.6f", keys[i], got[i], want[i]);
    }
    CHECK(got[0] <= got[1] && got[1] <= got[2] && got[2] <= got[3]);
    CHECK(got[4] <= got[5] && got[5] <= got[6]);
    CHECK(got[4] <= got[1] + 1e-6 && got[5] <= got[2] + 1e-6 && got[6] <= got[3] + 1e-6);
    CHECK(got[0] <= got[7] + 1e-6);
    CHECK(m.n_users > 0);
    pulse_pop_free(pop);
    pulse_dataset_free(ds);
}

int main(void) {
    pulse_progress_set_quiet(1);
    char dir[] = "/tmp/pulse_cli_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return test_summary();
    }
    char cmd[2048], last[8192];
    double v;

    /* synth -> stats */
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' data synth --out '%s/syn' --users 60 --items 50 --seed 3",
             PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' data stats --data '%s/syn'", PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    cJSON *o = cJSON_Parse(last);
    CHECK(o != NULL);
    if (o) {
        CHECK(num(o, "users", &v) && v == 60);
        CHECK(num(o, "items", &v) && v >= 40 && v <= 50 && v == (int)v);
        CHECK(num(o, "interactions", &v) && v >= 60 * 5);
        CHECK(num(o, "avg_len", &v) && v >= 5);
        cJSON_Delete(o);
    }
    /* the same seed writes the same files */
    char a[8192];
    snprintf(a, sizeof a, "%s", last);
    snprintf(cmd, sizeof cmd,
             "PULSE_QUIET=1 '%s' data synth --out '%s/syn2' --users 60 --items 50 --seed 3 >/dev/null && "
             "cmp -s '%s/syn/sequences.txt' '%s/syn2/sequences.txt' && cmp -s '%s/syn/items.tsv' "
             "'%s/syn2/items.tsv'",
             PULSE_CLI, dir, dir, dir, dir, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);

    /* eval --model pop: the JSON line with exactly the eight metric keys */
    const char *protos[2] = {"--protocol full", "--protocol sampled --candidates 10 --split valid"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 '%s' eval --data '%s/syn' --model pop %s", PULSE_CLI, dir,
                 protos[k]);
        CHECK(test_run_last(cmd, last, sizeof last) == 0);
        o = cJSON_Parse(last);
        CHECK(o != NULL);
        if (!o) continue;
        cJSON *ds = cJSON_GetObjectItem(o, "dataset"), *m = cJSON_GetObjectItem(o, "model"),
              *pr = cJSON_GetObjectItem(o, "protocol"), *mt = cJSON_GetObjectItem(o, "metrics");
        CHECK(cJSON_IsString(ds) && strcmp(ds->valuestring, "syn") == 0);
        CHECK(cJSON_IsString(m) && strcmp(m->valuestring, "pop") == 0);
        CHECK(cJSON_IsString(pr) && strcmp(pr->valuestring, k ? "sampled" : "full") == 0);
        const char *keys[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
        int n = 0, good = 1;
        for (cJSON *e = mt ? mt->child : NULL; e; e = e->next, n++)
            good &= n < 8 && strcmp(e->string, keys[n]) == 0 && cJSON_IsNumber(e) && e->valuedouble >= 0 &&
                    e->valuedouble <= 1;
        CHECK(good && n == 8);
        pulse_eval_params ep = pulse_eval_default_params();
        if (k == 1) {
            ep.protocol = PULSE_PROTOCOL_SAMPLED;
            ep.n_candidates = 10;
            ep.split = PULSE_SPLIT_VALID;
        }
        char syn[600];
        snprintf(syn, sizeof syn, "%s/syn", dir);
        check_against_library(mt, syn, &ep);
        cJSON_Delete(o);
    }

    /* convert -> recbole files that load back with the same stats */
    snprintf(cmd, sizeof cmd,
             "PULSE_QUIET=1 '%s' data convert --data '%s/syn' --to recbole --out '%s/rb/syn' >/dev/null && "
             "head -1 '%s/rb/syn/syn.inter' && PULSE_QUIET=1 '%s' data stats --data '%s/rb/syn'",
             PULSE_CLI, dir, dir, dir, PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    o = cJSON_Parse(last);
    cJSON *o2 = cJSON_Parse(a);
    double v2;
    CHECK(o && o2 && num(o, "interactions", &v) && num(o2, "interactions", &v2) && v == v2);
    CHECK(o && cJSON_IsString(cJSON_GetObjectItem(o, "format")) &&
          strcmp(cJSON_GetObjectItem(o, "format")->valuestring, "recbole") == 0);
    cJSON_Delete(o);
    cJSON_Delete(o2);
    snprintf(cmd, sizeof cmd, "head -1 '%s/rb/syn/syn.inter'", dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    CHECK(strcmp(last, "user_id:token\titem_id:token\ttimestamp:float") == 0);

    /* a malformed file: exit 1 and the file:line message on stderr */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/bad' && printf '1 2 3\\n2 4 x\\n' > '%s/bad/sequences.txt' && "
             "'%s' data stats --data '%s/bad' 2>&1 >/dev/null",
             dir, dir, PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 1);
    CHECK_MSG(strstr(last, "sequences.txt:2: expected an item id") != NULL, "%s", last);
    /* usage errors exit 2 */
    snprintf(cmd, sizeof cmd, "'%s' data stats 2>/dev/null", PULSE_CLI);
    CHECK(test_run_last(cmd, last, sizeof last) == 2);
    snprintf(cmd, sizeof cmd, "'%s' eval --data '%s/syn' --model nope 2>/dev/null", PULSE_CLI, dir);
    CHECK(test_run_last(cmd, last, sizeof last) == 2);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
