/* recommend/internal.h — what the recommend module's files share and nothing outside it sees: the
 * evaluation's per-user results and their store (src/recommend/evalstore.c, used by decode.c). */
#ifndef PULSE_RECOMMEND_INTERNAL_H
#define PULSE_RECOMMEND_INTERNAL_H

#include <stdint.h>

#include "pulse/rationale.h"
#include "pulse/recommend.h"

/* One list's result in an evaluation. */
typedef struct {
    int done;            /* decoded by this run or read back from the store */
    int rank;            /* rank: the target's rank among the list (pulse_rank_list) */
    int hit, matches;    /* generate: target matched; candidates the output matched */
    int64_t cand_tokens; /* rank: candidate title tokens scored */
    char *text;          /* rank: the scores as a JSON array; generate: the output (malloc'd) */
} rec_eval_result;

/* The store key of an evaluation: model_hash over the GGUF's and the adapter's bytes, the adapter's scale
 * and the products' order (PULSE_QFAST); settings_hash over the decoder's settings, N, the split, the prompt
 * and the chunking; *settings_json (cJSON_free) what settings_hash hashes. */
pulse_status rec_evalstore_key(const char *model, const char *lora, float lora_scale,
                               const pulse_rec_params *p, int chat, const pulse_candset *cs,
                               char model_hash[17], char settings_hash[17], char **settings_json);
/* res[i] of every list i whose user has a row under the key with the same candidate list and target
 * position; *found = how many. */
pulse_status rec_evalstore_read(pulse_store *s, const pulse_dataset *ds, const pulse_candset *cs,
                                const char *phase, const char *mh, const char *sh, rec_eval_result *res,
                                int *found);
/* The results of lists idx[0..n) in one transaction. */
pulse_status rec_evalstore_put(pulse_store *s, const pulse_dataset *ds, const pulse_candset *cs,
                               const char *phase, const char *mh, const char *sh, const char *settings_json,
                               const char *model_name, const int *idx, int n, const rec_eval_result *res,
                               double seconds);

#endif
