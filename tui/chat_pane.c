/* chat_pane.c — the conversation pane (see chat_pane.h). Messages are
 * wrapped once per (text, width) and cached; each wrapped line is a byte
 * range of its message, so drawing never re-splits characters. The scroll
 * position is an anchor (message, line) so arriving text and re-wrapping
 * after a resize keep the reader's place. No engine, no readline. */
#include "chat_pane.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "panel.h"

enum line_kind { LINE_HEADER, LINE_BODY, LINE_BLANK };

struct pane_line {
    size_t off, len;          /* bytes of the message text (LINE_BODY) */
    unsigned char kind;
    bool first;               /* first body line of the message */
};

struct msg_cache {
    uint64_t hash;
    size_t len;
    int width;
    int role;
    bool streaming;
    bool valid;
    struct pane_line *lines;  /* owned */
    int n, cap;
};

struct chat_pane {
    struct msg_cache *mc;     /* one per message of the last view drawn (owned) */
    size_t n_mc, cap_mc;
    bool follow;              /* stick to the end as text arrives */
    size_t anchor_msg;        /* top line = line anchor_line of message anchor_msg */
    int anchor_line;
    int top, total, height;   /* as of the last draw */
};

struct chat_pane *chat_pane_new(void)
{
    struct chat_pane *p = calloc(1, sizeof *p);
    if (p) p->follow = true;
    return p;
}

static void cache_clear(struct chat_pane *p)
{
    for (size_t i = 0; i < p->n_mc; i++) free(p->mc[i].lines);
    free(p->mc);
    p->mc = NULL;
    p->n_mc = p->cap_mc = 0;
}

void chat_pane_free(struct chat_pane *p)
{
    if (!p) return;
    cache_clear(p);
    free(p);
}

void chat_pane_reset(struct chat_pane *p)
{
    cache_clear(p);
    p->follow = true;
    p->anchor_msg = 0;
    p->anchor_line = 0;
}

/* ---- wrapping ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool add_line(struct msg_cache *mc, unsigned char kind, size_t off, size_t len, bool first)
{
    if (mc->n == mc->cap) {
        int cap = mc->cap ? mc->cap * 2 : 8;
        struct pane_line *nl = realloc(mc->lines, (size_t)cap * sizeof *nl);
        if (!nl) return false;
        mc->lines = nl;
        mc->cap = cap;
    }
    mc->lines[mc->n++] = (struct pane_line){off, len, kind, first};
    return true;
}

static void add_body(void *ctx, size_t off, size_t len, bool first)
{
    add_line(ctx, LINE_BODY, off, len, first);
}

/* Lines of one message: header (for turns), body, a blank separator. */
static void wrap_message(struct msg_cache *mc, const struct chat_msg_view *m, int w)
{
    mc->n = 0;
    bool turn = panel_msg_numbered(m->role);
    if (turn) add_line(mc, LINE_HEADER, 0, 0, false);
    int bw = w - 2 - (m->streaming ? 1 : 0); /* 2: bar or bullet; 1: the cursor */
    if (bw < 1) bw = 1;
    ui_wrap(m->text, m->len, bw, add_body, mc);
    add_line(mc, LINE_BLANK, 0, 0, false);
}

static void sync_cache(struct chat_pane *p, const struct chat_view *v, int w)
{
    if (v->n_msgs > p->cap_mc) {
        size_t cap = p->cap_mc ? p->cap_mc : 16;
        while (cap < v->n_msgs) cap *= 2;
        struct msg_cache *nm = realloc(p->mc, cap * sizeof *nm);
        if (!nm) return;
        memset(nm + p->cap_mc, 0, (cap - p->cap_mc) * sizeof *nm);
        p->mc = nm;
        p->cap_mc = cap;
    }
    for (size_t i = v->n_msgs; i < p->n_mc; i++) {
        free(p->mc[i].lines);
        memset(&p->mc[i], 0, sizeof p->mc[i]);
    }
    p->n_mc = v->n_msgs;
    for (size_t i = 0; i < v->n_msgs; i++) {
        const struct chat_msg_view *m = &v->msgs[i];
        struct msg_cache *mc = &p->mc[i];
        uint64_t h = fnv1a(m->text, m->len);
        if (mc->valid && mc->hash == h && mc->len == m->len && mc->width == w &&
            mc->role == (int)m->role && mc->streaming == m->streaming)
            continue;
        wrap_message(mc, m, w);
        mc->hash = h;
        mc->len = m->len;
        mc->width = w;
        mc->role = (int)m->role;
        mc->streaming = m->streaming;
        mc->valid = true;
    }
}

/* ---- scrolling ----------------------------------------------------------- */

/* All wrapped lines, less the blank that follows the last message (the
 * end of the conversation sits on the bottom row). */
static int total_lines(const struct chat_pane *p)
{
    int t = 0;
    for (size_t i = 0; i < p->n_mc; i++) t += p->mc[i].n;
    if (p->n_mc && p->mc[p->n_mc - 1].n && p->mc[p->n_mc - 1].lines[p->mc[p->n_mc - 1].n - 1].kind == LINE_BLANK)
        t--;
    return t;
}

static int anchor_to_top(const struct chat_pane *p)
{
    int t = 0;
    for (size_t i = 0; i < p->n_mc && i < p->anchor_msg; i++) t += p->mc[i].n;
    if (p->anchor_msg < p->n_mc) {
        int l = p->anchor_line;
        if (l >= p->mc[p->anchor_msg].n) l = p->mc[p->anchor_msg].n - 1;
        t += l > 0 ? l : 0;
    }
    return t;
}

static void top_to_anchor(struct chat_pane *p, int top)
{
    p->anchor_msg = 0;
    p->anchor_line = 0;
    for (size_t i = 0; i < p->n_mc; i++) {
        if (top < p->mc[i].n) {
            p->anchor_msg = i;
            p->anchor_line = top;
            return;
        }
        top -= p->mc[i].n;
    }
    p->anchor_msg = p->n_mc;
}

static void scroll_to(struct chat_pane *p, int top)
{
    int max = p->total - p->height;
    if (max < 0) max = 0;
    if (top >= max) {
        p->follow = true;
        return;
    }
    if (top < 0) top = 0;
    p->follow = false;
    p->top = top;
    top_to_anchor(p, top);
}

void chat_pane_scroll(struct chat_pane *p, int lines) { scroll_to(p, p->top + lines); }

void chat_pane_page(struct chat_pane *p, int pages)
{
    int page = p->height > 2 ? p->height - 2 : 1;
    scroll_to(p, p->top + pages * page);
}

void chat_pane_home(struct chat_pane *p)
{
    if (p->total <= p->height) return;
    p->follow = false;
    p->top = 0;
    top_to_anchor(p, 0);
}

void chat_pane_end(struct chat_pane *p) { p->follow = true; }
bool chat_pane_following(const struct chat_pane *p) { return p->follow; }

/* ---- drawing ------------------------------------------------------------- */

static enum theme_role body_role(enum chat_role r)
{
    switch (r) {
    case CHAT_USER: return ROLE_CHAT_USER;
    case CHAT_ASSISTANT: return ROLE_CHAT_ASSISTANT;
    case CHAT_SYSTEM: return ROLE_CHAT_SYSTEM;
    case CHAT_NOTICE: return ROLE_CHAT_NOTICE;
    default: return ROLE_CHAT_ERROR;
    }
}

static enum theme_role label_role(enum chat_role r)
{
    return r == CHAT_USER ? ROLE_CHAT_USER_LABEL
           : r == CHAT_ASSISTANT ? ROLE_CHAT_ASSISTANT_LABEL
                                 : ROLE_CHAT_SYSTEM;
}

/* The gutter: a bar beside turns, a bullet before notices and errors. */
static void draw_gutter(int y, int x, const struct chat_msg_view *m, bool first)
{
    bool uni = ui_unicode();
    if (panel_msg_numbered(m->role))
        ui_text(y, x, 1, label_role(m->role), uni ? "\u258e" : "|");
    else if (first)
        ui_text(y, x, 1, body_role(m->role),
                m->role == CHAT_ERROR ? (uni ? "\u2717" : "!") : (uni ? "\u00b7" : "-"));
}

static void draw_header(int y, int x, int w, const struct chat_view *v, size_t i, int num,
                        float in_view)
{
    const struct chat_msg_view *m = &v->msgs[i];
    const char *who = m->role == CHAT_USER ? "You"
                      : m->role == CHAT_SYSTEM ? "System prompt"
                      : v->model_name && *v->model_name ? v->model_name
                                                        : "Model";
    draw_gutter(y, x, m, false);
    int n = 2 + ui_text(y, x + 2, w - 2, label_role(m->role), who);
    char meta[96];
    int k = snprintf(meta, sizeof meta, "  #%d", num);
    /* the reply's own tokens, as the review screen and `history show` count
       them; while it streams (and for unknown counts), what it has fed */
    int64_t n_tok = m->n_gen >= 0 ? m->n_gen : m->tok_count;
    if (m->role == CHAT_ASSISTANT && n_tok > 0 && k < (int)sizeof meta)
        k += snprintf(meta + k, sizeof meta - (size_t)k, " \u00b7 %lld tok", (long long)n_tok);
    n += ui_text(y, x + n, w - n, ROLE_CHAT_META, meta);
    if (in_view >= 0 && in_view < 1) {
        char vis[48];
        if (in_view == 0) snprintf(vis, sizeof vis, " \u00b7 out of view");
        else snprintf(vis, sizeof vis, " \u00b7 %.0f%% in view", in_view * 100);
        n += ui_text(y, x + n, w - n, ROLE_CHAT_META, vis);
    }
    if (m->finish && strcmp(m->finish, "stop") != 0) {
        char fin[48];
        int f = hist_finish_from_name(m->finish);
        const char *why = f > 0 && hist_finish_label((enum hist_finish)f) ? hist_finish_label((enum hist_finish)f)
                                                                        : m->finish;
        snprintf(fin, sizeof fin, " \u00b7 %s", why);
        ui_text(y, x + n, w - n, ROLE_WARNING, fin);
    }
}

static void draw_body(int y, int x, int w, const struct chat_msg_view *m, const struct pane_line *l,
                      bool last_line)
{
    draw_gutter(y, x, m, l->first);
    int n = ui_textn(y, x + 2, w - 2, body_role(m->role), m->text + l->off, l->len);
    if (m->streaming && last_line && 2 + n < w)
        ui_text(y, x + 2 + n, 1, ROLE_CHAT_CURSOR, ui_unicode() ? "\u258d" : "_");
}

static void draw_welcome(struct rect r, const struct chat_view *v)
{
    char who[160];
    snprintf(who, sizeof who, "chatting with %s", v->model_name && *v->model_name ? v->model_name : "a model");
    const char *lines[] = {"Ancora", who, "", "Type a message and press Enter.",
                           "/help lists the commands \u00b7 F1 shows the keys"};
    int n = 5, y = r.y + (r.h - n) / 2;
    for (int i = 0; i < n; i++) {
        if (y + i < r.y || y + i >= r.y + r.h) continue;
        int tw = ui_width(lines[i]);
        int x = r.x + (r.w > tw ? (r.w - tw) / 2 : 0);
        ui_text(y + i, x, r.w, i == 0 ? ROLE_PANEL_TITLE : i == 1 ? ROLE_PANEL_LABEL : ROLE_CHAT_META,
                lines[i]);
    }
}

static void draw_scrollbar(const struct chat_pane *p, struct rect box, struct rect in)
{
    if (p->total <= in.h || in.h < 3) return;
    int thumb = in.h * in.h / p->total;
    if (thumb < 1) thumb = 1;
    int pos = (int)((long long)(in.h - thumb) * p->top / (p->total - in.h));
    for (int i = 0; i < thumb; i++)
        ui_text(in.y + pos + i, box.x + box.w - 1, 1, ROLE_PANEL_TITLE, ui_unicode() ? "\u2503" : "#");
}

void chat_pane_draw(struct chat_pane *p, struct rect box, const struct chat_view *v,
                    const float *in_view)
{
    const char *title = v->title && *v->title ? v->title : "New conversation";
    struct rect in = ui_box(box, title, ROLE_PANEL_BORDER, ROLE_PANEL_TITLE);
    if (in.h <= 0 || in.w <= 0) return;
    /* one blank column each side inside the border */
    struct rect txt = {in.y, in.x + 1, in.h, in.w - 2};
    if (txt.w < 4) txt = in;
    sync_cache(p, v, txt.w);
    p->total = total_lines(p);
    p->height = txt.h;
    int turns = 0;
    for (size_t i = 0; i < v->n_msgs; i++) turns += panel_msg_numbered(v->msgs[i].role);
    if (v->n_msgs == 0) {
        draw_welcome(txt, v);
        return;
    }
    int max_top = p->total - txt.h > 0 ? p->total - txt.h : 0;
    p->top = p->follow ? max_top : anchor_to_top(p);
    if (p->top > max_top) p->top = max_top;
    if (p->top >= max_top) p->follow = true;
    /* walk to the first visible line */
    int skip = p->top, row = 0, num = 0;
    for (size_t i = 0; i < v->n_msgs && row < txt.h; i++) {
        const struct chat_msg_view *m = &v->msgs[i];
        const struct msg_cache *mc = &p->mc[i];
        if (panel_msg_numbered(m->role)) num++;
        if (skip >= mc->n) {
            skip -= mc->n;
            continue;
        }
        int last_body = -1;
        for (int k = mc->n - 1; k >= 0; k--)
            if (mc->lines[k].kind == LINE_BODY) {
                last_body = k;
                break;
            }
        for (int k = skip; k < mc->n && row < txt.h; k++, row++) {
            const struct pane_line *l = &mc->lines[k];
            int y = txt.y + row;
            if (l->kind == LINE_HEADER) draw_header(y, txt.x, txt.w, v, i, num, in_view ? in_view[i] : -1);
            else if (l->kind == LINE_BODY) draw_body(y, txt.x, txt.w, m, l, k == last_body);
        }
        skip = 0;
    }
    if (turns == 0 && txt.h - row >= 7) /* only notices so far: greet below them */
        draw_welcome((struct rect){txt.y + row, txt.x, txt.h - row, txt.w}, v);
    if (!p->follow) {
        char more[64];
        snprintf(more, sizeof more, "\u2193 %d more line%s \u00b7 End", p->total - p->top - txt.h,
                 p->total - p->top - txt.h == 1 ? "" : "s");
        ui_box_footer(box, more, ROLE_WARNING);
    }
    draw_scrollbar(p, box, in);
}
