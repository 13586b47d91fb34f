/* test_cuda_dev_attn.c — the CUDA attention algorithm, replayed on the CPU.
 * Uses only the shared math of kernels/cuda/attn_dev.h, in the same loop
 * structure as kernels/cuda/kernels_attn.cu (blocks of (query, kv head,
 * head chunk, split), tiles of entries, online softmax, then the merge of
 * the splits), and compares the result with the CPU reference
 * cpu_attention_group on seeded random inputs: GQA ratios 1/3/4/8/64, MQA,
 * head_dim 24..512, sinks, q_sink, shuffled slots, windows of several
 * queries, queries that see nothing, n_split 1, 2, 7 and more than n_kv,
 * f32 and f16 caches, soft-capped scores. Also checks the block plan against the shared
 * memory sizes, the split and visibility plans against brute force, the online-softmax merge, and the fp16 conversions against
 * dtype.h bit for bit (every half, every float).
 * Needs no GPU and no CUDA: plain C. Depends on kernels/ headers and the
 * CPU reference (kernels/cpu); never on core/. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attn_dev.h"
#include "backend.h"
#include "cpu/cpu_ops.h" /* cpu_attention_group, the reference (kernels/cpu/) */
#include "test_util.h"

static uint64_t rng = 0x5eed1234abcdull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)((double)(next_u64() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int32_t irand(int32_t lo, int32_t hi) /* uniform in [lo, hi] */
{
    return lo + (int32_t)(next_u64() % (uint64_t)(hi - lo + 1));
}

/* ---- fp16 conversions -------------------------------------------------- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void test_f16_bits(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        uint32_t got = bits_of(anc_dev_f16_to_f32((uint16_t)h));
        uint32_t want = bits_of(anc_f16_to_f32((uint16_t)h));
        if (got != want && bad++ < 5)
            fprintf(stderr, "f16 %04x -> f32: got %08x want %08x\n", h, got, want);
    }
    uint32_t u = 0;
    do { /* every float bit pattern */
        float f;
        memcpy(&f, &u, sizeof f);
        uint16_t got = anc_dev_f32_to_f16(f), want = anc_f32_to_f16(f);
        if (got != want && bad++ < 10)
            fprintf(stderr, "f32 %08x -> f16: got %04x want %04x\n", u, got, want);
    } while (++u != 0);
    CHECK_MSG(bad == 0, "%d fp16 conversions differ from dtype.h", bad);
    printf("fp16: all 65536 halves and all 2^32 floats match dtype.h bit for bit\n");
}

/* ---- plans --------------------------------------------------------------- */

/* The splits of [0, n_kv) are consecutive, cover it, and have <= c entries. */
static void test_split_plan(void)
{
    int bad = 0;
    for (int32_t n_kv = 0; n_kv <= 130; n_kv++)
        for (int32_t ns = 1; ns <= 140; ns++) {
            int32_t c = (n_kv + ns - 1) / ns, next = 0;
            for (int32_t s = 0; s < ns; s++) {
                int32_t b, e;
                anc_attn_split_range(n_kv, ns, s, &b, &e);
                if ((b != next || e < b || e - b > c) && bad++ < 5)
                    fprintf(stderr, "split %d/%d of %d: [%d, %d) after %d\n", s, ns, n_kv, b, e,
                            next);
                next = e;
            }
            if (next != n_kv && bad++ < 5)
                fprintf(stderr, "splits of %d into %d end at %d\n", n_kv, ns, next);
        }
    CHECK_MSG(bad == 0, "split plan");
}

/* For every head_dim and group the kernel accepts, the block's rows fit
 * the shared arrays of kernels_attn.cu (sized from the same constants) and
 * its accumulators fit the threads' registers. */
static void test_block_plan_fits(void)
{
    int bad = 0;
    for (int32_t hd = 1; hd <= ANC_MAX_HEAD_DIM; hd++)
        for (int32_t group = 1; group <= ANC_MAX_GROUP; group++) {
            int32_t gb = anc_attn_heads_per_block(group, hd), tile = anc_attn_tile_entries(hd);
            int32_t st = anc_attn_row_stride(hd);
            bool ok = gb >= 1 && gb <= group && tile >= 1 && tile <= ANC_ATTN_TILE_MAX &&
                      st >= hd && st % 2 == 1 && gb * hd <= ANC_ATTN_GD_MAX &&
                      gb * st <= ANC_ATTN_GD_MAX + ANC_MAX_GROUP &&
                      tile * hd <= ANC_ATTN_TILE_FLOATS &&
                      tile * st <= ANC_ATTN_TILE_FLOATS + ANC_ATTN_TILE_MAX &&
                      ANC_ATTN_ACC_PER_THREAD * ANC_ATTN_THREADS >= gb * hd;
            if (!ok && bad++ < 5)
                fprintf(stderr, "block plan hd %d group %d: gb %d tile %d stride %d\n", hd, group,
                        gb, tile, st);
        }
    CHECK_MSG(bad == 0, "block plan fits");
}

/* The span of a chunk lists exactly the visible entries, sinks first, in
 * order, each once, with the sink flag of anc_attn_visibility. */
static void test_visibility_plan(void)
{
    int bad = 0;
    for (int iter = 0; iter < 200000; iter++) {
        int32_t n_kv = irand(0, 40), n_sink = irand(0, 6);
        int32_t lo = irand(-3, n_kv + 2), hi = irand(lo - 3, n_kv + 3);
        int32_t b = irand(0, n_kv), e = irand(b, n_kv);
        struct anc_attn_span sp = anc_attn_chunk_span(b, e, n_sink, lo, hi);
        int32_t n = anc_attn_span_count(sp), ns = anc_attn_span_sinks(sp), u = 0;
        bool ok = n >= 0 && ns >= 0 && ns <= n;
        for (int32_t j = b; j < e && ok; j++) {
            int vis = anc_attn_visibility(j, n_sink, lo, hi);
            if (vis == ANC_ATTN_HIDDEN) continue;
            ok = u < n && anc_attn_span_entry(sp, u) == j && (vis == ANC_ATTN_SINK) == (u < ns);
            u++;
        }
        ok = ok && u == n;
        if (!ok && bad++ < 5)
            fprintf(stderr, "span of [%d, %d) n_sink %d window [%d, %d): wrong\n", b, e, n_sink,
                    lo, hi);
    }
    CHECK_MSG(bad == 0, "visibility plan");
}

/* Online softmax: one score at a time, and two halves merged, equal the
 * direct softmax; empty states merge to empty. */
static void test_online_softmax(void)
{
    enum { N = 37, CUT = 15, N_SINK = 3 };
    float s[N], v[N];
    for (int j = 0; j < N; j++) s[j] = frand() * 8, v[j] = frand();
    double mx = -INFINITY, l = 0, sl = 0, o = 0;
    for (int j = 0; j < N; j++) mx = s[j] > mx ? s[j] : mx;
    for (int j = 0; j < N; j++) {
        double e = exp(s[j] - mx);
        l += e, o += e * v[j];
        if (j < N_SINK) sl += e;
    }
    struct anc_attn_state half[2] = {anc_attn_state_empty(), anc_attn_state_empty()};
    float acc[2] = {0, 0};
    for (int j = 0; j < N; j++) {
        int k = j >= CUT;
        float alpha, p;
        anc_attn_update_one(&half[k], s[j], j < N_SINK, &alpha, &p);
        acc[k] = acc[k] * alpha + p * v[j];
    }
    float fa, fb;
    struct anc_attn_state all = anc_attn_merge(half[0], half[1], &fa, &fb);
    float out = anc_attn_finish(acc[0] * fa + acc[1] * fb, all);
    CHECK_CLOSE(out, o / l, 1e-6, 1e-5);
    CHECK_CLOSE(anc_attn_sink_share(all), sl / l, 1e-6, 1e-5);
    CHECK_CLOSE(all.m, mx, 0, 0);

    struct anc_attn_state e = anc_attn_state_empty();
    struct anc_attn_state m = anc_attn_merge(e, e, &fa, &fb);
    CHECK(m.m == -INFINITY && m.l == 0 && m.sink_l == 0 && fa == 0 && fb == 0);
    CHECK(anc_attn_finish(0.0f, m) == 0.0f && anc_attn_sink_share(m) == 0.0f);
    m = anc_attn_merge(e, all, &fa, &fb);
    CHECK(fa == 0 && fb == 1 && m.l == all.l && m.m == all.m);
    CHECK(anc_attn_state_raise(&e, -INFINITY) == 0.0f && e.m == -INFINITY && e.l == 0);
    CHECK(anc_attn_weight(-INFINITY, -INFINITY) == 0.0f);
}

/* ---- the kernel, replayed --------------------------------------------- */

static float cache_elem(const struct anc_attn_args *a, const void *base, size_t off)
{
    if (a->kv_type == ANC_DT_F16) return anc_dev_f16_to_f32(((const uint16_t *)base)[off]);
    return ((const float *)base)[off];
}

/* The work area of the splits: acc [n_q][n_head][n_split][head_dim] and a
 * state per (query, head, split), as kernels_attn.cu lays them out. */
struct emu_parts {
    float *acc;
    struct anc_attn_state *st;
};

/* One CUDA block of attn_split_kernel: query i, kv head kvh, head chunk hc,
 * split s; the four steps per tile in the kernel's order. */
static void emu_block(const struct anc_attn_args *a, int32_t n_split, struct emu_parts *pt,
                      int32_t i, int32_t kvh, int32_t hc, int32_t s)
{
    static float k_t[ANC_ATTN_TILE_FLOATS], v_t[ANC_ATTN_TILE_FLOATS];
    static float acc[ANC_ATTN_GD_MAX], p[ANC_MAX_GROUP][ANC_ATTN_TILE_MAX];
    struct anc_attn_state st[ANC_MAX_GROUP];
    float alpha[ANC_MAX_GROUP];
    const int32_t D = a->head_dim, group = a->n_head / a->n_kv_head;
    const int32_t gb = anc_attn_heads_per_block(group, D), tile = anc_attn_tile_entries(D);
    const int32_t g0 = hc * gb, nh = gb < group - g0 ? gb : group - g0, h0 = kvh * group + g0;
    const float *qsink = a->q_sink ? a->q_sink : a->q;

    for (int32_t g = 0; g < nh; g++) st[g] = anc_attn_state_empty();
    memset(acc, 0, sizeof acc);
    int32_t cb, ce;
    anc_attn_split_range(a->n_kv, n_split, s, &cb, &ce);
    struct anc_attn_span sp = anc_attn_chunk_span(cb, ce, a->n_sink, a->lo[i], a->hi[i]);
    const int32_t n_vis = anc_attn_span_count(sp), n_sinks = anc_attn_span_sinks(sp);

    for (int32_t u0 = 0; u0 < n_vis; u0 += tile) {
        const int32_t nt = tile < n_vis - u0 ? tile : n_vis - u0;
        for (int32_t t = 0; t < nt; t++) { /* 1. stage rows */
            int32_t j = anc_attn_span_entry(sp, u0 + t);
            int32_t row = a->slot ? a->slot[j] : j;
            for (int32_t d = 0; d < D; d++) {
                size_t off = ((size_t)row * a->n_kv_head + kvh) * D + d;
                k_t[t * D + d] = cache_elem(a, a->k, off);
                v_t[t * D + d] = cache_elem(a, a->v, off);
            }
        }
        for (int32_t g = 0; g < nh; g++) /* 2. scores */
            for (int32_t t = 0; t < nt; t++) {
                const float *q = (u0 + t < n_sinks ? qsink : a->q) + ((size_t)i * a->n_head + h0 + g) * D;
                float dot = 0.0f;
                for (int32_t d = 0; d < D; d++) dot += q[d] * k_t[t * D + d];
                p[g][t] = anc_attn_score(dot, a->scale, a->softcap);
            }
        for (int32_t g = 0; g < nh; g++) { /* 3. online softmax */
            float tmax = -INFINITY, p_sum = 0.0f, p_sink = 0.0f;
            for (int32_t t = 0; t < nt; t++) tmax = fmaxf(tmax, p[g][t]);
            alpha[g] = anc_attn_state_raise(&st[g], tmax);
            for (int32_t t = 0; t < nt; t++) {
                p[g][t] = anc_attn_weight(p[g][t], st[g].m);
                p_sum += p[g][t];
                if (u0 + t < n_sinks) p_sink += p[g][t];
            }
            anc_attn_state_add(&st[g], p_sum, p_sink);
        }
        for (int32_t g = 0; g < nh; g++) /* 4. accumulators */
            for (int32_t d = 0; d < D; d++) {
                float y = acc[g * D + d] * alpha[g];
                for (int32_t t = 0; t < nt; t++) y += p[g][t] * v_t[t * D + d];
                acc[g * D + d] = y;
            }
    }

    for (int32_t g = 0; g < nh; g++) {
        size_t ih = (size_t)i * a->n_head + h0 + g;
        if (n_split == 1) {
            for (int32_t d = 0; d < D; d++) a->out[ih * D + d] = anc_attn_finish(acc[g * D + d], st[g]);
            if (a->sink_mass && i == a->n_q - 1) a->sink_mass[h0 + g] = anc_attn_sink_share(st[g]);
        } else {
            memcpy(pt->acc + (ih * n_split + s) * D, acc + g * D, sizeof(float) * (size_t)D);
            pt->st[ih * n_split + s] = st[g];
        }
    }
}

/* attn_merge_kernel: per (query, head) and element d, merge splits in order. */
static void emu_merge(const struct anc_attn_args *a, int32_t n_split, const struct emu_parts *pt)
{
    const int32_t D = a->head_dim;
    for (size_t ih = 0; ih < (size_t)a->n_q * a->n_head; ih++)
        for (int32_t d = 0; d < D; d++) {
            struct anc_attn_state st = anc_attn_state_empty();
            float y = 0.0f;
            for (int32_t s = 0; s < n_split; s++) {
                float fa, fb;
                st = anc_attn_merge(st, pt->st[ih * n_split + s], &fa, &fb);
                y = y * fa + pt->acc[(ih * n_split + s) * D + d] * fb;
            }
            a->out[ih * D + d] = anc_attn_finish(y, st);
            if (d == 0 && a->sink_mass && (int32_t)(ih / a->n_head) == a->n_q - 1)
                a->sink_mass[ih % a->n_head] = anc_attn_sink_share(st);
        }
}

/* anc_cu_attention, replayed: every block, then the merge. */
static void emu_attention(const struct anc_attn_args *a, int32_t n_split)
{
    const int32_t group = a->n_head / a->n_kv_head;
    const int32_t gb = anc_attn_heads_per_block(group, a->head_dim);
    const int32_t n_hc = (group + gb - 1) / gb;
    size_t n_parts = (size_t)a->n_q * a->n_head * n_split;
    struct emu_parts pt = {NULL, NULL};
    if (n_split > 1) {
        pt.acc = malloc(sizeof(float) * n_parts * a->head_dim);
        pt.st = malloc(sizeof(struct anc_attn_state) * n_parts);
        /* garbage, so a part the blocks forget to write shows up */
        for (size_t k = 0; k < n_parts * a->head_dim; k++) pt.acc[k] = NAN;
        for (size_t k = 0; k < n_parts; k++) pt.st[k].m = pt.st[k].l = pt.st[k].sink_l = NAN;
    }
    for (int32_t i = 0; i < a->n_q; i++)
        for (int32_t kvh = 0; kvh < a->n_kv_head; kvh++)
            for (int32_t hc = 0; hc < n_hc; hc++)
                for (int32_t s = 0; s < n_split; s++) emu_block(a, n_split, &pt, i, kvh, hc, s);
    if (n_split > 1) emu_merge(a, n_split, &pt);
    free(pt.acc);
    free(pt.st);
}

/* The CPU reference: cpu_attention_group for every (query, kv head). */
static void ref_attention(const struct anc_attn_args *a)
{
    int32_t group = a->n_head / a->n_kv_head;
    float *scores = malloc(sizeof(float) * (size_t)group * (a->n_kv > 0 ? a->n_kv : 1));
    for (int32_t i = 0; i < a->n_q; i++)
        for (int32_t kvh = 0; kvh < a->n_kv_head; kvh++) cpu_attention_group(a, i, kvh, scores);
    free(scores);
}

/* ---- cases ----------------------------------------------------------------- */

enum window { CAUSAL, SLIDING, MIXED, NOTHING };

struct attn_case {
    const char *name;
    int32_t n_q, n_kv, n_head, n_kv_head, head_dim, n_sink;
    bool two_q, shuffle, mass;
    uint32_t kv_type;
    enum window win;
    float softcap; /* > 0: soft-capped scores (Gemma 2) */
};

static void make_windows(const struct attn_case *c, int32_t *lo, int32_t *hi)
{
    for (int32_t i = 0; i < c->n_q; i++) {
        hi[i] = c->n_kv - c->n_q + 1 + i;
        if (hi[i] < 0) hi[i] = 0;
        switch (c->win) {
        case CAUSAL: lo[i] = 0; break;
        case SLIDING: lo[i] = hi[i] - (c->n_kv / 3 > 1 ? c->n_kv / 3 : 1); break;
        case NOTHING: lo[i] = hi[i] = i; break;
        case MIXED:
            lo[i] = irand(-2, c->n_kv);
            hi[i] = irand(lo[i] - 2, c->n_kv);
            if (i == 0) lo[i] = hi[i];                         /* sinks only, or nothing */
            if (i == 1) lo[i] = 0, hi[i] = c->n_kv;            /* overlaps the sinks */
            if (i == 2) lo[i] = c->n_sink - 1, hi[i] = c->n_sink + 1;
            break;
        }
    }
}

/* First mismatch of got against ref (|got - ref| <= atol + rtol |ref|,
 * NaN never passes), reported with its (query, head, dim); *worst: the
 * largest |got - ref| seen, as a fraction of its tolerance. */
static int compare(const char *what, const char *case_name, int32_t n_split, const float *got,
                   const float *ref, size_t n, int32_t n_head, int32_t hd, bool quiet,
                   double *worst)
{
    const double atol = 1e-6, rtol = 1e-5;
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)got[k] - ref[k]), tol = atol + rtol * fabs(ref[k]);
        if (d / tol > *worst) *worst = d / tol;
        if (d <= tol) continue;
        if (!quiet && bad == 0 && hd == 1)
            fprintf(stderr, "%s n_split %d: %s[head %zu]: got %.9g want %.9g\n", case_name,
                    n_split, what, k, got[k], ref[k]);
        else if (!quiet && bad == 0)
            fprintf(stderr, "%s n_split %d: %s[q %zu][head %zu][%zu]: got %.9g want %.9g\n",
                    case_name, n_split, what, k / ((size_t)n_head * hd), k / hd % n_head,
                    k % hd, got[k], ref[k]);
        bad++;
    }
    if (bad && !quiet) fprintf(stderr, "%s n_split %d: %s: %d of %zu differ\n", case_name, n_split, what, bad, n);
    return bad;
}

struct attn_data {
    struct anc_attn_args a;
    float *q, *qs, *kf, *vf, *out_ref, *out, *mass_ref, *mass;
    uint16_t *kh, *vh;
    int32_t *slot, *lo, *hi;
};

static void make_data(const struct attn_case *c, struct attn_data *t)
{
    size_t nq = (size_t)c->n_q * c->n_head * c->head_dim;
    size_t rows = (size_t)c->n_kv + 3; /* physical rows: a few more than entries */
    size_t nk = rows * c->n_kv_head * c->head_dim;
    memset(t, 0, sizeof *t);
    t->q = malloc(sizeof(float) * nq), t->qs = malloc(sizeof(float) * nq);
    t->out_ref = malloc(sizeof(float) * nq), t->out = malloc(sizeof(float) * nq);
    t->kf = malloc(sizeof(float) * nk), t->vf = malloc(sizeof(float) * nk);
    t->kh = malloc(sizeof(uint16_t) * nk), t->vh = malloc(sizeof(uint16_t) * nk);
    t->mass_ref = malloc(sizeof(float) * c->n_head), t->mass = malloc(sizeof(float) * c->n_head);
    t->slot = malloc(sizeof(int32_t) * (rows));
    t->lo = malloc(sizeof(int32_t) * c->n_q), t->hi = malloc(sizeof(int32_t) * c->n_q);
    for (size_t k = 0; k < nq; k++) t->q[k] = frand() * 2, t->qs[k] = frand() * 2;
    for (size_t k = 0; k < nk; k++) {
        t->kh[k] = anc_f32_to_f16(frand() * 2), t->vh[k] = anc_f32_to_f16(frand());
        t->kf[k] = frand() * 2, t->vf[k] = frand();
    }
    /* slot: a random permutation of the physical rows, first n_kv used */
    for (size_t r = 0; r < rows; r++) t->slot[r] = (int32_t)r;
    if (c->shuffle)
        for (size_t r = rows - 1; r > 0; r--) {
            size_t o = next_u64() % (r + 1);
            int32_t x = t->slot[r];
            t->slot[r] = t->slot[o], t->slot[o] = x;
        }
    make_windows(c, t->lo, t->hi);
    bool f16 = c->kv_type == ANC_DT_F16;
    struct anc_attn_args a = {
        .q = t->q, .q_sink = c->two_q ? t->qs : NULL,
        .k = f16 ? (const void *)t->kh : (const void *)t->kf,
        .v = f16 ? (const void *)t->vh : (const void *)t->vf, .kv_type = c->kv_type,
        .slot = c->shuffle ? t->slot : NULL, .n_q = c->n_q, .n_kv = c->n_kv,
        .n_head = c->n_head, .n_kv_head = c->n_kv_head, .head_dim = c->head_dim,
        .n_sink = c->n_sink, .lo = t->lo, .hi = t->hi,
        .scale = 1.0f / sqrtf((float)c->head_dim), .softcap = c->softcap,
    };
    t->a = a;
}

static void free_data(struct attn_data *t)
{
    free(t->q), free(t->qs), free(t->kf), free(t->vf), free(t->kh), free(t->vh);
    free(t->out_ref), free(t->out), free(t->mass_ref), free(t->mass);
    free(t->slot), free(t->lo), free(t->hi);
}

static void fill_nan(float *x, size_t n)
{
    for (size_t k = 0; k < n; k++) x[k] = NAN;
}

/* Reference once, then the replay for each n_split; returns mismatches. */
static int run_case(const struct attn_case *c, struct attn_data *t, const int32_t *splits,
                    int n_splits, bool quiet, double *worst)
{
    size_t nq = (size_t)c->n_q * c->n_head * c->head_dim;
    struct anc_attn_args a = t->a;
    a.out = t->out_ref;
    a.sink_mass = c->mass ? t->mass_ref : NULL;
    fill_nan(t->out_ref, nq), fill_nan(t->mass_ref, (size_t)c->n_head);
    ref_attention(&a);
    int bad = 0;
    for (int k = 0; k < n_splits; k++) {
        a.out = t->out;
        a.sink_mass = c->mass ? t->mass : NULL;
        fill_nan(t->out, nq), fill_nan(t->mass, (size_t)c->n_head);
        emu_attention(&a, splits[k]);
        bad += compare("out", c->name, splits[k], t->out, t->out_ref, nq, c->n_head,
                       c->head_dim, quiet, worst);
        if (c->mass)
            bad += compare("sink_mass", c->name, splits[k], t->mass, t->mass_ref,
                           (size_t)c->n_head, c->n_head, 1, quiet, worst);
    }
    return bad;
}

static const struct attn_case cases[] = {
    /* name                n_q n_kv  heads kv  hd  sink two_q shuf  mass  kv type     windows */
    {"decode-gqa4-f16",    1, 1000, 32, 8, 128, 4, true, true, true, ANC_DT_F16, SLIDING, 0},
    {"decode-gqa8-f32",    1, 777, 32, 4, 64, 0, false, false, true, ANC_DT_F32, CAUSAL, 0},
    {"decode-gqa4-hd80",   1, 300, 16, 4, 80, 4, false, true, true, ANC_DT_F32, SLIDING, 0},
    {"long-gqa8-f16",      2, 2500, 32, 4, 128, 4, true, true, true, ANC_DT_F16, SLIDING, 0},
    {"mha-hd80-nomass",    5, 77, 8, 8, 80, 4, false, true, false, ANC_DT_F32, SLIDING, 0},
    {"mqa-f16",            3, 129, 8, 1, 128, 4, true, false, true, ANC_DT_F16, MIXED, 0},
    {"group64-chunks",     4, 50, 64, 1, 64, 4, true, true, true, ANC_DT_F32, MIXED, 0},
    {"hd512-chunks-f16",   2, 45, 16, 2, 512, 1, true, false, true, ANC_DT_F16, CAUSAL, 0},
    {"odd-hd33-gqa3",      4, 61, 6, 2, 33, 2, false, true, true, ANC_DT_F16, MIXED, 0},
    {"more-sinks-than-kv", 3, 3, 4, 2, 24, 4, true, false, true, ANC_DT_F32, MIXED, 0},
    {"sees-nothing",       3, 20, 4, 1, 64, 0, false, true, true, ANC_DT_F32, NOTHING, 0},
    {"prefill-causal",     17, 40, 12, 4, 64, 4, true, true, true, ANC_DT_F32, CAUSAL, 0},
    {"prefill-mixed-f16",  9, 150, 8, 2, 128, 4, true, true, true, ANC_DT_F16, MIXED, 0},
    {"one-entry",          1, 1, 4, 4, 64, 0, false, false, true, ANC_DT_F32, CAUSAL, 0},
    /* soft-capped scores (Gemma 2: head_dim 256, cap 50 on real models;
       small caps here so that tanh bends the scores) */
    {"softcap-gqa2-hd256", 1, 300, 8, 4, 256, 4, true, true, true, ANC_DT_F16, SLIDING, 0.5f},
    {"softcap-prefill",    12, 60, 4, 2, 32, 0, false, true, true, ANC_DT_F32, CAUSAL, 0.3f},
    {"softcap-mixed-mqa",  5, 129, 8, 1, 64, 4, true, false, true, ANC_DT_F16, MIXED, 1.0f},
    {"softcap-wide",       2, 700, 16, 8, 128, 2, true, true, true, ANC_DT_F32, SLIDING, 50.0f},
};

static void test_attention(void)
{
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct attn_case *c = &cases[ci];
        struct attn_data t;
        make_data(c, &t);
        /* n_split: 1, 2, 7, more than n_kv, and a decode-like one */
        int32_t splits[5] = {1, 2, 7, c->n_kv + 5, (c->n_kv + 63) / 64 + 1};
        double worst = 0;
        int bad = run_case(c, &t, splits, 5, false, &worst);
        CHECK_MSG(bad == 0, "attention case %s", c->name);
        char cap[32] = "";
        if (c->softcap > 0) snprintf(cap, sizeof cap, " softcap %g", (double)c->softcap);
        printf("%s %-20s n_q %2d n_kv %4d heads %2d/%d hd %3d sinks %d%s%s %s%s: "
               "n_split 1,2,7,%d,%d: worst error %.2f of tolerance\n",
               bad ? "FAIL" : "ok  ", c->name, c->n_q, c->n_kv, c->n_head, c->n_kv_head,
               c->head_dim, c->n_sink, c->two_q ? " q_sink" : "", c->shuffle ? " shuffled" : "",
               anc_dtype_get(c->kv_type)->name, cap, splits[3], splits[4], worst);
        free_data(&t);
    }
}

/* The comparison can fail: a replay that scores sinks with q instead of
 * q_sink, or an output off by 1e-4 relative, must be caught. */
static void test_negative_controls(void)
{
    const struct attn_case *c = &cases[0];
    struct attn_data t;
    make_data(c, &t);
    size_t nq = (size_t)c->n_q * c->n_head * c->head_dim;
    double worst = 0;
    int32_t split = 7;
    struct anc_attn_args a = t.a;
    a.out = t.out_ref, a.sink_mass = t.mass_ref;
    ref_attention(&a);
    a.out = t.out, a.sink_mass = t.mass, a.q_sink = NULL;
    emu_attention(&a, split);
    int bad = compare("out", c->name, split, t.out, t.out_ref, nq, c->n_head, c->head_dim, true,
                      &worst);
    CHECK_MSG(bad > 0, "dropping q_sink went unnoticed");
    a.q_sink = t.a.q_sink;
    emu_attention(&a, split);
    size_t big = 0; /* the largest output, so 1e-4 of it is far above the tolerance */
    for (size_t k = 0; k < nq; k++)
        if (fabsf(t.out_ref[k]) > fabsf(t.out_ref[big])) big = k;
    t.out[big] *= 1.0f + 1e-4f;
    bad = compare("out", c->name, split, t.out, t.out_ref, nq, c->n_head, c->head_dim, true,
                  &worst);
    CHECK_MSG(bad == 1, "a 1e-4 relative error went unnoticed");
    free_data(&t);
    /* a replay that forgets the soft-cap of a soft-capped case */
    int n_cap = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        c = &cases[ci];
        if (!(c->softcap > 0)) continue;
        make_data(c, &t);
        nq = (size_t)c->n_q * c->n_head * c->head_dim;
        a = t.a;
        a.out = t.out_ref, a.sink_mass = t.mass_ref;
        ref_attention(&a);
        a.out = t.out, a.sink_mass = t.mass, a.softcap = 0.0f;
        emu_attention(&a, 2);
        bad = compare("out", c->name, 2, t.out, t.out_ref, nq, c->n_head, c->head_dim, true,
                      &worst);
        CHECK_MSG(bad > 0, "%s: dropping the soft-cap went unnoticed", c->name);
        n_cap++;
        free_data(&t);
    }
    CHECK(n_cap >= 4);
    printf("negative controls: a missing q_sink, a 1e-4 relative error and a forgotten "
           "soft-cap (%d cases) are all caught\n", n_cap);
}

int main(void)
{
    cpu_ops_init();
    test_block_plan_fits();
    test_split_plan();
    test_visibility_plan();
    test_online_softmax();
    test_attention();
    test_negative_controls();
    test_f16_bits();
    if (test_failures) fprintf(stderr, "test_cuda_dev_attn: %d check(s) failed\n", test_failures);
    TEST_EXIT();
}
