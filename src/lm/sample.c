/* lm/sample.c — owns token sampling: repetition penalty, greedy, top-k, top-p and temperature (llama.cpp's
 * order: penalties, top-k, top-p on the untempered distribution, temperature, draw), seeded with pulse_rng
 * so that a (seed, logits) pair always gives the same token; and log-probabilities. Nothing here copies or
 * sorts the whole vocabulary unless top-k/top-p needs it: greedy is one vectorised argmax over the logits,
 * plain temperature draws in vocabulary order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/simd.h"
#include "lm/lm_internal.h"

struct pulse_lm_sampler {
    pulse_lm_sampler_params p;
    int n_vocab;
    pulse_rng rng;
    float *work; /* (n_vocab) logits after penalties */
    int *idx;    /* (n_vocab) candidate ids */
    void *tmp;   /* (n_vocab) sort scratch */
};

pulse_lm_sampler_params pulse_lm_sampler_default_params(void) {
    pulse_lm_sampler_params p;
    p.temp = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 42;
    return p;
}

pulse_status pulse_lm_sampler_new(const pulse_lm_sampler_params *p, int n_vocab, pulse_lm_sampler **out) {
    *out = NULL;
    if (n_vocab <= 0) return pulse_set_error(PULSE_ERR_ARG, "sampler: n_vocab %d", n_vocab);
    if (p->top_p <= 0.0f || p->repeat_penalty <= 0.0f || !isfinite(p->temp))
        return pulse_set_error(PULSE_ERR_ARG, "sampler: top_p %g and repeat_penalty %g must be > 0", p->top_p,
                               p->repeat_penalty);
    pulse_lm_sampler *s = pulse_calloc(1, sizeof *s);
    if (!s) return PULSE_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->work = pulse_malloc(sizeof(float) * (size_t)n_vocab);
    s->idx = pulse_malloc(sizeof(int) * (size_t)n_vocab);
    s->tmp = pulse_malloc(sizeof(float) * 2 * (size_t)n_vocab);
    if (!s->work || !s->idx || !s->tmp) {
        pulse_lm_sampler_free(s);
        return PULSE_ERR_NOMEM;
    }
    pulse_rng_seed(&s->rng, p->seed);
    *out = s;
    return PULSE_OK;
}

void pulse_lm_sampler_free(pulse_lm_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->idx);
    free(s->tmp);
    free(s);
}

void pulse_lm_sampler_seed(pulse_lm_sampler *s, uint64_t seed) {
    pulse_rng_seed(&s->rng, seed);
}

int lm_argmax(const float *x, int n) {
    int i = 0, best = 0;
#ifdef __AVX2__
    if (n >= 16 && pc_simd_v3) { /* not under pulse_cpu_limit(PULSE_ISA_SCALAR) */
        /* per lane: the first index of the lane's maximum (strictly greater replaces), then across lanes the
         * largest value, ties to the lowest index: the same answer as the scalar loop */
        __m256 bv = _mm256_loadu_ps(x);
        __m256i bi = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), ci = bi;
        const __m256i step = _mm256_set1_epi32(8);
        for (i = 8; i + 8 <= n; i += 8) {
            ci = _mm256_add_epi32(ci, step);
            __m256 v = _mm256_loadu_ps(x + i);
            __m256 gt = _mm256_cmp_ps(v, bv, _CMP_GT_OQ);
            bv = _mm256_blendv_ps(bv, v, gt);
            bi = _mm256_blendv_epi8(bi, ci, _mm256_castps_si256(gt));
        }
        float lv[8];
        int li[8];
        _mm256_storeu_ps(lv, bv);
        _mm256_storeu_si256((__m256i *)li, bi);
        best = li[0];
        for (int l = 1; l < 8; l++)
            if (lv[l] > x[best] || (lv[l] == x[best] && li[l] < best)) best = li[l];
    }
#endif
    for (; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct {
    float v;
    int id;
} cand;
static int cmp_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->id - y->id; /* ties: lower id first (deterministic) */
}

/* Move the k largest of w[idx[0..n)] to the front, sorted descending (partial quickselect, then sort). */
static void top_k_sort(const float *w, int *idx, cand *tmp, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi && k < n) {
        float piv = w[idx[(lo + hi) / 2]];
        int i = lo, j = hi;
        while (i <= j) {
            while (w[idx[i]] > piv) i++;
            while (w[idx[j]] < piv) j--;
            if (i <= j) {
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
    for (int i = 0; i < k; i++) {
        tmp[i].v = w[idx[i]];
        tmp[i].id = idx[i];
    }
    qsort(tmp, (size_t)k, sizeof(cand), cmp_desc);
    for (int i = 0; i < k; i++) idx[i] = tmp[i].id;
}

int pulse_lm_sample(pulse_lm_sampler *s, const float *logits, const int *history, int n_history) {
    const int V = s->n_vocab;
    const int penalise = s->p.repeat_penalty != 1.0f && history && n_history > 0;
    if (s->p.temp <= 0.0f && !penalise) return lm_argmax(logits, V); /* greedy: no copy */
    float *w = s->work;
    memcpy(w, logits, sizeof(float) * (size_t)V);
    if (penalise) {
        int from =
            s->p.repeat_last_n > 0 && n_history > s->p.repeat_last_n ? n_history - s->p.repeat_last_n : 0;
        for (int i = from; i < n_history; i++) {
            int t = history[i];
            if (t < 0 || t >= V) continue;
            /* each distinct token once: penalise only at its first occurrence in the window */
            int seen = 0;
            for (int j = from; j < i && !seen; j++) seen = history[j] == t;
            if (seen) continue;
            w[t] = w[t] > 0 ? w[t] / s->p.repeat_penalty : w[t] * s->p.repeat_penalty;
        }
    }
    if (s->p.temp <= 0.0f) return lm_argmax(w, V);
    if ((s->p.top_k <= 0 || s->p.top_k >= V) && s->p.top_p >= 1.0f) {
        /* plain temperature: draw from softmax(w / T) in vocabulary order, no sort */
        const float mx = w[lm_argmax(w, V)], it = 1.0f / s->p.temp;
        double z = 0;
        for (int i = 0; i < V; i++) {
            w[i] = expf((w[i] - mx) * it);
            z += w[i];
        }
        double r = (double)pulse_rng_float(&s->rng) * z, cum = 0;
        int last = 0;
        for (int i = 0; i < V; i++) {
            if (w[i] <= 0) continue;
            cum += w[i];
            last = i;
            if (r < cum) return i;
        }
        return last;
    }
    int n = V;
    for (int i = 0; i < V; i++) s->idx[i] = i;
    int k = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : V;
    if (k == V && s->p.top_p < 1.0f) {
        /* top-p over the whole vocabulary: sort only the head that can matter (grow until it covers p) */
        k = 64 < V ? 64 : V;
    }
    for (;;) {
        top_k_sort(w, s->idx, s->tmp, n, k);
        if (s->p.top_p >= 1.0f || k == V || (s->p.top_k > 0 && k == s->p.top_k)) break;
        /* does the sorted head reach top_p of the full mass? */
        double mx = w[s->idx[0]], z = 0, head = 0;
        for (int i = 0; i < V; i++) z += exp((double)w[i] - mx);
        for (int i = 0; i < k; i++) head += exp((double)w[s->idx[i]] - mx);
        if (head / z >= s->p.top_p) break;
        k = k * 4 < V ? k * 4 : V;
    }
    n = k;
    if (s->p.top_p < 1.0f) {
        /* nucleus over the untempered softmax of the remaining candidates (full normaliser) */
        double mx = w[s->idx[0]], z = 0;
        const int full = s->p.top_k > 0 ? n : V;
        if (full == V)
            for (int i = 0; i < V; i++) z += exp((double)w[i] - mx);
        else
            for (int i = 0; i < n; i++) z += exp((double)w[s->idx[i]] - mx);
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += exp((double)w[s->idx[i]] - mx) / z;
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    /* temperature, then draw */
    double mx = w[s->idx[0]], z = 0;
    for (int i = 0; i < n; i++) z += exp(((double)w[s->idx[i]] - mx) / s->p.temp);
    double r = (double)pulse_rng_float(&s->rng) * z, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += exp(((double)w[s->idx[i]] - mx) / s->p.temp);
        if (r < cum) return s->idx[i];
    }
    return s->idx[n - 1];
}

double pulse_lm_logprob(const float *logits, int n_vocab, int token) {
    const float mx = logits[lm_argmax(logits, n_vocab)];
    double z = 1e-300; /* the max term alone contributes 1 */
    for (int i = 0; i < n_vocab; i++) z += exp((double)logits[i] - mx);
    return (double)logits[token] - mx - log(z);
}
