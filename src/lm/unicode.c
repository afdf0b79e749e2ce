/* src/lm/unicode.c — UTF-8 decoding/encoding with llama.cpp's treatment of invalid input (U+FFFD, one byte).
 * The category table itself is generated: src/lm/unicode_table.c. */
#include "lm/unicode.h"

uint32_t pulse_utf8_decode(const char *str, size_t n, size_t *off) {
    const uint8_t *s = (const uint8_t *)str;
    size_t o = *off;
    uint8_t b = s[o];
    if (!(b & 0x80)) {
        *off = o + 1;
        return b;
    }
    if (!(b & 0x40)) goto invalid;
    if (!(b & 0x20)) {
        if (o + 1 >= n || (s[o + 1] & 0xC0) != 0x80) goto invalid;
        *off = o + 2;
        return ((uint32_t)(b & 0x1F) << 6) | (s[o + 1] & 0x3F);
    }
    if (!(b & 0x10)) {
        if (o + 2 >= n || (s[o + 1] & 0xC0) != 0x80 || (s[o + 2] & 0xC0) != 0x80) goto invalid;
        *off = o + 3;
        return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[o + 1] & 0x3F) << 6) | (s[o + 2] & 0x3F);
    }
    if (!(b & 0x08)) {
        if (o + 3 >= n || (s[o + 1] & 0xC0) != 0x80 || (s[o + 2] & 0xC0) != 0x80 || (s[o + 3] & 0xC0) != 0x80)
            goto invalid;
        *off = o + 4;
        return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[o + 1] & 0x3F) << 12) |
               ((uint32_t)(s[o + 2] & 0x3F) << 6) | (s[o + 3] & 0x3F);
    }
invalid:
    *off = o + 1;
    return 0xFFFD;
}

int pulse_utf8_encode(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp <= 0x7F) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp <= 0xFFFF) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) cp = 0xFFFD; /* cannot be encoded: write U+FFFD instead */
    if (cp <= 0xFFFF) return pulse_utf8_encode(cp, out);
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}
