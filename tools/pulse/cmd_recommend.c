/* tools/pulse/cmd_recommend.c — `pulse sft build` (train / test JSONL for LoRA fine-tuning from a dataset and
 * a rationale store) and `pulse recommend` (one user's candidates ranked by the language model, with a
 * generated "why"): argument parsing and printing around pulse/recommend.h. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/recommend.h"

int cmd_sft_build(int argc, char **argv) {
    pulse_sft_build_params p = pulse_sft_build_default_params();
    const char *data = NULL, *rationales = "none", *out_train = NULL, *out_test = NULL, *chat = "on",
               *history = NULL;
    int seed = 42;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--db", CLI_STR, &p.db, "rationale store (SQLite; `pulse rationale phase1|tot`)"},
        {"--rationales", CLI_STR, &rationales,
         "none (default) | phase1 | tot: the rationale in training prompts"},
        {"--out-train", CLI_STR, &out_train, "training JSONL to write (what `pulse lm train` reads)"},
        {"--out-test", CLI_STR, &out_test, "test JSONL to write (the stored candidate lists with prompts)"},
        {"--users", CLI_INT, &p.users, "the first N users of the seeded order (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "users' order and candidates (42)"},
        {"--candidates", CLI_INT, &p.test_candidates, "test list size incl. the target (5)",
         CLI_RANGE(2, CLI_INT_MAX)},
        {"--train-candidates", CLI_INT, &p.prompt.train_candidates,
         "training prompt candidates incl. the target (10)", CLI_RANGE(2, 100000)},
        {"--train-history", CLI_INT, &p.prompt.train_history, "history titles in a training prompt (5)",
         CLI_RANGE(0, 1000)},
        {"--history-titles", CLI_INT, &p.prompt.test_history, "history titles in a test prompt (3)",
         CLI_RANGE(0, 1000)},
        {"--title-bytes", CLI_INT, &p.prompt.title_bytes, "cut titles to N bytes (200)",
         CLI_RANGE(8, 1 << 20)},
        {"--chat", CLI_STR, &chat,
         "on (default: lines carry \"chat\", so training uses the model's chat format when it has one) or "
         "off"},
        {"--history-mode", CLI_STR, &history, CLI_HISTORY_HELP},
        {"--model-hash", CLI_STR, &p.model_hash,
         "store rows of this model hash only (default: the key with most rows)"},
        {"--settings-hash", CLI_STR, &p.settings_hash, "store rows of this settings hash only"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse sft build --data DIR --db FILE --rationales none|phase1|tot --out-train FILE "
        "--out-test FILE\n                       [--users N --seed S --candidates N]\n"
        "Training line per user with a rationale: target = the last training item, the last 5 "
        "history titles,\n10 candidates (target + 9 items the user never had), \"Let me think: "
        "<rationale>. The recommendation is\"\n-> the target title in quotes. Test line per user: the "
        "test item among N candidates, the last\n3 history titles (train + valid), no rationale.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || (!out_train && !out_test)) {
        fprintf(stderr, "pulse sft build: --data and --out-train and/or --out-test are required\n");
        return 2;
    }
    int rat = pulse_rec_rationale_from_name(rationales);
    if (rat < 0) {
        fprintf(stderr, "pulse sft build: --rationales expects none | phase1 | tot, found '%s'\n",
                rationales);
        return 2;
    }
    p.rationale = (pulse_rec_rationale)rat;
    if (p.rationale != PULSE_REC_RAT_NONE && !p.db) {
        fprintf(stderr, "pulse sft build: --rationales %s needs --db FILE\n", rationales);
        return 2;
    }
    static const char *const cn[] = {"on", "off"};
    static const int cv[] = {1, 0};
    int hist = (int)p.history;
    if (cli_choice("sft build", "--chat", chat, cn, cv, 2, &p.prompt.chat) ||
        cli_history("sft build", history, &hist))
        return 2;
    p.history = (pulse_history)hist;
    p.seed = (uint64_t)(int64_t)seed;
    if ((out_train && cli_check_out_file("sft build", "--out-train", out_train)) ||
        (out_test && cli_check_out_file("sft build", "--out-test", out_test)))
        return 2;
    pulse_sft_build_report rep;
    if (pulse_sft_build(data, &p, out_train, out_test, &rep)) return cli_fail("sft build");
    fprintf(stderr,
            "sft build: %d users, %d training lines (%d without a rationale), %d test lists of %d (%.2f s)\n",
            rep.users, rep.train, rep.no_rationale, rep.test, p.test_candidates, rep.seconds);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rationales", rationales);
    cJSON_AddNumberToObject(o, "users", rep.users);
    cJSON_AddNumberToObject(o, "train", rep.train);
    cJSON_AddNumberToObject(o, "no_rationale", rep.no_rationale);
    cJSON_AddNumberToObject(o, "test", rep.test);
    cJSON_AddNumberToObject(o, "candidates", p.test_candidates);
    cJSON_AddNumberToObject(o, "seed", seed);
    if (rep.model_hash[0]) {
        cJSON_AddStringToObject(o, "model_hash", rep.model_hash);
        cJSON_AddStringToObject(o, "settings_hash", rep.settings_hash);
    }
    if (out_train) cJSON_AddStringToObject(o, "out_train", out_train);
    if (out_test) cJSON_AddStringToObject(o, "out_test", out_test);
    cJSON_AddNumberToObject(o, "seconds", rep.seconds);
    cli_print_json(o);
    return 0;
}

/* "a; b; c" -> trimmed non-empty titles (pointers into s, which is modified) */
static int split_titles(char *s, const char **out, int max) {
    int n = 0;
    for (char *tok = strtok(s, ";"); tok && n < max; tok = strtok(NULL, ";")) {
        while (*tok == ' ' || *tok == '\t') tok++;
        size_t l = strlen(tok);
        while (l > 0 && (tok[l - 1] == ' ' || tok[l - 1] == '\t' || tok[l - 1] == '\n')) tok[--l] = 0;
        if (*tok) out[n++] = tok;
    }
    return n;
}

int cmd_recommend(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *lora = NULL, *user_key = NULL, *history = NULL, *chat = "auto";
    pulse_rec_params rp = pulse_rec_default_params();
    const char *rank_score = "mean";
    int n_cands = 20, seed = 42, threads = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required: the catalogue)"},
        {"--model|-m", CLI_STR, &model, "GGUF language model (required)"},
        {"--lora", CLI_STR, &lora, "LoRA adapter (`pulse lm train`)"},
        {"--user|-u", CLI_STR, &user_key,
         "the dataset's user id: history = all but the test item, candidates = its stored test list"},
        {"--history", CLI_STR, &history, "\"title; title; ...\" (oldest first) for a user not in the data"},
        {"--candidates", CLI_INT, &n_cands, "candidates incl. the held-out item (20)", CLI_RANGE(2, 100000)},
        {"--seed|-s", CLI_INT, &seed, "candidate lists and the why's sampler (42)"},
        {"--rank-score", CLI_STR, &rank_score, "mean (per title token; default) or sum log-probability"},
        {"--max-new", CLI_INT, &rp.max_new_tokens, "tokens of the why at most (59)", CLI_RANGE(1, 100000)},
        {"--temp", CLI_FLOAT, &rp.temp, "why: temperature (0.3; 0 = greedy)", CLI_RANGE(0, 100)},
        {"--chat", CLI_STR, &chat, "auto (the model's chat format when it has one) or off"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r =
        cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                  "usage: pulse recommend --data DIR --model GGUF [--lora FILE] --user ID [--candidates N]\n"
                  "       pulse recommend --data DIR --model GGUF --history \"title; title; ...\"\n"
                  "The candidates ranked by the log-probability of their titles after the prompt (the rank "
                  "decoder), with\na generated rationale for the best one.",
                  NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !model || (!user_key == !history)) {
        fprintf(stderr, "pulse recommend: --data, --model and one of --user / --history are required\n");
        return 2;
    }
    static const char *const sn[] = {"mean", "sum"}, *const cn[] = {"auto", "off"};
    static const int sv[] = {PULSE_REC_SCORE_MEAN, PULSE_REC_SCORE_SUM}, cv[] = {1, 0};
    int rsc = 0, ch = 1;
    if (cli_choice("recommend", "--rank-score", rank_score, sn, sv, 2, &rsc) ||
        cli_choice("recommend", "--chat", chat, cn, cv, 2, &ch))
        return 2;
    rp.rank_score = (pulse_rec_rank_score)rsc;
    rp.prompt.chat = ch;
    rp.seed = (uint64_t)(int64_t)seed;
    rp.n_threads = threads;
    cli_set_threads("recommend", threads);
    pulse_dataset *ds = NULL;
    if (pulse_dataset_load(data, NULL, &ds)) return cli_fail("recommend");
    int rc = 0, user = -1, target = 0, K = n_cands, nh = 0;
    const char **ht = NULL, **ct = NULL;
    char **owned = NULL, *hbuf = NULL, *why = NULL;
    int *items = malloc(sizeof(int) * (size_t)K), *order = malloc(sizeof(int) * (size_t)K);
    double *score = malloc(sizeof(double) * (size_t)K);
    pulse_recommender *rec = NULL;
    double t0 = pulse_now();
    if (!items || !order || !score) {
        fprintf(stderr, "pulse recommend: out of memory\n");
        rc = 1;
        goto out;
    }
    if (user_key) {
        pulse_candset cs;
        pulse_eval_params ep = pulse_eval_default_params();
        ep.protocol = PULSE_PROTOCOL_SAMPLED;
        ep.n_candidates = K;
        ep.seed = rp.seed;
        if (pulse_rec_user_by_key(ds, user_key, &user) || pulse_candset_build(ds, &ep, &user, 1, &cs)) {
            rc = cli_fail("recommend");
            goto out;
        }
        memcpy(items, cs.lists[0].items, sizeof(int) * (size_t)K);
        target = cs.lists[0].target;
        pulse_candset_free(&cs);
        int hl, len;
        pulse_split_target(ds, user, PULSE_SPLIT_TEST, &hl);
        const int *seq = pulse_dataset_user_seq(ds, user, &len);
        nh = hl;
        ht = calloc((size_t)(nh > 0 ? nh : 1), sizeof(char *));
        owned = calloc((size_t)(nh + K > 0 ? nh + K : 1), sizeof(char *));
        for (int i = 0; ht && owned && i < nh; i++)
            ht[i] = owned[i] = pulse_rec_item_title(ds, seq[i], rp.prompt.title_bytes);
    } else {
        hbuf = strdup(history);
        ht = calloc(strlen(history) / 2 + 2, sizeof(char *));
        owned = calloc((size_t)K + 1, sizeof(char *));
        if (hbuf && ht) nh = split_titles(hbuf, ht, (int)(strlen(history) / 2 + 1));
        if (nh == 0) {
            fprintf(stderr, "pulse recommend: --history has no title (titles are separated by ';')\n");
            rc = 2;
            goto out;
        }
        if (pulse_rec_candidates_for_titles(ds, ht, nh, K, rp.seed, items)) {
            rc = cli_fail("recommend");
            goto out;
        }
    }
    ct = calloc((size_t)K, sizeof(char *));
    int base = user_key ? nh : 0;
    for (int j = 0; ct && owned && j < K; j++)
        ct[j] = owned[base + j] = pulse_rec_item_title(ds, items[j], rp.prompt.title_bytes);
    if (!ht || !ct || !owned) {
        fprintf(stderr, "pulse recommend: out of memory\n");
        rc = 1;
        goto out;
    }
    if (pulse_recommender_new(model, lora, &rp, &rec) ||
        pulse_rec_recommend(rec, ht, nh, ct, K, score, order, &why)) {
        rc = cli_fail("recommend");
        goto out;
    }
    for (int k = 0; k < K; k++) {
        int j = order[k];
        printf("%2d. %8.4f  %s%s\n", k + 1, score[j], ct[j], items[j] == target ? "   <- held-out item" : "");
    }
    printf("why: %s\n", why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
    if (user_key) {
        cJSON_AddStringToObject(o, "user", user_key);
        cJSON_AddNumberToObject(o, "target", target);
        for (int k = 0; k < K; k++)
            if (items[order[k]] == target) cJSON_AddNumberToObject(o, "target_rank", k + 1);
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    for (int k = 0; k < K; k++) {
        int j = order[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", items[j]);
        const char *key = pulse_dataset_item_key(ds, items[j]);
        if (key) cJSON_AddStringToObject(e, "key", key);
        cJSON_AddStringToObject(e, "title", ct[j]);
        cJSON_AddNumberToObject(e, "score", score[j]);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddStringToObject(o, "rationale", why);
    cJSON_AddStringToObject(o, "rank_score", rsc ? "sum" : "mean");
    cJSON_AddNumberToObject(o, "seconds", pulse_now() - t0);
    cli_print_json(o);
out:
    pulse_recommender_free(rec);
    if (owned)
        for (int i = 0; i < (user_key ? nh : 0) + K; i++) free(owned[i]);
    free(owned);
    free(ht);
    free(ct);
    free(hbuf);
    free(why);
    free(items);
    free(order);
    free(score);
    pulse_dataset_free(ds);
    return rc;
}
