/* tools/pulse/cmd_lm_train.c — `pulse lm train --model GGUF --data FILE.jsonl --out ADAPTER.gguf [--rank 8]
 * [--alpha 16] [--lr 2e-4] [--epochs N] [--batch B] [--grad-accum G] [--targets q,k,v,o] [--seed S]`: LoRA
 * fine-tuning on {"prompt", "completion"} JSON lines (loss on the completion), the adapter written in
 * llama.cpp's GGUF LoRA format. Progress on stderr, one JSONL line per step in --log (OUT.log.jsonl), a
 * resumable checkpoint (OUT.ckpt, --resume); the last stdout line is {"final_loss", "tokens", "seconds",
 * ...}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/dist.h"
#include "pulse/kernels.h"
#include "pulse/lm.h"

int cmd_lm_train(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL, *targets = "q,k,v,o", *sched = "cosine", *log = NULL,
               *ckpt = NULL, *init = NULL;
    int rank = 8, epochs = 1, batch = 8, accum = 1, seed = 42, threads = 0, warmup = -1, max_steps = 0,
        max_len = 0, no_eos = 0, resume = 0, ck_every = 50, no_ckpt_layers = 0, fast_base = 0, exact_base = 0;
    float alpha = 16, lr = 2e-4f, dropout = 0.05f, clip = 1.0f, wd = 0;
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF model file (llama, gemma3, qwen2)"},
        {"--data|-d", CLI_STR, &data,
         "JSON lines {\"prompt\": ..., \"completion\": ...} (loss on the completion)"},
        {"--out|-o", CLI_STR, &out, "adapter to write (llama.cpp's GGUF LoRA format)"},
        {"--rank", CLI_INT, &rank, "LoRA rank (8)", CLI_RANGE(1, 4096)},
        {"--alpha", CLI_FLOAT, &alpha, "LoRA alpha: the update is scaled by alpha / rank (16)",
         CLI_RANGE_OPEN_LO(0, 1e6)},
        {"--lr", CLI_FLOAT, &lr, "peak learning rate (2e-4)", CLI_RANGE_OPEN_LO(0, 10)},
        {"--epochs", CLI_INT, &epochs, "passes over the data (1)", CLI_RANGE(1, 1000000)},
        {"--batch", CLI_INT, &batch, "examples per micro-batch (8)", CLI_RANGE(1, 65536)},
        {"--grad-accum", CLI_INT, &accum, "micro-batches per optimizer step (1)", CLI_RANGE(1, 65536)},
        {"--targets", CLI_STR, &targets, "adapted projections: q,k,v,o,gate,up,down (q,k,v,o)"},
        {"--seed|-s", CLI_INT, &seed, "initialisation, dropout and data order (42)"},
        {"--dropout", CLI_FLOAT, &dropout, "dropout on the adapter input (0.05)", CLI_RANGE_OPEN_HI(0, 1)},
        {"--schedule", CLI_STR, &sched, "cosine|linear|constant after the warm-up (cosine)"},
        {"--warmup", CLI_INT, &warmup, "warm-up steps (-1: 3% of the steps)", CLI_RANGE(-1, CLI_INT_MAX)},
        {"--clip", CLI_FLOAT, &clip, "max gradient norm, 0 = off (1)", CLI_RANGE(0, 1e9)},
        {"--weight-decay", CLI_FLOAT, &wd, "AdamW weight decay (0)", CLI_RANGE(0, 10)},
        {"--max-steps", CLI_INT, &max_steps, "stop after this many optimizer steps (0: all epochs)",
         CLI_RANGE(0, CLI_INT_MAX)},
        {"--max-len", CLI_INT, &max_len,
         "tokens per example; longer prompts lose their oldest tokens (0: model)", CLI_RANGE(0, CLI_INT_MAX)},
        {"--no-eos", CLI_FLAG, &no_eos, "do not append EOS to the completions"},
        {"--init", CLI_STR, &init, "start from this adapter instead of a fresh one"},
        {"--log", CLI_STR, &log, "JSONL loss log, one line per step (OUT.log.jsonl; '-' = none)"},
        {"--checkpoint", CLI_STR, &ckpt, "resumable state (OUT.ckpt; '-' = none)"},
        {"--checkpoint-every", CLI_INT, &ck_every, "steps between checkpoints (50)",
         CLI_RANGE(1, CLI_INT_MAX)},
        {"--resume", CLI_FLAG, &resume, "continue from the checkpoint when it exists"},
        {"--no-recompute", CLI_FLAG, &no_ckpt_layers,
         "keep every layer's activations (more memory, no recompute)"},
        {"--exact-base", CLI_FLAG, &exact_base,
         "base products on unquantised activations, dX through bf16 (slower; the fp32 reference's numbers)"},
        {"--fast-base", CLI_FLAG, &fast_base,
         "q8 activations and int8 dX (the default; kept for old scripts)"},
        {"--threads|-t", CLI_INT, &threads, "threads (default: PULSE_THREADS / all)",
         CLI_RANGE(0, CLI_INT_MAX)},
    };
    int rc =
        cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                  "usage: pulse lm train --model GGUF --data FILE.jsonl --out ADAPTER.gguf [--rank 8] "
                  "[--alpha 16] [--lr 2e-4] [--epochs N] [--batch B] [--grad-accum G] [--targets q,k,v,o] "
                  "[--seed S]",
                  NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model || !data || !out) {
        fprintf(stderr, "pulse lm train: --model, --data and --out are required (see --help)\n");
        return 2;
    }
    unsigned mask = 0;
    if (pulse_lora_parse_targets(targets, &mask)) {
        fprintf(stderr, "pulse lm train: --targets: %s\n", pulse_last_error());
        return 2;
    }
    static const char *const sn[] = {"cosine", "linear", "constant"};
    static const int sv[] = {PULSE_LM_SCHED_COSINE, PULSE_LM_SCHED_LINEAR, PULSE_LM_SCHED_CONSTANT};
    int schedule = 0;
    if (cli_choice("lm train", "--schedule", sched, sn, sv, 3, &schedule)) return 2;
    if (cli_check_out_file("lm train", "--out", out)) return 2;
    char logp[4096], ckp[4096];
    snprintf(logp, sizeof logp, "%s", log ? log : out);
    if (!log) strncat(logp, ".log.jsonl", sizeof logp - strlen(logp) - 1);
    snprintf(ckp, sizeof ckp, "%s", ckpt ? ckpt : out);
    if (!ckpt) strncat(ckp, ".ckpt", sizeof ckp - strlen(ckp) - 1);
    const int use_log = strcmp(logp, "-") != 0, use_ck = strcmp(ckp, "-") != 0;
    if ((use_log && cli_check_out_file("lm train", "--log", logp)) ||
        (use_ck && cli_check_out_file("lm train", "--checkpoint", ckp)))
        return 2;
    cli_set_threads("lm train", threads);
    pulse_lm *m = NULL;
    pulse_tokenizer *tok = NULL;
    pulse_lora *a = NULL;
    pulse_lm_sft sft = {0};
    int ret = 0;
    if (pulse_lm_load(model, NULL, &m) || pulse_tokenizer_from_gguf(pulse_lm_gguf(m), &tok) ||
        pulse_lm_sft_read(data, m, tok, !no_eos, max_len, &sft)) {
        ret = cli_fail("lm train");
        goto done;
    }
    if (init) {
        if (pulse_lora_load(m, init, &a)) {
            ret = cli_fail("lm train");
            goto done;
        }
    } else {
        pulse_lora_params lp = pulse_lora_default_params();
        lp.rank = rank;
        lp.alpha = alpha;
        lp.targets = mask;
        lp.seed = (uint64_t)seed;
        if (pulse_lora_new(m, &lp, &a)) {
            ret = cli_fail("lm train");
            goto done;
        }
    }
    if (sft.n_cut > 0 && pulse_dist_rank() == 0)
        fprintf(stderr, "pulse lm train: %d of %d examples cut to --max-len (oldest prompt tokens dropped)\n",
                sft.n_cut, sft.n);
    {
        size_t np = 0;
        pulse_lora_params_data(a, &np);
        if (pulse_dist_rank() == 0)
            fprintf(stderr,
                    "pulse lm train: %d examples, %ld tokens; %d adapted tensors, rank %d, %zu parameters\n",
                    sft.n, sft.n_tokens, pulse_lora_n_tensors(a), pulse_lora_rank(a), np);
    }
    pulse_lm_train_params tp = pulse_lm_train_default_params();
    tp.lr = lr;
    tp.weight_decay = wd;
    tp.clip = clip;
    tp.dropout = dropout;
    tp.schedule = (pulse_lm_sched)schedule;
    tp.warmup_steps = warmup;
    tp.checkpoint_layers = !no_ckpt_layers;
    tp.exact_base = exact_base && !fast_base;
    tp.seed = (uint64_t)seed;
    tp.epochs = epochs;
    tp.batch = batch;
    tp.grad_accum = accum;
    tp.max_steps = max_steps;
    tp.checkpoint_path = use_ck ? ckp : NULL;
    tp.checkpoint_every = ck_every;
    tp.resume = resume;
    tp.log_path = use_log ? logp : NULL;
    pulse_lm_train_result r;
    /* on several ranks every rank holds the same adapter: rank 0 writes it */
    if (pulse_lm_train(m, a, sft.ex, sft.n, &tp, &r) || (pulse_dist_rank() == 0 && pulse_lora_save(a, out))) {
        ret = cli_fail("lm train");
        goto done;
    }
    if (pulse_dist_rank() == 0)
        fprintf(stderr, "pulse lm train: %d steps, loss %.4f -> %.4f, %.1f tokens/s, adapter %s\n", r.steps,
                r.first_loss, r.final_loss, r.seconds > 0 ? r.tokens / r.seconds : 0.0, out);
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "final_loss", r.final_loss);
        cJSON_AddNumberToObject(o, "first_loss", r.first_loss);
        cJSON_AddNumberToObject(o, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(o, "loss_tokens", (double)r.loss_tokens);
        cJSON_AddNumberToObject(o, "seconds", r.seconds);
        cJSON_AddNumberToObject(o, "tokens_per_s", r.seconds > 0 ? r.tokens / r.seconds : 0.0);
        cJSON_AddNumberToObject(o, "steps", r.steps);
        cJSON_AddNumberToObject(o, "resumed_from", r.resumed_from);
        cJSON_AddNumberToObject(o, "examples", sft.n);
        cJSON_AddNumberToObject(o, "peak_rss_mb", (double)r.peak_rss / (1024.0 * 1024.0));
        cJSON_AddStringToObject(o, "adapter", out);
        if (pulse_dist_size() > 1) { /* data-parallel: the adapter's gradient, summed over the ranks */
            size_t np = 0;
            pulse_lora_params_data(a, &np);
            cJSON_AddNumberToObject(o, "comm_seconds", r.comm_seconds);
            cJSON_AddNumberToObject(o, "allreduce_bytes_per_step", 4.0 * (double)np + 24);
        }
        cli_print_json(o);
    }
done:
    pulse_lm_sft_free(&sft);
    pulse_lora_free(a);
    pulse_tokenizer_free(tok);
    pulse_lm_free(m);
    return ret;
}
