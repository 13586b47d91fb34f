/* gguf_info.c — anc_gguf_print_info(): a readable report of a GGUF file
 * (header, metadata, tensor table, totals) laid out for an 80-column terminal.
 * Depends on gguf.h, kernels/dtype.h, util.h and the C library only. */
#include "ancora.h"
#include "dtype.h"
#include "gguf.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define INFO_COLS 80       /* the terminal width the layout aims at */
#define INFO_KEY_COLS 40   /* longer keys push their value to the right */
#define INFO_TYPE_COLS 7   /* "float32" */
#define INFO_MIN_VALUE_COLS 24
#define INFO_ELEM_COLS 32  /* one array element shows at most this wide */
#define INFO_NAME_COLS 120 /* tensor names are cut beyond this */

/* ---- a line buffer that counts terminal columns ------------------------ */

struct tbuf {
    char b[1024];  /* at most 4 bytes per column, INFO_NAME_COLS columns */
    size_t len;
    int w;         /* columns used */
};

static void tb_reset(struct tbuf *t)
{
    t->len = 0;
    t->w = 0;
    t->b[0] = '\0';
}

static bool tb_put(struct tbuf *t, const char *s, size_t n, int w)
{
    if (t->len + n >= sizeof t->b) return false;
    memcpy(t->b + t->len, s, n);
    t->len += n;
    t->b[t->len] = '\0';
    t->w += w;
    return true;
}

/* Plain ASCII text (one column per byte). */
static bool tb_puts(struct tbuf *t, const char *s) { return tb_put(t, s, strlen(s), (int)strlen(s)); }

static bool tb_printf(struct tbuf *t, const char *fmt, ...) ANC_PRINTF(2, 3);
static bool tb_printf(struct tbuf *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
    return tb_put(t, tmp, (size_t)n, n);
}

/* Columns a code point takes: 2 for the common wide (CJK, Hangul,
 * full-width, emoji) blocks, 1 otherwise. An approximation that needs no
 * locale; it only affects alignment. */
static int cp_width(uint32_t c)
{
    if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) ||
        (c >= 0x20000 && c <= 0x3fffd))
        return 2;
    return 1;
}

/* One displayable piece of s starting at *i: a valid UTF-8 character as is,
 * or an escape for quotes, backslashes, control characters, invalid bytes
 * and characters that would confuse a terminal. Advances *i. */
static size_t next_piece(const unsigned char *s, uint64_t len, uint64_t *i, char out[16], int *w)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[*i];
    if (c < 0x80) {
        (*i)++;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\t': esc = "\\t"; break;
        case '\r': esc = "\\r"; break;
        default: break;
        }
        if (esc) {
            memcpy(out, esc, 2);
            *w = 2;
            return 2;
        }
        if (c < 0x20 || c == 0x7f) {
            out[0] = '\\', out[1] = 'x', out[2] = hex[c >> 4], out[3] = hex[c & 15];
            *w = 4;
            return 4;
        }
        out[0] = (char)c;
        *w = 1;
        return 1;
    }
    /* multi-byte UTF-8: decode strictly */
    int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c > 0xf4) n = 0;
    uint32_t cp = n == 2 ? c & 0x1fu : n == 3 ? c & 0x0fu : c & 0x07u;
    bool ok = n > 0 && (uint64_t)n <= len - *i;
    for (int k = 1; ok && k < n; k++) {
        unsigned char cc = s[*i + (uint64_t)k];
        if ((cc & 0xc0) != 0x80) ok = false;
        cp = (cp << 6) | (cc & 0x3fu);
    }
    if (ok && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
               (cp >= 0xd800 && cp <= 0xdfff)))
        ok = false;
    if (!ok) {
        (*i)++;
        out[0] = '\\', out[1] = 'x', out[2] = hex[c >> 4], out[3] = hex[c & 15];
        *w = 4;
        return 4;
    }
    /* C1 controls and bidirectional overrides: show as \u escapes */
    if (cp <= 0x9f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
        cp == 0x2028 || cp == 0x2029) {
        *i += (uint64_t)n;
        snprintf(out, 16, "\\u%04x", (unsigned)cp);
        *w = 6;
        return 6;
    }
    memcpy(out, s + *i, (size_t)n);
    *i += (uint64_t)n;
    *w = cp_width(cp);
    return (size_t)n;
}

/* Columns the escaped form of s takes, stopping once past `limit`. */
static int str_width(struct gguf_str s, int limit)
{
    char piece[16];
    int w = 0, pw;
    for (uint64_t i = 0; i < s.len && w <= limit;) {
        next_piece((const unsigned char *)s.ptr, s.len, &i, piece, &pw);
        w += pw;
    }
    return w;
}

/* Append s escaped (quoted when `quote`) in at most maxw columns; a string
 * that does not fit ends in "…". Returns true when all of s was shown. */
static bool tb_str(struct tbuf *t, struct gguf_str s, int maxw, bool quote)
{
    int q = quote ? 2 : 0;
    int full = str_width(s, maxw);
    bool fits = full + q <= maxw;
    int room = fits ? full : maxw - q - 1; /* columns for the text itself */
    char piece[16];
    int used = 0, pw;
    if (quote) tb_put(t, "\"", 1, 1);
    for (uint64_t i = 0; i < s.len;) {
        uint64_t save = i;
        size_t n = next_piece((const unsigned char *)s.ptr, s.len, &i, piece, &pw);
        if (used + pw > room || !tb_put(t, piece, n, pw)) {
            i = save;
            break;
        }
        used += pw;
    }
    if (!fits) tb_put(t, "…", strlen("…"), 1);
    if (quote) tb_put(t, "\"", 1, 1);
    return fits;
}

/* ---- number formatting ------------------------------------------------- */

/* Shortest %g form that reads back as the same float/double. */
static void fmt_f32(char *buf, size_t cap, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

static void fmt_f64(char *buf, size_t cap, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* 1185376 -> "1.13 MiB" */
static void fmt_bytes(char *buf, size_t cap, uint64_t n)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " bytes", n);
    else
        snprintf(buf, cap, "%.2f %s", v, units[u]);
}

/* 292800 -> "292.8 K", 6738415616 -> "6.74 B" */
static void fmt_count(char *buf, size_t cap, uint64_t n)
{
    static const char *const units[] = {"", " K", " M", " B", " T"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64, n);
    else
        snprintf(buf, cap, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, units[u]);
}

/* ---- metadata values ----------------------------------------------------- */

/* One element (or scalar) of type t at p, as text. Strings use the length
 * field at p. maxw bounds strings only. */
static void tb_scalar(struct tbuf *t, enum gguf_vtype type, const uint8_t *p, int maxw)
{
    char num[64];
    uint64_t u64;
    uint32_t u32;
    uint16_t u16;
    float f;
    double d;
    switch (type) {
    case GGUF_VT_UINT8: tb_printf(t, "%u", (unsigned)p[0]); break;
    case GGUF_VT_INT8: tb_printf(t, "%d", (int)(int8_t)p[0]); break;
    case GGUF_VT_UINT16: memcpy(&u16, p, 2); tb_printf(t, "%u", (unsigned)u16); break;
    case GGUF_VT_INT16: memcpy(&u16, p, 2); tb_printf(t, "%d", (int)(int16_t)u16); break;
    case GGUF_VT_UINT32: memcpy(&u32, p, 4); tb_printf(t, "%" PRIu32, u32); break;
    case GGUF_VT_INT32: memcpy(&u32, p, 4); tb_printf(t, "%" PRId32, (int32_t)u32); break;
    case GGUF_VT_UINT64: memcpy(&u64, p, 8); tb_printf(t, "%" PRIu64, u64); break;
    case GGUF_VT_INT64: memcpy(&u64, p, 8); tb_printf(t, "%" PRId64, (int64_t)u64); break;
    case GGUF_VT_FLOAT32:
        memcpy(&f, p, 4);
        fmt_f32(num, sizeof num, f);
        tb_puts(t, num);
        break;
    case GGUF_VT_FLOAT64:
        memcpy(&d, p, 8);
        fmt_f64(num, sizeof num, d);
        tb_puts(t, num);
        break;
    case GGUF_VT_BOOL:
        if (p[0] <= 1) tb_puts(t, p[0] ? "true" : "false");
        else tb_printf(t, "true (0x%02x)", (unsigned)p[0]);
        break;
    case GGUF_VT_STRING: {
        struct gguf_str s;
        memcpy(&s.len, p, 8);
        s.ptr = (const char *)p + 8;
        tb_str(t, s, maxw, true);
        break;
    }
    default: tb_puts(t, "?"); break;
    }
}

/* Pointer to element i of a (non-string) array or a string array. */
static const uint8_t *arr_elem(const struct gguf_kv *kv, uint64_t i)
{
    if (kv->arr_type == GGUF_VT_STRING) return kv->data + kv->str_offs[i];
    return kv->data + i * gguf_vtype_size(kv->arr_type);
}

/* "[string × 512] "<unk>", "<s>", …" in at most maxw columns. */
static void tb_array(struct tbuf *t, const struct gguf_kv *kv, int maxw)
{
    int start = t->w;
    tb_printf(t, "[%s ", gguf_vtype_name(kv->arr_type));
    tb_put(t, "×", strlen("×"), 1);
    tb_printf(t, " %" PRIu64 "]", kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int used = t->w - start;
        int sep = i == 0 ? 1 : 2;         /* " " or ", " before the element */
        int tail = i + 1 < kv->arr_n ? 3 : 0; /* room kept for ", …" */
        int room = maxw - used - sep - tail;
        if (room < 3) {
            tb_puts(t, i == 0 ? " " : ", ");
            tb_put(t, "…", strlen("…"), 1);
            return;
        }
        struct tbuf e;
        tb_reset(&e);
        /* Only the first element may be cut short; later ones show whole
         * or give way to "…". */
        int ew = i == 0 && room < INFO_ELEM_COLS ? room : INFO_ELEM_COLS;
        tb_scalar(&e, kv->arr_type, arr_elem(kv, i), ew);
        if (e.w > room) {
            tb_puts(t, i == 0 ? " " : ", ");
            tb_put(t, "…", strlen("…"), 1);
            return;
        }
        tb_puts(t, i == 0 ? " " : ", ");
        tb_put(t, e.b, e.len, e.w);
    }
}

static void print_kv(FILE *out, const struct gguf_kv *kv, int keyw)
{
    struct tbuf t;
    tb_reset(&t);
    tb_puts(&t, "  ");
    tb_str(&t, kv->key, INFO_KEY_COLS * 2, false);
    while (t.w < 2 + keyw) tb_puts(&t, " ");
    tb_puts(&t, "  ");
    if (kv->type != GGUF_VT_ARRAY) {
        const char *tn = gguf_vtype_name(kv->type);
        tb_puts(&t, tn);
        for (int k = (int)strlen(tn); k < INFO_TYPE_COLS + 1; k++) tb_puts(&t, " ");
    }
    int room = INFO_COLS - t.w;
    if (room < INFO_MIN_VALUE_COLS) room = INFO_MIN_VALUE_COLS;
    if (kv->type == GGUF_VT_ARRAY) {
        tb_array(&t, kv, room);
    } else if (kv->type == GGUF_VT_STRING) {
        struct gguf_str s;
        memcpy(&s.len, kv->data, 8);
        s.ptr = (const char *)kv->data + 8;
        char note[48];
        snprintf(note, sizeof note, " (%" PRIu64 " bytes)", s.len);
        if (str_width(s, room) + 2 > room) { /* cut: say how long it really is */
            tb_str(&t, s, room - (int)strlen(note), true);
            tb_puts(&t, note);
        } else {
            tb_str(&t, s, room, true);
        }
    } else {
        tb_scalar(&t, kv->type, kv->data, room);
    }
    fprintf(out, "%s\n", t.b);
}

/* ---- tensors ------------------------------------------------------------- */

static void fmt_shape(char *buf, size_t cap, const struct gguf_tensor *t)
{
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims && o < cap; d++) {
        int n = snprintf(buf + o, cap - o, "%s%" PRIu64, d ? " × " : "", t->ne[d]);
        if (n < 0) break;
        o += (size_t)n;
    }
}

/* Display columns of a UTF-8 string we produced ourselves ("×" counts 1). */
static int utf8_cols(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    return w;
}

static void pad(FILE *out, int n)
{
    for (; n > 0; n--) fputc(' ', out);
}

static void print_tensors(FILE *out, const struct gguf_file *f)
{
    int namew = 4, typew = 4, shapew = 5, bytesw = 5, offw = 6;
    char buf[128];
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        int w = str_width(t->name, INFO_NAME_COLS);
        if (w > INFO_NAME_COLS) w = INFO_NAME_COLS;
        if (w > namew) namew = w;
        const struct anc_dtype_info *dt = anc_dtype_get(t->type);
        w = (int)strlen(dt ? dt->name : "?");
        if (w > typew) typew = w;
        fmt_shape(buf, sizeof buf, t);
        w = utf8_cols(buf);
        if (w > shapew) shapew = w;
        w = snprintf(buf, sizeof buf, "%" PRIu64, t->nbytes);
        if (w > bytesw) bytesw = w;
        w = snprintf(buf, sizeof buf, "%" PRIu64, t->offset);
        if (w > offw) offw = w;
    }
    /* Give names what is left of the 80 columns; longer ones overflow
     * rather than lose characters. */
    int fixed = 2 + 2 + typew + 2 + shapew + 2 + bytesw + 2 + offw;
    int namecol = INFO_COLS - fixed;
    if (namecol > namew) namecol = namew;
    if (namecol < 16) namecol = namew < 16 ? namew : 16;

    fprintf(out, "  %-*s  %-*s  %-*s  %*s  %*s\n", namecol, "name", typew, "type", shapew,
            "shape", bytesw, "bytes", offw, "offset");
    uint64_t total_bytes = 0, n_params = 0;
    uint64_t type_count[ANC_DT_COUNT_] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        struct tbuf nb;
        tb_reset(&nb);
        tb_str(&nb, t->name, INFO_NAME_COLS, false);
        const struct anc_dtype_info *dt = anc_dtype_get(t->type);
        fmt_shape(buf, sizeof buf, t);
        fprintf(out, "  %s", nb.b);
        pad(out, namecol - nb.w);
        fprintf(out, "  %-*s  %s", typew, dt ? dt->name : "?", buf);
        pad(out, shapew - utf8_cols(buf));
        fprintf(out, "  %*" PRIu64 "  %*" PRIu64 "\n", bytesw, t->nbytes, offw, t->offset);

        uint64_t elems = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; /* checked at open */
        if (__builtin_add_overflow(total_bytes, t->nbytes, &total_bytes)) total_bytes = UINT64_MAX;
        if (__builtin_add_overflow(n_params, elems, &n_params)) n_params = UINT64_MAX;
        if (t->type < ANC_DT_COUNT_) type_count[t->type]++;
    }

    /* Human-readable forms only where they say something shorter. */
    char hb[40] = "", hp[40] = "";
    if (total_bytes >= 1024) {
        fmt_bytes(hb + 2, sizeof hb - 3, total_bytes);
        hb[0] = ' ', hb[1] = '(';
        strcat(hb, ")");
    }
    if (n_params >= 1000) {
        fmt_count(hp + 2, sizeof hp - 3, n_params);
        hp[0] = ' ', hp[1] = '(';
        strcat(hp, ")");
    }
    fprintf(out, "\ntotals      %" PRIu64 " tensor%s, %" PRIu64 " bytes%s, %" PRIu64
            " parameters%s\n",
            f->n_tensors, f->n_tensors == 1 ? "" : "s", total_bytes, hb, n_params, hp);

    /* One line listing how many tensors of each type, e.g. "q4_K × 193". */
    struct tbuf tl;
    tb_reset(&tl);
    tb_puts(&tl, "types      ");
    bool first = true;
    for (uint32_t ty = 0; ty < ANC_DT_COUNT_; ty++) {
        if (!type_count[ty]) continue;
        const struct anc_dtype_info *dt = anc_dtype_get(ty);
        char item[64];
        snprintf(item, sizeof item, "%s%s × %" PRIu64, first ? " " : ", ",
                 dt ? dt->name : "?", type_count[ty]);
        if (tl.w + utf8_cols(item) > INFO_COLS) {
            fprintf(out, "%s,\n", tl.b);
            tb_reset(&tl);
            tb_puts(&tl, "           ");
            snprintf(item, sizeof item, " %s × %" PRIu64, dt ? dt->name : "?", type_count[ty]);
        }
        tb_put(&tl, item, strlen(item), utf8_cols(item));
        first = false;
    }
    fprintf(out, "%s\n", tl.b);
}

/* Path as given, with control characters escaped so a hostile file name
 * cannot drive the terminal. */
static void print_path(FILE *out, const char *path)
{
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

int anc_gguf_print_info(FILE *out, const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f) return -1;

    char hs[32];
    fmt_bytes(hs, sizeof hs, f->size);
    fputs("file        ", out);
    print_path(out, path);
    fputc('\n', out);
    fprintf(out, "size        %zu bytes", f->size);
    if (f->size >= 1024) fprintf(out, " (%s)", hs);
    fputc('\n', out);
    fprintf(out, "version     GGUF v%" PRIu32 "\n", f->version);
    fprintf(out, "alignment   %" PRIu64 "%s\n", f->alignment,
             gguf_find_kv(f, "general.alignment") ? "" : " (default)");
    fprintf(out, "data        offset %" PRIu64 ", %" PRIu64 " bytes\n", f->data_offset,
            (uint64_t)f->size - f->data_offset);

    fprintf(out, "\nmetadata    %" PRIu64 " key%s\n", f->n_kv, f->n_kv == 1 ? "" : "s");
    int keyw = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        int w = str_width(f->kv[i].key, INFO_KEY_COLS);
        if (w > keyw) keyw = w;
    }
    if (keyw > INFO_KEY_COLS) keyw = INFO_KEY_COLS;
    for (uint64_t i = 0; i < f->n_kv; i++) print_kv(out, &f->kv[i], keyw);

    fprintf(out, "\ntensors     %" PRIu64 "\n", f->n_tensors);
    if (f->n_tensors) print_tensors(out, f);
    else fputs("  (none)\n", out);

    gguf_close(f);
    if (fflush(out) != 0 || ferror(out)) {
        anc_set_err(err, errlen, "cannot write the report: %s", strerror(errno));
        return -1;
    }
    return 0;
}
