/* tools/pulse/cmd_lm_score.c — `pulse lm score -m GGUF --prompt STR --continuation STR [--truncate
 * left|right] [--lora ADAPTER.gguf [--lora-scale S]]`: log p(continuation | prompt) with the model; each line
 * is {"logprob": ..., "tokens": ...}. Prompts come from -p and --prompt-file, continuations from
 * --continuation and --continuation-file (argv is limited to 128 KiB). Pairs: one prompt with each
 * continuation (sharing its prefill), each prompt with one continuation, or prompt i with continuation i; one
 * JSON line per pair in order, with "prompt" and "continuation" indices when there are several. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/lm.h"
#include "pulse/kernels.h"

int cmd_lm_score(int argc, char **argv) {
    const char *model = NULL, *truncate = NULL, *lora_path = NULL;
    float lora_scale = 1.0f;
    cli_strs prompts = {0}, conts = {0}, pfiles = {0}, cfiles = {0};
    char **pown = NULL, **cown = NULL;
    int threads = 0;
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF model file"},
        {"--prompt|-p", CLI_STRS, &prompts, "prompt text (BOS added as the model wants)"},
        {"--prompt-file", CLI_STRS, &pfiles,
         "a file holding one prompt ('-' = stdin; one trailing newline dropped)"},
        {"--continuation", CLI_STRS, &conts, "continuation text (tokenized on its own, no BOS)"},
        {"--continuation-file", CLI_STRS, &cfiles,
         "a file holding one continuation (one trailing newline dropped)"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: PULSE_THREADS / all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--truncate", CLI_STR, &truncate,
         "left|right: cut a prompt too long for the model's context (oldest or last tokens; default: "
         "refuse)"},
        {"--lora", CLI_STR, &lora_path, "LoRA adapter (llama.cpp's GGUF LoRA format)"},
        {"--lora-scale", CLI_FLOAT, &lora_scale, "multiplier of the adapter's update (1)",
         CLI_RANGE(-1000, 1000)},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                       "usage: pulse lm score -m MODEL.gguf --prompt STR --continuation STR", NULL, 0, NULL);
    if (rc == 0 && (cli_texts_from_files("lm score", "--prompt-file", &pfiles, &prompts, &pown) ||
                    cli_texts_from_files("lm score", "--continuation-file", &cfiles, &conts, &cown)))
        rc = 2;
    if (rc == 0 && (!model || prompts.n == 0 || conts.n == 0)) {
        fprintf(stderr, "pulse lm score: --model, --prompt and --continuation are required (see --help)\n");
        rc = 2;
    }
    if (rc == 0 && prompts.n > 1 && conts.n > 1 && prompts.n != conts.n) {
        fprintf(
            stderr,
            "pulse lm score: %d prompts and %d continuations: give one prompt, one continuation, or as many "
            "of each (pairs in order)\n",
            prompts.n, conts.n);
        rc = 2;
    }
    static const char *const tn[] = {"left", "right"};
    static const int tv[] = {PULSE_LM_TRUNCATE_LEFT, PULSE_LM_TRUNCATE_RIGHT};
    int trunc = PULSE_LM_TRUNCATE_NONE;
    if (rc == 0 && cli_choice("lm score", "--truncate", truncate, tn, tv, 2, &trunc)) rc = 2;
    if (rc) {
        cli_free_owned(pown, pfiles.n), cli_free_owned(cown, cfiles.n);
        free(prompts.v), free(conts.v), free(pfiles.v), free(cfiles.v);
        return rc == 1 ? 0 : 2;
    }
    cli_set_threads("lm score", threads);
    int n = prompts.n > conts.n ? prompts.n : conts.n;
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lm_ctx *c = NULL;
    pulse_lora *lora = NULL;
    const char **pv = calloc((size_t)n, sizeof(char *)), **cv = calloc((size_t)n, sizeof(char *));
    double *lp = calloc((size_t)n, sizeof(double));
    int *nt = calloc((size_t)n, sizeof(int));
    int ret = 0;
    if (!pv || !cv || !lp || !nt || pulse_lm_load(model, NULL, &m) ||
        pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok)) {
        ret = cli_fail("lm score");
        goto out;
    }
    {
        size_t longest = 0;
        for (int i = 0; i < n; i++) {
            pv[i] = prompts.v[prompts.n == 1 ? 0 : i];
            cv[i] = conts.v[conts.n == 1 ? 0 : i];
            size_t l = strlen(pv[i]) + strlen(cv[i]);
            if (l > longest) longest = l;
        }
        pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
        const size_t T = (size_t)pulse_lm_get_hparams(m)->n_ctx_train;
        const size_t want = (longest < 1000000 ? longest : 1000000) + 16;
        cp.n_ctx = (int)(want < T ? want : T);
        cp.truncate = (pulse_lm_truncate)trunc;
        cp.n_seq_max = n + 1 < 33 ? n + 1 : 33;
        if (pulse_lm_ctx_new(m, &cp, &c) ||
            (lora_path &&
             (pulse_lora_load(m, lora_path, &lora) || pulse_lm_ctx_set_lora(c, lora, lora_scale))) ||
            pulse_lm_score_text(c, tok, pv, cv, n, lp, nt)) {
            ret = cli_fail("lm score");
            goto out;
        }
    }
    if (pulse_lm_ctx_n_truncated(c) > 0)
        fprintf(
            stderr,
            "pulse lm score: prompts truncated on the %s: %d tokens dropped to fit the model's context of %d "
            "tokens\n",
            truncate, pulse_lm_ctx_n_truncated(c), pulse_lm_get_hparams(m)->n_ctx_train);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "logprob", lp[i]);
        cJSON_AddNumberToObject(o, "tokens", nt[i]);
        if (prompts.n > 1) cJSON_AddNumberToObject(o, "prompt", i);
        if (conts.n > 1) cJSON_AddNumberToObject(o, "continuation", i);
        cli_print_json(o);
    }
out:
    free(pv), free(cv), free(lp), free(nt);
    cli_free_owned(pown, pfiles.n), cli_free_owned(cown, cfiles.n);
    free(prompts.v), free(conts.v), free(pfiles.v), free(cfiles.v);
    pulse_lm_ctx_free(c);
    pulse_lora_free(lora);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return ret;
}
