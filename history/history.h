/* history.h — the API of Ancora's conversation store (SQLite): sessions,
 * messages, parameter events, search, stats, export. Front-ends reach the
 * store only through it; it knows nothing of tensors, the engine or curses. */
#ifndef ANC_HISTORY_H
#define ANC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Schema version written to PRAGMA user_version; PRAGMA application_id is
 * HIST_APPLICATION_ID ("ANCR") so other programs' databases are told apart. */
#define HIST_SCHEMA_VERSION 3
#define HIST_APPLICATION_ID 0x414E4352

/* Every function that can fail returns one of these (0 = success). The
 * text of the last failure on a handle is hist_errmsg(). */
enum hist_status {
    HIST_OK = 0,
    HIST_ERR_IO = -1,       /* any other SQLite or system failure */
    HIST_ERR_READONLY = -2, /* the file (or its folder) cannot be written */
    HIST_ERR_FULL = -3,     /* disk full, quota or file size limit */
    HIST_ERR_BUSY = -4,     /* locked by another writer after the busy timeout */
    HIST_ERR_NOTFOUND = -5, /* no such session or message */
    HIST_ERR_INVALID = -6,  /* bad argument (empty query, wrong role, ...) */
    HIST_ERR_NOMEM = -7,
    HIST_ERR_CORRUPT = -8   /* the database file is damaged */
};

enum hist_role { HIST_ROLE_SYSTEM, HIST_ROLE_USER, HIST_ROLE_ASSISTANT };

/* HIST_FINISH_NONE: a user/system message, or an assistant reply still
 * streaming (stored as NULL). */
enum hist_finish {
    HIST_FINISH_NONE,
    HIST_FINISH_STOP,
    HIST_FINISH_LENGTH,
    HIST_FINISH_CANCELLED,
    HIST_FINISH_ERROR,
    HIST_FINISH_INTERRUPTED
};

struct hist_db; /* opaque: one SQLite connection and its prepared statements */

/* ---- opening ------------------------------------------------------------ */

/* The database path: $ANCORA_DB, else $XDG_DATA_HOME/ancora/history.db,
 * else ~/.local/share/ancora/history.db. malloc'ed (caller frees); NULL
 * when no home folder can be found. Creates nothing. */
char *hist_default_path(void);

/* Create the missing folders above PATH with mode 0700 (existing ones are
 * left as they are). Returns HIST_OK or fills ERR. */
int hist_make_parent_dirs(const char *path, char *err, size_t errlen);

/* Open (creating if absent: file 0600, missing folders 0700) and bring the
 * schema up to date. Refuses, without changing a byte, a file that is not
 * SQLite, an SQLite database of another program, or one written by a newer
 * Ancora. Assistant replies left streaming by a process that no longer
 * exists are marked `interrupted`. A write-protected file opens read-only
 * (reads work, writes return HIST_ERR_READONLY). On failure returns NULL
 * with a one-line reason in ERR (which names the path). */
struct hist_db *hist_open(const char *path, char *err, size_t errlen);
void hist_close(struct hist_db *db);

const char *hist_path(const struct hist_db *db);
bool hist_readonly(const struct hist_db *db);
/* Text of the most recent failure on DB ("" if none); valid until the next call. */
const char *hist_errmsg(const struct hist_db *db);
const char *hist_strerror(int status);

/* Group many writes into one transaction (imports, benchmarks). Between
 * them each write still succeeds or fails on its own. end(commit=false)
 * rolls everything back. */
int hist_batch_begin(struct hist_db *db);
int hist_batch_end(struct hist_db *db, bool commit);

/* ---- sessions ----------------------------------------------------------- */

struct hist_session {
    int64_t id;
    char *title;       /* "" when untitled */
    char *model_path;
    char *model_name;
    char *params_json; /* engine parameters in force, JSON text ("{}" if none) */
    int64_t created_ms; /* Unix time in milliseconds */
    int64_t updated_ms; /* last activity */
    int64_t n_messages;
    char *vocab_hash;   /* fingerprint of the model's vocabulary; "" when unknown */
};

/* Any string argument may be NULL (stored as ""; params as "{}"). */
int hist_session_create(struct hist_db *db, const char *title, const char *model_path,
                        const char *model_name, const char *params_json, int64_t *id_out);
int hist_session_set_title(struct hist_db *db, int64_t id, const char *title);
int hist_session_set_params(struct hist_db *db, int64_t id, const char *params_json);
int hist_session_touch(struct hist_db *db, int64_t id);
/* Record the model's vocabulary fingerprint (anc_vocab_fingerprint). */
int hist_session_set_vocab(struct hist_db *db, int64_t id, const char *vocab_hash);
/* Deletes the session with its messages and parameter events. */
int hist_session_delete(struct hist_db *db, int64_t id);
/* One session (HIST_ERR_NOTFOUND if none); free with hist_session_clear. */
int hist_session_get(struct hist_db *db, int64_t id, struct hist_session *out);
void hist_session_clear(struct hist_session *s);
/* Sessions newest activity first; LIMIT 0 = all. Free with hist_session_list_free. */
int hist_session_list(struct hist_db *db, size_t limit, struct hist_session **out, size_t *n_out);
void hist_session_list_free(struct hist_session *list, size_t n);

/* ---- messages ----------------------------------------------------------- */

struct hist_msg_stats {
    int64_t prompt_tokens;     /* tokens processed before the reply; -1 = unknown */
    int64_t completion_tokens; /* tokens generated; -1 = unknown */
    double prompt_ms;          /* prompt processing time; < 0 = unknown */
    double gen_ms;             /* generation time; < 0 = unknown */
};

/* What was in force while a reply was generated, and what it measured
 * (schema version 3). Unknown: NULL strings, -1 integers, negative reals;
 * rows written before version 3 read as all unknown. Prompt and decode
 * speeds are not stored twice: they are hist_msg_stats' tokens / time. */
struct hist_reply_info {
    const char *cache_policy;  /* "sink", "window", "recompute", "full" */
    int64_t window, sinks;
    const char *rope_type;     /* "none", "linear", "dynamic", "yarn", "llama3" */
    double rope_base, rope_factor;
    const char *adapter;       /* a LoRA adapter; NULL: none */
    const char *template_name; /* the chat template ("chatml", "plain", ...) */
    int64_t cache_used;        /* cache entries when the reply ended */
    int64_t cache_capacity;    /* entries a token could attend to */
    double sink_share;         /* mean over the reply's tokens of the share of
                                  attention on the sink tokens, 0..1 */
    const int32_t *token_ids;  /* the reply's token ids as fed to the model
                                  (the end-of-turn token included) */
    size_t n_token_ids;
};

/* All fields unknown. */
void hist_reply_info_init(struct hist_reply_info *ri);

struct hist_message {
    int64_t id;
    int64_t session_id;
    enum hist_role role;
    char *content;
    struct hist_msg_stats stats;
    enum hist_finish finish;
    int64_t created_ms;
    struct hist_reply_info info; /* owned by the list (hist_msg_list_free) */
};

/* A complete message (user and system messages, or a whole assistant reply
 * with finish STOP). Committed before it returns. */
int hist_msg_append(struct hist_db *db, int64_t session_id, enum hist_role role,
                    const char *content, int64_t *id_out);
/* A streamed assistant reply: begin (empty, marked streaming), update the
 * text as it grows (call at least once a second: each call commits), then
 * finish with the reason, the final text (NULL keeps the last update) and
 * the counts (NULL = unknown). */
int hist_msg_begin(struct hist_db *db, int64_t session_id, int64_t *id_out);
int hist_msg_update_text(struct hist_db *db, int64_t msg_id, const char *text);
int hist_msg_finish(struct hist_db *db, int64_t msg_id, const char *final_text,
                    enum hist_finish finish, const struct hist_msg_stats *stats);
/* The same, also storing the engine figures (INFO NULL = unknown), all in
 * the one transaction that finishes the reply. */
int hist_msg_finish_info(struct hist_db *db, int64_t msg_id, const char *final_text,
                         enum hist_finish finish, const struct hist_msg_stats *stats,
                         const struct hist_reply_info *info);
/* All messages of a session, oldest first. */
int hist_msg_list(struct hist_db *db, int64_t session_id, struct hist_message **out, size_t *n_out);
void hist_msg_list_free(struct hist_message *list, size_t n);

/* ---- parameter events --------------------------------------------------- */

struct hist_param_event {
    int64_t id;
    int64_t session_id;
    int64_t message_id; /* the last message before the change; 0 = none */
    char *name;
    char *old_value;    /* NULL when there was none */
    char *new_value;
    int64_t at_ms;
};

int hist_param_event_add(struct hist_db *db, int64_t session_id, int64_t message_id,
                         const char *name, const char *old_value, const char *new_value,
                         int64_t *id_out);
int hist_param_event_list(struct hist_db *db, int64_t session_id, struct hist_param_event **out,
                          size_t *n_out);
void hist_param_event_list_free(struct hist_param_event *list, size_t n);

/* ---- search ------------------------------------------------------------- */

struct hist_hit {
    int64_t session_id;
    int64_t message_id;
    enum hist_role role;
    int64_t created_ms;
    char *session_title;
    char *snippet; /* one line of valid UTF-8, matches between the caller's marks */
};

/* Messages containing every whitespace-separated word of QUERY (substring
 * match, ASCII case-insensitive; Chinese and other unspaced scripts work),
 * newest first, at most LIMIT (0 = all). Words of 3+ characters use the
 * FTS5 trigram index; shorter ones are checked by a scan. */
int hist_search(struct hist_db *db, const char *query, const char *mark_open,
                const char *mark_close, size_t limit, struct hist_hit **out, size_t *n_out);
void hist_hits_free(struct hist_hit *hits, size_t n);

/* ---- statistics --------------------------------------------------------- */

struct hist_stats {
    int64_t sessions;
    int64_t messages;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t file_bytes; /* database + write-ahead log on disk */
    int schema_version;
};

int hist_get_stats(struct hist_db *db, struct hist_stats *out);

/* ---- export and text helpers (export.c) --------------------------------- */

enum hist_format { HIST_FORMAT_MARKDOWN, HIST_FORMAT_JSON };

/* Write one session. JSON is valid whatever the stored bytes (invalid UTF-8
 * becomes U+FFFD); Markdown puts every message in a fence longer than any
 * backtick run inside, so no stored text is read as markup or HTML. */
int hist_export(struct hist_db *db, int64_t session_id, enum hist_format fmt, FILE *out);

/* Text made safe to print: invalid UTF-8 and control characters become
 * U+FFFD. HIST_CLEAN_MULTILINE keeps tabs and newlines (CR LF -> LF);
 * otherwise every run of whitespace becomes one space. malloc'ed. */
enum { HIST_CLEAN_MULTILINE = 1 };
char *hist_text_clean(const char *s, unsigned flags);

/* "YYYY-MM-DD HH:MM:SS" in local time, or ISO 8601 "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * when UTC; returns BUF. */
char *hist_format_time(int64_t ms, bool utc, char *buf, size_t cap);

/* Does R hold any figure (false for user messages and pre-v3 rows)? */
bool hist_reply_info_known(const struct hist_reply_info *r);
/* A reply's figures as one line of printable text ("sink window 256
 * sinks 4, RoPE none base 10000 x1, template chatml, prompt 812.0 tok/s,
 * decode 41.3 tok/s, cache 256/256, sink attention 31.2%"); false (and
 * "") when none are known. */
bool hist_reply_info_line(const struct hist_message *m, char *buf, size_t cap);
/* TOKENS per second from a count and milliseconds; -1 when unknown. */
double hist_rate(int64_t tokens, double ms);

/* Write S as a JSON string literal: quotes, backslashes and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. */
void hist_json_string(FILE *out, const char *s);

/* The SQL that brings a database from VERSION-1 to VERSION (1 up to
 * HIST_SCHEMA_VERSION), NULL otherwise: for tests and documentation
 * (history/schema.sql is a readable copy). */
const char *hist_schema_sql(int version);

/* A session title from a message: its first non-blank line, whitespace
 * runs made one space, trimmed, and shortened to at most MAX_COLS terminal
 * columns (CJK characters count two) with "…": after the last whole word
 * when that keeps half the width, else after a whole character.
 * Control characters and invalid UTF-8 become U+FFFD. malloc'ed; "" for
 * a blank text; NULL only when out of memory. (title.c) */
char *hist_title_from_text(const char *text, int max_cols);

const char *hist_role_name(enum hist_role role);
const char *hist_finish_name(enum hist_finish finish); /* NULL for NONE */
/* Parse "stop", "length", ... (NULL -> NONE); returns -1 for an unknown name. */
int hist_finish_from_name(const char *name);
/* How a finish reason reads on screen (chat, review screen, `history
 * show`): "max tokens reached" for LENGTH, the name for the others; NULL
 * for STOP (a reply the model ended says nothing) and NONE. The stored
 * value and the export formats keep hist_finish_name. */
const char *hist_finish_label(enum hist_finish finish);

#endif
