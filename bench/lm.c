/* bench/lm.c — decoder throughput of pulse on the real models: prefill tok/s, decode tok/s (batch 1) and
 * generation tok/s with 32 sequences decoded together, 2 threads, peak RSS against file + KV. Usage:
 *   bench_lm [MODEL.gguf ...]   (default: SmolLM2-135M Q4_1 and Gemma-3-270M Q4_K_M from $PULSE_CACHE/models)
 *   bench_lm --shape SHARED,OWN,GEN,REQUESTS MODEL.gguf
 * --shape adds a measurement at a job's shape through pulse_lm_generate (the path the rationale jobs run):
 * REQUESTS random prompts of SHARED common tokens (prefilled once and forked, as --share-prefix does) + OWN
 * tokens each, GEN tokens generated per request (no early stop, temperature 0.7), 32 in flight with slots
 * refilled as requests finish. Its generated tok/s is what the engine gives a job of that shape, so a job's
 * own gen tok/s over it says what the pipeline around the engine costs (issue 10's throughput figure).
 * One model per process keeps each peak RSS honest: with several models it re-runs itself per model.
 * bench/peers/lm.sh runs llama.cpp on the same files and threads right after and prints the ratios.
 * Decode beside its limit: the weight bytes one decoded token reads (every tensor of the file but the token
 * embedding table, which is read whole only when the output head is tied to it) x decode tok/s, against the
 * machine's read bandwidth at the same threads over a buffer of the same size (bench_read_gbs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "pulse/gguf.h"
#include "pulse/lm.h"

/* the weight bytes a one-token decode step reads: all tensors, less the token embedding table unless no
 * output.weight exists (a tied head reads the whole table; otherwise one row of it, nothing to count) */
static double decode_bytes(const pulse_gguf *g) {
    double all = 0, embd = 0;
    int tied = !pulse_gguf_find_tensor(g, "output.weight");
    for (size_t i = 0; i < pulse_gguf_n_tensors(g); i++) {
        const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
        all += (double)t->nbytes;
        if (t->name.len == 17 && !memcmp(t->name.ptr, "token_embd.weight", 17)) embd = (double)t->nbytes;
    }
    return tied ? all : all - embd;
}

static const char *DEFAULTS[] = {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"};

/* --shape: REQUESTS prompts of SHARED + OWN random ordinary tokens, GEN new tokens each, through
 * pulse_lm_generate with 32 sequences in flight; returns generated tok/s (wall) and fills the CPU-time rate
 */
static int bench_shape(const pulse_lm *m, int shared, int own, int gen, int nreq, double *tok_s,
                       double *tok_cpu_s, double *seconds, long long *computed) {
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    const int lo = V > 2000 ? 1000 : 0, span = V > 2000 ? V / 2 - 1000 : V;
    const int np = shared + own;
    int *prompts = malloc(sizeof(int) * (size_t)np * (size_t)nreq);
    int *outs = malloc(sizeof(int) * (size_t)gen * (size_t)nreq);
    pulse_lm_request *rq = calloc((size_t)nreq, sizeof *rq);
    pulse_lm_ctx *c = NULL;
    int rc = 1;
    if (!prompts || !outs || !rq) goto out;
    uint64_t x = 88172645463325252ULL; /* xorshift: the same prompts every run */
    for (int r = 0; r < nreq; r++)
        for (int i = 0; i < np; i++) {
            if (i < shared && r > 0) {
                prompts[(size_t)r * np + i] = prompts[i];
                continue;
            }
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            prompts[(size_t)r * np + i] = lo + (int)(x % (uint64_t)span);
        }
    for (int r = 0; r < nreq; r++) {
        rq[r].prompt = prompts + (size_t)r * np;
        rq[r].n_prompt = np;
        rq[r].out = outs + (size_t)r * gen;
    }
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = np + gen + 1;
    cp.n_seq_max = 32 + 1; /* 32 in flight + the shared root, as the rationale jobs size it */
    if (pulse_lm_ctx_new(m, &cp, &c)) goto out;
    {
        int s = pulse_lm_seq_new(c), t = lo; /* warm-up: touch the weights */
        pulse_lm_batch b = {1, &t, &s, NULL};
        if (pulse_lm_decode(c, &b)) goto out;
        pulse_lm_seq_free(c, s);
    }
    pulse_lm_gen_params gp = pulse_lm_gen_default_params();
    gp.max_new_tokens = gen;
    gp.stop_at_eog = 0;
    gp.sampler.temp = 0.7f;
    gp.share_prefix = 1;
    pulse_lm_gen_stats gs;
    memset(&gs, 0, sizeof gs);
    gp.stats = &gs;
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    double t0 = pulse_now();
    if (pulse_lm_generate(c, rq, nreq, &gp)) goto out;
    *seconds = pulse_now() - t0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    const double cpu = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    *tok_s = (double)gs.gen_tokens / *seconds;
    *tok_cpu_s = cpu > 0 ? (double)gs.gen_tokens / cpu : 0;
    *computed = (long long)gs.prompt_computed;
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_lm --shape: %s\n", pulse_last_error());
    pulse_lm_ctx_free(c);
    free(prompts);
    free(outs);
    free(rq);
    return rc;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    pulse_progress_set_quiet(1);
    int shape[4] = {0, 0, 0, 0}; /* SHARED, OWN, GEN, REQUESTS */
    if (argc > 2 && !strcmp(argv[1], "--shape")) {
        if (sscanf(argv[2], "%d,%d,%d,%d", &shape[0], &shape[1], &shape[2], &shape[3]) != 4 || shape[0] < 0 ||
            shape[1] < 1 || shape[2] < 1 || shape[3] < 1 || shape[0] + shape[1] + shape[2] > 32768 ||
            shape[3] > 100000) {
            fprintf(stderr,
                    "bench_lm: --shape wants SHARED,OWN,GEN,REQUESTS (e.g. 109,172,71,128), got '%s'\n",
                    argv[2]);
            return 2;
        }
        if (argc != 4) {
            fprintf(stderr, "bench_lm: --shape measures one model: bench_lm --shape S,O,G,R MODEL.gguf\n");
            return 2;
        }
        argv[1] = argv[3]; /* from here on: bench_lm MODEL.gguf */
        argc = 2;
    }
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
    const double dbytes = decode_bytes(pulse_lm_gguf(m)), bw = bench_read_gbs(threads, dbytes);
    const double dgbs = r.decode_tok_s * dbytes / 1e9;
    printf(
        "pulse %s, %d threads: prefill(%d) %.1f tok/s, decode %.1f tok/s, %d sequences %.1f tok/s, peak RSS "
        "%.1f MB (file %.1f + KV %.1f + 64 = %.1f MB budget)\n",
        base, threads, bp.n_prompt, r.prefill_tok_s, r.decode_tok_s, bp.n_parallel, r.batched_tok_s,
        r.peak_rss / 1e6, r.file_bytes / 1e6, r.kv_bytes / 1e6, budget / 1e6);
    printf(
        "  decode reads %.1f MB of weights per token: %.1f GB/s = %.0f%% of the %.1f GB/s this machine reads "
        "from as many bytes on %d threads\n",
        dbytes / 1e6, dgbs, bw > 0 ? 100.0 * dgbs / bw : 0.0, bw, threads);
    bench_emitf(
        "{\"bench\": \"lm\", \"impl\": \"pulse\", \"model\": \"%s\", \"threads\": %d, \"prefill_tok_s\": "
        "%.2f, "
        "\"decode_tok_s\": %.2f, \"batched_tok_s\": %.2f, \"batched_prefill_tok_s\": %.2f, \"n_parallel\": "
        "%d, \"peak_rss_mb\": %.1f, "
        "\"file_mb\": %.1f, \"kv_mb\": %.1f, \"rss_within_budget\": %s, \"prefill_tok_cpu_s\": %.2f, "
        "\"decode_tok_cpu_s\": %.2f, \"batched_tok_cpu_s\": %.2f, \"decode_weight_mb\": %.1f, "
        "\"decode_gbs\": "
        "%.2f, \"read_gbs\": %.2f, \"decode_of_bandwidth\": %.3f}\n",
        base, threads, r.prefill_tok_s, r.decode_tok_s, r.batched_tok_s, r.batched_prefill_tok_s,
        bp.n_parallel, r.peak_rss / 1e6, r.file_bytes / 1e6, r.kv_bytes / 1e6,
        (double)r.peak_rss <= budget ? "true" : "false", r.prefill_tok_cpu_s, r.decode_tok_cpu_s,
        r.batched_tok_cpu_s, dbytes / 1e6, dgbs, bw, bw > 0 ? dgbs / bw : 0.0);
    if (shape[3] > 0) {
        double ts = 0, tc = 0, sec = 0;
        long long computed = 0;
        if (bench_shape(m, shape[0], shape[1], shape[2], shape[3], &ts, &tc, &sec, &computed)) {
            pulse_lm_free(m);
            return 1;
        }
        printf(
            "pulse %s, %d threads, shape %d shared + %d own prompt tokens, %d generated, %d requests: %.1f "
            "gen tok/s (%.1f s, %lld prompt tokens computed)\n",
            base, threads, shape[0], shape[1], shape[2], shape[3], ts, sec, computed);
        bench_emitf("{\"bench\": \"lm_shape\", \"impl\": \"pulse\", \"model\": \"%s\", \"threads\": %d, "
                    "\"shared\": %d, \"own\": %d, \"gen\": %d, \"requests\": %d, \"gen_tok_s\": %.2f, "
                    "\"gen_tok_cpu_s\": %.2f, \"seconds\": %.3f, \"prompt_computed\": %lld}\n",
                    base, threads, shape[0], shape[1], shape[2], shape[3], ts, tc, sec, computed);
    }
    pulse_lm_free(m);
    return 0;
}
