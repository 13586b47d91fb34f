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
          "  -t, --threads N       CPU threads (default: all cores)\n"
          "      --backend B       auto (default), cpu or cuda\n"
          "  -q, --quiet           no progress line\n"
          "  -h, --help            this help\n"
          "\n"
          "Without cache options the defaults of ppl --mode stream apply (policy sink).\n\n",
          out);
    fputs(cli_context_help, out);
}

/* One saved reply: where its tokens sit in the replayed sequence. */
struct reply_span {
    int64_t msg_id;
    size_t first, n;
    size_t n_turn;  /* tokens of the turn before it (the chat's prompt_tokens) */
    double nll_sum;
    int64_t n_scored;
};

struct seq {
    int32_t *ids;
    size_t n, cap;
};

static bool seq_add(struct seq *s, const int32_t *t, size_t n)
{
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->n + n) cap *= 2;
        int32_t *p = realloc(s->ids, cap * sizeof *p);
        if (!p) return false;
        s->ids = p;
        s->cap = cap;
    }
    memcpy(s->ids + s->n, t, n * sizeof *t);
    s->n += n;
    return true;
}

/* A reply saved without its tokens (before schema 3, or by ancora run):
 * the template's rendering of it, up to and including the first stop
 * token. conv[j] is the reply. */
static int rendered_reply(const struct anc_model *m, int tpl, const struct anc_chat_msg *conv,
                          size_t j, int32_t **out, size_t *n_out, char *err, size_t errlen)
{
    int32_t *with = NULL, *upto = NULL;
    size_t nw = 0, nu = 0;
    int rc = anc_chat_render(m, tpl, conv, j + 1, false, &with, &nw, err, errlen);
    if (rc == 0) rc = anc_chat_render(m, tpl, conv, j, true, &upto, &nu, err, errlen);
    size_t skip = 0;
    while (rc == 0 && skip < nu && skip < nw && with[skip] == upto[skip]) skip++;
    free(upto);
    if (rc != 0) {
        free(with);
        return -1;
    }
    size_t end = skip;
    while (end < nw && !anc_template_is_stop(m, tpl, with[end])) end++;
    if (end < nw) end++; /* the stop token, which the chat feeds too */
    memmove(with, with + skip, (end - skip) * sizeof *with);
    *out = with;
    *n_out = end - skip;
    return 0;
}

/* The token sequence the chat fed for this conversation, and each reply's
 * span in it. A reply's turn: anc_chat_turn_tokens, exactly as the chat
 * computes it; the reply: its stored tokens. */
static int build_sequence(const struct anc_model *m, int tpl, const struct hist_message *ms,
                          size_t nm, struct seq *sq, struct reply_span **spans, size_t *n_spans,
                          char *err, size_t errlen)
{
    struct anc_chat_msg *conv = calloc(nm + 1, sizeof *conv);
    *spans = calloc(nm + 1, sizeof **spans);
    *n_spans = 0;
    if (!conv || !*spans) {
        free(conv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nm; i++) {
        conv[i].role = hist_role_name(ms[i].role);
        conv[i].content = ms[i].content;
        conv[i].len = strlen(ms[i].content);
    }
    int rc = 0;
    for (size_t j = 0; j < nm && rc == 0; j++) {
        if (ms[j].role != HIST_ROLE_ASSISTANT) continue;
        size_t last_user = j;
        while (last_user > 0 && ms[last_user - 1].role != HIST_ROLE_USER) last_user--;
        size_t before = last_user > 0 ? last_user - 1 : 0; /* messages before that user's */
        int32_t *t = NULL;
        size_t nt = 0;
        rc = anc_chat_turn_tokens(m, tpl, conv, j, sq->n ? before : 0, &t, &nt, err, errlen);
        if (rc == 0 && !seq_add(sq, t, nt)) rc = -1, snprintf(err, errlen, "out of memory");
        free(t);
        if (rc != 0) break;
        struct reply_span *sp = &(*spans)[(*n_spans)++];
        sp->msg_id = ms[j].id;
        sp->n_turn = nt;
        sp->first = sq->n;
        const int32_t *ids = ms[j].info.token_ids;
        size_t n_ids = ms[j].info.n_token_ids;
        int32_t *rendered = NULL;
        if (!ids && !hist_reply_info_known(&ms[j].info)) { /* saved without its tokens */
            rc = rendered_reply(m, tpl, conv, j, &rendered, &n_ids, err, errlen);
            ids = rendered;
        }
        if (rc == 0) {
            for (size_t k = 0; k < n_ids; k++)
                if (ids[k] < 0 || ids[k] >= anc_n_vocab(m)) {
                    snprintf(err, errlen, "message %lld holds token %d, outside this vocabulary",
                             (long long)ms[j].id, ids[k]);
                    rc = -1;
                    break;
                }
        }
        if (rc == 0 && !seq_add(sq, ids, n_ids)) rc = -1, snprintf(err, errlen, "out of memory");
        sp->n = n_ids;
        free(rendered);
    }
    free(conv);
    return rc;
}

/* Does the loaded model's vocabulary match the one the session stored? */
static bool vocab_ok(const struct anc_model *m, const struct hist_session *s, const char *path)
{
    char fp[64];
    anc_vocab_fingerprint(m, fp, sizeof fp);
    if (!*s->vocab_hash) {
        fprintf(stderr, "ancora: session %lld stored no vocabulary fingerprint (saved before "
                        "schema 3): not checked\n", (long long)s->id);
        return true;
    }
    if (strcmp(fp, s->vocab_hash) == 0) return true;
    cli_error("the vocabulary of %s differs from session %lld's (%s, not %s)", path,
              (long long)s->id, fp, s->vocab_hash);
    return false;
}

static double ppl_of(double nll_sum, int64_t n) { return n > 0 ? exp(nll_sum / (double)n) : NAN; }

static void print_text(const struct reply_span *sp, size_t n, double sum, int64_t total)
{
    printf("%5s %8s %7s %9s %11s\n", "reply", "message", "tokens", "mean_nll", "ppl");
    for (size_t i = 0; i < n; i++) {
        if (sp[i].n_scored > 0)
            printf("%5zu %8lld %7lld %9.4f %11.4f\n", i + 1, (long long)sp[i].msg_id,
                   (long long)sp[i].n_scored, sp[i].nll_sum / (double)sp[i].n_scored,
                   ppl_of(sp[i].nll_sum, sp[i].n_scored));
        else
            printf("%5zu %8lld %7d %9s %11s\n", i + 1, (long long)sp[i].msg_id, 0, "-", "-");
    }
    printf("PPL = %.4f\n", ppl_of(sum, total));
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
                       const struct reply_span *sp, size_t n, size_t n_seq, double sum,
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
        json_num(ppl_of(sp[i].nll_sum, sp[i].n_scored));
        putchar('}');
    }
    printf("%s], \"tokens\": %lld, \"mean_nll\": ", n ? "\n" : "", (long long)total);
    json_num(total ? sum / (double)total : NAN);
    fputs(", \"ppl\": ", stdout);
    json_num(ppl_of(sum, total));
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

/* The chat template the replies were made with (else the model's own). */
static int session_template(const struct anc_model *m, const struct hist_message *ms, size_t nm)
{
    for (size_t i = 0; i < nm; i++)
        if (ms[i].role == HIST_ROLE_ASSISTANT && ms[i].info.template_name) {
            int t = anc_template_from_name(ms[i].info.template_name);
            if (t >= 0) return t;
        }
    return anc_template_detect(m);
}

static bool on_progress(void *ctx, int64_t done, int64_t total)
{
    if (!*(bool *)ctx) return true;
    fprintf(stderr, "\rreplaying %lld/%lld tokens   ", (long long)done, (long long)total);
    if (done == total) fputc('\n', stderr);
    return true;
}

/* Score the sequence and add each reply's NLL; exit status. */
static int score(struct anc_model *m, struct replay_args *a, const struct seq *sq,
                 struct reply_span *sp, size_t n_sp, double *sum, int64_t *total)
{
    double *nll = malloc((sq->n + 1) * sizeof *nll);
    if (!nll) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    if (a->o.sess.cache == ANC_CACHE_FULL && a->o.sess.ctx <= 0) a->o.sess.ctx = (int32_t)sq->n;
    char err[ANC_ERR_LEN];
    struct anc_ppl_result res;
    bool show = !a->quiet && isatty(2);
    if (anc_perplexity_stream(m, &a->o.sess, sq->ids, sq->n, nll, &res, on_progress, &show, err,
                              sizeof err) != 0) {
        cli_error("%s", err);
        free(nll);
        return EXIT_RUNTIME;
    }
    *sum = 0;
    *total = 0;
    for (size_t r = 0; r < n_sp; r++)
        for (size_t k = 0; k < sp[r].n; k++) {
            size_t pos = sp[r].first + k;
            if (pos == 0) continue; /* the first token has no context to be scored in */
            sp[r].nll_sum += nll[pos - 1];
            sp[r].n_scored++;
        }
    for (size_t r = 0; r < n_sp; r++) *sum += sp[r].nll_sum, *total += sp[r].n_scored;
    free(nll);
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
    size_t nm = 0, n_sp = 0, n_replies = 0;
    struct anc_model *m = NULL;
    struct seq sq = {0};
    struct reply_span *sp = NULL;
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
    int tpl = session_template(m, ms, nm);
    if (build_sequence(m, tpl, ms, nm, &sq, &sp, &n_sp, err, sizeof err) != 0) {
        cli_error("cannot rebuild session %lld's tokens: %s", (long long)s.id, err);
        goto out;
    }
    if (a.ids_out && !write_ids(a.ids_out, sq.ids, sq.n)) goto out;
    fprintf(stderr, "ancora: session %lld: %zu replies, %zu tokens, template %s, cache %s\n",
            (long long)s.id, n_sp, sq.n, anc_template_name(tpl), anc_cache_policy_name(a.o.sess.cache));
    double sum;
    int64_t total;
    if ((rc = score(m, &a, &sq, sp, n_sp, &sum, &total)) != EXIT_OK) goto out;
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
    if (a.json) print_json(&s, path, &eff, sp, n_sp, sq.n, sum, total);
    else print_text(sp, n_sp, sum, total);
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
out:
    free(sp);
    free(sq.ids);
    anc_model_free(m);
    hist_msg_list_free(ms, nm);
    hist_session_clear(&s);
    return rc;
}
