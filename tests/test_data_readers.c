/* tests/test_data_readers.c — data: every reader on small fixture files written here (S3-Rec + items.tsv,
 * LastFM, RecBole with timestamp ties, Amazon 2018 JSON lines + meta, plain and .gz, with duplicates and a
 * k-core cascade), splits, max_users, format detection, and the S3-Rec / RecBole writers round-tripping. */
#include "test.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pulse/data.h"

static char g_dir[64];

static const char *P(const char *sub, const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) & 3;
    if (sub && *sub) {
        snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, sub);
        mkdir(buf[k], 0755);
        snprintf(buf[k], sizeof buf[k], "%s/%s/%s", g_dir, sub, name);
    } else
        snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

static void write_gz(const char *path, const char *s) {
    gzFile g = gzopen(path, "wb");
    if (!g) return;
    gzwrite(g, s, (unsigned)strlen(s));
    gzclose(g);
}

static int seq_is(const pulse_dataset *ds, int u, const int *want, int n) {
    int len;
    const int *s = pulse_dataset_user_seq(ds, u, &len);
    if (!s || len != n) return 0;
    return memcmp(s, want, sizeof(int) * (size_t)n) == 0;
}

static int same_sequences(const pulse_dataset *a, const pulse_dataset *b) {
    if (pulse_dataset_n_users(a) != pulse_dataset_n_users(b)) return 0;
    if (pulse_dataset_n_interactions(a) != pulse_dataset_n_interactions(b)) return 0;
    for (int u = 0; u < pulse_dataset_n_users(a); u++) {
        int la, lb;
        const int *sa = pulse_dataset_user_seq(a, u, &la), *sb = pulse_dataset_user_seq(b, u, &lb);
        if (la != lb || memcmp(sa, sb, sizeof(int) * (size_t)la) != 0) return 0;
    }
    return 1;
}

static const char *REVIEWS =
    "{\"reviewerID\": \"u1\", \"asin\": \"B\", \"unixReviewTime\": 5, \"overall\": 4.0, \"summary\": "
    "\"Nice\", "
    "\"reviewText\": \"I like B\"}\n"
    "{\"reviewerID\": \"u2\", \"asin\": \"A\", \"unixReviewTime\": 1, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u1\", \"asin\": \"A\", \"unixReviewTime\": 5, \"overall\": 3.0, \"reviewText\": "
    "\"ok\"}\n"
    "{\"reviewerID\": \"u1\", \"asin\": \"C\", \"unixReviewTime\": 3, \"overall\": 2.0}\n"
    "{\"reviewerID\": \"u2\", \"asin\": \"B\", \"unixReviewTime\": 2, \"overall\": 1.0}\n"
    "{\"reviewerID\": \"u2\", \"asin\": \"C\", \"unixReviewTime\": 3, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u3\", \"asin\": \"D\", \"unixReviewTime\": 1, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u3\", \"asin\": \"E\", \"unixReviewTime\": 2, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u4\", \"asin\": \"E\", \"unixReviewTime\": 1, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u4\", \"asin\": \"A\", \"unixReviewTime\": 2, \"overall\": 5.0}\n"
    "{\"reviewerID\": \"u1\", \"asin\": \"A\", \"unixReviewTime\": 5, \"overall\": 1.0}\n"
    "\n";
static const char *META = "{\"asin\": \"X\", \"title\": \"Unused\"}\n"
                          "{\"asin\": \"A\", \"title\": \"Alpha Cream\", \"brand\": \"Acme\", \"category\": "
                          "[\"Beauty\", \"Skin\"]}\n"
                          "{\"asin\": \"A\", \"title\": \"Alpha Duplicate\"}\n"
                          "{\"title\": \"Bravo Brush\", \"asin\": \"B\"}\n"
                          "{\"asin\": \"C\", \"title\": \"Charlie \\\"Gloss\\\"\", \"category\": "
                          "[\"Beauty\", \"Makeup\", \"Lips\"]}\n";

static void check_amazon(const char *dir, int keep_text) {
    pulse_data_params dp = pulse_data_default_params();
    dp.min_interactions = 2;
    dp.keep_text = keep_text;
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(dir, &dp, &ds));
    if (!ds) return;
    CHECK(strcmp(pulse_dataset_format(ds), "amazon2018") == 0);
    /* k-core cascade: D dropped -> u3 left with one -> E falls to one -> u4 left with one: users u1, u2 */
    CHECK(pulse_dataset_n_users(ds) == 2);
    CHECK(pulse_dataset_n_items(ds) == 3);
    CHECK(pulse_dataset_n_interactions(ds) == 6); /* the duplicate (u1, A, 5) is gone */
    /* chronological, ties in file order: u1 = C(3), B(5), A(5); items numbered as they first occur */
    int w0[] = {1, 2, 3}, w1[] = {3, 2, 1};
    CHECK(seq_is(ds, 0, w0, 3));
    CHECK(seq_is(ds, 1, w1, 3));
    CHECK(strcmp(pulse_dataset_user_key(ds, 0), "u1") == 0 &&
          strcmp(pulse_dataset_user_key(ds, 1), "u2") == 0);
    CHECK(strcmp(pulse_dataset_item_key(ds, 1), "C") == 0 && strcmp(pulse_dataset_item_key(ds, 3), "A") == 0);
    CHECK(pulse_dataset_rating(ds, 0, 0) == 2.0f && pulse_dataset_rating(ds, 0, 1) == 4.0f &&
          pulse_dataset_rating(ds, 0, 2) == 3.0f);
    CHECK(pulse_dataset_timestamp(ds, 1, 0) == 1.0 && pulse_dataset_timestamp(ds, 0, 2) == 5.0);
    CHECK(isnan(pulse_dataset_rating(ds, 0, 3)));
    /* titles etc. from the meta file: the first line of an asin wins */
    const char *t3 = pulse_dataset_item_title(ds, 3), *t1 = pulse_dataset_item_title(ds, 1);
    CHECK(t3 && strcmp(t3, "Alpha Cream") == 0);
    CHECK(t1 && strcmp(t1, "Charlie \"Gloss\"") == 0);
    const char *cat = pulse_dataset_item_field(ds, 3, "categories"),
               *br = pulse_dataset_item_field(ds, 3, "brand");
    CHECK(cat && strcmp(cat, "Beauty > Skin") == 0);
    CHECK(br && strcmp(br, "Acme") == 0);
    const char *s01 = pulse_dataset_review_summary(ds, 0, 1), *x01 = pulse_dataset_review_text(ds, 0, 1);
    if (keep_text) {
        CHECK(s01 && strcmp(s01, "Nice") == 0);
        CHECK(x01 && strcmp(x01, "I like B") == 0);
        const char *x02 = pulse_dataset_review_text(ds, 0, 2);
        CHECK(x02 && strcmp(x02, "ok") == 0); /* the first of the duplicate rows is kept */
        CHECK(pulse_dataset_review_summary(ds, 0, 2) == NULL);
    } else {
        CHECK(s01 == NULL && x01 == NULL);
    }
    pulse_dataset_free(ds);
}

int main(void) {
    pulse_progress_set_quiet(1);
    snprintf(g_dir, sizeof g_dir, "/tmp/pulse_readers_XXXXXX");
    if (!mkdtemp(g_dir)) {
        CHECK(0);
        return test_summary();
    }

    /* ---- S3-Rec: sequences.txt + items.tsv (columns in any order, extra ones kept) ---- */
    write_text(P("s3", "sequences.txt"), "1 1 2 3 4\r\n2  5\t1 6\n10 2 3 5 6 7 8\n");
    write_text(P("s3", "items.tsv"), "asin\titem_id\ttitle\tbrand\textra\n"
                                     "A1\t1\tRed Lipstick\tAcme\tx\n"
                                     "A2\t2\tBlue Mascara\t\ty\n"
                                     "A8\t8\tGreen Candle\tZed\n"
                                     "A9\t9\tNot in the data\tZed\tz\n");
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(P("s3", ""), NULL, &ds));
    if (ds) {
        CHECK(strcmp(pulse_dataset_format(ds), "s3rec") == 0);
        CHECK(strcmp(pulse_dataset_name(ds), "s3") == 0);
        CHECK(pulse_dataset_n_users(ds) == 3 && pulse_dataset_n_items(ds) == 8);
        CHECK(pulse_dataset_n_interactions(ds) == 13);
        int w1[] = {5, 1, 6};
        CHECK(seq_is(ds, 1, w1, 3));
        CHECK(strcmp(pulse_dataset_user_key(ds, 2), "10") == 0);
        CHECK(strcmp(pulse_dataset_item_key(ds, 7), "7") == 0);
        CHECK(strcmp(pulse_dataset_item_title(ds, 2), "Blue Mascara") == 0);
        CHECK(pulse_dataset_item_title(ds, 3) == NULL); /* no row for item 3 */
        CHECK(pulse_dataset_item_title(ds, 0) == NULL && pulse_dataset_item_title(ds, 9) == NULL);
        CHECK(strcmp(pulse_dataset_item_field(ds, 1, "asin"), "A1") == 0);
        CHECK(pulse_dataset_user_field(ds, 0, "split") == NULL);
        CHECK(strcmp(pulse_dataset_item_field(ds, 1, "extra"), "x") == 0);
        CHECK(strcmp(pulse_dataset_item_field(ds, 8, "brand"), "Zed") == 0);
        CHECK(pulse_dataset_item_field(ds, 8, "extra") == NULL); /* missing trailing field */
        CHECK(pulse_dataset_item_field(ds, 1, "nope") == NULL);
        CHECK(pulse_dataset_n_fields(ds) == 4 && strcmp(pulse_dataset_field_name(ds, 0), "asin") == 0);
        CHECK(isnan(pulse_dataset_timestamp(ds, 0, 0)) && isnan(pulse_dataset_rating(ds, 0, 0)));
        /* splits */
        int hl = -1;
        CHECK(pulse_split_target(ds, 0, PULSE_SPLIT_TEST, &hl) == 4 && hl == 3);
        CHECK(pulse_split_target(ds, 0, PULSE_SPLIT_VALID, &hl) == 3 && hl == 2);
        CHECK(pulse_split_train_len(ds, 0) == 2);
        CHECK(pulse_split_target(ds, 1, PULSE_SPLIT_TEST, &hl) == 6 && hl == 2);
        CHECK(pulse_split_target(ds, 1, PULSE_SPLIT_VALID, &hl) == 1 && hl == 1);
        CHECK(pulse_split_target(ds, 5, PULSE_SPLIT_TEST, &hl) == 0 && hl == 0);
        CHECK(pulse_split_target(ds, 0, PULSE_SPLIT_TRAIN, &hl) == 0);
        pulse_data_stats st;
        pulse_dataset_stats(ds, &st);
        CHECK(st.users == 3 && st.items == 8 && st.interactions == 13 && st.min_len == 3 && st.max_len == 6);
        CHECK_NEAR(st.avg_len, 13.0 / 3, 1e-12);
        CHECK(st.titled_items == 3);

        /* writers round-trip: S3-Rec and RecBole (timestamp = position) give back the same sequences */
        CHECK_OK(pulse_dataset_write_s3rec(ds, P("s3copy/nested", "")));
        pulse_dataset *c = NULL;
        CHECK_OK(pulse_dataset_load(P("s3copy/nested", ""), NULL, &c));
        if (c) {
            CHECK(same_sequences(ds, c));
            CHECK(strcmp(pulse_dataset_user_key(c, 2), "10") == 0);
            CHECK(strcmp(pulse_dataset_item_title(c, 8), "Green Candle") == 0);
            pulse_dataset_free(c);
        }
        CHECK_OK(pulse_dataset_write_recbole(ds, P("rb", ""), "rb"));
        c = NULL;
        CHECK_OK(pulse_dataset_load(P("rb", ""), NULL, &c));
        if (c) {
            CHECK(strcmp(pulse_dataset_format(c), "recbole") == 0);
            CHECK(same_sequences(ds, c));
            CHECK(pulse_dataset_timestamp(c, 2, 5) == 5.0);
            CHECK(strcmp(pulse_dataset_item_title(c, 2), "Blue Mascara") == 0);
            pulse_dataset_free(c);
        }
        CHECK(pulse_dataset_write_recbole(ds, P("rb", ""), "a/b") == PULSE_ERR_ARG);
        pulse_dataset_free(ds);
    }
    /* a file named directly, max_users, format override */
    pulse_data_params dp = pulse_data_default_params();
    dp.max_users = 2;
    ds = NULL;
    CHECK_OK(pulse_dataset_load(P("s3", "sequences.txt"), &dp, &ds));
    if (ds) {
        CHECK(pulse_dataset_n_users(ds) == 2 && pulse_dataset_n_interactions(ds) == 7);
        CHECK(strcmp(pulse_dataset_name(ds), "s3") == 0);
        pulse_dataset_free(ds);
    }
    dp = pulse_data_default_params();
    dp.format = "lastfm";
    CHECK(pulse_dataset_load(P("s3", ""), &dp, &ds) != PULSE_OK); /* no sequences.tsv there */
    dp.format = "bogus";
    CHECK(pulse_dataset_load(P("s3", ""), &dp, &ds) == PULSE_ERR_ARG);
    CHECK(pulse_dataset_load(P("nothing-here", ""), NULL, &ds) == PULSE_ERR_IO);
    mkdir(P("empty", ""), 0755);
    CHECK(pulse_dataset_load(P("empty", ""), NULL, &ds) == PULSE_ERR_IO);
    CHECK(strstr(pulse_last_error(), "expected a dataset folder") != NULL);

    /* ---- LastFM (LLaRA): 0-based ids become id+1; names from artist_name ---- */
    write_text(P("fm", "sequences.tsv"), "user_idx\tsplit\titems\n1\ttrain\t0 1 2 3\n2\tval\t3 2 4 0\n");
    write_text(P("fm", "items.tsv"),
               "item_id\tartist_name\n0\tMorcheeba\n1\tEnigma\n2\tCafé Del Mar\n3\tABBA\n"
               "4\tBjörk\n");
    ds = NULL;
    CHECK_OK(pulse_dataset_load(P("fm", ""), NULL, &ds));
    if (ds) {
        CHECK(strcmp(pulse_dataset_format(ds), "lastfm") == 0);
        CHECK(pulse_dataset_n_users(ds) == 2 && pulse_dataset_n_items(ds) == 5);
        int w[] = {4, 3, 5, 1};
        CHECK(seq_is(ds, 1, w, 4));
        CHECK(strcmp(pulse_dataset_item_title(ds, 1), "Morcheeba") == 0);
        CHECK(strcmp(pulse_dataset_item_title(ds, 5), "Björk") == 0);
        CHECK(strcmp(pulse_dataset_item_key(ds, 1), "0") == 0);
        CHECK(strcmp(pulse_dataset_user_field(ds, 1, "split"), "val") == 0);
        CHECK(strcmp(pulse_dataset_user_field(ds, 0, "split"), "train") == 0);
        CHECK(pulse_dataset_user_field(ds, 0, "age") == NULL &&
              pulse_dataset_user_field(ds, 2, "split") == NULL);
        pulse_dataset_free(ds);
    }

    /* ---- RecBole: columns in any order, ties stable, numeric tokens in numeric order ---- */
    write_text(P("ml", "toy.inter"), "timestamp:float\titem_id:token\trating:float\tuser_id:token\n"
                                     "100\t10\t4\t9\n"
                                     "50\t2\t3\t9\n"
                                     "100\t9\t5\t9\n" /* tie with item 10 at t=100: file order */
                                     "7\t2\t1\t10\n"
                                     "3\t10\t2\t10\n"
                                     "8\t9\t2\t10\n");
    write_text(P("ml", "toy.item"), "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
                                    "2\tToy Story\tAnimation\n10\tHeat\tAction Crime\n99\tUnused\tNone\n");
    ds = NULL;
    CHECK_OK(pulse_dataset_load(P("ml", ""), NULL, &ds));
    if (ds) {
        CHECK(strcmp(pulse_dataset_format(ds), "recbole") == 0);
        CHECK(pulse_dataset_n_users(ds) == 2 && pulse_dataset_n_items(ds) == 3);
        /* items: "2" -> 1, "9" -> 2, "10" -> 3; users "9" then "10" */
        int w0[] = {1, 3, 2}, w1[] = {3, 1, 2};
        CHECK(seq_is(ds, 0, w0, 3));
        CHECK(seq_is(ds, 1, w1, 3));
        CHECK(strcmp(pulse_dataset_user_key(ds, 1), "10") == 0);
        CHECK(strcmp(pulse_dataset_item_key(ds, 3), "10") == 0);
        CHECK(strcmp(pulse_dataset_item_title(ds, 3), "Heat") == 0);
        CHECK(pulse_dataset_item_title(ds, 2) == NULL);
        CHECK(strcmp(pulse_dataset_item_field(ds, 1, "class"), "Animation") == 0);
        CHECK(pulse_dataset_rating(ds, 0, 1) == 4.0f && pulse_dataset_timestamp(ds, 1, 0) == 3.0);
        pulse_dataset_free(ds);
    }
    /* non-numeric tokens keep their order of first appearance */
    write_text(P("tok", "t.inter"), "user_id:token\titem_id:token\ttimestamp:float\n"
                                    "bob\tz\t2\nann\ty\t1\nbob\ty\t1\nann\tz\t3\n");
    ds = NULL;
    CHECK_OK(pulse_dataset_load(P("tok", ""), NULL, &ds));
    if (ds) {
        int w0[] = {2, 1}, w1[] = {2, 1};
        CHECK(strcmp(pulse_dataset_user_key(ds, 0), "bob") == 0 &&
              strcmp(pulse_dataset_item_key(ds, 1), "z") == 0);
        CHECK(seq_is(ds, 0, w0, 2) && seq_is(ds, 1, w1, 2));
        pulse_dataset_free(ds);
    }

    /* ---- Amazon 2018: plain and gzip, with and without review text ---- */
    write_text(P("amz", "Beauty_5.json"), REVIEWS);
    write_text(P("amz", "meta_Beauty.json"), META);
    check_amazon(P("amz", ""), 0);
    check_amazon(P("amz", ""), 1);
    write_gz(P("amzgz", "reviews.jsonl.gz"), REVIEWS);
    write_gz(P("amzgz", "meta_All_Beauty.json.gz"), META);
    check_amazon(P("amzgz", ""), 1);
    /* the default 5-core leaves nobody here: a clear error, no crash */
    CHECK(pulse_dataset_load(P("amz", ""), NULL, &ds) == PULSE_ERR_RANGE);
    CHECK(strstr(pulse_last_error(), "5-core") != NULL);
    /* k = 1 keeps everyone (duplicates still dropped) */
    dp = pulse_data_default_params();
    dp.min_interactions = 1;
    ds = NULL;
    CHECK_OK(pulse_dataset_load(P("amz", ""), &dp, &ds));
    if (ds) {
        CHECK(pulse_dataset_n_users(ds) == 4 && pulse_dataset_n_interactions(ds) == 10);
        pulse_dataset_free(ds);
    }

    /* remove the fixture tree */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
