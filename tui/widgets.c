/* widgets.c — shared drawing code (see widgets.h): clipped wide-character
 * text, boxes, gauges, bar charts, cell maps and Braille line plots. Works
 * on stdscr with colour roles; no chat or engine dependency. */
#include "widgets.h"

#include <langinfo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool unicode_ok;

void ui_init_glyphs(void)
{
    const char *cs = nl_langinfo(CODESET);
    unicode_ok = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

bool ui_unicode(void) { return unicode_ok; }

/* ---- text -------------------------------------------------------------- */

/* Without a UTF-8 locale: decode UTF-8 by hand and show the punctuation the
 * interface uses as its nearest ASCII; anything else is '?'. */
static size_t decode_ascii(const char *s, size_t len, wchar_t *wc, int *width)
{
    static const struct {
        unsigned cp;
        char ascii;
    } translit[] = {
        {0x00B7, '.'}, {0x00D7, 'x'}, {0x2013, '-'}, {0x2014, '-'}, {0x2026, '~'},
        {0x2191, '^'}, {0x2193, 'v'}, {0x2264, '<'}, {0x2423, '_'}, {0x2424, '$'},
        {0x2409, '>'}, {0x240D, '<'}, {0x2717, '!'}, {0x203A, '>'}, {0x21B5, '<'},
        {0x25CF, '*'}, {0x25B6, '>'}, {0x25D0, '~'}, {0x2502, '|'}, {0x2500, '-'},
    };
    const unsigned char *u = (const unsigned char *)s;
    size_t n = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 1;
    unsigned cp = n == 4 ? u[0] & 0x07u : n == 3 ? u[0] & 0x0Fu : u[0] & 0x1Fu;
    if (n > len) n = 1;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            n = 1;
            break;
        }
        cp = cp << 6 | (u[i] & 0x3Fu);
    }
    *wc = L'?';
    *width = 1;
    for (size_t i = 0; n > 1 && i < sizeof translit / sizeof translit[0]; i++)
        if (translit[i].cp == cp) *wc = (wchar_t)translit[i].ascii;
    return n;
}

size_t ui_decode(const char *s, size_t len, wchar_t *wc, int *width)
{
    if (len == 0) {
        *wc = L' ';
        *width = 0;
        return 0;
    }
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        if (c == '\t') {
            *wc = L' ';
            *width = 1;
        } else if (c < 0x20 || c == 0x7f) {
            /* control characters shown as their control pictures (U+2400) */
            *wc = unicode_ok ? (wchar_t)(c == 0x7f ? 0x2421 : 0x2400 + c) : L'?';
            *width = 1;
        } else {
            *wc = (wchar_t)c;
            *width = 1;
        }
        return 1;
    }
    if (!unicode_ok) return decode_ascii(s, len, wc, width);
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t w;
    size_t n = mbrtowc(&w, s, len, &st);
    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
        *wc = unicode_ok ? (wchar_t)0xFFFD : L'?';
        *width = 1;
        return 1;
    }
    int cw = wcwidth(w);
    if (cw < 0) {
        *wc = unicode_ok ? (wchar_t)0xFFFD : L'?';
        cw = 1;
    } else {
        *wc = w;
    }
    *width = cw > 2 ? 2 : cw;
    return n;
}

int ui_widthn(const char *s, size_t len)
{
    int w = 0, cw;
    wchar_t wc;
    for (size_t i = 0; i < len;) {
        i += ui_decode(s + i, len - i, &wc, &cw);
        w += cw;
    }
    return w;
}

int ui_width(const char *s) { return s ? ui_widthn(s, strlen(s)) : 0; }

size_t ui_fit(const char *s, size_t len, int w)
{
    int used = 0, cw;
    wchar_t wc;
    size_t i = 0;
    while (i < len) {
        size_t n = ui_decode(s + i, len - i, &wc, &cw);
        if (used + cw > w) break;
        used += cw;
        i += n;
    }
    return i;
}

/* Wrap one paragraph [p, q) of text to w columns: break after blanks and
 * around wide characters, hard-break words longer than a line, and never
 * separate a combining mark from its base. */
static void wrap_paragraph(const char *t, size_t p, size_t q, int w, ui_wrap_fn emit, void *ctx,
                           bool *first)
{
    if (p == q) {
        emit(ctx, p, 0, *first);
        *first = false;
        return;
    }
    size_t start = p, i = p, brk = p; /* brk: where a new line may start */
    int col = 0;
    while (i < q) {
        wchar_t wc;
        int cw;
        size_t n = ui_decode(t + i, q - i, &wc, &cw);
        if (cw == 2 && i > start && brk != i) brk = i; /* may break before a wide char */
        if (col + cw > w && col > 0) {
            size_t end = brk > start ? brk : i;
            emit(ctx, start, end - start, *first);
            *first = false;
            start = end;
            while (start < q && t[start] == ' ') start++; /* a soft break eats its blanks */
            brk = start;
            col = ui_widthn(t + start, i > start ? i - start : 0);
            if (i < start) i = start;
            continue;
        }
        col += cw;
        i += n;
        if (wc == L' ' || cw == 2) brk = i;
        else if (cw == 0 && brk == i - n) brk = i; /* keep a mark with its base */
    }
    if (start < q || *first) {
        emit(ctx, start, q - start, *first);
        *first = false;
    }
}

void ui_wrap(const char *t, size_t len, int w, ui_wrap_fn emit, void *ctx)
{
    bool first = true;
    size_t p = 0;
    if (w < 1) w = 1;
    while (p <= len) {
        const char *nl = memchr(t + p, '\n', len - p);
        size_t q = nl ? (size_t)(nl - t) : len;
        wrap_paragraph(t, p, q, w, emit, ctx, &first);
        if (!nl) break;
        p = q + 1;
    }
}

void ui_cell(int y, int x, const wchar_t *wcs, enum theme_role role)
{
    cchar_t cc;
    if (setcchar(&cc, wcs, theme_attrs_only(role), theme_pair(role), NULL) == OK)
        mvadd_wch(y, x, &cc);
}

static void put_char(int y, int x, wchar_t ch, enum theme_role role)
{
    wchar_t wcs[2] = {ch, L'\0'};
    ui_cell(y, x, wcs, role);
}

void ui_fill(int y, int x, int w, enum theme_role role)
{
    for (int i = 0; i < w; i++) put_char(y, x + i, L' ', role);
}

void ui_fill_rect(struct rect r, enum theme_role role)
{
    for (int i = 0; i < r.h; i++) ui_fill(r.y + i, r.x, r.w, role);
}

int ui_textn(int y, int x, int w, enum theme_role role, const char *s, size_t len)
{
    if (w <= 0 || !s) return 0;
    wchar_t cell[CCHARW_MAX + 1];
    int n_cell = 0, cell_w = 0, used = 0;
    for (size_t i = 0; i < len;) {
        wchar_t wc;
        int cw;
        i += ui_decode(s + i, len - i, &wc, &cw);
        if (cw == 0) {
            /* a combining mark joins the character before it */
            if (n_cell == 0) {
                cell[n_cell++] = L' ';
                cell_w = 1;
            }
            if (n_cell < CCHARW_MAX - 1) cell[n_cell++] = wc;
            continue;
        }
        if (n_cell) {
            cell[n_cell] = L'\0';
            ui_cell(y, x + used, cell, role);
            used += cell_w;
            n_cell = 0;
        }
        if (used + cw > w) break;
        cell[n_cell++] = wc;
        cell_w = cw;
    }
    if (n_cell && used + cell_w <= w) {
        cell[n_cell] = L'\0';
        ui_cell(y, x + used, cell, role);
        used += cell_w;
    }
    return used;
}

int ui_text(int y, int x, int w, enum theme_role role, const char *s)
{
    return s ? ui_textn(y, x, w, role, s, strlen(s)) : 0;
}

int ui_textf(int y, int x, int w, enum theme_role role, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ui_text(y, x, w, role, buf);
}

int ui_text_ell(int y, int x, int w, enum theme_role role, const char *s)
{
    if (!s || w <= 0) return 0;
    if (ui_width(s) <= w) return ui_text(y, x, w, role, s);
    int n = ui_text(y, x, w - 1, role, s);
    return n + ui_text(y, x + n, 1, role, unicode_ok ? "\u2026" : "~");
}

int ui_text_first_fit(int y, int x, int w, enum theme_role role, const char *const *texts, int n)
{
    if (n <= 0) return 0;
    for (int i = 0; i < n; i++)
        if (ui_width(texts[i]) <= w) return ui_text(y, x, w, role, texts[i]);
    return ui_text_ell(y, x, w, role, texts[n - 1]);
}

struct wrapped_rows {
    const char *s;
    struct rect r;
    enum theme_role role;
    int row;
    size_t last; /* where the text of the last row drawn starts */
    bool more;   /* some text did not get a row */
};

static void wrapped_row(void *ctx, size_t off, size_t len, bool first)
{
    struct wrapped_rows *c = ctx;
    (void)first;
    if (c->row >= c->r.h) {
        c->more = true;
        return;
    }
    ui_textn(c->r.y + c->row++, c->r.x, c->r.w, c->role, c->s + off, len);
    c->last = off;
}

int ui_text_wrapped(struct rect r, enum theme_role role, const char *s)
{
    if (!s || r.w <= 0 || r.h <= 0) return 0;
    struct wrapped_rows c = {s, r, role, 0, 0, false};
    ui_wrap(s, strlen(s), r.w, wrapped_row, &c);
    if (c.more && c.row > 0) {
        /* the last row again: its text and all that follows, cut with an
           ellipsis (newlines as blanks) */
        char *line = strdup(s + c.last);
        if (line) {
            for (char *p = line; *p; p++)
                if (*p == '\n') *p = ' ';
            ui_text_ell(r.y + c.row - 1, r.x, r.w, role, line);
            free(line);
        }
    }
    return c.row;
}

int ui_text_right(int y, int x, int w, enum theme_role role, const char *s)
{
    int tw = ui_width(s);
    if (tw > w) return ui_text(y, x, w, role, s);
    return ui_text(y, x + w - tw, tw, role, s);
}

int ui_pairs(int y, int x, int w, const char *const *labels, const char *const *values, int n)
{
    int used = 0;
    for (int i = 0; i < n; i++) {
        int need = ui_width(labels[i]) + 1 + ui_width(values[i]) + (i ? 2 : 0);
        if (used + need > w) break;
        if (i) used += 2;
        used += ui_text(y, x + used, w - used, ROLE_PANEL_LABEL, labels[i]) + 1;
        used += ui_text(y, x + used, w - used, ROLE_PANEL_VALUE, values[i]);
    }
    return used;
}

/* ---- frames ------------------------------------------------------------ */

static wchar_t glyph(wchar_t uni, char ascii) { return unicode_ok ? uni : (wchar_t)ascii; }

void ui_hline(int y, int x, int w, enum theme_role role)
{
    for (int i = 0; i < w; i++) put_char(y, x + i, glyph(0x2500, '-'), role);
}

struct rect ui_box(struct rect r, const char *title, enum theme_role border,
                   enum theme_role title_role)
{
    struct rect in = {r.y + 1, r.x + 1, r.h - 2, r.w - 2};
    if (r.w < 2 || r.h < 2) return (struct rect){r.y, r.x, 0, 0};
    put_char(r.y, r.x, glyph(0x250C, '+'), border);
    put_char(r.y, r.x + r.w - 1, glyph(0x2510, '+'), border);
    put_char(r.y + r.h - 1, r.x, glyph(0x2514, '+'), border);
    put_char(r.y + r.h - 1, r.x + r.w - 1, glyph(0x2518, '+'), border);
    ui_hline(r.y, r.x + 1, r.w - 2, border);
    ui_hline(r.y + r.h - 1, r.x + 1, r.w - 2, border);
    for (int i = 1; i < r.h - 1; i++) {
        put_char(r.y + i, r.x, glyph(0x2502, '|'), border);
        put_char(r.y + i, r.x + r.w - 1, glyph(0x2502, '|'), border);
    }
    if (title && *title && r.w > 6) {
        int tw = ui_width(title), room = r.w - 6;
        if (tw > room) tw = room;
        put_char(r.y, r.x + 2, L' ', title_role);
        int used = ui_text(r.y, r.x + 3, tw, title_role, title);
        put_char(r.y, r.x + 3 + used, L' ', title_role);
    }
    return in;
}

static void border_text(struct rect box, int y, const char *text, enum theme_role role)
{
    int room = box.w - 6, tw = ui_width(text);
    if (room <= 0) return;
    if (tw > room) tw = room;
    int x = box.x + box.w - 3 - tw;
    put_char(y, x - 1, L' ', role);
    int used = ui_text(y, x, tw, role, text);
    put_char(y, x + used, L' ', role);
}

void ui_box_footer(struct rect box, const char *text, enum theme_role role)
{
    border_text(box, box.y + box.h - 1, text, role);
}

void ui_box_footer_top(struct rect box, const char *text, enum theme_role role)
{
    border_text(box, box.y, text, role);
}

/* ---- numbers ----------------------------------------------------------- */

static const wchar_t left_eighths[8] = {L' ', 0x258F, 0x258E, 0x258D, 0x258C, 0x258B, 0x258A, 0x2589};
static const wchar_t low_eighths[9] = {L' ', 0x2581, 0x2582, 0x2583, 0x2584, 0x2585, 0x2586, 0x2587, 0x2588};
static const char ascii_levels[9] = {' ', '.', '.', '_', '_', '=', '=', '#', '#'};

void ui_gauge(int y, int x, int w, double frac, enum theme_role fill, enum theme_role empty)
{
    if (w <= 0) return;
    if (!(frac >= 0)) frac = 0; /* NaN too */
    if (frac > 1) frac = 1;
    long eighths = lround(frac * w * 8);
    int full = (int)(eighths / 8), part = (int)(eighths % 8), i = 0;
    for (; i < full && i < w; i++) put_char(y, x + i, glyph(0x2588, '#'), fill);
    if (part && i < w) {
        put_char(y, x + i, unicode_ok ? left_eighths[part] : (part >= 4 ? '#' : '.'), fill);
        i++;
    }
    for (; i < w; i++) put_char(y, x + i, glyph(0x2591, '.'), empty);
}

void ui_bars(struct rect r, const float *v, int n, float lo, float hi, enum theme_role role)
{
    if (r.w <= 0 || r.h <= 0 || n <= 0) return;
    if (!(hi > lo)) hi = lo + 1;
    int first = n > r.w ? n - r.w : 0, cols = n - first;
    int x0 = r.x + r.w - cols; /* newest at the right edge */
    for (int c = 0; c < cols; c++) {
        float val = v[first + c];
        if (!isfinite(val)) continue;
        double f = (val - lo) / (hi - lo);
        if (f < 0) f = 0;
        if (f > 1) f = 1;
        long level = lround(f * r.h * 8);
        if (level == 0 && val > lo) level = 1; /* something non-zero stays visible */
        for (int row = 0; row < r.h; row++) {
            long cell = level - (long)row * 8;
            if (cell <= 0) break;
            int k = cell >= 8 ? 8 : (int)cell;
            wchar_t ch = unicode_ok ? low_eighths[k] : (wchar_t)ascii_levels[k];
            put_char(r.y + r.h - 1 - row, x0 + c, ch, role);
        }
    }
}

static void put_style(int y, int x, const struct ui_cell_style *st)
{
    if (unicode_ok && st->glyph) ui_text(y, x, 1, st->role, st->glyph);
    else put_char(y, x, (wchar_t)st->ascii, st->role);
}

void ui_cellmap(struct rect r, const unsigned char *kinds, int n,
                const struct ui_cell_style *styles)
{
    for (int i = 0; i < n && i < r.w * r.h; i++)
        put_style(r.y + i / r.w, r.x + i % r.w, &styles[kinds[i]]);
}

int ui_legend_item(int y, int x, int w, const struct ui_cell_style *st, const char *label)
{
    int need = 2 + ui_width(label);
    if (need > w) return 0;
    put_style(y, x, st);
    return 2 + ui_text(y, x + 2, w - 2, ROLE_PANEL_LABEL, label);
}

/* Braille dot bits for (column 0..1, row 0..3) inside a cell. */
static const unsigned char braille_bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};

static int dot_row(float y, float ymin, float ymax, int rows)
{
    double f = (ymax - y) / (ymax - ymin);
    int row = (int)lround(f * (rows - 1));
    return row < 0 ? 0 : row >= rows ? rows - 1 : row;
}

void ui_plot(struct rect r, const struct ui_plot_series *s, int n_series, float ymin, float ymax)
{
    if (r.w <= 0 || r.h <= 0 || !(ymax > ymin)) return;
    int sub_x = 2, sub_y = unicode_ok ? 4 : 1, rows = r.h * sub_y;
    for (int cy = 0; cy < r.h; cy++)
        for (int cx = 0; cx < r.w; cx++) {
            unsigned mask = 0;
            int top = -1;
            for (int k = 0; k < n_series; k++) {
                unsigned m = 0;
                for (int dx = 0; dx < sub_x; dx++) {
                    int col = cx * sub_x + dx;
                    float lo = s[k].lo[col], hi = s[k].hi[col];
                    if (!isfinite(lo) || !isfinite(hi)) continue;
                    /* a span over most of the range is a curve turning faster
                       than the columns: stippled, so it reads as a band */
                    bool band = hi - lo > 0.8f * (ymax - ymin);
                    int r_hi = dot_row(hi, ymin, ymax, rows), r_lo = dot_row(lo, ymin, ymax, rows);
                    for (int dy = 0; dy < sub_y; dy++) {
                        int row = cy * sub_y + dy;
                        if (band && (row + col) % 2) continue;
                        if (row >= r_hi && row <= r_lo) m |= unicode_ok ? braille_bit[dx][dy] : 1u;
                    }
                }
                if (m) {
                    mask |= m;
                    top = k;
                }
            }
            if (top < 0) continue;
            wchar_t ch = unicode_ok ? (wchar_t)(0x2800 + mask) : L'*';
            put_char(r.y + cy, r.x + cx, ch, s[top].role);
        }
}

/* ---- number formatting ------------------------------------------------- */

void ui_fmt_bytes(char *buf, size_t cap, unsigned long long bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%llu B", bytes);
    else snprintf(buf, cap, v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void ui_fmt_count(char *buf, size_t cap, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
    size_t n = strlen(tmp), o = 0;
    if (v < 0 && o + 1 < cap) buf[o++] = '-';
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (i && (n - i) % 3 == 0 && o + 2 < cap) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    if (cap) buf[o < cap ? o : cap - 1] = '\0';
}
