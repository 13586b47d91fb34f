/* input.c — readline in callback mode inside curses (see input.h).
 * Readline never touches the terminal here: its prep/deprep and redisplay
 * hooks do nothing, its output goes to /dev/null, and it reads keys from a
 * queue this file fills from curses. The line is drawn by input_draw.
 * Readline is global state, so there is one input per program. */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define INPUT_QUEUE 4096
#define HISTORY_MAX 1000

struct input {
    struct chat *chat;        /* borrowed: for completion */
    unsigned char queue[INPUT_QUEUE];
    size_t q_head, q_len;
    char *line;               /* finished line (readline's malloc) */
    bool line_ready, eof;
    bool pasting;
    char hist_path[PATH_MAX];
    bool hist_ok;
    char msg[512];            /* completion list for the message line */
    char **comp;              /* chat_complete's answer (owned) */
    size_t comp_i;
    FILE *devnull;
};

static struct input *g_in; /* readline's callbacks carry no context */

/* ---- the key queue ------------------------------------------------------- */

static void push_bytes(struct input *in, const char *b, size_t n)
{
    for (size_t i = 0; i < n && in->q_len < INPUT_QUEUE; i++)
        in->queue[(in->q_head + in->q_len++) % INPUT_QUEUE] = (unsigned char)b[i];
}

static int pop_byte(struct input *in)
{
    if (!in->q_len) return -1;
    int c = in->queue[in->q_head];
    in->q_head = (in->q_head + 1) % INPUT_QUEUE;
    in->q_len--;
    return c;
}

/* Curses key codes as the escape sequences readline binds. */
static const char *key_sequence(int key)
{
    switch (key) {
    case KEY_LEFT: return "\033[D";
    case KEY_RIGHT: return "\033[C";
    case KEY_UP: return "\033[A";
    case KEY_DOWN: return "\033[B";
    case KEY_HOME: return "\033[H";
    case KEY_END: return "\033[F";
    case KEY_DC: return "\033[3~";
    case KEY_BACKSPACE: return "\177";
    case KEY_ENTER: return "\r";
    default: return NULL;
    }
}

/* Queue a key as bytes; false if readline has no use for it. */
static bool queue_key(struct input *in, bool is_key, wint_t ch)
{
    if (is_key) {
        const char *seq = key_sequence((int)ch);
        if (!seq) {
            /* Ctrl-Left / Ctrl-Right (extended names) move by words */
            const char *name = keyname((int)ch);
            if (name && strcmp(name, "kLFT5") == 0) seq = "\033b";
            else if (name && strcmp(name, "kRIT5") == 0) seq = "\033f";
            else return false;
        }
        push_bytes(in, seq, strlen(seq));
        return true;
    }
    if (in->pasting) {
        /* pasted newlines stay newlines; a pasted Tab is text, not completion */
        if (ch == L'\r' || ch == L'\n') ch = L'\n';
        else if (ch == L'\t') {
            push_bytes(in, "\026\t", 2);
            return true;
        }
    }
    char mb[MB_LEN_MAX];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = wcrtomb(mb, (wchar_t)ch, &st);
    if (n == (size_t)-1) return false;
    push_bytes(in, mb, n);
    return true;
}

/* ---- readline hooks -------------------------------------------------------- */

static int rl_hook_getc(FILE *f)
{
    (void)f;
    struct input *in = g_in;
    /* Readline wants a key we have not queued (a multi-key command): wait
     * for the user's next key rather than hand it an end of file. */
    while (in && !in->q_len) {
        wint_t ch;
        int r = get_wch(&ch);
        if (r == ERR) continue;
        if (r == KEY_CODE_YES && ch == KEY_RESIZE) continue;
        queue_key(in, r == KEY_CODE_YES, ch);
    }
    return in ? pop_byte(in) : EOF;
}

static int rl_hook_available(void) { return g_in && g_in->q_len > 0; }
static void rl_hook_redisplay(void) {}
static void rl_hook_prep(int meta) { (void)meta; }
static void rl_hook_deprep(void) {}

static void rl_hook_line(char *line)
{
    struct input *in = g_in;
    if (!in) {
        free(line);
        return;
    }
    free(in->line);
    in->line = line;
    in->line_ready = true;
    in->eof = line == NULL;
}

/* Alt-Enter and Ctrl-J: a newline in the text rather than "send". */
static int rl_cmd_newline(int count, int key)
{
    (void)key;
    for (int i = 0; i < (count > 0 ? count : 1); i++) rl_insert_text("\n");
    return 0;
}

static char *complete_next(const char *text, int state)
{
    (void)text;
    struct input *in = g_in;
    if (state == 0) in->comp_i = 0;
    if (!in->comp || !in->comp[in->comp_i]) return NULL;
    return strdup(in->comp[in->comp_i++]);
}

static char **rl_hook_complete(const char *text, int start, int end)
{
    (void)end;
    struct input *in = g_in;
    rl_attempted_completion_over = 1;
    if (in->comp) {
        for (char **p = in->comp; *p; p++) free(*p);
        free(in->comp);
        in->comp = NULL;
    }
    char *before = strndup(rl_line_buffer, (size_t)start);
    if (!before) return NULL;
    in->comp = chat_complete(in->chat, before, text);
    bool export_path = strncmp(before, "/export ", 8) == 0 && strchr(before + 8, ' ');
    free(before);
    if (!in->comp && export_path) {
        rl_attempted_completion_over = 0; /* file names for /export md PATH */
        return NULL;
    }
    if (!in->comp) return NULL;
    return rl_completion_matches(text, complete_next);
}

/* Readline would print the candidates on the terminal: show them in the
 * message line instead. */
static void rl_hook_show_matches(char **matches, int num, int max_len)
{
    (void)max_len;
    struct input *in = g_in;
    size_t o = (size_t)snprintf(in->msg, sizeof in->msg, "%d matches:", num);
    for (int i = 1; i <= num && matches[i] && o < sizeof in->msg; i++)
        o += (size_t)snprintf(in->msg + o, sizeof in->msg - o, "  %s", matches[i]);
}

/* ---- history ---------------------------------------------------------------- */

static bool mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST) return false;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST;
}

static void history_open(struct input *in)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[PATH_MAX];
    int n;
    if (state && *state) n = snprintf(dir, sizeof dir, "%s/ancora", state);
    else if (home && *home) n = snprintf(dir, sizeof dir, "%s/.local/state/ancora", home);
    else return;
    if (n < 0 || n >= (int)sizeof dir) return;
    if (!mkdirs(dir)) return;
    if (snprintf(in->hist_path, sizeof in->hist_path, "%s/history", dir) >= (int)sizeof in->hist_path)
        return;
    int fd = open(in->hist_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    /* Entries are written after a "#<time>" line, so an entry of several
       lines reads back as one; a file without them (older, or edited by
       hand) is read a line per entry. */
    char first[2] = "";
    history_multiline_entries = read(fd, first, 2) == 2 && first[0] == '#' && first[1] >= '0' && first[1] <= '9';
    close(fd);
    in->hist_ok = true;
    read_history(in->hist_path);
}

void input_history_add(struct input *in, const char *line)
{
    if (!line || !*line) return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && last->line && strcmp(last->line, line) == 0) return;
    add_history(line);
    if (!in->hist_ok) return;
    append_history(1, in->hist_path);
    static int since_trim;
    if (++since_trim >= 50) {
        history_truncate_file(in->hist_path, HISTORY_MAX);
        since_trim = 0;
    }
}

/* ---- setup -------------------------------------------------------------------- */

struct input *input_new(struct chat *c)
{
    if (g_in) return NULL;
    struct input *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->chat = c;
    g_in = in;
    in->devnull = fopen("/dev/null", "w");
    /* readline must leave signals, the window size and the terminal alone */
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_readline_name = "ancora";
    rl_instream = stdin;
    rl_outstream = in->devnull ? in->devnull : stdout;
    rl_getc_function = rl_hook_getc;
    rl_input_available_hook = rl_hook_available;
    rl_redisplay_function = rl_hook_redisplay;
    rl_prep_term_function = rl_hook_prep;
    rl_deprep_term_function = rl_hook_deprep;
    rl_attempted_completion_function = rl_hook_complete;
    rl_completion_display_matches_hook = rl_hook_show_matches;
    rl_initialize();
    rl_bind_keyseq("\033[H", rl_beg_of_line);
    rl_bind_keyseq("\033[F", rl_end_of_line);
    rl_bind_keyseq("\033[3~", rl_delete);
    rl_bind_keyseq("\033\r", rl_cmd_newline);
    rl_bind_key('\n', rl_cmd_newline);
    using_history();
    stifle_history(HISTORY_MAX);
    history_write_timestamps = 1; /* timestamps delimit multi-line entries */
    history_comment_char = '#';   /* (readline writes them only with one) */
    history_open(in);
    rl_callback_handler_install("", rl_hook_line);
    return in;
}

void input_free(struct input *in)
{
    if (!in) return;
    rl_callback_handler_remove();
    if (in->comp) {
        for (char **p = in->comp; *p; p++) free(*p);
        free(in->comp);
    }
    free(in->line);
    if (in->devnull) fclose(in->devnull);
    rl_outstream = stdout;
    g_in = NULL;
    free(in);
}

/* ---- feeding ------------------------------------------------------------------- */

static bool run_readline(struct input *in)
{
    while (in->q_len && !in->line_ready) rl_callback_read_char();
    if (in->line_ready) in->q_len = 0; /* the rest of a paste does not run into the next line */
    return in->line_ready;
}

bool input_key(struct input *in, bool is_key, wint_t ch)
{
    if (!queue_key(in, is_key, ch)) return false;
    if (!is_key && ch != L'\t') in->msg[0] = '\0';
    return run_readline(in);
}

bool input_alt_key(struct input *in, bool is_key, wint_t ch)
{
    push_bytes(in, "\033", 1);
    if (!queue_key(in, is_key, ch)) {
        in->q_len = 0;
        return false;
    }
    return run_readline(in);
}

void input_paste(struct input *in, bool begin) { in->pasting = begin; }

char *input_take_line(struct input *in, bool *eof)
{
    if (!in->line_ready) {
        *eof = false;
        return NULL;
    }
    char *line = in->line;
    *eof = in->eof;
    in->line = NULL;
    in->line_ready = in->eof = false;
    return line;
}

void input_set_text(struct input *in, const char *text)
{
    (void)in;
    rl_replace_line(text ? text : "", 0);
    rl_point = rl_end;
}

void input_clear(struct input *in)
{
    input_set_text(in, "");
    in->msg[0] = '\0';
}

bool input_empty(const struct input *in)
{
    (void)in;
    return rl_end == 0;
}

const char *input_message(const struct input *in) { return in->msg; }
void input_message_clear(struct input *in) { in->msg[0] = '\0'; }

/* ---- drawing -------------------------------------------------------------------- */

struct text_row {
    size_t off, len;
};

/* Split the buffer into rows of at most w columns (and at newlines); the
 * cursor's row and column. Returns the number of rows; rows may be NULL. */
static int split_rows(const char *buf, size_t len, size_t point, int w, struct text_row *rows,
                      int max_rows, int *cur_row, int *cur_col)
{
    int n = 0, col = 0;
    size_t start = 0;
    *cur_row = 0;
    *cur_col = 0;
    for (size_t i = 0; i <= len;) {
        if (i == point) {
            *cur_row = n;
            *cur_col = col;
        }
        if (i == len) break;
        if (buf[i] == '\n') {
            if (rows && n < max_rows) rows[n] = (struct text_row){start, i - start};
            n++;
            col = 0;
            start = ++i;
            continue;
        }
        wchar_t wc;
        int cw;
        size_t k = ui_decode(buf + i, len - i, &wc, &cw);
        if (col + cw > w && col > 0) {
            if (rows && n < max_rows) rows[n] = (struct text_row){start, i - start};
            n++;
            col = 0;
            start = i;
            if (i == point) {
                *cur_row = n;
                *cur_col = 0;
            }
        }
        col += cw;
        i += k;
    }
    if (rows && n < max_rows) rows[n] = (struct text_row){start, len - start};
    n++;
    if (*cur_col >= w) { /* the cursor after a full last row */
        (*cur_row)++;
        *cur_col = 0;
        if (*cur_row >= n) {
            if (rows && n < max_rows) rows[n] = (struct text_row){len, 0};
            n++;
        }
    }
    return n;
}

static int text_width(int box_w) { return box_w - 2 - 3; } /* borders, prompt, right margin */

int input_rows(const struct input *in, int width)
{
    (void)in;
    int w = text_width(width + 2);
    if (w < 1) return 1;
    int r, c;
    return split_rows(rl_line_buffer, (size_t)rl_end, (size_t)rl_point, w, NULL, 0, &r, &c);
}

void input_draw(const struct input *in, struct rect box, const char *placeholder, bool busy,
                int *cy, int *cx)
{
    (void)in;
    const char *title = busy ? "Message (the model is replying; Ctrl-C stops it)" : "Message";
    struct rect r = ui_box(box, title, ROLE_PANEL_BORDER, ROLE_PANEL_TITLE);
    *cy = r.y;
    *cx = r.x;
    if (r.h <= 0 || r.w <= 3) return;
    bool uni = ui_unicode();
    int w = text_width(box.w);
    if (w < 1) w = 1;
    ui_text(r.y, r.x, 2, ROLE_INPUT_PROMPT, uni ? "\u203a " : "> ");
    if (rl_end == 0) {
        if (placeholder) ui_text(r.y, r.x + 2, r.w - 2, ROLE_INPUT_PLACEHOLDER, placeholder);
        *cx = r.x + 2;
        return;
    }
    int cur_row, cur_col;
    int n = split_rows(rl_line_buffer, (size_t)rl_end, (size_t)rl_point, w, NULL, 0, &cur_row, &cur_col);
    struct text_row *rows = malloc((size_t)n * sizeof *rows);
    if (!rows) return;
    split_rows(rl_line_buffer, (size_t)rl_end, (size_t)rl_point, w, rows, n, &cur_row, &cur_col);
    int first = cur_row - r.h + 1 > 0 ? cur_row - r.h + 1 : 0;
    for (int i = 0; i < r.h && first + i < n; i++) {
        const struct text_row *tr = &rows[first + i];
        if (first + i > 0) ui_text(r.y + i, r.x, 2, ROLE_PANEL_DIM, i == 0 && first > 0 ? (uni ? "\u2191 " : "^ ") : "  ");
        ui_textn(r.y + i, r.x + 2, w, ROLE_INPUT, rl_line_buffer + tr->off, tr->len);
    }
    if (first + r.h < n) ui_text(r.y + r.h - 1, r.x + r.w - 1, 1, ROLE_PANEL_DIM, uni ? "\u2193" : "v");
    *cy = r.y + cur_row - first;
    *cx = r.x + 2 + cur_col;
    free(rows);
}
