/* chat.h — the conversation controller shared by the full-screen TUI and
 * the REPL: it owns the conversation engine (ancora.h's anc_conv: a local
 * model or a remote server) and the history store; runs each reply on its
 * own engine thread; parses and applies slash commands; and hands the UI
 * consistent snapshots to draw.
 * Front-end code: reaches the engine only through ancora.h and the store
 * only through history.h; no curses here. */
#ifndef ANC_CHAT_H
#define ANC_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ancora.h"

struct chat; /* opaque */

struct chat_opts {
    const char *model_path;
    const char *lora_path;      /* a LoRA adapter for the whole chat, or NULL
                                   (its strength: sess.lora_scale) */
    int threads;
    int backend;           /* enum anc_backend_kind */
    struct anc_session_params sess;
    int template_id;            /* ANC_TPL_AUTO (-1): from the model */
    const char *system_prompt;  /* NULL: none */
    const char *db_path;        /* NULL: the default path ($ANCORA_DB, XDG) */
    bool no_history;            /* keep nothing on disk */
    int64_t resume_id;          /* > 0: load this saved session and continue it */
    int32_t max_reply_tokens;   /* per reply; 0: until end of turn or a full context;
                                   < 0: a default by the template (256 without one) */
    /* a remote engine instead of model_path (an OpenAI-compatible server) */
    const char *remote_url;     /* NULL: the local model */
    const char *api_key;        /* bearer token, or NULL (never stored anywhere) */
    const char *remote_model;   /* the server's model id; NULL: its first */
    double timeout, connect_timeout; /* seconds; 0: the engine's defaults */
    /* Called on the engine thread with each piece of reply text as it is
     * generated (the REPL prints it); may be NULL. */
    void (*on_piece)(void *ctx, const char *piece, size_t len);
    void *on_piece_ctx;
};

void chat_opts_default(struct chat_opts *o);

/* Load the model, open the history, start the engine thread. NULL + a
 * one-line message on failure. Notices (e.g. "history is read-only; this
 * conversation is kept in memory only") appear as CHAT_NOTICE messages. */
struct chat *chat_new(const struct chat_opts *o, char *err, size_t errlen);
/* Cancels any reply in progress (kept, marked cancelled), stops the engine
 * thread, closes everything. */
void chat_free(struct chat *c);

enum chat_role { CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT, CHAT_NOTICE, CHAT_ERROR };
enum chat_state { CHAT_IDLE, CHAT_PREFILL, CHAT_GENERATING };

/* One message as the UI sees it. */
struct chat_msg_view {
    enum chat_role role;
    char *text;                 /* copy, NUL-terminated, valid until release */
    size_t len;
    int64_t tok_first;          /* text index of its first token (-1: not fed) */
    int64_t tok_count;          /* tokens it occupies in the conversation */
    int64_t n_gen;              /* a finished reply's tokens, as the history stores them
                                   (its end-of-turn token not counted); -1 unknown */
    const char *finish;         /* "stop", "length", "cancelled", "error", or NULL */
    bool streaming;             /* the reply being generated now */
};

/* A consistent copy of everything the UI draws, taken under a short lock. */
struct chat_view {
    uint64_t version;           /* changes whenever anything below changes */
    enum chat_state state;
    struct chat_msg_view *msgs; /* [n_msgs] */
    size_t n_msgs;
    char *title;                /* session title ("" if untitled) */
    int64_t session_id;         /* in the history store; 0 = not stored */
    char *model_name;
    char *template_name;
    char *theme_name;           /* the theme the user chose ("" = default) */
    bool history_ok;            /* the store is open and writable */
    struct anc_model_info model;/* (path/name/arch pointers stay valid while the chat lives;
                                   zeros but name and path for a remote engine) */
    bool remote;                /* the engine is a remote server */
    struct anc_session_params params; /* in force, including pending changes */
    int32_t max_reply;          /* tokens per reply (0 = no limit) */
};

/* Cheap: has anything changed since `version`? */
uint64_t chat_version(const struct chat *c);
void chat_view_get(struct chat *c, struct chat_view *out);
void chat_view_release(struct chat_view *v);

/* One line saying where the model runs when that is worth saying (a GPU,
 * or a GPU left for the CPU and why), else "". */
const char *chat_backend_notice(const struct chat *c, char *buf, size_t cap);
/* The adapter the chat was started with (--lora), or NULL. */
const char *chat_lora_path(const struct chat *c);

/* The text of a token (as it would appear after BOS), snprintf-style. */
size_t chat_token_text(struct chat *c, int32_t id, char *buf, size_t cap);

/* Engine statistics (see anc_session_stats); safe while generating. */
int32_t chat_stats(struct chat *c, struct anc_stats *out, int64_t *orig, int32_t cap);

/* What chat_submit did, as flags (htop-style handler results). */
enum {
    CHAT_HANDLED = 1,       /* the line was consumed */
    CHAT_REDRAW = 2,        /* something visible changed */
    CHAT_QUIT = 4,          /* /quit */
    CHAT_THEME = 8,         /* /theme NAME: the UI should switch (name in reply) */
    CHAT_SESSIONS = 16,     /* /sessions: the UI should open its browser (the
                               REPL prints the list that is in reply) */
    CHAT_BUSY = 32,         /* a message arrived while a reply is in progress */
    CHAT_CLEAR = 64         /* /new or /load: the conversation was replaced */
};

/* Take one line of input: a slash command (applied at once; its answer is
 * written to reply and also kept as a CHAT_NOTICE / CHAT_ERROR message) or
 * a message for the model (stored, then answered on the engine thread).
 * Returns CHAT_* flags. reply may be NULL. */
int chat_submit(struct chat *c, const char *line, char *reply, size_t reply_len);

/* Ctrl-C: stop the reply in progress (its text is kept, marked cancelled).
 * Returns false if nothing was running. */
bool chat_cancel(struct chat *c);
bool chat_busy(const struct chat *c);
/* Block until no reply is in progress (the REPL between lines). */
void chat_wait_idle(struct chat *c);

/* Slash-command completion for readline: the commands and their argument
 * words (policies, scaling types, theme names, sampling settings) that
 * start with `prefix` in the context of the text before it. Returns a
 * malloc'ed NULL-terminated array of malloc'ed strings, or NULL. */
char **chat_complete(struct chat *c, const char *line_before, const char *prefix);

/* One-line help for each command, for /help and the help overlay. */
struct chat_command_help {
    const char *usage;
    const char *what;
};
const struct chat_command_help *chat_command_help(size_t *n);

/* Saved sessions for a browser: id, title, model, message count, last
 * activity as text. */
struct chat_session_row {
    int64_t id;
    char *title;
    char *model;
    int64_t n_messages;
    char *when;
};
int chat_list_sessions(struct chat *c, const char *search, struct chat_session_row **rows,
                       size_t *n);
void chat_session_rows_free(struct chat_session_row *rows, size_t n);

/* Remember the theme choice (stored in the config directory). */
void chat_set_theme_name(struct chat *c, const char *name);

#endif
