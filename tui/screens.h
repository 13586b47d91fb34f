/* screens.h — the parts of the screen around the chat and panels: the
 * status bar and key hints (statusbar.c), the help overlay (help.c) and the
 * saved-sessions browser (browser.c). They draw from what they are given
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
void hints_draw(struct rect r, bool busy, bool panels_shown);
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

struct browser;
struct browser *browser_new(struct chat *c);
void browser_free(struct browser *b);
/* Load the list afresh (empty search). */
void browser_open(struct browser *b);
/* OVERLAY_LOAD: cmd holds "/load ID" to submit. */
int browser_key(struct browser *b, bool is_key, wint_t ch, char *cmd, size_t cap);
void browser_draw(struct browser *b, int lines, int cols, int *cy, int *cx);

#endif
