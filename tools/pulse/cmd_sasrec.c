/* tools/pulse/cmd_sasrec.c — `pulse sasrec train|eval|similar`: argument parsing and printing around the
 * SASRec library calls (pulse/sasrec.h). Measuring commands end with one JSON line on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/dist.h"
#include "pulse/data.h"
#include "pulse/eval.h"
#include "pulse/sasrec.h"
#include "pulse/kernels.h"
#include "pulse/kernels_bf16.h"

static void print_metrics(const char *what, const pulse_metrics *m) {
    if (pulse_dist_rank() != 0) return; /* rank 0 reports for every rank */
    fprintf(
        stderr,
        "%s (%d users): HR@1 %.4f HR@5 %.4f HR@10 %.4f HR@20 %.4f NDCG@5 %.4f NDCG@10 %.4f NDCG@20 %.4f MRR "
        "%.4f\n",
        what, m->n_users, m->hr1, m->hr5, m->hr10, m->hr20, m->ndcg5, m->ndcg10, m->ndcg20, m->mrr);
}

static int load_data(const char *dir, pulse_dataset **ds) {
    if (!dir) {
        fprintf(stderr, "pulse sasrec: --data DIR is required\n");
        return 2;
    }
    pulse_data_params dp = pulse_data_default_params();
    if (pulse_dataset_load(dir, &dp, ds)) return cli_fail("loading the dataset");
    return 0;
}

int cmd_sasrec_train(int argc, char **argv) {
    pulse_sasrec_params p = pulse_sasrec_default_params();
    const char *data = NULL, *out = NULL, *loss = "ce";
    int seed = 42, threads = 0, resume = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--out|-o", CLI_STR, &out, "model file to write (required); the checkpoint is FILE.ckpt"},
        {"--loss", CLI_STR, &loss, "ce (full softmax, default) or bce (one sampled negative, the original)"},
        {"--epochs", CLI_INT, &p.epochs, "maximum epochs (default 200)", CLI_RANGE(1, 1000000)},
        {"--seed|-s", CLI_INT, &seed, "random seed (default 42)"},
        {"--dim", CLI_INT, &p.dim, "hidden size (default 64)", CLI_RANGE(1, 65536)},
        {"--blocks", CLI_INT, &p.blocks, "self-attention blocks (default 2)", CLI_RANGE(1, 1024)},
        {"--heads", CLI_INT, &p.heads, "attention heads, dividing --dim (default 1)", CLI_RANGE(1, 65536)},
        {"--dropout", CLI_FLOAT, &p.dropout, "dropout (default 0.2 for ce, 0.3 for bce)",
         CLI_RANGE_OPEN_HI(0, 1)},
        {"--maxlen", CLI_INT, &p.maxlen, "maximum sequence length (default 50)", CLI_RANGE(1, 65536)},
        {"--bf16-head", CLI_FLAG, &p.bf16_head,
         "ce: the head's products over the catalogue in bf16 with fp32 sums (AVX512-BF16; else fp32)"},
        {"--batch", CLI_INT, &p.batch, "batch size (default 128)", CLI_RANGE(1, 1048576)},
        {"--lr", CLI_FLOAT, &p.lr, "Adam learning rate (default 0.001)", CLI_RANGE_OPEN_LO(0, 10)},
        {"--patience", CLI_INT, &p.patience,
         "evaluations without improvement before stopping (default 10 ce, 8 bce)", CLI_RANGE(1, CLI_INT_MAX)},
        {"--eval-every", CLI_INT, &p.eval_every, "validate every k epochs (default 1 ce, 4 bce)",
         CLI_RANGE(1, CLI_INT_MAX)},
        {"--eval-users", CLI_INT, &p.eval_users, "users in the per-epoch validation (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--resume", CLI_FLAG, &resume, "continue from FILE.ckpt when it exists"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse sasrec train --data DIR --out FILE [options]\n"
        "Train SASRec on the leave-one-out train prefixes, keep the best valid NDCG@10 model, print its "
        "test metrics (full ranking, history masked).",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "pulse sasrec train: --out FILE is required\n");
        return 2;
    }
    if (strcmp(loss, "ce") == 0)
        p.loss = PULSE_SASREC_CE;
    else if (strcmp(loss, "bce") == 0)
        p.loss = PULSE_SASREC_BCE;
    else {
        fprintf(stderr, "pulse sasrec train: --loss expects ce or bce, found '%s'\n", loss);
        return 2;
    }
    p.seed = (uint64_t)(int64_t)seed;
    char ckpt[4096];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", out);
    if (cli_check_out_file("sasrec train", "--out", out) || cli_check_out_file("sasrec train", "--out", ckpt))
        return 2;
    cli_set_threads("sasrec train", threads);
    p.checkpoint = ckpt;
    p.resume = resume;
    pulse_dataset *ds = NULL;
    if ((r = load_data(data, &ds))) return r;
    pulse_sasrec *m = NULL;
    if (pulse_sasrec_create(pulse_dataset_n_items(ds), &p, &m)) {
        pulse_dataset_free(ds);
        return cli_fail("sasrec train");
    }
    fprintf(stderr,
            "sasrec train: %s  users %d items %d  loss %s dim %d blocks %d heads %d dropout %.2f maxlen %d "
            "batch %d "
            "lr %g  epochs <= %d patience %d every %d  threads %d\n",
            pulse_dataset_name(ds), pulse_dataset_n_users(ds), pulse_dataset_n_items(ds), loss, p.dim,
            p.blocks, p.heads, (double)pulse_sasrec_effective_dropout(&p), p.maxlen, p.batch, (double)p.lr,
            p.epochs, pulse_sasrec_effective_patience(&p), pulse_sasrec_effective_eval_every(&p),
            pulse_get_num_threads());
    pulse_sasrec_train_report rep;
    int rc = 0;
    if (pulse_sasrec_train(m, ds, &p, &rep))
        rc = cli_fail("sasrec train");
    else if (pulse_dist_rank() == 0 && pulse_sasrec_save(m, out)) /* rank 0 writes the model */
        rc = cli_fail("saving the model");
    else {
        print_metrics("valid (best model)", &rep.valid);
        print_metrics("test (best model)", &rep.test);
        if (pulse_dist_rank() == 0)
            fprintf(stderr, "sasrec train: best epoch %d of %d, %.1f s (%.2f s/epoch), model written to %s\n",
                    rep.best_epoch, rep.epochs_run, rep.train_seconds, rep.seconds_per_epoch, out);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
        cJSON_AddStringToObject(o, "model", "sasrec");
        cJSON_AddStringToObject(o, "protocol", "full");
        cJSON_AddStringToObject(o, "split", "test");
        cJSON_AddStringToObject(o, "loss", loss);
        cJSON_AddItemToObject(o, "metrics", cli_metrics_json(&rep.test));
        cJSON_AddItemToObject(o, "valid_metrics", cli_metrics_json(&rep.valid));
        cJSON_AddNumberToObject(o, "users", rep.test.n_users);
        cJSON_AddNumberToObject(o, "best_epoch", rep.best_epoch);
        cJSON_AddNumberToObject(o, "epochs", rep.epochs_run);
        cJSON_AddNumberToObject(o, "train_seconds", rep.train_seconds);
        cJSON_AddNumberToObject(o, "seconds_per_epoch", rep.seconds_per_epoch);
        cJSON_AddNumberToObject(o, "last_loss", rep.last_loss);
        cJSON_AddNumberToObject(o, "steps", (double)rep.steps);
        if (pulse_dist_size() > 1) {
            cJSON_AddNumberToObject(o, "comm_seconds", rep.comm_seconds);
            cJSON_AddNumberToObject(o, "allreduce_bytes_per_step", (double)pulse_sasrec_n_params(m) * 4 + 16);
        }
        cJSON_AddNumberToObject(o, "threads", pulse_get_num_threads());
        cJSON *hp = cJSON_CreateObject();
        cJSON_AddNumberToObject(hp, "dim", p.dim);
        cJSON_AddNumberToObject(hp, "blocks", p.blocks);
        cJSON_AddNumberToObject(hp, "heads", p.heads);
        cJSON_AddNumberToObject(hp, "dropout", (double)pulse_sasrec_effective_dropout(&p));
        cJSON_AddNumberToObject(hp, "maxlen", p.maxlen);
        cJSON_AddBoolToObject(hp, "bf16_head", p.bf16_head && pulse_bf16_supported());
        cJSON_AddNumberToObject(hp, "batch", p.batch);
        cJSON_AddNumberToObject(hp, "lr", (double)p.lr);
        cJSON_AddNumberToObject(hp, "seed", seed);
        cJSON_AddItemToObject(o, "params", hp);
        cJSON_AddStringToObject(o, "model_file", out);
        cli_print_json(o);
    }
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
    return rc;
}

static int load_model(const char *path, const pulse_dataset *ds, pulse_sasrec **m) {
    if (!path) {
        fprintf(stderr, "pulse sasrec: --model FILE is required\n");
        return 2;
    }
    if (pulse_sasrec_load(path, NULL, m)) return cli_fail("loading the model");
    if (pulse_sasrec_n_items(*m) != pulse_dataset_n_items(ds)) {
        fprintf(stderr, "pulse sasrec: the model %s has %d items but the dataset %s has %d\n", path,
                pulse_sasrec_n_items(*m), pulse_dataset_name(ds), pulse_dataset_n_items(ds));
        pulse_sasrec_free(*m);
        *m = NULL;
        return 1;
    }
    return 0;
}

/* pulse_score_fn over a SASRec model (every item scored from the history) */
static pulse_status sasrec_score_fn(void *ctx, int n, const int *users, const int *const *hist,
                                    const int *hist_len, float *scores) {
    (void)users;
    return pulse_sasrec_score(ctx, n, hist, hist_len, scores);
}

int cmd_sasrec_eval(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *protocol = "full", *split = "test", *history = NULL,
               *cand_file = NULL;
    pulse_eval_params ep = pulse_eval_default_params();
    int seed = (int)ep.seed, threads = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--model|-m", CLI_STR, &model, "model file from `pulse sasrec train` (required)"},
        {"--protocol", CLI_STR, &protocol, "full (all items; default) or sampled"},
        {"--history-mode", CLI_STR, &history, CLI_HISTORY_HELP},
        {"--candidates", CLI_INT, &ep.n_candidates,
         "sampled protocol: list size incl. the positive (default 20)", CLI_RANGE(2, CLI_INT_MAX)},
        {"--split", CLI_STR, &split, "test (default) or valid"},
        {"--seed|-s", CLI_INT, &seed, "sampled protocol: negatives seed (default 42)"},
        {"--max-users", CLI_INT, &ep.max_users, "evaluate the first N users only (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--candidates-file", CLI_STR, &cand_file,
         "score the stored candidate lists of this file (`pulse eval --save-candidates`, `pulse sft build "
         "--out-test`) instead of a protocol"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse sasrec eval --data DIR --model FILE [--protocol full|sampled] [--candidates N] "
        "[--split test|valid]\n       pulse sasrec eval --data DIR --model FILE --candidates-file FILE",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    int proto = (int)ep.protocol, spl = (int)ep.split;
    if (cli_protocol_split("sasrec eval", protocol, split, &proto, &spl)) return 2;
    ep.protocol = (pulse_protocol)proto;
    ep.split = (pulse_split)spl;
    int hist = (int)ep.history;
    if (cli_history("sasrec eval", history, &hist)) return 2;
    ep.history = (pulse_history)hist;
    ep.seed = (uint64_t)(int64_t)seed;
    cli_set_threads("sasrec eval", threads);
    pulse_dataset *ds = NULL;
    if ((r = load_data(data, &ds))) return r;
    pulse_sasrec *m = NULL;
    if ((r = load_model(model, ds, &m))) {
        pulse_dataset_free(ds);
        return r;
    }
    pulse_metrics met;
    double t0 = pulse_now();
    int rc = 0;
    pulse_candset cs = {0};
    if (cand_file) {
        if (pulse_candset_load(cand_file, ds, &cs) ||
            pulse_evaluate_candset(ds, &cs, sasrec_score_fn, NULL, m, 0, &met))
            rc = cli_fail("sasrec eval");
        ep.history = cs.history;
        split = cs.split == PULSE_SPLIT_TEST ? "test" : "valid";
    } else if (pulse_sasrec_evaluate(m, ds, &ep, &met))
        rc = cli_fail("sasrec eval");
    if (!rc) {
        print_metrics(split, &met);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
        cJSON_AddStringToObject(o, "model", "sasrec");
        cJSON_AddStringToObject(o, "protocol", cand_file ? "candidates" : protocol);
        if (cand_file) {
            cJSON_AddNumberToObject(o, "candidates", cs.n_candidates);
            cJSON_AddNumberToObject(o, "seed", (double)cs.seed);
            cJSON_AddStringToObject(o, "candidates_file", cand_file);
        } else if (ep.protocol == PULSE_PROTOCOL_SAMPLED)
            cJSON_AddNumberToObject(o, "candidates", ep.n_candidates);
        cJSON_AddStringToObject(o, "split", split);
        cJSON_AddItemToObject(o, "metrics", cli_metrics_json(&met));
        cli_eval_json(o, &ep, &met);
        cJSON_AddNumberToObject(o, "seconds", pulse_now() - t0);
        cli_print_json(o);
    }
    pulse_candset_free(&cs);
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
    return rc;
}

/* one JSONL line per user into buf (grown as needed) */
typedef struct {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->len + l + 2 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 1 << 20) + l;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, l);
    b->len += l;
    b->p[b->len++] = '\n';
    return 0;
}

int cmd_sasrec_similar(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *out = NULL, *upto = "test";
    int k = 5, threads = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--model|-m", CLI_STR, &model, "model file (required)"},
        {"--k", CLI_INT, &k, "similar users per user (default 5)", CLI_RANGE(1, CLI_INT_MAX)},
        {"--out|-o", CLI_STR, &out, "JSONL file to write (default: stdout)"},
        {"--history", CLI_STR, &upto,
         "user history for the vector: test (all but the test item, default), valid (train prefix), all"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse sasrec similar --data DIR --model FILE [--k 5] [--out FILE.jsonl]\n"
        "Per-user vector = SASRec's final hidden state at the last history position; prints the top-k "
        "most cosine-similar other users as JSONL {\"user\",\"user_key\",\"similar\":[{\"user\","
        "\"cosine\"}]}.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    pulse_split sp;
    if (strcmp(upto, "test") == 0)
        sp = PULSE_SPLIT_TEST;
    else if (strcmp(upto, "valid") == 0)
        sp = PULSE_SPLIT_VALID;
    else if (strcmp(upto, "all") == 0)
        sp = PULSE_SPLIT_TRAIN;
    else {
        fprintf(stderr, "pulse sasrec similar: --history expects test, valid or all, found '%s'\n", upto);
        return 2;
    }
    if (out && cli_check_out_file("sasrec similar", "--out", out)) return 2;
    cli_set_threads("sasrec similar", threads);
    pulse_dataset *ds = NULL;
    if ((r = load_data(data, &ds))) return r;
    pulse_sasrec *m = NULL;
    if ((r = load_model(model, ds, &m))) {
        pulse_dataset_free(ds);
        return r;
    }
    double t0 = pulse_now();
    int nu = pulse_dataset_n_users(ds), d = pulse_sasrec_dim(m), rc = 0;
    float *vecs = malloc(sizeof(float) * (size_t)nu * d + 1),
          *cs = malloc(sizeof(float) * (size_t)nu * k + 1);
    int *idx = malloc(sizeof(int) * (size_t)nu * k + 1);
    strbuf sb = {0};
    if (!vecs || !cs || !idx) {
        fprintf(stderr, "pulse sasrec similar: out of memory\n");
        rc = 1;
    } else if (pulse_sasrec_user_vectors(m, ds, sp, vecs) || pulse_sasrec_similar(vecs, nu, d, k, idx, cs)) {
        rc = cli_fail("sasrec similar");
    } else {
        for (int u = 0; u < nu && !rc; u++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "user", u);
            cJSON_AddStringToObject(o, "user_key", pulse_dataset_user_key(ds, u));
            cJSON *arr = cJSON_AddArrayToObject(o, "similar");
            for (int j = 0; j < k; j++) {
                int v = idx[(size_t)u * k + j];
                if (v < 0) break;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "user", v);
                cJSON_AddNumberToObject(e, "cosine", (double)cs[(size_t)u * k + j]);
                cJSON_AddItemToArray(arr, e);
            }
            char *line = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (!line) {
                rc = 1;
                break;
            }
            if (out) {
                if (sb_add(&sb, line)) rc = 1;
            } else {
                puts(line);
            }
            cJSON_free(line);
        }
        if (rc) fprintf(stderr, "pulse sasrec similar: out of memory\n");
        if (!rc && out) {
            if (pulse_write_file_atomic(out, sb.p ? sb.p : "", sb.len)) rc = cli_fail("writing the JSONL");
        }
        if (!rc && out) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
            cJSON_AddStringToObject(o, "model", "sasrec");
            cJSON_AddNumberToObject(o, "users", nu);
            cJSON_AddNumberToObject(o, "k", k);
            cJSON_AddStringToObject(o, "out", out);
            cJSON_AddNumberToObject(o, "seconds", pulse_now() - t0);
            cli_print_json(o);
        }
    }
    free(sb.p);
    free(vecs);
    free(cs);
    free(idx);
    pulse_sasrec_free(m);
    pulse_dataset_free(ds);
    return rc;
}
