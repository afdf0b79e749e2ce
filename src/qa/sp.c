/* qa/sp.c — owns supporting-fact selection: a score for every context sentence of a question, from Okapi
 * BM25 over the question's own sentences (k1, b; IDF ln(1 + (N - df + 0.5) / (df + 0.5)) over those N
 * sentences) or from the cosine of B(question) and R(sentence) in a Thought Space (an untrained encoder
 * loaded as one: B = R), all sentences of all questions encoded in batches; the top k as facts; k chosen on
 * a held-in range of questions by mean SP F1. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/qa.h"
#include "pulse/strbuf.h"

pulse_qa_sp_params pulse_qa_sp_default_params(void) {
    pulse_qa_sp_params p;
    memset(&p, 0, sizeof p);
    p.method = PULSE_QA_SP_BM25;
    p.k1 = 1.2f;
    p.b = 0.75f;
    p.with_title = 1;
    return p;
}

static int tok_byte(unsigned char c) {
    return isalnum(c) || c >= 0x80;
}

pulse_status pulse_qa_bm25_tokens(const char *text, char ***toks, int *n) {
    *toks = NULL;
    *n = 0;
    int cap = 0;
    for (const char *p = text ? text : ""; *p;) {
        if (!tok_byte((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *e = p;
        while (*e && tok_byte((unsigned char)*e)) e++;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **q = realloc(*toks, sizeof(char *) * (size_t)cap);
            if (!q) goto oom;
            *toks = q;
        }
        char *t = malloc((size_t)(e - p) + 1);
        if (!t) goto oom;
        for (const char *c = p; c < e; c++) t[c - p] = (char)((unsigned char)*c < 0x80 ? tolower(*c) : *c);
        t[e - p] = 0;
        (*toks)[(*n)++] = t;
        p = e;
    }
    return PULSE_OK;
oom:
    for (int i = 0; i < *n; i++) free((*toks)[i]);
    free(*toks);
    *toks = NULL;
    *n = 0;
    return pulse_set_error(PULSE_ERR_NOMEM, "out of memory tokenizing for BM25");
}

static void toks_free(char **t, int n) {
    for (int i = 0; i < n; i++) free(t[i]);
    free(t);
}

/* "title: sentence" (the sentence's leading spaces dropped) or the sentence alone; malloc'd */
static char *sent_text(const pulse_qa_question *q, int j, int with_title) {
    int pi, si;
    pulse_qa_sent_at(q, j, &pi, &si);
    const char *s = q->para[pi].sent[si];
    while (*s == ' ') s++;
    pulse_strbuf b = {0};
    if (with_title) {
        pulse_strbuf_cat(&b, q->para[pi].title);
        pulse_strbuf_cat(&b, ": ");
    }
    pulse_strbuf_cat(&b, s);
    pulse_strbuf_put(&b, "", 0);
    if (b.oom) {
        pulse_strbuf_free(&b);
        return NULL;
    }
    return b.s;
}

static int count_tok(char *const *t, int n, const char *w) {
    int c = 0;
    for (int i = 0; i < n; i++) c += !strcmp(t[i], w);
    return c;
}

static pulse_status bm25_question(const pulse_qa_question *q, const pulse_qa_sp_params *p, float *scores) {
    const int N = q->n_sent;
    char ***dt = calloc((size_t)N + 1, sizeof *dt);
    int *dn = calloc((size_t)N + 1, sizeof *dn);
    char **qt = NULL;
    int nq = 0;
    pulse_status st = !dt || !dn ? pulse_set_error(PULSE_ERR_NOMEM, "out of memory in BM25") : PULSE_OK;
    double avg = 0;
    for (int j = 0; j < N && !st; j++) {
        char *t = sent_text(q, j, p->with_title);
        st = t ? pulse_qa_bm25_tokens(t, &dt[j], &dn[j]) : pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        free(t);
        avg += dn[j];
    }
    avg = N > 0 ? avg / N : 1;
    if (avg <= 0) avg = 1;
    if (!st) st = pulse_qa_bm25_tokens(q->question, &qt, &nq);
    for (int j = 0; j < N; j++) scores[j] = 0;
    for (int a = 0; a < nq && !st; a++) {
        int dup = 0; /* each distinct query term once */
        for (int b = 0; b < a && !dup; b++) dup = !strcmp(qt[a], qt[b]);
        if (dup) continue;
        int df = 0;
        for (int j = 0; j < N; j++) df += count_tok(dt[j], dn[j], qt[a]) > 0;
        if (df == 0) continue;
        const double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        for (int j = 0; j < N; j++) {
            const int tf = count_tok(dt[j], dn[j], qt[a]);
            if (tf)
                scores[j] += (float)(idf * tf * (p->k1 + 1) / (tf + p->k1 * (1 - p->b + p->b * dn[j] / avg)));
        }
    }
    for (int j = 0; dt && j < N; j++) toks_free(dt[j], dn[j]);
    free(dt);
    free(dn);
    toks_free(qt, nq);
    return st;
}

void pulse_qa_scores_free(float **scores, int n) {
    for (int i = 0; scores && i < n; i++) free(scores[i]);
    free(scores);
}

pulse_status pulse_qa_sp_scores(const pulse_qa_set *s, int n, const uint8_t *need,
                                const pulse_qa_sp_params *pp, pulse_thought_space *space, float ***out) {
    *out = NULL;
    pulse_qa_sp_params p = pp ? *pp : pulse_qa_sp_default_params();
    if (n <= 0 || n > pulse_qa_count(s)) n = pulse_qa_count(s);
    if (p.method == PULSE_QA_SP_SPACE && !space)
        return pulse_set_error(PULSE_ERR_ARG,
                               "supporting facts by cosine need a Thought Space or an encoder");
    float **sc = calloc((size_t)n + 1, sizeof *sc);
    if (!sc) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    pulse_status st = PULSE_OK;
    size_t total = 0;
    int nq = 0; /* questions scored */
    for (int i = 0; i < n && !st; i++) {
        if (need && !need[i]) continue;
        const pulse_qa_question *q = pulse_qa_get(s, i);
        sc[i] = calloc((size_t)q->n_sent + 1, sizeof(float));
        if (!sc[i]) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        total += (size_t)q->n_sent;
        nq++;
    }
    if (!st && p.method == PULSE_QA_SP_BM25) {
        for (int i = 0; i < n && !st; i++)
            if (sc[i]) st = bm25_question(pulse_qa_get(s, i), &p, sc[i]);
    } else if (!st) {
        const int D = pulse_thought_space_dim(space);
        const char **qtext = calloc((size_t)nq + 1, sizeof *qtext);
        char **stext = calloc(total + 1, sizeof *stext);
        float *qv = malloc(sizeof(float) * (size_t)D * ((size_t)nq + 1));
        float *sv = malloc(sizeof(float) * (size_t)D * (total + 1));
        if (!qtext || !stext || !qv || !sv) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        size_t k = 0;
        int a = 0;
        for (int i = 0; i < n && !st; i++) {
            if (!sc[i]) continue;
            const pulse_qa_question *q = pulse_qa_get(s, i);
            qtext[a++] = q->question;
            for (int j = 0; j < q->n_sent && !st; j++, k++)
                if (!(stext[k] = sent_text(q, j, p.with_title)))
                    st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        }
        if (!st && nq > 0) st = pulse_thought_embed_behaviour(space, qtext, nq, qv);
        if (!st && total > 0)
            st = pulse_thought_embed_rationale(space, (const char *const *)stext, (int)total, sv);
        k = 0;
        a = 0;
        for (int i = 0; i < n && !st; i++) {
            if (!sc[i]) continue;
            const pulse_qa_question *q = pulse_qa_get(s, i);
            for (int j = 0; j < q->n_sent; j++, k++) {
                double d = 0;
                for (int c = 0; c < D; c++) d += (double)qv[(size_t)a * D + c] * sv[k * D + c];
                sc[i][j] = (float)d;
            }
            a++;
        }
        for (size_t t = 0; stext && t < total; t++) free(stext[t]);
        free(stext);
        free(qtext);
        free(qv);
        free(sv);
    }
    if (st) {
        pulse_qa_scores_free(sc, n);
        return st;
    }
    *out = sc;
    return PULSE_OK;
}

int pulse_qa_sp_topk(const pulse_qa_question *q, const float *scores, int k, pulse_qa_fact *facts) {
    const int N = q->n_sent;
    if (k > N) k = N;
    if (k <= 0) return 0;
    int *chosen = calloc((size_t)N, sizeof(int));
    if (!chosen) return 0;
    for (int r = 0; r < k; r++) { /* selection: the best unchosen, the first in file order on ties */
        int best = -1;
        for (int j = 0; j < N; j++)
            if (!chosen[j] && (best < 0 || scores[j] > scores[best])) best = j;
        chosen[best] = 1;
    }
    int m = 0;
    for (int j = 0; j < N; j++)
        if (chosen[j]) {
            int pi, si;
            pulse_qa_sent_at(q, j, &pi, &si);
            facts[m].title = q->para[pi].title;
            facts[m].sent = si;
            m++;
        }
    free(chosen);
    return m;
}

int pulse_qa_sp_choose_k(const pulse_qa_set *s, float *const *scores, int lo, int hi, int k_max,
                         double *best_f1) {
    int best_k = 1;
    double best = -1;
    pulse_qa_fact *f = calloc((size_t)(k_max > 0 ? k_max : 1), sizeof *f);
    for (int k = 1; f && k <= k_max; k++) {
        double sum = 0;
        int n = 0;
        for (int i = lo; i < hi; i++) {
            const pulse_qa_question *q = pulse_qa_get(s, i);
            if (!q || q->n_sp < 0) continue;
            int m = pulse_qa_sp_topk(q, scores[i], k, f);
            double f1;
            pulse_qa_sp_score(f, m, q->sp, q->n_sp, NULL, &f1, NULL, NULL);
            sum += f1;
            n++;
        }
        double mean = n ? sum / n : 0;
        if (mean > best + 1e-12) {
            best = mean;
            best_k = k;
        }
    }
    free(f);
    if (best_f1) *best_f1 = best < 0 ? 0 : best;
    return best_k;
}
