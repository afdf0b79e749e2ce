/* lm/forward.c — owns the batched decoder forward: one chunk of tokens from any number of sequences goes
 * through embedding, every layer (RMSNorm, q/k/v projections with optional biases and QK-norm, RoPE,
 * attention over each token's own sequence in the paged KV cache with optional sliding window, output
 * projection, optional post-norms, gated FFN), the final norm and the output projection. Matrix products
 * use the quantised kernels (pulse_qmatvec / pulse_qmatmul) straight from the file mapping. Also
 * pulse_lm_decode, which splits a batch into chunks and reserves KV slots. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm/lm_internal.h"
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif
#include "pulse/kernels.h"
#include "pulse/quant.h"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* out (n, W.rows) = X (n, W.cols) @ W^T (+ bias) */
static void linear(float *out, const lm_tensor *W, const lm_tensor *bias, const float *X, int n) {
    if (n == 1)
        pulse_qmatvec(out, W->data, W->type, X, W->rows, W->cols);
    else
        pulse_qmatmul(out, W->data, W->type, X, n, W->rows, W->cols);
    if (bias && bias->data) {
        const float *b = bias->data;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < W->rows; j++) out[(size_t)i * W->rows + j] += b[j];
    }
}

static void add_bias(float *out, const lm_tensor *bias, int n, int C) {
    if (!bias->data) return;
    const float *b = bias->data;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) out[(size_t)i * C + j] += b[j];
}

/* RMSNorm over rows: out (n, C) = inp / sqrt(mean(inp^2) + eps) * w (C). out may alias inp. */
static void rmsnorm(float *out, const float *inp, const float *w, int n, int C, float eps) {
    for (int i = 0; i < n; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)(x[j] * x[j]); /* ggml: f32 squares, f64 sum */
        const float s = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int j = 0; j < C; j++) y[j] = x[j] * s * w[j];
    }
}

/* cos/sin tables (n, n_rot/2) for positions pos[] and the given base, computed as ggml's rope cache (float
 * theta multiplied by base^(-2/n_rot) pair after pair, cosf/sinf of freq_scale * theta / ff; no YaRN). */
static void rope_tables(float *cs, float *sn, const int *pos, int n, int n_rot, float base, float scale,
                        const float *ff) {
    const int half = n_rot / 2;
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    for (int i = 0; i < n; i++) {
        float theta = (float)pos[i];
        for (int d = 0; d < half; d++) {
            const float th = scale * (ff ? theta / ff[d] : theta);
            cs[(size_t)i * half + d] = cosf(th);
            sn[(size_t)i * half + d] = sinf(th);
            theta *= theta_scale;
        }
    }
}

/* Rotate nh heads of hd dims of every row of x (n, nh * hd) in place. */
static void rope_apply(float *x, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                       int neox) {
    const int half = n_rot / 2;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)i * nh + h) * hd;
            const float *c = cs + (size_t)i * half, *s = sn + (size_t)i * half;
            for (int d = 0; d < half; d++) {
                int a = neox ? d : 2 * d, b = neox ? d + half : 2 * d + 1;
                const float x0 = v[a], x1 = v[b]; /* ggml's rotate_pairs as compiled (contracted) */
                v[a] = fmaf(x0, c[d], -(x1 * s[d]));
                v[b] = fmaf(x0, s[d], x1 * c[d]);
            }
        }
}

/* pulse_options.lm_profile: charge the time since *t to section sec */
static void prof_mark(pulse_lm_ctx *c, double *t, int sec) {
    if (!c->prof_active) return;
    double now = pulse_now();
    c->prof[sec] += now - *t;
    *t = now;
}

/* ggml_v_expf (ggml-cpu/vec.h, AVX512 build) one element at a time: the same operations, so the same
 * bits; x - max of a softmax and -x of silu go through it. */
static float ggml_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (!(fabsf(n) <= 192.0f)) return n <= 0 ? 0.0f : INFINITY; /* also -inf (masked) and nan */
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j =
        fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
             fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n); /* _mm512_scalef_ps(j, n) */
}

/* ggml_v_silu: x / (1 + exp(-x)) */
static float silu(float x) {
    return x / (1.0f + ggml_expf(0.0f - x));
}

#if defined(__AVX2__) && defined(__FMA__)
/* ggml_expf on 8 lanes: the same operations; scalef(j, n) is j * 2^n, exact while the result stays a normal
 * float (n in [-125, 127]); other vectors go lane by lane. */
static inline __m256 ggml_expf8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-125.0f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(n, _mm256_set1_ps(127.0f), _CMP_LE_OQ));
    if (_mm256_movemask_ps(ok) != 0xFF) {
        float v[8];
        _mm256_storeu_ps(v, x);
        for (int i = 0; i < 8; i++) v[i] = ggml_expf(v[i]);
        return _mm256_loadu_ps(v);
    }
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(j, _mm256_castsi256_ps(e));
}
#endif

/* h (n) *= silu(g (n)), as ggml_vec_swiglu_f32 */
static void swiglu(float *h, const float *g, size_t n) {
    size_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    for (; j + 8 <= n; j += 8) {
        const __m256 x = _mm256_loadu_ps(g + j);
        const __m256 e = ggml_expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        const __m256 si = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(h + j, _mm256_mul_ps(si, _mm256_loadu_ps(h + j)));
    }
#endif
    for (; j < n; j++) h[j] = silu(g[j]) * h[j];
}

/* ggml's 16-lane horizontal sum (GCC's _mm512_reduce_add_ps): halves, quarters, then pairs */
static float red16(const float *l) {
    float t3[8], t6[4];
    for (int i = 0; i < 8; i++) t3[i] = l[i + 8] + l[i];
    for (int i = 0; i < 4; i++) t6[i] = t3[i + 4] + t3[i];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}

/* ggml's CPU gelu (GGML_GELU_FP16): the tanh approximation looked up in a table over all f16 inputs, the
 * result rounded to f16; x <= -10 gives 0 and x >= 10 gives x. */
static uint16_t g_gelu_f16[1 << 16];
static _Atomic int g_gelu_ready;

static void gelu_table_init(void) {
    if (g_gelu_ready) return;
#pragma omp critical(pulse_lm_gelu_table)
    if (!g_gelu_ready) {
        const float a = 0.044715f, s2pi = 0.79788456080286535587989211986876f;
        for (int i = 0; i < 1 << 16; i++) {
            const float x = pulse_fp16_to_fp32((uint16_t)i);
            /* ggml_gelu_f32 as built (GCC contracts 1 + a*x*x into a fused multiply-add) */
            g_gelu_f16[i] = pulse_fp32_to_fp16(0.5f * x * (1.0f + tanhf(s2pi * x * fmaf(a * x, x, 1.0f))));
        }
        g_gelu_ready = 1;
    }
}

/* h (n) = gelu(g) * h, as ggml_vec_geglu_f32 */
static void geglu(float *h, const float *g, size_t n) {
    size_t j = 0;
#ifdef __F16C__
    /* 8 at a time: the same f16 rounding (F16C), table lookups and products; x <= -10 -> 0, x >= 10 -> x */
    for (; j + 8 <= n; j += 8) {
        const __m256 x = _mm256_loadu_ps(g + j);
        uint16_t idx[8], tv[8];
        _mm_storeu_si128((__m128i *)(void *)idx, _mm256_cvtps_ph(x, 0));
        for (int u = 0; u < 8; u++) tv[u] = g_gelu_f16[idx[u]];
        __m256 y = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)tv));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, _mm256_set1_ps(10.0f), _CMP_GE_OQ));
        y = _mm256_mul_ps(y, _mm256_loadu_ps(h + j));
        y = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-10.0f), _CMP_LE_OQ), y);
        _mm256_storeu_ps(h + j, y);
    }
#endif
    for (; j < n; j++) {
        const float x = g[j];
        if (x <= -10.0f)
            h[j] = 0.0f;
        else if (x >= 10.0f)
            h[j] = x * h[j];
        else
            h[j] = pulse_fp16_to_fp32(g_gelu_f16[pulse_fp32_to_fp16(x)]) * h[j];
    }
}

/* f32 -> f16 (round to nearest even, as F16C) */
static void to_f16(uint16_t *dst, const float *src, int n) {
    int i = 0;
#ifdef __F16C__
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), 0));
#endif
    for (; i < n; i++) dst[i] = pulse_fp32_to_fp16(src[i]);
}

/* f16 dot products in ggml's lane order: element t goes to lane t % R (R = 16: llamafile's tinyBLAS, used
 * for 2 or more tokens; R = 64: ggml_vec_dot_f16's 4 x 16 lanes, one token), fused multiply-add lane by
 * lane, then the lanes reduced as ggml does. The operands are f16 values held as floats (converted once). */
#if defined(__F16C__) && defined(__FMA__)
/* n a multiple of R; R constant (16 or 64) so that the lane accumulators stay in registers */
static inline __attribute__((always_inline)) float dot_lanes_avx(const float *a, const float *b, int n,
                                                                 const int R) {
    __m256 v[8];
    for (int u = 0; u < R / 8; u++) v[u] = _mm256_setzero_ps();
    for (int t = 0; t < n; t += R)
        for (int u = 0; u < R / 8; u++)
            v[u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + t + 8 * u), _mm256_loadu_ps(b + t + 8 * u), v[u]);
    if (R == 64) /* (x0 + x2) + (x1 + x3), x_j = lanes 16j..16j+15 */
        for (int u = 0; u < 2; u++)
            v[u] = _mm256_add_ps(_mm256_add_ps(v[u], v[u + 4]), _mm256_add_ps(v[u + 2], v[u + 6]));
    /* red16: (hi + lo) then the 8-lane tree */
    __m256 t3 = _mm256_add_ps(v[1], v[0]);
    __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    t6 = _mm_add_ps(t6, _mm_movehl_ps(t6, t6));
    t6 = _mm_add_ss(t6, _mm_movehdup_ps(t6));
    return _mm_cvtss_f32(t6);
}
#endif

static float dot_f16_lanes(const float *a, const float *b, int n, int R) {
    float l[64];
    int t = 0;
#if defined(__F16C__) && defined(__FMA__)
    if (n % R == 0) return R == 64 ? dot_lanes_avx(a, b, n, 64) : dot_lanes_avx(a, b, n, 16);
#endif
    for (int u = 0; u < R; u++) l[u] = 0;
    for (; t < n; t++) l[t % R] = fmaf(a[t], b[t], l[t % R]);
    if (R == 64)
        for (int u = 0; u < 16; u++) l[u] = (l[u] + l[u + 32]) + (l[u + 16] + l[u + 48]);
    return red16(l);
}

/* out (HD) = red16 over lane rows acc (R, HD), elementwise (the reduction tree of dot_f16_lanes) */
static void reduce_rows(float *out, float *acc, int R, int HD) {
    if (R == 64)
        for (int u = 0; u < 16; u++) {
            float *r0 = acc + (size_t)u * HD, *r1 = r0 + (size_t)16 * HD, *r2 = r0 + (size_t)32 * HD,
                  *r3 = r0 + (size_t)48 * HD;
            for (int t = 0; t < HD; t++) r0[t] = (r0[t] + r2[t]) + (r1[t] + r3[t]);
        }
    for (int i = 0; i < 8; i++) { /* t3[i] = l[i + 8] + l[i] */
        float *a = acc + (size_t)i * HD, *b = acc + (size_t)(i + 8) * HD;
        for (int t = 0; t < HD; t++) a[t] = b[t] + a[t];
    }
    for (int i = 0; i < 4; i++) { /* t6[i] = t3[i + 4] + t3[i] */
        float *a = acc + (size_t)i * HD, *b = acc + (size_t)(i + 4) * HD;
        for (int t = 0; t < HD; t++) a[t] = b[t] + a[t];
    }
    const float *l0 = acc, *l1 = acc + HD, *l2 = acc + 2 * (size_t)HD, *l3 = acc + 3 * (size_t)HD;
    for (int t = 0; t < HD; t++) out[t] = (l0[t] + l2[t]) + (l1[t] + l3[t]);
}

/* rows (HD) += w * v (HD, f16), one fused multiply-add per element */
static void fma_row_f16(float *row, float w, const uint16_t *v, int HD) {
    int t = 0;
#if defined(__F16C__) && defined(__FMA__)
    const __m256 wv = _mm256_set1_ps(w);
    for (; t + 8 <= HD; t += 8)
        _mm256_storeu_ps(row + t,
                         _mm256_fmadd_ps(wv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + t))),
                                         _mm256_loadu_ps(row + t)));
#endif
    for (; t < HD; t++) row[t] = fmaf(w, pulse_fp16_to_fp32(v[t]), row[t]);
}

/* Attention of chunk token i for kv head kh at layer il: query heads g0..g1-1 of its group of
 * grp = n_head / n_head_kv (adjacent in q) over positions [lo, pos] of its sequence, the window of a
 * sliding-window layer; each K and V row is read once for the group, walking the sequence's KV blocks (rows
 * of a block are contiguous). att (n, n_head * head_dim) gets the group's outputs. The numbers are ggml's
 * non-flash CPU path: KQ = f16(q) . K (f16 dot in the lanes of dot_f16_lanes), softmax(scale * KQ) in f32
 * (ggml_v_expf, 16-position partial sums added in f64), the probabilities rounded to f16 and multiplied into
 * V (f16) with the same lane structure over positions. llama / qwen2 scale KQ in the softmax, gemma3 / phi3
 * scale Q itself (which differs once f16 rounds small values to subnormals). llama.cpp evaluates a
 * sequence's tokens of one batch together: tinyBLAS lanes (16) for 2 or more tokens, vec_dot_f16's (64) for
 * one. Scratch: thread thr's att_stride floats. */
static void attend(pulse_lm_ctx *c, const lm_layer *L, int il, int i, int kh, int g0, int g1, const float *q,
                   float *att, int thr) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int HD = hp->head_dim, NH = hp->n_head, grp = NH / hp->n_head_kv, B = c->p.kv_block;
    const int s = c->sq[i], p = c->pos[i], nctx = c->p.n_ctx, ng = g1 - g0;
    const int swa = L->is_swa ? hp->n_swa : 0;
    const int lo = swa > 0 && p - swa + 1 > 0 ? p - swa + 1 : 0;
    const int R = c->seq_cnt[s] >= 2 ? 16 : 64;
    const int *blocks = c->seqs[s].blocks;
    const size_t layer_off = (size_t)il * (size_t)B * (size_t)c->kv_dim + (size_t)kh * HD;
    const int scale_q = hp->arch == PULSE_LM_ARCH_GEMMA3 || hp->arch == PULSE_LM_ARCH_PHI3;
    const float scale = scale_q ? 1.0f : hp->attn_scale, qscale = scale_q ? hp->attn_scale : 1.0f;
    float *sc = c->att_scratch + (size_t)thr * c->att_stride;          /* (ng, n_ctx) by absolute position */
    float *acc = sc + (size_t)grp * nctx + 16;                         /* (ng, R, HD) lane accumulators */
    uint16_t *q16 = (uint16_t *)(void *)(acc + (size_t)grp * 64 * HD); /* (ng, HD) */
    for (int g = g0; g < g1; g++) {
        const float *qh = q + ((size_t)i * NH + (size_t)kh * grp + g) * HD;
        uint16_t *qd = q16 + (size_t)(g - g0) * HD;
        if (qscale != 1.0f) {
            float qs[1024]; /* head_dim <= 1024 (checked at load) */
            for (int t = 0; t < HD; t++) qs[t] = qh[t] * qscale;
            to_f16(qd, qs, HD);
        } else
            to_f16(qd, qh, HD);
    }
    /* the f16 operands as floats (exact): q once per head, each K row once for the group's heads (acc is
     * free until P.V) */
    float *qf = acc, *kf = acc + (size_t)ng * HD;
    pulse_dequantize_row(PULSE_GGML_F16, q16, qf, (int64_t)ng * HD);
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const uint16_t *kb = c->k_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            pulse_dequantize_row(PULSE_GGML_F16, kb + (size_t)(j - bi * B) * c->kv_dim, kf, HD);
            for (int g = 0; g < ng; g++)
                sc[(size_t)g * nctx + j] = dot_f16_lanes(qf + (size_t)g * HD, kf, HD, R) * scale;
        }
    }
    for (int g = 0; g < ng; g++) {
        float *sg = sc + (size_t)g * nctx, mx = -INFINITY;
        for (int j = lo; j <= p; j++)
            if (sg[j] > mx) mx = sg[j];
        double sum = 0;
        for (int j0 = lo / 16 * 16; j0 <= p; j0 += 16) { /* 16-position chunks from position 0 */
            float e[16];
#if defined(__AVX2__) && defined(__FMA__)
            if (j0 >= lo && j0 + 16 <= p + 1) { /* a whole chunk inside [lo, p] */
                const __m256 m = _mm256_set1_ps(mx);
                _mm256_storeu_ps(e, ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0), m)));
                _mm256_storeu_ps(e + 8, ggml_expf8(_mm256_sub_ps(_mm256_loadu_ps(sg + j0 + 8), m)));
                memcpy(sg + j0, e, sizeof e);
                sum += (double)red16(e);
                continue;
            }
#endif
            for (int u = 0; u < 16; u++) {
                const int j = j0 + u;
                e[u] = j >= lo && j <= p ? ggml_expf(sg[j] - mx) : 0.0f;
                if (j >= lo && j <= p) sg[j] = e[u];
            }
            sum += (double)red16(e);
        }
        const float inv = (float)(1.0 / sum);
        int j = lo;
#ifdef __F16C__
        const __m256 iv = _mm256_set1_ps(inv); /* the same product and f16 rounding, 8 at a time */
        for (; j + 8 <= p + 1; j += 8)
            _mm256_storeu_ps(sg + j,
                             _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(sg + j), iv), 0)));
#endif
        for (; j <= p; j++) sg[j] = pulse_fp16_to_fp32(pulse_fp32_to_fp16(sg[j] * inv));
    }
#if defined(__F16C__) && defined(__FMA__)
    if (HD % 8 == 0 && ng <= 8) {
        /* the same sums 8 dimensions at a time, the R lane accumulators of each head in registers / L1
         * instead of (R, HD) rows in memory */
        __m256 A[8 * 64];
        for (int tc = 0; tc < HD; tc += 8) {
            for (int x = 0; x < ng * R; x++) A[x] = _mm256_setzero_ps();
            for (int j = lo; j <= p;) {
                const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
                const uint16_t *vb = c->v_pool + (size_t)blocks[bi] * c->blk_floats + layer_off + tc;
                for (; j <= end; j++) {
                    const __m256 vv = _mm256_cvtph_ps(
                        _mm_loadu_si128((const __m128i *)(vb + (size_t)(j - bi * B) * c->kv_dim)));
                    for (int g = 0; g < ng; g++) {
                        const float w = sc[(size_t)g * nctx + j];
                        if (w != 0.0f) {
                            __m256 *a = &A[g * R + (j & (R - 1))]; /* R: 16 or 64 */
                            *a = _mm256_fmadd_ps(_mm256_set1_ps(w), vv, *a);
                        }
                    }
                }
            }
            for (int g = 0; g < ng; g++) { /* the reduction tree of reduce_rows */
                __m256 *l = A + g * R;
                if (R == 64)
                    for (int u = 0; u < 16; u++)
                        l[u] = _mm256_add_ps(_mm256_add_ps(l[u], l[u + 32]),
                                             _mm256_add_ps(l[u + 16], l[u + 48]));
                __m256 t3[8], t6[4];
                for (int x = 0; x < 8; x++) t3[x] = _mm256_add_ps(l[x + 8], l[x]);
                for (int x = 0; x < 4; x++) t6[x] = _mm256_add_ps(t3[x + 4], t3[x]);
                _mm256_storeu_ps(att + ((size_t)i * NH + (size_t)kh * grp + g0 + g) * HD + tc,
                                 _mm256_add_ps(_mm256_add_ps(t6[0], t6[2]), _mm256_add_ps(t6[1], t6[3])));
            }
        }
        return;
    }
#endif
    memset(acc, 0, sizeof(float) * (size_t)ng * R * HD);
    for (int j = lo; j <= p;) {
        const int bi = j / B, end = (bi + 1) * B - 1 < p ? (bi + 1) * B - 1 : p;
        const uint16_t *vb = c->v_pool + (size_t)blocks[bi] * c->blk_floats + layer_off;
        for (; j <= end; j++) {
            const uint16_t *vr = vb + (size_t)(j - bi * B) * c->kv_dim;
            for (int g = 0; g < ng; g++) {
                const float w = sc[(size_t)g * nctx + j];
                if (w != 0.0f) fma_row_f16(acc + ((size_t)g * R + (size_t)(j & (R - 1))) * HD, w, vr, HD);
            }
        }
    }
    for (int g = 0; g < ng; g++)
        reduce_rows(att + ((size_t)i * NH + (size_t)kh * grp + g0 + g) * HD, acc + (size_t)g * R * HD, R, HD);
}

/* Keep the rows of x (n, E) whose logits are wanted, in order, and give them the K-quant orders llama.cpp
 * gives its output rows (per sequence: rank among that sequence's wanted rows, of how many). Returns their
 * count. The last layer's FFN and the head then run on these rows only. */
static int gather_wanted(pulse_lm_ctx *c, float *x, const uint8_t *want, int n, int E) {
    int nw = 0;
    for (int i = 0; i < n; i++) {
        if (!want[i]) continue;
        int rank = 0, cnt = 0;
        for (int j = 0; j < n; j++)
            if (want[j] && c->sq[j] == c->sq[i]) {
                rank += j < i;
                cnt++;
            }
        if (nw != i) memmove(x + (size_t)nw * E, x + (size_t)i * E, sizeof(float) * (size_t)E);
        c->row_order[nw++] = pulse_quant_row_order(rank, cnt);
    }
    pulse_quant_set_row_orders(c->row_order, nw);
    return nw;
}

pulse_status lm_forward_chunk(pulse_lm_ctx *c, const int *tokens, int n, const uint8_t *want, float *out) {
    const pulse_lm *m = c->m;
    const pulse_lm_hparams *hp = &m->hp;
    const int E = hp->n_embd, HD = hp->head_dim, NH = hp->n_head, NKV = hp->n_head_kv, F = hp->n_ff;
    const int Q = NH * HD, KV = NKV * HD, half = hp->n_rot / 2;
    float *x = c->x, *xn = c->xn, *q = c->q, *k = c->k, *v = c->v, *att = c->att, *o = c->o;
    /* lm_profile 1: every chunk; N > 1: chunks of N tokens only (the batched steps) */
    c->prof_active = c->prof_on == 1 || (c->prof_on > 1 && c->prof_on == n);
    double pt = c->prof_active ? pulse_now() : 0;
    int all_wanted = 1, gathered = 0;
    for (int i = 0; i < n; i++) all_wanted &= want[i] != 0;

    if (m->act_gelu) gelu_table_init();
    /* summation orders of the K-quant products as llama.cpp evaluating each sequence's tokens of this chunk
     * as one batch (pulse_quant_set_row_orders) */
    for (int i = 0; i < n; i++) {
        const int s = c->sq[i];
        c->row_order[i] = pulse_quant_row_order(c->pos[i] - c->seqs[s].len, c->seq_cnt[s]);
    }
    pulse_quant_set_row_orders(c->row_order, n);
    /* embeddings */
    for (int i = 0; i < n; i++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes;
        pulse_dequantize_row(m->tok_embd.type, row, x + (size_t)i * E, E);
        if (m->emb_scale != 1.0f)
            for (int j = 0; j < E; j++) x[(size_t)i * E + j] *= m->emb_scale;
    }
    /* rope tables for both bases */
    float *cos_g = c->rope_cos, *sin_g = c->rope_sin;
    float *cos_l = c->rope_cos + (size_t)c->nb * (half + 1),
          *sin_l = c->rope_sin + (size_t)c->nb * (half + 1);
    rope_tables(cos_g, sin_g, c->pos, n, hp->n_rot, hp->rope_base, hp->rope_scale, m->freq_factors);
    if (hp->n_swa > 0)
        rope_tables(cos_l, sin_l, c->pos, n, hp->n_rot, hp->rope_base_swa, 1.0f, m->freq_factors);
    c->acts_n = n;
    prof_mark(c, &pt, LM_PROF_EMBD);

    for (int il = 0; il < hp->n_layer; il++) {
        const lm_layer *L = &m->layers[il];
        if (c->acts) memcpy(c->acts + (size_t)il * c->nb * E, x, sizeof(float) * (size_t)n * E);
        rmsnorm(xn, x, L->attn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        if (L->wqkv.data) {
            linear(q, &L->wqkv, &L->bqkv, xn, n);
            const int W = Q + 2 * KV;
            for (int i = 0; i < n; i++) {
                memcpy(k + (size_t)i * KV, q + (size_t)i * W + Q, sizeof(float) * KV);
                memcpy(v + (size_t)i * KV, q + (size_t)i * W + Q + KV, sizeof(float) * KV);
                memmove(q + (size_t)i * Q, q + (size_t)i * W, sizeof(float) * Q);
            }
        } else {
            /* one parallel region for the three projections, xn quantised once */
            pulse_qmm_job jobs[3] = {{L->wq.data, L->wq.type, L->wq.rows, q},
                                     {L->wk.data, L->wk.type, L->wk.rows, k},
                                     {L->wv.data, L->wv.type, L->wv.rows, v}};
            pulse_qmatmul_multi(jobs, 3, xn, n, E);
            add_bias(q, &L->bq, n, Q);
            add_bias(k, &L->bk, n, KV);
            add_bias(v, &L->bv, n, KV);
        }
        prof_mark(c, &pt, LM_PROF_QKV);
        if (L->attn_q_norm.data) rmsnorm(q, q, L->attn_q_norm.data, n * NH, HD, hp->norm_eps);
        if (L->attn_k_norm.data) rmsnorm(k, k, L->attn_k_norm.data, n * NKV, HD, hp->norm_eps);
        const float *rc = L->is_swa ? cos_l : cos_g, *rs = L->is_swa ? sin_l : sin_g;
        rope_apply(q, rc, rs, n, NH, HD, hp->n_rot, hp->rope_neox);
        rope_apply(k, rc, rs, n, NKV, HD, hp->n_rot, hp->rope_neox);
        for (int i = 0; i < n; i++) { /* the cache holds f16 (llama.cpp's default type_k / type_v) */
            to_f16(lm_kv_row(c, c->sq[i], il, c->pos[i], 0), k + (size_t)i * KV, KV);
            to_f16(lm_kv_row(c, c->sq[i], il, c->pos[i], 1), v + (size_t)i * KV, KV);
        }
        /* attention: each (token, kv head) with its group of query heads over the sequence's positions, as
         * ggml's CPU path without flash attention computes it (see attend) */
        long work = 0; /* multiply-adds of this layer's attention: go parallel only when it pays */
        for (int i = 0; i < n; i++) work += (long)(c->pos[i] + 1) * NH * HD * 2;
        /* items: (token, kv head), or (token, query head) when there are too few of those for the threads */
        const int grp = NH / NKV, split = n * NKV < 2 * c->n_thr ? grp : 1, per = grp / split;
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if (work > 32768)
        for (int ik = 0; ik < n * NKV * split; ik++) {
            const int t = ik / split, g0 = ik % split * per;
            attend(c, L, il, t / NKV, t % NKV, g0, g0 + per, q, att, omp_get_thread_num());
        }
        prof_mark(c, &pt, LM_PROF_ATTN);
        linear(o, &L->wo, &L->bo, att, n);
        prof_mark(c, &pt, LM_PROF_WO);
        if (L->post_attn_norm.data) rmsnorm(o, o, L->post_attn_norm.data, n, E, hp->norm_eps);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];
        if (il == hp->n_layer - 1 && !c->acts && !all_wanted) {
            /* as llama.cpp (inp_out_ids): the last FFN, the final norm and the head only for the wanted rows
             */
            n = gather_wanted(c, x, want, n, E);
            gathered = 1;
            if (n == 0) break;
        }

        /* feed-forward */
        rmsnorm(xn, x, L->ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_MISC);
        float *h = c->h, *gu = c->gu;
        if (L->w_gate.data) {
            pulse_qmm_job jobs[2] = {{L->w_gate.data, L->w_gate.type, F, gu},
                                     {L->w_up.data, L->w_up.type, F, h}};
            pulse_qmatmul_multi(jobs, 2, xn, n, E);
            add_bias(gu, &L->b_gate, n, F);
            add_bias(h, &L->b_up, n, F);
            /* gate activation times up (ggml's geglu / swiglu), rows split over the threads */
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_thr) if ((long)n * F >= 16384)
            for (int i = 0; i < n; i++) {
                if (m->act_gelu)
                    geglu(h + (size_t)i * F, gu + (size_t)i * F, (size_t)F);
                else
                    swiglu(h + (size_t)i * F, gu + (size_t)i * F, (size_t)F);
            }
        } else {
            linear(gu, &L->w_up, &L->b_up, xn, n); /* (n, 2F): gate | up */
            for (int i = 0; i < n; i++) {
                const float *g = gu + (size_t)i * 2 * F, *u = g + F;
                float *hh = h + (size_t)i * F;
                if (m->act_gelu) {
                    memcpy(hh, u, sizeof(float) * (size_t)F);
                    geglu(hh, g, (size_t)F);
                } else
                    memcpy(hh, u, sizeof(float) * (size_t)F), swiglu(hh, g, (size_t)F);
            }
        }
        linear(o, &L->w_down, &L->b_down, h, n);
        if (L->post_ffn_norm.data) rmsnorm(o, o, L->post_ffn_norm.data, n, E, hp->norm_eps);
        prof_mark(c, &pt, LM_PROF_FFN);
        for (size_t j = 0; j < (size_t)n * E; j++) x[j] += o[j];
    }
    if (c->acts) memcpy(c->acts + (size_t)hp->n_layer * c->nb * E, x, sizeof(float) * (size_t)n * E);

    /* final norm and logits for the wanted rows only */
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (gathered || want[i]) {
            rmsnorm(o + (size_t)nw * E, x + (size_t)i * E, m->output_norm.data, 1, E, hp->norm_eps);
            nw++;
        }
    if (nw > 0) {
        const int V = hp->n_vocab;
        linear(out, &m->output, &m->output_b, o, nw);
        if (hp->final_softcap > 0) {
            const float cap = hp->final_softcap;
            for (size_t j = 0; j < (size_t)nw * V; j++) out[j] = cap * tanhf(out[j] / cap);
        }
    }
    prof_mark(c, &pt, LM_PROF_HEAD);
    pulse_quant_set_row_orders(NULL, 0);
    return PULSE_OK;
}

pulse_status pulse_lm_decode(pulse_lm_ctx *c, const pulse_lm_batch *b) {
    const pulse_lm_hparams *hp = &c->m->hp;
    const int n = b->n_tokens, V = hp->n_vocab;
    if (n <= 0 || !b->tokens || !b->seq) return pulse_set_error(PULSE_ERR_ARG, "LM decode: empty batch");
    int n_want = 0;
    for (int i = 0; i < n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= V)
            return pulse_set_error(PULSE_ERR_RANGE, "LM decode: token %d at batch index %d outside [0, %d)",
                                   b->tokens[i], i, V);
        int s = b->seq[i];
        if (s < 0 || s >= c->p.n_seq_max || !c->seqs[s].live)
            return pulse_set_error(PULSE_ERR_ARG, "LM decode: sequence %d at batch index %d is not live", s,
                                   i);
        if (b->logits ? b->logits[i] : i == n - 1) n_want++;
    }
    /* capacity checks before touching anything */
    for (int s = 0; s < c->p.n_seq_max; s++) c->seq_cnt[s] = 0;
    for (int i = 0; i < n; i++) c->seq_cnt[b->seq[i]]++;
    for (int s = 0; s < c->p.n_seq_max; s++)
        if (c->seq_cnt[s] && c->seqs[s].len + c->seq_cnt[s] > c->p.n_ctx)
            return pulse_set_error(PULSE_ERR_RANGE, "LM decode: sequence %d: %d + %d tokens exceed n_ctx %d",
                                   s, c->seqs[s].len, c->seq_cnt[s], c->p.n_ctx);
    if (n > c->n_idx_cap) {
        int *ni = realloc(c->out_idx, sizeof(int) * (size_t)n);
        if (!ni) return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory");
        c->out_idx = ni;
        c->n_idx_cap = n;
    }
    if (n_want > c->n_out_cap) {
        size_t bytes;
        if (pulse_mul_overflows((size_t)n_want * sizeof(float), (size_t)V, &bytes)) return PULSE_ERR_NOMEM;
        float *nl = realloc(c->logits, bytes);
        if (!nl)
            return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory for %d rows of logits", n_want);
        c->logits = nl;
        c->n_out_cap = n_want;
    }
    c->n_last = n;
    uint8_t wbuf[512];
    int row = 0;
    for (int i0 = 0; i0 < n; i0 += c->nb) {
        const int nc = n - i0 < c->nb ? n - i0 : c->nb;
        for (int s = 0; s < c->p.n_seq_max; s++) c->seq_cnt[s] = 0;
        for (int i = 0; i < nc; i++) {
            int s = b->seq[i0 + i];
            c->sq[i] = s;
            c->pos[i] = c->seqs[s].len + c->seq_cnt[s]++;
        }
        for (int s = 0; s < c->p.n_seq_max; s++)
            if (c->seq_cnt[s]) {
                pulse_status st = lm_kv_reserve(c, s, c->seq_cnt[s]);
                if (st) return st;
            }
        uint8_t *want = nc <= (int)sizeof wbuf ? wbuf : malloc((size_t)nc);
        if (!want) return pulse_set_error(PULSE_ERR_NOMEM, "LM decode: out of memory");
        int nw = 0;
        for (int i = 0; i < nc; i++) {
            const int gi = i0 + i;
            want[i] = (uint8_t)(b->logits ? b->logits[gi] != 0 : gi == n - 1);
            c->out_idx[gi] = want[i] ? row + nw++ : -1;
        }
        pulse_status st = lm_forward_chunk(c, b->tokens + i0, nc, want, c->logits + (size_t)row * V);
        if (want != wbuf) free(want);
        if (st) return st;
        row += nw;
        for (int s = 0; s < c->p.n_seq_max; s++) c->seqs[s].len += c->seq_cnt[s];
    }
    return PULSE_OK;
}

const float *pulse_lm_logits(const pulse_lm_ctx *c, int i) {
    if (i < 0 || i >= c->n_last || c->out_idx[i] < 0) return NULL;
    return c->logits + (size_t)c->out_idx[i] * c->m->hp.n_vocab;
}

const float *pulse_lm_activations(const pulse_lm_ctx *c, int il, int *n_tokens) {
    if (!c->acts || il < 0 || il > c->m->hp.n_layer) return NULL;
    if (n_tokens) *n_tokens = c->acts_n;
    return c->acts + (size_t)il * c->nb * c->m->hp.n_embd;
}
