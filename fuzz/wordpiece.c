/* fuzz/wordpiece.c — libFuzzer target for the encoder's WordPiece loader (tokenizer.json, or vocab.txt with
 * tokenizer_config.json): the input is a container of those three files (fuzz/fuzz_files.h). A vocabulary
 * that loads tokenizes fixed texts (accents, CJK, specials, long words) and the input's last bytes, with
 * several budgets, and every id it gives must be inside the vocabulary; it is saved as vocab.txt again. Run:
 * scripts/fuzz.sh wordpiece SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/wordpiece.h"
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode_check(const pulse_wordpiece *wp, const char *text, int max) {
    int ids[80];
    int n = pulse_wordpiece_encode(wp, text, ids, max);
    if (n > max) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < -1 || ids[i] >= wp->n_vocab) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *names[3] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json"};
    const char *dir = fuzz_dir("wp");
    fuzz_files(dir, names, 3, data, size);
    pulse_wordpiece wp;
    if (pulse_wordpiece_load(&wp, dir) != PULSE_OK) {
        if (pulse_last_error()[0] == 0) abort();
        pulse_wordpiece_free(&wp);
        return 0;
    }
    static const char *texts[] = {
        "",
        "The user likes movies, because it is good!",
        "Caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [CLS] [SEP] [MASK] <huge> na\xc3\xafve \xf0\x9f\x98\x80 \t\r\n "
        "x",
        "supercalifragilisticexpialidocioussupercalifragilisticexpialidocioussupercalifragilisticexpialidocio"
        "us"
        "supercalifragilisticexpialidocious",
        "\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80 ##s ##",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        encode_check(&wp, texts[i], 80);
        encode_check(&wp, texts[i], 2);
        encode_check(&wp, texts[i], 5);
    }
    char tail[257];
    size_t tl = size < 256 ? size : 256;
    memcpy(tail, data + size - tl, tl);
    tail[tl] = 0;
    encode_check(&wp, tail, 80);
    for (int id = 0; id < wp.n_vocab && id < 4096; id++) {
        const char *t = pulse_wordpiece_token(&wp, id);
        if (t && pulse_wordpiece_lookup(&wp, t, strlen(t)) < 0) abort();
    }
    char out[512];
    snprintf(out, sizeof out, "%s/saved_vocab.txt", dir);
    pulse_wordpiece_save_vocab(&wp, out);
    pulse_wordpiece_free(&wp);
    return 0;
}
