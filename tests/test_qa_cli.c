/* tests/test_qa_cli.c — `pulse qa eval / sp / score` as documented, on a hand-made HotpotQA-format file (four
 * questions, short paragraphs, one yes / no question, dataset text holding control-token text) with the tiny
 * synthetic model (byte-level tokenizer, ChatML template), so it runs in seconds:
 *   - the documented command on 3 questions writes official-format predictions (3 answers, 3 sp lists) and a
 *     last stdout line whose metrics hold em, f1, sp_em, sp_f1, joint_em, joint_f1 and questions = 3, the
 *     same numbers `pulse qa score` computes from the file it wrote;
 *   - the same command again resumes from its store: 3 skipped, nothing generated, the same predictions;
 *   - cot, --context all and a zero LoRA adapter (identical answers to the base model) run; tot's progress is
 *     one line counting questions;
 *   - `pulse qa sp` gives supporting facts alone with k chosen on the held-in questions;
 *   - a prompt too long for the model's context fails naming the question; malformed data fails naming the
 *     field; usage errors exit 2. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/lm.h"
#include "test.h"
#include "tiny_encoder.h"

static char out_buf[1 << 16];
static char tmp[] = "/tmp/pulse_qa_cliXXXXXX";
#define pulse(...) test_pulse_in(tmp, out_buf, sizeof out_buf, __VA_ARGS__)

static const char *DATA =
    "[{\"_id\": \"q1\", \"question\": \"Which city is the capital of Freedonia?\", \"answer\": "
    "\"Fredville\", "
    "\"type\": \"bridge\", \"supporting_facts\": [[\"Freedonia\", 0], [\"Fredville\", 1]], \"context\": "
    "[[\"Freedonia\", [\"Freedonia is a country whose capital is Fredville.\", \" It is small.\"]], "
    "[\"Fredville\", [\"Fredville is a city.\", \" Fredville lies on a river.\"]], [\"Other\", [\"Cats "
    "sleep.\"]]]},"
    " {\"_id\": \"q2\", \"question\": \"Are Ann and Bob both painters? <|im_end|>\", \"answer\": \"yes\", "
    "\"type\": \"comparison\", \"supporting_facts\": [[\"Ann\", 0], [\"Bob\", 0]], \"context\": [[\"Ann\", "
    "[\"Ann is a painter.\"]], [\"Bob\", [\"Bob is a painter too.\", \" <|im_start|>system\"]]]},"
    " {\"_id\": \"q3\", \"question\": \"Who wrote Blue Sky?\", \"answer\": \"Carol King\", "
    "\"supporting_facts\": "
    "[[\"Blue Sky\", 0]], \"context\": [[\"Blue Sky\", [\"Blue Sky is a song written by Carol King.\"]], "
    "[\"Green\", [\"Green is a colour.\"]]]},"
    " {\"_id\": \"q4\", \"question\": \"What year?\", \"answer\": \"1990\", \"supporting_facts\": [[\"Y\", "
    "0]], "
    "\"context\": [[\"Y\", [\"It happened in 1990.\"]]]}]";

static void write_file(const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *read_tmp(const char *name) {
    char p[600], *t = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return pulse_read_file(p, &t, &n) ? NULL : t;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int main(void) {
    CHECK(mkdtemp(tmp) != NULL);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    char model[600];
    snprintf(model, sizeof model, "%s/tiny.gguf", tmp);
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 1024}) == 0);
    write_file("q.json", DATA);

    /* the documented command on 3 questions */
    CHECK(
        pulse("qa eval --data q.json --model tiny.gguf --mode direct --sp bm25 --questions 3 --seed 1 --k 2 "
              "--out pred.json") == 0);
    cJSON *o = cJSON_Parse(test_last_line(out_buf));
    const cJSON *m = cJSON_GetObjectItem(o, "metrics");
    const char *keys[] = {"em", "f1", "sp_em", "sp_f1", "joint_em", "joint_f1"};
    for (int i = 0; i < 6; i++)
        CHECK_MSG(num(m, keys[i]) >= 0 && num(m, keys[i]) <= 1, "metrics.%s", keys[i]);
    CHECK(num(m, "questions") == 3 && num(o, "answered") == 3 && num(o, "skipped") == 0 && num(o, "k") == 2);
    CHECK(num(o, "gen_tokens") > 0);
    char *pred1 = read_tmp("pred.json");
    cJSON *pj = pred1 ? cJSON_Parse(pred1) : NULL;
    CHECK(pj && cJSON_GetArraySize(cJSON_GetObjectItem(pj, "answer")) == 3 &&
          cJSON_GetArraySize(cJSON_GetObjectItem(pj, "sp")) == 3);
    const cJSON *sp1 = cJSON_GetObjectItem(cJSON_GetObjectItem(pj, "sp"), "q1");
    CHECK(cJSON_GetArraySize(sp1) == 2 && cJSON_IsString(cJSON_GetArrayItem(cJSON_GetArrayItem(sp1, 0), 0)));
    cJSON_Delete(pj);
    /* the same numbers from the file */
    CHECK(pulse("qa score --data q.json --pred pred.json --questions 3") == 0);
    cJSON *s = cJSON_Parse(test_last_line(out_buf));
    const cJSON *ms = cJSON_GetObjectItem(s, "metrics");
    for (int i = 0; i < 6; i++) CHECK_NEAR(num(ms, keys[i]), num(m, keys[i]), 1e-12);
    cJSON_Delete(s);
    cJSON_Delete(o);

    /* again: resumed from the store, the same predictions */
    CHECK(
        pulse("qa eval --data q.json --model tiny.gguf --mode direct --sp bm25 --questions 3 --seed 1 --k 2 "
              "--out pred.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    CHECK(num(o, "skipped") == 3 && num(o, "answered") == 0 && num(o, "gen_tokens") == 0);
    cJSON_Delete(o);
    char *pred2 = read_tmp("pred.json");
    CHECK(pred1 && pred2 && !strcmp(pred1, pred2));
    free(pred2);

    /* a zero LoRA adapter (B = 0) loads and changes nothing */
    {
        pulse_lm *lm = NULL;
        pulse_lora *a = NULL;
        char ap[600];
        snprintf(ap, sizeof ap, "%s/zero.gguf", tmp);
        CHECK_OK(pulse_lm_load(model, NULL, &lm));
        if (lm) CHECK_OK(pulse_lora_new(lm, NULL, &a));
        if (a) CHECK_OK(pulse_lora_save(a, ap));
        pulse_lora_free(a);
        pulse_lm_free(lm);
    }
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --lora zero.gguf --questions 3 --seed 1 --k 2 "
                "--no-store --out lora.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    CHECK(o && cJSON_IsTrue(cJSON_GetObjectItem(o, "lora")) && num(o, "answered") == 3);
    cJSON_Delete(o);
    char *pred3 = read_tmp("lora.json");
    CHECK(pred1 && pred3 && !strcmp(pred1, pred3));
    free(pred3);
    free(pred1);

    /* cot, all paragraphs */
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --mode cot --max-new 12 --questions 3 --context all "
                "--out cot.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    CHECK(o && !strcmp(cJSON_GetObjectItem(o, "mode")->valuestring, "cot") && num(o, "answered") == 3);
    cJSON_Delete(o);

    /* Tree-of-Thought: likelihood scorer; thought scorer in a tiny random encoder, which also selects the
     * supporting facts */
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --mode tot --depth 2 --branching 2 --beam 1 "
                "--max-thought-tokens 6 --max-new 8 --questions 3 --k 2 --out tot.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    CHECK(o && !strcmp(cJSON_GetObjectItem(o, "mode")->valuestring, "tot") && num(o, "answered") == 3);
    CHECK(num(cJSON_GetObjectItem(o, "metrics"), "joint_f1") >= 0);
    cJSON_Delete(o);
    { /* progress on: one line for the search, counting questions (not the recommendation search's users) */
        char cmd[1200];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && PULSE_QUIET=0 '%s' qa eval --data q.json --model tiny.gguf --mode tot --depth 2 "
                 "--branching 2 --beam 1 --max-thought-tokens 6 --max-new 8 --questions 3 --k 2 --no-store "
                 "--out tot3.json 2>&1 >/dev/null",
                 tmp, PULSE_CLI);
        CHECK(test_run(cmd, out_buf, sizeof out_buf) == 0);
        CHECK(strstr(out_buf, "qa-tot search 3/3 q") != NULL);
        CHECK(strstr(out_buf, "users") == NULL);
    }
    char enc[600];
    snprintf(enc, sizeof enc, "%s/enc", tmp);
    CHECK(write_model(enc, 0, 16, 2, 2, 32, 64, 7));
    CHECK(
        pulse(
            "qa eval --data q.json --model tiny.gguf --mode tot --scorer thought --sp encoder --encoder enc "
            "--depth 2 --branching 2 --beam 1 --max-thought-tokens 6 --max-new 8 --questions 3 --k 2 "
            "--out tot2.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    CHECK(o && !strcmp(cJSON_GetObjectItem(o, "sp")->valuestring, "encoder") && num(o, "answered") == 3);
    cJSON_Delete(o);

    /* closed-book (the simplified format: no _id, context or facts), a seeded sample of 2 of 4 */
    write_file("cb.json", "[{\"question\": \"Who?\", \"answer\": \"Ann\"}, {\"question\": \"Is it?\", "
                          "\"answer\": \"yes\"}, {\"question\": \"When?\", \"answer\": \"1990\"}, "
                          "{\"question\": \"Where?\", \"answer\": \"Rome\"}]");
    CHECK(pulse("qa eval --data cb.json --model tiny.gguf --sample 2 --seed 3 --max-new 6 --no-store --out "
                "cb_pred.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    m = cJSON_GetObjectItem(o, "metrics");
    CHECK(o && num(o, "questions") == 2 && num(m, "questions") == 2 && num(m, "em") >= 0);
    CHECK(!cJSON_GetObjectItem(m, "sp_em") && !cJSON_GetObjectItem(m, "joint_f1"));
    cJSON_Delete(o);
    {
        char *cb = read_tmp("cb_pred.json");
        cJSON *cj = cb ? cJSON_Parse(cb) : NULL;
        CHECK(cj && cJSON_GetArraySize(cJSON_GetObjectItem(cj, "answer")) == 2 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cj, "sp")) == 0);
        cJSON_Delete(cj);
        free(cb);
    }

    /* supporting facts alone: k chosen on the first 2 questions, reported on the others */
    CHECK(pulse("qa sp --data q.json --held-in 2 --k-max 3 --out sp.json") == 0);
    o = cJSON_Parse(test_last_line(out_buf));
    m = cJSON_GetObjectItem(o, "metrics");
    CHECK(o && num(o, "held_in") == 2 && num(o, "k") >= 1 && num(m, "sp_f1") >= 0 &&
          num(m, "questions") == 4);
    CHECK(!cJSON_GetObjectItem(m, "em") && cJSON_GetObjectItem(o, "metrics_held_out"));
    cJSON_Delete(o);

    /* a prompt longer than the model's context (1024 tokens: bytes here) */
    {
        char *big = malloc(4000);
        int n = snprintf(big, 4000,
                         "[{\"_id\": \"long\", \"question\": \"Q?\", \"answer\": \"a\", "
                         "\"supporting_facts\": [], \"context\": [[\"T\", [\"");
        for (int i = 0; i < 1500; i++) big[n++] = 'x';
        snprintf(big + n, 4000 - (size_t)n, "\"]]]}]");
        write_file("long.json", big);
        free(big);
    }
    CHECK(pulse("qa eval --data long.json --model tiny.gguf --context all --no-store --out l.json 2>&1") ==
          1);
    CHECK(strstr(out_buf, "question long") && strstr(out_buf, "context of 1024 tokens"));
    /* malformed data, usage errors */
    write_file("bad.json", "[{\"question\": \"x\", \"context\": [[\"T\", [1]]]}]");
    CHECK(pulse("qa eval --data bad.json --model tiny.gguf --out b.json 2>&1") == 1);
    CHECK(strstr(out_buf, "context[0][1][0]") != NULL);
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --sp encoder --out b.json 2>&1") == 2);
    CHECK(strstr(out_buf, "--encoder") != NULL);
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --mode bogus --out b.json 2>/dev/null") == 2);
    CHECK(pulse("qa eval --data q.json --model tiny.gguf 2>/dev/null") == 2);
    CHECK(pulse("qa eval --data q.json --out b.json 2>/dev/null") == 2);
    CHECK(pulse("qa eval --data q.json --model tiny.gguf --lora missing.gguf --out b.json 2>/dev/null") == 1);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return test_summary();
}
