/* tokenizer.h — text <-> token ids from GGUF metadata.
 * Internal to core/. Depends on gguf.h only; knows nothing of tensors.
 *
 * Kinds: SentencePiece-style (`tokenizer.ggml.model = "llama"`: scores,
 * byte fallback <0xNN>, dummy-prefix space, U+2581 for spaces; tokenizer.c)
 * and GPT-2-style byte-level BPE (`gpt2`: merges, bytes written as printable
 * characters, a pre-tokenizer chosen by tokenizer.ggml.pre; tokenizer_bpe.c). */
#ifndef ANC_TOKENIZER_H
#define ANC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct gguf_file;

enum tok_kind { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 };

/* Token types as stored in tokenizer.ggml.token_type. */
enum tok_type {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6
};

struct tokenizer; /* opaque */

/* Build from the file's metadata (copies what it needs: the file may be
 * closed afterwards). NULL + message in err on failure. */
struct tokenizer *tokenizer_new(const struct gguf_file *f, char *err, size_t errlen);
void tokenizer_free(struct tokenizer *t);

enum tok_kind tokenizer_kind(const struct tokenizer *t);
int32_t tokenizer_n_vocab(const struct tokenizer *t);
int32_t tokenizer_bos(const struct tokenizer *t); /* -1 if none */
int32_t tokenizer_eos(const struct tokenizer *t); /* -1 if none */
int32_t tokenizer_eot(const struct tokenizer *t); /* -1 if none */
/* Does generation end at token id? True for EOS, EOT, and every control or
 * user-defined token whose text is a known end-of-turn marker (<|im_end|>,
 * <end_of_turn>, <|eot_id|>, <|endoftext|>, </s>, ...); the set is built
 * once when the vocabulary is loaded. False for ids out of range. */
bool tokenizer_is_eog(const struct tokenizer *t, int32_t id);
/* The file's add_bos_token; when absent: true for SentencePiece and for the
 * Llama 3 pre-tokenizer, false for other byte-level BPE (GPT-2 adds none). */
bool tokenizer_add_bos(const struct tokenizer *t);

/* Encode `len` bytes of text (any bytes; invalid UTF-8 goes through byte
 * fallback or byte-level tokens, never fails). Special tokens in the text are
 * NOT recognised; user-defined tokens are. add_bos puts BOS first whatever
 * the file's default (tokenizer_add_bos) says.
 * Returns a malloc'ed array in *out (caller frees) and its length in *n_out;
 * false only on allocation failure. */
bool tokenizer_encode(const struct tokenizer *t, const char *text, size_t len,
                      bool add_bos, int32_t **out, size_t *n_out);

/* The bytes that token `id` contributes to decoded text, given the previous
 * token (`prev` = -1 at the start): control tokens give "". SentencePiece:
 * byte tokens give their byte, U+2581 becomes a space, the leading space
 * after BOS / at the very start is dropped. Byte-level BPE: each character
 * of the token gives the byte it stands for (no space is dropped). Writes at most
 * cap bytes to buf and returns the full length (like snprintf, no NUL
 * counted; buf is NUL-terminated when cap > 0). */
size_t tokenizer_piece(const struct tokenizer *t, int32_t prev, int32_t id,
                       char *buf, size_t cap);

/* Decode a whole sequence into a malloc'ed NUL-terminated string (bytes may
 * be invalid UTF-8 if the ids are). NULL on allocation failure. */
char *tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n);

/* The token's text as stored in the vocabulary (NUL-terminated), and type. */
const char *tokenizer_token_text(const struct tokenizer *t, int32_t id);
enum tok_type tokenizer_token_type(const struct tokenizer *t, int32_t id);

/* Id of an exact vocabulary string, -1 if absent (for chat-template markers). */
int32_t tokenizer_find(const struct tokenizer *t, const char *text);

#endif
