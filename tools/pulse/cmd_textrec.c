/* tools/pulse/cmd_textrec.c — `pulse textrec train|eval`: argument parsing and printing around the
 * text-aware recommenders (pulse/textrec.h: MoRec, the Thought-Space recommender). Measuring commands end
 * with one JSON line on stdout whose "metrics" has the keys of `pulse sasrec eval`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/data.h"
#include "pulse/dist.h"
#include "pulse/eval.h"
#include "pulse/kernels.h"
#include "pulse/sasrec.h"
#include "pulse/textrec.h"

static void print_metrics(const char *what, const pulse_metrics *m) {
    if (pulse_dist_rank() != 0) return; /* rank 0 reports for every rank */
    fprintf(stderr,
            "%s (%d users): HR@1 %.4f HR@5 %.4f HR@10 %.4f HR@20 %.4f NDCG@5 %.4f NDCG@10 %.4f NDCG@20 %.4f "
            "MRR %.4f\n",
            what, m->n_users, m->hr1, m->hr5, m->hr10, m->hr20, m->ndcg5, m->ndcg10, m->ndcg20, m->mrr);
}

static int load_data(const char *cmd, const char *dir, int max_users, pulse_dataset **ds) {
    if (!dir) {
        fprintf(stderr, "pulse %s: --data DIR is required\n", cmd);
        return 2;
    }
    pulse_data_params dp = pulse_data_default_params();
    dp.max_users = max_users;
    if (pulse_dataset_load(dir, &dp, ds)) return cli_fail("loading the dataset");
    return 0;
}

int cmd_textrec_train(int argc, char **argv) {
    pulse_textrec_params p = pulse_textrec_default_params();
    const char *data = NULL, *out = NULL, *arch = "morec", *refresh = "epoch", *precision = NULL;
    int seed = 42, threads = 0, no_id = 0, max_users = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--encoder|-e", CLI_STR, &p.encoder, "HF encoder folder for the item texts (required for morec)"},
        {"--out|-o", CLI_STR, &out, "model file to write (required)"},
        {"--arch", CLI_STR, &arch,
         "morec (encoder text vectors, default) or thought (the Thought Space's rationale encoder R + "
         "InfoNCE "
         "on the user state)"},
        {"--space", CLI_STR, &p.space, "thought: a trained Thought Space folder (default: --encoder)"},
        {"--pairs", CLI_STR, &p.pairs,
         "thought: JSONL with \"user\" and \"rationale\" (pulse thought pairs, pulse rationale export)"},
        {"--epochs", CLI_INT, &p.sasrec.epochs, "maximum epochs (default 200)", CLI_RANGE(1, 1000000)},
        {"--seed|-s", CLI_INT, &seed, "random seed (default 42)"},
        {"--cache", CLI_STR, &p.cache_dir, "folder caching the text vectors (default: none)"},
        {"--text-len", CLI_INT, &p.text_len, "tokens per item text (default 64)", CLI_RANGE(2, 512)},
        {"--no-id", CLI_FLAG, &no_id, "text vectors only (no ID embeddings summed)"},
        {"--finetune-layers", CLI_INT, &p.finetune_layers,
         "morec end to end: top encoder layers trained (default 0: frozen text vectors)", CLI_RANGE(0, 64)},
        {"--refresh", CLI_STR, &refresh,
         "end to end: re-encode the catalogue every epoch (default) or every step"},
        {"--ft-items", CLI_INT, &p.ft_items,
         "end to end: target items re-encoded with gradient per step (default 32)", CLI_RANGE(1, 4096)},
        {"--ft-lr", CLI_FLOAT, &p.ft_lr, "end to end: encoder learning rate (default 5e-5)",
         CLI_RANGE_OPEN_LO(0, 1)},
        {"--lambda", CLI_FLOAT, &p.lambda, "thought: weight of the InfoNCE term (default 0.1)",
         CLI_RANGE(0, 1e6)},
        {"--tau", CLI_FLOAT, &p.tau, "thought: InfoNCE temperature (default 0.1)", CLI_RANGE_OPEN_LO(0, 100)},
        {"--negatives", CLI_INT, &p.negatives, "thought: in-batch negatives (default 16)",
         CLI_RANGE(1, 65536)},
        {"--precision", CLI_STR, &precision,
         "encoder inference products: auto (default: bf16 where the CPU runs it faster), bf16 or fp32"},
        {"--dim", CLI_INT, &p.sasrec.dim, "hidden size (default 64)", CLI_RANGE(1, 4096)},
        {"--blocks", CLI_INT, &p.sasrec.blocks, "self-attention blocks (default 2)", CLI_RANGE(1, 64)},
        {"--heads", CLI_INT, &p.sasrec.heads, "attention heads (default 1)", CLI_RANGE(1, 4096)},
        {"--dropout", CLI_FLOAT, &p.sasrec.dropout, "dropout (default 0.2)", CLI_RANGE_OPEN_HI(0, 1)},
        {"--maxlen", CLI_INT, &p.sasrec.maxlen, "maximum sequence length (default 50)", CLI_RANGE(1, 4096)},
        {"--bf16-head", CLI_FLAG, &p.sasrec.bf16_head,
         "the CE head's products over the catalogue in bf16 with fp32 sums (AVX512-BF16; else fp32)"},
        {"--batch", CLI_INT, &p.sasrec.batch, "batch size (default 128)", CLI_RANGE(1, 65536)},
        {"--lr", CLI_FLOAT, &p.sasrec.lr, "Adam learning rate (default 0.001)", CLI_RANGE_OPEN_LO(0, 10)},
        {"--patience", CLI_INT, &p.sasrec.patience,
         "evaluations without improvement before stopping (default 10)", CLI_RANGE(1, CLI_INT_MAX)},
        {"--eval-users", CLI_INT, &p.sasrec.eval_users, "users in the per-epoch validation (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--max-users", CLI_INT, &max_users, "use the first N users of the dataset (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r =
        cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                  "usage: pulse textrec train --data DIR --encoder DIR --out FILE [--arch morec|thought] "
                  "[--space DIR] [--pairs FILE] [--epochs N] [--seed S]\n"
                  "Train a text-aware SASRec-CE (item vectors from text, summed with ID embeddings), keep "
                  "the best valid NDCG@10 model, print its test metrics (full ranking, history masked).",
                  NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    const char *archs[] = {"morec", "thought"}, *refreshes[] = {"epoch", "step"},
               *precs[] = {"auto", "bf16", "fp32"};
    const int arch_v[] = {PULSE_TEXTREC_MOREC, PULSE_TEXTREC_THOUGHT}, ref_v[] = {0, 1},
              prec_v[] = {PULSE_PREC_AUTO, PULSE_PREC_BF16, PULSE_PREC_FP32};
    int a = (int)p.arch, pr = (int)p.precision;
    if (cli_choice("textrec train", "--arch", arch, archs, arch_v, 2, &a) ||
        cli_choice("textrec train", "--refresh", refresh, refreshes, ref_v, 2, &p.refresh_every_step) ||
        cli_choice("textrec train", "--precision", precision, precs, prec_v, 3, &pr))
        return 2;
    p.arch = (pulse_textrec_arch)a;
    p.precision = (pulse_precision)pr;
    p.use_id = !no_id;
    p.sasrec.seed = (uint64_t)(int64_t)seed;
    if (!out) {
        fprintf(stderr, "pulse textrec train: --out FILE is required\n");
        return 2;
    }
    if (!p.encoder && !(p.arch == PULSE_TEXTREC_THOUGHT && p.space)) {
        fprintf(stderr, "pulse textrec train: --encoder DIR is required%s\n",
                p.arch == PULSE_TEXTREC_THOUGHT ? " (or --space DIR)" : "");
        return 2;
    }
    if (cli_check_out_file("textrec train", "--out", out)) return 2;
    if (p.cache_dir && cli_check_out_dir("textrec train", "--cache", p.cache_dir)) return 2;
    cli_set_threads("textrec train", threads);
    pulse_dataset *ds = NULL;
    if ((r = load_data("textrec train", data, max_users, &ds))) return r;
    if (pulse_dist_rank() == 0)
        fprintf(stderr,
                "textrec train: %s  users %d items %d  arch %s%s  finetune %d  dim %d blocks %d maxlen %d "
                "batch %d "
                "lr %g epochs <= %d  threads %d\n",
                pulse_dataset_name(ds), pulse_dataset_n_users(ds), pulse_dataset_n_items(ds), arch,
                p.use_id ? "" : " (no id)", p.finetune_layers, p.sasrec.dim, p.sasrec.blocks, p.sasrec.maxlen,
                p.sasrec.batch, (double)p.sasrec.lr, p.sasrec.epochs, pulse_get_num_threads());
    pulse_textrec *m = NULL;
    pulse_textrec_train_report rep;
    int rc = 0;
    if (pulse_textrec_train(ds, &p, &m, &rep))
        rc = cli_fail("textrec train");
    else if (pulse_dist_rank() == 0 && pulse_textrec_save(m, out)) /* rank 0 writes the model */
        rc = cli_fail("saving the model");
    else {
        const pulse_sasrec_train_report *s = &rep.sasrec;
        print_metrics("valid (best model)", &s->valid);
        print_metrics("test (best model)", &s->test);
        if (pulse_dist_rank() == 0)
            fprintf(stderr,
                    "textrec train: best epoch %d of %d, %.1f s (%.2f s/epoch) + %.1f s text vectors\n",
                    s->best_epoch, s->epochs_run, s->train_seconds, s->seconds_per_epoch, rep.encode_seconds);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
        cJSON_AddStringToObject(o, "model", "textrec");
        cJSON_AddStringToObject(o, "arch", arch);
        cJSON_AddBoolToObject(o, "id_embeddings", p.use_id);
        cJSON_AddNumberToObject(o, "finetune_layers", p.finetune_layers);
        cJSON_AddStringToObject(o, "protocol", "full");
        cJSON_AddStringToObject(o, "split", "test");
        cJSON_AddItemToObject(o, "metrics", cli_metrics_json(&s->test));
        cJSON_AddItemToObject(o, "valid_metrics", cli_metrics_json(&s->valid));
        cJSON_AddNumberToObject(o, "users", s->test.n_users);
        cJSON_AddNumberToObject(o, "best_epoch", s->best_epoch);
        cJSON_AddNumberToObject(o, "epochs", s->epochs_run);
        cJSON_AddNumberToObject(o, "train_seconds", s->train_seconds);
        cJSON_AddNumberToObject(o, "seconds_per_epoch", s->seconds_per_epoch);
        cJSON_AddNumberToObject(o, "encode_seconds", rep.encode_seconds);
        cJSON_AddNumberToObject(o, "last_loss", s->last_loss);
        cJSON_AddNumberToObject(o, "steps", (double)s->steps);
        if (pulse_dist_size() > 1) { /* data-parallel: SASRec's gradients and the loss, summed */
            cJSON_AddNumberToObject(o, "comm_seconds", s->comm_seconds);
            cJSON_AddNumberToObject(o, "allreduce_bytes_per_step",
                                    (double)pulse_sasrec_n_params(pulse_textrec_sasrec(m)) * 4 + 16);
        }
        if (p.arch == PULSE_TEXTREC_THOUGHT) {
            cJSON_AddNumberToObject(o, "pair_users", rep.pair_users);
            cJSON_AddNumberToObject(o, "align_loss", rep.last_align_loss);
            cJSON_AddNumberToObject(o, "lambda", (double)p.lambda);
            cJSON_AddNumberToObject(o, "tau", (double)p.tau);
        }
        cJSON_AddNumberToObject(o, "threads", pulse_get_num_threads());
        cJSON_AddNumberToObject(o, "seed", seed);
        cJSON_AddStringToObject(o, "model_file", out);
        cli_print_json(o);
    }
    pulse_textrec_free(m);
    pulse_dataset_free(ds);
    return rc;
}

/* a model file is a textrec model or a plain SASRec one (for the cold-start comparison) */
static int is_sasrec_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char mg[8] = {0};
    int r = f && fread(mg, 1, 8, f) == 8 && memcmp(mg, "PLSSASR", 8) == 0;
    if (f) fclose(f);
    return r;
}

static pulse_status sasrec_score_fn(void *ctx, int n, const int *users, const int *const *hist,
                                    const int *hist_len, float *scores) {
    (void)users;
    return pulse_sasrec_score(ctx, n, hist, hist_len, scores);
}

int cmd_textrec_eval(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *split = "test", *history = NULL, *encoder = NULL, *cache = NULL,
               *baseline = NULL;
    pulse_eval_params ep = pulse_eval_default_params();
    int threads = 0, cold = 0, zero_shot = 0, max_users = 0;
    const cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder (required)"},
        {"--model|-m", CLI_STR, &model,
         "model file from `pulse textrec train` (or `pulse sasrec train`, for the cold-start comparison)"},
        {"--split", CLI_STR, &split, "test (default) or valid"},
        {"--history-mode", CLI_STR, &history, CLI_HISTORY_HELP},
        {"--cold", CLI_FLAG, &cold,
         "cold start: only the users whose held-out item never occurs in any training prefix"},
        {"--zero-shot", CLI_FLAG, &zero_shot,
         "the model was trained on another dataset: rank this catalogue from its text vectors only"},
        {"--encoder|-e", CLI_STR, &encoder,
         "--zero-shot: encoder / space folder for this catalogue's texts (default: the model's; FILE.encoder "
         "for an end-to-end model)"},
        {"--cache", CLI_STR, &cache, "--zero-shot: folder caching the text vectors"},
        {"--baseline", CLI_STR, &baseline, "pop: also report popularity on the same users"},
        {"--max-users", CLI_INT, &max_users, "use the first N users of the dataset (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all cores / PULSE_THREADS)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                      "usage: pulse textrec eval --data DIR --model FILE [--split test|valid] [--cold] "
                      "[--zero-shot [--encoder DIR]] [--baseline pop]\n"
                      "Full ranking over the whole catalogue, history masked (the harness of `pulse sasrec "
                      "eval`).",
                      NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    int proto = 0, spl = 0, hist = (int)ep.history;
    if (cli_protocol_split("textrec eval", "full", split, &proto, &spl) ||
        cli_history("textrec eval", history, &hist))
        return 2;
    ep.protocol = PULSE_PROTOCOL_FULL;
    ep.split = (pulse_split)spl;
    ep.history = (pulse_history)hist;
    if (baseline && strcmp(baseline, "pop") != 0) {
        fprintf(stderr, "pulse textrec eval: --baseline expects pop, found '%s'\n", baseline);
        return 2;
    }
    if (!model) {
        fprintf(stderr, "pulse textrec eval: --model FILE is required\n");
        return 2;
    }
    cli_set_threads("textrec eval", threads);
    pulse_dataset *ds = NULL;
    if ((r = load_data("textrec eval", data, max_users, &ds))) return r;
    double t0 = pulse_now();
    pulse_textrec *m = NULL;
    pulse_sasrec *sm = NULL;
    pulse_score_fn fn = NULL;
    void *ctx = NULL;
    const char *arch = "sasrec";
    int rc = 0;
    if (is_sasrec_file(model)) {
        if (zero_shot) {
            fprintf(stderr, "pulse textrec eval: a SASRec model has no text vectors for --zero-shot\n");
            rc = 2;
        } else if (pulse_sasrec_load(model, NULL, &sm)) {
            rc = cli_fail("loading the model");
        } else {
            fn = sasrec_score_fn;
            ctx = sm;
        }
    } else if (pulse_textrec_load(model, &m)) {
        rc = cli_fail("loading the model");
    } else {
        arch = pulse_textrec_arch_name(pulse_textrec_get_arch(m));
        if (zero_shot) {
            char ftdir[4096];
            if (!encoder && pulse_textrec_finetune_layers(m) > 0) {
                snprintf(ftdir, sizeof ftdir, "%s.encoder", model);
                encoder = ftdir;
            }
            pulse_textrec *t = NULL;
            if (pulse_textrec_transfer(m, ds, encoder, cache, &t)) rc = cli_fail("textrec eval --zero-shot");
            pulse_textrec_free(m);
            m = t;
        }
        fn = pulse_textrec_score_fn;
        ctx = m;
    }
    int n_items = sm ? pulse_sasrec_n_items(sm) : m ? pulse_textrec_n_items(m) : 0;
    if (!rc && n_items != pulse_dataset_n_items(ds)) {
        fprintf(stderr,
                "pulse textrec eval: the model %s has %d items but the dataset %s has %d (a model of another "
                "catalogue: --zero-shot)\n",
                model, n_items, pulse_dataset_name(ds), pulse_dataset_n_items(ds));
        rc = 1;
    }
    int *users = NULL, n_users = 0;
    if (!rc && cold && pulse_textrec_cold_users(ds, ep.split, &users, &n_users))
        rc = cli_fail("textrec eval");
    if (!rc && cold && n_users == 0)
        fprintf(stderr, "textrec eval: no cold-start user in %s (%s split)\n", pulse_dataset_name(ds), split);
    pulse_metrics met, pm;
    memset(&pm, 0, sizeof pm);
    pulse_pop *pop = NULL;
    if (!rc) {
        pulse_status st = cold ? pulse_textrec_evaluate_users(ds, &ep, users, n_users, fn, ctx, &met)
                               : pulse_evaluate(ds, &ep, fn, ctx, &met);
        if (!st && baseline) {
            st = pulse_pop_fit(ds, &pop);
            if (!st)
                st = cold ? pulse_textrec_evaluate_users(ds, &ep, users, n_users, pulse_pop_score, pop, &pm)
                          : pulse_evaluate(ds, &ep, pulse_pop_score, pop, &pm);
        }
        if (st) rc = cli_fail("textrec eval");
    }
    if (!rc) {
        print_metrics(split, &met);
        if (baseline) print_metrics("pop, same users", &pm);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", pulse_dataset_name(ds));
        cJSON_AddStringToObject(o, "model", sm ? "sasrec" : "textrec");
        cJSON_AddStringToObject(o, "arch", arch);
        cJSON_AddStringToObject(o, "protocol", "full");
        cJSON_AddStringToObject(o, "split", split);
        cJSON_AddStringToObject(o, "users_set", cold ? "cold" : "all");
        cJSON_AddBoolToObject(o, "zero_shot", zero_shot);
        cJSON_AddItemToObject(o, "metrics", cli_metrics_json(&met));
        if (baseline) cJSON_AddItemToObject(o, "pop_metrics", cli_metrics_json(&pm));
        cli_eval_json(o, &ep, &met);
        cJSON_AddNumberToObject(o, "seconds", pulse_now() - t0);
        cli_print_json(o);
    }
    free(users);
    pulse_pop_free(pop);
    pulse_textrec_free(m);
    pulse_sasrec_free(sm);
    pulse_dataset_free(ds);
    return rc;
}
