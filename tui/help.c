/* help.c — the help overlay (F1, or ? on an empty line): keys, the slash
 * commands (from chat_command_help), the session browser's and review
 * screen's keys, and what each panel shows. A box over
 * the screen, scrolled with the arrows and PgUp/PgDn; Esc, q, F1 or ?
 * close it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "screens.h"

struct help {
    int top;        /* first line shown */
    int n_lines;    /* as of the last draw */
    int page;
};

enum item_kind { ITEM_SECTION, ITEM_ENTRY, ITEM_TEXT };

struct item {
    enum item_kind kind;
    const char *key, *text;
};

static const struct item keys[] = {
    {ITEM_SECTION, NULL, "Keys"},
    {ITEM_ENTRY, "Enter", "send the message or command"},
    {ITEM_ENTRY, "Alt-Enter, Ctrl-J", "new line inside the message (pasted text keeps its lines)"},
    {ITEM_ENTRY, "Tab", "complete commands and their arguments (twice: list them)"},
    {ITEM_ENTRY, "Up, Down", "earlier and later input (history is kept across runs)"},
    {ITEM_ENTRY, "PgUp, PgDn, wheel", "scroll the conversation"},
    {ITEM_ENTRY, "Home, End", "top and bottom of the conversation when the input is empty "
                              "(otherwise they move in the input); Ctrl-Home, Ctrl-End always scroll"},
    {ITEM_ENTRY, "F1, ?", "this help (? on an empty input line)"},
    {ITEM_ENTRY, "F2, Alt-P", "show or hide the panels; below 120 columns they start hidden and "
                              "take the chat's place when shown"},
    {ITEM_ENTRY, "F3", "saved sessions (see below); Esc goes back"},
    {ITEM_ENTRY, "Ctrl-C", "stop the reply being written (its text is kept, marked cancelled); "
                           "when idle, clear the input line. Never quits"},
    {ITEM_ENTRY, "Ctrl-D, F10", "quit (Ctrl-D on an empty line), as /quit does"},
    {ITEM_ENTRY, "Ctrl-L", "redraw the screen"},
    {ITEM_ENTRY, "Ctrl-Z", "suspend to the shell (fg comes back)"},
};

static const struct item sessions[] = {
    {ITEM_SECTION, NULL, "Saved sessions (F3, /sessions)"},
    {ITEM_ENTRY, "/", "filter as you type: titles, models and every message's text; "
                      "Enter keeps the filter, Esc clears it"},
    {ITEM_ENTRY, "m, s", "one model's sessions (again: the next model, then all); sort by last "
                         "activity or by length"},
    {ITEM_ENTRY, "t, d", "rename the selected session; delete it (y confirms)"},
    {ITEM_ENTRY, "r", "resume the session in the chat"},
    {ITEM_ENTRY, "Enter", "review it: every reply with the settings it was made with (policy, "
                          "window, sinks, RoPE, adapter, template), tokens, speeds, finish reason, "
                          "cache occupancy and attention on the sinks; parameter changes where they "
                          "happened"},
    {ITEM_ENTRY, "/, n, N", "in the review: search, next and previous hit"},
    {ITEM_ENTRY, "p", "in the review: replay the conversation under the settings now in force "
                      "and show each reply's perplexity beside the one under the settings it was "
                      "made with (Esc cancels)"},
    {ITEM_ENTRY, "q, Esc", "back (review, then the list, then the chat)"},
};

static const struct item panels[] = {
    {ITEM_SECTION, NULL, "Panels"},
    {ITEM_ENTRY, "KV cache", "every cache entry in cache order: sinks, your tokens, the model's "
                             "tokens, free slots. \"text\" is the whole conversation from its first "
                             "token: what is still cached and what was evicted. \"#3 you 40%\": the "
                             "share of message 3's tokens the model still sees (also in the chat's "
                             "message headers)."},
    {ITEM_ENTRY, "Sink tokens", "the first tokens of the conversation, kept in the cache for good "
                                "(StreamingLLM attention sinks), with blanks shown as \u2423 and "
                                "\u2424. The gauge is the share of the last token's attention that "
                                "lands on them (mean over layers); the trend keeps one reading per "
                                "token; per-layer bars when there is room."},
    {ITEM_ENTRY, "RoPE", "base (theta), scaling type, factor s, original training context L0, "
                         "effective base (dynamic NTK), mscale (YaRN). Reach = L0 \u00d7 s for linear, "
                         "dynamic, YaRN and llama3 scaling (L0 without scaling): the span the "
                         "scaled positions were made for. Under the sink and window policies no "
                         "position ever reaches the window length, however long the chat. The "
                         "curves are cos(p\u00b7\u03c9_k), \u03c9_k = base^(-2k/d), for the "
                         "highest-, a middle- and the lowest-frequency pair over positions "
                         "0..window: dim with the file's base and no scaling, coloured with the "
                         "settings in force. A solid band means the pair turns faster than a "
                         "column can show."},
    {ITEM_ENTRY, "Memory", "bytes of weights, of the KV cache's entries in use (\"reserved\": the "
                           "room set aside for the whole window, whose untouched pages are not "
                           "resident, so it may exceed RSS) and of scratch buffers, each bar a "
                           "share of the process's resident memory (RSS), GPU memory when a GPU "
                           "is used; prefill and "
                           "decode speed of the last reply; per-token latency of the latest "
                           "tokens with min, median and max."},
};

static const struct item themes[] = {
    {ITEM_SECTION, NULL, "Themes"},
    {ITEM_TEXT, NULL, "/theme NAME switches at once and is remembered: default, light, "
                      "high-contrast, colorblind (Okabe-Ito colours), mono, or your own NAME.theme "
                      "in ~/.config/ancora/themes. NO_COLOR turns colours off."},
};

struct help *help_new(void) { return calloc(1, sizeof(struct help)); }
void help_free(struct help *h) { free(h); }
void help_reset(struct help *h) { h->top = 0; }

int help_key(struct help *h, bool is_key, wint_t ch)
{
    if (is_key) {
        switch (ch) {
        case KEY_UP: h->top--; break;
        case KEY_DOWN: h->top++; break;
        case KEY_PPAGE: h->top -= h->page; break;
        case KEY_NPAGE: h->top += h->page; break;
        case KEY_HOME: h->top = 0; break;
        case KEY_END: h->top = h->n_lines; break;
        case KEY_F(1): return OVERLAY_CLOSE;
        default: break;
        }
    } else if (ch == 27 || ch == L'q' || ch == L'?' || ch == L'\r' || ch == 3) {
        return OVERLAY_CLOSE;
    } else if (ch == L' ') {
        h->top += h->page;
    }
    return OVERLAY_STAY;
}

/* ---- drawing: items wrapped to the box, then the visible slice ------------ */

struct hline {
    const char *key;     /* on the first line of an entry */
    const char *text;
    size_t len;
    enum item_kind kind;
};

struct hlines {
    struct hline *v;
    int n, cap;
};

static void push(struct hlines *L, struct hline l)
{
    if (L->n == L->cap) {
        int cap = L->cap ? L->cap * 2 : 64;
        struct hline *nv = realloc(L->v, (size_t)cap * sizeof *nv);
        if (!nv) return;
        L->v = nv;
        L->cap = cap;
    }
    L->v[L->n++] = l;
}

/* Word-wrap text into lines of at most w columns. */
static void wrap(struct hlines *L, const char *key, const char *text, enum item_kind kind, int w)
{
    size_t len = strlen(text), p = 0;
    bool first = true;
    while (p < len || first) {
        size_t fit = ui_fit(text + p, len - p, w);
        size_t cut = fit;
        if (p + fit < len) {
            size_t k = fit;
            while (k > 0 && text[p + k] != ' ') k--;
            if (k > 0) cut = k;
        }
        if (cut == 0 && p < len) cut = fit > 0 ? fit : 1;
        push(L, (struct hline){first ? key : NULL, text + p, cut, kind});
        first = false;
        p += cut;
        while (p < len && text[p] == ' ') p++;
    }
}

static void add_items(struct hlines *L, const struct item *it, size_t n, int kw, int w)
{
    for (size_t i = 0; i < n; i++) {
        if (it[i].kind == ITEM_SECTION) {
            if (L->n) push(L, (struct hline){NULL, "", 0, ITEM_TEXT});
            push(L, (struct hline){NULL, it[i].text, strlen(it[i].text), ITEM_SECTION});
        } else if (it[i].kind == ITEM_ENTRY) {
            wrap(L, it[i].key, it[i].text, ITEM_ENTRY, w - kw);
        } else {
            wrap(L, NULL, it[i].text, ITEM_TEXT, w);
        }
    }
}

void help_draw(struct help *h, int lines, int cols)
{
    int w = cols >= 104 ? 100 : cols, hh = lines - 2;
    if (w < 30 || hh < 5) return;
    struct rect box = {1, (cols - w) / 2, hh, w};
    ui_fill_rect(box, ROLE_NORMAL);
    struct rect in = ui_box(box, "Help", ROLE_PANEL_TITLE, ROLE_PANEL_TITLE);
    struct rect txt = {in.y, in.x + 1, in.h, in.w - 2};
    int kw = txt.w >= 70 ? 22 : 18;
    struct hlines L = {0};
    add_items(&L, keys, sizeof keys / sizeof keys[0], kw, txt.w);
    size_t n_cmd = 0;
    const struct chat_command_help *cmds = chat_command_help(&n_cmd);
    push(&L, (struct hline){NULL, "", 0, ITEM_TEXT});
    push(&L, (struct hline){NULL, "Commands", 8, ITEM_SECTION});
    for (size_t i = 0; i < n_cmd; i++) {
        /* long usages get a line of their own */
        if (ui_width(cmds[i].usage) >= kw - 1) {
            push(&L, (struct hline){cmds[i].usage, "", 0, ITEM_ENTRY});
            wrap(&L, NULL, cmds[i].what, ITEM_ENTRY, txt.w - kw);
        } else {
            wrap(&L, cmds[i].usage, cmds[i].what, ITEM_ENTRY, txt.w - kw);
        }
    }
    add_items(&L, sessions, sizeof sessions / sizeof sessions[0], kw, txt.w);
    add_items(&L, panels, sizeof panels / sizeof panels[0], kw, txt.w);
    add_items(&L, themes, sizeof themes / sizeof themes[0], kw, txt.w);
    h->n_lines = L.n;
    h->page = txt.h > 2 ? txt.h - 1 : 1;
    if (h->top > L.n - txt.h) h->top = L.n - txt.h;
    if (h->top < 0) h->top = 0;
    for (int r = 0; r < txt.h && h->top + r < L.n; r++) {
        const struct hline *l = &L.v[h->top + r];
        int y = txt.y + r;
        if (l->kind == ITEM_SECTION) {
            ui_textn(y, txt.x, txt.w, ROLE_PANEL_TITLE, l->text, l->len);
            continue;
        }
        int x = txt.x;
        if (l->kind == ITEM_ENTRY) {
            if (l->key) ui_text(y, x, l->len ? kw - 1 : txt.w, ROLE_INPUT_PROMPT, l->key);
            x += kw;
        }
        ui_textn(y, x, txt.x + txt.w - x, ROLE_PANEL_LABEL, l->text, l->len);
    }
    char foot[64];
    snprintf(foot, sizeof foot, "%d/%d \u00b7 \u2191\u2193 PgUp PgDn \u00b7 Esc closes",
             h->top + txt.h < L.n ? h->top + txt.h : L.n, L.n);
    ui_box_footer(box, ui_unicode() ? foot : "Up/Down PgUp/PgDn, Esc closes", ROLE_PANEL_DIM);
    free(L.v);
}
