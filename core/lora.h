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

struct anc_lora {
    char *path;
    const struct anc_model *model;  /* the base it was checked against */
    struct gguf_file *file;         /* owns the mapping the matrices point into */
    struct lora_pair *pairs;        /* [n_layer][LORA_N_PROJ]; a.data NULL = none */
    float alpha;
    int64_t max_rank, max_out;      /* for the session's scratch */
    int32_t n_pairs;
};

/* The pair adapting the base tensor named name ("blk.N.attn_q.weight"),
 * or NULL. */
const struct lora_pair *lora_pair_for_tensor(const struct anc_lora *lo, const char *name);

/* The pair adapting projection p of layer l, or NULL (also for lo NULL). */
const struct lora_pair *lora_pair_of(const struct anc_lora *lo, int32_t layer, enum model_proj p);

#endif
