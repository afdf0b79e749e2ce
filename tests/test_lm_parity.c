/* tests/test_lm_parity.c — parity of the decoder runtime with llama.cpp on the real models (SmolLM2-135M
 * Q4_1, Gemma-3-270M Q4_K_M; the check itself is tests/lm_parity.h): teacher-forced over the fixture's
 * documents (>= 2,000 positions per model), top-1 agreement >= 99% and mean |delta log-prob of the reference
 * next token| <= 0.02; greedy 64-token continuations of 5 prompts compared token by token. Reference numbers:
 * tests/fixtures/lm_parity_<name>.txt from scripts/lm_fixtures.py (llama-cpp-python). Skips a model that is
 * not fetched (scripts/fetch-models.sh) but always checks that the fixture is well-formed. The architectures
 * themselves are always checked on synthetic models by test_lm_synth. */
#include "lm_parity.h"

int main(int argc, char **argv) {
    pulse_progress_set_quiet(1);
    const char *only = argc > 1 ? argv[1] : NULL; /* test_lm_parity [smollm2|gemma3 [CAP]] */
    g_cap = argc > 2 ? atoi(argv[2]) : 0;
    static const parity_cfg cfgs[] = {
        {"smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 5, 2000, MIN_TOP1, MIN_GREEDY_FULL, MIN_GREEDY_PREFIX},
        {"gemma3", "gemma-3-270m-q4_k_m.gguf", 5, 2000, MIN_TOP1, MIN_GREEDY_FULL, MIN_GREEDY_PREFIX}};
    for (int i = 0; i < 2; i++)
        if (!only || !strcmp(only, cfgs[i].name)) parity(&cfgs[i]);
    return test_summary();
}
