/* panel.h — the live panels beside the chat, as classes in the manner of
 * htop's meters: each panel file exports one const class table (name,
 * title, sizes, update from the stats snapshot, draw into a rect) and keeps
 * everything else static; panel_registry lists them in screen order.
 * Panels read only the snapshot given to them (ancora.h types and the chat
 * view); the drawing itself goes through widgets.h. */
#ifndef ANC_PANEL_H
#define ANC_PANEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ancora.h"
#include "chat.h"
#include "widgets.h"

/* What a panel may look at when it updates. */
struct panel_input {
    const struct anc_stats *st;
    const int64_t *orig;        /* text index of every cached entry, cache order */
    int32_t n_orig;
    const int64_t *orig_sorted; /* the same, ascending */
    const struct chat_view *view;
    /* The settings asked for (view->params): live changes show at once,
     * before the engine applies them at the next token. */
    const struct anc_session_params *params;
    /* The text of a token id, snprintf-style (chat_token_text). */
    size_t (*token_text)(void *ctx, int32_t id, char *buf, size_t cap);
    void *token_ctx;
    bool new_token;             /* tokens were fed since the last update */
};

struct panel_class {
    const char *name;           /* short id: "kv", "sinks", "rope", "memory" */
    const char *title;          /* shown in the box: "KV cache", ... */
    int min_rows;               /* inner rows it needs to be useful */
    int weight;                 /* share of spare rows it asks for */
    size_t state_size;          /* bytes of its state (calloc'ed by panel_new) */
    /* Compute the numbers from a new snapshot. */
    void (*update)(void *state, const struct panel_input *in);
    /* Draw into the inner rect of its box (any size, down to 1 row). */
    void (*draw)(const void *state, struct rect inner);
    /* Optional: a short summary for the right end of the box's top border
     * ("sink · 512"). */
    void (*tag)(const void *state, char *buf, size_t cap);
    /* Optional: free what the state points to (the state itself is freed
     * by panel_free). */
    void (*release)(void *state);
};

struct panel {
    const struct panel_class *cls;
    void *state; /* owned */
};

#define PANEL_COUNT 4
extern const struct panel_class panel_kv_class, panel_sinks_class, panel_rope_class,
    panel_memory_class;
/* In screen order: KV cache, Sink tokens, RoPE, Memory. */
extern const struct panel_class *const panel_registry[PANEL_COUNT];

struct panel *panel_new(const struct panel_class *cls);
void panel_free(struct panel *p);
#define panel_update(p, in) ((p)->cls->update((p)->state, (in)))
#define panel_draw(p, r) ((p)->cls->draw((p)->state, (r)))
/* The box with its title and tag, then the panel inside it. */
void panel_draw_boxed(const struct panel *p, struct rect box);

/* ---- a remote engine (stats.remote): what the panels draw instead ------- */
/* (panel_remote.c; the Memory panel draws its own remote rows) */
void panel_remote_kv(const struct anc_stats *st, struct rect r);
void panel_remote_sinks(const struct anc_stats *st, struct rect r);
void panel_remote_rope(const struct anc_stats *st, int32_t n_ctx_train, struct rect r);

/* ---- shared by the KV panel and the chat pane ---------------------------- */

/* Messages that occupy tokens get numbers (#1, #2, ...) in the chat pane
 * and the KV panel alike: system prompt, user and assistant turns. */
static inline bool panel_msg_numbered(enum chat_role r)
{
    return r == CHAT_SYSTEM || r == CHAT_USER || r == CHAT_ASSISTANT;
}

/* For every message of the view, the share of its tokens still in the
 * cache (0..1), or -1 when it holds no tokens (notices, not yet fed).
 * sorted: the cached entries' text indices, ascending. frac[n_msgs]. */
void panel_msgs_in_view(const struct chat_view *v, const int64_t *sorted, int32_t n,
                        float *frac);

#endif
