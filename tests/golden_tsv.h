/* golden_tsv.h — the tokenizer golden files (the .tsv files of tests/golden,
 * written by tests/tokenizer_ref.py and tests/tokenizer_bpe_ref.py): two
 * tab-separated columns a line, a JSON string and token ids or a JSON array
 * of strings, and the strict JSON string parser they need. Header-only
 * (static inline, so each test stays one .c file); depends on core/util.h
 * (anc_read_file) and the C library only, not test_util.h. */
#ifndef ANC_GOLDEN_TSV_H
#define ANC_GOLDEN_TSV_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON strings ------------------------------------------------------- */

/* The value of four hex digits at s, -1 if they are not. */
static inline int golden_hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Code point cp (at most 0x10FFFF) as UTF-8 at o; returns its length. */
static inline size_t golden_utf8_put(char *o, uint32_t cp)
{
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    size_t n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t i = n - 1; i > 0; i--, cp >>= 6) o[i] = (char)(0x80 | (cp & 0x3F));
    o[0] = (char)(lead[n] | cp);
    return n;
}

/* Parse the JSON string literal starting at *pp (at its opening quote):
 * the escapes \" \\ \/ \b \f \n \r \t and \uXXXX, with surrogate pairs
 * joined (a lone surrogate is an error). *pp moves past the closing quote.
 * Returns the bytes, malloc'ed with a NUL added (they may hold NULs, from
 * \u0000) and their length in *len; NULL if malformed. */
static inline char *golden_json_str(const char **pp, size_t *len)
{
    const char *p = *pp;
    if (*p != '"') return NULL;
    p++;
    char *o = malloc(strlen(p) + 1); /* the output is never longer than the input */
    if (!o) {
        fprintf(stderr, "golden_tsv: out of memory\n");
        exit(1);
    }
    char *w = o;
    for (;;) {
        char c = *p++;
        if (c == '"') break;
        if (c == '\0' || c == '\n') goto bad;
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        c = *p++;
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            int hi = golden_hex4(p);
            if (hi < 0) goto bad;
            p += 4;
            uint32_t cp = (uint32_t)hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                int lo = p[0] == '\\' && p[1] == 'u' ? golden_hex4(p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) goto bad;
                p += 6;
                cp = 0x10000 + ((uint32_t)(hi - 0xD800) << 10) + (uint32_t)(lo - 0xDC00);
            } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                goto bad;
            }
            w += golden_utf8_put(w, cp);
            break;
        }
        default:
            goto bad;
        }
    }
    *len = (size_t)(w - o);
    *w = '\0';
    *pp = p;
    return o;
bad:
    free(o);
    return NULL;
}

/* ---- the files ---------------------------------------------------------- */

enum golden_layout {
    GOLDEN_TEXT_IDS,  /* "JSON string<TAB>ids" (encode files) */
    GOLDEN_IDS_TEXT,  /* "ids<TAB>JSON string" (decode files) */
    GOLDEN_TEXT_SPLIT /* "JSON string<TAB>JSON array of strings" (split files) */
};

/* One line. Ids are decimal, separated by spaces, each 0 to INT32_MAX. */
struct golden {
    char *text; /* the JSON string column: malloc'ed, NUL added, may hold NULs */
    size_t len;
    int32_t *ids; /* the ids column */
    size_t n_ids;
    char **split; /* the JSON array column: its strings, as text */
    size_t *split_len;
    size_t n_split;
};

static inline void *golden_grow(void *p, size_t n, size_t size)
{
    if (!(p = realloc(p, n * size))) {
        fprintf(stderr, "golden_tsv: out of memory\n");
        exit(1);
    }
    return p;
}

/* The ids in [p, end) into g; false if malformed. */
static inline bool golden_parse_ids(const char *p, const char *end, struct golden *g)
{
    size_t cap = 16;
    g->ids = golden_grow(NULL, cap, sizeof *g->ids);
    while (p < end) {
        if (*p == ' ') {
            p++;
            continue;
        }
        char *q;
        long v = strtol(p, &q, 10);
        if (q == p || q > end || v < 0 || v > INT32_MAX) return false;
        if (g->n_ids == cap) g->ids = golden_grow(g->ids, cap *= 2, sizeof *g->ids);
        g->ids[g->n_ids++] = (int32_t)v;
        p = q;
    }
    return true;
}

/* The JSON array of strings in [p, end) into g; false if malformed. */
static inline bool golden_parse_split(const char *p, const char *end, struct golden *g)
{
    size_t cap = 8;
    g->split = golden_grow(NULL, cap, sizeof *g->split);
    g->split_len = golden_grow(NULL, cap, sizeof *g->split_len);
    if (*p++ != '[') return false;
    while (*p == ' ') p++;
    while (*p == '"') {
        if (g->n_split == cap) {
            cap *= 2;
            g->split = golden_grow(g->split, cap, sizeof *g->split);
            g->split_len = golden_grow(g->split_len, cap, sizeof *g->split_len);
        }
        char *s = golden_json_str(&p, &g->split_len[g->n_split]);
        if (!s) return false;
        g->split[g->n_split++] = s;
        while (*p == ',' || *p == ' ') p++;
    }
    return *p == ']' && p + 1 == end;
}

/* One line (NUL-terminated at its end) into g; false if malformed. */
static inline bool golden_parse_line(char *line, enum golden_layout layout, struct golden *g)
{
    char *end = line + strlen(line), *tab = strchr(line, '\t');
    if (!tab) return false;
    const char *js = layout == GOLDEN_IDS_TEXT ? tab + 1 : line;
    const char *js_end = layout == GOLDEN_IDS_TEXT ? end : tab;
    g->text = golden_json_str(&js, &g->len);
    if (!g->text || js != js_end) return false;
    switch (layout) {
    case GOLDEN_TEXT_IDS: return golden_parse_ids(tab + 1, end, g);
    case GOLDEN_IDS_TEXT: return golden_parse_ids(line, tab, g);
    case GOLDEN_TEXT_SPLIT: return golden_parse_split(tab + 1, end, g);
    }
    return false;
}

/* Every line of tests/golden/name under $ANC_SRCDIR (else the current
 * directory); *n_lines gets their number. Exits with a message when the
 * file cannot be read or a line is malformed. Free with golden_free. */
static inline struct golden *golden_read(const char *name, enum golden_layout layout,
                                         size_t *n_lines)
{
    const char *src = getenv("ANC_SRCDIR");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tests/golden/%s", src && *src ? src : ".", name);
    size_t size, n = 0, cap = 0;
    char *all = anc_read_file(path, &size, err, sizeof err);
    if (!all) {
        fprintf(stderr, "cannot read golden file: %s\n", err);
        exit(1);
    }
    struct golden *gs = NULL;
    for (char *line = all; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (n == cap) gs = golden_grow(gs, cap = cap ? 2 * cap : 64, sizeof *gs);
        gs[n] = (struct golden){0};
        if (!golden_parse_line(line, layout, &gs[n])) {
            fprintf(stderr, "%s:%zu: malformed line\n", path, n + 1);
            exit(1);
        }
        n++;
        if (!nl) break;
        line = nl + 1;
    }
    free(all);
    *n_lines = n;
    return gs;
}

static inline void golden_free(struct golden *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(g[i].text);
        free(g[i].ids);
        for (size_t k = 0; k < g[i].n_split; k++) free(g[i].split[k]);
        free(g[i].split);
        free(g[i].split_len);
    }
    free(g);
}

#endif
