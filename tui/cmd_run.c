/* cmd_run.c — `ancora run`: generate text from a prompt. stdout carries
 * exactly the generated text; statistics go to stderr.
 * Engine access via ancora.h only. */
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "history.h"

/* Ctrl-C stops generation cleanly (the text so far is kept and, with
 * --save, stored as cancelled). */
static volatile sig_atomic_t run_interrupted;
static struct anc_conv *run_conv; /* --remote: the stream Ctrl-C closes */
static void on_sigint(int sig)
{
    (void)sig;
    run_interrupted = 1;
    if (run_conv) anc_conv_cancel(run_conv); /* an atomic store: safe here */
}

/* --save: the exchange recorded in the history store as it streams. */
struct run_save {
    struct hist_db *h;
    int64_t sid, mid;
    char *buf;
    size_t len, cap;
    double t_saved;
    bool failed;
};

static void save_fail(struct run_save *sv)
{
    if (!sv->failed) cli_error("history: %s (generation goes on, not saved)", hist_errmsg(sv->h));
    sv->failed = true;
}

static void save_piece(struct run_save *sv, const char *p, size_t n)
{
    if (!sv || !sv->h || sv->failed) return;
    if (sv->len + n + 1 > sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 4096;
        while (cap < sv->len + n + 1) cap *= 2;
        char *nb = realloc(sv->buf, cap);
        if (!nb) return;
        sv->buf = nb;
        sv->cap = cap;
    }
    memcpy(sv->buf + sv->len, p, n);
    sv->len += n;
    sv->buf[sv->len] = '\0';
    if (anc_now() - sv->t_saved >= 1.0) { /* committed at least once a second */
        if (hist_msg_update_text(sv->h, sv->mid, sv->buf) != HIST_OK) save_fail(sv);
        sv->t_saved = anc_now();
    }
}

static void run_usage(FILE *out)
{
    fputs(
        "Usage: ancora run -m MODEL [-p TEXT | -f FILE] [-n N] [options]\n"
        "       ancora run --remote URL [-m SERVER_MODEL] (-p TEXT | -f FILE) [options]\n"
        "\n"
        "Generate text from a prompt (or from BOS alone when no prompt is given).\n"
        "stdout is exactly the generated text; timings go to stderr. With --remote,\n"
        "the prompt is one user message to the server's chat endpoint and stdout is\n"
        "its reply (the server applies the model's chat template).\n"
        "\n"
        "  -m, --model FILE        GGUF model (default: $ANCORA_MODEL)\n"
        "  -p, --prompt TEXT       prompt text\n"
        "  -f, --file FILE         read the prompt from FILE ('-' = stdin)\n"
        "  -n, --max-tokens N      tokens to generate (default 128; -1 = until end of text\n"
        "                          or the context is full)\n"
        "      --no-bos            do not put BOS before the prompt\n"
        "      --logits-out FILE   write the logits after the prompt to FILE (one line)\n"
        "      --prompt-ids LIST   the prompt as token ids (\"1 15043 3186\"), instead of -p/-f\n"
        "      --ids-out FILE      write the prompt's token ids, then the generated ones\n"
        "                          (an end-of-generation token included), a line each\n"
        "      --save              record the exchange in the history database\n"
        "      --session ID        (with --save) add it to a saved session\n"
        "      --title TEXT        (with --save) the session's title\n"
        "      --db PATH           (with --save) the database (default: $ANCORA_DB, XDG)\n"
        "  -t, --threads N         CPU threads (default: physical cores)\n"
        "\n"
        "Sampling:\n"
        "      --temp X            temperature (default 0.8; 0 = greedy)\n"
        "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
        "      --top-p P           nucleus sampling mass (default 0.95; 1 = off)\n"
        "      --min-p P           drop tokens below P x the best one's probability\n"
        "                          (default 0.05; 0 = off)\n"
        "      --repeat-penalty R  penalise recently seen tokens (default 1 = off)\n"
        "      --repeat-last-n N   how far back the penalty looks (default 64)\n"
        "      --seed S            random seed (same seed, same output)\n"
        "\n"
        "      --backend B         auto (default: a GPU when present), cpu or cuda\n"
        "  -v, --verbose           print model details to stderr\n"
        "  -h, --help              this help\n"
        "\n",
        out);
    fputs(cli_context_help, out);
    fputs(cli_lora_help, out);
    fputs(cli_remote_help, out);
}

static int read_prompt(const struct cli_opts *o, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (o->prompt && o->prompt_file) {
        cli_error("give the prompt with -p or -f, not both");
        return EXIT_USAGE;
    }
    if (o->prompt) {
        *len = strlen(o->prompt);
        *text = malloc(*len + 1);
        if (!*text) {
            cli_error("out of memory");
            return EXIT_RUNTIME;
        }
        memcpy(*text, o->prompt, *len + 1);
    } else if (o->prompt_file) {
        char err[ANC_ERR_LEN];
        *text = anc_read_file(o->prompt_file, len, err, sizeof err);
        if (!*text) {
            cli_error("%s", err);
            return EXIT_RUNTIME;
        }
    }
    return EXIT_OK;
}

/* Create (or reuse) the stored session and commit the prompt before any
 * token is generated. */
static int save_begin(struct run_save *sv, const struct anc_model *m, int64_t session_id,
                      const char *title, const char *prompt, size_t prompt_len,
                      const struct anc_session_params *p)
{
    struct anc_model_info mi;
    anc_model_get_info(m, &mi);
    char params[512];
    snprintf(params, sizeof params,
             "{\"cache\": \"%s\", \"window\": %d, \"sinks\": %d, \"temp\": %g, \"top_k\": %d, "
             "\"top_p\": %g, \"min_p\": %g, \"seed\": %llu, \"source\": \"ancora run\"}",
             anc_cache_policy_name(p->cache), p->window, p->n_sink, p->sampling.temp,
             p->sampling.top_k, p->sampling.top_p, p->sampling.min_p,
             (unsigned long long)p->sampling.seed);
    int st;
    if (session_id) {
        sv->sid = session_id;
        st = title ? hist_session_set_title(sv->h, sv->sid, title) : HIST_OK;
    } else {
        /* untitled: the prompt's first line, shortened as the chat does */
        char *auto_title = !title && prompt ? hist_title_from_text(prompt, 48) : NULL;
        st = hist_session_create(sv->h, title ? title : auto_title, mi.path, mi.name, params, &sv->sid);
        free(auto_title);
    }
    if (st == HIST_OK && prompt && prompt_len)
        st = hist_msg_append(sv->h, sv->sid, HIST_ROLE_USER, prompt, NULL);
    if (st == HIST_OK) st = hist_msg_begin(sv->h, sv->sid, &sv->mid);
    if (st != HIST_OK) {
        cli_error("history: %s", hist_errmsg(sv->h));
        return -1;
    }
    sv->t_saved = anc_now();
    return 0;
}

/* The logits after the prompt, one line of %.9g values (for checks
 * against other implementations). */
static int write_logits(const char *path, const struct anc_model *m, const float *logits)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        cli_error("cannot write %s", path);
        return -1;
    }
    for (int32_t i = 0; i < anc_n_vocab(m); i++) fprintf(fp, i ? " %.9g" : "%.9g", logits[i]);
    fputc('\n', fp);
    if (fclose(fp) != 0) {
        cli_error("error writing %s", path);
        return -1;
    }
    return 0;
}

/* ---- --remote: one user message to a server ---- */

struct remote_run {
    struct run_save *sv;
};

static void remote_piece(void *ctx, const char *text, size_t len)
{
    struct remote_run *rr = ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    save_piece(rr->sv, text, len);
}

static enum hist_finish hist_finish_of(enum anc_finish f)
{
    return f == ANC_FINISH_STOP ? HIST_FINISH_STOP : f == ANC_FINISH_LENGTH ? HIST_FINISH_LENGTH
           : f == ANC_FINISH_CANCELLED ? HIST_FINISH_CANCELLED : HIST_FINISH_ERROR;
}

static int run_remote(struct cli_opts *o, const char *text, size_t len, struct run_save *sv,
                      int64_t session_id, const char *title)
{
    char err[ANC_ERR_LEN];
    struct anc_remote_params rp = {o->remote, o->api_key, o->model, o->connect_timeout,
                                   o->timeout, o->sess.sampling};
    struct anc_conv *conv = anc_conv_open_remote(&rp, err, sizeof err);
    if (!conv) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    struct anc_conv_info ci;
    anc_conv_get_info(conv, &ci);
    if (o->verbose) fprintf(stderr, "ancora: %s at %s, model %s\n", ci.engine, ci.model_path, ci.model_name);
    int rc = EXIT_OK;
    if (sv->h) {
        char params[1024], url[300], model[300];
        struct anc_sampling *smp = &o->sess.sampling;
        snprintf(params, sizeof params,
                 "{\"remote\": \"%s\", \"engine\": \"%s\", \"model\": \"%s\", \"temp\": %g, "
                 "\"top_p\": %g, \"seed\": %llu, \"source\": \"ancora run\"}",
                 cli_json_escape(ci.model_path, url, sizeof url), ci.engine,
                 cli_json_escape(ci.model_name, model, sizeof model), smp->temp, smp->top_p,
                 (unsigned long long)smp->seed);
        int st;
        if (session_id) {
            sv->sid = session_id;
            st = title ? hist_session_set_title(sv->h, sv->sid, title) : HIST_OK;
        } else {
            char *auto_title = !title ? hist_title_from_text(text, 48) : NULL;
            st = hist_session_create(sv->h, title ? title : auto_title, ci.model_path, ci.model_name,
                                     params, &sv->sid);
            free(auto_title);
        }
        if (st == HIST_OK) st = hist_msg_append(sv->h, sv->sid, HIST_ROLE_USER, text, NULL);
        if (st == HIST_OK) st = hist_msg_begin(sv->h, sv->sid, &sv->mid);
        if (st != HIST_OK) {
            cli_error("history: %s", hist_errmsg(sv->h));
            anc_conv_free(conv);
            return EXIT_RUNTIME;
        }
        sv->t_saved = anc_now();
    }
    struct anc_chat_msg msg = {"user", text, len};
    struct remote_run rr = {sv->h ? sv : NULL};
    struct anc_reply_events ev = {NULL, NULL, remote_piece, NULL, &rr};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    run_conv = conv;
    sigaction(SIGINT, &sa, NULL);
    struct anc_reply r;
    anc_conv_reply(conv, &msg, 1, o->n_predict > 0 ? (int32_t)o->n_predict : 0, &ev, &r);
    run_conv = NULL;
    if (r.err[0]) cli_error("\n%s", r.err);
    if (r.finish == ANC_FINISH_ERROR) rc = EXIT_RUNTIME;
    if (sv->h && !sv->failed) {
        struct hist_msg_stats hs = {r.n_prompt, r.n_gen, r.prompt_ms, r.gen_ms};
        if (hist_msg_finish(sv->h, sv->mid, sv->buf ? sv->buf : "", hist_finish_of(r.finish), &hs) != HIST_OK)
            save_fail(sv);
        else
            fprintf(stderr, "\nancora: saved as session %lld", (long long)sv->sid);
    }
    if (run_interrupted || r.finish == ANC_FINISH_CANCELLED) {
        cli_error("\ninterrupted");
        rc = EXIT_RUNTIME;
    }
    if (sv->failed && rc == EXIT_OK) rc = EXIT_RUNTIME;
    double tp = r.prompt_ms > 0 ? r.prompt_ms / 1e3 : 0, tg = r.gen_ms > 0 ? r.gen_ms / 1e3 : 0;
    fprintf(stderr, "\nancora: %s: prompt %lld tokens in %.3f s (%.1f tok/s), generated %lld tokens "
            "in %.3f s (%.1f tok/s)\n", ci.engine, (long long)r.n_prompt, tp,
            tp > 0 && r.n_prompt > 0 ? r.n_prompt / tp : 0.0, (long long)r.n_gen, tg,
            tg > 0 && r.n_gen > 0 ? r.n_gen / tg : 0.0);
    free(r.ids);
    anc_conv_free(conv);
    return rc;
}

/* Generate up to n_predict tokens, writing each piece to stdout as it comes. */
static int generate(struct anc_model *m, struct anc_session *s, long n_predict, int32_t prev,
                    long *n_out, double *secs, struct run_save *sv, enum hist_finish *finish,
                    FILE *ids)
{
    *finish = HIST_FINISH_LENGTH;
    char err[ANC_ERR_LEN];
    char small[256];
    double t0 = anc_now();
    long n = 0;
    while (n_predict < 0 || n < n_predict) {
        if (run_interrupted) {
            *finish = HIST_FINISH_CANCELLED;
            break;
        }
        int32_t tok = anc_session_sample(s);
        if (ids) fprintf(ids, "%s%d", n ? " " : "", tok);
        if (anc_token_is_eog(m, tok)) {
            *finish = HIST_FINISH_STOP;
            break;
        }
        size_t need = anc_token_piece(m, prev, tok, small, sizeof small);
        if (need < sizeof small) {
            fwrite(small, 1, need, stdout);
            save_piece(sv, small, need);
        } else {
            char *big = malloc(need + 1);
            if (big) {
                anc_token_piece(m, prev, tok, big, need + 1);
                fwrite(big, 1, need, stdout);
                save_piece(sv, big, need);
                free(big);
            }
        }
        fflush(stdout);
        n++;
        prev = tok;
        if (anc_session_feed(s, &tok, 1, err, sizeof err) != 0) {
            if (n_predict < 0) break; /* "until the context is full" */
            cli_error("%s", err);
            *n_out = n;
            *secs = anc_now() - t0;
            *finish = HIST_FINISH_ERROR;
            return EXIT_RUNTIME;
        }
    }
    *n_out = n;
    *secs = anc_now() - t0;
    return EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
    static const struct option own[] = {
        {"prompt", required_argument, NULL, 'p'},
        {"file", required_argument, NULL, 'f'},
        {"max-tokens", required_argument, NULL, 'n'},
        {"no-bos", no_argument, NULL, OPT_NO_BOS},
        {"logits-out", required_argument, NULL, OPT_LOGITS_OUT},
        {"ids-out", required_argument, NULL, OPT_IDS_OUT},
        {"prompt-ids", required_argument, NULL, OPT_PROMPT_IDS},
        {"save", no_argument, NULL, OPT_SAVE},
        {"session", required_argument, NULL, OPT_SESSION_ID},
        {"title", required_argument, NULL, OPT_TITLE},
        {"db", required_argument, NULL, OPT_DB_PATH},
        CLI_REMOTE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    const char *logits_out = NULL, *title = NULL, *db_path = NULL, *ids_out = NULL;
    const char *prompt_ids = NULL;
    bool save = false;
    long session_id = 0;
    struct cli_opts o;
    cli_opts_default(&o);
    struct option *longopts = cli_merge_longopts(own);
    if (!longopts) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    int c, rc = EXIT_OK;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:t:p:f:n:vh", longopts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'p': o.prompt = optarg; break;
        case 'f': o.prompt_file = optarg; break;
        case 'n':
            if (cli_parse_long("--max-tokens", optarg, -1, 1L << 30, &v))
                o.n_predict = v;
            else
                rc = EXIT_USAGE;
            break;
        case OPT_NO_BOS: o.no_bos = true; break;
        case OPT_LOGITS_OUT: logits_out = optarg; break;
        case OPT_IDS_OUT: ids_out = optarg; break;
        case OPT_PROMPT_IDS: prompt_ids = optarg; break;
        case OPT_SAVE: save = true; break;
        case OPT_TITLE: title = optarg; break;
        case OPT_DB_PATH: db_path = optarg; break;
        case OPT_SESSION_ID:
            if (!cli_parse_long("--session", optarg, 1, 1L << 62, &session_id)) rc = EXIT_USAGE;
            break;
        case 'v': o.verbose = true; break;
        case 'h':
        case OPT_HELP:
            run_usage(stdout);
            free(longopts);
            return EXIT_OK;
        case ':':
        case '?':
            rc = cli_option_error(c, argv, "run");
            break;
        default: {
            int r = cli_remote_option(c, optarg, &o);
            if (r == 0) r = cli_common_option(c, optarg, &o);
            if (r != 1) rc = EXIT_USAGE;
            break;
        }
        }
        if (rc != EXIT_OK) break;
    }
    free(longopts);
    if (rc == EXIT_OK && optind < argc) {
        cli_error("unexpected argument '%s' (put the prompt after -p)", argv[optind]);
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK) return rc;
    if (!cli_check_context(&o)) return EXIT_USAGE;
    cli_remote_resolve(&o);
    if (o.remote) {
        const char *bad = prompt_ids ? "--prompt-ids" : logits_out ? "--logits-out" : ids_out ? "--ids-out"
                          : o.no_bos ? "--no-bos" : o.lora_path ? "--lora" : NULL;
        if (bad) {
            cli_error("%s does not go with --remote (the server has the tokens)", bad);
            return EXIT_USAGE;
        }
        if (!o.prompt && !o.prompt_file) {
            cli_error("--remote needs a prompt: -p TEXT or -f FILE");
            return EXIT_USAGE;
        }
    }
    const char *path = o.remote ? "" : cli_model_path(&o);
    if (!path) return EXIT_USAGE;
    char *text;
    size_t len;
    if (prompt_ids && (o.prompt || o.prompt_file || save)) {
        cli_error("--prompt-ids goes without -p, -f and --save");
        return EXIT_USAGE;
    }
    if ((rc = read_prompt(&o, &text, &len)) != EXIT_OK) return rc;

    char err[ANC_ERR_LEN];
    if (!save && (session_id || title || db_path)) {
        cli_error("--session, --title and --db go with --save");
        free(text);
        return EXIT_USAGE;
    }
    /* the store is opened first: a bad database fails before the model loads */
    struct run_save sv = {0};
    if (save) {
        char *dbp = db_path ? strdup(db_path) : hist_default_path();
        sv.h = dbp ? hist_open(dbp, err, sizeof err) : NULL;
        if (!sv.h) {
            cli_error("%s", dbp ? err : "no home folder for the history database; pass --db");
            free(dbp);
            free(text);
            return EXIT_RUNTIME;
        }
        free(dbp);
        if (session_id) {
            struct hist_session hs;
            int st = hist_session_get(sv.h, session_id, &hs);
            if (st != HIST_OK) {
                cli_error("session %ld: %s", session_id, hist_strerror(st));
                hist_close(sv.h);
                free(text);
                return EXIT_RUNTIME;
            }
            hist_session_clear(&hs);
        }
    }
    if (o.remote) {
        rc = run_remote(&o, text ? text : "", len, &sv, session_id, title);
        free(sv.buf);
        hist_close(sv.h);
        free(text);
        return rc;
    }
    double t_load = anc_now();
    struct anc_model *m = cli_model_load(&o, path, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        free(text);
        hist_close(sv.h);
        return EXIT_RUNTIME;
    }
    t_load = anc_now() - t_load;
    struct anc_session *s = anc_session_new(m, &o.sess, err, sizeof err);
    int32_t *toks = NULL;
    size_t n_toks = 0;
    if (!s) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (prompt_ids) {
        if ((rc = cli_parse_ids("--prompt-ids", prompt_ids, anc_n_vocab(m), &toks, &n_toks)) != EXIT_OK)
            goto out;
    } else if (anc_tokenize(m, text ? text : "", len, !o.no_bos, &toks, &n_toks) != 0) {
        cli_error("out of memory tokenizing the prompt");
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (n_toks == 0) { /* --no-bos and no prompt: start from BOS anyway */
        free(toks);
        toks = malloc(sizeof *toks);
        if (!toks) { rc = EXIT_RUNTIME; goto out; }
        toks[0] = anc_token_bos(m);
        n_toks = 1;
    }
    if (o.verbose) {
        struct anc_model_info mi;
        anc_model_get_info(m, &mi);
        fprintf(stderr, "ancora: %s: %s, %d layers, dim %d, %d/%d heads, vocab %d, %s, %.1f MiB "
                "(loaded in %.2f s)\n", mi.path, mi.arch, mi.n_layer, mi.dim, mi.n_head,
                mi.n_kv_head, mi.n_vocab, mi.weight_type_name, mi.weight_bytes / 1048576.0, t_load);
    }
    double t0 = anc_now();
    if (anc_session_feed(s, toks, n_toks, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
        goto out;
    }
    double t_prompt = anc_now() - t0;
    if (logits_out && write_logits(logits_out, m, anc_session_logits(s)) != 0) {
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (sv.h && save_begin(&sv, m, session_id, title, text, len, &o.sess) != 0) {
        rc = EXIT_RUNTIME;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    long n_gen = 0;
    double t_gen = 0;
    enum hist_finish finish;
    FILE *ids = NULL;
    if (ids_out) {
        ids = fopen(ids_out, "w");
        if (!ids) {
            cli_error("cannot write %s: %s", ids_out, strerror(errno));
            rc = EXIT_RUNTIME;
            goto out;
        }
        for (size_t i = 0; i < n_toks; i++) fprintf(ids, "%s%d", i ? " " : "", toks[i]);
        fputc('\n', ids);
    }
    rc = generate(m, s, o.n_predict, toks[n_toks - 1], &n_gen, &t_gen, sv.h ? &sv : NULL, &finish,
                  ids);
    if (ids && (fputc('\n', ids) == EOF || fclose(ids) != 0)) {
        cli_error("cannot write %s", ids_out);
        rc = EXIT_RUNTIME;
    }
    if (sv.h && !sv.failed) {
        struct hist_msg_stats hs = {(int64_t)n_toks, n_gen, t_prompt * 1e3, t_gen * 1e3};
        if (hist_msg_finish(sv.h, sv.mid, sv.buf ? sv.buf : "", finish, &hs) != HIST_OK) save_fail(&sv);
        else fprintf(stderr, "\nancora: saved as session %lld", (long long)sv.sid);
    }
    if (run_interrupted) {
        cli_error("\ninterrupted");
        rc = EXIT_RUNTIME;
    }
    if (sv.failed && rc == EXIT_OK) rc = EXIT_RUNTIME;
    fprintf(stderr, "\nancora: prompt %zu tokens in %.3f s (%.1f tok/s), generated %ld tokens in "
            "%.3f s (%.1f tok/s)\n", n_toks, t_prompt, t_prompt > 0 ? n_toks / t_prompt : 0.0,
            n_gen, t_gen, t_gen > 0 ? n_gen / t_gen : 0.0);
out:
    free(sv.buf);
    hist_close(sv.h);
    free(toks);
    free(text);
    anc_session_free(s);
    cli_model_free(&o, m);
    return rc;
}
