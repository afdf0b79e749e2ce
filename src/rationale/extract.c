/* rationale/extract.c — owns extraction of a rationale from a small model's raw output: JSON or pseudo-JSON
 * ({"rationale": "..."} with double or single quotes, any key case), code fences, trailing text, a string
 * left open at the token limit, an answer nested in an answer, else plain text; and the checks that keep
 * junk out of the store (empty, a copy of the prompt, no content words). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pulse/rationale.h"

const char *pulse_extract_status_str(pulse_extract_status s) {
    switch (s) {
    case PULSE_EXTRACT_OK:
        return "ok";
    case PULSE_EXTRACT_EMPTY:
        return "empty";
    case PULSE_EXTRACT_COPY:
        return "copy of the prompt";
    case PULSE_EXTRACT_NO_CONTENT:
        return "no content words";
    }
    return "?";
}

int pulse_count_words(const char *s) {
    int n = 0, in = 0;
    for (; s && *s; s++) {
        int sp = isspace((unsigned char)*s);
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

/* the chars [a, b) with JSON escapes resolved (both quote kinds), whitespace runs collapsed to one space,
 * trimmed */
static char *unescape(const char *a, const char *b) {
    char *o = malloc((size_t)(b - a) * 3 + 1);
    if (!o) return NULL;
    size_t n = 0;
    for (const char *p = a; p < b; p++) {
        char c = *p;
        if (c == '\\' && p + 1 < b) {
            char e = *++p;
            switch (e) {
            case 'n':
            case 't':
            case 'r':
                c = ' ';
                break;
            case 'u':
                if (p + 4 < b && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) &&
                    isxdigit((unsigned char)p[3]) && isxdigit((unsigned char)p[4])) {
                    unsigned cp = (unsigned)strtoul((char[]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
                    p += 4;
                    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) continue; /* no NUL, no lone surrogates */
                    if (cp < 0x80)
                        o[n++] = (char)cp;
                    else if (cp < 0x800) {
                        o[n++] = (char)(0xC0 | (cp >> 6));
                        o[n++] = (char)(0x80 | (cp & 0x3F));
                    } else {
                        o[n++] = (char)(0xE0 | (cp >> 12));
                        o[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                        o[n++] = (char)(0x80 | (cp & 0x3F));
                    }
                    continue;
                }
                c = 'u';
                break;
            default:
                c = e; /* \" \' \\ \/ and anything else: the character itself */
            }
        }
        if ((unsigned char)c < 0x20 || c == 0x7f) c = ' ';
        if (c == ' ' && (n == 0 || o[n - 1] == ' ')) continue;
        o[n++] = c;
    }
    while (n > 0 && o[n - 1] == ' ') n--;
    o[n] = 0;
    return o;
}

/* the closing quote q of a string starting at p: an unescaped q followed by optional spaces and then '}',
 * ',' + a quote, a newline or the end; NULL when the string is left open */
static const char *close_quote(const char *p, char q) {
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p != q) continue;
        const char *r = p + 1;
        while (*r == ' ' || *r == '\t' || *r == '\r') r++;
        if (*r == 0 || *r == '}' || *r == '\n') return p;
        if (*r == ',') {
            const char *t = r + 1;
            while (isspace((unsigned char)*t)) t++;
            if (*t == '"' || *t == '\'' || *t == 0) return p;
        }
    }
    return NULL;
}

/* the value after a "rationale" key in s, or NULL when there is no such key */
static char *keyed_value(const char *s) {
    for (const char *k = s; (k = strcasestr(k, "rationale")) != NULL; k += 9) {
        const char *p = k + 9;
        if (*p == '"' || *p == '\'') p++;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != ':') continue;
        p++;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            const char *e = close_quote(p, q);
            if (!e) {
                /* open at the token limit: up to the end, a dangling quote / brace dropped */
                e = p + strlen(p);
                while (e > p && (isspace((unsigned char)e[-1]) || e[-1] == '}' || e[-1] == q)) e--;
            }
            return unescape(p, e);
        }
        /* unquoted: up to the end of the line or object */
        const char *e = p;
        while (*e && *e != '\n' && *e != '}') e++;
        return unescape(p, e);
    }
    return NULL;
}

/* s without ``` fences (a fence line's language tag included) */
static char *strip_fences(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (const char *p = s; *p;) {
        if (p[0] == '`' && p[1] == '`' && p[2] == '`') {
            p += 3;
            while (isalpha((unsigned char)*p)) p++; /* ```json */
            o[k++] = ' ';
            continue;
        }
        o[k++] = *p++;
    }
    o[k] = 0;
    return o;
}

/* lower-cased words (letters and digits) of s into a NUL-separated list; returns the count */
static int words_of(const char *s, char ***out) {
    int cap = 16, n = 0;
    char **w = malloc(sizeof(char *) * (size_t)cap);
    if (!w) return -1;
    for (const char *p = s; *p;) {
        while (*p && !isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80)) p++;
        const char *a = p;
        while (*p && (isalnum((unsigned char)*p) || ((unsigned char)*p & 0x80) || *p == '\'')) p++;
        if (p == a) continue;
        if (n == cap) {
            cap *= 2;
            char **nw = realloc(w, sizeof(char *) * (size_t)cap);
            if (!nw) break;
            w = nw;
        }
        char *t = strndup(a, (size_t)(p - a));
        if (!t) break;
        for (char *c = t; *c; c++) *c = (char)tolower((unsigned char)*c);
        w[n++] = t;
    }
    *out = w;
    return n;
}
static void free_words(char **w, int n) {
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
}

static const char *const STOP[] = {
    "the",         "and",        "for",         "with",     "that",   "this",    "are",       "was",
    "were",        "has",        "have",        "had",      "not",    "but",     "you",       "your",
    "yours",       "their",      "they",        "them",     "its",    "his",     "her",       "she",
    "him",         "our",        "from",        "into",     "onto",   "than",    "then",      "there",
    "here",        "what",       "which",       "who",      "whom",   "why",     "how",       "when",
    "where",       "will",       "would",       "can",      "could",  "should",  "may",       "might",
    "must",        "also",       "very",        "just",     "all",    "any",     "some",      "more",
    "most",        "such",       "these",       "those",    "been",   "being",   "does",      "did",
    "doing",       "each",       "other",       "only",     "over",   "under",   "about",     "out",
    "off",         "one",        "two",         "too",      "who's",  "it's",    "rationale", "json",
    "answer",      "text",       "insert",      "example",  "null",   "none",    "string",    "placeholder",
    "item",        "items",      "user",        "chosen",   "next",   "history", "reason",    "reasons",
    "reasoning",   "choose",     "chose",       "choosing", "choice", "fit",     "fits",      "fitting",
    "latent",      "preference", "preferences", "concise",  "words",  "analyst", "explain",   "explains",
    "explanation", "infer",      "product",     "products",
};

/* 1 when s is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) */
static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2)) return 0;
        unsigned cp = n == 0 ? c : c & (0x3Fu >> n);
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        p += n + 1;
    }
    return 1;
}

static int is_stop(const char *w) {
    if (strlen(w) < 3) return 1;
    /* a content word has letters and at least 3 different characters ("XXXXX", "aaa" are not words) */
    int letters = 0, distinct = 0;
    for (const char *c = w; *c; c++) {
        letters += isalpha((unsigned char)*c) || ((unsigned char)*c & 0x80);
        int seen = 0;
        for (const char *d = w; d < c && !seen; d++) seen = *d == *c;
        distinct += !seen;
    }
    if (letters < 2 || distinct < 3) return 1;
    int digits = 1;
    for (const char *c = w; *c; c++) digits &= isdigit((unsigned char)*c) != 0;
    if (digits) return 1;
    for (size_t i = 0; i < sizeof STOP / sizeof *STOP; i++)
        if (!strcmp(w, STOP[i])) return 1;
    return 0;
}

/* judge an extracted text against the prompt */
static pulse_extract_status judge(const char *text, const char *prompt) {
    char **w = NULL;
    int n = words_of(text, &w);
    if (n < 0) return PULSE_EXTRACT_EMPTY;
    pulse_extract_status r = PULSE_EXTRACT_OK;
    if (n < 3) r = PULSE_EXTRACT_EMPTY;
    if (!r && !valid_utf8(text)) r = PULSE_EXTRACT_NO_CONTENT; /* byte soup */
    /* content words: distinct non-stop words; a degenerate repetition has few distinct words */
    int distinct = 0, content = 0;
    for (int i = 0; i < n && !r; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(w[i], w[j]);
        if (seen) continue;
        distinct++;
        content += !is_stop(w[i]);
    }
    if (!r && (content < 3 || (n >= 12 && distinct * 4 < n))) r = PULSE_EXTRACT_NO_CONTENT;
    if (!r && prompt) {
        char **pw = NULL;
        int pn = words_of(prompt, &pw);
        if (pn > 0) {
            /* share of the text's word trigrams found in the prompt (a short text: its whole word run) */
            int g = n >= 3 ? 3 : n, total = 0, hit = 0;
            for (int i = 0; i + g <= n; i++) {
                total++;
                int found = 0;
                for (int j = 0; j + g <= pn && !found; j++) {
                    int k = 0;
                    while (k < g && !strcmp(w[i + k], pw[j + k])) k++;
                    found = k == g;
                }
                hit += found;
            }
            if (total > 0 && hit * 10 >= total * 7) r = PULSE_EXTRACT_COPY;
        }
        if (pn >= 0) free_words(pw, pn);
    }
    free_words(w, n);
    return r;
}

static char *first_string_value(const char *s) {
    const char *a = strchr(s, '{');
    if (!a) return NULL;
    const char *b = strrchr(s, '}');
    if (!b || b < a) return NULL;
    char *obj = strndup(a, (size_t)(b - a + 1));
    if (!obj) return NULL;
    cJSON *j = cJSON_Parse(obj);
    free(obj);
    char *out = NULL;
    if (j && cJSON_IsObject(j)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            if (cJSON_IsString(it) && it->valuestring[0]) {
                out = unescape(it->valuestring, it->valuestring + strlen(it->valuestring));
                break;
            }
        }
    }
    cJSON_Delete(j);
    return out;
}

pulse_extract_status pulse_rationale_extract(const char *raw, const char *prompt, char **text) {
    *text = NULL;
    if (!raw) return PULSE_EXTRACT_EMPTY;
    char *s = strip_fences(raw);
    if (!s) return PULSE_EXTRACT_EMPTY;
    char *v = keyed_value(s);
    /* an answer nested in the answer ({"rationale": "{"rationale": "..."}"}): the inner one */
    for (int depth = 0; v && depth < 3 && strcasestr(v, "rationale") && strchr(v, ':'); depth++) {
        char *inner = keyed_value(v);
        if (!inner) break;
        free(v);
        v = inner;
    }
    if (!v) v = first_string_value(s);
    if (!v) {
        /* plain text: the model ignored the format */
        v = unescape(s, s + strlen(s));
        if (v && (v[0] == '{' || v[0] == '[')) { /* a JSON-looking text without a usable value */
            free(v);
            v = NULL;
        }
    }
    free(s);
    if (!v) return PULSE_EXTRACT_EMPTY;
    /* leftovers of the format at the ends */
    size_t n = strlen(v);
    while (n > 0 &&
           (v[n - 1] == '"' || v[n - 1] == '\'' || v[n - 1] == '}' || v[n - 1] == ' ' || v[n - 1] == '`'))
        v[--n] = 0;
    size_t a = 0;
    while (v[a] == '"' || v[a] == '\'' || v[a] == ' ' || v[a] == '{') a++;
    if (a) memmove(v, v + a, n - a + 1);
    pulse_extract_status r = judge(v, prompt);
    if (r != PULSE_EXTRACT_OK) {
        free(v);
        return r;
    }
    *text = v;
    return PULSE_EXTRACT_OK;
}
