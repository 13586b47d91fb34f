/* backend.h — the one interface between the engine (core/) and compute
 * (kernels/cpu, kernels/cuda). A backend is a table of operations; every
 * operation of the forward pass is a separate call with explicit inputs and
 * outputs (so a backward pass can be added per op later).
 * Depends only on dtype.h; never on core/ headers.
 *
 * Conventions: activations are float32, row-major, one row per token.
 * A weight matrix W has `rows` output features and `cols` input features,
 * stored row by row (GGUF's ne[0] = cols); y = W·x. */
#ifndef ANC_BACKEND_H
#define ANC_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "dtype.h"

/* A weight tensor as the backend sees it. `data` is host memory (usually the
 * model file's mapping); a device backend may hang its copy off `dev`. */
struct anc_weight {
    const void *data;
    uint32_t type;   /* enum anc_dtype */
    int64_t rows;    /* output features (ne[1]); 1 for vectors */
    int64_t cols;    /* input features (ne[0]) */
    void *dev;       /* backend-private copy, or NULL */
};

/* RoPE rotation table, computed by core/rope.c in double and stored float.
 * cos/sin already include any attention factor (YaRN's m). */
struct anc_rope_table {
    int32_t n_pos;       /* positions 0..n_pos-1 are tabulated */
    int32_t n_pairs;     /* rot_dims / 2 */
    bool neox;           /* pairs (k, k+rot/2) instead of adjacent (2k, 2k+1) */
    const float *cos;    /* [n_pos][n_pairs] */
    const float *sin;    /* [n_pos][n_pairs] */
};

/* Attention of n_q queries over n_kv logical cache entries, one layer. */
struct anc_attn_args {
    float *out;            /* [n_q][n_head * head_dim] */
    const float *q;        /* [n_q][n_head * head_dim], rotated */
    const float *q_sink;   /* like q, rotated for entries [0, n_sink); NULL = q */
    const void *k;         /* rotated key rows [*][n_kv_head * head_dim] */
    const void *v;         /* value rows [*][n_kv_head * head_dim] */
    uint32_t kv_type;      /* ANC_DT_F32 or ANC_DT_F16, for k and v */
    const int32_t *slot;   /* [n_kv] physical row of logical entry j (for k
                              and v); NULL = j */
    int32_t n_q, n_kv, n_head, n_kv_head, head_dim;
    int32_t n_sink;        /* logical entries [0, n_sink) are seen by every query */
    const int32_t *lo;     /* [n_q]: query i also sees entries [lo[i], hi[i]) */
    const int32_t *hi;
    float scale;           /* logit scale, usually 1/sqrt(head_dim) */
    float *sink_mass;      /* [n_head] or NULL: share of the LAST query's
                              attention that falls on [0, n_sink) */
};

/* Largest head dimension any backend must handle (models are checked at load). */
#define ANC_MAX_HEAD_DIM 512
/* Largest number of query heads sharing one key/value head. */
#define ANC_MAX_GROUP 64

struct anc_backend;

struct anc_backend_ops {
    const char *name;
    void (*destroy)(struct anc_backend *be);

    /* Buffers for activations and caches (host memory on the CPU). */
    void *(*alloc)(struct anc_backend *be, size_t bytes);
    void (*free)(struct anc_backend *be, void *p);

    /* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok.   y: [n_tok][rows] */
    void (*matmul)(struct anc_backend *be, float *y, const struct anc_weight *w,
                   const float *x, int32_t n_tok);
    /* y[t] = x[t] / rms(x[t]) * w, rows of n.  y may alias x. */
    void (*rmsnorm)(struct anc_backend *be, float *y, const float *x, const float *w,
                    int32_t n, int32_t n_tok, float eps);
    /* Rotate x [n_tok][n_heads][head_dim] in place, token t at pos[t]; the
     * first 2*tab->n_pairs dims of each head rotate, the rest pass through. */
    void (*rope)(struct anc_backend *be, float *x, int32_t n_tok, int32_t n_heads,
                 int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos);
    void (*attention)(struct anc_backend *be, const struct anc_attn_args *a);
    /* out[i] = silu(gate[i]) * up[i]; out may alias gate. */
    void (*swiglu)(struct anc_backend *be, float *out, const float *gate, const float *up,
                   int64_t n);
    /* y[i] += x[i] */
    void (*add)(struct anc_backend *be, float *y, const float *x, int64_t n);
    /* out[t] = row tokens[t] of the embedding table (dequantised). */
    void (*embed)(struct anc_backend *be, float *out, const struct anc_weight *table,
                  const int32_t *tokens, int32_t n_tok);
    /* Convert n floats into a cache row of type ANC_DT_F32/F16 (and back). */
    void (*store_row)(struct anc_backend *be, void *dst, uint32_t type, const float *src,
                      int64_t n);
    void (*load_row)(struct anc_backend *be, float *dst, const void *src, uint32_t type,
                     int64_t n);
};

struct anc_backend {
    const struct anc_backend_ops *ops;
    int n_threads;
    void *priv;            /* backend-private state (thread pool, streams) */
};

/* The CPU backend: the reference. n_threads <= 0 means "number of cores". */
struct anc_backend *anc_backend_cpu_new(int n_threads);
void anc_backend_free(struct anc_backend *be);

/* Can this backend multiply by weights of this type? */
bool anc_backend_cpu_supports(uint32_t type);

/* The SIMD level of the CPU kernels ("avx2", "generic"). */
const char *anc_backend_cpu_isa(void);

/* Number of online processors (at least 1). */
int anc_cpu_count(void);

#endif
