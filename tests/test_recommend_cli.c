/* tests/test_recommend_cli.c — every command of the recommender as documented, on real inputs: a synthetic
 * dataset with a tiny synthetic model (always), then Amazon Beauty with SmolLM2-135M-Instruct (skipped when
 * the data or the model is absent). `pulse sft build` writes train / test JSONL; `pulse eval` with a GGUF
 * model prints metrics for both decoders; popularity and SASRec score the very lists of the test file
 * (pop's figures equal with --candidates-file and with --users / --candidates / --seed); `pulse recommend`
 * prints items sorted by score and a rationale; cross-domain (`--train-data`: an adapter fine-tuned on one
 * dataset, tested on another's users and lists) is labelled in the JSON; `--store` resumes an evaluation with
 * the numbers of an uninterrupted run; bad arguments are usage errors. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "lm_synth.h"
#include "test.h"

static char out_buf[1 << 18];
static char tmp[] = "/tmp/pulse_reccliXXXXXX";

#define pulse(...) test_pulse_in(tmp, out_buf, sizeof out_buf, __VA_ARGS__)

static cJSON *last_json(void) {
    return cJSON_Parse(test_last_line(out_buf));
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f) return -1;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static char *slurp(const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[2][1 << 16];
    static int k;
    char *b = buf[k++ & 1];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

/* --store: a run killed after its first chunk and resumed gives the uninterrupted run's outputs and metrics;
 * another key (here --max-new) reads nothing back; a file that is no store is an error, not a crash */
static void check_store(const char *decoder, int first, int all, const char *extra) {
    char ref[96], res[96];
    snprintf(ref, sizeof ref, "ref_%s.jsonl", decoder);
    snprintf(res, sizeof res, "res_%s.jsonl", decoder);
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users %d --seed 3 --decoder %s %s "
                "--parallel 1 --outputs %s",
                all, decoder, extra, ref) == 0);
    cJSON *a = last_json();
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users %d --seed 3 --decoder %s %s "
                "--parallel 1 --store ev.db",
                first, decoder, extra) == 0);
    cJSON *o = last_json();
    CHECK(o && num(o, "resumed") == 0 && num(o, "users") == first);
    cJSON_Delete(o);
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users %d --seed 3 --decoder %s %s "
                "--parallel 1 --store ev.db --outputs %s",
                all, decoder, extra, res) == 0);
    o = last_json();
    CHECK_MSG(o && num(o, "resumed") == first && num(o, "users") == all, "%s: %.300s", decoder, out_buf);
    const cJSON *ma = a ? cJSON_GetObjectItem(a, "metrics") : NULL,
                *mo = o ? cJSON_GetObjectItem(o, "metrics") : NULL;
    CHECK(ma && mo && cJSON_Compare(ma, mo, 1));
    CHECK(num(a, "cand_tokens") == num(o, "cand_tokens"));
    cJSON_Delete(a);
    cJSON_Delete(o);
    char *x = slurp(ref), *y = slurp(res);
    CHECK_MSG(x && y && *x && strcmp(x, y) == 0, "%s: resumed outputs differ", decoder);
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users %d --seed 3 --decoder %s %s "
                "--parallel 1 --store ev.db --max-new 7",
                first, decoder, extra) == 0);
    o = last_json();
    CHECK(o && num(o, "resumed") == (strcmp(decoder, "rank") ? 0 : first)); /* rank ignores --max-new */
    cJSON_Delete(o);
}

/* the eval line: users, decoder, metrics with the keys the interface promises (in [0, 1]) */
static void check_eval(const char *what, int users, const char *decoder) {
    cJSON *o = last_json();
    CHECK_MSG(cJSON_IsObject(o), "%s: %.300s", what, out_buf);
    if (!o) return;
    CHECK_MSG(num(o, "users") == users, "%s: users %g", what, num(o, "users"));
    const cJSON *d = cJSON_GetObjectItem(o, "decoder");
    if (decoder) CHECK(cJSON_IsString(d) && strcmp(d->valuestring, decoder) == 0);
    CHECK(num(o, "seconds") >= 0);
    const cJSON *m = cJSON_GetObjectItem(o, "metrics");
    const char *keys[3] = {"HR@1", "NDCG@5", "NDCG@10"};
    int nk = decoder && !strcmp(decoder, "generate") ? 1 : 3;
    for (int k = 0; k < nk; k++) {
        double v = num(m, keys[k]);
        CHECK_MSG(v >= 0 && v <= 1, "%s: %s = %g", what, keys[k], v);
    }
    cJSON_Delete(o);
}

/* pulse recommend's line: K items sorted by score, each with id, title, score; a non-empty rationale */
static void check_recommend(const char *what, int K) {
    cJSON *o = last_json();
    CHECK_MSG(cJSON_IsObject(o), "%s: %.300s", what, out_buf);
    if (!o) return;
    const cJSON *items = cJSON_GetObjectItem(o, "items"), *why = cJSON_GetObjectItem(o, "rationale");
    CHECK(cJSON_IsArray(items) && cJSON_GetArraySize(items) == K);
    double prev = 1e300;
    int ok = 1;
    for (const cJSON *e = items ? items->child : NULL; e; e = e->next) {
        const cJSON *t = cJSON_GetObjectItem(e, "title");
        ok &= num(e, "id") >= 1 && cJSON_IsString(t) && *t->valuestring && num(e, "score") <= prev;
        prev = num(e, "score");
    }
    CHECK(ok);
    CHECK(cJSON_IsString(why) && strncmp(why->valuestring, "because", 7) == 0);
    cJSON_Delete(o);
}

/* pop's metrics on the file = pop's metrics with --users / --candidates / --seed */
static void check_pop_same(const char *data, const char *test_file, int users, int cands, int seed) {
    CHECK(pulse("eval --data '%s' --model pop --candidates-file '%s'", data, test_file) == 0);
    cJSON *a = last_json();
    CHECK(pulse("eval --data '%s' --model pop --users %d --candidates %d --seed %d", data, users, cands,
                seed) == 0);
    cJSON *b = last_json();
    const cJSON *ma = a ? cJSON_GetObjectItem(a, "metrics") : NULL,
                *mb = b ? cJSON_GetObjectItem(b, "metrics") : NULL;
    CHECK(ma && mb && num(a, "users") == users && num(b, "users") == users);
    CHECK(ma && mb && num(ma, "HR@1") == num(mb, "HR@1") && num(ma, "NDCG@5") == num(mb, "NDCG@5"));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int main(void) {
    CHECK(mkdtemp(tmp) != NULL);
    /* ---- synthetic data + tiny model ---- */
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    char model[512];
    snprintf(model, sizeof model, "%s/tiny.gguf", tmp);
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 2048}) == 0);
    CHECK(pulse("data synth --out syn --users 60 --items 80 --seed 5") == 0);
    CHECK(pulse("sft build --data syn --rationales none --out-train tr.jsonl --out-test te.jsonl --users 12 "
                "--seed 3 --candidates 4") == 0);
    cJSON *o = last_json();
    CHECK(o && num(o, "train") == 12 && num(o, "test") == 12);
    cJSON_Delete(o);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/tr.jsonl", tmp);
    snprintf(p2, sizeof p2, "%s/te.jsonl", tmp);
    CHECK(count_lines(p1) == 12 && count_lines(p2) == 12);
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users 6 --seed 3 --decoder rank") == 0);
    check_eval("tiny rank", 6, "rank");
    { /* PULSE_QFAST=1: the SLM's products in training's order, and the JSON says which order ran */
        cJSON *e = last_json();
        const cJSON *pr = e ? cJSON_GetObjectItem(e, "products") : NULL;
        CHECK(cJSON_IsString(pr) && strcmp(pr->valuestring, "llama.cpp") == 0);
        cJSON_Delete(e);
        setenv("PULSE_QFAST", "1", 1);
        CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users 6 --seed 3 --decoder rank") ==
              0);
        unsetenv("PULSE_QFAST");
        check_eval("tiny rank, PULSE_QFAST=1", 6, "rank");
        e = last_json();
        pr = e ? cJSON_GetObjectItem(e, "products") : NULL;
        CHECK(cJSON_IsString(pr) && strcmp(pr->valuestring, "fast") == 0);
        cJSON_Delete(e);
    }
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users 6 --seed 3 --decoder generate "
                "--max-new "
                "8 --outputs gen.jsonl") == 0);
    check_eval("tiny generate", 6, "generate");
    check_store("generate", 8, 12, "--max-new 8"); /* chunks of 8 users at --parallel 1 */
    check_store("rank", 4, 6, "");                 /* chunks of 4 */
    CHECK(pulse("eval --data syn --model tiny.gguf --candidates 4 --users 3 --seed 3 --store te.jsonl "
                "2>/dev/null") == 1);
    CHECK(
        pulse("eval --data syn --model tiny.gguf --candidates-file te.jsonl --decoder rank --rank-score sum "
              "--rationales phase1 --train-data syn") == 0);
    check_eval("tiny rank on the file", 12, "rank");
    check_pop_same("syn", "te.jsonl", 12, 4, 3);
    /* the training lines are what `pulse lm train` reads; its adapter goes to eval and recommend */
    CHECK(pulse("lm train --model tiny.gguf --data tr.jsonl --out a.gguf --batch 4 --max-steps 2 --lr 1e-2 "
                "--threads 1 --log - --checkpoint -") == 0);
    CHECK(
        pulse("eval --data syn --model tiny.gguf --lora a.gguf --rationales none --candidates-file te.jsonl "
              "--decoder rank") == 0);
    o = last_json();
    CHECK(o && cJSON_IsString(cJSON_GetObjectItem(o, "lora")) &&
          strcmp(cJSON_GetObjectItem(o, "lora")->valuestring, "a.gguf") == 0);
    cJSON_Delete(o);
    CHECK(pulse("recommend --data syn --model tiny.gguf --lora a.gguf --user 3 --candidates 4 --max-new 8") ==
          0);
    check_recommend("tiny recommend --lora", 4);
    /* SASRec on the same lists */
    CHECK(pulse("sasrec train --data syn --out s.bin --epochs 1 --dim 8 --threads 1") == 0);
    CHECK(pulse("sasrec eval --data syn --model s.bin --candidates-file te.jsonl") == 0);
    o = last_json();
    CHECK(o && num(o, "users") == 12 && num(o, "candidates") == 4);
    cJSON_Delete(o);
    CHECK(pulse("recommend --data syn --model tiny.gguf --user 3 --candidates 4 --max-new 8") == 0);
    check_recommend("tiny recommend --user", 4);
    CHECK(pulse("recommend --data syn --model tiny.gguf --history 'first thing; second thing' --candidates 5 "
                "--max-new 8") == 0);
    check_recommend("tiny recommend --history", 5);
    /* cross-domain: an adapter fine-tuned on syn, tested on another dataset's users, lists and titles */
    CHECK(pulse("lm train --model tiny.gguf --data tr.jsonl --out a.gguf --max-steps 1 --batch 4") == 0);
    CHECK(pulse("data synth --out syn2 --users 30 --items 50 --seed 9") == 0);
    CHECK(pulse("eval --test-data syn2 --model tiny.gguf --lora a.gguf --train-data syn --rationales none "
                "--candidates 4 --users 3 --seed 3 --decoder rank") == 0);
    check_eval("cross-domain rank", 3, "rank");
    o = last_json();
    const cJSON *td = o ? cJSON_GetObjectItem(o, "train_data") : NULL,
                *xd = o ? cJSON_GetObjectItem(o, "test_data") : NULL;
    CHECK(cJSON_IsString(td) && !strcmp(td->valuestring, "syn") && cJSON_IsString(xd) &&
          !strcmp(xd->valuestring, "syn2") && cJSON_IsTrue(cJSON_GetObjectItem(o, "cross_domain")));
    cJSON_Delete(o);
    CHECK(pulse("eval --data syn --model tiny.gguf --lora a.gguf --candidates 4 --users 3 --seed 3") == 0);
    o = last_json();
    CHECK(o && cJSON_IsFalse(cJSON_GetObjectItem(o, "cross_domain")));
    cJSON_Delete(o);
    /* without --lora the name only labels the row */
    CHECK(pulse("eval --data syn2 --model tiny.gguf --train-data syn --users 3 2>/dev/null") == 0);
    o = last_json();
    CHECK(o && cJSON_IsTrue(cJSON_GetObjectItem(o, "cross_domain")) && num(o, "users") == 3);
    cJSON_Delete(o);
    CHECK(
        pulse(
            "eval --data syn2 --model tiny.gguf --lora a.gguf --train-data nowhere --users 3 2>/dev/null") ==
        1);
    /* usage errors */
    CHECK(pulse("eval --data syn --model nope.gguf --users 2 2>/dev/null") == 2);
    CHECK(pulse("eval --data syn --model tiny.gguf --decoder beam 2>/dev/null") == 2);
    CHECK(pulse("sft build --data syn --rationales tot --out-train x.jsonl 2>/dev/null") == 2);
    CHECK(pulse("recommend --data syn --model tiny.gguf 2>/dev/null") == 2);
    CHECK(pulse("recommend --data syn --model tiny.gguf --user nobody 2>/dev/null") == 1);
    CHECK(pulse("eval --data syn --model pop --candidates-file tr.jsonl 2>/dev/null") ==
          1); /* no test lists */

    /* ---- Amazon Beauty with SmolLM2 ---- */
    char beauty[600], smol[600];
    snprintf(beauty, sizeof beauty, "%s/data/amazon-beauty", test_shared_dir());
    test_cache_path(smol, sizeof smol, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    struct stat sb;
    if (stat(beauty, &sb) != 0)
        test_skip_part("no %s", beauty);
    else {
        CHECK(pulse("sft build --data '%s' --rationales none --out-train btr.jsonl --out-test bte.jsonl "
                    "--users 10 "
                    "--seed 42 --candidates 5",
                    beauty) == 0);
        CHECK(pulse("eval --data '%s' --model pop --candidates-file bte.jsonl", beauty) == 0);
        check_eval("beauty pop", 10, NULL);
        if (stat(smol, &sb) != 0)
            test_skip_part("no %s", smol);
        else {
            CHECK(pulse("eval --data '%s' --model '%s' --candidates 5 --users 3 --seed 42 --decoder rank",
                        beauty, smol) == 0);
            check_eval("smol rank", 3, "rank");
            CHECK(pulse("eval --data '%s' --model '%s' --candidates 5 --users 3 --seed 42 --decoder generate "
                        "--max-new 16",
                        beauty, smol) == 0);
            check_eval("smol generate", 3, "generate");
            /* --store on the real model: the second run reads all 3 users back, same metrics */
            for (int k = 0; k < 2; k++) {
                CHECK(pulse("eval --data '%s' --model '%s' --candidates 5 --users 3 --seed 42 --decoder rank "
                            "--store smol.db",
                            beauty, smol) == 0);
                check_eval("smol rank --store", 3, "rank");
                cJSON *e = last_json();
                CHECK_MSG(e && num(e, "resumed") == 3 * k, "smol --store run %d: %.300s", k, out_buf);
                cJSON_Delete(e);
            }
            CHECK(pulse("recommend --data '%s' --model '%s' --user 13 --candidates 5 --max-new 16", beauty,
                        smol) == 0);
            check_recommend("smol recommend", 5);
            printf("%s\n", out_buf);
        }
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
