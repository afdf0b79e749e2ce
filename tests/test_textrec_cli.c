/* tests/test_textrec_cli.c — `pulse textrec train|eval` as documented, on small real subsets (the first 120
 * Beauty users and the first 80 Toys users, items renumbered 1..k, written as S3-Rec files) with the MiniLM
 * encoder: train prints a last JSON line whose "metrics" has the eight keys of `pulse sasrec eval`; eval of
 * the written model reproduces them; --cold --baseline pop, the thought arch with stand-in pairs from
 * `pulse thought pairs`, a SASRec model under --cold, zero-shot Beauty -> Toys; bad input fails with a
 * message. Skips (77) when the encoder or the shared data is absent. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "pulse/data.h"
#include "test.h"

static char out_buf[1 << 16];
static const char *keys[] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return test_run(cmd, out_buf, sizeof out_buf);
}

static cJSON *last_json(void) {
    return cJSON_Parse(test_last_line(out_buf));
}

static cJSON *check_metrics(cJSON *j, const char *field) {
    cJSON *m = cJSON_GetObjectItem(j, field);
    CHECK_MSG(cJSON_IsObject(m) && cJSON_GetArraySize(m) == 8, "%s", field);
    for (int i = 0; i < 8; i++) {
        cJSON *v = cJSON_GetObjectItem(m, keys[i]);
        CHECK_MSG(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1, "%s %s", field, keys[i]);
    }
    return m;
}

/* the first n users of a shared dataset, items renumbered by first appearance, as S3-Rec files in dir */
static int write_subset(const char *src, int n, const char *dir) {
    pulse_data_params dp = pulse_data_default_params();
    dp.max_users = n;
    pulse_dataset *ds = NULL;
    if (pulse_dataset_load(src, &dp, &ds)) return -1;
    int NI = pulse_dataset_n_items(ds), k = 0;
    int *map = calloc((size_t)NI + 1, sizeof(int)), *inv = calloc((size_t)NI + 1, sizeof(int));
    char path[512];
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    int rc = system(path);
    snprintf(path, sizeof path, "%s/sequences.txt", dir);
    FILE *f = fopen(path, "w");
    for (int u = 0; f && u < pulse_dataset_n_users(ds); u++) {
        int len;
        const int *s = pulse_dataset_user_seq(ds, u, &len);
        fprintf(f, "%d", u + 1);
        for (int t = 0; t < len; t++) {
            if (!map[s[t]]) map[s[t]] = ++k, inv[k] = s[t];
            fprintf(f, " %d", map[s[t]]);
        }
        fprintf(f, "\n");
    }
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/items.tsv", dir);
    FILE *g = fopen(path, "w");
    if (g) {
        fprintf(g, "item_id\ttitle\tbrand\tcategories\n");
        for (int i = 1; i <= k; i++) {
            const char *t = pulse_dataset_item_title(ds, inv[i]),
                       *b = pulse_dataset_item_field(ds, inv[i], "brand"),
                       *c = pulse_dataset_item_field(ds, inv[i], "categories");
            fprintf(g, "%d\t%s\t%s\t%s\n", i, t ? t : "", b ? b : "", c ? c : "");
        }
        fclose(g);
    }
    free(map);
    free(inv);
    pulse_dataset_free(ds);
    return (f && g && rc == 0) ? k : -1;
}

int main(void) {
    char enc[1024], beauty[1024], toys[1024];
    test_cache_path(enc, sizeof enc, "encoders/minilm-l6");
    snprintf(beauty, sizeof beauty, "%s/data/amazon-beauty", test_shared_dir());
    snprintf(toys, sizeof toys, "%s/data/amazon-toys", test_shared_dir());
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/config.json", enc);
    if (access(probe, R_OK) != 0) test_skip("encoder %s not fetched", enc);
    snprintf(probe, sizeof probe, "%s/sequences.txt", beauty);
    if (access(probe, R_OK) != 0) test_skip("no shared data at %s", beauty);
    char tmp[256], db[300], dt[300], cache[300], mb[300], mt[300], ms[300], pairs[300];
    snprintf(tmp, sizeof tmp, "/tmp/test_textrec_cli_%d", (int)getpid());
    snprintf(db, sizeof db, "%s/beauty", tmp);
    snprintf(dt, sizeof dt, "%s/toys", tmp);
    snprintf(cache, sizeof cache, "%s/cache/vectors", tmp); /* made by textrec train itself */
    snprintf(mb, sizeof mb, "%s/morec.bin", tmp);
    snprintf(mt, sizeof mt, "%s/thought.bin", tmp);
    snprintf(ms, sizeof ms, "%s/sasrec.bin", tmp);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", tmp);
    int kb = write_subset(beauty, 120, db), kt = write_subset(toys, 80, dt);
    CHECK(kb > 100 && kt > 50);
    const char *env = "OMP_WAIT_POLICY=PASSIVE";

    /* train, as documented */
    int rc = run(
        "%s %s textrec train --data %s --encoder %s --out %s --arch morec --epochs 3 --seed 3 --text-len 32 "
        "--cache %s 2>/dev/null",
        env, PULSE_CLI, db, enc, mb, cache);
    CHECK_MSG(rc == 0, "train rc %d", rc);
    cJSON *j = last_json();
    CHECK(cJSON_IsObject(j));
    double train_ndcg = -1;
    if (j) {
        cJSON *m = check_metrics(j, "metrics");
        check_metrics(j, "valid_metrics");
        train_ndcg = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "NDCG@10"));
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "arch")), "morec") == 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "epochs")) == 3);
    }
    cJSON_Delete(j);
    /* the text vectors were cached: one file in the cache folder */
    CHECK(run("ls %s | grep -c textvec-", cache) == 0 && atoi(out_buf) == 1);

    /* eval reproduces the test metrics */
    rc = run("%s %s textrec eval --data %s --model %s --split test 2>/dev/null", env, PULSE_CLI, db, mb);
    CHECK_MSG(rc == 0, "eval rc %d", rc);
    j = last_json();
    if (j) {
        cJSON *m = check_metrics(j, "metrics");
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(m, "NDCG@10")), train_ndcg, 1e-6);
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "split")), "test") == 0);
    }
    cJSON_Delete(j);
    rc = run("%s %s textrec eval --data %s --model %s --split valid --cold --baseline pop 2>/dev/null", env,
             PULSE_CLI, db, mb);
    CHECK_MSG(rc == 0, "eval --cold rc %d", rc);
    j = last_json();
    if (j) {
        check_metrics(j, "metrics");
        check_metrics(j, "pop_metrics");
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "users_set")), "cold") == 0);
        /* in a 120-user subset many held-out items occur in no other training prefix */
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "users")) > 0);
    }
    cJSON_Delete(j);

    /* thought arch with stand-in pairs */
    CHECK(run("%s thought pairs --data %s --out %s --train-users 100 --heldout-users 10 >/dev/null 2>&1",
              PULSE_CLI, db, pairs) == 0);
    rc = run(
        "%s %s textrec train --data %s --encoder %s --out %s --arch thought --space %s --pairs %s --epochs 1 "
        "--text-len 32 --cache %s 2>/dev/null",
        env, PULSE_CLI, db, enc, mt, enc, pairs, cache);
    CHECK_MSG(rc == 0, "train thought rc %d", rc);
    j = last_json();
    if (j) {
        check_metrics(j, "metrics");
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "arch")), "thought") == 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "pair_users")) > 50);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "align_loss")) > 0);
    }
    cJSON_Delete(j);

    /* SASRec under the same cold-start split */
    CHECK(run("%s %s sasrec train --data %s --out %s --epochs 1 >/dev/null 2>&1", env, PULSE_CLI, db, ms) ==
          0);
    rc = run("%s %s textrec eval --data %s --model %s --cold 2>/dev/null", env, PULSE_CLI, db, ms);
    CHECK_MSG(rc == 0, "eval sasrec --cold rc %d", rc);
    j = last_json();
    if (j) {
        check_metrics(j, "metrics");
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "sasrec") == 0);
    }
    cJSON_Delete(j);

    /* zero-shot: the Beauty model ranks the Toys catalogue from text */
    rc = run("%s %s textrec eval --data %s --model %s --zero-shot --cache %s --baseline pop 2>/dev/null", env,
             PULSE_CLI, dt, mb, cache);
    CHECK_MSG(rc == 0, "eval --zero-shot rc %d", rc);
    j = last_json();
    if (j) {
        check_metrics(j, "metrics");
        check_metrics(j, "pop_metrics");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "zero_shot")));
    }
    cJSON_Delete(j);

    /* bad input */
    rc = run("%s textrec eval --data %s --model %s 2>&1", PULSE_CLI, dt, mb);
    CHECK(rc == 1 && strstr(out_buf, "--zero-shot"));
    rc = run("%s textrec eval --data %s --model %s/sequences.txt 2>&1", PULSE_CLI, db, db);
    CHECK(rc == 1 && strstr(out_buf, "not a pulse textrec model"));
    rc = run("%s textrec train --data %s --out %s/x.bin 2>&1", PULSE_CLI, db, tmp);
    CHECK(rc == 2 && strstr(out_buf, "--encoder"));
    rc = run("%s textrec train --data %s --encoder %s --out %s/x.bin --arch thought 2>&1", PULSE_CLI, db, enc,
             tmp);
    CHECK(rc == 1 && strstr(out_buf, "--pairs"));
    rc = run("%s textrec train --data %s --encoder %s --out %s/x.bin --arch nope 2>&1", PULSE_CLI, db, enc,
             tmp);
    CHECK(rc == 2);

    CHECK(run("rm -rf '%s'", tmp) == 0);
    return test_summary();
}
