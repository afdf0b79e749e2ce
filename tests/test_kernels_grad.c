/* tests/test_kernels_grad.c — a central finite-difference gradient check (double loss, float kernels) for
 * every backward in include/pulse/kernels.h, with L = sum(out * R) for a fixed random R; also checks that
 * backward ACCUMULATES and that NULL gradient pointers are skipped. */
#include "test.h"
#include "kernels_util.h"

#define RTOL 1e-2
#define ATOL 1e-3

/* ---------------- matmul ---------------- */
typedef struct {
    int N, C, OC;
    float *inp, *w, *b, *out, *R;
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = (mm_ctx *)p;
    pulse_matmul_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return ku_dot(c->out, c->R, (size_t)c->N * c->OC);
}

static void grad_matmul(int N, int C, int OC) {
    mm_ctx c = {N,
                C,
                OC,
                ku_alloc((size_t)N * C),
                ku_alloc((size_t)OC * C),
                ku_alloc(OC),
                ku_alloc((size_t)N * OC),
                ku_alloc((size_t)N * OC)};
    ku_fill(c.inp, (size_t)N * C, -1, 1);
    ku_fill(c.w, (size_t)OC * C, -1, 1);
    ku_fill(c.b, OC, -1, 1);
    ku_fill(c.R, (size_t)N * OC, -1, 1);
    float *di = ku_alloc((size_t)N * C), *dw = ku_alloc((size_t)OC * C), *db = ku_alloc(OC);
    pulse_matmul_backward(di, dw, db, c.R, c.inp, c.w, N, C, OC);
    char nm[64];
    snprintf(nm, sizeof nm, "matmul(%d,%d,%d).dinp", N, C, OC);
    ku_fd_check(nm, mm_loss, &c, c.inp, di, (size_t)N * C, 1e-2f, RTOL, ATOL);
    snprintf(nm, sizeof nm, "matmul(%d,%d,%d).dweight", N, C, OC);
    ku_fd_check(nm, mm_loss, &c, c.w, dw, (size_t)OC * C, 1e-2f, RTOL, ATOL);
    snprintf(nm, sizeof nm, "matmul(%d,%d,%d).dbias", N, C, OC);
    ku_fd_check(nm, mm_loss, &c, c.b, db, OC, 1e-2f, RTOL, ATOL);
    /* accumulate; NULL grads skipped */
    float *di2 = ku_alloc((size_t)N * C), *dw2 = ku_alloc((size_t)OC * C), *db2 = ku_alloc(OC);
    memcpy(di2, di, sizeof(float) * N * C);
    memcpy(dw2, dw, sizeof(float) * OC * C);
    memcpy(db2, db, sizeof(float) * OC);
    pulse_matmul_backward(di2, NULL, NULL, c.R, c.inp, c.w, N, C, OC);
    pulse_matmul_backward(NULL, dw2, NULL, c.R, c.inp, c.w, N, C, OC);
    pulse_matmul_backward(NULL, NULL, db2, c.R, c.inp, c.w, N, C, OC);
    ku_check_accum("matmul.dinp", di2, di, (size_t)N * C);
    ku_check_accum("matmul.dweight", dw2, dw, (size_t)OC * C);
    ku_check_accum("matmul.dbias", db2, db, OC);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.R), free(di), free(dw), free(db), free(di2),
        free(dw2), free(db2);
}

/* ---------------- embedding ---------------- */
typedef struct {
    int N, C, V;
    const int *ids;
    float *tab, *out, *R;
} emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = (emb_ctx *)p;
    pulse_embedding_forward(c->out, c->ids, c->tab, c->N, c->C, c->V);
    return ku_dot(c->out, c->R, (size_t)c->N * c->C);
}

static void grad_embedding(void) {
    static const int ids[8] = {2, 0, 2, 5, -1, 4, 2, 9};
    emb_ctx c = {8, 3, 6, ids, ku_alloc(18), ku_alloc(24), ku_alloc(24)};
    ku_fill(c.tab, 18, -1, 1);
    ku_fill(c.R, 24, -1, 1);
    float *dt = ku_alloc(18), *once = ku_alloc(18);
    pulse_embedding_backward(dt, c.R, ids, 8, 3, 6);
    ku_fd_check("embedding.dtable", emb_loss, &c, c.tab, dt, 18, 1e-2f, RTOL, ATOL);
    /* row 1 (id 1, never used) and row 3 get nothing; row 2 is the ordered sum of three rows */
    CHECK(dt[3] == 0.0f && dt[9] == 0.0f);
    CHECK(dt[6] == (c.R[0] + c.R[6]) + c.R[18]);
    memcpy(once, dt, sizeof(float) * 18);
    pulse_embedding_backward(dt, c.R, ids, 8, 3, 6);
    ku_check_accum("embedding.dtable", dt, once, 18);
    pulse_embedding_backward(NULL, c.R, ids, 8, 3, 6); /* NULL skipped */
    free(c.tab), free(c.out), free(c.R), free(dt), free(once);
}

/* ---------------- layernorm ---------------- */
typedef struct {
    int N, C;
    float *x, *w, *b, *out, *mean, *rstd, *R;
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = (ln_ctx *)p;
    pulse_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return ku_dot(c->out, c->R, (size_t)c->N * c->C);
}

static void grad_layernorm(int N, int C) {
    size_t n = (size_t)N * C;
    ln_ctx c = {N,           C,           ku_alloc(n), ku_alloc(C), ku_alloc(C),
                ku_alloc(n), ku_alloc(N), ku_alloc(N), ku_alloc(n)};
    ku_fill(c.x, n, -2, 2);
    ku_fill(c.w, C, 0.5f, 1.5f);
    ku_fill(c.b, C, -1, 1);
    ku_fill(c.R, n, -1, 1);
    ln_loss(&c);
    float *dx = ku_alloc(n), *dw = ku_alloc(C), *db = ku_alloc(C);
    pulse_layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, N, C);
    ku_fd_check("layernorm.dinp", ln_loss, &c, c.x, dx, n, 1e-2f, RTOL, ATOL);
    ku_fd_check("layernorm.dweight", ln_loss, &c, c.w, dw, C, 1e-2f, RTOL, ATOL);
    ku_fd_check("layernorm.dbias", ln_loss, &c, c.b, db, C, 1e-2f, RTOL, ATOL);
    float *o1 = ku_alloc(n), *o2 = ku_alloc(C), *o3 = ku_alloc(C);
    memcpy(o1, dx, sizeof(float) * n);
    memcpy(o2, dw, sizeof(float) * C);
    memcpy(o3, db, sizeof(float) * C);
    ln_loss(&c);
    pulse_layernorm_backward(dx, NULL, NULL, c.R, c.x, c.w, c.mean, c.rstd, N, C);
    pulse_layernorm_backward(NULL, dw, db, c.R, c.x, c.w, c.mean, c.rstd, N, C);
    ku_check_accum("layernorm.dinp", dx, o1, n);
    ku_check_accum("layernorm.dweight", dw, o2, C);
    ku_check_accum("layernorm.dbias", db, o3, C);
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R), free(dx), free(dw),
        free(db), free(o1), free(o2), free(o3);
}

/* ---------------- elementwise: gelu (both), relu, dropout ---------------- */
typedef struct {
    int kind; /* 0 gelu, 1 gelu tanh, 2 relu, 3 dropout */
    size_t n;
    float *x, *out, *R;
    uint8_t *mask;
} ew_ctx;

static double ew_loss(void *p) {
    ew_ctx *c = (ew_ctx *)p;
    if (c->kind == 0) pulse_gelu_forward(c->out, c->x, c->n);
    if (c->kind == 1) pulse_gelu_tanh_forward(c->out, c->x, c->n);
    if (c->kind == 2) pulse_relu_forward(c->out, c->x, c->n);
    if (c->kind == 3) {
        pulse_rng r;
        pulse_rng_seed(&r, 99); /* same seed every call: a fixed mask */
        pulse_dropout_forward(c->out, c->mask, c->x, c->n, 0.4f, &r);
    }
    return ku_dot(c->out, c->R, c->n);
}

static void grad_elementwise(void) {
    static const char *names[4] = {"gelu.dinp", "gelu_tanh.dinp", "relu.dinp", "dropout.dinp"};
    const size_t n = 257;
    for (int kind = 0; kind < 4; kind++) {
        ew_ctx c = {kind, n, ku_alloc(n), ku_alloc(n), ku_alloc(n), (uint8_t *)malloc(n)};
        if (kind == 2)
            ku_fill_away(c.x, n, 0.05f, 3.0f);
        else
            ku_fill(c.x, n, -4, 4);
        ku_fill(c.R, n, -1, 1);
        ew_loss(&c);
        float *dx = ku_alloc(n), *once = ku_alloc(n);
        if (kind == 0) pulse_gelu_backward(dx, c.x, c.R, n);
        if (kind == 1) pulse_gelu_tanh_backward(dx, c.x, c.R, n);
        if (kind == 2) pulse_relu_backward(dx, c.x, c.R, n);
        if (kind == 3) pulse_dropout_backward(dx, c.R, c.mask, n, 0.4f);
        ku_fd_check(names[kind], ew_loss, &c, c.x, dx, n, 1e-2f, RTOL, ATOL);
        memcpy(once, dx, sizeof(float) * n);
        if (kind == 0) pulse_gelu_backward(dx, c.x, c.R, n);
        if (kind == 1) pulse_gelu_tanh_backward(dx, c.x, c.R, n);
        if (kind == 2) pulse_relu_backward(dx, c.x, c.R, n);
        if (kind == 3) pulse_dropout_backward(dx, c.R, c.mask, n, 0.4f);
        ku_check_accum(names[kind], dx, once, n);
        free(c.x), free(c.out), free(c.R), free(c.mask), free(dx), free(once);
    }
}

/* ---------------- residual ---------------- */
typedef struct {
    size_t n;
    float *a, *b, *out, *R;
} res_ctx;

static double res_loss(void *p) {
    res_ctx *c = (res_ctx *)p;
    pulse_residual_forward(c->out, c->a, c->b, c->n);
    return ku_dot(c->out, c->R, c->n);
}

static void grad_residual(void) {
    const size_t n = 31;
    res_ctx c = {n, ku_alloc(n), ku_alloc(n), ku_alloc(n), ku_alloc(n)};
    ku_fill(c.a, n, -1, 1);
    ku_fill(c.b, n, -1, 1);
    ku_fill(c.R, n, -1, 1);
    float *da = ku_alloc(n), *db = ku_alloc(n), *once = ku_alloc(n);
    pulse_residual_backward(da, db, c.R, n);
    ku_fd_check("residual.da", res_loss, &c, c.a, da, n, 1e-2f, RTOL, ATOL);
    ku_fd_check("residual.db", res_loss, &c, c.b, db, n, 1e-2f, RTOL, ATOL);
    memcpy(once, da, sizeof(float) * n);
    pulse_residual_backward(da, NULL, c.R, n);
    ku_check_accum("residual.da", da, once, n);
    CHECK(memcmp(db, once, sizeof(float) * n) == 0); /* db untouched by the NULL call, equal to da's first */
    free(c.a), free(c.b), free(c.out), free(c.R), free(da), free(db), free(once);
}

/* ---------------- attention ---------------- */
typedef struct {
    int B, T, C, NH, causal;
    const uint8_t *km;
    float *q, *k, *v, *out, *att, *R;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = (att_ctx *)p;
    pulse_attention_forward(c->out, c->att, c->q, c->k, c->v, c->km, c->B, c->T, c->C, c->NH, c->causal);
    return ku_dot(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void grad_attention(int B, int T, int C, int NH, int causal, int use_mask) {
    size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    uint8_t *km = (uint8_t *)malloc((size_t)B * T);
    for (int i = 0; i < B * T; i++) km[i] = (i % 3) != 1;
    km[0] = 0; /* causal: query 0 of batch 0 sees nothing */
    if (B > 2)
        for (int t = 0; t < T; t++) km[2 * T + t] = 0; /* batch 2 fully masked */
    att_ctx c = {B,           T,           C,           NH,          causal,       use_mask ? km : NULL,
                 ku_alloc(n), ku_alloc(n), ku_alloc(n), ku_alloc(n), ku_alloc(na), ku_alloc(n)};
    ku_fill(c.q, n, -1.5f, 1.5f);
    ku_fill(c.k, n, -1.5f, 1.5f);
    ku_fill(c.v, n, -1, 1);
    ku_fill(c.R, n, -1, 1);
    att_loss(&c);
    float *dq = ku_alloc(n), *dk = ku_alloc(n), *dv = ku_alloc(n), *scr = ku_alloc(na);
    pulse_attention_backward(dq, dk, dv, scr, c.R, c.att, c.q, c.k, c.v, B, T, C, NH);
    char nm[96];
    snprintf(nm, sizeof nm, "attention(B%d T%d C%d NH%d causal%d mask%d).dq", B, T, C, NH, causal, use_mask);
    ku_fd_check(nm, att_loss, &c, c.q, dq, n, 1e-2f, RTOL, ATOL);
    nm[strlen(nm) - 1] = 'k';
    ku_fd_check(nm, att_loss, &c, c.k, dk, n, 1e-2f, RTOL, ATOL);
    nm[strlen(nm) - 1] = 'v';
    ku_fd_check(nm, att_loss, &c, c.v, dv, n, 1e-2f, RTOL, ATOL);
    if (use_mask && B > 2) {
        /* the fully masked batch row receives no gradient at all */
        int nz = 0;
        for (size_t i = 2 * (size_t)T * C; i < 3 * (size_t)T * C; i++)
            nz += dq[i] != 0 || dk[i] != 0 || dv[i] != 0;
        CHECK_MSG(nz == 0, "attention: fully masked row got gradient (%d)", nz);
    }
    /* accumulate, NULL skipped */
    float *o1 = ku_alloc(n), *o2 = ku_alloc(n), *o3 = ku_alloc(n);
    memcpy(o1, dq, sizeof(float) * n), memcpy(o2, dk, sizeof(float) * n), memcpy(o3, dv, sizeof(float) * n);
    att_loss(&c);
    pulse_attention_backward(dq, NULL, NULL, scr, c.R, c.att, c.q, c.k, c.v, B, T, C, NH);
    pulse_attention_backward(NULL, dk, dv, scr, c.R, c.att, c.q, c.k, c.v, B, T, C, NH);
    ku_check_accum("attention.dq", dq, o1, n);
    ku_check_accum("attention.dk", dk, o2, n);
    ku_check_accum("attention.dv", dv, o3, n);
    free(km), free(c.q), free(c.k), free(c.v), free(c.out), free(c.att), free(c.R), free(dq), free(dk),
        free(dv), free(scr), free(o1), free(o2), free(o3);
}

/* attention with dropout on the probabilities: the loss re-seeds the rng, so every FD evaluation draws the
 * same mask and the function is smooth in q, k, v. */
typedef struct {
    att_ctx a;
    float p;
    float *attd;
    uint8_t *dmask;
} attd_ctx;

static double attd_loss(void *p) {
    attd_ctx *c = (attd_ctx *)p;
    pulse_rng r;
    pulse_rng_seed(&r, 77);
    pulse_attention_dropout_forward(c->a.out, c->a.att, c->attd, c->dmask, c->a.q, c->a.k, c->a.v, c->a.km,
                                    c->a.B, c->a.T, c->a.C, c->a.NH, c->a.causal, c->p, &r);
    return ku_dot(c->a.out, c->a.R, (size_t)c->a.B * c->a.T * c->a.C);
}

static void grad_attention_dropout(int B, int T, int C, int NH, int causal, float p) {
    size_t n = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    uint8_t *km = (uint8_t *)malloc((size_t)B * T);
    for (int i = 0; i < B * T; i++) km[i] = (i % 4) != 2;
    attd_ctx c = {{B, T, C, NH, causal, km, ku_alloc(n), ku_alloc(n), ku_alloc(n), ku_alloc(n), ku_alloc(na),
                   ku_alloc(n)},
                  p,
                  p > 0 ? ku_alloc(na) : NULL, /* p == 0 (evaluation) neither writes nor reads them */
                  p > 0 ? (uint8_t *)malloc(na) : NULL};
    ku_fill(c.a.q, n, -1.5f, 1.5f);
    ku_fill(c.a.k, n, -1.5f, 1.5f);
    ku_fill(c.a.v, n, -1, 1);
    ku_fill(c.a.R, n, -1, 1);
    attd_loss(&c);
    /* forward: attd = att * mask / (1 - p) and some entries really dropped */
    int bad = 0, dropped = 0;
    for (size_t i = 0; p > 0 && i < na; i++) {
        float want = c.dmask[i] ? c.a.att[i] / (1.0f - p) : 0.0f;
        bad += fabsf(c.attd[i] - want) > 1e-6f;
        dropped += c.a.att[i] > 0 && !c.dmask[i];
    }
    CHECK_MSG(bad == 0, "attention dropout p=%g: %d probabilities differ from att*mask/(1-p)", (double)p,
              bad);
    if (p > 0) CHECK_MSG(dropped > 0, "attention dropout p=%g dropped nothing", (double)p);
    if (p == 0) { /* p = 0 reproduces the plain kernel */
        float *o = ku_alloc(n), *a2 = ku_alloc(na);
        pulse_attention_forward(o, a2, c.a.q, c.a.k, c.a.v, km, B, T, C, NH, causal);
        CHECK(memcmp(o, c.a.out, n * sizeof(float)) == 0);
        free(o), free(a2);
    }
    float *dq = ku_alloc(n), *dk = ku_alloc(n), *dv = ku_alloc(n), *scr = ku_alloc(na);
    pulse_attention_dropout_backward(dq, dk, dv, scr, c.a.R, c.a.att, c.attd, c.dmask, c.a.q, c.a.k, c.a.v, B,
                                     T, C, NH, p);
    char nm[96];
    snprintf(nm, sizeof nm, "attention_dropout(p%.2f B%d T%d C%d NH%d causal%d).dq", (double)p, B, T, C, NH,
             causal);
    ku_fd_check(nm, attd_loss, &c, c.a.q, dq, n, 1e-2f, RTOL, ATOL);
    nm[strlen(nm) - 1] = 'k';
    ku_fd_check(nm, attd_loss, &c, c.a.k, dk, n, 1e-2f, RTOL, ATOL);
    nm[strlen(nm) - 1] = 'v';
    ku_fd_check(nm, attd_loss, &c, c.a.v, dv, n, 1e-2f, RTOL, ATOL);
    free(km), free(c.a.q), free(c.a.k), free(c.a.v), free(c.a.out), free(c.a.att), free(c.a.R), free(c.attd),
        free(c.dmask), free(dq), free(dk), free(dv), free(scr);
}

/* ---------------- cross-entropy, BCE ---------------- */
typedef struct {
    int N, V;
    const int *tg;
    float *x;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = (ce_ctx *)p;
    return pulse_crossentropy_forward_backward(NULL, NULL, c->x, c->tg, c->N, c->V, 1.0f);
}

static void grad_crossentropy(void) {
    static const int tg[6] = {2, -1, 0, 8, 4, 4};
    const int N = 6, V = 9;
    ce_ctx c = {N, V, tg, ku_alloc(N * V)};
    ku_fill(c.x, N * V, -3, 3);
    float *d = ku_alloc(N * V), *d2 = ku_alloc(N * V);
    pulse_crossentropy_forward_backward(d, NULL, c.x, tg, N, V, 1.0f);
    ku_fd_check("crossentropy.dlogits", ce_loss, &c, c.x, d, (size_t)N * V, 1e-2f, RTOL, ATOL);
    /* SET semantics with scale: previous contents are overwritten */
    for (int i = 0; i < N * V; i++) d2[i] = 123.0f;
    pulse_crossentropy_forward_backward(d2, NULL, c.x, tg, N, V, 0.5f);
    int bad = 0;
    for (int i = 0; i < N * V; i++) bad += fabsf(d2[i] - 0.5f * d[i]) > 1e-7f;
    CHECK_MSG(bad == 0, "crossentropy: dlogits must be SET and scaled (%d)", bad);
    free(c.x), free(d), free(d2);
}

typedef struct {
    size_t n;
    float *x, *y;
} bce_ctx;

static double bce_loss(void *p) {
    bce_ctx *c = (bce_ctx *)p;
    return pulse_bce_logits_forward_backward(NULL, c->x, c->y, c->n, 1.0f);
}

static void grad_bce(void) {
    const size_t n = 23;
    bce_ctx c = {n, ku_alloc(n), ku_alloc(n)};
    ku_fill(c.x, n, -5, 5);
    for (size_t i = 0; i < n; i++) c.y[i] = (i % 4 == 0) ? 0.3f : (float)(i & 1);
    float *dx = ku_alloc(n);
    for (size_t i = 0; i < n; i++) dx[i] = 55.0f;
    pulse_bce_logits_forward_backward(dx, c.x, c.y, n, 1.0f);
    ku_fd_check("bce.dx", bce_loss, &c, c.x, dx, n, 1e-2f, RTOL, ATOL);
    free(c.x), free(c.y), free(dx);
}

/* ---------------- l2norm ---------------- */
typedef struct {
    int N, C;
    float *x, *out, *nr, *R;
} l2_ctx;

static double l2_loss(void *p) {
    l2_ctx *c = (l2_ctx *)p;
    pulse_l2norm_forward(c->out, c->nr, c->x, c->N, c->C, 1e-6f);
    return ku_dot(c->out, c->R, (size_t)c->N * c->C);
}

static void grad_l2norm(void) {
    const int N = 4, C = 7;
    size_t n = (size_t)N * C;
    l2_ctx c = {N, C, ku_alloc(n), ku_alloc(n), ku_alloc(N), ku_alloc(n)};
    ku_fill(c.x, n, -1, 1);
    ku_fill(c.R, n, -1, 1);
    l2_loss(&c);
    float *dx = ku_alloc(n), *once = ku_alloc(n);
    pulse_l2norm_backward(dx, c.R, c.out, c.nr, N, C);
    ku_fd_check("l2norm.dinp", l2_loss, &c, c.x, dx, n, 1e-2f, RTOL, ATOL);
    memcpy(once, dx, sizeof(float) * n);
    l2_loss(&c); /* the checker's last call left out/norms of a perturbed x */
    pulse_l2norm_backward(dx, c.R, c.out, c.nr, N, C);
    ku_check_accum("l2norm.dinp", dx, once, n);
    /* clamped row (||x|| < eps): out = x / eps is linear in x, gradient dout / eps */
    float xs[3] = {1e-4f, -2e-4f, 5e-5f}, os[3], ns[1], ds[3] = {0, 0, 0}, dout[3] = {0.3f, -1.0f, 2.0f};
    pulse_l2norm_forward(os, ns, xs, 1, 3, 1e-2f);
    pulse_l2norm_backward(ds, dout, os, ns, 1, 3);
    CHECK(fabsf(ns[0] - 1e-2f) < 1e-9f);
    CHECK_MSG(fabsf(ds[0] - 30.0f) < 1e-3f && fabsf(ds[1] + 100.0f) < 1e-3f && fabsf(ds[2] - 200.0f) < 1e-3f,
              "l2norm clamped grad %g %g %g", ds[0], ds[1], ds[2]);
    free(c.x), free(c.out), free(c.nr), free(c.R), free(dx), free(once);
}

int main(void) {
    pulse_rng_seed(&ku_rng, 42);
    grad_matmul(1, 7, 5);
    grad_matmul(6, 5, 3);
    grad_matmul(9, 12, 1);
    grad_embedding();
    grad_layernorm(5, 7);
    grad_layernorm(1, 16);
    grad_elementwise();
    grad_residual();
    for (int causal = 0; causal < 2; causal++)
        for (int mask = 0; mask < 2; mask++) grad_attention(3, 5, 6, 2, causal, mask);
    grad_attention(1, 2, 4, 1, 1, 0);
    grad_attention(2, 9, 12, 3, 1, 1);
    grad_attention_dropout(3, 6, 6, 2, 1, 0.3f);
    grad_attention_dropout(2, 7, 8, 2, 0, 0.5f);
    grad_attention_dropout(2, 5, 4, 1, 1, 0.0f);
    grad_crossentropy();
    grad_bce();
    grad_l2norm();
    return test_summary();
}
