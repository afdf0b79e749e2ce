/* tools/pulse/main.c — the `pulse` entry point and its one command table: every command and sub-command,
 * with its handler (tools/pulse/commands.h) and its line of help. A new stage adds its handlers to
 * commands.h and its rows here. Also the start and end of a run on several MPI ranks (docs/scale-out.md):
 * MPI is initialised only when a launcher started pulse (tools/pulse/env.h: cli_env_mpi), only the commands
 * in dist_cmds run on more than one rank, stdout belongs to rank 0, and a failure on rank 0 ends every
 * rank (MPI_Abort) after rank 0 printed it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "env.h"
#include "pulse/core.h"
#include "pulse/dist.h"
#include "pulse/kernels.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const cli_cmd data_cmds[] = {
    {"stats", cmd_data_stats, "users, items, interactions, lengths (JSON last line)", NULL, 0},
    {"synth", cmd_data_synth, "write the deterministic synthetic dataset as S3-Rec files", NULL, 0},
    {"convert", cmd_data_convert, "convert a dataset to RecBole atomic files (or S3-Rec files)", NULL, 0},
};

static const cli_cmd sasrec_cmds[] = {
    {"train", cmd_sasrec_train, "train SASRec (CE or BCE), keep the best valid model, report test metrics",
     NULL, 0},
    {"eval", cmd_sasrec_eval, "evaluate a saved model (full ranking or sampled candidates)", NULL, 0},
    {"similar", cmd_sasrec_similar, "top-k most similar users by cosine of SASRec user vectors (JSONL)", NULL,
     0},
};

static const cli_cmd textrec_cmds[] = {
    {"train", cmd_textrec_train,
     "train MoRec or the Thought-Space recommender (text vectors + SASRec-CE), report test metrics", NULL, 0},
    {"eval", cmd_textrec_eval, "evaluate a saved model: full ranking, cold-start users, zero-shot transfer",
     NULL, 0},
};

static const cli_cmd lm_cmds[] = {
    {"info", cmd_lm_info, "architecture, hyper-parameters, tensor types, vocabulary of a GGUF file", NULL, 0},
    {"tokenize", cmd_lm_tokenize, "text -> token ids with the GGUF's tokenizer", NULL, 0},
    {"generate", cmd_lm_generate, "generate a continuation (greedy or sampled)", NULL, 0},
    {"score", cmd_lm_score, "log-probability of a continuation given a prompt", NULL, 0},
    {"bench", cmd_lm_bench, "prefill / decode / batched generation throughput", NULL, 0},
    {"train", cmd_lm_train, "LoRA fine-tuning on prompt/completion JSON lines (llama.cpp GGUF adapter)", NULL,
     0},
};

static const cli_cmd thought_cmds[] = {
    {"pairs", cmd_thought_pairs, "build stand-in (behaviour, rationale) pairs from a dataset", NULL, 0},
    {"train", cmd_thought_train, "train the two encoders with InfoNCE", NULL, 0},
    {"score", cmd_thought_score, "cosine of behaviour and rationale(s) in a space", NULL, 0},
    {"eval", cmd_thought_eval, "held-out Recall@1 / MRR among 1 + K candidates", NULL, 0},
    {"plot", cmd_thought_plot, "Figure 3: t-SNE before vs after training, as SVG", NULL, 0},
};

static const cli_cmd rationale_cmds[] = {
    {"phase1", cmd_rationale_phase1, "Phase-1 hindsight rationales into a SQLite store (resumable)", NULL, 0},
    {"export", cmd_rationale_export, "stored rationales as the JSONL `pulse thought train` reads", NULL, 0},
    {"show", cmd_rationale_show, "one user's history, chosen item and rationales", NULL, 0},
    {"stats", cmd_rationale_stats, "rows per phase: ok, failed, tokens (JSON last line)", NULL, 0},
    {"tot", cmd_rationale_tot, "Phase 2: Tree-of-Thought refinement of each user's why (resumable store)",
     NULL, 0},
};

static const cli_cmd sft_cmds[] = {
    {"build", cmd_sft_build, "train / test JSONL (the PULSE prompts) from a dataset and a rationale store",
     NULL, 0},
};

static const cli_cmd qa_cmds[] = {
    {"eval", cmd_qa_eval,
     "HotpotQA: supporting facts, answers with the SLM (direct / cot / tot), official predictions + metrics",
     NULL, 0},
    {"sp", cmd_qa_sp, "HotpotQA supporting facts alone (BM25 / encoder / Thought Space), SP EM / F1", NULL,
     0},
    {"score", cmd_qa_score, "the official HotpotQA metrics of a predictions file (JSON last line)", NULL, 0},
};

static const cli_cmd cmds[] = {
    {"data", NULL, "dataset statistics, splits and conversion", data_cmds, N_OF(data_cmds)},
    {"eval", cmd_eval, "evaluate recommenders (pop, a GGUF language model) under the shared protocols", NULL,
     0},
    {"sasrec", NULL, "train / evaluate SASRec, user vectors, similar users", sasrec_cmds, N_OF(sasrec_cmds)},
    {"textrec", NULL, "text-aware recommenders over the whole catalogue: MoRec, Thought-Space recommender",
     textrec_cmds, N_OF(textrec_cmds)},
    {"lm", NULL, "small language models (GGUF): info, tokenize, generate, score, bench, train", lm_cmds,
     N_OF(lm_cmds)},
    {"encode", cmd_encode, "embed texts with a BERT-family encoder", NULL, 0},
    {"thought", NULL, "the Thought Space: train, score, eval, plot", thought_cmds, N_OF(thought_cmds)},
    {"rationale", NULL, "rationales: Phase 1, Phase-2 Tree-of-Thought, export, show, stats", rationale_cmds,
     N_OF(rationale_cmds)},
    {"sft", NULL, "supervised fine-tuning data for the recommender", sft_cmds, N_OF(sft_cmds)},
    {"recommend", cmd_recommend, "rank a user's candidates with the language model and say why (JSON)", NULL,
     0},
    {"pipeline", cmd_pipeline,
     "the whole method: SASRec, Phase 1, Thought Space, ToT, SFT, evaluation (resumable; JSON last line)",
     NULL, 0},
    {"qa", NULL, "multi-hop QA transfer (HotpotQA): eval, supporting facts, score", qa_cmds, N_OF(qa_cmds)},
    {"info", cmd_info, "the CPU and the level each product family runs at (JSON last line)", NULL, 0},
};

/* the commands that split their work over MPI ranks; any other refuses more than one rank */
static const char *const dist_cmds[] = {"rationale phase1", "rationale tot", "eval",
                                        "sasrec eval",      "sasrec train",  "thought train",
                                        "textrec train",    "lm train",      "qa eval"};

static int dist_capable(int argc, char **argv) {
    char name[128] = "";
    if (argc >= 2)
        snprintf(name, sizeof name, "%s%s%s", argv[1], argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "");
    for (int i = 0; i < N_OF(dist_cmds); i++) {
        size_t n = strlen(dist_cmds[i]);
        if (strncmp(name, dist_cmds[i], n) == 0 && (name[n] == 0 || name[n] == ' ')) return 1;
    }
    return argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
}

/* rank 0 of several: the launcher stops the job (SIGTERM) when another rank died or the job was cancelled */
static void on_term(int sig) {
    static const char m[] = "pulse: rank 0: the job was stopped by its launcher (SIGTERM): another rank died "
                            "or the job was cancelled; the work finished so far is kept (a rationale store "
                            "holds every finished user): rerun the same command to resume\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(128 + sig);
}

static int run(int argc, char **argv);

int main(int argc, char **argv) {
    pulse_blas_threads_env(argv); /* OpenBLAS without its own thread pool (tools/pulse/env.h) */
    int mpi = cli_env_mpi();
    if (mpi < 0) return 2;
    if (mpi) {
        if (pulse_dist_init(&argc, &argv)) {
            fprintf(stderr, "pulse: %s\n", pulse_last_error());
            return 1;
        }
        if (pulse_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) {
            fprintf(stderr, "pulse: rank %d: could not silence stdout\n", pulse_dist_rank());
            pulse_dist_abort(1);
        }
        if (pulse_dist_size() > 1 && !dist_capable(argc, argv)) {
            if (pulse_dist_rank() == 0)
                fprintf(stderr,
                        "pulse: %s%s%s runs on one rank only (%d were started); the commands that split "
                        "their work over ranks: rationale phase1 | tot, eval, sasrec eval | train, "
                        "thought train, textrec train, lm train, qa eval "
                        "(docs/scale-out.md)\n",
                        argc >= 2 ? argv[1] : "", argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "",
                        pulse_dist_size());
            pulse_dist_finalize();
            return 2;
        }
        if (pulse_dist_size() > 1 && pulse_dist_rank() == 0) signal(SIGTERM, on_term);
        if (pulse_dist_rank() != 0) pulse_progress_set_quiet(1); /* rank 0 reports progress */
        cli_set_ranks(pulse_dist_size());
    }
    int rc = run(argc, argv);
    if (mpi) {
        fflush(stdout);
        fflush(stderr);
        /* a failure that the other ranks may not share ends them all; usage errors (2) happen on every rank
         */
        if (rc == 1 && pulse_dist_size() > 1 && pulse_dist_rank() == 0) pulse_dist_abort(rc);
        pulse_dist_finalize();
    }
    return rc;
}

static int run(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("pulse %s\n", PULSE_VERSION_STRING);
        return 0;
    }
    pulse_options_from_env(); /* PULSE_QUIET, PULSE_BF16, PULSE_QTILE, PULSE_LM_PROFILE (tools/pulse/env.h) */
    /* the global --isa (or PULSE_ISA): the instruction level every kernel choice below follows */
    if (pulse_isa_from_args("pulse", &argc, argv)) return 2;
    /* fp32 products at the CPU's level: OpenBLAS moved up from a core below it (or down to the --isa level),
     * unless the user chose one */
    pulse_blas_params bp = pulse_blas_default_params();
    bp.explicit_core = getenv("OPENBLAS_CORETYPE");
    if (pulse_blas_select(&bp, NULL))
        fprintf(stderr, "pulse: warning: fp32 products stay below this CPU's level: %s\n",
                pulse_last_error());
    if (cli_env_threads()) return 2;
    return cli_dispatch("pulse", argc, argv, cmds, N_OF(cmds));
}
