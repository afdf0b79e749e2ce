/* tools/pulse/cmd_lm_generate.c — `pulse lm generate -m GGUF -p STR [-n N] [--temp T --top-k K --top-p P
 * --repeat-penalty R --seed S] [--chat [--system STR]] [--stop STR]... [--truncate left|right]
 * [--lora ADAPTER.gguf [--lora-scale S]]`: the
 * continuation text on stdout (raw prompt unless --chat; --temp 0 is greedy). Prompts come from -p and
 * --prompt-file (argv is limited to 128 KiB). Several prompts run together as one continuously batched job
 * and print one JSON line each, {"index","text","tokens"} in prompt order (--json: also for one prompt).
 * Timing on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/lm.h"
#include "pulse/kernels.h"

int cmd_lm_generate(int argc, char **argv) {
    const char *model = NULL, *system = NULL, *truncate = NULL, *lora_path = NULL;
    cli_strs prompts = {0}, stops = {0}, files = {0};
    char **owned = NULL;
    int n = 64, chat = 0, top_k = 40, seed = 42, threads = 0, n_ctx = 0, no_eog = 0, json = 0;
    float temp = 0.8f, top_p = 0.95f, rep = 1.0f, lora_scale = 1.0f;
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF model file"},
        {"--prompt|-p", CLI_STRS, &prompts, "prompt text"},
        {"--prompt-file", CLI_STRS, &files,
         "a file holding one prompt ('-' = stdin; one trailing newline dropped)"},
        {"--n-predict|-n", CLI_INT, &n,
         "max new tokens (64; with the prompt at most the model's trained context)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--temp", CLI_FLOAT, &temp, "temperature; 0 = greedy (0.8)", CLI_RANGE(0, 1000)},
        {"--top-k", CLI_INT, &top_k, "top-k, 0 = off (40)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--top-p", CLI_FLOAT, &top_p, "top-p, 1 = off (0.95)", CLI_RANGE(0, 1)},
        {"--repeat-penalty", CLI_FLOAT, &rep, "repetition penalty over the last 64 tokens, 1 = off (1)",
         CLI_RANGE_OPEN_LO(0, 1000)},
        {"--seed|-s", CLI_INT, &seed, "sampling seed (42)"},
        {"--chat", CLI_FLAG, &chat, "wrap the prompt as a user turn in the model's chat format"},
        {"--system", CLI_STR, &system, "system message (with --chat)"},
        {"--stop", CLI_STRS, &stops, "stop string"},
        {"--ignore-eos", CLI_FLAG, &no_eog, "do not stop at end-of-generation tokens"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: PULSE_THREADS / all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--ctx-size|-c", CLI_INT, &n_ctx, "max tokens per sequence (default 0: prompt + n)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--truncate", CLI_STR, &truncate,
         "left|right: cut a prompt too long for the model's context (oldest or last tokens; default: "
         "refuse)"},
        {"--json", CLI_FLAG, &json, "one JSON line per prompt also for a single prompt"},
        {"--lora", CLI_STR, &lora_path, "LoRA adapter (llama.cpp's GGUF LoRA format)"},
        {"--lora-scale", CLI_FLOAT, &lora_scale, "multiplier of the adapter's update (1)",
         CLI_RANGE(-1000, 1000)},
    };
    int rc =
        cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                  "usage: pulse lm generate -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--seed S] [--chat]",
                  NULL, 0, NULL);
    static const char *const tn[] = {"left", "right"};
    static const int tv[] = {PULSE_LM_TRUNCATE_LEFT, PULSE_LM_TRUNCATE_RIGHT};
    int trunc = PULSE_LM_TRUNCATE_NONE;
    if (rc == 0 && cli_choice("lm generate", "--truncate", truncate, tn, tv, 2, &trunc)) rc = 2;
    if (rc == 0 && cli_texts_from_files("lm generate", "--prompt-file", &files, &prompts, &owned)) rc = 2;
    if (rc == 0 && (!model || prompts.n == 0)) {
        fprintf(stderr,
                "pulse lm generate: --model and --prompt (or --prompt-file) are required (see --help)\n");
        rc = 2;
    }
    if (rc) {
        cli_free_owned(owned, files.n);
        free(files.v), free(prompts.v), free(stops.v);
        return rc == 1 ? 0 : 2;
    }
    cli_set_threads("lm generate", threads);
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lm_ctx *c = NULL;
    pulse_lora *lora = NULL;
    char **outs = calloc((size_t)prompts.n, sizeof(char *));
    int *ntok = calloc((size_t)prompts.n, sizeof(int));
    int ret = 0;
    if (!outs || !ntok || pulse_lm_load(model, NULL, &m) ||
        pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok)) {
        ret = cli_fail("lm generate");
        goto out;
    }
    {
        pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
        cp.n_seq_max = prompts.n < 32 ? prompts.n : 32;
        cp.n_ctx = n_ctx > 0 ? n_ctx : 0;
        cp.truncate = (pulse_lm_truncate)trunc;
        if (cp.n_ctx == 0) {
            /* room for the longest prompt (chat markup included) and the new tokens, within the model's
             * trained context (64-bit: n may be INT_MAX) */
            size_t longest = 0;
            for (int i = 0; i < prompts.n; i++) {
                size_t l = strlen(prompts.v[i]) + (system ? strlen(system) : 0);
                if (l > longest) longest = l;
            }
            const int64_t T = pulse_lm_get_hparams(m)->n_ctx_train;
            const int64_t want =
                (int64_t)(longest + 256 < 1000000 ? longest + 256 : 1000000) + n; /* no overflow */
            cp.n_ctx = (int)(want < T ? want : T);
        }
        if (pulse_lm_ctx_new(m, &cp, &c) || (lora_path && (pulse_lora_load(m, lora_path, &lora) ||
                                                           pulse_lm_ctx_set_lora(c, lora, lora_scale)))) {
            ret = cli_fail("lm generate");
            goto out;
        }
    }
    pulse_lm_gen_params gp = pulse_lm_gen_default_params();
    gp.max_new_tokens = n;
    gp.sampler.temp = temp;
    gp.sampler.top_k = top_k;
    gp.sampler.top_p = top_p;
    gp.sampler.repeat_penalty = rep;
    gp.sampler.seed = (uint64_t)seed;
    gp.stop = stops.v;
    gp.n_stop = stops.n;
    gp.stop_at_eog = !no_eog;
    double t0 = pulse_now();
    if (pulse_lm_generate_text(c, tok, prompts.v, prompts.n, chat, system, &gp, outs, ntok)) {
        ret = cli_fail("lm generate");
        goto out;
    }
    double dt = pulse_now() - t0;
    if (pulse_lm_ctx_n_truncated(c) > 0)
        fprintf(stderr,
                "pulse lm generate: prompts truncated on the %s: %d tokens dropped to fit the model's "
                "context of %d "
                "tokens\n",
                truncate, pulse_lm_ctx_n_truncated(c), pulse_lm_get_hparams(m)->n_ctx_train);
    int total = 0;
    for (int i = 0; i < prompts.n; i++) {
        if (prompts.n == 1 && !json) {
            printf("%s\n", outs[i]);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", i);
            cJSON_AddStringToObject(o, "text", outs[i]);
            cJSON_AddNumberToObject(o, "tokens", ntok[i]);
            cli_print_json(o);
        }
        total += ntok[i];
    }
    fflush(stdout);
    fprintf(stderr, "generated %d tokens in %.2f s (%.1f tok/s)\n", total, dt, dt > 0 ? total / dt : 0.0);
out:
    for (int i = 0; outs && i < prompts.n; i++) free(outs[i]);
    free(outs);
    free(ntok);
    free(prompts.v);
    free(stops.v);
    cli_free_owned(owned, files.n);
    free(files.v);
    pulse_lm_ctx_free(c);
    pulse_lora_free(lora);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return ret;
}
