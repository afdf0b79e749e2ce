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

#ifdef __cplusplus
}
#endif
#endif
