/* pulse/rationale.h — PULSE rationales: the per-user record both phases share (history, chosen item, similar
 * users' items), the prompt pieces, the extractor that accepts what small models emit, the SQLite store
 * (one row per dataset, user, phase, model file hash, settings hash) and the Phase-1 job (hindsight "why"
 * rationales, batched on the SLM runtime, resumable).
 *
 * Leakage rule: a record holds only training items (leave-one-out: the last two items of a sequence are valid
 * and test); the chosen item is the user's LAST TRAINING item, the history the training items before it,
 * similar users contribute their training items only. Dataset text (titles) is untrusted: it is tokenized as
 * text, never as control tokens. */
#ifndef PULSE_RATIONALE_H
#define PULSE_RATIONALE_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"
#include "pulse/data.h"
#include "pulse/lm.h"
#include "pulse/sasrec.h"
#include "pulse/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the per-user record ---- */
typedef struct {
    int max_history;      /* the last H training items before the chosen one (default 10) */
    int history_tokens;   /* token budget of the history block: oldest items dropped first (default 320) */
    int title_bytes;      /* one title is cut to this many bytes at a UTF-8 boundary (default 200) */
    int n_similar;        /* neighbours from SASRec user vectors (default 5; 0 = none) */
    int similar_per_user; /* a neighbour's most recent training items taken (default 3) */
    int similar_tokens;   /* token budget of the similar-users block (default 160) */
} pulse_record_params;
pulse_record_params pulse_record_default_params(void);

typedef struct {
    int user;             /* dataset user index */
    const char *user_key; /* the dataset's own id (owned by the dataset) */
    int n_history;
    int *history; /* item ids, oldest first: the last <= max_history of seq[0 .. train_len - 1), in budget */
    int chosen;   /* seq[train_len - 1]: the last training item */
    int n_similar_users;
    int *similar_users; /* neighbour user indices, most similar first (cosine of SASRec vectors) */
    int n_similar_items;
    int *similar_items; /* neighbours' training items (no repeats, none of the user's history) in budget */
    char *history_text; /* "1. title\n2. title\n..." (oldest first) */
    char *chosen_text;  /* the chosen item's title (cut to title_bytes) */
    char *similar_text; /* "- title\n- title\n" or "" */
    char *behaviour;    /* pulse_behaviour_text: "[CONTEXT] History: t1, t2 [CHOSEN_ITEM] chosen" */
    int history_tok;    /* tokens of history_text (the recorder's tokenizer, or bytes / 4 without one) */
    int similar_tok;    /* tokens of similar_text */
} pulse_record;
void pulse_record_free(pulse_record *rec); /* frees the arrays and texts, not rec itself */

/* 1 when a user can have a record: at least 2 training items (a history and a chosen one) and a titled
 * chosen item. */
int pulse_record_eligible(const pulse_dataset *ds, int user);
/* The first n eligible users of a seeded permutation of all users (the same seed gives the same order, so a
 * larger n extends a smaller one). users gets up to n ids; *n_out how many. */
pulse_status pulse_record_select_users(const pulse_dataset *ds, int n, uint64_t seed, int *users, int *n_out);

typedef struct pulse_recorder pulse_recorder;
/* ds must outlive the recorder. sasrec (may be NULL: no similar users) gives user vectors over each user's
 * training prefix (PULSE_SPLIT_VALID), computed here once for all users. tok (may be NULL: 4 bytes per
 * token) counts the budgets. */
pulse_status pulse_recorder_new(const pulse_dataset *ds, pulse_sasrec *sasrec, const pulse_tokenizer *tok,
                                const pulse_record_params *p /* NULL = defaults */, pulse_recorder **out);
void pulse_recorder_free(pulse_recorder *r);
pulse_status pulse_recorder_build(pulse_recorder *r, int user, pulse_record *out);
/* The history and similar-users items as JSON arrays of titles (malloc'd; for the store). */
char *pulse_record_history_json(const pulse_record *rec);
char *pulse_record_similar_json(const pulse_record *rec);

/* ---- prompts ---- */
/* The fixed Phase-1 instruction: comes first in every prompt so all users share its KV prefix. */
const char *pulse_phase1_instruction(void);
/* The per-user part of the Phase-1 prompt: history, chosen item, the answer cue (malloc'd). */
char *pulse_phase1_user_text(const pulse_record *rec);
/* What the answer is primed with ({"rationale": ") when priming is on; the extractor sees primer + output. */
const char *pulse_phase1_primer(void);
/* Token ids of a prompt, instruction first. chat: instruction = system message, user_text = the user turn
 * (the model's chat format, PULSE_CHAT_AUTO), then the assistant opener; raw: instruction + "\n\n" +
 * user_text with BOS as the tokenizer wants. primer (may be NULL) follows as text. Control-token text inside
 * instruction / user_text / primer stays text. *ids malloc'd. */
pulse_status pulse_prompt_tokenize(const pulse_tokenizer *tok, int chat, const char *instruction,
                                   const char *user_text, const char *primer, int **ids, int *n);

/* ---- extraction ---- */
typedef enum {
    PULSE_EXTRACT_OK = 0,
    PULSE_EXTRACT_EMPTY = 1,      /* nothing (or fewer than 3 words) */
    PULSE_EXTRACT_COPY = 2,       /* a copy of the prompt (or of the instruction's example) */
    PULSE_EXTRACT_NO_CONTENT = 3, /* no content words (placeholders, punctuation, stop words, repeats) */
} pulse_extract_status;
const char *pulse_extract_status_str(pulse_extract_status s);
/* The rationale in a model's raw output: {"rationale": "..."} with double or single quotes, inside code
 * fences, followed by trailing text, or an unclosed string at the token limit; else the plain text. Spaces
 * are normalised. prompt (may be NULL) is what the model saw (for the copy check). *text gets a malloc'd
 * string on OK, NULL otherwise. */
pulse_extract_status pulse_rationale_extract(const char *raw, const char *prompt, char **text);
int pulse_count_words(const char *s);

/* ---- the store: SQLite (WAL), one row per (dataset, user, phase, model_hash, settings_hash) ---- */
typedef struct pulse_store pulse_store;
typedef struct {
    const char *dataset, *user, *phase, *model_hash, *settings_hash; /* the key (user = the dataset's key) */
    int user_index;                                                  /* dataset user index */
    int ok;                /* 1: text is a rationale; 0: a failure (text NULL, raw kept) */
    const char *text;      /* the rationale (or ToT's kept chain) */
    double score;          /* NAN when none (Phase 1) */
    const char *raw;       /* the model's last raw output */
    int attempts;          /* generations tried */
    int prompt_tokens;     /* prompt tokens of the last attempt */
    int gen_tokens;        /* generated tokens over all attempts */
    double seconds;        /* wall time the user's generations took */
    const char *model;     /* model file base name */
    const char *behaviour; /* the behaviour text (export) */
    const char *history;   /* JSON array of history titles (show) */
    const char *chosen;    /* chosen item's title */
    const char *similar;   /* JSON array of similar users' item titles (may be NULL) */
    const char *settings;  /* JSON object of the settings hashed into settings_hash */
    const char *extra;     /* JSON (phase-specific, e.g. a ToT chain; may be NULL) */
    int64_t created;       /* unix seconds (set by put when 0) */
} pulse_store_row;

/* Opens (creating when missing, unless readonly) the store; WAL, synchronous=NORMAL, busy timeout 10 s. */
pulse_status pulse_store_open(const char *path, int readonly, pulse_store **out);
void pulse_store_close(pulse_store *s);
/* Inserts n rows in one transaction (all or none). Idempotent: a row whose key exists is left alone, except
 * that an ok row replaces a stored failure. */
pulse_status pulse_store_put(pulse_store *s, const pulse_store_row *rows, int n);
/* done[u] (n_users bytes) = 1 for every user index with a row (ok or failed) under this key prefix. */
pulse_status pulse_store_done(pulse_store *s, const char *dataset, const char *phase, const char *model_hash,
                              const char *settings_hash, int n_users, uint8_t *done);
/* Calls cb for each row (phase / user may be NULL: all), in (phase, dataset, user_index) order; a nonzero
 * return stops. Strings of the row live until cb returns. */
typedef int (*pulse_store_cb)(void *ud, const pulse_store_row *row);
pulse_status pulse_store_each(pulse_store *s, const char *phase, const char *user, pulse_store_cb cb,
                              void *ud);
typedef struct {
    int64_t ok, failed, gen_tokens, prompt_tokens, attempts;
    double seconds;
} pulse_store_counts;
pulse_status pulse_store_stats(pulse_store *s, const char *phase, pulse_store_counts *out);
/* Total rows and rows that break the invariants (duplicate keys, ok without text): for checks. */
pulse_status pulse_store_check(pulse_store *s, int64_t *rows, int64_t *bad);

/* 64-bit FNV-1a-style hash of a file's bytes / of a string, as 16 hex digits + NUL. */
pulse_status pulse_hash_file(const char *path, char hex[17]);
void pulse_hash_text(const char *s, char hex[17]);

/* ---- Phase 1 ---- */
typedef struct {
    pulse_record_params record;
    int users;          /* users to cover (first of the seeded order; 0 = all eligible) */
    uint64_t seed;      /* user order and sampling */
    int retries;        /* extra attempts after a failed extraction (default 2) */
    int max_new_tokens; /* default 150 */
    float temp;         /* default 0.7 */
    int top_k;          /* default 0 (off) */
    float top_p;        /* default 1 (off) */
    int chat;           /* -1 (default): chat when the GGUF has a chat template; 0 raw; 1 chat */
    int prime;          /* 1 (default): the answer is primed with {"rationale": " */
    int n_parallel;     /* sequences decoded together (default 32) */
    int chunk; /* users per generation call (0, default: all; users are committed as they finish either way;
                       retries run in the next call) */
    int share_prefix; /* 1 (default): the instruction's common token prefix is prefilled once and forked */
    int n_threads;    /* <= 0: keep */
    int progress;     /* 1: progress on stderr */
    int stop_after;   /* > 0: stop after this many users were stored (tests); 0 = run to the end */
} pulse_phase1_params;
pulse_phase1_params pulse_phase1_default_params(void);

typedef struct {
    int selected;                 /* users of the job */
    int skipped;                  /* already in the store */
    int done, ok, failed;         /* stored by this run */
    int retried;                  /* users that needed more than one attempt */
    int64_t attempts, gen_tokens; /* over this run */
    int64_t prompt_tokens;        /* prompt tokens of all attempts */
    int64_t prompt_computed;      /* prompt tokens actually prefilled (shared prefixes counted once) */
    int chat;                     /* the mode used */
    double seconds, gen_tok_s, users_s;
    double median_words; /* of this run's ok rationales */
    char model_hash[17], settings_hash[17];
} pulse_phase1_report;

/* Runs Phase 1 for the job: data folder, model GGUF, optional SASRec model file (NULL: no similar users),
 * store path. Users already stored under the same (dataset, phase1, model hash, settings hash) are skipped;
 * every user is committed as it finishes. */
pulse_status pulse_rationale_phase1(const char *data, const char *model, const char *sasrec, const char *db,
                                    const pulse_phase1_params *p /* NULL = defaults */,
                                    pulse_phase1_report *out /* may be NULL */);

#ifdef __cplusplus
}
#endif
#endif
