/* cpu_train.c — the CPU backend's training ops: the backward of each
 * forward op (backend.h, "Training"), training attention with S²-Attn
 * groups, cross-entropy and AdamW.
 *
 * Every op here is deterministic whatever the thread count: each output
 * element is summed by one thread in a fixed order (no per-thread partial
 * sums reduced in arrival order), so a training run with -t 1 and one with
 * -t 8 give the same bits, and a resumed run the same adapter as an
 * uninterrupted one. tests/test_backward.c checks each op against float64
 * finite differences of a naive forward.
 *
 * Depends on backend.h, cpu_ops.h and threadpool.h; never on core/. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_ops.h"
#include "cpu_train.h"
#include "threadpool.h"

/* Out of memory for an op's work area: its output becomes NaN, which the
 * trainer's finite-loss check turns into a clean stop. */
static void poison(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
}

/* ---- matmul: gradient to the input ----------------------------------- */

/* Few tokens (below WT_MIN_TOKENS): each chunk of tokens unpacks every
 * weight row once and applies it to this many tokens' dx rows (which stay
 * in cache). */
#define BWD_TOK_BLOCK 16

struct mm_bwd_job {
    float *dx;
    const struct anc_weight *w;
    const float *dy;
    int32_t n_tok;
    bool accumulate;
    float *rowbuf;        /* [threads][cols] dequantised rows */
    const struct cpu_kernels *k;
};

static void mm_bwd_x_worker(void *ctx, long lo, long hi, int ith)
{
    struct mm_bwd_job *j = ctx;
    const struct anc_weight *w = j->w;
    int64_t rows = w->rows, cols = w->cols;
    size_t row_bytes = anc_dtype_row_bytes(w->type, (uint64_t)cols);
    float *buf = j->rowbuf + (size_t)ith * cols;
    if (!j->accumulate) memset(j->dx + (size_t)lo * cols, 0, (size_t)(hi - lo) * cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = buf;
        const uint8_t *src = (const uint8_t *)w->data + (size_t)r * row_bytes;
        if (w->type == ANC_DT_F32) wr = (const float *)src;
        else cpu_dequant_row(w->type, src, buf, cols);
        for (long t = lo; t < hi; t++) {
            float g = j->dy[(size_t)t * rows + r];
            if (g != 0.0f) j->k->axpy(j->dx + (size_t)t * cols, g, wr, cols);
        }
    }
}

/* Many tokens: W^T once, as an f32 matrix [cols][rows] (dequantised and
 * transposed in tiles of WT_TILE rows), then the forward matmul's kernels
 * compute dx = W^T dy with register accumulation; the row-by-row axpys
 * above would read and write every dx row once per weight row. */
#define WT_TILE 16
#define WT_MIN_TOKENS 32

struct wt_job {
    const struct anc_weight *w;
    float *wt;            /* [cols][rows] */
    float *tile;          /* [threads][WT_TILE][cols] */
};

static void wt_worker(void *ctx, long lo, long hi, int ith)
{
    struct wt_job *j = ctx;
    const struct anc_weight *w = j->w;
    int64_t rows = w->rows, cols = w->cols;
    size_t row_bytes = anc_dtype_row_bytes(w->type, (uint64_t)cols);
    float *tile = j->tile + (size_t)ith * WT_TILE * cols;
    for (long r0 = lo; r0 < hi; r0 += WT_TILE) {
        long nr = hi - r0 < WT_TILE ? hi - r0 : WT_TILE;
        for (long i = 0; i < nr; i++)
            cpu_dequant_row(w->type, (const uint8_t *)w->data + (size_t)(r0 + i) * row_bytes,
                            tile + (size_t)i * cols, cols);
        for (int64_t c = 0; c < cols; c++) {
            float *dst = j->wt + (size_t)c * rows + r0;
            for (long i = 0; i < nr; i++) dst[i] = tile[(size_t)i * cols + c];
        }
    }
}

void cpu_train_matmul_bwd_x(struct anc_backend *be, float *dx, const struct anc_weight *w,
                            const float *dy, int32_t n_tok, bool accumulate)
{
    struct threadpool *tp = cpu_backend_pool(be);
    int nth = threadpool_size(tp);
    size_t n_dx = (size_t)n_tok * (size_t)w->cols;
    if (n_tok >= WT_MIN_TOKENS) {
        struct wt_job wj = {w, malloc((size_t)w->rows * (size_t)w->cols * sizeof(float)),
                            malloc((size_t)nth * WT_TILE * (size_t)w->cols * sizeof(float))};
        float *tmp = accumulate ? malloc(n_dx * sizeof(float)) : dx;
        if (wj.wt && wj.tile && tmp) {
            threadpool_for(tp, (long)w->rows, WT_TILE, 1, 0, wt_worker, &wj);
            struct anc_weight wt = {.data = wj.wt, .type = ANC_DT_F32, .rows = w->cols, .cols = w->rows};
            be->ops->matmul(be, tmp, &wt, dy, n_tok);
            if (accumulate) be->ops->add(be, dx, tmp, (int64_t)n_dx);
        }
        bool ok = wj.wt && wj.tile && tmp;
        free(wj.wt);
        free(wj.tile);
        if (accumulate) free(tmp);
        if (ok) return;
        /* out of memory for the transpose: the row-by-row way below */
    }
    struct mm_bwd_job j = {.dx = dx, .w = w, .dy = dy, .n_tok = n_tok, .accumulate = accumulate,
                           .k = cpu_kernels_get()};
    j.rowbuf = malloc((size_t)nth * (size_t)w->cols * sizeof(float));
    if (!j.rowbuf) {
        poison(dx, (int64_t)n_dx);
        return;
    }
    long block = n_tok >= 2L * nth * BWD_TOK_BLOCK ? BWD_TOK_BLOCK : 1;
    threadpool_for(tp, n_tok, block, 1, 0, mm_bwd_x_worker, &j);
    free(j.rowbuf);
}

/* ---- matmul: gradient to an f32 weight -------------------------------- */

struct mm_bwd_w_job {
    float *dw;
    const float *dy, *x;
    int64_t rows, cols;
    int32_t n_tok;
    const struct cpu_kernels *k;
};

static void mm_bwd_w_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct mm_bwd_w_job *j = ctx;
    for (long r = lo; r < hi; r++) {
        float *dwr = j->dw + (size_t)r * j->cols;
        for (int32_t t = 0; t < j->n_tok; t++) {
            float g = j->dy[(size_t)t * j->rows + r];
            if (g != 0.0f) j->k->axpy(dwr, g, j->x + (size_t)t * j->cols, j->cols);
        }
    }
}

void cpu_train_matmul_bwd_w(struct anc_backend *be, float *dw, const float *dy, const float *x,
                            int64_t rows, int64_t cols, int32_t n_tok)
{
    struct mm_bwd_w_job j = {dw, dy, x, rows, cols, n_tok, cpu_kernels_get()};
    threadpool_for(cpu_backend_pool(be), (long)rows, 1, 1, 0, mm_bwd_w_worker, &j);
}

/* ---- rmsnorm ----------------------------------------------------------- */

/* y = w·x·r, r = (mean(x²) + eps)^(-1/2). With g = dy·w:
 * dx_j = r·g_j − x_j·r³/n·Σ_i g_i x_i;   dw_i = Σ_t dy_i x_i r. */
struct rms_bwd_job {
    float *dx, *dw;
    const float *dy, *x, *w;
    int32_t n, n_tok;
    float eps;
    float *r;             /* [n_tok] r of each token, for dw */
};

static void rms_bwd_x_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct rms_bwd_job *j = ctx;
    int32_t n = j->n;
    for (long t = lo; t < hi; t++) {
        const float *x = j->x + (size_t)t * n, *dy = j->dy + (size_t)t * n;
        float *dx = j->dx + (size_t)t * n;
        double ss = 0.0, gx = 0.0;
        for (int32_t i = 0; i < n; i++) {
            ss += (double)x[i] * x[i];
            gx += (double)dy[i] * j->w[i] * x[i];
        }
        double r = 1.0 / sqrt(ss / n + j->eps);
        double c = r * r * r / n * gx;
        j->r[t] = (float)r;
        for (int32_t i = 0; i < n; i++)
            dx[i] += (float)(r * dy[i] * j->w[i] - c * x[i]);
    }
}

static void rms_bwd_w_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct rms_bwd_job *j = ctx;
    for (long i = lo; i < hi; i++) {
        double s = 0.0;
        for (int32_t t = 0; t < j->n_tok; t++) {
            size_t o = (size_t)t * j->n + i;
            s += (double)j->dy[o] * j->x[o] * j->r[t];
        }
        j->dw[i] += (float)s;
    }
}

void cpu_train_rmsnorm_bwd(struct anc_backend *be, float *dx, float *dw, const float *dy,
                           const float *x, const struct anc_weight *w, int32_t n, int32_t n_tok,
                           float eps)
{
    struct threadpool *tp = cpu_backend_pool(be);
    struct rms_bwd_job j = {dx, dw, dy, x, w->data, n, n_tok, eps, NULL};
    j.r = malloc((size_t)n_tok * sizeof(float));
    if (!j.r) {
        poison(dx, (int64_t)n_tok * n);
        return;
    }
    threadpool_for(tp, n_tok, 1, 1, 0, rms_bwd_x_worker, &j);
    if (dw) threadpool_for(tp, n, 1, 1, 0, rms_bwd_w_worker, &j);
    free(j.r);
}

/* ---- rope -------------------------------------------------------------- */

void cpu_train_rope_bwd(struct anc_backend *be, float *dy, int32_t n_tok, int32_t n_heads,
                        int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos)
{
    (void)be;
    for (int32_t t = 0; t < n_tok; t++) {
        const float *c = tab->cos + (size_t)pos[t] * tab->n_pairs;
        const float *s = tab->sin + (size_t)pos[t] * tab->n_pairs;
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = dy + ((size_t)t * n_heads + h) * head_dim;
            for (int32_t k = 0; k < tab->n_pairs; k++) {
                int32_t i0 = tab->neox ? k : 2 * k;
                int32_t i1 = tab->neox ? k + tab->n_pairs : 2 * k + 1;
                float x0 = v[i0], x1 = v[i1];
                v[i0] = x0 * c[k] + x1 * s[k];
                v[i1] = -x0 * s[k] + x1 * c[k];
            }
        }
    }
}

/* ---- training attention ------------------------------------------------ */

/* The first query/key index a token i sees under head h: its group's start
 * (0 without groups). Shifted heads' groups start at G/2 + kG. */
static int32_t group_lo(const struct anc_attn_train_args *a, int32_t h, int32_t i)
{
    int32_t G = a->group;
    if (G <= 0) return 0;
    if (h < a->n_head / 2) return i - i % G;
    int32_t half = G / 2;
    return i < half ? 0 : half + (i - half) / G * G;
}

/* One past the last token in token i's group under head h. */
static int32_t group_hi(const struct anc_attn_train_args *a, int32_t h, int32_t i)
{
    int32_t G = a->group;
    if (G <= 0) return a->n;
    int32_t end = group_lo(a, h, i) + (h >= a->n_head / 2 && i < G / 2 ? G / 2 : G);
    return end < a->n ? end : a->n;
}

/* Heads laid out for the inner loops: x [n][heads][hd] -> xt [heads][hd][n],
 * so a loop over tokens reads contiguous memory. */
static void transpose_heads(float *xt, const float *x, int32_t n, int32_t heads, int32_t hd)
{
    for (int32_t t = 0; t < n; t++)
        for (int32_t h = 0; h < heads; h++)
            for (int32_t d = 0; d < hd; d++)
                xt[((size_t)h * hd + d) * n + t] = x[((size_t)t * heads + h) * hd + d];
}

/* lse/dsum [n][heads] -> [heads][n] */
static void transpose_rows(float *xt, const float *x, int32_t n, int32_t heads)
{
    for (int32_t t = 0; t < n; t++)
        for (int32_t h = 0; h < heads; h++) xt[(size_t)h * n + t] = x[(size_t)t * heads + h];
}

struct attn_tr_job {
    const struct anc_attn_train_args *a;
    float *kt, *vt;        /* [n_kv_head][hd][n] */
    float *qt, *ot;        /* backward: q and dout as [n_head][hd][n] */
    float *lset, *dsumt;   /* backward: [n_head][n] */
    float *dsum;           /* [n][n_head]: dout·out */
    float *work;           /* [threads][3 n] per-thread rows */
    const struct cpu_kernels *k;
};

#define ATTN_TR_BLOCK 16  /* queries (or keys) per work item */

/* s[j] = sum_d x[d]·yt[d][lo + j], j < len (yt rows of stride n), with
 * the SIMD axpy */
static void scores_row(const struct cpu_kernels *k, float *s, const float *x, const float *yt, int32_t n,
                       int32_t hd, int32_t lo, int32_t len)
{
    memset(s, 0, (size_t)len * sizeof(float));
    for (int32_t d = 0; d < hd; d++) k->axpy(s, x[d], yt + (size_t)d * n + lo, len);
}

/* out[d] = sum_j w[j]·yt[d][lo + j], with the SIMD f32 dot product */
static void weighted_rows(const struct cpu_kernels *k, float *out, const float *w, const float *yt, int32_t n,
                          int32_t hd, int32_t lo, int32_t len)
{
    for (int32_t d = 0; d < hd; d++) out[d] = k->dot_f[ANC_DT_F32](yt + (size_t)d * n + lo, w, len);
}

/* Work item it of (head, block of ATTN_TR_BLOCK tokens) pairs: the head
 * and the tokens [*t0, *t1). */
static void item_span(int32_t n, long it, int32_t *head, int32_t *t0, int32_t *t1)
{
    long blocks = (n + ATTN_TR_BLOCK - 1) / ATTN_TR_BLOCK;
    *head = (int32_t)(it / blocks);
    *t0 = (int32_t)(it % blocks) * ATTN_TR_BLOCK;
    *t1 = *t0 + ATTN_TR_BLOCK < n ? *t0 + ATTN_TR_BLOCK : n;
}

/* One query row of a (head, block of queries) work item. */
struct attn_query {
    int32_t h, i;          /* query head, query token */
    size_t qo;             /* (i, h)'s offset in q, out, dout and dq */
    int32_t p0, len;       /* the keys it sees: p0 .. p0 + len - 1 = i */
    const float *kt, *vt;  /* its kv head's k and v, [hd][n] */
    float *work;           /* this thread's 3 n floats */
};

/* Runs fn on every query of items [lo, hi) (head, block of queries), in
 * order: the forward's and dq's workers. */
static void for_each_query(const struct attn_tr_job *j, long lo, long hi, int ith,
                           void (*fn)(const struct attn_tr_job *j, const struct attn_query *q))
{
    const struct anc_attn_train_args *a = j->a;
    int32_t n = a->n, hd = a->head_dim, q_dim = a->n_head * hd;
    int32_t grp = a->n_head / a->n_kv_head;
    struct attn_query q = {.work = j->work + (size_t)ith * 3 * n};
    for (long it = lo; it < hi; it++) {
        int32_t i0, i1;
        item_span(n, it, &q.h, &i0, &i1);
        int32_t kvh = q.h / grp;
        q.kt = j->kt + (size_t)kvh * hd * n, q.vt = j->vt + (size_t)kvh * hd * n;
        for (q.i = i0; q.i < i1; q.i++) {
            q.qo = (size_t)q.i * q_dim + (size_t)q.h * hd;
            q.p0 = group_lo(a, q.h, q.i), q.len = q.i + 1 - q.p0;
            fn(j, &q);
        }
    }
}

static void attn_fwd_query(const struct attn_tr_job *j, const struct attn_query *q)
{
    const struct anc_attn_train_args *a = j->a;
    int32_t n = a->n, hd = a->head_dim, len = q->len;
    float *s = q->work;
    scores_row(j->k, s, a->q + q->qo, q->kt, n, hd, q->p0, len);
    float m = -INFINITY; /* the largest raw score (scale > 0) */
    for (int32_t k = 0; k < len; k++) m = s[k] > m ? s[k] : m;
    m *= a->scale;
    j->k->exp_affine(s, len, a->scale, m);
    float sum = 0.0f;
    for (int32_t k = 0; k < len; k++) sum += s[k];
    float *o = a->out + q->qo;
    weighted_rows(j->k, o, s, q->vt, n, hd, q->p0, len);
    for (int32_t d = 0; d < hd; d++) o[d] /= sum;
    a->lse[(size_t)q->i * a->n_head + q->h] = m + logf(sum);
}

/* items: (head, block of queries) */
static void attn_fwd_worker(void *ctx, long lo, long hi, int ith)
{
    for_each_query(ctx, lo, hi, ith, attn_fwd_query);
}

/* Per-call layouts and per-thread rows; false when out of memory. */
static bool attn_job_init(struct attn_tr_job *j, struct anc_backend *be, const struct anc_attn_train_args *a,
                          bool backward)
{
    int32_t n = a->n, hd = a->head_dim;
    size_t nk = (size_t)n * a->n_kv_head * hd, nq = (size_t)n * a->n_head * hd, nl = (size_t)n * a->n_head;
    int nth = threadpool_size(cpu_backend_pool(be));
    j->kt = malloc(nk * sizeof(float));
    j->vt = malloc(nk * sizeof(float));
    j->work = malloc((size_t)nth * 3 * n * sizeof(float));
    if (backward) {
        j->qt = malloc(nq * sizeof(float));
        j->ot = malloc(nq * sizeof(float));
        j->lset = malloc(nl * sizeof(float));
        j->dsumt = malloc(nl * sizeof(float));
        j->dsum = malloc(nl * sizeof(float));
    }
    if (!j->kt || !j->vt || !j->work || (backward && (!j->qt || !j->ot || !j->lset || !j->dsumt || !j->dsum)))
        return false;
    transpose_heads(j->kt, a->k, n, a->n_kv_head, hd);
    transpose_heads(j->vt, a->v, n, a->n_kv_head, hd);
    if (backward) {
        transpose_heads(j->qt, a->q, n, a->n_head, hd);
        transpose_heads(j->ot, a->dout, n, a->n_head, hd);
        transpose_rows(j->lset, a->lse, n, a->n_head);
    }
    return true;
}

static void attn_job_free(struct attn_tr_job *j)
{
    free(j->kt), free(j->vt), free(j->work), free(j->qt), free(j->ot), free(j->lset), free(j->dsumt);
    free(j->dsum);
}

void cpu_train_attn(struct anc_backend *be, const struct anc_attn_train_args *a)
{
    struct attn_tr_job j = {.a = a, .k = cpu_kernels_get()};
    if (!attn_job_init(&j, be, a, false)) {
        poison(a->out, (int64_t)a->n * a->n_head * a->head_dim);
        attn_job_free(&j);
        return;
    }
    long blocks = (a->n + ATTN_TR_BLOCK - 1) / ATTN_TR_BLOCK;
    threadpool_for(cpu_backend_pool(be), blocks * a->n_head, 1, 1, 16, attn_fwd_worker, &j);
    attn_job_free(&j);
}

/* Backward, pass 1 — items (head, block of queries): D = dout·out and
 * dq_i = scale·Σ_p dS_ip k_p, dS_ip = P_ip (dout_i·v_p − D_i). */
static void attn_dq_query(const struct attn_tr_job *j, const struct attn_query *q)
{
    const struct anc_attn_train_args *a = j->a;
    int32_t n = a->n, hd = a->head_dim, len = q->len;
    float *P = q->work, *dP = P + n;
    const float *go = a->dout + q->qo, *out = a->out + q->qo;
    float D = 0.0f;
    for (int32_t d = 0; d < hd; d++) D += go[d] * out[d];
    float lse = a->lse[(size_t)q->i * a->n_head + q->h];
    j->dsum[(size_t)q->i * a->n_head + q->h] = D;
    scores_row(j->k, P, a->q + q->qo, q->kt, n, hd, q->p0, len);
    scores_row(j->k, dP, go, q->vt, n, hd, q->p0, len);
    j->k->exp_affine(P, len, a->scale, lse);
    for (int32_t k = 0; k < len; k++) P[k] = a->scale * P[k] * (dP[k] - D); /* scale·dS */
    weighted_rows(j->k, a->dq + q->qo, P, q->kt, n, hd, q->p0, len);
}

static void attn_dq_worker(void *ctx, long lo, long hi, int ith)
{
    for_each_query(ctx, lo, hi, ith, attn_dq_query);
}

/* Backward, pass 2 — items (kv head, block of keys): every query that sees
 * key p, in every query head of the kv head's group, in a fixed order:
 * dk_p = scale·Σ dS_ip q_i, dv_p = Σ P_ip dout_i. */
static void attn_dkv_worker(void *ctx, long lo, long hi, int ith)
{
    struct attn_tr_job *j = ctx;
    const struct anc_attn_train_args *a = j->a;
    int32_t n = a->n, hd = a->head_dim, kv_dim = a->n_kv_head * hd;
    int32_t grp = a->n_head / a->n_kv_head;
    float *P = j->work + (size_t)ith * 3 * n, *dS = P + n;
    float acc_k[ANC_MAX_HEAD_DIM], acc_v[ANC_MAX_HEAD_DIM], tmp[ANC_MAX_HEAD_DIM];
    for (long it = lo; it < hi; it++) {
        int32_t kvh, p0, p1;
        item_span(n, it, &kvh, &p0, &p1);
        for (int32_t p = p0; p < p1; p++) {
            size_t ko = (size_t)p * kv_dim + (size_t)kvh * hd;
            for (int32_t d = 0; d < hd; d++) acc_k[d] = acc_v[d] = 0.0f;
            for (int32_t h = kvh * grp; h < (kvh + 1) * grp; h++) {
                const float *qt = j->qt + (size_t)h * hd * n, *ot = j->ot + (size_t)h * hd * n;
                const float *lse = j->lset + (size_t)h * n, *ds = j->dsumt + (size_t)h * n;
                int32_t len = group_hi(a, h, p) - p;
                scores_row(j->k, P, a->k + ko, qt, n, hd, p, len);
                scores_row(j->k, dS, a->v + ko, ot, n, hd, p, len);
                for (int32_t k = 0; k < len; k++) P[k] = a->scale * P[k] - lse[p + k];
                j->k->exp_affine(P, len, 1.0f, 0.0f);
                for (int32_t k = 0; k < len; k++) dS[k] = a->scale * P[k] * (dS[k] - ds[p + k]);
                weighted_rows(j->k, tmp, dS, qt, n, hd, p, len);
                for (int32_t d = 0; d < hd; d++) acc_k[d] += tmp[d];
                weighted_rows(j->k, tmp, P, ot, n, hd, p, len);
                for (int32_t d = 0; d < hd; d++) acc_v[d] += tmp[d];
            }
            memcpy(a->dk + ko, acc_k, (size_t)hd * sizeof(float));
            memcpy(a->dv + ko, acc_v, (size_t)hd * sizeof(float));
        }
    }
}

void cpu_train_attn_bwd(struct anc_backend *be, const struct anc_attn_train_args *a)
{
    struct threadpool *tp = cpu_backend_pool(be);
    struct attn_tr_job j = {.a = a, .k = cpu_kernels_get()};
    if (!attn_job_init(&j, be, a, true)) { /* out of memory: every gradient NaN, none stale */
        poison(a->dq, (int64_t)a->n * a->n_head * a->head_dim);
        poison(a->dk, (int64_t)a->n * a->n_kv_head * a->head_dim);
        poison(a->dv, (int64_t)a->n * a->n_kv_head * a->head_dim);
        attn_job_free(&j);
        return;
    }
    long blocks = (a->n + ATTN_TR_BLOCK - 1) / ATTN_TR_BLOCK;
    threadpool_for(tp, blocks * a->n_head, 1, 1, 16, attn_dq_worker, &j);
    transpose_rows(j.dsumt, j.dsum, a->n, a->n_head);
    threadpool_for(tp, blocks * a->n_kv_head, 1, 1, 16, attn_dkv_worker, &j);
    attn_job_free(&j);
}

/* ---- element-wise ops --------------------------------------------------- */

struct ew3_job {
    float *a, *b;
    const float *c, *d, *e;
    int64_t n;
    const struct anc_adamw *h;
};

#define EW_LINE 1024      /* elements per work unit */

static void swiglu_bwd_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct ew3_job *j = ctx;
    int64_t e1 = (int64_t)hi * EW_LINE < j->n ? (int64_t)hi * EW_LINE : j->n;
    for (int64_t i = (int64_t)lo * EW_LINE; i < e1; i++) {
        float g = j->d[i], u = j->e[i], dy = j->c[i];
        float sg = 1.0f / (1.0f + expf(-g));
        j->a[i] = dy * u * sg * (1.0f + g * (1.0f - sg));
        j->b[i] = dy * g * sg;
    }
}

static void ew_for(struct anc_backend *be, int64_t n, threadpool_fn fn, void *ctx)
{
    long lines = (long)((n + EW_LINE - 1) / EW_LINE);
    threadpool_for(cpu_backend_pool(be), lines, 1, 16, 0, fn, ctx);
}

void cpu_train_swiglu_bwd(struct anc_backend *be, float *dgate, float *dup, const float *dy,
                          const float *gate, const float *up, int64_t n)
{
    struct ew3_job j = {.a = dgate, .b = dup, .c = dy, .d = gate, .e = up, .n = n};
    ew_for(be, n, swiglu_bwd_worker, &j);
}

void cpu_train_embed_bwd(struct anc_backend *be, float *dtable, const float *dx,
                         const int32_t *tokens, int32_t n_tok, int64_t dim)
{
    (void)be;
    for (int32_t t = 0; t < n_tok; t++) {
        float *row = dtable + (size_t)tokens[t] * dim;
        const float *g = dx + (size_t)t * dim;
        for (int64_t i = 0; i < dim; i++) row[i] += g[i];
    }
}

static void adamw_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct ew3_job *j = ctx;
    const struct anc_adamw *h = j->h;
    double c1 = 1.0 - pow(h->beta1, (double)h->t), c2 = 1.0 - pow(h->beta2, (double)h->t);
    float *p = j->a, *m = j->b, *v = (float *)j->d;
    const float *g = j->c;
    int64_t e1 = (int64_t)hi * EW_LINE < j->n ? (int64_t)hi * EW_LINE : j->n;
    for (int64_t i = (int64_t)lo * EW_LINE; i < e1; i++) {
        m[i] = h->beta1 * m[i] + (1.0f - h->beta1) * g[i];
        v[i] = h->beta2 * v[i] + (1.0f - h->beta2) * g[i] * g[i];
        double mh = m[i] / c1, vh = v[i] / c2;
        p[i] -= (float)(h->lr * (mh / (sqrt(vh) + h->eps) + h->weight_decay * p[i]));
    }
}

void cpu_train_adamw(struct anc_backend *be, float *p, const float *g, float *m, float *v,
                     int64_t n, const struct anc_adamw *h)
{
    struct ew3_job j = {.a = p, .b = m, .c = g, .d = v, .n = n, .h = h};
    ew_for(be, n, adamw_worker, &j);
}

/* Sums in fixed blocks, added in block order: the same bits whatever the
 * threads. */
struct sum_job {
    const float *x;
    int64_t n;
    double *part;
};

static void sum_sq_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct sum_job *j = ctx;
    for (long b = lo; b < hi; b++) {
        int64_t e0 = (int64_t)b * EW_LINE, e1 = e0 + EW_LINE < j->n ? e0 + EW_LINE : j->n;
        double s = 0.0;
        for (int64_t i = e0; i < e1; i++) s += (double)j->x[i] * j->x[i];
        j->part[b] = s;
    }
}

double cpu_train_sum_sq(struct anc_backend *be, const float *x, int64_t n)
{
    long lines = (long)((n + EW_LINE - 1) / EW_LINE);
    struct sum_job j = {x, n, calloc((size_t)lines + 1, sizeof(double))};
    if (!j.part) return NAN;
    threadpool_for(cpu_backend_pool(be), lines, 1, 16, 0, sum_sq_worker, &j);
    double s = 0.0;
    for (long b = 0; b < lines; b++) s += j.part[b];
    free(j.part);
    return s;
}

/* ---- cross-entropy ------------------------------------------------------ */

struct ce_job {
    float *logits;
    const int32_t *targets;
    int32_t n_vocab;
    float grad_scale;
    double *loss;         /* [n_tok] */
};

static void ce_worker(void *ctx, long lo, long hi, int ith)
{
    (void)ith;
    struct ce_job *j = ctx;
    for (long t = lo; t < hi; t++) {
        float *x = j->logits + (size_t)t * j->n_vocab;
        int32_t y = j->targets[t];
        if (y < 0) {
            memset(x, 0, (size_t)j->n_vocab * sizeof(float));
            j->loss[t] = 0.0;
            continue;
        }
        float m = x[0];
        for (int32_t i = 1; i < j->n_vocab; i++) m = x[i] > m ? x[i] : m;
        double sum = 0.0;
        for (int32_t i = 0; i < j->n_vocab; i++) sum += exp((double)x[i] - m);
        j->loss[t] = log(sum) + m - x[y];
        double inv = 1.0 / sum;
        for (int32_t i = 0; i < j->n_vocab; i++)
            x[i] = (float)(exp((double)x[i] - m) * inv) * j->grad_scale;
        x[y] -= j->grad_scale;
    }
}

double cpu_train_cross_entropy(struct anc_backend *be, float *logits, const int32_t *targets,
                               int32_t n_tok, int32_t n_vocab, float grad_scale)
{
    struct ce_job j = {logits, targets, n_vocab, grad_scale, malloc((size_t)n_tok * sizeof(double))};
    if (!j.loss) return NAN;
    threadpool_for(cpu_backend_pool(be), n_tok, 1, 1, 0, ce_worker, &j);
    double s = 0.0;
    for (int32_t t = 0; t < n_tok; t++) s += j.loss[t];
    free(j.loss);
    return s;
}

void cpu_train_upload(struct anc_backend *be, void *dst, const void *host, size_t bytes)
{
    (void)be;
    if (bytes) memcpy(dst, host, bytes);
}

void cpu_train_zero(struct anc_backend *be, void *p, size_t bytes)
{
    (void)be;
    if (bytes) memset(p, 0, bytes);
}
