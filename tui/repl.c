/* repl.c — see repl.h. Ctrl-C stops the reply in progress (never quits);
 * Ctrl-D or /quit leaves. Front-end code: chat.h and readline only. */
#include "repl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli.h"

static volatile sig_atomic_t got_sigint;

static void mkdir_p_one(const char *dir) { mkdir(dir, 0700); }
static struct chat *completion_chat;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
}

void repl_on_piece(void *ctx, const char *piece, size_t len)
{
    (void)ctx;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
}

/* The input history file: $XDG_STATE_HOME/ancora/history. */
static char *history_path(void)
{
    const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *p = NULL;
    if (st && *st) {
        if (asprintf(&p, "%s/ancora/repl_history", st) < 0) p = NULL;
    } else if (home && *home) {
        if (asprintf(&p, "%s/.local/state/ancora/repl_history", home) < 0) p = NULL;
    }
    return p;
}

static char *complete_gen(const char *text, int state)
{
    static char **matches;
    static size_t idx;
    if (state == 0) {
        if (matches) {
            for (size_t i = 0; matches[i]; i++) free(matches[i]);
            free(matches);
        }
        char before[256];
        size_t n = (size_t)rl_point - strlen(text);
        snprintf(before, sizeof before, "%.*s", (int)(n < sizeof before ? n : sizeof before - 1), rl_line_buffer);
        matches = chat_complete(completion_chat, before, text);
        idx = 0;
    }
    if (!matches || !matches[idx]) return NULL;
    return strdup(matches[idx++]);
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;
    if (rl_line_buffer[0] != '/' && start == 0 && text[0] != '/') return NULL;
    return rl_completion_matches(text, complete_gen);
}

/* Wait for the reply, turning Ctrl-C into a cancel. */
static void wait_reply(struct chat *c)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (chat_busy(c)) {
        if (got_sigint) {
            got_sigint = 0;
            if (chat_cancel(c)) fputs(" [cancelled]", stderr);
        }
        nanosleep(&ts, NULL);
    }
}

static size_t n_messages(struct chat *c)
{
    struct chat_view v;
    chat_view_get(c, &v);
    size_t n = v.n_msgs;
    chat_view_release(&v);
    return n;
}

/* What went wrong during the reply (a server that went away, a full
 * cache), one line each on stderr; a reply cut at the max-tokens limit
 * gets a line on NOTES (as the TUI's "max tokens reached"). True when the
 * reply itself failed. */
static bool report_errors(struct chat *c, size_t from, FILE *notes)
{
    struct chat_view v;
    chat_view_get(c, &v);
    bool failed = false, replied = false, error = false;
    for (size_t i = from; i < v.n_msgs; i++) {
        if (v.msgs[i].role == CHAT_ERROR) fprintf(stderr, "ancora: %s\n", v.msgs[i].text), error = true;
        if (v.msgs[i].role != CHAT_ASSISTANT) continue;
        replied = true;
        if (v.msgs[i].finish && strcmp(v.msgs[i].finish, "error") == 0) failed = true;
        if (v.msgs[i].finish && strcmp(v.msgs[i].finish, "length") == 0)
            fprintf(notes, "(max tokens reached: %d; /set max-tokens N allows longer replies)\n",
                    (int)v.max_reply);
    }
    if (error && !replied) failed = true; /* the reply could not start at all */
    chat_view_release(&v);
    return failed;
}

static char *read_line(bool interactive)
{
    if (interactive) return readline("you> ");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';
    return line;
}

int repl_run(struct chat *c, bool interactive)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    char *hist = NULL;
    if (interactive) {
        completion_chat = c;
        rl_attempted_completion_function = complete;
        hist = history_path();
        if (hist) read_history(hist);
        fprintf(stdout, "Ancora: type a message, or /help for commands; Ctrl-C stops a reply, "
                        "Ctrl-D leaves.\n");
        char notice[256];
        if (*chat_backend_notice(c, notice, sizeof notice)) fprintf(stdout, "%s\n", notice);
    }
    FILE *notes = interactive ? stdout : stderr;
    char reply[8192];
    int rc = EXIT_OK;
    for (;;) {
        char *line = read_line(interactive);
        if (!line) break;
        got_sigint = 0;
        if (!*line) {
            free(line);
            continue;
        }
        if (interactive) add_history(line);
        size_t before = n_messages(c);
        int r = chat_submit(c, line, reply, sizeof reply);
        bool message = line[0] != '/';
        free(line);
        if (r & CHAT_QUIT) break;
        if (reply[0]) {
            fprintf(r & CHAT_SESSIONS ? stdout : notes, "%s\n", reply);
            fflush(stdout); /* in order with the notes on stderr, in a pipe too */
        }
        if (message && (r & CHAT_HANDLED)) {
            if (interactive) fputs("ancora> ", stdout);
            wait_reply(c);
            fputc('\n', stdout);
            fflush(stdout);
            /* a piped REPL exits 1 when a reply failed (scripts see it) */
            if (report_errors(c, before, notes) && !interactive) rc = EXIT_RUNTIME;
        }
    }
    if (interactive && hist) {
        char *slash = strrchr(hist, '/');
        if (slash) { /* make the folder if needed */
            *slash = '\0';
            char *cmd = NULL;
            if (asprintf(&cmd, "%s", hist) >= 0) {
                for (char *p = cmd + 1; *p; p++)
                    if (*p == '/') { *p = '\0'; mkdir_p_one(cmd); *p = '/'; }
                mkdir_p_one(cmd);
                free(cmd);
            }
            *slash = '/';
        }
        write_history(hist);
    }
    free(hist);
    if (interactive) fputc('\n', stdout);
    return rc;
}
