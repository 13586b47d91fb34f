/* panel_remote.c — what the KV cache, Sink tokens and RoPE panels show
 * when the engine is a remote server (stats.remote): the figures the
 * server publishes (llama-server's /slots and /metrics, vLLM's Prometheus
 * /metrics) or a plain line saying they are not published. Draws from the
 * stats snapshot only, through widgets.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "panel.h"

/* "polled 0.4 s ago", or why figures are missing. */
static void draw_poll(const struct anc_stats *st, int y, int x, int w)
{
    char buf[200];
    if (st->poll_note[0]) {
        ui_text(y, x, w, ROLE_WARNING, st->poll_note);
        return;
    }
    if (st->poll_age < 0) snprintf(buf, sizeof buf, "nothing polled yet");
    else if (st->poll_age < 1) snprintf(buf, sizeof buf, "polled just now");
    else snprintf(buf, sizeof buf, "polled %.0f s ago", st->poll_age);
    ui_text(y, x, w, ROLE_PANEL_DIM, buf);
}

static void draw_gauge_row(int y, int x, int w, const char *label, const char *value, double frac)
{
    char pct[16];
    snprintf(pct, sizeof pct, "%3.0f%%", frac * 100);
    int n = ui_text(y, x, w, ROLE_PANEL_LABEL, label);
    n += ui_text(y, x + n, w - n, ROLE_PANEL_VALUE, value);
    int gw = w - n - 2 - 5;
    if (gw >= 4) ui_gauge(y, x + n + 1, gw, frac, ROLE_GAUGE_FILL, ROLE_GAUGE_EMPTY);
    ui_text_right(y, x, w, ROLE_PANEL_VALUE, pct);
}

void panel_remote_kv(const struct anc_stats *st, struct rect r)
{
    int y = r.y, end = r.y + r.h;
    char a[64], b[96];
    const char *dot = ui_unicode() ? " \u00b7 " : " - ";
    if (st->have_slot) {
        /* llama-server: the slot serving this conversation */
        snprintf(a, sizeof a, "%" PRId64 "/%d", st->slot_tokens, st->slot_ctx);
        draw_gauge_row(y++, r.x, r.w, "used ", a,
                       st->slot_ctx > 0 ? (double)st->slot_tokens / st->slot_ctx : 0);
        if (y >= end) return;
        snprintf(b, sizeof b, "slot %d of %d%s%s", st->slot_id, st->n_slots, dot,
                 st->slot_busy ? "generating" : "idle");
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
    } else if (st->server_ctx > 0) {
        snprintf(b, sizeof b, "context %" PRId64 " tokens per request", st->server_ctx);
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
    }
    if (y >= end) return;
    if (st->have_kv_usage) {
        /* vLLM: the whole server's paged cache, all requests together */
        if (st->server_kv_tokens > 0)
            snprintf(a, sizeof a, "%.0f of %" PRId64, st->kv_usage * (double)st->server_kv_tokens,
                     st->server_kv_tokens);
        else
            snprintf(a, sizeof a, "%.1f%%", 100 * st->kv_usage);
        draw_gauge_row(y++, r.x, r.w, "server KV ", a, st->kv_usage);
        if (y >= end) return;
    }
    if (!st->have_slot && !st->have_kv_usage) {
        ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, "the server publishes no cache figures");
        if (y >= end) return;
    }
    if (st->have_requests) {
        snprintf(b, sizeof b, "requests %g running%s%g waiting", st->req_running, dot, st->req_waiting);
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
        if (y >= end) return;
    }
    if (st->n_seen > 0) {
        char seen[32];
        ui_fmt_count(seen, sizeof seen, st->n_seen);
        snprintf(b, sizeof b, "last request: %s tokens", seen);
        ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, b);
        if (y >= end) return;
    }
    draw_poll(st, y, r.x, r.w);
}

void panel_remote_sinks(const struct anc_stats *st, struct rect r)
{
    int y = r.y, end = r.y + r.h;
    ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, "the server publishes no attention or sink tokens");
    if (y >= end) return;
    char b[128];
    if (strcmp(st->engine, "llama-server") == 0) {
        if (st->n_sink >= 0) snprintf(b, sizeof b, "n_keep %d (kept when the context shifts)", st->n_sink);
        else snprintf(b, sizeof b, "n_keep: the server's default");
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
        if (y >= end) return;
        ui_text(y, r.x, r.w, ROLE_PANEL_DIM, "/set sinks N sets it");
    } else {
        ui_text(y, r.x, r.w, ROLE_PANEL_DIM, "this engine has nothing like sinks to set");
    }
}

void panel_remote_rope(const struct anc_stats *st, int32_t n_ctx_train, struct rect r)
{
    int y = r.y, end = r.y + r.h;
    ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, "set by the server when it loads the model");
    if (y >= end) return;
    char b[128];
    int64_t ctx = st->have_slot ? st->slot_ctx : st->server_ctx;
    if (ctx > 0) {
        snprintf(b, sizeof b, "context %" PRId64 " tokens", ctx);
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
        if (y >= end) return;
    }
    if (n_ctx_train > 0) {
        snprintf(b, sizeof b, "trained at %d tokens", n_ctx_train);
        ui_text(y++, r.x, r.w, ROLE_PANEL_LABEL, b);
        if (y >= end) return;
    }
    if (ctx <= 0 && n_ctx_train <= 0) {
        ui_text(y++, r.x, r.w, ROLE_PANEL_DIM, "the server publishes no context length");
        if (y >= end) return;
    }
    snprintf(b, sizeof b, "%s", st->engine);
    ui_text(y, r.x, r.w, ROLE_PANEL_DIM, b);
}
