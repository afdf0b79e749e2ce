/* tools/pulse/cmd_lm_bench.c — `pulse lm bench -m GGUF [-t 2] [--prompt-tokens 128] [-n 64] [--parallel
 * 32]`: prefill tok/s, decode tok/s (batch 1) and generation tok/s with --parallel sequences decoded
 * together, peak RSS; the last stdout line is one JSON object. */
#include <stdio.h>

#include "cli.h"
#include "pulse/lm.h"
#include "pulse/kernels.h"

int cmd_lm_bench(int argc, char **argv) {
    const char *model = NULL;
    int threads = 2;
    pulse_lm_bench_params bp = pulse_lm_bench_default_params();
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF model file"},
        {"--threads|-t", CLI_INT, &threads, "threads (2)", CLI_RANGE(1, CLI_INT_MAX)},
        {"--prompt-tokens", CLI_INT, &bp.n_prompt, "prefill length (128)", CLI_RANGE(1, 1000000)},
        {"--n-predict|--gen|-n", CLI_INT, &bp.n_gen, "decode steps (64)", CLI_RANGE(1, 1000000)},
        {"--parallel", CLI_INT, &bp.n_parallel, "sequences decoded together (32)", CLI_RANGE(1, 4096)},
        {"--parallel-prompt", CLI_INT, &bp.n_prompt_parallel, "prompt tokens of each parallel sequence (32)",
         CLI_RANGE(1, 1000000)},
    };
    int rc =
        cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                  "usage: pulse lm bench -m MODEL.gguf [-t 2] [--prompt-tokens 128] [-n 64] [--parallel 32]",
                  NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model) {
        fprintf(stderr, "pulse lm bench: --model is required (see --help)\n");
        return 2;
    }
    cli_set_threads("lm bench", threads);
    threads = pulse_get_num_threads(); /* as clamped */
    pulse_lm *m = NULL;
    if (pulse_lm_load(model, NULL, &m)) return cli_fail("lm bench");
    pulse_lm_bench_result r;
    if (pulse_lm_bench(m, &bp, &r)) {
        pulse_lm_free(m);
        return cli_fail("lm bench");
    }
    const pulse_lm_hparams *hp = pulse_lm_get_hparams(m);
    printf("model %s (%s), %d threads\n", model, hp->arch_name, threads);
    printf("prefill %d tokens:           %8.1f tok/s\n", bp.n_prompt, r.prefill_tok_s);
    printf("decode batch 1:               %8.1f tok/s\n", r.decode_tok_s);
    printf("generation, %d sequences:     %8.1f tok/s (prompts %.1f tok/s)\n", bp.n_parallel, r.batched_tok_s,
           r.batched_prefill_tok_s);
    printf("peak RSS %.1f MB (file %.1f MB + KV %.1f MB)\n", r.peak_rss / 1e6, r.file_bytes / 1e6,
           r.kv_bytes / 1e6);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "arch", hp->arch_name);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "prefill_tok_s", r.prefill_tok_s);
    cJSON_AddNumberToObject(o, "decode_tok_s", r.decode_tok_s);
    cJSON_AddNumberToObject(o, "batched_tok_s", r.batched_tok_s);
    cJSON_AddNumberToObject(o, "n_parallel", bp.n_parallel);
    cJSON_AddNumberToObject(o, "peak_rss_mb", r.peak_rss / 1e6);
    cJSON_AddNumberToObject(o, "file_mb", r.file_bytes / 1e6);
    cJSON_AddNumberToObject(o, "kv_mb", r.kv_bytes / 1e6);
    cli_print_json(o);
    pulse_lm_free(m);
    return 0;
}
