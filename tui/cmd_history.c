/* cmd_history.c — `ancora history list|show|search|export|delete|path|stats`:
 * the saved conversations from the command line. Front-end code: reaches
 * the store only through history/history.h, never SQLite or the engine. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "history.h"
#include "widgets.h"

enum { OPT_DB = 2000, OPT_JSON, OPT_LIMIT, OPT_FORMAT };

/* Which options a subcommand takes. */
enum { ALLOW_JSON = 1, ALLOW_LIMIT = 2, ALLOW_FORMAT = 4, ALLOW_OUTPUT = 8, ALLOW_YES = 16 };

struct hist_opts {
    const char *db;
    bool json;
    bool yes;
    long limit;
    const char *format;
    const char *output;
    char **args; /* positional arguments */
    int n_args;
};

struct subcmd {
    const char *name;
    int (*fn)(const struct hist_opts *o);
    unsigned allow;
    int min_args, max_args; /* max -1: any */
    const char *usage;      /* after "ancora history NAME" */
    const char *help;
};

static const char db_help[] =
    "  --db PATH      the history database (default: $ANCORA_DB, else\n"
    "                 $XDG_DATA_HOME/ancora/history.db, else ~/.local/share/ancora/history.db)\n"
    "  -h, --help     this help\n";

/* ---- shared pieces ---------------------------------------------------------- */

static char *db_path(const struct hist_opts *o)
{
    char *path = o->db ? strdup(o->db) : hist_default_path();
    if (!path) cli_error("cannot find your home folder: pass --db PATH or set ANCORA_DB");
    return path;
}

/* Open the database. A path with no file yet gives *DB = NULL and success:
 * no command here creates the file (reading ones show an empty history).
 * Returns an exit status. */
static int open_db(const struct hist_opts *o, struct hist_db **db)
{
    *db = NULL;
    char *path = db_path(o);
    if (!path) return EXIT_RUNTIME;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        return EXIT_OK;
    }
    char err[1024];
    *db = hist_open(path, err, sizeof err);
    free(path);
    if (!*db) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int db_error(struct hist_db *db, int status)
{
    const char *msg = hist_errmsg(db);
    cli_error("%s", *msg ? msg : hist_strerror(status));
    return EXIT_RUNTIME;
}

static bool parse_id(const char *s, int64_t *id)
{
    long v;
    if (!cli_parse_long("session id", s, 1, INT64_MAX, &v)) return false;
    *id = v;
    return true;
}

/* Print S made safe for a terminal (no escape sequences, valid UTF-8). */
static void put_clean(const char *s, unsigned flags)
{
    char *c = hist_text_clean(s, flags);
    fputs(c ? c : "?", stdout);
    free(c);
}

static bool use_bold(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(nc && *nc);
}

/* stdout could not be written (a full disk, a closed pipe): say so. */
static int finish_stdout(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        return EXIT_RUNTIME;
    }
    return status;
}

static void time_local(int64_t ms, char *buf, size_t cap) { hist_format_time(ms, false, buf, cap); }

/* ---- list ---------------------------------------------------------------------- */

#define MODEL_COLS 32 /* the model column at its widest */

static int count_width(long long v)
{
    int w = 1;
    while (v >= 10) v /= 10, w++;
    return w;
}

static int do_list(const struct hist_opts *o)
{
    struct hist_db *db;
    int rc = open_db(o, &db);
    if (rc != EXIT_OK) return rc;
    struct hist_session *list = NULL;
    size_t n = 0;
    if (db) {
        int status = hist_session_list(db, (size_t)o->limit, &list, &n);
        if (status != HIST_OK) {
            rc = db_error(db, status);
            hist_close(db);
            return rc;
        }
    }
    if (o->json) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            char created[48], updated[48];
            printf("%s\n  {\"id\": %lld, \"title\": ", i ? "," : "", (long long)list[i].id);
            hist_json_string(stdout, list[i].title);
            fputs(", \"model_name\": ", stdout);
            hist_json_string(stdout, list[i].model_name);
            fputs(", \"model_path\": ", stdout);
            hist_json_string(stdout, list[i].model_path);
            printf(", \"messages\": %lld, \"created\": \"%s\", \"last_activity\": \"%s\"}",
                   (long long)list[i].n_messages,
                   hist_format_time(list[i].created_ms, true, created, sizeof created),
                   hist_format_time(list[i].updated_ms, true, updated, sizeof updated));
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
    } else {
        /* One session per line: id, last activity, messages, model, title
         * (last, as it may hold spaces). Columns aligned for reading; the
         * model name as every other screen shows it (scripts take the
         * fields from --json), cut with an ellipsis past MODEL_COLS. */
        ui_init_glyphs(); /* display widths under the locale */
        int wid = 1, wmsg = 1, wmodel = 1;
        char **models = calloc(n ? n : 1, sizeof *models);
        for (size_t i = 0; models && i < n; i++) {
            const char *m = *list[i].model_name ? list[i].model_name : list[i].model_path;
            models[i] = hist_text_clean(*m ? m : "-", 0);
            if (models[i]) {
                if (ui_width(models[i]) > MODEL_COLS) {
                    const char *ell = ui_unicode() ? "\u2026" : "...";
                    size_t k = ui_fit(models[i], strlen(models[i]), MODEL_COLS - ui_width(ell));
                    while (k > 0 && models[i][k - 1] == ' ') k--;
                    char *cut = malloc(k + strlen(ell) + 1);
                    if (cut) {
                        memcpy(cut, models[i], k);
                        strcpy(cut + k, ell);
                        free(models[i]);
                        models[i] = cut;
                    }
                }
                int w = ui_width(models[i]);
                if (w > wmodel) wmodel = w;
            }
            if (count_width(list[i].id) > wid) wid = count_width(list[i].id);
            if (count_width(list[i].n_messages) > wmsg) wmsg = count_width(list[i].n_messages);
        }
        for (size_t i = 0; i < n; i++) {
            char t[48];
            time_local(list[i].updated_ms, t, sizeof t);
            const char *model = models && models[i] ? models[i] : "?";
            /* padded by display width (printf's %-*s counts bytes) */
            printf("%-*lld  %s  %*lld msg  %s%*s  ", wid, (long long)list[i].id, t, wmsg,
                   (long long)list[i].n_messages, model, wmodel - ui_width(model), "");
            if (*list[i].title) put_clean(list[i].title, 0);
            else fputs("(untitled)", stdout);
            putchar('\n');
        }
        for (size_t i = 0; models && i < n; i++) free(models[i]);
        free(models);
    }
    hist_session_list_free(list, n);
    hist_close(db);
    return finish_stdout(EXIT_OK);
}

/* ---- show ---------------------------------------------------------------------- */

static void show_events(const struct hist_param_event *ev, size_t n, int64_t msg_id)
{
    for (size_t i = 0; i < n; i++) {
        if (ev[i].message_id != msg_id) continue;
        fputs("  * ", stdout);
        put_clean(ev[i].name, 0);
        fputs(": ", stdout);
        put_clean(ev[i].old_value ? ev[i].old_value : "(unset)", 0);
        fputs(" -> ", stdout);
        put_clean(ev[i].new_value ? ev[i].new_value : "(unset)", 0);
        putchar('\n');
    }
}

static int show_text(struct hist_db *db, int64_t id)
{
    struct hist_session s;
    struct hist_message *msgs = NULL;
    struct hist_param_event *ev = NULL;
    size_t n_msgs = 0, n_ev = 0;
    int status = hist_session_get(db, id, &s);
    if (status != HIST_OK) return db_error(db, status);
    status = hist_msg_list(db, id, &msgs, &n_msgs);
    if (status == HIST_OK) status = hist_param_event_list(db, id, &ev, &n_ev);
    if (status != HIST_OK) {
        hist_session_clear(&s);
        hist_msg_list_free(msgs, n_msgs);
        return db_error(db, status);
    }
    bool bold = use_bold();
    char t1[48], t2[48];
    printf("Session %lld: ", (long long)s.id);
    put_clean(*s.title ? s.title : "(untitled)", 0);
    fputs("\nModel:   ", stdout);
    put_clean(*s.model_name ? s.model_name : "-", 0);
    if (*s.model_path) {
        fputs(" (", stdout);
        put_clean(s.model_path, 0);
        fputs(")", stdout);
    }
    time_local(s.created_ms, t1, sizeof t1);
    time_local(s.updated_ms, t2, sizeof t2);
    printf("\nStarted: %s   last activity: %s   %zu messages\nParams:  ", t1, t2, n_msgs);
    put_clean(s.params_json, 0);
    fputs("\n", stdout);
    show_events(ev, n_ev, 0);
    for (size_t i = 0; i < n_msgs; i++) {
        const struct hist_message *m = &msgs[i];
        time_local(m->created_ms, t1, sizeof t1);
        printf("\n%s--- %s #%lld  %s", bold ? "\033[1m" : "", hist_role_name(m->role),
               (long long)m->id, t1);
        if (m->stats.completion_tokens >= 0) {
            printf("  %lld tokens", (long long)m->stats.completion_tokens);
            if (m->stats.gen_ms > 0)
                printf("  %.1f tokens/s", (double)m->stats.completion_tokens * 1000.0 / m->stats.gen_ms);
        }
        if (m->role == HIST_ROLE_ASSISTANT && m->finish != HIST_FINISH_STOP)
            printf("  (%s)", m->finish == HIST_FINISH_NONE ? "streaming" : hist_finish_label(m->finish));
        printf("%s\n", bold ? "\033[0m" : "");
        char fig[512];
        if (m->role == HIST_ROLE_ASSISTANT && hist_reply_info_line(m, fig, sizeof fig))
            printf("[%s]\n", fig); /* printable: hist_reply_info_line cleans it */
        put_clean(m->content, HIST_CLEAN_MULTILINE);
        if (!*m->content || m->content[strlen(m->content) - 1] != '\n') putchar('\n');
        show_events(ev, n_ev, m->id);
    }
    hist_session_clear(&s);
    hist_msg_list_free(msgs, n_msgs);
    hist_param_event_list_free(ev, n_ev);
    return EXIT_OK;
}

static int no_session(const struct hist_opts *o, int64_t id)
{
    char *path = db_path(o);
    cli_error("no session %lld in %s", (long long)id, path ? path : "the history");
    free(path);
    return EXIT_RUNTIME;
}

/* Opens the history and reads session id into s: EXIT_OK (the caller
 * clears s and closes *db), or the exit code once the error is reported,
 * nothing left open. */
static int open_session(const struct hist_opts *o, int64_t id, struct hist_db **db,
                        struct hist_session *s)
{
    int rc = open_db(o, db);
    if (rc != EXIT_OK) return rc;
    if (!*db) return no_session(o, id);
    int status = hist_session_get(*db, id, s);
    if (status != HIST_OK) {
        rc = db_error(*db, status);
        hist_close(*db);
        *db = NULL;
        return rc;
    }
    return EXIT_OK;
}

static int do_show(const struct hist_opts *o)
{
    int64_t id;
    if (!parse_id(o->args[0], &id)) return EXIT_USAGE;
    struct hist_db *db;
    int rc = open_db(o, &db);
    if (rc != EXIT_OK) return rc;
    if (!db) return no_session(o, id);
    if (o->json) {
        int status = hist_export(db, id, HIST_FORMAT_JSON, stdout);
        rc = status == HIST_OK || status == HIST_ERR_IO ? EXIT_OK : db_error(db, status);
    } else {
        rc = show_text(db, id);
    }
    hist_close(db);
    return finish_stdout(rc);
}

/* ---- search -------------------------------------------------------------------- */

static int do_search(const struct hist_opts *o)
{
    /* The words may come as one argument or several. */
    size_t len = 1;
    for (int i = 0; i < o->n_args; i++) len += strlen(o->args[i]) + 1;
    char *query = calloc(len, 1);
    if (!query) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    size_t at = 0;
    for (int i = 0; i < o->n_args; i++) {
        size_t k = strlen(o->args[i]);
        if (i) query[at++] = ' ';
        memcpy(query + at, o->args[i], k); /* LEN counted every piece */
        at += k;
    }
    char *check = hist_text_clean(query, 0);
    bool empty = !check || !*check;
    free(check);
    if (empty) {
        free(query);
        cli_error("nothing to search for (see ancora history search --help)");
        return EXIT_USAGE;
    }
    struct hist_db *db;
    int rc = open_db(o, &db);
    if (rc != EXIT_OK) {
        free(query);
        return rc;
    }
    struct hist_hit *hits = NULL;
    size_t n = 0;
    bool bold = !o->json && use_bold();
    if (db) {
        int status = hist_search(db, query, bold ? "\033[1m" : "[[", bold ? "\033[0m" : "]]",
                                 (size_t)o->limit, &hits, &n);
        if (status != HIST_OK) {
            rc = db_error(db, status);
            free(query);
            hist_close(db);
            return rc;
        }
    }
    free(query);
    if (o->json) fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        char t[48];
        if (o->json) {
            printf("%s\n  {\"session_id\": %lld, \"message_id\": %lld, \"role\": \"%s\", "
                   "\"created\": \"%s\", \"session_title\": ",
                   i ? "," : "", (long long)hits[i].session_id, (long long)hits[i].message_id,
                   hist_role_name(hits[i].role),
                   hist_format_time(hits[i].created_ms, true, t, sizeof t));
            hist_json_string(stdout, hits[i].session_title);
            fputs(", \"snippet\": ", stdout);
            hist_json_string(stdout, hits[i].snippet);
            fputs("}", stdout);
        } else {
            time_local(hits[i].created_ms, t, sizeof t);
            /* SESSION:MESSAGE role time snippet (already one clean line) */
            printf("%lld:%lld  %-9s  %s  %s\n", (long long)hits[i].session_id,
                   (long long)hits[i].message_id, hist_role_name(hits[i].role), t, hits[i].snippet);
        }
    }
    if (o->json) fputs(n ? "\n]\n" : "]\n", stdout);
    hist_hits_free(hits, n);
    hist_close(db);
    return finish_stdout(EXIT_OK);
}

/* ---- export -------------------------------------------------------------------- */

static int do_export(const struct hist_opts *o)
{
    int64_t id;
    if (!parse_id(o->args[0], &id)) return EXIT_USAGE;
    enum hist_format fmt;
    const char *f = o->format ? o->format : "md";
    if (strcmp(f, "md") == 0 || strcmp(f, "markdown") == 0) {
        fmt = HIST_FORMAT_MARKDOWN;
    } else if (strcmp(f, "json") == 0) {
        fmt = HIST_FORMAT_JSON;
    } else {
        cli_error("invalid value for --format: '%s' (choose md or json)", f);
        return EXIT_USAGE;
    }
    /* Check the session first, so a bad id creates no output file. */
    struct hist_db *db;
    struct hist_session s;
    int rc = open_session(o, id, &db, &s);
    if (rc != EXIT_OK) return rc;
    hist_session_clear(&s);
    FILE *out = stdout;
    if (o->output && strcmp(o->output, "-") != 0) {
        /* Conversations are private: a new export file is 0600 like the database. */
        int fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(out = fdopen(fd, "w"))) {
            cli_error("cannot write %s: %s", o->output, strerror(errno));
            if (fd >= 0) close(fd);
            hist_close(db);
            return EXIT_RUNTIME;
        }
    }
    int status = hist_export(db, id, fmt, out);
    if (status == HIST_ERR_IO) {
        cli_error("cannot write %s: %s", out == stdout ? "the output" : o->output, strerror(errno));
        rc = EXIT_RUNTIME;
    } else if (status != HIST_OK) {
        rc = db_error(db, status);
    }
    if (out != stdout && fclose(out) != 0 && rc == EXIT_OK) {
        cli_error("cannot write %s: %s", o->output, strerror(errno));
        rc = EXIT_RUNTIME;
    }
    hist_close(db);
    return out == stdout ? finish_stdout(rc) : rc;
}

/* ---- delete -------------------------------------------------------------------- */

static int do_delete(const struct hist_opts *o)
{
    int64_t id;
    if (!parse_id(o->args[0], &id)) return EXIT_USAGE;
    if (!o->yes && !isatty(STDIN_FILENO)) {
        cli_error("not deleting session %lld without confirmation: stdin is not a terminal "
                  "(add --yes)",
                  (long long)id);
        return EXIT_USAGE;
    }
    struct hist_db *db;
    struct hist_session s;
    int rc = open_session(o, id, &db, &s);
    if (rc != EXIT_OK) return rc;
    if (!o->yes) {
        char *title = hist_text_clean(*s.title ? s.title : "untitled", 0);
        fprintf(stderr, "Delete session %lld (%s, %lld messages)? [y/N] ", (long long)id,
                title ? title : "?", (long long)s.n_messages);
        free(title);
        fflush(stderr);
        char *line = NULL;
        size_t cap = 0;
        ssize_t got = getline(&line, &cap, stdin);
        bool ok = got > 0 && (strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0 ||
                              strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0);
        free(line);
        if (!ok) {
            fprintf(stderr, "Not deleted.\n");
            hist_session_clear(&s);
            hist_close(db);
            return EXIT_RUNTIME;
        }
    }
    hist_session_clear(&s);
    int status = hist_session_delete(db, id);
    rc = status == HIST_OK ? EXIT_OK : db_error(db, status);
    if (rc == EXIT_OK) fprintf(stderr, "Deleted session %lld.\n", (long long)id);
    hist_close(db);
    return rc;
}

/* ---- path, stats ----------------------------------------------------------------- */

static int do_path(const struct hist_opts *o)
{
    char *path = db_path(o);
    if (!path) return EXIT_RUNTIME;
    puts(path);
    free(path);
    return finish_stdout(EXIT_OK);
}

static void human_size(int64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%lld bytes", (long long)bytes);
    else snprintf(buf, cap, "%.1f %s", v, units[u]);
}

static int do_stats(const struct hist_opts *o)
{
    struct hist_db *db;
    int rc = open_db(o, &db);
    if (rc != EXIT_OK) return rc;
    struct hist_stats st = {0};
    if (db) {
        int status = hist_get_stats(db, &st);
        if (status != HIST_OK) {
            rc = db_error(db, status);
            hist_close(db);
            return rc;
        }
    }
    char *path = db_path(o);
    if (o->json) {
        fputs("{\"path\": ", stdout);
        hist_json_string(stdout, path ? path : "");
        printf(", \"exists\": %s, \"schema_version\": %d, \"sessions\": %lld, \"messages\": %lld, "
               "\"prompt_tokens\": %lld, \"completion_tokens\": %lld, \"file_bytes\": %lld}\n",
               db ? "true" : "false", st.schema_version, (long long)st.sessions,
               (long long)st.messages, (long long)st.prompt_tokens,
               (long long)st.completion_tokens, (long long)st.file_bytes);
    } else {
        char size[64];
        human_size(st.file_bytes, size, sizeof size);
        fputs("Database:  ", stdout);
        put_clean(path ? path : "?", 0);
        if (db) printf(" (schema version %d)\n", st.schema_version);
        else fputs(" (not created yet)\n", stdout);
        printf("Sessions:  %lld\nMessages:  %lld\nTokens:    %lld generated, %lld prompt\n"
               "Size:      %s\n",
               (long long)st.sessions, (long long)st.messages, (long long)st.completion_tokens,
               (long long)st.prompt_tokens, size);
    }
    free(path);
    hist_close(db);
    return finish_stdout(EXIT_OK);
}

/* ---- dispatch ------------------------------------------------------------------------ */

static const struct subcmd subcmds[] = {
    {"list", do_list, ALLOW_JSON | ALLOW_LIMIT, 0, 0, "[--json] [--limit N]",
     "List saved sessions, most recent activity first: id, last activity,\n"
     "message count, model and title, one session per line.\n"
     "  --json         a JSON array instead\n"
     "  --limit N      at most N sessions (default: all)\n"},
    {"show", do_show, ALLOW_JSON, 1, 1, "ID [--json]",
     "Print a session: its messages with times, token counts and finish\n"
     "reasons, each reply's engine figures (cache policy, window, sinks, RoPE,\n"
     "template, speeds, cache occupancy, attention on sinks) and the parameter\n"
     "changes where they happened.\n"
     "  --json         the session as JSON (the same as export --format json)\n"},
    {"search", do_search, ALLOW_JSON | ALLOW_LIMIT, 1, -1, "TEXT... [--limit N] [--json]",
     "Find messages containing every word of TEXT (substrings, ASCII case-\n"
     "insensitive; Chinese works). One line per match, newest first:\n"
     "SESSION:MESSAGE, role, time and a snippet with the matches in bold (on a\n"
     "terminal, unless NO_COLOR is set) or between [[ and ]].\n"
     "  --limit N      at most N matches (default 50; 0 = all)\n"
     "  --json         a JSON array instead\n"},
    {"export", do_export, ALLOW_FORMAT | ALLOW_OUTPUT, 1, 1, "ID [--format md|json] [-o FILE]",
     "Write a session as Markdown (default) or JSON.\n"
     "  --format F     md or json\n"
     "  -o, --output FILE  write to FILE (created 0600) instead of stdout\n"},
    {"delete", do_delete, ALLOW_YES, 1, 1, "ID [--yes]",
     "Delete a session with its messages. Asks first on a terminal; when stdin\n"
     "is not a terminal, --yes is required.\n"
     "  -y, --yes      do not ask\n"},
    {"path", do_path, 0, 0, 0, "", "Print the path of the history database (creates nothing).\n"},
    {"stats", do_stats, ALLOW_JSON, 0, 0, "[--json]",
     "Print the number of sessions, messages and tokens, and the size on disk.\n"
     "  --json         as a JSON object\n"},
};
#define N_SUBCMDS (sizeof subcmds / sizeof subcmds[0])

static void usage_all(FILE *out)
{
    fputs("Usage: ancora history COMMAND [options]\n\n"
          "Saved conversations (SQLite). Commands:\n",
          out);
    for (size_t i = 0; i < N_SUBCMDS; i++)
        fprintf(out, "  %s%s%s\n", subcmds[i].name, *subcmds[i].usage ? " " : "", subcmds[i].usage);
    fputs("  replay ID [-m MODEL] [cache, rope options] [--json]\n"
          "         score the saved replies again under other settings\n",
          out);
    fputs("\nOptions of every command:\n", out);
    fputs(db_help, out);
    fputs("\nRun 'ancora history COMMAND --help' for details.\n", out);
}

static void usage_one(const struct subcmd *c, FILE *out)
{
    fprintf(out, "Usage: ancora history %s%s%s [--db PATH]\n\n%s", c->name, *c->usage ? " " : "",
            c->usage, c->help);
    fputs(db_help, out);
}

static const struct option longopts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"json", no_argument, NULL, OPT_JSON},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output", required_argument, NULL, 'o'},
    {"yes", no_argument, NULL, 'y'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool option_allowed(const struct subcmd *c, int opt)
{
    switch (opt) {
    case OPT_JSON: return c->allow & ALLOW_JSON;
    case OPT_LIMIT: return c->allow & ALLOW_LIMIT;
    case OPT_FORMAT: return c->allow & ALLOW_FORMAT;
    case 'o': return c->allow & ALLOW_OUTPUT;
    case 'y': return c->allow & ALLOW_YES;
    default: return true;
    }
}

int cmd_history(int argc, char **argv)
{
    struct hist_opts o = {0};
    int i = 1;
    /* Options before the command: --db PATH and --help. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_all(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            o.db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            o.db = argv[i] + 5;
        } else {
            cli_error("unknown option '%s' for history (see ancora history --help)", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        cli_error("missing history command (list, show, search, export, delete, replay, path or stats)");
        usage_all(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "replay") == 0) /* the engine's options: its own parser */
        return cmd_history_replay(argc - i, argv + i, o.db);
    const struct subcmd *c = NULL;
    for (size_t k = 0; k < N_SUBCMDS; k++)
        if (strcmp(argv[i], subcmds[k].name) == 0) c = &subcmds[k];
    if (!c) {
        cli_error("unknown history command '%s' (see ancora history --help)", argv[i]);
        return EXIT_USAGE;
    }
    o.limit = strcmp(c->name, "search") == 0 ? 50 : 0;
    int sargc = argc - i;
    char **sargv = argv + i;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(sargc, sargv, ":ho:y", longopts, NULL)) != -1) {
        if (opt == '?' || opt == ':') {
            const char *bad = sargv[optind - 1];
            if (opt == '?')
                cli_error("unknown option '%s' for history %s (see ancora history %s --help)",
                          bad, c->name, c->name);
            else
                cli_error("option '%s' needs a value", bad);
            return EXIT_USAGE;
        }
        if (!option_allowed(c, opt)) {
            cli_error("option '%s' does not apply to history %s (see ancora history %s --help)",
                      sargv[optind - 1], c->name, c->name);
            return EXIT_USAGE;
        }
        switch (opt) {
        case 'h': usage_one(c, stdout); return EXIT_OK;
        case OPT_DB: o.db = optarg; break;
        case OPT_JSON: o.json = true; break;
        case OPT_LIMIT:
            if (!cli_parse_long("--limit", optarg, 0, 1L << 40, &o.limit)) return EXIT_USAGE;
            break;
        case OPT_FORMAT: o.format = optarg; break;
        case 'o': o.output = optarg; break;
        case 'y': o.yes = true; break;
        }
    }
    o.args = sargv + optind;
    o.n_args = sargc - optind;
    if (o.n_args < c->min_args || (c->max_args >= 0 && o.n_args > c->max_args)) {
        if (o.n_args < c->min_args)
            cli_error("history %s needs %s (see ancora history %s --help)", c->name,
                      strcmp(c->name, "search") == 0 ? "the text to search for" : "a session ID",
                      c->name);
        else
            cli_error("too many arguments for history %s: '%s'", c->name, o.args[c->max_args]);
        return EXIT_USAGE;
    }
    if (o.db && !*o.db) {
        cli_error("--db needs a path");
        return EXIT_USAGE;
    }
    return c->fn(&o);
}
