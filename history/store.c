/* store.c — the SQLite side of the history: opening (foreign files left
 * untouched), schema and migrations, sessions, messages, events, search,
 * stats. Depends on sqlite3.h, POSIX and history.h only; never the engine. */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* ---- schema ---------------------------------------------------------------
 * Each entry brings a database from version N-1 to N and is applied in one
 * transaction. A released entry is never edited: changes go in a new one.
 * history/schema.sql is the readable copy (tests/test_history.c checks that
 * the two agree). Times are Unix milliseconds. */

static const char schema_v1[] =
    "PRAGMA application_id = 1095648082;\n" /* HIST_APPLICATION_ID, "ANCR" */
    "CREATE TABLE sessions (\n"
    "    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused\n"
    "    title       TEXT    NOT NULL DEFAULT '',\n"
    "    model_path  TEXT    NOT NULL DEFAULT '',\n"
    "    model_name  TEXT    NOT NULL DEFAULT '',\n"
    "    params      TEXT    NOT NULL DEFAULT '{}', -- JSON: engine parameters in force\n"
    "    created_ms  INTEGER NOT NULL,\n"
    "    updated_ms  INTEGER NOT NULL                -- last activity\n"
    ");\n"
    "CREATE INDEX sessions_by_activity ON sessions(updated_ms, id);\n"
    "CREATE TABLE messages (\n"
    "    id                INTEGER PRIMARY KEY,\n"
    "    session_id        INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,\n"
    "    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),\n"
    "    content           TEXT    NOT NULL DEFAULT '',\n"
    "    prompt_tokens     INTEGER,\n"
    "    completion_tokens INTEGER,\n"
    "    prompt_ms         REAL,\n"
    "    gen_ms            REAL,\n"
    "    -- NULL: a user/system message, or an assistant reply still streaming\n"
    "    finish_reason     TEXT CHECK (finish_reason IN\n"
    "                          ('stop', 'length', 'cancelled', 'error', 'interrupted')),\n"
    "    writer_pid        INTEGER, -- process streaming this reply (NULL once finished)\n"
    "    created_ms        INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX messages_by_session ON messages(session_id, id);\n"
    "CREATE INDEX messages_streaming ON messages(id)\n"
    "    WHERE role = 'assistant' AND finish_reason IS NULL;\n"
    "PRAGMA user_version = 1;\n";

static const char schema_v2[] =
    "CREATE TABLE param_events (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,\n"
    "    message_id  INTEGER REFERENCES messages(id) ON DELETE SET NULL, -- last message before\n"
    "    name        TEXT    NOT NULL,\n"
    "    old_value   TEXT,\n"
    "    new_value   TEXT,\n"
    "    at_ms       INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX param_events_by_session ON param_events(session_id, id);\n"
    "CREATE INDEX param_events_by_message ON param_events(message_id);\n"
    "-- Full-text index over messages.content, kept in sync by the triggers.\n"
    "-- trigram: substring search that works for Chinese and other unspaced text.\n"
    "CREATE VIRTUAL TABLE messages_fts USING fts5(\n"
    "    content, content = 'messages', content_rowid = 'id', tokenize = 'trigram');\n"
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN\n"
    "    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);\n"
    "END;\n"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN\n"
    "    INSERT INTO messages_fts(messages_fts, rowid, content)\n"
    "        VALUES ('delete', old.id, old.content);\n"
    "END;\n"
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages\n"
    "WHEN old.content IS NOT new.content BEGIN\n"
    "    INSERT INTO messages_fts(messages_fts, rowid, content)\n"
    "        VALUES ('delete', old.id, old.content);\n"
    "    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);\n"
    "END;\n"
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');\n"
    "PRAGMA user_version = 2;\n";

static const char schema_v3[] =
    "-- What was in force while each reply was generated, and what it measured.\n"
    "-- Every column is NULL on rows written before version 3 (and on user and\n"
    "-- system messages).\n"
    "ALTER TABLE messages ADD COLUMN cache_policy   TEXT;    -- sink, window, recompute, full\n"
    "ALTER TABLE messages ADD COLUMN window_length  INTEGER;\n"
    "ALTER TABLE messages ADD COLUMN sinks          INTEGER;\n"
    "ALTER TABLE messages ADD COLUMN rope_type      TEXT;    -- none, linear, dynamic, yarn, llama3\n"
    "ALTER TABLE messages ADD COLUMN rope_base      REAL;\n"
    "ALTER TABLE messages ADD COLUMN rope_factor    REAL;\n"
    "ALTER TABLE messages ADD COLUMN adapter        TEXT;    -- a LoRA adapter (none yet)\n"
    "ALTER TABLE messages ADD COLUMN template       TEXT;    -- chat template name\n"
    "ALTER TABLE messages ADD COLUMN cache_used     INTEGER; -- cache entries when the reply ended\n"
    "ALTER TABLE messages ADD COLUMN cache_capacity INTEGER;\n"
    "ALTER TABLE messages ADD COLUMN sink_share     REAL;    -- mean share of attention on sinks\n"
    "-- A reply's token ids as fed to the model (int32 little-endian), for\n"
    "-- replay; in their own table so that scans of messages stay small.\n"
    "CREATE TABLE message_tokens (\n"
    "    message_id  INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,\n"
    "    ids         BLOB    NOT NULL\n"
    ");\n"
    "-- Fingerprint of the model's vocabulary (replay checks it).\n"
    "ALTER TABLE sessions ADD COLUMN vocab_hash     TEXT;\n"
    "PRAGMA user_version = 3;\n";

static const char *const migrations[HIST_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3};

const char *hist_schema_sql(int version)
{
    return version >= 1 && version <= HIST_SCHEMA_VERSION ? migrations[version - 1] : NULL;
}

/* ---- prepared statements ---------------------------------------------- */

enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_SESSION_INSERT, ST_SESSION_TITLE, ST_SESSION_PARAMS, ST_SESSION_TOUCH, ST_SESSION_VOCAB,
    ST_SESSION_TOUCH_BY_MSG, ST_SESSION_DELETE, ST_SESSION_GET, ST_SESSION_LIST,
    ST_MSG_INSERT, ST_MSG_TEXT, ST_MSG_FINISH, ST_MSG_INFO, ST_MSG_TOKENS, ST_MSG_LIST,
    ST_EVENT_INSERT, ST_EVENT_LIST,
    ST_SEARCH_FTS, ST_SEARCH_SCAN, ST_STATS,
    ST_COUNT
};

#define SESSION_COLUMNS                                                                     \
    "SELECT s.id, s.title, s.model_path, s.model_name, s.params, s.created_ms, "           \
    "s.updated_ms, (SELECT count(*) FROM messages m WHERE m.session_id = s.id), "         \
    "s.vocab_hash FROM sessions s "
#define HIT_COLUMNS "SELECT m.id, m.session_id, m.role, m.created_ms, m.content, s.title "

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT hist_op",
    [ST_RELEASE] = "RELEASE hist_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO hist_op",
    [ST_SESSION_INSERT] = "INSERT INTO sessions(title, model_path, model_name, params, "
                          "created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    [ST_SESSION_TITLE] = "UPDATE sessions SET title = ?2 WHERE id = ?1",
    [ST_SESSION_PARAMS] = "UPDATE sessions SET params = ?2 WHERE id = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET updated_ms = max(updated_ms, ?2) WHERE id = ?1",
    [ST_SESSION_VOCAB] = "UPDATE sessions SET vocab_hash = ?2 WHERE id = ?1",
    [ST_SESSION_TOUCH_BY_MSG] = "UPDATE sessions SET updated_ms = max(updated_ms, ?2) "
                                "WHERE id = (SELECT session_id FROM messages WHERE id = ?1)",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [ST_SESSION_GET] = SESSION_COLUMNS "WHERE s.id = ?1",
    [ST_SESSION_LIST] = SESSION_COLUMNS "ORDER BY s.updated_ms DESC, s.id DESC LIMIT ?1",
    [ST_MSG_INSERT] = "INSERT INTO messages(session_id, role, content, finish_reason, "
                      "writer_pid, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_MSG_TEXT] = "UPDATE messages SET content = ?2 WHERE id = ?1 AND role = 'assistant'",
    [ST_MSG_FINISH] = "UPDATE messages SET content = coalesce(?2, content), finish_reason = ?3, "
                      "prompt_tokens = ?4, completion_tokens = ?5, prompt_ms = ?6, gen_ms = ?7, "
                      "writer_pid = NULL WHERE id = ?1 AND role = 'assistant'",
    [ST_MSG_INFO] = "UPDATE messages SET cache_policy = ?2, window_length = ?3, sinks = ?4, "
                    "rope_type = ?5, rope_base = ?6, rope_factor = ?7, adapter = ?8, "
                    "template = ?9, cache_used = ?10, cache_capacity = ?11, sink_share = ?12 "
                    "WHERE id = ?1 AND role = 'assistant'",
    [ST_MSG_TOKENS] = "INSERT OR REPLACE INTO message_tokens(message_id, ids) VALUES (?1, ?2)",
    [ST_MSG_LIST] = "SELECT m.id, m.session_id, m.role, m.content, m.prompt_tokens, "
                    "m.completion_tokens, m.prompt_ms, m.gen_ms, m.finish_reason, m.created_ms, "
                    "m.cache_policy, m.window_length, m.sinks, m.rope_type, m.rope_base, "
                    "m.rope_factor, m.adapter, m.template, m.cache_used, m.cache_capacity, "
                    "m.sink_share, t.ids FROM messages m "
                    "LEFT JOIN message_tokens t ON t.message_id = m.id "
                    "WHERE m.session_id = ?1 ORDER BY m.id",
    [ST_EVENT_INSERT] = "INSERT INTO param_events(session_id, message_id, name, old_value, "
                        "new_value, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_EVENT_LIST] = "SELECT id, session_id, message_id, name, old_value, new_value, at_ms "
                      "FROM param_events WHERE session_id = ?1 ORDER BY id",
    /* ?1: an FTS5 query of quoted words; ?2: a LIKE pattern for the first
     * word too short for the trigram index, or NULL. */
    [ST_SEARCH_FTS] = HIT_COLUMNS "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                      "JOIN sessions s ON s.id = m.session_id WHERE messages_fts MATCH ?1 "
                      "AND (?2 IS NULL OR m.content LIKE ?2 ESCAPE '\\') "
                      "ORDER BY messages_fts.rowid DESC", /* = m.id; FTS5 walks it backwards */
    [ST_SEARCH_SCAN] = HIT_COLUMNS "FROM messages m JOIN sessions s ON s.id = m.session_id "
                       "WHERE m.content LIKE ?1 ESCAPE '\\' ORDER BY m.id DESC",
    [ST_STATS] = "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM messages), "
                 "(SELECT total(prompt_tokens) FROM messages), "
                 "(SELECT total(completion_tokens) FROM messages)",
};

struct hist_db {
    sqlite3 *sql;
    char *path;
    bool readonly;
    int batch_depth; /* 1 inside hist_batch_begin/end */
    sqlite3_stmt *st[ST_COUNT];
    char err[512];
};

#define BUSY_TIMEOUT_MS 5000
#define SQLITE_MIN_VERSION 3034000 /* the FTS5 trigram tokenizer */

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const role_names[] = {"system", "user", "assistant"};
static const char *const finish_names[] = {NULL, "stop", "length", "cancelled", "error",
                                           "interrupted"};

const char *hist_role_name(enum hist_role role)
{
    return (unsigned)role < 3 ? role_names[role] : "?";
}

const char *hist_finish_name(enum hist_finish finish)
{
    return (unsigned)finish < 6 ? finish_names[finish] : NULL;
}

const char *hist_finish_label(enum hist_finish finish)
{
    if (finish == HIST_FINISH_STOP) return NULL;
    return finish == HIST_FINISH_LENGTH ? "max tokens reached" : hist_finish_name(finish);
}

int hist_finish_from_name(const char *name)
{
    if (!name) return HIST_FINISH_NONE;
    for (int i = 1; i < 6; i++)
        if (strcmp(name, finish_names[i]) == 0) return i;
    return -1;
}

static enum hist_role role_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, role_names[i]) == 0) return (enum hist_role)i;
    return HIST_ROLE_USER; /* the CHECK constraint makes this unreachable */
}

const char *hist_strerror(int status)
{
    switch (status) {
    case HIST_OK: return "success";
    case HIST_ERR_READONLY: return "the history database is read-only";
    case HIST_ERR_FULL: return "the disk is full";
    case HIST_ERR_BUSY: return "the history database is locked by another program";
    case HIST_ERR_NOTFOUND: return "not found";
    case HIST_ERR_INVALID: return "invalid argument";
    case HIST_ERR_NOMEM: return "out of memory";
    case HIST_ERR_CORRUPT: return "the history database is damaged";
    default: return "database error";
    }
}

const char *hist_path(const struct hist_db *db) { return db->path; }
bool hist_readonly(const struct hist_db *db) { return db->readonly; }
const char *hist_errmsg(const struct hist_db *db) { return db->err; }

static int status_of(int rc, int sys_errno)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return HIST_OK;
    case SQLITE_READONLY: case SQLITE_PERM: return HIST_ERR_READONLY;
    case SQLITE_FULL: return HIST_ERR_FULL;
    case SQLITE_BUSY: case SQLITE_LOCKED: return HIST_ERR_BUSY;
    case SQLITE_NOMEM: return HIST_ERR_NOMEM;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: return HIST_ERR_CORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        if (sys_errno == ENOSPC || sys_errno == EDQUOT || sys_errno == EFBIG) return HIST_ERR_FULL;
        if (sys_errno == EROFS || sys_errno == EACCES || sys_errno == EPERM)
            return HIST_ERR_READONLY;
        return HIST_ERR_IO;
    default: return HIST_ERR_IO;
    }
}

/* Record a failure of SQLite call RC while doing WHAT; returns the status. */
static int fail(struct hist_db *db, int rc, const char *what)
{
    int status = status_of(rc, sqlite3_system_errno(db->sql));
    const char *msg = sqlite3_errmsg(db->sql);
    switch (status) {
    case HIST_ERR_READONLY:
        snprintf(db->err, sizeof db->err, "cannot save to %s: it is read-only", db->path);
        break;
    case HIST_ERR_FULL:
        snprintf(db->err, sizeof db->err, "cannot save to %s: the disk is full", db->path);
        break;
    case HIST_ERR_BUSY:
        snprintf(db->err, sizeof db->err, "%s is locked by another program (waited %d s)",
                 db->path, BUSY_TIMEOUT_MS / 1000);
        break;
    case HIST_ERR_CORRUPT:
        snprintf(db->err, sizeof db->err, "%s is damaged (%s)", db->path, msg);
        break;
    default:
        snprintf(db->err, sizeof db->err, "%s failed on %s: %s", what, db->path, msg);
    }
    return status;
}

static int fail_status(struct hist_db *db, int status, const char *fmt, const char *arg)
{
    snprintf(db->err, sizeof db->err, fmt, arg);
    return status;
}

static sqlite3_stmt *stmt(struct hist_db *db, enum stmt_id id)
{
    if (!db->st[id]) {
        int rc = sqlite3_prepare_v3(db->sql, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->st[id], NULL);
        if (rc != SQLITE_OK) {
            fail(db, rc, "preparing a query");
            db->st[id] = NULL;
        }
    }
    return db->st[id];
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; WHAT names it in errors. */
static int step_done(struct hist_db *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int status = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? HIST_OK : fail(db, rc, what);
    done(st);
    return status;
}

static int run(struct hist_db *db, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st = stmt(db, id);
    return st ? step_done(db, st, what) : HIST_ERR_IO;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

/* A copy of a text column ("" for NULL); NULL only when out of memory. */
static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static char *col_dup_or_null(sqlite3_stmt *st, int i, bool *oom)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    char *s = col_dup(st, i);
    if (!s) *oom = true;
    return s;
}

static int64_t col_int_or(sqlite3_stmt *st, int i, int64_t if_null)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? if_null : sqlite3_column_int64(st, i);
}

static double col_double_or(sqlite3_stmt *st, int i, double if_null)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? if_null : sqlite3_column_double(st, i);
}

/* Grow *ARR (of ELEM-byte items) to hold at least N+1. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Steps st (bound by the caller) to its end and reads each row with
 * from_row into a new array of elem-byte items: *list, *n. from_row returns
 * false when out of memory, having freed what it read of the row. On an
 * error (what says what was being done), *list and *n still hold the rows
 * read, for the caller's list free. */
static int read_rows(struct hist_db *db, sqlite3_stmt *st, size_t elem,
                     bool (*from_row)(sqlite3_stmt *st, void *item), const char *what, void **list,
                     size_t *n)
{
    size_t cap = 0;
    int rc, status = HIST_OK;
    *list = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow(list, &cap, *n, elem) || !from_row(st, (char *)*list + *n * elem)) {
            status = fail_status(db, HIST_ERR_NOMEM, "%s", "out of memory");
            break;
        }
        (*n)++;
    }
    if (status == HIST_OK && rc != SQLITE_DONE) status = fail(db, rc, what);
    done(st);
    return status;
}

/* ---- transactions --------------------------------------------------------
 * Every write of several statements is one transaction: BEGIN IMMEDIATE
 * (take the write lock first, so a concurrent writer makes us wait in the
 * busy handler instead of failing), or a savepoint inside a batch. */

static int tx_begin(struct hist_db *db)
{
    if (db->readonly)
        return fail_status(db, HIST_ERR_READONLY, "cannot save to %s: it is read-only", db->path);
    return run(db, db->batch_depth ? ST_SAVEPOINT : ST_BEGIN, "starting a transaction");
}

static int tx_end(struct hist_db *db, int status)
{
    if (status == HIST_OK) {
        status = run(db, db->batch_depth ? ST_RELEASE : ST_COMMIT, "saving");
        if (status == HIST_OK) return HIST_OK;
    }
    /* Keep the first error's message; the rollback only restores the state. */
    char saved[sizeof db->err];
    memcpy(saved, db->err, sizeof saved);
    if (db->batch_depth) {
        run(db, ST_ROLLBACK_TO, "rolling back");
        run(db, ST_RELEASE, "rolling back");
    } else if (!sqlite3_get_autocommit(db->sql)) {
        run(db, ST_ROLLBACK, "rolling back");
    }
    memcpy(db->err, saved, sizeof saved);
    return status;
}

static int write_check(struct hist_db *db)
{
    db->err[0] = '\0';
    if (db->readonly)
        return fail_status(db, HIST_ERR_READONLY, "cannot save to %s: it is read-only", db->path);
    return HIST_OK;
}

int hist_batch_begin(struct hist_db *db)
{
    int status = write_check(db);
    if (status != HIST_OK) return status;
    if (db->batch_depth) return fail_status(db, HIST_ERR_INVALID, "%s", "batches do not nest");
    status = run(db, ST_BEGIN, "starting a transaction");
    if (status == HIST_OK) db->batch_depth = 1;
    return status;
}

int hist_batch_end(struct hist_db *db, bool commit)
{
    if (!db->batch_depth) return fail_status(db, HIST_ERR_INVALID, "%s", "no batch is open");
    db->batch_depth = 0;
    int status = HIST_OK;
    if (commit) status = run(db, ST_COMMIT, "saving");
    if ((!commit || status != HIST_OK) && !sqlite3_get_autocommit(db->sql)) {
        char saved[sizeof db->err];
        memcpy(saved, db->err, sizeof saved);
        run(db, ST_ROLLBACK, "rolling back");
        memcpy(db->err, saved, sizeof saved);
    }
    return status;
}

/* ---- opening -------------------------------------------------------------- */

/* What the header and catalogue of an SQLite file say about it. */
struct db_info {
    int app_id;
    int version;
    int n_objects; /* tables, indexes, ... of any kind */
};

/* Prepared (not string-built) read of one integer. */
static int read_int(sqlite3 *sql, const char *q, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int read_info(sqlite3 *sql, struct db_info *info)
{
    int rc = read_int(sql, "PRAGMA application_id", &info->app_id);
    if (rc == SQLITE_OK) rc = read_int(sql, "PRAGMA user_version", &info->version);
    if (rc == SQLITE_OK) rc = read_int(sql, "SELECT count(*) FROM sqlite_master", &info->n_objects);
    return rc;
}

/* A file: URI for PATH with immutable=1, for a read-only WAL database
 * whose folder cannot hold the shared-memory file. */
static char *immutable_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *u = malloc(5 + 3 * n + sizeof "?immutable=1");
    if (!u) return NULL;
    char *p = u;
    memcpy(p, "file:", 5);
    p += 5;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        unsigned c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    memcpy(p, "?immutable=1", sizeof "?immutable=1");
    return u;
}

static int conn_open(const char *path, bool rw, bool immutable, sqlite3 **out)
{
    int rc;
    *out = NULL;
    if (immutable) {
        char *uri = immutable_uri(path);
        if (!uri) return SQLITE_NOMEM;
        rc = sqlite3_open_v2(uri, out, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
    } else {
        /* Never SQLITE_OPEN_CREATE: hist_open creates the file itself (0600). */
        rc = sqlite3_open_v2(path, out, rw ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, NULL);
    }
    if (*out) {
        sqlite3_extended_result_codes(*out, 1);
        sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
    }
    return rc;
}

/* A read-only connection that cannot create the -shm file next to a WAL
 * database (read-only folder or file system) fails like this. */
static bool needs_immutable(int rc)
{
    return (rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN;
}

/* Is the process that was streaming a reply still there? */
static bool writer_alive(int64_t pid)
{
    if (pid <= 0 || pid > INT_MAX) return false;
    if (pid == (int64_t)getpid()) return true;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
    /* It exists (EPERM: another user's). A zombie streams nothing. */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(proc, "r");
    if (!f) return true;
    char line[512];
    bool alive = true;
    if (fgets(line, sizeof line, f)) {
        char *paren = strrchr(line, ')');
        if (paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X')) alive = false;
    }
    fclose(f);
    return alive;
}

/* Mark `interrupted` every reply left streaming by a process that is gone.
 * Best effort: a failure here (another writer holding the lock) leaves the
 * rows for the next open. */
static void recover_interrupted(struct hist_db *db)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT id, writer_pid FROM messages "
                           "WHERE role = 'assistant' AND finish_reason IS NULL",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->sql,
                           "UPDATE messages SET finish_reason = 'interrupted', writer_pid = NULL "
                           "WHERE id = ?1 AND finish_reason IS NULL",
                           -1, &upd, NULL) != SQLITE_OK)
        goto out;
    /* Collect first: no write while the read statement is open. */
    int64_t *dead = NULL;
    size_t n = 0, cap = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        if (writer_alive(col_int_or(sel, 1, 0))) continue;
        if (!grow((void **)&dead, &cap, n, sizeof *dead)) break;
        dead[n++] = sqlite3_column_int64(sel, 0);
    }
    sqlite3_reset(sel);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(upd, 1, dead[i]);
        sqlite3_step(upd);
        sqlite3_reset(upd);
    }
    free(dead);
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
}

/* Apply the migrations from INFO->version up to ours, in one transaction,
 * after checking again under the write lock (another process may have
 * created or upgraded the file meanwhile). */
static int migrate(struct hist_db *db, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    struct db_info info = {0};
    if (rc == SQLITE_OK) rc = read_info(db->sql, &info);
    if (rc != SQLITE_OK) goto sql_error;
    if (info.app_id != HIST_APPLICATION_ID && (info.app_id != 0 || info.version != 0 ||
                                               info.n_objects != 0)) {
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen, "%s is not an Ancora history database (left unchanged)", db->path);
        return HIST_ERR_INVALID;
    }
    if (info.version > HIST_SCHEMA_VERSION) {
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen,
                 "%s was written by a newer Ancora (schema version %d; this one knows up to %d)",
                 db->path, info.version, HIST_SCHEMA_VERSION);
        return HIST_ERR_INVALID;
    }
    for (int v = info.version + 1; v <= HIST_SCHEMA_VERSION && rc == SQLITE_OK; v++)
        rc = sqlite3_exec(db->sql, migrations[v - 1], NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK) return HIST_OK;
sql_error:;
    int status = fail(db, rc, "upgrading the schema");
    if (!sqlite3_get_autocommit(db->sql)) sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    snprintf(err, errlen, "%s", db->err);
    return status;
}

/* The first bytes of every SQLite 3 file. */
static const char sqlite_magic[16] = "SQLite format 3";

/* Check PATH before SQLite touches it: create it (0600) when absent;
 * refuse anything but an empty file or one with the SQLite header. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return HIST_ERR_IO;
        }
        int status = hist_make_parent_dirs(path, err, errlen);
        if (status != HIST_OK) return status;
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) { /* EEXIST: another process won the race */
            int e = errno;
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
            return e == EROFS || e == EACCES ? HIST_ERR_READONLY : HIST_ERR_IO;
        }
        if (fd >= 0) {
            fchmod(fd, 0600); /* whatever the umask */
            close(fd);
        }
        if (stat(path, &st) != 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return HIST_ERR_IO;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        return HIST_ERR_INVALID;
    }
    if (st.st_size == 0) return HIST_OK; /* new: SQLite treats it as an empty database */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return errno == EACCES ? HIST_ERR_READONLY : HIST_ERR_IO;
    }
    char head[sizeof sqlite_magic];
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    if (got != (ssize_t)sizeof head || memcmp(head, sqlite_magic, sizeof head) != 0) {
        snprintf(err, errlen, "%s is not an SQLite database, so not an Ancora history (left unchanged)",
                 path);
        return HIST_ERR_INVALID;
    }
    return HIST_OK;
}

/* Open read-only and decide from the header, without writing anything,
 * whether the file is ours, new, foreign or from a newer Ancora. On
 * success *PROBE is the open connection and *IMMUTABLE tells whether it
 * had to be opened immutable. */
static int probe(const char *path, struct db_info *info, sqlite3 **probe_out, bool *immutable,
                 char *err, size_t errlen)
{
    sqlite3 *sql;
    *immutable = false;
    int rc = conn_open(path, false, false, &sql);
    if (rc == SQLITE_OK) rc = read_info(sql, info);
    if (rc != SQLITE_OK && needs_immutable(rc)) {
        sqlite3_close(sql);
        *immutable = true;
        rc = conn_open(path, false, true, &sql);
        if (rc == SQLITE_OK) rc = read_info(sql, info);
    }
    if (rc != SQLITE_OK) {
        int code = rc & 0xff;
        if (code == SQLITE_NOTADB)
            snprintf(err, errlen, "%s is not a readable SQLite database (left unchanged)", path);
        else if (code == SQLITE_CORRUPT)
            snprintf(err, errlen, "%s is damaged: %s", path, sql ? sqlite3_errmsg(sql) : "");
        else
            snprintf(err, errlen, "cannot read %s: %s", path,
                     sql ? sqlite3_errmsg(sql) : sqlite3_errstr(rc));
        sqlite3_close(sql);
        return status_of(rc, 0);
    }
    bool empty = info->app_id == 0 && info->version == 0 && info->n_objects == 0;
    if (info->app_id != HIST_APPLICATION_ID && !empty) {
        snprintf(err, errlen,
                 "%s is an SQLite database of another program, not an Ancora history "
                 "(left unchanged)",
                 path);
        sqlite3_close(sql);
        return HIST_ERR_INVALID;
    }
    if (info->version > HIST_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s was written by a newer Ancora (schema version %d; this one knows up to %d); "
                 "left unchanged",
                 path, info->version, HIST_SCHEMA_VERSION);
        sqlite3_close(sql);
        return HIST_ERR_INVALID;
    }
    *probe_out = sql;
    return HIST_OK;
}

struct hist_db *hist_open(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no history database path");
        return NULL;
    }
    if (sqlite3_libversion_number() < SQLITE_MIN_VERSION) {
        snprintf(err, errlen, "SQLite %s is too old for the history (3.34 or newer needed)",
                 sqlite3_libversion());
        return NULL;
    }
    if (prepare_file(path, err, errlen) != HIST_OK) return NULL;

    struct db_info info;
    sqlite3 *probe_sql = NULL;
    bool immutable;
    if (probe(path, &info, &probe_sql, &immutable, err, errlen) != HIST_OK) return NULL;

    struct hist_db *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        sqlite3_close(probe_sql);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (immutable) {
        db->sql = probe_sql; /* nothing better is possible: read-only media */
        db->readonly = true;
    } else {
        sqlite3_close(probe_sql);
        int rc = conn_open(path, true, false, &db->sql);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "cannot open %s: %s", path,
                     db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
            goto fail;
        }
        db->readonly = sqlite3_db_readonly(db->sql, "main") == 1;
    }
    sqlite3_exec(db->sql, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);

    if (db->readonly) {
        if (info.version < HIST_SCHEMA_VERSION) {
            snprintf(err, errlen,
                     info.version == 0
                         ? "%s is read-only and holds no history yet"
                         : "%s is read-only and needs a schema upgrade: open it once with write access",
                     path);
            goto fail;
        }
        return db;
    }
    /* From here on the file is known to be ours (or empty): write. */
    sqlite3_exec(db->sql, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    /* Every commit reaches the disk (SQLite's usual default, made explicit):
     * a streamed reply survives a power cut, not only a crash. */
    sqlite3_exec(db->sql, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (info.version < HIST_SCHEMA_VERSION && migrate(db, err, errlen) != HIST_OK) goto fail;
    recover_interrupted(db);
    db->err[0] = '\0';
    return db;
fail:
    hist_close(db);
    return NULL;
}

void hist_close(struct hist_db *db)
{
    if (!db) return;
    if (db->batch_depth) hist_batch_end(db, true);
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(db->st[i]);
    sqlite3_close(db->sql);
    free(db->path);
    free(db);
}

/* ---- sessions ------------------------------------------------------------ */

int hist_session_create(struct hist_db *db, const char *title, const char *model_path,
                        const char *model_name, const char *params_json, int64_t *id_out)
{
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *st = stmt(db, ST_SESSION_INSERT);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_text(st, 1, title ? title : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model_path ? model_path : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, model_name ? model_name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, params_json && *params_json ? params_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms());
    status = step_done(db, st, "creating a session");
    if (status == HIST_OK && id_out) *id_out = sqlite3_last_insert_rowid(db->sql);
    return status;
}

/* A one-statement update of session ID; HIST_ERR_NOTFOUND if no such row. */
static int update_session(struct hist_db *db, enum stmt_id id, int64_t sid, const char *text,
                          int64_t number, const char *what)
{
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *st = stmt(db, id);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, sid);
    if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else sqlite3_bind_int64(st, 2, number);
    status = step_done(db, st, what);
    if (status == HIST_OK && sqlite3_changes(db->sql) == 0) {
        snprintf(db->err, sizeof db->err, "no session %lld in %s", (long long)sid, db->path);
        return HIST_ERR_NOTFOUND;
    }
    return status;
}

int hist_session_set_title(struct hist_db *db, int64_t id, const char *title)
{
    return update_session(db, ST_SESSION_TITLE, id, title ? title : "", 0, "setting the title");
}

int hist_session_set_params(struct hist_db *db, int64_t id, const char *params_json)
{
    return update_session(db, ST_SESSION_PARAMS, id,
                          params_json && *params_json ? params_json : "{}", 0,
                          "saving the parameters");
}

int hist_session_set_vocab(struct hist_db *db, int64_t id, const char *vocab_hash)
{
    return update_session(db, ST_SESSION_VOCAB, id, vocab_hash ? vocab_hash : "", 0,
                          "saving the vocabulary fingerprint");
}

int hist_session_touch(struct hist_db *db, int64_t id)
{
    return update_session(db, ST_SESSION_TOUCH, id, NULL, now_ms(), "updating the session");
}

int hist_session_delete(struct hist_db *db, int64_t id)
{
    int status = write_check(db);
    if (status != HIST_OK) return status;
    /* The cascade deletes messages (and their index entries, by trigger)
     * and parameter events in the same statement. */
    sqlite3_stmt *st = stmt(db, ST_SESSION_DELETE);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    status = step_done(db, st, "deleting the session");
    if (status == HIST_OK && sqlite3_changes(db->sql) == 0) {
        snprintf(db->err, sizeof db->err, "no session %lld in %s", (long long)id, db->path);
        return HIST_ERR_NOTFOUND;
    }
    return status;
}

void hist_session_clear(struct hist_session *s)
{
    if (!s) return;
    free(s->title);
    free(s->model_path);
    free(s->model_name);
    free(s->params_json);
    free(s->vocab_hash);
    memset(s, 0, sizeof *s);
}

/* A ST_SESSION_GET or ST_SESSION_LIST row into s (a struct hist_session);
 * false when out of memory, s cleared. */
static bool session_from_row(sqlite3_stmt *st, void *item)
{
    struct hist_session *s = item;
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    s->title = col_dup(st, 1);
    s->model_path = col_dup(st, 2);
    s->model_name = col_dup(st, 3);
    s->params_json = col_dup(st, 4);
    s->created_ms = sqlite3_column_int64(st, 5);
    s->updated_ms = sqlite3_column_int64(st, 6);
    s->n_messages = sqlite3_column_int64(st, 7);
    s->vocab_hash = col_dup(st, 8);
    if (s->title && s->model_path && s->model_name && s->params_json && s->vocab_hash) return true;
    hist_session_clear(s);
    return false;
}

int hist_session_get(struct hist_db *db, int64_t id, struct hist_session *out)
{
    memset(out, 0, sizeof *out);
    db->err[0] = '\0';
    sqlite3_stmt *st = stmt(db, ST_SESSION_GET);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), status = HIST_OK;
    if (rc == SQLITE_ROW) {
        if (!session_from_row(st, out)) status = fail_status(db, HIST_ERR_NOMEM, "%s", "out of memory");
    } else if (rc == SQLITE_DONE) {
        snprintf(db->err, sizeof db->err, "no session %lld in %s", (long long)id, db->path);
        status = HIST_ERR_NOTFOUND;
    } else {
        status = fail(db, rc, "reading the session");
    }
    done(st);
    return status;
}

void hist_session_list_free(struct hist_session *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) hist_session_clear(&list[i]);
    free(list);
}

int hist_session_list(struct hist_db *db, size_t limit, struct hist_session **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    db->err[0] = '\0';
    sqlite3_stmt *st = stmt(db, ST_SESSION_LIST);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, limit && limit < INT64_MAX ? (int64_t)limit : -1);
    void *list;
    size_t n;
    int status = read_rows(db, st, sizeof **out, session_from_row, "listing sessions", &list, &n);
    if (status != HIST_OK) {
        hist_session_list_free(list, n);
        return status;
    }
    *out = list;
    *n_out = n;
    return HIST_OK;
}

/* ---- messages ------------------------------------------------------------ */

/* Insert a message and mark the session active, in one transaction. */
static int insert_message(struct hist_db *db, int64_t session_id, enum hist_role role,
                          const char *content, enum hist_finish finish, bool streaming,
                          int64_t *id_out)
{
    if ((unsigned)role > HIST_ROLE_ASSISTANT)
        return fail_status(db, HIST_ERR_INVALID, "%s", "unknown message role");
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *ins = stmt(db, ST_MSG_INSERT), *touch = stmt(db, ST_SESSION_TOUCH);
    if (!ins || !touch) return HIST_ERR_IO;
    int64_t now = now_ms();
    status = tx_begin(db);
    if (status != HIST_OK) return status;
    sqlite3_bind_int64(ins, 1, session_id);
    sqlite3_bind_text(ins, 2, role_names[role], -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, content ? content : "", -1, SQLITE_STATIC);
    bind_text_or_null(ins, 4, hist_finish_name(finish));
    if (streaming) sqlite3_bind_int64(ins, 5, (int64_t)getpid());
    else sqlite3_bind_null(ins, 5);
    sqlite3_bind_int64(ins, 6, now);
    int rc = sqlite3_step(ins);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        snprintf(db->err, sizeof db->err, "no session %lld in %s", (long long)session_id, db->path);
        status = HIST_ERR_NOTFOUND;
    } else if (rc != SQLITE_DONE) {
        status = fail(db, rc, "saving a message");
    }
    done(ins);
    int64_t id = sqlite3_last_insert_rowid(db->sql);
    if (status == HIST_OK) {
        sqlite3_bind_int64(touch, 1, session_id);
        sqlite3_bind_int64(touch, 2, now);
        status = step_done(db, touch, "updating the session");
    }
    status = tx_end(db, status);
    if (status == HIST_OK && id_out) *id_out = id;
    return status;
}

int hist_msg_append(struct hist_db *db, int64_t session_id, enum hist_role role,
                    const char *content, int64_t *id_out)
{
    return insert_message(db, session_id, role, content,
                          role == HIST_ROLE_ASSISTANT ? HIST_FINISH_STOP : HIST_FINISH_NONE,
                          false, id_out);
}

int hist_msg_begin(struct hist_db *db, int64_t session_id, int64_t *id_out)
{
    return insert_message(db, session_id, HIST_ROLE_ASSISTANT, "", HIST_FINISH_NONE, true, id_out);
}

int hist_msg_update_text(struct hist_db *db, int64_t msg_id, const char *text)
{
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *st = stmt(db, ST_MSG_TEXT);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, msg_id);
    sqlite3_bind_text(st, 2, text ? text : "", -1, SQLITE_STATIC);
    status = step_done(db, st, "saving the reply");
    if (status == HIST_OK && sqlite3_changes(db->sql) == 0) {
        snprintf(db->err, sizeof db->err, "no assistant message %lld in %s", (long long)msg_id,
                 db->path);
        return HIST_ERR_NOTFOUND;
    }
    return status;
}

static void bind_count(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0) sqlite3_bind_int64(st, i, v);
    else sqlite3_bind_null(st, i);
}

static void bind_ms(sqlite3_stmt *st, int i, double v)
{
    if (v >= 0) sqlite3_bind_double(st, i, v); /* false for NaN too */
    else sqlite3_bind_null(st, i);
}

void hist_reply_info_init(struct hist_reply_info *ri)
{
    memset(ri, 0, sizeof *ri);
    ri->window = ri->sinks = ri->cache_used = ri->cache_capacity = -1;
    ri->rope_base = ri->rope_factor = ri->sink_share = -1;
}

/* The ids as a little-endian int32 blob (the same bytes on every host). */
static unsigned char *ids_blob(const int32_t *ids, size_t n)
{
    unsigned char *b = malloc(n * 4 + 1);
    for (size_t i = 0; b && i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) b[4 * i + k] = (unsigned char)(v >> (8 * k));
    }
    return b;
}

static int32_t *ids_from_blob(const unsigned char *b, size_t bytes, size_t *n_out)
{
    size_t n = bytes / 4;
    int32_t *ids = malloc(n * sizeof *ids + 1);
    for (size_t i = 0; ids && i < n; i++) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) v |= (uint32_t)b[4 * i + k] << (8 * k);
        ids[i] = (int32_t)v;
    }
    *n_out = ids ? n : 0;
    return ids;
}

/* Bind INFO to ST_MSG_INFO (?1 = the message). */
static void bind_info(sqlite3_stmt *st, int64_t msg_id, const struct hist_reply_info *ri)
{
    sqlite3_bind_int64(st, 1, msg_id);
    bind_text_or_null(st, 2, ri->cache_policy);
    bind_count(st, 3, ri->window);
    bind_count(st, 4, ri->sinks);
    bind_text_or_null(st, 5, ri->rope_type);
    bind_ms(st, 6, ri->rope_base);
    bind_ms(st, 7, ri->rope_factor);
    bind_text_or_null(st, 8, ri->adapter);
    bind_text_or_null(st, 9, ri->template_name);
    bind_count(st, 10, ri->cache_used);
    bind_count(st, 11, ri->cache_capacity);
    bind_ms(st, 12, ri->sink_share);
}

/* Store the reply's token ids (none: nothing to store). */
static int store_tokens(struct hist_db *db, int64_t msg_id, const struct hist_reply_info *ri)
{
    if (!ri->token_ids || ri->n_token_ids == 0) return HIST_OK;
    if (ri->n_token_ids >= (size_t)INT_MAX / 4)
        return fail_status(db, HIST_ERR_INVALID, "%s", "too many token ids for one reply");
    sqlite3_stmt *st = stmt(db, ST_MSG_TOKENS);
    unsigned char *blob = ids_blob(ri->token_ids, ri->n_token_ids);
    if (!st || !blob) {
        free(blob);
        return st ? fail_status(db, HIST_ERR_NOMEM, "%s", "out of memory") : HIST_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, msg_id);
    sqlite3_bind_blob(st, 2, blob, (int)(ri->n_token_ids * 4), SQLITE_STATIC);
    int status = step_done(db, st, "saving the reply's tokens");
    free(blob);
    return status;
}

int hist_msg_finish(struct hist_db *db, int64_t msg_id, const char *final_text,
                    enum hist_finish finish, const struct hist_msg_stats *stats)
{
    return hist_msg_finish_info(db, msg_id, final_text, finish, stats, NULL);
}

int hist_msg_finish_info(struct hist_db *db, int64_t msg_id, const char *final_text,
                         enum hist_finish finish, const struct hist_msg_stats *stats,
                         const struct hist_reply_info *info)
{
    if (finish == HIST_FINISH_NONE || !hist_finish_name(finish))
        return fail_status(db, HIST_ERR_INVALID, "%s", "a finished reply needs a finish reason");
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *fin = stmt(db, ST_MSG_FINISH), *touch = stmt(db, ST_SESSION_TOUCH_BY_MSG);
    sqlite3_stmt *inf = info ? stmt(db, ST_MSG_INFO) : NULL;
    if (!fin || !touch || (info && !inf)) return HIST_ERR_IO;
    struct hist_msg_stats none = {-1, -1, -1, -1};
    if (!stats) stats = &none;
    status = tx_begin(db);
    if (status != HIST_OK) return status;
    sqlite3_bind_int64(fin, 1, msg_id);
    bind_text_or_null(fin, 2, final_text);
    sqlite3_bind_text(fin, 3, hist_finish_name(finish), -1, SQLITE_STATIC);
    bind_count(fin, 4, stats->prompt_tokens);
    bind_count(fin, 5, stats->completion_tokens);
    bind_ms(fin, 6, stats->prompt_ms);
    bind_ms(fin, 7, stats->gen_ms);
    status = step_done(db, fin, "finishing the reply");
    if (status == HIST_OK && sqlite3_changes(db->sql) == 0) {
        snprintf(db->err, sizeof db->err, "no assistant message %lld in %s", (long long)msg_id,
                 db->path);
        status = HIST_ERR_NOTFOUND;
    }
    if (status == HIST_OK && info) {
        bind_info(inf, msg_id, info);
        status = step_done(db, inf, "saving the reply's figures");
        if (status == HIST_OK) status = store_tokens(db, msg_id, info);
    }
    if (status == HIST_OK) {
        sqlite3_bind_int64(touch, 1, msg_id);
        sqlite3_bind_int64(touch, 2, now_ms());
        status = step_done(db, touch, "updating the session");
    }
    return tx_end(db, status);
}

static void info_free(struct hist_reply_info *ri)
{
    free((char *)ri->cache_policy);
    free((char *)ri->rope_type);
    free((char *)ri->adapter);
    free((char *)ri->template_name);
    free((int32_t *)ri->token_ids);
}

void hist_msg_list_free(struct hist_message *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].content);
        info_free(&list[i].info);
    }
    free(list);
}

/* The engine figures of a ST_MSG_LIST row (columns 10 on); false when out
 * of memory. */
static bool info_from_row(sqlite3_stmt *st, struct hist_reply_info *ri)
{
    bool oom = false;
    hist_reply_info_init(ri);
    ri->cache_policy = col_dup_or_null(st, 10, &oom);
    ri->window = col_int_or(st, 11, -1);
    ri->sinks = col_int_or(st, 12, -1);
    ri->rope_type = col_dup_or_null(st, 13, &oom);
    ri->rope_base = col_double_or(st, 14, -1);
    ri->rope_factor = col_double_or(st, 15, -1);
    ri->adapter = col_dup_or_null(st, 16, &oom);
    ri->template_name = col_dup_or_null(st, 17, &oom);
    ri->cache_used = col_int_or(st, 18, -1);
    ri->cache_capacity = col_int_or(st, 19, -1);
    ri->sink_share = col_double_or(st, 20, -1);
    if (sqlite3_column_type(st, 21) == SQLITE_BLOB) {
        const void *b = sqlite3_column_blob(st, 21);
        size_t bytes = (size_t)sqlite3_column_bytes(st, 21);
        if (b && bytes >= 4) {
            ri->token_ids = ids_from_blob(b, bytes, &ri->n_token_ids);
            if (!ri->token_ids) oom = true;
        }
    }
    return !oom;
}

/* A ST_MSG_LIST row into m (a struct hist_message); false when out of
 * memory, what was read freed. */
static bool msg_from_row(sqlite3_stmt *st, void *item)
{
    struct hist_message *m = item;
    m->id = sqlite3_column_int64(st, 0);
    m->session_id = sqlite3_column_int64(st, 1);
    m->role = role_from_name((const char *)sqlite3_column_text(st, 2));
    if (!(m->content = col_dup(st, 3))) return false;
    m->stats.prompt_tokens = col_int_or(st, 4, -1);
    m->stats.completion_tokens = col_int_or(st, 5, -1);
    m->stats.prompt_ms = col_double_or(st, 6, -1);
    m->stats.gen_ms = col_double_or(st, 7, -1);
    int fin = hist_finish_from_name((const char *)sqlite3_column_text(st, 8));
    m->finish = fin < 0 ? HIST_FINISH_NONE : (enum hist_finish)fin;
    m->created_ms = sqlite3_column_int64(st, 9);
    if (info_from_row(st, &m->info)) return true;
    free(m->content);
    info_free(&m->info);
    return false;
}

int hist_msg_list(struct hist_db *db, int64_t session_id, struct hist_message **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    db->err[0] = '\0';
    sqlite3_stmt *st = stmt(db, ST_MSG_LIST);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, session_id);
    void *list;
    size_t n;
    int status = read_rows(db, st, sizeof **out, msg_from_row, "reading messages", &list, &n);
    if (status != HIST_OK) {
        hist_msg_list_free(list, n);
        return status;
    }
    *out = list;
    *n_out = n;
    return HIST_OK;
}

/* ---- parameter events ----------------------------------------------------- */

int hist_param_event_add(struct hist_db *db, int64_t session_id, int64_t message_id,
                         const char *name, const char *old_value, const char *new_value,
                         int64_t *id_out)
{
    if (!name || !*name) return fail_status(db, HIST_ERR_INVALID, "%s", "a parameter event needs a name");
    int status = write_check(db);
    if (status != HIST_OK) return status;
    sqlite3_stmt *st = stmt(db, ST_EVENT_INSERT);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, session_id);
    if (message_id > 0) sqlite3_bind_int64(st, 2, message_id);
    else sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, old_value);
    bind_text_or_null(st, 5, new_value);
    sqlite3_bind_int64(st, 6, now_ms());
    int rc = sqlite3_step(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        snprintf(db->err, sizeof db->err, "no session %lld or message %lld in %s",
                 (long long)session_id, (long long)message_id, db->path);
        status = HIST_ERR_NOTFOUND;
    } else if (rc != SQLITE_DONE) {
        status = fail(db, rc, "saving a parameter change");
    }
    done(st);
    if (status == HIST_OK && id_out) *id_out = sqlite3_last_insert_rowid(db->sql);
    return status;
}

void hist_param_event_list_free(struct hist_param_event *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].name);
        free(list[i].old_value);
        free(list[i].new_value);
    }
    free(list);
}

/* A ST_EVENT_LIST row into e (a struct hist_param_event); false when out
 * of memory, what was read freed. */
static bool event_from_row(sqlite3_stmt *st, void *item)
{
    struct hist_param_event *e = item;
    bool oom = false;
    e->id = sqlite3_column_int64(st, 0);
    e->session_id = sqlite3_column_int64(st, 1);
    e->message_id = sqlite3_column_int64(st, 2); /* NULL reads as 0 */
    e->name = col_dup(st, 3);
    e->old_value = col_dup_or_null(st, 4, &oom);
    e->new_value = col_dup_or_null(st, 5, &oom);
    e->at_ms = sqlite3_column_int64(st, 6);
    if (e->name && !oom) return true;
    free(e->name);
    free(e->old_value);
    free(e->new_value);
    return false;
}

int hist_param_event_list(struct hist_db *db, int64_t session_id, struct hist_param_event **out,
                          size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    db->err[0] = '\0';
    sqlite3_stmt *st = stmt(db, ST_EVENT_LIST);
    if (!st) return HIST_ERR_IO;
    sqlite3_bind_int64(st, 1, session_id);
    void *list;
    size_t n;
    int status = read_rows(db, st, sizeof **out, event_from_row, "reading parameter changes", &list,
                           &n);
    if (status != HIST_OK) {
        hist_param_event_list_free(list, n);
        return status;
    }
    *out = list;
    *n_out = n;
    return HIST_OK;
}

/* ---- search ----------------------------------------------------------------
 * The trigram index finds substrings of 3 characters or more; a word of
 * 1-2 characters (common in Chinese: 模型, 中文) has no trigram, so it is
 * matched with LIKE (ASCII case-insensitive, like the snippet marking). */

#define SNIPPET_BEFORE 24 /* characters of context before the first match */
#define SNIPPET_CHARS 96  /* characters in a snippet, marks aside */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static size_t next_char(const char *s, size_t i)
{
    if (!s[i]) return i;
    i++;
    while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
    return i;
}

static size_t prev_char(const char *s, size_t i)
{
    if (i == 0) return 0;
    i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Does WORD occur at S (ASCII case-insensitively)? */
static bool match_at(const char *s, const char *word)
{
    for (; *word; s++, word++)
        if (!*s || ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*word)) return false;
    return true;
}

static bool contains(const char *s, const char *word)
{
    for (; *s; s++)
        if (match_at(s, word)) return true;
    return !*word;
}

/* Split QUERY at whitespace (ASCII and the ideographic space U+3000) into
 * cleaned words; returns the count, 0 when empty, -1 out of memory. */
static int split_words(const char *query, char ***out)
{
    char *clean = hist_text_clean(query, 0); /* one line, single spaces */
    if (!clean) return -1;
    for (char *p = clean; *p; p++) /* U+3000 = E3 80 80 */
        if ((unsigned char)p[0] == 0xE3 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0x80)
            memcpy(p, "   ", 3);
    size_t cap = 0, n = 0;
    char **words = NULL;
    for (char *tok = strtok(clean, " "); tok; tok = strtok(NULL, " ")) {
        if (!grow((void **)&words, &cap, n, sizeof *words) || !(words[n] = strdup(tok))) {
            for (size_t i = 0; i < n; i++) free(words[i]);
            free(words);
            free(clean);
            return -1;
        }
        n++;
    }
    free(clean);
    *out = words;
    return (int)n;
}

/* A one-line excerpt of CONTENT around the first match, every match
 * between the marks. */
static char *make_snippet(const char *content, char **words, int n_words, const char *mo,
                          const char *mc)
{
    char *text = hist_text_clean(content, 0);
    if (!text) return NULL;
    size_t len = strlen(text), first = len;
    for (size_t i = 0; i < len && first == len; i = next_char(text, i))
        for (int w = 0; w < n_words; w++)
            if (match_at(text + i, words[w])) {
                first = i;
                break;
            }
    if (first == len) first = 0; /* matched by Unicode case folding only */
    size_t start = first, end;
    for (int k = 0; k < SNIPPET_BEFORE && start > 0; k++) start = prev_char(text, start);
    end = start;
    for (int k = 0; k < SNIPPET_CHARS && end < len; k++) end = next_char(text, end);
    for (size_t k = utf8_chars(text + start); end == len && k < SNIPPET_CHARS && start > 0; k++)
        start = prev_char(text, start); /* near the end: show more before */

    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    if (!m) {
        free(text);
        return NULL;
    }
    if (start > 0) fputs("\xE2\x80\xA6", m); /* … */
    size_t i = start;
    while (i < end) {
        int best = -1;
        size_t best_len = 0;
        for (int w = 0; w < n_words; w++) {
            size_t wl = strlen(words[w]);
            if (wl > best_len && match_at(text + i, words[w])) {
                best = w;
                best_len = wl;
            }
        }
        if (best >= 0) {
            fputs(mo, m);
            fwrite(text + i, 1, best_len, m);
            fputs(mc, m);
            i += best_len;
        } else {
            size_t j = next_char(text, i);
            fwrite(text + i, 1, j - i, m);
            i = j;
        }
    }
    if (i < len) fputs("\xE2\x80\xA6", m);
    bool bad = ferror(m) != 0;
    fclose(m);
    free(text);
    if (bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

void hist_hits_free(struct hist_hit *hits, size_t n)
{
    for (size_t i = 0; hits && i < n; i++) {
        free(hits[i].session_title);
        free(hits[i].snippet);
    }
    free(hits);
}

/* "%WORD%" with LIKE's wildcards escaped by '\'. */
static char *like_pattern(const char *word)
{
    char *p = malloc(2 * strlen(word) + 3), *o = p;
    if (!p) return NULL;
    *o++ = '%';
    for (; *word; word++) {
        if (*word == '%' || *word == '_' || *word == '\\') *o++ = '\\';
        *o++ = *word;
    }
    *o++ = '%';
    *o = '\0';
    return p;
}

/* The FTS5 query for the long words: each one a quoted string ("" inside
 * stands for "), so no user text is read as query syntax. */
static char *fts_query(char **words, int n_words, const bool *is_long)
{
    size_t cap = 1;
    for (int w = 0; w < n_words; w++) cap += 2 * strlen(words[w]) + 3;
    char *q = malloc(cap), *o = q;
    if (!q) return NULL;
    for (int w = 0; w < n_words; w++) {
        if (!is_long[w]) continue;
        if (o != q) *o++ = ' ';
        *o++ = '"';
        for (const char *c = words[w]; *c; c++) {
            if (*c == '"') *o++ = '"';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o = '\0';
    return q;
}

int hist_search(struct hist_db *db, const char *query, const char *mark_open,
                const char *mark_close, size_t limit, struct hist_hit **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    db->err[0] = '\0';
    if (!mark_open) mark_open = "";
    if (!mark_close) mark_close = "";
    char **words = NULL;
    int n_words = split_words(query ? query : "", &words);
    if (n_words < 0) return fail_status(db, HIST_ERR_NOMEM, "%s", "out of memory");
    if (n_words == 0) return fail_status(db, HIST_ERR_INVALID, "%s", "nothing to search for");

    int status = HIST_OK;
    bool *is_long = calloc((size_t)n_words, sizeof *is_long);
    char *fts = NULL, *like = NULL;
    struct hist_hit *hits = NULL;
    size_t n = 0, cap = 0;
    int first_short = -1, n_long = 0;
    if (!is_long) goto oom;
    for (int w = 0; w < n_words; w++) {
        is_long[w] = utf8_chars(words[w]) >= 3;
        n_long += is_long[w];
        if (!is_long[w] && first_short < 0) first_short = w;
    }
    if (first_short >= 0 && !(like = like_pattern(words[first_short]))) goto oom;
    if (n_long && !(fts = fts_query(words, n_words, is_long))) goto oom;

    sqlite3_stmt *st = stmt(db, n_long ? ST_SEARCH_FTS : ST_SEARCH_SCAN);
    if (!st) {
        status = HIST_ERR_IO;
        goto out;
    }
    if (n_long) {
        sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
        bind_text_or_null(st, 2, like);
    } else {
        sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
    }
    int rc = SQLITE_DONE;
    while ((!limit || n < limit) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *content = (const char *)sqlite3_column_text(st, 4);
        if (!content) content = "";
        bool all = true; /* the short words after the first (LIKE did that one) */
        for (int w = first_short + 1; first_short >= 0 && w < n_words && all; w++)
            if (!is_long[w]) all = contains(content, words[w]);
        if (!all) continue;
        if (!grow((void **)&hits, &cap, n, sizeof *hits)) {
            done(st);
            goto oom;
        }
        struct hist_hit *h = &hits[n];
        h->message_id = sqlite3_column_int64(st, 0);
        h->session_id = sqlite3_column_int64(st, 1);
        h->role = role_from_name((const char *)sqlite3_column_text(st, 2));
        h->created_ms = sqlite3_column_int64(st, 3);
        h->snippet = make_snippet(content, words, n_words, mark_open, mark_close);
        h->session_title = col_dup(st, 5);
        n++;
        if (!h->snippet || !h->session_title) {
            done(st);
            goto oom;
        }
    }
    if (limit && n >= limit) rc = SQLITE_DONE;
    if (rc != SQLITE_DONE) status = fail(db, rc, "searching");
    done(st);
    goto out;
oom:
    status = fail_status(db, HIST_ERR_NOMEM, "%s", "out of memory");
out:
    for (int w = 0; w < n_words; w++) free(words[w]);
    free(words);
    free(is_long);
    free(fts);
    free(like);
    if (status != HIST_OK) {
        hist_hits_free(hits, n);
        return status;
    }
    *out = hits;
    *n_out = n;
    return HIST_OK;
}

/* ---- statistics ------------------------------------------------------------ */

static int64_t file_size(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (!p) return 0;
    snprintf(p, n, "%s%s", path, suffix);
    struct stat st;
    int64_t size = stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
    free(p);
    return size;
}

int hist_get_stats(struct hist_db *db, struct hist_stats *out)
{
    memset(out, 0, sizeof *out);
    db->err[0] = '\0';
    sqlite3_stmt *st = stmt(db, ST_STATS);
    if (!st) return HIST_ERR_IO;
    int rc = sqlite3_step(st), status = HIST_OK;
    if (rc == SQLITE_ROW) {
        out->sessions = sqlite3_column_int64(st, 0);
        out->messages = sqlite3_column_int64(st, 1);
        out->prompt_tokens = (int64_t)sqlite3_column_double(st, 2);
        out->completion_tokens = (int64_t)sqlite3_column_double(st, 3);
    } else {
        status = fail(db, rc, "reading statistics");
    }
    done(st);
    if (status == HIST_OK) {
        int v = 0;
        read_int(db->sql, "PRAGMA user_version", &v);
        out->schema_version = v;
        out->file_bytes = file_size(db->path, "") + file_size(db->path, "-wal");
    }
    return status;
}
