/* tests/test_lm_cli.c — the `pulse lm generate|score|bench` contract: usage errors and unreadable models
 * fail cleanly; on SmolLM2 (when fetched) greedy generation continues "The capital of France is" with
 * " Paris", seeded sampling is reproducible, score prints {"logprob", "tokens"} as its last line and ranks
 * " Paris" above " London", and bench prints its JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"

/* Run cmd, capture stdout (up to cap-1 bytes) into out; returns the exit status. */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *last_line(char *s) {
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\n') s[--n] = 0;
    char *l = strrchr(s, '\n');
    return l ? l + 1 : s;
}

int main(void) {
    static char out[1 << 16], out2[1 << 16];
    char cmd[2048];
    /* usage errors and a missing model */
    CHECK(run(PULSE_CLI " lm generate 2>/dev/null", out, sizeof out) == 2);
    CHECK(run(PULSE_CLI " lm score -m x.gguf --prompt a 2>/dev/null", out, sizeof out) == 2);
    CHECK(run(PULSE_CLI " lm generate -m /nonexistent.gguf -p hi 2>&1", out, sizeof out) == 1);
    CHECK(strstr(out, "nonexistent") != NULL);
    CHECK(run(PULSE_CLI " lm bench -m /nonexistent.gguf 2>/dev/null", out, sizeof out) == 1);

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
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_MSG(!strncmp(out, " Paris", 6), "greedy continuation '%s'", out);

    snprintf(cmd, sizeof cmd,
             "%s lm generate -m '%s' -p 'Once upon a time' -n 12 --temp 0.9 --seed 7 2>/dev/null", PULSE_CLI,
             model);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK(run(cmd, out2, sizeof out2) == 0);
    CHECK(strlen(out) > 1 && !strcmp(out, out2));

    /* --chat: the ChatML assistant answer ends at <|im_end|> (not printed) */
    snprintf(cmd, sizeof cmd, "%s lm generate -m '%s' -p 'Say hello.' -n 48 --temp 0 --chat 2>/dev/null",
             PULSE_CLI, model);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "<|im_end|>") == NULL && strlen(out) > 1);

    snprintf(
        cmd, sizeof cmd,
        "%s lm score -m '%s' --prompt 'The capital of France is' --continuation ' Paris' --continuation ' "
        "London' 2>/dev/null",
        PULSE_CLI, model);
    CHECK(run(cmd, out, sizeof out) == 0);
    {
        char *nl = strchr(out, '\n');
        CHECK(nl != NULL);
        if (nl) {
            *nl = 0;
            cJSON *a = cJSON_Parse(out), *b = cJSON_Parse(last_line(nl + 1));
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
    snprintf(cmd, sizeof cmd, "%s lm bench -m '%s' -p 16 -n 4 --parallel 4 --parallel-prompt 4 2>/dev/null",
             PULSE_CLI, model);
    CHECK(run(cmd, out, sizeof out) == 0);
    {
        cJSON *j = cJSON_Parse(last_line(out));
        CHECK(j != NULL);
        if (j) {
            CHECK(cJSON_GetObjectItem(j, "decode_tok_s")->valuedouble > 0);
            CHECK(cJSON_GetObjectItem(j, "batched_tok_s")->valuedouble > 0);
        }
        cJSON_Delete(j);
    }
    return test_summary();
}
