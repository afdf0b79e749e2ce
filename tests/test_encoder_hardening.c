/* tests/test_encoder_hardening.c — regression tests for encoder defects found in issue 9, each on a small
 * generated input: the inference scratch reused for a batch with more texts but fewer rows than an earlier
 * one (heap overflow of the pooled / projected / norm rows; also through `pulse thought score`);
 * tokenizer.json ids out of range or not integers (out-of-bounds read); config.json sizes that are not
 * integers; a type_vocab_size of 0 beside a token-type table; an empty vocabulary; NUL bytes in vocab.txt and
 * in the lines of `pulse encode --input`. Bad input must fail with a message naming the file and field. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encoder/wordpiece.h"
#include "pulse/encoder.h"
#include "pulse/thought.h"
#include "test.h"
#include "tiny_encoder.h"

static char tmp[] = "/tmp/pulse_enc_hardXXXXXX";

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static char *read_text(const char *path) {
    char *s = NULL;
    size_t n = 0;
    return pulse_read_file(path, &s, &n) == PULSE_OK ? s : NULL;
}

/* config.json of dir with the first `from` replaced by `to` */
static void patch_config(const char *dir, const char *from, const char *to) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *s = read_text(path);
    CHECK(s != NULL);
    if (!s) return;
    char *at = strstr(s, from);
    CHECK_MSG(at != NULL, "%s not in %s", from, path);
    if (at) {
        char out[4096];
        int n = snprintf(out, sizeof out, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
        write_file(path, out, (size_t)n);
    }
    free(s);
}

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* a batch with more texts but fewer token rows than the previous one must not reuse the scratch's pooled
 * rows (sized by the earlier batch's text count) */
static void scratch_reuse(const char *dir) {
    const char *lng =
        "the cat sat on the mat and the dog sat on the red mat, the blue cat is on it and it sat "
        "on the nail polish and the skin oil and the cat and the dog";
    const char *shrt[3] = {"a", "b c", "the cat"};
    for (int prec = 0; prec < 2; prec++) {
        pulse_encoder_params p = pulse_encoder_default_params();
        p.precision = prec ? PULSE_PREC_BF16 : PULSE_PREC_FP32;
        pulse_encoder *e = NULL, *fresh = NULL;
        CHECK_OK(pulse_encoder_load(dir, &p, &e));
        CHECK_OK(pulse_encoder_load(dir, &p, &fresh));
        if (!e || !fresh) return;
        const int D = pulse_encoder_dim(e);
        float *one = malloc(sizeof(float) * D), *got = malloc(sizeof(float) * 3 * D),
              *want = malloc(sizeof(float) * 3 * D);
        CHECK_OK(pulse_encoder_encode(e, &lng, 1, one)); /* B = 1, T ~ 50: a large scratch */
        CHECK_OK(pulse_encoder_encode(e, shrt, 3, got)); /* B = 3, T = 4: rows fit, texts do not */
        CHECK_OK(pulse_encoder_encode(fresh, shrt, 3, want));
        CHECK_MSG(memcmp(got, want, sizeof(float) * 3 * D) == 0, "precision %d: reused scratch differs",
                  prec);
        free(one), free(got), free(want);
        pulse_encoder_free(e);
        pulse_encoder_free(fresh);
    }
    /* the reported reproduction: a long behaviour then two rationales with a plain encoder folder */
    pulse_thought_space *s = NULL;
    CHECK_OK(pulse_thought_space_load(dir, NULL, &s));
    if (s) {
        const char *rats[2] = {"a", "b"};
        float cos[2] = {0, 0};
        CHECK_OK(pulse_thought_score(s, lng, rats, 2, cos));
        CHECK(isfinite(cos[0]) && isfinite(cos[1]) && fabsf(cos[0]) <= 1.0001f);
        pulse_thought_space_free(s);
    }
}

static void expect_tok_fail(const char *json, pulse_status want, const char *needle) {
    char d[512], path[600];
    snprintf(d, sizeof d, "%s/tok", tmp);
    CHECK(mkdir(d, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/tokenizer.json", d);
    write_file(path, json, strlen(json));
    pulse_wordpiece wp;
    pulse_status st = pulse_wordpiece_load(&wp, d);
    CHECK_MSG(st == want, "%s -> %d (%s)", json, (int)st, pulse_last_error());
    CHECK_MSG(strstr(pulse_last_error(), needle) != NULL, "message '%s' lacks '%s'", pulse_last_error(),
              needle);
    if (st == PULSE_OK) pulse_wordpiece_free(&wp);
}

#define TOKJ(vocab, added)                                                                                   \
    "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": " vocab "}, "                \
    "\"added_tokens\": " added "}"
#define VOC "{\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"a\": 4}"

static void tokenizer_json(void) {
    /* an added token's id far beyond the vocabulary: was an out-of-bounds read (segfault) */
    expect_tok_fail(TOKJ(VOC, "[{\"id\": 20000000, \"content\": \"[BIG]\"}]"), PULSE_ERR_PARSE,
                    "added_tokens[0]");
    expect_tok_fail(TOKJ(VOC, "[{\"id\": 4, \"content\": \"a\"}, {\"id\": 1e300, \"content\": \"x\"}]"),
                    PULSE_ERR_PARSE, "added_tokens[1]");
    expect_tok_fail(TOKJ(VOC, "[{\"id\": -1, \"content\": \"x\"}]"), PULSE_ERR_PARSE, "added_tokens[0]");
    expect_tok_fail(TOKJ(VOC, "[{\"id\": 2.5, \"content\": \"x\"}]"), PULSE_ERR_PARSE, "added_tokens[0]");
    expect_tok_fail(TOKJ(VOC, "[{\"id\": 5}]"), PULSE_ERR_PARSE, "content");
    expect_tok_fail(TOKJ("{\"[PAD]\": 0, \"[UNK]\": 1.5}", "[]"), PULSE_ERR_PARSE, "model.vocab['[UNK]']");
    /* an empty vocabulary, even with the special tokens among the added ones */
    expect_tok_fail(TOKJ("{}", "[{\"id\": 0, \"content\": \"[CLS]\"}, {\"id\": 1, \"content\": \"[SEP]\"}, "
                               "{\"id\": 2, \"content\": \"[UNK]\"}]"),
                    PULSE_ERR_PARSE, "empty vocabulary");
    /* a valid file still loads, with its added token */
    expect_tok_fail(TOKJ(VOC, "[{\"id\": 5, \"content\": \"[NEW]\"}]"), PULSE_OK, "");
}

static void vocab_txt_nul(void) {
    char d[512], path[600];
    snprintf(d, sizeof d, "%s/voc", tmp);
    CHECK(mkdir(d, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/vocab.txt", d);
    static const char v[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\0cd\nx\n";
    write_file(path, v, sizeof v - 1);
    pulse_wordpiece wp;
    CHECK(pulse_wordpiece_load(&wp, d) == PULSE_ERR_PARSE);
    CHECK_MSG(strstr(pulse_last_error(), "vocab.txt:5") && strstr(pulse_last_error(), "NUL"), "%s",
              pulse_last_error());
}

static void config_checks(const char *good) {
    char d[512], cmd[2400];
    snprintf(d, sizeof d, "%s/cfg", tmp);
    struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"\"hidden_size\": 16", "\"hidden_size\": 16.5", "hidden_size: expected an integer, found 16.5"},
        {"\"hidden_size\": 16", "\"hidden_size\": \"16\"", "hidden_size: expected an integer"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 2.0000001", "num_hidden_layers"},
        {"\"type_vocab_size\": 2", "\"type_vocab_size\": 0", "type_vocab_size 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", d, good, d);
        CHECK(run(cmd) == 0);
        patch_config(d, cases[i].from, cases[i].to);
        pulse_encoder *e = NULL;
        pulse_status st = pulse_encoder_load(d, NULL, &e);
        CHECK_MSG(st == PULSE_ERR_FORMAT && e == NULL, "%s -> %d", cases[i].to, (int)st);
        CHECK_MSG(strstr(pulse_last_error(), cases[i].needle) != NULL, "'%s' lacks '%s'", pulse_last_error(),
                  cases[i].needle);
    }
}

/* `pulse encode --input` with a NUL inside a line: an error naming the line, not a silently cut text */
static void input_nul(const char *dir) {
    char in[512], cmd[4096];
    snprintf(in, sizeof in, "%s/in.txt", tmp);
    static const char t[] = "the cat\nred\0blue\n";
    write_file(in, t, sizeof t - 1);
    snprintf(cmd, sizeof cmd, "%s encode -e %s -i %s > %s/out.txt 2> %s/err.txt", PULSE_CLI, dir, in, tmp,
             tmp);
    CHECK(run(cmd) == 1);
    char errp[600];
    snprintf(errp, sizeof errp, "%s/err.txt", tmp);
    char *err = read_text(errp);
    CHECK_MSG(err && strstr(err, "in.txt:2") && strstr(err, "NUL"), "stderr: %s", err ? err : "(none)");
    free(err);
    static const char ok[] = "the cat\nred blue\n";
    write_file(in, ok, sizeof ok - 1);
    CHECK(run(cmd) == 0);
}

int main(void) {
    CHECK(mkdtemp(tmp) != NULL);
    char bert[600];
    snprintf(bert, sizeof bert, "%s/bert", tmp);
    CHECK(write_model(bert, 0, 16, 2, 2, 32, 64, 7));
    scratch_reuse(bert);
    tokenizer_json();
    vocab_txt_nul();
    config_checks(bert);
    input_nul(bert);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(run(cmd) == 0);
    return test_summary();
}
