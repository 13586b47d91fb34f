/* layout.c — the screen's geometry (see layout.h): side-by-side panels on
 * wide terminals, panels in place of the chat when they are toggled on a
 * narrow one, stacked or in a 2x2 grid depending on the room. No drawing. */
#include "layout.h"

#include <string.h>

bool layout_panels_default(int cols) { return cols >= LAYOUT_PANELS_COLS; }

int layout_input_max_rows(int lines)
{
    int max = lines / 5;
    if (max > 8) max = 8;
    return max < 1 ? 1 : max;
}

/* Width of the panel column beside the chat, or 0 if they cannot sit side by side. */
static int side_width(int cols)
{
    int pw = cols >= 200 ? cols * 2 / 5 : cols * 37 / 100;
    if (pw < 44) pw = 44;
    return cols - pw >= 56 ? pw : 0;
}

/* Heights of n stacked boxes sharing h rows: each gets its minimum, the
 * rest goes by weight. Boxes that do not fit at 3 rows get 0. */
static void stack(struct rect area, const int *idx, int n, struct rect *out)
{
    int min_h[PANEL_COUNT], want = 0, weights = 0, shown = n;
    for (int i = 0; i < n; i++) {
        min_h[i] = panel_registry[idx[i]]->min_rows + 2;
        want += min_h[i];
        weights += panel_registry[idx[i]]->weight;
    }
    if (want > area.h) {
        /* shrink evenly, but never below a one-line box */
        for (int i = 0; i < n; i++) min_h[i] = area.h / n;
        while (shown > 0 && area.h / shown < 3) shown--;
        for (int i = 0; i < n; i++) min_h[i] = i < shown ? area.h / shown : 0;
        want = 0;
        for (int i = 0; i < shown; i++) want += min_h[i];
    }
    int spare = area.h - want, y = area.y, given = 0;
    for (int i = 0; i < n; i++) {
        int h = min_h[i];
        if (i < shown && spare > 0 && weights > 0) {
            int add = i == shown - 1 ? spare - given : spare * panel_registry[idx[i]]->weight / weights;
            h += add;
            given += add;
        }
        out[idx[i]] = (struct rect){y, area.x, h, h ? area.w : 0};
        y += h;
    }
}

static void place_panels(struct layout *l, struct rect area)
{
    static const int all[PANEL_COUNT] = {0, 1, 2, 3};
    int need = 0;
    for (int i = 0; i < PANEL_COUNT; i++) need += panel_registry[i]->min_rows + 2;
    bool grid = area.w >= 2 * 38 && (area.h < need || area.w >= 110);
    if (!grid) {
        stack(area, all, PANEL_COUNT, l->panels);
        return;
    }
    /* 2x2: KV cache | Sink tokens over RoPE | Memory */
    int lw = (area.w + 1) / 2, rw = area.w - lw;
    int top_w = panel_registry[0]->weight + panel_registry[1]->weight;
    int bot_w = panel_registry[2]->weight + panel_registry[3]->weight;
    int top_h = area.h * top_w / (top_w + bot_w);
    int bot_h = area.h - top_h;
    l->panels[0] = (struct rect){area.y, area.x, top_h, lw};
    l->panels[1] = (struct rect){area.y, area.x + lw, top_h, rw};
    l->panels[2] = (struct rect){area.y + top_h, area.x, bot_h, lw};
    l->panels[3] = (struct rect){area.y + top_h, area.x + lw, bot_h, rw};
}

void layout_compute(struct layout *l, int lines, int cols, int input_rows, bool panels_on)
{
    memset(l, 0, sizeof *l);
    if (lines < LAYOUT_MIN_LINES || cols < LAYOUT_MIN_COLS) {
        l->too_small = true;
        return;
    }
    int max_in = layout_input_max_rows(lines);
    if (input_rows < 1) input_rows = 1;
    if (input_rows > max_in) input_rows = max_in;
    l->status = (struct rect){0, 0, 1, cols};
    l->hints = (struct rect){lines - 1, 0, 1, cols};
    l->message = (struct rect){lines - 2, 0, 1, cols};
    int body_top = 1, body_h = lines - 3;
    int pw = panels_on ? side_width(cols) : 0, left_w = cols - pw;
    int in_h = input_rows + 2;
    l->input = (struct rect){body_top + body_h - in_h, 0, in_h, left_w};
    l->chat = (struct rect){body_top, 0, body_h - in_h, left_w};
    l->chat_shown = true;
    if (!panels_on) return;
    l->panels_shown = true;
    if (pw) {
        place_panels(l, (struct rect){body_top, left_w, body_h, pw});
    } else {
        /* narrow: the panels take the chat's place until toggled off */
        l->chat_shown = false;
        place_panels(l, l->chat);
    }
}
