/* panel_kv.c — the "KV cache" panel: how full the cache is, a map of its
 * entries in cache order (sinks, your tokens, the model's tokens, free
 * slots), the conversation as a strip (kept vs evicted) and which messages
 * the model still sees. Computes from the stats snapshot; draws with
 * widgets.h. No engine internals, no chat calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "panel.h"

enum kv_kind { KV_FREE, KV_SINK, KV_USER, KV_MODEL, KV_EVICTED, KV_N_KINDS };

#define KV_MSGS 64 /* most recent messages listed */

struct kv_msg {
    int num;
    enum chat_role role;
    float frac;
};

struct kv_state {
    bool have;
    bool remote;              /* a remote server's figures (rs) instead */
    struct anc_stats rs;
    enum anc_cache_policy policy;
    int64_t seen, evicted;
    int32_t used, capacity, window, n_sink, n_sink_now;
    unsigned char *slots;     /* [capacity] kind of each cache slot (owned) */
    int32_t slots_cap;
    int64_t *sorted;          /* cached text indices, ascending (owned) */
    int32_t n_sorted, sorted_cap;
    int64_t sink_last;        /* largest text index among the sinks (-1: none) */
    /* the model's own sliding-window layers (0 when it has none) */
    int32_t n_layer, n_local, local_window, local_used;
    /* the cache's shape: per layer, n_kv_head heads of head_dim (0: unknown) */
    int32_t n_kv_head, head_dim;
    const char *kv_type;
    /* settings asked for but not applied yet (the next token applies them) */
    bool pending;
    enum anc_cache_policy want_policy;
    int32_t want_window, want_sinks;
    struct kv_msg msgs[KV_MSGS];
    int n_msgs;               /* listed (the most recent, oldest first) */
    int n_out;                /* numbered messages entirely out of view */
    int n_numbered;
};

static bool grow(void **p, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap) return true;
    int32_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* Kind of a cached entry from the message that holds its text index. */
static enum kv_kind entry_kind(const struct chat_view *v, int64_t idx)
{
    if (!v) return KV_MODEL;
    for (size_t i = v->n_msgs; i-- > 0;) {
        const struct chat_msg_view *m = &v->msgs[i];
        if (m->tok_first < 0 || m->tok_count <= 0) continue;
        if (idx >= m->tok_first && idx < m->tok_first + m->tok_count)
            return m->role == CHAT_USER ? KV_USER : KV_MODEL;
        if (idx > m->tok_first + m->tok_count) break; /* messages are in text order */
    }
    return KV_MODEL;
}

static void update_slots(struct kv_state *s, const struct panel_input *in)
{
    int32_t cap = s->capacity > 0 ? s->capacity : 0;
    if (cap < s->used) cap = s->used;
    if (!grow((void **)&s->slots, &s->slots_cap, cap, 1)) return;
    for (int32_t i = 0; i < cap; i++) {
        if (i >= in->n_orig || i >= s->used) s->slots[i] = KV_FREE;
        else if (i < s->n_sink_now) s->slots[i] = KV_SINK;
        else s->slots[i] = (unsigned char)entry_kind(in->view, in->orig[i]);
    }
    s->sink_last = -1;
    for (int32_t i = 0; i < s->n_sink_now && i < in->n_orig; i++)
        if (in->orig[i] > s->sink_last) s->sink_last = in->orig[i];
}

static void update_msgs(struct kv_state *s, const struct panel_input *in)
{
    s->n_msgs = s->n_out = s->n_numbered = 0;
    const struct chat_view *v = in->view;
    if (!v || v->n_msgs == 0) return;
    float *frac = malloc(v->n_msgs * sizeof *frac);
    if (!frac) return;
    panel_msgs_in_view(v, in->orig_sorted, in->n_orig, frac);
    int num = 0;
    for (size_t i = 0; i < v->n_msgs; i++) {
        if (!panel_msg_numbered(v->msgs[i].role)) continue;
        num++;
        if (frac[i] < 0) continue;
        if (frac[i] == 0) {
            s->n_out++;
            continue;
        }
        if (s->n_msgs == KV_MSGS) {
            memmove(s->msgs, s->msgs + 1, (KV_MSGS - 1) * sizeof s->msgs[0]);
            s->n_msgs--;
        }
        s->msgs[s->n_msgs++] = (struct kv_msg){num, v->msgs[i].role, frac[i]};
    }
    s->n_numbered = num;
    free(frac);
}

static void kv_update(void *state, const struct panel_input *in)
{
    struct kv_state *s = state;
    const struct anc_stats *st = in->st;
    s->have = true;
    s->remote = st->remote;
    if (st->remote) {
        s->rs = *st;
        return;
    }
    s->policy = st->policy;
    s->seen = st->n_seen;
    s->evicted = st->n_evicted;
    s->used = st->n_cached;
    s->capacity = st->capacity;
    s->window = st->window;
    s->n_sink = st->n_sink;
    s->n_sink_now = st->n_sink_now;
    s->n_layer = st->n_layer;
    s->n_local = st->n_layer_local;
    s->n_kv_head = in->view ? in->view->model.n_kv_head : 0;
    s->head_dim = in->view ? in->view->model.head_dim : 0;
    s->kv_type = in->params && anc_dtype_get(in->params->kv_type) ? anc_dtype_get(in->params->kv_type)->name : "f16";
    s->local_window = st->local_window;
    s->local_used = st->n_cached_local;
    s->n_sorted = 0;
    if (in->n_orig > 0 && grow((void **)&s->sorted, &s->sorted_cap, in->n_orig, sizeof *s->sorted)) {
        memcpy(s->sorted, in->orig_sorted, (size_t)in->n_orig * sizeof *s->sorted);
        s->n_sorted = in->n_orig;
    }
    update_slots(s, in);
    update_msgs(s, in);
    const struct anc_session_params *p = in->params;
    s->want_policy = p ? p->cache : s->policy;
    s->want_window = p && p->window > 0 ? p->window : s->window;
    s->want_sinks = p ? p->n_sink : s->n_sink;
    s->pending = p && (s->want_policy != s->policy || s->want_window != s->window ||
                       (s->want_policy == ANC_CACHE_SINK && s->want_sinks != s->n_sink));
}

static void kv_release(void *state)
{
    struct kv_state *s = state;
    free(s->slots);
    free(s->sorted);
}

static void kv_tag(const void *state, char *buf, size_t cap)
{
    const struct kv_state *s = state;
    if (!s->have) return;
    if (s->remote) snprintf(buf, cap, "%s", s->rs.engine);
    else snprintf(buf, cap, "%s", anc_cache_policy_name(s->policy));
}

/* ---- drawing ------------------------------------------------------------ */

static const struct ui_cell_style *kv_styles(void)
{
    /* In colour the cells differ by colour; in mono by shape. */
    static const struct ui_cell_style colour[KV_N_KINDS] = {
        [KV_FREE] = {"\u00b7", '.', ROLE_CACHE_FREE},
        [KV_SINK] = {"\u2588", 'S', ROLE_CACHE_SINK},
        [KV_USER] = {"\u2588", 'u', ROLE_CACHE_USER},
        [KV_MODEL] = {"\u2588", 'm', ROLE_CACHE_RECENT},
        [KV_EVICTED] = {"\u2591", 'x', ROLE_CACHE_EVICTED},
    };
    static const struct ui_cell_style mono[KV_N_KINDS] = {
        [KV_FREE] = {"\u00b7", '.', ROLE_CACHE_FREE},
        [KV_SINK] = {"\u25a0", 'S', ROLE_CACHE_SINK},
        [KV_USER] = {"\u2592", 'u', ROLE_CACHE_USER},
        [KV_MODEL] = {"\u2588", 'm', ROLE_CACHE_RECENT},
        [KV_EVICTED] = {"\u2591", 'x', ROLE_CACHE_EVICTED},
    };
    return theme_is_mono() ? mono : colour;
}

static int count_rows(int32_t n, int w) { return w > 0 ? (int)((n + w - 1) / w) : 0; }

/* One cell per group of entries: a sink anywhere wins, else the kind most
 * of the group has. */
static void draw_map(const struct kv_state *s, struct rect r)
{
    int32_t n = s->capacity > s->used ? s->capacity : s->used;
    int cells = r.w * r.h;
    if (n <= 0 || cells <= 0) return;
    int32_t group = (n + cells - 1) / cells;
    int n_cells = (int)((n + group - 1) / group);
    unsigned char *kinds = malloc((size_t)n_cells);
    if (!kinds) return;
    for (int c = 0; c < n_cells; c++) {
        int count[KV_N_KINDS] = {0};
        for (int32_t i = c * group; i < (c + 1) * group && i < n; i++) count[s->slots[i]]++;
        int used = count[KV_USER] + count[KV_MODEL], best = KV_FREE;
        if (count[KV_SINK]) best = KV_SINK;
        else if (used && used >= count[KV_FREE]) best = count[KV_USER] > count[KV_MODEL] ? KV_USER : KV_MODEL;
        kinds[c] = (unsigned char)best;
    }
    ui_cellmap(r, kinds, n_cells, kv_styles());
    free(kinds);
}

/* Is any cached text index in [a, b)? */
static bool any_cached(const struct kv_state *s, int64_t a, int64_t b)
{
    int32_t lo = 0, hi = s->n_sorted;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (s->sorted[mid] < a) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_sorted && s->sorted[lo] < b;
}

/* The conversation from its first token to the last: kept or evicted. */
static void draw_timeline(const struct kv_state *s, int y, int x, int w)
{
    int lw = ui_text(y, x, w, ROLE_PANEL_LABEL, "text ");
    int cells = w - lw;
    if (cells <= 0 || s->seen <= 0) return;
    unsigned char *kinds = malloc((size_t)cells);
    if (!kinds) return;
    int n = 0;
    for (int c = 0; c < cells; c++) {
        int64_t a = s->seen * c / cells, b = s->seen * (c + 1) / cells;
        if (b <= a) continue; /* fewer tokens than cells: one cell per token */
        if (a <= s->sink_last && s->sink_last >= 0) kinds[n++] = KV_SINK;
        else kinds[n++] = any_cached(s, a, b) ? KV_MODEL : KV_EVICTED;
    }
    ui_cellmap((struct rect){y, x + lw, 1, n}, kinds, n, kv_styles());
    free(kinds);
}

/* The legend, and what one cell stands for when it is more than one entry:
 * "1 cell = 57 entries", else "57 entries/cell". Sink, you and model come
 * first, then the scale, then free and evicted where room is left (the
 * usage and counts lines above say how much is free and evicted). */
static void draw_legend(const struct kv_state *s, int y, int x, int w, int32_t group)
{
    const struct ui_cell_style *st = kv_styles();
    static const char *const labels[KV_N_KINDS] = {"free", "sink", "you", "model", "evicted"};
    static const int order[] = {KV_SINK, KV_USER, KV_MODEL, KV_FREE, KV_EVICTED};
    enum { N_REQUIRED = 3 };
    int lw = 0; /* the required items, each with a space after it */
    for (int i = 0; i < N_REQUIRED; i++) lw += 2 + ui_width(labels[order[i]]) + 1;
    char scales[2][48];
    snprintf(scales[0], sizeof scales[0], "1 cell = %d entries", (int)group);
    snprintf(scales[1], sizeof scales[1], "%d entries/cell", (int)group);
    const char *scale = NULL;
    for (int k = 0; group > 1 && k < 2 && !scale; k++) /* two spaces before it */
        if (lw + 1 + ui_width(scales[k]) <= w) scale = scales[k];
    if (group > 1 && !scale && lw + ui_width(scales[1]) <= w) scale = scales[1]; /* one, at a pinch */
    int room = w - (scale ? ui_width(scale) + 1 : 0), used = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (order[i] == KV_EVICTED && s->evicted == 0) continue;
        int need = 2 + ui_width(labels[order[i]]);
        if (used + need > (i < N_REQUIRED ? w : room)) break;
        used += ui_legend_item(y, x + used, w - used, &st[order[i]], labels[order[i]]) + 1;
    }
    if (scale) ui_text_right(y, x, w, ROLE_PANEL_DIM, scale);
}

static const char *role_word(enum chat_role r)
{
    return r == CHAT_USER ? "you" : r == CHAT_SYSTEM ? "system" : "model";
}

/* "#5 model ██████ 100%" for the most recent messages, newest first. */
static int draw_in_view(const struct kv_state *s, struct rect r)
{
    int row = 0;
    if (r.h <= 0) return 0;
    if (s->n_msgs == 0 && s->n_out == 0) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM,
                s->used ? "(message boundaries not known)" : "no messages in the cache yet");
        return 1;
    }
    int shown = s->n_msgs, room = r.h - (s->n_out ? 1 : 0);
    if (shown > room) shown = room > 0 ? room : 0;
    for (int k = 0; k < shown; k++) {
        const struct kv_msg *m = &s->msgs[s->n_msgs - 1 - k];
        int y = r.y + row++;
        char head[32], pct[16];
        snprintf(head, sizeof head, "#%-3d %-6s", m->num, role_word(m->role));
        snprintf(pct, sizeof pct, "%3.0f%%", m->frac * 100);
        int used = ui_text(y, r.x, r.w, m->role == CHAT_USER ? ROLE_CHAT_USER : ROLE_PANEL_LABEL, head);
        int gw = r.w - used - 6;
        if (gw > 16) gw = 16;
        if (gw >= 4) {
            ui_gauge(y, r.x + used, gw, m->frac, m->role == CHAT_USER ? ROLE_CACHE_USER : ROLE_CACHE_RECENT,
                     ROLE_GAUGE_EMPTY);
            used += gw;
        }
        ui_text(y, r.x + used + 1, r.w - used - 1, m->frac < 1 ? ROLE_WARNING : ROLE_PANEL_VALUE, pct);
    }
    int hidden = s->n_msgs - shown;
    if (s->n_out || hidden) {
        char line[96];
        if (s->n_out && hidden)
            snprintf(line, sizeof line, "+%d partly in view, %d out of view", hidden, s->n_out);
        else if (s->n_out)
            snprintf(line, sizeof line, "%d older message%s out of view", s->n_out, s->n_out == 1 ? "" : "s");
        else
            snprintf(line, sizeof line, "+%d older in view", hidden);
        if (row < r.h) ui_text(r.y + row++, r.x, r.w, ROLE_PANEL_DIM, line);
    }
    return row;
}

static void draw_usage(const struct kv_state *s, int y, int x, int w)
{
    char used[48], pct[16];
    snprintf(used, sizeof used, "%d/%d", (int)s->used, (int)s->capacity);
    double frac = s->capacity > 0 ? (double)s->used / s->capacity : 0;
    snprintf(pct, sizeof pct, "%3.0f%%", frac * 100);
    int n = ui_text(y, x, w, ROLE_PANEL_LABEL, "used ");
    n += ui_text(y, x + n, w - n, ROLE_PANEL_VALUE, used);
    int gw = w - n - 2 - 5;
    if (gw >= 4) ui_gauge(y, x + n + 1, gw, frac, ROLE_GAUGE_FILL, ROLE_GAUGE_EMPTY);
    ui_text_right(y, x, w, ROLE_PANEL_VALUE, pct);
}

static void draw_counts(const struct kv_state *s, int y, int x, int w)
{
    char sinks[32], seen[32], ev[32];
    snprintf(sinks, sizeof sinks, "%d/%d", (int)s->n_sink_now, (int)s->n_sink);
    ui_fmt_count(seen, sizeof seen, s->seen);
    ui_fmt_count(ev, sizeof ev, s->evicted);
    const char *labels[] = {"sinks", "seen", "evicted"};
    const char *values[] = {sinks, seen, ev};
    ui_pairs(y, x, w, labels, values, 3);
}

/* "30 layers · 3 KV heads × 64 · f16": what one cache entry holds. */
static void draw_shape(const struct kv_state *s, int y, int x, int w)
{
    char buf[96];
    bool uni = ui_unicode();
    snprintf(buf, sizeof buf, "%d layers%s%d KV head%s %s %d%s%s", (int)s->n_layer,
             uni ? " \u00b7 " : " - ", (int)s->n_kv_head, s->n_kv_head == 1 ? "" : "s",
             uni ? "\u00d7" : "x", (int)s->head_dim, uni ? " \u00b7 " : " - ", s->kv_type);
    ui_text(y, x, w, ROLE_PANEL_DIM, buf);
}

/* Models with sliding-window layers: "15 local · 512 each, 3 global ·
 * sink 1024" — the local layers keep their own window whatever the
 * policy, which (and everything else this panel shows) is the global
 * layers'. */
static void draw_layer_kinds(const struct kv_state *s, int y, int x, int w)
{
    char buf[160];
    const char *dot = ui_unicode() ? " \u00b7 " : " - ";
    int32_t span = s->policy == ANC_CACHE_FULL ? s->capacity : s->window;
    char mid[160], sh[160];
    snprintf(buf, sizeof buf, "%d local%s%d each, %d global%s%s %d", (int)s->n_local, dot,
             (int)s->local_window, (int)(s->n_layer - s->n_local), dot,
             anc_cache_policy_name(s->policy), (int)span);
    /* narrower panels: shorter wordings, never a number cut short */
    snprintf(mid, sizeof mid, "%d local%s%d, %d global%s%s %d", (int)s->n_local, dot,
             (int)s->local_window, (int)(s->n_layer - s->n_local), dot,
             anc_cache_policy_name(s->policy), (int)span);
    snprintf(sh, sizeof sh, "%d\u00d7%d local, %d\u00d7%d %s", (int)s->n_local, (int)s->local_window,
             (int)(s->n_layer - s->n_local), (int)span, anc_cache_policy_name(s->policy));
    const char *texts[] = {buf, mid, sh};
    int n = ui_text_first_fit(y, x, w, ROLE_PANEL_LABEL, texts, 3);
    char held[48];
    snprintf(held, sizeof held, "local %d/%d", (int)s->local_used, (int)s->local_window);
    if (n + 2 + ui_width(held) <= w) ui_text_right(y, x, w, ROLE_PANEL_DIM, held);
}

/* "next token: window 128, sinks 2" */
static void draw_pending(const struct kv_state *s, int y, int x, int w)
{
    char buf[128];
    size_t o = (size_t)snprintf(buf, sizeof buf, "next token:");
    if (s->want_policy != s->policy)
        o += (size_t)snprintf(buf + o, sizeof buf - o, " policy %s", anc_cache_policy_name(s->want_policy));
    if (s->want_window != s->window && o < sizeof buf)
        o += (size_t)snprintf(buf + o, sizeof buf - o, " window %d", (int)s->want_window);
    if (s->want_policy == ANC_CACHE_SINK && s->want_sinks != s->n_sink && o < sizeof buf)
        snprintf(buf + o, sizeof buf - o, " sinks %d", (int)s->want_sinks);
    ui_text(y, x, w, ROLE_WARNING, buf);
}

static void kv_draw(const void *state, struct rect r)
{
    const struct kv_state *s = state;
    if (!s->have) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "waiting for the engine...");
        return;
    }
    if (s->remote) {
        panel_remote_kv(&s->rs, r);
        return;
    }
    int y = r.y, left = r.h;
    draw_usage(s, y++, r.x, r.w);
    if (--left <= 0) return;
    draw_counts(s, y++, r.x, r.w);
    if (--left <= 0) return;
    if (s->n_kv_head > 0 && left >= 3) { /* dropped first when the panel is very short */
        draw_shape(s, y++, r.x, r.w);
        left--;
    }
    if (s->n_local > 0) {
        draw_layer_kinds(s, y++, r.x, r.w);
        if (--left <= 0) return;
    }
    if (s->pending && left >= 3) {
        draw_pending(s, y++, r.x, r.w);
        left--;
    }
    int32_t n = s->capacity > s->used ? s->capacity : s->used;
    /* rows: map (at least 1), legend, timeline, messages */
    int want_map = count_rows(n, r.w);
    int legend = left >= 4, timeline = left >= 6;
    int want_msgs = s->n_msgs + (s->n_out ? 1 : 0);
    if (want_msgs == 0) want_msgs = 1;
    int rest = left - legend - timeline;
    int msgs = rest >= 3 ? (want_msgs < rest / 2 ? want_msgs : rest / 2) : rest >= 2 ? 1 : 0;
    if (msgs < 1 && rest >= 2) msgs = 1;
    int map_rows = rest - msgs;
    if (map_rows > want_map) map_rows = want_map;
    if (map_rows < 1) map_rows = 1;
    msgs = rest - map_rows; /* what the map does not need goes to the list */
    int cells = r.w * map_rows;
    int32_t group = cells > 0 ? (n + cells - 1) / cells : 1;
    if (group < 1) group = 1;
    int used_rows = count_rows((n + group - 1) / group, r.w);
    if (used_rows >= 1 && used_rows < map_rows) {
        msgs += map_rows - used_rows; /* rows the map does not fill go to the list */
        map_rows = used_rows;
    }
    struct rect map = {y, r.x, map_rows, r.w};
    draw_map(s, map);
    y += map_rows;
    if (legend) draw_legend(s, y++, r.x, r.w, group);
    if (timeline) draw_timeline(s, y++, r.x, r.w);
    if (msgs > 0) draw_in_view(s, (struct rect){y, r.x, msgs, r.w});
}

const struct panel_class panel_kv_class = {
    .name = "kv",
    .title = "KV cache",
    .min_rows = 6,
    .weight = 2,
    .state_size = sizeof(struct kv_state),
    .update = kv_update,
    .draw = kv_draw,
    .tag = kv_tag,
    .release = kv_release,
};
