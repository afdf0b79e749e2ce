/* tests/test_kernels_attend.c — the decoder's attention kernel (src/kernels/attend_f16.c) at every
 * instruction level the CPU has (AVX-512, AVX2, scalar) against its scalar reference, bit for bit: random
 * f16 q / K / V in a paged cache with shuffled blocks, contexts of 1..600 positions, sliding windows, R = 16
 * and 64 lanes, groups of 1..8 query heads, head_dim 64 and 128 (and 32, 80, 256 for the fallbacks), scores
 * large enough for exp's lane-by-lane range, and V holding inf (the P.V path that skips zero probabilities).
 */
#include "test.h"

#include <stdint.h>

#include "kernels/attend_f16.h"
#include "pulse/core.h"
#include "pulse/quant.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static float nrand(void) {
    const double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

enum { NCTX = 640, MAXHD = 256, MAXG = 8 };

typedef struct {
    int B, nkv, HD, n_blocks;
    size_t row, blk;
    uint16_t *k, *v; /* pools (n_blocks, B, nkv * HD) */
    /* B = 16: K, V transposed within each block (n_blocks, nkv * HD, B), as an LM context keeps them */
    uint16_t *kt, *vt;
    int v_finite; /* every V value finite */
    int blocks[NCTX];
} cache;

/* kt, vt = k, v transposed within each block of 16 (again after k or v change) */
static void cache_transpose(cache *c) {
    for (int b = 0; b < c->n_blocks; b++)
        for (int j = 0; j < c->B; j++)
            for (size_t r = 0; r < c->row; r++) {
                const size_t t = (size_t)b * c->blk + r * (size_t)c->B + (size_t)j,
                             o = (size_t)b * c->blk + (size_t)j * c->row + r;
                c->kt[t] = c->k[o];
                c->vt[t] = c->v[o];
            }
    c->v_finite = 1;
    for (size_t x = 0; x < (size_t)c->n_blocks * c->blk; x++)
        if ((c->v[x] & 0x7C00) == 0x7C00) c->v_finite = 0;
}

/* a paged cache of NCTX positions with blocks of B in shuffled order; values N(0, 1) * amp */
static void cache_fill(cache *c, int B, int HD, float amp) {
    c->B = B;
    c->nkv = 2;
    c->HD = HD;
    c->n_blocks = (NCTX + B - 1) / B;
    c->row = (size_t)c->nkv * HD;
    c->blk = (size_t)B * c->row;
    const size_t n = (size_t)c->n_blocks * c->blk;
    c->k = malloc(n * sizeof(uint16_t));
    c->v = malloc(n * sizeof(uint16_t));
    for (size_t x = 0; x < n; x++) {
        c->k[x] = pulse_fp32_to_fp16(nrand() * amp);
        c->v[x] = pulse_fp32_to_fp16(nrand());
    }
    c->kt = c->vt = NULL;
    if (B == 16) {
        c->kt = malloc(n * sizeof(uint16_t));
        c->vt = malloc(n * sizeof(uint16_t));
        cache_transpose(c);
    }
    for (int b = 0; b < c->n_blocks; b++) c->blocks[b] = b;
    for (int b = c->n_blocks - 1; b > 0; b--) {
        const int o = (int)(urand() * (b + 1)), t = c->blocks[b];
        c->blocks[b] = c->blocks[o];
        c->blocks[o] = t;
    }
}

static void cache_free(cache *c) {
    free(c->k);
    free(c->v);
    free(c->kt);
    free(c->vt);
}

static const pulse_isa LEVELS[] = {PULSE_ISA_AVX512, PULSE_ISA_AVX2, PULSE_ISA_SCALAR};
static int level_ok[3], bad_level[3], ran_level[3];
static int kt_kq[2];    /* cases run from the transposed K and V: AVX-512 (R = 16 and 64), AVX2 (R = 16) */
static pulse_isa g_was; /* the level this run is capped at (PULSE_ISA) */

/* one case: the reference, then each level; counts cases whose bits differ */
static void one_case(const cache *c, int ng, int lo, int p, int R, float qamp, float *scratch) {
    const int HD = c->HD;
    uint16_t q16[MAXG * MAXHD];
    float ref[MAXG * MAXHD], out[MAXG * MAXHD];
    for (int x = 0; x < ng * HD; x++) q16[x] = pulse_fp32_to_fp16(nrand() * qamp);
    /* kv head 1; with B = 16 also with the transposed K and V (kt_kq: the SIMD paths from them) */
    const pk_kv_span kv = {c->k + HD, c->v + HD, c->blocks, c->blk, c->row, c->B, NULL, NULL, 0};
    const pk_kv_span kvt = {c->k + HD,
                            c->v + HD,
                            c->blocks,
                            c->blk,
                            c->row,
                            c->B,
                            c->kt ? c->kt + (size_t)HD * 16 : NULL,
                            c->vt ? c->vt + (size_t)HD * 16 : NULL,
                            c->kt ? c->v_finite : 0};
    const float scale = 1.0f / sqrtf((float)HD);
    pk_attend_f16_ref(ref, q16, ng, HD, &kv, lo, p, R, scale, NCTX, scratch);
    for (int l = 0; l < 3; l++) {
        if (!level_ok[l]) continue;
        pulse_cpu_limit(LEVELS[l]);
        for (int w = 0; w < (c->kt ? 2 : 1); w++) {
            memset(out, 0xA5, sizeof out);
            pk_attend_f16(out, q16, ng, HD, w ? &kvt : &kv, lo, p, R, scale, NCTX, scratch);
            ran_level[l]++;
            if (w && l < 2 && (R == 16 || HD % 64 == 0) && pk_attend_wants_transposed(c->B, HD)) kt_kq[l]++;
            if (memcmp(out, ref, sizeof(float) * (size_t)ng * HD) != 0) {
                if (bad_level[l]++ < 5)
                    fprintf(stderr, "  %s%s differs: HD %d ng %d R %d B %d positions [%d, %d] q amp %g\n",
                            pulse_isa_name(LEVELS[l]), w ? " (transposed K)" : "", HD, ng, R, c->B, lo, p,
                            (double)qamp);
            }
        }
    }
    pulse_cpu_limit(g_was);
}

/* ref is finite and sums to about the mean of V (a sanity check that the reference itself attends) */
static void test_reference_sane(float *scratch) {
    cache c;
    cache_fill(&c, 16, 64, 1.0f);
    uint16_t q16[64];
    float out[64];
    for (int x = 0; x < 64; x++) q16[x] = 0; /* uniform attention: out = mean of V over [0, p] */
    const pk_kv_span kv = {c.k, c.v, c.blocks, c.blk, c.row, c.B, NULL, NULL, 0};
    pk_attend_f16_ref(out, q16, 1, 64, &kv, 0, 99, 64, 0.125f, NCTX, scratch);
    double worst = 0;
    for (int t = 0; t < 64; t++) {
        double m = 0;
        for (int j = 0; j < 100; j++)
            m += pulse_fp16_to_fp32(c.v[(size_t)c.blocks[j / 16] * c.blk + (size_t)(j % 16) * c.row + t]);
        m /= 100;
        if (fabs(m - out[t]) > worst) worst = fabs(m - out[t]);
    }
    CHECK_MSG(worst < 1e-3, "uniform attention differs from the mean of V by %g", worst);
    cache_free(&c);
}

int main(void) {
    const size_t need = pk_attend_scratch_floats(MAXG, NCTX, MAXHD);
    float *scratch = malloc(need * sizeof(float));
    const pulse_isa was = g_was = pulse_cpu_limit_get();
    for (int l = 0; l < 3; l++) {
        /* only the levels at or below the one this run is capped at (PULSE_ISA) */
        level_ok[l] = was == PULSE_ISA_NATIVE || LEVELS[l] <= was || LEVELS[l] == PULSE_ISA_SCALAR;
        if (level_ok[l] && pulse_cpu_limit(LEVELS[l]) != PULSE_OK) level_ok[l] = 0;
    }
    pulse_cpu_limit(was);
    test_reference_sane(scratch);

    static const int HDS[] = {64, 128}, BS[] = {16, 4, 7};
    for (int h = 0; h < 2; h++)
        for (int bi = 0; bi < 3; bi++) {
            cache c;
            cache_fill(&c, BS[bi], HDS[h], 1.0f);
            for (int p = 0; p < 600; p += bi == 0 ? 1 : 13)
                for (int R = 16; R <= 64; R *= 4) {
                    const int ng = 1 + (int)(urand() * MAXG);
                    int lo = 0;
                    if (urand() < 0.3) { /* a sliding window */
                        const int swa = 1 + (int)(urand() * (p + 40));
                        lo = p - swa + 1 > 0 ? p - swa + 1 : 0;
                    }
                    one_case(&c, ng, lo, p, R, urand() < 0.2 ? 24.0f : 1.0f, scratch);
                }
            for (int ng = 1; ng <= MAXG; ng++) /* every group size at a long context, both lane counts */
                for (int R = 16; R <= 64; R *= 4) one_case(&c, ng, 0, 599, R, 1.0f, scratch);
            cache_free(&c);
        }
    /* head dims of the other paths: 32 (AVX-512 R = 64 falls back), 80 (a multiple of 16 but not of 64: the
     * transposed R = 16 paths; R = 64: KQ by the reference, P.V from the transposed V), 256 */
    static const int HD2[] = {32, 80, 256};
    for (int h = 0; h < 3; h++) {
        cache c;
        cache_fill(&c, 16, HD2[h], 1.0f);
        for (int p = 0; p < 600; p += 37)
            for (int R = 16; R <= 64; R *= 4) one_case(&c, 1 + (int)(urand() * 4), 0, p, R, 1.0f, scratch);
        cache_free(&c);
    }
    /* V with inf and K large: the zero-skipping P.V fallback and exp's out-of-range lanes */
    {
        cache c;
        cache_fill(&c, 16, 64, 8.0f);
        for (int x = 0; x < 40; x++)
            c.v[(size_t)(urand() * (double)c.n_blocks) * c.blk + (size_t)(urand() * (double)(c.blk - 1))] =
                0x7C00;
        cache_transpose(&c);
        for (int p = 0; p < 600; p += 11)
            for (int R = 16; R <= 64; R *= 4) one_case(&c, 1 + (int)(urand() * MAXG), 0, p, R, 4.0f, scratch);
        cache_free(&c);
    }
    for (int l = 0; l < 3; l++) {
        if (!level_ok[l]) {
            printf("level %s: not on this CPU / run\n", pulse_isa_name(LEVELS[l]));
            continue;
        }
        printf("level %s: %d cases, %d differ\n", pulse_isa_name(LEVELS[l]), ran_level[l], bad_level[l]);
        CHECK_MSG(bad_level[l] == 0, "%s: %d of %d cases differ from the reference",
                  pulse_isa_name(LEVELS[l]), bad_level[l], ran_level[l]);
        CHECK(ran_level[l] > 1000);
    }
    for (int l = 0; l < 2; l++) { /* the SIMD KQ and P.V from the transposed copies ran at each level here */
        if (!level_ok[l]) continue;
        printf("%s KQ and P.V from the transposed K and V: %d cases\n", pulse_isa_name(LEVELS[l]), kt_kq[l]);
        pulse_cpu_limit(LEVELS[l]);
        CHECK(!pk_attend_wants_transposed(16, 64) || kt_kq[l] > 1000);
        CHECK(!pk_attend_wants_transposed(7, 64) && !pk_attend_wants_transposed(16, 72));
    }
    pulse_cpu_limit(was);
    free(scratch);
    return test_summary();
}
