/* lm/bench.c — owns the throughput measurement behind `pulse lm bench` and bench/lm: prefill tok/s (one
 * sequence), decode tok/s (batch 1, greedy), and generation tok/s with many sequences decoded together (one
 * forward per step), on random token ids; peak RSS beside the file and KV sizes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm/lm_internal.h"

pulse_lm_bench_params pulse_lm_bench_default_params(void) {
    pulse_lm_bench_params p;
    p.n_prompt = 128;
    p.n_gen = 64;
    p.n_parallel = 32;
    p.n_prompt_parallel = 32;
    p.seed = 1;
    return p;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

pulse_status pulse_lm_bench(const pulse_lm *m, const pulse_lm_bench_params *bp, pulse_lm_bench_result *r) {
    pulse_lm_bench_params p = bp ? *bp : pulse_lm_bench_default_params();
    memset(r, 0, sizeof *r);
    if (p.n_prompt < 1 || p.n_gen < 1 || p.n_parallel < 1 || p.n_prompt_parallel < 1)
        return pulse_set_error(PULSE_ERR_ARG, "bench: lengths must be >= 1");
    const int V = m->hp.n_vocab;
    const int lo = V > 2000 ? 1000 : 0, span = V > 2000 ? V / 2 - 1000 : V; /* ordinary text tokens */
    int per_seq = p.n_prompt + p.n_gen;
    if (p.n_prompt_parallel + p.n_gen > per_seq) per_seq = p.n_prompt_parallel + p.n_gen;
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = per_seq;
    cp.n_seq_max = p.n_parallel;
    cp.n_batch = 64;
    cp.n_kv_tokens = (p.n_prompt_parallel + p.n_gen) * p.n_parallel + per_seq;
    pulse_lm_ctx *c = NULL;
    pulse_status st = pulse_lm_ctx_new(m, &cp, &c);
    if (st) return st;
    const int nt =
        p.n_prompt > p.n_parallel * p.n_prompt_parallel ? p.n_prompt : p.n_parallel * p.n_prompt_parallel;
    int *tok = malloc(sizeof(int) * (size_t)nt), *seq = malloc(sizeof(int) * (size_t)nt);
    uint8_t *want = malloc((size_t)nt);
    if (!tok || !seq || !want) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "bench: out of memory");
        goto out;
    }
    pulse_rng rng;
    pulse_rng_seed(&rng, p.seed);
    /* warm-up: touch the weights once (page faults are not throughput) */
    {
        int s = pulse_lm_seq_new(c), t = lo;
        pulse_lm_batch b = {1, &t, &s, NULL};
        if ((st = pulse_lm_decode(c, &b))) goto out;
        pulse_lm_seq_free(c, s);
    }
    /* prefill + decode, one sequence */
    {
        int s = pulse_lm_seq_new(c);
        for (int i = 0; i < p.n_prompt; i++) {
            tok[i] = lo + (int)pulse_rng_below(&rng, (uint32_t)span);
            seq[i] = s;
        }
        double t0 = pulse_now(), c0 = cpu_now();
        pulse_lm_batch b = {p.n_prompt, tok, seq, NULL};
        if ((st = pulse_lm_decode(c, &b))) goto out;
        r->prefill_tok_s = p.n_prompt / (pulse_now() - t0);
        r->prefill_tok_cpu_s = p.n_prompt / (cpu_now() - c0);
        int t = lm_argmax(pulse_lm_logits(c, p.n_prompt - 1), V);
        t0 = pulse_now();
        c0 = cpu_now();
        for (int g = 0; g < p.n_gen; g++) {
            pulse_lm_batch b1 = {1, &t, &s, NULL};
            if ((st = pulse_lm_decode(c, &b1))) goto out;
            t = lm_argmax(pulse_lm_logits(c, 0), V);
        }
        r->decode_tok_s = p.n_gen / (pulse_now() - t0);
        r->decode_tok_cpu_s = p.n_gen / (cpu_now() - c0);
        pulse_lm_seq_free(c, s);
    }
    /* n_parallel sequences: prefill all prompts in one batch, then n_gen steps of n_parallel tokens */
    {
        const int P = p.n_parallel, np = p.n_prompt_parallel;
        for (int s = 0; s < P; s++) {
            int id = pulse_lm_seq_new(c);
            for (int i = 0; i < np; i++) {
                tok[s * np + i] = lo + (int)pulse_rng_below(&rng, (uint32_t)span);
                seq[s * np + i] = id;
                want[s * np + i] = i == np - 1;
            }
        }
        double t0 = pulse_now();
        pulse_lm_batch b = {P * np, tok, seq, want};
        if ((st = pulse_lm_decode(c, &b))) goto out;
        r->batched_prefill_tok_s = P * np / (pulse_now() - t0);
        int *next = malloc(sizeof(int) * (size_t)P), *ids = malloc(sizeof(int) * (size_t)P);
        if (!next || !ids) {
            free(next);
            free(ids);
            st = pulse_set_error(PULSE_ERR_NOMEM, "bench: out of memory");
            goto out;
        }
        for (int s = 0; s < P; s++) {
            next[s] = lm_argmax(pulse_lm_logits(c, s * np + np - 1), V);
            ids[s] = seq[s * np];
            want[s] = 1;
        }
        t0 = pulse_now();
        double c0 = cpu_now();
        for (int g = 0; g < p.n_gen && !st; g++) {
            pulse_lm_batch bb = {P, next, ids, want};
            if ((st = pulse_lm_decode(c, &bb))) break;
                /* greedy pick per sequence, the rows split over the threads as generate does */
#pragma omp parallel for schedule(static) num_threads(c->n_thr) if (P > 1)
            for (int s = 0; s < P; s++) next[s] = lm_argmax(pulse_lm_logits(c, s), V);
        }
        r->batched_tok_s = (double)P * p.n_gen / (pulse_now() - t0);
        r->batched_tok_cpu_s = (double)P * p.n_gen / (cpu_now() - c0);
        free(next);
        free(ids);
    }
    r->peak_rss = pulse_peak_rss_bytes();
    r->file_bytes = m->file_bytes;
    r->kv_bytes = pulse_lm_kv_bytes_used(c);
out:
    free(tok);
    free(seq);
    free(want);
    pulse_lm_ctx_free(c);
    return st;
}
