/* test_cuda.c — the CUDA backend against the CPU reference, on a GPU:
 *   - every operation of the backend table with seeded random inputs:
 *     matmul for every weight type (decode kernels and the cuBLAS path,
 *     odd row counts), rmsnorm, rope (both pairings), swiglu, add,
 *     embedding, cache rows (f32/f16, scattered), copies, argmax, the ops
 *     of other families (geglu, bias rows, scale, softcap), and attention
 *     (GQA ratios 1/4/8 and MQA, sinks with their own queries, per-query
 *     ranges, shuffled slot maps, caches long enough to split, soft-capped
 *     scores); on the mock, each new op's comparison is shown to catch a
 *     deliberately wrong kernel (ANCORA_MOCK_BUG);
 *   - end to end on stories260K.gguf: greedy tokens identical to the CPU
 *     backend (and to the golden file), with CUDA graphs on and off, under
 *     the sink policy past its window; perplexity within 0.1 %;
 *   - memory accounting: the backend's weight bytes equal the file's and its
 *     buffers equal the session's KV + scratch.
 * Skips (77) when the build has no CUDA backend or no GPU is present. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "backend.h"
#include "cpu_ops.h"
#include "cuda_kernels.h"
#include "dtype.h"
#include "quant.h"
#include "test_util.h"

#ifndef ANC_HAVE_CUDA
int main(void)
{
    (void)test_failures;
    TEST_SKIP("this build has no CUDA backend (configure found no nvcc)");
}
#else

#include <cuda_runtime.h> /* the real one, or tests/cuda_mock's (test_cuda_mock) */

static struct anc_backend *gpu, *cpu;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* A device buffer holding a copy of host data. */
static void *up(const void *host, size_t bytes)
{
    void *d = gpu->ops->alloc(gpu, bytes);
    if (!d) {
        fprintf(stderr, "GPU allocation of %zu bytes failed\n", bytes);
        exit(1);
    }
    if (cudaDeviceSynchronize() != cudaSuccess || /* the zero fill is done */
        cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        fprintf(stderr, "upload failed\n");
        exit(1);
    }
    return d;
}

static float *down(const void *d, size_t n_floats)
{
    float *h = malloc(n_floats * sizeof *h);
    gpu->ops->download(gpu, h, d, n_floats * sizeof *h);
    return h;
}

/* max |a - b| / (atol + rtol * |b|) (NaN counts as the worst: infinity);
 * *at: where. */
static double worst_err(const float *a, const float *b, size_t n, double atol, double rtol,
                        size_t *at)
{
    double worst = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double e = d == 0 ? 0 : d / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) worst = e == e ? e : INFINITY, *at = i;
    }
    return worst;
}

/* max |a - b| / (atol + rtol * |b|) <= 1, reported by name; returns the
 * worst ratio. */
static double compare(const char *what, const float *a, const float *b, size_t n, double atol,
                      double rtol)
{
    size_t at;
    double worst = worst_err(a, b, n, atol, rtol, &at);
    CHECK_MSG(worst <= 1.0, "%s: element %zu: gpu %.9g vs cpu %.9g", what, at, a[at], b[at]);
    return worst;
}

/* ---- matmul -------------------------------------------------------------- */

static void *make_weight(uint32_t type, int64_t rows, int64_t cols, float *dense)
{
    size_t rb = anc_dtype_row_bytes(type, (uint64_t)cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        float *f = dense + r * cols;
        fill(f, (size_t)cols, 1.0f);
        uint8_t *row = w + (size_t)r * rb;
        if (type == ANC_DT_F32)
            memcpy(row, f, (size_t)cols * sizeof(float));
        else if (type == ANC_DT_F16)
            for (int64_t c = 0; c < cols; c++) ((uint16_t *)row)[c] = anc_f32_to_f16(f[c]);
        else if (type == ANC_DT_BF16)
            for (int64_t c = 0; c < cols; c++) ((uint16_t *)row)[c] = anc_f32_to_bf16(f[c]);
        else
            CHECK(quant_quantize_row(type, f, row, cols));
        cpu_dequant_row(type, row, f, cols); /* the exact values the weight holds */
    }
    return w;
}

static void test_matmul(void)
{
    static const uint32_t types[] = {ANC_DT_F32, ANC_DT_F16, ANC_DT_BF16, ANC_DT_Q8_0,
                                     ANC_DT_Q4_0, ANC_DT_Q4_1, ANC_DT_Q5_0, ANC_DT_Q5_1,
                                     ANC_DT_Q4_K, ANC_DT_Q5_K, ANC_DT_Q6_K};
    static const int64_t shapes[][2] = {{67, 256}, {1001, 512}, {3, 1024}};
    static const int32_t toks[] = {1, 3, 8, 9, 37};
    /* the backend knows a weight by its host address for as long as it
       lives, so every weight keeps its own host memory until the end */
    void *keep[64];
    int n_keep = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            float *dense = malloc(sizeof(float) * (size_t)(rows * cols));
            void *wh = make_weight(type, rows, cols, dense);
            struct anc_weight w = {wh, type, rows, cols, NULL};
            char err[256];
            CHECK_MSG(gpu->ops->prepare(gpu, &w, err, sizeof err), "%s", err);
            for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
                int32_t n = toks[k];
                float *x = malloc(sizeof(float) * (size_t)(n * cols));
                fill(x, (size_t)(n * cols), 1.0f);
                float *xd = up(x, sizeof(float) * (size_t)(n * cols));
                float *yd = gpu->ops->alloc(gpu, sizeof(float) * (size_t)(n * rows));
                gpu->ops->matmul(gpu, yd, &w, xd, n);
                float *y = down(yd, (size_t)(n * rows));
                /* reference in double over the dequantised weights; the
                   bound scales with sum |w||x| (half-precision products on
                   the cuBLAS path, float sums on the decode path) */
                bool gemm = n > ANC_CU_MATVEC_MAX_TOK;
                double rel = gemm && type != ANC_DT_F32 && type != ANC_DT_BF16 ? 2e-3 : 2e-5;
                for (int32_t t = 0; t < n; t++)
                    for (int64_t r = 0; r < rows; r++) {
                        double s = 0, mag = 0;
                        for (int64_t c = 0; c < cols; c++) {
                            double p = (double)dense[r * cols + c] * x[t * cols + c];
                            s += p;
                            mag += fabs(p);
                        }
                        double e = fabs(y[t * rows + r] - s);
                        if (!(e <= rel * mag + 1e-6)) {
                            CHECK_MSG(false, "matmul %s %lldx%lld n_tok %d: y[%d][%lld] = %.7g, want %.7g",
                                      anc_dtype_get(type)->name, (long long)rows, (long long)cols,
                                      n, t, (long long)r, y[t * rows + r], s);
                            t = n;
                            break;
                        }
                    }
                free(y);
                free(x);
                gpu->ops->free(gpu, xd);
                gpu->ops->free(gpu, yd);
            }
            keep[n_keep++] = wh;
            free(dense);
        }
    }
    while (n_keep > 0) free(keep[--n_keep]);
}

/* ---- small ops against the CPU backend ------------------------------------------- */

static void test_small_ops(void)
{
    enum { N = 333, T = 5 };
    float x[N * T], g[N * T], u[N * T], w[N];
    fill(x, N * T, 3.0f);
    fill(g, N * T, 8.0f);
    fill(u, N * T, 1.0f);
    fill(w, N, 1.0f);
    char err[256];
    /* rmsnorm */
    struct anc_weight wt = {w, ANC_DT_F32, 1, N, NULL};
    CHECK(gpu->ops->prepare(gpu, &wt, err, sizeof err));
    float *xd = up(x, sizeof x), *yd = gpu->ops->alloc(gpu, sizeof x);
    float ref[N * T];
    gpu->ops->rmsnorm(gpu, yd, xd, &wt, N, T, 1e-5f);
    cpu->ops->rmsnorm(cpu, ref, x, &wt, N, T, 1e-5f);
    float *y = down(yd, N * T);
    compare("rmsnorm", y, ref, N * T, 1e-6, 1e-5);
    free(y);
    /* swiglu and add */
    float *gd = up(g, sizeof g), *ud = up(u, sizeof u);
    gpu->ops->swiglu(gpu, gd, gd, ud, N * T);
    memcpy(ref, g, sizeof g);
    cpu->ops->swiglu(cpu, ref, ref, u, N * T);
    y = down(gd, N * T);
    compare("swiglu", y, ref, N * T, 1e-6, 1e-5);
    free(y);
    gpu->ops->add(gpu, gd, ud, N * T);
    cpu->ops->add(cpu, ref, u, N * T);
    y = down(gd, N * T);
    compare("add", y, ref, N * T, 1e-6, 1e-5);
    free(y);
    /* copy, argmax */
    gpu->ops->copy(gpu, yd, xd, sizeof x);
    y = down(yd, N * T);
    CHECK(memcmp(y, x, sizeof x) == 0);
    free(y);
    x[N + 17] = 100.0f;
    x[N + 200] = 100.0f; /* tie: the smaller index wins */
    float *xd2 = up(x, sizeof x);
    CHECK_INT_EQ(gpu->ops->argmax(gpu, xd2 + N, N), 17);
    CHECK_INT_EQ(cpu->ops->argmax(cpu, x + N, N), 17);
    gpu->ops->free(gpu, xd2);
    /* rope, both pairings, positions from a table */
    for (int neox = 0; neox <= 1; neox++) {
        enum { H = 3, HD = 10, P = 4, NP = 9 };
        float q[T * H * HD], cs[NP * P], sn[NP * P], qref[T * H * HD];
        fill(q, T * H * HD, 2.0f);
        for (int i = 0; i < NP * P; i++) cs[i] = cosf(0.1f * i), sn[i] = sinf(0.1f * i);
        int32_t pos[T] = {3, 0, 8, 8, 1};
        struct anc_rope_table tab = {NP, P, neox != 0, cs, sn, 0};
        float *qd = up(q, sizeof q);
        memcpy(qref, q, sizeof q);
        gpu->ops->rope(gpu, qd, T, H, HD, &tab, pos);
        cpu->ops->rope(cpu, qref, T, H, HD, &tab, pos);
        y = down(qd, T * H * HD);
        compare(neox ? "rope neox" : "rope", y, qref, T * H * HD, 1e-6, 1e-5);
        free(y);
        gpu->ops->free(gpu, qd);
    }
    /* embedding (a quantised table) */
    {
        enum { V = 40, D = 64 };
        float dense[V * D];
        void *tab = make_weight(ANC_DT_Q8_0, V, D, dense);
        struct anc_weight e = {tab, ANC_DT_Q8_0, V, D, NULL};
        CHECK(gpu->ops->prepare(gpu, &e, err, sizeof err));
        int32_t ids[4] = {39, 0, 7, 7};
        float *od = gpu->ops->alloc(gpu, sizeof(float) * 4 * D), eref[4 * D];
        gpu->ops->embed(gpu, od, &e, ids, 4);
        cpu->ops->embed(cpu, eref, &e, ids, 4);
        y = down(od, 4 * D);
        compare("embedding", y, eref, 4 * D, 0, 0);
        free(y);
        gpu->ops->free(gpu, od);
        free(tab);
    }
    /* cache rows: scatter, gather, copy_rows, f32 and f16 */
    for (int f16 = 0; f16 <= 1; f16++) {
        enum { R = 9, L = 70, K = 4 };
        uint32_t type = f16 ? ANC_DT_F16 : ANC_DT_F32;
        size_t rb = anc_dtype_row_bytes(type, L);
        float src[K * L], back[K * L];
        fill(src, K * L, 4.0f);
        int32_t rows[K] = {8, 2, 5, 0};
        void *cache = gpu->ops->alloc(gpu, rb * R), *moved = gpu->ops->alloc(gpu, rb * K);
        uint8_t href[R * L * 4] = {0}, hmoved[K * L * 4];
        float *sd = up(src, sizeof src), *bd = gpu->ops->alloc(gpu, sizeof back);
        gpu->ops->store_rows(gpu, cache, type, sd, rows, K, L);
        cpu->ops->store_rows(cpu, href, type, src, rows, K, L);
        gpu->ops->load_rows(gpu, bd, cache, type, rows, K, L);
        cpu->ops->load_rows(cpu, back, href, type, rows, K, L);
        y = down(bd, K * L);
        compare(f16 ? "rows f16" : "rows f32", y, back, K * L, 0, 0);
        free(y);
        uint8_t *hc = malloc(rb * R);
        gpu->ops->download(gpu, hc, cache, rb * R);
        CHECK(memcmp(hc, href, rb * R) == 0); /* identical bytes, untouched rows zero */
        gpu->ops->copy_rows(gpu, moved, cache, rb, rows, K);
        cpu->ops->copy_rows(cpu, hmoved, href, rb, rows, K);
        gpu->ops->download(gpu, hc, moved, rb * K);
        CHECK(memcmp(hc, hmoved, rb * K) == 0);
        free(hc);
        gpu->ops->free(gpu, cache);
        gpu->ops->free(gpu, moved);
        gpu->ops->free(gpu, sd);
        gpu->ops->free(gpu, bd);
    }
    gpu->ops->free(gpu, xd);
    gpu->ops->free(gpu, yd);
    gpu->ops->free(gpu, gd);
    gpu->ops->free(gpu, ud);
}

/* ---- the ops of the other families: geglu, bias rows, scale, softcap ------------------------ */

enum { FOP_GEGLU, FOP_ADD_ROWS, FOP_SCALE, FOP_SOFTCAP, FOP_N };
static const char *const fop_names[FOP_N] = {"geglu", "add_rows", "scale", "softcap"};

/* Each op once on the GPU and the CPU backend from the same inputs;
 * worst[k]: op k's largest error as a fraction of its tolerance. Tensors of
 * T rows of an odd width (the bias broadcast over rows), values large
 * enough that tanh saturates and GELU's cubic term matters. */
static void family_ops(double worst[FOP_N])
{
    enum { N = 333, T = 5, NT = N * T };
    static float g[NT], u[NT], bias[N], ref[NT];
    fill(g, NT, 6.0f);
    fill(u, NT, 2.0f);
    fill(bias, N, 1.5f);
    char err[256];
    struct anc_weight bw = {bias, ANC_DT_F32, 1, N, NULL};
    CHECK_MSG(gpu->ops->prepare(gpu, &bw, err, sizeof err), "%s", err);
    float *gd = up(g, sizeof g), *ud = up(u, sizeof u), *y;
    size_t at;
    /* geglu (in place, as the engine calls it) */
    gpu->ops->geglu(gpu, gd, gd, ud, NT);
    memcpy(ref, g, sizeof g);
    cpu->ops->geglu(cpu, ref, ref, u, NT);
    y = down(gd, NT);
    worst[FOP_GEGLU] = worst_err(y, ref, NT, 1e-6, 1e-5, &at);
    free(y);
    /* bias over T rows */
    gpu->ops->add_rows(gpu, ud, &bw, N, T);
    memcpy(ref, u, sizeof u);
    cpu->ops->add_rows(cpu, ref, &bw, N, T);
    y = down(ud, NT);
    worst[FOP_ADD_ROWS] = worst_err(y, ref, NT, 1e-6, 1e-6, &at);
    free(y);
    /* scale, then soft-cap at 2 (values up to 6: well into tanh's bend) */
    gpu->ops->free(gpu, gd);
    gd = up(g, sizeof g);
    gpu->ops->scale(gpu, gd, 1.7f, NT);
    memcpy(ref, g, sizeof g);
    cpu->ops->scale(cpu, ref, 1.7f, NT);
    y = down(gd, NT);
    worst[FOP_SCALE] = worst_err(y, ref, NT, 1e-12, 1e-7, &at);
    free(y);
    gpu->ops->softcap(gpu, gd, 2.0f, NT);
    cpu->ops->softcap(cpu, ref, 2.0f, NT);
    y = down(gd, NT);
    worst[FOP_SOFTCAP] = worst_err(y, ref, NT, 1e-6, 1e-5, &at);
    free(y);
    gpu->ops->free(gpu, gd);
    gpu->ops->free(gpu, ud);
}

static void test_family_ops(void)
{
    double worst[FOP_N];
    family_ops(worst);
    for (int k = 0; k < FOP_N; k++)
        CHECK_MSG(worst[k] <= 1.0, "%s: GPU vs CPU error %.3g of the tolerance", fop_names[k],
                  worst[k]);
#ifdef ANC_CUDA_MOCK
    /* each comparison notices a wrong kernel (the mock's deliberate bugs) */
    for (int k = 0; k < FOP_N; k++) {
        double bad[FOP_N];
        setenv("ANCORA_MOCK_BUG", fop_names[k], 1);
        family_ops(bad);
        unsetenv("ANCORA_MOCK_BUG");
        CHECK_MSG(bad[k] > 1.0, "a wrong %s kernel went unnoticed (error %.3g of the tolerance)",
                  fop_names[k], bad[k]);
    }
    printf("geglu, add_rows, scale, softcap: wrong kernels are caught\n");
#endif
}

/* ---- attention ------------------------------------------------------------------------ */

struct attn_case {
    int32_t n_q, n_kv, n_head, n_kv_head, head_dim, n_sink;
    bool q_sink, f16;
    bool identity;   /* slot map NULL: entry j is row j */
    float softcap;   /* > 0: scores soft-capped (Gemma 2) */
};

/* Returns the worst error (outputs and sink shares) as a fraction of the
 * tolerance; `check`: report it as a failure when above 1. */
static double run_attn_case(const struct attn_case *c, bool check)
{
    int32_t qd = c->n_head * c->head_dim, kvd = c->n_kv_head * c->head_dim;
    int32_t phys = c->n_kv + 3; /* a few unused rows */
    uint32_t type = c->f16 ? ANC_DT_F16 : ANC_DT_F32;
    size_t rb = anc_dtype_row_bytes(type, (uint64_t)kvd);
    float *q = malloc(sizeof(float) * (size_t)c->n_q * qd), *qs = malloc(sizeof(float) * (size_t)c->n_q * qd);
    float *kf = malloc(sizeof(float) * (size_t)phys * kvd), *vf = malloc(sizeof(float) * (size_t)phys * kvd);
    fill(q, (size_t)c->n_q * qd, 1.0f);
    fill(qs, (size_t)c->n_q * qd, 1.0f);
    fill(kf, (size_t)phys * kvd, 1.0f);
    fill(vf, (size_t)phys * kvd, 1.0f);
    uint8_t *k = malloc(rb * phys), *v = malloc(rb * phys);
    int32_t *all = malloc(sizeof(int32_t) * phys);
    for (int32_t r = 0; r < phys; r++) all[r] = r;
    cpu->ops->store_rows(cpu, k, type, kf, all, phys, kvd);
    cpu->ops->store_rows(cpu, v, type, vf, all, phys, kvd);
    /* a shuffled slot map and per-query ranges, the last query seeing the most */
    int32_t *slot = malloc(sizeof(int32_t) * c->n_kv), *lo = malloc(sizeof(int32_t) * c->n_q),
            *hi = malloc(sizeof(int32_t) * c->n_q);
    for (int32_t j = 0; j < c->n_kv; j++) slot[j] = (int32_t)(((int64_t)j * 7 + 3) % phys);
    for (int32_t j = 0; j < c->n_kv; j++) /* make it a permutation of distinct rows */
        for (int32_t i = 0; i < j; i++)
            if (slot[i] == slot[j]) slot[j] = (slot[j] + 1) % phys, i = -1;
    for (int32_t i = 0; i < c->n_q; i++) {
        hi[i] = c->n_kv - (c->n_q - 1 - i);
        lo[i] = hi[i] - 1 - (int32_t)((i * 13) % (c->n_kv + 1));
        if (lo[i] < 0) lo[i] = 0;
    }
    if (c->n_q > 2) lo[1] = hi[1] = c->n_sink; /* sees only the sinks */
    size_t outn = (size_t)c->n_q * qd;
    float *out_c = malloc(sizeof(float) * outn), mass_c[64] = {0};
    struct anc_attn_args a = {
        .out = out_c, .q = q, .q_sink = c->q_sink ? qs : NULL, .k = k, .v = v, .kv_type = type,
        .slot = c->identity ? NULL : slot, .n_q = c->n_q, .n_kv = c->n_kv, .n_head = c->n_head, .n_kv_head = c->n_kv_head,
        .head_dim = c->head_dim, .n_sink = c->n_sink, .lo = lo, .hi = hi,
        .scale = 1.0f / sqrtf((float)c->head_dim), .softcap = c->softcap, .sink_mass = mass_c,
    };
    cpu->ops->attention(cpu, &a);
    float *dq = up(q, sizeof(float) * outn), *dqs = up(qs, sizeof(float) * outn);
    void *dk = up(k, rb * phys), *dv = up(v, rb * phys);
    float *dout = gpu->ops->alloc(gpu, sizeof(float) * outn), *dmass = gpu->ops->alloc(gpu, 64 * sizeof(float));
    struct anc_attn_args ag = a;
    ag.out = dout;
    ag.q = dq;
    ag.q_sink = c->q_sink ? dqs : NULL;
    ag.k = dk;
    ag.v = dv;
    ag.sink_mass = dmass;
    gpu->ops->attention(gpu, &ag);
    float *out_g = down(dout, outn), *mass_g = down(dmass, (size_t)c->n_head);
    char what[160];
    snprintf(what, sizeof what, "attention q%d kv%d heads %d/%d hd%d sinks %d%s%s%s softcap %g",
             c->n_q, c->n_kv, c->n_head, c->n_kv_head, c->head_dim, c->n_sink,
             c->q_sink ? " q_sink" : "", c->f16 ? " f16" : "", c->identity ? " no-slot-map" : "",
             (double)c->softcap);
    size_t at;
    double worst = worst_err(out_g, out_c, outn, 1e-5, 1e-4, &at);
    if (check) compare(what, out_g, out_c, outn, 1e-5, 1e-4);
    if (c->n_sink > 0) {
        double wm = worst_err(mass_g, mass_c, (size_t)c->n_head, 1e-6, 1e-4, &at);
        if (wm > worst || wm != wm) worst = wm;
        if (check) compare(what, mass_g, mass_c, (size_t)c->n_head, 1e-6, 1e-4);
    }
    free(out_g), free(mass_g), free(out_c), free(q), free(qs), free(kf), free(vf), free(k), free(v);
    free(all), free(slot), free(lo), free(hi);
    float *bufs[] = {dq, dqs, dout, dmass};
    for (int i = 0; i < 4; i++) gpu->ops->free(gpu, bufs[i]);
    gpu->ops->free(gpu, dk);
    gpu->ops->free(gpu, dv);
    return worst;
}

static void test_attention(void)
{
    static const struct attn_case cases[] = {
        {1, 1, 4, 4, 64, 0, false, false, false, 0},
        {1, 37, 8, 2, 64, 4, true, true, false, 0},
        {1, 4096, 32, 8, 128, 4, true, true, false, 0},   /* a long cache: split */
        {1, 3000, 32, 32, 80, 0, false, false, false, 0}, /* MHA, odd head size */
        {1, 1500, 16, 1, 64, 4, false, true, false, 0},   /* MQA */
        {7, 200, 12, 3, 64, 4, true, false, false, 0},
        {33, 513, 32, 4, 128, 2, true, true, false, 0},   /* a prompt batch */
        {128, 128, 8, 8, 96, 0, false, true, false, 0},
        {1, 300, 8, 2, 64, 4, true, false, true, 0}, /* no slot map */
        {5, 70, 4, 4, 32, 2, false, true, true, 0},
        /* soft-capped scores (Gemma 2); caps small enough that tanh bends */
        {1, 37, 8, 2, 64, 4, true, true, false, 0.3f},
        {1, 3000, 16, 8, 32, 4, true, false, false, 0.5f}, /* split */
        {40, 40, 8, 4, 32, 0, false, false, true, 0.25f},  /* a prompt batch, hd 32 */
        {7, 200, 12, 3, 64, 4, true, true, false, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_attn_case(&cases[i], true);
#ifdef ANC_CUDA_MOCK
    /* the soft-capped cases notice an attention that forgets the cap */
    setenv("ANCORA_MOCK_BUG", "attn_softcap", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].softcap > 0) {
            double w = run_attn_case(&cases[i], false);
            CHECK_MSG(w > 1.0, "attention case %zu: a forgotten soft-cap went unnoticed (%.3g)", i, w);
        }
    unsetenv("ANCORA_MOCK_BUG");
#endif
}

/* ---- end to end ----------------------------------------------------------------------- */

static struct anc_model *load(const char *path, enum anc_backend_kind kind)
{
    struct anc_model_params mp;
    anc_model_params_default(&mp);
    mp.backend = kind;
    mp.n_threads = 2;
    char err[ANC_ERR_LEN];
    struct anc_model *m = anc_model_load(path, &mp, err, sizeof err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) exit(1);
    return m;
}

/* Greedy tokens and the logits of every step (logits NULL: the logits
 * are never fetched, so the pick happens on the device). */
static void greedy(struct anc_model *m, int32_t window, int n, int32_t *toks, float *logits)
{
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    sp.sampling.temp = 0;
    sp.kv_type = ANC_DT_F32;
    if (window) sp.window = window;
    char err[ANC_ERR_LEN];
    struct anc_session *s = anc_session_new(m, &sp, err, sizeof err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s) return;
    int32_t tok = anc_token_bos(m), nv = anc_n_vocab(m);
    for (int i = 0; i < n; i++) {
        CHECK(anc_session_feed(s, &tok, 1, err, sizeof err) == 0);
        if (logits) memcpy(logits + (size_t)i * nv, anc_session_logits(s), sizeof(float) * (size_t)nv);
        tok = anc_session_sample(s);
        toks[i] = tok;
    }
    anc_session_free(s);
}

static void test_end_to_end(void)
{
    char path[1024];
    test_model_path(path, sizeof path, "stories260K.gguf");
    struct anc_model *mc = load(path, ANC_BACKEND_CPU), *mg = load(path, ANC_BACKEND_CUDA);
    struct anc_model_info ic, ig;
    anc_model_get_info(mc, &ic);
    anc_model_get_info(mg, &ig);
    CHECK(strcmp(ig.backend, "cuda") == 0 && strcmp(ic.backend, "cpu") == 0);
    int32_t nv = anc_n_vocab(mg);
    enum { N = 300 };
    int32_t tc[N], tg[N], tg2[N];
    float *lc = malloc(sizeof(float) * (size_t)N * nv), *lg = malloc(sizeof(float) * (size_t)N * nv);
    /* a 64-entry sink window: 300 tokens go well past it */
    for (int w = 0; w <= 64; w += 64) {
        greedy(mc, w, N, tc, lc);
        greedy(mg, w, N, tg, lg);
        int same = 0;
        while (same < N && tc[same] == tg[same]) same++;
        CHECK_MSG(same == N, "window %d: greedy tokens differ from the CPU at step %d", w, same);
        compare(w ? "logits (sink window 64)" : "logits", lg, lc, (size_t)N * nv, 2e-3, 1e-3);
#ifdef ANC_CUDA_MOCK
        struct mock_stats before, after;
        mock_get_stats(&before);
#endif
        greedy(mg, w, N, tg2, NULL); /* argmax on the device */
        CHECK_MSG(memcmp(tg, tg2, sizeof tg) == 0, "window %d: device argmax picks differ", w);
#ifdef ANC_CUDA_MOCK
        /* decoding went through graphs: captured once, updated while the
           cache grows, replayed as is once the sink window is full */
        mock_get_stats(&after);
        long graphs = after.graph_launches - before.graph_launches;
        long updates = after.graph_updates - before.graph_updates;
        printf("window %d: %ld of %d decode steps ran as a graph (%ld updates, %ld instantiations)\n",
               w, graphs, N, updates, after.graph_instantiates - before.graph_instantiates);
        CHECK(graphs >= N - 4);
        if (w) CHECK(updates < 80); /* full window: replays, not updates */
#endif
    }
    /* the same with CUDA graphs off: identical tokens */
    setenv("ANCORA_CUDA_GRAPHS", "0", 1);
    struct anc_model *mg2 = load(path, ANC_BACKEND_CUDA);
    unsetenv("ANCORA_CUDA_GRAPHS");
#ifdef ANC_CUDA_MOCK
    struct mock_stats s0, s1;
    mock_get_stats(&s0);
#endif
    enum { N_OFF = 120 }; /* past the 64-entry window; direct launches are slow on the mock */
    greedy(mg2, 64, N_OFF, tg2, lc);
    CHECK(memcmp(tg, tg2, N_OFF * sizeof tg[0]) == 0);
#ifdef ANC_CUDA_MOCK
    mock_get_stats(&s1);
    CHECK_INT_EQ(s1.graph_launches - s0.graph_launches, 0);
#endif
    compare("graphs off vs on", lc, lg, (size_t)N_OFF * nv, 1e-5, 1e-5);
    anc_model_free(mg2);
    /* the golden tokens of tests/golden (the independent NumPy run) */
    char gpath[1024];
    const char *src = getenv("ANC_SRCDIR");
    snprintf(gpath, sizeof gpath, "%s/tests/golden/stories260K_greedy_bos.tokens", src ? src : ".");
    FILE *fp = fopen(gpath, "r");
    CHECK_MSG(fp != NULL, "cannot open %s", gpath);
    if (fp) {
        greedy(mg, 0, 256, tg, lg);
        long v;
        int i = 0, bad = -1;
        while (i < 256 && fscanf(fp, "%ld", &v) == 1) {
            if (bad < 0 && tg[i] != v) bad = i;
            i++;
        }
        fclose(fp);
        CHECK_MSG(bad < 0, "golden tokens differ at %d", bad);
    }
    /* perplexity, both conventions, within 0.1 % */
    char dpath[1024];
    snprintf(dpath, sizeof dpath, "%s/tests/data/stories.txt", src ? src : ".");
    size_t len = 0;
    char err[ANC_ERR_LEN];
    char *text = anc_read_file(dpath, &len, err, sizeof err);
    CHECK_MSG(text != NULL, "%s", err);
    if (text) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        CHECK(anc_tokenize(mc, text, len, true, &ids, &n_ids) == 0);
        if (n_ids > 2048) n_ids = 2048;
        struct anc_session_params sp;
        anc_session_params_default(&sp);
        struct anc_ppl_result rc, rg;
        CHECK(anc_perplexity_chunked(mc, &sp, ids, n_ids, 256, &rc, NULL, NULL, err, sizeof err) == 0);
        CHECK(anc_perplexity_chunked(mg, &sp, ids, n_ids, 256, &rg, NULL, NULL, err, sizeof err) == 0);
        CHECK_CLOSE(rg.ppl, rc.ppl, 0, 1e-3);
        sp.window = 128;
        CHECK(anc_perplexity_stream(mc, &sp, ids, 600, NULL, &rc, NULL, NULL, err, sizeof err) == 0);
        CHECK(anc_perplexity_stream(mg, &sp, ids, 600, NULL, &rg, NULL, NULL, err, sizeof err) == 0);
        CHECK_CLOSE(rg.ppl, rc.ppl, 0, 1e-3);
        printf("perplexity cpu %.6f gpu %.6f\n", rc.ppl, rg.ppl);
        free(ids);
        free(text);
    }
    /* memory: weights as in the file; buffers = KV + scratch of the session */
    struct anc_session_params sp;
    anc_session_params_default(&sp);
    struct anc_session *s = anc_session_new(mg, &sp, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        struct anc_stats st;
        anc_session_stats(s, &st, NULL, 0);
        CHECK(strcmp(st.backend, "cuda") == 0);
        CHECK_INT_EQ(st.bytes_weights, ig.weight_bytes);
        CHECK(st.bytes_device_total > 0 && st.bytes_device_free <= st.bytes_device_total);
        CHECK(st.bytes_device_used_by_us >= st.bytes_weights + st.bytes_kv + st.bytes_scratch);
#ifdef ANC_CUDA_MOCK
        /* every byte the mock device holds is accounted for */
        struct mock_stats ms;
        mock_get_stats(&ms);
        CHECK_INT_EQ(ms.device_bytes, st.bytes_device_used_by_us);
#endif
        printf("GPU memory: weights %llu, kv %llu, scratch %llu, all of ours %llu, device %s\n",
               (unsigned long long)st.bytes_weights, (unsigned long long)st.bytes_kv,
               (unsigned long long)st.bytes_scratch, (unsigned long long)st.bytes_device_used_by_us,
               st.device);
        anc_session_free(s);
    }
    free(lc);
    free(lg);
    anc_model_free(mc);
    anc_model_free(mg);
}

int main(void)
{
#ifdef ANC_TEST_CUDA_MODULE
    /* the module of this build tree (the loader looks next to the program,
       and this one runs from tests/) */
    setenv("ANCORA_CUDA_MODULE", ANC_TEST_CUDA_MODULE, 0);
#endif
    char why[ANC_ERR_LEN];
    if (anc_backend_cuda_devices(false, why, sizeof why) < 1) {
        if (!anc_cuda_driver_present()) TEST_SKIP("%s", why);
        fprintf(stderr, "FAIL: an NVIDIA driver is present, but: %s\n", why);
        return 1;
    }
    char err[ANC_ERR_LEN];
    gpu = anc_backend_cuda_new(err, sizeof err);
    if (!gpu) {
        fprintf(stderr, "the CUDA backend did not start: %s\n", err);
        return 1;
    }
    cpu = anc_backend_cpu_new(2);
    test_matmul();
    test_small_ops();
    test_family_ops();
    test_attention();
    anc_backend_free(gpu);
    anc_backend_free(cpu);
    test_end_to_end();
    TEST_EXIT();
}
#endif
