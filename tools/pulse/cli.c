/* tools/pulse/cli.c — owns option parsing (one validated number parser), the checks every command shares
 * (threads, output paths, texts from files), the command dispatch, and error and JSON printing. */
#include "cli.h"
#include "pulse/dist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pulse/core.h"
#include "pulse/encoder.h"
#include "pulse/eval.h"
#include "pulse/kernels.h"

static int name_matches(const char *names, const char *arg, size_t arglen) {
    const char *p = names;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == arglen && strncmp(p, arg, l) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* " in [lo, hi]" (brackets as `open` says), " >= lo" or "" (no bound) for the messages */
static void fmt_range(char *buf, size_t n, double lo, double hi, int open, double big) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%.10g", lo);
    snprintf(b, sizeof b, "%.10g", hi);
    if (lo <= -big && hi >= big)
        snprintf(buf, n, "%s", "");
    else if (hi >= big)
        snprintf(buf, n, " %s %s", open & CLI_OPEN_LO ? ">" : ">=", a);
    else
        snprintf(buf, n, " in %c%s, %s%c", open & CLI_OPEN_LO ? '(' : '[', a, b,
                 open & CLI_OPEN_HI ? ')' : ']');
}

int cli_parse_int(const char *cmd, const char *flag, const char *s, double lo, double hi, int *out) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || (double)v < lo || (double)v > hi) {
        char r[80];
        fmt_range(r, sizeof r, lo, hi, 0, CLI_INT_MAX);
        fprintf(stderr, "pulse %s: %s expects an integer%s, found '%s'\n", cmd, flag, r, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *flag, const char *s, double lo, double hi, int open,
                    float *out) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    /* isfinite refuses "nan" and "inf" (which strtod accepts), ERANGE 1e999; floats end at 3.4e38 */
    if (!s || errno || end == s || *end || !isfinite(v) || fabs(v) > 3.4e38 || v < lo || v > hi ||
        ((open & CLI_OPEN_LO) && v <= lo) || ((open & CLI_OPEN_HI) && v >= hi)) {
        char r[80];
        fmt_range(r, sizeof r, lo, hi, open, 3.4e38);
        fprintf(stderr, "pulse %s: %s expects a finite number%s, found '%s'\n", cmd, flag, r, s ? s : "");
        return -1;
    }
    *out = (float)v;
    return 0;
}

static void print_usage(const char *usage, const cli_opt *opts, int nopts) {
    printf("%s\n", usage);
    if (nopts) printf("\noptions:\n");
    for (int i = 0; i < nopts; i++) {
        const char *arg = opts[i].kind == CLI_FLAG    ? ""
                          : opts[i].kind == CLI_INT   ? " N"
                          : opts[i].kind == CLI_FLOAT ? " X"
                                                      : " S";
        char left[96];
        snprintf(left, sizeof left, "%s%s", opts[i].names, arg);
        printf("  %-30s %s%s\n", left, opts[i].help ? opts[i].help : "",
               opts[i].kind == CLI_STRS ? " (repeatable)" : "");
    }
    printf("  %-30s %s\n", "--help|-h", "show this help");
}

/* the option's long name, and the spelling used when it differs: "--ctx-size (-c)" */
static void flag_name(char *buf, size_t n, const char *names, const char *typed, size_t tl) {
    const char *e = strchr(names, '|');
    int l = e ? (int)(e - names) : (int)strlen(names);
    if ((size_t)l == tl && strncmp(names, typed, tl) == 0)
        snprintf(buf, n, "%.*s", l, names);
    else
        snprintf(buf, n, "%.*s (%.*s)", l, names, (int)(tl < 40 ? tl : 40), typed);
}

/* the running command's full name ("sasrec train"), set by cli_dispatch, for messages */
static char g_cmd[128];

int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char *usage, const char **pos,
              int maxpos, int *npos) {
    int np = 0;
    const char *cmd = g_cmd[0] ? g_cmd : argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(usage, opts, nopts);
            return 1;
        }
        if (a[0] != '-' || a[1] == 0 || (a[1] >= '0' && a[1] <= '9')) {
            if (np >= maxpos || !pos) {
                fprintf(stderr, "pulse %s: unexpected argument '%s' (see --help)\n", cmd, a);
                return 2;
            }
            pos[np++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (int k = 0; k < nopts; k++)
            if (name_matches(opts[k].names, a, nl)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "pulse %s: unknown option '%.*s' (see --help)\n", cmd, (int)nl, a);
            return 2;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                fprintf(stderr, "pulse %s: option '%.*s' takes no value\n", cmd, (int)nl, a);
                return 2;
            }
            *(int *)o->dst = 1;
            continue;
        }
        const char *val;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "pulse %s: option '%s' needs a value\n", cmd, a);
            return 2;
        }
        switch (o->kind) {
        case CLI_STR:
            *(const char **)o->dst = val;
            break;
        case CLI_STRS: {
            cli_strs *s = o->dst;
            const char **nv = realloc(s->v, sizeof(char *) * (size_t)(s->n + 1));
            if (!nv) {
                fprintf(stderr, "pulse: out of memory\n");
                return 2;
            }
            s->v = nv;
            s->v[s->n++] = val;
            break;
        }
        case CLI_INT: {
            char flag[128];
            flag_name(flag, sizeof flag, o->names, a, nl);
            double lo = o->ranged ? o->lo : -CLI_INT_MAX, hi = o->ranged ? o->hi : CLI_INT_MAX;
            if (o->open & CLI_OPEN_LO) lo += 1;
            if (o->open & CLI_OPEN_HI) hi -= 1;
            if (cli_parse_int(cmd, flag, val, lo, hi, (int *)o->dst)) return 2;
            break;
        }
        case CLI_FLOAT: {
            char flag[128];
            flag_name(flag, sizeof flag, o->names, a, nl);
            double lo = o->ranged ? o->lo : -3.4e38, hi = o->ranged ? o->hi : 3.4e38;
            if (cli_parse_float(cmd, flag, val, lo, hi, o->open, (float *)o->dst)) return 2;
            break;
        }
        case CLI_FLAG:
            break;
        }
    }
    if (npos) *npos = np;
    return 0;
}

int cli_fail(const char *what) {
    if (pulse_dist_size() > 1)
        fprintf(stderr, "pulse: %s (rank %d of %d): %s\n", what, pulse_dist_rank(), pulse_dist_size(),
                pulse_last_error());
    else
        fprintf(stderr, "pulse: %s: %s\n", what, pulse_last_error());
    return 1;
}

static int g_ranks; /* > 0: the run is on MPI (cli_set_ranks) */

void cli_set_ranks(int n) {
    g_ranks = n;
}

void cli_print_json(cJSON *obj) {
    /* under MPI only rank 0 prints (the others' stdout is /dev/null), with the number of ranks added */
    if (g_ranks > 0) cJSON_AddNumberToObject(obj, "ranks", g_ranks);
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        cJSON_free(s);
    }
    cJSON_Delete(obj);
}

static void list_cmds(FILE *f, const char *prog, const cli_cmd *cmds, int ncmds) {
    fprintf(f, "usage: %s <command> [options]   (%s <command> --help for each)\n\ncommands:\n", prog, prog);
    for (int i = 0; i < ncmds; i++) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].help);
    if (!strchr(prog, ' ')) /* the top level: the options every command takes (tools/pulse/env.h) */
        fprintf(
            f,
            "\nglobal options (anywhere on the line):\n  --isa scalar|avx2|avx512|native   the instruction "
            "level the kernels may use (default native; also PULSE_ISA)\n");
}

int cli_dispatch(const char *prog, int argc, char **argv, const cli_cmd *cmds, int ncmds) {
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
        list_cmds(stdout, prog, cmds, ncmds);
        return 0;
    }
    if (argc < 2) {
        list_cmds(stderr, prog, cmds, ncmds);
        return 2;
    }
    for (int i = 0; i < ncmds; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s %s", prog, cmds[i].name);
            if (cmds[i].fn) {
                snprintf(g_cmd, sizeof g_cmd, "%s", strncmp(sub, "pulse ", 6) == 0 ? sub + 6 : sub);
                return cmds[i].fn(argc - 1, argv + 1);
            }
            return cli_dispatch(sub, argc - 1, argv + 1, cmds[i].sub, cmds[i].nsub);
        }
    fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog, argv[1], prog);
    return 2;
}

void cli_set_threads(const char *cmd, int n) {
    if (n <= 0) return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && n > cores) {
        fprintf(stderr, "pulse %s: --threads %d is more than the %ld cores of this machine; using %ld\n", cmd,
                n, cores, cores);
        n = (int)cores;
    }
    pulse_set_num_threads(n);
}

int cli_env_threads(void) {
    const char *t = getenv("PULSE_THREADS");
    if (!t || !*t) return 0;
    int n = 0;
    if (cli_parse_int("", "PULSE_THREADS", t, 0, CLI_INT_MAX, &n)) return -1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && n > cores) {
        fprintf(stderr, "pulse: PULSE_THREADS=%d is more than the %ld cores of this machine; using %ld\n", n,
                cores, cores);
        n = (int)cores;
    }
    if (n > 0) pulse_set_num_threads(n);
    return 0;
}

/* the folder part of path ("." when none) */
static void dir_of(char *buf, size_t n, const char *path) {
    const char *sl = strrchr(path, '/');
    if (!sl)
        snprintf(buf, n, ".");
    else if (sl == path)
        snprintf(buf, n, "/");
    else
        snprintf(buf, n, "%.*s", (int)(sl - path), path);
}

int cli_check_out_file(const char *cmd, const char *flag, const char *path) {
    struct stat st;
    size_t l = strlen(path);
    if (l == 0 || path[l - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        fprintf(stderr, "pulse %s: %s '%s' is a directory; expected a file name to write\n", cmd, flag, path);
        return -1;
    }
    if (stat(path, &st) == 0 && access(path, W_OK) != 0) {
        fprintf(stderr, "pulse %s: %s '%s' exists and is not writable: %s\n", cmd, flag, path,
                strerror(errno));
        return -1;
    }
    char dir[4096];
    dir_of(dir, sizeof dir, path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "pulse %s: %s '%s': the folder '%s' does not exist\n", cmd, flag, path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "pulse %s: %s '%s': cannot write in the folder '%s': %s\n", cmd, flag, path, dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

int cli_check_out_dir(const char *cmd, const char *flag, const char *path) {
    struct stat st;
    if (!*path) {
        fprintf(stderr, "pulse %s: %s is empty; expected a folder\n", cmd, flag);
        return -1;
    }
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, "pulse %s: %s '%s' exists and is not a folder\n", cmd, flag, path);
            return -1;
        }
        if (access(path, W_OK | X_OK) != 0) {
            fprintf(stderr, "pulse %s: %s '%s': cannot write in this folder: %s\n", cmd, flag, path,
                    strerror(errno));
            return -1;
        }
        return 0;
    }
    /* not there yet: the nearest existing ancestor must be a writable folder (the writers create the rest) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (;;) {
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/') dir[--l] = 0;
        char up[4096];
        dir_of(up, sizeof up, dir);
        if (stat(up, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "pulse %s: %s '%s': '%s' is not a folder\n", cmd, flag, path, up);
                return -1;
            }
            if (access(up, W_OK | X_OK) != 0) {
                fprintf(stderr, "pulse %s: %s '%s': cannot create it in '%s': %s\n", cmd, flag, path, up,
                        strerror(errno));
                return -1;
            }
            return 0;
        }
        if (strcmp(up, dir) == 0 || strcmp(up, ".") == 0 || strcmp(up, "/") == 0) return 0;
        snprintf(dir, sizeof dir, "%s", up);
    }
}

char *cli_read_text(const char *cmd, const char *flag, const char *path, size_t *len) {
    struct stat st;
    int is_stdin = strcmp(path, "-") == 0;
    if (!is_stdin && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "pulse %s: %s '%s' is a directory; expected a text file\n", cmd, flag, path);
        return NULL;
    }
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "pulse %s: %s '%s': cannot open: %s\n", cmd, flag, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(b, cap * 2 + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int err = ferror(f);
    if (!is_stdin) fclose(f);
    if (!b || err) {
        fprintf(stderr, "pulse %s: %s '%s': %s\n", cmd, flag, path, b ? "read error" : "out of memory");
        free(b);
        return NULL;
    }
    b[n] = 0;
    const char *nul = memchr(b, 0, n);
    if (nul) { /* it would cut the text short silently */
        size_t line = 1;
        for (const char *q = b; q < nul; q++) line += *q == '\n';
        fprintf(stderr, "pulse %s: %s %s:%zu: expected text, found a NUL byte (byte %zu of the file)\n", cmd,
                flag, path, line, (size_t)(nul - b));
        free(b);
        return NULL;
    }
    if (len) *len = n;
    return b;
}

int cli_texts_from_files(const char *cmd, const char *flag, const cli_strs *files, cli_strs *texts,
                         char ***owned) {
    *owned = NULL;
    if (files->n == 0) return 0;
    *owned = calloc((size_t)files->n, sizeof(char *));
    const char **nv = realloc(texts->v, sizeof(char *) * (size_t)(texts->n + files->n));
    if (!*owned || !nv) {
        if (nv) texts->v = nv;
        fprintf(stderr, "pulse %s: out of memory\n", cmd);
        return -1;
    }
    texts->v = nv;
    for (int i = 0; i < files->n; i++) {
        size_t len = 0;
        char *t = cli_read_text(cmd, flag, files->v[i], &len);
        if (!t) return -1;
        if (len > 0 && t[len - 1] == '\n') t[--len] = 0;
        if (len > 0 && t[len - 1] == '\r') t[--len] = 0;
        (*owned)[i] = t;
        texts->v[texts->n++] = t;
    }
    return 0;
}

void cli_free_owned(char **owned, int n) {
    for (int i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
}

int cli_choice(const char *cmd, const char *opt, const char *val, const char *const *names, const int *values,
               int n, int *out) {
    if (!val) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(val, names[i]) == 0) {
            *out = values[i];
            return 0;
        }
    fprintf(stderr, "pulse %s: %s expects ", cmd, opt);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%s", i ? " | " : "", names[i]);
    fprintf(stderr, ", found '%s'\n", val);
    return -1;
}

int cli_encoder_choices(const char *cmd, const char *pooling, const char *precision, int *pooling_out,
                        int *precision_out) {
    static const char *const pn[] = {"cls", "mean", "auto"}, *const fn[] = {"fp32", "bf16", "auto"};
    static const int pv[] = {PULSE_POOL_CLS, PULSE_POOL_MEAN, PULSE_POOL_AUTO},
                     fv[] = {PULSE_PREC_FP32, PULSE_PREC_BF16, PULSE_PREC_AUTO};
    if (cli_choice(cmd, "--pooling", pooling, pn, pv, 3, pooling_out)) return -1;
    return cli_choice(cmd, "--precision", precision, fn, fv, 3, precision_out);
}

int cli_protocol_split(const char *cmd, const char *protocol, const char *split, int *protocol_out,
                       int *split_out) {
    static const char *const pn[] = {"full", "sampled"}, *const sn[] = {"test", "valid"};
    static const int pv[] = {PULSE_PROTOCOL_FULL, PULSE_PROTOCOL_SAMPLED},
                     sv[] = {PULSE_SPLIT_TEST, PULSE_SPLIT_VALID};
    if (cli_choice(cmd, "--protocol", protocol, pn, pv, 2, protocol_out)) return -1;
    return cli_choice(cmd, "--split", split, sn, sv, 2, split_out);
}

int cli_history(const char *cmd, const char *history, int *out) {
    static const char *const hn[] = {"mask", "keep"};
    static const int hv[] = {PULSE_HISTORY_MASK, PULSE_HISTORY_KEEP};
    return cli_choice(cmd, "--history-mode", history, hn, hv, 2, out);
}

cJSON *cli_metrics_json(const pulse_metrics *m) {
    char buf[512];
    int n = pulse_metrics_json(m, buf, sizeof buf);
    return n > 0 && (size_t)n < sizeof buf ? cJSON_Parse(buf) : NULL;
}

void cli_eval_json(cJSON *o, const pulse_eval_params *ep, const pulse_metrics *m) {
    cJSON_AddStringToObject(o, "history", pulse_history_name(ep->history));
    cJSON_AddNumberToObject(o, "users", m->n_users);
    cJSON_AddNumberToObject(o, "users_skipped", m->n_skipped);
    cJSON_AddNumberToObject(o, "repeat_targets", m->n_repeat);
}
