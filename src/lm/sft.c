/* lm/sft.c — owns reading fine-tuning data for LoRA training: JSON lines {"prompt": "...", "completion":
 * "..."} (optionally "chat": {"system", "user", "assistant"}: the prompt in the model's chat format)
 * tokenized with the model's tokenizer (the prompt with BOS as the tokenizer wants, the completion on its own
 * without BOS, then EOS when asked; special-token texts in the data stay plain text: the data is untrusted),
 * too-long examples cut to max_len by dropping the oldest prompt tokens (a leading BOS kept). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"

static pulse_status grow(int **ids, size_t *cap, size_t need) {
    if (need <= *cap) return PULSE_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    int *p = realloc(*ids, sizeof(int) * c);
    if (!p) return pulse_set_error(PULSE_ERR_NOMEM, "SFT data: out of memory");
    *ids = p;
    *cap = c;
    return PULSE_OK;
}

pulse_status pulse_lm_sft_read(const char *path, const pulse_lm *m, const pulse_tokenizer *tok, int add_eos,
                               int max_len, pulse_lm_sft *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    pulse_status st = pulse_read_file(path, &text, &len);
    if (st) return st;
    if (max_len <= 0 || max_len > m->hp.n_ctx_train) max_len = m->hp.n_ctx_train;
    if (max_len < 2) max_len = 2;
    int *ids = NULL;
    size_t cap = 0, used = 0;
    int n = 0, ncap = 0, n_cut = 0;
    size_t *off = NULL; /* (n) start of each example in ids (offsets: ids moves as it grows) */
    int *ntok = NULL, *npr = NULL;
    const int eos = m->hp.eos_id;
    size_t line_no = 0;
    for (char *p = text; p < text + len;) {
        char *e = memchr(p, '\n', (size_t)(text + len - p));
        if (!e) e = text + len;
        line_no++;
        char *q = p;
        p = e + 1;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == e) continue;
        cJSON *j = cJSON_ParseWithLength(q, (size_t)(e - q));
        const cJSON *jp = j ? cJSON_GetObjectItemCaseSensitive(j, "prompt") : NULL;
        const cJSON *jc = j ? cJSON_GetObjectItemCaseSensitive(j, "completion") : NULL;
        if (!cJSON_IsString(jp) || !cJSON_IsString(jc)) {
            cJSON_Delete(j);
            st = pulse_set_error(
                PULSE_ERR_PARSE,
                "%s:%zu: expected a JSON object with string fields \"prompt\" and \"completion\"", path,
                line_no);
            break;
        }
        /* optional "chat": {"system", "user", "assistant"}: the prompt in the model's chat format (the
         * answer begun with "assistant"), as pulse_lm_chat_prompt builds it; "prompt" is its raw text */
        const cJSON *jch = j ? cJSON_GetObjectItemCaseSensitive(j, "chat") : NULL;
        if (jch && !cJSON_IsNull(jch) && !cJSON_IsObject(jch)) {
            cJSON_Delete(j);
            st = pulse_set_error(
                PULSE_ERR_PARSE,
                "%s:%zu: expected \"chat\" to be an object {\"system\", \"user\", \"assistant\"}", path,
                line_no);
            break;
        }
        int *pi = NULL, *ci = NULL, np = 0, nc = 0;
        if (cJSON_IsObject(jch)) {
            const cJSON *js = cJSON_GetObjectItemCaseSensitive(jch, "system");
            const cJSON *ju = cJSON_GetObjectItemCaseSensitive(jch, "user");
            const cJSON *ja = cJSON_GetObjectItemCaseSensitive(jch, "assistant");
            if (!cJSON_IsString(ju) || (js && !cJSON_IsString(js)) || (ja && !cJSON_IsString(ja))) {
                cJSON_Delete(j);
                st = pulse_set_error(PULSE_ERR_PARSE,
                                     "%s:%zu: expected \"chat\" with a string \"user\" (and optional string "
                                     "\"system\" and \"assistant\")",
                                     path, line_no);
                break;
            }
            st = pulse_lm_chat_prompt(tok, 1, js ? js->valuestring : NULL, ju->valuestring,
                                      ja ? ja->valuestring : NULL, &pi, &np);
        } else
            st = pulse_lm_tokenize_alloc(tok, jp->valuestring, -1, 0, &pi, &np);
        if (!st) st = pulse_lm_tokenize_alloc(tok, jc->valuestring, 0, 0, &ci, &nc);
        cJSON_Delete(j);
        if (!st && nc == 0 && !(add_eos && eos >= 0))
            st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: empty completion (nothing to learn)", path,
                                 line_no);
        if (!st && np == 0) {
            const int bos = m->hp.bos_id;
            if (bos < 0)
                st = pulse_set_error(PULSE_ERR_PARSE, "%s:%zu: empty prompt and the model has no BOS", path,
                                     line_no);
            else {
                free(pi);
                pi = malloc(sizeof(int));
                if (pi) pi[0] = bos, np = 1;
            }
        }
        if (st || !pi) {
            free(pi), free(ci);
            if (!st) st = pulse_set_error(PULSE_ERR_NOMEM, "SFT data: out of memory");
            break;
        }
        const int ne = add_eos && eos >= 0 ? 1 : 0;
        int keep_c = nc + ne, keep_p = np;
        if (keep_c > max_len - 1) keep_c = max_len - 1; /* at least one prompt token */
        if (keep_p + keep_c > max_len) keep_p = max_len - keep_c;
        if (keep_p < np || keep_c < nc + ne) n_cut++;
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 1024;
            size_t *o2 = realloc(off, sizeof(size_t) * (size_t)ncap);
            if (o2) off = o2;
            int *t2 = realloc(ntok, sizeof(int) * (size_t)ncap);
            if (t2) ntok = t2;
            int *p2 = realloc(npr, sizeof(int) * (size_t)ncap);
            if (p2) npr = p2;
            if (!o2 || !t2 || !p2) st = pulse_set_error(PULSE_ERR_NOMEM, "SFT data: out of memory");
        }
        if (!st) st = grow(&ids, &cap, used + (size_t)(keep_p + keep_c));
        if (!st) {
            int *d = ids + used;
            /* the prompt's last keep_p tokens, a leading BOS kept in front */
            const int bos_lead = keep_p < np && np > 0 && pi[0] == m->hp.bos_id && keep_p >= 1;
            if (bos_lead) {
                d[0] = pi[0];
                memcpy(d + 1, pi + np - (keep_p - 1), sizeof(int) * (size_t)(keep_p - 1));
            } else
                memcpy(d, pi + np - keep_p, sizeof(int) * (size_t)keep_p);
            const int cc = keep_c - ne < nc ? keep_c - ne : nc;
            memcpy(d + keep_p, ci, sizeof(int) * (size_t)(cc > 0 ? cc : 0));
            if (ne && keep_c > cc) d[keep_p + cc] = eos;
            off[n] = used;
            ntok[n] = keep_p + keep_c;
            npr[n] = keep_p;
            used += (size_t)(keep_p + keep_c);
            n++;
        }
        free(pi), free(ci);
        if (st) break;
    }
    free(text);
    if (!st && n == 0) st = pulse_set_error(PULSE_ERR_PARSE, "%s: no examples", path);
    if (!st) {
        out->ex = malloc(sizeof *out->ex * (size_t)n);
        if (!out->ex) st = pulse_set_error(PULSE_ERR_NOMEM, "SFT data: out of memory");
    }
    if (st) {
        free(ids), free(off), free(ntok), free(npr);
        memset(out, 0, sizeof *out);
        return st;
    }
    for (int i = 0; i < n; i++) {
        out->ex[i].tokens = ids + off[i];
        out->ex[i].n_tokens = ntok[i];
        out->ex[i].n_prompt = npr[i];
    }
    out->ids = ids;
    out->n = n;
    out->n_cut = n_cut;
    out->n_tokens = (long)used;
    free(off), free(ntok), free(npr);
    return PULSE_OK;
}

void pulse_lm_sft_free(pulse_lm_sft *s) {
    if (!s) return;
    free(s->ex);
    free(s->ids);
    memset(s, 0, sizeof *s);
}
