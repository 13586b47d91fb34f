/* cmd_gguf.c — `ancora gguf info MODEL`: a readable report of a GGUF file's
 * header, metadata and tensors; `ancora gguf random`: benchmark files. Engine access via ancora.h only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void gguf_usage(FILE *out)
{
    fprintf(out,
            "Usage: ancora gguf info MODEL\n"
            "       ancora gguf random --shape NAME --type TYPE -o OUT [--vocab VOCAB.gguf]\n"
            "                          [--seed S]\n"
            "\n"
            "info    print a GGUF file's header, metadata and tensor table (name, type,\n"
            "        shape, bytes, offset). The file is checked as it is read; a damaged\n"
            "        file gets one clear message and exit status 1.\n"
            "random  write a GGUF file of a known model shape with seeded random weights\n"
            "        (for benchmarks: speed does not depend on the values) and a real\n"
            "        vocabulary (default: ../shared/models/ggml-vocab-llama-spm.gguf).\n"
            "        shapes: %s\n"
            "        types:  %s\n",
            anc_gguf_random_shapes(), anc_gguf_random_types());
}

struct write_progress {
    bool show;
    double t0;
};

static bool on_write_progress(void *ctx, int64_t done, int64_t total)
{
    struct write_progress *p = ctx;
    if (p->show && (done == total || anc_now() - p->t0 > 0.2)) {
        fprintf(stderr, "\rwriting %.0f / %.0f MiB", done / 1048576.0, total / 1048576.0);
        if (done == total) fputc('\n', stderr);
    }
    return true;
}

static int gguf_random(int argc, char **argv)
{
    enum { OPT_SHAPE = 4000, OPT_TYPE, OPT_VOCAB, OPT_SEED_R };
    static const struct option longopts[] = {
        {"shape", required_argument, NULL, OPT_SHAPE}, {"type", required_argument, NULL, OPT_TYPE},
        {"vocab", required_argument, NULL, OPT_VOCAB}, {"seed", required_argument, NULL, OPT_SEED_R},
        {"output", required_argument, NULL, 'o'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *shape = NULL, *type = NULL, *vocab = NULL, *out = NULL;
    long seed = 1;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SHAPE: shape = optarg; break;
        case OPT_TYPE: type = optarg; break;
        case OPT_VOCAB: vocab = optarg; break;
        case OPT_SEED_R:
            if (!cli_parse_long("--seed", optarg, 0, 1L << 62, &seed)) return EXIT_USAGE;
            break;
        case 'o': out = optarg; break;
        case 'h':
            gguf_usage(stdout);
            return EXIT_OK;
        case ':':
            cli_error("option %s needs a value (see ancora gguf --help)", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            cli_error("unknown option %s (see ancora gguf --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (!shape || !type || !out) {
        cli_error("gguf random needs --shape, --type and -o (see ancora gguf --help)");
        return EXIT_USAGE;
    }
    char vbuf[1024];
    if (!vocab) {
        const char *dir = getenv("ANC_MODELS_DIR");
        snprintf(vbuf, sizeof vbuf, "%s/ggml-vocab-llama-spm.gguf", dir && *dir ? dir : "../shared/models");
        if (access(vbuf, R_OK) != 0) {
            cli_error("no vocabulary: %s is not there; pass --vocab VOCAB.gguf", vbuf);
            return EXIT_USAGE;
        }
        vocab = vbuf;
    }
    char err[ANC_ERR_LEN];
    struct write_progress wp = {isatty(STDERR_FILENO), anc_now()};
    if (anc_gguf_random(shape, type, vocab, (uint64_t)seed, out, on_write_progress, &wp, err,
                        sizeof err) != 0) {
        cli_error("%s", err);
        return strstr(err, "unknown ") == err ? EXIT_USAGE : EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_gguf(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        gguf_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "random") == 0) return gguf_random(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") != 0) {
        cli_error("unknown gguf command '%s' (see ancora gguf --help)", argv[1]);
        return EXIT_USAGE;
    }
    if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        gguf_usage(stdout);
        return EXIT_OK;
    }
    if (argc != 3) {
        cli_error("gguf info takes one file (see ancora gguf --help)");
        return EXIT_USAGE;
    }
    char err[ANC_ERR_LEN];
    if (anc_gguf_print_info(stdout, argv[2], err, sizeof err) != 0) {
        fflush(stdout);
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}
