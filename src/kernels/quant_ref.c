/* kernels/quant_ref.c — owns the scalar reference of each ggml type and the kernels' traits table (one row
 * per type: activation format, dequantiser, reference dot, reference quantiser; the data part, names and
 * sizes, is core's pulse/ggml.h): what pulse_dequantize_row_ref / pulse_quantize_row / pq_dot_ref run and
 * what the AVX2 kernels (quant_avx2.c, quant_tile.c) are tested against. */
#include "quant_internal.h"

#include "pulse/core.h"

#include <math.h>
#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the scalar reference rounds each operation, like the AVX2 path */
#endif

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
    const pq_traits *t = pq_traits_of(type);
    if (t && t->to_float)
        t->to_float((const uint8_t *)src, y, n);
    else
        for (int64_t i = 0; i < n; i++) y[i] = NAN;
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

/* One 32-element weight block (q4_0 / q5_0 / q8_0 / q4_1 / q5_1) -> its signed values (type 1: the stored
 * 0..15 / 0..31) and, for type 1, the offset m. */
static void q32_block(int type, const uint8_t *blk, int wv[32], float *mw) {
    *mw = 0;
    if (type == PULSE_GGML_Q8_0) {
        for (int j = 0; j < 32; j++) wv[j] = (int8_t)blk[2 + j];
    } else if (type == PULSE_GGML_Q4_0 || type == PULSE_GGML_Q4_1) {
        const int t1 = type == PULSE_GGML_Q4_1, off = t1 ? 0 : 8;
        const uint8_t *qs = blk + (t1 ? 4 : 2);
        for (int j = 0; j < 16; j++) wv[j] = (qs[j] & 0xF) - off, wv[j + 16] = (qs[j] >> 4) - off;
        if (t1) *mw = f16(blk + 2);
    } else {
        const int t1 = type == PULSE_GGML_Q5_1, o = t1 ? 4 : 2, off = t1 ? 0 : 16;
        const uint32_t qh = pq_rd32(blk + o);
        const uint8_t *qs = blk + o + 4;
        for (int j = 0; j < 16; j++) {
            wv[j] = ((qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - off;
            wv[j + 16] = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - off;
        }
        if (t1) *mw = f16(blk + 2);
    }
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
        float mw;
        q32_block(type, blk, wv, &mw);
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

float pq_dot_fast_ref(int type, const uint8_t *w, const void *xa, int64_t n) {
    const pq_a32 *a = (const pq_a32 *)xa;
    const int t1 = type == PULSE_GGML_Q4_1 || type == PULSE_GGML_Q5_1;
    const size_t bs = pulse_ggml_type_size(type);
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * bs;
        int wv[32], si = 0;
        float mw;
        q32_block(type, blk, wv, &mw);
        for (int j = 0; j < 32; j++) si += wv[j] * a[b].qs[j];
        acc = fmaf((float)si, f16(blk) * a[b].d, acc);
        if (t1) acc = fmaf(mw, a[b].s, acc);
    }
    return acc;
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
    const pq_traits *t = pq_traits_of(type);
    return t && t->vec_dot ? t->vec_dot(type, w, xa, n) : NAN;
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
    const pq_traits *t = pq_traits_of(type);
    if (!rs || !t || !t->from_float) return 0;
    t->from_float(x, (uint8_t *)dst, n);
    return rs;
}

/* ---- the traits table: a type without a row is not supported ---- */
const pq_traits *pq_traits_of(int type) {
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
