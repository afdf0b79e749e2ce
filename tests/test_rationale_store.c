/* tests/test_rationale_store.c — the rationale store: rows round-trip, inserts are idempotent (one row per
 * key however often it is written), an ok row replaces a failure and never the reverse, a batch with a bad
 * row inserts nothing, the resume set, iteration order, per-phase counts, the invariants check, read-only
 * opens, and the file / text hashes. */
#include "test.h"

#include <math.h>
#include <unistd.h>

#include "pulse/rationale.h"

static pulse_store_row row(const char *user, int idx, const char *phase, int ok, const char *text) {
    pulse_store_row r;
    memset(&r, 0, sizeof r);
    r.dataset = "synth";
    r.user = user;
    r.user_index = idx;
    r.phase = phase;
    r.model_hash = "00000000000000aa";
    r.settings_hash = "00000000000000bb";
    r.ok = ok;
    r.text = text;
    r.score = NAN;
    r.raw = ok ? text : "garbage";
    r.attempts = 1;
    r.prompt_tokens = 100;
    r.gen_tokens = 20;
    r.seconds = 0.5;
    r.behaviour = "[CONTEXT] History: a, b [CHOSEN_ITEM] c";
    r.history = "[\"a\",\"b\"]";
    r.chosen = "c";
    return r;
}

typedef struct {
    int n, ok;
    char users[16][16];
} seen_t;
static int collect(void *ud, const pulse_store_row *r) {
    seen_t *s = ud;
    if (s->n < 16) snprintf(s->users[s->n], 16, "%s", r->user);
    s->n++;
    s->ok += r->ok;
    return 0;
}

int main(void) {
    char dir[] = "/tmp/pulse_rstoreXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[256];
    snprintf(db, sizeof db, "%s/r.db", dir);
    pulse_store *s = NULL;
    CHECK_OK(pulse_store_open(db, 0, &s));
    if (!s) return test_summary();

    pulse_store_row rows[3] = {row("u1", 1, "phase1", 1, "The user likes shiny nail polish."),
                               row("u0", 0, "phase1", 0, NULL), row("u2", 2, "tot", 1, "Chain of thought.")};
    rows[2].score = 0.75;
    CHECK_OK(pulse_store_put(s, rows, 3));
    CHECK_OK(pulse_store_put(s, rows, 3)); /* again: nothing new */
    int64_t n = 0, bad = 0;
    CHECK_OK(pulse_store_check(s, &n, &bad));
    CHECK(n == 3);
    CHECK(bad == 0);

    /* a failure never replaces an ok row; an ok row replaces a failure (attempts and tokens add up) */
    pulse_store_row f = row("u1", 1, "phase1", 0, NULL);
    CHECK_OK(pulse_store_put(s, &f, 1));
    pulse_store_row okrow = row("u0", 0, "phase1", 1, "Now a real rationale about the user.");
    CHECK_OK(pulse_store_put(s, &okrow, 1));
    pulse_store_counts c;
    CHECK_OK(pulse_store_stats(s, "phase1", &c));
    CHECK(c.ok == 2);
    CHECK(c.failed == 0);
    CHECK(c.attempts == 3); /* u1: 1, u0: 1 failed + 1 ok */
    CHECK(c.gen_tokens == 60);
    CHECK_OK(pulse_store_stats(s, "tot", &c));
    CHECK(c.ok == 1 && c.failed == 0);
    CHECK_OK(pulse_store_stats(s, NULL, &c));
    CHECK(c.ok == 3);

    /* a batch with a bad row (ok without text) inserts nothing */
    pulse_store_row two[2] = {row("u5", 5, "phase1", 1, "Fine text here."), row("u6", 6, "phase1", 1, "")};
    CHECK(pulse_store_put(s, two, 2) == PULSE_ERR_ARG);
    pulse_store_row nokey = row("u7", 7, "phase1", 1, "x y z");
    nokey.phase = NULL;
    CHECK(pulse_store_put(s, &nokey, 1) == PULSE_ERR_ARG);
    CHECK_OK(pulse_store_check(s, &n, &bad));
    CHECK(n == 3);

    /* the resume set is per (dataset, phase, model hash, settings hash) */
    uint8_t done[8];
    CHECK_OK(pulse_store_done(s, "synth", "phase1", "00000000000000aa", "00000000000000bb", 8, done));
    CHECK(done[0] == 1 && done[1] == 1 && done[2] == 0 && done[5] == 0);
    CHECK_OK(pulse_store_done(s, "synth", "phase1", "00000000000000aa", "00000000000000cc", 8, done));
    CHECK(done[0] == 0 && done[1] == 0);

    /* iteration: by phase, then user index; filters */
    seen_t sn;
    memset(&sn, 0, sizeof sn);
    CHECK_OK(pulse_store_each(s, "phase1", NULL, collect, &sn));
    CHECK(sn.n == 2 && sn.ok == 2);
    CHECK(!strcmp(sn.users[0], "u0") && !strcmp(sn.users[1], "u1"));
    memset(&sn, 0, sizeof sn);
    CHECK_OK(pulse_store_each(s, NULL, "u2", collect, &sn));
    CHECK(sn.n == 1);
    pulse_store_close(s);

    /* read-only: reads work, writes fail with a message naming the file */
    CHECK_OK(pulse_store_open(db, 1, &s));
    if (s) {
        CHECK_OK(pulse_store_stats(s, "phase1", &c));
        CHECK(c.ok == 2);
        pulse_store_row w = row("u9", 9, "phase1", 1, "Another rationale text here.");
        CHECK(pulse_store_put(s, &w, 1) != PULSE_OK);
        CHECK(strstr(pulse_last_error(), db) != NULL);
        pulse_store_close(s);
    }
    /* not a store */
    char junk[256];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *jf = fopen(junk, "w");
    if (jf) {
        fputs("this is not sqlite, just some text that is long enough to be a header...............", jf);
        fclose(jf);
    }
    CHECK(pulse_store_open(junk, 1, &s) != PULSE_OK);
    CHECK(s == NULL);
    snprintf(junk, sizeof junk, "%s/missing/x.db", dir);
    CHECK(pulse_store_open(junk, 0, &s) == PULSE_ERR_IO);

    /* hashes: stable, content-sensitive */
    char h1[17], h2[17], h3[17];
    CHECK_OK(pulse_hash_file(db, h1));
    CHECK_OK(pulse_hash_file(db, h2));
    CHECK(!strcmp(h1, h2) && strlen(h1) == 16);
    pulse_hash_text("temp=0.7", h1);
    pulse_hash_text("temp=0.8", h2);
    pulse_hash_text("temp=0.7", h3);
    CHECK(strcmp(h1, h2) != 0 && !strcmp(h1, h3));
    CHECK(pulse_hash_file("/nonexistent/file", h1) == PULSE_ERR_IO);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
