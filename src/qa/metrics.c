/* qa/metrics.c — owns the official HotpotQA metrics (hotpot_evaluate_v1.py's definitions): the SQuAD answer
 * normalisation on Unicode text (Python's str.lower, string.punctuation, re's \b(a|an|the)\b, str.split),
 * answer EM and token F1 with the yes / no / noanswer rule, supporting-fact EM / F1 over (title, sentence)
 * sets, joint EM / F1 from the products, and the scoring of a predictions file. scripts/hotpot_eval.py
 * computes the same numbers; tests/test_qa_metrics.c checks the two agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "encoder/unicode.h" /* the lower-case mapping (the WordPiece tokenizer's table) */
#include "lm/unicode.h"      /* UTF-8 and the general categories (the LM tokenizers' table) */
#include "pulse/qa.h"
#include "pulse/strbuf.h"

/* Python's str.isspace: White_Space plus the ASCII separators U+001C..U+001F */
static int is_space(uint32_t c) {
    return (c >= 0x1C && c <= 0x1F) || (pulse_ucat(c) & PULSE_UCAT_WS);
}
/* re's \w on str: str.isalnum() or '_' (letters and numbers) */
static int is_word(uint32_t c) {
    unsigned k = pulse_ucat(c) & PULSE_UCAT_MASK;
    return c == '_' || k == PULSE_UCAT_L || k == PULSE_UCAT_N;
}
/* string.punctuation */
static int is_punct(uint32_t c) {
    return c > 0 && c < 0x80 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", (int)c);
}

pulse_status pulse_qa_normalize(const char *s, char **out) {
    *out = NULL;
    const size_t n = strlen(s ? s : "");
    /* lower-case, punctuation out: code points (lower() may give up to 3 per input) */
    uint32_t *cp = malloc(sizeof(uint32_t) * (3 * n + 1));
    if (!cp) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory normalising an answer");
    size_t m = 0, off = 0;
    while (off < n) {
        uint32_t c = pulse_utf8_decode(s, n, &off), lo[4];
        int k = enc_uni_lower(c, lo);
        for (int j = 0; j < k && j < 3; j++)
            if (!is_punct(lo[j])) cp[m++] = lo[j];
    }
    /* articles: a maximal run of word characters that is "a", "an" or "the" becomes a space */
    for (size_t i = 0; i < m;) {
        if (!is_word(cp[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < m && is_word(cp[j])) j++;
        const size_t L = j - i;
        int art = (L == 1 && cp[i] == 'a') || (L == 2 && cp[i] == 'a' && cp[i + 1] == 'n') ||
                  (L == 3 && cp[i] == 't' && cp[i + 1] == 'h' && cp[i + 2] == 'e');
        if (art) {
            cp[i] = ' ';
            for (size_t t = i + 1; t < j; t++) cp[t] = 0x1F; /* a separator, collapsed below */
        }
        i = j;
    }
    /* whitespace collapsed: the words joined by one space */
    pulse_strbuf b = {0};
    int in_word = 0, any = 0;
    for (size_t i = 0; i < m; i++) {
        if (is_space(cp[i])) {
            in_word = 0;
            continue;
        }
        if (!in_word && any) pulse_strbuf_put(&b, " ", 1);
        char u[4];
        pulse_strbuf_put(&b, u, (size_t)pulse_utf8_encode(cp[i], u));
        in_word = any = 1;
    }
    free(cp);
    if (!b.s) pulse_strbuf_put(&b, "", 0);
    if (b.oom || !b.s) {
        pulse_strbuf_free(&b);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory normalising an answer");
    }
    *out = b.s;
    return PULSE_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the words of a normalised string (split in place on ' '); *n words, sorted */
static char **words(char *s, int *n) {
    int c = 0;
    for (char *p = s; *p; p++) c += *p == ' ';
    char **w = malloc(sizeof(char *) * (size_t)(c + 2));
    *n = 0;
    if (!w) return NULL;
    for (char *p = s; *p;) {
        w[(*n)++] = p;
        char *e = strchr(p, ' ');
        if (!e) break;
        *e = 0;
        p = e + 1;
    }
    qsort(w, (size_t)*n, sizeof *w, cmp_str);
    return w;
}

static int special(const char *s) {
    return !strcmp(s, "yes") || !strcmp(s, "no") || !strcmp(s, "noanswer");
}

pulse_status pulse_qa_answer_score(const char *pred, const char *gold, double *em, double *f1, double *prec,
                                   double *recall) {
    char *np = NULL, *ng = NULL;
    pulse_status st = pulse_qa_normalize(pred, &np);
    if (!st) st = pulse_qa_normalize(gold, &ng);
    if (st) {
        free(np);
        return st;
    }
    const int same = !strcmp(np, ng);
    double F = 0, P = 0, R = 0;
    if (!((special(np) || special(ng)) && !same)) {
        int a = 0, b = 0;
        char **wa = words(np, &a), **wb = words(ng, &b);
        if ((a && !wa) || (b && !wb)) {
            free(wa), free(wb), free(np), free(ng);
            return pulse_set_error(PULSE_ERR_NOMEM, "out of memory scoring an answer");
        }
        /* the multiset intersection of two sorted word lists */
        int common = 0;
        for (int i = 0, j = 0; i < a && j < b;) {
            int c = strcmp(wa[i], wb[j]);
            if (c == 0)
                common++, i++, j++;
            else if (c < 0)
                i++;
            else
                j++;
        }
        if (common > 0) {
            P = (double)common / a;
            R = (double)common / b;
            F = 2 * P * R / (P + R);
        }
        free(wa);
        free(wb);
    }
    if (em) *em = same;
    if (f1) *f1 = F;
    if (prec) *prec = P;
    if (recall) *recall = R;
    free(np);
    free(ng);
    return PULSE_OK;
}

static int fact_eq(const pulse_qa_fact *a, const pulse_qa_fact *b) {
    return a->sent == b->sent && !strcmp(a->title, b->title);
}
/* 1 when x occurs in f[0..n) */
static int fact_in(const pulse_qa_fact *x, const pulse_qa_fact *f, int n) {
    for (int i = 0; i < n; i++)
        if (fact_eq(x, &f[i])) return 1;
    return 0;
}

void pulse_qa_sp_score(const pulse_qa_fact *pred, int n_pred, const pulse_qa_fact *gold, int n_gold,
                       double *em, double *f1, double *prec, double *recall) {
    int tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < n_pred; i++) {
        if (fact_in(&pred[i], pred, i)) continue; /* a set: the first of equal pairs counts */
        if (fact_in(&pred[i], gold, n_gold))
            tp++;
        else
            fp++;
    }
    for (int i = 0; i < n_gold; i++) {
        if (fact_in(&gold[i], gold, i)) continue;
        if (!fact_in(&gold[i], pred, n_pred)) fn++;
    }
    double P = tp + fp > 0 ? (double)tp / (tp + fp) : 0.0;
    double R = tp + fn > 0 ? (double)tp / (tp + fn) : 0.0;
    double F = P + R > 0 ? 2 * P * R / (P + R) : 0.0;
    if (em) *em = fp + fn == 0 ? 1.0 : 0.0;
    if (f1) *f1 = F;
    if (prec) *prec = P;
    if (recall) *recall = R;
}

pulse_status pulse_qa_metrics_add(pulse_qa_metrics *m, const pulse_qa_question *gold,
                                  const pulse_qa_pred *pred) {
    if (!gold->answer)
        return pulse_set_error(PULSE_ERR_ARG, "question %s has no gold answer to score against", gold->id);
    m->n++;
    m->has_sp = gold->n_sp >= 0 && (m->n == 1 || m->has_sp);
    double em = 0, f1 = 0, p = 0, r = 0, sem = 0, sf1 = 0, sp = 0, sr = 0;
    int joint = 1;
    if (pred && pred->answer) {
        pulse_status st = pulse_qa_answer_score(pred->answer, gold->answer, &em, &f1, &p, &r);
        if (st) return st;
        m->em += em, m->f1 += f1, m->prec += p, m->recall += r;
    } else {
        m->missing_answer++;
        joint = 0;
    }
    if (gold->n_sp >= 0) {
        if (pred && pred->n_sp >= 0) {
            pulse_qa_sp_score(pred->sp, pred->n_sp, gold->sp, gold->n_sp, &sem, &sf1, &sp, &sr);
            m->sp_em += sem, m->sp_f1 += sf1, m->sp_prec += sp, m->sp_recall += sr;
        } else {
            m->missing_sp++;
            joint = 0;
        }
    } else
        joint = 0;
    if (joint) {
        double jp = p * sp, jr = r * sr;
        m->joint_prec += jp;
        m->joint_recall += jr;
        m->joint_f1 += jp + jr > 0 ? 2 * jp * jr / (jp + jr) : 0.0;
        m->joint_em += em * sem;
    }
    return PULSE_OK;
}

void pulse_qa_metrics_finish(pulse_qa_metrics *m) {
    if (m->n <= 0) return;
    double *v[] = {&m->em,      &m->f1,        &m->prec,     &m->recall,   &m->sp_em,      &m->sp_f1,
                   &m->sp_prec, &m->sp_recall, &m->joint_em, &m->joint_f1, &m->joint_prec, &m->joint_recall};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) *v[i] /= m->n;
}

pulse_status pulse_qa_evaluate_file(const pulse_qa_set *s, int n, const char *pred_path,
                                    pulse_qa_metrics *out) {
    memset(out, 0, sizeof *out);
    if (n <= 0 || n > pulse_qa_count(s)) n = pulse_qa_count(s);
    char *txt = NULL;
    size_t len = 0;
    pulse_status st = pulse_read_file(pred_path, &txt, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(txt, len);
    free(txt);
    const cJSON *ans = root ? cJSON_GetObjectItemCaseSensitive(root, "answer") : NULL;
    const cJSON *sp = root ? cJSON_GetObjectItemCaseSensitive(root, "sp") : NULL;
    if (!cJSON_IsObject(root) || (ans && !cJSON_IsObject(ans)) || (sp && !cJSON_IsObject(sp))) {
        cJSON_Delete(root);
        return pulse_set_error(PULSE_ERR_PARSE,
                               "%s: expected a predictions object {\"answer\": {id: text}, \"sp\": {id: "
                               "[[title, sentence index], ...]}}",
                               pred_path);
    }
    pulse_qa_fact *facts = NULL;
    for (int i = 0; i < n && !st; i++) {
        const pulse_qa_question *q = pulse_qa_get(s, i);
        pulse_qa_pred pr = {NULL, -1, NULL};
        const cJSON *a = ans ? cJSON_GetObjectItemCaseSensitive(ans, q->id) : NULL;
        if (a && !cJSON_IsString(a)) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s: answer[\"%.64s\"]: expected a string", pred_path,
                                 q->id);
            break;
        }
        if (a) pr.answer = a->valuestring;
        const cJSON *f = sp ? cJSON_GetObjectItemCaseSensitive(sp, q->id) : NULL;
        if (f) {
            if (!cJSON_IsArray(f)) {
                st =
                    pulse_set_error(PULSE_ERR_PARSE, "%s: sp[\"%.64s\"]: expected an array of [title, index]",
                                    pred_path, q->id);
                break;
            }
            int k = cJSON_GetArraySize(f);
            free(facts);
            facts = calloc((size_t)k + 1, sizeof *facts);
            if (!facts) {
                st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory reading %s", pred_path);
                break;
            }
            int j = 0;
            for (const cJSON *e = f->child; e; e = e->next, j++) {
                if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) ||
                    !cJSON_IsNumber(e->child->next)) {
                    st = pulse_set_error(PULSE_ERR_PARSE,
                                         "%s: sp[\"%.64s\"][%d]: expected [title, sentence index]", pred_path,
                                         q->id, j);
                    break;
                }
                facts[j].title = e->child->valuestring;
                double d = e->child->next->valuedouble;
                facts[j].sent = d >= -1e9 && d <= 1e9 ? (int)d : -1;
            }
            pr.n_sp = k;
            pr.sp = facts;
        }
        if (!st) st = pulse_qa_metrics_add(out, q, &pr);
    }
    free(facts);
    cJSON_Delete(root);
    if (!st) pulse_qa_metrics_finish(out);
    return st;
}
