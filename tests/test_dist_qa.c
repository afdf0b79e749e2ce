/* tests/test_dist_qa.c — `pulse qa eval` on two MPI ranks (mpirun -np 2, launched by this test; exits 77 =
 * Skipped when the build has no MPI) against one process, on 14 generated HotpotQA-format questions and the
 * tiny synthetic model (byte-level tokenizer, ChatML template), 1 thread per rank, --parallel 3 (rank 0's
 * queue hands out ranges of at most 3 questions, so both ranks answer several ranges). Modes direct, cot
 * (its chains that end without an answer take a second stage within their range) and tot (the likelihood
 * scorer; each rank searches its ranges). Checked: the 2-rank
 * store holds exactly the rows of the 1-process store (question, answer, raw output, score, supporting
 * facts, tokens; not the wall times) — every question's sampler is seeded from (seed, question, stage)
 * alone and the tiny model decodes a sequence the same in any batch —, the predictions files are
 * identical, the last stdout line is rank 0's JSON with "ranks": 2 and the same metrics, and a rerun on two
 * ranks answers nothing (every question read back from the store by rank 0). */
#include <cjson/cJSON.h>

#include "dist_test.h"
#include "lm_synth.h"
#include "pulse/rationale.h"
#include "pulse/strbuf.h"
#include "test.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];
static int n_rows; /* rows seen by dump_row */

/* every field of a row but the wall time */
static int dump_row(void *ud, const pulse_store_row *r) {
    pulse_strbuf *b = ud;
    n_rows++;
    pulse_strbuf_printf(b, "%s|%d|%d|%s|%s|%.9g|%d|%d|%d|%s|%s|%s\n", r->user, r->user_index, r->ok,
                        r->text ? r->text : "-", r->raw ? r->raw : "-", r->score, r->attempts, r->gen_tokens,
                        r->prompt_tokens, r->extra ? r->extra : "-", r->model_hash, r->settings_hash);
    return 0;
}

static char *dump(const char *db, const char *phase) {
    pulse_store *s = NULL;
    if (pulse_store_open(db, 1, &s) != PULSE_OK) return NULL;
    pulse_strbuf b = {0};
    pulse_status st = pulse_store_each(s, phase, NULL, dump_row, &b);
    pulse_store_close(s);
    if (st) {
        free(b.s);
        return NULL;
    }
    return b.s ? b.s : calloc(1, 1);
}

static void compare(const char *dir, const char *data, const char *model, const char *mode,
                    const char *extra) {
    char cmd[4096], args[2048], p1[600], p2[600], d1[700], d2[700], phase[32];
    snprintf(p1, sizeof p1, "%s/one_%s.json", dir, mode);
    snprintf(p2, sizeof p2, "%s/two_%s.json", dir, mode);
    snprintf(d1, sizeof d1, "%s.db", p1);
    snprintf(d2, sizeof d2, "%s.db", p2);
    snprintf(phase, sizeof phase, "qa-%s", mode);
    snprintf(args, sizeof args,
             "qa eval --data %s --model %s --mode %s --sp bm25 --k 2 --seed 5 --parallel 3 --threads 1 %s",
             data, model, mode, extra);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --out %s 2>/dev/null", PULSE_CLI, args, p1);
    int rc1 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, p2);
    int rc2 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    printf("%s: 1 process -> %d, 2 ranks -> %d\n", mode, rc1, rc2);
    CHECK(rc1 == 0 && rc2 == 0 && a && b);
    CHECK(dist_num(b, "ranks") == 2 && cJSON_GetObjectItem(a, "ranks") == NULL);
    CHECK(dist_num(a, "answered") == 14 && dist_num(b, "answered") == 14);
    CHECK_MSG(dist_num(a, "gen_tokens") == dist_num(b, "gen_tokens") && dist_num(a, "gen_tokens") > 0,
              "gen tokens %g vs %g", dist_num(a, "gen_tokens"), dist_num(b, "gen_tokens"));
    CHECK(dist_num(a, "prompt_tokens") == dist_num(b, "prompt_tokens"));
    char *ma = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "metrics")),
         *mb = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "metrics"));
    CHECK_MSG(ma && mb && strcmp(ma, mb) == 0, "metrics %s vs %s", ma ? ma : "-", mb ? mb : "-");
    cJSON_free(ma);
    cJSON_free(mb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    n_rows = 0;
    char *s1 = dump(d1, phase);
    CHECK(n_rows == 14);
    n_rows = 0;
    char *s2 = dump(d2, phase);
    CHECK(n_rows == 14);
    CHECK_MSG(s1 && s2 && strcmp(s1, s2) == 0, "stores differ:\n%.600s\n---\n%.600s", s1 ? s1 : "-",
              s2 ? s2 : "-");
    free(s1);
    free(s2);
    char *f1 = NULL, *f2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK_OK(pulse_read_file(p1, &f1, &n1));
    CHECK_OK(pulse_read_file(p2, &f2, &n2));
    CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
    free(f1);
    free(f2);
    /* a rerun on two ranks: every question read back from the store */
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, p2);
    rc2 = test_run(cmd, out_buf, sizeof out_buf);
    b = cJSON_Parse(test_last_line(out_buf));
    printf("%s: rerun on 2 ranks -> %d: %.200s\n", mode, rc2, out_buf);
    CHECK(rc2 == 0 && b && dist_num(b, "skipped") == 14 && dist_num(b, "answered") == 0);
    cJSON_Delete(b);
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_qaXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[512], model[512], cmd[1024];
    snprintf(data, sizeof data, "%s/q.json", dir);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 1024}) == 0);
    static const char *const NAME[] = {"Ann", "Bob", "Carol", "Dan", "Eve", "Fred", "Gus"};
    FILE *f = fopen(data, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("[", f);
        for (int i = 0; i < 14; i++) {
            const char *x = NAME[i % 7], *y = NAME[(i * 3 + 1) % 7];
            fprintf(f,
                    "%s{\"_id\": \"q%d\", \"question\": \"Where does %s live%s?\", \"answer\": \"Town%d\", "
                    "\"supporting_facts\": [[\"%s\", 0]], \"context\": [[\"%s\", [\"%s lives in Town%d.\", "
                    "\" %s is %d.\"]], [\"%s\", [\"%s likes tea.\"]]]}",
                    i ? ", " : "", i, x, i % 2 ? " now" : "", i, x, x, x, i, x, 20 + i, y, y);
        }
        fputs("]\n", f);
        fclose(f);
    }
    compare(dir, data, model, "direct", "--max-new 6");
    compare(dir, data, model, "cot", "--max-new 10");
    compare(dir, data, model, "tot", "--depth 2 --branching 2 --beam 1 --max-thought-tokens 6 --max-new 8");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
