/* tests/test_data_malformed.c — data: malformed inputs give PULSE_ERR_PARSE (or IO) with "file:line: expected
 * ..., found ..." naming the right line, never a crash: sequences.txt (non-numeric token, empty line, huge
 * ids, duplicate user, NUL byte, ...), items.tsv, RecBole .inter, LastFM, Amazon JSON, a truncated .gz, and
 * random garbage files. */
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pulse/data.h"

static char g_dir[64];

static void write_bytes(const char *name, const char *s, size_t n) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fwrite(s, 1, n, f);
    fclose(f);
}

static void clear_dir(void) {
    const char *names[] = {"sequences.txt", "items.tsv", "sequences.tsv", "x.inter",
                           "x.item",        "r.json",    "meta_r.json",   "r.json.gz"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
}

/* load g_dir; expect status want and an error message containing every given fragment */
static void expect_fail(int line, pulse_status want, const char *frag1, const char *frag2) {
    pulse_dataset *ds = NULL;
    pulse_status st = pulse_dataset_load(g_dir, NULL, &ds);
    const char *e = pulse_last_error();
    int ok = st == want && ds == NULL && strstr(e, frag1) && (!frag2 || strstr(e, frag2));
    if (!ok) fprintf(stderr, "case at line %d: status %d, message: %s\n", line, (int)st, e);
    CHECK(ok);
    pulse_dataset_free(ds);
}

static void seq_case(int line, const char *content, size_t n, const char *frag1, const char *frag2) {
    clear_dir();
    write_bytes("sequences.txt", content, n);
    expect_fail(line, PULSE_ERR_PARSE, frag1, frag2);
}
#define SEQ(content, f1, f2) seq_case(__LINE__, content, sizeof(content) - 1, f1, f2)

int main(void) {
    pulse_progress_set_quiet(1);
    snprintf(g_dir, sizeof g_dir, "/tmp/pulse_bad_XXXXXX");
    if (!mkdtemp(g_dir)) {
        CHECK(0);
        return test_summary();
    }

    /* ---- sequences.txt ---- */
    SEQ("1 2 3\n2 4 x5 6\n", "sequences.txt:2: expected an item id", "found 'x5'");
    SEQ("1 2 3\n\n2 4 5\n", "sequences.txt:2: expected 'user item item ...', found an empty line", NULL);
    SEQ("1 2 3\n   \n", "sequences.txt:2:", "empty line");
    SEQ("1 2 3\n2 3 99999999999\n", "sequences.txt:2: expected an item id <= 100000000",
        "found '99999999999'");
    SEQ("1 2 2147483648\n", "sequences.txt:1: expected an item id <= 100000000", "2147483648");
    SEQ("1 2 100000001\n", "sequences.txt:1: expected an item id <= 100000000", "100000001");
    SEQ("1 2 99999999999999999999999999999\n", "sequences.txt:1:", "expected an item id <= 100000000");
    SEQ("1 2 3\n2 3 4\n1 5 6\n", "sequences.txt:3: expected a new user id",
        "found '1' again (first on line 1)");
    SEQ("1 2 3\n01 5 6\n", "sequences.txt:2: expected a new user id", "first on line 1");
    SEQ("1 2 3\n2 3\0 4\n", "sequences.txt:2: expected text, found a NUL byte", NULL);
    SEQ("1 2 3\n7\n", "sequences.txt:2: expected at least one item", NULL);
    SEQ("1 -2 3\n", "sequences.txt:1: expected an item id", "found '-2'");
    SEQ("1 2.0 3\n", "sequences.txt:1: expected an item id", "found '2.0'");
    SEQ("1 0 3\n", "sequences.txt:1: expected an item id >= 1 (0 is padding)", NULL);
    SEQ("u1 2 3\n", "sequences.txt:1: expected a user id", "found 'u1'");
    SEQ("99999999999 2 3\n", "sequences.txt:1: expected a user id <= 2147483647", NULL);
    SEQ("", "sequences.txt:1: expected 'user item item ...', found an empty file", NULL);
    SEQ("1 2 3\n2 3 4 \xff\xfe\n", "sequences.txt:2: expected an item id", NULL);

    /* accepted variants: CRLF, tabs and repeated spaces, no final newline */
    clear_dir();
    write_bytes("sequences.txt", "1\t2  3\r\n2 3 4", 13);
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_load(g_dir, NULL, &ds));
    CHECK(ds && pulse_dataset_n_users(ds) == 2 && pulse_dataset_n_interactions(ds) == 4);
    pulse_dataset_free(ds);

    /* ---- items.tsv next to a good sequences.txt ---- */
    const char *good = "1 1 2 3\n2 2 3 1\n";
    struct {
        const char *items, *f1, *f2;
    } it_cases[] = {
        {"id\ttitle\n1\tx\n", "items.tsv:1: expected a header with an 'item_id' column", NULL},
        {"item_id\ttitle\n1\tA\n1\tB\n", "items.tsv:3: expected each item id once", "found '1' again"},
        {"item_id\ttitle\nabc\tA\n", "items.tsv:2: expected an item id", "found 'abc'"},
        {"item_id\ttitle\n1\tA\textra\n", "items.tsv:2: expected 2 tab-separated fields, found 3", NULL},
        {"item_id\ttitle\n2\tA\0B\n", "items.tsv:2: expected text, found a NUL byte", NULL},
        {"", "items.tsv:1: expected a header line, found an empty file", NULL},
    };
    for (size_t i = 0; i < sizeof it_cases / sizeof it_cases[0]; i++) {
        clear_dir();
        write_bytes("sequences.txt", good, strlen(good));
        size_t n = strlen(it_cases[i].items);
        if (i == 4) n = 20; /* includes the NUL */
        write_bytes("items.tsv", it_cases[i].items, n);
        expect_fail(__LINE__ + (int)i, PULSE_ERR_PARSE, it_cases[i].f1, it_cases[i].f2);
    }

    /* ---- RecBole .inter ---- */
    struct {
        const char *inter, *f1, *f2;
    } rb[] = {
        {"user:token\titem_id:token\n1\t2\n", "x.inter:1: expected a RecBole header with user_id:token",
         NULL},
        {"user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n", "x.inter:2: expected a timestamp",
         "found 'soon'"},
        {"user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\n",
         "x.inter:3: expected 3 tab-separated "
         "fields, found 2",
         NULL},
        {"user_id:token\titem_id:token\trating:float\n1\t2\tNaN\n", "x.inter:2: expected a rating", NULL},
        {"user_id:token\titem_id:token\n1\t\n", "x.inter:2: expected a user and an item token", NULL},
        {"user_id:token\titem_id:token\n1\t2\n\n1\t3\n", "x.inter:3: expected an interaction row", NULL},
        {"user_id:token\titem_id:token\n", "x.inter:2: expected interaction rows, found none", NULL},
    };
    for (size_t i = 0; i < sizeof rb / sizeof rb[0]; i++) {
        clear_dir();
        write_bytes("x.inter", rb[i].inter, strlen(rb[i].inter));
        expect_fail(__LINE__ + (int)i, PULSE_ERR_PARSE, rb[i].f1, rb[i].f2);
    }

    /* ---- LastFM sequences.tsv ---- */
    clear_dir();
    write_bytes("sequences.tsv", "user\titems\n", strlen("user\titems\n"));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "sequences.tsv:1: expected the header", NULL);
    clear_dir();
    const char *l2 = "user_idx\tsplit\titems\n1\ttrain\t0 1\n2\ttrain 3\n";
    write_bytes("sequences.tsv", l2, strlen(l2));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "sequences.tsv:3: expected 'user_idx<TAB>split<TAB>items'", NULL);
    clear_dir();
    const char *l3 = "user_idx\tsplit\titems\n1\ttrain\t0 a\n";
    write_bytes("sequences.tsv", l3, strlen(l3));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "sequences.tsv:2: expected an item id", "found 'a'");

    /* ---- Amazon 2018 JSON lines ---- */
    clear_dir();
    const char *r1 = "{\"reviewerID\": \"a\", \"asin\": \"b\", \"unixReviewTime\": 1}\n{not json}\n";
    write_bytes("r.json", r1, strlen(r1));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "r.json:2: expected a JSON object", "found '{not json}'");
    clear_dir();
    const char *r2 = "{\"reviewerID\": \"a\", \"unixReviewTime\": 1}\n";
    write_bytes("r.json", r2, strlen(r2));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "r.json:1: expected a review with field asin", NULL);
    clear_dir();
    const char *r3 = "{\"reviewerID\": \"a\", \"asin\": \"b\", \"unixReviewTime\": \"1\"}\n";
    write_bytes("r.json", r3, strlen(r3));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "r.json:1: expected a review with field unixReviewTime (a number)",
                NULL);
    clear_dir();
    const char *r4 = "[1, 2]\n";
    write_bytes("r.json", r4, strlen(r4));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "r.json:1: expected a JSON object", NULL);
    /* 2014-style meta (Python literals) is refused with the line */
    clear_dir();
    char revs[4096];
    size_t rl = 0;
    for (int u = 0; u < 5; u++)
        for (int i = 0; i < 5; i++)
            rl += (size_t)snprintf(revs + rl, sizeof revs - rl,
                                   "{\"reviewerID\": \"u%d\", \"asin\": \"i%d\", \"unixReviewTime\": %d}\n",
                                   u, i, i);
    write_bytes("r.json", revs, rl);
    const char *m1 = "{'asin': 'i1', 'title': 'Old style'}\n";
    write_bytes("meta_r.json", m1, strlen(m1));
    expect_fail(__LINE__, PULSE_ERR_PARSE, "meta_r.json:1: expected a JSON object", NULL);
    /* a truncated .gz: an error, not a crash */
    clear_dir();
    char gzp[256];
    snprintf(gzp, sizeof gzp, "%s/r.json.gz", g_dir);
    gzFile g = gzopen(gzp, "wb");
    for (int k = 0; k < 200 && g; k++) gzwrite(g, revs, (unsigned)rl);
    if (g) gzclose(g);
    FILE *f = fopen(gzp, "rb");
    char gzb[65536];
    size_t gn = f ? fread(gzb, 1, sizeof gzb, f) : 0;
    if (f) fclose(f);
    write_bytes("r.json.gz", gzb, gn / 2);
    ds = NULL;
    pulse_status st = pulse_dataset_load(g_dir, NULL, &ds);
    CHECK_MSG(st == PULSE_ERR_IO && strstr(pulse_last_error(), "r.json.gz:") != NULL, "%d %s", (int)st,
              pulse_last_error());
    pulse_dataset_free(ds);

    /* ---- random garbage: every outcome is a status, never a crash (ASan runs this too) ---- */
    pulse_rng rng;
    pulse_rng_seed(&rng, 7);
    const char alphabet[] = "0123456789 \t\n\r-x\0\xff:";
    const char *targets[] = {"sequences.txt", "x.inter", "sequences.tsv", "r.json"};
    int no_crash = 1;
    for (int round = 0; round < 400; round++) {
        clear_dir();
        char buf[300];
        size_t n = pulse_rng_below(&rng, sizeof buf);
        for (size_t i = 0; i < n; i++) buf[i] = alphabet[pulse_rng_below(&rng, sizeof alphabet - 1)];
        const char *t = targets[round % 4];
        if (round % 4 == 1 && n > 0) { /* a valid header then garbage */
            const char *h = "user_id:token\titem_id:token\ttimestamp:float\n";
            char b2[400];
            size_t hl = strlen(h);
            memcpy(b2, h, hl);
            memcpy(b2 + hl, buf, n);
            write_bytes(t, b2, hl + n);
        } else {
            write_bytes(t, buf, n);
        }
        ds = NULL;
        st = pulse_dataset_load(g_dir, NULL, &ds);
        if (st == PULSE_OK) {
            /* whatever loaded must be consistent */
            size_t tot = 0;
            for (int u = 0; u < pulse_dataset_n_users(ds); u++) {
                int len;
                const int *s = pulse_dataset_user_seq(ds, u, &len);
                for (int k = 0; k < len; k++) no_crash &= s[k] >= 1 && s[k] <= pulse_dataset_n_items(ds);
                tot += (size_t)len;
            }
            no_crash &= tot == pulse_dataset_n_interactions(ds);
        } else {
            no_crash &= ds == NULL && pulse_last_error()[0] != 0;
        }
        pulse_dataset_free(ds);
    }
    CHECK(no_crash);

    clear_dir();
    rmdir(g_dir);
    return test_summary();
}
