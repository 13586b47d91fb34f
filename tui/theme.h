/* theme.h — colour roles and themes for the full-screen interface.
 * Drawing code names a role (what a thing is), never a colour; a theme maps
 * each role to colours for 8-, 16- and 256-colour terminals and to plain
 * attributes for monochrome ones. No engine or chat dependency. */
#ifndef ANC_THEME_H
#define ANC_THEME_H

#include <stdbool.h>
#include <stddef.h>

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1 /* the wide-character API (add_wch, setcchar) */
#endif
#include <curses.h>

/* Every role once: identifier and the name used in .theme files. */
#define THEME_ROLES(X) \
    X(ROLE_NORMAL, "normal") \
    X(ROLE_STATUS_BAR, "status.bar") \
    X(ROLE_STATUS_KEY, "status.key") \
    X(ROLE_STATUS_IDLE, "status.idle") \
    X(ROLE_STATUS_BUSY, "status.busy") \
    X(ROLE_MESSAGE, "message") \
    X(ROLE_CHAT_USER, "chat.user") \
    X(ROLE_CHAT_USER_LABEL, "chat.user.label") \
    X(ROLE_CHAT_ASSISTANT, "chat.assistant") \
    X(ROLE_CHAT_ASSISTANT_LABEL, "chat.assistant.label") \
    X(ROLE_CHAT_SYSTEM, "chat.system") \
    X(ROLE_CHAT_NOTICE, "chat.notice") \
    X(ROLE_CHAT_ERROR, "chat.error") \
    X(ROLE_CHAT_META, "chat.meta") \
    X(ROLE_CHAT_CURSOR, "chat.cursor") \
    X(ROLE_PANEL_BORDER, "panel.border") \
    X(ROLE_PANEL_TITLE, "panel.title") \
    X(ROLE_PANEL_LABEL, "panel.label") \
    X(ROLE_PANEL_VALUE, "panel.value") \
    X(ROLE_PANEL_DIM, "panel.dim") \
    X(ROLE_CACHE_SINK, "cache.sink") \
    X(ROLE_CACHE_RECENT, "cache.recent") \
    X(ROLE_CACHE_USER, "cache.user") \
    X(ROLE_CACHE_FREE, "cache.free") \
    X(ROLE_CACHE_EVICTED, "cache.evicted") \
    X(ROLE_GAUGE_FILL, "gauge.fill") \
    X(ROLE_GAUGE_EMPTY, "gauge.empty") \
    X(ROLE_SPARK, "spark") \
    X(ROLE_PLOT_AXIS, "plot.axis") \
    X(ROLE_PLOT_BEFORE, "plot.before") \
    X(ROLE_PLOT_HIGH, "plot.high") \
    X(ROLE_PLOT_MID, "plot.mid") \
    X(ROLE_PLOT_LOW, "plot.low") \
    X(ROLE_WARNING, "warning") \
    X(ROLE_SELECTION, "selection") \
    X(ROLE_SEARCH_HIT, "search.hit") \
    X(ROLE_INPUT, "input") \
    X(ROLE_INPUT_PROMPT, "input.prompt") \
    X(ROLE_INPUT_PLACEHOLDER, "input.placeholder")

enum theme_role {
#define THEME_ROLE_ENUM(id, name) id,
    THEME_ROLES(THEME_ROLE_ENUM)
#undef THEME_ROLE_ENUM
    ROLE_COUNT
};

const char *theme_role_name(enum theme_role r);

/* Start colours (after initscr). no_color: NO_COLOR or --no-color. */
void theme_init(bool no_color);
/* Load and apply a theme by name (NULL or "" = "default"). Files are looked
 * up in $XDG_CONFIG_HOME/ancora/themes (the user's, first), $ANC_THEMES_DIR,
 * $ANC_SRCDIR/themes, the installed data directory, ./themes and themes/
 * beside the program; "default" and "mono" also exist compiled in. Returns false (theme unchanged) and a message in msg if
 * the theme is unknown; returns true with a warning in msg when a file had
 * bad lines (they are skipped). */
bool theme_apply(const char *name, char *msg, size_t msglen);
/* The name of the theme in force ("default", "mono", ...). */
const char *theme_current(void);
/* True when colours are off (mono or NO_COLOR): widgets then prefer glyphs
 * that differ by shape. */
bool theme_is_mono(void);
/* True when colours are off whatever the theme (NO_COLOR, --no-color, or
 * a terminal without colours). */
bool theme_colour_off(void);

/* Curses attributes (colour pair included) of a role. */
attr_t theme_attr(enum theme_role r);
/* Colour pair number and attributes separately, for setcchar. */
short theme_pair(enum theme_role r);
attr_t theme_attrs_only(enum theme_role r);
/* The names of the themes that can be loaded (files and compiled-in),
 * sorted, without duplicates; malloc'ed NULL-terminated array, free with
 * theme_names_free. */
char **theme_names(void);
void theme_names_free(char **names);

#endif
