/* fuzz/gguf.c — libFuzzer target for the GGUF reader: parse the input from memory; when it opens, read every
 * metadata value through the typed getters and the formatter, touch the first and last byte of every tensor
 * and dequantise the first row of supported ones (ASan/UBSan catch any out-of-bounds access). Build and run:
 * scripts/fuzz-gguf.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/gguf.h"
#include "pulse/quant.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pulse_gguf *g = NULL;
    if (pulse_gguf_open_memory(data, size, &g) != PULSE_OK) return 0;
    char key[256], buf[512];
    for (size_t i = 0; i < pulse_gguf_n_kv(g); i++) {
        pulse_gguf_str k = pulse_gguf_kv_key(g, i);
        size_t kl = k.len < sizeof key - 1 ? (size_t)k.len : sizeof key - 1;
        memcpy(key, k.ptr, kl);
        key[kl] = 0;
        pulse_gguf_kv_format(g, i, buf, sizeof buf);
        uint32_t u;
        int64_t i64;
        float f;
        int b;
        pulse_gguf_str s;
        pulse_gguf_get_u32(g, key, &u);
        pulse_gguf_get_i64(g, key, &i64);
        pulse_gguf_get_f32(g, key, &f);
        pulse_gguf_get_bool(g, key, &b);
        if (pulse_gguf_get_str(g, key, &s) == PULSE_OK && s.len) sink ^= (uint8_t)s.ptr[s.len - 1];
        pulse_gguf_type et;
        uint64_t n;
        if (pulse_gguf_get_arr_info(g, key, &et, &n) == PULSE_OK && n) {
            if (pulse_gguf_get_arr_str(g, key, n - 1, &s) == PULSE_OK && s.len) sink ^= (uint8_t)s.ptr[0];
            uint64_t m = n < 64 ? n : 64;
            float fv[64];
            int32_t iv[64];
            pulse_gguf_get_arr_f32(g, key, fv, m);
            pulse_gguf_get_arr_i32(g, key, iv, m);
        }
    }
    for (size_t i = 0; i < pulse_gguf_n_tensors(g); i++) {
        const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
        if (t->nbytes) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
        char nm[128];
        size_t nl = t->name.len < sizeof nm - 1 ? (size_t)t->name.len : sizeof nm - 1;
        memcpy(nm, t->name.ptr, nl);
        nm[nl] = 0;
        if (pulse_gguf_find_tensor(g, nm) == NULL && nl == t->name.len && !memchr(t->name.ptr, 0, nl))
            abort();
        if (pulse_ggml_type_supported(t->type) && t->ne[0] <= 4096) {
            float row[4096];
            pulse_dequantize_row(t->type, t->data, row, t->ne[0]);
            sink ^= (uint8_t)(row[0] != row[0]);
        }
    }
    pulse_gguf_close(g);
    return 0;
}
