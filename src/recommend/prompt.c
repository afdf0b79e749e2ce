/* recommend/prompt.c — owns the recommender's prompts (our wording of the PULSE authors' format: the last
 * history titles oldest first, the candidate titles, the question; the answer begun with "Let me think:
 * <rationale>. The recommendation is" or "The recommendation is"; the completion the target title in
 * quotes), their tokenization through pulse_lm_chat_prompt (the model's chat format, titles never control
 * tokens), and the training examples' candidate lists (negatives outside the user's whole sequence). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/recommend.h"
#include "pulse/strbuf.h"

pulse_rec_prompt_params pulse_rec_prompt_default_params(void) {
    pulse_rec_prompt_params p;
    p.test_history = 3;
    p.train_history = 5;
    p.train_candidates = 10;
    p.title_bytes = 200;
    p.chat = 1;
    return p;
}

static const char *RAT_NAMES[] = {"none", "phase1", "tot"};

int pulse_rec_rationale_from_name(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, RAT_NAMES[i])) return i;
    return -1;
}

const char *pulse_rec_rationale_name(pulse_rec_rationale r) {
    return (int)r >= 0 && (int)r < 3 ? RAT_NAMES[r] : "?";
}

void pulse_rec_prompt_free(pulse_rec_prompt *p) {
    if (!p) return;
    free(p->user);
    free(p->prefix);
    free(p->completion);
    memset(p, 0, sizeof *p);
}

char *pulse_rec_quoted(const char *title) {
    size_t n = strlen(title) + 4;
    char *s = malloc(n);
    if (!s) {
        pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
        return NULL;
    }
    snprintf(s, n, " \"%s\"", title);
    return s;
}

pulse_status pulse_rec_prompt_from_titles(const char *const *hist, int n_hist, const char *const *cands,
                                          int n_cands, const char *rationale, const char *target,
                                          pulse_rec_prompt *out) {
    memset(out, 0, sizeof *out);
    pulse_strbuf u = {0}, a = {0};
    pulse_strbuf_cat(&u, "A user's items, oldest first:\n");
    for (int i = 0; i < n_hist; i++) {
        pulse_strbuf_printf(&u, "%d. %s\n", i + 1, hist[i] ? hist[i] : "");
    }
    if (n_hist == 0) pulse_strbuf_cat(&u, "(none)\n");
    pulse_strbuf_cat(&u, "Candidates:\n");
    for (int j = 0; j < n_cands; j++) {
        pulse_strbuf_cat(&u, "- ");
        pulse_strbuf_cat(&u, cands[j] ? cands[j] : "");
        pulse_strbuf_cat(&u, "\n");
    }
    pulse_strbuf_cat(&u, "Which candidate will the user choose next? Answer with its title in quotes.");
    if (rationale && *rationale) {
        /* the rationale without trailing spaces or full stops, then ". " */
        size_t l = strlen(rationale);
        while (l > 0 && (rationale[l - 1] == ' ' || rationale[l - 1] == '.' || rationale[l - 1] == '\n')) l--;
        char *r = malloc(l + 1);
        if (r) {
            memcpy(r, rationale, l);
            r[l] = 0;
            pulse_strbuf_cat(&a, "Let me think: ");
            pulse_strbuf_cat(&a, r);
            pulse_strbuf_cat(&a, ". ");
            free(r);
        } else
            a.oom = 1;
    }
    pulse_strbuf_cat(&a, "The recommendation is");
    out->user = u.s;
    out->prefix = a.s;
    if (target) out->completion = pulse_rec_quoted(target);
    if (u.oom || a.oom || !u.s || !a.s || (target && !out->completion)) {
        pulse_rec_prompt_free(out);
        return pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
    }
    return PULSE_OK;
}

char *pulse_rec_prompt_raw(const pulse_rec_prompt *p) {
    size_t n = strlen(p->user) + strlen(p->prefix) + 2;
    char *s = malloc(n);
    if (!s) {
        pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
        return NULL;
    }
    snprintf(s, n, "%s\n%s", p->user, p->prefix);
    return s;
}

pulse_status pulse_rec_prompt_tokenize(const pulse_tokenizer *tok, int chat, const pulse_rec_prompt *p,
                                       int **ids, int *n) {
    return pulse_lm_chat_prompt(tok, chat, NULL, p->user, p->prefix, ids, n);
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

pulse_status pulse_rec_train_candidates(const pulse_dataset *ds, int user, int n, uint64_t seed, int *target,
                                        int *hist_len, int *out, int *pos) {
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    if (!seq) return pulse_set_error(PULSE_ERR_RANGE, "training example: user %d out of range", user);
    int tl = pulse_split_train_len(ds, user);
    if (tl < 2)
        return pulse_set_error(PULSE_ERR_RANGE, "training example: user %d has %d training items (needs 2)",
                               user, tl);
    *target = seq[tl - 1];
    *hist_len = tl - 1;
    /* negatives: never an item of the user's whole sequence (valid and test items included) */
    int *ex = malloc(sizeof(int) * (size_t)len);
    if (!ex) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    int n_ex =
        pulse_eval_excluded(PULSE_HISTORY_MASK, seq, len, pulse_dataset_n_items(ds), *target, ex, NULL);
    pulse_rng rng;
    /* a stream apart from the evaluation's lists (which mix the split, 1 or 2, into the same hash) */
    pulse_rng_seed(&rng, mix64(seed ^ mix64((uint64_t)(unsigned)user * 4 + 3)));
    pulse_status st = pulse_sample_candidates(ds, *target, ex, n_ex, n, &rng, out, pos);
    free(ex);
    if (st) pulse_wrap_error(st, "training candidates of user %d", user);
    return st;
}

pulse_status pulse_rec_prompt_build(const pulse_dataset *ds, const int *hist, int hist_len, int n_hist,
                                    const int *cands, int n_cands, const char *rationale, int target,
                                    int title_bytes, pulse_rec_prompt *out) {
    memset(out, 0, sizeof *out);
    if (n_hist > hist_len) n_hist = hist_len;
    if (n_hist < 0) n_hist = 0;
    int nt = n_hist + n_cands + 1;
    char **t = calloc((size_t)nt, sizeof(char *));
    if (!t) return pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
    pulse_status st = PULSE_OK;
    for (int i = 0; i < n_hist && !st; i++)
        if (!(t[i] = pulse_rec_item_title(ds, hist[hist_len - n_hist + i], title_bytes)))
            st = PULSE_ERR_NOMEM;
    for (int j = 0; j < n_cands && !st; j++)
        if (!(t[n_hist + j] = pulse_rec_item_title(ds, cands[j], title_bytes))) st = PULSE_ERR_NOMEM;
    if (!st && target > 0 && !(t[nt - 1] = pulse_rec_item_title(ds, target, title_bytes)))
        st = PULSE_ERR_NOMEM;
    if (!st)
        st = pulse_rec_prompt_from_titles((const char *const *)t, n_hist, (const char *const *)(t + n_hist),
                                          n_cands, rationale, target > 0 ? t[nt - 1] : NULL, out);
    for (int i = 0; i < nt; i++) free(t[i]);
    free(t);
    return st;
}

pulse_status pulse_rec_user_by_key(const pulse_dataset *ds, const char *key, int *user) {
    *user = -1;
    for (int u = 0; key && u < pulse_dataset_n_users(ds); u++) {
        const char *k = pulse_dataset_user_key(ds, u);
        if (k && !strcmp(k, key)) {
            *user = u;
            return PULSE_OK;
        }
    }
    return pulse_set_error(PULSE_ERR_ARG, "no user with id '%s' in %s (%d users)", key ? key : "",
                           pulse_dataset_name(ds), pulse_dataset_n_users(ds));
}

pulse_status pulse_rec_candidates_for_titles(const pulse_dataset *ds, const char *const *hist, int n_hist,
                                             int n, uint64_t seed, int *out) {
    const int NI = pulse_dataset_n_items(ds);
    if (n < 1 || n > NI)
        return pulse_set_error(PULSE_ERR_ARG, "candidates: expected 1 <= N <= %d, found %d", NI, n);
    /* the items whose normalised title equals a history title are the history */
    char **nh = calloc((size_t)(n_hist > 0 ? n_hist : 1), sizeof(char *));
    int *ex = malloc(sizeof(int) * (size_t)(NI > 0 ? NI : 1)), n_ex = 0;
    pulse_status st = PULSE_OK;
    if (!nh || !ex) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_hist && !st; i++)
        if (!(nh[i] = pulse_rec_normalize(hist[i]))) st = PULSE_ERR_NOMEM;
    for (int it = 1; it <= NI && !st && n_hist > 0; it++) {
        const char *t = pulse_dataset_item_title(ds, it);
        if (!t) continue;
        char *nt = pulse_rec_normalize(t);
        if (!nt) {
            st = PULSE_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < n_hist; i++)
            if (*nh[i] && !strcmp(nh[i], nt)) {
                ex[n_ex++] = it;
                break;
            }
        free(nt);
    }
    if (!st) {
        pulse_rng rng;
        pulse_rng_seed(&rng, mix64(seed ^ 0x5245434fULL));
        int pos;
        st = pulse_sample_candidates(ds, 0, ex, n_ex, n, &rng, out, &pos);
    }
    for (int i = 0; nh && i < n_hist; i++) free(nh[i]);
    free(nh);
    free(ex);
    return st;
}
