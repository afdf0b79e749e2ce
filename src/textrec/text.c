/* textrec/text.c — owns the item text ("title. brand. categories. description" from the dataset's item table)
 * and text vectors: the whole catalogue (or a list of rationales) through a BERT-family encoder (MoRec) or a
 * Thought Space's rationale encoder R, in batches, cached on disk under a hash of everything they depend on.
 *
 * Cache file (little-endian): char magic[8] = "PLSTXVC\0"; u32 n, D; u64 hash; f32 vectors (n, D); u32 crc32
 * of all preceding bytes. A file whose hash, sizes or checksum differ is ignored and rewritten. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "internal.h"
#include "pulse/dist.h"
#include "pulse/strbuf.h"
#include "pulse/thought.h"

#define VC_MAGIC "PLSTXVC"

const char *pulse_textrec_arch_name(pulse_textrec_arch a) {
    return a == PULSE_TEXTREC_THOUGHT ? "thought" : "morec";
}

uint64_t textrec_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

char *pulse_textrec_item_text(const pulse_dataset *ds, int item) {
    static const char *const fields[] = {"brand", "categories", "description"};
    pulse_strbuf b = {0};
    const char *t = pulse_dataset_item_title(ds, item);
    if (t && *t) pulse_strbuf_cat(&b, t);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *f = pulse_dataset_item_field(ds, item, fields[i]);
        if (!f || !*f) continue;
        if (b.n) pulse_strbuf_cat(&b, ". ");
        pulse_strbuf_cat(&b, f);
    }
    char *s = b.oom ? NULL : b.s ? b.s : calloc(1, 1);
    if (b.oom) pulse_strbuf_free(&b);
    if (!s) pulse_set_error(PULSE_ERR_NOMEM, "textrec: out of memory building item text");
    return s;
}

void textrec_free_texts(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

pulse_status textrec_item_texts(const pulse_dataset *ds, char ***out) {
    int V = pulse_dataset_n_items(ds) + 1;
    char **t = pulse_calloc((size_t)V, sizeof(char *));
    if (!t) return PULSE_ERR_NOMEM;
    t[0] = pulse_calloc(1, 1);
    if (!t[0]) {
        free(t);
        return PULSE_ERR_NOMEM;
    }
    for (int i = 1; i < V; i++)
        if (!(t[i] = pulse_textrec_item_text(ds, i))) {
            textrec_free_texts(t, V);
            return PULSE_ERR_NOMEM;
        }
    *out = t;
    return PULSE_OK;
}

/* the folder's identity for the cache: its path, and size + mtime of the file holding its weights */
static uint64_t hash_folder(uint64_t h, const char *dir) {
    h = textrec_hash(h, dir, strlen(dir));
    static const char *const files[] = {"model.safetensors", "space.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        int64_t v[2] = {(int64_t)st.st_size, (int64_t)st.st_mtime};
        h = textrec_hash(h, v, sizeof v);
    }
    return h;
}

static int cache_read(const char *path, uint64_t hash, int n, float **out, int *D) {
    char *data;
    size_t len;
    if (!pulse_file_exists(path) || pulse_read_file(path, &data, &len)) return 0;
    uint32_t nn = 0, dd = 0, crc_file = 0;
    uint64_t hh = 0;
    int ok = len >= 8 + 16 + 4 && memcmp(data, VC_MAGIC, 8) == 0;
    if (ok) {
        memcpy(&nn, data + 8, 4);
        memcpy(&dd, data + 12, 4);
        memcpy(&hh, data + 16, 8);
        ok = nn == (uint32_t)n && dd > 0 && dd <= 65536 && hh == hash &&
             len == 24 + (size_t)nn * dd * sizeof(float) + 4;
    }
    if (ok) {
        memcpy(&crc_file, data + len - 4, 4);
        ok = crc_file == (uint32_t)crc32(0L, (const Bytef *)data, (uInt)(len - 4));
    }
    float *v = ok ? malloc((size_t)nn * dd * sizeof(float)) : NULL;
    if (v) {
        memcpy(v, data + 24, (size_t)nn * dd * sizeof(float));
        *out = v;
        *D = (int)dd;
    }
    free(data);
    return v != NULL;
}

static pulse_status cache_write(const char *path, uint64_t hash, int n, int D, const float *v) {
    size_t body = (size_t)n * D * sizeof(float), total = 24 + body + 4;
    uint8_t *buf = pulse_malloc(total);
    if (!buf) return PULSE_ERR_NOMEM;
    uint32_t nn = (uint32_t)n, dd = (uint32_t)D;
    memcpy(buf, VC_MAGIC, 8);
    memcpy(buf + 8, &nn, 4);
    memcpy(buf + 12, &dd, 4);
    memcpy(buf + 16, &hash, 8);
    memcpy(buf + 24, v, body);
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(total - 4));
    memcpy(buf + total - 4, &crc, 4);
    pulse_status st = pulse_write_file_atomic(path, buf, total);
    free(buf);
    return st;
}

pulse_status textrec_encode_texts(const char *const *texts, int n, pulse_textrec_arch arch, const char *dir,
                                  int text_len, pulse_precision prec, const char *cache_dir, const char *what,
                                  float **out, int *D) {
    *out = NULL;
    if (!dir || !*dir)
        return pulse_set_error(PULSE_ERR_ARG, "textrec: %s needs an encoder folder (%s)", what,
                               arch == PULSE_TEXTREC_THOUGHT ? "--space or --encoder" : "--encoder");
    uint64_t h = 1469598103934665603ULL;
    int32_t hdr[3] = {(int32_t)arch, text_len, (int32_t)prec};
    h = textrec_hash(h, hdr, sizeof hdr);
    h = hash_folder(h, dir);
    for (int i = 0; i < n; i++) h = textrec_hash(h, texts[i], strlen(texts[i]) + 1);
    char cpath[4096] = "";
    if (cache_dir && *cache_dir) {
        snprintf(cpath, sizeof cpath, "%s/textvec-%016llx.bin", cache_dir, (unsigned long long)h);
        if (cache_read(cpath, h, n, out, D)) return PULSE_OK;
        /* the folder is made before the encoding, so a path that cannot be written fails in seconds */
        pulse_status mk = pulse_dist_rank() == 0 ? pulse_mkdirs(cache_dir) : PULSE_OK;
        if (mk) return pulse_wrap_error(mk, "textrec: the text-vector cache --cache %s", cache_dir);
    }
    pulse_status st;
    float *v = NULL;
    int d = 0;
    if (arch == PULSE_TEXTREC_THOUGHT) {
        pulse_thought_space_params sp = pulse_thought_space_default_params();
        sp.max_len = text_len;
        pulse_thought_space *s = NULL;
        if ((st = pulse_thought_space_load(dir, &sp, &s)) != PULSE_OK) return st;
        d = pulse_thought_space_dim(s);
        v = pulse_malloc((size_t)n * d * sizeof(float) + 1);
        st = v ? pulse_thought_embed_rationale(s, texts, n, v) : PULSE_ERR_NOMEM;
        pulse_thought_space_free(s);
    } else {
        pulse_encoder_params ep = pulse_encoder_default_params();
        ep.max_len = text_len;
        ep.precision = prec;
        pulse_encoder *enc = NULL;
        if ((st = pulse_encoder_load(dir, &ep, &enc)) != PULSE_OK) return st;
        d = pulse_encoder_dim(enc);
        v = pulse_malloc((size_t)n * d * sizeof(float) + 1);
        st = v ? pulse_encoder_encode(enc, texts, n, v) : PULSE_ERR_NOMEM;
        pulse_encoder_free(enc);
    }
    if (st) {
        free(v);
        return pulse_wrap_error(st, "textrec: encoding %s with %s", what, dir);
    }
    /* several MPI ranks compute the same vectors: rank 0 alone writes the cache file */
    if (cpath[0] && pulse_dist_rank() == 0 && (st = cache_write(cpath, h, n, d, v)) != PULSE_OK) {
        free(v);
        return st;
    }
    *out = v;
    *D = d;
    return PULSE_OK;
}

pulse_status pulse_textrec_item_vectors(const pulse_dataset *ds, const pulse_textrec_params *p, float **out,
                                        int *D) {
    char **texts = NULL;
    int V = pulse_dataset_n_items(ds) + 1;
    pulse_status st = textrec_item_texts(ds, &texts);
    if (st) return st;
    const char *dir = p->arch == PULSE_TEXTREC_THOUGHT && p->space ? p->space : p->encoder;
    st = textrec_encode_texts((const char *const *)texts, V, p->arch, dir, p->text_len, p->precision,
                              p->cache_dir, "the item texts", out, D);
    textrec_free_texts(texts, V);
    if (!st) memset(*out, 0, sizeof(float) * (size_t)*D); /* padding row */
    return st;
}
