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
 *     buffers equal the session's KV + scratch;
 *   - the training ops (backend.h "Training"), each against the CPU's on
 *     random inputs: upload/zero, matmul_bwd_x for f32, f16, bf16 and
 *     quantised weights (overwriting and accumulating), matmul_bwd_w
 *     (full and LoRA shapes), rmsnorm_bwd, rope_bwd, training attention
 *     forward and backward (causal, S²-Attn groups, GQA/MQA, head sizes
 *     16..512), swiglu_bwd, embed_bwd with repeated tokens (the same
 *     bits), cross-entropy with unscored rows, sum_sq (the same bits
 *     twice), AdamW; on the mock, deliberately wrong rmsnorm_bwd, S²
 *     groups, embed_bwd and cross-entropy kernels are caught;
 *   - training end to end on stories260K: one window's loss and every
 *     gradient (LoRA+ on all projections with S²-Attn; full fine-tuning
 *     with layer checkpointing) and four optimiser steps' losses and
 *     gradient norms match the CPU backend's.
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
#include "gguf.h"
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

/* ---- training ops (backend.h "Training") against the CPU backend ----------------------- */

static float *dalloc(size_t n_floats)
{
    float *d = gpu->ops->alloc(gpu, n_floats * sizeof(float));
    if (!d) {
        fprintf(stderr, "GPU allocation of %zu floats failed\n", n_floats);
        exit(1);
    }
    return d;
}

/* A device copy of host floats, through the training op upload. */
static float *dup_f(const float *h, size_t n)
{
    float *d = dalloc(n);
    gpu->ops->upload(gpu, d, h, n * sizeof(float));
    return d;
}

/* max |a - b| / (rel * mag + atol), per element (mag: the sum of the
 * magnitudes of what was added up); *at: where. */
static double worst_mag(const float *a, const float *b, const double *mag, size_t n, double rel,
                        double atol, size_t *at)
{
    double worst = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double e = d == 0 ? 0 : d / (rel * mag[i] + atol);
        if (!(e <= worst)) worst = e == e ? e : INFINITY, *at = i;
    }
    return worst;
}

static double maxabs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* upload, zero: bytes in, a range cleared, the rest untouched */
static void test_upload_zero(void)
{
    enum { N = 1000 };
    float x[N];
    fill(x, N, 5.0f);
    float *d = dup_f(x, N);
    gpu->ops->zero(gpu, d + 100, 200 * sizeof(float));
    float *y = down(d, N);
    bool ok = memcmp(y, x, 100 * sizeof(float)) == 0 && memcmp(y + 300, x + 300, (N - 300) * sizeof(float)) == 0;
    for (int i = 100; i < 300; i++) ok = ok && y[i] == 0.0f;
    CHECK_MSG(ok, "upload/zero: wrong bytes");
    free(y);
    gpu->ops->free(gpu, d);
}

/* matmul_bwd_x for each weight type (f32 through cuBLAS directly, the
 * others dequantised in row chunks), overwriting and accumulating; and
 * matmul_bwd_w, as the LoRA and full fine-tuning shapes use it. Bound:
 * 2e-5 of the sum of the magnitudes of the products (float sums). */
static void test_matmul_bwd(void)
{
    static const uint32_t types[] = {ANC_DT_F32, ANC_DT_F16, ANC_DT_BF16, ANC_DT_Q8_0, ANC_DT_Q4_0,
                                     ANC_DT_Q4_K, ANC_DT_Q5_K, ANC_DT_Q6_K};
    static const int64_t shapes[][2] = {{67, 256}, {1001, 512}};
    static const int32_t toks[] = {1, 9, 37};
    void *keep[32];
    int n_keep = 0;
    char err[256], what[160];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            uint32_t type = types[ti];
            int64_t rows = shapes[si][0], cols = shapes[si][1];
            float *dense = malloc(sizeof(float) * (size_t)(rows * cols));
            void *wh = make_weight(type, rows, cols, dense);
            struct anc_weight w = {wh, type, rows, cols, NULL};
            CHECK_MSG(gpu->ops->prepare(gpu, &w, err, sizeof err), "%s", err);
            for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++)
                for (int acc = 0; acc <= 1; acc++) {
                    int32_t n = toks[k];
                    size_t ny = (size_t)n * rows, nx = (size_t)n * cols;
                    float *dy = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
                    double *mag = calloc(nx, sizeof(double));
                    fill(dy, ny, 1.0f);
                    fill(dx, nx, 1.0f);
                    float *dyd = dup_f(dy, ny), *dxd = dup_f(dx, nx);
                    for (int32_t t = 0; t < n; t++)
                        for (int64_t r = 0; r < rows; r++)
                            for (int64_t c = 0; c < cols; c++)
                                mag[t * cols + c] += fabs((double)dense[r * cols + c] * dy[t * rows + r]);
                    for (size_t i = 0; i < nx; i++) mag[i] += acc ? fabs(dx[i]) : 0;
                    gpu->ops->matmul_bwd_x(gpu, dxd, &w, dyd, n, acc != 0);
                    cpu->ops->matmul_bwd_x(cpu, dx, &w, dy, n, acc != 0);
                    float *g = down(dxd, nx);
                    size_t at;
                    double e = worst_mag(g, dx, mag, nx, 2e-5, 1e-6, &at);
                    snprintf(what, sizeof what, "matmul_bwd_x %s %lldx%lld n_tok %d%s", anc_dtype_get(type)->name,
                             (long long)rows, (long long)cols, n, acc ? " accumulate" : "");
                    CHECK_MSG(e <= 1.0, "%s: element %zu: gpu %.9g vs cpu %.9g", what, at, g[at], dx[at]);
                    free(g), free(dy), free(dx), free(mag);
                    gpu->ops->free(gpu, dyd);
                    gpu->ops->free(gpu, dxd);
                }
            keep[n_keep++] = wh;
            free(dense);
        }
    /* dW += dy^T x: a full weight, a LoRA B [rows][r] and A [r][cols] */
    static const int64_t wshapes[][3] = {{67, 256, 37}, {1001, 8, 45}, {8, 512, 45}, {300, 300, 1}};
    for (size_t si = 0; si < sizeof wshapes / sizeof wshapes[0]; si++) {
        int64_t rows = wshapes[si][0], cols = wshapes[si][1];
        int32_t n = (int32_t)wshapes[si][2];
        size_t nw = (size_t)(rows * cols), ny = (size_t)n * rows, nx = (size_t)n * cols;
        float *dw = malloc(sizeof(float) * nw), *dy = malloc(sizeof(float) * ny), *x = malloc(sizeof(float) * nx);
        double *mag = calloc(nw, sizeof(double));
        fill(dw, nw, 1.0f);
        fill(dy, ny, 1.0f);
        fill(x, nx, 2.0f);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                double m = fabs(dw[r * cols + c]);
                for (int32_t t = 0; t < n; t++) m += fabs((double)dy[t * rows + r] * x[t * cols + c]);
                mag[r * cols + c] = m;
            }
        float *dwd = dup_f(dw, nw), *dyd = dup_f(dy, ny), *xd = dup_f(x, nx);
        gpu->ops->matmul_bwd_w(gpu, dwd, dyd, xd, rows, cols, n);
        cpu->ops->matmul_bwd_w(cpu, dw, dy, x, rows, cols, n);
        float *g = down(dwd, nw);
        size_t at;
        double e = worst_mag(g, dw, mag, nw, 2e-5, 1e-6, &at);
        CHECK_MSG(e <= 1.0, "matmul_bwd_w %lldx%lld n_tok %d: element %zu: gpu %.9g vs cpu %.9g",
                  (long long)rows, (long long)cols, n, at, g[at], dw[at]);
        free(g), free(dw), free(dy), free(x), free(mag);
        gpu->ops->free(gpu, dwd);
        gpu->ops->free(gpu, dyd);
        gpu->ops->free(gpu, xd);
    }
    while (n_keep > 0) free(keep[--n_keep]);
}

/* rope_bwd (both pairings) against the CPU, and as rope's inverse;
 * swiglu_bwd; sum_sq (one part and many, the same bits twice); AdamW. */
static void test_train_elementwise(void)
{
    enum { T = 5, H = 3, HD = 10, P = 4, NP = 9 };
    for (int neox = 0; neox <= 1; neox++) {
        float q[T * H * HD], ref[T * H * HD], cs[NP * P], sn[NP * P];
        fill(q, T * H * HD, 2.0f);
        for (int i = 0; i < NP * P; i++) cs[i] = cosf(0.1f * i + 0.3f), sn[i] = sinf(0.1f * i + 0.3f);
        int32_t pos[T] = {3, 0, 8, 8, 1};
        struct anc_rope_table tab = {NP, P, neox != 0, cs, sn, 0};
        float *qd = dup_f(q, T * H * HD);
        memcpy(ref, q, sizeof q);
        gpu->ops->rope_bwd(gpu, qd, T, H, HD, &tab, pos);
        cpu->ops->rope_bwd(cpu, ref, T, H, HD, &tab, pos);
        float *y = down(qd, T * H * HD);
        compare(neox ? "rope_bwd neox" : "rope_bwd", y, ref, T * H * HD, 1e-6, 1e-5);
        free(y);
        gpu->ops->rope(gpu, qd, T, H, HD, &tab, pos); /* back to q */
        y = down(qd, T * H * HD);
        compare(neox ? "rope(rope_bwd(q)) neox" : "rope(rope_bwd(q))", y, q, T * H * HD, 1e-5, 1e-5);
        free(y);
        gpu->ops->free(gpu, qd);
    }
    {
        enum { N = 333 * 5 };
        float g[N], u[N], dy[N], dg[N], du[N];
        fill(g, N, 8.0f);
        fill(u, N, 2.0f);
        fill(dy, N, 1.0f);
        float *gd = dup_f(g, N), *ud = dup_f(u, N), *dyd = dup_f(dy, N), *dgd = dalloc(N), *dud = dalloc(N);
        gpu->ops->swiglu_bwd(gpu, dgd, dud, dyd, gd, ud, N);
        cpu->ops->swiglu_bwd(cpu, dg, du, dy, g, u, N);
        float *y = down(dgd, N);
        compare("swiglu_bwd dgate", y, dg, N, 1e-6, 1e-5);
        free(y);
        y = down(dud, N);
        compare("swiglu_bwd dup", y, du, N, 1e-6, 1e-5);
        free(y);
        float *bufs[] = {gd, ud, dyd, dgd, dud};
        for (int i = 0; i < 5; i++) gpu->ops->free(gpu, bufs[i]);
    }
    static const int64_t sizes[] = {17, 4096, 1000003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = (size_t)sizes[k];
        float *x = malloc(n * sizeof(float));
        fill(x, n, 2.0f);
        float *xd = dup_f(x, n);
        double sg = gpu->ops->sum_sq(gpu, xd, (int64_t)n), sc = cpu->ops->sum_sq(cpu, x, (int64_t)n);
        CHECK_CLOSE(sg, sc, 0, 1e-10);
        double sg2 = gpu->ops->sum_sq(gpu, xd, (int64_t)n);
        CHECK_MSG(memcmp(&sg, &sg2, sizeof sg) == 0, "sum_sq of %zu: %.17g then %.17g", n, sg, sg2);
        free(x);
        gpu->ops->free(gpu, xd);
    }
    {
        enum { N = 5003 };
        static float p[N], g[N], m[N], v[N];
        fill(p, N, 1.0f);
        fill(g, N, 0.1f);
        fill(m, N, 0.01f);
        fill(v, N, 1.0f);
        for (int i = 0; i < N; i++) v[i] = v[i] * v[i] * 1e-3f;
        float *pd = dup_f(p, N), *gd = dup_f(g, N), *md = dup_f(m, N), *vd = dup_f(v, N);
        for (int64_t t = 1; t <= 3; t++) {
            struct anc_adamw h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                  .weight_decay = 0.01f, .t = t};
            gpu->ops->adamw(gpu, pd, gd, md, vd, N, &h);
            cpu->ops->adamw(cpu, p, g, m, v, N, &h);
        }
        float *y = down(pd, N);
        compare("adamw p", y, p, N, 1e-7, 1e-6);
        free(y);
        y = down(md, N);
        compare("adamw m", y, m, N, 1e-9, 1e-6);
        free(y);
        y = down(vd, N);
        compare("adamw v", y, v, N, 1e-12, 1e-6);
        free(y);
        float *bufs[] = {pd, gd, md, vd};
        for (int i = 0; i < 4; i++) gpu->ops->free(gpu, bufs[i]);
    }
}

/* The training ops a deliberately wrong mock kernel must be caught in. */
enum { TOP_RMSNORM, TOP_ATTN, TOP_EMBED, TOP_CE, TOP_N };
#ifdef ANC_CUDA_MOCK
static const char *const top_bugs[TOP_N] = {"rmsnorm_bwd", "attn_train_s2", "embed_bwd", "cross_entropy"};
#endif

struct attn_train_case {
    int32_t n, n_head, n_kv_head, head_dim, group;
};

/* Training attention, forward then backward, each from the same inputs on
 * both backends (the backward from the CPU's out and lse). Worst error as a
 * fraction of the tolerance; `what` names the worst. */
static double attn_train_case(const struct attn_train_case *c, char *what, size_t whatlen)
{
    int32_t n = c->n, hd = c->head_dim;
    size_t nq = (size_t)n * c->n_head * hd, nk = (size_t)n * c->n_kv_head * hd, nl = (size_t)n * c->n_head;
    float *q = malloc(nq * sizeof(float)), *k = malloc(nk * sizeof(float)), *v = malloc(nk * sizeof(float));
    float *dout = malloc(nq * sizeof(float)), *out = malloc(nq * sizeof(float)), *lse = malloc(nl * sizeof(float));
    float *dq = malloc(nq * sizeof(float)), *dk = malloc(nk * sizeof(float)), *dv = malloc(nk * sizeof(float));
    fill(q, nq, 3.0f);
    fill(k, nk, 1.0f);
    fill(v, nk, 1.0f);
    fill(dout, nq, 1.0f);
    struct anc_attn_train_args a = {
        .out = out, .lse = lse, .q = q, .k = k, .v = v, .dout = dout, .dq = dq, .dk = dk, .dv = dv, .n = n,
        .n_head = c->n_head, .n_kv_head = c->n_kv_head, .head_dim = hd, .group = c->group,
        .scale = 1.0f / sqrtf((float)hd),
    };
    cpu->ops->attn_train(cpu, &a);
    cpu->ops->attn_train_bwd(cpu, &a);
    struct anc_attn_train_args g = a;
    g.q = dup_f(q, nq);
    g.k = dup_f(k, nk);
    g.v = dup_f(v, nk);
    g.dout = dup_f(dout, nq);
    g.out = dalloc(nq);
    g.lse = dalloc(nl);
    g.dq = dalloc(nq);
    g.dk = dalloc(nk);
    g.dv = dalloc(nk);
    gpu->ops->attn_train(gpu, &g);
    float *gout = down(g.out, nq), *glse = down(g.lse, nl);
    gpu->ops->upload(gpu, g.out, out, nq * sizeof(float)); /* the backward from the CPU's forward */
    gpu->ops->upload(gpu, g.lse, lse, nl * sizeof(float));
    gpu->ops->attn_train_bwd(gpu, &g);
    float *gdq = down(g.dq, nq), *gdk = down(g.dk, nk), *gdv = down(g.dv, nk);
    struct { const char *name; const float *a, *b; size_t n; double atol, rtol; } r[] = {
        {"out", gout, out, nq, 1e-5, 1e-4},
        {"lse", glse, lse, nl, 1e-5, 1e-5},
        {"dq", gdq, dq, nq, 1e-4 * maxabs(dq, nq), 1e-3},
        {"dk", gdk, dk, nk, 1e-4 * maxabs(dk, nk), 1e-3},
        {"dv", gdv, dv, nk, 1e-4 * maxabs(dv, nk), 1e-3},
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        size_t at;
        double e = worst_err(r[i].a, r[i].b, r[i].n, r[i].atol, r[i].rtol, &at);
        if (!(e <= worst)) {
            worst = e == e ? e : INFINITY;
            snprintf(what, whatlen, "attn_train n %d heads %d/%d hd %d group %d: %s[%zu] gpu %.9g vs cpu %.9g", n,
                     c->n_head, c->n_kv_head, hd, c->group, r[i].name, at, r[i].a[at], r[i].b[at]);
        }
    }
    float *dev[] = {(float *)g.q, (float *)g.k, (float *)g.v, (float *)g.dout, g.out, g.lse, g.dq, g.dk, g.dv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) gpu->ops->free(gpu, dev[i]);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    free(gout), free(glse), free(gdq), free(gdk), free(gdv);
    return worst;
}

/* rmsnorm_bwd, training attention, embed_bwd and cross-entropy: worst[k]
 * is op k's largest error as a fraction of its tolerance (what[k] says
 * where). */
static void train_ops(double worst[TOP_N], char what[TOP_N][256])
{
    size_t at;
    for (int k = 0; k < TOP_N; k++) worst[k] = 0, what[k][0] = 0;
    /* rmsnorm_bwd: dx and dw accumulate; dw may be NULL */
    for (int with_dw = 0; with_dw <= 1; with_dw++) {
        enum { N = 333, T = 5 };
        static float x[N * T], dy[N * T], dx[N * T], w[N], dw[N];
        fill(x, N * T, 3.0f);
        fill(dy, N * T, 1.0f);
        fill(dx, N * T, 1.0f);
        fill(w, N, 1.0f);
        fill(dw, N, 1.0f);
        float *xd = dup_f(x, N * T), *dyd = dup_f(dy, N * T), *dxd = dup_f(dx, N * T), *wd = dup_f(w, N),
              *dwd = dup_f(dw, N);
        /* the norm weight as a trainer holds it: a backend buffer */
        struct anc_weight wg = {wd, ANC_DT_F32, 1, N, NULL}, wc = {w, ANC_DT_F32, 1, N, NULL};
        gpu->ops->rmsnorm_bwd(gpu, dxd, with_dw ? dwd : NULL, dyd, xd, &wg, N, T, 1e-5f);
        cpu->ops->rmsnorm_bwd(cpu, dx, with_dw ? dw : NULL, dy, x, &wc, N, T, 1e-5f);
        float *gx = down(dxd, N * T), *gw = down(dwd, N);
        double e = worst_err(gx, dx, N * T, 1e-6, 1e-5, &at);
        if (!(e <= worst[TOP_RMSNORM])) {
            worst[TOP_RMSNORM] = e == e ? e : INFINITY;
            snprintf(what[TOP_RMSNORM], 256, "rmsnorm_bwd dx[%zu]: gpu %.9g vs cpu %.9g", at, gx[at], dx[at]);
        }
        e = worst_err(gw, dw, N, 1e-6, 1e-5, &at);
        if (!(e <= worst[TOP_RMSNORM])) {
            worst[TOP_RMSNORM] = e == e ? e : INFINITY;
            snprintf(what[TOP_RMSNORM], 256, "rmsnorm_bwd dw[%zu]: gpu %.9g vs cpu %.9g", at, gw[at], dw[at]);
        }
        free(gx), free(gw);
        float *bufs[] = {xd, dyd, dxd, wd, dwd};
        for (int i = 0; i < 5; i++) gpu->ops->free(gpu, bufs[i]);
    }
    /* attention: full causal, S²-Attn groups (the shifted half's first
       group of G/2 and last one ending at n), GQA, MQA, odd and large heads,
       more than one tile of keys */
    static const struct attn_train_case cases[] = {
        {1, 4, 4, 64, 0},     {37, 8, 2, 64, 0},   {64, 8, 8, 32, 16},  {128, 12, 3, 128, 32},
        {96, 4, 1, 80, 8},    {130, 2, 2, 256, 0}, {48, 8, 4, 512, 12}, {256, 4, 2, 64, 128},
        {200, 6, 2, 64, 100}, {40, 2, 1, 16, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char w[256];
        double e = attn_train_case(&cases[i], w, sizeof w);
        if (!(e <= worst[TOP_ATTN])) {
            worst[TOP_ATTN] = e == e ? e : INFINITY;
            snprintf(what[TOP_ATTN], 256, "%s", w);
        }
    }
    /* embed_bwd: repeated rows, in token order: the CPU's bits */
    {
        enum { V = 40, D = 70, T = 9 };
        static float tab[V * D], dx[T * D];
        fill(tab, V * D, 1.0f);
        fill(dx, T * D, 1.0f);
        int32_t ids[T] = {39, 0, 7, 7, 3, 7, 0, 39, 12};
        float *tabd = dup_f(tab, V * D), *dxd = dup_f(dx, T * D);
        gpu->ops->embed_bwd(gpu, tabd, dxd, ids, T, D);
        cpu->ops->embed_bwd(cpu, tab, dx, ids, T, D);
        float *g = down(tabd, V * D);
        double e = worst_err(g, tab, V * D, 0, 0, &at);
        if (!(e <= worst[TOP_EMBED])) {
            worst[TOP_EMBED] = e == e ? e : INFINITY;
            snprintf(what[TOP_EMBED], 256, "embed_bwd [%zu]: gpu %.9g vs cpu %.9g (should be the same bits)", at,
                     g[at], tab[at]);
        }
        free(g);
        gpu->ops->free(gpu, tabd);
        gpu->ops->free(gpu, dxd);
    }
    /* cross-entropy: unscored rows, a row wider than a block, a big vocabulary */
    static const int32_t vocabs[] = {1000, 32000};
    for (size_t vi = 0; vi < 2; vi++) {
        enum { T = 6 };
        int32_t V = vocabs[vi];
        size_t n = (size_t)T * V;
        float *lg = malloc(n * sizeof(float));
        fill(lg, n, 5.0f);
        int32_t tg[T] = {3, -1, V - 1, 0, V / 2, -1};
        float *lgd = dup_f(lg, n);
        float gs = 1.0f / T;
        double lgpu = gpu->ops->cross_entropy(gpu, lgd, tg, T, V, gs);
        double lcpu = cpu->ops->cross_entropy(cpu, lg, tg, T, V, gs);
        float *g = down(lgd, n);
        double e = fabs(lgpu - lcpu) / (1e-9 * fabs(lcpu) + 1e-12);
        if (!(e <= worst[TOP_CE])) {
            worst[TOP_CE] = e == e ? e : INFINITY;
            snprintf(what[TOP_CE], 256, "cross_entropy V %d: loss gpu %.17g vs cpu %.17g", V, lgpu, lcpu);
        }
        e = worst_err(g, lg, n, 1e-8, 1e-5, &at);
        if (!(e <= worst[TOP_CE])) {
            worst[TOP_CE] = e == e ? e : INFINITY;
            snprintf(what[TOP_CE], 256, "cross_entropy V %d: gradient [%zu] gpu %.9g vs cpu %.9g", V, at, g[at],
                     lg[at]);
        }
        free(g), free(lg);
        gpu->ops->free(gpu, lgd);
    }
}

static void test_train_ops(void)
{
    test_upload_zero();
    test_matmul_bwd();
    test_train_elementwise();
    double worst[TOP_N];
    char what[TOP_N][256];
    train_ops(worst, what);
    for (int k = 0; k < TOP_N; k++) CHECK_MSG(worst[k] <= 1.0, "%s (%.3g of the tolerance)", what[k], worst[k]);
#ifdef ANC_CUDA_MOCK
    /* each comparison notices a wrong kernel (the mock's deliberate bugs) */
    for (int k = 0; k < TOP_N; k++) {
        double bad[TOP_N];
        setenv("ANCORA_MOCK_BUG", top_bugs[k], 1);
        train_ops(bad, what);
        unsetenv("ANCORA_MOCK_BUG");
        CHECK_MSG(bad[k] > 1.0, "a wrong %s kernel went unnoticed (error %.3g of the tolerance)", top_bugs[k],
                  bad[k]);
    }
    printf("rmsnorm_bwd, attn_train (S2 groups), embed_bwd, cross_entropy: wrong kernels are caught\n");
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

/* ---- training end to end -------------------------------------------------------------- */

/* Tensor by tensor, the gradients two trainers wrote (ANC_TRAIN_SAVE_GRADS):
 * max |a - b| <= tol * max |b| per tensor. */
static void compare_grads(const char *what, const char *pa, const char *pb, double tol)
{
    char err[ANC_ERR_LEN];
    struct gguf_file *fa = gguf_open(pa, err, sizeof err), *fb = gguf_open(pb, err, sizeof err);
    CHECK_MSG(fa && fb, "%s: %s", what, err);
    if (fa && fb) {
        CHECK_INT_EQ(fa->n_tensors, fb->n_tensors);
        double worst = 0;
        char wname[128] = "";
        for (uint64_t i = 0; i < fb->n_tensors; i++) {
            const struct gguf_tensor *tb = &fb->tensors[i];
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)tb->name.len, tb->name.ptr);
            const struct gguf_tensor *ta = gguf_find_tensor(fa, name);
            CHECK_MSG(ta && ta->type == ANC_DT_F32 && tb->type == ANC_DT_F32 && ta->nbytes == tb->nbytes,
                      "%s: tensor %s", what, name);
            if (!ta || ta->type != ANC_DT_F32 || tb->type != ANC_DT_F32 || ta->nbytes != tb->nbytes) continue;
            const float *a = ta->data, *b = tb->data;
            size_t n = tb->nbytes / sizeof(float);
            double mb = maxabs(b, n), md = 0;
            for (size_t k = 0; k < n; k++) md = fabs((double)a[k] - b[k]) > md ? fabs((double)a[k] - b[k]) : md;
            double e = mb > 0 ? md / mb : md;
            if (!(e <= worst)) worst = e == e ? e : INFINITY, snprintf(wname, sizeof wname, "%s", name);
        }
        CHECK_MSG(worst <= tol, "%s: gradient %s differs by %.3g of its largest entry", what, wname, worst);
        printf("%s: %llu gradients, worst %.3g of the largest entry (%s)\n", what,
               (unsigned long long)fb->n_tensors, worst, wname);
    }
    gguf_close(fa);
    gguf_close(fb);
}

/* One window's loss and gradients, then a few optimiser steps, on both
 * backends from the same settings and tokens: LoRA on every projection
 * with LoRA+ and S²-Attn; full fine-tuning with layer checkpointing. */
static void test_train_end_to_end(void)
{
    char path[1024], dpath[1024], err[ANC_ERR_LEN];
    test_model_path(path, sizeof path, "stories260K.gguf");
    const char *src = getenv("ANC_SRCDIR");
    snprintf(dpath, sizeof dpath, "%s/tests/data/stories.txt", src ? src : ".");
    struct anc_model *mc = load(path, ANC_BACKEND_CPU), *mg = load(path, ANC_BACKEND_CUDA);
    size_t len = 0, n_ids = 0;
    int32_t *ids = NULL;
    char *text = anc_read_file(dpath, &len, err, sizeof err);
    CHECK_MSG(text != NULL, "%s", err);
    if (!text || anc_tokenize(mc, text, len, true, &ids, &n_ids) != 0) {
        CHECK(false);
        free(text);
        anc_model_free(mc);
        anc_model_free(mg);
        return;
    }
    free(text);
    char dir[] = "/tmp/ancora_test_cuda_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    for (int variant = 0; variant < 2; variant++) {
        struct anc_train_params tp;
        anc_train_params_default(&tp);
        const char *name = variant ? "full fine-tuning, checkpointing" : "LoRA+ on every projection, S2-Attn";
        if (variant == 0) {
            tp.ctx = 64;
            tp.lora_rank = 4;
            tp.lora_targets = ANC_TRAIN_Q | ANC_TRAIN_K | ANC_TRAIN_V | ANC_TRAIN_O | ANC_TRAIN_GATE |
                              ANC_TRAIN_UP | ANC_TRAIN_DOWN;
            tp.lora_plus = true;
            tp.s2_group = 16;
        } else {
            tp.ctx = 48;
            tp.full = true;
            tp.checkpoint_layers = true;
            tp.lr = 1e-3f;
        }
        tp.warmup = 0;
        struct anc_trainer *tc = anc_trainer_new(mc, &tp, err, sizeof err);
        CHECK_MSG(tc != NULL, "cpu trainer: %s", err);
        struct anc_trainer *tg = anc_trainer_new(mg, &tp, err, sizeof err);
        CHECK_MSG(tg != NULL, "cuda trainer: %s", err);
        if (!tc || !tg) {
            anc_trainer_free(tc);
            anc_trainer_free(tg);
            continue;
        }
        double lc = 0, lg = 0;
        CHECK(anc_trainer_gradients(tc, ids + 5, &lc, err, sizeof err) == 0);
        CHECK(anc_trainer_gradients(tg, ids + 5, &lg, err, sizeof err) == 0);
        CHECK_CLOSE(lg, lc, 0, 1e-5);
        char ga[1100], gb[1100];
        snprintf(ga, sizeof ga, "%s/grads_gpu_%d.gguf", dir, variant);
        snprintf(gb, sizeof gb, "%s/grads_cpu_%d.gguf", dir, variant);
        CHECK(anc_trainer_save(tg, ANC_TRAIN_SAVE_GRADS, ga, err, sizeof err) == 0);
        CHECK(anc_trainer_save(tc, ANC_TRAIN_SAVE_GRADS, gb, err, sizeof err) == 0);
        compare_grads(name, ga, gb, 1e-4);
        unlink(ga);
        unlink(gb);
        printf("%s: one window's loss cpu %.9f gpu %.9f\n", name, lc, lg);
        for (int s = 0; s < 4; s++) {
            struct anc_train_step sc, sg;
            CHECK(anc_trainer_step(tc, ids, n_ids, &sc, err, sizeof err) == 0);
            CHECK(anc_trainer_step(tg, ids, n_ids, &sg, err, sizeof err) == 0);
            CHECK_CLOSE(sg.loss, sc.loss, 0, 1e-4);
            CHECK_CLOSE(sg.grad_norm, sc.grad_norm, 0, 1e-3);
            printf("%s: step %d loss cpu %.6f gpu %.6f, gradient norm cpu %.6f gpu %.6f\n", name, s + 1, sc.loss,
                   sg.loss, sc.grad_norm, sg.grad_norm);
        }
        anc_trainer_free(tc);
        anc_trainer_free(tg);
    }
    rmdir(dir);
    free(ids);
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
    /* a fresh backend: its table of prepared weights is keyed by host
       address, and the tests above freed weights it still lists, whose
       addresses malloc may hand out again (the ASan build's did) */
    anc_backend_free(gpu);
    gpu = anc_backend_cuda_new(err, sizeof err);
    if (!gpu) {
        fprintf(stderr, "the CUDA backend did not start again: %s\n", err);
        return 1;
    }
    test_train_ops();
    anc_backend_free(gpu);
    anc_backend_free(cpu);
    test_end_to_end();
    test_train_end_to_end();
    TEST_EXIT();
}
#endif
