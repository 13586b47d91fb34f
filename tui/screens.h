/* screens.h — the parts of the screen around the chat and panels: the
 * status bar and key hints (statusbar.c), the help overlay (help.c), the
 * saved-sessions browser (browser.c) and the review screen (review.c). They draw from what they are given
 * and report what the user chose; the main loop (app.c) acts on it. */
#ifndef ANC_SCREENS_H
#define ANC_SCREENS_H

#include <stdbool.h>
#include <wchar.h>

#include "chat.h"
#include "widgets.h"

/* ---- status bar (top) and key hints (bottom) ------------------------------ */

struct status_info {
    const struct chat_view *view;
    const struct anc_stats *st;   /* NULL before the first snapshot */
    const char *theme;            /* in force */
    bool colour_off;              /* NO_COLOR or no colour support */
    bool panels_shown;
};

void statusbar_draw(struct rect r, const struct status_info *si);
/* Whose keys the bottom line lists: the chat's, or those of the overlay
 * in front of it (and of the prompt open there). */
enum hints_mode {
    HINTS_CHAT,
    HINTS_HELP,
    HINTS_BROWSER,          /* the list of saved sessions */
    HINTS_BROWSER_EMPTY,    /* ... with no session in it */
    HINTS_BROWSER_FILTER,   /* typing a filter */
    HINTS_BROWSER_RENAME,   /* typing a new title */
    HINTS_BROWSER_DELETE,   /* asked to confirm a delete */
    HINTS_REVIEW,           /* the review screen */
    HINTS_REVIEW_SEARCH,    /* ... typing a search */
    HINTS_REVIEW_REPLAY     /* ... while a replay runs */
};
void hints_draw(struct rect r, enum hints_mode mode, bool busy, bool panels_shown);
/* The one-line message area: a command's answer, or a completion list. */
void message_draw(struct rect r, const char *text, bool error);

/* ---- help overlay (F1, ?) ------------------------------------------------- */

enum { OVERLAY_STAY, OVERLAY_CLOSE, OVERLAY_LOAD };

struct help;
struct help *help_new(void);
void help_free(struct help *h);
void help_reset(struct help *h);
int help_key(struct help *h, bool is_key, wint_t ch);
void help_draw(struct help *h, int lines, int cols);

/* ---- saved sessions (/sessions, F3) ---------------------------------------- */

/* Where the store is and how a replay loads its model (the chat's own
 * options: the browser opens its own connection to the same file). */
struct browser_opts {
    const char *db_path;   /* NULL: hist_default_path() */
    bool no_history;
    int threads, backend;
};

struct browser;
struct browser *browser_new(struct chat *c, const struct browser_opts *o);
void browser_free(struct browser *b);
/* Load the list afresh (empty search). */
void browser_open(struct browser *b);
/* OVERLAY_LOAD: cmd holds "/load ID" to submit. */
int browser_key(struct browser *b, bool is_key, wint_t ch, char *cmd, size_t cap);
void browser_draw(struct browser *b, int lines, int cols, int *cy, int *cx);
/* Called every tick: true when the screen should be redrawn (a replay's
 * progress or results). */
bool browser_tick(struct browser *b);
/* The keys that work now: the list's, a prompt's, or the review screen's. */
enum hints_mode browser_hints(struct browser *b);

/* ---- the review screen (review.c), opened from the browser ------------------ */

enum { REVIEW_STAY, REVIEW_BACK, REVIEW_RESUME };

struct hist_db;
struct review;
struct review *review_new(struct chat *c, struct hist_db *db, int threads, int backend);
void review_free(struct review *r);
/* Load session ID (0, or -1 with a message). */
int review_open(struct review *r, int64_t id, char *err, size_t errlen);
int64_t review_session(const struct review *r);
int review_key(struct review *r, bool is_key, wint_t ch);
/* Draw into BOX; *cy >= 0: where the cursor goes (the search prompt). */
void review_draw(struct review *r, struct rect box, int *cy, int *cx);
bool review_tick(struct review *r);
enum hints_mode review_hints(struct review *r);

#endif
