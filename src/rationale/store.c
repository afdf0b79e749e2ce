/* rationale/store.c — owns the rationale store: one SQLite database (WAL) with one row per (dataset, user,
 * phase, model file hash, settings hash); atomic, idempotent inserts (a stored row is never duplicated; an ok
 * row replaces a stored failure, never the reverse), the resume set of a job, iteration for export / show,
 * per-phase counts, and the file / text hashes that make up the key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "pulse/rationale.h"

struct pulse_store {
    sqlite3 *db;
    char *path;
};

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS rationale ("
    " dataset TEXT NOT NULL, user TEXT NOT NULL, phase TEXT NOT NULL, model_hash TEXT NOT NULL,"
    " settings_hash TEXT NOT NULL, user_index INTEGER NOT NULL, ok INTEGER NOT NULL, text TEXT,"
    " score REAL, raw TEXT, attempts INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"
    " gen_tokens INTEGER NOT NULL, seconds REAL NOT NULL, model TEXT, behaviour TEXT, history TEXT,"
    " chosen TEXT, similar TEXT, settings TEXT, extra TEXT, created INTEGER NOT NULL,"
    " PRIMARY KEY (dataset, user, phase, model_hash, settings_hash));"
    "CREATE INDEX IF NOT EXISTS rationale_phase ON rationale (phase, dataset, user_index);";

static pulse_status db_error(pulse_store *s, const char *what) {
    return pulse_set_error(PULSE_ERR_IO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

pulse_status pulse_store_open(const char *path, int readonly, pulse_store **out) {
    *out = NULL;
    if (!path || !*path) return pulse_set_error(PULSE_ERR_ARG, "store: no database path");
    pulse_store *s = pulse_calloc(1, sizeof *s);
    if (!s) return PULSE_ERR_NOMEM;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return PULSE_ERR_NOMEM;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        pulse_status st = pulse_set_error(PULSE_ERR_IO, "%s: cannot open the store: %s", path,
                                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        pulse_store_close(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, 10000);
    char *err = NULL;
    const char *setup =
        readonly ? "PRAGMA query_only=1;" : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
    if (sqlite3_exec(s->db, setup, NULL, NULL, &err) != SQLITE_OK ||
        (!readonly && sqlite3_exec(s->db, SCHEMA, NULL, NULL, &err) != SQLITE_OK)) {
        pulse_status st =
            pulse_set_error(PULSE_ERR_IO, "%s: not a usable rationale store: %s", path, err ? err : "?");
        sqlite3_free(err);
        pulse_store_close(s);
        return st;
    }
    /* a read-only open of a file that is not a store fails here, not later */
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM rationale", -1, &q, NULL) != SQLITE_OK) {
        pulse_status st =
            pulse_set_error(PULSE_ERR_IO, "%s: not a rationale store (%s)", path, sqlite3_errmsg(s->db));
        pulse_store_close(s);
        return st;
    }
    sqlite3_finalize(q);
    *out = s;
    return PULSE_OK;
}

void pulse_store_close(pulse_store *s) {
    if (!s) return;
    if (s->db) sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static void bind_text(sqlite3_stmt *q, int i, const char *v) {
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static int key_ok(const pulse_store_row *r) {
    return r->dataset && r->user && r->phase && r->model_hash && r->settings_hash && *r->dataset &&
           *r->user && *r->phase;
}

pulse_status pulse_store_put(pulse_store *s, const pulse_store_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        if (!key_ok(&rows[i]))
            return pulse_set_error(PULSE_ERR_ARG, "store put: row %d needs dataset, user, phase and hashes",
                                   i);
        if (rows[i].ok && (!rows[i].text || !*rows[i].text))
            return pulse_set_error(PULSE_ERR_ARG, "store put: row %d (user %s) is ok but has no text", i,
                                   rows[i].user);
    }
    if (n <= 0) return PULSE_OK;
    /* an existing ok row is kept; an existing failure is replaced by anything newer */
    static const char *sql =
        "INSERT INTO rationale (dataset, user, phase, model_hash, settings_hash, user_index, ok, text, score,"
        " raw, attempts, prompt_tokens, gen_tokens, seconds, model, behaviour, history, chosen, similar,"
        " settings, extra, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (dataset, user, phase, model_hash, settings_hash) DO UPDATE SET"
        " ok = excluded.ok, text = excluded.text, score = excluded.score, raw = excluded.raw,"
        " attempts = rationale.attempts + excluded.attempts, prompt_tokens = excluded.prompt_tokens,"
        " gen_tokens = rationale.gen_tokens + excluded.gen_tokens, seconds = rationale.seconds +"
        " excluded.seconds, extra = excluded.extra, created = excluded.created"
        " WHERE rationale.ok = 0 AND excluded.ok = 1";
    sqlite3_stmt *q = NULL;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return db_error(s, "begin");
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
        pulse_status st = db_error(s, "prepare insert");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    pulse_status st = PULSE_OK;
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < n && !st; i++) {
        const pulse_store_row *r = &rows[i];
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        bind_text(q, 1, r->dataset);
        bind_text(q, 2, r->user);
        bind_text(q, 3, r->phase);
        bind_text(q, 4, r->model_hash);
        bind_text(q, 5, r->settings_hash);
        sqlite3_bind_int(q, 6, r->user_index);
        sqlite3_bind_int(q, 7, r->ok ? 1 : 0);
        bind_text(q, 8, r->ok ? r->text : NULL);
        if (isfinite(r->score))
            sqlite3_bind_double(q, 9, r->score);
        else
            sqlite3_bind_null(q, 9);
        bind_text(q, 10, r->raw);
        sqlite3_bind_int(q, 11, r->attempts);
        sqlite3_bind_int(q, 12, r->prompt_tokens);
        sqlite3_bind_int(q, 13, r->gen_tokens);
        sqlite3_bind_double(q, 14, isfinite(r->seconds) ? r->seconds : 0.0);
        bind_text(q, 15, r->model);
        bind_text(q, 16, r->behaviour);
        bind_text(q, 17, r->history);
        bind_text(q, 18, r->chosen);
        bind_text(q, 19, r->similar);
        bind_text(q, 20, r->settings);
        bind_text(q, 21, r->extra);
        sqlite3_bind_int64(q, 22, r->created ? r->created : now);
        if (sqlite3_step(q) != SQLITE_DONE) st = db_error(s, "insert");
    }
    sqlite3_finalize(q);
    if (st) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_error(s, "commit");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return st;
}

pulse_status pulse_store_done(pulse_store *s, const char *dataset, const char *phase, const char *model_hash,
                              const char *settings_hash, int n_users, uint8_t *done) {
    memset(done, 0, (size_t)(n_users > 0 ? n_users : 0));
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT user_index FROM rationale WHERE dataset = ? AND phase = ? AND model_hash = ?"
            " AND settings_hash = ?",
            -1, &q, NULL) != SQLITE_OK)
        return db_error(s, "prepare select");
    bind_text(q, 1, dataset);
    bind_text(q, 2, phase);
    bind_text(q, 3, model_hash);
    bind_text(q, 4, settings_hash);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int u = sqlite3_column_int(q, 0);
        if (u >= 0 && u < n_users) done[u] = 1;
    }
    pulse_status st = rc == SQLITE_DONE ? PULSE_OK : db_error(s, "select");
    sqlite3_finalize(q);
    return st;
}

static const char *col_text(sqlite3_stmt *q, int i) {
    return (const char *)sqlite3_column_text(q, i);
}

pulse_status pulse_store_each(pulse_store *s, const char *phase, const char *user, pulse_store_cb cb,
                              void *ud) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT dataset, user, phase, model_hash, settings_hash, user_index, ok, text, score, raw,"
            " attempts, prompt_tokens, gen_tokens, seconds, model, behaviour, history, chosen, similar,"
            " settings, extra, created FROM rationale WHERE (?1 IS NULL OR phase = ?1) AND (?2 IS NULL OR"
            " user = ?2) ORDER BY phase, dataset, user_index, model_hash, settings_hash",
            -1, &q, NULL) != SQLITE_OK)
        return db_error(s, "prepare select");
    bind_text(q, 1, phase);
    bind_text(q, 2, user);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        pulse_store_row r;
        memset(&r, 0, sizeof r);
        r.dataset = col_text(q, 0);
        r.user = col_text(q, 1);
        r.phase = col_text(q, 2);
        r.model_hash = col_text(q, 3);
        r.settings_hash = col_text(q, 4);
        r.user_index = sqlite3_column_int(q, 5);
        r.ok = sqlite3_column_int(q, 6);
        r.text = col_text(q, 7);
        r.score = sqlite3_column_type(q, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 8);
        r.raw = col_text(q, 9);
        r.attempts = sqlite3_column_int(q, 10);
        r.prompt_tokens = sqlite3_column_int(q, 11);
        r.gen_tokens = sqlite3_column_int(q, 12);
        r.seconds = sqlite3_column_double(q, 13);
        r.model = col_text(q, 14);
        r.behaviour = col_text(q, 15);
        r.history = col_text(q, 16);
        r.chosen = col_text(q, 17);
        r.similar = col_text(q, 18);
        r.settings = col_text(q, 19);
        r.extra = col_text(q, 20);
        r.created = sqlite3_column_int64(q, 21);
        if (cb(ud, &r)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    pulse_status st = rc == SQLITE_DONE ? PULSE_OK : db_error(s, "select");
    sqlite3_finalize(q);
    return st;
}

pulse_status pulse_store_stats(pulse_store *s, const char *phase, pulse_store_counts *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT coalesce(sum(ok), 0), coalesce(sum(1 - ok), 0), coalesce(sum(gen_tokens), 0),"
            " coalesce(sum(prompt_tokens), 0), coalesce(sum(attempts), 0),"
            " coalesce(sum(seconds), 0) FROM rationale WHERE (?1 IS NULL OR phase = ?1)",
            -1, &q, NULL) != SQLITE_OK)
        return db_error(s, "prepare stats");
    bind_text(q, 1, phase);
    pulse_status st = PULSE_OK;
    if (sqlite3_step(q) == SQLITE_ROW) {
        out->ok = sqlite3_column_int64(q, 0);
        out->failed = sqlite3_column_int64(q, 1);
        out->gen_tokens = sqlite3_column_int64(q, 2);
        out->prompt_tokens = sqlite3_column_int64(q, 3);
        out->attempts = sqlite3_column_int64(q, 4);
        out->seconds = sqlite3_column_double(q, 5);
    } else
        st = db_error(s, "stats");
    sqlite3_finalize(q);
    return st;
}

pulse_status pulse_store_check(pulse_store *s, int64_t *rows, int64_t *bad) {
    *rows = *bad = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT (SELECT count(*) FROM rationale),"
            " (SELECT count(*) FROM rationale WHERE ok = 1 AND (text IS NULL OR text = ''))"
            " + (SELECT count(*) FROM (SELECT 1 FROM rationale GROUP BY dataset, user, phase, model_hash,"
            " settings_hash HAVING count(*) > 1))"
            " + (SELECT count(*) FROM (SELECT 1 FROM rationale GROUP BY dataset, user_index, phase,"
            " model_hash, settings_hash HAVING count(*) > 1))",
            -1, &q, NULL) != SQLITE_OK)
        return db_error(s, "prepare check");
    pulse_status st = PULSE_OK;
    if (sqlite3_step(q) == SQLITE_ROW) {
        *rows = sqlite3_column_int64(q, 0);
        *bad = sqlite3_column_int64(q, 1);
    } else
        st = db_error(s, "check");
    sqlite3_finalize(q);
    if (!st) {
        /* and SQLite's own view of the file */
        if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK)
            return db_error(s, "prepare quick_check");
        if (sqlite3_step(q) == SQLITE_ROW) {
            const char *r = col_text(q, 0);
            if (!r || strcmp(r, "ok") != 0) (*bad)++;
        }
        sqlite3_finalize(q);
    }
    return st;
}

/* ---- hashes ---- */
static uint64_t fnv_step(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void to_hex(uint64_t h, char hex[17]) {
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}

void pulse_hash_text(const char *s, char hex[17]) {
    to_hex(fnv_step(0xcbf29ce484222325ULL, (const unsigned char *)s, s ? strlen(s) : 0), hex);
}

pulse_status pulse_hash_file(const char *path, char hex[17]) {
    FILE *f = fopen(path, "rb");
    if (!f) return pulse_set_error(PULSE_ERR_IO, "%s: cannot open to hash", path);
    /* FNV-1a over 8-byte words (a word-wise FNV is ~8x faster than byte-wise on a 250 MB GGUF), then the
     * tail bytes and the length */
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    if (!buf) {
        fclose(f);
        return PULSE_ERR_NOMEM;
    }
    uint64_t h = 0xcbf29ce484222325ULL, total = 0;
    size_t got;
    while ((got = fread(buf, 1, BUF, f)) > 0) {
        size_t w = got / 8;
        for (size_t i = 0; i < w; i++) {
            uint64_t v;
            memcpy(&v, buf + 8 * i, 8);
            h ^= v;
            h *= 0x100000001b3ULL;
            h ^= h >> 29;
        }
        h = fnv_step(h, buf + 8 * w, got - 8 * w);
        total += got;
    }
    int err = ferror(f);
    fclose(f);
    free(buf);
    if (err) return pulse_set_error(PULSE_ERR_IO, "%s: read error while hashing", path);
    h = fnv_step(h, (const unsigned char *)&total, sizeof total);
    to_hex(h, hex);
    return PULSE_OK;
}
