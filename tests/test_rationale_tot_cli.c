/* tests/test_rationale_tot_cli.c — `pulse rationale tot` as documented, on real inputs: Amazon Beauty, the
 * SmolLM2-135M-Instruct GGUF and the MiniLM encoder folder as the (untrained) Thought Space; 2 users with
 * short thoughts so it stays quick:
 *   - the documented command stores one phase-"tot" row per user (JSON report as the last stdout line; the
 * store's counts agree), each kept chain with its score, none holding the user's chosen item in its prompt;
 *   - each kept chain's stored score (scored in a batch of all candidates) equals `pulse thought score` of
 * that chain alone within 1e-3;
 *   - the same command again resumes: both users skipped, nothing generated; with Phase-1 rows for both
 * users its vs_phase1 compares them (tot_ts = the stored scores' mean);
 *   - the likelihood scorer (no --space) stores its own rows (another settings hash) and reports no
 * vs_phase1; the same command with --space resumes (the space is not in its key) and its vs_phase1 covers
 * the same users in the Thought Space: phase1_ts as the thought run's, tot_ts = the mean of `pulse thought
 * score` of its chains alone (regression: the CLI dropped --space for the likelihood scorer, users 0);
 *   - usage errors exit 2 naming the flag. */
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pulse/rationale.h"
#include "test.h"

static char dir[256];

/* the tot rows, kept to write Phase-1 rows for the same users */
static pulse_store_row kept[2];
static double score_sum;

static int count_cb(void *ud, const pulse_store_row *r) {
    int *c = ud;
    if (c[0] < 2) {
        pulse_store_row *k = &kept[c[0]];
        memset(k, 0, sizeof *k);
        k->dataset = strdup(r->dataset);
        k->user = strdup(r->user);
        k->user_index = r->user_index;
        k->model_hash = strdup(r->model_hash);
        k->behaviour = strdup(r->behaviour);
    }
    if (r->ok) score_sum += r->score;
    c[0]++;
    c[1] += r->ok;
    /* the stored prompt context is not kept, but the chain must not be empty and the row is phase tot */
    c[2] += !strcmp(r->phase, "tot") && (!r->ok || (r->text && *r->text && isfinite(r->score)));
    /* the extra JSON carries the thoughts */
    cJSON *e = r->extra ? cJSON_Parse(r->extra) : NULL;
    c[3] += e && cJSON_IsArray(cJSON_GetObjectItem(e, "thoughts"));
    cJSON_Delete(e);
    return 0;
}

static double num(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* the ok rows of one settings hash: behaviour, kept chain and stored score */
typedef struct {
    const char *settings_hash;
    int n;
    char *beh[4], *text[4];
    double score[4];
} rows_of;

static int rows_cb(void *ud, const pulse_store_row *r) {
    rows_of *R = ud;
    if (!r->ok || strcmp(r->settings_hash, R->settings_hash) || R->n >= 4) return 0;
    R->beh[R->n] = strdup(r->behaviour ? r->behaviour : "");
    R->text[R->n] = strdup(r->text ? r->text : "");
    R->score[R->n++] = r->score;
    return 0;
}

static void rows_free(rows_of *R) {
    for (int i = 0; i < R->n; i++) free(R->beh[i]), free(R->text[i]);
    R->n = 0;
}

/* `pulse thought score` of one text alone against one behaviour (the command's path); NAN on failure */
static double score_alone(const char *enc, const char *beh, const char *text) {
    char bf[400], rf[400], cmd[2048], last[4096];
    snprintf(bf, sizeof bf, "%s/beh.txt", dir);
    snprintf(rf, sizeof rf, "%s/rat.txt", dir);
    FILE *f = fopen(bf, "w"), *g = fopen(rf, "w");
    if (f) fputs(beh, f), fclose(f);
    if (g) {
        for (const char *c = text; *c; c++) fputc(*c == '\n' || *c == '\r' ? ' ' : *c, g);
        fputc('\n', g);
        fclose(g);
    }
    if (!f || !g) return NAN;
    snprintf(cmd, sizeof cmd, "'%s' thought score --space '%s' --behaviour-file '%s' --input '%s'", PULSE_CLI,
             enc, bf, rf);
    if (test_run_last(cmd, last, sizeof last) != 0) return NAN;
    cJSON *j = cJSON_Parse(last);
    const double c = j ? num(j, "cosine") : NAN;
    cJSON_Delete(j);
    return c;
}

int main(void) {
    char model[600], enc[600], data[600], db[400], cmd[4096], last[8192], ts_hash[17] = "";
    double p1_ts = NAN;
    test_cache_path(model, sizeof model, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    test_cache_path(enc, sizeof enc, "encoders/minilm-l6");
    snprintf(data, sizeof data, "%s/data/amazon-beauty", test_shared_dir());
    snprintf(dir, sizeof dir, "/tmp/pulse_test_tot_cli_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    snprintf(db, sizeof db, "%s/tot.db", dir);

    /* usage errors need no inputs */
    snprintf(cmd, sizeof cmd, "'%s' rationale tot --data x --model y --db %s 2>&1", PULSE_CLI, db);
    CHECK(test_run_last(cmd, last, sizeof last) == 2 && strstr(last, "--space"));
    snprintf(cmd, sizeof cmd, "'%s' rationale tot --data x --model y --db %s --scorer best 2>&1", PULSE_CLI,
             db);
    CHECK(test_run_last(cmd, last, sizeof last) == 2 && strstr(last, "--scorer"));
    snprintf(cmd, sizeof cmd, "'%s' rationale tot --data x --model y --db %s --space z --beam 0 2>&1",
             PULSE_CLI, db);
    CHECK(test_run_last(cmd, last, sizeof last) == 2 && strstr(last, "--beam"));

    if (access(model, R_OK) != 0 || access(enc, R_OK) != 0 || access(data, R_OK) != 0) {
        test_skip_part("SmolLM2 / MiniLM / Beauty not found (%s, %s, %s)", model, enc, data);
        goto end;
    }
    const char *quick = "--max-thought-tokens 8 --branching 2 --depth 2 --max-history 3 --threads 2";
    snprintf(cmd, sizeof cmd,
             "PULSE_QUIET=1 '%s' rationale tot --data '%s' --model '%s' --space '%s' --db '%s' --users 2 "
             "--seed 3 %s",
             PULSE_CLI, data, model, enc, db, quick);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    cJSON *j = cJSON_Parse(last);
    CHECK_MSG(j && num(j, "done") == 2 && num(j, "ok") + num(j, "failed") == 2 && num(j, "gen_tokens") > 0 &&
                  num(j, "skipped") == 0,
              "%s", last);
    /* no Phase-1 rows in this store: nothing to compare */
    CHECK(j && num(cJSON_GetObjectItem(j, "vs_phase1"), "users") == 0);
    CHECK(j && num(j, "ok") >= 1); /* SmolLM2 writes some words within 8 tokens */
    cJSON *sh = j ? cJSON_GetObjectItem(j, "settings_hash") : NULL;
    if (cJSON_IsString(sh)) snprintf(ts_hash, sizeof ts_hash, "%s", sh->valuestring);
    cJSON_Delete(j);
    pulse_store *s = NULL;
    int c[4] = {0};
    CHECK_OK(pulse_store_open(db, 0, &s));
    if (s) {
        CHECK_OK(pulse_store_each(s, "tot", NULL, count_cb, c));
        CHECK_MSG(c[0] == 2 && c[2] == 2 && c[3] == 2, "rows %d ok %d good %d extra %d", c[0], c[1], c[2],
                  c[3]);
        pulse_store_counts k;
        CHECK_OK(pulse_store_stats(s, "tot", &k));
        CHECK(k.ok + k.failed == 2 && k.gen_tokens > 0);
        /* the search's batched score of each kept chain == `pulse thought score` of it alone */
        rows_of R = {ts_hash, 0, {0}, {0}, {0}};
        CHECK_OK(pulse_store_each(s, "tot", NULL, rows_cb, &R));
        CHECK(R.n == c[1]);
        for (int i = 0; i < R.n; i++) {
            const double a = score_alone(enc, R.beh[i], R.text[i]);
            CHECK_MSG(fabs(a - R.score[i]) <= 1e-3, "chain %d: stored %.6f, alone %.6f", i, R.score[i], a);
        }
        rows_free(&R);
        /* Phase-1 rows for the same users, to compare with */
        for (int i = 0; i < c[0] && i < 2; i++) {
            kept[i].phase = "phase1";
            kept[i].settings_hash = "p1";
            kept[i].ok = 1;
            kept[i].text = "She keeps buying gentle skin care, so a mild cleanser fits.";
            kept[i].score = NAN;
            kept[i].attempts = 1;
        }
        CHECK_OK(pulse_store_put(s, kept, c[0] < 2 ? c[0] : 2));
        pulse_store_close(s);
    }
    /* again: resumed, nothing to do; the kept chains' scores recomputed beside Phase 1's */
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    j = cJSON_Parse(last);
    CHECK_MSG(j && num(j, "done") == 0 && num(j, "skipped") == 2 && num(j, "gen_tokens") == 0, "%s", last);
    cJSON *vs = j ? cJSON_GetObjectItem(j, "vs_phase1") : NULL;
    CHECK_MSG(vs && num(vs, "users") == c[1], "%s", last);
    if (vs && c[1] > 0) {
        CHECK_NEAR(num(vs, "tot_ts"), score_sum / c[1], 1e-3);
        CHECK(fabs(num(vs, "phase1_ts")) <= 1.0);
        p1_ts = num(vs, "phase1_ts");
    }
    cJSON_Delete(j);
    for (int i = 0; i < 2; i++) {
        free((void *)kept[i].dataset), free((void *)kept[i].user), free((void *)kept[i].model_hash);
        free((void *)kept[i].behaviour);
    }
    /* the likelihood scorer needs no space, and without one reports no comparison */
    char lik[2048];
    snprintf(
        lik, sizeof lik,
        "PULSE_QUIET=1 '%s' rationale tot --data '%s' --model '%s' --db '%s' --users 2 --seed 3 --scorer "
        "likelihood %s",
        PULSE_CLI, data, model, db, quick);
    CHECK(test_run_last(lik, last, sizeof last) == 0);
    j = cJSON_Parse(last);
    cJSON *scn = j ? cJSON_GetObjectItem(j, "scorer") : NULL;
    CHECK_MSG(j && num(j, "done") == 2 && cJSON_IsString(scn) && !strcmp(scn->valuestring, "likelihood") &&
                  !cJSON_GetObjectItem(j, "vs_phase1"),
              "%s", last);
    /* a mean log-probability */
    cJSON *ms = j ? cJSON_GetObjectItem(j, "mean_score") : NULL;
    CHECK(!ms || cJSON_IsNull(ms) || (cJSON_IsNumber(ms) && ms->valuedouble <= 0));
    char lik_hash[17] = "";
    sh = j ? cJSON_GetObjectItem(j, "settings_hash") : NULL;
    if (cJSON_IsString(sh)) snprintf(lik_hash, sizeof lik_hash, "%s", sh->valuestring);
    CHECK(*lik_hash && strcmp(lik_hash, ts_hash) != 0);
    cJSON_Delete(j);
    /* with --space: resumed (the space is not in the likelihood key), the comparison in the Thought Space */
    snprintf(cmd, sizeof cmd, "%s --space '%s'", lik, enc);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    j = cJSON_Parse(last);
    vs = j ? cJSON_GetObjectItem(j, "vs_phase1") : NULL;
    rows_of L = {lik_hash, 0, {0}, {0}, {0}};
    CHECK_OK(pulse_store_open(db, 0, &s));
    if (s) {
        CHECK_OK(pulse_store_each(s, "tot", NULL, rows_cb, &L));
        pulse_store_close(s);
    }
    CHECK_MSG(j && num(j, "done") == 0 && num(j, "skipped") == 2 && vs && L.n > 0 && num(vs, "users") == L.n,
              "likelihood rows %d: %s", L.n, last);
    if (vs && L.n > 0 && num(vs, "users") == L.n) {
        double sum = 0;
        for (int i = 0; i < L.n; i++) sum += score_alone(enc, L.beh[i], L.text[i]);
        CHECK_NEAR(num(vs, "tot_ts"), sum / L.n, 1e-3);
        if (L.n == 2 && c[1] == 2) CHECK_NEAR(num(vs, "phase1_ts"), p1_ts, 1e-6); /* the same 2 users' rows */
    }
    rows_free(&L);
    cJSON_Delete(j);
end:
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
