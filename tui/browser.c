/* browser.c — the saved-sessions browser (/sessions, F3): a list from
 * chat_list_sessions, searched as you type, Enter resumes the selected
 * session (the main loop submits "/load ID"), Esc goes back. Talks to the
 * chat only through chat.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "screens.h"

struct browser {
    struct chat *chat;        /* borrowed */
    char search[256];
    size_t search_len;
    struct chat_session_row *rows; /* owned */
    size_t n;
    size_t sel, top;
    int page;
    bool failed;
};

struct browser *browser_new(struct chat *c)
{
    struct browser *b = calloc(1, sizeof *b);
    if (b) b->chat = c;
    return b;
}

static void reload(struct browser *b)
{
    chat_session_rows_free(b->rows, b->n);
    b->rows = NULL;
    b->n = 0;
    b->failed = chat_list_sessions(b->chat, b->search, &b->rows, &b->n) != 0;
    if (b->sel >= b->n) b->sel = b->n ? b->n - 1 : 0;
}

void browser_free(struct browser *b)
{
    if (!b) return;
    chat_session_rows_free(b->rows, b->n);
    free(b);
}

void browser_open(struct browser *b)
{
    b->search[0] = '\0';
    b->search_len = 0;
    b->sel = b->top = 0;
    reload(b);
}

/* Remove the last character (not just a byte) of the search text. */
static void search_backspace(struct browser *b)
{
    if (!b->search_len) return;
    size_t i = b->search_len - 1;
    while (i > 0 && ((unsigned char)b->search[i] & 0xC0) == 0x80) i--;
    b->search_len = i;
    b->search[i] = '\0';
}

static void search_add(struct browser *b, wint_t ch)
{
    char mb[8];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = wcrtomb(mb, (wchar_t)ch, &st);
    if (n == (size_t)-1 || b->search_len + n + 1 > sizeof b->search) return;
    memcpy(b->search + b->search_len, mb, n);
    b->search_len += n;
    b->search[b->search_len] = '\0';
}

static void move_sel(struct browser *b, long d)
{
    long s = (long)b->sel + d;
    if (s < 0) s = 0;
    if (b->n == 0) s = 0;
    else if (s >= (long)b->n) s = (long)b->n - 1;
    b->sel = (size_t)s;
}

int browser_key(struct browser *b, bool is_key, wint_t ch, char *cmd, size_t cap)
{
    if (is_key) {
        switch (ch) {
        case KEY_UP: move_sel(b, -1); break;
        case KEY_DOWN: move_sel(b, 1); break;
        case KEY_PPAGE: move_sel(b, -(long)(b->page ? b->page : 10)); break;
        case KEY_NPAGE: move_sel(b, b->page ? b->page : 10); break;
        case KEY_HOME: b->sel = 0; break;
        case KEY_END: move_sel(b, (long)b->n); break;
        case KEY_BACKSPACE:
            search_backspace(b);
            reload(b);
            break;
        case KEY_ENTER: goto enter;
        case KEY_F(3): return OVERLAY_CLOSE;
        default: break;
        }
        return OVERLAY_STAY;
    }
    if (ch == 27 || ch == 3) return OVERLAY_CLOSE;
    if (ch == L'\r' || ch == L'\n') goto enter;
    if (ch == 127 || ch == 8) {
        search_backspace(b);
        reload(b);
    } else if (ch == 21) { /* Ctrl-U */
        b->search[0] = '\0';
        b->search_len = 0;
        reload(b);
    } else if (ch >= 32) {
        search_add(b, ch);
        b->sel = 0;
        reload(b);
    }
    return OVERLAY_STAY;
enter:
    if (b->n == 0) return OVERLAY_STAY;
    snprintf(cmd, cap, "/load %lld", (long long)b->rows[b->sel].id);
    return OVERLAY_LOAD;
}

static void draw_row(int y, int x, int w, const struct chat_session_row *r, bool sel)
{
    enum theme_role role = sel ? ROLE_SELECTION : ROLE_PANEL_VALUE;
    enum theme_role dim = sel ? ROLE_SELECTION : ROLE_PANEL_LABEL;
    if (sel) ui_fill(y, x, w, ROLE_SELECTION);
    char id[24], msgs[24];
    snprintf(id, sizeof id, "%6lld", (long long)r->id);
    snprintf(msgs, sizeof msgs, "%5lld", (long long)r->n_messages);
    int c = 0;
    c += ui_text(y, x + c, w - c, dim, id) + 2;
    if (w >= 60) {
        ui_text(y, x + c, 16, dim, r->when ? r->when : "");
        c = 26;
    }
    c += ui_text(y, x + c, w - c, dim, msgs) + 2;
    if (w >= 80) {
        ui_text(y, x + c, 18, dim, r->model ? r->model : "");
        c += 20;
    }
    ui_text(y, x + c, w - c, role, r->title ? r->title : "");
}

void browser_draw(struct browser *b, int lines, int cols, int *cy, int *cx)
{
    struct rect box = {1, 0, lines - 3, cols};
    if (box.w < 30 || box.h < 6) return;
    ui_fill_rect(box, ROLE_NORMAL);
    struct rect in = ui_box(box, "Saved sessions", ROLE_PANEL_TITLE, ROLE_PANEL_TITLE);
    struct rect t = {in.y, in.x + 1, in.h, in.w - 2};
    int n = ui_text(t.y, t.x, t.w, ROLE_PANEL_LABEL, "Search: ");
    int sw = ui_text(t.y, t.x + n, t.w - n, ROLE_INPUT, b->search);
    *cy = t.y;
    *cx = t.x + n + sw;
    char count[48];
    snprintf(count, sizeof count, "%zu session%s", b->n, b->n == 1 ? "" : "s");
    if (n + sw + ui_width(count) + 2 <= t.w) ui_text_right(t.y, t.x, t.w, ROLE_PANEL_DIM, count);
    /* column heads */
    int c = 0, hy = t.y + 2;
    c += ui_text(hy, t.x, t.w, ROLE_PANEL_DIM, "    id") + 2;
    if (t.w >= 60) {
        ui_text(hy, t.x + c, 16, ROLE_PANEL_DIM, "last active");
        c = 26;
    }
    c += ui_text(hy, t.x + c, t.w - c, ROLE_PANEL_DIM, " msgs") + 2;
    if (t.w >= 80) {
        ui_text(hy, t.x + c, 18, ROLE_PANEL_DIM, "model");
        c += 20;
    }
    ui_text(hy, t.x + c, t.w - c, ROLE_PANEL_DIM, "title");
    int list_y = hy + 1, list_h = t.y + t.h - 1 - list_y;
    b->page = list_h > 1 ? list_h - 1 : 1;
    if (b->n == 0) {
        ui_text(list_y, t.x, t.w, ROLE_PANEL_DIM,
                b->failed ? "the history is not available (started with --no-history, or the "
                            "database could not be opened)"
                : b->search_len ? "no session matches"
                                : "no saved sessions yet");
    }
    if (b->sel < b->top) b->top = b->sel;
    if (list_h > 0 && b->sel >= b->top + (size_t)list_h) b->top = b->sel - (size_t)list_h + 1;
    for (int i = 0; i < list_h && b->top + (size_t)i < b->n; i++)
        draw_row(list_y + i, t.x, t.w, &b->rows[b->top + (size_t)i], b->top + (size_t)i == b->sel);
    ui_text(t.y + t.h - 1, t.x, t.w, ROLE_PANEL_DIM,
            ui_unicode() ? "type to search \u00b7 \u2191\u2193 PgUp PgDn select \u00b7 Enter resumes \u00b7 Esc back"
                         : "type to search - Up/Down select - Enter resumes - Esc back");
}
