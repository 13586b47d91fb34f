/* cuda_plan.h — the host-side logic of the CUDA backend, in plain C so it
 * builds and is unit-tested everywhere (tests/test_cuda_plan.c), GPU or not:
 *   - launch planning: how many chunks attention splits a cache into, when
 *     a product goes to cuBLAS, how many weight rows one GEMM chunk takes;
 *   - a pointer table for exact memory accounting (every device allocation
 *     with its size and kind) that also maps host weights to their device
 *     copies (so tied embeddings are uploaded once);
 *   - the op list of a step: the backend records each operation with its
 *     scalar arguments, device pointers and the offsets of its index arrays
 *     in a staging area (copied to the device in one transfer), then runs
 *     the list directly or as a CUDA graph;
 *   - the graph decision: replay the graph when a step's list equals the
 *     last one (only the staged data differ), update it when only
 *     arguments differ, capture it when a list's shape repeats.
 * Depends on cuda_kernels.h (argument structs) only; no CUDA headers. */
#ifndef ANC_CUDA_PLAN_H
#define ANC_CUDA_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_kernels.h"

/* ---- launch planning ------------------------------------------------------ */

/* Fewest cache entries one attention chunk is worth (below this the merge
 * costs more than the parallelism gains). */
#define CUDA_ATTN_MIN_CHUNK 64
#define CUDA_ATTN_MAX_SPLIT 64

/* Chunks to split each (query, kv head)'s cache into so that the GPU's
 * n_sm multiprocessors get about two blocks each. */
int32_t cuda_plan_attn_split(int32_t n_q, int32_t n_kv_head, int32_t n_kv, int32_t n_sm);

/* Does a product of n_tok tokens go to cuBLAS (else the matvec kernels)? */
bool cuda_plan_use_gemm(int32_t n_tok);

/* Weight rows per GEMM chunk when dequantising into a scratch area of
 * scratch_bytes holding elem_bytes per element: as many as fit, a multiple
 * of 64 when more than 64 fit, at least 1, at most rows. */
int64_t cuda_plan_gemm_rows(int64_t rows, int64_t cols, size_t scratch_bytes, size_t elem_bytes);

/* Parts a sum of n elements is split into (anc_cu_sum_sq: one block each,
 * added in order on the host): a function of n alone, so a sum gives the
 * same bits every time; at least 1, at most CUDA_SUM_MAX_PARTS, each part
 * at least CUDA_SUM_MIN_PART elements when n allows. */
#define CUDA_SUM_MAX_PARTS 1024
#define CUDA_SUM_MIN_PART 4096
int32_t cuda_plan_sum_parts(int64_t n);

/* ---- pointer table: device allocations and host -> device weights --------- */

enum cuda_mem_kind { CUDA_MEM_WEIGHTS, CUDA_MEM_BUFFERS, CUDA_MEM_INTERNAL, CUDA_MEM_KINDS };

struct cuda_ptr_entry {
    const void *key;    /* device pointer (allocations) or host pointer (weights) */
    void *value;        /* the device copy, for weights */
    uint64_t bytes;
    int kind;           /* enum cuda_mem_kind */
};

struct cuda_ptr_table {
    struct cuda_ptr_entry *e;   /* open addressing, key NULL = empty */
    size_t cap, n;              /* cap a power of two */
    uint64_t bytes[CUDA_MEM_KINDS]; /* live bytes per kind */
};

void cuda_ptr_table_init(struct cuda_ptr_table *t);
void cuda_ptr_table_release(struct cuda_ptr_table *t);
/* Add key (not present yet); false when out of host memory. */
bool cuda_ptr_table_put(struct cuda_ptr_table *t, const void *key, void *value, uint64_t bytes,
                        int kind);
/* The entry for key, or NULL. */
const struct cuda_ptr_entry *cuda_ptr_table_get(const struct cuda_ptr_table *t, const void *key);
/* Remove key; its entry is copied to *out when found. false if absent. */
bool cuda_ptr_table_del(struct cuda_ptr_table *t, const void *key, struct cuda_ptr_entry *out);

/* ---- the op list of a step ------------------------------------------------- */

enum cuda_op_kind {
    CUDA_OP_MATVEC, CUDA_OP_GEMM, CUDA_OP_RMSNORM, CUDA_OP_ROPE, CUDA_OP_ATTN,
    CUDA_OP_SWIGLU, CUDA_OP_ADD, CUDA_OP_EMBED, CUDA_OP_STORE_ROWS, CUDA_OP_LOAD_ROWS,
    CUDA_OP_COPY, CUDA_OP_COPY_ROWS, CUDA_OP_GEGLU, CUDA_OP_ADD_ROWS, CUDA_OP_SCALE,
    CUDA_OP_SOFTCAP,
    /* training (backend.h "Training") */
    CUDA_OP_ZERO, CUDA_OP_MM_BWD_X, CUDA_OP_MM_BWD_W, CUDA_OP_RMSNORM_BWD, CUDA_OP_ROPE_BWD,
    CUDA_OP_ATTN_TRAIN, CUDA_OP_ATTN_TRAIN_BWD, CUDA_OP_SWIGLU_BWD, CUDA_OP_EMBED_BWD,
    CUDA_OP_CROSS_ENTROPY, CUDA_OP_SUM_SQ, CUDA_OP_ADAMW,
};

/* One recorded operation. Pointers are device memory; *_off are byte
 * offsets into the step's staging area (host data copied at the start of
 * the step). Records are zero-filled before use so they compare bytewise. */
struct cuda_op {
    int32_t kind;
    union {
        struct { float *y; const void *w; uint32_t type; int64_t rows, cols; const float *x;
                 int32_t n_tok; } mm;
        struct { float *y; const float *x; const float *w; int32_t n, n_tok; float eps; } norm;
        struct { float *x; int32_t n_tok, n_heads, head_dim, n_pairs; bool neox;
                 size_t cos_off, sin_off, pos_off; } rope;
        struct { struct anc_cu_attn a; size_t slot_off, lo_off, hi_off; } attn;
        struct { float *out; const float *a; const float *b; int64_t n; } ew;
        /* add_rows (b: the bias, n_tok rows of n), scale and softcap (s) */
        struct { float *x; const float *b; int64_t n; int32_t n_tok; float s; } ews;
        struct { float *out; const void *table; uint32_t type; int64_t cols; size_t tok_off;
                 int32_t n_tok; } embed;
        struct { void *base; float *act; uint32_t type; size_t rows_off; int32_t n;
                 int64_t row_len; } rows;
        struct { void *dst; const void *src; size_t bytes; } copy;
        struct { void *dst; const void *src; size_t row_bytes; size_t rows_off; int32_t n; } crows;
        /* training. zero: copy.dst, copy.bytes; rope_bwd: rope.
         * matmul_bwd_x: dx (+)= W^T dy (w, type; accumulate);
         * matmul_bwd_w: dx is dw [rows][cols] += dy^T x */
        struct { float *dx; const void *w; uint32_t type; int64_t rows, cols; const float *dy;
                 const float *x; int32_t n_tok; bool accumulate; } mmb;
        struct { float *dx, *dw, *work; const float *dy, *x, *w; int32_t n, n_tok; float eps; } normb;
        struct anc_cu_attn_train atr;
        struct { float *dgate, *dup; const float *dy, *gate, *up; int64_t n; } swb;
        struct { float *dtable; const float *dx; size_t idx_off; int32_t n_uniq, n_tok;
                 int64_t dim; } embb;
        struct { float *logits; double *loss; size_t tgt_off; int32_t n_tok, n_vocab;
                 float grad_scale; } ce;
        struct { const float *x; double *part; int64_t n; int32_t n_parts; } ssq;
        struct { float *p, *m, *v; const float *g; int64_t n; struct anc_cu_adamw h; } adam;
    } u;
};

struct cuda_step {
    struct cuda_op *ops;
    int32_t n_ops, cap_ops;
    uint8_t *stage;            /* host staging data of this step */
    size_t stage_used, stage_cap;
    bool no_graph;             /* cuBLAS or host-driven copies inside: never graphed */
    uint64_t rope_version;     /* the table staged last in this step (0: none) */
    size_t rope_cos_off, rope_sin_off;
};

void cuda_step_init(struct cuda_step *s);
void cuda_step_release(struct cuda_step *s);
/* Forget the ops and staged data (capacity is kept). */
void cuda_step_clear(struct cuda_step *s);
/* Append an op; false when out of host memory. */
bool cuda_step_push(struct cuda_step *s, const struct cuda_op *op);
/* Copy bytes into the staging area (16-byte aligned); returns the offset,
 * or (size_t)-1 when out of host memory. */
size_t cuda_step_stage(struct cuda_step *s, const void *data, size_t bytes);
/* Same ops with the same arguments and staging size (staged data aside). */
bool cuda_step_same(const struct cuda_step *a, const struct cuda_step *b);
/* Same sequence of op kinds (arguments aside). */
bool cuda_step_same_shape(const struct cuda_step *a, const struct cuda_step *b);
/* Copy a step's ops (not its staged data) for later comparison. */
bool cuda_step_copy_ops(struct cuda_step *dst, const struct cuda_step *src);

/* ---- CUDA graphs --------------------------------------------------------------- */

enum cuda_graph_action {
    CUDA_RUN_DIRECT,    /* launch the ops one by one */
    CUDA_RUN_CAPTURE,   /* capture the ops into a new graph, then launch it */
    CUDA_RUN_UPDATE,    /* capture, update the existing executable graph, launch */
    CUDA_RUN_REPLAY,    /* launch the existing graph as it is */
};

/* Fewest ops worth a graph. */
#define CUDA_GRAPH_MIN_OPS 8

struct cuda_graph_state {
    bool enabled;             /* ANCORA_CUDA_GRAPHS=0 turns graphs off */
    bool have_exec;           /* an executable graph exists for `graph` */
    struct cuda_step graph;   /* ops of that graph */
    struct cuda_step pending; /* ops of the last step run directly */
    bool pending_valid;
    int64_t n_replay, n_update, n_capture, n_direct; /* statistics */
};

void cuda_graph_state_init(struct cuda_graph_state *g, bool enabled);
void cuda_graph_state_release(struct cuda_graph_state *g);
/* Forget the graph (e.g. the staging area moved); the caller destroys the
 * executable graph itself. */
void cuda_graph_forget(struct cuda_graph_state *g);

/* What to do with step s, given the state. */
enum cuda_graph_action cuda_graph_decide(const struct cuda_graph_state *g,
                                         const struct cuda_step *s);
/* Remember s after running it with action a (ok = the graph work succeeded;
 * when false the state forgets its graph). */
void cuda_graph_note(struct cuda_graph_state *g, const struct cuda_step *s,
                     enum cuda_graph_action a, bool ok);

#endif
