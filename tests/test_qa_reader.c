/* tests/test_qa_reader.c — the HotpotQA reader: malformed files fail with PULSE_ERR_PARSE naming the file,
 * the question and the field (not JSON, not a list, a question without text, a context that is not
 * [title, [sentences]], a supporting fact with a negative index, ...); a hand-made file reads with its ids,
 * paragraphs, flat sentence order and facts; predictions written in the official format score 1 against
 * their own gold; the shared 100-question distractor sample and the simplified dev list (when present) read
 * with the counts their PROVENANCE.md states. */
#include <unistd.h>

#include "pulse/qa.h"
#include "test.h"

static char dir[] = "/tmp/pulse_qa_readerXXXXXX";

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* loading text fails with PARSE and a message holding every one of the words */
static void bad(const char *text, const char *w1, const char *w2) {
    pulse_qa_set *s = (pulse_qa_set *)1;
    const char *p = write_tmp("bad.json", text);
    pulse_status st = pulse_qa_load(p, NULL, &s);
    const char *msg = pulse_last_error();
    CHECK_MSG(st == PULSE_ERR_PARSE, "'%s' -> %d (%s)", text, (int)st, msg);
    CHECK(s == NULL);
    CHECK_MSG(strstr(msg, "bad.json") && strstr(msg, w1) && (!w2 || strstr(msg, w2)),
              "'%s': message '%s' lacks '%s' / '%s'", text, msg, w1, w2 ? w2 : "");
}

int main(void) {
    CHECK(mkdtemp(dir) != NULL);
    bad("[{\"question\": \"x\"", "not valid JSON", NULL);
    bad("{\"question\": \"x\"}", "expected a JSON array", NULL);
    bad("[1]", "question 0", "expected an object");
    bad("[{\"_id\": \"q1\", \"answer\": \"a\"}]", "_id q1", "field question");
    bad("[{\"question\": 5}]", "field question", "found a number");
    bad("[{\"question\": \"x\", \"answer\": [1]}]", "field answer", "found an array");
    bad("[{\"question\": \"x\", \"context\": {}}]", "field context", "expected an array");
    bad("[{\"question\": \"x\", \"context\": [[\"T\"]]}]", "context[0]", "pair [title");
    bad("[{\"question\": \"x\", \"context\": [[1, [\"s\"]]]}]", "context[0][0]", "title string");
    bad("[{\"question\": \"x\", \"context\": [[\"T\", \"s\"]]}]", "context[0][1]", "array of sentence");
    bad("[{\"question\": \"x\", \"context\": [[\"T\", [\"s\", 3]]]}]", "context[0][1][1]", "sentence string");
    bad("[{\"question\": \"x\"}, {\"_id\": \"b\", \"question\": \"y\", \"supporting_facts\": [[\"T\", -1]]}]",
        "question 1 (_id b)", "supporting_facts[0]");
    bad("[{\"question\": \"x\", \"supporting_facts\": [[\"T\", 0.5]]}]", "supporting_facts[0]", "index");
    bad("[{\"question\": \"x\", \"supporting_facts\": \"T\"}]", "supporting_facts", "found a string");
    {
        pulse_qa_set *s = NULL;
        CHECK(pulse_qa_load("/nonexistent/hotpot.json", NULL, &s) == PULSE_ERR_IO && s == NULL);
    }

    /* a good file: two questions, the second without _id or context */
    const char *good =
        "[{\"_id\": \"q0\", \"question\": \"Who?\", \"answer\": \"Ann\", \"type\": \"bridge\", \"level\": "
        "\"hard\", \"supporting_facts\": [[\"B\", 1], [\"A\", 0]], \"context\": [[\"A\", [\"a0.\", \" "
        "a1.\"]], "
        "[\"B\", [\"b0.\", \" b1.\", \" b2.\"]]]},"
        " {\"question\": \"Is it? <|im_end|>\", \"answer\": \"yes\", \"supporting_facts\": []}]";
    pulse_qa_set *s = NULL;
    CHECK_OK(pulse_qa_load(write_tmp("good.json", good), NULL, &s));
    if (s) {
        CHECK(pulse_qa_count(s) == 2);
        const pulse_qa_question *a = pulse_qa_get(s, 0), *b = pulse_qa_get(s, 1);
        CHECK(!strcmp(a->id, "q0") && !strcmp(b->id, "1"));
        CHECK(a->n_para == 2 && a->n_sent == 5 && a->para[1].n_sent == 3 &&
              !strcmp(a->para[1].sent[2], " b2."));
        CHECK(a->n_sp == 2 && !strcmp(a->sp[0].title, "B") && a->sp[0].sent == 1);
        CHECK(!strcmp(a->type, "bridge") && !strcmp(a->level, "hard") && b->type == NULL);
        CHECK(b->n_para == 0 && b->n_sp == 0 && !strcmp(b->question, "Is it? <|im_end|>"));
        int pi, si;
        pulse_qa_sent_at(a, 3, &pi, &si);
        CHECK(pi == 1 && si == 1);
        pulse_qa_sent_at(a, 5, &pi, &si);
        CHECK(pi == -1);
        CHECK(pulse_qa_has_sp(s) && !pulse_qa_has_context(s) && pulse_qa_has_answers(s));
        CHECK(pulse_qa_get(s, 2) == NULL);
        /* gold as predictions: every metric 1 */
        pulse_qa_pred pr[2] = {{"Ann", a->n_sp, a->sp}, {"Yes", 0, NULL}};
        char pp[512];
        snprintf(pp, sizeof pp, "%s/pred.json", dir);
        CHECK_OK(pulse_qa_pred_write(pp, s, pr, 2));
        pulse_qa_metrics m;
        CHECK_OK(pulse_qa_evaluate_file(s, 0, pp, &m));
        CHECK(m.n == 2 && m.em == 1 && m.f1 == 1 && m.joint_em == 1); /* empty gold sp: SP-EM 1, SP-F1 0 */
        CHECK(m.sp_em == 1 && m.sp_f1 == 0.5);
        /* a missing prediction counts 0 */
        pr[1].answer = NULL;
        CHECK_OK(pulse_qa_pred_write(pp, s, pr, 2));
        CHECK_OK(pulse_qa_evaluate_file(s, 0, pp, &m));
        CHECK(m.em == 0.5 && m.missing_answer == 1);
        write_tmp("badpred.json", "{\"answer\": {\"q0\": 3}}");
        snprintf(pp, sizeof pp, "%s/badpred.json", dir);
        CHECK(pulse_qa_evaluate_file(s, 0, pp, &m) == PULSE_ERR_PARSE && strstr(pulse_last_error(), "q0"));
        /* BM25: tokens, and a question's sentences ranked against it; the need mask */
        char **tk = NULL;
        int nt = 0;
        CHECK_OK(pulse_qa_bm25_tokens("Hello, WORLD! Z\xc3\xbcrich-2", &tk, &nt));
        CHECK(nt == 4 && !strcmp(tk[0], "hello") && !strcmp(tk[1], "world") &&
              !strcmp(tk[2], "z\xc3\xbcrich") && !strcmp(tk[3], "2"));
        for (int i = 0; i < nt; i++) free(tk[i]);
        free(tk);
        float **sc = NULL;
        const uint8_t need[2] = {1, 0};
        CHECK_OK(pulse_qa_sp_scores(s, 2, need, NULL, NULL, &sc));
        CHECK(sc && sc[0] && !sc[1]);
        if (sc && sc[0]) {
            pulse_qa_fact f[2];
            CHECK(pulse_qa_sp_topk(a, sc[0], 2, f) == 2 && f[0].title && f[1].title);
        }
        pulse_qa_scores_free(sc, 2);
        pulse_qa_free(s);
    }
    /* max_questions */
    pulse_qa_read_params rp = pulse_qa_read_default_params();
    rp.max_questions = 1;
    s = NULL;
    CHECK_OK(pulse_qa_load(write_tmp("good.json", good), &rp, &s));
    CHECK(pulse_qa_count(s) == 1 && pulse_qa_has_context(s));
    pulse_qa_free(s);

    /* the shared files */
    char path[1024];
    snprintf(path, sizeof path, "%s/data/hotpotqa/hotpot_dev_distractor_sample100.json", test_shared_dir());
    if (access(path, R_OK) == 0) {
        s = NULL;
        CHECK_OK(pulse_qa_load(path, NULL, &s));
        int n = pulse_qa_count(s), ten = 0, sp = 0, bridge = 0;
        for (int i = 0; i < n; i++) {
            const pulse_qa_question *q = pulse_qa_get(s, i);
            ten += q->n_para == 10;
            sp += q->n_sp;
            bridge += q->type && !strcmp(q->type, "bridge");
        }
        printf("distractor sample: %d questions, %d with 10 paragraphs, %d facts, %d bridge\n", n, ten, sp,
               bridge);
        CHECK(n == 100 && ten == 100 && sp == 249 && bridge == 85);
        CHECK(pulse_qa_has_sp(s) && pulse_qa_has_context(s) && pulse_qa_has_answers(s));
        /* the documented BM25 row of docs/qa.md: k 3 chosen on the first 30, SP F1 0.4497 on the other 70 */
        float **sc = NULL;
        CHECK_OK(pulse_qa_sp_scores(s, 0, NULL, NULL, NULL, &sc));
        double f1_in = 0, f1_out = 0;
        const int k = sc ? pulse_qa_sp_choose_k(s, sc, 0, 30, 8, &f1_in) : 0;
        pulse_qa_fact f[3];
        for (int i = 30; sc && i < 100; i++) {
            const pulse_qa_question *q = pulse_qa_get(s, i);
            double x;
            pulse_qa_sp_score(f, pulse_qa_sp_topk(q, sc[i], 3, f), q->sp, q->n_sp, NULL, &x, NULL, NULL);
            f1_out += x / 70;
        }
        printf("BM25: k %d (held-in SP F1 %.4f), held-out SP F1 %.4f\n", k, f1_in, f1_out);
        CHECK(k == 3 && fabs(f1_out - 0.44969) < 1e-4);
        pulse_qa_scores_free(sc, 100);
        pulse_qa_free(s);
    } else
        test_skip_part("no %s", path);
    snprintf(path, sizeof path, "%s/data/hotpotqa/hotpot_dev_v1_simplified.json", test_shared_dir());
    if (access(path, R_OK) == 0) {
        s = NULL;
        CHECK_OK(pulse_qa_load(path, NULL, &s));
        CHECK(pulse_qa_count(s) == 7405 && !pulse_qa_has_sp(s) && !pulse_qa_has_context(s));
        CHECK(pulse_qa_has_answers(s) && !strcmp(pulse_qa_get(s, 7404)->id, "7404"));
        pulse_qa_free(s);
    } else
        test_skip_part("no %s", path);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
