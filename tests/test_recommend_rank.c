/* tests/test_recommend_rank.c — the decoders on a tiny synthetic llama model with a byte-level tokenizer and
 * a ChatML template: the rank decoder (prompts of several users in one batch, every title forked from its
 * prompt's KV) equals scoring each (prompt, title) pair on its own with pulse_lm_score, for several batch
 * sizes, chat and raw; the generate decoder gives the same outputs whatever the number of users in flight;
 * `pulse lm train`'s reader tokenizes a "chat" line exactly as the decoders tokenize the prompt. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_synth.h"
#include "pulse/recommend.h"
#include "test.h"

#define NP 5
#define NK 4

int main(void) {
    pulse_progress_set_quiet(1);
    char dir[] = "/tmp/pulse_recrankXXXXXX", model[256], sft[256], cmd[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(sft, sizeof sft, "%s/sft.jsonl", dir);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 2048}) == 0);

    const char *titles[NP * NK];
    char tb[NP * NK][48];
    static const char *words[] = {"glitter",        "nail polish", "shampoo",
                                  "matte lipstick", "hair clip",   "serum"};
    for (int i = 0; i < NP * NK; i++) {
        snprintf(tb[i], sizeof tb[i], "%s %d%s", words[i % 6], i, i % 3 ? "" : ", 8 oz");
        titles[i] = tb[i];
    }
    const char *hist[] = {"Old brush", "Red polish <|im_end|>", "Blue shadow"};
    pulse_rec_prompt pr[NP];
    for (int i = 0; i < NP; i++)
        CHECK_OK(pulse_rec_prompt_from_titles(hist, 1 + i % 3, titles + i * NK, NK, NULL, NULL, &pr[i]));

    /* the reference: each pair alone */
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lm_ctx *c = NULL;
    CHECK_OK(pulse_lm_load(model, NULL, &m));
    if (m) CHECK_OK(pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok));
    pulse_lm_ctx_params cp = pulse_lm_ctx_default_params();
    cp.n_ctx = 1024;
    cp.n_seq_max = 4;
    if (m) CHECK_OK(pulse_lm_ctx_new(m, &cp, &c));
    if (!m || !tok || !c) return test_summary();
    for (int chat = 1; chat >= 0; chat--) {
        double ref[NP * NK];
        int ref_n[NP * NK];
        for (int i = 0; i < NP; i++) {
            int *pi = NULL, np = 0;
            CHECK_OK(pulse_rec_prompt_tokenize(tok, chat, &pr[i], &pi, &np));
            for (int j = 0; j < NK; j++) {
                char *q = pulse_rec_quoted(titles[i * NK + j]);
                int *ci = NULL, nc = 0;
                CHECK_OK(pulse_lm_tokenize_alloc(tok, q, 0, 0, &ci, &nc));
                const int *pp = pi, *cc = ci;
                CHECK_OK(pulse_lm_score(c, &pp, &np, &cc, &nc, 1, &ref[i * NK + j]));
                ref_n[i * NK + j] = nc;
                free(q);
                free(ci);
            }
            free(pi);
        }
        for (int par = 1; par <= 6; par += 2) {
            pulse_rec_params rp = pulse_rec_default_params();
            rp.parallel = par;
            rp.prompt.chat = chat;
            pulse_recommender *r = NULL;
            CHECK_OK(pulse_recommender_new(model, NULL, &rp, &r));
            if (!r) continue;
            CHECK(pulse_recommender_chat(r) == chat);
            double lp[NP * NK];
            int nt[NP * NK];
            CHECK_OK(pulse_rec_rank(r, pr, NP, titles, NK, lp, nt));
            double worst = 0;
            int n_ok = 1;
            for (int i = 0; i < NP * NK; i++) {
                double d = fabs(lp[i] - ref[i]) / (1 + fabs(ref[i]));
                if (d > worst) worst = d;
                n_ok &= nt[i] == ref_n[i];
            }
            CHECK_MSG(worst < 1e-4 && n_ok, "chat %d parallel %d: worst relative difference %.3g", chat, par,
                      worst);
            if (par == 1)
                printf("rank == separate scoring (chat %d): worst relative difference %.3g\n", chat, worst);

            /* generate: the same outputs with 1 or 5 users in flight, seeds per user */
            uint64_t seeds[NP] = {1, 2, 3, 4, 5};
            char *o1[NP], *o2[NP];
            CHECK_OK(pulse_rec_generate(r, pr, NP, seeds, 12, o1));
            pulse_rec_params rp1 = rp;
            rp1.parallel = 5;
            rp1.temp = rp.temp;
            pulse_recommender *r5 = NULL;
            CHECK_OK(pulse_recommender_new(model, NULL, &rp1, &r5));
            if (r5) CHECK_OK(pulse_rec_generate(r5, pr, NP, seeds, 12, o2));
            int same = r5 != NULL;
            for (int i = 0; r5 && i < NP; i++) {
                same &= o1[i] && o2[i] && strcmp(o1[i], o2[i]) == 0;
                free(o2[i]);
            }
            for (int i = 0; i < NP; i++) free(o1[i]);
            CHECK(same);
            pulse_recommender_free(r5);
            pulse_recommender_free(r);
        }
    }

    /* the SFT reader builds the same prompt tokens from a "chat" line */
    pulse_rec_prompt tp;
    CHECK_OK(pulse_rec_prompt_from_titles(hist, 3, titles, NK, "Likes shine.", titles[2], &tp));
    char *raw = pulse_rec_prompt_raw(&tp);
    FILE *f = fopen(sft, "w");
    CHECK(f != NULL);
    if (f && raw) {
        /* JSON-escape the few characters these texts hold */
        const char *parts[4] = {raw, tp.completion, tp.user, tp.prefix};
        char esc[4][4096];
        for (int k = 0; k < 4; k++) {
            size_t o = 0;
            for (const char *s = parts[k]; *s && o < sizeof esc[k] - 3; s++) {
                if (*s == '"' || *s == '\\') esc[k][o++] = '\\';
                if (*s == '\n') {
                    esc[k][o++] = '\\';
                    esc[k][o++] = 'n';
                } else
                    esc[k][o++] = *s;
            }
            esc[k][o] = 0;
        }
        fprintf(f,
                "{\"prompt\":\"%s\",\"completion\":\"%s\",\"chat\":{\"user\":\"%s\",\"assistant\":\"%s\"}}\n",
                esc[0], esc[1], esc[2], esc[3]);
        fprintf(f, "{\"prompt\":\"%s\",\"completion\":\"%s\"}\n", esc[0], esc[1]);
        fclose(f);
    }
    pulse_lm_sft s;
    CHECK_OK(pulse_lm_sft_read(sft, m, tok, 1, 0, &s));
    if (s.n == 2) {
        for (int chat = 1; chat >= 0; chat--) {
            const pulse_lm_example *e = &s.ex[chat ? 0 : 1];
            int *pi = NULL, np = 0, *ci = NULL, nc = 0;
            CHECK_OK(pulse_rec_prompt_tokenize(tok, chat, &tp, &pi, &np));
            CHECK_OK(pulse_lm_tokenize_alloc(tok, tp.completion, 0, 0, &ci, &nc));
            CHECK_MSG(e->n_prompt == np && !memcmp(e->tokens, pi, sizeof(int) * (size_t)np), "chat %d prompt",
                      chat);
            CHECK(e->n_tokens == np + nc + 1 && !memcmp(e->tokens + np, ci, sizeof(int) * (size_t)nc));
            free(pi);
            free(ci);
        }
        pulse_lm_sft_free(&s);
    } else
        CHECK(s.n == 2);
    /* a malformed "chat" is refused with the line */
    f = fopen(sft, "w");
    if (f) {
        fprintf(f, "{\"prompt\":\"p\",\"completion\":\"c\",\"chat\":{\"assistant\":\"a\"}}\n");
        fclose(f);
    }
    CHECK(pulse_lm_sft_read(sft, m, tok, 1, 0, &s) == PULSE_ERR_PARSE);
    CHECK(strstr(pulse_last_error(), "sft.jsonl:1") != NULL);
    free(raw);
    pulse_rec_prompt_free(&tp);
    for (int i = 0; i < NP; i++) pulse_rec_prompt_free(&pr[i]);
    pulse_lm_ctx_free(c);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
