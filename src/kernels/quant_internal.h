/* kernels/quant_internal.h — shared by quant.c (dispatch), quant_ref.c (scalar reference) and quant_avx2.c:
 * block sizes, the activation formats that quantised products use, and the kernel prototypes. Weight blocks
 * are read from byte pointers (GGUF data need not be aligned for the structs), fields at ggml's offsets:
 *   q4_0  (18 B): f16 d | u8 qs[16]               x = d * (nib - 8)      nib: elt j low, elt j+16 high
 *   q4_1  (20 B): f16 d, f16 m | u8 qs[16]         x = d * nib + m
 *   q5_0  (22 B): f16 d | u32 qh | u8 qs[16]       x = d * ((nib | bit<<4) - 16)    bit j of qh: elt j
 *   q5_1  (24 B): f16 d, f16 m | u32 qh | qs[16]   x = d * (nib | bit<<4) + m
 *   q8_0  (34 B): f16 d | i8 qs[32]                x = d * q
 *   q4_K (144 B): f16 d, f16 dmin | u8 scales[12] (6-bit sc/m x 8) | u8 qs[128]
 *   q5_K (176 B): f16 d, f16 dmin | scales[12] | u8 qh[32] | u8 qs[128]
 *   q6_K (210 B): u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
 *   q8_K (292 B): f32 d | i8 qs[256] | i16 bsums[16] */
#ifndef PULSE_KERNELS_QUANT_INTERNAL_H
#define PULSE_KERNELS_QUANT_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "pulse/quant.h"

#define PQ_QK 32
#define PQ_QKK 256

/* Activation block for the 32-element types, ggml's q8_0 / q8_1 held as floats: d is the f16-rounded scale
 * amax / 127 (qs = round-half-even(x * 127 / amax)); s is d * sum(qs) exactly for the q8_0 kind, and for
 * the q8_1 kind ggml's f16-rounded (amax / 127) * sum(qs). */
typedef struct {
    float d;
    float s;
    int8_t qs[PQ_QK];
} pq_a32;

/* Activation block for the K-quants (ggml's q8_K): d = 1 / (127 / amax), per-16 sums of qs, qs. */
typedef struct {
    float d;
    int16_t bsums[16];
    int8_t qs[PQ_QKK];
    int32_t order; /* PULSE_QROW_* flags of the row: llama.cpp's summation order (see quant_avx2_dot.h) */
} pq_a256;

/* Which activation format a weight type multiplies against (ggml's vec_dot_type): q8_0 for q4_0 / q5_0 /
 * q8_0, q8_1 for q4_1 / q5_1 (same pq_a32 layout, s rounded to f16), q8_K for the K-quants. */
enum { PQ_ACT_F32 = 0, PQ_ACT_32 = 1, PQ_ACT_256 = 2, PQ_ACT_32S = 3, PQ_ACT_KINDS = 4 };
int pq_act_kind(int type);
/* Bytes of an activation row of n elements for that kind. */
size_t pq_act_row_size(int kind, int64_t n);

static inline uint16_t pq_rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t pq_rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline float pq_rdf32(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}
static inline void pq_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Scalar activation quantisers (the AVX2 versions give identical bytes). q81: s as ggml's q8_1 (f16). */
void pq_quantize_a32_ref(const float *x, pq_a32 *y, int64_t n, int q81);
void pq_quantize_a256_ref(const float *x, pq_a256 *y, int64_t n);

/* Scalar dot product of one weight row (n elements) with one activation row (float or quantised). */
float pq_dot_ref(int type, const uint8_t *w, const void *xa, int64_t n);

/* The kernels' traits: one row per type (quant_ref.c; the data part, names and sizes, is core's
 * pulse/ggml.h). */
typedef struct {
    int act; /* activation format of the products (PQ_ACT_*) */
    void (*to_float)(const uint8_t *b, float *y, int64_t n); /* scalar dequantiser of a row of n */
    float (*vec_dot)(int type, const uint8_t *w, const void *xa, int64_t n); /* scalar reference dot */
    void (*from_float)(const float *x, uint8_t *dst, int64_t n);             /* reference quantiser */
} pq_traits;
const pq_traits *pq_traits_of(int type); /* NULL: not supported */

#ifdef __AVX2__
#include <immintrin.h>
/* q4_K block blk's 12 packed scale bytes -> 16 bytes: the 8 sub-block scales, then the 8 mins (6 bits each,
 * llama.cpp's utmp unpacking, in vector registers: q = the three 32-bit words at blk + 4) */
static inline __m128i pq_k4_scales(const uint8_t *blk) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(blk + 4)); /* q0 q1 q2 (qs[0..3]) */
    const __m128i a =
        _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2);
    return _mm_or_si128(_mm_and_si128(a, _mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F)),
                        _mm_and_si128(b, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

/* q4_K one-row decode (quant_tile.c's k4_gemv_row1 at VNNI, quant_tile_avx2.c's at AVX2): the bytes ahead of
 * the row asked of the memory each 4 blocks (16 q4_K blocks; past the matrix: harmless). Zen 4, Qwen2.5-1.5B
 * decode, 3 interleaved rounds: 20.6-21.7 tok/s without, 21.7-22.6 with 2304 or 4608 bytes. */
#define PQ_K4_ROW1_AHEAD 2304
static inline void pq_k4_row1_prefetch(const uint8_t *w, int64_t b0) {
    const char *pf = (const char *)(w + (size_t)b0 * 144) + PQ_K4_ROW1_AHEAD;
    for (int l = 0; l < 9; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
}

/* ... and its float tail: blocks b0 .. b0 + nk - 1 of row w, with is / im their integer sums and minimum sums
 * (lane k: block b0 + k), x4 the activations' scales of those blocks, added in llama.cpp's one-row order: per
 * block, acc = fma(isum, dw * dx, acc) and accm = fma(imin, dmin * dx, accm), the pair (acc, accm) in the low
 * lanes of *a, one 2-lane fma per block (the same roundings as the scalar sequence). */
static inline void pq_k4_row1_fma(const uint8_t *w, int64_t b0, int nk, __m128 x4, __m128i is, __m128i im,
                                  __m128 *a) {
    const uint8_t *blk = w + (size_t)b0 * 144;
    /* (d_k, dmin_k) as f16 pairs; past nk the last block again (unused) */
    const int k1 = nk > 1 ? 1 : 0, k2 = nk > 2 ? 2 : k1, k3 = nk > 3 ? 3 : k2;
    const __m256 dm =
        _mm256_cvtph_ps(_mm_setr_epi32((int)pq_rd32(blk), (int)pq_rd32(blk + 144 * k1),
                                       (int)pq_rd32(blk + 144 * k2), (int)pq_rd32(blk + 144 * k3)));
    /* P = (d0 dx0, dmin0 dx0, d1 dx1, ...), V = (is0, im0, is1, im1, ...) */
    const __m256 P = _mm256_mul_ps(dm, _mm256_set_m128(_mm_unpackhi_ps(x4, x4), _mm_unpacklo_ps(x4, x4)));
    const __m128 fi = _mm_cvtepi32_ps(is), fm = _mm_cvtepi32_ps(im);
    const __m256 V = _mm256_set_m128(_mm_unpackhi_ps(fi, fm), _mm_unpacklo_ps(fi, fm));
    const __m128 p01 = _mm256_castps256_ps128(P), p23 = _mm256_extractf128_ps(P, 1);
    const __m128 v01 = _mm256_castps256_ps128(V), v23 = _mm256_extractf128_ps(V, 1);
    __m128 acc = _mm_fmadd_ps(v01, p01, *a);
    if (nk > 1) acc = _mm_fmadd_ps(_mm_movehl_ps(v01, v01), _mm_movehl_ps(p01, p01), acc);
    if (nk > 2) acc = _mm_fmadd_ps(v23, p23, acc);
    if (nk > 3) acc = _mm_fmadd_ps(_mm_movehl_ps(v23, v23), _mm_movehl_ps(p23, p23), acc);
    *a = acc;
}

/* q6_K: 128 elements of a block half (ql: 64 bytes of low nibbles, qh: 32 bytes of 2-bit high parts) -> the
 * unsigned 6-bit values in element order, v[g] = elements 32g .. 32g + 31 (llama.cpp's layout). One unpack
 * for the AVX2 dot, the AVX2 dequantiser and the VNNI tile. */
static inline void pq_q6k_unpack128(const uint8_t *ql, const uint8_t *qh, __m256i v[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)ql),
                  l1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32)),
                  h = _mm256_loadu_si256((const __m256i *)(const void *)qh);
    v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
    v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
}
void pq_quantize_a32_avx2(const float *x, pq_a32 *y, int64_t n, int q81);
void pq_quantize_a256_avx2(const float *x, pq_a256 *y, int64_t n);
/* Weight rows r0..r1-1 of W (row stride wrow bytes, n columns) against N activation rows (stride xa_stride
 * bytes): Y[i * ldy + r]. Each weight block is unpacked once and multiplied into up to 4 activation rows.
 * pq_rows_vnni is the same code built for AVX512-VNNI/VL (quant_vnni.c). Return 0 if the type has no
 * kernel. */
int pq_rows_avx2(int type, const uint8_t *W, size_t wrow, int r0, int r1, const void *xa, size_t xa_stride,
                 int N, int64_t n, float *Y, size_t ldy);
int pq_rows_vnni(int type, const uint8_t *W, size_t wrow, int r0, int r1, const void *xa, size_t xa_stride,
                 int N, int64_t n, float *Y, size_t ldy);
int pq_vnni_supported(void);
/* The tiled 32-element products (quant_tile.c, AVX512-VNNI/VL): type 0 (q4_0 / q5_0 / q8_0 against q8_0
 * activations) and type 1 (q4_1 / q5_1 against q8_1). Activation rows packed in groups of 4, per block: the
 * bytes of the column pairs (0, 1) and (2, 3), each pair's two rows interleaved by 4-byte lanes (lane 2l:
 * column 2p's bytes 4l..4l+3, lane 2l + 1: column 2p + 1's), for type 0 the per-lane byte sums negated in
 * the same order (-s4; type 1 needs none: zero), the scales d and the block sums s (the type-1 m * s
 * term) of the 4 columns. */
typedef struct {
    int8_t qs[2][64];
    int32_t ns4[2][16];
    float d[4];
    float s[4];
} pq_t0_blk;
#define PQ_T0_MIN_N 4 /* batches from this many activation rows take the tiled kernel */
/* 1: a type-0 tile type, 2: a type-1 one (q8_1 activations, PQ_ACT_32S), 0: neither */
int pq_t0_type(int type);
size_t pq_t0_pack_bytes(int N, int64_t nb);
/* xa: N pq_a32 rows (stride xs bytes) of nb blocks -> ceil(N / 4) groups of nb blocks; t1:
 * for the type-1 tiles (no -s4) */
void pq_t0_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, int t1, pq_t0_blk *out);
/* Weight rows r0..r1-1 (type q4_0 / q5_0 / q8_0 / q4_1 / q5_1) against the N packed activation rows from
 * group g0 of pk (packed for that type's activation kind): Y[i * ldy + r]. Returns 0 if it cannot (type,
 * or no scratch memory). */
int pq_t0_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0_blk *pk, int g0, int N,
               int64_t nb, float *Y, size_t ldy);
/* The same types against one activation row (decode; no packing): weight rows r0..r1-1 -> y[r]. Returns 0
 * if the type has no such kernel. */
int pq_t0_gemv(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a32 *x, int64_t nb,
               float *y);
/* Training's order (pulse_qmatmul_fast; quant_tile.c, AVX512-VNNI): the same 32-element types with the
 * activation columns in the vector lanes, each block's integer sum completed in int32 before one fma per
 * block: per (row, column) acc = fma((float)isum_b, dw_b * dx_b, acc) block after block, then for type 1
 * acc = fma(mw_b, s_b, acc) in the same block (pq_dot_fast_ref is the scalar reference, bit for bit).
 * Activation rows packed in groups of 16, per block: the bytes + 128, (element group of 4, column, 4 bytes),
 * the scales d and the sums s of the 16 columns. */
typedef struct {
    uint8_t xu[8][64];
    float d[16];
    float s[16];
} pq_t0f_blk;
#define PQ_T0F_MIN_N 16 /* batches from this many activation rows take the training-order tiles */
size_t pq_t0f_pack_bytes(int N, int64_t nb);
void pq_t0f_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_t0f_blk *out);
/* Weight rows r0..r1-1 against packed activation rows [16 g0, 16 g0 + N): Y[i * ldy + r]. Returns 0 if it
 * cannot (type, no scratch memory). */
int pq_t0f_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0f_blk *pk, int g0, int N,
                int64_t nb, float *Y, size_t ldy);
/* The same order at the AVX2 level (quant_tile_avx2.c; no VNNI): activation rows packed in groups of 8, per
 * block the signed bytes (element group of 4, column, 4 bytes), each column's byte sum, scales and sums. */
typedef struct {
    int8_t x[8][32];
    int32_t sx[8];
    float d[8];
    float s[8];
} pq_t0g_blk;
size_t pq_t0g_pack_bytes(int N, int64_t nb);
void pq_t0g_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_t0g_blk *out);
int pq_t0g_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_t0g_blk *pk, int g0, int N,
                int64_t nb, float *Y, size_t ldy);
/* The scalar reference of that order for one weight row against one activation row (pq_a32, n elements). */
float pq_dot_fast_ref(int type, const uint8_t *w, const void *xa, int64_t n);
/* The q4_K product with the activation columns in the vector lanes (quant_tile.c, AVX512-VNNI/BW): groups
 * of 16 activation rows, per block the bytes + 128 transposed to (element group of 4, column, 4 bytes),
 * per 64-element group the int16 pairs of sub-block sums, and the scales. */
typedef struct {
    uint8_t yu[64][64];
    int32_t bs[4][16];
    float d[16];
} pq_k4_blk;
#define PQ_K4_MIN_N 8 /* batches from this many activation rows take it */
size_t pq_k4_pack_bytes(int N, int64_t nb);
/* xa: N pq_a256 rows (stride xs) of nb blocks -> ceil(N / 16) groups of nb blocks, then one order byte per
 * group (0: every row in llama.cpp's 4-row gemm order, 1: every row PULSE_QROW_ONE, 2: mixed) */
void pq_k4_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k4_blk *out);
/* q4_K weight rows r0..r1-1 against the N activation rows from group g0 (a multiple of 16 rows into xa,
 * which the mixed groups use through pq_rows_vnni): Y[i * ldy + r]. Returns 0 if it cannot. */
int pq_k4_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k4_blk *pk, int G_total, int g0, int N,
               int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy);
/* The q6_K product with the activation columns in the vector lanes (quant_tile.c, AVX512-VNNI): groups of 16
 * activation rows, per block the int16 element pairs (2p, 2p + 1) of each column as one int32 lane, the
 * int16 pairs of 16-element sums (bsums 2l, 2l + 1) and the scales. */
typedef struct {
    int32_t xp[128][16];
    int32_t bp[8][16];
    float d[16];
} pq_k6_blk;
#define PQ_K6_MIN_N 8 /* batches from this many activation rows take it */
size_t pq_k6_pack_bytes(int N, int64_t nb);
/* xa: N pq_a256 rows (stride xs) of nb blocks -> ceil(N / 16) groups of nb blocks, then one order byte per
 * group (0: no row PULSE_QROW_TILED, 1: every row, 2: mixed) */
void pq_k6_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k6_blk *out);
/* q6_K weight rows r0..r1-1 against the N activation rows from group g0 (as pq_k4_rows). */
int pq_k6_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k6_blk *pk, int G_total, int g0, int N,
               int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy);
/* q4_K (rows PULSE_QROW_ONE) and q6_K (rows not PULSE_QROW_TILED) against one activation row (decode), 4
 * weight rows at a time: weight rows r0..r1-1 -> y[r]. Returns 0 if the type or the row's order has no such
 * kernel. */
int pq_k_gemv(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
              float *y);
/* q4_K (rows PULSE_QROW_ONE) against one activation row, one weight row at a time in address order (where the
 * 4-row kernels are off: pulse_options.qgemv); the same bits. Returns 0 for other types and orders. */
int pq_k_gemv_row1(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                   float *y);
/* The same at the AVX2 level (quant_tile_avx2.c), where the batched AVX2 kernels are on. */
int pq_k_gemv_row1_avx2(int type, const uint8_t *W, size_t wrow, int r0, int r1, const pq_a256 *x, int64_t nb,
                        float *y);
/* The batched products at the AVX2 level (quant_tile_avx2.c: AVX2 + FMA + F16C only), used where the VNNI
 * tiles above are not. Type 0 / type 1 (q4_0 / q5_0 / q8_0 / q4_1 / q5_1): weight rows r0..r1-1 against N
 * activation rows of xa (pq_a32 rows, stride xs bytes, no packing) in 4 x 2 register tiles: Y[i * ldy + r].
 * Returns 0 if it cannot (type, or no scratch memory). */
#define PQ_T0A_MIN_N 2 /* batches from this many activation rows take it */
int pq_t0a_type(int type);
int pq_t0a_rows(int type, const uint8_t *W, size_t wrow, int r0, int r1, const uint8_t *xa, size_t xs, int N,
                int64_t nb, float *Y, size_t ldy);
/* q4_K with 8 activation rows in the vector lanes: per block and 4 elements the 8 rows' 4 signed bytes side
 * by side (32 bytes), per 64-element group the int16 pairs of sub-block sums (bsums 4j + 4j+1, 4j+2 + 4j+3)
 * and the scales. */
typedef struct {
    int8_t xq[64][32];
    int32_t bs[4][8];
    float d[8];
} pq_k4a_blk;
#define PQ_K4A_MIN_N 8 /* batches from this many activation rows take it */
size_t pq_k4a_pack_bytes(int N, int64_t nb);
/* xa: N pq_a256 rows (stride xs) of nb blocks -> ceil(N / 8) groups of nb blocks, then per group a lane mask
 * (8 int32, -1 for the rows PULSE_QROW_ONE), then one order byte per group (0: every row in llama.cpp's 4-row
 * gemm order, 1: every row PULSE_QROW_ONE, 2: mixed) */
void pq_k4a_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k4a_blk *out);
/* q4_K weight rows r0..r1-1 against the N activation rows from group g0 (a multiple of 8 rows into xa; xa and
 * xs are unused, kept for the VNNI kernel's signature): Y[i * ldy + r]. Returns 0 if it cannot. */
int pq_k4a_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k4a_blk *pk, int G_total, int g0,
                int N, int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy);
/* q6_K with 8 activation rows in the vector lanes (rows in llama.cpp's tiled order, PULSE_QROW_TILED): per
 * block the bytes as pq_k4a_blk, the int16 pairs (bsums 2l, 2l + 1) and the scales. */
typedef struct {
    int8_t xq[64][32];
    int32_t bp[8][8];
    float d[8];
} pq_k6a_blk;
#define PQ_K6A_MIN_N 8 /* batches from this many activation rows take it */
size_t pq_k6a_pack_bytes(int N, int64_t nb);
/* xa: N pq_a256 rows -> ceil(N / 8) groups of nb blocks, then one order byte per group (0: no row
 * PULSE_QROW_TILED, 1: every row, 2: mixed) */
void pq_k6a_pack(const uint8_t *xa, size_t xs, int N, int64_t nb, pq_k6a_blk *out);
/* q6_K weight rows r0..r1-1 against the N activation rows from group g0 (as pq_k4a_rows; groups not all
 * tiled go through pq_rows_avx2). */
int pq_k6a_rows(const uint8_t *W, size_t wrow, int r0, int r1, const pq_k6a_blk *pk, int G_total, int g0,
                int N, int64_t nb, const uint8_t *xa, size_t xs, float *Y, size_t ldy);
/* Returns 0 if the type has no AVX2 dequantiser. */
int pq_dequantize_avx2(int type, const void *src, float *dst, int64_t n);
#endif

#endif
