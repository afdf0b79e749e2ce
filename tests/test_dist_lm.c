/* tests/test_dist_lm.c — data-parallel `pulse lm train` (LoRA) on two MPI ranks (mpirun -np 2, launched by
 * this test; exits 77 = Skipped when the build has no MPI) against one process, on the tiny synthetic llama
 * model with the byte-level tokenizer: 7 examples, one optimizer step per epoch, 3 epochs = 3 steps, every
 * projection adapted, lr 1e-3, --exact-base. Three layouts: --batch 2 --grad-accum 4 (4 micro-batches: rank
 * 0 runs the first two, rank 1 the last two) with dropout 0 and 0.1, and --batch 8 --grad-accum 1 (one
 * micro-batch: rank 0 runs examples 0-2, rank 1 examples 3-6) with dropout 0.1. The masks are drawn per
 * example from (seed, step, example), so they are the same on any number of ranks and in any micro-batch
 * (the two one-process runs with dropout 0.1 agree too). Checked: the first and last loss of the JSON line
 * within 1e-6 relative, the 3 losses of the log within 1e-5 (it prints 6 decimals), the adapters within
 * 1e-5 absolute at most and 1e-6 root-mean-square (measured: losses equal to 10 digits, adapters max
 * 9.0e-7, RMS 2.3e-8). Why not bit-identical: the gradient is the sum of the two ranks' parts (another
 * float summation order) and, when the examples are split, the ranks' micro-batches have another padding
 * and other GEMM row counts. Why --exact-base: the default products quantise the activations to int8 per
 * block, and a last-bit difference in an activation can move its rounding by a whole quantisation step;
 * measured on this model without --exact-base (dropout 0.1, lr 1e-3): last loss 1e-5 relative apart,
 * adapter max 1.4e-3 in a few elements (AdamW's first step on an element moves it by about lr whatever the
 * gradient's size, so a changed sign moves it by up to 2 lr), RMS 1.8e-5: the same spread as changing
 * --batch on one process. Rank 0 alone writes the adapter, the log and the checkpoint; the JSON line
 * carries "ranks" and the all-reduce's bytes per step (the adapter's parameters, 4 bytes each, + 24). */
#include <cjson/cJSON.h>
#include <math.h>

#include "dist_test.h"
#include "lm_synth.h"
#include "pulse/lm.h"
#include "test.h"

#ifndef PULSE_MPIEXEC
int main(void) {
    test_skip("this build has no MPI (-DPULSE_MPI=ON with libopenmpi-dev installed)");
    return test_summary();
}
#else

static char out_buf[1 << 16];

/* the "loss" of the first n lines of a JSONL log into l; returns the lines read */
static int log_losses(const char *path, double *l, int n) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int k = 0;
    while (k < n && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        l[k++] = dist_num(o, "loss");
        cJSON_Delete(o);
    }
    fclose(f);
    return k;
}

static double compare(const char *dir, const char *model, const char *data, const char *dropout,
                      const char *split) {
    char cmd[4096], args[2048], a1[600], a2[600], l1[700], l2[700];
    snprintf(a1, sizeof a1, "%s/one_%s_%c.gguf", dir, dropout, split[8]); /* split[8]: the --batch value */
    snprintf(a2, sizeof a2, "%s/two_%s_%c.gguf", dir, dropout, split[8]);
    snprintf(args, sizeof args,
             "lm train --model %s --data %s --rank 4 --alpha 8 --lr 1e-3 --epochs 3 %s "
             "--targets q,k,v,o,gate,up,down --schedule constant --warmup 0 --dropout %s --seed 3 -t 1 "
             "--exact-base",
             model, data, split, dropout);
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s --out %s 2>/dev/null", PULSE_CLI, args, a1);
    int rc1 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *a = cJSON_Parse(test_last_line(out_buf));
    snprintf(cmd, sizeof cmd, "PULSE_QUIET=1 %s %s %s --out %s 2>/dev/null", MPIRUN, PULSE_CLI, args, a2);
    int rc2 = test_run(cmd, out_buf, sizeof out_buf);
    cJSON *b = cJSON_Parse(test_last_line(out_buf));
    CHECK(rc1 == 0 && rc2 == 0 && a && b);
    double fa = dist_num(a, "first_loss"), fb = dist_num(b, "first_loss"), za = dist_num(a, "final_loss"),
           zb = dist_num(b, "final_loss");
    printf("%s, dropout %s: 1 process -> %d, loss %.9f .. %.9f; 2 ranks -> %d, loss %.9f .. %.9f; %g "
           "bytes/step, "
           "%g s all-reduce\n",
           split, dropout, rc1, fa, za, rc2, fb, zb, dist_num(b, "allreduce_bytes_per_step"),
           dist_num(b, "comm_seconds"));
    CHECK(dist_num(a, "steps") == 3 && dist_num(b, "steps") == 3);
    CHECK(dist_num(a, "tokens") == dist_num(b, "tokens"));
    CHECK(dist_num(b, "ranks") == 2 && cJSON_GetObjectItem(a, "ranks") == NULL);
    CHECK(dist_num(b, "allreduce_bytes_per_step") > 24 && dist_num(b, "comm_seconds") >= 0);
    CHECK_MSG(fabs(fa - fb) <= 1e-6 * fabs(fa), "first loss %.12f vs %.12f", fa, fb);
    CHECK_MSG(fabs(za - zb) <= 1e-6 * fabs(za), "final loss %.12f vs %.12f", za, zb);
    CHECK(za < fa); /* it trains */
    cJSON_Delete(a);
    cJSON_Delete(b);
    snprintf(l1, sizeof l1, "%s.log.jsonl", a1);
    snprintf(l2, sizeof l2, "%s.log.jsonl", a2);
    double la[4], lb[4];
    CHECK(log_losses(l1, la, 4) == 3 && log_losses(l2, lb, 4) == 3);
    for (int i = 0; i < 3; i++) CHECK_MSG(fabs(la[i] - lb[i]) <= 1e-5 * fabs(la[i]), "step %d", i + 1);
    pulse_lm *m = NULL;
    pulse_lora *x = NULL, *y = NULL;
    CHECK_OK(pulse_lm_load(model, NULL, &m));
    if (m) CHECK_OK(pulse_lora_load(m, a1, &x));
    if (m) CHECK_OK(pulse_lora_load(m, a2, &y));
    if (x && y) {
        size_t n1 = 0, n2 = 0;
        const float *p1 = pulse_lora_params_data(x, &n1), *p2 = pulse_lora_params_data(y, &n2);
        CHECK(n1 == n2 && n1 > 0);
        double md = 0, ss = 0;
        for (size_t i = 0; i < n1 && n1 == n2; i++) {
            double d = fabs((double)p1[i] - (double)p2[i]);
            if (!(d <= md)) md = d; /* NaN counts as the largest */
            ss += d * d;
        }
        double rms = sqrt(ss / (double)(n1 ? n1 : 1));
        printf("%s, dropout %s: %zu adapter parameters, max |difference| %.3g, RMS %.3g\n", split, dropout,
               n1, md, rms);
        CHECK(md <= 1e-5);
        CHECK(rms <= 1e-6);
    }
    pulse_lora_free(x);
    pulse_lora_free(y);
    pulse_lm_free(m);
    return za;
}

int main(void) {
    char dir[] = "/tmp/pulse_dist_lmXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char model[512], data[512], cmd[1024];
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    snprintf(data, sizeof data, "%s/d.jsonl", dir);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    synth_opts so = {0};
    so.tokenizer = 1;
    CHECK(synth_write_opts(&cfg, model, &so) == 0);
    FILE *f = fopen(data, "w");
    CHECK(f != NULL);
    if (f) {
        static const char *const P[] = {"ab cd", "hi there", "x",  "a much longer prompt here",
                                        "q",     "mn op",    "rst"};
        static const char *const C[] = {" ef", " hi", " yz!", " ok", " r", " qr st", " uvw xyz"};
        for (int i = 0; i < 7; i++) fprintf(f, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", P[i], C[i]);
        fclose(f);
    }
    compare(dir, model, data, "0", "--batch 2 --grad-accum 4"); /* whole micro-batches per rank */
    double l2 = compare(dir, model, data, "0.1", "--batch 2 --grad-accum 4"); /* the same, with dropout */
    double l8 = compare(dir, model, data, "0.1", "--batch 8 --grad-accum 1"); /* 1 micro-batch: examples */
    CHECK_MSG(fabs(l2 - l8) <= 1e-6 * fabs(l2), "per-example masks: %.12f vs %.12f", l2, l8);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
#endif
