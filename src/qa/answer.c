/* qa/answer.c — owns what the SLM sees and what is taken from its output: the QA prompts (a fixed instruction
 * as the system message, the context sentences and the question as the user turn, the answer primed with
 * "Answer:" (direct) or "Let me think:" (cot), dataset text kept literal by pulse_lm_chat_prompt), the
 * yes / no question test and the answer extractor that accepts what small models emit. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qa/internal.h"
#include "pulse/strbuf.h"

static const char *SYS_DIRECT =
    "You answer questions using the given context. Reply with the answer only: a short phrase (a name, an "
    "entity, a date or a number), or yes or no. No explanation.";
static const char *SYS_COT =
    "You answer questions using the given context. Think step by step in a few short sentences, then finish "
    "with \"The answer is: \" followed by the short answer (a name, an entity, a date or a number, or yes or "
    "no).";
/* closed-book (no context paragraphs) */
static const char *SYS_DIRECT_CB =
    "You answer questions from what you know. Reply with the answer only: a short "
    "phrase (a name, an entity, a date or a number), or yes or no. No explanation.";
static const char *SYS_COT_CB =
    "You answer questions from what you know. Think step by step in a few short sentences, then finish with "
    "\"The answer is: \" followed by the short answer (a name, an entity, a date or a number, or yes or no).";
static const char *SYS_TOT = "You answer questions using the given context. Reason about which facts of the "
                             "context lead to the answer, one concise thought at a time.";

const char *pulse_qa_mode_name(pulse_qa_mode m) {
    switch (m) {
    case PULSE_QA_MODE_NONE:
        return "none";
    case PULSE_QA_MODE_DIRECT:
        return "direct";
    case PULSE_QA_MODE_COT:
        return "cot";
    case PULSE_QA_MODE_TOT:
        return "tot";
    }
    return "?";
}

int pulse_qa_mode_from_name(const char *name) {
    for (int m = PULSE_QA_MODE_NONE; name && m <= PULSE_QA_MODE_TOT; m++)
        if (!strcmp(name, pulse_qa_mode_name((pulse_qa_mode)m))) return m;
    return -1;
}

const char *qa_system(pulse_qa_mode mode, int context) {
    if (mode == PULSE_QA_MODE_TOT) return SYS_TOT;
    if (mode == PULSE_QA_MODE_COT) return context ? SYS_COT : SYS_COT_CB;
    return context ? SYS_DIRECT : SYS_DIRECT_CB;
}
const char *qa_primer(pulse_qa_mode mode) {
    return mode == PULSE_QA_MODE_COT   ? "Let me think:"
           : mode == PULSE_QA_MODE_TOT ? "The answer is:"
                                       : "Answer:";
}

/* The rationale search's texts for QA: reason over the context one thought at a time; the LIKELIHOOD scorer
 * asks the model whether the chain leads to the right answer and scores log p("Yes"). */
pulse_tot_prompts qa_tot_prompts(void) {
    pulse_tot_prompts p = {
        SYS_TOT,
        "Give your first thought: one concise sentence about a fact of the context that helps answer.",
        "Continue with your next thought: one concise sentence that builds on the previous ones towards the "
        "answer.",
        "Does this reasoning lead to the correct answer to the question? Answer Yes or No.",
        "\nDoes this reasoning lead to the correct answer (Yes or No)?"};
    return p;
}
const char *qa_tot_target(void) {
    return "Yes";
}

int pulse_qa_is_yes_no(const char *q) {
    static const char *const w[] = {"is",    "are", "was",  "were", "do",   "does",  "did",   "can",
                                    "could", "has", "have", "had",  "will", "would", "should"};
    while (q && (*q == ' ' || *q == '"')) q++;
    if (!q) return 0;
    size_t n = 0;
    while (isalpha((unsigned char)q[n])) n++;
    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        if (strlen(w[i]) == n && !strncasecmp(q, w[i], n)) return 1;
    return 0;
}

/* "Context:\n<title>: <sentence>\n...\n\nQuestion: <question>" (sentences: the facts, or every sentence of
 * every paragraph when facts is NULL) */
char *qa_user_text(const pulse_qa_question *q, const pulse_qa_fact *facts, int n_facts) {
    pulse_strbuf b = {0};
    if (q->n_para > 0) {
        pulse_strbuf_cat(&b, "Context:\n");
        for (int p = 0; p < q->n_para; p++) {
            const pulse_qa_paragraph *pa = &q->para[p];
            int any = 0;
            for (int s = 0; s < pa->n_sent; s++) {
                int keep = !facts;
                for (int f = 0; facts && f < n_facts && !keep; f++)
                    keep = facts[f].sent == s && !strcmp(facts[f].title, pa->title);
                if (!keep) continue;
                const char *t = pa->sent[s];
                while (*t == ' ') t++;
                if (!any) {
                    pulse_strbuf_cat(&b, pa->title);
                    pulse_strbuf_cat(&b, ":");
                    any = 1;
                }
                pulse_strbuf_cat(&b, " ");
                pulse_strbuf_cat(&b, t);
            }
            if (any) pulse_strbuf_cat(&b, "\n");
        }
        pulse_strbuf_cat(&b, "\n");
    }
    pulse_strbuf_cat(&b, "Question: ");
    pulse_strbuf_cat(&b, q->question);
    pulse_strbuf_put(&b, "", 0);
    if (b.oom) {
        pulse_strbuf_free(&b);
        return NULL;
    }
    return b.s;
}

/* case-insensitive last occurrence of needle in s */
static const char *const CUES[] = {"answer is", "answer:", "answer -"};

/* the cue occurrence that ends before `before` and starts last (NULL: none); *len its length */
static const char *cue_before(const char *s, const char *before, size_t *len) {
    const char *best = NULL;
    for (size_t i = 0; i < sizeof CUES / sizeof *CUES; i++) {
        size_t n = strlen(CUES[i]);
        for (const char *p = s; *p && p + n <= before; p++)
            if (!strncasecmp(p, CUES[i], n) && (!best || p > best)) best = p, *len = n;
    }
    return best;
}

int qa_has_answer_cue(const char *s) {
    size_t n;
    return cue_before(s, s + strlen(s), &n) != NULL;
}

static int strip_char(unsigned char c) {
    return c == ' ' || c == '\t' || c == ':' || c == '*' || c == '"' || c == '`' || c == '\'' || c == '_';
}

/* the answer at s: first line, cut at the first sentence end (". " then a capital, after a word of >= 4
 * characters, so "St. Louis" and "Flt. Lt." stay whole), markup and a trailing period removed; length in *n
 */
static const char *answer_at(const char *s, size_t *n) {
    while (*s && (strip_char((unsigned char)*s) || *s == '\n' || *s == '\r')) s++;
    size_t m = strcspn(s, "\r\n");
    for (size_t i = 1; i + 2 < m; i++) {
        if (s[i] != '.' || s[i + 1] != ' ' || !isupper((unsigned char)s[i + 2])) continue;
        size_t w = 0;
        while (w < i && isalnum((unsigned char)s[i - 1 - w])) w++;
        if (w >= 4) {
            m = i;
            break;
        }
    }
    for (;;) { /* trailing markup; a closing quote only when unmatched (keeps "Title" "Name" whole) */
        if (m == 0) break;
        const char c = s[m - 1];
        if (c == '"' || c == '\'') {
            size_t q = 0;
            for (size_t i = 0; i < m; i++) q += s[i] == c;
            if (q % 2 == 0) break;
        } else if (!strip_char((unsigned char)c) && c != '.' && c != ',')
            break;
        m--;
    }
    *n = m;
    return s;
}

pulse_status pulse_qa_extract_answer(const char *raw, int yes_no, char **out) {
    *out = NULL;
    const char *s = raw ? raw : "";
    size_t n = 0, cl = 0;
    const char *a = answer_at(s, &n);
    /* after the last cue that is followed by an answer; no cue: the text itself */
    for (const char *end = s + strlen(s), *c; (c = cue_before(s, end, &cl)) != NULL; end = c) {
        const char *t = answer_at(c + cl, &n);
        a = t;
        if (n > 0) break;
    }
    char *r = malloc(n + 1);
    if (!r) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory extracting an answer");
    memcpy(r, a, n);
    r[n] = 0;
    if (yes_no) {
        if (!strncasecmp(r, "yes", 3) && !isalpha((unsigned char)r[3]))
            strcpy(r, "yes");
        else if (!strncasecmp(r, "no", 2) && !isalpha((unsigned char)r[2]))
            strcpy(r, "no");
    }
    *out = r;
    return PULSE_OK;
}
