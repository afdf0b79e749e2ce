/* bench/sasrec.c — SASRec training speed: seconds per epoch (training only), seconds per training target (one
 * (prefix -> next item) loss term: the unit RecBole's epochs are made of), one full-ranking valid evaluation,
 * peak RSS, on a dataset folder (default ../shared/data/amazon-beauty) with the setting (d=64, 2
 * blocks, 1 head, len 50, batch 128). With --valid-every-epoch (or --patience P: stop after P epochs without
 * a better valid NDCG@10) the valid split is evaluated after every epoch and "valid_curve" lists (epoch,
 * cumulative training seconds, valid NDCG@10): the time to reach a given valid NDCG@10
 * (bench/peers/recbole_sasrec.sh). Last stdout line: one JSON object. bench_sasrec --data DIR --loss ce|bce
 * --epochs N [--threads N] [--dim 64] [--maxlen 50] [--batch 128]
 *                [--valid-every-epoch] [--patience P] [--no-eval] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "pulse/data.h"
#include "pulse/eval.h"
#include "pulse/sasrec.h"

static double cpu_now(void) { /* CPU seconds of this process (all threads) */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double loadavg1(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    const char *data = NULL, *loss = "ce";
    int epochs = 2, threads = 0, no_eval = 0, every = 0, patience = 0;
    pulse_sasrec_params p = pulse_sasrec_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-eval") == 0) {
            no_eval = 1;
            continue;
        }
        if (strcmp(a, "--valid-every-epoch") == 0) {
            every = 1;
            continue;
        }
        if (!v || a[0] != '-') {
            fprintf(stderr,
                    "usage: bench_sasrec [--data DIR] [--loss ce|bce] [--epochs N] [--threads N] [--dim D] "
                    "[--maxlen T] [--batch B] [--valid-every-epoch] [--patience P] [--no-eval]\n");
            return 2;
        }
        i++;
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--loss") == 0)
            loss = v;
        else if (strcmp(a, "--epochs") == 0)
            epochs = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--dim") == 0)
            p.dim = atoi(v);
        else if (strcmp(a, "--maxlen") == 0)
            p.maxlen = atoi(v);
        else if (strcmp(a, "--batch") == 0)
            p.batch = atoi(v);
        else if (strcmp(a, "--patience") == 0)
            patience = atoi(v), every = 1;
        else {
            fprintf(stderr, "bench_sasrec: unknown option %s\n", a);
            return 2;
        }
    }
    if (strcmp(loss, "ce") == 0)
        p.loss = PULSE_SASREC_CE;
    else if (strcmp(loss, "bce") == 0)
        p.loss = PULSE_SASREC_BCE;
    else {
        fprintf(stderr, "bench_sasrec: --loss expects ce or bce\n");
        return 2;
    }
    if (epochs < 1) epochs = 1;
    if (!data) /* ../shared next to the repository, from the repository root or the build folder */
        data = pulse_file_exists("../shared/data/amazon-beauty") ? "../shared/data/amazon-beauty"
                                                                 : "../../shared/data/amazon-beauty";
    if (threads > 0) pulse_set_num_threads(threads);
    pulse_data_params dp = pulse_data_default_params();
    pulse_dataset *ds = NULL;
    if (pulse_dataset_load(data, &dp, &ds)) {
        fprintf(stderr, "bench_sasrec: %s\n", pulse_last_error());
        return 1;
    }
    pulse_sasrec *m = NULL;
    if (pulse_sasrec_create(pulse_dataset_n_items(ds), &p, &m)) {
        fprintf(stderr, "bench_sasrec: %s\n", pulse_last_error());
        pulse_dataset_free(ds);
        return 1;
    }
    /* training targets of one epoch: per user, the most recent min(L - 1, maxlen) (input, next item) pairs of
     * its train prefix of length L (src/sasrec/train.c batcher_fill) */
    size_t targets = 0;
    for (int u = 0; u < pulse_dataset_n_users(ds); u++) {
        int L = pulse_split_train_len(ds, u);
        if (L > 1) targets += (size_t)(L - 1 < p.maxlen ? L - 1 : p.maxlen);
    }
    pulse_eval_params ep = pulse_eval_default_params();
    ep.split = PULSE_SPLIT_VALID;
    enum { MAX_CURVE = 200 };
    static double curve_s[MAX_CURVE], curve_ndcg[MAX_CURVE];
    int n_curve = 0, best_epoch = 0, run = 0;
    double best_ndcg = -1;
    double load0 = loadavg1(), total = 0, best = 1e30, loss_v = 0, cpu = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = pulse_now(), c0 = cpu_now();
        if (pulse_sasrec_train_epoch(m, ds, &p, &loss_v)) {
            fprintf(stderr, "bench_sasrec: %s\n", pulse_last_error());
            return 1;
        }
        double dt = pulse_now() - t0;
        cpu += cpu_now() - c0;
        total += dt;
        run = e + 1;
        if (dt < best) best = dt;
        fprintf(stderr, "bench_sasrec: epoch %d  %.2f s  loss %.4f\n", e + 1, dt, loss_v);
        if (every) {
            pulse_metrics em;
            if (pulse_sasrec_evaluate(m, ds, &ep, &em)) {
                fprintf(stderr, "bench_sasrec: %s\n", pulse_last_error());
                return 1;
            }
            if (n_curve < MAX_CURVE) curve_s[n_curve] = total, curve_ndcg[n_curve++] = em.ndcg10;
            fprintf(stderr, "bench_sasrec: epoch %d  valid NDCG@10 %.5f  (training so far %.1f s)\n", e + 1,
                    em.ndcg10, total);
            if (em.ndcg10 > best_ndcg) best_ndcg = em.ndcg10, best_epoch = e + 1;
            if (patience > 0 && e + 1 - best_epoch >= patience) break;
        }
    }
    epochs = run;
    double eval_s = -1;
    pulse_metrics vm = {0};
    if (!no_eval) {
        double t0 = pulse_now();
        if (pulse_sasrec_evaluate(m, ds, &ep, &vm)) {
            fprintf(stderr, "bench_sasrec: %s\n", pulse_last_error());
            return 1;
        }
        eval_s = pulse_now() - t0;
    }
    char curve[12000] = "";
    size_t cl = 0;
    for (int i = 0; i < n_curve && cl < sizeof curve - 64; i++)
        cl += (size_t)snprintf(curve + cl, sizeof curve - cl,
                               "%s{\"epoch\":%d,\"train_s\":%.3f,\"ndcg10\":%.6f}", i ? "," : "", i + 1,
                               curve_s[i], curve_ndcg[i]);
    double load1 = loadavg1();
    printf("sasrec %s on %s: %.2f s/epoch (best %.2f, %.2f CPU s), full valid eval %.2f s, peak RSS %.1f MB, "
           "threads %d, "
           "load %.2f -> %.2f\n",
           loss, pulse_dataset_name(ds), total / epochs, best, cpu / epochs, eval_s,
           pulse_peak_rss_bytes() / 1048576.0, pulse_get_num_threads(), load0, load1);
    bench_emitf(
        "{\"bench\":\"sasrec\",\"dataset\":\"%s\",\"loss\":\"%s\",\"dim\":%d,\"blocks\":%d,\"maxlen\":%d,"
        "\"batch\":%d,"
        "\"epochs\":%d,\"seconds_per_epoch\":%.4f,\"cpu_seconds_per_epoch\":%.4f,\"best_epoch_seconds\":%.4f,"
        "\"eval_seconds\":%.4f,"
        "\"valid_ndcg10\":%.6f,\"last_loss\":%.6f,\"peak_rss_mb\":%.1f,\"threads\":%d,\"load_before\":%.2f,"
        "\"load_after\":%.2f,\"train_targets_per_epoch\":%zu,\"seconds_per_target\":%.4g,"
        "\"best_valid_ndcg10\":%.6f,\"best_epoch\":%d,\"valid_curve\":[%s]}\n",
        pulse_dataset_name(ds), loss, p.dim, p.blocks, p.maxlen, p.batch, epochs, total / epochs,
        cpu / epochs, best, eval_s, vm.ndcg10, loss_v, pulse_peak_rss_bytes() / 1048576.0,
        pulse_get_num_threads(), load0, load1, targets, targets ? total / epochs / (double)targets : 0.0,
        every ? best_ndcg : vm.ndcg10, every ? best_epoch : epochs, curve);
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
    return 0;
}
