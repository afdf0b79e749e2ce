/* kernels/quant.c — owns the kernels' traits of the ggml types (one row per type: activation format, scalar
 * dequantiser, reference dot, reference quantiser), fp16/bf16 conversion, the scalar reference dequantisers,
 * activation quantisers and integer dot products, the reference weight quantisers, and the dispatch of
 * pulse_dequantize_row / pulse_qmatvec / pulse_qmatmul (OpenMP over weight rows, AVX2 kernels from
 * quant_avx2.c when compiled in). */
#include "quant_internal.h"

#include "pulse/core.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

_Static_assert((int)PQ_ACT_KINDS <= (int)PK_SCR_T0_PACK, "the activation kinds own pk_scratch slots 0..3");

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the scalar reference rounds each operation, like the AVX2 path */
#endif

/* ---- the kernels' traits: one row per type (the data part, names and sizes, is core's pulse/ggml.h) ---- */
typedef struct {
    int act; /* activation format of the products (PQ_ACT_*) */
    void (*to_float)(const uint8_t *b, float *y, int64_t n); /* scalar dequantiser of a row of n */
    float (*vec_dot)(int type, const uint8_t *w, const void *xa, int64_t n); /* scalar reference dot */
    void (*from_float)(const float *x, uint8_t *dst, int64_t n);             /* reference quantiser */
} pq_traits;
static const pq_traits *traits_of(int type); /* NULL: not supported (table at the end of this file) */

int pulse_ggml_type_supported(int type) {
    return traits_of(type) != NULL;
}

#ifdef __AVX2__
static _Atomic int g_vnni =
    -1; /* -1: not decided yet (atomic: the first products may run on several threads) */

/* the batched VNNI kernels (quant_tile.c): with VNNI unless pulse_options.qtile is 0 (comparisons) */
static _Atomic int g_tile;

int pulse_quant_use_vnni(int enable) {
    if (enable >= 0 || g_vnni < 0) {
        const int v = enable != 0 && pq_vnni_supported();
        g_tile = v && pulse_get_options()->qtile;
        g_vnni = v;
    }
    return g_vnni;
}

static inline int rows_kernel(int type, const uint8_t *W, size_t wrow, int r0, int r1, const void *xa,
                              size_t xs, int N, int64_t n, float *Y, size_t ldy) {
    return g_vnni ? pq_rows_vnni(type, W, wrow, r0, r1, xa, xs, N, n, Y, ldy)
                  : pq_rows_avx2(type, W, wrow, r0, r1, xa, xs, N, n, Y, ldy);
}
#else
int pulse_quant_use_vnni(int enable) {
    (void)enable;
    return 0;
}
#endif

int pulse_quant_has_avx2(void) {
#ifdef __AVX2__
    return 1;
#else
    return 0;
#endif
}

/* ---- fp16 / bf16 ---- */
float pulse_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pulse_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0)); /* inf / nan */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to >= 65520: overflow to inf */
    if (ax < 0x38800000u) {                                  /* below the smallest normal half: subnormal */
        if (ax < 0x33000000u) return (uint16_t)sign;         /* < 2^-25 rounds to zero */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10)), rem = ax & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float pulse_bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float f16(const uint8_t *p) {
    return pulse_fp16_to_fp32(pq_rd16(p));
}

/* ---- scalar dequantisers ---- */
/* ---- scalar dequantisers: traits to_float ---- */
static void to_float_f32(const uint8_t *b, float *y, int64_t n) {
    memcpy(y, b, (size_t)n * 4);
}

static void to_float_f16(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = f16(b + 2 * i);
}

static void to_float_bf16(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = pulse_bf16_to_fp32(pq_rd16(b + 2 * i));
}

static void to_float_q4_0(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32) {
        float d = f16(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

static void to_float_q4_1(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, b += 20, y += 32) {
        float d = f16(b), m = f16(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[4 + j] & 0xF) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
    }
}

static void to_float_q5_0(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, b += 22, y += 32) {
        float d = f16(b);
        uint32_t qh = pq_rd32(b + 2);
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)(((b[6 + j] & 0xF) | (h0 << 4)) - 16) * d;
            y[j + 16] = (float)(((b[6 + j] >> 4) | (h1 << 4)) - 16) * d;
        }
    }
}

static void to_float_q5_1(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, b += 24, y += 32) {
        float d = f16(b), m = f16(b + 2);
        uint32_t qh = pq_rd32(b + 4);
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)((b[8 + j] & 0xF) | (h0 << 4)) * d + m;
            y[j + 16] = (float)((b[8 + j] >> 4) | (h1 << 4)) * d + m;
        }
    }
}

static void to_float_q8_0(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32) {
        float d = f16(b);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
    }
}

static void to_float_q4_k(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, b += 144) {
        float d = f16(b), dmin = f16(b + 2);
        const uint8_t *sc = b + 4, *q = b + 16;
        for (int j = 0; j < 4; j++, q += 32) {
            uint8_t s0, m0, s1, m1;
            pq_scale_min_k4(2 * j, sc, &s0, &m0);
            pq_scale_min_k4(2 * j + 1, sc, &s1, &m1);
            float d0 = d * s0, mm0 = dmin * m0, d1 = d * s1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++) *y++ = d0 * (float)(q[l] & 0xF) - mm0;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] >> 4) - mm1;
        }
    }
}

static void to_float_q5_k(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, b += 176) {
        float d = f16(b), dmin = f16(b + 2);
        const uint8_t *sc = b + 4, *qh = b + 16, *q = b + 48;
        for (int j = 0; j < 4; j++, q += 32) {
            uint8_t s0, m0, s1, m1;
            pq_scale_min_k4(2 * j, sc, &s0, &m0);
            pq_scale_min_k4(2 * j + 1, sc, &s1, &m1);
            float d0 = d * s0, mm0 = dmin * m0, d1 = d * s1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++)
                *y++ = d0 * (float)((q[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)) - mm0;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((q[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) - mm1;
        }
    }
}

static void to_float_q6_k(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = f16(b + 208);
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static void to_float_q8_k(const uint8_t *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n / 256; i++, b += 292, y += 256) {
        float d = pq_rdf32(b);
        for (int j = 0; j < 256; j++) y[j] = d * (float)(int8_t)b[4 + j];
    }
}

void pulse_dequantize_row_ref(int type, const void *src, float *y, int64_t n) {
    const pq_traits *t = traits_of(type);
    if (t && t->to_float)
        t->to_float((const uint8_t *)src, y, n);
    else
        for (int64_t i = 0; i < n; i++) y[i] = NAN;
}

void pulse_dequantize_row(int type, const void *src, float *dst, int64_t n) {
#ifdef __AVX2__
    if (pq_dequantize_avx2(type, src, dst, n)) return;
#endif
    pulse_dequantize_row_ref(type, src, dst, n);
}

/* ---- activation quantisers ---- */
/* ggml's x86 quantize_row_q8_0 / q8_1: id = 127 / amax, q = round-half-even(x * id), d = f16(amax / 127);
 * q8_1's s = f16((amax / 127) * sum(q)). */
void pq_quantize_a32_ref(const float *x, pq_a32 *y, int64_t n, int q81) {
    for (int64_t b = 0; b < n / PQ_QK; b++, x += PQ_QK) {
        float amax = 0;
        for (int j = 0; j < PQ_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < PQ_QK; j++) {
            int q = (int)nearbyintf(x[j] * id);
            y[b].qs[j] = (int8_t)q;
            sum += q;
        }
        y[b].d = pulse_fp16_to_fp32(pulse_fp32_to_fp16(d));
        y[b].s = q81 ? pulse_fp16_to_fp32(pulse_fp32_to_fp16(d * (float)sum)) : y[b].d * (float)sum;
    }
}

/* ggml's quantize_row_q8_K_ref: iscale = -127 / max (max: the element of largest |x|), q = nearest(iscale *
 * x), d = 1 / iscale; the same products with the sign folded out: id = 127 / amax, d = 1 / id. */
void pq_quantize_a256_ref(const float *x, pq_a256 *y, int64_t n) {
    for (int64_t b = 0; b < n / PQ_QKK; b++, x += PQ_QKK) {
        float amax = 0;
        for (int j = 0; j < PQ_QKK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                int q = (int)nearbyintf(x[j] * id);
                y[b].qs[j] = (int8_t)q;
                sum += q;
            }
            y[b].bsums[g] = (int16_t)sum;
        }
        y[b].d = amax != 0 ? 1.0f / id : 0.0f;
    }
}

int pq_act_kind(int type) {
    const pq_traits *t = traits_of(type);
    return t ? t->act : PQ_ACT_F32;
}

size_t pq_act_row_size(int kind, int64_t n) {
    if (kind == PQ_ACT_32 || kind == PQ_ACT_32S) return (size_t)(n / PQ_QK) * sizeof(pq_a32);
    if (kind == PQ_ACT_256) return (size_t)(n / PQ_QKK) * sizeof(pq_a256);
    return (size_t)n * sizeof(float);
}

/* ---- scalar dot products: weight row (type) . activation row ---- */
static float vec_dot_f32(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const float *xf = (const float *)xa;
    float acc = 0;
    for (int64_t i = 0; i < n; i++) acc += pq_rdf32(w + 4 * i) * xf[i];
    return acc;
}

static float vec_dot_f16(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const float *xf = (const float *)xa;
    float acc = 0;
    for (int64_t i = 0; i < n; i++) acc += f16(w + 2 * i) * xf[i];
    return acc;
}

static float vec_dot_bf16(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const float *xf = (const float *)xa;
    float acc = 0;
    for (int64_t i = 0; i < n; i++) acc += pulse_bf16_to_fp32(pq_rd16(w + 2 * i)) * xf[i];
    return acc;
}

static float vec_dot_q32(int type, const uint8_t *w, const void *xa, int64_t n) {
    const pq_a32 *a = (const pq_a32 *)xa;
    float acc = 0;
    /* ggml's order (see quant_avx2_dot.h): 8 lanes of 4-element integer sums, lane[l] = fma(dw * dx,
     * sum, lane[l]) block after block, then ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)) (+ sum of m * s) */
    const size_t bs = pulse_ggml_type_size(type);
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, summs = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * bs;
        int wv[32];
        float mw = 0;
        if (type == PULSE_GGML_Q8_0) {
            for (int j = 0; j < 32; j++) wv[j] = (int8_t)blk[2 + j];
        } else if (type == PULSE_GGML_Q4_0 || type == PULSE_GGML_Q4_1) {
            const int t1 = type == PULSE_GGML_Q4_1, off = t1 ? 0 : 8;
            const uint8_t *qs = blk + (t1 ? 4 : 2);
            for (int j = 0; j < 16; j++) wv[j] = (qs[j] & 0xF) - off, wv[j + 16] = (qs[j] >> 4) - off;
            if (t1) mw = f16(blk + 2);
        } else {
            const int t1 = type == PULSE_GGML_Q5_1, o = t1 ? 4 : 2, off = t1 ? 0 : 16;
            const uint32_t qh = pq_rd32(blk + o);
            const uint8_t *qs = blk + o + 4;
            for (int j = 0; j < 16; j++) {
                wv[j] = ((qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - off;
                wv[j + 16] = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - off;
            }
            if (t1) mw = f16(blk + 2);
        }
        const float dd = f16(blk) * a[b].d;
        for (int l = 0; l < 8; l++) {
            int si = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) si += wv[j] * a[b].qs[j];
            lane[l] = fmaf(dd, (float)si, lane[l]);
        }
        if (type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1) summs += mw * a[b].s;
    }
    acc = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    return type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1 ? acc + summs : acc;
}

static float vec_dot_q4_k(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    /* llama.cpp's repacked order, see dot_q4_k_exact in quant_avx2_dot.h */
    const pq_a256 *k = (const pq_a256 *)xa;
    float acc4 = 0, accm = 0;
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + b * 144, *sc = blk + 4, *q = blk + 16;
        const int8_t *x = k[b].qs;
        const float dd = f16(blk) * k[b].d, dm = f16(blk + 2) * k[b].d;
        int isum[4], imin[4];
        for (int j = 0; j < 4; j++, q += 32, x += 64) {
            uint8_t s0, m0, s1, m1;
            pq_scale_min_k4(2 * j, sc, &s0, &m0);
            pq_scale_min_k4(2 * j + 1, sc, &s1, &m1);
            int p0 = 0, p1 = 0;
            for (int l = 0; l < 32; l++) p0 += (q[l] & 0xF) * x[l], p1 += (q[l] >> 4) * x[l + 32];
            isum[j] = s0 * p0 + s1 * p1;
            imin[j] = m0 * (k[b].bsums[4 * j] + k[b].bsums[4 * j + 1]) +
                      m1 * (k[b].bsums[4 * j + 2] + k[b].bsums[4 * j + 3]);
        }
        if (k[b].order & PULSE_QROW_ONE) {
            acc4 = fmaf((float)(isum[0] + isum[1] + isum[2] + isum[3]), dd, acc4);
            accm = fmaf((float)(imin[0] + imin[1] + imin[2] + imin[3]), dm, accm);
        } else
            for (int j = 0; j < 4; j++) {
                acc4 = fmaf((float)isum[j], dd, acc4);
                accm = fmaf((float)imin[j], dm, accm);
            }
    }
    return acc4 - accm;
}

static float vec_dot_q5_k(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const pq_a256 *k = (const pq_a256 *)xa;
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + b * 176;
        const uint8_t *sc = blk + 4, *qh = blk + 16, *q = blk + 48;
        const int8_t *x = k[b].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < 4; j++, q += 32, x += 64) {
            uint8_t s0, m0, s1, m1;
            pq_scale_min_k4(2 * j, sc, &s0, &m0);
            pq_scale_min_k4(2 * j + 1, sc, &s1, &m1);
            int p0 = 0, p1 = 0;
            for (int l = 0; l < 32; l++) {
                const int h0 = ((qh[l] >> (2 * j)) & 1) << 4, h1 = ((qh[l] >> (2 * j + 1)) & 1) << 4;
                p0 += ((q[l] & 0xF) | h0) * x[l];
                p1 += ((q[l] >> 4) | h1) * x[l + 32];
            }
            sumi += s0 * p0 + s1 * p1;
            summ += m0 * (k[b].bsums[4 * j] + k[b].bsums[4 * j + 1]) +
                    m1 * (k[b].bsums[4 * j + 2] + k[b].bsums[4 * j + 3]);
        }
        acc += f16(blk) * k[b].d * (float)sumi - f16(blk + 2) * k[b].d * (float)summ;
    }
    return acc;
}

static float vec_dot_q6_k(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const pq_a256 *k = (const pq_a256 *)xa;
    float acc = 0;
    /* vec_dot_q6_K_q8_K's 8 int32 lanes (lane l: elements 4l..4l+3 of each 32-element group, times its
     * scale, minus 32 * scale * bsum for sub-blocks 2l, 2l+1), fma per block; or llama.cpp's tiled kernel
     * (batches of 8+ rows, its epilogue contracted by the compiler): fma(isum * dw, dx, acc) per block */
    float lane6[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int tiled = 0;
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + b * 210;
        const int8_t *sc = (const int8_t *)(blk + 192);
        const int8_t *x = k[b].qs;
        int lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int c = 0; c < 2; c++) {
            const uint8_t *ql = blk + 64 * c, *qh = blk + 128 + 32 * c;
            for (int g = 0; g < 4; g++)
                for (int t = 0; t < 32; t++) {
                    const int lo = g & 1 ? ql[32 + t] : ql[t];
                    const int q6 = (g < 2 ? lo & 0xF : lo >> 4) | (((qh[t] >> (2 * g)) & 3) << 4);
                    lanes[t / 4] += sc[8 * c + 2 * g + (t >= 16)] * q6 * x[128 * c + 32 * g + t];
                }
        }
        int isum = 0;
        for (int l = 0; l < 8; l++) {
            lanes[l] -= 32 * (k[b].bsums[2 * l] * sc[2 * l] + k[b].bsums[2 * l + 1] * sc[2 * l + 1]);
            isum += lanes[l];
        }
        const float dw = f16(blk + 208);
        tiled = k[b].order & PULSE_QROW_TILED;
        if (tiled)
            acc = fmaf((float)isum * dw, k[b].d, acc);
        else
            for (int l = 0; l < 8; l++) lane6[l] = fmaf(dw * k[b].d, (float)lanes[l], lane6[l]);
    }
    if (tiled) return acc;
    return ((lane6[0] + lane6[4]) + (lane6[2] + lane6[6])) + ((lane6[1] + lane6[5]) + (lane6[3] + lane6[7]));
}

static float vec_dot_q8_k(int type, const uint8_t *w, const void *xa, int64_t n) {
    (void)type;
    const pq_a256 *k = (const pq_a256 *)xa;
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + b * 292;
        int sumi = 0;
        for (int j = 0; j < 256; j++) sumi += (int8_t)blk[4 + j] * k[b].qs[j];
        acc += pq_rdf32(blk) * k[b].d * (float)sumi;
    }
    return acc;
}

float pq_dot_ref(int type, const uint8_t *w, const void *xa, int64_t n) {
    const pq_traits *t = traits_of(type);
    return t && t->vec_dot ? t->vec_dot(type, w, xa, n) : NAN;
}

static _Thread_local const uint8_t *tl_orders;
static _Thread_local int tl_orders_n;

void pulse_quant_set_row_orders(const uint8_t *orders, int n) {
    tl_orders = orders;
    tl_orders_n = orders ? n : 0;
}

/* Quantise N rows of X (N, cols) into the activation format of `type`; returns the buffer (row stride
 * *stride bytes), or X itself for float weight types. */
static const void *quantize_acts(int type, const float *X, int N, int cols, size_t *stride, int use_ref) {
    int kind = pq_act_kind(type);
    *stride = pq_act_row_size(kind, cols);
    if (kind == PQ_ACT_F32) return X;
    uint8_t *buf = pk_scratch(kind, *stride * (size_t)N);
    if (!buf) return NULL;
    for (int i = 0; i < N; i++) {
        const float *x = X + (size_t)i * cols;
        void *y = buf + (size_t)i * *stride;
#ifdef __AVX2__
        if (!use_ref) {
            if (kind != PQ_ACT_256)
                pq_quantize_a32_avx2(x, y, cols, kind == PQ_ACT_32S);
            else
                pq_quantize_a256_avx2(x, y, cols);
            continue;
        }
#endif
        (void)use_ref;
        if (kind != PQ_ACT_256)
            pq_quantize_a32_ref(x, y, cols, kind == PQ_ACT_32S);
        else
            pq_quantize_a256_ref(x, y, cols);
    }
    if (kind == PQ_ACT_256) /* llama.cpp's summation order per row (pulse_quant_set_row_orders) */
        for (int i = 0; i < N; i++) {
            const int order = tl_orders && i < tl_orders_n ? tl_orders[i] : pulse_quant_row_order(i, N);
            pq_a256 *y = (pq_a256 *)(void *)(buf + (size_t)i * *stride);
            for (int64_t b = 0; b < cols / PQ_QKK; b++) y[b].order = order;
        }
    return buf;
}

#ifdef __AVX2__
/* The quantised activations (q8_0 format) packed for the tiled type-0 kernel, or NULL where it does not
 * apply (no VNNI, small batch, other type, the reference path). */
static const pq_t0_blk *t0_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    if (use_ref || !g_tile || N < PQ_T0_MIN_N || !pq_t0_type(type)) return NULL;
    pq_t0_blk *pk = pk_scratch(PK_SCR_T0_PACK, pq_t0_pack_bytes(N, cols / PQ_QK));
    if (pk) pq_t0_pack(xa, stride, N, cols / PQ_QK, pk);
    return pk;
}
#endif

#ifdef __AVX2__
/* The q8_K activations packed for the q4_K lanes kernel, or NULL where it does not apply. */
static const pq_k4_blk *k4_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    if (use_ref || !g_tile || N < PQ_K4_MIN_N || type != PULSE_GGML_Q4_K) return NULL;
    pq_k4_blk *pk = pk_scratch(PK_SCR_K4_PACK, pq_k4_pack_bytes(N, cols / PQ_QKK));
    if (pk) pq_k4_pack(xa, stride, N, cols / PQ_QKK, pk);
    return pk;
}
#endif

static int valid_shape(int type, int rows, int cols) {
    return rows >= 0 && cols >= 0 && pulse_ggml_type_supported(type) &&
           cols % pulse_ggml_block_size(type) == 0;
}

static void fill_nan(float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = NAN;
}

/* Weight rows per work item, and activation rows per tile in qmatmul (the tile's quantised activations stay
 * in L2 while each weight row is read once per tile). */
#define ROW_CHUNK 16
#define N_TILE 64

/* Items per dynamic grab: about 8 grabs per thread, so one atomic hand-out is never comparable to the
 * work it hands out (a single-row item of a small matrix is well under a microsecond). */
static int grab_size(long items) {
    long g = items / (8L * omp_get_max_threads());
    return g < 1 ? 1 : g > (1L << 20) ? (1 << 20) : (int)g;
}

static void qmatmul_impl(float *Y, const void *W, int type, const float *X, int N, int rows, int cols,
                         int use_ref) {
    if (!valid_shape(type, rows, cols) || N < 0) {
        fill_nan(Y, (size_t)(N > 0 ? N : 0) * (size_t)(rows > 0 ? rows : 0));
        return;
    }
    if (N == 0 || rows == 0) return;
    size_t stride;
    const uint8_t *xa = quantize_acts(type, X, N, cols, &stride, use_ref);
    if (!xa) {
        fill_nan(Y, (size_t)N * rows);
        return;
    }
#ifdef __AVX2__
    if (g_vnni < 0) pulse_quant_use_vnni(1);
    const pq_t0_blk *pk = t0_pack(type, xa, stride, N, cols, use_ref);
    const pq_k4_blk *pk4 = k4_pack(type, xa, stride, N, cols, use_ref);
#endif
    size_t wrow = pulse_ggml_row_size(type, cols);
    const uint8_t *wb = (const uint8_t *)W;
    int n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK, n_tiles = (N + N_TILE - 1) / N_TILE;
    long items = (long)n_chunks * n_tiles;
    double work = (double)rows * cols * N;
    const int grab = grab_size(items);
/* dynamic: a thread that starts late (woken from a passive wait, or descheduled on a loaded machine) takes
 * fewer items instead of holding up the join */
#pragma omp parallel for schedule(dynamic, grab) if (work > 200000.0 && !omp_in_parallel())
    for (long it = 0; it < items; it++) {
        int tile = (int)(it / n_chunks), chunk = (int)(it % n_chunks);
        int n0 = tile * N_TILE, n1 = n0 + N_TILE < N ? n0 + N_TILE : N;
        int r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
#ifdef __AVX2__
        if (pk4 && pq_k4_rows(wb, wrow, r0, r1, pk4, (N + 15) / 16, n0 / 16, n1 - n0, cols / PQ_QKK,
                              xa + (size_t)n0 * stride, stride, Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (pk && pq_t0_rows(type, wb, wrow, r0, r1, pk, n0 / 4, n1 - n0, cols / PQ_QK, Y + (size_t)n0 * rows,
                             (size_t)rows))
            continue;
        if (!use_ref && rows_kernel(type, wb, wrow, r0, r1, xa + (size_t)n0 * stride, stride, n1 - n0, cols,
                                    Y + (size_t)n0 * rows, (size_t)rows))
            continue;
#endif
        for (int r = r0; r < r1; r++) {
            const uint8_t *w = wb + (size_t)r * wrow;
            for (int n = n0; n < n1; n++)
                Y[(size_t)n * rows + r] = pq_dot_ref(type, w, xa + (size_t)n * stride, cols);
        }
    }
}

void pulse_qmatmul_multi(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols) {
    if (n_jobs <= 0 || N <= 0) return;
    if (n_jobs > PULSE_QMM_MAX_JOBS) { /* more than the table holds: do them in groups */
        pulse_qmatmul_multi(jobs, PULSE_QMM_MAX_JOBS, X, N, cols);
        pulse_qmatmul_multi(jobs + PULSE_QMM_MAX_JOBS, n_jobs - PULSE_QMM_MAX_JOBS, X, N, cols);
        return;
    }
    const uint8_t *xa[PQ_ACT_KINDS] = {(const uint8_t *)X, NULL, NULL, NULL};
    size_t stride[PQ_ACT_KINDS] = {(size_t)cols * sizeof(float), 0, 0, 0};
    long first_item[PULSE_QMM_MAX_JOBS + 1];
    int ok[PULSE_QMM_MAX_JOBS];
    int n_tiles = (N + N_TILE - 1) / N_TILE;
    long items = 0;
    double work = 0;
    for (int j = 0; j < n_jobs; j++) {
        const pulse_qmm_job *jb = &jobs[j];
        first_item[j] = items;
        ok[j] = valid_shape(jb->type, jb->rows, cols);
        if (!ok[j]) {
            fill_nan(jb->Y, (size_t)N * (size_t)(jb->rows > 0 ? jb->rows : 0));
            continue;
        }
        int kind = pq_act_kind(jb->type);
        if (kind != PQ_ACT_F32 && !xa[kind]) {
            xa[kind] = quantize_acts(jb->type, X, N, cols, &stride[kind], 0);
            if (!xa[kind]) {
                ok[j] = 0;
                fill_nan(jb->Y, (size_t)N * jb->rows);
                continue;
            }
        }
        items += (long)((jb->rows + ROW_CHUNK - 1) / ROW_CHUNK) * n_tiles;
        work += (double)jb->rows * cols * N;
    }
    first_item[n_jobs] = items;
#ifdef __AVX2__
    if (g_vnni < 0) pulse_quant_use_vnni(1);
    const pq_t0_blk *pk = NULL; /* one packing serves every type-0 job */
    for (int j = 0; j < n_jobs && !pk; j++)
        if (ok[j] && pq_t0_type(jobs[j].type))
            pk = t0_pack(jobs[j].type, xa[PQ_ACT_32], stride[PQ_ACT_32], N, cols, 0);
    const pq_k4_blk *pk4 = NULL;
    for (int j = 0; j < n_jobs && !pk4; j++)
        if (ok[j] && jobs[j].type == PULSE_GGML_Q4_K)
            pk4 = k4_pack(jobs[j].type, xa[PQ_ACT_256], stride[PQ_ACT_256], N, cols, 0);
#endif
    const int grab = grab_size(items);
#pragma omp parallel for schedule(dynamic, grab) if (work > 200000.0 && !omp_in_parallel())
    for (long it = 0; it < items; it++) {
        int j = 0;
        while (it >= first_item[j + 1]) j++;
        const pulse_qmm_job *jb = &jobs[j];
        int kind = pq_act_kind(jb->type), rows = jb->rows;
        int n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
        long local = it - first_item[j];
        int tile = (int)(local / n_chunks), chunk = (int)(local % n_chunks);
        int n0 = tile * N_TILE, n1 = n0 + N_TILE < N ? n0 + N_TILE : N;
        int r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
        size_t wrow = pulse_ggml_row_size(jb->type, cols);
        const uint8_t *wb = (const uint8_t *)jb->W;
#ifdef __AVX2__
        if (pk4 && jb->type == PULSE_GGML_Q4_K &&
            pq_k4_rows(wb, wrow, r0, r1, pk4, (N + 15) / 16, n0 / 16, n1 - n0, cols / PQ_QKK,
                       xa[kind] + (size_t)n0 * stride[kind], stride[kind], jb->Y + (size_t)n0 * rows,
                       (size_t)rows))
            continue;
        if (pk && pq_t0_type(jb->type) &&
            pq_t0_rows(jb->type, wb, wrow, r0, r1, pk, n0 / 4, n1 - n0, cols / PQ_QK,
                       jb->Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (rows_kernel(jb->type, wb, wrow, r0, r1, xa[kind] + (size_t)n0 * stride[kind], stride[kind],
                        n1 - n0, cols, jb->Y + (size_t)n0 * rows, (size_t)rows))
            continue;
#endif
        for (int r = r0; r < r1; r++)
            for (int n = n0; n < n1; n++)
                jb->Y[(size_t)n * rows + r] =
                    pq_dot_ref(jb->type, wb + (size_t)r * wrow, xa[kind] + (size_t)n * stride[kind], cols);
    }
}

void pulse_qmatvec(float *y, const void *W, int type, const float *x, int rows, int cols) {
    qmatmul_impl(y, W, type, x, 1, rows, cols, 0);
}
void pulse_qmatvec_ref(float *y, const void *W, int type, const float *x, int rows, int cols) {
    qmatmul_impl(y, W, type, x, 1, rows, cols, 1);
}
void pulse_qmatmul(float *Y, const void *W, int type, const float *X, int N, int rows, int cols) {
    qmatmul_impl(Y, W, type, X, N, rows, cols, 0);
}
void pulse_qmatmul_ref(float *Y, const void *W, int type, const float *X, int N, int rows, int cols) {
    qmatmul_impl(Y, W, type, X, N, rows, cols, 1);
}

/* ---- reference weight quantisers ---- */
static void put16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* type-0 32-blocks: d = (value of max |x|) / -half, q = round(x/d) + half clamped to [0, 2*half-1] */
static void quant_sym32(const float *x, uint8_t *blk, int half, uint8_t *qout) {
    float amax = 0, vmax = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), vmax = x[j];
    float d = vmax / (float)-half;
    put16(blk, pulse_fp32_to_fp16(d));
    d = pulse_fp16_to_fp32(pq_rd16(blk));
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++)
        qout[j] = (uint8_t)clampi((int)nearbyintf(x[j] * id) + half, 0, 2 * half - 1);
}

/* type-1 32-blocks: m = min, d = (max-min)/levels */
static void quant_asym32(const float *x, uint8_t *blk, int levels, uint8_t *qout) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < 32; j++) mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
    float d = (mx - mn) / (float)levels;
    put16(blk, pulse_fp32_to_fp16(d));
    put16(blk + 2, pulse_fp32_to_fp16(mn));
    d = pulse_fp16_to_fp32(pq_rd16(blk));
    mn = pulse_fp16_to_fp32(pq_rd16(blk + 2));
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) qout[j] = (uint8_t)clampi((int)nearbyintf((x[j] - mn) * id), 0, levels);
}

static void pack_nibbles(const uint8_t *q, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
}

static uint32_t pack_high_bits(const uint8_t *q) {
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    return qh;
}

/* q4_K / q5_K: 8 sub-blocks of 32 with 6-bit scales and mins */
static void quant_k45(const float *x, uint8_t *blk, int levels) {
    float sc[8], mn[8];
    for (int s = 0; s < 8; s++) {
        float lo = 0, hi = 0; /* include 0 so the min is <= 0 */
        for (int l = 0; l < 32; l++) lo = fminf(lo, x[32 * s + l]), hi = fmaxf(hi, x[32 * s + l]);
        sc[s] = (hi - lo) / (float)levels;
        mn[s] = -lo;
    }
    float msc = 0, mmn = 0;
    for (int s = 0; s < 8; s++) msc = fmaxf(msc, sc[s]), mmn = fmaxf(mmn, mn[s]);
    float d = msc / 63.0f, dmin = mmn / 63.0f;
    put16(blk, pulse_fp32_to_fp16(d));
    put16(blk + 2, pulse_fp32_to_fp16(dmin));
    d = pulse_fp16_to_fp32(pq_rd16(blk));
    dmin = pulse_fp16_to_fp32(pq_rd16(blk + 2));
    uint8_t isc[8], imn[8];
    for (int s = 0; s < 8; s++) {
        isc[s] = (uint8_t)clampi(d != 0 ? (int)nearbyintf(sc[s] / d) : 0, 0, 63);
        imn[s] = (uint8_t)clampi(dmin != 0 ? (int)nearbyintf(mn[s] / dmin) : 0, 0, 63);
    }
    uint8_t *scales = blk + 4;
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)((isc[j] & 63) | ((isc[j + 4] >> 4) << 6));
        scales[j + 4] = (uint8_t)((imn[j] & 63) | ((imn[j + 4] >> 4) << 6));
        scales[j + 8] = (uint8_t)((isc[j + 4] & 0xF) | ((imn[j + 4] & 0xF) << 4));
    }
    uint8_t q[256];
    for (int s = 0; s < 8; s++) {
        float ds = d * isc[s], ms = dmin * imn[s], id = ds != 0 ? 1.0f / ds : 0.0f;
        for (int l = 0; l < 32; l++)
            q[32 * s + l] = (uint8_t)clampi((int)nearbyintf((x[32 * s + l] + ms) * id), 0, levels);
    }
    int is5 = levels == 31;
    uint8_t *qh = blk + 16, *qs = blk + (is5 ? 48 : 16);
    if (is5) memset(qh, 0, 32);
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 32; l++) {
            uint8_t a = q[64 * j + l], b = q[64 * j + 32 + l];
            qs[32 * j + l] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
            if (is5) qh[l] |= (uint8_t)((((a >> 4) & 1) << (2 * j)) | (((b >> 4) & 1) << (2 * j + 1)));
        }
}

static void quant_q6k(const float *x, uint8_t *blk) {
    float sc[16], amax_s = 0;
    for (int s = 0; s < 16; s++) {
        float amax = 0, vmax = 0;
        for (int l = 0; l < 16; l++)
            if (fabsf(x[16 * s + l]) > amax) amax = fabsf(x[16 * s + l]), vmax = x[16 * s + l];
        sc[s] = vmax / -32.0f;
        amax_s = fmaxf(amax_s, fabsf(sc[s]));
    }
    float d = amax_s / 127.0f;
    put16(blk + 208, pulse_fp32_to_fp16(d));
    d = pulse_fp16_to_fp32(pq_rd16(blk + 208));
    int8_t *scales = (int8_t *)(blk + 192);
    uint8_t q[256];
    for (int s = 0; s < 16; s++) {
        scales[s] = (int8_t)clampi(d != 0 ? (int)nearbyintf(sc[s] / d) : 0, -128, 127);
        float ds = d * scales[s], id = ds != 0 ? 1.0f / ds : 0.0f;
        for (int l = 0; l < 16; l++)
            q[16 * s + l] = (uint8_t)(clampi((int)nearbyintf(x[16 * s + l] * id), -32, 31) + 32);
    }
    uint8_t *ql = blk, *qh = blk + 128;
    for (int c = 0; c < 2; c++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *qc = q + 128 * c;
            ql[64 * c + l] = (uint8_t)((qc[l] & 0xF) | ((qc[l + 64] & 0xF) << 4));
            ql[64 * c + l + 32] = (uint8_t)((qc[l + 32] & 0xF) | ((qc[l + 96] & 0xF) << 4));
            qh[32 * c + l] = (uint8_t)((qc[l] >> 4) | ((qc[l + 32] >> 4) << 2) | ((qc[l + 64] >> 4) << 4) |
                                       ((qc[l + 96] >> 4) << 6));
        }
}

static void from_float_f32(const float *x, uint8_t *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * 4);
}

static void from_float_f16(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t i = 0; i < n; i++) put16(o + 2 * i, pulse_fp32_to_fp16(x[i]));
}

static void from_float_bf16(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u)
            u = (u >> 16) | 0x40; /* quiet nan */
        else
            u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16; /* round to nearest even */
        put16(o + 2 * i, (uint16_t)u);
    }
}

static void from_float_q4_0(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    uint8_t q[32];
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 18) {
        quant_sym32(x, o, 8, q);
        pack_nibbles(q, o + 2);
    }
}

static void from_float_q4_1(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    uint8_t q[32];
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 20) {
        quant_asym32(x, o, 15, q);
        pack_nibbles(q, o + 4);
    }
}

static void from_float_q5_0(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    uint8_t q[32];
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 22) {
        quant_sym32(x, o, 16, q);
        uint32_t qh = pack_high_bits(q);
        memcpy(o + 2, &qh, 4);
        pack_nibbles(q, o + 6);
    }
}

static void from_float_q5_1(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    uint8_t q[32];
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 24) {
        quant_asym32(x, o, 31, q);
        uint32_t qh = pack_high_bits(q);
        memcpy(o + 4, &qh, 4);
        pack_nibbles(q, o + 8);
    }
}

static void from_float_q8_0(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 32; b++, x += 32, o += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        put16(o, pulse_fp32_to_fp16(amax / 127.0f));
        float d = pulse_fp16_to_fp32(pq_rd16(o)), id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++)
            o[2 + j] = (uint8_t)(int8_t)clampi((int)nearbyintf(x[j] * id), -127, 127);
    }
}

static void from_float_q4_k(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256, o += 144) quant_k45(x, o, 15);
}

static void from_float_q5_k(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256, o += 176) quant_k45(x, o, 31);
}

static void from_float_q6_k(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256, o += 210) quant_q6k(x, o);
}

static void from_float_q8_k(const float *x, uint8_t *dst, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / 256; b++, x += 256, o += 292) {
        pq_a256 a;
        pq_quantize_a256_ref(x, &a, 256);
        memcpy(o, &a.d, 4);
        memcpy(o + 4, a.qs, 256);
        memcpy(o + 260, a.bsums, 32);
    }
}

size_t pulse_quantize_row(int type, const float *x, void *dst, int64_t n) {
    size_t rs = pulse_ggml_row_size(type, n);
    const pq_traits *t = traits_of(type);
    if (!rs || !t || !t->from_float) return 0;
    t->from_float(x, (uint8_t *)dst, n);
    return rs;
}

/* ---- the traits table: a type without a row is not supported ---- */
static const pq_traits *traits_of(int type) {
    static const pq_traits tab[] = {
        [PULSE_GGML_F32] = {PQ_ACT_F32, to_float_f32, vec_dot_f32, from_float_f32},
        [PULSE_GGML_F16] = {PQ_ACT_F32, to_float_f16, vec_dot_f16, from_float_f16},
        [PULSE_GGML_Q4_0] = {PQ_ACT_32, to_float_q4_0, vec_dot_q32, from_float_q4_0},
        [PULSE_GGML_Q4_1] = {PQ_ACT_32S, to_float_q4_1, vec_dot_q32, from_float_q4_1},
        [PULSE_GGML_Q5_0] = {PQ_ACT_32, to_float_q5_0, vec_dot_q32, from_float_q5_0},
        [PULSE_GGML_Q5_1] = {PQ_ACT_32S, to_float_q5_1, vec_dot_q32, from_float_q5_1},
        [PULSE_GGML_Q8_0] = {PQ_ACT_32, to_float_q8_0, vec_dot_q32, from_float_q8_0},
        [PULSE_GGML_Q4_K] = {PQ_ACT_256, to_float_q4_k, vec_dot_q4_k, from_float_q4_k},
        [PULSE_GGML_Q5_K] = {PQ_ACT_256, to_float_q5_k, vec_dot_q5_k, from_float_q5_k},
        [PULSE_GGML_Q6_K] = {PQ_ACT_256, to_float_q6_k, vec_dot_q6_k, from_float_q6_k},
        [PULSE_GGML_Q8_K] = {PQ_ACT_256, to_float_q8_k, vec_dot_q8_k, from_float_q8_k},
        [PULSE_GGML_BF16] = {PQ_ACT_F32, to_float_bf16, vec_dot_bf16, from_float_bf16},
    };
    if (type < 0 || type >= (int)(sizeof tab / sizeof tab[0]) || !tab[type].to_float) return NULL;
    return &tab[type];
}
