/* tools/pulse/cmd_eval.c — `pulse eval --data DIR --model pop ...`: evaluates a recommender under the shared
 * protocols and prints {"dataset","model","protocol","split","history","users",...,"metrics":{...}} as the
 * last stdout line. Models: pop (most popular in the training prefixes); later stages add theirs here. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pulse/eval.h"

int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *model = NULL, *protocol = "full", *split = "test", *history = NULL;
    pulse_eval_params ep = pulse_eval_default_params();
    int seed = (int)ep.seed, cands = ep.n_candidates;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &dir, "dataset folder"},
        {"--model|-m", CLI_STR, &model, "pop"},
        {"--protocol", CLI_STR, &protocol,
         "full (every item ranked; default) or sampled (the positive among N-1 negatives drawn outside the "
         "masked history)"},
        {"--history-mode", CLI_STR, &history, CLI_HISTORY_HELP},
        {"--candidates", CLI_INT, &cands, "sampled list size incl. the positive (default 20)",
         CLI_RANGE(2, CLI_INT_MAX)},
        {"--split", CLI_STR, &split, "test|valid (default test)"},
        {"--seed|-s", CLI_INT, &seed, "seed of the sampled negatives (default 42)"},
        {"--max-users", CLI_INT, &ep.max_users, "evaluate only the first N users (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse eval --data DIR --model pop [--protocol full|sampled] [--history-mode mask|keep]\n"
        "Leave-one-out: the test target is each user's last item, valid the one before; the history "
        "is\nwhat precedes it. By default (--history-mode mask, the RecBole / S3-Rec convention) every "
        "history item\nleaves the full ranking and is never a sampled negative - a held-out item "
        "that repeats an earlier\nitem of the user included, so that user counts as a miss; "
        "--history-mode keep masks nothing.\nTies count against the target.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!dir || !model) {
        fprintf(stderr, "pulse eval: --data DIR and --model are required\n");
        return 2;
    }
    int proto = (int)ep.protocol, spl = (int)ep.split;
    if (cli_protocol_split("eval", protocol, split, &proto, &spl)) return 2;
    ep.protocol = (pulse_protocol)proto;
    ep.split = (pulse_split)spl;
    int hist = (int)ep.history;
    if (cli_history("eval", history, &hist)) return 2;
    ep.history = (pulse_history)hist;
    ep.n_candidates = cands;
    ep.seed = (uint64_t)(int64_t)seed;
    if (strcmp(model, "pop") != 0) {
        fprintf(stderr, "pulse eval: unknown --model '%s' (this build has: pop; SASRec: pulse sasrec eval)\n",
                model);
        return 2;
    }
    pulse_dataset *ds;
    if (pulse_dataset_load(dir, NULL, &ds)) return cli_fail("eval");
    pulse_pop *pop;
    if (pulse_pop_fit(ds, &pop)) {
        pulse_dataset_free(ds);
        return cli_fail("eval");
    }
    pulse_metrics m;
    double t0 = pulse_now();
    pulse_status st = pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m);
    double dt = pulse_now() - t0;
    pulse_pop_free(pop);
    if (st) {
        pulse_dataset_free(ds);
        return cli_fail("eval");
    }
    printf("%s  model pop  protocol %s%s  split %s  history %s  users %d (skipped %d; repeated targets %d)  "
           "(%.2f s)\n",
           pulse_dataset_name(ds), protocol,
           ep.protocol == PULSE_PROTOCOL_SAMPLED ? (cands == 20 ? "/20" : "/N") : "", split,
           pulse_history_name(ep.history), m.n_users, m.n_skipped, m.n_repeat, dt);
    printf(
        "HR@1 %.4f  HR@5 %.4f  HR@10 %.4f  HR@20 %.4f  NDCG@5 %.4f  NDCG@10 %.4f  NDCG@20 %.4f  MRR %.4f\n",
        m.hr1, m.hr5, m.hr10, m.hr20, m.ndcg5, m.ndcg10, m.ndcg20, m.mrr);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
    cJSON_AddStringToObject(o, "model", "pop");
    cJSON_AddStringToObject(o, "protocol", protocol);
    if (ep.protocol == PULSE_PROTOCOL_SAMPLED) cJSON_AddNumberToObject(o, "candidates", cands);
    cJSON_AddStringToObject(o, "split", split);
    cli_eval_json(o, &ep, &m);
    cJSON *mj = cli_metrics_json(&m);
    if (mj) cJSON_AddItemToObject(o, "metrics", mj);
    cli_print_json(o);
    pulse_dataset_free(ds);
    return 0;
}
