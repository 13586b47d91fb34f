/* cmd_replay.c — `ancora history replay ID`: a saved conversation fed back
 * through its model (or another with the same vocabulary) under the cache
 * and RoPE settings of the command line, each saved reply scored teacher-
 * forced. Front-end code: the engine through ancora.h (the sequence comes
 * from anc_chat_turn_tokens, as in the chat; the scoring is
 * anc_perplexity_stream, as in `ppl --mode stream`), the store through
 * history.h. No curses, no SQLite. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "history.h"
#include "replay.h"

static void replay_usage(FILE *out)
{
    fputs("Usage: ancora history replay ID [-m MODEL] [cache, rope options] [--json] [--db PATH]\n"
          "\n"
          "Feed saved session ID back through its model and score every saved\n"
          "assistant reply teacher-forced: the conversation's tokens are those the\n"
          "chat fed (its template, each reply's own tokens), run token by token\n"
          "through the cache policy as `ancora ppl --mode stream` does. One line per\n"
          "reply (reply, message id, tokens, mean negative log-likelihood,\n"
          "perplexity), then \"PPL = x\" over the tokens of every reply.\n"
          "\n"
          "  -m, --model FILE      another model with the same vocabulary (default: the\n"
          "                        file the session was made with)\n"
          "      --json            one JSON object instead\n"
          "      --ids-out FILE    write the replayed token ids (for ppl --ids)\n"
          "      --db PATH         the history database\n"
          "  -t, --threads N       CPU threads (default: physical cores)\n"
          "      --backend B       auto (default), cpu or cuda\n"
          "  -q, --quiet           no progress line\n"
          "  -h, --help            this help\n"
          "\n"
          "Without cache options the defaults of ppl --mode stream apply (policy sink).\n\n",
          out);
    fputs(cli_context_help, out);
    fputs(cli_lora_help, out);
}

/* Does the loaded model's vocabulary match the one the session stored? */
static bool vocab_ok(const struct anc_model *m, const struct hist_session *s, const char *path)
{
    char fp[64];
    int v = replay_vocab_check(m, s->vocab_hash, fp, sizeof fp);
    if (v == 0)
        fprintf(stderr, "ancora: session %lld stored no vocabulary fingerprint (saved before "
                        "schema 3): not checked\n", (long long)s->id);
    else if (v < 0)
        cli_error("the vocabulary of %s differs from session %lld's (%s, not %s)", path,
                  (long long)s->id, fp, s->vocab_hash);
    return v >= 0;
}

static void print_text(const struct replay_span *sp, size_t n, double sum, int64_t total)
{
    printf("%5s %8s %7s %9s %11s\n", "reply", "message", "tokens", "mean_nll", "ppl");
    for (size_t i = 0; i < n; i++) {
        if (sp[i].n_scored > 0)
            printf("%5zu %8lld %7lld %9.4f %11.4f\n", i + 1, (long long)sp[i].msg_id,
                   (long long)sp[i].n_scored, sp[i].nll_sum / (double)sp[i].n_scored,
                   replay_ppl(sp[i].nll_sum, sp[i].n_scored));
        else
            printf("%5zu %8lld %7d %9s %11s\n", i + 1, (long long)sp[i].msg_id, 0, "-", "-");
    }
    printf("PPL = %.4f\n", replay_ppl(sum, total));
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.6f", v);
    else fputs("null", stdout);
}

/* The settings in force under P, as the engine resolves them (defaults
 * from the model file filled in): a session made only to read them. */
static bool effective_settings(struct anc_model *m, const struct anc_session_params *p,
                               struct anc_stats *st)
{
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, p, err, sizeof err);
    if (!s) return false;
    anc_session_stats(s, st, NULL, 0);
    anc_session_free(s);
    return true;
}

static void print_json(const struct hist_session *s, const char *model, const struct anc_stats *st,
                       const struct replay_span *sp, size_t n, size_t n_seq, double sum,
                       int64_t total)
{
    printf("{\"session\": %lld, \"model\": ", (long long)s->id);
    hist_json_string(stdout, model);
    printf(", \"settings\": {\"cache\": \"%s\", \"window\": %d, \"sinks\": %d, "
           "\"capacity\": %d, \"rope_theta\": %g, \"rope_scaling\": \"%s\", "
           "\"rope_factor\": %g}",
           anc_cache_policy_name(st->policy), st->window, st->n_sink, st->capacity,
           st->rope_theta, anc_rope_scaling_name(st->rope_scaling), st->rope_factor);
    printf(", \"sequence_tokens\": %zu, \"replies\": [", n_seq);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n  {\"index\": %zu, \"message_id\": %lld, \"prompt_tokens\": %zu, "
               "\"first\": %zu, \"tokens\": %lld, \"mean_nll\": ",
               i ? "," : "", i + 1, (long long)sp[i].msg_id, sp[i].n_turn, sp[i].first,
               (long long)sp[i].n_scored);
        json_num(sp[i].n_scored ? sp[i].nll_sum / (double)sp[i].n_scored : NAN);
        fputs(", \"ppl\": ", stdout);
        json_num(replay_ppl(sp[i].nll_sum, sp[i].n_scored));
        putchar('}');
    }
    printf("%s], \"tokens\": %lld, \"mean_nll\": ", n ? "\n" : "", (long long)total);
    json_num(total ? sum / (double)total : NAN);
    fputs(", \"ppl\": ", stdout);
    json_num(replay_ppl(sum, total));
    fputs("}\n", stdout);
}

static bool write_ids(const char *path, const int32_t *ids, size_t n)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        cli_error("cannot write %s: %s", path, strerror(errno));
        return false;
    }
    for (size_t i = 0; i < n; i++) fprintf(fp, i ? " %d" : "%d", ids[i]);
    fputc('\n', fp);
    if (fclose(fp) != 0) {
        cli_error("error writing %s", path);
        return false;
    }
    return true;
}

enum { OPT_R_DB = 4000, OPT_R_JSON, OPT_R_IDS_OUT };

struct replay_args {
    struct cli_opts o;
    const char *db, *ids_out;
    bool json, quiet;
    int64_t id;
};

/* Returns EXIT_OK, EXIT_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, struct replay_args *a)
{
    static const struct option own[] = {
        {"db", required_argument, NULL, OPT_R_DB},
        {"json", no_argument, NULL, OPT_R_JSON},
        {"ids-out", required_argument, NULL, OPT_R_IDS_OUT},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    struct option *longopts = cli_merge_longopts(own);
    if (!longopts) return EXIT_RUNTIME;
    int c, rc = EXIT_OK;
    opterr = 0;
    optind = 1;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":m:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_R_DB: a->db = optarg; break;
        case OPT_R_JSON: a->json = true; break;
        case OPT_R_IDS_OUT: a->ids_out = optarg; break;
        case 'q': a->quiet = true; break;
        case 'h':
        case OPT_HELP: replay_usage(stdout); free(longopts); return -1;
        case ':':
        case '?': rc = cli_option_error(c, argv, "history replay"); break;
        default:
            if (cli_common_option(c, optarg, &a->o) != 1) rc = EXIT_USAGE;
            break;
        }
    }
    free(longopts);
    if (rc != EXIT_OK) return rc;
    if (optind >= argc) {
        cli_error("history replay needs a session ID (see ancora history replay --help)");
        return EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        cli_error("too many arguments for history replay: '%s'", argv[optind + 1]);
        return EXIT_USAGE;
    }
    long v;
    if (!cli_parse_long("session id", argv[optind], 1, INT64_MAX, &v)) return EXIT_USAGE;
    a->id = v;
    if (!cli_check_context(&a->o)) return EXIT_USAGE;
    return EXIT_OK;
}

/* The session and its messages; exit status. */
static int load_session(const struct replay_args *a, struct hist_session *s,
                        struct hist_message **ms, size_t *nm)
{
    char *path = a->db ? strdup(a->db) : hist_default_path();
    if (!path) {
        cli_error("cannot find your home folder: pass --db PATH or set ANCORA_DB");
        return EXIT_RUNTIME;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error("no session %lld in %s", (long long)a->id, path);
        free(path);
        return EXIT_RUNTIME;
    }
    char err[1024];
    struct hist_db *db = hist_open(path, err, sizeof err);
    if (!db) {
        cli_error("%s", err);
        free(path);
        return EXIT_RUNTIME;
    }
    int status = hist_session_get(db, a->id, s);
    if (status == HIST_OK) status = hist_msg_list(db, a->id, ms, nm);
    if (status != HIST_OK) cli_error("%s", *hist_errmsg(db) ? hist_errmsg(db) : hist_strerror(status));
    hist_close(db);
    free(path);
    return status == HIST_OK ? EXIT_OK : EXIT_RUNTIME;
}

static bool on_progress(void *ctx, int64_t done, int64_t total)
{
    if (!*(bool *)ctx) return true;
    fprintf(stderr, "\rreplaying %lld/%lld tokens   ", (long long)done, (long long)total);
    if (done == total) fputc('\n', stderr);
    return true;
}

/* Score the sequence and add each reply's NLL; exit status. */
static int score(struct anc_model *m, struct replay_args *a, struct replay_seq *sq, double *sum,
                 int64_t *total)
{
    char err[ANC_ERR_LEN];
    bool show = !a->quiet && isatty(2);
    if (replay_score(m, &a->o.sess, sq, on_progress, &show, sum, total, err, sizeof err) != 0) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_history_replay(int argc, char **argv, const char *db)
{
    struct replay_args a = {.db = db};
    cli_opts_default(&a.o);
    int rc = parse_args(argc, argv, &a);
    if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
    struct hist_session s = {0};
    struct hist_message *ms = NULL;
    size_t nm = 0, n_replies = 0;
    struct anc_model *m = NULL;
    struct replay_seq sq = {0};
    if ((rc = load_session(&a, &s, &ms, &nm)) != EXIT_OK) goto out;
    for (size_t i = 0; i < nm; i++) n_replies += ms[i].role == HIST_ROLE_ASSISTANT;
    rc = EXIT_RUNTIME;
    if (!n_replies) {
        cli_error("session %lld has no replies to score", (long long)s.id);
        goto out;
    }
    const char *path = a.o.model ? a.o.model : s.model_path;
    struct stat st;
    if (!*path) {
        cli_error("session %lld names no model file: pass -m MODEL", (long long)s.id);
        goto out;
    }
    if (!a.o.model && (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)) {
        cli_error("session %lld was answered by a remote server (%s); replaying it needs the model "
                  "as a local file: pass -m MODEL", (long long)s.id, path);
        goto out;
    }
    if (stat(path, &st) != 0) {
        cli_error("model file %s %s: %s", path, a.o.model ? "cannot be read" : "of the session is gone",
                  a.o.model ? strerror(errno) : "pass -m MODEL with the same vocabulary");
        goto out;
    }
    char err[ANC_ERR_LEN];
    if (!(m = cli_model_load(&a.o, path, err, sizeof err))) {
        cli_error("%s", err);
        goto out;
    }
    if (!vocab_ok(m, &s, path)) goto out;
    int tpl = replay_template(m, ms, nm);
    if (replay_build(m, tpl, ms, nm, &sq, err, sizeof err) != 0) {
        cli_error("cannot rebuild session %lld's tokens: %s", (long long)s.id, err);
        goto out;
    }
    if (a.ids_out && !write_ids(a.ids_out, sq.ids, sq.n)) goto out;
    fprintf(stderr, "ancora: session %lld: %zu replies, %zu tokens, template %s, cache %s\n",
            (long long)s.id, sq.n_spans, sq.n, anc_template_name(tpl), anc_cache_policy_name(a.o.sess.cache));
    double sum;
    int64_t total;
    if ((rc = score(m, &a, &sq, &sum, &total)) != EXIT_OK) goto out;
    rc = EXIT_RUNTIME;
    if (total == 0) {
        cli_error("session %lld's replies hold no tokens to score", (long long)s.id);
        goto out;
    }
    struct anc_stats eff;
    if (!effective_settings(m, &a.o.sess, &eff)) memset(&eff, 0, sizeof eff);
    fprintf(stderr, "ancora: replayed under cache %s, window %d, sinks %d, RoPE %s base %g x%g\n",
            anc_cache_policy_name(eff.policy), eff.window, eff.n_sink,
            anc_rope_scaling_name(eff.rope_scaling), eff.rope_theta, eff.rope_factor);
    if (a.json) print_json(&s, path, &eff, sq.spans, sq.n_spans, sq.n, sum, total);
    else print_text(sq.spans, sq.n_spans, sum, total);
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
out:
    replay_seq_free(&sq);
    cli_model_free(&a.o, m);
    hist_msg_list_free(ms, nm);
    hist_session_clear(&s);
    return rc;
}
