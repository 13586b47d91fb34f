/* fuzz_tokenizer.c — libFuzzer harness for core/tokenizer*.c: encodes and
 * decodes every input and checks the round trip. Needs core/ (gguf,
 * tokenizer*, util) and kernels/dtype only; no curses, readline or sqlite.
 *
 * Vocabulary: $ANC_FUZZ_VOCAB (a path; "gpt2" is short for
 * ../shared/models/ggml-vocab-gpt-2.gguf, the byte-level BPE), else
 * ../shared/models/ggml-vocab-llama-spm.gguf (relative to the current
 * directory), else a small SentencePiece one built in memory.
 *
 * The invariant checked: SentencePiece — when the vocabulary has all 256
 * byte tokens and "▁" as a piece, and adds the space prefix, the pieces of
 * encode(x) give back x byte for byte, for ANY bytes x (invalid UTF-8 and
 * NULs included: they travel as byte tokens) except texts holding U+2581
 * itself, which decodes to a space. Byte-level BPE — when every byte alone
 * encodes to a token that decodes to it, the same for ANY bytes x. In both,
 * tokenizer_decode gives the same up to its first NUL. Whatever the
 * vocabulary, every BPE pre-tokenizer must cut every input into
 * contiguous non-empty pieces that cover it and never split a well-formed
 * UTF-8 character (Falcon's, which splits digits on bytes, excepted).
 *
 * Inputs that start with "GGUF" are also tried as vocabulary files: a
 * malformed one must be refused with a message, a good one must tokenize.
 * The embedded vocabulary is written by tests/gguf_build.h (header-only, no
 * test helpers behind it). */
#include "../gguf_build.h"
#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "fuzz_tokenizer: " __VA_ARGS__);                                   \
        fputc('\n', stderr);                                                               \
        abort();                                                                           \
    } while (0)

/* ---- the fallback vocabulary, as a GGUF file in memory ---------------------- */

#define SP "\xE2\x96\x81"

/* Pieces of every kind the encoder treats differently: merges with scores
 * (ties included), a user-defined token, an unused piece to resegment. */
static const struct {
    const char *text;
    float score;
    int32_t type;
} extra_tokens[] = {
    {SP, -1, TOK_TYPE_NORMAL},      {"a", -2, TOK_TYPE_NORMAL},
    {"b", -2, TOK_TYPE_NORMAL},     {"c", -2, TOK_TYPE_NORMAL},
    {"ab", -3, TOK_TYPE_NORMAL},    {"bc", -3, TOK_TYPE_NORMAL},
    {SP "a", -4, TOK_TYPE_NORMAL},  {SP "ab", -5, TOK_TYPE_NORMAL},
    {"abc", -6, TOK_TYPE_NORMAL},   {SP SP, -7, TOK_TYPE_NORMAL},
    {"\xC3\xA9", -2, TOK_TYPE_NORMAL}, {"x", -2, TOK_TYPE_NORMAL},
    {"xy", 5, TOK_TYPE_UNUSED},     {"y", -2, TOK_TYPE_NORMAL},
    {"xyz", -1, TOK_TYPE_NORMAL},   {"z", -2, TOK_TYPE_NORMAL},
    {"<u>", 0, TOK_TYPE_USER_DEFINED}, {"<uu>", 0, TOK_TYPE_USER_DEFINED},
    {"<|end|>", 0, TOK_TYPE_CONTROL},
};
#define N_EXTRA (sizeof extra_tokens / sizeof *extra_tokens)

static uint8_t *embedded_vocab(size_t *len)
{
    static const char *const specials[] = {"<unk>", "<s>", "</s>"};
    static const int32_t special_types[] = {TOK_TYPE_UNKNOWN, TOK_TYPE_CONTROL,
                                            TOK_TYPE_CONTROL};
    const uint64_t n = 3 + 256 + N_EXTRA;
    struct gw w = {0};
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_arr(&w, "tokenizer.ggml.tokens", GGUF_VT_STRING, n);
    for (int i = 0; i < 3; i++) gw_str(&w, specials[i]);
    for (int i = 0; i < 256; i++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", i);
        gw_str(&w, t);
    }
    for (size_t i = 0; i < N_EXTRA; i++) gw_str(&w, extra_tokens[i].text);
    gw_kv_arr(&w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, n);
    for (uint64_t i = 0; i < 3 + 256; i++) gw_f32(&w, 0);
    for (size_t i = 0; i < N_EXTRA; i++) gw_f32(&w, extra_tokens[i].score);
    gw_kv_arr(&w, "tokenizer.ggml.token_type", GGUF_VT_INT32, n);
    for (int i = 0; i < 3; i++) gw_i32(&w, special_types[i]);
    for (int i = 0; i < 256; i++) gw_i32(&w, TOK_TYPE_BYTE);
    for (size_t i = 0; i < N_EXTRA; i++) gw_i32(&w, extra_tokens[i].type);
    gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    uint8_t *file = gw_file(&w, GGUF_DEFAULT_ALIGNMENT, len);
    gw_free(&w);
    return file;
}

/* ---- setup --------------------------------------------------------------------- */

static struct tokenizer *tok;
static bool exact; /* the round trip holds for this vocabulary */

static void setup(void)
{
    const char *path = getenv("ANC_FUZZ_VOCAB");
    if (!path || !*path) path = "../shared/models/ggml-vocab-llama-spm.gguf";
    if (strcmp(path, "gpt2") == 0) path = "../shared/models/ggml-vocab-gpt-2.gguf";
    char err[512] = "";
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    uint8_t *mem = NULL;
    if (!f) {
        size_t len;
        fprintf(stderr, "fuzz_tokenizer: %s; using the embedded vocabulary\n", err);
        mem = embedded_vocab(&len);
        f = gguf_open_memory(mem, len, "embedded", err, sizeof err);
        if (!f) FAIL("embedded vocabulary refused: %s", err);
    }
    tok = tokenizer_new(f, err, sizeof err);
    if (!tok) FAIL("no tokenizer: %s", err);
    gguf_close(f);
    free(mem);

    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_kind(tok) == TOK_KIND_BPE) {
        /* does the invariant hold exactly? every byte a token of its own */
        exact = true;
        for (int c = 0; c < 256 && exact; c++) {
            char b = (char)c, back[4];
            exact = tokenizer_encode(tok, &b, 1, false, &ids, &n) && n == 1 &&
                    tokenizer_piece(tok, -1, ids[0], back, sizeof back) == 1 && back[0] == b;
            free(ids);
            ids = NULL;
        }
        fprintf(stderr, "fuzz_tokenizer: byte-level BPE, %d tokens, round trip %s\n",
                tokenizer_n_vocab(tok), exact ? "checked" : "not checked (bytes missing)");
        return;
    }
    /* does the invariant hold exactly? all byte tokens, and "▁" a piece */
    exact = tokenizer_find(tok, SP) >= 0 &&
            tokenizer_token_type(tok, tokenizer_find(tok, SP)) == TOK_TYPE_NORMAL;
    for (int c = 0; c < 256 && exact; c++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", c);
        int32_t id = tokenizer_find(tok, t);
        exact = id >= 0 && tokenizer_token_type(tok, id) == TOK_TYPE_BYTE;
    }
    /* the space prefix is on when a lone byte comes out after a ▁ */
    if (exact && tokenizer_encode(tok, "\x01", 1, false, &ids, &n))
        exact = n == 2 && ids[0] == tokenizer_find(tok, SP);
    free(ids);
    fprintf(stderr, "fuzz_tokenizer: %d tokens, round trip %s\n", tokenizer_n_vocab(tok),
            exact ? "checked" : "not checked (vocabulary lacks byte tokens or U+2581)");
}

/* ---- one input ----------------------------------------------------------------- */

static void check_encode(const uint8_t *data, size_t size, bool bos, bool round_trip)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (!tokenizer_encode(tok, (const char *)data, size, bos, &ids, &n))
        FAIL("encode failed on %zu bytes", size);
    int32_t nv = tokenizer_n_vocab(tok);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= nv) FAIL("id %d out of range", ids[i]);
        bool is_bos = bos && i == 0 && ids[i] == tokenizer_bos(tok);
        if (!is_bos && tokenizer_token_type(tok, ids[i]) == TOK_TYPE_CONTROL)
            FAIL("control token %d came from text", ids[i]);
    }
    if (size == 0 && n != (bos && tokenizer_bos(tok) >= 0 ? 1u : 0u))
        FAIL("empty text gave %zu tokens", n);

    /* pieces, byte-exact */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += tokenizer_piece(tok, i ? ids[i - 1] : -1, ids[i], NULL, 0);
    char *p = malloc(total + 1);
    if (!p) FAIL("out of memory");
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = tokenizer_piece(tok, i ? ids[i - 1] : -1, ids[i], p + w, total + 1 - w);
        if (k > total - w) FAIL("piece longer the second time");
        w += k;
    }
    if (w != total) FAIL("pieces measured %zu, wrote %zu", total, w);
    p[total] = '\0';
    if (round_trip && (total != size || memcmp(p, data, size) != 0))
        FAIL("round trip: %zu bytes in, %zu bytes out", size, total);

    /* decode: the pieces up to the first NUL */
    char *d = tokenizer_decode(tok, ids, n);
    if (!d) FAIL("decode failed");
    if (strcmp(d, p) != 0) FAIL("decode differs from the pieces");
    free(d);
    free(p);
    free(ids);
}

/* Every pre-tokenizer's pieces: contiguous, non-empty, covering the text,
 * never inside a well-formed character. */
static void check_pretokenizers(const uint8_t *data, size_t size)
{
    for (int p = 0; p < BPE_PRE_COUNT; p++) {
        bool bytes = bpe_pre_cuts_bytes((enum bpe_pre)p); /* Falcon may cut characters */
        size_t *ends = NULL, n = 0, at = 0, j = 0;
        if (!bpe_pretokenize((enum bpe_pre)p, (const char *)data, size, &ends, &n))
            FAIL("pre-tokenizer %d failed on %zu bytes", p, size);
        for (size_t k = 0; k < n; k++) {
            if (ends[k] <= at || ends[k] > size) FAIL("pre-tokenizer %d: bad piece end", p);
            at = ends[k];
        }
        if (at != size) FAIL("pre-tokenizer %d: pieces cover %zu of %zu bytes", p, at, size);
        for (size_t i = 0; i < size && !bytes;) {
            size_t cl = tok_utf8_len(data + i, size - i);
            while (j < n && ends[j] <= i) j++;
            if (j < n && ends[j] < i + cl) FAIL("pre-tokenizer %d cut a character", p);
            i += cl;
        }
        free(ends);
    }
}

/* The input as a vocabulary: refused with a message, or usable. */
static void check_vocab(const uint8_t *data, size_t size)
{
    static const char *const texts[] = {"", "Hello world", " a b  ab <u>xy",
                                        "\xff\x01\xC3\xA9 \xE2\x96\x81"};
    char err[512] = "";
    struct gguf_file *f = gguf_open_memory(data, size, "input", err, sizeof err);
    if (!f) return;
    struct tokenizer *t = tokenizer_new(f, err, sizeof err);
    gguf_close(f);
    if (!t) {
        if (!err[0]) FAIL("vocabulary refused without a message");
        return;
    }
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (!tokenizer_encode(t, texts[i], strlen(texts[i]), true, &ids, &n))
            FAIL("encode failed with a fuzzed vocabulary");
        for (size_t k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= tokenizer_n_vocab(t)) FAIL("id %d out of range", ids[k]);
        free(tokenizer_decode(t, ids, n));
        free(ids);
    }
    (void)tokenizer_find(t, "<s>");
    (void)tokenizer_token_text(t, tokenizer_n_vocab(t) - 1);
    tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok) setup();
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) check_vocab(data, size);
    bool round_trip =
        exact && (tokenizer_kind(tok) == TOK_KIND_BPE || !memmem(data, size, SP, 3));
    check_pretokenizers(data, size);
    check_encode(data, size, true, round_trip);
    check_encode(data, size, false, round_trip);

    /* the same bytes as arbitrary ids: decode and pieces must not crash */
    size_t n = size / sizeof(int32_t);
    if (n) {
        int32_t *ids = malloc(n * sizeof *ids);
        if (!ids) FAIL("out of memory");
        memcpy(ids, data, n * sizeof *ids);
        char *d = tokenizer_decode(tok, ids, n);
        if (!d) FAIL("decode of arbitrary ids failed");
        free(d);
        char small[4];
        for (size_t i = 0; i < n; i++)
            (void)tokenizer_piece(tok, i ? ids[i - 1] : -1, ids[i], small, sizeof small);
        free(ids);
    }
    return 0;
}
