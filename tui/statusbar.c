/* statusbar.c — the top status bar (state, model, cache policy, window and
 * sinks, session title, theme), the bottom key hints in htop's manner, and
 * the one-line message area. Draws from a chat view and a stats snapshot;
 * no engine calls. */
#include <stdio.h>
#include <string.h>

#include "screens.h"

#define HINTS_MAX 12

static const char *state_text(enum chat_state s, bool uni)
{
    switch (s) {
    case CHAT_PREFILL: return uni ? " \u25d0 reading prompt " : " ~ reading prompt ";
    case CHAT_GENERATING: return uni ? " \u25b6 generating " : " > generating ";
    default: return uni ? " \u25cf idle " : " * idle ";
    }
}

/* Segments left to right, in order of importance: the first that does
 * not fit ends the bar (no later, smaller one jumps the queue). */
static int segment(int y, int x, int w, int used, enum theme_role role, const char *text)
{
    int tw = ui_width(text);
    if (used + tw > w) return w;
    return used + ui_text(y, x + used, w - used, role, text);
}

/* " name", shortened with an ellipsis past max columns. */
static void name_segment(char *buf, size_t cap, const char *name, int max, bool uni)
{
    snprintf(buf, cap, " %s", name);
    if (ui_width(buf) <= max) return;
    size_t n = strlen(buf);
    while (n > 1 && ui_width(buf) > max - 1) { /* drop whole UTF-8 characters */
        do n--; while (n > 1 && ((unsigned char)buf[n] & 0xC0) == 0x80);
        buf[n] = '\0';
    }
    snprintf(buf + n, cap - n, "%s", uni ? "\u2026" : "~");
}

/* Right side: speed while generating, history state, session, theme. */
static void right_text(const struct status_info *si, const char *sep, char *buf, size_t cap)
{
    const struct chat_view *v = si->view;
    size_t o = 0;
    buf[0] = '\0';
    if (v && v->state == CHAT_GENERATING && si->st && si->st->decode_tok_s > 0)
        o += (size_t)snprintf(buf + o, cap - o, "%.0f tok/s%s", si->st->decode_tok_s, sep);
    if (v && !v->history_ok && o < cap) o += (size_t)snprintf(buf + o, cap - o, "history off%s", sep);
    if (v && v->session_id > 0 && o < cap)
        o += (size_t)snprintf(buf + o, cap - o, "session #%lld%s", (long long)v->session_id, sep);
    if (o < cap)
        snprintf(buf + o, cap - o, "theme %s%s ", si->theme ? si->theme : "default",
                 si->colour_off ? " (no colour)" : "");
}

void statusbar_draw(struct rect r, const struct status_info *si)
{
    const struct chat_view *v = si->view;
    bool uni = ui_unicode();
    const char *sep = uni ? " \u2502 " : " | ";
    ui_fill(r.y, r.x, r.w, ROLE_STATUS_BAR);
    char right[256], buf[256];
    right_text(si, sep, right, sizeof right);
    int rw = ui_width(right);
    bool show_right = rw + 20 <= r.w;
    int left_w = show_right ? r.w - rw - 2 : r.w, used = 0;
    enum chat_state state = v ? v->state : CHAT_IDLE;
    used = segment(r.y, r.x, left_w, used, state == CHAT_IDLE ? ROLE_STATUS_IDLE : ROLE_STATUS_BUSY,
                   state_text(state, uni));
    if (v) {
        name_segment(buf, sizeof buf, v->model_name && *v->model_name ? v->model_name : "model",
                     left_w / 4 > 16 ? left_w / 4 : 16, uni);
        used = segment(r.y, r.x, left_w, used, ROLE_STATUS_BAR, buf);
        const struct anc_session_params *p = &v->params;
        if (si->st && si->st->remote)
            snprintf(buf, sizeof buf, "%sremote %s  ctx %d", sep, si->st->engine, (int)p->ctx);
        else if (p->cache == ANC_CACHE_SINK)
            snprintf(buf, sizeof buf, "%ssink policy  window %d  sinks %d", sep, (int)p->window, (int)p->n_sink);
        else if (p->cache == ANC_CACHE_FULL)
            snprintf(buf, sizeof buf, "%sfull policy  ctx %d", sep, (int)(si->st ? si->st->capacity : p->ctx));
        else
            snprintf(buf, sizeof buf, "%s%s policy  window %d", sep, anc_cache_policy_name(p->cache),
                     (int)p->window);
        used = segment(r.y, r.x, left_w, used, ROLE_STATUS_BAR, buf);
        if (v->max_reply > 0)
            snprintf(buf, sizeof buf, "%stemp %.2g  max %d", sep, (double)p->sampling.temp,
                     (int)v->max_reply);
        else
            snprintf(buf, sizeof buf, "%stemp %.2g", sep, (double)p->sampling.temp);
        used = segment(r.y, r.x, left_w, used, ROLE_STATUS_BAR, buf);
        if (v->title && *v->title) {
            /* the session title, shortened to the room left with an
               ellipsis; left out when not even 8 columns of it fit (a
               bare "H" or "Cap" reads as something else) */
            int sw = ui_width(sep), tw = ui_width(v->title), room = left_w - used - sw;
            if (room >= (tw < 8 ? tw : 8)) {
                ui_text(r.y, r.x + used, sw, ROLE_STATUS_BAR, sep);
                ui_text_ell(r.y, r.x + used + sw, room, ROLE_STATUS_BAR, v->title);
            }
        }
    }
    if (show_right) ui_text(r.y, r.x + r.w - rw, rw, ROLE_STATUS_BAR, right);
}

struct hint {
    const char *key, *label;
    int priority;  /* lower: kept longer on narrow terminals */
};

/* The keys of the screen in front: the chat's own, or those of the overlay
 * over it (where the chat's keys do nothing). */
static int hint_set(enum hints_mode mode, bool busy, bool panels_shown, struct hint *h)
{
    bool uni = ui_unicode();
    const char *updown = uni ? "\u2191\u2193" : "Up/Dn";
    int n = 0;
#define H(k, l, p) (h[n++] = (struct hint){(k), (l), (p)})
    switch (mode) {
    case HINTS_HELP:
        H(updown, "Scroll", 1);
        H("PgUp/PgDn", "Page", 2);
        H("Home/End", "Top/Bottom", 3);
        H("Esc", "Close", 0);
        break;
    case HINTS_BROWSER:
        H("Enter", "Review", 0);
        H("r", "Resume", 1);
        H("/", "Filter", 1);
        H("m", "Model", 3);
        H("s", "Sort", 3);
        H("t", "Rename", 2);
        H("d", "Delete", 2);
        H(updown, "Select", 4);
        H("Esc", "Back", 0);
        break;
    case HINTS_BROWSER_EMPTY:
        H("/", "Filter", 1);
        H("m", "Model", 2);
        H("Esc", "Back", 0);
        break;
    case HINTS_BROWSER_FILTER:
        H("Enter", "Keep filter", 0);
        H("Esc", "Clear filter", 0);
        H("^U", "Erase", 1);
        break;
    case HINTS_BROWSER_RENAME:
        H("Enter", "Save title", 0);
        H("Esc", "Cancel", 0);
        H("^U", "Erase", 1);
        break;
    case HINTS_BROWSER_DELETE:
        H("y", "Delete", 0);
        H("Other keys", "Keep", 0);
        break;
    case HINTS_REVIEW:
        H(updown, "Scroll", 2);
        H("PgUp/PgDn", "Page", 3);
        H("Home/End", "Top/Bottom", 4);
        H("/", "Search", 1);
        H("n/N", "Next/Prev match", 2);
        H("p", "Replay", 1);
        H("r", "Resume", 1);
        H("Esc", "Back", 0);
        break;
    case HINTS_REVIEW_SEARCH:
        H("Enter", "Search", 0);
        H("Esc", "Cancel", 0);
        H("^U", "Erase", 1);
        break;
    case HINTS_REVIEW_REPLAY:
        H("Esc", "Cancel replay", 0);
        H(updown, "Scroll", 1);
        H("PgUp/PgDn", "Page", 2);
        break;
    default: /* HINTS_CHAT */
        H("F1", "Help", 0);
        H("F2", panels_shown ? "Hide panels" : "Panels", 0);
        H("F3", "Sessions", 2);
        H("PgUp/PgDn", "Scroll", 3);
        H(uni ? "Alt-\u21b5" : "Alt-Enter", "Newline", 2);
        H("Tab", "Complete", 4);
        H("^C", busy ? "Stop reply" : "Clear", busy ? 0 : 3);
        H("^D", "Quit", 1);
        break;
    }
#undef H
    return n;
}

void hints_draw(struct rect r, enum hints_mode mode, bool busy, bool panels_shown)
{
    struct hint hints[HINTS_MAX];
    int n = hint_set(mode, busy, panels_shown, hints);
    bool keep[HINTS_MAX];
    /* drop the least important hints until the rest fit */
    for (int max_prio = 4; max_prio >= 0; max_prio--) {
        int w = 0;
        for (int i = 0; i < n; i++) {
            keep[i] = hints[i].priority <= max_prio;
            if (keep[i]) w += ui_width(hints[i].key) + ui_width(hints[i].label) + 2;
        }
        if (w <= r.w) break;
    }
    ui_fill(r.y, r.x, r.w, ROLE_STATUS_BAR);
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        int need = ui_width(hints[i].key) + ui_width(hints[i].label) + 2;
        if (used + need > r.w) break;
        used += ui_text(r.y, r.x + used, r.w - used, ROLE_STATUS_KEY, hints[i].key);
        used += ui_text(r.y, r.x + used, r.w - used, ROLE_STATUS_BAR, " ");
        used += ui_text(r.y, r.x + used, r.w - used, ROLE_STATUS_BAR, hints[i].label);
        used += ui_text(r.y, r.x + used, r.w - used, ROLE_STATUS_BAR, " ");
    }
}

void message_draw(struct rect r, const char *text, bool error)
{
    if (!text || !*text) return;
    /* first line only; the whole answer is in the chat as a notice */
    const char *nl = strchr(text, '\n');
    size_t len = nl ? (size_t)(nl - text) : strlen(text);
    enum theme_role role = error ? ROLE_CHAT_ERROR : ROLE_MESSAGE;
    int used = ui_text(r.y, r.x + 1, r.w - 1, role, error ? (ui_unicode() ? "\u2717 " : "! ") : "");
    int room = r.w - 2 - used;
    bool cut = nl || ui_widthn(text, len) > room;
    if (cut) room -= 2; /* for the ellipsis */
    used += ui_textn(r.y, r.x + 1 + used, room, role, text, len);
    if (cut) ui_text(r.y, r.x + 1 + used, 2, ROLE_CHAT_META, ui_unicode() ? " \u2026" : " ~");
}
