/* mock_cuda.c — a CPU stand-in for the CUDA runtime, cuBLAS and Ancora's
 * kernels (cuda_kernels.h), so tests/test_cuda_mock can run the real host
 * code of kernels/cuda/cuda_backend.cu end to end on a machine without a GPU.
 *
 * What it enforces, as a GPU would:
 *   - device memory is an arena the host cannot read or write (PROT_NONE)
 *     except while mock device work runs, and it starts as NaN bytes, not
 *     zeros; freed blocks are never reused and stay poisoned;
 *   - every kernel's pointer arguments must lie inside live allocations;
 *   - while a stream captures, work is recorded (not run), and calls a real
 *     capture rejects (allocation, synchronous copies, synchronising,
 *     copies from pageable host memory) fail the capture;
 *   - a graph replays its records, reading host memory at replay time.
 * The kernels compute with the CPU reference ops of kernels/cpu/.
 * ANCORA_MOCK_BUG=NAME makes one kernel compute a plausible wrong result
 * (geglu, add_rows, scale, softcap, attn_softcap; of the training kernels
 * rmsnorm_bwd, attn_train_s2, embed_bwd, cross_entropy; see mock_bug), so
 * the tests can show that they notice a wrong kernel.
 * Test code only; depends on kernels/ and the mock headers beside it. */
#include "cuda_runtime.h"
#include "cublas_v2.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"
#include "cpu_ops.h"
#include "cpu_train.h"
#include "cuda_kernels.h"
#include "dtype.h"

/* ---- failures ----------------------------------------------------------------- */

static void mock_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#include <stdarg.h>
static void mock_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mock CUDA: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static cudaError_t last_error = cudaSuccess;

static cudaError_t set_error(cudaError_t e)
{
    if (e != cudaSuccess) last_error = e;
    return e;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorGraphExecUpdateFailure: return "the graph update was not performed";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "invalid argument";
    }
}

/* ---- the device arena ------------------------------------------------------------- */

#define ARENA_BYTES ((size_t)16 << 30) /* address space only (MAP_NORESERVE) */
#define ARENA_ALIGN 4096 /* whole pages, so a freed block's pages can be dropped */
#define POISON_MAX ((size_t)1 << 20)
#define MAX_ALLOCS 65536

static uint8_t *arena;
static size_t arena_top;   /* bump pointer: blocks are never reused */
static int open_depth;
struct block {
    uint8_t *p;
    size_t bytes;
    bool live;
};
static struct block blocks[MAX_ALLOCS];
static int n_blocks;
static size_t live_bytes;
static struct mock_stats stats;

static void arena_init(void)
{
    if (arena) return;
    void *p = mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) mock_fail("cannot reserve the device arena");
    arena = p;
}

/* Only the span from the lowest live block to the top changes protection
 * (freed blocks below stay closed): mprotect's cost grows with the span. */
static uint8_t *open_lo;
static size_t open_len;

static uint8_t *lowest_live(void)
{
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].live) return blocks[i].p; /* blocks are in address order */
    return arena + arena_top;
}

static void device_open(void)
{
    if (open_depth++ > 0) return;
    open_lo = lowest_live();
    open_len = (size_t)(arena + arena_top - open_lo);
    if (open_len && mprotect(open_lo, open_len, PROT_READ | PROT_WRITE) != 0) mock_fail("mprotect");
}

static void device_close(void)
{
    if (--open_depth > 0) return;
    if (open_len && mprotect(open_lo, open_len, PROT_NONE) != 0) mock_fail("mprotect");
}

static bool in_arena(const void *p) { return (const uint8_t *)p >= arena && (const uint8_t *)p < arena + arena_top; }

void mock_check_device(const void *p, size_t bytes, const char *what)
{
    const uint8_t *q = p;
    for (int i = 0; i < n_blocks; i++) {
        const struct block *b = &blocks[i];
        if (q >= b->p && q < b->p + (b->bytes ? b->bytes : 1)) {
            if (!b->live) mock_fail("%s: %p is in a freed allocation", what, p);
            if (bytes > (size_t)(b->p + b->bytes - q))
                mock_fail("%s: %zu bytes at %p run past the end of a %zu-byte allocation (offset %zu)",
                          what, bytes, p, b->bytes, (size_t)(q - b->p));
            return;
        }
    }
    mock_fail("%s: %p is not device memory", what, p);
}

/* A single float / int array argument of n elements (n may be 0). */
#define DEV(p, n, what) mock_check_device((p), (size_t)(n) * sizeof *(p), (what))

/* ---- streams and graphs ---------------------------------------------------------------- */

struct rec {
    void (*fn)(const void *);
    void *args;
    size_t size;
};

struct mock_graph {
    struct rec *r;
    int n, cap;
};

struct mock_stream {
    struct mock_graph *capture; /* non-NULL while capturing */
    bool capture_broken;
};

static struct mock_stream *capturing_stream;

static void graph_add(struct mock_graph *g, void (*fn)(const void *), const void *args, size_t size)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->r = realloc(g->r, (size_t)g->cap * sizeof *g->r);
        if (!g->r) mock_fail("out of host memory");
    }
    struct rec *r = &g->r[g->n++];
    r->fn = fn;
    r->size = size;
    r->args = malloc(size ? size : 1);
    if (!r->args) mock_fail("out of host memory");
    memcpy(r->args, args, size);
}

static void graph_free(struct mock_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) free(g->r[i].args);
    free(g->r);
    free(g);
}

void mock_enqueue(cudaStream_t s, void (*fn)(const void *args), const void *args, size_t size)
{
    if (!s) mock_fail("work on the legacy default stream (the backend has its own)");
    if (s->capture) {
        graph_add(s->capture, fn, args, size);
        return;
    }
    stats.launches++;
    device_open();
    fn(args);
    device_close();
}

/* Calls a capture forbids: note it, fail the capture. */
static bool capture_forbids(const char *what)
{
    if (!capturing_stream) return false;
    capturing_stream->capture_broken = true;
    fprintf(stderr, "mock CUDA: %s during stream capture\n", what);
    set_error(cudaErrorStreamCaptureUnsupported);
    return true;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    (void)flags;
    *s = calloc(1, sizeof **s);
    return *s ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (s && s->capture) mock_fail("destroying a capturing stream");
    free(s);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    if (s && s->capture) return set_error(cudaErrorStreamCaptureUnsupported);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    if (capture_forbids("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode m)
{
    (void)m;
    if (s->capture || capturing_stream) mock_fail("nested capture");
    s->capture = calloc(1, sizeof *s->capture);
    s->capture_broken = false;
    capturing_stream = s;
    stats.captures++;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    if (!s->capture) mock_fail("ending a capture that never began");
    capturing_stream = NULL;
    if (s->capture_broken) {
        graph_free(s->capture);
        s->capture = NULL;
        *g = NULL;
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    *g = s->capture;
    s->capture = NULL;
    return cudaSuccess;
}

static struct mock_graph *graph_copy(const struct mock_graph *g)
{
    struct mock_graph *e = calloc(1, sizeof *e);
    if (!e) mock_fail("out of host memory");
    for (int i = 0; i < g->n; i++) graph_add(e, g->r[i].fn, g->r[i].args, g->r[i].size);
    return e;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags)
{
    (void)flags;
    stats.graph_instantiates++;
    *e = graph_copy(g);
    return cudaSuccess;
}

/* Like the real call: only the parameters of the same nodes may change. */
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g, cudaGraphExecUpdateResultInfo *info)
{
    bool same = e->n == g->n;
    for (int i = 0; same && i < g->n; i++) same = e->r[i].fn == g->r[i].fn;
    if (info) info->result = same ? 0 : 1;
    if (!same) return set_error(cudaErrorGraphExecUpdateFailure);
    stats.graph_updates++;
    for (int i = 0; i < g->n; i++) {
        free(e->r[i].args);
        e->r[i].args = malloc(g->r[i].size ? g->r[i].size : 1);
        memcpy(e->r[i].args, g->r[i].args, g->r[i].size);
        e->r[i].size = g->r[i].size;
    }
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s)
{
    if (s->capture) mock_fail("graph launch inside a capture");
    stats.graph_launches++;
    device_open();
    for (int i = 0; i < e->n; i++) e->r[i].fn(e->r[i].args);
    device_close();
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    graph_free(g);
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e)
{
    graph_free(e);
    return cudaSuccess;
}

/* ---- device and memory --------------------------------------------------------------- */

#define MOCK_TOTAL ((size_t)8 << 30) /* what cudaMemGetInfo reports as the card */

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = getenv("ANCORA_MOCK_NO_GPU") ? 0 : 1;
    return *n ? cudaSuccess : set_error(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : set_error(cudaErrorInvalidValue); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "Mock GPU (CPU)");
    p->multiProcessorCount = 4;
    p->major = 9;
    p->minor = 0;
    return dev == 0 ? cudaSuccess : set_error(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int dev)
{
    (void)dev;
    *v = a == cudaDevAttrMemoryClockRate ? 1000000 : 1024; /* 1 GHz x 1024 bits: 256 GB/s */
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    *total = MOCK_TOTAL;
    *free_bytes = live_bytes < MOCK_TOTAL ? MOCK_TOTAL - live_bytes : 0;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    arena_init();
    *p = NULL;
    if (capture_forbids("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    if (live_bytes + bytes > MOCK_TOTAL || arena_top + need > ARENA_BYTES || n_blocks == MAX_ALLOCS)
        return set_error(cudaErrorMemoryAllocation);
    uint8_t *q = arena + arena_top;
    arena_top += need;
    blocks[n_blocks++] = (struct block){q, bytes, true};
    live_bytes += bytes;
    stats.device_bytes = live_bytes;
    /* NaN floats: nothing may rely on fresh memory being zero (the first
       MiB of big work areas is enough, and keeps untouched pages cheap) */
    device_open();
    memset(q, 0xff, need < POISON_MAX ? need : POISON_MAX);
    device_close();
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    if (capture_forbids("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].p == p && blocks[i].live) {
            blocks[i].live = false;
            live_bytes -= blocks[i].bytes;
            stats.device_bytes = live_bytes;
            /* give the pages back: a freed block reads as zeros if touched,
               but every use is refused by mock_check_device first */
            uint8_t *lo = (uint8_t *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
            uint8_t *hi = (uint8_t *)(((uintptr_t)p + blocks[i].bytes) & ~(uintptr_t)4095);
            if (hi > lo) madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
            return cudaSuccess;
        }
    mock_fail("cudaFree of %p, which is not a live allocation", p);
}

/* Pinned host blocks, to tell them from pageable memory in captures. */
#define MAX_PINNED 256
static struct { uint8_t *p; size_t bytes; } pinned[MAX_PINNED];

static bool is_pinned(const void *p, size_t bytes)
{
    for (int i = 0; i < MAX_PINNED; i++)
        if (pinned[i].p && (const uint8_t *)p >= pinned[i].p &&
            (const uint8_t *)p + bytes <= pinned[i].p + pinned[i].bytes)
            return true;
    return false;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags)
{
    (void)flags;
    if (capture_forbids("cudaHostAlloc")) return cudaErrorStreamCaptureUnsupported;
    for (int i = 0; i < MAX_PINNED; i++)
        if (!pinned[i].p) {
            pinned[i].p = malloc(bytes ? bytes : 1);
            pinned[i].bytes = bytes;
            *p = pinned[i].p;
            return pinned[i].p ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
        }
    return set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void *p)
{
    for (int i = 0; i < MAX_PINNED; i++)
        if (pinned[i].p == p) {
            free(p);
            pinned[i].p = NULL;
            return cudaSuccess;
        }
    mock_fail("cudaFreeHost of %p, which cudaHostAlloc did not give", p);
}

struct copy_args {
    void *dst;
    const void *src;
    size_t bytes;
};

static void run_copy(const void *a)
{
    const struct copy_args *c = a;
    memmove(c->dst, c->src, c->bytes);
}

static void check_copy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k)
{
    bool dd = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    bool sd = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    if (dd) mock_check_device(dst, bytes, "copy destination");
    else if (in_arena(dst)) mock_fail("copy to host memory given a device pointer");
    if (sd) mock_check_device(src, bytes, "copy source");
    else if (in_arena(src)) mock_fail("copy from host memory given a device pointer");
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k)
{
    if (capture_forbids("cudaMemcpy (synchronous)")) return cudaErrorStreamCaptureUnsupported;
    check_copy(dst, src, bytes, k);
    device_open();
    memmove(dst, src, bytes);
    device_close();
    return cudaSuccess;
}

/* ANCORA_MOCK_FAIL_COPY=N: the Nth asynchronous copy fails, as a GPU fault
 * would surface (for the test of the backend's error path). */
static bool copy_should_fail(void)
{
    static long countdown = -2;
    if (countdown == -2) {
        const char *e = getenv("ANCORA_MOCK_FAIL_COPY");
        countdown = e ? atol(e) : -1;
    }
    return countdown > 0 && --countdown == 0;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k,
                            cudaStream_t s)
{
    if (copy_should_fail()) return set_error(cudaErrorInvalidValue);
    check_copy(dst, src, bytes, k);
    if (s && s->capture && ((k == cudaMemcpyHostToDevice && !is_pinned(src, bytes)) ||
                            (k == cudaMemcpyDeviceToHost && !is_pinned(dst, bytes)))) {
        capture_forbids("a copy between the device and pageable host memory");
        return cudaErrorStreamCaptureUnsupported;
    }
    struct copy_args c = {dst, src, bytes};
    mock_enqueue(s, run_copy, &c, sizeof c);
    return cudaSuccess;
}

struct set_args {
    void *p;
    int v;
    size_t bytes;
};

static void run_set(const void *a)
{
    const struct set_args *c = a;
    memset(c->p, c->v, c->bytes);
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s)
{
    mock_check_device(p, bytes, "memset");
    struct set_args c = {p, v, bytes};
    mock_enqueue(s, run_set, &c, sizeof c);
    return cudaSuccess;
}

void mock_get_stats(struct mock_stats *out) { *out = stats; }

/* ---- cuBLAS ------------------------------------------------------------------------------- */

struct mock_blas {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = calloc(1, sizeof **h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
    (void)h;
    mock_check_device(ws, bytes, "cuBLAS workspace");
    return CUBLAS_STATUS_SUCCESS;
}

struct gemm_args {
    int ta, tb, m, n, k, lda, ldb, ldc;
    int at, bt;
    float alpha, beta;
    const void *a, *b;
    float *c;
};

static float elem(const void *p, int type, size_t i)
{
    return type == CUDA_R_16F ? anc_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* C (m x n) = alpha op(A) op(B) + beta C, column-major, float accumulation. */
static void run_gemm(const void *args)
{
    const struct gemm_args *g = args;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) {
            float s = 0.0f;
            for (int l = 0; l < g->k; l++) {
                size_t ai = g->ta ? (size_t)i * g->lda + l : (size_t)l * g->lda + i;
                size_t bi = g->tb ? (size_t)l * g->ldb + j : (size_t)j * g->ldb + l;
                s += elem(g->a, g->at, ai) * elem(g->b, g->bt, bi);
            }
            float *c = g->c + (size_t)j * g->ldc + i;
            *c = g->alpha * s + (g->beta != 0.0f ? g->beta * *c : 0.0f);
        }
}

static cublasStatus_t gemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                           const void *a, int at, int lda, const void *b, int bt, int ldb, float beta,
                           float *c, int ldc)
{
    size_t ea = at == CUDA_R_16F ? 2 : 4, eb = bt == CUDA_R_16F ? 2 : 4;
    /* the extent of each operand in memory, column-major */
    size_t a_cols = ta ? (size_t)m : (size_t)k, b_cols = tb ? (size_t)k : (size_t)n;
    size_t a_rows = ta ? (size_t)k : (size_t)m, b_rows = tb ? (size_t)n : (size_t)k;
    if (lda < (int)a_rows || ldb < (int)b_rows || ldc < m) return CUBLAS_STATUS_INVALID_VALUE;
    mock_check_device(a, ((a_cols - 1) * lda + a_rows) * ea, "GEMM A");
    mock_check_device(b, ((b_cols - 1) * ldb + b_rows) * eb, "GEMM B");
    mock_check_device(c, (((size_t)n - 1) * ldc + m) * 4, "GEMM C");
    struct gemm_args g = {ta, tb, m, n, k, lda, ldb, ldc, at, bt, alpha, beta, a, b, c};
    mock_enqueue(h->stream, run_gemm, &g, sizeof g);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const float *alpha, const float *a, int lda, const float *b, int ldb,
                           const float *beta, float *c, int ldc)
{
    return gemm(h, ta, tb, m, n, k, *alpha, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb, *beta, c, ldc);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, const void *alpha, const void *a, cudaDataType_t at, int lda,
                            const void *b, cudaDataType_t bt, int ldb, const void *beta, void *c,
                            cudaDataType_t ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (ct != CUDA_R_32F || comp != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_INVALID_VALUE;
    return gemm(h, ta, tb, m, n, k, *(const float *)alpha, a, at, lda, b, bt, ldb,
                *(const float *)beta, c, ldc);
}

/* ---- Ancora's kernels, computed by the CPU reference --------------------------------------- */

static size_t row_bytes(uint32_t type, int64_t cols) { return anc_dtype_row_bytes(type, (uint64_t)cols); }

bool anc_cu_supports(uint32_t type) { return anc_backend_cpu_supports(type); }

struct mv_args {
    float *y;
    const void *w;
    uint32_t type;
    int64_t rows, cols;
    const float *x;
    int32_t n_tok;
};

static void run_matvec(const void *args)
{
    const struct mv_args *a = args;
    float *wrow = malloc(sizeof(float) * (size_t)a->cols);
    for (int64_t r = 0; r < a->rows; r++) {
        cpu_dequant_row(a->type, (const uint8_t *)a->w + (size_t)r * row_bytes(a->type, a->cols), wrow,
                        a->cols);
        for (int32_t t = 0; t < a->n_tok; t++) {
            float s = 0.0f;
            for (int64_t c = 0; c < a->cols; c++) s += wrow[c] * a->x[(size_t)t * a->cols + c];
            a->y[(size_t)t * a->rows + r] = s;
        }
    }
    free(wrow);
}

int anc_cu_matvec(void *stream, float *y, const void *w, uint32_t type, int64_t rows, int64_t cols,
                  const float *x, int32_t n_tok)
{
    if (n_tok < 1 || n_tok > ANC_CU_MATVEC_MAX_TOK || !anc_cu_supports(type)) return -1;
    mock_check_device(w, row_bytes(type, cols) * (size_t)rows, "matvec weights");
    DEV(x, (size_t)n_tok * cols, "matvec x");
    DEV(y, (size_t)n_tok * rows, "matvec y");
    struct mv_args a = {y, w, type, rows, cols, x, n_tok};
    mock_enqueue(stream, run_matvec, &a, sizeof a);
    return 0;
}

struct dq_args {
    void *dst;
    bool f16;
    const void *w;
    uint32_t type;
    int64_t cols, row0, n_rows;
};

static void run_dequant(const void *args)
{
    const struct dq_args *a = args;
    float *row = malloc(sizeof(float) * (size_t)a->cols);
    for (int64_t r = 0; r < a->n_rows; r++) {
        cpu_dequant_row(a->type, (const uint8_t *)a->w + (size_t)(a->row0 + r) * row_bytes(a->type, a->cols),
                        row, a->cols);
        for (int64_t c = 0; c < a->cols; c++) {
            size_t i = (size_t)r * a->cols + c;
            if (a->f16)
                ((uint16_t *)a->dst)[i] = anc_f32_to_f16(row[c]);
            else
                ((float *)a->dst)[i] = row[c];
        }
    }
    free(row);
}

int anc_cu_dequant_rows(void *stream, void *dst, bool out_f16, const void *w, uint32_t type,
                        int64_t cols, int64_t row0, int64_t n_rows)
{
    if (!anc_cu_supports(type)) return -1;
    mock_check_device((const uint8_t *)w + (size_t)row0 * row_bytes(type, cols),
                      row_bytes(type, cols) * (size_t)n_rows, "dequant weights");
    mock_check_device(dst, (size_t)(n_rows * cols) * (out_f16 ? 2 : 4), "dequant destination");
    struct dq_args a = {dst, out_f16, w, type, cols, row0, n_rows};
    mock_enqueue(stream, run_dequant, &a, sizeof a);
    return 0;
}

struct cvt_args {
    uint16_t *dst;
    const float *src;
    int64_t n;
};

static void run_cvt(const void *args)
{
    const struct cvt_args *a = args;
    for (int64_t i = 0; i < a->n; i++) a->dst[i] = anc_f32_to_f16(a->src[i]);
}

int anc_cu_f32_to_f16(void *stream, void *dst, const float *src, int64_t n)
{
    mock_check_device(dst, (size_t)n * 2, "f16 destination");
    DEV(src, n, "f16 source");
    struct cvt_args a = {dst, src, n};
    mock_enqueue(stream, run_cvt, &a, sizeof a);
    return 0;
}

struct embed_args {
    float *out;
    const void *table;
    uint32_t type;
    int64_t cols;
    const int32_t *tokens;
    int32_t n_tok;
};

static void run_embed(const void *args)
{
    const struct embed_args *a = args;
    for (int32_t t = 0; t < a->n_tok; t++)
        cpu_dequant_row(a->type, (const uint8_t *)a->table + (size_t)a->tokens[t] * row_bytes(a->type, a->cols),
                        a->out + (size_t)t * a->cols, a->cols);
}

int anc_cu_embed(void *stream, float *out, const void *table, uint32_t type, int64_t cols,
                 const int32_t *tokens, int32_t n_tok)
{
    DEV(out, (size_t)n_tok * cols, "embedding out");
    DEV(tokens, n_tok, "embedding tokens");
    mock_check_device(table, row_bytes(type, cols), "embedding table");
    struct embed_args a = {out, table, type, cols, tokens, n_tok};
    mock_enqueue(stream, run_embed, &a, sizeof a);
    return 0;
}

struct norm_args {
    float *y;
    const float *x, *w;
    int32_t n, n_tok;
    float eps;
};

static void run_rmsnorm(const void *args)
{
    const struct norm_args *a = args;
    for (int32_t t = 0; t < a->n_tok; t++)
        cpu_rmsnorm_ref(a->y + (size_t)t * a->n, a->x + (size_t)t * a->n, a->w, a->n, a->eps);
}

int anc_cu_rmsnorm(void *stream, float *y, const float *x, const float *w, int32_t n, int32_t n_tok,
                   float eps)
{
    DEV(y, (size_t)n * n_tok, "rmsnorm y");
    DEV(x, (size_t)n * n_tok, "rmsnorm x");
    DEV(w, n, "rmsnorm weight");
    struct norm_args a = {y, x, w, n, n_tok, eps};
    mock_enqueue(stream, run_rmsnorm, &a, sizeof a);
    return 0;
}

struct rope_args {
    float *x;
    int32_t n_tok, n_heads, head_dim, n_pairs;
    bool neox;
    const float *cos_tab, *sin_tab;
    const int32_t *pos;
};

static void run_rope(const void *args)
{
    const struct rope_args *a = args;
    int32_t n_pos = 0;
    for (int32_t t = 0; t < a->n_tok; t++)
        if (a->pos[t] + 1 > n_pos) n_pos = a->pos[t] + 1;
    struct anc_rope_table tab = {n_pos, a->n_pairs, a->neox, a->cos_tab, a->sin_tab, 0};
    for (int32_t t = 0; t < a->n_tok; t++)
        cpu_rope_ref(a->x + (size_t)t * a->n_heads * a->head_dim, a->n_heads, a->head_dim, &tab, a->pos[t]);
}

int anc_cu_rope(void *stream, float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                int32_t n_pairs, bool neox, const float *cos_tab, const float *sin_tab,
                const int32_t *pos)
{
    DEV(x, (size_t)n_tok * n_heads * head_dim, "rope x");
    DEV(pos, n_tok, "rope positions");
    DEV(cos_tab, n_pairs, "rope cos");
    DEV(sin_tab, n_pairs, "rope sin");
    struct rope_args a = {x, n_tok, n_heads, head_dim, n_pairs, neox, cos_tab, sin_tab, pos};
    mock_enqueue(stream, run_rope, &a, sizeof a);
    return 0;
}

struct ew_args {
    float *out;
    const float *a, *b;
    int64_t n;
};

static void run_swiglu(const void *args)
{
    const struct ew_args *a = args;
    cpu_swiglu_ref(a->out, a->a, a->b, a->n);
}

static void run_add(const void *args)
{
    const struct ew_args *a = args;
    cpu_add_ref(a->out, a->a, a->n);
}

int anc_cu_swiglu(void *stream, float *out, const float *gate, const float *up, int64_t n)
{
    DEV(out, n, "swiglu out");
    DEV(gate, n, "swiglu gate");
    DEV(up, n, "swiglu up");
    struct ew_args a = {out, gate, up, n};
    mock_enqueue(stream, run_swiglu, &a, sizeof a);
    return 0;
}

int anc_cu_add(void *stream, float *y, const float *x, int64_t n)
{
    DEV(y, n, "add y");
    DEV(x, n, "add x");
    struct ew_args a = {y, x, NULL, n};
    mock_enqueue(stream, run_add, &a, sizeof a);
    return 0;
}

/* ANCORA_MOCK_BUG names a kernel that computes wrongly (read when the
 * kernel runs, so a test may set and clear it between calls). */
static bool mock_bug(const char *name)
{
    const char *e = getenv("ANCORA_MOCK_BUG");
    return e && strcmp(e, name) == 0;
}

static void run_geglu(const void *args)
{
    const struct ew_args *a = args;
    if (mock_bug("geglu")) { /* bug: the cubic term of the tanh form left out */
        for (int64_t i = 0; i < a->n; i++) {
            float g = a->a[i];
            a->out[i] = 0.5f * g * (1.0f + tanhf(0.7978845608028654f * g)) * a->b[i];
        }
        return;
    }
    cpu_geglu_ref(a->out, a->a, a->b, a->n);
}

int anc_cu_geglu(void *stream, float *out, const float *gate, const float *up, int64_t n)
{
    if (n < 0) return -1;
    DEV(out, n, "geglu out");
    DEV(gate, n, "geglu gate");
    DEV(up, n, "geglu up");
    struct ew_args a = {out, gate, up, n};
    mock_enqueue(stream, run_geglu, &a, sizeof a);
    return 0;
}

struct ews_args {
    float *x;
    const float *b;
    int64_t n;
    int32_t n_tok;
    float s;
};

static void run_add_rows(const void *args)
{
    const struct ews_args *a = args;
    /* bug: the bias on the first token's row only */
    cpu_add_rows_ref(a->x, a->b, a->n, mock_bug("add_rows") && a->n_tok > 1 ? 1 : a->n_tok);
}

int anc_cu_add_rows(void *stream, float *y, const float *b, int64_t n, int32_t n_tok)
{
    if (n < 0 || n_tok < 0) return -1;
    DEV(y, (size_t)n * n_tok, "bias rows");
    DEV(b, n, "bias");
    struct ews_args a = {y, b, n, n_tok, 0.0f};
    mock_enqueue(stream, run_add_rows, &a, sizeof a);
    return 0;
}

static void run_scale(const void *args)
{
    const struct ews_args *a = args;
    /* bug: the last element left unscaled */
    cpu_scale_ref(a->x, a->s, mock_bug("scale") && a->n > 0 ? a->n - 1 : a->n);
}

int anc_cu_scale(void *stream, float *x, float s, int64_t n)
{
    if (n < 0) return -1;
    DEV(x, n, "scale x");
    struct ews_args a = {x, NULL, n, 0, s};
    mock_enqueue(stream, run_scale, &a, sizeof a);
    return 0;
}

static void run_softcap(const void *args)
{
    const struct ews_args *a = args;
    if (mock_bug("softcap")) { /* bug: a hard clamp instead of tanh */
        for (int64_t i = 0; i < a->n; i++) a->x[i] = fminf(fmaxf(a->x[i], -a->s), a->s);
        return;
    }
    cpu_softcap_ref(a->x, a->s, a->n);
}

int anc_cu_softcap(void *stream, float *x, float cap, int64_t n)
{
    if (n < 0 || !(cap > 0.0f) || isinf(cap)) return -1;
    DEV(x, n, "softcap x");
    struct ews_args a = {x, NULL, n, 0, cap};
    mock_enqueue(stream, run_softcap, &a, sizeof a);
    return 0;
}

struct rows_args {
    void *base;
    uint32_t type;
    float *act;
    const int32_t *rows;
    int32_t n;
    int64_t row_len;
};

static void run_store_rows(const void *args)
{
    const struct rows_args *a = args;
    size_t rb = row_bytes(a->type, a->row_len);
    for (int32_t i = 0; i < a->n; i++) {
        uint8_t *dst = (uint8_t *)a->base + (size_t)a->rows[i] * rb;
        const float *x = a->act + (size_t)i * a->row_len;
        for (int64_t c = 0; c < a->row_len; c++)
            if (a->type == ANC_DT_F16)
                ((uint16_t *)dst)[c] = anc_f32_to_f16(x[c]);
            else
                ((float *)dst)[c] = x[c];
    }
}

static void run_load_rows(const void *args)
{
    const struct rows_args *a = args;
    size_t rb = row_bytes(a->type, a->row_len);
    for (int32_t i = 0; i < a->n; i++)
        cpu_dequant_row(a->type, (const uint8_t *)a->base + (size_t)a->rows[i] * rb,
                        a->act + (size_t)i * a->row_len, a->row_len);
}

static int rows_common(void *stream, void (*fn)(const void *), void *base, uint32_t type, float *act,
                       const int32_t *rows, int32_t n, int64_t row_len)
{
    if (type != ANC_DT_F32 && type != ANC_DT_F16) return -1;
    DEV(act, (size_t)n * row_len, "rows activations");
    DEV(rows, n, "row list");
    mock_check_device(base, row_bytes(type, row_len), "cache rows");
    struct rows_args a = {base, type, act, rows, n, row_len};
    mock_enqueue(stream, fn, &a, sizeof a);
    return 0;
}

int anc_cu_store_rows(void *stream, void *base, uint32_t type, const float *src, const int32_t *rows,
                      int32_t n, int64_t row_len)
{
    return rows_common(stream, run_store_rows, base, type, (float *)src, rows, n, row_len);
}

int anc_cu_load_rows(void *stream, float *dst, const void *base, uint32_t type, const int32_t *rows,
                     int32_t n, int64_t row_len)
{
    return rows_common(stream, run_load_rows, (void *)base, type, dst, rows, n, row_len);
}

struct argmax_args {
    int32_t *out;
    const float *x;
    int32_t n;
};

static void run_argmax(const void *args)
{
    const struct argmax_args *a = args;
    int32_t best = -1;
    for (int32_t i = 0; i < a->n; i++)
        if (a->x[i] == a->x[i] && (best < 0 || a->x[i] > a->x[best])) best = i;
    *a->out = best < 0 ? 0 : best;
}

int anc_cu_argmax(void *stream, int32_t *out, const float *x, int32_t n)
{
    DEV(out, 1, "argmax out");
    DEV(x, n, "argmax x");
    struct argmax_args a = {out, x, n};
    mock_enqueue(stream, run_argmax, &a, sizeof a);
    return 0;
}

size_t anc_cu_attention_work_bytes(int32_t n_q, int32_t n_head, int32_t head_dim, int32_t n_split)
{
    return n_split <= 1 ? 0 : (size_t)n_q * n_head * n_split * ((size_t)head_dim + 3) * sizeof(float);
}

static void run_attention(const void *args)
{
    const struct anc_cu_attn *c = args;
    struct anc_attn_args a = {
        .out = c->out, .q = c->q, .q_sink = c->q_sink, .k = c->k, .v = c->v, .kv_type = c->kv_type,
        .slot = c->slot, .n_q = c->n_q, .n_kv = c->n_kv, .n_head = c->n_head, .n_kv_head = c->n_kv_head,
        .head_dim = c->head_dim, .n_sink = c->n_sink, .lo = c->lo, .hi = c->hi, .scale = c->scale,
        .softcap = mock_bug("attn_softcap") ? 0.0f : c->softcap, /* bug: the cap forgotten */
        .sink_mass = c->sink_mass,
    };
    int32_t group = c->n_head / c->n_kv_head;
    float *scores = malloc(sizeof(float) * (size_t)(c->n_kv > 0 ? c->n_kv : 1) * group);
    for (int32_t i = 0; i < c->n_q; i++)
        for (int32_t h = 0; h < c->n_kv_head; h++) cpu_attention_group(&a, i, h, scores);
    free(scores);
    if (c->n_split > 1) /* the work area is the kernel's: scribble over it */
        memset(c->part, 0x7f, anc_cu_attention_work_bytes(c->n_q, c->n_head, c->head_dim, c->n_split));
}

int anc_cu_attention(void *stream, const struct anc_cu_attn *a)
{
    if (a->head_dim > ANC_MAX_HEAD_DIM || a->n_kv_head < 1 || a->n_head % a->n_kv_head != 0 ||
        a->n_head / a->n_kv_head > ANC_MAX_GROUP || a->n_split < 1 ||
        (a->kv_type != ANC_DT_F32 && a->kv_type != ANC_DT_F16) || !(a->softcap >= 0.0f) ||
        isinf(a->softcap))
        return -1;
    size_t qn = (size_t)a->n_q * a->n_head * a->head_dim;
    DEV(a->out, qn, "attention out");
    DEV(a->q, qn, "attention q");
    if (a->q_sink) DEV(a->q_sink, qn, "attention q_sink");
    DEV(a->slot, a->n_kv, "attention slots");
    DEV(a->lo, a->n_q, "attention lo");
    DEV(a->hi, a->n_q, "attention hi");
    mock_check_device(a->k, row_bytes(a->kv_type, (int64_t)a->n_kv_head * a->head_dim), "attention k");
    mock_check_device(a->v, row_bytes(a->kv_type, (int64_t)a->n_kv_head * a->head_dim), "attention v");
    if (a->sink_mass) DEV(a->sink_mass, a->n_head, "attention sink mass");
    if (a->n_split > 1)
        mock_check_device(a->part, anc_cu_attention_work_bytes(a->n_q, a->n_head, a->head_dim, a->n_split),
                          "attention work area");
    mock_enqueue(stream, run_attention, a, sizeof *a);
    return 0;
}

/* ---- training kernels (kernels_train.cu), computed by the CPU backend's
 * training ops (kernels/cpu/cpu_train.c) ------------------------------------------------- */

static struct anc_backend *mock_cpu(void)
{
    static struct anc_backend *be;
    if (!be && !(be = anc_backend_cpu_new(1))) mock_fail("cannot start the CPU backend");
    return be;
}

struct normb_args {
    float *dx, *dw, *work;
    const float *dy, *x, *w;
    int32_t n, n_tok;
    float eps;
};

static void run_rmsnorm_bwd(const void *args)
{
    const struct normb_args *a = args;
    struct anc_weight w = {a->w, ANC_DT_F32, 1, a->n, NULL};
    float *dw = a->dw, *saved = NULL;
    if (dw && mock_bug("rmsnorm_bwd")) { /* bug: the weight's gradient overwritten, not accumulated */
        saved = malloc(sizeof(float) * (size_t)a->n);
        memcpy(saved, dw, sizeof(float) * (size_t)a->n);
        memset(dw, 0, sizeof(float) * (size_t)a->n);
    }
    cpu_train_rmsnorm_bwd(mock_cpu(), a->dx, dw, a->dy, a->x, &w, a->n, a->n_tok, a->eps);
    free(saved);
    memset(a->work, 0x7f, sizeof(float) * (size_t)a->n_tok); /* the kernel's: scribble over it */
}

int anc_cu_rmsnorm_bwd(void *stream, float *dx, float *dw, const float *dy, const float *x, const float *w,
                       int32_t n, int32_t n_tok, float eps, float *work)
{
    if (n <= 0 || n_tok < 0) return -1;
    size_t nt = (size_t)n * n_tok;
    DEV(dx, nt, "rmsnorm_bwd dx");
    DEV(dy, nt, "rmsnorm_bwd dy");
    DEV(x, nt, "rmsnorm_bwd x");
    DEV(w, n, "rmsnorm_bwd weight");
    DEV(work, n_tok, "rmsnorm_bwd work area");
    if (dw) DEV(dw, n, "rmsnorm_bwd dw");
    struct normb_args a = {dx, dw, work, dy, x, w, n, n_tok, eps};
    mock_enqueue(stream, run_rmsnorm_bwd, &a, sizeof a);
    return 0;
}

static void run_rope_bwd(const void *args)
{
    const struct rope_args *a = args;
    int32_t n_pos = 0;
    for (int32_t t = 0; t < a->n_tok; t++)
        if (a->pos[t] + 1 > n_pos) n_pos = a->pos[t] + 1;
    mock_check_device(a->cos_tab, sizeof(float) * (size_t)n_pos * a->n_pairs, "rope_bwd cos");
    mock_check_device(a->sin_tab, sizeof(float) * (size_t)n_pos * a->n_pairs, "rope_bwd sin");
    struct anc_rope_table tab = {n_pos, a->n_pairs, a->neox, a->cos_tab, a->sin_tab, 0};
    cpu_train_rope_bwd(mock_cpu(), a->x, a->n_tok, a->n_heads, a->head_dim, &tab, a->pos);
}

int anc_cu_rope_bwd(void *stream, float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                    int32_t n_pairs, bool neox, const float *cos_tab, const float *sin_tab,
                    const int32_t *pos)
{
    if (n_tok < 0 || n_heads < 0 || n_pairs < 0 || head_dim < 2 * n_pairs) return -1;
    DEV(x, (size_t)n_tok * n_heads * head_dim, "rope_bwd x");
    DEV(pos, n_tok, "rope_bwd positions");
    struct rope_args a = {x, n_tok, n_heads, head_dim, n_pairs, neox, cos_tab, sin_tab, pos};
    mock_enqueue(stream, run_rope_bwd, &a, sizeof a);
    return 0;
}

static struct anc_attn_train_args attn_train_args(const struct anc_cu_attn_train *c)
{
    struct anc_attn_train_args a = {
        .out = c->out, .lse = c->lse, .q = c->q, .k = c->k, .v = c->v, .dout = c->dout, .dq = c->dq,
        .dk = c->dk, .dv = c->dv, .n = c->n, .n_head = c->n_head, .n_kv_head = c->n_kv_head,
        .head_dim = c->head_dim, .group = mock_bug("attn_train_s2") ? 0 : c->group, /* bug: no groups */
        .scale = c->scale,
    };
    return a;
}

static void run_attn_train(const void *args)
{
    struct anc_attn_train_args a = attn_train_args(args);
    cpu_train_attn(mock_cpu(), &a);
}

static void run_attn_train_bwd(const void *args)
{
    const struct anc_cu_attn_train *c = args;
    struct anc_attn_train_args a = attn_train_args(c);
    cpu_train_attn_bwd(mock_cpu(), &a);
    memset(c->work, 0x7f, sizeof(float) * (size_t)c->n * c->n_head);
}

static int attn_train_common(void *stream, const struct anc_cu_attn_train *a, bool backward)
{
    if (!a || a->n < 0 || a->head_dim <= 0 || a->head_dim > ANC_MAX_HEAD_DIM || a->n_head <= 0 ||
        a->n_kv_head <= 0 || a->n_head % a->n_kv_head != 0 || a->group < 0 ||
        (a->group > 0 && (a->group % 2 || a->n % a->group)) || !(a->scale > 0.0f))
        return -1;
    size_t qn = (size_t)a->n * a->n_head * a->head_dim, kn = (size_t)a->n * a->n_kv_head * a->head_dim;
    DEV(a->out, qn, "attn_train out");
    DEV(a->lse, (size_t)a->n * a->n_head, "attn_train lse");
    DEV(a->q, qn, "attn_train q");
    DEV(a->k, kn, "attn_train k");
    DEV(a->v, kn, "attn_train v");
    if (backward) {
        DEV(a->dout, qn, "attn_train dout");
        DEV(a->dq, qn, "attn_train dq");
        DEV(a->dk, kn, "attn_train dk");
        DEV(a->dv, kn, "attn_train dv");
        DEV(a->work, (size_t)a->n * a->n_head, "attn_train work area");
    }
    mock_enqueue(stream, backward ? run_attn_train_bwd : run_attn_train, a, sizeof *a);
    return 0;
}

int anc_cu_attn_train(void *stream, const struct anc_cu_attn_train *a)
{
    return attn_train_common(stream, a, false);
}

int anc_cu_attn_train_bwd(void *stream, const struct anc_cu_attn_train *a)
{
    return attn_train_common(stream, a, true);
}

struct swb_args {
    float *dgate, *dup;
    const float *dy, *gate, *up;
    int64_t n;
};

static void run_swiglu_bwd(const void *args)
{
    const struct swb_args *a = args;
    cpu_train_swiglu_bwd(mock_cpu(), a->dgate, a->dup, a->dy, a->gate, a->up, a->n);
}

int anc_cu_swiglu_bwd(void *stream, float *dgate, float *dup, const float *dy, const float *gate,
                      const float *up, int64_t n)
{
    if (n < 0) return -1;
    DEV(dgate, n, "swiglu_bwd dgate");
    DEV(dup, n, "swiglu_bwd dup");
    DEV(dy, n, "swiglu_bwd dy");
    DEV(gate, n, "swiglu_bwd gate");
    DEV(up, n, "swiglu_bwd up");
    struct swb_args a = {dgate, dup, dy, gate, up, n};
    mock_enqueue(stream, run_swiglu_bwd, &a, sizeof a);
    return 0;
}

struct embb_args {
    float *dtable;
    const float *dx;
    const int32_t *idx;
    int32_t n_uniq, n_tok;
    int64_t dim;
};

/* The grouped token list must be what the kernel relies on (distinct
 * tokens in increasing order, every position once, positions increasing
 * within a token); the token list it stands for then goes to the CPU op. */
static void run_embed_bwd(const void *args)
{
    const struct embb_args *a = args;
    const int32_t *uniq = a->idx, *start = uniq + a->n_uniq, *pos = start + a->n_uniq + 1;
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(a->n_tok > 0 ? a->n_tok : 1));
    for (int32_t t = 0; t < a->n_tok; t++) tokens[t] = -1;
    if (start[0] != 0 || start[a->n_uniq] != a->n_tok) mock_fail("embed_bwd: the position groups do not cover the tokens");
    for (int32_t u = 0; u < a->n_uniq; u++) {
        if (u > 0 && uniq[u] <= uniq[u - 1]) mock_fail("embed_bwd: distinct tokens out of order");
        if (start[u + 1] <= start[u]) mock_fail("embed_bwd: a token with no position");
        mock_check_device(a->dtable + (size_t)uniq[u] * a->dim, sizeof(float) * (size_t)a->dim, "embed_bwd row");
        for (int32_t j = start[u]; j < start[u + 1]; j++) {
            int32_t p = pos[j];
            if (p < 0 || p >= a->n_tok || tokens[p] != -1 || (j > start[u] && p <= pos[j - 1]))
                mock_fail("embed_bwd: position %d listed wrongly", p);
            tokens[p] = uniq[u];
        }
    }
    if (mock_bug("embed_bwd")) { /* bug: a repeated token's row gets its first position only */
        for (int32_t u = 0; u < a->n_uniq; u++)
            for (int64_t c = 0; c < a->dim; c++)
                a->dtable[(size_t)uniq[u] * a->dim + c] += a->dx[(size_t)pos[start[u]] * a->dim + c];
    } else {
        cpu_train_embed_bwd(mock_cpu(), a->dtable, a->dx, tokens, a->n_tok, a->dim);
    }
    free(tokens);
}

int anc_cu_embed_bwd(void *stream, float *dtable, const float *dx, const int32_t *idx, int32_t n_uniq,
                     int32_t n_tok, int64_t dim)
{
    if (n_uniq < 0 || n_tok < 0 || n_uniq > n_tok || dim < 0) return -1;
    DEV(dx, (size_t)n_tok * dim, "embed_bwd dx");
    DEV(idx, (size_t)n_uniq * 2 + 1 + n_tok, "embed_bwd index");
    mock_check_device(dtable, sizeof(float) * (size_t)dim, "embed_bwd table");
    struct embb_args a = {dtable, dx, idx, n_uniq, n_tok, dim};
    mock_enqueue(stream, run_embed_bwd, &a, sizeof a);
    return 0;
}

struct ce_args {
    float *logits;
    double *loss;
    const int32_t *targets;
    int32_t n_tok, n_vocab;
    float grad_scale;
};

static void run_cross_entropy(const void *args)
{
    const struct ce_args *a = args;
    for (int32_t t = 0; t < a->n_tok; t++) {
        if (a->targets[t] < 0 && mock_bug("cross_entropy")) { /* bug: an unscored row left as it was */
            a->loss[t] = 0.0;
            continue;
        }
        a->loss[t] = cpu_train_cross_entropy(mock_cpu(), a->logits + (size_t)t * a->n_vocab, a->targets + t, 1,
                                             a->n_vocab, a->grad_scale);
    }
}

int anc_cu_cross_entropy(void *stream, float *logits, double *loss, const int32_t *targets, int32_t n_tok,
                         int32_t n_vocab, float grad_scale)
{
    if (n_tok < 0 || n_vocab <= 0) return -1;
    DEV(logits, (size_t)n_tok * n_vocab, "cross-entropy logits");
    DEV(loss, n_tok, "cross-entropy losses");
    DEV(targets, n_tok, "cross-entropy targets");
    struct ce_args a = {logits, loss, targets, n_tok, n_vocab, grad_scale};
    mock_enqueue(stream, run_cross_entropy, &a, sizeof a);
    return 0;
}

struct ssq_args {
    double *part;
    const float *x;
    int64_t n;
    int32_t n_parts;
};

static void run_sum_sq(const void *args)
{
    const struct ssq_args *a = args;
    int64_t chunk = (a->n + a->n_parts - 1) / a->n_parts;
    for (int32_t b = 0; b < a->n_parts; b++) {
        int64_t lo = (int64_t)b * chunk, hi = lo + chunk < a->n ? lo + chunk : a->n;
        a->part[b] = lo < hi ? cpu_train_sum_sq(mock_cpu(), a->x + lo, hi - lo) : 0.0;
    }
}

int anc_cu_sum_sq(void *stream, double *part, const float *x, int64_t n, int32_t n_parts)
{
    if (n < 0 || n_parts < 1) return -1;
    DEV(part, n_parts, "sum_sq parts");
    if (n > 0) DEV(x, n, "sum_sq x");
    struct ssq_args a = {part, x, n, n_parts};
    mock_enqueue(stream, run_sum_sq, &a, sizeof a);
    return 0;
}

struct adam_args {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    struct anc_cu_adamw h;
};

static void run_adamw(const void *args)
{
    const struct adam_args *a = args;
    struct anc_adamw h = {a->h.lr, a->h.beta1, a->h.beta2, a->h.eps, a->h.weight_decay, a->h.t};
    cpu_train_adamw(mock_cpu(), a->p, a->g, a->m, a->v, a->n, &h);
}

int anc_cu_adamw(void *stream, float *p, const float *g, float *m, float *v, int64_t n,
                 const struct anc_cu_adamw *h)
{
    if (n < 0 || !h || h->t < 1) return -1;
    DEV(p, n, "adamw p");
    DEV(g, n, "adamw g");
    DEV(m, n, "adamw m");
    DEV(v, n, "adamw v");
    struct adam_args a = {p, m, v, g, n, *h};
    mock_enqueue(stream, run_adamw, &a, sizeof a);
    return 0;
}
