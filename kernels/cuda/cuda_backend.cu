/* cuda_backend.cu — the CUDA backend: the op table of kernels/backend.h on
 * one NVIDIA GPU, with the CUDA runtime and cuBLAS.
 *
 * How it works:
 *   - Weights are uploaded once by `prepare` in their file format (quantised
 *     types stay quantised) and found again by their host address, so tied
 *     embeddings share one copy. Every device allocation is in a pointer
 *     table with its size and kind: the memory panel's numbers are exact.
 *   - Operations are not launched when called: each is recorded (arguments,
 *     device pointers, and the offsets of its host index arrays copied into
 *     a staging area) into the current step. A step runs when the engine
 *     needs a result (download, argmax) or a buffer must move: the staging
 *     area goes to the device in one copy, then the kernels run — directly,
 *     or as a CUDA graph when the same list of operations repeats (a decode
 *     step: only the staged positions and slot maps change, so the graph is
 *     replayed as is, or updated in place while the cache is filling).
 *     The decisions live in cuda_plan.c, where they are unit-tested.
 *   - Element-wise ops (swiglu, geglu, add, bias rows, scale, soft-cap)
 *     are one grid-stride kernel each; attention soft-caps its scores
 *     itself (Gemma 2).
 *   - Decoding multiplies with the matvec kernels (dequantising on the fly);
 *     prompt batches dequantise weight chunks to half precision and call
 *     cuBLAS (float accumulation).
 *   - Cache updates are row scatters on the device; evictions only change
 *     the slot map (host), which each step stages afresh.
 *   - Training (backend.h "Training"; `ancora train --backend cuda`): the
 *     backward products are cuBLAS SGEMMs in f32 (weights that are not f32
 *     dequantised to f32 in row chunks), the rest kernels_train.cu's
 *     kernels; index arrays and targets are staged like the forward's.
 *     Cross-entropy and sum_sq return per-row / per-part sums that the host
 *     adds in order, so every training op gives the same bits run after
 *     run. A trainer's parameters are alloc'd buffers that it also uses as
 *     weights: weight_dev recognises them.
 * A CUDA error is not something the engine can repair: it is reported in
 * one line and the program exits with status 1.
 * Built as the module ancora-cuda.so (loaded on demand by cuda_loader.c):
 * its one exported symbol is anc_cuda_module_get (cuda_module.h).
 * Depends on kernels/ only (backend.h, dtype.h, cuda_kernels.h, cuda_plan.h,
 * cuda_module.h). */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" { /* C headers of kernels/ */
#include "backend.h"
#include "cuda_module.h"
#include "cuda_plan.h"
#include "dtype.h"
}
#include "cuda_kernels.h"

/* Bytes of dequantised weights one GEMM chunk may use (half precision). */
#define CU_GEMM_SCRATCH ((size_t)64 << 20)
/* cuBLAS workspace (the size NVIDIA suggests for Hopper). */
#define CU_BLAS_WORKSPACE ((size_t)32 << 20)
/* Initial staging area; it grows as steps need. */
#define CU_STAGE_INITIAL ((size_t)1 << 20)
/* Oldest architecture the fat binary holds code for (compute capability 7.5). */
#define CU_MIN_CC 75

struct cu_priv {
    int device;
    char name[64];
    int n_sm;
    double peak_gbs;                /* memory clock x bus width x 2 (double data rate) */
    cudaStream_t stream;
    cublasHandle_t blas;
    struct cuda_ptr_table ptrs;     /* every device allocation; weights by host address */
    struct cuda_step step;          /* operations recorded, not yet run */
    uint8_t *stage_h;               /* pinned copy of the step's staging area */
    uint8_t *stage_d;               /* its device copy */
    size_t stage_cap;
    struct cuda_graph_state gs;
    cudaGraphExec_t exec;
    bool inflight;                  /* work launched and not waited for */
    void *gemm_w;                   /* [CU_GEMM_SCRATCH] dequantised weight rows */
    void *gemm_x;                   /* activations converted for cuBLAS */
    size_t gemm_x_bytes;
    float *attn_part;               /* split-attention partial results */
    size_t attn_part_bytes;
    int32_t *argmax_d;
    int32_t *argmax_h;              /* pinned */
    float *train_work;              /* training ops' work areas (rmsnorm_bwd, attention's backward) */
    size_t train_work_bytes;
    double *train_sums;             /* cross-entropy's row losses, sum_sq's parts */
    size_t train_sums_bytes;
};

static struct cu_priv *priv_of(struct anc_backend *be) { return (struct cu_priv *)be->priv; }

/* ---- errors -------------------------------------------------------------- */

static void cu_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void cu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ancora: CUDA backend: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (the GPU state cannot be trusted after this; stopping)\n", stderr);
    va_end(ap);
    exit(EXIT_FAILURE);
}

static void cu_check(cudaError_t e, const char *what)
{
    if (e != cudaSuccess) cu_die("%s failed: %s", what, cudaGetErrorString(e));
}

static void blas_check(cublasStatus_t st, const char *what)
{
    if (st != CUBLAS_STATUS_SUCCESS) cu_die("%s failed (cuBLAS status %d)", what, (int)st);
}

static void launch_check(int rc, const char *what)
{
    if (rc != 0) cu_die("the %s kernel refused its arguments (an engine bug) or failed to launch", what);
}

/* ---- device memory ------------------------------------------------------------ */

static void *dev_alloc(struct cu_priv *p, size_t bytes, int kind)
{
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is reported by the caller */
        return NULL;
    }
    if (!cuda_ptr_table_put(&p->ptrs, d, d, bytes, kind)) {
        cudaFree(d);
        return NULL;
    }
    return d;
}

static void dev_free(struct cu_priv *p, void *d)
{
    struct cuda_ptr_entry e;
    if (d && cuda_ptr_table_del(&p->ptrs, d, &e)) cudaFree(d);
}

/* ---- running a step --------------------------------------------------------------- */

static void forget_graph(struct cu_priv *p)
{
    if (p->exec) cudaGraphExecDestroy(p->exec);
    p->exec = NULL;
    cuda_graph_forget(&p->gs);
}

/* Room for `bytes` of staging on both sides. */
static void stage_reserve(struct cu_priv *p, size_t bytes)
{
    if (bytes <= p->stage_cap) return;
    size_t cap = p->stage_cap ? p->stage_cap : CU_STAGE_INITIAL;
    while (cap < bytes) cap *= 2;
    cu_check(cudaStreamSynchronize(p->stream), "waiting for the GPU");
    forget_graph(p); /* the graph's copy node points at the old buffers */
    if (p->stage_h) cudaFreeHost(p->stage_h);
    dev_free(p, p->stage_d);
    p->stage_h = NULL;
    cu_check(cudaHostAlloc((void **)&p->stage_h, cap, cudaHostAllocDefault), "pinned staging memory");
    p->stage_d = (uint8_t *)dev_alloc(p, cap, CUDA_MEM_INTERNAL);
    if (!p->stage_d) cu_die("out of GPU memory for a %zu-byte staging area", cap);
    p->stage_cap = cap;
}

static const int32_t *staged_i32(const struct cu_priv *p, size_t off)
{
    return (const int32_t *)(p->stage_d + off);
}

static const float *staged_f32(const struct cu_priv *p, size_t off)
{
    return (const float *)(p->stage_d + off);
}

/* y [n_tok][rows] = W x with cuBLAS: f32 and bf16 weights through f32
 * GEMM, the rest dequantised to half precision in row chunks. */
static void run_gemm(struct cu_priv *p, const struct cuda_op *op)
{
    const float one = 1.0f, zero = 0.0f;
    uint32_t type = op->u.mm.type;
    int64_t rows = op->u.mm.rows, cols = op->u.mm.cols;
    int n = op->u.mm.n_tok;
    if (type == ANC_DT_F32) {
        blas_check(cublasSgemm(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, n, (int)cols, &one,
                               (const float *)op->u.mm.w, (int)cols, op->u.mm.x, (int)cols, &zero,
                               op->u.mm.y, (int)rows),
                   "cublasSgemm");
        return;
    }
    bool f32 = type == ANC_DT_BF16; /* bf16's range does not fit in half */
    size_t elem = f32 ? sizeof(float) : 2;
    const void *x = op->u.mm.x;
    cudaDataType_t xt = CUDA_R_32F;
    if (!f32) {
        launch_check(anc_cu_f32_to_f16(p->stream, p->gemm_x, op->u.mm.x, (int64_t)n * cols), "f32->f16");
        x = p->gemm_x;
        xt = CUDA_R_16F;
    }
    int64_t chunk = type == ANC_DT_F16 ? rows : cuda_plan_gemm_rows(rows, cols, CU_GEMM_SCRATCH, elem);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        const void *a = (const uint8_t *)op->u.mm.w + (size_t)r0 * (size_t)cols * 2;
        if (type != ANC_DT_F16) {
            launch_check(anc_cu_dequant_rows(p->stream, p->gemm_w, !f32, op->u.mm.w, type, cols, r0, nr),
                         "dequantise");
            a = p->gemm_w;
        }
        blas_check(cublasGemmEx(p->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, n, (int)cols, &one, a,
                                f32 ? CUDA_R_32F : CUDA_R_16F, (int)cols, x, xt, (int)cols, &zero,
                                op->u.mm.y + r0, CUDA_R_32F, (int)rows, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                   "cublasGemmEx");
    }
}

/* Training: dx [n][cols] (+)= dy [n][rows] W. Column-major, W's rows are
 * the columns of W^T [cols x rows], so dx^T = W^T dy^T. f32 weights go
 * straight to cublasSgemm; the others are dequantised to f32 rows in
 * chunks (gradients keep f32's range and precision: no half products),
 * each chunk adding its rows' share. */
static void run_mm_bwd_x(struct cu_priv *p, const struct cuda_op *op)
{
    const float one = 1.0f, zero = 0.0f;
    uint32_t type = op->u.mmb.type;
    int64_t rows = op->u.mmb.rows, cols = op->u.mmb.cols;
    int n = op->u.mmb.n_tok;
    const float *beta0 = op->u.mmb.accumulate ? &one : &zero;
    if (type == ANC_DT_F32) {
        blas_check(cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)cols, n, (int)rows, &one,
                               (const float *)op->u.mmb.w, (int)cols, op->u.mmb.dy, (int)rows, beta0,
                               op->u.mmb.dx, (int)cols),
                   "cublasSgemm (gradient to a product's input)");
        return;
    }
    int64_t chunk = cuda_plan_gemm_rows(rows, cols, CU_GEMM_SCRATCH, sizeof(float));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        launch_check(anc_cu_dequant_rows(p->stream, p->gemm_w, false, op->u.mmb.w, type, cols, r0, nr),
                     "dequantise");
        blas_check(cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)cols, n, (int)nr, &one,
                               (const float *)p->gemm_w, (int)cols, op->u.mmb.dy + r0, (int)rows,
                               r0 == 0 ? beta0 : &one, op->u.mmb.dx, (int)cols),
                   "cublasSgemm (gradient to a product's input)");
    }
}

/* Training: dw [rows][cols] += dy^T x, i.e. column-major dw^T [cols x rows]
 * += x^T [cols x n] · dy [n x rows]. */
static void run_mm_bwd_w(struct cu_priv *p, const struct cuda_op *op)
{
    const float one = 1.0f;
    int64_t rows = op->u.mmb.rows, cols = op->u.mmb.cols;
    blas_check(cublasSgemm(p->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)cols, (int)rows, op->u.mmb.n_tok, &one,
                           op->u.mmb.x, (int)cols, op->u.mmb.dy, (int)rows, &one, op->u.mmb.dx, (int)cols),
               "cublasSgemm (gradient to a weight)");
}

static void run_op(struct cu_priv *p, const struct cuda_op *op)
{
    void *st = p->stream;
    switch (op->kind) {
    case CUDA_OP_MATVEC:
        launch_check(anc_cu_matvec(st, op->u.mm.y, op->u.mm.w, op->u.mm.type, op->u.mm.rows,
                                   op->u.mm.cols, op->u.mm.x, op->u.mm.n_tok), "matvec");
        break;
    case CUDA_OP_GEMM:
        run_gemm(p, op);
        break;
    case CUDA_OP_RMSNORM:
        launch_check(anc_cu_rmsnorm(st, op->u.norm.y, op->u.norm.x, op->u.norm.w, op->u.norm.n,
                                    op->u.norm.n_tok, op->u.norm.eps), "rmsnorm");
        break;
    case CUDA_OP_ROPE:
        launch_check(anc_cu_rope(st, op->u.rope.x, op->u.rope.n_tok, op->u.rope.n_heads,
                                 op->u.rope.head_dim, op->u.rope.n_pairs, op->u.rope.neox,
                                 staged_f32(p, op->u.rope.cos_off), staged_f32(p, op->u.rope.sin_off),
                                 staged_i32(p, op->u.rope.pos_off)), "rope");
        break;
    case CUDA_OP_ATTN: {
        struct anc_cu_attn a = op->u.attn.a;
        a.slot = staged_i32(p, op->u.attn.slot_off);
        a.lo = staged_i32(p, op->u.attn.lo_off);
        a.hi = staged_i32(p, op->u.attn.hi_off);
        launch_check(anc_cu_attention(st, &a), "attention");
        break;
    }
    case CUDA_OP_SWIGLU:
        launch_check(anc_cu_swiglu(st, op->u.ew.out, op->u.ew.a, op->u.ew.b, op->u.ew.n), "swiglu");
        break;
    case CUDA_OP_ADD:
        launch_check(anc_cu_add(st, op->u.ew.out, op->u.ew.a, op->u.ew.n), "add");
        break;
    case CUDA_OP_GEGLU:
        launch_check(anc_cu_geglu(st, op->u.ew.out, op->u.ew.a, op->u.ew.b, op->u.ew.n), "geglu");
        break;
    case CUDA_OP_ADD_ROWS:
        launch_check(anc_cu_add_rows(st, op->u.ews.x, op->u.ews.b, op->u.ews.n, op->u.ews.n_tok),
                     "bias");
        break;
    case CUDA_OP_SCALE:
        launch_check(anc_cu_scale(st, op->u.ews.x, op->u.ews.s, op->u.ews.n), "scale");
        break;
    case CUDA_OP_SOFTCAP:
        launch_check(anc_cu_softcap(st, op->u.ews.x, op->u.ews.s, op->u.ews.n), "soft-cap");
        break;
    case CUDA_OP_EMBED:
        launch_check(anc_cu_embed(st, op->u.embed.out, op->u.embed.table, op->u.embed.type,
                                  op->u.embed.cols, staged_i32(p, op->u.embed.tok_off),
                                  op->u.embed.n_tok), "embedding");
        break;
    case CUDA_OP_STORE_ROWS:
        launch_check(anc_cu_store_rows(st, op->u.rows.base, op->u.rows.type, op->u.rows.act,
                                       staged_i32(p, op->u.rows.rows_off), op->u.rows.n,
                                       op->u.rows.row_len), "store rows");
        break;
    case CUDA_OP_LOAD_ROWS:
        launch_check(anc_cu_load_rows(st, op->u.rows.act, op->u.rows.base, op->u.rows.type,
                                      staged_i32(p, op->u.rows.rows_off), op->u.rows.n,
                                      op->u.rows.row_len), "load rows");
        break;
    case CUDA_OP_COPY:
        cu_check(cudaMemcpyAsync(op->u.copy.dst, op->u.copy.src, op->u.copy.bytes,
                                 cudaMemcpyDeviceToDevice, p->stream), "a device copy");
        break;
    case CUDA_OP_COPY_ROWS: {
        /* cache resizes only: the row list is on the host as well */
        const int32_t *rows = (const int32_t *)(p->step.stage + op->u.crows.rows_off);
        size_t rb = op->u.crows.row_bytes;
        for (int32_t i = 0; i < op->u.crows.n; i++)
            cu_check(cudaMemcpyAsync((uint8_t *)op->u.crows.dst + (size_t)i * rb,
                                     (const uint8_t *)op->u.crows.src + (size_t)rows[i] * rb, rb,
                                     cudaMemcpyDeviceToDevice, p->stream), "a row copy");
        break;
    }
    case CUDA_OP_ZERO:
        cu_check(cudaMemsetAsync(op->u.copy.dst, 0, op->u.copy.bytes, p->stream), "clearing a buffer");
        break;
    case CUDA_OP_MM_BWD_X:
        run_mm_bwd_x(p, op);
        break;
    case CUDA_OP_MM_BWD_W:
        run_mm_bwd_w(p, op);
        break;
    case CUDA_OP_RMSNORM_BWD:
        launch_check(anc_cu_rmsnorm_bwd(st, op->u.normb.dx, op->u.normb.dw, op->u.normb.dy, op->u.normb.x,
                                        op->u.normb.w, op->u.normb.n, op->u.normb.n_tok, op->u.normb.eps,
                                        op->u.normb.work), "rmsnorm backward");
        break;
    case CUDA_OP_ROPE_BWD:
        launch_check(anc_cu_rope_bwd(st, op->u.rope.x, op->u.rope.n_tok, op->u.rope.n_heads,
                                     op->u.rope.head_dim, op->u.rope.n_pairs, op->u.rope.neox,
                                     staged_f32(p, op->u.rope.cos_off), staged_f32(p, op->u.rope.sin_off),
                                     staged_i32(p, op->u.rope.pos_off)), "rope backward");
        break;
    case CUDA_OP_ATTN_TRAIN:
        launch_check(anc_cu_attn_train(st, &op->u.atr), "training attention");
        break;
    case CUDA_OP_ATTN_TRAIN_BWD:
        launch_check(anc_cu_attn_train_bwd(st, &op->u.atr), "training attention backward");
        break;
    case CUDA_OP_SWIGLU_BWD:
        launch_check(anc_cu_swiglu_bwd(st, op->u.swb.dgate, op->u.swb.dup, op->u.swb.dy, op->u.swb.gate,
                                       op->u.swb.up, op->u.swb.n), "swiglu backward");
        break;
    case CUDA_OP_EMBED_BWD:
        launch_check(anc_cu_embed_bwd(st, op->u.embb.dtable, op->u.embb.dx, staged_i32(p, op->u.embb.idx_off),
                                      op->u.embb.n_uniq, op->u.embb.n_tok, op->u.embb.dim),
                     "embedding backward");
        break;
    case CUDA_OP_CROSS_ENTROPY:
        launch_check(anc_cu_cross_entropy(st, op->u.ce.logits, op->u.ce.loss, staged_i32(p, op->u.ce.tgt_off),
                                          op->u.ce.n_tok, op->u.ce.n_vocab, op->u.ce.grad_scale),
                     "cross-entropy");
        break;
    case CUDA_OP_SUM_SQ:
        launch_check(anc_cu_sum_sq(st, op->u.ssq.part, op->u.ssq.x, op->u.ssq.n, op->u.ssq.n_parts),
                     "sum of squares");
        break;
    case CUDA_OP_ADAMW:
        launch_check(anc_cu_adamw(st, op->u.adam.p, op->u.adam.g, op->u.adam.m, op->u.adam.v, op->u.adam.n,
                                  &op->u.adam.h), "AdamW");
        break;
    default:
        cu_die("unknown recorded operation %d", op->kind);
    }
}

/* Enqueue the staging copy and every op of the step. */
static void enqueue_step(struct cu_priv *p)
{
    if (p->step.stage_used)
        cu_check(cudaMemcpyAsync(p->stage_d, p->stage_h, p->step.stage_used, cudaMemcpyHostToDevice,
                                 p->stream), "the staging copy");
    for (int32_t i = 0; i < p->step.n_ops; i++) run_op(p, &p->step.ops[i]);
}

/* Capture the step into a graph and make p->exec run it (a new one, or
 * the existing one updated). false when anything failed: nothing was run. */
static bool capture_step(struct cu_priv *p, bool update)
{
    cudaGraph_t graph = NULL;
    if (cudaStreamBeginCapture(p->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    enqueue_step(p);
    if (cudaStreamEndCapture(p->stream, &graph) != cudaSuccess || !graph) {
        cudaGetLastError();
        return false;
    }
    bool ok = false;
    if (update && p->exec) {
        cudaGraphExecUpdateResultInfo info;
        ok = cudaGraphExecUpdate(p->exec, graph, &info) == cudaSuccess;
        if (!ok) cudaGetLastError(); /* e.g. a kernel changed: instantiate afresh */
    }
    if (!ok) {
        if (p->exec) cudaGraphExecDestroy(p->exec);
        p->exec = NULL;
        ok = cudaGraphInstantiate(&p->exec, graph, 0) == cudaSuccess;
        if (!ok) {
            cudaGetLastError();
            p->exec = NULL;
        }
    }
    cudaGraphDestroy(graph);
    return ok;
}

/* Run the recorded step (and wait for it when `wait`). */
static void flush(struct cu_priv *p, bool wait)
{
    if (p->step.n_ops > 0) {
        if (p->inflight) cu_check(cudaStreamSynchronize(p->stream), "waiting for the GPU");
        stage_reserve(p, p->step.stage_used);
        if (p->step.stage_used) memcpy(p->stage_h, p->step.stage, p->step.stage_used);
        enum cuda_graph_action act = cuda_graph_decide(&p->gs, &p->step);
        bool ok = true;
        if (act == CUDA_RUN_CAPTURE || act == CUDA_RUN_UPDATE)
            ok = capture_step(p, act == CUDA_RUN_UPDATE);
        if (act == CUDA_RUN_DIRECT || !ok) {
            enqueue_step(p);
        } else {
            cu_check(cudaGraphLaunch(p->exec, p->stream), "launching a CUDA graph");
        }
        cuda_graph_note(&p->gs, &p->step, act, ok);
        if (!p->gs.have_exec && p->exec) {
            cudaGraphExecDestroy(p->exec);
            p->exec = NULL;
        }
        cuda_step_clear(&p->step);
        p->inflight = true;
    }
    if (wait && p->inflight) {
        cu_check(cudaStreamSynchronize(p->stream), "a step on the GPU");
        p->inflight = false;
    }
}

/* Grow a scratch buffer that recorded ops may already point at: run them
 * first, then replace it. */
static void scratch_grow(struct cu_priv *p, void **buf, size_t *cap, size_t need, const char *what)
{
    if (need <= *cap) return;
    flush(p, true);
    forget_graph(p);
    dev_free(p, *buf);
    size_t bytes = need + need / 4;
    *buf = dev_alloc(p, bytes, CUDA_MEM_INTERNAL);
    if (!*buf) cu_die("out of GPU memory for %zu bytes of %s", bytes, what);
    *cap = bytes;
}

static void push(struct cu_priv *p, const struct cuda_op *op)
{
    if (!cuda_step_push(&p->step, op)) cu_die("out of host memory recording an operation");
}

static size_t stage(struct cu_priv *p, const void *data, size_t bytes)
{
    size_t off = cuda_step_stage(&p->step, data, bytes);
    if (off == (size_t)-1) cu_die("out of host memory staging %zu bytes", bytes);
    return off;
}

/* ---- the op table --------------------------------------------------------------- */

static bool cu_prepare(struct anc_backend *be, struct anc_weight *w, char *err, size_t errlen)
{
    struct cu_priv *p = priv_of(be);
    const struct anc_dtype_info *d = anc_dtype_get(w->type);
    if (!anc_cu_supports(w->type)) {
        snprintf(err, errlen, "the CUDA kernels cannot compute with %s weights", d ? d->name : "unknown");
        return false;
    }
    size_t bytes = anc_dtype_row_bytes(w->type, (uint64_t)w->cols) * (size_t)w->rows;
    const struct cuda_ptr_entry *e = cuda_ptr_table_get(&p->ptrs, w->data);
    if (e) { /* the same tensor again (tied embeddings) */
        if (e->bytes != bytes) {
            snprintf(err, errlen, "two weights of different sizes share host memory (an engine bug)");
            return false;
        }
        w->dev = e->value;
        return true;
    }
    void *dptr = NULL;
    if (cudaMalloc(&dptr, bytes) != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, total = 0;
        cudaMemGetInfo(&fr, &total);
        snprintf(err, errlen, "not enough GPU memory for the weights (%.1f MiB already uploaded, "
                 "%.1f MiB free of %.1f MiB)", p->ptrs.bytes[CUDA_MEM_WEIGHTS] / 1048576.0,
                 fr / 1048576.0, total / 1048576.0);
        return false;
    }
    /* On the backend's stream, waited for: a plain cudaMemcpy from pageable
     * memory runs on the legacy stream, which a non-blocking stream does not
     * wait for, and may return before its last DMA has landed. */
    if (cudaMemcpyAsync(dptr, w->data, bytes, cudaMemcpyHostToDevice, p->stream) != cudaSuccess ||
        cudaStreamSynchronize(p->stream) != cudaSuccess ||
        !cuda_ptr_table_put(&p->ptrs, w->data, dptr, bytes, CUDA_MEM_WEIGHTS)) {
        cudaGetLastError();
        cudaFree(dptr);
        snprintf(err, errlen, "uploading a weight to the GPU failed");
        return false;
    }
    w->dev = dptr;
    return true;
}

static void *cu_alloc(struct anc_backend *be, size_t bytes)
{
    struct cu_priv *p = priv_of(be);
    void *d = dev_alloc(p, bytes, CUDA_MEM_BUFFERS);
    if (d && cudaMemsetAsync(d, 0, bytes, p->stream) != cudaSuccess) {
        cudaGetLastError();
        dev_free(p, d);
        return NULL;
    }
    if (d) p->inflight = true; /* the clearing runs on the stream: cu_free waits for it */
    return d;
}

static void cu_free(struct anc_backend *be, void *ptr)
{
    struct cu_priv *p = priv_of(be);
    if (!ptr) return;
    flush(p, true); /* recorded work may still use it */
    forget_graph(p);
    dev_free(p, ptr);
}

static void cu_copy(struct anc_backend *be, void *dst, const void *src, size_t bytes)
{
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_COPY;
    op.u.copy.dst = dst;
    op.u.copy.src = src;
    op.u.copy.bytes = bytes;
    push(priv_of(be), &op);
}

static void cu_download(struct anc_backend *be, void *host, const void *src, size_t bytes)
{
    struct cu_priv *p = priv_of(be);
    flush(p, false);
    cu_check(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, p->stream), "a download");
    p->inflight = true;
    flush(p, true);
}

/* The device copy of a weight: the one prepare made, or the weight's data
 * itself when that is a buffer from alloc (a trainer's parameters are
 * backend buffers used as weights: LoRA matrices, trained norms and
 * embeddings). */
static const void *weight_dev(const struct cu_priv *p, const struct anc_weight *w)
{
    if (w->dev) return w->dev;
    const struct cuda_ptr_entry *e = cuda_ptr_table_get(&p->ptrs, w->data);
    if (e && e->kind == CUDA_MEM_BUFFERS) return e->value;
    cu_die("a weight was used before it was prepared (an engine bug)");
}

static void cu_matmul(struct anc_backend *be, float *y, const struct anc_weight *w, const float *x,
                      int32_t n_tok)
{
    struct cu_priv *p = priv_of(be);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    bool gemm = cuda_plan_use_gemm(n_tok);
    op.kind = gemm ? CUDA_OP_GEMM : CUDA_OP_MATVEC;
    op.u.mm.y = y;
    op.u.mm.w = weight_dev(p, w);
    op.u.mm.type = w->type;
    op.u.mm.rows = w->rows;
    op.u.mm.cols = w->cols;
    op.u.mm.x = x;
    op.u.mm.n_tok = n_tok;
    if (gemm) {
        size_t xb = (size_t)n_tok * (size_t)w->cols * 2;
        scratch_grow(p, &p->gemm_x, &p->gemm_x_bytes, xb, "GEMM activations");
    }
    push(p, &op);
}

static void cu_rmsnorm(struct anc_backend *be, float *y, const float *x, const struct anc_weight *w,
                       int32_t n, int32_t n_tok, float eps)
{
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_RMSNORM;
    op.u.norm.y = y;
    op.u.norm.x = x;
    op.u.norm.w = (const float *)weight_dev(priv_of(be), w);
    op.u.norm.n = n;
    op.u.norm.n_tok = n_tok;
    op.u.norm.eps = eps;
    push(priv_of(be), &op);
}

/* rope and its backward (kind): the table staged once per step. */
static void rope_op(struct anc_backend *be, int kind, float *x, int32_t n_tok, int32_t n_heads,
                    int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos)
{
    struct cu_priv *p = priv_of(be);
    struct cuda_step *s = &p->step;
    if (n_tok <= 0) return;
    size_t tab_bytes = (size_t)tab->n_pos * (size_t)tab->n_pairs * sizeof(float);
    if (tab->version == 0 || tab->version != s->rope_version) { /* once per table per step */
        s->rope_cos_off = stage(p, tab->cos, tab_bytes);
        s->rope_sin_off = stage(p, tab->sin, tab_bytes);
        s->rope_version = tab->version;
    }
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.u.rope.x = x;
    op.u.rope.n_tok = n_tok;
    op.u.rope.n_heads = n_heads;
    op.u.rope.head_dim = head_dim;
    op.u.rope.n_pairs = tab->n_pairs;
    op.u.rope.neox = tab->neox;
    op.u.rope.cos_off = s->rope_cos_off;
    op.u.rope.sin_off = s->rope_sin_off;
    op.u.rope.pos_off = stage(p, pos, (size_t)n_tok * sizeof *pos);
    push(p, &op);
}

static void cu_rope(struct anc_backend *be, float *x, int32_t n_tok, int32_t n_heads,
                    int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos)
{
    rope_op(be, CUDA_OP_ROPE, x, n_tok, n_heads, head_dim, tab, pos);
}

static void cu_attention(struct anc_backend *be, const struct anc_attn_args *a)
{
    struct cu_priv *p = priv_of(be);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_ATTN;
    struct anc_cu_attn *c = &op.u.attn.a;
    c->out = a->out;
    c->q = a->q;
    c->q_sink = a->q_sink;
    c->k = a->k;
    c->v = a->v;
    c->kv_type = a->kv_type;
    c->n_q = a->n_q;
    c->n_kv = a->n_kv;
    c->n_head = a->n_head;
    c->n_kv_head = a->n_kv_head;
    c->head_dim = a->head_dim;
    c->n_sink = a->n_sink;
    c->scale = a->scale;
    c->softcap = a->softcap;
    c->sink_mass = a->sink_mass;
    c->n_split = cuda_plan_attn_split(a->n_q, a->n_kv_head, a->n_kv, p->n_sm);
    if (c->n_split > 1) {
        size_t need = anc_cu_attention_work_bytes(a->n_q, a->n_head, a->head_dim, c->n_split);
        scratch_grow(p, (void **)&p->attn_part, &p->attn_part_bytes, need, "attention partials");
        c->part = p->attn_part;
    }
    if (a->slot) {
        op.u.attn.slot_off = stage(p, a->slot, (size_t)a->n_kv * sizeof(int32_t));
    } else { /* identity map, staged in one piece (each stage() call starts
              * at an aligned offset, so element-wise calls would leave gaps) */
        int32_t *ids = (int32_t *)malloc((size_t)(a->n_kv > 0 ? a->n_kv : 1) * sizeof *ids);
        if (!ids) cu_die("out of host memory staging an identity slot map");
        for (int32_t j = 0; j < a->n_kv; j++) ids[j] = j;
        op.u.attn.slot_off = stage(p, ids, (size_t)(a->n_kv > 0 ? a->n_kv : 0) * sizeof *ids);
        free(ids);
    }
    op.u.attn.lo_off = stage(p, a->lo, (size_t)a->n_q * sizeof(int32_t));
    op.u.attn.hi_off = stage(p, a->hi, (size_t)a->n_q * sizeof(int32_t));
    push(p, &op);
}

static void elementwise(struct anc_backend *be, int kind, float *out, const float *a,
                        const float *b, int64_t n)
{
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.u.ew.out = out;
    op.u.ew.a = a;
    op.u.ew.b = b;
    op.u.ew.n = n;
    push(priv_of(be), &op);
}

static void cu_swiglu(struct anc_backend *be, float *out, const float *gate, const float *up,
                      int64_t n)
{
    elementwise(be, CUDA_OP_SWIGLU, out, gate, up, n);
}

static void cu_add(struct anc_backend *be, float *y, const float *x, int64_t n)
{
    elementwise(be, CUDA_OP_ADD, y, x, NULL, n);
}

static void cu_geglu(struct anc_backend *be, float *out, const float *gate, const float *up,
                     int64_t n)
{
    elementwise(be, CUDA_OP_GEGLU, out, gate, up, n);
}

/* add_rows, scale and softcap: one array updated in place. */
static void inplace(struct anc_backend *be, int kind, float *x, const float *b, int64_t n,
                    int32_t n_tok, float s)
{
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.u.ews.x = x;
    op.u.ews.b = b;
    op.u.ews.n = n;
    op.u.ews.n_tok = n_tok;
    op.u.ews.s = s;
    push(priv_of(be), &op);
}

static void cu_add_rows(struct anc_backend *be, float *y, const struct anc_weight *b, int64_t n,
                        int32_t n_tok)
{
    if (b->type != ANC_DT_F32 || b->cols < n)
        cu_die("a bias of %lld elements of type %u for rows of %lld (an engine bug)",
               (long long)b->cols, (unsigned)b->type, (long long)n);
    inplace(be, CUDA_OP_ADD_ROWS, y, (const float *)weight_dev(priv_of(be), b), n, n_tok, 0.0f);
}

static void cu_scale(struct anc_backend *be, float *x, float s, int64_t n)
{
    inplace(be, CUDA_OP_SCALE, x, NULL, n, 0, s);
}

static void cu_softcap(struct anc_backend *be, float *x, float cap, int64_t n)
{
    inplace(be, CUDA_OP_SOFTCAP, x, NULL, n, 0, cap);
}

static void cu_embed(struct anc_backend *be, float *out, const struct anc_weight *table,
                     const int32_t *tokens, int32_t n_tok)
{
    struct cu_priv *p = priv_of(be);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_EMBED;
    op.u.embed.out = out;
    op.u.embed.table = weight_dev(p, table);
    op.u.embed.type = table->type;
    op.u.embed.cols = table->cols;
    op.u.embed.tok_off = stage(p, tokens, (size_t)n_tok * sizeof *tokens);
    op.u.embed.n_tok = n_tok;
    push(p, &op);
}

static void rows_op(struct anc_backend *be, int kind, void *base, uint32_t type, float *act,
                    const int32_t *rows, int32_t n, int64_t row_len)
{
    struct cu_priv *p = priv_of(be);
    if (n <= 0) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.u.rows.base = base;
    op.u.rows.type = type;
    op.u.rows.act = act;
    op.u.rows.rows_off = stage(p, rows, (size_t)n * sizeof *rows);
    op.u.rows.n = n;
    op.u.rows.row_len = row_len;
    push(p, &op);
}

static void cu_store_rows(struct anc_backend *be, void *base, uint32_t type, const float *src,
                          const int32_t *rows, int32_t n, int64_t row_len)
{
    rows_op(be, CUDA_OP_STORE_ROWS, base, type, (float *)src, rows, n, row_len);
}

static void cu_load_rows(struct anc_backend *be, float *dst, const void *base, uint32_t type,
                         const int32_t *rows, int32_t n, int64_t row_len)
{
    rows_op(be, CUDA_OP_LOAD_ROWS, (void *)base, type, dst, rows, n, row_len);
}

static void cu_copy_rows(struct anc_backend *be, void *dst, const void *src, size_t row_bytes,
                         const int32_t *src_rows, int32_t n)
{
    struct cu_priv *p = priv_of(be);
    if (n <= 0) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_COPY_ROWS;
    op.u.crows.dst = dst;
    op.u.crows.src = src;
    op.u.crows.row_bytes = row_bytes;
    op.u.crows.rows_off = stage(p, src_rows, (size_t)n * sizeof *src_rows);
    op.u.crows.n = n;
    push(p, &op);
}

static int32_t cu_argmax(struct anc_backend *be, const float *x, int32_t n)
{
    struct cu_priv *p = priv_of(be);
    flush(p, false);
    launch_check(anc_cu_argmax(p->stream, p->argmax_d, x, n), "argmax");
    cu_check(cudaMemcpyAsync(p->argmax_h, p->argmax_d, sizeof(int32_t), cudaMemcpyDeviceToHost,
                             p->stream), "fetching the argmax");
    p->inflight = true;
    flush(p, true);
    return *p->argmax_h;
}

static void cu_mem(struct anc_backend *be, struct anc_backend_mem *out)
{
    struct cu_priv *p = priv_of(be);
    memset(out, 0, sizeof *out);
    out->weights = p->ptrs.bytes[CUDA_MEM_WEIGHTS];
    out->buffers = p->ptrs.bytes[CUDA_MEM_BUFFERS];
    out->internal = p->ptrs.bytes[CUDA_MEM_INTERNAL];
    size_t fr = 0, total = 0;
    if (cudaMemGetInfo(&fr, &total) == cudaSuccess) {
        out->device_free = fr;
        out->device_total = total;
    } else {
        cudaGetLastError();
    }
    snprintf(out->device, sizeof out->device, "%s", p->name);
    out->peak_bandwidth_gbs = p->peak_gbs;
}

/* ---- training (backend.h "Training"; kernels in kernels_train.cu) ------------------ */

/* backend memory <- host, in order with the recorded work; the host data
 * may be freed once this returns (a copy from pageable memory may still be
 * in flight when cudaMemcpyAsync returns: waited for). */
static void cu_upload(struct anc_backend *be, void *dst, const void *host, size_t bytes)
{
    struct cu_priv *p = priv_of(be);
    if (!bytes) return;
    flush(p, false);
    cu_check(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, p->stream), "an upload");
    p->inflight = true;
    flush(p, true);
}

static void cu_zero(struct anc_backend *be, void *ptr, size_t bytes)
{
    if (!bytes) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_ZERO;
    op.u.copy.dst = ptr;
    op.u.copy.bytes = bytes;
    push(priv_of(be), &op);
}

/* The shared float work area of the training kernels, at least n floats
 * (each op uses it only while it runs, so one area serves them all). */
static float *train_work(struct cu_priv *p, size_t n)
{
    scratch_grow(p, (void **)&p->train_work, &p->train_work_bytes, (n ? n : 1) * sizeof(float),
                 "training work areas");
    return p->train_work;
}

/* Per-row and per-part sums the host reads back, at least n doubles. */
static double *train_sums(struct cu_priv *p, size_t n)
{
    scratch_grow(p, (void **)&p->train_sums, &p->train_sums_bytes, (n ? n : 1) * sizeof(double),
                 "training sums");
    return p->train_sums;
}

/* cuBLAS takes int sizes. */
static void gemm_dims_check(int64_t rows, int64_t cols, int32_t n_tok, const char *what)
{
    if (rows < 1 || cols < 1 || rows > INT32_MAX || cols > INT32_MAX || n_tok < 0)
        cu_die("%s of a %lld x %lld weight over %d tokens: sizes out of range (an engine bug)", what,
               (long long)rows, (long long)cols, (int)n_tok);
}

static void cu_matmul_bwd_x(struct anc_backend *be, float *dx, const struct anc_weight *w,
                            const float *dy, int32_t n_tok, bool accumulate)
{
    struct cu_priv *p = priv_of(be);
    if (n_tok <= 0) return;
    gemm_dims_check(w->rows, w->cols, n_tok, "the gradient to a product's input");
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_MM_BWD_X;
    op.u.mmb.dx = dx;
    op.u.mmb.w = weight_dev(p, w);
    op.u.mmb.type = w->type;
    op.u.mmb.rows = w->rows;
    op.u.mmb.cols = w->cols;
    op.u.mmb.dy = dy;
    op.u.mmb.n_tok = n_tok;
    op.u.mmb.accumulate = accumulate;
    push(p, &op);
}

static void cu_matmul_bwd_w(struct anc_backend *be, float *dw, const float *dy, const float *x,
                            int64_t rows, int64_t cols, int32_t n_tok)
{
    if (n_tok <= 0) return;
    gemm_dims_check(rows, cols, n_tok, "the gradient to a weight");
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_MM_BWD_W;
    op.u.mmb.dx = dw;
    op.u.mmb.type = ANC_DT_F32;
    op.u.mmb.rows = rows;
    op.u.mmb.cols = cols;
    op.u.mmb.dy = dy;
    op.u.mmb.x = x;
    op.u.mmb.n_tok = n_tok;
    push(priv_of(be), &op);
}

static void cu_rmsnorm_bwd(struct anc_backend *be, float *dx, float *dw, const float *dy,
                           const float *x, const struct anc_weight *w, int32_t n, int32_t n_tok,
                           float eps)
{
    struct cu_priv *p = priv_of(be);
    if (n_tok <= 0) return;
    if (w->type != ANC_DT_F32 || w->cols < n)
        cu_die("a norm weight of %lld elements of type %u for rows of %d (an engine bug)",
               (long long)w->cols, (unsigned)w->type, (int)n);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_RMSNORM_BWD;
    op.u.normb.work = train_work(p, (size_t)n_tok); /* before the record: it may run the step */
    op.u.normb.dx = dx;
    op.u.normb.dw = dw;
    op.u.normb.dy = dy;
    op.u.normb.x = x;
    op.u.normb.w = (const float *)weight_dev(p, w);
    op.u.normb.n = n;
    op.u.normb.n_tok = n_tok;
    op.u.normb.eps = eps;
    push(p, &op);
}

static void cu_rope_bwd(struct anc_backend *be, float *dy, int32_t n_tok, int32_t n_heads,
                        int32_t head_dim, const struct anc_rope_table *tab, const int32_t *pos)
{
    rope_op(be, CUDA_OP_ROPE_BWD, dy, n_tok, n_heads, head_dim, tab, pos);
}

static void attn_train_op(struct anc_backend *be, const struct anc_attn_train_args *a, bool backward)
{
    struct cu_priv *p = priv_of(be);
    if (a->n <= 0) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = backward ? CUDA_OP_ATTN_TRAIN_BWD : CUDA_OP_ATTN_TRAIN;
    struct anc_cu_attn_train *c = &op.u.atr;
    if (backward) c->work = train_work(p, (size_t)a->n * (size_t)a->n_head);
    c->out = a->out;
    c->lse = a->lse;
    c->q = a->q;
    c->k = a->k;
    c->v = a->v;
    if (backward) {
        c->dout = a->dout;
        c->dq = a->dq;
        c->dk = a->dk;
        c->dv = a->dv;
    }
    c->n = a->n;
    c->n_head = a->n_head;
    c->n_kv_head = a->n_kv_head;
    c->head_dim = a->head_dim;
    c->group = a->group;
    c->scale = a->scale;
    push(p, &op);
}

static void cu_attn_train(struct anc_backend *be, const struct anc_attn_train_args *a)
{
    attn_train_op(be, a, false);
}

static void cu_attn_train_bwd(struct anc_backend *be, const struct anc_attn_train_args *a)
{
    attn_train_op(be, a, true);
}

static void cu_swiglu_bwd(struct anc_backend *be, float *dgate, float *dup, const float *dy,
                          const float *gate, const float *up, int64_t n)
{
    if (n <= 0) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_SWIGLU_BWD;
    op.u.swb.dgate = dgate;
    op.u.swb.dup = dup;
    op.u.swb.dy = dy;
    op.u.swb.gate = gate;
    op.u.swb.up = up;
    op.u.swb.n = n;
    push(priv_of(be), &op);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The token list grouped on the host (anc_cu_embed_bwd's idx: distinct
 * tokens, where each one's positions start, the positions in order), so
 * repeated rows are summed by one thread each in token order: deterministic,
 * and the CPU backend's bits. */
static void cu_embed_bwd(struct anc_backend *be, float *dtable, const float *dx,
                         const int32_t *tokens, int32_t n_tok, int64_t dim)
{
    struct cu_priv *p = priv_of(be);
    if (n_tok <= 0 || dim <= 0) return;
    uint64_t *key = (uint64_t *)malloc((size_t)n_tok * sizeof *key);
    int32_t *idx = (int32_t *)malloc(((size_t)n_tok * 3 + 1) * sizeof *idx);
    if (!key || !idx) cu_die("out of host memory for the embedding's backward");
    for (int32_t t = 0; t < n_tok; t++) {
        if (tokens[t] < 0) cu_die("token %d at %d in the embedding's backward (an engine bug)", tokens[t], t);
        key[t] = (uint64_t)(uint32_t)tokens[t] << 32 | (uint32_t)t;
    }
    qsort(key, (size_t)n_tok, sizeof *key, cmp_u64);
    /* pass 1: distinct tokens (at idx), where each starts; pass 2 lays out
       idx = uniq | start | pos */
    int32_t *pos = idx + 2 * (size_t)n_tok + 1, n_uniq = 0;
    int32_t *start_tmp = idx + n_tok; /* n_uniq + 1 <= n_tok + 1 entries */
    for (int32_t j = 0; j < n_tok; j++) {
        int32_t tok = (int32_t)(key[j] >> 32);
        if (j == 0 || tok != idx[n_uniq - 1]) {
            idx[n_uniq] = tok;
            start_tmp[n_uniq] = j;
            n_uniq++;
        }
        pos[j] = (int32_t)(key[j] & 0xffffffffu);
    }
    start_tmp[n_uniq] = n_tok;
    /* compact: start right after uniq, pos right after start */
    memmove(idx + n_uniq, start_tmp, ((size_t)n_uniq + 1) * sizeof *idx);
    memmove(idx + 2 * (size_t)n_uniq + 1, pos, (size_t)n_tok * sizeof *idx);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_EMBED_BWD;
    op.u.embb.dtable = dtable;
    op.u.embb.dx = dx;
    op.u.embb.idx_off = stage(p, idx, ((size_t)n_uniq * 2 + 1 + (size_t)n_tok) * sizeof *idx);
    op.u.embb.n_uniq = n_uniq;
    op.u.embb.n_tok = n_tok;
    op.u.embb.dim = dim;
    free(key);
    free(idx);
    push(p, &op);
}

/* Per-row losses on the device, added here in row order (deterministic). */
static double cu_cross_entropy(struct anc_backend *be, float *logits, const int32_t *targets,
                               int32_t n_tok, int32_t n_vocab, float grad_scale)
{
    struct cu_priv *p = priv_of(be);
    if (n_tok <= 0) return 0.0;
    for (int32_t t = 0; t < n_tok; t++)
        if (targets[t] >= n_vocab)
            cu_die("target %d at %d outside a vocabulary of %d (an engine bug)", targets[t], t, n_vocab);
    double *loss = train_sums(p, (size_t)n_tok);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_CROSS_ENTROPY;
    op.u.ce.logits = logits;
    op.u.ce.loss = loss;
    op.u.ce.tgt_off = stage(p, targets, (size_t)n_tok * sizeof *targets);
    op.u.ce.n_tok = n_tok;
    op.u.ce.n_vocab = n_vocab;
    op.u.ce.grad_scale = grad_scale;
    push(p, &op);
    double *h = (double *)malloc((size_t)n_tok * sizeof *h);
    if (!h) cu_die("out of host memory for %d losses", (int)n_tok);
    cu_download(be, h, loss, (size_t)n_tok * sizeof *h);
    double s = 0.0;
    for (int32_t t = 0; t < n_tok; t++) s += h[t];
    free(h);
    return s;
}

/* Parts summed on the device (cuda_plan_sum_parts: fixed by n), added here
 * in order: the same bits every run. */
static double cu_sum_sq(struct anc_backend *be, const float *x, int64_t n)
{
    struct cu_priv *p = priv_of(be);
    if (n <= 0) return 0.0;
    int32_t parts = cuda_plan_sum_parts(n);
    double *part = train_sums(p, (size_t)parts);
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_SUM_SQ;
    op.u.ssq.x = x;
    op.u.ssq.part = part;
    op.u.ssq.n = n;
    op.u.ssq.n_parts = parts;
    push(p, &op);
    double h[CUDA_SUM_MAX_PARTS];
    cu_download(be, h, part, (size_t)parts * sizeof *h);
    double s = 0.0;
    for (int32_t b = 0; b < parts; b++) s += h[b];
    return s;
}

static void cu_adamw(struct anc_backend *be, float *pw, const float *g, float *m, float *v, int64_t n,
                     const struct anc_adamw *h)
{
    if (n <= 0) return;
    struct cuda_op op;
    memset(&op, 0, sizeof op);
    op.kind = CUDA_OP_ADAMW;
    op.u.adam.p = pw;
    op.u.adam.g = g;
    op.u.adam.m = m;
    op.u.adam.v = v;
    op.u.adam.n = n;
    op.u.adam.h.lr = h->lr;
    op.u.adam.h.beta1 = h->beta1;
    op.u.adam.h.beta2 = h->beta2;
    op.u.adam.h.eps = h->eps;
    op.u.adam.h.weight_decay = h->weight_decay;
    op.u.adam.h.t = h->t;
    push(priv_of(be), &op);
}

static void cu_destroy(struct anc_backend *be)
{
    struct cu_priv *p = priv_of(be);
    if (p->stream) cudaStreamSynchronize(p->stream);
    if (p->exec) cudaGraphExecDestroy(p->exec);
    if (p->blas) cublasDestroy(p->blas); /* before its workspace (in the table) is freed */
    for (size_t i = 0; i < p->ptrs.cap; i++)
        if (p->ptrs.e[i].key) cudaFree(p->ptrs.e[i].value);
    cuda_ptr_table_release(&p->ptrs);
    if (p->stage_h) cudaFreeHost(p->stage_h);
    if (p->argmax_h) cudaFreeHost(p->argmax_h);
    if (p->stream) cudaStreamDestroy(p->stream);
    cuda_step_release(&p->step);
    cuda_graph_state_release(&p->gs);
    free(p);
    free(be);
}

static const struct anc_backend_ops cuda_ops = {
    /* .name = */ "cuda",
    /* .destroy = */ cu_destroy,
    /* .prepare = */ cu_prepare,
    /* .alloc = */ cu_alloc,
    /* .free = */ cu_free,
    /* .copy = */ cu_copy,
    /* .download = */ cu_download,
    /* .matmul = */ cu_matmul,
    /* .rmsnorm = */ cu_rmsnorm,
    /* .rope = */ cu_rope,
    /* .attention = */ cu_attention,
    /* .swiglu = */ cu_swiglu,
    /* .add = */ cu_add,
    /* .geglu = */ cu_geglu,
    /* .add_rows = */ cu_add_rows,
    /* .scale = */ cu_scale,
    /* .softcap = */ cu_softcap,
    /* .embed = */ cu_embed,
    /* .store_rows = */ cu_store_rows,
    /* .load_rows = */ cu_load_rows,
    /* .copy_rows = */ cu_copy_rows,
    /* .argmax = */ cu_argmax,
    /* .mem = */ cu_mem,
    /* training ops (backend.h "Training") */
    /* .upload = */ cu_upload,
    /* .zero = */ cu_zero,
    /* .matmul_bwd_x = */ cu_matmul_bwd_x,
    /* .matmul_bwd_w = */ cu_matmul_bwd_w,
    /* .rmsnorm_bwd = */ cu_rmsnorm_bwd,
    /* .rope_bwd = */ cu_rope_bwd,
    /* .attn_train = */ cu_attn_train,
    /* .attn_train_bwd = */ cu_attn_train_bwd,
    /* .swiglu_bwd = */ cu_swiglu_bwd,
    /* .embed_bwd = */ cu_embed_bwd,
    /* .cross_entropy = */ cu_cross_entropy,
    /* .sum_sq = */ cu_sum_sq,
    /* .adamw = */ cu_adamw,
};

/* ---- creation --------------------------------------------------------------------- */

/* Usable devices; 0 + why: no driver (or one older than the runtime), or
 * no device. Never fails. */
static int cu_device_count(char *why, size_t whylen)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) return n;
    cudaGetLastError();
    if (e == cudaSuccess || e == cudaErrorNoDevice)
        snprintf(why, whylen, "no NVIDIA GPU is present (the driver sees no device)");
    else if (e == cudaErrorInsufficientDriver)
        snprintf(why, whylen, "no NVIDIA driver, or one too old for this CUDA runtime (%s)",
                 cudaGetErrorString(e));
    else
        snprintf(why, whylen, "the CUDA runtime cannot start (%s)", cudaGetErrorString(e));
    return 0;
}

/* Set up the device, stream, cuBLAS and the small fixed buffers. */
static bool cu_init(struct cu_priv *p, char *err, size_t errlen)
{
    cudaDeviceProp prop;
    if (cudaSetDevice(p->device) != cudaSuccess ||
        cudaGetDeviceProperties(&prop, p->device) != cudaSuccess) {
        snprintf(err, errlen, "cannot open GPU %d: %s", p->device, cudaGetErrorString(cudaGetLastError()));
        return false;
    }
    snprintf(p->name, sizeof p->name, "%.63s", prop.name);
    p->n_sm = prop.multiProcessorCount;
    int clock_khz = 0, bus_bits = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, p->device) == cudaSuccess &&
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, p->device) == cudaSuccess)
        p->peak_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    cudaGetLastError();
    if (prop.major * 10 + prop.minor < CU_MIN_CC) {
        snprintf(err, errlen, "%s has compute capability %d.%d; this build needs %d.%d or newer",
                 prop.name, prop.major, prop.minor, CU_MIN_CC / 10, CU_MIN_CC % 10);
        return false;
    }
    if (cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking) != cudaSuccess) {
        snprintf(err, errlen, "cannot create a CUDA stream on %s", prop.name);
        return false;
    }
    if (cublasCreate(&p->blas) != CUBLAS_STATUS_SUCCESS) {
        p->blas = NULL;
        snprintf(err, errlen, "cannot start cuBLAS on %s", prop.name);
        return false;
    }
    void *ws = dev_alloc(p, CU_BLAS_WORKSPACE, CUDA_MEM_INTERNAL);
    p->gemm_w = dev_alloc(p, CU_GEMM_SCRATCH, CUDA_MEM_INTERNAL);
    p->argmax_d = (int32_t *)dev_alloc(p, sizeof(int32_t), CUDA_MEM_INTERNAL);
    if (!ws || !p->gemm_w || !p->argmax_d ||
        cudaHostAlloc((void **)&p->argmax_h, sizeof(int32_t), cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        snprintf(err, errlen, "not enough GPU memory for the backend's work areas on %s", prop.name);
        return false;
    }
    if (cublasSetStream(p->blas, p->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetWorkspace(p->blas, ws, CU_BLAS_WORKSPACE) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cannot configure cuBLAS on %s", prop.name);
        return false;
    }
    return true;
}

static struct anc_backend *cu_create(char *err, size_t errlen)
{
    if (cu_device_count(err, errlen) < 1) return NULL;
    struct anc_backend *be = (struct anc_backend *)calloc(1, sizeof *be);
    struct cu_priv *p = (struct cu_priv *)calloc(1, sizeof *p);
    if (!be || !p) {
        free(be);
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cuda_ptr_table_init(&p->ptrs);
    cuda_step_init(&p->step);
    const char *g = getenv("ANCORA_CUDA_GRAPHS");
    cuda_graph_state_init(&p->gs, !(g && strcmp(g, "0") == 0));
    be->ops = &cuda_ops;
    be->n_threads = 1;
    be->priv = p;
    p->device = 0;
    if (!cu_init(p, err, errlen)) {
        cu_destroy(be);
        return NULL;
    }
    return be;
}

/* ---- the module's one entry point (cuda_module.h) ------------------------------------ */

static const struct anc_cuda_module cuda_module = {
    /* .abi = */ ANC_CUDA_MODULE_ABI,
    /* .ops_size = */ sizeof(struct anc_backend_ops),
    /* .device_count = */ cu_device_count,
    /* .create = */ cu_create,
};

extern "C" __attribute__((visibility("default"))) const struct anc_cuda_module *anc_cuda_module_get(void)
{
    return &cuda_module;
}
