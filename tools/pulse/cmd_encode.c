/* tools/pulse/cmd_encode.c — `pulse encode`: embed texts with a BERT-family encoder folder; prints one JSON
 * array of floats per text (or of token ids with --tokens), in input order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/encoder.h"
#include "pulse/kernels.h"

/* splits buf (modified in place) into lines; returns the count, lines in *out (caller frees the array), -1
 * out of memory, -2 - k for a NUL byte on line k + 1 (it would silently cut the text short) */
static int split_lines(char *buf, size_t len, char ***out) {
    int n = 0, cap = 0;
    char **v = NULL;
    size_t i = 0;
    while (i < len) {
        char *s = buf + i;
        char *nl = memchr(s, '\n', len - i);
        size_t l = nl ? (size_t)(nl - s) : len - i;
        if (memchr(s, 0, l)) {
            free(v);
            return -2 - n;
        }
        if (l > 0 && s[l - 1] == '\r') s[l - 1] = 0;
        s[l] = 0;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, sizeof *nv * (size_t)cap);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[n++] = s;
        i += l + 1;
    }
    *out = v;
    return n;
}

int cmd_encode(int argc, char **argv) {
    const char *dir = NULL, *input = NULL, *pooling = NULL, *precision = NULL;
    cli_strs texts = {0};
    int max_len = 128, batch = 64, no_norm = 0, tokens = 0, threads = 0;
    const cli_opt opts[] = {
        {"--encoder|-e", CLI_STR, &dir,
         "HF folder: config.json, model.safetensors, vocab.txt or tokenizer.json"},
        {"--text", CLI_STRS, &texts, "a text to embed"},
        {"--input|-i", CLI_STR, &input, "file with one text per line ('-' = stdin)"},
        {"--pooling", CLI_STR, &pooling, "cls|mean|auto (default auto: from the folder, else cls)"},
        {"--max-len", CLI_INT, &max_len, "tokens per text incl. [CLS]/[SEP] (default 128)",
         CLI_RANGE(2, 1000000)},
        {"--batch", CLI_INT, &batch, "texts per batch (default 64)", CLI_RANGE(1, 1000000)},
        {"--no-normalize", CLI_FLAG, &no_norm, "do not L2-normalise the vectors"},
        {"--tokens", CLI_FLAG, &tokens, "print token ids instead of vectors"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: PULSE_THREADS or all cores)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--precision", CLI_STR, &precision,
         "fp32 | bf16 | auto: matrix products (bf16: inputs rounded, fp32 sums; default auto: bf16 where "
         "the CPU runs it faster than fp32, AMD Zen 4 and later)"},
    };
    int r = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                      "usage: pulse encode --encoder DIR [--pooling cls|mean] --text STR ... | --input FILE",
                      NULL, 0, NULL);
    if (r) {
        free(texts.v);
        return r == 1 ? 0 : 2;
    }
    if (!dir || (!texts.n && !input) || (texts.n && input)) {
        fprintf(stderr, "pulse encode: --encoder DIR and either --text STR (repeatable) or --input FILE\n");
        free(texts.v);
        return 2;
    }
    pulse_encoder_params p = pulse_encoder_default_params();
    int pool = p.pooling, prec = p.precision;
    if (cli_encoder_choices("encode", pooling, precision, &pool, &prec)) {
        free(texts.v);
        return 2;
    }
    p.pooling = (pulse_pooling)pool;
    p.precision = (pulse_precision)prec;
    p.max_len = max_len;
    p.batch_size = batch;
    p.normalize = !no_norm;
    if (threads > 0) {
        cli_set_threads("encode", threads); /* clamped to the cores, said on stderr */
        threads = pulse_get_num_threads();
    }
    p.threads = threads;
    char *buf = NULL;
    char **lines = NULL;
    const char *const *tv = texts.v;
    int n = texts.n;
    if (input) {
        size_t len = 0;
        if (!(buf = cli_read_text("encode", "--input", input, &len))) {
            free(texts.v);
            return 1;
        }
        n = split_lines(buf, len, &lines);
        if (n < -1) {
            fprintf(stderr, "pulse encode: %s:%d: NUL byte inside the text (expected one text per line)\n",
                    input, -1 - n);
            free(buf);
            free(texts.v);
            return 1;
        }
        if (n < 0) {
            fprintf(stderr, "pulse encode: out of memory\n");
            free(buf);
            free(texts.v);
            return 1;
        }
        tv = (const char *const *)lines;
    }
    pulse_encoder *enc = NULL;
    if (pulse_encoder_load(dir, &p, &enc)) {
        free(buf);
        free(lines);
        free(texts.v);
        return cli_fail("encode");
    }
    int rc = 0;
    const int D = pulse_encoder_dim(enc), ML = pulse_encoder_get_params(enc).max_len;
    const int CH = 4096; /* texts per chunk: bounded memory, streamed output */
    float *out = tokens ? NULL : malloc(sizeof(float) * (size_t)(n < CH ? (n ? n : 1) : CH) * D);
    int *ids = tokens ? malloc(sizeof(int) * (size_t)ML) : NULL;
    if ((!tokens && !out) || (tokens && !ids)) {
        fprintf(stderr, "pulse encode: out of memory\n");
        rc = 1;
    }
    for (int s = 0; s < n && rc == 0; s += CH) {
        int m = n - s < CH ? n - s : CH;
        if (tokens) {
            for (int i = 0; i < m && rc == 0; i++) {
                int k = 0;
                if (pulse_encoder_tokenize(enc, tv[s + i], ids, ML, &k)) {
                    rc = cli_fail("encode");
                    break;
                }
                putchar('[');
                for (int j = 0; j < k; j++) printf(j ? ",%d" : "%d", ids[j]);
                puts("]");
            }
            continue;
        }
        if (pulse_encoder_encode(enc, tv + s, m, out)) {
            rc = cli_fail("encode");
            break;
        }
        for (int i = 0; i < m; i++) {
            const float *v = out + (size_t)i * D;
            putchar('[');
            for (int j = 0; j < D; j++) printf(j ? ",%.7g" : "%.7g", (double)v[j]);
            puts("]");
        }
    }
    free(out);
    free(ids);
    pulse_encoder_free(enc);
    free(buf);
    free(lines);
    free(texts.v);
    return rc;
}
