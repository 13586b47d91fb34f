/* test_backward.c — every training op of the CPU backend (backend.h,
 * "Training"; kernels/cpu/cpu_train.c) against float64 central finite
 * differences of a naive forward written here, on seeded random inputs with
 * odd sizes: for an op y = f(x), the backward's dx for a random dy must be
 * the gradient of L = Σ dy·f(x). Also: training attention's forward
 * against a naive masked softmax (S²-Attn group edges, the causal mask,
 * grouped-query heads) and against the inference attention op; cross-
 * entropy's loss; AdamW against its formula; and the same bits at 1 and 3
 * threads for every op that sums (the trainer's determinism rests on it).
 * Tolerance: max |analytic − numeric| <= tol · max(|numeric|), with tol
 * 1e-4 (float32 arithmetic against float64 differences). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "quant.h"
#include "test_rng.h"
#include "test_util.h"

static struct rng R = {0x5eed0bacu};
static float frand(void) { return (float)(rng_uniform(&R) * 2.0 - 1.0); }
static float frand_gauss(void) { return rng_gauss(&R); }

static float *frand_new(size_t n, float scale)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
    return x;
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ---- finite differences ------------------------------------------------- */

typedef double (*eval_fn)(void *ctx);

/* g[k] = dL/dx[k] by central differences, x perturbed in place and restored */
static void fd_grad(eval_fn f, void *ctx, double *x, size_t n, double *g)
{
    for (size_t k = 0; k < n; k++) {
        double x0 = x[k], h = 1e-6 * fmax(1.0, fabs(x0));
        x[k] = x0 + h;
        double fp = f(ctx);
        x[k] = x0 - h;
        double fm = f(ctx);
        x[k] = x0;
        g[k] = (fp - fm) / (2.0 * h);
    }
}

/* max |got - want| <= tol · max |want| (and not all zero when want is not) */
static void check_grad(const char *what, const float *got, const double *want, size_t n, double tol)
{
    double scale = 0.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    if (!(worst <= tol * fmax(scale, 1e-6)) || scale == 0.0) {
        fprintf(stderr, "%s: largest difference %.3g at [%zu] (got %.7g, want %.7g; scale %.3g)\n",
                what, worst, at, got[at], want[at], scale);
        test_failures++;
    }
}

static double dot_d(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- matmul -------------------------------------------------------------- */

struct mm_ctx {
    double *w, *x, *dy;
    int rows, cols, n_tok;
};

static double mm_eval(void *p)
{
    struct mm_ctx *c = p;
    double L = 0.0;
    for (int t = 0; t < c->n_tok; t++)
        for (int r = 0; r < c->rows; r++)
            L += c->dy[t * c->rows + r] * dot_d(c->w + (size_t)r * c->cols, c->x + (size_t)t * c->cols, c->cols);
    return L;
}

/* W of `type` (quantised from random floats), x, dy random: dx against
 * differences of L in x, with W as the backend sees it (dequantised). */
static void test_matmul_bwd_x(struct anc_backend *be, uint32_t type, int rows, int cols, int n_tok)
{
    float *wf = frand_new((size_t)rows * cols, 1.0f);
    size_t row_bytes = anc_dtype_row_bytes(type, (uint64_t)cols);
    uint8_t *wq = malloc((size_t)rows * row_bytes);
    double *wd = malloc((size_t)rows * cols * sizeof(double));
    float *deq = malloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        uint8_t *dst = wq + (size_t)r * row_bytes;
        const float *src = wf + (size_t)r * cols;
        if (type == ANC_DT_F32) memcpy(dst, src, (size_t)cols * sizeof(float));
        else if (type == ANC_DT_F16)
            for (int i = 0; i < cols; i++) ((uint16_t *)dst)[i] = anc_f32_to_f16(src[i]);
        else CHECK(quant_quantize_row(type, src, dst, cols));
        if (type == ANC_DT_F32) memcpy(deq, src, (size_t)cols * sizeof(float));
        else if (type == ANC_DT_F16)
            for (int i = 0; i < cols; i++) deq[i] = anc_f16_to_f32(((uint16_t *)dst)[i]);
        else quant_dequant_row(type, dst, deq, cols);
        for (int i = 0; i < cols; i++) wd[(size_t)r * cols + i] = deq[i];
    }
    struct anc_weight w = {.data = wq, .type = type, .rows = rows, .cols = cols};
    float *x = frand_new((size_t)n_tok * cols, 1.0f), *dy = frand_new((size_t)n_tok * rows, 1.0f);
    float *dx = frand_new((size_t)n_tok * cols, 1.0f), *dx0 = malloc((size_t)n_tok * cols * sizeof(float));
    memcpy(dx0, dx, (size_t)n_tok * cols * sizeof(float));
    struct mm_ctx c = {wd, to_double(x, (size_t)n_tok * cols), to_double(dy, (size_t)n_tok * rows), rows, cols, n_tok};
    double *g = malloc((size_t)n_tok * cols * sizeof(double));
    if (n_tok <= 4) {
        fd_grad(mm_eval, &c, c.x, (size_t)n_tok * cols, g);
    } else { /* L is linear in x: its gradient W^T dy, summed here in double */
        for (int t = 0; t < n_tok; t++)
            for (int i = 0; i < cols; i++) {
                double s = 0.0;
                for (int r = 0; r < rows; r++) s += wd[(size_t)r * cols + i] * c.dy[(size_t)t * rows + r];
                g[(size_t)t * cols + i] = s;
            }
    }
    char what[96];
    snprintf(what, sizeof what, "matmul_bwd_x %s %dx%d n_tok %d t%d", anc_dtype_get(type)->name, rows,
             cols, n_tok, be->n_threads);
    be->ops->matmul_bwd_x(be, dx, &w, dy, n_tok, false);
    check_grad(what, dx, g, (size_t)n_tok * cols, 1e-4);
    /* accumulate: adds to what was there */
    memcpy(dx, dx0, (size_t)n_tok * cols * sizeof(float));
    be->ops->matmul_bwd_x(be, dx, &w, dy, n_tok, true);
    for (size_t i = 0; i < (size_t)n_tok * cols; i++) g[i] += dx0[i];
    strcat(what, " (accumulate)");
    check_grad(what, dx, g, (size_t)n_tok * cols, 1e-4);
    if (type == ANC_DT_F32) { /* and the gradient to W */
        double *gw = malloc((size_t)rows * cols * sizeof(double));
        if (n_tok <= 4) {
            fd_grad(mm_eval, &c, c.w, (size_t)rows * cols, gw);
        } else { /* linear in W too: sum_t dy[t][r] x[t][c] */
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < cols; i++) {
                    double s = 0.0;
                    for (int t = 0; t < n_tok; t++) s += c.dy[(size_t)t * rows + r] * c.x[(size_t)t * cols + i];
                    gw[(size_t)r * cols + i] = s;
                }
        }
        float *dw = calloc((size_t)rows * cols, sizeof(float));
        be->ops->matmul_bwd_w(be, dw, dy, x, rows, cols, n_tok);
        snprintf(what, sizeof what, "matmul_bwd_w %dx%d n_tok %d t%d", rows, cols, n_tok, be->n_threads);
        check_grad(what, dw, gw, (size_t)rows * cols, 1e-4);
        free(gw);
        free(dw);
    }
    free(wf), free(wq), free(wd), free(deq), free(x), free(dy), free(dx), free(dx0), free(g);
    free(c.x), free(c.dy);
}

/* ---- rmsnorm -------------------------------------------------------------- */

struct rms_ctx {
    double *x, *w, *dy;
    int n, n_tok;
    double eps;
};

static double rms_eval(void *p)
{
    struct rms_ctx *c = p;
    double L = 0.0;
    for (int t = 0; t < c->n_tok; t++) {
        const double *x = c->x + (size_t)t * c->n;
        double r = 1.0 / sqrt(dot_d(x, x, c->n) / c->n + c->eps);
        for (int i = 0; i < c->n; i++) L += c->dy[(size_t)t * c->n + i] * x[i] * r * c->w[i];
    }
    return L;
}

static void test_rmsnorm_bwd(struct anc_backend *be, int n, int n_tok)
{
    float eps = 1e-5f;
    size_t nx = (size_t)n * n_tok;
    float *x = frand_new(nx, 2.0f), *wv = frand_new((size_t)n, 1.5f), *dy = frand_new(nx, 1.0f);
    struct anc_weight w = {.data = wv, .type = ANC_DT_F32, .rows = 1, .cols = n};
    struct rms_ctx c = {to_double(x, nx), to_double(wv, (size_t)n), to_double(dy, nx), n, n_tok, eps};
    double *gx = malloc(nx * sizeof(double)), *gw = malloc((size_t)n * sizeof(double));
    fd_grad(rms_eval, &c, c.x, nx, gx);
    fd_grad(rms_eval, &c, c.w, (size_t)n, gw);
    float *dx = calloc(nx, sizeof(float)), *dw = calloc((size_t)n, sizeof(float));
    be->ops->rmsnorm_bwd(be, dx, dw, dy, x, &w, n, n_tok, eps);
    char what[64];
    snprintf(what, sizeof what, "rmsnorm_bwd dx n %d n_tok %d", n, n_tok);
    check_grad(what, dx, gx, nx, 1e-4);
    snprintf(what, sizeof what, "rmsnorm_bwd dw n %d n_tok %d", n, n_tok);
    check_grad(what, dw, gw, (size_t)n, 1e-4);
    free(x), free(wv), free(dy), free(c.x), free(c.w), free(c.dy), free(gx), free(gw), free(dx), free(dw);
}

/* ---- RoPE ------------------------------------------------------------------- */

struct rope_ctx {
    double *x, *dy;
    const struct anc_rope_table *tab;
    const int32_t *pos;
    int n_tok, n_heads, head_dim;
};

static double rope_eval(void *p)
{
    struct rope_ctx *c = p;
    const struct anc_rope_table *tab = c->tab;
    double L = 0.0;
    for (int t = 0; t < c->n_tok; t++)
        for (int h = 0; h < c->n_heads; h++) {
            size_t o = ((size_t)t * c->n_heads + h) * c->head_dim;
            const double *x = c->x + o, *dy = c->dy + o;
            for (int i = 2 * tab->n_pairs; i < c->head_dim; i++) L += dy[i] * x[i];
            for (int k = 0; k < tab->n_pairs; k++) {
                int i0 = tab->neox ? k : 2 * k, i1 = tab->neox ? k + tab->n_pairs : 2 * k + 1;
                double cs = tab->cos[(size_t)c->pos[t] * tab->n_pairs + k];
                double sn = tab->sin[(size_t)c->pos[t] * tab->n_pairs + k];
                L += dy[i0] * (x[i0] * cs - x[i1] * sn) + dy[i1] * (x[i0] * sn + x[i1] * cs);
            }
        }
    return L;
}

static void test_rope_bwd(struct anc_backend *be, bool neox, int head_dim, int rot_dims)
{
    int n_tok = 5, n_heads = 3, n_pos = 9;
    struct anc_rope_table tab = {.n_pos = n_pos, .n_pairs = rot_dims / 2, .neox = neox};
    float *cs = malloc((size_t)n_pos * tab.n_pairs * sizeof(float));
    float *sn = malloc((size_t)n_pos * tab.n_pairs * sizeof(float));
    for (int i = 0; i < n_pos * tab.n_pairs; i++) {
        double a = frand() * 3.0, m = 1.0 + 0.2 * frand(); /* YaRN-like magnitude */
        cs[i] = (float)(m * cos(a));
        sn[i] = (float)(m * sin(a));
    }
    tab.cos = cs;
    tab.sin = sn;
    int32_t pos[5] = {0, 8, 3, 3, 5};
    size_t n = (size_t)n_tok * n_heads * head_dim;
    float *dy = frand_new(n, 1.0f), *x = frand_new(n, 1.0f);
    struct rope_ctx c = {to_double(x, n), to_double(dy, n), &tab, pos, n_tok, n_heads, head_dim};
    double *g = malloc(n * sizeof(double));
    fd_grad(rope_eval, &c, c.x, n, g);
    be->ops->rope_bwd(be, dy, n_tok, n_heads, head_dim, &tab, pos);
    char what[64];
    snprintf(what, sizeof what, "rope_bwd %s head_dim %d rot %d", neox ? "neox" : "adjacent", head_dim,
             rot_dims);
    check_grad(what, dy, g, n, 1e-5);
    free(cs), free(sn), free(dy), free(x), free(c.x), free(c.dy), free(g);
}

/* ---- training attention ------------------------------------------------------- */

struct attn_ctx {
    double *q, *k, *v, *dy;
    int n, n_head, n_kv_head, hd, group;
    double scale;
    double *out, *lse;  /* filled by attn_eval when non-NULL */
};

/* Does query i see key p under head h? Causal, and with S²-Attn the same
 * group: group id floor(p/G) for the first half of the heads and
 * floor((p + G/2)/G) for the shifted half (TECHNIQUES.md §4: [0, G/2),
 * [G/2, 3G/2), … with the last group ending at n). */
static bool sees(const struct attn_ctx *c, int h, int i, int p)
{
    if (p > i) return false;
    if (c->group <= 0) return true;
    int s = h >= c->n_head / 2 ? c->group / 2 : 0;
    return (i + s) / c->group == (p + s) / c->group;
}

static double attn_eval(void *p)
{
    struct attn_ctx *c = p;
    int hd = c->hd, qd = c->n_head * hd, kd = c->n_kv_head * hd, grp = c->n_head / c->n_kv_head;
    double L = 0.0;
    double *s = malloc((size_t)c->n * sizeof(double));
    for (int i = 0; i < c->n; i++)
        for (int h = 0; h < c->n_head; h++) {
            const double *q = c->q + (size_t)i * qd + (size_t)h * hd;
            int kvh = h / grp;
            double m = -INFINITY, sum = 0.0;
            for (int j = 0; j < c->n; j++) {
                if (!sees(c, h, i, j)) continue;
                s[j] = c->scale * dot_d(q, c->k + (size_t)j * kd + (size_t)kvh * hd, hd);
                m = fmax(m, s[j]);
            }
            for (int j = 0; j < c->n; j++)
                if (sees(c, h, i, j)) sum += exp(s[j] - m);
            for (int d = 0; d < hd; d++) {
                double o = 0.0;
                for (int j = 0; j < c->n; j++)
                    if (sees(c, h, i, j)) o += exp(s[j] - m) / sum * c->v[(size_t)j * kd + (size_t)kvh * hd + d];
                L += c->dy[(size_t)i * qd + (size_t)h * hd + d] * o;
                if (c->out) c->out[(size_t)i * qd + (size_t)h * hd + d] = o;
            }
            if (c->lse) c->lse[(size_t)i * c->n_head + h] = m + log(sum);
        }
    free(s);
    return L;
}

static void test_attention(struct anc_backend *be, int n, int n_head, int n_kv_head, int hd, int group)
{
    int qd = n_head * hd, kd = n_kv_head * hd;
    size_t nq = (size_t)n * qd, nk = (size_t)n * kd;
    float *q = frand_new(nq, 1.5f), *k = frand_new(nk, 1.5f), *v = frand_new(nk, 1.0f);
    float *dy = frand_new(nq, 1.0f);
    float *out = calloc(nq, sizeof(float)), *lse = calloc((size_t)n * n_head, sizeof(float));
    float *dq = calloc(nq, sizeof(float)), *dk = calloc(nk, sizeof(float)), *dv = calloc(nk, sizeof(float));
    float scale = 1.0f / sqrtf((float)hd);
    struct attn_ctx c = {to_double(q, nq), to_double(k, nk), to_double(v, nk), to_double(dy, nq), n, n_head,
                         n_kv_head, hd, group, scale, malloc(nq * sizeof(double)),
                         malloc((size_t)n * n_head * sizeof(double))};
    attn_eval(&c);
    struct anc_attn_train_args a = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .dout = dy, .dq = dq,
                                    .dk = dk, .dv = dv, .n = n, .n_head = n_head, .n_kv_head = n_kv_head,
                                    .head_dim = hd, .group = group, .scale = scale};
    be->ops->attn_train(be, &a);
    char what[96];
    snprintf(what, sizeof what, "attn_train n %d heads %d/%d hd %d group %d t%d", n, n_head, n_kv_head, hd,
             group, be->n_threads);
    char w2[160];
    snprintf(w2, sizeof w2, "%s: out", what);
    check_grad(w2, out, c.out, nq, 1e-5);
    snprintf(w2, sizeof w2, "%s: lse", what);
    check_grad(w2, lse, c.lse, (size_t)n * n_head, 1e-5);
    free(c.out), free(c.lse);
    c.out = c.lse = NULL;
    be->ops->attn_train_bwd(be, &a);
    double *g = malloc(nq * sizeof(double));
    fd_grad(attn_eval, &c, c.q, nq, g);
    snprintf(w2, sizeof w2, "%s: dq", what);
    check_grad(w2, dq, g, nq, 1e-4);
    fd_grad(attn_eval, &c, c.k, nk, g);
    snprintf(w2, sizeof w2, "%s: dk", what);
    check_grad(w2, dk, g, nk, 1e-4);
    fd_grad(attn_eval, &c, c.v, nk, g);
    snprintf(w2, sizeof w2, "%s: dv", what);
    check_grad(w2, dv, g, nk, 1e-4);

    if (group == 0) { /* the same numbers as the inference op, causal */
        int32_t *lo = calloc((size_t)n, sizeof(int32_t)), *hi = malloc((size_t)n * sizeof(int32_t));
        for (int i = 0; i < n; i++) hi[i] = i + 1;
        float *out2 = calloc(nq, sizeof(float));
        struct anc_attn_args ia = {.out = out2, .q = q, .k = k, .v = v, .kv_type = ANC_DT_F32,
                                   .n_q = n, .n_kv = n, .n_head = n_head, .n_kv_head = n_kv_head,
                                   .head_dim = hd, .lo = lo, .hi = hi, .scale = scale};
        be->ops->attention(be, &ia);
        double *o2 = to_double(out2, nq);
        snprintf(w2, sizeof w2, "%s: against the inference attention", what);
        check_grad(w2, out, o2, nq, 1e-5);
        free(lo), free(hi), free(out2), free(o2);
    }
    free(q), free(k), free(v), free(dy), free(out), free(lse), free(dq), free(dk), free(dv), free(g);
    free(c.q), free(c.k), free(c.v), free(c.dy);
}

/* ---- swiglu, embedding ------------------------------------------------------------ */

struct sw_ctx {
    double *g, *u, *dy;
    int n;
};

static double sw_eval(void *p)
{
    struct sw_ctx *c = p;
    double L = 0.0;
    for (int i = 0; i < c->n; i++) L += c->dy[i] * c->g[i] / (1.0 + exp(-c->g[i])) * c->u[i];
    return L;
}

static void test_swiglu_bwd(struct anc_backend *be, int n)
{
    float *g = frand_new((size_t)n, 1.0f), *u = frand_new((size_t)n, 2.0f), *dy = frand_new((size_t)n, 1.0f);
    for (int i = 0; i < n; i++) g[i] = 4.0f * frand_gauss(); /* into silu's flat tails too */
    struct sw_ctx c = {to_double(g, (size_t)n), to_double(u, (size_t)n), to_double(dy, (size_t)n), n};
    double *gg = malloc((size_t)n * sizeof(double)), *gu = malloc((size_t)n * sizeof(double));
    fd_grad(sw_eval, &c, c.g, (size_t)n, gg);
    fd_grad(sw_eval, &c, c.u, (size_t)n, gu);
    float *dg = malloc((size_t)n * sizeof(float)), *du = malloc((size_t)n * sizeof(float));
    be->ops->swiglu_bwd(be, dg, du, dy, g, u, n);
    check_grad("swiglu_bwd dgate", dg, gg, (size_t)n, 1e-4);
    check_grad("swiglu_bwd dup", du, gu, (size_t)n, 1e-4);
    free(g), free(u), free(dy), free(c.g), free(c.u), free(c.dy), free(gg), free(gu), free(dg), free(du);
}

static void test_embed_bwd(struct anc_backend *be)
{
    enum { VOCAB = 7, DIM = 5, N = 6 };
    int32_t tok[N] = {3, 0, 3, 6, 3, 1};
    float *dx = frand_new((size_t)N * DIM, 1.0f);
    float dt[VOCAB * DIM];
    double want[VOCAB * DIM];
    for (int i = 0; i < VOCAB * DIM; i++) dt[i] = want[i] = i * 0.5f;
    for (int t = 0; t < N; t++)
        for (int i = 0; i < DIM; i++) want[tok[t] * DIM + i] += dx[t * DIM + i];
    be->ops->embed_bwd(be, dt, dx, tok, N, DIM);
    check_grad("embed_bwd (repeated tokens, accumulating)", dt, want, VOCAB * DIM, 1e-6);
    free(dx);
}

/* ---- cross-entropy ------------------------------------------------------------------ */

struct ce_ctx {
    double *x;
    const int32_t *y;
    int n_tok, vocab;
    double scale;
};

static double ce_eval(void *p)
{
    struct ce_ctx *c = p;
    double L = 0.0;
    for (int t = 0; t < c->n_tok; t++) {
        if (c->y[t] < 0) continue;
        const double *x = c->x + (size_t)t * c->vocab;
        double s = 0.0;
        for (int i = 0; i < c->vocab; i++) s += exp(x[i]);
        L += log(s) - x[c->y[t]];
    }
    return L * c->scale;
}

static void test_cross_entropy(struct anc_backend *be)
{
    enum { N = 5, V = 37 };
    int32_t y[N] = {4, 36, -1, 0, 4};
    float *x = frand_new((size_t)N * V, 8.0f);
    float scale = 1.0f / 4.0f;
    struct ce_ctx c = {to_double(x, (size_t)N * V), y, N, V, 1.0};
    double want_loss = ce_eval(&c);
    c.scale = scale;
    double *g = malloc((size_t)N * V * sizeof(double));
    fd_grad(ce_eval, &c, c.x, (size_t)N * V, g);
    double loss = be->ops->cross_entropy(be, x, y, N, V, scale);
    CHECK_CLOSE(loss, want_loss, 1e-9, 1e-6);
    check_grad("cross_entropy gradient (an unscored target)", x, g, (size_t)N * V, 1e-4);
    for (int i = 0; i < V; i++) CHECK(x[2 * V + i] == 0.0f);
    free(x), free(c.x), free(g);
}

/* ---- AdamW, sum of squares ------------------------------------------------------------ */

static void test_adamw(struct anc_backend *be)
{
    enum { N = 3000 };
    float *p = frand_new(N, 1.0f), *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    double *pd = to_double(p, N), md[N] = {0}, vd[N] = {0};
    struct anc_adamw h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    for (int step = 1; step <= 3; step++) {
        float *g = frand_new(N, 1.0f);
        h.t = step;
        be->ops->adamw(be, p, g, m, v, N, &h);
        for (int i = 0; i < N; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.999 * vd[i] + 0.001 * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(0.9, step)), vh = vd[i] / (1 - pow(0.999, step));
            pd[i] -= 1e-2 * (mh / (sqrt(vh) + 1e-8) + 0.1 * pd[i]);
        }
        free(g);
    }
    check_grad("adamw, three steps", p, pd, N, 1e-5);
    float *x = frand_new(N, 3.0f);
    double want = 0.0;
    for (int i = 0; i < N; i++) want += (double)x[i] * x[i];
    CHECK_CLOSE(be->ops->sum_sq(be, x, N), want, 0, 1e-12);
    free(p), free(m), free(v), free(pd), free(x);
}

/* ---- the same bits whatever the thread count --------------------------------------------- */

static void test_determinism(struct anc_backend *b1, struct anc_backend *b3)
{
    int n = 96, nh = 4, nkv = 2, hd = 8, rows = 70, cols = 64;
    size_t nq = (size_t)n * nh * hd, nk = (size_t)n * nkv * hd;
    float *q = frand_new(nq, 1.0f), *k = frand_new(nk, 1.0f), *v = frand_new(nk, 1.0f), *dy = frand_new(nq, 1.0f);
    float *buf[2][6];
    struct anc_backend *be[2] = {b1, b3};
    float *w = frand_new((size_t)rows * cols, 1.0f), *dyr = frand_new((size_t)n * rows, 1.0f);
    float *xr = frand_new((size_t)n * cols, 1.0f);
    struct anc_weight W = {.data = w, .type = ANC_DT_F32, .rows = rows, .cols = cols};
    struct anc_weight nw = {.data = w, .type = ANC_DT_F32, .rows = 1, .cols = cols};
    for (int b = 0; b < 2; b++) {
        size_t most = (size_t)(n + 1) * cols + nq + (size_t)rows * cols; /* enough for any of them */
        for (int i = 0; i < 6; i++) buf[b][i] = calloc(most, sizeof(float));
        float *lse = calloc((size_t)n * nh, sizeof(float));
        struct anc_attn_train_args a = {.out = buf[b][0], .lse = lse, .q = q, .k = k, .v = v, .dout = dy,
                                        .dq = buf[b][1], .dk = buf[b][2], .dv = buf[b][3], .n = n, .n_head = nh,
                                        .n_kv_head = nkv, .head_dim = hd, .group = 32, .scale = 0.35f};
        be[b]->ops->attn_train(be[b], &a);
        be[b]->ops->attn_train_bwd(be[b], &a);
        be[b]->ops->matmul_bwd_x(be[b], buf[b][4], &W, dyr, n, false);
        be[b]->ops->matmul_bwd_w(be[b], buf[b][5], dyr, xr, rows, cols, n);
        float *dx = calloc((size_t)n * cols, sizeof(float)), *dw = calloc((size_t)cols, sizeof(float));
        be[b]->ops->rmsnorm_bwd(be[b], dx, dw, xr, xr, &nw, cols, n, 1e-5f);
        memcpy(buf[b][0], dw, (size_t)cols * sizeof(float)); /* out checked by the FD tests */
        memcpy(buf[b][0] + cols, dx, (size_t)n * cols * sizeof(float));
        free(lse), free(dx), free(dw);
    }
    const char *names[6] = {"rmsnorm_bwd", "attn dq", "attn dk", "attn dv", "matmul_bwd_x", "matmul_bwd_w"};
    size_t sizes[6] = {(size_t)cols * (n + 1), nq, nk, nk, (size_t)n * cols, (size_t)rows * cols};
    for (int i = 0; i < 6; i++)
        CHECK_MSG(memcmp(buf[0][i], buf[1][i], sizes[i] * sizeof(float)) == 0,
                  "%s: 1 and 3 threads give different bits", names[i]);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 6; i++) free(buf[b][i]);
    free(q), free(k), free(v), free(dy), free(w), free(dyr), free(xr);
}

/* Out of memory in the attention backward (its work buffers are the
 * largest the op allocates): every gradient comes back NaN, none keeps
 * what was in it. The address space is capped just above what the process
 * maps, so the op's allocations fail; not under a sanitizer, whose
 * allocator aborts instead of returning NULL. */
#if defined(__SANITIZE_ADDRESS__)
#define ANC_TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ANC_TEST_SANITIZER 1
#endif
#endif
static void test_attention_oom(struct anc_backend *be)
{
#ifdef ANC_TEST_SANITIZER
    (void)be;
    printf("skip: attention backward out of memory (sanitizer build)\n");
#else
    enum { N = 4096, NH = 4, NKV = 2, HD = 64 };
    size_t nq = (size_t)N * NH * HD, nk = (size_t)N * NKV * HD;
    float *q = calloc(nq, sizeof *q), *k = calloc(nk, sizeof *k), *v = calloc(nk, sizeof *v);
    float *dout = calloc(nq, sizeof *dout), *lse = calloc((size_t)N * NH, sizeof *lse);
    float *dq = calloc(nq, sizeof *dq), *dk = calloc(nk, sizeof *dk), *dv = calloc(nk, sizeof *dv);
    CHECK(q && k && v && dout && lse && dq && dk && dv);
    struct rlimit old;
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (q && k && v && dout && lse && dq && dk && dv && f && fscanf(f, "%ld", &pages) == 1 &&
        getrlimit(RLIMIT_AS, &old) == 0) {
        struct rlimit cap = old;
        cap.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 20);
        struct anc_attn_train_args a = {.lse = lse, .q = q, .k = k, .v = v, .dout = dout, .dq = dq, .dk = dk,
                                        .dv = dv, .n = N, .n_head = NH, .n_kv_head = NKV, .head_dim = HD,
                                        .scale = 0.125f};
        if (setrlimit(RLIMIT_AS, &cap) == 0) {
            be->ops->attn_train_bwd(be, &a);
            setrlimit(RLIMIT_AS, &old);
            CHECK_MSG(isnan(dq[0]) && isnan(dq[nq - 1]), "dq not NaN after out of memory");
            CHECK_MSG(isnan(dk[0]) && isnan(dk[nk - 1]), "dk kept stale values after out of memory");
            CHECK_MSG(isnan(dv[0]) && isnan(dv[nk - 1]), "dv kept stale values after out of memory");
        }
    }
    if (f) fclose(f);
    free(q), free(k), free(v), free(dout), free(lse), free(dq), free(dk), free(dv);
#endif
}

int main(void)
{
    struct anc_backend *b1 = anc_backend_cpu_new(1), *b3 = anc_backend_cpu_new(3);
    if (!b1 || !b3) {
        fprintf(stderr, "no CPU backend\n");
        return 1;
    }
    struct anc_backend *bes[2] = {b1, b3};
    for (int b = 0; b < 2; b++) {
        struct anc_backend *be = bes[b];
        const uint32_t types[] = {ANC_DT_F32, ANC_DT_F16, ANC_DT_Q8_0, ANC_DT_Q4_1, ANC_DT_Q4_K, ANC_DT_Q6_K};
        for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
            int cols = anc_dtype_get(types[i])->block_elems >= 256 ? 256 : 64;
            test_matmul_bwd_x(be, types[i], 13, cols, 3);
            test_matmul_bwd_x(be, types[i], 5, cols, 100); /* token blocks of 16 and a short one */
        }
        test_attention(be, 12, 4, 2, 8, 0);
        test_attention(be, 12, 4, 2, 8, 4);   /* S²-Attn: the shifted half's edges */
        test_attention(be, 16, 2, 1, 4, 8);
        test_attention(be, 33, 6, 3, 5, 0);   /* ragged query blocks */
    }
    test_rmsnorm_bwd(b3, 37, 5);
    test_rmsnorm_bwd(b1, 8, 1);
    test_rope_bwd(b1, false, 8, 8);
    test_rope_bwd(b1, true, 10, 6);       /* partial rotation: the tail passes through */
    test_swiglu_bwd(b3, 5000);
    test_embed_bwd(b1);
    test_cross_entropy(b3);
    test_adamw(b3);
    test_determinism(b1, b3);
    test_attention_oom(b1);
    anc_backend_free(b1);
    anc_backend_free(b3);
    if (!test_failures) printf("test_backward: all training ops match their finite differences\n");
    TEST_EXIT();
}
