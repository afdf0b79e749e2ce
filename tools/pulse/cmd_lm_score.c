/* tools/pulse/cmd_lm_score.c — `pulse lm score -m GGUF --prompt STR --continuation STR [--truncate
 * left|right]`: log p(continuation | prompt) with the model; the last stdout line is {"logprob": ...,
 * "tokens": ...}. Several --continuation (each scored against the one prompt, sharing its prefill) print one
 * JSON line each; the last line is then the last pair's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/lm.h"
#include "pulse/kernels.h"

int cmd_lm_score(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *truncate = NULL;
    cli_strs conts = {0};
    int threads = 0;
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF model file"},
        {"--prompt|-p", CLI_STR, &prompt, "prompt text (BOS added as the model wants)"},
        {"--continuation|-c", CLI_STRS, &conts, "continuation text (tokenized on its own, no BOS)"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: PULSE_THREADS / all)"},
        {"--truncate", CLI_STR, &truncate,
         "left|right: cut a prompt too long for the model's context (oldest or last tokens; default: "
         "refuse)"},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                       "usage: pulse lm score -m MODEL.gguf --prompt STR --continuation STR", NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model || !prompt || conts.n == 0) {
        fprintf(stderr, "pulse lm score: --model, --prompt and --continuation are required (see --help)\n");
        free(conts.v);
        return 2;
    }
    static const char *const tn[] = {"left", "right"};
    static const int tv[] = {PULSE_LM_TRUNCATE_LEFT, PULSE_LM_TRUNCATE_RIGHT};
    int trunc = PULSE_LM_TRUNCATE_NONE;
    if (cli_choice("lm score", "--truncate", truncate, tn, tv, 2, &trunc)) {
        free(conts.v);
        return 2;
    }
    if (threads > 0) pulse_set_num_threads(threads);
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lm_ctx *c = NULL;
    const char **prompts = calloc((size_t)conts.n, sizeof(char *));
    double *lp = calloc((size_t)conts.n, sizeof(double));
    int *nt = calloc((size_t)conts.n, sizeof(int));
    int ret = 0;
    if (!prompts || !lp || !nt || pulse_lm_load(model, NULL, &m) ||
        pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok)) {
        ret = cli_fail("lm score");
        goto out;
    }
    {
        size_t longest = strlen(prompt);
        for (int i = 0; i < conts.n; i++) {
            prompts[i] = prompt;
            if (strlen(conts.v[i]) + strlen(prompt) > longest) longest = strlen(conts.v[i]) + strlen(prompt);
        }
        pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
        const size_t T = (size_t)pulse_lm_get_hparams(m)->n_ctx_train;
        cp.n_ctx = (int)(longest + 16 < T ? longest + 16 : T);
        cp.truncate = (pulse_lm_truncate)trunc;
        cp.n_seq_max = conts.n + 1 < 33 ? conts.n + 1 : 33;
        if (pulse_lm_ctx_new(m, &cp, &c) || pulse_lm_score_text(c, tok, prompts, conts.v, conts.n, lp, nt)) {
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
    for (int i = 0; i < conts.n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "logprob", lp[i]);
        cJSON_AddNumberToObject(o, "tokens", nt[i]);
        cli_print_json(o);
    }
out:
    free(prompts);
    free(lp);
    free(nt);
    free(conts.v);
    pulse_lm_ctx_free(c);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return ret;
}
