/* jinja.h — a small interpreter for the subset of Jinja2 that chat templates
 * use (tokenizer.chat_template), rendering the way Hugging Face transformers'
 * apply_chat_template does: trim_blocks and lstrip_blocks on, loop controls,
 * raise_exception(), strftime_now(), a tojson filter that keeps non-ASCII.
 * Part of core/; depends on nothing but libc (no UI, sqlite or tensors).
 *
 * Hostile templates are expected: parsing and rendering are bounded (nesting
 * depth, evaluation steps, memory, output size) and every failure is one
 * message in err ("line N: ..."), never a crash or an endless loop. */
#ifndef ANC_JINJA_H
#define ANC_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ancora.h" /* struct anc_chat_msg */

/* What a chat template is rendered with (the variables transformers gives
 * it). bos_token/eos_token NULL: left undefined. tools and documents are
 * none. now: the time strftime_now() formats (seconds since the epoch, local
 * time); negative means the current time. max_output: 0 for the default
 * (JINJA_DEFAULT_MAX_OUTPUT plus 8 times the contents' bytes). */
struct jinja_params {
    const struct anc_chat_msg *msgs; /* role and content of each message (borrowed) */
    size_t n_msgs;
    bool add_generation_prompt;
    const char *bos_token, *eos_token;
    int64_t now;
    size_t max_output;
};

#define JINJA_DEFAULT_MAX_OUTPUT ((size_t)1 << 20)

/* Bytes of the whitespace character (Python's str.strip() set) at the
 * start of s[0..n), or ending it; 0 if none. */
size_t jinja_space_at(const unsigned char *s, size_t n);
size_t jinja_space_before(const unsigned char *s, size_t n);

struct jinja_tpl; /* a parsed template (opaque) */

/* Parse src[0..len). NULL and a message in err on a syntax error, on a
 * construct this interpreter does not support, or for lack of memory. */
struct jinja_tpl *jinja_parse(const char *src, size_t len, char *err, size_t errlen);
void jinja_tpl_free(struct jinja_tpl *t);

/* Render: a malloc'ed NUL-terminated string (its length in *len; contents
 * may hold NUL bytes) or NULL and a message in err (raise_exception's
 * message comes as "template error: MESSAGE"). With taint non-NULL, *taint
 * gets a malloc'ed mask of *len bytes: 1 where the byte was copied out of a
 * message's content (so that a caller can keep marker-looking text typed by
 * a user from becoming a control token), 0 where the template wrote it. */
char *jinja_render(const struct jinja_tpl *t, const struct jinja_params *p, size_t *len,
                   unsigned char **taint, char *err, size_t errlen);

#endif
