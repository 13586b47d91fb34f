/* test_tokenizer_bpe.c — tests of the byte-level BPE (core/tokenizer_bpe.c):
 * GPT-2 ids and the gpt-2 / llama-bpe / qwen2 pre-tokenizer splits compared
 * with the golden files from tests/tokenizer_bpe_ref.py, round trips, invalid
 * UTF-8, long texts, and tiny vocabularies built in memory for the rules
 * (tests/gguf_build.h; golden files read by tests/golden_tsv.h).
 * Needs core/ (gguf, tokenizer*, util) only; no curses, readline or sqlite. */
#include "gguf.h"
#include "gguf_build.h"
#include "golden_tsv.h"
#include "test_util.h"
#include "tokenizer_check.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "util.h"

#include <stdint.h>

#define ERR_LEN 512
#define GPT2_VOCAB "ggml-vocab-gpt-2.gguf"
#define GPT2_N_VOCAB 50257
#define GPT2_EOT 50256 /* <|endoftext|>: BOS and EOS of GPT-2 */

/* ---- tiny vocabularies in memory ------------------------------------------------- */

/* A tokenizer from the key-values in w (the buffer is freed before
 * returning, which checks that the tokenizer copied what it needs); NULL
 * with the message in err when refused. */
static struct tokenizer *open_kvs(const struct gw *w, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = gw_file(w, GGUF_DEFAULT_ALIGNMENT, &len);
    struct gguf_file *g = gguf_open_memory(buf, len, "mem.gguf", err, errlen);
    struct tokenizer *t = NULL;
    if (g) {
        t = tokenizer_new(g, err, errlen);
        gguf_close(g);
    } else {
        fprintf(stderr, "test bug: in-memory GGUF refused: %s\n", err);
        test_failures++;
    }
    free(buf);
    return t;
}

static void expect_refused_at(const struct gw *w, const char *want, int line)
{
    char err[ERR_LEN] = "";
    struct tokenizer *t = open_kvs(w, err, sizeof err);
    if (t) {
        fprintf(stderr, "%s:%d: bad vocabulary accepted; expected \"%s\"\n", __FILE__, line,
                want);
        test_failures++;
        tokenizer_free(t);
    } else if (!strstr(err, want)) {
        fprintf(stderr, "%s:%d: message \"%s\" should contain \"%s\"\n", __FILE__, line, err,
                want);
        test_failures++;
    }
}
#define EXPECT_REFUSED(w, want) expect_refused_at(w, want, __LINE__)

/* ---- the GPT-2 vocabulary, with any pre-tokenizer --------------------------------- */

static void copy_str_array(struct gw *w, const struct gguf_file *f, const char *key)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING) {
        fprintf(stderr, "%s lacks %s\n", GPT2_VOCAB, key);
        exit(1);
    }
    gw_kv_arr(w, key, GGUF_VT_STRING, kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        struct gguf_str s = gguf_arr_str(kv, i);
        gw_strn(w, s.ptr, (size_t)s.len);
    }
}

/* pre NULL: the file as it is; else its tokenizer keys with
 * tokenizer.ggml.pre = pre, rebuilt in memory. */
static struct tokenizer *open_gpt2(const char *pre)
{
    char path[1024], err[ERR_LEN] = "";
    test_model_path(path, sizeof path, GPT2_VOCAB);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, err);
        exit(1);
    }
    struct tokenizer *t;
    if (!pre) {
        t = tokenizer_new(f, err, sizeof err);
    } else {
        struct gw w = {0};
        gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
        gw_kv_str(&w, "tokenizer.ggml.pre", pre);
        copy_str_array(&w, f, "tokenizer.ggml.tokens");
        copy_str_array(&w, f, "tokenizer.ggml.merges");
        const struct gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
        gw_kv_arr(&w, "tokenizer.ggml.token_type", GGUF_VT_INT32, ty->arr_n);
        for (uint64_t i = 0; i < ty->arr_n; i++) gw_i32(&w, gguf_arr_i32(ty, i));
        gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", GPT2_EOT);
        gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", GPT2_EOT);
        /* as the gpt-2 file: no BOS, whatever the pre-tokenizer's default */
        gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", false);
        t = open_kvs(&w, err, sizeof err);
        gw_free(&w);
    }
    gguf_close(f);
    if (!t) {
        fprintf(stderr, "no tokenizer from %s (pre %s): %s\n", path, pre ? pre : "-", err);
        exit(1);
    }
    return t;
}

/* ---- the families, their names and golden files --------------------------------------- */

static const struct fam {
    enum bpe_pre pre;
    const char *name; /* a tokenizer.ggml.pre value */
    const char *tag;  /* in the golden files' names */
} fams[] = {
    {BPE_PRE_GPT2, "gpt-2", "gpt2"},
    {BPE_PRE_LLAMA3, "llama-bpe", "llama_bpe"},
    {BPE_PRE_QWEN2, "qwen2", "qwen2"},
    {BPE_PRE_STARCODER, "smollm", "starcoder"},
    {BPE_PRE_TEKKEN, "tekken", "tekken"},
    {BPE_PRE_GPT4O, "gpt-4o", "gpt4o"},
    {BPE_PRE_DEEPSEEK_LLM, "deepseek-llm", "deepseek_llm"},
    {BPE_PRE_DEEPSEEK3, "deepseek-v3", "deepseek3"},
    {BPE_PRE_FALCON, "falcon", "falcon"},
    {BPE_PRE_BLOOM, "bloom", "bloom"},
};
#define N_FAMS (sizeof fams / sizeof *fams)

/* ---- helpers ------------------------------------------------------------------------ */


/* decode(encode(text)) == text byte for byte through tokenizer_piece, and
 * through tokenizer_decode up to its first NUL. Returns whether it held. */
static bool round_trip_at(const struct tokenizer *t, const char *text, size_t len, int line)
{
    int32_t *ids = NULL;
    size_t n = 0, plen;
    if (!tokenizer_encode(t, text, len, false, &ids, &n)) {
        fprintf(stderr, "%s:%d: encode failed\n", __FILE__, line);
        test_failures++;
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_n_vocab(t)) ok = false;
    char *p = pieces(t, ids, n, &plen);
    if (plen != len || memcmp(p, text, len) != 0) ok = false;
    char *d = tokenizer_decode(t, ids, n);
    size_t upto = strnlen(text, len);
    if (!d || strlen(d) != upto || memcmp(d, text, upto) != 0) ok = false;
    if (!ok) {
        fprintf(stderr, "%s:%d: no round trip for %zu bytes (pieces give %zu)\n", __FILE__,
                line, len, plen);
        test_failures++;
    }
    free(d);
    free(p);
    free(ids);
    return ok;
}
#define ROUND_TRIP(t, lit) round_trip_at(t, lit, sizeof(lit) - 1, __LINE__)

/* ---- the GPT-2 vocabulary ------------------------------------------------------------ */

static void test_gpt2_basics(const struct tokenizer *t)
{
    CHECK_INT_EQ(tokenizer_kind(t), TOK_KIND_BPE);
    CHECK_INT_EQ(tokenizer_n_vocab(t), GPT2_N_VOCAB);
    CHECK_INT_EQ(tokenizer_bos(t), GPT2_EOT);
    CHECK_INT_EQ(tokenizer_eos(t), GPT2_EOT);
    CHECK(!tokenizer_add_bos(t)); /* the file has no add_bos_token: GPT-2 adds none */
    CHECK_INT_EQ(tokenizer_find(t, "<|endoftext|>"), GPT2_EOT);
    CHECK_INT_EQ(tokenizer_token_type(t, GPT2_EOT), TOK_TYPE_CONTROL);
    CHECK(strcmp(tokenizer_token_text(t, 15496), "Hello") == 0);
    CHECK(strcmp(tokenizer_token_text(t, 995), "\xC4\xA0world") == 0); /* "Ġworld" */
    ENCODE_IS(t, "Hello world", false, 15496, 995);
    ENCODE_IS(t, "Hello world", true, GPT2_EOT, 15496, 995);
    ENCODE_NONE(t, "", false);
    ENCODE_IS(t, "", true, GPT2_EOT);
    /* special-token text is plain text */
    ENCODE_IS(t, "<|endoftext|>", false, 27, 91, 437, 1659, 5239, 91, 29);

    char buf[16];
    CHECK_INT_EQ(tokenizer_piece(t, -1, 995, buf, sizeof buf), 6);
    CHECK(strcmp(buf, " world") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, 995, buf, 3), 6); /* truncated, full length */
    CHECK(strcmp(buf, " w") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, GPT2_EOT, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, -5, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, GPT2_N_VOCAB, buf, sizeof buf), 0);
    /* no dummy prefix to drop: a leading space survives at the start */
    CHECK_INT_EQ(tokenizer_piece(t, GPT2_EOT, 995, buf, sizeof buf), 6);
    int32_t ids[] = {GPT2_EOT, 995, GPT2_EOT, 995};
    char *d = tokenizer_decode(t, ids, 4);
    CHECK(d && strcmp(d, " world world") == 0);
    free(d);
}

static void test_gpt2_golden(const struct tokenizer *t, const char *file, const char *what)
{
    size_t n, match = 0, trips = 0;
    struct golden *g = golden_read(file, GOLDEN_TEXT_IDS, &n);
    for (size_t i = 0; i < n; i++) {
        if (encode_is(t, g[i].text, g[i].len, false, g[i].ids, g[i].n_ids, __FILE__, __LINE__)) match++;
        if (round_trip_at(t, g[i].text, g[i].len, __LINE__)) trips++;
    }
    fprintf(stderr, "%s: %zu of %zu encode cases match tokenizers, %zu round-trip\n", what,
            match, n, trips);
    CHECK(n >= 150);
    golden_free(g, n);
}

static void test_gpt2_decode_golden(const struct tokenizer *t)
{
    size_t n, match = 0;
    struct golden *g = golden_read("tokenizer_gpt2_decode.tsv", GOLDEN_IDS_TEXT, &n);
    for (size_t i = 0; i < n; i++) {
        /* the pieces (NULs included), and tokenizer_decode up to a NUL */
        size_t len;
        char *p = pieces(t, g[i].ids, g[i].n_ids, &len);
        char *d = tokenizer_decode(t, g[i].ids, g[i].n_ids);
        size_t upto = strnlen(g[i].text, g[i].len);
        bool same = len == g[i].len && memcmp(p, g[i].text, len) == 0 && d &&
                    strlen(d) == upto && memcmp(d, g[i].text, upto) == 0;
        CHECK_MSG(same, "decode case %zu gives \"%s\", want \"%s\"", i + 1, p, g[i].text);
        match += same;
        free(p);
        free(d);
    }
    fprintf(stderr, "gpt-2 decode: %zu of %zu cases match tokenizers\n", match, n);
    CHECK(n >= 10);
    golden_free(g, n);
}

/* Every byte alone is its own token, and decodes back to that byte. The
 * file holds "byte<TAB>id" lines. */
static void test_gpt2_bytes(const struct tokenizer *t)
{
    char path[1024], err[ERR_LEN];
    const char *src = getenv("ANC_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/golden/tokenizer_gpt2_bytes.tsv",
             src && *src ? src : ".");
    size_t size, n = 0;
    char *all = anc_read_file(path, &size, err, sizeof err);
    if (!all) {
        fprintf(stderr, "cannot read %s: %s\n", path, err);
        exit(1);
    }
    for (const char *p = all; *p; n++) {
        char *end;
        long b = strtol(p, &end, 10);
        long want = strtol(end, &end, 10);
        CHECK(b == (long)n && want >= 0 && want < GPT2_N_VOCAB);
        char c = (char)b;
        int32_t id = (int32_t)want;
        encode_is(t, &c, 1, false, &id, 1, __FILE__, __LINE__);
        char buf[4];
        CHECK_INT_EQ(tokenizer_piece(t, -1, id, buf, sizeof buf), 1);
        CHECK(buf[0] == c);
        p = *end == '\n' ? end + 1 : end;
        if (n > 256) break;
    }
    CHECK_INT_EQ(n, 256);
    free(all);
}

static void test_split_golden(enum bpe_pre pre, const char *file, const char *what)
{
    size_t n, match = 0;
    struct golden *g = golden_read(file, GOLDEN_TEXT_SPLIT, &n);
    for (size_t i = 0; i < n; i++) {
        size_t *ends = NULL, k = 0;
        CHECK(bpe_pretokenize(pre, g[i].text, g[i].len, &ends, &k));
        bool same = k == g[i].n_split;
        for (size_t j = 0, at = 0; same && j < k; j++) {
            same = ends[j] - at == g[i].split_len[j] &&
                   memcmp(g[i].text + at, g[i].split[j], g[i].split_len[j]) == 0;
            at = ends[j];
        }
        if (!same) {
            fprintf(stderr, "%s: case %zu splits differently:\n  got ", what, i + 1);
            for (size_t j = 0, at = 0; j < k; j++) {
                fprintf(stderr, "[%.*s]", (int)(ends[j] - at), g[i].text + at);
                at = ends[j];
            }
            fprintf(stderr, "\n  want ");
            for (size_t j = 0; j < g[i].n_split; j++) fprintf(stderr, "[%s]", g[i].split[j]);
            fputc('\n', stderr);
            test_failures++;
        }
        match += same;
        free(ends);
    }
    fprintf(stderr, "%s splits: %zu of %zu cases match the regex package\n", what, match, n);
    CHECK(n >= 150);
    golden_free(g, n);
}

/* How many cases of a split golden file the splitter of pre gets wrong. */
static size_t split_mismatches(enum bpe_pre pre, const char *file)
{
    size_t n, bad = 0;
    struct golden *g = golden_read(file, GOLDEN_TEXT_SPLIT, &n);
    for (size_t i = 0; i < n; i++) {
        size_t *ends = NULL, k = 0;
        CHECK(bpe_pretokenize(pre, g[i].text, g[i].len, &ends, &k));
        bool same = k == g[i].n_split;
        for (size_t j = 0, at = 0; same && j < k; j++) {
            same = ends[j] - at == g[i].split_len[j];
            at = ends[j];
        }
        bad += !same;
        free(ends);
    }
    golden_free(g, n);
    return bad;
}

/* ---- invalid UTF-8, pre-token invariants, long texts ---------------------------------- */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Pieces are contiguous, non-empty, cover the text, and never cut a valid
 * UTF-8 character. */
static void check_split_invariants(enum bpe_pre pre, const char *s, size_t len)
{
    size_t *ends = NULL, k = 0;
    CHECK(bpe_pretokenize(pre, s, len, &ends, &k));
    size_t at = 0;
    bool ok = len ? k > 0 : k == 0;
    for (size_t j = 0; j < k && ok; j++) {
        ok = ends[j] > at && ends[j] <= len;
        at = ends[j];
    }
    ok = ok && at == len;
    /* character starts: a cut inside a well-formed character is wrong (but
       for Falcon, whose digit splits see bytes) */
    for (size_t i = 0, j = 0; i < len && ok && !bpe_pre_cuts_bytes(pre);) {
        size_t cl = tok_utf8_len((const unsigned char *)s + i, len - i);
        while (j < k && ends[j] <= i) j++;
        if (j < k && ends[j] > i && ends[j] < i + cl) ok = false;
        i += cl;
    }
    CHECK_MSG(ok, "pre-tokenizer %d: bad pieces for %zu bytes", (int)pre, len);
    free(ends);
}

static void test_invalid_utf8(const struct tokenizer *const *ts, size_t n_ts)
{
    static const char *const texts[] = {
        "\xff", "\xfe\xff", "a\x80\x62", "\xc3", "\xc3(", "caf\xe9 au lait", "\xe2\x82",
        "\xed\xa0\x80 surrogate", "\xc0\xaf overlong", "\xf4\x90\x80\x80 too high",
        "it'\xff s", " \xff\xff word", "\xff\n\n\xfe", "'\xc5", "12\x80\x33\x34", "\xf0\x9f\x98"};
    for (size_t k = 0; k < n_ts; k++) {
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            round_trip_at(ts[k], texts[i], strlen(texts[i]), __LINE__);
            check_split_invariants(ts[k]->pre, texts[i], strlen(texts[i]));
        }
        /* random bytes, random mixtures of spaces, letters and odd bytes */
        uint32_t r = 2463534242u;
        size_t bad = 0;
        for (int round = 0; round < 300; round++) {
            char buf[96];
            size_t len = rng_next(&r) % sizeof buf;
            static const char alphabet[] = " \t\n\r'sStTa1\xc3\xa9\xe4\xb8\xad\xff\x80\xc5\xbf";
            for (size_t i = 0; i < len; i++)
                buf[i] = round % 2 ? (char)rng_next(&r)
                                   : alphabet[rng_next(&r) % (sizeof alphabet - 1)];
            if (!round_trip_at(ts[k], buf, len, __LINE__)) bad++;
            check_split_invariants(ts[k]->pre, buf, len);
        }
        CHECK_INT_EQ(bad, 0);
    }
}

static void test_long_text(const struct tokenizer *t, const char *what)
{
    static const char *const words[] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "\n",
        "\xE4\xBD\xA0\xE5\xA5\xBD", "caf\xC3\xA9", "3.14159", "  ", "\xF0\xA0\x9C\x8E",
        "{", "}", "\t", "supercalifragilistic", "\xD0\x9F\xD1\x80\xD0\xB8", "!", "I'm",
        "1234567", "\r\n", "\xF0\x9F\x98\x80"};
    const size_t want = 200 * 1024;
    char *text = malloc(want + 64);
    if (!text) exit(1);
    size_t len = 0;
    uint32_t r = 12345;
    while (len < want) {
        const char *w = words[rng_next(&r) % (sizeof words / sizeof *words)];
        size_t wl = strlen(w);
        memcpy(text + len, w, wl);
        len += wl;
        text[len++] = ' ';
    }
    /* a few tens of ms at -O2, a few hundred under sanitizers; quadratic
       behaviour would take minutes on the one-word texts */
#if defined(__SANITIZE_ADDRESS__)
    const double limit = 10.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    const double limit = 10.0;
#else
    const double limit = 2.0;
#endif
#else
    const double limit = 2.0;
#endif
    /* mixed text, then pathological ones: one 200 KB word (a single
       pre-token: long merge chains), all spaces, all digits, all 0xFF
       (invalid bytes: one run of "other"), newline-space pairs */
    for (int k = 0; k < 6; k++) {
        if (k == 1) memset(text, 'a', len);
        if (k == 2) memset(text, ' ', len);
        if (k == 3) memset(text, '7', len);
        if (k == 4) memset(text, 0xFF, len);
        if (k == 5)
            for (size_t i = 0; i < len; i++) text[i] = i % 2 ? ' ' : '\n';
        int32_t *ids = NULL;
        size_t n = 0;
        double t0 = anc_now();
        CHECK(tokenizer_encode(t, text, len, false, &ids, &n));
        double dt = anc_now() - t0;
        fprintf(stderr, "%s long text %d: %zu bytes -> %zu tokens in %.1f ms\n", what, k, len,
                n, dt * 1e3);
        CHECK_MSG(dt < limit, "encoding %zu bytes took %.2f s", len, dt);
        CHECK(n >= 1 && n <= len);
        char *d = tokenizer_decode(t, ids, n);
        CHECK(d && strlen(d) == len && memcmp(d, text, len) == 0);
        free(d);
        free(ids);
    }
    free(text);
}

/* ---- tiny vocabularies: the rules ---------------------------------------------------- */

/* Byte-level texts of the 256 bytes, then extra tokens. */
static void write_bytes_vocab(struct gw *w, const char *const *extra, size_t n_extra,
                              const int32_t *extra_types)
{
    const size_t n = 256 + n_extra;
    gw_kv_arr(w, "tokenizer.ggml.tokens", GGUF_VT_STRING, n);
    for (unsigned b = 0; b < 256; b++) {
        /* GPT-2's table, written out independently of tokenizer_bpe.c */
        static const unsigned lo[] = {0x21, 0xA1, 0xAE}, hi[] = {0x7E, 0xAC, 0xFF};
        unsigned cp = 0;
        for (int k = 0; k < 3; k++)
            if (b >= lo[k] && b <= hi[k]) cp = b;
        if (!cp) {
            unsigned idx = 0;
            for (unsigned c = 0; c < b; c++) {
                bool pr = false;
                for (int k = 0; k < 3; k++) pr = pr || (c >= lo[k] && c <= hi[k]);
                idx += !pr;
            }
            cp = 256 + idx;
        }
        char u[4];
        gw_strn(w, u, golden_utf8_put(u, cp));
    }
    for (size_t i = 0; i < n_extra; i++) gw_str(w, extra[i]);
    gw_kv_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, n);
    for (size_t i = 0; i < n; i++)
        gw_i32(w, i < 256 || !extra_types ? TOK_TYPE_NORMAL : extra_types[i - 256]);
}

static void test_tiny_rules(void)
{
    /* 0..255 the bytes (id = byte), then 256.. ab bc abc <|x|> <u> Ġa */
    static const char *const extra[] = {"ab", "bc", "abc",
                                        "<|x|>", "<u>", "\xC4\xA0\x61" /* Ġa */};
    static const int32_t types[] = {1, 1, 1, TOK_TYPE_CONTROL, TOK_TYPE_USER_DEFINED, 1};
    static const char *const merges[] = {"a b", "b c", "\xC4\xA0 a", "x y", "a zz"};
    enum { AB = 256, BC, ABC, CTRL, UD, SPA };
    const int32_t A = 'a', B = 'b', C = 'c';

    for (int k = 0; k < 3; k++) {
        static const char *const pres[] = {"gpt-2", "llama-bpe", "qwen2"};
        struct gw w = {0};
        char err[ERR_LEN] = "";
        gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
        gw_kv_str(&w, "tokenizer.ggml.pre", pres[k]);
        write_bytes_vocab(&w, extra, sizeof extra / sizeof *extra, types);
        gw_kv_strs(&w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof *merges);
        gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", CTRL);
        struct tokenizer *t = open_kvs(&w, err, sizeof err);
        gw_free(&w);
        CHECK_MSG(t != NULL, "%s", err);
        if (!t) continue;
        /* Llama 3 adds BOS by default; the others do not */
        CHECK_INT_EQ(tokenizer_add_bos(t), k == 1);
        /* "abc": merges give ab c (no rule "ab c"); Llama 3 takes the whole
           word from the vocabulary first */
        if (k == 1)
            ENCODE_IS(t, "abc", false, ABC);
        else
            ENCODE_IS(t, "abc", false, AB, C);
        ENCODE_IS(t, "bc", false, BC);
        ENCODE_IS(t, "abcabc", false, AB, C, AB, C); /* "a b" (rank 0) before "b c" */
        ENCODE_IS(t, "bcab", false, BC, AB);
        /* " a": the Ġa rule */
        ENCODE_IS(t, " a", false, SPA);
        /* user-defined tokens are matched whole, also inside words, and are
           pre-token boundaries; control tokens are plain text */
        ENCODE_IS(t, "a<u>b", false, A, UD, B);
        ENCODE_IS(t, "ab<u><u>", false, AB, UD, UD);
        CHECK(ROUND_TRIP(t, "x<u>y <|x|> ab<u"));
        ENCODE_IS(t, "<|x|>", false, '<', '|', 'x', '|', '>');
        ENCODE_IS(t, "ab", true, CTRL, AB);
        /* a user-defined token decodes as it is written */
        char buf[8];
        CHECK_INT_EQ(tokenizer_piece(t, -1, UD, buf, sizeof buf), 3);
        CHECK(strcmp(buf, "<u>") == 0);
        CHECK_INT_EQ(tokenizer_piece(t, -1, CTRL, buf, sizeof buf), 0);
        tokenizer_free(t);
    }

    /* explicit add_bos_token wins over the pre-tokenizer's default */
    struct gw w = {0};
    char err[ERR_LEN] = "";
    gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
    gw_kv_str(&w, "tokenizer.ggml.pre", "llama-bpe");
    write_bytes_vocab(&w, extra, sizeof extra / sizeof *extra, types);
    gw_kv_strs(&w, "tokenizer.ggml.merges", merges, 1);
    gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", false);
    struct tokenizer *t = open_kvs(&w, err, sizeof err);
    gw_free(&w);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) CHECK(!tokenizer_add_bos(t));
    tokenizer_free(t);
}

/* Tokens whose text is not byte-level characters (as plain added tokens
 * are): decoded as written. A vocabulary without some byte tokens: those
 * bytes become the unknown token, or vanish when there is none. */
static void test_tiny_odd(void)
{
    static const char *const toks[] = {"a", "b", "<unk>", "\xE2\x82\xAC" /* € */, "ab"};
    static const char *const merges[] = {"a b"};
    for (int with_unk = 0; with_unk < 2; with_unk++) {
        struct gw w = {0};
        char err[ERR_LEN] = "";
        gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
        gw_kv_strs(&w, "tokenizer.ggml.tokens", toks, 5);
        gw_kv_strs(&w, "tokenizer.ggml.merges", merges, 1);
        if (with_unk) gw_kv_u32(&w, "tokenizer.ggml.unknown_token_id", 2);
        struct tokenizer *t = open_kvs(&w, err, sizeof err);
        gw_free(&w);
        CHECK_MSG(t != NULL, "%s", err);
        if (!t) continue;
        CHECK(!tokenizer_add_bos(t));
        if (with_unk)
            ENCODE_IS(t, "ab c", false, 4, 2, 2);
        else
            ENCODE_IS(t, "ab c", false, 4);
        char buf[8];
        CHECK_INT_EQ(tokenizer_piece(t, -1, 3, buf, sizeof buf), 3);
        CHECK(strcmp(buf, "\xE2\x82\xAC") == 0);
        tokenizer_free(t);
    }
}

static void test_malformed(void)
{
    static const char *const toks[] = {"a", "b", "ab"};
    struct gw w = {0};
#define RESET() gw_free(&w)
#define BASE()                                                                 \
    do {                                                                       \
        gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");                         \
        gw_kv_strs(&w, "tokenizer.ggml.tokens", toks, 3);                      \
    } while (0)
    BASE();
    EXPECT_REFUSED(&w, "tokenizer.ggml.merges is missing");
    RESET();
    BASE();
    gw_kv_u32(&w, "tokenizer.ggml.merges", 3);
    EXPECT_REFUSED(&w, "tokenizer.ggml.merges is not an array of strings");
    RESET();
    BASE();
    static const char *const nospace[] = {"a b", "ab"};
    gw_kv_strs(&w, "tokenizer.ggml.merges", nospace, 2);
    EXPECT_REFUSED(&w, "merge 1 \"ab\" is not two tokens and a space");
    RESET();
    BASE();
    static const char *const empty[] = {""};
    gw_kv_strs(&w, "tokenizer.ggml.merges", empty, 1);
    EXPECT_REFUSED(&w, "merge 0 \"\" is not two tokens and a space");
    RESET();
    BASE();
    gw_kv_strs(&w, "tokenizer.ggml.merges", NULL, 0);
    gw_kv_str(&w, "tokenizer.ggml.pre", "falcon-9");
    EXPECT_REFUSED(&w, "unsupported pre-tokenizer \"falcon-9\" (tokenizer.ggml.pre; supported: ");
    RESET();
    BASE();
    gw_kv_strs(&w, "tokenizer.ggml.merges", NULL, 0);
    gw_kv_u32(&w, "tokenizer.ggml.pre", 2);
    EXPECT_REFUSED(&w, "tokenizer.ggml.pre is not a string");
    RESET();

    /* accepted: no merges at all, rules naming unknown tokens (skipped),
       duplicate rules (the first counts), the default pre-tokenizer by name */
    BASE();
    static const char *const odd[] = {"a c", "c a", "a b", "a b", "b a", " ", "a  b"};
    gw_kv_strs(&w, "tokenizer.ggml.merges", odd, sizeof odd / sizeof *odd);
    gw_kv_str(&w, "tokenizer.ggml.pre", "default");
    char err[ERR_LEN] = "";
    struct tokenizer *t = open_kvs(&w, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) {
        ENCODE_IS(t, "abab", false, 2, 2);
        CHECK_INT_EQ(t->pre, BPE_PRE_GPT2);
    }
    tokenizer_free(t);
    RESET();
    BASE();
    gw_kv_strs(&w, "tokenizer.ggml.merges", NULL, 0);
    t = open_kvs(&w, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) ENCODE_IS(t, "abab", false, 0, 1, 0, 1);
    tokenizer_free(t);
    RESET();
#undef BASE
#undef RESET
}

static void test_names_and_classes(void)
{
    enum bpe_pre p;
    CHECK(bpe_pre_from_name("gpt-2", 5, &p) && p == BPE_PRE_GPT2);
    CHECK(bpe_pre_from_name("default", 7, &p) && p == BPE_PRE_GPT2);
    CHECK(bpe_pre_from_name("llama-bpe", 9, &p) && p == BPE_PRE_LLAMA3);
    CHECK(bpe_pre_from_name("qwen2", 5, &p) && p == BPE_PRE_QWEN2);
    CHECK(bpe_pre_from_name("smollm", 6, &p) && p == BPE_PRE_STARCODER);
    CHECK(bpe_pre_from_name("deepseek-v3", 11, &p) && p == BPE_PRE_DEEPSEEK3);
    CHECK(bpe_pre_from_name("tekken", 6, &p) && p == BPE_PRE_TEKKEN);
    CHECK_INT_EQ(tok_unicode_cat('A'), UC_CAT_LU);
    CHECK_INT_EQ(tok_unicode_cat(0x01C5), UC_CAT_LT);  /* Dž */
    CHECK_INT_EQ(tok_unicode_cat(0x02B0), UC_CAT_LM);
    CHECK_INT_EQ(tok_unicode_cat(0x0301), UC_CAT_MARK);
    CHECK_INT_EQ(tok_unicode_cat(0x00BF), UC_CAT_PUNCT); /* ¿ */
    CHECK_INT_EQ(tok_unicode_cat(0x20AC), UC_CAT_SYMBOL); /* € */
    CHECK(!bpe_pre_from_name("qwen", 4, &p));
    CHECK(!bpe_pre_from_name("qwen2x", 6, &p));
    CHECK(strcmp(tok_unicode_version, "14.0.0") == 0);
    CHECK_INT_EQ(tok_unicode_class('a'), UC_LETTER);
    CHECK_INT_EQ(tok_unicode_class('7'), UC_NUMBER);
    CHECK_INT_EQ(tok_unicode_class(' '), UC_SPACE);
    CHECK_INT_EQ(tok_unicode_class(0x1C), UC_OTHER);   /* not White_Space */
    CHECK_INT_EQ(tok_unicode_class(0x85), UC_SPACE);
    CHECK_INT_EQ(tok_unicode_class(0x3000), UC_SPACE);
    CHECK_INT_EQ(tok_unicode_class(0x200B), UC_OTHER); /* zero width space */
    CHECK_INT_EQ(tok_unicode_class(0x4E2D), UC_LETTER);
    CHECK_INT_EQ(tok_unicode_class(0x0301), UC_OTHER); /* combining mark */
    CHECK_INT_EQ(tok_unicode_class(0x216B), UC_NUMBER);
    CHECK_INT_EQ(tok_unicode_class(0x2070E), UC_LETTER);
    CHECK_INT_EQ(tok_unicode_class(0x10FFFF), UC_OTHER);
    CHECK_INT_EQ(tok_unicode_class(0x110000), UC_OTHER);
    CHECK_INT_EQ(tok_unicode_class(0xD800), UC_OTHER);
}

/* Each family's splits and ids against its golden files; and the goldens
 * must tell the families apart: another family's splitter (a deliberately
 * wrong one) must fail on some case of each file, or the file proves nothing. */
static void test_families(struct tokenizer *const *ts)
{
    char file[128], what[96];
    for (size_t k = 0; k < N_FAMS; k++) {
        CHECK_INT_EQ(ts[k]->pre, fams[k].pre);
        if (fams[k].pre != BPE_PRE_FALCON) {
            snprintf(file, sizeof file, "tokenizer_split_%s.tsv", fams[k].tag);
            test_split_golden(fams[k].pre, file, fams[k].name);
            size_t wrong = k ? k - 1 : N_FAMS - 1;
            CHECK_MSG(split_mismatches(fams[wrong].pre, file) > 0,
                      "%s: the %s splitter passes %s's goldens", file, fams[wrong].name,
                      fams[k].name);
        }
        if (k)
            snprintf(file, sizeof file, "tokenizer_gpt2_%s.tsv", fams[k].tag);
        else
            snprintf(file, sizeof file, "tokenizer_gpt2.tsv");
        snprintf(what, sizeof what, "gpt-2 vocab, %s pre", fams[k].name);
        test_gpt2_golden(ts[k], file, what);
    }
}

int main(void)
{
    test_names_and_classes();
    test_tiny_rules();
    test_tiny_odd();
    test_malformed();

    struct tokenizer *ts[N_FAMS];
    ts[0] = open_gpt2(NULL);
    for (size_t k = 1; k < N_FAMS; k++) ts[k] = open_gpt2(fams[k].name);

    test_gpt2_basics(ts[0]);
    test_families(ts);
    test_gpt2_decode_golden(ts[0]);
    test_gpt2_bytes(ts[0]);
    test_invalid_utf8((const struct tokenizer *const *)ts, N_FAMS);
    for (size_t k = 0; k < N_FAMS; k++) test_long_text(ts[k], fams[k].name);

    for (size_t k = 0; k < N_FAMS; k++) tokenizer_free(ts[k]);
    TEST_EXIT();
}
