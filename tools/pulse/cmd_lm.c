/* tools/pulse/cmd_lm.c — `pulse lm <sub>`: the table of language-model sub-commands. Each sub-command lives
 * in tools/pulse/cmd_lm_<name>.c (declared weak here, so each appears as soon as its file is built). */
#include "cli.h"

#define LM_CMD(name) extern int cmd_lm_##name(int argc, char **argv) __attribute__((weak));
LM_CMD(info)
LM_CMD(tokenize)
LM_CMD(generate)
LM_CMD(score)
LM_CMD(bench)
#undef LM_CMD

int cmd_lm(int argc, char **argv) {
    const cli_cmd cmds[] = {
        {"info", cmd_lm_info, "architecture, hyper-parameters, tensor types, vocabulary of a GGUF file"},
        {"tokenize", cmd_lm_tokenize, "text -> token ids with the GGUF's tokenizer"},
        {"generate", cmd_lm_generate, "generate a continuation (greedy or sampled)"},
        {"score", cmd_lm_score, "log-probability of a continuation given a prompt"},
        {"bench", cmd_lm_bench, "prefill / decode / batched generation throughput"},
    };
    return cli_dispatch("pulse lm", argc, argv, cmds, (int)(sizeof cmds / sizeof cmds[0]));
}
