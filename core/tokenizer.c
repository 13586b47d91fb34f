/* tokenizer.c — text <-> token ids from GGUF metadata: the vocabulary loader
 * and validator, the SentencePiece-style BPE encoder and decoder, and the
 * dispatch to the byte-level BPE of tokenizer_bpe.c.
 * Part of core/: depends on gguf.h, util.h and the C library only (no curses,
 * readline or sqlite, no tensors).
 *
 * Shape of the file: one vocabulary (texts, scores, types, special ids, hash
 * maps; struct tokenizer in tokenizer_impl.h) shared by every kind, then one
 * encoder and one piece function per kind: spm_encode() and spm_piece() here,
 * bpe_encode() and bpe_piece() in tokenizer_bpe.c, which also reads the
 * merges (bpe_load(), called from tokenizer_new()). */
#include "tokenizer_impl.h"

#include "gguf.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Limits that turn a hostile or broken vocabulary into an error message
 * instead of a huge allocation. Real vocabularies have at most a few hundred
 * thousand tokens of at most a few hundred bytes. */
#define TOK_MAX_VOCAB (1 << 24)
#define TOK_MAX_TOKEN_BYTES 4096

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space. */
#define SPM_SPACE "\xE2\x96\x81"
#define SPM_SPACE_LEN 3
/* What SentencePiece prints for the unknown token: " ⁇ " (U+2047). */
#define SPM_UNK_SURFACE " \xE2\x81\x87 "
#define SPM_UNK_SURFACE_LEN 5

#define NONE SIZE_MAX

/* ---- small helpers ---------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    /* FNV-1a: short keys, and the table is private, so no need for more */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool map_init(struct tok_map *m, size_t n_keys)
{
    size_t cap = 16;
    while (cap < 2 * n_keys) cap *= 2; /* n_keys <= TOK_MAX_VOCAB: no overflow */
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < cap; i++) m->slots[i] = -1;
    m->mask = cap - 1;
    return true;
}

int32_t tok_map_get(const struct tokenizer *t, const struct tok_map *m, const char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (t->tok[id].len == n && memcmp(tok_text(t, id), s, n) == 0) return id;
    }
}

/* Insert id unless its text is already there (the first id wins). */
static void map_put(const struct tokenizer *t, struct tok_map *m, int32_t id)
{
    const char *s = tok_text(t, id);
    size_t n = t->tok[id].len;
    for (size_t i = hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t old = m->slots[i];
        if (old < 0) {
            m->slots[i] = id;
            return;
        }
        if (t->tok[old].len == n && memcmp(tok_text(t, old), s, n) == 0) return;
    }
}

size_t tok_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c < 0xC2) return 1; /* continuation byte or overlong lead */
    if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        need = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 1;
    }
    if (n < need) return 1;
    if (s[1] < lo || s[1] > hi) return 1;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    return need;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_token(struct gguf_str s)
{
    if (s.len != 6 || memcmp(s.ptr, "<0x", 3) != 0 || s.ptr[5] != '>') return -1;
    int hi = hex_val(s.ptr[3]), lo = hex_val(s.ptr[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void tok_printable(struct gguf_str s, char *buf, size_t cap)
{
    size_t n = 0;
    for (uint64_t i = 0; i < s.len && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[n++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
        if (i == 31 && s.len > 32) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
    }
    buf[n] = '\0';
}

/* ---- loading and validation ----------------------------------------- */

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

/* An optional token id: *out = -1 when absent (or stored as -1 / 0xFFFFFFFF,
 * which converters write for "none"); an error when present but unusable. */
static bool read_id(const struct gguf_file *f, const char *key, int32_t n_vocab,
                    int32_t *out, char *err, size_t errlen)
{
    *out = -1;
    if (!gguf_find_kv(f, key)) return true;
    uint32_t u;
    int32_t i;
    if (gguf_get_u32(f, key, &u)) {
        if (u == UINT32_MAX) return true;
        if (u >= (uint32_t)n_vocab) {
            anc_set_err(err, errlen, "%s is %u but the vocabulary has only %d tokens", key,
                        u, n_vocab);
            return false;
        }
        *out = (int32_t)u;
        return true;
    }
    if (gguf_get_i32(f, key, &i)) {
        if (i == -1) return true;
        anc_set_err(err, errlen, "%s is %d, not a token id", key, i);
        return false;
    }
    anc_set_err(err, errlen, "%s is not an integer token id", key);
    return false;
}

static bool read_bool(const struct gguf_file *f, const char *key, bool dflt, bool *out,
                      char *err, size_t errlen)
{
    *out = dflt;
    if (!gguf_find_kv(f, key)) return true;
    if (gguf_get_bool(f, key, out)) return true;
    anc_set_err(err, errlen, "%s is not a boolean", key);
    return false;
}

static const struct gguf_kv *find_array(const struct gguf_file *f, const char *key,
                                        enum gguf_vtype elem, const char *elem_name,
                                        uint64_t want_n, bool *bad, char *err,
                                        size_t errlen)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    *bad = false;
    if (!kv) return NULL;
    if (kv->type != GGUF_VT_ARRAY || kv->arr_type != elem) {
        anc_set_err(err, errlen, "%s is not an array of %s", key, elem_name);
        *bad = true;
        return NULL;
    }
    if (want_n && kv->arr_n != want_n) {
        anc_set_err(err, errlen, "%s has %llu entries but there are %llu tokens", key,
                    (unsigned long long)kv->arr_n, (unsigned long long)want_n);
        *bad = true;
        return NULL;
    }
    return kv;
}

/* The bytes a user-defined token is matched as: its text, except that
 * SentencePiece matches in the normalised text, where a space is U+2581
 * (converters write Gemma's "▁▁" pieces as two spaces). Returns the count
 * and, when out is not NULL, writes them there. */
static size_t ud_key(const struct tokenizer *t, int32_t id, unsigned char *out)
{
    const unsigned char *s = (const unsigned char *)tok_text(t, id);
    size_t w = 0;
    for (uint32_t k = 0; k < t->tok[id].len; k++) {
        if (s[k] == ' ' && t->kind == TOK_KIND_SPM) {
            if (out) memcpy(out + w, SPM_SPACE, SPM_SPACE_LEN);
            w += SPM_SPACE_LEN;
        } else {
            if (out) out[w] = s[k];
            w++;
        }
    }
    return w;
}

static bool ud_build(struct tokenizer *t)
{
    size_t nodes = 1, longest = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->tok[id].type != TOK_TYPE_USER_DEFINED) continue;
        size_t k = ud_key(t, id, NULL);
        nodes += k;
        if (k > longest) longest = k;
    }
    if (nodes == 1) return true;
    /* nodes <= 1 + TOK_MAX_VOCAB * TOK_MAX_TOKEN_BYTES * 3 < 2^38: size_t is
       fine, but ids of nodes are int32: refuse absurd totals */
    if (nodes > INT32_MAX) return false;
    unsigned char *key = malloc(longest ? longest : 1);
    t->ud = malloc(nodes * sizeof *t->ud);
    if (!t->ud || !key) {
        free(key);
        return false;
    }
    t->ud[0] = (struct ud_node){ .child = -1, .sibling = -1, .id = -1, .byte = 0 };
    t->n_ud = 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->tok[id].type != TOK_TYPE_USER_DEFINED || t->tok[id].len == 0) continue;
        size_t len = ud_key(t, id, key);
        int32_t node = 0;
        for (size_t k = 0; k < len; k++) {
            int32_t c = t->ud[node].child;
            while (c >= 0 && t->ud[c].byte != key[k]) c = t->ud[c].sibling;
            if (c < 0) {
                c = (int32_t)t->n_ud++;
                t->ud[c] = (struct ud_node){ .child = -1, .sibling = t->ud[node].child,
                                             .id = -1, .byte = key[k] };
                t->ud[node].child = c;
            }
            node = c;
        }
        if (t->ud[node].id < 0) t->ud[node].id = id;
    }
    free(key);
    return true;
}

/* Texts of the tokens that end a turn in the chat formats in use (the list
 * llama.cpp keeps for the same purpose, plus </s>): generation stops at any
 * of them that the vocabulary holds as a control or user-defined token. */
static const char *const eog_markers[] = {
    "<|eot_id|>",      /* Llama 3 */
    "<|eom_id|>",      /* Llama 3.1, after a tool call */
    "<|im_end|>",      /* ChatML: Qwen, SmolLM, ... */
    "<|end|>",         /* Phi-3 */
    "<|return|>",      /* gpt-oss (harmony) */
    "<|call|>",        /* gpt-oss (harmony) */
    "<end_of_turn>",   /* Gemma */
    "<|endoftext|>",   /* GPT-2, Qwen, SmolLM */
    "<|end_of_text|>", /* Llama 3 base */
    "<EOT>",           /* CodeLlama infill */
    "_<EOT>",
    "<end_of_utterance>",
    "</s>",            /* Llama 2, Mistral */
    /* DeepSeek's <｜end▁of▁sentence｜> (fullwidth bars, U+2581 for spaces) */
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
};
#define N_EOG_MARKERS (sizeof eog_markers / sizeof *eog_markers)
_Static_assert(N_EOG_MARKERS + 2 <= TOK_MAX_EOG, "TOK_MAX_EOG too small");

static void eog_add(struct tokenizer *t, int32_t id)
{
    if (id < 0) return;
    for (size_t k = 0; k < t->n_eog; k++)
        if (t->eog[k] == id) return;
    t->eog[t->n_eog++] = id;
}

/* EOS, EOT, then the markers the vocabulary has (t->all is built). */
static void eog_build(struct tokenizer *t)
{
    t->n_eog = 0;
    eog_add(t, t->eos);
    eog_add(t, t->eot);
    for (size_t k = 0; k < N_EOG_MARKERS; k++) {
        int32_t id = tok_map_get(t, &t->all, eog_markers[k], strlen(eog_markers[k]));
        if (id < 0) continue;
        uint8_t ty = t->tok[id].type;
        if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED) eog_add(t, id);
    }
}

bool tokenizer_is_eog(const struct tokenizer *t, int32_t id)
{
    for (size_t k = 0; k < t->n_eog; k++)
        if (t->eog[k] == id) return id >= 0;
    return false;
}

struct tokenizer *tokenizer_new(const struct gguf_file *f, char *err, size_t errlen)
{
    struct gguf_str model;
    char shown[48];
    if (!f) {
        anc_set_err(err, errlen, "no file to read a tokenizer from");
        return NULL;
    }
    if (!gguf_find_kv(f, KEY_MODEL)) {
        anc_set_err(err, errlen, "the file has no tokenizer (%s is missing)", KEY_MODEL);
        return NULL;
    }
    if (!gguf_get_str(f, KEY_MODEL, &model)) {
        anc_set_err(err, errlen, "%s is not a string", KEY_MODEL);
        return NULL;
    }
    enum tok_kind kind;
    if (gguf_str_eq(model, "llama")) {
        kind = TOK_KIND_SPM;
    } else if (gguf_str_eq(model, "gpt2")) {
        kind = TOK_KIND_BPE;
    } else {
        tok_printable(model, shown, sizeof shown);
        anc_set_err(err, errlen,
                    "unsupported tokenizer model \"%s\" (%s; supported: llama, gpt2)", shown,
                    KEY_MODEL);
        return NULL;
    }

    /* the token texts */
    bool bad;
    const struct gguf_kv *tokens =
        find_array(f, KEY_TOKENS, GGUF_VT_STRING, "strings", 0, &bad, err, errlen);
    if (bad) return NULL;
    if (!tokens) {
        anc_set_err(err, errlen, "the file has no token list (%s is missing)", KEY_TOKENS);
        return NULL;
    }
    if (tokens->arr_n == 0) {
        anc_set_err(err, errlen, "%s is empty", KEY_TOKENS);
        return NULL;
    }
    if (tokens->arr_n > TOK_MAX_VOCAB) {
        anc_set_err(err, errlen, "%s has %llu tokens, more than the %d this program accepts",
                    KEY_TOKENS, (unsigned long long)tokens->arr_n, TOK_MAX_VOCAB);
        return NULL;
    }
    int32_t n = (int32_t)tokens->arr_n;
    const struct gguf_kv *scores =
        find_array(f, KEY_SCORES, GGUF_VT_FLOAT32, "float32", (uint64_t)n, &bad, err, errlen);
    if (bad) return NULL;
    const struct gguf_kv *types =
        find_array(f, KEY_TYPES, GGUF_VT_INT32, "int32", (uint64_t)n, &bad, err, errlen);
    if (bad) return NULL;

    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = kind;
    t->n_vocab = n;
    t->tok = calloc((size_t)n, sizeof *t->tok);
    if (!t->tok) goto oom;

    /* texts: one buffer, each text NUL-terminated for tokenizer_token_text */
    size_t total = 0;
    for (int32_t id = 0; id < n; id++) {
        struct gguf_str s = gguf_arr_str(tokens, (uint64_t)id);
        if (s.len > TOK_MAX_TOKEN_BYTES) {
            anc_set_err(err, errlen, "token %d is %llu bytes long (the limit is %d)", id,
                        (unsigned long long)s.len, TOK_MAX_TOKEN_BYTES);
            goto fail;
        }
        t->tok[id].off = total;
        t->tok[id].len = (uint32_t)s.len;
        total += (size_t)s.len + 1; /* <= n * (limit + 1): no overflow */
    }
    t->text = malloc(total);
    if (!t->text) goto oom;
    for (int32_t id = 0; id < n; id++) {
        struct gguf_str s = gguf_arr_str(tokens, (uint64_t)id);
        if (s.len) memcpy(t->text + t->tok[id].off, s.ptr, (size_t)s.len);
        t->text[t->tok[id].off + s.len] = '\0';
    }

    /* scores (absent: all 0, so ties resolve leftmost) and types */
    for (int32_t id = 0; id < n; id++) {
        float sc = scores ? gguf_arr_f32(scores, (uint64_t)id) : 0.0f;
        if (isnan(sc)) {
            anc_set_err(err, errlen, "the score of token %d is not a number", id);
            goto fail;
        }
        t->tok[id].score = sc;
        int32_t ty = types ? gguf_arr_i32(types, (uint64_t)id) : TOK_TYPE_NORMAL;
        if (ty < TOK_TYPE_UNDEFINED || ty > TOK_TYPE_BYTE) {
            anc_set_err(err, errlen, "token %d has type %d (known types are 0 to %d)", id, ty,
                        TOK_TYPE_BYTE);
            goto fail;
        }
        t->tok[id].type = (uint8_t)ty;
    }

    /* special ids and flags */
    if (!read_id(f, "tokenizer.ggml.bos_token_id", n, &t->bos, err, errlen) ||
        !read_id(f, "tokenizer.ggml.eos_token_id", n, &t->eos, err, errlen) ||
        !read_id(f, "tokenizer.ggml.eot_token_id", n, &t->eot, err, errlen) ||
        !read_id(f, "tokenizer.ggml.unknown_token_id", n, &t->unk, err, errlen) ||
        /* byte-level BPE: no BOS unless asked (bpe_load may change the default) */
        !read_bool(f, "tokenizer.ggml.add_bos_token", kind == TOK_KIND_SPM, &t->add_bos, err,
                   errlen) ||
        !read_bool(f, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix, err,
                   errlen))
        goto fail;

    if (!types) {
        /* no types stored: infer what SentencePiece would have recorded */
        for (int32_t id = 0; id < n && kind == TOK_KIND_SPM; id++) {
            struct gguf_str s = { tok_text(t, id), t->tok[id].len };
            if (parse_byte_token(s) >= 0) t->tok[id].type = TOK_TYPE_BYTE;
        }
        if (t->unk >= 0) t->tok[t->unk].type = TOK_TYPE_UNKNOWN;
        if (t->bos >= 0) t->tok[t->bos].type = TOK_TYPE_CONTROL;
        if (t->eos >= 0) t->tok[t->eos].type = TOK_TYPE_CONTROL;
        if (t->eot >= 0) t->tok[t->eot].type = TOK_TYPE_CONTROL;
    }
    if (t->unk < 0)
        for (int32_t id = 0; id < n && t->unk < 0; id++)
            if (t->tok[id].type == TOK_TYPE_UNKNOWN) t->unk = id;

    /* byte tokens (SentencePiece's <0xNN>; byte-level BPE has its own, in
       bpe_load, and leaves BYTE-typed tokens as they are) */
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int32_t id = 0; id < n && kind == TOK_KIND_SPM; id++) {
        if (t->tok[id].type != TOK_TYPE_BYTE) continue;
        struct gguf_str s = { tok_text(t, id), t->tok[id].len };
        int b = parse_byte_token(s);
        if (b < 0) {
            tok_printable(s, shown, sizeof shown);
            anc_set_err(err, errlen, "token %d has type BYTE but its text \"%s\" is not <0xNN>",
                        id, shown);
            goto fail;
        }
        t->tok[id].byte = (uint8_t)b;
        if (t->byte_id[b] < 0) t->byte_id[b] = id;
    }

    /* hash maps */
    if (!map_init(&t->all, (size_t)n) || !map_init(&t->pieces, (size_t)n)) goto oom;
    for (int32_t id = 0; id < n; id++) {
        map_put(t, &t->all, id);
        uint8_t ty = t->tok[id].type;
        bool mergeable = ty == TOK_TYPE_NORMAL || ty == TOK_TYPE_USER_DEFINED ||
                         ty == TOK_TYPE_UNUSED || ty == TOK_TYPE_UNDEFINED;
        if (!mergeable || t->tok[id].len == 0) continue;
        map_put(t, &t->pieces, id);
        if (t->tok[id].len > t->max_piece_len) t->max_piece_len = t->tok[id].len;
    }
    if (!ud_build(t)) goto oom;
    eog_build(t);
    if (kind == TOK_KIND_BPE) {
        t->add_space_prefix = false; /* byte-level BPE keeps spaces as they are */
        if (!bpe_load(t, f, err, errlen)) goto fail;
    }
    return t;

oom:
    anc_set_err(err, errlen, "out of memory loading the vocabulary");
fail:
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t) return;
    free(t->tok);
    free(t->text);
    free(t->all.slots);
    free(t->pieces.slots);
    free(t->ud);
    bpe_free(t);
    free(t);
}

enum tok_kind tokenizer_kind(const struct tokenizer *t) { return t->kind; }
int32_t tokenizer_n_vocab(const struct tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const struct tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const struct tokenizer *t) { return t->eos; }
int32_t tokenizer_eot(const struct tokenizer *t) { return t->eot; }
bool tokenizer_add_bos(const struct tokenizer *t) { return t->add_bos; }

const char *tokenizer_token_text(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? tok_text(t, id) : "";
}

enum tok_type tokenizer_token_type(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? (enum tok_type)t->tok[id].type : TOK_TYPE_UNDEFINED;
}

int32_t tokenizer_find(const struct tokenizer *t, const char *text)
{
    return text ? tok_map_get(t, &t->all, text, strlen(text)) : -1;
}

/* ---- SentencePiece encoding -------------------------------------------
 *
 * The text is normalised (spaces -> U+2581, one U+2581 prepended), cut into
 * symbols (user-defined tokens whole, else one UTF-8 character, else one
 * byte), and then the adjacent pair whose concatenation is a vocabulary
 * piece with the highest score is merged, again and again (ties: the
 * leftmost pair). Symbols form a linked list over the normalised text; the
 * candidate pairs sit in a max-heap (TOK_HEAP of tokenizer_impl.h, as in the
 * byte-level BPE), and a candidate whose symbols changed
 * since it was pushed is recognised as stale when popped. Every symbol that
 * is not a piece at the end becomes byte tokens (or the unknown token). */

struct spm_sym {
    size_t start, len;  /* in the normalised text; len 0 = merged away */
    size_t prev, next;  /* NONE at the ends */
    int32_t ud;         /* a user-defined token (never merged): its id; else -1 */
};

struct spm_cand {
    float score;        /* of the piece the pair would make */
    size_t left, right; /* symbols */
    size_t len;         /* left.len + right.len when pushed */
};

/* a before b in the heap: higher score, then leftmost */
static bool spm_cand_before(const struct spm_cand *a, const struct spm_cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

TOK_HEAP(spm_heap, struct spm_cand, spm_cand_before)

struct spm_state {
    const struct tokenizer *t;
    const char *norm;
    struct spm_sym *sym;
    struct spm_heap heap; /* candidate pairs */
    uint32_t *rev;      /* [n_vocab] left length of the last split recorded
                           for an UNUSED piece, 0 = none (lazily allocated) */
    int32_t *out;
    size_t n_out;
    bool oom;
};

/* Push the pair (l, r) if their concatenation is a piece. */
static void spm_try_pair(struct spm_state *st, size_t l, size_t r)
{
    const struct tokenizer *t = st->t;
    if (l == NONE || r == NONE) return;
    const struct spm_sym *a = &st->sym[l], *b = &st->sym[r];
    if (a->ud >= 0 || b->ud >= 0) return;
    size_t len = a->len + b->len;
    if (len > t->max_piece_len) return;
    int32_t id = tok_map_get(t, &t->pieces, st->norm + a->start, len);
    if (id < 0) return;
    struct spm_cand c = { .score = t->tok[id].score, .left = l, .right = r, .len = len };
    if (!spm_heap_push(&st->heap, c)) st->oom = true;
    if (t->tok[id].type == TOK_TYPE_UNUSED) {
        /* SentencePiece merges through unused pieces and splits them again
           at the end, along the last split it saw for that piece */
        if (!st->rev && !(st->rev = calloc((size_t)t->n_vocab, sizeof *st->rev))) {
            st->oom = true;
            return;
        }
        st->rev[id] = (uint32_t)a->len;
    }
}

/* Emit the tokens of one final symbol's text. */
static void spm_emit(struct spm_state *st, const char *s, size_t len)
{
    const struct tokenizer *t = st->t;
    int32_t id = len <= t->max_piece_len ? tok_map_get(t, &t->pieces, s, len) : -1;
    if (id >= 0) {
        uint32_t split = st->rev ? st->rev[id] : 0;
        if (t->tok[id].type == TOK_TYPE_UNUSED && split > 0 && split < len) {
            spm_emit(st, s, split);
            spm_emit(st, s + split, len - split);
        } else {
            st->out[st->n_out++] = id;
        }
        return;
    }
    /* byte fallback: every byte as <0xNN>, when the vocabulary has them */
    bool bytes = true;
    for (size_t i = 0; i < len && bytes; i++)
        if (t->byte_id[(unsigned char)s[i]] < 0) bytes = false;
    if (bytes) {
        for (size_t i = 0; i < len; i++) st->out[st->n_out++] = t->byte_id[(unsigned char)s[i]];
    } else if (t->unk >= 0) {
        st->out[st->n_out++] = t->unk;
    }
    /* neither byte tokens nor an unknown token: the text has no tokens */
}

size_t tok_ud_match(const struct tokenizer *t, const unsigned char *s, size_t n, int32_t *id)
{
    size_t best = 0;
    int32_t node = 0;
    for (size_t k = 0; k < n; k++) {
        int32_t c = t->ud[node].child;
        while (c >= 0 && t->ud[c].byte != s[k]) c = t->ud[c].sibling;
        if (c < 0) break;
        node = c;
        if (t->ud[node].id >= 0) {
            best = k + 1;
            if (id) *id = t->ud[node].id;
        }
    }
    return best;
}

static bool spm_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                       int32_t **out, size_t *n_out)
{
    struct spm_state st = { .t = t };
    char *norm = NULL;
    bool ok = false;

    /* 1. normalise: ' ' -> U+2581, and U+2581 in front of non-empty text */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    bool prefix = t->add_space_prefix && len > 0;
    size_t nlen, extra;
    if (!anc_mul_ok(spaces + prefix, SPM_SPACE_LEN - 1, &extra) ||
        !anc_add_ok(len, extra + (prefix ? 1 : 0), &nlen))
        return false;
    /* at most one token per normalised byte, plus BOS */
    size_t cap_out, sym_bytes, out_bytes;
    if (!anc_add_ok(nlen, 1, &cap_out) || !anc_mul_ok(nlen, sizeof *st.sym, &sym_bytes) ||
        !anc_mul_ok(cap_out, sizeof *st.out, &out_bytes))
        return false;
    norm = malloc(nlen ? nlen : 1);
    st.sym = malloc(sym_bytes ? sym_bytes : 1);
    st.out = malloc(out_bytes);
    if (!norm || !st.sym || !st.out) goto done;
    size_t w = 0;
    if (prefix) {
        memcpy(norm, SPM_SPACE, SPM_SPACE_LEN);
        w = SPM_SPACE_LEN;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(norm + w, SPM_SPACE, SPM_SPACE_LEN);
            w += SPM_SPACE_LEN;
        } else {
            norm[w++] = text[i];
        }
    }
    st.norm = norm;

    /* 2. symbols */
    size_t n_sym = 0;
    for (size_t i = 0; i < nlen;) {
        const unsigned char *s = (const unsigned char *)norm + i;
        int32_t ud_id = -1;
        size_t ud = t->ud ? tok_ud_match(t, s, nlen - i, &ud_id) : 0;
        size_t l = ud ? ud : tok_utf8_len(s, nlen - i);
        st.sym[n_sym] = (struct spm_sym){ .start = i, .len = l, .ud = ud ? ud_id : -1,
                                          .prev = n_sym ? n_sym - 1 : NONE, .next = NONE };
        if (n_sym) st.sym[n_sym - 1].next = n_sym;
        n_sym++;
        i += l;
    }

    /* 3. merge the best pair until none is left */
    for (size_t i = 0; i + 1 < n_sym; i++) spm_try_pair(&st, i, i + 1);
    while (st.heap.n > 0 && !st.oom) {
        struct spm_cand c = spm_heap_pop(&st.heap);
        struct spm_sym *a = &st.sym[c.left], *b = &st.sym[c.right];
        if (a->len == 0 || b->len == 0 || a->next != c.right || a->len + b->len != c.len)
            continue; /* stale: one side has changed since the push */
        a->len += b->len;
        a->next = b->next;
        if (b->next != NONE) st.sym[b->next].prev = c.left;
        b->len = 0;
        spm_try_pair(&st, a->prev, c.left);
        spm_try_pair(&st, c.left, a->next);
    }
    if (st.oom) goto done;

    /* 4. output */
    if (add_bos && t->bos >= 0) st.out[st.n_out++] = t->bos;
    for (size_t i = n_sym ? 0 : NONE; i != NONE; i = st.sym[i].next) {
        if (st.sym[i].ud >= 0)
            st.out[st.n_out++] = st.sym[i].ud;
        else
            spm_emit(&st, norm + st.sym[i].start, st.sym[i].len);
    }
    ok = true;

done:
    free(norm);
    free(st.sym);
    free(st.heap.v);
    free(st.rev);
    if (!ok) {
        free(st.out);
        return false;
    }
    *out = st.out;
    *n_out = st.n_out;
    return true;
}

bool tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, bool add_bos,
                      int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!text) len = 0;
    switch (t->kind) {
    case TOK_KIND_SPM:
        return spm_encode(t, text ? text : "", len, add_bos, out, n_out);
    case TOK_KIND_BPE:
        return bpe_encode(t, text ? text : "", len, add_bos, out, n_out);
    }
    return false;
}

/* ---- decoding --------------------------------------------------------- */

void tok_put(char *dst, size_t cap, size_t at, const char *s, size_t n)
{
    if (at >= cap) return;
    if (n > cap - at) n = cap - at;
    memcpy(dst + at, s, n);
}

bool tok_is_control(const struct tokenizer *t, int32_t id)
{
    return t->tok[id].type == TOK_TYPE_CONTROL || id == t->bos || id == t->eos ||
           id == t->eot;
}

/* The bytes of token id (writes at most cap bytes, no NUL; returns the full
 * length). at_start: nothing but control tokens came before, so the dummy
 * prefix space is dropped as SentencePiece does. */
static size_t spm_piece(const struct tokenizer *t, int32_t id, bool at_start, char *dst,
                        size_t cap)
{
    const struct tok_info *ti = &t->tok[id];
    if (tok_is_control(t, id)) return 0;
    if (ti->type == TOK_TYPE_UNKNOWN || id == t->unk) {
        tok_put(dst, cap, 0, SPM_UNK_SURFACE, SPM_UNK_SURFACE_LEN);
        return SPM_UNK_SURFACE_LEN;
    }
    if (ti->type == TOK_TYPE_BYTE) {
        char b = (char)ti->byte;
        tok_put(dst, cap, 0, &b, 1);
        return 1;
    }
    const char *s = tok_text(t, id);
    size_t n = ti->len, w = 0;
    if (at_start && t->add_space_prefix && n >= SPM_SPACE_LEN &&
        memcmp(s, SPM_SPACE, SPM_SPACE_LEN) == 0) {
        s += SPM_SPACE_LEN;
        n -= SPM_SPACE_LEN;
    }
    for (size_t i = 0; i < n;) {
        if (n - i >= SPM_SPACE_LEN && memcmp(s + i, SPM_SPACE, SPM_SPACE_LEN) == 0) {
            tok_put(dst, cap, w++, " ", 1);
            i += SPM_SPACE_LEN;
        } else {
            tok_put(dst, cap, w++, s + i, 1);
            i++;
        }
    }
    return w;
}

static size_t piece_at(const struct tokenizer *t, int32_t id, bool at_start, char *dst,
                       size_t cap)
{
    if (id < 0 || id >= t->n_vocab) return 0;
    switch (t->kind) {
    case TOK_KIND_SPM:
        return spm_piece(t, id, at_start, dst, cap);
    case TOK_KIND_BPE:
        return tok_is_control(t, id) ? 0 : bpe_piece(t, id, dst, cap);
    }
    return 0;
}

size_t tokenizer_piece(const struct tokenizer *t, int32_t prev, int32_t id, char *buf,
                       size_t cap)
{
    bool at_start = prev < 0 || (t->bos >= 0 && prev == t->bos);
    size_t n = piece_at(t, id, at_start, buf, cap ? cap - 1 : 0);
    if (cap) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* The whole sequence, as SentencePiece decodes it: the dummy prefix is
 * dropped from the first token that is not a control token (so a BOS in the
 * middle of a sequence does not eat the next space, unlike tokenizer_piece,
 * which sees only the previous token). Two passes: measure, then write. */
char *tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n)
{
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *buf = NULL;
        if (pass == 1) {
            size_t bytes;
            if (!anc_add_ok(total, 1, &bytes) || !(buf = malloc(bytes))) return NULL;
        }
        size_t w = 0;
        bool at_start = true;
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i];
            if (id < 0 || id >= t->n_vocab) continue;
            size_t k = piece_at(t, id, at_start, buf ? buf + w : NULL, buf ? total - w : 0);
            if (pass == 0 && !anc_add_ok(w, k, &w)) return NULL;
            if (pass == 1) w += k;
            if (!tok_is_control(t, id)) at_start = false;
        }
        if (pass == 0) {
            total = w;
        } else {
            buf[w] = '\0';
            return buf;
        }
    }
    return NULL;
}
