/* tests/test_recommend_text.c — the recommender's title text: HTML entities (named, decimal, hex, unknown and
 * unterminated ones left alone), the authors' match normalisation (lower-case, punctuation and symbols
 * stripped as Python's [^\w\s], spaces collapsed), the generate decoder's hit rule, display titles, and the
 * prompts (authors' structure; the rationale's full stop not doubled; control-token text stays text). */
#include <stdlib.h>
#include <string.h>

#include "lm_synth.h"
#include "pulse/recommend.h"
#include "test.h"

static int str_is(char *got, const char *want) {
    int ok = got && strcmp(got, want) == 0;
    if (!ok) printf("  got '%s', want '%s'\n", got ? got : "(null)", want);
    free(got);
    return ok;
}

int main(void) {
    /* entities */
    CHECK(str_is(pulse_html_unescape("Tom &amp; Jerry &lt;b&gt; &quot;x&quot; &#39;y&#39;"),
                 "Tom & Jerry <b> \"x\" 'y'"));
    CHECK(str_is(pulse_html_unescape("caf&#233; &#x263A; &eacute;"), "caf\xc3\xa9 \xe2\x98\xba \xc3\xa9"));
    CHECK(str_is(pulse_html_unescape("&unknown; & &amp &#; &#xZZ;"), "&unknown; & &amp &#; &#xZZ;"));
    CHECK(str_is(pulse_html_unescape("&amp;amp;"), "&amp;")); /* once, as html.unescape */
    /* normalisation */
    CHECK(str_is(pulse_rec_normalize("  OPI Nail Lacquer, Simmer &amp; Shimmer, 0.5-Fluid Ounce  "),
                 "opi nail lacquer simmer shimmer 05fluid ounce"));
    CHECK(str_is(pulse_rec_normalize("L'Or\xc3\xa9"
                                     "al\xc2\xae Paris\xe2\x84\xa2 \xe2\x80\x93 Caf\xc3\x89!!"),
                 "lor\xc3\xa9"
                 "al paris caf\xc3\xa9"));
    CHECK(str_is(pulse_rec_normalize("tab\tand\nnewline\xc2\xa0nbsp"), "tab and newline nbsp"));
    CHECK(str_is(pulse_rec_normalize("snake_case 42"), "snake_case 42"));
    CHECK(str_is(pulse_rec_normalize("!!!"), ""));
    /* the hit rule */
    CHECK(pulse_rec_title_match("Urban Decay Naked2", "The recommendation is \"urban decay NAKED2!\""));
    CHECK(pulse_rec_title_match("Tom &amp; Jerry", "I pick tom jerry."));
    CHECK(!pulse_rec_title_match("Urban Decay Naked2", "Urban Decay Naked Palette"));
    CHECK(!pulse_rec_title_match("!!!", "anything")); /* an empty normalised title never matches */
    CHECK(!pulse_rec_title_match("abc", ""));

    /* display titles on a synthetic dataset: unescaped, whitespace collapsed, cut at a UTF-8 boundary */
    pulse_synth_params sp = pulse_synth_default_params();
    sp.n_users = 20;
    sp.n_items = 30;
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (ds) {
        char *t = pulse_rec_item_title(ds, 1, 0);
        CHECK(t && *t && strcmp(t, pulse_dataset_item_title(ds, 1)) == 0);
        char *c = pulse_rec_item_title(ds, 1, 5);
        CHECK(c && strlen(c) <= 5 && strncmp(c, t, strlen(c)) == 0);
        free(t);
        free(c);
        pulse_dataset_free(ds);
    }

    /* prompts */
    const char *hist[] = {"A", "B <|im_end|>", "C"}, *cands[] = {"X", "Y"};
    pulse_rec_prompt p;
    CHECK_OK(pulse_rec_prompt_from_titles(hist, 3, cands, 2, "She likes glitter. ", "Y", &p));
    CHECK(p.user && strstr(p.user, "1. A\n2. B <|im_end|>\n3. C\nCandidates:\n- X\n- Y\n") != NULL);
    CHECK(p.prefix && strcmp(p.prefix, "Let me think: She likes glitter. The recommendation is") == 0);
    CHECK(p.completion && strcmp(p.completion, " \"Y\"") == 0);
    char *raw = pulse_rec_prompt_raw(&p);
    CHECK(raw && strstr(raw, "in quotes.\nLet me think: ") != NULL);
    free(raw);
    pulse_rec_prompt_free(&p);
    CHECK_OK(pulse_rec_prompt_from_titles(hist, 3, cands, 2, NULL, NULL, &p));
    CHECK(p.prefix && strcmp(p.prefix, "The recommendation is") == 0 && p.completion == NULL);

    /* tokenized with the chat format: the title's "<|im_end|>" stays text; raw: no control token at all */
    char dir[] = "/tmp/pulse_rectxtXXXXXX", model[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    synth_cfg cfg = SYNTH_CFGS[0];
    cfg.V = SYNTH_TOK_V;
    CHECK(synth_write_opts(&cfg, model, &(synth_opts){.tokenizer = 1, .ctx_len = 1024}) == 0);
    pulse_tokenizer *tok = NULL;
    CHECK_OK(pulse_tokenizer_load(model, &tok));
    if (tok) {
        int *ids = NULL, n = 0, n_end = 0, n_start = 0;
        CHECK_OK(pulse_rec_prompt_tokenize(tok, 1, &p, &ids, &n));
        for (int i = 0; i < n; i++) {
            n_end += ids[i] == SYNTH_TOK_IM_END;
            n_start += ids[i] == SYNTH_TOK_IM_START;
        }
        /* system (the template's default is not ChatML's SmolLM2 one here) + user turns, assistant opener */
        CHECK_MSG(n_start >= 2 && n_end == n_start - 1, "im_start %d im_end %d", n_start, n_end);
        free(ids);
        CHECK_OK(pulse_rec_prompt_tokenize(tok, 0, &p, &ids, &n));
        int ctl = 0;
        for (int i = 0; i < n; i++) ctl += ids[i] == SYNTH_TOK_IM_END || ids[i] == SYNTH_TOK_IM_START;
        CHECK(ctl == 0);
        char *txt = NULL;
        CHECK_OK(pulse_detokenize(tok, ids, n, 1, &txt, NULL));
        raw = pulse_rec_prompt_raw(&p);
        CHECK(txt && raw && strcmp(txt, raw) == 0);
        free(txt);
        free(raw);
        free(ids);
        pulse_tokenizer_free(tok);
    }
    pulse_rec_prompt_free(&p);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
