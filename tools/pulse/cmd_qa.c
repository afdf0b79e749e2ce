/* tools/pulse/cmd_qa.c — `pulse qa eval` (HotpotQA: supporting facts, answers with the SLM, predictions in
 * the official format), `pulse qa sp` (the supporting facts alone, no LM) and `pulse qa score` (a predictions
 * file against a gold file): parsing, and the metrics as the last stdout line (JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pulse/qa.h"

static cJSON *metrics_json(const pulse_qa_metrics *m, int answers, int questions) {
    cJSON *o = cJSON_CreateObject();
    if (answers) {
        cJSON_AddNumberToObject(o, "em", m->em);
        cJSON_AddNumberToObject(o, "f1", m->f1);
    }
    if (m->has_sp) {
        cJSON_AddNumberToObject(o, "sp_em", m->sp_em);
        cJSON_AddNumberToObject(o, "sp_f1", m->sp_f1);
        if (answers) {
            cJSON_AddNumberToObject(o, "joint_em", m->joint_em);
            cJSON_AddNumberToObject(o, "joint_f1", m->joint_f1);
        }
    }
    cJSON_AddNumberToObject(o, "questions", questions);
    return o;
}

/* eval and sp share everything but the LM */
static int run(int argc, char **argv, int sp_only) {
    const char *cmd = sp_only ? "qa sp" : "qa eval";
    pulse_qa_params p = pulse_qa_default_params();
    const char *data = NULL, *model = NULL, *mode = NULL, *sp = NULL, *space = NULL, *encoder = NULL,
               *out = NULL, *context = NULL, *store = NULL, *chat = NULL, *scorer = NULL, *pooling = NULL;
    int seed = 42, threads = 0, no_store = 0, no_title = 0;
    cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data,
         "HotpotQA JSON (e.g. ../shared/data/hotpotqa/hotpot_dev_distractor_sample100.json)"},
        {"--model|-m", CLI_STR, &model, "the SLM (GGUF; not needed with --mode none)"},
        {"--lora", CLI_STR, &p.lora, "LoRA adapter (llama.cpp's GGUF LoRA format), as `pulse lm generate`"},
        {"--lora-scale", CLI_FLOAT, &p.lora_scale, "multiplier of the adapter's update (1)",
         CLI_RANGE(-1000, 1000)},
        {"--mode", CLI_STR, &mode, "direct | cot | tot | none (default direct; none: supporting facts only)"},
        {"--sp", CLI_STR, &sp, "bm25 | encoder | space: the supporting-fact selector (default bm25)"},
        {"--encoder|-e", CLI_STR, &encoder,
         "encoder folder for --sp encoder (e.g. .cache/encoders/minilm-l6)"},
        {"--space", CLI_STR, &space,
         "Thought Space folder (`pulse thought train` output) for --sp space and the tot thought scorer"},
        {"--k", CLI_INT, &p.k, "sentences kept per question (default 0: chosen on the held-in questions)",
         CLI_RANGE(0, 1000)},
        {"--k-max", CLI_INT, &p.k_max, "largest k tried when choosing (8)", CLI_RANGE(1, 1000)},
        {"--held-in", CLI_INT, &p.held_in, "the first N questions of the file choose k (30)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--pooling", CLI_STR, &pooling,
         "auto | cls | mean: pooling of the --encoder folder (default auto: its own; a trained space keeps "
         "its own)"},
        {"--no-title", CLI_FLAG, &no_title, "rank sentences without their paragraph title in front"},
        {"--context", CLI_STR, &context,
         "sp | all: the LM sees the selected sentences (default) or all paragraphs"},
        {"--first", CLI_INT, &p.first, "first question of the job (0)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--questions", CLI_INT, &p.questions, "questions of the job (default 0: to the end of the file)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--sample", CLI_INT, &p.sample,
         "answer a seeded sample (--seed) of N questions of the range, in file order (default 0: all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed,
         "question sample and sampling seed (42; greedy decoding unless --temp)"},
        {"--temp", CLI_FLOAT, &p.temp, "temperature of direct / cot (default 0: greedy)", CLI_RANGE(0, 100)},
        {"--max-new", CLI_INT, &p.max_new_tokens, "new tokens per answer (default 0: 32 direct, 256 cot)",
         CLI_RANGE(0, 100000)},
        {"--parallel", CLI_INT, &p.parallel, "questions decoded together (8)", CLI_RANGE(1, 1024)},
        {"--chat", CLI_STR, &chat,
         "auto | chat | raw: prompt format (default auto: the GGUF's chat template)"},
        {"--scorer", CLI_STR, &scorer,
         "tot: likelihood | thought (default likelihood; thought needs --space)"},
        {"--depth", CLI_INT, &p.tot.depth, "tot: thoughts per chain (3)", CLI_RANGE(1, 63)},
        {"--branching", CLI_INT, &p.tot.branching, "tot: children per kept node (3)", CLI_RANGE(1, 1024)},
        {"--beam", CLI_INT, &p.tot.beam, "tot: nodes kept per level (2)", CLI_RANGE(1, 64)},
        {"--max-thought-tokens", CLI_INT, &p.tot.max_thought_tokens, "tot: tokens per thought (61)",
         CLI_RANGE(1, 4096)},
        {"--store", CLI_STR, &store, "SQLite store of the answers (default: PRED.json.db); a rerun resumes"},
        {"--no-store", CLI_FLAG, &no_store, "keep no store (no resuming)"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--out|-o", CLI_STR, &out, "predictions file (official format)"},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *usage =
        sp_only
            ? "usage: pulse qa sp --data FILE.json [--sp bm25|encoder|space] [--encoder DIR] [--space DIR] "
              "[--k K] [--held-in N] [--out PRED.json]\n"
              "Supporting facts alone (no LM): every context sentence ranked against the question, the top k "
              "kept\n(k chosen on the first --held-in questions by mean SP F1 unless given); SP EM / F1 "
              "over all questions\nand over those after the held-in split."
            : "usage: pulse qa eval --data FILE.json --model GGUF [--lora FILE] [--mode direct|cot|tot] "
              "[--space DIR]\n       [--sp bm25|encoder|space] [--encoder DIR] [--questions N] [--seed S] "
              "--out PRED.json\n"
              "HotpotQA with the SLM: supporting facts selected, then answers (direct; cot: a \"Let me "
              "think:\" chain\nthen \"The answer is\"; tot: Tree-of-Thought chains, the best chain's "
              "answer), "
              "predictions in the\nofficial format, metrics as the last stdout line. Answers are stored as "
              "they finish (resumable).";
    int r = cli_parse(argc, argv, opts, nopts, usage, NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    static const char *const mn[] = {"none", "direct", "cot", "tot"};
    static const int mv[] = {PULSE_QA_MODE_NONE, PULSE_QA_MODE_DIRECT, PULSE_QA_MODE_COT, PULSE_QA_MODE_TOT};
    static const char *const sn[] = {"bm25", "encoder", "space"};
    static const int sv[] = {0, 1, 2};
    static const char *const cn[] = {"sp", "all"};
    static const int cv[] = {0, 1};
    static const char *const hn[] = {"auto", "chat", "raw"};
    static const int hv[] = {-1, 1, 0};
    static const char *const tn[] = {"likelihood", "thought"};
    static const int tv[] = {PULSE_TOT_SCORER_LIKELIHOOD, PULSE_TOT_SCORER_THOUGHT};
    int m = sp_only ? PULSE_QA_MODE_NONE : PULSE_QA_MODE_DIRECT, s = 0, ctx = 0, ch = -1,
        sc = PULSE_TOT_SCORER_LIKELIHOOD;
    if (cli_choice(cmd, "--mode", mode, mn, mv, 4, &m) || cli_choice(cmd, "--sp", sp, sn, sv, 3, &s) ||
        cli_choice(cmd, "--context", context, cn, cv, 2, &ctx) ||
        cli_choice(cmd, "--chat", chat, hn, hv, 3, &ch) ||
        cli_choice(cmd, "--scorer", scorer, tn, tv, 2, &sc))
        return 2;
    int pool = PULSE_POOL_AUTO, prec = 0;
    if (cli_encoder_choices(cmd, pooling, NULL, &pool, &prec)) return 2;
    p.pooling = (pulse_pooling)pool;
    if (sp_only && m != PULSE_QA_MODE_NONE) {
        fprintf(stderr, "pulse qa sp: selects supporting facts only; use `pulse qa eval --mode %s`\n", mode);
        return 2;
    }
    if (!data || (!sp_only && !out) || (m != PULSE_QA_MODE_NONE && !model)) {
        fprintf(stderr, "pulse %s: --data%s are required (see --help)\n", cmd,
                sp_only                   ? ""
                : m != PULSE_QA_MODE_NONE ? ", --model and --out"
                                          : " and --out");
        return 2;
    }
    if ((s == 1 && !encoder) || (s == 2 && !space)) {
        fprintf(stderr, "pulse %s: --sp %s needs %s DIR\n", cmd, sn[s], s == 1 ? "--encoder" : "--space");
        return 2;
    }
    if (m == PULSE_QA_MODE_TOT && sc == PULSE_TOT_SCORER_THOUGHT && !space && !encoder) {
        fprintf(stderr, "pulse %s: --scorer thought needs --space DIR (or --encoder DIR)\n", cmd);
        return 2;
    }
    if (out && cli_check_out_file(cmd, "--out", out)) return 2;
    p.mode = (pulse_qa_mode)m;
    p.sp.method = s == 0 ? PULSE_QA_SP_BM25 : PULSE_QA_SP_SPACE;
    p.sp.with_title = !no_title;
    p.space = s == 1 ? encoder : s == 2 ? space : NULL;
    p.context_all = ctx;
    p.chat = ch;
    p.seed = (uint64_t)seed;
    p.tot.seed = (uint64_t)seed;
    p.tot.scorer = (pulse_tot_scorer)sc;
    p.tot_space = space ? space : encoder;
    p.n_threads = threads;
    char db[4096];
    if (!no_store && m != PULSE_QA_MODE_NONE) {
        if (!store)
            snprintf(db, sizeof db, "%s.db", out);
        else
            snprintf(db, sizeof db, "%s", store);
        if (cli_check_out_file(cmd, "--store", db)) return 2;
        p.store = db;
    }
    cli_set_threads(cmd, threads);
    pulse_qa_report rep;
    if (pulse_qa_run(data, model, out, &p, &rep)) return cli_fail(cmd);
    const int answers = m != PULSE_QA_MODE_NONE && rep.has_answers;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mode", pulse_qa_mode_name(p.mode));
    cJSON_AddStringToObject(o, "sp", sn[s]);
    cJSON_AddNumberToObject(o, "k", rep.k);
    if (rep.held_in > 0) {
        cJSON_AddNumberToObject(o, "held_in", rep.held_in);
        cJSON_AddNumberToObject(o, "held_in_sp_f1", rep.k_f1);
    }
    cJSON_AddNumberToObject(o, "questions", rep.questions);
    if (m != PULSE_QA_MODE_NONE) {
        cJSON_AddStringToObject(o, "context", ctx ? "all" : "sp");
        cJSON_AddNumberToObject(o, "answered", rep.answered);
        cJSON_AddNumberToObject(o, "skipped", rep.skipped);
        cJSON_AddBoolToObject(o, "chat", rep.chat);
        cJSON_AddBoolToObject(o, "lora", p.lora != NULL);
        cJSON_AddNumberToObject(o, "gen_tokens", (double)rep.gen_tokens);
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)rep.prompt_tokens);
        cJSON_AddNumberToObject(o, "lm_seconds", rep.lm_seconds);
        cJSON_AddNumberToObject(o, "seconds_per_question",
                                rep.answered ? rep.lm_seconds / rep.answered : 0.0);
        cJSON_AddStringToObject(o, "settings_hash", rep.settings_hash);
    }
    cJSON_AddNumberToObject(o, "sp_seconds", rep.sp_seconds);
    cJSON_AddNumberToObject(o, "seconds", rep.seconds);
    if (out) cJSON_AddStringToObject(o, "out", out);
    if (rep.held_in > 0 && rep.metrics_out.n > 0)
        cJSON_AddItemToObject(o, "metrics_held_out",
                              metrics_json(&rep.metrics_out, answers, rep.metrics_out.n));
    cJSON_AddItemToObject(o, "metrics", metrics_json(&rep.metrics, answers, rep.questions));
    cli_print_json(o);
    return 0;
}

int cmd_qa_eval(int argc, char **argv) {
    return run(argc, argv, 0);
}
int cmd_qa_sp(int argc, char **argv) {
    return run(argc, argv, 1);
}

int cmd_qa_score(int argc, char **argv) {
    const char *data = NULL, *pred = NULL;
    int n = 0;
    cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "gold HotpotQA JSON"},
        {"--pred", CLI_STR, &pred, "predictions in the official format"},
        {"--questions", CLI_INT, &n, "score the first N gold questions (default 0: all)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse qa score --data GOLD.json --pred PRED.json\nThe official HotpotQA "
        "metrics of a predictions file (every gold question counts; a missing prediction scores 0).",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !pred) {
        fprintf(stderr, "pulse qa score: --data and --pred are required (see --help)\n");
        return 2;
    }
    pulse_qa_set *s = NULL;
    pulse_qa_metrics m;
    if (pulse_qa_load(data, NULL, &s) || pulse_qa_evaluate_file(s, n, pred, &m)) {
        pulse_qa_free(s);
        return cli_fail("qa score");
    }
    pulse_qa_free(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "questions", m.n);
    cJSON_AddNumberToObject(o, "missing_answer", m.missing_answer);
    if (m.has_sp) cJSON_AddNumberToObject(o, "missing_sp", m.missing_sp);
    cJSON_AddItemToObject(o, "metrics", metrics_json(&m, 1, m.n));
    cli_print_json(o);
    return 0;
}
