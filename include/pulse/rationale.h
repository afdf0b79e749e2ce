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
#include "pulse/thought.h"
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

/* ---- Phase 2: Tree-of-Thought refinement (src/rationale/tot.c) ----
 * A beam search over chains of thoughts generated by the SLM, scored by a Thought Space (cosine of R(chain)
 * with B(behaviour)) or by the SLM's likelihood of the chosen item. */
typedef enum {
    PULSE_TOT_SCORER_THOUGHT = 0,    /* cos(R(chain), B(behaviour)) in a trained Thought Space */
    PULSE_TOT_SCORER_LIKELIHOOD = 1, /* mean log p(chosen title | node prompt + chain + question) */
} pulse_tot_scorer;

/* What the search says to the SLM; a NULL field keeps the recommendation analyst's text. system: the
 * instruction (chat: the system message; raw: the prompt's first paragraph); first: the ask for the first
 * thought after the prompt; next: the ask for each further thought (chat); question: the ask before the
 * LIKELIHOOD scorer's target (chat); raw_question: the same in raw prompts. Other tasks (QA) run the same
 * search with their own texts. */
typedef struct {
    const char *system, *first, *next, *question, *raw_question;
} pulse_tot_prompts;

/* Defaults are the PULSE authors' ToT settings. */
typedef struct {
    int depth;               /* thoughts per chain; default 3 */
    int branching;           /* children sampled per kept node; default 3 */
    int beam;                /* nodes kept per level; default 2 */
    int max_thought_tokens;  /* default 61 */
    float temp;              /* default 1.0 */
    int top_k;               /* default 51 */
    float top_p;             /* default 0.95 */
    uint64_t seed;           /* default 42; each branch's sampler is seeded from (seed, user id, depth, node,
                                branch), so a user's tree does not depend on which users share its batch */
    pulse_tot_scorer scorer; /* default THOUGHT */
    int fork;     /* 1 (default): children fork their parent's KV; 0: every branch and score re-prefills its
                     whole context (the baseline of the forking measurement) */
    int chat;     /* -1 (default): the tokenizer's chat format (raw when it has none); 0 raw; 1 chat */
    int parallel; /* users in flight; all their branches decode in one batch per step; default 8 */
    int n_ctx;    /* max tokens of one sequence; 0 (default): min(the model's trained context, 4096) */
    int n_batch;  /* tokens per forward chunk; default 256 */
    const pulse_tot_prompts *prompts; /* NULL (default): the recommendation analyst's texts */
    const pulse_lora *lora;           /* adapter attached to the search's context (NULL, default: none) */
    float lora_scale;                 /* default 1 */
    const char *progress_label;       /* the progress line on stderr; NULL (default): "tot" */
    const char *progress_unit;        /* what it counts; NULL (default): "users" (pulse qa eval: "q") */
} pulse_tot_params;
pulse_tot_params pulse_tot_default_params(void);
/* "thought" / "likelihood" -> scorer; -1 when unknown. */
int pulse_tot_scorer_from_name(const char *name);
const char *pulse_tot_scorer_name(pulse_tot_scorer s);

/* One user's search input. prompt is the user's part of the base analysis prompt: the history and similar
 * users' items, never the chosen item (which only the scorers see); the search puts its own instruction
 * (analyst role, reason one concise thought at a time) before it, as the system message of a chat. */
typedef struct {
    const char *user;      /* id; seeds the user's samplers */
    const char *prompt;    /* history + similar users' items (untrusted text stays text: no control tokens) */
    const char *behaviour; /* THOUGHT scorer: "[CONTEXT] History: ... [CHOSEN_ITEM] <chosen>" */
    const char *chosen;    /* LIKELIHOOD scorer: the chosen item's title */
} pulse_tot_input;

typedef struct {
    int ok;           /* 1: a chain was kept; 0: no branch gave a usable thought */
    char *chain;      /* the kept chain: its thoughts joined by " " (malloc'd; NULL when !ok) */
    char *raw;        /* every candidate thought of the search, one per line "d<depth> n<node> b<branch>
                         <score|dup|empty>: text" (malloc'd) */
    char *context;    /* the best node's full context as the LM saw it (prompt + chain; special tokens
                         written out; malloc'd) */
    int *context_ids; /* the same as token ids (malloc'd) */
    int n_context_ids;
    int n_thoughts;    /* thoughts in chain */
    char **thoughts;   /* (n_thoughts) the chain's thoughts, first first (malloc'd) */
    double score;      /* the scorer's value of chain */
    int gen_tokens;    /* tokens sampled for this user (all branches) */
    int prompt_tokens; /* tokens prefilled for this user (prompts, markers, score questions) */
    int candidates;    /* thoughts sampled */
    int duplicates;    /* of which dropped as duplicates or empty */
    double seconds;    /* admission to completion */
} pulse_tot_result;
void pulse_tot_result_free(pulse_tot_result *r);

typedef struct {
    long gen_tokens, prompt_tokens, decode_calls;
    int users_ok, users_failed;
    double seconds;   /* wall time of the search */
    double gen_tok_s; /* gen_tokens / seconds */
    int kv_blocks_peak;
} pulse_tot_stats;

/* Called once per finished user (i = index into in), on the calling thread, in completion order; r is
 * valid during the call only. A non-OK return stops the run with that status. */
typedef pulse_status (*pulse_tot_done_fn)(void *ud, int i, const pulse_tot_result *r);

/* Runs the search for n users, params->parallel at a time (a finished user's slot is refilled at once).
 * space is needed for the THOUGHT scorer (may be NULL for LIKELIHOOD). stats may be NULL. */
pulse_status pulse_tot_run(const pulse_lm *m, const pulse_tokenizer *tok, pulse_thought_space *space,
                           const pulse_tot_input *in, int n, const pulse_tot_params *params,
                           pulse_tot_done_fn done, void *ud, pulse_tot_stats *stats);

/* The token ids the search uses for a user (exposed for tests and inspection), each malloc'd:
 * prefix = the root prompt (chat-formatted when chat), marker(k) = what follows thought k (k = 1..depth-1)
 * to ask for thought k+1, question = what follows a chain before the chosen title for the LIKELIHOOD
 * scorer, title = the chosen title (no BOS). */
pulse_status pulse_tot_tokens(const pulse_tokenizer *tok, const pulse_tot_params *params,
                              const pulse_tot_input *in, int **prefix, int *n_prefix, int k, int **marker,
                              int *n_marker, int **question, int *n_question, int **title, int *n_title);

/* ---- Phase 2 as a job: dataset -> records -> search -> store (phase "tot") ---- */
typedef struct {
    pulse_record_params record;
    pulse_tot_params search; /* search.seed is set from seed */
    int users;               /* users to cover (first of the seeded order, as Phase 1; 0 = all eligible) */
    uint64_t seed;           /* user order and sampling */
    int n_threads;           /* <= 0: keep */
    int stop_after;          /* > 0: stop after this many users were stored (tests); 0 = run to the end */
} pulse_tot_job_params;
pulse_tot_job_params pulse_tot_job_default_params(void);

typedef struct {
    int selected, skipped; /* users of the job; already in the store */
    int done, ok, failed;  /* stored by this run */
    int64_t gen_tokens;    /* sampled by this run */
    int64_t prompt_tokens; /* prefilled by this run (prompts, markers, questions; shared ones once) */
    int chat, fork;        /* the modes used */
    double seconds, gen_tok_s, users_s;
    double mean_score; /* of this run's kept chains */
    /* with a space: the job's users with a kept chain (these settings) and an ok Phase-1 row (the same
     * model's when there is one), and the mean cos(R(text), B(behaviour)) of each */
    int cmp_users;
    double cmp_tot, cmp_phase1;
    char model_hash[17], settings_hash[17];
} pulse_tot_report;

/* Runs Phase 2 for the job: data folder, model GGUF, Thought Space folder (a `pulse thought train` output;
 * needed by the THOUGHT scorer, may be NULL for LIKELIHOOD; when given, the report compares the kept chains
 * with Phase 1 in it), optional SASRec model file (NULL: no similar
 * users), store path. The settings hash covers every search parameter but fork and parallel (which change
 * speed, not results), the scorer and the space's space.json; users already stored under the same key are
 * skipped; every user is committed as it finishes. */
pulse_status pulse_rationale_tot(const char *data, const char *model, const char *space, const char *sasrec,
                                 const char *db, const pulse_tot_job_params *p /* NULL = defaults */,
                                 pulse_tot_report *out /* may be NULL */);

#ifdef __cplusplus
}
#endif
#endif
