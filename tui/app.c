/* app.c — the full-screen interface's main loop (see app.h): curses set-up
 * and the exact restore of the terminal on every exit path (fatal signals
 * included), key handling through one binding table, snapshots of the chat
 * and of the engine statistics taken every tick, and one redraw per change.
 * Talks to the conversation only through chat.h; never to the engine. */
#include "app.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_pane.h"
#include "input.h"
#include "layout.h"
#include "panel.h"
#include "screens.h"
#include "theme.h"
#include "widgets.h"

#define TICK_IDLE_MS 100   /* getch timeout while nothing is generated */
#define TICK_BUSY_MS 50    /* while a reply streams: smoother text */
#define KEYS_PER_TICK 4096 /* a paste is taken in one go, then drawn once */
#define WHEEL_LINES 3

enum overlay { OV_NONE, OV_HELP, OV_BROWSER };
enum { PANELS_AUTO = -1, PANELS_OFF = 0, PANELS_ON = 1 };

struct app {
    struct chat *chat;            /* borrowed */
    struct chat_view view;
    bool have_view;
    struct anc_stats st;
    bool have_stats;
    int64_t *orig, *sorted;       /* [orig_cap] text index of each cached entry */
    int32_t orig_cap, n_orig;
    float *in_view;               /* [in_view_cap] per message of the view */
    size_t in_view_cap;
    struct panel *panels[PANEL_COUNT];
    struct chat_pane *pane;
    struct input *input;
    struct help *help;
    struct browser *browser;
    enum overlay overlay;
    int panels_choice;            /* PANELS_AUTO: by width */
    bool choice_wide;             /* the choice was made on a wide terminal */
    struct layout layout;
    char msg[1024];               /* the message line */
    bool msg_error;
    bool dirty, quit;
    int exit_code;
};

/* ---- terminal state and signals ------------------------------------------ */

static volatile sig_atomic_t sig_int, sig_quit;
static bool curses_on;
static int saved_stderr = -1;     /* the terminal's stderr while curses runs */
static FILE *stderr_capture;      /* what was written to stderr meanwhile */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static const int quit_signals[] = {SIGTERM, SIGHUP, SIGQUIT};
#define N_FATAL (sizeof fatal_signals / sizeof fatal_signals[0])
#define N_QUIT (sizeof quit_signals / sizeof quit_signals[0])
static struct sigaction old_fatal[N_FATAL], old_quit[N_QUIT], old_int;

static void paste_mode(bool on)
{
    const char *seq = on ? "\033[?2004h" : "\033[?2004l";
    if (write(STDOUT_FILENO, seq, strlen(seq)) < 0) { /* nothing to do */ }
}

/* Leave curses and give stderr back. Safe to call twice. */
static void terminal_restore(void)
{
    if (curses_on) {
        curses_on = false;
        paste_mode(false);
        endwin();
    }
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
}

static void on_fatal(int sig)
{
    /* restore the terminal before anything is printed (SA_RESETHAND: a
       second fault here ends the program with the default action) */
    terminal_restore();
    const char *what = sig == SIGSEGV ? "segmentation fault"
                       : sig == SIGABRT ? "abort"
                       : sig == SIGBUS ? "bus error"
                       : sig == SIGFPE ? "arithmetic exception"
                                       : "illegal instruction";
    char buf[160];
    int n = snprintf(buf, sizeof buf, "ancora: fatal error (%s); the terminal was restored\n", what);
    if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0) { /* nothing to do */ }
    raise(sig);
}

static void on_quit_signal(int sig) { sig_quit = sig; }
static void on_interrupt(int sig)
{
    (void)sig;
    sig_int = 1;
}

static void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_fatal;
    sa.sa_flags = (int)SA_RESETHAND;
    for (size_t i = 0; i < N_FATAL; i++) sigaction(fatal_signals[i], &sa, &old_fatal[i]);
    sa.sa_handler = on_quit_signal;
    sa.sa_flags = 0;
    for (size_t i = 0; i < N_QUIT; i++) sigaction(quit_signals[i], &sa, &old_quit[i]);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
}

static void signals_restore(void)
{
    for (size_t i = 0; i < N_FATAL; i++) sigaction(fatal_signals[i], &old_fatal[i], NULL);
    for (size_t i = 0; i < N_QUIT; i++) sigaction(quit_signals[i], &old_quit[i], NULL);
    sigaction(SIGINT, &old_int, NULL);
}

static void at_exit_restore(void) { terminal_restore(); }

/* Whatever the engine or a library prints to stderr would tear the
 * screen: keep it aside and show it after the screen is restored. */
static void stderr_capture_begin(void)
{
    stderr_capture = tmpfile();
    if (!stderr_capture) return;
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    if (saved_stderr < 0 || dup2(fileno(stderr_capture), STDERR_FILENO) < 0) {
        if (saved_stderr >= 0) close(saved_stderr);
        saved_stderr = -1;
        fclose(stderr_capture);
        stderr_capture = NULL;
    }
}

static void stderr_capture_end(void)
{
    if (!stderr_capture) return;
    fflush(stderr);
    rewind(stderr_capture);
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stderr_capture)) > 0 && total < (1u << 20)) {
        fwrite(buf, 1, n, stderr);
        total += n;
    }
    fclose(stderr_capture);
    stderr_capture = NULL;
}

static bool curses_start(const struct tui_opts *o)
{
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) return false;
    set_term(scr);
    curses_on = true;
    raw();      /* Ctrl-C, Ctrl-Z and Ctrl-\ arrive as keys */
    noecho();
    nonl();     /* Enter is \r, Ctrl-J is \n: two different keys */
    keypad(stdscr, TRUE);
    set_escdelay(25);
    leaveok(stdscr, FALSE);
    if (!o->no_mouse) {
        mmask_t wheel = BUTTON4_PRESSED;
#ifdef BUTTON5_PRESSED
        wheel |= BUTTON5_PRESSED;
#endif
        mousemask(wheel, NULL);
        mouseinterval(0);
    }
    define_key("\033[200~", INPUT_KEY_PASTE_BEGIN);
    define_key("\033[201~", INPUT_KEY_PASTE_END);
    paste_mode(true);
    return true;
}

/* ---- data ------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool grow_orig(struct app *a, int32_t need)
{
    if (need <= a->orig_cap) return true;
    int32_t cap = a->orig_cap ? a->orig_cap : 1024;
    while (cap < need) cap *= 2;
    int64_t *o = realloc(a->orig, (size_t)cap * sizeof *o);
    if (!o) return false;
    a->orig = o;
    int64_t *s = realloc(a->sorted, (size_t)cap * sizeof *s);
    if (!s) return false;
    a->sorted = s;
    a->orig_cap = cap;
    return true;
}

static size_t token_text(void *ctx, int32_t id, char *buf, size_t cap)
{
    return chat_token_text(ctx, id, buf, cap);
}

static void update_panels(struct app *a, bool new_token)
{
    memcpy(a->sorted, a->orig, (size_t)a->n_orig * sizeof *a->sorted);
    qsort(a->sorted, (size_t)a->n_orig, sizeof *a->sorted, cmp_i64);
    if (a->view.n_msgs > a->in_view_cap) {
        float *f = realloc(a->in_view, a->view.n_msgs * sizeof *f);
        if (!f) return;
        a->in_view = f;
        a->in_view_cap = a->view.n_msgs;
    }
    panel_msgs_in_view(&a->view, a->sorted, a->n_orig, a->in_view);
    struct panel_input in = {&a->st, a->orig, a->n_orig, a->sorted, &a->view, &a->view.params,
                             token_text, a->chat, new_token};
    for (int i = 0; i < PANEL_COUNT; i++) panel_update(a->panels[i], &in);
}

/* Take fresh snapshots; mark the screen dirty if anything changed. */
static void refresh_data(struct app *a)
{
    bool view_changed = false;
    if (!a->have_view || chat_version(a->chat) != a->view.version) {
        if (a->have_view) chat_view_release(&a->view);
        chat_view_get(a->chat, &a->view);
        a->have_view = true;
        view_changed = true;
    }
    struct anc_stats st;
    memset(&st, 0, sizeof st);
    if (!grow_orig(a, 1024)) return;
    int32_t n = chat_stats(a->chat, &st, a->orig, a->orig_cap);
    if (st.n_cached > a->orig_cap && grow_orig(a, st.n_cached))
        n = chat_stats(a->chat, &st, a->orig, a->orig_cap);
    bool stats_changed = !a->have_stats || memcmp(&st, &a->st, sizeof st) != 0;
    bool new_token = !a->have_stats || st.n_seen != a->st.n_seen;
    if (stats_changed) {
        a->st = st;
        a->n_orig = n < 0 ? 0 : n;
        a->have_stats = true;
    }
    if (stats_changed || view_changed) {
        update_panels(a, new_token);
        a->dirty = true;
    }
}

/* ---- actions ----------------------------------------------------------------- */

static void set_message(struct app *a, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_message(struct app *a, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    a->msg_error = error;
    a->dirty = true;
}

static bool apply_theme(struct app *a, const char *name)
{
    char msg[512];
    bool ok = theme_apply(name, msg, sizeof msg);
    if (ok) {
        bkgdset((chtype)(' ' | theme_attr(ROLE_NORMAL)));
        clearok(curscr, TRUE);
        chat_pane_reset(a->pane);
    }
    if (msg[0]) set_message(a, !ok, "%s", msg);
    a->dirty = true;
    return ok;
}

/* F2 chooses for the terminal as it is: growing a narrow terminal past
 * the fold width (or shrinking a wide one) goes back to the default. */
static bool panels_on(struct app *a)
{
    bool wide = layout_panels_default(COLS);
    if (a->panels_choice != PANELS_AUTO && a->choice_wide != wide) a->panels_choice = PANELS_AUTO;
    return a->panels_choice == PANELS_AUTO ? wide : a->panels_choice == PANELS_ON;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

/* The last message of the view is an error saying `reply`: then the
 * message line shows it as an error too. */
static bool reply_was_error(struct app *a, const char *reply)
{
    refresh_data(a);
    if (!a->view.n_msgs) return false;
    const struct chat_msg_view *m = &a->view.msgs[a->view.n_msgs - 1];
    return m->role == CHAT_ERROR && strcmp(m->text, reply) == 0;
}

static void open_overlay(struct app *a, enum overlay ov)
{
    a->overlay = ov;
    if (ov == OV_HELP) help_reset(a->help);
    if (ov == OV_BROWSER) browser_open(a->browser);
    a->dirty = true;
}

static void submit(struct app *a, char *line)
{
    if (is_blank(line)) return;
    input_history_add(a->input, line);
    if (strcmp(line, "/help") == 0) { /* the overlay is the TUI's help */
        open_overlay(a, OV_HELP);
        return;
    }
    char reply[2048] = "";
    int f = chat_submit(a->chat, line, reply, sizeof reply);
    a->dirty = true;
    if (f & CHAT_BUSY) {
        input_set_text(a->input, line); /* nothing typed is lost */
        set_message(a, true, "%s", reply);
        return;
    }
    if (f & CHAT_QUIT) {
        a->quit = true;
        a->exit_code = 0;
        return;
    }
    if (f & CHAT_CLEAR) chat_pane_reset(a->pane);
    if (line[0] != '/') {
        chat_pane_end(a->pane);
        a->msg[0] = '\0';
        return;
    }
    if (f & CHAT_THEME) {
        a->msg[0] = '\0';
        if (apply_theme(a, reply)) {
            char warning[sizeof a->msg];
            snprintf(warning, sizeof warning, "%s", a->msg); /* bad lines in the file */
            chat_set_theme_name(a->chat, reply);
            if (warning[0]) set_message(a, true, "theme %s: %s", reply, warning);
            else if (theme_colour_off())
                set_message(a, false, "theme %s (colours are off: NO_COLOR or the terminal)", reply);
            else set_message(a, false, "theme %s", reply);
        }
        return;
    }
    if (f & CHAT_SESSIONS) {
        open_overlay(a, OV_BROWSER);
        return;
    }
    set_message(a, reply_was_error(a, reply), "%s", reply);
}

static void interrupt(struct app *a)
{
    if (chat_cancel(a->chat)) set_message(a, false, "reply stopped (kept, marked cancelled)");
    else if (!input_empty(a->input)) input_clear(a->input);
    else set_message(a, false, "nothing to stop \u00b7 Ctrl-D or /quit quits");
    a->dirty = true;
}

/* ---- key bindings (one table; handlers return nothing, set flags) ------------ */

static void act_help(struct app *a) { open_overlay(a, OV_HELP); }
static void act_sessions(struct app *a) { open_overlay(a, OV_BROWSER); }
static void act_quit(struct app *a) { a->quit = true; }
static void act_page_up(struct app *a) { chat_pane_page(a->pane, -1); }
static void act_page_down(struct app *a) { chat_pane_page(a->pane, 1); }
static void act_top(struct app *a) { chat_pane_home(a->pane); }
static void act_bottom(struct app *a) { chat_pane_end(a->pane); }
static void act_redraw(struct app *a) { clearok(curscr, TRUE); }
static void act_interrupt(struct app *a) { interrupt(a); }
/* Ctrl-Z: raw mode turned it into a key; stop as the shell expects (curses'
 * own SIGTSTP handler leaves and restores the screen around the stop). */
static void act_suspend(struct app *a)
{
    paste_mode(false);
    raise(SIGTSTP);
    paste_mode(true);
    clearok(curscr, TRUE);
    a->dirty = true;
}
static void act_panels(struct app *a)
{
    a->panels_choice = panels_on(a) ? PANELS_OFF : PANELS_ON;
    a->choice_wide = layout_panels_default(COLS);
}

struct binding {
    bool is_key;          /* a KEY_* code, else a character */
    int code;
    bool only_when_empty; /* only when the input line is empty */
    void (*fn)(struct app *a);
};

static const struct binding bindings[] = {
    {true, KEY_F(1), false, act_help},
    {false, '?', true, act_help},
    {true, KEY_F(2), false, act_panels},
    {true, KEY_F(3), false, act_sessions},
    {true, KEY_F(10), false, act_quit},
    {true, KEY_PPAGE, false, act_page_up},
    {true, KEY_NPAGE, false, act_page_down},
    {true, KEY_HOME, true, act_top},
    {true, KEY_END, true, act_bottom},
    {false, 3, false, act_interrupt},  /* Ctrl-C */
    {false, 12, false, act_redraw},    /* Ctrl-L */
    {false, 26, false, act_suspend},   /* Ctrl-Z */
};

/* Keys known by name only (their codes vary between terminals). */
static const struct {
    const char *name;
    void (*fn)(struct app *a);
} named_bindings[] = {
    {"kHOM5", act_top},
    {"kEND5", act_bottom},
};

static bool run_binding(struct app *a, bool is_key, wint_t ch)
{
    for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
        const struct binding *b = &bindings[i];
        if (b->is_key != is_key || (wint_t)b->code != ch) continue;
        if (b->only_when_empty && !input_empty(a->input)) continue;
        b->fn(a);
        a->dirty = true;
        return true;
    }
    if (is_key) {
        const char *name = keyname((int)ch);
        for (size_t i = 0; name && i < sizeof named_bindings / sizeof named_bindings[0]; i++)
            if (strcmp(name, named_bindings[i].name) == 0) {
                named_bindings[i].fn(a);
                a->dirty = true;
                return true;
            }
    }
    return false;
}

static void take_line(struct app *a)
{
    bool eof;
    char *line = input_take_line(a->input, &eof);
    if (eof) {
        a->quit = true; /* Ctrl-D on an empty line */
        return;
    }
    if (line) submit(a, line);
    free(line);
}

static void mouse_event(struct app *a)
{
    MEVENT ev;
    if (getmouse(&ev) != OK) return;
    int d = 0;
    if (ev.bstate & BUTTON4_PRESSED) d = -1;
#ifdef BUTTON5_PRESSED
    else if (ev.bstate & BUTTON5_PRESSED) d = 1;
#endif
    if (!d) return;
    if (a->overlay == OV_BROWSER) {
        char cmd[64];
        browser_key(a->browser, true, d < 0 ? KEY_UP : KEY_DOWN, cmd, sizeof cmd);
    } else if (a->overlay == OV_HELP) {
        help_key(a->help, true, d < 0 ? KEY_UP : KEY_DOWN);
    } else {
        chat_pane_scroll(a->pane, d * WHEEL_LINES);
    }
    a->dirty = true;
}

static void overlay_key(struct app *a, bool is_key, wint_t ch)
{
    if (a->overlay == OV_HELP) {
        if (help_key(a->help, is_key, ch) == OVERLAY_CLOSE) a->overlay = OV_NONE;
        return;
    }
    char cmd[64];
    int r = browser_key(a->browser, is_key, ch, cmd, sizeof cmd);
    if (r == OVERLAY_CLOSE) a->overlay = OV_NONE;
    if (r == OVERLAY_LOAD) {
        a->overlay = OV_NONE;
        char *line = strdup(cmd);
        if (line) submit(a, line);
        free(line);
    }
}

/* ESC: alone it closes what is open; followed by a key it is an Alt chord. */
static void escape_key(struct app *a)
{
    wint_t ch;
    timeout(0);
    int r = get_wch(&ch);
    if (r == ERR) {
        if (a->overlay == OV_BROWSER) overlay_key(a, false, 27); /* it may go back a step */
        else if (a->overlay != OV_NONE) a->overlay = OV_NONE;
        else a->msg[0] = '\0';
        a->dirty = true;
        return;
    }
    bool is_key = r == KEY_CODE_YES;
    if (a->overlay != OV_NONE) {
        overlay_key(a, is_key, 27);
        return;
    }
    if (!is_key && (ch == L'p' || ch == L'P')) {
        act_panels(a);
        a->dirty = true;
        return;
    }
    if (input_alt_key(a->input, is_key, ch)) take_line(a);
    a->dirty = true;
}

static void handle_key(struct app *a, bool is_key, wint_t ch)
{
    if (is_key && ch == KEY_RESIZE) {
        a->dirty = true;
        return;
    }
    if (is_key && ch == KEY_MOUSE) {
        mouse_event(a);
        return;
    }
    if (is_key && (ch == INPUT_KEY_PASTE_BEGIN || ch == INPUT_KEY_PASTE_END)) {
        input_paste(a->input, ch == INPUT_KEY_PASTE_BEGIN);
        return;
    }
    if (!is_key && ch == 27) {
        escape_key(a);
        return;
    }
    a->dirty = true;
    if (a->overlay != OV_NONE) {
        overlay_key(a, is_key, ch);
        return;
    }
    if (run_binding(a, is_key, ch)) return;
    if (input_key(a->input, is_key, ch)) take_line(a);
}

/* ---- drawing ------------------------------------------------------------------- */

static void draw_too_small(void)
{
    const char *m = "terminal too small";
    char need[64];
    snprintf(need, sizeof need, "need %dx%d, have %dx%d", LAYOUT_MIN_COLS, LAYOUT_MIN_LINES, COLS, LINES);
    ui_text(LINES / 2 - 1, 1, COLS - 2, ROLE_WARNING, m);
    ui_text(LINES / 2, 1, COLS - 2, ROLE_PANEL_LABEL, need);
}

static void draw(struct app *a)
{
    erase();
    /* the input's height depends on its width, which the layout decides */
    struct layout *L = &a->layout;
    layout_compute(L, LINES, COLS, 1, panels_on(a));
    if (L->too_small) {
        draw_too_small();
        curs_set(0);
        refresh();
        a->dirty = false;
        return;
    }
    int rows = input_rows(a->input, L->input.w - 2);
    if (rows > 1) layout_compute(L, LINES, COLS, rows, panels_on(a));
    bool busy = a->view.state != CHAT_IDLE;
    struct status_info si = {&a->view, a->have_stats ? &a->st : NULL, theme_current(), theme_colour_off(),
                             L->panels_shown};
    statusbar_draw(L->status, &si);
    if (L->chat_shown) chat_pane_draw(a->pane, L->chat, &a->view, a->in_view);
    for (int i = 0; L->panels_shown && i < PANEL_COUNT; i++)
        if (L->panels[i].h > 0) panel_draw_boxed(a->panels[i], L->panels[i]);
    char placeholder[160];
    snprintf(placeholder, sizeof placeholder, "%s",
             busy ? "type ahead; Enter sends once the reply is done"
                  : "message, or /command \u00b7 Tab completes \u00b7 ? help");
    int cy, cx;
    input_draw(a->input, L->input, placeholder, busy, &cy, &cx);
    const char *comp = input_message(a->input);
    if (comp[0]) message_draw(L->message, comp, false);
    else message_draw(L->message, a->msg, a->msg_error);
    enum hints_mode hm = a->overlay == OV_HELP      ? HINTS_HELP
                         : a->overlay == OV_BROWSER ? browser_hints(a->browser)
                                                    : HINTS_CHAT;
    hints_draw(L->hints, hm, busy, L->panels_shown);
    if (a->overlay == OV_HELP) {
        help_draw(a->help, LINES, COLS);
        curs_set(0);
    } else if (a->overlay == OV_BROWSER) {
        browser_draw(a->browser, LINES, COLS, &cy, &cx); /* places the cursor */
    } else {
        curs_set(1);
        move(cy, cx);
    }
    refresh();
    a->dirty = false;
}

/* ---- the loop -------------------------------------------------------------------- */

static void poll_signals(struct app *a)
{
    if (sig_int) {
        sig_int = 0;
        interrupt(a);
    }
    if (sig_quit) {
        a->quit = true;
        a->exit_code = 128 + (int)sig_quit;
    }
}

static void app_free(struct app *a)
{
    for (int i = 0; i < PANEL_COUNT; i++) panel_free(a->panels[i]);
    chat_pane_free(a->pane);
    input_free(a->input);
    help_free(a->help);
    browser_free(a->browser);
    if (a->have_view) chat_view_release(&a->view);
    free(a->orig);
    free(a->sorted);
    free(a->in_view);
}

static bool app_init(struct app *a, struct chat *c, const struct tui_opts *o)
{
    memset(a, 0, sizeof *a);
    a->chat = c;
    a->panels_choice = PANELS_AUTO;
    a->dirty = true;
    for (int i = 0; i < PANEL_COUNT; i++)
        if (!(a->panels[i] = panel_new(panel_registry[i]))) return false;
    a->pane = chat_pane_new();
    a->input = input_new(c);
    a->help = help_new();
    struct browser_opts bo = {o->db_path, o->no_history, o->threads, o->backend};
    a->browser = browser_new(c, &bo);
    return a->pane && a->input && a->help && a->browser && grow_orig(a, 1024);
}

static void start_theme(struct app *a, const struct tui_opts *o)
{
    const char *name = o->theme;
    if (!name || !*name) name = a->view.theme_name && *a->view.theme_name ? a->view.theme_name : "default";
    if (!apply_theme(a, name)) {
        char why[sizeof a->msg];
        snprintf(why, sizeof why, "%s", a->msg);
        apply_theme(a, "default");
        set_message(a, true, "%s", why);
    }
}

int tui_run(struct chat *c, const struct tui_opts *o)
{
    static bool atexit_done;
    if (!atexit_done) atexit_done = atexit(at_exit_restore) == 0;
    signals_install();
    stderr_capture_begin();
    if (!curses_start(o)) {
        terminal_restore();
        signals_restore();
        stderr_capture_end();
        fprintf(stderr, "ancora: cannot start the full-screen interface (TERM=%s); try `ancora repl`\n",
                getenv("TERM") ? getenv("TERM") : "");
        return 1;
    }
    theme_init(o->no_color);
    ui_init_glyphs();
    struct app a;
    if (!app_init(&a, c, o)) {
        app_free(&a);
        terminal_restore();
        signals_restore();
        stderr_capture_end();
        fprintf(stderr, "ancora: out of memory starting the interface\n");
        return 1;
    }
    refresh_data(&a);
    start_theme(&a, o);
    while (!a.quit) {
        timeout(a.view.state != CHAT_IDLE ? TICK_BUSY_MS : TICK_IDLE_MS);
        wint_t ch;
        int r = get_wch(&ch);
        for (int n = 0; r != ERR && !a.quit && n < KEYS_PER_TICK; n++) {
            handle_key(&a, r == KEY_CODE_YES, ch);
            timeout(0);
            r = a.quit ? ERR : get_wch(&ch);
        }
        poll_signals(&a);
        refresh_data(&a);
        if (a.overlay == OV_BROWSER && browser_tick(a.browser)) a.dirty = true;
        if (a.dirty && !a.quit) draw(&a);
    }
    int rc = a.exit_code;
    /* leave a blank alternate screen: some terminals (tmux after a resize)
       let part of it show through when the normal screen comes back */
    erase();
    refresh();
    app_free(&a);
    terminal_restore();
    signals_restore();
    stderr_capture_end();
    return rc;
}
