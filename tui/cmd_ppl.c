/* cmd_ppl.c — `ancora ppl`: perplexity of a text file in the llama.cpp
 * chunked convention or the streaming convention, with a progress line,
 * an optional CSV of per-token NLL and a terminal plot.
 * Engine access via ancora.h only. */
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"

static void ppl_usage(FILE *out)
{
    fputs("Usage: ancora ppl -m MODEL (-f FILE | --ids FILE) [--mode chunked|stream] [--ctx N] [options]\n"
          "\n"
          "Perplexity of a text file. The last line of stdout is \"PPL = <value>\".\n"
          "\n"
          "  -m, --model FILE      GGUF model (default: $ANCORA_MODEL)\n"
          "  -f, --file FILE       the text ('-' = stdin)\n"
          "      --ids FILE        token ids instead of a text (\"1 15043 3186\", as\n"
          "                        ancora tokenize or history replay --ids-out write them),\n"
          "                        fed as they are: no BOS added\n"
          "      --mode M          chunked (default): llama.cpp's llama-perplexity\n"
          "                        convention: chunks of --ctx tokens, BOS written over\n"
          "                        each chunk's first token, the second half scored;\n"
          "                        prints \"PPL = x +/- err\".\n"
          "                        stream: token by token through the cache policy,\n"
          "                        every token after the first scored, cache never reset\n"
          "      --ctx N           chunk size (chunked; default 512) or full-cache size\n"
          "      --csv OUT         write position,token,nll for every scored token (stream)\n"
          "      --plot            draw NLL against position in the terminal (stream)\n"
          "      --max-tokens N    score only the first N tokens of the text\n"
          "  -t, --threads N       CPU threads (default: physical cores)\n"
          "      --backend B       auto (default: a GPU when present), cpu or cuda\n"
          "  -q, --quiet           no progress line\n"
          "  -h, --help            this help\n"
          "\n"
          "In chunked mode the cache policy defaults to full (as llama.cpp); in stream\n"
          "mode to sink.\n\n",
          out);
    fputs(cli_context_help, out);
    fputs(cli_lora_help, out);
}

struct progress {
    bool show;
    double t0;
    const char *what;
};

static bool on_progress(void *ctx, int64_t done, int64_t total)
{
    struct progress *p = ctx;
    if (!p->show) return true;
    double el = anc_now() - p->t0;
    double eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%s %lld/%lld (%.0f%%), %.1f s elapsed, ~%.0f s left   ", p->what,
            (long long)done, (long long)total, 100.0 * (double)done / (double)total, el, eta);
    if (done == total) fputc('\n', stderr);
    return true;
}

enum { OPT_MODE = 3000, OPT_CSV, OPT_PLOT, OPT_QUIET, OPT_IDS_FILE };

int cmd_ppl(int argc, char **argv)
{
    static const struct option own[] = {
        {"file", required_argument, NULL, 'f'},
        {"ids", required_argument, NULL, OPT_IDS_FILE},
        {"mode", required_argument, NULL, OPT_MODE},
        {"csv", required_argument, NULL, OPT_CSV},
        {"plot", no_argument, NULL, OPT_PLOT},
        {"quiet", no_argument, NULL, 'q'},
        {"max-tokens", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct cli_opts o;
    cli_opts_default(&o);
    o.n_predict = -1;
    bool stream = false, plot = false, quiet = false, cache_given = false;
    const char *csv = NULL, *ids_file = NULL;
    struct option *longopts = cli_merge_longopts(own);
    if (!longopts) return EXIT_RUNTIME;
    int c, rc = EXIT_OK;
    long v;
    opterr = 0;
    optind = 1;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":m:t:f:n:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o.prompt_file = optarg; break;
        case OPT_IDS_FILE: ids_file = optarg; break;
        case OPT_MODE:
            if (strcmp(optarg, "stream") == 0) stream = true;
            else if (strcmp(optarg, "chunked") == 0) stream = false;
            else {
                cli_error("invalid value for --mode: '%s' (choose chunked or stream)", optarg);
                rc = EXIT_USAGE;
            }
            break;
        case OPT_CSV: csv = optarg; break;
        case OPT_PLOT: plot = true; break;
        case 'q': quiet = true; break;
        case 'n':
            if (cli_parse_long("--max-tokens", optarg, 2, 1L << 30, &v)) o.n_predict = v;
            else rc = EXIT_USAGE;
            break;
        case 'h':
        case OPT_HELP:
            ppl_usage(stdout);
            free(longopts);
            return EXIT_OK;
        case ':':
        case '?':
            rc = cli_option_error(c, argv, "ppl");
            break;
        default:
            if (c == OPT_CACHE) cache_given = true;
            if (cli_common_option(c, optarg, &o) != 1) rc = EXIT_USAGE;
            break;
        }
    }
    free(longopts);
    if (rc == EXIT_OK && optind < argc) {
        cli_error("unexpected argument '%s' (give the text with -f)", argv[optind]);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && !o.prompt_file == !ids_file) {
        cli_error(ids_file ? "give -f FILE or --ids FILE, not both"
                           : "no text given: pass -f FILE (see ancora ppl --help)");
        rc = EXIT_USAGE;
    }
    if (ids_file) o.prompt_file = ids_file;
    if (rc == EXIT_OK && !stream && (csv || plot)) {
        cli_error("--csv and --plot are for --mode stream");
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK) return rc;
    if (!cli_check_context(&o)) return EXIT_USAGE;
    const char *path = cli_model_path(&o);
    if (!path) return EXIT_USAGE;
    int32_t n_ctx = o.sess.ctx > 0 ? o.sess.ctx : 512;
    if (!stream && !cache_given) o.sess.cache = ANC_CACHE_FULL;

    char err[ANC_ERR_LEN];
    size_t len;
    char *text = anc_read_file(o.prompt_file, &len, err, sizeof err);
    if (!text) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    struct anc_model *m = cli_model_load(&o, path, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        free(text);
        return EXIT_RUNTIME;
    }
    int32_t *toks = NULL;
    size_t n = 0;
    double *nll = NULL;
    FILE *csv_fp = NULL;
    if (ids_file) {
        if ((rc = cli_parse_ids("--ids", text, anc_n_vocab(m), &toks, &n)) != EXIT_OK) goto out;
    } else if (anc_tokenize(m, text, len, true, &toks, &n) != 0) {
        cli_error("out of memory tokenizing %s", o.prompt_file);
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (o.n_predict > 0 && (size_t)o.n_predict < n) n = (size_t)o.n_predict;
    struct progress pr = {!quiet && isatty(STDERR_FILENO), anc_now(), stream ? "tokens" : "chunks"};
    struct anc_ppl_result res;
    fprintf(stderr, "ancora: %s: %zu tokens, mode %s, cache %s\n", o.prompt_file, n,
            stream ? "stream" : "chunked", anc_cache_policy_name(o.sess.cache));
    if (stream) {
        nll = malloc(sizeof *nll * n);
        if (!nll) {
            cli_error("out of memory");
            rc = EXIT_RUNTIME;
            goto out;
        }
        if (o.sess.cache == ANC_CACHE_FULL && o.sess.ctx <= 0) o.sess.ctx = (int32_t)n;
        if (anc_perplexity_stream(m, &o.sess, toks, n, nll, &res, on_progress, &pr, err,
                                  sizeof err) != 0) {
            cli_error("%s", err);
            rc = EXIT_RUNTIME;
            goto out;
        }
    } else if (anc_perplexity_chunked(m, &o.sess, toks, n, n_ctx, &res, on_progress, &pr, err,
                                      sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
        goto out;
    }
    double secs = anc_now() - pr.t0;
    fprintf(stderr, "ancora: scored %lld tokens in %.2f s (%.1f tok/s)\n", (long long)res.n_scored,
            secs, secs > 0 ? (double)res.n_scored / secs : 0.0);
    if (csv) {
        csv_fp = strcmp(csv, "-") == 0 ? stdout : fopen(csv, "w");
        if (!csv_fp) {
            cli_error("cannot write %s", csv);
            rc = EXIT_RUNTIME;
            goto out;
        }
        fprintf(csv_fp, "position,token,nll\n");
        for (size_t i = 0; i + 1 < n; i++) fprintf(csv_fp, "%zu,%d,%.6f\n", i + 1, toks[i + 1], nll[i]);
        if (csv_fp != stdout && fclose(csv_fp) != 0) {
            cli_error("error writing %s", csv);
            rc = EXIT_RUNTIME;
        }
        csv_fp = NULL;
    }
    if (plot) {
        const char *cs = nl_langinfo(CODESET);
        bool utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
        char title[160];
        snprintf(title, sizeof title, "NLL per token (cache %s, window %d, sinks %d)",
                 anc_cache_policy_name(o.sess.cache), o.sess.window, o.sess.n_sink);
        plot_series(stdout, nll, n - 1, 1, 72, 12, title, "token position", utf8);
    }
    if (stream) printf("PPL = %.4f\n", res.ppl);
    else printf("PPL = %.4f +/- %.5f\n", res.ppl, res.ppl_stderr);
    if (fflush(stdout) != 0) rc = EXIT_RUNTIME;
out:
    free(nll);
    free(toks);
    free(text);
    cli_model_free(&o, m);
    return rc;
}
