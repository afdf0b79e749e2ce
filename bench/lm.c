/* bench/lm.c — decoder throughput of pulse on the real models: prefill tok/s, decode tok/s (batch 1) and
 * generation tok/s with 32 sequences decoded together, 2 threads, peak RSS against file + KV. Usage:
 *   bench_lm [MODEL.gguf ...]   (default: SmolLM2-135M Q4_1 and Gemma-3-270M Q4_K_M from $PULSE_CACHE/models)
 * One model per process keeps each peak RSS honest: with several models it re-runs itself per model.
 * bench/peers/lm.sh runs llama.cpp on the same files and threads right after and prints the ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pulse/lm.h"

static const char *DEFAULTS[] = {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"};

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    pulse_progress_set_quiet(1);
    const char *env_t = getenv("PULSE_THREADS");
    int threads = env_t ? atoi(env_t) : 2;
    pulse_set_num_threads(threads);
    if (argc > 2 || argc == 1) {
        /* several models: one child process each */
        int rc = 0;
        const char *cache = getenv("PULSE_CACHE");
        for (int i = 0; i < (argc > 1 ? argc - 1 : 2); i++) {
            char path[1024], cmd[2300];
            if (argc > 1)
                snprintf(path, sizeof path, "%s", argv[i + 1]);
            else
                snprintf(path, sizeof path, "%s/models/%s", cache ? cache : ".cache", DEFAULTS[i]);
            FILE *f = fopen(path, "rb");
            if (!f) {
                printf("SKIP %s: not found (scripts/fetch-models.sh; PULSE_CACHE)\n", path);
                continue;
            }
            fclose(f);
            snprintf(cmd, sizeof cmd, "'%s' '%s'", argv[0], path);
            fflush(stdout);
            rc |= system(cmd);
        }
        return rc ? 1 : 0;
    }
    pulse_lm *m = NULL;
    if (pulse_lm_load(argv[1], NULL, &m)) {
        fprintf(stderr, "bench_lm: %s\n", pulse_last_error());
        return 1;
    }
    pulse_lm_bench_params bp = pulse_lm_bench_default_params();
    pulse_lm_bench_result r;
    if (pulse_lm_bench(m, &bp, &r)) {
        fprintf(stderr, "bench_lm: %s\n", pulse_last_error());
        pulse_lm_free(m);
        return 1;
    }
    const char *base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
    const double budget = (double)r.file_bytes + (double)r.kv_bytes + 64e6;
    printf(
        "pulse %s, %d threads: prefill(%d) %.1f tok/s, decode %.1f tok/s, %d sequences %.1f tok/s, peak RSS "
        "%.1f MB (file %.1f + KV %.1f + 64 = %.1f MB budget)\n",
        base, threads, bp.n_prompt, r.prefill_tok_s, r.decode_tok_s, bp.n_parallel, r.batched_tok_s,
        r.peak_rss / 1e6, r.file_bytes / 1e6, r.kv_bytes / 1e6, budget / 1e6);
    bench_emitf(
        "{\"bench\": \"lm\", \"impl\": \"pulse\", \"model\": \"%s\", \"threads\": %d, \"prefill_tok_s\": "
        "%.2f, "
        "\"decode_tok_s\": %.2f, \"batched_tok_s\": %.2f, \"batched_prefill_tok_s\": %.2f, \"n_parallel\": "
        "%d, \"peak_rss_mb\": %.1f, "
        "\"file_mb\": %.1f, \"kv_mb\": %.1f, \"rss_within_budget\": %s, \"prefill_tok_cpu_s\": %.2f, "
        "\"decode_tok_cpu_s\": %.2f, \"batched_tok_cpu_s\": %.2f}\n",
        base, threads, r.prefill_tok_s, r.decode_tok_s, r.batched_tok_s, r.batched_prefill_tok_s,
        bp.n_parallel, r.peak_rss / 1e6, r.file_bytes / 1e6, r.kv_bytes / 1e6,
        (double)r.peak_rss <= budget ? "true" : "false", r.prefill_tok_cpu_s, r.decode_tok_cpu_s,
        r.batched_tok_cpu_s);
    pulse_lm_free(m);
    return 0;
}
