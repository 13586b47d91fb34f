/* cli.c — common options, strict number parsing and error output for the
 * one-shot subcommands (see cli.h). Engine access via ancora.h only. */
#include "cli.h"
#include "userconf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"

const struct option cli_common_longopts[] = {
    {"model", required_argument, NULL, 'm'},
    {"threads", required_argument, NULL, 't'},
    {"temp", required_argument, NULL, OPT_TEMP},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"min-p", required_argument, NULL, OPT_MIN_P},
    {"repeat-penalty", required_argument, NULL, OPT_REPEAT_PENALTY},
    {"repeat-last-n", required_argument, NULL, OPT_REPEAT_LAST_N},
    {"seed", required_argument, NULL, OPT_SEED},
    {"ctx", required_argument, NULL, OPT_CTX},
    {"kv-type", required_argument, NULL, OPT_KV_TYPE},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"sinks", required_argument, NULL, OPT_SINKS},
    {"rope-theta", required_argument, NULL, OPT_ROPE_THETA},
    {"rope-scaling", required_argument, NULL, OPT_ROPE_SCALING},
    {"rope-factor", required_argument, NULL, OPT_ROPE_FACTOR},
    {"rope-orig-ctx", required_argument, NULL, OPT_ROPE_ORIG_CTX},
    {"yarn-beta-fast", required_argument, NULL, OPT_YARN_BETA_FAST},
    {"yarn-beta-slow", required_argument, NULL, OPT_YARN_BETA_SLOW},
    {"yarn-attn-factor", required_argument, NULL, OPT_YARN_ATTN_FACTOR},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"lora", required_argument, NULL, OPT_LORA},
    {"lora-scale", required_argument, NULL, OPT_LORA_SCALE},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

void cli_opts_default(struct cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->n_predict = 128;
    anc_session_params_default(&o->sess);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ancora: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_parse_long(const char *name, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_error("invalid value for %s: '%s' is not a whole number", name, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error("invalid value for %s: %ld is out of range (%ld to %ld)", name, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

const char cli_context_help[] =
    "Context (cache policy and RoPE):\n"
    "      --cache POLICY      sink (default): first --sinks tokens + the most recent,\n"
    "                          --window entries in all; window: the most recent only;\n"
    "                          recompute: re-run the last --window tokens each token;\n"
    "                          full: everything up to --ctx, then stop\n"
    "      --window N          entries a token attends to, sinks and itself included\n"
    "                          (default: the context, at most 4096)\n"
    "      --sinks N           attention-sink tokens kept (default 4)\n"
    "      --ctx N             full cache size (default: the model's context length)\n"
    "      --kv-type T         f16 (default) or f32 cache entries\n"
    "      --rope-theta X      RoPE base frequency (ABF; default: from the file)\n"
    "      --rope-scaling T    none, linear, dynamic, yarn or llama3 (default: file)\n"
    "      --rope-factor F     scaling factor s (default: file, else 1)\n"
    "      --rope-orig-ctx N   context the model was trained at (default: file)\n"
    "      --yarn-beta-fast X  YaRN beta_fast (default 32)\n"
    "      --yarn-beta-slow X  YaRN beta_slow (default 1)\n"
    "      --yarn-attn-factor X  YaRN attention factor (default: file, else 1)\n";

const char cli_remote_help[] =
    "Remote engine (an OpenAI-compatible server: llama-server, vLLM, ollama):\n"
    "      --remote URL        chat with the server at URL (e.g. http://127.0.0.1:8080);\n"
    "                          also `remote = URL` in the config file or $ANCORA_REMOTE;\n"
    "                          `--remote off` for the local engine. -m/--model then\n"
    "                          names one of the server's models (/models lists them)\n"
    "      --api-key KEY       sent as a bearer token (better: $ANCORA_API_KEY, which\n"
    "                          other users cannot see in the process list)\n"
    "      --timeout S         give up when the server sends nothing for S seconds\n"
    "                          (default 120)\n"
    "      --connect-timeout S give up connecting after S seconds (default 10)\n";

int cli_remote_option(int c, const char *arg, struct cli_opts *o)
{
    switch (c) {
    case OPT_REMOTE:
        o->remote = arg;
        return 1;
    case OPT_API_KEY:
        o->api_key = arg;
        return 1;
    case OPT_TIMEOUT:
        return cli_parse_double("--timeout", arg, 0.1, 86400, &o->timeout) ? 1 : -1;
    case OPT_CONNECT_TIMEOUT:
        return cli_parse_double("--connect-timeout", arg, 0.1, 3600, &o->connect_timeout) ? 1 : -1;
    default:
        return 0;
    }
}

void cli_remote_resolve(struct cli_opts *o)
{
    if (!o->remote || !*o->remote) o->remote = getenv("ANCORA_REMOTE");
    if (o->remote && (!*o->remote || strcmp(o->remote, "off") == 0)) o->remote = NULL;
    if (!o->api_key || !*o->api_key) o->api_key = getenv("ANCORA_API_KEY");
    if (o->api_key && !*o->api_key) o->api_key = NULL;
}

char *cli_json_escape(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; s && *s && k + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') buf[k++] = '\\', buf[k++] = (char)c;
        else if (c < 0x20) k += (size_t)snprintf(buf + k, cap - k, "\\u%04x", c);
        else buf[k++] = (char)c;
    }
    if (cap) buf[k < cap ? k : cap - 1] = '\0';
    return buf;
}

const char cli_lora_help[] =
    "Adapter:\n"
    "      --lora FILE         apply a LoRA adapter (llama.cpp's LoRA GGUF layout)\n"
    "      --lora-scale S      its strength (default 1; 0 = the base model)\n";

bool cli_parse_double(const char *name, const char *s, double lo, double hi, double *out)
{
    float f;
    if (!cli_parse_float(name, s, lo, hi, &f)) return false;
    *out = strtod(s, NULL); /* full precision; range already checked */
    return true;
}

bool cli_parse_float(const char *name, const char *s, double lo, double hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) {
        cli_error("invalid value for %s: '%s' is not a number", name, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_error("invalid value for %s: %g is out of range (%g to %g)", name, v, lo, hi);
        return false;
    }
    *out = (float)v;
    return true;
}

int cli_common_option(int c, const char *arg, struct cli_opts *o)
{
    struct anc_sampling *smp = &o->sess.sampling;
    long v;
    switch (c) {
    case 'm':
        o->model = arg;
        return 1;
    case 't':
        if (!cli_parse_long("--threads", arg, 1, 1024, &v)) return -1;
        o->threads = (int)v;
        return 1;
    case OPT_TEMP:
        return cli_parse_float("--temp", arg, 0, 100, &smp->temp) ? 1 : -1;
    case OPT_TOP_K:
        if (!cli_parse_long("--top-k", arg, 0, 1 << 24, &v)) return -1;
        smp->top_k = (int32_t)v;
        return 1;
    case OPT_TOP_P:
        return cli_parse_float("--top-p", arg, 1e-6, 1, &smp->top_p) ? 1 : -1;
    case OPT_MIN_P:
        return cli_parse_float("--min-p", arg, 0, 0.999999, &smp->min_p) ? 1 : -1;
    case OPT_REPEAT_PENALTY:
        return cli_parse_float("--repeat-penalty", arg, 1e-3, 10, &smp->repeat_penalty) ? 1 : -1;
    case OPT_REPEAT_LAST_N:
        if (!cli_parse_long("--repeat-last-n", arg, 0, 4096, &v)) return -1;
        smp->repeat_last_n = (int32_t)v;
        return 1;
    case OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(arg, &end, 10);
        if (errno || end == arg || *end != '\0' || arg[0] == '-') {
            cli_error("invalid value for --seed: '%s' is not a non-negative whole number", arg);
            return -1;
        }
        smp->seed = seed;
        o->seed_given = true;
        return 1;
    }
    case OPT_CTX:
        if (!cli_parse_long("--ctx", arg, 1, 1 << 24, &v)) return -1;
        o->sess.ctx = (int32_t)v;
        return 1;
    case OPT_KV_TYPE:
        if (strcmp(arg, "f16") == 0) {
            o->sess.kv_type = ANC_DT_F16;
        } else if (strcmp(arg, "f32") == 0) {
            o->sess.kv_type = ANC_DT_F32;
        } else {
            cli_error("invalid value for --kv-type: '%s' (choose f16 or f32)", arg);
            return -1;
        }
        return 1;
    case OPT_CACHE: {
        int pol = anc_cache_policy_from_name(arg);
        if (pol < 0) {
            cli_error("invalid value for --cache: '%s' (choose sink, window, recompute or full)", arg);
            return -1;
        }
        o->sess.cache = (enum anc_cache_policy)pol;
        return 1;
    }
    case OPT_WINDOW:
        if (!cli_parse_long("--window", arg, 2, 1 << 22, &v)) return -1;
        o->sess.window = (int32_t)v;
        return 1;
    case OPT_SINKS:
        if (!cli_parse_long("--sinks", arg, 0, 1 << 22, &v)) return -1;
        o->sess.n_sink = (int32_t)v;
        return 1;
    case OPT_ROPE_THETA:
        return cli_parse_double("--rope-theta", arg, 1.0001, 1e12, &o->sess.rope.theta) ? 1 : -1;
    case OPT_ROPE_SCALING: {
        int sc = anc_rope_scaling_from_name(arg);
        if (sc < 0) {
            cli_error("invalid value for --rope-scaling: '%s' (choose none, linear, dynamic, yarn "
                      "or llama3)", arg);
            return -1;
        }
        o->sess.rope.scaling = sc;
        return 1;
    }
    case OPT_ROPE_FACTOR:
        return cli_parse_double("--rope-factor", arg, 1, 1024, &o->sess.rope.factor) ? 1 : -1;
    case OPT_ROPE_ORIG_CTX:
        if (!cli_parse_long("--rope-orig-ctx", arg, 1, 1 << 22, &v)) return -1;
        o->sess.rope.orig_ctx = (int32_t)v;
        return 1;
    case OPT_YARN_BETA_FAST:
        return cli_parse_double("--yarn-beta-fast", arg, 1e-3, 1e4, &o->sess.rope.yarn_beta_fast) ? 1 : -1;
    case OPT_YARN_BETA_SLOW:
        return cli_parse_double("--yarn-beta-slow", arg, 1e-3, 1e4, &o->sess.rope.yarn_beta_slow) ? 1 : -1;
    case OPT_YARN_ATTN_FACTOR:
        return cli_parse_double("--yarn-attn-factor", arg, 1e-3, 100, &o->sess.rope.yarn_attn_factor) ? 1 : -1;
    case OPT_BACKEND: {
        int k = anc_backend_kind_from_name(arg);
        if (k < 0) {
            cli_error("unknown backend '%s' (auto, cpu or cuda; this build has %s)", arg,
                      anc_backends_compiled());
            return -1;
        }
        o->backend = k;
        return 1;
    }
    case OPT_VERBOSE:
        o->verbose = true;
        return 1;
    case OPT_LORA:
        o->lora_path = arg;
        return 1;
    case OPT_LORA_SCALE:
        return cli_parse_float("--lora-scale", arg, -100, 100, &o->sess.lora_scale) ? 1 : -1;
    default:
        return 0;
    }
}

struct option *cli_merge_longopts(const struct option *own)
{
    size_t n_own = 0, n_common = 0;
    while (own[n_own].name) n_own++;
    while (cli_common_longopts[n_common].name) n_common++;
    struct option *all = calloc(n_own + n_common + 1, sizeof *all);
    if (!all) return NULL;
    memcpy(all, own, n_own * sizeof *all);
    memcpy(all + n_own, cli_common_longopts, n_common * sizeof *all);
    return all;
}

/* An adapter trained for other RoPE settings (`ancora train --rope-...`)
 * brings them along, unless the command line chose RoPE settings itself. */
static void adapter_rope(struct cli_opts *o)
{
    if (!anc_lora_apply_rope(o->lora, &o->sess.rope, false)) return;
    struct anc_lora_info li;
    anc_lora_get_info(o->lora, &li);
    fprintf(stderr, "ancora: the adapter was trained at %d tokens with RoPE %s x%g (base %g); using that (--rope-scaling overrides)\n",
            li.trained_ctx, anc_rope_scaling_name(li.rope.scaling), li.rope.factor, li.rope.theta);
}

struct anc_model *cli_model_load(struct cli_opts *o, const char *path, char *err,
                                 size_t errlen)
{
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.n_threads = o->threads;
    mp.backend = (enum anc_backend_kind)o->backend;
    struct anc_model *m = anc_model_load(path, &mp, err, errlen);
    if (!m) return NULL;
    struct anc_model_info mi;
    anc_model_get_info(m, &mi);
    if (mi.backend_note && *mi.backend_note)
        fprintf(stderr, "ancora: %s\n", mi.backend_note);
    else if (o->backend == ANC_BACKEND_AUTO && mi.backend && strcmp(mi.backend, "cpu") != 0)
        fprintf(stderr, "ancora: running on the GPU (%s, %s); --backend cpu to use the processor\n",
                mi.device, mi.backend);
    if (mi.backend && strcmp(mi.backend, "cpu") == 0 && o->threads > mi.n_threads)
        fprintf(stderr, "ancora: -t %d: this process may run on %d CPUs; using %d threads\n",
                o->threads, mi.n_threads, mi.n_threads);
    if (o->lora_path) {
        o->lora = anc_lora_load(m, o->lora_path, err, errlen);
        if (!o->lora) {
            anc_model_free(m);
            return NULL;
        }
        o->sess.lora = o->lora;
        adapter_rope(o);
    }
    return m;
}

void cli_model_free(struct cli_opts *o, struct anc_model *m)
{
    anc_lora_free(o->lora);
    o->lora = NULL;
    o->sess.lora = NULL;
    anc_model_free(m);
}

const char *cli_model_path(const struct cli_opts *o)
{
    if (o->model && *o->model) return o->model;
    const char *env = getenv("ANCORA_MODEL");
    if (env && *env) return env;
    static char *def; /* lives as long as the program */
    if (!def) def = userconf_default_model();
    if (def) {
        fprintf(stderr, "ancora: no model given; using the default, %s\n", def);
        return def;
    }
    cli_error("no model given: pass -m FILE.gguf (or set ANCORA_MODEL; scripts/fetch-models "
              "installs the default model)");
    return NULL;
}

bool cli_check_context(const struct cli_opts *o)
{
    const struct anc_session_params *p = &o->sess;
    if (p->window > 0 && p->cache != ANC_CACHE_WINDOW && p->n_sink >= p->window) {
        cli_error("--sinks %d must be less than --window %d (the window counts the sinks and the "
                  "token itself)", p->n_sink, p->window);
        return false;
    }
    return true;
}

int cli_option_error(int c, char **argv, const char *cmd)
{
    if (c == ':')
        cli_error("option %s needs a value (see ancora %s --help)", argv[optind - 1], cmd);
    else
        cli_error("unknown option %s (see ancora %s --help)", argv[optind - 1], cmd);
    return EXIT_USAGE;
}

/* "1 15043 3186" -> ids, each checked against the vocabulary. */
int cli_parse_ids(const char *what, const char *list, int32_t n_vocab, int32_t **out, size_t *n_out)
{
    size_t cap = strlen(list) / 2 + 1, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    for (const char *p = list;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= n_vocab || n == cap) {
            cli_error("%s: '%.*s' is not a token id of this vocabulary (0 to %d)", what,
                      (int)strcspn(p, " ,\t\n"), p, n_vocab - 1);
            free(ids);
            return EXIT_USAGE;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (n == 0) {
        cli_error("%s: no ids given", what);
        free(ids);
        return EXIT_USAGE;
    }
    *out = ids;
    *n_out = n;
    return EXIT_OK;
}
