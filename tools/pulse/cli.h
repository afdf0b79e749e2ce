/* tools/pulse/cli.h — the CLI's option parser and shared printing helpers (no library logic here). */
#ifndef PULSE_TOOLS_CLI_H
#define PULSE_TOOLS_CLI_H

#include <cjson/cJSON.h>

#include "pulse/eval.h"

typedef enum { CLI_STR, CLI_INT, CLI_FLOAT, CLI_FLAG, CLI_STRS } cli_kind;

/* A repeatable string option collects into this (CLI_STRS). */
typedef struct {
    const char **v;
    int n;
} cli_strs;

typedef struct {
    const char *names; /* "--model|-m": alternatives separated by '|' */
    cli_kind kind;
    void *dst; /* const char **, int *, float *, int * (flag set to 1), cli_strs * */
    const char *help;
} cli_opt;

/* Parses argv[0..argc) (argv[0] is the sub-command name). Positional arguments go to pos/npos (pos may be
 * NULL when none are allowed). Returns 0 to go on, 1 when --help was printed (exit 0), 2 on a usage error
 * (message printed to stderr). */
int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char *usage, const char **pos,
              int maxpos, int *npos);

/* Map an option's value to one of n named choices (names[i] -> values[i]). A NULL value keeps *out. On no
 * match prints "pulse CMD: OPT expects a | b, found 'x'" and returns -1; else 0. */
int cli_choice(const char *cmd, const char *opt, const char *val, const char *const *names, const int *values,
               int n, int *out);
/* The evaluation protocol options every recommender command shares: --protocol full|sampled, --split
 * test|valid. */
int cli_protocol_split(const char *cmd, const char *protocol, const char *split, int *protocol_out,
                       int *split_out);

/* --history mask|keep (pulse_history; a NULL value keeps *out). */
int cli_history(const char *cmd, const char *history, int *out);
#define CLI_HISTORY_HELP                                                                                     \
    "mask (default: every history item leaves the ranking, a held-out item that repeats one included, so "   \
    "that user is a miss; RecBole / S3-Rec) or keep (nothing masked: history items compete; repeat-aware)"
/* The evaluation fields every eval JSON line carries: history, users, users_skipped, repeat_targets. */
void cli_eval_json(cJSON *o, const pulse_eval_params *ep, const pulse_metrics *m);

/* The encoder options the commands that load encoders share: --pooling cls|mean|auto and --precision
 * fp32|bf16 (a NULL value keeps its default). */
int cli_encoder_choices(const char *cmd, const char *pooling, const char *precision, int *pooling_out,
                        int *precision_out);

/* Print the library's last error as "pulse: <what>: <message>" and return the exit code 1. */
int cli_fail(const char *what);

/* Print a cJSON object as one line on stdout (the machine-readable last line of a measuring command) and free
 * it. */
void cli_print_json(cJSON *obj);

/* Sub-command dispatch: a table of names and handlers; prints the list on --help or an unknown name. */
typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} cli_cmd;
int cli_dispatch(const char *prog, int argc, char **argv, const cli_cmd *cmds, int ncmds);

#endif
