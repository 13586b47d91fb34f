/* cpu_backend.c — the CPU backend: the reference ops of cpu_ops.c, cut
 * into chunks that a thread pool's threads take as they come (rows for
 * matmul, (query, kv head) pairs or cache ranges for attention, tokens or
 * cache lines for the rest). Depends on kernels/ only. */
#include "backend.h"
#include "cpu_ops.h"
#include "cpu_train.h"
#include "quant.h"
#include "threadpool.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct cpu_priv {
    struct threadpool *pool;
    float *scores;      /* [n_threads][scores_cap] attention scratch */
    int64_t scores_cap;
    uint8_t *xq;        /* quantised activations for matmul */
    size_t xq_cap;
    uint8_t *xbad;      /* [xbad_cap] per token: activations could not be quantised */
    size_t xbad_cap;
    uint8_t *mm_scratch; /* [n_threads][mm_each] for the multi-token kernels */
    size_t mm_each;
    struct cpu_attn_part *parts; /* [parts_cap] split attention's partial results */
    float *part_o;       /* [parts_cap][part_o_each] their unnormalised outputs */
    int64_t parts_cap, part_o_each;
};

const char *anc_backend_cpu_isa(void) { return cpu_kernels_get()->isa; }

bool anc_backend_cpu_supports(uint32_t type)
{
    const struct anc_dtype_info *d = anc_dtype_get(type);
    return d && d->computable;
}

static struct cpu_priv *priv_of(struct anc_backend *be) { return be->priv; }
struct threadpool *cpu_backend_pool(struct anc_backend *be) { return priv_of(be)->pool; }

/* Buffers are zero-filled. Large ones (caches sized for the whole window)
 * come straight from mmap: the kernel's zero pages cost nothing until
 * written, so start-up does not clear them and the process's resident
 * memory grows with what the cache really holds. Each buffer carries its
 * size and origin in the 64 bytes before it. */
#define CPU_ALLOC_HDR 64
#define CPU_ALLOC_MMAP_MIN ((size_t)1 << 20)
struct alloc_hdr {
    size_t mapped;   /* bytes mapped (0: from posix_memalign) */
    void *base;      /* what to free or unmap */
};

static void *cpu_alloc(struct anc_backend *be, size_t bytes)
{
    (void)be;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || rounded > SIZE_MAX - 2 * 4096) return NULL;
    if (rounded >= CPU_ALLOC_MMAP_MIN) {
        size_t page = 4096, len = rounded + page;
        void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return NULL;
        uint8_t *p = (uint8_t *)base + page;
        struct alloc_hdr *h = (struct alloc_hdr *)(p - CPU_ALLOC_HDR);
        h->mapped = len;
        h->base = base;
        return p;
    }
    void *base = NULL;
    if (posix_memalign(&base, 64, rounded + CPU_ALLOC_HDR) != 0) return NULL;
    memset(base, 0, rounded + CPU_ALLOC_HDR);
    uint8_t *p = (uint8_t *)base + CPU_ALLOC_HDR;
    struct alloc_hdr *h = (struct alloc_hdr *)(p - CPU_ALLOC_HDR);
    h->mapped = 0;
    h->base = base;
    return p;
}

static void cpu_free(struct anc_backend *be, void *p)
{
    (void)be;
    if (!p) return;
    const struct alloc_hdr *h = (const struct alloc_hdr *)((uint8_t *)p - CPU_ALLOC_HDR);
    if (h->mapped) munmap(h->base, h->mapped);
    else free(h->base);
}

/* Weights stay in the file's mapping: only the type is checked. */
static bool cpu_prepare(struct anc_backend *be, struct anc_weight *w, char *err, size_t errlen)
{
    (void)be;
    if (anc_backend_cpu_supports(w->type)) return true;
    const struct anc_dtype_info *d = anc_dtype_get(w->type);
    snprintf(err, errlen, "the CPU backend cannot compute with %s weights", d ? d->name : "unknown");
    return false;
}

static void cpu_copy(struct anc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    memmove(dst, src, bytes);
}

static int32_t cpu_argmax(struct anc_backend *be, const float *x, int32_t n)
{
    (void)be;
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i])) best = i;
    return best;
}

static void cpu_mem(struct anc_backend *be, struct anc_backend_mem *out)
{
    (void)be;
    memset(out, 0, sizeof *out); /* buffers are counted by their owners on the CPU */
}

/* ---- matmul: split output rows across threads ----------------------- */
/* Activations are quantised once per call to the type the weight's
 * integer dot product pairs with (quant_vec_dot_type); float weights use
 * float activations. Then each thread takes a contiguous range of rows and
 * hands it to the table's matrix kernel (mm_q8/mm_f), which
 * - for one token (decode) streams the rows once, with the activations laid
 *   out once per call;
 * - for several tokens (prefill) unpacks each panel of rows once and
 *   multiplies it with every token.
 * Without one (the portable table), rows go in tiles of MM_TILE, every token
 * per tile, so the tile's weights stay in L1 while the activations stream
 * by. */
#define MM_TILE 8
#define MM_PANEL 16  /* row ranges of the mm kernels start at multiples of this */

struct matmul_job {
    float *y;
    const struct anc_weight *w;
    const float *x;
    int32_t n_tok;
    const uint8_t *xq;        /* quantised activations, or NULL */
    size_t xq_row;            /* bytes per token in xq */
    uint32_t vt;              /* activation type */
    const struct cpu_kernels *k;
    uint8_t *xbad;            /* [n_tok] set where quantisation failed */
    uint8_t *scratch;         /* [nth][scratch_each], or NULL */
    size_t scratch_each;
};

static bool use_mm(const struct matmul_job *j)
{
    if (!j->scratch) return false;
    return j->xq ? j->k->mm_q8[j->w->type] != NULL : j->k->mm_f[j->w->type] != NULL;
}

/* rows [lo, hi) of the output; lo is a multiple of MM_PANEL (the align is) */
static void matmul_worker(void *ctx, long lo, long hi, int ith)
{
    struct matmul_job *j = ctx;
    const struct anc_weight *w = j->w;
    size_t row_bytes = anc_dtype_row_bytes(w->type, (uint64_t)w->cols);
    const uint8_t *base = w->data;
    if (use_mm(j)) {
        void *scratch = j->scratch + (size_t)ith * j->scratch_each;
        if (j->xq)
            j->k->mm_q8[w->type](j->y + lo, w->rows, base + (size_t)lo * row_bytes, row_bytes, hi - lo,
                                 j->xq, j->xq_row, j->n_tok, w->cols, scratch);
        else
            j->k->mm_f[w->type](j->y + lo, w->rows, base + (size_t)lo * row_bytes, row_bytes, hi - lo,
                                j->x, w->cols, j->n_tok, w->cols, scratch);
        return;
    }
    cpu_dot_f_fn dot_f = j->k->dot_f[w->type];
    cpu_dot_q8_fn dot_q = j->k->dot_q8[w->type];
    if (j->n_tok == 1) { /* decode: stream the rows once */
        if (j->xq)
            for (long r = lo; r < hi; r++) j->y[r] = dot_q(base + (size_t)r * row_bytes, j->xq, w->cols);
        else
            for (long r = lo; r < hi; r++) j->y[r] = dot_f(base + (size_t)r * row_bytes, j->x, w->cols);
        return;
    }
    for (long r0 = lo; r0 < hi; r0 += MM_TILE) {
        long r1 = r0 + MM_TILE < hi ? r0 + MM_TILE : hi;
        for (int32_t t = 0; t < j->n_tok; t++) {
            float *yt = j->y + (size_t)t * w->rows;
            if (j->xq) {
                const void *xt = j->xq + (size_t)t * j->xq_row;
                for (long r = r0; r < r1; r++) yt[r] = dot_q(base + (size_t)r * row_bytes, xt, w->cols);
            } else {
                const float *xt = j->x + (size_t)t * w->cols;
                for (long r = r0; r < r1; r++) yt[r] = dot_f(base + (size_t)r * row_bytes, xt, w->cols);
            }
        }
    }
}

/* The table's quantiser writes quant_quantize_row's bytes. It fails only
 * for non-finite activations (or a scale past half precision), and then
 * fills the row with 0xff bytes, whose NaN scales make every dot product
 * with it NaN. The token is also marked, and cpu_matmul writes NaN over its
 * outputs itself, so "bad input -> NaN output" does not depend on how a
 * SIMD kernel treats the poisoned bytes. */
static void quantize_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct matmul_job *j = ctx;
    for (long t = lo; t < hi; t++)
        j->xbad[t] = !j->k->quant_x[j->vt](j->x + (size_t)t * j->w->cols,
                                           (uint8_t *)j->xq + (size_t)t * j->xq_row, j->w->cols);
}

/* Grow *buf to at least need bytes (contents not kept); false when out of memory. */
static bool grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    void *p = NULL;
    if (posix_memalign(&p, 64, (need + 63) & ~(size_t)63) != 0) return false;
    free(*buf);
    *buf = p;
    *cap = need;
    return true;
}

static void cpu_matmul(struct anc_backend *be, float *y, const struct anc_weight *w,
                       const float *x, int32_t n_tok)
{
    struct cpu_priv *p = priv_of(be);
    struct matmul_job j = {.y = y, .w = w, .x = x, .n_tok = n_tok, .k = cpu_kernels_get()};
    uint32_t vt = quant_vec_dot_type(w->type);
    bool quantise = vt != ANC_DT_F32 && vt != QUANT_NO_TYPE;
    /* a few KB per token and one panel per thread: out of memory here is fatal */
    if (quantise) {
        size_t row = anc_dtype_row_bytes(vt, (uint64_t)w->cols);
        if (!grow(&p->xq, &p->xq_cap, row * (size_t)n_tok) ||
            !grow(&p->xbad, &p->xbad_cap, (size_t)n_tok))
            abort();
        j.xq = p->xq;
        j.xq_row = row;
        j.vt = vt;
        j.xbad = p->xbad;
    }
    /* one scratch per thread for the mm kernels, grown to the largest call */
    size_t each = (cpu_mm_scratch_bytes(w->cols, n_tok) + 63) & ~(size_t)63;
    size_t cap = p->mm_each * (size_t)be->n_threads;
    if (each > p->mm_each) {
        if (!grow(&p->mm_scratch, &cap, each * (size_t)be->n_threads)) abort();
        p->mm_each = each;
    }
    j.scratch = p->mm_scratch;
    j.scratch_each = p->mm_each;
    if (quantise) {
        if (n_tok == 1) quantize_worker(&j, 0, 1, 0);
        else threadpool_for(p->pool, n_tok, 1, 1, 0, quantize_worker, &j);
    }
    /* chunks of whole panels (MM_PANEL is a multiple of MM_TILE) */
    threadpool_for(p->pool, w->rows, MM_PANEL, 1, 0, matmul_worker, &j);
    if (quantise)
        for (int32_t t = 0; t < n_tok; t++)
            if (j.xbad[t])
                for (int64_t r = 0; r < w->rows; r++) y[(size_t)t * w->rows + r] = NAN;
}

/* ---- per-token ops: split tokens across threads --------------------- */
struct tok_job {
    float *y;
    const float *x;
    const float *w;
    int32_t n;
    int32_t n_tok;
    float eps;
    const struct anc_rope_table *tab;
    const int32_t *pos;
    int32_t n_heads, head_dim;
};

/* per-token ops of a prompt batch: a few tokens per chunk */
static void tok_run(struct anc_backend *be, threadpool_fn fn, struct tok_job *j)
{
    struct threadpool *tp = priv_of(be)->pool;
    threadpool_for(tp, j->n_tok, 1, 1, 0, fn, j);
}

static void rmsnorm_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct tok_job *j = ctx;
    for (long t = lo; t < hi; t++)
        cpu_rmsnorm_ref(j->y + t * j->n, j->x + t * j->n, j->w, j->n, j->eps);
}

static void cpu_rmsnorm(struct anc_backend *be, float *y, const float *x,
                        const struct anc_weight *wt, int32_t n, int32_t n_tok, float eps)
{
    const float *w = wt->data;
    struct tok_job j = {.y = y, .x = x, .w = w, .n = n, .n_tok = n_tok, .eps = eps};
    if (n_tok == 1)
        cpu_rmsnorm_ref(y, x, w, n, eps);
    else
        tok_run(be, rmsnorm_worker, &j);
}

static void rope_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct tok_job *j = ctx;
    size_t stride = (size_t)j->n_heads * j->head_dim;
    for (long t = lo; t < hi; t++)
        cpu_rope_ref(j->y + t * stride, j->n_heads, j->head_dim, j->tab, j->pos[t]);
}

static void cpu_rope(struct anc_backend *be, float *x, int32_t n_tok, int32_t n_heads,
                     int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos)
{
    struct tok_job j = {.y = x, .n_tok = n_tok, .tab = tab, .pos = pos,
                        .n_heads = n_heads, .head_dim = head_dim};
    if (n_tok < 8) {
        for (int32_t t = 0; t < n_tok; t++)
            cpu_rope_ref(x + (size_t)t * n_heads * head_dim, n_heads, head_dim, tab, pos[t]);
    } else {
        tok_run(be, rope_worker, &j);
    }
}

/* ---- attention: split (query, key/value head) pairs ------------------ */
/* Decoding has one query, and a model may have one to a few key/value
 * heads (Gemma 3 270M: 1, SmolLM2: 3): fewer pairs than threads, or pairs
 * that do not divide evenly among them. Then the cache entries are split
 * into parts too (flash-decoding), each at least ATTN_PART_MIN entries so
 * the merge stays cheap, and the parts merged. */
#define ATTN_PART_MIN 128
#define ATTN_CHUNKS_PER_THREAD 16

struct attn_job {
    const struct anc_attn_args *a;
    struct cpu_priv *p;
    int32_t n_parts;       /* parts per (query, head) pair; 1 = no split */
};

/* work items [lo, hi): (query, kv head) pairs, or with a split, parts of them */
static void attention_worker(void *ctx, long lo, long hi, int ith)
{
    struct attn_job *j = ctx;
    const struct anc_attn_args *a = j->a;
    float *scores = j->p->scores + (size_t)ith * j->p->scores_cap;
    if (j->n_parts == 1) {
        for (long u = lo; u < hi; u++)
            cpu_attention_group(a, (int32_t)(u / a->n_kv_head), (int32_t)(u % a->n_kv_head), scores);
        return;
    }
    int32_t np = j->n_parts;
    for (long w = lo; w < hi; w++) {
        long u = w / np;
        int32_t c = (int32_t)(w % np);
        int32_t j0 = (int32_t)((int64_t)a->n_kv * c / np), j1 = (int32_t)((int64_t)a->n_kv * (c + 1) / np);
        cpu_attention_range(a, (int32_t)(u / a->n_kv_head), (int32_t)(u % a->n_kv_head), j0, j1,
                            scores, &j->p->parts[w]);
    }
}

/* Parts per (query, head) pair: enough work items for every thread when
 * the pairs are few, never parts shorter than ATTN_PART_MIN. */
static int32_t attention_parts(const struct anc_attn_args *a, int nth)
{
    int64_t pairs = (int64_t)a->n_q * a->n_kv_head;
    if (nth <= 1 || pairs % nth == 0 || pairs >= 4 * (int64_t)nth) return 1;
    int64_t want = (4 * (int64_t)nth + pairs - 1) / pairs;
    int64_t by_len = a->n_kv / ATTN_PART_MIN;
    if (want > by_len) want = by_len;
    if (want > CPU_ATTN_MAX_PARTS) want = CPU_ATTN_MAX_PARTS;
    return want > 1 ? (int32_t)want : 1;
}

/* Room for the split's partial results; false when out of memory. */
static bool parts_ensure(struct cpu_priv *p, int64_t n, int64_t o_each)
{
    if (n <= p->parts_cap && o_each <= p->part_o_each) return true;
    int64_t cap = n > p->parts_cap ? n : p->parts_cap;
    int64_t each = o_each > p->part_o_each ? o_each : p->part_o_each;
    struct cpu_attn_part *parts = realloc(p->parts, (size_t)cap * sizeof *parts);
    if (!parts) return false;
    p->parts = parts;
    float *o = realloc(p->part_o, (size_t)cap * (size_t)each * sizeof(float));
    if (!o) return false;
    p->part_o = o;
    p->parts_cap = cap;
    p->part_o_each = each;
    return true;
}

static void cpu_attention(struct anc_backend *be, const struct anc_attn_args *a)
{
    struct cpu_priv *p = priv_of(be);
    int64_t group = a->n_head / a->n_kv_head;
    int64_t need = (int64_t)a->n_kv * group;
    if (need > p->scores_cap) {
        int64_t cap = need < 8192 ? 8192 : need * 2;
        float *s = realloc(p->scores, (size_t)cap * be->n_threads * sizeof(float));
        if (!s) abort(); /* the engine sizes caches up front; this is a bug */
        p->scores = s;
        p->scores_cap = cap;
    }
    struct attn_job j = {a, p, attention_parts(a, be->n_threads)};
    int64_t n_work = (int64_t)a->n_q * a->n_kv_head * j.n_parts;
    if (j.n_parts > 1 && !parts_ensure(p, n_work, group * a->head_dim)) j.n_parts = 1;
    if (j.n_parts > 1)
        for (int64_t w = 0; w < n_work; w++) p->parts[w].o = p->part_o + (size_t)w * p->part_o_each;
    /* items differ in cost (a causal prefill's later queries see more
       keys): small chunks, so the threads even out the load */
    threadpool_for(p->pool, n_work, 1, 1, ATTN_CHUNKS_PER_THREAD, attention_worker, &j);
    if (j.n_parts == 1) return;
    for (int64_t u = 0; u < (int64_t)a->n_q * a->n_kv_head; u++)
        cpu_attention_merge(a, (int32_t)(u / a->n_kv_head), (int32_t)(u % a->n_kv_head),
                            p->parts + u * j.n_parts, j.n_parts);
}

/* ---- element-wise ops: large ones (a prompt batch) split across threads */
#define EW_SPLIT_MIN 16384 /* elements; below this one thread is faster */

struct ew_job {
    float *out;
    const float *a, *b;
    int64_t n;
    void (*fn)(float *out, const float *a, const float *b, int64_t n);
};

/* cache lines [lo, hi) of the arrays (64 floats each) */
static void ew_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct ew_job *j = ctx;
    int64_t e0 = (int64_t)lo * 64, e1 = (int64_t)hi * 64 < j->n ? (int64_t)hi * 64 : j->n;
    if (e0 < e1) j->fn(j->out + e0, j->a + e0, j->b ? j->b + e0 : NULL, e1 - e0);
}

static void ew_run(struct anc_backend *be, void (*fn)(float *, const float *, const float *, int64_t),
                   float *out, const float *a, const float *b, int64_t n)
{
    if (n < EW_SPLIT_MIN || be->n_threads < 2) {
        fn(out, a, b, n);
        return;
    }
    struct ew_job j = {out, a, b, n, fn};
    struct threadpool *tp = priv_of(be)->pool;
    long lines = (long)((n + 63) / 64);
    threadpool_for(tp, lines, 1, EW_SPLIT_MIN / 64 / 2, 0, ew_worker, &j);
}

static void add_fn(float *y, const float *x, const float *unused, int64_t n)
{
    (void)unused;
    cpu_add_ref(y, x, n);
}

static void cpu_swiglu(struct anc_backend *be, float *out, const float *gate, const float *up,
                       int64_t n)
{
    ew_run(be, cpu_swiglu_ref, out, gate, up, n);
}

static void cpu_add(struct anc_backend *be, float *y, const float *x, int64_t n)
{
    ew_run(be, add_fn, y, x, NULL, n);
}

static void cpu_geglu(struct anc_backend *be, float *out, const float *gate, const float *up,
                      int64_t n)
{
    ew_run(be, cpu_geglu_ref, out, gate, up, n);
}

static void cpu_add_rows(struct anc_backend *be, float *y, const struct anc_weight *b, int64_t n,
                         int32_t n_tok)
{
    (void)be;
    cpu_add_rows_ref(y, b->data, n, n_tok);
}

static void cpu_scale(struct anc_backend *be, float *x, float s, int64_t n)
{
    (void)be;
    cpu_scale_ref(x, s, n);
}

static void cpu_softcap(struct anc_backend *be, float *x, float cap, int64_t n)
{
    (void)be;
    cpu_softcap_ref(x, cap, n);
}

static void cpu_embed(struct anc_backend *be, float *out, const struct anc_weight *table,
                      const int32_t *tokens, int32_t n_tok)
{
    (void)be;
    size_t row_bytes = anc_dtype_row_bytes(table->type, (uint64_t)table->cols);
    for (int32_t t = 0; t < n_tok; t++)
        cpu_dequant_row(table->type, (const uint8_t *)table->data + (size_t)tokens[t] * row_bytes,
                        out + (size_t)t * table->cols, table->cols);
}

static void cpu_store_rows(struct anc_backend *be, void *base, uint32_t type, const float *src,
                           const int32_t *rows, int32_t n, int64_t row_len)
{
    (void)be;
    size_t row_bytes = anc_dtype_row_bytes(type, (uint64_t)row_len);
    for (int32_t i = 0; i < n; i++) {
        uint8_t *dst = (uint8_t *)base + (size_t)rows[i] * row_bytes;
        const float *x = src + (size_t)i * row_len;
        if (type == ANC_DT_F16) {
            uint16_t *d = (uint16_t *)dst;
            for (int64_t c = 0; c < row_len; c++) d[c] = anc_f32_to_f16(x[c]);
        } else {
            memcpy(dst, x, (size_t)row_len * sizeof(float));
        }
    }
}

static void cpu_load_rows(struct anc_backend *be, float *dst, const void *base, uint32_t type,
                          const int32_t *rows, int32_t n, int64_t row_len)
{
    (void)be;
    size_t row_bytes = anc_dtype_row_bytes(type, (uint64_t)row_len);
    for (int32_t i = 0; i < n; i++)
        cpu_dequant_row(type, (const uint8_t *)base + (size_t)rows[i] * row_bytes,
                        dst + (size_t)i * row_len, row_len);
}

static void cpu_copy_rows(struct anc_backend *be, void *dst, const void *src, size_t row_bytes,
                          const int32_t *src_rows, int32_t n)
{
    (void)be;
    for (int32_t i = 0; i < n; i++)
        memcpy((uint8_t *)dst + (size_t)i * row_bytes,
               (const uint8_t *)src + (size_t)src_rows[i] * row_bytes, row_bytes);
}

/* ANCORA_POOL_STATS=1: what the thread pool did, on stderr at the end
 * (for tuning the pool; see docs/performance.md) */
static void pool_stats_report(struct threadpool *tp)
{
    const char *e = getenv("ANCORA_POOL_STATS");
    if (!e || !*e || *e == '0') return;
    struct threadpool_stats st;
    threadpool_get_stats(tp, &st);
    fprintf(stderr,
            "pool: %d threads, %llu jobs, %llu chunks (%llu by the caller), %llu late arrivals, "
            "%llu worker sleeps, %llu caller sleeps, caller waited %.1f ms\n",
            threadpool_size(tp), (unsigned long long)st.jobs, (unsigned long long)st.chunks,
            (unsigned long long)st.chunks_caller, (unsigned long long)st.late,
            (unsigned long long)st.sleeps, (unsigned long long)st.caller_sleeps,
            st.caller_wait_ns / 1e6);
}

static void cpu_destroy(struct anc_backend *be)
{
    struct cpu_priv *p = priv_of(be);
    pool_stats_report(p->pool);
    threadpool_free(p->pool);
    free(p->scores);
    free(p->xq);
    free(p->xbad);
    free(p->mm_scratch);
    free(p->parts);
    free(p->part_o);
    free(p);
    free(be);
}

static const struct anc_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .prepare = cpu_prepare,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .download = cpu_copy,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .geglu = cpu_geglu,
    .add_rows = cpu_add_rows,
    .scale = cpu_scale,
    .softcap = cpu_softcap,
    .embed = cpu_embed,
    .store_rows = cpu_store_rows,
    .load_rows = cpu_load_rows,
    .copy_rows = cpu_copy_rows,
    .argmax = cpu_argmax,
    .mem = cpu_mem,
    .upload = cpu_train_upload,
    .zero = cpu_train_zero,
    .matmul_bwd_x = cpu_train_matmul_bwd_x,
    .matmul_bwd_w = cpu_train_matmul_bwd_w,
    .rmsnorm_bwd = cpu_train_rmsnorm_bwd,
    .rope_bwd = cpu_train_rope_bwd,
    .attn_train = cpu_train_attn,
    .attn_train_bwd = cpu_train_attn_bwd,
    .swiglu_bwd = cpu_train_swiglu_bwd,
    .embed_bwd = cpu_train_embed_bwd,
    .cross_entropy = cpu_train_cross_entropy,
    .sum_sq = cpu_train_sum_sq,
    .adamw = cpu_train_adamw,
};

struct anc_backend *anc_backend_cpu_new(int n_threads)
{
    cpu_ops_init();
    if (n_threads <= 0) n_threads = anc_cpu_count();
    /* on 2 CPUs, -t 3 decoded SmolLM2 ~10 % slower than -t 2 (a thread
       always waiting for a turn holds chunks the others need) */
    if (n_threads > anc_cpu_available()) n_threads = anc_cpu_available();
    struct anc_backend *be = calloc(1, sizeof *be);
    struct cpu_priv *p = calloc(1, sizeof *p);
    if (!be || !p) goto fail;
    p->pool = threadpool_new(n_threads);
    if (!p->pool) goto fail;
    be->ops = &cpu_ops;
    be->n_threads = threadpool_size(p->pool);
    be->priv = p;
    return be;
fail:
    free(p);
    free(be);
    return NULL;
}

void anc_backend_free(struct anc_backend *be)
{
    if (be) be->ops->destroy(be);
}
