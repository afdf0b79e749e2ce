/* tools/pulse/cmd_thought.c — `pulse thought pairs|train|score|plot`: argument parsing and printing for the
 * Thought Space; all work is in src/thought/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/data.h"
#include "pulse/thought.h"

static int thought_pairs(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *heldout = NULL;
    pulse_standin_params p = pulse_standin_default_params();
    int seed = (int)p.seed;
    cli_opt opts[] = {
        {"--data", CLI_STR, &data, "dataset folder with item titles (e.g. ../shared/data/amazon-beauty)"},
        {"--out", CLI_STR, &out, "training pairs JSONL to write"},
        {"--heldout", CLI_STR, &heldout, "held-out pairs JSONL to write (disjoint users)"},
        {"--train-users", CLI_INT, &p.n_train, "number of training users (default 6000)"},
        {"--heldout-users", CLI_INT, &p.n_heldout, "number of held-out users (default 1000)"},
        {"--max-history", CLI_INT, &p.max_history, "history items in the behaviour text (default 10)"},
        {"--seed", CLI_INT, &seed, "user shuffle seed (default 42)"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse thought pairs --data DIR --out PAIRS.jsonl [--heldout HELD.jsonl]\n"
        "Builds stand-in (behaviour, rationale) pairs from a dataset: rationale = the chosen item's\n"
        "categories + brand + title words absent from the history (until Phase-1 rationales exist).",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !out) {
        fprintf(stderr, "pulse thought pairs: --data and --out are required (see --help)\n");
        return 2;
    }
    p.seed = (uint64_t)seed;
    pulse_dataset *ds = NULL;
    pulse_data_params dp = pulse_data_default_params();
    if (pulse_dataset_load(data, &dp, &ds) != PULSE_OK) return cli_fail("thought pairs");
    int nt = 0, nh = 0;
    pulse_status st = pulse_thought_build_standin_pairs(ds, &p, out, heldout, &nt, &nh);
    pulse_dataset_free(ds);
    if (st != PULSE_OK) return cli_fail("thought pairs");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "train", out);
    cJSON_AddNumberToObject(o, "n_train", nt);
    if (heldout) cJSON_AddStringToObject(o, "heldout", heldout);
    cJSON_AddNumberToObject(o, "n_heldout", nh);
    cli_print_json(o);
    return 0;
}

int cmd_thought(int argc, char **argv) {
    const cli_cmd cmds[] = {
        {"pairs", thought_pairs, "build stand-in (behaviour, rationale) pairs from a dataset"},
    };
    return cli_dispatch("pulse thought", argc, argv, cmds, (int)(sizeof cmds / sizeof cmds[0]));
}
