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

static void test_arch(const synth_cfg *cfg) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, cfg->name);
    CHECK(synth_write(cfg, path) == 0);
    pulse_lm *m = NULL;
    CHECK_OK(pulse_lm_load(path, NULL, &m));
    if (!m) return;
    pulse_lora_params lp = pulse_lora_default_params();
    lp.rank = 2;
    lp.alpha = 4;
    lp.targets = 0x7f;
    lp.seed = 9;
    pulse_lora *a = NULL;
    CHECK_OK(pulse_lora_new(m, &lp, &a));
    if (!a) return;
    size_t np = 0;
    float *P = pulse_lora_params_data(a, &np);
    pulse_rng rng;
    pulse_rng_seed(&rng, 11);
    for (size_t i = 0; i < np; i++) P[i] = 0.25f * pulse_rng_normal(&rng);
    pulse_lm_example ex[2] = {{TOK_A, 9, 4}, {TOK_B, 12, 7}};
    pulse_lm_train_params tp = pulse_lm_train_default_params();
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
    unlink(path);
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
    test_schedule();
    rmdir(tmpdir);
    return test_summary();
}
