/* panel.c — the panel registry, panel_new/panel_free, and what the KV
 * panel and the chat pane share (which messages the model still sees).
 * Draws only through widgets.h; nothing from the engine beyond ancora.h. */
#include "panel.h"

#include <stdlib.h>

const struct panel_class *const panel_registry[PANEL_COUNT] = {
    &panel_kv_class,
    &panel_sinks_class,
    &panel_rope_class,
    &panel_memory_class,
};

struct panel *panel_new(const struct panel_class *cls)
{
    struct panel *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cls = cls;
    p->state = calloc(1, cls->state_size ? cls->state_size : 1);
    if (!p->state) {
        free(p);
        return NULL;
    }
    return p;
}

void panel_free(struct panel *p)
{
    if (!p) return;
    if (p->cls->release) p->cls->release(p->state);
    free(p->state);
    free(p);
}

void panel_draw_boxed(const struct panel *p, struct rect box)
{
    struct rect in = ui_box(box, p->cls->title, ROLE_PANEL_BORDER, ROLE_PANEL_TITLE);
    if (p->cls->tag && box.w > 12) {
        char tag[64] = "";
        p->cls->tag(p->state, tag, sizeof tag);
        /* room: after "┌ Title " and before "┐", one blank each side */
        int room = box.w - 4 - (ui_width(p->cls->title) + 4) - 2;
        if (tag[0] && ui_width(tag) <= room) ui_box_footer_top(box, tag, ROLE_PANEL_DIM);
    }
    /* a blank column each side keeps the numbers off the border */
    if (in.w > 20) in = (struct rect){in.y, in.x + 1, in.h, in.w - 2};
    if (in.h > 0 && in.w > 0) panel_draw(p, in);
}

/* First index with sorted[i] >= key. */
static int32_t lower_bound(const int64_t *sorted, int32_t n, int64_t key)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void panel_msgs_in_view(const struct chat_view *v, const int64_t *sorted, int32_t n,
                        float *frac)
{
    for (size_t i = 0; i < v->n_msgs; i++) {
        const struct chat_msg_view *m = &v->msgs[i];
        if (m->tok_first < 0 || m->tok_count <= 0) {
            frac[i] = -1;
            continue;
        }
        int32_t a = lower_bound(sorted, n, m->tok_first);
        int32_t b = lower_bound(sorted, n, m->tok_first + m->tok_count);
        frac[i] = (float)(b - a) / (float)m->tok_count;
        if (frac[i] > 1) frac[i] = 1;
    }
}
