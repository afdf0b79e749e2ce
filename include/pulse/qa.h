/* pulse/qa.h — multi-hop QA transfer (HotpotQA): the official JSON files (distractor setting with context and
 * supporting facts; the simplified closed-book list), predictions in the official format, the official
 * metrics (answer EM/F1 after SQuAD normalisation, supporting-fact EM/F1, joint EM/F1, as hotpot_evaluate_v1
 * defines them), supporting-fact selection (Okapi BM25 over sentences, or cosine in an encoder / a Thought
 * Space: the question on the behaviour side, each sentence on the rationale side) and answering with a small
 * language model (direct, chain-of-thought, Tree-of-Thought), resumable through the rationale store.
 *
 * Dataset text (questions, titles, sentences) is untrusted: it is tokenized as text, never as control
 * tokens. */
#ifndef PULSE_QA_H
#define PULSE_QA_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/rationale.h"
#include "pulse/thought.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the data ---- */
typedef struct {
    const char *title;
    int n_sent;
    const char *const *sent; /* (n_sent) the paragraph's sentences as the file has them */
} pulse_qa_paragraph;

typedef struct {
    const char *title;
    int sent; /* sentence index inside the paragraph of that title */
} pulse_qa_fact;

typedef struct {
    const char *id;       /* "_id"; files without one (the simplified list) get the question's index */
    const char *question; /* never NULL */
    const char *answer;   /* NULL when the file has none */
    const char *type;     /* "bridge" / "comparison" (NULL when absent) */
    const char *level;    /* NULL when absent */
    int n_para;           /* 0: closed-book (no "context") */
    const pulse_qa_paragraph *para;
    int n_sp; /* supporting facts; -1 when the file has none */
    const pulse_qa_fact *sp;
    int n_sent; /* sentences over all paragraphs (the flat order: paragraph by paragraph) */
} pulse_qa_question;

typedef struct pulse_qa_set pulse_qa_set;
typedef struct {
    int max_questions; /* read only the first N questions (0 = all) */
} pulse_qa_read_params;
pulse_qa_read_params pulse_qa_read_default_params(void);
/* Reads a HotpotQA JSON file: a list of objects with "question" (string, required), "answer", "_id", "type",
 * "level" (strings, optional), "supporting_facts" ([[title, sentence index], ...], optional) and "context"
 * ([[title, [sentence, ...]], ...], optional). A malformed file fails with PULSE_ERR_PARSE naming the file,
 * the question (index and _id) and the field with what was expected. */
pulse_status pulse_qa_load(const char *path, const pulse_qa_read_params *p /* NULL = defaults */,
                           pulse_qa_set **out);
void pulse_qa_free(pulse_qa_set *s);
int pulse_qa_count(const pulse_qa_set *s);
const pulse_qa_question *pulse_qa_get(const pulse_qa_set *s, int i);
int pulse_qa_has_sp(const pulse_qa_set *s);      /* every question has supporting facts */
int pulse_qa_has_context(const pulse_qa_set *s); /* every question has context paragraphs */
int pulse_qa_has_answers(const pulse_qa_set *s); /* every question has an answer */
/* Flat sentence index j of q -> paragraph and sentence inside it. */
void pulse_qa_sent_at(const pulse_qa_question *q, int j, int *para, int *sent);

/* ---- predictions: {"answer": {id: text}, "sp": {id: [[title, sent_idx], ...]}} ---- */
typedef struct {
    const char *answer;      /* NULL: no answer for this question (left out of "answer") */
    int n_sp;                /* -1: no supporting facts (left out of "sp") */
    const pulse_qa_fact *sp; /* (n_sp) */
} pulse_qa_pred;
/* Writes predictions for questions [0, n) of s, atomically, in the official format. */
pulse_status pulse_qa_pred_write(const char *path, const pulse_qa_set *s, const pulse_qa_pred *preds, int n);

/* ---- metrics, exactly as hotpot_evaluate_v1.py ---- */
/* SQuAD normalisation: lower-case (Unicode), ASCII punctuation removed, the words a / an / the removed,
 * whitespace collapsed. *out malloc'd. */
pulse_status pulse_qa_normalize(const char *s, char **out);
/* EM and token F1 / precision / recall of one answer (any of the outputs may be NULL). When either
 * normalised answer is yes / no / noanswer and they differ, F1 / precision / recall are 0. */
pulse_status pulse_qa_answer_score(const char *pred, const char *gold, double *em, double *f1, double *prec,
                                   double *recall);
/* Supporting facts as sets of (title, sentence) pairs (duplicates count once). */
void pulse_qa_sp_score(const pulse_qa_fact *pred, int n_pred, const pulse_qa_fact *gold, int n_gold,
                       double *em, double *f1, double *prec, double *recall);

typedef struct {
    double em, f1, prec, recall;
    double sp_em, sp_f1, sp_prec, sp_recall;
    double joint_em, joint_f1, joint_prec, joint_recall;
    int n;              /* questions (the denominator: every gold question, as the official script) */
    int has_sp;         /* the gold has supporting facts (sp_* and joint_* are meaningful) */
    int missing_answer; /* questions without a predicted answer (counted as 0) */
    int missing_sp;     /* questions without predicted supporting facts (counted as 0) */
} pulse_qa_metrics;
/* Sums one question in (pred->answer NULL / pred->n_sp < 0: missing, 0 for it and for joint). Call
 * pulse_qa_metrics_finish once after the last question. */
pulse_status pulse_qa_metrics_add(pulse_qa_metrics *m, const pulse_qa_question *gold,
                                  const pulse_qa_pred *pred);
void pulse_qa_metrics_finish(pulse_qa_metrics *m);
/* Scores a predictions file (the official format) against gold questions [0, n) of s (n <= 0: all). */
pulse_status pulse_qa_evaluate_file(const pulse_qa_set *s, int n, const char *pred_path,
                                    pulse_qa_metrics *out);

/* ---- supporting-fact selection ----
 * Each sentence's text is "title: sentence" (with_title) or the sentence alone; the question is the query. */
typedef enum {
    PULSE_QA_SP_BM25 = 0,  /* Okapi BM25 over the question's own sentences */
    PULSE_QA_SP_SPACE = 1, /* cosine of B(question) and R(sentence) in a pulse_thought_space (a trained space,
                              or a plain encoder folder loaded as one: B = R, untrained) */
} pulse_qa_sp_method;
typedef struct {
    pulse_qa_sp_method method;
    float k1, b;    /* BM25: 1.2, 0.75 */
    int with_title; /* 1 (default) */
} pulse_qa_sp_params;
pulse_qa_sp_params pulse_qa_sp_default_params(void);
/* BM25 tokens of a text: maximal runs of ASCII letters / digits and bytes >= 0x80 (UTF-8 text kept whole),
 * ASCII letters lower-cased; the n tokens (malloc'd array of malloc'd strings). */
pulse_status pulse_qa_bm25_tokens(const char *text, char ***toks, int *n);
/* Scores of every sentence of questions [0, n) (n <= 0: all) whose need[i] is nonzero (need NULL: all):
 * scores[i] is (q.n_sent) floats, malloc'd, NULL for a question not needed (free with pulse_qa_scores_free).
 * space is needed for PULSE_QA_SP_SPACE (all sentences of all questions are encoded in batches). */
pulse_status pulse_qa_sp_scores(const pulse_qa_set *s, int n, const uint8_t *need,
                                const pulse_qa_sp_params *p /* NULL = BM25 */, pulse_thought_space *space,
                                float ***scores);
void pulse_qa_scores_free(float **scores, int n);
/* The k best sentences of q by score (ties: file order), as facts in file order; facts has room for k. */
int pulse_qa_sp_topk(const pulse_qa_question *q, const float *scores, int k, pulse_qa_fact *facts);
/* The k in [1, k_max] with the best mean SP F1 over questions [lo, hi) (ties: the smaller k). */
int pulse_qa_sp_choose_k(const pulse_qa_set *s, float *const *scores, int lo, int hi, int k_max,
                         double *best_f1);

/* ---- answering with a small language model ---- */
typedef enum {
    PULSE_QA_MODE_NONE = 0,   /* supporting facts only, no LM */
    PULSE_QA_MODE_DIRECT = 1, /* context + question -> a short answer */
    PULSE_QA_MODE_COT = 2,    /* "Let me think:" chain, then "The answer is" */
    PULSE_QA_MODE_TOT = 3, /* Tree-of-Thought chains (the rationale beam search), the best chain's answer */
} pulse_qa_mode;
const char *pulse_qa_mode_name(pulse_qa_mode m); /* "none" "direct" "cot" "tot" */
int pulse_qa_mode_from_name(const char *name);   /* -1 when unknown */

typedef struct {
    pulse_qa_mode mode;    /* DIRECT */
    pulse_qa_sp_params sp; /* the selector (BM25) */
    const char *space;     /* folder for sp.method SPACE: a trained space (space.json) or an encoder folder */
    pulse_pooling
        pooling; /* of a plain encoder folder as the space (AUTO: its own; a trained space keeps its own) */
    int k;       /* sentences kept per question (0, default: chosen on the held-in split) */
    int k_max;   /* largest k tried when choosing (8) */
    int held_in; /* the first held_in questions of the file choose k (30) */
    int context_all;    /* 1: all paragraphs as the LM's context; 0 (default): the selected sentences */
    const char *lora;   /* LoRA adapter GGUF (NULL: none) */
    float lora_scale;   /* 1 */
    int max_new_tokens; /* 0 (default): 32 direct, 256 cot, the final answer of tot */
    float temp;         /* 0 (default): greedy */
    uint64_t seed;      /* 42: each question's sampler is seeded from (seed, its index) */
    int parallel;       /* questions decoded together (8) */
    int chat;           /* -1 (default): the model's chat format when it has one; 0 raw; 1 chat */
    int n_threads;      /* <= 0: keep */
    int first;          /* the job is questions [first, first + questions) of the file (0) */
    int questions;      /* 0 (default): to the end */
    int sample;         /* > 0: a seeded sample (seed) of this many questions of that range (0: all of it) */
    const char *store;  /* SQLite store: answers committed as they finish, a rerun skips them (NULL: none) */
    int progress;       /* 1: progress with rate and ETA on stderr */
    pulse_tot_params
        tot; /* mode TOT: the search (the rationale defaults; tot.scorer THOUGHT needs tot_space) */
    const char *tot_space; /* mode TOT with the THOUGHT scorer: the space chains are scored in */
} pulse_qa_params;
pulse_qa_params pulse_qa_default_params(void);

typedef struct {
    int questions;                /* of the job */
    int answered;                 /* answered by this run */
    int skipped;                  /* already in the store */
    int k;                        /* sentences kept per question */
    double k_f1;                  /* held-in mean SP F1 at k (when chosen) */
    int held_in;                  /* questions that chose k (0 when k was given) */
    int has_answers;              /* the job's questions have gold answers (metrics computed) */
    pulse_qa_metrics metrics;     /* over the job's questions */
    pulse_qa_metrics metrics_out; /* over the job's questions outside the held-in split */
    double seconds, sp_seconds, lm_seconds;
    int64_t prompt_tokens, gen_tokens; /* of this run */
    int chat;
    char model_hash[17], settings_hash[17];
} pulse_qa_report;

/* Runs a QA job on the HotpotQA file data: supporting facts (when the file has context), then answers with
 * the model (a GGUF; may be NULL for mode NONE), predictions of the job's questions written to pred_path in
 * the official format, metrics over them when the file has gold answers. */
pulse_status pulse_qa_run(const char *data, const char *model, const char *pred_path,
                          const pulse_qa_params *p /* NULL = defaults */, pulse_qa_report *out);

/* The answer in a small model's raw output: the text after the last "answer is" / "Answer:" when there is
 * one, its first line, markup (**, quotes, a leading colon) and a trailing period removed; "yes" / "no" when
 * yes_no and the text starts with one of them. *out malloc'd (may be ""). */
pulse_status pulse_qa_extract_answer(const char *raw, int yes_no, char **out);
/* 1 when the question asks for yes / no (its first word is is / are / was / were / do / does / did / can /
 * could / has / have / had / will / would / should / were). */
int pulse_qa_is_yes_no(const char *question);

#ifdef __cplusplus
}
#endif
#endif
