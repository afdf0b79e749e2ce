/* core/safetensors.c — owns the safetensors reader (mmap, header JSON via cJSON, every offset/shape/dtype
 * bounds-checked) and the atomic writer. */
#include "pulse/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pulse_safetensors {
    pulse_mmap map;
    char *path;
    pulse_st_tensor *tensors;
    char **names;
    int n;
    char **meta_keys, **meta_vals;
    int n_meta;
};

#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

static char *st_strdup(const char *s) {
    size_t n = strlen(s);
    char *d = pulse_malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static int dtype_of(const char *s, pulse_st_dtype *dt, size_t *esize, const char **sname) {
    static const struct {
        const char *name;
        pulse_st_dtype dt;
        size_t size;
    } tab[] = {{"F32", PULSE_ST_F32, 4},   {"F16", PULSE_ST_F16, 2},   {"BF16", PULSE_ST_BF16, 2},
               {"F64", PULSE_ST_OTHER, 8}, {"I64", PULSE_ST_OTHER, 8}, {"I32", PULSE_ST_OTHER, 4},
               {"I16", PULSE_ST_OTHER, 2}, {"I8", PULSE_ST_OTHER, 1},  {"U8", PULSE_ST_OTHER, 1},
               {"U16", PULSE_ST_OTHER, 2}, {"U32", PULSE_ST_OTHER, 4}, {"U64", PULSE_ST_OTHER, 8},
               {"BOOL", PULSE_ST_OTHER, 1}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].name) == 0) {
            *dt = tab[i].dt;
            *esize = tab[i].size;
            *sname = tab[i].name;
            return 1;
        }
    return 0;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const pulse_st_tensor *x = a, *y = b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py ? 1 : 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const pulse_st_tensor *)a)->name, ((const pulse_st_tensor *)b)->name);
}

void pulse_safetensors_close(pulse_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->names[i]);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_vals);
    free(st->path);
    pulse_mmap_close(&st->map);
    free(st);
}

static pulse_status parse_header(pulse_safetensors *st, const char *json, size_t hlen, size_t data_size) {
    const char *path = st->path;
    cJSON *root = cJSON_ParseWithLength(json, hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    int count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    st->tensors = pulse_calloc((size_t)count + 1, sizeof *st->tensors);
    st->names = pulse_calloc((size_t)count + 1, sizeof *st->names);
    st->meta_keys = pulse_calloc((size_t)count + 1, sizeof *st->meta_keys);
    st->meta_vals = pulse_calloc((size_t)count + 1, sizeof *st->meta_vals);
    if (!st->tensors || !st->names || !st->meta_keys || !st->meta_vals) {
        cJSON_Delete(root);
        return PULSE_ERR_NOMEM;
    }
    pulse_status rc = PULSE_OK;
    for (cJSON *it = root->child; it && rc == PULSE_OK; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            for (cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m) || st->n_meta >= count) continue;
                st->meta_keys[st->n_meta] = st_strdup(m->string ? m->string : "");
                st->meta_vals[st->n_meta] = st_strdup(m->valuestring);
                if (!st->meta_keys[st->n_meta] || !st->meta_vals[st->n_meta]) {
                    rc = PULSE_ERR_NOMEM;
                    break;
                }
                st->n_meta++;
            }
            continue;
        }
        if (!cJSON_IsObject(it)) {
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': expected an object", path, name);
            break;
        }
        cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
            rc = pulse_set_error(
                PULSE_ERR_FORMAT,
                "%s: tensor '%s': expected dtype (string), shape (array), data_offsets [b, e]", path, name);
            break;
        }
        pulse_st_tensor *t = &st->tensors[st->n];
        size_t esize = 0;
        if (!dtype_of(jd->valuestring, &t->dtype, &esize, &t->dtype_name)) {
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                                 jd->valuestring);
            break;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > PULSE_ST_MAX_DIMS) {
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': %d dims, at most %d supported", path,
                                 name, nd, PULSE_ST_MAX_DIMS);
            break;
        }
        size_t nel = 1;
        int d = 0;
        for (cJSON *e = js->child; e; e = e->next, d++) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 9.0e15 ||
                e->valuedouble != (double)(int64_t)e->valuedouble) {
                rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a size", path, name,
                                     d);
                break;
            }
            t->shape[d] = (int64_t)e->valuedouble;
            if (pulse_mul_overflows(nel, (size_t)t->shape[d], &nel)) {
                rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
                break;
            }
        }
        if (rc != PULSE_OK) break;
        double b = cJSON_GetArrayItem(jo, 0)->valuedouble, en = cJSON_GetArrayItem(jo, 1)->valuedouble;
        size_t nbytes;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(jo, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(jo, 1)) ||
            b < 0 || en < b || en > (double)data_size || b != (double)(size_t)b || en != (double)(size_t)en) {
            rc = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes",
                                 path, name, b, en, data_size);
            break;
        }
        if (pulse_mul_overflows(nel, esize, &nbytes) || nbytes != (size_t)en - (size_t)b) {
            rc = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: tensor '%s': %zu elements of %s need %zu bytes, data_offsets give %zu",
                                 path, name, nel, jd->valuestring, nel * esize, (size_t)en - (size_t)b);
            break;
        }
        st->names[st->n] = st_strdup(name);
        if (!st->names[st->n]) {
            rc = PULSE_ERR_NOMEM;
            break;
        }
        t->name = st->names[st->n];
        t->n_dims = nd;
        t->n_elements = nel;
        t->nbytes = nbytes;
        t->data = st->map.data + 8 + hlen + (size_t)b;
        st->n++;
    }
    cJSON_Delete(root);
    if (rc != PULSE_OK) return rc;
    /* tensors must not overlap */
    pulse_st_tensor *sorted = pulse_malloc(sizeof *sorted * ((size_t)st->n + 1));
    if (!sorted) return PULSE_ERR_NOMEM;
    memcpy(sorted, st->tensors, sizeof *sorted * (size_t)st->n);
    qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_tensor_offset);
    for (int i = 1; i < st->n; i++) {
        const uint8_t *prev_end = (const uint8_t *)sorted[i - 1].data + sorted[i - 1].nbytes;
        if ((const uint8_t *)sorted[i].data < prev_end) {
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", path,
                                 sorted[i - 1].name, sorted[i].name);
            break;
        }
    }
    /* nor share a name (JSON allows repeated keys; which one a reader keeps is undefined) */
    qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_tensor_name);
    for (int i = 1; rc == PULSE_OK && i < st->n; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0)
            rc = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                                 sorted[i].name);
    free(sorted);
    return rc;
}

pulse_status pulse_safetensors_open(pulse_safetensors **out, const char *path) {
    *out = NULL;
    pulse_safetensors *st = pulse_calloc(1, sizeof *st);
    if (!st) return PULSE_ERR_NOMEM;
    st->path = st_strdup(path);
    if (!st->path) {
        free(st);
        return PULSE_ERR_NOMEM;
    }
    pulse_status rc = pulse_mmap_open(path, &st->map);
    if (rc != PULSE_OK) {
        pulse_safetensors_close(st);
        return rc;
    }
    size_t fsize = st->map.size;
    if (fsize < 8) {
        pulse_safetensors_close(st);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", path,
                               fsize);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->map.data[i];
    if (hlen > ST_MAX_HEADER || hlen > fsize - 8) {
        pulse_safetensors_close(st);
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)", path,
                               (unsigned long long)hlen, fsize);
    }
    rc = parse_header(st, (const char *)st->map.data + 8, (size_t)hlen, st->map.size - 8 - (size_t)hlen);
    if (rc != PULSE_OK) {
        pulse_safetensors_close(st);
        return rc;
    }
    *out = st;
    return PULSE_OK;
}

int pulse_safetensors_count(const pulse_safetensors *st) {
    return st ? st->n : 0;
}

const pulse_st_tensor *pulse_safetensors_at(const pulse_safetensors *st, int i) {
    return (st && i >= 0 && i < st->n) ? &st->tensors[i] : NULL;
}

const pulse_st_tensor *pulse_safetensors_find(const pulse_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *pulse_safetensors_metadata(const pulse_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

pulse_status pulse_safetensors_read_f32(const pulse_safetensors *st, const char *name, float *dst, size_t n,
                                        int n_dims, const int64_t *shape) {
    const pulse_st_tensor *t = pulse_safetensors_find(st, name);
    if (!t) return pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s' not found", st ? st->path : "?", name);
    if (n_dims > 0) {
        int same = t->n_dims == n_dims;
        for (int d = 0; same && d < n_dims; d++) same = t->shape[d] == shape[d];
        if (!same) {
            char exp[128] = "", got[128] = "";
            size_t le = 0, lg = 0;
            for (int d = 0; d < n_dims && le < sizeof exp - 24; d++)
                le +=
                    (size_t)snprintf(exp + le, sizeof exp - le, "%s%lld", d ? ", " : "", (long long)shape[d]);
            for (int d = 0; d < t->n_dims && lg < sizeof got - 24; d++)
                lg += (size_t)snprintf(got + lg, sizeof got - lg, "%s%lld", d ? ", " : "",
                                       (long long)t->shape[d]);
            return pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': expected shape [%s], found [%s]",
                                   st->path, name, exp, got);
        }
    }
    if (t->n_elements != n)
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%s': expected %zu elements, found %zu",
                               st->path, name, n, t->n_elements);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case PULSE_ST_F32:
        memcpy(dst, p, n * 4);
        break;
    case PULSE_ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        break;
    case PULSE_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        break;
    default:
        return pulse_set_error(PULSE_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be read as f32",
                               st->path, name, t->dtype_name);
    }
    return PULSE_OK;
}

/* ---- writer ---- */

pulse_status pulse_safetensors_write(const char *path, const pulse_st_out *tensors, int n,
                                     const char *const *meta, int n_meta) {
    if (n < 0 || n_meta < 0 || (n > 0 && !tensors))
        return pulse_set_error(PULSE_ERR_ARG, "safetensors write %s: bad tensor list", path);
    cJSON *root = cJSON_CreateObject();
    if (!root) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < n_meta; i++) cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]);
    }
    size_t off = 0;
    pulse_status rc = PULSE_OK;
    for (int i = 0; i < n; i++) {
        const pulse_st_out *t = &tensors[i];
        if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0 ||
            cJSON_GetObjectItemCaseSensitive(root, t->name) || t->n_dims < 0 ||
            t->n_dims > PULSE_ST_MAX_DIMS) {
            rc = pulse_set_error(PULSE_ERR_ARG, "safetensors write %s: tensor %d: bad or duplicate name/dims",
                                 path, i);
            break;
        }
        size_t nel = 1;
        for (int d = 0; d < t->n_dims; d++) {
            if (t->shape[d] < 0 || pulse_mul_overflows(nel, (size_t)t->shape[d], &nel)) {
                rc = pulse_set_error(PULSE_ERR_ARG, "safetensors write %s: tensor '%s': bad shape", path,
                                     t->name);
                break;
            }
        }
        if (rc != PULSE_OK) break;
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = cJSON_CreateArray();
        cJSON *offs = cJSON_CreateArray();
        if (!o || !shape || !offs) {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            rc = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
            break;
        }
        cJSON_AddStringToObject(o, "dtype", "F32");
        for (int d = 0; d < t->n_dims; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + nel * 4)));
        cJSON_AddItemToObject(o, "data_offsets", offs);
        off += nel * 4;
    }
    char *json = rc == PULSE_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (rc != PULSE_OK) return rc;
    if (!json) return pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    size_t hlen = strlen(json), padded = (hlen + 7) & ~(size_t)7;

    size_t pl = strlen(path);
    char *tmp = pulse_malloc(pl + 5);
    if (!tmp) {
        free(json);
        return PULSE_ERR_NOMEM;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = pulse_set_error(PULSE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(json);
        return rc;
    }
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(json, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < n; i++) {
        size_t nel = 1;
        for (int d = 0; d < tensors[i].n_dims; d++) nel *= (size_t)tensors[i].shape[d];
        ok = nel == 0 || fwrite(tensors[i].data, 4, nel, f) == nel;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    free(json);
    if (!ok || rename(tmp, path) != 0) {
        rc = pulse_set_error(PULSE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}
