/* lora.h — a loaded LoRA adapter (core/lora.c): for each adapted
 * projection of each layer, A (r × in) and B (out × r) as backend weights
 * that point into the adapter file's mapping. The session applies them
 * after the base weight's matmul. Internal to core/. */
#ifndef ANC_LORA_H
#define ANC_LORA_H

#include "ancora.h"
#include "model.h"

#define LORA_N_PROJ 7 /* enum model_proj */

struct lora_pair {
    struct anc_weight a;   /* (r, in): rows r, cols in */
    struct anc_weight b;   /* (out, r) */
    float alpha_scale;     /* alpha / r, or 1 without alpha */
};

/* What LoRA+ trained besides the pairs (`ancora.plus.NAME` tensors, f32,
 * the base tensor NAME's shape), replacing the base's while the adapter is
 * on; data NULL = the base's own. */
struct lora_plus {
    struct anc_weight embd;          /* token_embd.weight (also the output head when tied) */
    struct anc_weight *attn_norm;    /* [n_layer] */
    struct anc_weight *ffn_norm;     /* [n_layer] */
    struct anc_weight output_norm;
    int32_t n;                       /* how many tensors */
};

struct anc_lora {
    char *path;
    const struct anc_model *model;  /* the base it was checked against */
    struct gguf_file *file;         /* owns the mapping the matrices point into */
    struct lora_pair *pairs;        /* [n_layer][LORA_N_PROJ]; a.data NULL = none */
    float alpha;
    int64_t max_rank, max_out;      /* for the session's scratch */
    int32_t n_pairs;
    struct lora_plus plus;
    bool has_rope;                  /* ancora.adapter.* RoPE keys: what it was trained for */
    struct anc_rope_settings rope;
    int32_t trained_ctx;
};

/* The weight the forward pass uses for the model's embedding / a norm /
 * the output head, with adapter lo on (NULL: the base's). which: 'a' the
 * layer's attention norm, 'f' its FFN norm. */
const struct anc_weight *lora_embd(const struct anc_lora *lo, const struct anc_model *m);
const struct anc_weight *lora_output(const struct anc_lora *lo, const struct anc_model *m);
const struct anc_weight *lora_output_norm(const struct anc_lora *lo, const struct anc_model *m);
const struct anc_weight *lora_norm(const struct anc_lora *lo, const struct anc_model *m, int32_t layer,
                                   char which);

/* LoRA+'s replacement for the base tensor named name, or NULL. */
const struct anc_weight *lora_plus_for_tensor(const struct anc_lora *lo, const char *name);

/* RoPE metadata of a model file written with an adapter folded in (merge)
 * or trained whole: is kv one of {arch}.context_length / rope.freq_base /
 * rope.scaling.* (which such a file writes anew)? And write them, under
 * `prefix` ("llama", or "ancora.adapter" in an adapter). */
struct gguf_kv;
struct gguf_writer;
bool lora_is_rope_key(const struct gguf_kv *kv, const char *arch);
bool lora_write_rope(struct gguf_writer *w, const char *prefix, int32_t ctx, double base, const char *scaling,
                     double factor, int32_t orig_ctx);

/* The pair adapting the base tensor named name ("blk.N.attn_q.weight"),
 * or NULL. */
const struct lora_pair *lora_pair_for_tensor(const struct anc_lora *lo, const char *name);

/* The pair adapting projection p of layer l, or NULL (also for lo NULL). */
const struct lora_pair *lora_pair_of(const struct anc_lora *lo, int32_t layer, enum model_proj p);

#endif
