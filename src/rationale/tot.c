/* rationale/tot.c — owns Phase 2, the Tree-of-Thought refinement: a beam search over chains of thoughts for
 * many users at once. Every step is one batched forward over all live branches of all users in flight (their
 * prompt prefills, the markers that ask for the next thought and the likelihood questions included); a
 * level's children fork their parent's KV (or, with fork off, re-prefill their whole context); the
 * candidates of all users whose level completed in a step are R-encoded together.
 *
 * A node's context, as token ids: prefix (the base analysis prompt + the first-thought instruction, chat
 * formatted) + thought 1 + marker + thought 2 + marker + ... A marker closes the assistant turn and asks, as
 * a new user turn, for one more concise thought (raw prompts: "\nThought k:"). The chosen item is never in a
 * node's context: only the scorers see it (the THOUGHT scorer in the behaviour text, the LIKELIHOOD scorer
 * in a forked copy of the node that is freed after scoring). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pulse/rationale.h"
#include "pulse/strbuf.h"

static const char *SYSTEM =
    "You are an analyst who studies why people choose the items they pick (products, songs, films). You will "
    "be given a user's history of items, oldest first, and items that similar users liked. Reason about the "
    "user's latent preferences and what they are likely to want next, one concise thought at a time.";
static const char *FIRST_INSTR = "Give your first thought: one concise sentence.";
static const char *CONT_INSTR = "Continue with your next thought: one concise sentence that builds on the "
                                "previous ones.";
static const char *QUESTION = "Which item did the user choose next? Answer with its title only.";
static const char *RAW_QUESTION = "\nThe item the user chose next:";
static const char *SENTINEL = "@@PULSE_TOT_THOUGHT@@";

/* the texts of a search: the caller's where given, else the recommendation analyst's */
static pulse_tot_prompts prompts_of(const pulse_tot_params *p) {
    pulse_tot_prompts r = {SYSTEM, FIRST_INSTR, CONT_INSTR, QUESTION, RAW_QUESTION};
    const pulse_tot_prompts *c = p->prompts;
    if (c && c->system) r.system = c->system;
    if (c && c->first) r.first = c->first;
    if (c && c->next) r.next = c->next;
    if (c && c->question) r.question = c->question;
    if (c && c->raw_question) r.raw_question = c->raw_question;
    return r;
}

pulse_tot_params pulse_tot_default_params(void) {
    pulse_tot_params p;
    memset(&p, 0, sizeof p);
    p.depth = 3;
    p.branching = 3;
    p.beam = 2;
    p.max_thought_tokens = 61;
    p.temp = 1.0f;
    p.top_k = 51;
    p.top_p = 0.95f;
    p.seed = 42;
    p.scorer = PULSE_TOT_SCORER_THOUGHT;
    p.fork = 1;
    p.chat = -1;
    p.parallel = 8;
    p.n_ctx = 0;
    p.n_batch = 256;
    p.lora_scale = 1.0f;
    return p;
}

int pulse_tot_scorer_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "thought")) return PULSE_TOT_SCORER_THOUGHT;
    if (!strcmp(name, "likelihood")) return PULSE_TOT_SCORER_LIKELIHOOD;
    return -1;
}

const char *pulse_tot_scorer_name(pulse_tot_scorer s) {
    return s == PULSE_TOT_SCORER_LIKELIHOOD ? "likelihood" : s == PULSE_TOT_SCORER_THOUGHT ? "thought" : "?";
}

void pulse_tot_result_free(pulse_tot_result *r) {
    if (!r) return;
    free(r->chain);
    free(r->raw);
    free(r->context);
    free(r->context_ids);
    for (int i = 0; r->thoughts && i < r->n_thoughts; i++) free(r->thoughts[i]);
    free(r->thoughts);
    memset(r, 0, sizeof *r);
}

/* ---- small growable buffers ---- */

typedef struct {
    int *t;
    int n, cap;
} ivec;

static int iv_put(ivec *v, const int *t, int n) {
    if (n <= 0) return 0;
    if (v->n + n > v->cap) {
        int c = v->cap ? v->cap : 64;
        while (c < v->n + n) c *= 2;
        int *q = realloc(v->t, sizeof(int) * (size_t)c);
        if (!q) return -1;
        v->t = q;
        v->cap = c;
    }
    memcpy(v->t + v->n, t, sizeof(int) * (size_t)n);
    v->n += n;
    return 0;
}

/* ---- the token pieces of a node's context ---- */

static int use_chat(const pulse_tokenizer *tok, const pulse_tot_params *p) {
    if (p->chat >= 0) return p->chat;
    return pulse_chat_detect(tok) != PULSE_CHAT_RAW;
}

/* The text a chat template writes after an assistant message and before the next assistant turn's content,
 * when the next user message is `next` (found by formatting around a sentinel). */
static pulse_status chat_between(const pulse_tokenizer *tok, const char *next, int **ids, int *n) {
    pulse_chat_msg msgs[3] = {{"user", "U"}, {"assistant", SENTINEL}, {"user", next}};
    char *txt = NULL;
    pulse_status st = pulse_chat_format(tok, PULSE_CHAT_AUTO, msgs, 3, 1, &txt);
    if (st) return st;
    const char *at = strstr(txt, SENTINEL);
    if (!at) {
        free(txt);
        return pulse_set_error(PULSE_ERR_STATE, "ToT: the chat format dropped the assistant message");
    }
    /* our own fixed text and the template's markup: special tokens parsed */
    st = pulse_lm_tokenize_alloc(tok, at + strlen(SENTINEL), 0, 1, ids, n);
    free(txt);
    return st;
}

static pulse_status raw_text_ids(const pulse_tokenizer *tok, const char *text, int **ids, int *n) {
    return pulse_lm_tokenize_alloc(tok, text, 0, 0, ids, n);
}

static pulse_status make_prefix(const pulse_tokenizer *tok, int chat, const pulse_tot_prompts *pr,
                                const char *prompt, int **ids, int *n) {
    pulse_strbuf b = {0};
    if (!chat) {
        pulse_strbuf_cat(&b, pr->system);
        pulse_strbuf_cat(&b, "\n\n");
    }
    pulse_strbuf_cat(&b, prompt ? prompt : "");
    pulse_strbuf_cat(&b, "\n\n");
    pulse_strbuf_cat(&b, pr->first);
    if (!chat) pulse_strbuf_cat(&b, "\n\nThought 1:");
    if (b.oom) {
        free(b.s);
        return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
    }
    pulse_status st;
    if (chat) { /* the instruction as the system message, the user's items and the ask as the user turn */
        pulse_chat_msg msgs[2] = {{"system", pr->system}, {"user", b.s}};
        st = pulse_chat_tokenize(tok, PULSE_CHAT_AUTO, msgs, 2, 1, -1, ids, n);
    } else
        st = pulse_lm_tokenize_alloc(tok, b.s, -1, 0, ids, n); /* dataset text stays text */
    free(b.s);
    return st;
}

static pulse_status make_marker(const pulse_tokenizer *tok, int chat, const pulse_tot_prompts *pr, int k,
                                int **ids, int *n) {
    if (chat) return chat_between(tok, pr->next, ids, n);
    char t[64];
    snprintf(t, sizeof t, "\nThought %d:", k + 1);
    return raw_text_ids(tok, t, ids, n);
}

static pulse_status make_question(const pulse_tokenizer *tok, int chat, const pulse_tot_prompts *pr,
                                  int **ids, int *n) {
    if (chat) return chat_between(tok, pr->question, ids, n);
    return raw_text_ids(tok, pr->raw_question, ids, n);
}

static pulse_status make_title(const pulse_tokenizer *tok, int chat, const char *title, int **ids, int *n) {
    pulse_strbuf b = {0};
    if (!chat) pulse_strbuf_cat(&b, " "); /* after "...next:" */
    pulse_strbuf_cat(&b, title ? title : "");
    if (b.oom) {
        free(b.s);
        return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
    }
    pulse_status st = raw_text_ids(tok, b.s, ids, n);
    free(b.s);
    return st;
}

pulse_status pulse_tot_tokens(const pulse_tokenizer *tok, const pulse_tot_params *pp,
                              const pulse_tot_input *in, int **prefix, int *n_prefix, int k, int **marker,
                              int *n_marker, int **question, int *n_question, int **title, int *n_title) {
    pulse_tot_params p = pp ? *pp : pulse_tot_default_params();
    const int chat = use_chat(tok, &p);
    const pulse_tot_prompts pr = prompts_of(&p);
    pulse_status st = PULSE_OK;
    if (prefix) st = make_prefix(tok, chat, &pr, in->prompt, prefix, n_prefix);
    if (!st && marker) st = make_marker(tok, chat, &pr, k, marker, n_marker);
    if (!st && question) st = make_question(tok, chat, &pr, question, n_question);
    if (!st && title) st = make_title(tok, chat, in->chosen, title, n_title);
    return st;
}

/* ---- thought text ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static int utf8_len(const unsigned char *s, size_t n) {
    int k = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
    if (k == 0 || (size_t)k > n) return 0;
    for (int i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (k == 2 && s[0] < 0xC2) return 0;                                                       /* overlong */
    if (k == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0; /* surrogate */
    if (k == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || s[0] > 0xF4 || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return k;
}

/* The thought in a branch's detokenized text: up to the first newline after content, without a leading
 * "Thought k:" / list mark / quotes, invalid UTF-8 dropped and control bytes as spaces; NULL when nothing
 * with a letter or digit is left. */
static char *clean_thought(const char *s0) {
    size_t n0 = strlen(s0), k = 0;
    char *t = malloc(n0 + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n0;) {
        int l = utf8_len((const unsigned char *)s0 + i, n0 - i);
        if (l == 0) {
            i++;
            continue;
        }
        if (l == 1 && (unsigned char)s0[i] < 0x20 && s0[i] != '\n')
            t[k++] = ' ';
        else if (l == 1 && s0[i] == 0x7F)
            t[k++] = ' ';
        else {
            memcpy(t + k, s0 + i, (size_t)l);
            k += (size_t)l;
        }
        i += (size_t)l;
    }
    t[k] = 0;
    const char *s = t;
    while (*s && isspace((unsigned char)*s)) s++;
    for (int pass = 0; pass < 2; pass++) {
        if (!strncasecmp(s, "thought", 7)) {
            const char *q = s + 7;
            while (*q == ' ' || isdigit((unsigned char)*q)) q++;
            if (*q == ':' || *q == '.' || *q == ')') s = q + 1;
        }
        while (*s == '-' || *s == '*' || *s == '"' || *s == '\'' || isspace((unsigned char)*s)) s++;
    }
    size_t n = strcspn(s, "\n");
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '"')) n--;
    int alnum = 0;
    for (size_t i = 0; i < n; i++) alnum |= isalnum((unsigned char)s[i]) != 0;
    char *d = alnum ? malloc(n + 1) : NULL;
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    free(t);
    return d;
}

/* lower-case letters and digits, runs of anything else as one space: the key duplicates are dropped by */
static char *norm_key(const char *s) {
    size_t n = strlen(s), k = 0;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    int sp = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch >= 0x80) {
            if (sp && k) d[k++] = ' ';
            sp = 0;
            d[k++] = (char)tolower(ch);
        } else
            sp = 1;
    }
    d[k] = 0;
    return d;
}

/* ---- search state ---- */

typedef struct {
    ivec ctx;   /* the node's context token ids (what a child continues from; ends with a marker) */
    int seq;    /* fork: the sequence holding ctx[0..fed); -1 none */
    int fed;    /* tokens of ctx in seq */
    char **th;  /* the chain's thoughts */
    char **key; /* their duplicate keys */
    int n_th;
    double score;
    int row; /* logits row of ctx's last token in this step (fork), -1 none */
} node;

enum { BR_PREFILL = 0, BR_WAIT_PARENT, BR_DECODE, BR_DONE };

typedef struct {
    int node, j; /* parent node (index into the user's beam) and branch number */
    int seq;
    int state;
    int pending;  /* sampled token to feed next step, -1 none */
    int row;      /* logits row to sample from in this step, -1 none */
    ivec toks;    /* the thought's tokens (a stop token excluded) */
    int unfed;    /* 1: toks' last token is not in seq (the thought ended at max tokens) */
    int has_text; /* a non-space byte was generated */
    int sampled;  /* token sampled this step */
    pulse_lm_sampler *smp;
    char *text, *key;
    int dup; /* 1 duplicate, 2 empty */
    double score;
    /* LIKELIHOOD scoring */
    int sc_seq, sc_state; /* 0 none, 1 to feed, 2 fed (logits in rows), 3 done */
    ivec sc_feed;
    int sc_first; /* batch index of the first logits row the title's log-probs are read from */
} branch;

enum { U_FREE = 0, U_EXPAND, U_GEN, U_SCORE, U_SELECT };

typedef struct {
    int in; /* input index; -1 free */
    int state;
    int depth;  /* level being generated (0-based: thought depth+1) */
    node *beam; /* (p.beam) */
    int n_beam;
    branch *br; /* (p.beam * p.branching) */
    int n_br;
    int texts_done; /* the level's thought texts and duplicates are known */
    float *bvec;    /* (D) B(behaviour) */
    int *title;
    int n_title;
    pulse_strbuf raw;
    pulse_tot_result res;
    double t0;
} uslot;

typedef struct {
    const pulse_lm *m;
    const pulse_tokenizer *tok;
    pulse_thought_space *space;
    const pulse_tot_input *in;
    pulse_tot_params p;
    int chat, V, D;
    pulse_lm_ctx *c;
    int **prefix;
    int *n_prefix;
    int *marker[64];
    int n_marker[64];
    int *question, n_question;
    /* the step's batch */
    int *bt, *bs;
    uint8_t *bw;
    int bn, bcap;
    pulse_tot_stats stats;
} tot_run;

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
static uint64_t branch_seed(uint64_t seed, const char *user, int depth, int node, int j) {
    uint64_t h = mix64(seed ^ str_hash(user));
    h = mix64(h ^ (uint64_t)depth);
    h = mix64(h ^ ((uint64_t)node << 16));
    return mix64(h ^ ((uint64_t)j << 32));
}

static pulse_status batch_add(tot_run *R, const int *t, int n, int seq, int want_last, int want_all) {
    if (R->bn + n > R->bcap) {
        int c = R->bcap ? R->bcap : 1024;
        while (c < R->bn + n) c *= 2;
        int *a = realloc(R->bt, sizeof(int) * (size_t)c);
        if (a) R->bt = a;
        int *b = realloc(R->bs, sizeof(int) * (size_t)c);
        if (b) R->bs = b;
        uint8_t *w = realloc(R->bw, (size_t)c);
        if (w) R->bw = w;
        if (!a || !b || !w) return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        R->bcap = c;
    }
    for (int i = 0; i < n; i++) {
        R->bt[R->bn + i] = t[i];
        R->bs[R->bn + i] = seq;
        R->bw[R->bn + i] = (uint8_t)(want_all || (want_last && i == n - 1));
    }
    R->bn += n;
    return PULSE_OK;
}

static void node_clear(pulse_lm_ctx *c, node *nd) {
    if (nd->seq >= 0) pulse_lm_seq_free(c, nd->seq);
    for (int i = 0; i < nd->n_th; i++) {
        free(nd->th[i]);
        free(nd->key[i]);
    }
    free(nd->th);
    free(nd->key);
    free(nd->ctx.t);
    memset(nd, 0, sizeof *nd);
    nd->seq = -1;
    nd->row = -1;
}

static void branch_reset(pulse_lm_ctx *c, branch *b) {
    if (b->seq >= 0) pulse_lm_seq_free(c, b->seq);
    if (b->sc_seq >= 0) pulse_lm_seq_free(c, b->sc_seq);
    free(b->text);
    free(b->key);
    b->text = b->key = NULL;
    b->seq = b->sc_seq = -1;
    b->toks.n = 0;
    b->sc_feed.n = 0;
    b->sc_state = 0;
    b->state = BR_DONE;
    b->pending = b->row = -1;
    b->unfed = b->has_text = b->sampled = b->dup = 0;
    b->score = 0;
}

static void slot_release(tot_run *R, uslot *u) {
    for (int i = 0; i < u->n_beam; i++) node_clear(R->c, &u->beam[i]);
    u->n_beam = 0;
    for (int i = 0; i < R->p.beam * R->p.branching; i++) branch_reset(R->c, &u->br[i]);
    u->n_br = 0;
    free(u->title);
    u->title = NULL;
    u->n_title = 0;
    free(u->raw.s);
    memset(&u->raw, 0, sizeof u->raw);
    pulse_tot_result_free(&u->res);
    u->in = -1;
    u->state = U_FREE;
}

/* the chain text of a node plus one more thought (NULL: none) */
static char *chain_text(const node *nd, const char *more) {
    pulse_strbuf b = {0};
    for (int i = 0; i < nd->n_th; i++) {
        if (i) pulse_strbuf_cat(&b, " ");
        pulse_strbuf_cat(&b, nd->th[i]);
    }
    if (more) {
        if (nd->n_th) pulse_strbuf_cat(&b, " ");
        pulse_strbuf_cat(&b, more);
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    if (!b.s) b.s = calloc(1, 1);
    return b.s;
}

/* Start level u->depth: branches for every kept node. */
static pulse_status slot_expand(tot_run *R, uslot *u) {
    const pulse_tot_params *p = &R->p;
    u->n_br = 0;
    u->texts_done = 0;
    for (int r = 0; r < u->n_beam; r++) {
        node *nd = &u->beam[r];
        if (p->fork && nd->seq < 0) { /* the root */
            if ((nd->seq = pulse_lm_seq_new(R->c)) < 0) return PULSE_ERR_RANGE;
            nd->fed = 0;
        }
        for (int j = 0; j < p->branching; j++) {
            branch *b = &u->br[u->n_br++];
            branch_reset(R->c, b);
            b->node = r;
            b->j = j;
            b->state = p->fork ? BR_WAIT_PARENT : BR_PREFILL;
            pulse_lm_sampler_seed(b->smp, branch_seed(p->seed, R->in[u->in].user, u->depth, r, j));
            if (!p->fork && (b->seq = pulse_lm_seq_new(R->c)) < 0) return PULSE_ERR_RANGE;
        }
    }
    u->state = U_GEN;
    return PULSE_OK;
}

static pulse_status build_batch(tot_run *R, uslot *us, int U) {
    R->bn = 0;
    pulse_status st = PULSE_OK;
    for (int k = 0; k < U && !st; k++) {
        uslot *u = &us[k];
        if (u->state == U_GEN) {
            for (int r = 0; r < u->n_beam && !st; r++) {
                node *nd = &u->beam[r];
                nd->row = -1;
                if (!R->p.fork || nd->seq < 0) continue;
                int waiting = 0;
                for (int i = 0; i < u->n_br; i++)
                    waiting |= u->br[i].node == r && u->br[i].state == BR_WAIT_PARENT;
                if (!waiting) continue;
                if (nd->fed >= nd->ctx.n) { /* nothing new to feed: recompute the last token for its logits */
                    if ((st = pulse_lm_seq_truncate(R->c, nd->seq, nd->ctx.n - 1))) break;
                    nd->fed = nd->ctx.n - 1;
                }
                int n = nd->ctx.n - nd->fed;
                st = batch_add(R, nd->ctx.t + nd->fed, n, nd->seq, 1, 0);
                nd->row = R->bn - 1;
                nd->fed = nd->ctx.n;
                R->stats.prompt_tokens += n;
                u->res.prompt_tokens += n;
            }
            for (int i = 0; i < u->n_br && !st; i++) {
                branch *b = &u->br[i];
                b->row = -1;
                if (b->state == BR_PREFILL) {
                    const node *nd = &u->beam[b->node];
                    st = batch_add(R, nd->ctx.t, nd->ctx.n, b->seq, 1, 0);
                    b->row = R->bn - 1;
                    b->state = BR_DECODE;
                    R->stats.prompt_tokens += nd->ctx.n;
                    u->res.prompt_tokens += nd->ctx.n;
                } else if (b->state == BR_DECODE && b->pending >= 0) {
                    st = batch_add(R, &b->pending, 1, b->seq, 1, 0);
                    b->row = R->bn - 1;
                    b->pending = -1;
                }
            }
        } else if (u->state == U_SCORE) {
            for (int i = 0; i < u->n_br && !st; i++) {
                branch *b = &u->br[i];
                if (b->sc_state != 1) continue;
                /* logits from the token before the title's first through the title's second last */
                const int nf = b->sc_feed.n, nt = u->n_title;
                st = batch_add(R, b->sc_feed.t, nf, b->sc_seq, 0, 0);
                if (st) break;
                for (int t = 0; t < nt; t++) R->bw[R->bn - nf + (nf - nt - 1) + t] = 1;
                b->sc_first = R->bn - nf + (nf - nt - 1);
                b->sc_state = 2;
                R->stats.prompt_tokens += nf;
                u->res.prompt_tokens += nf;
            }
        }
    }
    return st;
}

static int is_newline_piece(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] == '\n') return 1;
    return 0;
}
static int has_content(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 1;
    return 0;
}

/* Accept branch b's sampled token: returns 1 when its thought is over. */
static int branch_accept(tot_run *R, uslot *u, branch *b, int t) {
    u->res.gen_tokens++;
    R->stats.gen_tokens++;
    if (pulse_lm_is_eog(R->m, t)) return 1;
    char piece[256];
    int len = pulse_token_to_piece(R->tok, t, 0, piece, (int)sizeof piece);
    if (len < 0) len = 0;
    if (len > (int)sizeof piece) len = (int)sizeof piece;
    if (is_newline_piece(piece, len) && b->has_text) return 1; /* one thought is one line */
    if (iv_put(&b->toks, &t, 1)) return -1;
    if (has_content(piece, len)) b->has_text = 1;
    if (b->toks.n >= R->p.max_thought_tokens) {
        b->unfed = 1;
        return 1;
    }
    b->pending = t;
    return 0;
}

static pulse_status after_decode(tot_run *R, uslot *us, int U) {
    pulse_status st = PULSE_OK;
    /* fork mode: waiting children become forks of their freshly fed parent (the last one takes the
     * parent's own sequence) and sample their first token from its logits */
    for (int k = 0; k < U && !st; k++) {
        uslot *u = &us[k];
        if (u->state != U_GEN) continue;
        for (int r = 0; r < u->n_beam && !st; r++) {
            node *nd = &u->beam[r];
            if (nd->row < 0) continue;
            int last = -1;
            for (int i = 0; i < u->n_br; i++)
                if (u->br[i].node == r && u->br[i].state == BR_WAIT_PARENT) last = i;
            for (int i = 0; i < u->n_br && !st; i++) {
                branch *b = &u->br[i];
                if (b->node != r || b->state != BR_WAIT_PARENT) continue;
                if (i == last) {
                    b->seq = nd->seq;
                    nd->seq = -1;
                } else
                    st = pulse_lm_seq_fork(R->c, nd->seq, &b->seq);
                b->row = nd->row;
                b->state = BR_DECODE;
            }
        }
    }
    if (st) return st;
    /* sample (each branch has its own seeded sampler: order does not matter) */
    int nb = 0;
    for (int k = 0; k < U; k++)
        if (us[k].state == U_GEN) nb += us[k].n_br;
    branch **todo = malloc(sizeof(branch *) * (size_t)(nb > 0 ? nb : 1));
    if (!todo) return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
    int nt = 0;
    for (int k = 0; k < U; k++)
        if (us[k].state == U_GEN)
            for (int i = 0; i < us[k].n_br; i++)
                if (us[k].br[i].state == BR_DECODE && us[k].br[i].row >= 0) todo[nt++] = &us[k].br[i];
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1)
    for (int i = 0; i < nt; i++)
        todo[i]->sampled = pulse_lm_sample(todo[i]->smp, pulse_lm_logits(R->c, todo[i]->row), todo[i]->toks.t,
                                           todo[i]->toks.n);
    free(todo);
    for (int k = 0; k < U; k++) {
        uslot *u = &us[k];
        if (u->state == U_GEN) {
            int all_done = 1;
            for (int i = 0; i < u->n_br; i++) {
                branch *b = &u->br[i];
                if (b->state == BR_DECODE && b->row >= 0) {
                    int fin = branch_accept(R, u, b, b->sampled);
                    if (fin < 0) return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
                    if (fin) b->state = BR_DONE;
                }
                all_done &= b->state == BR_DONE;
            }
            if (all_done) u->state = U_SCORE; /* texts and scores next */
        } else if (u->state == U_SCORE) {
            int all = 1;
            for (int i = 0; i < u->n_br; i++) {
                branch *b = &u->br[i];
                if (b->sc_state == 2) {
                    double lp = 0;
                    for (int t = 0; t < u->n_title; t++)
                        lp += pulse_lm_logprob(pulse_lm_logits(R->c, b->sc_first + t), R->V, u->title[t]);
                    b->score = lp / (u->n_title > 0 ? u->n_title : 1);
                    pulse_lm_seq_free(R->c, b->sc_seq);
                    b->sc_seq = -1;
                    b->sc_state = 3;
                }
                all &= b->sc_state == 0 || b->sc_state == 3;
            }
            if (all) u->state = U_SELECT;
        }
    }
    return st;
}

/* The level's thoughts: texts, duplicates (of a sibling before it or of a thought in its own chain) and
 * empties dropped. Returns the number of valid candidates. */
static int level_texts(tot_run *R, uslot *u, pulse_status *st) {
    int nvalid = 0;
    for (int i = 0; i < u->n_br; i++) {
        branch *b = &u->br[i];
        char *txt = NULL;
        size_t len = 0;
        if ((*st = pulse_detokenize(R->tok, b->toks.t, b->toks.n, 0, &txt, &len))) return 0;
        b->text = clean_thought(txt);
        free(txt);
        u->res.candidates++;
        if (!b->text) {
            b->dup = 2;
            u->res.duplicates++;
            continue;
        }
        if (!(b->key = norm_key(b->text))) {
            *st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
            return 0;
        }
        const node *nd = &u->beam[b->node];
        for (int k = 0; k < nd->n_th && !b->dup; k++) b->dup = !strcmp(nd->key[k], b->key);
        for (int k = 0; k < i && !b->dup; k++)
            b->dup = u->br[k].key && !u->br[k].dup && !strcmp(u->br[k].key, b->key);
        if (b->dup) {
            u->res.duplicates++;
            continue;
        }
        nvalid++;
    }
    return nvalid;
}

/* LIKELIHOOD: a scoring sequence per valid candidate: context + thought + question + title */
static pulse_status start_likelihood(tot_run *R, uslot *u) {
    pulse_status st = PULSE_OK;
    for (int i = 0; i < u->n_br && !st; i++) {
        branch *b = &u->br[i];
        if (b->dup) continue;
        b->sc_feed.n = 0;
        const node *nd = &u->beam[b->node];
        int e = 0;
        if (R->p.fork) {
            if ((st = pulse_lm_seq_fork(R->c, b->seq, &b->sc_seq))) break;
            if (b->unfed) e |= iv_put(&b->sc_feed, b->toks.t + b->toks.n - 1, 1);
        } else {
            if ((b->sc_seq = pulse_lm_seq_new(R->c)) < 0) return PULSE_ERR_RANGE;
            e |= iv_put(&b->sc_feed, nd->ctx.t, nd->ctx.n);
            e |= iv_put(&b->sc_feed, b->toks.t, b->toks.n);
        }
        e |= iv_put(&b->sc_feed, R->question, R->n_question);
        e |= iv_put(&b->sc_feed, u->title, u->n_title);
        if (e) return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        b->sc_state = 1;
    }
    return st;
}

static pulse_status finish_user(tot_run *R, uslot *u, pulse_tot_done_fn done, void *ud) {
    pulse_tot_result *res = &u->res;
    res->seconds = pulse_now() - u->t0;
    if (u->n_beam > 0 && u->beam[0].n_th > 0) {
        const node *best = &u->beam[0];
        res->ok = 1;
        res->score = best->score;
        res->n_thoughts = best->n_th;
        res->chain = chain_text(best, NULL);
        if ((res->thoughts = calloc((size_t)best->n_th, sizeof(char *))))
            for (int i = 0; i < best->n_th; i++) res->thoughts[i] = strdup(best->th[i]);
        if (!res->chain || !res->thoughts) {
            pulse_tot_result_free(res);
            return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        }
        size_t len;
        if (pulse_detokenize(R->tok, best->ctx.t, best->ctx.n, 1, &res->context, &len)) res->context = NULL;
        if ((res->context_ids = malloc(sizeof(int) * (size_t)best->ctx.n))) {
            memcpy(res->context_ids, best->ctx.t, sizeof(int) * (size_t)best->ctx.n);
            res->n_context_ids = best->ctx.n;
        }
        R->stats.users_ok++;
    } else
        R->stats.users_failed++;
    res->raw = u->raw.s;
    u->raw.s = NULL;
    pulse_status st = done ? done(ud, u->in, res) : PULSE_OK;
    slot_release(R, u);
    return st;
}

static int cmp_score(const void *a, const void *b) {
    const branch *x = *(branch *const *)a, *y = *(branch *const *)b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    /* ties: the earlier branch first (deterministic) */
    return (x->node * 1024 + x->j) - (y->node * 1024 + y->j);
}

/* Keep the best p.beam candidates of the level as the new beam; finish the user at the last level or
 * when no candidate is left. */
static pulse_status slot_select(tot_run *R, uslot *u, pulse_tot_done_fn done, void *ud) {
    const pulse_tot_params *p = &R->p;
    branch *ord[1024];
    int nv = 0;
    for (int i = 0; i < u->n_br; i++) {
        branch *b = &u->br[i];
        if (b->dup)
            pulse_strbuf_printf(&u->raw, "d%d n%d b%d %s: ", u->depth + 1, b->node, b->j,
                                b->dup == 2 ? "empty" : "dup");
        else {
            pulse_strbuf_printf(&u->raw, "d%d n%d b%d %.4f: ", u->depth + 1, b->node, b->j, b->score);
            ord[nv++] = b;
        }
        pulse_strbuf_cat(&u->raw, b->text ? b->text : "");
        pulse_strbuf_cat(&u->raw, "\n");
    }
    if (u->raw.oom) return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
    if (nv == 0) /* nothing new: the previous level's best is the answer */
        return finish_user(R, u, done, ud);
    qsort(ord, (size_t)nv, sizeof *ord, cmp_score);
    const int keep = nv < p->beam ? nv : p->beam, last = u->depth + 1 >= p->depth;
    node nb[64];
    for (int r = 0; r < keep; r++) {
        branch *b = ord[r];
        const node *par = &u->beam[b->node];
        node *nd = &nb[r];
        memset(nd, 0, sizeof *nd);
        nd->seq = -1;
        nd->row = -1;
        nd->score = b->score;
        nd->n_th = par->n_th + 1;
        nd->th = calloc((size_t)nd->n_th, sizeof(char *));
        nd->key = calloc((size_t)nd->n_th, sizeof(char *));
        int e = !nd->th || !nd->key;
        for (int k = 0; !e && k < par->n_th; k++) {
            nd->th[k] = strdup(par->th[k]);
            nd->key[k] = strdup(par->key[k]);
            e |= !nd->th[k] || !nd->key[k];
        }
        if (!e) {
            nd->th[par->n_th] = b->text;
            nd->key[par->n_th] = b->key;
            b->text = b->key = NULL;
        }
        e = e || iv_put(&nd->ctx, par->ctx.t, par->ctx.n) || iv_put(&nd->ctx, b->toks.t, b->toks.n);
        if (!e && !last) e = iv_put(&nd->ctx, R->marker[u->depth], R->n_marker[u->depth]);
        if (e) {
            for (int q = 0; q <= r; q++) node_clear(R->c, &nb[q]);
            return pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        }
        if (p->fork && !last) { /* the branch's sequence holds everything but an unfed last token */
            nd->seq = b->seq;
            b->seq = -1;
            nd->fed = par->ctx.n + b->toks.n - b->unfed;
        }
    }
    for (int i = 0; i < u->n_beam; i++) node_clear(R->c, &u->beam[i]);
    for (int i = 0; i < u->n_br; i++) branch_reset(R->c, &u->br[i]);
    for (int r = 0; r < keep; r++) u->beam[r] = nb[r];
    u->n_beam = keep;
    if (last) return finish_user(R, u, done, ud);
    u->depth++;
    u->state = U_EXPAND;
    return PULSE_OK;
}

/* THOUGHT scorer for every user that reached U_SCORE this step: one batched R-encode of all candidates */
static pulse_status score_thought(tot_run *R, uslot *us, int U) {
    int n = 0;
    for (int k = 0; k < U; k++)
        if (us[k].state == U_SCORE)
            for (int i = 0; i < us[k].n_br; i++) n += !us[k].br[i].dup;
    if (n == 0) return PULSE_OK;
    char **texts = calloc((size_t)n, sizeof(char *));
    branch **who = calloc((size_t)n, sizeof(branch *));
    int *whou = calloc((size_t)n, sizeof(int));
    float *emb = malloc(sizeof(float) * (size_t)n * (size_t)R->D);
    pulse_status st =
        texts && who && whou && emb ? PULSE_OK : pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
    int m = 0;
    for (int k = 0; k < U && !st; k++)
        if (us[k].state == U_SCORE)
            for (int i = 0; i < us[k].n_br && !st; i++) {
                branch *b = &us[k].br[i];
                if (b->dup) continue;
                if (!(texts[m] = chain_text(&us[k].beam[b->node], b->text)))
                    st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
                who[m] = b;
                whou[m] = k;
                m++;
            }
    if (!st) st = pulse_thought_embed_rationale(R->space, (const char *const *)texts, n, emb);
    for (int i = 0; i < n && !st; i++) {
        const float *e = emb + (size_t)i * R->D, *bv = us[whou[i]].bvec;
        double d = 0;
        for (int j = 0; j < R->D; j++) d += (double)e[j] * bv[j];
        who[i]->score = d;
    }
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(who);
    free(whou);
    free(emb);
    return st;
}

pulse_status pulse_tot_run(const pulse_lm *m, const pulse_tokenizer *tok, pulse_thought_space *space,
                           const pulse_tot_input *in, int n, const pulse_tot_params *params,
                           pulse_tot_done_fn done, void *ud, pulse_tot_stats *stats) {
    tot_run R;
    memset(&R, 0, sizeof R);
    R.p = params ? *params : pulse_tot_default_params();
    const pulse_tot_params *p = &R.p;
    if (stats) memset(stats, 0, sizeof *stats);
    if (!m || !tok || (n > 0 && !in) || n < 0)
        return pulse_set_error(PULSE_ERR_ARG, "ToT: a model, a tokenizer and inputs are required");
    if (p->depth < 1 || p->depth > 63 || p->branching < 1 || p->beam < 1 || p->beam * p->branching > 1024 ||
        p->beam > 64 || p->max_thought_tokens < 1 || p->parallel < 1 || p->parallel > 1024 || p->n_ctx < 0 ||
        p->n_batch < 1 || p->top_p <= 0 || !(p->temp >= 0))
        return pulse_set_error(
            PULSE_ERR_ARG,
            "ToT: depth %d (1..63), branching %d (>= 1), beam %d (1..64, beam x branching "
            "<= 1024), max thought tokens %d (>= 1), parallel %d (1..1024), top-p %g (> 0), "
            "temperature %g (>= 0): out of range",
            p->depth, p->branching, p->beam, p->max_thought_tokens, p->parallel, p->top_p, p->temp);
    if (p->scorer != PULSE_TOT_SCORER_THOUGHT && p->scorer != PULSE_TOT_SCORER_LIKELIHOOD)
        return pulse_set_error(PULSE_ERR_ARG, "ToT: unknown scorer %d", (int)p->scorer);
    if (p->scorer == PULSE_TOT_SCORER_THOUGHT && !space)
        return pulse_set_error(PULSE_ERR_ARG, "ToT: the thought scorer needs a Thought Space");
    for (int i = 0; i < n; i++)
        if (!in[i].user || !in[i].prompt ||
            (p->scorer == PULSE_TOT_SCORER_THOUGHT ? !in[i].behaviour : !in[i].chosen))
            return pulse_set_error(PULSE_ERR_ARG, "ToT: input %d needs a user id, a prompt and the %s", i,
                                   p->scorer == PULSE_TOT_SCORER_THOUGHT ? "behaviour text" : "chosen title");
    if (n == 0) return PULSE_OK;
    const pulse_lm_hparams *hp = pulse_lm_get_hparams(m);
    R.m = m;
    R.tok = tok;
    R.space = space;
    R.in = in;
    R.chat = use_chat(tok, p);
    const pulse_tot_prompts pr = prompts_of(p);
    R.V = hp->n_vocab;
    R.D = space ? pulse_thought_space_dim(space) : 0;
    const double t_start = pulse_now();
    pulse_status st = PULSE_OK;
    uslot *us = NULL;
    const int U = p->parallel < n ? p->parallel : n, S = p->beam * p->branching;
    /* every user's prompt tokens first: they size the KV pool */
    R.prefix = calloc((size_t)n, sizeof(int *));
    R.n_prefix = calloc((size_t)n, sizeof(int));
    if (!R.prefix || !R.n_prefix) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        goto out;
    }
    int max_prefix = 0, max_title = 0, max_marker = 0;
    for (int i = 0; i < n && !st; i++) {
        if ((st = make_prefix(tok, R.chat, &pr, in[i].prompt, &R.prefix[i], &R.n_prefix[i])))
            st = pulse_wrap_error(st, "ToT: user %s: prompt", in[i].user);
        if (R.n_prefix[i] > max_prefix) max_prefix = R.n_prefix[i];
        if (!st && p->scorer == PULSE_TOT_SCORER_LIKELIHOOD) {
            int *t = NULL, nt = 0;
            st = make_title(tok, R.chat, in[i].chosen, &t, &nt);
            free(t);
            if (nt > max_title) max_title = nt;
        }
    }
    for (int k = 0; k + 1 < p->depth && !st; k++) {
        st = make_marker(tok, R.chat, &pr, k + 1, &R.marker[k], &R.n_marker[k]);
        if (R.n_marker[k] > max_marker) max_marker = R.n_marker[k];
    }
    if (!st) st = make_question(tok, R.chat, &pr, &R.question, &R.n_question);
    if (st) goto out;
    const int chain_max = p->depth * (p->max_thought_tokens + max_marker) + R.n_question + max_title + 2;
    int n_ctx = p->n_ctx > 0 ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (n_ctx > hp->n_ctx_train) n_ctx = hp->n_ctx_train;
    if (max_prefix + chain_max > n_ctx) {
        st = pulse_set_error(
            PULSE_ERR_RANGE,
            "ToT: a prompt of %d tokens + a chain of up to %d (depth %d x %d tokens, markers, "
            "question and title) exceed the context of %d tokens; shorten the prompts",
            max_prefix, chain_max, p->depth, p->max_thought_tokens, n_ctx);
        goto out;
    }
    {
        pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
        cp.n_ctx = n_ctx;
        cp.n_seq_max = U * (2 * S + p->beam + 1);
        cp.n_batch = p->n_batch;
        const int blk = cp.kv_block;
        /* live tokens per user, blocks rounded up: fork = one prompt + per branch (and its score fork) a
         * chain; no fork = per branch and per score a whole context */
        int64_t per_user =
            p->fork ? (int64_t)max_prefix + blk + (int64_t)(2 * S + p->beam) * (chain_max + 2 * blk)
                    : (int64_t)(2 * S + p->beam) * (max_prefix + chain_max + 2 * blk);
        int64_t pool = per_user * U;
        if (pool > (1 << 26)) pool = 1 << 26;
        cp.n_kv_tokens = (int)pool;
        if ((st = pulse_lm_ctx_new(m, &cp, &R.c))) goto out;
        if (p->lora && (st = pulse_lm_ctx_set_lora(R.c, p->lora, p->lora_scale))) goto out;
    }
    us = calloc((size_t)U, sizeof *us);
    if (!us) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
        goto out;
    }
    pulse_lm_sampler_params sp = pulse_lm_sampler_default_params();
    sp.temp = p->temp;
    sp.top_k = p->top_k;
    sp.top_p = p->top_p;
    for (int k = 0; k < U; k++) {
        us[k].in = -1;
        us[k].beam = calloc((size_t)p->beam, sizeof(node));
        us[k].br = calloc((size_t)S, sizeof(branch));
        us[k].bvec = R.D ? malloc(sizeof(float) * (size_t)R.D) : NULL;
        for (int i = 0; us[k].beam && i < p->beam; i++) us[k].beam[i].seq = -1;
        for (int i = 0; us[k].br && i < S; i++) us[k].br[i].seq = us[k].br[i].sc_seq = -1;
        if (!us[k].beam || !us[k].br || (R.D && !us[k].bvec)) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
            goto out;
        }
        for (int i = 0; i < S && !st; i++) st = pulse_lm_sampler_new(&sp, R.V, &us[k].br[i].smp);
        if (st) goto out;
    }
    pulse_progress pg;
    pulse_progress_begin(&pg, p->progress_label ? p->progress_label : "tot",
                         p->progress_unit ? p->progress_unit : "users", (size_t)n);
    int next = 0, finished = 0;
    for (;;) {
        /* admit users into free slots; their B vectors in one encode */
        const char *btxt[1024];
        float *bdst[1024];
        int nb = 0;
        for (int k = 0; k < U && next < n && !st; k++) {
            uslot *u = &us[k];
            if (u->state != U_FREE) continue;
            const int i = next++;
            u->in = i;
            u->depth = 0;
            u->t0 = pulse_now();
            memset(&u->res, 0, sizeof u->res);
            node *root = &u->beam[0];
            memset(root, 0, sizeof *root);
            root->seq = -1;
            root->row = -1;
            if (iv_put(&root->ctx, R.prefix[i], R.n_prefix[i])) {
                st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
                break;
            }
            u->n_beam = 1;
            if (p->scorer == PULSE_TOT_SCORER_LIKELIHOOD)
                st = make_title(tok, R.chat, in[i].chosen, &u->title, &u->n_title);
            else if (nb < 1024) {
                btxt[nb] = in[i].behaviour;
                bdst[nb++] = u->bvec;
            }
            u->state = U_EXPAND;
        }
        if (!st && nb > 0) {
            float *e = malloc(sizeof(float) * (size_t)nb * (size_t)R.D);
            if (!e) st = pulse_set_error(PULSE_ERR_NOMEM, "ToT: out of memory");
            if (!st) st = pulse_thought_embed_behaviour(space, btxt, nb, e);
            for (int j = 0; j < nb && !st; j++)
                memcpy(bdst[j], e + (size_t)j * R.D, sizeof(float) * (size_t)R.D);
            free(e);
        }
        for (int k = 0; k < U && !st; k++)
            if (us[k].state == U_EXPAND) st = slot_expand(&R, &us[k]);
        if (st) break;
        int live = 0;
        for (int k = 0; k < U; k++) live += us[k].state != U_FREE;
        if (!live) break;
        if ((st = build_batch(&R, us, U))) break;
        int progressed = R.bn > 0;
        if (R.bn > 0) {
            pulse_lm_batch b = {R.bn, R.bt, R.bs, R.bw};
            if ((st = pulse_lm_decode(R.c, &b))) break;
            R.stats.decode_calls++;
            int used = pulse_lm_kv_blocks_used(R.c);
            if (used > R.stats.kv_blocks_peak) R.stats.kv_blocks_peak = used;
            if ((st = after_decode(&R, us, U))) break;
        }
        /* levels that completed: texts, duplicates, scores, selection */
        int any_thought = 0;
        for (int k = 0; k < U && !st; k++) {
            uslot *u = &us[k];
            if (u->state != U_SCORE || u->texts_done) continue;
            u->texts_done = 1;
            int nv = level_texts(&R, u, &st);
            if (st) break;
            if (nv == 0)
                u->state = U_SELECT;
            else if (p->scorer == PULSE_TOT_SCORER_LIKELIHOOD)
                st = start_likelihood(&R, u);
            else
                any_thought = 1;
        }
        if (!st && any_thought) {
            st = score_thought(&R, us, U);
            for (int k = 0; k < U; k++)
                if (us[k].state == U_SCORE) us[k].state = U_SELECT;
        }
        for (int k = 0; k < U && !st; k++)
            if (us[k].state == U_SELECT) {
                progressed = 1;
                int was = us[k].in;
                st = slot_select(&R, &us[k], done, ud);
                if (us[k].state == U_FREE && was >= 0) finished++;
            }
        if (st) break;
        if (!progressed) {
            for (int k = 0; k < U; k++) progressed |= us[k].state == U_SCORE && !us[k].texts_done;
            if (!progressed) {
                st = pulse_set_error(PULSE_ERR_STATE, "ToT: internal error: the search made no progress");
                break;
            }
        }
        {
            char extra[96];
            double el = pulse_now() - t_start;
            snprintf(extra, sizeof extra, "%.1f gen tok/s", el > 0 ? R.stats.gen_tokens / el : 0.0);
            pulse_progress_update(&pg, (size_t)finished, extra);
        }
    }
    {
        char extra[96];
        double el = pulse_now() - t_start;
        snprintf(extra, sizeof extra, "%.1f gen tok/s", el > 0 ? R.stats.gen_tokens / el : 0.0);
        pulse_progress_end(&pg, (size_t)finished, extra);
    }
out:
    R.stats.seconds = pulse_now() - t_start;
    R.stats.gen_tok_s = R.stats.seconds > 0 ? R.stats.gen_tokens / R.stats.seconds : 0;
    if (stats) *stats = R.stats;
    for (int k = 0; us && k < U; k++) {
        if (us[k].beam && us[k].br && R.c) slot_release(&R, &us[k]);
        for (int i = 0; us[k].br && i < S; i++) {
            free(us[k].br[i].toks.t);
            free(us[k].br[i].sc_feed.t);
            pulse_lm_sampler_free(us[k].br[i].smp);
        }
        free(us[k].beam);
        free(us[k].br);
        free(us[k].bvec);
    }
    free(us);
    for (int i = 0; R.prefix && i < n; i++) free(R.prefix[i]);
    free(R.prefix);
    free(R.n_prefix);
    for (int k = 0; k < 64; k++) free(R.marker[k]);
    free(R.question);
    free(R.bt);
    free(R.bs);
    free(R.bw);
    pulse_lm_ctx_free(R.c);
    return st;
}
