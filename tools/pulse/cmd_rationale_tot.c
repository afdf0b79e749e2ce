/* tools/pulse/cmd_rationale_tot.c — `pulse rationale tot`: Phase 2 (Tree-of-Thought refinement) as a job:
 * parsing, and the report as the last stdout line (JSON). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pulse/rationale.h"

int cmd_rationale_tot(int argc, char **argv) {
    pulse_tot_job_params p = pulse_tot_job_default_params();
    const char *data = NULL, *model = NULL, *space = NULL, *sasrec = NULL, *db = NULL, *scorer = NULL,
               *chat = NULL;
    int seed = (int)p.seed, threads = 0, no_fork = 0;
    cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder with item titles (e.g. ../shared/data/amazon-beauty)"},
        {"--model|-m", CLI_STR, &model, "the SLM (GGUF)"},
        {"--space", CLI_STR, &space,
         "Thought Space folder (`pulse thought train` output): the thought scorer's, and with either "
         "scorer the report's comparison with Phase 1 (vs_phase1)"},
        {"--db", CLI_STR, &db, "rationale store (SQLite; created when missing; resumed)"},
        {"--users", CLI_INT, &p.users, "users to cover, first of the seeded order (default 0 = all eligible)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "user order and sampling seed (default 42)"},
        {"--scorer", CLI_STR, &scorer, "thought | likelihood (default thought)"},
        {"--sasrec", CLI_STR, &sasrec, "SASRec model file for similar users (default: none)"},
        {"--max-history", CLI_INT, &p.record.max_history, "history items in the prompt (default 10)",
         CLI_RANGE(1, 1000)},
        {"--depth", CLI_INT, &p.search.depth, "thoughts per chain (default 3)", CLI_RANGE(1, 63)},
        {"--branching", CLI_INT, &p.search.branching, "children per kept node (default 3)",
         CLI_RANGE(1, 1024)},
        {"--beam", CLI_INT, &p.search.beam, "nodes kept per level (default 2)", CLI_RANGE(1, 64)},
        {"--max-thought-tokens", CLI_INT, &p.search.max_thought_tokens, "tokens per thought (default 61)",
         CLI_RANGE(1, 4096)},
        {"--temp", CLI_FLOAT, &p.search.temp, "sampling temperature (default 1.0; 0 = greedy)",
         CLI_RANGE(0, 100)},
        {"--top-k", CLI_INT, &p.search.top_k, "top-k (default 51; 0 = off)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--top-p", CLI_FLOAT, &p.search.top_p, "top-p (default 0.95; 1 = off)", CLI_RANGE_OPEN_LO(0, 1)},
        {"--chat", CLI_STR, &chat,
         "auto | chat | raw: prompt format (default auto: the GGUF's chat template)"},
        {"--parallel", CLI_INT, &p.search.parallel, "users in flight, decoded together (default 8)",
         CLI_RANGE(1, 1024)},
        {"--no-fork", CLI_FLAG, &no_fork,
         "re-prefill every branch's whole context instead of forking its parent's KV (speed baseline)"},
        {"--ctx-size|-c", CLI_INT, &p.search.n_ctx,
         "max tokens of one sequence (default 0 = min(trained, 4096))", CLI_RANGE(0, CLI_INT_MAX)},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--stop-after", CLI_INT, &p.stop_after, "stop after this many users were stored (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse rationale tot --data DIR --model GGUF --space DIR --db FILE --users N --seed S "
        "[--scorer thought|likelihood] [options]\n"
        "Phase 2: Tree-of-Thought refinement. A beam search over chains of thoughts (depth 3, "
        "branching 3, beam 2,\n61 tokens per thought, temperature 1.0, top-k 51, top-p 0.95) on the "
        "user's history and similar users'\nitems (never the chosen item); chains scored by the "
        "Thought Space (cos of R(chain), B(behaviour)) or by the\nSLM's likelihood of the chosen "
        "item; the best chain is stored with phase \"tot\". Resumable.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !model || !db) {
        fprintf(stderr, "pulse rationale tot: --data, --model and --db are required (see --help)\n");
        return 2;
    }
    if (scorer) {
        int s = pulse_tot_scorer_from_name(scorer);
        if (s < 0) {
            fprintf(stderr, "pulse rationale tot: --scorer expects thought or likelihood, found '%s'\n",
                    scorer);
            return 2;
        }
        p.search.scorer = (pulse_tot_scorer)s;
    }
    if (p.search.scorer == PULSE_TOT_SCORER_THOUGHT && !space) {
        fprintf(stderr, "pulse rationale tot: the thought scorer needs --space DIR (a `pulse thought train` "
                        "output), or use --scorer likelihood\n");
        return 2;
    }
    if (chat) {
        if (!strcmp(chat, "auto"))
            p.search.chat = -1;
        else if (!strcmp(chat, "chat"))
            p.search.chat = 1;
        else if (!strcmp(chat, "raw"))
            p.search.chat = 0;
        else {
            fprintf(stderr, "pulse rationale tot: --chat expects auto, chat or raw, found '%s'\n", chat);
            return 2;
        }
    }
    if (cli_check_out_file("rationale tot", "--db", db)) return 2;
    p.seed = (uint64_t)seed;
    p.search.fork = !no_fork;
    cli_set_threads("rationale tot", threads);
    pulse_tot_report rep;
    /* the space goes to the job with either scorer: the likelihood scorer does not use it to search (nor
     * in the settings hash), but the report's comparison with Phase 1 is made in it */
    pulse_status st = pulse_rationale_tot(data, model, space, sasrec, db, &p, &rep);
    if (st != PULSE_OK) return cli_fail("rationale tot");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", "tot");
    cJSON_AddStringToObject(o, "scorer", pulse_tot_scorer_name(p.search.scorer));
    cJSON_AddBoolToObject(o, "fork", rep.fork);
    cJSON_AddStringToObject(o, "chat", rep.chat ? "chat" : "raw");
    cJSON_AddNumberToObject(o, "selected", rep.selected);
    cJSON_AddNumberToObject(o, "skipped", rep.skipped);
    cJSON_AddNumberToObject(o, "done", rep.done);
    cJSON_AddNumberToObject(o, "ok", rep.ok);
    cJSON_AddNumberToObject(o, "failed", rep.failed);
    if (isfinite(rep.mean_score))
        cJSON_AddNumberToObject(o, "mean_score", rep.mean_score);
    else
        cJSON_AddNullToObject(o, "mean_score");
    cJSON_AddNumberToObject(o, "gen_tokens", (double)rep.gen_tokens);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)rep.prompt_tokens);
    cJSON_AddNumberToObject(o, "gen_tok_s", rep.gen_tok_s);
    cJSON_AddNumberToObject(o, "users_s", rep.users_s);
    cJSON_AddNumberToObject(o, "seconds", rep.seconds);
    if (space) { /* kept chains vs the same users' Phase-1 rationales, both scored in the space */
        cJSON *c = cJSON_AddObjectToObject(o, "vs_phase1");
        cJSON_AddNumberToObject(c, "users", rep.cmp_users);
        if (rep.cmp_users > 0) {
            cJSON_AddNumberToObject(c, "tot_ts", rep.cmp_tot);
            cJSON_AddNumberToObject(c, "phase1_ts", rep.cmp_phase1);
        }
    }
    cJSON_AddStringToObject(o, "model_hash", rep.model_hash);
    cJSON_AddStringToObject(o, "settings_hash", rep.settings_hash);
    cli_print_json(o);
    return 0;
}
