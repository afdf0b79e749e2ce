/* tools/pulse/cmd_pipeline.c — `pulse pipeline --data DIR --model GGUF --encoder DIR --out DIR --users N`:
 * parsing, then pulse_pipeline_run (src/recommend/pipeline.c: SASRec -> similar users -> Phase 1 -> Thought
 * Space -> ToT -> SFT -> evaluation, each stage skipped when its output is in --out), a table of the methods
 * on stderr and the summary JSON as the last stdout line. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pulse/recommend.h"

static double num(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* method | decoder | HR@1 | NDCG@5 | NDCG@10, one row per (method, decoder) */
static void print_metrics(const cJSON *m) {
    printf("| method | decoder | HR@1 | NDCG@5 | NDCG@10 |\n| --- | --- | --- | --- | --- |\n");
    for (const cJSON *me = m ? m->child : NULL; me; me = me->next)
        for (const cJSON *d = me->child; d; d = d->next) {
            printf("| %s | %s | %.4f |", me->string, d->string, num(d, "HR@1"));
            if (num(d, "NDCG@5") >= 0)
                printf(" %.4f | %.4f |\n", num(d, "NDCG@5"), num(d, "NDCG@10"));
            else
                printf(" - | - |\n");
        }
}

static void print_stages(const cJSON *st) {
    printf("\n| stage | wall s | |\n| --- | --- | --- |\n");
    for (const cJSON *s = st ? st->child : NULL; s; s = s->next)
        printf("| %s | %.1f | %s%s |\n", s->string, num(s, "seconds"),
               cJSON_IsTrue(cJSON_GetObjectItem(s, "skipped")) ? "skipped (done before)" : "",
               cJSON_IsTrue(cJSON_GetObjectItem(s, "resumed")) ? " resumed: the last run's time only" : "");
}

static void print_table(const cJSON *sum) {
    const cJSON *x = cJSON_GetObjectItem(sum, "cross_domain");
    const cJSON *tr = cJSON_GetObjectItem(sum, "dataset");
    printf("%s: rationales and SFT on %g users; %g test users (0 = all), N = %g\n\n",
           cJSON_IsString(tr) ? tr->valuestring : "", num(sum, "users"), num(sum, "eval_users"),
           num(sum, "candidates"));
    print_metrics(cJSON_GetObjectItem(sum, "metrics"));
    if (x) {
        const cJSON *te = cJSON_GetObjectItem(x, "test_data");
        printf("\ncross-domain: fine-tuned on %s, tested on %s\n\n",
               cJSON_IsString(tr) ? tr->valuestring : "", cJSON_IsString(te) ? te->valuestring : "");
        print_metrics(cJSON_GetObjectItem(x, "metrics"));
    }
    print_stages(cJSON_GetObjectItem(sum, "stages"));
    if (x) {
        printf("\ncross-domain stages:\n");
        print_stages(cJSON_GetObjectItem(x, "stages"));
    }
}

int cmd_pipeline(int argc, char **argv) {
    pulse_pipeline_params p = pulse_pipeline_default_params();
    const char *data = NULL, *model = NULL, *out = NULL, *decoders = "rank,generate",
               *rows = "zero-shot,sft-none,sft-phase1,sft-tot-likelihood,pulse";
    int seed = (int)p.seed, threads = 0, no_lik = 0, no_recompute = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder with item titles"},
        {"--model|-m", CLI_STR, &model, "the SLM (GGUF), e.g. SmolLM2-135M-Instruct"},
        {"--encoder|-e", CLI_STR, &p.encoder, "HF encoder folder the Thought Space starts from"},
        {"--test-data", CLI_STR, &p.test_data,
         "cross-domain: also test the adapters on this dataset (its own pop and SASRec beside them)"},
        {"--out|-o", CLI_STR, &out, "output folder (created; a rerun skips the stages found there)"},
        {"--users", CLI_INT, &p.users,
         "users of the seeded order: rationales, SFT lines and test lists (1000; 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "user order, candidates and sampling (42)"},
        {"--candidates", CLI_INT, &p.candidates, "N of the test lists (5; 20 = A-LLMRec's protocol)",
         CLI_RANGE(2, 100000)},
        {"--eval-users", CLI_INT, &p.eval_users, "test users, the first of --users (0 = all of them)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--decoders", CLI_STR, &decoders, "the language models' decoders: rank,generate (both)"},
        {"--sasrec-epochs", CLI_INT, &p.sasrec_epochs, "SASRec: max epochs, early stopping (200)",
         CLI_RANGE(1, 1000000)},
        {"--phase1-max-new", CLI_INT, &p.phase1_max_new, "Phase 1: new tokens per rationale (150)",
         CLI_RANGE(1, 100000)},
        {"--thought-epochs", CLI_INT, &p.thought_epochs, "Thought Space epochs (53)", CLI_RANGE(1, 100000)},
        {"--tot-users", CLI_INT, &p.tot_users, "ToT: the first N users (0 = --users)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--tot-depth", CLI_INT, &p.tot_depth, "ToT: thoughts per chain (3)", CLI_RANGE(1, 63)},
        {"--tot-branching", CLI_INT, &p.tot_branching, "ToT: children per kept node (3)", CLI_RANGE(1, 1024)},
        {"--tot-beam", CLI_INT, &p.tot_beam, "ToT: nodes kept per level (2)", CLI_RANGE(1, 64)},
        {"--tot-thought-tokens", CLI_INT, &p.tot_thought_tokens, "ToT: tokens per thought (61)",
         CLI_RANGE(1, 4096)},
        {"--rows", CLI_STR, &rows,
         "the language-model rows, each with only the stages it needs: zero-shot, sft-none, sft-phase1, "
         "sft-tot-likelihood, pulse (all; pop and SASRec always)"},
        {"--no-likelihood", CLI_FLAG, &no_lik, "skip the likelihood-scored ToT and its SFT row"},
        {"--rationales-first", CLI_FLAG, &p.rationales_first,
         "every rationale stage (Phase 1, Thought Space, ToT) before any fine-tuning (default: each row as "
         "soon as it can)"},
        {"--sft-epochs", CLI_INT, &p.sft_epochs, "LoRA SFT epochs (7)", CLI_RANGE(1, 100000)},
        {"--sft-batch", CLI_INT, &p.sft_batch, "LoRA SFT micro-batch (8)", CLI_RANGE(1, 65536)},
        {"--sft-grad-accum", CLI_INT, &p.sft_grad_accum, "micro-batches per step (8: batch 64)",
         CLI_RANGE(1, 65536)},
        {"--sft-max-len", CLI_INT, &p.sft_max_len, "tokens per training example (512)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--sft-max-steps", CLI_INT, &p.sft_max_steps, "stop each LoRA run after N steps (0 = all epochs)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--sft-no-recompute", CLI_FLAG, &no_recompute,
         "keep every layer's activations in SFT: faster, more memory, the same adapter"},
        {"--max-new", CLI_INT, &p.eval_max_new, "generate decoder: new tokens at most (59)",
         CLI_RANGE(1, 100000)},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse pipeline --data DIR --model GGUF --encoder DIR --out DIR [--users N] [--seed S]\n"
        "The whole method: SASRec -> similar users -> Phase 1 -> Thought Space -> ToT -> SFT (LoRA per "
        "rationale\nvariant) -> evaluation of pop, SASRec, zero-shot and the fine-tuned SLM on one stored "
        "candidate set.\nEach stage records itself in OUT/stages/ and is skipped on a rerun with the same "
        "settings.\nProgress on stderr; the table on stdout; the last stdout line is the summary JSON.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !model || !p.encoder || !out) {
        fprintf(stderr, "pulse pipeline: --data, --model, --encoder and --out are required (see --help)\n");
        return 2;
    }
    if (!pulse_file_exists(model)) {
        fprintf(stderr, "pulse pipeline: --model '%s': no such file\n", model);
        return 2;
    }
    if (pulse_pipeline_parse_decoders(decoders, &p.decoders) || pulse_pipeline_parse_rows(rows, &p.rows)) {
        fprintf(stderr, "pulse pipeline: --%s\n", pulse_last_error());
        return 2;
    }
    p.seed = (uint64_t)(int64_t)seed;
    if (no_lik) p.rows &= ~(unsigned)PULSE_PIPE_SFT_LIKELIHOOD;
    p.sft_recompute = !no_recompute;
    cli_set_threads("pipeline", threads);
    pulse_pipeline_report rep;
    if (pulse_pipeline_run(data, model, out, &p, &rep)) return cli_fail("pipeline");
    cJSON *o = cJSON_Parse(rep.summary);
    pulse_pipeline_report_free(&rep);
    if (!o) {
        fprintf(stderr, "pulse pipeline: out of memory\n");
        return 1;
    }
    print_table(o);
    cli_print_json(o);
    return 0;
}
