/* fuzz/sasrec.c — libFuzzer target for the SASRec model file (pulse_sasrec_load): the input is the file, with
 * its last 4 bytes replaced by the CRC-32 of the rest so that mutated weights and sizes get past the checksum
 * (the checksum mismatch itself is a unit test). A model that loads scores two short histories (valid item
 * ids, one longer than maxlen); the scores must be finite-or-not but never read out of bounds. Run:
 * scripts/fuzz.sh sasrec SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_files.h"
#include "pulse/sasrec.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256];
    snprintf(path, sizeof path, "%s/model.bin", fuzz_dir("sasrec"));
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (size >= 8) {
        uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(size - 4));
        memcpy(copy + size - 4, &crc, 4);
    }
    int w = fuzz_write(path, copy, size);
    free(copy);
    if (w != 0) return 0;
    pulse_sasrec *m = NULL;
    if (pulse_sasrec_load(path, NULL, &m) != PULSE_OK) {
        if (m != NULL || pulse_last_error()[0] == 0) abort();
        return 0;
    }
    const int n_items = pulse_sasrec_n_items(m), T = pulse_sasrec_maxlen(m);
    if (n_items < 1 || T < 1 || pulse_sasrec_dim(m) < 1) abort();
    if (n_items <= 100000) {
        int h0[3], h1[40];
        for (int i = 0; i < 3; i++) h0[i] = 1 + i % n_items;
        for (int i = 0; i < 40; i++) h1[i] = 1 + (i * 7) % n_items;
        const int *hist[2] = {h0, h1};
        const int lens[2] = {3, 40};
        float *scores = malloc(sizeof(float) * 2 * (size_t)(n_items + 1));
        if (scores && pulse_sasrec_score(m, 2, hist, lens, scores) == PULSE_OK)
            sink = scores[n_items] + scores[n_items + 1];
        free(scores);
    }
    pulse_sasrec_free(m);
    return 0;
}
