/* kernels/quant_avx2.c — owns the AVX2 kernels: dequantisers (bit-identical to the scalar reference),
 * activation quantisers (byte-identical) and the integer dot products of a weight row against 1..4
 * activation rows (the weight block is unpacked once and multiplied into each activation row: this is what
 * makes batched decode cheaper per token). Compiled only with __AVX2__ (the portable build skips it). */
#include "quant_internal.h"

#ifdef __AVX2__
#include <immintrin.h>

#define UNROLL _Pragma("GCC unroll 4")

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

static inline float f16(const uint8_t *p) {
    return _cvtsh_ss(pq_rd16(p));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31) */
static inline __m256i nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0x10 where bit i is set */
static inline __m256i bits32_x10(const uint8_t *p) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                          2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)pq_rd32(p)), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* sum of u8 x i8 products in 8 int32 lanes */
static inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline __m256i loadu(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- activation quantisers ---- */
static inline __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

static inline float max8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* q = round(x * id) for 32 floats -> 32 int8 in element order */
static inline __m256i round32(const float *x, __m256 id) {
    __m256i i[4];
    for (int k = 0; k < 4; k++)
        i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i a = _mm256_packs_epi32(i[0], i[1]); /* lanes interleaved: fixed below */
    __m256i b = _mm256_packs_epi32(i[2], i[3]);
    __m256i c = _mm256_packs_epi16(a, b);
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void pq_quantize_a32_avx2(const float *x, pq_a32 *y, int64_t n) {
    for (int64_t b = 0; b < n / PQ_QK; b++, x += PQ_QK) {
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int k = 1; k < 4; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
        float amax = max8(m);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        __m256i q = round32(x, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        int sum = hsum_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
        y[b].d = d;
        y[b].s = d * (float)sum;
    }
}

void pq_quantize_a256_avx2(const float *x, pq_a256 *y, int64_t n) {
    for (int64_t b = 0; b < n / PQ_QKK; b++, x += PQ_QKK) {
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int k = 1; k < 32; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
        float amax = max8(m);
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        for (int k = 0; k < 8; k++) {
            __m256i q = round32(x + 32 * k, vid);
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * k), q);
            /* per-16 sums: maddubs(1, q) -> 16 int16 pair sums; madd(.,1) -> 8 int32 quad sums */
            __m256i s32 =
                _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            /* lanes 0..3 = elements 0..15, lanes 4..7 = elements 16..31 */
            __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
            lo = _mm_hadd_epi32(lo, hi);
            lo = _mm_hadd_epi32(lo, lo);
            y[b].bsums[2 * k] = (int16_t)_mm_cvtsi128_si32(lo);
            y[b].bsums[2 * k + 1] = (int16_t)_mm_extract_epi32(lo, 1);
        }
        y[b].d = d;
    }
}

/* ---- dot products: 32-element types ----
 * dot(block) = dw * dx * sum(u * qx) + cw * sx, with u the unsigned quant (0..15 / 0..31) and
 * cw = -8dw / -16dw (type-0) or m (type-1). */
#define DEF_DOT32(NAME, BS, UNPACK)                                                                          \
    static inline __attribute__((always_inline)) void NAME##_n(                                              \
        const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, float *out, const int NX) {              \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),                      \
                         _mm256_setzero_ps()};                                                               \
        float corr[4] = {0, 0, 0, 0};                                                                        \
        for (int64_t b = 0; b < nb; b++, w += BS) {                                                          \
            __m256i u;                                                                                       \
            float dw, cw;                                                                                    \
            UNPACK(w, &u, &dw, &cw);                                                                         \
            UNROLL for (int k = 0; k < NX; k++) {                                                            \
                const pq_a32 *a = (const pq_a32 *)(xa + (size_t)k * xs) + b;                                 \
                __m256i s = dot_u8i8(u, loadu(a->qs));                                                       \
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * a->d), acc[k]);          \
                corr[k] += cw * a->s;                                                                        \
            }                                                                                                \
        }                                                                                                    \
        UNROLL for (int k = 0; k < NX; k++) out[k] = hsum_ps(acc[k]) + corr[k];                              \
    }                                                                                                        \
    static void NAME(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {       \
        switch (nx) {                                                                                        \
        case 1:                                                                                              \
            NAME##_n(w, xa, xs, nb, out, 1);                                                                 \
            break;                                                                                           \
        case 2:                                                                                              \
            NAME##_n(w, xa, xs, nb, out, 2);                                                                 \
            break;                                                                                           \
        case 3:                                                                                              \
            NAME##_n(w, xa, xs, nb, out, 3);                                                                 \
            break;                                                                                           \
        default:                                                                                             \
            NAME##_n(w, xa, xs, nb, out, 4);                                                                 \
        }                                                                                                    \
    }

static inline void unpack_q4_0(const uint8_t *w, __m256i *u, float *dw, float *cw) {
    *dw = f16(w);
    *cw = -8.0f * *dw;
    *u = nibbles32(w + 2);
}
static inline void unpack_q4_1(const uint8_t *w, __m256i *u, float *dw, float *cw) {
    *dw = f16(w);
    *cw = f16(w + 2);
    *u = nibbles32(w + 4);
}
static inline void unpack_q5_0(const uint8_t *w, __m256i *u, float *dw, float *cw) {
    *dw = f16(w);
    *cw = -16.0f * *dw;
    *u = _mm256_or_si256(nibbles32(w + 6), bits32_x10(w + 2));
}
static inline void unpack_q5_1(const uint8_t *w, __m256i *u, float *dw, float *cw) {
    *dw = f16(w);
    *cw = f16(w + 2);
    *u = _mm256_or_si256(nibbles32(w + 8), bits32_x10(w + 4));
}

DEF_DOT32(dot_q4_0, 18, unpack_q4_0)
DEF_DOT32(dot_q4_1, 20, unpack_q4_1)
DEF_DOT32(dot_q5_0, 22, unpack_q5_0)
DEF_DOT32(dot_q5_1, 24, unpack_q5_1)

/* q8_0: signed weights, no offset term */
static inline __attribute__((always_inline)) void dot_q8_0_n(const uint8_t *w, const uint8_t *xa, size_t xs,
                                                             int64_t nb, float *out, const int NX) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++, w += 34) {
        float dw = f16(w);
        __m256i q = loadu(w + 2);
        __m256i aq = _mm256_sign_epi8(q, q);
        UNROLL for (int k = 0; k < NX; k++) {
            const pq_a32 *a = (const pq_a32 *)(xa + (size_t)k * xs) + b;
            __m256i s = dot_u8i8(aq, _mm256_sign_epi8(loadu(a->qs), q));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * a->d), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = hsum_ps(acc[k]);
}

/* ---- dot products: K-quants against the 256-element activation format ---- */
static inline void scales_mins_k4(const uint8_t *sc, uint8_t *s, uint8_t *m) {
    for (int j = 0; j < 8; j++) pq_scale_min_k4(j, sc, &s[j], &m[j]);
}

/* The 12 packed scale bytes of q4_K/q5_K -> 16 bytes: sc[0..7] then m[0..7] (6 bits each), with 32-bit
 * word operations instead of a per-byte loop. */
static inline __m128i scales_mins_vec(const uint8_t *q) {
    uint32_t a = pq_rd32(q), b = pq_rd32(q + 4), c = pq_rd32(q + 8);
    uint32_t sc_lo = a & 0x3F3F3F3Fu, m_lo = b & 0x3F3F3F3Fu;
    uint32_t sc_hi = (c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u);
    uint32_t m_hi = ((c >> 4) & 0x0F0F0F0Fu) | ((b >> 2) & 0x30303030u);
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)m_lo, (int)m_hi);
}

static inline __attribute__((always_inline)) void dot_q45_k_n(const uint8_t *w, const uint8_t *xa, size_t xs,
                                                              int64_t nb, float *out, const int NX,
                                                              const int Q5) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 accm[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    /* shuffles that broadcast int16 lane i of the scales vector */
    const __m256i bc[8] = {_mm256_set1_epi16(0x0100), _mm256_set1_epi16(0x0302), _mm256_set1_epi16(0x0504),
                           _mm256_set1_epi16(0x0706), _mm256_set1_epi16(0x0908), _mm256_set1_epi16(0x0B0A),
                           _mm256_set1_epi16(0x0D0C), _mm256_set1_epi16(0x0F0E)};
    const __m128i dup_m = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const size_t BS = Q5 ? 176 : 144;
    for (int64_t b = 0; b < nb; b++, w += BS) {
        float d = f16(w), dmin = f16(w + 2);
        __m128i scm = scales_mins_vec(w + 4);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));  /* sc[0..7] as i16, both lanes */
        __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup_m)); /* m[0],m[0],m[1],m[1],... */
        const uint8_t *q = w + (Q5 ? 48 : 16);
        __m256i hb = Q5 ? loadu(w + 16) : _mm256_setzero_si256();
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int j = 0; j < 4; j++) {
            __m256i raw = loadu(q + 32 * j);
            __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if (Q5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(hi,
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            __m256i s0 = _mm256_shuffle_epi8(sc16, bc[2 * j]), s1 = _mm256_shuffle_epi8(sc16, bc[2 * j + 1]);
            UNROLL for (int k = 0; k < NX; k++) {
                const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu(a->qs + 64 * j)), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu(a->qs + 64 * j + 32)), s1);
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(p0, p1));
            }
        }
        UNROLL for (int k = 0; k < NX; k++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
            __m256i mi = _mm256_madd_epi16(loadu(a->bsums), mins16);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(d * a->d), acc[k]);
            accm[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_set1_ps(dmin * a->d), accm[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = hsum_ps(_mm256_sub_ps(acc[k], accm[k]));
}

static inline __attribute__((always_inline)) void dot_q6_k_n(const uint8_t *w, const uint8_t *xa, size_t xs,
                                                             int64_t nb, float *out, const int NX) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    /* byte shuffles giving [sc[2i] x8 | sc[2i+1] x8] before widening to int16 */
    __m128i pairs[8];
    for (int i = 0; i < 8; i++) {
        __m128i lo = _mm_set1_epi8((char)(2 * i)), hi = _mm_set1_epi8((char)(2 * i + 1));
        pairs[i] = _mm_unpacklo_epi64(lo, hi);
    }
    for (int64_t b = 0; b < nb; b++, w += 210) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
        float d = f16(w + 208);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int c = 0; c < 2; c++) {
            const uint8_t *ql = w + 64 * c, *qh = w + 128 + 32 * c;
            __m256i l0 = loadu(ql), l1 = loadu(ql + 32), h = loadu(qh);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            for (int g = 0; g < 4; g++) {
                __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pairs[4 * c + g]));
                UNROLL for (int k = 0; k < NX; k++) {
                    const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
                    __m256i p = _mm256_maddubs_epi16(v[g], loadu(a->qs + 128 * c + 32 * g));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, scv));
                }
            }
        }
        UNROLL for (int k = 0; k < NX; k++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
            /* the -32 offset: 32 * sum_s sc[s] * bsums[s] */
            __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, loadu(a->bsums)), 5);
            sumi[k] = _mm256_sub_epi32(sumi[k], off);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(d * a->d), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = hsum_ps(acc[k]);
}

static inline __attribute__((always_inline)) void dot_q8_k_n(const uint8_t *w, const uint8_t *xa, size_t xs,
                                                             int64_t nb, float *out, const int NX) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++, w += 292) {
        float dw = pq_rdf32(w);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int j = 0; j < 8; j++) {
            __m256i q = loadu(w + 4 + 32 * j), aq = _mm256_sign_epi8(q, q);
            UNROLL for (int k = 0; k < NX; k++) {
                const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
                sumi[k] = _mm256_add_epi32(sumi[k], dot_u8i8(aq, _mm256_sign_epi8(loadu(a->qs + 32 * j), q)));
            }
        }
        UNROLL for (int k = 0; k < NX; k++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(dw * a->d), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = hsum_ps(acc[k]);
}

/* ---- float weights: x stays f32 ---- */
static inline __m256 load8_w(const uint8_t *w, int type) {
    if (type == PULSE_GGML_F32) return _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)w));
    __m128i h = _mm_loadu_si128((const __m128i *)w);
    if (type == PULSE_GGML_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float float_tail(int type, const uint8_t *p) {
    if (type == PULSE_GGML_F32) return pq_rdf32(p);
    if (type == PULSE_GGML_F16) return _cvtsh_ss(pq_rd16(p));
    return pulse_bf16_to_fp32(pq_rd16(p));
}

static inline __attribute__((always_inline)) void
dot_float_n(int type, const uint8_t *w, const uint8_t *xa, size_t xs, int64_t n, float *out, const int NX) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t es = type == PULSE_GGML_F32 ? 4 : 2;
    int64_t i = 0;
    if (NX == 1) { /* one row: four independent FMA chains */
        const float *x = (const float *)(const void *)xa;
        for (; i + 32 <= n; i += 32)
            for (int u = 0; u < 4; u++)
                acc[u] = _mm256_fmadd_ps(load8_w(w + (size_t)(i + 8 * u) * es, type),
                                         _mm256_loadu_ps(x + i + 8 * u), acc[u]);
        acc[0] = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        acc[1] = acc[2] = acc[3] = _mm256_setzero_ps();
    }
    for (; i + 8 <= n; i += 8) {
        __m256 wv = load8_w(w + (size_t)i * es, type);
        UNROLL for (int k = 0; k < NX; k++) {
            const float *x = (const float *)(const void *)(xa + (size_t)k * xs);
            acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) {
        const float *x = (const float *)(const void *)(xa + (size_t)k * xs);
        float s = hsum_ps(acc[k]);
        for (int64_t j = i; j < n; j++) s += float_tail(type, w + (size_t)j * es) * x[j];
        out[k] = s;
    }
}

#define DISPATCH_NX(CALL)                                                                                    \
    switch (nx) {                                                                                            \
    case 1:                                                                                                  \
        CALL(1);                                                                                             \
        break;                                                                                               \
    case 2:                                                                                                  \
        CALL(2);                                                                                             \
        break;                                                                                               \
    case 3:                                                                                                  \
        CALL(3);                                                                                             \
        break;                                                                                               \
    default:                                                                                                 \
        CALL(4);                                                                                             \
    }

static void dot_q8_0(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {
#define C(N) dot_q8_0_n(w, xa, xs, nb, out, N)
    DISPATCH_NX(C)
#undef C
}
static void dot_q4_k(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {
#define C(N) dot_q45_k_n(w, xa, xs, nb, out, N, 0)
    DISPATCH_NX(C)
#undef C
}
static void dot_q5_k(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {
#define C(N) dot_q45_k_n(w, xa, xs, nb, out, N, 1)
    DISPATCH_NX(C)
#undef C
}
static void dot_q6_k(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {
#define C(N) dot_q6_k_n(w, xa, xs, nb, out, N)
    DISPATCH_NX(C)
#undef C
}
static void dot_q8_k(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, int nx, float *out) {
#define C(N) dot_q8_k_n(w, xa, xs, nb, out, N)
    DISPATCH_NX(C)
#undef C
}
static void dot_float(int type, const uint8_t *w, const uint8_t *xa, size_t xs, int64_t n, int nx,
                      float *out) {
    /* one activation row at a time with four FMA chains: the same summation order for any batch size, so
     * batched products equal single ones bit for bit */
    for (int k = 0; k < nx; k++) dot_float_n(type, w, xa + (size_t)k * xs, xs, n, out + k, 1);
}

int pq_dot_avx2(int type, const uint8_t *w, const void *xa_, size_t xs, int nx, int64_t n, float *out) {
    const uint8_t *xa = (const uint8_t *)xa_;
    switch (type) {
    case PULSE_GGML_F32:
    case PULSE_GGML_F16:
    case PULSE_GGML_BF16:
        dot_float(type, w, xa, xs, n, nx, out);
        return 1;
    case PULSE_GGML_Q4_0:
        dot_q4_0(w, xa, xs, n / 32, nx, out);
        return 1;
    case PULSE_GGML_Q4_1:
        dot_q4_1(w, xa, xs, n / 32, nx, out);
        return 1;
    case PULSE_GGML_Q5_0:
        dot_q5_0(w, xa, xs, n / 32, nx, out);
        return 1;
    case PULSE_GGML_Q5_1:
        dot_q5_1(w, xa, xs, n / 32, nx, out);
        return 1;
    case PULSE_GGML_Q8_0:
        dot_q8_0(w, xa, xs, n / 32, nx, out);
        return 1;
    case PULSE_GGML_Q4_K:
        dot_q4_k(w, xa, xs, n / 256, nx, out);
        return 1;
    case PULSE_GGML_Q5_K:
        dot_q5_k(w, xa, xs, n / 256, nx, out);
        return 1;
    case PULSE_GGML_Q6_K:
        dot_q6_k(w, xa, xs, n / 256, nx, out);
        return 1;
    case PULSE_GGML_Q8_K:
        dot_q8_k(w, xa, xs, n / 256, nx, out);
        return 1;
    default:
        return 0;
    }
}

/* ---- dequantisers: same operations and rounding as the scalar reference ---- */
static inline void store_i8x32(float *y, __m256i q, __m256 d) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
}
/* y = q*d + m (type-1), or q*d - m for the K-quants (sub = 1) */
static inline void store_u8x32_dm(float *y, __m256i q, __m256 d, __m256 m, int sub) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k])), d);
        _mm256_storeu_ps(y + 8 * k, sub ? _mm256_sub_ps(v, m) : _mm256_add_ps(v, m));
    }
}

int pq_dequantize_avx2(int type, const void *src, float *y, int64_t n) {
    const uint8_t *b = (const uint8_t *)src;
    switch (type) {
    case PULSE_GGML_F16:
    case PULSE_GGML_BF16: {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load8_w(b + 2 * i, type));
        for (; i < n; i++) {
            uint16_t h = pq_rd16(b + 2 * i);
            y[i] = type == PULSE_GGML_F16 ? _cvtsh_ss(h) : pulse_bf16_to_fp32(h);
        }
        return 1;
    }
    case PULSE_GGML_Q4_0:
        for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32)
            store_i8x32(y, _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8)), _mm256_set1_ps(f16(b)));
        return 1;
    case PULSE_GGML_Q4_1:
        for (int64_t i = 0; i < n / 32; i++, b += 20, y += 32)
            store_u8x32_dm(y, nibbles32(b + 4), _mm256_set1_ps(f16(b)), _mm256_set1_ps(f16(b + 2)), 0);
        return 1;
    case PULSE_GGML_Q5_0:
        for (int64_t i = 0; i < n / 32; i++, b += 22, y += 32) {
            __m256i q = _mm256_or_si256(nibbles32(b + 6), bits32_x10(b + 2));
            store_i8x32(y, _mm256_sub_epi8(q, _mm256_set1_epi8(16)), _mm256_set1_ps(f16(b)));
        }
        return 1;
    case PULSE_GGML_Q5_1:
        for (int64_t i = 0; i < n / 32; i++, b += 24, y += 32) {
            __m256i q = _mm256_or_si256(nibbles32(b + 8), bits32_x10(b + 4));
            store_u8x32_dm(y, q, _mm256_set1_ps(f16(b)), _mm256_set1_ps(f16(b + 2)), 0);
        }
        return 1;
    case PULSE_GGML_Q8_0:
        for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32)
            store_i8x32(y, loadu(b + 2), _mm256_set1_ps(f16(b)));
        return 1;
    case PULSE_GGML_Q4_K:
    case PULSE_GGML_Q5_K: {
        int q5 = type == PULSE_GGML_Q5_K;
        const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
        for (int64_t i = 0; i < n / 256; i++, b += q5 ? 176 : 144) {
            float d = f16(b), dmin = f16(b + 2);
            uint8_t s[8], m[8];
            scales_mins_k4(b + 4, s, m);
            const uint8_t *q = b + (q5 ? 48 : 16);
            __m256i hb = q5 ? loadu(b + 16) : _mm256_setzero_si256();
            for (int j = 0; j < 4; j++, y += 64) {
                __m256i raw = loadu(q + 32 * j);
                __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                if (q5) {
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                    hi = _mm256_or_si256(
                        hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                    hb = _mm256_srli_epi16(hb, 2);
                }
                float d0 = d * s[2 * j], m0 = dmin * m[2 * j], d1 = d * s[2 * j + 1],
                      m1 = dmin * m[2 * j + 1];
                store_u8x32_dm(y, lo, _mm256_set1_ps(d0), _mm256_set1_ps(m0), 1);
                store_u8x32_dm(y + 32, hi, _mm256_set1_ps(d1), _mm256_set1_ps(m1), 1);
            }
        }
        return 1;
    }
    case PULSE_GGML_Q6_K: {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), o32 = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < n / 256; i++, b += 210) {
            const int8_t *sc = (const int8_t *)(b + 192);
            float d = f16(b + 208);
            for (int c = 0; c < 2; c++, y += 128) {
                const uint8_t *ql = b + 64 * c, *qh = b + 128 + 32 * c;
                __m256i l0 = loadu(ql), l1 = loadu(ql + 32), h = loadu(qh);
                __m256i v[4];
                v[0] =
                    _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
                v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
                v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
                v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
                for (int g = 0; g < 4; g++) {
                    __m256i q = _mm256_sub_epi8(v[g], o32);
                    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
                    /* elements 32g..32g+15 use sc[8c+2g], 32g+16.. use sc[8c+2g+1]; y = (d*sc)*q */
                    __m256 da = _mm256_set1_ps(d * (float)sc[8 * c + 2 * g]);
                    __m256 db = _mm256_set1_ps(d * (float)sc[8 * c + 2 * g + 1]);
                    float *yy = y + 32 * g;
                    _mm256_storeu_ps(yy, _mm256_mul_ps(da, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
                    _mm256_storeu_ps(
                        yy + 8,
                        _mm256_mul_ps(da, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
                    _mm256_storeu_ps(yy + 16,
                                     _mm256_mul_ps(db, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
                    _mm256_storeu_ps(
                        yy + 24,
                        _mm256_mul_ps(db, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
                }
            }
        }
        return 1;
    }
    default:
        return 0;
    }
}

#endif /* __AVX2__ */
