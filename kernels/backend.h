/* backend.h — the one interface between the engine (core/) and compute
 * (kernels/cpu, kernels/cuda). A backend is a table of operations; every
 * operation of the forward pass is a separate call with explicit inputs and
 * outputs (so a backward pass can be added per op later).
 * Depends only on dtype.h; never on core/ headers.
 *
 * Conventions: activations are float32, row-major, one row per token.
 * A weight matrix W has `rows` output features and `cols` input features,
 * stored row by row (GGUF's ne[0] = cols); y = W·x.
 *
 * Memory: buffers from `alloc` (activations, caches) are backend memory —
 * device memory on a GPU — and the engine never dereferences them; it
 * moves data with copy/download. Index arrays (tokens, rows, positions,
 * the attention's slot/lo/hi) and RoPE tables are HOST memory, read during
 * the call (a device backend copies what it needs). A backend may queue
 * work and run it later: only download and argmax wait for results. */
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
    uint64_t version;    /* changes whenever cos/sin change; 0 = unknown */
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
                              and v); host memory */
    int32_t n_q, n_kv, n_head, n_kv_head, head_dim;
    int32_t n_sink;        /* logical entries [0, n_sink) are seen by every query */
    const int32_t *lo;     /* [n_q]: query i also sees entries [lo[i], hi[i]) (host) */
    const int32_t *hi;
    float scale;           /* logit scale, usually 1/sqrt(head_dim) */
    float softcap;         /* > 0: scores become softcap*tanh(score/softcap)
                              after scaling (Gemma 2); 0: none */
    float *sink_mass;      /* [n_head] (backend memory) or NULL: share of the
                              LAST query's attention that falls on [0, n_sink) */
};

/* Largest head dimension any backend must handle (models are checked at load). */
#define ANC_MAX_HEAD_DIM 512
/* Largest number of query heads sharing one key/value head. */
#define ANC_MAX_GROUP 64

/* Attention while training (kernels/cpu/cpu_train.c): n tokens at
 * positions 0..n-1 attend to each other causally, with no cache. q, k, v
 * come straight from the projections (rotated), f32. With group > 0 this is
 * shifted sparse attention (S²-Attn, LongLoRA; TECHNIQUES.md §4): heads
 * below n_head/2 see only their own group [gG, (g+1)G); the others see the
 * groups shifted by G/2 — [0, G/2), [G/2, 3G/2), …, the last one ending at
 * n — with no wrap-around. The forward keeps each (query, head)'s
 * log-sum-exp of the scaled scores for the backward, which recomputes the
 * probabilities from it. */
struct anc_attn_train_args {
    float *out;            /* [n][n_head * head_dim]   (forward output) */
    float *lse;            /* [n][n_head]              (forward output, backward input) */
    const float *q;        /* [n][n_head * head_dim] */
    const float *k;        /* [n][n_kv_head * head_dim] */
    const float *v;        /* [n][n_kv_head * head_dim] */
    /* backward only: */
    const float *dout;     /* [n][n_head * head_dim] */
    float *dq;             /* like q, overwritten */
    float *dk, *dv;        /* like k and v, overwritten */
    int32_t n, n_head, n_kv_head, head_dim;
    int32_t group;         /* 0: full causal; else the S²-Attn group size (even, divides n) */
    float scale;           /* logit scale, usually 1/sqrt(head_dim) */
};

/* AdamW (Loshchilov & Hutter 2019) with bias correction, step t >= 1:
 * m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
 * p -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p). */
struct anc_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t t;
};

struct anc_backend;

/* Memory a backend holds, bytes (device memory for a GPU backend). */
struct anc_backend_mem {
    uint64_t weights;      /* prepared weights (0 when they stay in the file mapping) */
    uint64_t buffers;      /* alloc'd buffers: caches and scratch */
    uint64_t internal;     /* the backend's own work areas */
    uint64_t device_total, device_free; /* the device as a whole (0 on the CPU) */
    double peak_bandwidth_gbs; /* the device's memory bandwidth limit, GB/s (0: unknown) */
    char device[64];       /* "NVIDIA H100 80GB HBM3", or "" for the CPU */
};

struct anc_backend_ops {
    const char *name;
    void (*destroy)(struct anc_backend *be);

    /* Make a weight usable by this backend (a GPU uploads it once; the same
     * host data prepared twice, e.g. tied embeddings, is shared). false +
     * message when the backend cannot compute with it. */
    bool (*prepare)(struct anc_backend *be, struct anc_weight *w, char *err, size_t errlen);

    /* Buffers for activations and caches, zero-filled. */
    void *(*alloc)(struct anc_backend *be, size_t bytes);
    void (*free)(struct anc_backend *be, void *p);
    /* dst <- src, both backend memory. */
    void (*copy)(struct anc_backend *be, void *dst, const void *src, size_t bytes);
    /* host <- backend memory, after all queued work. */
    void (*download)(struct anc_backend *be, void *host, const void *src, size_t bytes);

    /* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tok.   y: [n_tok][rows] */
    void (*matmul)(struct anc_backend *be, float *y, const struct anc_weight *w,
                   const float *x, int32_t n_tok);
    /* y[t] = x[t] / rms(x[t]) * w, rows of n (w: an f32 weight of n).  y may alias x. */
    void (*rmsnorm)(struct anc_backend *be, float *y, const float *x,
                    const struct anc_weight *w, int32_t n, int32_t n_tok, float eps);
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

    /* Operations some architectures need (DESIGN.md, "Architectures are
     * data"). A backend that lacks one leaves it NULL and the model loader
     * refuses (or, with --backend auto, moves to the CPU) for the families
     * that use it; the CPU backend has them all. */
    /* out[i] = gelu_tanh(gate[i]) * up[i]; out may alias gate. */
    void (*geglu)(struct anc_backend *be, float *out, const float *gate, const float *up,
                  int64_t n);
    /* y[t][i] += b[i] for t < n_tok, i < n (b: an f32 weight of n). */
    void (*add_rows)(struct anc_backend *be, float *y, const struct anc_weight *b, int64_t n,
                     int32_t n_tok);
    /* x[i] *= s */
    void (*scale)(struct anc_backend *be, float *x, float s, int64_t n);
    /* x[i] = cap * tanh(x[i] / cap); also tells that attention accepts
       anc_attn_args.softcap > 0 */
    void (*softcap)(struct anc_backend *be, float *x, float cap, int64_t n);
    /* out[t] = row tokens[t] of the embedding table (dequantised). */
    void (*embed)(struct anc_backend *be, float *out, const struct anc_weight *table,
                  const int32_t *tokens, int32_t n_tok);
    /* Cache rows of row_len elements of type ANC_DT_F32/F16:
     * store: row rows[i] of base <- src[i] (converted), i < n;
     * load:  dst[i] <- row rows[i] of base (as float). */
    void (*store_rows)(struct anc_backend *be, void *base, uint32_t type, const float *src,
                       const int32_t *rows, int32_t n, int64_t row_len);
    void (*load_rows)(struct anc_backend *be, float *dst, const void *base, uint32_t type,
                      const int32_t *rows, int32_t n, int64_t row_len);
    /* Row i of dst <- row src_rows[i] of src, rows of row_bytes, i < n. */
    void (*copy_rows)(struct anc_backend *be, void *dst, const void *src, size_t row_bytes,
                      const int32_t *src_rows, int32_t n);
    /* The smallest index of the largest of x[0..n) (after queued work). */
    int32_t (*argmax)(struct anc_backend *be, const float *x, int32_t n);
    /* What this backend holds now. */
    void (*mem)(struct anc_backend *be, struct anc_backend_mem *out);

    /* Training: the backward of each forward op, and what the optimiser
     * needs (core/train.c). All NULL in a backend that cannot train; the
     * CPU backend has them all. "accumulates" means += into the output. */
    /* backend memory <- host */
    void (*upload)(struct anc_backend *be, void *dst, const void *host, size_t bytes);
    /* bytes of backend memory at p <- 0 */
    void (*zero)(struct anc_backend *be, void *p, size_t bytes);
    /* dx[t][c] (+)= sum_r W[r][c] dy[t][r]: matmul's gradient to its input,
     * for any weight type matmul takes. dy: [n_tok][rows], dx: [n_tok][cols];
     * accumulate: add to dx instead of overwriting it. */
    void (*matmul_bwd_x)(struct anc_backend *be, float *dx, const struct anc_weight *w,
                         const float *dy, int32_t n_tok, bool accumulate);
    /* dw[r][c] += sum_t dy[t][r] x[t][c]: gradient to an f32 weight
     * [rows][cols] (accumulates). */
    void (*matmul_bwd_w)(struct anc_backend *be, float *dw, const float *dy, const float *x,
                         int64_t rows, int64_t cols, int32_t n_tok);
    /* rmsnorm's backward: dx += d(y)/d(x)^T dy for y = rmsnorm(x)·w, and
     * dw += sum_t dy[t]·x[t]/rms(x[t]) when dw is not NULL (accumulates). */
    void (*rmsnorm_bwd)(struct anc_backend *be, float *dx, float *dw, const float *dy,
                        const float *x, const struct anc_weight *w, int32_t n, int32_t n_tok,
                        float eps);
    /* rope's backward: rotate dy in place by -angle (the rotation is
     * orthogonal, so its transpose is its inverse). */
    void (*rope_bwd)(struct anc_backend *be, float *dy, int32_t n_tok, int32_t n_heads,
                     int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos);
    /* training attention: forward (out, lse) and backward (dq, dk, dv). */
    void (*attn_train)(struct anc_backend *be, const struct anc_attn_train_args *a);
    void (*attn_train_bwd)(struct anc_backend *be, const struct anc_attn_train_args *a);
    /* swiglu's backward: dgate = dy·up·silu'(gate), dup = dy·silu(gate). */
    void (*swiglu_bwd)(struct anc_backend *be, float *dgate, float *dup, const float *dy,
                       const float *gate, const float *up, int64_t n);
    /* embed's backward: dtable[tokens[t]] += dx[t] (rows of dim; accumulates). */
    void (*embed_bwd)(struct anc_backend *be, float *dtable, const float *dx,
                      const int32_t *tokens, int32_t n_tok, int64_t dim);
    /* Cross-entropy of logits [n_tok][n_vocab] against targets (host ids;
     * a target < 0 is not scored): returns sum_t -log softmax(logits[t])[target],
     * in double, and turns logits into their gradient scaled by grad_scale:
     * (softmax - onehot)·grad_scale (rows of unscored targets become 0). */
    double (*cross_entropy)(struct anc_backend *be, float *logits, const int32_t *targets,
                            int32_t n_tok, int32_t n_vocab, float grad_scale);
    /* sum of squares of x[0..n), in double (gradient norms, clipping) */
    double (*sum_sq)(struct anc_backend *be, const float *x, int64_t n);
    /* one AdamW step of p against gradient g with moments m, v (all [n]) */
    void (*adamw)(struct anc_backend *be, float *p, const float *g, float *m, float *v,
                  int64_t n, const struct anc_adamw *h);
};

struct anc_backend {
    const struct anc_backend_ops *ops;
    int n_threads;
    void *priv;            /* backend-private state (thread pool, streams) */
};

/* The CPU backend: the reference. n_threads <= 0 means anc_cpu_count();
 * more than anc_cpu_available() threads are not started (be->n_threads
 * says how many were). */
struct anc_backend *anc_backend_cpu_new(int n_threads);
void anc_backend_free(struct anc_backend *be);

/* Can this backend multiply by weights of this type? */
bool anc_backend_cpu_supports(uint32_t type);

/* The SIMD level of the CPU kernels ("avx2", "generic"). */
const char *anc_backend_cpu_isa(void);

/* Physical cores this process may run on (at least 1): the default thread
 * count (kernels/cpu/cpu_topology.c). */
int anc_cpu_count(void);
/* CPUs (hardware threads) this process may run on (at least 1). */
int anc_cpu_available(void);

/* The CUDA backend (kernels/cuda/), when this build has it: device 0 of
 * the CUDA runtime, in a module loaded on first use (cuda_loader.c).
 * NULL + message when there is no usable GPU. */
bool anc_backend_cuda_compiled(void);
struct anc_backend *anc_backend_cuda_new(char *err, size_t errlen);
/* Number of usable CUDA devices (0 without a driver or GPU; never fails). */
int anc_backend_cuda_device_count(void);
/* The same, with why it is 0 in a few words (the module or its libraries
 * missing, no driver, no device). if_driver: load nothing unless a cheap
 * probe sees an NVIDIA driver or ANCORA_CUDA_MODULE names a module (what
 * --backend auto does). */
int anc_backend_cuda_devices(bool if_driver, char *why, size_t whylen);
/* Does the cheap probe see an NVIDIA driver (its device files)? */
bool anc_cuda_driver_present(void);
/* The module file in use once loaded ("" before, or when none loaded). */
const char *anc_backend_cuda_module_path(void);

#endif
