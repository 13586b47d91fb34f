/* theme.c — colour themes: the compiled-in default (dark) and mono tables,
 * the .theme file parser and search path, and the curses colour pairs (one
 * per role). Knows nothing of the chat or the engine; drawing code asks for
 * a role's attributes and never sees a colour number. */
#include "theme.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ANC_DATADIR
#define ANC_DATADIR "/usr/local/share/ancora"
#endif

#define COL_DEFAULT (-1) /* the terminal's own colour */
#define COL_INHERIT (-2) /* the theme's "normal" colour */

struct style {
    int role; /* the row's role, checked against its index at start-up */
    short fg, bg;
    attr_t attrs;
};

enum depth { DEPTH_8, DEPTH_16, DEPTH_256, N_DEPTH };

static const char *const role_names[ROLE_COUNT] = {
#define THEME_ROLE_NAME(id, name) [id] = name,
    THEME_ROLES(THEME_ROLE_NAME)
#undef THEME_ROLE_NAME
};

const char *theme_role_name(enum theme_role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : "?";
}

/* ---- compiled-in themes ------------------------------------------------ */
/* Rows in role order; the count is checked at compile time, the order at
 * start-up (theme_selfcheck), so a new role cannot be forgotten here. */

#define D COL_DEFAULT
#define I COL_INHERIT
#define B A_BOLD
#define U A_UNDERLINE
#define R A_REVERSE
#define DIM A_DIM

static const struct style default_256[] = {
    {ROLE_NORMAL, D, D, 0},
    {ROLE_STATUS_BAR, 252, 236, 0},
    {ROLE_STATUS_KEY, 16, 110, B},
    {ROLE_STATUS_IDLE, 114, 236, B},
    {ROLE_STATUS_BUSY, 221, 236, B},
    {ROLE_MESSAGE, 180, I, 0},
    {ROLE_CHAT_USER, 153, I, 0},
    {ROLE_CHAT_USER_LABEL, 75, I, B},
    {ROLE_CHAT_ASSISTANT, 253, I, 0},
    {ROLE_CHAT_ASSISTANT_LABEL, 150, I, B},
    {ROLE_CHAT_SYSTEM, 180, I, 0},
    {ROLE_CHAT_NOTICE, 245, I, 0},
    {ROLE_CHAT_ERROR, 203, I, B},
    {ROLE_CHAT_META, 242, I, 0},
    {ROLE_CHAT_CURSOR, 150, I, B},
    {ROLE_PANEL_BORDER, 240, I, 0},
    {ROLE_PANEL_TITLE, 117, I, B},
    {ROLE_PANEL_LABEL, 246, I, 0},
    {ROLE_PANEL_VALUE, 255, I, 0},
    {ROLE_PANEL_DIM, 242, I, 0},
    {ROLE_CACHE_SINK, 214, I, 0},
    {ROLE_CACHE_RECENT, 114, I, 0},
    {ROLE_CACHE_USER, 75, I, 0},
    {ROLE_CACHE_FREE, 239, I, 0},
    {ROLE_CACHE_EVICTED, 131, I, 0},
    {ROLE_GAUGE_FILL, 214, I, 0},
    {ROLE_GAUGE_EMPTY, 238, I, 0},
    {ROLE_SPARK, 117, I, 0},
    {ROLE_PLOT_AXIS, 240, I, 0},
    {ROLE_PLOT_BEFORE, 239, I, 0},
    {ROLE_PLOT_HIGH, 203, I, 0},
    {ROLE_PLOT_MID, 221, I, 0},
    {ROLE_PLOT_LOW, 117, I, 0},
    {ROLE_WARNING, 214, I, B},
    {ROLE_SELECTION, 16, 110, 0},
    {ROLE_SEARCH_HIT, 16, 221, 0},
    {ROLE_INPUT, 255, I, 0},
    {ROLE_INPUT_PROMPT, 117, I, B},
    {ROLE_INPUT_PLACEHOLDER, 242, I, 0},
};

static const struct style default_16[] = {
    {ROLE_NORMAL, D, D, 0},
    {ROLE_STATUS_BAR, 15, 4, 0},
    {ROLE_STATUS_KEY, 0, 6, 0},
    {ROLE_STATUS_IDLE, 10, 4, B},
    {ROLE_STATUS_BUSY, 11, 4, B},
    {ROLE_MESSAGE, 3, I, 0},
    {ROLE_CHAT_USER, 14, I, 0},
    {ROLE_CHAT_USER_LABEL, 12, I, B},
    {ROLE_CHAT_ASSISTANT, D, I, 0},
    {ROLE_CHAT_ASSISTANT_LABEL, 10, I, B},
    {ROLE_CHAT_SYSTEM, 3, I, 0},
    {ROLE_CHAT_NOTICE, 8, I, 0},
    {ROLE_CHAT_ERROR, 9, I, B},
    {ROLE_CHAT_META, 8, I, 0},
    {ROLE_CHAT_CURSOR, 10, I, B},
    {ROLE_PANEL_BORDER, 8, I, 0},
    {ROLE_PANEL_TITLE, 14, I, B},
    {ROLE_PANEL_LABEL, 7, I, 0},
    {ROLE_PANEL_VALUE, 15, I, 0},
    {ROLE_PANEL_DIM, 8, I, 0},
    {ROLE_CACHE_SINK, 11, I, 0},
    {ROLE_CACHE_RECENT, 2, I, 0},
    {ROLE_CACHE_USER, 12, I, 0},
    {ROLE_CACHE_FREE, 8, I, 0},
    {ROLE_CACHE_EVICTED, 1, I, 0},
    {ROLE_GAUGE_FILL, 11, I, 0},
    {ROLE_GAUGE_EMPTY, 8, I, 0},
    {ROLE_SPARK, 14, I, 0},
    {ROLE_PLOT_AXIS, 8, I, 0},
    {ROLE_PLOT_BEFORE, 8, I, 0},
    {ROLE_PLOT_HIGH, 9, I, 0},
    {ROLE_PLOT_MID, 11, I, 0},
    {ROLE_PLOT_LOW, 14, I, 0},
    {ROLE_WARNING, 11, I, B},
    {ROLE_SELECTION, 0, 6, 0},
    {ROLE_SEARCH_HIT, 0, 3, 0},
    {ROLE_INPUT, 15, I, 0},
    {ROLE_INPUT_PROMPT, 14, I, B},
    {ROLE_INPUT_PLACEHOLDER, 8, I, 0},
};

static const struct style default_8[] = {
    {ROLE_NORMAL, D, D, 0},
    {ROLE_STATUS_BAR, 7, 4, 0},
    {ROLE_STATUS_KEY, 0, 6, 0},
    {ROLE_STATUS_IDLE, 2, 4, B},
    {ROLE_STATUS_BUSY, 3, 4, B},
    {ROLE_MESSAGE, 3, I, 0},
    {ROLE_CHAT_USER, 6, I, 0},
    {ROLE_CHAT_USER_LABEL, 6, I, B},
    {ROLE_CHAT_ASSISTANT, D, I, 0},
    {ROLE_CHAT_ASSISTANT_LABEL, 2, I, B},
    {ROLE_CHAT_SYSTEM, 3, I, 0},
    {ROLE_CHAT_NOTICE, 4, I, B},
    {ROLE_CHAT_ERROR, 1, I, B},
    {ROLE_CHAT_META, 4, I, B},
    {ROLE_CHAT_CURSOR, 2, I, B},
    {ROLE_PANEL_BORDER, 4, I, 0},
    {ROLE_PANEL_TITLE, 6, I, B},
    {ROLE_PANEL_LABEL, 7, I, 0},
    {ROLE_PANEL_VALUE, 7, I, B},
    {ROLE_PANEL_DIM, 4, I, B},
    {ROLE_CACHE_SINK, 3, I, B},
    {ROLE_CACHE_RECENT, 2, I, 0},
    {ROLE_CACHE_USER, 6, I, 0},
    {ROLE_CACHE_FREE, 4, I, 0},
    {ROLE_CACHE_EVICTED, 1, I, 0},
    {ROLE_GAUGE_FILL, 3, I, B},
    {ROLE_GAUGE_EMPTY, 4, I, 0},
    {ROLE_SPARK, 6, I, B},
    {ROLE_PLOT_AXIS, 4, I, 0},
    {ROLE_PLOT_BEFORE, 4, I, 0},
    {ROLE_PLOT_HIGH, 1, I, B},
    {ROLE_PLOT_MID, 3, I, B},
    {ROLE_PLOT_LOW, 6, I, B},
    {ROLE_WARNING, 3, I, B},
    {ROLE_SELECTION, 0, 6, 0},
    {ROLE_SEARCH_HIT, 0, 3, 0},
    {ROLE_INPUT, 7, I, B},
    {ROLE_INPUT_PROMPT, 6, I, B},
    {ROLE_INPUT_PLACEHOLDER, 4, I, B},
};

/* Monochrome: attributes only; the glyphs differ by shape as well. */
static const struct style mono_table[] = {
    {ROLE_NORMAL, D, D, 0},
    {ROLE_STATUS_BAR, D, D, R},
    {ROLE_STATUS_KEY, D, D, 0},
    {ROLE_STATUS_IDLE, D, D, R | B},
    {ROLE_STATUS_BUSY, D, D, R | B},
    {ROLE_MESSAGE, D, D, B},
    {ROLE_CHAT_USER, D, D, B},
    {ROLE_CHAT_USER_LABEL, D, D, B | U},
    {ROLE_CHAT_ASSISTANT, D, D, 0},
    {ROLE_CHAT_ASSISTANT_LABEL, D, D, U},
    {ROLE_CHAT_SYSTEM, D, D, U},
    {ROLE_CHAT_NOTICE, D, D, DIM},
    {ROLE_CHAT_ERROR, D, D, B | U},
    {ROLE_CHAT_META, D, D, DIM},
    {ROLE_CHAT_CURSOR, D, D, B},
    {ROLE_PANEL_BORDER, D, D, 0},
    {ROLE_PANEL_TITLE, D, D, B},
    {ROLE_PANEL_LABEL, D, D, 0},
    {ROLE_PANEL_VALUE, D, D, B},
    {ROLE_PANEL_DIM, D, D, DIM},
    {ROLE_CACHE_SINK, D, D, B},
    {ROLE_CACHE_RECENT, D, D, 0},
    {ROLE_CACHE_USER, D, D, 0},
    {ROLE_CACHE_FREE, D, D, DIM},
    {ROLE_CACHE_EVICTED, D, D, DIM},
    {ROLE_GAUGE_FILL, D, D, 0},
    {ROLE_GAUGE_EMPTY, D, D, DIM},
    {ROLE_SPARK, D, D, 0},
    {ROLE_PLOT_AXIS, D, D, DIM},
    {ROLE_PLOT_BEFORE, D, D, DIM},
    {ROLE_PLOT_HIGH, D, D, 0},
    {ROLE_PLOT_MID, D, D, 0},
    {ROLE_PLOT_LOW, D, D, B},
    {ROLE_WARNING, D, D, B | U},
    {ROLE_SELECTION, D, D, R},
    {ROLE_SEARCH_HIT, D, D, R | U},
    {ROLE_INPUT, D, D, 0},
    {ROLE_INPUT_PROMPT, D, D, B},
    {ROLE_INPUT_PLACEHOLDER, D, D, DIM},
};

#undef D
#undef I
#undef B
#undef U
#undef R
#undef DIM

#define N_ROWS(t) (sizeof(t) / sizeof((t)[0]))
static_assert(N_ROWS(default_256) == ROLE_COUNT, "default_256 must cover every role");
static_assert(N_ROWS(default_16) == ROLE_COUNT, "default_16 must cover every role");
static_assert(N_ROWS(default_8) == ROLE_COUNT, "default_8 must cover every role");
static_assert(N_ROWS(mono_table) == ROLE_COUNT, "mono_table must cover every role");

static const struct style *const default_tables[N_DEPTH] = {default_8, default_16, default_256};

/* ---- state ------------------------------------------------------------- */

static struct {
    bool started;
    bool colors;      /* colour pairs usable */
    bool forced_mono; /* NO_COLOR / --no-color / no colour support */
    bool default_colors; /* use_default_colors() worked: -1 is allowed */
    enum depth depth;
    bool mono;        /* the theme in force has no colours */
    char name[64];
    struct style active[ROLE_COUNT];
} T;

static void theme_selfcheck(void)
{
    for (int r = 0; r < ROLE_COUNT; r++) {
        assert(default_256[r].role == r && default_16[r].role == r && default_8[r].role == r &&
               mono_table[r].role == r);
    }
}

/* ---- the .theme file format --------------------------------------------
 *   # comment
 *   name = Human-readable name          (optional)
 *   role = FG BG [ATTR...]              (before any section: every depth)
 *   [256] / [16] / [8]                  (then: only for that many colours)
 * FG/BG: a number 0-255, a name (black red green yellow blue magenta cyan
 * white, bright<name>, gray), #rrggbb (256 only), "default" (the
 * terminal's colour) or "-" (the theme's "normal" colour).
 * ATTR: bold dim italic underline reverse blink standout. */

enum section { SECT_ALL, SECT_8, SECT_16, SECT_256, N_SECT };

struct theme_file {
    bool has[N_SECT];
    bool set[N_SECT][ROLE_COUNT];
    struct style st[N_SECT][ROLE_COUNT];
};

static const char *const colour_names[16] = {"black", "red", "green", "yellow",
                                             "blue", "magenta", "cyan", "white"};

static int hex_to_256(const char *s)
{
    unsigned r, g, b;
    if (strlen(s) != 7 || sscanf(s + 1, "%2x%2x%2x", &r, &g, &b) != 3) return -100;
    /* nearest of the 6x6x6 cube and the grey ramp */
    static const int steps[6] = {0, 95, 135, 175, 215, 255};
    int idx[3], comp[3] = {(int)r, (int)g, (int)b}, cube_err = 0;
    for (int i = 0; i < 3; i++) {
        int best = 0;
        for (int k = 1; k < 6; k++)
            if (abs(steps[k] - comp[i]) < abs(steps[best] - comp[i])) best = k;
        idx[i] = best;
        cube_err += (steps[best] - comp[i]) * (steps[best] - comp[i]);
    }
    int grey = ((int)r + (int)g + (int)b) / 3, gi = (grey - 8 + 5) / 10;
    if (gi < 0) gi = 0;
    if (gi > 23) gi = 23;
    int gv = 8 + 10 * gi, grey_err = 0;
    for (int i = 0; i < 3; i++) grey_err += (gv - comp[i]) * (gv - comp[i]);
    if (grey_err < cube_err) return 232 + gi;
    return 16 + 36 * idx[0] + 6 * idx[1] + idx[2];
}

/* A colour word, or -100 if it is not one. */
static int parse_colour(const char *w, enum section sect)
{
    if (strcmp(w, "default") == 0) return COL_DEFAULT;
    if (strcmp(w, "-") == 0 || strcmp(w, "normal") == 0) return COL_INHERIT;
    if (w[0] == '#') return sect == SECT_256 ? hex_to_256(w) : -100;
    if (isdigit((unsigned char)w[0])) {
        char *end;
        long v = strtol(w, &end, 10);
        int max = sect == SECT_8 ? 7 : sect == SECT_16 ? 15 : 255;
        if (*end || v < 0 || v > max) return -100;
        return (int)v;
    }
    if (strcmp(w, "gray") == 0 || strcmp(w, "grey") == 0) return sect == SECT_8 ? -100 : 8;
    bool bright = strncmp(w, "bright", 6) == 0;
    const char *base = bright ? w + 6 : w;
    for (int i = 0; i < 8; i++)
        if (strcmp(base, colour_names[i]) == 0) {
            if (bright && sect == SECT_8) return -100;
            return bright ? i + 8 : i;
        }
    return -100;
}

static bool parse_attr(const char *w, attr_t *a)
{
    static const struct {
        const char *name;
        attr_t bit;
    } names[] = {{"bold", A_BOLD},           {"dim", A_DIM},       {"italic", A_ITALIC},
                 {"underline", A_UNDERLINE}, {"reverse", A_REVERSE}, {"blink", A_BLINK},
                 {"standout", A_STANDOUT},   {"none", 0},          {"plain", 0}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(w, names[i].name) == 0) {
            *a |= names[i].bit;
            return true;
        }
    return false;
}

static int role_from_name(const char *name)
{
    for (int r = 0; r < ROLE_COUNT; r++)
        if (strcmp(role_names[r], name) == 0) return r;
    return -1;
}

/* Record the first problem of a file (later ones are counted only). */
static void warn(char *msg, size_t msglen, int *n_warn, const char *file, int line,
                 const char *what, const char *word)
{
    if ((*n_warn)++ == 0 && msg && msglen)
        snprintf(msg, msglen, "%s:%d: %s '%s' (line skipped)", file, line, what, word);
}

static char *next_word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return NULL;
    char *w = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    if (*s) *s++ = '\0';
    *p = s;
    return w;
}

/* '#' starts a comment at the start of a line or after a blank, unless it
 * is a #rrggbb colour. */
static void strip_comment(char *line)
{
    for (char *p = line; (p = strchr(p, '#')); p++) {
        if (p != line && p[-1] != ' ' && p[-1] != '\t') continue;
        bool hex = true;
        for (int i = 1; i <= 6; i++)
            if (!isxdigit((unsigned char)p[i])) hex = false;
        if (hex && (p[7] == '\0' || isspace((unsigned char)p[7]))) continue;
        *p = '\0';
        return;
    }
}

static void parse_line(struct theme_file *tf, enum section *sect, char *line, const char *file,
                       int lineno, char *msg, size_t msglen, int *n_warn)
{
    strip_comment(line);
    size_t n = strlen(line);
    while (n && isspace((unsigned char)line[n - 1])) line[--n] = '\0';
    while (*line == ' ' || *line == '\t') line++;
    if (!*line) return;
    if (line[0] == '[') {
        if (strcmp(line, "[256]") == 0) *sect = SECT_256;
        else if (strcmp(line, "[16]") == 0) *sect = SECT_16;
        else if (strcmp(line, "[8]") == 0) *sect = SECT_8;
        else {
            warn(msg, msglen, n_warn, file, lineno, "unknown section", line);
            return;
        }
        tf->has[*sect] = true;
        return;
    }
    char *eq = strchr(line, '=');
    if (!eq) {
        warn(msg, msglen, n_warn, file, lineno, "expected 'role = fg bg [attrs]', got", line);
        return;
    }
    *eq = '\0';
    char *key = line, *rest = eq + 1;
    n = strlen(key);
    while (n && isspace((unsigned char)key[n - 1])) key[--n] = '\0';
    if (strcmp(key, "name") == 0) return;
    int role = role_from_name(key);
    if (role < 0) {
        warn(msg, msglen, n_warn, file, lineno, "unknown role", key);
        return;
    }
    char *fg_w = next_word(&rest), *bg_w = next_word(&rest);
    if (!fg_w || !bg_w) {
        warn(msg, msglen, n_warn, file, lineno, "needs a foreground and a background:", key);
        return;
    }
    int fg = parse_colour(fg_w, *sect), bg = parse_colour(bg_w, *sect);
    if (fg == -100 || bg == -100) {
        warn(msg, msglen, n_warn, file, lineno, "not a colour for this section:",
             fg == -100 ? fg_w : bg_w);
        return;
    }
    attr_t attrs = 0;
    for (char *w; (w = next_word(&rest));)
        if (!parse_attr(w, &attrs)) {
            warn(msg, msglen, n_warn, file, lineno, "unknown attribute", w);
            return;
        }
    tf->st[*sect][role] = (struct style){role, (short)fg, (short)bg, attrs};
    tf->set[*sect][role] = true;
}

/* Parse a whole file's text (modified in place). */
static void theme_parse(struct theme_file *tf, char *text, const char *file, char *msg,
                        size_t msglen, int *n_warn)
{
    memset(tf, 0, sizeof *tf);
    tf->has[SECT_ALL] = true;
    enum section sect = SECT_ALL;
    int lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        parse_line(tf, &sect, line, file, lineno, msg, msglen, n_warn);
        line = nl ? nl + 1 : NULL;
    }
}

/* ---- finding theme files ----------------------------------------------- */

static bool valid_name(const char *name)
{
    if (!*name || strlen(name) > 48 || name[0] == '.') return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return false;
    return true;
}

/* The directories to search, most important first; returns how many. */
static int theme_dirs(char dirs[][1024], int max)
{
    int n = 0;
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg && n < max) snprintf(dirs[n++], 1024, "%s/ancora/themes", xdg);
    else if (home && *home && n < max) snprintf(dirs[n++], 1024, "%s/.config/ancora/themes", home);
    const char *env = getenv("ANC_THEMES_DIR");
    if (env && *env && n < max) snprintf(dirs[n++], 1024, "%s", env);
    const char *src = getenv("ANC_SRCDIR");
    if (src && *src && n < max) snprintf(dirs[n++], 1024, "%s/themes", src);
    if (n < max) snprintf(dirs[n++], 1024, "%s/themes", ANC_DATADIR);
    if (n < max) snprintf(dirs[n++], 1024, "themes");
    /* beside the program, for a run from the build tree */
    char exe[1024];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0 && n < max) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(dirs[n++], 1024, "%.1000s/themes", exe);
        }
    }
    return n;
}

#define THEME_FILE_MAX (64 * 1024)

/* Read NAME.theme from the first directory that has it; malloc'ed text. */
static char *theme_read(const char *name, char *path, size_t pathlen)
{
    char dirs[8][1024];
    int n = theme_dirs(dirs, 8);
    for (int i = 0; i < n; i++) {
        int n_path = snprintf(path, pathlen, "%s/%s.theme", dirs[i], name);
        if (n_path < 0 || (size_t)n_path >= pathlen) continue;
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char *buf = malloc(THEME_FILE_MAX + 1);
        size_t len = buf ? fread(buf, 1, THEME_FILE_MAX, f) : 0;
        fclose(f);
        if (!buf) return NULL;
        buf[len] = '\0';
        return buf;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **theme_names(void)
{
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    if (!v) return NULL;
    v[n++] = strdup("default");
    v[n++] = strdup("mono");
    char dirs[8][1024];
    int nd = theme_dirs(dirs, 8);
    for (int i = 0; i < nd; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            size_t len = strlen(e->d_name);
            if (len <= 6 || strcmp(e->d_name + len - 6, ".theme") != 0) continue;
            char *name = strndup(e->d_name, len - 6);
            if (!name || !valid_name(name)) {
                free(name);
                continue;
            }
            if (n + 2 > cap) {
                char **nv = realloc(v, (cap *= 2) * sizeof *v);
                if (!nv) {
                    free(name);
                    break;
                }
                v = nv;
            }
            v[n++] = name;
        }
        closedir(d);
    }
    qsort(v, n, sizeof *v, cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i]) continue;
        if (out && strcmp(v[out - 1], v[i]) == 0) free(v[i]);
        else v[out++] = v[i];
    }
    v[out] = NULL;
    return v;
}

void theme_names_free(char **names)
{
    if (!names) return;
    for (char **p = names; *p; p++) free(*p);
    free(names);
}

/* ---- applying ---------------------------------------------------------- */

static short resolve(short c, short normal, bool is_fg)
{
    if (c == COL_INHERIT) c = normal;
    if (c == COL_DEFAULT && !T.default_colors) c = is_fg ? COLOR_WHITE : COLOR_BLACK;
    if (c >= COLORS) c = (short)(c % 8);
    return c;
}

static void install_pairs(void)
{
    if (!T.colors || T.mono) return;
    short nfg = T.active[ROLE_NORMAL].fg, nbg = T.active[ROLE_NORMAL].bg;
    nfg = resolve(nfg == COL_INHERIT ? COL_DEFAULT : nfg, COL_DEFAULT, true);
    nbg = resolve(nbg == COL_INHERIT ? COL_DEFAULT : nbg, COL_DEFAULT, false);
    for (int r = 0; r < ROLE_COUNT; r++)
        init_pair((short)(r + 1), resolve(T.active[r].fg, nfg, true),
                  resolve(T.active[r].bg, nbg, false));
}

void theme_init(bool no_color)
{
    theme_selfcheck();
    T.started = true;
    T.forced_mono = no_color || !has_colors();
    if (!T.forced_mono && start_color() == OK) {
        T.default_colors = use_default_colors() == OK;
        T.depth = COLORS >= 256 ? DEPTH_256 : COLORS >= 16 ? DEPTH_16 : DEPTH_8;
        T.colors = COLORS >= 8 && COLOR_PAIRS > ROLE_COUNT;
    }
    if (!T.colors) T.forced_mono = true;
    memcpy(T.active, mono_table, sizeof T.active);
    T.mono = true;
    snprintf(T.name, sizeof T.name, "mono");
}

static enum section section_for(const struct theme_file *tf, enum depth d)
{
    if (d == DEPTH_256 && tf->has[SECT_256]) return SECT_256;
    if (d >= DEPTH_16 && tf->has[SECT_16]) return SECT_16;
    if (tf->has[SECT_8]) return SECT_8;
    return SECT_ALL;
}

/* Does the file give any role a colour (else it is a monochrome theme)? */
static bool file_has_colour(const struct theme_file *tf)
{
    for (int s = 0; s < N_SECT; s++)
        for (int r = 0; r < ROLE_COUNT; r++)
            if (tf->set[s][r] && (tf->st[s][r].fg >= 0 || tf->st[s][r].bg >= 0)) return true;
    return false;
}

bool theme_apply(const char *name, char *msg, size_t msglen)
{
    if (msg && msglen) msg[0] = '\0';
    if (!name || !*name) name = "default";
    if (!valid_name(name)) {
        if (msg) snprintf(msg, msglen, "'%s' is not a theme name (letters, digits, - _ .)", name);
        return false;
    }
    char path[1200];
    char *text = theme_read(name, path, sizeof path);
    bool builtin = strcmp(name, "default") == 0 || strcmp(name, "mono") == 0;
    if (!text && !builtin) {
        if (msg) {
            char **names = theme_names();
            size_t off = (size_t)snprintf(msg, msglen, "no theme '%s'; available:", name);
            for (char **p = names; p && *p && off < msglen; p++)
                off += (size_t)snprintf(msg + off, msglen - off, " %s", *p);
            theme_names_free(names);
        }
        return false;
    }
    struct theme_file *tf = calloc(1, sizeof *tf);
    if (!tf) {
        free(text);
        if (msg) snprintf(msg, msglen, "out of memory loading theme '%s'", name);
        return false;
    }
    int n_warn = 0;
    if (text) theme_parse(tf, text, path, msg, msglen, &n_warn);
    free(text);

    bool mono = T.forced_mono || strcmp(name, "mono") == 0 || (text && !file_has_colour(tf));
    struct style base[ROLE_COUNT];
    memcpy(base, mono ? mono_table : default_tables[T.depth], sizeof base);
    for (int r = 0; r < ROLE_COUNT; r++)
        if (tf->set[SECT_ALL][r]) base[r] = tf->st[SECT_ALL][r];
    if (!mono) {
        enum section s = section_for(tf, T.depth);
        for (int r = 0; r < ROLE_COUNT; r++)
            if (tf->set[s][r]) base[r] = tf->st[s][r];
    } else if (T.forced_mono && strcmp(name, "mono") != 0) {
        /* colours are off: every theme is the mono one, attributes included */
        memcpy(base, mono_table, sizeof base);
    }
    free(tf);
    memcpy(T.active, base, sizeof base);
    T.mono = mono;
    snprintf(T.name, sizeof T.name, "%s", name);
    install_pairs();
    if (n_warn > 1 && msg) {
        size_t l = strlen(msg);
        snprintf(msg + l, msglen - l, " and %d more", n_warn - 1);
    }
    return true;
}

const char *theme_current(void) { return T.name; }
bool theme_colour_off(void) { return T.forced_mono; }
bool theme_is_mono(void) { return T.mono; }

short theme_pair(enum theme_role r)
{
    if (T.mono || !T.colors || (unsigned)r >= ROLE_COUNT) return 0;
    return (short)(r + 1);
}

attr_t theme_attrs_only(enum theme_role r)
{
    return (unsigned)r < ROLE_COUNT ? T.active[r].attrs : 0;
}

attr_t theme_attr(enum theme_role r)
{
    return theme_attrs_only(r) | COLOR_PAIR(theme_pair(r));
}
