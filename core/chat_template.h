/* chat_template.h — chat templates: the conversation formats of the common
 * Llama-family chat models, recognised from tokenizer.chat_template by their
 * markers (Jinja is never run) and rendered to token ids or to text.
 * Part of core/: depends on the model's GGUF metadata and tokenizer only. */
#ifndef ANC_CHAT_TEMPLATE_H
#define ANC_CHAT_TEMPLATE_H

#include <stddef.h>

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
 * - anc_template_detect: ANC_TPL_PLAIN when the key is absent or holds no
 *   known markers.
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

#endif
