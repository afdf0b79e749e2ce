/* tests/test_lm_parity_qwen.c — parity of the qwen2 path with llama.cpp on the real Qwen2.5-Coder-Instruct
 * files (0.5B: q5_0 / q8_0 / q4_K / q6_K with a q8_0 output head; 1.5B: q4_K / q6_K), the check of
 * tests/lm_parity.h held to exactness: teacher-forced top-1 agreement 1.0 with |delta log-prob| within the
 * bars of llama.cpp's own sums (the fixture keeps 6 decimals: the max reported is rounding), and all 4 greedy
 * continuations ("The capital of France is", two others, one chat turn in the GGUF's template) identical for
 * their 64 tokens. Kept light for CI: 0.5B 12 documents cut to 256 tokens, 1.5B cut to 128
 * (scripts/lm_fixtures.py qwen05 | qwen15). A file that is not fetched (scripts/fetch-models.sh qwen05 |
 * qwen15) is skipped. */
#include "lm_parity.h"

int main(int argc, char **argv) {
    pulse_progress_set_quiet(1);
    const char *only = argc > 1 ? argv[1] : NULL; /* test_lm_parity_qwen [qwen05|qwen15 [CAP]] */
    g_cap = argc > 2 ? atoi(argv[2]) : 0;
    static const parity_cfg cfgs[] = {
        {"qwen05", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 4, 1900, 1.0, 4, 64},
        {"qwen15", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 4, 1200, 1.0, 4, 64}};
    for (int i = 0; i < 2; i++)
        if (!only || !strcmp(only, cfgs[i].name)) parity(&cfgs[i]);
    return test_summary();
}
