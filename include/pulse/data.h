/* pulse/data.h — datasets: readers for the literature's formats, leave-one-out splits, candidate sampling,
 * and a deterministic synthetic dataset generator for tests.
 * Ids: users are 0..n_users-1 (dataset order); items are 1..n_items, 0 is padding (as in SASRec/S3-Rec). */
#ifndef PULSE_DATA_H
#define PULSE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "pulse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_dataset pulse_dataset;

typedef struct {
    int min_interactions; /* k-core threshold for raw review data (Amazon 2018 JSON-lines); default 5 */
    int keep_text;        /* keep per-interaction rating/review text where the format has it; default 0 */
    int max_users;        /* 0 = all; >0 keeps the first N users (quick experiments) */
    const char *format;   /* NULL = detect from the files; or "s3rec", "recbole", "lastfm", "amazon2018" */
} pulse_data_params;
pulse_data_params pulse_data_default_params(void);

/* Load a dataset folder, detecting the format from the files present (first match wins):
 *   *.inter (+ *.item)                    RecBole atomic files (MovieLens-100k)
 *   sequences.txt (+ items.tsv)           S3-Rec / P5 ("user item item ...")
 *   sequences.tsv (+ items.tsv)           LastFM (LLaRA)
 *   *.json / *.jsonl(.gz) + meta_*.json   Amazon Review 2018 raw reviews + metadata (k-core, chronological)
 * dir may also name one of those files directly (e.g. DIR/sequences.txt). Every reader streams its input
 * (plain or .gz) line by line; malformed input gives PULSE_ERR_PARSE with "file:line: expected X, found Y".
 * Id conventions: S3-Rec keeps its 1-based item ids as they are (n_items = the largest id); LastFM's 0-based
 * ids become id+1; RecBole / Amazon tokens are numbered 1..n (numeric tokens in numeric order, others in
 * order of first appearance). Keys (pulse_dataset_*_key) keep the file's own identifiers. */
pulse_status pulse_dataset_load(const char *dir, const pulse_data_params *params, pulse_dataset **out);
void pulse_dataset_free(pulse_dataset *ds);

const char *pulse_dataset_name(const pulse_dataset *ds);   /* folder base name, e.g. "amazon-beauty" */
const char *pulse_dataset_format(const pulse_dataset *ds); /* "s3rec", "recbole", "lastfm", "amazon2018" */
int pulse_dataset_n_users(const pulse_dataset *ds);
int pulse_dataset_n_items(const pulse_dataset *ds);
size_t pulse_dataset_n_interactions(const pulse_dataset *ds);
/* The user's chronological item sequence (length in *len). */
const int *pulse_dataset_user_seq(const pulse_dataset *ds, int user, int *len);
/* Item title, or NULL when the dataset has no titles. */
const char *pulse_dataset_item_title(const pulse_dataset *ds, int item);
/* Optional item text fields ("brand", "categories", ...): NULL when absent. */
const char *pulse_dataset_item_field(const pulse_dataset *ds, int item, const char *field);
/* The dataset's original user / item identifier string (e.g. reviewerID, ASIN, or the numeric id as text). */
const char *pulse_dataset_user_key(const pulse_dataset *ds, int user);
const char *pulse_dataset_item_key(const pulse_dataset *ds, int item);

/* Optional per-user text fields: "split" = LastFM (LLaRA) user group "train" / "val" / "test" (LLaRA
 * evaluates the last item of its val / test users only). NULL when absent. */
const char *pulse_dataset_user_field(const pulse_dataset *ds, int user, const char *field);
/* Per-interaction data at position pos of the user's sequence: the timestamp (NAN when the format has none;
 * S3-Rec files are already in order), the rating (NAN when none), and the review summary / text (NULL unless
 * the format has them and params.keep_text was set). */
double pulse_dataset_timestamp(const pulse_dataset *ds, int user, int pos);
float pulse_dataset_rating(const pulse_dataset *ds, int user, int pos);
const char *pulse_dataset_review_summary(const pulse_dataset *ds, int user, int pos);
const char *pulse_dataset_review_text(const pulse_dataset *ds, int user, int pos);
/* The item text fields the dataset has, in file order ("title", "brand", ...). */
int pulse_dataset_n_fields(const pulse_dataset *ds);
const char *pulse_dataset_field_name(const pulse_dataset *ds, int i);

/* Summary statistics (pulse data stats). items counts the distinct items that occur in the sequences. */
typedef struct {
    int users, items, item_ids; /* item_ids: size of the id space (n_items), >= items */
    size_t interactions;
    int min_len, max_len;
    double avg_len, density; /* density = interactions / (users * items) */
    int titled_items;        /* items 1..n_items with a non-empty title */
    int short_users;         /* users with fewer than 3 items: no valid / test target, never evaluated */
    int repeat_valid;        /* users whose valid held-out item repeats an earlier item of theirs */
    int repeat_test;         /* users whose test held-out item repeats an earlier item of theirs */
} pulse_data_stats;
void pulse_dataset_stats(const pulse_dataset *ds, pulse_data_stats *out);

/* ---- leave-one-out splits (SASRec / S3-Rec): last item = test, second-to-last = valid, the rest = train
 * ---- */
typedef enum { PULSE_SPLIT_TRAIN = 0, PULSE_SPLIT_VALID = 1, PULSE_SPLIT_TEST = 2 } pulse_split;
/* Target item of `user` for split s (VALID or TEST) and the length of the history before it (a prefix of the
 * sequence: valid sees seq[0..len-2), test sees seq[0..len-1)). Returns 0 when the user has too few items. */
int pulse_split_target(const pulse_dataset *ds, int user, pulse_split s, int *hist_len);
/* Length of the training prefix of the user's sequence (len-2, never negative). */
int pulse_split_train_len(const pulse_dataset *ds, int user);
/* 1 when the user's held-out item for split s also occurs earlier in their history (repeat consumption). */
int pulse_split_target_repeats(const pulse_dataset *ds, int user, pulse_split s);

/* ---- sampled candidates: a list of n items from a seeded RNG: the positive at a seeded random position and
 * n-1 distinct negatives drawn outside `excluded` (n_excluded sorted distinct item ids: which items a
 * protocol excludes is decided by the caller, pulse_eval_excluded) and outside the positive. positive <= 0
 * asks for n negatives and gives *pos_index = -1; otherwise *pos_index gets where the positive is. out has n
 * entries. */
pulse_status pulse_sample_candidates(const pulse_dataset *ds, int positive, const int *excluded,
                                     int n_excluded, int n, pulse_rng *rng, int *out, int *pos_index);

/* ---- a deterministic synthetic dataset for tests: items have titles built from attribute words, users have
 * latent tastes over attributes and drift, so a sequential model can learn it. ---- */
typedef struct {
    int n_users;      /* default 500 */
    int n_items;      /* default 300 */
    int n_attributes; /* default 12 */
    int min_len;      /* default 5 */
    int max_len;      /* default 30 */
    uint64_t seed;    /* default 1 */
    float repeat; /* default 0: per-step probability of re-consuming an earlier item of the user, in [0, 1) */
} pulse_synth_params;
pulse_synth_params pulse_synth_default_params(void);
pulse_status pulse_dataset_synthetic(const pulse_synth_params *p, pulse_dataset **out);
/* Write a dataset as S3-Rec files (sequences.txt + items.tsv) into dir (created if missing). */
pulse_status pulse_dataset_write_s3rec(const pulse_dataset *ds, const char *dir);
/* Write RecBole atomic files DIR/NAME.inter (user_id:token item_id:token timestamp:float, where timestamp is
 * the position in the user's sequence, so RecBole's chronological leave-one-out sees exactly our split) and
 * DIR/NAME.item (item_id:token plus the text fields as token_seq). Users are written as 1..n_users, items
 * by their internal ids. */
pulse_status pulse_dataset_write_recbole(const pulse_dataset *ds, const char *dir, const char *name);

#ifdef __cplusplus
}
#endif
#endif
