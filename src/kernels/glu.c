/* kernels/glu.c — owns the gated activations of the decoder FFN as llama.cpp computes them: SwiGLU
 * (ggml_vec_swiglu_f32: h = silu(g) * h with ggml's exp) and GEGLU (ggml_vec_geglu_f32: the tanh GELU of g
 * looked up in ggml's f16 table, times h), and their backward passes (LoRA training) beside them: the
 * out-of-place forward that keeps both inputs, and the gradients of the analytic silu / tanh-GELU. */
#include "pulse/kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ggml_exact.h"
#include "kernels/internal.h"
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif

/* ggml_v_silu: x / (1 + exp(-x)) */
static float silu(float x) {
    return x / (1.0f + pk_ggml_expf(0.0f - x));
}

/* h (n) *= silu(g (n)), as ggml_vec_swiglu_f32 */
void pulse_swiglu_forward(float *h, const float *g, size_t n) {
    size_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    for (; pc_simd_v3 && j + 8 <= n; j += 8) {
        const __m256 x = _mm256_loadu_ps(g + j);
        const __m256 e = pk_ggml_expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        const __m256 si = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(h + j, _mm256_mul_ps(si, _mm256_loadu_ps(h + j)));
    }
#endif
    for (; j < n; j++) h[j] = silu(g[j]) * h[j];
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
void pulse_geglu_forward(float *h, const float *g, size_t n) {
    gelu_table_init();
    size_t j = 0;
#ifdef __F16C__
    /* 8 at a time: the same f16 rounding (F16C), table lookups and products; x <= -10 -> 0, x >= 10 -> x */
    for (; pc_simd_v3 && j + 8 <= n; j += 8) {
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

/* ---- training: h (n) = act(g) * u without destroying u (both are needed by the backward); h may alias u
 * (then this is the in-place forward). The same numbers as pulse_swiglu_forward / pulse_geglu_forward. ----
 */
void pulse_glu_forward(float *h, const float *g, const float *u, size_t n, int gelu) {
    if (h != u) memcpy(h, u, sizeof(float) * n);
    if (gelu)
        pulse_geglu_forward(h, g, n);
    else
        pulse_swiglu_forward(h, g, n);
}

/* SwiGLU backward: h = silu(g) u, silu(g) = g sig(g), silu'(g) = sig(g) (1 + g (1 - sig(g))).
 * dg (n) += dh u silu'(g); du (n) += dh silu(g); either may be NULL. */
void pulse_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        const float x = g[j], sg = 1.0f / (1.0f + pk_expf(-x));
        if (dg) dg[j] += dh[j] * u[j] * (sg * (1.0f + x * (1.0f - sg)));
        if (du) du[j] += dh[j] * (x * sg);
    }
}

/* GEGLU backward with the analytic tanh GELU (the forward's f16 table is within f16 rounding of it):
 * gelu(x) = 0.5 x (1 + tanh(a)), a = sqrt(2/pi) (x + 0.044715 x^3);
 * gelu'(x) = 0.5 (1 + tanh a) + 0.5 x (1 - tanh^2 a) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
 * dg (n) += dh u gelu'(g); du (n) += dh gelu(g); either may be NULL. */
void pulse_geglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    const float s2pi = 0.79788456080286535587989211986876f, c = 0.044715f;
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        const float x = g[j], th = pk_tanhf(s2pi * (x + c * x * x * x));
        const float ge = 0.5f * x * (1.0f + th);
        const float gd = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * s2pi * (1.0f + 3.0f * c * x * x);
        if (dg) dg[j] += dh[j] * u[j] * gd;
        if (du) du[j] += dh[j] * ge;
    }
}

/* The SET form of both (dg and du both given): dg = dh u act'(g), du = dh act(g) — the training's FFN
 * backward, which would otherwise zero its (rows, 2F) gradient first only to add into it. The same numbers as
 * zeroing then the += forms. */
void pulse_glu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n,
                        int gelu) {
    if (gelu) {
        const float s2pi = 0.79788456080286535587989211986876f, c = 0.044715f;
#pragma omp simd
        for (size_t j = 0; j < n; j++) {
            const float x = g[j], th = pk_tanhf(s2pi * (x + c * x * x * x));
            const float ge = 0.5f * x * (1.0f + th);
            const float gd =
                0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * s2pi * (1.0f + 3.0f * c * x * x);
            dg[j] = 0.0f + dh[j] * u[j] * gd;
            du[j] = 0.0f + dh[j] * ge;
        }
        return;
    }
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        const float x = g[j], sg = 1.0f / (1.0f + pk_expf(-x));
        dg[j] = 0.0f + dh[j] * u[j] * (sg * (1.0f + x * (1.0f - sg)));
        du[j] = 0.0f + dh[j] * (x * sg);
    }
}
