/* model.c — loading a model from GGUF: hyper-parameters from metadata,
 * weights checked for presence, type and exact shape, the tokenizer, and
 * the backend. Architectures other than llama are additions to
 * arch_supported() and the tensor naming, not rewrites.
 * Depends on gguf, tokenizer and the backend interface; no UI libraries. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "rope.h"
#include "tokenizer.h"
#include "util.h"

/* The families, as data (DESIGN.md, "Looking ahead"; facts in
 * TECHNIQUES.md §5, checked against llama.cpp's graphs and the Hugging
 * Face modelling code). The converter permutes llama's q/k so that GGUF
 * llama files use adjacent pairs; the other families keep NeoX halves. */
static const struct arch_desc arch_table[] = {
    /* name      neox   qkvb   qknrm  fqkv   fgu    post   embsc  softc  act            swa swa_base long */
    {"llama",    false, false, false, false, false, false, false, false, ACT_SILU,      0, 0,        false},
    {"qwen2",    true,  true,  false, false, false, false, false, false, ACT_SILU,      0, 0,        false},
    {"qwen3",    true,  false, true,  false, false, false, false, false, ACT_SILU,      0, 0,        false},
    {"phi3",     true,  false, false, true,  true,  false, false, false, ACT_SILU,      0, 0,        true},
    {"gemma2",   true,  false, false, false, false, true,  true,  true,  ACT_GELU_TANH, 2, 0,        false},
    {"gemma3",   true,  false, true,  false, false, true,  true,  false, ACT_GELU_TANH, 6, 10000.0f, false},
};
#define N_ARCH (sizeof arch_table / sizeof arch_table[0])
#define GEMMA2_ATTN_SOFTCAP 50.0f
#define GEMMA2_FINAL_SOFTCAP 30.0f

const struct arch_desc *model_arch_find(const char *name)
{
    for (size_t i = 0; i < N_ARCH; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}

const char *model_arch_names(void)
{
    static char buf[128];
    if (!buf[0])
        for (size_t i = 0; i < N_ARCH; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "",
                     arch_table[i].name);
    return buf;
}

void anc_model_params_default(struct anc_model_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_threads = 0;
}

/* Read "{arch}.{suffix}" as u32 into *out; `required` makes absence an error. */
static bool hp_u32(const struct gguf_file *f, const char *arch, const char *suffix,
                   int32_t *out, bool required, const char *path, char *err, size_t errlen)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) {
        if (required) {
            anc_set_err(err, errlen, "%s: metadata key %s is missing or not an integer", path, key);
            return false;
        }
        return true;
    }
    if (v == 0 || v > (1u << 30)) {
        anc_set_err(err, errlen, "%s: metadata %s = %u is out of range", path, key, v);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static const struct gguf_file *f_of(const struct anc_model *m) { return m->file; }

static bool hp_f32(const struct gguf_file *f, const char *arch, const char *suffix, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f32(f, key, out);
}

/* RoPE scaling as the file states it (TECHNIQUES.md §1, "GGUF keys"). */
static bool read_rope_scaling(struct anc_model *m, char *err, size_t errlen)
{
    const struct gguf_file *f = m->file;
    struct model_hparams *hp = &m->hp;
    char key[128];
    hp->rope_scaling = ROPE_NONE;
    hp->rope_factor = 1.0f;
    hp->rope_attn_factor = 1.0f;
    hp->rope_orig_ctx = hp->n_ctx_train;
    float factor = 0.0f;
    if (!hp_f32(f, hp->arch, "rope.scaling.factor", &factor))
        hp_f32(f, hp->arch, "rope.scale_linear", &factor);
    struct gguf_str type;
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch);
    if (gguf_get_str(f, key, &type)) {
        if (gguf_str_eq(type, "none")) {
            hp->rope_scaling = ROPE_NONE;
        } else if (gguf_str_eq(type, "linear")) {
            hp->rope_scaling = ROPE_LINEAR;
        } else if (gguf_str_eq(type, "yarn")) {
            hp->rope_scaling = ROPE_YARN;
        } else {
            anc_set_err(err, errlen, "%s: RoPE scaling type \"%.*s\" is not supported", m->path,
                        (int)(type.len < 32 ? type.len : 32), type.ptr);
            return false;
        }
    } else if (factor > 1.0f) {
        hp->rope_scaling = ROPE_LINEAR; /* a factor without a type means linear */
    }
    if (factor != 0.0f) {
        if (!(factor >= 1.0f && factor <= 1024.0f)) {
            anc_set_err(err, errlen, "%s: RoPE scaling factor %g is out of range", m->path, factor);
            return false;
        }
        hp->rope_factor = factor;
    }
    float af;
    if (hp_f32(f, hp->arch, "rope.scaling.attn_factor", &af)) {
        if (!(af > 0.0f && af < 100.0f)) {
            anc_set_err(err, errlen, "%s: rope.scaling.attn_factor %g is out of range", m->path, af);
            return false;
        }
        hp->rope_attn_factor = af;
    }
    if (!hp_u32(f, hp->arch, "rope.scaling.original_context_length", &hp->rope_orig_ctx, false,
                m->path, err, errlen))
        return false;
    return true;
}

/* A positive float key within (0, max), or absent (then *out is kept). */
static bool hp_f32_range(const struct anc_model *m, const char *suffix, float max, float *out,
                         char *err, size_t errlen)
{
    float v;
    if (!hp_f32(m->file, m->hp.arch, suffix, &v)) return true;
    if (!(v > 0.0f && v < max)) {
        anc_set_err(err, errlen, "%s: metadata %s.%s = %g is out of range", m->path, m->hp.arch,
                    suffix, v);
        return false;
    }
    *out = v;
    return true;
}

/* What only some families have: sliding-window layers, soft-caps. */
static bool read_family_hparams(struct anc_model *m, const struct arch_desc *ad, char *err,
                                size_t errlen)
{
    struct model_hparams *hp = &m->hp;
    const char *a = hp->arch, *p = m->path;
    /* Gemma 2's soft-caps when the file does not say (its config's values,
       which llama.cpp also assumes) */
    hp->attn_softcap = ad->softcaps ? GEMMA2_ATTN_SOFTCAP : 0.0f;
    hp->final_softcap = ad->softcaps ? GEMMA2_FINAL_SOFTCAP : 0.0f;
    if (ad->softcaps &&
        (!hp_f32_range(m, "attn_logit_softcapping", 1e4f, &hp->attn_softcap, err, errlen) ||
         !hp_f32_range(m, "final_logit_softcapping", 1e4f, &hp->final_softcap, err, errlen)))
        return false;
    hp->n_swa = 0;
    hp->n_local = 0;
    if (ad->swa_pattern <= 0) return true;
    if (!hp_u32(f_of(m), a, "attention.sliding_window", &hp->n_swa, true, p, err, errlen))
        return false;
    if (hp->n_swa < 1 || hp->n_swa > (1 << 22)) {
        anc_set_err(err, errlen, "%s: attention.sliding_window %d is out of range (1 to %d)", p,
                    hp->n_swa, 1 << 22);
        return false;
    }
    hp->swa_base = ad->swa_base > 0 ? ad->swa_base : hp->rope_theta; /* 0: the file's base */
    if (!hp_f32_range(m, "rope.freq_base_swa", 1e12f, &hp->swa_base, err, errlen)) return false;
    return true;
}

static bool read_hparams(struct anc_model *m, char *err, size_t errlen)
{
    const struct gguf_file *f = m->file;
    struct model_hparams *hp = &m->hp;
    struct gguf_str s;
    if (!gguf_get_str(f, "general.architecture", &s)) {
        anc_set_err(err, errlen, "%s: metadata general.architecture is missing", m->path);
        return false;
    }
    if (s.len == 0 || s.len >= sizeof hp->arch || memchr(s.ptr, '\0', s.len)) {
        anc_set_err(err, errlen, "%s: general.architecture is not a valid name", m->path);
        return false;
    }
    memcpy(hp->arch, s.ptr, s.len);
    hp->arch[s.len] = '\0';
    const struct arch_desc *ad = model_arch_find(hp->arch);
    if (!ad) {
        anc_set_err(err, errlen, "%s: architecture \"%s\" is not supported (supported: %s)",
                    m->path, hp->arch, model_arch_names());
        return false;
    }
    m->arch = ad;
    hp->rope_neox = ad->rope_neox;
    const char *a = hp->arch, *p = m->path;
    if (!hp_u32(f, a, "embedding_length", &hp->dim, true, p, err, errlen) ||
        !hp_u32(f, a, "block_count", &hp->n_layer, true, p, err, errlen) ||
        !hp_u32(f, a, "feed_forward_length", &hp->n_ff, true, p, err, errlen) ||
        !hp_u32(f, a, "attention.head_count", &hp->n_head, true, p, err, errlen))
        return false;
    hp->n_kv_head = hp->n_head;
    hp->n_ctx_train = 0;
    if (!hp_u32(f, a, "attention.head_count_kv", &hp->n_kv_head, false, p, err, errlen) ||
        !hp_u32(f, a, "context_length", &hp->n_ctx_train, false, p, err, errlen))
        return false;
    int32_t key_len = 0, val_len = 0;
    if (!hp_u32(f, a, "attention.key_length", &key_len, false, p, err, errlen) ||
        !hp_u32(f, a, "attention.value_length", &val_len, false, p, err, errlen))
        return false;
    if (key_len == 0 && hp->dim % hp->n_head != 0) {
        anc_set_err(err, errlen, "%s: embedding length %d is not a multiple of the head count %d",
                    p, hp->dim, hp->n_head);
        return false;
    }
    hp->head_dim = key_len ? key_len : hp->dim / hp->n_head;
    if (val_len != 0 && val_len != hp->head_dim) {
        anc_set_err(err, errlen, "%s: attention.value_length %d differs from the key length %d "
                    "(not supported)", p, val_len, hp->head_dim);
        return false;
    }
    if (hp->n_kv_head > hp->n_head || hp->n_head % hp->n_kv_head != 0) {
        anc_set_err(err, errlen, "%s: %d query heads cannot share %d key/value heads evenly",
                    p, hp->n_head, hp->n_kv_head);
        return false;
    }
    if (hp->n_head / hp->n_kv_head > ANC_MAX_GROUP) {
        anc_set_err(err, errlen, "%s: %d query heads per key/value head exceeds the supported %d",
                    p, hp->n_head / hp->n_kv_head, ANC_MAX_GROUP);
        return false;
    }
    if (hp->head_dim > ANC_MAX_HEAD_DIM) {
        anc_set_err(err, errlen, "%s: head dimension %d exceeds the supported %d", p,
                    hp->head_dim, ANC_MAX_HEAD_DIM);
        return false;
    }
    hp->rope_dims = hp->head_dim;
    if (!hp_u32(f, a, "rope.dimension_count", &hp->rope_dims, false, p, err, errlen)) return false;
    if (hp->rope_dims > hp->head_dim || hp->rope_dims % 2 != 0) {
        anc_set_err(err, errlen, "%s: rope.dimension_count %d must be even and at most the head "
                    "dimension %d", p, hp->rope_dims, hp->head_dim);
        return false;
    }
    hp->rope_theta = 10000.0f;
    if (hp_f32(f, a, "rope.freq_base", &hp->rope_theta) &&
        !(hp->rope_theta > 1.0f && hp->rope_theta < 1e12f)) {
        anc_set_err(err, errlen, "%s: rope.freq_base %g is out of range", p, hp->rope_theta);
        return false;
    }
    hp->norm_eps = 1e-5f;
    if (hp_f32(f, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps) &&
        !(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f)) {
        anc_set_err(err, errlen, "%s: layer_norm_rms_epsilon %g is out of range", p, hp->norm_eps);
        return false;
    }
    if (hp->n_ctx_train <= 0) hp->n_ctx_train = 2048; /* files without it: a common default */
    if ((int64_t)hp->n_head * hp->head_dim > (1 << 20)) {
        anc_set_err(err, errlen, "%s: %d heads of %d dimensions is implausibly large", p,
                    hp->n_head, hp->head_dim);
        return false;
    }
    hp->q_dim = hp->n_head * hp->head_dim;
    hp->kv_dim = hp->n_kv_head * hp->head_dim;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embed_scale = ad->embed_scale ? sqrtf((float)hp->dim) : 1.0f;
    return read_family_hparams(m, ad, err, errlen) && read_rope_scaling(m, err, errlen);
}

/* Find a tensor, check type support and its exact shape (cols, rows). */
static bool get_weight(struct anc_model *m, const char *name, int64_t cols, int64_t rows,
                       struct anc_weight *w, bool optional, char *err, size_t errlen)
{
    const struct gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t) {
        if (!optional) anc_set_err(err, errlen, "%s: tensor %s is missing", m->path, name);
        return false;
    }
    int64_t want_rows = rows;
    bool shape_ok = (int64_t)t->ne[0] == cols && (int64_t)t->ne[1] == want_rows &&
                    t->ne[2] == 1 && t->ne[3] == 1;
    if (!shape_ok) {
        anc_set_err(err, errlen, "%s: tensor %s has shape %llu x %llu x %llu, expected %lld x %lld",
                    m->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (long long)cols, (long long)rows);
        return false;
    }
    const struct anc_dtype_info *d = anc_dtype_get(t->type);
    if (!anc_backend_cpu_supports(t->type)) {
        anc_set_err(err, errlen, "%s: tensor %s has weight type %s, which this version cannot "
                    "compute with yet", m->path, name, d ? d->name : "unknown");
        return false;
    }
    w->data = t->data;
    w->type = t->type;
    w->cols = cols;
    w->rows = rows;
    w->dev = NULL;
    m->n_params += (uint64_t)cols * (uint64_t)rows;
    return true;
}

/* 1-D norm weights must be F32 (as every converter writes them). */
static bool get_norm(struct anc_model *m, const char *name, int64_t n, struct anc_weight *w,
                     char *err, size_t errlen)
{
    if (!get_weight(m, name, n, 1, w, false, err, errlen)) return false;
    if (w->type != ANC_DT_F32) {
        anc_set_err(err, errlen, "%s: tensor %s must be f32 (norms and biases are)", m->path, name);
        return false;
    }
    return true;
}

/* Rows [first, first + rows) of a fused matrix, as a weight of its own
 * (a matrix is stored row by row, so a range of rows is one too). */
static void weight_rows(const struct anc_weight *fused, int64_t first, int64_t rows,
                        struct anc_weight *out)
{
    size_t row_bytes = anc_dtype_row_bytes(fused->type, (uint64_t)fused->cols);
    *out = *fused;
    out->data = (const uint8_t *)fused->data + (size_t)first * row_bytes;
    out->rows = rows;
    out->dev = NULL;
}

/* Is layer l one of the model's own sliding-window layers? */
static bool layer_is_local(const struct anc_model *m, int32_t l)
{
    int32_t pat = m->arch->swa_pattern;
    if (m->hp.n_swa <= 0 || pat <= 0) return false;
    return pat == 1 || l % pat < pat - 1;
}

/* One block's tensors, as the family has them: blk.L.NAME.weight/bias. */
static bool load_layer(struct anc_model *m, int32_t l, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    const struct arch_desc *ad = m->arch;
    struct model_layer *L = &m->layers[l];
    int64_t dim = hp->dim, q_dim = hp->q_dim, kv_dim = hp->kv_dim, ff = hp->n_ff;
    char name[96];
#define NAME(suffix, kind) (snprintf(name, sizeof name, "blk.%d.%s.%s", l, suffix, kind), name)
#define W(field, suffix, cols, rows) \
    if (!get_weight(m, NAME(suffix, "weight"), cols, rows, &L->field, false, err, errlen)) return false;
#define N(field, suffix, n) \
    if (!get_norm(m, NAME(suffix, "weight"), n, &L->field, err, errlen)) return false;
#define B(field, suffix, n) \
    if (!get_norm(m, NAME(suffix, "bias"), n, &L->field, err, errlen)) return false;
    N(attn_norm, "attn_norm", dim)
    if (ad->fused_qkv) {
        struct anc_weight qkv;
        if (!get_weight(m, NAME("attn_qkv", "weight"), dim, q_dim + 2 * kv_dim, &qkv, false, err,
                        errlen))
            return false;
        weight_rows(&qkv, 0, q_dim, &L->wq);
        weight_rows(&qkv, q_dim, kv_dim, &L->wk);
        weight_rows(&qkv, q_dim + kv_dim, kv_dim, &L->wv);
    } else {
        W(wq, "attn_q", dim, q_dim)
        W(wk, "attn_k", dim, kv_dim)
        W(wv, "attn_v", dim, kv_dim)
    }
    /* biases: required where the family always has them, used where a
       file of another family carries them */
    if (ad->qkv_bias || gguf_find_tensor(m->file, NAME("attn_q", "bias"))) B(bq, "attn_q", q_dim)
    if (ad->qkv_bias || gguf_find_tensor(m->file, NAME("attn_k", "bias"))) B(bk, "attn_k", kv_dim)
    if (ad->qkv_bias || gguf_find_tensor(m->file, NAME("attn_v", "bias"))) B(bv, "attn_v", kv_dim)
    if (gguf_find_tensor(m->file, NAME("attn_output", "bias"))) B(bo, "attn_output", dim)
    if (ad->qk_norm) {
        N(q_norm, "attn_q_norm", hp->head_dim)
        N(k_norm, "attn_k_norm", hp->head_dim)
    }
    W(wo, "attn_output", q_dim, dim)
    if (ad->post_norms) N(post_attn_norm, "post_attention_norm", dim)
    N(ffn_norm, "ffn_norm", dim)
    if (ad->fused_gate_up) {
        struct anc_weight gu;
        if (!get_weight(m, NAME("ffn_up", "weight"), dim, 2 * ff, &gu, false, err, errlen))
            return false;
        weight_rows(&gu, 0, ff, &L->w_gate);
        weight_rows(&gu, ff, ff, &L->w_up);
    } else {
        W(w_gate, "ffn_gate", dim, ff)
        W(w_up, "ffn_up", dim, ff)
    }
    W(w_down, "ffn_down", ff, dim)
    if (ad->post_norms) N(post_ffn_norm, "post_ffw_norm", dim)
#undef NAME
#undef W
#undef N
#undef B
    L->local = layer_is_local(m, l);
    return true;
}

/* LongRoPE's per-pair divisors (Phi-3 long-context files): both or none. */
static bool load_long_rope(struct anc_model *m, char *err, size_t errlen)
{
    const char *names[2] = {"rope_factors_long.weight", "rope_factors_short.weight"};
    const float **dst[2] = {&m->rope_long, &m->rope_short};
    int32_t n = m->hp.rope_dims / 2;
    for (int i = 0; i < 2; i++) {
        const struct gguf_tensor *t = gguf_find_tensor(m->file, names[i]);
        if (!t) continue;
        if (t->type != ANC_DT_F32 || t->ne[0] != (uint64_t)n || t->ne[1] != 1) {
            anc_set_err(err, errlen, "%s: %s must be %d f32 values", m->path, names[i], n);
            return false;
        }
        *dst[i] = t->data;
        for (int32_t k = 0; k < n; k++)
            if (!((*dst[i])[k] > 0.0f && (*dst[i])[k] < 1e6f)) {
                anc_set_err(err, errlen, "%s: %s[%d] = %g is not a valid divisor", m->path,
                            names[i], k, (*dst[i])[k]);
                return false;
            }
    }
    if (!m->rope_long != !m->rope_short) {
        anc_set_err(err, errlen, "%s: a LongRoPE file needs both %s and %s", m->path, names[0],
                    names[1]);
        return false;
    }
    return true;
}

static bool load_weights(struct anc_model *m, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    int64_t dim = hp->dim;
    const struct gguf_tensor *te = gguf_find_tensor(m->file, "token_embd.weight");
    if (!te) {
        anc_set_err(err, errlen, "%s: tensor token_embd.weight is missing", m->path);
        return false;
    }
    if (te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        anc_set_err(err, errlen, "%s: token_embd.weight has an implausible vocabulary size", m->path);
        return false;
    }
    hp = &m->hp;
    m->hp.n_vocab = (int32_t)te->ne[1];
    if (tokenizer_n_vocab(m->tok) > m->hp.n_vocab) {
        anc_set_err(err, errlen, "%s: the tokenizer has %d tokens but the embedding only %d rows",
                    m->path, tokenizer_n_vocab(m->tok), m->hp.n_vocab);
        return false;
    }
    if (!get_weight(m, "token_embd.weight", dim, hp->n_vocab, &m->tok_embd, false, err, errlen))
        return false;
    if (!get_norm(m, "output_norm.weight", dim, &m->output_norm, err, errlen)) return false;
    if (!get_weight(m, "output.weight", dim, hp->n_vocab, &m->output, true, err, errlen)) {
        if (gguf_find_tensor(m->file, "output.weight")) return false; /* present but bad */
        m->output = m->tok_embd; /* tied embeddings */
    }
    /* Llama-3.1 files carry their frequency scaling as per-pair divisors */
    const struct gguf_tensor *rf = gguf_find_tensor(m->file, "rope_freqs.weight");
    if (rf) {
        if (rf->type != ANC_DT_F32 || rf->ne[0] != (uint64_t)hp->rope_dims / 2 || rf->ne[1] != 1) {
            anc_set_err(err, errlen, "%s: rope_freqs.weight must be %d f32 values", m->path,
                        hp->rope_dims / 2);
            return false;
        }
        m->rope_freqs = rf->data;
        for (int32_t k = 0; k < hp->rope_dims / 2; k++)
            if (!(m->rope_freqs[k] > 0.0f && m->rope_freqs[k] < 1e6f)) {
                anc_set_err(err, errlen, "%s: rope_freqs.weight[%d] = %g is not a valid divisor",
                            m->path, k, m->rope_freqs[k]);
                return false;
            }
    }
    if (m->arch->long_rope && !load_long_rope(m, err, errlen)) return false;
    /* every block has several tensors: a count the file cannot hold is
       refused before anything is allocated by it (found by fuzz_model) */
    if ((uint64_t)hp->n_layer * 2 > m->file->n_tensors) {
        anc_set_err(err, errlen, "%s: block_count %d is more than the file's %llu tensors can "
                    "hold", m->path, hp->n_layer, (unsigned long long)m->file->n_tensors);
        return false;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        anc_set_err(err, errlen, "out of memory");
        return false;
    }
    for (int32_t l = 0; l < hp->n_layer; l++) {
        if (!load_layer(m, l, err, errlen)) return false;
        m->hp.n_local += m->layers[l].local;
    }
    /* Bytes of tensor data, and the most common matrix type. */
    uint64_t by_type[ANC_DT_COUNT_] = {0};
    for (uint64_t i = 0; i < m->file->n_tensors; i++) {
        const struct gguf_tensor *t = &m->file->tensors[i];
        m->weight_bytes += t->nbytes;
        if (t->ne[1] > 1 && t->type < ANC_DT_COUNT_) by_type[t->type] += t->nbytes;
    }
    m->weight_type = ANC_DT_F32;
    for (uint32_t i = 0; i < ANC_DT_COUNT_; i++)
        if (by_type[i] > by_type[m->weight_type]) m->weight_type = i;
    return true;
}

/* ---- the backend ----------------------------------------------------- */

int anc_backend_kind_from_name(const char *name)
{
    static const char *const names[] = {"auto", "cpu", "cuda"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *anc_backends_compiled(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "cpu (%s)%s", anc_backend_cpu_isa(),
             anc_backend_cuda_compiled() ? ", cuda" : "");
    return buf;
}

const char *anc_backends_usable(char *not_usable, size_t n)
{
    static char buf[PATH_MAX + 96];
    char why[512] = "";
    if (n) not_usable[0] = '\0';
    int n_gpus = anc_backend_cuda_compiled() ? anc_backend_cuda_devices(false, why, sizeof why) : 0;
    if (n_gpus > 0)
        snprintf(buf, sizeof buf, "cpu (%s), cuda (%d device%s, %s)", anc_backend_cpu_isa(), n_gpus,
                 n_gpus == 1 ? "" : "s", anc_backend_cuda_module_path());
    else
        snprintf(buf, sizeof buf, "cpu (%s)", anc_backend_cpu_isa());
    if (anc_backend_cuda_compiled() && n_gpus < 1 && n) snprintf(not_usable, n, "cuda: %s", why);
    return buf;
}

int model_backend_choose(enum anc_backend_kind want, bool cuda_compiled, int n_gpus, char *err,
                         size_t errlen)
{
    switch (want) {
    case ANC_BACKEND_CPU:
        return ANC_BACKEND_CPU;
    case ANC_BACKEND_CUDA:
        if (!cuda_compiled) {
            anc_set_err(err, errlen, "this build of ancora has no CUDA backend "
                                     "(configure it where nvcc is installed, or with --with-cuda=DIR)");
            return -1;
        }
        if (n_gpus < 1) {
            anc_set_err(err, errlen, "no usable NVIDIA GPU was found for --backend cuda "
                                     "(no device, or no driver); --backend cpu runs on the processor");
            return -1;
        }
        return ANC_BACKEND_CUDA;
    case ANC_BACKEND_AUTO:
    default:
        return cuda_compiled && n_gpus > 0 ? ANC_BACKEND_CUDA : ANC_BACKEND_CPU;
    }
}

/* Every weight of layer l that the family has, for prepare/forget. */
static int layer_weights(struct model_layer *L, struct anc_weight **out)
{
    struct anc_weight *all[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm,
                                &L->w_gate, &L->w_up, &L->w_down, &L->bq, &L->bk, &L->bv,
                                &L->bo, &L->q_norm, &L->k_norm, &L->post_attn_norm,
                                &L->post_ffn_norm};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->data) out[n++] = all[i];
    return n;
}
#define MAX_LAYER_WEIGHTS 17

/* Hand every weight to the backend (a GPU uploads them here). */
static bool prepare_weights(struct anc_model *m, char *err, size_t errlen)
{
    struct anc_backend *be = m->be;
    bool (*prep)(struct anc_backend *, struct anc_weight *, char *, size_t) = be->ops->prepare;
    if (!prep(be, &m->tok_embd, err, errlen) || !prep(be, &m->output_norm, err, errlen) ||
        !prep(be, &m->output, err, errlen))
        return false;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        struct anc_weight *ws[MAX_LAYER_WEIGHTS];
        int n = layer_weights(&m->layers[l], ws);
        for (int i = 0; i < n; i++)
            if (!prep(be, ws[i], err, errlen)) return false;
    }
    return true;
}

static void forget_device_copies(struct anc_model *m)
{
    m->tok_embd.dev = m->output_norm.dev = m->output.dev = NULL;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        struct anc_weight *ws[MAX_LAYER_WEIGHTS];
        int n = layer_weights(&m->layers[l], ws);
        for (int i = 0; i < n; i++) ws[i]->dev = NULL;
    }
}

/* Does the backend have every operation this family's forward pass uses?
 * false + the missing ones named. */
static bool backend_can_run(const struct anc_model *m, const struct anc_backend *be, char *err,
                            size_t errlen)
{
    const struct anc_backend_ops *op = be->ops;
    const struct model_hparams *hp = &m->hp;
    char missing[128] = "";
#define NEED(cond, fn, what) \
    if ((cond) && !op->fn) snprintf(missing + strlen(missing), sizeof missing - strlen(missing), \
                                    "%s%s", missing[0] ? ", " : "", what);
    NEED(m->arch->act == ACT_GELU_TANH, geglu, "GELU")
    bool bias = false;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const struct model_layer *L = &m->layers[l];
        bias |= L->bq.data || L->bk.data || L->bv.data || L->bo.data;
    }
    NEED(bias, add_rows, "bias")
    NEED(hp->embed_scale != 1.0f, scale, "embedding scale")
    NEED(hp->attn_softcap > 0 || hp->final_softcap > 0, softcap, "soft-capping")
#undef NEED
    if (!missing[0]) return true;
    anc_set_err(err, errlen, "the %s backend has no %s kernels yet (needed by %s models)",
                op->name, missing, hp->arch);
    return false;
}

/* Start the backend the parameters ask for and prepare the weights. With
 * AUTO, a GPU that cannot take the model (a weight type, its memory)
 * leaves a note and the CPU takes over. */
static bool start_backend(struct anc_model *m, const struct anc_model_params *p, char *err,
                          size_t errlen)
{
    bool compiled = anc_backend_cuda_compiled();
    char unusable[ANC_ERR_LEN] = "";
    int n_gpus = compiled && p->backend != ANC_BACKEND_CPU
                     ? anc_backend_cuda_devices(p->backend == ANC_BACKEND_AUTO, unusable, sizeof unusable)
                     : 0;
    int choice = model_backend_choose(p->backend, compiled, n_gpus, err, errlen);
    if (choice < 0) {
        if (compiled && unusable[0])
            anc_set_err(err, errlen, "no usable NVIDIA GPU for --backend cuda: %s", unusable);
        return false;
    }
    /* auto without a GPU is silent, unless a driver says one is there */
    if (compiled && choice == ANC_BACKEND_CPU && p->backend == ANC_BACKEND_AUTO &&
        anc_cuda_driver_present())
        snprintf(m->backend_note, sizeof m->backend_note,
                 "an NVIDIA driver is present but the GPU cannot be used (%s); using the CPU", unusable);
    if (choice == ANC_BACKEND_CUDA) {
        char why[ANC_ERR_LEN] = "";
        m->be = anc_backend_cuda_new(why, sizeof why);
        if (m->be && backend_can_run(m, m->be, why, sizeof why) &&
            prepare_weights(m, why, sizeof why)) {
            struct anc_backend_mem mem;
            m->be->ops->mem(m->be, &mem);
            snprintf(m->device, sizeof m->device, "%s", mem.device);
            return true;
        }
        anc_backend_free(m->be);
        m->be = NULL;
        forget_device_copies(m);
        if (p->backend == ANC_BACKEND_CUDA) {
            anc_set_err(err, errlen, "CUDA backend: %s", why);
            return false;
        }
        snprintf(m->backend_note, sizeof m->backend_note, "the GPU cannot run this model (%s); "
                 "using the CPU", why);
    }
    m->be = anc_backend_cpu_new(p->n_threads);
    if (!m->be) {
        anc_set_err(err, errlen, "cannot start the CPU backend (out of memory or threads)");
        return false;
    }
    return prepare_weights(m, err, errlen);
}

/* The model's name: general.name, unless it only repeats the architecture
 * (stories260K's says "llama"); then the file's name without ".gguf". */
static char *name_from(const struct gguf_file *f, const char *path)
{
    struct gguf_str s, arch;
    if (gguf_get_str(f, "general.name", &s) && s.len > 0 && s.len < 256 &&
        !memchr(s.ptr, '\0', s.len) &&
        !(gguf_get_str(f, "general.architecture", &arch) && arch.len == s.len &&
          strncasecmp(arch.ptr, s.ptr, s.len) == 0))
        return strndup(s.ptr, s.len);
    char *copy = strdup(path);
    if (!copy) return NULL;
    char *b = strdup(basename(copy));
    free(copy);
    size_t n = b ? strlen(b) : 0;
    if (n > 5 && strcasecmp(b + n - 5, ".gguf") == 0) b[n - 5] = '\0';
    return b;
}

struct anc_model *anc_model_load(const char *path, const struct anc_model_params *p,
                                 char *err, size_t errlen)
{
    struct anc_model_params defaults;
    if (!p) {
        anc_model_params_default(&defaults);
        p = &defaults;
    }
    struct anc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        anc_set_err(err, errlen, "out of memory");
        free(m);
        return NULL;
    }
    m->vocab_only = p->vocab_only;
    m->file = gguf_open(path, err, errlen);
    if (!m->file) goto fail;
    m->tok = tokenizer_new(m->file, err, errlen);
    if (!m->tok) {
        /* the tokenizer's message lacks the file name */
        char inner[ANC_ERR_LEN];
        snprintf(inner, sizeof inner, "%s", err ? err : "");
        anc_set_err(err, errlen, "%s: %s", path, inner);
        goto fail;
    }
    m->name = name_from(m->file, path);
    if (!m->name) {
        anc_set_err(err, errlen, "out of memory");
        goto fail;
    }
    if (!p->vocab_only) {
        if (!read_hparams(m, err, errlen) || !load_weights(m, err, errlen)) goto fail;
        if (!start_backend(m, p, err, errlen)) goto fail;
    } else {
        m->hp.n_vocab = tokenizer_n_vocab(m->tok);
    }
    return m;
fail:
    anc_model_free(m);
    return NULL;
}

void anc_model_free(struct anc_model *m)
{
    if (!m) return;
    anc_backend_free(m->be);
    free(m->layers);
    tokenizer_free(m->tok);
    gguf_close(m->file);
    free(m->name);
    free(m->path);
    free(m);
}

const struct anc_weight *model_proj_weight(const struct anc_model *m, int32_t l,
                                           enum model_proj p)
{
    const struct model_layer *L = &m->layers[l];
    switch (p) {
    case PROJ_Q: return &L->wq;
    case PROJ_K: return &L->wk;
    case PROJ_V: return &L->wv;
    case PROJ_O: return &L->wo;
    case PROJ_GATE: return &L->w_gate;
    case PROJ_UP: return &L->w_up;
    case PROJ_DOWN: return &L->w_down;
    }
    return NULL;
}

void anc_model_get_info(const struct anc_model *m, struct anc_model_info *out)
{
    memset(out, 0, sizeof *out);
    out->path = m->path;
    out->n_threads = m->be ? m->be->n_threads : 0;
    out->arch = m->hp.arch[0] ? m->hp.arch : "(vocabulary only)";
    out->name = m->name;
    out->n_vocab = m->hp.n_vocab;
    out->n_ctx_train = m->hp.n_ctx_train;
    out->dim = m->hp.dim;
    out->n_layer = m->hp.n_layer;
    out->n_head = m->hp.n_head;
    out->n_kv_head = m->hp.n_kv_head;
    out->head_dim = m->hp.head_dim;
    out->n_ff = m->hp.n_ff;
    out->rope_dims = m->hp.rope_dims;
    out->rope_theta = m->hp.rope_theta;
    out->norm_eps = m->hp.norm_eps;
    out->weight_type = m->weight_type;
    const struct anc_dtype_info *d = anc_dtype_get(m->weight_type);
    out->weight_type_name = d ? d->name : "?";
    out->n_params = m->n_params;
    out->weight_bytes = m->weight_bytes;
    out->decode_bytes = m->weight_bytes;
    if (m->output.data != m->tok_embd.data)
        out->decode_bytes -= anc_dtype_row_bytes(m->tok_embd.type, (uint64_t)m->tok_embd.cols) *
                             (uint64_t)m->tok_embd.rows;
    out->vocab_only = m->vocab_only;
    out->backend = m->be ? m->be->ops->name : NULL;
    out->device = m->device;
    out->backend_note = m->backend_note;
    if (m->be) {
        struct anc_backend_mem mem;
        m->be->ops->mem(m->be, &mem);
        out->device_bandwidth_gbs = mem.peak_bandwidth_gbs;
    }
}

/* ---- tokens --------------------------------------------------------- */

int anc_tokenize(const struct anc_model *m, const char *text, size_t len, bool add_bos,
                 int32_t **out, size_t *n_out)
{
    /* BOS only where the vocabulary wants one (GPT-2 style files do not) */
    return tokenizer_encode(m->tok, text, len, add_bos && tokenizer_add_bos(m->tok), out, n_out) ? 0 : -1;
}

char *anc_detokenize(const struct anc_model *m, const int32_t *ids, size_t n)
{
    return tokenizer_decode(m->tok, ids, n);
}

size_t anc_token_piece(const struct anc_model *m, int32_t prev, int32_t id, char *buf,
                       size_t cap)
{
    return tokenizer_piece(m->tok, prev, id, buf, cap);
}

int32_t anc_token_bos(const struct anc_model *m) { return tokenizer_bos(m->tok); }

const char *anc_token_text(const struct anc_model *m, int32_t id)
{
    if (id < 0 || id >= tokenizer_n_vocab(m->tok)) return NULL;
    return tokenizer_token_text(m->tok, id);
}
int32_t anc_token_eos(const struct anc_model *m) { return tokenizer_eos(m->tok); }
int32_t anc_n_vocab(const struct anc_model *m) { return m->hp.n_vocab; }

bool anc_token_is_eog(const struct anc_model *m, int32_t id)
{
    return tokenizer_is_eog(m->tok, id);
}

void model_limit_layers(struct anc_model *m, int32_t n)
{
    if (n >= 1 && n <= m->hp.n_layer) m->hp.n_layer = n;
}
