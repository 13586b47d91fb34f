/* gguf_random.c — `ancora gguf random`: a real GGUF file of a named model
 * shape with seeded random weights of a chosen type (for benchmarks: speed
 * does not depend on the values) and the vocabulary of a real tokenizer
 * copied from a vocab-only GGUF. Depends on gguf (read + write), quant and
 * util; no UI libraries. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ancora.h"
#include "dtype.h"
#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"
#include "util.h"

/* Published shapes of well-known models (config.json of each release). */
struct model_shape {
    const char *name;
    int32_t dim, n_layer, n_head, n_kv_head, n_ff, n_ctx;
    float rope_theta;
};

static const struct model_shape shapes[] = {
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 2048, 10000.0f},
    {"llama2-7b", 4096, 32, 32, 32, 11008, 4096, 10000.0f},
    {"llama3-8b", 4096, 32, 32, 8, 14336, 8192, 500000.0f},
    {"llama3.2-1b", 2048, 16, 32, 8, 8192, 131072, 500000.0f},
    {"small", 256, 4, 8, 4, 768, 2048, 10000.0f}, /* for tests: a few MB */
};

const char *anc_gguf_random_shapes(void)
{
    return "tinyllama-1.1b, llama2-7b, llama3-8b, llama3.2-1b, small";
}

/* Weight type of each tensor role for a file type. Mixtures follow the
 * idea of llama.cpp's _M recipes: the value and down projections of some
 * layers and the output head get 6-bit K-quants. */
struct type_plan {
    const char *name;
    uint32_t base;           /* most matrices */
    uint32_t embd, output;
    bool mix_m;              /* attn_v / ffn_down in Q6_K on some layers */
    uint32_t ftype;          /* general.file_type (llama.cpp's enum) */
};

static const struct type_plan plans[] = {
    {"f32", ANC_DT_F32, ANC_DT_F32, ANC_DT_F32, false, 0},
    {"f16", ANC_DT_F16, ANC_DT_F16, ANC_DT_F16, false, 1},
    {"bf16", ANC_DT_BF16, ANC_DT_BF16, ANC_DT_BF16, false, 32},
    {"q4_0", ANC_DT_Q4_0, ANC_DT_Q4_0, ANC_DT_Q6_K, false, 2},
    {"q4_1", ANC_DT_Q4_1, ANC_DT_Q4_1, ANC_DT_Q6_K, false, 3},
    {"q8_0", ANC_DT_Q8_0, ANC_DT_Q8_0, ANC_DT_Q8_0, false, 7},
    {"q5_0", ANC_DT_Q5_0, ANC_DT_Q5_0, ANC_DT_Q6_K, false, 8},
    {"q5_1", ANC_DT_Q5_1, ANC_DT_Q5_1, ANC_DT_Q6_K, false, 9},
    {"q4_k_s", ANC_DT_Q4_K, ANC_DT_Q4_K, ANC_DT_Q6_K, false, 14},
    {"q4_k_m", ANC_DT_Q4_K, ANC_DT_Q4_K, ANC_DT_Q6_K, true, 15},
    {"q5_k_s", ANC_DT_Q5_K, ANC_DT_Q5_K, ANC_DT_Q6_K, false, 16},
    {"q5_k_m", ANC_DT_Q5_K, ANC_DT_Q5_K, ANC_DT_Q6_K, true, 17},
    {"q6_k", ANC_DT_Q6_K, ANC_DT_Q6_K, ANC_DT_Q6_K, false, 18},
};

const char *anc_gguf_random_types(void)
{
    return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k";
}

static bool use_q6k(const struct type_plan *p, int32_t layer, int32_t n_layer)
{
    if (!p->mix_m) return false;
    int32_t e = n_layer / 8;
    return layer < e || layer >= 7 * e || (layer - e) % 3 == 2;
}

/* A pool of random quantised blocks per type, copied into rows at random
 * (quantising a billion values would take minutes; speed does not care). */
#define POOL_ELEMS (1 << 16)

struct pool {
    uint8_t *bytes;
    size_t block_bytes, n_blocks;
};

struct gen {
    uint64_t rng;
    struct pool pools[ANC_DT_COUNT_];
    uint32_t *types;      /* [n_tensors] */
    bool *is_norm;        /* [n_tensors] */
    uint64_t *ne0;        /* [n_tensors] */
    anc_progress_fn progress;
    void *progress_ctx;
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Roughly normal with standard deviation 0.02 (sum of uniforms). */
static float rng_weight(uint64_t *s)
{
    uint64_t r = rng_next(s);
    double u = ((double)(r & 0xffff) + (double)((r >> 16) & 0xffff) + (double)((r >> 32) & 0xffff) +
                (double)((r >> 48) & 0xffff)) / 65536.0 - 2.0;
    return (float)(u * 0.02 * sqrt(3.0));
}

static bool pool_build(struct gen *g, uint32_t type)
{
    struct pool *p = &g->pools[type];
    if (p->bytes) return true;
    const struct anc_dtype_info *d = anc_dtype_get(type);
    float *src = malloc(sizeof(float) * POOL_ELEMS);
    p->block_bytes = d->block_bytes;
    p->n_blocks = POOL_ELEMS / d->block_elems;
    p->bytes = malloc(p->block_bytes * p->n_blocks);
    if (!src || !p->bytes) {
        free(src);
        return false;
    }
    for (int i = 0; i < POOL_ELEMS; i++) src[i] = rng_weight(&g->rng);
    bool ok = quant_quantize_row(type, src, p->bytes, POOL_ELEMS);
    free(src);
    return ok;
}

static bool gen_fill(void *ctx, size_t index, int64_t row0, int64_t n_rows, void *buf)
{
    struct gen *g = ctx;
    (void)row0;
    uint32_t type = g->types[index];
    uint64_t ne0 = g->ne0[index];
    if (g->is_norm[index]) { /* RMSNorm weights near 1 */
        float *f = buf;
        for (uint64_t i = 0; i < ne0 * (uint64_t)n_rows; i++) f[i] = 1.0f + rng_weight(&g->rng);
        return true;
    }
    const struct anc_dtype_info *d = anc_dtype_get(type);
    const struct pool *p = &g->pools[type];
    uint8_t *out = buf;
    size_t blocks = (size_t)(ne0 / d->block_elems) * (size_t)n_rows;
    for (size_t b = 0; b < blocks; b++) {
        size_t pick = (size_t)(rng_next(&g->rng) % p->n_blocks);
        memcpy(out + b * p->block_bytes, p->bytes + pick * p->block_bytes, p->block_bytes);
    }
    return true;
}


static void write_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct gen *g = ctx;
    if (g->progress) g->progress(g->progress_ctx, (int64_t)done, (int64_t)total);
}

int anc_gguf_random(const char *shape_name, const char *type_name, const char *vocab_path,
                    uint64_t seed, const char *out_path, anc_progress_fn progress,
                    void *progress_ctx, char *err, size_t errlen)
{
    const struct model_shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcasecmp(shapes[i].name, shape_name) == 0) sh = &shapes[i];
    if (!sh) {
        anc_set_err(err, errlen, "unknown shape '%s' (known: %s)", shape_name, anc_gguf_random_shapes());
        return -1;
    }
    const struct type_plan *tp = NULL;
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
        if (strcasecmp(plans[i].name, type_name) == 0) tp = &plans[i];
    if (!tp) {
        anc_set_err(err, errlen, "unknown type '%s' (known: %s)", type_name, anc_gguf_random_types());
        return -1;
    }
    struct gguf_file *vocab = gguf_open(vocab_path, err, errlen);
    if (!vocab) return -1;
    const struct gguf_kv *tokens = gguf_find_kv(vocab, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_VT_ARRAY || tokens->arr_n == 0) {
        anc_set_err(err, errlen, "%s has no tokenizer.ggml.tokens: not a vocabulary file", vocab_path);
        gguf_close(vocab);
        return -1;
    }
    uint64_t n_vocab = tokens->arr_n;
    struct gguf_writer *w = gguf_writer_new();
    struct gen g = {.rng = seed, .progress = progress, .progress_ctx = progress_ctx};
    int rc = -1;
    if (!w) goto out;
    char name[128];
    snprintf(name, sizeof name, "random %s %s", sh->name, tp->name);
    bool ok = gguf_writer_str(w, "general.architecture", "llama") &&
              gguf_writer_str(w, "general.name", name) &&
              gguf_writer_u32(w, "general.file_type", tp->ftype) &&
              gguf_writer_u32(w, "general.quantization_version", 2) &&
              gguf_writer_u32(w, "llama.context_length", (uint32_t)sh->n_ctx) &&
              gguf_writer_u32(w, "llama.embedding_length", (uint32_t)sh->dim) &&
              gguf_writer_u32(w, "llama.block_count", (uint32_t)sh->n_layer) &&
              gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)sh->n_ff) &&
              gguf_writer_u32(w, "llama.attention.head_count", (uint32_t)sh->n_head) &&
              gguf_writer_u32(w, "llama.attention.head_count_kv", (uint32_t)sh->n_kv_head) &&
              gguf_writer_u32(w, "llama.rope.dimension_count", (uint32_t)(sh->dim / sh->n_head)) &&
              gguf_writer_f32(w, "llama.rope.freq_base", sh->rope_theta) &&
              gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f) &&
              gguf_writer_u32(w, "llama.vocab_size", (uint32_t)n_vocab);
    for (uint64_t i = 0; ok && i < vocab->n_kv; i++) {
        const struct gguf_kv *kv = &vocab->kv[i];
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0)
            ok = gguf_writer_copy_kv(w, kv);
    }
    /* tensors, in the order converters write them */
    size_t cap = 3 + 9 * (size_t)sh->n_layer;
    g.types = calloc(cap, sizeof *g.types);
    g.is_norm = calloc(cap, sizeof *g.is_norm);
    g.ne0 = calloc(cap, sizeof *g.ne0);
    if (!ok || !g.types || !g.is_norm || !g.ne0) {
        anc_set_err(err, errlen, "out of memory");
        goto out;
    }
    int64_t hd = sh->dim / sh->n_head, q = (int64_t)sh->n_head * hd, kvd = (int64_t)sh->n_kv_head * hd;
#define T(nm, ty, c, r, norm)                                                          \
    do {                                                                               \
        long ix = gguf_writer_tensor(w, nm, ty, (uint64_t)(c), (uint64_t)(r));         \
        if (ix < 0) { anc_set_err(err, errlen, "cannot add tensor %s", nm); goto out; } \
        g.types[ix] = ty;                                                              \
        g.is_norm[ix] = norm;                                                          \
        g.ne0[ix] = (uint64_t)(c);                                                     \
        if (!norm && !pool_build(&g, ty)) {                                            \
            anc_set_err(err, errlen, "cannot make %s blocks", anc_dtype_get(ty)->name);  \
            goto out;                                                                  \
        }                                                                              \
    } while (0)
    T("token_embd.weight", tp->embd, sh->dim, n_vocab, false);
    for (int32_t l = 0; l < sh->n_layer; l++) {
        char nm[64];
        uint32_t heavy = use_q6k(tp, l, sh->n_layer) ? ANC_DT_Q6_K : tp->base;
        snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", l);
        T(nm, ANC_DT_F32, sh->dim, 1, true);
        snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", l);
        T(nm, tp->base, sh->dim, q, false);
        snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", l);
        T(nm, tp->base, sh->dim, kvd, false);
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l);
        T(nm, heavy, sh->dim, kvd, false);
        snprintf(nm, sizeof nm, "blk.%d.attn_output.weight", l);
        T(nm, tp->base, q, sh->dim, false);
        snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", l);
        T(nm, ANC_DT_F32, sh->dim, 1, true);
        snprintf(nm, sizeof nm, "blk.%d.ffn_gate.weight", l);
        T(nm, tp->base, sh->dim, sh->n_ff, false);
        snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", l);
        T(nm, tp->base, sh->dim, sh->n_ff, false);
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l);
        T(nm, heavy, sh->n_ff, sh->dim, false);
    }
    T("output_norm.weight", ANC_DT_F32, sh->dim, 1, true);
    T("output.weight", tp->output, sh->dim, n_vocab, false);
#undef T
    rc = gguf_writer_write(w, out_path, gen_fill, &g, write_progress, err, errlen);
out:
    for (int i = 0; i < ANC_DT_COUNT_; i++) free(g.pools[i].bytes);
    free(g.types);
    free(g.is_norm);
    free(g.ne0);
    gguf_writer_free(w);
    gguf_close(vocab);
    return rc;
}
