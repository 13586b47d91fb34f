/* test_cuda_dev_quant.c — the format math of the CUDA weight kernels
 * (kernels/cuda/quant_dev.h, compiled here as plain C) against the scalar
 * reference of kernels/cpu/quant.c and the converters of kernels/dtype.h:
 *   (1) block geometry, field offsets, accepted row lengths and alignment
 *       against quant.h and dtype.c;
 *   (2) half and bfloat16 -> float over all 65536 bit patterns;
 *   (3) the exact small-integer -> float conversions;
 *   (4) decoding of every group (the partial last group of a float row
 *       included) and every single element of seeded random rows, and the
 *       work items of the row decoding kernel (dequantisation by row0,
 *       embedding by row ids), bit for bit against quant_dequant_row;
 *   (5) the matrix-vector product as the kernel computes it (every thread's
 *       anc_qd_matvec_partial / _1tok, then the warp and block sums)
 *       against quant_dot_row, for 1, 3 and 8 tokens and odd row counts;
 *   (6) float rows of lengths that are not a multiple of 8 (1, 7, 13, 171,
 *       172, 1001), as (4) and (5).
 * Every plain 16/32-bit load the device would make is checked for its
 * alignment (ANC_QD_LOAD_HOOK), also with the matrix at an address aligned
 * only to anc_qd_row_align (2 bytes for all but F32), where F16/BF16 rows
 * of odd length start 2 bytes off a 4-byte boundary.
 * Needs no GPU and no CUDA. Uses quant.h, dtype.h, quant_dev.h,
 * cuda_kernels.h (the token limit) and test_util.h. */
#include <stdint.h>

/* Plain loads of quant_dev.h at an address not a multiple of their size
 * (the device would fault on them). */
static long misaligned_loads;
#define ANC_QD_LOAD_HOOK(p, bytes) (misaligned_loads += (uintptr_t)(p) % (bytes) != 0)

#include "quant.h"
#include "quant_dev.h"
#include "cuda_kernels.h"
#include "test_rng.h"
#include "test_util.h"

#include <inttypes.h>
#include <stddef.h>

#define MAX_REPORTS 10
#define WARP 32

_Static_assert(ANC_QD_MV_MAX_TOK == ANC_CU_MATVEC_MAX_TOK, "token limits agree");
_Static_assert(ANC_QD_MV_THREADS % WARP == 0, "whole warps");

static const uint32_t all_types[] = {
    ANC_DT_F32, ANC_DT_F16, ANC_DT_BF16, ANC_DT_Q4_0, ANC_DT_Q4_1, ANC_DT_Q5_0,
    ANC_DT_Q5_1, ANC_DT_Q8_0, ANC_DT_Q4_K, ANC_DT_Q5_K, ANC_DT_Q6_K,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static const char *tname(uint32_t type) { return anc_dtype_get(type)->name; }

static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* ---- data ------------------------------------------------------------------ */


static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* A finite half scale: mostly a normal value of either sign and a range of
 * magnitudes, sometimes zero, a subnormal or a large value. */
static uint16_t random_scale(struct rng *r)
{
    switch (rng_next(r) % 16) {
    case 0: return 0x0000;                                      /* +0 */
    case 1: return 0x8000;                                      /* −0 */
    case 2: return (uint16_t)(1 + rng_next(r) % 0x3ff);         /* subnormal */
    case 3: return anc_f32_to_f16(ldexpf(rng_gauss(r), 10));    /* large */
    default: return anc_f32_to_f16(ldexpf(rng_gauss(r), -(int)(rng_next(r) % 12)));
    }
}

/* A finite half element: any bit pattern but inf/nan. */
static uint16_t random_finite_f16(struct rng *r)
{
    for (;;) {
        uint16_t h = (uint16_t)rng_next(r);
        if ((h & 0x7c00u) != 0x7c00u) return h;
    }
}

/* A bfloat16 element of moderate magnitude (biased exponent 97..137), or a
 * zero / subnormal now and then, so that dot products stay finite. */
static uint16_t random_bf16(struct rng *r)
{
    uint16_t h = (uint16_t)rng_next(r);
    if (rng_next(r) % 16 == 0) return h & 0x807fu; /* zero or subnormal */
    uint32_t e = 97 + (uint32_t)(rng_next(r) % 41);
    return (uint16_t)((h & 0x807fu) | e << 7);
}

/* Byte offsets of the f16 scale fields of a block (-1 ends the list). */
static const int *scale_fields(uint32_t type)
{
    static const int d_only[] = {0, -1}, d_m[] = {0, 2, -1}, q6k[] = {ANC_QD_Q6_K_D, -1};
    switch (type) {
    case ANC_DT_Q4_0: case ANC_DT_Q5_0: case ANC_DT_Q8_0: return d_only;
    case ANC_DT_Q4_1: case ANC_DT_Q5_1: case ANC_DT_Q4_K: case ANC_DT_Q5_K: return d_m;
    case ANC_DT_Q6_K: return q6k;
    default: return NULL;
    }
}

/* n_rows rows of cols elements of `type`: random quant, scale-of-scale and
 * 6-bit/int8 scale bytes; f16 scales finite (random_scale); float types as
 * above (F32: Gaussian values of varied scale, some zeros). */
static uint8_t *make_rows(uint32_t type, struct rng *r, int64_t n_rows, int64_t cols)
{
    size_t row_bytes = anc_dtype_row_bytes(type, (uint64_t)cols);
    size_t bytes = row_bytes * (size_t)n_rows;
    uint8_t *buf = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)rng_next(r);
    int64_t n = n_rows * cols;
    if (type == ANC_DT_F32) {
        for (int64_t i = 0; i < n; i++) {
            int e = (int)(rng_next(r) % 9) - 4;
            float v = rng_next(r) % 32 == 0 ? 0.0f : ldexpf(rng_gauss(r), e);
            memcpy(buf + 4 * i, &v, 4);
        }
    } else if (type == ANC_DT_F16) {
        for (int64_t i = 0; i < n; i++) put16(buf + 2 * i, random_finite_f16(r));
    } else if (type == ANC_DT_BF16) {
        for (int64_t i = 0; i < n; i++) put16(buf + 2 * i, random_bf16(r));
    } else {
        size_t bb = (size_t)anc_qd_block_bytes(type);
        for (size_t b = 0; b < bytes / bb; b++)
            for (const int *f = scale_fields(type); *f >= 0; f++)
                put16(buf + b * bb + (size_t)*f, random_scale(r));
    }
    return buf;
}

/* Activations [n_tok][cols]: normal values, each group of 8 of a row scaled
 * by 2^k (k in −3..3), the second group of every row zero. */
static float *make_activations(struct rng *r, int n_tok, int64_t cols)
{
    float *x = malloc((size_t)n_tok * (size_t)cols * sizeof *x);
    float scale = 1.0f;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t c = 0; c < cols; c++) {
            if (c % ANC_QD_GROUP == 0) scale = ldexpf(1.0f, (int)(rng_next(r) % 7) - 3);
            x[t * cols + c] = c / ANC_QD_GROUP == 1 ? 0.0f : rng_gauss(r) * scale;
        }
    return x;
}

/* A copy of `bytes` bytes placed `off` bytes past a 16-byte boundary (the
 * matrix at an address only as aligned as `off`); free base. */
static uint8_t *shifted_copy(const uint8_t *src, size_t bytes, size_t off, uint8_t **base)
{
    *base = malloc(bytes + 16);
    CHECK(((uintptr_t)*base & 15u) == 0); /* malloc aligns for any type */
    memcpy(*base + off, src, bytes);
    return *base + off;
}

/* ---- (1) geometry ------------------------------------------------------------- */

static void test_geometry(void)
{
    for (uint32_t t = 0; t < ANC_DT_COUNT_ + 4; t++) {
        const struct anc_dtype_info *d = anc_dtype_get(t);
        bool computable = d && d->computable; /* = anc_backend_cpu_supports */
        CHECK_MSG(anc_qd_supported(t) == computable, "type %u", t);
        CHECK_MSG(anc_qd_supported(t) == quant_supported(t), "type %u", t);
        if (!anc_qd_supported(t)) {
            CHECK_INT_EQ(anc_qd_block_elems(t), 0);
            CHECK_INT_EQ(anc_qd_block_bytes(t), 0);
            continue;
        }
        CHECK_INT_EQ(anc_qd_block_elems(t), d->block_elems);
        CHECK_INT_EQ(anc_qd_block_bytes(t), d->block_bytes);
        int64_t be = d->block_elems;
        /* any whole number of blocks, up to a generous limit */
        CHECK(anc_qd_cols_ok(t, be) && anc_qd_cols_ok(t, 3 * be));
        CHECK(anc_qd_cols_ok(t, (int64_t)ANC_QD_MAX_COLS) && ANC_QD_MAX_COLS >= (1 << 20));
        CHECK(!anc_qd_cols_ok(t, 0) && !anc_qd_cols_ok(t, -be));
        CHECK(!anc_qd_cols_ok(t, (int64_t)ANC_QD_MAX_COLS + be));
        if (be > 1) CHECK(!anc_qd_cols_ok(t, be + be / 2) && !anc_qd_cols_ok(t, 8));
        else CHECK(anc_qd_cols_ok(t, 1) && anc_qd_cols_ok(t, 7) && anc_qd_cols_ok(t, 172));
        /* a partial last group only for float rows */
        for (int64_t cols = be; cols <= 40 * be; cols += be) {
            CHECK_INT_EQ(anc_qd_tail_elems(t, cols), be == 1 ? cols % ANC_QD_GROUP : 0);
            CHECK_INT_EQ(anc_qd_row_groups(cols), (cols + 7) / 8);
        }
        CHECK_INT_EQ(anc_qd_row_bytes(t, 5 * be), anc_dtype_row_bytes(t, (uint64_t)(5 * be)));
        /* a matrix aligned to anc_qd_row_align has every row and block so */
        CHECK_INT_EQ(anc_qd_row_align(t), t == ANC_DT_F32 ? 4 : 2);
        CHECK(anc_qd_block_bytes(t) % anc_qd_row_align(t) == 0);
    }
    /* field offsets */
    CHECK_INT_EQ(offsetof(struct block_q4_0, qs), ANC_QD_Q4_0_QS);
    CHECK_INT_EQ(offsetof(struct block_q4_1, m), ANC_QD_Q4_1_M);
    CHECK_INT_EQ(offsetof(struct block_q4_1, qs), ANC_QD_Q4_1_QS);
    CHECK_INT_EQ(offsetof(struct block_q5_0, qh), ANC_QD_Q5_0_QH);
    CHECK_INT_EQ(offsetof(struct block_q5_0, qs), ANC_QD_Q5_0_QS);
    CHECK_INT_EQ(offsetof(struct block_q5_1, m), ANC_QD_Q5_1_M);
    CHECK_INT_EQ(offsetof(struct block_q5_1, qh), ANC_QD_Q5_1_QH);
    CHECK_INT_EQ(offsetof(struct block_q5_1, qs), ANC_QD_Q5_1_QS);
    CHECK_INT_EQ(offsetof(struct block_q8_0, qs), ANC_QD_Q8_0_QS);
    CHECK_INT_EQ(offsetof(struct block_q4_k, dmin), ANC_QD_Q4_K_DMIN);
    CHECK_INT_EQ(offsetof(struct block_q4_k, scales), ANC_QD_Q4_K_SCALES);
    CHECK_INT_EQ(offsetof(struct block_q4_k, qs), ANC_QD_Q4_K_QS);
    CHECK_INT_EQ(offsetof(struct block_q5_k, dmin), ANC_QD_Q5_K_DMIN);
    CHECK_INT_EQ(offsetof(struct block_q5_k, scales), ANC_QD_Q5_K_SCALES);
    CHECK_INT_EQ(offsetof(struct block_q5_k, qh), ANC_QD_Q5_K_QH);
    CHECK_INT_EQ(offsetof(struct block_q5_k, qs), ANC_QD_Q5_K_QS);
    CHECK_INT_EQ(offsetof(struct block_q6_k, qh), ANC_QD_Q6_K_QH);
    CHECK_INT_EQ(offsetof(struct block_q6_k, scales), ANC_QD_Q6_K_SCALES);
    CHECK_INT_EQ(offsetof(struct block_q6_k, d), ANC_QD_Q6_K_D);
    /* Q5_K's scale fields are read with Q4_K's offsets (one helper) */
    CHECK_INT_EQ(ANC_QD_Q5_K_DMIN, ANC_QD_Q4_K_DMIN);
    CHECK_INT_EQ(ANC_QD_Q5_K_SCALES, ANC_QD_Q4_K_SCALES);
    CHECK_INT_EQ(ANC_QD_QK, QUANT_QK);
    CHECK_INT_EQ(ANC_QD_QK_K, QUANT_QK_K);
    printf("geometry: %zu types, block sizes and field offsets agree with quant.h / dtype.c\n",
           N_TYPES);
}

/* ---- (2) half and bfloat16, exhaustively ------------------------------------------ */

static bool same_float(float a, float b)
{
    return bits_of(a) == bits_of(b) || (isnan(a) && isnan(b));
}

static void test_half_bits(void)
{
    int bad16 = 0, badbf = 0, nan_bits_differ = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float got = anc_qd_f16_to_f32(h), want = anc_f16_to_f32((uint16_t)h);
        if (!same_float(got, want) && bad16++ < MAX_REPORTS)
            fprintf(stderr, "  f16 0x%04x: got 0x%08x, dtype.h 0x%08x\n", h, bits_of(got),
                    bits_of(want));
        nan_bits_differ += isnan(want) && bits_of(got) != bits_of(want);
        got = anc_qd_bf16_to_f32(h), want = anc_bf16_to_f32((uint16_t)h);
        if (!same_float(got, want) && badbf++ < MAX_REPORTS)
            fprintf(stderr, "  bf16 0x%04x: got 0x%08x, dtype.h 0x%08x\n", h, bits_of(got),
                    bits_of(want));
        nan_bits_differ += isnan(want) && bits_of(got) != bits_of(want);
    }
    CHECK_MSG(bad16 == 0, "%d half patterns convert differently", bad16);
    CHECK_MSG(badbf == 0, "%d bfloat16 patterns convert differently", badbf);
    printf("f16/bf16 -> f32: all 65536 patterns each equal dtype.h (%d NaNs with other payload "
           "bits)\n", nan_bits_differ);
}

/* ---- (3) small integers ------------------------------------------------------- */

static void test_small_ints(void)
{
    int bad = 0;
    for (uint32_t q = 0; q < (1u << 23); q += q < 70000 ? 1 : 997) {
        bad += anc_qd_small_float(q) != (float)q;
        bad += anc_qd_small_float_minus(q, 32u) != (float)q - 32.0f;
    }
    bad += anc_qd_small_float((1u << 23) - 1) != (float)((1u << 23) - 1);
    for (uint32_t b = 0; b < 256; b++) bad += anc_qd_i8_float(b) != (float)(int8_t)(uint8_t)b;
    CHECK_MSG(bad == 0, "%d small integers convert wrongly", bad);
    printf("small integer -> float: exact\n");
}

/* ---- (4) decoding, bit for bit --------------------------------------------------- */

/* Is got bit-identical to the reference? Reports the first few that are not. */
static bool same_bits(uint32_t type, const char *what, int64_t r, int64_t e, float got, float want,
                      int *bad)
{
    if (bits_of(got) == bits_of(want)) return true;
    if ((*bad)++ < MAX_REPORTS)
        fprintf(stderr, "  %s %s: row %" PRId64 " element %" PRId64 " (block %" PRId64
                ", group %" PRId64 "): device code %.9g (0x%08x), reference %.9g (0x%08x)\n",
                tname(type), what, r, e, e / anc_qd_block_elems(type), e / ANC_QD_GROUP, got,
                bits_of(got), want, bits_of(want));
    return false;
}

/* Every group (anc_qd_decode_group, the partial last one included) and
 * every element (anc_qd_decode1) of every row against quant_dequant_row. */
static void test_decode(uint32_t type, const uint8_t *rows, int64_t n_rows, int64_t cols)
{
    int64_t row_bytes = anc_qd_row_bytes(type, cols);
    float *want = malloc((size_t)cols * sizeof *want);
    int bad = 0, bad_len = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *row = rows + r * row_bytes;
        quant_dequant_row(type, row, want, cols);
        for (int32_t g = 0; g < anc_qd_row_groups(cols); g++) {
            float got[ANC_QD_GROUP];
            int n = anc_qd_decode_group(type, row, cols, g, got);
            int64_t e0 = (int64_t)ANC_QD_GROUP * g;
            bad_len += n != (cols - e0 < ANC_QD_GROUP ? cols - e0 : ANC_QD_GROUP);
            for (int i = 0; i < n && e0 + i < cols; i++)
                same_bits(type, "group", r, e0 + i, got[i], want[e0 + i], &bad);
        }
        for (int64_t e = 0; e < cols; e++)
            same_bits(type, "element", r, e, anc_qd_decode1(type, row, e), want[e], &bad);
    }
    CHECK_MSG(bad_len == 0, "%s: %d groups of the wrong length (%" PRId64 " columns)",
              tname(type), bad_len, cols);
    CHECK_MSG(bad == 0, "%s: %d of %" PRId64 " decoded values differ from quant_dequant_row",
              tname(type), bad, 2 * n_rows * cols);
    free(want);
}

/* The row decoding kernel's work (decode_rows_kernel: one thread per item
 * k < n_out·anc_qd_row_groups(cols), each anc_qd_decode_item) replayed into
 * a float [n_out][cols] result: output row i is source row ids[i] when ids
 * is given (the embedding), else row0 + i (the dequantisation). Every
 * output element must be written exactly once, bit-identical to
 * quant_dequant_row of its source row. */
static void test_decode_items(uint32_t type, const uint8_t *rows, int64_t cols, int64_t row0,
                              const int32_t *ids, int64_t n_out)
{
    int64_t row_bytes = anc_qd_row_bytes(type, cols);
    float *out = malloc((size_t)(n_out * cols) * sizeof *out);
    int *writes = calloc((size_t)(n_out * cols), sizeof *writes);
    float *want = malloc((size_t)cols * sizeof *want);
    int bad = 0, bad_writes = 0;
    for (int64_t k = 0; k < n_out * anc_qd_row_groups(cols); k++) {
        float v[ANC_QD_GROUP];
        int64_t at = -1;
        int n = anc_qd_decode_item(type, rows, row_bytes, cols, row0, ids, k, v, &at);
        for (int e = 0; e < n; e++) {
            if (at < 0 || at + e >= n_out * cols) {
                bad_writes++;
                continue;
            }
            out[at + e] = v[e];
            writes[at + e]++;
        }
    }
    for (int64_t i = 0; i < n_out; i++) {
        int64_t src = ids ? ids[i] : row0 + i;
        quant_dequant_row(type, rows + src * row_bytes, want, cols);
        for (int64_t c = 0; c < cols; c++) {
            bad_writes += writes[i * cols + c] != 1;
            if (writes[i * cols + c] == 1)
                same_bits(type, ids ? "embed" : "dequant", i, c, out[i * cols + c], want[c], &bad);
        }
    }
    CHECK_MSG(bad_writes == 0, "%s: %d output elements not written exactly once (%" PRId64
              " columns)", tname(type), bad_writes, cols);
    CHECK_MSG(bad == 0, "%s: %d row-decoded values differ from quant_dequant_row", tname(type),
              bad);
    free(out);
    free(writes);
    free(want);
}

/* ---- (5) the matrix-vector product as the kernel computes it ------------------------- */

/* What __shfl_xor_sync butterflies leave in lane 0: v[l] += v[l ^ o] for
 * o = 16, 8, 4, 2, 1. */
static float warp_sum(float v[WARP])
{
    for (int o = WARP / 2; o > 0; o >>= 1) {
        float next[WARP];
        for (int l = 0; l < WARP; l++) next[l] = v[l] + v[l ^ o];
        memcpy(v, next, sizeof next);
    }
    return v[0];
}

/* y[t][r] for rows r0..r0+n_rows-1 as one block of matvec_kernel computes
 * them with `threads` threads (ANC_QD_MV_THREADS in the kernel): every
 * thread's partial sums, a warp sum per warp, the warps added in order.
 * Also checks that the partial sums beyond n_rows / n_tok are zero. */
static void simulate_block(uint32_t type, const uint8_t *w, int64_t row_bytes, int n_rows,
                           const float *x, int64_t cols, int n_tok, int threads,
                           float y[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK])
{
    static float acc[ANC_QD_MV_THREADS][ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK];
    int stray = 0, tail_takers = 0;
    for (int tid = 0; tid < threads; tid++) {
        tail_takers += anc_qd_takes_tail(type, cols, tid, threads);
        if (n_tok == 1) /* the kernel's choice */
            anc_qd_matvec_partial_1tok(type, w, row_bytes, n_rows, x, cols, tid, threads,
                                       acc[tid]);
        else
            anc_qd_matvec_partial(type, w, row_bytes, n_rows, x, cols, n_tok, tid, threads,
                                  acc[tid]);
        for (int r = 0; r < ANC_QD_MV_ROWS; r++)
            for (int t = 0; t < ANC_QD_MV_MAX_TOK; t++)
                stray += (r >= n_rows || t >= n_tok) && acc[tid][r][t] != 0.0f;
    }
    CHECK_MSG(stray == 0, "%s: %d partial sums outside the rows/tokens are not zero", tname(type),
              stray);
    CHECK_MSG(tail_takers == (anc_qd_tail_elems(type, cols) > 0),
              "%s: %d threads take the partial group (%" PRId64 " columns, %d threads)",
              tname(type), tail_takers, cols, threads);
    for (int r = 0; r < n_rows; r++)
        for (int t = 0; t < n_tok; t++) {
            float sum = 0.0f;
            for (int w0 = 0; w0 < threads; w0 += WARP) {
                float lanes[WARP];
                for (int l = 0; l < WARP; l++)
                    lanes[l] = w0 + l < threads ? acc[w0 + l][r][t] : 0.0f;
                sum += warp_sum(lanes);
            }
            y[r][t] = sum;
        }
}

/* The simulated kernel against quant_dot_row, for every row and token:
 * |got − ref| <= 1e-5 · Σ|w·x| (both are float sums of the same exact
 * products in different orders; Σ|w·x| and not |ref| sets the scale of
 * their rounding, since the sum may cancel). Returns the largest
 * |got − ref| / bound seen. */
static double test_matvec(uint32_t type, const uint8_t *rows, int64_t n_rows, int64_t cols,
                          const float *x, int n_tok, int threads)
{
    int64_t row_bytes = anc_qd_row_bytes(type, cols);
    float *w = malloc((size_t)cols * sizeof *w);
    double worst = 0.0;
    int bad = 0;
    for (int64_t r0 = 0; r0 < n_rows; r0 += ANC_QD_MV_ROWS) {
        int nr = n_rows - r0 < ANC_QD_MV_ROWS ? (int)(n_rows - r0) : ANC_QD_MV_ROWS;
        float y[ANC_QD_MV_ROWS][ANC_QD_MV_MAX_TOK];
        simulate_block(type, rows + r0 * row_bytes, row_bytes, nr, x, cols, n_tok, threads, y);
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = rows + (r0 + r) * row_bytes;
            quant_dequant_row(type, row, w, cols);
            for (int t = 0; t < n_tok; t++) {
                const float *xt = x + t * cols;
                float ref = quant_dot_row(type, row, xt, cols);
                double mag = 0.0;
                for (int64_t i = 0; i < cols; i++) mag += fabs((double)w[i] * xt[i]);
                double bound = 1e-5 * mag + 1e-30, err = fabs((double)y[r][t] - ref);
                if (err / bound > worst) worst = err / bound;
                if (!(err <= bound) && bad++ < MAX_REPORTS)
                    fprintf(stderr, "  %s row %" PRId64 " token %d (%d threads): kernel %.9g, "
                            "reference %.9g, Σ|w·x| %.6g\n", tname(type), r0 + r, t, threads,
                            y[r][t], ref, mag);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %d matvec outputs off the reference (%d tokens, %d threads)",
              tname(type), bad, n_tok, threads);
    free(w);
    return worst;
}

/* Row length for a type: a few blocks (fewer groups than a block has
 * threads), or many (each thread takes several groups); for the float
 * types a multiple of 8 that is not one of 32. */
static int64_t cols_for(uint32_t type, bool many)
{
    int32_t be = anc_qd_block_elems(type);
    if (be == 1) return ANC_QD_GROUP * (many ? 201 : 13);
    if (be == ANC_QD_QK) return (int64_t)be * (many ? 41 : 7);
    return (int64_t)be * (many ? 9 : 3);
}

/* Decode, row-decoding and matvec checks on one set of random rows, placed
 * `off` bytes past a 16-byte boundary; returns the worst matvec error
 * relative to its bound. */
static double check_rows(uint32_t type, struct rng *r, int64_t n_rows, int64_t cols, size_t off)
{
    uint8_t *made = make_rows(type, r, n_rows, cols), *base;
    const uint8_t *rows = shifted_copy(made, (size_t)(n_rows * anc_qd_row_bytes(type, cols)), off,
                                       &base);
    free(made);
    test_decode(type, rows, n_rows, cols);
    /* dequantise all rows, and rows 1.. ; embed rows in another order */
    int32_t ids[10];
    int n_ids = 0;
    for (int64_t i = n_rows - 1; i >= 0 && n_ids < 8; i--) ids[n_ids++] = (int32_t)i;
    ids[n_ids++] = 0;
    ids[n_ids++] = (int32_t)(n_rows - 1); /* repeated, as tokens may be */
    test_decode_items(type, rows, cols, 0, NULL, n_rows);
    test_decode_items(type, rows, cols, 1, NULL, n_rows - 1);
    test_decode_items(type, rows, cols, 0, ids, n_ids);
    static const int toks[] = {1, 3, ANC_QD_MV_MAX_TOK};
    double worst = 0.0;
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        float *x = make_activations(r, toks[k], cols);
        double e = test_matvec(type, rows, n_rows, cols, x, toks[k], ANC_QD_MV_THREADS);
        if (e > worst) worst = e;
        e = test_matvec(type, rows, n_rows, cols, x, toks[k], 3); /* another stride */
        if (e > worst) worst = e;
        free(x);
    }
    free(base);
    return worst;
}

static void test_type(uint32_t type, struct rng *r)
{
    enum { ROUNDS = 4 };
    int before = test_failures;
    int64_t values = 0;
    double worst = 0.0;
    for (int k = 0; k < ROUNDS; k++) {
        /* 7 rows = a block of 4 and one of 3; 5 rows = 4 and 1; the last
         * round with the matrix only as aligned as the device needs */
        size_t off = k == ROUNDS - 1 ? (size_t)anc_qd_row_align(type) : 0;
        double e = check_rows(type, r, 7, cols_for(type, false), off);
        if (e > worst) worst = e;
        values += 7 * cols_for(type, false);
    }
    double e = check_rows(type, r, 5, cols_for(type, true), 0);
    if (e > worst) worst = e;
    values += 5 * cols_for(type, true);
    printf("%-5s %6" PRId64 " values decoded bit-exact; matvec 1/3/%d tokens, rows of %" PRId64
           " and %" PRId64 ": error <= %.3f of 1e-5 sum|w*x|: %s\n", tname(type), values,
           ANC_QD_MV_MAX_TOK, cols_for(type, false), cols_for(type, true), worst,
           test_failures == before ? "ok" : "FAILED");
}

/* ---- (6) float rows of any length ------------------------------------------------ */

/* Lengths with every tail 1..7 and none, fewer and more groups than a
 * block has threads; rows 7, 5 and 6 (blocks of 4 plus 3, 1 and 2); the
 * matrix 16-byte aligned and only as aligned as the device needs. */
static void test_odd_cols(uint32_t type, struct rng *r)
{
    static const int64_t lengths[] = {1, 7, 13, 171, 172, 1001, 2, 3, 5, 6, 8, 1030};
    static const int64_t n_rows[] = {7, 5, 6};
    int before = test_failures;
    double worst = 0.0;
    int64_t values = 0;
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        int64_t nr = n_rows[k % 3];
        for (int shifted = 0; shifted < 2; shifted++) {
            size_t off = shifted ? (size_t)anc_qd_row_align(type) : 0;
            double e = check_rows(type, r, nr, lengths[k], off);
            if (e > worst) worst = e;
            values += nr * lengths[k];
        }
    }
    printf("%-5s rows of 1, 7, 13, 171, 172, 1001, ... columns: %" PRId64 " values decoded "
           "bit-exact; matvec error <= %.3f of 1e-5 sum|w*x|: %s\n", tname(type), values, worst,
           test_failures == before ? "ok" : "FAILED");
}

int main(void)
{
    test_geometry();
    test_half_bits();
    test_small_ints();

    float nan8[ANC_QD_GROUP];
    const uint8_t zeros[64] = {0};
    anc_qd_decode8(ANC_DT_Q8_1, zeros, 0, nan8); /* not a weight type: NaN */
    CHECK(isnan(nan8[0]) && isnan(nan8[ANC_QD_GROUP - 1]));

    /* the alignment hook sees what it should */
    static const uint32_t words[4] = {0};
    const uint8_t *wb = (const uint8_t *)words; /* 4-byte aligned */
    long before = misaligned_loads;
    (void)anc_qd_le32(wb + 2);
    (void)anc_qd_le16(wb + 1);
    (void)anc_qd_le16(wb + 2);
    CHECK_INT_EQ(misaligned_loads - before, 2);
    misaligned_loads = 0;

    struct rng r = {20250705};
    for (size_t k = 0; k < N_TYPES; k++) test_type(all_types[k], &r);
    for (size_t k = 0; k < N_TYPES; k++)
        if (anc_qd_block_elems(all_types[k]) == 1) test_odd_cols(all_types[k], &r);
    CHECK_MSG(misaligned_loads == 0, "%ld device loads would be misaligned", misaligned_loads);
    printf("device loads: every plain 16/32-bit load aligned (%ld misaligned)\n",
           misaligned_loads);
    TEST_EXIT();
}
