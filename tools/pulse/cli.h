/* tools/pulse/cli.h — the CLI's option parser, its one validated number parser, the checks every command
 * shares (threads, output paths, texts from files) and the printing helpers (no library logic here). */
#ifndef PULSE_TOOLS_CLI_H
#define PULSE_TOOLS_CLI_H

#include <cjson/cJSON.h>

#include "pulse/eval.h"

/* Option tables name only the fields a row uses ({names, kind, dst, help} and, for numbers, CLI_RANGE(...));
 * the rest are zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef enum { CLI_STR, CLI_INT, CLI_FLOAT, CLI_FLAG, CLI_STRS } cli_kind;

/* A repeatable string option collects into this (CLI_STRS). */
typedef struct {
    const char **v;
    int n;
} cli_strs;

/* Bounds of a numeric option: CLI_RANGE(lo, hi) is [lo, hi], CLI_RANGE_OPEN_LO(lo, hi) is (lo, hi],
 * CLI_RANGE_OPEN_HI(lo, hi) is [lo, hi). Without one an integer takes any int and a float any finite number.
 * NaN, infinities and trailing garbage are always refused. */
#define CLI_RANGE(lo_, hi_) .lo = (lo_), .hi = (hi_), .ranged = 1
#define CLI_RANGE_OPEN_LO(lo_, hi_) .lo = (lo_), .hi = (hi_), .ranged = 1, .open = CLI_OPEN_LO
#define CLI_RANGE_OPEN_HI(lo_, hi_) .lo = (lo_), .hi = (hi_), .ranged = 1, .open = CLI_OPEN_HI
enum { CLI_OPEN_LO = 1, CLI_OPEN_HI = 2 };
#define CLI_INT_MAX 2147483647.0

/* The short flags and their one meaning in every command (long flags are the reference):
 *   -m --model   -d --data   -o --out   -e --encoder   -i --input   -p --prompt   -n --n-predict / tokens to
 *   generate   -t --threads   -c --ctx-size   -s --seed   -h --help */
typedef struct {
    const char *names; /* "--model|-m": alternatives separated by '|' */
    cli_kind kind;
    void *dst; /* const char **, int *, float *, int * (flag set to 1), cli_strs * */
    const char *help;
    double lo, hi; /* numeric bounds (see CLI_RANGE) */
    int ranged;    /* 1 when lo, hi apply */
    int open;      /* CLI_OPEN_LO | CLI_OPEN_HI: which bounds are excluded */
} cli_opt;

/* Parses argv[0..argc) (argv[0] is the sub-command name). Positional arguments go to pos/npos (pos may be
 * NULL when none are allowed). Returns 0 to go on, 1 when --help was printed (exit 0), 2 on a usage error
 * (message printed to stderr). */
int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char *usage, const char **pos,
              int maxpos, int *npos);

/* The one validated number parser: the whole of s must be a finite number inside [lo, hi] (bounds excluded
 * as `open` says, CLI_OPEN_LO | CLI_OPEN_HI); integers also refuse fractions. On failure prints "pulse CMD:
 * FLAG expects an integer in [lo, hi], found 's'" to stderr and returns -1; else stores the value and returns
 * 0. */
int cli_parse_int(const char *cmd, const char *flag, const char *s, double lo, double hi, int *out);
int cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi, int open,
                    float *out);

/* Threads: n > 0 sets OpenMP threads, clamped to the machine's cores (said on stderr); 0 keeps the default.
 */
void cli_set_threads(const char *cmd, int n);
/* PULSE_THREADS from the environment, validated like --threads; returns -1 (message printed) when invalid. */
int cli_env_threads(void);

/* Output paths, checked before any work: a FILE to write must not be a directory and its folder must exist
 * and be writable (as must the file when it exists); a DIR to write must be a folder (or not exist yet, its
 * nearest existing parent writable). Print "pulse CMD: FLAG 'path' ..." and return -1 when not. */
int cli_check_out_file(const char *cmd, const char *flag, const char *path);
int cli_check_out_dir(const char *cmd, const char *flag, const char *path);

/* The whole content of a text file ('-' = stdin) as a NUL-terminated string (caller frees); a trailing
 * newline is kept. Prints "pulse CMD: FLAG 'path': ..." and returns NULL on failure. */
char *cli_read_text(const char *cmd, const char *flag, const char *path, size_t *len);

/* Appends the text of each file in files ('-' = stdin; one trailing newline dropped) to texts; the buffers go
 * to *owned (files->n of them, caller frees each and the array, also on failure). Returns -1 (message
 * printed) when a file cannot be read. */
int cli_texts_from_files(const char *cmd, const char *flag, const cli_strs *files, cli_strs *texts,
                         char ***owned);
void cli_free_owned(char **owned, int n);

/* Map an option's value to one of n named choices (names[i] -> values[i]). A NULL value keeps *out. On no
 * match prints "pulse CMD: OPT expects a | b, found 'x'" and returns -1; else 0. */
int cli_choice(const char *cmd, const char *opt, const char *val, const char *const *names, const int *values,
               int n, int *out);
/* The evaluation protocol options every recommender command shares: --protocol full|sampled, --split
 * test|valid. */
int cli_protocol_split(const char *cmd, const char *protocol, const char *split, int *protocol_out,
                       int *split_out);

/* --history-mode mask|keep (pulse_history; a NULL value keeps *out). */
int cli_history(const char *cmd, const char *history, int *out);
#define CLI_HISTORY_HELP                                                                                     \
    "mask (default: every history item leaves the ranking, a held-out item that repeats one included, so "   \
    "that user is a miss; RecBole / S3-Rec) or keep (nothing masked: history items compete; repeat-aware)"
/* Metrics as a cJSON object (pulse_metrics_json's keys and order); NULL on allocation failure. */
cJSON *cli_metrics_json(const pulse_metrics *m);
/* The evaluation fields every eval JSON line carries: history, users, users_skipped, repeat_targets. */
void cli_eval_json(cJSON *o, const pulse_eval_params *ep, const pulse_metrics *m);

/* The encoder options the commands that load encoders share: --pooling cls|mean|auto and --precision
 * fp32|bf16 (a NULL value keeps its default). */
int cli_encoder_choices(const char *cmd, const char *pooling, const char *precision, int *pooling_out,
                        int *precision_out);

/* Print the library's last error as "pulse: <what>: <message>" and return the exit code 1. */
int cli_fail(const char *what);
/* The run is on n MPI ranks (main.c, when a launcher started pulse): cli_print_json adds "ranks": n. */
void cli_set_ranks(int n);

/* Print a cJSON object as one line on stdout (the machine-readable last line of a measuring command) and free
 * it. */
void cli_print_json(cJSON *obj);

/* The command table (tools/pulse/main.c): a row is a leaf (fn) or a group of sub-commands (sub, nsub). */
typedef struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
    const struct cli_cmd *sub;
    int nsub;
} cli_cmd;
/* Dispatch argv[1] in the table: --help lists the commands on stdout (exit 0); no command or an unknown one
 * is a usage error (list on stderr, exit 2). */
int cli_dispatch(const char *prog, int argc, char **argv, const cli_cmd *cmds, int ncmds);

#endif
