/* test_history.c — the history store: creation, migrations, foreign files,
 * sessions, search, export escaping, read-only/full disks, busy/concurrent
 * writers, crash recovery. Raw SQLite only builds and inspects files. */
/* Helper modes for the shell tests and the benchmark:
 *   test_history --stream-writer DB   stream a reply forever (to be killed)
 *   test_history --probe DB           report the last reply and integrity
 *   test_history --figures-writer DB  finish replies with figures and 50 000
 *                                     token ids each, forever (to be killed)
 *   test_history --probe-figures DB   check every reply's figures: all or none
 *   test_history --fixture DB         sessions for tests/test_history_cli.sh
 *   test_history --fixture-models DB  sessions whose model names have spaces,
 *                                     wide characters, or run long (history list)
 *   test_history --nasty N            print the fixture's hard text N (0, 1)
 *   test_history --populate DB S M    S sessions of M messages (benchmark) */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <sqlite3.h>

#include "history.h"
#include "test_util.h"

static char tmp_root[256];

/* ---- helpers ---------------------------------------------------------------- */

static char *tpath(const char *name)
{
    size_t n = strlen(tmp_root) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", tmp_root, name);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool exists_suffix(const char *path, const char *suffix)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return exists(buf);
}

/* Run SQL on PATH through a plain SQLite connection (creating the file). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "raw_exec on %s failed: %s\n", path, err ? err : sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_close(db);
}

/* The first column of the first row of QUERY as text ("" if none); malloc'ed. */
static char *raw_text(const char *path, const char *query)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) out = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
        else if (rc != SQLITE_DONE) out = strdup(sqlite3_errmsg(db));
        sqlite3_finalize(st);
    } else {
        out = strdup(sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return out ? out : strdup("");
}

static long long raw_int(const char *path, const char *query)
{
    char *s = raw_text(path, query);
    long long v = atoll(s);
    free(s);
    return v;
}

/* PRAGMA integrity_check plus the FTS index's own check: "ok" when sound. */
static char *integrity(const char *path)
{
    char *r = raw_text(path, "PRAGMA integrity_check");
    if (strcmp(r, "ok") != 0) return r;
    free(r);
    sqlite3 *db;
    char *err = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    int rc = sqlite3_exec(db, "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
                          NULL, NULL, &err);
    char *out = strdup(rc == SQLITE_OK ? "ok" : err ? err : "fts check failed");
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
}

static struct hist_db *open_ok(const char *path)
{
    char err[512];
    struct hist_db *db = hist_open(path, err, sizeof err);
    if (!db) {
        fprintf(stderr, "hist_open(%s) failed: %s\n", path, err);
        exit(1);
    }
    return db;
}

static bool is_valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        if (len > 1 && c < 0xC2) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

static char *capture_export(struct hist_db *db, int64_t sid, enum hist_format fmt, int *status)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    *status = hist_export(db, sid, fmt, m);
    fclose(m);
    return buf;
}

/* ---- paths and creation -------------------------------------------------------- */

static void test_default_path(void)
{
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("ANCORA_DB", "/x/y.db", 1);
    char *p = hist_default_path();
    CHECK(p && strcmp(p, "/x/y.db") == 0);
    free(p);
    unsetenv("ANCORA_DB");
    setenv("XDG_DATA_HOME", "/data", 1);
    p = hist_default_path();
    CHECK(p && strcmp(p, "/data/ancora/history.db") == 0);
    free(p);
    setenv("XDG_DATA_HOME", "relative/dir", 1); /* invalid per the XDG spec: ignored */
    setenv("HOME", "/home/someone", 1);
    p = hist_default_path();
    CHECK(p && strcmp(p, "/home/someone/.local/share/ancora/history.db") == 0);
    free(p);
    unsetenv("XDG_DATA_HOME");
    if (saved_home) setenv("HOME", saved_home, 1);
    free(saved_home);
}

static void test_create(void)
{
    char *path = tpath("new/deeper/history.db");
    char *dir1 = tpath("new"), *dir2 = tpath("new/deeper");
    mode_t old = umask(022);
    struct hist_db *db = open_ok(path);
    umask(old);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(dir1, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(stat(dir2, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(!hist_readonly(db));
    CHECK(strcmp(hist_path(db), path) == 0);
    hist_close(db);
    CHECK_INT_EQ(raw_int(path, "PRAGMA user_version"), HIST_SCHEMA_VERSION);
    CHECK_INT_EQ(raw_int(path, "PRAGMA application_id"), HIST_APPLICATION_ID);
    char *mode = raw_text(path, "PRAGMA journal_mode");
    CHECK(strcmp(mode, "wal") == 0);
    free(mode);
    /* Opening again changes nothing and works. */
    db = open_ok(path);
    hist_close(db);

    /* An empty file (e.g. from mktemp) becomes a database. */
    char *empty = tpath("empty.db");
    write_all(empty, "", 0);
    db = open_ok(empty);
    hist_close(db);
    CHECK_INT_EQ(raw_int(empty, "PRAGMA user_version"), HIST_SCHEMA_VERSION);

    /* A folder, or a path under a file: clear errors. */
    char err[512];
    CHECK(hist_open(tmp_root, err, sizeof err) == NULL && strstr(err, "not a regular file"));
    char *under = tpath("empty.db/sub/x.db");
    CHECK(hist_open(under, err, sizeof err) == NULL && strstr(err, "cannot"));
    free(under);
    free(empty);
    free(path);
    free(dir1);
    free(dir2);
}

static void test_schema_file(void)
{
    const char *src = getenv("ANC_SRCDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/history/schema.sql", src && *src ? src : ".");
    size_t len;
    char *text = read_all(path, &len);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text) return;
    int v = 1;
    for (;; v++) {
        char marker[32];
        snprintf(marker, sizeof marker, "-- version %d\n", v);
        char *at = strstr(text, marker);
        if (!at) break;
        at += strlen(marker);
        char *end = strstr(at, "-- version ");
        size_t n = end ? (size_t)(end - at) : strlen(at);
        const char *sql = hist_schema_sql(v);
        CHECK_MSG(sql && strlen(sql) == n && memcmp(sql, at, n) == 0,
                  "history/schema.sql version %d differs from store.c", v);
    }
    CHECK_INT_EQ(v - 1, HIST_SCHEMA_VERSION);
    CHECK(hist_schema_sql(0) == NULL && hist_schema_sql(HIST_SCHEMA_VERSION + 1) == NULL);
    free(text);
}

/* ---- migrations -------------------------------------------------------------------- */

static void test_migrations(void)
{
    /* A database of every earlier version, made with that version's SQL
     * and filled with the statements that version's code would run. */
    for (int from = 1; from < HIST_SCHEMA_VERSION; from++) {
        char name[64];
        snprintf(name, sizeof name, "v%d.db", from);
        char *path = tpath(name);
        for (int v = 1; v <= from; v++) raw_exec(path, hist_schema_sql(v));
        raw_exec(path,
                 "PRAGMA journal_mode = WAL;"
                 "INSERT INTO sessions(title, model_path, model_name, params, created_ms, updated_ms)"
                 " VALUES ('old session', '/m/a.gguf', 'a', '{\"temp\":0.7}', 1000, 2000);"
                 "INSERT INTO messages(session_id, role, content, created_ms)"
                 " VALUES (1, 'user', 'what is an attention sink', 1000);"
                 "INSERT INTO messages(session_id, role, content, finish_reason, created_ms)"
                 " VALUES (1, 'assistant', '注意力汇聚 keeps streaming models stable', 'stop', 1500);"
                 /* a reply left streaming by a process long gone */
                 "INSERT INTO messages(session_id, role, content, writer_pid, created_ms)"
                 " VALUES (1, 'assistant', 'partial answ', NULL, 1800);");
        CHECK_INT_EQ(raw_int(path, "PRAGMA user_version"), from);

        struct hist_db *db = open_ok(path);
        CHECK_INT_EQ(raw_int(path, "PRAGMA user_version"), HIST_SCHEMA_VERSION);
        struct hist_session s;
        CHECK(hist_session_get(db, 1, &s) == HIST_OK && strcmp(s.title, "old session") == 0 &&
              s.n_messages == 3 && s.updated_ms == 2000);
        hist_session_clear(&s);
        struct hist_message *m;
        size_t n;
        CHECK(hist_msg_list(db, 1, &m, &n) == HIST_OK && n == 3);
        if (n == 3) {
            CHECK(m[1].finish == HIST_FINISH_STOP);
            CHECK(m[2].finish == HIST_FINISH_INTERRUPTED && strcmp(m[2].content, "partial answ") == 0);
        }
        hist_msg_list_free(m, n);
        /* Old rows are in the new search index; new tables work. */
        struct hist_hit *h;
        CHECK(hist_search(db, "attention", "<", ">", 0, &h, &n) == HIST_OK && n == 1);
        hist_hits_free(h, n);
        CHECK(hist_search(db, "注意力", "<", ">", 0, &h, &n) == HIST_OK && n == 1);
        hist_hits_free(h, n);
        CHECK(hist_param_event_add(db, 1, 2, "temp", "0.7", "0.2", NULL) == HIST_OK);
        hist_close(db);
        char *ic = integrity(path);
        CHECK_MSG(strcmp(ic, "ok") == 0, "after migration from v%d: %s", from, ic);
        free(ic);
        free(path);
    }
}

/* Every row of QUERY, columns separated by '|' and rows by '\n', NULL as
 * "<null>" and blobs as their length; malloc'ed. */
static char *raw_rows(const char *path, const char *query)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(cap, 1);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, query, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, cap, "error: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            const char *v = sqlite3_column_type(st, i) == SQLITE_NULL ? "<null>" : (const char *)t;
            size_t need = strlen(v) + 4;
            while (len + need >= cap) out = realloc(out, cap *= 2);
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "|" : "", v);
        }
        while (len + 2 >= cap) out = realloc(out, cap *= 2);
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* tests/data/history_v2.db was written by Ancora at schema version 2 (the
 * fixture sessions of --fixture plus a real REPL chat with stories260K,
 * with a /set window event). Migrated by today's code, every v2 row must
 * read back the same, column by column, and the new columns be NULL. */
static void test_migrate_v2_fixture(void)
{
    const char *src = getenv("ANC_SRCDIR");
    char from[512];
    snprintf(from, sizeof from, "%s/tests/data/history_v2.db", src && *src ? src : ".");
    size_t len;
    char *bytes = read_all(from, &len);
    CHECK_MSG(bytes != NULL, "cannot read %s", from);
    if (!bytes) return;
    char *path = tpath("v2-fixture.db");
    write_all(path, bytes, len);
    free(bytes);
    CHECK_INT_EQ(raw_int(path, "PRAGMA user_version"), 2);
    static const char *const tables[] = {
        "SELECT id, title, model_path, model_name, params, created_ms, updated_ms FROM sessions ORDER BY id",
        "SELECT id, session_id, role, content, prompt_tokens, completion_tokens, prompt_ms, gen_ms, "
        "finish_reason, writer_pid, created_ms FROM messages ORDER BY id",
        "SELECT id, session_id, message_id, name, old_value, new_value, at_ms FROM param_events ORDER BY id",
    };
    char *before[3];
    for (int t = 0; t < 3; t++) before[t] = raw_rows(path, tables[t]);
    CHECK(raw_int(path, "SELECT count(*) FROM messages") == 13);
    CHECK(raw_int(path, "SELECT count(*) FROM param_events") == 2);

    struct hist_db *db = open_ok(path);
    hist_close(db);
    CHECK_INT_EQ(raw_int(path, "PRAGMA user_version"), HIST_SCHEMA_VERSION);
    for (int t = 0; t < 3; t++) {
        char *after = raw_rows(path, tables[t]);
        CHECK_MSG(strcmp(before[t], after) == 0, "rows changed by the migration:\n%s\n---\n%s",
                  before[t], after);
        /* row by row: the same number of lines, each equal (strcmp above) */
        free(after);
        free(before[t]);
    }
    CHECK(raw_int(path, "SELECT count(*) FROM messages WHERE cache_policy IS NOT NULL OR "
                       "window_length IS NOT NULL OR sinks IS NOT NULL OR rope_type IS NOT NULL OR "
                       "rope_base IS NOT NULL OR rope_factor IS NOT NULL OR adapter IS NOT NULL OR "
                       "template IS NOT NULL OR cache_used IS NOT NULL OR cache_capacity IS NOT NULL "
                       "OR sink_share IS NOT NULL") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM message_tokens") == 0);
    CHECK(raw_int(path, "SELECT count(*) FROM sessions WHERE vocab_hash IS NOT NULL") == 0);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "after migrating the v2 fixture: %s", ic);
    free(ic);

    /* Through the API: the old rows read with unknown figures, search
     * finds old text, and a new reply stores its figures. */
    db = open_ok(path);
    struct hist_message *m;
    size_t n;
    CHECK(hist_msg_list(db, 4, &m, &n) == HIST_OK && n == 4);
    for (size_t i = 0; i < n; i++) CHECK(!hist_reply_info_known(&m[i].info));
    if (n == 4) CHECK(m[3].stats.completion_tokens == 40 && m[3].finish == HIST_FINISH_LENGTH);
    hist_msg_list_free(m, n);
    struct hist_hit *h;
    CHECK(hist_search(db, "little boy", "<", ">", 0, &h, &n) == HIST_OK && n == 1);
    hist_hits_free(h, n);
    struct hist_session s;
    CHECK(hist_session_get(db, 4, &s) == HIST_OK && strcmp(s.vocab_hash, "") == 0 &&
          strcmp(s.title, "my chat") == 0);
    hist_session_clear(&s);
    hist_close(db);
    free(path);
}

/* Figures written with a finished reply read back the same. */
static void test_reply_info(void)
{
    char *path = tpath("info.db");
    struct hist_db *db = open_ok(path);
    int64_t sid, a, b;
    CHECK(hist_session_create(db, "t", "/m.gguf", "m", NULL, &sid) == HIST_OK);
    CHECK(hist_session_set_vocab(db, sid, "v1:32000:0123456789abcdef") == HIST_OK);
    CHECK(hist_msg_append(db, sid, HIST_ROLE_USER, "hi", NULL) == HIST_OK);
    CHECK(hist_msg_begin(db, sid, &a) == HIST_OK);
    int32_t ids[] = {5, -1, 70000, 2};
    struct hist_reply_info ri;
    hist_reply_info_init(&ri);
    ri.cache_policy = "sink";
    ri.window = 256;
    ri.sinks = 4;
    ri.rope_type = "yarn";
    ri.rope_base = 10000;
    ri.rope_factor = 4;
    ri.template_name = "chatml";
    ri.cache_used = 200;
    ri.cache_capacity = 256;
    ri.sink_share = 0.3125;
    ri.token_ids = ids;
    ri.n_token_ids = 4;
    struct hist_msg_stats st = {100, 4, 50, 200};
    CHECK(hist_msg_finish_info(db, a, "hello", HIST_FINISH_STOP, &st, &ri) == HIST_OK);
    CHECK(hist_msg_begin(db, sid, &b) == HIST_OK);
    CHECK(hist_msg_finish(db, b, "x", HIST_FINISH_CANCELLED, NULL) == HIST_OK);
    struct hist_message *m;
    size_t n;
    CHECK(hist_msg_list(db, sid, &m, &n) == HIST_OK && n == 3);
    if (n == 3) {
        const struct hist_reply_info *r = &m[1].info;
        CHECK(r->cache_policy && strcmp(r->cache_policy, "sink") == 0 && r->window == 256 &&
              r->sinks == 4 && strcmp(r->rope_type, "yarn") == 0 && r->rope_base == 10000 &&
              r->rope_factor == 4 && !r->adapter && strcmp(r->template_name, "chatml") == 0 &&
              r->cache_used == 200 && r->cache_capacity == 256 && r->sink_share == 0.3125);
        CHECK(r->n_token_ids == 4 && r->token_ids && memcmp(r->token_ids, ids, sizeof ids) == 0);
        CHECK(!hist_reply_info_known(&m[0].info) && !hist_reply_info_known(&m[2].info));
        char line[512];
        CHECK(hist_reply_info_line(&m[1], line, sizeof line));
        CHECK_MSG(strcmp(line, "sink window 256 sinks 4, RoPE yarn base 10000 x4, template chatml, "
                               "prompt 2000.0 tok/s, decode 20.0 tok/s, cache 200/256, "
                               "sink attention 31.2%") == 0, "%s", line);
        CHECK(!hist_reply_info_line(&m[2], line, sizeof line) && line[0] == '\0');
    }
    hist_msg_list_free(m, n);
    struct hist_session s;
    CHECK(hist_session_get(db, sid, &s) == HIST_OK && strcmp(s.vocab_hash, "v1:32000:0123456789abcdef") == 0);
    hist_session_clear(&s);
    int status;
    char *json = capture_export(db, sid, HIST_FORMAT_JSON, &status);
    CHECK_MSG(strstr(json, "\"engine\": {\"cache\": \"sink\", \"window\": 256, \"sinks\": 4, "
                           "\"rope_type\": \"yarn\", \"rope_base\": 10000.000, \"rope_factor\": 4.000, "
                           "\"adapter\": null, \"template\": \"chatml\", \"tokens\": 4, "
                           "\"prompt_tok_s\": 2000.000, \"decode_tok_s\": 20.000, \"cache_used\": 200, "
                           "\"cache_capacity\": 256, \"sink_share\": 0.3125, \"n_token_ids\": 4}"), "%s", json);
    CHECK(strstr(json, "\"vocab_hash\": \"v1:32000:0123456789abcdef\""));
    CHECK(strstr(json, "\"engine\": null"));
    free(json);
    char *md = capture_export(db, sid, HIST_FORMAT_MARKDOWN, &status);
    CHECK_MSG(strstr(md, "> Engine: `sink window 256 sinks 4, RoPE yarn base 10000 x4, template chatml"), "%s", md);
    free(md);
    hist_close(db);
    free(path);
}

/* ---- files that are not ours -------------------------------------------------------- */

static void check_refused(const char *path, const char *want_in_error)
{
    size_t len0, len1;
    char *before = read_all(path, &len0);
    char err[512] = "";
    struct hist_db *db = hist_open(path, err, sizeof err);
    CHECK_MSG(db == NULL, "%s was accepted", path);
    if (db) hist_close(db);
    CHECK_MSG(strstr(err, want_in_error) != NULL, "error for %s: '%s' (want '%s')", path, err,
              want_in_error);
    CHECK_MSG(strstr(err, path) != NULL, "error does not name the file: %s", err);
    char *after = read_all(path, &len1);
    CHECK_MSG(before && after && len0 == len1 && memcmp(before, after, len0) == 0,
              "%s was modified", path);
    free(before);
    free(after);
}

static void test_foreign_files(void)
{
    /* Not SQLite at all: SQLite never even opens it. */
    char *text = tpath("notes.txt");
    const char content[] = "my notes\nnot a database\n\x01\x02\xff binary tail";
    write_all(text, content, sizeof content);
    check_refused(text, "not an SQLite database");
    CHECK(!exists_suffix(text, "-wal") && !exists_suffix(text, "-shm") &&
          !exists_suffix(text, "-journal"));
    /* A truncated SQLite header. */
    char *trunc = tpath("trunc.db");
    write_all(trunc, "SQLite fo", 9);
    check_refused(trunc, "not an SQLite database");

    /* Another program's SQLite database, rollback journal and WAL. */
    char *other = tpath("other.db");
    raw_exec(other, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"
                    "INSERT INTO notes(body) VALUES ('keep me'), ('and me');");
    check_refused(other, "another program");
    char *other_wal = tpath("other_wal.db");
    raw_exec(other_wal, "PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    check_refused(other_wal, "another program");
    /* No tables, but a user_version or application_id of someone else. */
    char *versioned = tpath("versioned.db");
    raw_exec(versioned, "PRAGMA user_version = 7;");
    check_refused(versioned, "another program");
    char *appid = tpath("appid.db");
    raw_exec(appid, "PRAGMA application_id = 305419896;");
    check_refused(appid, "another program");
    /* Ancora's tables but not its application_id (someone's look-alike). */
    char *lookalike = tpath("lookalike.db");
    raw_exec(lookalike, "CREATE TABLE sessions(id INTEGER PRIMARY KEY);");
    check_refused(lookalike, "another program");

    free(text);
    free(trunc);
    free(other);
    free(other_wal);
    free(versioned);
    free(appid);
    free(lookalike);
}

static void test_newer_version(void)
{
    char *path = tpath("newer.db");
    struct hist_db *db = open_ok(path);
    CHECK(hist_session_create(db, "from the future", NULL, NULL, NULL, NULL) == HIST_OK);
    hist_close(db);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", HIST_SCHEMA_VERSION + 1);
    raw_exec(path, sql);
    check_refused(path, "newer Ancora");
    free(path);
}

/* ---- sessions, messages, events --------------------------------------------------- */

static void test_sessions_messages(void)
{
    char *path = tpath("basic.db");
    struct hist_db *db = open_ok(path);
    int64_t s1, s2, s3, u1, a1, a2, sys;
    CHECK(hist_session_create(db, "First", "/models/a.gguf", "a", "{\"temp\":0.8}", &s1) == HIST_OK);
    CHECK(hist_session_create(db, NULL, NULL, NULL, NULL, &s2) == HIST_OK);
    CHECK(s2 == s1 + 1);
    CHECK(hist_msg_append(db, s1, HIST_ROLE_SYSTEM, "You are terse.", &sys) == HIST_OK);
    CHECK(hist_msg_append(db, s1, HIST_ROLE_USER, "Hello", &u1) == HIST_OK);
    CHECK(hist_msg_begin(db, s1, &a1) == HIST_OK);
    CHECK(hist_msg_update_text(db, a1, "Hi") == HIST_OK);
    CHECK(hist_msg_update_text(db, a1, "Hi there") == HIST_OK);
    struct hist_msg_stats st = {12, 3, 45.5, 120.25};
    CHECK(hist_msg_finish(db, a1, NULL, HIST_FINISH_STOP, &st) == HIST_OK);
    CHECK(hist_msg_append(db, s1, HIST_ROLE_ASSISTANT, "whole reply", &a2) == HIST_OK);
    CHECK(hist_msg_finish(db, a2, "whole reply, final", HIST_FINISH_LENGTH, NULL) == HIST_OK);

    struct hist_message *m;
    size_t n;
    CHECK(hist_msg_list(db, s1, &m, &n) == HIST_OK);
    CHECK_INT_EQ(n, 4);
    if (n == 4) {
        CHECK(m[0].role == HIST_ROLE_SYSTEM && m[0].finish == HIST_FINISH_NONE);
        CHECK(m[1].role == HIST_ROLE_USER && strcmp(m[1].content, "Hello") == 0);
        CHECK(m[2].role == HIST_ROLE_ASSISTANT && strcmp(m[2].content, "Hi there") == 0);
        CHECK(m[2].finish == HIST_FINISH_STOP && m[2].stats.prompt_tokens == 12 &&
              m[2].stats.completion_tokens == 3);
        CHECK_CLOSE(m[2].stats.prompt_ms, 45.5, 1e-9, 0);
        CHECK_CLOSE(m[2].stats.gen_ms, 120.25, 1e-9, 0);
        CHECK(strcmp(m[3].content, "whole reply, final") == 0 && m[3].finish == HIST_FINISH_LENGTH);
        CHECK(m[3].stats.prompt_tokens == -1 && m[3].stats.gen_ms < 0);
        CHECK(m[0].created_ms > 1600000000000LL && m[0].session_id == s1);
    }
    hist_msg_list_free(m, n);

    /* Newest activity first: s1 had messages after s2 was created. */
    struct hist_session *list;
    CHECK(hist_session_list(db, 0, &list, &n) == HIST_OK && n == 2);
    if (n == 2) {
        CHECK(list[0].id == s1 && list[0].n_messages == 4 && strcmp(list[0].model_name, "a") == 0);
        CHECK(list[1].id == s2 && list[1].n_messages == 0 && strcmp(list[1].title, "") == 0 &&
              strcmp(list[1].params_json, "{}") == 0);
    }
    hist_session_list_free(list, n);
    struct timespec pause = {0, 3 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK(hist_session_touch(db, s2) == HIST_OK);
    CHECK(hist_session_list(db, 1, &list, &n) == HIST_OK && n == 1 && list[0].id == s2);
    hist_session_list_free(list, n);

    CHECK(hist_session_set_title(db, s2, "Second") == HIST_OK);
    CHECK(hist_session_set_params(db, s2, "{\"window\":512}") == HIST_OK);
    struct hist_session s;
    CHECK(hist_session_get(db, s2, &s) == HIST_OK && strcmp(s.title, "Second") == 0 &&
          strcmp(s.params_json, "{\"window\":512}") == 0);
    hist_session_clear(&s);

    /* Parameter events. */
    int64_t e1;
    CHECK(hist_param_event_add(db, s1, u1, "window_length", "256", "512", &e1) == HIST_OK);
    CHECK(hist_param_event_add(db, s1, 0, "temp", NULL, "0.8", NULL) == HIST_OK);
    struct hist_param_event *ev;
    CHECK(hist_param_event_list(db, s1, &ev, &n) == HIST_OK && n == 2);
    if (n == 2) {
        CHECK(ev[0].id == e1 && ev[0].message_id == u1 && strcmp(ev[0].name, "window_length") == 0 &&
              strcmp(ev[0].old_value, "256") == 0 && strcmp(ev[0].new_value, "512") == 0);
        CHECK(ev[1].message_id == 0 && ev[1].old_value == NULL);
    }
    hist_param_event_list_free(ev, n);

    /* Missing rows and bad arguments. */
    CHECK(hist_msg_append(db, 9999, HIST_ROLE_USER, "x", NULL) == HIST_ERR_NOTFOUND);
    CHECK(strstr(hist_errmsg(db), "no session 9999"));
    CHECK(hist_msg_update_text(db, 9999, "x") == HIST_ERR_NOTFOUND);
    CHECK(hist_msg_update_text(db, u1, "x") == HIST_ERR_NOTFOUND); /* not an assistant message */
    CHECK(hist_msg_finish(db, a1, NULL, HIST_FINISH_NONE, NULL) == HIST_ERR_INVALID);
    CHECK(hist_session_get(db, 9999, &s) == HIST_ERR_NOTFOUND);
    CHECK(hist_session_set_title(db, 9999, "x") == HIST_ERR_NOTFOUND);
    CHECK(hist_session_delete(db, 9999) == HIST_ERR_NOTFOUND);
    CHECK(hist_param_event_add(db, 9999, 0, "x", NULL, "y", NULL) == HIST_ERR_NOTFOUND);
    CHECK(hist_msg_append(db, s1, (enum hist_role)7, "x", NULL) == HIST_ERR_INVALID);

    /* Delete cascades to messages, events and the search index. */
    struct hist_hit *h;
    CHECK(hist_search(db, "there", "", "", 0, &h, &n) == HIST_OK && n == 1);
    hist_hits_free(h, n);
    CHECK(hist_session_delete(db, s1) == HIST_OK);
    CHECK(hist_msg_list(db, s1, &m, &n) == HIST_OK && n == 0);
    hist_msg_list_free(m, n);
    CHECK(hist_param_event_list(db, s1, &ev, &n) == HIST_OK && n == 0);
    hist_param_event_list_free(ev, n);
    CHECK(hist_search(db, "there", "", "", 0, &h, &n) == HIST_OK && n == 0);
    hist_hits_free(h, n);
    CHECK_INT_EQ(raw_int(path, "SELECT count(*) FROM messages"), 0);
    CHECK_INT_EQ(raw_int(path, "SELECT count(*) FROM param_events"), 0);
    /* Ids are never reused. */
    CHECK(hist_session_delete(db, s2) == HIST_OK);
    CHECK(hist_session_create(db, "third", NULL, NULL, NULL, &s3) == HIST_OK && s3 > s2);

    struct hist_stats stats;
    CHECK(hist_get_stats(db, &stats) == HIST_OK && stats.sessions == 1 && stats.messages == 0 &&
          stats.schema_version == HIST_SCHEMA_VERSION && stats.file_bytes > 0);

    /* Batches: one transaction; rollback undoes everything in it. */
    CHECK(hist_batch_begin(db) == HIST_OK);
    CHECK(hist_batch_begin(db) == HIST_ERR_INVALID);
    for (int i = 0; i < 100; i++) CHECK(hist_msg_append(db, s3, HIST_ROLE_USER, "batched", NULL) == HIST_OK);
    CHECK(hist_msg_append(db, 424242, HIST_ROLE_USER, "fails alone", NULL) == HIST_ERR_NOTFOUND);
    CHECK(hist_batch_end(db, true) == HIST_OK);
    CHECK(hist_batch_begin(db) == HIST_OK);
    CHECK(hist_msg_append(db, s3, HIST_ROLE_USER, "rolled back", NULL) == HIST_OK);
    CHECK(hist_batch_end(db, false) == HIST_OK);
    CHECK(hist_get_stats(db, &stats) == HIST_OK && stats.messages == 100);
    hist_close(db);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
    free(ic);
    free(path);
}

/* ---- search ------------------------------------------------------------------------- */

static size_t search_n(struct hist_db *db, const char *q)
{
    struct hist_hit *h;
    size_t n = 0;
    int status = hist_search(db, q, "<", ">", 0, &h, &n);
    CHECK_MSG(status == HIST_OK, "search '%s': %s", q, hist_errmsg(db));
    hist_hits_free(h, n);
    return n;
}

static char *first_snippet(struct hist_db *db, const char *q)
{
    struct hist_hit *h;
    size_t n = 0;
    char *s = NULL;
    if (hist_search(db, q, "<", ">", 1, &h, &n) == HIST_OK && n == 1) s = strdup(h[0].snippet);
    hist_hits_free(h, n);
    return s ? s : strdup("(no hit)");
}

static void test_search(void)
{
    char *path = tpath("search.db");
    struct hist_db *db = open_ok(path);
    int64_t s1, s2, a;
    hist_session_create(db, "English", NULL, NULL, NULL, &s1);
    hist_session_create(db, "中文", NULL, NULL, NULL, &s2);
    hist_msg_append(db, s1, HIST_ROLE_USER, "How do Attention Sinks keep streaming models stable?", NULL);
    hist_msg_append(db, s1, HIST_ROLE_ASSISTANT,
                    "The first tokens collect attention mass.\nKeeping them in the cache\t"
                    "keeps perplexity flat over long texts.",
                    NULL);
    hist_msg_append(db, s1, HIST_ROLE_USER, "He said \"quote\" AND OR NOT * ^ - (x) : C++ 100%_done", NULL);
    hist_msg_append(db, s2, HIST_ROLE_USER, "我们今天讨论长上下文模型的注意力汇聚。", NULL);
    hist_msg_append(db, s2, HIST_ROLE_ASSISTANT, "注意力汇聚让模型在很长的对话中保持稳定。", NULL);
    hist_msg_append(db, s2, HIST_ROLE_USER, "bad bytes \xff\xfe here \x1b[31m escape", NULL);

    CHECK_INT_EQ(search_n(db, "attention"), 2);
    CHECK_INT_EQ(search_n(db, "ATTENTION sinks"), 1); /* case-insensitive, every word */
    CHECK_INT_EQ(search_n(db, "perplexity"), 1);
    CHECK_INT_EQ(search_n(db, "tent"), 2); /* substrings */
    CHECK_INT_EQ(search_n(db, "nonexistentword"), 0);
    CHECK_INT_EQ(search_n(db, "attention nonexistentword"), 0);
    /* Chinese: 3+ characters through the trigram index ... */
    CHECK_INT_EQ(search_n(db, "注意力"), 2);
    CHECK_INT_EQ(search_n(db, "长上下文"), 1);
    CHECK_INT_EQ(search_n(db, "注意力汇聚让模型"), 1);
    CHECK_INT_EQ(search_n(db, "上下文　汇聚"), 1); /* ideographic space between words */
    /* ... and 1-2 characters, too short for trigrams, by scanning. */
    CHECK_INT_EQ(search_n(db, "模型"), 2);
    CHECK_INT_EQ(search_n(db, "稳"), 1);
    CHECK_INT_EQ(search_n(db, "模型 稳"), 1);
    CHECK_INT_EQ(search_n(db, "注意力 稳"), 1); /* index and scan together */
    CHECK_INT_EQ(search_n(db, "is"), 0);
    CHECK_INT_EQ(search_n(db, "do"), 2); /* "How do", "100%_done" */
    /* Query syntax of FTS5 and LIKE is taken literally. */
    CHECK_INT_EQ(search_n(db, "\"quote\""), 1);
    CHECK_INT_EQ(search_n(db, "AND"), 1);
    CHECK_INT_EQ(search_n(db, "C++"), 1);
    CHECK_INT_EQ(search_n(db, "(x)"), 1);
    CHECK_INT_EQ(search_n(db, "%_"), 1);
    CHECK_INT_EQ(search_n(db, "_"), 1);
    CHECK_INT_EQ(search_n(db, "%"), 1);
    CHECK_INT_EQ(search_n(db, "*"), 1);
    CHECK_INT_EQ(search_n(db, "\"unbalanced"), 0);
    /* Empty queries are refused. */
    struct hist_hit *h;
    size_t n;
    CHECK(hist_search(db, "   ", "<", ">", 0, &h, &n) == HIST_ERR_INVALID);

    /* Snippets: one line, the matches marked, context around them. */
    char *sn = first_snippet(db, "perplexity");
    CHECK_MSG(strstr(sn, "<perplexity>") && !strchr(sn, '\n') && !strchr(sn, '\t'), "%s", sn);
    free(sn);
    sn = first_snippet(db, "cache keeping");
    CHECK_MSG(strstr(sn, "<Keeping>") && strstr(sn, "<cache>"), "%s", sn);
    free(sn);
    sn = first_snippet(db, "汇聚");
    CHECK_MSG(strstr(sn, "<汇聚>"), "%s", sn);
    free(sn);
    sn = first_snippet(db, "bytes");
    CHECK_MSG(is_valid_utf8((const unsigned char *)sn, strlen(sn)) && !strchr(sn, '\x1b') &&
                  strstr(sn, "\xEF\xBF\xBD"),
              "%s", sn);
    free(sn);
    /* A long message: the snippet is cut around the match, with ellipses. */
    char longtext[4000] = "";
    for (int i = 0; i < 60; i++) strcat(longtext, "filler words ");
    strcat(longtext, "the needle is here ");
    for (int i = 0; i < 60; i++) strcat(longtext, "more filler ");
    hist_msg_append(db, s1, HIST_ROLE_USER, longtext, NULL);
    sn = first_snippet(db, "needle");
    CHECK_MSG(strstr(sn, "<needle>") && strncmp(sn, "\xE2\x80\xA6", 3) == 0 &&
                  strlen(sn) < 200 && strcmp(sn + strlen(sn) - 3, "\xE2\x80\xA6") == 0,
              "%s", sn);
    free(sn);

    /* The index follows streamed updates. */
    CHECK(hist_msg_begin(db, s1, &a) == HIST_OK);
    CHECK(hist_msg_update_text(db, a, "partial flamingo") == HIST_OK);
    CHECK_INT_EQ(search_n(db, "flamingo"), 1);
    CHECK(hist_msg_finish(db, a, "final pelican", HIST_FINISH_STOP, NULL) == HIST_OK);
    CHECK_INT_EQ(search_n(db, "flamingo"), 0);
    CHECK_INT_EQ(search_n(db, "pelican"), 1);

    /* Limit and order (newest first), session ids. */
    for (int i = 0; i < 10; i++) hist_msg_append(db, s1, HIST_ROLE_USER, "repeated zebra", NULL);
    CHECK(hist_search(db, "zebra", "", "", 3, &h, &n) == HIST_OK && n == 3);
    if (n == 3) CHECK(h[0].message_id > h[1].message_id && h[0].session_id == s1 &&
                      strcmp(h[0].session_title, "English") == 0 && h[0].role == HIST_ROLE_USER);
    hist_hits_free(h, n);
    hist_close(db);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
    free(ic);
    free(path);
}

/* ---- text helpers and export ------------------------------------------------------------ */

static void test_text_helpers(void)
{
    char *c = hist_text_clean("  a\tb\n\nc \x1b[0m \xff\xc3 z  ", 0);
    CHECK_MSG(strcmp(c, "a b c \xEF\xBF\xBD[0m \xEF\xBF\xBD\xEF\xBF\xBD z") == 0, "'%s'", c);
    free(c);
    c = hist_text_clean("l1\r\nl2\rl3\n\tx\x07", HIST_CLEAN_MULTILINE);
    CHECK_MSG(strcmp(c, "l1\nl2\nl3\n\tx\xEF\xBF\xBD") == 0, "'%s'", c);
    free(c);
    /* Overlong, surrogate, beyond U+10FFFF, C1 control; valid 4-byte kept. */
    c = hist_text_clean("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xc2\x85|\xf0\x9f\x98\x80", HIST_CLEAN_MULTILINE);
    CHECK(is_valid_utf8((const unsigned char *)c, strlen(c)));
    CHECK_MSG(strstr(c, "\xf0\x9f\x98\x80") && !strstr(c, "\xed\xa0") && !strstr(c, "\xc2\x85"), "'%s'", c);
    free(c);
    char t[64];
    CHECK(strcmp(hist_format_time(0, true, t, sizeof t), "1970-01-01T00:00:00.000Z") == 0);
    CHECK(strcmp(hist_format_time(1700000000123LL, true, t, sizeof t), "2023-11-14T22:13:20.123Z") == 0);
    CHECK(strcmp(hist_format_time(-1, true, t, sizeof t), "1969-12-31T23:59:59.999Z") == 0);
    CHECK(hist_finish_from_name("interrupted") == HIST_FINISH_INTERRUPTED);
    CHECK(hist_finish_from_name("bogus") == -1 && hist_finish_from_name(NULL) == HIST_FINISH_NONE);
    CHECK(strcmp(hist_role_name(HIST_ROLE_ASSISTANT), "assistant") == 0);

    /* Titles: first non-blank line, folded, cut by columns at a character. */
    static const char *const titles[][3] = {
        {"  \n\t  Hello   there\tfriend \nsecond line", "40", "Hello there friend"},
        {"abcdefghij", "10", "abcdefghij"},
        {"abcdefghijk", "10", "abcdefghi\xE2\x80\xA6"},
        {"one two three", "8", "one two\xE2\x80\xA6"},
        {"one two three", "12", "one two\xE2\x80\xA6"},
        {"a bcdefghijkl", "10", "a bcdefgh\xE2\x80\xA6"},
        {"一二三四五六", "12", "一二三四五六"},
        {"一二三四五六七", "12", "一二三四五\xE2\x80\xA6"},
        {"一二三四五六七", "11", "一二三四五\xE2\x80\xA6"},
        {"ab一二三四五六七", "10", "ab一二三\xE2\x80\xA6"},
        {"x\x1b[31m\xff", "20", "x\xEF\xBF\xBD[31m\xEF\xBF\xBD"},
        {" \n \n", "20", ""},
    };
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++) {
        char *tt = hist_title_from_text(titles[i][0], atoi(titles[i][1]));
        CHECK_MSG(tt && strcmp(tt, titles[i][2]) == 0, "title %zu: '%s'", i, tt ? tt : "(null)");
        CHECK(tt && is_valid_utf8((const unsigned char *)tt, strlen(tt)));
        free(tt);
    }
}

/* Content that breaks naive exporters (also used by --fixture). */
static const char nasty[] =
    "quote \" backslash \\ slash / tab\t cr\r nl\n ctl\x01\x1f del\x7f esc\x1b[31mred "
    "line-sep\xe2\x80\xa8 para\xe2\x80\xa9 nul-free "
    "chinese 长上下文 emoji \xf0\x9f\x98\x80 "
    "invalid \xff\xfe \xc3 overlong \xc0\xaf surrogate \xed\xa0\x80 end";
static const char nasty_md[] =
    "Backticks ` `` ``` ```` in text.\n"
    "```python\nprint('fence inside')\n```\n"
    "<script>alert('x')</script> <b>bold?</b> &amp; # not a heading\n"
    "    indented\n---\n> quote";

static void test_export(void)
{
    char *path = tpath("export.db");
    struct hist_db *db = open_ok(path);
    int64_t sid, a;
    hist_session_create(db, "# Title *with* <b>markup</b> `x`", "/m/a `b`.gguf", "model<1>",
                        "{\"temp\": 0.5, \"stop\": [\"\\n\"], \"x\": {\"y\": null}}", &sid);
    hist_msg_append(db, sid, HIST_ROLE_USER, nasty, NULL);
    hist_msg_begin(db, sid, &a);
    struct hist_msg_stats st = {10, 20, 1.5, 2000};
    hist_msg_finish(db, a, nasty_md, HIST_FINISH_CANCELLED, &st);
    hist_param_event_add(db, sid, a, "window", "256", "51`2", NULL);

    int status;
    char *json = capture_export(db, sid, HIST_FORMAT_JSON, &status);
    CHECK(status == HIST_OK);
    size_t jl = strlen(json);
    CHECK(is_valid_utf8((const unsigned char *)json, jl));
    for (size_t i = 0; i < jl; i++)
        CHECK_MSG((unsigned char)json[i] >= 0x20 || json[i] == '\n', "raw control byte %d in JSON",
                  json[i]);
    CHECK(strstr(json, "\"quote \\\" backslash \\\\ slash / tab\\t cr\\r nl\\n ctl\\u0001\\u001f del\\u007f esc\\u001b[31mred "));
    CHECK(strstr(json, "line-sep\\u2028 para\\u2029"));
    CHECK(strstr(json, "长上下文 emoji \xf0\x9f\x98\x80"));
    CHECK(strstr(json, "invalid \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD overlong \xEF\xBF\xBD\xEF\xBF\xBD"));
    CHECK(strstr(json, "\"params\": {\"temp\": 0.5, \"stop\": [\"\\n\"], \"x\": {\"y\": null}}"));
    CHECK(strstr(json, "\"finish_reason\": \"cancelled\""));
    CHECK(strstr(json, "\"gen_ms\": 2000.000"));
    free(json);

    /* Parameters that are not JSON are exported as a string. */
    hist_session_set_params(db, sid, "{\"broken\": tru");
    json = capture_export(db, sid, HIST_FORMAT_JSON, &status);
    CHECK(strstr(json, "\"params\": \"{\\\"broken\\\": tru\""));
    free(json);
    hist_session_set_params(db, sid, "{\"bad utf8\": \"\xff\"}");
    json = capture_export(db, sid, HIST_FORMAT_JSON, &status);
    CHECK(is_valid_utf8((const unsigned char *)json, strlen(json)));
    CHECK(strstr(json, "\"params\": \"{\\\"bad utf8\\\""));
    free(json);

    char *md = capture_export(db, sid, HIST_FORMAT_MARKDOWN, &status);
    CHECK(status == HIST_OK);
    CHECK(is_valid_utf8((const unsigned char *)md, strlen(md)));
    CHECK(!strchr(md, '\x1b') && !strchr(md, '\r'));
    CHECK_MSG(strstr(md, "# \\# Title \\*with\\* \\<b\\>markup\\<\\/b\\> \\`x\\`\n"), "%s", md);
    CHECK(strstr(md, "``/m/a `b`.gguf``"));
    /* The message with a 4-backtick run gets a 5-backtick fence that
     * nothing inside can close. */
    CHECK(strstr(md, "\n`````text\nBackticks ` `` ``` ```` in text.\n"));
    CHECK(strstr(md, "> quote\n`````\n"));
    CHECK(strstr(md, "\n```text\nquote \" backslash"));
    CHECK(strstr(md, "cancelled"));
    CHECK(strstr(md, "20 tokens, 10.0 tokens/s"));
    CHECK(strstr(md, "Parameter change: `window` `256` \xE2\x86\x92 ``51`2``"));
    free(md);

    CHECK(hist_export(db, 9999, HIST_FORMAT_JSON, stdout) == HIST_ERR_NOTFOUND);
    hist_close(db);
    free(path);
}

/* ---- crash recovery, concurrency, locks ------------------------------------------------ */

static void test_crash_in_process(void)
{
    char *path = tpath("crash.db");
    struct hist_db *db = open_ok(path);
    int64_t sid, mine;
    hist_session_create(db, "crash", NULL, NULL, NULL, &sid);
    hist_msg_append(db, sid, HIST_ROLE_USER, "go", NULL);
    /* A reply this process is still streaming is not touched by a second
     * open (another window, `ancora history list` meanwhile). */
    CHECK(hist_msg_begin(db, sid, &mine) == HIST_OK);
    CHECK(hist_msg_update_text(db, mine, "still going") == HIST_OK);
    struct hist_db *other = open_ok(path);
    hist_close(other);
    CHECK(raw_int(path, "SELECT finish_reason IS NULL FROM messages WHERE role='assistant'") == 1);

    /* A child killed mid-reply leaves its text; the next open marks it. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct hist_db *c = open_ok(path);
        int64_t id;
        if (hist_msg_begin(c, sid, &id) != HIST_OK) _exit(3);
        hist_msg_update_text(c, id, "partial reply of the child");
        raise(SIGKILL);
        _exit(4);
    }
    int wst;
    waitpid(pid, &wst, 0);
    CHECK(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    hist_close(db);
    db = open_ok(path);
    struct hist_message *m;
    size_t n;
    CHECK(hist_msg_list(db, sid, &m, &n) == HIST_OK && n == 3);
    if (n == 3) {
        CHECK(m[1].finish == HIST_FINISH_INTERRUPTED || m[1].finish == HIST_FINISH_NONE);
        CHECK(m[2].finish == HIST_FINISH_INTERRUPTED &&
              strcmp(m[2].content, "partial reply of the child") == 0);
    }
    hist_msg_list_free(m, n);
    hist_close(db);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
    free(ic);
    free(path);
}

/* Each child appends N messages (every 10th a streamed reply) to its own
 * session, all at once with the other child. */
static int concurrent_child(const char *path, int64_t sid, int n, int go_fd)
{
    char c;
    if (read(go_fd, &c, 1) != 1) return 2;
    char err[512];
    struct hist_db *db = hist_open(path, err, sizeof err);
    if (!db) {
        fprintf(stderr, "child: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int status;
        char text[64];
        snprintf(text, sizeof text, "message %d of session %lld", i, (long long)sid);
        if (i % 10 == 9) {
            int64_t id;
            status = hist_msg_begin(db, sid, &id);
            if (status == HIST_OK) status = hist_msg_update_text(db, id, "half");
            if (status == HIST_OK) status = hist_msg_finish(db, id, text, HIST_FINISH_STOP, NULL);
        } else {
            status = hist_msg_append(db, sid, HIST_ROLE_USER, text, NULL);
        }
        /* A pause between messages, as a front-end has between replies:
         * without one, a writer that never lets go of the lock would make
         * the other wait until it is done (they would not interleave). */
        struct timespec pause = {0, 1000 * 1000};
        nanosleep(&pause, NULL);
        if (status != HIST_OK) {
            fprintf(stderr, "child %lld, message %d: %s\n", (long long)sid, i, hist_errmsg(db));
            hist_close(db);
            return 1;
        }
    }
    hist_close(db);
    return 0;
}

static void test_concurrent_writers(void)
{
    enum { PER_CHILD = 500 };
    char *path = tpath("concurrent.db");
    struct hist_db *db = open_ok(path);
    int64_t sid[2];
    hist_session_create(db, "child A", NULL, NULL, NULL, &sid[0]);
    hist_session_create(db, "child B", NULL, NULL, NULL, &sid[1]);
    hist_close(db);
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pids[2];
    fflush(NULL);
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            close(go[1]);
            _exit(concurrent_child(path, sid[k], PER_CHILD, go[0]));
        }
    }
    close(go[0]);
    CHECK(write(go[1], "gg", 2) == 2); /* start both at once */
    close(go[1]);
    for (int k = 0; k < 2; k++) {
        int wst;
        waitpid(pids[k], &wst, 0);
        CHECK_MSG(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "writer %d failed", k);
    }
    db = open_ok(path);
    for (int k = 0; k < 2; k++) {
        struct hist_session s;
        CHECK(hist_session_get(db, sid[k], &s) == HIST_OK);
        CHECK_INT_EQ(s.n_messages, PER_CHILD);
        hist_session_clear(&s);
    }
    struct hist_stats st;
    CHECK(hist_get_stats(db, &st) == HIST_OK && st.messages == 2 * PER_CHILD);
    CHECK_INT_EQ(search_n(db, "half"), 0);
    CHECK_INT_EQ(search_n(db, "message 499 of"), 2);
    hist_close(db);
    /* Did the two really write at the same time? (Their ids interleave.) */
    char q[160];
    snprintf(q, sizeof q, "SELECT (SELECT max(id) FROM messages WHERE session_id = %lld) > "
             "(SELECT min(id) FROM messages WHERE session_id = %lld)", (long long)sid[0], (long long)sid[1]);
    long long a_after_b = raw_int(path, q);
    snprintf(q, sizeof q, "SELECT (SELECT max(id) FROM messages WHERE session_id = %lld) > "
             "(SELECT min(id) FROM messages WHERE session_id = %lld)", (long long)sid[1], (long long)sid[0]);
    CHECK_MSG(a_after_b && raw_int(path, q), "the two writers did not interleave");
    CHECK_INT_EQ(raw_int(path, "SELECT count(*) FROM messages WHERE finish_reason IS NULL "
                               "AND role = 'assistant'"), 0);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
    free(ic);
    free(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_busy(void)
{
    char *path = tpath("busy.db");
    struct hist_db *db = open_ok(path);
    int64_t sid;
    hist_session_create(db, "busy", NULL, NULL, NULL, &sid);

    /* Another process holds the write lock for a second: we wait, then succeed. */
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sqlite3 *raw;
        sqlite3_open(path, &raw);
        int rc = sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (write(ready[1], "x", 1) != 1 || rc != SQLITE_OK) _exit(1);
        sleep(1);
        sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(raw);
        _exit(0);
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    double t0 = now_s();
    CHECK(hist_msg_append(db, sid, HIST_ROLE_USER, "after waiting", NULL) == HIST_OK);
    CHECK(now_s() - t0 > 0.5);
    int wst;
    waitpid(pid, &wst, 0);
    close(ready[0]);
    close(ready[1]);

    /* A lock held past the busy timeout: a clear error, nothing lost. */
    sqlite3 *raw;
    sqlite3_open(path, &raw);
    CHECK(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    t0 = now_s();
    CHECK(hist_msg_append(db, sid, HIST_ROLE_USER, "never saved", NULL) == HIST_ERR_BUSY);
    double waited = now_s() - t0;
    CHECK_MSG(waited > 4.0 && waited < 15.0, "waited %.1f s", waited);
    CHECK_MSG(strstr(hist_errmsg(db), "locked by another program"), "%s", hist_errmsg(db));
    sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(raw);
    CHECK(hist_msg_append(db, sid, HIST_ROLE_USER, "later", NULL) == HIST_OK);
    struct hist_session s;
    CHECK(hist_session_get(db, sid, &s) == HIST_OK && s.n_messages == 2);
    hist_session_clear(&s);
    hist_close(db);
    free(path);
}

/* ---- read-only and full disks -------------------------------------------------------------- */

/* Run FN in a child that cannot write DIR's files: as root, drop to
 * "nobody" (root ignores permissions); otherwise as ourselves. */
static bool drop_privileges(const char *dir, const char *file)
{
    if (geteuid() != 0) return true;
    struct passwd *pw = getpwnam("nobody");
    if (!pw) return false;
    if (chown(dir, pw->pw_uid, pw->pw_gid) != 0 || chown(file, pw->pw_uid, pw->pw_gid) != 0) return false;
    return setgid(pw->pw_gid) == 0 && setuid(pw->pw_uid) == 0 && geteuid() != 0;
}

/* Child side: reads work, every write fails with READONLY. Exit 0 = pass. */
static int readonly_child(const char *path)
{
    char err[512];
    struct hist_db *db = hist_open(path, err, sizeof err);
    if (!db) {
        fprintf(stderr, "read-only open failed: %s\n", err);
        return 1;
    }
    int bad = 0;
    if (!hist_readonly(db)) bad |= 2;
    struct hist_session *list;
    size_t n;
    if (hist_session_list(db, 0, &list, &n) != HIST_OK || n != 1) bad |= 4;
    else hist_session_list_free(list, n);
    struct hist_message *m;
    if (hist_msg_list(db, 1, &m, &n) != HIST_OK || n != 2) bad |= 8;
    else hist_msg_list_free(m, n);
    struct hist_hit *h;
    if (hist_search(db, "precious", "", "", 0, &h, &n) != HIST_OK || n != 1) bad |= 16;
    else hist_hits_free(h, n);
    if (hist_msg_append(db, 1, HIST_ROLE_USER, "x", NULL) != HIST_ERR_READONLY) bad |= 32;
    if (!strstr(hist_errmsg(db), "read-only")) bad |= 64;
    if (hist_session_create(db, "x", NULL, NULL, NULL, NULL) != HIST_ERR_READONLY) bad |= 128;
    if (hist_session_delete(db, 1) != HIST_ERR_READONLY) bad |= 256;
    hist_close(db);
    if (bad) fprintf(stderr, "read-only child: failures 0x%x\n", bad);
    return bad ? 1 : 0;
}

static void make_precious(const char *path)
{
    struct hist_db *db = open_ok(path);
    int64_t sid, a;
    hist_session_create(db, "precious", NULL, NULL, NULL, &sid);
    hist_msg_append(db, sid, HIST_ROLE_USER, "precious question", NULL);
    hist_msg_begin(db, sid, &a);
    hist_msg_finish(db, a, "answer", HIST_FINISH_STOP, NULL);
    hist_close(db); /* the last close checkpoints and removes -wal and -shm */
}

static void test_readonly(void)
{
    /* (1) write-protected file, writable folder; (2) read-only folder too
     * (read-only media: opened immutable). */
    for (int folder_ro = 0; folder_ro <= 1; folder_ro++) {
        char name[64];
        snprintf(name, sizeof name, "ro%d", folder_ro);
        char *dir = tpath(name);
        mkdir(dir, 0755);
        size_t dn = strlen(dir) + 16;
        char *path = malloc(dn);
        snprintf(path, dn, "%s/h.db", dir);
        make_precious(path);
        CHECK(!exists_suffix(path, "-wal"));
        size_t len0;
        char *before = read_all(path, &len0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            if (!drop_privileges(dir, path)) _exit(77);
            chmod(path, 0444);
            if (folder_ro) chmod(dir, 0555);
            _exit(readonly_child(path));
        }
        int wst;
        waitpid(pid, &wst, 0);
        if (WIFEXITED(wst) && WEXITSTATUS(wst) == 77) {
            fprintf(stderr, "note: read-only test %d skipped (cannot drop root privileges)\n", folder_ro);
        } else {
            CHECK_MSG(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "read-only case %d failed", folder_ro);
        }
        chmod(dir, 0755);
        chmod(path, 0644);
        size_t len1;
        char *after = read_all(path, &len1);
        CHECK_MSG(before && after && len0 == len1 && memcmp(before, after, len0) == 0,
                  "read-only database changed");
        free(before);
        free(after);
        char *ic = integrity(path);
        CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
        free(ic);
        free(path);
        free(dir);
    }
}

static void test_full_disk(void)
{
    char *path = tpath("full.db");
    make_precious(path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct hist_db *db = open_ok(path);
        /* The file size limit stands in for a full disk: writes past it fail. */
        struct stat st;
        stat(path, &st);
        struct rlimit rl = {(rlim_t)st.st_size + 65536, (rlim_t)st.st_size + 65536};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(77);
        size_t big = 4u << 20;
        char *text = malloc(big + 1);
        for (size_t i = 0; i < big; i++) text[i] = (char)('a' + (i * 7919) % 26);
        text[big] = '\0';
        int status = hist_msg_append(db, 1, HIST_ROLE_USER, text, NULL);
        int bad = 0;
        if (status != HIST_ERR_FULL) bad |= 1;
        if (!strstr(hist_errmsg(db), "disk is full")) bad |= 2;
        struct hist_message *m;
        size_t n;
        if (hist_msg_list(db, 1, &m, &n) != HIST_OK || n != 2) bad |= 4; /* reads still work */
        else hist_msg_list_free(m, n);
        if (bad) fprintf(stderr, "full-disk child: status %d (%s), failures 0x%x\n", status,
                         hist_errmsg(db), bad);
        free(text);
        hist_close(db);
        _exit(bad ? 1 : 0);
    }
    int wst;
    waitpid(pid, &wst, 0);
    CHECK_MSG(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "full-disk child failed");
    struct hist_db *db = open_ok(path);
    struct hist_message *m;
    size_t n;
    CHECK(hist_msg_list(db, 1, &m, &n) == HIST_OK && n == 2);
    if (n == 2) CHECK(strcmp(m[0].content, "precious question") == 0 && strcmp(m[1].content, "answer") == 0);
    hist_msg_list_free(m, n);
    CHECK(hist_msg_append(db, 1, HIST_ROLE_USER, "space again", NULL) == HIST_OK);
    hist_close(db);
    char *ic = integrity(path);
    CHECK_MSG(strcmp(ic, "ok") == 0, "%s", ic);
    free(ic);
    free(path);
}

/* ---- helper modes --------------------------------------------------------------------------- */

static int mode_stream_writer(const char *path)
{
    struct hist_db *db = open_ok(path);
    int64_t sid, id;
    if (hist_session_create(db, "crash test", "/models/x.gguf", "x", NULL, &sid) != HIST_OK ||
        hist_msg_append(db, sid, HIST_ROLE_USER, "tell me a long story", NULL) != HIST_OK ||
        hist_msg_begin(db, sid, &id) != HIST_OK) {
        fprintf(stderr, "stream writer: %s\n", hist_errmsg(db));
        return 1;
    }
    printf("%lld %lld\n", (long long)sid, (long long)id);
    fflush(stdout);
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    text[0] = '\0';
    for (int i = 0;; i++) {
        if (len + 64 > cap) len = 0; /* never reached in a test */
        len += (size_t)snprintf(text + len, cap - len, " chunk-%04d", i);
        if (hist_msg_update_text(db, id, text) != HIST_OK)
            fprintf(stderr, "stream writer: %s\n", hist_errmsg(db));
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Report the latest assistant message: finish=..., length=..., prefix=...,
 * integrity=... (opening with the real code, which marks dead replies). */
static int mode_probe(const char *path)
{
    struct hist_db *db = open_ok(path);
    struct hist_session *list;
    size_t n;
    if (hist_session_list(db, 1, &list, &n) != HIST_OK || n != 1) {
        printf("no session\n");
        return 1;
    }
    struct hist_message *m;
    size_t nm;
    hist_msg_list(db, list[0].id, &m, &nm);
    const struct hist_message *last = NULL;
    for (size_t i = 0; i < nm; i++)
        if (m[i].role == HIST_ROLE_ASSISTANT) last = &m[i];
    const char *fin = last ? hist_finish_name(last->finish) : NULL;
    printf("finish=%s\nlength=%zu\nprefix=%s\n", last ? (fin ? fin : "streaming") : "none",
           last ? strlen(last->content) : 0,
           last && strncmp(last->content, " chunk-0000 chunk-0001", 22) == 0 ? "ok" : "bad");
    hist_msg_list_free(m, nm);
    hist_session_list_free(list, n);
    hist_close(db);
    char *ic = integrity(path);
    printf("integrity=%s\n", ic);
    free(ic);
    return 0;
}

/* The token ids the figures writer gives reply MSG_ID. */
#define FIG_IDS 50000
static int32_t fig_id(int64_t msg_id, int k) { return (int32_t)((k * 7 + msg_id) % 1000); }

static int mode_figures_writer(const char *path)
{
    struct hist_db *db = open_ok(path);
    int64_t sid;
    static int32_t ids[FIG_IDS];
    if (hist_session_create(db, "figures crash test", "/models/x.gguf", "x", NULL, &sid) != HIST_OK ||
        hist_msg_append(db, sid, HIST_ROLE_USER, "go", NULL) != HIST_OK) {
        fprintf(stderr, "figures writer: %s\n", hist_errmsg(db));
        return 1;
    }
    printf("%lld\n", (long long)sid);
    fflush(stdout);
    for (;;) {
        int64_t id;
        if (hist_msg_begin(db, sid, &id) != HIST_OK || hist_msg_update_text(db, id, "partial") != HIST_OK)
            fprintf(stderr, "figures writer: %s\n", hist_errmsg(db));
        for (int k = 0; k < FIG_IDS; k++) ids[k] = fig_id(id, k);
        struct hist_reply_info ri;
        hist_reply_info_init(&ri);
        ri.cache_policy = "sink";
        ri.window = 256;
        ri.sinks = 4;
        ri.template_name = "chatml";
        ri.sink_share = 0.5;
        ri.token_ids = ids;
        ri.n_token_ids = FIG_IDS;
        struct hist_msg_stats st = {10, FIG_IDS, 1, 1};
        if (hist_msg_finish_info(db, id, "the whole reply", HIST_FINISH_STOP, &st, &ri) != HIST_OK)
            fprintf(stderr, "figures writer: %s\n", hist_errmsg(db));
    }
}

/* After a kill -9 of the figures writer: every finished reply has all its
 * figures and all its ids, every interrupted one none of them. */
static int mode_probe_figures(const char *path)
{
    struct hist_db *db = open_ok(path);
    struct hist_message *m;
    size_t nm, finished = 0, interrupted = 0, bad = 0;
    if (hist_msg_list(db, 1, &m, &nm) != HIST_OK) {
        printf("no session\n");
        return 1;
    }
    for (size_t i = 0; i < nm; i++) {
        const struct hist_message *x = &m[i];
        if (x->role != HIST_ROLE_ASSISTANT) continue;
        if (x->finish == HIST_FINISH_STOP) {
            finished++;
            bool ok = x->info.cache_policy && strcmp(x->info.cache_policy, "sink") == 0 &&
                      x->info.sink_share == 0.5 && strcmp(x->content, "the whole reply") == 0 &&
                      x->info.n_token_ids == FIG_IDS && x->stats.completion_tokens == FIG_IDS;
            for (int k = 0; ok && k < FIG_IDS; k++) ok = x->info.token_ids[k] == fig_id(x->id, k);
            bad += !ok;
        } else {
            interrupted++;
            bool text_ok = strcmp(x->content, "partial") == 0 || x->content[0] == '\0';
            bad += x->finish != HIST_FINISH_INTERRUPTED || hist_reply_info_known(&x->info) ||
                   x->info.token_ids || !text_ok;
        }
    }
    hist_msg_list_free(m, nm);
    hist_close(db);
    char *ic = integrity(path);
    printf("finished=%zu\ninterrupted=%zu\nbad=%zu\nintegrity=%s\n", finished, interrupted, bad, ic);
    free(ic);
    return 0;
}

/* Sessions for the command-line test: ids 1, 2, 3; 3 is the newest. */
static int mode_fixture_models(const char *path)
{
    struct hist_db *db = open_ok(path);
    int64_t s;
    int bad = 0;
    bad |= hist_session_create(db, "Short", "/m/smol.gguf", "Smollm2 135M 8k Lc100K Mix1 Ep2", NULL, &s);
    bad |= hist_session_create(db, "Wide", "/m/qwen.gguf", "通义千问 小模型", NULL, &s);
    bad |= hist_session_create(db, "Long", "/m/long.gguf",
                               "An Extremely Long Model Name Given By Its Makers Q4 K M", NULL, &s);
    if (bad) fprintf(stderr, "fixture: %s\n", hist_errmsg(db));
    hist_close(db);
    return bad ? 1 : 0;
}

static int mode_fixture(const char *path)
{
    struct hist_db *db = open_ok(path);
    int64_t s, a;
    struct hist_msg_stats st = {7, 9, 12.5, 300};
    int bad = 0;
    bad |= hist_session_create(db, "Greetings", "/models/stories260K.gguf", "stories260K",
                               "{\"temp\": 0.8, \"window_length\": 256}", &s);
    bad |= hist_msg_append(db, s, HIST_ROLE_USER, "Hello there, tell me about dragons", NULL);
    bad |= hist_msg_begin(db, s, &a);
    bad |= hist_msg_finish(db, a, "Dragons guard treasure in old stories.", HIST_FINISH_STOP, &st);
    bad |= hist_param_event_add(db, s, a, "temp", "0.8", "0.5", NULL);
    bad |= hist_msg_append(db, s, HIST_ROLE_USER, "And knights?", NULL);
    bad |= hist_msg_begin(db, s, &a);
    bad |= hist_msg_finish(db, a, "Knights ride to the dragon", HIST_FINISH_LENGTH, &st);

    bad |= hist_session_create(db, "长上下文测试", "/models/qwen.gguf", "qwen", NULL, &s);
    bad |= hist_msg_append(db, s, HIST_ROLE_USER, "我们今天讨论长上下文模型的注意力汇聚。", NULL);
    bad |= hist_msg_append(db, s, HIST_ROLE_ASSISTANT, "注意力汇聚让模型保持稳定。", NULL);

    bad |= hist_session_create(db, "<b>Nasty</b> \x1b[31m `title`", "", "", "{not json", &s);
    bad |= hist_msg_append(db, s, HIST_ROLE_SYSTEM, "You are a test.", NULL);
    bad |= hist_msg_append(db, s, HIST_ROLE_USER, nasty, NULL);
    bad |= hist_msg_append(db, s, HIST_ROLE_ASSISTANT, nasty_md, NULL);
    if (bad) fprintf(stderr, "fixture: %s\n", hist_errmsg(db));
    hist_close(db);
    return bad ? 1 : 0;
}

/* A deterministic random text of about WORDS words, English and Chinese. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void random_text(char *buf, size_t cap, int words)
{
    static const char *const vocab[] = {
        "the", "model", "attention", "cache", "window", "token", "sink", "context", "long",
        "story", "dragon", "castle", "river", "because", "perplexity", "rope", "scaling",
        "position", "stream", "memory", "layer", "quickly", "answer", "question", "about",
        "注意力", "模型", "上下文", "长度", "稳定", "我们", "讨论", "缓存", "窗口", "位置"};
    size_t n = sizeof vocab / sizeof vocab[0], len = 0;
    buf[0] = '\0';
    for (int i = 0; i < words && len + 16 < cap; i++) {
        const char *w = vocab[rng() % n];
        if (rng() % 5000 == 0) w = "zanzibar"; /* a rare word for the benchmark */
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", w);
    }
}

static int mode_populate(const char *path, long sessions, long per_session)
{
    struct hist_db *db = open_ok(path);
    char *text = malloc(1 << 16);
    for (long s = 0; s < sessions; s++) {
        if (s % 50 == 0 && hist_batch_begin(db) != HIST_OK) goto fail;
        int64_t sid;
        char title[64];
        snprintf(title, sizeof title, "Benchmark session %ld", s + 1);
        if (hist_session_create(db, title, "/models/bench.gguf", "bench", "{\"temp\": 0.7}", &sid) != HIST_OK)
            goto fail;
        for (long m = 0; m < per_session; m++) {
            bool user = m % 2 == 0;
            int words = user ? 12 + (int)(rng() % 30) : 40 + (int)(rng() % 160);
            random_text(text, 1 << 16, words);
            int64_t mid;
            if (hist_msg_append(db, sid, user ? HIST_ROLE_USER : HIST_ROLE_ASSISTANT, text, &mid) != HIST_OK)
                goto fail;
            /* a reply as the chat stores it: figures and its token ids */
            int32_t ids[400];
            int n_ids = words * 2 < 400 ? words * 2 : 400;
            /* not from rng(): the text stays the one earlier versions wrote */
            for (int k = 0; k < n_ids; k++) ids[k] = (int32_t)((mid * 7919 + k * 104729) % 32000);
            struct hist_msg_stats st = {200 + m * 150, n_ids, 80.0, 40.0 * n_ids};
            struct hist_reply_info ri;
            hist_reply_info_init(&ri);
            ri.cache_policy = "sink";
            ri.window = 2048;
            ri.sinks = 4;
            ri.rope_type = "none";
            ri.rope_base = 10000;
            ri.rope_factor = 1;
            ri.template_name = "chatml";
            ri.cache_used = 2048;
            ri.cache_capacity = 2048;
            ri.sink_share = 0.25;
            ri.token_ids = ids;
            ri.n_token_ids = (size_t)n_ids;
            if (!user && hist_msg_finish_info(db, mid, NULL, HIST_FINISH_STOP, &st, &ri) != HIST_OK)
                goto fail;
        }
        if ((s % 50 == 49 || s == sessions - 1) && hist_batch_end(db, true) != HIST_OK) goto fail;
    }
    free(text);
    hist_close(db);
    return 0;
fail:
    fprintf(stderr, "populate: %s\n", hist_errmsg(db));
    free(text);
    hist_close(db);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--stream-writer") == 0) return mode_stream_writer(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--probe") == 0) return mode_probe(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--figures-writer") == 0) return mode_figures_writer(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--probe-figures") == 0) return mode_probe_figures(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--fixture") == 0) return mode_fixture(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--fixture-models") == 0) return mode_fixture_models(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--nasty") == 0) {
        const char *t = atoi(argv[2]) ? nasty_md : nasty;
        fwrite(t, 1, strlen(t), stdout);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "--populate") == 0)
        return mode_populate(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc > 1) {
        fprintf(stderr, "usage: test_history [--stream-writer DB | --probe DB | --fixture DB | "
                        "--nasty N | --populate DB SESSIONS MESSAGES_PER_SESSION]\n");
        return 2;
    }

    const char *base = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/test_history.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(tmp_root, 0711); /* lets the read-only test's unprivileged child in */

    test_default_path();
    test_text_helpers();
    test_schema_file();
    test_migrate_v2_fixture();
    test_reply_info();
    test_create();
    test_migrations();
    test_foreign_files();
    test_newer_version();
    test_sessions_messages();
    test_search();
    test_export();
    test_crash_in_process();
    test_concurrent_writers();
    test_readonly();
    test_full_disk();
    test_busy();

    if (!test_failures) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp_root);
    } else {
        fprintf(stderr, "files kept in %s\n", tmp_root);
    }
    if (!test_failures) printf("history: all checks passed\n");
    TEST_EXIT();
}
