/* model.h — a loaded model: hyper-parameters read from GGUF metadata, the
 * weights (borrowed from the file's mapping), the tokenizer and the backend.
 * Internal to core/. No curses/readline/sqlite. */
#ifndef ANC_MODEL_H
#define ANC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "ancora.h"
#include "backend.h"

struct gguf_file;
struct tokenizer;

/* Hyper-parameters; every one comes from the file (none is assumed). */
struct model_hparams {
    char arch[32];        /* general.architecture */
    int32_t n_vocab;
    int32_t n_ctx_train;  /* {arch}.context_length */
    int32_t dim;          /* {arch}.embedding_length */
    int32_t n_layer;      /* {arch}.block_count */
    int32_t n_ff;         /* {arch}.feed_forward_length */
    int32_t n_head;       /* {arch}.attention.head_count */
    int32_t n_kv_head;    /* {arch}.attention.head_count_kv (default n_head) */
    int32_t head_dim;     /* dim / n_head (or attention.key_length) */
    int32_t rope_dims;    /* {arch}.rope.dimension_count (default head_dim) */
    float rope_theta;     /* {arch}.rope.freq_base (default 10000, the
                             value the RoPE paper and Llama use) */
    bool rope_neox;       /* pairing: false for llama (adjacent pairs) */
    int32_t rope_scaling; /* enum rope_scaling from {arch}.rope.scaling.type */
    float rope_factor;    /* {arch}.rope.scaling.factor (or legacy scale_linear) */
    float rope_attn_factor;   /* {arch}.rope.scaling.attn_factor (default 1) */
    int32_t rope_orig_ctx;    /* .rope.scaling.original_context_length, else n_ctx_train */
    float norm_eps;       /* {arch}.attention.layer_norm_rms_epsilon */
};

/* One transformer block's weights. Shapes as (rows = out, cols = in). */
struct model_layer {
    struct anc_weight attn_norm; /* (dim) f32 */
    struct anc_weight wq;        /* (n_head*head_dim, dim) */
    struct anc_weight wk;        /* (n_kv_head*head_dim, dim) */
    struct anc_weight wv;        /* (n_kv_head*head_dim, dim) */
    struct anc_weight wo;        /* (dim, n_head*head_dim) */
    struct anc_weight ffn_norm;  /* (dim) f32 */
    struct anc_weight w_gate;    /* (n_ff, dim) */
    struct anc_weight w_up;      /* (n_ff, dim) */
    struct anc_weight w_down;    /* (dim, n_ff) */
};

/* The projections of a layer, for the one accessor below. */
enum model_proj { PROJ_Q, PROJ_K, PROJ_V, PROJ_O, PROJ_GATE, PROJ_UP, PROJ_DOWN };

struct anc_model {
    char *path;
    char *name;
    struct gguf_file *file;      /* owns the mapping the weights point into */
    struct tokenizer *tok;
    struct model_hparams hp;
    bool vocab_only;

    struct anc_weight tok_embd;  /* (n_vocab, dim) */
    struct anc_weight output_norm; /* (dim) f32 */
    struct anc_weight output;    /* (n_vocab, dim); the embedding when tied */
    struct model_layer *layers;  /* [n_layer], owned */
    const float *rope_freqs;     /* (rope_dims/2) divisors, or NULL */

    struct anc_backend *be;      /* owned */
    char backend_note[ANC_ERR_LEN + 64]; /* why AUTO chose the CPU, or "" */
    char device[64];             /* the GPU's name, or "" */
    uint32_t weight_type;        /* most common matrix type */
    uint64_t n_params;
    uint64_t weight_bytes;
};

/* The weight of projection p in layer l (the single point of access, so
 * adapters such as LoRA can be applied here later). */
const struct anc_weight *model_proj_weight(const struct anc_model *m, int32_t l,
                                           enum model_proj p);

/* The backend to try first for a request, given what this build has and
 * the GPUs present: ANC_BACKEND_CPU or ANC_BACKEND_CUDA; -1 (with a
 * message) when the request cannot be met. */
int model_backend_choose(enum anc_backend_kind want, bool cuda_compiled, int n_gpus, char *err,
                         size_t errlen);

/* Tests only: use just the first n layers (n <= n_layer). */
void model_limit_layers(struct anc_model *m, int32_t n);

#endif
