/* lora.c — LoRA adapters in llama.cpp's LoRA GGUF layout (TECHNIQUES.md §4):
 * general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, the
 * base's general.architecture, and for each adapted weight W named NAME two
 * tensors NAME.lora_a (ne = [in, r]) and NAME.lora_b (ne = [r, out]). The
 * update is W x + scale·(alpha/r)·B(A x) (scale·B(A x) when alpha is 0).
 * As stored, A is an r × in matrix and B an out × r one, so both are used
 * in place, from the adapter's mapping, as ordinary backend weights.
 * Adapted weights: the attention and FFN projections (model_proj_weight).
 * Ancora's own additions, which other readers skip: LoRA+'s trained
 * embedding and norms as `ancora.plus.NAME` (f32, replacing the base's
 * NAME while the adapter is on), and the RoPE the adapter was trained for
 * as `ancora.adapter.{context_length, rope.freq_base, rope.scaling.type,
 * rope.scaling.factor, rope.scaling.original_context_length}`.
 * Depends on gguf, the model's internals and the backend interface. */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "util.h"

/* GGUF names of the projections, in enum model_proj order */
static const char *const proj_names[LORA_N_PROJ] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
};

static bool str_is(const struct gguf_file *f, const char *key, const char *want)
{
    struct gguf_str s;
    return gguf_get_str(f, key, &s) && gguf_str_eq(s, want);
}

/* The (layer, projection) of a name "blk.N.PROJ<suffix>" for one of the
 * suffixes (NULL-terminated); its index in *which. false otherwise. */
static bool parse_proj(const char *name, int32_t n_layer, const char *const *suffixes,
                       int32_t *layer, int *proj, int *which)
{
    int l = -1, used = 0;
    if (sscanf(name, "blk.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= n_layer)
        return false;
    const char *rest = name + used;
    for (int p = 0; p < LORA_N_PROJ; p++) {
        size_t n = strlen(proj_names[p]);
        if (strncmp(rest, proj_names[p], n) != 0) continue;
        for (int k = 0; suffixes[k]; k++)
            if (strcmp(rest + n, suffixes[k]) == 0) {
                *layer = l;
                *proj = p;
                *which = k;
                return true;
            }
    }
    return false;
}

/* Which (layer, projection) a tensor name "blk.N.PROJ.weight.lora_x"
 * adapts; false when it is not of that form. */
static bool parse_name(const char *name, int32_t n_layer, int32_t *layer, int *proj, char *which)
{
    static const char *const sfx[] = {".weight.lora_a", ".weight.lora_b", NULL};
    int k;
    if (!parse_proj(name, n_layer, sfx, layer, proj, &k)) return false;
    *which = k == 0 ? 'a' : 'b';
    return true;
}

static void weight_of(const struct gguf_tensor *t, struct anc_weight *w)
{
    w->data = t->data;
    w->type = t->type;
    w->rows = (int64_t)t->ne[1];
    w->cols = (int64_t)t->ne[0];
    w->dev = NULL;
}

/* The slot an `ancora.plus.NAME` tensor fills, with the base's tensor
 * (its shape is checked against it); NULL when NAME is not one LoRA+
 * trains. */
static struct anc_weight *plus_slot(struct anc_lora *lo, const char *name, const struct anc_weight **base)
{
    const struct anc_model *m = lo->model;
    int l = -1, used = 0;
    if (!strcmp(name, "token_embd.weight")) {
        *base = &m->tok_embd;
        return &lo->plus.embd;
    }
    if (!strcmp(name, "output_norm.weight")) {
        *base = &m->output_norm;
        return &lo->plus.output_norm;
    }
    if (sscanf(name, "blk.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= m->hp.n_layer) return NULL;
    if (!strcmp(name + used, "attn_norm.weight")) {
        *base = &m->layers[l].attn_norm;
        return &lo->plus.attn_norm[l];
    }
    if (!strcmp(name + used, "ffn_norm.weight")) {
        *base = &m->layers[l].ffn_norm;
        return &lo->plus.ffn_norm[l];
    }
    return NULL;
}

static bool take_plus(struct anc_lora *lo, const struct gguf_tensor *t, const char *name, char *err,
                      size_t errlen)
{
    const struct anc_weight *base = NULL;
    struct anc_weight *w = plus_slot(lo, name + strlen("ancora.plus."), &base);
    if (!w) {
        anc_set_err(err, errlen, "%s: %s replaces a tensor LoRA+ does not train", lo->path, name);
        return false;
    }
    uint64_t rows = t->n_dims > 1 ? t->ne[1] : 1;
    if (t->type != ANC_DT_F32 || t->n_dims > 2 || t->ne[0] != (uint64_t)base->cols ||
        rows != (uint64_t)base->rows) {
        anc_set_err(err, errlen, "%s: %s must be f32 of the base's shape %lld × %lld (an adapter for another model?)",
                    lo->path, name, (long long)base->rows, (long long)base->cols);
        return false;
    }
    if (w->data) {
        anc_set_err(err, errlen, "%s: %s appears twice", lo->path, name);
        return false;
    }
    weight_of(t, w);
    w->rows = (int64_t)rows;
    lo->plus.n++;
    return true;
}

/* Check one tensor of the adapter and put it in its pair. */
static bool take_tensor(struct anc_lora *lo, const struct gguf_tensor *t, const char *name,
                        char *err, size_t errlen)
{
    const struct anc_model *m = lo->model;
    int32_t l;
    int p;
    char which;
    if (!strncmp(name, "ancora.plus.", strlen("ancora.plus."))) return take_plus(lo, t, name, err, errlen);
    if (!parse_name(name, m->hp.n_layer, &l, &p, &which)) {
        anc_set_err(err, errlen, "%s: tensor %s is not a LoRA matrix of a projection this model has",
                    lo->path, name);
        return false;
    }
    const struct anc_weight *base = model_proj_weight(m, l, (enum model_proj)p);
    if (!base || !base->data) {
        anc_set_err(err, errlen, "%s: %s adapts a weight the base model does not have", lo->path, name);
        return false;
    }
    if (t->n_dims != 2 || !anc_backend_cpu_supports(t->type)) {
        anc_set_err(err, errlen, "%s: %s must be a 2-D F32, F16 or quantised matrix", lo->path, name);
        return false;
    }
    struct lora_pair *pair = &lo->pairs[l * LORA_N_PROJ + p];
    struct anc_weight *w = which == 'a' ? &pair->a : &pair->b;
    if (w->data) {
        anc_set_err(err, errlen, "%s: %s appears twice", lo->path, name);
        return false;
    }
    weight_of(t, w);
    /* A: r × in with in = the base's columns; B: out × r with out = its rows */
    bool ok = which == 'a' ? w->cols == base->cols : w->rows == base->rows;
    if (!ok) {
        anc_set_err(err, errlen,
                    "%s: %s has shape [%lld, %lld] but the base weight is %lld × %lld "
                    "(an adapter for another model?)",
                    lo->path, name, (long long)t->ne[0], (long long)t->ne[1],
                    (long long)base->rows, (long long)base->cols);
        return false;
    }
    return true;
}

/* Every pair complete and of one rank per pair; the scale per pair. */
static bool check_pairs(struct anc_lora *lo, char *err, size_t errlen)
{
    const struct anc_model *m = lo->model;
    for (int32_t i = 0; i < m->hp.n_layer * LORA_N_PROJ; i++) {
        struct lora_pair *pr = &lo->pairs[i];
        if (!pr->a.data && !pr->b.data) continue;
        const char *what = proj_names[i % LORA_N_PROJ];
        if (!pr->a.data || !pr->b.data) {
            anc_set_err(err, errlen, "%s: blk.%d.%s.weight has only its lora_%c matrix", lo->path,
                        (int)(i / LORA_N_PROJ), what, pr->a.data ? 'a' : 'b');
            return false;
        }
        int64_t r = pr->a.rows;
        if (pr->b.cols != r || r < 1 || r > 65536) {
            anc_set_err(err, errlen, "%s: blk.%d.%s.weight: lora_a has rank %lld, lora_b %lld",
                        lo->path, (int)(i / LORA_N_PROJ), what, (long long)r,
                        (long long)pr->b.cols);
            return false;
        }
        pr->alpha_scale = lo->alpha > 0 ? lo->alpha / (float)r : 1.0f;
        if (r > lo->max_rank) lo->max_rank = r;
        if (pr->b.rows > lo->max_out) lo->max_out = pr->b.rows;
        lo->n_pairs++;
    }
    if (lo->n_pairs == 0 && lo->plus.n == 0) {
        anc_set_err(err, errlen, "%s: the adapter has no LoRA matrices", lo->path);
        return false;
    }
    return true;
}

/* The RoPE the adapter was trained for (written by `ancora train`). */
static bool read_rope(struct anc_lora *lo, char *err, size_t errlen)
{
    const struct gguf_file *f = lo->file;
    struct gguf_str type;
    float base = 0, factor = 0;
    uint32_t orig = 0, ctx = 0;
    if (!gguf_get_str(f, "ancora.adapter.rope.scaling.type", &type)) return true;
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(type.len < 31 ? type.len : 31), type.ptr);
    int scaling = anc_rope_scaling_from_name(name);
    if (scaling < 0 || !gguf_get_f32(f, "ancora.adapter.rope.freq_base", &base) ||
        !gguf_get_f32(f, "ancora.adapter.rope.scaling.factor", &factor) ||
        !gguf_get_u32(f, "ancora.adapter.rope.scaling.original_context_length", &orig) ||
        !gguf_get_u32(f, "ancora.adapter.context_length", &ctx) || !(base > 0 && base < 1e12f) ||
        !(factor > 0 && factor < 1e6f) || orig < 1 || orig > (1u << 24) || ctx < 1 || ctx > (1u << 24)) {
        anc_set_err(err, errlen, "%s: the ancora.adapter RoPE keys are incomplete or out of range", lo->path);
        return false;
    }
    lo->has_rope = true;
    lo->rope = (struct anc_rope_settings){.theta = base, .scaling = scaling, .factor = factor,
                                          .orig_ctx = (int32_t)orig};
    lo->trained_ctx = (int32_t)ctx;
    return true;
}

static bool read_header(struct anc_lora *lo, char *err, size_t errlen)
{
    const struct gguf_file *f = lo->file;
    if (!str_is(f, "general.type", "adapter") || !str_is(f, "adapter.type", "lora")) {
        anc_set_err(err, errlen,
                    "%s: not a LoRA adapter (general.type must be \"adapter\" and adapter.type \"lora\")",
                    lo->path);
        return false;
    }
    struct gguf_str arch;
    if (!gguf_get_str(f, "general.architecture", &arch) || !gguf_str_eq(arch, lo->model->arch->name)) {
        anc_set_err(err, errlen, "%s: an adapter for architecture \"%.*s\", the model is \"%s\"",
                    lo->path, arch.ptr ? (int)(arch.len > 64 ? 64 : arch.len) : 1,
                    arch.ptr ? arch.ptr : "?", lo->model->arch->name);
        return false;
    }
    lo->alpha = 0.0f;
    if (gguf_find_kv(f, "adapter.lora.alpha") && !gguf_get_f32(f, "adapter.lora.alpha", &lo->alpha)) {
        anc_set_err(err, errlen, "%s: adapter.lora.alpha is not a float", lo->path);
        return false;
    }
    if (!isfinite(lo->alpha) || lo->alpha < 0 || lo->alpha > 1e6f) {
        anc_set_err(err, errlen, "%s: adapter.lora.alpha = %g is out of range", lo->path, lo->alpha);
        return false;
    }
    return read_rope(lo, err, errlen);
}

struct anc_lora *anc_lora_load(struct anc_model *m, const char *path, char *err, size_t errlen)
{
    if (m->vocab_only) {
        anc_set_err(err, errlen, "a vocabulary-only model takes no adapter");
        return NULL;
    }
    struct anc_lora *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = strdup(path)) ||
        !(lo->pairs = calloc((size_t)m->hp.n_layer * LORA_N_PROJ, sizeof *lo->pairs)) ||
        !(lo->plus.attn_norm = calloc((size_t)m->hp.n_layer, sizeof *lo->plus.attn_norm)) ||
        !(lo->plus.ffn_norm = calloc((size_t)m->hp.n_layer, sizeof *lo->plus.ffn_norm))) {
        anc_set_err(err, errlen, "out of memory");
        anc_lora_free(lo);
        return NULL;
    }
    lo->model = m;
    lo->file = gguf_open(path, err, errlen);
    if (!lo->file || !read_header(lo, err, errlen)) goto fail;
    for (uint64_t i = 0; i < lo->file->n_tensors; i++) {
        const struct gguf_tensor *t = &lo->file->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 127 ? t->name.len : 127), t->name.ptr);
        if (!take_tensor(lo, t, name, err, errlen)) goto fail;
    }
    if (!check_pairs(lo, err, errlen)) goto fail;
    for (int32_t i = 0; i < m->hp.n_layer * LORA_N_PROJ; i++) {
        struct lora_pair *pr = &lo->pairs[i];
        if (!pr->a.data) continue;
        if (!m->be->ops->prepare(m->be, &pr->a, err, errlen) ||
            !m->be->ops->prepare(m->be, &pr->b, err, errlen))
            goto fail;
    }
    struct anc_weight *plus[] = {&lo->plus.embd, &lo->plus.output_norm};
    for (size_t i = 0; i < 2; i++)
        if (plus[i]->data && !m->be->ops->prepare(m->be, plus[i], err, errlen)) goto fail;
    for (int32_t l = 0; l < m->hp.n_layer; l++)
        if ((lo->plus.attn_norm[l].data && !m->be->ops->prepare(m->be, &lo->plus.attn_norm[l], err, errlen)) ||
            (lo->plus.ffn_norm[l].data && !m->be->ops->prepare(m->be, &lo->plus.ffn_norm[l], err, errlen)))
            goto fail;
    return lo;
fail:
    anc_lora_free(lo);
    return NULL;
}

void anc_lora_free(struct anc_lora *lo)
{
    if (!lo) return;
    gguf_close(lo->file);
    free(lo->pairs);
    free(lo->plus.attn_norm);
    free(lo->plus.ffn_norm);
    free(lo->path);
    free(lo);
}

const struct lora_pair *lora_pair_of(const struct anc_lora *lo, int32_t layer, enum model_proj p)
{
    if (!lo) return NULL;
    const struct lora_pair *pr = &lo->pairs[layer * LORA_N_PROJ + (int)p];
    return pr->a.data ? pr : NULL;
}

void anc_lora_get_info(const struct anc_lora *lo, struct anc_lora_info *out)
{
    memset(out, 0, sizeof *out);
    out->path = lo->path;
    out->alpha = lo->alpha;
    out->max_rank = (int32_t)lo->max_rank;
    out->n_matrices = lo->n_pairs;
    out->n_plus = lo->plus.n;
    out->has_rope = lo->has_rope;
    out->rope = lo->rope;
    out->trained_ctx = lo->trained_ctx;
}

bool anc_lora_apply_rope(const struct anc_lora *lo, struct anc_rope_settings *r, bool force)
{
    bool user_set = r->scaling != ANC_ROPE_FROM_FILE || r->factor > 0 || r->theta > 0 || r->orig_ctx > 0;
    if (!lo || !lo->has_rope || (user_set && !force)) return false;
    r->scaling = lo->rope.scaling;
    r->factor = lo->rope.factor;
    r->theta = lo->rope.theta;
    r->orig_ctx = lo->rope.orig_ctx;
    return lo->rope.scaling != ANC_ROPE_NONE;
}

const struct anc_weight *lora_embd(const struct anc_lora *lo, const struct anc_model *m)
{
    return lo && lo->plus.embd.data ? &lo->plus.embd : &m->tok_embd;
}

const struct anc_weight *lora_output(const struct anc_lora *lo, const struct anc_model *m)
{
    bool tied = m->output.data == m->tok_embd.data;
    return tied ? lora_embd(lo, m) : &m->output;
}

const struct anc_weight *lora_output_norm(const struct anc_lora *lo, const struct anc_model *m)
{
    return lo && lo->plus.output_norm.data ? &lo->plus.output_norm : &m->output_norm;
}

const struct anc_weight *lora_norm(const struct anc_lora *lo, const struct anc_model *m, int32_t layer,
                                   char which)
{
    const struct anc_weight *w = NULL;
    if (lo) w = which == 'a' ? &lo->plus.attn_norm[layer] : &lo->plus.ffn_norm[layer];
    if (w && w->data) return w;
    return which == 'a' ? &m->layers[layer].attn_norm : &m->layers[layer].ffn_norm;
}

const struct anc_weight *lora_plus_for_tensor(const struct anc_lora *lo, const char *name)
{
    const struct anc_weight *base;
    const struct anc_weight *w = plus_slot((struct anc_lora *)lo, name, &base);
    return w && w->data ? w : NULL;
}

const struct lora_pair *lora_pair_for_tensor(const struct anc_lora *lo, const char *name)
{
    static const char *const sfx[] = {".weight", NULL};
    int32_t l;
    int p, k;
    if (!parse_proj(name, lo->model->hp.n_layer, sfx, &l, &p, &k)) return NULL;
    return lora_pair_of(lo, l, (enum model_proj)p);
}
