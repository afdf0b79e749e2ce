/* lm/text.c — owns the text-level entry points of the decoder runtime: tokenizing prompts (raw, or as a chat
 * turn in the model's chat format), generating and detokenizing continuations with stop strings, and
 * scoring (prompt, continuation) text pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"

pulse_status pulse_lm_tokenize_alloc(const pulse_tokenizer *tok, const char *text, int add_bos,
                                     int parse_special, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (add_bos < 0) add_bos = pulse_tokenizer_add_bos(tok);
    size_t len = strlen(text);
    int cap = (int)(len < 1000000 ? len : 1000000) + 8, got = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int *buf = pulse_malloc(sizeof(int) * (size_t)cap);
        if (!buf) return PULSE_ERR_NOMEM;
        pulse_status st = pulse_tokenize(tok, text, len, add_bos, parse_special, buf, cap, &got);
        if (st == PULSE_OK) {
            *ids = buf;
            *n = got;
            return PULSE_OK;
        }
        free(buf);
        if (st != PULSE_ERR_RANGE) return st;
        cap = got + 8;
    }
    return pulse_set_error(PULSE_ERR_RANGE, "tokenize: the token count changed between calls");
}

pulse_status pulse_lm_chat_prompt(const pulse_tokenizer *tok, int chat, const char *system, const char *user,
                                  const char *assistant_prefix, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    const char *sys = system ? system : "", *u = user ? user : "",
               *a = assistant_prefix ? assistant_prefix : "";
    pulse_status st;
    if (chat && pulse_chat_detect(tok) != PULSE_CHAT_RAW) {
        pulse_chat_msg msgs[2];
        int nm = 0;
        if (*sys) msgs[nm++] = (pulse_chat_msg){"system", sys};
        msgs[nm++] = (pulse_chat_msg){"user", u};
        st = pulse_chat_tokenize(tok, PULSE_CHAT_AUTO, msgs, nm, 1, -1, ids, n);
        if (st || !*a) return st;
        int *more = NULL, k = 0;
        if ((st = pulse_lm_tokenize_alloc(tok, a, 0, 0, &more, &k))) {
            free(*ids), *ids = NULL, *n = 0;
            return st;
        }
        int *grown = pulse_realloc(*ids, sizeof(int) * (size_t)(*n + k + 1));
        if (!grown) {
            free(more), free(*ids), *ids = NULL, *n = 0;
            return PULSE_ERR_NOMEM;
        }
        memcpy(grown + *n, more, sizeof(int) * (size_t)k);
        free(more);
        *ids = grown;
        *n += k;
        return PULSE_OK;
    }
    /* raw: system "\n\n" user "\n" prefix, BOS as the tokenizer wants */
    size_t len = strlen(sys) + strlen(u) + strlen(a) + 4;
    char *s = pulse_malloc(len);
    if (!s) return PULSE_ERR_NOMEM;
    snprintf(s, len, "%s%s%s%s%s", sys, *sys ? "\n\n" : "", u, *a ? "\n" : "", a);
    st = pulse_lm_tokenize_alloc(tok, s, -1, 0, ids, n);
    free(s);
    return st;
}

/* Make prompt i (*n ids) fit the model's trained context next to `reserve` more tokens (new tokens or the
 * continuation), as c's truncate param says: refuse, or drop the oldest tokens (keeping a leading BOS) or the
 * last ones. Dropped tokens are counted in c->n_truncated. */
static pulse_status fit_prompt(pulse_lm_ctx *c, const pulse_tokenizer *tok, const char *what, int i, int *ids,
                               int *n, int reserve, const char *reserve_what) {
    const int T = c->m->hp.n_ctx_train;
    if (reserve >= T)
        return pulse_set_error(
            PULSE_ERR_RANGE,
            "%s: %d %s leave no room for prompt %d in the model's trained context of %d tokens "
            "(context_length)",
            what, reserve, reserve_what, i, T);
    const int budget = T - reserve;
    if (*n <= budget) return PULSE_OK;
    if (c->p.truncate == PULSE_LM_TRUNCATE_NONE)
        return pulse_set_error(
            PULSE_ERR_RANGE,
            "%s: prompt %d has %d tokens; with %d %s that exceeds the model's trained context of "
            "%d tokens (context_length); truncate it (left or right) or shorten it",
            what, i, *n, reserve, reserve_what, T);
    const int drop = *n - budget;
    if (c->p.truncate == PULSE_LM_TRUNCATE_LEFT) {
        const int keep0 = *n > 0 && ids[0] == pulse_token_bos(tok) && budget > 1 ? 1 : 0;
        memmove(ids + keep0, ids + keep0 + drop, sizeof(int) * (size_t)(*n - keep0 - drop));
    }
    *n = budget;
    c->n_truncated += drop;
    return PULSE_OK;
}

static int piece_cb(void *ud, int token, char *buf, int cap) {
    return pulse_token_to_piece((const pulse_tokenizer *)ud, token, 0, buf, cap);
}

pulse_status pulse_lm_generate_text(pulse_lm_ctx *c, const pulse_tokenizer *tok, const char *const *prompts,
                                    int n, int chat, const char *system, const pulse_lm_gen_params *gp,
                                    char **outs, int *n_tokens) {
    pulse_lm_gen_params p = gp ? *gp : pulse_lm_gen_default_params();
    for (int i = 0; i < n; i++) outs[i] = NULL;
    c->n_truncated = 0;
    if (p.max_new_tokens < 0) return pulse_set_error(PULSE_ERR_ARG, "generate: max_new_tokens < 0");
    if (p.max_new_tokens >= c->m->hp.n_ctx_train) /* before sizing buffers by it */
        return pulse_set_error(
            PULSE_ERR_RANGE,
            "generate: max_new_tokens %d leaves no room for a prompt in the model's trained "
            "context of %d tokens (context_length)",
            p.max_new_tokens, c->m->hp.n_ctx_train);
    pulse_lm_request *rq = pulse_calloc((size_t)(n > 0 ? n : 1), sizeof *rq);
    int *obuf = pulse_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1) * (size_t)(p.max_new_tokens + 1));
    pulse_status st = rq && obuf ? PULSE_OK : PULSE_ERR_NOMEM;
    for (int i = 0; i < n && !st; i++) {
        int *ids = NULL, nid = 0;
        if (chat) {
            /* special tokens only where the template puts them: the prompt and system texts stay text */
            pulse_chat_msg msgs[2];
            int nm = 0;
            if (system && *system) msgs[nm++] = (pulse_chat_msg){"system", system};
            msgs[nm++] = (pulse_chat_msg){"user", prompts[i]};
            st = pulse_chat_tokenize(tok, PULSE_CHAT_AUTO, msgs, nm, 1, -1, &ids, &nid);
        } else
            st = pulse_lm_tokenize_alloc(tok, prompts[i], -1, 0, &ids, &nid);
        if (st) break;
        if (nid == 0) {
            /* an empty raw prompt: start from BOS when the vocabulary has one */
            int bos = pulse_token_bos(tok);
            free(ids);
            if (bos < 0) {
                st = pulse_set_error(PULSE_ERR_ARG, "generate: prompt %d is empty and the model has no BOS",
                                     i);
                break;
            }
            ids = pulse_malloc(sizeof(int));
            if (!ids) {
                st = PULSE_ERR_NOMEM;
                break;
            }
            ids[0] = bos;
            nid = 1;
        }
        rq[i].prompt = ids; /* owned by rq from here (freed below) */
        if ((st = fit_prompt(c, tok, "generate", i, ids, &nid, p.max_new_tokens, "new tokens"))) break;
        rq[i].n_prompt = nid;
        rq[i].out = obuf + (size_t)i * (size_t)(p.max_new_tokens + 1);
    }
    if (!st) {
        p.token_piece = piece_cb;
        p.token_piece_ud = (void *)tok;
        st = pulse_lm_generate(c, rq, n, &p);
    }
    for (int i = 0; i < n && !st; i++) {
        size_t len = 0;
        if ((st = pulse_detokenize(tok, rq[i].out, rq[i].n_out, 0, &outs[i], &len))) break;
        /* cut at the earliest stop string */
        size_t cut = len;
        for (int k = 0; k < p.n_stop; k++) {
            if (!p.stop[k] || !*p.stop[k]) continue;
            const char *hit = strstr(outs[i], p.stop[k]);
            if (hit && (size_t)(hit - outs[i]) < cut) cut = (size_t)(hit - outs[i]);
        }
        outs[i][cut] = 0;
        if (n_tokens) n_tokens[i] = rq[i].n_out;
    }
    if (st)
        for (int i = 0; i < n; i++) {
            free(outs[i]);
            outs[i] = NULL;
        }
    for (int i = 0; rq && i < n; i++) free((void *)rq[i].prompt);
    free(rq);
    free(obuf);
    return st;
}

pulse_status pulse_lm_score_text(pulse_lm_ctx *c, const pulse_tokenizer *tok, const char *const *prompts,
                                 const char *const *conts, int n, double *logprob, int *n_tokens) {
    int **pi = pulse_calloc((size_t)(n > 0 ? n : 1), sizeof(int *));
    int **ci = pulse_calloc((size_t)(n > 0 ? n : 1), sizeof(int *));
    int *np = pulse_calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    int *nc = pulse_calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    pulse_status st = pi && ci && np && nc ? PULSE_OK : PULSE_ERR_NOMEM;
    c->n_truncated = 0;
    for (int i = 0; i < n && !st; i++) {
        if ((st = pulse_lm_tokenize_alloc(tok, prompts[i], -1, 0, &pi[i], &np[i]))) break;
        if ((st = pulse_lm_tokenize_alloc(tok, conts[i], 0, 0, &ci[i], &nc[i]))) break;
        if (np[i] == 0) {
            int bos = pulse_token_bos(tok);
            if (bos < 0) {
                st = pulse_set_error(PULSE_ERR_ARG, "score: prompt %d is empty and the model has no BOS", i);
                break;
            }
            pi[i][0] = bos; /* the buffer holds at least 8 ids */
            np[i] = 1;
        }
        if ((st = fit_prompt(c, tok, "score", i, pi[i], &np[i], nc[i], "continuation tokens"))) break;
        if (n_tokens) n_tokens[i] = nc[i];
    }
    if (!st) st = pulse_lm_score(c, (const int *const *)pi, np, (const int *const *)ci, nc, n, logprob);
    for (int i = 0; i < n; i++) {
        if (pi) free(pi[i]);
        if (ci) free(ci[i]);
    }
    free(pi);
    free(ci);
    free(np);
    free(nc);
    return st;
}
