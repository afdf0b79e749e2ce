/* kernels/quant_avx2.c — owns the AVX2 kernels: dequantisers (bit-identical to the scalar reference),
 * activation quantisers (byte-identical) and the integer dot products of a weight row against 1..4
 * activation rows (the weight block is unpacked once and multiplied into each activation row: this is what
 * makes batched decode cheaper per token). Compiled only with __AVX2__ (the portable build skips it). */
#include "quant_internal.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* llama.cpp's rounding, operation by operation */
#endif

#ifdef __AVX2__
#include <immintrin.h>

#define PQ_VNNI 0
#define PQ_ROWS_ENTRY pq_rows_avx2
#include "quant_avx2_dot.h"

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

void pq_quantize_a32_avx2(const float *x, pq_a32 *y, int64_t n, int q81) {
    for (int64_t b = 0; b < n / PQ_QK; b++, x += PQ_QK) {
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int k = 1; k < 4; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
        const float amax = max8(m);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        __m256i q = round32(x, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        int sum = hsum_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
        y[b].d = _cvtsh_ss(_cvtss_sh(d, 0));
        y[b].s = q81 ? _cvtsh_ss(_cvtss_sh(d * (float)sum, 0)) : y[b].d * (float)sum;
    }
}

void pq_quantize_a256_avx2(const float *x, pq_a256 *y, int64_t n) {
    for (int64_t b = 0; b < n / PQ_QKK; b++, x += PQ_QKK) {
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int k = 1; k < 32; k++) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
        const float amax = max8(m);
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
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
        y[b].d = amax != 0 ? 1.0f / id : 0.0f;
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
        const __m256i o32 = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < n / 256; i++, b += 210) {
            const int8_t *sc = (const int8_t *)(b + 192);
            float d = f16(b + 208);
            for (int c = 0; c < 2; c++, y += 128) {
                const uint8_t *ql = b + 64 * c, *qh = b + 128 + 32 * c;
                __m256i v[4];
                pq_q6k_unpack128(ql, qh, v);
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
