/* test_simd.c — the CPU kernel tables (portable, AVX2, AVX2+VNNI) and the
 * CPU backend's matmul against the scalar reference of kernels/cpu/quant.c.
 * Depends on kernels/ and tests/test_util.h only; no model files.
 *
 * Covered: dot_f, dot_q8, mm_f, mm_q8 and the activation quantisers, every
 * weight type, several row lengths, odd row and token counts.
 *
 * Three kinds of inputs per type and length:
 * - "quant": weights quant_quantize_row'd from random floats (with a few
 *   outliers), activations likewise;
 * - "bytes": random bytes for every quant field, scales replaced by random
 *   finite halves (Q8_0 weights then include −128, K-quant scales cover
 *   their whole 6- or 8-bit range);
 * - "exact": random quants with all scales 1 (and integer minimums), and
 *   activations of small integers, bounded so every partial sum of every
 *   summation order is an integer below 2^24: float arithmetic is then
 *   exact, so got must equal ref exactly. This checks that the integer
 *   sums are the reference's, element for element.
 * Tolerance for the first two, u = 2^-24 and M = Σ (|w_i| + 2|o_i|)·|x_i|
 * in double, where o_i is the element's offset or minimum (its value with
 * the quant bits zeroed: what SIMD kernels may add separately from the
 * quant products):
 * - integer kernels: atol = (2·nb + 16)·u·M, nb blocks per row. The
 *   reference rounds each block term at most 3 times and sums nb terms in
 *   order (<= (nb + 3)·u·M); a kernel that keeps lanes and FMAs per block
 *   and sums 8 lanes at the end is within (nb + 8)·u·M;
 * - float kernels: atol = (n/4 + 320)·u·M: the reference sums chunks of 32
 *   then n/32 chunk sums (<= (n/32 + 32)·u·M), a kernel with >= 8
 *   independent lanes or 256-column panels needs <= (n/8 + 288)·u·M;
 * plus rtol = 4u for the final rounding. A wrong index or scale moves the
 * result by a whole term, orders of magnitude past these bounds; the exact
 * inputs catch a single misplaced quant. */
#include "test_util.h"

#include "backend.h"
#include "cpu/cpu_ops.h" /* the kernel tables (kernels/cpu/) */
#include "quant.h"

#include <stdbool.h>
#include <stdint.h>

#define U24 (1.0 / 16777216.0)
#define N_ROWS 13 /* odd, not a multiple of the 8- or 16-row panels */
#define N_TOK 13  /* odd, not a multiple of the 4- or 6-token tiles */

static const uint32_t types[] = {ANC_DT_F32,  ANC_DT_F16,  ANC_DT_BF16, ANC_DT_Q4_0,
                                 ANC_DT_Q4_1, ANC_DT_Q5_0, ANC_DT_Q5_1, ANC_DT_Q8_0,
                                 ANC_DT_Q4_K, ANC_DT_Q5_K, ANC_DT_Q6_K};
static int64_t block_elems(uint32_t t) { return anc_dtype_get(t)->block_elems; }

static const int64_t sizes[] = {256, 2048, 5632, 800, 803, 576, 32, 64, 224};
/* 800 = 25 blocks of 32 (not whole groups of 8 blocks, not a multiple of
 * 256: legacy and float types only); 803: float types only (odd tail).
 * The decode kernels work in groups of 8 blocks, a last partial group of
 * whole pairs, and an odd last block: 576 = 18 blocks (two groups and a
 * pair; SmolLM2's width), 32 = one odd block, 64 = a partial group only,
 * 224 = 7 blocks (three pairs and an odd one). */
static bool size_applies(uint32_t t, int64_t n)
{
    return n % block_elems(t) == 0 && (n != 803 || block_elems(t) == 1);
}
enum mode { MODE_QUANT, MODE_BYTES, MODE_EXACT };
static const char *const mode_name[] = {"quant", "bytes", "exact"};

/* ---- seeded random numbers (splitmix64) ------------------------------- */
static uint64_t rng = 0x5eed5eed12345678ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }
static float rnd_unit(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0); }

/* Roughly normal, with an occasional outlier ×8 (real activations have some). */
static float rnd_value(void)
{
    float s = 0.0f;
    for (int i = 0; i < 4; i++) s += rnd_unit() - 0.5f;
    return rnd() % 64 == 0 ? 8.0f * s : s;
}

/* A random finite half scale, magnitude 2^-14 .. 2^-6, either sign. */
static uint16_t rnd_scale(void)
{
    float v = ldexpf(1.0f + rnd_unit(), rnd_int(-14, -7));
    return anc_f32_to_f16(rnd() & 1 ? -v : v);
}

static bool is_float_type(uint32_t t) { return t == ANC_DT_F32 || t == ANC_DT_F16 || t == ANC_DT_BF16; }


static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

static void put16(void *p, uint16_t v) { memcpy(p, &v, 2); }

/* ---- weights ------------------------------------------------------------ */

/* Largest |quant contribution| per element in "exact" mode (see the top). */
static double exact_wmax(uint32_t t)
{
    switch (t) {
    case ANC_DT_Q4_0: return 8;
    case ANC_DT_Q5_0: return 16;
    case ANC_DT_Q8_0: return 128;
    case ANC_DT_Q4_1: return 15 + 4;
    case ANC_DT_Q5_1: return 31 + 4;
    case ANC_DT_Q4_K: return 63 * 15 + 63;
    case ANC_DT_Q5_K: return 63 * 31 + 63;
    case ANC_DT_Q6_K: return 64 * 32;
    default: return 8; /* float types: integers in [-8, 8] */
    }
}

/* Range r of the activation quants in "exact" mode: Σ |w|·|x| < 2^24. */
static int exact_xrange(uint32_t t, int64_t n)
{
    double r = (16777215.0 / (exact_wmax(t) * (double)n));
    if (is_float_type(t)) r = r > 8 ? 8 : r;
    return r >= 127 ? 127 : (int)r;
}

/* Rewrite the scale fields of one block (random bytes elsewhere) for the
 * "bytes" and "exact" modes. */
static void fix_block(uint32_t t, uint8_t *blk, bool exact)
{
    const uint16_t one = 0x3c00; /* 1.0 in half precision */
    uint16_t d = exact ? one : rnd_scale();
    uint16_t m = exact ? anc_f32_to_f16((float)rnd_int(-4, 4)) : rnd_scale();
    switch (t) {
    case ANC_DT_Q4_0: put16(blk + offsetof(struct block_q4_0, d), d); break;
    case ANC_DT_Q5_0: put16(blk + offsetof(struct block_q5_0, d), d); break;
    case ANC_DT_Q8_0: put16(blk + offsetof(struct block_q8_0, d), d); break;
    case ANC_DT_Q4_1:
        put16(blk + offsetof(struct block_q4_1, d), d);
        put16(blk + offsetof(struct block_q4_1, m), m);
        break;
    case ANC_DT_Q5_1:
        put16(blk + offsetof(struct block_q5_1, d), d);
        put16(blk + offsetof(struct block_q5_1, m), m);
        break;
    case ANC_DT_Q4_K:
        put16(blk + offsetof(struct block_q4_k, d), d);
        put16(blk + offsetof(struct block_q4_k, dmin), exact ? one : rnd_scale());
        break;
    case ANC_DT_Q5_K:
        put16(blk + offsetof(struct block_q5_k, d), d);
        put16(blk + offsetof(struct block_q5_k, dmin), exact ? one : rnd_scale());
        break;
    case ANC_DT_Q6_K: {
        struct block_q6_k *b = (struct block_q6_k *)blk;
        if (exact) /* |sc| <= 64 keeps the sums below 2^24 (exact_wmax) */
            for (int j = 0; j < 16; j++) b->scales[j] = (int8_t)rnd_int(-64, 63);
        put16(blk + offsetof(struct block_q6_k, d), d);
        break;
    }
    default: break;
    }
}

/* rows × n weights of type t into w (rows·row_bytes bytes). */
static void make_weights(uint32_t t, enum mode md, int64_t rows, int64_t n, uint8_t *w)
{
    size_t rb = anc_dtype_row_bytes(t, (uint64_t)n);
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * rb;
        if (is_float_type(t)) {
            for (int64_t i = 0; i < n; i++)
                f[i] = md == MODE_EXACT ? (float)rnd_int(-8, 8) : rnd_value() * 0.05f;
            CHECK(quant_quantize_row(t, f, row, n));
        } else if (md == MODE_QUANT) {
            float scale = 0.01f + 0.1f * rnd_unit();
            for (int64_t i = 0; i < n; i++) f[i] = rnd_value() * scale;
            CHECK(quant_quantize_row(t, f, row, n));
        } else {
            rnd_bytes(row, rb);
            size_t bb = anc_dtype_get(t)->block_bytes;
            for (size_t k = 0; k < rb / bb; k++) fix_block(t, row + k * bb, md == MODE_EXACT);
        }
    }
    free(f);
}

/* The row with every quant bit zeroed: its values are the offsets/minimums. */
static void zero_quants(uint32_t t, uint8_t *row, int64_t n)
{
    size_t bb = anc_dtype_get(t)->block_bytes;
    for (int64_t k = 0; k < n / block_elems(t); k++) {
        uint8_t *b = row + (size_t)k * bb;
#define ZERO(S, F) memset(b + offsetof(struct S, F), 0, sizeof(((struct S *)0)->F))
        switch (t) {
        case ANC_DT_Q4_0: ZERO(block_q4_0, qs); break;
        case ANC_DT_Q4_1: ZERO(block_q4_1, qs); break;
        case ANC_DT_Q5_0: ZERO(block_q5_0, qs); ZERO(block_q5_0, qh); break;
        case ANC_DT_Q5_1: ZERO(block_q5_1, qs); ZERO(block_q5_1, qh); break;
        case ANC_DT_Q8_0: ZERO(block_q8_0, qs); break;
        case ANC_DT_Q4_K: ZERO(block_q4_k, qs); break;
        case ANC_DT_Q5_K: ZERO(block_q5_k, qs); ZERO(block_q5_k, qh); break;
        case ANC_DT_Q6_K: ZERO(block_q6_k, ql); ZERO(block_q6_k, qh); break;
        default: break;
        }
#undef ZERO
    }
}

/* ---- activations -------------------------------------------------------- */

/* Token t's activations: floats xf[n] and, for quantised weights, xq in
 * quant_vec_dot_type(t) (xq_bytes per token). */
static void make_acts(uint32_t t, enum mode md, int64_t n, float *xf, uint8_t *xq)
{
    uint32_t vt = quant_vec_dot_type(t);
    int r = exact_xrange(t, n);
    if (md == MODE_EXACT && !is_float_type(t)) {
        int64_t nb = n / QUANT_QK;
        for (int64_t k = 0; k < nb; k++) {
            int8_t q[QUANT_QK];
            int sum = 0;
            for (int i = 0; i < QUANT_QK; i++) sum += q[i] = (int8_t)rnd_int(-r, r);
            if (vt == ANC_DT_Q8_0) {
                struct block_q8_0 *b = (struct block_q8_0 *)xq + k;
                b->d = 0x3c00;
                memcpy(b->qs, q, sizeof q);
            } else if (vt == ANC_DT_Q8_1) {
                struct block_q8_1 *b = (struct block_q8_1 *)xq + k;
                b->d = 0x3c00;
                b->s = anc_f32_to_f16((float)sum);
                memcpy(b->qs, q, sizeof q);
            } else { /* Q8_K: 8 chunks of 32 per block */
                struct block_q8_k *b = (struct block_q8_k *)xq + k / 8;
                b->d = 1.0f;
                memcpy(b->qs + 32 * (k % 8), q, sizeof q);
                for (int g = 0; g < 2; g++) {
                    int s = 0;
                    for (int i = 0; i < 16; i++) s += q[16 * g + i];
                    b->bsums[2 * (k % 8) + g] = (int16_t)s;
                }
            }
        }
        quant_dequant_row(vt, xq, xf, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) xf[i] = md == MODE_EXACT ? (float)rnd_int(-r, r) : rnd_value();
    if (!is_float_type(t)) CHECK(quant_quantize_row(vt, xf, xq, n));
}

/* ---- comparison --------------------------------------------------------- */

struct cmp {
    const char *what;     /* "avx2 dot_q8" */
    int mismatches;       /* in this group */
    double worst;         /* largest |got - ref| */
    double worst_ratio;   /* largest |got - ref| / allowed */
    long n_pairs, n_exact;
};

static void cmp_begin(struct cmp *c, const char *what)
{
    memset(c, 0, sizeof *c);
    c->what = what;
}

/* One result; prints the first few mismatches of the group. */
static void cmp_one(struct cmp *c, const char *ctx, int64_t r, int32_t t, float got, float ref, double atol,
                    bool exact)
{
    double diff = fabs((double)got - (double)ref);
    double allowed = exact ? 0.0 : atol + 4.0 * U24 * fabs((double)ref);
    bool ok = exact ? got == ref : diff <= allowed; /* NaN fails both */
    c->n_pairs++;
    c->n_exact += got == ref;
    if (diff > c->worst || diff != diff) c->worst = diff;
    if (allowed > 0 && diff / allowed > c->worst_ratio) c->worst_ratio = diff / allowed;
    if (!ok) {
        if (c->mismatches < 5)
            fprintf(stderr, "  MISMATCH %s %s row %lld token %d: got %.9g ref %.9g |diff| %.3g allowed %.3g\n",
                    c->what, ctx, (long long)r, t, got, ref, diff, allowed);
        c->mismatches++;
    }
}

static int total_mismatches;

static void cmp_end(struct cmp *c, const char *ctx)
{
    if (!c->n_pairs) return;
    printf("%-14s %-22s %4ld pairs, %4ld bit-equal, max |diff| %-9.3g (%.2g of allowed)%s\n", c->what, ctx,
           c->n_pairs, c->n_exact, c->worst, c->worst_ratio, c->mismatches ? "  FAIL" : "");
    if (c->mismatches) {
        test_failures++;
        total_mismatches += c->mismatches;
    }
}

/* atol for one (row, token) pair (see the top of the file). */
static double tol_for(uint32_t type, const uint8_t *row, const float *xt, const uint8_t *xqt, int64_t n)
{
    bool fl = is_float_type(type);
    size_t rb = anc_dtype_row_bytes(type, (uint64_t)n);
    float *wv = malloc((size_t)n * sizeof(float)), *ov = calloc((size_t)n, sizeof(float));
    float *xv = malloc((size_t)n * sizeof(float));
    uint8_t *zrow = malloc(rb);
    quant_dequant_row(type, row, wv, n);
    if (!fl) {
        memcpy(zrow, row, rb);
        zero_quants(type, zrow, n);
        quant_dequant_row(type, zrow, ov, n);
        quant_dequant_row(quant_vec_dot_type(type), xqt, xv, n);
    } else {
        memcpy(xv, xt, (size_t)n * sizeof(float));
    }
    double mag = 0.0;
    for (int64_t i = 0; i < n; i++) mag += (fabs((double)wv[i]) + 2.0 * fabs((double)ov[i])) * fabs((double)xv[i]);
    int64_t nb = n / (block_elems(type) > 1 ? block_elems(type) : QUANT_QK);
    free(wv);
    free(ov);
    free(xv);
    free(zrow);
    return (fl ? (double)n / 4 + 320 : 2.0 * (double)nb + 16) * U24 * mag;
}

/* ---- one type, length and mode against one table ------------------------ */

struct case_data {
    uint32_t type, vt;
    enum mode md;
    int64_t n, nb;          /* elements and blocks per row */
    size_t rb, xb;          /* bytes per weight row, per activation row */
    uint8_t *w;             /* [N_ROWS] rows */
    float *xf;              /* [N_TOK][n] */
    uint8_t *xq;            /* [N_TOK] rows of vt */
    float *ref;             /* [N_TOK][N_ROWS] */
    double *atol;           /* [N_TOK][N_ROWS] */
};

static void case_make(struct case_data *cd, uint32_t type, enum mode md, int64_t n)
{
    memset(cd, 0, sizeof *cd);
    cd->type = type;
    cd->md = md;
    cd->n = n;
    cd->vt = quant_vec_dot_type(type);
    cd->nb = n / (block_elems(type) > 1 ? block_elems(type) : QUANT_QK);
    cd->rb = anc_dtype_row_bytes(type, (uint64_t)n);
    cd->xb = is_float_type(type) ? 0 : anc_dtype_row_bytes(cd->vt, (uint64_t)n);
    cd->w = malloc(cd->rb * N_ROWS);
    cd->xf = malloc((size_t)n * N_TOK * sizeof(float));
    cd->xq = calloc(N_TOK, cd->xb ? cd->xb : 1);
    cd->ref = malloc(sizeof(float) * N_ROWS * N_TOK);
    cd->atol = malloc(sizeof(double) * N_ROWS * N_TOK);
    make_weights(type, md, N_ROWS, n, cd->w);
    for (int t = 0; t < N_TOK; t++)
        make_acts(type, md, n, cd->xf + (size_t)t * n, cd->xq + (size_t)t * cd->xb);

    /* references and tolerances */
    for (int64_t r = 0; r < N_ROWS; r++) {
        const uint8_t *row = cd->w + (size_t)r * cd->rb;
        for (int t = 0; t < N_TOK; t++) {
            const float *xt = cd->xf + (size_t)t * n;
            const uint8_t *xqt = cd->xq + (size_t)t * cd->xb;
            size_t k = (size_t)t * N_ROWS + r;
            cd->ref[k] = is_float_type(type) ? quant_dot_row(type, row, xt, n) : quant_dot_q8(type, row, xqt, n);
            cd->atol[k] = tol_for(type, row, xt, xqt, n);
        }
    }
}

static void case_free(struct case_data *cd)
{
    free(cd->w);
    free(cd->xf);
    free(cd->xq);
    free(cd->ref);
    free(cd->atol);
}

static void *scratch_for(int64_t n, int32_t n_tok)
{
    void *p = NULL;
    size_t bytes = (cpu_mm_scratch_bytes(n, n_tok) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0xa5, bytes); /* not zero: kernels must not rely on a clean scratch */
    return p;
}

static void test_table(const struct cpu_kernels *k, const char *isa, const struct case_data *cd)
{
    char ctx[64], what[32];
    snprintf(ctx, sizeof ctx, "%s n=%lld %s", anc_dtype_get(cd->type)->name, (long long)cd->n, mode_name[cd->md]);
    bool exact = cd->md == MODE_EXACT;
    bool fl = is_float_type(cd->type);
    struct cmp c;

    /* row kernels */
    snprintf(what, sizeof what, "%s %s", isa, fl ? "dot_f" : "dot_q8");
    cmp_begin(&c, what);
    CHECK_MSG(fl ? k->dot_f[cd->type] != NULL : k->dot_q8[cd->type] != NULL, "%s has no %s for %s", isa,
              fl ? "dot_f" : "dot_q8", ctx);
    for (int t = 0; t < N_TOK; t++)
        for (int64_t r = 0; r < N_ROWS; r++) {
            const uint8_t *row = cd->w + (size_t)r * cd->rb;
            float got = fl ? k->dot_f[cd->type] ? k->dot_f[cd->type](row, cd->xf + (size_t)t * cd->n, cd->n) : NAN
                           : k->dot_q8[cd->type] ? k->dot_q8[cd->type](row, cd->xq + (size_t)t * cd->xb, cd->n) : NAN;
            size_t i = (size_t)t * N_ROWS + r;
            cmp_one(&c, ctx, r, t, got, cd->ref[i], cd->atol[i], exact);
        }
    cmp_end(&c, ctx);

    /* multi-token kernels, with token counts that hit every tile size */
    cpu_mm_q8_fn mmq = fl ? NULL : k->mm_q8[cd->type];
    cpu_mm_f_fn mmf = fl ? k->mm_f[cd->type] : NULL;
    if (!mmq && !mmf) return;
    snprintf(what, sizeof what, "%s %s", isa, fl ? "mm_f" : "mm_q8");
    cmp_begin(&c, what);
    static const int32_t ntoks[] = {1, 2, 3, 4, 5, 6, 7, N_TOK};
    static const int64_t nrows[] = {N_ROWS, 5};
    float *y = malloc(sizeof(float) * N_ROWS * N_TOK);
    void *scratch = scratch_for(cd->n, N_TOK);
    for (size_t a = 0; a < sizeof ntoks / sizeof *ntoks; a++)
        for (size_t b = 0; b < sizeof nrows / sizeof *nrows; b++) {
            int32_t nt = ntoks[a];
            int64_t nr = nrows[b], r_first = N_ROWS - nr; /* a tail of rows: not the start of w */
            for (size_t i = 0; i < (size_t)N_ROWS * N_TOK; i++) y[i] = -12345.0f;
            const uint8_t *w0 = cd->w + (size_t)r_first * cd->rb;
            if (mmq) mmq(y + r_first, N_ROWS, w0, cd->rb, nr, cd->xq, cd->xb, nt, cd->n, scratch);
            else mmf(y + r_first, N_ROWS, w0, cd->rb, nr, cd->xf, cd->n, nt, cd->n, scratch);
            for (int t = 0; t < N_TOK; t++)
                for (int64_t r = 0; r < N_ROWS; r++) {
                    size_t i = (size_t)t * N_ROWS + r;
                    bool inside = t < nt && r >= r_first;
                    if (inside) cmp_one(&c, ctx, r, t, y[i], cd->ref[i], cd->atol[i], exact);
                    else CHECK_MSG(y[i] == -12345.0f, "%s %s wrote outside its rows/tokens (r %lld t %d)",
                                   what, ctx, (long long)r, t);
                }
        }
    cmp_end(&c, ctx);
    free(scratch);
    free(y);
}

/* ---- the backend's matmul (threads, panels, quantisation, NaN rows) ----- */

static void test_backend(uint32_t type, int64_t n, int n_threads)
{
    enum { ROWS = 45, TOK = 33 }; /* 45: three 16-row panels minus 3; 33 > the session's batch */
    size_t rb = anc_dtype_row_bytes(type, (uint64_t)n);
    uint32_t vt = quant_vec_dot_type(type);
    bool fl = is_float_type(type);
    size_t xb = fl ? 0 : anc_dtype_row_bytes(vt, (uint64_t)n);
    uint8_t *w = malloc(rb * ROWS), *xq = calloc(TOK, xb ? xb : 1);
    float *x = malloc(sizeof(float) * (size_t)n * TOK), *y = malloc(sizeof(float) * ROWS * TOK);
    make_weights(type, MODE_QUANT, ROWS, n, w);
    for (int t = 0; t < TOK; t++) make_acts(type, MODE_QUANT, n, x + (size_t)t * n, xq + (size_t)t * xb);
    x[(size_t)5 * n + 7] = INFINITY; /* token 5 cannot be quantised: its outputs must be NaN */
    struct anc_backend *be = anc_backend_cpu_new(n_threads);
    CHECK(be != NULL);
    if (!be) return;
    struct anc_weight wt = {.data = w, .type = type, .rows = ROWS, .cols = n, .dev = NULL};
    char ctx[64];
    snprintf(ctx, sizeof ctx, "%s n=%lld t=%d", anc_dtype_get(type)->name, (long long)n, n_threads);
    struct cmp c;
    cmp_begin(&c, "backend matmul");
    static const int32_t ntoks[] = {1, 2, 7, TOK};
    for (size_t a = 0; a < sizeof ntoks / sizeof *ntoks; a++) {
        int32_t nt = ntoks[a];
        be->ops->matmul(be, y, &wt, x, nt);
        for (int t = 0; t < nt; t++)
            for (int64_t r = 0; r < ROWS; r++) {
                const uint8_t *row = w + (size_t)r * rb;
                float got = y[(size_t)t * ROWS + r];
                if (t == 5 && !fl) {
                    CHECK_MSG(isnan(got), "%s: output of an unquantisable token is %g, not NaN", ctx, got);
                    continue;
                }
                if (t == 5) continue; /* float weights: inf·w, whatever it gives */
                const float *xt = x + (size_t)t * n;
                const uint8_t *xqt = xq + (size_t)t * xb;
                float ref = fl ? quant_dot_row(type, row, xt, n) : quant_dot_q8(type, row, xqt, n);
                double atol = tol_for(type, row, xt, xqt, n);
                cmp_one(&c, ctx, r, t, got, ref, atol, false);
            }
    }
    cmp_end(&c, ctx);
    anc_backend_free(be);
    free(w);
    free(xq);
    free(x);
    free(y);
}

/* ---- activation quantisers: the reference's bytes ----------------------- */

static void test_quantisers(const struct cpu_kernels *k, const char *isa)
{
    static const uint32_t vts[] = {ANC_DT_Q8_0, ANC_DT_Q8_1, ANC_DT_Q8_K};
    static const int64_t ns[] = {256, 2048, 5632};
    int bad_rows = 0;
    long rows = 0;
    for (size_t v = 0; v < sizeof vts / sizeof *vts; v++)
        for (size_t si = 0; si < sizeof ns / sizeof *ns; si++)
            for (int kind = 0; kind < 6; kind++) {
                uint32_t vt = vts[v];
                int64_t n = ns[si];
                size_t rb = anc_dtype_row_bytes(vt, (uint64_t)n);
                float *x = malloc(sizeof(float) * (size_t)n);
                uint8_t *got = malloc(rb), *ref = malloc(rb);
                for (int64_t i = 0; i < n; i++) x[i] = rnd_value() * ldexpf(1.0f, rnd_int(-20, 10));
                if (kind == 1) /* ties: a block whose amax is 127 has d = 1, so k + 0.5 rounds away */
                    for (int64_t i = 0; i < n; i++)
                        x[i] = i % 32 == 0 ? 127.0f : (float)rnd_int(-126, 126) + (rnd() & 1 ? 0.5f : -0.5f);
                if (kind == 2) /* just below and above the ties */
                    for (int64_t i = 0; i < n; i++)
                        x[i] = i % 32 == 0 ? -127.0f : nextafterf((float)rnd_int(-126, 126) + 0.5f, rnd() & 1 ? 0.0f : 200.0f);
                if (kind == 3) memset(x, 0, sizeof(float) * (size_t)n); /* d = 0 */
                if (kind == 4) x[rnd_int(0, (int)n - 1)] = rnd() & 1 ? INFINITY : NAN;
                if (kind == 5) x[rnd_int(0, (int)n - 1)] = 3e9f; /* d past half precision (Q8_0/Q8_1) */
                memset(got, 0x5a, rb);
                memset(ref, 0xa5, rb);
                bool ok_ref = quant_quantize_row(vt, x, ref, n);
                bool ok_got = k->quant_x[vt](x, got, n);
                rows++;
                if (ok_ref != ok_got || memcmp(got, ref, rb) != 0) {
                    size_t first = 0;
                    while (first < rb && got[first] == ref[first]) first++;
                    if (bad_rows++ < 5)
                        fprintf(stderr, "  MISMATCH %s quant_x %s n=%lld case %d: ok %d vs %d, first differing byte %zu\n",
                                isa, anc_dtype_get(vt)->name, (long long)n, kind, ok_got, ok_ref, first);
                }
                free(x);
                free(got);
                free(ref);
            }
    printf("%-14s %-22s %4ld rows, %d differ from quant_quantize_row%s\n", isa, "quant_x q8_0/q8_1/q8_K", rows,
           bad_rows, bad_rows ? "  FAIL" : "");
    if (bad_rows) test_failures++;
}

/* Attention's inner loops against plain C: the half-to-float conversion
 * bit for bit over every pattern (NaN as NaN), y += a*x within one rounding
 * per element (FMA), lengths with and without a tail. */
static void test_attention_helpers(const struct cpu_kernels *k, const char *isa)
{
    int bad = 0;
    enum { N = 65536 };
    uint16_t *h = malloc(sizeof *h * N);
    float *got = malloc(sizeof *got * N);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    k->f16_to_f32(got, h, N - 3); /* a tail of 5 */
    for (int i = 0; i < N - 3; i++) {
        float want = anc_f16_to_f32(h[i]);
        if (!(got[i] == want || (got[i] != got[i] && want != want)) && bad++ < 3)
            fprintf(stderr, "  MISMATCH %s f16_to_f32 %04x: %g vs %g\n", isa, i, got[i], want);
    }
    static const int64_t lens[] = {1, 7, 8, 64, 67, 128};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        int64_t n = lens[li];
        float y[128], y0[128], x[128], a = rnd_value();
        for (int64_t i = 0; i < n; i++) y[i] = y0[i] = rnd_value(), x[i] = rnd_value();
        k->axpy(y, a, x, n);
        for (int64_t i = 0; i < n; i++) {
            double want = (double)y0[i] + (double)a * x[i];
            if (!(fabs(y[i] - want) <= 1e-6 * (fabs(want) + fabs((double)a * x[i]) + 1e-30)) && bad++ < 3)
                fprintf(stderr, "  MISMATCH %s axpy n=%lld [%lld]: %g vs %g\n", isa, (long long)n,
                        (long long)i, y[i], want);
        }
    }
    /* exp(a·x − b) over the range training attention uses, against libm in
       double: within 3e-7 relative (the polynomial's bound) plus what
       forming a·x − b in float costs (|arg|·2^-23), every lane */
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        int64_t n = lens[li];
        float x[128], x0[128], a = 0.35f, b = 1.5f;
        for (int64_t i = 0; i < n; i++) x[i] = x0[i] = (float)(i % 2 ? -200.0 : 30.0) * fabsf(rnd_value());
        x[0] = x0[0] = 0.0f;
        k->exp_affine(x, n, a, b);
        for (int64_t i = 0; i < n; i++) {
            double arg = (double)(a * x0[i]) - b;
            arg = arg < -87 ? -87 : arg > 88 ? 88 : arg; /* the clamps */
            double want = exp(arg);
            if (!(fabs(x[i] - want) <= (3e-7 + fabs(arg) * 0x1p-23) * want) && bad++ < 3)
                fprintf(stderr, "  MISMATCH %s exp_affine n=%lld [%lld] x=%g: %g vs %g\n", isa, (long long)n,
                        (long long)i, x0[i], x[i], want);
        }
    }
    /* a half-precision cache row against a group of query heads (strided
       rows), and a value row into the heads' outputs (zero weights skipped:
       an infinite value must not reach those heads); head sizes with and
       without a tail of 8, groups past the kernels' 4-head blocks, against
       float64 */
    static const int64_t hds[] = {8, 64, 67, 128};
    static const int32_t groups[] = {1, 3, 4, 6, 9};
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++) {
            int64_t hd = hds[hi], stride = hd + 5;
            int32_t grp = groups[gi];
            float q[9 * 133], o[9 * 133], o0[9 * 133], out[9], p[9];
            uint16_t kv[128];
            for (int64_t d = 0; d < hd; d++) kv[d] = anc_f32_to_f16(rnd_value());
            for (int64_t i = 0; i < grp * stride; i++) q[i] = rnd_value(), o[i] = o0[i] = rnd_value();
            for (int32_t g = 0; g < grp; g++) p[g] = g % 3 == 1 ? 0.0f : rnd_value();
            k->dot_f16_group(out, q, stride, grp, kv, hd);
            for (int32_t g = 0; g < grp; g++) {
                double want = 0, mag = 0;
                for (int64_t d = 0; d < hd; d++) {
                    double t = (double)q[g * stride + d] * anc_f16_to_f32(kv[d]);
                    want += t, mag += fabs(t);
                }
                if (!(fabs(out[g] - want) <= 1e-6 * mag + 1e-30) && bad++ < 3)
                    fprintf(stderr, "  MISMATCH %s dot_f16_group hd=%lld group=%d [%d]: %g vs %g\n", isa,
                            (long long)hd, grp, g, out[g], want);
            }
            kv[hd - 1] = 0x7c00; /* +inf: only heads with a zero weight stay finite */
            k->axpy_f16_group(o, stride, p, grp, kv, hd);
            for (int32_t g = 0; g < grp; g++)
                for (int64_t d = 0; d < stride; d++) {
                    size_t i = (size_t)g * stride + d;
                    double term = d < hd && p[g] != 0.0f ? (double)p[g] * anc_f16_to_f32(kv[d]) : 0.0;
                    double want = (double)o0[i] + term;
                    bool ok = d == hd - 1 && p[g] != 0.0f
                                  ? isinf(o[i])
                                  : fabs(o[i] - want) <= 1e-6 * (fabs((double)o0[i]) + fabs(term) + 1e-30);
                    if (!ok && bad++ < 3)
                        fprintf(stderr, "  MISMATCH %s axpy_f16_group hd=%lld group=%d [%d][%lld]: %g vs %g\n",
                                isa, (long long)hd, grp, g, (long long)d, o[i], want);
                }
        }
    printf("%-14s %-22s %d mismatches%s\n", isa, "attention helpers", bad, bad ? "  FAIL" : "");
    if (bad) test_failures++;
    free(h);
    free(got);
}

/* The checker itself must be able to fail: a result one integer unit off
 * an exact reference, and one a term off a random one, are mismatches. */
static void test_checker_fails(void)
{
    struct cmp c;
    cmp_begin(&c, "self-check");
    cmp_one(&c, "exact", 0, 0, 1001.0f, 1000.0f, 0.0, true);
    cmp_one(&c, "tolerance", 0, 1, 1.001f, 1.0f, 1e-4, false);
    cmp_one(&c, "nan", 0, 2, NAN, 1.0f, 1e-4, false);
    CHECK_INT_EQ(c.mismatches, 3);
}

static void run_cases(const struct cpu_kernels *k, const char *isa)
{
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
            for (int md = MODE_QUANT; md <= MODE_EXACT; md++) {
                uint32_t t = types[ti];
                if (md == MODE_BYTES && is_float_type(t)) continue; /* random bits: inf/NaN */
                if (!size_applies(t, sizes[si])) continue;
                struct case_data cd;
                case_make(&cd, t, (enum mode)md, sizes[si]);
                test_table(k, isa, &cd);
                case_free(&cd);
            }
}

int main(void)
{
    fprintf(stderr, "(checker self-test prints expected mismatches)\n");
    test_checker_fails();

    /* the portable table: the reference itself, reached through the table */
    struct cpu_kernels gen;
    cpu_kernels_generic(&gen);
    run_cases(&gen, "generic");
    test_quantisers(&gen, "generic");
    test_attention_helpers(&gen, "generic");

    /* the backend with whatever table this processor selects */
    printf("backend kernels: %s\n", anc_backend_cpu_isa());
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        /* more threads than this machine's cores (2 in CI) as well: the
         * pool's chunks must cover every row whoever takes them */
        test_backend(types[ti], 512, 1);
        test_backend(types[ti], 2048, 2);
        test_backend(types[ti], 256, 3);
        test_backend(types[ti], 256, 8);
    }

#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("f16c");
#else
    bool avx2 = false;
#endif
    if (!avx2) {
        if (test_failures) TEST_EXIT();
        TEST_SKIP("no AVX2/FMA/F16C: only the portable table was tested");
    }
    struct cpu_kernels simd;
    cpu_kernels_generic(&simd);
    cpu_kernels_add_avx2(&simd);
    run_cases(&simd, "avx2");
    test_quantisers(&simd, "avx2");
    test_attention_helpers(&simd, "avx2");

#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
        struct cpu_kernels vnni = simd;
        cpu_kernels_add_avx512vnni(&vnni);
        run_cases(&vnni, "avx2+vnni");
    } else {
        printf("no AVX512-VNNI/VL: the avx2+vnni kernels were not tested\n");
    }
#endif
    if (total_mismatches) fprintf(stderr, "%d mismatches in all\n", total_mismatches);
    TEST_EXIT();
}
