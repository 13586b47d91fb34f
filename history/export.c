/* export.c — a stored session written as Markdown or JSON, and the text
 * helpers that make stored bytes safe to print (UTF-8 repair, JSON string
 * escaping, times). Uses only history.h's public API and the C library. */
#include "history.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- UTF-8 ------------------------------------------------------------ */

#define REPLACEMENT 0xFFFD

/* Decode one character at S (N bytes left, N >= 1). Invalid sequences
 * (stray continuation bytes, overlong forms, surrogates, > U+10FFFF,
 * truncation) give U+FFFD and consume one byte. Returns bytes consumed. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned long v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else goto bad;
    if (n < len) goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto bad;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto bad;
    *cp = v;
    return len;
bad:
    *cp = REPLACEMENT;
    return 1;
}

static size_t utf8_put(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool is_control(unsigned long cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0);
}

char *hist_text_clean(const char *s, unsigned flags)
{
    if (!s) s = "";
    size_t n = strlen(s);
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(3 * n + 1); /* one byte grows to at most 3 (U+FFFD) */
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    bool multiline = flags & HIST_CLEAN_MULTILINE, space = false;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned long cp;
        i += utf8_next(u + i, n - i, &cp);
        if (multiline) {
            if (cp == '\r') {
                if (i < n && u[i] == '\n') i++;
                cp = '\n';
            }
            if (cp == '\n' || cp == '\t') {
                out[o++] = (char)cp;
                continue;
            }
        } else if (cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x2028 || cp == 0x2029 ||
                   cp == 0x85) {
            space = o > 0; /* runs become one space; none at the start */
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        o += utf8_put(out + o, is_control(cp) ? REPLACEMENT : cp);
    }
    out[o] = '\0';
    return out;
}

/* ---- JSON ---------------------------------------------------------------- */

void hist_json_string(FILE *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)u);
    putc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned long cp;
        i += utf8_next(u + i, n - i, &cp);
        switch (cp) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        default:
            /* Controls as \u escapes; U+2028/9 too, so the text is also
             * safe inside JavaScript. */
            if (cp < 0x20 || cp == 0x7F || cp == 0x2028 || cp == 0x2029) {
                fprintf(out, "\\u%c%c%c%c", hex[cp >> 12 & 15], hex[cp >> 8 & 15],
                        hex[cp >> 4 & 15], hex[cp & 15]);
            } else {
                char buf[4];
                fwrite(buf, 1, utf8_put(buf, cp), out);
            }
        }
    }
    putc('"', out);
}

/* A strict RFC 8259 check, so a stored parameter text is embedded as a
 * JSON value only when it is one (otherwise it is exported as a string). */
struct json_reader {
    const unsigned char *s;
    size_t i, n;
    int depth;
};

static void json_ws(struct json_reader *r)
{
    while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
                           r->s[r->i] == '\r'))
        r->i++;
}

static bool json_digits(struct json_reader *r)
{
    size_t start = r->i;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
    return r->i > start;
}

static bool json_is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool json_str(struct json_reader *r)
{
    if (r->i >= r->n || r->s[r->i] != '"') return false;
    r->i++;
    while (r->i < r->n) {
        unsigned c = r->s[r->i];
        if (c == '"') {
            r->i++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (++r->i >= r->n) return false;
            c = r->s[r->i];
            if (c == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (r->i + k >= r->n || !json_is_hex(r->s[r->i + k])) return false;
                r->i += 5;
            } else if (c && strchr("\"\\/bfnrt", (int)c)) {
                r->i++;
            } else {
                return false;
            }
        } else {
            unsigned long cp;
            size_t k = utf8_next(r->s + r->i, r->n - r->i, &cp);
            if (cp == REPLACEMENT && k == 1 && c >= 0x80) return false;
            r->i += k;
        }
    }
    return false;
}

static bool json_value(struct json_reader *r);

static bool json_container(struct json_reader *r, char close, bool keyed)
{
    if (++r->depth > 64) return false;
    r->i++; /* the opening bracket */
    json_ws(r);
    if (r->i < r->n && r->s[r->i] == (unsigned char)close) {
        r->i++;
        r->depth--;
        return true;
    }
    for (;;) {
        if (keyed) {
            if (!json_str(r)) return false;
            json_ws(r);
            if (r->i >= r->n || r->s[r->i] != ':') return false;
            r->i++;
        }
        if (!json_value(r)) return false;
        json_ws(r);
        if (r->i >= r->n) return false;
        if (r->s[r->i] == (unsigned char)close) {
            r->i++;
            r->depth--;
            return true;
        }
        if (r->s[r->i] != ',') return false;
        r->i++;
        json_ws(r);
    }
}

static bool json_value(struct json_reader *r)
{
    json_ws(r);
    if (r->i >= r->n) return false;
    unsigned c = r->s[r->i];
    if (c == '{') return json_container(r, '}', true);
    if (c == '[') return json_container(r, ']', false);
    if (c == '"') return json_str(r);
    static const char *const words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t len = strlen(words[k]);
        if (r->n - r->i >= len && memcmp(r->s + r->i, words[k], len) == 0) {
            r->i += len;
            return true;
        }
    }
    if (c == '-') r->i++;
    if (r->i < r->n && r->s[r->i] == '0') r->i++;
    else if (!json_digits(r)) return false;
    if (r->i < r->n && r->s[r->i] == '.') {
        r->i++;
        if (!json_digits(r)) return false;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        r->i++;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-')) r->i++;
        if (!json_digits(r)) return false;
    }
    return true;
}

static bool json_valid(const char *s)
{
    struct json_reader r = {(const unsigned char *)s, 0, strlen(s), 0};
    if (!json_value(&r)) return false;
    json_ws(&r);
    return r.i == r.n;
}

/* ---- numbers and times (locale-independent) --------------------------- */

/* V with DECIMALS digits after the point, whatever LC_NUMERIC says. */
static void write_fixed(FILE *out, double v, int decimals)
{
    if (!(v >= 0 && v < 1e15)) { /* also NaN: nothing sensible to print */
        fputs("0", out);
        return;
    }
    long long scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    long long x = (long long)(v * (double)scale + 0.5);
    fprintf(out, "%lld.%0*lld", x / scale, decimals, x % scale);
}

char *hist_format_time(int64_t ms, bool utc, char *buf, size_t cap)
{
    if (!cap) return buf;
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) {
        snprintf(buf, cap, "?");
        return buf;
    }
    char base[64];
    if (!strftime(base, sizeof base, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm))
        base[0] = '\0';
    if (utc) snprintf(buf, cap, "%s.%03dZ", base, (int)frac);
    else snprintf(buf, cap, "%s", base);
    return buf;
}

static void json_time(FILE *out, int64_t ms)
{
    char t[48];
    hist_json_string(out, hist_format_time(ms, true, t, sizeof t));
}

static void json_count(FILE *out, int64_t v)
{
    if (v < 0) fputs("null", out);
    else fprintf(out, "%lld", (long long)v);
}

static void json_ms(FILE *out, double v)
{
    if (!(v >= 0) || v > 1e15) fputs("null", out);
    else write_fixed(out, v, 3);
}

static void json_nullable(FILE *out, const char *s)
{
    if (s) hist_json_string(out, s);
    else fputs("null", out);
}

/* The engine figures of an assistant reply as a JSON object (null when
 * none were stored: a user message, or a row from before version 3). */
static void json_info(FILE *out, const struct hist_message *m)
{
    const struct hist_reply_info *r = &m->info;
    if (m->role != HIST_ROLE_ASSISTANT || !hist_reply_info_known(r)) {
        fputs("null", out);
        return;
    }
    fputs("{\"cache\": ", out);
    json_nullable(out, r->cache_policy);
    fputs(", \"window\": ", out);
    json_count(out, r->window);
    fputs(", \"sinks\": ", out);
    json_count(out, r->sinks);
    fputs(", \"rope_type\": ", out);
    json_nullable(out, r->rope_type);
    fputs(", \"rope_base\": ", out);
    json_ms(out, r->rope_base);
    fputs(", \"rope_factor\": ", out);
    json_ms(out, r->rope_factor);
    fputs(", \"adapter\": ", out);
    json_nullable(out, r->adapter);
    fputs(", \"template\": ", out);
    json_nullable(out, r->template_name);
    fputs(", \"tokens\": ", out);
    json_count(out, m->stats.completion_tokens);
    fputs(", \"prompt_tok_s\": ", out);
    json_ms(out, hist_rate(m->stats.prompt_tokens, m->stats.prompt_ms));
    fputs(", \"decode_tok_s\": ", out);
    json_ms(out, hist_rate(m->stats.completion_tokens, m->stats.gen_ms));
    fputs(", \"cache_used\": ", out);
    json_count(out, r->cache_used);
    fputs(", \"cache_capacity\": ", out);
    json_count(out, r->cache_capacity);
    fputs(", \"sink_share\": ", out);
    if (r->sink_share >= 0 && r->sink_share <= 1) write_fixed(out, r->sink_share, 4);
    else fputs("null", out);
    fputs(", \"n_token_ids\": ", out);
    json_count(out, r->token_ids ? (int64_t)r->n_token_ids : -1);
    fputc('}', out);
}

static void export_json(FILE *out, const struct hist_session *s, const struct hist_message *msgs,
                        size_t n_msgs, const struct hist_param_event *ev, size_t n_ev)
{
    fputs("{\n  \"format\": \"ancora-session\",\n  \"format_version\": 1,\n", out);
    fprintf(out, "  \"session\": {\n    \"id\": %lld,\n    \"title\": ", (long long)s->id);
    hist_json_string(out, s->title);
    fputs(",\n    \"model_name\": ", out);
    hist_json_string(out, s->model_name);
    fputs(",\n    \"model_path\": ", out);
    hist_json_string(out, s->model_path);
    fputs(",\n    \"created\": ", out);
    json_time(out, s->created_ms);
    fputs(",\n    \"updated\": ", out);
    json_time(out, s->updated_ms);
    /* The parameters as a JSON value when the stored text is one. */
    fputs(",\n    \"params\": ", out);
    if (json_valid(s->params_json)) fputs(s->params_json, out);
    else hist_json_string(out, s->params_json);
    fputs(",\n    \"vocab_hash\": ", out);
    json_nullable(out, *s->vocab_hash ? s->vocab_hash : NULL);
    fputs("\n  },\n  \"messages\": [", out);
    for (size_t i = 0; i < n_msgs; i++) {
        const struct hist_message *m = &msgs[i];
        fprintf(out, "%s\n    {\n      \"id\": %lld,\n      \"role\": \"%s\",\n      \"created\": ",
                i ? "," : "", (long long)m->id, hist_role_name(m->role));
        json_time(out, m->created_ms);
        fputs(",\n      \"content\": ", out);
        hist_json_string(out, m->content);
        fputs(",\n      \"finish_reason\": ", out);
        json_nullable(out, hist_finish_name(m->finish));
        fputs(",\n      \"prompt_tokens\": ", out);
        json_count(out, m->stats.prompt_tokens);
        fputs(",\n      \"completion_tokens\": ", out);
        json_count(out, m->stats.completion_tokens);
        fputs(",\n      \"prompt_ms\": ", out);
        json_ms(out, m->stats.prompt_ms);
        fputs(",\n      \"gen_ms\": ", out);
        json_ms(out, m->stats.gen_ms);
        fputs(",\n      \"engine\": ", out);
        json_info(out, m);
        fputs("\n    }", out);
    }
    fputs(n_msgs ? "\n  ],\n  \"param_events\": [" : "],\n  \"param_events\": [", out);
    for (size_t i = 0; i < n_ev; i++) {
        const struct hist_param_event *e = &ev[i];
        fprintf(out, "%s\n    {\"id\": %lld, \"message_id\": ", i ? "," : "", (long long)e->id);
        if (e->message_id > 0) fprintf(out, "%lld", (long long)e->message_id);
        else fputs("null", out);
        fputs(", \"name\": ", out);
        hist_json_string(out, e->name);
        fputs(", \"old_value\": ", out);
        json_nullable(out, e->old_value);
        fputs(", \"new_value\": ", out);
        json_nullable(out, e->new_value);
        fputs(", \"at\": ", out);
        json_time(out, e->at_ms);
        fputc('}', out);
    }
    fputs(n_ev ? "\n  ]\n}\n" : "]\n}\n", out);
}

/* ---- the figures as one line ------------------------------------------------ */

double hist_rate(int64_t tokens, double ms)
{
    return tokens >= 0 && ms > 0 ? (double)tokens * 1000.0 / ms : -1;
}

bool hist_reply_info_known(const struct hist_reply_info *r)
{
    return r->cache_policy || r->window >= 0 || r->sinks >= 0 || r->rope_type ||
           r->rope_base >= 0 || r->template_name || r->cache_used >= 0 || r->sink_share >= 0 ||
           r->token_ids;
}

/* Append to BUF (snprintf-style, never past CAP). */
static void add(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

bool hist_reply_info_line(const struct hist_message *m, char *buf, size_t cap)
{
    const struct hist_reply_info *r = &m->info;
    if (!cap) return false;
    buf[0] = '\0';
    if (!hist_reply_info_known(r)) return false;
    add(buf, cap, "%s", r->cache_policy ? r->cache_policy : "?");
    if (r->window >= 0) add(buf, cap, " window %lld", (long long)r->window);
    if (r->sinks >= 0) add(buf, cap, " sinks %lld", (long long)r->sinks);
    if (r->rope_type || r->rope_base >= 0) {
        add(buf, cap, ", RoPE %s", r->rope_type ? r->rope_type : "?");
        if (r->rope_base >= 0) add(buf, cap, " base %g", r->rope_base);
        if (r->rope_factor >= 0) add(buf, cap, " x%g", r->rope_factor);
    }
    if (r->adapter) add(buf, cap, ", adapter %s", r->adapter);
    if (r->template_name) add(buf, cap, ", template %s", r->template_name);
    double pr = hist_rate(m->stats.prompt_tokens, m->stats.prompt_ms);
    double dr = hist_rate(m->stats.completion_tokens, m->stats.gen_ms);
    if (pr >= 0) add(buf, cap, ", prompt %.1f tok/s", pr);
    if (dr >= 0) add(buf, cap, ", decode %.1f tok/s", dr);
    if (r->cache_used >= 0) {
        add(buf, cap, ", cache %lld", (long long)r->cache_used);
        if (r->cache_capacity > 0) add(buf, cap, "/%lld", (long long)r->cache_capacity);
    }
    if (r->sink_share >= 0) add(buf, cap, ", sink attention %.1f%%", 100.0 * r->sink_share);
    /* the text is ours, but the stored strings are not: one safe line */
    char *clean = hist_text_clean(buf, 0);
    if (clean) {
        snprintf(buf, cap, "%s", clean);
        free(clean);
    }
    return true;
}

/* ---- Markdown ---------------------------------------------------------------
 * Stored text is never read as markup: message bodies go in a fenced block
 * whose fence is longer than any backtick run inside; one-line fields are
 * either backslash-escaped (every ASCII punctuation character) or put in a
 * code span with a long enough backtick string. */

static size_t longest_backtick_run(const char *s)
{
    size_t best = 0, run = 0;
    for (; *s; s++) {
        run = *s == '`' ? run + 1 : 0;
        if (run > best) best = run;
    }
    return best;
}

static void backticks(FILE *out, size_t n)
{
    while (n--) putc('`', out);
}

static void md_text(FILE *out, const char *s)
{
    char *clean = hist_text_clean(s, 0);
    for (const char *p = clean ? clean : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80 && c > ' ' && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
            !(c >= 'A' && c <= 'Z'))
            putc('\\', out);
        putc(c, out);
    }
    free(clean);
}

static void md_code_span(FILE *out, const char *s)
{
    char *clean = hist_text_clean(s, 0);
    const char *t = clean ? clean : "";
    size_t n = longest_backtick_run(t) + 1;
    bool pad = *t == '`' || (*t && t[strlen(t) - 1] == '`');
    backticks(out, n);
    if (pad) putc(' ', out);
    fputs(t, out);
    if (pad) putc(' ', out);
    backticks(out, n);
    free(clean);
}

static void md_fence(FILE *out, const char *s)
{
    char *clean = hist_text_clean(s, HIST_CLEAN_MULTILINE);
    const char *t = clean ? clean : "";
    size_t n = longest_backtick_run(t) + 1;
    if (n < 3) n = 3;
    backticks(out, n);
    fputs("text\n", out);
    fputs(t, out);
    if (*t && t[strlen(t) - 1] != '\n') putc('\n', out);
    backticks(out, n);
    fputs("\n\n", out);
    free(clean);
}

static void md_events_at(FILE *out, const struct hist_param_event *ev, size_t n_ev, int64_t msg_id)
{
    for (size_t i = 0; i < n_ev; i++) {
        if (ev[i].message_id != msg_id) continue;
        fputs("> Parameter change: ", out);
        md_code_span(out, ev[i].name);
        fputs(" ", out);
        md_code_span(out, ev[i].old_value ? ev[i].old_value : "(unset)");
        fputs(" \xE2\x86\x92 ", out); /* → */
        md_code_span(out, ev[i].new_value ? ev[i].new_value : "(unset)");
        fputs("\n\n", out);
    }
}

/* "YYYY-MM-DD HH:MM:SS UTC": exports are read far from the local clock. */
static char *md_time(int64_t ms, char *buf, size_t cap)
{
    char iso[48];
    hist_format_time(ms, true, iso, sizeof iso);
    if (strlen(iso) != 24) { /* a year beyond 9999 or a bad time: as it is */
        snprintf(buf, cap, "%s", iso);
        return buf;
    }
    iso[10] = ' ';
    iso[19] = '\0'; /* drops ".mmmZ" */
    snprintf(buf, cap, "%s UTC", iso);
    return buf;
}

static void export_markdown(FILE *out, const struct hist_session *s,
                            const struct hist_message *msgs, size_t n_msgs,
                            const struct hist_param_event *ev, size_t n_ev)
{
    char t[48];
    fputs("# ", out);
    if (*s->title) md_text(out, s->title);
    else fprintf(out, "Session %lld", (long long)s->id);
    fprintf(out, "\n\n- Session: %lld\n- Model: ", (long long)s->id);
    if (*s->model_name) md_text(out, s->model_name);
    if (*s->model_path) {
        fputs(*s->model_name ? " (" : "", out);
        md_code_span(out, s->model_path);
        fputs(*s->model_name ? ")" : "", out);
    }
    if (!*s->model_name && !*s->model_path) fputs("unknown", out);
    fprintf(out, "\n- Started: %s\n", md_time(s->created_ms, t, sizeof t));
    md_time(s->updated_ms, t, sizeof t);
    fprintf(out, "- Last activity: %s\n- Messages: %zu\n- Parameters: ", t, n_msgs);
    md_code_span(out, s->params_json);
    fputs("\n\n", out);
    md_events_at(out, ev, n_ev, 0);
    for (size_t i = 0; i < n_msgs; i++) {
        const struct hist_message *m = &msgs[i];
        static const char *const heading[] = {"System", "User", "Assistant"};
        fprintf(out, "## %s \xE2\x80\x94 %s", heading[m->role], md_time(m->created_ms, t, sizeof t));
        if (m->stats.completion_tokens >= 0) {
            fprintf(out, " \xE2\x80\x94 %lld tokens", (long long)m->stats.completion_tokens);
            if (m->stats.gen_ms > 0) {
                fputs(", ", out);
                write_fixed(out, (double)m->stats.completion_tokens * 1000.0 / m->stats.gen_ms, 1);
                fputs(" tokens/s", out);
            }
        }
        if (m->role == HIST_ROLE_ASSISTANT && m->finish != HIST_FINISH_STOP)
            fprintf(out, " \xE2\x80\x94 %s",
                    m->finish == HIST_FINISH_NONE ? "streaming" : hist_finish_name(m->finish));
        fputs("\n\n", out);
        char line[512];
        if (m->role == HIST_ROLE_ASSISTANT && hist_reply_info_line(m, line, sizeof line)) {
            fputs("> Engine: ", out);
            md_code_span(out, line);
            fputs("\n\n", out);
        }
        md_fence(out, m->content);
        md_events_at(out, ev, n_ev, m->id);
    }
}

int hist_export(struct hist_db *db, int64_t session_id, enum hist_format fmt, FILE *out)
{
    struct hist_session s;
    struct hist_message *msgs = NULL;
    struct hist_param_event *ev = NULL;
    size_t n_msgs = 0, n_ev = 0;
    int status = hist_session_get(db, session_id, &s);
    if (status != HIST_OK) return status;
    status = hist_msg_list(db, session_id, &msgs, &n_msgs);
    if (status == HIST_OK) status = hist_param_event_list(db, session_id, &ev, &n_ev);
    if (status == HIST_OK) {
        if (fmt == HIST_FORMAT_JSON) export_json(out, &s, msgs, n_msgs, ev, n_ev);
        else export_markdown(out, &s, msgs, n_msgs, ev, n_ev);
        /* A failed write to OUT: the caller reports it (errno says why). */
        if (fflush(out) != 0 || ferror(out)) status = HIST_ERR_IO;
    }
    hist_session_clear(&s);
    hist_msg_list_free(msgs, n_msgs);
    hist_param_event_list_free(ev, n_ev);
    return status;
}
