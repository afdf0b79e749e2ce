/* bench/lora.c — LoRA training throughput of pulse on a real model: batches of 8 examples of 256 prompt
 * tokens + 16 loss tokens (random ids, fixed seed), LoRA r 8 on q,k,v,o, AdamW steps through
 * pulse_lm_trainer_step, 2 threads; prints training tokens/s (all tokens of a step over its wall time, after
 * one warm-up step), per CPU second, and peak RSS against the model file. Usage:
 *   bench_lora [MODEL.gguf] [--steps N] [--batch B] [--prompt P] [--loss L] [--exact-base] [--no-recompute]
 * (default model: $PULSE_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf; PULSE_THREADS, default 2).
 * bench/peers/lora_peft.py runs the same step in PyTorch + PEFT (fp32 and bf16 autocast) for the ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "pulse/lm.h"

static double cpu_seconds(void) {
    return (double)clock() / CLOCKS_PER_SEC;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    pulse_progress_set_quiet(1);
    const char *env_t = getenv("PULSE_THREADS");
    const int threads = env_t ? atoi(env_t) : 2;
    pulse_set_num_threads(threads);
    const char *cache = getenv("PULSE_CACHE");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache ? cache : ".cache");
    int steps = 3, B = 8, P = 256, L = 16, exact = 0, norecomp = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            P = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--loss") && i + 1 < argc)
            L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--exact-base"))
            exact = 1;
        else if (!strcmp(argv[i], "--fast-base")) /* the default */
            exact = 0;
        else if (!strcmp(argv[i], "--no-recompute"))
            norecomp = 1;
        else
            snprintf(path, sizeof path, "%s", argv[i]);
    }
    if (steps < 1 || B < 1 || P < 1 || L < 1) {
        fprintf(stderr, "bench_lora: --steps, --batch, --prompt and --loss must be >= 1\n");
        return 2;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("SKIP %s: not found (scripts/fetch-models.sh; PULSE_CACHE)\n", path);
        return 0;
    }
    fclose(f);
    pulse_lm *m = NULL;
    pulse_lora *a = NULL;
    pulse_lm_trainer *t = NULL;
    if (pulse_lm_load(path, NULL, &m) || pulse_lora_new(m, NULL, &a)) {
        fprintf(stderr, "bench_lora: %s\n", pulse_last_error());
        return 1;
    }
    pulse_lm_train_params tp = pulse_lm_train_default_params();
    tp.total_steps = steps + 1;
    tp.exact_base = exact;
    tp.checkpoint_layers = !norecomp;
    const double tn = pulse_now();
    if (pulse_lm_trainer_new(m, a, &tp, &t)) {
        fprintf(stderr, "bench_lora: %s\n", pulse_last_error());
        return 1;
    }
    const double setup_s = pulse_now() - tn; /* the transposed weights of the int8 dX */
    const int T = P + L, V = pulse_lm_get_hparams(m)->n_vocab;
    int *ids = malloc(sizeof(int) * (size_t)B * T);
    pulse_lm_example *ex = malloc(sizeof *ex * (size_t)B);
    pulse_rng rng;
    pulse_rng_seed(&rng, 1);
    for (int i = 0; i < B * T; i++) ids[i] = (int)pulse_rng_below(&rng, (uint32_t)(V > 32000 ? 32000 : V));
    for (int b = 0; b < B; b++) ex[b] = (pulse_lm_example){ids + (size_t)b * T, T, P};
    double loss = 0, gn = 0, wall = 0, cpu = 0;
    double *st = malloc(sizeof(double) * (size_t)(steps + 1)); /* each timed step's seconds */
    for (int s = 0; s <= steps; s++) {
        const double w0 = pulse_now(), c0 = cpu_seconds();
        if (pulse_lm_trainer_step(t, ex, B, B, &loss, &gn)) {
            fprintf(stderr, "bench_lora: %s\n", pulse_last_error());
            return 1;
        }
        if (s > 0) { /* step 0: warm-up */
            st[s - 1] = pulse_now() - w0;
            wall += st[s - 1], cpu += cpu_seconds() - c0;
        }
    }
    /* best and median step, the statistics bench/peers/peft_lora.py reports (tokens_s = tokens / best step)
     */
    for (int i = 1; i < steps; i++)
        for (int j = i; j > 0 && st[j - 1] > st[j]; j--) {
            const double x = st[j];
            st[j] = st[j - 1], st[j - 1] = x;
        }
    const double best = st[0], med = steps % 2 ? st[steps / 2] : 0.5 * (st[steps / 2 - 1] + st[steps / 2]);
    free(st);
    const double tok = (double)steps * B * T;
    double prof[4];
    pulse_lm_trainer_profile(t, prof);
    const size_t rss = pulse_peak_rss_bytes(), file = pulse_lm_file_bytes(m);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    bench_emitf(
        "{\"bench\":\"lora_train\",\"model\":\"%s\",\"threads\":%d,\"batch\":%d,\"prompt_tokens\":%d,"
        "\"loss_tokens\":%d,\"rank\":8,\"targets\":\"q,k,v,o\",\"steps\":%d,\"exact_base\":%d,"
        "\"recompute\":%d,\"train_tok_s\":%.1f,\"train_tok_s_best\":%.1f,\"train_tok_s_median\":%.1f,"
        "\"train_tok_cpu_s\":%.1f,\"step_s\":%.3f,\"step_s_best\":%.3f,\"step_s_median\":%.3f,\"loss\":%.4f,"
        "\"peak_rss_mb\":%.1f,\"file_mb\":%.1f,\"rss_over_file_mb\":%.1f,\"trainer_setup_s\":%.2f,"
        "\"seconds_all_steps\":{\"forward\":%.2f,\"head\":%.2f,\"recompute\":%.2f,\"backward\":%.2f}}",
        name, threads, B, P, L, steps, exact, !norecomp, tok / wall, B * T / best, B * T / med,
        cpu > 0 ? tok / cpu : 0.0, wall / steps, best, med, loss, rss / 1048576.0, file / 1048576.0,
        ((double)rss - (double)file) / 1048576.0, setup_s, prof[0], prof[1], prof[2], prof[3]);
    free(ids);
    free(ex);
    pulse_lm_trainer_free(t);
    pulse_lora_free(a);
    pulse_lm_free(m);
    return 0;
}
