/* tools/pulse/cmd_eval.c — `pulse eval --data DIR --model pop|GGUF ...`: evaluates a recommender under the
 * shared protocols and prints {"dataset","model",...,"users",...,"metrics":{...}} as the last stdout line.
 * Models: pop (most popular in the training prefixes) and a GGUF language model (the PULSE recommender,
 * optionally with a LoRA adapter, decoded by rank or generate). With --users or --candidates-file every model
 * is scored on stored candidate sets (pulse_candset), so the rows of a table see the same lists. Under
 * mpirun pop's users are split over the ranks (identical metrics); the language model runs on one rank. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/dist.h"
#include "pulse/eval.h"
#include "pulse/recommend.h"
#include "pulse/strbuf.h"

int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *model = NULL, *protocol = "full", *split = "test", *history = NULL;
    const char *cand_file = NULL, *save_cands = NULL, *lora = NULL, *rationales = "none", *decoder = "rank";
    const char *train_data = NULL, *rank_score = "mean", *chat = "auto", *outputs_path = NULL;
    pulse_eval_params ep = pulse_eval_default_params();
    pulse_rec_params rp = pulse_rec_default_params();
    int seed = (int)ep.seed, cands = -1, users = -1, threads = 0;
    const cli_opt opts[] = {
        {"--data|-d|--test-data", CLI_STR, &dir,
         "dataset folder: the test users, their candidate lists, histories and titles (all from here, also "
         "cross-domain)"},
        {"--model|-m", CLI_STR, &model, "pop, or a GGUF language model (the PULSE recommender)"},
        {"--protocol", CLI_STR, &protocol,
         "pop without --users: full (every item ranked; default) or sampled (the positive among N-1 "
         "negatives drawn outside the masked history)"},
        {"--history-mode", CLI_STR, &history, CLI_HISTORY_HELP},
        {"--candidates", CLI_INT, &cands,
         "list size incl. the positive (default 5 with --users / a GGUF model, 20 for --protocol sampled)",
         CLI_RANGE(2, CLI_INT_MAX)},
        {"--users", CLI_INT, &users,
         "score the first U users of the seeded order on stored candidate sets (0 = all; the users "
         "`pulse sft build` and `pulse rationale phase1` take)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--candidates-file", CLI_STR, &cand_file,
         "score the lists of this file (`pulse sft build --out-test`, --save-candidates)"},
        {"--save-candidates", CLI_STR, &save_cands, "write the candidate lists scored as JSONL"},
        {"--split", CLI_STR, &split, "test|valid (default test)"},
        {"--seed|-s", CLI_INT, &seed, "seed of the users' order, the sampled negatives and sampling (42)"},
        {"--max-users", CLI_INT, &ep.max_users,
         "--protocol runs: evaluate only the first N users in dataset order (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--lora", CLI_STR, &lora, "GGUF model: LoRA adapter (`pulse lm train`); none = zero-shot"},
        {"--rationales", CLI_STR, &rationales,
         "GGUF model: none|phase1|tot, the rationales the adapter was trained with (a label: test prompts "
         "carry no rationale)"},
        {"--train-data", CLI_STR, &train_data,
         "GGUF model: the dataset the --lora adapter was fine-tuned on (`pulse sft build` + `pulse lm "
         "train` there); cross-domain when it is not --data: nothing of it enters the test prompts, it is "
         "checked to be a dataset and named in the JSON (default: --data)"},
        {"--decoder", CLI_STR, &decoder,
         "GGUF model: rank (log-probability of each candidate title; HR@K, NDCG@K; default) or generate "
         "(sampled T=0.3, top-p 0.9, <= 59 tokens; hit when the target title is in the output; HR@1)"},
        {"--rank-score", CLI_STR, &rank_score,
         "rank: mean (per title token; default) or sum log-probability"},
        {"--chat", CLI_STR, &chat, "GGUF model: auto (the model's chat format when it has one) or off (raw)"},
        {"--parallel", CLI_INT, &rp.parallel, "GGUF model: users in flight (16)", CLI_RANGE(1, 4096)},
        {"--title-bytes", CLI_INT, &rp.prompt.title_bytes, "cut titles to N bytes (200)",
         CLI_RANGE(8, 1 << 20)},
        {"--history-titles", CLI_INT, &rp.prompt.test_history, "history titles in a test prompt (3)",
         CLI_RANGE(0, 1000)},
        {"--max-new", CLI_INT, &rp.max_new_tokens, "generate: new tokens at most (59)", CLI_RANGE(1, 100000)},
        {"--temp", CLI_FLOAT, &rp.temp, "generate: temperature (0.3; 0 = greedy)", CLI_RANGE(0, 100)},
        {"--top-p", CLI_FLOAT, &rp.top_p, "generate: top-p (0.9)", CLI_RANGE_OPEN_LO(0, 1)},
        {"--store", CLI_STR, &rp.store,
         "GGUF model: keep each user's result in this SQLite store as its chunk finishes; a rerun with the "
         "same model, adapter, settings and --parallel reads stored users back (resumable; same numbers)"},
        {"--outputs", CLI_STR, &outputs_path,
         "GGUF model: write each user's generated text / candidate scores as JSONL"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse eval --data DIR --model pop [--protocol full|sampled] [--history-mode mask|keep]\n"
        "       pulse eval --data DIR --model pop|GGUF --candidates N --users U --seed S [--lora FILE]\n"
        "                  [--decoder rank|generate] [--rationales none|phase1|tot] [--train-data DIR]\n"
        "       pulse eval --data DIR --model pop|GGUF --candidates-file FILE ...\n"
        "Cross-domain: --lora from fine-tuning on --train-data, tested on --data's (= --test-data's) users,\n"
        "candidate lists and titles.\n"
        "Leave-one-out: the test target is each user's last item, valid the one before; the history "
        "is\nwhat precedes it. By default (--history-mode mask, the RecBole / S3-Rec convention) every "
        "history item\nleaves the full ranking and is never a sampled negative - a held-out item "
        "that repeats an earlier\nitem of the user included, so that user counts as a miss; "
        "--history-mode keep masks nothing.\nTies count against the target. With --users or "
        "--candidates-file every model is scored on the same\nstored lists (one per user, N and seed).",
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
    ep.seed = (uint64_t)(int64_t)seed;
    const int is_pop = strcmp(model, "pop") == 0;
    const int use_sets = !is_pop || users >= 0 || cand_file;
    if (!is_pop && pulse_dist_size() > 1) {
        if (pulse_dist_rank() == 0)
            fprintf(stderr,
                    "pulse eval: a language-model evaluation runs on one rank (%d were started); on "
                    "several ranks pulse eval scores --model pop (docs/scale-out.md)\n",
                    pulse_dist_size());
        return 2;
    }
    ep.n_candidates = cands > 0 ? cands : use_sets ? 5 : 20;
    static const char *const dn[] = {"rank", "generate"}, *const sn[] = {"mean", "sum"},
                             *const cn[] = {"auto", "off"};
    static const int dv[] = {PULSE_REC_RANK, PULSE_REC_GENERATE},
                     sv[] = {PULSE_REC_SCORE_MEAN, PULSE_REC_SCORE_SUM}, cv[] = {1, 0};
    int dec = PULSE_REC_RANK, rsc = PULSE_REC_SCORE_MEAN, chat_on = 1;
    if (cli_choice("eval", "--decoder", decoder, dn, dv, 2, &dec) ||
        cli_choice("eval", "--rank-score", rank_score, sn, sv, 2, &rsc) ||
        cli_choice("eval", "--chat", chat, cn, cv, 2, &chat_on))
        return 2;
    if (pulse_rec_rationale_from_name(rationales) < 0) {
        fprintf(stderr, "pulse eval: --rationales expects none | phase1 | tot, found '%s'\n", rationales);
        return 2;
    }
    if (!is_pop && !pulse_file_exists(model)) {
        fprintf(stderr, "pulse eval: unknown --model '%s' (pop, or a GGUF language model file)\n", model);
        return 2;
    }
    if (is_pop && lora) {
        fprintf(stderr, "pulse eval: --lora needs a GGUF --model\n");
        return 2;
    }
    if (train_data && !lora)
        fprintf(stderr,
                "pulse eval: note: --train-data without --lora: the zero-shot model was fine-tuned on "
                "nothing; the name only labels the row\n");
    if (save_cands && cli_check_out_file("eval", "--save-candidates", save_cands)) return 2;
    if (outputs_path && cli_check_out_file("eval", "--outputs", outputs_path)) return 2;
    cli_set_threads("eval", threads);
    rp.decoder = (pulse_rec_decoder)dec;
    rp.rank_score = (pulse_rec_rank_score)rsc;
    rp.prompt.chat = chat_on;
    rp.seed = ep.seed;
    rp.n_threads = threads;

    pulse_dataset *ds;
    char train_name[256] = "";
    if (train_data) { /* a dataset folder, checked; its name labels the row */
        pulse_dataset *tds;
        if (pulse_dataset_load(train_data, NULL, &tds)) return cli_fail("eval: --train-data");
        snprintf(train_name, sizeof train_name, "%s", pulse_dataset_name(tds));
        pulse_dataset_free(tds);
    }
    if (pulse_dataset_load(dir, NULL, &ds)) return cli_fail("eval");
    if (!train_data) snprintf(train_name, sizeof train_name, "%s", pulse_dataset_name(ds));
    int rc = 0;
    pulse_metrics m;
    memset(&m, 0, sizeof m);
    pulse_candset cs = {0};
    double t0 = pulse_now();
    if (use_sets) {
        if (cand_file) {
            if (pulse_candset_load(cand_file, ds, &cs)) rc = cli_fail("eval: reading the candidate file");
        } else {
            int *us = NULL, nu = 0;
            ep.protocol = PULSE_PROTOCOL_SAMPLED;
            if (pulse_rec_select_users(ds, users > 0 ? users : 0, ep.seed, &us, &nu) ||
                pulse_candset_build(ds, &ep, us, nu, &cs))
                rc = cli_fail("eval: candidate sets");
            free(us);
        }
        if (!rc && save_cands && pulse_dist_rank() == 0 && pulse_candset_save(&cs, ds, save_cands))
            rc = cli_fail("eval: saving candidates");
    }
    if (rc) {
        pulse_dataset_free(ds);
        return rc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
    if (is_pop) {
        pulse_pop *pop;
        if (pulse_pop_fit(ds, &pop))
            rc = cli_fail("eval");
        else {
            pulse_status st = use_sets ? pulse_evaluate_candset(ds, &cs, pulse_pop_score, NULL, pop, 0, &m)
                                       : pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m);
            pulse_pop_free(pop);
            if (st) rc = cli_fail("eval");
        }
        cJSON_AddStringToObject(o, "model", "pop");
    } else {
        pulse_recommender *rec = NULL;
        pulse_rec_eval_report rep;
        char **outs = outputs_path ? calloc((size_t)cs.n, sizeof(char *)) : NULL;
        if (pulse_recommender_new(model, lora, &rp, &rec))
            rc = cli_fail("eval: loading the model");
        else if (pulse_rec_evaluate(rec, ds, &cs, &m, &rep, outs))
            rc = cli_fail("eval");
        if (!rc) {
            cJSON_AddStringToObject(o, "model", pulse_path_base(model));
            cJSON_AddStringToObject(o, "lora", lora ? pulse_path_base(lora) : "none");
            cJSON_AddStringToObject(o, "decoder", dec == PULSE_REC_RANK ? "rank" : "generate");
            if (dec == PULSE_REC_RANK) cJSON_AddStringToObject(o, "rank_score", rsc ? "sum" : "mean");
            /* the products' summation order (PULSE_QFAST=1: training's, not llama.cpp's) */
            cJSON_AddStringToObject(o, "products", pulse_get_options()->qfast ? "fast" : "llama.cpp");
            cJSON_AddStringToObject(o, "rationales", rationales);
            cJSON_AddStringToObject(o, "train_data", train_name);
            cJSON_AddStringToObject(o, "test_data", pulse_dataset_name(ds));
            cJSON_AddBoolToObject(o, "cross_domain", strcmp(train_name, pulse_dataset_name(ds)) != 0);
            cJSON_AddBoolToObject(o, "chat", pulse_recommender_chat(rec));
            cJSON_AddNumberToObject(o, "cand_tokens", (double)rep.cand_tokens);
            if (rp.store) cJSON_AddNumberToObject(o, "resumed", rep.resumed);
            if (dec == PULSE_REC_GENERATE) {
                cJSON_AddNumberToObject(o, "no_match", rep.no_match);
                cJSON_AddNumberToObject(o, "multi_match", rep.multi_match);
            }
        }
        if (!rc && outs) {
            pulse_strbuf b = {0};
            for (int i = 0; i < cs.n; i++) {
                cJSON *l = cJSON_CreateObject();
                cJSON_AddNumberToObject(l, "user", cs.lists[i].user);
                cJSON_AddNumberToObject(l, "target_pos", cs.lists[i].pos);
                if (dec == PULSE_REC_RANK)
                    cJSON_AddItemToObject(l, "scores", cJSON_Parse(outs[i] ? outs[i] : "[]"));
                else
                    cJSON_AddStringToObject(l, "output", outs[i] ? outs[i] : "");
                char *s = cJSON_PrintUnformatted(l);
                cJSON_Delete(l);
                pulse_strbuf_cat(&b, s ? s : "{}");
                pulse_strbuf_cat(&b, "\n");
                cJSON_free(s);
            }
            if (b.oom || pulse_write_file_atomic(outputs_path, pulse_strbuf_str(&b), b.n))
                rc = cli_fail("eval: writing --outputs");
            pulse_strbuf_free(&b);
        }
        for (int i = 0; outs && i < cs.n; i++) free(outs[i]);
        free(outs);
        pulse_recommender_free(rec);
    }
    double dt = pulse_now() - t0;
    if (!rc) {
        const char *pn = use_sets ? "candidates" : protocol;
        printf("%s  model %s  protocol %s  N %d  split %s  history %s  users %d (repeated targets %d)  (%.2f "
               "s)\n",
               pulse_dataset_name(ds), is_pop ? "pop" : pulse_path_base(model), pn,
               use_sets ? cs.n_candidates : ep.n_candidates, split,
               pulse_history_name(use_sets ? cs.history : ep.history), m.n_users, m.n_repeat, dt);
        if (!is_pop && dec == PULSE_REC_GENERATE)
            printf("HR@1 %.4f (decoder generate)\n", m.hr1);
        else
            printf("HR@1 %.4f  HR@5 %.4f  HR@10 %.4f  HR@20 %.4f  NDCG@5 %.4f  NDCG@10 %.4f  NDCG@20 %.4f  "
                   "MRR %.4f\n",
                   m.hr1, m.hr5, m.hr10, m.hr20, m.ndcg5, m.ndcg10, m.ndcg20, m.mrr);
        cJSON_AddStringToObject(o, "protocol", pn);
        if (use_sets) {
            cJSON_AddNumberToObject(o, "candidates", cs.n_candidates);
            cJSON_AddNumberToObject(o, "seed", (double)cs.seed);
            if (cand_file) cJSON_AddStringToObject(o, "candidates_file", cand_file);
        } else if (ep.protocol == PULSE_PROTOCOL_SAMPLED)
            cJSON_AddNumberToObject(o, "candidates", ep.n_candidates);
        cJSON_AddStringToObject(o, "split",
                                use_sets ? (cs.split == PULSE_SPLIT_TEST ? "test" : "valid") : split);
        if (use_sets) ep.history = cs.history;
        cli_eval_json(o, &ep, &m);
        if (!is_pop && dec == PULSE_REC_GENERATE) {
            cJSON *mj = cJSON_CreateObject();
            cJSON_AddNumberToObject(mj, "HR@1", m.hr1);
            cJSON_AddItemToObject(o, "metrics", mj);
        } else {
            cJSON *mj = cli_metrics_json(&m);
            if (mj) cJSON_AddItemToObject(o, "metrics", mj);
        }
        cJSON_AddNumberToObject(o, "seconds", dt);
        cli_print_json(o);
    } else
        cJSON_Delete(o);
    pulse_candset_free(&cs);
    pulse_dataset_free(ds);
    return rc;
}
