/* cmd_lora.c — `ancora lora merge`: a model file with a LoRA adapter folded
 * in (anc_lora_merge), which any GGUF runtime loads as a plain model.
 * Engine access via ancora.h only. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void lora_usage(FILE *out)
{
    fputs("Usage: ancora lora merge -m BASE.gguf --lora ADAPTER.gguf [--lora-scale S] -o OUT.gguf\n"
          "\n"
          "Write BASE with the adapter folded in: each adapted weight becomes\n"
          "W + S*(alpha/r)*B*A, stored as F16; every other key and tensor is copied\n"
          "as it is. The result is a plain model file: `ancora run -m OUT.gguf` gives\n"
          "what `ancora run -m BASE.gguf --lora ADAPTER.gguf` gives, up to F16\n"
          "rounding, and other GGUF runtimes load it too.\n"
          "\n"
          "  -m, --model FILE    the base model\n"
          "      --lora FILE     the adapter (llama.cpp's LoRA GGUF layout)\n"
          "      --lora-scale S  its strength (default 1)\n"
          "  -o, --output FILE   the merged model (written whole, then renamed)\n"
          "  -h, --help          this help\n",
          out);
}

int cmd_lora(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"lora", required_argument, NULL, OPT_LORA},
        {"lora-scale", required_argument, NULL, OPT_LORA_SCALE},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "merge") != 0) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            lora_usage(stdout);
            return EXIT_OK;
        }
        cli_error("ancora lora needs a command: merge (see ancora lora --help)");
        return EXIT_USAGE;
    }
    struct cli_opts o;
    cli_opts_default(&o);
    const char *out_path = NULL;
    int c;
    opterr = 0;
    optind = 2;
    while ((c = getopt_long(argc, argv, ":m:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'h':
            lora_usage(stdout);
            return EXIT_OK;
        case ':':
            cli_error("option %s needs a value (see ancora lora --help)", argv[optind - 1]);
            return EXIT_USAGE;
        case '?':
            cli_error("unknown option %s (see ancora lora --help)", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            if (cli_common_option(c, optarg, &o) != 1) return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument '%s' (see ancora lora --help)", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o.lora_path || !out_path) {
        cli_error("lora merge needs --lora ADAPTER and -o OUT.gguf (see ancora lora --help)");
        return EXIT_USAGE;
    }
    const char *path = cli_model_path(&o);
    if (!path) return EXIT_USAGE;
    o.backend = ANC_BACKEND_CPU; /* nothing is computed; no GPU upload */
    char err[ANC_ERR_LEN];
    struct anc_model *m = cli_model_load(&o, path, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    int rc = EXIT_OK;
    fprintf(stderr, "ancora: writing %s...\n", out_path);
    if (anc_lora_merge(o.lora, o.sess.lora_scale, out_path, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
    }
    cli_model_free(&o, m);
    return rc;
}
