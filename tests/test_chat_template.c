/* test_chat_template.c — tests of the chat templates (core/chat_template.c):
 * renderings compared byte for byte with tests/golden/chat (made from the
 * official Jinja templates by tests/chat_template_ref.py), token ids checked
 * against the plain tokenizer on real vocabularies and on the Llama-2
 * vocabulary with each family's markers added as control tokens, the same
 * through the file's own template (ANC_TPL_FILE, run by core/jinja.c) and
 * its fallback, family detection, stop tokens and bad input. Needs core/
 * only; no UI libraries. */
#include "ancora.h"
#include "chat_template.h"
#include "gguf.h"
#include "gguf_build.h"
#include "model.h"
#include "test_util.h"
#include "tokenizer.h"

#include <stdint.h>

#define ERR_LEN 512
#define MAX_CONVS 32
#define MAX_MSGS 16
#define MAX_CASES (2 * MAX_CONVS)

/* ---- the golden files ----------------------------------------------------- */

struct conv {
    char name[64];
    struct anc_chat_msg msgs[MAX_MSGS]; /* contents point into the file buffer:
                                           not NUL-terminated, on purpose */
    char roles[MAX_MSGS][32];
    size_t n;
};

struct gcase {
    char conv[64];
    int prompt, strict;
    const char *text; /* into the file buffer */
    size_t len;
};

static struct conv convs[MAX_CONVS];
static size_t n_convs;
static char *conv_buf;

static const char *golden_dir(char *buf, size_t cap)
{
    const char *src = getenv("ANC_SRCDIR");
    snprintf(buf, cap, "%s/tests/golden/chat", src && *src ? src : ".");
    return buf;
}

static char *read_golden(const char *file, size_t *len)
{
    char dir[1024], path[1200], err[ERR_LEN];
    snprintf(path, sizeof path, "%s/%s", golden_dir(dir, sizeof dir), file);
    char *b = anc_read_file(path, len, err, sizeof err);
    if (!b) {
        fprintf(stderr, "cannot read golden file: %s\n", err);
        exit(1);
    }
    return b;
}

/* The next line of b[0..len) from *pos (without its newline) into line. */
static bool next_line(const char *b, size_t len, size_t *pos, char *line, size_t cap)
{
    if (*pos >= len) return false;
    const char *nl = memchr(b + *pos, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - (b + *pos)) : len - *pos;
    snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), b + *pos);
    *pos += n + (nl != NULL);
    return true;
}

static void bad_golden(const char *file, const char *line)
{
    fprintf(stderr, "%s: malformed line \"%s\"\n", file, line);
    exit(1);
}

static void load_conversations(void)
{
    size_t len, pos = 0;
    char line[256];
    conv_buf = read_golden("conversations.txt", &len);
    struct conv *c = NULL;
    while (next_line(conv_buf, len, &pos, line, sizeof line)) {
        char role[32];
        unsigned long n;
        if (line[0] == '#') continue;
        if (strncmp(line, "conversation ", 13) == 0) {
            if (n_convs == MAX_CONVS) bad_golden("conversations.txt", "(too many)");
            c = &convs[n_convs++];
            snprintf(c->name, sizeof c->name, "%.63s", line + 13);
        } else if (c && sscanf(line, "message %31s %lu", role, &n) == 2) {
            if (c->n == MAX_MSGS || n > len - pos || pos + n >= len || conv_buf[pos + n] != '\n')
                bad_golden("conversations.txt", line);
            snprintf(c->roles[c->n], sizeof c->roles[0], "%s", role);
            c->msgs[c->n] = (struct anc_chat_msg){ c->roles[c->n], conv_buf + pos, n };
            c->n++;
            pos += n + 1;
        } else if (strcmp(line, "end") == 0 && c) {
            c = NULL;
        } else {
            bad_golden("conversations.txt", line);
        }
    }
    CHECK(n_convs >= 10);
}

static const struct conv *find_conv(const char *name)
{
    for (size_t i = 0; i < n_convs; i++)
        if (strcmp(convs[i].name, name) == 0) return &convs[i];
    return NULL;
}

/* FAMILY.txt: returns the number of cases; the buffer is kept in *buf. */
static size_t load_cases(const char *family, struct gcase *cases, char **buf)
{
    char file[64], line[256];
    size_t len, pos = 0, n = 0;
    snprintf(file, sizeof file, "%s.txt", family);
    *buf = read_golden(file, &len);
    while (next_line(*buf, len, &pos, line, sizeof line)) {
        if (line[0] == '#') continue;
        struct gcase g;
        unsigned long bytes = 0;
        if (n == MAX_CASES ||
            sscanf(line, "case %63s prompt=%d strict=%d bytes=%lu", g.conv, &g.prompt, &g.strict,
                   &bytes) != 4 ||
            bytes > len - pos || pos + bytes >= len || (*buf)[pos + bytes] != '\n')
            bad_golden(file, line);
        g.text = *buf + pos;
        g.len = bytes;
        pos += bytes + 1;
        cases[n++] = g;
    }
    return n;
}

/* ---- what the test knows of each family (from the documented formats) ---- */

enum { K_TEXT, K_BOS, K_EOS };

struct tmark {
    const char *s;
    int kind; /* K_BOS/K_EOS: falls back to the vocabulary's BOS/EOS id */
};

struct tfamily {
    int tpl;
    const char *name;
    bool vocab_bos;            /* its format writes no BOS: the ids start with
                                  the vocabulary's when add_bos_token is set */
    struct tmark marks[6];     /* the markers its rendering contains */
    const char *extra[6];      /* control tokens its test vocabulary adds */
    const char *bos, *eos, *eot; /* the test vocabulary's special ids (NULL: Llama-2's) */
    bool add_bos;
    const char *stops[6];      /* tokens that must count as the end of a reply */
    const char *not_stops[3];  /* and tokens that must not */
};

static const struct tfamily tfams[] = {
    { ANC_TPL_PLAIN, "plain", true, { { NULL, 0 } }, { NULL }, NULL, NULL, NULL, true,
      { "</s>", NULL }, { "<s>", "\xe2\x96\x81" "Hello", NULL } },
    { ANC_TPL_LLAMA2, "llama2", false,
      { { "<s>", K_BOS }, { "</s>", K_EOS }, { "[INST]", K_TEXT }, { "[/INST]", K_TEXT } },
      { NULL }, NULL, NULL, NULL, true, { "</s>", NULL }, { "<s>", "\xe2\x96\x81[", NULL } },
    { ANC_TPL_LLAMA3, "llama3", false,
      { { "<|begin_of_text|>", K_BOS }, { "<|start_header_id|>", K_TEXT },
        { "<|end_header_id|>", K_TEXT }, { "<|eot_id|>", K_TEXT } },
      { "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eot_id|>", NULL },
      "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", true,
      { "<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>", NULL },
      { "<|begin_of_text|>", "<|end_header_id|>", NULL } },
    { ANC_TPL_CHATML, "chatml", true, { { "<|im_start|>", K_TEXT }, { "<|im_end|>", K_TEXT } },
      { "<|im_start|>", "<|im_end|>", NULL }, NULL, "<|im_end|>", NULL, false,
      { "<|im_end|>", "<|im_start|>", NULL }, { "<s>", NULL } },
    { ANC_TPL_ZEPHYR, "zephyr", true,
      { { "</s>", K_EOS }, { "<|system|>", K_TEXT }, { "<|user|>", K_TEXT },
        { "<|assistant|>", K_TEXT } },
      { "<|system|>", "<|user|>", "<|assistant|>", NULL }, NULL, NULL, NULL, true,
      { "</s>", "<|user|>", "<|assistant|>", NULL }, { "<s>", NULL } },
    { ANC_TPL_MISTRAL, "mistral", false,
      { { "<s>", K_BOS }, { "</s>", K_EOS }, { "[INST]", K_TEXT }, { "[/INST]", K_TEXT } },
      { "[INST]", "[/INST]", NULL }, NULL, NULL, NULL, true, { "</s>", "[INST]", NULL },
      { "[/INST]", "<s>", NULL } },
    { ANC_TPL_GEMMA, "gemma", false,
      { { "<bos>", K_BOS }, { "<start_of_turn>", K_TEXT }, { "<end_of_turn>", K_TEXT } },
      { "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", NULL }, "<bos>", "<eos>", NULL,
      true, { "<end_of_turn>", "<start_of_turn>", "<eos>", NULL }, { "<bos>", NULL } },
    { ANC_TPL_PHI3, "phi3", true,
      { { "<|system|>", K_TEXT }, { "<|user|>", K_TEXT }, { "<|assistant|>", K_TEXT },
        { "<|end|>", K_TEXT }, { "<|endoftext|>", K_EOS } },
      { "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>", NULL }, NULL,
      "<|endoftext|>", "<|end|>", false,
      { "<|end|>", "<|endoftext|>", "<|user|>", "<|assistant|>", NULL }, { "<s>", NULL } },
};
#define N_TFAMS (sizeof tfams / sizeof tfams[0])

/* ---- test vocabularies (written by tests/gguf_build.h) ------------------ */

/* Id of text among the base tokens and the extras (-1 if absent). */
static int32_t id_in(const struct gguf_kv *tokens, const char *const *extra, const char *text)
{
    if (!text) return -1;
    for (uint64_t i = 0; i < tokens->arr_n; i++)
        if (gguf_str_eq(gguf_arr_str(tokens, i), text)) return (int32_t)i;
    for (int k = 0; extra[k]; k++)
        if (strcmp(extra[k], text) == 0) return (int32_t)tokens->arr_n + k;
    return -1;
}

/* Load a vocabulary-only model: Llama-2's vocabulary with f's extra control
 * tokens appended, f's special ids, and the template source (if any) as
 * tokenizer.chat_template. */
static struct anc_model *build_vocab(const struct gguf_file *base, const struct tfamily *f,
                                     const char *tpl_src, size_t tpl_len)
{
    const struct gguf_kv *tokens = gguf_find_kv(base, "tokenizer.ggml.tokens");
    const struct gguf_kv *scores = gguf_find_kv(base, "tokenizer.ggml.scores");
    const struct gguf_kv *types = gguf_find_kv(base, "tokenizer.ggml.token_type");
    if (!tokens || !scores || !types) {
        fprintf(stderr, "the Llama-2 vocabulary lacks its token arrays\n");
        exit(1);
    }
    uint64_t n_extra = 0;
    while (f->extra[n_extra]) n_extra++;
    uint64_t n = tokens->arr_n + n_extra;

    struct gw w = { 0 };
    gw_kv_str(&w, "general.name", f->name);
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_arr(&w, "tokenizer.ggml.tokens", GGUF_VT_STRING, n);
    for (uint64_t i = 0; i < tokens->arr_n; i++) {
        struct gguf_str s = gguf_arr_str(tokens, i);
        gw_strn(&w, s.ptr, (size_t)s.len);
    }
    for (uint64_t k = 0; k < n_extra; k++) gw_str(&w, f->extra[k]);
    gw_kv_arr(&w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, n);
    for (uint64_t i = 0; i < n; i++)
        gw_f32(&w, i < scores->arr_n ? gguf_arr_f32(scores, i) : 0.0f);
    gw_kv_arr(&w, "tokenizer.ggml.token_type", GGUF_VT_INT32, n);
    for (uint64_t i = 0; i < n; i++)
        gw_i32(&w, i < types->arr_n ? gguf_arr_i32(types, i) : TOK_TYPE_CONTROL);
    int32_t bos = f->bos ? id_in(tokens, f->extra, f->bos) : 1;
    int32_t eos = f->eos ? id_in(tokens, f->extra, f->eos) : 2;
    int32_t eot = id_in(tokens, f->extra, f->eot);
    CHECK(bos >= 0 && eos >= 0);
    gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (eot >= 0) gw_kv_u32(&w, "tokenizer.ggml.eot_token_id", (uint32_t)eot);
    gw_kv_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", f->add_bos);
    if (tpl_src) gw_kv_strn(&w, "tokenizer.chat_template", tpl_src, tpl_len);
    size_t len;
    uint8_t *file = gw_file(&w, 0, &len); /* no padding after the key/values */
    gw_free(&w);

    char path[] = "/tmp/anc_chat_vocab_XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!fp) {
        fprintf(stderr, "cannot create a temporary file\n");
        exit(1);
    }
    bool ok = fwrite(file, 1, len, fp) == len;
    ok = fclose(fp) == 0 && ok;
    free(file);
    char err[ERR_LEN];
    struct anc_model_params p;
    anc_model_params_default(&p);
    p.vocab_only = true;
    struct anc_model *m = ok ? anc_model_load(path, &p, err, sizeof err) : NULL;
    unlink(path); /* the mapping stays valid */
    if (!m) {
        fprintf(stderr, "cannot load the %s test vocabulary: %s\n", f->name, ok ? err : "write");
        exit(1);
    }
    return m;
}

static struct anc_model *load_model(const char *file)
{
    char path[1024], err[ERR_LEN];
    struct anc_model_params p;
    anc_model_params_default(&p);
    p.vocab_only = true;
    struct anc_model *m = anc_model_load(test_model_path(path, sizeof path, file), &p, err,
                                         sizeof err);
    if (!m) {
        fprintf(stderr, "cannot load %s: %s\n", file, err);
        exit(1);
    }
    return m;
}

/* ---- expected ids, from the golden text --------------------------------- */

struct ids {
    int32_t *v;
    size_t n, cap;
};

static void ids_push(struct ids *a, int32_t id)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    a->v[a->n++] = id;
}

static void ids_encode(struct ids *a, const struct anc_model *m, const char *s, size_t n)
{
    int32_t *t;
    size_t nt;
    if (n == 0) return;
    CHECK(anc_tokenize(m, s, n, false, &t, &nt) == 0);
    for (size_t i = 0; i < nt; i++) ids_push(a, t[i]);
    free(t);
}

/* The ids the rendering `text` must give on model m: the family's markers
 * that the vocabulary holds as single ids (BOS/EOS markers falling back to
 * the vocabulary's BOS/EOS), everything between them tokenized as plain
 * text. Bytes [skip0, skip1) are a message's content: no markers there. */
static struct ids expected_ids(const struct anc_model *m, const struct tfamily *f,
                               const char *text, size_t len, size_t skip0, size_t skip1)
{
    struct ids a = { 0 };
    const struct tokenizer *t = m->tok;
    if (f->vocab_bos && tokenizer_add_bos(t) && tokenizer_bos(t) >= 0)
        ids_push(&a, tokenizer_bos(t));
    size_t run = 0;
    for (size_t i = 0; i < len;) {
        int32_t id = -1;
        size_t ml = 0;
        for (int k = 0; f->marks[k].s && (i < skip0 || i >= skip1); k++) {
            size_t l = strlen(f->marks[k].s);
            if (l > len - i || memcmp(text + i, f->marks[k].s, l) != 0) continue;
            id = tokenizer_find(t, f->marks[k].s);
            if (id < 0 && f->marks[k].kind == K_BOS) id = tokenizer_bos(t);
            if (id < 0 && f->marks[k].kind == K_EOS) id = tokenizer_eos(t);
            ml = l;
            break;
        }
        if (id < 0) {
            i++;
            continue;
        }
        ids_encode(&a, m, text + run, i - run);
        ids_push(&a, id);
        i += ml;
        run = i;
    }
    ids_encode(&a, m, text + run, len - run);
    return a;
}

static bool same_ids(const char *what, const int32_t *got, size_t n_got, const int32_t *want,
                     size_t n_want)
{
    if (n_got == n_want && (n_got == 0 || memcmp(got, want, n_got * sizeof *got) == 0))
        return true;
    size_t i = 0;
    while (i < n_got && i < n_want && got[i] == want[i]) i++;
    fprintf(stderr, "%s: ids differ at %zu (%zu ids, expected %zu):", what, i, n_got, n_want);
    for (size_t k = i; k < i + 6 && k < n_got; k++) fprintf(stderr, " %d", got[k]);
    fprintf(stderr, " / expected");
    for (size_t k = i; k < i + 6 && k < n_want; k++) fprintf(stderr, " %d", want[k]);
    fputc('\n', stderr);
    test_failures++;
    return false;
}

/* ---- the tests ------------------------------------------------------------ */

/* Text renderings against the goldens, for every family and case. */
static void test_text(void)
{
    for (size_t fi = 0; fi < N_TFAMS; fi++) {
        const struct tfamily *f = &tfams[fi];
        struct gcase cases[MAX_CASES];
        char *buf;
        size_t n = load_cases(f->name, cases, &buf);
        CHECK_MSG(n == 2 * n_convs, "%s.txt has %zu cases for %zu conversations", f->name, n,
                  n_convs);
        for (size_t i = 0; i < n; i++) {
            const struct conv *c = find_conv(cases[i].conv);
            CHECK_MSG(c != NULL, "%s.txt: unknown conversation %s", f->name, cases[i].conv);
            if (!c) continue;
            char *got = anc_chat_render_text(f->tpl, c->msgs, c->n, cases[i].prompt);
            CHECK(got != NULL);
            if (!got) continue;
            size_t gl = strlen(got);
            if (gl != cases[i].len || memcmp(got, cases[i].text, gl) != 0) {
                fprintf(stderr, "%s %s prompt=%d: text differs\n--- expected (%zu bytes)\n%.*s\n"
                                "--- got (%zu bytes)\n%s\n---\n",
                        f->name, c->name, cases[i].prompt, cases[i].len, (int)cases[i].len,
                        cases[i].text, gl, got);
                test_failures++;
            }
            free(got);
        }
        free(buf);
    }
}

/* Ids of every family's golden cases on model m (tpl: the family or AUTO). */
static void check_ids(const struct anc_model *m, const char *vocab, const struct tfamily *f,
                      int tpl)
{
    struct gcase cases[MAX_CASES];
    char *buf, what[256], err[ERR_LEN];
    size_t n = load_cases(f->name, cases, &buf);
    for (size_t i = 0; i < n; i++) {
        const struct conv *c = find_conv(cases[i].conv);
        if (!c) continue;
        /* the conversation whose user types markers: no markers inside it */
        size_t skip0 = 0, skip1 = 0;
        if (strcmp(c->name, "literal_markers") == 0) {
            const struct anc_chat_msg *u = &c->msgs[c->n - 1];
            const char *at = memmem(cases[i].text, cases[i].len, u->content, u->len);
            CHECK(at != NULL);
            if (at) {
                skip0 = (size_t)(at - cases[i].text);
                skip1 = skip0 + u->len;
            }
        }
        struct ids want = expected_ids(m, f, cases[i].text, cases[i].len, skip0, skip1);
        int32_t *got = NULL;
        size_t n_got = 0;
        snprintf(what, sizeof what, "%s on %s (%s) %s prompt=%d", f->name, vocab,
                 tpl == ANC_TPL_AUTO ? "auto" : "named", c->name, cases[i].prompt);
        int rc = anc_chat_render(m, tpl, c->msgs, c->n, cases[i].prompt, &got, &n_got, err,
                                 sizeof err);
        CHECK_MSG(rc == 0, "%s: %s", what, err);
        if (rc == 0) same_ids(what, got, n_got, want.v, want.n);
        free(got);
        free(want.v);
    }
    free(buf);
}

/* The user who types markers, built by hand for ChatML and Llama-3 (not
 * through the golden splitter): each marker's id appears once per turn. */
static void test_literal_by_hand(const struct anc_model *chatml, const struct anc_model *llama3)
{
    const struct conv *c = find_conv("literal_markers");
    CHECK(c != NULL && c->n == 2);
    if (!c) return;
    const struct anc_chat_msg *sys = &c->msgs[0], *user = &c->msgs[1];
    CHECK(memmem(user->content, user->len, "<|im_end|>", 10) != NULL);
    char err[ERR_LEN];

    /* ChatML vocabulary: add_bos_token false, so no BOS */
    int32_t ims = tokenizer_find(chatml->tok, "<|im_start|>");
    int32_t ime = tokenizer_find(chatml->tok, "<|im_end|>");
    struct ids want = { 0 };
    char tmp[1024];
    ids_push(&want, ims);
    snprintf(tmp, sizeof tmp, "system\n%.*s", (int)sys->len, sys->content);
    ids_encode(&want, chatml, tmp, strlen(tmp));
    ids_push(&want, ime);
    ids_encode(&want, chatml, "\n", 1);
    ids_push(&want, ims);
    snprintf(tmp, sizeof tmp, "user\n%.*s", (int)user->len, user->content);
    ids_encode(&want, chatml, tmp, strlen(tmp));
    ids_push(&want, ime);
    ids_encode(&want, chatml, "\n", 1);
    ids_push(&want, ims);
    ids_encode(&want, chatml, "assistant\n", 10);
    int32_t *got;
    size_t n_got, n_ime = 0, n_ctl = 0;
    CHECK(anc_chat_render(chatml, ANC_TPL_CHATML, c->msgs, c->n, true, &got, &n_got, err,
                          sizeof err) == 0);
    same_ids("chatml literal markers by hand", got, n_got, want.v, want.n);
    for (size_t i = 0; i < n_got; i++) {
        n_ime += got[i] == ime;
        n_ctl += tokenizer_token_type(chatml->tok, got[i]) == TOK_TYPE_CONTROL;
    }
    CHECK_INT_EQ(n_ime, 2); /* system and user turns; not the typed one */
    CHECK_INT_EQ(n_ctl, 5); /* 3 x <|im_start|>, 2 x <|im_end|> */
    free(got);
    free(want.v);

    /* Llama-3 vocabulary: BOS written by the format */
    const struct tokenizer *t = llama3->tok;
    int32_t sh = tokenizer_find(t, "<|start_header_id|>"), eh = tokenizer_find(t, "<|end_header_id|>");
    int32_t eot = tokenizer_find(t, "<|eot_id|>");
    want = (struct ids){ 0 };
    ids_push(&want, tokenizer_bos(t));
    ids_push(&want, sh);
    ids_encode(&want, llama3, "system", 6);
    ids_push(&want, eh);
    snprintf(tmp, sizeof tmp, "\n\n%.*s", (int)sys->len, sys->content);
    ids_encode(&want, llama3, tmp, strlen(tmp));
    ids_push(&want, eot);
    ids_push(&want, sh);
    ids_encode(&want, llama3, "user", 4);
    ids_push(&want, eh);
    snprintf(tmp, sizeof tmp, "\n\n%.*s", (int)user->len, user->content);
    ids_encode(&want, llama3, tmp, strlen(tmp));
    ids_push(&want, eot);
    CHECK(anc_chat_render(llama3, ANC_TPL_LLAMA3, c->msgs, c->n, false, &got, &n_got, err,
                          sizeof err) == 0);
    same_ids("llama3 literal markers by hand", got, n_got, want.v, want.n);
    free(got);
    free(want.v);
}

static void test_detect(struct anc_model *const *own, const struct anc_model *spm,
                        const struct anc_model *stories)
{
    for (size_t fi = 0; fi < N_TFAMS; fi++) {
        const struct tfamily *f = &tfams[fi];
        char file[64];
        size_t len;
        snprintf(file, sizeof file, "%s.jinja", f->name);
        char *src = read_golden(file, &len);
        CHECK_MSG(chat_template_detect_source(src, len) == f->tpl, "%s.jinja detected as %s",
                  f->name, anc_template_name(chat_template_detect_source(src, len)));
        free(src);
        /* a file with a template that runs uses it; its family is the fallback */
        int want = f->tpl == ANC_TPL_PLAIN ? ANC_TPL_PLAIN : ANC_TPL_FILE;
        CHECK_MSG(anc_template_detect(own[fi]) == want, "%s vocabulary detected as %s",
                  f->name, anc_template_name(anc_template_detect(own[fi])));
    }
    CHECK_INT_EQ(anc_template_detect(spm), ANC_TPL_PLAIN);     /* no template */
    CHECK_INT_EQ(anc_template_detect(stories), ANC_TPL_PLAIN);
    CHECK_INT_EQ(anc_template_detect(NULL), ANC_TPL_PLAIN);
    CHECK_INT_EQ(chat_template_detect_source(NULL, 0), ANC_TPL_PLAIN);
    CHECK_INT_EQ(chat_template_detect_source("", 0), ANC_TPL_PLAIN);
    CHECK_INT_EQ(chat_template_detect_source("{{ messages }}", 14), ANC_TPL_PLAIN);
    /* the length is honoured: the marker lies past it */
    CHECK_INT_EQ(chat_template_detect_source("{{ x }}<|im_start|>", 7), ANC_TPL_PLAIN);
    /* zephyr closes turns with eos_token, phi3 with <|end|> */
    static const char zephyr[] = "{{ '<|user|>\\n' + m + eos_token }}{{ '<|assistant|>' }}";
    static const char phi3[] = "{{'<|user|>\\n' + m + '<|end|>\\n'}}{{ '<|assistant|>\\n' }}";
    static const char mistral3[] = "{{- \"[INST] \" + m + \"[/INST]\" }}";
    CHECK_INT_EQ(chat_template_detect_source(zephyr, sizeof zephyr - 1), ANC_TPL_ZEPHYR);
    CHECK_INT_EQ(chat_template_detect_source(phi3, sizeof phi3 - 1), ANC_TPL_PHI3);
    CHECK_INT_EQ(chat_template_detect_source(mistral3, sizeof mistral3 - 1), ANC_TPL_MISTRAL);
}

/* ANC_TPL_FILE: a conversation the file's template refuses is rendered by
 * its family, and err says why; a template that runs leaves err empty. */
static void test_file_fallback(const struct anc_model *llama2, const struct anc_model *chatml)
{
    const struct conv *c = find_conv("irregular");
    CHECK(c != NULL);
    if (!c) return;
    char err[ERR_LEN] = "x";
    int32_t *ids, *fam;
    size_t n, nf;
    CHECK(anc_chat_render(llama2, ANC_TPL_FILE, c->msgs, c->n, true, &ids, &n, err, sizeof err) == 0);
    CHECK_MSG(strstr(err, "template error: Conversation roles must alternate") &&
              strstr(err, "llama2 format instead"), "fallback note: %s", err);
    CHECK(anc_chat_render(llama2, ANC_TPL_LLAMA2, c->msgs, c->n, true, &fam, &nf, err, sizeof err) == 0);
    same_ids("llama2 file template falling back", ids, n, fam, nf);
    free(ids);
    free(fam);
    strcpy(err, "x");
    CHECK(anc_chat_render(chatml, ANC_TPL_FILE, c->msgs, c->n, true, &ids, &n, err, sizeof err) == 0);
    CHECK(err[0] == '\0');
    free(ids);
    size_t len;
    char *text = chat_template_file_text(chatml, c->msgs, 1, false, 0, &len, err, sizeof err);
    CHECK(text && strcmp(text, "<|im_start|>user\nfirst<|im_end|>\n") == 0 && len == strlen(text));
    free(text);
    CHECK(chat_template_file_text(llama2, c->msgs, c->n, false, 0, &len, err, sizeof err) == NULL);
    CHECK(strstr(err, "template error") != NULL);
}

static void test_names(void)
{
    for (int t = 0; t < ANC_TPL_COUNT_; t++) {
        CHECK_INT_EQ(anc_template_from_name(anc_template_name(t)), t);
        CHECK(strcmp(anc_template_name(t), t == ANC_TPL_FILE ? "file" : tfams[t].name) == 0);
    }
    CHECK_INT_EQ(anc_template_from_name("jinja"), ANC_TPL_FILE);
    CHECK_INT_EQ(anc_template_from_name("GGUF"), ANC_TPL_FILE);
    CHECK_INT_EQ(anc_template_from_name("ChatML"), ANC_TPL_CHATML);
    CHECK_INT_EQ(anc_template_from_name("tinyllama"), ANC_TPL_ZEPHYR);
    CHECK_INT_EQ(anc_template_from_name("llama-3"), ANC_TPL_LLAMA3);
    CHECK_INT_EQ(anc_template_from_name("vicuna"), -1);
    CHECK_INT_EQ(anc_template_from_name(""), -1);
    CHECK_INT_EQ(anc_template_from_name(NULL), -1);
    CHECK(strcmp(anc_template_name(ANC_TPL_AUTO), "?") == 0);
    CHECK(strcmp(anc_template_name(ANC_TPL_COUNT_), "?") == 0);
}

static void test_stops(struct anc_model *const *own, const struct anc_model *spm)
{
    for (size_t fi = 0; fi < N_TFAMS; fi++) {
        const struct tfamily *f = &tfams[fi];
        const struct anc_model *m = own[fi];
        for (int k = 0; f->stops[k]; k++) {
            int32_t id = tokenizer_find(m->tok, f->stops[k]);
            CHECK_MSG(id >= 0, "%s: %s missing from its vocabulary", f->name, f->stops[k]);
            CHECK_MSG(anc_template_is_stop(m, f->tpl, id), "%s: %s is no stop", f->name,
                      f->stops[k]);
            CHECK_MSG(anc_template_is_stop(m, ANC_TPL_AUTO, id), "%s: %s is no stop (auto)",
                      f->name, f->stops[k]);
        }
        for (int k = 0; f->not_stops[k]; k++) {
            int32_t id = tokenizer_find(m->tok, f->not_stops[k]);
            CHECK_MSG(id >= 0, "%s: %s missing from its vocabulary", f->name, f->not_stops[k]);
            CHECK_MSG(!anc_template_is_stop(m, f->tpl, id), "%s: %s is a stop", f->name,
                      f->not_stops[k]);
        }
        CHECK(anc_template_is_stop(m, f->tpl, tokenizer_eos(m->tok)));
        CHECK(!anc_template_is_stop(m, f->tpl, -1));
        CHECK(!anc_template_is_stop(m, f->tpl, tokenizer_n_vocab(m->tok)));
    }
    /* a marker of another family is no stop; a vocabulary without markers
       stops on EOS alone */
    const struct anc_model *chatml = own[ANC_TPL_CHATML];
    CHECK(!anc_template_is_stop(chatml, ANC_TPL_PLAIN,
                                tokenizer_find(chatml->tok, "<|im_start|>")));
    CHECK(anc_template_is_stop(spm, ANC_TPL_CHATML, 2));
    CHECK(!anc_template_is_stop(spm, ANC_TPL_CHATML, 1));
    CHECK(!anc_template_is_stop(NULL, ANC_TPL_CHATML, 2));
    CHECK(!anc_template_is_stop(spm, 99, 1));
}

/* The plain template on the story model: a lone user message is just its
 * text after BOS -- the prompt of the stories260K golden case. */
static void test_plain_stories(const struct anc_model *stories)
{
    struct anc_chat_msg u = { "user", "Once upon a time", 16 };
    const int32_t want[] = { 1, 403, 407, 261, 378 }; /* tests/golden/stories260K_greedy_prompt.prompt */
    int32_t *got;
    size_t n;
    char err[ERR_LEN];
    CHECK(anc_chat_render(stories, ANC_TPL_AUTO, &u, 1, true, &got, &n, err, sizeof err) == 0);
    same_ids("plain on stories260K", got, n, want, 5);
    free(got);
}

static void test_bad_input(const struct anc_model *m, const struct anc_model *chatml)
{
    char err[ERR_LEN];
    int32_t dummy = 0, *ids = &dummy; /* must be reset */
    size_t n = 7;
    struct anc_chat_msg ok = { "user", "hi", 2 };

    err[0] = '\0';
    CHECK(anc_chat_render(NULL, ANC_TPL_CHATML, &ok, 1, true, &ids, &n, err, sizeof err) == -1);
    CHECK(ids == NULL && n == 0 && err[0]);
    err[0] = '\0';
    CHECK(anc_chat_render(m, 42, &ok, 1, true, &ids, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "chat template") != NULL);
    CHECK(anc_chat_render(m, ANC_TPL_COUNT_, &ok, 1, true, &ids, &n, err, sizeof err) == -1);
    struct anc_chat_msg no_role = { NULL, "hi", 2 };
    err[0] = '\0';
    CHECK(anc_chat_render(m, ANC_TPL_CHATML, &no_role, 1, true, &ids, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "role") != NULL);
    struct anc_chat_msg no_content = { "user", NULL, 3 };
    CHECK(anc_chat_render(m, ANC_TPL_CHATML, &no_content, 1, true, &ids, &n, err, sizeof err) ==
          -1);
    CHECK(anc_chat_render(m, ANC_TPL_CHATML, NULL, 2, true, &ids, &n, err, sizeof err) == -1);
    CHECK(anc_chat_render_text(ANC_TPL_AUTO, &ok, 1, true) == NULL);
    CHECK(anc_chat_render_text(ANC_TPL_COUNT_, &ok, 1, true) == NULL);
    CHECK(anc_chat_render_text(ANC_TPL_CHATML, &no_role, 1, true) == NULL);
    CHECK(anc_chat_render(m, ANC_TPL_CHATML, &ok, 1, true, &ids, &n, NULL, 0) == 0); /* no err */
    free(ids);

    /* NULL content with length 0 is an empty message */
    struct anc_chat_msg empty = { "user", NULL, 0 };
    char *text = anc_chat_render_text(ANC_TPL_CHATML, &empty, 1, false);
    CHECK(text && strcmp(text, "<|im_start|>user\n<|im_end|>\n") == 0);
    free(text);

    /* no messages: the prompt alone, or nothing (still an array / a string) */
    text = anc_chat_render_text(ANC_TPL_CHATML, NULL, 0, true);
    CHECK(text && strcmp(text, "<|im_start|>assistant\n") == 0);
    free(text);
    text = anc_chat_render_text(ANC_TPL_LLAMA2, NULL, 0, true);
    CHECK(text && text[0] == '\0');
    free(text);
    CHECK(anc_chat_render(m, ANC_TPL_LLAMA2, NULL, 0, true, &ids, &n, err, sizeof err) == 0);
    CHECK(ids != NULL && n == 0);
    free(ids);
    CHECK(anc_chat_render(chatml, ANC_TPL_CHATML, NULL, 0, true, &ids, &n, err, sizeof err) == 0);
    CHECK(n >= 2 && ids[0] == tokenizer_find(chatml->tok, "<|im_start|>"));
    free(ids);

    /* only len bytes of a content are read */
    static const char longer[] = "HelloXXXX";
    struct anc_chat_msg part = { "user", longer, 5 };
    text = anc_chat_render_text(ANC_TPL_CHATML, &part, 1, false);
    CHECK(text && strcmp(text, "<|im_start|>user\nHello<|im_end|>\n") == 0);
    free(text);

    /* any bytes: invalid UTF-8, NUL, a cut-off multibyte character, lone
       continuation bytes next to the whitespace that strip looks for */
    static const char junk[] = "\xff\xfe\x00 a\xe3\x80 \xc2 \x80\xa0\xe3\x80";
    struct anc_chat_msg bad[2] = { { "user", junk, sizeof junk - 1 },
                                   { "assistant", junk, sizeof junk - 1 } };
    for (int t = 0; t < ANC_TPL_COUNT_; t++) {
        CHECK(anc_chat_render(chatml, t, bad, 2, true, &ids, &n, err, sizeof err) == 0);
        free(ids);
        text = anc_chat_render_text(t, bad, 2, true);
        CHECK((text != NULL) == (t != ANC_TPL_FILE)); /* the file's template needs a model */
        free(text);
    }
    struct ids want = { 0 };
    ids_push(&want, tokenizer_find(chatml->tok, "<|im_start|>"));
    char tmp[64];
    memcpy(tmp, "user\n", 5);
    memcpy(tmp + 5, junk, sizeof junk - 1);
    ids_encode(&want, chatml, tmp, 5 + sizeof junk - 1);
    ids_push(&want, tokenizer_find(chatml->tok, "<|im_end|>"));
    ids_encode(&want, chatml, "\n", 1);
    CHECK(anc_chat_render(chatml, ANC_TPL_CHATML, bad, 1, false, &ids, &n, err, sizeof err) == 0);
    same_ids("chatml with invalid UTF-8", ids, n, want.v, want.n);
    free(ids);
    free(want.v);

    /* trimming that reaches an incomplete character stops there */
    static const char cut[] = "\x80\x80 x \xe3\x80";
    struct anc_chat_msg cutm = { "user", cut, sizeof cut - 1 };
    text = anc_chat_render_text(ANC_TPL_GEMMA, &cutm, 1, false);
    CHECK(text && strcmp(text, "<bos><start_of_turn>user\n\x80\x80 x \xe3\x80<end_of_turn>\n") == 0);
    free(text);
}

/* A long conversation: many messages, large contents. */
static void test_long(const struct anc_model *chatml)
{
    enum { N = 400, LEN = 3000 };
    struct anc_chat_msg *msgs = calloc(N, sizeof *msgs);
    char *body = malloc(LEN);
    CHECK(msgs && body);
    if (!msgs || !body) return;
    for (int i = 0; i < LEN; i++) body[i] = "abc \xe4\xb8\xad\n"[i % 7];
    for (int i = 0; i < N; i++)
        msgs[i] = (struct anc_chat_msg){ i % 2 ? "assistant" : "user", body, LEN - (size_t)i };
    char err[ERR_LEN];
    for (int t = 0; t < ANC_TPL_COUNT_; t++) {
        int32_t *ids;
        size_t n;
        CHECK(anc_chat_render(chatml, t, msgs, N, true, &ids, &n, err, sizeof err) == 0);
        CHECK(n > (size_t)N * 100);
        free(ids);
        if (t == ANC_TPL_FILE) continue; /* text needs a model */
        char *text = anc_chat_render_text(t, msgs, N, true);
        CHECK(text && strlen(text) > (size_t)N * (LEN - N) - 1);
        free(text);
    }
    free(msgs);
    free(body);
}

int main(void)
{
    struct anc_model *spm = load_model("ggml-vocab-llama-spm.gguf");
    struct anc_model *stories = load_model("stories260K.gguf");
    load_conversations();

    /* each family's own vocabulary: Llama-2's plus its markers as control
       tokens, with its real template as tokenizer.chat_template (plain: none) */
    struct gguf_file *base = spm->file;
    struct anc_model *own[N_TFAMS];
    for (size_t fi = 0; fi < N_TFAMS; fi++) {
        CHECK_INT_EQ(tfams[fi].tpl, (int)fi);
        char file[64];
        size_t len = 0;
        char *src = NULL;
        if (tfams[fi].tpl != ANC_TPL_PLAIN) {
            snprintf(file, sizeof file, "%s.jinja", tfams[fi].name);
            src = read_golden(file, &len);
        }
        own[fi] = build_vocab(base, &tfams[fi], src, len);
        free(src);
    }

    test_names();
    test_text();
    for (size_t fi = 0; fi < N_TFAMS; fi++) {
        check_ids(spm, "llama-spm", &tfams[fi], tfams[fi].tpl);
        check_ids(stories, "stories260K", &tfams[fi], tfams[fi].tpl);
        check_ids(own[fi], "own vocabulary", &tfams[fi], tfams[fi].tpl);
        check_ids(own[fi], "own vocabulary", &tfams[fi], ANC_TPL_AUTO);
        if (tfams[fi].tpl != ANC_TPL_PLAIN)
            check_ids(own[fi], "own vocabulary", &tfams[fi], ANC_TPL_FILE);
    }
    test_file_fallback(own[ANC_TPL_LLAMA2], own[ANC_TPL_CHATML]);
    test_literal_by_hand(own[ANC_TPL_CHATML], own[ANC_TPL_LLAMA3]);
    test_detect(own, spm, stories);
    test_stops(own, spm);
    test_plain_stories(stories);
    test_bad_input(spm, own[ANC_TPL_CHATML]);
    test_long(own[ANC_TPL_CHATML]);

    for (size_t fi = 0; fi < N_TFAMS; fi++) anc_model_free(own[fi]);
    anc_model_free(spm);
    anc_model_free(stories);
    free(conv_buf);
    if (!test_failures) printf("chat templates: all checks passed\n");
    TEST_EXIT();
}
