/* data/synth.c — owns the deterministic synthetic dataset: items whose titles are built from attribute words
 * ("Blue Silk Matte Lipstick"), users with latent tastes over the attributes that drift over time, a fixed
 * type-to-type transition structure (so the *order* carries signal a sequential model can learn) and a
 * log-normal item popularity (so a popularity baseline is sensible but beatable); optionally repeat
 * consumption (an earlier item of the user again, with probability `repeat` per step). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

enum { N_DIM = 4, N_WORDS = 16 }; /* color, material, style, type */

static const char *WORDS[N_DIM][N_WORDS] = {
    {"Red", "Blue", "Green", "Black", "White", "Pink", "Purple", "Gold", "Silver", "Coral", "Ivory", "Teal",
     "Amber", "Plum", "Navy", "Rose"},
    {"Silk", "Cotton", "Velvet", "Leather", "Linen", "Wool", "Denim", "Satin", "Bamboo", "Ceramic", "Glass",
     "Steel", "Oak", "Cashmere", "Suede", "Marble"},
    {"Matte", "Glossy", "Shimmer", "Classic", "Vintage", "Modern", "Sheer", "Metallic", "Rustic", "Soft",
     "Bold", "Pastel", "Frosted", "Polished", "Textured", "Minimal"},
    {"Lipstick", "Eyeliner", "Mascara", "Blush", "Scarf", "Handbag", "Candle", "Mug", "Lamp", "Pillow",
     "Wallet", "Necklace", "Bracelet", "Perfume", "Notebook", "Vase"},
};
static const char *TYPE_GROUP[N_WORDS] = {
    "Makeup", "Makeup", "Makeup",      "Makeup",  "Accessories", "Accessories", "Home",       "Home",
    "Home",   "Home",   "Accessories", "Jewelry", "Jewelry",     "Fragrance",   "Stationery", "Home"};
static const char *BRANDS[8] = {"Aurora",  "Nordic", "Lumen",  "Vela",
                                "Kestrel", "Orchid", "Basalt", "Meridian"};

pulse_synth_params pulse_synth_default_params(void) {
    pulse_synth_params p;
    p.n_users = 500;
    p.n_items = 300;
    p.n_attributes = 12;
    p.min_len = 5;
    p.max_len = 30;
    p.seed = 1;
    p.repeat = 0;
    return p;
}

pulse_status pulse_dataset_synthetic(const pulse_synth_params *pp, pulse_dataset **out) {
    *out = NULL;
    pulse_synth_params p = pp ? *pp : pulse_synth_default_params();
    if (p.n_users < 1 || p.n_items < 2 || p.n_items > 10000000 || p.n_users > 10000000)
        return pulse_set_error(PULSE_ERR_ARG,
                               "synthetic: expected 1 <= users <= 1e7 and 2 <= items <= 1e7, got %d, %d",
                               p.n_users, p.n_items);
    if (p.min_len < 3 || p.max_len < p.min_len || p.max_len > 100000)
        return pulse_set_error(PULSE_ERR_ARG,
                               "synthetic: expected 3 <= min_len <= max_len <= 100000, got %d, %d", p.min_len,
                               p.max_len);
    if (!(p.repeat >= 0 && p.repeat < 1))
        return pulse_set_error(PULSE_ERR_ARG, "synthetic: expected 0 <= repeat < 1, got %g",
                               (double)p.repeat);
    int V = p.n_attributes < 2 ? 2 : p.n_attributes > N_WORDS ? N_WORDS : p.n_attributes;
    pulse_rng rng;
    pulse_rng_seed(&rng, p.seed);
    pulse_dataset *ds = pd_new("synthetic", "synthetic");
    if (!ds) return PULSE_ERR_NOMEM;
    int NI = p.n_items, NU = p.n_users;
    ds->n_items = NI;
    pulse_status st = PULSE_OK;
    int(*attr)[N_DIM] = malloc(sizeof(int[N_DIM]) * (size_t)(NI + 1));
    float *pop = malloc(sizeof(float) * (size_t)(NI + 1));
    int *by_type = malloc(sizeof(int) * (size_t)NI), type_start[N_WORDS + 1] = {0};
    int succ[N_WORDS];
    float *w = malloc(sizeof(float) * (size_t)NI);
    int *seq = malloc(sizeof(int) * (size_t)p.max_len);
    size_t cap = (size_t)NU * (size_t)(p.min_len + p.max_len) / 2 + 16;
    ds->items = malloc(sizeof(int) * cap);
    ds->offs = calloc((size_t)NU + 1, sizeof(size_t));
    ds->user_key = calloc((size_t)NU, sizeof(char *));
    ds->item_key = calloc((size_t)NI + 1, sizeof(char *));
    pd_strmap titles;
    pd_strmap_init(&titles);
    int ft = pd_add_field(ds, "title"), fb = pd_add_field(ds, "brand"), fc = pd_add_field(ds, "categories");
    if (!attr || !pop || !by_type || !w || !seq || !ds->items || !ds->offs || !ds->user_key ||
        !ds->item_key || ft < 0 || fb < 0 || fc < 0) {
        st = pulse_set_error(PULSE_ERR_NOMEM, "synthetic: out of memory");
        goto done;
    }
    /* items */
    for (int it = 1; it <= NI && !st; it++) {
        for (int d = 0; d < N_DIM; d++) attr[it][d] = (int)pulse_rng_below(&rng, (uint32_t)V);
        pop[it] = expf(1.0f * pulse_rng_normal(&rng));
        char title[160], buf[160];
        int l = snprintf(title, sizeof title, "%s %s %s %s", WORDS[0][attr[it][0]], WORDS[1][attr[it][1]],
                         WORDS[2][attr[it][2]], WORDS[3][attr[it][3]]);
        int found = 0;
        st = pd_strmap_put(&titles, title, (size_t)l, it, &found, NULL);
        for (int k = 2; !st && found; k++) { /* make titles unique with a model number */
            l = snprintf(buf, sizeof buf, "%s No. %d", title, k);
            st = pd_strmap_put(&titles, buf, (size_t)l, it, &found, NULL);
            if (!found) memcpy(title, buf, (size_t)l + 1);
        }
        if (st) break;
        const char *brand = BRANDS[pulse_rng_below(&rng, 8)];
        char cats[96];
        int cl = snprintf(cats, sizeof cats, "Synthetic > %s > %s", TYPE_GROUP[attr[it][3]],
                          WORDS[3][attr[it][3]]);
        char key[16];
        int kl = snprintf(key, sizeof key, "%d", it);
        ds->field_val[ft][it] = pd_arena_strndup(&ds->arena, title, (size_t)l);
        ds->field_val[fb][it] = pd_arena_strndup(&ds->arena, brand, strlen(brand));
        ds->field_val[fc][it] = pd_arena_strndup(&ds->arena, cats, (size_t)cl);
        ds->item_key[it] = pd_arena_strndup(&ds->arena, key, (size_t)kl);
        if (!ds->field_val[ft][it] || !ds->field_val[fb][it] || !ds->field_val[fc][it] || !ds->item_key[it])
            st = PULSE_ERR_NOMEM;
    }
    if (st) goto done;
    ds->title_field = ft;
    /* items grouped by type; a type with no item falls back to any item */
    for (int it = 1; it <= NI; it++) type_start[attr[it][3] + 1]++;
    for (int t = 0; t < N_WORDS; t++) type_start[t + 1] += type_start[t];
    {
        int fill[N_WORDS];
        memcpy(fill, type_start, sizeof fill);
        for (int it = 1; it <= NI; it++) by_type[fill[attr[it][3]]++] = it;
    }
    /* the fixed "what comes next" structure: each type is usually followed by succ[type] */
    for (int t = 0; t < V; t++) succ[t] = t;
    for (int t = V - 1; t > 0; t--) {
        int j = (int)pulse_rng_below(&rng, (uint32_t)(t + 1));
        int x = succ[t];
        succ[t] = succ[j];
        succ[j] = x;
    }
    /* users */
    size_t n = 0;
    for (int u = 0; u < NU; u++) {
        float taste[N_DIM][N_WORDS];
        for (int d = 0; d < N_DIM; d++) {
            for (int v = 0; v < N_WORDS; v++) taste[d][v] = 0;
            for (int k = 0; k < 2; k++)
                taste[d][pulse_rng_below(&rng, (uint32_t)V)] += 1.0f + pulse_rng_float(&rng);
        }
        double mean = (p.max_len - p.min_len) / 4.0 + 1e-9;
        int len = p.min_len + (int)floor(-log(1.0 - pulse_rng_float(&rng)) * mean);
        if (len > p.max_len) len = p.max_len;
        if (n + (size_t)len > cap) {
            size_t nc = cap * 2 + (size_t)len;
            int *ni = realloc(ds->items, sizeof(int) * nc);
            if (!ni) {
                st = pulse_set_error(PULSE_ERR_NOMEM, "synthetic: out of memory");
                goto done;
            }
            ds->items = ni;
            cap = nc;
        }
        int prev = 0;
        for (int s = 0; s < len; s++) {
            /* drift: now and then a favourite colour or material changes */
            if (pulse_rng_float(&rng) < 0.1f) {
                int d = (int)pulse_rng_below(&rng, 2);
                for (int v = 0; v < N_WORDS; v++) taste[d][v] *= 0.5f;
                taste[d][pulse_rng_below(&rng, (uint32_t)V)] += 1.5f;
            }
            /* repeat consumption: now and then an earlier item of the user again (no draw when repeat = 0,
             * so the default dataset is the same stream as ever) */
            if (p.repeat > 0 && s > 0 && pulse_rng_float(&rng) < p.repeat) {
                int again = seq[pulse_rng_below(&rng, (uint32_t)s)];
                seq[s] = again;
                ds->items[n++] = again;
                prev = again;
                continue;
            }
            int type;
            if (prev && pulse_rng_float(&rng) < 0.6f) {
                type = succ[attr[prev][3]];
            } else { /* a type from the user's taste */
                float tot = 0;
                for (int v = 0; v < V; v++) tot += 0.1f + taste[3][v];
                float x = pulse_rng_float(&rng) * tot;
                type = V - 1;
                for (int v = 0; v < V; v++) {
                    x -= 0.1f + taste[3][v];
                    if (x < 0) {
                        type = v;
                        break;
                    }
                }
            }
            const int *cand = by_type + type_start[type];
            int nc = type_start[type + 1] - type_start[type];
            int all = 0;
            if (nc == 0) all = 1, nc = NI;
            float tot = 0;
            for (int k = 0; k < nc; k++) {
                int it = all ? k + 1 : cand[k];
                float sc = taste[0][attr[it][0]] + taste[1][attr[it][1]] + taste[2][attr[it][2]];
                if (prev && attr[it][0] == attr[prev][0]) sc += 0.5f;
                float wk = pop[it] * expf(1.5f * sc);
                for (int q = 0; q < s; q++)
                    if (seq[q] == it) wk = 0; /* no repeats */
                w[k] = wk;
                tot += wk;
            }
            int pick;
            if (tot <= 0) {
                pick = 1 + (int)pulse_rng_below(&rng, (uint32_t)NI);
            } else {
                float x = pulse_rng_float(&rng) * tot;
                int k = nc - 1;
                for (int q = 0; q < nc; q++) {
                    x -= w[q];
                    if (x < 0 && w[q] > 0) {
                        k = q;
                        break;
                    }
                }
                while (k > 0 && w[k] <= 0) k--;
                pick = all ? k + 1 : cand[k];
            }
            seq[s] = pick;
            ds->items[n++] = pick;
            prev = pick;
        }
        ds->offs[u + 1] = n;
        char key[16];
        int kl = snprintf(key, sizeof key, "%d", u + 1);
        ds->user_key[u] = pd_arena_strndup(&ds->arena, key, (size_t)kl);
        if (!ds->user_key[u]) {
            st = PULSE_ERR_NOMEM;
            goto done;
        }
    }
    ds->n_users = NU;
    ds->n_inter = n;
done:
    pd_strmap_free(&titles);
    free(attr);
    free(pop);
    free(by_type);
    free(w);
    free(seq);
    if (st) {
        pulse_dataset_free(ds);
        return st;
    }
    *out = ds;
    return PULSE_OK;
}
