/* tests/test_lm_cli_qwen.c — `pulse lm generate --chat` on Qwen2.5-Coder-1.5B-Instruct, the project's
 * rationale teacher: asked "What is the capital of France?" in the GGUF's chat template (ChatML with Qwen's
 * default system message) at temperature 0, it answers with "Paris" and stops at <|im_end|> (not printed).
 * Skipped (77) when the file is not fetched (scripts/fetch-models.sh qwen15). */
#include <stdio.h>
#include <string.h>

#include "test.h"

int main(void) {
    static char out[1 << 16];
    char model[1024], cmd[2048];
    test_cache_path(model, sizeof model, "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    FILE *f = fopen(model, "rb");
    if (!f) test_skip("Qwen2.5 1.5B: %s not fetched (scripts/fetch-models.sh qwen15; PULSE_CACHE)", model);
    fclose(f);
    snprintf(
        cmd, sizeof cmd,
        "%s lm generate -m '%s' --chat -p 'What is the capital of France?' --temp 0 -n 24 -t 2 2>/dev/null",
        PULSE_CLI, model);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    printf("answer: %s\n", out);
    CHECK_MSG(strstr(out, "Paris") != NULL, "answer '%s'", out);
    CHECK(strstr(out, "<|im_end|>") == NULL && strstr(out, "<|im_start|>") == NULL);
    return test_summary();
}
