/* tests/test_lm_grad.c — gradient checks of the decoder's training kernels (LoRA): central finite differences
 * (double loss L = sum(out * R), float kernels) for RMSNorm, RoPE, SwiGLU / GEGLU and the causal attention
 * (GQA, sliding window, soft-cap, padded sequences), each forward against a double-precision reference, and
 * the products through a quantised weight (pulse_qmatmul_dq / pulse_qmatmul_backward / pulse_qhead_loss)
 * against scalar references. The main run forces the fp32 fallback of the bf16 products (pulse_options.bf16 =
 * 0) so finite differences are meaningful; it then re-runs itself with "bf16" to check the AVX512-BF16 path
 * against the same references at bf16 tolerance (skipped on CPUs without it). */
#include "test.h"
#include "kernels_util.h"

#include "pulse/kernels_bf16.h"
#include "pulse/quant.h"

#define RTOL 1e-2
#define ATOL 1e-3

/* ---------------- RMSNorm ---------------- */
typedef struct {
    int N, C;
    float *x, *w, *out, *R;
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    pulse_rmsnorm_forward_train(c->out, NULL, c->x, c->w, c->N, c->C, 1e-5f);
    return ku_dot(c->out, c->R, (size_t)c->N * c->C);
}

static void grad_rmsnorm(int N, int C) {
    rms_ctx c = {
        N, C, ku_alloc((size_t)N * C), ku_alloc(C), ku_alloc((size_t)N * C), ku_alloc((size_t)N * C)};
    ku_fill(c.x, (size_t)N * C, -2, 2);
    ku_fill(c.w, C, 0.5f, 1.5f);
    ku_fill(c.R, (size_t)N * C, -1, 1);
    float *rstd = ku_alloc(N), *ref = ku_alloc((size_t)N * C);
    pulse_rmsnorm_forward_train(c.out, rstd, c.x, c.w, N, C, 1e-5f);
    pulse_rmsnorm_forward(ref, c.x, c.w, N, C, 1e-5f);
    double md0 = 0; /* training's row sums run in 8 lanes: within rounding of the inference form */
    for (size_t j = 0; j < (size_t)N * C; j++)
        md0 = fmax(md0, fabs(ref[j] - c.out[j]) / (fabs(ref[j]) + 1e-6));
    CHECK_MSG(md0 < 1e-6, "rmsnorm_forward_train vs rmsnorm_forward: %g relative", md0);
    float *dx = ku_alloc((size_t)N * C), *dw = ku_alloc(C), *dx2 = ku_alloc((size_t)N * C),
          *dw2 = ku_alloc(C);
    pulse_rmsnorm_backward(dx, dw, c.R, c.x, c.w, rstd, N, C, 1e-5f);
    ku_fd_check("rmsnorm.dinp", rms_loss, &c, c.x, dx, (size_t)N * C, 1e-2f, RTOL, ATOL);
    ku_fd_check("rmsnorm.dw", rms_loss, &c, c.w, dw, C, 1e-2f, RTOL, ATOL);
    /* rstd NULL (recomputed) gives the same; accumulation; NULL pointers skipped */
    pulse_rmsnorm_backward(dx2, NULL, c.R, c.x, c.w, NULL, N, C, 1e-5f);
    pulse_rmsnorm_backward(NULL, dw2, c.R, c.x, c.w, NULL, N, C, 1e-5f);
    double md = 0;
    for (int i = 0; i < N * C; i++) md = fmax(md, fabs(dx2[i] - dx[i]));
    for (int i = 0; i < C; i++) md = fmax(md, fabs(dw2[i] - dw[i]));
    CHECK_MSG(md < 1e-6, "rmsnorm backward with rstd NULL differs by %g", md);
    pulse_rmsnorm_backward(dx2, dw2, c.R, c.x, c.w, rstd, N, C, 1e-5f);
    ku_check_accum("rmsnorm.dinp", dx2, dx, (size_t)N * C);
    ku_check_accum("rmsnorm.dw", dw2, dw, C);
    free(c.x), free(c.w), free(c.out), free(c.R), free(rstd), free(ref), free(dx), free(dw), free(dx2),
        free(dw2);
}

/* ---------------- RoPE ---------------- */
typedef struct {
    int n, nh, hd, n_rot, neox;
    const float *cs, *sn;
    float *x, *out, *R;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    const size_t n = (size_t)c->n * c->nh * c->hd;
    memcpy(c->out, c->x, sizeof(float) * n);
    pulse_rope_forward(c->out, c->cs, c->sn, c->n, c->nh, c->hd, c->n_rot, c->neox);
    return ku_dot(c->out, c->R, n);
}

static void grad_rope(int neox, int n_rot) {
    const int n = 5, nh = 3, hd = 16, half = n_rot / 2;
    const int pos[5] = {0, 1, 7, 100, 4095};
    float *cs = ku_alloc((size_t)n * half), *sn = ku_alloc((size_t)n * half);
    pulse_rope_cache(cs, sn, pos, n, n_rot, 10000.0f, 1.0f, NULL);
    const size_t sz = (size_t)n * nh * hd;
    rope_ctx c = {n, nh, hd, n_rot, neox, cs, sn, ku_alloc(sz), ku_alloc(sz), ku_alloc(sz)};
    ku_fill(c.x, sz, -1, 1);
    ku_fill(c.R, sz, -1, 1);
    float *d = ku_alloc(sz);
    memcpy(d, c.R, sizeof(float) * sz);
    pulse_rope_backward(d, cs, sn, n, nh, hd, n_rot, neox);
    char nm[64];
    snprintf(nm, sizeof nm, "rope(neox %d, n_rot %d).dx", neox, n_rot);
    ku_fd_check(nm, rope_loss, &c, c.x, d, sz, 1e-2f, RTOL, ATOL);
    /* backward(forward(x)) == x: the rotation is orthogonal */
    memcpy(c.out, c.x, sizeof(float) * sz);
    pulse_rope_forward(c.out, cs, sn, n, nh, hd, n_rot, neox);
    pulse_rope_backward(c.out, cs, sn, n, nh, hd, n_rot, neox);
    double md = 0;
    for (size_t i = 0; i < sz; i++) md = fmax(md, fabs(c.out[i] - c.x[i]));
    CHECK_MSG(md < 1e-6, "rope backward(forward(x)) differs from x by %g", md);
    free(cs), free(sn), free(c.x), free(c.out), free(c.R), free(d);
}

/* ---------------- SwiGLU / GEGLU ---------------- */
typedef struct {
    size_t n;
    int gelu;
    float *g, *u, *R;
} glu_ctx;

/* the analytic functions in double (the GEGLU forward's f16 table is too coarse to difference) */
static double act_ref(double x, int gelu) {
    if (!gelu) return x / (1.0 + exp(-x));
    return 0.5 * x * (1.0 + tanh(0.79788456080286535587989211986876 * (x + 0.044715 * x * x * x)));
}

static double glu_loss(void *p) {
    glu_ctx *c = p;
    double s = 0;
    for (size_t j = 0; j < c->n; j++) s += act_ref(c->g[j], c->gelu) * c->u[j] * c->R[j];
    return s;
}

static void grad_glu(int gelu) {
    const size_t n = 203; /* vector body and tail */
    glu_ctx c = {n, gelu, ku_alloc(n), ku_alloc(n), ku_alloc(n)};
    ku_fill(c.g, n, -6, 6);
    ku_fill(c.u, n, -2, 2);
    ku_fill(c.R, n, -1, 1);
    float *dg = ku_alloc(n), *du = ku_alloc(n), *h = ku_alloc(n), *h2 = ku_alloc(n);
    if (gelu)
        pulse_geglu_backward(dg, du, c.R, c.g, c.u, n);
    else
        pulse_swiglu_backward(dg, du, c.R, c.g, c.u, n);
    ku_fd_check(gelu ? "geglu.dg" : "swiglu.dg", glu_loss, &c, c.g, dg, n, 1e-2f, RTOL, ATOL);
    ku_fd_check(gelu ? "geglu.du" : "swiglu.du", glu_loss, &c, c.u, du, n, 1e-2f, RTOL, ATOL);
    /* the out-of-place forward is the in-place one; and it matches the analytic function (f16 table) */
    pulse_glu_forward(h, c.g, c.u, n, gelu);
    memcpy(h2, c.u, sizeof(float) * n);
    if (gelu)
        pulse_geglu_forward(h2, c.g, n);
    else
        pulse_swiglu_forward(h2, c.g, n);
    CHECK_MSG(memcmp(h, h2, sizeof(float) * n) == 0, "glu_forward(gelu %d) != in-place forward", gelu);
    double md = 0;
    for (size_t j = 0; j < n; j++) md = fmax(md, fabs(h[j] - act_ref(c.g[j], gelu) * c.u[j]));
    CHECK_MSG(md < 2e-2, "glu forward(gelu %d) vs analytic: %g", gelu, md);
    /* the SET form is zeroing then the += form, bit for bit (dg, du poisoned first) */
    for (size_t j = 0; j < n; j++) h[j] = h2[j] = NAN;
    pulse_glu_backward(h, h2, c.R, c.g, c.u, n, gelu);
    int same = 1;
    for (size_t j = 0; j < n; j++) same &= h[j] == dg[j] && h2[j] == du[j];
    CHECK_MSG(same, "glu_backward(gelu %d, SET) != zero + the += form", gelu);
    free(c.g), free(c.u), free(c.R), free(dg), free(du), free(h), free(h2);
}

/* ---------------- causal attention ---------------- */
typedef struct {
    int B, T;
    const int *lens;
    pulse_attn_params p;
    float *q, *k, *v, *out, *lse, *R;
} att_ctx;

static double att_loss(void *pp) {
    att_ctx *c = pp;
    pulse_causal_attention_forward(c->out, c->lse, c->q, c->k, c->v, c->lens, c->B, c->T, &c->p);
    return ku_dot(c->out, c->R, (size_t)c->B * c->T * c->p.n_head * c->p.head_dim);
}

/* double-precision reference forward */
static void att_ref(double *out, const att_ctx *c) {
    const int NH = c->p.n_head, NKV = c->p.n_head_kv, HD = c->p.head_dim, T = c->T, grp = NH / NKV;
    double *s = malloc(sizeof(double) * (size_t)T);
    for (int b = 0; b < c->B; b++) {
        const int L = c->lens ? c->lens[b] : T;
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double *o = out + ((size_t)(b * T + i) * NH + h) * HD;
                for (int d = 0; d < HD; d++) o[d] = 0;
                if (i >= L) continue;
                const int lo = c->p.window > 0 && i - c->p.window + 1 > 0 ? i - c->p.window + 1 : 0;
                double mx = -INFINITY, sum = 0;
                for (int j = lo; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < HD; e++)
                        d += (double)c->q[((size_t)(b * T + i) * NH + h) * HD + e] *
                             c->k[((size_t)(b * T + j) * NKV + h / grp) * HD + e];
                    d *= c->p.scale;
                    if (c->p.softcap > 0) d = c->p.softcap * tanh(d / c->p.softcap);
                    s[j] = d;
                    mx = fmax(mx, d);
                }
                for (int j = lo; j <= i; j++) sum += (s[j] = exp(s[j] - mx));
                for (int j = lo; j <= i; j++)
                    for (int e = 0; e < HD; e++)
                        o[e] += s[j] / sum * c->v[((size_t)(b * T + j) * NKV + h / grp) * HD + e];
            }
    }
    free(s);
}

static void grad_attention(int B, int T, int NH, int NKV, int HD, int window, float softcap,
                           const int *lens) {
    att_ctx c = {B,    T,    lens, {NH, NKV, HD, 1.0f / sqrtf((float)HD), softcap, window, NULL, 0},
                 NULL, NULL, NULL, NULL,
                 NULL, NULL};
    const size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD;
    c.q = ku_alloc(nq), c.k = ku_alloc(nk), c.v = ku_alloc(nk), c.out = ku_alloc(nq), c.R = ku_alloc(nq);
    c.lse = ku_alloc((size_t)B * NH * T);
    ku_fill(c.q, nq, -2, 2);
    ku_fill(c.k, nk, -2, 2);
    ku_fill(c.v, nk, -1, 1);
    ku_fill(c.R, nq, -1, 1);
    char nm[96];
    snprintf(nm, sizeof nm, "attention(B%d T%d NH%d NKV%d HD%d win %d cap %g%s)", B, T, NH, NKV, HD, window,
             (double)softcap, lens ? " lens" : "");
    /* forward vs the double reference */
    att_loss(&c);
    double *ref = malloc(sizeof(double) * nq);
    att_ref(ref, &c);
    const double fe = ku_max_abs_diff(c.out, ref, nq);
    CHECK_MSG(fe < 1e-5, "%s forward vs double reference: %g", nm, fe);
    free(ref);
    float *dq = ku_alloc(nq), *dk = ku_alloc(nk), *dv = ku_alloc(nk);
    pulse_causal_attention_backward(dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    char nm2[128];
    snprintf(nm2, sizeof nm2, "%s.dq", nm);
    ku_fd_check(nm2, att_loss, &c, c.q, dq, nq, 1e-2f, RTOL, ATOL);
    snprintf(nm2, sizeof nm2, "%s.dk", nm);
    ku_fd_check(nm2, att_loss, &c, c.k, dk, nk, 1e-2f, RTOL, ATOL);
    snprintf(nm2, sizeof nm2, "%s.dv", nm);
    ku_fd_check(nm2, att_loss, &c, c.v, dv, nk, 1e-2f, RTOL, ATOL);
    /* accumulation, and each gradient alone */
    att_loss(&c);
    float *dq2 = ku_alloc(nq), *dk2 = ku_alloc(nk), *dv2 = ku_alloc(nk);
    memcpy(dq2, dq, sizeof(float) * nq), memcpy(dk2, dk, sizeof(float) * nk),
        memcpy(dv2, dv, sizeof(float) * nk);
    pulse_causal_attention_backward(dq2, NULL, NULL, c.R, c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    pulse_causal_attention_backward(NULL, dk2, NULL, c.R, c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    pulse_causal_attention_backward(NULL, NULL, dv2, c.R, c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    ku_check_accum("attention.dq", dq2, dq, nq);
    ku_check_accum("attention.dk", dk2, dk, nk);
    ku_check_accum("attention.dv", dv2, dv, nk);
    if (lens) { /* the sequences packed back to back (row0): the padded layout's numbers on the real rows */
        int row0[64], N = 0;
        for (int b = 0; b < B; b++) row0[b] = N, N += lens[b];
        const int ldq = NH * HD, ldk = NKV * HD;
        float *pq = ku_alloc((size_t)N * ldq), *pk = ku_alloc((size_t)N * ldk),
              *pv = ku_alloc((size_t)N * ldk), *pR = ku_alloc((size_t)N * ldq),
              *po = ku_alloc((size_t)N * ldq), *pl = ku_alloc((size_t)B * NH * T),
              *pdq = ku_alloc((size_t)N * ldq), *pdk = ku_alloc((size_t)N * ldk),
              *pdv = ku_alloc((size_t)N * ldk);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < lens[b]; i++) {
                const size_t pr = (size_t)(row0[b] + i), r = (size_t)b * T + (size_t)i;
                memcpy(pq + pr * ldq, c.q + r * ldq, sizeof(float) * (size_t)ldq);
                memcpy(pR + pr * ldq, c.R + r * ldq, sizeof(float) * (size_t)ldq);
                memcpy(pk + pr * ldk, c.k + r * ldk, sizeof(float) * (size_t)ldk);
                memcpy(pv + pr * ldk, c.v + r * ldk, sizeof(float) * (size_t)ldk);
            }
        pulse_attn_params pp = c.p;
        pp.row0 = row0;
        pulse_causal_attention_forward(po, pl, pq, pk, pv, lens, B, T, &pp);
        memset(pdq, 0, sizeof(float) * (size_t)N * ldq), memset(pdk, 0, sizeof(float) * (size_t)N * ldk),
            memset(pdv, 0, sizeof(float) * (size_t)N * ldk);
        pulse_causal_attention_backward(pdq, pdk, pdv, pR, po, pl, pq, pk, pv, lens, B, T, &pp);
        int same = 1;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < lens[b]; i++) {
                const size_t pr = (size_t)(row0[b] + i), r = (size_t)b * T + (size_t)i;
                same &= !memcmp(po + pr * ldq, c.out + r * ldq, sizeof(float) * (size_t)ldq);
                same &= !memcmp(pdq + pr * ldq, dq + r * ldq, sizeof(float) * (size_t)ldq);
                same &= !memcmp(pdk + pr * ldk, dk + r * ldk, sizeof(float) * (size_t)ldk);
                same &= !memcmp(pdv + pr * ldk, dv + r * ldk, sizeof(float) * (size_t)ldk);
            }
        CHECK_MSG(same, "%s: packed sequences differ from the padded layout", nm);
        free(pq), free(pk), free(pv), free(pR), free(po), free(pl), free(pdq), free(pdk), free(pdv);
    }
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.R), free(c.lse), free(dq), free(dk), free(dv),
        free(dq2), free(dk2), free(dv2);
}

/* ---------------- causal attention, bf16 products (attention_train_bf16.c) ---------------- */
static double bfd(float x) {
    return (double)pulse_bf16_round(x);
}

/* The bf16 form's rounding points in double: s = scale sum bf(q) bf(k); p = softmax; o = sum bf(p) bf(v);
 * backward from out / lse given (the trainer's): p = exp(s - lse), dp = sum bf(do) bf(v), D = do . out,
 * ds = p (dp - D), dq += scale sum bf(ds) bf(k), dk += scale sum bf(ds) bf(q), dv += sum bf(p) bf(do). */
static void att_bf16_ref(double *out, double *lse, double *dq, double *dk, double *dv, const att_ctx *c,
                         const float *dout, const float *kout, const float *klse) {
    const int NH = c->p.n_head, NKV = c->p.n_head_kv, HD = c->p.head_dim, T = c->T, grp = NH / NKV;
    double *s = malloc(sizeof(double) * (size_t)T);
    for (int b = 0; b < c->B; b++) {
        const int L = c->lens ? c->lens[b] : T;
        for (int h = 0; h < NH; h++) {
            const int kh = h / grp;
            for (int i = 0; i < L; i++) {
                const size_t qi = ((size_t)(b * T + i) * NH + h) * HD;
                const int lo = c->p.window > 0 && i - c->p.window + 1 > 0 ? i - c->p.window + 1 : 0;
                double mx = -INFINITY, sum = 0, D = 0;
                for (int j = lo; j <= i; j++) {
                    const size_t kj = ((size_t)(b * T + j) * NKV + kh) * HD;
                    double d = 0;
                    for (int e = 0; e < HD; e++) d += bfd(c->q[qi + e]) * bfd(c->k[kj + e]);
                    s[j] = (float)(c->p.scale * d);
                    mx = fmax(mx, s[j]);
                }
                for (int j = lo; j <= i; j++) sum += exp(s[j] - mx);
                /* sum >= 1: the key i itself gives exp(0) */
                // cppcheck-suppress invalidFunctionArg
                lse[((size_t)b * NH + h) * T + i] = mx + log(sum);
                for (int e = 0; e < HD; e++) out[qi + e] = 0;
                for (int j = lo; j <= i; j++) {
                    const size_t kj = ((size_t)(b * T + j) * NKV + kh) * HD;
                    const double pj = bfd((float)(exp(s[j] - mx) / sum));
                    for (int e = 0; e < HD; e++) out[qi + e] += pj * bfd(c->v[kj + e]);
                }
                /* backward with the kernel's forward (out, lse), as the trainer runs it */
                const double l = klse[((size_t)b * NH + h) * T + i];
                for (int e = 0; e < HD; e++) D += (double)dout[qi + e] * kout[qi + e];
                for (int j = lo; j <= i; j++) {
                    const size_t kj = ((size_t)(b * T + j) * NKV + kh) * HD;
                    const float p = (float)exp(s[j] - l);
                    double dp = 0;
                    for (int e = 0; e < HD; e++) dp += bfd(dout[qi + e]) * bfd(c->v[kj + e]);
                    const float ds = p * (float)((float)dp - D);
                    for (int e = 0; e < HD; e++) {
                        dq[qi + e] += c->p.scale * bfd(ds) * bfd(c->k[kj + e]);
                        dk[kj + e] += c->p.scale * bfd(ds) * bfd(c->q[qi + e]);
                        dv[kj + e] += bfd(p) * bfd(dout[qi + e]);
                    }
                }
            }
        }
    }
    free(s);
}

/* max |a - b| / max |b| and the RMS of a - b over max |b| */
static void rel_errs(const float *a, const double *b, size_t n, double *mx, double *rms) {
    double m = 0, d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        const double e = fabs((double)a[i] - b[i]);
        d = fmax(d, e);
        s += e * e;
    }
    m = m > 0 ? m : 1;
    *mx = d / m;
    *rms = sqrt(s / (double)(n ? n : 1)) / m;
}

/* bf16 = 1 against att_bf16_ref (a bf16 p / ds rounded the other way near a tie moves an output by up to
 * ~1e-4 of the max, the RMS stays near fp32 rounding); and against the fp32 form at bf16 tolerance. Packed
 * rows (row0) when lens. */
static void attention_bf16(int B, int T, int NH, int NKV, int HD, int window, const int *lens) {
    att_ctx c = {B,    T,    lens, {NH, NKV, HD, 1.0f / sqrtf((float)HD), 0.0f, window, NULL, 1},
                 NULL, NULL, NULL, NULL,
                 NULL, NULL};
    const size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD, nl = (size_t)B * NH * T;
    c.q = ku_alloc(nq), c.k = ku_alloc(nk), c.v = ku_alloc(nk), c.out = ku_alloc(nq), c.R = ku_alloc(nq);
    c.lse = ku_alloc(nl);
    ku_fill(c.q, nq, -2, 2);
    ku_fill(c.k, nk, -2, 2);
    ku_fill(c.v, nk, -1, 1);
    ku_fill(c.R, nq, -1, 1);
    char nm[96];
    snprintf(nm, sizeof nm, "attention bf16 (B%d T%d NH%d NKV%d HD%d win %d%s)", B, T, NH, NKV, HD, window,
             lens ? " lens" : "");
    pulse_causal_attention_forward(c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    float *dq = ku_alloc(nq), *dk = ku_alloc(nk), *dv = ku_alloc(nk);
    pulse_causal_attention_backward(dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, lens, B, T, &c.p);
    double *ro = calloc(nq, sizeof(double)), *rl = calloc(nl, sizeof(double)),
           *rdq = calloc(nq, sizeof(double)), *rdk = calloc(nk, sizeof(double)),
           *rdv = calloc(nk, sizeof(double));
    att_bf16_ref(ro, rl, rdq, rdk, rdv, &c, c.R, c.out, c.lse);
    double mx, rms, lmax = 0;
    for (size_t i = 0; i < nl; i++) lmax = fmax(lmax, fabs(c.lse[i] - rl[i]));
    CHECK_MSG(lmax < 1e-4, "%s lse vs reference: %g", nm, lmax);
    const char *what[4] = {"out", "dq", "dk", "dv"};
    const float *got[4] = {c.out, dq, dk, dv};
    const double *want[4] = {ro, rdq, rdk, rdv};
    const size_t n[4] = {nq, nq, nk, nk};
    for (int t = 0; t < 4; t++) {
        rel_errs(got[t], want[t], n[t], &mx, &rms);
        CHECK_MSG(mx < 1e-3 && rms < 2e-5, "%s %s vs reference: max %g rms %g (of the max)", nm, what[t], mx,
                  rms);
    }
    /* the fp32 form: within bf16 products' error */
    pulse_attn_params pf = c.p;
    pf.bf16 = 0;
    float *fo = ku_alloc(nq), *fl = ku_alloc(nl), *fdq = ku_alloc(nq), *fdk = ku_alloc(nk),
          *fdv = ku_alloc(nk);
    pulse_causal_attention_forward(fo, fl, c.q, c.k, c.v, lens, B, T, &pf);
    pulse_causal_attention_backward(fdq, fdk, fdv, c.R, fo, fl, c.q, c.k, c.v, lens, B, T, &pf);
    const float *f32[4] = {fo, fdq, fdk, fdv};
    for (int t = 0; t < 4; t++) {
        double *w = malloc(sizeof(double) * n[t]);
        for (size_t i = 0; i < n[t]; i++) w[i] = f32[t][i];
        rel_errs(got[t], w, n[t], &mx, &rms);
        CHECK_MSG(mx < 2e-2 && rms < 3e-3, "%s %s vs fp32: max %g rms %g (of the max)", nm, what[t], mx, rms);
        free(w);
    }
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.R), free(c.lse), free(dq), free(dk), free(dv);
    free(ro), free(rl), free(rdq), free(rdk), free(rdv), free(fo), free(fl), free(fdq), free(fdk), free(fdv);
}

/* where the bf16 form does not run (no AVX512-BF16 or bf16 off, a soft-cap, head_dim not a multiple of 16)
 * bf16 = 1 is the fp32 form, bit for bit */
static void attention_bf16_fallback(int HD, float softcap) {
    const int B = 1, T = 21, NH = 2, NKV = 1;
    const size_t nq = (size_t)B * T * NH * HD, nk = (size_t)B * T * NKV * HD, nl = (size_t)B * NH * T;
    float *q = ku_alloc(nq), *k = ku_alloc(nk), *v = ku_alloc(nk), *R = ku_alloc(nq);
    ku_fill(q, nq, -2, 2), ku_fill(k, nk, -2, 2), ku_fill(v, nk, -1, 1), ku_fill(R, nq, -1, 1);
    float *o[2], *l[2], *g[2][3];
    for (int m = 0; m < 2; m++) {
        const pulse_attn_params p = {NH, NKV, HD, 1.0f / sqrtf((float)HD), softcap, 0, NULL, m};
        o[m] = ku_alloc(nq), l[m] = ku_alloc(nl), g[m][0] = ku_alloc(nq), g[m][1] = ku_alloc(nk),
        g[m][2] = ku_alloc(nk);
        pulse_causal_attention_forward(o[m], l[m], q, k, v, NULL, B, T, &p);
        pulse_causal_attention_backward(g[m][0], g[m][1], g[m][2], R, o[m], l[m], q, k, v, NULL, B, T, &p);
    }
    CHECK_MSG(!memcmp(o[0], o[1], sizeof(float) * nq) && !memcmp(l[0], l[1], sizeof(float) * nl) &&
                  !memcmp(g[0][0], g[1][0], sizeof(float) * nq) &&
                  !memcmp(g[0][1], g[1][1], sizeof(float) * nk) &&
                  !memcmp(g[0][2], g[1][2], sizeof(float) * nk),
              "attention bf16 = 1 where it cannot run (HD %d, cap %g, bf16 %d) is not the fp32 form", HD,
              (double)softcap, pulse_bf16_supported());
    free(q), free(k), free(v), free(R);
    for (int m = 0; m < 2; m++) free(o[m]), free(l[m]), free(g[m][0]), free(g[m][1]), free(g[m][2]);
}

/* ---------------- products through a quantised weight ---------------- */
/* W (rows, cols) of type from random floats; wf gets its dequantised values */
static void *make_qweight(int type, int rows, int cols, float *wf) {
    const size_t rb = pulse_ggml_row_size(type, cols);
    uint8_t *W = malloc(rb * (size_t)rows);
    float *tmp = ku_alloc(cols);
    for (int r = 0; r < rows; r++) {
        ku_fill(tmp, cols, -1, 1);
        if (type == PULSE_GGML_F32)
            memcpy(W + r * rb, tmp, rb);
        else if (type == PULSE_GGML_F16)
            for (int j = 0; j < cols; j++) ((uint16_t *)(void *)(W + r * rb))[j] = pulse_fp32_to_fp16(tmp[j]);
        else
            CHECK(pulse_quantize_row(type, tmp, W + r * rb, cols) == rb);
        pulse_dequantize_row_ref(type, W + r * rb, wf + (size_t)r * cols, cols);
    }
    free(tmp);
    return W;
}

/* relative max error of a (n) against double b */
static double rel_err(const float *a, const double *b, size_t n) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i])), s = fmax(s, fabs(b[i]));
    return m / (s > 0 ? s : 1);
}

static void check_qlinear(int type, int N, int rows, int cols, double tol) {
    float *wf = ku_alloc((size_t)rows * cols);
    void *W = make_qweight(type, rows, cols, wf);
    float *X = ku_alloc((size_t)N * cols), *Y = ku_alloc((size_t)N * rows), *dY = ku_alloc((size_t)N * rows);
    float *dX = ku_alloc((size_t)N * cols), *dXr = ku_alloc((size_t)N * cols);
    ku_fill(X, (size_t)N * cols, -1, 1);
    ku_fill(dY, (size_t)N * rows, -1, 1);
    double *ry = malloc(sizeof(double) * (size_t)N * rows), *rx = malloc(sizeof(double) * (size_t)N * cols);
    for (int i = 0; i < N; i++) {
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)X[(size_t)i * cols + c] * wf[(size_t)r * cols + c];
            ry[(size_t)i * rows + r] = s;
        }
        for (int c = 0; c < cols; c++) {
            double s = 0;
            for (int r = 0; r < rows; r++) s += (double)dY[(size_t)i * rows + r] * wf[(size_t)r * cols + c];
            rx[(size_t)i * cols + c] = s;
        }
    }
    pulse_qmatmul_dq(Y, X, W, type, N, rows, cols);
    const double ey = rel_err(Y, ry, (size_t)N * rows);
    CHECK_MSG(ey < tol, "qmatmul_dq(type %d, %d x %d x %d) vs reference: %g", type, N, rows, cols, ey);
    ku_fill(dX, (size_t)N * cols, -1, 1); /* accumulates onto what is there */
    memcpy(dXr, dX, sizeof(float) * (size_t)N * cols);
    for (size_t i = 0; i < (size_t)N * cols; i++) rx[i] += dX[i];
    pulse_qmatmul_backward(dX, dY, W, type, N, rows, cols);
    const double ex = rel_err(dX, rx, (size_t)N * cols);
    CHECK_MSG(ex < tol, "qmatmul_backward(type %d, %d x %d x %d) vs reference: %g", type, N, rows, cols, ex);
    pulse_qmatmul_backward_ref(dXr, dY, W, type, N, rows, cols);
    const double er = rel_err(dXr, rx, (size_t)N * cols);
    CHECK_MSG(er < 1e-6, "qmatmul_backward_ref(type %d) vs reference: %g", type, er);
    free(wf), free(W), free(X), free(Y), free(dY), free(dX), free(dXr), free(ry), free(rx);
}

/* head + cross-entropy against a double reference; FD on x when fd (fp32 products only) */
typedef struct {
    int N, C, V, type;
    const void *W;
    const int *tg;
    float cap, *x, *scr;
} head_ctx;

static double head_loss(void *p) {
    head_ctx *c = p;
    return pulse_qhead_loss(NULL, NULL, c->x, c->W, c->type, c->tg, c->N, c->C, c->V, c->cap, 1.0f, c->scr,
                            2);
}

static void check_head(int type, float cap, int fd, double tol) {
    const int N = 5, C = 64, V = 301;
    const int tg[5] = {3, -1, 300, 0, 150};
    float *wf = ku_alloc((size_t)V * C);
    void *W = make_qweight(type, V, C, wf);
    head_ctx c = {N, C, V, type, W, tg, cap, ku_alloc((size_t)N * C), ku_alloc((size_t)2 * V)};
    ku_fill(c.x, (size_t)N * C, -1, 1);
    float *dx = ku_alloc((size_t)N * C), *losses = ku_alloc(N);
    const float scale = 0.25f;
    const double tot = pulse_qhead_loss(dx, losses, c.x, W, type, tg, N, C, V, cap, scale, c.scr, 2);
    /* reference */
    double rtot = 0, *rdx = calloc((size_t)N * C, sizeof(double)), *z = malloc(sizeof(double) * V),
           *t = malloc(sizeof(double) * V);
    int lossok = 1;
    for (int i = 0; i < N; i++) {
        if (tg[i] < 0) {
            lossok &= losses[i] == 0.0f;
            continue;
        }
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int e = 0; e < C; e++) s += (double)c.x[(size_t)i * C + e] * wf[(size_t)v * C + e];
            t[v] = cap > 0 ? tanh(s / cap) : 0;
            z[v] = cap > 0 ? cap * t[v] : s;
            mx = fmax(mx, z[v]);
        }
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
        const double l = mx + log(sum) - z[tg[i]];
        rtot += l;
        lossok &= fabs(losses[i] - l) < tol * 10 * (1 + l);
        for (int v = 0; v < V; v++) {
            double d = (exp(z[v] - mx) / sum - (v == tg[i])) * scale;
            if (cap > 0) d *= 1 - t[v] * t[v];
            for (int e = 0; e < C; e++) rdx[(size_t)i * C + e] += d * wf[(size_t)v * C + e];
        }
    }
    CHECK_MSG(fabs(tot - rtot) < tol * 10 * rtot, "qhead_loss(type %d, cap %g): %g vs %g", type, (double)cap,
              tot, rtot);
    CHECK_MSG(lossok, "qhead_loss(type %d, cap %g): per-row losses", type, (double)cap);
    const double ex = rel_err(dx, rdx, (size_t)N * C);
    CHECK_MSG(ex < tol, "qhead_loss(type %d, cap %g) dx vs reference: %g", type, (double)cap, ex);
    if (fd) {
        for (size_t i = 0; i < (size_t)N * C; i++) dx[i] /= scale;
        ku_fd_check(cap > 0 ? "qhead_loss(capped).dx" : "qhead_loss.dx", head_loss, &c, c.x, dx,
                    (size_t)N * C, 1e-2f, RTOL, ATOL);
    }
    free(wf), free(W), free(c.x), free(c.scr), free(dx), free(losses), free(rdx), free(z), free(t);
}

static void qlinear_all(double tol, int fd) {
    const int types[] = {PULSE_GGML_Q4_0, PULSE_GGML_Q4_1, PULSE_GGML_Q8_0,
                         PULSE_GGML_Q4_K, PULSE_GGML_Q6_K, PULSE_GGML_F16};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_qlinear(types[i], 37, 200, 256, tol);
    check_qlinear(PULSE_GGML_Q8_0, 3, 4200, 256, tol);  /* several blocks of rows */
    check_qlinear(PULSE_GGML_Q4_1, 70, 100, 8192, tol); /* blocks of 96 rows, uneven last */
    check_head(PULSE_GGML_Q8_0, 0.0f, fd, tol);
    check_head(PULSE_GGML_Q4_1, 5.0f, fd, tol);
}

int main(int argc, char **argv) {
    pulse_rng_seed(&ku_rng, 1234);
    pulse_options o = pulse_default_options();
    o.quiet = 1;
    if (argc > 1 && strcmp(argv[1], "bf16") == 0) {
        pulse_set_options(&o);
        pulse_blas_select(NULL, NULL);
        if (!pulse_bf16_supported()) test_skip("no AVX512-BF16: the bf16 path is the fp32 one checked above");
        qlinear_all(2e-2, 0); /* bf16 inputs: about 2^-8 relative per element */
        const int lens[3] = {37, 64, 9};
        attention_bf16(1, 9, 2, 2, 16, 0, NULL);
        attention_bf16(2, 70, 6, 2, 32, 0, lens);  /* GQA, padded, odd lengths, several tiles and blocks */
        attention_bf16(1, 130, 4, 1, 64, 0, NULL); /* MQA, the 48-column blocks' edges */
        attention_bf16(1, 80, 2, 2, 16, 21, NULL); /* sliding window */
        attention_bf16_fallback(8, 0.0f);          /* head_dim not a multiple of 16 */
        attention_bf16_fallback(16, 3.0f);         /* soft-cap */
        return test_summary();
    }
    o.bf16 = 0; /* fp32 products: finite differences are meaningful */
    pulse_set_options(&o);
    pulse_blas_select(NULL, NULL);
    grad_rmsnorm(7, 37);
    grad_rmsnorm(3, 576);
    grad_rope(0, 16);
    grad_rope(1, 16);
    grad_rope(1, 8); /* partial rotation: dims past n_rot pass through */
    grad_glu(0);
    grad_glu(1);
    const int lens[2] = {66, 37};
    grad_attention(1, 9, 2, 2, 4, 0, 0.0f, NULL);
    grad_attention(1, 66, 4, 2, 4, 0, 0.0f, NULL);  /* GQA, two query tiles */
    grad_attention(2, 66, 2, 1, 4, 0, 0.0f, lens);  /* MQA, padded sequence */
    grad_attention(1, 40, 2, 2, 4, 5, 0.0f, NULL);  /* sliding window */
    grad_attention(2, 66, 2, 1, 4, 20, 3.0f, lens); /* window, soft-cap, padding */
    attention_bf16_fallback(16, 0.0f); /* bf16 = 1 without the bf16 products (pulse_options.bf16 = 0) */
    qlinear_all(1e-5, 1);
    /* the bf16 path in a process of its own (the choice is made once per process) */
    char cmd[4096], out[1 << 14];
    snprintf(cmd, sizeof cmd, "'%s' bf16 2>&1", argv[0]);
    const int rc = test_run(cmd, out, sizeof out);
    printf("bf16 run: %s", out);
    CHECK_MSG(rc == 0 || rc == TEST_SKIP_EXIT, "bf16 run exited %d", rc);
    return test_summary();
}
