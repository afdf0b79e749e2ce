/* tests/test_eval_ref.c — eval against an independent reference: the popularity baseline's full-ranking
 * metrics (test and valid split, history mask and keep) equal the numbers scripts/eval_ref.py computes with
 * numpy (tests/fixtures/eval_pop_ref.json) on the synthetic dataset, the synthetic dataset with repeat
 * consumption (--repeat 0.1), and on Beauty and MovieLens-100k when ../shared is present. */
#include "test.h"

#include <cjson/cJSON.h>

#include "pulse/data.h"
#include "pulse/eval.h"

static void compare(const char *name, pulse_dataset *ds, cJSON *ref) {
    const char *splits[2] = {"test", "valid"};
    const char *keys[8] = {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"};
    pulse_pop *pop = NULL;
    CHECK_OK(pulse_pop_fit(ds, &pop));
    for (int hs = 0; hs < 4 && pop; hs++) {
        int s = hs % 2;
        pulse_history hm = hs < 2 ? PULSE_HISTORY_MASK : PULSE_HISTORY_KEEP;
        cJSON *r = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(ref, name), pulse_history_name(hm)), splits[s]);
        CHECK_MSG(r != NULL, "%s/%s/%s missing in the fixture", name, pulse_history_name(hm), splits[s]);
        if (!r) continue;
        pulse_eval_params ep = pulse_eval_default_params();
        ep.split = s == 0 ? PULSE_SPLIT_TEST : PULSE_SPLIT_VALID;
        ep.history = hm;
        pulse_metrics m;
        CHECK_OK(pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m));
        CHECK(m.n_users == cJSON_GetObjectItem(r, "users")->valueint);
        CHECK_MSG(m.n_repeat == cJSON_GetObjectItem(r, "repeats")->valueint, "%s: %d repeats, reference %d",
                  name, m.n_repeat, cJSON_GetObjectItem(r, "repeats")->valueint);
        double got[8] = {m.hr1, m.hr5, m.hr10, m.hr20, m.ndcg5, m.ndcg10, m.ndcg20, m.mrr};
        cJSON *mr = cJSON_GetObjectItem(r, "metrics");
        for (int k = 0; k < 8; k++) {
            cJSON *v = cJSON_GetObjectItem(mr, keys[k]);
            CHECK_MSG(v && fabs(v->valuedouble - got[k]) < 1e-9, "%s %s %s %s: pulse %.9f, reference %.9f",
                      name, pulse_history_name(hm), splits[s], keys[k], got[k], v ? v->valuedouble : -1.0);
        }
        if (s == 0)
            printf("%-16s pop test, history %s: HR@10 %.6f NDCG@10 %.6f, %d repeated targets (reference "
                   "agrees)\n",
                   name, pulse_history_name(hm), m.hr10, m.ndcg10, m.n_repeat);
    }
    pulse_pop_free(pop);
}

int main(void) {
    pulse_progress_set_quiet(1);
    char *txt = NULL;
    CHECK_OK(pulse_read_file(PULSE_SOURCE_DIR "/tests/fixtures/eval_pop_ref.json", &txt, NULL));
    cJSON *ref = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    CHECK(ref != NULL);
    if (!ref) return test_summary();

    pulse_synth_params sp = pulse_synth_default_params();
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (ds) compare("synthetic", ds, ref);
    pulse_dataset_free(ds);
    sp.repeat = 0.1f;
    ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (ds) compare("synthetic-repeat", ds, ref);
    pulse_dataset_free(ds);

    const char *names[2] = {"amazon-beauty", "movielens-100k"};
    for (int i = 0; i < 2; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/data/%s", test_shared_dir(), names[i]);
        if (!pulse_file_exists(p) || !cJSON_GetObjectItem(ref, names[i])) {
            test_skip_part("%s: no shared data at %s", names[i], p);
            continue;
        }
        ds = NULL;
        CHECK_OK(pulse_dataset_load(p, NULL, &ds));
        if (ds) compare(names[i], ds, ref);
        pulse_dataset_free(ds);
    }
    cJSON_Delete(ref);
    return test_summary();
}
