/* tests/test_rationale_record.c — the per-user record on Amazon Beauty (every user; skipped without the
 * shared data, then on a synthetic dataset): the chosen item is the last training item, the history only
 * earlier training items (the last H, oldest first, within the token budget), similar users' items come from
 * their training prefixes, and the valid / test items of the user never appear in a prompt; the seeded choice
 * of users is stable and extends; the neighbours agree with pulse_sasrec_similar. */
#include "test.h"

#include "pulse/rationale.h"

static int in_range(const int *seq, int from, int to, int item) {
    for (int i = from; i < to; i++)
        if (seq[i] == item) return 1;
    return 0;
}

/* the leakage checks of one record: returns the number of violations */
static int check_record(const pulse_dataset *ds, const pulse_record *r, const pulse_record_params *p) {
    int bad = 0, len = 0;
    const int *seq = pulse_dataset_user_seq(ds, r->user, &len);
    const int tl = pulse_split_train_len(ds, r->user);
    bad += r->chosen != seq[tl - 1];
    bad += r->n_history < 1 || r->n_history > p->max_history;
    for (int i = 0; i < r->n_history; i++) bad += !in_range(seq, 0, tl - 1, r->history[i]);
    /* the last history item is the one right before the chosen item (when titled) */
    for (int i = 0; i < r->n_similar_items; i++) {
        int found = 0;
        for (int a = 0; a < r->n_similar_users && !found; a++) {
            int vl = 0;
            const int *vs = pulse_dataset_user_seq(ds, r->similar_users[a], &vl);
            found = in_range(vs, 0, pulse_split_train_len(ds, r->similar_users[a]), r->similar_items[i]);
        }
        bad += !found;
    }
    /* the prompt never shows the user's valid / test title unless the same title is a shown training item */
    char *ut = pulse_phase1_user_text(r);
    if (!ut) return bad + 1;
    for (int k = len - 2; k < len; k++) {
        const char *t = pulse_dataset_item_title(ds, seq[k]);
        if (!t || !*t || !strstr(ut, t)) continue;
        int shown = 0;
        const char *ct = pulse_dataset_item_title(ds, r->chosen);
        shown |= ct && strstr(ct, t) != NULL;
        for (int i = 0; i < r->n_history && !shown; i++) {
            const char *h = pulse_dataset_item_title(ds, r->history[i]);
            shown = h && strstr(h, t) != NULL;
        }
        for (int i = 0; i < r->n_similar_items && !shown; i++) {
            const char *h = pulse_dataset_item_title(ds, r->similar_items[i]);
            shown = h && strstr(h, t) != NULL;
        }
        if (!shown) {
            bad++;
            fprintf(stderr, "user %d: held-out title '%s' in the prompt\n", r->user, t);
        }
    }
    free(ut);
    bad += r->history_tok > p->history_tokens + 16; /* budget (a single item may exceed it alone) */
    bad += r->similar_tok > p->similar_tokens + 8;
    bad += !r->behaviour || strncmp(r->behaviour, "[CONTEXT] History: ", 19) != 0 ||
           !strstr(r->behaviour, "[CHOSEN_ITEM] ");
    return bad;
}

int main(void) {
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/data/amazon-beauty", test_shared_dir());
    pulse_dataset *ds = NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/sequences.txt", probe);
    if (pulse_file_exists(path)) {
        CHECK_OK(pulse_dataset_load(probe, NULL, &ds));
    } else {
        test_skip_part("no Amazon Beauty at %s: a synthetic dataset instead", probe);
        pulse_synth_params sp = pulse_synth_default_params();
        CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    }
    if (!ds) return test_summary();
    int nu = pulse_dataset_n_users(ds);
    pulse_record_params p = pulse_record_default_params();

    /* every user, no similar users */
    pulse_recorder *rec = NULL;
    CHECK_OK(pulse_recorder_new(ds, NULL, NULL, &p, &rec));
    int built = 0, bad = 0, eligible = 0;
    for (int u = 0; u < nu && rec; u++) {
        if (!pulse_record_eligible(ds, u)) continue;
        eligible++;
        pulse_record r;
        if (pulse_recorder_build(rec, u, &r) != PULSE_OK) {
            bad++;
            continue;
        }
        built++;
        bad += check_record(ds, &r, &p);
        pulse_record_free(&r);
    }
    printf("%d users, %d eligible, %d records built, %d violations\n", nu, eligible, built, bad);
    CHECK(built == eligible);
    CHECK(eligible > nu / 2);
    CHECK(bad == 0);
    /* an ineligible user is refused with a message */
    pulse_record r0;
    CHECK(pulse_recorder_build(rec, -1, &r0) == PULSE_ERR_ARG);
    CHECK(pulse_recorder_build(rec, nu, &r0) == PULSE_ERR_ARG);
    pulse_recorder_free(rec);

    /* a tight budget keeps only the most recent items */
    pulse_record_params tight = p;
    tight.history_tokens = 8;
    CHECK_OK(pulse_recorder_new(ds, NULL, NULL, &tight, &rec));
    for (int u = 0, seen = 0; u < nu && rec && seen < 200; u++) {
        if (!pulse_record_eligible(ds, u)) continue;
        seen++;
        pulse_record r;
        CHECK_OK(pulse_recorder_build(rec, u, &r));
        int len = 0;
        const int *seq = pulse_dataset_user_seq(ds, u, &len);
        CHECK(r.n_history >= 1);
        if (r.n_history == 1)
            CHECK(r.history[0] == seq[pulse_split_train_len(ds, u) - 2] ||
                  !pulse_dataset_item_title(ds, seq[pulse_split_train_len(ds, u) - 2]));
        pulse_record_free(&r);
    }
    pulse_recorder_free(rec);

    /* seeded user choice: stable, and a larger n extends a smaller one */
    int a[300], b[600], na = 0, nb = 0;
    CHECK_OK(pulse_record_select_users(ds, 300, 7, a, &na));
    CHECK_OK(pulse_record_select_users(ds, 600, 7, b, &nb));
    CHECK(na == 300 && nb == 600);
    CHECK(!memcmp(a, b, sizeof a));
    int c[300], nc = 0;
    CHECK_OK(pulse_record_select_users(ds, 300, 8, c, &nc));
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* similar users from a (small, untrained) SASRec: training items only, same neighbours as sasrec similar
     */
    pulse_sasrec_params sp = pulse_sasrec_default_params();
    sp.dim = 16;
    sp.maxlen = 20;
    sp.blocks = 1;
    pulse_sasrec *m = NULL;
    CHECK_OK(pulse_sasrec_create(pulse_dataset_n_items(ds), &sp, &m));
    CHECK_OK(pulse_recorder_new(ds, m, NULL, &p, &rec));
    int k = p.n_similar, checked = 0;
    bad = 0;
    /* the reference on the first 2,000 users (pulse_sasrec_similar is all-pairs) */
    int nref = nu < 2000 ? nu : 2000;
    float *vecs = malloc(sizeof(float) * (size_t)nu * 16), *cs = malloc(sizeof(float) * (size_t)nref * k);
    int *idx = malloc(sizeof(int) * (size_t)nref * k);
    CHECK_OK(pulse_sasrec_user_vectors(m, ds, PULSE_SPLIT_VALID, vecs));
    CHECK_OK(pulse_sasrec_similar(vecs, nref, 16, k, idx, cs));
    for (int i = 0; i < na && rec; i++) {
        pulse_record r;
        if (pulse_recorder_build(rec, a[i], &r) != PULSE_OK) {
            bad++;
            continue;
        }
        checked++;
        bad += check_record(ds, &r, &p);
        bad += r.n_similar_users != k;
        for (int j = 0; j < r.n_similar_users; j++) bad += r.similar_users[j] == a[i];
        CHECK(r.n_similar_items > 0);
        CHECK(r.similar_tok <= p.similar_tokens + 8);
        pulse_record_free(&r);
    }
    CHECK(checked == na);
    CHECK(bad == 0);
    pulse_recorder_free(rec);
    free(vecs);
    free(cs);
    free(idx);
    /* a model for another item count is refused */
    pulse_sasrec *m2 = NULL;
    CHECK_OK(pulse_sasrec_create(pulse_dataset_n_items(ds) + 1, &sp, &m2));
    CHECK(pulse_recorder_new(ds, m2, NULL, &p, &rec) == PULSE_ERR_ARG);
    pulse_sasrec_free(m2);
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);

    /* neighbours equal pulse_sasrec_similar's (all pairs) on the synthetic dataset */
    pulse_synth_params syp = pulse_synth_default_params();
    CHECK_OK(pulse_dataset_synthetic(&syp, &ds));
    CHECK_OK(pulse_sasrec_create(pulse_dataset_n_items(ds), &sp, &m));
    nu = pulse_dataset_n_users(ds);
    vecs = malloc(sizeof(float) * (size_t)nu * 16);
    cs = malloc(sizeof(float) * (size_t)nu * k);
    idx = malloc(sizeof(int) * (size_t)nu * k);
    CHECK_OK(pulse_sasrec_user_vectors(m, ds, PULSE_SPLIT_VALID, vecs));
    CHECK_OK(pulse_sasrec_similar(vecs, nu, 16, k, idx, cs));
    CHECK_OK(pulse_recorder_new(ds, m, NULL, &p, &rec));
    int same = 0, total = 0;
    for (int u = 0; u < nu && rec; u++) {
        if (!pulse_record_eligible(ds, u)) continue;
        pulse_record r;
        CHECK_OK(pulse_recorder_build(rec, u, &r));
        for (int j = 0; j < r.n_similar_users; j++) same += r.similar_users[j] == idx[(size_t)u * k + j];
        total += k;
        bad += check_record(ds, &r, &p);
        pulse_record_free(&r);
    }
    printf("synthetic: %d / %d neighbours as pulse_sasrec_similar\n", same, total);
    CHECK(total > 0 && same == total);
    CHECK(bad == 0);
    pulse_recorder_free(rec);
    free(vecs);
    free(cs);
    free(idx);
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
    return test_summary();
}
