/* tests/test_lm_lora.c — LoRA adapters on tiny synthetic models of every architecture: llama.cpp's GGUF LoRA
 * format written and read back (metadata, names, ne orientation, values bit-exact), the forward with an
 * adapter equal to the merged model's (W + s B A) and to the base with B = 0 or scale 0, the adapter's update
 * bit for bit against its one-output-at-a-time definition, and every malformed
 * adapter (wrong rank, missing half, shape not matching the model, wrong architecture, not an adapter,
 * unknown tensor) refused with a message naming the problem. */
#include "test.h"

#include <math.h>
#include <omp.h>
#include <unistd.h>

#include "gguf_build.h"
#include "lm/lm_internal.h"
#include "lm_synth.h"
#include "pulse/lm.h"

#include <cjson/cJSON.h>

static char tmpdir[256];

/* lm_lora_apply's update against its definition one output at a time: t_j = dot8(x, A_j), y_o += s * dot8(t,
 * B_o), dot8 = 8 lanes (element i in lane i mod 8, in order, from 0), then ((l0 + l4) + (l2 + l6)) + ((l1 +
 * l5)
 * + (l3 + l7)); bit for bit, for ranks across the 8 lanes and output counts across the 16-output blocks */
static float dot8(const float *x, const float *a, int n) {
    float l[8] = {0};
    for (int i = 0; i < n; i++) l[i % 8] += x[i] * a[i];
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static void test_apply_bits(void) {
    static const int RS[] = {1, 3, 8, 13, 16}, OS[] = {1, 16, 37, 576};
    const int in = 45, n = 5;
    uint64_t z = 7;
    for (size_t ri = 0; ri < sizeof RS / sizeof RS[0]; ri++)
        for (size_t oi = 0; oi < sizeof OS / sizeof OS[0]; oi++) {
            const int r = RS[ri], out = OS[oi];
            float *A = malloc(sizeof(float) * (size_t)r * in), *B = malloc(sizeof(float) * (size_t)out * r);
            float *x = malloc(sizeof(float) * (size_t)n * in), *y = malloc(sizeof(float) * (size_t)n * out);
            float *ref = malloc(sizeof(float) * (size_t)n * out), *t = malloc(sizeof(float) * (size_t)n * r);
            float tr[16];
            float *all[] = {A, B, x};
            const size_t cnt[] = {(size_t)r * in, (size_t)out * r, (size_t)n * in};
            for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < cnt[k]; i++) {
                    z = z * 6364136223846793005ull + 1442695040888963407ull;
                    all[k][i] = (float)((double)(z >> 11) / 9007199254740992.0 - 0.5);
                }
            for (int i = 0; i < n * out; i++) y[i] = ref[i] = 0.25f * (float)(i % 7);
            const lm_lora_w w = {A, B, r, in, out, 2.0f};
            float *bt = malloc(sizeof(float) * lm_lora_bt_size(&w));
            CHECK_MSG(lm_lora_bt_size(&w) == (size_t)r * (size_t)((out + 15) / 16 * 16),
                      "B^T size r %d out %d", r, out);
            lm_lora_bt(&w, bt);
            lm_lora_apply(&w, 0.75f, y, x, n, t, bt);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < r; j++) tr[j] = dot8(x + (size_t)i * in, A + (size_t)j * in, in);
                for (int o = 0; o < out; o++)
                    ref[(size_t)i * out + o] += 1.5f * dot8(tr, B + (size_t)o * r, r);
            }
            CHECK_MSG(memcmp(y, ref, sizeof(float) * (size_t)n * out) == 0,
                      "lm_lora_apply r %d out %d differs", r, out);
            free(A), free(B), free(x), free(y), free(ref), free(t), free(bt);
        }
}

/* logits (T, V) of SYNTH_TOKENS in a new sequence of c (freed after); malloc'ed */
static float *ctx_logits(pulse_lm_ctx *c, const pulse_lm *m) {
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    int seq[SYNTH_T];
    uint8_t want[SYNTH_T];
    const int sid = pulse_lm_seq_new(c);
    if (sid < 0) return NULL;
    for (int i = 0; i < SYNTH_T; i++) seq[i] = sid, want[i] = 1;
    pulse_lm_batch b = {SYNTH_T, SYNTH_TOKENS, seq, want};
    float *out = NULL;
    if (pulse_lm_decode(c, &b) == PULSE_OK) {
        out = malloc(sizeof(float) * SYNTH_T * V);
        for (int i = 0; i < SYNTH_T; i++)
            memcpy(out + (size_t)i * V, pulse_lm_logits(c, i), sizeof(float) * V);
    }
    pulse_lm_seq_free(c, sid);
    return out;
}

/* logits (T, V) of SYNTH_TOKENS with adapter a (may be NULL) at scale s, in a new context; malloc'ed */
static float *run_logits(const pulse_lm *m, const pulse_lora *a, float s) {
    pulse_lm_ctx *c = NULL;
    if (pulse_lm_ctx_new(m, NULL, &c)) return NULL;
    float *out = a && pulse_lm_ctx_set_lora(c, a, s) ? NULL : ctx_logits(c, m);
    pulse_lm_ctx_free(c);
    return out;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_arch(const synth_cfg *cfg) {
    char mpath[512], apath[512], merged[512];
    snprintf(mpath, sizeof mpath, "%s/%s.gguf", tmpdir, cfg->name);
    snprintf(apath, sizeof apath, "%s/%s.lora.gguf", tmpdir, cfg->name);
    snprintf(merged, sizeof merged, "%s/%s.merged.gguf", tmpdir, cfg->name);
    CHECK(synth_write(cfg, mpath) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(mpath, NULL, &m));
    if (!m) return;
    const int V = pulse_lm_get_hparams(m)->n_vocab;
    pulse_lora_params p = pulse_lora_default_params();
    p.rank = 4;
    p.alpha = 8;
    p.targets = 0x7f; /* every projection */
    p.seed = 7;
    pulse_lora *a = NULL;
    CHECK_OK(pulse_lora_new(m, &p, &a));
    if (!a) return;
    /* B = 0 at creation: the adapter changes nothing yet */
    float *base = run_logits(m, NULL, 0), *zero = run_logits(m, a, 1.0f);
    CHECK(base && zero && max_diff(base, zero, (size_t)SYNTH_T * V) == 0);
    size_t np = 0;
    float *d = pulse_lora_params_data(a, &np);
    pulse_rng rng;
    pulse_rng_seed(&rng, 3);
    for (size_t i = 0; i < np; i++) d[i] = 0.3f * pulse_rng_normal(&rng);
    CHECK_OK(pulse_lora_save(a, apath));
    /* the file as llama.cpp reads it */
    pulse_gguf *g = NULL;
    CHECK_OK(pulse_gguf_open(apath, &g));
    if (g) {
        pulse_gguf_str s;
        float alpha = 0;
        CHECK(pulse_gguf_get_str(g, "general.type", &s) == PULSE_OK && pulse_gguf_str_eq(s, "adapter"));
        CHECK(pulse_gguf_get_str(g, "adapter.type", &s) == PULSE_OK && pulse_gguf_str_eq(s, "lora"));
        CHECK(pulse_gguf_get_str(g, "general.architecture", &s) == PULSE_OK &&
              pulse_gguf_str_eq(s, cfg->arch));
        CHECK(pulse_gguf_get_f32(g, "adapter.lora.alpha", &alpha) == PULSE_OK && alpha == 8.0f);
        CHECK((int)pulse_gguf_n_tensors(g) == 2 * pulse_lora_n_tensors(a));
        const char *q = cfg->fused ? "blk.0.attn_qkv.weight" : "blk.0.attn_q.weight";
        char nm[96];
        snprintf(nm, sizeof nm, "%s.lora_a", q);
        const pulse_gguf_tensor *ta = pulse_gguf_find_tensor(g, nm);
        snprintf(nm, sizeof nm, "%s.lora_b", q);
        const pulse_gguf_tensor *tb = pulse_gguf_find_tensor(g, nm);
        const pulse_gguf_tensor *tw = NULL;
        pulse_gguf *mg = NULL;
        CHECK_OK(pulse_gguf_open(mpath, &mg));
        if (mg) tw = pulse_gguf_find_tensor(mg, q);
        CHECK(ta && tb && tw);
        if (ta && tb && tw) { /* llama-adapter.cpp's checks */
            CHECK(ta->type == PULSE_GGML_F32 && tb->type == PULSE_GGML_F32);
            CHECK(ta->ne[0] == tw->ne[0] && tb->ne[1] == tw->ne[1] && ta->ne[1] == tb->ne[0] &&
                  ta->ne[1] == 4);
        }
        pulse_gguf_close(mg);
        pulse_gguf_close(g);
    }
    pulse_lora *b = NULL;
    CHECK_OK(pulse_lora_load(m, apath, &b));
    if (b) {
        size_t nb = 0;
        const float *db = pulse_lora_params_data(b, &nb);
        CHECK(nb == np && memcmp(db, d, sizeof(float) * np) == 0);
        CHECK(pulse_lora_rank(b) == 4 && pulse_lora_alpha(b) == 8.0f &&
              pulse_lora_n_tensors(b) == pulse_lora_n_tensors(a));
        CHECK(pulse_lora_targets(b) == (cfg->fused ? 0x7fu & ~(unsigned)PULSE_LORA_GATE : 0x7fu));
    }
    /* forward with the adapter == the merged model (f32 weights: the same products up to rounding) */
    float *with = run_logits(m, b, 0.5f), *zs = run_logits(m, b, 0.0f);
    CHECK_OK(pulse_lora_export_merged(m, b, 0.5f, merged));
    pulse_lm *mm = NULL;
    CHECK_OK(pulse_lm_load(merged, NULL, &mm));
    float *ref = mm ? run_logits(mm, NULL, 0) : NULL;
    CHECK(with && zs && ref);
    if (with && zs && ref && base) {
        const size_t n = (size_t)SYNTH_T * V;
        double dm = max_diff(with, ref, n), db = max_diff(with, base, n);
        printf("%s: |adapter - merged| %.2e, |adapter - base| %.2e\n", cfg->name, dm, db);
        CHECK_MSG(db > 1e-2, "%s: the adapter changes the logits (%g)", cfg->name, db);
        /* weights quantised to q8_0 / bf16 / f16 in the base are f32 in the merged file */
        const double tol = cfg->wtype == PULSE_GGML_F32 ? 2e-3 : 0.15 * db + 0.05;
        CHECK_MSG(dm < tol, "%s: adapter vs merged %g (tol %g)", cfg->name, dm, tol);
        CHECK(max_diff(zs, base, n) == 0);
        /* the same logits at 1 and 3 threads. At these synthetic sizes every product runs on one thread, so
         * this guards the forward's own threading only; the BLAS split that made real-model LoRA logits
         * depend on --threads (pk_sgemm's row chunks) is not reached here and has no test. */
        const int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        float *w1 = run_logits(m, b, 0.5f);
        omp_set_num_threads(3);
        float *w3 = run_logits(m, b, 0.5f);
        omp_set_num_threads(nt);
        CHECK_MSG(w1 && w3 && !memcmp(w1, with, sizeof(float) * n) && !memcmp(w3, with, sizeof(float) * n),
                  "%s: logits with the adapter change with the thread count", cfg->name);
        free(w1), free(w3);
        /* one context: attach, detach, attach again; then B doubled and attached again at half the scale
         * (powers of two: the same products bit for bit) -- the context's B^T follows each attachment */
        pulse_lm_ctx *c = NULL;
        CHECK_OK(pulse_lm_ctx_new(m, NULL, &c));
        if (c) {
            float *l1 = NULL, *l0 = NULL, *l2 = NULL, *l3 = NULL;
            if (!pulse_lm_ctx_set_lora(c, b, 0.5f)) l1 = ctx_logits(c, m);
            if (!pulse_lm_ctx_set_lora(c, NULL, 0.0f)) l0 = ctx_logits(c, m);
            if (!pulse_lm_ctx_set_lora(c, b, 0.5f)) l2 = ctx_logits(c, m);
            size_t nb = 0;
            float *db = pulse_lora_params_data(b, &nb);
            for (int p = 0; p < pulse_lora_n_tensors(b); p++) {
                const char *nm;
                const float *A, *B;
                int r, in, out;
                if (pulse_lora_pair(b, p, &nm, &A, &B, &r, &in, &out)) continue;
                float *Bw = db + (B - db);
                for (size_t k = 0; k < (size_t)out * r; k++) Bw[k] *= 2.0f;
            }
            if (!pulse_lm_ctx_set_lora(c, b, 0.25f)) l3 = ctx_logits(c, m);
            CHECK_MSG(l1 && l0 && l2 && l3 && !memcmp(l1, with, sizeof(float) * n) &&
                          !memcmp(l0, base, sizeof(float) * n) && !memcmp(l2, with, sizeof(float) * n) &&
                          !memcmp(l3, with, sizeof(float) * n),
                      "%s: re-attaching an adapter to one context", cfg->name);
            free(l1), free(l0), free(l2), free(l3);
            pulse_lm_ctx_free(c);
        }
    }
    free(base), free(zero), free(with), free(zs), free(ref);
    pulse_lm_free(mm);
    pulse_lora_free(b);
    pulse_lora_free(a);
    pulse_lm_free(m);
    unlink(apath), unlink(merged), unlink(mpath);
}

/* A hand-built adapter for the llama synth model (E 64, Q 64, KV 32): q of layer 0 with the given ne. */
static void write_bad(const char *path, const char *type, const char *arch, const char *na,
                      const int64_t *nea, const char *nb, const int64_t *neb) {
    gguf_builder g;
    gb_init(&g);
    if (arch) gb_kv_str(&g, "general.architecture", arch);
    if (type) gb_kv_str(&g, "general.type", type);
    gb_kv_str(&g, "adapter.type", "lora");
    gb_kv_f32(&g, "adapter.lora.alpha", 16.0f);
    static float zeros[64 * 64 * 4];
    if (na) gb_tensor(&g, na, 0, 2, nea, zeros, sizeof(float) * (size_t)(nea[0] * nea[1]));
    if (nb) gb_tensor(&g, nb, 0, 2, neb, zeros, sizeof(float) * (size_t)(neb[0] * neb[1]));
    uint8_t *buf;
    size_t n = gb_finish(&g, &buf);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, n, f);
        fclose(f);
    }
    free(buf);
}

static void expect_refused(const pulse_lm *m, const char *path, const char *what, const char *needle) {
    pulse_lora *a = NULL;
    pulse_status st = pulse_lora_load(m, path, &a);
    const char *msg = pulse_last_error();
    CHECK_MSG(st != PULSE_OK && a == NULL, "%s: loaded", what);
    CHECK_MSG(msg && strstr(msg, needle), "%s: message '%s' lacks '%s'", what, msg ? msg : "", needle);
    printf("%s -> %s\n", what, msg ? msg : "");
    pulse_lora_free(a);
}

static void test_malformed(void) {
    char mpath[512], bad[512];
    snprintf(mpath, sizeof mpath, "%s/llama.gguf", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", tmpdir);
    CHECK(synth_write(&SYNTH_CFGS[0], mpath) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(mpath, NULL, &m));
    if (!m) return;
    const char *qa = "blk.0.attn_q.weight.lora_a", *qb = "blk.0.attn_q.weight.lora_b";
    const int64_t a8[2] = {64, 8}, b8[2] = {8, 64}, b4[2] = {4, 64}, a8w[2] = {32, 8}, b8w[2] = {8, 48};
    write_bad(bad, "adapter", "llama", qa, a8, qb, b8); /* well-formed control */
    pulse_lora *ok = NULL;
    CHECK_OK(pulse_lora_load(m, bad, &ok));
    CHECK(ok && pulse_lora_rank(ok) == 8 && pulse_lora_n_tensors(ok) == 1);
    pulse_lora_free(ok);
    write_bad(bad, "adapter", "llama", qa, a8, qb, b4);
    expect_refused(m, bad, "wrong rank", "rank mismatch");
    write_bad(bad, "adapter", "llama", qa, a8, NULL, NULL);
    expect_refused(m, bad, "missing tensor", "missing tensor blk.0.attn_q.weight.lora_b");
    write_bad(bad, "adapter", "llama", qa, a8w, qb, b8);
    expect_refused(m, bad, "shape (in) not matching the model", "do not match the model");
    write_bad(bad, "adapter", "llama", qa, a8, qb, b8w);
    expect_refused(m, bad, "shape (out) not matching the model", "do not match the model");
    write_bad(bad, "adapter", "gemma3", qa, a8, qb, b8);
    expect_refused(m, bad, "wrong architecture", "general.architecture");
    write_bad(bad, "model", "llama", qa, a8, qb, b8);
    expect_refused(m, bad, "not an adapter", "general.type");
    write_bad(bad, "adapter", "llama", "blk.9.attn_q.weight.lora_a", a8, "blk.9.attn_q.weight.lora_b", b8);
    expect_refused(m, bad, "layer the model lacks", "no such projection");
    write_bad(bad, "adapter", "llama", "blk.0.attn_q.weight.lora_x", a8, NULL, NULL);
    expect_refused(m, bad, "unknown suffix", "lora_a or .lora_b");
    write_bad(bad, "adapter", "llama", NULL, NULL, NULL, NULL);
    expect_refused(m, bad, "no tensors", "has no tensors");
    /* truncated file */
    FILE *f = fopen(bad, "wb");
    if (f) {
        fwrite("GGUF\3\0\0\0", 1, 8, f);
        fclose(f);
    }
    expect_refused(m, bad, "truncated", "gguf");
    unsigned mask = 0;
    CHECK_OK(pulse_lora_parse_targets("q,k,v,o", &mask));
    CHECK(mask == PULSE_LORA_ATTN);
    CHECK_OK(pulse_lora_parse_targets("gate,up,down", &mask));
    CHECK(mask == (PULSE_LORA_GATE | PULSE_LORA_UP | PULSE_LORA_DOWN));
    CHECK(pulse_lora_parse_targets("q,x", &mask) != PULSE_OK);
    CHECK(pulse_lora_parse_targets("", &mask) != PULSE_OK);
    pulse_lora_params p = pulse_lora_default_params();
    pulse_lora *a = NULL;
    p.rank = 0;
    CHECK(pulse_lora_new(m, &p, &a) != PULSE_OK && !a);
    pulse_lm_free(m);
    unlink(bad), unlink(mpath);
}

/* `pulse lm score / generate --lora FILE [--lora-scale S]` on the synthetic llama model */
static void test_cli(void) {
    char mpath[512], apath[512], cmd[2048], out[8192], base[256], with[256], zs[256];
    snprintf(mpath, sizeof mpath, "%s/cli.gguf", tmpdir);
    snprintf(apath, sizeof apath, "%s/cli.lora.gguf", tmpdir);
    synth_cfg cfg = SYNTH_CFGS[0]; /* llama with the byte-level tokenizer */
    cfg.V = SYNTH_TOK_V;
    synth_opts o = {0};
    o.tokenizer = 1;
    CHECK(synth_write_opts(&cfg, mpath, &o) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(mpath, NULL, &m));
    if (!m) return;
    pulse_lora *a = NULL;
    CHECK_OK(pulse_lora_new(m, NULL, &a));
    size_t np = 0;
    float *d = a ? pulse_lora_params_data(a, &np) : NULL;
    pulse_rng rng;
    pulse_rng_seed(&rng, 5);
    for (size_t i = 0; i < np; i++) d[i] = 0.2f * pulse_rng_normal(&rng);
    if (a) CHECK_OK(pulse_lora_save(a, apath));
    const char *sc = " lm score -m '%s' -p 'ab' --continuation 'cab' -t 1";
    snprintf(cmd, sizeof cmd, "%s%s 2>&1", PULSE_CLI, sc);
    char fmt[512];
    snprintf(fmt, sizeof fmt, "%s%s 2>&1", PULSE_CLI, sc);
    snprintf(cmd, sizeof cmd, fmt, mpath);
    CHECK(test_run_last(cmd, base, sizeof base) == 0);
    snprintf(fmt, sizeof fmt, "%s%s --lora '%%s' 2>&1", PULSE_CLI, sc);
    snprintf(cmd, sizeof cmd, fmt, mpath, apath);
    CHECK(test_run_last(cmd, with, sizeof with) == 0);
    snprintf(fmt, sizeof fmt, "%s%s --lora '%%s' --lora-scale 0 2>&1", PULSE_CLI, sc);
    snprintf(cmd, sizeof cmd, fmt, mpath, apath);
    CHECK(test_run_last(cmd, zs, sizeof zs) == 0);
    printf("score: base %s, lora %s, lora-scale 0 %s\n", base, with, zs);
    CHECK(strstr(base, "logprob") && strcmp(base, with) != 0 && strcmp(base, zs) == 0);
    snprintf(cmd, sizeof cmd, "%s lm generate -m '%s' -p 'ab' -n 4 --temp 0 -t 1 --lora '%s' 2>&1", PULSE_CLI,
             mpath, apath);
    CHECK(test_run(cmd, out, sizeof out) == 0);
    snprintf(cmd, sizeof cmd, "%s lm score -m '%s' -p 'ab' --continuation 'c' --lora '%s' 2>&1", PULSE_CLI,
             mpath, mpath);
    CHECK(test_run(cmd, out, sizeof out) == 1);
    CHECK_MSG(strstr(out, "general.type") != NULL, "a model given as an adapter: '%s'", out);
    snprintf(cmd, sizeof cmd, "%s lm generate -m '%s' -p 'ab' --lora /nonexistent.gguf 2>&1", PULSE_CLI,
             mpath);
    CHECK(test_run(cmd, out, sizeof out) == 1);
    CHECK(strstr(out, "nonexistent") != NULL);
    pulse_lora_free(a);
    pulse_lm_free(m);
    unlink(apath), unlink(mpath);
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f) return -1;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

/* `pulse lm train` on the synthetic llama model with the byte-level tokenizer: the documented flags, the last
 * stdout line, the adapter file, the JSONL log, checkpoint + --resume equal to an uninterrupted run, and the
 * usage / data errors */
static void test_cli_train(void) {
    char mpath[512], data[512], bad[512], o1[512], o2[512], cmd[4096], last[4096], out[8192];
    snprintf(mpath, sizeof mpath, "%s/tr.gguf", tmpdir);
    snprintf(data, sizeof data, "%s/tr.jsonl", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmpdir);
    snprintf(o1, sizeof o1, "%s/a1.gguf", tmpdir);
    snprintf(o2, sizeof o2, "%s/a2.gguf", tmpdir);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    synth_opts so = {0};
    so.tokenizer = 1;
    CHECK(synth_write_opts(&cfg, mpath, &so) == 0);
    CHECK(write_text(data, "{\"prompt\": \"ab cd\", \"completion\": \" ef\"}\n"
                           "{\"prompt\": \"hi there\", \"completion\": \" hi\"}\n\n"
                           "{\"prompt\": \"x\", \"completion\": \" yz!\"}\n"
                           "{\"prompt\": \"<|im_start|>q\", \"completion\": \" r\"}\n") == 0);
    snprintf(
        cmd, sizeof cmd,
        "%s lm train --model '%s' --data '%s' --out '%s' --rank 4 --alpha 8 --lr 1e-2 --epochs 3 --batch 2 "
        "--grad-accum 1 --targets q,k,v,o,gate,up,down --seed 3 -t 1 2>&1",
        PULSE_CLI, mpath, data, o1);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    cJSON *j = cJSON_Parse(last);
    CHECK_MSG(j != NULL, "last line '%s'", last);
    if (j) {
        const cJSON *fl = cJSON_GetObjectItem(j, "final_loss"), *fs = cJSON_GetObjectItem(j, "first_loss"),
                    *tk = cJSON_GetObjectItem(j, "tokens"), *sc = cJSON_GetObjectItem(j, "seconds"),
                    *st = cJSON_GetObjectItem(j, "steps");
        CHECK(cJSON_IsNumber(fl) && cJSON_IsNumber(tk) && cJSON_IsNumber(sc) && cJSON_IsNumber(st));
        if (cJSON_IsNumber(st)) CHECK(st->valueint == 6); /* 4 examples, batch 2, 3 epochs */
        if (cJSON_IsNumber(fl) && cJSON_IsNumber(fs)) CHECK(fl->valuedouble < fs->valuedouble);
        if (cJSON_IsNumber(tk)) CHECK(tk->valuedouble > 0);
        cJSON_Delete(j);
    }
    char p2[600];
    snprintf(p2, sizeof p2, "%s.log.jsonl", o1);
    CHECK(count_lines(p2) == 6);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(mpath, NULL, &m));
    pulse_lora *a = NULL;
    if (m) CHECK_OK(pulse_lora_load(m, o1, &a));
    if (a) CHECK(pulse_lora_rank(a) == 4 && pulse_lora_alpha(a) == 8.0f && pulse_lora_n_tensors(a) == 14);
    pulse_lora_free(a);
    pulse_lm_free(m);
    /* interrupted (3 steps) then resumed to 5 == 5 steps at once (constant schedule: no dependence on the
     * total) */
    const char *common =
        "--rank 2 --epochs 4 --batch 1 --grad-accum 2 --schedule constant --warmup 0 --seed 5 -t 1";
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' -o '%s' %s --max-steps 5 2>&1", PULSE_CLI, mpath,
             data, o1, common);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' -o '%s' %s --max-steps 3 2>&1", PULSE_CLI, mpath,
             data, o2, common);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' -o '%s' %s --max-steps 5 --resume 2>&1", PULSE_CLI,
             mpath, data, o2, common);
    CHECK(test_run_last(cmd, last, sizeof last) == 0);
    CHECK_MSG(strstr(last, "\"resumed_from\":3") && strstr(last, "\"steps\":5"), "resumed run: %s", last);
    char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK_OK(pulse_read_file(o1, &b1, &l1));
    CHECK_OK(pulse_read_file(o2, &b2, &l2));
    CHECK_MSG(b1 && b2 && l1 == l2 && memcmp(b1, b2, l1) == 0,
              "resumed adapter differs from the uninterrupted one");
    free(b1), free(b2);
    snprintf(p2, sizeof p2, "%s.log.jsonl", o2);
    CHECK(count_lines(p2) == 5);
    /* errors */
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' 2>&1", PULSE_CLI, mpath, data);
    CHECK(test_run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' -o '%s' --targets q,x 2>&1", PULSE_CLI, mpath,
             data, o1);
    CHECK(test_run(cmd, out, sizeof out) == 2);
    CHECK(strstr(out, "unknown target") != NULL);
    CHECK(write_text(bad, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n") == 0);
    snprintf(cmd, sizeof cmd, "%s lm train -m '%s' -d '%s' -o '%s' 2>&1", PULSE_CLI, mpath, bad, o1);
    CHECK(test_run(cmd, out, sizeof out) == 1);
    CHECK_MSG(strstr(out, "bad.jsonl:2") != NULL, "malformed line: %s", out);
    snprintf(cmd, sizeof cmd, "%s lm train -m /nonexistent.gguf -d '%s' -o '%s' 2>&1", PULSE_CLI, data, o1);
    CHECK(test_run(cmd, out, sizeof out) == 1);
    const char *files[] = {o1, o2, data, bad, mpath};
    for (int i = 0; i < 5; i++) {
        char f[600];
        unlink(files[i]);
        snprintf(f, sizeof f, "%s.log.jsonl", files[i]);
        unlink(f);
        snprintf(f, sizeof f, "%s.ckpt", files[i]);
        unlink(f);
    }
}

int main(void) {
    pulse_progress_set_quiet(1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pulse_lm_lora_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_apply_bits();
    for (int i = 0; i < SYNTH_N_CFGS; i++) test_arch(&SYNTH_CFGS[i]);
    test_malformed();
    test_cli();
    test_cli_train();
    rmdir(tmpdir);
    return test_summary();
}
