/* chat_template.c — chat templates: the model file's own Jinja
 * tokenizer.chat_template run by the interpreter in jinja.c (ANC_TPL_FILE,
 * what a session uses by default), and the chat formats of the common model
 * families written out by hand from their published Jinja templates (each
 * renderer names its source) for --template NAME and as the fallback when
 * the file's template cannot be run; rendered as text or as token ids;
 * family detection by markers. Depends on gguf (the template string), the
 * tokenizer and jinja.c.
 *
 * One renderer per family writes a conversation as a sequence of text and
 * markers into a `struct out`. In text mode markers are written out; in
 * token mode text is gathered into a run, and a marker that the vocabulary
 * holds ends the run (encoded as plain text, so nothing in it can become a
 * control token) and adds its single id -- the way a rendered template is
 * tokenized with special tokens split out, except that markers typed inside
 * a message are not split out. Renderers follow the official templates with
 * raise_exception() rendering nothing, so conversations they would refuse
 * still render the same way they would have. The file's template is
 * tokenized the same way: its text is split at the vocabulary's control
 * tokens, except in bytes that came from a message's content (jinja.c
 * marks them). */
#include "chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "jinja.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

/* ---- output: text, or token ids ------------------------------------------ */

enum mark_kind {
    MK_BOS,     /* the family's BOS text; else the vocabulary's BOS id */
    MK_EOS,     /* the family's EOS text; else the vocabulary's EOS id */
    MK_SPECIAL  /* a marker string: its id when the vocabulary has it, else text */
};

struct bytes {
    char *p;
    size_t len, cap;
};

struct out {
    const struct tokenizer *tok; /* NULL: text mode (borrowed) */
    struct bytes text;           /* text mode: everything; token mode: the run */
    int32_t *ids;                /* token mode */
    size_t n_ids, cap_ids;
    bool oom;
};

static void bytes_add(struct bytes *b, const char *s, size_t n, bool *oom)
{
    if (*oom || n == 0) return;
    size_t need;
    if (!anc_add_ok(b->len, n + 1, &need)) {
        *oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (!anc_mul_ok(cap, 2, &cap)) {
                *oom = true;
                return;
            }
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            *oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void out_text(struct out *o, const char *s, size_t n)
{
    bytes_add(&o->text, s, n, &o->oom);
}

static void out_str(struct out *o, const char *s) { out_text(o, s, strlen(s)); }

static void out_id(struct out *o, int32_t id)
{
    if (o->oom) return;
    if (o->n_ids == o->cap_ids) {
        size_t cap = o->cap_ids ? o->cap_ids * 2 : 64, bytes;
        int32_t *p;
        if (!anc_mul_ok(cap, sizeof *p, &bytes) || !(p = realloc(o->ids, bytes))) {
            o->oom = true;
            return;
        }
        o->ids = p;
        o->cap_ids = cap;
    }
    o->ids[o->n_ids++] = id;
}

/* Token mode: encode the gathered run as plain text (no BOS). */
static void out_flush(struct out *o)
{
    if (o->oom || !o->tok || o->text.len == 0) return;
    int32_t *ids = NULL;
    size_t n = 0;
    if (!tokenizer_encode(o->tok, o->text.p, o->text.len, false, &ids, &n)) {
        o->oom = true; /* the encoder fails only for memory */
        return;
    }
    for (size_t i = 0; i < n; i++) out_id(o, ids[i]);
    free(ids);
    o->text.len = 0;
}

/* Id of the exact vocabulary string s, -1 if absent. */
static int32_t vocab_id(const struct tokenizer *t, const char *s)
{
    return tokenizer_find(t, s);
}

static void out_mark(struct out *o, enum mark_kind k, const char *s)
{
    if (!o->tok) {
        out_str(o, s);
        return;
    }
    int32_t id = vocab_id(o->tok, s);
    if (id < 0 && k == MK_BOS) id = tokenizer_bos(o->tok);
    if (id < 0 && k == MK_EOS) id = tokenizer_eos(o->tok);
    if (id >= 0) {
        out_flush(o);
        out_id(o, id);
    } else if (k == MK_SPECIAL) {
        out_str(o, s); /* not a token here: it is text like the rest */
    }
    /* a BOS/EOS the vocabulary does not have at all is left out */
}

/* ---- message helpers ----------------------------------------------------- */

static bool role_is(const struct anc_chat_msg *m, const char *role)
{
    return strcmp(m->role, role) == 0;
}

static void out_content(struct out *o, const struct anc_chat_msg *m)
{
    out_text(o, m->content, m->len);
}

/* Python's str.strip() on s[0..*n): moves *s and shrinks *n. */
static void strip(const char **s, size_t *n)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t len = *n, k;
    while (len > 0 && (k = jinja_space_at(p, len)) > 0) {
        p += k;
        len -= k;
    }
    while (len > 0 && (k = jinja_space_before(p, len)) > 0) len -= k;
    *s = (const char *)p;
    *n = len;
}

static void out_stripped(struct out *o, const char *s, size_t n)
{
    strip(&s, &n);
    out_text(o, s, n);
}

/* A leading system message, for the templates that fold it into the first
 * turn: *sys (NULL when msgs[0] is not one); returns the index of the
 * first other message. */
static size_t leading_system(const struct anc_chat_msg *msgs, size_t n,
                             const struct anc_chat_msg **sys)
{
    *sys = n > 0 && role_is(&msgs[0], "system") ? &msgs[0] : NULL;
    return *sys ? 1 : 0;
}

/* "{system}\n\n" as it is, when there is a system message. */
static void out_system_prefix(struct out *o, const struct anc_chat_msg *sys)
{
    if (!sys) return;
    out_content(o, sys);
    out_str(o, "\n\n");
}

/* The "<|user|>"-style mark of the system, user and assistant roles (zephyr
 * and phi3); NULL for the others. */
static const char *role_mark(const struct anc_chat_msg *m)
{
    return role_is(m, "system")      ? "<|system|>"
           : role_is(m, "user")      ? "<|user|>"
           : role_is(m, "assistant") ? "<|assistant|>"
                                     : NULL;
}

/* "{mark}\n{content}{end}\n", end a mark of kind end_kind. */
static void out_marked_turn(struct out *o, const char *mark, const struct anc_chat_msg *m,
                            enum mark_kind end_kind, const char *end)
{
    out_mark(o, MK_SPECIAL, mark);
    out_str(o, "\n");
    out_content(o, m);
    out_mark(o, end_kind, end);
    out_str(o, "\n");
}

/* ---- the families -------------------------------------------------------- */

/* meta-llama/Llama-2-7b-chat-hf: the first message, if system, goes inside
 * the first turn as "<<SYS>>\n{system}\n<</SYS>>\n\n"; each user turn is
 * "<s>[INST] {strip(content)} [/INST]", each assistant turn
 * " {strip(content)} </s>". The system block and the content are stripped
 * together; other roles are left out; no assistant prompt of its own. */
static void render_llama2(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    (void)prompt;
    const struct anc_chat_msg *sys;
    size_t first = leading_system(msgs, n, &sys);
    struct bytes c = { 0 };
    for (size_t i = first; i < n && !o->oom; i++) {
        const struct anc_chat_msg *m = &msgs[i];
        bool user = role_is(m, "user");
        if (!user && !role_is(m, "assistant")) continue;
        c.len = 0;
        if (i == first && sys) {
            bytes_add(&c, "<<SYS>>\n", 8, &o->oom);
            bytes_add(&c, sys->content, sys->len, &o->oom);
            bytes_add(&c, "\n<</SYS>>\n\n", 11, &o->oom);
        }
        bytes_add(&c, m->content, m->len, &o->oom);
        if (o->oom) break;
        if (user) {
            out_mark(o, MK_BOS, "<s>");
            out_mark(o, MK_SPECIAL, "[INST]");
            out_str(o, " ");
            out_stripped(o, c.p, c.len);
            out_str(o, " ");
            out_mark(o, MK_SPECIAL, "[/INST]");
        } else {
            out_str(o, " ");
            out_stripped(o, c.p, c.len);
            out_str(o, " ");
            out_mark(o, MK_EOS, "</s>");
        }
    }
    free(c.p);
}

/* meta-llama/Meta-Llama-3-8B-Instruct: "<|begin_of_text|>" before the first
 * message, then per message "<|start_header_id|>{role}<|end_header_id|>\n\n"
 * "{trim(content)}<|eot_id|>"; the prompt is the assistant's header. */
static void render_llama3(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    for (size_t i = 0; i < n; i++) {
        if (i == 0) out_mark(o, MK_BOS, "<|begin_of_text|>");
        out_mark(o, MK_SPECIAL, "<|start_header_id|>");
        out_str(o, msgs[i].role);
        out_mark(o, MK_SPECIAL, "<|end_header_id|>");
        out_str(o, "\n\n");
        out_stripped(o, msgs[i].content, msgs[i].len);
        out_mark(o, MK_SPECIAL, "<|eot_id|>");
    }
    if (prompt) {
        out_mark(o, MK_SPECIAL, "<|start_header_id|>");
        out_str(o, "assistant");
        out_mark(o, MK_SPECIAL, "<|end_header_id|>");
        out_str(o, "\n\n");
    }
}

/* teknium/OpenHermes-2.5-Mistral-7B (ChatML): per message
 * "<|im_start|>{role}\n{content}<|im_end|>\n"; prompt "<|im_start|>assistant\n". */
static void render_chatml(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    for (size_t i = 0; i < n; i++) {
        out_mark(o, MK_SPECIAL, "<|im_start|>");
        out_str(o, msgs[i].role);
        out_str(o, "\n");
        out_content(o, &msgs[i]);
        out_mark(o, MK_SPECIAL, "<|im_end|>");
        out_str(o, "\n");
    }
    if (prompt) {
        out_mark(o, MK_SPECIAL, "<|im_start|>");
        out_str(o, "assistant\n");
    }
}

/* TinyLlama/TinyLlama-1.1B-Chat-v1.0 (= HuggingFaceH4/zephyr-7b-beta):
 * "<|{role}|>\n{content}</s>\n" for system, user and assistant (others are
 * left out); the prompt "<|assistant|>\n" follows the last message only (an
 * empty conversation renders nothing). */
static void render_zephyr(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    for (size_t i = 0; i < n; i++) {
        const char *mark = role_mark(&msgs[i]);
        if (mark) out_marked_turn(o, mark, &msgs[i], MK_EOS, "</s>");
        if (i + 1 == n && prompt) {
            out_mark(o, MK_SPECIAL, "<|assistant|>");
            out_str(o, "\n");
        }
    }
}

/* mistralai/Mistral-7B-Instruct-v0.2 (first published template):
 * "<s>" then "[INST] {user} [/INST]" and "{assistant}</s>", contents as
 * they are; a leading system message goes before the first user message
 * with "\n\n", as Mistral's later templates do. Other roles are left out;
 * no assistant prompt of its own. */
static void render_mistral(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    (void)prompt;
    const struct anc_chat_msg *sys;
    size_t first = leading_system(msgs, n, &sys);
    out_mark(o, MK_BOS, "<s>");
    for (size_t i = first; i < n; i++) {
        const struct anc_chat_msg *m = &msgs[i];
        if (role_is(m, "user")) {
            out_mark(o, MK_SPECIAL, "[INST]");
            out_str(o, " ");
            if (i == first) out_system_prefix(o, sys);
            out_content(o, m);
            out_str(o, " ");
            out_mark(o, MK_SPECIAL, "[/INST]");
        } else if (role_is(m, "assistant")) {
            out_content(o, m);
            out_mark(o, MK_EOS, "</s>");
        }
    }
}

/* google/gemma-3-1b-it: "<bos>", then per message
 * "<start_of_turn>{role}\n{trim(content)}<end_of_turn>\n" with "assistant"
 * called "model"; a leading system message is not a turn: its text and
 * "\n\n" (untrimmed) open the first turn. Prompt "<start_of_turn>model\n". */
static void render_gemma(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    const struct anc_chat_msg *sys;
    size_t first = leading_system(msgs, n, &sys);
    out_mark(o, MK_BOS, "<bos>");
    for (size_t i = first; i < n; i++) {
        const struct anc_chat_msg *m = &msgs[i];
        out_mark(o, MK_SPECIAL, "<start_of_turn>");
        out_str(o, role_is(m, "assistant") ? "model" : m->role);
        out_str(o, "\n");
        if (i == first) out_system_prefix(o, sys);
        out_stripped(o, m->content, m->len);
        out_mark(o, MK_SPECIAL, "<end_of_turn>");
        out_str(o, "\n");
    }
    if (prompt) {
        out_mark(o, MK_SPECIAL, "<start_of_turn>");
        out_str(o, "model\n");
    }
}

/* microsoft/Phi-3.5-mini-instruct: "<|{role}|>\n{content}<|end|>\n" for user,
 * assistant and non-empty system messages (others are left out); then the
 * prompt "<|assistant|>\n", or without it the EOS "<|endoftext|>". */
static void render_phi3(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    for (size_t i = 0; i < n; i++) {
        const struct anc_chat_msg *m = &msgs[i];
        const char *mark = role_is(m, "system") && m->len == 0 ? NULL : role_mark(m);
        if (mark) out_marked_turn(o, mark, m, MK_SPECIAL, "<|end|>");
    }
    if (prompt) {
        out_mark(o, MK_SPECIAL, "<|assistant|>");
        out_str(o, "\n");
    } else {
        out_mark(o, MK_EOS, "<|endoftext|>");
    }
}

/* Ancora's transcript for base models (tests/chat_template_ref.py holds the
 * same as Jinja): a continuation, so each turn only appends to the text
 * before it, as a streaming cache needs. "{system}\n\n" (skipped when
 * empty), then the contents in order: a reply continues the text before it
 * directly, any other message starts on a new line. No prompt is added (a
 * story model given "Once upon a time" just goes on). */
static void render_plain(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt)
{
    (void)prompt;
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        const struct anc_chat_msg *m = &msgs[i];
        if (role_is(m, "system")) {
            if (m->len == 0) continue;
            out_content(o, m);
            out_str(o, "\n\n");
            continue;
        }
        if (started && !role_is(m, "assistant")) out_str(o, "\n");
        out_content(o, m);
        started = true;
    }
}

/* Markers that end an assistant turn (besides the vocabulary's EOS/EOT):
 * the family's end-of-turn and end-of-text tokens, and the tokens that
 * start another turn -- a model that writes one has finished its reply. */
static const char *const stops_none[] = { NULL };
static const char *const stops_llama2[] = { "</s>", "[INST]", NULL };
static const char *const stops_llama3[] = { "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
                                            "<|start_header_id|>", NULL };
static const char *const stops_chatml[] = { "<|im_end|>", "<|im_start|>", "<|endoftext|>", NULL };
static const char *const stops_zephyr[] = { "</s>", "<|user|>", "<|system|>", "<|assistant|>",
                                            NULL };
static const char *const stops_gemma[] = { "<end_of_turn>", "<start_of_turn>", "<eos>", NULL };
static const char *const stops_phi3[] = { "<|end|>", "<|endoftext|>", "<|user|>", "<|system|>",
                                          "<|assistant|>", NULL };

struct family {
    const char *name;
    void (*render)(struct out *o, const struct anc_chat_msg *msgs, size_t n, bool prompt);
    bool vocab_bos;                /* the format has no BOS: put the vocabulary's
                                      first when add_bos_token says so */
    const char *const *stops;
};

static const struct family families[ANC_TPL_COUNT_] = {
    [ANC_TPL_PLAIN] = { "plain", render_plain, true, stops_none },
    [ANC_TPL_LLAMA2] = { "llama2", render_llama2, false, stops_llama2 },
    [ANC_TPL_LLAMA3] = { "llama3", render_llama3, false, stops_llama3 },
    [ANC_TPL_CHATML] = { "chatml", render_chatml, true, stops_chatml },
    [ANC_TPL_ZEPHYR] = { "zephyr", render_zephyr, true, stops_zephyr },
    [ANC_TPL_MISTRAL] = { "mistral", render_mistral, false, stops_llama2 },
    [ANC_TPL_GEMMA] = { "gemma", render_gemma, false, stops_gemma },
    [ANC_TPL_PHI3] = { "phi3", render_phi3, true, stops_phi3 },
    [ANC_TPL_FILE] = { "file", NULL, false, stops_none }, /* chat_template.c's Jinja path */
};

/* ---- names and detection ------------------------------------------------- */

static bool check_msgs(const struct anc_chat_msg *msgs, size_t n, char *err, size_t errlen);

const char *anc_template_name(int tpl)
{
    return tpl >= 0 && tpl < ANC_TPL_COUNT_ ? families[tpl].name : "?";
}

int anc_template_from_name(const char *name)
{
    static const struct { const char *alias; int tpl; } aliases[] = {
        { "llama-2", ANC_TPL_LLAMA2 },
        { "llama-3", ANC_TPL_LLAMA3 },
        { "tinyllama", ANC_TPL_ZEPHYR },
        { "phi-3", ANC_TPL_PHI3 },
        { "jinja", ANC_TPL_FILE },
        { "gguf", ANC_TPL_FILE },
    };
    if (!name) return -1;
    for (int t = 0; t < ANC_TPL_COUNT_; t++)
        if (strcasecmp(name, families[t].name) == 0) return t;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0) return aliases[i].tpl;
    return -1;
}

static bool has(const char *src, size_t len, const char *needle)
{
    return memmem(src, len, needle, strlen(needle)) != NULL;
}

int chat_template_detect_source(const char *src, size_t len)
{
    if (!src || len == 0) return ANC_TPL_PLAIN;
    /* most specific markers first: a Llama-3 or ChatML template may also
       mention [INST] or <|assistant|> in a comment or a branch */
    if (has(src, len, "<|start_header_id|>")) return ANC_TPL_LLAMA3;
    if (has(src, len, "<|im_start|>")) return ANC_TPL_CHATML;
    if (has(src, len, "<start_of_turn>")) return ANC_TPL_GEMMA;
    /* Phi-3 closes turns with <|end|>; Zephyr/TinyLlama with eos_token (</s>) */
    if (has(src, len, "<|assistant|>"))
        return has(src, len, "<|end|>") ? ANC_TPL_PHI3 : ANC_TPL_ZEPHYR;
    if (has(src, len, "[INST]"))
        return has(src, len, "<<SYS>>") ? ANC_TPL_LLAMA2 : ANC_TPL_MISTRAL;
    return ANC_TPL_PLAIN;
}

/* The file's tokenizer.chat_template (false if none or empty). */
static bool file_template(const struct anc_model *m, const char **src, size_t *len)
{
    struct gguf_str s;
    if (!m || !m->file || !gguf_get_str(m->file, "tokenizer.chat_template", &s) || s.len == 0)
        return false;
    *src = s.ptr;
    *len = (size_t)s.len;
    return true;
}

/* The family the file's template names by its markers (PLAIN if none). */
static int file_family(const struct anc_model *m)
{
    const char *src;
    size_t len;
    return file_template(m, &src, &len) ? chat_template_detect_source(src, len) : ANC_TPL_PLAIN;
}

/* A vocabulary string for bos_token/eos_token (NULL when there is none). */
static const char *special_text(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < tokenizer_n_vocab(t) ? tokenizer_token_text(t, id) : NULL;
}

/* The file's template rendered with the vocabulary's BOS/EOS strings;
 * malloc'ed text (and taint mask), or NULL and why in err. */
static char *file_render(const struct anc_model *m, const struct anc_chat_msg *msgs, size_t n,
                         bool prompt, int64_t now, size_t *len, unsigned char **taint, char *err,
                         size_t errlen)
{
    const char *src;
    size_t src_len;
    char e[400];
    if (!file_template(m, &src, &src_len)) {
        anc_set_err(err, errlen, "the model file has no chat template");
        return NULL;
    }
    struct jinja_tpl *t = jinja_parse(src, src_len, e, sizeof e);
    if (!t) {
        anc_set_err(err, errlen, "the model's chat template: %s", e);
        return NULL;
    }
    struct jinja_params p = { .msgs = msgs, .n_msgs = n, .add_generation_prompt = prompt,
                              .bos_token = special_text(m->tok, tokenizer_bos(m->tok)),
                              .eos_token = special_text(m->tok, tokenizer_eos(m->tok)),
                              .now = now };
    char *text = jinja_render(t, &p, len, taint, e, sizeof e);
    jinja_tpl_free(t);
    if (!text) anc_set_err(err, errlen, "the model's chat template: %s", e);
    return text;
}

char *chat_template_file_text(const struct anc_model *m, const struct anc_chat_msg *msgs,
                              size_t n, bool add_assistant_prompt, int64_t now, size_t *len,
                              char *err, size_t errlen)
{
    if (!m || !m->tok) {
        anc_set_err(err, errlen, "no model to render the conversation for");
        return NULL;
    }
    if (!check_msgs(msgs, n, err, errlen)) return NULL;
    return file_render(m, msgs, n, add_assistant_prompt, now, len, NULL, err, errlen);
}

int anc_template_detect(const struct anc_model *m)
{
    const char *src;
    size_t len;
    if (!m || !m->tok || !file_template(m, &src, &len)) return ANC_TPL_PLAIN;
    /* the file's template, if it runs on a one-line conversation */
    static const struct anc_chat_msg hi = { "user", "Hi", 2 };
    size_t n;
    char *text = file_render(m, &hi, 1, true, -1, &n, NULL, NULL, 0);
    free(text);
    return text ? ANC_TPL_FILE : chat_template_detect_source(src, len);
}

/* ---- rendering ----------------------------------------------------------- */

static bool check_msgs(const struct anc_chat_msg *msgs, size_t n, char *err, size_t errlen)
{
    if (n > 0 && !msgs) {
        anc_set_err(err, errlen, "no messages to render (NULL with n = %zu)", n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) {
            anc_set_err(err, errlen, "message %zu of the conversation has no role", i + 1);
            return false;
        }
        if (!msgs[i].content && msgs[i].len > 0) {
            anc_set_err(err, errlen, "message %zu of the conversation has no content", i + 1);
            return false;
        }
    }
    return true;
}

/* The same messages with content never NULL (renderers may then pass it on). */
static struct anc_chat_msg *copy_msgs(const struct anc_chat_msg *msgs, size_t n)
{
    struct anc_chat_msg *c = calloc(n ? n : 1, sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) {
        c[i] = msgs[i];
        if (!c[i].content) c[i].content = "";
    }
    return c;
}

/* ---- the file's template as token ids ------------------------------------ */

struct ctl {
    const char *s;
    size_t len;
    int32_t id;
};

/* First byte, then the longest first: the order splitting tries them in. */
static int ctl_cmp(const void *a, const void *b)
{
    const struct ctl *x = a, *y = b;
    unsigned char cx = (unsigned char)x->s[0], cy = (unsigned char)y->s[0];
    if (cx != cy) return cx < cy ? -1 : 1;
    return (x->len < y->len) - (x->len > y->len);
}

/* The vocabulary's control tokens (malloc'ed, sorted by ctl_cmp); *n = 0
 * and NULL when there are none, *oom on failure. */
static struct ctl *control_tokens(const struct tokenizer *t, size_t *n, bool *oom)
{
    size_t k = 0, cap = 0;
    struct ctl *v = NULL;
    *n = 0;
    for (int32_t id = 0; id < tokenizer_n_vocab(t); id++) {
        if (tokenizer_token_type(t, id) != TOK_TYPE_CONTROL) continue;
        const char *s = tokenizer_token_text(t, id);
        if (!s || !s[0]) continue;
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct ctl *p = realloc(v, nc * sizeof *p);
            if (!p) {
                free(v);
                *oom = true;
                return NULL;
            }
            v = p;
            cap = nc;
        }
        v[k++] = (struct ctl){ s, strlen(s), id };
    }
    if (k) qsort(v, k, sizeof *v, ctl_cmp);
    *n = k;
    return v;
}

/* The control token that starts at text[i] with none of its bytes from a
 * message (the longest one), or NULL. */
static const struct ctl *control_at(const struct ctl *v, size_t n, const char *text,
                                    const unsigned char *taint, size_t len, size_t i)
{
    /* binary search for the first token with this first byte */
    unsigned char c = (unsigned char)text[i];
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((unsigned char)v[mid].s[0] < c) lo = mid + 1;
        else hi = mid;
    }
    for (size_t k = lo; k < n && (unsigned char)v[k].s[0] == c; k++) {
        if (v[k].len > len - i || memcmp(text + i, v[k].s, v[k].len) != 0) continue;
        size_t j = 0;
        while (j < v[k].len && !taint[i + j]) j++;
        if (j == v[k].len) return &v[k];
    }
    return NULL;
}

/* Does the template write BOS itself (then no BOS is added in front)? */
static bool template_writes_bos(const struct anc_model *m)
{
    const char *src, *bos = special_text(m->tok, tokenizer_bos(m->tok));
    size_t len;
    if (!file_template(m, &src, &len)) return false;
    return has(src, len, "bos_token") || (bos && bos[0] && has(src, len, bos));
}

/* The file's template as ids: 0, or 1 when the template fails (why in err),
 * or -1 for lack of memory. */
static int file_render_ids(const struct anc_model *m, const struct anc_chat_msg *msgs, size_t n,
                           bool prompt, struct out *o, char *err, size_t errlen)
{
    size_t len;
    unsigned char *taint = NULL;
    char *text = file_render(m, msgs, n, prompt, -1, &len, &taint, err, errlen);
    if (!text) return 1;
    size_t n_ctl = 0;
    struct ctl *ctl = control_tokens(m->tok, &n_ctl, &o->oom);
    int32_t bos = tokenizer_bos(m->tok);
    if (tokenizer_add_bos(m->tok) && bos >= 0 && !template_writes_bos(m)) out_id(o, bos);
    for (size_t i = 0; i < len && !o->oom;) {
        const struct ctl *c = taint[i] ? NULL : control_at(ctl, n_ctl, text, taint, len, i);
        if (c) {
            out_flush(o);
            out_id(o, c->id);
            i += c->len;
        } else {
            size_t j = i + 1; /* the run up to the next byte a token could start at */
            while (j < len && taint[j] == taint[i] && taint[i]) j++;
            out_text(o, text + i, j - i);
            i = j;
        }
    }
    out_flush(o);
    free(ctl);
    free(text);
    free(taint);
    return o->oom ? -1 : 0;
}

int anc_chat_render(const struct anc_model *m, int tpl, const struct anc_chat_msg *msgs,
                    size_t n, bool add_assistant_prompt, int32_t **out, size_t *n_out,
                    char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    if (!m || !m->tok) {
        anc_set_err(err, errlen, "no model to render the conversation for");
        return -1;
    }
    if (tpl == ANC_TPL_AUTO) tpl = anc_template_detect(m);
    if (tpl < 0 || tpl >= ANC_TPL_COUNT_) {
        anc_set_err(err, errlen, "unknown chat template %d", tpl);
        return -1;
    }
    if (!check_msgs(msgs, n, err, errlen)) return -1;
    if (err && errlen) err[0] = '\0';
    struct anc_chat_msg *c = copy_msgs(msgs, n);
    struct out o = { .tok = m->tok, .oom = c == NULL };
    if (tpl == ANC_TPL_FILE && c) {
        if (file_render_ids(m, c, n, add_assistant_prompt, &o, err, errlen) == 1) {
            /* the template refused or could not run: its family instead */
            tpl = file_family(m);
            size_t k = err ? strlen(err) : 0;
            if (err && k + 1 < errlen)
                snprintf(err + k, errlen - k, "; rendered in the built-in %s format instead",
                         families[tpl].name);
        }
    }
    if (tpl != ANC_TPL_FILE) {
        int32_t bos = tokenizer_bos(m->tok);
        if (families[tpl].vocab_bos && tokenizer_add_bos(m->tok) && bos >= 0) out_id(&o, bos);
        if (c) families[tpl].render(&o, c, n, add_assistant_prompt);
        out_flush(&o);
    }
    /* an empty rendering is still an array */
    if (!o.oom && !o.ids && !(o.ids = malloc(sizeof *o.ids))) o.oom = true;
    free(c);
    free(o.text.p);
    if (o.oom) {
        free(o.ids);
        anc_set_err(err, errlen, "out of memory rendering the conversation");
        return -1;
    }
    *out = o.ids;
    *n_out = o.n_ids;
    return 0;
}

char *anc_chat_render_text(int tpl, const struct anc_chat_msg *msgs, size_t n,
                           bool add_assistant_prompt)
{
    if (tpl < 0 || tpl >= ANC_TPL_COUNT_ || tpl == ANC_TPL_FILE || !check_msgs(msgs, n, NULL, 0))
        return NULL;
    struct anc_chat_msg *c = copy_msgs(msgs, n);
    if (!c) return NULL;
    struct out o = { .tok = NULL };
    families[tpl].render(&o, c, n, add_assistant_prompt);
    free(c);
    if (!o.oom && !o.text.p) o.text.p = calloc(1, 1); /* empty rendering */
    if (o.oom || !o.text.p) {
        free(o.text.p);
        return NULL;
    }
    return o.text.p;
}

bool anc_template_is_stop(const struct anc_model *m, int tpl, int32_t id)
{
    if (!m || !m->tok || id < 0 || id >= tokenizer_n_vocab(m->tok)) return false;
    if (id == tokenizer_eos(m->tok) || id == tokenizer_eot(m->tok)) return true;
    /* the file's template stops where its family's markers say */
    if (tpl == ANC_TPL_AUTO || tpl == ANC_TPL_FILE) tpl = file_family(m);
    if (tpl < 0 || tpl >= ANC_TPL_COUNT_) return false;
    for (const char *const *s = families[tpl].stops; *s; s++)
        if (vocab_id(m->tok, *s) == id) return true;
    return false;
}

/* ---- what a chat feeds ---------------------------------------------------- */

int anc_chat_turn_tokens(const struct anc_model *m, int tpl, const struct anc_chat_msg *msgs,
                         size_t n, size_t n_before, int32_t **out, size_t *n_out, char *err,
                         size_t errlen)
{
    int32_t *q = NULL, *p = NULL;
    size_t nq = 0, np = 0;
    *out = NULL;
    *n_out = 0;
    if (anc_chat_render(m, tpl, msgs, n, true, &q, &nq, err, errlen) != 0) return -1;
    if (n_before > 0 && anc_chat_render(m, tpl, msgs, n_before, false, &p, &np, err, errlen) != 0) {
        free(q);
        return -1;
    }
    size_t skip = 0;
    if (np <= nq)
        while (skip < np && p[skip] == q[skip]) skip++;
    free(p);
    memmove(q, q + skip, (nq - skip) * sizeof *q);
    *out = q;
    *n_out = nq - skip;
    return 0;
}

char *anc_vocab_fingerprint(const struct anc_model *m, char *buf, size_t cap)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    int32_t nv = anc_n_vocab(m);
    for (int32_t id = 0; id < nv; id++) {
        const char *t = anc_token_text(m, id);
        size_t len = t ? strlen(t) : 0;
        /* the length first, so "ab"+"c" and "a"+"bc" differ */
        for (int k = 0; k < 4; k++) h = (h ^ ((len >> (8 * k)) & 0xFF)) * 0x100000001b3ULL;
        for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)t[i]) * 0x100000001b3ULL;
    }
    snprintf(buf, cap, "v1:%d:%016llx", nv, (unsigned long long)h);
    return buf;
}
