/* plot.h — small text charts for the terminal (line/area plot of a series
 * against position), in Unicode block characters or plain ASCII.
 * Front-end code; no engine or curses dependency. */
#ifndef ANC_PLOT_H
#define ANC_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Draw y[0..n) (x = index + x0) as a chart `width` columns by `height`
 * rows: each column shows the mean of its bucket of points. Labels the y
 * axis with min/max and the x axis with the first and last position. */
void plot_series(FILE *out, const double *y, size_t n, long x0, int width, int height,
                 const char *title, const char *x_label, bool unicode);

#endif
