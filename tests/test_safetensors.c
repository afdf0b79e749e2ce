/* tests/test_safetensors.c — safetensors writer/reader round trip, F16/BF16 conversion, and rejection of
 * malformed files (short file, header past the end, offsets outside the data, size/shape mismatch, overlap,
 * bad dtype) with clear errors and no crash. */
#include "pulse/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static char dir[256];

static void write_raw(const char *path, const char *json, const void *data, size_t dlen,
                      uint64_t hlen_override) {
    FILE *f = fopen(path, "wb");
    uint64_t hl = hlen_override ? hlen_override : strlen(json);
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hl >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(json, 1, strlen(json), f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
}

static pulse_status open_raw(const char *json, const void *data, size_t dlen, uint64_t hl) {
    char p[300];
    snprintf(p, sizeof p, "%s/raw.safetensors", dir);
    write_raw(p, json, data, dlen, hl);
    pulse_safetensors *st = NULL;
    pulse_status rc = pulse_safetensors_open(&st, p);
    CHECK(rc == PULSE_OK ? st != NULL : st == NULL);
    pulse_safetensors_close(st);
    return rc;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/pulse_test_st_%d", (int)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);

    /* round trip */
    float a[6] = {1, -2, 3.5f, 4, 5, 6e-8f}, b[3] = {7, 8, 9};
    pulse_st_out outs[2] = {{"layer.a", a, 2, {2, 3}}, {"b", b, 1, {3}}};
    const char *meta[2] = {"format", "pt"};
    char path[300];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    CHECK_OK(pulse_safetensors_write(path, outs, 2, meta, 1));
    pulse_safetensors *st = NULL;
    CHECK_OK(pulse_safetensors_open(&st, path));
    if (st) {
        CHECK(pulse_safetensors_count(st) == 2);
        const pulse_st_tensor *t = pulse_safetensors_find(st, "layer.a");
        CHECK(t && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == PULSE_ST_F32);
        CHECK(t && ((uintptr_t)t->data % 8) == 0);
        CHECK(pulse_safetensors_metadata(st, "format") &&
              strcmp(pulse_safetensors_metadata(st, "format"), "pt") == 0);
        CHECK(pulse_safetensors_metadata(st, "nope") == NULL);
        float r[6] = {0};
        int64_t shp[2] = {2, 3};
        CHECK_OK(pulse_safetensors_read_f32(st, "layer.a", r, 6, 2, shp));
        CHECK(memcmp(r, a, sizeof a) == 0);
        int64_t bad[2] = {3, 2};
        CHECK(pulse_safetensors_read_f32(st, "layer.a", r, 6, 2, bad) == PULSE_ERR_FORMAT);
        CHECK(strstr(pulse_last_error(), "expected shape [3, 2], found [2, 3]") != NULL);
        CHECK(pulse_safetensors_read_f32(st, "missing", r, 6, 0, NULL) == PULSE_ERR_FORMAT);
        CHECK(pulse_safetensors_read_f32(st, "b", r, 4, 0, NULL) == PULSE_ERR_FORMAT);
        CHECK_OK(pulse_safetensors_read_f32(st, "b", r, 3, 0, NULL));
        CHECK(r[0] == 7 && r[2] == 9);
        pulse_safetensors_close(st);
    }
    snprintf(cmd, sizeof cmd, "%s.tmp", path);
    CHECK(access(cmd, F_OK) != 0); /* no temp file left behind */

    /* duplicate names are refused by the writer */
    pulse_st_out dup[2] = {{"b", b, 1, {3}}, {"b", b, 1, {3}}};
    CHECK(pulse_safetensors_write(path, dup, 2, NULL, 0) == PULSE_ERR_ARG);

    /* F16 and BF16: 1.0, -2.0, 0.5, a subnormal f16 (2^-24), 65504 */
    uint16_t h[5] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff};
    uint16_t bf[2] = {0x3f80, 0xc0a0}; /* 1.0, -5.0 */
    uint8_t data[14];
    memcpy(data, h, 10);
    memcpy(data + 10, bf, 4);
    const char *j16 = "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
                      "\"g\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[10,14]}}";
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    write_raw(path, j16, data, sizeof data, 0);
    CHECK_OK(pulse_safetensors_open(&st, path));
    if (st) {
        float r[5];
        CHECK_OK(pulse_safetensors_read_f32(st, "h", r, 5, 0, NULL));
        CHECK(r[0] == 1.0f && r[1] == -2.0f && r[2] == 0.5f && r[3] == ldexpf(1.0f, -24) && r[4] == 65504.0f);
        CHECK_OK(pulse_safetensors_read_f32(st, "g", r, 2, 0, NULL));
        CHECK(r[0] == 1.0f && r[1] == -5.0f);
        pulse_safetensors_close(st);
    }

    /* malformed files */
    float z[4] = {0};
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 16, 0) ==
          PULSE_OK);
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 12, 0) ==
          PULSE_ERR_FORMAT); /* data past the end */
    CHECK(strstr(pulse_last_error(), "outside") != NULL);
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}}", z, 16, 0) ==
          PULSE_ERR_FORMAT); /* shape vs bytes */
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   z, 16, 0) == PULSE_ERR_FORMAT); /* overlap */
    CHECK(strstr(pulse_last_error(), "overlap") != NULL);
    /* a repeated name (found by fuzz/safetensors.c): rejected, not resolved to either tensor */
    CHECK(open_raw("{\"h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"h\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                   z, 16, 0) == PULSE_ERR_FORMAT);
    CHECK(strstr(pulse_last_error(), "tensor 'h' appears twice") != NULL);
    CHECK(open_raw("{\"a\":{\"dtype\":\"Q9\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 16, 0) ==
          PULSE_ERR_FORMAT);
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", z, 16, 0) ==
          PULSE_ERR_FORMAT);
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", z, 16, 0) ==
          PULSE_ERR_FORMAT);
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", z, 16, 0) == PULSE_ERR_FORMAT);
    CHECK(open_raw("[1,2]", z, 16, 0) == PULSE_ERR_FORMAT);
    CHECK(open_raw("{\"a\":", z, 16, 0) == PULSE_ERR_FORMAT);
    CHECK(open_raw("{}", z, 0, 1000000) == PULSE_ERR_FORMAT); /* header length past the end */
    CHECK(open_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", z,
                   16, 0) == PULSE_ERR_FORMAT); /* overflow */
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    CHECK(pulse_safetensors_open(&st, path) == PULSE_ERR_FORMAT);
    CHECK(pulse_safetensors_open(&st, "/nonexistent/x.safetensors") != PULSE_OK);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
