/* tests/test_lm_share.c — generation over a shared prompt prefix (pulse_lm_gen_params.share_prefix): the
 * prefix all requests share is prefilled once and forked, with the same tokens as without sharing (greedy and
 * seeded sampling, prompts that are also identical, more requests than sequences) and fewer prompt tokens
 * computed; per-request seeds make a request's tokens independent of its place in the batch; on_done is
 * called once per request with its final output, and a failing on_done stops the run; no KV block leaks.
 * A context without the transposed K / V copies (pulse_lm_ctx_params.kv_rows_only) gives the same logits bit
 * for bit as one with them, for a prompt, its forks and single-token decode, and holds half the KV bytes. */
#include "test.h"

#include <unistd.h>

#include "lm_synth.h"
#include "pulse/core.h"
#include "pulse/lm.h"

enum { NR = 7, PRE = 37, MAXNEW = 10 };

typedef struct {
    int calls[NR];
    int n_out_at[NR];
    pulse_lm_request *rq;
    int fail_after;
    int total;
} done_log;

static pulse_status on_done(void *ud, int r) {
    done_log *d = ud;
    d->calls[r]++;
    d->n_out_at[r] = d->rq[r].n_out;
    d->total++;
    if (d->fail_after && d->total >= d->fail_after) return pulse_set_error(PULSE_ERR_IO, "commit failed");
    return PULSE_OK;
}

static void run(pulse_lm_ctx *c, int *prompts[NR], const int *np, int out[NR][MAXNEW], pulse_lm_gen_params gp,
                int share, pulse_lm_gen_stats *stats, done_log *log) {
    pulse_lm_request rq[NR];
    memset(rq, 0, sizeof rq);
    for (int i = 0; i < NR; i++) {
        rq[i].prompt = prompts[i];
        rq[i].n_prompt = np[i];
        rq[i].out = out[i];
    }
    memset(out, 0, sizeof(int) * NR * MAXNEW);
    gp.share_prefix = share;
    gp.stats = stats;
    if (log) {
        memset(log, 0, sizeof *log);
        log->rq = rq;
        gp.on_done = on_done;
        gp.on_done_ud = log;
    }
    CHECK_OK(pulse_lm_generate(c, rq, NR, &gp));
    for (int i = 0; i < NR; i++) CHECK(rq[i].n_out == MAXNEW);
    if (log)
        for (int i = 0; i < NR; i++) CHECK(log->calls[i] == 1 && log->n_out_at[i] == MAXNEW);
}

/* the logits of one fixed script of decodes: a 50-token prompt (every position), two forks of it with 3
 * tokens each, then 6 single-token steps of one fork; into lg (n_vocab * 59 floats); *kvb = KV bytes held */
static void kv_script(const pulse_lm *m, int rows_only, float *lg, size_t *kvb) {
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = 128;
    cp.n_seq_max = 3;
    cp.n_batch = 64;
    cp.kv_rows_only = rows_only;
    pulse_lm_ctx *c = NULL;
    CHECK_OK(pulse_lm_ctx_new(m, &cp, &c));
    if (!c) return;
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    int tok[64], seq[64], n = 0, s0 = pulse_lm_seq_new(c), s1 = -1, s2 = -1;
    uint8_t want[64];
    pulse_rng rng;
    pulse_rng_seed(&rng, 9);
    for (int t = 0; t < 50; t++, n++) {
        tok[t] = 3 + (int)pulse_rng_below(&rng, (uint32_t)(V - 3));
        seq[t] = s0;
        want[t] = 1;
    }
    pulse_lm_batch b = {n, tok, seq, want};
    CHECK_OK(pulse_lm_decode(c, &b));
    for (int t = 0; t < 50; t++) memcpy(lg + (size_t)t * V, pulse_lm_logits(c, t), sizeof(float) * V);
    CHECK_OK(pulse_lm_seq_fork(c, s0, &s1));
    CHECK_OK(pulse_lm_seq_fork(c, s0, &s2));
    for (int t = 0; t < 6; t++) {
        tok[t] = 3 + (int)pulse_rng_below(&rng, (uint32_t)(V - 3));
        seq[t] = t < 3 ? s1 : s2;
    }
    pulse_lm_batch b2 = {6, tok, seq, want};
    CHECK_OK(pulse_lm_decode(c, &b2));
    for (int t = 0; t < 6; t++) memcpy(lg + (size_t)(50 + t) * V, pulse_lm_logits(c, t), sizeof(float) * V);
    for (int k = 0; k < 3; k++) {
        tok[0] = 3 + (int)pulse_rng_below(&rng, (uint32_t)(V - 3));
        seq[0] = s1;
        pulse_lm_batch b3 = {1, tok, seq, want};
        CHECK_OK(pulse_lm_decode(c, &b3));
        memcpy(lg + (size_t)(56 + k) * V, pulse_lm_logits(c, 0), sizeof(float) * V);
    }
    *kvb = pulse_lm_kv_bytes_used(c);
    pulse_lm_ctx_free(c);
}

static void test_kv_rows_only(void) {
    for (int k = 0; k < SYNTH_N_CFGS; k++) {
        char path[] = "/tmp/pulse_lm_rowsXXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        CHECK(synth_write(&SYNTH_CFGS[k], path) == 0);
        pulse_lm *m = NULL;
        CHECK_OK(pulse_lm_load(path, NULL, &m));
        if (m) {
            const size_t V = (size_t)pulse_lm_get_hparams(m)->n_vocab;
            float *a = calloc(V * 59, sizeof(float)), *b = calloc(V * 59, sizeof(float));
            size_t ka = 0, kb = 0;
            kv_script(m, 0, a, &ka);
            kv_script(m, 1, b, &kb);
            CHECK_MSG(!memcmp(a, b, sizeof(float) * V * 59), "%s: logits differ without the transposed KV",
                      SYNTH_CFGS[k].name);
            /* the copies exist where the SIMD attention reads them: AVX2 and up, head_dim a multiple of 16 */
            const int copies = pulse_cpu_get()->level >= PULSE_LEVEL_AVX2 && pulse_cpu_get()->fma &&
                               pulse_lm_get_hparams(m)->head_dim % 16 == 0;
            CHECK_MSG(kb > 0 && ka == (copies ? 2 * kb : kb), "%s: KV bytes %zu with copies, %zu without",
                      SYNTH_CFGS[k].name, ka, kb);
            printf("%s: same logits with and without the transposed KV copies (KV bytes %zu / %zu)\n",
                   SYNTH_CFGS[k].name, ka, kb);
            free(a), free(b);
        }
        pulse_lm_free(m);
        unlink(path);
    }
}

int main(void) {
    test_kv_rows_only();
    char path[] = "/tmp/pulse_lm_shareXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    synth_opts o = {0};
    o.ctx_len = 1024;
    CHECK(synth_write_opts(&SYNTH_CFGS[0], path, &o) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(path, NULL, &m));
    if (!m) return test_summary();
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = 256;
    cp.n_seq_max = 4; /* 7 requests, 3 at a time next to the root: slots are refilled */
    cp.n_batch = 64;
    pulse_lm_ctx *c = NULL;
    CHECK_OK(pulse_lm_ctx_new(m, &cp, &c));
    if (!c) return test_summary();
    const int V = pulse_lm_get_hparams(m)->n_vocab;

    /* a 37-token shared prefix, then 1..9 own tokens; requests 2 and 5 are identical */
    int buf[NR][64], np[NR], *prompts[NR];
    pulse_rng rng;
    pulse_rng_seed(&rng, 3);
    for (int t = 0; t < PRE; t++) buf[0][t] = 3 + (int)pulse_rng_below(&rng, (uint32_t)(V - 3));
    for (int i = 0; i < NR; i++) {
        memcpy(buf[i], buf[0], sizeof(int) * PRE);
        np[i] = PRE + 1 + (i * 3) % 9;
        for (int t = PRE; t < np[i]; t++) buf[i][t] = 3 + (int)pulse_rng_below(&rng, (uint32_t)(V - 3));
        prompts[i] = buf[i];
    }
    np[5] = np[2];
    memcpy(buf[5], buf[2], sizeof(int) * (size_t)np[2]);

    int a[NR][MAXNEW], b[NR][MAXNEW];
    pulse_lm_gen_stats sa, sb;
    done_log log;
    pulse_lm_gen_params gp = pulse_lm_gen_default_params();
    gp.max_new_tokens = MAXNEW;
    gp.stop_at_eog = 0;
    /* greedy */
    run(c, prompts, np, a, gp, 0, &sa, &log);
    run(c, prompts, np, b, gp, 1, &sb, &log);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(sa.shared_prefix == 0);
    CHECK_MSG(sb.shared_prefix >= PRE, "shared prefix %d", sb.shared_prefix);
    CHECK(sa.prompt_tokens == sb.prompt_tokens);
    int64_t total = 0;
    for (int i = 0; i < NR; i++) total += np[i];
    CHECK(sa.prompt_tokens == total);
    /* without sharing: every prompt but the identical duplicate's; with: the prefix once + the own tails */
    CHECK_MSG(sa.prompt_computed == total - np[5] || sa.prompt_computed == total, "computed %lld",
              (long long)sa.prompt_computed);
    CHECK_MSG(sb.prompt_computed <= sb.shared_prefix + (total - (int64_t)NR * sb.shared_prefix),
              "computed %lld", (long long)sb.prompt_computed);
    CHECK(sb.prompt_computed < sa.prompt_computed - (NR - 2) * PRE + 1);
    CHECK(sa.gen_tokens == NR * MAXNEW && sb.gen_tokens == NR * MAXNEW);
    CHECK(!memcmp(a[2], a[5], sizeof a[2]));
    printf("prompt tokens %lld: computed %lld without sharing, %lld with (prefix %d)\n", (long long)total,
           (long long)sa.prompt_computed, (long long)sb.prompt_computed, sb.shared_prefix);
    CHECK(pulse_lm_kv_blocks_used(c) == 0);

    /* sampled, per-request seeds: the same tokens with and without sharing, and in reverse request order */
    gp.sampler.temp = 0.9f;
    gp.sampler.top_k = 30;
    uint64_t seeds[NR], rseeds[NR];
    for (int i = 0; i < NR; i++) seeds[i] = 1000 + 17 * (uint64_t)i;
    gp.seeds = seeds;
    run(c, prompts, np, a, gp, 0, NULL, NULL);
    run(c, prompts, np, b, gp, 1, NULL, NULL);
    CHECK(!memcmp(a, b, sizeof a));
    int *rprompts[NR], rnp[NR], r[NR][MAXNEW];
    for (int i = 0; i < NR; i++) {
        rprompts[i] = prompts[NR - 1 - i];
        rnp[i] = np[NR - 1 - i];
        rseeds[i] = seeds[NR - 1 - i];
    }
    gp.seeds = rseeds;
    run(c, rprompts, rnp, r, gp, 1, NULL, NULL);
    for (int i = 0; i < NR; i++) CHECK_MSG(!memcmp(r[NR - 1 - i], a[i], sizeof a[i]), "request %d", i);

    /* prompts with nothing in common: no root, same results */
    gp.seeds = seeds;
    int keep0 = buf[0][0];
    buf[0][0] = keep0 == 3 ? 4 : 3;
    run(c, prompts, np, a, gp, 0, &sa, NULL);
    run(c, prompts, np, b, gp, 1, &sb, NULL);
    CHECK(sb.shared_prefix == 0);
    CHECK(!memcmp(a, b, sizeof a));
    buf[0][0] = keep0;

    /* a failing on_done stops the run with its status; nothing leaks */
    pulse_lm_request rq[NR];
    memset(rq, 0, sizeof rq);
    for (int i = 0; i < NR; i++) {
        rq[i].prompt = prompts[i];
        rq[i].n_prompt = np[i];
        rq[i].out = a[i];
    }
    memset(&log, 0, sizeof log);
    log.rq = rq;
    log.fail_after = 2;
    gp.share_prefix = 1;
    gp.on_done = on_done;
    gp.on_done_ud = &log;
    gp.stats = NULL;
    CHECK(pulse_lm_generate(c, rq, NR, &gp) == PULSE_ERR_IO);
    CHECK(log.total == 2);
    CHECK(strstr(pulse_last_error(), "commit failed") != NULL);
    CHECK(pulse_lm_kv_blocks_used(c) == 0);

    pulse_lm_ctx_free(c);
    pulse_lm_free(m);
    unlink(path);
    return test_summary();
}
