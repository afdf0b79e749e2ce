/* lm/lora.c — owns LoRA adapters of the decoder: creation (PEFT's initialisation), llama.cpp's GGUF LoRA
 * files (read with every check llama.cpp makes and a message naming the tensor; written f32, atomically),
 * attaching an adapter to a context (the forward in src/lm/forward.c then adds scale * alpha / r * B (A x)
 * on each adapted projection) and the merged export (W + scale * alpha / r * B A into a new GGUF).
 *
 * Layout: A (r, in) and B (out, r) row-major, PEFT's nn.Linear layout, which is exactly ggml's ne [in, r] and
 * [r, out] of llama.cpp's lora_a / lora_b tensors. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"
#include "pulse/kernels.h"
#include "pulse/quant.h"

const char *const lm_lora_names[LM_LT_N] = {"attn_q",      "attn_k",   "attn_v", "attn_qkv",
                                            "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const lm_tensor *lm_lora_base(const lm_layer *L, int t) {
    switch (t) {
    case LM_LT_Q:
        return &L->wq;
    case LM_LT_K:
        return &L->wk;
    case LM_LT_V:
        return &L->wv;
    case LM_LT_QKV:
        return &L->wqkv;
    case LM_LT_O:
        return &L->wo;
    case LM_LT_GATE:
        return &L->w_gate;
    case LM_LT_UP:
        return &L->w_up;
    default:
        return &L->w_down;
    }
}

enum { LORA_OB = 16 }; /* outputs per up-product block */

size_t lm_lora_bt_size(const lm_lora_w *w) {
    return w->A ? (size_t)w->r * (size_t)((w->out + LORA_OB - 1) / LORA_OB * LORA_OB) : 0;
}

/* bt (r, out rounded up to 16) = B^T, zero past out */
void lm_lora_bt(const lm_lora_w *w, float *bt) {
    const int r = w->r, out = w->out, op = (out + LORA_OB - 1) / LORA_OB * LORA_OB;
    for (int i = 0; i < r; i++) {
        for (int o = 0; o < out; o++) bt[(size_t)i * op + o] = w->B[(size_t)o * r + i];
        for (int o = out; o < op; o++) bt[(size_t)i * op + o] = 0.0f;
    }
}

/* y (n, out) += scale * alpha / r * (x (n, in) A^T) B^T. Each row is one thread's, in a fixed order (not the
 * BLAS, whose split of a small product changes with the thread count): the same logits at any --threads.
 * Every dot product (t_j = x . A_j over in, then t . B_o over r) has 8 lanes, element e in lane e mod 8 in
 * order from 0, added ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)); the down products run 8 rows j
 * at a time (their chains interleaved), the up products 16 outputs at a time from B^T. t: (n, r) scratch; bt:
 * lm_lora_bt's B^T of w (made once per attachment, not per call). */
void lm_lora_apply(const lm_lora_w *w, float scale, float *y, const float *x, int n, float *t,
                   const float *bt) {
    if (!w->A || n <= 0) return;
    enum { OB = LORA_OB };
    const float s = scale * w->s;
    const int in = w->in, r = w->r, out = w->out, op = (out + OB - 1) / OB * OB;
#pragma omp parallel for schedule(static) if ((double)n * (in + out) * r > 200000.0 && !omp_in_parallel())
    for (int i = 0; i < n; i++) {
        float *ti = t + (size_t)i * r;
        const float *xi = x + (size_t)i * in;
        /* down: t_j = xi . A_j (the 8-lane chains above) for 8 rows j at a time, their chains interleaved */
        const int n8 = in / 8 * 8;
        for (int j0 = 0; j0 < r; j0 += 8) {
            const int nj = r - j0 < 8 ? r - j0 : 8;
            float l[8][8];
            for (int j = 0; j < 8; j++)
                for (int k = 0; k < 8; k++) l[j][k] = 0.0f;
            for (int e = 0; e < n8; e += 8)
                for (int j = 0; j < nj; j++) {
                    const float *a = w->A + (size_t)(j0 + j) * in + e;
                    for (int k = 0; k < 8; k++) l[j][k] += xi[e + k] * a[k];
                }
            for (int j = 0; j < nj; j++) {
                const float *a = w->A + (size_t)(j0 + j) * in;
                float *lj = l[j];
                for (int e = n8, k = 0; e < in; e++, k++) lj[k] += xi[e] * a[e];
                ti[j0 + j] = ((lj[0] + lj[4]) + (lj[2] + lj[6])) + ((lj[1] + lj[5]) + (lj[3] + lj[7]));
            }
        }
        float *yi = y + (size_t)i * out;
        for (int o0 = 0; o0 < out; o0 += OB) {
            /* lane k: 0 + the first product (k < r), then the others of i = k mod 8 */
            float L[8][OB];
            for (int k = 0; k < 8; k++) {
                if (k >= r) {
                    for (int u = 0; u < OB; u++) L[k][u] = 0.0f;
                    continue;
                }
                const float tv = ti[k], *b = bt + (size_t)k * op + o0;
                for (int u = 0; u < OB; u++) L[k][u] = 0.0f + tv * b[u];
            }
            for (int j = 8; j < r; j++) {
                const float tv = ti[j], *b = bt + (size_t)j * op + o0;
                float *Lk = L[j & 7];
                for (int u = 0; u < OB; u++) Lk[u] += tv * b[u];
            }
            float d[OB];
            for (int u = 0; u < OB; u++)
                d[u] =
                    ((L[0][u] + L[4][u]) + (L[2][u] + L[6][u])) + ((L[1][u] + L[5][u]) + (L[3][u] + L[7][u]));
            const int no = out - o0 < OB ? out - o0 : OB;
            for (int u = 0; u < no; u++) yi[o0 + u] += s * d[u];
        }
    }
}

pulse_lora_params pulse_lora_default_params(void) {
    pulse_lora_params p = {8, 16.0f, PULSE_LORA_ATTN, 42};
    return p;
}

pulse_status pulse_lora_parse_targets(const char *s, unsigned *mask) {
    static const struct {
        const char *name;
        unsigned bits;
    } tab[] = {{"q", PULSE_LORA_Q},       {"k", PULSE_LORA_K},       {"v", PULSE_LORA_V},
               {"o", PULSE_LORA_O},       {"gate", PULSE_LORA_GATE}, {"up", PULSE_LORA_UP},
               {"down", PULSE_LORA_DOWN}, {"attn", PULSE_LORA_ATTN}, {"all", 0x7fu}};
    *mask = 0;
    if (!s || !*s) return pulse_set_error(PULSE_ERR_ARG, "LoRA targets: empty list (expected e.g. q,k,v,o)");
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
            if (strlen(tab[i].name) == len && !strncmp(tab[i].name, p, len)) {
                *mask |= tab[i].bits;
                found = 1;
            }
        if (!found)
            return pulse_set_error(PULSE_ERR_ARG,
                                   "LoRA targets '%s': unknown target '%.*s' (expected q, k, v, o, gate, up, "
                                   "down, attn or all, comma-separated)",
                                   s, (int)(len > 32 ? 32 : len), p);
        if (!e) break;
        p = e + 1;
    }
    return PULSE_OK;
}

void pulse_lora_free(pulse_lora *a) {
    if (!a) return;
    free(a->w);
    free(a->data);
    free(a->pair_w);
    free(a->names);
    free(a);
}

/* An empty adapter for m's layers: w (n_layer, LM_LT_N) zeroed. */
static pulse_lora *lora_alloc(const pulse_lm *m) {
    pulse_lora *a = pulse_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->n_layer = m->hp.n_layer;
    snprintf(a->arch, sizeof a->arch, "%s", m->arch_name);
    a->w = pulse_calloc((size_t)m->hp.n_layer * LM_LT_N, sizeof *a->w);
    if (!a->w) {
        free(a);
        return NULL;
    }
    return a;
}

/* Once every used w[] has r, in, out: one array for all A and B, the pair table and names. */
static pulse_status lora_finish(pulse_lora *a) {
    size_t n = 0;
    int np = 0;
    const int NW = a->n_layer * LM_LT_N;
    for (int i = 0; i < NW; i++)
        if (a->w[i].r > 0) {
            n += (size_t)a->w[i].r * ((size_t)a->w[i].in + (size_t)a->w[i].out);
            np++;
        }
    if (np == 0) return pulse_set_error(PULSE_ERR_ARG, "LoRA: the adapter adapts no tensor");
    a->data = pulse_calloc(n, sizeof(float));
    a->pair_w = pulse_calloc((size_t)np, sizeof(int));
    a->names = pulse_calloc((size_t)np, sizeof *a->names);
    if (!a->data || !a->pair_w || !a->names)
        return pulse_set_error(PULSE_ERR_NOMEM, "LoRA: out of memory for %zu parameters", n);
    a->n_params = n;
    a->n_pairs = np;
    float *p = a->data;
    np = 0;
    for (int i = 0; i < NW; i++) {
        lm_lora_w *w = &a->w[i];
        if (w->r <= 0) continue;
        w->A = p;
        p += (size_t)w->r * w->in;
        w->B = p;
        p += (size_t)w->r * w->out;
        w->s = a->has_alpha ? a->alpha / (float)w->r : 1.0f;
        if (w->r > a->r_max) a->r_max = w->r;
        if (w->out > a->out_max) a->out_max = w->out;
        a->pair_w[np] = i;
        snprintf(a->names[np], sizeof a->names[np], "blk.%d.%s.weight", i / LM_LT_N,
                 lm_lora_names[i % LM_LT_N]);
        np++;
    }
    return PULSE_OK;
}

pulse_status pulse_lora_new(const pulse_lm *m, const pulse_lora_params *params, pulse_lora **out) {
    *out = NULL;
    pulse_lora_params p = params ? *params : pulse_lora_default_params();
    if (p.rank < 1 || p.rank > 4096)
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: rank %d: expected 1..4096", p.rank);
    if (!isfinite(p.alpha) || p.alpha <= 0)
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: alpha %g: expected a finite number > 0",
                               (double)p.alpha);
    if (!p.targets || (p.targets & ~0x7fu))
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: targets mask 0x%x: expected PULSE_LORA_* bits",
                               p.targets);
    pulse_lora *a = lora_alloc(m);
    if (!a) return pulse_set_error(PULSE_ERR_NOMEM, "LoRA: out of memory");
    a->alpha = p.alpha;
    a->has_alpha = 1;
    a->targets = p.targets;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        int want[LM_LT_N] = {0};
        const int fused = L->wqkv.data != NULL;
        if (p.targets & PULSE_LORA_Q) want[fused ? LM_LT_QKV : LM_LT_Q] = 1;
        if (p.targets & PULSE_LORA_K) want[fused ? LM_LT_QKV : LM_LT_K] = 1;
        if (p.targets & PULSE_LORA_V) want[fused ? LM_LT_QKV : LM_LT_V] = 1;
        if (p.targets & PULSE_LORA_O) want[LM_LT_O] = 1;
        if (p.targets & PULSE_LORA_GATE) want[L->w_gate.data ? LM_LT_GATE : LM_LT_UP] = 1; /* phi3: gate|up */
        if (p.targets & PULSE_LORA_UP) want[LM_LT_UP] = 1;
        if (p.targets & PULSE_LORA_DOWN) want[LM_LT_DOWN] = 1;
        for (int t = 0; t < LM_LT_N; t++) {
            const lm_tensor *W = lm_lora_base(L, t);
            if (!want[t] || !W->data) continue;
            lm_lora_w *w = &a->w[il * LM_LT_N + t];
            w->r = p.rank;
            w->in = W->cols;
            w->out = W->rows;
        }
    }
    pulse_status st = lora_finish(a);
    if (st) {
        pulse_lora_free(a);
        return st;
    }
    pulse_rng rng;
    pulse_rng_seed(&rng, p.seed);
    for (int i = 0; i < a->n_pairs; i++) {
        const lm_lora_w *w = &a->w[a->pair_w[i]];
        const float bound = 1.0f / sqrtf((float)w->in);
        for (size_t j = 0; j < (size_t)w->r * w->in; j++)
            w->A[j] = (2.0f * pulse_rng_float(&rng) - 1.0f) * bound;
    }
    *out = a;
    return PULSE_OK;
}

/* Does the GGUF string key k hold exactly want? (missing: found = NULL) */
static pulse_status expect_str(const pulse_gguf *g, const char *path, const char *k, const char *want) {
    pulse_gguf_str s;
    if (pulse_gguf_find_key(g, k) < 0 || pulse_gguf_get_str(g, k, &s) != PULSE_OK)
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: not a LoRA adapter: %s missing (expected '%s')", path,
                               k, want);
    if (!pulse_gguf_str_eq(s, want))
        return pulse_set_error(PULSE_ERR_FORMAT, "%s: %s = '%.*s': expected '%s'", path, k,
                               (int)(s.len > 64 ? 64 : s.len), s.ptr, want);
    return PULSE_OK;
}

/* Parse "blk.<il>.<target>.weight" into (il, t); -1 when it is not one of the projections we adapt. */
static int parse_base(const char *name, size_t len, int n_layer, int *il, int *t) {
    char buf[96];
    if (len >= sizeof buf) return -1;
    memcpy(buf, name, len);
    buf[len] = 0;
    if (strncmp(buf, "blk.", 4)) return -1;
    char *e;
    long l = strtol(buf + 4, &e, 10);
    if (e == buf + 4 || *e != '.' || l < 0 || l >= n_layer) return -1;
    const char *rest = e + 1;
    for (int k = 0; k < LM_LT_N; k++) {
        size_t nl = strlen(lm_lora_names[k]);
        if (!strncmp(rest, lm_lora_names[k], nl) && !strcmp(rest + nl, ".weight")) {
            *il = (int)l;
            *t = k;
            return 0;
        }
    }
    return -1;
}

pulse_status pulse_lora_load(const pulse_lm *m, const char *path, pulse_lora **out) {
    *out = NULL;
    pulse_gguf *g = NULL;
    pulse_status st = pulse_gguf_open(path, &g);
    if (st) return st;
    pulse_lora *a = NULL;
    const pulse_gguf_tensor **ta = NULL, **tb = NULL;
    if ((st = expect_str(g, path, "general.type", "adapter"))) goto done;
    if ((st = expect_str(g, path, "adapter.type", "lora"))) goto done;
    if ((st = expect_str(g, path, "general.architecture", m->arch_name))) goto done;
    a = lora_alloc(m);
    const size_t NW = (size_t)m->hp.n_layer * LM_LT_N;
    ta = pulse_calloc(NW, sizeof *ta);
    tb = pulse_calloc(NW, sizeof *tb);
    if (!a || !ta || !tb) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (pulse_gguf_find_key(g, "adapter.lora.alpha") >= 0) {
        if ((st = pulse_gguf_get_f32(g, "adapter.lora.alpha", &a->alpha))) goto done;
        if (!isfinite(a->alpha) || a->alpha < 0) {
            st = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: adapter.lora.alpha = %g: expected a finite number >= 0", path,
                                 (double)a->alpha);
            goto done;
        }
        a->has_alpha = a->alpha != 0.0f; /* llama.cpp: alpha 0 means the runtime scale alone */
    }
    const size_t nt = pulse_gguf_n_tensors(g);
    for (size_t i = 0; i < nt; i++) {
        const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
        const char *nm = t->name.ptr;
        const size_t len = t->name.len;
        const int is_a = len > 7 && !memcmp(nm + len - 7, ".lora_a", 7);
        const int is_b = len > 7 && !memcmp(nm + len - 7, ".lora_b", 7);
        int il, k;
        if (!is_a && !is_b) {
            st = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: tensor '%.*s': expected a name ending in .lora_a or .lora_b", path,
                                 (int)(len > 96 ? 96 : len), nm);
            goto done;
        }
        if (parse_base(nm, len - 7, m->hp.n_layer, &il, &k) || !lm_lora_base(&m->layers[il], k)->data) {
            st = pulse_set_error(
                PULSE_ERR_FORMAT,
                "%s: tensor '%.*s': no such projection in the model (%s, %d layers; adaptable: "
                "blk.N.attn_q/k/v/qkv/output, ffn_gate/up/down .weight)",
                path, (int)(len > 96 ? 96 : len), nm, m->arch_name, m->hp.n_layer);
            goto done;
        }
        const pulse_gguf_tensor **slot = is_a ? &ta[il * LM_LT_N + k] : &tb[il * LM_LT_N + k];
        if (*slot) {
            st = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor '%.*s' appears twice", path, (int)len, nm);
            goto done;
        }
        if (t->n_dims != 2 || !pulse_ggml_type_supported((int)t->type)) {
            st = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: tensor '%.*s': expected a 2-d f32/f16/bf16/q8_0 matrix, "
                                 "found %u dimensions of %s",
                                 path, (int)len, nm, t->n_dims, pulse_ggml_type_name((int)t->type));
            goto done;
        }
        *slot = t;
    }
    for (size_t i = 0; i < NW; i++) {
        if (!ta[i] && !tb[i]) continue;
        const int il = (int)(i / LM_LT_N), k = (int)(i % LM_LT_N);
        const lm_tensor *W = lm_lora_base(&m->layers[il], k);
        char base[96];
        snprintf(base, sizeof base, "blk.%d.%s.weight", il, lm_lora_names[k]);
        if (!ta[i] || !tb[i]) {
            st = pulse_set_error(PULSE_ERR_FORMAT, "%s: missing tensor %s.%s (its pair %s.%s is present)",
                                 path, base, ta[i] ? "lora_b" : "lora_a", base, ta[i] ? "lora_a" : "lora_b");
            goto done;
        }
        const int64_t *na = ta[i]->ne, *nb = tb[i]->ne;
        if (na[0] != W->cols || nb[1] != W->rows) {
            st = pulse_set_error(
                PULSE_ERR_FORMAT,
                "%s: %s: lora_a ne [%lld, %lld] / lora_b ne [%lld, %lld] do not match the model's "
                "[%d, %d] (expected lora_a [%d, r], lora_b [r, %d]; wrong base model?)",
                path, base, (long long)na[0], (long long)na[1], (long long)nb[0], (long long)nb[1], W->cols,
                W->rows, W->cols, W->rows);
            goto done;
        }
        if (na[1] != nb[0] || na[1] < 1 || na[1] > 4096) {
            st = pulse_set_error(PULSE_ERR_FORMAT,
                                 "%s: %s: rank mismatch: lora_a has rank %lld (ne[1]), lora_b %lld (ne[0]); "
                                 "expected equal ranks in 1..4096",
                                 path, base, (long long)na[1], (long long)nb[0]);
            goto done;
        }
        lm_lora_w *w = &a->w[i];
        w->r = (int)na[1];
        w->in = W->cols;
        w->out = W->rows;
        a->targets |= k == LM_LT_QKV ? (unsigned)(PULSE_LORA_Q | PULSE_LORA_K | PULSE_LORA_V)
                                     : (unsigned)(k <= LM_LT_V ? 1u << k : 1u << (k - 1));
    }
    if (nt == 0) {
        st = pulse_set_error(PULSE_ERR_FORMAT, "%s: the adapter has no tensors", path);
        goto done;
    }
    if ((st = lora_finish(a))) goto done;
    for (int p = 0; p < a->n_pairs; p++) {
        const int i = a->pair_w[p];
        lm_lora_w *w = &a->w[i];
        const pulse_gguf_tensor *ts[2] = {ta[i], tb[i]};
        float *dst[2] = {w->A, w->B};
        const int rows[2] = {w->r, w->out}, cols[2] = {w->in, w->r};
        for (int h = 0; h < 2; h++) {
            const size_t rb = pulse_ggml_row_size((int)ts[h]->type, cols[h]);
            if (rb == 0 || rb * (size_t)rows[h] > ts[h]->nbytes) {
                st = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor %s.%s: %zu bytes for [%d, %d] of %s", path,
                                     a->names[p], h ? "lora_b" : "lora_a", ts[h]->nbytes, cols[h], rows[h],
                                     pulse_ggml_type_name((int)ts[h]->type));
                goto done;
            }
            for (int r = 0; r < rows[h]; r++)
                pulse_dequantize_row((int)ts[h]->type, (const uint8_t *)ts[h]->data + rb * (size_t)r,
                                     dst[h] + (size_t)r * cols[h], cols[h]);
            for (size_t j = 0; j < (size_t)rows[h] * cols[h]; j++)
                if (!isfinite(dst[h][j])) {
                    st = pulse_set_error(PULSE_ERR_FORMAT, "%s: tensor %s.%s: non-finite value at %zu", path,
                                         a->names[p], h ? "lora_b" : "lora_a", j);
                    goto done;
                }
        }
    }
    *out = a;
    a = NULL;
done:
    free(ta);
    free(tb);
    pulse_lora_free(a);
    pulse_gguf_close(g);
    return st;
}

pulse_status pulse_lora_save(const pulse_lora *a, const char *path) {
    pulse_gguf_writer *w;
    pulse_status st = pulse_gguf_writer_new(&w);
    if (st) return st;
    if (!st) st = pulse_gguf_writer_kv_str(w, "general.architecture", a->arch);
    if (!st) st = pulse_gguf_writer_kv_str(w, "general.type", "adapter");
    if (!st) st = pulse_gguf_writer_kv_str(w, "general.name", "pulse LoRA adapter");
    if (!st) st = pulse_gguf_writer_kv_str(w, "adapter.type", "lora");
    if (!st && a->has_alpha) st = pulse_gguf_writer_kv_f32(w, "adapter.lora.alpha", a->alpha);
    for (int p = 0; p < a->n_pairs && !st; p++) {
        const lm_lora_w *lw = &a->w[a->pair_w[p]];
        char nm[80];
        int64_t ne_a[2] = {lw->in, lw->r}, ne_b[2] = {lw->r, lw->out};
        snprintf(nm, sizeof nm, "%s.lora_a", a->names[p]);
        st = pulse_gguf_writer_tensor(w, nm, PULSE_GGML_F32, 2, ne_a, lw->A,
                                      sizeof(float) * (size_t)lw->r * lw->in);
        snprintf(nm, sizeof nm, "%s.lora_b", a->names[p]);
        if (!st)
            st = pulse_gguf_writer_tensor(w, nm, PULSE_GGML_F32, 2, ne_b, lw->B,
                                          sizeof(float) * (size_t)lw->r * lw->out);
    }
    if (!st) st = pulse_gguf_writer_save(w, path);
    pulse_gguf_writer_free(w);
    return st;
}

int pulse_lora_rank(const pulse_lora *a) {
    return a->r_max;
}
float pulse_lora_alpha(const pulse_lora *a) {
    return a->alpha;
}
unsigned pulse_lora_targets(const pulse_lora *a) {
    return a->targets;
}
int pulse_lora_n_tensors(const pulse_lora *a) {
    return a->n_pairs;
}
float *pulse_lora_params_data(pulse_lora *a, size_t *n_params) {
    if (n_params) *n_params = a->n_params;
    return a->data;
}

pulse_status pulse_lora_pair(const pulse_lora *a, int i, const char **name, const float **A, const float **B,
                             int *r, int *in, int *out) {
    if (i < 0 || i >= a->n_pairs)
        return pulse_set_error(PULSE_ERR_RANGE, "LoRA: pair %d outside [0, %d)", i, a->n_pairs);
    const lm_lora_w *w = &a->w[a->pair_w[i]];
    if (name) *name = a->names[i];
    if (A) *A = w->A;
    if (B) *B = w->B;
    if (r) *r = w->r;
    if (in) *in = w->in;
    if (out) *out = w->out;
    return PULSE_OK;
}

/* Is a made for m (same architecture, layers and projection shapes)? */
static pulse_status lora_check(const pulse_lm *m, const pulse_lora *a) {
    if (strcmp(a->arch, m->arch_name) || a->n_layer != m->hp.n_layer)
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: adapter for %s with %d layers, model is %s with %d",
                               a->arch, a->n_layer, m->arch_name, m->hp.n_layer);
    for (int p = 0; p < a->n_pairs; p++) {
        const int i = a->pair_w[p];
        const lm_tensor *W = lm_lora_base(&m->layers[i / LM_LT_N], i % LM_LT_N);
        const lm_lora_w *w = &a->w[i];
        if (!W->data || W->rows != w->out || W->cols != w->in)
            return pulse_set_error(PULSE_ERR_ARG, "LoRA: %s: adapter shape [%d, %d] does not match the model",
                                   a->names[p], w->in, w->out);
    }
    return PULSE_OK;
}

pulse_status pulse_lm_ctx_set_lora(pulse_lm_ctx *c, const pulse_lora *a, float scale) {
    if (!a) {
        c->lora = NULL;
        return PULSE_OK;
    }
    if (!isfinite(scale))
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: scale %g is not finite", (double)scale);
    pulse_status st = lora_check(c->m, a);
    if (st) return st;
    /* (nb, r_max) for A x; every adapted projection's B^T for the up products, made here once */
    const int nw = a->n_layer * LM_LT_N;
    size_t nbt = 0;
    for (int i = 0; i < nw; i++) nbt += lm_lora_bt_size(&a->w[i]);
    float *t = malloc(sizeof(float) * (size_t)c->nb * (size_t)a->r_max);
    float *bt = malloc(sizeof(float) * (nbt ? nbt : 1));
    size_t *off = malloc(sizeof(size_t) * (size_t)nw);
    if (!t || !bt || !off) {
        free(t), free(bt), free(off);
        return pulse_set_error(PULSE_ERR_NOMEM,
                               "LoRA: out of memory for the context's scratch (%zu floats of B^T)", nbt);
    }
    nbt = 0;
    for (int i = 0; i < nw; i++) {
        off[i] = nbt;
        if (a->w[i].A) lm_lora_bt(&a->w[i], bt + nbt);
        nbt += lm_lora_bt_size(&a->w[i]);
    }
    free(c->lora_t), free(c->lora_bt), free(c->lora_bt_off);
    c->lora_t = t, c->lora_bt = bt, c->lora_bt_off = off;
    c->lora = a;
    c->lora_scale = scale;
    return PULSE_OK;
}

pulse_status pulse_lora_export_merged(const pulse_lm *m, const pulse_lora *a, float scale, const char *path) {
    pulse_status st = lora_check(m, a);
    if (st) return st;
    if (!isfinite(scale))
        return pulse_set_error(PULSE_ERR_ARG, "LoRA: scale %g is not finite", (double)scale);
    pulse_gguf_writer *w;
    if ((st = pulse_gguf_writer_new(&w))) return st;
    const pulse_gguf *g = m->g;
    for (size_t i = 0; i < pulse_gguf_n_kv(g) && !st; i++) {
        const void *v;
        size_t nb;
        pulse_gguf_str k = pulse_gguf_kv_key(g, i);
        char key[256];
        if (k.len >= sizeof key) continue; /* no such keys in the files we load */
        memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        if (!(st = pulse_gguf_kv_raw(g, i, &v, &nb)))
            st = pulse_gguf_writer_kv_raw(w, key, pulse_gguf_kv_type(g, i), v, nb);
    }
    float *Wf = NULL;
    for (size_t i = 0; i < pulse_gguf_n_tensors(g) && !st; i++) {
        const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
        char name[128];
        if (t->name.len >= sizeof name) {
            st = pulse_set_error(PULSE_ERR_UNSUPPORTED, "LoRA merge: tensor name too long");
            break;
        }
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = 0;
        int il, k;
        const lm_lora_w *lw = NULL;
        if (!parse_base(name, strlen(name), a->n_layer, &il, &k) && a->w[il * LM_LT_N + k].A)
            lw = &a->w[il * LM_LT_N + k];
        if (!lw) {
            st = pulse_gguf_writer_tensor(w, name, t->type, (int)t->n_dims, t->ne, t->data, t->nbytes);
            continue;
        }
        const lm_tensor *W = lm_lora_base(&m->layers[il], k);
        free(Wf);
        Wf = pulse_malloc(sizeof(float) * (size_t)W->rows * W->cols);
        if (!Wf) {
            st = pulse_set_error(PULSE_ERR_NOMEM, "LoRA merge: out of memory for %s", name);
            break;
        }
        for (int r = 0; r < W->rows; r++)
            pulse_dequantize_row(W->type, (const uint8_t *)W->data + W->row_bytes * (size_t)r,
                                 Wf + (size_t)r * W->cols, W->cols);
        /* W (out, in) += s * B (out, r) A (r, in) */
        const float s = scale * lw->s;
        for (int o = 0; o < lw->out; o++)
            for (int j = 0; j < lw->r; j++) {
                const float bj = s * lw->B[(size_t)o * lw->r + j];
                const float *Ar = lw->A + (size_t)j * lw->in;
                float *Wr = Wf + (size_t)o * W->cols;
                for (int c = 0; c < lw->in; c++) Wr[c] += bj * Ar[c];
            }
        int64_t ne[2] = {W->cols, W->rows};
        st = pulse_gguf_writer_tensor(w, name, PULSE_GGML_F32, 2, ne, Wf,
                                      sizeof(float) * (size_t)W->rows * W->cols);
    }
    free(Wf);
    if (!st) st = pulse_gguf_writer_save(w, path);
    pulse_gguf_writer_free(w);
    return st;
}
