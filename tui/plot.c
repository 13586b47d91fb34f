/* plot.c — text charts (see plot.h). Each column is a bucket of points;
 * the bucket mean is drawn as a filled bar with eighth-block precision. */
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const eighths[9] = {" ", "\u2581", "\u2582", "\u2583", "\u2584",
                                       "\u2585", "\u2586", "\u2587", "\u2588"};
static const char ascii_levels[9] = {' ', '.', '.', ':', ':', '|', '|', '#', '#'};

void plot_series(FILE *out, const double *y, size_t n, long x0, int width, int height,
                 const char *title, const char *x_label, bool unicode)
{
    if (n == 0 || width < 8 || height < 2) return;
    if ((size_t)width > n) width = (int)n;
    double *col = calloc((size_t)width, sizeof *col);
    if (!col) return;
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < width; c++) {
        size_t a = n * (size_t)c / (size_t)width, b = n * ((size_t)c + 1) / (size_t)width;
        double sum = 0;
        for (size_t i = a; i < b; i++) sum += y[i];
        col[c] = b > a ? sum / (double)(b - a) : 0;
        if (col[c] < lo) lo = col[c];
        if (col[c] > hi) hi = col[c];
    }
    double base = lo > 0 ? 0 : lo; /* bars start at 0 for positive data */
    if (hi <= base) hi = base + 1;
    fprintf(out, "%s\n", title);
    for (int r = height - 1; r >= 0; r--) {
        double row_lo = base + (hi - base) * r / height;
        double row_hi = base + (hi - base) * (r + 1) / height;
        const char *axis = unicode ? "\u2502" : "|";
        if (r == height - 1) fprintf(out, "%8.3f %s", hi, axis);
        else if (r == 0) fprintf(out, "%8.3f %s", base, axis);
        else fprintf(out, "%8s %s", "", axis);
        for (int c = 0; c < width; c++) {
            double v = col[c];
            int level;
            if (v >= row_hi) level = 8;
            else if (v <= row_lo) level = 0;
            else level = (int)((v - row_lo) / (row_hi - row_lo) * 8.0);
            if (unicode) fputs(eighths[level], out);
            else fputc(ascii_levels[level], out);
        }
        fputc('\n', out);
    }
    fprintf(out, "%8s %s", "", unicode ? "\u2514" : "+");
    for (int c = 0; c < width; c++) fputs(unicode ? "\u2500" : "-", out);
    fputc('\n', out);
    char left[32], right[32];
    snprintf(left, sizeof left, "%ld", x0);
    snprintf(right, sizeof right, "%ld", x0 + (long)n - 1);
    int gap = width - (int)strlen(left) - (int)strlen(right);
    fprintf(out, "%10s%s%*s%s\n", "", left, gap > 1 ? gap : 1, "", right);
    fprintf(out, "%10s%*s\n", "", (width + (int)strlen(x_label)) / 2, x_label);
    free(col);
}
