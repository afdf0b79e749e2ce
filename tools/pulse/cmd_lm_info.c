/* tools/pulse/cmd_lm_info.c — `pulse lm info MODEL` (or `-m MODEL`): architecture, hyper-parameters, tensor
 * types, vocabulary and chat-template presence of a GGUF file (printing only; the reader is src/core/gguf.c).
 * Last stdout line: one JSON object. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pulse/gguf.h"
#include "pulse/quant.h"

static void str_copy(char *dst, size_t n, pulse_gguf_str s) {
    size_t l = s.len < n - 1 ? (size_t)s.len : n - 1;
    memcpy(dst, s.ptr, l);
    dst[l] = 0;
}

/* arch-prefixed integer / float hyper-parameters; absent ones are skipped */
static void add_int(cJSON *o, const pulse_gguf *g, const char *arch, const char *suffix, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    if (pulse_gguf_get_i64(g, key, &v) == PULSE_OK) {
        cJSON_AddNumberToObject(o, name, (double)v);
        printf("  %-22s %" PRId64 "\n", name, v);
        return;
    }
    /* some files store per-layer arrays (e.g. head_count_kv); report the first element */
    pulse_gguf_type et;
    uint64_t cnt;
    int32_t first;
    if (pulse_gguf_get_arr_info(g, key, &et, &cnt) == PULSE_OK && cnt > 0 &&
        pulse_gguf_get_arr_i32(g, key, &first, 1) == PULSE_OK) {
        cJSON_AddNumberToObject(o, name, first);
        printf("  %-22s %d (per-layer array of %" PRIu64 ")\n", name, first, cnt);
    }
}

static void add_float(cJSON *o, const pulse_gguf *g, const char *arch, const char *suffix, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    float v;
    if (pulse_gguf_get_f32(g, key, &v) == PULSE_OK) {
        cJSON_AddNumberToObject(o, name, v);
        printf("  %-22s %g\n", name, (double)v);
    }
}

int cmd_lm_info(int argc, char **argv) {
    int all = 0, tensors = 0;
    const char *pos[1], *model = NULL;
    int npos = 0;
    const cli_opt opts[] = {
        {"--all|-a", CLI_FLAG, &all, "print every metadata key/value"},
        {"--tensors", CLI_FLAG, &tensors, "list every tensor (name, type, shape)"},
        {"--model|-m", CLI_STR, &model, "GGUF file (or give it as the argument)"},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof *opts),
                       "usage: pulse lm info [-m] MODEL.gguf [--all] [--tensors]", pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos + (model != NULL) != 1) {
        fprintf(stderr,
                "pulse lm info: expected one GGUF file, as -m FILE or as the argument (see --help)\n");
        return 2;
    }
    if (model) pos[0] = model;
    pulse_gguf *g;
    if (pulse_gguf_open(pos[0], &g)) return cli_fail("lm info");

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", pos[0]);
    cJSON_AddNumberToObject(o, "file_bytes", (double)pulse_gguf_file_size(g));
    cJSON_AddNumberToObject(o, "gguf_version", pulse_gguf_version(g));
    cJSON_AddNumberToObject(o, "n_kv", (double)pulse_gguf_n_kv(g));
    cJSON_AddNumberToObject(o, "n_tensors", (double)pulse_gguf_n_tensors(g));

    char arch[64] = "", name[256] = "";
    pulse_gguf_str s;
    if (pulse_gguf_get_str(g, "general.architecture", &s) == PULSE_OK) str_copy(arch, sizeof arch, s);
    if (pulse_gguf_get_str(g, "general.name", &s) == PULSE_OK) str_copy(name, sizeof name, s);
    printf("%s: GGUF v%u, %zu bytes, %zu kv, %zu tensors, alignment %u\n", pos[0], pulse_gguf_version(g),
           pulse_gguf_file_size(g), pulse_gguf_n_kv(g), pulse_gguf_n_tensors(g), pulse_gguf_alignment(g));
    printf("architecture: %s%s%s%s\n", arch[0] ? arch : "(none)", name[0] ? "  (" : "", name,
           name[0] ? ")" : "");
    cJSON_AddStringToObject(o, "architecture", arch);
    cJSON_AddStringToObject(o, "name", name);
    uint32_t ftype;
    if (pulse_gguf_get_u32(g, "general.file_type", &ftype) == PULSE_OK)
        cJSON_AddNumberToObject(o, "file_type", ftype);

    cJSON *hp = cJSON_AddObjectToObject(o, "hparams");
    printf("hyper-parameters:\n");
    if (arch[0]) {
        add_int(hp, g, arch, "block_count", "n_layer");
        add_int(hp, g, arch, "embedding_length", "n_embd");
        add_int(hp, g, arch, "feed_forward_length", "n_ff");
        add_int(hp, g, arch, "attention.head_count", "n_head");
        add_int(hp, g, arch, "attention.head_count_kv", "n_head_kv");
        add_int(hp, g, arch, "attention.key_length", "head_dim_k");
        add_int(hp, g, arch, "attention.value_length", "head_dim_v");
        add_int(hp, g, arch, "context_length", "n_ctx_train");
        add_int(hp, g, arch, "vocab_size", "n_vocab_hp");
        add_int(hp, g, arch, "attention.sliding_window", "sliding_window");
        add_int(hp, g, arch, "rope.dimension_count", "rope_dim");
        add_float(hp, g, arch, "rope.freq_base", "rope_freq_base");
        add_float(hp, g, arch, "rope.local.freq_base", "rope_freq_base_swa");
        add_float(hp, g, arch, "rope.scaling.factor", "rope_scaling_factor");
        add_float(hp, g, arch, "attention.layer_norm_rms_epsilon", "norm_rms_eps");
        add_float(hp, g, arch, "attention.layer_norm_epsilon", "norm_eps");
        add_float(hp, g, arch, "final_logit_softcapping", "final_logit_softcap");
        add_float(hp, g, arch, "attn_logit_softcapping", "attn_logit_softcap");
    }

    /* tensors: counts and bytes per type, parameter count */
    size_t counts[64] = {0}, bytes[64] = {0};
    double n_params = 0;
    int unsupported = 0;
    if (tensors) printf("tensors:\n");
    for (size_t i = 0; i < pulse_gguf_n_tensors(g); i++) {
        const pulse_gguf_tensor *t = pulse_gguf_tensor_at(g, i);
        int ti = (int)t->type < 64 ? (int)t->type : 63;
        counts[ti]++;
        bytes[ti] += t->nbytes;
        n_params += (double)t->ne[0] * (double)t->ne[1] * (double)t->ne[2] * (double)t->ne[3];
        if (!pulse_ggml_type_supported(t->type)) unsupported++;
        if (tensors) {
            char nb[128];
            str_copy(nb, sizeof nb, t->name);
            printf("  %-40s %-6s [%" PRId64, nb, pulse_ggml_type_name(t->type), t->ne[0]);
            for (uint32_t d = 1; d < t->n_dims; d++) printf(", %" PRId64, t->ne[d]);
            printf("]\n");
        }
    }
    cJSON *types = cJSON_AddObjectToObject(o, "tensor_types");
    printf("tensor types:");
    for (int ti = 0; ti < 64; ti++)
        if (counts[ti]) {
            printf("  %s x%zu (%.1f MB)", pulse_ggml_type_name(ti), counts[ti], (double)bytes[ti] / 1e6);
            cJSON_AddNumberToObject(types, pulse_ggml_type_name(ti), (double)counts[ti]);
        }
    printf("\nparameters: %.1f M%s\n", n_params / 1e6,
           unsupported ? "  (some tensor types unsupported)" : "");
    cJSON_AddNumberToObject(o, "n_params", n_params);
    cJSON_AddNumberToObject(o, "n_unsupported_tensors", unsupported);

    /* tokenizer */
    char tmodel[64] = "", tpre[64] = "";
    if (pulse_gguf_get_str(g, "tokenizer.ggml.model", &s) == PULSE_OK) str_copy(tmodel, sizeof tmodel, s);
    if (pulse_gguf_get_str(g, "tokenizer.ggml.pre", &s) == PULSE_OK) str_copy(tpre, sizeof tpre, s);
    uint64_t n_vocab = 0, n_merges = 0;
    pulse_gguf_get_arr_info(g, "tokenizer.ggml.tokens", NULL, &n_vocab);
    pulse_gguf_get_arr_info(g, "tokenizer.ggml.merges", NULL, &n_merges);
    uint32_t bos = UINT32_MAX, eos = UINT32_MAX;
    pulse_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos);
    pulse_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos);
    int has_tmpl = pulse_gguf_find_key(g, "tokenizer.chat_template") >= 0;
    printf("tokenizer: model %s, pre %s, vocab %" PRIu64 ", merges %" PRIu64, tmodel[0] ? tmodel : "(none)",
           tpre[0] ? tpre : "(none)", n_vocab, n_merges);
    if (bos != UINT32_MAX) printf(", bos %u", bos);
    if (eos != UINT32_MAX) printf(", eos %u", eos);
    printf(", chat template: %s\n", has_tmpl ? "yes" : "no");
    cJSON *tk = cJSON_AddObjectToObject(o, "tokenizer");
    cJSON_AddStringToObject(tk, "model", tmodel);
    cJSON_AddStringToObject(tk, "pre", tpre);
    cJSON_AddNumberToObject(tk, "n_vocab", (double)n_vocab);
    cJSON_AddNumberToObject(tk, "n_merges", (double)n_merges);
    if (bos != UINT32_MAX) cJSON_AddNumberToObject(tk, "bos", bos);
    if (eos != UINT32_MAX) cJSON_AddNumberToObject(tk, "eos", eos);
    cJSON_AddBoolToObject(tk, "chat_template", has_tmpl);

    if (all) {
        printf("metadata:\n");
        char kb[256], vb[512];
        for (size_t i = 0; i < pulse_gguf_n_kv(g); i++) {
            str_copy(kb, sizeof kb, pulse_gguf_kv_key(g, i));
            pulse_gguf_kv_format(g, i, vb, sizeof vb);
            printf("  %-45s %s\n", kb, vb);
        }
    }
    pulse_gguf_close(g);
    cli_print_json(o);
    return 0;
}
