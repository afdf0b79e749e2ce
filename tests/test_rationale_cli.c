/* tests/test_rationale_cli.c — `pulse rationale` on a synthetic dataset and a tiny synthetic model (with a
 * byte-level tokenizer and a chat template): phase1 killed with SIGKILL at several moments (during start-up,
 * after the first rows, mid-run) and resumed until done: after every kill the store holds no duplicate and no
 * broken row, and the finished store holds exactly the job's users, each once; a rerun stores nothing new;
 * --stop-after stops cleanly; --no-prefix-share computes more prompt tokens; stats / export / show print what
 * the store holds (export's JSONL is what `pulse thought train` reads); bad input fails with a message. The
 * real model on Amazon Beauty runs in test_readme_cli (the README's commands). */
#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/rationale.h"
#include "pulse/thought.h"
#include "test.h"

static char out_buf[1 << 16];

static cJSON *run_json(const char *cmd, int *rc) {
    *rc = test_run(cmd, out_buf, sizeof out_buf);
    return cJSON_Parse(test_last_line(out_buf));
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int64_t store_rows(const char *db, int64_t *bad) {
    pulse_store *s = NULL;
    int64_t rows = -1;
    *bad = 0;
    if (pulse_store_open(db, 1, &s) != PULSE_OK) return -1;
    if (pulse_store_check(s, &rows, bad) != PULSE_OK) rows = -1;
    pulse_store_close(s);
    return rows;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* start cmd (sh -c), wait until the store has >= min_rows rows (or delay_ms passed when min_rows < 0), then
 * SIGKILL it; returns 1 when it was killed, 0 when it had already finished */
static int run_and_kill(const char *cmd, const char *db, int min_rows, int delay_ms) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return -1;
    int waited = 0, status = 0;
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid) return 0;
        if (min_rows < 0 ? waited >= delay_ms : 0) break;
        if (min_rows >= 0 && pulse_file_exists(db)) {
            int64_t bad;
            if (store_rows(db, &bad) >= min_rows) break;
        }
        if (waited > 600000) break;
        sleep_ms(5);
        waited += 5;
    }
    kill(pid, SIGKILL); /* the command is exec'ed: pid is pulse itself */
    waitpid(pid, &status, 0);
    return 1;
}

typedef struct {
    int n[256];
    int bad;
} user_count;
static int count_user(void *ud, const pulse_store_row *r) {
    user_count *c = ud;
    if (r->user_index >= 0 && r->user_index < 256)
        c->n[r->user_index]++;
    else
        c->bad++;
    c->bad += r->attempts < 1 || (r->ok && (!r->text || !*r->text)) || (!r->ok && !r->raw);
    return 0;
}

int main(void) {
    char dir[] = "/tmp/pulse_rat_cliXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], model[512], db[512], cmd[4096], base[2048];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    snprintf(cmd, sizeof cmd, "%s data synth --out %s --users 60 --items 80 --seed 5 >/dev/null", PULSE_CLI,
             data);
    CHECK(system(cmd) == 0);
    synth_opts o = {0};
    o.tokenizer = 1;
    o.ctx_len = 4096;
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    CHECK(synth_write_opts(&cfg, model, &o) == 0);
    const int N = 30;
    /* exec so that the shell is replaced and SIGKILL hits pulse itself */
    snprintf(base, sizeof base,
             "exec %s rationale phase1 --data %s --model %s --db %s --users %d --seed 3 --max-new 24 "
             "--retries 1 --parallel 4 --chunk 8 --history-tokens 160 --threads 1 -q",
             PULSE_CLI, data, model, db, N);

    /* killed during start-up, after the first row, mid-run; then resumed to the end */
    int kills = 0;
    kills += run_and_kill(base, db, -1, 30);
    kills += run_and_kill(base, db, 1, 0);
    int64_t bad = 0, rows = store_rows(db, &bad);
    kills += run_and_kill(base, db, (int)rows + 5, 0);
    rows = store_rows(db, &bad);
    printf("after %d kills: %lld rows, %lld bad\n", kills, (long long)rows, (long long)bad);
    CHECK(kills >= 2);
    CHECK(rows >= 0 && rows < N);
    CHECK(bad == 0);

    /* a clean stop after 3 more users */
    int rc;
    snprintf(cmd, sizeof cmd, "%s --stop-after 3", base);
    cJSON *j = run_json(cmd, &rc);
    CHECK(rc == 0);
    CHECK(num(j, "done") == 3);
    CHECK(num(j, "skipped") == (double)rows);
    cJSON_Delete(j);
    int64_t before = store_rows(db, &bad);
    CHECK(before == rows + 3 && bad == 0);

    /* to the end: exactly the remaining users */
    j = run_json(base, &rc);
    CHECK(rc == 0);
    CHECK(num(j, "selected") == N);
    CHECK(num(j, "skipped") == (double)before);
    CHECK(num(j, "done") == (double)(N - before));
    CHECK(num(j, "ok") + num(j, "failed") == num(j, "done"));
    CHECK(num(j, "gen_tokens") > 0);
    CHECK(num(j, "prompt_computed") < num(j, "prompt_tokens"));
    cJSON_Delete(j);
    rows = store_rows(db, &bad);
    CHECK(rows == N);
    CHECK(bad == 0);
    /* every selected user once, nobody else */
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(data, NULL, &ds));
    if (ds) {
        int users[64], nsel = 0;
        CHECK_OK(pulse_record_select_users(ds, N, 3, users, &nsel));
        CHECK(nsel == N);
        pulse_store *s = NULL;
        CHECK_OK(pulse_store_open(db, 1, &s));
        user_count uc;
        memset(&uc, 0, sizeof uc);
        if (s) CHECK_OK(pulse_store_each(s, "phase1", NULL, count_user, &uc));
        pulse_store_close(s);
        int once = 0, other = 0;
        for (int u = 0; u < 256; u++) {
            int in = 0;
            for (int i = 0; i < nsel; i++) in |= users[i] == u;
            if (in)
                once += uc.n[u] == 1;
            else
                other += uc.n[u];
        }
        CHECK(once == N && other == 0 && uc.bad == 0);
        pulse_dataset_free(ds);
    }

    /* a rerun stores nothing; without prefix sharing more prompt tokens are computed */
    j = run_json(base, &rc);
    CHECK(rc == 0 && num(j, "done") == 0 && num(j, "skipped") == N);
    cJSON_Delete(j);
    char db2[600];
    snprintf(db2, sizeof db2, "%s/share.db", dir);
    double computed[2] = {0, 0}, total[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        snprintf(
            cmd, sizeof cmd,
            "%s rationale phase1 --data %s --model %s --db %s --users 6 --seed 3 --max-new 8 --parallel 3 "
            "--history-tokens 160 --threads 1 -q --retries 0 %s",
            PULSE_CLI, data, model, db2, k ? "--no-prefix-share" : "");
        j = run_json(cmd, &rc);
        CHECK(rc == 0);
        computed[k] = num(j, "prompt_computed");
        total[k] = num(j, "prompt_tokens");
        cJSON_Delete(j);
        remove(db2);
    }
    printf("prompt tokens %.0f: computed %.0f with sharing, %.0f without\n", total[0], computed[0],
           computed[1]);
    CHECK(total[0] == total[1] && computed[1] == total[1] && computed[0] < computed[1]);

    /* stats: phase1 rows, no tot rows */
    snprintf(cmd, sizeof cmd, "%s rationale stats --db %s", PULSE_CLI, db);
    j = run_json(cmd, &rc);
    CHECK(rc == 0);
    const cJSON *p1 = cJSON_GetObjectItem(j, "phase1"), *tot = cJSON_GetObjectItem(j, "tot");
    CHECK(num(p1, "ok") + num(p1, "failed") == N);
    CHECK(num(p1, "tokens") > 0);
    CHECK(num(tot, "ok") == 0 && num(tot, "failed") == 0 && num(tot, "tokens") == 0);
    int ok_rows = (int)num(p1, "ok");
    cJSON_Delete(j);

    /* export / show need ok rows: the tiny model's are mostly failures, so add two real-looking rows */
    pulse_store *s = NULL;
    CHECK_OK(pulse_store_open(db, 0, &s));
    if (s) {
        pulse_store_row r[2];
        memset(r, 0, sizeof r);
        for (int i = 0; i < 2; i++) {
            r[i].dataset = "data";
            r[i].user = i ? "u-b" : "u-a";
            r[i].user_index = 1000 + i;
            r[i].phase = i ? "tot" : "phase1";
            r[i].model_hash = "0000000000000001";
            r[i].settings_hash = "0000000000000002";
            r[i].ok = 1;
            r[i].text = "The user favours soft pastel shades, so the pink polish fits.";
            r[i].score = i ? 0.5 : NAN;
            r[i].attempts = 1;
            r[i].behaviour = "[CONTEXT] History: red polish, nude polish [CHOSEN_ITEM] pink polish";
            r[i].history = "[\"red polish\",\"nude polish\"]";
            r[i].chosen = "pink polish";
            r[i].similar = "[\"top coat\"]";
        }
        CHECK_OK(pulse_store_put(s, r, 2));
        pulse_store_close(s);
    }
    char jsonl[600];
    snprintf(jsonl, sizeof jsonl, "%s/p1.jsonl", dir);
    snprintf(cmd, sizeof cmd, "%s rationale export --db %s --phase phase1 --out %s", PULSE_CLI, db, jsonl);
    j = run_json(cmd, &rc);
    CHECK(rc == 0);
    CHECK(num(j, "rows") == ok_rows + 1);
    cJSON_Delete(j);
    pulse_pair *pairs = NULL;
    int np = 0;
    CHECK_OK(pulse_pairs_load(jsonl, &pairs, &np));
    CHECK(np == ok_rows + 1);
    int found = 0;
    for (int i = 0; i < np; i++)
        if (!strcmp(pairs[i].user, "u-a")) {
            found = 1;
            CHECK(!strncmp(pairs[i].behaviour, "[CONTEXT] History: ", 19));
            CHECK(strstr(pairs[i].rationale, "pastel") != NULL);
        }
    CHECK(found);
    pulse_pairs_free(pairs, np);
    snprintf(cmd, sizeof cmd, "%s rationale export --db %s --phase tot --out %s", PULSE_CLI, db, jsonl);
    j = run_json(cmd, &rc);
    CHECK(rc == 0 && num(j, "rows") == 1);
    cJSON_Delete(j);
    /* show: history, chosen item and both phases of one user */
    snprintf(cmd, sizeof cmd, "%s rationale show --db %s --user u-a", PULSE_CLI, db);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 0);
    CHECK(strstr(out_buf, "1. red polish") && strstr(out_buf, "chosen item: pink polish") &&
          strstr(out_buf, "- top coat") && strstr(out_buf, "pastel"));
    /* a stored failure shows its raw output */
    if (ok_rows < N) {
        pulse_dataset *d2 = NULL;
        CHECK_OK(pulse_dataset_load(data, NULL, &d2));
        int users[64], nsel = 0;
        if (d2) CHECK_OK(pulse_record_select_users(d2, N, 3, users, &nsel));
        int shown = 0;
        for (int i = 0; i < nsel && !shown; i++) {
            snprintf(cmd, sizeof cmd, "%s rationale show --db %s --user %s --phase phase1", PULSE_CLI, db,
                     pulse_dataset_user_key(d2, users[i]));
            rc = test_run(cmd, out_buf, sizeof out_buf);
            CHECK(rc == 0);
            CHECK(strstr(out_buf, "history (oldest first):") != NULL);
            shown = strstr(out_buf, "raw output: {\"rationale\": \"") != NULL;
        }
        CHECK(shown);
        pulse_dataset_free(d2);
    }

    /* bad input */
    snprintf(cmd, sizeof cmd, "%s rationale show --db %s --user nobody 2>&1", PULSE_CLI, db);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 1 && strstr(out_buf, "no rows for user 'nobody'"));
    snprintf(cmd, sizeof cmd, "%s rationale export --db %s --phase phase2 --out %s 2>&1", PULSE_CLI, db,
             jsonl);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 2 && strstr(out_buf, "phase1 | tot"));
    snprintf(cmd, sizeof cmd, "%s rationale stats --db %s/missing.db 2>&1", PULSE_CLI, dir);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 1 && strstr(out_buf, "missing.db"));
    snprintf(cmd, sizeof cmd, "%s rationale stats --db %s 2>&1", PULSE_CLI, model);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 1 && strstr(out_buf, "tiny.gguf"));
    snprintf(cmd, sizeof cmd, "%s rationale phase1 --data %s --model %s/none.gguf --db %s 2>&1", PULSE_CLI,
             data, dir, db);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 1 && strstr(out_buf, "none.gguf"));
    snprintf(cmd, sizeof cmd, "%s rationale phase1 --data %s --model %s 2>&1", PULSE_CLI, data, model);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 2 && strstr(out_buf, "--db"));
    snprintf(cmd, sizeof cmd, "%s rationale phase1 --data %s --model %s --db %s --chat maybe 2>&1", PULSE_CLI,
             data, model, db);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 2 && strstr(out_buf, "--chat"));
    /* a prompt that cannot fit the model's context is refused before any generation */
    snprintf(cmd, sizeof cmd, "%s rationale phase1 --data %s --model %s --db %s --max-new 4090 -q 2>&1",
             PULSE_CLI, data, model, db);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc == 1 && strstr(out_buf, "trained context"));

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
