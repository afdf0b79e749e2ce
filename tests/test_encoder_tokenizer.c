/* tests/test_encoder_tokenizer.c — WordPiece tokenizer rules on a small hand-made vocabulary: greedy
 * longest-match with "##", [UNK] for unmatched words and words over 100 characters, punctuation isolation,
 * CJK splitting, lower-casing and accent stripping switched by tokenizer_config.json / tokenizer.json,
 * control-character cleanup, special tokens matched verbatim, truncation, and random bytes (invalid UTF-8,
 * 1 MB input) without a crash. */
#include <unistd.h>

#include "encoder/wordpiece.h"
#include "test.h"

static const char *VOCAB[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un",   "##aff", "##able",
                              "un##",  "aff",   "able",  "a",     "b",      "c",    "##b",   "##c",
                              ",",     ".",     "!",     "hello", "world",  "cafe", "café",  "Hello",
                              "中",    "国",    "x",     "##x",   "i",      "̇",     "$"};
#define NV ((int)(sizeof VOCAB / sizeof VOCAB[0]))

static char dir[256];

static void write_vocab(const char *config_json) {
    char p[400];
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < NV; i++) fprintf(f, "%s\n", VOCAB[i]);
    fclose(f);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    if (config_json) {
        f = fopen(p, "w");
        fputs(config_json, f);
        fclose(f);
    }
}

static int id_of(const char *tok) {
    for (int i = 0; i < NV; i++)
        if (strcmp(VOCAB[i], tok) == 0) return i;
    return -1;
}

/* expect: space-separated tokens between [CLS] and [SEP] */
static void expect(const pulse_wordpiece *wp, const char *text, const char *want, int max_tokens) {
    int ids[256];
    int n = pulse_wordpiece_encode(wp, text, ids, max_tokens);
    int w[256], nw = 0;
    w[nw++] = id_of("[CLS]");
    char buf[512];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *s = strtok(buf, " "); s; s = strtok(NULL, " ")) w[nw++] = id_of(s);
    w[nw++] = id_of("[SEP]");
    int same = n == nw;
    for (int i = 0; same && i < n; i++) same = ids[i] == w[i];
    CHECK_MSG(same, "'%s' -> %d ids, expected '%s'", text, n, want);
    if (!same) {
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", ids[i] >= 0 && ids[i] < NV ? VOCAB[ids[i]] : "?");
        fprintf(stderr, "\n");
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/pulse_test_wp_%d", (int)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    pulse_wordpiece wp;

    /* uncased (default): lower-case + strip accents */
    write_vocab(NULL);
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    CHECK(wp.lowercase == 1 && wp.strip_accents == 1 && wp.chinese == 1);
    expect(&wp, "unaffable", "un ##aff ##able", 128);
    expect(&wp, "UnAffAble!", "un ##aff ##able !", 128);
    expect(&wp, "hello, world.", "hello , world .", 128);
    expect(&wp, "Café", "cafe", 128);     /* accent stripped, then "cafe" */
    expect(&wp, "bcx", "b ##c ##x", 128); /* greedy longest match */
    expect(&wp, "abz", "[UNK]", 128);     /* one unmatched piece -> the whole word is [UNK] */
    expect(&wp, "中国x", "中 国 x", 128); /* CJK ideographs split */
    expect(&wp, "a\tb\nc\r\x01\x7f", "a b c", 128);
    expect(&wp,
           "a\xe2\x80\x8b"
           "b",
           "a ##b", 128); /* U+200B (Cf) removed: one word "ab" */
    expect(&wp, "x[SEP]x [MASK]", "x [SEP] x [MASK]", 128);
    expect(&wp, "[sep]", "[UNK] [UNK] [UNK]", 128); /* lower-case is not the special token: "[" "sep" "]" */
    expect(&wp, "$a", "$ a", 128);                  /* ASCII symbols count as punctuation */
    expect(&wp, "İ", "i", 128);                     /* NFD (I + U+0307), the mark dropped, then lower-cased */
    expect(&wp, "", "", 128);
    expect(&wp, "a b c a b c", "a b c", 5); /* truncation: [CLS] + 3 + [SEP] */
    {
        char longw[202];
        memset(longw, 'x', 101);
        longw[101] = 0;
        expect(&wp, longw, "[UNK]", 128); /* over 100 characters */
        longw[100] = 0;
        int ids[128];
        int n = pulse_wordpiece_encode(&wp, longw, ids, 128);
        CHECK(n == 102 && ids[1] == id_of("x") && ids[2] == id_of("##x"));
    }
    /* random bytes and a 1 MB input: no crash, [CLS] first, [SEP] last, ids in range */
    pulse_rng r;
    pulse_rng_seed(&r, 3);
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        char s[97];
        int len = (int)pulse_rng_below(&r, 96);
        for (int i = 0; i < len; i++) s[i] = (char)(1 + pulse_rng_below(&r, 255));
        s[len] = 0;
        int ids[64];
        int n = pulse_wordpiece_encode(&wp, s, ids, 64);
        if (n < 2 || n > 64 || ids[0] != id_of("[CLS]") || ids[n - 1] != id_of("[SEP]")) bad++;
        for (int i = 0; i < n; i++) bad += ids[i] < 0 || ids[i] >= NV;
    }
    CHECK(bad == 0);
    char *big = malloc(1 << 20);
    for (int i = 0; i < (1 << 20) - 1; i++) big[i] = "ab c,\xc3\xa9"[i % 7];
    big[(1 << 20) - 1] = 0;
    int ids[128];
    CHECK(pulse_wordpiece_encode(&wp, big, ids, 128) == 128);
    free(big);
    pulse_wordpiece_free(&wp);

    /* cased: no lower-casing, no accent stripping */
    write_vocab("{\"do_lower_case\": false}");
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    CHECK(wp.lowercase == 0 && wp.strip_accents == 0);
    expect(&wp, "Hello café", "Hello café", 128);
    expect(&wp, "hello Café", "hello [UNK]", 128);
    pulse_wordpiece_free(&wp);
    /* lower-case but keep accents */
    write_vocab("{\"do_lower_case\": true, \"strip_accents\": false}");
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    expect(&wp, "CAFÉ", "café", 128);
    pulse_wordpiece_free(&wp);

    /* tokenizer.json takes precedence, with its normalizer options */
    char p[400];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    FILE *f = fopen(p, "w");
    fputs(
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"[PAD]\"}, {\"id\": 2, \"content\": \"[CLS]\"}, "
        "{\"id\": 3, \"content\": \"[SEP]\"}, {\"id\": 1, \"content\": \"[UNK]\"}],"
        "\"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true, \"handle_chinese_chars\": true,"
        " \"strip_accents\": null, \"lowercase\": false},"
        "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": "
        "\"##\","
        " \"max_input_chars_per_word\": 3, \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": "
        "3,"
        " \"a\": 11, \"b\": 12, \"##b\": 14, \"Hello\": 23}}}",
        f);
    fclose(f);
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    CHECK(wp.lowercase == 0 && wp.strip_accents == 0 && wp.max_chars == 3);
    {
        int out[16];
        int n = pulse_wordpiece_encode(&wp, "Hello abb abbb", out, 16);
        /* "Hello" has 5 characters > 3 -> [UNK]; "abb" -> a ##b ##b; "abbb" (4 chars) -> [UNK] */
        int want[] = {2, 1, 11, 14, 14, 1, 3};
        CHECK(n == 7 && memcmp(out, want, sizeof want) == 0);
    }
    pulse_wordpiece_free(&wp);

    /* repeats and gaps, as HF reads them: a repeated token maps to its last id, a repeated id keeps its
     * first token, an id no entry names has no token unless added_tokens fills it */
    f = fopen(p, "w");
    fputs("{\"added_tokens\": [{\"id\": 7, \"content\": \"[NEW]\"}, {\"id\": 5, \"content\": \"[X]\"}],"
          "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[PAD]\": 0, "
          "\"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"cat\": 4, \"dog\": 5, \"bird\": 5, \"cat\": 6, "
          "\"end\": 9}}}",
          f);
    fclose(f);
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    CHECK(wp.n_vocab == 10);
    CHECK(pulse_wordpiece_lookup(&wp, "cat", 3) == 6);
    CHECK(pulse_wordpiece_lookup(&wp, "dog", 3) == 5 && pulse_wordpiece_lookup(&wp, "bird", 4) == -1);
    CHECK(pulse_wordpiece_lookup(&wp, "[X]", 3) == -1); /* id 5 is dog's */
    CHECK(!strcmp(pulse_wordpiece_token(&wp, 4), "cat") && !strcmp(pulse_wordpiece_token(&wp, 5), "dog"));
    CHECK(!strcmp(pulse_wordpiece_token(&wp, 7), "[NEW]") && pulse_wordpiece_lookup(&wp, "[NEW]", 5) == 7);
    CHECK(pulse_wordpiece_token(&wp, 8) == NULL && pulse_wordpiece_token(&wp, 10) == NULL);
    CHECK(pulse_wordpiece_lookup(&wp, "", 0) == -1); /* the gap's "" is no key */
    {
        int out[8];
        int n = pulse_wordpiece_encode(&wp, "cat dog [NEW]", out, 8);
        int want[] = {2, 6, 5, 7, 3};
        CHECK(n == 5 && memcmp(out, want, sizeof want) == 0);
    }
    pulse_wordpiece_free(&wp);
    unlink(p);
    /* vocab.txt: a repeated line maps to its last line, an empty line is the token "" */
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    f = fopen(p, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\n\ncat\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    CHECK_OK(pulse_wordpiece_load(&wp, dir));
    CHECK(wp.n_vocab == 7 && pulse_wordpiece_lookup(&wp, "cat", 3) == 6);
    CHECK(pulse_wordpiece_token(&wp, 5) != NULL && pulse_wordpiece_lookup(&wp, "", 0) == 5);
    pulse_wordpiece_free(&wp);

    /* errors */
    CHECK(pulse_wordpiece_load(&wp, "/nonexistent") != PULSE_OK);
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    f = fopen(p, "w");
    fputs("a\nb\n", f);
    fclose(f);
    CHECK(pulse_wordpiece_load(&wp, dir) == PULSE_ERR_FORMAT); /* no [CLS]/[SEP]/[UNK] */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
