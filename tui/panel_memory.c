/* panel_memory.c — the "Memory" panel: bytes of weights, of the KV
 * cache's entries in use and of the room reserved for it, and scratch
 * (bars: share of RSS, or of the GPU's memory when they live there; the
 * reserved room has none, as pages not reached yet are not resident),
 * process RSS, GPU memory in use (n/a on the CPU backend), prefill and
 * decode speed, and per-token latency as a sparkline with min/median/max.
 * Computes from the stats snapshot; draws with widgets.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panel.h"

struct memory_state {
    bool have;
    bool remote;                            /* a remote server: what it publishes */
    char engine[24];
    unsigned long long srv_model, srv_vram; /* bytes (0: not published) */
    long long srv_kv_tokens;                /* vLLM's KV cache in tokens (0: not published) */
    unsigned long long weights, kv, scratch, rss;
    unsigned long long kv_local;            /* part of kv: sliding-window layers */
    unsigned long long kv_held, kv_local_held; /* of them, the entries in use */
    bool gpu;                               /* the engine runs on a GPU */
    unsigned long long dev_total, dev_free; /* the GPU's memory */
    char device[64];                        /* its name */
    double prefill, decode;
    float lat[ANC_STATS_LATENCY];
    int n_lat;
    float lat_min, lat_med, lat_max;
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void memory_update(void *state, const struct panel_input *in)
{
    struct memory_state *s = state;
    const struct anc_stats *st = in->st;
    s->have = true;
    s->remote = st->remote;
    snprintf(s->engine, sizeof s->engine, "%s", st->engine);
    s->srv_model = st->server_model_bytes;
    s->srv_vram = st->server_vram_bytes;
    s->srv_kv_tokens = st->server_kv_tokens;
    s->weights = st->bytes_weights;
    s->kv = st->bytes_kv;
    s->kv_local = st->bytes_kv_local;
    s->kv_held = st->bytes_kv_used - st->bytes_kv_local_used; /* the global layers' (or all) */
    s->kv_local_held = st->bytes_kv_local_used;
    s->scratch = st->bytes_scratch;
    s->rss = st->bytes_rss;
    s->gpu = st->bytes_device_total > 0;
    s->dev_total = st->bytes_device_total;
    s->dev_free = st->bytes_device_free;
    snprintf(s->device, sizeof s->device, "%s", st->device);
    s->prefill = st->prefill_tok_s;
    s->decode = st->decode_tok_s;
    s->n_lat = st->n_latency < 0 ? 0 : st->n_latency > ANC_STATS_LATENCY ? ANC_STATS_LATENCY
                                                                        : st->n_latency;
    memcpy(s->lat, st->latency_ms, (size_t)s->n_lat * sizeof s->lat[0]);
    if (s->n_lat) {
        float sorted[ANC_STATS_LATENCY];
        memcpy(sorted, s->lat, (size_t)s->n_lat * sizeof sorted[0]);
        qsort(sorted, (size_t)s->n_lat, sizeof sorted[0], cmp_float);
        s->lat_min = sorted[0];
        s->lat_max = sorted[s->n_lat - 1];
        s->lat_med = s->n_lat % 2 ? sorted[s->n_lat / 2]
                                  : (sorted[s->n_lat / 2 - 1] + sorted[s->n_lat / 2]) / 2;
    }
}

static void memory_tag(const void *state, char *buf, size_t cap)
{
    const struct memory_state *s = state;
    if (s->have && s->remote) {
        snprintf(buf, cap, "%s", s->engine);
        return;
    }
    if (s->have && s->gpu && s->device[0]) { /* where the model runs */
        const char *name = strncmp(s->device, "NVIDIA ", 7) == 0 ? s->device + 7 : s->device;
        snprintf(buf, cap, "%s", name);
        return;
    }
    if (!s->have || !s->rss) return;
    char rss[32];
    ui_fmt_bytes(rss, sizeof rss, s->rss);
    snprintf(buf, cap, "RSS %s", rss);
}

/* ---- drawing ------------------------------------------------------------ */

struct mem_item {
    const char *label;
    char value[32];
    double share;    /* of RSS, for the bar; < 0: no bar */
    const char *note; /* in the bar's place when there is no bar, or NULL */
    const char *short_label; /* where the label does not fit, or NULL */
};

static void set_item(struct mem_item *it, const char *label, unsigned long long bytes, unsigned long long whole,
                     bool bar)
{
    it->label = label;
    ui_fmt_bytes(it->value, sizeof it->value, bytes);
    it->share = bar && whole ? (double)bytes / (double)whole : -1;
    it->note = NULL;
    it->short_label = NULL;
}

/* The KV cache as the entries it holds now (with a bar) and the room
 * reserved for it (without: most of it is untouched pages, outside RSS,
 * and a bar of it would outgrow RSS). One per row: weights, KV cache,
 * "  reserved" under it, scratch, RSS, GPU (on the CPU, "no GPU in use" on
 * the RSS row instead); two to a row (GRID), ordered so that "KV reserved"
 * lands in the wider right column. */
static int fill_items(const struct memory_state *s, struct mem_item *it, bool grid)
{
    /* a model with sliding-window layers: what each kind of layer holds */
    bool split = s->kv_local > 0;
    unsigned long long whole = s->gpu ? s->dev_total : s->rss;
    int n = 0;
    set_item(&it[n++], "weights", s->weights, whole, true);
    set_item(&it[n++], split ? "KV global" : "KV cache", s->kv_held, whole, true);
    if (split) set_item(&it[n++], "KV local", s->kv_local_held, whole, true);
    if (grid) {
        set_item(&it[n++], "scratch", s->scratch, whole, true);
        if (n % 2 == 0) { /* keep "KV reserved" in the right column */
            it[n] = it[n - 1];
            set_item(&it[n - 1], "KV reserved", s->kv, whole, false);
            it[n - 1].short_label = "KV rsvd";
            n++;
        } else {
            set_item(&it[n], "KV reserved", s->kv, whole, false);
            it[n++].short_label = "KV rsvd";
        }
    } else {
        set_item(&it[n++], "  reserved", s->kv, whole, false);
        set_item(&it[n++], "scratch", s->scratch, whole, true);
    }
    it[n].label = "RSS";
    ui_fmt_bytes(it[n].value, sizeof it[n].value, s->rss);
    it[n].share = -1;
    it[n].note = it[n].short_label = NULL;
    n++;
    if (!grid && !s->gpu) {
        it[n - 1].note = "no GPU in use";
        return n;
    }
    it[n].label = "GPU";
    it[n].note = it[n].short_label = NULL;
    if (s->gpu) {
        /* used of total, in GiB: "12.3/79.6G" fits the value column */
        unsigned long long used = s->dev_total - (s->dev_free < s->dev_total ? s->dev_free : 0);
        snprintf(it[n].value, sizeof it[n].value, "%.1f/%.1fG", used / 1073741824.0,
                 s->dev_total / 1073741824.0);
        it[n].share = (double)used / (double)s->dev_total;
    } else {
        snprintf(it[n].value, sizeof it[n].value, "n/a (CPU)");
        it[n].share = -1;
    }
    n++;
    return n;
}

/* One item per row: label, value right-aligned, and a bar of its share of
 * RSS when the row is wide enough. */
static void draw_item_row(const struct mem_item *it, int y, int x, int w)
{
    ui_text(y, x, w, ROLE_PANEL_LABEL, it->label);
    int vx = 10, vw = 12;
    if (w < vx + vw) {
        ui_text_right(y, x, w, ROLE_PANEL_VALUE, it->value);
        return;
    }
    ui_text_right(y, x + vx, vw, ROLE_PANEL_VALUE, it->value);
    int bx = vx + vw + 2, bw = w - bx;
    if (it->share >= 0 && bw >= 6) ui_gauge(y, x + bx, bw, it->share, ROLE_GAUGE_FILL, ROLE_GAUGE_EMPTY);
    else if (it->note && ui_width(it->note) <= bw) ui_text(y, x + bx, bw, ROLE_PANEL_DIM, it->note);
}

/* Items two to a row: "weights 1.0 MiB   KV cache 64 KiB". */
static int draw_item_grid(const struct mem_item *it, int n, int y, int x, int w, int rows)
{
    int cols = w >= 30 ? 2 : 1, cw = w / cols, row = 0;
    for (int i = 0; i < n && row < rows; i += cols, row++)
        for (int c = 0; c < cols && i + c < n; c++) {
            int cx = x + c * cw, ww = cw - (c + 1 < cols ? 2 : 0);
            char value[32];
            snprintf(value, sizeof value, "%s", it[i + c].value);
            const char *label = it[i + c].label;
            int vw = ui_width(value), lw = ui_width(label);
            /* short of room: the short label ("KV rsvd"), "14.1MiB" without
               its space, then the label gives way (with an ellipsis); a
               space stays between */
            if (lw + 1 + vw > ww && it[i + c].short_label) {
                label = it[i + c].short_label;
                lw = ui_width(label);
            }
            char *sp = strchr(value, ' ');
            if (lw + 1 + vw > ww && sp && sp[1] != '(') {
                memmove(sp, sp + 1, strlen(sp));
                vw--;
            }
            ui_text_ell(y + row, cx, ww - vw - 1 > 0 ? ww - vw - 1 : 0, ROLE_PANEL_LABEL, label);
            ui_text_right(y + row, cx, ww, ROLE_PANEL_VALUE, value);
        }
    return row;
}

static void draw_speed(const struct memory_state *s, int y, int x, int w)
{
    char pre[32], dec[32];
    snprintf(pre, sizeof pre, "%.0f tok/s", s->prefill);
    snprintf(dec, sizeof dec, "%.0f tok/s", s->decode);
    const char *l[] = {"prefill", "decode"};
    const char *v[] = {pre, dec};
    ui_pairs(y, x, w, l, v, 2);
}

static void draw_latency(const struct memory_state *s, struct rect r)
{
    char stats[64];
    if (s->n_lat == 0) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "latency: no tokens decoded yet");
        return;
    }
    snprintf(stats, sizeof stats, "min %.1f med %.1f max %.1f ms", s->lat_min, s->lat_med, s->lat_max);
    int sw = ui_width(stats);
    /* the label shortens, then gives way, before the numbers or their
       unit would be cut */
    const char *label = r.h == 1 || ui_width("latency ") + sw <= r.w ? "latency "
                        : ui_width("lat. ") + sw <= r.w             ? "lat. "
                                                                    : "";
    int lw = ui_text(r.y, r.x, r.w, ROLE_PANEL_LABEL, label);
    /* bars scaled between 2x and 3x the median: an odd slow token does not
       flatten the rest, and steady latencies do not fill the whole box */
    float hi = s->lat_med * 3 < s->lat_max ? s->lat_med * 3 : s->lat_max;
    if (hi < s->lat_med * 2) hi = s->lat_med * 2;
    if (r.h == 1) {
        /* one row: sparkline then the numbers, if both fit */
        int room = r.w - lw - sw - 1;
        if (room >= 8) {
            ui_bars((struct rect){r.y, r.x + lw, 1, room}, s->lat, s->n_lat, 0, hi, ROLE_SPARK);
            ui_text_right(r.y, r.x, r.w, ROLE_PANEL_VALUE, stats);
        } else {
            ui_text_ell(r.y, r.x + lw, r.w - lw, ROLE_PANEL_VALUE, stats);
        }
        return;
    }
    /* several rows: the numbers on top, the bars below */
    ui_text_ell(r.y, r.x + lw, r.w - lw, ROLE_PANEL_VALUE, stats);
    ui_bars((struct rect){r.y + 1, r.x, r.h - 1, r.w}, s->lat, s->n_lat, 0, hi, ROLE_SPARK);
}

static void memory_draw(const void *state, struct rect r)
{
    const struct memory_state *s = state;
    if (!s->have) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "waiting for the engine...");
        return;
    }
    if (s->remote) { /* the server's figures, where it publishes them; then speed */
        int y = r.y, end = r.y + r.h;
        char b[96], v[32];
        bool any = false;
        if (s->srv_model) {
            ui_fmt_bytes(v, sizeof v, s->srv_model);
            snprintf(b, sizeof b, "model %s", v);
            if (s->srv_vram) {
                size_t k = strlen(b);
                ui_fmt_bytes(v, sizeof v, s->srv_vram);
                snprintf(b + k, sizeof b - k, ", %s of it on the GPU", v);
            }
            if (y < end) ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
            any = true;
        }
        if (s->srv_kv_tokens > 0) {
            snprintf(b, sizeof b, "KV cache %lld tokens", s->srv_kv_tokens);
            if (y < end) ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
            any = true;
        }
        if (!any && y < end)
            ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, "the server publishes no memory figures");
        if (y < end) draw_speed(s, y++, r.x, r.w);
        if (y < end) draw_latency(s, (struct rect){y, r.x, end - y > 8 ? 8 : end - y, r.w});
        return;
    }
    struct mem_item items[8];
    int n = fill_items(s, items, false);
    int y = r.y, left = r.h;
    /* rows: speed 1, latency >= 1, memory items n (one per row) or 3 (grid) */
    int lat_rows, item_rows;
    if (left >= n + 1 + 2) {
        item_rows = n;
        lat_rows = left - item_rows - 1;
        if (lat_rows > 8) lat_rows = 8;
        for (int i = 0; i < n; i++) draw_item_row(&items[i], y + i, r.x, r.w);
    } else {
        n = fill_items(s, items, true);
        int grid = (n + 1) / 2; /* two to a row */
        item_rows = left >= grid + 1 + 1 ? grid : left >= 3 ? left - 2 : 1;
        lat_rows = left - item_rows - 1;
        draw_item_grid(items, n, y, r.x, r.w, item_rows);
    }
    y += item_rows;
    if (y >= r.y + r.h) return;
    draw_speed(s, y++, r.x, r.w);
    if (lat_rows > 0 && y < r.y + r.h) draw_latency(s, (struct rect){y, r.x, lat_rows, r.w});
}

const struct panel_class panel_memory_class = {
    .name = "memory",
    .title = "Memory",
    .min_rows = 6,
    .weight = 1,
    .state_size = sizeof(struct memory_state),
    .update = memory_update,
    .draw = memory_draw,
    .tag = memory_tag,
};
