/* tests/test_recommend_cands.c — stored candidate sets and the SFT data's leakage rules on a synthetic
 * dataset with repeat consumption: lists are deterministic (identical across calls, independent of the user
 * order), hold the held-out item unless mask mode excludes a repeated one (keep: always), never a history
 * item among the negatives; save -> load gives the same lists and a tampered file is refused; pop on a set
 * equals the sampled protocol on the same users; training candidates hold the last training item and nothing
 * of the user's sequence; `pulse_sft_build` writes training prompts without the valid / test items and test
 * lines that are candidate files. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pulse/rationale.h"
#include "pulse/recommend.h"
#include "test.h"

static int in_seq(const int *seq, int n, int item) {
    for (int i = 0; i < n; i++)
        if (seq[i] == item) return 1;
    return 0;
}

static int same_sets(const pulse_candset *a, const pulse_candset *b) {
    if (a->n != b->n || a->n_candidates != b->n_candidates || a->split != b->split || a->seed != b->seed)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->lists[i].user != b->lists[i].user || a->lists[i].target != b->lists[i].target ||
            a->lists[i].pos != b->lists[i].pos ||
            memcmp(a->lists[i].items, b->lists[i].items, sizeof(int) * (size_t)a->n_candidates) != 0)
            return 0;
    return 1;
}

static char *read_all(const char *path) {
    char *s = NULL;
    size_t n = 0;
    return pulse_read_file(path, &s, &n) == PULSE_OK ? s : NULL;
}

int main(void) {
    pulse_progress_set_quiet(1);
    pulse_synth_params sp = pulse_synth_default_params();
    sp.n_users = 120;
    sp.n_items = 90;
    sp.repeat = 0.15f;
    sp.seed = 7;
    pulse_dataset *ds = NULL;
    CHECK_OK(pulse_dataset_synthetic(&sp, &ds));
    if (!ds) return test_summary();
    const int NU = pulse_dataset_n_users(ds), K = 6;
    int *users = malloc(sizeof(int) * (size_t)NU), *rev = malloc(sizeof(int) * (size_t)NU);
    for (int u = 0; u < NU; u++) users[u] = u, rev[u] = NU - 1 - u;

    /* ---- test lists: determinism, exclusion ---- */
    pulse_eval_params ep = pulse_eval_default_params();
    ep.protocol = PULSE_PROTOCOL_SAMPLED;
    ep.n_candidates = K;
    ep.seed = 11;
    pulse_candset a = {0}, b = {0}, c = {0};
    CHECK_OK(pulse_candset_build(ds, &ep, users, NU, &a));
    CHECK_OK(pulse_candset_build(ds, &ep, users, NU, &b));
    CHECK(same_sets(&a, &b));
    CHECK_OK(pulse_candset_build(ds, &ep, rev, NU, &c)); /* a user's list does not depend on the order */
    int order_ok = 1, excl_ok = 1, target_ok = 1, repeats = 0, differs = 0;
    for (int i = 0; i < a.n && c.n == a.n; i++) {
        const pulse_candlist *l = &a.lists[i], *m = &c.lists[NU - 1 - i];
        order_ok &= l->user == m->user && l->pos == m->pos && !memcmp(l->items, m->items, sizeof(int) * K);
        int len, hl;
        const int *seq = pulse_dataset_user_seq(ds, l->user, &len);
        int t = pulse_split_target(ds, l->user, PULSE_SPLIT_TEST, &hl);
        target_ok &= l->target == t;
        if (l->pos >= 0)
            target_ok &= l->items[l->pos] == t;
        else {
            target_ok &= pulse_split_target_repeats(ds, l->user, PULSE_SPLIT_TEST); /* only a repeat */
            repeats++;
        }
        for (int j = 0; j < K; j++) {
            if (j == l->pos) continue;
            excl_ok &= !in_seq(seq, len, l->items[j]); /* a negative is never an item of the user */
            for (int q = 0; q < j; q++) excl_ok &= l->items[q] != l->items[j];
        }
    }
    CHECK(order_ok && excl_ok && target_ok);
    CHECK_MSG(repeats > 0, "the synthetic data should have repeated test items (%d)", repeats);
    /* keep mode: the held-out item is never excluded */
    pulse_eval_params kp = ep;
    kp.history = PULSE_HISTORY_KEEP;
    pulse_candset k = {0};
    CHECK_OK(pulse_candset_build(ds, &kp, users, NU, &k));
    int keep_ok = k.n == NU;
    for (int i = 0; i < k.n; i++)
        keep_ok &= k.lists[i].pos >= 0 && k.lists[i].items[k.lists[i].pos] == k.lists[i].target;
    CHECK(keep_ok);
    pulse_candset_free(&k);
    /* another seed: other lists */
    pulse_eval_params ep2 = ep;
    ep2.seed = 12;
    pulse_candset d = {0};
    CHECK_OK(pulse_candset_build(ds, &ep2, users, NU, &d));
    for (int i = 0; i < d.n; i++) differs += memcmp(d.lists[i].items, a.lists[i].items, sizeof(int) * K) != 0;
    CHECK(differs > NU / 2);
    pulse_candset_free(&d);

    /* ---- save / load ---- */
    char dir[] = "/tmp/pulse_reccandXXXXXX", path[256], bad[256], cmd[4096];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/c.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    CHECK_OK(pulse_candset_save(&a, ds, path));
    pulse_candset l = {0};
    CHECK_OK(pulse_candset_load(path, ds, &l));
    CHECK(same_sets(&a, &l));
    pulse_candset_free(&l);
    const char *edits[] = {"s/\"target\":[0-9]*/\"target\":1/", "s/\"items\":\\[[0-9]*/\"items\":[99999/",
                           "s/\"dataset\":\"[^\"]*\"/\"dataset\":\"other\"/",
                           "s/\"user_key\":\"[^\"]*\"/\"user_key\":\"zz\"/"};
    for (int e = 0; e < 4; e++) {
        snprintf(cmd, sizeof cmd, "sed -e '1%s' '%s' > '%s'", edits[e], path, bad);
        CHECK(system(cmd) == 0);
        CHECK_MSG(pulse_candset_load(bad, ds, &l) != PULSE_OK, "edit %d accepted", e);
        CHECK(strstr(pulse_last_error(), "bad.jsonl:1") != NULL);
    }
    snprintf(cmd, sizeof cmd, "head -1 '%s' > '%s' && head -1 '%s' >> '%s'", path, bad, path, bad);
    CHECK(system(cmd) == 0);
    CHECK(pulse_candset_load(bad, ds, &l) != PULSE_OK); /* a user twice */

    /* ---- pop on the set = the sampled protocol on the same users ---- */
    pulse_pop *pop = NULL;
    CHECK_OK(pulse_pop_fit(ds, &pop));
    pulse_metrics m1, m2;
    CHECK_OK(pulse_evaluate_candset(ds, &a, pulse_pop_score, NULL, pop, 7, &m1));
    CHECK_OK(pulse_evaluate(ds, &ep, pulse_pop_score, pop, &m2));
    CHECK(m1.n_users == m2.n_users && m1.hr1 == m2.hr1 && m1.ndcg5 == m2.ndcg5 && m1.mrr == m2.mrr);
    pulse_pop_free(pop);

    /* ---- training candidates ---- */
    int tc_ok = 1, det_ok = 1, n_tc = 0;
    int *o1 = malloc(sizeof(int) * 10), *o2 = malloc(sizeof(int) * 10);
    for (int u = 0; u < NU; u++) {
        int len, t, hl, pos, t2, hl2, pos2;
        const int *seq = pulse_dataset_user_seq(ds, u, &len);
        if (pulse_split_train_len(ds, u) < 2) {
            CHECK(pulse_rec_train_candidates(ds, u, 10, 5, &t, &hl, o1, &pos) != PULSE_OK);
            continue;
        }
        CHECK_OK(pulse_rec_train_candidates(ds, u, 10, 5, &t, &hl, o1, &pos));
        CHECK_OK(pulse_rec_train_candidates(ds, u, 10, 5, &t2, &hl2, o2, &pos2));
        det_ok &= t2 == t && hl2 == hl && pos2 == pos && !memcmp(o1, o2, sizeof(int) * 10);
        tc_ok &= t == seq[len - 3] && hl == len - 3 && pos >= 0 && o1[pos] == t;
        for (int j = 0; j < 10; j++)
            if (j != pos) tc_ok &= !in_seq(seq, len, o1[j]); /* neither valid nor test item, nor history */
        n_tc++;
    }
    CHECK(tc_ok && det_ok && n_tc > NU / 2);
    free(o1);
    free(o2);

    /* ---- pulse_sft_build: a store with Phase-1 rows for some users ---- */
    char data[512], db[512], tr[512], te[512];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    snprintf(tr, sizeof tr, "%s/train.jsonl", dir);
    snprintf(te, sizeof te, "%s/test.jsonl", dir);
    CHECK_OK(pulse_dataset_write_s3rec(ds, data));
    pulse_dataset *dd = NULL;
    CHECK_OK(pulse_dataset_load(data, NULL, &dd));
    int *sel = NULL, nsel = 0;
    CHECK_OK(pulse_rec_select_users(dd, 40, 3, &sel, &nsel));
    CHECK(nsel == 40);
    pulse_store *st = NULL;
    CHECK_OK(pulse_store_open(db, 0, &st));
    const int NR = 10;
    char keys[10][16], texts[10][64];
    pulse_store_row rows[10];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < NR && sel; i++) {
        snprintf(keys[i], 16, "%s", pulse_dataset_user_key(dd, sel[i]));
        snprintf(texts[i], 64, "Rationale %d: likes the attributes.", i);
        rows[i].dataset = pulse_dataset_name(dd);
        rows[i].user = keys[i];
        rows[i].phase = "phase1";
        rows[i].model_hash = "m1";
        rows[i].settings_hash = "s1";
        rows[i].user_index = sel[i];
        rows[i].ok = 1;
        rows[i].text = texts[i];
        rows[i].attempts = 1;
    }
    if (st) CHECK_OK(pulse_store_put(st, rows, NR));
    pulse_store_close(st);
    pulse_sft_build_params bp = pulse_sft_build_default_params();
    bp.rationale = PULSE_REC_RAT_PHASE1;
    bp.db = db;
    bp.users = 40;
    bp.seed = 3;
    bp.test_candidates = 5;
    pulse_sft_build_report rep;
    CHECK_OK(pulse_sft_build(data, &bp, tr, te, &rep));
    CHECK(rep.train == NR && rep.no_rationale == 40 - NR && rep.test == 40);
    CHECK(strcmp(rep.model_hash, "m1") == 0);
    /* every training line: the completion is the last training item, no valid / test item anywhere in it */
    char *txt = read_all(tr);
    int lines = 0, leak = 0, fmt_ok = 1;
    for (char *p = txt; p && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        cJSON *o = cJSON_Parse(p);
        p = e ? e + 1 : p + strlen(p);
        if (!o) {
            fmt_ok = 0;
            continue;
        }
        lines++;
        int u = (int)cJSON_GetObjectItem(o, "user")->valuedouble, len;
        const int *seq = pulse_dataset_user_seq(dd, u, &len);
        const char *prompt = cJSON_GetObjectItem(o, "prompt")->valuestring;
        const char *compl = cJSON_GetObjectItem(o, "completion")->valuestring;
        const cJSON *chat = cJSON_GetObjectItem(o, "chat");
        char *tt = pulse_rec_item_title(dd, seq[len - 3], 200), *q = pulse_rec_quoted(tt);
        fmt_ok &= strcmp(compl, q) == 0 && strstr(prompt, "Let me think: Rationale") != NULL &&
                  cJSON_IsObject(chat) && (int)cJSON_GetObjectItem(o, "target")->valuedouble == seq[len - 3];
        free(tt);
        free(q);
        /* the items listed: the history's last 5 before the target and 10 candidates */
        cJSON *items = cJSON_GetObjectItem(o, "items");
        for (cJSON *x = items ? items->child : NULL; x; x = x->next) {
            int it = (int)x->valuedouble;
            leak +=
                (it == seq[len - 1] || it == seq[len - 2]) && it != seq[len - 3] && !in_seq(seq, len - 3, it);
        }
        /* titles: a valid / test item whose title is no other listed item's is absent from the prompt */
        for (int h = len - 2; h < len; h++) {
            int it = seq[h], shared = in_seq(seq, len - 2, it);
            char *ht = pulse_rec_item_title(dd, it, 200);
            for (cJSON *x = items ? items->child : NULL; x && !shared; x = x->next) {
                char *ot = pulse_rec_item_title(dd, (int)x->valuedouble, 200);
                shared |= ot && ht && strstr(ot, ht) != NULL;
                free(ot);
            }
            for (int q2 = 0; q2 < len - 2 && !shared; q2++) {
                char *ot = pulse_rec_item_title(dd, seq[q2], 200);
                shared |= ot && ht && strstr(ot, ht) != NULL;
                free(ot);
            }
            if (!shared && ht) leak += strstr(prompt, ht) != NULL;
            free(ht);
        }
        cJSON_Delete(o);
    }
    free(txt);
    CHECK(lines == NR && fmt_ok);
    CHECK_MSG(leak == 0, "%d valid/test items in training prompts", leak);
    /* the test file is a candidate file: the lists of the seeded order's users */
    pulse_candset tf = {0}, tb = {0};
    CHECK_OK(pulse_candset_load(te, dd, &tf));
    pulse_eval_params tp = pulse_eval_default_params();
    tp.protocol = PULSE_PROTOCOL_SAMPLED;
    tp.n_candidates = 5;
    tp.seed = 3;
    CHECK_OK(pulse_candset_build(dd, &tp, sel, nsel, &tb));
    CHECK(same_sets(&tf, &tb));
    /* and its prompts: history = the last 3 before the test item */
    txt = read_all(te);
    cJSON *o = txt ? cJSON_Parse(txt) : NULL; /* parses the first line */
    if (o && sel) {
        int len, u = sel[0];
        const int *seq = pulse_dataset_user_seq(dd, u, &len);
        char *h3 = pulse_rec_item_title(dd, seq[len - 2], 200), want[400];
        snprintf(want, sizeof want, "3. %s\nCandidates:", h3);
        CHECK(strstr(cJSON_GetObjectItem(o, "prompt")->valuestring, want) != NULL);
        CHECK((int)cJSON_GetObjectItem(o, "user")->valuedouble == u);
        free(h3);
    } else
        CHECK(o != NULL);
    cJSON_Delete(o);
    free(txt);
    /* no store row of the dataset: a clear error */
    bp.model_hash = "nope";
    CHECK(pulse_sft_build(data, &bp, tr, te, &rep) != PULSE_OK);
    CHECK(strstr(pulse_last_error(), "no ok phase1 rationale") != NULL);

    pulse_candset_free(&tf);
    pulse_candset_free(&tb);
    free(sel);
    pulse_dataset_free(dd);
    pulse_candset_free(&a);
    pulse_candset_free(&b);
    pulse_candset_free(&c);
    free(users);
    free(rev);
    pulse_dataset_free(ds);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
