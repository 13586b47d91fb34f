/* cmd_train.c — `ancora train`: fine-tune a model on text files — a LoRA
 * adapter (LongLoRA's recipe: RoPE scaling, LoRA on q/k/v/o, LoRA+, S²-Attn,
 * gradient checkpointing) or every weight — with progress on stderr,
 * checkpoints written atomically every --save-every steps, --resume after
 * a crash or Ctrl-C, and the loss curve at the end (--plot).
 * Engine access via ancora.h only. */
#include <langinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"

static void train_usage(FILE *out)
{
    fputs("Usage: ancora train -m BASE.gguf -f TEXT [-f TEXT ...] -o ADAPTER.gguf --ctx N [options]\n"
          "\n"
          "Fine-tune BASE on the texts: windows of N+1 tokens drawn at random (seeded)\n"
          "from them, each position predicting the next token; AdamW on the mean\n"
          "cross-entropy. By default a LoRA adapter on the attention projections,\n"
          "written in llama.cpp's LoRA GGUF layout (load it with --lora, fold it in\n"
          "with `ancora lora merge`).\n"
          "\n"
          "  -m, --model FILE        the base model (llama family)\n"
          "  -f, --file FILE         training text (repeat for more; '-' = stdin)\n"
          "  -o, --output FILE       the adapter (or with --full, the model) to write\n"
          "      --ctx N             tokens per window (the context to train for)\n"
          "      --rope-scaling T --rope-factor F | --rope-theta X\n"
          "                          the RoPE to train for (as run/ppl take them); stored\n"
          "                          in the adapter, which applies it when loaded\n"
          "      --lora-rank R       (default 8)   --lora-alpha A  (default 16)\n"
          "      --lora-targets L    projections to adapt, from q,k,v,o,gate,up,down\n"
          "                          (default q,k,v,o)\n"
          "      --lora-plus         also train the token embedding and every norm (LoRA+)\n"
          "      --full              train every weight instead (writes a whole model)\n"
          "      --s2-attn           shifted sparse attention while training, groups of\n"
          "                          ctx/4 (--s2-group N to choose; inference stays full)\n"
          "      --checkpointing M   none (default): keep every activation; layer: keep\n"
          "                          each layer's input and recompute the layer in the\n"
          "                          backward pass (less memory, one more forward)\n"
          "      --steps N           optimiser steps (default 100)\n"
          "      --batch N           windows per step (default 1)\n"
          "      --lr X              AdamW learning rate (default 2e-3)\n"
          "      --warmup N          steps of linear warm-up (default 10)\n"
          "      --weight-decay X    (default 0)   --clip X  gradient-norm limit (default 1)\n"
          "      --seed S            A's initial values and the windows drawn (default 1)\n"
          "      --save-every N      write a checkpoint every N steps (default 25) to\n"
          "                          OUTPUT.ckpt (adapter, AdamW state, RNG state, step)\n"
          "      --init ADAPTER      start from this adapter's matrices (same rank, targets\n"
          "                          and alpha) instead of fresh ones\n"
          "      --resume            continue from OUTPUT.ckpt (same settings); the result\n"
          "                          is the same as an uninterrupted run's\n"
          "      --plot              draw the loss curve at the end\n"
          "      --grads-out FILE    developers: write one window's loss and gradients\n"
          "                          (the window: --ids FILE, ctx+1 ids) and stop\n"
          "  -t, --threads N         CPU threads (default: physical cores)\n"
          "      --backend B         cpu (default) or cuda: train on the GPU (auto: the GPU\n"
          "                          when there is one)\n"
          "  -q, --quiet             no progress line\n"
          "  -h, --help              this help\n"
          "\n"
          "Ctrl-C stops after the current step and writes the checkpoint and the\n"
          "adapter. A loss that turns NaN or infinite stops the run and keeps the last\n"
          "good checkpoint.\n",
          out);
}

enum {
    OPT_FILE_T = 3000, OPT_LORA_RANK, OPT_LORA_ALPHA, OPT_LORA_TARGETS, OPT_LORA_PLUS, OPT_FULL,
    OPT_S2, OPT_S2_GROUP, OPT_CKPTING, OPT_STEPS, OPT_BATCH, OPT_LR, OPT_WARMUP, OPT_WD, OPT_CLIP,
    OPT_SAVE_EVERY, OPT_RESUME, OPT_PLOT_T, OPT_GRADS_OUT, OPT_IDS_T, OPT_INIT
};

static volatile sig_atomic_t stop_requested;
static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* "q,k,v,o" -> ANC_TRAIN_* bits; false (with a message) on an unknown name */
static bool parse_targets(const char *s, uint32_t *out)
{
    static const char *const names[] = {"q", "k", "v", "o", "gate", "up", "down"};
    *out = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof *names && !(strlen(names[i]) == n && !strncmp(s, names[i], n))) i++;
        if (i == sizeof names / sizeof *names) {
            cli_error("invalid value for --lora-targets: '%.*s' (choose from q,k,v,o,gate,up,down)", (int)n, s);
            return false;
        }
        *out |= 1u << i;
        s += n + (s[n] == ',');
    }
    return true;
}

struct train_cli {
    struct anc_train_params tp;
    const char *files[64];
    int n_files;
    const char *out, *grads_out, *ids, *init;
    long steps, save_every;
    bool resume, plot, quiet, s2;
};

static int parse_train(int argc, char **argv, struct cli_opts *o, struct train_cli *tc)
{
    static const struct option own[] = {
        {"file", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"lora-rank", required_argument, NULL, OPT_LORA_RANK},
        {"lora-alpha", required_argument, NULL, OPT_LORA_ALPHA},
        {"lora-targets", required_argument, NULL, OPT_LORA_TARGETS},
        {"lora-plus", no_argument, NULL, OPT_LORA_PLUS},
        {"full", no_argument, NULL, OPT_FULL},
        {"s2-attn", no_argument, NULL, OPT_S2},
        {"s2-group", required_argument, NULL, OPT_S2_GROUP},
        {"checkpointing", required_argument, NULL, OPT_CKPTING},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"lr", required_argument, NULL, OPT_LR},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"weight-decay", required_argument, NULL, OPT_WD},
        {"clip", required_argument, NULL, OPT_CLIP},
        {"save-every", required_argument, NULL, OPT_SAVE_EVERY},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"plot", no_argument, NULL, OPT_PLOT_T},
        {"grads-out", required_argument, NULL, OPT_GRADS_OUT},
        {"ids", required_argument, NULL, OPT_IDS_T},
        {"init", required_argument, NULL, OPT_INIT},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    struct option *longopts = cli_merge_longopts(own);
    if (!longopts) return EXIT_RUNTIME;
    int c, rc = EXIT_OK;
    long v;
    opterr = 0;
    optind = 1;
    while (rc == EXIT_OK && (c = getopt_long(argc, argv, ":m:t:f:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (tc->n_files == (int)(sizeof tc->files / sizeof *tc->files)) {
                cli_error("too many -f files (at most 64)");
                rc = EXIT_USAGE;
            } else {
                tc->files[tc->n_files++] = optarg;
            }
            break;
        case 'o': tc->out = optarg; break;
        case OPT_LORA_RANK:
            if (cli_parse_long("--lora-rank", optarg, 1, 4096, &v)) tc->tp.lora_rank = (int32_t)v;
            else rc = EXIT_USAGE;
            break;
        case OPT_LORA_ALPHA:
            if (!cli_parse_float("--lora-alpha", optarg, 1e-6, 1e6, &tc->tp.lora_alpha)) rc = EXIT_USAGE;
            break;
        case OPT_LORA_TARGETS:
            if (!parse_targets(optarg, &tc->tp.lora_targets)) rc = EXIT_USAGE;
            break;
        case OPT_LORA_PLUS: tc->tp.lora_plus = true; break;
        case OPT_FULL: tc->tp.full = true; break;
        case OPT_S2: tc->s2 = true; break;
        case OPT_S2_GROUP:
            if (cli_parse_long("--s2-group", optarg, 2, 1 << 20, &v)) {
                tc->tp.s2_group = (int32_t)v;
                tc->s2 = true;
            } else {
                rc = EXIT_USAGE;
            }
            break;
        case OPT_CKPTING:
            if (!strcmp(optarg, "layer")) tc->tp.checkpoint_layers = true;
            else if (!strcmp(optarg, "none")) tc->tp.checkpoint_layers = false;
            else {
                cli_error("invalid value for --checkpointing: '%s' (choose none or layer)", optarg);
                rc = EXIT_USAGE;
            }
            break;
        case OPT_STEPS:
            if (!cli_parse_long("--steps", optarg, 0, 100000000, &tc->steps)) rc = EXIT_USAGE;
            break;
        case OPT_BATCH:
            if (cli_parse_long("--batch", optarg, 1, 65536, &v)) tc->tp.batch = (int32_t)v;
            else rc = EXIT_USAGE;
            break;
        case OPT_LR:
            if (!cli_parse_float("--lr", optarg, 1e-12, 10, &tc->tp.lr)) rc = EXIT_USAGE;
            break;
        case OPT_WARMUP:
            if (cli_parse_long("--warmup", optarg, 0, 100000000, &v)) tc->tp.warmup = (int32_t)v;
            else rc = EXIT_USAGE;
            break;
        case OPT_WD:
            if (!cli_parse_float("--weight-decay", optarg, 0, 10, &tc->tp.weight_decay)) rc = EXIT_USAGE;
            break;
        case OPT_CLIP:
            if (!cli_parse_float("--clip", optarg, 0, 1e9, &tc->tp.clip)) rc = EXIT_USAGE;
            break;
        case OPT_SAVE_EVERY:
            if (!cli_parse_long("--save-every", optarg, 1, 100000000, &tc->save_every)) rc = EXIT_USAGE;
            break;
        case OPT_RESUME: tc->resume = true; break;
        case OPT_PLOT_T: tc->plot = true; break;
        case OPT_GRADS_OUT: tc->grads_out = optarg; break;
        case OPT_IDS_T: tc->ids = optarg; break;
        case OPT_INIT: tc->init = optarg; break;
        case 'q': tc->quiet = true; break;
        case 'h':
        case OPT_HELP:
            train_usage(stdout);
            free(longopts);
            return -1;
        case ':':
        case '?':
            rc = cli_option_error(c, argv, "train");
            break;
        default:
            if (cli_common_option(c, optarg, o) != 1) rc = EXIT_USAGE;
            break;
        }
    }
    free(longopts);
    if (rc == EXIT_OK && optind < argc) {
        cli_error("unexpected argument '%s' (see ancora train --help)", argv[optind]);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && tc->grads_out ? !tc->ids : (!tc->n_files || !tc->out)) {
        cli_error(tc->grads_out ? "--grads-out needs --ids FILE (ctx+1 token ids)"
                                : "train needs -f TEXT and -o OUTPUT (see ancora train --help)");
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && o->sess.ctx <= 0) {
        cli_error("train needs --ctx N, the window it trains at");
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK && tc->tp.s2_group > 0 && (tc->tp.s2_group % 2 || o->sess.ctx % tc->tp.s2_group)) {
        cli_error("the S2-Attn group (%d) must be even and divide --ctx (%d)", tc->tp.s2_group, o->sess.ctx);
        rc = EXIT_USAGE;
    }
    return rc;
}

/* Can files be created next to path (its directory exists and is writable)? */
static bool dir_writable(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return access(".", W_OK) == 0;
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    return access(dir, W_OK) == 0;
}

/* Every -f file, tokenised with BOS, one after the other. */
static int32_t *load_texts(const struct anc_model *m, const struct train_cli *tc, size_t *n_out)
{
    int32_t *all = NULL;
    size_t n = 0;
    char err[ANC_ERR_LEN];
    for (int i = 0; i < tc->n_files; i++) {
        size_t len, nt;
        int32_t *toks;
        char *text = anc_read_file(tc->files[i], &len, err, sizeof err);
        if (!text) {
            cli_error("%s", err);
            free(all);
            return NULL;
        }
        int bad = anc_tokenize(m, text, len, true, &toks, &nt);
        free(text);
        int32_t *grown = bad ? NULL : realloc(all, (n + nt) * sizeof *all);
        if (!grown) {
            cli_error("out of memory reading %s", tc->files[i]);
            free(toks);
            free(all);
            return NULL;
        }
        all = grown;
        memcpy(all + n, toks, nt * sizeof *all);
        n += nt;
        free(toks);
    }
    *n_out = n;
    return all;
}

/* The process's peak resident memory, MiB (Linux: ru_maxrss in KiB). */
static double peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
}

static void fmt_secs(char *buf, size_t cap, double s)
{
    if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static int save_both(struct anc_trainer *tr, const char *out, const char *ckpt, bool ckpt_only)
{
    char err[ANC_ERR_LEN];
    if (anc_trainer_save(tr, ANC_TRAIN_SAVE_CHECKPOINT, ckpt, err, sizeof err) != 0 ||
        (!ckpt_only && anc_trainer_save(tr, ANC_TRAIN_SAVE_ADAPTER, out, err, sizeof err) != 0)) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* The training loop; the trainer and the tokens are the caller's. */
static int train_loop(struct anc_trainer *tr, const struct train_cli *tc, const int32_t *toks, size_t n,
                      const char *ckpt)
{
    struct anc_train_info info;
    anc_trainer_get_info(tr, &info);
    long first = (long)info.step;
    double *losses = calloc((size_t)(tc->steps > 0 ? tc->steps : 1), sizeof *losses);
    if (!losses) {
        cli_error("out of memory");
        return EXIT_RUNTIME;
    }
    bool tty = !tc->quiet && isatty(STDERR_FILENO);
    long every = tc->steps >= 50 ? tc->steps / 50 : 1;
    double t0 = anc_now();
    int rc = EXIT_OK;
    char err[ANC_ERR_LEN], eta[32];
    double t_prev = t0;
    for (long s = first; s < tc->steps && !stop_requested; s++) {
        struct anc_train_step st;
        if (anc_trainer_step(tr, toks, n, &st, err, sizeof err) != 0) {
            if (tty) fputc('\n', stderr);
            cli_error("%s", err);
            cli_error("stopped; the last good checkpoint is %s (--resume continues from it)", ckpt);
            free(losses);
            return EXIT_RUNTIME;
        }
        losses[s] = st.loss;
        double now = anc_now(), el = now - t0, per = el / (double)(s + 1 - first), this_step = now - t_prev;
        t_prev = now;
        double tok_s = (double)(s + 1 - first) * tc->tp.ctx * tc->tp.batch / (el > 0 ? el : 1e-9);
        fmt_secs(eta, sizeof eta, per * (double)(tc->steps - s - 1));
        if (tty || (!tc->quiet && ((s + 1) % every == 0 || s + 1 == tc->steps)))
            fprintf(stderr, "%sstep %ld/%ld  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s (%.2f s/step)  ETA %s  RSS %.0f MiB%s",
                    tty ? "\r" : "", s + 1, tc->steps, st.loss, st.grad_norm, st.lr, tok_s, this_step, eta,
                    peak_rss_mib(), tty ? "   " : "\n");
        if ((s + 1) % tc->save_every == 0 && s + 1 < tc->steps &&
            (rc = save_both(tr, tc->out, ckpt, true)) != EXIT_OK)
            break;
    }
    if (tty) fputc('\n', stderr);
    anc_trainer_get_info(tr, &info);
    if (rc == EXIT_OK) rc = save_both(tr, tc->out, ckpt, false);
    if (rc == EXIT_OK)
        fprintf(stderr, "ancora: %s after step %lld (%.1f s); checkpoint %s\n", tc->out,
                (long long)info.step, anc_now() - t0, ckpt);
    if (rc == EXIT_OK && stop_requested) {
        fprintf(stderr, "ancora: interrupted; --resume continues from step %lld\n", (long long)info.step);
        rc = 130;
    }
    if (rc == EXIT_OK && tc->plot && info.step > first) {
        const char *cs = nl_langinfo(CODESET);
        plot_series(stdout, losses + first, (size_t)(info.step - first), first + 1, 72, 12,
                    "training loss", "step", cs && !strcmp(cs, "UTF-8"));
    }
    free(losses);
    return rc;
}

/* --grads-out: one window's loss and gradients, written for the tests. */
static int grads_only(struct anc_model *m, struct anc_trainer *tr, const struct train_cli *tc)
{
    char err[ANC_ERR_LEN];
    size_t len, n;
    int32_t *ids = NULL;
    char *text = anc_read_file(tc->ids, &len, err, sizeof err);
    if (!text) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    int rc = cli_parse_ids("--ids", text, anc_n_vocab(m), &ids, &n);
    free(text);
    if (rc != EXIT_OK) return rc;
    if (n != (size_t)tc->tp.ctx + 1) {
        cli_error("--ids has %zu ids; --ctx %d needs %d", n, tc->tp.ctx, tc->tp.ctx + 1);
        free(ids);
        return EXIT_USAGE;
    }
    double loss;
    if (anc_trainer_gradients(tr, ids, &loss, err, sizeof err) != 0 ||
        anc_trainer_save(tr, ANC_TRAIN_SAVE_GRADS, tc->grads_out, err, sizeof err) != 0) {
        cli_error("%s", err);
        free(ids);
        return EXIT_RUNTIME;
    }
    printf("loss = %.9f\n", loss);
    free(ids);
    return EXIT_OK;
}

int cmd_train(int argc, char **argv)
{
    struct cli_opts o;
    cli_opts_default(&o);
    o.backend = ANC_BACKEND_CPU; /* the default; an explicit --backend (cuda, auto) overrides it */
    struct train_cli tc = {.steps = 100, .save_every = 25};
    anc_train_params_default(&tc.tp);
    int rc = parse_train(argc, argv, &o, &tc);
    if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
    tc.tp.ctx = o.sess.ctx;
    tc.tp.rope = o.sess.rope;
    if (o.seed_given) tc.tp.seed = o.sess.sampling.seed;
    if (tc.s2 && tc.tp.s2_group == 0) tc.tp.s2_group = tc.tp.ctx / 4 + (tc.tp.ctx / 4) % 2;
    if (tc.tp.s2_group > 0 && (tc.tp.s2_group % 2 || tc.tp.ctx % tc.tp.s2_group)) {
        cli_error("--s2-attn: groups of ctx/4 = %d do not divide --ctx %d evenly; give --s2-group", tc.tp.ctx / 4,
                  tc.tp.ctx);
        return EXIT_USAGE;
    }
    const char *path = cli_model_path(&o);
    if (!path) return EXIT_USAGE;
    char ckpt[4096];
    if (tc.out && snprintf(ckpt, sizeof ckpt, "%s.ckpt", tc.out) >= (int)sizeof ckpt) {
        cli_error("output path too long");
        return EXIT_USAGE;
    }
    if (tc.out && !dir_writable(tc.out)) {
        cli_error("cannot write %s: its directory does not exist or is not writable", tc.out);
        return EXIT_RUNTIME;
    }
    struct stat sb;
    if (tc.resume && stat(ckpt, &sb) != 0) {
        cli_error("--resume: no checkpoint %s to continue from", ckpt);
        return EXIT_RUNTIME;
    }
    char err[ANC_ERR_LEN];
    struct anc_model *m = cli_model_load(&o, path, err, sizeof err);
    if (!m) {
        cli_error("%s", err);
        return EXIT_RUNTIME;
    }
    int32_t *toks = NULL;
    size_t n = 0;
    struct anc_trainer *tr = anc_trainer_new(m, &tc.tp, err, sizeof err);
    if (!tr) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
    } else if (tc.init && !tc.resume && anc_trainer_init_from(tr, tc.init, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
    } else if (tc.grads_out) {
        rc = grads_only(m, tr, &tc);
    } else if (!(toks = load_texts(m, &tc, &n))) {
        rc = EXIT_RUNTIME;
    } else if (n < (size_t)tc.tp.ctx + 1) {
        cli_error("the text has %zu tokens; one window of --ctx %d needs %d", n, tc.tp.ctx, tc.tp.ctx + 1);
        rc = EXIT_RUNTIME;
    } else if (tc.resume && anc_trainer_resume(tr, ckpt, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = EXIT_RUNTIME;
    } else {
        struct anc_train_info info;
        anc_trainer_get_info(tr, &info);
        fprintf(stderr,
                "ancora: training %s%s on %zu tokens: %llu parameters, windows of %d%s\n"
                "ancora: memory: activations kept %.1f MiB (%s), backward scratch %.1f MiB, parameters' gradients + AdamW %.1f MiB\n",
                tc.tp.full ? "every weight" : "a LoRA adapter", tc.tp.lora_plus ? " + embedding and norms" : "",
                n, (unsigned long long)info.n_trainable, tc.tp.ctx, tc.tp.s2_group ? ", S2-Attn" : "",
                info.act_bytes / 1048576.0, tc.tp.checkpoint_layers ? "checkpointing per layer" : "all layers",
                info.scratch_bytes / 1048576.0, info.grad_bytes / 1048576.0);
        if (tc.resume) fprintf(stderr, "ancora: resuming from %s at step %lld\n", ckpt, (long long)info.step);
        struct sigaction sa = {.sa_handler = on_sigint};
        sigaction(SIGINT, &sa, NULL);
        rc = train_loop(tr, &tc, toks, n, ckpt);
    }
    free(toks);
    anc_trainer_free(tr);
    cli_model_free(&o, m);
    return rc;
}
