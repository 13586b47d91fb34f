/* cmd_gguf.c — `ancora gguf info MODEL`: a readable report of a GGUF file's
 * header, metadata and tensors. Engine access via ancora.h only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void gguf_usage(FILE *out)
{
    fputs("Usage: ancora gguf info MODEL\n"
          "\n"
          "Print a GGUF file's header, metadata and tensor table (name, type, shape,\n"
          "bytes, offset). The file is checked as it is read; a damaged file gets one\n"
          "clear message and exit status 1.\n",
          out);
}

int cmd_gguf(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        gguf_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
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
