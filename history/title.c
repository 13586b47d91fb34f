/* title.c — a session title made from a message's text: first non-blank
 * line, whitespace folded, shortened by display width with an ellipsis at
 * a word boundary when there is one, never inside a UTF-8 sequence. Pure
 * C string work: depends on history.h and libc only (no locale, no curses,
 * no SQLite). */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#define REPLACEMENT 0xFFFDu

/* Decode one UTF-8 character at S (N bytes left, N >= 1). Invalid or
 * overlong sequences, surrogates and values past U+10FFFF give U+FFFD
 * and consume one byte. Returns the bytes consumed. */
static size_t decode(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 1) {
        *cp = c;
        return 1;
    }
    if (len == 0 || len > n) goto bad;
    unsigned v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = REPLACEMENT;
    return 1;
}

static size_t encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool in_ranges(unsigned cp, const unsigned (*r)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i][0] && cp <= r[i][1]) return true;
    return false;
}

/* Terminal columns of one character: 2 for East Asian wide and fullwidth
 * characters (CJK, Hangul, kana, fullwidth forms, most emoji), 0 for
 * combining marks and zero-width characters, 1 otherwise. */
static int char_cols(unsigned cp)
{
    static const unsigned wide[][2] = {
        {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
        {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
        {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
    };
    static const unsigned zero[][2] = {
        {0x0300, 0x036F}, {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    };
    if (in_ranges(cp, zero, sizeof zero / sizeof zero[0])) return 0;
    return in_ranges(cp, wide, sizeof wide / sizeof wide[0]) ? 2 : 1;
}

static bool is_space(unsigned cp) { return cp == ' ' || cp == '\t' || cp == 0x3000 || cp == 0xA0; }

/* The first line of TEXT holding something other than whitespace. */
static const char *first_line(const char *text, size_t *len)
{
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        for (size_t i = 0; i < n;) {
            unsigned cp;
            size_t k = decode((const unsigned char *)p + i, n - i, &cp);
            if (!is_space(cp)) {
                *len = n;
                return p;
            }
            i += k;
        }
        if (!p[n]) break;
        p += n + 1;
    }
    *len = 0;
    return p;
}

char *hist_title_from_text(const char *text, int max_cols)
{
    if (!text) text = "";
    if (max_cols < 2) max_cols = 2;
    size_t len;
    const unsigned char *s = (const unsigned char *)first_line(text, &len);
    /* at most 4 bytes per kept character, plus the ellipsis */
    char *out = malloc(len * 3 + 8);
    if (!out) return NULL;
    size_t o = 0, cut = 0; /* cut: where the text ends if an ellipsis is needed */
    size_t word_end = 0;   /* the end of the last whole word that leaves room for it */
    int cols = 0, word_cols = 0;
    bool space = false, shortened = false;
    for (size_t i = 0; i < len;) {
        unsigned cp;
        i += decode(s + i, len - i, &cp);
        if (is_space(cp)) {
            space = o > 0;
            continue;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) cp = REPLACEMENT;
        int w = char_cols(cp) + (space ? 1 : 0);
        if (cols + w > max_cols) {
            shortened = true;
            break;
        }
        if (space && cols <= max_cols - 1) word_end = o, word_cols = cols;
        if (space) out[o++] = ' ';
        space = false;
        o += encode(cp, out + o);
        cols += w;
        if (cols <= max_cols - 1) cut = o; /* still room for the ellipsis */
    }
    if (shortened) {
        /* at a word boundary when that keeps at least half the width
         * (text without spaces, such as Chinese, is cut at a character) */
        o = word_cols >= max_cols / 2 ? word_end : cut;
        while (o > 0 && out[o - 1] == ' ') o--;
        memcpy(out + o, "\xE2\x80\xA6", 3); /* … */
        o += 3;
    }
    out[o] = '\0';
    return out;
}
