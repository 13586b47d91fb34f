/* cmd_bench.c — `ancora bench`: prefill (ppN) and decode (tgN) speed, the
 * median and best of several repetitions, like llama.cpp's llama-bench,
 * plus the memory read bandwidth measured in the same run and the share
 * of it decode reaches. Engine access via ancora.h only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void bench_usage(FILE *out)
{
    fputs("Usage: ancora bench -m MODEL [-p N] [-n N] [-t N] [-r REPS] [--json]\n"
          "\n"
          "Measure prompt processing (ppN: N tokens in one go) and text generation\n"
          "(tgN: N tokens one at a time) in tokens/s: median and best of REPS runs,\n"
          "with the memory read bandwidth measured in the same run (on a GPU: the\n"
          "card's bandwidth limit).\n"
          "\n"
          "  -m, --model FILE   GGUF model\n"
          "  -p, --prompt N     prefill tokens (default 512; 0 = skip)\n"
          "  -n, --gen N        decode tokens (default 128; 0 = skip)\n"
          "  -t, --threads N    CPU threads (default: physical cores)\n"
          "  -r, --reps N       repetitions (default 5)\n"
          "      --backend B    auto (a GPU when present), cpu or cuda\n"
          "      --cache POLICY measure under a cache policy (default: full, as llama-bench);\n"
          "                     with --window and --sinks (e.g. sink vs recompute)\n"
          "  -d, --depth N      decode with N tokens already in the cache (default 0)\n"
          "      --latency      print per-token decode latency (median, p99, max)\n"
          "      --no-bandwidth skip the bandwidth measurement\n"
          "      --json         one JSON object on stdout instead of the table\n"
          "      --lora FILE    apply a LoRA adapter; --lora-scale S its strength (default 1)\n"
          "  -h, --help         this help\n",
          out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double best(const double *v, int n)
{
    double b = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > b) b = v[i];
    return b;
}

/* One repetition: tokens/s of prefill (n_pp tokens) or decode (n_tg);
 * lat (optional, n_tg entries) receives each decode step's seconds. */
static int run_once(struct anc_model *m, const struct anc_session_params *sp, const int32_t *toks,
                    int n_pp, int n_tg, int depth, double *pp_rate, double *tg_rate, double *lat)
{
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, sp, err, sizeof err);
    if (!s) {
        cli_error("%s", err);
        return -1;
    }
    int rc = 0;
    if (n_pp > 0) {
        double t0 = anc_now();
        rc = anc_session_feed(s, toks, (size_t)n_pp, err, sizeof err);
        *pp_rate = n_pp / (anc_now() - t0);
        anc_session_reset(s);
    }
    /* decode at a depth: that many tokens already in the cache (untimed) */
    if (rc == 0 && n_tg > 0 && depth > 0) rc = anc_session_feed(s, toks, (size_t)depth, err, sizeof err);
    if (rc == 0 && n_tg > 0) {
        double t0 = anc_now();
        for (int i = 0; i < n_tg && rc == 0; i++) {
            double t1 = anc_now();
            rc = anc_session_feed(s, &toks[depth + i], 1, err, sizeof err);
            if (lat) lat[i] = anc_now() - t1;
        }
        *tg_rate = n_tg / (anc_now() - t0);
    }
    if (rc != 0) cli_error("%s", err);
    anc_session_free(s);
    return rc;
}

static void json_array(const double *v, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++) printf("%s%.3f", i ? ", " : "", v[i]);
    putchar(']');
}

/* JSON string with the escapes the format requires. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int cmd_bench(int argc, char **argv)
{
    enum { OPT_JSON = 5000, OPT_NO_BW, OPT_LATENCY };
    long depth = 0;
    static const struct option own[] = {
        {"prompt", required_argument, NULL, 'p'}, {"gen", required_argument, NULL, 'n'},
        {"reps", required_argument, NULL, 'r'},   {"json", no_argument, NULL, OPT_JSON},
        {"no-bandwidth", no_argument, NULL, OPT_NO_BW},
        {"latency", no_argument, NULL, OPT_LATENCY},
        {"depth", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    struct cli_opts o;
    cli_opts_default(&o);
    long n_pp = 512, n_tg = 128, reps = 5, v;
    bool json = false, bw = true, latency = false, policy_given = false;
    struct option *longopts = cli_merge_longopts(own);
    if (!longopts) return EXIT_RUNTIME;
    int c, rc = EXIT_OK;
    opterr = 0;
    optind = 1;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":m:t:p:n:r:d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_parse_long("--prompt", optarg, 0, 1 << 16, &v)) n_pp = v;
            else rc = EXIT_USAGE;
            break;
        case 'n':
            if (cli_parse_long("--gen", optarg, 0, 1 << 16, &v)) n_tg = v;
            else rc = EXIT_USAGE;
            break;
        case 'd':
            if (cli_parse_long("--depth", optarg, 0, 1 << 20, &v)) depth = v;
            else rc = EXIT_USAGE;
            break;
        case 'r':
            if (cli_parse_long("--reps", optarg, 1, 1000, &v)) reps = v;
            else rc = EXIT_USAGE;
            break;
        case OPT_JSON: json = true; break;
        case OPT_NO_BW: bw = false; break;
        case OPT_LATENCY: latency = true; break;
        case 'h':
        case OPT_HELP:
            bench_usage(stdout);
            free(longopts);
            return EXIT_OK;
        case ':':
        case '?':
            rc = cli_option_error(c, argv, "bench");
            break;
        default:
            if (c == OPT_CACHE) policy_given = true;
            if (cli_common_option(c, optarg, &o) != 1) rc = EXIT_USAGE;
            break;
        }
    }
    free(longopts);
    if (rc == EXIT_OK && !cli_check_context(&o)) rc = EXIT_USAGE;
    if (rc == EXIT_OK && optind < argc) {
        cli_error("unexpected argument '%s'", argv[optind]);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && n_pp == 0 && n_tg == 0) {
        cli_error("nothing to measure: -p and -n are both 0");
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK) return rc;
    const char *path = cli_model_path(&o);
    if (!path) return EXIT_USAGE;

    char err[ANC_ERR_LEN];
    struct anc_model *m = cli_model_load(&o, path, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    struct anc_model_info mi;
    anc_model_get_info(m, &mi);
    /* the threads the CPU backend really runs (it caps -t at the CPUs) */
    int threads = mi.n_threads > 0 && mi.backend && strcmp(mi.backend, "cpu") == 0 ? mi.n_threads
                  : o.threads > 0                                                 ? o.threads
                                                                                  : anc_cpu_count_public();
    /* token ids: a fixed pseudo-random sequence, as llama-bench uses */
    long n_toks = n_pp > depth + n_tg ? n_pp : depth + n_tg;
    int32_t *toks = malloc(sizeof *toks * (size_t)(n_toks + 1));
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg);
    double *lat = calloc((size_t)(n_tg > 0 ? n_tg : 1) * (size_t)reps, sizeof *lat);
    if (!toks || !pp || !tg || !lat) {
        cli_error("out of memory");
        rc = EXIT_RUNTIME;
        goto out;
    }
    uint64_t r = 0x243f6a8885a308d3ull;
    for (long i = 0; i < n_toks; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((r >> 33) % (uint64_t)mi.n_vocab);
    }
    /* by default the dense cache, as llama-bench measures; --cache chooses
       a policy (e.g. sink against recompute at the same --window) */
    struct anc_session_params sp = o.sess;
    if (!policy_given) sp.cache = ANC_CACHE_FULL;
    if (sp.cache == ANC_CACHE_FULL) sp.ctx = (int32_t)(n_toks + 16);
    double dummy;
    if (!json) fprintf(stderr, "ancora: warming up (first pass over the weights)...\n");
    if (run_once(m, &sp, toks, 0, 2, 0, &dummy, &dummy, NULL) != 0) { rc = EXIT_RUNTIME; goto out; }
    for (long i = 0; i < reps; i++) {
        if (run_once(m, &sp, toks, (int)n_pp, (int)n_tg, (int)depth, &pp[i], &tg[i], lat + i * n_tg) != 0) {
            rc = EXIT_RUNTIME;
            goto out;
        }
        if (!json) fprintf(stderr, "\rrepetition %ld/%ld", i + 1, reps);
    }
    if (!json) fputc('\n', stderr);
    /* the bound decode speed is held to: on a GPU its memory's bandwidth
       limit; on the CPU the read bandwidth measured now */
    bool on_gpu = mi.backend && strcmp(mi.backend, "cpu") != 0;
    double gbs = on_gpu ? mi.device_bandwidth_gbs
                        : bw ? anc_measure_read_bandwidth(threads, (size_t)1 << 30, 3) : 0.0;
    double pp_med = n_pp ? median(pp, (int)reps) : 0, tg_med = n_tg ? median(tg, (int)reps) : 0;
    double pp_best = best(pp, (int)reps), tg_best = best(tg, (int)reps);
    double util = gbs > 0 ? (double)mi.decode_bytes * tg_med / (gbs * 1e9) : 0;
    /* per-token decode latency over every step of every repetition */
    size_t n_lat = (size_t)n_tg * (size_t)reps;
    double p50 = 0, p99 = 0, pmax = 0;
    if (n_lat) {
        qsort(lat, n_lat, sizeof *lat, cmp_double);
        p50 = lat[n_lat / 2] * 1e3;
        p99 = lat[(size_t)((double)(n_lat - 1) * 0.99)] * 1e3;
        pmax = lat[n_lat - 1] * 1e3;
    }
    if (json) {
        printf("{\"model\": ");
        json_string(mi.path);
        printf(", \"name\": ");
        json_string(mi.name);
        printf(", \"type\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"threads\": %d, "
               "\"backend\": \"%s\", \"device\": \"%s\", \"isa\": \"%s\", \"reps\": %ld, \"pp\": %ld, \"tg\": %ld, "
               "\"pp_tok_s\": %.3f, \"pp_tok_s_best\": %.3f, \"tg_tok_s\": %.3f, "
               "\"tg_tok_s_best\": %.3f, \"pp_samples\": ",
               mi.weight_type_name, (unsigned long long)mi.weight_bytes,
               (unsigned long long)mi.n_params, threads, mi.backend, mi.device, anc_cpu_isa(), reps,
               n_pp, n_tg, pp_med,
               pp_best, tg_med, tg_best);
        json_array(pp, n_pp ? (int)reps : 0);
        printf(", \"tg_samples\": ");
        json_array(tg, n_tg ? (int)reps : 0);
        printf(", \"decode_bytes\": %llu, \"read_bandwidth_gb_s\": %.2f, "
               "\"decode_bandwidth_util\": %.4f, \"cache\": \"%s\", \"window\": %d, "
               "\"latency_ms_p50\": %.4f, \"latency_ms_p99\": %.4f, \"latency_ms_max\": %.4f, "
               "\"depth\": %ld}\n",
               (unsigned long long)mi.decode_bytes, gbs, util, anc_cache_policy_name(sp.cache),
               sp.cache == ANC_CACHE_FULL ? sp.ctx : sp.window, p50, p99, pmax, depth);
    } else {
        printf("%-32s %10s %8s %-12s %7s %8s %12s %12s\n", "model", "size", "params", "backend",
               "threads", "test", "t/s median", "t/s best");
        char size[32], params[32], be[32];
        snprintf(size, sizeof size, "%.1f MiB", mi.weight_bytes / 1048576.0);
        if (mi.n_params >= 1000000000ull) snprintf(params, sizeof params, "%.2f B", mi.n_params / 1e9);
        else snprintf(params, sizeof params, "%.2f M", mi.n_params / 1e6);
        if (on_gpu)
            snprintf(be, sizeof be, "%s", mi.backend);
        else
            snprintf(be, sizeof be, "cpu (%s)", anc_cpu_isa());
        if (n_pp)
            printf("%-32.32s %10s %8s %-12s %7d %8s %12.2f %12.2f\n", mi.name, size, params, be,
                   threads, "pp", pp_med, pp_best);
        if (n_tg)
            printf("%-32.32s %10s %8s %-12s %7d %8s %12.2f %12.2f\n", mi.name, size, params, be,
                   threads, "tg", tg_med, tg_best);
        char at[48] = "";
        if (depth) snprintf(at, sizeof at, " after %ld cached tokens", depth);
        if (n_pp || depth)
            printf("(pp = %ld tokens in one go, tg = %ld tokens one at a time%s, %ld reps)\n", n_pp,
                   n_tg, at, reps);
        if (latency && n_tg)
            printf("decode latency per token (%s cache, %zu steps): median %.3f ms, p99 %.3f ms, "
                   "max %.3f ms, p99/median %.2f\n", anc_cache_policy_name(sp.cache), n_lat, p50, p99,
                   pmax, p50 > 0 ? p99 / p50 : 0.0);
        if (on_gpu)
            printf("device: %s\n", mi.device);
        if (gbs > 0 && n_tg && on_gpu)
            printf("GPU memory bandwidth limit %.0f GB/s; decode reads %.1f MiB per token: limit "
                   "%.0f tok/s; tg median = %.0f%% of it\n",
                   gbs, mi.decode_bytes / 1048576.0, gbs * 1e9 / (double)mi.decode_bytes, 100.0 * util);
        else if (gbs > 0 && n_tg)
            printf("read bandwidth %.1f GB/s (%d threads); decode reads %.1f MiB per token: limit "
                   "%.1f tok/s; tg median = %.0f%% of it\n",
                   gbs, threads, mi.decode_bytes / 1048576.0, gbs * 1e9 / (double)mi.decode_bytes,
                   100.0 * util);
    }
out:
    free(toks);
    free(pp);
    free(tg);
    free(lat);
    cli_model_free(&o, m);
    return rc;
}
