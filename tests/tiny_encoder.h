/* tests/tiny_encoder.h — writes tiny random BERT / DistilBERT checkpoints (config.json + vocab.txt +
 * model.safetensors) for tests that need a real encoder folder without downloaded weights. */
#ifndef PULSE_TESTS_TINY_ENCODER_H
#define PULSE_TESTS_TINY_ENCODER_H

#include <stdio.h>
#include <stdlib.h>

#include "pulse/safetensors.h"

static const char *const VOCAB[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",    "b",    "c",
                                    "d",     "e",     "the",   "cat",   "sat",    "on",   "mat",  "dog",
                                    "##s",   "##ed",  ".",     ",",     "red",    "blue", "nail", "polish",
                                    "skin",  "oil",   "##ing", "is",    "it",     "and"};
#define NV ((int)(sizeof VOCAB / sizeof VOCAB[0]))

/* writes a tiny random model; distil = DistilBERT names and config */
static inline int write_model(const char *dir, int distil, int C, int NH, int L, int FF, int P,
                              uint64_t seed) {
    char path[1100];
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    if (system(path) != 0) return 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    if (distil)
        fprintf(
            f,
            "{\"model_type\": \"distilbert\", \"architectures\": [\"DistilBertModel\"], \"vocab_size\": %d, "
            "\"dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"hidden_dim\": %d, "
            "\"max_position_embeddings\": %d, \"activation\": \"gelu\", \"dropout\": 0.1, "
            "\"sinusoidal_pos_embds\": false}\n",
            NV, C, L, NH, FF, P);
    else
        fprintf(f,
                "{\"model_type\": \"bert\", \"architectures\": [\"BertModel\"], \"vocab_size\": %d, "
                "\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                "\"intermediate_size\": %d, \"max_position_embeddings\": %d, \"type_vocab_size\": 2, "
                "\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12, \"hidden_dropout_prob\": 0.1}\n",
                NV, C, L, NH, FF, P);
    fclose(f);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    f = fopen(path, "w");
    if (!f) return 0;
    for (int i = 0; i < NV; i++) fprintf(f, "%s\n", VOCAB[i]);
    fclose(f);

    pulse_rng r;
    pulse_rng_seed(&r, seed);
    pulse_st_out t[64];
    float *bufs[64];
    char names[64][96];
    int n = 0;
#define T2(nm, s0, s1, kind)                                                                                 \
    do {                                                                                                     \
        snprintf(names[n], sizeof names[n], "%s", nm);                                                       \
        size_t cnt = (size_t)(s0) * (size_t)((s1) ? (s1) : 1);                                               \
        bufs[n] = malloc(sizeof(float) * cnt);                                                               \
        for (size_t i = 0; i < cnt; i++)                                                                     \
            bufs[n][i] = (kind) == 1   ? 1.0f + 0.2f * pulse_rng_normal(&r)                                  \
                         : (kind) == 2 ? 0.1f * pulse_rng_normal(&r)                                         \
                                       : 0.4f * pulse_rng_normal(&r);                                        \
        t[n].name = names[n];                                                                                \
        t[n].data = bufs[n];                                                                                 \
        t[n].n_dims = (s1) ? 2 : 1;                                                                          \
        t[n].shape[0] = (s0);                                                                                \
        t[n].shape[1] = (s1);                                                                                \
        n++;                                                                                                 \
    } while (0)
    T2("embeddings.word_embeddings.weight", NV, C, 0);
    T2("embeddings.position_embeddings.weight", P, C, 0);
    if (!distil) T2("embeddings.token_type_embeddings.weight", 2, C, 0);
    T2("embeddings.LayerNorm.weight", C, 0, 1);
    T2("embeddings.LayerNorm.bias", C, 0, 2);
    static const char *bn[8] = {
        "attention.self.query",       "attention.self.key", "attention.self.value", "attention.output.dense",
        "attention.output.LayerNorm", "intermediate.dense", "output.dense",         "output.LayerNorm"};
    static const char *dn[8] = {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                "sa_layer_norm",   "ffn.lin1",        "ffn.lin2",        "output_layer_norm"};
    for (int l = 0; l < L; l++) {
        int rows[8] = {C, C, C, C, C, FF, C, C}, cols[8] = {C, C, C, C, 0, C, FF, 0};
        for (int k = 0; k < 8; k++) {
            char nm[96];
            snprintf(nm, sizeof nm, "%s.%d.%s.weight", distil ? "transformer.layer" : "encoder.layer", l,
                     distil ? dn[k] : bn[k]);
            T2(nm, rows[k], cols[k], cols[k] ? 0 : 1);
            snprintf(nm, sizeof nm, "%s.%d.%s.bias", distil ? "transformer.layer" : "encoder.layer", l,
                     distil ? dn[k] : bn[k]);
            T2(nm, rows[k], 0, 2);
        }
    }
#undef T2
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int ok = pulse_safetensors_write(path, t, n, NULL, 0) == PULSE_OK;
    for (int i = 0; i < n; i++) free(bufs[i]);
    return ok;
}

#endif
