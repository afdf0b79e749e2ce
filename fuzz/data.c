/* fuzz/data.c — libFuzzer target for the dataset readers: the input's first byte picks the format (S3-Rec
 * sequences.txt, RecBole .inter, LastFM sequences.tsv, Amazon 2018 JSON lines), the rest is the file. Every
 * input must give PULSE_OK with a consistent dataset, or an error status with a message; never a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pulse/data.h"
#include "pulse/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/pulse_fuzz_data_%d", (int)getpid());
        mkdir(dir, 0755);
        pulse_progress_set_quiet(1);
    }
    if (size < 1) return 0;
    static const char *names[4] = {"sequences.txt", "x.inter", "sequences.tsv", "r.json"};
    static const char *formats[4] = {"s3rec", "recbole", "lastfm", "amazon2018"};
    int k = data[0] & 3;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    pulse_data_params dp = pulse_data_default_params();
    dp.format = formats[k];
    dp.min_interactions = (data[0] >> 2) & 3;
    dp.keep_text = (data[0] >> 4) & 1;
    pulse_dataset *ds = NULL;
    pulse_status st = pulse_dataset_load(path, &dp, &ds);
    if (st == PULSE_OK) {
        size_t tot = 0;
        for (int u = 0; u < pulse_dataset_n_users(ds); u++) {
            int len;
            const int *s = pulse_dataset_user_seq(ds, u, &len);
            for (int i = 0; i < len; i++)
                if (s[i] < 1 || s[i] > pulse_dataset_n_items(ds)) abort();
            tot += (size_t)len;
            (void)pulse_dataset_user_key(ds, u);
            (void)pulse_dataset_review_text(ds, u, 0);
        }
        if (tot != pulse_dataset_n_interactions(ds)) abort();
        pulse_data_stats s;
        pulse_dataset_stats(ds, &s);
        if (pulse_dataset_n_items(ds) <= 100000) { /* evaluate small ones end to end */
            pulse_pop *pop = NULL;
            if (pulse_pop_fit(ds, &pop) == PULSE_OK) {
                pulse_metrics m;
                pulse_eval_params ep = pulse_eval_default_params();
                pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m);
                ep.protocol = PULSE_PROTOCOL_SAMPLED;
                ep.n_candidates = 3;
                pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m);
                pulse_pop_free(pop);
            }
        }
        pulse_dataset_free(ds);
    } else if (ds != NULL || pulse_last_error()[0] == 0) {
        abort();
    }
    unlink(path);
    return 0;
}
