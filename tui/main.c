/* main.c — the `ancora` program: subcommand dispatch, --help, --version.
 * Front-end code: reaches the engine through core/ancora.h only. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cmd_chat_tui(int argc, char **argv) { return cmd_chat(argc, argv, false); }
static int cmd_repl(int argc, char **argv) { return cmd_chat(argc, argv, true); }

static const struct subcommand subcommands[] = {
    {"chat", cmd_chat_tui, "chat in the full-screen interface (the default command)"},
    {"repl", cmd_repl, "chat line by line (also used when not on a terminal)"},
    {"run", cmd_run, "generate text from a prompt (stdout: the text only)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"ppl", cmd_ppl, "perplexity of a text (chunked or streaming convention)"},
    {"bench", cmd_bench, "measure prefill and decode speed (like llama-bench)"},
    {"gguf", cmd_gguf, "inspect GGUF files, write benchmark models (gguf info, gguf random)"},
    {"history", cmd_history, "list, show, search, export and delete saved conversations"},
    {"lora", cmd_lora, "fold a LoRA adapter into a model file (lora merge)"},
    {"train", cmd_train, "fine-tune: a LoRA adapter (LongLoRA) or every weight"},
};

static void usage(FILE *out)
{
    fputs("Usage: ancora [chat] [-m MODEL] [options]\n"
          "       ancora [chat|repl|run] --remote URL [-m SERVER_MODEL] [options]\n"
          "       ancora COMMAND [options]\n"
          "\n"
          "Chat with local Llama-family models (GGUF files) and see how they handle\n"
          "long context; or be the terminal of an OpenAI-compatible server (llama-server,\n"
          "vLLM, ollama) with --remote.\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fputs("\n"
          "Run 'ancora COMMAND --help' for a command's options; 'man ancora' for more.\n"
          "  -h, --help      this help\n"
          "  -V, --version   version and compiled-in backends\n"
          "\n"
          "Environment: ANCORA_MODEL (default model file), ANCORA_DB (history database),\n"
          "ANCORA_REMOTE and ANCORA_API_KEY (a remote engine and its key),\n"
          "NO_COLOR (no colours), XDG_CONFIG_HOME / XDG_DATA_HOME (config and data folders).\n",
          out);
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    /* text in the user's locale, numbers always with a decimal point (JSON,
       CSV and the config file must not change with LC_NUMERIC) */
    setlocale(LC_NUMERIC, "C");
    /* no command (or only options): chat */
    if (argc < 2 || (argv[1][0] == '-' && strcmp(argv[1], "-h") != 0 &&
                     strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-V") != 0 &&
                     strcmp(argv[1], "--version") != 0))
        return cmd_chat(argc, argv, false);
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        char why[600];
        const char *usable = anc_backends_usable(why, sizeof why);
        printf("ancora %s (backends: %s)\n", anc_version(), usable);
        if (why[0]) printf("built but not usable here: %s\n", why);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(cmd, subcommands[i].name) == 0) return subcommands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (see ancora --help)", cmd);
    return EXIT_USAGE;
}
