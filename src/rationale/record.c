/* rationale/record.c — owns the per-user record both phases share: the history (the last H training items
 * before the chosen one, cut to a token budget), the chosen item (the user's last training item), the
 * similar users (top-k cosine of SASRec user vectors over training prefixes) and their training items (cut
 * to a budget), the behaviour text, and the seeded choice of users for a job. Valid and test items never
 * enter a record. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/rationale.h"
#include "pulse/thought.h"

struct pulse_recorder {
    const pulse_dataset *ds;
    const pulse_tokenizer *tok;
    pulse_record_params p;
    int n_users, dim;
    float *vecs; /* (n_users, dim) L2-normalised SASRec user vectors, or NULL */
};

pulse_record_params pulse_record_default_params(void) {
    pulse_record_params p = {10, 320, 200, 5, 3, 160};
    return p;
}

void pulse_record_free(pulse_record *rec) {
    if (!rec) return;
    free(rec->history);
    free(rec->similar_users);
    free(rec->similar_items);
    free(rec->history_text);
    free(rec->chosen_text);
    free(rec->similar_text);
    free(rec->behaviour);
    memset(rec, 0, sizeof *rec);
}

int pulse_record_eligible(const pulse_dataset *ds, int user) {
    if (user < 0 || user >= pulse_dataset_n_users(ds)) return 0;
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    int tl = pulse_split_train_len(ds, user);
    if (tl < 2 || !seq) return 0;
    const char *t = pulse_dataset_item_title(ds, seq[tl - 1]);
    return t && *t;
}

pulse_status pulse_record_select_users(const pulse_dataset *ds, int n, uint64_t seed, int *users,
                                       int *n_out) {
    *n_out = 0;
    int nu = pulse_dataset_n_users(ds);
    int *perm = pulse_malloc(sizeof(int) * (size_t)(nu > 0 ? nu : 1));
    if (!perm) return PULSE_ERR_NOMEM;
    for (int i = 0; i < nu; i++) perm[i] = i;
    pulse_rng rng;
    pulse_rng_seed(&rng, seed);
    pulse_rng_shuffle_int(&rng, perm, (size_t)nu);
    int k = 0;
    for (int i = 0; i < nu && k < n; i++)
        if (pulse_record_eligible(ds, perm[i])) users[k++] = perm[i];
    free(perm);
    *n_out = k;
    return PULSE_OK;
}

pulse_status pulse_recorder_new(const pulse_dataset *ds, pulse_sasrec *sasrec, const pulse_tokenizer *tok,
                                const pulse_record_params *p, pulse_recorder **out) {
    *out = NULL;
    pulse_record_params rp = p ? *p : pulse_record_default_params();
    if (rp.max_history < 1 || rp.history_tokens < 8 || rp.title_bytes < 8 || rp.n_similar < 0 ||
        rp.similar_per_user < 1 || rp.similar_tokens < 0)
        return pulse_set_error(
            PULSE_ERR_ARG, "record params: expected max_history >= 1, history_tokens >= 8, title_bytes >= 8, "
                           "n_similar >= 0, similar_per_user >= 1, similar_tokens >= 0");
    pulse_recorder *r = pulse_calloc(1, sizeof *r);
    if (!r) return PULSE_ERR_NOMEM;
    r->ds = ds;
    r->tok = tok;
    r->p = rp;
    r->n_users = pulse_dataset_n_users(ds);
    if (sasrec && rp.n_similar > 0) {
        if (pulse_sasrec_n_items(sasrec) != pulse_dataset_n_items(ds)) {
            pulse_recorder_free(r);
            return pulse_set_error(
                PULSE_ERR_ARG, "recorder: the SASRec model has %d items, the dataset %s has %d",
                pulse_sasrec_n_items(sasrec), pulse_dataset_name(ds), pulse_dataset_n_items(ds));
        }
        r->dim = pulse_sasrec_dim(sasrec);
        r->vecs = pulse_malloc(sizeof(float) * (size_t)r->n_users * (size_t)r->dim + 1);
        pulse_status st =
            r->vecs ? pulse_sasrec_user_vectors(sasrec, ds, PULSE_SPLIT_VALID, r->vecs) : PULSE_ERR_NOMEM;
        if (st) {
            pulse_recorder_free(r);
            return st;
        }
        for (int u = 0; u < r->n_users; u++) {
            float *v = r->vecs + (size_t)u * r->dim;
            double s = 0;
            for (int j = 0; j < r->dim; j++) s += (double)v[j] * v[j];
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
            for (int j = 0; j < r->dim; j++) v[j] *= inv;
        }
    }
    *out = r;
    return PULSE_OK;
}

void pulse_recorder_free(pulse_recorder *r) {
    if (!r) return;
    free(r->vecs);
    free(r);
}

/* tokens of s: the tokenizer's count, or bytes / 4 rounded up */
static int count_tokens(const pulse_recorder *r, const char *s) {
    size_t n = strlen(s);
    if (!r->tok) return (int)((n + 3) / 4);
    int *ids = NULL, k = 0;
    if (pulse_lm_tokenize_alloc(r->tok, s, 0, 0, &ids, &k) != PULSE_OK) return (int)((n + 3) / 4);
    free(ids);
    return k;
}

/* a title as prompt text: control bytes and newlines become spaces, cut to max bytes at a UTF-8 boundary */
static char *clean_title(const char *t, int max) {
    if (!t) t = "";
    size_t n = strlen(t);
    if (n > (size_t)max) {
        n = (size_t)max;
        while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--; /* don't split a character */
    }
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) o[i] = (unsigned char)t[i] < 0x20 || t[i] == 0x7f ? ' ' : t[i];
    o[n] = 0;
    /* trim */
    size_t e = n;
    while (e > 0 && o[e - 1] == ' ') o[--e] = 0;
    return o;
}

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} buf;
static void put(buf *b, const char *t) {
    size_t k = strlen(t);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + k + 1) c *= 2;
        char *ns = realloc(b->s, c);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = c;
    }
    memcpy(b->s + b->n, t, k + 1);
    b->n += k;
}

/* top-k neighbours of u by cosine (ties: lower index first), excluding u */
static int neighbours(const pulse_recorder *r, int u, int k, int *idx) {
    float *best = malloc(sizeof(float) * (size_t)k);
    if (!best) return -1;
    int n = 0;
    const float *a = r->vecs + (size_t)u * r->dim;
    for (int v = 0; v < r->n_users; v++) {
        if (v == u) continue;
        const float *b = r->vecs + (size_t)v * r->dim;
        float c = 0;
        for (int j = 0; j < r->dim; j++) c += a[j] * b[j];
        if (n == k && !(c > best[k - 1])) continue;
        int i = n < k ? n++ : k - 1;
        while (i > 0 && c > best[i - 1]) {
            best[i] = best[i - 1];
            idx[i] = idx[i - 1];
            i--;
        }
        best[i] = c;
        idx[i] = v;
    }
    free(best);
    return n;
}

pulse_status pulse_recorder_build(pulse_recorder *r, int user, pulse_record *out) {
    memset(out, 0, sizeof *out);
    const pulse_dataset *ds = r->ds;
    if (!pulse_record_eligible(ds, user))
        return pulse_set_error(PULSE_ERR_ARG,
                               "record: user %d of %s has fewer than 2 training items or an untitled last "
                               "training item",
                               user, pulse_dataset_name(ds));
    int len = 0;
    const int *seq = pulse_dataset_user_seq(ds, user, &len);
    const int tl = pulse_split_train_len(ds, user);
    out->user = user;
    out->user_key = pulse_dataset_user_key(ds, user);
    out->chosen = seq[tl - 1];
    out->chosen_text = clean_title(pulse_dataset_item_title(ds, out->chosen), r->p.title_bytes);
    const int H = r->p.max_history;
    out->history = malloc(sizeof(int) * (size_t)H);
    char **lines = calloc((size_t)H, sizeof(char *));
    pulse_status st = out->chosen_text && out->history && lines ? PULSE_OK : PULSE_ERR_NOMEM;
    /* history: walk back from the item before the chosen one while the budget holds */
    int nh = 0, used = 0;
    for (int i = tl - 2; i >= 0 && nh < H && !st; i--) {
        char *t = clean_title(pulse_dataset_item_title(ds, seq[i]), r->p.title_bytes);
        if (!t) {
            st = PULSE_ERR_NOMEM;
            break;
        }
        if (!*t) { /* an untitled item says nothing */
            free(t);
            continue;
        }
        int tk = count_tokens(r, t) + 3; /* "N. " and the newline */
        if (nh > 0 && used + tk > r->p.history_tokens) {
            free(t);
            break;
        }
        used += tk;
        out->history[nh] = seq[i];
        lines[nh++] = t;
    }
    out->n_history = nh;
    /* reverse: oldest first */
    for (int i = 0; i < nh / 2; i++) {
        int ti = out->history[i];
        out->history[i] = out->history[nh - 1 - i];
        out->history[nh - 1 - i] = ti;
        char *tt = lines[i];
        lines[i] = lines[nh - 1 - i];
        lines[nh - 1 - i] = tt;
    }
    buf hb = {0};
    for (int i = 0; i < nh; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d. ", i + 1);
        put(&hb, num);
        put(&hb, lines[i]);
        put(&hb, "\n");
    }
    if (!hb.s) put(&hb, "");
    out->history_text = hb.s;
    if (hb.oom) st = PULSE_ERR_NOMEM;
    if (!st) {
        out->history_tok = count_tokens(r, out->history_text);
        /* behaviour text: the full titles of the same items */
        const char **full = malloc(sizeof(char *) * (size_t)(nh ? nh : 1));
        if (!full)
            st = PULSE_ERR_NOMEM;
        else {
            for (int i = 0; i < nh; i++) full[i] = pulse_dataset_item_title(ds, out->history[i]);
            out->behaviour = pulse_behaviour_text(full, nh, pulse_dataset_item_title(ds, out->chosen));
            free(full);
            if (!out->behaviour) st = PULSE_ERR_NOMEM;
        }
    }
    for (int i = 0; i < H && lines; i++) free(lines[i]);
    free(lines);
    /* similar users and their training items */
    buf sb = {0};
    put(&sb, "");
    if (!st && r->vecs) {
        const int k = r->p.n_similar;
        out->similar_users = malloc(sizeof(int) * (size_t)k);
        int cap = k * r->p.similar_per_user;
        out->similar_items = malloc(sizeof(int) * (size_t)(cap > 0 ? cap : 1));
        if (!out->similar_users || !out->similar_items) st = PULSE_ERR_NOMEM;
        int nn = st ? -1 : neighbours(r, user, k, out->similar_users);
        if (nn < 0 && !st) st = PULSE_ERR_NOMEM;
        out->n_similar_users = nn > 0 ? nn : 0;
        int ni = 0, stok = 0, full = 0;
        for (int a = 0; a < out->n_similar_users && !st && !full; a++) {
            int vl = 0;
            const int *vs = pulse_dataset_user_seq(ds, out->similar_users[a], &vl);
            int vt = pulse_split_train_len(ds, out->similar_users[a]); /* their training prefix only */
            for (int i = vt - 1, taken = 0; i >= 0 && taken < r->p.similar_per_user; i--) {
                int it = vs[i], seen = 0;
                for (int j = 0; j < nh && !seen; j++) seen = out->history[j] == it;
                for (int j = 0; j < ni && !seen; j++) seen = out->similar_items[j] == it;
                if (seen) continue;
                char *t = clean_title(pulse_dataset_item_title(ds, it), r->p.title_bytes);
                if (!t) {
                    st = PULSE_ERR_NOMEM;
                    break;
                }
                if (!*t) {
                    free(t);
                    continue;
                }
                int tk = count_tokens(r, t) + 2;
                if (stok + tk > r->p.similar_tokens) {
                    free(t);
                    full = 1;
                    break;
                }
                stok += tk;
                out->similar_items[ni++] = it;
                taken++;
                put(&sb, "- ");
                put(&sb, t);
                put(&sb, "\n");
                free(t);
            }
        }
        out->n_similar_items = ni;
    }
    out->similar_text = sb.s;
    if (sb.oom) st = PULSE_ERR_NOMEM;
    if (!st) out->similar_tok = count_tokens(r, out->similar_text);
    if (st) {
        pulse_record_free(out);
        return st == PULSE_ERR_NOMEM ? pulse_set_error(st, "record: out of memory") : st;
    }
    return PULSE_OK;
}

/* the titles as the prompt shows them (cut, cleaned), read back from the record's texts */
/* The lines of text as a JSON array of strings, each line's list marker dropped: "N. " (numbered, up to the
 * first '.') or "- " (bulleted). NULL when out of memory. */
static char *lines_json(const char *text, int numbered) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    const char *p = text ? text : "";
    int ok = 1;
    while (*p && ok) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *t = p;
        if (numbered) {
            const char *dot = memchr(p, '.', n);
            if (dot && dot + 2 <= p + n) t = dot + 2;
        } else if (n >= 2 && p[0] == '-' && p[1] == ' ')
            t = p + 2;
        char *s = strndup(t, (size_t)(p + n - t));
        cJSON *item = s ? cJSON_CreateString(s) : NULL;
        free(s);
        ok = item && cJSON_AddItemToArray(a, item);
        if (!ok) cJSON_Delete(item);
        p += n + (e ? 1 : 0);
    }
    char *s = ok ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

char *pulse_record_history_json(const pulse_record *rec) {
    return lines_json(rec->history_text, 1); /* history_text lines are "N. title" */
}

char *pulse_record_similar_json(const pulse_record *rec) {
    return lines_json(rec->similar_text, 0); /* similar_text lines are "- title" */
}
