/* tests/test_thought_pairs.c — pair files: the authors' behaviour text, the JSONL reader (both field forms
 * and its errors), and stand-in pairs built from the synthetic dataset (and from Beauty when ../shared is
 * present). */
#include "test.h"

#include <unistd.h>

#include "pulse/data.h"
#include "pulse/thought.h"

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

int main(void) {
    pulse_progress_set_quiet(1);
    const char *h[] = {"Red Lipstick", "Blue Mascara"};
    char *bt = pulse_behaviour_text(h, 2, "Green Eyeliner");
    CHECK(bt &&
          strcmp(bt, "[CONTEXT] History: Red Lipstick, Blue Mascara [CHOSEN_ITEM] Green Eyeliner") == 0);
    free(bt);

    char path[] = "/tmp/pulse_pairs_XXXXXX";
    close(mkstemp(path));
    write_text(path, "{\"user\":\"u1\",\"behaviour\":\"b one\",\"rationale\":\"r one\"}\n"
                     "\n"
                     "{\"user\":7,\"history\":[\"A\",\"B\"],\"answer\":\"C\",\"rationale\":\"r two\"}\n");
    pulse_pair *pp = NULL;
    int n = 0;
    CHECK_OK(pulse_pairs_load(path, &pp, &n));
    CHECK(n == 2);
    if (n == 2) {
        CHECK(strcmp(pp[0].user, "u1") == 0 && strcmp(pp[0].behaviour, "b one") == 0);
        CHECK(strcmp(pp[1].user, "7") == 0);
        CHECK(strcmp(pp[1].behaviour, "[CONTEXT] History: A, B [CHOSEN_ITEM] C") == 0);
        CHECK(strcmp(pp[1].rationale, "r two") == 0);
    }
    pulse_pairs_free(pp, n);
    write_text(
        path,
        "{\"user\":\"u1\",\"behaviour\":\"b\",\"rationale\":\"r\"}\n{\"user\":\"u2\",\"rationale\":3}\n");
    CHECK(pulse_pairs_load(path, &pp, &n) == PULSE_ERR_PARSE);
    CHECK(strstr(pulse_last_error(), ":2:") != NULL);
    write_text(path, "not json\n");
    CHECK(pulse_pairs_load(path, &pp, &n) == PULSE_ERR_PARSE);
    CHECK(strstr(pulse_last_error(), ":1:") != NULL);
    write_text(path, "");
    CHECK(pulse_pairs_load(path, &pp, &n) == PULSE_ERR_PARSE);
    /* an escaped NUL would silently cut the text short: an error naming the line; an escaped backslash
     * before u0000 is plain text */
    write_text(path, "{\"user\":\"u1\",\"behaviour\":\"b\",\"rationale\":\"r\"}\n"
                     "{\"user\":\"u2\",\"behaviour\":\"red\\u0000blue\",\"rationale\":\"r\"}\n");
    CHECK(pulse_pairs_load(path, &pp, &n) == PULSE_ERR_PARSE && pp == NULL);
    CHECK_MSG(strstr(pulse_last_error(), ":2:") && strstr(pulse_last_error(), "NUL"), "%s",
              pulse_last_error());
    write_text(path, "{\"user\":\"u1\",\"behaviour\":\"a\\\\u0000b\",\"rationale\":\"r\"}\n");
    CHECK_OK(pulse_pairs_load(path, &pp, &n));
    CHECK(n == 1 && pp && strcmp(pp[0].behaviour, "a\\u0000b") == 0);
    pulse_pairs_free(pp, n);

    /* stand-in pairs from the synthetic dataset: disjoint users, rationale never empty */
    pulse_synth_params sp = pulse_synth_default_params();
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    char tpath[] = "/tmp/pulse_pairs_t_XXXXXX", hpath[] = "/tmp/pulse_pairs_h_XXXXXX";
    close(mkstemp(tpath));
    close(mkstemp(hpath));
    pulse_standin_params p = pulse_standin_default_params();
    p.n_train = 200;
    p.n_heldout = 50;
    int nt = 0, nh = 0;
    CHECK_OK(pulse_thought_build_standin_pairs(ds, &p, tpath, hpath, &nt, &nh));
    CHECK(nt == 200 && nh == 50);
    pulse_pair *tr = NULL, *he = NULL;
    int ntr = 0, nhe = 0;
    CHECK_OK(pulse_pairs_load(tpath, &tr, &ntr));
    CHECK_OK(pulse_pairs_load(hpath, &he, &nhe));
    CHECK(ntr == 200 && nhe == 50);
    int disjoint = 1, wellformed = 1;
    for (int i = 0; i < ntr; i++) {
        wellformed &= strncmp(tr[i].behaviour, "[CONTEXT] History: ", 19) == 0 &&
                      strstr(tr[i].behaviour, " [CHOSEN_ITEM] ") != NULL && tr[i].rationale[0] != 0;
        for (int j = 0; j < nhe; j++) disjoint &= strcmp(tr[i].user, he[j].user) != 0;
    }
    CHECK(disjoint);
    CHECK(wellformed);
    pulse_pairs_free(tr, ntr);
    pulse_pairs_free(he, nhe);
    pulse_dataset_free(ds);

    /* Beauty: categories and brand come through */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/amazon-beauty", test_shared_dir());
    pulse_data_params dp = pulse_data_default_params();
    if (pulse_dataset_load(dir, &dp, &ds) == PULSE_OK) {
        p.n_train = 20;
        p.n_heldout = 5;
        CHECK_OK(pulse_thought_build_standin_pairs(ds, &p, tpath, hpath, &nt, &nh));
        CHECK_OK(pulse_pairs_load(tpath, &tr, &ntr));
        int with_cat = 0;
        for (int i = 0; i < ntr; i++) with_cat += strstr(tr[i].rationale, "It belongs to Beauty") != NULL;
        CHECK_MSG(with_cat == ntr, "%d of %d rationales carry a category path", with_cat, ntr);
        pulse_pairs_free(tr, ntr);
        pulse_dataset_free(ds);
    } else {
        printf("amazon-beauty not found: Beauty part skipped\n");
    }
    unlink(path), unlink(tpath), unlink(hpath);
    return test_summary();
}
