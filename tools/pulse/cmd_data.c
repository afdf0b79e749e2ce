/* tools/pulse/cmd_data.c — `pulse data stats|synth|convert`: dataset statistics (human lines + a JSON last
 * line), the synthetic dataset as S3-Rec files, and conversion to RecBole atomic files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pulse/data.h"

int cmd_data_stats(int argc, char **argv) {
    const char *dir = NULL, *format = NULL;
    int max_users = 0, kcore = 5;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &dir, "dataset folder (or one of its files)"},
        {"--format", CLI_STR, &format, "s3rec|recbole|lastfm|amazon2018 (default: detect)"},
        {"--max-users", CLI_INT, &max_users, "only the first N users (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--kcore", CLI_INT, &kcore, "k-core threshold for Amazon 2018 raw reviews (default 5; 1 = none)",
         CLI_RANGE(1, CLI_INT_MAX)},
    };
    int r = cli_parse(argc, argv, opts, 4, "usage: pulse data stats --data DIR", NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!dir) {
        fprintf(stderr, "pulse data stats: --data DIR is required\n");
        return 2;
    }
    pulse_data_params dp = pulse_data_default_params();
    dp.format = format;
    dp.max_users = max_users;
    dp.min_interactions = kcore;
    pulse_dataset *ds;
    if (pulse_dataset_load(dir, &dp, &ds)) return cli_fail("data stats");
    pulse_data_stats s;
    pulse_dataset_stats(ds, &s);
    printf("dataset       %s (%s)\n", pulse_dataset_name(ds), pulse_dataset_format(ds));
    printf("users         %d\n", s.users);
    printf("items         %d (id space 1..%d)\n", s.items, s.item_ids);
    printf("interactions  %zu\n", s.interactions);
    printf("length        avg %.2f, min %d, max %d\n", s.avg_len, s.min_len, s.max_len);
    printf("density       %.4f%%\n", 100.0 * s.density);
    printf("titled items  %d/%d\n", s.titled_items, s.item_ids);
    printf("short users   %d (fewer than 3 items: no valid/test target)\n", s.short_users);
    printf(
        "repeated held-out items  valid %d, test %d users (the held-out item occurs earlier in their history;"
        " --history-mode mask counts them as misses)\n",
        s.repeat_valid, s.repeat_test);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
    cJSON_AddStringToObject(o, "format", pulse_dataset_format(ds));
    cJSON_AddNumberToObject(o, "users", s.users);
    cJSON_AddNumberToObject(o, "items", s.items);
    cJSON_AddNumberToObject(o, "interactions", (double)s.interactions);
    cJSON_AddNumberToObject(o, "avg_len", (double)(long long)(s.avg_len * 10000 + 0.5) / 10000);
    cJSON_AddNumberToObject(o, "min_len", s.min_len);
    cJSON_AddNumberToObject(o, "max_len", s.max_len);
    cJSON_AddNumberToObject(o, "density", (double)(long long)(s.density * 1e8 + 0.5) / 1e8);
    cJSON_AddNumberToObject(o, "item_ids", s.item_ids);
    cJSON_AddNumberToObject(o, "titled_items", s.titled_items);
    cJSON_AddNumberToObject(o, "short_users", s.short_users);
    cJSON *rep = cJSON_AddObjectToObject(o, "repeat_targets");
    if (rep) {
        cJSON_AddNumberToObject(rep, "valid", s.repeat_valid);
        cJSON_AddNumberToObject(rep, "test", s.repeat_test);
    }
    cli_print_json(o);
    pulse_dataset_free(ds);
    return 0;
}

int cmd_data_synth(int argc, char **argv) {
    pulse_synth_params sp = pulse_synth_default_params();
    const char *out = NULL;
    int seed = (int)sp.seed;
    const cli_opt opts[] = {
        {"--out|-o", CLI_STR, &out, "output folder (sequences.txt + items.tsv)"},
        {"--users", CLI_INT, &sp.n_users, "number of users (default 500)", CLI_RANGE(1, 10000000)},
        {"--items", CLI_INT, &sp.n_items, "number of items (default 300)", CLI_RANGE(2, 10000000)},
        {"--attributes", CLI_INT, &sp.n_attributes, "attribute values per dimension, 2..16 (default 12)",
         CLI_RANGE(2, 16)},
        {"--min-len", CLI_INT, &sp.min_len, "shortest sequence (default 5)", CLI_RANGE(3, 100000)},
        {"--max-len", CLI_INT, &sp.max_len, "longest sequence (default 30)", CLI_RANGE(3, 100000)},
        {"--seed|-s", CLI_INT, &seed, "random seed (default 1)"},
        {"--repeat", CLI_FLOAT, &sp.repeat,
         "per-step probability of re-consuming an earlier item (repeat consumption), 0 <= p < 1 (default 0)",
         CLI_RANGE_OPEN_HI(0, 1)},
    };
    int r = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                      "usage: pulse data synth --out DIR [--users N --items N --seed S]", NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "pulse data synth: --out DIR is required\n");
        return 2;
    }
    if (sp.max_len < sp.min_len) {
        fprintf(stderr, "pulse data synth: --max-len %d is below --min-len %d\n", sp.max_len, sp.min_len);
        return 2;
    }
    if (cli_check_out_dir("data synth", "--out", out)) return 2;
    sp.seed = (uint64_t)(int64_t)seed;
    pulse_dataset *ds;
    if (pulse_dataset_synthetic(&sp, &ds)) return cli_fail("data synth");
    if (pulse_dataset_write_s3rec(ds, out)) {
        pulse_dataset_free(ds);
        return cli_fail("data synth");
    }
    pulse_data_stats s;
    pulse_dataset_stats(ds, &s);
    printf("wrote %s/sequences.txt and items.tsv: %d users, %d items, %zu interactions\n", out, s.users,
           s.items, s.interactions);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddNumberToObject(o, "users", s.users);
    cJSON_AddNumberToObject(o, "items", s.items);
    cJSON_AddNumberToObject(o, "interactions", (double)s.interactions);
    cli_print_json(o);
    pulse_dataset_free(ds);
    return 0;
}

int cmd_data_convert(int argc, char **argv) {
    const char *dir = NULL, *to = "recbole", *out = NULL, *name = NULL;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &dir, "dataset folder"},
        {"--to", CLI_STR, &to, "recbole|s3rec (default recbole)"},
        {"--out|-o", CLI_STR, &out, "output folder"},
        {"--name", CLI_STR, &name, "RecBole dataset name (default: the folder's base name)"},
    };
    int r = cli_parse(argc, argv, opts, 4,
                      "usage: pulse data convert --data DIR --to recbole|s3rec --out DIR", NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!dir || !out) {
        fprintf(stderr, "pulse data convert: --data DIR and --out DIR are required\n");
        return 2;
    }
    if (strcmp(to, "recbole") != 0 && strcmp(to, "s3rec") != 0) {
        fprintf(stderr, "pulse data convert: --to expects recbole or s3rec, found '%s'\n", to);
        return 2;
    }
    if (cli_check_out_dir("data convert", "--out", out)) return 2;
    pulse_dataset *ds;
    if (pulse_dataset_load(dir, NULL, &ds)) return cli_fail("data convert");
    pulse_status st;
    char nm[256];
    if (strcmp(to, "recbole") == 0) {
        if (!name) {
            /* RecBole looks for DIR/NAME/NAME.inter: default NAME = the output folder's base name */
            const char *b = strrchr(out, '/');
            snprintf(nm, sizeof nm, "%s", b && b[1] ? b + 1 : out);
            size_t l = strlen(nm);
            while (l > 0 && nm[l - 1] == '/') nm[--l] = 0;
            name = nm;
        }
        st = pulse_dataset_write_recbole(ds, out, name);
    } else {
        st = pulse_dataset_write_s3rec(ds, out);
    }
    if (st) {
        pulse_dataset_free(ds);
        return cli_fail("data convert");
    }
    printf("wrote %s (%s) from %s: %d users, %zu interactions\n", out, to, dir, pulse_dataset_n_users(ds),
           pulse_dataset_n_interactions(ds));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "out", out);
    cJSON_AddStringToObject(o, "to", to);
    if (strcmp(to, "recbole") == 0) cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "users", pulse_dataset_n_users(ds));
    cJSON_AddNumberToObject(o, "interactions", (double)pulse_dataset_n_interactions(ds));
    cli_print_json(o);
    pulse_dataset_free(ds);
    return 0;
}
