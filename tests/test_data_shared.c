/* tests/test_data_shared.c — data on the real datasets in ../shared/data (skipped when absent): the counts of
 * every PROVENANCE.md, Beauty's first sequence and titles, MovieLens-100k's .inter ordered by time equal to
 * its sequences.txt, Toys in both id orders. When the data is absent, the same checks run on a synthetic
 * dataset written to disk. */
#include "test.h"

#include <unistd.h>

#include "pulse/data.h"

static pulse_dataset *load(const char *shared, const char *sub, const char *format) {
    char p[1024];
    snprintf(p, sizeof p, "%s/data/%s", shared, sub);
    if (!pulse_file_exists(p)) return NULL;
    pulse_data_params dp = pulse_data_default_params();
    dp.format = format;
    pulse_dataset *ds = NULL;
    double t0 = pulse_now();
    pulse_status st = pulse_dataset_load(p, &dp, &ds);
    CHECK_MSG(st == PULSE_OK, "%s: %s", p, pulse_last_error());
    if (ds) printf("%-40s %.3f s\n", sub, pulse_now() - t0);
    return ds;
}

static void expect_counts(const pulse_dataset *ds, int users, int items, size_t inter, int min_len,
                          int max_len) {
    pulse_data_stats s;
    pulse_dataset_stats(ds, &s);
    CHECK_MSG(s.users == users && s.items == items && s.interactions == inter && s.min_len == min_len &&
                  s.max_len == max_len,
              "%s: %d users, %d items, %zu interactions, len %d..%d", pulse_dataset_name(ds), s.users,
              s.items, s.interactions, s.min_len, s.max_len);
}

int main(void) {
    pulse_progress_set_quiet(1);
    const char *shared = test_shared_dir();
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/data/amazon-beauty/sequences.txt", shared);
    if (!pulse_file_exists(probe)) {
        test_skip_part("no shared data at %s; checking a synthetic dataset on disk instead", shared);
        pulse_synth_params sp = pulse_synth_default_params();
        pulse_dataset *a = NULL, *b = NULL;
        CHECK_OK(pulse_dataset_synthetic(&sp, &a));
        char dir[] = "/tmp/pulse_shared_XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        if (a) CHECK_OK(pulse_dataset_write_s3rec(a, dir));
        CHECK_OK(pulse_dataset_load(dir, NULL, &b));
        if (a && b) {
            pulse_data_stats sa, sb;
            pulse_dataset_stats(a, &sa);
            pulse_dataset_stats(b, &sb);
            CHECK(sa.users == sb.users && sa.items == sb.items && sa.interactions == sb.interactions);
        }
        pulse_dataset_free(a);
        pulse_dataset_free(b);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
        return test_summary();
    }

    /* Amazon Beauty (S3-Rec / P5): 22,363 users, 12,101 items, 198,502 interactions */
    double t0 = pulse_now();
    pulse_dataset *ds = load(shared, "amazon-beauty", NULL);
    double dt = pulse_now() - t0;
    if (ds) {
        CHECK(strcmp(pulse_dataset_format(ds), "s3rec") == 0);
        expect_counts(ds, 22363, 12101, 198502, 5, 204);
        CHECK_MSG(dt < 2.0, "loading Beauty took %.2f s", dt);
        int w[] = {1, 2, 3, 4, 5}, len;
        const int *s = pulse_dataset_user_seq(ds, 0, &len);
        CHECK(len == 5 && memcmp(s, w, sizeof w) == 0);
        CHECK(strcmp(pulse_dataset_item_title(ds, 1),
                     "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce") == 0);
        CHECK(strcmp(pulse_dataset_item_field(ds, 4, "asin"), "7806397051") == 0);
        CHECK(strcmp(pulse_dataset_item_field(ds, 1, "brand"), "OPI") == 0);
        pulse_data_stats st;
        pulse_dataset_stats(ds, &st);
        CHECK(st.titled_items == 12101);
        CHECK_NEAR(st.avg_len, 8.88, 0.005);
        pulse_dataset_free(ds);
    }
    /* Sports and Toys (both id orders) */
    ds = load(shared, "amazon-sports", NULL);
    if (ds) expect_counts(ds, 35598, 18357, 296337, 5, 296);
    pulse_dataset_free(ds);
    ds = load(shared, "amazon-toys", NULL);
    if (ds) expect_counts(ds, 19412, 11924, 167597, 5, 550);
    pulse_dataset_free(ds);
    ds = load(shared, "amazon-toys/s3rec_original/Toys_and_Games.txt", NULL);
    if (ds) expect_counts(ds, 19412, 11924, 167597, 5, 550);
    pulse_dataset_free(ds);

    /* LastFM (LLaRA) */
    ds = load(shared, "lastfm-llara", NULL);
    if (ds) {
        CHECK(strcmp(pulse_dataset_format(ds), "lastfm") == 0);
        expect_counts(ds, 1220, 4606, 56794, 4, 986);
        CHECK(strcmp(pulse_dataset_item_title(ds, 1), "Morcheeba") == 0);
        CHECK(strcmp(pulse_dataset_item_key(ds, 1), "0") == 0);
        int n_test = 0, n_val = 0;
        for (int u = 0; u < pulse_dataset_n_users(ds); u++) {
            const char *g = pulse_dataset_user_field(ds, u, "split");
            n_test += g && strcmp(g, "test") == 0;
            n_val += g && strcmp(g, "val") == 0;
        }
        CHECK(n_test == 122 && n_val == 122); /* LLaRA: 976 train / 122 val / 122 test users */
        pulse_dataset_free(ds);
    }

    /* MovieLens-100k: the RecBole .inter ordered by timestamp (ties in file order) is exactly sequences.txt
     */
    pulse_dataset *rb = load(shared, "movielens-100k", NULL);
    pulse_dataset *sq = load(shared, "movielens-100k", "s3rec");
    if (rb && sq) {
        CHECK(strcmp(pulse_dataset_format(rb), "recbole") == 0);
        expect_counts(rb, 943, 1682, 100000, 20, 737);
        expect_counts(sq, 943, 1682, 100000, 20, 737);
        int same = pulse_dataset_n_users(rb) == pulse_dataset_n_users(sq);
        for (int u = 0; same && u < pulse_dataset_n_users(rb); u++) {
            int la, lb;
            const int *a = pulse_dataset_user_seq(rb, u, &la), *b = pulse_dataset_user_seq(sq, u, &lb);
            same = la == lb && memcmp(a, b, sizeof(int) * (size_t)la) == 0 &&
                   strcmp(pulse_dataset_user_key(rb, u), pulse_dataset_user_key(sq, u)) == 0;
        }
        CHECK(same);
        CHECK(strcmp(pulse_dataset_item_title(rb, 1), "Toy Story") == 0);
        CHECK(strcmp(pulse_dataset_item_field(rb, 1, "release_year"), "1995") == 0);
        CHECK(pulse_dataset_rating(rb, 0, 0) >= 1.0f && pulse_dataset_timestamp(rb, 0, 0) > 8e8);
    }
    pulse_dataset_free(rb);
    pulse_dataset_free(sq);
    return test_summary();
}
