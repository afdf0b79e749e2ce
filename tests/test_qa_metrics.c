/* tests/test_qa_metrics.c — the C HotpotQA metrics against the reference script:
 * tests/fixtures/qa/expected.json is scripts/hotpot_eval.py's output on tests/fixtures/qa/{pred,gold}.json
 * (hand-made edge cases: empty answers, yes / no / noanswer, Unicode case and accents, punctuation, articles,
 * a dash next to an article, no-break spaces, repeated words, duplicate and missing supporting facts, missing
 * predictions). Regenerate with
 *   python3 scripts/hotpot_eval.py tests/fixtures/qa/pred.json tests/fixtures/qa/gold.json --per-question \
 *       > tests/fixtures/qa/expected.json
 * Every per-question value and every total must agree within 1e-12; plus the normalisation of a few strings.
 */
#include <cjson/cJSON.h>

#include "pulse/qa.h"
#include "test.h"

#define FIX PULSE_SOURCE_DIR "/tests/fixtures/qa/"

static cJSON *load_json(const char *path) {
    char *t = NULL;
    size_t n = 0;
    if (pulse_read_file(path, &t, &n)) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void check_norm(const char *in, const char *want) {
    char *out = NULL;
    CHECK_OK(pulse_qa_normalize(in, &out));
    CHECK_MSG(out && !strcmp(out, want), "normalize('%s') = '%s', want '%s'", in, out ? out : "(null)", want);
    free(out);
}

int main(void) {
    check_norm("The Eiffel Tower.", "eiffel tower");
    check_norm("", "");
    check_norm("  a  an the  ", "");
    check_norm("theater an-the", "theater anthe");
    check_norm("caf\xc3\xa9 a", "caf\xc3\xa9");
    check_norm("a\xe2\x80\x93"
               "b",
               "\xe2\x80\x93"
               "b"); /* en dash: not string.punctuation, a word boundary */
    check_norm("BESCHR\xc3\x84NKTER", "beschr\xc3\xa4nkter"); /* Ä -> ä */
    check_norm("New\xc2\xa0York", "new york");                /* no-break space splits */

    /* answers as small models emit them */
    const struct {
        const char *raw;
        int yes_no;
        const char *want;
    } ex[] = {{"Answer: Santa Maria, California", 0, "Santa Maria, California"},
              {"Let me think: he was born there.\nThe answer is: Nicholas Frankau. He was best known", 0,
               "Nicholas Frankau"},
              {"The answer is: St. Louis, Missouri.", 0, "St. Louis, Missouri"},
              {"Answer: Flt. Lt. Hans Geering", 0, "Flt. Lt. Hans Geering"},
              {"The answer is: **Velvetpark**", 0, "Velvetpark"},
              {"Let me think: both are painters. The answer is: Yes, both are.", 1, "yes"},
              {"Answer: No.", 1, "no"},
              {"Answer: Noah", 1, "Noah"},
              {"The answer is:\n\n\"Rome\"", 0, "Rome"},
              {"The answer is: 1927.\nThe answer is:", 0, "1927"},
              {"Let me think: no cue at all", 0, "Let me think: no cue at all"},
              {"Answer: Disney miniseries \"Empire Falls\".", 0, "Disney miniseries \"Empire Falls\""},
              {"Answer: \"Read It and Weep\"", 0, "Read It and Weep"},
              {"", 0, ""}};
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        char *a = NULL;
        CHECK_OK(pulse_qa_extract_answer(ex[i].raw, ex[i].yes_no, &a));
        CHECK_MSG(a && !strcmp(a, ex[i].want), "extract('%s') = '%s', want '%s'", ex[i].raw, a ? a : "(null)",
                  ex[i].want);
        free(a);
    }
    CHECK(pulse_qa_is_yes_no("Are Ann and Bob both painters?") && pulse_qa_is_yes_no("\"Did he?\""));
    CHECK(!pulse_qa_is_yes_no("Which city?") && !pulse_qa_is_yes_no("Island of what?") &&
          !pulse_qa_is_yes_no(""));

    pulse_qa_set *gold = NULL;
    CHECK_OK(pulse_qa_load(FIX "gold.json", NULL, &gold));
    cJSON *exp = load_json(FIX "expected.json"), *pred = load_json(FIX "pred.json");
    CHECK(exp && pred && gold);
    if (!exp || !pred || !gold) return test_summary();
    const cJSON *per = cJSON_GetObjectItem(exp, "per_question"), *tot = cJSON_GetObjectItem(exp, "metrics");
    const cJSON *pa = cJSON_GetObjectItem(pred, "answer"), *ps = cJSON_GetObjectItem(pred, "sp");
    CHECK(pulse_qa_count(gold) == cJSON_GetArraySize(per));
    int compared = 0;
    for (int i = 0; i < pulse_qa_count(gold); i++) {
        const pulse_qa_question *q = pulse_qa_get(gold, i);
        const cJSON *e = cJSON_GetObjectItem(per, q->id);
        CHECK_MSG(e != NULL, "no expected row for %s", q->id);
        if (!e) continue;
        const cJSON *a = cJSON_GetObjectItem(pa, q->id);
        if (a) {
            double em, f1, p, r;
            CHECK_OK(pulse_qa_answer_score(a->valuestring, q->answer, &em, &f1, &p, &r));
            CHECK_MSG(fabs(em - num(e, "em")) < 1e-12 && fabs(f1 - num(e, "f1")) < 1e-12 &&
                          fabs(p - num(e, "prec")) < 1e-12 && fabs(r - num(e, "recall")) < 1e-12,
                      "%s: answer em %g f1 %g p %g r %g, script %g %g %g %g", q->id, em, f1, p, r,
                      num(e, "em"), num(e, "f1"), num(e, "prec"), num(e, "recall"));
            compared++;
        }
        const cJSON *s = cJSON_GetObjectItem(ps, q->id);
        if (s) {
            int k = cJSON_GetArraySize(s), j = 0;
            pulse_qa_fact *f = calloc((size_t)k + 1, sizeof *f);
            for (const cJSON *x = s->child; x; x = x->next, j++) {
                f[j].title = x->child->valuestring;
                f[j].sent = x->child->next->valueint;
            }
            double em, f1, p, r;
            pulse_qa_sp_score(f, k, q->sp, q->n_sp, &em, &f1, &p, &r);
            CHECK_MSG(fabs(em - num(e, "sp_em")) < 1e-12 && fabs(f1 - num(e, "sp_f1")) < 1e-12 &&
                          fabs(p - num(e, "sp_prec")) < 1e-12 && fabs(r - num(e, "sp_recall")) < 1e-12,
                      "%s: sp em %g f1 %g, script %g %g", q->id, em, f1, num(e, "sp_em"), num(e, "sp_f1"));
            free(f);
        }
    }
    CHECK(compared >= 20);
    /* the whole file through the predictions reader */
    pulse_qa_metrics m;
    CHECK_OK(pulse_qa_evaluate_file(gold, 0, FIX "pred.json", &m));
    const struct {
        const char *k;
        double v;
    } tv[] = {{"em", m.em},
              {"f1", m.f1},
              {"prec", m.prec},
              {"recall", m.recall},
              {"sp_em", m.sp_em},
              {"sp_f1", m.sp_f1},
              {"sp_prec", m.sp_prec},
              {"sp_recall", m.sp_recall},
              {"joint_em", m.joint_em},
              {"joint_f1", m.joint_f1},
              {"joint_prec", m.joint_prec},
              {"joint_recall", m.joint_recall}};
    for (size_t i = 0; i < sizeof tv / sizeof *tv; i++)
        CHECK_MSG(fabs(tv[i].v - num(tot, tv[i].k)) < 1e-12, "%s: C %.15g, script %.15g", tv[i].k, tv[i].v,
                  num(tot, tv[i].k));
    CHECK(m.n == pulse_qa_count(gold) && m.has_sp);
    CHECK(m.missing_answer == 2 && m.missing_sp == 2);
    printf("metrics: em %.4f f1 %.4f sp_em %.4f sp_f1 %.4f joint_em %.4f joint_f1 %.4f over %d\n", m.em, m.f1,
           m.sp_em, m.sp_f1, m.joint_em, m.joint_f1, m.n);
    cJSON_Delete(exp);
    cJSON_Delete(pred);
    pulse_qa_free(gold);
    return test_summary();
}
