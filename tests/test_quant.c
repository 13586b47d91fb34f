/* test_quant.c — kernels/quant.h against the gguf package's NumPy
 * (de)quantisers (golden files in tests/golden/quant/, made by
 * tests/quant_ref.py) and against the error bounds the formats imply.
 * Uses quant.h, dtype.h and test_util.h only. */
#include "quant.h"
#include "test_rng.h"
#include "test_util.h"

#include <float.h>
#include <inttypes.h>
#include <stdint.h>

#define U24 (1.0 / 16777216.0) /* unit roundoff of float, 2^-24 */
#define MAX_REPORTS 10

/* ---- data ----------------------------------------------------------------- */


/* Activations: normal values, each block of 32 scaled by 2^k (k in −3..3),
 * and one block of zeros. */
static void make_activations(struct rng *r, float *x, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++) {
        float scale = ldexpf(1.0f, (int)(rng_next(r) % 7) - 3);
        for (int i = 0; i < 32; i++) x[32 * b + i] = b == 1 ? 0.0f : rng_gauss(r) * scale;
    }
}

static void *read_file(const char *name, const char *ext, size_t *size)
{
    const char *src = getenv("ANC_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/quant/%s%s", src && *src ? src : ".", name, ext);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open golden file %s (set ANC_SRCDIR to the source tree; "
                        "regenerate with tests/quant_ref.py)\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *size = (size_t)len;
    return buf;
}

static const char *tname(uint32_t type) { return anc_dtype_get(type)->name; }

static int64_t block_of(uint32_t type) { return anc_dtype_get(type)->block_elems; }

static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* ---- error bounds ----------------------------------------------------------- */

/* Largest |x̃ − x| the activation format vt allows for element i of x
 * (see test_activation_bounds for the derivation). */
static double act_err_bound(uint32_t vt, const float *x, int64_t i)
{
    if (vt == ANC_DT_F32) return 0.0;
    int64_t bs = block_of(vt), b0 = i / bs * bs;
    double amax = 0.0;
    for (int64_t k = b0; k < b0 + bs; k++) amax = fmax(amax, fabs(x[k]));
    double dd = amax / 127.0 * (1.0 + 2 * U24);
    if (vt == ANC_DT_Q8_K) /* f32 scale: rounding to q, then d·q rounded */
        return dd * 0.50002 + 2 * U24 * (fabs(x[i]) + dd);
    /* f16 scale: also |f16(d) − d| ≤ max(2^-11·d, 2^-25), times |q| ≤ 127 */
    return dd * 0.50002 + 127.0 * fmax(dd * 0x1.0p-11, 0x1.0p-25);
}

/* The weights' per-element offset (the value of q = 0) for the formats with
 * a minimum: a dot product sums scale·q and offset separately, so rounding
 * scales with |w| + 2|offset|, not |w|. Zero for the other formats. */
static void offset_row(uint32_t type, const void *row, int64_t n, float *off)
{
    size_t bytes = anc_dtype_row_bytes(type, (uint64_t)n);
    size_t bb = anc_dtype_get(type)->block_bytes;
    uint8_t *tmp = malloc(bytes);
    memcpy(tmp, row, bytes);
    for (size_t k = 0; k < bytes / bb; k++) {
        void *b = tmp + k * bb;
        switch (type) {
        case ANC_DT_Q4_1: memset(((struct block_q4_1 *)b)->qs, 0, 16); break;
        case ANC_DT_Q5_1:
            memset(((struct block_q5_1 *)b)->qs, 0, 16);
            memset(((struct block_q5_1 *)b)->qh, 0, 4);
            break;
        case ANC_DT_Q4_K: memset(((struct block_q4_k *)b)->qs, 0, 128); break;
        case ANC_DT_Q5_K:
            memset(((struct block_q5_k *)b)->qs, 0, 128);
            memset(((struct block_q5_k *)b)->qh, 0, 32);
            break;
        default: break;
        }
    }
    bool has_min = type == ANC_DT_Q4_1 || type == ANC_DT_Q5_1 || type == ANC_DT_Q4_K ||
                   type == ANC_DT_Q5_K;
    if (has_min) quant_dequant_row(type, tmp, off, n);
    else
        for (int64_t i = 0; i < n; i++) off[i] = 0.0f;
    free(tmp);
}

/* ---- (1) golden dequantisation, bit for bit ------------------------------- */

static void check_dequant_exact(uint32_t type, const void *bin, const float *want, int64_t n)
{
    float *got = malloc((size_t)n * sizeof *got);
    quant_dequant_row(type, bin, got, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (bits_of(got[i]) == bits_of(want[i])) continue;
        if (bad++ < MAX_REPORTS)
            fprintf(stderr, "  %s element %" PRId64 " (block %" PRId64 "): got %.9g (0x%08x), "
                    "gguf %.9g (0x%08x)\n", tname(type), i, i / block_of(type), got[i],
                    bits_of(got[i]), want[i], bits_of(want[i]));
    }
    CHECK_MSG(bad == 0, "%s: %d of %" PRId64 " dequantised values differ from the gguf package",
              tname(type), bad, n);
    free(got);
}

/* ---- (2) float dot product vs double ---------------------------------------- */

/* Nonzero elements of x: adding a zero term rounds nothing, so float
 * error bounds count terms only up to this. */
static int64_t count_nonzero(const float *x, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += x[i] != 0.0f;
    return k;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* |quant_dot_row − Σ w·x in double| ≤ (bs' + nb' + 2)·u·Σ|w·x|: bs' terms
 * summed per block, nb' block sums, one product rounding (the dequantised w
 * is exact); bs' = min(bs, nnz), nb' = min(nb, nnz) with nnz the nonzero
 * activations. bs = 32 for the float types. */
static void check_dot_row(uint32_t type, const void *row, const float *w, const float *x,
                          int64_t n)
{
    double ref = 0.0, mag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)w[i] * x[i];
        mag += fabs((double)w[i] * x[i]);
    }
    int64_t bs = block_of(type) > 1 ? block_of(type) : 32, nnz = count_nonzero(x, n);
    double tol = (double)(min64(bs, nnz) + min64(n / bs, nnz) + 2) * U24 * mag;
    float got = quant_dot_row(type, row, x, n);
    CHECK_MSG(fabs(got - ref) <= tol, "%s dot_row %.9g vs double %.9g (tol %.3g)", tname(type),
              got, ref, tol);
}

/* ---- (3) integer dot product ---------------------------------------------------- */

/* quant_dot_q8(w, Q(x)) against
 *  (a) Σ w·x̃ in double (x̃ = dequantised Q(x)): only float rounding, plus for
 *      Q8_1 the f16 rounding of s (|m|·|s − d·Σq| per block, from the data);
 *  (b) quant_dot_row(w, x): also the activation error, ≤ Σ|w_i|·e_i with e_i
 *      the bound of act_err_bound.
 * Rounding slack: (bs' + 2·nb' + 8)·u·Σ (|w| + 2|offset|)·(|x| + e), with
 * bs', nb' as for check_dot_row and 8 for the few roundings per block of the
 * integer path. */
static void check_dot_q8(uint32_t type, const void *row, const float *w, const float *x,
                         int64_t n)
{
    uint32_t vt = quant_vec_dot_type(type);
    void *xq = malloc(anc_dtype_row_bytes(vt, (uint64_t)n));
    float *xt = malloc((size_t)n * sizeof *xt), *off = malloc((size_t)n * sizeof *off);
    CHECK(quant_quantize_row(vt, x, xq, n));
    quant_dequant_row(vt, xq, xt, n);
    offset_row(type, row, n, off);

    double ref_q = 0.0, act = 0.0, mag = 0.0, s_err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = act_err_bound(vt, x, i);
        ref_q += (double)w[i] * xt[i];
        act += fabs(w[i]) * e;
        mag += (fabs(w[i]) + 2 * fabs(off[i])) * (fabs(x[i]) + e);
    }
    if (vt == ANC_DT_Q8_1) {
        const struct block_q8_1 *b = xq;
        for (int64_t k = 0; k < n / 32; k++) {
            double sum = 0.0;
            for (int i = 0; i < 32; i++) sum += b[k].qs[i];
            double exact_s = (double)anc_f16_to_f32(b[k].d) * sum;
            s_err += fabs(off[32 * k]) * fabs(anc_f16_to_f32(b[k].s) - exact_s);
        }
    }
    int64_t bs = block_of(type) > 1 ? block_of(type) : 32, nnz = count_nonzero(x, n);
    double slack = (double)(min64(bs, nnz) + 2 * min64(n / bs, nnz) + 8) * U24 * mag;

    float got = quant_dot_q8(type, row, xq, n);
    float fdot = quant_dot_row(type, row, x, n);
    if (vt == ANC_DT_F32) {
        CHECK_MSG(bits_of(got) == bits_of(fdot), "%s: dot_q8 %.9g != dot_row %.9g for float "
                  "weights", tname(type), got, fdot);
    } else {
        CHECK_MSG(fabs(got - ref_q) <= slack + s_err, "%s dot_q8 %.9g vs double dot with the "
                  "quantised activations %.9g (tol %.3g)", tname(type), got, ref_q,
                  slack + s_err);
        CHECK_MSG(fabs(got - fdot) <= act + slack + s_err, "%s dot_q8 %.9g vs dot_row %.9g "
                  "(activation bound %.3g + %.3g)", tname(type), got, fdot, act, slack + s_err);
    }
    free(xq);
    free(xt);
    free(off);
}

/* ---- golden cases ---------------------------------------------------------------- */

struct golden_case {
    uint32_t type;
    int64_t row;         /* row length in the golden file */
    bool from_input;     /* the package quantised input.f32 (else: random blocks) */
};

/* Float types hold the first 128 columns of each input row (file size). */
static const struct golden_case golden_cases[] = {
    {ANC_DT_F32, 128, true},  {ANC_DT_F16, 128, true},  {ANC_DT_BF16, 128, true},
    {ANC_DT_Q4_0, 512, true}, {ANC_DT_Q4_1, 512, true}, {ANC_DT_Q5_0, 512, true},
    {ANC_DT_Q5_1, 512, true}, {ANC_DT_Q8_0, 512, true}, {ANC_DT_Q4_K, 512, false},
    {ANC_DT_Q5_K, 512, false}, {ANC_DT_Q6_K, 512, false},
};
#define INPUT_COLS 512

/* (5) our quantiser's bytes against the package's, where both follow the
 * same rule: every type in the golden set that the package can quantise. */
static void check_quantise_bytes(uint32_t type, const float *input, int64_t input_rows,
                                 int64_t row, const uint8_t *want)
{
    size_t rb = anc_dtype_row_bytes(type, (uint64_t)row);
    uint8_t *got = malloc(rb);
    int bad = 0;
    for (int64_t r = 0; r < input_rows; r++) {
        CHECK(quant_quantize_row(type, input + r * INPUT_COLS, got, row));
        if (memcmp(got, want + r * rb, rb) == 0) continue;
        size_t bb = anc_dtype_get(type)->block_bytes;
        for (size_t k = 0; k < rb / bb; k++) {
            if (memcmp(got + k * bb, want + r * rb + k * bb, bb) == 0) continue;
            if (bad++ < MAX_REPORTS)
                fprintf(stderr, "  %s row %" PRId64 " block %zu: quantised bytes differ from "
                        "the gguf package\n", tname(type), r, k);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d blocks differ from the package's quantisation", tname(type),
              bad);
    free(got);
}

static void test_golden(const float *input, int64_t input_rows)
{
    struct rng r = {0x5eed0001u};
    for (size_t c = 0; c < sizeof golden_cases / sizeof golden_cases[0]; c++) {
        const struct golden_case *gc = &golden_cases[c];
        size_t bin_size, f32_size;
        uint8_t *bin = read_file(tname(gc->type), ".bin", &bin_size);
        float *want = read_file(tname(gc->type), ".f32", &f32_size);
        int64_t n = (int64_t)(f32_size / sizeof(float));
        CHECK_MSG(n % gc->row == 0 && bin_size == anc_dtype_row_bytes(gc->type, (uint64_t)n),
                  "%s golden files have inconsistent sizes (%zu, %zu bytes)", tname(gc->type),
                  bin_size, f32_size);
        if (n % gc->row != 0 || bin_size != anc_dtype_row_bytes(gc->type, (uint64_t)n)) continue;
        int fails_before = test_failures;

        check_dequant_exact(gc->type, bin, want, n);

        size_t rb = anc_dtype_row_bytes(gc->type, (uint64_t)gc->row);
        float *x = malloc((size_t)gc->row * sizeof *x);
        for (int64_t k = 0; k < n / gc->row; k++) {
            make_activations(&r, x, gc->row);
            check_dot_row(gc->type, bin + k * rb, want + k * gc->row, x, gc->row);
            check_dot_q8(gc->type, bin + k * rb, want + k * gc->row, x, gc->row);
        }
        if (gc->from_input) {
            CHECK_INT_EQ(n / gc->row, input_rows);
            check_quantise_bytes(gc->type, input, input_rows, gc->row, bin);
        }
        printf("%-5s golden: %" PRId64 " values bit-exact, dots within bounds%s: %s\n",
               tname(gc->type), n, gc->from_input ? ", quantiser bytes = package's" : "",
               test_failures == fails_before ? "ok" : "FAILED");
        free(x);
        free(bin);
        free(want);
    }
}

/* ---- (4) round trips of our own quantisers ------------------------------------- */

/* Relative RMS error bounds ‖x̃ − x‖/‖x‖ on N(0,1) rows. Theory: rounding
 * to a grid of step Δ leaves an error of RMS Δ/√12, with Δ = R/L for a block
 * range R split into L steps; so rel = √(E[R²]/12)/L, E[R²] over blocks of
 * normal values (computed by Monte Carlo):
 *   Q8_0/Q8_1  R = max|x| of 32,  L = 127  -> 0.00543   measured 0.00532
 *   Q8_K       R = max|x| of 256, L = 127  -> 0.00698   measured 0.00706
 *   Q4_0       R = max|x| of 32,  L = 8    -> 0.0863    measured 0.0858
 *   Q5_0       R = max|x| of 32,  L = 16   -> 0.0431    measured 0.0428
 *   Q4_1       R = max − min of 32, L = 15 -> 0.0808    measured 0.0791
 *   Q5_1       R = max − min of 32, L = 31 -> 0.0391    measured 0.0378
 *   Q4_K       R = max − min(0,min), L = 15-> 0.0809    measured 0.0776
 *   Q5_K       same, L = 31                -> 0.0391    measured 0.0377
 *   Q6_K       R = max|x| of 16,  L = 32   -> 0.0192    measured 0.0187
 *   F16/BF16   measured on 10^6 values     -> 0.00021 / 0.00166
 * The bounds are theory × 1.1 (the sample of 16 384 values estimates an RMS
 * to about 1 %), so a quantiser that rounds worse than nearest fails. */
struct rt_bound {
    uint32_t type;
    double rel_rms;
};

static const struct rt_bound rt_bounds[] = {
    {ANC_DT_F32, 0.0},      {ANC_DT_F16, 0.00024},  {ANC_DT_BF16, 0.00183},
    {ANC_DT_Q8_0, 0.0060},  {ANC_DT_Q8_1, 0.0060},  {ANC_DT_Q8_K, 0.0077},
    {ANC_DT_Q4_0, 0.095},   {ANC_DT_Q4_1, 0.089},   {ANC_DT_Q5_0, 0.0475},
    {ANC_DT_Q5_1, 0.043},   {ANC_DT_Q4_K, 0.089},   {ANC_DT_Q5_K, 0.043},
    {ANC_DT_Q6_K, 0.0212},
};

#define RT_N 1024
#define RT_ROWS 16

static void test_round_trip(void)
{
    struct rng r = {0x5eed0002u};
    float *x = malloc(RT_N * sizeof *x), *y = malloc(RT_N * sizeof *y);
    void *q = malloc(anc_dtype_row_bytes(ANC_DT_F32, RT_N));
    for (size_t t = 0; t < sizeof rt_bounds / sizeof rt_bounds[0]; t++) {
        uint32_t type = rt_bounds[t].type;
        int fails_before = test_failures;
        /* normal rows: the relative RMS bound */
        double err2 = 0.0, norm2 = 0.0;
        for (int row = 0; row < RT_ROWS; row++) {
            for (int i = 0; i < RT_N; i++) x[i] = rng_gauss(&r);
            CHECK(quant_quantize_row(type, x, q, RT_N));
            quant_dequant_row(type, q, y, RT_N);
            for (int i = 0; i < RT_N; i++) {
                err2 += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                norm2 += (double)x[i] * x[i];
            }
        }
        double rel = sqrt(err2 / norm2);
        CHECK_MSG(rel <= rt_bounds[t].rel_rms, "%s round trip: relative RMS error %.5f > %.5f",
                  tname(type), rel, rt_bounds[t].rel_rms);

        /* zeros stay zeros */
        memset(x, 0, RT_N * sizeof *x);
        CHECK(quant_quantize_row(type, x, q, RT_N));
        quant_dequant_row(type, q, y, RT_N);
        int nonzero = 0;
        for (int i = 0; i < RT_N; i++) nonzero += y[i] != 0.0f;
        CHECK_MSG(nonzero == 0, "%s: %d zeros come back non-zero", tname(type), nonzero);

        /* one huge outlier among small values is kept within 1 % (it sets
         * its block's scale, so only f16/6-bit scale rounding touches it) */
        for (int i = 0; i < RT_N; i++) x[i] = rng_gauss(&r) * 0.01f;
        x[333] = -900.5f;
        CHECK(quant_quantize_row(type, x, q, RT_N));
        quant_dequant_row(type, q, y, RT_N);
        CHECK_MSG(fabsf(y[333] - x[333]) <= 0.01f * 900.5f, "%s: outlier %.6g comes back as %.6g",
                  tname(type), x[333], y[333]);

        printf("%-5s round trip: relative RMS %.5f (bound %.5f), zeros exact, outlier %.6g -> "
               "%.6g: %s\n", tname(type), rel, rt_bounds[t].rel_rms, x[333], y[333],
               test_failures == fails_before ? "ok" : "FAILED");
    }
    free(x);
    free(y);
    free(q);
}

/* The activation formats: every element within act_err_bound. For Q8_0/Q8_1,
 * q = round(x·(1/d)) with d = max|x|/127 in float, so |d·q − x| ≤ d·0.50002
 * (the reciprocal and the product add a few ulps of 127); the stored f16 d
 * adds |f16(d) − d|·|q| ≤ 127·max(2⁻¹¹·d, 2⁻²⁵). Q8_K keeps d in f32. Data:
 * blocks scaled by 2^k for k in −30..10 (f16 subnormal scales included). */
static void test_activation_bounds(void)
{
    static const uint32_t types[] = {ANC_DT_Q8_0, ANC_DT_Q8_1, ANC_DT_Q8_K};
    struct rng r = {0x5eed0003u};
    float *x = malloc(RT_N * sizeof *x), *y = malloc(RT_N * sizeof *y);
    void *q = malloc(anc_dtype_row_bytes(ANC_DT_Q8_K, RT_N) + anc_dtype_row_bytes(ANC_DT_Q8_1, RT_N));
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int bad = 0;
        for (int row = 0; row < RT_ROWS; row++) {
            for (int b = 0; b < RT_N / 32; b++) {
                float scale = ldexpf(1.0f, (int)(rng_next(&r) % 41) - 30);
                for (int i = 0; i < 32; i++) x[32 * b + i] = rng_gauss(&r) * scale;
            }
            CHECK(quant_quantize_row(types[t], x, q, RT_N));
            quant_dequant_row(types[t], q, y, RT_N);
            for (int i = 0; i < RT_N; i++) {
                double e = act_err_bound(types[t], x, i);
                if (fabs((double)y[i] - x[i]) <= e) continue;
                if (bad++ < MAX_REPORTS)
                    fprintf(stderr, "  %s element %d: %.9g -> %.9g (bound %.3g)\n",
                            tname(types[t]), i, x[i], y[i], e);
            }
        }
        CHECK_MSG(bad == 0, "%s: %d elements outside the activation error bound",
                  tname(types[t]), bad);
    }
    /* Q8_1's s and Q8_K's bsums are what the dot products assume */
    for (int i = 0; i < RT_N; i++) x[i] = rng_gauss(&r);
    CHECK(quant_quantize_row(ANC_DT_Q8_1, x, q, RT_N));
    const struct block_q8_1 *b1 = q;
    for (int k = 0; k < RT_N / 32; k++) {
        int sum = 0;
        for (int i = 0; i < 32; i++) sum += b1[k].qs[i];
        CHECK_INT_EQ(b1[k].s, anc_f32_to_f16(anc_f16_to_f32(b1[k].d) * (float)sum));
    }
    CHECK(quant_quantize_row(ANC_DT_Q8_K, x, q, RT_N));
    const struct block_q8_k *bk = q;
    for (int k = 0; k < RT_N / 256; k++)
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += bk[k].qs[16 * g + i];
            CHECK_INT_EQ(bk[k].bsums[g], sum);
        }
    printf("q8_0/q8_1/q8_K activation error bounds hold element-wise: %s\n",
           test_failures ? "FAILED" : "ok");
    free(x);
    free(y);
    free(q);
}

/* (2)+(3) on rows our quantisers made from normal data (the golden K-quant
 * blocks are random bytes; these are realistic), with dense activations and
 * with one-hot ones. */
static void test_dots_on_own_rows(void)
{
    static const uint32_t types[] = {ANC_DT_F32, ANC_DT_F16,  ANC_DT_BF16, ANC_DT_Q4_0,
                                     ANC_DT_Q4_1, ANC_DT_Q5_0, ANC_DT_Q5_1, ANC_DT_Q8_0,
                                     ANC_DT_Q4_K, ANC_DT_Q5_K, ANC_DT_Q6_K};
    struct rng r = {0x5eed0004u};
    float *src = malloc(RT_N * sizeof *src), *w = malloc(RT_N * sizeof *w);
    float *x = malloc(RT_N * sizeof *x);
    void *q = malloc(anc_dtype_row_bytes(ANC_DT_F32, RT_N));
    int fails_before = test_failures;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int row = 0; row < 4; row++) {
            for (int i = 0; i < RT_N; i++) src[i] = rng_gauss(&r) * 0.02f + (row == 3 ? 0.01f : 0.0f);
            make_activations(&r, x, RT_N);
            CHECK(quant_quantize_row(types[t], src, q, RT_N));
            quant_dequant_row(types[t], q, w, RT_N);
            check_dot_row(types[t], q, w, x, RT_N);
            check_dot_q8(types[t], q, w, x, RT_N);
            /* one-hot activations isolate each weight's contribution, so
             * even an off-by-one in an integer sum exceeds the tolerance */
            for (int k = row; k < RT_N; k += 7) {
                memset(x, 0, RT_N * sizeof *x);
                x[k] = (k % 2 ? -1.0f : 1.0f) * (1.0f + (float)k / 1024.0f);
                check_dot_row(types[t], q, w, x, RT_N);
                check_dot_q8(types[t], q, w, x, RT_N);
            }
        }
    printf("dot_row and dot_q8 on quantised normal rows: %s\n",
           test_failures == fails_before ? "ok" : "FAILED");
    free(src);
    free(w);
    free(x);
    free(q);
}

/* ---- the table itself ------------------------------------------------------------ */

static void test_table(void)
{
    static const struct {
        uint32_t type;
        size_t size;
        int64_t elems;
        uint32_t vdt;
    } t[] = {
        {ANC_DT_Q4_0, sizeof(struct block_q4_0), QUANT_QK, ANC_DT_Q8_0},
        {ANC_DT_Q4_1, sizeof(struct block_q4_1), QUANT_QK, ANC_DT_Q8_1},
        {ANC_DT_Q5_0, sizeof(struct block_q5_0), QUANT_QK, ANC_DT_Q8_0},
        {ANC_DT_Q5_1, sizeof(struct block_q5_1), QUANT_QK, ANC_DT_Q8_1},
        {ANC_DT_Q8_0, sizeof(struct block_q8_0), QUANT_QK, ANC_DT_Q8_0},
        {ANC_DT_Q8_1, sizeof(struct block_q8_1), QUANT_QK, QUANT_NO_TYPE},
        {ANC_DT_Q4_K, sizeof(struct block_q4_k), QUANT_QK_K, ANC_DT_Q8_K},
        {ANC_DT_Q5_K, sizeof(struct block_q5_k), QUANT_QK_K, ANC_DT_Q8_K},
        {ANC_DT_Q6_K, sizeof(struct block_q6_k), QUANT_QK_K, ANC_DT_Q8_K},
        {ANC_DT_Q8_K, sizeof(struct block_q8_k), QUANT_QK_K, QUANT_NO_TYPE},
        {ANC_DT_F32, sizeof(float), 1, ANC_DT_F32},
        {ANC_DT_F16, sizeof(uint16_t), 1, ANC_DT_F32},
        {ANC_DT_BF16, sizeof(uint16_t), 1, ANC_DT_F32},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const struct anc_dtype_info *d = anc_dtype_get(t[i].type);
        CHECK_INT_EQ(d->block_bytes, t[i].size);
        CHECK_INT_EQ(d->block_elems, t[i].elems);
        CHECK_INT_EQ(quant_vec_dot_type(t[i].type), t[i].vdt);
        CHECK_INT_EQ(quant_supported(t[i].type), t[i].vdt != QUANT_NO_TYPE);
    }
    /* nothing else is supported */
    int n_supported = 0;
    for (uint32_t ty = 0; ty < ANC_DT_COUNT_ + 2; ty++) n_supported += quant_supported(ty);
    CHECK_INT_EQ(n_supported, 11);
    CHECK_INT_EQ(quant_vec_dot_type(ANC_DT_Q2_K), QUANT_NO_TYPE);

    /* refusals */
    float x[512] = {0}, y[64];
    uint8_t buf[2048];
    CHECK(!quant_quantize_row(ANC_DT_Q2_K, x, buf, 256));
    CHECK(!quant_quantize_row(ANC_DT_IQ4_NL, x, buf, 32));
    CHECK(!quant_quantize_row(ANC_DT_Q4_0, x, buf, 48));      /* not whole blocks */
    CHECK(!quant_quantize_row(ANC_DT_Q4_K, x, buf, 128));
    CHECK(!quant_quantize_row(12345, x, buf, 32));
    /* a row that cannot be quantised comes back as NaN, never as stale data */
    static const uint32_t blocky[] = {ANC_DT_Q4_0, ANC_DT_Q4_1, ANC_DT_Q5_0, ANC_DT_Q5_1,
                                      ANC_DT_Q8_0, ANC_DT_Q8_1, ANC_DT_Q4_K, ANC_DT_Q5_K,
                                      ANC_DT_Q6_K, ANC_DT_Q8_K};
    float back[512];
    for (size_t i = 0; i < sizeof blocky / sizeof blocky[0]; i++) {
        x[300] = INFINITY;
        memset(buf, 0, sizeof buf);
        CHECK(!quant_quantize_row(blocky[i], x, buf, 512)); /* non-finite */
        quant_dequant_row(blocky[i], buf, back, 512);
        int n_nan = 0;
        for (int k = 0; k < 512; k++) n_nan += isnan(back[k]);
        CHECK_MSG(n_nan == 512, "%s: failed quantisation leaves %d of 512 values non-NaN",
                  tname(blocky[i]), 512 - n_nan);
        x[300] = 0.0f;
    }
    struct block_q4_0 wq;
    x[3] = 0.5f;
    CHECK(quant_quantize_row(ANC_DT_Q4_0, x, &wq, 32));
    CHECK(quant_quantize_row(ANC_DT_Q8_0, x, buf, 32));
    CHECK(!isnan(quant_dot_q8(ANC_DT_Q4_0, &wq, buf, 32)));
    x[7] = NAN;
    CHECK(!quant_quantize_row(ANC_DT_Q8_0, x, buf, 32));      /* non-finite */
    CHECK(isnan(quant_dot_q8(ANC_DT_Q4_0, &wq, buf, 32)));    /* poisoned activations */
    CHECK(quant_quantize_row(ANC_DT_F16, x, buf, 32));        /* floats carry NaN */
    x[7] = 1e6f;
    CHECK(!quant_quantize_row(ANC_DT_Q4_0, x, buf, 32));      /* d = 125000: no f16 */
    CHECK(quant_quantize_row(ANC_DT_Q8_K, x, buf, 256));      /* f32 scale: fine */
    x[7] = 1e8f;
    CHECK(!quant_quantize_row(ANC_DT_Q4_K, x, buf, 256));     /* 1e8/15/63: no f16 */
    quant_dequant_row(ANC_DT_Q2_K, buf, y, 64);
    CHECK(isnan(y[0]) && isnan(y[63]));
    quant_dequant_row(ANC_DT_Q4_0, buf, y, 40);
    CHECK(isnan(y[0]));
    CHECK(isnan(quant_dot_row(ANC_DT_Q8_K, buf, x, 256)));    /* not a weight type */
    CHECK(isnan(quant_dot_row(ANC_DT_Q4_0, buf, x, 33)));
    CHECK(isnan(quant_dot_q8(ANC_DT_Q2_K, buf, buf, 256)));
    printf("block sizes, pairings and refusals: %s\n", test_failures ? "FAILED" : "ok");
}

int main(void)
{
    test_table();

    size_t in_size;
    float *input = read_file("input", ".f32", &in_size);
    int64_t input_rows = (int64_t)(in_size / sizeof(float)) / INPUT_COLS;
    CHECK_INT_EQ(in_size, (size_t)input_rows * INPUT_COLS * sizeof(float));
    test_golden(input, input_rows);
    free(input);

    test_activation_bounds();
    test_round_trip();
    test_dots_on_own_rows();
    TEST_EXIT();
}
