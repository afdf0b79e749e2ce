/* encoder/wordpiece.c — owns the BERT tokenizer as Hugging Face `tokenizers` runs it for BERT models:
 * special tokens matched verbatim in the raw text; BertNormalizer (clean text: drop NUL, U+FFFD and control
 * characters, whitespace -> ' '; spaces around CJK ideographs; strip accents = NFD minus non-spacing marks;
 * lowercase); BertPreTokenizer (split on whitespace, isolate punctuation); greedy longest-match-first
 * WordPiece with the "##" continuation prefix, [UNK] for a word with an unmatched piece or > 100 characters;
 * [CLS] ... [SEP] with truncation. */
#include "encoder/wordpiece.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "encoder/unicode.h"

int pulse_wordpiece_lookup(const pulse_wordpiece *wp, const char *s, size_t len) {
    return pulse_strmap_get(&wp->vocab, s, len);
}

/* The table for ids 0..n-1 from tok[id] (NULL: absent, kept as "" and no key), in id order so that a
 * string's id in the table is its vocabulary id; no keys yet. */
static pulse_status vocab_fill(pulse_wordpiece *wp, const char *const *tok, int n) {
    wp->n_vocab = n;
    size_t keys = 0;
    for (int id = 0; id < n; id++) keys += tok[id] != NULL;
    if (pulse_strmap_reserve(&wp->vocab, keys) != 0) return PULSE_ERR_NOMEM;
    for (int id = 0; id < n; id++) {
        if (!tok[id] && !wp->absent && !(wp->absent = pulse_calloc((size_t)n, 1))) return PULSE_ERR_NOMEM;
        if (!tok[id]) wp->absent[id] = 1;
        const char *t = tok[id] ? tok[id] : "";
        if (pulse_strmap_add(&wp->vocab, t, strlen(t)) != id) return PULSE_ERR_NOMEM;
    }
    return PULSE_OK;
}

/* id's token becomes a key; a repeated token: the later id wins, as in HF */
static pulse_status vocab_map(pulse_wordpiece *wp, int id) {
    return pulse_strmap_map(&wp->vocab, id, 1) < -1 ? PULSE_ERR_NOMEM : PULSE_OK;
}

void pulse_wordpiece_free(pulse_wordpiece *wp) {
    if (!wp) return;
    for (int i = 0; i < wp->n_added; i++) free(wp->added[i]);
    pulse_strmap_free(&wp->vocab);
    free(wp->absent);
    free(wp->added);
    free(wp->added_ids);
    memset(wp, 0, sizeof *wp);
}

static pulse_status add_special(pulse_wordpiece *wp, const char *s, int id) {
    if (!s || !s[0] || id < 0) return PULSE_OK;
    for (int i = 0; i < wp->n_added; i++)
        if (strcmp(wp->added[i], s) == 0) return PULSE_OK;
    char **a = realloc(wp->added, sizeof *a * (size_t)(wp->n_added + 1));
    if (!a) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    wp->added = a;
    int *ai = realloc(wp->added_ids, sizeof *ai * (size_t)(wp->n_added + 1));
    if (!ai) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    wp->added_ids = ai;
    size_t len = strlen(s);
    char *c = pulse_malloc(len + 1);
    if (!c) return PULSE_ERR_NOMEM;
    memcpy(c, s, len + 1);
    wp->added[wp->n_added] = c;
    wp->added_ids[wp->n_added] = id;
    wp->n_added++;
    wp->added_first[(unsigned char)s[0]] = 1;
    return PULSE_OK;
}

static int json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* finds the BertNormalizer inside a normalizer (directly or inside a Sequence) */
static const cJSON *find_bert_normalizer(const cJSON *n) {
    if (!cJSON_IsObject(n)) return NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (cJSON_IsString(t) && strcmp(t->valuestring, "BertNormalizer") == 0) return n;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
    const cJSON *e;
    for (e = seq ? seq->child : NULL; e; e = e->next) {
        const cJSON *r = find_bert_normalizer(e);
        if (r) return r;
    }
    return NULL;
}

/* ids above this are refused (the largest BERT vocabularies have ~250k entries) */
#define WP_MAX_ID 10000000

/* a JSON number that is an integer id in [0, WP_MAX_ID) */
static int is_id(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < WP_MAX_ID &&
           v->valuedouble == (double)v->valueint;
}

static pulse_status load_tokenizer_json(pulse_wordpiece *wp, const char *path) {
    char *text = NULL;
    size_t len = 0;
    pulse_status rc = pulse_read_file(path, &text, &len);
    if (rc != PULSE_OK) return rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return pulse_set_error(PULSE_ERR_PARSE, "%s: not valid JSON", path);
    const char **tok = NULL; /* id -> the winning entry's string (inside root) */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab) || (cJSON_IsString(type) && strcmp(type->valuestring, "WordPiece") != 0)) {
        rc = pulse_set_error(PULSE_ERR_UNSUPPORTED,
                             "%s: model.type: expected WordPiece with a vocab object, found %s", path,
                             cJSON_IsString(type) ? type->valuestring : "none");
        goto done;
    }
    int max_id = -1;
    const cJSON *e;
    for (e = vocab ? vocab->child : NULL; e; e = e->next) {
        if (!is_id(e)) {
            rc = pulse_set_error(PULSE_ERR_PARSE, "%s: model.vocab['%s']: expected an integer id in [0, %d)",
                                 path, e->string ? e->string : "", WP_MAX_ID);
            goto done;
        }
        if (e->valueint > max_id) max_id = e->valueint;
    }
    if (max_id < 0) {
        rc = pulse_set_error(PULSE_ERR_PARSE, "%s: model.vocab: empty vocabulary", path);
        goto done;
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added)) {
        rc = pulse_set_error(PULSE_ERR_PARSE, "%s: added_tokens: expected an array", path);
        goto done;
    }
    int k = 0;
    for (e = added ? added->child : NULL; e; e = e->next, k++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!is_id(id) || !cJSON_IsString(content)) {
            rc = pulse_set_error(PULSE_ERR_PARSE,
                                 "%s: added_tokens[%d]: expected \"id\" an integer in [0, %d) and a "
                                 "\"content\" string",
                                 path, k, WP_MAX_ID);
            goto done;
        }
        if (id->valueint > max_id) max_id = id->valueint;
    }
    /* a repeated id: its first entry wins (vocab, then added_tokens for ids the vocab lacks) */
    tok = pulse_calloc((size_t)max_id + 1, sizeof *tok);
    if (!tok) {
        rc = PULSE_ERR_NOMEM;
        goto done;
    }
    for (e = vocab ? vocab->child : NULL; e; e = e->next)
        if (!tok[e->valueint]) tok[e->valueint] = e->string;
    for (e = added ? added->child : NULL; e; e = e->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!tok[id->valueint]) tok[id->valueint] = content->valuestring;
    }
    if ((rc = vocab_fill(wp, tok, max_id + 1)) != PULSE_OK) goto done;
    /* keys in the order of the entries that won their id, so a repeated token maps to its last one */
    for (e = vocab ? vocab->child : NULL; e; e = e->next)
        if (tok[e->valueint] == e->string && (rc = vocab_map(wp, e->valueint)) != PULSE_OK) goto done;
    for (e = added ? added->child : NULL; e; e = e->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (tok[id->valueint] == content->valuestring && (rc = vocab_map(wp, id->valueint)) != PULSE_OK)
            goto done;
        if ((rc = add_special(wp, content->valuestring, id->valueint)) != PULSE_OK) goto done;
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk))
        wp->unk_id = pulse_wordpiece_lookup(wp, unk->valuestring, strlen(unk->valuestring));
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    if (cJSON_IsString(pre) && strlen(pre->valuestring) < sizeof wp->prefix)
        strcpy(wp->prefix, pre->valuestring);
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    if (cJSON_IsNumber(mc) && mc->valueint > 0) wp->max_chars = mc->valueint;
    const cJSON *norm = find_bert_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
    if (norm) {
        wp->clean_text = json_bool(norm, "clean_text", 1);
        wp->chinese = json_bool(norm, "handle_chinese_chars", 1);
        wp->lowercase = json_bool(norm, "lowercase", 1);
        wp->strip_accents = json_bool(norm, "strip_accents", wp->lowercase);
    } else {
        wp->clean_text = wp->chinese = wp->lowercase = wp->strip_accents = 0;
    }
done:
    free(tok);
    cJSON_Delete(root);
    return rc;
}

static pulse_status load_vocab_txt(pulse_wordpiece *wp, const char *dir, const char *path) {
    char *text = NULL;
    size_t len = 0;
    pulse_status rc = pulse_read_file(path, &text, &len);
    if (rc != PULSE_OK) return rc;
    const char *nul = memchr(text, 0, len);
    if (nul) {
        int line = 1;
        for (const char *q = text; q < nul; q++) line += *q == '\n';
        free(text);
        return pulse_set_error(PULSE_ERR_PARSE, "%s:%d: NUL byte in a vocabulary entry", path, line);
    }
    int n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (len > 0 && text[len - 1] != '\n') n++;
    if (n == 0) {
        free(text);
        return pulse_set_error(PULSE_ERR_PARSE, "%s: empty vocabulary", path);
    }
    const char **tok = pulse_malloc((size_t)n * sizeof *tok);
    if (!tok) {
        free(text);
        return PULSE_ERR_NOMEM;
    }
    char *p = text;
    for (int id = 0; id < n; id++) {
        char *nl = strchr(p, '\n');
        char *end = nl ? nl : p + strlen(p);
        if (end > p && end[-1] == '\r') end[-1] = 0;
        *end = 0;
        tok[id] = p;
        p = nl ? nl + 1 : end;
    }
    rc = vocab_fill(wp, tok, n);
    for (int id = 0; id < n && rc == PULSE_OK; id++) rc = vocab_map(wp, id);
    free(tok);
    free(text);
    if (rc != PULSE_OK) return rc;
    wp->lowercase = 1;
    wp->chinese = 1;
    wp->clean_text = 1;
    int strip = -1;
    char cfg[4096];
    pulse_path_join(cfg, sizeof cfg, dir, "tokenizer_config.json");
    if (pulse_file_exists(cfg)) {
        char *ct = NULL;
        size_t cl = 0;
        if ((rc = pulse_read_file(cfg, &ct, &cl)) != PULSE_OK) return rc;
        cJSON *c = cJSON_ParseWithLength(ct, cl);
        free(ct);
        if (!c) return pulse_set_error(PULSE_ERR_PARSE, "%s: not valid JSON", cfg);
        wp->lowercase = json_bool(c, "do_lower_case", 1);
        wp->chinese = json_bool(c, "tokenize_chinese_chars", 1);
        strip = json_bool(c, "strip_accents", -1);
        cJSON_Delete(c);
    }
    wp->strip_accents = strip < 0 ? wp->lowercase : strip;
    wp->unk_id = pulse_wordpiece_lookup(wp, "[UNK]", 5);
    const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++) {
        int id = pulse_wordpiece_lookup(wp, specials[i], strlen(specials[i]));
        if ((rc = add_special(wp, specials[i], id)) != PULSE_OK) return rc;
    }
    return PULSE_OK;
}

pulse_status pulse_wordpiece_load(pulse_wordpiece *wp, const char *dir) {
    memset(wp, 0, sizeof *wp);
    wp->max_chars = 100;
    strcpy(wp->prefix, "##");
    wp->unk_id = -1;
    char path[4096];
    pulse_status rc;
    pulse_path_join(path, sizeof path, dir, "tokenizer.json");
    if (pulse_file_exists(path)) {
        rc = load_tokenizer_json(wp, path);
    } else {
        pulse_path_join(path, sizeof path, dir, "vocab.txt");
        if (!pulse_file_exists(path)) {
            return pulse_set_error(PULSE_ERR_IO, "%s: no tokenizer.json or vocab.txt", dir);
        }
        rc = load_vocab_txt(wp, dir, path);
    }
    if (rc != PULSE_OK) {
        pulse_wordpiece_free(wp);
        return rc;
    }
    wp->cls_id = pulse_wordpiece_lookup(wp, "[CLS]", 5);
    wp->sep_id = pulse_wordpiece_lookup(wp, "[SEP]", 5);
    wp->pad_id = pulse_wordpiece_lookup(wp, "[PAD]", 5);
    if (wp->pad_id < 0) wp->pad_id = 0;
    if (wp->cls_id < 0 || wp->sep_id < 0 || wp->unk_id < 0) {
        pulse_wordpiece_free(wp);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: vocabulary lacks [CLS], [SEP] or the unknown token",
                               path);
    }
    return PULSE_OK;
}

static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct {
    uint32_t *cp;
    size_t n, cap;
} cpbuf;

static int cp_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        uint32_t *p = realloc(b->cp, cap * sizeof *p);
        if (!p) return -1;
        b->cp = p;
        b->cap = cap;
    }
    b->cp[b->n++] = c;
    return 0;
}

/* normalised code points of text[0..len), CJK ideographs surrounded by spaces */
static int normalize(const pulse_wordpiece *wp, const char *text, size_t len, cpbuf *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        uint32_t c;
        i += (size_t)enc_utf8_decode(s + i, len - i, &c);
        int fl = enc_uni_flags(c);
        if (wp->clean_text) {
            if (c == 0 || c == 0xFFFD || ((fl & ENC_UNI_OTHER) && c != '\t' && c != '\n' && c != '\r'))
                continue;
            if (fl & ENC_UNI_SPACE) c = ' ';
        }
        int cjk = wp->chinese && is_cjk(c);
        if (cjk && cp_push(out, ' ')) return -1;
        uint32_t d[32];
        int nd = wp->strip_accents ? enc_uni_nfd(c, d) : (d[0] = c, 1);
        for (int k = 0; k < nd; k++) {
            if (wp->strip_accents && (enc_uni_flags(d[k]) & ENC_UNI_MN)) continue;
            uint32_t l[4];
            int nl = wp->lowercase ? enc_uni_lower(d[k], l) : (l[0] = d[k], 1);
            for (int j = 0; j < nl; j++)
                if (cp_push(out, l[j])) return -1;
        }
        if (cjk && cp_push(out, ' ')) return -1;
    }
    return 0;
}

/* WordPiece of one word (code points w[0..m)); appends ids while *n < limit */
static void wordpiece_word(const pulse_wordpiece *wp, const uint32_t *w, size_t m, int *ids, int *n,
                           int limit, char *buf, size_t *offs) {
    if (*n >= limit) return;
    if (m > (size_t)wp->max_chars) {
        ids[(*n)++] = wp->unk_id;
        return;
    }
    size_t plen = strlen(wp->prefix), bl = 0;
    offs[0] = 0;
    for (size_t k = 0; k < m; k++) {
        bl += (size_t)enc_utf8_encode(w[k], buf + plen + bl);
        offs[k + 1] = bl;
    }
    char *word = buf + plen; /* bytes of the word; the prefix fits just before any piece */
    size_t start = 0;
    int pieces[128];
    int np = 0;
    while (start < m) {
        int found = -1;
        size_t end = m;
        for (; end > start; end--) {
            const char *p = word + offs[start];
            size_t pl = offs[end] - offs[start];
            int id;
            if (start > 0) {
                char *q = word + offs[start] - plen; /* prefix overwrite, restored below */
                char save[16];
                memcpy(save, q, plen);
                memcpy(q, wp->prefix, plen);
                id = pulse_wordpiece_lookup(wp, q, pl + plen);
                memcpy(q, save, plen);
            } else {
                id = pulse_wordpiece_lookup(wp, p, pl);
            }
            if (id >= 0) {
                found = id;
                break;
            }
        }
        if (found < 0 || np >= (int)(sizeof pieces / sizeof pieces[0])) {
            np = -1;
            break;
        }
        pieces[np++] = found;
        start = end;
    }
    if (np < 0) {
        ids[(*n)++] = wp->unk_id;
        return;
    }
    for (int k = 0; k < np && *n < limit; k++) ids[(*n)++] = pieces[k];
}

static int encode_segment(const pulse_wordpiece *wp, const char *text, size_t len, int *ids, int *n,
                          int limit) {
    cpbuf b = {0};
    if (normalize(wp, text, len, &b)) {
        free(b.cp);
        return -1;
    }
    /* room for the longest word we pass on: max_chars code points of up to 4 bytes + the prefix */
    size_t cap = (size_t)wp->max_chars * 4 + 32;
    char *buf = pulse_malloc(cap);
    size_t *offs = pulse_malloc(sizeof *offs * ((size_t)wp->max_chars + 2));
    if (!buf || !offs) {
        free(buf);
        free(offs);
        free(b.cp);
        return -1;
    }
    size_t i = 0;
    while (i < b.n && *n < limit) {
        int fl = enc_uni_flags(b.cp[i]);
        if (b.cp[i] == ' ' || (fl & ENC_UNI_SPACE)) {
            i++;
            continue;
        }
        if (fl & ENC_UNI_PUNCT) {
            wordpiece_word(wp, b.cp + i, 1, ids, n, limit, buf, offs);
            i++;
            continue;
        }
        size_t j = i;
        while (j < b.n && b.cp[j] != ' ' && !(enc_uni_flags(b.cp[j]) & (ENC_UNI_SPACE | ENC_UNI_PUNCT))) j++;
        wordpiece_word(wp, b.cp + i, j - i, ids, n, limit, buf, offs);
        i = j;
    }
    free(buf);
    free(offs);
    free(b.cp);
    return 0;
}

int pulse_wordpiece_encode(const pulse_wordpiece *wp, const char *text, int *ids, int max_tokens) {
    if (max_tokens < 2) return 0;
    int n = 0, limit = max_tokens - 1;
    ids[n++] = wp->cls_id;
    size_t len = strlen(text), seg = 0, i = 0;
    while (i < len && n < limit) {
        int hit = -1;
        size_t hl = 0;
        if (wp->added_first[(unsigned char)text[i]]) {
            for (int a = 0; a < wp->n_added; a++) {
                size_t al = strlen(wp->added[a]);
                if (al > hl && al <= len - i && memcmp(text + i, wp->added[a], al) == 0) {
                    hit = a;
                    hl = al;
                }
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        if (i > seg && encode_segment(wp, text + seg, i - seg, ids, &n, limit)) return -1;
        if (n < limit) ids[n++] = wp->added_ids[hit];
        i += hl;
        seg = i;
    }
    if (seg < len && n < limit && encode_segment(wp, text + seg, len - seg, ids, &n, limit)) return -1;
    ids[n++] = wp->sep_id;
    return n;
}

pulse_status pulse_wordpiece_save_vocab(const pulse_wordpiece *wp, const char *path) {
    size_t total = 0;
    for (int i = 0; i < wp->n_vocab; i++) total += pulse_strmap_len(&wp->vocab, i) + 24;
    char *buf = pulse_malloc(total + 1);
    if (!buf) return PULSE_ERR_NOMEM;
    size_t o = 0;
    for (int i = 0; i < wp->n_vocab; i++) {
        const char *t = pulse_wordpiece_token(wp, i);
        if (t) {
            size_t l = pulse_strmap_len(&wp->vocab, i);
            memcpy(buf + o, t, l);
            o += l;
        } else {
            o += (size_t)snprintf(buf + o, 24, "[unused_%d]", i);
        }
        buf[o++] = '\n';
    }
    pulse_status rc = pulse_write_file_atomic(path, buf, o);
    free(buf);
    return rc;
}
