/* jinja.c — a Jinja2-subset interpreter for chat templates: lexer (with
 * Jinja's whitespace control, trim_blocks and lstrip_blocks), a recursive
 * descent parser into one kind of AST node, and a tree-walking renderer
 * whose values mimic the Python objects jinja2 would see. Part of core/;
 * depends on libc only.
 *
 * Why it is shaped this way: every allocation of a parse or a render comes
 * from one arena that is freed at once, and errors unwind with longjmp to
 * the one entry point, so that the hundreds of places where a hostile
 * template can fail need no cleanup code. Everything is bounded: node depth
 * (parser and evaluator recursion), evaluation steps, arena bytes and output
 * bytes. Strings are UTF-8 bytes with an optional taint mask (bytes that came
 * from a message's content) carried through concatenation, slicing and the
 * string methods, so that the caller can tokenize those bytes as plain text. */
#include "jinja.h"

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 120            /* nesting of expressions and statements */
#define MAX_STEPS 50000000ull    /* evaluation steps of one render */
#define MAX_CALL_DEPTH 40        /* macro calls inside macro calls */
#define MAX_RANGE 1000000        /* elements of range() */
#define MAX_ARENA ((size_t)64 << 20)
#define ERRMSG 300

/* ---- arena and errors ---------------------------------------------------- */

struct ablock {
    struct ablock *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct ablock *head;
    size_t total, limit;
};

struct fail {
    jmp_buf jb;
    char msg[ERRMSG + 32];
};

static void arena_free(struct arena *a)
{
    for (struct ablock *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

static _Noreturn void failf(struct fail *f, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void failf(struct fail *f, int line, const char *fmt, ...)
{
    char m[ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(f->msg, sizeof f->msg, "line %d: %s", line, m);
    else
        snprintf(f->msg, sizeof f->msg, "%s", m);
    longjmp(f->jb, 1);
}

static void *arena_alloc(struct arena *a, struct fail *f, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    if (n > a->limit || a->total > a->limit - n)
        failf(f, 0, "the template needs more than %zu MiB of memory", a->limit >> 20);
    struct ablock *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) failf(f, 0, "out of memory");
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

/* ---- values -------------------------------------------------------------- */

enum vtype {
    VT_UNDEF, VT_NONE, VT_BOOL, VT_INT, VT_FLOAT, VT_STR, VT_LIST, VT_DICT, VT_NS,
    VT_LOOP, VT_MACRO, VT_FUNC, VT_METHOD
};

struct str {
    const char *p;
    const unsigned char *taint; /* NULL: no byte from a message */
    size_t len;
};

struct list {
    struct value *v;
    size_t n;
};

struct dict { /* insertion-ordered; namespaces are dicts that `set` may change */
    struct value *k, *v;
    size_t n, cap;
};

struct loopinfo {
    const struct list *items;
    size_t index0;
};

struct node;
struct method;

struct value {
    enum vtype t;
    union {
        bool b;
        int64_t i;
        double f;
        const struct str *s;
        const struct list *l;
        struct dict *d;
        const struct loopinfo *loop;
        const struct node *macro;
        int func;
        const struct method *m;
    } u;
};

struct method {
    int id;
    struct value self;
};

enum func_id { F_RANGE, F_NAMESPACE, F_RAISE, F_STRFTIME, F_DICT };

static const struct value v_undef = { .t = VT_UNDEF };
static const struct value v_none = { .t = VT_NONE };

static struct value v_bool(bool b) { return (struct value){ .t = VT_BOOL, .u.b = b }; }
static struct value v_int(int64_t i) { return (struct value){ .t = VT_INT, .u.i = i }; }
static struct value v_float(double f) { return (struct value){ .t = VT_FLOAT, .u.f = f }; }

static const char *type_name(enum vtype t)
{
    static const char *const names[] = { "undefined", "none", "boolean", "integer", "float",
                                         "string", "list", "dict", "namespace", "loop",
                                         "macro", "function", "method" };
    return names[t];
}

/* ---- the lexer ------------------------------------------------------------ */

enum tok {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP
};

struct token {
    enum tok kind;
    int line;
    const char *p; /* text: name, operator, data or decoded string */
    size_t len;
    int64_t i;
    double f;
};

struct lexer {
    struct arena *a;
    struct fail *f;
    const char *src;
    size_t len, pos;
    int line;
    struct token *toks;
    size_t n, cap;
};

/* Bytes of the Python whitespace character at s[0..n) (0 if none): what
 * str.strip(), str.split() and the regex \s take (ASCII tab..CR,
 * 0x1C-0x1F, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). chat_template.c trims with it too. */
size_t jinja_space_at(const unsigned char *s, size_t n)
{
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20)))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3) {
        if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;
        if (s[0] == 0xe2 && s[1] == 0x80 &&
            ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
            return 3;
        if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;
        if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    }
    return 0;
}

static size_t space_at(const unsigned char *s, size_t n) { return jinja_space_at(s, n); }

size_t jinja_space_before(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_at(s + n - k, k) == k) return k;
    return 0;
}

static size_t space_before(const unsigned char *s, size_t n) { return jinja_space_before(s, n); }

static size_t skip_spaces(const char *s, size_t n, size_t pos)
{
    size_t k;
    while (pos < n && (k = space_at((const unsigned char *)s + pos, n - pos)) > 0) pos += k;
    return pos;
}

static void lex_push(struct lexer *lx, enum tok kind, const char *p, size_t len)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        struct token *t = arena_alloc(lx->a, lx->f, cap * sizeof *t);
        if (lx->n) memcpy(t, lx->toks, lx->n * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    lx->toks[lx->n++] = (struct token){ .kind = kind, .line = lx->line, .p = p, .len = len };
}

static int count_lines(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

static void utf8_put(char *out, size_t *o, uint32_t c)
{
    if (c < 0x80) {
        out[(*o)++] = (char)c;
    } else if (c < 0x800) {
        out[(*o)++] = (char)(0xc0 | (c >> 6));
        out[(*o)++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out[(*o)++] = (char)(0xe0 | (c >> 12));
        out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (c & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | (c >> 18));
        out[(*o)++] = (char)(0x80 | ((c >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (c & 0x3f));
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal's body, decoded the way jinja2 does (Python's
 * unicode-escape): \n \t \\ \' \xHH \uHHHH \UHHHHHHHH \ooo ...; an unknown
 * escape stays as written. */
static void lex_string(struct lexer *lx, char q)
{
    size_t start = ++lx->pos, end = start;
    while (end < lx->len && lx->src[end] != q) end += lx->src[end] == '\\' ? 2 : 1;
    if (end >= lx->len) failf(lx->f, lx->line, "unterminated string");
    const char *s = lx->src + start;
    size_t n = end - start, o = 0;
    char *out = arena_alloc(lx->a, lx->f, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (digits) {
            uint32_t v = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? hexval(s[i + 1 + k]) : -1;
                if (h < 0) failf(lx->f, lx->line, "bad \\%c escape in a string", c);
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10ffff) failf(lx->f, lx->line, "bad \\%c escape in a string", c);
            i += (size_t)digits;
            utf8_put(out, &o, v);
            continue;
        }
        if (c >= '0' && c <= '7') {
            uint32_t v = 0;
            int k = 0;
            while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') v = v * 8 + (uint32_t)(s[i++] - '0'), k++;
            i--;
            utf8_put(out, &o, v);
            continue;
        }
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case '\n': break; /* a backslash before a newline joins the lines */
        default:
            out[o++] = '\\';
            out[o++] = c;
        }
    }
    lex_push(lx, TK_STRING, out, o);
    lx->line += count_lines(s, n);
    lx->pos = end + 1;
}

/* A number: digits with '_' separators, 0x/0o/0b integers, floats with a
 * fraction or an exponent. */
static void lex_number(struct lexer *lx)
{
    const char *s = lx->src;
    size_t i = lx->pos, n = lx->len;
    char buf[128];
    size_t o = 0;
    int base = 10;
    if (s[i] == '0' && i + 1 < n && strchr("xXoObB", s[i + 1])) {
        base = s[i + 1] == 'x' || s[i + 1] == 'X' ? 16 : s[i + 1] == 'o' || s[i + 1] == 'O' ? 8 : 2;
        i += 2;
        while (i < n && (isxdigit((unsigned char)s[i]) || s[i] == '_') && o < sizeof buf - 1)
            if (s[i++] != '_') buf[o++] = s[i - 1];
    } else {
        bool is_float = false;
        while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_') && o < sizeof buf - 1)
            if (s[i++] != '_') buf[o++] = s[i - 1];
        if (i + 1 < n && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
            is_float = true;
            buf[o++] = s[i++];
            while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_') && o < sizeof buf - 1)
                if (s[i++] != '_') buf[o++] = s[i - 1];
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            size_t j = i + 1;
            if (j < n && (s[j] == '+' || s[j] == '-')) j++;
            if (j < n && isdigit((unsigned char)s[j])) {
                is_float = true;
                while (i < j && o < sizeof buf - 1) buf[o++] = s[i++];
                while (i < n && isdigit((unsigned char)s[i]) && o < sizeof buf - 1) buf[o++] = s[i++];
            }
        }
        if (is_float) {
            buf[o] = '\0';
            lex_push(lx, TK_FLOAT, NULL, 0);
            lx->toks[lx->n - 1].f = strtod(buf, NULL);
            lx->pos = i;
            return;
        }
    }
    buf[o] = '\0';
    if (o == 0 || o >= sizeof buf - 1) failf(lx->f, lx->line, "bad number");
    char *end;
    unsigned long long v = strtoull(buf, &end, base);
    if (*end || v > INT64_MAX) failf(lx->f, lx->line, "number out of range");
    lex_push(lx, TK_INT, NULL, 0);
    lx->toks[lx->n - 1].i = (int64_t)v;
    lx->pos = i;
}

static bool starts(const struct lexer *lx, size_t pos, const char *s)
{
    size_t n = strlen(s);
    return pos <= lx->len && lx->len - pos >= n && memcmp(lx->src + pos, s, n) == 0;
}

/* After a block or comment end: "-" strips all whitespace, "+" nothing,
 * otherwise trim_blocks drops one newline. */
static void after_tag_end(struct lexer *lx, char mod)
{
    if (mod == '-') {
        size_t e = skip_spaces(lx->src, lx->len, lx->pos);
        lx->line += count_lines(lx->src + lx->pos, e - lx->pos);
        lx->pos = e;
    } else if (mod != '+' && lx->pos < lx->len && lx->src[lx->pos] == '\n') {
        lx->pos++;
        lx->line++;
    }
}

/* The tokens of one {{ ... }} or {% ... %}, up to its end marker (found only
 * when brackets are balanced, as jinja2 does). */
static void lex_tag(struct lexer *lx, bool block)
{
    static const char *const ops[] = { "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*",
                                       "%",  "~",  "[",  "]",  "(",  ")",  "{", "}", "=", ".",
                                       ":",  "|",  ",",  ";",  "<",  ">",  NULL };
    char stack[MAX_DEPTH];
    int depth = 0;
    for (;;) {
        size_t e = skip_spaces(lx->src, lx->len, lx->pos);
        lx->line += count_lines(lx->src + lx->pos, e - lx->pos);
        lx->pos = e;
        if (lx->pos >= lx->len) failf(lx->f, lx->line, "unexpected end of template inside a tag");
        if (depth == 0) {
            const char *end = block ? "%}" : "}}";
            char mod = 0;
            if ((lx->src[lx->pos] == '-' || (block && lx->src[lx->pos] == '+')) &&
                starts(lx, lx->pos + 1, end))
                mod = lx->src[lx->pos++];
            if (starts(lx, lx->pos, end)) {
                lex_push(lx, block ? TK_BLOCK_END : TK_VAR_END, NULL, 0);
                lx->pos += 2;
                if (block)
                    after_tag_end(lx, mod);
                else if (mod == '-')
                    after_tag_end(lx, '-');
                return;
            }
            if (mod) lx->pos--;
        }
        char c = lx->src[lx->pos];
        if (c == '\'' || c == '"') {
            lex_string(lx, c);
            continue;
        }
        if (isdigit((unsigned char)c)) {
            lex_number(lx);
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            size_t s = lx->pos;
            while (lx->pos < lx->len &&
                   (isalnum((unsigned char)lx->src[lx->pos]) || lx->src[lx->pos] == '_'))
                lx->pos++;
            lex_push(lx, TK_NAME, lx->src + s, lx->pos - s);
            continue;
        }
        const char *op = NULL;
        for (int k = 0; ops[k]; k++)
            if (starts(lx, lx->pos, ops[k])) {
                op = ops[k];
                break;
            }
        if (!op) failf(lx->f, lx->line, "unexpected character '%c'", c);
        if (strchr("([{", op[0]) && op[1] == '\0') {
            if (depth == MAX_DEPTH) failf(lx->f, lx->line, "brackets nested too deeply");
            stack[depth++] = op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}';
        } else if (strchr(")]}", op[0]) && op[1] == '\0') {
            if (depth == 0 || stack[depth - 1] != op[0])
                failf(lx->f, lx->line, "unexpected '%c'", op[0]);
            depth--;
        }
        lex_push(lx, TK_OP, op, strlen(op));
        lx->pos += strlen(op);
    }
}

/* Data before a tag, with "-" (strip all whitespace before the tag) or
 * lstrip_blocks (strip spaces between the line start and a block/comment
 * tag) applied. */
static void lex_data(struct lexer *lx, size_t start, size_t end, char mod, bool lstrip_ok)
{
    const unsigned char *s = (const unsigned char *)lx->src;
    size_t e = end, k;
    if (mod == '-') {
        while (e > start && (k = space_before(s + start, e - start)) > 0) e -= k;
    } else if (mod != '+' && lstrip_ok) {
        size_t l = e;
        while (l > start && s[l - 1] != '\n') l--;
        bool line_start = l > start || start == 0 || s[start - 1] == '\n';
        if (line_start && l < e && skip_spaces(lx->src, e, l) == e) e = l;
    }
    if (e > start) lex_push(lx, TK_DATA, lx->src + start, e - start);
    lx->line += count_lines(lx->src + start, end - start);
}

/* Is the block tag at `tag` a {% raw %}? Then *body is where its text starts. */
static bool raw_tag(const struct lexer *lx, size_t tag, char mod, size_t *body)
{
    size_t p = skip_spaces(lx->src, lx->len, tag + 2 + (mod != 0));
    if (!starts(lx, p, "raw")) return false;
    p = skip_spaces(lx->src, lx->len, p + 3);
    bool strip = starts(lx, p, "-%}");
    p += strip;
    if (!starts(lx, p, "%}")) return false;
    p += 2;
    *body = strip ? skip_spaces(lx->src, lx->len, p) : p;
    return true;
}

/* The text of a raw block up to its {% endraw %}, as data. */
static void lex_raw_body(struct lexer *lx, size_t p)
{
    for (size_t q = p; q + 1 < lx->len; q++) {
        if (lx->src[q] != '{' || lx->src[q + 1] != '%') continue;
        char m = q + 2 < lx->len && (lx->src[q + 2] == '-' || lx->src[q + 2] == '+') ? lx->src[q + 2] : 0;
        size_t r = skip_spaces(lx->src, lx->len, q + 2 + (m != 0));
        if (!starts(lx, r, "endraw")) continue;
        r = skip_spaces(lx->src, lx->len, r + 6);
        char em = 0;
        if (r < lx->len && (lx->src[r] == '-' || lx->src[r] == '+') && starts(lx, r + 1, "%}"))
            em = lx->src[r++];
        if (!starts(lx, r, "%}")) continue;
        lex_data(lx, p, q, m, true);
        lx->line += count_lines(lx->src + q, r + 2 - q);
        lx->pos = r + 2;
        after_tag_end(lx, em);
        return;
    }
    failf(lx->f, lx->line, "missing {%% endraw %%}");
}

static void lex_comment(struct lexer *lx)
{
    for (size_t q = lx->pos; q + 1 < lx->len; q++) {
        if (lx->src[q] != '#' || lx->src[q + 1] != '}') continue;
        char mod = q > lx->pos && (lx->src[q - 1] == '-' || lx->src[q - 1] == '+') ? lx->src[q - 1] : 0;
        lx->line += count_lines(lx->src + lx->pos, q - lx->pos);
        lx->pos = q + 2;
        after_tag_end(lx, mod);
        return;
    }
    failf(lx->f, lx->line, "missing end of comment tag");
}

static void lex(struct lexer *lx)
{
    while (lx->pos < lx->len) {
        size_t t = lx->pos;
        while (t + 1 < lx->len &&
               !(lx->src[t] == '{' && (lx->src[t + 1] == '{' || lx->src[t + 1] == '%' ||
                                       lx->src[t + 1] == '#')))
            t++;
        if (t + 1 >= lx->len) {
            lex_data(lx, lx->pos, lx->len, 0, false);
            break;
        }
        char kind = lx->src[t + 1];
        char mod = t + 2 < lx->len && (lx->src[t + 2] == '-' || lx->src[t + 2] == '+') ? lx->src[t + 2] : 0;
        size_t body;
        if (kind == '%' && raw_tag(lx, t, mod, &body)) {
            lex_data(lx, lx->pos, t, mod, true);
            lx->line += count_lines(lx->src + t, body - t);
            lex_raw_body(lx, body);
            continue;
        }
        lex_data(lx, lx->pos, t, mod, kind != '{');
        lx->pos = t + 2 + (mod != 0);
        if (kind == '#') {
            lex_comment(lx);
        } else {
            lex_push(lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, NULL, 0);
            lex_tag(lx, kind == '%');
        }
    }
    lex_push(lx, TK_EOF, NULL, 0);
}

/* ---- the syntax tree ------------------------------------------------------- */

enum nkind {
    /* statements */
    N_BODY, N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_BREAK, N_CONTINUE,
    /* expressions */
    E_CONST, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NOT, E_NEG, E_POS,
    E_BIN, E_AND, E_OR, E_CMP, E_COND, E_LIST, E_DICT
};

/* One node for everything; what each field holds depends on the kind:
 *   N_BODY kids | N_DATA val | N_OUTPUT a | N_IF a=cond b=body c=else
 *   N_FOR names=targets a=iterable b=filter c=body d=else
 *   N_SET name [name2] a=value | N_SETBLOCK name b=body
 *   N_MACRO name names=params kids=defaults (entries may be NULL) b=body
 *   E_CONST val | E_NAME name | E_ATTR a name | E_ITEM a b | E_SLICE a b c d
 *   E_CALL a kids=args names/kids2=keyword args | E_FILTER a name kids names/kids2
 *   E_TEST a name kids neg | E_NOT/E_NEG/E_POS a | E_BIN op a b | E_AND/E_OR a b
 *   E_CMP a kids ops | E_COND a=test b=then c=else | E_LIST kids | E_DICT kids=keys kids2=values */
struct node {
    enum nkind k;
    int line, depth;
    const struct node *a, *b, *c, *d;
    const struct node **kids, **kids2;
    size_t n, n2;
    const char *name, *name2;
    const char **names;
    size_t n_names;
    int *ops;
    int op;
    bool neg;
    struct value val;
};

struct parser {
    struct arena *a;
    struct fail *f;
    const struct token *t;
    size_t pos;
    int depth;
};

static const struct token *peek(const struct parser *p) { return &p->t[p->pos]; }

static const struct token *next(struct parser *p)
{
    const struct token *t = &p->t[p->pos];
    if (t->kind != TK_EOF) p->pos++;
    return t;
}

static bool is_op(const struct token *t, const char *op)
{
    return t->kind == TK_OP && t->len == strlen(op) && memcmp(t->p, op, t->len) == 0;
}

static bool is_name(const struct token *t, const char *name)
{
    return t->kind == TK_NAME && t->len == strlen(name) && memcmp(t->p, name, t->len) == 0;
}

static bool skip_op(struct parser *p, const char *op)
{
    if (!is_op(peek(p), op)) return false;
    p->pos++;
    return true;
}

static bool skip_name(struct parser *p, const char *name)
{
    if (!is_name(peek(p), name)) return false;
    p->pos++;
    return true;
}

static const char *tok_desc(const struct token *t, char *buf, size_t cap)
{
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_STRING: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    default: snprintf(buf, cap, "'%.*s'", (int)(t->len < 40 ? t->len : 40), t->p); return buf;
    }
}

static _Noreturn void unexpected(struct parser *p, const char *wanted)
{
    char b[64];
    const struct token *t = peek(p);
    failf(p->f, t->line, "expected %s, found %s", wanted, tok_desc(t, b, sizeof b));
}

static void expect_op(struct parser *p, const char *op)
{
    if (!skip_op(p, op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op);
        unexpected(p, w);
    }
}

static void expect_kind(struct parser *p, enum tok k, const char *what)
{
    if (peek(p)->kind != k) unexpected(p, what);
    p->pos++;
}

static const char *dup_name(struct parser *p, const struct token *t)
{
    char *s = arena_alloc(p->a, p->f, t->len + 1);
    memcpy(s, t->p, t->len);
    return s;
}

static const char *expect_name(struct parser *p)
{
    if (peek(p)->kind != TK_NAME) unexpected(p, "a name");
    return dup_name(p, next(p));
}

static struct node *mk(struct parser *p, enum nkind k, int line, const struct node *a,
                       const struct node *b)
{
    struct node *n = arena_alloc(p->a, p->f, sizeof *n);
    n->k = k;
    n->line = line;
    n->a = a;
    n->b = b;
    int d = a ? a->depth : 0;
    if (b && b->depth > d) d = b->depth;
    n->depth = d + 1;
    if (n->depth > MAX_DEPTH) failf(p->f, line, "expression nested too deeply");
    return n;
}

/* Growing arrays of node pointers (and names) while parsing. */
struct nvec {
    const struct node **v;
    const char **names;
    size_t n, cap;
};

static void nvec_push(struct parser *p, struct nvec *v, const struct node *n, const char *name)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        const struct node **nv = arena_alloc(p->a, p->f, cap * sizeof *nv);
        const char **nn = arena_alloc(p->a, p->f, cap * sizeof *nn);
        if (v->n) {
            memcpy(nv, v->v, v->n * sizeof *nv);
            memcpy(nn, v->names, v->n * sizeof *nn);
        }
        v->v = nv;
        v->names = nn;
        v->cap = cap;
    }
    v->v[v->n] = n;
    v->names[v->n++] = name;
}

static void enter(struct parser *p)
{
    if (++p->depth > MAX_DEPTH) failf(p->f, peek(p)->line, "template nested too deeply");
}

static struct node *parse_expr(struct parser *p, bool cond);
static struct node *parse_or(struct parser *p);
static struct node *parse_unary(struct parser *p, bool filters);
static struct node *parse_primary(struct parser *p);

static struct value const_str(struct parser *p, const char *s, size_t n)
{
    struct str *x = arena_alloc(p->a, p->f, sizeof *x);
    x->p = s;
    x->len = n;
    return (struct value){ .t = VT_STR, .u.s = x };
}

/* Call arguments after '(': positional, then name=value. */
static void parse_args(struct parser *p, struct node *n)
{
    struct nvec pos = { 0 }, kw = { 0 };
    while (!skip_op(p, ")")) {
        if (pos.n + kw.n > 0) expect_op(p, ",");
        if (skip_op(p, ")")) break; /* trailing comma */
        if (peek(p)->kind == TK_NAME && is_op(&p->t[p->pos + 1], "=")) {
            const char *name = expect_name(p);
            p->pos++;
            nvec_push(p, &kw, parse_expr(p, true), name);
        } else {
            if (kw.n) failf(p->f, peek(p)->line, "positional argument after a keyword argument");
            nvec_push(p, &pos, parse_expr(p, true), NULL);
        }
    }
    n->kids = pos.v;
    n->n = pos.n;
    n->kids2 = kw.v;
    n->names = kw.names;
    n->n2 = n->n_names = kw.n;
    for (size_t i = 0; i < pos.n; i++)
        if (pos.v[i]->depth + 1 > n->depth) n->depth = pos.v[i]->depth + 1;
    for (size_t i = 0; i < kw.n; i++)
        if (kw.v[i]->depth + 1 > n->depth) n->depth = kw.v[i]->depth + 1;
    if (n->depth > MAX_DEPTH) failf(p->f, n->line, "expression nested too deeply");
}

static struct node *parse_postfix(struct parser *p, struct node *n)
{
    for (;;) {
        const struct token *t = peek(p);
        if (is_op(t, ".")) {
            p->pos++;
            const struct token *a = next(p);
            struct node *x;
            if (a->kind == TK_NAME) {
                x = mk(p, E_ATTR, t->line, n, NULL);
                x->name = dup_name(p, a);
            } else if (a->kind == TK_INT) {
                x = mk(p, E_ITEM, t->line, n, NULL);
                struct node *c = mk(p, E_CONST, t->line, NULL, NULL);
                c->val = v_int(a->i);
                x->b = c;
            } else {
                p->pos--;
                unexpected(p, "an attribute name");
            }
            n = x;
        } else if (is_op(t, "[")) {
            p->pos++;
            struct node *parts[3] = { NULL, NULL, NULL };
            int k = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(peek(p), ":") && !is_op(peek(p), "]")) parts[k] = parse_expr(p, true);
                if (k < 2 && skip_op(p, ":")) {
                    slice = true;
                    k++;
                    continue;
                }
                break;
            }
            expect_op(p, "]");
            if (!slice && !parts[0]) failf(p->f, t->line, "empty subscript");
            struct node *x = mk(p, slice ? E_SLICE : E_ITEM, t->line, n, parts[0]);
            if (slice) {
                x->b = parts[0];
                x->c = parts[1];
                x->d = parts[2];
            }
            n = x;
        } else if (is_op(t, "(")) {
            p->pos++;
            struct node *x = mk(p, E_CALL, t->line, n, NULL);
            parse_args(p, x);
            n = x;
        } else {
            return n;
        }
    }
}

/* x|f|g(args) and x is [not] test [arg | (args)] */
static struct node *parse_filters(struct parser *p, struct node *n)
{
    for (;;) {
        const struct token *t = peek(p);
        if (is_op(t, "|")) {
            p->pos++;
            struct node *x = mk(p, E_FILTER, t->line, n, NULL);
            x->name = expect_name(p);
            if (skip_op(p, "(")) parse_args(p, x);
            n = x;
        } else if (is_name(t, "is")) {
            p->pos++;
            struct node *x = mk(p, E_TEST, t->line, n, NULL);
            x->neg = skip_name(p, "not");
            x->name = expect_name(p);
            const struct token *u = peek(p);
            if (is_op(u, "(")) {
                p->pos++;
                parse_args(p, x);
            } else if ((u->kind == TK_NAME || u->kind == TK_STRING || u->kind == TK_INT ||
                        u->kind == TK_FLOAT || is_op(u, "[") || is_op(u, "{")) &&
                       !is_name(u, "else") && !is_name(u, "or") && !is_name(u, "and")) {
                struct node *arg = parse_postfix(p, parse_primary(p));
                const struct node **args = arena_alloc(p->a, p->f, sizeof *args);
                args[0] = arg;
                x->kids = args;
                x->n = 1;
                if (arg->depth + 1 > x->depth) x->depth = arg->depth + 1;
            }
            n = x;
        } else {
            return n;
        }
    }
}

static struct node *parse_primary(struct parser *p)
{
    const struct token *t = next(p);
    struct node *n;
    switch (t->kind) {
    case TK_NAME:
        n = mk(p, E_CONST, t->line, NULL, NULL);
        if (is_name(t, "true") || is_name(t, "True")) n->val = v_bool(true);
        else if (is_name(t, "false") || is_name(t, "False")) n->val = v_bool(false);
        else if (is_name(t, "none") || is_name(t, "None")) n->val = v_none;
        else {
            n->k = E_NAME;
            n->name = dup_name(p, t);
        }
        return n;
    case TK_STRING: {
        size_t len = t->len;
        const struct token *first = t;
        size_t end = p->pos;
        while (p->t[end].kind == TK_STRING) len += p->t[end++].len;
        char *s = arena_alloc(p->a, p->f, len + 1);
        size_t o = 0;
        for (const struct token *u = first; u < p->t + end; u++) {
            memcpy(s + o, u->p, u->len);
            o += u->len;
        }
        p->pos = end;
        n = mk(p, E_CONST, t->line, NULL, NULL);
        n->val = const_str(p, s, len);
        return n;
    }
    case TK_INT:
        n = mk(p, E_CONST, t->line, NULL, NULL);
        n->val = v_int(t->i);
        return n;
    case TK_FLOAT:
        n = mk(p, E_CONST, t->line, NULL, NULL);
        n->val = v_float(t->f);
        return n;
    case TK_OP:
        if (is_op(t, "(")) {
            if (skip_op(p, ")")) return mk(p, E_LIST, t->line, NULL, NULL); /* () */
            n = parse_expr(p, true);
            if (is_op(peek(p), ",")) { /* a tuple: a list here */
                struct nvec v = { 0 };
                nvec_push(p, &v, n, NULL);
                while (skip_op(p, ",") && !is_op(peek(p), ")")) nvec_push(p, &v, parse_expr(p, true), NULL);
                n = mk(p, E_LIST, t->line, n, NULL);
                n->a = NULL;
                n->kids = v.v;
                n->n = v.n;
            }
            expect_op(p, ")");
            return n;
        }
        if (is_op(t, "[")) {
            struct nvec v = { 0 };
            int d = 0;
            while (!skip_op(p, "]")) {
                if (v.n) expect_op(p, ",");
                if (skip_op(p, "]")) break;
                struct node *e = parse_expr(p, true);
                if (e->depth > d) d = e->depth;
                nvec_push(p, &v, e, NULL);
            }
            n = mk(p, E_LIST, t->line, NULL, NULL);
            n->kids = v.v;
            n->n = v.n;
            n->depth = d + 1;
            return n;
        }
        if (is_op(t, "{")) {
            struct nvec k = { 0 }, v = { 0 };
            int d = 0;
            while (!skip_op(p, "}")) {
                if (k.n) expect_op(p, ",");
                if (skip_op(p, "}")) break;
                struct node *key = parse_expr(p, true);
                expect_op(p, ":");
                struct node *val = parse_expr(p, true);
                if (key->depth > d) d = key->depth;
                if (val->depth > d) d = val->depth;
                nvec_push(p, &k, key, NULL);
                nvec_push(p, &v, val, NULL);
            }
            n = mk(p, E_DICT, t->line, NULL, NULL);
            n->kids = k.v;
            n->kids2 = v.v;
            n->n = n->n2 = k.n;
            n->depth = d + 1;
            return n;
        }
        break;
    default:
        break;
    }
    p->pos--;
    unexpected(p, "an expression");
}

static struct node *parse_unary(struct parser *p, bool filters)
{
    enter(p);
    const struct token *t = peek(p);
    struct node *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        p->pos++;
        n = mk(p, is_op(t, "-") ? E_NEG : E_POS, t->line, parse_unary(p, false), NULL);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (filters) n = parse_filters(p, n);
    p->depth--;
    return n;
}

static struct node *bin(struct parser *p, int op, int line, struct node *a, struct node *b)
{
    struct node *n = mk(p, E_BIN, line, a, b);
    n->op = op;
    return n;
}

static struct node *parse_pow(struct parser *p)
{
    struct node *n = parse_unary(p, true);
    while (is_op(peek(p), "**")) {
        int line = next(p)->line;
        n = bin(p, 'P', line, n, parse_unary(p, true));
    }
    return n;
}

static struct node *parse_math2(struct parser *p)
{
    struct node *n = parse_pow(p);
    for (;;) {
        const struct token *t = peek(p);
        int op = is_op(t, "*") ? '*' : is_op(t, "/") ? '/' : is_op(t, "//") ? 'F' : is_op(t, "%") ? '%' : 0;
        if (!op) return n;
        p->pos++;
        n = bin(p, op, t->line, n, parse_pow(p));
    }
}

static struct node *parse_concat(struct parser *p)
{
    struct node *n = parse_math2(p);
    while (is_op(peek(p), "~")) {
        int line = next(p)->line;
        n = bin(p, '~', line, n, parse_math2(p));
    }
    return n;
}

static struct node *parse_math1(struct parser *p)
{
    struct node *n = parse_concat(p);
    for (;;) {
        const struct token *t = peek(p);
        int op = is_op(t, "+") ? '+' : is_op(t, "-") ? '-' : 0;
        if (!op) return n;
        p->pos++;
        n = bin(p, op, t->line, n, parse_concat(p));
    }
}

enum cmp_op { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN };

static struct node *parse_compare(struct parser *p)
{
    struct node *first = parse_math1(p);
    struct nvec v = { 0 };
    int ops[64], n_ops = 0, line = peek(p)->line;
    for (;;) {
        const struct token *t = peek(p);
        int op = is_op(t, "==") ? C_EQ : is_op(t, "!=") ? C_NE : is_op(t, "<") ? C_LT
               : is_op(t, "<=") ? C_LE : is_op(t, ">") ? C_GT : is_op(t, ">=") ? C_GE
               : is_name(t, "in") ? C_IN : -1;
        if (op < 0 && is_name(t, "not") && is_name(&p->t[p->pos + 1], "in")) {
            op = C_NOTIN;
            p->pos++;
        }
        if (op < 0) break;
        p->pos++;
        if (n_ops == 64) failf(p->f, t->line, "too many chained comparisons");
        ops[n_ops++] = op;
        nvec_push(p, &v, parse_math1(p), NULL);
    }
    if (n_ops == 0) return first;
    struct node *n = mk(p, E_CMP, line, first, NULL);
    n->kids = v.v;
    n->n = v.n;
    n->ops = arena_alloc(p->a, p->f, (size_t)n_ops * sizeof *n->ops);
    memcpy(n->ops, ops, (size_t)n_ops * sizeof *ops);
    for (size_t i = 0; i < v.n; i++)
        if (v.v[i]->depth + 1 > n->depth) n->depth = v.v[i]->depth + 1;
    return n;
}

static struct node *parse_not(struct parser *p)
{
    if (is_name(peek(p), "not")) {
        int line = next(p)->line;
        enter(p);
        struct node *n = mk(p, E_NOT, line, parse_not(p), NULL);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static struct node *parse_and(struct parser *p)
{
    struct node *n = parse_not(p);
    while (is_name(peek(p), "and")) {
        int line = next(p)->line;
        n = mk(p, E_AND, line, n, parse_not(p));
    }
    return n;
}

static struct node *parse_or(struct parser *p)
{
    struct node *n = parse_and(p);
    while (is_name(peek(p), "or")) {
        int line = next(p)->line;
        n = mk(p, E_OR, line, n, parse_and(p));
    }
    return n;
}

/* An expression; with cond, "a if b else c" too. */
static struct node *parse_expr(struct parser *p, bool cond)
{
    enter(p);
    struct node *n = parse_or(p);
    while (cond && is_name(peek(p), "if")) {
        int line = next(p)->line;
        struct node *test = parse_or(p);
        struct node *other = skip_name(p, "else") ? parse_expr(p, true) : NULL;
        struct node *c = mk(p, E_COND, line, test, n);
        c->c = other;
        if (other && other->depth + 1 > c->depth) c->depth = other->depth + 1;
        n = c;
    }
    p->depth--;
    return n;
}

/* expr or "a, b, ..." (a tuple, kept as a list) */
static struct node *parse_tuple(struct parser *p, bool cond)
{
    int line = peek(p)->line;
    struct node *n = parse_expr(p, cond);
    if (!is_op(peek(p), ",")) return n;
    struct nvec v = { 0 };
    nvec_push(p, &v, n, NULL);
    int d = n->depth;
    while (skip_op(p, ",")) {
        const struct token *t = peek(p);
        if (t->kind == TK_BLOCK_END || t->kind == TK_VAR_END || is_op(t, ")")) break;
        struct node *e = parse_expr(p, cond);
        if (e->depth > d) d = e->depth;
        nvec_push(p, &v, e, NULL);
    }
    struct node *l = mk(p, E_LIST, line, NULL, NULL);
    l->kids = v.v;
    l->n = v.n;
    l->depth = d + 1;
    return l;
}

/* ---- statements ------------------------------------------------------------ */

static struct node *parse_body(struct parser *p, const char *const *ends, int *which);

static void end_block(struct parser *p) { expect_kind(p, TK_BLOCK_END, "'%}'"); }

/* After a body that stopped at ends[*]: consume "{% endX %}". */
static void parse_end(struct parser *p, const char *word)
{
    if (!skip_name(p, word)) {
        char w[32];
        snprintf(w, sizeof w, "'%s'", word);
        unexpected(p, w);
    }
    end_block(p);
}

static struct node *parse_if(struct parser *p, int line)
{
    static const char *const ends[] = { "elif", "else", "endif", NULL };
    struct node *n = mk(p, N_IF, line, NULL, NULL);
    n->a = parse_tuple(p, true);
    end_block(p);
    int w;
    n->b = parse_body(p, ends, &w);
    int l2 = next(p)->line; /* the end word */
    if (w == 0) {
        n->c = parse_if(p, l2);
    } else if (w == 1) {
        static const char *const endif[] = { "endif", NULL };
        end_block(p);
        n->c = parse_body(p, endif, &w);
        parse_end(p, "endif");
    } else {
        end_block(p);
    }
    return n;
}

static struct node *parse_for(struct parser *p, int line)
{
    static const char *const ends[] = { "else", "endfor", NULL };
    struct node *n = mk(p, N_FOR, line, NULL, NULL);
    struct nvec t = { 0 };
    bool paren = skip_op(p, "(");
    do nvec_push(p, &t, NULL, expect_name(p));
    while (skip_op(p, ","));
    if (paren) expect_op(p, ")");
    n->names = t.names;
    n->n_names = t.n;
    if (!skip_name(p, "in")) unexpected(p, "'in'");
    n->a = parse_tuple(p, false);
    if (skip_name(p, "if")) n->b = parse_expr(p, true);
    if (is_name(peek(p), "recursive")) failf(p->f, line, "recursive loops are not supported");
    end_block(p);
    int w;
    n->c = parse_body(p, ends, &w);
    next(p);
    end_block(p);
    if (w == 0) {
        static const char *const endfor[] = { "endfor", NULL };
        n->d = parse_body(p, endfor, &w);
        parse_end(p, "endfor");
    }
    return n;
}

static struct node *parse_set(struct parser *p, int line)
{
    const char *name = expect_name(p), *attr = NULL;
    if (skip_op(p, ".")) attr = expect_name(p);
    if (peek(p)->kind == TK_BLOCK_END && !attr) {
        static const char *const ends[] = { "endset", NULL };
        int w;
        end_block(p);
        struct node *n = mk(p, N_SETBLOCK, line, NULL, NULL);
        n->name = name;
        n->b = parse_body(p, ends, &w);
        parse_end(p, "endset");
        return n;
    }
    if (is_op(peek(p), ",")) failf(p->f, line, "assigning to several names is not supported");
    expect_op(p, "=");
    struct node *n = mk(p, N_SET, line, parse_tuple(p, true), NULL);
    n->name = name;
    n->name2 = attr;
    end_block(p);
    return n;
}

static struct node *parse_macro(struct parser *p, int line)
{
    static const char *const ends[] = { "endmacro", NULL };
    struct node *n = mk(p, N_MACRO, line, NULL, NULL);
    n->name = expect_name(p);
    expect_op(p, "(");
    struct nvec params = { 0 };
    while (!skip_op(p, ")")) {
        if (params.n) expect_op(p, ",");
        if (skip_op(p, ")")) break;
        const char *name = expect_name(p);
        nvec_push(p, &params, skip_op(p, "=") ? parse_expr(p, true) : NULL, name);
    }
    n->names = params.names;
    n->kids = params.v;
    n->n = n->n_names = params.n;
    end_block(p);
    int w;
    n->b = parse_body(p, ends, &w);
    parse_end(p, "endmacro");
    return n;
}

static struct node *parse_statement(struct parser *p)
{
    const struct token *t = peek(p);
    if (t->kind != TK_NAME) unexpected(p, "a statement name");
    p->pos++;
    int line = t->line;
    enter(p);
    struct node *n;
    if (is_name(t, "if")) {
        n = parse_if(p, line);
    } else if (is_name(t, "for")) {
        n = parse_for(p, line);
    } else if (is_name(t, "set")) {
        n = parse_set(p, line);
    } else if (is_name(t, "macro")) {
        n = parse_macro(p, line);
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        n = mk(p, is_name(t, "break") ? N_BREAK : N_CONTINUE, line, NULL, NULL);
        end_block(p);
    } else if (is_name(t, "generation")) { /* transformers' assistant-mask tag: no output */
        static const char *const ends[] = { "endgeneration", NULL };
        int w;
        end_block(p);
        n = parse_body(p, ends, &w);
        parse_end(p, "endgeneration");
    } else {
        char b[64];
        failf(p->f, line, "unsupported statement %s", tok_desc(t, b, sizeof b));
    }
    p->depth--;
    return n;
}

/* Statements and text up to one of ends (NULL: the end of the template);
 * *which = the index of the end word found, left unconsumed. */
static struct node *parse_body(struct parser *p, const char *const *ends, int *which)
{
    struct nvec v = { 0 };
    int line = peek(p)->line;
    for (;;) {
        const struct token *t = next(p);
        if (t->kind == TK_EOF) {
            if (ends) {
                int last = 0;
                while (ends[last + 1]) last++;
                failf(p->f, t->line, "missing {%% %s %%}", ends[last]);
            }
            break;
        }
        if (t->kind == TK_DATA) {
            struct node *d = mk(p, N_DATA, t->line, NULL, NULL);
            d->val = const_str(p, t->p, t->len);
            nvec_push(p, &v, d, NULL);
        } else if (t->kind == TK_VAR_BEGIN) {
            struct node *o = mk(p, N_OUTPUT, t->line, parse_tuple(p, true), NULL);
            expect_kind(p, TK_VAR_END, "'}}'");
            nvec_push(p, &v, o, NULL);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            int k = -1;
            for (int i = 0; ends && ends[i]; i++)
                if (is_name(peek(p), ends[i])) k = i;
            if (k >= 0) {
                *which = k;
                break;
            }
            if (peek(p)->kind == TK_NAME && peek(p)->len > 3 && memcmp(peek(p)->p, "end", 3) == 0) {
                char b[64];
                failf(p->f, peek(p)->line, "unexpected %s", tok_desc(peek(p), b, sizeof b));
            }
            if (is_name(peek(p), "elif") || is_name(peek(p), "else")) {
                char b[64];
                failf(p->f, peek(p)->line, "unexpected %s", tok_desc(peek(p), b, sizeof b));
            }
            nvec_push(p, &v, parse_statement(p), NULL);
        } else {
            p->pos--;
            unexpected(p, "text or a tag");
        }
    }
    struct node *b = mk(p, N_BODY, line, NULL, NULL);
    b->kids = v.v;
    b->n = v.n;
    return b;
}

/* ---- parse entry point ------------------------------------------------------ */

struct jinja_tpl {
    struct arena a;
    const struct node *root;
};

/* The source with newlines normalised to "\n" and one trailing newline
 * dropped (jinja2's keep_trailing_newline=False). */
static char *normalize(struct arena *a, struct fail *f, const char *src, size_t len, size_t *out)
{
    char *s = arena_alloc(a, f, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[o++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[o++] = src[i];
        }
    }
    if (o > 0 && s[o - 1] == '\n') o--;
    s[o] = '\0';
    *out = o;
    return s;
}

static void parse_all(struct jinja_tpl *t, struct fail *f, const char *src, size_t len)
{
    struct lexer lx = { .a = &t->a, .f = f, .line = 1 };
    lx.src = normalize(&t->a, f, src, len, &lx.len);
    lex(&lx);
    struct parser p = { .a = &t->a, .f = f, .t = lx.toks };
    int w;
    t->root = parse_body(&p, NULL, &w);
}

struct jinja_tpl *jinja_parse(const char *src, size_t len, char *err, size_t errlen)
{
    struct jinja_tpl *volatile t = calloc(1, sizeof *t);
    struct fail *volatile f = malloc(sizeof *f);
    if (!t || !f || (!src && len > 0)) {
        free(t);
        free(f);
        if (err && errlen) snprintf(err, errlen, "%s", src || !len ? "out of memory" : "no template");
        return NULL;
    }
    t->a.limit = MAX_ARENA;
    if (setjmp(f->jb)) {
        if (err && errlen) snprintf(err, errlen, "%s", f->msg);
        arena_free(&t->a);
        free(t);
        free(f);
        return NULL;
    }
    parse_all(t, f, src ? src : "", len);
    free(f);
    return t;
}

void jinja_tpl_free(struct jinja_tpl *t)
{
    if (!t) return;
    arena_free(&t->a);
    free(t);
}

/* ---- rendering: context, output, frames ------------------------------------ */

#define MAX_CAPTURE (MAX_CALL_DEPTH + MAX_DEPTH + 2)

struct obuf {
    char *p;
    unsigned char *t;
    size_t len, cap;
    bool tainted;
};

struct frame {
    struct frame *parent;
    const char **names;
    struct value *vals;
    size_t n, cap;
};

struct ctx {
    struct arena a;
    struct fail *f;
    const struct jinja_params *par;
    struct obuf out[MAX_CAPTURE]; /* out[0] the rendering, then captures */
    int top;
    size_t max_output;
    unsigned long long steps;
    int calls;
    int jump; /* 1 break, 2 continue */
    struct frame *globals;
    struct frame *tframe; /* the template's own variables (and macros) */
};

static _Noreturn void fail_at(struct ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static _Noreturn void fail_at(struct ctx *c, int line, const char *fmt, ...)
{
    char m[ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    failf(c->f, line, "%s", m);
}

static void *alloc(struct ctx *c, size_t n) { return arena_alloc(&c->a, c->f, n); }

static void *alloc_n(struct ctx *c, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) fail_at(c, 0, "the template needs too much memory");
    return alloc(c, n * size);
}

static void step(struct ctx *c, int line)
{
    if (++c->steps > MAX_STEPS) fail_at(c, line, "the template takes too many steps (a loop without end?)");
}

static void obuf_add(struct ctx *c, const char *s, const unsigned char *taint, size_t n)
{
    struct obuf *b = &c->out[c->top];
    if (n == 0) return;
    if (n > c->max_output || b->len > c->max_output - n)
        fail_at(c, 0, "the rendering is longer than %zu bytes", c->max_output);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) fail_at(c, 0, "out of memory");
        b->p = p;
        unsigned char *t = realloc(b->t, cap);
        if (!t) fail_at(c, 0, "out of memory");
        b->t = t;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    if (taint) {
        memcpy(b->t + b->len, taint, n);
        b->tainted = true;
    } else {
        memset(b->t + b->len, 0, n);
    }
    b->len += n;
}

/* ---- strings ----------------------------------------------------------------- */

static const struct str *mkstr(struct ctx *c, const char *p, const unsigned char *t, size_t n)
{
    struct str *s = alloc(c, sizeof *s);
    char *q = alloc(c, n + 1);
    if (n) memcpy(q, p, n);
    s->p = q;
    s->len = n;
    if (t) {
        size_t i = 0;
        while (i < n && !t[i]) i++;
        if (i < n) {
            unsigned char *m = alloc(c, n);
            memcpy(m, t, n);
            s->taint = m;
        }
    }
    return s;
}

static struct value v_str(const struct str *s) { return (struct value){ .t = VT_STR, .u.s = s }; }

static struct value v_cstr(struct ctx *c, const char *s)
{
    return v_str(mkstr(c, s, NULL, strlen(s)));
}

/* A string builder in the arena (grows by copying; strings here are short). */
struct sb {
    char *p;
    unsigned char *t;
    size_t len, cap;
    bool tainted;
};

static void sb_add(struct ctx *c, struct sb *b, const char *s, const unsigned char *t, size_t n)
{
    if (n == 0) return;
    if (n > c->max_output || b->len > c->max_output - n)
        fail_at(c, 0, "a string of the template is longer than %zu bytes", c->max_output);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        char *p = alloc(c, cap);
        unsigned char *m = alloc(c, cap);
        if (b->len) {
            memcpy(p, b->p, b->len);
            memcpy(m, b->t, b->len);
        }
        b->p = p;
        b->t = m;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    if (t) {
        memcpy(b->t + b->len, t, n);
        b->tainted = true;
    }
    b->len += n;
}

static void sb_str(struct ctx *c, struct sb *b, const struct str *s)
{
    sb_add(c, b, s->p, s->taint, s->len);
}

static void sb_cstr(struct ctx *c, struct sb *b, const char *s) { sb_add(c, b, s, NULL, strlen(s)); }

static const struct str *sb_done(struct ctx *c, struct sb *b)
{
    struct str *s = alloc(c, sizeof *s);
    char *q = alloc(c, b->len + 1);
    if (b->len) memcpy(q, b->p, b->len);
    s->p = q;
    s->len = b->len;
    s->taint = b->tainted ? b->t : NULL;
    return s;
}

/* A piece of s that keeps its taint. */
static const struct str *substr(struct ctx *c, const struct str *s, size_t from, size_t n)
{
    return mkstr(c, s->p + from, s->taint ? s->taint + from : NULL, n);
}

static bool str_eq(const struct str *a, const char *b)
{
    return a->len == strlen(b) && memcmp(a->p, b, a->len) == 0;
}

static size_t utf8_len(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xc0) != 0x80;
    return k;
}

/* Byte offsets of the code points of s (n+1 entries: the last is s->len). */
static size_t *cp_offsets(struct ctx *c, const struct str *s, size_t *n)
{
    size_t k = utf8_len(s->p, s->len), j = 0;
    size_t *o = alloc_n(c, k + 1, sizeof *o);
    for (size_t i = 0; i < s->len; i++)
        if (((unsigned char)s->p[i] & 0xc0) != 0x80) o[j++] = i;
    o[j] = s->len;
    *n = k;
    return o;
}

/* Python's repr() of a float: the shortest digits that read back the same,
 * positional for exponents -4..15, else d.ddde+XX. */
static void fmt_float(double f, char *buf, size_t cap)
{
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char digits[32];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (isdigit((unsigned char)*q)) digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = -1; i > exp; i--) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(buf, cap, "%s", out);
}

static void repr_to(struct ctx *c, struct sb *b, struct value v, int depth);

/* str(v) as Python prints it (lists and dicts as their repr). */
static const struct str *to_str(struct ctx *c, struct value v)
{
    char buf[64];
    switch (v.t) {
    case VT_UNDEF: return mkstr(c, "", NULL, 0);
    case VT_NONE: return mkstr(c, "None", NULL, 4);
    case VT_BOOL: return v.u.b ? mkstr(c, "True", NULL, 4) : mkstr(c, "False", NULL, 5);
    case VT_INT: snprintf(buf, sizeof buf, "%lld", (long long)v.u.i); break;
    case VT_FLOAT: fmt_float(v.u.f, buf, sizeof buf); break;
    case VT_STR: return v.u.s;
    default: {
        struct sb b = { 0 };
        repr_to(c, &b, v, 0);
        return sb_done(c, &b);
    }
    }
    return mkstr(c, buf, NULL, strlen(buf));
}

static void repr_str(struct ctx *c, struct sb *b, const struct str *s)
{
    bool sq = memchr(s->p, '\'', s->len) != NULL, dq = memchr(s->p, '"', s->len) != NULL;
    char q = sq && !dq ? '"' : '\'';
    sb_add(c, b, &q, NULL, 1);
    for (size_t i = 0; i < s->len; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        const unsigned char *t = s->taint ? s->taint + i : NULL;
        char e[8];
        if (ch == '\\' || ch == (unsigned char)q) {
            e[0] = '\\';
            e[1] = (char)ch;
            sb_add(c, b, e, NULL, 2);
        } else if (ch == '\n' || ch == '\r' || ch == '\t') {
            sb_cstr(c, b, ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(e, sizeof e, "\\x%02x", ch);
            sb_cstr(c, b, e);
        } else {
            sb_add(c, b, s->p + i, t, 1);
        }
    }
    sb_add(c, b, &q, NULL, 1);
}

static void repr_to(struct ctx *c, struct sb *b, struct value v, int depth)
{
    if (depth > MAX_DEPTH) fail_at(c, 0, "a value nested too deeply to print");
    switch (v.t) {
    case VT_STR: repr_str(c, b, v.u.s); return;
    case VT_LIST:
        sb_cstr(c, b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) sb_cstr(c, b, ", ");
            repr_to(c, b, v.u.l->v[i], depth + 1);
        }
        sb_cstr(c, b, "]");
        return;
    case VT_DICT:
    case VT_NS:
        sb_cstr(c, b, v.t == VT_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) sb_cstr(c, b, ", ");
            repr_to(c, b, v.u.d->k[i], depth + 1);
            sb_cstr(c, b, ": ");
            repr_to(c, b, v.u.d->v[i], depth + 1);
        }
        sb_cstr(c, b, v.t == VT_NS ? "}>" : "}");
        return;
    case VT_LOOP: sb_cstr(c, b, "<LoopContext>"); return;
    case VT_MACRO: sb_cstr(c, b, "<Macro>"); return;
    case VT_FUNC: case VT_METHOD: sb_cstr(c, b, "<function>"); return;
    default: sb_str(c, b, to_str(c, v)); return;
    }
}

/* ---- Python semantics of values ------------------------------------------------ */

static bool truthy(struct value v)
{
    switch (v.t) {
    case VT_UNDEF: case VT_NONE: return false;
    case VT_BOOL: return v.u.b;
    case VT_INT: return v.u.i != 0;
    case VT_FLOAT: return v.u.f != 0.0;
    case VT_STR: return v.u.s->len > 0;
    case VT_LIST: return v.u.l->n > 0;
    case VT_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

static bool is_num(struct value v) { return v.t == VT_BOOL || v.t == VT_INT || v.t == VT_FLOAT; }

static double num(struct value v)
{
    return v.t == VT_FLOAT ? v.u.f : v.t == VT_INT ? (double)v.u.i : v.u.b;
}

static int64_t int_of(struct value v) { return v.t == VT_INT ? v.u.i : v.u.b; }

static bool py_eq(struct value a, struct value b, int depth)
{
    if (depth > MAX_DEPTH) return false;
    if (is_num(a) && is_num(b)) {
        if (a.t != VT_FLOAT && b.t != VT_FLOAT) return int_of(a) == int_of(b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case VT_UNDEF: case VT_NONE: return true;
    case VT_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->p, b.u.s->p, a.u.s->len) == 0;
    case VT_LIST:
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!py_eq(a.u.l->v[i], b.u.l->v[i], depth + 1)) return false;
        return true;
    case VT_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            size_t j = 0;
            while (j < b.u.d->n && !py_eq(a.u.d->k[i], b.u.d->k[j], depth + 1)) j++;
            if (j == b.u.d->n || !py_eq(a.u.d->v[i], b.u.d->v[j], depth + 1)) return false;
        }
        return true;
    case VT_NS: return a.u.d == b.u.d;
    case VT_MACRO: return a.u.macro == b.u.macro;
    case VT_FUNC: return a.u.func == b.u.func;
    default: return false;
    }
}

/* -1, 0, 1 as Python's < would order a and b; an error for unorderable types. */
static int py_cmp(struct ctx *c, int line, struct value a, struct value b, int depth)
{
    if (is_num(a) && is_num(b)) {
        if (a.t != VT_FLOAT && b.t != VT_FLOAT) return (int_of(a) > int_of(b)) - (int_of(a) < int_of(b));
        return (num(a) > num(b)) - (num(a) < num(b));
    }
    if (a.t == VT_STR && b.t == VT_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int r = n ? memcmp(a.u.s->p, b.u.s->p, n) : 0;
        if (r) return r < 0 ? -1 : 1;
        return (a.u.s->len > b.u.s->len) - (a.u.s->len < b.u.s->len);
    }
    if (a.t == VT_LIST && b.t == VT_LIST && depth < MAX_DEPTH) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++)
            if (!py_eq(a.u.l->v[i], b.u.l->v[i], 0)) return py_cmp(c, line, a.u.l->v[i], b.u.l->v[i], depth + 1);
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    fail_at(c, line, "cannot compare %s with %s", type_name(a.t), type_name(b.t));
}

static struct value *dict_find(struct dict *d, struct value k)
{
    for (size_t i = 0; i < d->n; i++)
        if (py_eq(d->k[i], k, 0)) return &d->v[i];
    return NULL;
}

static struct value *dict_find_s(struct dict *d, const char *k)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == VT_STR && str_eq(d->k[i].u.s, k)) return &d->v[i];
    return NULL;
}

static void dict_set(struct ctx *c, struct dict *d, struct value k, struct value v)
{
    struct value *old = dict_find(d, k);
    if (old) {
        *old = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct value *nk = alloc_n(c, cap, sizeof *nk), *nv = alloc_n(c, cap, sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

static struct list *new_list(struct ctx *c, size_t n)
{
    struct list *l = alloc(c, sizeof *l);
    l->v = alloc_n(c, n ? n : 1, sizeof *l->v);
    l->n = n;
    return l;
}

static struct value v_list(const struct list *l) { return (struct value){ .t = VT_LIST, .u.l = l }; }

/* The items a for loop (or a filter) walks: lists, dict keys, characters. */
static const struct list *iter_list(struct ctx *c, int line, struct value v)
{
    switch (v.t) {
    case VT_LIST: return v.u.l;
    case VT_UNDEF: return new_list(c, 0);
    case VT_DICT: {
        struct list *l = new_list(c, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) l->v[i] = v.u.d->k[i];
        return l;
    }
    case VT_STR: {
        size_t n, *o = cp_offsets(c, v.u.s, &n);
        struct list *l = new_list(c, n);
        for (size_t i = 0; i < n; i++) l->v[i] = v_str(substr(c, v.u.s, o[i], o[i + 1] - o[i]));
        return l;
    }
    default:
        fail_at(c, line, "cannot iterate over %s", type_name(v.t));
    }
}

/* ---- frames ----------------------------------------------------------------------- */

static struct frame *frame_new(struct ctx *c, struct frame *parent)
{
    struct frame *f = alloc(c, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(struct ctx *c, struct frame *f, const char *name, struct value v)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = alloc_n(c, cap, sizeof *nn);
        struct value *nv = alloc_n(c, cap, sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

static struct value lookup(const struct frame *f, const char *name)
{
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (strcmp(f->names[i], name) == 0) return f->vals[i];
    return v_undef;
}

/* ---- attributes, items, slices --------------------------------------------------- */

enum method_id {
    M_NONE, M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_STARTSWITH, M_ENDSWITH, M_UPPER, M_LOWER,
    M_TITLE, M_CAPITALIZE, M_REPLACE, M_FIND, M_COUNT, M_JOIN, M_ITEMS, M_KEYS, M_VALUES, M_GET,
    M_CYCLE
};

static const char *const str_methods[] = { [M_STRIP] = "strip", [M_LSTRIP] = "lstrip",
    [M_RSTRIP] = "rstrip", [M_SPLIT] = "split", [M_STARTSWITH] = "startswith",
    [M_ENDSWITH] = "endswith", [M_UPPER] = "upper", [M_LOWER] = "lower", [M_TITLE] = "title",
    [M_CAPITALIZE] = "capitalize", [M_REPLACE] = "replace", [M_FIND] = "find",
    [M_COUNT] = "count", [M_JOIN] = "join" };

static int method_of(struct value v, const char *name)
{
    if (v.t == VT_STR) {
        for (int i = M_STRIP; i <= M_JOIN; i++)
            if (strcmp(str_methods[i], name) == 0) return i;
    } else if (v.t == VT_DICT) {
        if (strcmp(name, "items") == 0) return M_ITEMS;
        if (strcmp(name, "keys") == 0) return M_KEYS;
        if (strcmp(name, "values") == 0) return M_VALUES;
        if (strcmp(name, "get") == 0) return M_GET;
    } else if (v.t == VT_LOOP && strcmp(name, "cycle") == 0) {
        return M_CYCLE;
    }
    return M_NONE;
}

static struct value v_method(struct ctx *c, int id, struct value self)
{
    struct method *m = alloc(c, sizeof *m);
    m->id = id;
    m->self = self;
    return (struct value){ .t = VT_METHOD, .u.m = m };
}

static struct value loop_attr(const struct loopinfo *l, const char *name)
{
    size_t n = l->items->n, i = l->index0;
    if (strcmp(name, "index") == 0) return v_int((int64_t)i + 1);
    if (strcmp(name, "index0") == 0) return v_int((int64_t)i);
    if (strcmp(name, "revindex") == 0) return v_int((int64_t)(n - i));
    if (strcmp(name, "revindex0") == 0) return v_int((int64_t)(n - i - 1));
    if (strcmp(name, "first") == 0) return v_bool(i == 0);
    if (strcmp(name, "last") == 0) return v_bool(i + 1 == n);
    if (strcmp(name, "length") == 0) return v_int((int64_t)n);
    if (strcmp(name, "depth") == 0) return v_int(1);
    if (strcmp(name, "depth0") == 0) return v_int(0);
    if (strcmp(name, "previtem") == 0) return i > 0 ? l->items->v[i - 1] : v_undef;
    if (strcmp(name, "nextitem") == 0) return i + 1 < n ? l->items->v[i + 1] : v_undef;
    return v_undef;
}

/* obj.name: a method, else the key (jinja2 tries the attribute first). */
static struct value get_attr(struct ctx *c, int line, struct value obj, const char *name)
{
    if (obj.t == VT_UNDEF) fail_at(c, line, "cannot read '%s' of an undefined value", name);
    int m = method_of(obj, name);
    if (m != M_NONE) return v_method(c, m, obj);
    if (obj.t == VT_DICT || obj.t == VT_NS) {
        struct value *v = dict_find_s(obj.u.d, name);
        return v ? *v : v_undef;
    }
    if (obj.t == VT_LOOP) return loop_attr(obj.u.loop, name);
    return v_undef;
}

/* Python's index into a sequence of n: negative counts from the end; -1 if
 * out of range. */
static int64_t seq_index(struct value k, size_t n)
{
    int64_t i = int_of(k);
    if (i < 0) i += (int64_t)n;
    return i < 0 || (uint64_t)i >= n ? -1 : i;
}

/* obj[key]: the key, else an attribute (jinja2 tries the item first). */
static struct value get_item(struct ctx *c, int line, struct value obj, struct value key)
{
    if (obj.t == VT_UNDEF) fail_at(c, line, "cannot subscript an undefined value");
    bool int_key = key.t == VT_INT || key.t == VT_BOOL;
    if (obj.t == VT_LIST && int_key) {
        int64_t i = seq_index(key, obj.u.l->n);
        return i < 0 ? v_undef : obj.u.l->v[i];
    }
    if (obj.t == VT_STR && int_key) {
        size_t n, *o = cp_offsets(c, obj.u.s, &n);
        int64_t i = seq_index(key, n);
        return i < 0 ? v_undef : v_str(substr(c, obj.u.s, o[i], o[i + 1] - o[i]));
    }
    if (obj.t == VT_DICT || obj.t == VT_NS) {
        struct value *v = dict_find(obj.u.d, key);
        if (v) return *v;
    }
    if (key.t == VT_STR) {
        char name[64];
        if (key.u.s->len < sizeof name && !memchr(key.u.s->p, 0, key.u.s->len)) {
            memcpy(name, key.u.s->p, key.u.s->len);
            name[key.u.s->len] = '\0';
            if (obj.t == VT_DICT || obj.t == VT_NS) {
                int m = method_of(obj, name);
                return m != M_NONE ? v_method(c, m, obj) : v_undef;
            }
            return get_attr(c, line, obj, name);
        }
    }
    return v_undef;
}

/* Python's slice indices for a sequence of n. */
static void slice_bounds(struct ctx *c, int line, struct value *bv, size_t n, int64_t *start,
                         int64_t *stop, int64_t *step)
{
    int64_t len = (int64_t)n;
    *step = 1;
    if (bv[2].t != VT_NONE && bv[2].t != VT_UNDEF) {
        if (!is_num(bv[2]) || bv[2].t == VT_FLOAT) fail_at(c, line, "slice step must be an integer");
        *step = int_of(bv[2]);
        if (*step == 0) fail_at(c, line, "slice step cannot be zero");
    }
    bool neg = *step < 0;
    for (int k = 0; k < 2; k++) {
        int64_t *out = k == 0 ? start : stop;
        struct value v = bv[k];
        if (v.t == VT_NONE || v.t == VT_UNDEF) {
            *out = k == 0 ? (neg ? len - 1 : 0) : (neg ? -1 : len);
            continue;
        }
        if (!is_num(v) || v.t == VT_FLOAT) fail_at(c, line, "slice indices must be integers");
        int64_t i = int_of(v);
        if (i < 0) {
            i += len;
            if (i < 0) i = neg ? -1 : 0;
        } else if (i >= len) {
            i = neg ? len - 1 : len;
        }
        *out = i;
    }
}

static struct value get_slice(struct ctx *c, int line, struct value obj, struct value *bv)
{
    int64_t start, stop, st;
    if (obj.t == VT_LIST) {
        slice_bounds(c, line, bv, obj.u.l->n, &start, &stop, &st);
        struct list *l = new_list(c, obj.u.l->n);
        size_t k = 0;
        for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st) l->v[k++] = obj.u.l->v[i];
        l->n = k;
        return v_list(l);
    }
    if (obj.t == VT_STR) {
        size_t n, *o = cp_offsets(c, obj.u.s, &n);
        slice_bounds(c, line, bv, n, &start, &stop, &st);
        struct sb b = { 0 };
        for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st)
            sb_add(c, &b, obj.u.s->p + o[i], obj.u.s->taint ? obj.u.s->taint + o[i] : NULL,
                   o[i + 1] - o[i]);
        return v_str(sb_done(c, &b));
    }
    if (obj.t == VT_UNDEF) fail_at(c, line, "cannot slice an undefined value");
    return v_undef;
}

/* ---- string operations --------------------------------------------------------------- */

/* Is the code point at s[i..] one of chars's code points? Its length, else 0. */
static size_t char_in(const char *s, size_t n, size_t i, const struct str *chars)
{
    size_t k = 1;
    while (i + k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80) k++;
    for (size_t j = 0; j < chars->len;) {
        size_t l = 1;
        while (j + l < chars->len && ((unsigned char)chars->p[j + l] & 0xc0) == 0x80) l++;
        if (l == k && memcmp(chars->p + j, s + i, k) == 0) return k;
        j += l;
    }
    return 0;
}

/* str.strip/lstrip/rstrip([chars]): which 1 left, 2 right, 3 both. */
static const struct str *strip(struct ctx *c, const struct str *s, const struct str *chars, int which)
{
    const unsigned char *p = (const unsigned char *)s->p;
    size_t a = 0, b = s->len, k;
    if (which & 1)
        while (a < b && (k = chars ? char_in(s->p, b, a, chars) : space_at(p + a, b - a)) > 0) a += k;
    if (which & 2) {
        for (;;) {
            if (b <= a) break;
            if (chars) {
                size_t st = b - 1;
                while (st > a && (p[st] & 0xc0) == 0x80) st--;
                if (!char_in(s->p, b, st, chars)) break;
                b = st;
            } else {
                if (!(k = space_before(p + a, b - a))) break;
                b -= k;
            }
        }
    }
    return substr(c, s, a, b - a);
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0) return h;
    return memmem(h, hn, n, nn);
}

/* str.split([sep[, maxsplit]]) */
static struct value split(struct ctx *c, int line, const struct str *s, struct value sep, int64_t max)
{
    struct list *l = new_list(c, s->len + 1);
    size_t k = 0, i = 0;
    if (sep.t == VT_NONE || sep.t == VT_UNDEF) {
        const unsigned char *p = (const unsigned char *)s->p;
        size_t w;
        for (;;) {
            while (i < s->len && (w = space_at(p + i, s->len - i)) > 0) i += w;
            if (i >= s->len) break;
            size_t j = i;
            if (max >= 0 && (int64_t)k == max) {
                size_t e = s->len;
                while (e > i && (w = space_before(p + i, e - i)) > 0) e -= w;
                l->v[k++] = v_str(substr(c, s, i, e - i));
                break;
            }
            while (j < s->len && !space_at(p + j, s->len - j)) j++;
            l->v[k++] = v_str(substr(c, s, i, j - i));
            i = j;
        }
    } else {
        if (sep.t != VT_STR) fail_at(c, line, "split() separator must be a string");
        const struct str *d = sep.u.s;
        if (d->len == 0) fail_at(c, line, "split() separator is empty");
        for (;;) {
            const char *at = (max < 0 || (int64_t)k < max) ? memfind(s->p + i, s->len - i, d->p, d->len) : NULL;
            if (!at) {
                l->v[k++] = v_str(substr(c, s, i, s->len - i));
                break;
            }
            size_t j = (size_t)(at - s->p);
            l->v[k++] = v_str(substr(c, s, i, j - i));
            i = j + d->len;
        }
    }
    l->n = k;
    return v_list(l);
}

static const struct str *replace(struct ctx *c, int line, const struct str *s, struct value ov,
                                 struct value nv, int64_t count)
{
    if (ov.t != VT_STR || nv.t != VT_STR) fail_at(c, line, "replace() takes strings");
    const struct str *o = ov.u.s, *n = nv.u.s;
    struct sb b = { 0 };
    size_t i = 0;
    int64_t done = 0;
    if (o->len == 0) { /* Python inserts before every character and at the end */
        size_t cn, *off = cp_offsets(c, s, &cn);
        for (size_t k = 0; k <= cn; k++) {
            if (count < 0 || done < count) {
                sb_str(c, &b, n);
                done++;
            }
            if (k < cn) sb_add(c, &b, s->p + off[k], s->taint ? s->taint + off[k] : NULL, off[k + 1] - off[k]);
        }
        return sb_done(c, &b);
    }
    for (;;) {
        const char *at = (count < 0 || done < count) ? memfind(s->p + i, s->len - i, o->p, o->len) : NULL;
        size_t j = at ? (size_t)(at - s->p) : s->len;
        sb_add(c, &b, s->p + i, s->taint ? s->taint + i : NULL, j - i);
        if (!at) break;
        sb_str(c, &b, n);
        i = j + o->len;
        done++;
    }
    return sb_done(c, &b);
}

/* upper/lower/title/capitalize: ASCII letters only (other bytes are kept). */
static const struct str *recase(struct ctx *c, const struct str *s, int mode)
{
    const struct str *r = mkstr(c, s->p, s->taint, s->len);
    char *p = (char *)r->p;
    bool word = false;
    for (size_t i = 0; i < r->len; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool alpha = isalpha(ch) != 0;
        switch (mode) {
        case 'U': p[i] = (char)toupper(ch); break;
        case 'L': p[i] = (char)tolower(ch); break;
        case 'T': p[i] = (char)(word ? tolower(ch) : toupper(ch)); break;
        case 'C': p[i] = (char)(i == 0 ? toupper(ch) : tolower(ch)); break;
        }
        word = alpha || (ch >= 0x80 && mode == 'T' && word);
    }
    return r;
}

static const struct str *join(struct ctx *c, const struct str *sep, const struct list *l,
                              const char *attr, int line)
{
    struct sb b = { 0 };
    for (size_t i = 0; i < l->n; i++) {
        if (i) sb_str(c, &b, sep);
        struct value v = attr ? get_attr(c, line, l->v[i], attr) : l->v[i];
        sb_str(c, &b, to_str(c, v));
    }
    return sb_done(c, &b);
}

/* ---- JSON (transformers' tojson: json.dumps with ensure_ascii=False) ----------------- */

static void json_str(struct ctx *c, struct sb *b, const struct str *s, bool ascii)
{
    sb_cstr(c, b, "\"");
    for (size_t i = 0; i < s->len; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        const unsigned char *t = s->taint ? s->taint + i : NULL;
        char e[16];
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            sb_add(c, b, e, t ? (const unsigned char *)"\1\1" : NULL, 2);
        } else if (ch < 0x20) {
            const char *m = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t"
                          : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
            if (!m) snprintf(e, sizeof e, "\\u%04x", ch), m = e;
            sb_add(c, b, m, t ? (const unsigned char *)"\1\1\1\1\1\1" : NULL, strlen(m));
        } else if (ch >= 0x80 && ascii) {
            size_t k = 1;
            uint32_t cp = ch >= 0xf0 ? ch & 7 : ch >= 0xe0 ? ch & 15 : ch & 31;
            while (i + k < s->len && ((unsigned char)s->p[i + k] & 0xc0) == 0x80)
                cp = cp << 6 | ((unsigned char)s->p[i + k++] & 0x3f);
            i += k - 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(e, sizeof e, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                snprintf(e, sizeof e, "\\u%04x", cp);
            }
            sb_cstr(c, b, e);
        } else {
            sb_add(c, b, s->p + i, t, 1);
        }
    }
    sb_cstr(c, b, "\"");
}

struct json_opts {
    int64_t indent; /* < 0: none */
    bool ascii, sort;
    const struct str *item_sep, *key_sep;
};

static void json_newline(struct ctx *c, struct sb *b, const struct json_opts *o, int depth)
{
    if (o->indent < 0) return;
    sb_cstr(c, b, "\n");
    for (int64_t i = 0; i < o->indent * depth; i++) sb_cstr(c, b, " ");
}

static void json_val(struct ctx *c, int line, struct sb *b, struct value v, const struct json_opts *o,
                     int depth)
{
    char buf[64];
    if (depth > MAX_DEPTH) fail_at(c, line, "tojson: value nested too deeply");
    switch (v.t) {
    case VT_NONE: sb_cstr(c, b, "null"); return;
    case VT_BOOL: sb_cstr(c, b, v.u.b ? "true" : "false"); return;
    case VT_INT: snprintf(buf, sizeof buf, "%lld", (long long)v.u.i); sb_cstr(c, b, buf); return;
    case VT_FLOAT:
        if (isnan(v.u.f)) sb_cstr(c, b, "NaN");
        else if (isinf(v.u.f)) sb_cstr(c, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else fmt_float(v.u.f, buf, sizeof buf), sb_cstr(c, b, buf);
        return;
    case VT_STR: json_str(c, b, v.u.s, o->ascii); return;
    case VT_LIST:
        if (v.u.l->n == 0) {
            sb_cstr(c, b, "[]");
            return;
        }
        sb_cstr(c, b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) sb_str(c, b, o->item_sep);
            json_newline(c, b, o, depth + 1);
            json_val(c, line, b, v.u.l->v[i], o, depth + 1);
        }
        json_newline(c, b, o, depth);
        sb_cstr(c, b, "]");
        return;
    case VT_DICT: {
        const struct dict *d = v.u.d;
        if (d->n == 0) {
            sb_cstr(c, b, "{}");
            return;
        }
        size_t *ord = alloc_n(c, d->n, sizeof *ord);
        for (size_t i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && py_cmp(c, line, d->k[ord[j - 1]], d->k[ord[j]], 0) > 0; j--) {
                    size_t t = ord[j];
                    ord[j] = ord[j - 1];
                    ord[j - 1] = t;
                }
        sb_cstr(c, b, "{");
        for (size_t i = 0; i < d->n; i++) {
            struct value k = d->k[ord[i]];
            if (i) sb_str(c, b, o->item_sep);
            json_newline(c, b, o, depth + 1);
            if (k.t == VT_STR) {
                json_str(c, b, k.u.s, o->ascii);
            } else if (k.t == VT_NONE || k.t == VT_BOOL || k.t == VT_INT || k.t == VT_FLOAT) {
                struct sb kb = { 0 };
                json_val(c, line, &kb, k, o, depth + 1);
                const struct str *ks = sb_done(c, &kb);
                json_str(c, b, ks, o->ascii);
            } else {
                fail_at(c, line, "tojson: keys must be strings");
            }
            sb_str(c, b, o->key_sep);
            json_val(c, line, b, d->v[ord[i]], o, depth + 1);
        }
        json_newline(c, b, o, depth);
        sb_cstr(c, b, "}");
        return;
    }
    default:
        fail_at(c, line, "tojson: %s is not JSON serializable", type_name(v.t));
    }
}

/* ---- calls: arguments, filters, tests, functions, methods, macros --------------------- */

struct args {
    const struct value *pos;
    size_t n;
    const char *const *kw;
    const struct value *kwv;
    size_t nk;
};

/* Argument i (positional) or `name` (keyword), else def. */
static struct value arg(const struct args *a, size_t i, const char *name, struct value def)
{
    if (i < a->n) return a->pos[i];
    for (size_t k = 0; name && k < a->nk; k++)
        if (strcmp(a->kw[k], name) == 0) return a->kwv[k];
    return def;
}

static const struct str *arg_str(struct ctx *c, int line, const struct args *a, size_t i,
                                 const char *name, const char *what)
{
    struct value v = arg(a, i, name, v_undef);
    if (v.t != VT_STR) fail_at(c, line, "%s: argument %zu must be a string, not %s", what, i + 1, type_name(v.t));
    return v.u.s;
}

static int64_t arg_int(struct ctx *c, int line, const struct args *a, size_t i, const char *name,
                       int64_t def, const char *what)
{
    struct value v = arg(a, i, name, v_undef);
    if (v.t == VT_UNDEF || v.t == VT_NONE) return def;
    if (v.t != VT_INT && v.t != VT_BOOL) fail_at(c, line, "%s: argument %zu must be an integer", what, i + 1);
    return int_of(v);
}

static struct value apply_test(struct ctx *c, int line, const char *name, struct value v,
                               const struct args *a);
static struct value apply_filter(struct ctx *c, int line, const char *name, struct value v,
                                 const struct args *a);
static struct value call_value(struct ctx *c, int line, struct value fn, const struct args *a);

/* selectattr/rejectattr/select/reject: items whose (attribute's) test is `keep`. */
static struct value select_items(struct ctx *c, int line, struct value seq, const struct args *a,
                                 bool by_attr, bool keep)
{
    /* jinja2 walks the sequence only when it is truthy: none gives nothing */
    const struct list *l = truthy(seq) ? iter_list(c, line, seq) : new_list(c, 0);
    const char *attr = NULL;
    size_t first = 0;
    if (by_attr) {
        const struct str *s = arg_str(c, line, a, 0, NULL, "selectattr");
        attr = mkstr(c, s->p, NULL, s->len)->p;
        first = 1;
    }
    const char *test = NULL;
    if (a->n > first) {
        struct value t = a->pos[first];
        if (t.t != VT_STR) fail_at(c, line, "select: the test name must be a string");
        test = mkstr(c, t.u.s->p, NULL, t.u.s->len)->p;
    }
    struct args ta = { .pos = a->n > first + 1 ? a->pos + first + 1 : NULL,
                       .n = a->n > first + 1 ? a->n - first - 1 : 0 };
    struct list *out = new_list(c, l->n);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        step(c, line);
        struct value v = attr ? get_attr(c, line, l->v[i], attr) : l->v[i];
        bool ok = test ? truthy(apply_test(c, line, test, v, &ta)) : truthy(v);
        if (ok == keep) out->v[k++] = l->v[i];
    }
    out->n = k;
    return v_list(out);
}

static struct value map_items(struct ctx *c, int line, struct value seq, const struct args *a)
{
    const struct list *l = truthy(seq) ? iter_list(c, line, seq) : new_list(c, 0);
    struct value attr = arg(a, 99, "attribute", v_undef);
    struct list *out = new_list(c, l->n);
    if (attr.t == VT_STR) {
        const char *name = mkstr(c, attr.u.s->p, NULL, attr.u.s->len)->p;
        struct value def = arg(a, 99, "default", v_undef);
        for (size_t i = 0; i < l->n; i++) {
            out->v[i] = get_attr(c, line, l->v[i], name);
            if (out->v[i].t == VT_UNDEF) out->v[i] = def;
        }
        return v_list(out);
    }
    const struct str *f = arg_str(c, line, a, 0, NULL, "map");
    const char *fname = mkstr(c, f->p, NULL, f->len)->p;
    struct args fa = { .pos = a->pos + 1, .n = a->n - 1, .kw = a->kw, .kwv = a->kwv, .nk = a->nk };
    for (size_t i = 0; i < l->n; i++) {
        step(c, line);
        out->v[i] = apply_filter(c, line, fname, l->v[i], &fa);
    }
    return v_list(out);
}

static struct value tojson(struct ctx *c, int line, struct value v, const struct args *a)
{
    struct json_opts o = { .indent = -1 };
    struct value ind = arg(a, 0, "indent", v_none);
    if (ind.t == VT_INT) o.indent = ind.u.i < 0 ? 0 : ind.u.i > 64 ? 64 : ind.u.i;
    else if (ind.t != VT_NONE) fail_at(c, line, "tojson: indent must be an integer");
    o.ascii = truthy(arg(a, 99, "ensure_ascii", v_bool(false)));
    o.sort = truthy(arg(a, 99, "sort_keys", v_bool(false)));
    struct value sep = arg(a, 99, "separators", v_none);
    if (sep.t == VT_LIST && sep.u.l->n == 2 && sep.u.l->v[0].t == VT_STR && sep.u.l->v[1].t == VT_STR) {
        o.item_sep = sep.u.l->v[0].u.s;
        o.key_sep = sep.u.l->v[1].u.s;
    } else if (sep.t != VT_NONE) {
        fail_at(c, line, "tojson: separators must be two strings");
    } else {
        o.item_sep = mkstr(c, o.indent >= 0 ? "," : ", ", NULL, o.indent >= 0 ? 1 : 2);
        o.key_sep = mkstr(c, ": ", NULL, 2);
    }
    struct sb b = { 0 };
    json_val(c, line, &b, v, &o, 0);
    return v_str(sb_done(c, &b));
}

static struct value length_of(struct ctx *c, int line, struct value v)
{
    switch (v.t) {
    case VT_UNDEF: return v_int(0);
    case VT_STR: return v_int((int64_t)utf8_len(v.u.s->p, v.u.s->len));
    case VT_LIST: return v_int((int64_t)v.u.l->n);
    case VT_DICT: case VT_NS: return v_int((int64_t)v.u.d->n);
    default: fail_at(c, line, "%s has no length", type_name(v.t));
    }
}

static struct value to_int(struct value v, int64_t def)
{
    if (v.t == VT_INT || v.t == VT_BOOL) return v_int(int_of(v));
    if (v.t == VT_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) return v_int((int64_t)v.u.f);
    if (v.t == VT_STR && v.u.s->len < 64) {
        char buf[64], *end;
        memcpy(buf, v.u.s->p, v.u.s->len);
        buf[v.u.s->len] = '\0';
        long long i = strtoll(buf, &end, 10);
        if (end != buf && *end == '\0') return v_int(i);
        double f = strtod(buf, &end);
        if (end != buf && *end == '\0' && isfinite(f) && fabs(f) < 9.2e18) return v_int((int64_t)f);
    }
    return v_int(def);
}

static struct value items_of(struct ctx *c, int line, struct value v)
{
    if (v.t == VT_UNDEF) return v_list(new_list(c, 0));
    if (v.t != VT_DICT) fail_at(c, line, "items: %s is not a mapping", type_name(v.t));
    struct list *l = new_list(c, v.u.d->n);
    for (size_t i = 0; i < v.u.d->n; i++) {
        struct list *pair = new_list(c, 2);
        pair->v[0] = v.u.d->k[i];
        pair->v[1] = v.u.d->v[i];
        l->v[i] = v_list(pair);
    }
    return v_list(l);
}

/* A sort key as dictsort compares it: strings lower-cased unless case_sensitive. */
static struct value sort_key(struct ctx *c, struct value v, bool case_sensitive)
{
    return v.t == VT_STR && !case_sensitive ? v_str(recase(c, v.u.s, 'L')) : v;
}

static struct value dictsort(struct ctx *c, int line, struct value v, const struct args *a)
{
    bool cs = truthy(arg(a, 0, "case_sensitive", v_bool(false)));
    struct value by = arg(a, 1, "by", v_undef);
    bool by_value = by.t == VT_STR && str_eq(by.u.s, "value");
    bool rev = truthy(arg(a, 2, "reverse", v_bool(false)));
    struct value items = items_of(c, line, v);
    struct list *l = (struct list *)items.u.l;
    for (size_t i = 1; i < l->n; i++) /* insertion sort: stable, like sorted() */
        for (size_t j = i; j > 0; j--) {
            step(c, line);
            struct value x = sort_key(c, l->v[j - 1].u.l->v[by_value], cs);
            struct value y = sort_key(c, l->v[j].u.l->v[by_value], cs);
            int r = py_cmp(c, line, x, y, 0);
            if (rev ? r >= 0 : r <= 0) break;
            struct value t = l->v[j];
            l->v[j] = l->v[j - 1];
            l->v[j - 1] = t;
        }
    return items;
}

static struct value apply_filter(struct ctx *c, int line, const char *name, struct value v,
                                 const struct args *a)
{
    step(c, line);
    if (!strcmp(name, "trim")) {
        struct value ch = arg(a, 0, "chars", v_none);
        return v_str(strip(c, to_str(c, v), ch.t == VT_STR ? ch.u.s : NULL, 3));
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return length_of(c, line, v);
    if (!strcmp(name, "upper")) return v_str(recase(c, to_str(c, v), 'U'));
    if (!strcmp(name, "lower")) return v_str(recase(c, to_str(c, v), 'L'));
    if (!strcmp(name, "title")) return v_str(recase(c, to_str(c, v), 'T'));
    if (!strcmp(name, "capitalize")) return v_str(recase(c, to_str(c, v), 'C'));
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        bool boolean = truthy(arg(a, 1, "boolean", v_bool(false)));
        if (v.t == VT_UNDEF || (boolean && !truthy(v)))
            return arg(a, 0, "default_value", v_cstr(c, ""));
        return v;
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        const struct list *l = iter_list(c, line, v);
        if (l->n == 0) return v_undef;
        return name[0] == 'f' ? l->v[0] : l->v[l->n - 1];
    }
    if (!strcmp(name, "join")) {
        struct value sep = arg(a, 0, "d", v_cstr(c, ""));
        struct value attr = arg(a, 1, "attribute", v_none);
        const char *an = attr.t == VT_STR ? mkstr(c, attr.u.s->p, NULL, attr.u.s->len)->p : NULL;
        return v_str(join(c, to_str(c, sep), iter_list(c, line, v), an, line));
    }
    if (!strcmp(name, "replace"))
        return v_str(replace(c, line, to_str(c, v), arg(a, 0, "old", v_undef), arg(a, 1, "new", v_undef),
                             arg_int(c, line, a, 2, "count", -1, "replace")));
    if (!strcmp(name, "tojson")) return tojson(c, line, v, a);
    if (!strcmp(name, "items")) return items_of(c, line, v);
    if (!strcmp(name, "dictsort")) return dictsort(c, line, v, a);
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return select_items(c, line, v, a, true, name[0] == 's');
    if (!strcmp(name, "select") || !strcmp(name, "reject"))
        return select_items(c, line, v, a, false, name[0] == 's');
    if (!strcmp(name, "map")) return map_items(c, line, v, a);
    if (!strcmp(name, "list")) return v_list(iter_list(c, line, v));
    if (!strcmp(name, "string")) return v_str(to_str(c, v));
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape") ) {
        if (name[0] == 's') return v;
        const struct str *s = to_str(c, v);
        struct sb b = { 0 };
        for (size_t i = 0; i < s->len; i++) {
            const char *r = s->p[i] == '&' ? "&amp;" : s->p[i] == '<' ? "&lt;" : s->p[i] == '>' ? "&gt;"
                          : s->p[i] == '"' ? "&#34;" : s->p[i] == '\'' ? "&#39;" : NULL;
            if (r) sb_cstr(c, &b, r);
            else sb_add(c, &b, s->p + i, s->taint ? s->taint + i : NULL, 1);
        }
        return v_str(sb_done(c, &b));
    }
    if (!strcmp(name, "int")) return to_int(v, arg_int(c, line, a, 0, "default", 0, "int"));
    if (!strcmp(name, "float")) {
        if (is_num(v)) return v_float(num(v));
        if (v.t == VT_STR && v.u.s->len < 64) {
            char buf[64], *end;
            memcpy(buf, v.u.s->p, v.u.s->len);
            buf[v.u.s->len] = '\0';
            double f = strtod(buf, &end);
            if (end != buf && *end == '\0') return v_float(f);
        }
        struct value d = arg(a, 0, "default", v_float(0.0));
        return d;
    }
    if (!strcmp(name, "abs")) {
        if (v.t == VT_FLOAT) return v_float(fabs(v.u.f));
        if (v.t == VT_INT || v.t == VT_BOOL) {
            if (int_of(v) == INT64_MIN) fail_at(c, line, "integer overflow");
            return v_int(int_of(v) < 0 ? -int_of(v) : int_of(v));
        }
        fail_at(c, line, "abs: %s is not a number", type_name(v.t));
    }
    if (!strcmp(name, "reverse")) {
        if (v.t == VT_STR) {
            struct value bv[3] = { v_none, v_none, v_int(-1) };
            return get_slice(c, line, v, bv);
        }
        const struct list *l = iter_list(c, line, v);
        struct list *r = new_list(c, l->n);
        for (size_t i = 0; i < l->n; i++) r->v[i] = l->v[l->n - 1 - i];
        return v_list(r);
    }
    if (!strcmp(name, "unique")) {
        const struct list *l = iter_list(c, line, v);
        struct list *r = new_list(c, l->n);
        size_t k = 0;
        for (size_t i = 0; i < l->n; i++) {
            size_t j = 0;
            step(c, line);
            while (j < k && !py_eq(r->v[j], l->v[i], 0)) j++;
            if (j == k) r->v[k++] = l->v[i];
        }
        r->n = k;
        return v_list(r);
    }
    if (!strcmp(name, "indent")) {
        int64_t width = arg_int(c, line, a, 0, "width", 4, "indent");
        bool first = truthy(arg(a, 1, "first", v_bool(false)));
        bool blank = truthy(arg(a, 2, "blank", v_bool(false)));
        if (width < 0 || width > 256) fail_at(c, line, "indent: width out of range");
        const struct str *s = to_str(c, v);
        struct sb b = { 0 };
        bool line_start = first;
        for (size_t i = 0; i <= s->len; i++) {
            if (line_start && i < s->len && (blank || s->p[i] != '\n'))
                for (int64_t k = 0; k < width; k++) sb_cstr(c, &b, " ");
            line_start = false;
            if (i == s->len) break;
            sb_add(c, &b, s->p + i, s->taint ? s->taint + i : NULL, 1);
            if (s->p[i] == '\n') line_start = true;
        }
        return v_str(sb_done(c, &b));
    }
    fail_at(c, line, "unknown filter '%s'", name);
}

static struct value apply_test(struct ctx *c, int line, const char *name, struct value v,
                               const struct args *a)
{
    struct value x = arg(a, 0, NULL, v_undef);
    step(c, line);
    if (!strcmp(name, "defined")) return v_bool(v.t != VT_UNDEF);
    if (!strcmp(name, "undefined")) return v_bool(v.t == VT_UNDEF);
    if (!strcmp(name, "none")) return v_bool(v.t == VT_NONE);
    if (!strcmp(name, "boolean")) return v_bool(v.t == VT_BOOL);
    if (!strcmp(name, "true")) return v_bool(v.t == VT_BOOL && v.u.b);
    if (!strcmp(name, "false")) return v_bool(v.t == VT_BOOL && !v.u.b);
    if (!strcmp(name, "integer")) return v_bool(v.t == VT_INT);
    if (!strcmp(name, "float")) return v_bool(v.t == VT_FLOAT);
    if (!strcmp(name, "number")) return v_bool(is_num(v));
    if (!strcmp(name, "string")) return v_bool(v.t == VT_STR);
    if (!strcmp(name, "mapping")) return v_bool(v.t == VT_DICT);
    if (!strcmp(name, "iterable")) return v_bool(v.t == VT_STR || v.t == VT_LIST || v.t == VT_DICT);
    if (!strcmp(name, "sequence")) return v_bool(v.t == VT_STR || v.t == VT_LIST || v.t == VT_DICT);
    if (!strcmp(name, "callable")) return v_bool(v.t == VT_MACRO || v.t == VT_FUNC || v.t == VT_METHOD);
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v.t != VT_INT && v.t != VT_BOOL) fail_at(c, line, "'%s' test needs an integer", name);
        return v_bool((int_of(v) % 2 != 0) == (name[0] == 'o'));
    }
    if (!strcmp(name, "divisibleby")) {
        if ((v.t != VT_INT && v.t != VT_BOOL) || (x.t != VT_INT && x.t != VT_BOOL) || int_of(x) == 0)
            fail_at(c, line, "'divisibleby' needs integers (and not 0)");
        return v_bool(int_of(x) == -1 || int_of(v) % int_of(x) == 0);
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return v_bool(py_eq(v, x, 0));
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return v_bool(!py_eq(v, x, 0));
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan")) return v_bool(py_cmp(c, line, v, x, 0) < 0);
    if (!strcmp(name, "le")) return v_bool(py_cmp(c, line, v, x, 0) <= 0);
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan")) return v_bool(py_cmp(c, line, v, x, 0) > 0);
    if (!strcmp(name, "ge")) return v_bool(py_cmp(c, line, v, x, 0) >= 0);
    if (!strcmp(name, "sameas"))
        return v_bool(v.t == x.t && (v.t == VT_NONE || v.t == VT_UNDEF || (v.t == VT_BOOL && v.u.b == x.u.b)));
    if (!strcmp(name, "in")) {
        if (x.t == VT_STR && v.t == VT_STR) return v_bool(memfind(x.u.s->p, x.u.s->len, v.u.s->p, v.u.s->len) != NULL);
        if (x.t == VT_DICT) return v_bool(dict_find(x.u.d, v) != NULL);
        const struct list *l = iter_list(c, line, x);
        for (size_t i = 0; i < l->n; i++)
            if (py_eq(l->v[i], v, 0)) return v_bool(true);
        return v_bool(false);
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.t != VT_STR) return v_bool(false);
        bool any = false;
        for (size_t i = 0; i < v.u.s->len; i++) {
            unsigned char ch = (unsigned char)v.u.s->p[i];
            if (name[0] == 'l' ? isupper(ch) : islower(ch)) return v_bool(false);
            any = any || isalpha(ch);
        }
        return v_bool(any);
    }
    fail_at(c, line, "unknown test '%s'", name);
}

static struct value call_method(struct ctx *c, int line, const struct method *m, const struct args *a)
{
    struct value self = m->self;
    const struct str *s = self.t == VT_STR ? self.u.s : NULL;
    switch (m->id) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP: {
        struct value ch = arg(a, 0, "chars", v_none);
        if (ch.t != VT_NONE && ch.t != VT_STR) fail_at(c, line, "strip: chars must be a string");
        return v_str(strip(c, s, ch.t == VT_STR ? ch.u.s : NULL,
                           m->id == M_STRIP ? 3 : m->id == M_LSTRIP ? 1 : 2));
    }
    case M_SPLIT: return split(c, line, s, arg(a, 0, "sep", v_none), arg_int(c, line, a, 1, "maxsplit", -1, "split"));
    case M_STARTSWITH: case M_ENDSWITH: {
        struct value x = arg(a, 0, NULL, v_undef);
        const struct list *alts = x.t == VT_LIST ? x.u.l : NULL;
        size_t n = alts ? alts->n : 1;
        for (size_t i = 0; i < n; i++) {
            struct value p = alts ? alts->v[i] : x;
            if (p.t != VT_STR) fail_at(c, line, "startswith/endswith: argument must be a string");
            size_t pl = p.u.s->len;
            if (pl > s->len) continue;
            const char *at = m->id == M_STARTSWITH ? s->p : s->p + s->len - pl;
            if (memcmp(at, p.u.s->p, pl) == 0) return v_bool(true);
        }
        return v_bool(false);
    }
    case M_UPPER: return v_str(recase(c, s, 'U'));
    case M_LOWER: return v_str(recase(c, s, 'L'));
    case M_TITLE: return v_str(recase(c, s, 'T'));
    case M_CAPITALIZE: return v_str(recase(c, s, 'C'));
    case M_REPLACE:
        return v_str(replace(c, line, s, arg(a, 0, NULL, v_undef), arg(a, 1, NULL, v_undef),
                             arg_int(c, line, a, 2, "count", -1, "replace")));
    case M_FIND: case M_COUNT: {
        const struct str *sub = arg_str(c, line, a, 0, NULL, m->id == M_FIND ? "find" : "count");
        if (m->id == M_FIND) {
            const char *at = memfind(s->p, s->len, sub->p, sub->len);
            return v_int(at ? (int64_t)utf8_len(s->p, (size_t)(at - s->p)) : -1);
        }
        if (sub->len == 0) return v_int((int64_t)utf8_len(s->p, s->len) + 1);
        int64_t k = 0;
        for (const char *at = s->p; (at = memfind(at, s->len - (size_t)(at - s->p), sub->p, sub->len)); at += sub->len) k++;
        return v_int(k);
    }
    case M_JOIN: return v_str(join(c, s, iter_list(c, line, arg(a, 0, NULL, v_undef)), NULL, line));
    case M_ITEMS: return items_of(c, line, self);
    case M_KEYS: case M_VALUES: {
        struct list *l = new_list(c, self.u.d->n);
        for (size_t i = 0; i < self.u.d->n; i++) l->v[i] = m->id == M_KEYS ? self.u.d->k[i] : self.u.d->v[i];
        return v_list(l);
    }
    case M_GET: {
        struct value *v = dict_find(self.u.d, arg(a, 0, "key", v_undef));
        return v ? *v : arg(a, 1, "default", v_none);
    }
    case M_CYCLE:
        if (a->n == 0) fail_at(c, line, "loop.cycle() needs arguments");
        return a->pos[self.u.loop->index0 % a->n];
    default: fail_at(c, line, "not callable");
    }
}

static struct value call_func(struct ctx *c, int line, int id, const struct args *a)
{
    switch (id) {
    case F_RANGE: {
        int64_t lo = 0, hi, st = 1;
        if (a->n == 0 || a->n > 3) fail_at(c, line, "range() takes 1 to 3 arguments");
        for (size_t i = 0; i < a->n; i++)
            if (a->pos[i].t != VT_INT && a->pos[i].t != VT_BOOL) fail_at(c, line, "range() takes integers");
        if (a->n == 1) hi = int_of(a->pos[0]);
        else lo = int_of(a->pos[0]), hi = int_of(a->pos[1]);
        if (a->n == 3) st = int_of(a->pos[2]);
        if (st == 0) fail_at(c, line, "range() step cannot be zero");
        double n = st > 0 ? ceil(((double)hi - (double)lo) / (double)st) : ceil(((double)lo - (double)hi) / -(double)st);
        if (n < 0) n = 0;
        if (n > MAX_RANGE) fail_at(c, line, "range() of more than %d numbers", MAX_RANGE);
        struct list *l = new_list(c, (size_t)n);
        for (size_t i = 0; i < (size_t)n; i++) l->v[i] = v_int(lo + (int64_t)i * st);
        return v_list(l);
    }
    case F_NAMESPACE: case F_DICT: {
        struct dict *d = alloc(c, sizeof *d);
        for (size_t i = 0; i < a->n; i++) {
            if (a->pos[i].t != VT_DICT) fail_at(c, line, "namespace()/dict() take keyword arguments or a dict");
            for (size_t k = 0; k < a->pos[i].u.d->n; k++) dict_set(c, d, a->pos[i].u.d->k[k], a->pos[i].u.d->v[k]);
        }
        for (size_t i = 0; i < a->nk; i++) dict_set(c, d, v_cstr(c, a->kw[i]), a->kwv[i]);
        return (struct value){ .t = id == F_NAMESPACE ? VT_NS : VT_DICT, .u.d = d };
    }
    case F_RAISE: {
        const struct str *m = to_str(c, arg(a, 0, "message", v_undef));
        failf(c->f, 0, "template error: %.*s", (int)(m->len < 200 ? m->len : 200), m->p);
    }
    case F_STRFTIME: {
        const struct str *fmt = arg_str(c, line, a, 0, NULL, "strftime_now");
        char f[128], out[256];
        if (fmt->len >= sizeof f) fail_at(c, line, "strftime_now: format too long");
        memcpy(f, fmt->p, fmt->len);
        f[fmt->len] = '\0';
        time_t t = c->par->now >= 0 ? (time_t)c->par->now : time(NULL);
        struct tm tm;
        if (!localtime_r(&t, &tm)) fail_at(c, line, "strftime_now: bad time");
        size_t n = f[0] ? strftime(out, sizeof out, f, &tm) : 0;
        return v_str(mkstr(c, out, NULL, n));
    }
    default: fail_at(c, line, "not callable");
    }
}

static void exec_node(struct ctx *c, const struct node *n, struct frame *f);
static struct value eval(struct ctx *c, const struct node *n, struct frame *f);

static void capture_begin(struct ctx *c, int line)
{
    if (c->top + 1 >= MAX_CAPTURE) fail_at(c, line, "template nested too deeply");
    c->top++;
    memset(&c->out[c->top], 0, sizeof c->out[c->top]);
}

static const struct str *capture_end(struct ctx *c)
{
    struct obuf *b = &c->out[c->top];
    const struct str *s = mkstr(c, b->p ? b->p : "", b->tainted ? b->t : NULL, b->len);
    free(b->p);
    free(b->t);
    memset(b, 0, sizeof *b);
    c->top--;
    return s;
}

static struct value call_macro(struct ctx *c, int line, const struct node *m, const struct args *a)
{
    if (c->calls >= MAX_CALL_DEPTH) fail_at(c, line, "macro calls nested too deeply");
    if (a->n > m->n_names) fail_at(c, line, "macro '%s' takes %zu arguments", m->name, m->n_names);
    struct frame *f = frame_new(c, c->tframe);
    for (size_t i = 0; i < m->n_names; i++) {
        struct value v = arg(a, i, m->names[i], v_undef);
        /* a default is evaluated in the macro's frame, as jinja2 does */
        if (v.t == VT_UNDEF && m->kids[i]) v = eval(c, m->kids[i], f);
        frame_set(c, f, m->names[i], v);
    }
    c->calls++;
    capture_begin(c, line);
    int jump = c->jump;
    exec_node(c, m->b, f);
    c->jump = jump;
    const struct str *s = capture_end(c);
    c->calls--;
    return v_str(s);
}

static struct value call_value(struct ctx *c, int line, struct value fn, const struct args *a)
{
    switch (fn.t) {
    case VT_METHOD: return call_method(c, line, fn.u.m, a);
    case VT_FUNC: return call_func(c, line, fn.u.func, a);
    case VT_MACRO: return call_macro(c, line, fn.u.macro, a);
    case VT_UNDEF: fail_at(c, line, "call of an undefined function or method");
    default: fail_at(c, line, "%s is not callable", type_name(fn.t));
    }
}

/* ---- expressions -------------------------------------------------------------------- */

static struct args eval_args(struct ctx *c, const struct node *n, struct frame *f)
{
    struct value *pos = alloc_n(c, n->n ? n->n : 1, sizeof *pos);
    struct value *kwv = alloc_n(c, n->n2 ? n->n2 : 1, sizeof *kwv);
    for (size_t i = 0; i < n->n; i++) pos[i] = eval(c, n->kids[i], f);
    for (size_t i = 0; i < n->n2; i++) kwv[i] = eval(c, n->kids2[i], f);
    return (struct args){ .pos = pos, .n = n->n, .kw = n->names, .kwv = kwv, .nk = n->n2 };
}

static struct value arith(struct ctx *c, int line, int op, struct value a, struct value b)
{
    if (a.t == VT_UNDEF || b.t == VT_UNDEF)
        fail_at(c, line, "an undefined value in arithmetic ('%c')", op == 'F' ? '/' : op == 'P' ? '*' : op);
    if (op == '+' && a.t == VT_STR && b.t == VT_STR) {
        struct sb s = { 0 };
        sb_str(c, &s, a.u.s);
        sb_str(c, &s, b.u.s);
        return v_str(sb_done(c, &s));
    }
    if (op == '+' && a.t == VT_LIST && b.t == VT_LIST) {
        struct list *l = new_list(c, a.u.l->n + b.u.l->n);
        if (a.u.l->n) memcpy(l->v, a.u.l->v, a.u.l->n * sizeof *l->v);
        if (b.u.l->n) memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof *l->v);
        return v_list(l);
    }
    if (op == '*' && ((a.t == VT_STR && (b.t == VT_INT || b.t == VT_BOOL)) ||
                      (b.t == VT_STR && (a.t == VT_INT || a.t == VT_BOOL)))) {
        const struct str *s = a.t == VT_STR ? a.u.s : b.u.s;
        int64_t k = a.t == VT_STR ? int_of(b) : int_of(a);
        struct sb r = { 0 };
        for (int64_t i = 0; i < k; i++) {
            step(c, line);
            sb_str(c, &r, s);
        }
        return v_str(sb_done(c, &r));
    }
    if (!is_num(a) || !is_num(b))
        fail_at(c, line, "unsupported operand types for '%s': %s and %s",
                op == 'F' ? "//" : op == 'P' ? "**" : (char[]){ (char)op, 0 }, type_name(a.t), type_name(b.t));
    if (a.t != VT_FLOAT && b.t != VT_FLOAT && op != '/') {
        int64_t x = int_of(a), y = int_of(b), r = 0;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(x, y, &r)) fail_at(c, line, "integer overflow");
            return v_int(r);
        case '-':
            if (__builtin_sub_overflow(x, y, &r)) fail_at(c, line, "integer overflow");
            return v_int(r);
        case '*':
            if (__builtin_mul_overflow(x, y, &r)) fail_at(c, line, "integer overflow");
            return v_int(r);
        case 'F': case '%': {
            if (y == 0) fail_at(c, line, "division by zero");
            if (x == INT64_MIN && y == -1) fail_at(c, line, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) q--, m += y;
            return v_int(op == 'F' ? q : m);
        }
        case 'P': {
            if (y < 0) return v_float(pow((double)x, (double)y));
            r = 1;
            for (int64_t i = 0; i < y; i++) {
                step(c, line);
                if (__builtin_mul_overflow(r, x, &r)) fail_at(c, line, "integer overflow");
                if (r == 0 || r == 1) break;
            }
            return v_int(r);
        }
        }
    }
    double x = num(a), y = num(b);
    switch (op) {
    case '+': return v_float(x + y);
    case '-': return v_float(x - y);
    case '*': return v_float(x * y);
    case '/':
        if (y == 0) fail_at(c, line, "division by zero");
        return v_float(x / y);
    case 'F': case '%': {
        if (y == 0) fail_at(c, line, "division by zero");
        double m = fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return v_float(op == 'F' ? floor(x / y) : m);
    }
    default: return v_float(pow(x, y));
    }
}

static bool contains(struct ctx *c, int line, struct value hay, struct value needle)
{
    if (hay.t == VT_STR) {
        if (needle.t != VT_STR) fail_at(c, line, "'in <string>' needs a string on the left, not %s", type_name(needle.t));
        return memfind(hay.u.s->p, hay.u.s->len, needle.u.s->p, needle.u.s->len) != NULL;
    }
    if (hay.t == VT_DICT || hay.t == VT_NS) return dict_find(hay.u.d, needle) != NULL;
    if (hay.t == VT_UNDEF) return false; /* iterating an undefined value finds nothing */
    if (hay.t == VT_LIST) {
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (py_eq(hay.u.l->v[i], needle, 0)) return true;
        return false;
    }
    fail_at(c, line, "'in' needs a string, list or dict on the right, not %s", type_name(hay.t));
}

static bool compare(struct ctx *c, int line, int op, struct value a, struct value b)
{
    switch (op) {
    case C_EQ: return py_eq(a, b, 0);
    case C_NE: return !py_eq(a, b, 0);
    case C_LT: return py_cmp(c, line, a, b, 0) < 0;
    case C_LE: return py_cmp(c, line, a, b, 0) <= 0;
    case C_GT: return py_cmp(c, line, a, b, 0) > 0;
    case C_GE: return py_cmp(c, line, a, b, 0) >= 0;
    case C_IN: return contains(c, line, b, a);
    default: return !contains(c, line, b, a);
    }
}

static struct value eval(struct ctx *c, const struct node *n, struct frame *f)
{
    step(c, n->line);
    switch (n->k) {
    case E_CONST: return n->val;
    case E_NAME: return lookup(f, n->name);
    case E_ATTR: return get_attr(c, n->line, eval(c, n->a, f), n->name);
    case E_ITEM: {
        struct value o = eval(c, n->a, f);
        return get_item(c, n->line, o, eval(c, n->b, f));
    }
    case E_SLICE: {
        struct value o = eval(c, n->a, f), bv[3];
        const struct node *parts[3] = { n->b, n->c, n->d };
        for (int i = 0; i < 3; i++) bv[i] = parts[i] ? eval(c, parts[i], f) : v_none;
        return get_slice(c, n->line, o, bv);
    }
    case E_CALL: {
        struct value fn = eval(c, n->a, f);
        struct args a = eval_args(c, n, f);
        return call_value(c, n->line, fn, &a);
    }
    case E_FILTER: {
        struct value v = eval(c, n->a, f);
        struct args a = eval_args(c, n, f);
        return apply_filter(c, n->line, n->name, v, &a);
    }
    case E_TEST: {
        struct value v = eval(c, n->a, f);
        struct args a = eval_args(c, n, f);
        bool r = truthy(apply_test(c, n->line, n->name, v, &a));
        return v_bool(r != n->neg);
    }
    case E_NOT: return v_bool(!truthy(eval(c, n->a, f)));
    case E_NEG: case E_POS: {
        struct value v = eval(c, n->a, f);
        if (!is_num(v)) fail_at(c, n->line, "bad operand type for unary %c: %s", n->k == E_NEG ? '-' : '+', type_name(v.t));
        if (n->k == E_POS) return v.t == VT_BOOL ? v_int(v.u.b) : v;
        if (v.t == VT_FLOAT) return v_float(-v.u.f);
        if (int_of(v) == INT64_MIN) fail_at(c, n->line, "integer overflow");
        return v_int(-int_of(v));
    }
    case E_BIN: {
        struct value a = eval(c, n->a, f), b = eval(c, n->b, f);
        if (n->op == '~') {
            struct sb s = { 0 };
            sb_str(c, &s, to_str(c, a));
            sb_str(c, &s, to_str(c, b));
            return v_str(sb_done(c, &s));
        }
        return arith(c, n->line, n->op, a, b);
    }
    case E_AND: {
        struct value a = eval(c, n->a, f);
        return truthy(a) ? eval(c, n->b, f) : a;
    }
    case E_OR: {
        struct value a = eval(c, n->a, f);
        return truthy(a) ? a : eval(c, n->b, f);
    }
    case E_CMP: {
        struct value a = eval(c, n->a, f);
        for (size_t i = 0; i < n->n; i++) {
            struct value b = eval(c, n->kids[i], f);
            if (!compare(c, n->line, n->ops[i], a, b)) return v_bool(false);
            a = b;
        }
        return v_bool(true);
    }
    case E_COND:
        if (truthy(eval(c, n->a, f))) return eval(c, n->b, f);
        return n->c ? eval(c, n->c, f) : v_undef;
    case E_LIST: {
        struct list *l = new_list(c, n->n);
        for (size_t i = 0; i < n->n; i++) l->v[i] = eval(c, n->kids[i], f);
        return v_list(l);
    }
    case E_DICT: {
        struct dict *d = alloc(c, sizeof *d);
        for (size_t i = 0; i < n->n; i++) {
            struct value k = eval(c, n->kids[i], f);
            dict_set(c, d, k, eval(c, n->kids2[i], f));
        }
        return (struct value){ .t = VT_DICT, .u.d = d };
    }
    default: fail_at(c, n->line, "not an expression");
    }
}

/* ---- statements ------------------------------------------------------------------------ */

static void emit(struct ctx *c, struct value v)
{
    const struct str *s = to_str(c, v);
    obuf_add(c, s->p, s->taint, s->len);
}

static void bind_targets(struct ctx *c, const struct node *n, struct frame *f, struct value item)
{
    if (n->n_names == 1) {
        frame_set(c, f, n->names[0], item);
        return;
    }
    const struct list *l = item.t == VT_LIST ? item.u.l : NULL;
    if (!l || l->n != n->n_names)
        fail_at(c, n->line, "cannot unpack %s into %zu names", type_name(item.t), n->n_names);
    for (size_t i = 0; i < n->n_names; i++) frame_set(c, f, n->names[i], l->v[i]);
}

static void exec_for(struct ctx *c, const struct node *n, struct frame *f)
{
    const struct list *items = iter_list(c, n->line, eval(c, n->a, f));
    if (n->b) { /* for x in xs if cond: the loop sees only what passes */
        struct list *kept = new_list(c, items->n);
        size_t k = 0;
        struct frame *t = frame_new(c, f);
        for (size_t i = 0; i < items->n; i++) {
            step(c, n->line);
            t->n = 0;
            bind_targets(c, n, t, items->v[i]);
            if (truthy(eval(c, n->b, t))) kept->v[k++] = items->v[i];
        }
        kept->n = k;
        items = kept;
    }
    struct loopinfo *li = alloc(c, sizeof *li);
    li->items = items;
    /* one frame for all iterations, emptied before each: what an iteration
       sets is gone in the next (as in jinja2), and a long loop allocates
       nothing per iteration */
    struct frame *it = frame_new(c, f);
    for (size_t i = 0; i < items->n; i++) {
        step(c, n->line);
        it->n = 0;
        li->index0 = i;
        frame_set(c, it, "loop", (struct value){ .t = VT_LOOP, .u.loop = li });
        bind_targets(c, n, it, items->v[i]);
        exec_node(c, n->c, it);
        if (c->jump == 1) {
            c->jump = 0;
            break;
        }
        c->jump = 0;
    }
    if (items->n == 0 && n->d) exec_node(c, n->d, f);
}

static void exec_node(struct ctx *c, const struct node *n, struct frame *f)
{
    step(c, n->line);
    switch (n->k) {
    case N_BODY:
        for (size_t i = 0; i < n->n && !c->jump; i++) exec_node(c, n->kids[i], f);
        return;
    case N_DATA: obuf_add(c, n->val.u.s->p, NULL, n->val.u.s->len); return;
    case N_OUTPUT: emit(c, eval(c, n->a, f)); return;
    case N_IF:
        if (truthy(eval(c, n->a, f))) exec_node(c, n->b, f);
        else if (n->c) exec_node(c, n->c, f);
        return;
    case N_FOR: exec_for(c, n, f); return;
    case N_SET: {
        struct value v = eval(c, n->a, f);
        if (!n->name2) {
            frame_set(c, f, n->name, v);
            return;
        }
        struct value ns = lookup(f, n->name);
        if (ns.t != VT_NS) fail_at(c, n->line, "cannot set '%s.%s': '%s' is not a namespace", n->name, n->name2, n->name);
        dict_set(c, ns.u.d, v_cstr(c, n->name2), v);
        return;
    }
    case N_SETBLOCK: {
        capture_begin(c, n->line);
        exec_node(c, n->b, f);
        frame_set(c, f, n->name, v_str(capture_end(c)));
        return;
    }
    case N_MACRO: frame_set(c, f, n->name, (struct value){ .t = VT_MACRO, .u.macro = n }); return;
    case N_BREAK: c->jump = 1; return;
    case N_CONTINUE: c->jump = 2; return;
    default: fail_at(c, n->line, "not a statement");
    }
}

/* ---- render entry point ------------------------------------------------------------------ */

static struct value messages_value(struct ctx *c, const struct jinja_params *p)
{
    struct list *l = new_list(c, p->n_msgs);
    for (size_t i = 0; i < p->n_msgs; i++) {
        const struct anc_chat_msg *m = &p->msgs[i];
        struct dict *d = alloc(c, sizeof *d);
        const char *content = m->content ? m->content : "";
        unsigned char *taint = alloc(c, m->len ? m->len : 1);
        memset(taint, 1, m->len);
        dict_set(c, d, v_cstr(c, "role"), v_cstr(c, m->role ? m->role : ""));
        dict_set(c, d, v_cstr(c, "content"), v_str(mkstr(c, content, taint, m->len)));
        l->v[i] = (struct value){ .t = VT_DICT, .u.d = d };
    }
    return v_list(l);
}

static void render_all(struct ctx *c, const struct jinja_tpl *t)
{
    const struct jinja_params *p = c->par;
    struct frame *g = frame_new(c, NULL);
    c->globals = g;
    frame_set(c, g, "messages", messages_value(c, p));
    frame_set(c, g, "add_generation_prompt", v_bool(p->add_generation_prompt));
    if (p->bos_token) frame_set(c, g, "bos_token", v_cstr(c, p->bos_token));
    if (p->eos_token) frame_set(c, g, "eos_token", v_cstr(c, p->eos_token));
    frame_set(c, g, "tools", v_none);
    frame_set(c, g, "documents", v_none);
    static const struct { const char *name; int id; } funcs[] = {
        { "range", F_RANGE }, { "namespace", F_NAMESPACE }, { "raise_exception", F_RAISE },
        { "strftime_now", F_STRFTIME }, { "dict", F_DICT },
    };
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        frame_set(c, g, funcs[i].name, (struct value){ .t = VT_FUNC, .u.func = funcs[i].id });
    /* the template's own variables live in a frame above the globals; a
       macro sees those (itself included) but not its caller's locals */
    c->tframe = frame_new(c, g);
    exec_node(c, t->root, c->tframe);
}

char *jinja_render(const struct jinja_tpl *t, const struct jinja_params *p, size_t *len,
                   unsigned char **taint, char *err, size_t errlen)
{
    if (len) *len = 0;
    if (taint) *taint = NULL;
    struct ctx *volatile c = calloc(1, sizeof *c);
    struct fail *volatile f = malloc(sizeof *f);
    if (!t || !p || !c || !f) {
        free(c);
        free(f);
        if (err && errlen) snprintf(err, errlen, "%s", !t || !p ? "no template" : "out of memory");
        return NULL;
    }
    size_t content = 0;
    for (size_t i = 0; i < p->n_msgs; i++) content += p->msgs[i].len;
    c->f = f;
    c->par = p;
    c->max_output = p->max_output ? p->max_output
                    : JINJA_DEFAULT_MAX_OUTPUT + (content < SIZE_MAX / 16 ? content * 8 : SIZE_MAX / 2);
    c->a.limit = MAX_ARENA + (content < SIZE_MAX / 64 ? content * 16 : 0);
    if (setjmp(f->jb)) {
        if (err && errlen) snprintf(err, errlen, "%s", f->msg);
        for (int i = 0; i <= c->top && i < MAX_CAPTURE; i++) {
            free(c->out[i].p);
            free(c->out[i].t);
        }
        arena_free(&c->a);
        free(c);
        free(f);
        return NULL;
    }
    render_all(c, t);
    struct obuf *b = &c->out[0];
    char *text = b->p ? b->p : malloc(1);
    unsigned char *mask = b->t;
    if (!text || (taint && !mask && !(mask = malloc(1)))) {
        if (text != b->p) free(text);
        failf(f, 0, "out of memory");
    }
    text[b->len] = '\0'; /* obuf keeps one byte free */
    if (len) *len = b->len;
    if (taint) *taint = mask;
    else free(mask);
    arena_free(&c->a);
    free(c);
    free(f);
    return text;
}
