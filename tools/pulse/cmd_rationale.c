/* tools/pulse/cmd_rationale.c — `pulse rationale phase1 | export | show | stats`: parsing and printing around
 * the rationale module (include/pulse/rationale.h). phase1 runs (or resumes) the Phase-1 job into a SQLite
 * store and prints its report as the last stdout line (JSON); export writes the JSONL `pulse thought train`
 * reads; show prints one user's history, chosen item and rationales; stats counts rows per phase. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "pulse/rationale.h"

#define N_OPTS(o) ((int)(sizeof(o) / sizeof((o)[0])))

int cmd_rationale_phase1(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *db = NULL, *sasrec = NULL, *chat = "auto";
    pulse_phase1_params p = pulse_phase1_default_params();
    int seed = 42, threads = 0, no_prime = 0, no_share = 0, quiet = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--model|-m", CLI_STR, &model, "GGUF model (required)"},
        {"--db", CLI_STR, &db, "SQLite store to write (created when missing; required)"},
        {"--users", CLI_INT, &p.users, "users of the job: the first N of the seeded order (1000; 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "user order and sampling seed (42)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--sasrec", CLI_STR, &sasrec, "SASRec model file: similar users' items in the record (optional)"},
        {"--retries", CLI_INT, &p.retries, "extra attempts after a failed extraction (2)", CLI_RANGE(0, 100)},
        {"--max-new|-n", CLI_INT, &p.max_new_tokens, "max new tokens per attempt (150)",
         CLI_RANGE(1, 100000)},
        {"--temp", CLI_FLOAT, &p.temp, "temperature (0.7; 0 = greedy)", CLI_RANGE(0, 100)},
        {"--top-k", CLI_INT, &p.top_k, "top-k, 0 = off (0)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--top-p", CLI_FLOAT, &p.top_p, "top-p, 1 = off (1)", CLI_RANGE_OPEN_LO(0, 1)},
        {"--chat", CLI_STR, &chat, "auto (chat when the GGUF has a chat template) | chat | raw"},
        {"--no-prime", CLI_FLAG, &no_prime, "do not start the answer with {\"rationale\": \""},
        {"--parallel", CLI_INT, &p.n_parallel, "sequences decoded together (32)", CLI_RANGE(1, 4096)},
        {"--chunk", CLI_INT, &p.chunk, "users per generation call (0 = all; retries run in the next call)",
         CLI_RANGE(0, 1000000)},
        {"--no-prefix-share", CLI_FLAG, &no_share,
         "prefill every prompt whole (to measure the shared instruction prefix)"},
        {"--max-history", CLI_INT, &p.record.max_history, "history items (10)", CLI_RANGE(1, 1000)},
        {"--history-tokens", CLI_INT, &p.record.history_tokens, "history token budget (320)",
         CLI_RANGE(8, 100000)},
        {"--similar-tokens", CLI_INT, &p.record.similar_tokens, "similar users' items token budget (160)",
         CLI_RANGE(0, 100000)},
        {"--stop-after", CLI_INT, &p.stop_after, "stop after storing N users (0 = run to the end)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--quiet|-q", CLI_FLAG, &quiet, "no progress on stderr"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r =
        cli_parse(argc, argv, opts, N_OPTS(opts),
                  "usage: pulse rationale phase1 --data DIR --model GGUF --db FILE --users N --seed S "
                  "[--sasrec FILE]\n"
                  "Phase-1 hindsight rationales: why each user chose their last training item. Resumable: "
                  "users already in the store (same model and settings) are skipped; each user is "
                  "committed as it finishes. Progress on stderr; the report is the last stdout line (JSON).",
                  NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    static const char *const cn[] = {"auto", "chat", "raw"};
    static const int cv[] = {-1, 1, 0};
    if (cli_choice("rationale phase1", "--chat", chat, cn, cv, 3, &p.chat)) return 2;
    if (!data || !model || !db) {
        fprintf(stderr, "pulse rationale phase1: --data, --model and --db are required (see --help)\n");
        return 2;
    }
    if (cli_check_out_file("rationale phase1", "--db", db)) return 2;
    cli_set_threads("rationale phase1", threads);
    p.seed = (uint64_t)seed;
    p.prime = !no_prime;
    p.share_prefix = !no_share;
    p.progress = !quiet;
    pulse_phase1_report rep;
    if (pulse_rationale_phase1(data, model, sasrec, db, &p, &rep)) return cli_fail("rationale phase1");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", "phase1");
    cJSON_AddStringToObject(o, "db", db);
    cJSON_AddStringToObject(o, "mode", rep.chat ? "chat" : "raw");
    cJSON_AddNumberToObject(o, "selected", rep.selected);
    cJSON_AddNumberToObject(o, "skipped", rep.skipped);
    cJSON_AddNumberToObject(o, "done", rep.done);
    cJSON_AddNumberToObject(o, "ok", rep.ok);
    cJSON_AddNumberToObject(o, "failed", rep.failed);
    cJSON_AddNumberToObject(o, "parse_rate", rep.done ? (double)rep.ok / rep.done : 0);
    cJSON_AddNumberToObject(o, "retried", rep.retried);
    cJSON_AddNumberToObject(o, "retry_rate", rep.done ? (double)rep.retried / rep.done : 0);
    cJSON_AddNumberToObject(o, "attempts", (double)rep.attempts);
    cJSON_AddNumberToObject(o, "median_words", rep.median_words);
    cJSON_AddNumberToObject(o, "gen_tokens", (double)rep.gen_tokens);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)rep.prompt_tokens);
    cJSON_AddNumberToObject(o, "prompt_computed", (double)rep.prompt_computed);
    cJSON_AddBoolToObject(o, "prefix_share", p.share_prefix);
    cJSON_AddNumberToObject(o, "gen_tok_s", rep.gen_tok_s);
    cJSON_AddNumberToObject(o, "users_s", rep.users_s);
    cJSON_AddNumberToObject(o, "seconds", rep.seconds);
    cJSON_AddStringToObject(o, "model_hash", rep.model_hash);
    cJSON_AddStringToObject(o, "settings_hash", rep.settings_hash);
    cli_print_json(o);
    return 0;
}

/* ---- export ---- */
typedef struct {
    FILE *f;
    long rows;
    int err;
} export_ctx;

static int export_row(void *ud, const pulse_store_row *r) {
    export_ctx *e = ud;
    if (!r->ok || !r->text || !r->behaviour) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", r->user);
    cJSON_AddStringToObject(o, "behaviour", r->behaviour);
    cJSON_AddStringToObject(o, "rationale", r->text);
    if (isfinite(r->score))
        cJSON_AddNumberToObject(o, "score", r->score);
    else
        cJSON_AddNullToObject(o, "score");
    cJSON_AddStringToObject(o, "dataset", r->dataset ? r->dataset : "");
    cJSON_AddStringToObject(o, "model", r->model ? r->model : "");
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line || fprintf(e->f, "%s\n", line) < 0) {
        e->err = 1;
        cJSON_free(line);
        return 1;
    }
    cJSON_free(line);
    e->rows++;
    return 0;
}

int cmd_rationale_export(int argc, char **argv) {
    const char *db = NULL, *phase = NULL, *out = NULL;
    const cli_opt opts[] = {
        {"--db", CLI_STR, &db, "SQLite store (required)"},
        {"--phase", CLI_STR, &phase, "phase1 | tot (required)"},
        {"--out|-o", CLI_STR, &out, "JSONL file to write (required)"},
    };
    int r =
        cli_parse(argc, argv, opts, N_OPTS(opts),
                  "usage: pulse rationale export --db FILE --phase phase1|tot --out FILE.jsonl\n"
                  "One line per stored rationale: {\"user\",\"behaviour\",\"rationale\",\"score\",...}, the "
                  "pairs `pulse thought train` reads (failures are left out). Last stdout line: JSON with "
                  "rows.",
                  NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!db || !phase || !out) {
        fprintf(stderr, "pulse rationale export: --db, --phase and --out are required (see --help)\n");
        return 2;
    }
    if (strcmp(phase, "phase1") != 0 && strcmp(phase, "tot") != 0) {
        fprintf(stderr, "pulse rationale export: --phase expects phase1 | tot, found '%s'\n", phase);
        return 2;
    }
    if (cli_check_out_file("rationale export", "--out", out)) return 2;
    pulse_store *s = NULL;
    if (pulse_store_open(db, 1, &s)) return cli_fail("rationale export");
    /* written to a temporary file and renamed: a reader never sees half a file */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    export_ctx e = {fopen(tmp, "w"), 0, 0};
    if (!e.f) {
        pulse_store_close(s);
        fprintf(stderr, "pulse rationale export: --out '%s': cannot write\n", tmp);
        return 1;
    }
    pulse_status st = pulse_store_each(s, phase, NULL, export_row, &e);
    pulse_store_close(s);
    int bad = fclose(e.f) != 0 || e.err;
    if (st || bad) {
        remove(tmp);
        if (st) return cli_fail("rationale export");
        fprintf(stderr, "pulse rationale export: --out '%s': write failed\n", out);
        return 1;
    }
    if (rename(tmp, out) != 0) {
        remove(tmp);
        fprintf(stderr, "pulse rationale export: --out '%s': cannot rename into place\n", out);
        return 1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", phase);
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddNumberToObject(o, "rows", (double)e.rows);
    cli_print_json(o);
    return 0;
}

/* ---- show ---- */
static void print_list(const char *title, const char *json, int numbered) {
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return;
    }
    printf("%s\n", title);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) continue;
        if (numbered)
            printf("  %d. %s\n", ++i, it->valuestring);
        else
            printf("  - %s\n", it->valuestring);
    }
    cJSON_Delete(a);
}

typedef struct {
    int rows;
} show_ctx;

static int show_row(void *ud, const pulse_store_row *r) {
    show_ctx *sc = ud;
    if (sc->rows++ == 0) {
        printf("user %s (index %d) of %s\n", r->user, r->user_index, r->dataset);
        print_list("history (oldest first):", r->history, 1);
        printf("chosen item: %s\n", r->chosen ? r->chosen : "?");
        print_list("similar users' items:", r->similar, 0);
    }
    printf("\n[%s] %s, model %s (%s), settings %s, %d attempt%s, %d tokens generated, %.2f s\n", r->phase,
           r->ok ? "ok" : "FAILED", r->model ? r->model : "?", r->model_hash, r->settings_hash, r->attempts,
           r->attempts == 1 ? "" : "s", r->gen_tokens, r->seconds);
    if (isfinite(r->score)) printf("score: %.4f\n", r->score);
    if (r->ok)
        printf("rationale: %s\n", r->text);
    else
        printf("raw output: %s\n", r->raw ? r->raw : "");
    return 0;
}

int cmd_rationale_show(int argc, char **argv) {
    const char *db = NULL, *user = NULL, *phase = NULL;
    const cli_opt opts[] = {
        {"--db", CLI_STR, &db, "SQLite store (required)"},
        {"--user|-u", CLI_STR, &user, "the dataset's user id (required)"},
        {"--phase", CLI_STR, &phase, "phase1 | tot (default: both)"},
    };
    int r = cli_parse(argc, argv, opts, N_OPTS(opts),
                      "usage: pulse rationale show --db FILE --user ID [--phase phase1|tot]\n"
                      "One user's history, chosen item, similar users' items and every stored rationale.",
                      NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!db || !user) {
        fprintf(stderr, "pulse rationale show: --db and --user are required (see --help)\n");
        return 2;
    }
    pulse_store *s = NULL;
    if (pulse_store_open(db, 1, &s)) return cli_fail("rationale show");
    show_ctx sc = {0};
    pulse_status st = pulse_store_each(s, phase, user, show_row, &sc);
    pulse_store_close(s);
    if (st) return cli_fail("rationale show");
    if (sc.rows == 0) {
        fprintf(stderr, "pulse rationale show: no rows for user '%s'%s%s in %s\n", user,
                phase ? " in phase " : "", phase ? phase : "", db);
        return 1;
    }
    return 0;
}

/* ---- stats ---- */
int cmd_rationale_stats(int argc, char **argv) {
    const char *db = NULL;
    const cli_opt opts[] = {
        {"--db", CLI_STR, &db, "SQLite store (required)"},
    };
    int r = cli_parse(argc, argv, opts, N_OPTS(opts),
                      "usage: pulse rationale stats --db FILE\n"
                      "Rows per phase; the last stdout line is JSON with phase1 and tot objects holding ok, "
                      "failed, tokens (generated), prompt_tokens, attempts, seconds.",
                      NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!db) {
        fprintf(stderr, "pulse rationale stats: --db is required (see --help)\n");
        return 2;
    }
    pulse_store *s = NULL;
    if (pulse_store_open(db, 1, &s)) return cli_fail("rationale stats");
    static const char *const phases[] = {"phase1", "tot"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "db", db);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        pulse_store_counts c;
        if (pulse_store_stats(s, phases[i], &c)) {
            rc = cli_fail("rationale stats");
            break;
        }
        printf("%-6s ok %lld, failed %lld, generated tokens %lld, attempts %lld\n", phases[i],
               (long long)c.ok, (long long)c.failed, (long long)c.gen_tokens, (long long)c.attempts);
        cJSON *po = cJSON_AddObjectToObject(o, phases[i]);
        cJSON_AddNumberToObject(po, "ok", (double)c.ok);
        cJSON_AddNumberToObject(po, "failed", (double)c.failed);
        cJSON_AddNumberToObject(po, "tokens", (double)c.gen_tokens);
        cJSON_AddNumberToObject(po, "prompt_tokens", (double)c.prompt_tokens);
        cJSON_AddNumberToObject(po, "attempts", (double)c.attempts);
        cJSON_AddNumberToObject(po, "seconds", c.seconds);
    }
    pulse_store_close(s);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    cli_print_json(o);
    return 0;
}
