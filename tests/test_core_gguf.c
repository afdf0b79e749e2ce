/* tests/test_core_gguf.c — the GGUF reader: a synthetic file read back (metadata getters, string arrays,
 * tensors and their data, from memory and from disk), and hostile variants (every truncation, corrupted
 * fields, duplicates, overflowing shapes, random byte flips) each giving an error that names the field. */
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "gguf_build.h"
#include "pulse/core.h"
#include "pulse/gguf.h"
#include "pulse/quant.h"

static const char *const TOKS[] = {"<s>", "hello", "", "w\xc3\xb6rld"};

typedef struct {
    int dup_key, dup_tensor, bad_align, ndims5, ne_zero, ne_overflow, bad_type, bad_offset, misaligned,
        nested_array, align64;
} knobs;

static size_t build(uint8_t **out, knobs k) {
    gguf_builder g;
    gb_init(&g);
    if (k.align64) g.alignment = 64;
    gb_kv_str(&g, "general.architecture", "llama");
    gb_kv_u32(&g, "llama.block_count", 2);
    gb_kv_i32(&g, "llama.neg", -5);
    gb_kv_f32(&g, "llama.rope.freq_base", 10000.0f);
    gb_kv_f64(&g, "llama.f64", 0.25);
    gb_kv_u64(&g, "llama.big", 1ull << 40);
    gb_kv_bool(&g, "tokenizer.ggml.add_bos_token", 1);
    gb_kv_arr_str(&g, "tokenizer.ggml.tokens", TOKS, 4);
    float scores[4] = {0.0f, -1.5f, 2.0f, 3.25f};
    gb_kv_arr(&g, "tokenizer.ggml.scores", 6, scores, 4, 4);
    int32_t tt[4] = {3, 1, 1, 6};
    gb_kv_arr(&g, "tokenizer.ggml.token_type", 5, tt, 4, 4);
    if (k.dup_key) gb_kv_u32(&g, "llama.block_count", 3);
    if (k.bad_align) gb_kv_u32(&g, "general.alignment", 48);
    if (k.align64) gb_kv_u32(&g, "general.alignment", 64);
    if (k.nested_array) {
        gb_str(&g.kv, "nested");
        gb_u32(&g.kv, 9);
        gb_u32(&g.kv, 9);
        gb_u64(&g.kv, 0);
        g.n_kv++;
    }
    /* q8_0 [64, 3]: block j of row r has d = 1/(r+1), qs[i] = i - 16 */
    uint8_t q[3 * 2 * 34];
    for (int b = 0; b < 6; b++) {
        uint16_t d = pulse_fp32_to_fp16(1.0f / (float)(b / 2 + 1));
        memcpy(q + 34 * b, &d, 2);
        for (int i = 0; i < 32; i++) q[34 * b + 2 + i] = (uint8_t)(int8_t)(i - 16);
    }
    int64_t ne_w[2] = {64, 3};
    if (k.ne_zero) ne_w[1] = 0;
    if (k.ndims5) {
        int64_t ne5[5] = {64, 3, 1, 1, 1};
        gb_tensor(&g, "blk.0.w", 8, 5, ne5, q, sizeof q);
    } else {
        gb_tensor(&g, "blk.0.w", k.bad_type ? 99 : 8, 2, ne_w, q, sizeof q);
    }
    float v[5] = {1, 2, 3, 4, 5};
    int64_t ne_v[1] = {5};
    if (k.ne_overflow) {
        int64_t ne4[4] = {1ll << 40, 1ll << 20, 1ll << 10, 1ll << 10};
        gb_tensor(&g, "v", 0, 4, ne4, v, sizeof v);
    } else {
        gb_tensor(&g, k.dup_tensor ? "blk.0.w" : "v", 0, 1, ne_v, v, sizeof v);
    }
    size_t n = gb_finish(&g, out);
    return n;
}

/* offset of the last tensor's data offset field: 8 bytes before the data section start (after padding) */
static void check_valid(const pulse_gguf *g, uint32_t align) {
    CHECK(pulse_gguf_version(g) == 3);
    CHECK(pulse_gguf_n_kv(g) == 10 + (align != 32));
    CHECK(pulse_gguf_n_tensors(g) == 2);
    CHECK(pulse_gguf_alignment(g) == align);
    CHECK(pulse_gguf_data_offset(g) % align == 0);
    pulse_gguf_str s;
    CHECK_OK(pulse_gguf_get_str(g, "general.architecture", &s));
    CHECK(pulse_gguf_str_eq(s, "llama"));
    CHECK(pulse_gguf_str_eq(pulse_gguf_kv_key(g, 0), "general.architecture"));
    CHECK(pulse_gguf_kv_type(g, 1) == PULSE_GGUF_UINT32);
    uint32_t u;
    int64_t i64;
    float f;
    int b;
    CHECK_OK(pulse_gguf_get_u32(g, "llama.block_count", &u));
    CHECK(u == 2);
    CHECK(pulse_gguf_get_u32(g, "llama.neg", &u) == PULSE_ERR_RANGE);
    CHECK(strstr(pulse_last_error(), "llama.neg") != NULL);
    CHECK_OK(pulse_gguf_get_i64(g, "llama.neg", &i64));
    CHECK(i64 == -5);
    CHECK(pulse_gguf_get_u32(g, "llama.big", &u) == PULSE_ERR_RANGE);
    CHECK_OK(pulse_gguf_get_i64(g, "llama.big", &i64));
    CHECK(i64 == (1ll << 40));
    CHECK_OK(pulse_gguf_get_f32(g, "llama.rope.freq_base", &f));
    CHECK(f == 10000.0f);
    CHECK_OK(pulse_gguf_get_f32(g, "llama.f64", &f));
    CHECK(f == 0.25f);
    CHECK(pulse_gguf_get_f32(g, "llama.block_count", &f) == PULSE_ERR_ARG);
    CHECK_OK(pulse_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b));
    CHECK(b == 1);
    CHECK(pulse_gguf_get_u32(g, "missing.key", &u) == PULSE_ERR_ARG);
    CHECK(strstr(pulse_last_error(), "missing.key") != NULL);
    CHECK(pulse_gguf_find_key(g, "missing.key") == -1);
    pulse_gguf_type et;
    uint64_t cnt;
    CHECK_OK(pulse_gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &cnt));
    CHECK(et == PULSE_GGUF_STRING && cnt == 4);
    int ok = 1;
    for (uint64_t i = 0; i < 4; i++) {
        CHECK_OK(pulse_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s));
        ok &= s.len == strlen(TOKS[i]) && memcmp(s.ptr, TOKS[i], s.len) == 0;
    }
    CHECK(ok);
    CHECK(pulse_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 4, &s) == PULSE_ERR_RANGE);
    float sc[4];
    CHECK_OK(pulse_gguf_get_arr_f32(g, "tokenizer.ggml.scores", sc, 4));
    CHECK(sc[1] == -1.5f && sc[3] == 3.25f);
    int32_t tt[4];
    CHECK_OK(pulse_gguf_get_arr_i32(g, "tokenizer.ggml.token_type", tt, 4));
    CHECK(tt[0] == 3 && tt[3] == 6);
    CHECK_OK(pulse_gguf_get_arr_f32(g, "tokenizer.ggml.token_type", sc, 2));
    CHECK(sc[0] == 3.0f);
    CHECK(pulse_gguf_get_arr_f32(g, "tokenizer.ggml.scores", sc, 5) == PULSE_ERR_RANGE);
    CHECK(pulse_gguf_get_arr_f32(g, "tokenizer.ggml.tokens", sc, 1) == PULSE_ERR_ARG);
    char buf[256];
    pulse_gguf_kv_format(g, 7, buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "[4 x string] \"<s>\"", 18) == 0, "%s", buf);

    const pulse_gguf_tensor *w = pulse_gguf_find_tensor(g, "blk.0.w"), *v = pulse_gguf_find_tensor(g, "v");
    CHECK(w && v && pulse_gguf_find_tensor(g, "nope") == NULL && pulse_gguf_tensor_at(g, 2) == NULL);
    if (!w || !v) return;
    CHECK(w->type == PULSE_GGML_Q8_0 && w->n_dims == 2 && w->ne[0] == 64 && w->ne[1] == 3 && w->ne[2] == 1);
    CHECK(w->nbytes == 3 * 2 * 34 && ((uintptr_t)w->data - (uintptr_t)pulse_gguf_tensor_at(g, 0)->data) == 0);
    CHECK(v->type == PULSE_GGML_F32 && v->nbytes == 20 && v->offset % align == 0);
    float row[64];
    pulse_dequantize_row(w->type, (const uint8_t *)w->data + 68 * 2, row, 64);
    float d3 = pulse_fp16_to_fp32(pulse_fp32_to_fp16(1.0f / 3));
    CHECK(row[0] == -16.0f * d3 && row[63] == 15.0f * d3);
    float vv[5];
    memcpy(vv, v->data, 20);
    CHECK(vv[0] == 1 && vv[4] == 5);
}

static void expect_error(knobs k, pulse_status want, const char *needle) {
    uint8_t *f;
    size_t n = build(&f, k);
    pulse_gguf *g = NULL;
    pulse_status st = pulse_gguf_open_memory(f, n, &g);
    CHECK_MSG(st == want && g == NULL, "want %d got %d (%s)", (int)want, (int)st, pulse_last_error());
    CHECK_MSG(strstr(pulse_last_error(), needle) != NULL, "error '%s' does not name '%s'", pulse_last_error(),
              needle);
    pulse_gguf_close(g);
    free(f);
}

static void patch_error(const uint8_t *f, size_t n, size_t at, const void *bytes, size_t len,
                        const char *needle) {
    uint8_t *c = malloc(n);
    memcpy(c, f, n);
    memcpy(c + at, bytes, len);
    pulse_gguf *g = NULL;
    pulse_status st = pulse_gguf_open_memory(c, n, &g);
    CHECK_MSG(st != PULSE_OK && g == NULL, "patch at %zu accepted", at);
    CHECK_MSG(strstr(pulse_last_error(), needle) != NULL, "error '%s' does not name '%s'", pulse_last_error(),
              needle);
    pulse_gguf_close(g);
    free(c);
}

/* The committed fuzz seeds: valid_* open, invalid_* fail with a message (regression check for the corpus). */
static void test_corpus(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/gguf", PULSE_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "%s missing", dir);
    if (!d) return;
    int n_valid = 0, n_invalid = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int valid = strncmp(e->d_name, "valid_", 6) == 0, invalid = strncmp(e->d_name, "invalid_", 8) == 0;
        if (!valid && !invalid) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        pulse_gguf *g = NULL;
        pulse_status st = pulse_gguf_open(path, &g);
        if (valid) {
            CHECK_MSG(st == PULSE_OK, "%s: %s", e->d_name, pulse_last_error());
            n_valid++;
        } else {
            CHECK_MSG(st != PULSE_OK && pulse_last_error()[0], "%s opened", e->d_name);
            n_invalid++;
        }
        pulse_gguf_close(g);
    }
    closedir(d);
    CHECK(n_valid >= 5 && n_invalid >= 10);
}

/* `pulse lm info`: JSON last line on a valid file, exit 1 naming the field on a broken one. */
static void test_cli(void) {
    char cmd[2048], line[8192], last[8192] = "";
    snprintf(cmd, sizeof cmd, "'%s' lm info '%s/fuzz/corpus/gguf/valid_vocab_v3.seed' --all", PULSE_CLI,
             PULSE_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    while (fgets(line, sizeof line, p)) memcpy(last, line, sizeof line);
    CHECK(pclose(p) == 0);
    cJSON *j = cJSON_Parse(last);
    CHECK_MSG(j != NULL, "last line not JSON: %s", last);
    if (j) {
        cJSON *tk = cJSON_GetObjectItem(j, "tokenizer");
        CHECK(strcmp(cJSON_GetObjectItem(j, "architecture")->valuestring, "llama") == 0);
        CHECK(tk && cJSON_GetObjectItem(tk, "n_vocab")->valueint == 10);
        CHECK(tk && strcmp(cJSON_GetObjectItem(tk, "model")->valuestring, "gpt2") == 0);
        CHECK(tk && cJSON_IsTrue(cJSON_GetObjectItem(tk, "chat_template")));
        cJSON_Delete(j);
    }
    snprintf(cmd, sizeof cmd, "'%s' lm info '%s/fuzz/corpus/gguf/invalid_offset.seed' 2>&1", PULSE_CLI,
             PULSE_SOURCE_DIR);
    p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    last[0] = 0;
    while (fgets(line, sizeof line, p)) memcpy(last, line, sizeof line);
    CHECK(pclose(p) != 0);
    CHECK_MSG(strstr(last, "tensor 0 'x': data range") != NULL, "%s", last);
}

int main(void) {
    test_corpus();
    test_cli();
    knobs none = {0};
    uint8_t *f;
    size_t n = build(&f, none);
    pulse_gguf *g;
    CHECK_OK(pulse_gguf_open_memory(f, n, &g));
    if (g) {
        check_valid(g, 32);
        pulse_gguf_close(g);
    }
    /* from disk */
    char path[] = "/tmp/pulse_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK_OK(pulse_write_file_atomic(path, f, n));
        CHECK_OK(pulse_gguf_open(path, &g));
        if (g) {
            check_valid(g, 32);
            pulse_gguf_close(g);
        }
        remove(path);
    }
    CHECK(pulse_gguf_open("/nonexistent/x.gguf", &g) == PULSE_ERR_IO && g == NULL);
    /* alignment 64 */
    knobs a64 = {0};
    a64.align64 = 1;
    uint8_t *f64;
    size_t n64 = build(&f64, a64);
    CHECK_OK(pulse_gguf_open_memory(f64, n64, &g));
    if (g) {
        check_valid(g, 64);
        pulse_gguf_close(g);
    }
    free(f64);

    /* every truncation fails with a message, never a crash */
    int trunc_ok = 1;
    for (size_t l = 0; l < n; l++) {
        uint8_t *c = malloc(l ? l : 1);
        memcpy(c, f, l);
        pulse_clear_error();
        pulse_status st = pulse_gguf_open_memory(c, l, &g);
        trunc_ok &= st != PULSE_OK && g == NULL && pulse_last_error()[0] != 0;
        free(c);
    }
    CHECK(trunc_ok);

    /* corrupted fields name themselves */
    patch_error(f, n, 0, "GGUX", 4, "magic");
    uint32_t v1 = 1;
    patch_error(f, n, 4, &v1, 4, "version");
    uint64_t huge = 1ull << 60;
    patch_error(f, n, 8, &huge, 8, "tensor count");
    patch_error(f, n, 16, &huge, 8, "kv count");
    patch_error(f, n, 24, &huge, 8, "kv 0 key");
    uint64_t almost = n - 30;
    patch_error(f, n, 24, &almost, 8, "string length");
    uint32_t badt = 77;
    patch_error(f, n, 24 + 8 + 20, &badt, 4, "value type");

    knobs k = {0};
    k.dup_key = 1;
    expect_error(k, PULSE_ERR_FORMAT, "duplicate key 'llama.block_count'");
    k = none, k.dup_tensor = 1;
    expect_error(k, PULSE_ERR_FORMAT, "duplicate name 'blk.0.w'");
    k = none, k.bad_align = 1;
    expect_error(k, PULSE_ERR_FORMAT, "general.alignment");
    k = none, k.ndims5 = 1;
    expect_error(k, PULSE_ERR_FORMAT, "tensor 0 'blk.0.w': n_dims 5");
    k = none, k.ne_zero = 1;
    expect_error(k, PULSE_ERR_FORMAT, "ne[1] = 0");
    k = none, k.ne_overflow = 1;
    expect_error(k, PULSE_ERR_FORMAT, "overflows");
    k = none, k.bad_type = 1;
    expect_error(k, PULSE_ERR_UNSUPPORTED, "unknown ggml type 99");
    k = none, k.nested_array = 1;
    expect_error(k, PULSE_ERR_FORMAT, "nested arrays");

    /* tensor data offsets: find the last tensor info's offset field ("v": name, n_dims 1, ne, type, offset)
     */
    size_t off_pos = 0;
    for (size_t i = 0; i + 9 < n; i++)
        if (memcmp(f + i, "\x01\0\0\0\0\0\0\0v\x01\0\0\0", 13) == 0) off_pos = i + 9 + 4 + 8 + 4;
    CHECK(off_pos > 0);
    if (off_pos) {
        uint64_t o = 1ull << 40;
        patch_error(f, n, off_pos, &o, 8, "tensor 1 'v': data range");
        o = 8;
        patch_error(f, n, off_pos, &o, 8, "not a multiple of the alignment");
    }

    /* error texts: a key whose length runs into binary data is named by its start, not by the garbage after
     * it; an overflowing array size is not printed as "(0 bytes)"; an overflowing data range is not wrapped
     */
    {
        size_t kpos = 0, spos = 0;
        for (size_t i = 0; i + 21 < n; i++) {
            if (!kpos && memcmp(f + i, "llama.block_count", 17) == 0) kpos = i - 8;
            if (!spos && memcmp(f + i, "tokenizer.ggml.scores", 21) == 0) spos = i + 21 + 4 + 4;
        }
        CHECK(kpos > 0 && spos > 0);
        if (kpos) {
            uint64_t kl = 17 + 4;
            patch_error(f, n, kpos, &kl, 8, "kv 1: key at offset");
            CHECK_MSG(strstr(pulse_last_error(), "starts 'llama.block_count'") != NULL, "%s",
                      pulse_last_error());
            kl = 1ull << 40;
            patch_error(f, n, kpos, &kl, 8, "kv 1 key (after kv 0 'general.architecture')");
        }
        if (spos) {
            uint64_t cnt = 1ull << 62; /* 2^62 f32: 2^64 bytes, which wraps to 0 in 64 bits */
            patch_error(f, n, spos, &cnt, 8, "array of 4611686018427387904 f32 (more than 2^64 bytes)");
            CHECK(strstr(pulse_last_error(), "(0 bytes)") == NULL);
        }
        size_t w_off = 0; /* blk.0.w (204 bytes): name, n_dims, ne[2], type, then the offset */
        for (size_t i = 0; i + 15 < n; i++)
            if (memcmp(f + i, "\x07\0\0\0\0\0\0\0blk.0.w", 15) == 0) w_off = i + 15 + 4 + 16 + 4;
        CHECK(w_off > 0);
        if (w_off) {
            uint64_t o = 0xFFFFFFFFFFFFFFE0ull;
            patch_error(f, n, w_off, &o, 8, "data range [18446744073709551584, 2^64 or more) (204 bytes)");
        }
    }
    /* a file's path appears once in its errors */
    {
        char p2[] = "/tmp/pulse_test_gguf_path_XXXXXX";
        int fd2 = mkstemp(p2);
        CHECK(fd2 >= 0);
        if (fd2 >= 0) {
            close(fd2);
            uint8_t *c2 = malloc(n);
            memcpy(c2, f, n);
            memcpy(c2, "GGUX", 4);
            CHECK_OK(pulse_write_file_atomic(p2, c2, n));
            CHECK(pulse_gguf_open(p2, &g) == PULSE_ERR_FORMAT && g == NULL);
            const char *e = pulse_last_error(), *first = strstr(e, p2);
            CHECK_MSG(first && !strstr(first + 1, p2), "%s", e);
            free(c2);
            remove(p2);
        }
    }

    /* random byte flips: open or fail cleanly (ASan/UBSan runs check memory safety) */
    pulse_rng r;
    pulse_rng_seed(&r, 7);
    int clean = 1, opened = 0;
    uint8_t *c = malloc(n);
    for (int it = 0; it < 3000; it++) {
        memcpy(c, f, n);
        int flips = 1 + (int)pulse_rng_below(&r, 4);
        for (int j = 0; j < flips; j++)
            c[pulse_rng_below(&r, (uint32_t)n)] ^= (uint8_t)(1 + pulse_rng_below(&r, 255));
        pulse_clear_error();
        pulse_status st = pulse_gguf_open_memory(c, n, &g);
        if (st == PULSE_OK) {
            opened++;
            for (size_t i = 0; i < pulse_gguf_n_tensors(g); i++) {
                const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
                clean &= (const uint8_t *)t->data + t->nbytes <= c + n;
            }
            char buf[128];
            for (size_t i = 0; i < pulse_gguf_n_kv(g); i++) pulse_gguf_kv_format(g, i, buf, sizeof buf);
            pulse_gguf_close(g);
        } else {
            clean &= g == NULL && pulse_last_error()[0] != 0;
        }
    }
    free(c);
    CHECK(clean);
    printf("random flips: %d of 3000 still opened\n", opened);
    /* empty and vocab-only (no tensors) files */
    CHECK(pulse_gguf_open_memory(f, 0, &g) != PULSE_OK);
    gguf_builder vb;
    gb_init(&vb);
    gb_kv_arr_str(&vb, "tokenizer.ggml.tokens", TOKS, 4);
    uint8_t *vf;
    size_t vn = gb_finish(&vb, &vf);
    CHECK_OK(pulse_gguf_open_memory(vf, vn, &g));
    if (g) {
        CHECK(pulse_gguf_n_tensors(g) == 0 && pulse_gguf_n_kv(g) == 1);
        pulse_gguf_close(g);
    }
    free(vf);
    free(f);
    return test_summary();
}
