/* test_tokenizer.c — tests of the tokenizer (core/tokenizer.c): Llama-2 ids
 * compared with the SentencePiece golden files, the shared real vocabularies,
 * byte fallback, long texts, and tiny or broken vocabularies built in memory
 * (tests/gguf_build.h; golden files read by tests/golden_tsv.h).
 * Needs core/ (gguf, tokenizer, util) only; no curses, readline or sqlite. */
#include "gguf.h"
#include "gguf_build.h"
#include "golden_tsv.h"
#include "test_util.h"
#include "tokenizer_check.h"
#include "tokenizer.h"
#include "util.h"

#include <stdint.h>

#define ERR_LEN 512

/* ---- tiny vocabularies ----------------------------------------------------- */

#define ABSENT INT64_MIN

struct vocab_spec {
    const char *const *tokens;
    int n;
    const float *scores;      /* NULL: no scores key */
    const int32_t *types;     /* NULL: no token_type key */
    int64_t bos, eos, unk, eot; /* ABSENT: no key */
    int space_prefix;         /* -1: no key */
};

static void write_vocab(struct gw *w, const struct vocab_spec *vs)
{
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_strs(w, "tokenizer.ggml.tokens", vs->tokens, (size_t)vs->n);
    if (vs->scores) gw_kv_f32s(w, "tokenizer.ggml.scores", vs->scores, (size_t)vs->n);
    if (vs->types) gw_kv_i32s(w, "tokenizer.ggml.token_type", vs->types, (size_t)vs->n);
    if (vs->bos != ABSENT) gw_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)vs->bos);
    if (vs->eos != ABSENT) gw_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)vs->eos);
    if (vs->unk != ABSENT) gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)vs->unk);
    if (vs->eot != ABSENT) gw_kv_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)vs->eot);
    if (vs->space_prefix >= 0)
        gw_kv_bool(w, "tokenizer.ggml.add_space_prefix", vs->space_prefix != 0);
}

/* Build a tokenizer from the key-values in w; the GGUF buffer is freed
 * before returning, which also checks that the tokenizer copied its data. */
static struct tokenizer *open_kvs(const struct gw *w, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = gw_file(w, GGUF_DEFAULT_ALIGNMENT, &len);
    struct gguf_file *f = gguf_open_memory(buf, len, "mem.gguf", err, errlen);
    struct tokenizer *t = NULL;
    if (f) {
        t = tokenizer_new(f, err, errlen);
        gguf_close(f);
    } else {
        fprintf(stderr, "test bug: in-memory GGUF refused: %s\n", err);
        test_failures++;
    }
    free(buf);
    return t;
}

static struct tokenizer *open_spec(const struct vocab_spec *vs)
{
    struct gw w = {0};
    char err[ERR_LEN] = "";
    write_vocab(&w, vs);
    struct tokenizer *t = open_kvs(&w, err, sizeof err);
    gw_free(&w);
    if (!t) {
        fprintf(stderr, "tiny vocabulary refused: %s\n", err);
        test_failures++;
    }
    return t;
}

/* The GGUF in w must be refused with a message containing want. */
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

/* ---- helpers --------------------------------------------------------------- */

static struct tokenizer *open_model(const char *file)
{
    char path[1024], err[ERR_LEN] = "";
    test_model_path(path, sizeof path, file);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, err);
        exit(1);
    }
    struct tokenizer *t = tokenizer_new(f, err, sizeof err);
    gguf_close(f);
    if (!t) {
        fprintf(stderr, "no tokenizer from %s: %s\n", path, err);
        exit(1);
    }
    return t;
}


/* decode(encode(text)) must give back exactly text, through tokenizer_piece
 * (byte-exact) and tokenizer_decode (up to its first NUL). */
static void round_trip_at(const struct tokenizer *t, const char *text, size_t len, int line)
{
    int32_t *ids = NULL;
    size_t n = 0, plen;
    if (!tokenizer_encode(t, text, len, true, &ids, &n)) {
        fprintf(stderr, "%s:%d: encode failed\n", __FILE__, line);
        test_failures++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tokenizer_n_vocab(t)) {
            fprintf(stderr, "%s:%d: id %d out of range\n", __FILE__, line, ids[i]);
            test_failures++;
        }
    }
    char *p = pieces(t, ids, n, &plen);
    if (plen != len || memcmp(p, text, len) != 0) {
        fprintf(stderr, "%s:%d: pieces do not give the text back (%zu vs %zu bytes)\n",
                __FILE__, line, plen, len);
        test_failures++;
    }
    char *d = tokenizer_decode(t, ids, n);
    CHECK(d != NULL);
    if (d) {
        size_t upto = strnlen(text, len);
        if (strlen(d) != upto || memcmp(d, text, upto) != 0) {
            fprintf(stderr, "%s:%d: decode does not give the text back: \"%s\"\n", __FILE__,
                    line, d);
            test_failures++;
        }
    }
    free(d);
    free(p);
    free(ids);
}
#define ROUND_TRIP(t, lit) round_trip_at(t, lit, sizeof(lit) - 1, __LINE__)

/* ---- the golden files' JSON strings (golden_tsv.h) -------------------------- */

static void test_json_parser(void)
{
    static const struct {
        const char *json;
        const char *want;
        size_t want_len;
    } ok[] = {
        {"\"\"", "", 0},
        {"\"plain\"", "plain", 5},
        {"\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7},
        {"\"\\n\\t\\r\\b\\f\"", "\n\t\r\b\f", 5},
        {"\"\\u0041\\u00e9\\u4F60\"", "A\xC3\xA9\xE4\xBD\xA0", 6},
        {"\"\\ud83d\\udc4d!\"", "\xF0\x9F\x91\x8D!", 5},
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"caf\xC3\xA9\"", "caf\xC3\xA9", 5},
        {"\"\\u007f\\u0080\\u07ff\\u0800\\uffff\\udbff\\udfff\"",
         "\x7f\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF", 15},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        const char *p = ok[i].json;
        size_t len = 0;
        char *s = golden_json_str(&p, &len);
        CHECK_MSG(s && len == ok[i].want_len && memcmp(s, ok[i].want, len) == 0 && *p == '\0',
                  "json %s", ok[i].json);
        free(s);
    }
    static const char *const bad[] = {"\"abc", "abc\"", "\"\\x\"", "\"\\u12\"",
                                      "\"\\ud83d\"", "\"\\udc4d\"", "\"\\ud83d\\u0041\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *p = bad[i];
        size_t len;
        char *s = golden_json_str(&p, &len);
        CHECK_MSG(s == NULL, "json %s should be refused", bad[i]);
        free(s);
    }
}

/* ---- the golden files from SentencePiece ----------------------------------- */

/* Every encode case: ids equal SentencePiece's; the pieces give back what
 * SentencePiece decodes those ids to, and so the input itself wherever
 * SentencePiece round-trips (all but texts holding U+2581 literally). */
static void test_golden_encode(const struct tokenizer *t)
{
    size_t n_enc, n_dec, match = 0, round = 0;
    struct golden *enc = golden_read("tokenizer_llama_spm.tsv", GOLDEN_TEXT_IDS, &n_enc);
    struct golden *dec =
        golden_read("tokenizer_llama_spm_decode.tsv", GOLDEN_IDS_TEXT, &n_dec);
    CHECK(n_enc >= 40);
    CHECK(n_dec >= n_enc);
    for (size_t i = 0; i < n_enc && i < n_dec; i++) {
        const struct golden *g = &enc[i];
        match += encode_is(t, g->text, g->len, true, g->ids, g->n_ids, __FILE__, __LINE__);
        /* the decode file starts with the encode cases' ids, in order */
        CHECK(dec[i].n_ids == g->n_ids && memcmp(dec[i].ids, g->ids, g->n_ids * sizeof *g->ids) == 0);
        size_t plen;
        char *p = pieces(t, g->ids, g->n_ids, &plen);
        CHECK_MSG(plen == dec[i].len && memcmp(p, dec[i].text, plen) == 0,
                  "pieces of case %zu give \"%s\", SentencePiece \"%s\"", i + 1, p,
                  dec[i].text);
        if (g->len == dec[i].len && memcmp(g->text, dec[i].text, g->len) == 0) {
            round_trip_at(t, g->text, g->len, __LINE__);
            round++;
        }
        free(p);
    }
    fprintf(stderr, "golden: %zu of %zu encode cases match SentencePiece, %zu round-trip\n",
            match, n_enc, round);
    CHECK(round + 2 >= n_enc); /* only the two U+2581 cases may not round-trip */
    golden_free(enc, n_enc);
    golden_free(dec, n_dec);
}

/* Every decode case (odd BOS/EOS placement, <unk>, byte tokens) through
 * tokenizer_decode, which follows SentencePiece for whole sequences. */
static void test_golden_decode(const struct tokenizer *t)
{
    size_t n;
    struct golden *dec = golden_read("tokenizer_llama_spm_decode.tsv", GOLDEN_IDS_TEXT, &n);
    for (size_t i = 0; i < n; i++) {
        char *d = tokenizer_decode(t, dec[i].ids, dec[i].n_ids);
        CHECK(d != NULL);
        if (!d) continue;
        size_t upto = strnlen(dec[i].text, dec[i].len); /* decode stops at a NUL */
        CHECK_MSG(strlen(d) == upto && memcmp(d, dec[i].text, upto) == 0,
                  "decode case %zu gives \"%s\", SentencePiece \"%s\"", i + 1, d,
                  dec[i].text);
        free(d);
    }
    golden_free(dec, n);
}

/* ---- the Llama-2 vocabulary ------------------------------------------------ */

static void test_llama_basics(const struct tokenizer *t)
{
    CHECK_INT_EQ(tokenizer_kind(t), TOK_KIND_SPM);
    CHECK_INT_EQ(tokenizer_n_vocab(t), 32000);
    CHECK_INT_EQ(tokenizer_bos(t), 1);
    CHECK_INT_EQ(tokenizer_eos(t), 2);
    CHECK_INT_EQ(tokenizer_eot(t), -1);
    CHECK(tokenizer_add_bos(t));
    CHECK_INT_EQ(tokenizer_find(t, "<s>"), 1);
    CHECK_INT_EQ(tokenizer_find(t, "</s>"), 2);
    CHECK_INT_EQ(tokenizer_find(t, "<0x0A>"), 13);
    CHECK_INT_EQ(tokenizer_find(t, "\xE2\x96\x81Hello"), 15043);
    CHECK_INT_EQ(tokenizer_find(t, "no such token, surely"), -1);
    CHECK(strcmp(tokenizer_token_text(t, 1), "<s>") == 0);
    CHECK(strcmp(tokenizer_token_text(t, -1), "") == 0);
    CHECK(strcmp(tokenizer_token_text(t, 32000), "") == 0);
    CHECK_INT_EQ(tokenizer_token_type(t, 0), TOK_TYPE_UNKNOWN);
    CHECK_INT_EQ(tokenizer_token_type(t, 1), TOK_TYPE_CONTROL);
    CHECK_INT_EQ(tokenizer_token_type(t, 3), TOK_TYPE_BYTE);
    CHECK_INT_EQ(tokenizer_token_type(t, 15043), TOK_TYPE_NORMAL);
    CHECK_INT_EQ(tokenizer_token_type(t, 99999), TOK_TYPE_UNDEFINED);

    /* empty text: BOS or nothing */
    int32_t *ids = NULL;
    size_t n = 99;
    CHECK(tokenizer_encode(t, "", 0, true, &ids, &n));
    CHECK(n == 1 && ids[0] == 1);
    free(ids);
    CHECK(tokenizer_encode(t, "", 0, false, &ids, &n));
    CHECK_INT_EQ(n, 0);
    free(ids);
    CHECK(tokenizer_encode(t, NULL, 0, false, &ids, &n));
    CHECK_INT_EQ(n, 0);
    free(ids);
    ENCODE_IS(t, "Hello world", false, 15043, 3186);

    /* pieces: snprintf-style, leading space dropped only at the start/after BOS */
    char buf[16];
    CHECK_INT_EQ(tokenizer_piece(t, -1, 15043, buf, sizeof buf), 5);
    CHECK(strcmp(buf, "Hello") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, 1, 15043, buf, sizeof buf), 5);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 15043, buf, sizeof buf), 6);
    CHECK(strcmp(buf, " Hello") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 15043, buf, 4), 6);
    CHECK(strcmp(buf, " He") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 15043, buf, 1), 6);
    CHECK(buf[0] == '\0');
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 15043, NULL, 0), 6);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 1, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 2, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, 3186, 13, buf, sizeof buf), 1);
    CHECK(strcmp(buf, "\n") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, 0, buf, sizeof buf), 5);
    CHECK(strcmp(buf, " \xE2\x81\x87 ") == 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, 32000, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, -1, -5, buf, sizeof buf), 0);
    CHECK_INT_EQ(tokenizer_piece(t, 40000, 15043, buf, sizeof buf), 6);

    /* out-of-range ids are skipped by decode */
    static const int32_t odd[] = {1, -1, 32000, 15043, INT32_MAX, 3186};
    char *d = tokenizer_decode(t, odd, sizeof odd / sizeof *odd);
    CHECK(d && strcmp(d, "Hello world") == 0);
    free(d);
    d = tokenizer_decode(t, NULL, 0);
    CHECK(d && *d == '\0');
    free(d);
}

/* Invalid UTF-8 goes through byte fallback and comes back byte for byte. */
static void test_invalid_utf8(const struct tokenizer *t)
{
    /* byte token of b is b + 3 in the Llama-2 vocabulary; 29871 is U+2581 */
    ENCODE_IS(t, "\xff\xfe", true, 1, 29871, 0xff + 3, 0xfe + 3);
    ENCODE_IS(t, "\x80", false, 29871, 0x80 + 3);
    ENCODE_IS(t, "\xe4\xbd", false, 29871, 0xe4 + 3, 0xbd + 3);           /* truncated */
    ENCODE_IS(t, "\xc0\xaf", false, 29871, 0xc0 + 3, 0xaf + 3);           /* overlong */
    ENCODE_IS(t, "\xed\xa0\x80", false, 29871, 0xed + 3, 0xa0 + 3, 0x80 + 3); /* surrogate */
    ENCODE_IS(t, "\xf4\x90\x80\x80", false, 29871, 0xf4 + 3, 0x90 + 3, 0x80 + 3, 0x80 + 3);
    ENCODE_IS(t, "\xe4\xbd\xe5\xa5\xbd", false, 29871, 0xe4 + 3, 0xbd + 3, 31076); /* ?? 好 */
    ROUND_TRIP(t, "\xff\xfe");
    ROUND_TRIP(t, "abc\x80" "def");
    ROUND_TRIP(t, "\x80\x80\x80");
    ROUND_TRIP(t, "\xe4\xbd");
    ROUND_TRIP(t, "\xf0\x9f\x91");
    ROUND_TRIP(t, " \xf0\x9f\x91 x");
    ROUND_TRIP(t, "\xc3");
    ROUND_TRIP(t, "\xe2\x96 \xe2 \x96\x81");
    ROUND_TRIP(t, "tail \xf0");
    ROUND_TRIP(t, "\xf8\x88\x80\x80\x80");
}

/* NUL bytes are text like any other byte. */
static void test_nul_bytes(const struct tokenizer *t)
{
    ENCODE_IS(t, "a\0b\0\0c", false, 263, 3, 29890, 3, 3, 29883);
    ROUND_TRIP(t, "a\0b\0\0c");
    ROUND_TRIP(t, "\0");
    ROUND_TRIP(t, "\0 leading NUL");
}

/* 200 KB of mixed text: correct round trip and no quadratic behaviour. */
static void test_long_text(const struct tokenizer *t)
{
    static const char *const words[] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "\n",
        "\xE4\xBD\xA0\xE5\xA5\xBD", "caf\xC3\xA9", "3.14159", "  ", "\xF0\xA0\x9C\x8E",
        "{", "}", "\t", "supercalifragilistic", "\xD0\x9F\xD1\x80\xD0\xB8", "!"};
    const size_t want = 200 * 1024;
    char *text = malloc(want + 64);
    if (!text) exit(1);
    size_t len = 0;
    uint32_t r = 12345;
    while (len < want) {
        r = r * 1103515245u + 12345u;
        const char *w = words[(r >> 16) % (sizeof words / sizeof *words)];
        size_t wl = strlen(w);
        memcpy(text + len, w, wl);
        len += wl;
        text[len++] = ' ';
    }
    /* about 0.07 s at -O2 and 0.3 s under sanitizers here; quadratic
       rescanning would take minutes, so the limit leaves room for slow
       machines and valgrind */
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
    /* the same text, plus two pathological ones: a single repeated letter
       (long merge chains) and all spaces */
    for (int k = 0; k < 3; k++) {
        if (k == 1) memset(text, 'a', len);
        if (k == 2) memset(text, ' ', len);
        int32_t *ids = NULL;
        size_t n = 0;
        double t0 = anc_now();
        CHECK(tokenizer_encode(t, text, len, true, &ids, &n));
        double dt = anc_now() - t0;
        fprintf(stderr, "long text %d: %zu bytes -> %zu tokens in %.1f ms\n", k, len, n,
                dt * 1e3);
        CHECK_MSG(dt < limit, "encoding %zu bytes took %.2f s", len, dt);
        CHECK(n > 1 && n < len);
        double t1 = anc_now();
        char *d = tokenizer_decode(t, ids, n);
        CHECK_MSG(anc_now() - t1 < limit, "decoding took too long");
        CHECK(d && strlen(d) == len && memcmp(d, text, len) == 0);
        free(d);
        free(ids);
    }
    free(text);
}

/* ---- the other real vocabularies --------------------------------------------- */

static void test_stories(void)
{
    struct tokenizer *t = open_model("stories260K.gguf");
    CHECK_INT_EQ(tokenizer_n_vocab(t), 512);
    /* the ids of tests/golden/stories260K_greedy_prompt.prompt */
    ENCODE_IS(t, "Once upon a time", true, 1, 403, 407, 261, 378);
    static const int32_t ids[] = {1, 403, 407, 261, 378};
    char *d = tokenizer_decode(t, ids, 5);
    CHECK(d && strcmp(d, "Once upon a time") == 0);
    free(d);
    ROUND_TRIP(t, "Once upon a time, there was a little girl named Lily.");
    ROUND_TRIP(t, "Zo\xC3\xAB saw a \xF0\x9F\x98\x80 and said \"Hi!\"\n\nThe end.");
    ROUND_TRIP(t, "\xff\x00\x80 bytes");
    tokenizer_free(t);
}

static void test_baichuan(void)
{
    struct tokenizer *t = open_model("ggml-vocab-baichuan.gguf");
    CHECK_INT_EQ(tokenizer_n_vocab(t), 64000);
    static const char text[] =
        "\xE4\xBB\x8A\xE5\xA4\xA9\xE5\xA4\xA9\xE6\xB0\x94\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x8C"
        "\xE6\x88\x91\xE4\xBB\xAC\xE4\xB8\x80\xE8\xB5\xB7\xE5\x8E\xBB\xE5\x85\xAC\xE5\x9B\xAD"
        "\xE6\x95\xA3\xE6\xAD\xA5\xE5\x90\xA7\xE3\x80\x82\xE4\xB8\xAD\xE5\x8D\x8E\xE4\xBA\xBA"
        "\xE6\xB0\x91\xE5\x85\xB1\xE5\x92\x8C\xE5\x9B\xBD\xE6\x88\x90\xE7\xAB\x8B\xE4\xBA\x8E"
        "\xE4\xB8\x80\xE4\xB9\x9D\xE5\x9B\x9B\xE4\xB9\x9D\xE5\xB9\xB4\xE3\x80\x82";
    int32_t *ids = NULL;
    size_t n = 0, len = sizeof text - 1;
    CHECK(tokenizer_encode(t, text, len, false, &ids, &n));
    fprintf(stderr, "baichuan: %zu bytes of Chinese -> %zu tokens\n", len, n);
    CHECK(n > 0 && n * 4 < len); /* 3 bytes a character, often several characters a token */
    for (size_t i = 0; i < n; i++) CHECK(tokenizer_token_type(t, ids[i]) != TOK_TYPE_BYTE);
    free(ids);
    round_trip_at(t, text, len, __LINE__);
    ROUND_TRIP(t, "\xF0\xA0\x9C\x8E\xF0\xA0\x9C\xB1 rare characters, byte fallback");
    tokenizer_free(t);
}

/* The byte-level BPE kind loads (its own tests are in test_tokenizer_bpe.c). */
static void test_gpt2_loads(void)
{
    char path[1024], err[ERR_LEN] = "";
    test_model_path(path, sizeof path, "ggml-vocab-gpt-2.gguf");
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL);
    if (!f) return;
    struct tokenizer *t = tokenizer_new(f, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) CHECK_INT_EQ(tokenizer_kind(t), TOK_KIND_BPE);
    tokenizer_free(t);
    gguf_close(f);
}

/* ---- tiny vocabularies: the algorithm's rules ---------------------------------- */

#define SP "\xE2\x96\x81"

static void test_tiny_rules(void)
{
    /* 0 <unk> 1 <s> 2 </s> 3 ▁ 4 a 5 b 6 c 7 ab 8 bc 9 ▁b */
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "a",
                                       "b", "c", "ab", "bc", SP "b"};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    float scores[] = {0, 0, 0, -1, -2, -2, -2, -5, -3, -9};
    struct vocab_spec vs = {toks, 10, scores, types, 1, 2, 0, ABSENT, -1};

    /* "▁abc": bc (-3) beats ab (-5) */
    struct tokenizer *t = open_spec(&vs);
    if (!t) return;
    ENCODE_IS(t, "abc", false, 3, 4, 8);
    ENCODE_IS(t, "abc", true, 1, 3, 4, 8);
    ENCODE_IS(t, " b", false, 3, 9);
    ENCODE_IS(t, "b c", false, 9, 3, 6);
    ENCODE_IS(t, "xa", false, 3, 0, 4); /* no byte tokens: <unk> */
    ROUND_TRIP(t, "abc b c");
    tokenizer_free(t);

    /* ab above bc: ab first */
    scores[7] = -1;
    t = open_spec(&vs);
    ENCODE_IS(t, "abc", false, 3, 7, 6);
    tokenizer_free(t);

    /* equal scores: the leftmost pair first */
    for (int i = 0; i < 10; i++) scores[i] = 0;
    t = open_spec(&vs);
    ENCODE_IS(t, "abc", false, 3, 7, 6);
    ENCODE_IS(t, "bcab", false, 9, 6, 7); /* ▁b before bc */
    tokenizer_free(t);

    /* no scores key at all: the same as all zero */
    vs.scores = NULL;
    t = open_spec(&vs);
    ENCODE_IS(t, "abc", false, 3, 7, 6);
    tokenizer_free(t);

    /* no space prefix; a leading ▁ piece keeps its space when decoded */
    vs.space_prefix = 0;
    t = open_spec(&vs);
    ENCODE_IS(t, "abc", false, 7, 6);
    ENCODE_IS(t, " b", true, 1, 9);
    static const int32_t sp_b[] = {1, 9};
    char *d = tokenizer_decode(t, sp_b, 2);
    CHECK(d && strcmp(d, " b") == 0);
    free(d);
    char buf[8];
    CHECK_INT_EQ(tokenizer_piece(t, 1, 9, buf, sizeof buf), 2);
    ROUND_TRIP(t, " abc b");
    tokenizer_free(t);
}

/* No token types stored: <0xNN> texts are byte tokens, BOS/EOS control. */
static void test_tiny_inferred_types(void)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "a", "<0xC3>", "<0xA9>",
                                       "<0x41>"};
    struct vocab_spec vs = {toks, 8, NULL, NULL, 1, 2, 0, ABSENT, -1};
    struct tokenizer *t = open_spec(&vs);
    if (!t) return;
    CHECK_INT_EQ(tokenizer_token_type(t, 5), TOK_TYPE_BYTE);
    CHECK_INT_EQ(tokenizer_token_type(t, 1), TOK_TYPE_CONTROL);
    CHECK_INT_EQ(tokenizer_token_type(t, 0), TOK_TYPE_UNKNOWN);
    ENCODE_IS(t, "a\xC3\xA9", true, 1, 3, 4, 5, 6); /* é via its two bytes */
    ENCODE_IS(t, "A", false, 3, 7);                 /* "A" is no piece: <0x41> */
    ENCODE_IS(t, "\xC3\xA8", false, 3, 0);          /* è: <0xA8> missing: <unk> */
    ENCODE_IS(t, "<s>", false, 3, 0, 0, 0);         /* typed markers stay text */
    static const int32_t ids[] = {1, 3, 4, 5, 6, 2};
    char *d = tokenizer_decode(t, ids, 6);
    CHECK(d && strcmp(d, "a\xC3\xA9") == 0);
    free(d);
    tokenizer_free(t);
}

/* User-defined tokens are matched whole; control tokens never are. */
static void test_tiny_user_defined(void)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "x", "y", "<", ">",
                                       "t", "a", "g", "<tag>", "<ta", "<tagx>", "<|c|>"};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 3};
    static const float scores[] = {0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0};
    struct vocab_spec vs = {toks, 15, scores, types, 1, 2, 0, ABSENT, 0};
    struct tokenizer *t = open_spec(&vs);
    if (!t) return;
    ENCODE_IS(t, "x<tag>y", false, 4, 11, 5);
    ENCODE_IS(t, "<tagx>", false, 13);            /* longest match */
    ENCODE_IS(t, "<tag", false, 12, 10);          /* <ta then g */
    ENCODE_IS(t, "<|c|>", false, 6, 0, 0, 0, 7); /* control: never from text */
    CHECK_INT_EQ(tokenizer_find(t, "<|c|>"), 14);
    ROUND_TRIP(t, "x<tag>y<tagx>");
    tokenizer_free(t);
}

/* Merges may pass through an UNUSED piece, which is split again if it is
 * left at the end (SentencePiece's resegmentation). */
static void test_tiny_unused(void)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "a", "b", "c", "ab", "abc"};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 5, 1};
    static const float scores[] = {0, 0, 0, -1, -1, -1, -1, 10, 5};
    struct vocab_spec vs = {toks, 9, scores, types, 1, 2, 0, ABSENT, 0};
    struct tokenizer *t = open_spec(&vs);
    if (!t) return;
    ENCODE_IS(t, "ab", false, 4, 5);
    ENCODE_IS(t, "abc", false, 8);
    ENCODE_IS(t, "abab", false, 4, 5, 4, 5);
    tokenizer_free(t);
}

/* Duplicated texts load (the first id wins); EOT and -1 ids are read. */
static void test_tiny_odd_but_valid(void)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "a", "a", "<eot>", ""};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 3, 1};
    struct vocab_spec vs = {toks, 8, NULL, types, 1, UINT32_MAX, ABSENT, 6, -1};
    struct tokenizer *t = open_spec(&vs);
    if (!t) return;
    CHECK_INT_EQ(tokenizer_eos(t), -1);
    CHECK_INT_EQ(tokenizer_eot(t), 6);
    CHECK_INT_EQ(tokenizer_find(t, "a"), 4);
    ENCODE_IS(t, "aa", true, 1, 3, 4, 4);
    ENCODE_IS(t, "b", false, 3, 0); /* <unk> found by its type */
    char buf[8];
    CHECK_INT_EQ(tokenizer_piece(t, 4, 6, buf, sizeof buf), 0);
    tokenizer_free(t);

    /* no BOS at all: add_bos has nothing to add */
    vs.bos = ABSENT;
    t = open_spec(&vs);
    ENCODE_IS(t, "a", true, 3, 4);
    tokenizer_free(t);
}

/* ---- broken vocabularies: clean errors ------------------------------------------ */

static void test_malformed(void)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", SP, "a"};
    static const int32_t types[] = {2, 3, 3, 1, 1};
    static const float scores[] = {0, 0, 0, -1, -2};
    struct vocab_spec good = {toks, 5, scores, types, 1, 2, 0, ABSENT, -1};
    struct gw w = {0};
    char err[ERR_LEN];

#define RESET() gw_free(&w)
    /* no tokenizer at all */
    gw_kv_u32(&w, "general.alignment", 32);
    EXPECT_REFUSED(&w, "tokenizer.ggml.model is missing");
    RESET();
    gw_kv_u32(&w, "tokenizer.ggml.model", 1);
    EXPECT_REFUSED(&w, "tokenizer.ggml.model is not a string");
    RESET();
    gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
    EXPECT_REFUSED(&w, "tokenizer.ggml.tokens is missing");
    RESET();
    gw_kv_str(&w, "tokenizer.ggml.model", "bert\x01\xff");
    EXPECT_REFUSED(&w, "unsupported tokenizer model \"bert??\"");
    RESET();

    /* the token list */
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    EXPECT_REFUSED(&w, "tokenizer.ggml.tokens is missing");
    gw_kv_arr(&w, "tokenizer.ggml.tokens", GGUF_VT_STRING, 0);
    EXPECT_REFUSED(&w, "tokenizer.ggml.tokens is empty");
    RESET();
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_arr(&w, "tokenizer.ggml.tokens", GGUF_VT_UINT32, 2);
    gw_u32(&w, 1);
    gw_u32(&w, 2);
    EXPECT_REFUSED(&w, "tokenizer.ggml.tokens is not an array of strings");
    RESET();
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_str(&w, "tokenizer.ggml.tokens", "abc");
    EXPECT_REFUSED(&w, "tokenizer.ggml.tokens is not an array of strings");
    RESET();
    {
        char *huge = malloc(5001);
        if (!huge) exit(1);
        memset(huge, 'x', 5000);
        huge[5000] = '\0';
        const char *const long_toks[] = {"<unk>", huge};
        struct vocab_spec vs = {long_toks, 2, NULL, NULL, ABSENT, ABSENT, ABSENT, ABSENT, -1};
        write_vocab(&w, &vs);
        EXPECT_REFUSED(&w, "token 1 is 5000 bytes long");
        RESET();
        free(huge);
    }

    /* scores and types */
    struct vocab_spec vs = good;
    vs.scores = NULL;
    write_vocab(&w, &vs);
    gw_kv_arr(&w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, 4);
    for (int i = 0; i < 4; i++) gw_f32(&w, 0);
    EXPECT_REFUSED(&w, "tokenizer.ggml.scores has 4 entries but there are 5 tokens");
    RESET();
    write_vocab(&w, &vs);
    gw_kv_arr(&w, "tokenizer.ggml.scores", GGUF_VT_INT32, 5);
    for (int i = 0; i < 5; i++) gw_u32(&w, 0);
    EXPECT_REFUSED(&w, "tokenizer.ggml.scores is not an array of float32");
    RESET();
    {
        float nan_scores[5] = {0, 0, 0, 0, 0};
        nan_scores[4] = NAN;
        vs.scores = nan_scores;
        write_vocab(&w, &vs);
        EXPECT_REFUSED(&w, "score of token 4 is not a number");
        RESET();
        vs.scores = scores;
    }
    vs.types = NULL;
    write_vocab(&w, &vs);
    gw_kv_arr(&w, "tokenizer.ggml.token_type", GGUF_VT_INT32, 6);
    for (int i = 0; i < 6; i++) gw_u32(&w, 1);
    EXPECT_REFUSED(&w, "tokenizer.ggml.token_type has 6 entries but there are 5 tokens");
    RESET();
    {
        const int32_t bad_types[] = {2, 3, 3, 1, 9};
        vs.types = bad_types;
        write_vocab(&w, &vs);
        EXPECT_REFUSED(&w, "token 4 has type 9");
        RESET();
        const int32_t neg_types[] = {2, 3, -1, 1, 1};
        vs.types = neg_types;
        write_vocab(&w, &vs);
        EXPECT_REFUSED(&w, "token 2 has type -1");
        RESET();
        const int32_t byte_types[] = {2, 3, 3, 1, 6};
        vs.types = byte_types;
        write_vocab(&w, &vs);
        EXPECT_REFUSED(&w, "token 4 has type BYTE but its text \"a\" is not <0xNN>");
        RESET();
        vs.types = types;
    }

    /* special ids and flags */
    vs = good;
    vs.bos = 5;
    write_vocab(&w, &vs);
    EXPECT_REFUSED(&w, "tokenizer.ggml.bos_token_id is 5 but the vocabulary has only 5 tokens");
    RESET();
    vs = good;
    vs.unk = 1000000;
    write_vocab(&w, &vs);
    EXPECT_REFUSED(&w, "tokenizer.ggml.unknown_token_id is 1000000");
    RESET();
    vs = good;
    vs.eos = ABSENT;
    write_vocab(&w, &vs);
    gw_kv_str(&w, "tokenizer.ggml.eos_token_id", "2");
    EXPECT_REFUSED(&w, "tokenizer.ggml.eos_token_id is not an integer");
    RESET();
    write_vocab(&w, &vs);
    gw_kv_i32(&w, "tokenizer.ggml.eos_token_id", -7);
    EXPECT_REFUSED(&w, "tokenizer.ggml.eos_token_id is -7");
    RESET();
    write_vocab(&w, &good);
    gw_kv_u32(&w, "tokenizer.ggml.add_bos_token", 1);
    EXPECT_REFUSED(&w, "tokenizer.ggml.add_bos_token is not a boolean");
    RESET();

    /* and the good one opens, with add_bos read */
    write_vocab(&w, &good);
    gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", false);
    struct tokenizer *t = open_kvs(&w, err, sizeof err);
    CHECK_MSG(t != NULL, "%s", err);
    if (t) CHECK(!tokenizer_add_bos(t));
    tokenizer_free(t);
    RESET();
    CHECK(tokenizer_new(NULL, err, sizeof err) == NULL);
#undef RESET
}

int main(void)
{
    test_json_parser();
    test_tiny_rules();
    test_tiny_inferred_types();
    test_tiny_user_defined();
    test_tiny_unused();
    test_tiny_odd_but_valid();
    test_malformed();
    if (access(test_models_dir(), R_OK) != 0) {
        if (test_failures) TEST_EXIT(); /* a skip must not hide these */
        TEST_SKIP("test models folder %s is absent (tiny vocabularies passed)",
                  test_models_dir());
    }

    struct tokenizer *t = open_model("ggml-vocab-llama-spm.gguf");
    test_llama_basics(t);
    test_golden_encode(t);
    test_golden_decode(t);
    test_invalid_utf8(t);
    test_nul_bytes(t);
    test_long_text(t);
    tokenizer_free(t);

    test_stories();
    test_baichuan();
    test_gpt2_loads();
    TEST_EXIT();
}
