/* tools/pulse/cli.c — owns option parsing, error printing and JSON printing for every pulse command. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/core.h"
#include "pulse/encoder.h"
#include "pulse/eval.h"

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

int cli_parse(int argc, char **argv, const cli_opt *opts, int nopts, const char *usage, const char **pos,
              int maxpos, int *npos) {
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(usage, opts, nopts);
            return 1;
        }
        if (a[0] != '-' || a[1] == 0 || (a[1] >= '0' && a[1] <= '9')) {
            if (np >= maxpos || !pos) {
                fprintf(stderr, "pulse %s: unexpected argument '%s' (see --help)\n", argv[0], a);
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
            fprintf(stderr, "pulse %s: unknown option '%.*s' (see --help)\n", argv[0], (int)nl, a);
            return 2;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                fprintf(stderr, "pulse %s: option '%.*s' takes no value\n", argv[0], (int)nl, a);
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
            fprintf(stderr, "pulse %s: option '%s' needs a value\n", argv[0], a);
            return 2;
        }
        char *end = NULL;
        errno = 0;
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
            long v = strtol(val, &end, 10);
            if (errno || !end || *end || end == val || v < -2147483647L || v > 2147483647L) {
                fprintf(stderr, "pulse %s: option '%.*s' expects an integer, found '%s'\n", argv[0], (int)nl,
                        a, val);
                return 2;
            }
            *(int *)o->dst = (int)v;
            break;
        }
        case CLI_FLOAT: {
            float v = strtof(val, &end);
            if (errno || !end || *end || end == val) {
                fprintf(stderr, "pulse %s: option '%.*s' expects a number, found '%s'\n", argv[0], (int)nl, a,
                        val);
                return 2;
            }
            *(float *)o->dst = v;
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
    fprintf(stderr, "pulse: %s: %s\n", what, pulse_last_error());
    return 1;
}

void cli_print_json(cJSON *obj) {
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        cJSON_free(s);
    }
    cJSON_Delete(obj);
}

int cli_dispatch(const char *prog, int argc, char **argv, const cli_cmd *cmds, int ncmds) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        printf("usage: %s <command> [options]   (%s <command> --help for each)\n\ncommands:\n", prog, prog);
        for (int i = 0; i < ncmds; i++)
            if (cmds[i].fn) printf("  %-12s %s\n", cmds[i].name, cmds[i].help);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < ncmds; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            if (!cmds[i].fn) {
                fprintf(stderr, "%s: command '%s' is not part of this build\n", prog, argv[1]);
                return 2;
            }
            return cmds[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prog, argv[1], prog);
    return 2;
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
    static const char *const pn[] = {"cls", "mean", "auto"}, *const fn[] = {"fp32", "bf16"};
    static const int pv[] = {PULSE_POOL_CLS, PULSE_POOL_MEAN, PULSE_POOL_AUTO},
                     fv[] = {PULSE_PREC_FP32, PULSE_PREC_BF16};
    if (cli_choice(cmd, "--pooling", pooling, pn, pv, 3, pooling_out)) return -1;
    return cli_choice(cmd, "--precision", precision, fn, fv, 2, precision_out);
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
    return cli_choice(cmd, "--history", history, hn, hv, 2, out);
}

void cli_eval_json(cJSON *o, const pulse_eval_params *ep, const pulse_metrics *m) {
    cJSON_AddStringToObject(o, "history", pulse_history_name(ep->history));
    cJSON_AddNumberToObject(o, "users", m->n_users);
    cJSON_AddNumberToObject(o, "users_skipped", m->n_skipped);
    cJSON_AddNumberToObject(o, "repeat_targets", m->n_repeat);
}
