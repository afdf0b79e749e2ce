/* tools/pulse/main.c — the `pulse` entry point: the table of top-level commands.
 * Each command lives in its own tools/pulse/cmd_<name>.c and is declared weak here, so a stage's command
 * appears in the table as soon as its file is in the build (no shared edit point between stages). */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "pulse/core.h"
#include "pulse/kernels.h"

#define PULSE_CMD(name) extern int cmd_##name(int argc, char **argv) __attribute__((weak));
PULSE_CMD(data)
PULSE_CMD(sasrec)
PULSE_CMD(lm)
PULSE_CMD(encode)
PULSE_CMD(thought)
PULSE_CMD(rationale)
PULSE_CMD(sft)
PULSE_CMD(recommend)
PULSE_CMD(eval)
PULSE_CMD(run)
PULSE_CMD(info)
#undef PULSE_CMD

int main(int argc, char **argv) {
    const cli_cmd cmds[] = {
        {"data", cmd_data, "dataset statistics, splits and conversion"},
        {"sasrec", cmd_sasrec, "train / evaluate SASRec, user vectors, similar users"},
        {"lm", cmd_lm, "small language models (GGUF): info, tokenize, generate, score, bench"},
        {"encode", cmd_encode, "embed texts with a BERT-family encoder"},
        {"thought", cmd_thought, "the Thought Space: train, score, plot"},
        {"rationale", cmd_rationale, "Phase 1 rationales and Phase 2 Tree-of-Thought search"},
        {"sft", cmd_sft, "LoRA fine-tuning of the SLM on rationales"},
        {"recommend", cmd_recommend, "recommend with a fine-tuned SLM"},
        {"eval", cmd_eval, "evaluate recommenders under the shared protocols"},
        {"run", cmd_run, "the whole PULSE pipeline on a dataset"},
        {"info", cmd_info, "the CPU and the level each product family runs at"},
    };
    /* fp32 products at the CPU's level: OpenBLAS moved up from a core below it, unless the user chose one */
    pulse_blas_params bp = pulse_blas_default_params();
    bp.explicit_core = getenv("OPENBLAS_CORETYPE");
    if (pulse_blas_select(&bp, NULL))
        fprintf(stderr, "pulse: warning: fp32 products stay below this CPU's level: %s\n",
                pulse_last_error());
    const char *t = getenv("PULSE_THREADS");
    if (t) pulse_set_num_threads(atoi(t));
    return cli_dispatch("pulse", argc, argv, cmds, (int)(sizeof cmds / sizeof cmds[0]));
}
