/* tools/pulse/cmd_thought.c — `pulse thought pairs|train|score|plot`: argument parsing and printing for the
 * Thought Space; all work is in src/thought/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/data.h"
#include "pulse/dist.h"
#include "pulse/encoder.h"
#include "pulse/thought.h"
#include "pulse/kernels.h"

int cmd_thought_pairs(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *heldout = NULL;
    pulse_standin_params p = pulse_standin_default_params();
    int seed = (int)p.seed;
    cli_opt opts[] = {
        {"--data|-d", CLI_STR, &data, "dataset folder with item titles (e.g. ../shared/data/amazon-beauty)"},
        {"--out|-o", CLI_STR, &out, "training pairs JSONL to write"},
        {"--heldout", CLI_STR, &heldout, "held-out pairs JSONL to write (disjoint users)"},
        {"--train-users", CLI_INT, &p.n_train, "number of training users (default 6000)",
         CLI_RANGE(1, CLI_INT_MAX)},
        {"--heldout-users", CLI_INT, &p.n_heldout, "number of held-out users (default 1000)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--max-history", CLI_INT, &p.max_history, "history items in the behaviour text (default 10)",
         CLI_RANGE(1, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "user shuffle seed (default 42)"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse thought pairs --data DIR --out PAIRS.jsonl [--heldout HELD.jsonl]\n"
        "Builds stand-in (behaviour, rationale) pairs from a dataset: rationale = the chosen item's\n"
        "categories + brand + title words absent from the history (until Phase-1 rationales exist).",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!data || !out) {
        fprintf(stderr, "pulse thought pairs: --data and --out are required (see --help)\n");
        return 2;
    }
    if (cli_check_out_file("thought pairs", "--out", out) ||
        (heldout && cli_check_out_file("thought pairs", "--heldout", heldout)))
        return 2;
    p.seed = (uint64_t)seed;
    pulse_dataset *ds = NULL;
    pulse_data_params dp = pulse_data_default_params();
    if (pulse_dataset_load(data, &dp, &ds) != PULSE_OK) return cli_fail("thought pairs");
    int nt = 0, nh = 0;
    pulse_status st = pulse_thought_build_standin_pairs(ds, &p, out, heldout, &nt, &nh);
    pulse_dataset_free(ds);
    if (st != PULSE_OK) return cli_fail("thought pairs");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "train", out);
    cJSON_AddNumberToObject(o, "n_train", nt);
    if (heldout) cJSON_AddStringToObject(o, "heldout", heldout);
    cJSON_AddNumberToObject(o, "n_heldout", nh);
    cli_print_json(o);
    return 0;
}

static cJSON *stats_json(const pulse_infonce_stats *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "recall1", s->recall1);
    cJSON_AddNumberToObject(o, "mrr", s->mrr);
    cJSON_AddNumberToObject(o, "loss", s->loss);
    cJSON_AddNumberToObject(o, "pos_cos", s->pos_cos);
    cJSON_AddNumberToObject(o, "neg_cos", s->neg_cos);
    cJSON_AddNumberToObject(o, "n", s->n);
    return o;
}

int cmd_thought_train(int argc, char **argv) {
    pulse_thought_train_params p = pulse_thought_train_default_params();
    const char *pairs = NULL, *out = NULL, *pooling = NULL, *precision = NULL;
    int seed = (int)p.seed, no_resume = 0, threads = 0;
    cli_opt opts[] = {
        {"--pairs", CLI_STR, &pairs, "training pairs JSONL (user, rationale, behaviour | history + answer)"},
        {"--encoder|-e", CLI_STR, &p.encoder, "HF encoder folder both towers start from"},
        {"--out|-o", CLI_STR, &out, "output folder (space.json + checkpoints; resumed when present)"},
        {"--heldout", CLI_STR, &p.heldout, "held-out pairs JSONL for the per-epoch validation metric"},
        {"--epochs", CLI_INT, &p.epochs, "epochs (default 53, as the authors)", CLI_RANGE(1, 1000000)},
        {"--batch", CLI_INT, &p.batch, "batch size (default 16)", CLI_RANGE(2, 1000000)},
        {"--negatives", CLI_INT, &p.negatives, "K in-batch negatives per row (default 10)",
         CLI_RANGE(1, 1000000)},
        {"--tau", CLI_FLOAT, &p.tau, "temperature (default 1.0)", CLI_RANGE_OPEN_LO(0, 1000)},
        {"--lr", CLI_FLOAT, &p.lr, "AdamW learning rate (default 2e-5)", CLI_RANGE_OPEN_LO(0, 10)},
        {"--weight-decay", CLI_FLOAT, &p.weight_decay, "AdamW weight decay (default 0.01)",
         CLI_RANGE(0, 1000)},
        {"--grad-clip", CLI_FLOAT, &p.grad_clip, "global gradient-norm clip per encoder (default 0 = off)",
         CLI_RANGE(0, 1e30)},
        {"--max-len", CLI_INT, &p.max_len, "max tokens per text (default 128)", CLI_RANGE(2, 1000000)},
        {"--pooling", CLI_STR, &pooling, "cls | mean | auto (default cls, as the authors)"},
        {"--shared", CLI_FLAG, &p.shared, "one encoder for behaviour and rationale (default: two)"},
        {"--freeze", CLI_INT, &p.freeze_layers, "freeze the embeddings and the lower N layers (default 0)",
         CLI_RANGE(0, 1000000)},
        {"--proj-dim", CLI_INT, &p.proj_dim, "add a linear projection head of this size (default 0 = none)",
         CLI_RANGE(0, 1000000)},
        {"--dropout", CLI_FLOAT, &p.dropout, "hidden dropout (default: the config's)",
         CLI_RANGE_OPEN_HI(0, 1)},
        {"--max-pairs", CLI_INT, &p.max_pairs, "use only the first N training pairs (default 0 = all)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--seed|-s", CLI_INT, &seed, "seed (default 42)"},
        {"--no-resume", CLI_FLAG, &no_resume, "start afresh even when --out holds a checkpoint"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: all)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--precision", CLI_STR, &precision,
         "fp32 | bf16 | auto: matrix products in training (bf16: fp32 sums and weights; auto: bf16 where "
         "the CPU runs it faster; default fp32)"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse thought train --pairs FILE --encoder DIR --out DIR [options]\n"
        "Trains the Thought Space: behaviour encoder B and rationale encoder R with InfoNCE (Eq. 1).",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!pairs || !p.encoder || !out) {
        fprintf(stderr, "pulse thought train: --pairs, --encoder and --out are required (see --help)\n");
        return 2;
    }
    int pool = p.pooling, prec = p.precision;
    if (cli_encoder_choices("thought", pooling, precision, &pool, &prec)) return 2;
    p.pooling = (pulse_pooling)pool;
    p.precision = (pulse_precision)prec;
    if (cli_check_out_dir("thought train", "--out", out)) return 2;
    p.seed = (uint64_t)seed;
    p.resume = !no_resume;
    cli_set_threads("thought train", threads);
    pulse_thought_epoch hist[1024];
    int nh = 0;
    double t0 = pulse_now();
    pulse_status st = pulse_thought_train(pairs, out, &p, hist, 1024, &nh);
    if (st != PULSE_OK) return cli_fail("thought train");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "space", out);
    cJSON_AddNumberToObject(o, "epochs", p.epochs);
    cJSON_AddNumberToObject(o, "seconds", pulse_now() - t0);
    cJSON *h = cJSON_AddArrayToObject(o, "history");
    for (int i = 0; i < nh; i++) {
        cJSON *e = stats_json(&hist[i].val);
        cJSON_AddNumberToObject(e, "epoch", hist[i].epoch);
        cJSON_AddNumberToObject(e, "train_loss", hist[i].train_loss);
        cJSON_AddNumberToObject(e, "seconds", hist[i].seconds);
        cJSON_AddItemToArray(h, e);
    }
    if (pulse_dist_size() > 1 && nh > 0) { /* data-parallel: the last epoch's communication */
        cJSON_AddNumberToObject(o, "comm_seconds", hist[nh - 1].comm_seconds);
        cJSON_AddNumberToObject(o, "comm_bytes_per_step", hist[nh - 1].comm_bytes_per_step);
    }
    cli_print_json(o);
    return 0;
}

int cmd_thought_score(int argc, char **argv) {
    const char *space = NULL, *behaviour = NULL, *answer = NULL, *bfile = NULL, *input = NULL;
    cli_strs rats = {0}, history = {0};
    int topk = 0;
    char *btext = NULL, *itext = NULL;
    cli_opt opts[] = {
        {"--space", CLI_STR, &space, "trained space folder (or a plain encoder folder)"},
        {"--behaviour", CLI_STR, &behaviour, "behaviour text"},
        {"--history", CLI_STRS, &history,
         "a history title (builds the authors' behaviour text with --answer)"},
        {"--answer", CLI_STR, &answer, "the chosen item's title"},
        {"--behaviour-file", CLI_STR, &bfile,
         "file holding the behaviour text (one trailing newline dropped)"},
        {"--rationale", CLI_STRS, &rats, "a rationale to score"},
        {"--input|-i", CLI_STR, &input, "file of rationales to score, one per line ('-' = stdin)"},
        {"--top-k", CLI_INT, &topk, "print the k best rationales (default 0 = none)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int r = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                      "usage: pulse thought score --space DIR --behaviour STR|--behaviour-file F --rationale "
                      "STR ...|--input F\n"
                      "Cosine between a behaviour and rationale(s) in the Thought Space.",
                      NULL, 0, NULL);
    if (r == 0 && behaviour && bfile) {
        fprintf(stderr, "pulse thought score: give --behaviour or --behaviour-file, not both\n");
        r = 2;
    }
    if (r == 0 && bfile) {
        size_t l = 0;
        if (!(btext = cli_read_text("thought score", "--behaviour-file", bfile, &l)))
            r = 2;
        else {
            if (l > 0 && btext[l - 1] == '\n') btext[--l] = 0;
            if (l > 0 && btext[l - 1] == '\r') btext[--l] = 0;
            behaviour = btext;
        }
    }
    if (r == 0 && input) {
        size_t l = 0;
        if (!(itext = cli_read_text("thought score", "--input", input, &l))) r = 2;
        for (char *line = itext; r == 0 && line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            size_t ll = strlen(line);
            if (ll > 0 && line[ll - 1] == '\r') line[ll - 1] = 0;
            const char **nv = realloc(rats.v, sizeof(char *) * (size_t)(rats.n + 1));
            if (!nv) {
                fprintf(stderr, "pulse thought score: out of memory\n");
                r = 2;
                break;
            }
            rats.v = nv;
            rats.v[rats.n++] = line;
            line = nl ? nl + 1 : line + ll;
        }
    }
    if (r) {
        free(rats.v), free(history.v), free(btext), free(itext);
        return r == 1 ? 0 : 2;
    }
    char *built = NULL;
    if (!behaviour && answer) behaviour = built = pulse_behaviour_text(history.v, history.n, answer);
    if (!space || !behaviour || rats.n == 0) {
        fprintf(stderr, "pulse thought score: --space, --behaviour (or --behaviour-file or --answer) and "
                        "--rationale (or --input) are required\n");
        free(rats.v), free(history.v), free(built), free(btext), free(itext);
        return 2;
    }
    pulse_thought_space *s = NULL;
    float *cos = malloc(sizeof(float) * (size_t)rats.n);
    int rc = 0;
    if (!cos || pulse_thought_space_load(space, NULL, &s) != PULSE_OK ||
        pulse_thought_score(s, behaviour, rats.v, rats.n, cos) != PULSE_OK) {
        rc = cli_fail("thought score");
    } else {
        cJSON *o = cJSON_CreateObject();
        if (rats.n == 1) cJSON_AddNumberToObject(o, "cosine", cos[0]);
        cJSON *a = cJSON_AddArrayToObject(o, "cosines");
        for (int i = 0; i < rats.n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(cos[i]));
        if (topk > 0) {
            int k = topk < rats.n ? topk : rats.n;
            int *idx = malloc(sizeof(int) * (size_t)k);
            float *c = malloc(sizeof(float) * (size_t)k);
            if (idx && c && pulse_thought_topk(s, behaviour, rats.v, rats.n, k, idx, c) == PULSE_OK) {
                cJSON *t = cJSON_AddArrayToObject(o, "top");
                for (int i = 0; i < k; i++) {
                    cJSON *e = cJSON_CreateObject();
                    cJSON_AddNumberToObject(e, "index", idx[i]);
                    cJSON_AddNumberToObject(e, "cosine", c[i]);
                    cJSON_AddStringToObject(e, "rationale", rats.v[idx[i]]);
                    cJSON_AddItemToArray(t, e);
                }
            }
            free(idx), free(c);
        }
        cli_print_json(o);
    }
    pulse_thought_space_free(s);
    free(cos), free(rats.v), free(history.v), free(built), free(btext), free(itext);
    return rc;
}

int cmd_thought_eval(int argc, char **argv) {
    const char *space = NULL, *pairs = NULL, *pooling = NULL;
    int K = 10, seed = 42, pool = PULSE_POOL_AUTO;
    cli_opt opts[] = {
        {"--space", CLI_STR, &space, "trained space folder (or a plain encoder folder = untrained)"},
        {"--pairs", CLI_STR, &pairs, "held-out pairs JSONL"},
        {"--negatives", CLI_INT, &K, "K other users' rationales per row (default 10: 11 candidates)",
         CLI_RANGE(1, 1000000)},
        {"--seed|-s", CLI_INT, &seed, "negative sampling seed (default 42)"},
        {"--pooling", CLI_STR, &pooling,
         "cls | mean | auto: pooling of a plain encoder folder (default auto)"},
    };
    int r = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
                      "usage: pulse thought eval --space DIR --pairs FILE\n"
                      "Recall@1 / MRR of each behaviour's own rationale among 1 + K others.",
                      NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!space || !pairs) {
        fprintf(stderr, "pulse thought eval: --space and --pairs are required\n");
        return 2;
    }
    if (cli_encoder_choices("thought", pooling, NULL, &pool, NULL)) return 2;
    pulse_thought_space_params sp = pulse_thought_space_default_params();
    sp.pooling = (pulse_pooling)pool;
    pulse_pair *pp = NULL;
    int n = 0;
    pulse_thought_space *s = NULL;
    pulse_infonce_stats st;
    if (pulse_pairs_load(pairs, &pp, &n) != PULSE_OK ||
        pulse_thought_space_load(space, &sp, &s) != PULSE_OK ||
        pulse_thought_evaluate(s, pp, n, K, (uint64_t)seed, &st) != PULSE_OK) {
        pulse_pairs_free(pp, n);
        pulse_thought_space_free(s);
        return cli_fail("thought eval");
    }
    cJSON *o = stats_json(&st);
    cJSON_AddStringToObject(o, "space", space);
    cJSON_AddNumberToObject(o, "candidates", K + 1);
    cli_print_json(o);
    pulse_pairs_free(pp, n);
    pulse_thought_space_free(s);
    return 0;
}

/* Embed n anchors (behaviour), their positives and one negative each (another user's rationale) in a space.
 */
static pulse_status embed_triplets(const char *dir, int pooling, const pulse_pair *pp, const int *negidx,
                                   int n, float **out, int *dim) {
    pulse_thought_space *s = NULL;
    pulse_thought_space_params sp = pulse_thought_space_default_params();
    sp.pooling = (pulse_pooling)pooling;
    pulse_status st = pulse_thought_space_load(dir, &sp, &s);
    if (st != PULSE_OK) return st;
    int D = pulse_thought_space_dim(s);
    const char **t = malloc(sizeof(char *) * (size_t)n * 2);
    float *x = malloc(sizeof(float) * (size_t)n * 3 * D);
    if (!t || !x) st = pulse_set_error(PULSE_ERR_NOMEM, "out of memory");
    for (int i = 0; st == PULSE_OK && i < n; i++) {
        t[i] = pp[i].behaviour;
        t[n + i] = pp[i].rationale;
    }
    if (st == PULSE_OK) st = pulse_thought_embed_behaviour(s, t, n, x);
    for (int i = 0; st == PULSE_OK && i < n; i++) t[i] = pp[negidx[i]].rationale;
    if (st == PULSE_OK) st = pulse_thought_embed_rationale(s, t + n, n, x + (size_t)n * D);
    if (st == PULSE_OK) st = pulse_thought_embed_rationale(s, t, n, x + (size_t)2 * n * D);
    free(t);
    pulse_thought_space_free(s);
    if (st != PULSE_OK) {
        free(x);
        return st;
    }
    *out = x;
    *dim = D;
    return PULSE_OK;
}

int cmd_thought_plot(int argc, char **argv) {
    const char *pairs = NULL, *before = NULL, *after = NULL, *out = NULL, *pooling = NULL;
    int n = 300, seed = 42, pool = PULSE_POOL_AUTO;
    pulse_tsne_params tp = pulse_tsne_default_params();
    cli_opt opts[] = {
        {"--pairs", CLI_STR, &pairs, "held-out pairs JSONL"},
        {"--before", CLI_STR, &before, "space (or encoder folder) before training"},
        {"--after", CLI_STR, &after, "trained space folder"},
        {"--out|-o", CLI_STR, &out, "SVG file to write"},
        {"--anchors|--n", CLI_INT, &n, "anchors to plot (default 300)", CLI_RANGE(2, 1000000)},
        {"--perplexity", CLI_FLOAT, &tp.perplexity, "t-SNE perplexity (default 30)",
         CLI_RANGE_OPEN_LO(0, 1e6)},
        {"--iterations", CLI_INT, &tp.iterations, "t-SNE iterations (default 1000)", CLI_RANGE(1, 100000000)},
        {"--seed|-s", CLI_INT, &seed, "seed for the negatives and t-SNE (default 42)"},
        {"--pooling", CLI_STR, &pooling,
         "cls | mean | auto: pooling of a plain encoder folder (default auto)"},
    };
    int r = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof opts[0]),
        "usage: pulse thought plot --pairs FILE --before DIR --after DIR --out FIG.svg\n"
        "The paper's Figure 3: t-SNE of behaviour vectors, their rationales and one negative each,\n"
        "before vs after training, as one SVG with two panels.",
        NULL, 0, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!pairs || !before || !after || !out) {
        fprintf(stderr, "pulse thought plot: --pairs, --before, --after and --out are required\n");
        return 2;
    }
    if (cli_check_out_file("thought plot", "--out", out)) return 2;
    if (cli_encoder_choices("thought", pooling, NULL, &pool, NULL)) return 2;
    pulse_pair *pp = NULL;
    int np = 0;
    if (pulse_pairs_load(pairs, &pp, &np) != PULSE_OK) return cli_fail("thought plot");
    if (n > np) n = np;
    tp.seed = (uint64_t)seed;
    int *negidx = malloc(sizeof(int) * (size_t)n);
    pulse_rng rng;
    pulse_rng_seed(&rng, (uint64_t)seed);
    pulse_infonce_sample_negatives(negidx, n, 1, &rng);
    float *xb = NULL, *xa = NULL, *yb = malloc(sizeof(float) * 6 * (size_t)n),
          *ya = malloc(sizeof(float) * 6 * (size_t)n);
    int D = 0, rc = 0;
    double klb = 0, kla = 0;
    pulse_infonce_stats sb, sa;
    if (!negidx || !yb || !ya || embed_triplets(before, pool, pp, negidx, n, &xb, &D) != PULSE_OK ||
        embed_triplets(after, pool, pp, negidx, n, &xa, &D) != PULSE_OK ||
        pulse_tsne(xb, 3 * n, D, &tp, yb, &klb) != PULSE_OK ||
        pulse_tsne(xa, 3 * n, D, &tp, ya, &kla) != PULSE_OK) {
        rc = cli_fail("thought plot");
    } else {
        /* mean cosine of anchors to positives / negatives in each space, for the caption */
        double pb = 0, nb = 0, pa = 0, na = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < D; c++) {
                size_t a = (size_t)i * D + c, p = (size_t)(n + i) * D + c, q = (size_t)(2 * n + i) * D + c;
                pb += (double)xb[a] * xb[p], nb += (double)xb[a] * xb[q];
                pa += (double)xa[a] * xa[p], na += (double)xa[a] * xa[q];
            }
        sb.pos_cos = pb / n, sb.neg_cos = nb / n, sa.pos_cos = pa / n, sa.neg_cos = na / n;
        char tb[128], ta[128], cap[256];
        snprintf(tb, sizeof tb, "Before training (mean cos: positive %.3f, negative %.3f)", sb.pos_cos,
                 sb.neg_cos);
        snprintf(ta, sizeof ta, "After training (mean cos: positive %.3f, negative %.3f)", sa.pos_cos,
                 sa.neg_cos);
        snprintf(cap, sizeof cap,
                 "t-SNE (perplexity %.0f, seed %d) of %d held-out behaviours, their rationales and one "
                 "negative each.",
                 tp.perplexity, seed, n);
        if (pulse_thought_plot_svg(out, yb, ya, n, tb, ta, cap) != PULSE_OK) {
            rc = cli_fail("thought plot");
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "svg", out);
            cJSON_AddNumberToObject(o, "n", n);
            cJSON_AddNumberToObject(o, "before_pos_cos", sb.pos_cos);
            cJSON_AddNumberToObject(o, "before_neg_cos", sb.neg_cos);
            cJSON_AddNumberToObject(o, "after_pos_cos", sa.pos_cos);
            cJSON_AddNumberToObject(o, "after_neg_cos", sa.neg_cos);
            cJSON_AddNumberToObject(o, "kl_before", klb);
            cJSON_AddNumberToObject(o, "kl_after", kla);
            cli_print_json(o);
        }
    }
    free(negidx), free(xb), free(xa), free(yb), free(ya);
    pulse_pairs_free(pp, np);
    return rc;
}
