/* tokenizer_impl.h — what the tokenizer's own files share: the vocabulary
 * struct, the merge-candidate heap of both encoders, the hash map and UTF-8
 * helpers of tokenizer.c, the byte-level BPE entry points of tokenizer_bpe.c
 * and the character classes of tokenizer_unicode.c. Internal to
 * core/tokenizer*.c (and their tests); depends on tokenizer.h, gguf.h,
 * util.h and the C library only. */
#ifndef ANC_TOKENIZER_IMPL_H
#define ANC_TOKENIZER_IMPL_H

#include "gguf.h"
#include "tokenizer.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>

/* At most this many end-of-generation tokens: EOS, EOT and one per known
 * end-of-turn marker (eog_markers in tokenizer.c), with room to spare. */
#define TOK_MAX_EOG 32

struct tok_info {
    size_t off;    /* of the text in tokenizer.text */
    uint32_t len;  /* text length in bytes (the text may hold NULs) */
    float score;   /* merge priority: higher merges first (SentencePiece) */
    uint8_t type;  /* enum tok_type */
    uint8_t byte;  /* the byte of a TOK_TYPE_BYTE token (SentencePiece) */
};

/* Open-addressing hash map from token text to id (linear probing). */
struct tok_map {
    int32_t *slots; /* [mask + 1], -1 = empty */
    size_t mask;
};

/* Byte trie of the user-defined tokens, which are matched whole in the text
 * before anything else (longest match wins). */
struct ud_node {
    int32_t child;   /* first child node, -1 if none */
    int32_t sibling; /* next child of the same parent, -1 if none */
    int32_t id;      /* token ending here, -1 if none */
    uint8_t byte;    /* edge label from the parent */
};

/* Byte-level BPE pre-tokenizers: the regular expression that cuts text into
 * pieces before merging (see tokenizer_bpe.c for the patterns). */
enum bpe_pre {
    BPE_PRE_GPT2 = 0,     /* GPT-2, and the default */
    BPE_PRE_LLAMA3,       /* Llama 3: case-insensitive contractions, 1-3 digits */
    BPE_PRE_QWEN2,        /* Qwen2: as Llama 3 but single digits */
    BPE_PRE_STARCODER,    /* StarCoder, SmolLM, Command-R: digits alone, then GPT-2 */
    BPE_PRE_TEKKEN,       /* Mistral's Tekken: words split at case changes */
    BPE_PRE_GPT4O,        /* GPT-4o, Llama 4: as Tekken, contractions, 1-3 digits */
    BPE_PRE_DEEPSEEK_LLM, /* DeepSeek LLM: six splits one after another */
    BPE_PRE_DEEPSEEK3,    /* DeepSeek V3: digits 1-3, kana and ideographs, words */
    BPE_PRE_FALCON,       /* Falcon: punctuation, GPT-2, digit groups on bytes */
    BPE_PRE_BLOOM,        /* BLOOM, Poro: words between stop characters */
    BPE_PRE_COUNT
};

/* One merge rule "left right" of the byte-level BPE, keyed by the two ids. */
struct bpe_merge {
    int32_t left, right; /* left = -1: empty slot */
    int32_t result;      /* the token the pair becomes */
    uint32_t rank;       /* index in tokenizer.ggml.merges: lower merges first */
};

struct tokenizer {
    enum tok_kind kind;
    int32_t n_vocab;
    struct tok_info *tok;  /* [n_vocab] */
    char *text;            /* every token's text, each followed by a NUL */
    struct tok_map all;    /* every token, for tokenizer_find */
    struct tok_map pieces; /* tokens merges may produce: normal, user-defined,
                              unused, undefined (never control/byte/unknown) */
    uint32_t max_piece_len;
    int32_t byte_id[256];  /* <0xNN> token of each byte, -1 if absent */
    int32_t bos, eos, eot, unk; /* -1 if none */
    int32_t eog[TOK_MAX_EOG]; /* end-of-generation ids (tokenizer_is_eog) */
    size_t n_eog;
    bool add_bos;
    bool add_space_prefix;
    struct ud_node *ud;    /* [n_ud], node 0 is the root; NULL if no
                              user-defined tokens */
    size_t n_ud;

    /* byte-level BPE only (kind TOK_KIND_BPE; zero otherwise) */
    enum bpe_pre pre;
    bool ignore_merges;        /* a pre-token that is a whole token is kept as is */
    int32_t bpe_byte[256];     /* token of each byte's mapped character, -1 if absent */
    struct bpe_merge *merges;  /* [merges_mask + 1] hash table, NULL if no merges */
    size_t merges_mask;
};

/* ---- the merge-candidate heap of both encoders ----------------------------- */

/* TOK_HEAP(name, T, before) defines a binary heap of merge candidates of
 * type T (spm_encode in tokenizer.c, bpe_encode in tokenizer_bpe.c), where
 * before(a, b) says that candidate *a pops before *b — each encoder's
 * priority and its tie-break (the leftmost pair):
 *
 *   struct name { T *v; size_t n, cap; };      {0} is empty; free(h.v) ends it
 *   static bool name_push(struct name *h, T c); false, the heap unchanged,
 *                                               when it cannot grow
 *   static T name_pop(struct name *h);          the first candidate (h->n > 0)
 *
 * A macro rather than functions over void *, so that each encoder keeps its
 * own compact candidate struct and a comparison the compiler inlines: the
 * heap is the inner loop of long merge chains (one 32-byte candidate struct
 * for both made the byte-level BPE's 200 KB cases a third slower). */
#define TOK_HEAP(name, T, before)                                                        \
    struct name {                                                                        \
        T *v;                                                                            \
        size_t n, cap;                                                                   \
    };                                                                                   \
                                                                                         \
    static bool name##_push(struct name *h, T c)                                         \
    {                                                                                    \
        if (h->n == h->cap) { /* cap * 2 cannot wrap: cap * sizeof(T) did not */         \
            size_t cap = h->cap ? h->cap * 2 : 256, bytes;                               \
            T *v;                                                                        \
            if (!anc_mul_ok(cap, sizeof *v, &bytes) || !(v = realloc(h->v, bytes)))      \
                return false;                                                            \
            h->v = v;                                                                    \
            h->cap = cap;                                                                \
        }                                                                                \
        size_t i = h->n++;                                                               \
        while (i > 0) {                                                                  \
            size_t p = (i - 1) / 2;                                                      \
            if (!before(&c, &h->v[p])) break;                                            \
            h->v[i] = h->v[p];                                                           \
            i = p;                                                                       \
        }                                                                                \
        h->v[i] = c;                                                                     \
        return true;                                                                     \
    }                                                                                    \
                                                                                         \
    static T name##_pop(struct name *h)                                                  \
    {                                                                                    \
        T top = h->v[0];                                                                 \
        T last = h->v[--h->n];                                                           \
        size_t i = 0, n = h->n;                                                          \
        for (;;) {                                                                       \
            size_t c = 2 * i + 1;                                                        \
            if (c >= n) break;                                                           \
            if (c + 1 < n && before(&h->v[c + 1], &h->v[c])) c++;                        \
            if (!before(&h->v[c], &last)) break;                                         \
            h->v[i] = h->v[c];                                                           \
            i = c;                                                                       \
        }                                                                                \
        if (n) h->v[i] = last;                                                           \
        return top;                                                                      \
    }

/* ---- tokenizer.c ---------------------------------------------------------- */

static inline const char *tok_text(const struct tokenizer *t, int32_t id)
{
    return t->text + t->tok[id].off;
}

/* Id of the n bytes at s in map m, -1 if absent. */
int32_t tok_map_get(const struct tokenizer *t, const struct tok_map *m, const char *s, size_t n);

/* Length of the UTF-8 character at s (n > 0 bytes available). Anything that
 * is not a well-formed, shortest-form scalar value is one byte on its own. */
size_t tok_utf8_len(const unsigned char *s, size_t n);

/* Length of the longest user-defined token at s, 0 if none (t->ud != NULL);
 * its id in *id when id is not NULL and there is one. SentencePiece
 * vocabularies are matched in normalised text (a space in a token's text is
 * matched as U+2581), byte-level BPE ones as written. */
size_t tok_ud_match(const struct tokenizer *t, const unsigned char *s, size_t n, int32_t *id);

/* A short printable rendering of a file string for messages (at most 32
 * bytes of it shown, others than printable ASCII as '?'). */
void tok_printable(struct gguf_str s, char *buf, size_t cap);

/* Copy n bytes to dst at offset at, keeping within cap (for piece functions,
 * which return the full length whatever they could write). */
void tok_put(char *dst, size_t cap, size_t at, const char *s, size_t n);

/* Is id a control token (by type, or as BOS/EOS/EOT)? Those decode to "". */
bool tok_is_control(const struct tokenizer *t, int32_t id);

/* ---- tokenizer_bpe.c -------------------------------------------------------- */

/* The pre-tokenizer named by a tokenizer.ggml.pre value (n bytes at name).
 * False when the name is not one this program knows. */
bool bpe_pre_from_name(const char *name, size_t n, enum bpe_pre *out);

/* Comma-separated list of the names bpe_pre_from_name accepts, for messages. */
const char *bpe_pre_names(void);

/* Read the merges and tokenizer.ggml.pre into t, whose tokens, types and
 * maps are loaded. False + message on a malformed file. */
bool bpe_load(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen);
void bpe_free(struct tokenizer *t);

/* Whether pre may cut a piece inside a well-formed UTF-8 character (Falcon,
 * whose digit splits run on the byte-level characters). */
bool bpe_pre_cuts_bytes(enum bpe_pre pre);

/* Cut len bytes of text into pre-tokens as the pattern of `pre` does:
 * (*ends)[k] is the byte offset where piece k ends (pieces are contiguous,
 * non-empty and cover the text). *ends is malloc'ed (caller frees; NULL
 * when the text is empty); false only on allocation failure. */
bool bpe_pretokenize(enum bpe_pre pre, const char *text, size_t len, size_t **ends,
                     size_t *n);

bool bpe_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                int32_t **out, size_t *n_out);

/* Bytes of token id (not a control token): its characters mapped back to
 * bytes. Writes at most cap bytes (no NUL), returns the full length. */
size_t bpe_piece(const struct tokenizer *t, int32_t id, char *dst, size_t cap);

/* ---- tokenizer_unicode.c (generated by core/gen_unicode_tables.py) ----------- */

/* What most pre-tokenizer patterns ask of a character: \p{L}, \p{N}, \s
 * (Unicode's White_Space), or none of these. */
enum uc_class { UC_OTHER = 0, UC_LETTER = 1, UC_NUMBER = 2, UC_SPACE = 3 };

enum uc_class tok_unicode_class(uint32_t cp);

/* The finer categories some patterns ask for: \s, the five kinds of letter,
 * \p{M}, \p{N}, \p{P}, \p{S}, and anything else (controls, format,
 * unassigned, separators that are not white space). */
enum uc_cat {
    UC_CAT_OTHER = 0,
    UC_CAT_SPACE,
    UC_CAT_LU, /* upper case letter */
    UC_CAT_LL, /* lower case letter */
    UC_CAT_LT, /* title case letter */
    UC_CAT_LM, /* modifier letter */
    UC_CAT_LO, /* other letter */
    UC_CAT_MARK,
    UC_CAT_NUMBER,
    UC_CAT_PUNCT,
    UC_CAT_SYMBOL
};

enum uc_cat tok_unicode_cat(uint32_t cp);
extern const char tok_unicode_version[]; /* of the table, e.g. "14.0.0" */

#endif
