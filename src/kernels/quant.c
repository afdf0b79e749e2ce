/* kernels/quant.c — owns fp16/bf16 conversion, the activation quantisers and the dispatch of
 * pulse_dequantize_row / pulse_qmatvec / pulse_qmatmul (OpenMP over weight rows, AVX2 kernels from
 * quant_avx2.c when compiled in; batches through quant_tile.c's VNNI tiles or quant_tile_avx2.c's AVX2 ones);
 * the scalar reference of each type and the traits table are quant_ref.c's.
 */
#include "quant_internal.h"

#include "core/simd.h"
#include "pulse/core.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

_Static_assert((int)PQ_ACT_KINDS <= (int)PK_SCR_T0_PACK, "the activation kinds own pk_scratch slots 0..3");

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the scalar reference rounds each operation, like the AVX2 path */
#endif

int pulse_ggml_type_supported(int type) {
    return pq_traits_of(type) != NULL;
}

#ifdef __AVX2__
static _Atomic int g_vnni =
    -1; /* -1: not decided yet (atomic: the first products may run on several threads) */

/* the batched VNNI kernels (quant_tile.c): with VNNI unless pulse_options.qtile is 0 (comparisons) */
static _Atomic int g_tile;
/* the batched AVX2 kernels (quant_tile_avx2.c): without VNNI (an AVX2-only CPU, --isa avx2, or
 * pulse_quant_use_vnni(0)) unless pulse_options.qtile is 0 */
static _Atomic int g_tile2;
/* one activation row (decode) of the K-quants through quant_tile.c's 4-weight-rows kernels (pq_k_gemv), or
 * the per-row VNNI kernels (the 32-element formats: g_gemv1_t0 below). Both give the same bits; which is
 * faster depends on the CPU's memory side: the 4 rows read side by side within one 4 KB page defeat AMD Zen
 * 4's stream prefetcher. Measured out of cache on an AMD EPYC family 25 model 17 (Zen 4), 2 threads, GB/s of
 * weights read, 4-row vs per-row: q8_0 151936 x 896 (Qwen2.5-0.5B's head) 10.7 vs 24.7, q5_0 4864 x 896 6.9
 * vs 11.6, q6_K 896 x 4864 15.5 vs 17.7 (software prefetch 4-16 rows ahead narrowed but did not close
 * it: 16.8 vs 24.2 on the head); Qwen2.5-0.5B decode 21.9 vs 53.3 tok/s. On the Intel Xeon family 6 model 207
 * the 4-row kernels were the faster (q4_K 9.2 -> 16.6 GB/s, q6_K 10.2 -> 22.6), so they stay on everywhere
 * but on AMD CPUs (pulse_options.qgemv overrides).
 */
static _Atomic int g_gemv1;
/* The 32-element formats' 4-row kernel (pq_t0_gemv) on every CPU: since it prefetches the next 4 rows as one
 * address-ordered stream it is the faster on Zen 4 too (Qwen2.5-0.5B decode 76 vs 58-60 tok/s per row);
 * pulse_options.qgemv 0 / 1 still forces per row / 4 rows for every type. */
static _Atomic int g_gemv1_t0;
/* Batches of q6_K in the batch orders (prefill, training) through the AVX2 tiles (pq_k6a_rows) on an
 * AVX512-VNNI CPU: the same bits as the VNNI lanes kernel (pq_k6_rows), whose int16 pair products (vpdpwssd,
 * 32 products per 512-bit instruction) run at one instruction per cycle on AMD Zen 4, where the AVX2 tile's
 * vpmaddubsw (32 u8 x i8 products per 256-bit instruction) issues two. Measured on an AMD EPYC family 25
 * model 17, bench_quant one thread, 32-256 rows of Qwen2.5-1.5B's shapes: 110-120 GFLOP/s VNNI vs 170-183
 * AVX2. Rows in the one-row orders (N sequences decoding) keep the VNNI kernel (122 vs 92). On Intel too
 * (Xeon family 6 model 207, bench_quant --type q6_K --n 64, 2 threads, the same quiet window twice): VNNI
 * 136-147 vs AVX2 tiles 143-152 GFLOP/s on 1536 x 8960 and 8960 x 1536, 118 vs 136 on 256 x 1536, so every
 * VNNI CPU takes the tiles for batches. */
static _Atomic int g_k6a_vnni;

int pulse_quant_use_vnni(int enable) {
    if (enable >= 0 || g_vnni < 0) {
        const int v = enable != 0 && pq_vnni_supported();
        g_tile = v && pulse_get_options()->qtile;
        g_tile2 = !v && pulse_get_options()->qtile;
        const int gv = pulse_get_options()->qgemv;
        g_gemv1 = g_tile && (gv >= 0 ? gv : strcmp(pulse_cpu_get()->vendor, "AuthenticAMD") != 0);
        g_gemv1_t0 = g_tile && (gv >= 0 ? gv : 1);
        g_k6a_vnni = g_tile; /* every vendor (above) */
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
    return pc_simd_v3; /* not under pulse_cpu_limit(PULSE_ISA_SCALAR) */
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

void pulse_dequantize_row(int type, const void *src, float *dst, int64_t n) {
#ifdef __AVX2__
    if (pc_simd_v3 && pq_dequantize_avx2(type, src, dst, n)) return;
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
    const pq_traits *t = pq_traits_of(type);
    return t ? t->act : PQ_ACT_F32;
}

size_t pq_act_row_size(int kind, int64_t n) {
    if (kind == PQ_ACT_32 || kind == PQ_ACT_32S) return (size_t)(n / PQ_QK) * sizeof(pq_a32);
    if (kind == PQ_ACT_256) return (size_t)(n / PQ_QKK) * sizeof(pq_a256);
    return (size_t)n * sizeof(float);
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
        /* rows are independent: over the threads for a batch (the same bytes as one thread) */
#pragma omp parallel for schedule(static) if ((long)N * cols >= 262144 && !omp_in_parallel())
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
/* The quantised activations (q8_0 format for type 0, q8_1 for type 1) packed for the tiled 32-element
 * kernels, or NULL where they do not apply (no VNNI, small batch, other type, the reference path). */
static const pq_t0_blk *t0_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    const int kind = pq_t0_type(type);
    if (use_ref || !g_tile || N < PQ_T0_MIN_N || !kind) return NULL;
    pq_t0_blk *pk =
        pk_scratch(kind == 2 ? PK_SCR_T1_PACK : PK_SCR_T0_PACK, pq_t0_pack_bytes(N, cols / PQ_QK));
    if (pk) pq_t0_pack(xa, stride, N, cols / PQ_QK, kind == 2, pk);
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

/* whether any of the N q8_K activation rows is in the batch orders (not vec_dot's one-row order) */
static int any_tiled(const uint8_t *xa, size_t stride, int N) {
    for (int i = 0; i < N; i++)
        if (((const pq_a256 *)(const void *)(xa + (size_t)i * stride))->order & PULSE_QROW_TILED) return 1;
    return 0;
}

/* The q8_K activations packed for the q6_K lanes kernel, or NULL where it does not apply. */
static const pq_k6_blk *k6_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    if (use_ref || !g_tile || N < PQ_K6_MIN_N || type != PULSE_GGML_Q6_K) return NULL;
    if (g_k6a_vnni && any_tiled(xa, stride, N)) return NULL; /* k6a_pack's AVX2 tiles take it */
    pq_k6_blk *pk = pk_scratch(PK_SCR_K6_PACK, pq_k6_pack_bytes(N, cols / PQ_QKK));
    if (pk) pq_k6_pack(xa, stride, N, cols / PQ_QKK, pk);
    return pk;
}

/* The q8_K activations packed for the AVX2 q4_K tiles, or NULL where they do not apply. */
static const pq_k4a_blk *k4a_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    if (use_ref || !g_tile2 || N < PQ_K4A_MIN_N || type != PULSE_GGML_Q4_K) return NULL;
    pq_k4a_blk *pk = pk_scratch(PK_SCR_K4_PACK, pq_k4a_pack_bytes(N, cols / PQ_QKK));
    if (pk) pq_k4a_pack(xa, stride, N, cols / PQ_QKK, pk);
    return pk;
}

/* The q8_K activations packed for the AVX2 q6_K tiles, or NULL where they do not apply. */
static const pq_k6a_blk *k6a_pack(int type, const uint8_t *xa, size_t stride, int N, int cols, int use_ref) {
    if (use_ref || !(g_tile2 || g_k6a_vnni) || N < PQ_K6A_MIN_N || type != PULSE_GGML_Q6_K) return NULL;
    /* rows all in vec_dot's order (N sequences decoding a token each): the per-row / VNNI lanes kernels */
    if (!any_tiled(xa, stride, N)) return NULL;
    pq_k6a_blk *pk = pk_scratch(PK_SCR_K6_PACK, pq_k6a_pack_bytes(N, cols / PQ_QKK));
    if (pk) pq_k6a_pack(xa, stride, N, cols / PQ_QKK, pk);
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

static int qmm_fast(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols);

static void qmatmul_impl(float *Y, const void *W, int type, const float *X, int N, int rows, int cols,
                         int use_ref) {
    if (!valid_shape(type, rows, cols) || N < 0) {
        fill_nan(Y, (size_t)(N > 0 ? N : 0) * (size_t)(rows > 0 ? rows : 0));
        return;
    }
    if (N == 0 || rows == 0) return;
    if (!use_ref &&
        pulse_get_options()->qfast) { /* training's order for inference too (pulse_options.qfast) */
        const pulse_qmm_job jb = {W, type, rows, Y};
        if (qmm_fast(&jb, 1, X, N, cols)) return;
    }
    use_ref |= !pc_simd_v3; /* pulse_cpu_limit(PULSE_ISA_SCALAR): the portable kernels */
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
    const pq_k6_blk *pk6 = k6_pack(type, xa, stride, N, cols, use_ref);
    const pq_k4a_blk *pk4a = k4a_pack(type, xa, stride, N, cols, use_ref);
    const pq_k6a_blk *pk6a = k6a_pack(type, xa, stride, N, cols, use_ref);
    const int t0a = !use_ref && g_tile2 && N >= PQ_T0A_MIN_N && pq_t0a_type(type);
    const int gemv1 =
        N == 1 && !use_ref && g_gemv1_t0 && pq_t0_type(type); /* one row: 4 weight rows at a time */
    const int gemvk = N == 1 && !use_ref && g_gemv1 && pq_act_kind(type) == PQ_ACT_256;
    const int gemvk1 = N == 1 && !use_ref && g_tile && !g_gemv1 && pq_act_kind(type) == PQ_ACT_256;
    const int gemvk1a = N == 1 && !use_ref && g_tile2 && pq_act_kind(type) == PQ_ACT_256;
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
        if (pk6 && pq_k6_rows(wb, wrow, r0, r1, pk6, (N + 15) / 16, n0 / 16, n1 - n0, cols / PQ_QKK,
                              xa + (size_t)n0 * stride, stride, Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (pk && pq_t0_rows(type, wb, wrow, r0, r1, pk, n0 / 4, n1 - n0, cols / PQ_QK, Y + (size_t)n0 * rows,
                             (size_t)rows))
            continue;
        if (pk4a && pq_k4a_rows(wb, wrow, r0, r1, pk4a, (N + 7) / 8, n0 / 8, n1 - n0, cols / PQ_QKK,
                                xa + (size_t)n0 * stride, stride, Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (pk6a && pq_k6a_rows(wb, wrow, r0, r1, pk6a, (N + 7) / 8, n0 / 8, n1 - n0, cols / PQ_QKK,
                                xa + (size_t)n0 * stride, stride, Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (t0a && pq_t0a_rows(type, wb, wrow, r0, r1, xa + (size_t)n0 * stride, stride, n1 - n0,
                               cols / PQ_QK, Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (gemv1 && pq_t0_gemv(type, wb, wrow, r0, r1, (const pq_a32 *)(const void *)xa, cols / PQ_QK, Y))
            continue;
        if (gemvk && pq_k_gemv(type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa, cols / PQ_QKK, Y))
            continue;
        if (gemvk1 &&
            pq_k_gemv_row1(type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa, cols / PQ_QKK, Y))
            continue;
        if (gemvk1a &&
            pq_k_gemv_row1_avx2(type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa, cols / PQ_QKK, Y))
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
    if (pulse_get_options()->qfast && qmm_fast(jobs, n_jobs, X, N, cols)) return; /* pulse_options.qfast */
    const int use_ref = !pc_simd_v3; /* pulse_cpu_limit(PULSE_ISA_SCALAR): the portable kernels */
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
            xa[kind] = quantize_acts(jb->type, X, N, cols, &stride[kind], use_ref);
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
    const pq_t0_blk *pk[3] = {NULL, NULL, NULL}; /* one packing serves every type-0 (type-1) job */
    for (int j = 0; j < n_jobs; j++) {
        const int t0 = ok[j] ? pq_t0_type(jobs[j].type) : 0, kind = pq_act_kind(jobs[j].type);
        if (t0 && !pk[t0]) pk[t0] = t0_pack(jobs[j].type, xa[kind], stride[kind], N, cols, use_ref);
    }
    const pq_k4_blk *pk4 = NULL;
    for (int j = 0; j < n_jobs && !pk4; j++)
        if (ok[j] && jobs[j].type == PULSE_GGML_Q4_K)
            pk4 = k4_pack(jobs[j].type, xa[PQ_ACT_256], stride[PQ_ACT_256], N, cols, use_ref);
    const pq_k6_blk *pk6 = NULL;
    for (int j = 0; j < n_jobs && !pk6; j++)
        if (ok[j] && jobs[j].type == PULSE_GGML_Q6_K)
            pk6 = k6_pack(jobs[j].type, xa[PQ_ACT_256], stride[PQ_ACT_256], N, cols, use_ref);
    const pq_k4a_blk *pk4a = NULL;
    for (int j = 0; j < n_jobs && !pk4a; j++)
        if (ok[j] && jobs[j].type == PULSE_GGML_Q4_K)
            pk4a = k4a_pack(jobs[j].type, xa[PQ_ACT_256], stride[PQ_ACT_256], N, cols, use_ref);
    const pq_k6a_blk *pk6a = NULL;
    for (int j = 0; j < n_jobs && !pk6a; j++)
        if (ok[j] && jobs[j].type == PULSE_GGML_Q6_K)
            pk6a = k6a_pack(jobs[j].type, xa[PQ_ACT_256], stride[PQ_ACT_256], N, cols, use_ref);
    const int t0a = !use_ref && g_tile2 && N >= PQ_T0A_MIN_N;
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
        if (pk6 && jb->type == PULSE_GGML_Q6_K &&
            pq_k6_rows(wb, wrow, r0, r1, pk6, (N + 15) / 16, n0 / 16, n1 - n0, cols / PQ_QKK,
                       xa[kind] + (size_t)n0 * stride[kind], stride[kind], jb->Y + (size_t)n0 * rows,
                       (size_t)rows))
            continue;
        if (pk[pq_t0_type(jb->type)] &&
            pq_t0_rows(jb->type, wb, wrow, r0, r1, pk[pq_t0_type(jb->type)], n0 / 4, n1 - n0, cols / PQ_QK,
                       jb->Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (pk4a && jb->type == PULSE_GGML_Q4_K &&
            pq_k4a_rows(wb, wrow, r0, r1, pk4a, (N + 7) / 8, n0 / 8, n1 - n0, cols / PQ_QKK,
                        xa[kind] + (size_t)n0 * stride[kind], stride[kind], jb->Y + (size_t)n0 * rows,
                        (size_t)rows))
            continue;
        if (pk6a && jb->type == PULSE_GGML_Q6_K &&
            pq_k6a_rows(wb, wrow, r0, r1, pk6a, (N + 7) / 8, n0 / 8, n1 - n0, cols / PQ_QKK,
                        xa[kind] + (size_t)n0 * stride[kind], stride[kind], jb->Y + (size_t)n0 * rows,
                        (size_t)rows))
            continue;
        if (t0a && pq_t0a_type(jb->type) &&
            pq_t0a_rows(jb->type, wb, wrow, r0, r1, xa[kind] + (size_t)n0 * stride[kind], stride[kind],
                        n1 - n0, cols / PQ_QK, jb->Y + (size_t)n0 * rows, (size_t)rows))
            continue;
        if (N == 1 && g_gemv1_t0 && !use_ref && pq_t0_type(jb->type) &&
            pq_t0_gemv(jb->type, wb, wrow, r0, r1, (const pq_a32 *)(const void *)xa[kind], cols / PQ_QK,
                       jb->Y))
            continue;
        if (N == 1 && g_gemv1 && !use_ref && kind == PQ_ACT_256 &&
            pq_k_gemv(jb->type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa[kind], cols / PQ_QKK,
                      jb->Y))
            continue;
        if (N == 1 && g_tile && !g_gemv1 && !use_ref && kind == PQ_ACT_256 &&
            pq_k_gemv_row1(jb->type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa[kind], cols / PQ_QKK,
                           jb->Y))
            continue;
        if (N == 1 && g_tile2 && !use_ref && kind == PQ_ACT_256 &&
            pq_k_gemv_row1_avx2(jb->type, wb, wrow, r0, r1, (const pq_a256 *)(const void *)xa[kind],
                                cols / PQ_QKK, jb->Y))
            continue;
        if (!use_ref && rows_kernel(jb->type, wb, wrow, r0, r1, xa[kind] + (size_t)n0 * stride[kind],
                                    stride[kind], n1 - n0, cols, jb->Y + (size_t)n0 * rows, (size_t)rows))
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
/* Training's order (pq_t0f_rows) for type-0 / type-1 jobs that read one activation format, on AVX512-VNNI;
 * returns 0 where it does not apply or cannot run (no scratch memory), and the caller then computes every job
 * in llama.cpp's order (the products SET their outputs, so a partial run leaves nothing behind). */
static int qmm_fast(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols) {
#ifdef __AVX2__
    if (g_vnni < 0) pulse_quant_use_vnni(1);
    const int vnni = g_vnni && g_tile; /* else the AVX2 level's tiles (pq_t0g_rows) */
    if (!(vnni || g_tile2) || !pc_simd_v3 || N < PQ_T0F_MIN_N || cols <= 0 || cols % PQ_QK) return 0;
    const int kind = pq_act_kind(jobs[0].type);
    double work = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (!pq_t0_type(jobs[j].type) || pq_act_kind(jobs[j].type) != kind || jobs[j].rows < 0) return 0;
        work += (double)jobs[j].rows * cols * N;
    }
    size_t stride;
    const uint8_t *xa = quantize_acts(jobs[0].type, X, N, cols, &stride, 0);
    const int64_t nb = cols / PQ_QK;
    void *pk =
        xa ? pk_scratch(PK_SCR_T0F_PACK, vnni ? pq_t0f_pack_bytes(N, nb) : pq_t0g_pack_bytes(N, nb)) : NULL;
    if (!pk) return 0;
    if (vnni)
        pq_t0f_pack(xa, stride, N, nb, pk);
    else
        pq_t0g_pack(xa, stride, N, nb, pk);
    enum { NF = 256 }; /* activation columns per item: each unpacked weight row serves 16 groups */
    const int n_tiles = (N + NF - 1) / NF;
    long first[PULSE_QMM_MAX_JOBS + 1], items = 0;
    for (int j = 0; j < n_jobs; j++) {
        first[j] = items;
        items += (long)((jobs[j].rows + ROW_CHUNK - 1) / ROW_CHUNK) * n_tiles;
    }
    first[n_jobs] = items;
    const int grab = grab_size(items);
    int fail = 0;
#pragma omp parallel for schedule(dynamic, grab)                                                             \
    reduction(|                                                                                              \
              : fail) if (work > 200000.0 && !omp_in_parallel())
    for (long it = 0; it < items; it++) {
        int j = 0;
        while (it >= first[j + 1]) j++;
        const pulse_qmm_job *jb = &jobs[j];
        const int rows = jb->rows, n_chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
        const long local = it - first[j];
        const int tile = (int)(local / n_chunks), chunk = (int)(local % n_chunks);
        const int n0 = tile * NF, n1 = n0 + NF < N ? n0 + NF : N;
        const int r0 = chunk * ROW_CHUNK, r1 = r0 + ROW_CHUNK < rows ? r0 + ROW_CHUNK : rows;
        const uint8_t *W = (const uint8_t *)jb->W;
        const size_t wrow = pulse_ggml_row_size(jb->type, cols);
        float *Y = jb->Y + (size_t)n0 * rows;
        if (vnni ? !pq_t0f_rows(jb->type, W, wrow, r0, r1, pk, n0 / 16, n1 - n0, nb, Y, (size_t)rows)
                 : !pq_t0g_rows(jb->type, W, wrow, r0, r1, pk, n0 / 8, n1 - n0, nb, Y, (size_t)rows))
            fail = 1;
    }
    return !fail;
#else
    (void)jobs, (void)n_jobs, (void)X, (void)N, (void)cols;
    return 0;
#endif
}

void pulse_qmatmul_multi_fast(const pulse_qmm_job *jobs, int n_jobs, const float *X, int N, int cols) {
    if (n_jobs <= 0 || N <= 0) return;
    if (n_jobs > PULSE_QMM_MAX_JOBS) {
        pulse_qmatmul_multi_fast(jobs, PULSE_QMM_MAX_JOBS, X, N, cols);
        pulse_qmatmul_multi_fast(jobs + PULSE_QMM_MAX_JOBS, n_jobs - PULSE_QMM_MAX_JOBS, X, N, cols);
        return;
    }
    if (!qmm_fast(jobs, n_jobs, X, N, cols)) pulse_qmatmul_multi(jobs, n_jobs, X, N, cols);
}

void pulse_qmatmul_fast(float *Y, const void *W, int type, const float *X, int N, int rows, int cols) {
    const pulse_qmm_job jb = {W, type, rows, Y};
    if (N <= 0 || !valid_shape(type, rows, cols) || !qmm_fast(&jb, 1, X, N, cols))
        qmatmul_impl(Y, W, type, X, N, rows, cols, 0);
}

void pulse_qmatmul(float *Y, const void *W, int type, const float *X, int N, int rows, int cols) {
    qmatmul_impl(Y, W, type, X, N, rows, cols, 0);
}
void pulse_qmatmul_ref(float *Y, const void *W, int type, const float *X, int N, int rows, int cols) {
    qmatmul_impl(Y, W, type, X, N, rows, cols, 1);
}
