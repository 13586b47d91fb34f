/* test_kernels.c — every CPU backend op against a naive double-precision
 * reference written here, on seeded random inputs with odd sizes, several
 * token counts, grouped-query ratios and thread counts. Tolerances per
 * op: |got - ref| <= atol + rtol * |ref|. Reports the first mismatches. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "test_util.h"

static uint64_t rng = 0x1234567;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int compare(const char *what, const float *got, const double *ref, size_t n, double atol,
                   double rtol)
{
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (d > worst) worst = d;
        if (!(d <= atol + rtol * fabs(ref[i]))) {
            if (bad < 10) fprintf(stderr, "%s[%zu]: got %.7g want %.7g\n", what, i, got[i], ref[i]);
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "%s: %d of %zu differ (largest %.3g)\n", what, bad, n, worst);
        test_failures++;
    }
    return bad;
}

static double weight_value(uint32_t type, const void *w, size_t i)
{
    switch (type) {
    case ANC_DT_F32: return ((const float *)w)[i];
    case ANC_DT_F16: return anc_f16_to_f32(((const uint16_t *)w)[i]);
    case ANC_DT_BF16: return anc_bf16_to_f32(((const uint16_t *)w)[i]);
    }
    return NAN;
}

static void *make_weight(uint32_t type, size_t n)
{
    size_t es = type == ANC_DT_F32 ? 4 : 2;
    uint8_t *w = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float v = frand();
        if (type == ANC_DT_F32) ((float *)w)[i] = v;
        else if (type == ANC_DT_F16) ((uint16_t *)w)[i] = anc_f32_to_f16(v);
        else ((uint16_t *)w)[i] = anc_f32_to_bf16(v);
    }
    return w;
}

static void test_matmul(struct anc_backend *be)
{
    uint32_t types[] = {ANC_DT_F32, ANC_DT_F16, ANC_DT_BF16};
    int shapes[][3] = {{1, 1, 1}, {7, 13, 1}, {64, 64, 3}, {33, 250, 5}, {172, 64, 32}, {64, 172, 2}};
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], nt = shapes[si][2];
            void *wd = make_weight(types[ti], (size_t)rows * cols);
            float *x = malloc(sizeof(float) * (size_t)cols * nt);
            float *y = malloc(sizeof(float) * (size_t)rows * nt);
            double *ref = malloc(sizeof(double) * (size_t)rows * nt);
            for (int i = 0; i < cols * nt; i++) x[i] = frand();
            for (int t = 0; t < nt; t++)
                for (int r = 0; r < rows; r++) {
                    double s = 0;
                    for (int c = 0; c < cols; c++)
                        s += weight_value(types[ti], wd, (size_t)r * cols + c) * x[t * cols + c];
                    ref[t * rows + r] = s;
                }
            struct anc_weight w = {wd, types[ti], rows, cols, NULL};
            be->ops->matmul(be, y, &w, x, nt);
            char what[64];
            snprintf(what, sizeof what, "matmul %s %dx%d n=%d", anc_dtype_get(types[ti])->name, rows,
                     cols, nt);
            compare(what, y, ref, (size_t)rows * nt, 1e-5 * sqrt(cols), 1e-5);
            free(wd), free(x), free(y), free(ref);
        }
}

static void test_rmsnorm_swiglu_add(struct anc_backend *be)
{
    int n = 77, nt = 5;
    float x[77 * 5], w[77], y[77 * 5], g[77 * 5], u[77 * 5];
    double ref[77 * 5];
    for (int i = 0; i < n * nt; i++) x[i] = frand() * 3, g[i] = frand() * 8, u[i] = frand();
    for (int i = 0; i < n; i++) w[i] = frand();
    struct anc_weight wt = {w, ANC_DT_F32, 1, 77, NULL};
    be->ops->rmsnorm(be, y, x, &wt, n, nt, 1e-5f);
    for (int t = 0; t < nt; t++) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[t * n + i] * x[t * n + i];
        double inv = 1.0 / sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++) ref[t * n + i] = x[t * n + i] * inv * w[i];
    }
    compare("rmsnorm", y, ref, (size_t)n * nt, 1e-6, 1e-5);
    be->ops->swiglu(be, y, g, u, n * nt);
    for (int i = 0; i < n * nt; i++) ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    compare("swiglu", y, ref, (size_t)n * nt, 1e-6, 1e-5);
    memcpy(y, x, sizeof y);
    be->ops->add(be, y, g, n * nt);
    for (int i = 0; i < n * nt; i++) ref[i] = (double)x[i] + g[i];
    compare("add", y, ref, (size_t)n * nt, 1e-6, 1e-6);
}

/* The ops some families add (GELU-gated FFN, biases, the embedding scale,
 * soft-caps), against their formulas in double; n large enough that the
 * element-wise ops split across threads, and a small n that does not. */
static void test_family_ops(struct anc_backend *be, int64_t n)
{
    float *g = calloc((size_t)n, sizeof(float)), *u = calloc((size_t)n, sizeof(float));
    float *y = calloc((size_t)n, sizeof(float));
    double *ref = calloc((size_t)n, sizeof(double));
    CHECK(g && u && y && ref);
    if (!g || !u || !y || !ref) return;
    for (int64_t i = 0; i < n; i++) g[i] = frand() * 12, u[i] = frand() * 2;
    be->ops->geglu(be, y, g, u, n);
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], t = tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x));
        ref[i] = 0.5 * x * (1.0 + t) * u[i];
    }
    compare("geglu (tanh form)", y, ref, (size_t)n, 1e-6, 1e-5);
    be->ops->geglu(be, g, g, u, n); /* out may alias gate */
    compare("geglu in place", g, ref, (size_t)n, 1e-6, 1e-5);
    for (int64_t i = 0; i < n; i++) y[i] = frand() * 40, ref[i] = 30.0 * tanh(y[i] / 30.0);
    be->ops->softcap(be, y, 30.0f, n);
    compare("softcap", y, ref, (size_t)n, 1e-6, 1e-6);
    for (int64_t i = 0; i < n; i++) y[i] = frand(), ref[i] = y[i] * 25.3;
    be->ops->scale(be, y, 25.3f, n);
    compare("scale", y, ref, (size_t)n, 1e-6, 1e-6);
    int cols = 37, rows = (int)(n / cols);
    float b[37];
    for (int i = 0; i < cols; i++) b[i] = frand();
    struct anc_weight bw = {b, ANC_DT_F32, 1, cols, NULL};
    for (int64_t i = 0; i < (int64_t)rows * cols; i++) y[i] = frand(), ref[i] = (double)y[i] + b[i % cols];
    be->ops->add_rows(be, y, &bw, cols, rows);
    compare("add_rows (bias)", y, ref, (size_t)rows * cols, 1e-6, 1e-6);
    free(g), free(u), free(y), free(ref);
}

static void test_rope(struct anc_backend *be, bool neox)
{
    int n_heads = 3, head_dim = 16, rot = 12, nt = 9, n_pos = 4096;
    int pairs = rot / 2;
    float *c = malloc(sizeof(float) * n_pos * pairs), *s = malloc(sizeof(float) * n_pos * pairs);
    for (int p = 0; p < n_pos; p++)
        for (int k = 0; k < pairs; k++) {
            double ang = p * pow(10000.0, -2.0 * k / rot);
            c[p * pairs + k] = (float)cos(ang);
            s[p * pairs + k] = (float)sin(ang);
        }
    struct anc_rope_table tab = {n_pos, pairs, neox, c, s, 0};
    float x[3 * 16 * 9];
    double ref[3 * 16 * 9];
    int32_t pos[9] = {0, 1, 2, 100, 511, 512, 1000, 2047, 4095};
    for (int i = 0; i < n_heads * head_dim * nt; i++) x[i] = frand();
    for (int t = 0; t < nt; t++)
        for (int h = 0; h < n_heads; h++) {
            const float *v = x + (t * n_heads + h) * head_dim;
            double *r = ref + (t * n_heads + h) * head_dim;
            for (int d = 0; d < head_dim; d++) r[d] = v[d];
            for (int k = 0; k < pairs; k++) {
                int i0 = neox ? k : 2 * k, i1 = neox ? k + pairs : 2 * k + 1;
                double ang = pos[t] * pow(10000.0, -2.0 * k / rot);
                r[i0] = v[i0] * cos(ang) - v[i1] * sin(ang);
                r[i1] = v[i0] * sin(ang) + v[i1] * cos(ang);
            }
        }
    be->ops->rope(be, x, nt, n_heads, head_dim, &tab, pos);
    compare(neox ? "rope neox" : "rope adjacent", x, ref, sizeof ref / sizeof ref[0], 1e-6, 1e-5);
    free(c), free(s);
}

/* Naive attention with the same visibility rules as the backend contract. */
static void attention_ref(const struct anc_attn_args *a, const float *kfull, const float *vfull,
                          double *out, double *sink_mass)
{
    int hd = a->head_dim, group = a->n_head / a->n_kv_head;
    for (int i = 0; i < a->n_q; i++)
        for (int h = 0; h < a->n_head; h++) {
            int kvh = h / group;
            double sc[2048], mx = -1e300;
            bool vis[2048];
            for (int j = 0; j < a->n_kv; j++) {
                bool sink = j < a->n_sink;
                vis[j] = sink || (j >= a->lo[i] && j < a->hi[i]);
                if (!vis[j]) continue;
                const float *q = (sink && a->q_sink ? a->q_sink : a->q) + (i * a->n_head + h) * hd;
                int kslot = a->slot ? a->slot[j] : j;
                const float *k = kfull + (kslot * a->n_kv_head + kvh) * hd;
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)q[e] * k[e];
                sc[j] = d * a->scale;
                if (a->softcap > 0) sc[j] = a->softcap * tanh(sc[j] / a->softcap);
                if (sc[j] > mx) mx = sc[j];
            }
            double sum = 0, ssum = 0;
            for (int j = 0; j < a->n_kv; j++) {
                sc[j] = vis[j] ? exp(sc[j] - mx) : 0;
                sum += sc[j];
                if (j < a->n_sink) ssum += sc[j];
            }
            double *o = out + (i * a->n_head + h) * hd;
            for (int e = 0; e < hd; e++) o[e] = 0;
            for (int j = 0; j < a->n_kv; j++) {
                int slot = a->slot ? a->slot[j] : j;
                const float *v = vfull + (slot * a->n_kv_head + kvh) * hd;
                for (int e = 0; e < hd; e++) o[e] += sc[j] / sum * v[e];
            }
            if (i == a->n_q - 1) sink_mass[h] = ssum / sum;
        }
}

/* n_q queries over n_kv entries; decoding (n_q 1) over a long cache with
 * few key/value heads takes the split path (entries divided among the
 * threads, parts merged). softcap > 0: Gemma 2's soft-capped scores. */
static void test_attention_n(struct anc_backend *be, uint32_t v_type, int n_head, int n_kv_head,
                             int n_sink, bool permute, bool two_q, int n_q, int n_kv, float softcap)
{
    int hd = 24, kvd = n_kv_head * hd;
    float *q = malloc(sizeof(float) * n_q * n_head * hd), *qs = malloc(sizeof(float) * n_q * n_head * hd);
    float *kf = malloc(sizeof(float) * n_kv * kvd), *vf = malloc(sizeof(float) * n_kv * kvd);
    uint16_t *kh = malloc(sizeof(uint16_t) * n_kv * kvd), *vh = malloc(sizeof(uint16_t) * n_kv * kvd);
    float *out = malloc(sizeof(float) * n_q * n_head * hd);
    double *ref = malloc(sizeof(double) * n_q * n_head * hd);
    for (int i = 0; i < n_q * n_head * hd; i++) q[i] = frand() * 2, qs[i] = frand() * 2;
    for (int i = 0; i < n_kv * kvd; i++) {
        kh[i] = anc_f32_to_f16(frand() * 2);
        kf[i] = anc_f16_to_f32(kh[i]);
        vh[i] = anc_f32_to_f16(frand());
        vf[i] = anc_f16_to_f32(vh[i]); /* same values in both layouts */
    }
    int32_t *slot = malloc(sizeof(int32_t) * n_kv), *lo = malloc(sizeof(int32_t) * n_q),
            *hi = malloc(sizeof(int32_t) * n_q);
    for (int j = 0; j < n_kv; j++) slot[j] = permute ? (j * 7 + 3) % n_kv : j;
    for (int i = 0; i < n_q; i++) {
        hi[i] = n_kv - n_q + i + 1;
        lo[i] = n_sink ? hi[i] - n_kv / 3 : 0; /* a sliding window beyond the sinks */
    }
    float mass[16];
    double mass_ref[16];
    struct anc_attn_args a = {
        .out = out, .q = q, .q_sink = two_q ? qs : NULL,
        .k = v_type == ANC_DT_F16 ? (const void *)kh : (const void *)kf,
        .v = v_type == ANC_DT_F16 ? (const void *)vh : (const void *)vf, .kv_type = v_type,
        .slot = permute ? slot : NULL, .n_q = n_q, .n_kv = n_kv, .n_head = n_head,
        .n_kv_head = n_kv_head, .head_dim = hd, .n_sink = n_sink, .lo = lo, .hi = hi,
        .scale = 1.0f / sqrtf((float)hd), .softcap = softcap, .sink_mass = mass,
    };
    be->ops->attention(be, &a);
    attention_ref(&a, kf, vf, ref, mass_ref);
    char what[96];
    snprintf(what, sizeof what, "attention kv=%s heads %d/%d sinks %d%s%s q %d kv %d cap %g",
             anc_dtype_get(v_type)->name, n_head, n_kv_head, n_sink, permute ? " permuted" : "",
             two_q ? " two-q" : "", n_q, n_kv, (double)softcap);
    compare(what, out, ref, (size_t)n_q * n_head * hd, 1e-5, 1e-4);
    if (n_sink) {
        float mass_f[16];
        double mr[16];
        for (int h = 0; h < n_head; h++) mass_f[h] = mass[h], mr[h] = mass_ref[h];
        compare("sink mass", mass_f, mr, (size_t)n_head, 1e-6, 1e-4);
    }
    free(q), free(qs), free(kf), free(kh), free(vf), free(vh), free(out), free(ref);
    free(slot), free(lo), free(hi);
}

static void test_attention(struct anc_backend *be, uint32_t v_type, int n_head, int n_kv_head,
                           int n_sink, bool permute, bool two_q)
{
    test_attention_n(be, v_type, n_head, n_kv_head, n_sink, permute, two_q, 6, 150, 0);
}

static void test_rows(struct anc_backend *be)
{
    float src[100], back[100];
    double ref[100];
    uint16_t h[100];
    for (int i = 0; i < 100; i++) src[i] = frand() * 100, ref[i] = src[i];
    int32_t row0 = 0;
    be->ops->store_rows(be, h, ANC_DT_F16, src, &row0, 1, 100);
    be->ops->load_rows(be, back, h, ANC_DT_F16, &row0, 1, 100);
    compare("f16 row round trip", back, ref, 100, 0, 1.0 / 2048);
    /* rows scattered and gathered through an index list, f32 and f16 */
    {
        enum { R = 5, LEN = 9 };
        float in[3 * LEN], out[3 * LEN], cache32[R * LEN] = {0}, moved[3 * LEN];
        uint16_t cache16[R * LEN] = {0};
        int32_t rows[3] = {4, 0, 2};
        for (int i = 0; i < 3 * LEN; i++) in[i] = (float)(i + 1) * 0.5f; /* exact in f16 */
        double want[3 * LEN];
        for (int i = 0; i < 3 * LEN; i++) want[i] = in[i];
        be->ops->store_rows(be, cache32, ANC_DT_F32, in, rows, 3, LEN);
        be->ops->load_rows(be, out, cache32, ANC_DT_F32, rows, 3, LEN);
        compare("f32 rows scatter/gather", out, want, 3 * LEN, 0, 0);
        CHECK(cache32[4 * LEN] == in[0] && cache32[0] == in[LEN] && cache32[2 * LEN] == in[2 * LEN]);
        CHECK(cache32[1 * LEN] == 0 && cache32[3 * LEN] == 0);
        be->ops->store_rows(be, cache16, ANC_DT_F16, in, rows, 3, LEN);
        be->ops->load_rows(be, out, cache16, ANC_DT_F16, rows, 3, LEN);
        compare("f16 rows scatter/gather", out, want, 3 * LEN, 0, 0);
        be->ops->copy_rows(be, moved, cache32, LEN * sizeof(float), rows, 3);
        compare("copy_rows", moved, want, 3 * LEN, 0, 0);
        float v[6] = {1, 7, -3, 7, 2, 0};
        CHECK(be->ops->argmax(be, v, 6) == 1);
    }
    /* embedding lookup */
    int dim = 10, vocab = 20;
    uint16_t *tab = make_weight(ANC_DT_F16, (size_t)dim * vocab);
    struct anc_weight w = {tab, ANC_DT_F16, vocab, dim, NULL};
    int32_t toks[3] = {0, 19, 7};
    float out[30];
    double r2[30];
    be->ops->embed(be, out, &w, toks, 3);
    for (int t = 0; t < 3; t++)
        for (int d = 0; d < dim; d++) r2[t * dim + d] = anc_f16_to_f32(tab[toks[t] * dim + d]);
    compare("embed f16", out, r2, 30, 0, 0);
    free(tab);
}

int main(void)
{
    int threads[] = {1, 2, 5};
    for (size_t i = 0; i < 3; i++) {
        struct anc_backend *be = anc_backend_cpu_new(threads[i]);
        CHECK(be != NULL);
        /* never more threads than CPUs to run them */
        int avail = anc_cpu_available();
        CHECK_INT_EQ(be->n_threads, threads[i] < avail ? threads[i] : avail);
        test_matmul(be);
        test_rmsnorm_swiglu_add(be);
        test_family_ops(be, 1000);
        test_family_ops(be, 70000);
        test_rope(be, false);
        test_rope(be, true);
        test_attention(be, ANC_DT_F32, 8, 8, 0, false, false);
        test_attention(be, ANC_DT_F16, 8, 2, 0, true, false);
        test_attention(be, ANC_DT_F16, 6, 3, 4, true, true);
        test_attention(be, ANC_DT_F32, 4, 1, 1, false, false);
        /* decoding over long caches: one or three key/value heads split the
           entries among the threads (Gemma 3 270M has 1, SmolLM2 3) */
        test_attention_n(be, ANC_DT_F16, 4, 1, 0, true, false, 1, 2000, 0);
        test_attention_n(be, ANC_DT_F16, 9, 3, 4, true, true, 1, 1500, 0);
        test_attention_n(be, ANC_DT_F32, 4, 1, 2, false, false, 1, 700, 0);
        test_attention_n(be, ANC_DT_F16, 8, 2, 4, true, true, 1, 1000, 5.0f);
        test_attention_n(be, ANC_DT_F32, 8, 2, 0, false, false, 6, 150, 5.0f);
        test_rows(be);
        anc_backend_free(be);
    }
    TEST_EXIT();
}
