/* cmd_tokenize.c — `ancora tokenize`: print the token ids of a text, one
 * line, space-separated. The text is taken byte-exact (stdin by default).
 * Engine access via ancora.h only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void tokenize_usage(FILE *out)
{
    fputs("Usage: ancora tokenize -m MODEL [--no-bos] [-p TEXT | -f FILE]\n"
          "\n"
          "Print the token ids of TEXT (or of FILE, or of stdin when neither is given),\n"
          "space-separated on one line. The text is used byte for byte: no newline is\n"
          "added or removed. Vocabulary-only GGUF files work too.\n"
          "\n"
          "  -m, --model FILE   GGUF model or vocabulary (default: $ANCORA_MODEL)\n"
          "  -p, --prompt TEXT  the text\n"
          "  -f, --file FILE    read the text from FILE ('-' = stdin)\n"
          "      --no-bos       do not put BOS first\n"
          "      --pieces       print id:piece pairs instead of bare ids\n"
          "  -h, --help         this help\n",
          out);
}

int cmd_tokenize(int argc, char **argv)
{
    enum { OPT_PIECES = 2000 };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"prompt", required_argument, NULL, 'p'},
        {"file", required_argument, NULL, 'f'},
        {"no-bos", no_argument, NULL, OPT_NO_BOS},
        {"pieces", no_argument, NULL, OPT_PIECES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_opts o;
    cli_opts_default(&o);
    bool pieces = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:p:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'p': o.prompt = optarg; break;
        case 'f': o.prompt_file = optarg; break;
        case OPT_NO_BOS: o.no_bos = true; break;
        case OPT_PIECES: pieces = true; break;
        case 'h':
            tokenize_usage(stdout);
            return EXIT_OK;
        case ':':
            cli_error("option %s needs a value (see ancora tokenize --help)", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            cli_error("unknown option %s (see ancora tokenize --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument '%s' (give the text with -p)", argv[optind]);
        return EXIT_USAGE;
    }
    if (o.prompt && o.prompt_file) {
        cli_error("give the text with -p or -f, not both");
        return EXIT_USAGE;
    }
    const char *path = cli_model_path(&o);
    if (!path) return EXIT_USAGE;

    char err[ANC_ERR_LEN];
    char *text = NULL;
    size_t len = 0;
    if (o.prompt) {
        len = strlen(o.prompt);
    } else {
        text = anc_read_file(o.prompt_file ? o.prompt_file : "-", &len, err, sizeof err);
        if (!text) {
            cli_error("%s", err);
            return EXIT_RUNTIME;
        }
    }
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.vocab_only = true;
    struct anc_model *m = anc_model_load(path, &mp, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        free(text);
        return EXIT_RUNTIME;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = EXIT_OK;
    if (anc_tokenize(m, text ? text : o.prompt, len, !o.no_bos, &ids, &n) != 0) {
        cli_error("out of memory tokenizing");
        rc = EXIT_RUNTIME;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i) putchar(' ');
            printf("%d", ids[i]);
            if (pieces) {
                char buf[256];
                size_t k = anc_token_piece(m, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
                printf(":'%.*s'", (int)(k < sizeof buf ? k : sizeof buf - 1), buf);
            }
        }
        putchar('\n');
        if (fflush(stdout) != 0) rc = EXIT_RUNTIME;
    }
    free(ids);
    free(text);
    anc_model_free(m);
    return rc;
}
