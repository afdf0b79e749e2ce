/* eval/pop.c — owns the popularity baseline: items scored by their count in the training prefixes (all but
 * the last two items of every sequence), the same list for every user. */
#include <stdlib.h>
#include <string.h>

#include "pulse/eval.h"

struct pulse_pop {
    int n_items;
    float *count; /* [n_items + 1] */
};

pulse_status pulse_pop_fit(const pulse_dataset *ds, pulse_pop **out) {
    *out = NULL;
    pulse_pop *p = calloc(1, sizeof *p);
    int ni = pulse_dataset_n_items(ds);
    if (p) p->count = calloc((size_t)ni + 1, sizeof(float));
    if (!p || !p->count) {
        free(p);
        return pulse_set_error(PULSE_ERR_NOMEM, "pop: out of memory");
    }
    p->n_items = ni;
    for (int u = 0; u < pulse_dataset_n_users(ds); u++) {
        int len;
        const int *s = pulse_dataset_user_seq(ds, u, &len);
        int tl = pulse_split_train_len(ds, u);
        for (int i = 0; i < tl; i++) p->count[s[i]] += 1.0f;
    }
    *out = p;
    return PULSE_OK;
}

void pulse_pop_free(pulse_pop *p) {
    if (!p) return;
    free(p->count);
    free(p);
}

pulse_status pulse_pop_score(void *ctx, int n, const int *users, const int *const *hist, const int *hist_len,
                             float *scores) {
    (void)users;
    (void)hist;
    (void)hist_len;
    const pulse_pop *p = ctx;
    size_t row = (size_t)p->n_items + 1;
    for (int b = 0; b < n; b++) memcpy(scores + row * (size_t)b, p->count, sizeof(float) * row);
    return PULSE_OK;
}
