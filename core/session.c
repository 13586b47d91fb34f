/* session.c — a conversation with a model: the KV cache under a cache
 * policy (sink, window, recompute, full), the forward pass (embedding ->
 * layers -> logits, one backend call per operation), sampling, live
 * parameter changes and the statistics snapshot.
 * Depends on model, kv_cache, rope, sampler and the backend interface;
 * no UI libraries.
 *
 * Positions (TECHNIQUES.md §2): a cached entry's position is its place in
 * the cache, and attention scores depend only on position differences. So
 * each key is rotated once, at its text position, and the query at its own
 * text position: for every recent key the difference equals the in-cache
 * difference (the recent entries are contiguous text ending at the query).
 * The sinks are rotated at their place in the cache (0..S-1) and scored
 * with a second copy of the query rotated at its in-cache place
 * min(L, window - 1). Angles are formed in double, so large text positions
 * lose nothing. A key is re-rotated from its stored un-rotated form only
 * when its position or the RoPE settings (or dynamic NTK's base) change.
 * A batch of new tokens is appended after the cache; query L (its logical
 * index) sees the sinks [0, A) and the recent entries [lo, L] with
 * lo = max(A, L - (window - sinks) + 1): exactly the window_length entries
 * it would see if the tokens were fed one at a time with eviction before
 * each one. After the batch the
 * oldest non-sink entries are evicted down to the window. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ancora.h"
#include "kv_cache.h"
#include "lora.h"
#include "model.h"
#include "rope.h"
#include "sampler.h"
#include "util.h"

/* Tokens per forward call: large enough to reuse weights across tokens
 * during prefill, small enough to keep scratch buffers modest. Streaming
 * policies allocate the window plus one batch of cache rows. */
#define SESSION_BATCH 128
/* Tokens remembered for the repetition penalty. */
#define SESSION_RECENT 4096
/* Default window_length when none is given (or the context if smaller). */
#define SESSION_DEFAULT_WINDOW 4096
#define SESSION_MAX_WINDOW (1 << 22)

/* A group of layers that share one cache and one visibility rule: the
 * global layers under the user's policy, and the model's own
 * sliding-window layers (Gemma 2/3) under a fixed window of n_swa entries
 * at text positions with their own RoPE base, whatever the policy
 * (TECHNIQUES.md §5). Each group rotates its keys for its own table. */
struct cache_group {
    bool local;                   /* the model's sliding-window layers */
    int32_t n_layer;              /* layers in this group */
    struct kv_cache *kv;          /* [n_layer] of this group only */
    struct rope_params rope;
    struct rope_table rtab;
    uint32_t rot_epoch;           /* bumped when cached key rotations go stale */
    int64_t rtab_len;             /* sequence length it was built for (dynamic NTK) */
    double rope_base_eff;
    bool rope_dirty;

    int32_t scratch_cap;          /* cache rows k_rot/kpos cover */
    float *k_rot;    /* [scratch_cap][kv_dim] rotated keys, logical order (backend) */
    int32_t *kpos;   /* [scratch_cap] table index of each key to rotate */
    int32_t *rot_list;/* [scratch_cap] logical entries whose key is rotated this step */
    int32_t *rot_rows;/* [scratch_cap] their physical rows */
    int64_t *plist;  /* [scratch_cap + 2B] positions in this step's rotation table */
    int32_t qpos[SESSION_BATCH], qpos_sink[SESSION_BATCH];
    int32_t lo[SESSION_BATCH], hi[SESSION_BATCH];
    /* this step: keys to rotate (old ones reloaded first), sinks seen by
       every query, and whether sinks need their own query rotation */
    int32_t n_rot, n_old, n_always;
    bool two_q;
};

enum { GROUP_GLOBAL = 0, GROUP_LOCAL = 1 };

struct anc_session {
    struct anc_model *m;          /* borrowed */
    struct anc_backend *be;       /* borrowed from the model */

    /* settings: `p` is in force (engine thread); `next` collects live
       changes under `mu` and is applied before the next token */
    pthread_mutex_t mu;
    pthread_mutex_t run_mu;       /* held while the engine feeds or samples:
                                     a change made while it is free is
                                     applied at once (order: run_mu, then mu) */
    struct anc_session_params p;
    struct anc_session_params next;
    bool has_next;

    /* groups[GROUP_GLOBAL] always exists (it also keeps the token record
       the policy works on); groups[GROUP_LOCAL] only for models with
       sliding-window layers */
    struct cache_group groups[2];
    int32_t n_groups;
    struct kv_cache *kv;          /* = groups[GROUP_GLOBAL].kv */
    uint8_t *layer_group;         /* [n_layer] group of each layer */
    int32_t *layer_index;         /* [n_layer] its index within the group */
    struct sampler *smp;

    /* scratch for SESSION_BATCH tokens (shapes per token) */
    float *x;        /* [B][dim] residual stream */
    float *xb;       /* [B][dim] normed input / projections back to dim */
    float *q;        /* [B][q_dim] queries rotated for recent keys */
    float *q_sink;   /* [B][q_dim] queries rotated for the sinks */
    float *k_new;    /* [B][kv_dim] */
    float *v_new;    /* [B][kv_dim] */
    float *att;      /* [B][q_dim] attention output */
    float *hb;       /* [B][n_ff] */
    float *hb2;      /* [B][n_ff] */
    float *head_mass;/* [n_layer][n_head] backend memory: sink share per head */
    float *head_mass_host; /* [n_layer][n_head] host copy */
    float *layer_mass;/* [n_layer] host: mean over heads */
    float *logits_dev;/* [logits_rows][n_vocab] backend memory */
    int32_t logits_rows;
    float *logits;   /* [n_vocab] host copy of the last token's logits */
    float *lora_t;   /* [B][max rank] the adapter's A x, or NULL without one */
    float *lora_y;   /* [B][max out] its B (A x) */
    bool have_logits;
    bool logits_stale;/* logits_dev holds newer logits than `logits` */
    size_t scratch_bytes;

    int32_t recent[SESSION_RECENT]; /* ring of the last tokens fed */
    int64_t n_seen;

    /* statistics published for other threads (under mu) */
    struct anc_stats stats;
    int64_t *stats_orig;          /* [stats_orig_cap] */
    int32_t stats_orig_cap;
    float latency[ANC_STATS_LATENCY];
    int32_t n_latency, latency_head;
};

void anc_session_params_default(struct anc_session_params *p)
{
    memset(p, 0, sizeof *p);
    p->cache = ANC_CACHE_SINK;
    p->ctx = 0;
    p->window = 0;
    p->n_sink = 4;
    p->kv_type = ANC_DT_F16;
    p->rope.scaling = ANC_ROPE_FROM_FILE;
    anc_sampling_default(&p->sampling);
    p->lora = NULL;
    p->lora_scale = 1.0f;
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

const char *anc_rope_scaling_name(int scaling)
{
    return scaling == ANC_ROPE_FROM_FILE ? "file" : rope_scaling_name((enum rope_scaling)scaling);
}

int anc_rope_scaling_from_name(const char *name) { return rope_scaling_from_name(name); }

/* ---- settings ------------------------------------------------------- */

static bool streaming(enum anc_cache_policy p) { return p != ANC_CACHE_FULL; }

/* Sinks in force: none for the window policy. */
static int32_t sinks_of(const struct anc_session_params *p)
{
    return p->cache == ANC_CACHE_WINDOW ? 0 : p->n_sink;
}

/* Entries a token may attend to. */
static int32_t span_of(const struct anc_session_params *p)
{
    return streaming(p->cache) ? p->window : p->ctx;
}

/* Physical cache rows the policy needs: the window plus one batch for
 * streaming policies (the batch is appended before eviction). */
static int32_t rows_of(const struct anc_session_params *p)
{
    return streaming(p->cache) ? p->window + SESSION_BATCH : p->ctx;
}

/* The same rules for a group under the settings in force: the local
 * group is a window of the model's n_swa entries without sinks. */
static enum anc_cache_policy group_policy(const struct anc_session *s, const struct cache_group *g)
{
    return g->local ? ANC_CACHE_WINDOW : s->p.cache;
}
static int32_t group_sinks(const struct anc_session *s, const struct cache_group *g)
{
    return g->local ? 0 : sinks_of(&s->p);
}
static int32_t group_span(const struct anc_session *s, const struct cache_group *g)
{
    return g->local ? s->m->hp.n_swa : span_of(&s->p);
}
static int32_t group_rows(const struct anc_session *s, const struct cache_group *g)
{
    return g->local ? s->m->hp.n_swa + SESSION_BATCH : rows_of(&s->p);
}

/* Fill in defaults and check ranges; false + message when absurd. */
static bool params_resolve(const struct anc_model *m, struct anc_session_params *p, char *err,
                           size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    if (p->lora && p->lora->model != m) {
        anc_set_err(err, errlen, "the adapter %s was loaded for another model", p->lora->path);
        return false;
    }
    if (!isfinite(p->lora_scale) || fabsf(p->lora_scale) > 100.0f) {
        anc_set_err(err, errlen, "adapter scale %g is out of range (-100 to 100)", p->lora_scale);
        return false;
    }
    if (p->ctx <= 0) p->ctx = hp->n_ctx_train;
    if (p->ctx < 2 || p->ctx > SESSION_MAX_WINDOW) {
        anc_set_err(err, errlen, "context size %d is out of range (2 to %d)", p->ctx,
                    SESSION_MAX_WINDOW);
        return false;
    }
    if (p->window <= 0) p->window = p->ctx < SESSION_DEFAULT_WINDOW ? p->ctx : SESSION_DEFAULT_WINDOW;
    if (p->window < 2 || p->window > SESSION_MAX_WINDOW) {
        anc_set_err(err, errlen, "window %d is out of range (2 to %d)", p->window,
                    SESSION_MAX_WINDOW);
        return false;
    }
    if (p->n_sink < 0 || p->n_sink >= p->window) {
        anc_set_err(err, errlen, "sink count %d must be at least 0 and less than the window (%d)",
                    p->n_sink, p->window);
        return false;
    }
    if ((unsigned)p->cache > ANC_CACHE_FULL) {
        anc_set_err(err, errlen, "unknown cache policy");
        return false;
    }
    if (p->kv_type != ANC_DT_F16 && p->kv_type != ANC_DT_F32) {
        anc_set_err(err, errlen, "the KV cache can be f16 or f32");
        return false;
    }
    const struct anc_rope_settings *r = &p->rope;
    if (r->theta != 0 && !(r->theta > 1.0 && r->theta < 1e12)) {
        anc_set_err(err, errlen, "RoPE base %g is out of range (1 to 1e12)", r->theta);
        return false;
    }
    if (r->scaling < ANC_ROPE_FROM_FILE || r->scaling > ANC_ROPE_LLAMA3) {
        anc_set_err(err, errlen, "unknown RoPE scaling type");
        return false;
    }
    if (r->factor != 0 && !(r->factor >= 1.0 && r->factor <= 1024.0)) {
        anc_set_err(err, errlen, "RoPE scaling factor %g is out of range (1 to 1024)", r->factor);
        return false;
    }
    if (r->orig_ctx < 0 || r->orig_ctx > SESSION_MAX_WINDOW) {
        anc_set_err(err, errlen, "original context %d is out of range", r->orig_ctx);
        return false;
    }
    if ((r->yarn_beta_fast != 0 && !(r->yarn_beta_fast > 0 && r->yarn_beta_fast < 1e4)) ||
        (r->yarn_beta_slow != 0 && !(r->yarn_beta_slow > 0 && r->yarn_beta_slow < 1e4)) ||
        (r->yarn_attn_factor != 0 && !(r->yarn_attn_factor > 0 && r->yarn_attn_factor < 100))) {
        anc_set_err(err, errlen, "YaRN beta and attention factor must be positive and sane");
        return false;
    }
    return anc_sampling_validate(&p->sampling, err, errlen);
}

/* RoPE parameters from the settings, with the file's values as defaults.
 * `reach` is the largest position the session can use (the window, or the
 * context under the full policy): LongRoPE files take their long divisors
 * beyond the original context, as llama.cpp chooses them by its context
 * size. */
void session_rope_resolve(const struct anc_model *m, const struct anc_rope_settings *r,
                          int32_t reach, struct rope_params *out)
{
    const struct model_hparams *hp = &m->hp;
    rope_params_default(out, hp->rope_dims, r->theta > 0 ? r->theta : hp->rope_theta,
                        r->orig_ctx > 0 ? r->orig_ctx : hp->rope_orig_ctx);
    out->neox = hp->rope_neox;
    out->scaling = (enum rope_scaling)(r->scaling == ANC_ROPE_FROM_FILE ? hp->rope_scaling
                                                                         : r->scaling);
    out->factor = r->factor > 0 ? r->factor : hp->rope_factor;
    if (r->yarn_beta_fast > 0) out->yarn_beta_fast = r->yarn_beta_fast;
    if (r->yarn_beta_slow > 0) out->yarn_beta_slow = r->yarn_beta_slow;
    out->yarn_attn_factor = r->yarn_attn_factor > 0 ? r->yarn_attn_factor : hp->rope_attn_factor;
    /* a rope_freqs tensor already encodes Llama-3 scaling; choosing llama3
       explicitly replaces it rather than applying it twice */
    out->freq_divisors = out->scaling == ROPE_LLAMA3 ? NULL : m->rope_freqs;
    if (m->rope_long && out->scaling == ROPE_NONE) {
        bool use_long = reach > out->orig_ctx;
        out->freq_divisors = use_long ? m->rope_long : m->rope_short;
        out->long_rope = use_long ? 2 : 1;
        out->attn_factor = hp->rope_attn_factor;
    }
}

/* The local layers' RoPE: the model's own rule (base freq_base_swa, no
 * scaling), not the user's settings. */
static void rope_resolve_local(const struct anc_model *m, struct rope_params *out)
{
    const struct model_hparams *hp = &m->hp;
    rope_params_default(out, hp->rope_dims, hp->swa_base, hp->rope_orig_ctx);
    out->neox = hp->rope_neox;
    out->scaling = ROPE_NONE;
    out->factor = 1.0;
}

/* ---- allocation ------------------------------------------------------ */

static float *buf_new(struct anc_session *s, size_t n_floats, bool *ok)
{
    float *p = s->be->ops->alloc(s->be, n_floats * sizeof(float));
    if (!p) *ok = false;
    s->scratch_bytes += n_floats * sizeof(float);
    return p;
}

/* A group's key scratch sized for `rows` cache rows; the global group
 * also sizes the statistics' copy of the cache order. */
static bool key_scratch_ensure(struct anc_session *s, struct cache_group *g, int32_t rows)
{
    if (rows <= g->scratch_cap) return true;
    int32_t kv_dim = s->m->hp.kv_dim;
    float *k = s->be->ops->alloc(s->be, (size_t)rows * kv_dim * sizeof(float));
    int32_t *pos = malloc((size_t)rows * sizeof *pos);
    int32_t *list = malloc((size_t)rows * sizeof *list);
    int32_t *rrows = malloc((size_t)rows * sizeof *rrows);
    int64_t *plist = malloc(((size_t)rows + 2 * SESSION_BATCH) * sizeof *plist);
    int64_t *orig = g->local ? NULL : malloc((size_t)rows * sizeof *orig);
    if (!k || !pos || !list || !rrows || !plist || (!g->local && !orig)) {
        s->be->ops->free(s->be, k);
        free(pos);
        free(list);
        free(rrows);
        free(plist);
        free(orig);
        return false;
    }
    s->be->ops->free(s->be, g->k_rot);
    free(g->kpos);
    free(g->rot_list);
    free(g->rot_rows);
    free(g->plist);
    g->rot_list = list;
    g->rot_rows = rrows;
    g->plist = plist;
    s->scratch_bytes += ((size_t)rows - (size_t)g->scratch_cap) * kv_dim * sizeof(float);
    g->k_rot = k;
    g->kpos = pos;
    if (!g->local) {
        pthread_mutex_lock(&s->mu);
        free(s->stats_orig);
        s->stats_orig = orig;
        s->stats_orig_cap = rows;
        pthread_mutex_unlock(&s->mu);
    }
    g->scratch_cap = rows;
    return true;
}

static void group_release(struct anc_session *s, struct cache_group *g)
{
    s->be->ops->free(s->be, g->k_rot);
    free(g->kpos);
    free(g->rot_list);
    free(g->rot_rows);
    free(g->plist);
    kv_cache_free(g->kv);
    rope_table_release(&g->rtab);
}

/* Split the layers into the global and the local group and give each its
 * cache; false when out of memory. */
static bool groups_new(struct anc_session *s)
{
    const struct anc_model *m = s->m;
    const struct model_hparams *hp = &m->hp;
    s->layer_group = calloc((size_t)hp->n_layer, sizeof *s->layer_group);
    s->layer_index = calloc((size_t)hp->n_layer, sizeof *s->layer_index);
    if (!s->layer_group || !s->layer_index) return false;
    s->n_groups = hp->n_local > 0 ? 2 : 1;
    s->groups[GROUP_LOCAL].local = true;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        int gi = m->layers[l].local ? GROUP_LOCAL : GROUP_GLOBAL;
        s->layer_group[l] = (uint8_t)gi;
        s->layer_index[l] = s->groups[gi].n_layer++;
    }
    for (int32_t gi = 0; gi < s->n_groups; gi++) {
        struct cache_group *g = &s->groups[gi];
        g->kv = kv_cache_new(s->be, g->n_layer, hp->kv_dim, s->p.kv_type, group_rows(s, g));
        if (!g->kv || !key_scratch_ensure(s, g, group_rows(s, g))) return false;
        if (g->local) rope_resolve_local(m, &g->rope);
        else session_rope_resolve(m, &s->p.rope, span_of(&s->p), &g->rope);
        g->rope_dirty = true;
    }
    s->kv = s->groups[GROUP_GLOBAL].kv;
    return true;
}

static void publish_stats(struct anc_session *s);

struct anc_session *anc_session_new(struct anc_model *m, const struct anc_session_params *p,
                                    char *err, size_t errlen)
{
    if (m->vocab_only) {
        anc_set_err(err, errlen, "%s holds only a vocabulary; it cannot generate text", m->path);
        return NULL;
    }
    struct anc_session_params params = *p;
    if (!params_resolve(m, &params, err, errlen)) return NULL;
    const struct model_hparams *hp = &m->hp;
    struct anc_session *s = calloc(1, sizeof *s);
    if (!s) {
        anc_set_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->run_mu, NULL);
    s->m = m;
    s->be = m->be;
    s->p = params;
    int32_t kv_dim = hp->kv_dim, q_dim = hp->q_dim;
    s->smp = sampler_new(&params.sampling, hp->n_vocab);
    bool ok = s->smp != NULL;
    size_t B = SESSION_BATCH;
    s->x = buf_new(s, B * hp->dim, &ok);
    s->xb = buf_new(s, B * hp->dim, &ok);
    s->q = buf_new(s, B * q_dim, &ok);
    s->q_sink = buf_new(s, B * q_dim, &ok);
    s->k_new = buf_new(s, B * kv_dim, &ok);
    s->v_new = buf_new(s, B * kv_dim, &ok);
    s->att = buf_new(s, B * q_dim, &ok);
    s->hb = buf_new(s, B * hp->n_ff, &ok);
    s->hb2 = buf_new(s, B * hp->n_ff, &ok);
    s->head_mass = buf_new(s, (size_t)hp->n_layer * hp->n_head, &ok);
    s->logits_dev = buf_new(s, (size_t)hp->n_vocab, &ok);
    if (params.lora) {
        s->lora_t = buf_new(s, B * (size_t)params.lora->max_rank, &ok);
        s->lora_y = buf_new(s, B * (size_t)params.lora->max_out, &ok);
    }
    s->logits_rows = 1;
    s->head_mass_host = calloc((size_t)hp->n_layer * hp->n_head, sizeof(float));
    s->layer_mass = calloc((size_t)hp->n_layer, sizeof(float));
    s->logits = calloc((size_t)hp->n_vocab, sizeof(float));
    ok = ok && s->head_mass_host && s->layer_mass && s->logits;
    if (!ok || !groups_new(s)) {
        anc_set_err(err, errlen, "out of memory allocating a %d-entry cache", rows_of(&params));
        anc_session_free(s);
        return NULL;
    }
    publish_stats(s);
    return s;
}

void anc_session_free(struct anc_session *s)
{
    if (!s) return;
    float *bufs[] = {s->x, s->xb, s->q, s->q_sink, s->k_new, s->v_new, s->att, s->hb, s->hb2,
                     s->head_mass, s->logits_dev, s->lora_t, s->lora_y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) s->be->ops->free(s->be, bufs[i]);
    for (int gi = 0; gi < 2; gi++) group_release(s, &s->groups[gi]);
    free(s->layer_group);
    free(s->layer_index);
    free(s->head_mass_host);
    free(s->layer_mass);
    free(s->logits);
    free(s->stats_orig);
    sampler_free(s->smp);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->run_mu);
    free(s);
}

/* ---- RoPE ------------------------------------------------------------ */

/* Track what a group's rotated keys depend on: the settings (a change
 * marks rope_dirty) and, for dynamic NTK, the sequence length. A change
 * starts a new epoch, which makes every cached rotation stale. */
static void rope_update(struct cache_group *g, int64_t len)
{
    bool dyn = g->rope.scaling == ROPE_DYNAMIC && g->rope.factor > 1.0;
    int64_t eff_len = dyn ? (len > g->rope.orig_ctx ? len : g->rope.orig_ctx) : 0;
    if (!g->rope_dirty && eff_len == g->rtab_len) return;
    g->rtab_len = eff_len;
    g->rope_base_eff = dyn ? rope_dynamic_base(g->rope.base, g->rope.dims, g->rope.factor,
                                               g->rope.orig_ctx, eff_len)
                           : g->rope.base;
    g->rope_dirty = false;
    g->rot_epoch++;
}

/* ---- the forward pass ------------------------------------------------ */

/* The position logical entry j of group g's key is rotated at. Recent
 * keys use their text index (the query uses its own, so their distance is
 * the text distance, as in-cache positions give); sinks use their place in
 * the cache, as the query does for them (qpos_sink); recompute runs use
 * places 0..W-1. */
static int64_t key_position(const struct anc_session *s, const struct cache_group *g, int32_t j)
{
    if (group_policy(s, g) == ANC_CACHE_RECOMPUTE || j < group_sinks(s, g)) return j;
    return g->kv->orig[j];
}

/* Room in logits_dev for every token's logits of an n-token batch. */
static bool logits_rows_ensure(struct anc_session *s, int32_t n)
{
    if (n <= s->logits_rows) return true;
    size_t vocab_bytes = (size_t)s->m->hp.n_vocab * sizeof(float);
    float *p = s->be->ops->alloc(s->be, (size_t)SESSION_BATCH * vocab_bytes);
    if (!p) return false;
    s->be->ops->free(s->be, s->logits_dev);
    s->scratch_bytes += (size_t)(SESSION_BATCH - s->logits_rows) * vocab_bytes;
    s->logits_dev = p;
    s->logits_rows = SESSION_BATCH;
    return true;
}

/* Step 0 of a forward pass for one group whose last n logical entries are
 * the new tokens: which keys need rotating (the new ones, and any whose
 * position or RoPE epoch changed), and one small table for every position
 * used; the queries' positions become indices into it. */
static bool group_plan_rotation(struct anc_session *s, struct cache_group *g, int32_t n)
{
    const struct kv_cache *kv = g->kv;
    int32_t n_rot = 0, n_pos = 0;
    for (int32_t j = 0; j < kv->n; j++) {
        int32_t row = kv->slot[j];
        int64_t want = key_position(s, g, j);
        if (kv->rot_pos[row] == want && kv->rot_epoch[row] == g->rot_epoch) continue;
        g->rot_list[n_rot] = j;
        g->rot_rows[n_rot] = row;
        g->kpos[n_rot] = n_pos;
        g->plist[n_pos++] = want;
        n_rot++;
    }
    for (int32_t i = 0; i < n; i++) {
        g->plist[n_pos] = g->qpos[i];
        g->qpos[i] = n_pos++;
        g->plist[n_pos] = g->qpos_sink[i];
        g->qpos_sink[i] = n_pos++;
    }
    /* the rotation list is in logical order and every new entry is in it
       (its row is fresh), so it is the old keys to reload, then the new ones */
    g->n_rot = n_rot;
    g->n_old = n_rot - n;
    return rope_table_fill_list(&g->rtab, &g->rope, g->plist, n_pos, g->rtab_len);
}

/* After a forward pass every layer's rotation is current. */
static void group_note_rotation(struct cache_group *g)
{
    struct kv_cache *kv = g->kv;
    for (int32_t t = 0; t < g->n_rot; t++) {
        int32_t row = kv->slot[g->rot_list[t]];
        kv->rot_pos[row] = g->plist[g->kpos[t]];
        kv->rot_epoch[row] = g->rot_epoch;
    }
}

/* y = W x for projection p of layer l, plus the adapter's
 * scale·(alpha/r)·B(A x) where it adapts that weight.
 * x: [n][in], y: [n][out] (backend memory, distinct). */
static void proj(struct anc_session *s, float *y, int32_t l, enum model_proj p, const float *x,
                 int32_t n)
{
    struct anc_backend *be = s->be;
    const struct anc_backend_ops *op = be->ops;
    const struct anc_weight *w = model_proj_weight(s->m, l, p);
    op->matmul(be, y, w, x, n);
    const struct lora_pair *pr = lora_pair_of(s->p.lora, l, p);
    if (!pr || s->p.lora_scale == 0.0f) return;
    int64_t n_out = (int64_t)n * w->rows;
    op->matmul(be, s->lora_t, &pr->a, x, n);        /* [n][r] */
    op->matmul(be, s->lora_y, &pr->b, s->lora_t, n); /* [n][out] */
    op->scale(be, s->lora_y, s->p.lora_scale * pr->alpha_scale, n_out);
    op->add(be, y, s->lora_y, n_out);
}

/* Attention sub-block of layer l for n new tokens: s->xb (normed input)
 * -> s->att. Keys are stored as computed (after the family's q/k norm,
 * before RoPE), then the group's stale keys and the queries are rotated. */
static void layer_attention(struct anc_session *s, int32_t l, int32_t n)
{
    const struct anc_model *m = s->m;
    const struct model_hparams *hp = &m->hp;
    const struct model_layer *L = &m->layers[l];
    struct anc_backend *be = s->be;
    const struct anc_backend_ops *op = be->ops;
    struct cache_group *g = &s->groups[s->layer_group[l]];
    struct kv_cache *kv = g->kv;
    int32_t li = s->layer_index[l], kv_dim = hp->kv_dim, first = kv->n - n;
    proj(s, s->q, l, PROJ_Q, s->xb, n);
    proj(s, s->k_new, l, PROJ_K, s->xb, n);
    proj(s, s->v_new, l, PROJ_V, s->xb, n);
    if (L->bq.data) op->add_rows(be, s->q, &L->bq, hp->q_dim, n);
    if (L->bk.data) op->add_rows(be, s->k_new, &L->bk, kv_dim, n);
    if (L->bv.data) op->add_rows(be, s->v_new, &L->bv, kv_dim, n);
    if (L->q_norm.data) { /* per head: rows of head_dim */
        op->rmsnorm(be, s->q, s->q, &L->q_norm, hp->head_dim, n * hp->n_head, hp->norm_eps);
        op->rmsnorm(be, s->k_new, s->k_new, &L->k_norm, hp->head_dim, n * hp->n_kv_head,
                    hp->norm_eps);
    }
    op->store_rows(be, kv->k[li], kv->type, s->k_new, kv->slot + first, n, kv_dim);
    op->store_rows(be, kv->v[li], kv->type, s->v_new, kv->slot + first, n, kv_dim);
    if (g->n_old > 0)
        op->load_rows(be, g->k_rot, kv->k[li], kv->type, g->rot_rows, g->n_old, kv_dim);
    op->copy(be, g->k_rot + (size_t)g->n_old * kv_dim, s->k_new, (size_t)n * kv_dim * sizeof(float));
    op->rope(be, g->k_rot, g->n_rot, hp->n_kv_head, hp->head_dim, &g->rtab.t, g->kpos);
    op->store_rows(be, kv->kr[li], kv->type, g->k_rot, g->rot_rows, g->n_rot, kv_dim);
    if (g->two_q) op->copy(be, s->q_sink, s->q, (size_t)n * hp->q_dim * sizeof(float));
    op->rope(be, s->q, n, hp->n_head, hp->head_dim, &g->rtab.t, g->qpos);
    if (g->two_q) op->rope(be, s->q_sink, n, hp->n_head, hp->head_dim, &g->rtab.t, g->qpos_sink);
    struct anc_attn_args a = {
        .out = s->att, .q = s->q, .q_sink = g->two_q ? s->q_sink : NULL,
        .k = kv->kr[li], .v = kv->v[li], .kv_type = kv->type, .slot = kv->slot,
        .n_q = n, .n_kv = kv->n, .n_head = hp->n_head, .n_kv_head = hp->n_kv_head,
        .head_dim = hp->head_dim, .n_sink = g->n_always, .lo = g->lo, .hi = g->hi,
        .scale = hp->attn_scale, .softcap = hp->attn_softcap,
        .sink_mass = g->n_always > 0 ? s->head_mass + (size_t)l * hp->n_head : NULL,
    };
    op->attention(be, &a);
}

/* Feed-forward sub-block of layer l: s->xb (normed input) -> s->xb. */
static void layer_ffn(struct anc_session *s, int32_t l, int32_t n)
{
    const struct anc_model *m = s->m;
    struct anc_backend *be = s->be;
    const struct anc_backend_ops *op = be->ops;
    int64_t ff = (int64_t)n * m->hp.n_ff;
    proj(s, s->hb, l, PROJ_GATE, s->xb, n);
    proj(s, s->hb2, l, PROJ_UP, s->xb, n);
    if (m->arch->act == ACT_GELU_TANH) op->geglu(be, s->hb, s->hb, s->hb2, ff);
    else op->swiglu(be, s->hb, s->hb, s->hb2, ff);
    proj(s, s->xb, l, PROJ_DOWN, s->hb, n);
}

/* One forward pass over n <= SESSION_BATCH new tokens whose cache entries
 * are the last n logical entries of every group. Each group's qpos /
 * qpos_sink / lo / hi / n_always / two_q describe what each query sees.
 * Writes logits of the last token (and of every token into logits_all
 * [n][n_vocab] when non-NULL). false only when out of memory. */
static bool forward(struct anc_session *s, const int32_t *tokens, int32_t n, float *logits_all)
{
    struct anc_model *m = s->m;
    const struct model_hparams *hp = &m->hp;
    struct anc_backend *be = s->be;
    const struct anc_backend_ops *op = be->ops;
    int32_t dim = hp->dim;
    if (logits_all && !logits_rows_ensure(s, n)) return false;
    for (int32_t gi = 0; gi < s->n_groups; gi++)
        if (!group_plan_rotation(s, &s->groups[gi], n)) return false;

    /* 1. token embeddings (scaled by sqrt(dim) in Gemma) */
    /* the weights LoRA+ may have trained (the base's without an adapter) */
    const struct anc_lora *lo = s->p.lora_scale != 0.0f ? s->p.lora : NULL;
    op->embed(be, s->x, lora_embd(lo, m), tokens, n);
    if (hp->embed_scale != 1.0f) op->scale(be, s->x, hp->embed_scale, (int64_t)n * dim);

    for (int32_t l = 0; l < hp->n_layer; l++) {
        const struct model_layer *L = &m->layers[l];
        /* 2. attention block: pre-norm, attention, output projection,
           the family's post-norm, residual */
        op->rmsnorm(be, s->xb, s->x, lora_norm(lo, m, l, 'a'), dim, n, hp->norm_eps);
        layer_attention(s, l, n);
        proj(s, s->xb, l, PROJ_O, s->att, n);
        if (L->bo.data) op->add_rows(be, s->xb, &L->bo, dim, n);
        if (L->post_attn_norm.data)
            op->rmsnorm(be, s->xb, s->xb, &L->post_attn_norm, dim, n, hp->norm_eps);
        op->add(be, s->x, s->xb, (int64_t)n * dim);
        /* 3. feed-forward block, the same way */
        op->rmsnorm(be, s->xb, s->x, lora_norm(lo, m, l, 'f'), dim, n, hp->norm_eps);
        layer_ffn(s, l, n);
        if (L->post_ffn_norm.data)
            op->rmsnorm(be, s->xb, s->xb, &L->post_ffn_norm, dim, n, hp->norm_eps);
        op->add(be, s->x, s->xb, (int64_t)n * dim);
    }
    for (int32_t gi = 0; gi < s->n_groups; gi++) group_note_rotation(&s->groups[gi]);

    /* 4. final norm and the output head (every token, or just the last);
       the last token's logits are fetched when they are asked for */
    size_t vocab_bytes = (size_t)hp->n_vocab * sizeof(float);
    if (logits_all) {
        op->rmsnorm(be, s->xb, s->x, lora_output_norm(lo, m), dim, n, hp->norm_eps);
        op->matmul(be, s->logits_dev, lora_output(lo, m), s->xb, n);
        if (hp->final_softcap > 0)
            op->softcap(be, s->logits_dev, hp->final_softcap, (int64_t)n * hp->n_vocab);
        op->download(be, logits_all, s->logits_dev, (size_t)n * vocab_bytes);
        memcpy(s->logits, logits_all + (size_t)(n - 1) * hp->n_vocab, vocab_bytes);
        s->logits_stale = false;
    } else {
        const float *last = s->x + (size_t)(n - 1) * dim;
        op->rmsnorm(be, s->xb, last, lora_output_norm(lo, m), dim, 1, hp->norm_eps);
        op->matmul(be, s->logits_dev, lora_output(lo, m), s->xb, 1);
        if (hp->final_softcap > 0) op->softcap(be, s->logits_dev, hp->final_softcap, hp->n_vocab);
        s->logits_stale = true;
    }
    /* 5. the share of attention on the sinks, per global layer (mean over
       heads); local layers have no sinks */
    const struct cache_group *gg = &s->groups[GROUP_GLOBAL];
    if (gg->n_always > 0) {
        op->download(be, s->head_mass_host, s->head_mass,
                     (size_t)hp->n_layer * hp->n_head * sizeof(float));
        for (int32_t l = 0; l < hp->n_layer; l++) {
            float sum = 0.0f;
            for (int32_t h = 0; h < hp->n_head; h++) sum += s->head_mass_host[(size_t)l * hp->n_head + h];
            s->layer_mass[l] = s->layer_group[l] == GROUP_GLOBAL ? sum / hp->n_head : 0.0f;
        }
    } else {
        for (int32_t l = 0; l < hp->n_layer; l++) s->layer_mass[l] = 0.0f;
    }
    s->have_logits = true;
    return true;
}

/* The last token's logits in host memory (fetched from the backend once). */
static const float *host_logits(struct anc_session *s)
{
    if (s->logits_stale) {
        s->be->ops->download(s->be, s->logits, s->logits_dev,
                             (size_t)s->m->hp.n_vocab * sizeof(float));
        s->logits_stale = false;
    }
    return s->logits;
}

/* Evict a group's oldest non-sink entries until at most `keep` remain. */
static void evict_to(struct anc_session *s, struct cache_group *g, int32_t keep)
{
    struct kv_cache *kv = g->kv;
    int32_t S = group_sinks(s, g);
    if (S > kv->n) S = kv->n;
    if (kv->n > keep) kv_cache_evict(kv, S, kv->n - keep);
}

/* Append b tokens (text indices orig0, orig0 + 1, ...) to group g and
 * describe what each query sees (the header comment's visibility rule,
 * with the group's window and sinks). false when the rows are exhausted. */
static bool group_append(struct anc_session *s, struct cache_group *g, const int32_t *toks,
                         int32_t b, int64_t orig0)
{
    struct kv_cache *kv = g->kv;
    int32_t W = g->local ? group_span(s, g) : span_of(&s->p), S = group_sinks(s, g);
    int32_t n0 = kv->n;
    int32_t A = S < n0 ? S : n0; /* sinks already in the cache */
    g->two_q = false;
    for (int32_t i = 0; i < b; i++) {
        int32_t L = n0 + i;
        /* until the sinks are complete (L < S, so L < W) nothing has been
           evicted and the query sees everything before it */
        int32_t lo = L < S ? A : L - (W - S) + 1;
        g->lo[i] = lo > A ? lo : A;
        g->hi[i] = L + 1;
        if (kv_cache_append(kv, orig0 + i, toks[i]) < 0) return false;
        /* the query is rotated where its own key is (its text position),
           and for the sinks at its place in the cache */
        g->qpos[i] = key_position(s, g, L);
        g->qpos_sink[i] = L < W - 1 ? L : W - 1;
        g->two_q |= S > 0 && g->qpos_sink[i] != g->qpos[i];
    }
    g->n_always = A;
    rope_update(g, kv->n < W ? kv->n : W);
    return true;
}

/* Append and run one batch of b tokens, the first at text index orig0,
 * under the sink / window / full policy for the global layers and the
 * model's window for the local ones. */
static int step_cached(struct anc_session *s, const int32_t *toks, int32_t b, int64_t orig0,
                       float *logits_all, char *err, size_t errlen)
{
    for (int32_t gi = 0; gi < s->n_groups; gi++) {
        if (!group_append(s, &s->groups[gi], toks, b, orig0)) {
            for (int32_t gj = 0; gj <= gi; gj++) {
                struct kv_cache *kv = s->groups[gj].kv;
                int32_t added = gj < gi ? b : 0;
                if (added) kv_cache_evict(kv, kv->n - added, added);
            }
            anc_set_err(err, errlen, "internal error: cache rows exhausted");
            return -1;
        }
    }
    if (!forward(s, toks, b, logits_all)) {
        for (int32_t gi = 0; gi < s->n_groups; gi++) {
            struct kv_cache *kv = s->groups[gi].kv;
            kv_cache_evict(kv, kv->n - b, b);
        }
        anc_set_err(err, errlen, "out of memory for the RoPE table or the logits buffer");
        return -1;
    }
    for (int32_t gi = 0; gi < s->n_groups; gi++) {
        struct cache_group *g = &s->groups[gi];
        if (g->local || streaming(s->p.cache)) evict_to(s, g, group_span(s, g));
    }
    return 0;
}

/* Recompute policy: the caches are rebuilt from the last window tokens
 * (the new one included) at positions 0..W-1 for every new token (the
 * local layers see their own window of those, as in a fresh run). */
static int step_recompute(struct anc_session *s, int32_t tok, float *logits, char *err,
                          size_t errlen)
{
    struct kv_cache *kv = s->kv;
    int32_t W = s->p.window;
    int32_t keep = kv->n < W - 1 ? kv->n : W - 1;
    int32_t *win = malloc(((size_t)keep + 1) * sizeof *win);
    if (!win) {
        anc_set_err(err, errlen, "out of memory");
        return -1;
    }
    int64_t orig0 = s->n_seen - keep; /* the window is the last keep + 1 tokens */
    for (int32_t j = 0; j < keep; j++) win[j] = kv->tok[kv->n - keep + j];
    win[keep] = tok;
    for (int32_t gi = 0; gi < s->n_groups; gi++) kv_cache_clear(s->groups[gi].kv);
    int rc = 0;
    for (int32_t done = 0; done <= keep && rc == 0;) {
        int32_t S = sinks_of(&s->p);
        int32_t b = keep + 1 - done < SESSION_BATCH ? keep + 1 - done : SESSION_BATCH;
        if (kv->n < S && b > S - kv->n) b = S - kv->n; /* sinks never share a batch */
        bool last = done + b > keep;
        rc = step_cached(s, win + done, b, orig0 + done, NULL, err, errlen);
        done += b;
        if (rc == 0 && last && logits)
            memcpy(logits, host_logits(s), (size_t)s->m->hp.n_vocab * sizeof(float));
    }
    free(win);
    return rc;
}

/* ---- live changes ---------------------------------------------------- */

/* Apply settings collected by the setters (engine thread, between tokens). */
static bool apply_next(struct anc_session *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    bool has = s->has_next;
    struct anc_session_params np = s->next;
    s->has_next = false;
    pthread_mutex_unlock(&s->mu);
    if (!has) return true;
    struct anc_session_params old = s->p;
    s->p = np;
    /* the global layers' cache (the local ones keep the model's window):
       shrink now (oldest non-sinks go), then resize rows */
    struct cache_group *g = &s->groups[GROUP_GLOBAL];
    int32_t span = span_of(&np);
    if (s->kv->n > span) evict_to(s, g, span);
    int32_t rows = rows_of(&np);
    if (rows != s->kv->capacity) {
        if (rows < s->kv->n) rows = s->kv->n;
        if (!kv_cache_resize(s->kv, rows) || !key_scratch_ensure(s, g, rows)) {
            s->p = old;
            anc_set_err(err, errlen, "out of memory resizing the cache to %d entries", rows);
            return false;
        }
    }
    struct rope_params rp;
    session_rope_resolve(s->m, &np.rope, span_of(&np), &rp);
    if (memcmp(&rp, &g->rope, sizeof rp) != 0) { /* settings, or LongRoPE's choice */
        g->rope = rp;
        g->rope_dirty = true;
    }
    if (memcmp(&np.sampling, &old.sampling, sizeof np.sampling) != 0) sampler_set(s->smp, &np.sampling);
    return true;
}

/* Validate a change against the settings in force (pending ones
 * included) and queue it. */
static bool queue_change(struct anc_session *s, void (*edit)(struct anc_session_params *, const void *),
                         const void *arg, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    struct anc_session_params np = s->has_next ? s->next : s->p;
    edit(&np, arg);
    bool ok = params_resolve(s->m, &np, err, errlen);
    if (ok) {
        s->next = np;
        s->has_next = true;
    }
    pthread_mutex_unlock(&s->mu);
    /* the engine is between tokens or idle: apply now, so the cache and
       the statistics show the change at once (shrinking evicts now) */
    if (ok && pthread_mutex_trylock(&s->run_mu) == 0) {
        ok = apply_next(s, err, errlen);
        publish_stats(s);
        pthread_mutex_unlock(&s->run_mu);
    }
    return ok;
}

static void edit_window(struct anc_session_params *p, const void *a) { p->window = *(const int32_t *)a; }
static void edit_sinks(struct anc_session_params *p, const void *a) { p->n_sink = *(const int32_t *)a; }
static void edit_policy(struct anc_session_params *p, const void *a)
{
    p->cache = *(const enum anc_cache_policy *)a;
}
static void edit_rope(struct anc_session_params *p, const void *a)
{
    p->rope = *(const struct anc_rope_settings *)a;
}
static void edit_sampling(struct anc_session_params *p, const void *a)
{
    p->sampling = *(const struct anc_sampling *)a;
}

bool anc_session_set_window(struct anc_session *s, int32_t window, char *err, size_t errlen)
{
    return queue_change(s, edit_window, &window, err, errlen);
}
bool anc_session_set_sinks(struct anc_session *s, int32_t n_sink, char *err, size_t errlen)
{
    return queue_change(s, edit_sinks, &n_sink, err, errlen);
}
bool anc_session_set_policy(struct anc_session *s, enum anc_cache_policy p, char *err,
                            size_t errlen)
{
    return queue_change(s, edit_policy, &p, err, errlen);
}
bool anc_session_set_rope(struct anc_session *s, const struct anc_rope_settings *r, char *err,
                          size_t errlen)
{
    return queue_change(s, edit_rope, r, err, errlen);
}
bool anc_session_set_sampling(struct anc_session *s, const struct anc_sampling *smp, char *err,
                              size_t errlen)
{
    return queue_change(s, edit_sampling, smp, err, errlen);
}

void anc_session_get_params(const struct anc_session *s, struct anc_session_params *out)
{
    struct anc_session *ms = (struct anc_session *)s;
    pthread_mutex_lock(&ms->mu);
    *out = s->has_next ? s->next : s->p;
    pthread_mutex_unlock(&ms->mu);
}

/* ---- feeding --------------------------------------------------------- */

static void remember(struct anc_session *s, const int32_t *toks, int32_t n)
{
    for (int32_t i = 0; i < n; i++) s->recent[(s->n_seen + i) % SESSION_RECENT] = toks[i];
    s->n_seen += n;
}

static void note_speed(struct anc_session *s, int32_t n, double secs)
{
    if (secs <= 0) return;
    pthread_mutex_lock(&s->mu);
    if (n == 1) {
        s->stats.decode_tok_s = 1.0 / secs;
        s->latency[s->latency_head] = (float)(secs * 1e3);
        s->latency_head = (s->latency_head + 1) % ANC_STATS_LATENCY;
        if (s->n_latency < ANC_STATS_LATENCY) s->n_latency++;
    } else {
        s->stats.prefill_tok_s = n / secs;
    }
    pthread_mutex_unlock(&s->mu);
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
    if (!apply_next(s, err, errlen)) return -1;
    if (s->p.cache == ANC_CACHE_FULL && (size_t)s->kv->n + n > (size_t)s->p.ctx) {
        anc_set_err(err, errlen, "the context is full (%d tokens); start a new session, raise "
                    "--ctx, or use a streaming cache policy (--cache sink)", s->p.ctx);
        return -1;
    }
    double t0 = anc_now();
    size_t done = 0;
    while (done < n) {
        if (s->p.cache == ANC_CACHE_RECOMPUTE) {
            /* only the last window matters unless every token's logits do */
            if (!logits_all && n - done > 1) {
                size_t skip = n - done - 1;
                int32_t W = s->p.window;
                /* put the skipped tokens into the cache record without running them */
                for (size_t i = 0; i < skip; i++) {
                    if (s->kv->n >= W) kv_cache_evict(s->kv, 0, 1);
                    kv_cache_append(s->kv, s->n_seen, tokens[done + i]);
                    remember(s, tokens + done + i, 1);
                }
                done += skip;
            }
            float *out = logits_all ? logits_all + done * (size_t)n_vocab : NULL;
            if (step_recompute(s, tokens[done], out, err, errlen) != 0) return -1;
            remember(s, tokens + done, 1);
            done++;
            continue;
        }
        int32_t b = (int32_t)(n - done < SESSION_BATCH ? n - done : SESSION_BATCH);
        int32_t S = sinks_of(&s->p);
        if (s->kv->n < S && b > S - s->kv->n) b = S - s->kv->n; /* sinks never share a batch */
        float *out = logits_all ? logits_all + done * (size_t)n_vocab : NULL;
        if (step_cached(s, tokens + done, b, s->n_seen, out, err, errlen) != 0) return -1;
        remember(s, tokens + done, b);
        done += (size_t)b;
    }
    note_speed(s, (int32_t)n, anc_now() - t0);
    publish_stats(s);
    return 0;
}

int anc_session_feed(struct anc_session *s, const int32_t *tokens, size_t n, char *err,
                     size_t errlen)
{
    pthread_mutex_lock(&s->run_mu);
    int rc = feed(s, tokens, n, NULL, err, errlen);
    pthread_mutex_unlock(&s->run_mu);
    return rc;
}

int anc_session_feed_all(struct anc_session *s, const int32_t *tokens, size_t n,
                         float *logits_all, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->run_mu);
    int rc = feed(s, tokens, n, logits_all, err, errlen);
    pthread_mutex_unlock(&s->run_mu);
    return rc;
}

const float *anc_session_logits(const struct anc_session *s)
{
    /* fetching the logits changes nothing a caller can see */
    return s->have_logits ? host_logits((struct anc_session *)s) : NULL;
}

int32_t anc_session_sample(struct anc_session *s)
{
    if (!s->have_logits) return -1;
    char err[8];
    pthread_mutex_lock(&s->run_mu);
    apply_next(s, err, sizeof err); /* sampling changes take effect here too */
    int32_t buf[SESSION_RECENT];
    size_t n = s->n_seen < SESSION_RECENT ? (size_t)s->n_seen : SESSION_RECENT;
    for (size_t i = 0; i < n; i++)
        buf[i] = s->recent[(size_t)(s->n_seen - (int64_t)n + (int64_t)i) % SESSION_RECENT];
    int32_t tok;
    if (s->logits_stale && sampler_is_greedy(s->smp))
        tok = s->be->ops->argmax(s->be, s->logits_dev, s->m->hp.n_vocab); /* on the device */
    else
        tok = sampler_sample(s->smp, host_logits(s), buf, n);
    pthread_mutex_unlock(&s->run_mu);
    return tok;
}

int64_t anc_session_n_seen(const struct anc_session *s) { return s->n_seen; }

void anc_session_reset(struct anc_session *s)
{
    pthread_mutex_lock(&s->run_mu);
    for (int32_t gi = 0; gi < s->n_groups; gi++) kv_cache_clear(s->groups[gi].kv);
    s->n_seen = 0;
    s->have_logits = false;
    publish_stats(s);
    pthread_mutex_unlock(&s->run_mu);
}

/* ---- statistics ------------------------------------------------------- */

/* Copy the engine's state into the snapshot (engine thread). */
static void publish_stats(struct anc_session *s)
{
    const struct model_hparams *hp = &s->m->hp;
    const struct kv_cache *kv = s->kv;
    pthread_mutex_lock(&s->mu);
    struct anc_stats *st = &s->stats;
    st->policy = s->p.cache;
    st->n_seen = s->n_seen;
    st->n_cached = kv->n;
    st->n_evicted = s->n_seen - kv->n > 0 ? s->n_seen - kv->n : 0;
    st->capacity = span_of(&s->p);
    st->window = s->p.window;
    st->n_sink = sinks_of(&s->p);
    st->n_sink_now = st->n_sink < kv->n ? st->n_sink : kv->n;
    for (int32_t i = 0; i < st->n_sink_now && i < ANC_STATS_MAX_SINKS; i++) st->sink_ids[i] = kv->tok[i];
    st->n_layer = hp->n_layer < ANC_STATS_MAX_LAYERS ? hp->n_layer : ANC_STATS_MAX_LAYERS;
    for (int32_t l = 0; l < st->n_layer; l++) st->sink_mass[l] = s->layer_mass ? s->layer_mass[l] : 0;
    const struct cache_group *g = &s->groups[GROUP_GLOBAL];
    for (int32_t l = 0; l < st->n_layer; l++) st->layer_local[l] = s->layer_group[l] == GROUP_LOCAL;
    st->n_layer_local = hp->n_local;
    st->local_window = hp->n_swa;
    st->local_rope_theta = hp->n_local > 0 ? s->groups[GROUP_LOCAL].rope.base : 0;
    st->n_cached_local = hp->n_local > 0 ? s->groups[GROUP_LOCAL].kv->n : 0;
    st->rope_scaling = (int)g->rope.scaling;
    st->rope_theta = g->rope.base;
    st->rope_factor = g->rope.factor;
    st->rope_base_effective = g->rope_base_eff > 0 ? g->rope_base_eff : g->rope.base;
    double omega[ANC_MAX_HEAD_DIM / 2], mscale = 1.0;
    if (g->rope.dims > 0) rope_frequencies(&g->rope, kv->n, omega, &mscale);
    st->rope_mscale = mscale;
    st->rope_orig_ctx = g->rope.orig_ctx;
    st->rope_dims = g->rope.dims;
    st->yarn_beta_fast = g->rope.yarn_beta_fast;
    st->yarn_beta_slow = g->rope.yarn_beta_slow;
    st->rope_long = g->rope.long_rope;
    st->lora_rank = s->p.lora ? (int32_t)s->p.lora->max_rank : 0;
    st->lora_matrices = s->p.lora ? s->p.lora->n_pairs : 0;
    st->lora_trained_ctx = s->p.lora && s->p.lora->has_rope ? s->p.lora->trained_ctx : 0;
    st->lora_rope_scaling = s->p.lora && s->p.lora->has_rope ? s->p.lora->rope.scaling : ANC_ROPE_NONE;
    st->lora_rope_factor = s->p.lora && s->p.lora->has_rope ? (float)s->p.lora->rope.factor : 1.0f;
    st->lora_scale = s->p.lora ? s->p.lora_scale : 0.0f;
    struct anc_backend_mem bm;
    s->be->ops->mem(s->be, &bm);
    st->bytes_weights = bm.weights ? bm.weights : s->m->weight_bytes;
    snprintf(st->backend, sizeof st->backend, "%s", s->be->ops->name);
    snprintf(st->device, sizeof st->device, "%s", bm.device);
    st->bytes_device_total = bm.device_total;
    st->bytes_device_free = bm.device_free;
    st->bytes_device_used_by_us = bm.device_total ? bm.weights + bm.buffers + bm.internal : 0;
    st->bytes_kv = kv_cache_bytes(kv);
    st->bytes_kv_local = hp->n_local > 0 ? kv_cache_bytes(s->groups[GROUP_LOCAL].kv) : 0;
    st->bytes_kv += st->bytes_kv_local;
    st->bytes_kv_local_used = hp->n_local > 0 ? kv_cache_bytes_used(s->groups[GROUP_LOCAL].kv) : 0;
    st->bytes_kv_used = kv_cache_bytes_used(kv) + st->bytes_kv_local_used;
    st->bytes_scratch = s->scratch_bytes;
    st->bytes_rss = anc_rss_bytes();
    for (int32_t i = 0; i < s->n_latency; i++) {
        int32_t idx = (s->latency_head - s->n_latency + i + ANC_STATS_LATENCY) % ANC_STATS_LATENCY;
        st->latency_ms[i] = s->latency[idx];
    }
    st->n_latency = s->n_latency;
    int32_t n = kv->n < s->stats_orig_cap ? kv->n : s->stats_orig_cap;
    if (s->stats_orig) memcpy(s->stats_orig, kv->orig, (size_t)n * sizeof *kv->orig);
    pthread_mutex_unlock(&s->mu);
}

int32_t anc_session_stats(const struct anc_session *s, struct anc_stats *out, int64_t *orig,
                          int32_t cap)
{
    struct anc_session *ms = (struct anc_session *)s;
    pthread_mutex_lock(&ms->mu);
    *out = s->stats;
    int32_t n = 0;
    if (orig && cap > 0) {
        n = s->stats.n_cached < cap ? s->stats.n_cached : cap;
        if (n > s->stats_orig_cap) n = s->stats_orig_cap;
        memcpy(orig, s->stats_orig, (size_t)n * sizeof *orig);
    }
    pthread_mutex_unlock(&ms->mu);
    return n;
}

const char *anc_cpu_isa(void) { return anc_backend_cpu_isa(); }
int anc_cpu_count_public(void) { return anc_cpu_count(); }
const char *anc_version(void) { return "0.1.0"; }
