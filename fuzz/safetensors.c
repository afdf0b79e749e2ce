/* fuzz/safetensors.c — libFuzzer target for the safetensors reader: the input is the file; when it opens,
 * every tensor is listed, looked up by name, touched at its first and last byte and, for F32 / F16 / BF16
 * ones up to 64k elements, converted to f32 (with and without its shape); metadata keys are looked up. Never
 * a crash; an error always comes with a message. Run: scripts/fuzz.sh safetensors SECONDS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_files.h"
#include "pulse/safetensors.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", fuzz_dir("st"));
    if (fuzz_write(path, data, size) != 0) return 0;
    pulse_safetensors *st = NULL;
    if (pulse_safetensors_open(&st, path) != PULSE_OK) {
        if (st != NULL || pulse_last_error()[0] == 0) abort();
        return 0;
    }
    static float buf[65536];
    for (int i = 0; i < pulse_safetensors_count(st); i++) {
        const pulse_st_tensor *t = pulse_safetensors_at(st, i);
        if (!t || !t->name || pulse_safetensors_find(st, t->name) != t) abort();
        if (t->n_dims < 0 || t->n_dims > PULSE_ST_MAX_DIMS) abort();
        if (t->nbytes) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
        if (t->dtype != PULSE_ST_OTHER && t->n_elements <= 65536) {
            if (pulse_safetensors_read_f32(st, t->name, buf, t->n_elements, t->n_dims, t->shape) != PULSE_OK)
                abort(); /* its own shape and size must convert */
            pulse_safetensors_read_f32(st, t->name, buf, t->n_elements, 0, NULL);
            if (t->n_elements > 1) pulse_safetensors_read_f32(st, t->name, buf, t->n_elements - 1, 0, NULL);
            sink ^= (uint8_t)(buf[0] != buf[0]);
        }
    }
    pulse_safetensors_read_f32(st, "missing", buf, 1, 0, NULL);
    const char *m = pulse_safetensors_metadata(st, "format");
    if (m) sink ^= (uint8_t)m[0];
    pulse_safetensors_close(st);
    return 0;
}
