/* session.c — a conversation with a model: the KV cache, the forward pass
 * (embedding -> layers -> logits, one backend call per operation), and
 * sampling. Cache policies decide which entries stay and at which position
 * they are seen; today the dense `full` cache, with the eviction hooks the
 * streaming policies build on. Depends on model, kv_cache, rope, sampler
 * and the backend interface; no UI libraries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "kv_cache.h"
#include "model.h"
#include "rope.h"
#include "sampler.h"
#include "util.h"

/* Tokens per forward call during prefill: large enough to reuse weights
 * across tokens, small enough to keep scratch buffers modest. */
#define SESSION_BATCH 32
/* Tokens remembered for the repetition penalty. */
#define SESSION_RECENT 4096

struct anc_session {
    struct anc_model *m;          /* borrowed */
    struct anc_backend *be;       /* borrowed from the model */
    struct anc_session_params p;
    struct kv_cache *kv;
    struct rope_params rope;
    struct rope_table rtab;
    int32_t rtab_len;             /* positions the table covers */
    struct sampler *smp;

    /* scratch, sized for SESSION_BATCH tokens (shapes per token) */
    float *x;        /* [B][dim] residual stream */
    float *xb;       /* [B][dim] normed input */
    float *q;        /* [B][n_head*head_dim] */
    float *k_new;    /* [B][kv_dim] */
    float *v_new;    /* [B][kv_dim] */
    float *att;      /* [B][n_head*head_dim] attention output */
    float *hb;       /* [B][n_ff] */
    float *hb2;      /* [B][n_ff] */
    float *k_rot;    /* [capacity][kv_dim] rotated keys, logical order */
    int32_t *pos;    /* [max(B, capacity)] positions */
    int32_t *lo, *hi;/* [B] attention ranges */
    float *logits;   /* [n_vocab] */
    bool have_logits;

    int32_t recent[SESSION_RECENT]; /* ring of the last tokens fed */
    int64_t n_seen;
};

void anc_session_params_default(struct anc_session_params *p)
{
    memset(p, 0, sizeof *p);
    p->cache = ANC_CACHE_FULL;
    p->ctx = 0;
    p->window = 0;
    p->n_sink = 4;
    p->kv_type = ANC_DT_F16;
    p->rope_theta = 0.0f;
    anc_sampling_default(&p->sampling);
}

static const char *const policy_names[] = {"sink", "window", "recompute", "full"};

const char *anc_cache_policy_name(enum anc_cache_policy p)
{
    return (unsigned)p < 4 ? policy_names[p] : "?";
}

int anc_cache_policy_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(policy_names[i], name) == 0) return i;
    return -1;
}

static void *scratch(struct anc_session *s, size_t n_floats, bool *ok)
{
    void *p = s->be->ops->alloc(s->be, n_floats * sizeof(float));
    if (!p) *ok = false;
    return p;
}

static void session_release_scratch(struct anc_session *s)
{
    float *bufs[] = {s->x, s->xb, s->q, s->k_new, s->v_new, s->att, s->hb, s->hb2, s->k_rot,
                     s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) s->be->ops->free(s->be, bufs[i]);
    free(s->pos);
    free(s->lo);
    free(s->hi);
}

struct anc_session *anc_session_new(struct anc_model *m, const struct anc_session_params *p,
                                    char *err, size_t errlen)
{
    if (m->vocab_only) {
        anc_set_err(err, errlen, "%s holds only a vocabulary; it cannot generate text", m->path);
        return NULL;
    }
    const struct model_hparams *hp = &m->hp;
    struct anc_session_params params = *p;
    if (params.ctx <= 0) params.ctx = hp->n_ctx_train;
    if (params.ctx < 1 || params.ctx > (1 << 24)) {
        anc_set_err(err, errlen, "context size %d is out of range (1 to %d)", params.ctx, 1 << 24);
        return NULL;
    }
    if (params.kv_type != ANC_DT_F16 && params.kv_type != ANC_DT_F32) {
        anc_set_err(err, errlen, "the KV cache can be f16 or f32");
        return NULL;
    }
    if (params.cache != ANC_CACHE_FULL) {
        anc_set_err(err, errlen, "cache policy %s is not available yet; use --cache full",
                    anc_cache_policy_name(params.cache));
        return NULL;
    }
    if (!anc_sampling_validate(&params.sampling, err, errlen)) return NULL;

    struct anc_session *s = calloc(1, sizeof *s);
    if (!s) {
        anc_set_err(err, errlen, "out of memory");
        return NULL;
    }
    s->m = m;
    s->be = m->be;
    s->p = params;
    int32_t capacity = params.ctx;
    int32_t kv_dim = hp->n_kv_head * hp->head_dim, q_dim = hp->n_head * hp->head_dim;
    s->kv = kv_cache_new(s->be, hp->n_layer, kv_dim, params.kv_type, capacity);
    s->smp = sampler_new(&params.sampling, hp->n_vocab);
    bool ok = s->kv && s->smp;
    size_t B = SESSION_BATCH;
    s->x = scratch(s, B * hp->dim, &ok);
    s->xb = scratch(s, B * hp->dim, &ok);
    s->q = scratch(s, B * q_dim, &ok);
    s->k_new = scratch(s, B * kv_dim, &ok);
    s->v_new = scratch(s, B * kv_dim, &ok);
    s->att = scratch(s, B * q_dim, &ok);
    s->hb = scratch(s, B * hp->n_ff, &ok);
    s->hb2 = scratch(s, B * hp->n_ff, &ok);
    s->k_rot = scratch(s, (size_t)capacity * kv_dim, &ok);
    s->logits = scratch(s, (size_t)hp->n_vocab, &ok);
    size_t npos = (size_t)(capacity > (int32_t)B ? capacity : (int32_t)B);
    s->pos = malloc(npos * sizeof *s->pos);
    s->lo = malloc(B * sizeof *s->lo);
    s->hi = malloc(B * sizeof *s->hi);
    if (!ok || !s->pos || !s->lo || !s->hi) {
        anc_set_err(err, errlen, "out of memory allocating a %d-token cache", capacity);
        anc_session_free(s);
        return NULL;
    }
    rope_params_default(&s->rope, hp->rope_dims,
                        params.rope_theta > 0 ? params.rope_theta : hp->rope_theta,
                        hp->n_ctx_train);
    s->rope.neox = hp->rope_neox;
    return s;
}

void anc_session_free(struct anc_session *s)
{
    if (!s) return;
    session_release_scratch(s);
    kv_cache_free(s->kv);
    rope_table_release(&s->rtab);
    sampler_free(s->smp);
    free(s);
}

/* Make sure the rotation table covers positions [0, n_pos). */
static bool ensure_rope(struct anc_session *s, int32_t n_pos)
{
    if (n_pos <= s->rtab_len) return true;
    int32_t want = s->rtab_len ? s->rtab_len : 256;
    while (want < n_pos) want *= 2;
    if (want > s->kv->capacity + SESSION_BATCH) want = s->kv->capacity + SESSION_BATCH;
    if (!rope_table_fill(&s->rtab, &s->rope, want, s->n_seen)) return false;
    s->rtab_len = want;
    return true;
}

/* One forward pass over n <= SESSION_BATCH new tokens that have already
 * been given cache entries [n_kv - n, n_kv). Writes logits of the last
 * token (and of every token into logits_all [n][n_vocab] when non-NULL). */
static void forward(struct anc_session *s, const int32_t *tokens, int32_t n, float *logits_all)
{
    struct anc_model *m = s->m;
    const struct model_hparams *hp = &m->hp;
    struct anc_backend *be = s->be;
    const struct anc_backend_ops *op = be->ops;
    struct kv_cache *kv = s->kv;
    int32_t dim = hp->dim, kv_dim = hp->n_kv_head * hp->head_dim;
    int32_t q_dim = hp->n_head * hp->head_dim, n_kv = kv->n, first = n_kv - n;

    /* Positions: an entry's position is its place in the cache. */
    for (int32_t j = 0; j < n_kv; j++) s->pos[j] = j;
    for (int32_t i = 0; i < n; i++) {
        s->lo[i] = 0;
        s->hi[i] = first + i + 1; /* causal: itself and everything before */
    }

    /* 1. token embeddings */
    op->embed(be, s->x, &m->tok_embd, tokens, n);

    for (int32_t l = 0; l < hp->n_layer; l++) {
        const struct model_layer *L = &m->layers[l];
        /* 2. attention block: norm, q/k/v projections */
        op->rmsnorm(be, s->xb, s->x, L->attn_norm, dim, n, hp->norm_eps);
        op->matmul(be, s->q, model_proj_weight(m, l, PROJ_Q), s->xb, n);
        op->matmul(be, s->k_new, model_proj_weight(m, l, PROJ_K), s->xb, n);
        op->matmul(be, s->v_new, model_proj_weight(m, l, PROJ_V), s->xb, n);
        /* 3. store the new keys (un-rotated) and values in the cache */
        for (int32_t i = 0; i < n; i++) {
            int32_t row = kv->slot[first + i];
            op->store_row(be, kv_cache_k_row(kv, l, row), kv->type, s->k_new + (size_t)i * kv_dim, kv_dim);
            op->store_row(be, kv_cache_v_row(kv, l, row), kv->type, s->v_new + (size_t)i * kv_dim, kv_dim);
        }
        /* 4. rotate every cached key at its position, and the queries */
        for (int32_t j = 0; j < n_kv; j++)
            op->load_row(be, s->k_rot + (size_t)j * kv_dim, kv_cache_k_row(kv, l, kv->slot[j]),
                         kv->type, kv_dim);
        op->rope(be, s->k_rot, n_kv, hp->n_kv_head, hp->head_dim, &s->rtab.t, s->pos);
        op->rope(be, s->q, n, hp->n_head, hp->head_dim, &s->rtab.t, s->pos + first);
        /* 5. attention over the cache, then the output projection */
        struct anc_attn_args a = {
            .out = s->att, .q = s->q, .q_sink = NULL, .k = s->k_rot,
            .v = kv->v[l], .v_type = kv->type, .v_slot = kv->slot,
            .n_q = n, .n_kv = n_kv, .n_head = hp->n_head, .n_kv_head = hp->n_kv_head,
            .head_dim = hp->head_dim, .n_sink = 0, .lo = s->lo, .hi = s->hi,
            .scale = 1.0f / sqrtf((float)hp->head_dim), .sink_mass = NULL,
        };
        op->attention(be, &a);
        op->matmul(be, s->xb, model_proj_weight(m, l, PROJ_O), s->att, n);
        op->add(be, s->x, s->xb, (int64_t)n * dim);
        /* 6. feed-forward block: norm, SwiGLU, down projection */
        op->rmsnorm(be, s->xb, s->x, L->ffn_norm, dim, n, hp->norm_eps);
        op->matmul(be, s->hb, model_proj_weight(m, l, PROJ_GATE), s->xb, n);
        op->matmul(be, s->hb2, model_proj_weight(m, l, PROJ_UP), s->xb, n);
        op->swiglu(be, s->hb, s->hb, s->hb2, (int64_t)n * hp->n_ff);
        op->matmul(be, s->xb, model_proj_weight(m, l, PROJ_DOWN), s->hb, n);
        op->add(be, s->x, s->xb, (int64_t)n * dim);
    }
    (void)q_dim;

    /* 7. final norm and the output head (every token, or just the last) */
    if (logits_all) {
        op->rmsnorm(be, s->xb, s->x, m->output_norm, dim, n, hp->norm_eps);
        op->matmul(be, logits_all, &m->output, s->xb, n);
        memcpy(s->logits, logits_all + (size_t)(n - 1) * hp->n_vocab,
               (size_t)hp->n_vocab * sizeof(float));
    } else {
        const float *last = s->x + (size_t)(n - 1) * dim;
        op->rmsnorm(be, s->xb, last, m->output_norm, dim, 1, hp->norm_eps);
        op->matmul(be, s->logits, &m->output, s->xb, 1);
    }
    s->have_logits = true;
}

static int feed(struct anc_session *s, const int32_t *tokens, size_t n, float *logits_all,
                char *err, size_t errlen)
{
    int32_t n_vocab = s->m->hp.n_vocab;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            anc_set_err(err, errlen, "token id %d is outside the vocabulary (0 to %d)", tokens[i],
                        n_vocab - 1);
            return -1;
        }
    }
    size_t done = 0;
    while (done < n) {
        int32_t b = (int32_t)(n - done < SESSION_BATCH ? n - done : SESSION_BATCH);
        if (s->kv->n + b > s->kv->capacity) {
            anc_set_err(err, errlen, "the context is full (%d tokens); start a new session or use "
                        "a larger --ctx", s->kv->capacity);
            return -1;
        }
        for (int32_t i = 0; i < b; i++) kv_cache_append(s->kv, s->n_seen + i);
        if (!ensure_rope(s, s->kv->n)) {
            anc_set_err(err, errlen, "out of memory for the RoPE table");
            return -1;
        }
        forward(s, tokens + done, b, logits_all ? logits_all + done * (size_t)n_vocab : NULL);
        for (int32_t i = 0; i < b; i++)
            s->recent[(s->n_seen + i) % SESSION_RECENT] = tokens[done + (size_t)i];
        s->n_seen += b;
        done += (size_t)b;
    }
    return 0;
}

int anc_session_feed(struct anc_session *s, const int32_t *tokens, size_t n, char *err,
                     size_t errlen)
{
    return feed(s, tokens, n, NULL, err, errlen);
}

const float *anc_session_logits(const struct anc_session *s)
{
    return s->have_logits ? s->logits : NULL;
}

int32_t anc_session_sample(struct anc_session *s)
{
    if (!s->have_logits) return -1;
    /* the recent tokens in order, oldest first */
    int32_t buf[SESSION_RECENT];
    size_t n = s->n_seen < SESSION_RECENT ? (size_t)s->n_seen : SESSION_RECENT;
    for (size_t i = 0; i < n; i++)
        buf[i] = s->recent[(size_t)(s->n_seen - (int64_t)n + (int64_t)i) % SESSION_RECENT];
    return sampler_sample(s->smp, s->logits, buf, n);
}

int64_t anc_session_n_seen(const struct anc_session *s) { return s->n_seen; }

void anc_session_set_sampling(struct anc_session *s, const struct anc_sampling *smp)
{
    s->p.sampling = *smp;
    sampler_set(s->smp, smp);
}

const char *anc_backends_compiled(void) { return "cpu"; }
const char *anc_version(void) { return "0.1.0"; }
