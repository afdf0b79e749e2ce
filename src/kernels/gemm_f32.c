/* kernels/gemm_f32.c — owns the fp32 linear layer on a packed weight with fused epilogues
 * (pulse/kernels.h, pulse_linear_fused): out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (+ residual),
 * then GELU and / or LayerNorm of each row while its block is still in cache. Inference runs the whole
 * encoder block by block on one thread each (encoder/model.c); there OpenBLAS would pack the weight again for
 * every block's product (measured: its sgemm_incopy took 11% of fp32 inference), while here each weight is
 * packed once, when the model is first used.
 *
 * Kernel (AVX-512F, chosen at run time): the weight is stored as panels of NR = 48 output columns,
 * [k][column] (zero past OC); rows of inp are read where they are (no packing: each FMA row broadcasts one
 * float), MR = 8 rows x NR columns per micro-tile (24 zmm accumulators; per k: 3 loads of the panel, 8
 * broadcasts, 24 FMA). Each call walks blocks of up to 256 rows: every panel over the block's micro-rows (the
 * panel stays in L1/L2 for the block), then the block's LayerNorm. The scalar reference
 * (pulse_linear_fused_ref) is what the tests compare with; without AVX-512, calls run the plain kernels
 * (OpenBLAS product, then passes). Measured single-threaded on the encoder's shapes (256 rows, packed weight,
 * Xeon family 6 model 207): 157-168 GFLOP/s against OpenBLAS SkylakeX's 141-150 (174 peak); with the weight
 * packed per call on 2048 rows it is not faster than OpenBLAS (130-160 vs 155-161), so training keeps
 * OpenBLAS. */
#include "pulse/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/internal.h"
#include "pulse/core.h"

enum { MR = 8, NR = 48 };

struct pulse_f32_weight {
    float *bp; /* (OC / NR rounded up) panels of (C, NR) */
    int OC, C;
};

/* ---- scalar reference and shared pieces ---- */

/* LayerNorm of one row, as pulse_layernorm_forward (the same sums in double) */
static void ln_row(float *o, float *mean, float *rstd, const float *x, const float *w, const float *b, int C,
                   float eps) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) s += x[c];
    const float m = (float)(s / C);
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) {
        const float d = x[c] - m;
        v += (double)(d * d);
    }
    const float r = (float)(1.0 / sqrt(v / C + (double)eps));
    if (w && b) {
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * r * w[c] + b[c];
    } else {
        for (int c = 0; c < C; c++) {
            float y = (x[c] - m) * r;
            y = w ? y * w[c] : y;
            o[c] = b ? y + b[c] : y;
        }
    }
    if (mean) *mean = m;
    if (rstd) *rstd = r;
}

/* where row n, column j of y goes: ep->out, or segment j / seg of ep->segs */
static float *y_at(const pulse_linear_epilogue *ep, int OC, int n, int j) {
    if (ep->segs) {
        const int seg = OC / ep->nseg;
        return ep->segs[j / seg] + (size_t)n * seg + j % seg;
    }
    return ep->out ? ep->out + (size_t)n * OC + j : NULL;
}

void pulse_linear_fused_ref(const float *inp, const float *weight, int N, int C, int OC,
                            const pulse_linear_epilogue *ep) {
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < OC; j++) {
            double s = 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * weight[(size_t)j * C + c];
            float y = (float)s;
            if (ep->bias) y += ep->bias[j];
            if (ep->res) y += ep->res[(size_t)n * OC + j];
            float *yp = y_at(ep, OC, n, j);
            if (yp) *yp = y;
            if (ep->gelu) ep->gelu[(size_t)n * OC + j] = 0.5f * y * (1.0f + erff(y * PK_SQRT1_2));
        }
        if (ep->ln_out)
            ln_row(ep->ln_out + (size_t)n * OC, ep->ln_mean ? ep->ln_mean + n : NULL,
                   ep->ln_rstd ? ep->ln_rstd + n : NULL, ep->out + (size_t)n * OC, ep->ln_w, ep->ln_b, OC,
                   ep->ln_eps);
    }
}

/* without the kernel: the plain product into out (or each segment), then the passes */
static void fused_fallback(const float *inp, const float *weight, int N, int C, int OC,
                           const pulse_linear_epilogue *ep) {
    const size_t n = (size_t)N * OC;
    if (ep->segs) {
        const int seg = OC / ep->nseg;
        for (int i = 0; i < ep->nseg; i++)
            pulse_matmul_forward(ep->segs[i], inp, weight + (size_t)i * seg * C,
                                 ep->bias ? ep->bias + (size_t)i * seg : NULL, N, C, seg);
        return; /* segments take no residual, GELU or LayerNorm (pulse_linear_fused checks) */
    }
    float *y = ep->out ? ep->out : ep->gelu; /* GELU only: y in the GELU buffer, then in place */
    pulse_matmul_forward(y, inp, weight, ep->bias, N, C, OC);
    if (ep->res) pulse_residual_forward(y, y, ep->res, n);
    if (ep->gelu) pulse_gelu_forward(ep->gelu, y, n);
    if (ep->ln_out)
        pulse_layernorm_forward(ep->ln_out, ep->ln_mean, ep->ln_rstd, y, ep->ln_w, ep->ln_b, N, OC,
                                ep->ln_eps);
}

/* ---- AVX-512 kernel ---- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PK_HAVE_F32_KERNEL 1
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

#include "kernels/avx512_math.h"

/* GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) with pk_erff's erf (internal.h) lane by lane: the series below 1,
 * Abramowitz & Stegun 7.1.26 above (the numbers of pulse_gelu_forward) */
static inline __m512 gelu16f(__m512 xv) {
    const __m512 x = _mm512_mul_ps(xv, _mm512_set1_ps(PK_SQRT1_2));
    const __m512 ax = _mm512_abs_ps(x), x2 = _mm512_mul_ps(x, x);
    __m512 q = _mm512_set1_ps(-1.2290555302e-09f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.4807192816e-08f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.6365844691e-07f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.6462114366e-06f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.4925650358e-05f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.2055332982e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-8.5483270235e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(5.2239776254e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.6866170645e-02f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.1283791671e-01f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-3.7612638903e-01f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.1283791671e+00f));
    const __m512 small = _mm512_mul_ps(x, q);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                   _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
    __m512 y = _mm512_set1_ps(1.061405429f);
    y = _mm512_fmsub_ps(y, t, _mm512_set1_ps(1.453152027f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(1.421413741f));
    y = _mm512_fmsub_ps(y, t, _mm512_set1_ps(0.284496736f));
    y = _mm512_fmadd_ps(y, t, _mm512_set1_ps(0.254829592f));
    y = _mm512_fnmadd_ps(_mm512_mul_ps(y, t), pk_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x2)),
                         _mm512_set1_ps(1.0f));
    /* copysign(y, x) */
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    const __m512 big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
    const __mmask16 lt1 = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
    const __m512 erf = _mm512_mask_blend_ps(lt1, big, small);
    return _mm512_mul_ps(_mm512_mul_ps(xv, _mm512_set1_ps(0.5f)), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

/* where the tile's results go: y = alpha * sum + beta * c (beta 0: c not read) + bias + res, stored in c
 * (ldc) or, split by columns, in segs (seg columns each); GELU(y) in g (ldc); then (f32_block) the rows'
 * LayerNorm of c into ln_out (ldc). The linear layer: alpha 1, beta 0, ldc OC. */
typedef struct {
    float *c;
    int ldc;
    float *const *segs;
    int seg;
    const float *bias, *res;
    float *g;
    float *ln_out, *ln_mean, *ln_rstd;
    const float *ln_w, *ln_b;
    float ln_eps;
} f32_out;

// clang-format off
/* one k step of the micro-tile: the panel's 48 columns at row k, 8 broadcasts of inp (row r at a_r) */
#define F32_ROW(r)                                                                                            \
    {                                                                                                         \
        const __m512 av = _mm512_set1_ps(a##r[k]);                                                            \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                           \
        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                                                           \
        c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2);                                                           \
    }
#define F32_STEP(kk)                                                                                          \
    {                                                                                                         \
        const int k = (kk);                                                                                   \
        const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16),                  \
                     b2 = _mm512_load_ps(b + k * NR + 32);                                                    \
        F32_ROW(0) F32_ROW(1) F32_ROW(2) F32_ROW(3) F32_ROW(4) F32_ROW(5) F32_ROW(6) F32_ROW(7)               \
    }
#define F32_A(r) const float *a##r = A + (size_t)(m0 + ((r) < mr ? (r) : mr - 1)) * K;
#define F32_ZERO(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0;
#define F32_KEEP(r) acc[r][0] = c##r##0; acc[r][1] = c##r##1; acc[r][2] = c##r##2;
#define F32_ADV(d) a0 += (d), a1 += (d), a2 += (d), a3 += (d), a4 += (d), a5 += (d), a6 += (d), a7 += (d);

/* micro-tile: rows [m0, m0 + mr) (mr <= MR) of A (M, K) times panel b (K, NR) = columns [j0, j0 + nr) of the
 * result, stored through o. Rows past mr repeat the last row (computed, never stored). */
static void f32_tile(const float *A, int K, const float *b, int m0, int mr, int j0, int nr, const f32_out *o) {
    F32_A(0) F32_A(1) F32_A(2) F32_A(3) F32_A(4) F32_A(5) F32_A(6) F32_A(7)
    F32_ZERO(0) F32_ZERO(1) F32_ZERO(2) F32_ZERO(3) F32_ZERO(4) F32_ZERO(5) F32_ZERO(6) F32_ZERO(7)
    int kk = 0;
    for (; kk + 4 <= K; kk += 4) {
        F32_STEP(0) F32_STEP(1) F32_STEP(2) F32_STEP(3)
        F32_ADV(4)
        b += 4 * NR;
    }
    for (; kk < K; kk++) {
        F32_STEP(0)
        F32_ADV(1)
        b += NR;
    }
    __m512 acc[MR][3];
    F32_KEEP(0) F32_KEEP(1) F32_KEEP(2) F32_KEEP(3) F32_KEEP(4) F32_KEEP(5) F32_KEEP(6) F32_KEEP(7)
        // clang-format on
        for (int r = 0; r < mr; r++) {
        const size_t off = (size_t)(m0 + r) * o->ldc + j0;
        float *y = o->c ? o->c + off : NULL;
        if (o->segs) y = o->segs[j0 / o->seg] + (size_t)(m0 + r) * o->seg + j0 % o->seg;
        for (int q = 0; q < 3; q++) {
            const int cnt = nr - 16 * q;
            if (cnt <= 0) break;
            const __mmask16 m = cnt >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cnt) - 1u);
            __m512 v = acc[r][q];
            if (o->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, o->bias + j0 + 16 * q));
            if (o->res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, o->res + off + 16 * q));
            if (y) _mm512_mask_storeu_ps(y + 16 * q, m, v);
            if (o->g) _mm512_mask_storeu_ps(o->g + off + 16 * q, m, gelu16f(v));
        }
    }
}

/* rows [m0, m0 + mc) of the product A (M, K) @ packed B (K, N): every panel over the block's micro-rows, then
 * their LayerNorm */
static void f32_block(const float *A, const float *bp, int m0, int mc, int N, int K, const f32_out *o) {
    const int NP = (N + NR - 1) / NR;
    for (int p = 0; p < NP; p++) {
        const int j0 = p * NR, nr = N - j0 < NR ? N - j0 : NR;
        for (int i = 0; i < mc; i += MR)
            f32_tile(A, K, bp + (size_t)p * K * NR, m0 + i, mc - i < MR ? mc - i : MR, j0, nr, o);
    }
    if (o->ln_out)
        for (int n = m0; n < m0 + mc; n++)
            ln_row(o->ln_out + (size_t)n * o->ldc, o->ln_mean ? o->ln_mean + n : NULL,
                   o->ln_rstd ? o->ln_rstd + n : NULL, o->c + (size_t)n * o->ldc, o->ln_w, o->ln_b, N,
                   o->ln_eps);
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* x86-64 */

static int f32_kernel_ok(void) {
#ifdef PK_HAVE_F32_KERNEL
    const pulse_cpu *c = pulse_cpu_get(); /* the one place that knows the CPU (core/cpu.c) */
    return c->avx512f;
#else
    return 0;
#endif
}

/* panel p of a weight (OC, C) used transposed, into dst (C, NR): dst[k NR + j] = weight[p NR + j][k], zero
 * past OC */
static void pack_panel(float *dst, const float *weight, int OC, int C, int p) {
    const int j0 = p * NR, nr = OC - j0 < NR ? OC - j0 : NR;
    for (int j = 0; j < NR; j++) {
        const float *row = weight + (size_t)(j0 + j) * C;
        for (int k = 0; k < C; k++) dst[(size_t)k * NR + j] = j < nr ? row[k] : 0.0f;
    }
}

static size_t packed_floats(int K, int N) {
    return (size_t)((N + NR - 1) / NR) * NR * (size_t)K;
}

pulse_f32_weight *pulse_f32_weight_pack(const float *weight, int OC, int C) {
    if (!weight || OC <= 0 || C <= 0 || !f32_kernel_ok()) return NULL;
    size_t floats = 0;
    if (pulse_mul_overflows((size_t)((OC + NR - 1) / NR) * NR, (size_t)C, &floats)) return NULL;
    pulse_f32_weight *w = malloc(sizeof *w);
    float *bp = w ? aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64) : NULL;
    if (!bp) {
        free(w);
        return NULL;
    }
    const int NP = (OC + NR - 1) / NR;
#pragma omp parallel for schedule(static) if ((size_t)OC * C > 65536)
    for (int p = 0; p < NP; p++) pack_panel(bp + (size_t)p * C * NR, weight, OC, C, p);
    w->bp = bp;
    w->OC = OC;
    w->C = C;
    return w;
}

void pulse_f32_weight_free(pulse_f32_weight *w) {
    if (!w) return;
    free(w->bp);
    free(w);
}

/* y (M, N) = A (M, K) @ W (N, K)^T through o on the packed panels Bpre, or W packed here into the calling
 * thread's scratch; 0 when not run (no AVX-512F, out of memory, or too small to pack per call: the caller
 * falls back) */
static int f32_run(int M, int N, int K, const float *A, const float *W, const float *Bpre, const f32_out *o) {
#ifdef PK_HAVE_F32_KERNEL
    if (K <= 0 || !f32_kernel_ok()) return 0;
    float *Bp = NULL;
    if (!Bpre) {
        if ((double)M * N * K < 1.0e6) return 0; /* small: OpenBLAS without the packing */
        Bp = pk_scratch(PK_SCR_F32_B, packed_floats(K, N) * sizeof(float));
        if (!Bp) return 0;
    }
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    const double work = 2.0 * M * (double)N * K;
    if (work < 2.0e6 * nth) nth = (int)(work / 2.0e6) > 1 ? (int)(work / 2.0e6) : 1;
    /* blocks of rows: up to 256 (the packed weight streamed once per block), at least two per thread */
    int mc = nth > 1 ? (M + 2 * nth - 1) / (2 * nth) : M;
    mc = (mc + MR - 1) / MR * MR;
    mc = mc < 64 ? 64 : mc > 256 ? 256 : mc;
    const int NMB = (M + mc - 1) / mc, NP = (N + NR - 1) / NR;
    if (nth > NMB) nth = NMB;
    if (nth <= 1) {
        if (Bp)
            for (int p = 0; p < NP; p++) pack_panel(Bp + (size_t)p * K * NR, W, N, K, p);
        for (int mb = 0; mb < NMB; mb++)
            f32_block(A, Bpre ? Bpre : Bp, mb * mc, M - mb * mc < mc ? M - mb * mc : mc, N, K, o);
        return 1;
    }
#pragma omp parallel num_threads(nth)
    {
        if (Bp) {
#pragma omp for schedule(static)
            for (int p = 0; p < NP; p++) pack_panel(Bp + (size_t)p * K * NR, W, N, K, p);
        }
#pragma omp for schedule(dynamic, 1)
        for (int mb = 0; mb < NMB; mb++)
            f32_block(A, Bpre ? Bpre : Bp, mb * mc, M - mb * mc < mc ? M - mb * mc : mc, N, K, o);
    }
    return 1;
#else
    (void)M, (void)N, (void)K, (void)A, (void)W, (void)Bpre, (void)o;
    return 0;
#endif
}

void pulse_linear_fused(const float *inp, const float *weight, const pulse_f32_weight *pw, int N, int C,
                        int OC, const pulse_linear_epilogue *ep) {
    if (N <= 0 || OC <= 0 || !ep) return;
    if (ep->segs && (ep->nseg < 1 || OC % ep->nseg || ep->res || ep->gelu || ep->ln_out)) return;
    if (!ep->segs && !ep->out && !ep->gelu) return;
    if (ep->ln_out && !ep->out) return;
    const int seg = ep->segs ? OC / ep->nseg : 0;
    if (C > 0 && (!ep->segs || seg % NR == 0)) { /* a panel never straddles two segments */
        const f32_out o = {.c = ep->out,
                           .ldc = OC,
                           .segs = ep->segs,
                           .seg = seg,
                           .bias = ep->bias,
                           .res = ep->res,
                           .g = ep->gelu,
                           .ln_out = ep->ln_out,
                           .ln_mean = ep->ln_mean,
                           .ln_rstd = ep->ln_rstd,
                           .ln_w = ep->ln_w,
                           .ln_b = ep->ln_b,
                           .ln_eps = ep->ln_eps};
        const int pre = pw && pw->OC == OC && pw->C == C;
        if (f32_run(N, OC, C, inp, weight, pre ? pw->bp : NULL, &o)) return;
    }
    fused_fallback(inp, weight, N, C, OC, ep);
}
