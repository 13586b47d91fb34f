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
    int32_t head_dim;     /* attention.key_length, else dim / n_head */
    int32_t q_dim;        /* n_head * head_dim (may differ from dim: Gemma 3) */
    int32_t kv_dim;       /* n_kv_head * head_dim */
    int32_t rope_dims;    /* {arch}.rope.dimension_count (default head_dim) */
    float rope_theta;     /* {arch}.rope.freq_base (default 10000, the
                             value the RoPE paper and Llama use) */
    bool rope_neox;       /* pairing: false for llama (adjacent pairs) */
    int32_t rope_scaling; /* enum rope_scaling from {arch}.rope.scaling.type */
    float rope_factor;    /* {arch}.rope.scaling.factor (or legacy scale_linear) */
    float rope_attn_factor;   /* {arch}.rope.scaling.attn_factor (default 1) */
    int32_t rope_orig_ctx;    /* .rope.scaling.original_context_length, else n_ctx_train */
    float norm_eps;       /* {arch}.attention.layer_norm_rms_epsilon */
    float attn_scale;     /* attention logit scale: 1/sqrt(head_dim) */
    float embed_scale;    /* input embeddings are multiplied by it (1 = none) */
    float attn_softcap;   /* {arch}.attn_logit_softcapping, 0 = none */
    float final_softcap;  /* {arch}.final_logit_softcapping, 0 = none */
    /* the model's own sliding-window layers (0 = none): a local layer's
       query sees its last n_swa tokens, itself included, with RoPE base
       swa_base and no scaling, whatever the user's policy */
    int32_t n_swa;        /* {arch}.attention.sliding_window */
    int32_t n_local;      /* how many layers are local */
    float swa_base;       /* {arch}.rope.freq_base_swa, else the family's default */
};

/* What a family's forward pass contains (DESIGN.md, "Architectures are
 * data"): one row per family in model.c, read by the one forward pass in
 * session.c. */
enum arch_act { ACT_SILU, ACT_GELU_TANH };
struct arch_desc {
    const char *name;
    bool rope_neox;       /* pairs (k, k+d/2) instead of adjacent (2k, 2k+1) */
    bool qkv_bias;        /* attn_{q,k,v}.bias required (Qwen2); optional elsewhere */
    bool qk_norm;         /* per-head RMSNorm of q and k before RoPE */
    bool fused_qkv;       /* one attn_qkv tensor, rows [q; k; v] (Phi-3) */
    bool fused_gate_up;   /* ffn_up holds rows [gate; up] (Phi-3) */
    bool post_norms;      /* post_attention_norm and post_ffw_norm (Gemma 2/3) */
    bool embed_scale;     /* embeddings times sqrt(dim) (Gemma) */
    bool softcaps;        /* reads the soft-capping keys (Gemma 2) */
    enum arch_act act;    /* the gated FFN's activation */
    int32_t swa_pattern;  /* with a sliding window: layer l is local iff
                             l % swa_pattern < swa_pattern - 1; 1 = all */
    float swa_base;       /* local layers' RoPE base when the file has none
                             (0: the global layers' base, as Gemma 2) */
    bool long_rope;       /* rope_factors_long / rope_factors_short (Phi-3) */
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
    /* present only where the family has them (data == NULL otherwise) */
    struct anc_weight bq, bk, bv;        /* (q_dim), (kv_dim), (kv_dim) f32 biases */
    struct anc_weight bo;                /* (dim) f32 bias of attn_output */
    struct anc_weight q_norm, k_norm;    /* (head_dim) f32 per-head norms */
    struct anc_weight post_attn_norm;    /* (dim) f32, after attention */
    struct anc_weight post_ffn_norm;     /* (dim) f32, after the FFN */
    bool local;                          /* a sliding-window layer */
};

/* The projections of a layer, for the one accessor below. */
enum model_proj { PROJ_Q, PROJ_K, PROJ_V, PROJ_O, PROJ_GATE, PROJ_UP, PROJ_DOWN };

struct anc_model {
    char *path;
    char *name;
    struct gguf_file *file;      /* owns the mapping the weights point into */
    struct tokenizer *tok;
    struct model_hparams hp;
    const struct arch_desc *arch;
    bool vocab_only;

    struct anc_weight tok_embd;  /* (n_vocab, dim) */
    struct anc_weight output_norm; /* (dim) f32 */
    struct anc_weight output;    /* (n_vocab, dim); the embedding when tied */
    struct model_layer *layers;  /* [n_layer], owned */
    const float *rope_freqs;     /* (rope_dims/2) divisors, or NULL */
    const float *rope_long;      /* LongRoPE divisors beyond rope_orig_ctx, or NULL */
    const float *rope_short;     /* LongRoPE divisors within it, or NULL */

    struct anc_backend *be;      /* owned */
    char backend_note[ANC_ERR_LEN + 128]; /* why AUTO chose the CPU, or "" */
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

/* The family description of an architecture name, or NULL. */
const struct arch_desc *model_arch_find(const char *name);
/* "llama, qwen2, ..." */
const char *model_arch_names(void);

/* Tests only: use just the first n layers (n <= n_layer). */
void model_limit_layers(struct anc_model *m, int32_t n);

#endif
