/* cli.c — common options, strict number parsing and error output for the
 * one-shot subcommands (see cli.h). Engine access via ancora.h only. */
#include "cli.h"

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
    {"rope-theta", required_argument, NULL, OPT_ROPE_THETA},
    {"backend", required_argument, NULL, OPT_BACKEND},
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
    case OPT_ROPE_THETA:
        return cli_parse_float("--rope-theta", arg, 1.0001, 1e12, &o->sess.rope_theta) ? 1 : -1;
    case OPT_BACKEND:
        if (strcmp(arg, "cpu") != 0 && strcmp(arg, "auto") != 0) {
            cli_error("backend '%s' is not available in this build (compiled in: %s)", arg,
                      anc_backends_compiled());
            return -1;
        }
        return 1;
    case OPT_VERBOSE:
        o->verbose = true;
        return 1;
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

const char *cli_model_path(const struct cli_opts *o)
{
    if (o->model && *o->model) return o->model;
    const char *env = getenv("ANCORA_MODEL");
    if (env && *env) return env;
    cli_error("no model given: pass -m FILE.gguf (or set ANCORA_MODEL)");
    return NULL;
}
