/* cli.h — what the one-shot subcommands share: the common options of the
 * command-line contract (DESIGN.md), strict number parsing, error output
 * as "ancora: ..." and the exit statuses. Talks to the engine through
 * core/ancora.h only. */
#ifndef ANC_CLI_H
#define ANC_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "ancora.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Long-only option codes (values above any short option character). */
enum cli_long_opt {
    OPT_TEMP = 1000, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT_PENALTY, OPT_REPEAT_LAST_N,
    OPT_SEED, OPT_CTX, OPT_KV_TYPE, OPT_CACHE, OPT_WINDOW, OPT_SINKS, OPT_ROPE_THETA,
    OPT_NO_BOS, OPT_HELP, OPT_BACKEND, OPT_VERBOSE, OPT_ROPE_SCALING, OPT_ROPE_FACTOR,
    OPT_ROPE_ORIG_CTX, OPT_YARN_BETA_FAST, OPT_YARN_BETA_SLOW, OPT_YARN_ATTN_FACTOR, OPT_LOGITS_OUT,
    OPT_SAVE, OPT_SESSION_ID, OPT_TITLE, OPT_DB_PATH, OPT_IDS_OUT, OPT_PROMPT_IDS, OPT_LORA,
    OPT_LORA_SCALE, OPT_REMOTE, OPT_API_KEY, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT
};

struct cli_opts {
    const char *model;
    int threads;
    const char *prompt;
    const char *prompt_file;
    long n_predict;
    bool no_bos;
    bool seed_given;            /* --seed (or `seed =` in the config) was set */
    bool verbose;
    int backend;           /* enum anc_backend_kind */
    const char *lora_path; /* --lora FILE */
    struct anc_lora *lora; /* loaded by cli_model_load, freed by cli_model_free */
    struct anc_session_params sess;
    /* a remote engine (chat, repl, run): --remote URL; then -m/--model
       names the server's model instead of a file */
    const char *remote;
    const char *api_key;        /* --api-key (else $ANCORA_API_KEY) */
    double timeout, connect_timeout; /* seconds; 0: the engine's defaults */
};

void cli_opts_default(struct cli_opts *o);

/* The remote engine's options, for the getopt tables of chat and run
 * (spliced into their own option lists), their handler (1 handled, 0 not
 * one of them, -1 usage error printed) and their help. */
#define CLI_REMOTE_LONGOPTS                                            \
    {"remote", required_argument, NULL, OPT_REMOTE},                  \
    {"api-key", required_argument, NULL, OPT_API_KEY},                \
    {"timeout", required_argument, NULL, OPT_TIMEOUT},                \
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT}
int cli_remote_option(int c, const char *arg, struct cli_opts *o);
extern const char cli_remote_help[];
/* --remote (or "off"), else $ANCORA_REMOTE; the key from --api-key, else
 * $ANCORA_API_KEY. Sets o->remote to NULL for a local engine. */
void cli_remote_resolve(struct cli_opts *o);
/* s as the inside of a JSON string (quotes, backslashes and control
 * characters escaped), cut to fit cap; returns buf. */
char *cli_json_escape(const char *s, char *buf, size_t cap);

/* Handle an option shared by several subcommands; returns 1 if handled,
 * 0 if not one of them, -1 after printing a usage error. */
int cli_common_option(int c, const char *arg, struct cli_opts *o);

/* The getopt_long entries for the common options (terminated by a zero
 * entry); subcommands concatenate them with their own. */
extern const struct option cli_common_longopts[];

/* Strict parsing: the whole string must be a number within [lo, hi];
 * otherwise prints "ancora: invalid value for NAME: ..." and returns false. */
bool cli_parse_long(const char *name, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *name, const char *s, double lo, double hi, float *out);
bool cli_parse_double(const char *name, const char *s, double lo, double hi, double *out);

/* Help text for the cache and RoPE options, shared by run and ppl. */
extern const char cli_context_help[];
/* --lora and --lora-scale (run, ppl, bench, chat, history replay) */
extern const char cli_lora_help[];

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* getopt_long's ':' (missing value) and '?' (unknown option): print the
 * message naming the subcommand; returns EXIT_USAGE. */
int cli_option_error(int c, char **argv, const char *cmd);

/* Checks between options (e.g. sinks < window); prints a usage error. */
bool cli_check_context(const struct cli_opts *o);

/* Load a model with the options' threads and backend. When AUTO put it
 * on a GPU, or had to leave a GPU for the CPU, one line on stderr says so.
 * NULL + message on failure. */
/* Also loads --lora's adapter into o->lora and o->sess.lora (a failure
 * frees the model: NULL + message). Free both with cli_model_free. */
struct anc_model *cli_model_load(struct cli_opts *o, const char *path, char *err,
                                 size_t errlen);
void cli_model_free(struct cli_opts *o, struct anc_model *m);

/* The model path from -m or $ANCORA_MODEL; prints a helpful error if none. */
const char *cli_model_path(const struct cli_opts *o);

/* Make a long-option array: own entries followed by the common ones.
 * Returns a malloc'ed array (caller frees). */
struct option *cli_merge_longopts(const struct option *own);

/* "1 15043 3186" (spaces, commas or newlines between) -> malloc'ed ids,
 * each checked against the vocabulary; errors name WHAT (the option).
 * Returns an exit status. */
int cli_parse_ids(const char *what, const char *list, int32_t n_vocab, int32_t **out,
                  size_t *n_out);

/* Subcommands: each returns an exit status. */
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_gguf(int argc, char **argv);
int cmd_lora(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `ancora`, `ancora chat` (TUI when on a terminal) and `ancora repl`. */
int cmd_chat(int argc, char **argv, bool force_repl);
int cmd_history(int argc, char **argv);
/* `ancora history replay` (cmd_replay.c); DB: a --db given before "replay". */
int cmd_history_replay(int argc, char **argv, const char *db);

#endif
