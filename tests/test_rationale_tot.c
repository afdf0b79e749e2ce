/* tests/test_rationale_tot.c — Phase 2 (Tree-of-Thought) search logic on a tiny synthetic decoder with a
 * byte-level tokenizer (tests/lm_synth.h) and a tiny untrained encoder as the Thought Space
 * (tests/tiny_encoder.h):
 *   - the tree's shape: branching children per kept node, at most beam nodes kept, depth levels;
 *   - duplicate (and empty) thoughts are dropped: greedy siblings are all duplicates of the first;
 *   - forking the parent's KV and re-prefilling every branch give the same thoughts and scores, fewer
 * prompt tokens and KV blocks with forks; the same seed gives the same trees whether users run together or
 * one at a time (which takes far more forwards: all users' branches share each decode), another seed other
 * trees;
 *   - the LIKELIHOOD scorer equals pulse_lm_score of the chosen title after the kept context + question;
 *   - the chosen item never appears in a node's context. */
#include <unistd.h>

#include "lm_synth.h"
#include "pulse/kernels.h"
#include "pulse/lm.h"
#include "pulse/thought.h"
#include "pulse/rationale.h"
#include "test.h"
#include "tiny_encoder.h"

static char dir[256];

enum { NU = 4 };
typedef struct {
    pulse_tot_result r[NU];
} results;

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static pulse_status keep_cb(void *ud, int i, const pulse_tot_result *r) {
    results *out = ud;
    if (i < 0 || i >= NU) return PULSE_ERR_RANGE;
    out->r[i] = *r;
    out->r[i].chain = dup_or_null(r->chain);
    out->r[i].raw = dup_or_null(r->raw);
    out->r[i].context = dup_or_null(r->context);
    out->r[i].context_ids = NULL;
    out->r[i].thoughts = NULL;
    out->r[i].n_thoughts = 0; /* set below with the copies */
    if (r->n_context_ids > 0) {
        out->r[i].context_ids = malloc(sizeof(int) * (size_t)r->n_context_ids);
        memcpy(out->r[i].context_ids, r->context_ids, sizeof(int) * (size_t)r->n_context_ids);
    }
    if (r->n_thoughts > 0) {
        out->r[i].thoughts = calloc((size_t)r->n_thoughts, sizeof(char *));
        for (int k = 0; k < r->n_thoughts; k++) out->r[i].thoughts[k] = strdup(r->thoughts[k]);
    }
    out->r[i].n_thoughts = r->n_thoughts;
    return PULSE_OK;
}

static void free_results(results *x) {
    for (int i = 0; i < NU; i++) pulse_tot_result_free(&x->r[i]);
}

static const char *PROMPTS[NU] = {
    "History: red nail polish. Similar: oil.",
    "History: cat, mat. Similar: dog.",
    "History: a b c. Similar: none.",
    "History: skin oil. Similar: mat.",
};
static const char *CHOSEN[NU] = {"ZQXJ Velvet Serum", "QQZX Matte Lipstick", "XJQZ Glow Drops", "JQXZ Cream"};

static void make_inputs(pulse_tot_input *in, char beh[NU][256], char user[NU][16]) {
    for (int i = 0; i < NU; i++) {
        snprintf(user[i], sizeof user[i], "u%d", i);
        snprintf(beh[i], sizeof beh[i], "[CONTEXT] History: red nail polish [CHOSEN_ITEM] %s", CHOSEN[i]);
        in[i] = (pulse_tot_input){user[i], PROMPTS[i], beh[i], CHOSEN[i]};
    }
}

/* per depth: lines, candidates kept (scored), duplicates and empties; returns levels seen */
static int parse_raw(const char *raw, int lines[8], int scored[8], int dups[8]) {
    memset(lines, 0, sizeof(int) * 8);
    memset(scored, 0, sizeof(int) * 8);
    memset(dups, 0, sizeof(int) * 8);
    int levels = 0;
    for (const char *l = raw; l && *l;) {
        int d = 0, nd = 0, b = 0;
        char what[32] = {0};
        if (sscanf(l, "d%d n%d b%d %31[^:]:", &d, &nd, &b, what) == 4 && d >= 1 && d < 8) {
            lines[d]++;
            if (!strcmp(what, "dup") || !strcmp(what, "empty"))
                dups[d]++;
            else
                scored[d]++;
            if (d > levels) levels = d;
        }
        const char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : l + strlen(l);
    }
    return levels;
}

static void check_shape(const results *x, const pulse_tot_params *p, const char *what) {
    for (int i = 0; i < NU; i++) {
        const pulse_tot_result *r = &x->r[i];
        int lines[8], scored[8], dups[8];
        int levels = parse_raw(r->raw, lines, scored, dups);
        CHECK_MSG(levels >= 1 && levels <= p->depth, "%s user %d: %d levels", what, i, levels);
        CHECK_MSG(lines[1] == p->branching, "%s user %d: %d first-level thoughts", what, i, lines[1]);
        int cand = 0, dd = 0;
        for (int d = 1; d <= levels; d++) {
            cand += lines[d];
            dd += dups[d];
            if (d > 1) {
                int kept = scored[d - 1] < p->beam ? scored[d - 1] : p->beam;
                CHECK_MSG(lines[d] == kept * p->branching, "%s user %d depth %d: %d thoughts from %d kept",
                          what, i, d, lines[d], kept);
            }
        }
        CHECK_MSG(r->candidates == cand && r->duplicates == dd, "%s user %d: candidates %d/%d dups %d/%d",
                  what, i, r->candidates, cand, r->duplicates, dd);
        /* a chain has one thought per level that had a scored candidate */
        int full = 0;
        while (full < levels && scored[full + 1] > 0) full++;
        CHECK_MSG(r->ok == (full > 0) && r->n_thoughts == full,
                  "%s user %d: ok %d with %d thoughts, %d levels", what, i, r->ok, r->n_thoughts, full);
        CHECK(r->gen_tokens > 0 && r->prompt_tokens > 0);
        /* the chosen item never in a node's context; the prompt always */
        CHECK_MSG(!r->context || !strstr(r->context, CHOSEN[i]), "%s user %d: chosen item in the context",
                  what, i);
        CHECK_MSG(!r->ok || (r->context && strstr(r->context, PROMPTS[i])), "%s user %d: prompt missing",
                  what, i);
    }
}

/* a thought's text on a raw line */
static const char *line_text(const char *l, size_t *n) {
    const char *c = strstr(l, ": ");
    const char *nl = strchr(l, '\n');
    if (!c || (nl && c > nl)) {
        *n = 0;
        return l;
    }
    c += 2;
    *n = nl ? (size_t)(nl - c) : strlen(c);
    return c;
}

static void test_search(const char *model, const char *enc) {
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_thought_space *space = NULL;
    CHECK_OK(pulse_lm_load(model, NULL, &m));
    CHECK_OK(pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok));
    CHECK_OK(pulse_thought_space_load(enc, NULL, &space));
    if (!m || !tok || !space) goto done;
    pulse_tot_input in[NU];
    char beh[NU][256], user[NU][16];
    make_inputs(in, beh, user);

    pulse_tot_params p = pulse_tot_default_params();
    p.max_thought_tokens = 16;
    p.parallel = 3; /* 4 users, 3 slots: one joins when another leaves */
    results a = {0}, b = {0}, c = {0}, s2 = {0};
    pulse_tot_stats sa, sb;
    CHECK_OK(pulse_tot_run(m, tok, space, in, NU, &p, keep_cb, &a, &sa));
    check_shape(&a, &p, "fork");
    CHECK(sa.users_ok + sa.users_failed == NU && sa.gen_tokens > 0 && sa.decode_calls > 0);

    /* fork off: the same trees, more prompt tokens */
    pulse_tot_params q = p;
    q.fork = 0;
    CHECK_OK(pulse_tot_run(m, tok, space, in, NU, &q, keep_cb, &b, &sb));
    check_shape(&b, &q, "no-fork");
    for (int i = 0; i < NU; i++) {
        CHECK_MSG(a.r[i].raw && b.r[i].raw && !strcmp(a.r[i].raw, b.r[i].raw),
                  "user %d: forked and re-prefilled trees differ:\n%s\n--\n%s", i, a.r[i].raw, b.r[i].raw);
        CHECK(a.r[i].gen_tokens == b.r[i].gen_tokens);
        CHECK_MSG(a.r[i].prompt_tokens < b.r[i].prompt_tokens, "user %d: prompt tokens %d (fork) vs %d", i,
                  a.r[i].prompt_tokens, b.r[i].prompt_tokens);
    }
    CHECK(sa.prompt_tokens < sb.prompt_tokens && sa.gen_tokens == sb.gen_tokens);
    /* forks share the prompt's KV blocks: fewer in use at the peak */
    CHECK_MSG(sa.kv_blocks_peak < sb.kv_blocks_peak, "KV blocks at the peak: %d (fork) vs %d",
              sa.kv_blocks_peak, sb.kv_blocks_peak);

    /* the same seed again, one user at a time: the same trees (a user's samplers do not depend on its
     * batch-mates); another seed: other trees */
    pulse_tot_params one = p;
    one.parallel = 1;
    pulse_tot_stats sc;
    CHECK_OK(pulse_tot_run(m, tok, space, in, NU, &one, keep_cb, &c, &sc));
    /* users in flight share every decode: with 3 at a time far fewer forwards than one at a time */
    CHECK_MSG(sa.decode_calls * 2 < sc.decode_calls, "decode calls %ld (3 users in flight) vs %ld (1)",
              sa.decode_calls, sc.decode_calls);
    pulse_tot_params other = p;
    other.seed = 7;
    CHECK_OK(pulse_tot_run(m, tok, space, in, NU, &other, keep_cb, &s2, NULL));
    int same_other = 0;
    for (int i = 0; i < NU; i++) {
        CHECK_MSG(c.r[i].raw && !strcmp(a.r[i].raw, c.r[i].raw), "user %d: parallel 3 vs 1 differ", i);
        same_other += s2.r[i].raw && !strcmp(a.r[i].raw, s2.r[i].raw);
        if (getenv("TOT_SHOW")) printf("user %d:\n%s\nseed 7:\n%s\n", i, a.r[i].raw, s2.r[i].raw);
    }
    CHECK_MSG(same_other <= 1, "%d of %d users have the same tree with another seed", same_other, NU);
    free_results(&a);
    free_results(&b);
    free_results(&c);
    free_results(&s2);

    /* greedy: every sibling repeats the first child, so all but one per expanded node are duplicates */
    pulse_tot_params g = p;
    g.temp = 0;
    results gr = {0};
    CHECK_OK(pulse_tot_run(m, tok, space, in, NU, &g, keep_cb, &gr, NULL));
    check_shape(&gr, &g, "greedy");
    for (int i = 0; i < NU; i++) {
        int lines[8], scored[8], dups[8];
        int levels = parse_raw(gr.r[i].raw, lines, scored, dups);
        for (int d = 1; d <= levels; d++)
            CHECK_MSG(scored[d] <= 1 && dups[d] >= g.branching - 1,
                      "greedy user %d depth %d: %d scored %d dups", i, d, scored[d], dups[d]);
        /* each dup line's text equals an earlier line's text */
        for (const char *l = gr.r[i].raw; l && *l;) {
            const char *nl = strchr(l, '\n');
            if (strstr(l, " dup: ") && (!nl || strstr(l, " dup: ") < nl)) {
                size_t n;
                const char *t = line_text(l, &n);
                int found = 0;
                for (const char *e = gr.r[i].raw; e < l && !found;) {
                    size_t en;
                    const char *et = line_text(e, &en);
                    found = en == n && !memcmp(et, t, n);
                    const char *enl = strchr(e, '\n');
                    e = enl ? enl + 1 : l;
                }
                CHECK_MSG(found, "greedy user %d: a dup with no earlier twin: %.*s", i, (int)n, t);
            }
            l = nl ? nl + 1 : l + strlen(l);
        }
    }
    free_results(&gr);

    /* LIKELIHOOD: the kept chain's score is pulse_lm_score(context + question, title) / title tokens, with
     * forks and without */
    for (int fk = 1; fk >= 0; fk--) {
        pulse_tot_params lp = p;
        lp.scorer = PULSE_TOT_SCORER_LIKELIHOOD;
        lp.fork = fk;
        results lr = {0};
        CHECK_OK(pulse_tot_run(m, tok, NULL, in, NU, &lp, keep_cb, &lr, NULL));
        check_shape(&lr, &lp, fk ? "likelihood fork" : "likelihood no-fork");
        pulse_lm_ctx *ctx = NULL;
        pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
        cp.n_ctx = 1024;
        CHECK_OK(pulse_lm_ctx_new(m, &cp, &ctx));
        for (int i = 0; ctx && i < NU; i++) {
            if (!lr.r[i].ok) continue;
            int *qi = NULL, nq = 0, *ti = NULL, nt = 0;
            CHECK_OK(pulse_tot_tokens(tok, &lp, &in[i], NULL, NULL, 0, NULL, NULL, &qi, &nq, &ti, &nt));
            int np = lr.r[i].n_context_ids + nq;
            int *pr = malloc(sizeof(int) * (size_t)np);
            memcpy(pr, lr.r[i].context_ids, sizeof(int) * (size_t)lr.r[i].n_context_ids);
            memcpy(pr + lr.r[i].n_context_ids, qi, sizeof(int) * (size_t)nq);
            const int *pp[1] = {pr}, *cc[1] = {ti};
            double lpv = 0;
            CHECK_OK(pulse_lm_score(ctx, pp, &np, cc, &nt, 1, &lpv));
            CHECK_NEAR(lr.r[i].score, lpv / nt, 2e-3);
            /* the kept context never holds the title's tokens: the question and title went to a fork */
            int holds = 0;
            for (int k = 0; k + nt <= lr.r[i].n_context_ids && nt > 0; k++)
                holds |= !memcmp(lr.r[i].context_ids + k, ti, sizeof(int) * (size_t)nt);
            CHECK(!holds);
            free(pr);
            free(qi);
            free(ti);
        }
        pulse_lm_ctx_free(ctx);
        free_results(&lr);
    }

    /* bad parameters are refused, naming them */
    pulse_tot_params bad = p;
    bad.beam = 0;
    CHECK(pulse_tot_run(m, tok, space, in, NU, &bad, keep_cb, &a, NULL) == PULSE_ERR_ARG &&
          strstr(pulse_last_error(), "beam 0"));
    CHECK(pulse_tot_run(m, tok, NULL, in, NU, &p, keep_cb, &a, NULL) == PULSE_ERR_ARG &&
          strstr(pulse_last_error(), "Thought Space"));
done:
    pulse_thought_space_free(space);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
}

int main(void) {
    pulse_progress_set_quiet(1);
    /* the BLAS at this CPU's level, as every pulse tool sets it up: the Thought-Space scores (fp32 encoder
     * products where bf16 is not the faster, PULSE_PREC_AUTO) are then the same bits whatever the batch a
     * chain is encoded in, so a user's tree does not depend on --parallel; OpenBLAS's SSE2 (Prescott)
     * kernels, which a process that skips this runs on a CPU newer than its table, round some rows of a
     * product differently by the batch's shape */
    pulse_blas_select(NULL, NULL);
    snprintf(dir, sizeof dir, "/tmp/pulse_test_tot_%d", (int)getpid());
    char cmd[512], model[300], enc[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.name = "tot";
    cfg.V = SYNTH_TOK_V;
    snprintf(model, sizeof model, "%s/tot.gguf", dir);
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 1024}) == 0);
    snprintf(enc, sizeof enc, "%s/enc", dir);
    CHECK(write_model(enc, 0, 32, 2, 1, 64, 128, 5));
    test_search(model, enc);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
