/* recommend/text.c — owns the title text of the recommender: HTML entity decoding, the authors' match
 * normalisation (unescape, lower-case, punctuation stripped, spaces collapsed), the generate decoder's hit
 * rule and the display titles prompts show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/unicode.h"
#include "pulse/recommend.h"

static const struct {
    const char *name;
    uint32_t cp;
} ENTITIES[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"reg", 0xAE},     {"copy", 0xA9},     {"trade", 0x2122}, {"eacute", 0xE9},
    {"egrave", 0xE8},  {"ndash", 0x2013}, {"mdash", 0x2014},  {"rsquo", 0x2019}, {"lsquo", 0x2018},
    {"rdquo", 0x201D}, {"ldquo", 0x201C}, {"hellip", 0x2026}, {"deg", 0xB0},     {"frac12", 0xBD},
};

char *pulse_html_unescape(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) {
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') {
            const char *semi = memchr(s + i + 1, ';', n - i - 1 < 12 ? n - i - 1 : 12);
            if (semi) {
                const char *b = s + i + 1;
                size_t bl = (size_t)(semi - b);
                uint32_t cp = 0;
                int ok = 0;
                if (bl >= 2 && b[0] == '#') {
                    int hex = b[1] == 'x' || b[1] == 'X';
                    size_t j = hex ? 2 : 1;
                    ok = j < bl;
                    for (; ok && j < bl; j++) {
                        char c = b[j];
                        int d = c >= '0' && c <= '9'          ? c - '0'
                                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                              : -1;
                        if (d < 0 || cp > 0x10FFFF)
                            ok = 0;
                        else
                            cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
                    }
                    if (ok && (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) cp = 0xFFFD;
                } else {
                    for (size_t e = 0; e < sizeof ENTITIES / sizeof *ENTITIES && !ok; e++)
                        if (strlen(ENTITIES[e].name) == bl && !memcmp(ENTITIES[e].name, b, bl)) {
                            cp = ENTITIES[e].cp;
                            ok = 1;
                        }
                }
                if (ok) {
                    k += (size_t)pulse_utf8_encode(cp, o + k); /* <= 4 bytes, never more than the entity */
                    i += bl + 2;
                    continue;
                }
            }
        }
        o[k++] = s[i++];
    }
    o[k] = 0;
    return o;
}

char *pulse_rec_normalize(const char *s) {
    char *u = pulse_html_unescape(s ? s : "");
    if (!u) return NULL;
    size_t n = strlen(u), k = 0;
    char *o = malloc(n + 1);
    if (!o) {
        free(u);
        pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int space = 1; /* at the start: drop leading spaces */
    for (size_t off = 0; off < n;) {
        uint32_t cp = pulse_utf8_decode(u, n, &off);
        unsigned cat = pulse_ucat(cp);
        if (cp < 0x80) { /* ASCII: Python's \w is [A-Za-z0-9_] */
            if (cp >= 'A' && cp <= 'Z') cp += 32;
            int word = (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || cp == '_';
            int ws = cp == ' ' || (cp >= 9 && cp <= 13);
            if (ws) {
                if (!space) o[k++] = ' ';
                space = 1;
            } else if (word) {
                o[k++] = (char)cp;
                space = 0;
            }
            continue;
        }
        if ((cat & PULSE_UCAT_WS) || (cat & PULSE_UCAT_MASK) == PULSE_UCAT_Z) {
            if (!space) o[k++] = ' ';
            space = 1;
            continue;
        }
        unsigned c = cat & PULSE_UCAT_MASK;
        if (c != PULSE_UCAT_L && c != PULSE_UCAT_N) continue; /* punctuation, symbols, marks, controls */
        if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) cp += 32; /* Latin-1 capitals */
        k += (size_t)pulse_utf8_encode(cp, o + k);
        space = 0;
    }
    while (k > 0 && o[k - 1] == ' ') k--;
    o[k] = 0;
    free(u);
    return o;
}

int pulse_rec_title_match(const char *target, const char *output) {
    char *t = pulse_rec_normalize(target), *o = pulse_rec_normalize(output);
    int hit = t && o && *t && strstr(o, t) != NULL;
    free(t);
    free(o);
    return hit;
}

char *pulse_rec_item_title(const pulse_dataset *ds, int item, int max_bytes) {
    const char *t = pulse_dataset_item_title(ds, item);
    char keybuf[64];
    if (!t || !*t) {
        const char *key = pulse_dataset_item_key(ds, item);
        snprintf(keybuf, sizeof keybuf, "item %s", key ? key : "?");
        t = keybuf;
    }
    char *u = pulse_html_unescape(t);
    if (!u) return NULL;
    /* whitespace and control characters -> one space; trimmed */
    size_t k = 0;
    int space = 1;
    for (size_t i = 0; u[i]; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= ' ' || c == 0x7F) {
            if (!space) u[k++] = ' ';
            space = 1;
        } else {
            u[k++] = (char)c;
            space = 0;
        }
    }
    while (k > 0 && u[k - 1] == ' ') k--;
    u[k] = 0;
    if (max_bytes > 0 && k > (size_t)max_bytes) {
        size_t cut = (size_t)max_bytes;
        while (cut > 0 && ((unsigned char)u[cut] & 0xC0) == 0x80) cut--; /* a UTF-8 boundary */
        while (cut > 0 && u[cut - 1] == ' ') cut--;
        u[cut] = 0;
    }
    return u;
}
