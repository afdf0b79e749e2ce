/* tests/test_lm_synth.c — the decoder runtime on tiny synthetic GGUF models of every architecture (llama,
 * gemma3 with sliding-window layers, qwen2 with biases, phi3 with fused projections and partial rotary):
 * logits against an independent numpy implementation (fixture from scripts/lm_synth_ref.py), and the
 * runtime's own invariants: one-by-one decode == prefill, batched sequences == separate ones, forks ==
 * fresh sequences, truncation, generation with continuous batching, scoring, sampling.
 * `test_lm_synth --write DIR` writes the models and tokens for the reference script. */
#include <stdint.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/lm.h"
#include "pulse/quant.h"
#include "test.h"

static char tmpdir[256];

static void model_path(char *buf, size_t n, const char *dir, const char *name) {
    snprintf(buf, n, "%s/synth_%s.gguf", dir, name);
}

/* Reference logits of arch from the fixture: (T, V) malloc'ed, or NULL. */
static float *load_ref(const char *arch, int *T, int *V) {
    FILE *f = fopen(PULSE_SOURCE_DIR "/tests/fixtures/lm_synth.txt", "r");
    if (!f) return NULL;
    char line[1 << 16];
    float *out = NULL;
    while (fgets(line, sizeof line, f)) {
        char name[32];
        if (line[0] == '#' || sscanf(line, "%31s %d %d", name, T, V) != 3 || strcmp(name, arch)) continue;
        out = malloc(sizeof(float) * (size_t)(*T) * (*V));
        for (int i = 0; i < *T * *V; i++)
            if (fscanf(f, "%f", &out[i]) != 1) {
                free(out);
                out = NULL;
                break;
            }
        break;
    }
    fclose(f);
    return out;
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

/* logits of every position of toks in a fresh sequence, one decode; out (n, V) */
static pulse_status run_all(pulse_lm_ctx *c, const int *toks, int n, float *out) {
    int s = pulse_lm_seq_new(c);
    if (s < 0) return PULSE_ERR_RANGE;
    int seq[64];
    uint8_t want[64];
    for (int i = 0; i < n; i++) seq[i] = s, want[i] = 1;
    pulse_lm_batch b = {n, toks, seq, want};
    pulse_status st = pulse_lm_decode(c, &b);
    int V = pulse_lm_get_hparams(pulse_lm_ctx_model(c))->n_vocab;
    for (int i = 0; i < n && !st; i++) memcpy(out + (size_t)i * V, pulse_lm_logits(c, i), sizeof(float) * V);
    pulse_lm_seq_free(c, s);
    return st;
}

/* The same logits, bit for bit, at every lower instruction level this CPU has (pulse_cpu_limit, switched in
 * process; the quantised kernels re-chosen with pulse_quant_use_vnni): the AVX-512 VNNI, AVX2 and portable
 * paths of the quantised products, f16 rows, attention and exp are the same operations. At scalar the
 * products with float weights (f32 / f16 / bf16) take the reference dot, which sums in element order instead
 * of ggml's lanes: there within the architecture's tolerance (measured: 1e-6 on qwen2 / phi3, 1e-3 on llama /
 * gemma3 where an f16 rounding of the KV cache or the probabilities falls the other way). Run at native only
 * (the _avx2 / _scalar variants of this test start capped). */
static void check_levels(pulse_lm_ctx *c, const float *all, const synth_cfg *cfg) {
    if (pulse_cpu_limit_get() != PULSE_ISA_NATIVE) return;
    static const pulse_isa lv[] = {PULSE_ISA_AVX512, PULSE_ISA_AVX2, PULSE_ISA_SCALAR};
    const int T = SYNTH_T, V = cfg->V;
    const int float_w =
        cfg->wtype == PULSE_GGML_F32 || cfg->wtype == PULSE_GGML_F16 || cfg->wtype == PULSE_GGML_BF16;
    float *o = malloc(sizeof(float) * T * V);
    for (size_t i = 0; o && i < sizeof lv / sizeof lv[0]; i++) {
        if (pulse_cpu_limit(lv[i]) != PULSE_OK) continue; /* the CPU has not got it */
        pulse_quant_use_vnni(1);
        CHECK_OK(run_all(c, SYNTH_TOKENS, T, o));
        const double d = max_abs_diff(o, all, T * V);
        if (lv[i] == PULSE_ISA_SCALAR && float_w)
            CHECK_MSG(d < cfg->tol, "%s: logits at isa scalar: max diff %g from native", cfg->name, d);
        else
            CHECK_MSG(memcmp(o, all, sizeof(float) * T * V) == 0,
                      "%s: logits at isa %s differ from native (max %g)", cfg->name, pulse_isa_name(lv[i]),
                      d);
    }
    pulse_cpu_limit(PULSE_ISA_NATIVE);
    pulse_quant_use_vnni(1);
    free(o);
}

static void test_arch(const synth_cfg *cfg) {
    char path[512];
    model_path(path, sizeof path, tmpdir, cfg->name);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(path, NULL, &m));
    if (!m) return;
    const pulse_lm_hparams *hp = pulse_lm_get_hparams(m);
    CHECK(!strcmp(hp->arch_name, cfg->arch));
    CHECK(hp->n_vocab == cfg->V && hp->n_layer == cfg->L && hp->head_dim == cfg->HD &&
          hp->n_rot == cfg->n_rot);
    const int V = hp->n_vocab, T = SYNTH_T;
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = 64;
    cp.n_seq_max = 6;
    cp.n_batch = 5;  /* forces chunking */
    cp.kv_block = 4; /* forces block boundaries and copy-on-write */
    pulse_lm_ctx *c = NULL;
    CHECK_OK(pulse_lm_ctx_new(m, &cp, &c));
    if (!c) {
        pulse_lm_free(m);
        return;
    }
    float *all = malloc(sizeof(float) * T * V), *one = malloc(sizeof(float) * T * V);
    CHECK_OK(run_all(c, SYNTH_TOKENS, T, all));
    check_levels(c, all, cfg);

    /* 1. against the independent reference */
    int rT = 0, rV = 0;
    float *ref = load_ref(cfg->name, &rT, &rV);
    CHECK_MSG(ref != NULL, "%s: no reference logits in tests/fixtures/lm_synth.txt", cfg->name);
    if (ref && rT == T && rV == V) {
        double d = max_abs_diff(all, ref, T * V);
        CHECK_MSG(d < cfg->tol, "%s: max |logit - reference| = %g", cfg->name, d);
        int agree = 0;
        for (int t = 0; t < T; t++) {
            int a = 0, b = 0;
            for (int j = 1; j < V; j++) {
                if (all[t * V + j] > all[t * V + a]) a = j;
                if (ref[t * V + j] > ref[t * V + b]) b = j;
            }
            agree += a == b;
        }
        CHECK_MSG(agree >= (cfg->tol > 0.01f ? T - 2 : T), "%s: top-1 agrees at %d of %d", cfg->name, agree,
                  T);
    }
    free(ref);

    /* 2. token-by-token decode gives the prefill's logits */
    int s = pulse_lm_seq_new(c);
    for (int t = 0; t < T; t++) {
        pulse_lm_batch b = {1, &SYNTH_TOKENS[t], &s, NULL};
        CHECK_OK(pulse_lm_decode(c, &b));
        memcpy(one + (size_t)t * V, pulse_lm_logits(c, 0), sizeof(float) * V);
    }
    CHECK(pulse_lm_seq_len(c, s) == T);
    CHECK_MSG(max_abs_diff(all, one, T * V) < 1e-3, "%s: one-by-one vs prefill %g", cfg->arch,
              max_abs_diff(all, one, T * V));

    /* 3. truncate to 7 and decode the rest again */
    CHECK_OK(pulse_lm_seq_truncate(c, s, 7));
    {
        int seq[SYNTH_T];
        for (int i = 0; i < T; i++) seq[i] = s;
        pulse_lm_batch b = {T - 7, SYNTH_TOKENS + 7, seq, NULL};
        CHECK_OK(pulse_lm_decode(c, &b));
        CHECK(max_abs_diff(pulse_lm_logits(c, T - 8), all + (size_t)(T - 1) * V, V) < 1e-3);
    }

    /* 4. fork at 6 tokens; parent and child continue with different tokens in one batch */
    CHECK_OK(pulse_lm_seq_truncate(c, s, 6));
    int ch = -1;
    CHECK_OK(pulse_lm_seq_fork(c, s, &ch));
    int used_shared = pulse_lm_kv_blocks_used(c);
    CHECK(used_shared == 2); /* 6 tokens in blocks of 4: both sequences share 2 blocks */
    const int alt[6] = {4, 8, 15, 16, 23, 42};
    {
        int toks[12], seq[12];
        uint8_t want[12];
        for (int i = 0; i < 6; i++) {
            toks[2 * i] = SYNTH_TOKENS[6 + i], seq[2 * i] = s, want[2 * i] = 1;
            toks[2 * i + 1] = alt[i] % V, seq[2 * i + 1] = ch, want[2 * i + 1] = 1;
        }
        pulse_lm_batch b = {12, toks, seq, want};
        CHECK_OK(pulse_lm_decode(c, &b));
        double dp = 0;
        for (int i = 0; i < 6; i++) {
            double d = max_abs_diff(pulse_lm_logits(c, 2 * i), all + (size_t)(6 + i) * V, V);
            if (d > dp) dp = d;
        }
        CHECK_MSG(dp < 1e-3, "%s: parent after fork %g", cfg->arch, dp);
        float *keep = malloc(sizeof(float) * 6 * V);
        for (int i = 0; i < 6; i++)
            memcpy(keep + (size_t)i * V, pulse_lm_logits(c, 2 * i + 1), sizeof(float) * V);
        /* the child equals a fresh sequence of prefix + alt */
        int full[12];
        for (int i = 0; i < 6; i++) full[i] = SYNTH_TOKENS[i], full[6 + i] = alt[i] % V;
        float *fresh = malloc(sizeof(float) * 12 * V);
        CHECK_OK(run_all(c, full, 12, fresh));
        double dc = max_abs_diff(keep, fresh + (size_t)6 * V, 6 * V);
        CHECK_MSG(dc < 1e-3, "%s: child after fork %g", cfg->arch, dc);
        free(keep);
        free(fresh);
    }
    pulse_lm_seq_free(c, ch);
    pulse_lm_seq_free(c, s);
    CHECK(pulse_lm_kv_blocks_used(c) == 0);

    /* 5. generation: 5 requests (3 with one prompt -> prefilled once, forked), 2-3 at a time; greedy
     * results equal single-request runs */
    {
        const int p0[4] = {1, 5, 9, 13}, p1[3] = {1, 40, 2 % V};
        int outs[5][8], solo[8] = {0};
        pulse_lm_request rq[5];
        const int *pr[5] = {p0, p0, p0, p1, p0};
        const int np[5] = {4, 4, 4, 3, 4};
        for (int i = 0; i < 5; i++) {
            memset(&rq[i], 0, sizeof rq[i]);
            rq[i].prompt = pr[i];
            rq[i].n_prompt = np[i];
            rq[i].out = outs[i];
        }
        pulse_lm_gen_params gp = pulse_lm_gen_default_params();
        gp.max_new_tokens = 8;
        gp.stop_at_eog = 0;
        /* occupy 3 of the 6 sequences: the 5 requests run 3 at a time and join as others leave */
        int busy[3];
        for (int i = 0; i < 3; i++) busy[i] = pulse_lm_seq_new(c);
        CHECK_OK(pulse_lm_generate(c, rq, 5, &gp));
        for (int i = 0; i < 3; i++) pulse_lm_seq_free(c, busy[i]);
        for (int i = 0; i < 5; i++) {
            pulse_lm_request one_rq = {pr[i], np[i], solo, 0, 0};
            CHECK_OK(pulse_lm_generate(c, &one_rq, 1, &gp));
            CHECK(rq[i].n_out == 8 && one_rq.n_out == 8);
            CHECK_MSG(!memcmp(solo, outs[i], sizeof solo), "%s: request %d batched != alone", cfg->arch, i);
        }
        CHECK(!memcmp(outs[0], outs[1], sizeof outs[0]) && !memcmp(outs[0], outs[4], sizeof outs[0]));
        /* sampled: same seed, same tokens; batched and alone agree per request */
        gp.sampler.temp = 1.0f;
        gp.sampler.top_k = 20;
        gp.sampler.top_p = 0.9f;
        gp.sampler.seed = 5;
        CHECK_OK(pulse_lm_generate(c, rq, 5, &gp));
        int again[5][8];
        memcpy(again, outs, sizeof again);
        CHECK_OK(pulse_lm_generate(c, rq, 5, &gp));
        CHECK(!memcmp(again, outs, sizeof again));
        CHECK(pulse_lm_kv_blocks_used(c) == 0);
    }

    /* 6. scoring equals the sum of teacher-forced log-probs */
    {
        const int *prompts[3] = {SYNTH_TOKENS, SYNTH_TOKENS, SYNTH_TOKENS + 1};
        const int np[3] = {5, 5, 4};
        const int *conts[3] = {SYNTH_TOKENS + 5, alt, SYNTH_TOKENS + 5};
        const int nc[3] = {T - 5, 3, T - 5};
        double lp[3];
        CHECK_OK(pulse_lm_score(c, prompts, np, conts, nc, 3, lp));
        double want0 = 0;
        for (int t = 5; t < T; t++) want0 += pulse_lm_logprob(all + (size_t)(t - 1) * V, V, SYNTH_TOKENS[t]);
        CHECK_NEAR(lp[0], want0, 1e-3);
        CHECK(lp[1] < 0 && lp[2] < 0 && isfinite(lp[2]));
        int full[8];
        for (int i = 0; i < 5; i++) full[i] = SYNTH_TOKENS[i];
        for (int i = 0; i < 3; i++) full[5 + i] = alt[i];
        float *fl = malloc(sizeof(float) * 8 * V);
        CHECK_OK(run_all(c, full, 8, fl));
        double want1 = 0;
        for (int t = 5; t < 8; t++) want1 += pulse_lm_logprob(fl + (size_t)(t - 1) * V, V, full[t]);
        CHECK_NEAR(lp[1], want1, 1e-3);
        free(fl);
    }

    /* 7. errors: bad token, dead sequence, context overflow */
    {
        int bad = V, s2 = pulse_lm_seq_new(c);
        pulse_lm_batch b = {1, &bad, &s2, NULL};
        CHECK(pulse_lm_decode(c, &b) == PULSE_ERR_RANGE);
        int dead = cp.n_seq_max - 1, ok = 1;
        pulse_lm_batch b2 = {1, &ok, &dead, NULL};
        CHECK(pulse_lm_decode(c, &b2) == PULSE_ERR_ARG);
        int many[65], seqs[65];
        for (int i = 0; i < 65; i++) many[i] = 1, seqs[i] = s2;
        pulse_lm_batch b3 = {65, many, seqs, NULL};
        CHECK(pulse_lm_decode(c, &b3) == PULSE_ERR_RANGE);
        CHECK(pulse_lm_seq_len(c, s2) == 0);
        pulse_lm_seq_free(c, s2);
    }
    free(all);
    free(one);
    pulse_lm_ctx_free(c);
    pulse_lm_free(m);
}

static void test_sampler(void) {
    const int V = 6;
    float lg[6] = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f};
    pulse_lm_sampler_params p = pulse_lm_sampler_default_params();
    pulse_lm_sampler *s = NULL;
    CHECK_OK(pulse_lm_sampler_new(&p, V, &s));
    CHECK(pulse_lm_sample(s, lg, NULL, 0) == 1); /* greedy */
    /* repetition penalty: token 1 seen -> 3.0/2 = 1.5 < 2.9 */
    pulse_lm_sampler_free(s);
    p.repeat_penalty = 2.0f;
    CHECK_OK(pulse_lm_sampler_new(&p, V, &s));
    int hist[2] = {1, 1};
    CHECK(pulse_lm_sample(s, lg, hist, 2) == 5);
    pulse_lm_sampler_free(s);
    /* temperature sampling: frequencies follow softmax(lg / T); top-k 1 is greedy; top-p keeps the head */
    p = pulse_lm_sampler_default_params();
    p.temp = 0.7f;
    p.seed = 3;
    CHECK_OK(pulse_lm_sampler_new(&p, V, &s));
    int cnt[6] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[pulse_lm_sample(s, lg, NULL, 0)]++;
    double z = 0, pr[6];
    for (int i = 0; i < V; i++) z += exp(lg[i] / 0.7);
    for (int i = 0; i < V; i++) {
        pr[i] = exp(lg[i] / 0.7) / z;
        CHECK_MSG(fabs(cnt[i] / (double)N - pr[i]) < 0.015, "token %d freq %g want %g", i, cnt[i] / (double)N,
                  pr[i]);
    }
    /* reseeding reproduces the stream */
    int a[16], b[16];
    pulse_lm_sampler_seed(s, 99);
    for (int i = 0; i < 16; i++) a[i] = pulse_lm_sample(s, lg, NULL, 0);
    pulse_lm_sampler_seed(s, 99);
    for (int i = 0; i < 16; i++) b[i] = pulse_lm_sample(s, lg, NULL, 0);
    CHECK(!memcmp(a, b, sizeof a));
    pulse_lm_sampler_free(s);
    p.top_k = 1;
    CHECK_OK(pulse_lm_sampler_new(&p, V, &s));
    int allk1 = 1;
    for (int i = 0; i < 200; i++) allk1 &= pulse_lm_sample(s, lg, NULL, 0) == 1;
    CHECK(allk1);
    pulse_lm_sampler_free(s);
    p.top_k = 0;
    p.top_p = 0.5f; /* softmax(lg): p1 ~ 0.37, p5 ~ 0.30 -> support {1, 5} */
    CHECK_OK(pulse_lm_sampler_new(&p, V, &s));
    int only = 1, seen5 = 0;
    for (int i = 0; i < 500; i++) {
        int t = pulse_lm_sample(s, lg, NULL, 0);
        only &= t == 1 || t == 5;
        seen5 |= t == 5;
    }
    CHECK(only && seen5);
    pulse_lm_sampler_free(s);
    /* greedy over a vocabulary long enough for the vectorised argmax: the first index of the maximum, also
     * when the maximum repeats within and across the 8 lanes, and at the ragged tail */
    {
        const int BV = 1003;
        float *big = malloc(sizeof(float) * BV);
        pulse_lm_sampler_params gp = pulse_lm_sampler_default_params();
        pulse_lm_sampler *gs = NULL;
        CHECK_OK(pulse_lm_sampler_new(&gp, BV, &gs));
        pulse_rng rng;
        pulse_rng_seed(&rng, 5);
        int ok = 1;
        for (int trial = 0; trial < 200 && big; trial++) {
            for (int i = 0; i < BV; i++) big[i] = (float)(pulse_rng_below(&rng, 64)) - 32.0f; /* many ties */
            if (trial % 3 == 1) big[BV - 1] = 100.0f;                                         /* tail */
            if (trial % 3 == 2) big[0] = big[9] = big[17] = 200.0f; /* same lane, next lanes */
            int want = 0;
            for (int i = 1; i < BV; i++)
                if (big[i] > big[want]) want = i;
            ok &= pulse_lm_sample(gs, big, NULL, 0) == want;
        }
        CHECK(big && ok);
        pulse_lm_sampler_free(gs);
        free(big);
    }
    double lz = log(exp(1.0) + exp(3.0) + exp(2.5) + exp(-1.0) + 1 + exp(2.9));
    CHECK_NEAR(pulse_lm_logprob(lg, V, 1), 3.0 - lz, 1e-5);
}

int main(int argc, char **argv) {
    pulse_progress_set_quiet(1);
    const char *dir = NULL;
    if (argc == 3 && !strcmp(argv[1], "--write")) dir = argv[2];
    if (!dir) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/pulse_lm_synth_XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
        dir = tmpdir;
    } else
        snprintf(tmpdir, sizeof tmpdir, "%s", dir);
    for (int i = 0; i < SYNTH_N_CFGS; i++) {
        char path[512];
        model_path(path, sizeof path, dir, SYNTH_CFGS[i].name);
        CHECK_MSG(synth_write(&SYNTH_CFGS[i], path) == 0, "writing %s", path);
    }
    if (argc == 3) {
        char path[512];
        snprintf(path, sizeof path, "%s/tokens.txt", dir);
        FILE *f = fopen(path, "w");
        for (int i = 0; f && i < SYNTH_T; i++) fprintf(f, "%d ", SYNTH_TOKENS[i]);
        if (f) fclose(f);
        printf("wrote the synthetic models to %s\n", dir);
        return 0;
    }
    for (int i = 0; i < SYNTH_N_CFGS; i++) test_arch(&SYNTH_CFGS[i]);
    test_sampler();
    for (int i = 0; i < SYNTH_N_CFGS; i++) {
        char path[512];
        model_path(path, sizeof path, dir, SYNTH_CFGS[i].name);
        unlink(path);
    }
    rmdir(dir);
    return test_summary();
}
