/* tests/test_dist_rationale.c — `pulse rationale phase1` and `pulse rationale tot` on two MPI ranks (mpirun
 * -np 2, launched by this test; exits 77 = Skipped when the build has no MPI), on synthetic users and the
 * tiny synthetic model of test_rationale_cli. Phase 1, 40 users: the 2-rank store holds exactly the rows of
 * the 1-process store (user, ok, text, raw output, attempts, tokens; not the wall times), the last stdout
 * line is rank 0's JSON alone with "ranks": 2, a rerun stores nothing; a worker rank killed (SIGKILL) mid-run
 * ends the job with an error and leaves a store with no broken row, which a rerun on one rank completes. ToT
 * (likelihood scorer), 10 users: the 2-rank rows equal the 1-process rows (chain, score, raw candidates,
 * tokens). A command that does not split its work refuses two ranks. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/rationale.h"
#include "pulse/strbuf.h"
#include "dist_test.h"
#include "test.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];

/* the store's phase-1 rows as one text: everything but wall times, in user order */
static int dump_row(void *ud, const pulse_store_row *r) {
    pulse_strbuf *b = ud;
    pulse_strbuf_printf(b, "%.9g|%s|", r->score, r->extra ? r->extra : "-");
    pulse_strbuf_printf(b, "%s|%d|%d|%s|%s|%d|%d|%d|%s\n", r->user, r->user_index, r->ok,
                        r->text ? r->text : "-", r->raw ? r->raw : "-", r->attempts, r->gen_tokens,
                        r->prompt_tokens, r->behaviour ? r->behaviour : "-");
    return 0;
}

static char *dump_phase(const char *db, const char *phase, int64_t *rows, int64_t *bad) {
    pulse_store *s = NULL;
    *rows = -1;
    *bad = 0;
    if (pulse_store_open(db, 1, &s) != PULSE_OK) return NULL;
    pulse_strbuf b = {0};
    if (pulse_store_check(s, rows, bad) != PULSE_OK || pulse_store_each(s, phase, NULL, dump_row, &b)) {
        pulse_store_close(s);
        free(b.s);
        return NULL;
    }
    pulse_store_close(s);
    return b.s ? b.s : calloc(1, 1);
}

static char *dump_store(const char *db, int64_t *rows, int64_t *bad) {
    return dump_phase(db, "phase1", rows, bad);
}

static int64_t store_rows(const char *db) {
    int64_t rows = -1, bad = 0;
    char *d = dump_store(db, &rows, &bad);
    free(d);
    return rows;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long read_pid(const char *path) {
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = -1;
        fclose(f);
    }
    return pid;
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_ratXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], model[512], db1[512], db2[512], db3[512], cmd[8192], args[2048], errf[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(db1, sizeof db1, "%s/one.db", dir);
    snprintf(db2, sizeof db2, "%s/two.db", dir);
    snprintf(db3, sizeof db3, "%s/killed.db", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "%s data synth --out %s --users 60 --items 80 --seed 5 >/dev/null", PULSE_CLI,
             data);
    CHECK(system(cmd) == 0);
    synth_opts o = {0};
    o.tokenizer = 1;
    o.ctx_len = 4096;
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    CHECK(synth_write_opts(&cfg, model, &o) == 0);
    /* 40 users; small ranges so that both ranks take several */
    snprintf(args, sizeof args,
             "rationale phase1 --data %s --model %s --users 40 --seed 3 --max-new 8 --retries 1 --parallel 8 "
             "--chunk 8 --history-tokens 16 --threads 1 -q",
             data, model);

    /* one process, no launcher: the reference */
    snprintf(cmd, sizeof cmd, "%s %s --db %s", PULSE_CLI, args, db1);
    double t1 = pulse_now();
    int rc = test_run(cmd, out_buf, sizeof out_buf);
    printf("one process phase1 -> %d (%.1f s)\n", rc, pulse_now() - t1);
    CHECK(rc == 0);
    cJSON *j = cJSON_Parse(test_last_line(out_buf));
    CHECK(j && cJSON_GetObjectItem(j, "ranks") == NULL);
    CHECK(j && cJSON_GetObjectItem(j, "done")->valuedouble == 40);
    cJSON_Delete(j);

    /* two ranks */
    snprintf(cmd, sizeof cmd, "%s %s %s --db %s", MPIRUN, PULSE_CLI, args, db2);
    double t = pulse_now();
    rc = test_run(cmd, out_buf, sizeof out_buf);
    printf("mpirun -np 2 phase1 -> %d (%.1f s)\n", rc, pulse_now() - t);
    CHECK(rc == 0);
    /* stdout: rank 0's JSON line only */
    {
        size_t n = strlen(out_buf);
        int lines = 0;
        for (size_t i = 0; i < n; i++) lines += out_buf[i] == '\n';
        CHECK_MSG(lines == 1, "%d stdout lines: %s", lines, out_buf);
    }
    j = cJSON_Parse(test_last_line(out_buf));
    CHECK(j != NULL);
    if (j) {
        CHECK(cJSON_GetObjectItem(j, "ranks") && cJSON_GetObjectItem(j, "ranks")->valuedouble == 2);
        CHECK(cJSON_GetObjectItem(j, "done")->valuedouble == 40);
        CHECK(cJSON_GetObjectItem(j, "gen_tokens")->valuedouble > 0);
    }
    cJSON_Delete(j);
    int64_t r1 = 0, b1 = 0, r2 = 0, b2 = 0;
    char *d1 = dump_store(db1, &r1, &b1), *d2 = dump_store(db2, &r2, &b2);
    CHECK(d1 && d2);
    CHECK(r1 == 40 && r2 == 40 && b1 == 0 && b2 == 0);
    CHECK_MSG(d1 && d2 && strcmp(d1, d2) == 0, "the 2-rank store differs from the 1-process store");

    /* a rerun on two ranks stores nothing new */
    rc = test_run(cmd, out_buf, sizeof out_buf);
    j = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc == 0 && j && cJSON_GetObjectItem(j, "skipped")->valuedouble == 40 &&
          cJSON_GetObjectItem(j, "done")->valuedouble == 0);
    cJSON_Delete(j);

    /* rank 1 killed mid-run: the job ends (no hang) with an error, the store keeps its finished users */
    snprintf(cmd, sizeof cmd,
             "exec %s sh -c 'echo $$ > %s/pid.$OMPI_COMM_WORLD_RANK; exec %s %s --max-new 64 --db %s' "
             ">/dev/null 2>%s",
             MPIRUN, dir, PULSE_CLI, args, db3, errf);
    t = pulse_now();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    char pidf[600];
    snprintf(pidf, sizeof pidf, "%s/pid.1", dir);
    int status = 0, finished = 0, killed = 0;
    for (int waited = 0; waited < 120000; waited += 5) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            finished = 1;
            break;
        }
        long wp = read_pid(pidf);
        if (wp > 0 && pulse_file_exists(db3) && store_rows(db3) >= 3) {
            killed = kill((pid_t)wp, SIGKILL) == 0;
            break;
        }
        sleep_ms(5);
    }
    if (!finished) {
        /* the job must end by itself: mpirun sees the dead rank and stops rank 0 */
        for (int waited = 0; waited < 60000 && !finished; waited += 10) {
            if (waitpid(pid, &status, WNOHANG) == pid) finished = 1;
            if (!finished) sleep_ms(10);
        }
        if (!finished) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }
    CHECK_MSG(killed, "rank 1 was not killed (the run finished first?)");
    CHECK_MSG(finished, "the job did not end within 60 s of rank 1's death");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    {
        char err[8192] = "";
        FILE *f = fopen(errf, "r");
        if (f) {
            size_t n = fread(err, 1, sizeof err - 1, f);
            err[n] = 0;
            fclose(f);
        }
        printf("stderr of the killed job (first 400 bytes):\n%.400s\n", err);
        CHECK(strstr(err, "rank 0") != NULL || strstr(err, "signal 9") != NULL);
    }
    int64_t r3 = 0, b3 = 0;
    char *d3 = dump_store(db3, &r3, &b3);
    printf("killed job ended after %.1f s\n", pulse_now() - t);
    printf("after the kill: %lld rows, %lld bad\n", (long long)r3, (long long)b3);
    CHECK(d3 && r3 >= 3 && r3 < 40 && b3 == 0);
    free(d3);
    /* resumed on one process with the run's own settings (--max-new 64): done, each user once */
    snprintf(cmd, sizeof cmd, "%s %s --max-new 64 --db %s", PULSE_CLI, args, db3);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    j = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc == 0 && j && cJSON_GetObjectItem(j, "skipped")->valuedouble == (double)r3 &&
          cJSON_GetObjectItem(j, "done")->valuedouble == 40 - (double)r3);
    cJSON_Delete(j);
    CHECK(store_rows(db3) == 40);

    /* ToT with the likelihood scorer: 1 process vs 2 ranks */
    {
        char dbt1[600], dbt2[600], targs[2048];
        snprintf(dbt1, sizeof dbt1, "%s/tot1.db", dir);
        snprintf(dbt2, sizeof dbt2, "%s/tot2.db", dir);
        snprintf(targs, sizeof targs,
                 "rationale tot --data %s --model %s --users 10 --seed 3 --scorer likelihood --depth 2 "
                 "--branching 2 --beam 1 --max-thought-tokens 8 --parallel 2 --max-history 4 --threads 1",
                 data, model);
        snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --db %s", PULSE_CLI, targs, dbt1);
        rc = test_run(cmd, out_buf, sizeof out_buf);
        CHECK(rc == 0);
        snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --db %s", MPIRUN, PULSE_CLI, targs, dbt2);
        rc = test_run(cmd, out_buf, sizeof out_buf);
        j = cJSON_Parse(test_last_line(out_buf));
        printf("mpirun -np 2 rationale tot -> %d: %.300s\n", rc, out_buf);
        CHECK(rc == 0 && j && cJSON_GetObjectItem(j, "ranks") && cJSON_GetObjectItem(j, "done") &&
              cJSON_GetObjectItem(j, "done")->valuedouble == 10);
        cJSON_Delete(j);
        int64_t t1 = 0, tb1 = 0, t2 = 0, tb2 = 0;
        char *a = dump_phase(dbt1, "tot", &t1, &tb1), *b = dump_phase(dbt2, "tot", &t2, &tb2);
        CHECK(a && b && t1 == 10 && t2 == 10 && tb1 == 0 && tb2 == 0);
        CHECK_MSG(a && b && strcmp(a, b) == 0, "the 2-rank ToT store differs from the 1-process store");
        free(a);
        free(b);
    }

    /* a command that does not split its work refuses two ranks (usage error on every rank) */
    snprintf(cmd, sizeof cmd, "%s %s data stats --data %s 2>&1", MPIRUN, PULSE_CLI, data);
    rc = test_run(cmd, out_buf, sizeof out_buf);
    CHECK(rc != 0 && strstr(out_buf, "runs on one rank only"));

    free(d1);
    free(d2);
    if (!getenv("PULSE_KEEP_TMP")) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
    }
    return test_summary();
}
#endif
