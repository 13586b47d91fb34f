/* panel_sinks.c — the "Sink tokens" panel: the sink tokens as text (with
 * blanks made visible) and ids, the share of the last token's attention
 * that lands on them (mean over layers) as a gauge and a short history the
 * UI keeps, and per-layer bars when there is room. Computes from the stats
 * snapshot and token texts; draws with widgets.h; no engine internals. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "panel.h"

#define SINK_HIST 60   /* readings kept for the sparkline */
#define SINK_TEXT 48   /* bytes of escaped text per sink */

struct sinks_state {
    bool have;
    bool remote;              /* a remote server's figures (rs) instead */
    struct anc_stats rs;
    enum anc_cache_policy policy;
    int32_t n_sink, n_sink_now, n_layer;
    int32_t want_sinks;       /* asked for; the next token applies it */
    int64_t seen;
    int32_t ids[ANC_STATS_MAX_SINKS];
    int32_t text_id[ANC_STATS_MAX_SINKS]; /* whose text[] holds (-1: none yet) */
    char text[ANC_STATS_MAX_SINKS][SINK_TEXT];
    float layer[ANC_STATS_MAX_LAYERS];
    float mean;
    bool mass_valid;
    float hist[SINK_HIST];
    int n_hist;
};

/* Make a token's text printable: blanks as ␣ ␤ ␉ ␍, other control bytes
 * and stray bytes as <0xNN>. */
static void escape_piece(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    bool uni = ui_unicode();
    for (size_t i = 0; i < len && o + 8 < cap;) {
        unsigned char c = (unsigned char)in[i];
        const char *sub = NULL;
        if (c == ' ') sub = uni ? "\u2423" : "_";
        else if (c == '\n') sub = uni ? "\u2424" : "\\n";
        else if (c == '\t') sub = uni ? "\u2409" : "\\t";
        else if (c == '\r') sub = uni ? "\u240d" : "\\r";
        if (sub) {
            o += (size_t)snprintf(out + o, cap - o, "%s", sub);
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "<0x%02X>", c);
            i++;
            continue;
        }
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        mbstate_t st;
        memset(&st, 0, sizeof st);
        wchar_t wc;
        size_t n = mbrtowc(&wc, in + i, len - i, &st);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0 || !uni || o + n + 1 >= cap) {
            o += (size_t)snprintf(out + o, cap - o, "<0x%02X>", c);
            i++;
            continue;
        }
        memcpy(out + o, in + i, n);
        o += n;
        i += n;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

static void update_texts(struct sinks_state *s, const struct panel_input *in)
{
    for (int i = 0; i < s->n_sink_now && i < ANC_STATS_MAX_SINKS; i++) {
        if (s->text_id[i] == s->ids[i] && s->text[i][0]) continue;
        char raw[64] = "";
        size_t n = in->token_text ? in->token_text(in->token_ctx, s->ids[i], raw, sizeof raw) : 0;
        if (n >= sizeof raw) n = sizeof raw - 1;
        escape_piece(raw, n, s->text[i], SINK_TEXT);
        if (!s->text[i][0]) snprintf(s->text[i], SINK_TEXT, "%s", "(empty)");
        s->text_id[i] = s->ids[i];
    }
}

static void sinks_update(void *state, const struct panel_input *in)
{
    struct sinks_state *s = state;
    const struct anc_stats *st = in->st;
    if (!s->have)
        for (int i = 0; i < ANC_STATS_MAX_SINKS; i++) s->text_id[i] = -1;
    s->have = true;
    s->remote = st->remote;
    if (st->remote) {
        s->rs = *st;
        return;
    }
    s->policy = st->policy;
    s->n_sink = st->n_sink;
    s->want_sinks = in->params && in->params->cache == ANC_CACHE_SINK ? in->params->n_sink
                    : in->params                                      ? 0
                                                                      : st->n_sink;
    s->n_sink_now = st->n_sink_now < 0 ? 0
                    : st->n_sink_now > ANC_STATS_MAX_SINKS ? ANC_STATS_MAX_SINKS
                                                           : st->n_sink_now;
    memcpy(s->ids, st->sink_ids, sizeof s->ids);
    update_texts(s, in);
    s->n_layer = st->n_layer < 0 ? 0 : st->n_layer > ANC_STATS_MAX_LAYERS ? ANC_STATS_MAX_LAYERS
                                                                         : st->n_layer;
    double sum = 0;
    int n_global = 0; /* sliding-window layers have no sinks: left out of the mean */
    for (int l = 0; l < s->n_layer; l++) {
        s->layer[l] = st->sink_mass[l];
        if (st->layer_local[l]) continue;
        sum += st->sink_mass[l];
        n_global++;
    }
    s->mass_valid = n_global > 0 && s->n_sink_now > 0 && st->n_seen > 0;
    s->mean = n_global ? (float)(sum / n_global) : 0;
    if (st->n_seen < s->seen) s->n_hist = 0; /* a new conversation */
    if (s->mass_valid && st->n_seen != s->seen) {
        if (s->n_hist == SINK_HIST) {
            memmove(s->hist, s->hist + 1, (SINK_HIST - 1) * sizeof s->hist[0]);
            s->n_hist--;
        }
        s->hist[s->n_hist++] = s->mean;
    }
    s->seen = st->n_seen;
}

static void sinks_tag(const void *state, char *buf, size_t cap)
{
    const struct sinks_state *s = state;
    if (!s->have) return;
    if (s->remote) {
        snprintf(buf, cap, "%s", s->rs.n_sink >= 0 && s->rs.n_sink != 0 ? "n_keep" : "n/a");
        return;
    }
    if (s->want_sinks != s->n_sink)
        snprintf(buf, cap, "%d of %d \u2192 %d next token", (int)s->n_sink_now, (int)s->n_sink,
                 (int)s->want_sinks);
    else
        snprintf(buf, cap, "%d of %d", (int)s->n_sink_now, (int)s->n_sink);
}

/* ---- drawing ------------------------------------------------------------ */

static void draw_gauge(const struct sinks_state *s, int y, int x, int w)
{
    const char *label = w >= 40 ? "attention on sinks " : "on sinks ";
    int n = ui_text(y, x, w, ROLE_PANEL_LABEL, label);
    char pct[16];
    snprintf(pct, sizeof pct, "%5.1f%%", s->mean * 100);
    int gw = w - n - 7;
    if (gw >= 3) ui_gauge(y, x + n, gw, s->mean, ROLE_GAUGE_FILL, ROLE_GAUGE_EMPTY);
    ui_text_right(y, x, w, ROLE_PANEL_VALUE, pct);
}

/* The last readings, scaled to their own maximum (labelled) so that small
 * shares still show their movement. */
static void draw_history(const struct sinks_state *s, struct rect r)
{
    int lw = ui_text(r.y, r.x, r.w, ROLE_PANEL_LABEL, "trend ");
    if (s->n_hist == 0) {
        ui_text(r.y, r.x + lw, r.w - lw, ROLE_PANEL_DIM, "(one reading per token)");
        return;
    }
    float hi = 0;
    for (int i = 0; i < s->n_hist; i++)
        if (s->hist[i] > hi) hi = s->hist[i];
    hi = hi < 0.01f ? 0.01f : hi > 1 ? 1 : hi;
    char top[24];
    snprintf(top, sizeof top, " ≤%.1f%%", hi * 100);
    int tw = ui_width(top);
    struct rect b = {r.y, r.x + lw, r.h, r.w - lw - tw};
    if (b.w < 4) {
        b.w += tw;
        tw = 0;
    }
    ui_bars(b, s->hist, s->n_hist, 0, hi, ROLE_SPARK);
    if (tw) ui_text(r.y, r.x + r.w - tw, tw, ROLE_PANEL_DIM, top);
}

/* One sink per row: id, then its text in quotes. */
static int draw_sink_rows(const struct sinks_state *s, struct rect r)
{
    int shown = s->n_sink_now < r.h ? s->n_sink_now : r.h;
    if (shown < s->n_sink_now && shown > 0) shown--; /* leave a row for "+N more" */
    for (int i = 0; i < shown; i++) {
        char id[24];
        snprintf(id, sizeof id, "%2d id %-6d", i, (int)s->ids[i]);
        int n = ui_text(r.y + i, r.x, r.w, ROLE_PANEL_LABEL, id);
        n += ui_text(r.y + i, r.x + n, r.w - n, ROLE_PANEL_DIM, "\"");
        n += ui_text(r.y + i, r.x + n, r.w - n - 1, ROLE_CACHE_SINK, s->text[i]);
        ui_text(r.y + i, r.x + n, r.w - n, ROLE_PANEL_DIM, "\"");
    }
    if (shown < s->n_sink_now)
        ui_textf(r.y + shown, r.x, r.w, ROLE_PANEL_DIM, "+%d more", s->n_sink_now - shown);
    return shown < s->n_sink_now ? shown + 1 : shown;
}

/* All sinks on one line: "1:"<s>" 403:"␣Once"". */
static void draw_sink_line(const struct sinks_state *s, int y, int x, int w)
{
    int used = 0;
    for (int i = 0; i < s->n_sink_now; i++) {
        char id[16];
        snprintf(id, sizeof id, "%s%d:", i ? " " : "", (int)s->ids[i]);
        int need = ui_width(id) + ui_width(s->text[i]) + 2;
        if (used + need > w) {
            if (used + 1 <= w) ui_text(y, x + used, w - used, ROLE_PANEL_DIM, "\u2026");
            return;
        }
        used += ui_text(y, x + used, w - used, ROLE_PANEL_LABEL, id);
        used += ui_text(y, x + used, w - used, ROLE_PANEL_DIM, "\"");
        used += ui_text(y, x + used, w - used, ROLE_CACHE_SINK, s->text[i]);
        used += ui_text(y, x + used, w - used, ROLE_PANEL_DIM, "\"");
    }
}

/* Per layer: a row each when there is room, else a column each. */
static void draw_layers(const struct sinks_state *s, struct rect r)
{
    if (s->n_layer <= 0 || r.h <= 0) return;
    float hi = 0;
    for (int l = 0; l < s->n_layer; l++)
        if (s->layer[l] > hi) hi = s->layer[l];
    hi = hi < 0.01f ? 0.01f : hi > 1 ? 1 : hi;
    if (r.h >= s->n_layer + 1 && r.w >= 24) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_LABEL, "per layer");
        for (int l = 0; l < s->n_layer; l++) {
            int y = r.y + 1 + l, n = ui_textf(y, r.x, r.w, ROLE_PANEL_LABEL, "L%-3d", l);
            ui_gauge(y, r.x + n, r.w - n - 7, s->layer[l], ROLE_SPARK, ROLE_GAUGE_EMPTY);
            char pct[16];
            snprintf(pct, sizeof pct, "%5.1f%%", s->layer[l] * 100);
            ui_text_right(y, r.x, r.w, ROLE_PANEL_VALUE, pct);
        }
        return;
    }
    if (r.h < 2) return;
    char label[48];
    snprintf(label, sizeof label, "per layer L0..L%d \u2264%.1f%%", s->n_layer - 1, hi * 100);
    ui_text(r.y + r.h - 1, r.x, r.w, ROLE_PANEL_LABEL, label);
    int lw = ui_width(label) + 1, room = r.w - lw;
    if (room < 4) return;
    int bw = room / s->n_layer;
    if (bw > 4) bw = 4;
    float v[ANC_STATS_MAX_LAYERS * 4];
    int n = 0;
    if (bw >= 1) {
        for (int l = 0; l < s->n_layer; l++)
            for (int k = 0; k < bw; k++) v[n++] = (k == bw - 1 && bw > 1) ? NAN : s->layer[l];
    } else { /* more layers than columns: each bar the largest share of its layers */
        int per = (s->n_layer + room - 1) / room;
        for (int l = 0; l < s->n_layer; l += per) {
            float mx = 0;
            for (int k = l; k < l + per && k < s->n_layer; k++)
                if (s->layer[k] > mx) mx = s->layer[k];
            v[n++] = mx;
        }
    }
    ui_bars((struct rect){r.y, r.x + lw, r.h, n}, v, n, 0, hi, ROLE_SPARK);
}

static void sinks_draw(const void *state, struct rect r)
{
    const struct sinks_state *s = state;
    if (!s->have) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "waiting for the engine...");
        return;
    }
    if (s->remote) {
        panel_remote_sinks(&s->rs, r);
        return;
    }
    if (s->n_sink == 0 || s->policy != ANC_CACHE_SINK) {
        ui_textf(r.y, r.x, r.w, ROLE_PANEL_DIM, "no sink tokens (policy %s)",
                 anc_cache_policy_name(s->policy));
        if (r.h > 1)
            ui_text(r.y + 1, r.x, r.w, ROLE_PANEL_DIM,
                    s->policy == ANC_CACHE_WINDOW ? "/cache sink keeps the first tokens"
                                                  : "/cache sink to see them");
        return;
    }
    if (s->n_sink_now == 0) {
        ui_text_wrapped(r, ROLE_PANEL_DIM, "no tokens yet: the first ones become sinks");
        return;
    }
    int y = r.y, left = r.h;
    draw_gauge(s, y++, r.x, r.w);
    if (--left <= 0) return;
    /* rows, most useful first: the sinks (one line, or one each), the
       trend (1..3 rows), per-layer bars (a row each, or a small chart) */
    int sink_rows = 1, trend = left >= 2 ? 1 : 0;
    int rest = left - sink_rows - trend;
    int layers = 0;
    if (rest >= s->n_layer + 1) layers = s->n_layer + 1;
    else if (rest >= 3) layers = rest > 6 ? 6 : rest;
    rest -= layers;
    if (rest >= s->n_sink_now - 1 && s->n_sink_now > 1) {
        sink_rows = s->n_sink_now;
        rest -= s->n_sink_now - 1;
    }
    int add = rest > 2 ? 2 : rest;
    trend += add;
    rest -= add;
    if (trend) {
        draw_history(s, (struct rect){y, r.x, trend, r.w});
        y += trend;
    }
    if (sink_rows == 1) draw_sink_line(s, y++, r.x, r.w);
    else y += draw_sink_rows(s, (struct rect){y, r.x, sink_rows, r.w});
    if (layers) draw_layers(s, (struct rect){y + (rest > 0), r.x, layers, r.w});
}

const struct panel_class panel_sinks_class = {
    .name = "sinks",
    .title = "Sink tokens",
    .min_rows = 4,
    .weight = 1,
    .state_size = sizeof(struct sinks_state),
    .update = sinks_update,
    .draw = sinks_draw,
    .tag = sinks_tag,
};
