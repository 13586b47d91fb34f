/* chat_template.h — chat templates: the model file's own Jinja
 * tokenizer.chat_template (run by core/jinja.c, byte for byte as
 * transformers renders it), and the conversation formats of the common
 * Llama-family chat models, recognised from the template by their markers,
 * for --template NAME and as the fallback; rendered to token ids or text.
 * Part of core/: depends on the model's GGUF metadata, tokenizer and jinja.c. */
#ifndef ANC_CHAT_TEMPLATE_H
#define ANC_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "ancora.h"

/* The public API (enum anc_template, struct anc_chat_msg, anc_template_name,
 * anc_template_from_name, anc_template_detect, anc_chat_render,
 * anc_chat_render_text, anc_template_is_stop) is declared in ancora.h.
 * What it does, in more detail than ancora.h says:
 *
 * - anc_template_from_name: case-insensitive, with the aliases "llama-2",
 *   "llama-3", "tinyllama", "phi-3"; -1 if unknown (the caller handles
 *   "auto" itself, since -1 is also ANC_TPL_AUTO). anc_template_name gives
 *   "?" for anything but a family.
 * - anc_template_detect: ANC_TPL_FILE when the file's template renders a
 *   one-message conversation; else the family of its markers, ANC_TPL_PLAIN
 *   when the key is absent or holds no known markers.
 * - ANC_TPL_FILE: the template gets messages (role, content),
 *   add_generation_prompt, bos_token/eos_token (the vocabulary's strings),
 *   tools = documents = none, raise_exception, strftime_now (the current
 *   local time); its text is split at the vocabulary's control tokens
 *   except inside message contents; BOS goes first when add_bos_token asks
 *   for it and the template does not write bos_token itself. Stop tokens
 *   are those of the family its markers name.
 * - anc_chat_render (tpl may be ANC_TPL_AUTO): a marker becomes its single
 *   vocabulary id when the vocabulary holds that exact string; otherwise it
 *   is encoded as text together with the text around it (a BOS/EOS the
 *   vocabulary lacks is left out). Everything else, message contents
 *   included, is encoded as plain text, so special-looking text in a message
 *   never becomes a control token. BOS comes where the format writes it
 *   (llama2, llama3, mistral, gemma); chatml, zephyr, phi3 and plain, whose
 *   formats do not, get one BOS first when the vocabulary's
 *   tokenizer.ggml.add_bos_token asks for it. llama2 and mistral end every
 *   user turn with [/INST] and ignore add_assistant_prompt; phi3 without
 *   the prompt ends with EOS (its official template does). Roles other than
 *   system/user/assistant are written by name where the format allows it
 *   (llama3, chatml, gemma, plain) and left out elsewhere; conversations the
 *   official templates refuse (roles not alternating) render as those
 *   templates would without the refusal. *out is never NULL on success.
 *   A message needs a role; content may be NULL only when len is 0.
 * - anc_chat_render_text: the same with every marker written out, except
 *   the add_bos_token BOS above. NULL for ANC_TPL_AUTO (no model to detect
 *   from), an unknown family, a message with no role, or no memory. A NUL
 *   byte inside a content ends the returned string early.
 * - anc_template_is_stop (tpl may be ANC_TPL_AUTO): EOS or EOT, the family's
 *   end-of-turn/end-of-text markers (<|eot_id|>, <|eom_id|>,
 *   <|end_of_text|>, <|im_end|>, <|endoftext|>, <end_of_turn>, <eos>,
 *   <|end|>, </s>) and the markers that open another turn (<|im_start|>,
 *   <|start_header_id|>, <start_of_turn>, <|user|>, <|system|>,
 *   <|assistant|>, [INST]), when the vocabulary holds them. */

/* ---- internal to core/ -------------------------------------------------- */

/* The family whose markers the Jinja source src[0..len) holds (PLAIN if none). */
int chat_template_detect_source(const char *src, size_t len);

/* The model file's own chat template rendered as text (what ANC_TPL_FILE
 * tokenizes), with strftime_now() at time `now` (seconds since the epoch;
 * negative: the current time). Malloc'ed, its length in *len (contents may
 * hold NUL bytes); NULL and why in err when the file has no template or it
 * fails on this conversation. */
char *chat_template_file_text(const struct anc_model *m, const struct anc_chat_msg *msgs,
                              size_t n, bool add_assistant_prompt, int64_t now, size_t *len,
                              char *err, size_t errlen);

#endif
