/* pulse/recommend.h — the PULSE recommender: the authors' prompts (test: the last 3 history titles and N
 * candidate titles; training: the last 5 history titles, 10 candidates and "Let me think: <rationale>. The
 * recommendation is" -> the target title in quotes), SFT data from a rationale store (`pulse sft build`), the
 * two decoders (generate-and-match, the authors'; rank, the log-probability of every candidate title after
 * one shared prompt KV), evaluation on stored candidate sets (pulse_candset) and single-user
 * recommendations with a generated "why".
 *
 * Leakage rule: a training example's target is the user's last training item, its history the training items
 * before it and its negatives items the user never interacted with (so neither the valid nor the test item is
 * in a training prompt); a test example's history is train + valid. Dataset text is untrusted: titles are
 * tokenized as text, never as control tokens. */
#ifndef PULSE_RECOMMEND_H
#define PULSE_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/data.h"
#include "pulse/eval.h"
#include "pulse/lm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- titles ---- */
/* HTML entities (named: amp lt gt quot apos nbsp and a few more; numeric &#N; &#xH;) decoded once, as
 * Python's html.unescape does for them (malloc'd; unknown entities stay as they are). */
char *pulse_html_unescape(const char *s);
/* The authors' match normalisation: HTML-unescaped, lower-case (ASCII and Latin-1), punctuation and symbols
 * stripped (every code point that is not a letter, a digit, '_' or a space, as Python's [^\w\s]), spaces
 * collapsed and trimmed (malloc'd). */
char *pulse_rec_normalize(const char *s);
/* 1 when the normalised target is non-empty and a substring of the normalised output (the generate decoder's
 * hit rule). */
int pulse_rec_title_match(const char *target, const char *output);
/* An item's title as prompts show it: HTML-unescaped, whitespace and control characters collapsed to single
 * spaces, cut to max_bytes at a UTF-8 boundary (<= 0: no cut); the item key when the item has no title
 * (malloc'd). */
char *pulse_rec_item_title(const pulse_dataset *ds, int item, int max_bytes);

/* ---- prompts ---- */
typedef enum { PULSE_REC_RAT_NONE = 0, PULSE_REC_RAT_PHASE1 = 1, PULSE_REC_RAT_TOT = 2 } pulse_rec_rationale;
int pulse_rec_rationale_from_name(const char *name); /* "none" | "phase1" | "tot"; -1 when unknown */
const char *pulse_rec_rationale_name(pulse_rec_rationale r);

typedef struct {
    int test_history;     /* history titles in a test prompt (3) */
    int train_history;    /* in a training prompt (5) */
    int train_candidates; /* candidates of a training prompt, target included (10) */
    int title_bytes;      /* a title is cut to this many bytes (200) */
    int chat;             /* 1 (default): the model's chat format when it has one; 0: raw text */
} pulse_rec_prompt_params;
pulse_rec_prompt_params pulse_rec_prompt_default_params(void);

/* A prompt in its parts: the user turn (history, candidates, question) and the begun answer. */
typedef struct {
    char *user;       /* "A user's items, oldest first:\n1. ...\nCandidates:\n- ...\n<question>" */
    char *prefix;     /* "Let me think: <rationale>. The recommendation is" or "The recommendation is" */
    char *completion; /* " \"<target title>\"" (NULL without a target) */
} pulse_rec_prompt;
void pulse_rec_prompt_free(pulse_rec_prompt *p);
/* The prompt from titles: the last n_hist of hist (oldest first), the candidates in order, the rationale
 * (NULL or "": none; a trailing full stop is not doubled) and the target title (NULL: no completion). */
pulse_status pulse_rec_prompt_from_titles(const char *const *hist, int n_hist, const char *const *cands,
                                          int n_cands, const char *rationale, const char *target,
                                          pulse_rec_prompt *out);
/* The raw text of a prompt: user + "\n" + prefix (what a raw prompt is tokenized from; malloc'd). */
char *pulse_rec_prompt_raw(const pulse_rec_prompt *p);
/* Token ids: pulse_lm_chat_prompt(tok, chat, NULL, user, prefix) (*ids malloc'd). */
pulse_status pulse_rec_prompt_tokenize(const pulse_tokenizer *tok, int chat, const pulse_rec_prompt *p,
                                       int **ids, int *n);
/* " \"title\"": what the rank decoder scores and a training example completes (malloc'd). */
char *pulse_rec_quoted(const char *title);

/* A training example of user: target = the last training item, history = the training items before it,
 * n candidates = the target + n-1 items outside the user's whole sequence (pulse_eval_excluded, mask mode,
 * over every item of the user), the target at a position drawn from an RNG seeded by (seed, user).
 * *target and *hist_len (history = seq[0..hist_len)) are set; returns PULSE_ERR_RANGE when the user has fewer
 * than 2 training items. */
pulse_status pulse_rec_train_candidates(const pulse_dataset *ds, int user, int n, uint64_t seed, int *target,
                                        int *hist_len, int *out, int *pos);
/* The prompt of a dataset example: titles of the last n_hist of hist[0..hist_len) and of cands. */
pulse_status pulse_rec_prompt_build(const pulse_dataset *ds, const int *hist, int hist_len, int n_hist,
                                    const int *cands, int n_cands, const char *rationale, int target,
                                    int title_bytes, pulse_rec_prompt *out);

/* The user whose dataset key is key (PULSE_ERR_ARG naming it when none). */
pulse_status pulse_rec_user_by_key(const pulse_dataset *ds, const char *key, int *user);
/* n candidates for a history given as titles (a user not in the data): items drawn from an RNG seeded by
 * seed, none whose normalised title is one of the history's. */
pulse_status pulse_rec_candidates_for_titles(const pulse_dataset *ds, const char *const *hist, int n_hist,
                                             int n, uint64_t seed, int *out);

/* ---- SFT data (`pulse sft build`) ---- */
typedef struct {
    pulse_rec_prompt_params prompt;
    pulse_rec_rationale rationale; /* none (default) | phase1 | tot */
    const char *db;                /* the rationale store (needed unless rationale is none) */
    const char *model_hash;        /* store rows of this model hash only (NULL: the key with most ok rows) */
    const char *settings_hash;     /* and this settings hash (NULL: as above) */
    int users;                     /* the first N users of the seeded order (0: all eligible) */
    uint64_t seed;                 /* user order, training candidates and test candidates (42) */
    int test_candidates;           /* N of the test lists (5) */
    pulse_history history;         /* test lists' exclusion rule (mask) */
} pulse_sft_build_params;
pulse_sft_build_params pulse_sft_build_default_params(void);
typedef struct {
    int users;        /* users of the order considered */
    int train;        /* training lines written */
    int no_rationale; /* users left out of training for want of an ok rationale row */
    int test;         /* test lines written (= candidate lists) */
    int train_cut;    /* training prompts whose history had fewer than train_history items */
    char model_hash[17], settings_hash[17]; /* the store key used ("" for none) */
    double seconds;
} pulse_sft_build_report;
/* Training lines {"prompt", "completion", "chat": {"user", "assistant"}, "user", "user_key", "target",
 * "items", "rationale"} (what `pulse lm train` reads; without "chat" when prompt.chat is 0) and test lines
 * (a pulse_candset line of the test split plus "prompt", "completion", "chat") written atomically. */
pulse_status pulse_sft_build(const char *data, const pulse_sft_build_params *p, const char *out_train,
                             const char *out_test, pulse_sft_build_report *r);
/* The users of the seeded order (pulse_record_select_users): the first n eligible ones (0: all). */
pulse_status pulse_rec_select_users(const pulse_dataset *ds, int n, uint64_t seed, int **users, int *n_out);

/* ---- the decoders ---- */
typedef enum { PULSE_REC_GENERATE = 0, PULSE_REC_RANK = 1 } pulse_rec_decoder;
typedef enum { PULSE_REC_SCORE_MEAN = 0, PULSE_REC_SCORE_SUM = 1 } pulse_rec_rank_score;

typedef struct {
    pulse_rec_prompt_params prompt;
    pulse_rec_decoder decoder;       /* rank (default) */
    pulse_rec_rank_score rank_score; /* mean (default) log-probability per title token, or the sum */
    float temp;                      /* generate: 0.3 */
    float top_p;                     /* generate: 0.9 */
    int max_new_tokens;              /* generate: 59 */
    uint64_t seed;                   /* generate: user u's sampler is seeded from (seed, u) (42) */
    int parallel;                    /* users in flight (16) */
    int n_threads;                   /* <= 0: the model's */
    float lora_scale;                /* 1 */
    const char *store; /* evaluate: each user's result kept in this SQLite store (the rationale store's
                          format, phase "eval-rank" / "eval-generate") as its chunk of users finishes; a
                          rerun with the same model, adapter, settings and candidate lists reads those users
                          back instead of decoding them (NULL: none) */
} pulse_rec_params;
pulse_rec_params pulse_rec_default_params(void);

typedef struct pulse_recommender pulse_recommender;
/* Loads the model (and the LoRA adapter when lora is not NULL) and makes a context for p->parallel users. */
pulse_status pulse_recommender_new(const char *model, const char *lora, const pulse_rec_params *p,
                                   pulse_recommender **out);
void pulse_recommender_free(pulse_recommender *r);
const pulse_tokenizer *pulse_recommender_tokenizer(const pulse_recommender *r);
int pulse_recommender_chat(const pulse_recommender *r); /* 1 when prompts use the chat format */

/* Rank: for each of n prompts, log p(quoted candidate title | prompt) of its n_cands candidates
 * (titles[i * n_cands + j]), all candidates of a prompt forked from its one prefilled KV, the prompts of
 * p->parallel users prefilled in one batch. logprob (n * n_cands) gets the sum, n_tokens (may be NULL) the
 * title token counts. */
pulse_status pulse_rec_rank(pulse_recommender *r, const pulse_rec_prompt *prompts, int n,
                            const char *const *titles, int n_cands, double *logprob, int *n_tokens);
/* Generate: the continuation of each prompt (sampled as p says; seeds[i] seeds prompt i), outs[i] malloc'd.
 */
pulse_status pulse_rec_generate(pulse_recommender *r, const pulse_rec_prompt *prompts, int n,
                                const uint64_t *seeds, int max_new_tokens, char **outs);

typedef struct {
    int users;
    double seconds;
    int64_t prompt_tokens; /* prompt tokens over all users */
    int64_t cand_tokens;   /* rank: candidate title tokens scored */
    int64_t gen_tokens;    /* generate: tokens sampled */
    int multi_match;       /* generate: outputs that matched more than one candidate */
    int no_match;          /* generate: outputs that matched no candidate */
    int resumed;           /* users read back from p->store instead of decoded */
} pulse_rec_eval_report;
/* Metrics of the recommender on a candidate set (test prompts: history = the split's prefix; decoder as
 * p->decoder: rank gives HR@K / NDCG@K among the list, generate HR@1 only (the hit rule: target title in the
 * output; the other metrics stay 0)). outputs (may be NULL): per list, the generated text (generate) or the
 * candidates' scores as JSON (rank), malloc'd. Users are decoded in fixed chunks of the list order
 * (4 x parallel for rank, 8 x parallel for generate), so a run resumed from p->store with the same parallel
 * gives the numbers an uninterrupted run gives. */
pulse_status pulse_rec_evaluate(pulse_recommender *r, const pulse_dataset *ds, const pulse_candset *cs,
                                pulse_metrics *out, pulse_rec_eval_report *rep, char **outputs);

/* One recommendation: the candidates ranked (rank decoder; order[k] = index of the k-th best, score[j] its
 * mean or sum log-probability as p says) and a generated "why" for the best one (malloc'd). */
pulse_status pulse_rec_recommend(pulse_recommender *r, const char *const *hist, int n_hist,
                                 const char *const *cands, int n_cands, double *score, int *order,
                                 char **why);

/* ---- the whole method end to end (src/recommend/pipeline.c) ----
 * SASRec -> similar users -> Phase 1 -> Thought Space (pairs from the Phase-1 rationales + InfoNCE training)
 * -> ToT (scored in the Thought Space: PULSE; and by likelihood: the ablation) -> SFT (training lines +
 * a LoRA per rationale variant) -> evaluation of every method on one stored candidate set. Every stage writes
 * its outputs under out_dir and then out_dir/stages/<stage>.json ({"hash", "seconds", "report"}); a stage
 * whose file exists with the same hash (its own settings and its inputs' hashes) is skipped, so a killed or
 * repeated run redoes only what is missing (the stores, SASRec, the Thought Space and LoRA runs also resume
 * inside a stage). Defaults are the authors' full-scale settings; scripts/run.sh passes a small subset. */
enum { PULSE_PIPE_RANK = 1u << 0, PULSE_PIPE_GENERATE = 1u << 1 };
/* the language-model rows of the table (pop and SASRec always run: seconds); each SFT row brings the
 * rationale stages it needs (Phase 1: similar users + Phase 1; PULSE: those + the Thought Space + ToT;
 * the likelihood row: similar users + ToT by likelihood) and nothing else */
enum {
    PULSE_PIPE_ZERO_SHOT = 1u << 0,
    PULSE_PIPE_SFT_NONE = 1u << 1,
    PULSE_PIPE_SFT_PHASE1 = 1u << 2,
    PULSE_PIPE_SFT_LIKELIHOOD = 1u << 3,
    PULSE_PIPE_PULSE = 1u << 4,
    PULSE_PIPE_ALL_ROWS = (1u << 5) - 1
};
typedef struct {
    const char *encoder; /* HF encoder folder both Thought-Space towers start from (required) */
    int users;           /* users of the seeded order: Phase 1, ToT, SFT lines and test lists (0: all) */
    uint64_t seed;       /* user order, candidates, sampling (42) */
    int candidates;      /* N of the test lists (5) */
    int eval_users;      /* test users, the first of users (0: all of them) */
    unsigned decoders;   /* PULSE_PIPE_* of the language-model rows (rank | generate) */
    int progress;        /* 1: stage lines and the stages' progress on stderr */
    int sasrec_epochs;   /* SASRec: max epochs (200, early stopping) */
    int phase1_max_new;  /* Phase 1: new tokens per rationale (150) */
    int thought_epochs;  /* Thought Space epochs (53) */
    int tot_users;       /* ToT: the first users of the order (0: users) */
    int tot_depth, tot_branching, tot_beam, tot_thought_tokens; /* 3, 3, 2, 61 */
    unsigned rows;        /* PULSE_PIPE_* rows to train and evaluate (default PULSE_PIPE_ALL_ROWS) */
    int rationales_first; /* 1: every rationale stage (similar users, Phase 1, the Thought Space, both ToT
                             searches) before any fine-tuning, so the stores other tools read (pulse qa: the
                             space, the PULSE SFT lines) come first; 0 (default): each row as soon as it can
                           */
    int sft_epochs, sft_batch, sft_grad_accum, sft_max_len; /* 7, 8, 8, 512 (the authors') */
    int sft_max_steps; /* > 0: stop each LoRA run after this many optimizer steps */
    int sft_recompute; /* 1 (default): keep each layer's input only and recompute the layer in the backward;
                          0: keep every activation (~1.5x faster steps, several times the memory; the same
                          bits, so it is not part of the stage's hash) */
    int eval_max_new;  /* generate decoder: new tokens at most (59) */
    const char *test_data; /* cross-domain (NULL: none): the adapters fine-tuned on data are also tested on
                              this dataset's users, lists and titles, beside its own popularity and SASRec
                              (trained there); outputs in out_dir/cross-<name>/, summary "cross_domain" */
} pulse_pipeline_params;
pulse_pipeline_params pulse_pipeline_default_params(void);
/* A comma-separated list of row names (zero-shot, sft-none, sft-phase1, sft-tot-likelihood, pulse: the
 * summary's method names) -> PULSE_PIPE_* row bits; of decoder names (rank, generate) -> PULSE_PIPE_RANK /
 * PULSE_PIPE_GENERATE. PULSE_ERR_ARG naming the unknown entry (an empty one included) and the choices. */
pulse_status pulse_pipeline_parse_rows(const char *list, unsigned *rows);
pulse_status pulse_pipeline_parse_decoders(const char *list, unsigned *decoders);

typedef struct {
    char name[48];
    double seconds; /* wall time of the stage's run (the recorded one when skipped) */
    int skipped;    /* 1: its output was already there */
} pulse_pipeline_stage;
typedef struct {
    int n_stages;
    pulse_pipeline_stage stages[40];
    char *summary; /* the summary JSON (one line, malloc'd; also written to out_dir/summary.json) */
    double seconds;
} pulse_pipeline_report;
void pulse_pipeline_report_free(pulse_pipeline_report *r);
/* Runs (or resumes) the pipeline on dataset folder data with language model model (GGUF) into out_dir
 * (created when missing). The summary: {"dataset", "model", "encoder", "out", "users", "seed", "candidates",
 * "stages": {name: {"seconds", "skipped", ...}}, "metrics": {method: {decoder: {"HR@1", ...}}}, "seconds"};
 * methods pop, sasrec (decoder "score"), zero-shot, sft-none, sft-phase1, sft-tot-likelihood, pulse; with
 * p->test_data also "cross_domain": {"train_data", "test_data", "stages", "metrics"}. */
pulse_status pulse_pipeline_run(const char *data, const char *model, const char *out_dir,
                                const pulse_pipeline_params *p, pulse_pipeline_report *r);

#ifdef __cplusplus
}
#endif
#endif
