/* train.c — fine-tuning in the engine (ancora.h, "training"): LoRA on
 * chosen projections, LoRA+ (also the token embedding and every norm),
 * full fine-tuning, shifted sparse attention (S²-Attn) and per-layer
 * gradient checkpointing, with AdamW (TECHNIQUES.md §4; LongLoRA, Chen et
 * al. 2023). One window is ctx+1 tokens: positions 0..ctx-1 predict tokens
 * 1..ctx; the loss is the mean cross-entropy over a step's predictions.
 *
 * The forward pass is the session's (session.c) for the llama family —
 * pre-norm, attention with RoPE, SwiGLU — written with the same backend
 * ops, each with its backward (backend.h "Training"). Activations are kept
 * per layer, or with checkpointing only each layer's input, the layer being
 * run again in the backward. Everything runs on the model's backend and is
 * deterministic whatever the thread count.
 *
 * Files: the adapter in llama.cpp's LoRA GGUF layout (lora_a ne=[in, r],
 * lora_b ne=[r, out], adapter.lora.alpha), LoRA+'s embedding and norms as
 * `ancora.plus.NAME` tensors, the RoPE trained for as `ancora.adapter.*`
 * keys; a checkpoint is the same file plus AdamW's moments, the RNG state
 * and the step. Depends on core/ (model, rope, gguf reader and writer) and
 * the backend table; no UI. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "gguf.h"
#include "gguf_write.h"
#include "lora.h"
#include "model.h"
#include "rope.h"
#include "util.h"

#define N_PROJ 7                       /* enum model_proj */
#define CE_CHUNK_FLOATS (16u << 20)    /* logits per cross-entropy chunk (64 MiB) */

void anc_train_params_default(struct anc_train_params *p)
{
    memset(p, 0, sizeof *p);
    p->ctx = 512;
    p->rope.scaling = ANC_ROPE_FROM_FILE;
    p->lora_rank = 8;
    p->lora_alpha = 16.0f;
    p->lora_targets = ANC_TRAIN_Q | ANC_TRAIN_K | ANC_TRAIN_V | ANC_TRAIN_O;
    p->batch = 1;
    p->lr = 2e-3f;
    p->weight_decay = 0.0f;
    p->clip = 1.0f;
    p->warmup = 10;
    p->seed = 1;
}

/* A parameter that trains: value, gradient and AdamW's moments, all f32
 * backend buffers [rows][cols] (GGUF ne = [cols, rows]). */
struct tparam {
    char name[96];          /* the tensor's name in the files */
    float *p, *g, *m, *v;
    int64_t rows, cols;
    struct anc_weight w;    /* p as a weight the ops take */
};

/* One layer's saved activations, [T][...] each (see layer_forward). */
struct acts {
    float *x;               /* the layer's input [T][dim] (always kept) */
    float *h1, *q, *k, *v, *att, *lse, *x2, *h2, *g, *u, *a;
    float *lt[N_PROJ];      /* (alpha/r)·A·x of each adapted projection [T][r] */
};

struct anc_trainer {
    struct anc_model *m;
    struct anc_backend *be;
    struct anc_train_params p;
    int32_t T;
    float lora_s;                       /* alpha / r */

    struct tparam *params;              /* [n_params] */
    int n_params;
    /* per layer and projection: the adapter's A and B, or the trained
       weight itself (--full); NULL when frozen */
    struct tparam *(*lora_a)[N_PROJ], *(*lora_b)[N_PROJ], *(*full_w)[N_PROJ];
    struct tparam **attn_norm, **ffn_norm, *output_norm, *embd, *output;
    /* the weights the forward uses (trained copies or the model's) */
    const struct anc_weight *(*w)[N_PROJ];
    const struct anc_weight **w_attn_norm, **w_ffn_norm, *w_output_norm, *w_embd, *w_output;

    struct acts *acts;                  /* [n_layer + 1]: acts[L].x is the last output */
    struct acts work;                   /* checkpointing: the layer being recomputed */
    /* gradient scratch, one layer */
    float *dx, *dh, *dq, *dk, *dv, *datt, *da, *dg, *du, *dlt, *ty, *logits;
    float *xout;                        /* checkpointing: a recomputed layer's output (unused) */
    int32_t ce_rows;                    /* logits rows per chunk */
    int32_t *targets;                   /* [T] host */
    int32_t *pos;                       /* [T] 0..T-1 */
    struct rope_table rtab;
    uint64_t act_bytes;                 /* activations kept for the backward */
    uint64_t scratch_bytes;             /* one layer's gradients, logits */
    uint64_t grad_bytes;
    uint64_t total_bytes;               /* every buffer above and the parameters */
    bool dry;                           /* counting only (anc_trainer_new's estimate) */
    uint64_t rng;                       /* splitmix64 state: windows drawn */
    double last_loss;                   /* of anc_trainer_gradients, for its file */
    int64_t step;
    bool failed_alloc;
};

/* ---- small helpers ------------------------------------------------------ */

/* A backend buffer of n_floats, counted in *count (and the total). A dry
 * trainer (memory estimate) allocates nothing and hands out a marker. */
static float dry_marker[1];
static float *tbuf(struct anc_trainer *t, size_t n_floats, uint64_t *count)
{
    float *b = t->dry ? dry_marker : t->be->ops->alloc(t->be, n_floats * sizeof(float));
    if (!b) t->failed_alloc = true;
    if (count) *count += n_floats * sizeof(float);
    t->total_bytes += n_floats * sizeof(float);
    return b;
}

static void tfree(struct anc_trainer *t, void *b)
{
    if (b && !t->dry) t->be->ops->free(t->be, b);
}

static const char *const proj_tensor[N_PROJ] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                "ffn_gate", "ffn_up", "ffn_down"};

/* ---- parameters ----------------------------------------------------------- */

/* A new trainable parameter [rows][cols]; its value from src (a weight of
 * any type, dequantised) or zero. */
static struct tparam *param_new(struct anc_trainer *t, const char *name, int64_t rows, int64_t cols,
                                const struct anc_weight *src)
{
    struct tparam *q = &t->params[t->n_params++];
    snprintf(q->name, sizeof q->name, "%s", name);
    q->rows = rows;
    q->cols = cols;
    size_t n = (size_t)rows * cols;
    q->p = tbuf(t, n, NULL);
    q->g = tbuf(t, n, &t->grad_bytes);
    q->m = tbuf(t, n, &t->grad_bytes);
    q->v = tbuf(t, n, &t->grad_bytes);
    q->w = (struct anc_weight){.data = q->p, .type = ANC_DT_F32, .rows = rows, .cols = cols};
    if (src && q->p && !t->dry) { /* rows of the source, dequantised through the embed op */
        int32_t *idx = malloc((size_t)rows * sizeof(int32_t));
        if (!idx) {
            t->failed_alloc = true;
            return q;
        }
        for (int64_t r = 0; r < rows; r++) idx[r] = (int32_t)r;
        t->be->ops->embed(t->be, q->p, src, idx, (int32_t)rows);
        free(idx);
    }
    return q;
}

/* A's initial values: uniform in ±1/sqrt(in) (Kaiming-uniform with a =
 * sqrt(5), as PEFT initialises LoRA A), seeded; B stays zero. */
static void lora_init_a(struct anc_trainer *t, struct tparam *a, uint64_t *rng)
{
    size_t n = (size_t)a->rows * a->cols;
    float *h = malloc(n * sizeof(float));
    if (!h) {
        t->failed_alloc = true;
        return;
    }
    double bound = 1.0 / sqrt((double)a->cols);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)(((double)(anc_splitmix64(rng) >> 11) * 0x1.0p-53 * 2.0 - 1.0) * bound);
    t->be->ops->upload(t->be, a->p, h, n * sizeof(float));
    free(h);
}

/* Is model m's family one whose every forward op has a backward here? */
static bool family_trainable(const struct anc_model *m, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    const char *why = NULL;
    if (m->arch->act != ACT_SILU) why = "a GELU feed-forward";
    else if (hp->attn_softcap > 0 || hp->final_softcap > 0) why = "logit soft-capping";
    else if (hp->embed_scale != 1.0f) why = "scaled embeddings";
    else if (hp->n_local > 0) why = "sliding-window layers";
    else if (m->rope_long) why = "LongRoPE factors";
    for (int32_t l = 0; !why && l < hp->n_layer; l++) {
        const struct model_layer *L = &m->layers[l];
        if (L->bq.data || L->bk.data || L->bv.data || L->bo.data) why = "attention biases";
        else if (L->q_norm.data) why = "per-head q/k norms";
        else if (L->post_attn_norm.data || L->post_ffn_norm.data) why = "post-norms";
    }
    if (why) {
        anc_set_err(err, errlen, "%s: training handles llama-style models; this %s model has %s, whose backward pass is not written yet",
                    m->path, hp->arch, why);
        return false;
    }
    return true;
}

static bool params_check(const struct anc_model *m, const struct anc_train_params *p, char *err,
                         size_t errlen)
{
    if (p->ctx < 2 || p->ctx > (1 << 20)) {
        anc_set_err(err, errlen, "--ctx must be between 2 and 1048576 (got %d)", p->ctx);
        return false;
    }
    if (!p->full && (p->lora_rank < 1 || p->lora_rank > 4096 || p->lora_rank > m->hp.dim)) {
        anc_set_err(err, errlen, "--lora-rank must be between 1 and the model's width %d (got %d)",
                    m->hp.dim, p->lora_rank);
        return false;
    }
    if (!p->full && !p->lora_targets && !p->lora_plus) {
        anc_set_err(err, errlen, "nothing to train: no --lora-targets and no --lora-plus");
        return false;
    }
    if (p->s2_group < 0 || (p->s2_group > 0 && (p->s2_group % 2 || p->ctx % p->s2_group))) {
        anc_set_err(err, errlen, "the S²-Attn group (%d) must be even and divide --ctx (%d)",
                    p->s2_group, p->ctx);
        return false;
    }
    if (p->batch < 1 || p->batch > 65536 || !(p->lr > 0 && p->lr < 10) || !(p->weight_decay >= 0) ||
        !(p->clip >= 0) || p->warmup < 0 || !(p->lora_alpha > 0)) {
        anc_set_err(err, errlen, "--batch, --lr, --weight-decay, --clip, --warmup and --lora-alpha must be positive and sane");
        return false;
    }
    return true;
}

/* The trainable parameters, in a fixed order (the files list them so). */
static bool params_make(struct anc_trainer *t)
{
    const struct anc_model *m = t->m;
    const struct model_hparams *hp = &m->hp;
    int32_t L = hp->n_layer, r = t->p.lora_rank;
    int max = 2 * L * N_PROJ + 2 * L + 4;
    t->params = calloc((size_t)max, sizeof *t->params);
    t->lora_a = calloc((size_t)L, sizeof *t->lora_a);
    t->lora_b = calloc((size_t)L, sizeof *t->lora_b);
    t->full_w = calloc((size_t)L, sizeof *t->full_w);
    t->attn_norm = calloc((size_t)L, sizeof *t->attn_norm);
    t->ffn_norm = calloc((size_t)L, sizeof *t->ffn_norm);
    t->w = calloc((size_t)L, sizeof *t->w);
    t->w_attn_norm = calloc((size_t)L, sizeof *t->w_attn_norm);
    t->w_ffn_norm = calloc((size_t)L, sizeof *t->w_ffn_norm);
    if (!t->params || !t->lora_a || !t->lora_b || !t->full_w || !t->attn_norm || !t->ffn_norm || !t->w ||
        !t->w_attn_norm || !t->w_ffn_norm)
        return false;
    bool tied = m->output.data == m->tok_embd.data;
    bool train_embd = t->p.lora_plus || t->p.full, train_norms = train_embd;
    char name[96];
    uint64_t rng = t->p.seed ^ 0x10a4a11ceull;
    if (train_embd) t->embd = param_new(t, "token_embd.weight", hp->n_vocab, hp->dim, &m->tok_embd);
    for (int32_t l = 0; l < L; l++) {
        const struct model_layer *ML = &m->layers[l];
        if (train_norms) {
            snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
            t->attn_norm[l] = param_new(t, name, 1, hp->dim, &ML->attn_norm);
            snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
            t->ffn_norm[l] = param_new(t, name, 1, hp->dim, &ML->ffn_norm);
        }
        for (int pi = 0; pi < N_PROJ; pi++) {
            const struct anc_weight *W = model_proj_weight(m, l, (enum model_proj)pi);
            if (t->p.full) {
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, proj_tensor[pi]);
                t->full_w[l][pi] = param_new(t, name, W->rows, W->cols, W);
            } else if (t->p.lora_targets & (1u << pi)) {
                snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", l, proj_tensor[pi]);
                t->lora_a[l][pi] = param_new(t, name, r, W->cols, NULL);
                if (t->lora_a[l][pi]->p && !t->dry) lora_init_a(t, t->lora_a[l][pi], &rng);
                snprintf(name, sizeof name, "blk.%d.%s.weight.lora_b", l, proj_tensor[pi]);
                t->lora_b[l][pi] = param_new(t, name, W->rows, r, NULL);
            }
        }
    }
    if (train_norms) t->output_norm = param_new(t, "output_norm.weight", 1, hp->dim, &m->output_norm);
    /* the output head: the embedding when tied (so it trains with it);
       its own weight only under full fine-tuning */
    if (tied) t->output = t->embd;
    else if (t->p.full) t->output = param_new(t, "output.weight", hp->n_vocab, hp->dim, &m->output);
    /* the weights the forward reads */
    for (int32_t l = 0; l < L; l++) {
        for (int pi = 0; pi < N_PROJ; pi++)
            t->w[l][pi] = t->full_w[l][pi] ? &t->full_w[l][pi]->w : model_proj_weight(m, l, (enum model_proj)pi);
        t->w_attn_norm[l] = t->attn_norm[l] ? &t->attn_norm[l]->w : &m->layers[l].attn_norm;
        t->w_ffn_norm[l] = t->ffn_norm[l] ? &t->ffn_norm[l]->w : &m->layers[l].ffn_norm;
    }
    t->w_output_norm = t->output_norm ? &t->output_norm->w : &m->output_norm;
    t->w_embd = t->embd ? &t->embd->w : &m->tok_embd;
    t->w_output = t->output ? &t->output->w : &m->output;
    return !t->failed_alloc;
}

/* ---- activations ----------------------------------------------------------- */

/* a's buffers: the input x when own_x, the rest when full */
static void acts_alloc(struct anc_trainer *t, struct acts *a, bool own_x, bool full)
{
    const struct model_hparams *hp = &t->m->hp;
    size_t T = (size_t)t->T;
    uint64_t *c = &t->act_bytes;
    if (own_x) a->x = tbuf(t, T * hp->dim, c);
    if (!full) return;
    a->h1 = tbuf(t, T * hp->dim, c);
    a->q = tbuf(t, T * hp->q_dim, c);
    a->k = tbuf(t, T * hp->kv_dim, c);
    a->v = tbuf(t, T * hp->kv_dim, c);
    a->att = tbuf(t, T * hp->q_dim, c);
    a->lse = tbuf(t, T * hp->n_head, c);
    a->x2 = tbuf(t, T * hp->dim, c);
    a->h2 = tbuf(t, T * hp->dim, c);
    a->g = tbuf(t, T * hp->n_ff, c);
    a->u = tbuf(t, T * hp->n_ff, c);
    a->a = tbuf(t, T * hp->n_ff, c);
    for (int pi = 0; pi < N_PROJ; pi++)
        if (t->p.lora_targets & (1u << pi) && !t->p.full) a->lt[pi] = tbuf(t, T * t->p.lora_rank, c);
}

static void acts_free(struct anc_trainer *t, struct acts *a)
{
    float *bufs[] = {a->x, a->h1, a->q, a->k, a->v, a->att, a->lse, a->x2, a->h2, a->g, a->u, a->a};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) tfree(t, bufs[i]);
    for (int pi = 0; pi < N_PROJ; pi++) tfree(t, a->lt[pi]);
    memset(a, 0, sizeof *a);
}

static bool scratch_alloc(struct anc_trainer *t)
{
    const struct model_hparams *hp = &t->m->hp;
    size_t T = (size_t)t->T, wide = (size_t)(hp->q_dim > hp->dim ? hp->q_dim : hp->dim);
    uint64_t *c = &t->act_bytes;
    int32_t L = hp->n_layer;
    t->acts = calloc((size_t)L + 1, sizeof *t->acts);
    if (!t->acts) return false;
    for (int32_t l = 0; l <= L; l++) acts_alloc(t, &t->acts[l], true, l < L && !t->p.checkpoint_layers);
    if (t->p.checkpoint_layers) { /* one layer's worth, its input borrowed */
        acts_alloc(t, &t->work, false, true);
        t->xout = tbuf(t, T * hp->dim, c);
    }
    c = &t->scratch_bytes;
    t->dx = tbuf(t, T * hp->dim, c);
    t->dh = tbuf(t, T * wide, c);
    t->dq = tbuf(t, T * hp->q_dim, c);
    t->dk = tbuf(t, T * hp->kv_dim, c);
    t->dv = tbuf(t, T * hp->kv_dim, c);
    t->datt = tbuf(t, T * hp->q_dim, c);
    t->da = tbuf(t, T * hp->n_ff, c);
    t->dg = tbuf(t, T * hp->n_ff, c);
    t->du = tbuf(t, T * hp->n_ff, c);
    t->dlt = tbuf(t, T * (size_t)(t->p.lora_rank > 0 ? t->p.lora_rank : 1), c);
    size_t widest = (size_t)(hp->n_ff > (int32_t)wide ? hp->n_ff : (int32_t)wide);
    t->ty = tbuf(t, T * widest, c);
    size_t rows = CE_CHUNK_FLOATS / (size_t)hp->n_vocab;
    t->ce_rows = (int32_t)(rows < 1 ? 1 : rows > T ? T : rows);
    t->logits = tbuf(t, (size_t)t->ce_rows * hp->n_vocab, c);
    t->targets = malloc(T * sizeof(int32_t));
    t->pos = malloc(T * sizeof(int32_t));
    if (!t->targets || !t->pos) return false;
    for (int32_t i = 0; i < t->T; i++) t->pos[i] = i;
    return !t->failed_alloc;
}

/* ---- creation ----------------------------------------------------------------- */

/* Everything a trainer holds, or with dry only counted; NULL when out of
 * memory for its bookkeeping (failed_alloc: for a buffer). */
static struct anc_trainer *trainer_build(struct anc_model *m, const struct anc_train_params *p, bool dry)
{
    struct anc_trainer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->be = m->be;
    t->p = *p;
    t->dry = dry;
    t->T = p->ctx;
    t->lora_s = p->full ? 0.0f : p->lora_alpha / (float)p->lora_rank;
    t->rng = p->seed;
    struct rope_params rp;
    session_rope_resolve(m, &p->rope, p->ctx, &rp);
    bool ok = params_make(t) && scratch_alloc(t) && (dry || rope_table_fill(&t->rtab, &rp, t->T, t->T));
    if (!ok) t->failed_alloc = true;
    return t;
}

struct anc_trainer *anc_trainer_new(struct anc_model *m, const struct anc_train_params *p,
                                    char *err, size_t errlen)
{
    if (!family_trainable(m, err, errlen) || !params_check(m, p, err, errlen)) return NULL;
    const struct anc_backend_ops *op = m->be->ops;
    if (!op->matmul_bwd_x || !op->attn_train || !op->adamw || !op->upload) {
        anc_set_err(err, errlen, "the %s backend has no backward pass yet; train with --backend cpu",
                    op->name);
        return NULL;
    }
    /* what it will take, counted before anything is allocated: malloc on
       Linux promises more than there is, and the shortfall would come as
       the OOM killer halfway through the first step */
    struct anc_trainer *dry = trainer_build(m, p, true);
    if (!dry) {
        anc_set_err(err, errlen, "out of memory");
        return NULL;
    }
    uint64_t need = dry->total_bytes, act = dry->act_bytes + dry->scratch_bytes;
    anc_trainer_free(dry);
    /* where the buffers live: host memory, or a GPU's */
    struct anc_backend_mem bm = {0};
    if (op->mem) op->mem(m->be, &bm);
    uint64_t avail = bm.device_total > 0 ? bm.device_free : anc_mem_available_bytes();
    if (avail > 0 && need > avail) {
        anc_set_err(err, errlen, "training at --ctx %d needs about %.0f MiB (%.0f MiB of it activations), more than the %.0f MiB of %s%s",
                    p->ctx, need / 1048576.0, act / 1048576.0, avail / 1048576.0,
                    bm.device_total > 0 ? "GPU memory free" : "memory available", p->checkpoint_layers ? "; try a smaller --ctx or --lora-rank" : "; --checkpointing layer keeps less");
        return NULL;
    }
    struct anc_trainer *t = trainer_build(m, p, false);
    if (!t || t->failed_alloc) {
        anc_set_err(err, errlen, "not enough memory to train at --ctx %d: it needs about %.0f MiB%s", p->ctx,
                    need / 1048576.0, p->checkpoint_layers ? "" : " (--checkpointing layer keeps less)");
        anc_trainer_free(t);
        return NULL;
    }
    return t;
}

void anc_trainer_free(struct anc_trainer *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_params; i++) {
        tfree(t, t->params[i].p);
        tfree(t, t->params[i].g);
        tfree(t, t->params[i].m);
        tfree(t, t->params[i].v);
    }
    if (t->acts)
        for (int32_t l = 0; l <= t->m->hp.n_layer; l++) acts_free(t, &t->acts[l]);
    t->work.x = NULL; /* borrowed */
    acts_free(t, &t->work);
    float *bufs[] = {t->dx, t->dh, t->dq, t->dk, t->dv, t->datt, t->da, t->dg, t->du, t->dlt, t->ty, t->logits,
                     t->xout};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) tfree(t, bufs[i]);
    rope_table_release(&t->rtab);
    free(t->params), free(t->lora_a), free(t->lora_b), free(t->full_w), free(t->attn_norm);
    free(t->ffn_norm), free(t->w), free(t->w_attn_norm), free(t->w_ffn_norm), free(t->acts);
    free(t->targets), free(t->pos);
    free(t);
}

void anc_trainer_get_info(const struct anc_trainer *t, struct anc_train_info *out)
{
    memset(out, 0, sizeof *out);
    out->step = t->step;
    for (int i = 0; i < t->n_params; i++) out->n_trainable += (uint64_t)(t->params[i].rows * t->params[i].cols);
    out->act_bytes = t->act_bytes;
    out->scratch_bytes = t->scratch_bytes;
    out->grad_bytes = t->grad_bytes;
}

/* ---- forward ------------------------------------------------------------------ */

/* y = W x for projection pi of layer l, plus (alpha/r)·B(A x) when adapted;
 * lt receives (alpha/r)·A x [T][r] for the backward. */
static void proj_fwd(struct anc_trainer *t, float *y, int32_t l, int pi, const float *x, float *lt)
{
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    const struct anc_weight *W = t->w[l][pi];
    op->matmul(be, y, W, x, t->T);
    struct tparam *A = t->lora_a[l][pi], *B = t->lora_b[l][pi];
    if (!A) return;
    op->matmul(be, lt, &A->w, x, t->T);
    op->scale(be, lt, t->lora_s, (int64_t)t->T * A->rows);
    op->matmul(be, t->ty, &B->w, lt, t->T);
    op->add(be, y, t->ty, (int64_t)t->T * W->rows);
}

/* Layer l from a->x: fills a's activations and writes the output to out. */
static void layer_forward(struct anc_trainer *t, int32_t l, struct acts *a, float *out)
{
    const struct model_hparams *hp = &t->m->hp;
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t T = t->T;
    op->rmsnorm(be, a->h1, a->x, t->w_attn_norm[l], hp->dim, T, hp->norm_eps);
    proj_fwd(t, a->q, l, PROJ_Q, a->h1, a->lt[PROJ_Q]);
    proj_fwd(t, a->k, l, PROJ_K, a->h1, a->lt[PROJ_K]);
    proj_fwd(t, a->v, l, PROJ_V, a->h1, a->lt[PROJ_V]);
    op->rope(be, a->q, T, hp->n_head, hp->head_dim, &t->rtab.t, t->pos);
    op->rope(be, a->k, T, hp->n_kv_head, hp->head_dim, &t->rtab.t, t->pos);
    struct anc_attn_train_args aa = {
        .out = a->att, .lse = a->lse, .q = a->q, .k = a->k, .v = a->v, .n = T,
        .n_head = hp->n_head, .n_kv_head = hp->n_kv_head, .head_dim = hp->head_dim,
        .group = t->p.s2_group, .scale = hp->attn_scale,
    };
    op->attn_train(be, &aa);
    proj_fwd(t, a->x2, l, PROJ_O, a->att, a->lt[PROJ_O]);
    op->add(be, a->x2, a->x, (int64_t)T * hp->dim);          /* x2 = x + attention */
    op->rmsnorm(be, a->h2, a->x2, t->w_ffn_norm[l], hp->dim, T, hp->norm_eps);
    proj_fwd(t, a->g, l, PROJ_GATE, a->h2, a->lt[PROJ_GATE]);
    proj_fwd(t, a->u, l, PROJ_UP, a->h2, a->lt[PROJ_UP]);
    op->swiglu(be, a->a, a->g, a->u, (int64_t)T * hp->n_ff);
    proj_fwd(t, out, l, PROJ_DOWN, a->a, a->lt[PROJ_DOWN]);
    op->add(be, out, a->x2, (int64_t)T * hp->dim);           /* out = x2 + ffn */
}

/* ---- backward ------------------------------------------------------------------ */

/* Given dy = dL/dy for y = proj(x): dx (+)= W^T dy (+ the adapter's part);
 * gradients to a trained W, A and B accumulate. */
static void proj_bwd(struct anc_trainer *t, float *dx, bool accumulate, int32_t l, int pi,
                     const float *dy, const float *x, const float *lt)
{
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    const struct anc_weight *W = t->w[l][pi];
    int32_t T = t->T;
    op->matmul_bwd_x(be, dx, W, dy, T, accumulate);
    struct tparam *F = t->full_w[l][pi];
    if (F) op->matmul_bwd_w(be, F->g, dy, x, F->rows, F->cols, T);
    struct tparam *A = t->lora_a[l][pi], *B = t->lora_b[l][pi];
    if (!A) return;
    int32_t r = (int32_t)A->rows;
    op->matmul_bwd_w(be, B->g, dy, lt, B->rows, r, T);      /* dB += dy^T (s A x) */
    op->matmul_bwd_x(be, t->dlt, &B->w, dy, T, false);      /* u = s B^T dy */
    op->scale(be, t->dlt, t->lora_s, (int64_t)T * r);
    op->matmul_bwd_w(be, A->g, t->dlt, x, r, A->cols, T);   /* dA += u^T x */
    op->matmul_bwd_x(be, dx, &A->w, t->dlt, T, true);       /* dx += A^T u */
}

/* Back through layer l: t->dx holds dL/d(output) and becomes dL/d(input). */
static void layer_backward(struct anc_trainer *t, int32_t l, const struct acts *a)
{
    const struct model_hparams *hp = &t->m->hp;
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t T = t->T;
    /* feed-forward: out = x2 + down(swiglu(gate(h2), up(h2))), h2 = norm(x2) */
    proj_bwd(t, t->da, false, l, PROJ_DOWN, t->dx, a->a, a->lt[PROJ_DOWN]);
    op->swiglu_bwd(be, t->dg, t->du, t->da, a->g, a->u, (int64_t)T * hp->n_ff);
    proj_bwd(t, t->dh, false, l, PROJ_GATE, t->dg, a->h2, a->lt[PROJ_GATE]);
    proj_bwd(t, t->dh, true, l, PROJ_UP, t->du, a->h2, a->lt[PROJ_UP]);
    op->rmsnorm_bwd(be, t->dx, t->ffn_norm[l] ? t->ffn_norm[l]->g : NULL, t->dh, a->x2,
                    t->w_ffn_norm[l], hp->dim, T, hp->norm_eps);
    /* attention: x2 = x + o(attn(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x) */
    proj_bwd(t, t->datt, false, l, PROJ_O, t->dx, a->att, a->lt[PROJ_O]);
    struct anc_attn_train_args aa = {
        .out = a->att, .lse = a->lse, .q = a->q, .k = a->k, .v = a->v, .dout = t->datt,
        .dq = t->dq, .dk = t->dk, .dv = t->dv, .n = T, .n_head = hp->n_head,
        .n_kv_head = hp->n_kv_head, .head_dim = hp->head_dim, .group = t->p.s2_group,
        .scale = hp->attn_scale,
    };
    op->attn_train_bwd(be, &aa);
    op->rope_bwd(be, t->dq, T, hp->n_head, hp->head_dim, &t->rtab.t, t->pos);
    op->rope_bwd(be, t->dk, T, hp->n_kv_head, hp->head_dim, &t->rtab.t, t->pos);
    proj_bwd(t, t->dh, false, l, PROJ_Q, t->dq, a->h1, a->lt[PROJ_Q]);
    proj_bwd(t, t->dh, true, l, PROJ_K, t->dk, a->h1, a->lt[PROJ_K]);
    proj_bwd(t, t->dh, true, l, PROJ_V, t->dv, a->h1, a->lt[PROJ_V]);
    op->rmsnorm_bwd(be, t->dx, t->attn_norm[l] ? t->attn_norm[l]->g : NULL, t->dh, a->x,
                    t->w_attn_norm[l], hp->dim, T, hp->norm_eps);
}

/* The head: final norm, output matrix and cross-entropy over the window,
 * in chunks of ce_rows tokens; t->dx gets dL/d(last layer's output).
 * Returns the summed loss. grad_scale: 1 / predictions in the step. */
static double head_forward_backward(struct anc_trainer *t, float grad_scale)
{
    const struct model_hparams *hp = &t->m->hp;
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t T = t->T, D = hp->dim;
    const float *xL = t->acts[hp->n_layer].x;
    float *hN = t->ty; /* [T][dim] normed */
    op->rmsnorm(be, hN, xL, t->w_output_norm, D, T, hp->norm_eps);
    double loss = 0.0;
    for (int32_t c0 = 0; c0 < T; c0 += t->ce_rows) {
        int32_t n = T - c0 < t->ce_rows ? T - c0 : t->ce_rows;
        const float *h = hN + (size_t)c0 * D;
        op->matmul(be, t->logits, t->w_output, h, n);
        loss += op->cross_entropy(be, t->logits, t->targets + c0, n, hp->n_vocab, grad_scale);
        op->matmul_bwd_x(be, t->dh + (size_t)c0 * D, t->w_output, t->logits, n, false);
        if (t->output) op->matmul_bwd_w(be, t->output->g, t->logits, h, hp->n_vocab, D, n);
    }
    /* t->dh now holds dL/d(normed output); back through the final norm */
    op->zero(be, t->dx, (size_t)T * D * sizeof(float));
    op->rmsnorm_bwd(be, t->dx, t->output_norm ? t->output_norm->g : NULL, t->dh, xL, t->w_output_norm, D,
                    T, hp->norm_eps);
    return loss;
}

/* Forward and backward of one window (ctx+1 tokens); gradients accumulate.
 * Returns the summed loss over its ctx predictions. */
static double window_pass(struct anc_trainer *t, const int32_t *win, float grad_scale)
{
    const struct model_hparams *hp = &t->m->hp;
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t T = t->T, L = hp->n_layer;
    for (int32_t i = 0; i < T; i++) t->targets[i] = win[i + 1];
    op->embed(be, t->acts[0].x, t->w_embd, win, T);
    for (int32_t l = 0; l < L; l++) {
        struct acts *a = t->p.checkpoint_layers ? &t->work : &t->acts[l];
        if (t->p.checkpoint_layers) a->x = t->acts[l].x;
        layer_forward(t, l, a, t->acts[l + 1].x);
    }
    double loss = head_forward_backward(t, grad_scale);
    for (int32_t l = L - 1; l >= 0; l--) {
        struct acts *a = &t->acts[l];
        if (t->p.checkpoint_layers) { /* run the layer again from its input */
            t->work.x = t->acts[l].x;
            layer_forward(t, l, &t->work, t->xout);
            a = &t->work;
        }
        layer_backward(t, l, a);
    }
    if (t->embd) op->embed_bwd(be, t->embd->g, t->dx, win, T, hp->dim);
    if (t->p.checkpoint_layers) t->work.x = NULL;
    return loss;
}

static void grads_zero(struct anc_trainer *t)
{
    for (int i = 0; i < t->n_params; i++)
        t->be->ops->zero(t->be, t->params[i].g,
                         (size_t)(t->params[i].rows * t->params[i].cols) * sizeof(float));
}

int anc_trainer_gradients(struct anc_trainer *t, const int32_t *window, double *loss, char *err,
                          size_t errlen)
{
    for (int32_t i = 0; i <= t->T; i++)
        if (window[i] < 0 || window[i] >= t->m->hp.n_vocab) {
            anc_set_err(err, errlen, "token id %d at %d is outside the vocabulary", window[i], i);
            return -1;
        }
    grads_zero(t);
    *loss = t->last_loss = window_pass(t, window, 1.0f / (float)t->T) / t->T;
    return 0;
}

/* ---- the optimiser step ---------------------------------------------------------- */

static double grad_norm_sq(struct anc_trainer *t)
{
    double s = 0.0;
    for (int i = 0; i < t->n_params; i++)
        s += t->be->ops->sum_sq(t->be, t->params[i].g, t->params[i].rows * t->params[i].cols);
    return s;
}

int anc_trainer_step(struct anc_trainer *t, const int32_t *tokens, size_t n,
                     struct anc_train_step *out, char *err, size_t errlen)
{
    struct anc_backend *be = t->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t T = t->T;
    if (n < (size_t)T + 1) {
        anc_set_err(err, errlen, "the text has %zu tokens; one window needs %d (--ctx + 1)", n, T + 1);
        return -1;
    }
    grads_zero(t);
    float grad_scale = 1.0f / ((float)T * (float)t->p.batch);
    double loss = 0.0;
    for (int32_t b = 0; b < t->p.batch; b++) {
        size_t start = (size_t)(anc_splitmix64(&t->rng) % (uint64_t)(n - (size_t)T));
        loss += window_pass(t, tokens + start, grad_scale);
    }
    loss /= (double)T * t->p.batch;
    double norm = sqrt(grad_norm_sq(t));
    if (!isfinite(loss) || !isfinite(norm)) {
        anc_set_err(err, errlen, "the loss became %g (gradient norm %g) at step %lld; nothing was updated",
                    loss, norm, (long long)t->step + 1);
        return -1;
    }
    if (t->p.clip > 0 && norm > t->p.clip)
        for (int i = 0; i < t->n_params; i++)
            op->scale(be, t->params[i].g, (float)(t->p.clip / norm), t->params[i].rows * t->params[i].cols);
    float lr = t->p.lr;
    if (t->p.warmup > 0 && t->step < t->p.warmup) lr *= (float)(t->step + 1) / (float)t->p.warmup;
    t->step++;
    struct anc_adamw h = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                          .weight_decay = t->p.weight_decay, .t = t->step};
    for (int i = 0; i < t->n_params; i++) {
        struct tparam *q = &t->params[i];
        op->adamw(be, q->p, q->g, q->m, q->v, q->rows * q->cols, &h);
    }
    out->loss = loss;
    out->grad_norm = norm;
    out->lr = lr;
    out->step = t->step;
    return 0;
}

/* ---- files ------------------------------------------------------------------------ */

/* What a written file's tensor `index` holds: rows of a parameter's value,
 * gradient or AdamW moment (a backend buffer [rows][cols]), or a base
 * tensor's bytes. */
struct save_src {
    const float *buf;
    int64_t cols;
    const struct gguf_tensor *base;
};

struct save_ctx {
    struct anc_trainer *t;
    struct save_src *src;
    size_t n, cap;
};

static bool save_fill(void *ctx, size_t index, int64_t row0, int64_t n_rows, void *buf)
{
    struct save_ctx *sc = ctx;
    const struct save_src *s = &sc->src[index];
    if (s->buf) {
        struct anc_backend *be = sc->t->be;
        be->ops->download(be, buf, s->buf + (size_t)row0 * s->cols, (size_t)(n_rows * s->cols) * sizeof(float));
        return true;
    }
    size_t row_bytes = anc_dtype_row_bytes(s->base->type, s->base->ne[0]);
    memcpy(buf, (const uint8_t *)s->base->data + (size_t)row0 * row_bytes, (size_t)n_rows * row_bytes);
    return true;
}

static bool save_add(struct gguf_writer *w, struct save_ctx *sc, const char *name, const float *buf,
                     int64_t rows, int64_t cols, const struct gguf_tensor *base)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 64;
        struct save_src *p = realloc(sc->src, cap * sizeof *p);
        if (!p) return false;
        sc->src = p;
        sc->cap = cap;
    }
    long idx = base ? gguf_writer_tensor(w, name, base->type, base->ne[0], base->n_dims > 1 ? base->ne[1] : 1)
                    : gguf_writer_tensor(w, name, ANC_DT_F32, (uint64_t)cols, (uint64_t)rows);
    if (idx != (long)sc->n) return false;
    sc->src[sc->n++] = (struct save_src){.buf = buf, .cols = cols, .base = base};
    return true;
}

/* The settings a checkpoint must share with the trainer resuming it. */
static bool save_settings(struct gguf_writer *w, const struct anc_trainer *t)
{
    const struct anc_train_params *p = &t->p;
    char seed[32], rng[32], step[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    snprintf(rng, sizeof rng, "%llu", (unsigned long long)t->rng);
    snprintf(step, sizeof step, "%lld", (long long)t->step);
    return gguf_writer_u32(w, "ancora.train.ctx", (uint32_t)p->ctx) &&
           gguf_writer_u32(w, "ancora.train.lora_rank", (uint32_t)p->lora_rank) &&
           gguf_writer_f32(w, "ancora.train.lora_alpha", p->lora_alpha) &&
           gguf_writer_u32(w, "ancora.train.lora_targets", p->lora_targets) &&
           gguf_writer_u32(w, "ancora.train.lora_plus", p->lora_plus) &&
           gguf_writer_u32(w, "ancora.train.full", p->full) &&
           gguf_writer_u32(w, "ancora.train.s2_group", (uint32_t)p->s2_group) &&
           gguf_writer_u32(w, "ancora.train.batch", (uint32_t)p->batch) &&
           gguf_writer_str(w, "ancora.train.seed", seed) &&
           gguf_writer_str(w, "ancora.train.rng", rng) &&
           gguf_writer_str(w, "ancora.train.step", step);
}

/* The RoPE the adapter was trained for, resolved against the base. */
static bool save_rope(struct gguf_writer *w, const struct anc_trainer *t, const char *prefix)
{
    struct rope_params rp;
    session_rope_resolve(t->m, &t->p.rope, t->p.ctx, &rp);
    return lora_write_rope(w, prefix, t->p.ctx, rp.base, rope_scaling_name(rp.scaling), rp.factor, rp.orig_ctx);
}

static const struct tparam *param_named(const struct anc_trainer *t, const struct gguf_str name)
{
    for (int i = 0; i < t->n_params; i++)
        if (gguf_str_eq(name, t->params[i].name)) return &t->params[i];
    return NULL;
}

/* --full: the base model again, trained tensors as F32, RoPE keys the
 * ones trained for. */
static bool declare_model(struct gguf_writer *w, struct save_ctx *sc, const struct anc_trainer *t)
{
    const struct gguf_file *f = t->m->file;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (!lora_is_rope_key(&f->kv[i], t->m->hp.arch) && !gguf_writer_copy_kv(w, &f->kv[i])) return false;
    if (!save_rope(w, t, t->m->hp.arch)) return false;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *bt = &f->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(bt->name.len < 127 ? bt->name.len : 127), bt->name.ptr);
        const struct tparam *q = param_named(t, bt->name);
        if (!(q ? save_add(w, sc, name, q->p, q->rows, q->cols, NULL) : save_add(w, sc, name, NULL, 0, 0, bt)))
            return false;
    }
    return true;
}

/* An adapter (+ the checkpoint's or the gradients' extras). */
static bool declare_adapter(struct gguf_writer *w, struct save_ctx *sc, const struct anc_trainer *t,
                            enum anc_train_save what)
{
    char name[160];
    bool ok = gguf_writer_str(w, "general.architecture", t->m->hp.arch) &&
              gguf_writer_str(w, "general.type", "adapter") && gguf_writer_str(w, "adapter.type", "lora") &&
              gguf_writer_f32(w, "adapter.lora.alpha", t->p.lora_alpha) &&
              gguf_writer_u32(w, "ancora.adapter.lora_plus", t->p.lora_plus) &&
              save_rope(w, t, "ancora.adapter") && save_settings(w, t);
    if (ok && what == ANC_TRAIN_SAVE_GRADS) {
        char loss[40];
        snprintf(loss, sizeof loss, "%.17g", t->last_loss);
        ok = gguf_writer_str(w, "ancora.train.loss", loss);
    }
    for (int i = 0; ok && i < t->n_params; i++) {
        const struct tparam *q = &t->params[i];
        bool plain = strstr(q->name, ".lora_") != NULL;
        /* LoRA+'s embedding and norms: a namespace llama.cpp's loader does
           not take as an adapter pair */
        snprintf(name, sizeof name, "%s%s", plain || what == ANC_TRAIN_SAVE_GRADS ? "" : "ancora.plus.", q->name);
        ok = save_add(w, sc, name, what == ANC_TRAIN_SAVE_GRADS ? q->g : q->p, q->rows, q->cols, NULL);
        if (ok && what == ANC_TRAIN_SAVE_CHECKPOINT) {
            snprintf(name, sizeof name, "ancora.adam_m.%s", q->name);
            ok = save_add(w, sc, name, q->m, q->rows, q->cols, NULL);
            snprintf(name, sizeof name, "ancora.adam_v.%s", q->name);
            ok = ok && save_add(w, sc, name, q->v, q->rows, q->cols, NULL);
        }
    }
    return ok;
}

int anc_trainer_save(struct anc_trainer *t, enum anc_train_save what, const char *path, char *err,
                     size_t errlen)
{
    struct gguf_writer *w = gguf_writer_new();
    struct save_ctx sc = {.t = t};
    bool ok = w != NULL;
    if (ok && what == ANC_TRAIN_SAVE_ADAPTER && t->p.full) ok = declare_model(w, &sc, t);
    else if (ok) ok = declare_adapter(w, &sc, t, what);
    int rc = -1;
    if (!ok) anc_set_err(err, errlen, "%s: out of memory while preparing the file", path);
    else rc = gguf_writer_write(w, path, save_fill, &sc, NULL, err, errlen);
    gguf_writer_free(w);
    free(sc.src);
    return rc;
}

/* ---- resuming ---------------------------------------------------------------------- */

static bool resume_u32(const struct gguf_file *f, const char *key, uint32_t want, char *err, size_t errlen)
{
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) {
        anc_set_err(err, errlen, "%s: not a training checkpoint (no %s)", f->path, key);
        return false;
    }
    if (v != want) {
        anc_set_err(err, errlen, "%s: the checkpoint was made with %s = %u, this run has %u", f->path,
                    key + strlen("ancora.train."), v, want);
        return false;
    }
    return true;
}

static bool resume_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    struct gguf_str s;
    char buf[32];
    if (!gguf_get_str(f, key, &s) || s.len == 0 || s.len >= sizeof buf) return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    char *end;
    *out = strtoull(buf, &end, 10);
    return *end == 0;
}

/* Upload tensor `name` of f into dst (a parameter's buffer of q's shape),
 * f32 or f16 in the file. Absent: false with a message, unless optional. */
static bool load_tensor(struct anc_trainer *t, const struct gguf_file *f, const char *name, float *dst,
                        const struct tparam *q, bool optional, char *err, size_t errlen)
{
    const struct gguf_tensor *ft = gguf_find_tensor(f, name);
    if (!ft && optional) return true;
    size_t n = (size_t)(q->rows * q->cols);
    if (!ft || (ft->type != ANC_DT_F32 && ft->type != ANC_DT_F16) || ft->ne[0] != (uint64_t)q->cols ||
        (ft->n_dims > 1 ? ft->ne[1] : 1) != (uint64_t)q->rows) {
        anc_set_err(err, errlen, "%s: tensor %s is %s (this run needs f32 or f16 [%lld, %lld])", f->path, name,
                    ft ? "of another shape or type" : "missing", (long long)q->cols, (long long)q->rows);
        return false;
    }
    if (ft->type == ANC_DT_F32) {
        t->be->ops->upload(t->be, dst, ft->data, n * sizeof(float));
        return true;
    }
    float *h = malloc(n * sizeof(float));
    if (!h) {
        anc_set_err(err, errlen, "out of memory");
        return false;
    }
    const uint16_t *src = ft->data;
    for (size_t i = 0; i < n; i++) h[i] = anc_f16_to_f32(src[i]);
    t->be->ops->upload(t->be, dst, h, n * sizeof(float));
    free(h);
    return true;
}

static bool resume_tensor(struct anc_trainer *t, const struct gguf_file *f, const char *name, float *dst,
                          const struct tparam *q, char *err, size_t errlen)
{
    return load_tensor(t, f, name, dst, q, false, err, errlen);
}

int anc_trainer_init_from(struct anc_trainer *t, const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f) return -1;
    struct gguf_str arch;
    bool ok = gguf_get_str(f, "general.architecture", &arch) && gguf_str_eq(arch, t->m->hp.arch);
    if (!ok) anc_set_err(err, errlen, "%s: not an adapter for a %s model", path, t->m->hp.arch);
    float alpha;
    if (ok && gguf_get_f32(f, "adapter.lora.alpha", &alpha) && alpha != t->p.lora_alpha) {
        anc_set_err(err, errlen, "%s: the adapter's alpha is %g; pass --lora-alpha %g", path, alpha, alpha);
        ok = false;
    }
    char name[160];
    for (int i = 0; ok && i < t->n_params; i++) {
        const struct tparam *q = &t->params[i];
        bool plain = strstr(q->name, ".lora_") != NULL;
        /* LoRA+'s embedding and norms start from the base's unless given */
        snprintf(name, sizeof name, "%s%s", plain ? "" : "ancora.plus.", q->name);
        ok = load_tensor(t, f, name, q->p, q, !plain, err, errlen);
    }
    gguf_close(f);
    return ok ? 0 : -1;
}

int anc_trainer_resume(struct anc_trainer *t, const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f) return -1;
    const struct anc_train_params *p = &t->p;
    uint64_t seed = 0, rng = 0, step = 0;
    struct gguf_str arch;
    bool ok = gguf_get_str(f, "general.architecture", &arch) && gguf_str_eq(arch, t->m->hp.arch);
    if (!ok) anc_set_err(err, errlen, "%s: the checkpoint is for another architecture", path);
    ok = ok && resume_u32(f, "ancora.train.ctx", (uint32_t)p->ctx, err, errlen) &&
         resume_u32(f, "ancora.train.lora_rank", (uint32_t)p->lora_rank, err, errlen) &&
         resume_u32(f, "ancora.train.lora_targets", p->lora_targets, err, errlen) &&
         resume_u32(f, "ancora.train.lora_plus", p->lora_plus, err, errlen) &&
         resume_u32(f, "ancora.train.full", p->full, err, errlen) &&
         resume_u32(f, "ancora.train.s2_group", (uint32_t)p->s2_group, err, errlen) &&
         resume_u32(f, "ancora.train.batch", (uint32_t)p->batch, err, errlen);
    if (ok && (!resume_u64(f, "ancora.train.seed", &seed) || !resume_u64(f, "ancora.train.rng", &rng) ||
               !resume_u64(f, "ancora.train.step", &step))) {
        anc_set_err(err, errlen, "%s: the checkpoint's step or random state is missing", path);
        ok = false;
    }
    if (ok && seed != p->seed) {
        anc_set_err(err, errlen, "%s: the checkpoint was made with --seed %llu, this run has %llu", path,
                    (unsigned long long)seed, (unsigned long long)p->seed);
        ok = false;
    }
    char name[160];
    for (int i = 0; ok && i < t->n_params; i++) {
        const struct tparam *q = &t->params[i];
        snprintf(name, sizeof name, "%s%s", strstr(q->name, ".lora_") ? "" : "ancora.plus.", q->name);
        ok = resume_tensor(t, f, name, q->p, q, err, errlen);
        snprintf(name, sizeof name, "ancora.adam_m.%s", q->name);
        ok = ok && resume_tensor(t, f, name, q->m, q, err, errlen);
        snprintf(name, sizeof name, "ancora.adam_v.%s", q->name);
        ok = ok && resume_tensor(t, f, name, q->v, q, err, errlen);
    }
    if (ok) {
        t->rng = rng;
        t->step = (int64_t)step;
    }
    gguf_close(f);
    return ok ? 0 : -1;
}
