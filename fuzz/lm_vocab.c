/* fuzz/lm_vocab.c — libFuzzer target for the language models' tokenizer built from a GGUF's tokenizer.*
 * metadata (BPE "gpt2" with its pre-tokenizers, SPM "llama"; vocab-only files): the input is the GGUF. A
 * tokenizer that builds tokenizes fixed texts and the input's last bytes (with and without BOS and special
 * tokens), every id must be inside the vocabulary, detokenizes them, turns every id into its piece and
 * formats a chat. Run: scripts/fuzz.sh lm_vocab SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/gguf.h"
#include "pulse/tokenizer.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const pulse_tokenizer *t, const char *text, size_t len) {
    int ids[256], n = 0;
    for (int mode = 0; mode < 4; mode++) {
        pulse_status st = pulse_tokenize(t, text, len, mode & 1, mode >> 1, ids, 256, &n);
        if (st != PULSE_OK) continue;
        if (n < 0 || n > 256) abort();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= pulse_tokenizer_n_vocab(t)) abort();
        char *out = NULL;
        size_t ol = 0;
        if (pulse_detokenize(t, ids, n, mode >> 1, &out, &ol) == PULSE_OK && ol) sink ^= (uint8_t)out[ol - 1];
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pulse_gguf *g = NULL;
    if (pulse_gguf_open_memory(data, size, &g) != PULSE_OK) return 0;
    pulse_tokenizer *t = NULL;
    if (pulse_tokenizer_from_gguf(g, &t) != PULSE_OK) {
        if (t != NULL || pulse_last_error()[0] == 0) abort();
        pulse_gguf_close(g);
        return 0;
    }
    static const char nul_text[] = "a\x00b <s>\x00</s> \xc3";
    static const char *texts[] = {
        "",
        "Hello world, the cat's 123 thing!  \n\n  spaces",
        "<|im_start|>user\nhi<|im_end|><start_of_turn><end_of_turn><s></s>",
        "Caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xe2\x96\x81the",
        "\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80\x00 nul",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) roundtrip(t, texts[i], strlen(texts[i]));
    roundtrip(t, nul_text, sizeof nul_text - 1); /* NUL bytes inside the text */
    size_t tl = size < 200 ? size : 200;
    roundtrip(t, (const char *)data + size - tl, tl);
    const int V = pulse_tokenizer_n_vocab(t);
    char piece[64];
    for (int id = -1; id <= V && id < 2048; id++) {
        int n = pulse_token_to_piece(t, id, id & 1, piece, sizeof piece);
        if (id < 0 || id >= V ? n != -1 : n < 0) abort();
        size_t len;
        if (pulse_token_text(t, id, &len) && len) sink ^= (uint8_t)len;
        sink ^= (uint8_t)pulse_token_get_type(t, id) ^ (uint8_t)pulse_token_is_eog(t, id);
    }
    sink ^= (uint8_t)pulse_token_bos(t) ^ (uint8_t)pulse_token_eos(t) ^ (uint8_t)pulse_token_eot(t);
    pulse_chat_msg msgs[2] = {{"system", "be brief"}, {"user", "hi <|im_end|>"}};
    char *s = NULL;
    if (pulse_chat_format(t, PULSE_CHAT_AUTO, msgs, 2, 1, &s) == PULSE_OK && s) sink ^= (uint8_t)s[0];
    free(s);
    pulse_tokenizer_free(t);
    pulse_gguf_close(g);
    return 0;
}
