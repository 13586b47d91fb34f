/* app.h — the full-screen curses interface: chat pane, the four live
 * panels (KV cache, Sink tokens, RoPE, Memory), readline input line,
 * status bar, help overlay, session browser, themes. Drives a struct chat
 * (chat.h); never touches the engine or the store directly. */
#ifndef ANC_APP_H
#define ANC_APP_H

#include "chat.h"

struct tui_opts {
    const char *theme;      /* theme name; NULL: the remembered one, else "default" */
    bool no_color;          /* NO_COLOR set or --no-color: the mono theme */
    bool no_mouse;
    /* for the session browser: the store the chat uses, and how a replay
       loads its model */
    const char *db_path;    /* NULL: the default path */
    bool no_history;
    int threads, backend;
};

/* Run until the user quits. Returns an exit status (0 after /quit or
 * Ctrl-D). Restores the terminal on every path, fatal signals included. */
int tui_run(struct chat *c, const struct tui_opts *o);

#endif
