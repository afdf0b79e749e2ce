/* qa/reader.c — owns the HotpotQA files: the reader of the official JSON list (distractor setting with
 * context and supporting facts; the simplified closed-book list), with errors naming the file, the question
 * and the field, and the writer of predictions in the official format. The parsed cJSON tree is kept: every
 * string of the set points into it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/qa.h"
#include "pulse/strbuf.h"

struct pulse_qa_set {
    cJSON *root;
    int n;
    pulse_qa_question *q;
    pulse_qa_paragraph *para; /* all questions' paragraphs */
    const char **sent;        /* all sentences */
    pulse_qa_fact *facts;     /* all supporting facts */
    char *ids;                /* generated ids ("0", "1", ...) for files without "_id" */
    int has_sp, has_ctx, has_ans;
};

pulse_qa_read_params pulse_qa_read_default_params(void) {
    pulse_qa_read_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static const char *kind_of(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown value";
}

/* "path: question i (_id X): field F: expected E, found K" */
static pulse_status bad(const char *path, int i, const char *id, const char *field, const char *expected,
                        const cJSON *found) {
    return pulse_set_error(PULSE_ERR_PARSE, "%s: question %d%s%.64s%s: field %s: expected %s, found %s", path,
                           i, id ? " (_id " : "", id ? id : "", id ? ")" : "", field, expected,
                           kind_of(found));
}

/* an optional string field: NULL when absent or null; error when present and not a string */
static pulse_status opt_str(const char *path, int i, const char *id, const cJSON *o, const char *field,
                            const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return PULSE_OK;
    if (!cJSON_IsString(v)) return bad(path, i, id, field, "a string", v);
    *out = v->valuestring;
    return PULSE_OK;
}

/* whole-number JSON value in [0, 1e6] */
static int as_index(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 1e6) || d != (double)(int)d) return 0;
    *out = (int)d;
    return 1;
}

void pulse_qa_free(pulse_qa_set *s) {
    if (!s) return;
    cJSON_Delete(s->root);
    free(s->q);
    free(s->para);
    free(s->sent);
    free(s->facts);
    free(s->ids);
    free(s);
}

/* the counts of one question's context and facts, checking their shapes */
static pulse_status count_q(const char *path, int i, const char *id, const cJSON *o, int *n_para, int *n_sent,
                            int *n_sp) {
    char f[96];
    *n_para = *n_sent = 0;
    *n_sp = -1;
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(o, "context");
    if (ctx && !cJSON_IsNull(ctx)) {
        if (!cJSON_IsArray(ctx))
            return bad(path, i, id, "context", "an array of [title, [sentence, ...]]", ctx);
        int pi = 0;
        for (const cJSON *p = ctx->child; p; p = p->next, pi++) {
            snprintf(f, sizeof f, "context[%d]", pi);
            if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2)
                return bad(path, i, id, f, "a pair [title, [sentence, ...]]", p);
            if (!cJSON_IsString(p->child)) {
                snprintf(f, sizeof f, "context[%d][0]", pi);
                return bad(path, i, id, f, "a title string", p->child);
            }
            const cJSON *ss = p->child->next;
            snprintf(f, sizeof f, "context[%d][1]", pi);
            if (!cJSON_IsArray(ss)) return bad(path, i, id, f, "an array of sentence strings", ss);
            int si = 0;
            for (const cJSON *t = ss->child; t; t = t->next, si++)
                if (!cJSON_IsString(t)) {
                    snprintf(f, sizeof f, "context[%d][1][%d]", pi, si);
                    return bad(path, i, id, f, "a sentence string", t);
                }
            (*n_para)++;
            *n_sent += si;
        }
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "supporting_facts");
    if (sp && !cJSON_IsNull(sp)) {
        if (!cJSON_IsArray(sp))
            return bad(path, i, id, "supporting_facts", "an array of [title, sentence index]", sp);
        int k = 0, idx;
        for (const cJSON *p = sp->child; p; p = p->next, k++) {
            snprintf(f, sizeof f, "supporting_facts[%d]", k);
            if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || !cJSON_IsString(p->child) ||
                !as_index(p->child->next, &idx))
                return bad(path, i, id, f, "a pair [title string, sentence index >= 0]", p);
        }
        *n_sp = k;
    }
    return PULSE_OK;
}

pulse_status pulse_qa_load(const char *path, const pulse_qa_read_params *pp, pulse_qa_set **out) {
    *out = NULL;
    pulse_qa_read_params p = pp ? *pp : pulse_qa_read_default_params();
    char *txt = NULL;
    size_t len = 0;
    pulse_status st = pulse_read_file(path, &txt, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(txt, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= txt && at <= txt + len ? (size_t)(at - txt) : 0;
        int line = 1;
        for (size_t i = 0; i < off; i++) line += txt[i] == '\n';
        free(txt);
        return pulse_set_error(PULSE_ERR_PARSE, "%s:%d: not valid JSON (near byte %zu)", path, line, off);
    }
    free(txt);
    if (!cJSON_IsArray(root)) {
        pulse_status e = pulse_set_error(PULSE_ERR_PARSE,
                                         "%s: expected a JSON array of question objects (HotpotQA format), "
                                         "found %s",
                                         path, kind_of(root));
        cJSON_Delete(root);
        return e;
    }
    pulse_qa_set *s = calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(root);
        return pulse_set_error(PULSE_ERR_NOMEM, "out of memory reading %s", path);
    }
    s->root = root;
    int n = cJSON_GetArraySize(root);
    if (p.max_questions > 0 && n > p.max_questions) n = p.max_questions;
    /* pass 1: shapes and counts */
    size_t np = 0, ns = 0, nf = 0;
    int i = 0;
    for (const cJSON *o = root->child; o && i < n; o = o->next, i++) {
        if (!cJSON_IsObject(o)) {
            st = pulse_set_error(PULSE_ERR_PARSE, "%s: question %d: expected an object, found %s", path, i,
                                 kind_of(o));
            goto fail;
        }
        const char *id = NULL;
        if ((st = opt_str(path, i, NULL, o, "_id", &id))) goto fail;
        const cJSON *qv = cJSON_GetObjectItemCaseSensitive(o, "question");
        if (!cJSON_IsString(qv)) {
            st = bad(path, i, id, "question", "a string", qv);
            goto fail;
        }
        const char *tmp;
        if ((st = opt_str(path, i, id, o, "answer", &tmp)) || (st = opt_str(path, i, id, o, "type", &tmp)) ||
            (st = opt_str(path, i, id, o, "level", &tmp)))
            goto fail;
        int a, b, c;
        if ((st = count_q(path, i, id, o, &a, &b, &c))) goto fail;
        np += (size_t)a;
        ns += (size_t)b;
        nf += c > 0 ? (size_t)c : 0;
    }
    s->n = n;
    s->q = calloc((size_t)n + 1, sizeof *s->q);
    s->para = calloc(np + 1, sizeof *s->para);
    s->sent = calloc(ns + 1, sizeof *s->sent);
    s->facts = calloc(nf + 1, sizeof *s->facts);
    s->ids = calloc((size_t)n + 1, 12);
    if (!s->q || !s->para || !s->sent || !s->facts || !s->ids) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory reading %s", path);
        goto fail;
    }
    /* pass 2: fill */
    s->has_sp = s->has_ctx = s->has_ans = n > 0;
    size_t ip = 0, is = 0, jf = 0;
    i = 0;
    for (const cJSON *o = root->child; o && i < n; o = o->next, i++) {
        pulse_qa_question *q = &s->q[i];
        opt_str(path, i, NULL, o, "_id", &q->id);
        if (!q->id) {
            snprintf(s->ids + (size_t)i * 12, 12, "%d", i);
            q->id = s->ids + (size_t)i * 12;
        }
        q->question = cJSON_GetObjectItemCaseSensitive(o, "question")->valuestring;
        opt_str(path, i, NULL, o, "answer", &q->answer);
        opt_str(path, i, NULL, o, "type", &q->type);
        opt_str(path, i, NULL, o, "level", &q->level);
        q->para = s->para + ip;
        q->n_sp = -1;
        const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(o, "context");
        if (cJSON_IsArray(ctx))
            for (const cJSON *pc = ctx->child; pc; pc = pc->next) {
                pulse_qa_paragraph *pa = &s->para[ip++];
                pa->title = pc->child->valuestring;
                pa->sent = s->sent + is;
                for (const cJSON *t = pc->child->next->child; t; t = t->next) {
                    s->sent[is++] = t->valuestring;
                    pa->n_sent++;
                }
                q->n_para++;
                q->n_sent += pa->n_sent;
            }
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "supporting_facts");
        if (cJSON_IsArray(sp)) {
            q->sp = s->facts + jf;
            q->n_sp = 0;
            for (const cJSON *pc = sp->child; pc; pc = pc->next) {
                pulse_qa_fact *f = &s->facts[jf++];
                f->title = pc->child->valuestring;
                as_index(pc->child->next, &f->sent);
                q->n_sp++;
            }
        }
        s->has_sp &= q->n_sp >= 0;
        s->has_ctx &= q->n_para > 0;
        s->has_ans &= q->answer != NULL;
    }
    *out = s;
    return PULSE_OK;
fail:
    pulse_qa_free(s);
    return st;
}

int pulse_qa_count(const pulse_qa_set *s) {
    return s ? s->n : 0;
}
const pulse_qa_question *pulse_qa_get(const pulse_qa_set *s, int i) {
    return s && i >= 0 && i < s->n ? &s->q[i] : NULL;
}
int pulse_qa_has_sp(const pulse_qa_set *s) {
    return s && s->has_sp;
}
int pulse_qa_has_context(const pulse_qa_set *s) {
    return s && s->has_ctx;
}
int pulse_qa_has_answers(const pulse_qa_set *s) {
    return s && s->has_ans;
}

void pulse_qa_sent_at(const pulse_qa_question *q, int j, int *para, int *sent) {
    *para = *sent = -1;
    for (int p = 0; p < q->n_para; p++) {
        if (j < q->para[p].n_sent) {
            *para = p;
            *sent = j;
            return;
        }
        j -= q->para[p].n_sent;
    }
}

pulse_status pulse_qa_pred_write(const char *path, const pulse_qa_set *s, const pulse_qa_pred *preds, int n) {
    if (n > pulse_qa_count(s))
        return pulse_set_error(PULSE_ERR_ARG, "predictions for %d questions, the set has %d", n,
                               pulse_qa_count(s));
    cJSON *root = cJSON_CreateObject();
    cJSON *ans = cJSON_AddObjectToObject(root, "answer");
    cJSON *sp = cJSON_AddObjectToObject(root, "sp");
    int oom = !root || !ans || !sp;
    for (int i = 0; i < n && !oom; i++) {
        const char *id = s->q[i].id;
        if (preds[i].answer) oom |= !cJSON_AddStringToObject(ans, id, preds[i].answer);
        if (preds[i].n_sp >= 0) {
            cJSON *a = cJSON_AddArrayToObject(sp, id);
            oom |= !a;
            for (int k = 0; a && k < preds[i].n_sp; k++) {
                cJSON *pair = cJSON_CreateArray();
                oom |= !pair;
                if (!pair) break;
                cJSON_AddItemToArray(pair, cJSON_CreateString(preds[i].sp[k].title));
                cJSON_AddItemToArray(pair, cJSON_CreateNumber(preds[i].sp[k].sent));
                cJSON_AddItemToArray(a, pair);
            }
        }
    }
    char *txt = oom ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!txt) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory writing %s", path);
    pulse_status st = pulse_write_file_atomic(path, txt, strlen(txt));
    free(txt);
    return st;
}
