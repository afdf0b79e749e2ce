/* kernels/attention_train_bf16.c — owns the bf16 form of the decoders' training attention (the shapes and
 * contract of pulse_causal_attention_forward / _backward, attention_train.c, which calls it when
 * pulse_attn_params.bf16 is set and the CPU has AVX512-BF16): every product on vdpbf16ps (bf16 pairs, fp32
 * sums), the softmax, lse, D and dS in fp32. The rounding points (tests/test_lm_grad.c's scalar reference
 * follows them; bf(x) = x rounded to bfloat16, ties to even):
 *   forward:  s_ij = scale sum_d bf(q_id) bf(k_jd); p = softmax_j (fp32); lse_i; o_i = sum_j bf(p_ij) bf(v_j)
 *   backward: p_ij = exp(s_ij - lse_i); dp_ij = sum_d bf(do_id) bf(v_jd); D_i = do_i . o_i (fp32);
 *             ds_ij = p_ij (dp_ij - D_i); dq_i += scale sum_j bf(ds_ij) bf(k_j);
 *             dk_j += scale sum_i bf(ds_ij) bf(q_i); dv_j += sum_i bf(p_ij) bf(do_i).
 * One work item per (sequence, kv head), as the fp32 form: its K and V are converted once for the group's
 * query heads; query rows go in tiles of 8 and a tile meets only the keys up to its last row (16-column
 * granularity, products in blocks of 48 columns). The backward sums dK and dV transposed, (HD, L) fp32 per
 * item: Q^T and dO^T (pairs along the rows) against the tiles' dS and P written as pairs of rows, the layout
 * that product reads, so no T x T matrix is ever transposed; they are added into dk / dv once per item.
 * Everything here is compiled for AVX-512 and only reached after the CPU check (pulse_bf16_supported). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/internal.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))),       \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
#endif

#include "kernels/avx512_math.h"
#include "kernels/bf16_tile.h"

/* c (8 rows, nc columns) over column blocks of 48: b's rows are ldb words wide, padded to 16 */
static void bt_rows(int np, const uint32_t *a, int lda, const uint32_t *b, int ldb, float *c, int ldc, int mr,
                    int nc, float alpha, int add) {
    for (int c0 = 0; c0 < nc; c0 += 48) {
        const int w = nc - c0, nv = w >= 48 ? 3 : (w + 15) / 16;
        if (nv == 3)
            pk_bf16_tile(3, np, a, lda, b + c0, ldb, c + c0, ldc, mr, w, alpha, add);
        else if (nv == 2)
            pk_bf16_tile(2, np, a, lda, b + c0, ldb, c + c0, ldc, mr, w, alpha, add);
        else
            pk_bf16_tile(1, np, a, lda, b + c0, ldb, c + c0, ldc, mr, w, alpha, add);
    }
}

/* X (L rows of HD at stride ld) as pairs along d: w[i][p] (rows >= L up to Lr zero) */
static void pack_rows_d(uint32_t *w, const float *x, size_t ld, int L, int Lr, int HD) {
    const int hp = HD / 2;
    for (int i = 0; i < Lr; i++)
        if (i < L)
            pk_pair_row(w + (size_t)i * hp, x + (size_t)i * ld, 2 * hp, hp);
        else
            memset(w + (size_t)i * hp, 0, sizeof(uint32_t) * (size_t)hp);
}

/* X transposed, pairs along d: w[p][j] = (x[j][2p], x[j][2p + 1]), j < Lc (zero past L); tmp: hp words */
static void pack_t_d(uint32_t *w, const float *x, size_t ld, int L, int Lc, int HD, uint32_t *tmp) {
    const int hp = HD / 2;
    const __m512i stride = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(Lc));
    for (int j = 0; j < Lc; j++) {
        if (j < L)
            pk_pair_row(tmp, x + (size_t)j * ld, 2 * hp, hp);
        else
            memset(tmp, 0, sizeof(uint32_t) * (size_t)hp);
        int p = 0;
        for (; p + 16 <= hp; p += 16)
            _mm512_i32scatter_epi32(w + (size_t)p * Lc + j, stride, _mm512_loadu_si512(tmp + p), 4);
        for (; p < hp; p++) w[(size_t)p * Lc + j] = tmp[p];
    }
}

/* X as pairs of rows: w[jp][d] = (x[2jp][d], x[2jp + 1][d]) for jp < np (rows >= L zero) */
static void pack_rows_pairs(uint32_t *w, const float *x, size_t ld, int L, int np, int HD) {
    for (int jp = 0; jp < np; jp++) {
        const int i0 = 2 * jp;
        uint32_t *d = w + (size_t)jp * HD;
        if (i0 + 1 < L)
            pk_pair_rows(d, x + (size_t)i0 * ld, x + (size_t)(i0 + 1) * ld, HD);
        else
            for (int e = 0; e < HD; e++) d[e] = i0 < L ? pk_pair1(x[(size_t)i0 * ld + e], 0.0f) : 0u;
    }
}

/* X transposed as pairs of rows: w[d][ip] = (x[2ip][d], x[2ip + 1][d]), ip < np (rows >= L zero); HD a
 * multiple of 16; tmp: HD words */
static void pack_t_pairs(uint32_t *w, const float *x, size_t ld, int L, int np, int HD, uint32_t *tmp) {
    const __m512i stride = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(np));
    for (int ip = 0; ip < np; ip++) {
        if (2 * ip < L)
            pack_rows_pairs(tmp, x + (size_t)(2 * ip) * ld, ld, L - 2 * ip, 1, HD);
        else
            memset(tmp, 0, sizeof(uint32_t) * (size_t)HD);
        for (int e = 0; e < HD; e += 16)
            _mm512_i32scatter_epi32(w + (size_t)e * np + ip, stride, _mm512_loadu_si512(tmp + e), 4);
    }
}

/* the visible keys of row i: [lo, i] */
static inline int key_lo(int i, int window) {
    return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
}

/* row's probabilities in place over n (a multiple of 16) columns, keys [lo, i] visible; returns the lse */
static float softmax_row(float *s, int n, int lo, int i) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(i),
                  idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 vmax = ninf;
    for (int j = 0; j < n; j += 16) {
        const __m512i jj = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
        const __mmask16 k = _mm512_cmpge_epi32_mask(jj, vlo) & _mm512_cmple_epi32_mask(jj, vhi);
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(ninf, k, s + j));
    }
    const float mx = _mm512_reduce_max_ps(vmax);
    const __m512 vm = _mm512_set1_ps(mx);
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        const __m512i jj = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
        const __mmask16 k = _mm512_cmpge_epi32_mask(jj, vlo) & _mm512_cmple_epi32_mask(jj, vhi);
        const __m512 e = _mm512_maskz_mov_ps(k, pk_exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm)));
        vsum = _mm512_add_ps(vsum, e);
        _mm512_storeu_ps(s + j, e);
    }
    const float sum = _mm512_reduce_add_ps(vsum); /* >= 1: the key i itself gives exp(0) */
    const __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (int j = 0; j < n; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
    return mx + logf(sum);
}

/* p_j = exp(s_j - l) on [lo, i], else 0; ds_j = p_j (dp_j - D), over n (a multiple of 16) columns */
static void dsoft_row(float *s, float *dp, int n, int lo, int i, float l, float D) {
    const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(i),
                  idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 vl = _mm512_set1_ps(l), vD = _mm512_set1_ps(D);
    for (int j = 0; j < n; j += 16) {
        const __m512i jj = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
        const __mmask16 k = _mm512_cmpge_epi32_mask(jj, vlo) & _mm512_cmple_epi32_mask(jj, vhi);
        const __m512 p = _mm512_maskz_mov_ps(k, pk_exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vl)));
        _mm512_storeu_ps(s + j, p);
        if (dp) _mm512_storeu_ps(dp + j, _mm512_mul_ps(p, _mm512_sub_ps(_mm512_loadu_ps(dp + j), vD)));
    }
}

static float dot_f32(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    for (int e = 0; e < n; e += 16) {
        const __mmask16 k = pk_lanes16(n - e);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + e), _mm512_maskz_loadu_ps(k, b + e), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* sizes of one item's buffers (T the longest sequence) */
typedef struct {
    int Lr, Lc, LcP, Lp, hp;
} bt_dims;

static bt_dims dims(int L, int HD) {
    bt_dims d;
    d.Lr = (L + 7) / 8 * 8;
    d.Lc = (L + 15) / 16 * 16;
    d.LcP = d.Lc / 2;
    d.Lp = d.Lr / 2;
    d.hp = HD / 2;
    return d;
}

/* one work item (sequence b, kv head kh): its heads, strides, length and buffer sizes (dt: for the longest
 * sequence, d: for this one) */
typedef struct {
    int NH, HD, grp, ldq, ldk, b, kh, L;
    size_t r0; /* the sequence's first row */
    bt_dims dt, d;
} bt_item;

static bt_item item_of(const pulse_attn_params *p, const int *lens, int T, int it) {
    bt_item w;
    const int NKV = p->n_head_kv;
    w.NH = p->n_head, w.HD = p->head_dim, w.grp = w.NH / NKV;
    w.ldq = w.NH * w.HD, w.ldk = NKV * w.HD;
    w.b = it / NKV, w.kh = it % NKV;
    w.L = lens ? (lens[w.b] < 0 ? 0 : lens[w.b] > T ? T : lens[w.b]) : T;
    w.r0 = p->row0 ? (size_t)p->row0[w.b] : (size_t)w.b * T;
    w.dt = dims(T, w.HD), w.d = dims(w.L, w.HD);
    return w;
}

void pk_attn_train_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                const int *lens, int B, int T, const pulse_attn_params *p, int it) {
    (void)B;
    const bt_item w = item_of(p, lens, T, it);
    const int NH = w.NH, HD = w.HD, grp = w.grp, ldq = w.ldq, ldk = w.ldk, b = w.b, kh = w.kh, L = w.L;
    const bt_dims dt = w.dt, d = w.d;
    /* words: Kt [hp][Lc], Vw [LcP][HD], Qw [Lr][hp], Pw [8][LcP], tmp [hp]; floats: S [8][Lc] */
    const size_t wK = (size_t)dt.hp * dt.Lc, wV = (size_t)dt.LcP * HD, wQ = (size_t)dt.Lr * dt.hp,
                 wP = 8 * (size_t)dt.LcP;
    const size_t words = wK + wV + wQ + wP + (size_t)dt.hp;
    unsigned char *base =
        pk_scratch(PK_SCR_ATT_TRAIN_BF16, sizeof(uint32_t) * words + sizeof(float) * 8 * dt.Lc);
    uint32_t *Kt = (uint32_t *)(void *)base;
    const size_t r0 = w.r0;
    for (int g = 0; g < grp; g++) {
        const int h = kh * grp + g;
        float *ob = out + r0 * ldq + (size_t)h * HD, *lb = lse + ((size_t)b * NH + h) * T;
        for (int i = L; i < T; i++) { /* padding rows (packed: the next sequence's rows, untouched) */
            if (!p->row0) memset(ob + (size_t)i * ldq, 0, sizeof(float) * (size_t)HD);
            lb[i] = 0.0f;
        }
        if (!Kt)
            for (int i = 0; i < L; i++)
                for (int e = 0; e < HD; e++) ob[(size_t)i * ldq + e] = NAN;
    }
    if (!Kt || L == 0) return;
    uint32_t *Vw = Kt + wK, *Qw = Vw + wV, *Pw = Qw + wQ, *tmp = Pw + wP;
    float *S = (float *)(void *)(base + sizeof(uint32_t) * words);
    const float *kb = k + r0 * ldk + (size_t)kh * HD, *vb = v + r0 * ldk + (size_t)kh * HD;
    pack_t_d(Kt, kb, (size_t)ldk, L, d.Lc, HD, tmp);
    pack_rows_pairs(Vw, vb, (size_t)ldk, L, d.LcP, HD);
    for (int g = 0; g < grp; g++) {
        const int h = kh * grp + g;
        float *ob = out + r0 * ldq + (size_t)h * HD, *lb = lse + ((size_t)b * NH + h) * T;
        pack_rows_d(Qw, q + r0 * ldq + (size_t)h * HD, (size_t)ldq, L, d.Lr, HD);
        for (int i0 = 0; i0 < L; i0 += 8) {
            const int mr = L - i0 < 8 ? L - i0 : 8, nk = i0 + mr, nkc = (nk + 15) / 16 * 16;
            bt_rows(d.hp, Qw + (size_t)i0 * d.hp, d.hp, Kt, d.Lc, S, d.Lc, 8, nkc, p->scale, 0);
            for (int r = 0; r < 8; r++) {
                float *s = S + (size_t)r * d.Lc;
                if (r < mr)
                    lb[i0 + r] = softmax_row(s, nkc, key_lo(i0 + r, p->window), i0 + r);
                else
                    memset(s, 0, sizeof(float) * (size_t)nkc);
                pk_pair_row(Pw + (size_t)r * d.LcP, s, nkc, nkc / 2);
            }
            bt_rows(nkc / 2, Pw, d.LcP, Vw, HD, ob + (size_t)i0 * ldq, ldq, mr, HD, 1.0f, 0);
        }
    }
}

void pk_attn_train_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v,
                                 const int *lens, int B, int T, const pulse_attn_params *p, int it) {
    (void)B;
    const bt_item w = item_of(p, lens, T, it);
    const int NH = w.NH, HD = w.HD, grp = w.grp, ldq = w.ldq, ldk = w.ldk, b = w.b, kh = w.kh, L = w.L;
    if (L == 0) return;
    const bt_dims dt = w.dt, d = w.d;
    /* words: Kt, Vt [hp][Lc]; Kw [LcP][HD]; Qw, dOw [Lr][hp]; Qt, dOt [HD][Lp]; dSp, Pp [Lp][Lc]; dSw
     * [8][LcP]; tmp [HD]; floats: S, dP [8][Lc]; dKt, dVt [HD][Lc] */
    const size_t wK = (size_t)dt.hp * dt.Lc, wKw = (size_t)dt.LcP * HD, wQ = (size_t)dt.Lr * dt.hp,
                 wQt = (size_t)HD * dt.Lp, wSp = (size_t)dt.Lp * dt.Lc, wS = 8 * (size_t)dt.LcP;
    const size_t words = 2 * wK + wKw + 2 * wQ + 2 * wQt + 2 * wSp + wS + (size_t)HD,
                 floats = 16 * (size_t)dt.Lc + 2 * (size_t)HD * dt.Lc;
    unsigned char *base =
        pk_scratch(PK_SCR_ATT_TRAIN_BF16, sizeof(uint32_t) * words + sizeof(float) * floats);
    if (!base) return; /* out of memory: no gradient rather than a crash */
    uint32_t *Kt = (uint32_t *)(void *)base;
    uint32_t *Vt = Kt + wK, *Kw = Vt + wK, *Qw = Kw + wKw, *dOw = Qw + wQ, *Qt = dOw + wQ, *dOt = Qt + wQt,
             *dSp = dOt + wQt, *Pp = dSp + wSp, *dSw = Pp + wSp, *tmp = dSw + wS;
    float *S = (float *)(void *)(base + sizeof(uint32_t) * words), *dP = S + 8 * (size_t)dt.Lc,
          *dKt = dP + 8 * (size_t)dt.Lc, *dVt = dKt + (size_t)HD * dt.Lc;
    const size_t r0 = w.r0, kvo = r0 * ldk + (size_t)kh * HD;
    const float *kb = k + kvo, *vb = v + kvo;
    const int need_ds = dq || dk;
    pack_t_d(Kt, kb, (size_t)ldk, L, d.Lc, HD, tmp);
    if (need_ds) pack_t_d(Vt, vb, (size_t)ldk, L, d.Lc, HD, tmp);
    if (dq) pack_rows_pairs(Kw, kb, (size_t)ldk, L, d.LcP, HD);
    if (dk) memset(dKt, 0, sizeof(float) * (size_t)HD * d.Lc);
    if (dv) memset(dVt, 0, sizeof(float) * (size_t)HD * d.Lc);
    for (int g = 0; g < grp; g++) {
        const int h = kh * grp + g;
        const size_t qo = r0 * ldq + (size_t)h * HD;
        const float *qb = q + qo, *ob = out + qo, *dob = dout + qo, *lb = lse + ((size_t)b * NH + h) * T;
        pack_rows_d(Qw, qb, (size_t)ldq, L, d.Lr, HD);
        if (need_ds) pack_rows_d(dOw, dob, (size_t)ldq, L, d.Lr, HD);
        if (dk) pack_t_pairs(Qt, qb, (size_t)ldq, L, d.Lp, HD, tmp);
        if (dv) pack_t_pairs(dOt, dob, (size_t)ldq, L, d.Lp, HD, tmp);
        for (int i0 = 0; i0 < L; i0 += 8) {
            const int mr = L - i0 < 8 ? L - i0 : 8, nk = i0 + mr, nkc = (nk + 15) / 16 * 16;
            bt_rows(d.hp, Qw + (size_t)i0 * d.hp, d.hp, Kt, d.Lc, S, d.Lc, 8, nkc, p->scale, 0);
            if (need_ds) bt_rows(d.hp, dOw + (size_t)i0 * d.hp, d.hp, Vt, d.Lc, dP, d.Lc, 8, nkc, 1.0f, 0);
            for (int r = 0; r < 8; r++) {
                float *s = S + (size_t)r * d.Lc, *dp = need_ds ? dP + (size_t)r * d.Lc : NULL;
                const int i = i0 + r;
                if (r < mr) {
                    const float D = need_ds ? dot_f32(dob + (size_t)i * ldq, ob + (size_t)i * ldq, HD) : 0.0f;
                    dsoft_row(s, dp, nkc, key_lo(i, p->window), i, lb[i], D);
                } else {
                    memset(s, 0, sizeof(float) * (size_t)nkc);
                    if (dp) memset(dp, 0, sizeof(float) * (size_t)nkc);
                }
            }
            /* this tile's 4 pair rows of dS and P, zero past the tile's keys up to the end of the last
             * 48-column block that reads these rows (block c0 reads rows i >= c0) */
            const int zend = (i0 / 48 * 48 + 48 < d.Lc ? i0 / 48 * 48 + 48 : d.Lc) - nkc;
            for (int rp = 0; rp < 4; rp++) {
                const size_t row = (size_t)(i0 / 2 + rp) * d.Lc;
                if (dk) {
                    pk_pair_rows(dSp + row, dP + (size_t)(2 * rp) * d.Lc, dP + (size_t)(2 * rp + 1) * d.Lc,
                                 nkc);
                    if (zend > 0) memset(dSp + row + nkc, 0, sizeof(uint32_t) * (size_t)zend);
                }
                if (dv) {
                    pk_pair_rows(Pp + row, S + (size_t)(2 * rp) * d.Lc, S + (size_t)(2 * rp + 1) * d.Lc, nkc);
                    if (zend > 0) memset(Pp + row + nkc, 0, sizeof(uint32_t) * (size_t)zend);
                }
            }
            if (dq) {
                for (int r = 0; r < 8; r++)
                    pk_pair_row(dSw + (size_t)r * d.LcP, dP + (size_t)r * d.Lc, nkc, nkc / 2);
                bt_rows(nkc / 2, dSw, d.LcP, Kw, HD, dq + qo + (size_t)i0 * ldq, ldq, mr, HD, p->scale, 1);
            }
        }
        /* dK^T (HD, Lc) += scale Q^T dS, dV^T += dO^T P: key block [c0, c0 + 48) meets rows i >= c0 only */
        for (int c0 = 0; c0 < d.Lc; c0 += 48) {
            const int ip0 = c0 / 2, np = d.Lp - ip0, nc = d.Lc - c0 < 48 ? d.Lc - c0 : 48;
            if (np <= 0) break;
            for (int e0 = 0; e0 < HD; e0 += 8) {
                if (dk)
                    bt_rows(np, Qt + (size_t)e0 * d.Lp + ip0, d.Lp, dSp + (size_t)ip0 * d.Lc + c0, d.Lc,
                            dKt + (size_t)e0 * d.Lc + c0, d.Lc, 8, nc, p->scale, 1);
                if (dv)
                    bt_rows(np, dOt + (size_t)e0 * d.Lp + ip0, d.Lp, Pp + (size_t)ip0 * d.Lc + c0, d.Lc,
                            dVt + (size_t)e0 * d.Lc + c0, d.Lc, 8, nc, 1.0f, 1);
            }
        }
    }
    for (int j = 0; j < L; j++) {
        for (int e = 0; e < HD; e++) {
            if (dk) dk[kvo + (size_t)j * ldk + e] += dKt[(size_t)e * d.Lc + j];
            if (dv) dv[kvo + (size_t)j * ldk + e] += dVt[(size_t)e * d.Lc + j];
        }
    }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
void pk_attn_train_bf16_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                const int *lens, int B, int T, const pulse_attn_params *p, int it) {
    (void)out, (void)lse, (void)q, (void)k, (void)v, (void)lens, (void)B, (void)T, (void)p, (void)it;
}
void pk_attn_train_bf16_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v,
                                 const int *lens, int B, int T, const pulse_attn_params *p, int it) {
    (void)dq, (void)dk, (void)dv, (void)dout, (void)out, (void)lse, (void)q, (void)k, (void)v, (void)lens;
    (void)B, (void)T, (void)p, (void)it;
}
#endif
