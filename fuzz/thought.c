/* fuzz/thought.c — libFuzzer target for what `pulse thought score --space DIR` loads: a Thought-Space folder
 * (space.json naming the behaviour and rationale encoder folders) or a plain encoder folder (config.json,
 * vocab.txt / tokenizer.json (+ tokenizer_config.json), model.safetensors, 1_Pooling/config.json). The input
 * is a container of those files (fuzz/fuzz_files.h; names below, scripts/gen-fuzz-corpus.py writes the
 * seeds). A space that loads scores a behaviour text longer than its position table against three
 * rationales, embeds two behaviours and ranks the rationales: an error status or a result, never a crash.
 * Run: scripts/fuzz.sh thought SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_files.h"
#include "pulse/thought.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *names[16] = {"space.json",
                                    "b/config.json",
                                    "b/vocab.txt",
                                    "b/model.safetensors",
                                    "r/config.json",
                                    "r/vocab.txt",
                                    "r/model.safetensors",
                                    "b/tokenizer.json",
                                    "config.json",
                                    "vocab.txt",
                                    "model.safetensors",
                                    "tokenizer.json",
                                    "1_Pooling/config.json",
                                    "tokenizer_config.json",
                                    "b/tokenizer_config.json",
                                    "r/1_Pooling/config.json"};
    const char *dir = fuzz_dir("thought");
    fuzz_files(dir, names, 16, data, size);
    pulse_thought_space *s = NULL;
    if (pulse_thought_space_load(dir, NULL, &s) != PULSE_OK) {
        if (s != NULL || pulse_last_error()[0] == 0) abort();
        return 0;
    }
    const int D = pulse_thought_space_dim(s);
    if (D < 1 || D > 65536) abort();
    static const char *behaviour =
        "the user likes the movie because it is good and she buys the item , the user likes the movie "
        "because "
        "it is good and he buys the item . the user likes a movie of the caf\xc3\xa9 \xe4\xb8\xad ! the user "
        "likes the movie because it is good and she buys the item , the user likes the movie because it is";
    const char *rats[3] = {"it is good", "", "the user likes movies and buys items because they are good"};
    float cos[3];
    if (pulse_thought_score(s, behaviour, rats, 3, cos) == PULSE_OK)
        for (int i = 0; i < 3; i++) sink += cos[i];
    const char *bs[2] = {behaviour, "a"};
    float *emb = malloc(sizeof(float) * 2 * (size_t)D);
    if (emb && pulse_thought_embed_behaviour(s, bs, 2, emb) == PULSE_OK) sink += emb[2 * D - 1];
    free(emb);
    int idx[2];
    if (pulse_thought_topk(s, "a", rats, 3, 2, idx, cos) == PULSE_OK && (idx[0] < 0 || idx[0] > 2)) abort();
    pulse_thought_space_free(s);
    return 0;
}
