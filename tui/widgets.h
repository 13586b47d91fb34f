/* widgets.h — the drawing code every part of the screen shares: text
 * clipped by display width (wide and combining characters), boxes with
 * titles, gauges, sparklines and bar charts, the cache map and a small
 * line plot. Panels compute numbers; these draw them. Draws on stdscr by
 * colour role only; knows nothing of the chat or the engine. */
#ifndef ANC_WIDGETS_H
#define ANC_WIDGETS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <wchar.h>

#include "theme.h"

struct rect {
    int y, x, h, w;
};

/* Decide between Unicode and ASCII glyphs (after setlocale). */
void ui_init_glyphs(void);
bool ui_unicode(void);

/* ---- text -------------------------------------------------------------- */

/* Decode one character of UTF-8 for display: *wc is the character to show
 * (U+FFFD for bad bytes, a control picture for control characters) and
 * *width its columns (0 for combining marks, 2 for wide). Returns the bytes
 * used (>= 1 when len > 0). */
size_t ui_decode(const char *s, size_t len, wchar_t *wc, int *width);
/* Display width of UTF-8 text (as ui_text would draw it). */
int ui_width(const char *s);
int ui_widthn(const char *s, size_t len);
/* Bytes of the longest prefix of s that fits in w columns. */
size_t ui_fit(const char *s, size_t len, int w);

/* Wrap UTF-8 text to w columns: break after blanks and around wide
 * characters, hard-break words longer than a line, never separate a
 * combining mark from its base; each newline starts a line. EMIT gets each
 * line as a byte range of t (first: the text's first line). */
typedef void (*ui_wrap_fn)(void *ctx, size_t off, size_t len, bool first);
void ui_wrap(const char *t, size_t len, int w, ui_wrap_fn emit, void *ctx);

/* Draw UTF-8 text at (y, x), at most w columns, never splitting a
 * character; returns the columns used. */
int ui_textn(int y, int x, int w, enum theme_role role, const char *s, size_t len);
int ui_text(int y, int x, int w, enum theme_role role, const char *s);
int ui_textf(int y, int x, int w, enum theme_role role, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* As ui_text, but text too wide for w columns is cut one column short and
 * ends in an ellipsis ("\u2026", "~" without Unicode): a cut is never silent. */
int ui_text_ell(int y, int x, int w, enum theme_role role, const char *s);
/* The first of n texts, longest wording first, that fits in w columns;
 * when none does, the last one cut with an ellipsis. */
int ui_text_first_fit(int y, int x, int w, enum theme_role role, const char *const *texts, int n);
/* Text wrapped into the rows of r (ui_wrap's rules); when it needs more
 * rows, the last row shown ends in an ellipsis. Returns the rows used. */
int ui_text_wrapped(struct rect r, enum theme_role role, const char *s);
/* Right-aligned in the w columns ending at x + w. */
int ui_text_right(int y, int x, int w, enum theme_role role, const char *s);
/* Blank w cells. */
void ui_fill(int y, int x, int w, enum theme_role role);
void ui_fill_rect(struct rect r, enum theme_role role);
/* One cell from a wide character (plus combining marks). */
void ui_cell(int y, int x, const wchar_t *wcs, enum theme_role role);

/* Label/value pairs laid out left to right: "label value  label value";
 * stops before a pair that would not fit. Returns the columns used. */
int ui_pairs(int y, int x, int w, const char *const *labels, const char *const *values, int n);

/* ---- frames ------------------------------------------------------------ */

/* A box round r with a title in its top border; returns the inner rect. */
struct rect ui_box(struct rect r, const char *title, enum theme_role border,
                   enum theme_role title_role);
void ui_hline(int y, int x, int w, enum theme_role role);
/* Text written into a box's bottom border, right-aligned (e.g. "↓ 12 more"). */
void ui_box_footer(struct rect box, const char *text, enum theme_role role);
/* The same in the top border (right-aligned). */
void ui_box_footer_top(struct rect box, const char *text, enum theme_role role);

/* ---- numbers ----------------------------------------------------------- */

/* A horizontal bar w columns wide filled to frac (0..1), eighth-cell
 * precise where Unicode is available. */
void ui_gauge(int y, int x, int w, double frac, enum theme_role fill, enum theme_role empty);
/* Vertical bars, one column per value (the last r.w values of v[0..n)),
 * scaled between lo and hi; r.h == 1 gives a sparkline. */
void ui_bars(struct rect r, const float *v, int n, float lo, float hi, enum theme_role role);

/* A grid of cells in reading order, one glyph per cell; kinds[i] indexes
 * the style table. */
struct ui_cell_style {
    const char *glyph;       /* Unicode glyph */
    char ascii;              /* ASCII fallback */
    enum theme_role role;
};
void ui_cellmap(struct rect r, const unsigned char *kinds, int n,
                const struct ui_cell_style *styles);
/* One legend entry: glyph then label; returns columns used. */
int ui_legend_item(int y, int x, int w, const struct ui_cell_style *st, const char *label);

/* A line plot on a dot canvas (2x4 dots per cell with Braille, one per
 * cell in ASCII). Each series gives, for every column of dots
 * (2 * r.w of them), the span [lo, hi] it covers, in [ymin, ymax]; later
 * series draw over earlier ones. */
struct ui_plot_series {
    const float *lo, *hi;    /* [2 * r.w] */
    enum theme_role role;
};
void ui_plot(struct rect r, const struct ui_plot_series *s, int n_series, float ymin, float ymax);

/* ---- number formatting ------------------------------------------------- */

/* "1.5 GiB", "320 KiB", "12 B" */
void ui_fmt_bytes(char *buf, size_t cap, unsigned long long bytes);
/* "1,234,567" */
void ui_fmt_count(char *buf, size_t cap, long long v);

#endif
