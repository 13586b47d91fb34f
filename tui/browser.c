/* browser.c — the saved-sessions browser (/sessions, F3): the list beside
 * a preview of the selected conversation's latest messages; a filter
 * typed after / (titles, models, and every message through the store's
 * full-text index), a model filter (m), two orders (s); rename (t) and
 * delete with confirmation (d) in place; Enter opens the review screen
 * (review.c), r resumes the session in the chat (the main loop submits
 * "/load ID"). Reads the store through history.h on a connection of its
 * own, and the chat through chat.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "screens.h"

#define FTS_LIMIT 2000 /* messages the filter's full-text search looks at */

enum prompt { P_NONE, P_FILTER, P_RENAME, P_DELETE };
enum order { BY_ACTIVITY, BY_LENGTH };

struct browser {
    struct chat *chat;             /* borrowed */
    char *db_path;
    bool no_history;
    int threads, backend;
    struct hist_db *db;            /* owned; NULL: not available */
    char db_err[256];
    struct hist_session *all;      /* owned, newest activity first */
    size_t n_all;
    size_t *rows;                  /* indices into all, filtered and sorted */
    size_t n;
    char filter[256];
    char *model;                   /* model filter; NULL: every model */
    enum order order;
    size_t sel, top;
    int page;
    enum prompt prompt;
    char edit[256];                /* the title being typed */
    char note[320];
    bool note_err;
    int64_t pv_id;                 /* the preview's session */
    struct hist_message *pv;
    size_t n_pv;
    struct review *review;
    bool in_review;
};

struct browser *browser_new(struct chat *c, const struct browser_opts *o)
{
    struct browser *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->chat = c;
    b->no_history = o->no_history;
    b->threads = o->threads;
    b->backend = o->backend;
    if (o->db_path && !(b->db_path = strdup(o->db_path))) {
        free(b);
        return NULL;
    }
    return b;
}

static void preview_clear(struct browser *b)
{
    hist_msg_list_free(b->pv, b->n_pv);
    b->pv = NULL;
    b->n_pv = 0;
    b->pv_id = 0;
}

void browser_free(struct browser *b)
{
    if (!b) return;
    review_free(b->review);
    preview_clear(b);
    hist_session_list_free(b->all, b->n_all);
    free(b->rows);
    free(b->model);
    hist_close(b->db);
    free(b->db_path);
    free(b);
}

/* ---- the list ------------------------------------------------------------- */

static bool open_db(struct browser *b)
{
    if (b->db) return true;
    if (b->no_history) {
        snprintf(b->db_err, sizeof b->db_err, "the history is off (--no-history)");
        return false;
    }
    char *path = b->db_path ? strdup(b->db_path) : hist_default_path();
    if (!path) {
        snprintf(b->db_err, sizeof b->db_err, "no home folder: the history is not available");
        return false;
    }
    b->db = hist_open(path, b->db_err, sizeof b->db_err);
    free(path);
    if (b->db && !(b->review = review_new(b->chat, b->db, b->threads, b->backend))) {
        hist_close(b->db);
        b->db = NULL;
    }
    return b->db != NULL;
}

static bool has_id(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* Sessions with a message that holds the filter (newest FTS_LIMIT hits). */
static int64_t *text_matches(struct browser *b, size_t *n_out)
{
    struct hist_hit *hits = NULL;
    size_t nh = 0, n = 0;
    *n_out = 0;
    if (hist_search(b->db, b->filter, "", "", FTS_LIMIT, &hits, &nh) != HIST_OK) return NULL;
    int64_t *ids = malloc((nh ? nh : 1) * sizeof *ids);
    for (size_t i = 0; ids && i < nh; i++)
        if (!has_id(ids, n, hits[i].session_id)) ids[n++] = hits[i].session_id;
    hist_hits_free(hits, nh);
    *n_out = n;
    return ids;
}

static bool keep_row(const struct browser *b, const struct hist_session *s, const int64_t *ids,
                     size_t n_ids)
{
    if (b->model && strcmp(s->model_name, b->model) != 0) return false;
    if (!b->filter[0]) return true;
    return strcasestr(s->title, b->filter) || strcasestr(s->model_name, b->filter) ||
           has_id(ids, n_ids, s->id);
}

static const struct hist_session *by_len_base;
static int cmp_length(const void *x, const void *y)
{
    const struct hist_session *a = &by_len_base[*(const size_t *)x], *c = &by_len_base[*(const size_t *)y];
    if (a->n_messages != c->n_messages) return a->n_messages < c->n_messages ? 1 : -1;
    return (*(const size_t *)x > *(const size_t *)y) - (*(const size_t *)x < *(const size_t *)y);
}

static int64_t selected_id(const struct browser *b)
{
    return b->sel < b->n ? b->all[b->rows[b->sel]].id : 0;
}

/* Read the list again, filter and sort it; the same session stays selected. */
static void reload(struct browser *b)
{
    int64_t keep = selected_id(b);
    hist_session_list_free(b->all, b->n_all);
    free(b->rows);
    b->all = NULL;
    b->rows = NULL;
    b->n_all = b->n = 0;
    if (!open_db(b)) return;
    if (hist_session_list(b->db, 0, &b->all, &b->n_all) != HIST_OK) {
        snprintf(b->db_err, sizeof b->db_err, "%s", hist_errmsg(b->db));
        return;
    }
    size_t n_ids = 0;
    int64_t *ids = b->filter[0] ? text_matches(b, &n_ids) : NULL;
    b->rows = malloc((b->n_all ? b->n_all : 1) * sizeof *b->rows);
    for (size_t i = 0; b->rows && i < b->n_all; i++)
        if (keep_row(b, &b->all[i], ids, n_ids)) b->rows[b->n++] = i;
    free(ids);
    by_len_base = b->all;
    if (b->order == BY_LENGTH && b->n) qsort(b->rows, b->n, sizeof *b->rows, cmp_length);
    b->sel = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->all[b->rows[i]].id == keep) b->sel = i;
}

void browser_open(struct browser *b)
{
    b->filter[0] = '\0';
    free(b->model);
    b->model = NULL;
    b->prompt = P_NONE;
    b->note[0] = '\0';
    b->in_review = false;
    b->sel = b->top = 0;
    preview_clear(b);
    reload(b);
    b->sel = 0;
}

static void move_sel(struct browser *b, long d)
{
    long s = (long)b->sel + d;
    if (s < 0 || b->n == 0) s = 0;
    else if (s >= (long)b->n) s = (long)b->n - 1;
    b->sel = (size_t)s;
}

/* The next model filter: every model, then each model in turn. */
static void cycle_model(struct browser *b)
{
    const char *next = NULL;
    bool after = b->model == NULL;
    for (size_t i = 0; i < b->n_all && !next; i++) {
        const char *m = b->all[i].model_name;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) seen = strcmp(b->all[k].model_name, m) == 0;
        if (seen) continue;
        if (after) next = m;
        else if (strcmp(m, b->model) == 0) after = true;
    }
    char *n = next ? strdup(next) : NULL;
    free(b->model);
    b->model = n;
    reload(b);
}

/* ---- keys ------------------------------------------------------------------- */

static void set_note(struct browser *b, bool err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_note(struct browser *b, bool err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->note, sizeof b->note, fmt, ap);
    va_end(ap);
    b->note_err = err;
}

/* Edit a UTF-8 line: add a character, or remove the last one. */
static bool text_key(char *s, size_t cap, bool is_key, wint_t ch)
{
    size_t n = strlen(s);
    if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 127 || ch == 8))) {
        while (n > 0 && ((unsigned char)s[n - 1] & 0xC0) == 0x80) n--;
        if (n > 0) n--;
        s[n] = '\0';
        return true;
    }
    if (!is_key && ch == 21) { /* Ctrl-U */
        s[0] = '\0';
        return true;
    }
    if (is_key || ch < 32) return false;
    char mb[8];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t k = wcrtomb(mb, (wchar_t)ch, &st);
    if (k == (size_t)-1 || n + k + 1 > cap) return true;
    memcpy(s + n, mb, k);
    s[n + k] = '\0';
    return true;
}

static bool is_enter(bool is_key, wint_t ch)
{
    return (is_key && ch == KEY_ENTER) || (!is_key && (ch == L'\r' || ch == L'\n'));
}

static void filter_key(struct browser *b, bool is_key, wint_t ch)
{
    if (!is_key && (ch == 27 || ch == 3)) {
        b->filter[0] = '\0';
        b->prompt = P_NONE;
        reload(b);
    } else if (is_enter(is_key, ch) || (!is_key && ch == L'\t') || (is_key && ch == KEY_DOWN)) {
        b->prompt = P_NONE;
    } else if (text_key(b->filter, sizeof b->filter, is_key, ch)) {
        reload(b);
    }
}

static void rename_done(struct browser *b)
{
    int64_t id = selected_id(b);
    struct chat_view v;
    chat_view_get(b->chat, &v);
    bool current = v.session_id == id;
    chat_view_release(&v);
    if (!b->edit[0]) {
        set_note(b, true, "a title cannot be empty");
    } else if (current) { /* the chat holds this title too: let it change both */
        char line[300], reply[512];
        snprintf(line, sizeof line, "/title %s", b->edit);
        chat_submit(b->chat, line, reply, sizeof reply);
        set_note(b, false, "%s", reply);
    } else if (hist_session_set_title(b->db, id, b->edit) != HIST_OK) {
        set_note(b, true, "rename failed: %s", hist_errmsg(b->db));
    } else {
        set_note(b, false, "session %lld renamed", (long long)id);
    }
    reload(b);
}

static void delete_done(struct browser *b, bool yes)
{
    int64_t id = selected_id(b);
    b->prompt = P_NONE;
    if (!yes) {
        set_note(b, false, "not deleted");
        return;
    }
    if (hist_session_delete(b->db, id) != HIST_OK) {
        set_note(b, true, "delete failed: %s", hist_errmsg(b->db));
        return;
    }
    set_note(b, false, "session %lld deleted", (long long)id);
    preview_clear(b);
    reload(b);
}

static void ask_delete(struct browser *b)
{
    struct chat_view v;
    chat_view_get(b->chat, &v);
    bool current = v.session_id == selected_id(b);
    chat_view_release(&v);
    if (current) set_note(b, true, "this is the conversation open in the chat (/new first)");
    else b->prompt = P_DELETE;
}

static int open_review(struct browser *b)
{
    char err[256];
    if (review_open(b->review, selected_id(b), err, sizeof err) != 0) set_note(b, true, "%s", err);
    else b->in_review = true;
    return OVERLAY_STAY;
}

static int resume(struct browser *b, int64_t id, char *cmd, size_t cap)
{
    snprintf(cmd, cap, "/load %lld", (long long)id);
    return OVERLAY_LOAD;
}

static int list_key(struct browser *b, bool is_key, wint_t ch, char *cmd, size_t cap)
{
    if (is_key) {
        switch (ch) {
        case KEY_UP: move_sel(b, -1); break;
        case KEY_DOWN: move_sel(b, 1); break;
        case KEY_PPAGE: move_sel(b, -(long)(b->page ? b->page : 10)); break;
        case KEY_NPAGE: move_sel(b, b->page ? b->page : 10); break;
        case KEY_HOME: b->sel = 0; break;
        case KEY_END: move_sel(b, (long)b->n); break;
        case KEY_DC: if (b->n) ask_delete(b); break;
        case KEY_ENTER: return b->n ? open_review(b) : OVERLAY_STAY;
        case KEY_F(3): return OVERLAY_CLOSE;
        default: break;
        }
        return OVERLAY_STAY;
    }
    if (ch == 27 || ch == 3 || ch == L'q') return OVERLAY_CLOSE;
    if (is_enter(false, ch)) return b->n ? open_review(b) : OVERLAY_STAY;
    switch (ch) {
    case L'/': b->prompt = P_FILTER; break;
    case L'm': cycle_model(b); break;
    case L's':
        b->order = b->order == BY_ACTIVITY ? BY_LENGTH : BY_ACTIVITY;
        reload(b);
        break;
    case L'r': return b->n ? resume(b, selected_id(b), cmd, cap) : OVERLAY_STAY;
    case L't':
        if (!b->n) break;
        snprintf(b->edit, sizeof b->edit, "%s", b->all[b->rows[b->sel]].title);
        b->prompt = P_RENAME;
        break;
    case L'd': if (b->n) ask_delete(b); break;
    case L'k': move_sel(b, -1); break;
    case L'j': move_sel(b, 1); break;
    default: break;
    }
    return OVERLAY_STAY;
}

int browser_key(struct browser *b, bool is_key, wint_t ch, char *cmd, size_t cap)
{
    if (b->in_review) {
        int r = review_key(b->review, is_key, ch);
        if (r == REVIEW_BACK) b->in_review = false;
        if (r == REVIEW_RESUME) return resume(b, review_session(b->review), cmd, cap);
        return OVERLAY_STAY;
    }
    b->note[0] = '\0';
    switch (b->prompt) {
    case P_FILTER: filter_key(b, is_key, ch); return OVERLAY_STAY;
    case P_DELETE: delete_done(b, !is_key && (ch == L'y' || ch == L'Y')); return OVERLAY_STAY;
    case P_RENAME:
        if (!is_key && (ch == 27 || ch == 3)) b->prompt = P_NONE;
        else if (is_enter(is_key, ch)) b->prompt = P_NONE, rename_done(b);
        else text_key(b->edit, sizeof b->edit, is_key, ch);
        return OVERLAY_STAY;
    default: return list_key(b, is_key, ch, cmd, cap);
    }
}

bool browser_tick(struct browser *b) { return b->in_review && review_tick(b->review); }

enum hints_mode browser_hints(struct browser *b)
{
    if (b->in_review) return review_hints(b->review);
    switch (b->prompt) {
    case P_FILTER: return HINTS_BROWSER_FILTER;
    case P_RENAME: return HINTS_BROWSER_RENAME;
    case P_DELETE: return HINTS_BROWSER_DELETE;
    default: return b->n ? HINTS_BROWSER : HINTS_BROWSER_EMPTY;
    }
}

/* ---- drawing ------------------------------------------------------------------ */

static const char *title_of(const struct hist_session *s) { return s->title[0] ? s->title : "(untitled)"; }

/* Columns by width: id, [last active], msgs, [model], title. */
static void draw_row(int y, int x, int w, const struct hist_session *s, bool sel, bool head)
{
    enum theme_role val = head ? ROLE_PANEL_DIM : sel ? ROLE_SELECTION : ROLE_PANEL_VALUE;
    enum theme_role dim = head ? ROLE_PANEL_DIM : sel ? ROLE_SELECTION : ROLE_PANEL_LABEL;
    if (sel) ui_fill(y, x, w, ROLE_SELECTION);
    char id[24], msgs[24], when[32];
    snprintf(id, sizeof id, head ? "    id" : "%6lld", head ? 0LL : (long long)s->id);
    snprintf(msgs, sizeof msgs, head ? " msgs" : "%5lld", head ? 0LL : (long long)s->n_messages);
    if (!head) hist_format_time(s->updated_ms, false, when, sizeof when);
    int c = ui_text(y, x, w, dim, id) + 2;
    if (w >= 70) {
        ui_text(y, x + c, 16, dim, head ? "last active" : when);
        c += 18;
    }
    c += ui_text(y, x + c, w - c, dim, msgs) + 2;
    if (w >= 90) {
        ui_text_ell(y, x + c, 18, dim, head ? "model" : s->model_name);
        c += 20;
    }
    ui_text_ell(y, x + c, w - c, val, head ? "title" : title_of(s));
}

static void draw_list(struct browser *b, struct rect r)
{
    draw_row(r.y, r.x, r.w, NULL, false, true);
    int list_y = r.y + 1, list_h = r.h - 1;
    b->page = list_h > 1 ? list_h - 1 : 1;
    if (b->n == 0) {
        ui_text(list_y, r.x, r.w, ROLE_PANEL_DIM,
                !b->db ? b->db_err : b->filter[0] || b->model ? "no session matches" : "no saved sessions yet");
        return;
    }
    if (b->sel < b->top) b->top = b->sel;
    if (list_h > 0 && b->sel >= b->top + (size_t)list_h) b->top = b->sel - (size_t)list_h + 1;
    for (int i = 0; i < list_h && b->top + (size_t)i < b->n; i++) {
        size_t k = b->top + (size_t)i;
        draw_row(list_y + i, r.x, r.w, &b->all[b->rows[k]], k == b->sel, false);
    }
}

/* One preview line: a message's label, or a wrapped line of its text. */
struct pv_ctx {
    struct rect r;
    int skip, y;                   /* lines still to skip; the next row */
    const char *text;
    enum theme_role role;
};

static void pv_line(void *ctx, size_t off, size_t len, bool first)
{
    struct pv_ctx *p = ctx;
    (void)first;
    if (p->skip > 0) p->skip--;
    else if (p->y < p->r.y + p->r.h) ui_textn(p->y++, p->r.x + 2, p->r.w - 2, p->role, p->text + off, len);
}

static void pv_count(void *ctx, size_t off, size_t len, bool first)
{
    (void)off, (void)len, (void)first;
    (*(int *)ctx)++;
}

static enum theme_role body_role(enum hist_role r)
{
    return r == HIST_ROLE_USER ? ROLE_CHAT_USER : r == HIST_ROLE_ASSISTANT ? ROLE_CHAT_ASSISTANT : ROLE_CHAT_SYSTEM;
}

static enum theme_role label_role(enum hist_role r)
{
    return r == HIST_ROLE_USER ? ROLE_CHAT_USER_LABEL
           : r == HIST_ROLE_ASSISTANT ? ROLE_CHAT_ASSISTANT_LABEL
                                      : ROLE_CHAT_SYSTEM;
}

/* Lines a message takes in the preview: its label, its text, a blank. */
static int pv_height(const char *clean, int w)
{
    int n = 2;
    ui_wrap(clean, strlen(clean), w, pv_count, &n);
    return n;
}

/* The selected session's latest messages, wrapped, from the top of R;
 * the oldest of them cut at its top when they do not all fit. */
static void draw_preview(struct browser *b, struct rect r)
{
    int64_t id = selected_id(b);
    if (id != b->pv_id) {
        preview_clear(b);
        if (id && hist_msg_list(b->db, id, &b->pv, &b->n_pv) == HIST_OK) b->pv_id = id;
    }
    if (b->n_pv == 0) {
        if (b->n) ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "(no messages)");
        return;
    }
    size_t first = b->n_pv;
    int total = 0;
    while (first > 0 && total < r.h) {
        char *t = hist_text_clean(b->pv[first - 1].content, HIST_CLEAN_MULTILINE);
        if (!t) break;
        total += pv_height(t, r.w - 2);
        free(t);
        first--;
    }
    struct pv_ctx c = {r, total > r.h ? total - r.h : 0, r.y, NULL, ROLE_NORMAL};
    const char *model = b->all[b->rows[b->sel]].model_name;
    for (size_t i = first; i < b->n_pv && c.y < r.y + r.h; i++) {
        const struct hist_message *m = &b->pv[i];
        char *t = hist_text_clean(m->content, HIST_CLEAN_MULTILINE);
        if (!t) break;
        const char *who = m->role == HIST_ROLE_USER ? "You"
                          : m->role == HIST_ROLE_ASSISTANT ? (model[0] ? model : "Model")
                                                           : "System prompt";
        if (c.skip > 0) c.skip--;
        else ui_text(c.y++, r.x, r.w, label_role(m->role), who);
        c.text = t;
        c.role = body_role(m->role);
        ui_wrap(t, strlen(t), r.w - 2, pv_line, &c);
        if (c.skip > 0) c.skip--;
        else c.y++;
        free(t);
    }
}

static void draw_top_line(struct browser *b, struct rect t, int *cy, int *cx)
{
    int n = ui_text(t.y, t.x, t.w, ROLE_PANEL_LABEL, "Filter: ");
    int fw = ui_text(t.y, t.x + n, t.w - n, ROLE_INPUT, b->filter);
    if (b->prompt == P_FILTER) *cy = t.y, *cx = t.x + n + fw;
    else if (!b->filter[0]) ui_text(t.y, t.x + n, t.w - n, ROLE_INPUT_PLACEHOLDER, "/ to type");
    char info[200];
    snprintf(info, sizeof info, "%s \u00b7 model: %.60s \u00b7 %zu session%s",
             b->order == BY_ACTIVITY ? "by last activity" : "by length", b->model ? b->model : "all", b->n,
             b->n == 1 ? "" : "s");
    if (n + fw + 12 + ui_width(info) <= t.w) ui_text_right(t.y, t.x, t.w, ROLE_PANEL_DIM, info);
}

static void draw_bottom(struct browser *b, struct rect t, int *cy, int *cx)
{
    int y = t.y + t.h - 1;
    bool uni = ui_unicode();
    if (b->prompt == P_RENAME) {
        int n = ui_text(y, t.x, t.w, ROLE_INPUT_PROMPT, "New title: ");
        n += ui_text(y, t.x + n, t.w - n, ROLE_INPUT, b->edit);
        *cy = y, *cx = t.x + n;
    } else if (b->prompt == P_DELETE) {
        const struct hist_session *s = &b->all[b->rows[b->sel]];
        char q[400];
        snprintf(q, sizeof q, "Delete session %lld \"%s\" (%lld messages)? y deletes, any other key keeps it",
                 (long long)s->id, title_of(s), (long long)s->n_messages);
        ui_text(y, t.x, t.w, ROLE_WARNING, q);
    } else if (b->note[0]) {
        ui_text(y, t.x, t.w, b->note_err ? ROLE_WARNING : ROLE_MESSAGE, b->note);
    } else if (b->prompt == P_FILTER) {
        ui_text(y, t.x, t.w, ROLE_PANEL_DIM, "type to filter (titles, models, messages) \u00b7 Enter keeps it \u00b7 Esc clears");
    } else {
        ui_text(y, t.x, t.w, ROLE_PANEL_DIM,
                t.w >= 100 ? "Enter reviews \u00b7 r resumes \u00b7 / filter \u00b7 m model \u00b7 s sort \u00b7 "
                             "t rename \u00b7 d delete \u00b7 \u2191\u2193 PgUp PgDn select \u00b7 q back"
                : uni ? "Enter review \u00b7 r resume \u00b7 / filter \u00b7 m s t d \u00b7 q back"
                      : "Enter review - r resume - / filter - m s t d - q back");
    }
}

void browser_draw(struct browser *b, int lines, int cols, int *cy, int *cx)
{
    struct rect box = {1, 0, lines - 3, cols};
    if (box.w < 30 || box.h < 6) return;
    if (b->in_review) {
        *cy = -1;
        review_draw(b->review, box, cy, cx);
        if (*cy < 0) curs_set(0);
        else move(*cy, *cx);
        return;
    }
    ui_fill_rect(box, ROLE_NORMAL);
    struct rect in = ui_box(box, "Saved sessions", ROLE_PANEL_BORDER, ROLE_PANEL_TITLE);
    struct rect t = {in.y, in.x + 1, in.h, in.w - 2};
    *cy = -1;
    draw_top_line(b, t, cy, cx);
    struct rect body = {t.y + 2, t.x, t.h - 3, t.w};
    struct rect list = body, pv = body;
    if (body.w >= 100) { /* side by side */
        list.w = body.w * 11 / 20;
        pv.x = list.x + list.w + 2;
        pv.w = body.w - list.w - 2;
        for (int y = body.y; y < body.y + body.h; y++) /* dashed: not a box's border */
            ui_text(y, list.x + list.w, 1, ROLE_PANEL_BORDER, ui_unicode() ? "\u2506" : ":");
    } else { /* stacked: the preview below */
        list.h = body.h / 2 > 3 ? body.h / 2 : 3;
        pv.y = list.y + list.h + 1;
        pv.h = body.h - list.h - 1;
        ui_hline(pv.y - 1, body.x, body.w, ROLE_PANEL_BORDER);
    }
    draw_list(b, list);
    if (b->db && pv.h > 0 && pv.w > 8) draw_preview(b, pv);
    draw_bottom(b, t, cy, cx);
    if (*cy < 0) curs_set(0);
    else {
        curs_set(1);
        move(*cy, *cx);
    }
}
