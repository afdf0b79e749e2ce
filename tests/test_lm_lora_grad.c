/* tests/test_lm_lora_grad.c — the whole decoder's LoRA gradient against finite differences of the loss on
 * tiny synthetic models (llama, gemma3 with sliding window + QK-norm + post-norms + GEGLU + soft-cap, qwen2
 * with biases, llama with q8_0 weights), every projection adapted, two sequences of different lengths
 * (padding) with the loss on their completions only; the same gradient with and without per-layer
 * checkpointing; dropout masks reproducible from the seed; AdamW steps lower the loss; a fused-QKV model
 * refused clearly. */
#include "test.h"

#include <math.h>
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/lm.h"

static char tmpdir[256];

static const int TOK_A[] = {1, 17, 5, 42, 9, 33, 60, 7, 7};
static const int TOK_B[] = {3, 8, 21, 50, 3, 11, 2, 19, 44, 5, 6, 30};

/* A synthetic model written to tmpdir/name.gguf and loaded, with a rank-2 adapter (alpha 4) on every
 * target, initialised from seed. The file is removed once loaded (the model maps it). Returns 0 (after CHECK
 * failures) when either could not be made. */
static int load_with_lora(const synth_cfg *cfg, const char *name, uint64_t seed, pulse_lm **m,
                          pulse_lora **a) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    *m = NULL;
    *a = NULL;
    CHECK(synth_write(cfg, path) == 0);
    CHECK_OK(pulse_lm_load(path, NULL, m));
    unlink(path);
    if (!*m) return 0;
    pulse_lora_params lp = pulse_lora_default_params();
    lp.rank = 2;
    lp.alpha = 4;
    lp.targets = 0x7f;
    lp.seed = seed;
    CHECK_OK(pulse_lora_new(*m, &lp, a));
    return *a != NULL;
}

static void test_arch(const synth_cfg *cfg) {
    pulse_lm *m = NULL;
    pulse_lora *a = NULL;
    if (!load_with_lora(cfg, cfg->name, 9, &m, &a)) {
        pulse_lm_free(m);
        return;
    }
    size_t np = 0;
    float *P = pulse_lora_params_data(a, &np);
    pulse_rng rng;
    pulse_rng_seed(&rng, 11);
    for (size_t i = 0; i < np; i++) P[i] = 0.25f * pulse_rng_normal(&rng);
    pulse_lm_example ex[2] = {{TOK_A, 9, 4}, {TOK_B, 12, 7}};
    pulse_lm_train_params tp = pulse_lm_train_default_params();
    tp.exact_base = 1; /* unquantised activations: a smooth loss for the finite differences */
    pulse_lm_trainer *t = NULL;
    CHECK_OK(pulse_lm_trainer_new(m, a, &tp, &t));
    float *g = malloc(sizeof(float) * np), *g2 = malloc(sizeof(float) * np);
    double loss = 0;
    int nl = 0;
    CHECK_OK(pulse_lm_trainer_loss_grad(t, ex, 2, 0, g, &loss, &nl));
    CHECK(nl == 5 + 5);
    CHECK(isfinite(loss) && loss > 0);
    /* finite differences on a sample of every pair's A and B values */
    double dot = 0, na = 0, nf = 0, worst = 0, amax = 0;
    int n_checked = 0;
    for (int pi = 0; pi < pulse_lora_n_tensors(a); pi++) {
        const float *A, *B;
        int r, in, out;
        pulse_lora_pair(a, pi, NULL, &A, &B, &r, &in, &out);
        for (int s = 0; s < 4; s++) {
            const size_t off = s < 2 ? (size_t)(A - P) + pulse_rng_below(&rng, (uint32_t)(r * in))
                                     : (size_t)(B - P) + pulse_rng_below(&rng, (uint32_t)(r * out));
            /* gemma's GELU is llama.cpp's f16 table: the loss is a staircase at small steps, so a larger h */
            const float keep = P[off], h = cfg->gemma ? 4e-2f : 2e-3f;
            double lp1, lm1;
            P[off] = keep + h;
            pulse_lm_trainer_loss_grad(t, ex, 2, 0, NULL, &lp1, NULL);
            P[off] = keep - h;
            pulse_lm_trainer_loss_grad(t, ex, 2, 0, NULL, &lm1, NULL);
            P[off] = keep;
            const double fd = (lp1 - lm1) / (2.0 * h), an = g[off];
            dot += fd * an, na += an * an, nf += fd * fd;
            if (fabs(fd - an) > worst) worst = fabs(fd - an);
            if (fabs(an) > amax) amax = fabs(an);
            n_checked++;
        }
    }
    const double cosv = dot / (sqrt(na * nf) + 1e-30);
    printf("%s: loss %.5f over %d tokens, %d FD checks: cosine %.6f, max |fd - analytic| %.2e, max |grad| "
           "%.2e\n",
           cfg->name, loss, nl, n_checked, cosv, worst, amax);
    CHECK_MSG(cosv > 0.999, "%s: cosine %g", cfg->name, cosv);
    CHECK_MSG(worst < 0.05 * amax, "%s: max error %g of max |grad| %g", cfg->name, worst, amax);
    /* no checkpointing: the same numbers (the recomputed layers are the same computation) */
    pulse_lm_train_params tp2 = tp;
    tp2.checkpoint_layers = 0;
    pulse_lm_trainer *t2 = NULL;
    CHECK_OK(pulse_lm_trainer_new(m, a, &tp2, &t2));
    double loss2 = 0;
    if (t2) CHECK_OK(pulse_lm_trainer_loss_grad(t2, ex, 2, 0, g2, &loss2, NULL));
    CHECK(loss2 == loss && memcmp(g, g2, sizeof(float) * np) == 0);
    /* dropout: the same seed gives the same gradient; it differs from no dropout */
    double l3 = 0, l4 = 0;
    CHECK_OK(pulse_lm_trainer_loss_grad(t, ex, 2, 1, g2, &l3, NULL));
    CHECK_OK(pulse_lm_trainer_loss_grad(t2, ex, 2, 1, g, &l4, NULL));
    CHECK(l3 == l4 && l3 != loss && memcmp(g, g2, sizeof(float) * np) == 0);
    /* the default products (q8 activations on the int8 tiles, dX through the transposed q8_0 weights):
     * within quantisation error of the exact gradient; recomputation gives the same bits */
    {
        pulse_lm_train_params tf = tp;
        tf.exact_base = 0;
        pulse_lm_trainer *tq = NULL, *tq2 = NULL;
        CHECK_OK(pulse_lm_trainer_new(m, a, &tf, &tq));
        tf.checkpoint_layers = 0;
        CHECK_OK(pulse_lm_trainer_new(m, a, &tf, &tq2));
        float *gq = malloc(sizeof(float) * np), *gq2 = malloc(sizeof(float) * np);
        double lq = 0, lq2 = 0;
        CHECK_OK(pulse_lm_trainer_loss_grad(t, ex, 2, 0, g, &loss, NULL));
        if (tq && tq2 && gq && gq2) {
            CHECK_OK(pulse_lm_trainer_loss_grad(tq, ex, 2, 0, gq, &lq, NULL));
            CHECK_OK(pulse_lm_trainer_loss_grad(tq2, ex, 2, 0, gq2, &lq2, NULL));
            double d = 0, n1 = 0, n2 = 0, e2 = 0;
            for (size_t i = 0; i < np; i++)
                d += (double)g[i] * gq[i], n1 += (double)g[i] * g[i], n2 += (double)gq[i] * gq[i],
                    e2 += ((double)g[i] - gq[i]) * ((double)g[i] - gq[i]);
            const double cq = d / (sqrt(n1 * n2) + 1e-30);
            printf(
                "%s: q8 products: loss %.6f vs exact %.6f (rel %.2e), gradient cosine %.6f, relative error "
                "%.2e\n",
                cfg->name, lq, loss, fabs(lq - loss) / loss, cq, sqrt(e2 / (n1 + 1e-30)));
            CHECK_MSG(fabs(lq - loss) <= 2e-2 * loss, "%s: q8 loss %g vs %g", cfg->name, lq, loss);
            CHECK_MSG(cq > 0.99, "%s: q8 gradient cosine %g", cfg->name, cq);
            CHECK(lq2 == lq && memcmp(gq, gq2, sizeof(float) * np) == 0);
            double l5 = 0, l6 = 0; /* dropout: the same masks in the recomputation */
            CHECK_OK(pulse_lm_trainer_loss_grad(tq, ex, 2, 1, gq, &l5, NULL));
            CHECK_OK(pulse_lm_trainer_loss_grad(tq2, ex, 2, 1, gq2, &l6, NULL));
            CHECK(l5 == l6 && l5 != lq && memcmp(gq, gq2, sizeof(float) * np) == 0);
        }
        free(gq), free(gq2);
        pulse_lm_trainer_free(tq);
        pulse_lm_trainer_free(tq2);
    }
    /* a few AdamW steps on the two examples lower their loss */
    double l0 = 0, lend = 0, gn = 0;
    pulse_lm_trainer_free(t2);
    t2 = NULL;
    tp2 = tp;
    tp2.lr = 1e-2f;
    tp2.dropout = 0;
    tp2.warmup_steps = 0;
    tp2.schedule = PULSE_LM_SCHED_CONSTANT;
    CHECK_OK(pulse_lm_trainer_new(m, a, &tp2, &t2));
    for (int s = 0; t2 && s < 8; s++) {
        double l;
        CHECK_OK(pulse_lm_trainer_step(t2, ex, 2, 1, &l, &gn));
        if (s == 0) l0 = l;
        lend = l;
    }
    printf("%s: 8 AdamW steps: loss %.4f -> %.4f\n", cfg->name, l0, lend);
    CHECK(lend < l0);
    CHECK(t2 && pulse_lm_trainer_steps(t2) == 8);
    free(g), free(g2);
    pulse_lm_trainer_free(t2);
    pulse_lm_trainer_free(t);
    pulse_lora_free(a);
    pulse_lm_free(m);
}

static void test_schedule(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/sched.gguf", tmpdir);
    CHECK(synth_write(&SYNTH_CFGS[0], path) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(path, NULL, &m));
    pulse_lora *a = NULL;
    if (m) CHECK_OK(pulse_lora_new(m, NULL, &a));
    pulse_lm_train_params p = pulse_lm_train_default_params();
    p.total_steps = 100;
    p.warmup_steps = 10;
    pulse_lm_trainer *t = NULL;
    if (a) CHECK_OK(pulse_lm_trainer_new(m, a, &p, &t));
    if (t) {
        CHECK_NEAR(pulse_lm_trainer_lr(t, 5), 1e-4, 1e-9);
        CHECK_NEAR(pulse_lm_trainer_lr(t, 10), 2e-4, 1e-9);
        CHECK_NEAR(pulse_lm_trainer_lr(t, 55), 1e-4, 1e-9);
        CHECK(pulse_lm_trainer_lr(t, 100) < 1e-9);
    }
    pulse_lm_trainer_free(t);
    pulse_lora_free(a);
    pulse_lm_free(m);
    /* phi3's fused tensors: refused with a message */
    snprintf(path, sizeof path, "%s/phi3.gguf", tmpdir);
    CHECK(synth_write(&SYNTH_CFGS[3], path) == 0);
    m = NULL, a = NULL, t = NULL;
    CHECK_OK(pulse_lm_load(path, NULL, &m));
    if (m) CHECK_OK(pulse_lora_new(m, NULL, &a));
    if (a) {
        CHECK(pulse_lm_trainer_new(m, a, NULL, &t) == PULSE_ERR_UNSUPPORTED && !t);
        CHECK(strstr(pulse_last_error(), "fused") != NULL);
    }
    pulse_lora_free(a);
    pulse_lm_free(m);
    unlink(path);
}

/* Longer sequences (750 padded rows: the FFN runs in chunks of 512 rows) with dropout on: finite differences
 * of the loss with the same masks (fixed seed) against the gradient, exact products; the default products
 * within quantisation error of it. */
static void test_long(void) {
    pulse_lm *m = NULL;
    pulse_lora *a = NULL;
    if (!load_with_lora(&SYNTH_CFGS[0], "long", 5, &m, &a)) {
        pulse_lm_free(m);
        return;
    }
    size_t np = 0;
    float *P = a ? pulse_lora_params_data(a, &np) : NULL;
    pulse_rng rng;
    pulse_rng_seed(&rng, 21);
    for (size_t i = 0; i < np; i++) P[i] = 0.25f * pulse_rng_normal(&rng);
    int *tok = malloc(sizeof(int) * 690);
    for (int i = 0; i < 690; i++) tok[i] = 1 + (int)pulse_rng_below(&rng, 90);
    pulse_lm_example ex[3] = {{tok, 250, 200}, {tok + 250, 240, 230}, {tok + 490, 200, 190}};
    pulse_lm_train_params tp = pulse_lm_train_default_params();
    tp.exact_base = 1;
    tp.dropout = 0.2f;
    pulse_lm_trainer *t = NULL, *tq = NULL;
    if (a) CHECK_OK(pulse_lm_trainer_new(m, a, &tp, &t));
    tp.exact_base = 0;
    if (a) CHECK_OK(pulse_lm_trainer_new(m, a, &tp, &tq));
    float *g = malloc(sizeof(float) * np), *gq = malloc(sizeof(float) * np);
    double loss = 0, lq = 0;
    if (t && tq) {
        CHECK_OK(pulse_lm_trainer_loss_grad(t, ex, 3, 1, g, &loss, NULL));
        CHECK_OK(pulse_lm_trainer_loss_grad(tq, ex, 3, 1, gq, &lq, NULL));
        double dot = 0, na = 0, nf = 0;
        for (int k = 0; k < 40; k++) {
            const size_t off = pulse_rng_below(&rng, (uint32_t)np);
            const float keep = P[off], h = 2e-3f;
            double lp1, lm1;
            P[off] = keep + h;
            pulse_lm_trainer_loss_grad(t, ex, 3, 1, NULL, &lp1, NULL);
            P[off] = keep - h;
            pulse_lm_trainer_loss_grad(t, ex, 3, 1, NULL, &lm1, NULL);
            P[off] = keep;
            const double fd = (lp1 - lm1) / (2.0 * h);
            dot += fd * g[off], na += (double)g[off] * g[off], nf += fd * fd;
        }
        const double cfd = dot / (sqrt(na * nf) + 1e-30);
        double d = 0, n1 = 0, n2 = 0;
        for (size_t i = 0; i < np; i++)
            d += (double)g[i] * gq[i], n1 += (double)g[i] * g[i], n2 += (double)gq[i] * gq[i];
        const double cq = d / (sqrt(n1 * n2) + 1e-30);
        printf("long (750 rows, dropout 0.2): loss %.5f, 40 FD checks: cosine %.6f; q8 products: loss %.5f, "
               "gradient cosine %.6f\n",
               loss, cfd, lq, cq);
        CHECK_MSG(cfd > 0.999, "long: FD cosine %g", cfd);
        CHECK_MSG(cq > 0.99 && fabs(lq - loss) <= 2e-2 * loss, "long: q8 cosine %g, loss %g vs %g", cq, lq,
                  loss);
    }
    /* the default targets (q, k, v, o): the recomputation skips the FFN's GLU and down product; the same
     * numbers as keeping every layer */
    pulse_lora *a2 = NULL;
    CHECK_OK(pulse_lora_new(m, NULL, &a2));
    size_t np2 = 0;
    float *P2 = a2 ? pulse_lora_params_data(a2, &np2) : NULL;
    for (size_t i = 0; i < np2; i++) P2[i] = 0.1f * pulse_rng_normal(&rng);
    pulse_lm_trainer *tc = NULL, *tn = NULL;
    pulse_lm_train_params tp2 = pulse_lm_train_default_params();
    if (a2) CHECK_OK(pulse_lm_trainer_new(m, a2, &tp2, &tc));
    tp2.checkpoint_layers = 0;
    if (a2) CHECK_OK(pulse_lm_trainer_new(m, a2, &tp2, &tn));
    float *gc = malloc(sizeof(float) * (np2 ? np2 : 1)), *gn = malloc(sizeof(float) * (np2 ? np2 : 1));
    if (tc && tn) {
        double lc = 0, ln = 0;
        CHECK_OK(pulse_lm_trainer_loss_grad(tc, ex, 3, 1, gc, &lc, NULL));
        CHECK_OK(pulse_lm_trainer_loss_grad(tn, ex, 3, 1, gn, &ln, NULL));
        CHECK(lc == ln && memcmp(gc, gn, sizeof(float) * np2) == 0);
    }
    free(gc), free(gn);
    pulse_lm_trainer_free(tc);
    pulse_lm_trainer_free(tn);
    pulse_lora_free(a2);
    free(g), free(gq), free(tok);
    pulse_lm_trainer_free(t);
    pulse_lm_trainer_free(tq);
    pulse_lora_free(a);
    pulse_lm_free(m);
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_options o = pulse_default_options();
    o.bf16 = 0; /* fp32 products: finite differences need a smooth loss */
    o.quiet = 1;
    pulse_set_options(&o);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pulse_lora_grad_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (int i = 0; i < SYNTH_N_CFGS; i++)
        if (!SYNTH_CFGS[i].fused) test_arch(&SYNTH_CFGS[i]);
    test_long();
    test_schedule();
    rmdir(tmpdir);
    return test_summary();
}
