/* tests/test_lm_cli.c — the `pulse lm generate|score|tokenize|bench` contract: usage errors and unreadable
 * models fail cleanly; on SmolLM2 (when fetched) greedy generation continues "The capital of France is" with
 * " Paris", seeded sampling is reproducible, score prints {"logprob", "tokens"} as its last line and ranks
 * " Paris" above " London", several -p give one JSON line each (generate and score), prompts read from
 * --prompt-file equal the same text given with -p (and a prompt over argv's 128 KiB limit works), and bench
 * prints its JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"

int main(void) {
    static char out[1 << 16], out2[1 << 16];
    char cmd[2048];
    /* usage errors and a missing model */
    CHECK(test_run(PULSE_CLI " lm generate 2>/dev/null", out, sizeof out) == 2);
    CHECK(test_run(PULSE_CLI " lm score -m x.gguf --prompt a 2>/dev/null", out, sizeof out) == 2);
    CHECK(test_run(PULSE_CLI " lm generate -m /nonexistent.gguf -p hi 2>&1", out, sizeof out) == 1);
    CHECK(strstr(out, "nonexistent") != NULL);
    CHECK(test_run(PULSE_CLI " lm bench -m /nonexistent.gguf 2>/dev/null", out, sizeof out) == 1);

    char model[1024];
    test_cache_path(model, sizeof model, "models/SmolLM2-135M-Instruct.Q4_1.gguf");
    FILE *f = fopen(model, "rb");
    if (!f) {
        test_skip_part("SmolLM2 checks: %s not fetched (scripts/fetch-models.sh; PULSE_CACHE)", model);
        return test_summary();
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s lm generate -m '%s' -p 'The capital of France is' -n 4 --temp 0 -t 2 2>/dev/null", PULSE_CLI,
             model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    CHECK_MSG(!strncmp(out, " Paris", 6), "greedy continuation '%s'", out);

    snprintf(cmd, sizeof cmd,
             "%s lm generate -m '%s' -p 'Once upon a time' -n 12 --temp 0.9 --seed 7 2>/dev/null", PULSE_CLI,
             model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    CHECK(test_run(cmd, out2, sizeof out2) == 0);
    CHECK(strlen(out) > 1 && !strcmp(out, out2));

    /* --chat: the ChatML assistant answer ends at <|im_end|> (not printed) */
    snprintf(cmd, sizeof cmd, "%s lm generate -m '%s' -p 'Say hello.' -n 48 --temp 0 --chat 2>/dev/null",
             PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "<|im_end|>") == NULL && strlen(out) > 1);

    snprintf(
        cmd, sizeof cmd,
        "%s lm score -m '%s' --prompt 'The capital of France is' --continuation ' Paris' --continuation ' "
        "London' 2>/dev/null",
        PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    {
        char *nl = strchr(out, '\n');
        CHECK(nl != NULL);
        if (nl) {
            *nl = 0;
            cJSON *a = cJSON_Parse(out), *b = cJSON_Parse(test_last_line(nl + 1));
            CHECK(a && b);
            if (a && b) {
                double pa = cJSON_GetObjectItem(a, "logprob")->valuedouble;
                double pb = cJSON_GetObjectItem(b, "logprob")->valuedouble;
                CHECK(cJSON_GetObjectItem(a, "tokens")->valueint == 1);
                CHECK_MSG(pa < 0 && pa > pb, "logp(Paris) %g logp(London) %g", pa, pb);
            }
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
    }
    /* several prompts: one JSON line each, in prompt order, the same text as each prompt alone */
    snprintf(
        cmd, sizeof cmd,
        "%s lm generate -m '%s' -p 'The capital of France is' -p 'The capital of France is' -p 'One, two,' "
        "-n 4 --temp 0 2>/dev/null",
        PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    {
        int lines = 0;
        for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"), lines++) {
            cJSON *j = cJSON_Parse(l);
            CHECK_MSG(j != NULL, "not JSON: %s", l);
            if (!j) continue;
            CHECK(cJSON_GetObjectItem(j, "index") && cJSON_GetObjectItem(j, "index")->valueint == lines);
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
            CHECK(t != NULL && cJSON_GetObjectItem(j, "tokens")->valueint == 4);
            if (t && lines < 2) CHECK_MSG(!strncmp(t, " Paris", 6), "prompt %d: '%s'", lines, t);
            cJSON_Delete(j);
        }
        CHECK_MSG(lines == 3, "%d JSON lines for 3 prompts", lines);
    }
    /* prompts from files: the same as -p; one trailing newline dropped */
    {
        char dir[] = "/tmp/pulse_lm_cliXXXXXX", pf[256], big[256];
        CHECK(mkdtemp(dir) != NULL);
        snprintf(pf, sizeof pf, "%s/p.txt", dir);
        snprintf(big, sizeof big, "%s/big.txt", dir);
        FILE *w = fopen(pf, "w");
        if (w) fputs("The capital of France is\n", w), fclose(w);
        snprintf(cmd, sizeof cmd, "%s lm generate -m '%s' --prompt-file '%s' -n 4 --temp 0 2>/dev/null",
                 PULSE_CLI, model, pf);
        CHECK(test_run(cmd, out, sizeof out) == 0);
        CHECK_MSG(!strncmp(out, " Paris", 6), "--prompt-file continuation '%s'", out);
        snprintf(cmd, sizeof cmd, "%s lm tokenize -m '%s' --prompt-file '%s'", PULSE_CLI, model, pf);
        CHECK(test_run(cmd, out, sizeof out) == 0);
        snprintf(cmd, sizeof cmd, "%s lm tokenize -m '%s' -p 'The capital of France is'", PULSE_CLI, model);
        CHECK(test_run(cmd, out2, sizeof out2) == 0);
        CHECK_MSG(out[0] && !strcmp(out, out2), "file '%s' vs -p '%s'", out, out2);
        snprintf(cmd, sizeof cmd,
                 "%s lm score -m '%s' --prompt-file '%s' --continuation ' Paris' --continuation ' London' "
                 "2>/dev/null",
                 PULSE_CLI, model, pf);
        CHECK(test_run(cmd, out, sizeof out) == 0);
        CHECK(strstr(out, "\"continuation\":1") != NULL);
        /* 200 KiB of text: more than one argv string may hold (128 KiB), fine from a file */
        w = fopen(big, "w");
        if (w) {
            for (int i = 0; i < 200 * 1024 / 8; i++) fputs("a b c d ", w);
            fclose(w);
        }
        snprintf(cmd, sizeof cmd, "%s lm tokenize -m '%s' --prompt-file '%s' | wc -w", PULSE_CLI, model, big);
        CHECK(test_run(cmd, out, sizeof out) == 0);
        CHECK_MSG(atoi(out) >= 200 * 1024 / 8, "%s tokens from 200 KiB", out);
        snprintf(cmd, sizeof cmd, "%s lm tokenize -m '%s' --prompt-file '%s' 2>&1", PULSE_CLI, model, dir);
        CHECK(test_run(cmd, out, sizeof out) == 2 && strstr(out, "is a directory"));
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    /* score: several prompts with one continuation, pairs in order */
    snprintf(
        cmd, sizeof cmd,
        "%s lm score -m '%s' -p 'The capital of France is' -p 'The capital of England is' --continuation "
        "' Paris' 2>/dev/null",
        PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    {
        char *nl = strchr(out, '\n');
        cJSON *a = nl ? (*nl = 0, cJSON_Parse(out)) : NULL,
              *b = nl ? cJSON_Parse(test_last_line(nl + 1)) : NULL;
        CHECK(a && b);
        if (a && b) {
            CHECK(cJSON_GetObjectItem(a, "prompt")->valueint == 0 &&
                  cJSON_GetObjectItem(b, "prompt")->valueint == 1);
            CHECK(cJSON_GetObjectItem(a, "logprob")->valuedouble >
                  cJSON_GetObjectItem(b, "logprob")->valuedouble);
        }
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
    snprintf(cmd, sizeof cmd,
             "%s lm score -m '%s' -p a -p b --continuation x --continuation y --continuation z 2>&1",
             PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 2 && strstr(out, "2 prompts and 3 continuations"));
    snprintf(cmd, sizeof cmd,
             "%s lm bench -m '%s' --prompt-tokens 16 -n 4 --parallel 4 --parallel-prompt 4 2>/dev/null",
             PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    {
        cJSON *j = cJSON_Parse(test_last_line(out));
        CHECK(j != NULL);
        if (j) {
            CHECK(cJSON_GetObjectItem(j, "decode_tok_s")->valuedouble > 0);
            CHECK(cJSON_GetObjectItem(j, "batched_tok_s")->valuedouble > 0);
        }
        cJSON_Delete(j);
    }
    return test_summary();
}
