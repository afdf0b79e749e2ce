/* tests/test_pipeline_cli.c — `pulse pipeline` end to end on a tiny synthetic dataset with the real SLM
 * (SmolLM2-135M-Instruct) and encoder (MiniLM-L6), every stage cut to its smallest real size (4 users, one
 * SASRec epoch, one Thought-Space epoch, a depth-1 ToT, one LoRA step, the rank decoder): every stage runs
 * and records itself, the summary JSON has the promised fields and a metrics row per method; a second
 * identical run skips every stage and reports the same metrics; a stage whose record is removed runs again
 * alone; bad arguments are usage errors. The row and decoder lists' parser first (no model needed).
 * Skipped (77) without the model or the encoder. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "pulse/recommend.h"
#include "test.h"

static char out_buf[1 << 18];
static char tmp[] = "/tmp/pulse_pipeXXXXXX";

#define pulse(...) test_pulse_in(tmp, out_buf, sizeof out_buf, __VA_ARGS__)

static double num(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* 1 when the two files hold the same bytes */
static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static int exists(const char *rel) {
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    return stat(p, &st) == 0;
}

static const char *const STAGES[] = {"sasrec",
                                     "similar",
                                     "phase1",
                                     "thought",
                                     "tot-thought",
                                     "sft-none",
                                     "sft-phase1",
                                     "sft-pulse",
                                     "lists-n5",
                                     "eval-pop-score-n5",
                                     "eval-sasrec-score-n5",
                                     "eval-zero-shot-rank-n5",
                                     "eval-sft-none-rank-n5",
                                     "eval-sft-phase1-rank-n5",
                                     "eval-pulse-rank-n5"};
#define N_STAGES ((int)(sizeof STAGES / sizeof STAGES[0]))
static const char *const METHODS[][2] = {{"pop", "score"},     {"sasrec", "score"},    {"zero-shot", "rank"},
                                         {"sft-none", "rank"}, {"sft-phase1", "rank"}, {"pulse", "rank"}};
#define N_METHODS ((int)(sizeof METHODS / sizeof METHODS[0]))

/* the summary: fields, every stage with its wall time and skipped flag as expected, every method's
 * metrics in [0, 1]; *hr gets the methods' HR@1 */
static void check_summary(const cJSON *o, int want_skipped, double *hr) {
    CHECK(num(o, "users") == 4 && num(o, "candidates") == 5 && num(o, "seconds") >= 0);
    const cJSON *st = cJSON_GetObjectItem(o, "stages"), *m = cJSON_GetObjectItem(o, "metrics");
    CHECK(cJSON_IsObject(st) && cJSON_IsObject(m));
    for (int i = 0; i < N_STAGES; i++) {
        const cJSON *s = cJSON_GetObjectItem(st, STAGES[i]);
        CHECK_MSG(s && num(s, "seconds") >= 0, "stage %s missing", STAGES[i]);
        const cJSON *sk = cJSON_GetObjectItem(s, "skipped");
        CHECK_MSG(cJSON_IsBool(sk) && cJSON_IsTrue(sk) == want_skipped, "stage %s: skipped should be %d",
                  STAGES[i], want_skipped);
    }
    CHECK(!cJSON_GetObjectItem(st, "tot-likelihood")); /* --no-likelihood */
    for (int i = 0; i < N_METHODS; i++) {
        const cJSON *me = cJSON_GetObjectItem(m, METHODS[i][0]);
        const cJSON *d = me ? cJSON_GetObjectItem(me, METHODS[i][1]) : NULL;
        CHECK_MSG(d != NULL, "metrics %s/%s missing", METHODS[i][0], METHODS[i][1]);
        const char *keys[3] = {"HR@1", "NDCG@5", "NDCG@10"};
        for (int k = 0; k < 3; k++) {
            double v = num(d, keys[k]);
            CHECK_MSG(v >= 0 && v <= 1, "%s/%s %s = %g", METHODS[i][0], METHODS[i][1], keys[k], v);
        }
        hr[i] = num(d, "HR@1");
    }
    const cJSON *p1 = cJSON_GetObjectItem(st, "phase1"), *r = p1 ? cJSON_GetObjectItem(p1, "report") : NULL;
    CHECK(r && num(r, "selected") == 4);
    const cJSON *sp = cJSON_GetObjectItem(st, "sft-pulse"),
                *rp = sp ? cJSON_GetObjectItem(sp, "report") : NULL;
    CHECK(rp && num(rp, "lines") >= 1 && num(rp, "steps") == 1);
}

#define ARGS                                                                                                 \
    "pipeline --data syn --model '%s' --encoder '%s' --out run --users 4 --sasrec-epochs 1 "                 \
    "--phase1-max-new 24 --thought-epochs 1 --tot-depth 1 --tot-branching 2 --tot-beam 1 "                   \
    "--tot-thought-tokens 12 --no-likelihood --sft-epochs 1 --sft-batch 2 --sft-grad-accum 1 "               \
    "--sft-max-steps 1 --sft-max-len 192 --decoders rank"

/* --rows / --decoders: the library's names, every bit, unknown and empty entries refused */
static void parse_lists(void) {
    unsigned r = 99, d = 99;
    CHECK(pulse_pipeline_parse_rows("zero-shot,sft-none,sft-phase1,sft-tot-likelihood,pulse", &r) ==
          PULSE_OK);
    CHECK(r == PULSE_PIPE_ALL_ROWS);
    CHECK(pulse_pipeline_parse_rows("pulse", &r) == PULSE_OK && r == PULSE_PIPE_PULSE);
    CHECK(pulse_pipeline_parse_rows("sft-phase1,zero-shot", &r) == PULSE_OK &&
          r == (PULSE_PIPE_SFT_PHASE1 | PULSE_PIPE_ZERO_SHOT));
    r = 99;
    CHECK(pulse_pipeline_parse_rows("pulse,sasrec", &r) == PULSE_ERR_ARG &&
          r == 99); /* always run, not a row */
    CHECK(strstr(pulse_last_error(), "'sasrec'") != NULL);
    CHECK(pulse_pipeline_parse_rows("pulse,", &r) == PULSE_ERR_ARG);
    CHECK(pulse_pipeline_parse_rows("", &r) == PULSE_ERR_ARG);
    CHECK(pulse_pipeline_parse_rows("puls", &r) == PULSE_ERR_ARG);
    CHECK(pulse_pipeline_parse_decoders("rank,generate", &d) == PULSE_OK &&
          d == (PULSE_PIPE_RANK | PULSE_PIPE_GENERATE));
    CHECK(pulse_pipeline_parse_decoders("generate", &d) == PULSE_OK && d == PULSE_PIPE_GENERATE);
    CHECK(pulse_pipeline_parse_decoders("rank,score", &d) == PULSE_ERR_ARG);
    CHECK(strstr(pulse_last_error(), "'score'") != NULL);
    CHECK(pulse_pipeline_parse_decoders("", &d) == PULSE_ERR_ARG);
}

int main(void) {
    parse_lists();
    char model[1024], enc[1024];
    test_cache_path(model, sizeof model, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    test_cache_path(enc, sizeof enc, "encoders/minilm-l6");
    struct stat sb;
    if (stat(model, &sb) != 0) test_skip("no %s", model);
    if (stat(enc, &sb) != 0) test_skip("no %s", enc);
    CHECK(mkdtemp(tmp) != NULL);
    CHECK(pulse("data synth --out syn --users 40 --items 60 --seed 5") == 0);

    /* usage errors: nothing runs */
    CHECK(pulse("pipeline --data syn --model '%s' --out x 2>/dev/null", model) == 2); /* no --encoder */
    CHECK(pulse("pipeline --data syn --model '%s' --encoder '%s' --out x --decoders beam 2>/dev/null", model,
                enc) == 2);
    CHECK(pulse("pipeline --data syn --model nope.gguf --encoder '%s' --out x 2>/dev/null", enc) == 2);
    CHECK(!exists("x"));

    /* the first run: every stage runs */
    CHECK(pulse(ARGS, model, enc) == 0);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    CHECK_MSG(cJSON_IsObject(a), "%.300s", out_buf);
    double hr_a[N_METHODS] = {0}, hr_b[N_METHODS] = {0};
    if (a) check_summary(a, 0, hr_a);
    CHECK(strstr(out_buf, "| pulse | rank |") != NULL); /* the table */
    const char *files[] = {"run/sasrec.bin",       "run/similar.jsonl",
                           "run/rationales.db",    "run/phase1-pairs.jsonl",
                           "run/space/space.json", "run/sft-pulse.jsonl",
                           "run/lora-pulse.gguf",  "run/test-n5-u4.jsonl",
                           "run/summary.json",     "run/stages/eval-pulse-rank-n5.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) CHECK_MSG(exists(files[i]), "no %s", files[i]);

    /* the same run again: every stage skipped, the same figures */
    CHECK(pulse(ARGS, model, enc) == 0);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    CHECK(cJSON_IsObject(b));
    if (b) check_summary(b, 1, hr_b);
    for (int i = 0; i < N_METHODS; i++)
        CHECK_MSG(hr_a[i] == hr_b[i], "%s HR@1 %g vs %g", METHODS[i][0], hr_a[i], hr_b[i]);
    cJSON_Delete(a);
    cJSON_Delete(b);

    /* --rows: only the rows named, each with only the stages it needs. On the finished folder: every stage
     * skipped, PULSE's figure unchanged, no other language-model row in the summary */
    CHECK(pulse("pipeline --data syn --model '%s' --encoder '%s' --out x --rows pulse,beam 2>/dev/null",
                model, enc) == 2);
    CHECK(pulse(ARGS " --rows pulse", model, enc) == 0);
    cJSON *rw = cJSON_Parse(test_last_line(out_buf));
    const cJSON *rm = rw ? cJSON_GetObjectItem(rw, "metrics") : NULL;
    CHECK(rm && cJSON_GetObjectItem(rm, "pop") && cJSON_GetObjectItem(rm, "sasrec") &&
          !cJSON_GetObjectItem(rm, "zero-shot") && !cJSON_GetObjectItem(rm, "sft-none") &&
          !cJSON_GetObjectItem(rm, "sft-phase1"));
    const cJSON *rpu = rm ? cJSON_GetObjectItem(cJSON_GetObjectItem(rm, "pulse"), "rank") : NULL;
    CHECK(rpu && num(rpu, "HR@1") == hr_a[N_METHODS - 1]);
    for (const cJSON *x = rw ? cJSON_GetObjectItem(rw, "stages")->child : NULL; x; x = x->next) {
        CHECK_MSG(cJSON_IsTrue(cJSON_GetObjectItem(x, "skipped")), "stage %s ran", x->string);
        CHECK_MSG(strcmp(x->string, "sft-none") && strcmp(x->string, "sft-phase1"), "stage %s", x->string);
    }
    cJSON_Delete(rw);
    /* a new folder with the no-rationale row only: no rationale stage runs, no rationale store is written */
    CHECK(pulse(ARGS " --rows sft-none --out rn", model, enc) == 0);
    rw = cJSON_Parse(test_last_line(out_buf));
    const cJSON *rs = rw ? cJSON_GetObjectItem(rw, "stages") : NULL;
    CHECK(rs && cJSON_GetObjectItem(rs, "sft-none") && !cJSON_GetObjectItem(rs, "similar") &&
          !cJSON_GetObjectItem(rs, "phase1") && !cJSON_GetObjectItem(rs, "thought"));
    rm = rw ? cJSON_GetObjectItem(rw, "metrics") : NULL;
    CHECK(rm && cJSON_GetObjectItem(rm, "sft-none") && !cJSON_GetObjectItem(rm, "pulse"));
    CHECK(exists("rn/lora-none.gguf") && !exists("rn/rationales.db") && !exists("rn/similar.jsonl"));
    cJSON_Delete(rw);
    {
        char pa[1200], pb[1200];
        snprintf(pa, sizeof pa, "%s/run/lora-none.gguf", tmp);
        snprintf(pb, sizeof pb, "%s/rn/lora-none.gguf", tmp);
        CHECK_MSG(same_file(pa, pb), "the adapter differs with --rows sft-none");
    }

    /* --rationales-first in a new folder: every rationale stage before the first fine-tuning, every stage
     * run, and the same adapters and figures as the default order */
    CHECK(pulse(ARGS " --rationales-first --out rf", model, enc) == 0);
    cJSON *o = cJSON_Parse(test_last_line(out_buf));
    CHECK_MSG(cJSON_IsObject(o), "%.300s", out_buf);
    if (o) {
        double hr_o[N_METHODS] = {0};
        check_summary(o, 0, hr_o);
        for (int i = 0; i < N_METHODS; i++)
            CHECK_MSG(hr_a[i] == hr_o[i], "%s HR@1 %g vs %g", METHODS[i][0], hr_a[i], hr_o[i]);
        int at = 0, i_tot = -1, i_sft = -1;
        for (const cJSON *x = cJSON_GetObjectItem(o, "stages")->child; x; x = x->next, at++) {
            if (!strcmp(x->string, "tot-thought")) i_tot = at;
            if (!strcmp(x->string, "sft-none")) i_sft = at;
        }
        CHECK_MSG(i_tot >= 0 && i_sft > i_tot, "tot-thought at %d, sft-none at %d", i_tot, i_sft);
    }
    cJSON_Delete(o);
    {
        char pa[1200], pb[1200];
        snprintf(pa, sizeof pa, "%s/run/lora-pulse.gguf", tmp);
        snprintf(pb, sizeof pb, "%s/rf/lora-pulse.gguf", tmp);
        CHECK_MSG(same_file(pa, pb), "the adapter differs with --rationales-first");
    }

    /* a stage whose record is gone (a run killed during it) runs again, alone, with the same figure */
    CHECK(remove(strcat(strcpy((char[1200]){0}, tmp), "/run/stages/eval-pulse-rank-n5.json")) == 0);
    CHECK(pulse(ARGS, model, enc) == 0);
    cJSON *c = cJSON_Parse(test_last_line(out_buf));
    const cJSON *st = c ? cJSON_GetObjectItem(c, "stages") : NULL;
    int ran = 0;
    for (const cJSON *s = st ? st->child : NULL; s; s = s->next)
        ran += cJSON_IsFalse(cJSON_GetObjectItem(s, "skipped"));
    CHECK_MSG(ran == 1, "%d stages ran", ran);
    const cJSON *e = st ? cJSON_GetObjectItem(st, "eval-pulse-rank-n5") : NULL;
    CHECK(e && cJSON_IsFalse(cJSON_GetObjectItem(e, "skipped")));
    const cJSON *pm =
        c ? cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metrics"), "pulse"), "rank")
          : NULL;
    CHECK(pm && num(pm, "HR@1") == hr_a[N_METHODS - 1]);
    cJSON_Delete(c);

    /* --sft-no-recompute keeps every activation instead of recomputing layers: the same adapter bits, so the
     * same stage hash (nothing reruns) and, when the SFT stage does rerun, the same file */
    CHECK(pulse(ARGS " --sft-no-recompute", model, enc) == 0);
    c = cJSON_Parse(test_last_line(out_buf));
    st = c ? cJSON_GetObjectItem(c, "stages") : NULL;
    ran = 0;
    for (const cJSON *s = st ? st->child : NULL; s; s = s->next)
        ran += cJSON_IsFalse(cJSON_GetObjectItem(s, "skipped"));
    CHECK_MSG(ran == 0, "%d stages ran", ran);
    cJSON_Delete(c);
    char path[1200], copy[1200];
    snprintf(path, sizeof path, "%s/run/lora-pulse.gguf", tmp);
    snprintf(copy, sizeof copy, "%s/lora-pulse.recompute.gguf", tmp);
    CHECK(rename(path, copy) == 0);
    CHECK(remove(strcat(strcpy((char[1200]){0}, tmp), "/run/stages/sft-pulse.json")) == 0);
    CHECK(pulse(ARGS " --sft-no-recompute", model, enc) == 0);
    c = cJSON_Parse(test_last_line(out_buf));
    st = c ? cJSON_GetObjectItem(c, "stages") : NULL;
    const cJSON *sf = st ? cJSON_GetObjectItem(st, "sft-pulse") : NULL;
    CHECK(sf && cJSON_IsFalse(cJSON_GetObjectItem(sf, "skipped")));
    cJSON_Delete(c);
    CHECK_MSG(same_file(path, copy), "the adapter trained without recomputation differs from %s", copy);

    /* a run killed during a stage: its .started file holds the hash, the rerun resumes (the LoRA from its
     * checkpoint) and says that its wall time is that run's only */
    char rec[1200], started[1200];
    snprintf(rec, sizeof rec, "%s/run/stages/sft-pulse.json", tmp);
    snprintf(started, sizeof started, "%s/run/stages/sft-pulse.started", tmp);
    FILE *rf = fopen(rec, "rb");
    char recbuf[8192] = {0};
    if (rf) {
        CHECK(fread(recbuf, 1, sizeof recbuf - 1, rf) > 0);
        fclose(rf);
    }
    cJSON *rj = cJSON_Parse(recbuf);
    const cJSON *hj = rj ? cJSON_GetObjectItem(rj, "hash") : NULL;
    CHECK(cJSON_IsString(hj) && strlen(hj->valuestring) == 16);
    FILE *sf2 = fopen(started, "wb");
    CHECK(sf2 != NULL);
    if (sf2 && cJSON_IsString(hj)) fputs(hj->valuestring, sf2);
    if (sf2) fclose(sf2);
    cJSON_Delete(rj);
    CHECK(remove(rec) == 0);
    CHECK(pulse(ARGS, model, enc) == 0);
    CHECK(strstr(out_buf, "| sft-pulse |") && strstr(out_buf, "resumed: the last run's time only"));
    c = cJSON_Parse(test_last_line(out_buf));
    st = c ? cJSON_GetObjectItem(c, "stages") : NULL;
    sf = st ? cJSON_GetObjectItem(st, "sft-pulse") : NULL;
    CHECK(sf && cJSON_IsFalse(cJSON_GetObjectItem(sf, "skipped")) &&
          cJSON_IsTrue(cJSON_GetObjectItem(sf, "resumed")));
    cJSON_Delete(c);
    CHECK(!exists("run/stages/sft-pulse.started"));

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
