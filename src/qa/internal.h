/* qa/internal.h — what the QA module's files share and no caller sees: the prompt pieces (qa/answer.c). */
#ifndef PULSE_QA_INTERNAL_H
#define PULSE_QA_INTERNAL_H

#include "pulse/qa.h"

/* The instruction (system message) of a mode (context 0: closed-book) and what its answer is primed with. */
const char *qa_system(pulse_qa_mode mode, int context);
const char *qa_primer(pulse_qa_mode mode);
/* The Tree-of-Thought search's texts for QA and the LIKELIHOOD scorer's target ("Yes": the model's own
 * verdict that the chain leads to the correct answer). */
pulse_tot_prompts qa_tot_prompts(void);
const char *qa_tot_target(void);
/* 1 when s holds an answer cue ("answer is", "answer:", "answer -", any case). */
int qa_has_answer_cue(const char *s);
/* The user turn: "Context:\n<title>: <sentences>\n...\n\nQuestion: <question>" with the sentences of facts
 * (facts NULL: every sentence of every paragraph; no paragraphs: the question alone); malloc'd, NULL on OOM.
 */
char *qa_user_text(const pulse_qa_question *q, const pulse_qa_fact *facts, int n_facts);

#endif
