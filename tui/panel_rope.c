/* panel_rope.c — the "RoPE" panel: base, scaling, factor, original
 * context, effective base and mscale, the effective reach, and the rotation
 * curves cos(p·ω_k) of a high-, a mid- and a low-frequency pair over the
 * positions in use, before (the file's base, no scaling) and after (the
 * settings in force). ω_k is computed here from the numbers in the stats
 * snapshot (formulas: docs TECHNIQUES.md §1); no engine internals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "panel.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

struct rope_state {
    bool have;
    bool remote;              /* a remote server: rs and its training context */
    struct anc_stats rs;
    int32_t n_ctx_train;
    bool pending;             /* asked for, applied at the next token */
    int scaling;
    double theta, theta_file, factor, base_eff, mscale, beta_fast, beta_slow;
    int32_t orig_ctx, dims;
    int64_t x_max;            /* positions plotted: 0 .. x_max */
    int64_t max_pos;          /* largest position the model sees now */
    int64_t reach;            /* orig_ctx × factor (or orig_ctx without scaling) */
    /* the model's own sliding-window layers: their fixed base (0: none) */
    int32_t n_local, local_window;
    int long_rope;            /* LongRoPE divisors: 0 none, 1 short, 2 long */
    double local_theta;
    int32_t lora_rank, lora_matrices; /* the adapter in force (rank 0: none) */
    float lora_scale;
    int32_t lora_trained_ctx;       /* what the adapter was trained for (0: unknown) */
    int lora_rope_scaling;
    float lora_rope_factor;
};

/* A setting asked for (> 0, or >= 0 for the scaling type) wins over the
 * one the engine reports in force. */
static double pick(double asked, double in_force) { return asked > 0 ? asked : in_force; }

/* Dynamic NTK's base for a length L (TECHNIQUES.md §1). */
static double ntk_base(double base, double s, double L, double L0, int d)
{
    if (L < L0) L = L0;
    return base * pow(s * L / L0 - (s - 1), (double)d / (d - 2));
}

static void rope_update(void *state, const struct panel_input *in)
{
    struct rope_state *s = state;
    const struct anc_stats *st = in->st;
    const struct anc_rope_settings *r = in->params ? &in->params->rope : NULL;
    s->have = true;
    s->remote = st->remote;
    if (st->remote) {
        s->rs = *st;
        s->n_ctx_train = in->view ? in->view->model.n_ctx_train : 0;
        return;
    }
    s->scaling = r && r->scaling >= 0 ? r->scaling : st->rope_scaling;
    s->theta = pick(r ? r->theta : 0, st->rope_theta > 0 ? st->rope_theta : 10000);
    s->theta_file = in->view && in->view->model.rope_theta > 0 ? in->view->model.rope_theta : s->theta;
    s->factor = pick(r ? r->factor : 0, st->rope_factor > 0 ? st->rope_factor : 1);
    s->beta_fast = pick(r ? r->yarn_beta_fast : 0, st->yarn_beta_fast > 0 ? st->yarn_beta_fast : 32);
    s->beta_slow = pick(r ? r->yarn_beta_slow : 0, st->yarn_beta_slow > 0 ? st->yarn_beta_slow : 1);
    s->orig_ctx = (int32_t)pick(r ? r->orig_ctx : 0, st->rope_orig_ctx > 0 ? st->rope_orig_ctx
                                                    : in->view ? in->view->model.n_ctx_train
                                                               : 0);
    s->dims = st->rope_dims >= 2 ? st->rope_dims : 2;
    s->n_local = st->n_layer_local;
    s->long_rope = st->rope_long;
    s->local_window = st->local_window;
    s->local_theta = st->local_rope_theta;
    s->lora_rank = st->lora_rank;
    s->lora_matrices = st->lora_matrices;
    s->lora_scale = st->lora_scale;
    s->lora_trained_ctx = st->lora_trained_ctx;
    s->lora_rope_scaling = st->lora_rope_scaling;
    s->lora_rope_factor = st->lora_rope_factor;
    s->pending = s->scaling != st->rope_scaling || s->theta != st->rope_theta ||
                 (s->factor != st->rope_factor && st->rope_factor > 0) ||
                 (s->orig_ctx != st->rope_orig_ctx && st->rope_orig_ctx > 0);
    bool scaled = s->scaling != ANC_ROPE_NONE && s->factor > 1;
    s->reach = scaled ? (int64_t)llround(s->orig_ctx * s->factor) : s->orig_ctx;
    const struct anc_session_params *p = in->params;
    enum anc_cache_policy policy = p ? p->cache : st->policy;
    int32_t window = p && p->window > 0 ? p->window : st->window;
    s->x_max = policy == ANC_CACHE_FULL ? st->capacity : window;
    if (s->x_max < 2) s->x_max = 2;
    s->max_pos = policy == ANC_CACHE_FULL ? st->n_seen : (st->n_cached > 0 ? st->n_cached : 0);
    if (!s->pending) {
        s->base_eff = st->rope_base_effective > 0 ? st->rope_base_effective : s->theta;
        s->mscale = st->rope_mscale;
        return;
    }
    /* not applied yet: what the engine will use, computed the same way */
    double attn = r && r->yarn_attn_factor > 0 ? r->yarn_attn_factor : 1;
    s->mscale = s->scaling == ANC_ROPE_YARN && s->factor > 1 ? attn * (0.1 * log(s->factor) + 1) : 1;
    s->base_eff = s->scaling == ANC_ROPE_DYNAMIC
                      ? ntk_base(s->theta, s->factor, (double)s->max_pos, s->orig_ctx > 0 ? s->orig_ctx : 1, s->dims)
                      : s->theta;
}

static void rope_tag(const void *state, char *buf, size_t cap)
{
    const struct rope_state *s = state;
    if (!s->have) return;
    if (s->remote) {
        snprintf(buf, cap, "server");
        return;
    }
    const char *next = s->pending ? " \u00b7 next token" : "";
    if (s->long_rope) snprintf(buf, cap, "LongRoPE %s%s", s->long_rope == 2 ? "long" : "short", next);
    else if (s->scaling == ANC_ROPE_NONE) snprintf(buf, cap, "no scaling%s", next);
    else snprintf(buf, cap, "%s \u00d7%g%s", anc_rope_scaling_name(s->scaling), s->factor, next);
}

/* ---- frequencies -------------------------------------------------------- */

static double omega_plain(double base, int k, int d) { return pow(base, -2.0 * k / d); }

/* YaRN's correction dimension for a number of rotations r. */
static double yarn_corr(double r, double L0, double base, int d)
{
    return d * log(L0 / (2 * M_PI * r)) / (2 * log(base));
}

static double omega_yarn(const struct rope_state *s, int k)
{
    int d = s->dims;
    double w = omega_plain(s->theta, k, d), L0 = s->orig_ctx > 0 ? s->orig_ctx : 1;
    double low = floor(yarn_corr(s->beta_fast, L0, s->theta, d));
    double high = ceil(yarn_corr(s->beta_slow, L0, s->theta, d));
    if (low < 0) low = 0;
    if (high > d - 1) high = d - 1;
    double y = (k - low) / fmax(0.001, high - low);
    double e = 1 - fmin(1, fmax(0, y)); /* extrapolation weight */
    return (w / s->factor) * (1 - e) + w * e;
}

/* Llama 3 (low_freq_factor 1, high_freq_factor 4: the published values). */
static double omega_llama3(const struct rope_state *s, int k)
{
    const double lf = 1, hf = 4;
    double w = omega_plain(s->theta, k, s->dims), L0 = s->orig_ctx > 0 ? s->orig_ctx : 1;
    double lambda = 2 * M_PI / w;
    if (lambda < L0 / hf) return w;
    if (lambda > L0 / lf) return w / s->factor;
    double sigma = (L0 / lambda - lf) / (hf - lf);
    return (1 - sigma) * w / s->factor + sigma * w;
}

/* ω_k under the settings in force. */
static double omega_scaled(const struct rope_state *s, int k)
{
    switch (s->scaling) {
    case ANC_ROPE_LINEAR: return omega_plain(s->theta, k, s->dims) / s->factor;
    case ANC_ROPE_DYNAMIC: return omega_plain(s->base_eff, k, s->dims);
    case ANC_ROPE_YARN: return omega_yarn(s, k);
    case ANC_ROPE_LLAMA3: return omega_llama3(s, k);
    default: return omega_plain(s->theta, k, s->dims);
    }
}

/* cos over the angles [a0, a1]: its exact range, extremes included. */
static void cos_span(double a0, double a1, float *lo, float *hi)
{
    double c0 = cos(a0), c1 = cos(a1);
    double mn = fmin(c0, c1), mx = fmax(c0, c1);
    if (floor(a1 / (2 * M_PI)) > floor(a0 / (2 * M_PI))) mx = 1;
    if (floor((a1 - M_PI) / (2 * M_PI)) > floor((a0 - M_PI) / (2 * M_PI))) mn = -1;
    *lo = (float)mn;
    *hi = (float)mx;
}

/* One strip: a pair's curve before (dim) and after (in colour). A pair
 * that turns too fast to draw over the whole window is shown over its
 * first three turns instead, with that range written at the right. */
static void draw_strip(const struct rope_state *s, struct rect r, int k, const char *label,
                       enum theme_role role)
{
    int lw = 5;
    ui_text(r.y + (r.h - 1) / 2, r.x, lw, ROLE_PANEL_LABEL, label);
    struct rect p = {r.y, r.x + lw, r.h, r.w - lw};
    if (p.w <= 0) return;
    double w_before = omega_plain(s->theta_file, k, s->dims), w_after = omega_scaled(s, k);
    double x_range = (double)s->x_max, fast = fmax(w_before, w_after);
    double three_turns = fast > 0 ? 3 * 2 * M_PI / fast : x_range;
    if (three_turns < x_range / 4 && p.w >= 16) {
        x_range = ceil(three_turns);
        char range[32];
        snprintf(range, sizeof range, " 0\u2013%.0f", x_range);
        int tw = ui_width(range);
        p.w -= tw;
        ui_text(r.y + (r.h - 1) / 2, p.x + p.w, tw, ROLE_PANEL_DIM, range);
    }
    int cols = 2 * p.w;
    float *buf = malloc((size_t)cols * 4 * sizeof *buf);
    if (!buf) return;
    float *blo = buf, *bhi = buf + cols, *alo = buf + 2 * cols, *ahi = buf + 3 * cols;
    for (int c = 0; c < cols; c++) {
        double p0 = x_range * c / cols, p1 = x_range * (c + 1) / cols;
        cos_span(p0 * w_before, p1 * w_before, &blo[c], &bhi[c]);
        cos_span(p0 * w_after, p1 * w_after, &alo[c], &ahi[c]);
    }
    struct ui_plot_series series[2] = {{blo, bhi, ROLE_PLOT_BEFORE}, {alo, ahi, role}};
    ui_plot(p, series, 2, -1.05f, 1.05f);
    free(buf);
}

static void fmt_num(char *buf, size_t cap, double v)
{
    if (v >= 1000 && v < 1e12 && v == floor(v)) ui_fmt_count(buf, cap, (long long)v);
    else snprintf(buf, cap, "%.6g", v);
}

static void draw_numbers(const struct rope_state *s, int y, int x, int w, int rows)
{
    char base[32], eff[32], orig[32], reach[48], ms[16], fac[16], dims[16];
    fmt_num(base, sizeof base, s->theta);
    fmt_num(eff, sizeof eff, s->base_eff);
    ui_fmt_count(orig, sizeof orig, s->orig_ctx);
    ui_fmt_count(reach, sizeof reach, s->reach);
    snprintf(ms, sizeof ms, "%.4g", s->mscale);
    snprintf(fac, sizeof fac, "\u00d7%g", s->factor);
    snprintf(dims, sizeof dims, "%d", (int)s->dims);
    const char *scal = s->long_rope == 2   ? "LongRoPE long"
                       : s->long_rope == 1 ? "LongRoPE short"
                                           : anc_rope_scaling_name(s->scaling);
    {
        const char *l[] = {"base", "scaling", "factor"};
        const char *v[] = {base, scal, fac};
        ui_pairs(y, x, w, l, v, s->scaling == ANC_ROPE_NONE ? 2 : 3);
    }
    if (rows < 2) return;
    {
        /* reach in the warning colour when the positions in use go past it */
        int n = ui_pairs(y + 1, x, w, (const char *[]){"orig ctx"}, (const char *[]){orig}, 1);
        n += 2;
        n += ui_text(y + 1, x + n, w - n, ROLE_PANEL_LABEL, "reach ");
        bool past = s->reach > 0 && s->max_pos > s->reach;
        n += ui_text(y + 1, x + n, w - n, past ? ROLE_WARNING : ROLE_PANEL_VALUE, reach);
        if (past) ui_text(y + 1, x + n, w - n, ROLE_WARNING, " (exceeded)");
    }
    if (rows < 3) return;
    const char *l[] = {"eff. base", "mscale", "dims"};
    const char *v[] = {eff, ms, dims};
    ui_pairs(y + 2, x, w, l, v, 3);
}

static void draw_axis(const struct rope_state *s, int y, int x, int w)
{
    char right[32];
    ui_fmt_count(right, sizeof right, s->x_max);
    ui_text(y, x, w, ROLE_PLOT_AXIS, "pos 0");
    int rw = ui_width(right);
    ui_text_right(y, x, w, ROLE_PLOT_AXIS, right);
    const char *mid = w >= 44 ? "dim: file base, unscaled" : "dim: unscaled";
    int mw = ui_width(mid);
    if (5 + 2 + mw + 2 + rw <= w) ui_text(y, x + (w - mw) / 2, mw, ROLE_PLOT_BEFORE, mid);
}

static void rope_draw(const void *state, struct rect r)
{
    const struct rope_state *s = state;
    if (!s->have) {
        ui_text(r.y, r.x, r.w, ROLE_PANEL_DIM, "waiting for the engine...");
        return;
    }
    if (s->remote) {
        panel_remote_rope(&s->rs, s->n_ctx_train, r);
        return;
    }
    int num_rows = r.h >= 7 ? 3 : r.h >= 5 ? 2 : r.h >= 2 ? 2 : 1;
    draw_numbers(s, r.y, r.x, r.w, num_rows);
    if (s->n_local > 0 && r.h >= 4) { /* the settings above are the global layers' */
        char line[128], shorter[128], shortest[128], base[32];
        fmt_num(base, sizeof base, s->local_theta);
        snprintf(line, sizeof line, "%d local layers: base %s, window %d, unscaled",
                 (int)s->n_local, base, (int)s->local_window);
        snprintf(shorter, sizeof shorter, "%d local layers: base %s, window %d", (int)s->n_local, base,
                 (int)s->local_window);
        snprintf(shortest, sizeof shortest, "%d local: base %s, window %d", (int)s->n_local, base,
                 (int)s->local_window);
        const char *texts[] = {line, shorter, shortest};
        ui_text_first_fit(r.y + num_rows, r.x, r.w, ROLE_PANEL_DIM, texts, 3);
        num_rows++;
    }
    if (s->lora_rank > 0 && r.h >= 5) { /* an adapter changes what the model does with them */
        char line[96];
        snprintf(line, sizeof line, "LoRA adapter: rank %d, \u00d7%g, %d weights", (int)s->lora_rank,
                 s->lora_scale, (int)s->lora_matrices);
        ui_text(r.y + num_rows, r.x, r.w, ROLE_PANEL_DIM, line);
        num_rows++;
        if (s->lora_trained_ctx > 0 && r.h >= 6) { /* what it was fine-tuned for */
            if (s->lora_rope_scaling != ANC_ROPE_NONE)
                snprintf(line, sizeof line, "  trained at %d tokens, %s \u00d7%g", (int)s->lora_trained_ctx,
                         anc_rope_scaling_name(s->lora_rope_scaling), s->lora_rope_factor);
            else
                snprintf(line, sizeof line, "  trained at %d tokens, unscaled", (int)s->lora_trained_ctx);
            ui_text(r.y + num_rows, r.x, r.w, ROLE_PANEL_DIM, line);
            num_rows++;
        }
    }
    int left = r.h - num_rows;
    if (left < 2) return;
    /* the rest: three strips and an axis line */
    int axis = left >= 4 ? 1 : 0, strips = left - axis, sh = strips / 3;
    int n_pairs = s->dims / 2;
    int ks[3] = {0, n_pairs / 2, n_pairs - 1};
    static const char *const labels[3] = {"high", "mid", "low"};
    static const enum theme_role roles[3] = {ROLE_PLOT_HIGH, ROLE_PLOT_MID, ROLE_PLOT_LOW};
    int y = r.y + num_rows;
    if (sh < 1) {
        /* fewer than three rows: the low- and mid-frequency pairs only,
           in the usual order (mid above low) */
        for (int i = 0; i < strips; i++) {
            int k = 3 - strips + i;
            draw_strip(s, (struct rect){y + i, r.x, 1, r.w}, ks[k], labels[k], roles[k]);
        }
        return;
    }
    for (int i = 0; i < 3; i++) {
        int h = sh + (i < strips % 3 ? 1 : 0);
        draw_strip(s, (struct rect){y, r.x, h, r.w}, ks[i], labels[i], roles[i]);
        y += h;
    }
    if (axis) draw_axis(s, y, r.x + 5, r.w - 5);
}

const struct panel_class panel_rope_class = {
    .name = "rope",
    .title = "RoPE",
    .min_rows = 7,
    .weight = 2,
    .state_size = sizeof(struct rope_state),
    .update = rope_update,
    .draw = rope_draw,
    .tag = rope_tag,
};
