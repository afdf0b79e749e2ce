/* kernels/quant_avx2_dot.h — the AVX2 integer dot-product kernels, included by quant_avx2.c (plain AVX2,
 * entry pq_dot_avx2) and quant_vnni.c (the same code compiled for AVX512-VNNI/VL, where u8 x i8 products use
 * vpdpbusd; entry pq_dot_vnni, chosen at run time). The includer defines PQ_VNNI (0/1) and PQ_ROWS_ENTRY and
 * includes <immintrin.h> and quant_internal.h first. Integer sums are exact, so both give identical results.
 */
#define UNROLL _Pragma("GCC unroll 4")
#define UNROLL_ALL _Pragma("GCC unroll 16")

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
#if PQ_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

static inline __m256i loadu(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- dot products: 32-element types ----
 * As ggml's x86 ggml_vec_dot_*_q8_0 / _q8_1 and llamafile's tinyBLAS_Q0_AVX, so that results are bit
 * identical to llama.cpp's: per block, 8 int32 lanes (each the sum of 4 adjacent byte products) are
 * converted to float and accumulated with acc = fma(dw * dx, lanes, acc) block after block; the sum of the
 * 8 lanes at the end (+ sum of m * s over the blocks for the type-1 formats, in block order). Type-0 weights
 * (q4_0, q5_0, q8_0) are signed (q - 8, q - 16, q); type-1 (q4_1, q5_1) unsigned with the offset m. */
#define DEF_DOT32(NAME, BS, UNPACK, SIGNED)                                                                  \
    static inline __attribute__((always_inline)) void NAME##_n(                                              \
        const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, float *out, const int NX) {              \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),                      \
                         _mm256_setzero_ps()};                                                               \
        float summs[4] = {0, 0, 0, 0};                                                                       \
        for (int64_t b = 0; b < nb; b++, w += BS) {                                                          \
            __m256i u;                                                                                       \
            float dw, mw;                                                                                    \
            UNPACK(w, &u, &dw, &mw);                                                                         \
            const __m256i au = SIGNED ? _mm256_sign_epi8(u, u) : u;                                          \
            UNROLL for (int k = 0; k < NX; k++) {                                                            \
                const pq_a32 *a = (const pq_a32 *)(xa + (size_t)k * xs) + b;                                 \
                const __m256i qa = loadu(a->qs);                                                             \
                const __m256i s = dot_u8i8(au, SIGNED ? _mm256_sign_epi8(qa, u) : qa);                       \
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a->d), _mm256_cvtepi32_ps(s), acc[k]);          \
                if (!SIGNED) summs[k] += mw * a->s;                                                          \
            }                                                                                                \
        }                                                                                                    \
        UNROLL for (int k = 0; k < NX; k++) out[k] = SIGNED ? hsum_ps(acc[k]) : hsum_ps(acc[k]) + summs[k];  \
    }

static inline void unpack_q4_0(const uint8_t *w, __m256i *u, float *dw, float *mw) {
    *dw = f16(w);
    *mw = 0;
    *u = _mm256_sub_epi8(nibbles32(w + 2), _mm256_set1_epi8(8));
}
static inline void unpack_q4_1(const uint8_t *w, __m256i *u, float *dw, float *mw) {
    *dw = f16(w);
    *mw = f16(w + 2);
    *u = nibbles32(w + 4);
}
static inline void unpack_q5_0(const uint8_t *w, __m256i *u, float *dw, float *mw) {
    *dw = f16(w);
    *mw = 0;
    *u = _mm256_sub_epi8(_mm256_or_si256(nibbles32(w + 6), bits32_x10(w + 2)), _mm256_set1_epi8(16));
}
static inline void unpack_q5_1(const uint8_t *w, __m256i *u, float *dw, float *mw) {
    *dw = f16(w);
    *mw = f16(w + 2);
    *u = _mm256_or_si256(nibbles32(w + 8), bits32_x10(w + 4));
}
static inline void unpack_q8_0(const uint8_t *w, __m256i *u, float *dw, float *mw) {
    *dw = f16(w);
    *mw = 0;
    *u = loadu(w + 2);
}

DEF_DOT32(dot_q4_0, 18, unpack_q4_0, 1)
DEF_DOT32(dot_q4_1, 20, unpack_q4_1, 0)
DEF_DOT32(dot_q5_0, 22, unpack_q5_0, 1)
DEF_DOT32(dot_q5_1, 24, unpack_q5_1, 0)
DEF_DOT32(dot_q8_0, 34, unpack_q8_0, 1)

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

/* q4_K as llama.cpp's CPU backend computes it with repacked weights (ggml_gemm / ggml_gemv_q4_K_8x8_q8_K):
 * per output, exact integer sums (scales times sub-block dots; mins times bsums), converted to float and
 * accumulated acc = fma(isum, dw * dx, acc), accm = fma(imin, dmin * dx, accm) once per 64 elements (rows
 * in groups of 4, "gemm") or once per 256 (single rows, "gemv": PULSE_QROW_ONE); result acc - accm. */
static inline __attribute__((always_inline)) void
dot_q4_k_exact(const uint8_t *w, const uint8_t *xa, size_t xs, int64_t nb, float *out, const int NX) {
    float acc[4] = {0, 0, 0, 0}, accm[4] = {0, 0, 0, 0};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m128i dup_m = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m256i bc[8] = {_mm256_set1_epi16(0x0100), _mm256_set1_epi16(0x0302), _mm256_set1_epi16(0x0504),
                           _mm256_set1_epi16(0x0706), _mm256_set1_epi16(0x0908), _mm256_set1_epi16(0x0B0A),
                           _mm256_set1_epi16(0x0D0C), _mm256_set1_epi16(0x0F0E)};
    for (int64_t b = 0; b < nb; b++, w += 144) {
        const float d = f16(w), dmin = f16(w + 2);
        const __m128i scm = scales_mins_vec(w + 4);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup_m)); /* m0,m0,m1,m1,... */
        const uint8_t *q = w + 16;
        int isum[4][4];
        __m256i pj[4][4];
        for (int j = 0; j < 4; j++) {
            const __m256i raw = loadu(q + 32 * j);
            const __m256i lo = _mm256_and_si256(raw, m4),
                          hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            const __m256i s0 = _mm256_shuffle_epi8(sc16, bc[2 * j]),
                          s1 = _mm256_shuffle_epi8(sc16, bc[2 * j + 1]);
            UNROLL for (int k = 0; k < NX; k++) {
                const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
                const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu(a->qs + 64 * j)), s0);
                const __m256i p1 =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu(a->qs + 64 * j + 32)), s1);
                pj[k][j] = _mm256_add_epi32(p0, p1);
            }
        }
        UNROLL for (int k = 0; k < NX; k++) { /* the 4 sums at once (integers: any order) */
            const __m256i h01 = _mm256_hadd_epi32(pj[k][0], pj[k][1]),
                          h23 = _mm256_hadd_epi32(pj[k][2], pj[k][3]);
            const __m256i h = _mm256_hadd_epi32(h01, h23); /* per 128-bit half: partial sums of j = 0..3 */
            const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm_storeu_si128((__m128i *)(void *)isum[k], t);
        }
        UNROLL for (int k = 0; k < NX; k++) {
            const pq_a256 *a = (const pq_a256 *)(xa + (size_t)k * xs) + b;
            const float dd = d * a->d, dm = dmin * a->d;
            /* lane l: m_l * (bsums of sub-block l); imin[j] = lanes 2j + 2j+1 */
            const __m256i mi = _mm256_madd_epi16(loadu(a->bsums), mins16);
            int imin[4];
            _mm_storeu_si128((__m128i *)(void *)imin,
                             _mm_hadd_epi32(_mm256_castsi256_si128(mi), _mm256_extracti128_si256(mi, 1)));
            if (a->order & PULSE_QROW_ONE) {
                acc[k] = fmaf((float)(isum[k][0] + isum[k][1] + isum[k][2] + isum[k][3]), dd, acc[k]);
                accm[k] = fmaf((float)(imin[0] + imin[1] + imin[2] + imin[3]), dm, accm[k]);
            } else
                for (int j = 0; j < 4; j++) {
                    acc[k] = fmaf((float)isum[k][j], dd, acc[k]);
                    accm[k] = fmaf((float)imin[j], dm, accm[k]);
                }
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = acc[k] - accm[k];
}

/* q5_K: 8 int32 lanes per block, fma per block (not llama.cpp's order: within rounding of it) */
static inline __attribute__((always_inline)) void dot_q5_k_n(const uint8_t *w, const uint8_t *xa, size_t xs,
                                                             int64_t nb, float *out, const int NX) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 accm[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    /* shuffles that broadcast int16 lane i of the scales vector */
    const __m256i bc[8] = {_mm256_set1_epi16(0x0100), _mm256_set1_epi16(0x0302), _mm256_set1_epi16(0x0504),
                           _mm256_set1_epi16(0x0706), _mm256_set1_epi16(0x0908), _mm256_set1_epi16(0x0B0A),
                           _mm256_set1_epi16(0x0D0C), _mm256_set1_epi16(0x0F0E)};
    const __m128i dup_m = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (int64_t b = 0; b < nb; b++, w += 176) {
        float d = f16(w), dmin = f16(w + 2);
        __m128i scm = scales_mins_vec(w + 4);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));  /* sc[0..7] as i16, both lanes */
        __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup_m)); /* m[0],m[0],m[1],m[1],... */
        const uint8_t *q = w + 48;
        __m256i hb = loadu(w + 16);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int j = 0; j < 4; j++) {
            __m256i raw = loadu(q + 32 * j);
            __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
            hb = _mm256_srli_epi16(hb, 2);
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
    float accs[4] = {0, 0, 0, 0};
    int tiled[4] = {0, 0, 0, 0};
    /* byte shuffles of [sc[8c..8c+7] | the same] (int16) giving [sc[8c+2g] x8 | sc[8c+2g+1] x8] */
    __m256i pairs[4];
    UNROLL_ALL for (int g = 0; g < 4; g++) pairs[g] =
        _mm256_setr_m128i(_mm_set1_epi16((short)(0x0100 * (4 * g + 1) + 4 * g)),
                          _mm_set1_epi16((short)(0x0100 * (4 * g + 3) + 4 * g + 2)));
    for (int64_t b = 0; b < nb; b++, w += 210) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
        float d = f16(w + 208);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                 _mm256_permute2x128_si256(sc16, sc16, 0x11)};
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        /* c and g unrolled: v, pairs and half in registers (rolled, they went through the stack: the
         * one-row product ran at 19 GB/s in cache, ggml's at 25) */
        UNROLL_ALL for (int c = 0; c < 2; c++) {
            const uint8_t *ql = w + 64 * c, *qh = w + 128 + 32 * c;
            __m256i v[4];
            pq_q6k_unpack128(ql, qh, v);
            UNROLL_ALL for (int g = 0; g < 4; g++) {
                __m256i scv = _mm256_shuffle_epi8(half[c], pairs[g]);
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
            if (a->order & PULSE_QROW_TILED) { /* llama.cpp's tiled kernel: fma((isum * dw), dx, acc) */
                tiled[k] = 1;
                accs[k] = fmaf((float)hsum_epi32(sumi[k]) * d, a->d, accs[k]);
            } else
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(d * a->d), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < NX; k++) out[k] = tiled[k] ? accs[k] : hsum_ps(acc[k]);
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

/* Every output of a float-weight product is one weight row . one activation row in one order, however many
 * rows are computed together (batched products equal single ones bit for bit) and at either level: four
 * 8-lane fma chains over 32-element steps (chain u takes elements 8u..8u+7 of each step), then (c0 + c1) +
 * (c2 + c3), one chain over the 8-element rest, the horizontal sum, then the scalar tail in order. A tile of
 * WR weight rows x XR activation rows shares each converted weight vector and each activation load, its
 * accumulators in registers: at AVX2 4 ymm per output, 1 x 3 (12 of 16 registers); in the AVX-512 build the
 * chains in pairs, zmm (c0 | c1) and (c2 | c3), 2 per output, 2 x 6 (24 of 32: half the loads per fma of
 * the ymm form; the pair sums are taken from the halves). The accumulators are named by index only after
 * full unrolling (an array indexed in a rolled loop went through the stack: the one-row f16 product ran at a
 * quarter of its fma rate). */
#if PQ_VNNI
#define FL_WR 2
#define FL_XR 6
#define FL_W1 4 /* one activation row (decode): weight rows per tile, 8 zmm accumulators */
#else
#define FL_WR 1
#define FL_XR 3
#define FL_W1 3 /* one activation row (decode): weight rows per tile, 12 ymm accumulators */
#endif
#define FL_WA 4 /* the accumulator arrays' bound on WR (FL_WR, FL_W1) */

#if PQ_VNNI
static inline __m256 hi256_ps(__m512 v) { /* AVX-512F only (no DQ in this build's target) */
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

static inline __m512 load16_w(const uint8_t *w, int type) {
    if (type == PULSE_GGML_F32) return _mm512_loadu_ps((const void *)w);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)w);
    if (type == PULSE_GGML_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

/* the vectors of the 32-element steps: FL_NC of FL_L lanes (zmm chain pairs, or the four ymm chains), and
 * (c0 + c1) + (c2 + c3) of one output's accumulators */
#if PQ_VNNI
#define FL_V __m512
#define FL_L 16
#define FL_NC 2
#define FL_ZERO _mm512_setzero_ps
#define FL_LOADW load16_w
#define FL_LOADX _mm512_loadu_ps
#define FL_FMA _mm512_fmadd_ps
#define FL_PAIRS(a)                                                                                          \
    _mm256_add_ps(_mm256_add_ps(_mm512_castps512_ps256((a)[0]), hi256_ps((a)[0])),                           \
                  _mm256_add_ps(_mm512_castps512_ps256((a)[1]), hi256_ps((a)[1])))
#else
#define FL_V __m256
#define FL_L 8
#define FL_NC 4
#define FL_ZERO _mm256_setzero_ps
#define FL_LOADW load8_w
#define FL_LOADX _mm256_loadu_ps
#define FL_FMA _mm256_fmadd_ps
#define FL_PAIRS(a) _mm256_add_ps(_mm256_add_ps((a)[0], (a)[1]), _mm256_add_ps((a)[2], (a)[3]))
#endif

/* Y[k * ldy + j] = W row j . X row k for j < WR, k < XR (W rows wrow bytes apart, X rows xs bytes apart) */
static inline __attribute__((always_inline)) void float_tile(const int type, const uint8_t *w, size_t wrow,
                                                             const uint8_t *xa, size_t xs, int64_t n,
                                                             float *Y, size_t ldy, const int WR,
                                                             const int XR) {
    const size_t es = type == PULSE_GGML_F32 ? 4 : 2;
    __m256 s[FL_WA][FL_XR];
    int64_t i = 0;
    FL_V c[FL_WA][FL_XR][FL_NC];
    UNROLL_ALL for (int j = 0; j < WR; j++) UNROLL_ALL for (int k = 0; k < XR; k++)
        UNROLL_ALL for (int h = 0; h < FL_NC; h++) c[j][k][h] = FL_ZERO();
    for (; i + 32 <= n; i += 32) {
        UNROLL_ALL for (int h = 0; h < FL_NC; h++) {
            FL_V wv[FL_WA];
            UNROLL_ALL for (int j = 0; j < WR; j++) wv[j] =
                FL_LOADW(w + (size_t)j * wrow + (size_t)(i + FL_L * h) * es, type);
            UNROLL_ALL for (int k = 0; k < XR; k++) {
                const FL_V xv = FL_LOADX((const float *)(const void *)(xa + (size_t)k * xs) + i + FL_L * h);
                UNROLL_ALL for (int j = 0; j < WR; j++) c[j][k][h] = FL_FMA(wv[j], xv, c[j][k][h]);
            }
        }
    }
    UNROLL_ALL for (int j = 0; j < WR; j++) UNROLL_ALL for (int k = 0; k < XR; k++) s[j][k] =
        FL_PAIRS(c[j][k]);
    for (; i + 8 <= n; i += 8) {
        __m256 wv[FL_WA];
        UNROLL_ALL for (int j = 0; j < WR; j++) wv[j] = load8_w(w + (size_t)j * wrow + (size_t)i * es, type);
        UNROLL_ALL for (int k = 0; k < XR; k++) {
            const __m256 xv = _mm256_loadu_ps((const float *)(const void *)(xa + (size_t)k * xs) + i);
            UNROLL_ALL for (int j = 0; j < WR; j++) s[j][k] = _mm256_fmadd_ps(wv[j], xv, s[j][k]);
        }
    }
    UNROLL_ALL for (int j = 0; j < WR; j++) UNROLL_ALL for (int k = 0; k < XR; k++) {
        const float *x = (const float *)(const void *)(xa + (size_t)k * xs);
        const uint8_t *wj = w + (size_t)j * wrow;
        float t = hsum_ps(s[j][k]);
        for (int64_t e = i; e < n; e++) t += float_tail(type, wj + (size_t)e * es) * x[e];
        Y[(size_t)k * ldy + (size_t)j] = t;
    }
}

/* the tile for xr (<= FL_XR) activation rows; cases above FL_XR are never taken (XR clamped to compile) */
#define FL_CALL(WR, XR)                                                                                      \
    float_tile(type, W + (size_t)r * wrow, wrow, xi, xs, n, yi + r, ldy, WR, (XR) <= FL_XR ? (XR) : FL_XR)
// clang-format off
#define FL_TILE(WR)                                                                                          \
    switch (xr) {                                                                                            \
    case 6: FL_CALL(WR, 6); break;                                                                           \
    case 5: FL_CALL(WR, 5); break;                                                                           \
    case 4: FL_CALL(WR, 4); break;                                                                           \
    case 3: FL_CALL(WR, 3); break;                                                                           \
    case 2: FL_CALL(WR, 2); break;                                                                           \
    default: FL_CALL(WR, 1); break;                                                                          \
    }
// clang-format on

/* Weight rows r0..r1-1 against activation rows 0..N-1: FL_XR activation rows at a time (in L1) against
 * every weight row of the range, FL_WR weight rows per tile. */
static inline __attribute__((always_inline)) void rows_float(const int type, const uint8_t *W, size_t wrow,
                                                             int r0, int r1, const uint8_t *xa, size_t xs,
                                                             int N, int64_t n, float *Y, size_t ldy) {
    if (N == 1) { /* decode: more weight rows side by side, their chains independent */
        int r = r0;
        for (; r + FL_W1 <= r1; r += FL_W1)
            float_tile(type, W + (size_t)r * wrow, wrow, xa, xs, n, Y + r, ldy, FL_W1, 1);
        for (; r < r1; r++) float_tile(type, W + (size_t)r * wrow, wrow, xa, xs, n, Y + r, ldy, 1, 1);
        return;
    }
    for (int i = 0; i < N; i += FL_XR) {
        const int xr = N - i < FL_XR ? N - i : FL_XR;
        const uint8_t *xi = xa + (size_t)i * xs;
        float *yi = Y + (size_t)i * ldy;
        int r = r0;
        for (; r + FL_WR <= r1; r += FL_WR) FL_TILE(FL_WR)
        for (; r < r1; r++) FL_TILE(1)
    }
}

#define DEF_ROWS_FLOAT(NAME, TYPE)                                                                           \
    static void NAME(const uint8_t *W, size_t wrow, int r0, int r1, const uint8_t *xa, size_t xs, int N,     \
                     int64_t n, float *Y, size_t ldy) {                                                      \
        rows_float(TYPE, W, wrow, r0, r1, xa, xs, N, n, Y, ldy);                                             \
    }
DEF_ROWS_FLOAT(rows_f32, PULSE_GGML_F32)
DEF_ROWS_FLOAT(rows_f16, PULSE_GGML_F16)
DEF_ROWS_FLOAT(rows_bf16, PULSE_GGML_BF16)

/* Weight rows r0..r1-1 against activation rows 0..N-1 (stride xs bytes): Y[i * ldy + r]. Each weight row is
 * unpacked once per group of 4 activation rows; the type switch and calls are out of the row loop. */
#define DEF_ROWS(NAME, KN, QK)                                                                               \
    static void NAME(const uint8_t *W, size_t wrow, int r0, int r1, const uint8_t *xa, size_t xs, int N,     \
                     int64_t n, float *Y, size_t ldy) {                                                      \
        const int64_t nb = n / QK;                                                                           \
        for (int r = r0; r < r1; r++) {                                                                      \
            const uint8_t *w = W + (size_t)r * wrow;                                                         \
            float o[4];                                                                                      \
            int i = 0;                                                                                       \
            for (; i + 4 <= N; i += 4) {                                                                     \
                KN(w, xa + (size_t)i * xs, xs, nb, o, 4);                                                    \
                for (int k = 0; k < 4; k++) Y[(size_t)(i + k) * ldy + r] = o[k];                             \
            }                                                                                                \
            const uint8_t *xi = xa + (size_t)i * xs;                                                         \
            switch (N - i) {                                                                                 \
            case 3:                                                                                          \
                KN(w, xi, xs, nb, o, 3);                                                                     \
                break;                                                                                       \
            case 2:                                                                                          \
                KN(w, xi, xs, nb, o, 2);                                                                     \
                break;                                                                                       \
            case 1:                                                                                          \
                KN(w, xi, xs, nb, o, 1);                                                                     \
                break;                                                                                       \
            default:                                                                                         \
                break;                                                                                       \
            }                                                                                                \
            for (int k = 0; k < N - i; k++) Y[(size_t)(i + k) * ldy + r] = o[k];                             \
        }                                                                                                    \
    }

DEF_ROWS(rows_q4_0, dot_q4_0_n, 32)
DEF_ROWS(rows_q4_1, dot_q4_1_n, 32)
DEF_ROWS(rows_q5_0, dot_q5_0_n, 32)
DEF_ROWS(rows_q5_1, dot_q5_1_n, 32)
DEF_ROWS(rows_q8_0, dot_q8_0_n, 32)
DEF_ROWS(rows_q4_k, dot_q4_k_exact, 256)
DEF_ROWS(rows_q5_k, dot_q5_k_n, 256)
DEF_ROWS(rows_q6_k, dot_q6_k_n, 256)
DEF_ROWS(rows_q8_k, dot_q8_k_n, 256)

#if !PQ_VNNI
/* ---- 32-element weights (q4_0, q5_0, q8_0; q4_1, q5_1) against one activation row (decode) at plain AVX2,
 * two weight rows at a time (quant_tile.c's pq_t0_gemv is the AVX512-VNNI form of the same, 4 rows) ----
 * Type 1 (q4_1, q5_1: unsigned values, the offset m) takes vpmaddubsw directly and keeps DEF_DOT32's scalar
 * sum of m * s per block beside each row's fma chain (ggml_quant.sh at AVX2: the per-row form ran at
 * 0.79-0.88x ggml's one-row rate, its single fma chain a 4-cycle latency per 20-byte block). q4_0 / q5_0
 * weights as the unsigned operand stored q + C (the nibble, C = 8; nibble | fifth bit << 4, C = 16), each
 * lane started from -C times the sum of its 4 activations (once per call for all the rows): the same 8 exact
 * int32 lanes as dot_*_n's sign trick (vpmaddubsw's int16 pairs hold 2 * 31 * 128), so the same fma sequence
 * acc = fma(dw * dx, lanes, acc) per row and ggml's horizontal sum give the same bits. q8_0 keeps the sign
 * trick (2 * 255 * 128 would saturate). Two rows side by side make two fma chains; the next pair's bytes are
 * prefetched as one address-ordered stream (AMD Zen 4's prefetcher loses two interleaved row streams). */
#define R1_MAXB 512 /* blocks per row (16,384 columns) the stack holds the lane corrections for */

static inline __attribute__((always_inline)) __m256i r1_lanes(const int type, const uint8_t *w, __m256i xq,
                                                              __m256i corr) {
    if (type == PULSE_GGML_Q8_0) {
        const __m256i u = loadu(w + 2);
        return dot_u8i8(_mm256_sign_epi8(u, u), _mm256_sign_epi8(xq, u));
    }
    if (type == PULSE_GGML_Q4_1) return dot_u8i8(nibbles32(w + 4), xq); /* type 1: unsigned, no correction */
    if (type == PULSE_GGML_Q5_1) return dot_u8i8(_mm256_or_si256(nibbles32(w + 8), bits32_x10(w + 4)), xq);
    const __m256i u =
        type == PULSE_GGML_Q4_0 ? nibbles32(w + 2) : _mm256_or_si256(nibbles32(w + 6), bits32_x10(w + 2));
    return _mm256_add_epi32(corr, dot_u8i8(u, xq));
}

static inline __attribute__((always_inline)) void r1_rows(const int type, const int BS, const int SH,
                                                          const uint8_t *W, size_t wrow, int r0, int r1,
                                                          const pq_a32 *x, int64_t nb, float *Y) {
    __m256i corr[R1_MAXB];
    const int T1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1; /* m * s per block, summed apart */
    const int CORR = type != PULSE_GGML_Q8_0 && !T1;                   /* the lane corrections (q4_0, q5_0) */
    if (CORR)
        for (int64_t b = 0; b < nb; b++) /* -C * (sum of the lane's 4 activations) */
            corr[b] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(dot_u8i8(_mm256_set1_epi8(1), loadu(x[b].qs)), SH));
    int r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *w0 = W + (size_t)r * wrow, *w1 = w0 + wrow;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m128 ms = _mm_setzero_ps(); /* type 1: lanes 1 and 3 the two rows' sums of m * s */
        const char *pf = (const char *)w0 + 2 * wrow;
        for (int64_t b = 0; b < nb; b++, w0 += BS, w1 += BS, pf += 2 * BS) {
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            const __m256i xq = loadu(x[b].qs);
            const __m256i c = CORR ? corr[b] : _mm256_setzero_si256();
            const __m256i s0 = r1_lanes(type, w0, xq, c), s1 = r1_lanes(type, w1, xq, c);
            if (T1) { /* (d0, m0, d1, m1) converted at once, times (dx, s, dx, s): the same fp32 products */
                const __m128 p =
                    _mm_mul_ps(_mm_cvtph_ps(_mm_setr_epi32((int)pq_rd32(w0), (int)pq_rd32(w1), 0, 0)),
                               _mm_setr_ps(x[b].d, x[b].s, x[b].d, x[b].s));
                a0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(p), _mm256_cvtepi32_ps(s0), a0);
                a1 = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehl_ps(p, p)), _mm256_cvtepi32_ps(s1), a1);
                ms = _mm_add_ps(ms, p); /* DEF_DOT32's summs, block by block, in lanes 1 and 3 */
            } else {
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w0) * x[b].d), _mm256_cvtepi32_ps(s0), a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w1) * x[b].d), _mm256_cvtepi32_ps(s1), a1);
            }
        }
        /* N = 1: rows r, r + 1 of the one output row */
        Y[r] = T1 ? hsum_ps(a0) + _mm_cvtss_f32(_mm_shuffle_ps(ms, ms, 1)) : hsum_ps(a0);
        Y[r + 1] = T1 ? hsum_ps(a1) + _mm_cvtss_f32(_mm_shuffle_ps(ms, ms, 3)) : hsum_ps(a1);
    }
    if (r < r1) { /* the last of an odd count */
        const uint8_t *w0 = W + (size_t)r * wrow;
        __m256 a0 = _mm256_setzero_ps();
        float m0 = 0;
        for (int64_t b = 0; b < nb; b++, w0 += BS) {
            const __m256i s0 = r1_lanes(type, w0, loadu(x[b].qs), CORR ? corr[b] : _mm256_setzero_si256());
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w0) * x[b].d), _mm256_cvtepi32_ps(s0), a0);
            if (T1) m0 += f16(w0 + 2) * x[b].s;
        }
        Y[r] = T1 ? hsum_ps(a0) + m0 : hsum_ps(a0);
    }
}

/* 1 when done (one activation row of a 32-element format, at most R1_MAXB blocks); each type its own
 * r1_rows (BS bytes per block, SH the correction's shift) */
#define R1_CASE(T, BS, SH)                                                                                   \
    case T:                                                                                                  \
        r1_rows(T, BS, SH, W, wrow, r0, r1, x, nb, Y);                                                       \
        return 1;
static int rows1_t0(int type, const uint8_t *W, size_t wrow, int r0, int r1, const uint8_t *xa, int N,
                    int64_t n, float *Y) {
    const int64_t nb = n / 32;
    if (N != 1 || nb > R1_MAXB) return 0;
    const pq_a32 *x = (const pq_a32 *)(const void *)xa;
    switch (type) {
        R1_CASE(PULSE_GGML_Q4_0, 18, 3)
        R1_CASE(PULSE_GGML_Q5_0, 22, 4)
        R1_CASE(PULSE_GGML_Q8_0, 34, 0)
        R1_CASE(PULSE_GGML_Q4_1, 20, 0)
        R1_CASE(PULSE_GGML_Q5_1, 24, 0)
    default:
        return 0;
    }
}
#endif

int PQ_ROWS_ENTRY(int type, const uint8_t *W, size_t wrow, int r0, int r1, const void *xa_, size_t xs, int N,
                  int64_t n, float *Y, size_t ldy) {
    const uint8_t *xa = (const uint8_t *)xa_;
#if !PQ_VNNI
    if (rows1_t0(type, W, wrow, r0, r1, xa, N, n, Y)) return 1;
#endif
    switch (type) {
    case PULSE_GGML_F32:
        rows_f32(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_F16:
        rows_f16(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_BF16:
        rows_bf16(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q4_0:
        rows_q4_0(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q4_1:
        rows_q4_1(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q5_0:
        rows_q5_0(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q5_1:
        rows_q5_1(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q8_0:
        rows_q8_0(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q4_K:
        rows_q4_k(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q5_K:
        rows_q5_k(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q6_K:
        rows_q6_k(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    case PULSE_GGML_Q8_K:
        rows_q8_k(W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
        return 1;
    default:
        return 0;
    }
}
