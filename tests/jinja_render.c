/* jinja_render.c — test helper (not a test): renders conversations through
 * Ancora's Jinja interpreter, for tests/test_jinja_ref.sh to compare with
 * jinja2 (tests/jinja_ref.py). Needs core/ only.
 *
 *   jinja_render [--bos S] [--eos S] [--now EPOCH] [--break] TEMPLATE CONVS
 *       the template file rendered with the given special-token strings
 *   jinja_render [--now EPOCH] [--break] -m MODEL.gguf CONVS
 *       the model file's own tokenizer.chat_template, the way a chat session
 *       renders it (bos/eos strings from the vocabulary)
 *
 * CONVS holds conversations as tests/golden/chat/conversations.txt does.
 * Output, for every conversation, without then with the generation prompt:
 *   "case NAME prompt=0|1 bytes=LEN\n" + LEN bytes + "\n", or
 *   "case NAME prompt=0|1 error\n" when rendering fails (the message goes to
 *   stderr). --break changes one byte of every rendering (the test checks
 *   that a wrong renderer is caught). */
#include "ancora.h"
#include "chat_template.h"
#include "jinja.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 64

struct conv {
    char name[64];
    struct anc_chat_msg msgs[MAX_MSGS];
    char roles[MAX_MSGS][32];
    size_t n;
};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "jinja_render: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

/* Next conversation of b[*pos..len) into c; false at the end. */
static bool next_conv(const char *b, size_t len, size_t *pos, struct conv *c)
{
    char line[256];
    c->n = 0;
    bool in = false;
    while (*pos < len) {
        const char *nl = memchr(b + *pos, '\n', len - *pos);
        size_t n = nl ? (size_t)(nl - (b + *pos)) : len - *pos;
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), b + *pos);
        *pos += n + (nl != NULL);
        if (!in) {
            if (line[0] == '#' || line[0] == '\0') continue;
            if (sscanf(line, "conversation %63s", c->name) != 1) die("bad conversation line", line);
            in = true;
            continue;
        }
        if (strcmp(line, "end") == 0) return true;
        size_t mlen;
        if (c->n == MAX_MSGS || sscanf(line, "message %31s %zu", c->roles[c->n], &mlen) != 2 ||
            mlen > len - *pos)
            die("bad message line", line);
        c->msgs[c->n] = (struct anc_chat_msg){ c->roles[c->n], b + *pos, mlen };
        c->n++;
        *pos += mlen + 1;
    }
    if (in) die("conversation without end", c->name);
    return false;
}

int main(int argc, char **argv)
{
    const char *bos = NULL, *eos = NULL, *model = NULL;
    int64_t now = 0;
    bool broken = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--break") == 0) broken = true;
        else if (i + 1 < argc && strcmp(argv[i], "--bos") == 0) bos = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--eos") == 0) eos = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--now") == 0) now = strtoll(argv[++i], NULL, 10);
        else die("unknown option", argv[i]);
    }
    if (i < argc && strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
        model = argv[i + 1];
        i += 2;
    }
    if (argc - i != (model ? 1 : 2))
        die("usage: jinja_render [--bos S] [--eos S] [--now T] [--break] TEMPLATE|-m MODEL CONVS", NULL);
    char err[512];
    size_t clen, tlen = 0;
    char *convs = anc_read_file(argv[argc - 1], &clen, err, sizeof err);
    if (!convs) die("cannot read conversations", err);

    struct anc_model *m = NULL;
    struct jinja_tpl *tpl = NULL;
    if (model) {
        struct anc_model_params p;
        anc_model_params_default(&p);
        p.vocab_only = true;
        if (!(m = anc_model_load(model, &p, err, sizeof err))) die("cannot load the model", err);
    } else {
        char *src = anc_read_file(argv[i], &tlen, err, sizeof err);
        if (!src) die("cannot read the template", err);
        tpl = jinja_parse(src, tlen, err, sizeof err);
        free(src);
        if (!tpl) fprintf(stderr, "jinja_render: %s: %s\n", argv[i], err);
    }

    size_t pos = 0;
    struct conv c;
    while (next_conv(convs, clen, &pos, &c)) {
        for (int prompt = 0; prompt <= 1; prompt++) {
            size_t len = 0;
            char *text = NULL;
            err[0] = '\0';
            if (model) {
                text = chat_template_file_text(m, c.msgs, c.n, prompt, now, &len, err, sizeof err);
            } else if (tpl) {
                struct jinja_params jp = { .msgs = c.msgs, .n_msgs = c.n,
                                           .add_generation_prompt = prompt, .bos_token = bos,
                                           .eos_token = eos, .now = now };
                text = jinja_render(tpl, &jp, &len, NULL, err, sizeof err);
            }
            if (!text) {
                printf("case %s prompt=%d error\n", c.name, prompt);
                fprintf(stderr, "jinja_render: %s prompt=%d: %s\n", c.name, prompt, err);
                continue;
            }
            if (broken && len > 0) text[len / 2] ^= 0x01;
            printf("case %s prompt=%d bytes=%zu\n", c.name, prompt, len);
            fwrite(text, 1, len, stdout);
            putchar('\n');
            free(text);
        }
    }
    jinja_tpl_free(tpl);
    anc_model_free(m);
    free(convs);
    return 0;
}
