/* kernels/rope.c — owns rotary position embeddings as ggml computes them (no YaRN): the cos/sin cache of a
 * chunk's positions and the rotation of q or k heads, NEOX (pairs i, i + n_rot/2) or normal (adjacent pairs).
 * The backward (LoRA training) is the inverse rotation of the gradient, beside the forward. */
#include "pulse/kernels.h"

#include <math.h>
#include <stddef.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the float operations are llama.cpp's, rounding for rounding */
#endif

/* cos/sin tables (n, n_rot/2) for positions pos[] and the given base, computed as ggml's rope cache (float
 * theta multiplied by base^(-2/n_rot) pair after pair, cosf/sinf of freq_scale * theta / ff; no YaRN). */
void pulse_rope_cache(float *cs, float *sn, const int *pos, int n, int n_rot, float base, float scale,
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
void pulse_rope_forward(float *x, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
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

/* Backward in place: dx (n, nh * hd) holds d out on entry and d in on return. The rotation is orthogonal, so
 * d in = R(-theta) d out: (d0, d1) -> (c d0 + s d1, -s d0 + c d1) on the same pairs; dims past n_rot pass
 * through. */
void pulse_rope_backward(float *dx, const float *cs, const float *sn, int n, int nh, int hd, int n_rot,
                         int neox) {
    const int half = n_rot / 2;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            float *v = dx + ((size_t)i * nh + h) * hd;
            const float *c = cs + (size_t)i * half, *s = sn + (size_t)i * half;
            for (int d = 0; d < half; d++) {
                int a = neox ? d : 2 * d, b = neox ? d + half : 2 * d + 1;
                const float d0 = v[a], d1 = v[b];
                v[a] = d0 * c[d] + d1 * s[d];
                v[b] = d1 * c[d] - d0 * s[d];
            }
        }
}
