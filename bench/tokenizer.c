/* bench/tokenizer.c — tokenizer throughput on many short texts: every product title of a dataset's items.tsv
 * (3rd column), or every line of a text file, tokenized R times with the GGUF's tokenizer (no BOS, special
 * tokens parsed). Prints tokens/s and texts/s; the last stdout line is one JSON object.
 * Usage: bench_tokenizer MODEL.gguf [TEXTS (items.tsv or .txt; default
 * ../shared/data/amazon-beauty/items.tsv)] [REPEATS (default 5)] Peer: bench/peers/tokenizer_llamacpp.py runs
 * llama.cpp (llama-cpp-python) on the same texts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pulse/core.h"
#include "pulse/tokenizer.h"

int main(int argc, char **argv) {
    bench_init(&argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [TEXTS] [REPEATS]\n", argv[0]);
        return 2;
    }
    const char *texts_path = argc > 2 ? argv[2] : "../shared/data/amazon-beauty/items.tsv";
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    if (repeats < 1) repeats = 1;
    double t0 = pulse_now();
    pulse_tokenizer *tok;
    if (pulse_tokenizer_load(argv[1], &tok) != PULSE_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", pulse_last_error());
        return 1;
    }
    double t_load = pulse_now() - t0;
    char *data;
    size_t len;
    if (pulse_read_file(texts_path, &data, &len) != PULSE_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", pulse_last_error());
        pulse_tokenizer_free(tok);
        return 1;
    }
    int tsv = strstr(texts_path, ".tsv") != NULL;
    /* split into texts (in place) */
    size_t cap = 1024, n = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    if (!texts || !lens) return 1;
    size_t bytes = 0;
    int first = 1;
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *s = line;
        if (tsv) {
            char *c1 = strchr(line, '\t'), *c2 = c1 ? strchr(c1 + 1, '\t') : NULL;
            s = c2 ? c2 + 1 : NULL;
            char *c3 = s ? strchr(s, '\t') : NULL;
            if (c3) *c3 = 0;
            if (first) s = NULL; /* header */
        }
        first = 0;
        if (s && *s) {
            if (n == cap) {
                cap *= 2;
                char **nt = realloc(texts, cap * sizeof *texts);
                size_t *nlen = realloc(lens, cap * sizeof *lens);
                if (nt) texts = nt;
                if (nlen) lens = nlen;
                if (!nt || !nlen) {
                    fprintf(stderr, "bench_tokenizer: out of memory\n");
                    return 1;
                }
            }
            texts[n] = s;
            lens[n] = strlen(s);
            bytes += lens[n];
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    int ids[8192], cnt = 0;
    long long total = 0;
    /* warm-up pass, then timed passes */
    for (size_t i = 0; i < n; i++) pulse_tokenize(tok, texts[i], lens[i], 0, 1, ids, 8192, &cnt);
    double t1 = pulse_now();
    for (int r = 0; r < repeats; r++)
        for (size_t i = 0; i < n; i++) {
            if (pulse_tokenize(tok, texts[i], lens[i], 0, 1, ids, 8192, &cnt) == PULSE_OK) total += cnt;
        }
    double dt = pulse_now() - t1;
    double tps = (double)total / dt, xps = (double)n * repeats / dt,
           mbps = (double)bytes * repeats / dt / 1e6;
    printf("model %s (%s, %d tokens): loaded in %.3f s\n", argv[1],
           pulse_tokenizer_kind(tok) == PULSE_VOCAB_BPE ? "bpe" : "spm", pulse_tokenizer_n_vocab(tok),
           t_load);
    printf(
        "%zu texts x %d: %lld tokens in %.3f s: %.0f tokens/s, %.0f texts/s, %.1f MB/s, %.2f tokens/text\n",
        n, repeats, total, dt, tps, xps, mbps, (double)total / ((double)n * repeats));
    bench_emitf("{\"bench\":\"tokenizer\",\"model\":\"%s\",\"texts\":%zu,\"repeats\":%d,\"tokens\":%lld,"
                "\"seconds\":%.4f,"
                "\"tokens_per_s\":%.0f,\"texts_per_s\":%.0f,\"mb_per_s\":%.2f,\"load_s\":%.3f}\n",
                strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1], n, repeats, total, dt, tps, xps,
                mbps, t_load);
    free(texts);
    free(lens);
    free(data);
    pulse_tokenizer_free(tok);
    return 0;
}
