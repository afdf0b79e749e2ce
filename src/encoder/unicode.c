/* encoder/unicode.c — owns UTF-8 decoding/encoding and lookups in the generated Unicode tables (category
 * flags, NFD with algorithmic Hangul, lowercase) used by the WordPiece BasicTokenizer. */
#include "encoder/unicode.h"

int enc_uni_flags(uint32_t cp) {
    int lo = 0, hi = enc_uni_n_flag_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < enc_uni_flag_ranges[mid][0])
            hi = mid - 1;
        else if (cp > enc_uni_flag_ranges[mid][1])
            lo = mid + 1;
        else
            return (int)enc_uni_flag_ranges[mid][2];
    }
    return 0;
}

int enc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if ((size_t)len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return len;
    }
    *cp = v;
    return len;
}

int enc_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int find_map(const uint32_t (*tab)[3], int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < tab[mid][0])
            hi = mid - 1;
        else if (cp > tab[mid][0])
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

int enc_uni_nfd(uint32_t cp, uint32_t *out) {
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V (T) */
        uint32_t s = cp - 0xAC00, l = 0x1100 + s / 588, v = 0x1161 + (s % 588) / 28, t = 0x11A7 + s % 28;
        out[0] = l;
        out[1] = v;
        if (t == 0x11A7) return 2;
        out[2] = t;
        return 3;
    }
    int i = cp < 0xC0 ? -1 : find_map(enc_uni_nfd_tab, enc_uni_n_nfd, cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    int n = (int)enc_uni_nfd_tab[i][2];
    if (n > 32) n = 32;
    for (int j = 0; j < n; j++) out[j] = enc_uni_pool[enc_uni_nfd_tab[i][1] + (uint32_t)j];
    return n;
}

int enc_uni_lower(uint32_t cp, uint32_t *out) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    int i = find_map(enc_uni_lower_tab, enc_uni_n_lower, cp);
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    int n = (int)enc_uni_lower_tab[i][2];
    if (n > 4) n = 4;
    for (int j = 0; j < n; j++) out[j] = enc_uni_pool[enc_uni_lower_tab[i][1] + (uint32_t)j];
    return n;
}
