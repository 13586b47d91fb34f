/* test_gguf.c — tests of the GGUF reader (core/gguf.c) and the report
 * (core/gguf_info.c): the shared real files, then good and bad files built
 * in memory by tests/gguf_build.h. Needs core/ and kernels/dtype only. */
#include "ancora.h"
#include "dtype.h"
#include "gguf.h"
#include "gguf_build.h"
#include "test_util.h"

#include <stdint.h>
#include <sys/stat.h>

/* ---- the sample file ------------------------------------------------------ */

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* A valid file using every value type, arrays of strings and numbers, an
 * empty array, a string with a NUL byte, and three tensors of different
 * types; the last tensor ends exactly at the end of the file, so every
 * shorter prefix is invalid. align == 0: no general.alignment key. */
static void build_sample(struct gw *w, uint32_t align)
{
    uint64_t a = align ? align : GGUF_DEFAULT_ALIGNMENT;
    gw_header(w, 3, 3, align ? 19 : 18);
    gw_kv_str(w, "general.architecture", "llama");
    gw_kv_u8(w, "t.u8", 200);
    gw_kv_i8(w, "t.i8", -5);
    gw_kv_u16(w, "t.u16", 60000);
    gw_kv_i16(w, "t.i16", -300);
    gw_kv_u32(w, "t.u32", 3000000000u);
    gw_kv_i32(w, "t.i32", -70000);
    gw_kv_f32(w, "t.f32", 0.5f);
    gw_kv_bool(w, "t.bool", true);
    gw_kv_u64(w, "t.u64", 1ull << 40);
    gw_kv_i64(w, "t.i64", -(1ll << 40));
    gw_kv_f64(w, "t.f64", 0.25);
    gw_kv_strn(w, "t.str_nul", "a\0b", 3);
    gw_kv_strs(w, "t.tokens", (const char *const[]){"<unk>", "<s>", ""}, 3);
    gw_kv_f32s(w, "t.scores", (const float[]){0.5f, -1.0f, 2.0f}, 3);
    gw_kv_i32s(w, "t.types", (const int32_t[]){1, -2, 3}, 3);
    gw_kv_arr(w, "t.empty", GGUF_VT_UINT32, 0);
    gw_key(w, "t.odd\n\x01key", GGUF_VT_STRING), gw_str(w, "line1\nline2 \xff\xfe \"q\"");
    if (align) gw_kv_u32(w, "general.alignment", align);

    /* tensors: a f32 [4,2] = 32 bytes; b q8_0 [32,1,2] = 68; c f16 [3] = 6 */
    uint64_t off_b = round_up(32, a), off_c = round_up(off_b + 68, a);
    gw_tensor(w, "a", 2, (const uint64_t[]){4, 2}, ANC_DT_F32, 0);
    gw_tensor(w, "b", 3, (const uint64_t[]){32, 1, 2}, ANC_DT_Q8_0, off_b);
    gw_tensor(w, "c", 1, (const uint64_t[]){3}, ANC_DT_F16, off_c);
    gw_pad(w, a);
    size_t data = w->len;
    for (int i = 0; i < 8; i++) gw_f32(w, (float)i);
    gw_zeros(w, data + off_b - w->len);
    for (int i = 0; i < 68; i++) gw_u8(w, (uint8_t)i);
    gw_zeros(w, data + off_c - w->len);
    gw_u16(w, anc_f32_to_f16(1.0f)), gw_u16(w, anc_f32_to_f16(2.0f)), gw_u16(w, 0x7c00);
}

/* ---- opening helpers ---------------------------------------------------- */

#define BAD_NAME "bad.gguf"

/* Opens an exact-size heap copy, so AddressSanitizer sees any read past the
 * end. On success *copy holds the buffer to free after gguf_close. */
static struct gguf_file *open_copy(const uint8_t *p, size_t n, uint8_t **copy, char *err,
                                   size_t errlen)
{
    *copy = malloc(n ? n : 1);
    if (!*copy) exit(1);
    if (n) memcpy(*copy, p, n);
    struct gguf_file *f = gguf_open_memory(*copy, n, BAD_NAME, err, errlen);
    if (!f) {
        free(*copy);
        *copy = NULL;
    }
    return f;
}

/* The file must be refused with a message naming it and containing `want`. */
static void expect_bad_at(const uint8_t *p, size_t n, const char *want, int line)
{
    char err[ANC_ERR_LEN] = "";
    uint8_t *copy;
    struct gguf_file *f = open_copy(p, n, &copy, err, sizeof err);
    if (f) {
        fprintf(stderr, "%s:%d: bad file (%zu bytes) opened; expected \"%s\"\n", __FILE__,
                line, n, want);
        test_failures++;
        gguf_close(f);
        free(copy);
        return;
    }
    if (strncmp(err, BAD_NAME ": ", strlen(BAD_NAME ": ")) != 0 || !strstr(err, want)) {
        fprintf(stderr, "%s:%d: message \"%s\" should name the file and contain \"%s\"\n",
                __FILE__, line, err, want);
        test_failures++;
    }
}
#define EXPECT_BAD(w, want) expect_bad_at((w)->p, (w)->len, want, __LINE__)

/* ---- the real files ------------------------------------------------------- */

static void test_stories(void)
{
    char path[1024], err[ANC_ERR_LEN] = "";
    test_model_path(path, sizeof path, "stories260K.gguf");
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (!f) return;
    CHECK(f->mapped);
    CHECK_INT_EQ(f->version, 3);
    CHECK_INT_EQ(f->n_tensors, 48);
    CHECK_INT_EQ(f->alignment, 32);
    CHECK_INT_EQ(f->data_offset, 14176);
    CHECK_INT_EQ(f->size, 1185376);

    uint32_t u = 0;
    CHECK(gguf_get_u32(f, "llama.embedding_length", &u) && u == 64);
    CHECK(gguf_get_u32(f, "llama.block_count", &u) && u == 5);
    CHECK(gguf_get_u32(f, "llama.attention.head_count", &u) && u == 8);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", &u) && u == 4);
    CHECK(gguf_get_u32(f, "llama.rope.dimension_count", &u) && u == 8);
    CHECK(gguf_get_u32(f, "llama.context_length", &u) && u == 2048);
    CHECK(gguf_get_u32(f, "llama.feed_forward_length", &u) && u == 172);
    CHECK(!gguf_get_u32(f, "llama.no_such_key", &u));
    CHECK(!gguf_get_u32(f, "general.architecture", &u));   /* a string */
    int32_t i32 = 0;
    CHECK(!gguf_get_i32(f, "tokenizer.ggml.padding_token_id", &i32)); /* 2^32-1 */
    CHECK(gguf_get_i32(f, "tokenizer.ggml.bos_token_id", &i32) && i32 == 1);
    float eps = 0;
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps));
    CHECK_CLOSE(eps, 1e-5, 1e-12, 1e-6);
    struct gguf_str s = {0};
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    CHECK(!gguf_get_str(f, "llama.block_count", &s));

    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == GGUF_VT_ARRAY && tok->arr_type == GGUF_VT_STRING);
    if (tok && tok->type == GGUF_VT_ARRAY && tok->arr_type == GGUF_VT_STRING) {
        CHECK_INT_EQ(tok->arr_n, 512);
        CHECK(gguf_str_eq(gguf_arr_str(tok, 0), "<unk>"));
        CHECK(gguf_str_eq(gguf_arr_str(tok, 1), "<s>"));
        CHECK(gguf_str_eq(gguf_arr_str(tok, 2), "</s>"));
        CHECK(gguf_str_eq(gguf_arr_str(tok, 511), "\xe2\x80\x8a"));
    }
    const struct gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(tt && tt->type == GGUF_VT_ARRAY && tt->arr_type == GGUF_VT_INT32 && tt->arr_n == 512);
    if (tt && tt->arr_type == GGUF_VT_INT32) CHECK_INT_EQ(gguf_arr_i32(tt, 0), 2);
    const struct gguf_kv *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    CHECK(sc && sc->type == GGUF_VT_ARRAY && sc->arr_type == GGUF_VT_FLOAT32 && sc->arr_n == 512);
    if (sc && sc->arr_type == GGUF_VT_FLOAT32) CHECK_CLOSE(gguf_arr_f32(sc, 0), 0.0, 0, 0);

    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.0.attn_k.weight");
    CHECK(t != NULL);
    if (t) {
        CHECK_INT_EQ(t->n_dims, 2);
        CHECK_INT_EQ(t->ne[0], 64);
        CHECK_INT_EQ(t->ne[1], 32);
        CHECK_INT_EQ(t->ne[2], 1);
        CHECK_INT_EQ(t->ne[3], 1);
        CHECK_INT_EQ(t->type, ANC_DT_F32);
        CHECK_INT_EQ(t->nbytes, 64 * 32 * 4);
        CHECK(t->data == f->base + f->data_offset + t->offset);
        CHECK_INT_EQ((uintptr_t)t->data % 32, 0);
        const float *x = t->data; /* values from the gguf Python reader */
        CHECK_CLOSE(x[0], 0.2161301076412201, 0, 1e-7);
        CHECK_CLOSE(x[2], -0.21698929369449615, 0, 1e-7);
        CHECK_CLOSE(x[64 * 32 - 1], -0.18465891480445862, 0, 1e-7);
    }
    t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 512 && t->offset == 0);
    CHECK(gguf_find_tensor(f, "blk.5.attn_k.weight") == NULL);
    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) total += f->tensors[i].nbytes;
    CHECK_INT_EQ(total, 1171200);
    gguf_close(f);
}

static void test_vocab_only(void)
{
    char path[1024], err[ANC_ERR_LEN] = "";
    test_model_path(path, sizeof path, "ggml-vocab-llama-spm.gguf");
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (!f) return;
    CHECK_INT_EQ(f->n_tensors, 0);
    CHECK(f->data_offset <= f->size);
    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->arr_type == GGUF_VT_STRING && tok->arr_n == 32000);
    if (tok && tok->arr_type == GGUF_VT_STRING && tok->arr_n == 32000) {
        CHECK(gguf_str_eq(gguf_arr_str(tok, 1), "<s>"));
        struct gguf_str last = gguf_arr_str(tok, 31999);
        CHECK(last.len > 0 && (const uint8_t *)last.ptr + last.len <= f->base + f->size);
    }
    bool b = false;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && b);
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b) && !b);
    uint32_t u;
    CHECK(!gguf_get_bool(f, "tokenizer.ggml.bos_token_id", &b));
    CHECK(gguf_get_u32(f, "llama.vocab_size", &u) && u == 32000);
    gguf_close(f);
}

/* Prefixes of the real model: the header, the metadata, tensor infos and
 * a few points inside the data. */
static void test_stories_truncated(void)
{
    char path[1024], err[ANC_ERR_LEN];
    test_model_path(path, sizeof path, "stories260K.gguf");
    size_t n = 0;
    char *all = anc_read_file(path, &n, err, sizeof err);
    CHECK_MSG(all != NULL, "%s", err);
    if (!all) return;
    size_t cuts[400], nc = 0;
    for (size_t c = 0; c < 64; c++) cuts[nc++] = c;
    for (size_t c = 64; c < 14300 && nc < 370; c += 53) cuts[nc++] = c;
    size_t more[] = {14175, 14176, 14177, 300000, 1185375 - 4096, n - 1};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) cuts[nc++] = more[i];
    for (size_t i = 0; i < nc; i++) {
        if (cuts[i] >= n) continue;
        char what[64];
        snprintf(what, sizeof what, "%s", cuts[i] == 0 ? "empty" : cuts[i] < 4 ? "GGUF" : "truncated");
        expect_bad_at((const uint8_t *)all, cuts[i], what, __LINE__);
    }
    free(all);
}

static void test_open_errors(void)
{
    char err[ANC_ERR_LEN];
    char dir[] = "/tmp/test_gguf.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);

    CHECK(gguf_open(dir, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, dir) && strstr(err, "directory"), "%s", err);

    char path[256];
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(gguf_open(path, err, sizeof err) == NULL);
    CHECK_MSG(strncmp(err, path, strlen(path)) == 0 && strstr(err, "No such file"), "%s", err);

    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp) fclose(fp);
    CHECK(gguf_open(path, err, sizeof err) == NULL);
    CHECK_MSG(strncmp(err, path, strlen(path)) == 0 && strstr(err, "empty file"), "%s", err);
    remove(path);

    snprintf(path, sizeof path, "%s/fifo.gguf", dir); /* must not block */
    if (mkfifo(path, 0600) == 0) {
        CHECK(gguf_open(path, err, sizeof err) == NULL);
        CHECK_MSG(strstr(err, path) && strstr(err, "not a regular file"), "%s", err);
        remove(path);
    }

    CHECK(gguf_open("/dev/null", err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "/dev/null") && strstr(err, "not a regular file"), "%s", err);

    /* the sample written to disk opens through the mmap path too */
    struct gw w = {0};
    build_sample(&w, 0);
    snprintf(path, sizeof path, "%s/sample.gguf", dir);
    fp = fopen(path, "wb");
    CHECK(fp && fwrite(w.p, 1, w.len, fp) == w.len);
    if (fp) fclose(fp);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (f) {
        CHECK(f->mapped && f->size == w.len && strcmp(f->path, path) == 0);
        gguf_close(f);
    }
    /* and the report escapes its odd strings, never printing raw controls */
    char *text = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&text, &tlen);
    CHECK(mem != NULL);
    if (mem) {
        CHECK_MSG(anc_gguf_print_info(mem, path, err, sizeof err) == 0, "%s", err);
        fclose(mem);
        CHECK(text && strstr(text, "t.odd\\n\\x01key"));
        CHECK(text && strstr(text, "\"line1\\nline2 \\xff\\xfe \\\"q\\\"\""));
        CHECK(text && strstr(text, "[string × 3] \"<unk>\", \"<s>\", \"\""));
        CHECK(text && strstr(text, "[int32 × 3] 1, -2, 3"));
        CHECK(text && strstr(text, "[uint32 × 0]"));
        CHECK(text && strstr(text, "\"a\\x00b\""));
        CHECK(text && strstr(text, "int64   -1099511627776"));
        CHECK(text && strstr(text, "32 × 1 × 2"));
        CHECK(text && strstr(text, "3 tensors, 106 bytes"));
        for (size_t i = 0; text && i < tlen; i++)
            if ((unsigned char)text[i] < 0x20 && text[i] != '\n') {
                CHECK_MSG(0, "raw control byte 0x%02x in the report", text[i]);
                break;
            }
        free(text);
    }
    remove(path);
    gw_free(&w);

    CHECK(anc_gguf_print_info(stdout, dir, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, dir) && strstr(err, "directory"), "%s", err);
    rmdir(dir);
}

/* The report on the real model: the tensor table and the totals, within
 * 80 columns. */
static void test_print_info(void)
{
    char path[1024], err[ANC_ERR_LEN];
    test_model_path(path, sizeof path, "stories260K.gguf");
    char *text = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&text, &tlen);
    CHECK(mem != NULL);
    if (!mem) return;
    CHECK_MSG(anc_gguf_print_info(mem, path, err, sizeof err) == 0, "%s", err);
    fclose(mem);
    CHECK(strstr(text, "version     GGUF v3"));
    CHECK(strstr(text, "blk.0.attn_q.weight"));
    CHECK(strstr(text, "[string × 512] \"<unk>\", \"<s>\""));
    CHECK(strstr(text, "llama.context_length"));
    CHECK(strstr(text, "\"llama\""));
    CHECK(strstr(text, "64 × 512"));
    CHECK(strstr(text, "48 tensors, 1171200 bytes"));
    CHECK(strstr(text, "292800 parameters"));
    /* no line wider than 80 columns (UTF-8 continuation bytes don't count) */
    int col = 0, widest = 0;
    for (size_t i = 0; i < tlen; i++) {
        if (text[i] == '\n') col = 0;
        else if (((unsigned char)text[i] & 0xc0) != 0x80) col++;
        if (col > widest) widest = col;
    }
    CHECK_MSG(widest <= 80, "widest line has %d columns", widest);
    free(text);
}

/* ---- good files built in memory ------------------------------------------- */

static void test_sample(uint32_t align)
{
    struct gw w = {0};
    build_sample(&w, align);
    char err[ANC_ERR_LEN] = "";
    uint8_t *copy;
    struct gguf_file *f = open_copy(w.p, w.len, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (!f) {
        gw_free(&w);
        return;
    }
    uint64_t a = align ? align : 32;
    CHECK_INT_EQ(f->alignment, a);
    CHECK_INT_EQ(f->data_offset % a, 0);
    CHECK(!f->mapped && strcmp(f->path, BAD_NAME) == 0);
    CHECK_INT_EQ(f->n_kv, align ? 19 : 18);

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float f32;
    bool b;
    struct gguf_str s;
    CHECK(gguf_get_u32(f, "t.u8", &u32) && u32 == 200);
    CHECK(gguf_get_i32(f, "t.u8", &i32) && i32 == 200);
    CHECK(!gguf_get_u32(f, "t.i8", &u32));
    CHECK(gguf_get_i32(f, "t.i8", &i32) && i32 == -5);
    CHECK(!gguf_get_u64(f, "t.i8", &u64));
    CHECK(gguf_get_u32(f, "t.u16", &u32) && u32 == 60000);
    CHECK(gguf_get_i32(f, "t.i16", &i32) && i32 == -300);
    CHECK(gguf_get_u32(f, "t.u32", &u32) && u32 == 3000000000u);
    CHECK(!gguf_get_i32(f, "t.u32", &i32));
    CHECK(gguf_get_i32(f, "t.i32", &i32) && i32 == -70000);
    CHECK(!gguf_get_u32(f, "t.u64", &u32));
    CHECK(gguf_get_u64(f, "t.u64", &u64) && u64 == 1ull << 40);
    CHECK(!gguf_get_i32(f, "t.i64", &i32));
    CHECK(!gguf_get_u64(f, "t.i64", &u64));
    CHECK(gguf_get_f32(f, "t.f32", &f32) && f32 == 0.5f);
    CHECK(gguf_get_f32(f, "t.f64", &f32) && f32 == 0.25f);
    CHECK(!gguf_get_f32(f, "t.u32", &f32));
    CHECK(gguf_get_bool(f, "t.bool", &b) && b);
    CHECK(!gguf_get_bool(f, "t.u8", &b));
    CHECK(gguf_get_str(f, "t.str_nul", &s) && s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0);
    CHECK(!gguf_str_eq(s, "a"));
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    CHECK(gguf_find_kv(f, "t.odd\n\x01key") != NULL);
    CHECK(gguf_find_kv(f, "t.") == NULL && gguf_find_kv(f, "t.u8x") == NULL);

    const struct gguf_kv *kv = gguf_find_kv(f, "t.tokens");
    CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 3);
    if (kv && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 3) {
        CHECK(gguf_str_eq(gguf_arr_str(kv, 0), "<unk>"));
        CHECK(gguf_str_eq(gguf_arr_str(kv, 1), "<s>"));
        CHECK(gguf_arr_str(kv, 2).len == 0);
    }
    kv = gguf_find_kv(f, "t.scores");
    CHECK(kv && kv->arr_type == GGUF_VT_FLOAT32 && kv->arr_n == 3);
    if (kv && kv->arr_type == GGUF_VT_FLOAT32) CHECK(gguf_arr_f32(kv, 1) == -1.0f);
    kv = gguf_find_kv(f, "t.types");
    CHECK(kv && kv->arr_type == GGUF_VT_INT32 && kv->arr_n == 3);
    if (kv && kv->arr_type == GGUF_VT_INT32) CHECK_INT_EQ(gguf_arr_i32(kv, 1), -2);
    kv = gguf_find_kv(f, "t.empty");
    CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->arr_n == 0);
    CHECK(!gguf_get_u32(f, "t.empty", &u32));

    const struct gguf_tensor *t = gguf_find_tensor(f, "a");
    CHECK(t && t->nbytes == 32 && t->offset == 0);
    if (t) CHECK(((const float *)t->data)[7] == 7.0f);
    t = gguf_find_tensor(f, "b");
    CHECK(t && t->type == ANC_DT_Q8_0 && t->nbytes == 68 && t->ne[2] == 2 && t->ne[3] == 1);
    if (t) CHECK(((const uint8_t *)t->data)[67] == 67);
    t = gguf_find_tensor(f, "c");
    CHECK(t && t->nbytes == 6 && t->n_dims == 1 && t->ne[1] == 1);
    if (t) CHECK((const uint8_t *)t->data + t->nbytes == f->base + f->size);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        CHECK_INT_EQ(((const uint8_t *)f->tensors[i].data - f->base) % a, 0);
    gguf_close(f);
    free(copy);
    gw_free(&w);
}

/* Zero tensors, with and without the final padding; version 2. */
static void test_no_tensors(void)
{
    for (int padded = 0; padded < 2; padded++) {
        struct gw w = {0};
        gw_header(&w, 2, 0, 1);
        gw_kv_str(&w, "general.name", "x");
        if (padded) gw_pad(&w, 32);
        char err[ANC_ERR_LEN] = "";
        uint8_t *copy;
        struct gguf_file *f = open_copy(w.p, w.len, &copy, err, sizeof err);
        CHECK_MSG(f != NULL, "%s", err);
        if (f) {
            CHECK_INT_EQ(f->version, 2);
            CHECK_INT_EQ(f->n_tensors, 0);
            CHECK(f->data_offset <= f->size);
            CHECK(f->tensors == NULL || f->n_tensors == 0);
            gguf_close(f);
            free(copy);
        }
        gw_free(&w);
    }
    /* no kv and no tensors at all: just the header */
    struct gw w = {0};
    gw_header(&w, 3, 0, 0);
    char err[ANC_ERR_LEN] = "";
    uint8_t *copy;
    struct gguf_file *f = open_copy(w.p, w.len, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    if (f) {
        CHECK(gguf_find_kv(f, "x") == NULL && gguf_find_tensor(f, "x") == NULL);
        gguf_close(f);
        free(copy);
    }
    gw_free(&w);
    gguf_close(NULL);
}

/* ---- bad files ---------------------------------------------------------- */

static void test_every_truncation(void)
{
    for (uint32_t align = 0; align <= 64; align += 64) {
        struct gw w = {0};
        build_sample(&w, align);
        for (size_t n = 0; n < w.len; n++) {
            const char *want = n == 0 ? "empty file" : n < 4 ? "not a GGUF file" : "truncated";
            expect_bad_at(w.p, n, want, __LINE__);
        }
        gw_free(&w);
    }
}

static void test_bad_header(void)
{
    struct gw w = {0};
    build_sample(&w, 0);
    gw_set(&w, 0, "GGUG", 4);
    EXPECT_BAD(&w, "not a GGUF file");
    gw_set(&w, 0, "tjgg", 4);
    EXPECT_BAD(&w, "GGML/GGJT");
    gw_set(&w, 0, "GGUF", 4);

    gw_set_u32(&w, GW_AT_VERSION, 1);
    EXPECT_BAD(&w, "version 1 is not supported");
    gw_set_u32(&w, GW_AT_VERSION, 99);
    EXPECT_BAD(&w, "unsupported GGUF version 99");
    gw_set_u32(&w, GW_AT_VERSION, 0);
    EXPECT_BAD(&w, "unsupported GGUF version 0");
    gw_set_u32(&w, GW_AT_VERSION, 0x03000000u);
    EXPECT_BAD(&w, "big-endian");
    gw_set_u32(&w, GW_AT_VERSION, 3);

    /* absurd counts are refused before anything is allocated from them
       (the sample has 3 tensors and 18 key/values) */
    static const uint64_t absurd[] = {1ull << 62, 1ull << 40, 1ull << 32, UINT64_MAX, 100000};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        gw_set_u64(&w, GW_AT_N_TENSORS, absurd[i]);
        EXPECT_BAD(&w, " tensors, more than");
        gw_set_u64(&w, GW_AT_N_TENSORS, 3);
        gw_set_u64(&w, GW_AT_N_KV, absurd[i]);
        EXPECT_BAD(&w, "key/value pairs, more than");
        gw_set_u64(&w, GW_AT_N_KV, 18);
    }
    /* more kvs than written: the next "key" is a tensor name + garbage */
    gw_set_u64(&w, GW_AT_N_KV, 19);
    EXPECT_BAD(&w, BAD_NAME);
    gw_free(&w);

    /* random bytes after a correct magic never crash */
    uint32_t seed = 12345;
    for (int k = 0; k < 2000; k++) {
        struct gw r = {0};
        gw_bytes(&r, "GGUF", 4);
        gw_u32(&r, 2 + (uint32_t)(k & 1));
        size_t len = 16 + (size_t)(k % 97);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            uint8_t byte = (uint8_t)(seed >> 16);
            gw_u8(&r, (k & 2) && i % 8 > 1 ? 0 : byte); /* small counts too */
        }
        char err[ANC_ERR_LEN];
        uint8_t *copy;
        struct gguf_file *f = open_copy(r.p, r.len, &copy, err, sizeof err);
        if (f) {
            gguf_close(f);
            free(copy);
        }
        gw_free(&r);
    }
}

static void test_bad_strings(void)
{
    struct gw w = {0};

    /* key length beyond the file, and huge */
    uint64_t lens[] = {1000, 1ull << 62, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        gw_header(&w, 3, 0, 1);
        gw_u64(&w, lens[i]);
        gw_bytes(&w, "general.name", 12);
        gw_u32(&w, GGUF_VT_UINT32), gw_u32(&w, 1);
        EXPECT_BAD(&w, i == 0 ? "truncated: key/value 1 of 1" : "has a key of");
        gw_free(&w);
    }
    /* keys and names over 64 KiB are refused even when present */
    char *longkey = malloc(70000);
    memset(longkey, 'k', 69999);
    longkey[69999] = '\0';
    gw_header(&w, 3, 0, 1);
    gw_kv_u32(&w, longkey, 1);
    EXPECT_BAD(&w, "at most 65536");
    gw_free(&w);
    gw_header(&w, 3, 1, 0);
    gw_tensor(&w, longkey, 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    gw_pad(&w, 32), gw_zeros(&w, 32);
    EXPECT_BAD(&w, "at most 65536");
    gw_free(&w);
    free(longkey);

    /* empty key, empty tensor name */
    gw_header(&w, 3, 0, 1);
    gw_kv_u32(&w, "", 1);
    EXPECT_BAD(&w, "empty key");
    gw_free(&w);
    gw_header(&w, 3, 1, 0);
    gw_tensor(&w, "", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    gw_pad(&w, 32), gw_zeros(&w, 32);
    EXPECT_BAD(&w, "empty name");
    gw_free(&w);

    /* string value length beyond the file */
    for (size_t i = 0; i < 3; i++) {
        gw_header(&w, 3, 0, 1);
        gw_key(&w, "general.name", GGUF_VT_STRING);
        gw_u64(&w, lens[i]);
        gw_bytes(&w, "abc", 3);
        EXPECT_BAD(&w, "truncated");
        gw_free(&w);
    }
    /* tensor name beyond the file */
    gw_header(&w, 3, 1, 0);
    gw_u64(&w, 1ull << 50);
    gw_bytes(&w, "name", 4);
    gw_zeros(&w, 40);
    EXPECT_BAD(&w, "has a name of 1125899906842624 bytes");
    gw_free(&w);
}

static void test_bad_arrays(void)
{
    struct gw w = {0};
    /* element counts beyond the file, for numbers and strings */
    static const uint64_t counts[] = {100, 1ull << 40, 1ull << 61, 1ull << 62, UINT64_MAX};
    static const uint32_t types[] = {GGUF_VT_UINT8, GGUF_VT_UINT32, GGUF_VT_FLOAT64,
                                     GGUF_VT_STRING, GGUF_VT_BOOL};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            gw_header(&w, 3, 0, 1);
            gw_kv_arr(&w, "a", types[t], counts[c]);
            gw_zeros(&w, 24);
            EXPECT_BAD(&w, types[t] == GGUF_VT_STRING && counts[c] == 100 ? "truncated"
                                                                            : "claims");
            gw_free(&w);
        }
    /* a string inside an array running past the end */
    gw_header(&w, 3, 0, 1);
    gw_kv_arr(&w, "tokens", GGUF_VT_STRING, 3);
    gw_str(&w, "a");
    gw_u64(&w, 1ull << 60);
    gw_str(&w, "c");
    EXPECT_BAD(&w, "string 2 of 3");
    gw_free(&w);
    /* lengths near 2^64, where 8 + length wraps around */
    static const uint64_t wrap[] = {UINT64_MAX, UINT64_MAX - 7, UINT64_MAX - 8, 1ull << 63};
    for (size_t i = 0; i < sizeof wrap / sizeof wrap[0]; i++) {
        gw_header(&w, 3, 0, 1);
        gw_kv_arr(&w, "tokens", GGUF_VT_STRING, 2);
        gw_u64(&w, wrap[i]);
        gw_zeros(&w, 32);
        EXPECT_BAD(&w, "string 1 of 2");
        gw_free(&w);
    }
    /* nested arrays */
    gw_header(&w, 3, 0, 1);
    gw_kv_arr(&w, "nest", GGUF_VT_ARRAY, 1);
    gw_u32(&w, GGUF_VT_UINT8), gw_u64(&w, 1), gw_u8(&w, 7);
    EXPECT_BAD(&w, "nested arrays");
    gw_free(&w);
    /* unknown element type and unknown value type */
    gw_header(&w, 3, 0, 1);
    gw_kv_arr(&w, "a", GGUF_VT_COUNT_, 1);
    gw_u64(&w, 0);
    EXPECT_BAD(&w, "unknown element type 13");
    gw_free(&w);
    uint32_t bad_types[] = {GGUF_VT_COUNT_, 0xffffffffu, 0x80000000u};
    for (size_t i = 0; i < 3; i++) {
        gw_header(&w, 3, 0, 1);
        gw_key(&w, "k", bad_types[i]);
        gw_u64(&w, 0);
        EXPECT_BAD(&w, "unknown value type");
        gw_free(&w);
    }
}

/* One tensor of the given shape/type/offset, and `data` bytes of data. */
static void one_tensor(struct gw *w, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data)
{
    gw_header(w, 3, 1, 0);
    gw_tensor(w, "t", n_dims, ne, type, offset);
    gw_pad(w, 32);
    gw_zeros(w, data);
}

static void test_bad_tensors(void)
{
    struct gw w = {0};
    /* the helper itself makes a good file */
    one_tensor(&w, 2, (const uint64_t[]){8, 2}, ANC_DT_F32, 0, 64);
    char err[ANC_ERR_LEN] = "";
    uint8_t *copy;
    struct gguf_file *f = open_copy(w.p, w.len, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    gguf_close(f);
    free(copy);
    gw_free(&w);

    one_tensor(&w, 1, (const uint64_t[]){8}, 4, 0, 64); /* id 4: removed Q4_2 */
    EXPECT_BAD(&w, "unknown tensor type 4");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){8}, 1000, 0, 64);
    EXPECT_BAD(&w, "unknown tensor type 1000");
    gw_free(&w);

    one_tensor(&w, 0, NULL, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "0 dimensions");
    gw_free(&w);
    one_tensor(&w, 5, (const uint64_t[]){1, 1, 1, 1, 1}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "5 dimensions");
    gw_free(&w);
    gw_header(&w, 3, 1, 0); /* n_dims 2^32-1 with little file behind it */
    gw_str(&w, "t"), gw_u32(&w, 0xffffffffu), gw_zeros(&w, 64);
    EXPECT_BAD(&w, "dimensions");
    gw_free(&w);

    one_tensor(&w, 2, (const uint64_t[]){8, 0}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "dimension of 0");
    gw_free(&w);
    one_tensor(&w, 2, (const uint64_t[]){1ull << 32, 1ull << 32}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "overflows");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){1ull << 63}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "overflows");
    gw_free(&w);
    one_tensor(&w, 4, (const uint64_t[]){1ull << 16, 1ull << 16, 1ull << 16, 1ull << 16},
               ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "overflows");
    gw_free(&w);
    /* elements fit in int64 but bytes do not: 2^62 f32 */
    one_tensor(&w, 2, (const uint64_t[]){1ull << 31, 1ull << 31}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "byte size that overflows");
    gw_free(&w);
    /* big but representable: simply more than the file holds */
    one_tensor(&w, 2, (const uint64_t[]){1ull << 20, 1ull << 20}, ANC_DT_F32, 0, 64);
    EXPECT_BAD(&w, "runs past the end");
    gw_free(&w);

    /* rows that are not whole blocks */
    one_tensor(&w, 2, (const uint64_t[]){16, 2}, ANC_DT_Q8_0, 0, 64);
    EXPECT_BAD(&w, "not a multiple of the q8_0 block size 32");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){128}, ANC_DT_Q4_K, 0, 256);
    EXPECT_BAD(&w, "block size 256");
    gw_free(&w);

    /* offsets */
    one_tensor(&w, 1, (const uint64_t[]){8}, ANC_DT_F32, 1ull << 40, 64);
    EXPECT_BAD(&w, "runs past the end");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){8}, ANC_DT_F32, UINT64_MAX - 31, 64);
    EXPECT_BAD(&w, "runs past the end");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){8}, ANC_DT_F32, 32, 63); /* 32 + 32 > 63 */
    EXPECT_BAD(&w, "runs past the end");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){8}, ANC_DT_F32, 0, 31); /* data 1 byte short */
    EXPECT_BAD(&w, "runs past the end");
    gw_free(&w);
    one_tensor(&w, 1, (const uint64_t[]){8}, ANC_DT_F32, 4, 64);
    EXPECT_BAD(&w, "not a multiple of the alignment 32");
    gw_free(&w);

    /* tensor infos promised but the data section would start past the end */
    gw_header(&w, 3, 1, 0);
    gw_tensor(&w, "t", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    EXPECT_BAD(&w, "truncated");
    gw_free(&w);

    /* overlapping and duplicate tensors */
    gw_header(&w, 3, 3, 0);
    gw_tensor(&w, "x", 1, (const uint64_t[]){16}, ANC_DT_F32, 64); /* 64..127 */
    gw_tensor(&w, "y", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);   /* 0..31 */
    gw_tensor(&w, "z", 1, (const uint64_t[]){8}, ANC_DT_F32, 96);  /* inside x */
    gw_pad(&w, 32), gw_zeros(&w, 160);
    EXPECT_BAD(&w, "overlap");
    gw_free(&w);
    gw_header(&w, 3, 2, 0);
    gw_tensor(&w, "x", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    gw_tensor(&w, "y", 1, (const uint64_t[]){8}, ANC_DT_F32, 0); /* same offset */
    gw_pad(&w, 32), gw_zeros(&w, 64);
    EXPECT_BAD(&w, "overlap");
    gw_free(&w);
    gw_header(&w, 3, 2, 0);
    gw_tensor(&w, "same", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    gw_tensor(&w, "same", 1, (const uint64_t[]){8}, ANC_DT_F32, 32);
    gw_pad(&w, 32), gw_zeros(&w, 64);
    EXPECT_BAD(&w, "tensor name 'same' appears more than once");
    gw_free(&w);
    /* names differing only after a NUL byte are different */
    gw_header(&w, 3, 2, 0);
    gw_strn(&w, "n\0a", 3), gw_u32(&w, 1), gw_u64(&w, 8), gw_u32(&w, ANC_DT_F32), gw_u64(&w, 0);
    gw_strn(&w, "n\0b", 3), gw_u32(&w, 1), gw_u64(&w, 8), gw_u32(&w, ANC_DT_F32), gw_u64(&w, 32);
    gw_pad(&w, 32), gw_zeros(&w, 64);
    f = open_copy(w.p, w.len, &copy, err, sizeof err);
    CHECK_MSG(f != NULL, "%s", err);
    gguf_close(f);
    free(copy);
    gw_free(&w);
}

static void test_bad_metadata(void)
{
    struct gw w = {0};
    gw_header(&w, 3, 0, 3);
    gw_kv_u32(&w, "a.b", 1);
    gw_kv_u32(&w, "c", 2);
    gw_kv_str(&w, "a.b", "again");
    EXPECT_BAD(&w, "key 'a.b' appears more than once");
    gw_free(&w);

    /* general.alignment: zero, not a power of two, wrong type, negative */
    static const uint32_t aligns[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        gw_header(&w, 3, 1, 1);
        gw_kv_u32(&w, "general.alignment", aligns[i]);
        gw_tensor(&w, "t", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
        gw_pad(&w, 64), gw_zeros(&w, 32);
        EXPECT_BAD(&w, "not a power of two");
        gw_free(&w);
    }
    gw_header(&w, 3, 0, 1);
    gw_kv_str(&w, "general.alignment", "32");
    EXPECT_BAD(&w, "general.alignment has type string");
    gw_free(&w);
    gw_header(&w, 3, 0, 1);
    gw_key(&w, "general.alignment", GGUF_VT_INT32), gw_u32(&w, (uint32_t)-32);
    EXPECT_BAD(&w, "not a power of two");
    gw_free(&w);

    /* a good non-default alignment whose padding is cut short */
    gw_header(&w, 3, 1, 1);
    gw_kv_u32(&w, "general.alignment", 4096);
    gw_tensor(&w, "t", 1, (const uint64_t[]){8}, ANC_DT_F32, 0);
    gw_zeros(&w, 100);
    EXPECT_BAD(&w, "data section would start at offset 4096");
    gw_free(&w);
}

/* Inputs the fuzzer found are kept here (tests/fuzz/fuzz_gguf.c). */
static void test_fuzz_regressions(void)
{
    /* A string in an array whose length is so large that 8 + length wraps
     * around to a small number: the reader refused it but wrote no message. */
    static const uint8_t wrapped_len[] = {
        0x47, 0x47, 0x55, 0x46, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x67, 0x65, 0x6e, 0x65, 0x72, 0x61, 0xec, 0x2e, 0x61, 0x72, 0x63, 0x68, 0x69, 0x74, 0x65, 0x63,
        0x74, 0x75, 0x72, 0x65, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x6c, 0x6c, 0x61, 0x6d, 0x61, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x74, 0x6f, 0x6b,
        0x39, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x67, 0x6d, 0x6c, 0x2e, 0x6d, 0x6f, 0x64, 0x65,
        0x6c, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x32, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x69, 0x7a,
        0x65, 0x72, 0x2e, 0x67, 0x67, 0x6d, 0x6c, 0x2e, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x73, 0x09, 0x00,
        0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x62,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0x62, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xc4, 0xa0, 0x61, 0x15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x74, 0x6f, 0x6b,
        0x65, 0x6e, 0x69, 0x7a, 0x41, 0x72, 0x2e, 0x67, 0x67, 0x6d, 0x6c, 0x2e, 0x6d, 0x65, 0x72, 0x67,
        0x65, 0x73, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0x20, 0x62, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xc4, 0xa0, 0x20, 0x61, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x74, 0x6f, 0x6b, 0x98, 0x91, 0x96, 0x85, 0x65, 0x72, 0x2e, 0x67, 0x67, 0x6d, 0x6c, 0x2e,
        0x74, 0x6f, 0x6b, 0x6c, 0x6e, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x09, 0x00, 0x00, 0x00, 0x06, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    };
    expect_bad_at(wrapped_len, sizeof wrapped_len, "string 2 of 6", __LINE__);
}

int main(void)
{
    test_sample(0);
    test_sample(64);
    test_no_tensors();
    test_every_truncation();
    test_bad_header();
    test_bad_strings();
    test_bad_arrays();
    test_bad_tensors();
    test_bad_metadata();
    test_fuzz_regressions();
    test_open_errors();
    /* The rest needs the shared models and may skip (77): report failures
     * so far first, so a skip cannot hide them. */
    if (test_failures) TEST_EXIT();
    test_stories();
    test_vocab_only();
    test_stories_truncated();
    test_print_info();
    TEST_EXIT();
}
