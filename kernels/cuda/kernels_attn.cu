/* kernels_attn.cu — CUDA kernels for attention over the KV cache (split
 * into chunks, then merged: flash-decoding) and for the small row and
 * element-wise ops: rmsnorm, rope (and its backward, for the training
 * ops), swiglu, add, geglu, add_rows, scale, softcap, cache row
 * store/load, argmax. The launch functions are declared in cuda_kernels.h.
 * The attention math (plans, visibility, online softmax, merge, fp16 bits)
 * lives in attn_dev.h so that tests/test_cuda_dev_attn.c can replay it on
 * the CPU. Depends on the CUDA runtime, cuda_kernels.h, backend.h (limits),
 * dtype.h and attn_dev.h; never on core/. Launches only enqueue work on the
 * caller's stream: no allocation, no synchronisation (graph-capturable). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "attn_dev.h"
#include "backend.h"
#include "cuda_kernels.h"
#include "cuda_launch.cuh"
#include "dtype.h"

/* Threads of the split merge and of argmax. */
#define MERGE_THREADS 128
#define ARGMAX_THREADS 1024

static_assert(ANC_ATTN_TILE_MAX <= WARP, "softmax step gives one tile entry per lane");
static_assert(ANC_ATTN_THREADS % WARP == 0, "whole warps");
static_assert(ANC_ATTN_GD_MAX % ANC_ATTN_THREADS == 0, "accumulators spread evenly");

/* Element `off` of a cache array of type ANC_DT_F32 or ANC_DT_F16, as float. */
static __device__ __forceinline__ float cache_elem(const void *base, uint32_t type, size_t off)
{
    if (type == ANC_DT_F16) return anc_dev_f16_to_f32(((const uint16_t *)base)[off]);
    return ((const float *)base)[off];
}

/* ==== attention ========================================================== */

/* How the attention work is cut into blocks (see attn_dev.h). */
struct attn_plan {
    int32_t group; /* query heads per kv head */
    int32_t gb;    /* query heads per block */
    int32_t n_hc;  /* head chunks per kv head: ceil(group / gb) */
    int32_t tile;  /* cache entries per tile */
};

/* The work area: acc [n_q][n_head][n_split][head_dim], then the states
 * (m, l, sink_l) [n_q][n_head][n_split][3]. Offsets in floats. */
static __device__ __forceinline__ size_t part_states_offset(const struct anc_cu_attn &a)
{
    return (size_t)a.n_q * a.n_head * a.n_split * a.head_dim;
}

/* One block: query i, kv head kvh, query heads [g0, g0 + nh) of its group,
 * split s. Steps per tile of visible entries:
 *   1. stage the tile's key and value rows (as float) in shared memory;
 *   2. scores[g][t] = (q_g . k_t) * scale, q_sink for sink entries, soft-capped
 *      when a.softcap > 0 (anc_attn_score);
 *   3. per head (one warp each): raise the running max, turn the scores
 *      into weights, add them to l and sink_l (attn_dev.h);
 *   4. per accumulator element (g, d): acc = acc * alpha_g + sum_t p[g][t] v_t[d].
 * Thread x owns accumulator elements x + r * ANC_ATTN_THREADS, r < ACC_PER_THREAD,
 * element e meaning head g = e / head_dim, dimension d = e % head_dim. */
static __global__ void __launch_bounds__(ANC_ATTN_THREADS)
attn_split_kernel(const struct anc_cu_attn a, const struct attn_plan pl)
{
    __shared__ float q_s[ANC_ATTN_GD_MAX + ANC_MAX_GROUP];         /* [nh][qst] */
    __shared__ float qsink_s[ANC_ATTN_GD_MAX + ANC_MAX_GROUP];     /* [nh][qst] */
    __shared__ float k_s[ANC_ATTN_TILE_FLOATS + ANC_ATTN_TILE_MAX]; /* [tile][qst] */
    __shared__ float v_s[ANC_ATTN_TILE_FLOATS];                    /* [tile][D] */
    __shared__ float p_s[ANC_MAX_GROUP * ANC_ATTN_TILE_MAX];       /* [nh][TILE_MAX] */
    __shared__ struct anc_attn_state st_s[ANC_MAX_GROUP];
    __shared__ float alpha_s[ANC_MAX_GROUP];

    const int tid = (int)threadIdx.x, lane = tid % WARP, warp = tid / WARP;
    const int n_warps = ANC_ATTN_THREADS / WARP;

    /* which block: blockIdx.x = ((i * n_kv_head + kvh) * n_hc + hc) * n_split + s */
    int64_t u = blockIdx.x;
    const int32_t s = (int32_t)(u % a.n_split);
    u /= a.n_split;
    const int32_t hc = (int32_t)(u % pl.n_hc);
    u /= pl.n_hc;
    const int32_t kvh = (int32_t)(u % a.n_kv_head);
    const int32_t i = (int32_t)(u / a.n_kv_head);

    const int32_t D = a.head_dim, qst = anc_attn_row_stride(D);
    const int32_t g0 = hc * pl.gb;
    const int32_t nh = min(pl.gb, pl.group - g0);
    const int32_t h0 = kvh * pl.group + g0; /* first query head of this block */
    const int32_t nhd = nh * D;             /* accumulator elements in use */

    /* Stage this block's query rows (nh consecutive heads of query i). */
    const size_t q_off = ((size_t)i * a.n_head + h0) * D;
    for (int32_t x = tid; x < nhd; x += ANC_ATTN_THREADS) {
        int32_t g = x / D, d = x - g * D;
        q_s[g * qst + d] = a.q[q_off + x];
        if (a.q_sink) qsink_s[g * qst + d] = a.q_sink[q_off + x];
    }
    if (tid < nh) st_s[tid] = anc_attn_state_empty();
    const float *qsink_rows = a.q_sink ? qsink_s : q_s;

    int32_t cb, ce;
    anc_attn_split_range(a.n_kv, a.n_split, s, &cb, &ce);
    const struct anc_attn_span sp = anc_attn_chunk_span(cb, ce, a.n_sink, a.lo[i], a.hi[i]);
    const int32_t n_vis = anc_attn_span_count(sp), n_sinks = anc_attn_span_sinks(sp);

    float acc[ANC_ATTN_ACC_PER_THREAD];
#pragma unroll
    for (int r = 0; r < ANC_ATTN_ACC_PER_THREAD; r++) acc[r] = 0.0f;
    __syncthreads();

    for (int32_t u0 = 0; u0 < n_vis; u0 += pl.tile) {
        const int32_t nt = min(pl.tile, n_vis - u0); /* entries in this tile */

        /* 1. key and value rows of visible entries u0 .. u0+nt-1 */
        for (int32_t x = tid; x < nt * D; x += ANC_ATTN_THREADS) {
            int32_t t = x / D, d = x - t * D;
            int32_t j = anc_attn_span_entry(sp, u0 + t);
            int32_t row = a.slot ? a.slot[j] : j;
            size_t off = ((size_t)row * a.n_kv_head + kvh) * D + d;
            k_s[t * qst + d] = cache_elem(a.k, a.kv_type, off);
            v_s[t * D + d] = cache_elem(a.v, a.kv_type, off);
        }
        __syncthreads();

        /* 2. scores */
        for (int32_t x = tid; x < nh * nt; x += ANC_ATTN_THREADS) {
            int32_t g = x / nt, t = x - g * nt;
            const float *qr = (u0 + t < n_sinks ? qsink_rows : q_s) + g * qst;
            const float *kr = k_s + t * qst;
            float dot = 0.0f;
            for (int32_t d = 0; d < D; d++) dot += qr[d] * kr[d];
            p_s[g * ANC_ATTN_TILE_MAX + t] = anc_attn_score(dot, a.scale, a.softcap);
        }
        __syncthreads();

        /* 3. online softmax, one warp per head, lane t = tile entry t */
        for (int32_t g = warp; g < nh; g += n_warps) {
            float sc = lane < nt ? p_s[g * ANC_ATTN_TILE_MAX + lane] : -INFINITY;
            struct anc_attn_state st = st_s[g];
            float alpha = anc_attn_state_raise(&st, warp_max(sc));
            float p = anc_attn_weight(sc, st.m);
            if (lane < nt) p_s[g * ANC_ATTN_TILE_MAX + lane] = p;
            float p_sum = warp_sum(p);
            float p_sink = warp_sum(u0 + lane < n_sinks ? p : 0.0f);
            anc_attn_state_add(&st, p_sum, p_sink);
            __syncwarp(); /* every lane has read st_s[g] before lane 0 rewrites it */
            if (lane == 0) {
                st_s[g] = st;
                alpha_s[g] = alpha;
            }
        }
        __syncthreads();

        /* 4. accumulators */
#pragma unroll
        for (int r = 0; r < ANC_ATTN_ACC_PER_THREAD; r++) {
            int32_t x = tid + r * ANC_ATTN_THREADS;
            if (x < nhd) {
                int32_t g = x / D, d = x - g * D;
                const float *pg = p_s + g * ANC_ATTN_TILE_MAX;
                float y = acc[r] * alpha_s[g];
                for (int32_t t = 0; t < nt; t++) y += pg[t] * v_s[t * D + d];
                acc[r] = y;
            }
        }
        __syncthreads(); /* the next tile overwrites k_s, v_s, p_s */
    }

    /* Results: final outputs when there is one split, else partial states. */
    const size_t ih0 = (size_t)i * a.n_head + h0; /* (query, head) index of g = 0 */
#pragma unroll
    for (int r = 0; r < ANC_ATTN_ACC_PER_THREAD; r++) {
        int32_t x = tid + r * ANC_ATTN_THREADS;
        if (x < nhd) {
            int32_t g = x / D, d = x - g * D;
            if (a.n_split == 1)
                a.out[(ih0 + g) * D + d] = anc_attn_finish(acc[r], st_s[g]);
            else
                a.part[((ih0 + g) * a.n_split + s) * D + d] = acc[r];
        }
    }
    if (tid < nh) {
        struct anc_attn_state st = st_s[tid];
        if (a.n_split == 1) {
            if (a.sink_mass && i == a.n_q - 1) a.sink_mass[h0 + tid] = anc_attn_sink_share(st);
        } else {
            float *ps = a.part + part_states_offset(a) + ((ih0 + tid) * a.n_split + s) * 3;
            ps[0] = st.m;
            ps[1] = st.l;
            ps[2] = st.sink_l;
        }
    }
}

/* One block per (query i, head h): merge the n_split partial states in
 * order s = 0, 1, ... and write out (and the sink share for the last query).
 * Thread per output element d. */
static __global__ void __launch_bounds__(MERGE_THREADS) attn_merge_kernel(const struct anc_cu_attn a)
{
    const size_t ih = blockIdx.x; /* i * n_head + h */
    const int32_t ns = a.n_split, D = a.head_dim;
    const float *acc = a.part + ih * ns * D;
    const float *states = a.part + part_states_offset(a) + ih * ns * 3;
    for (int32_t d = (int32_t)threadIdx.x; d < D; d += MERGE_THREADS) {
        struct anc_attn_state st = anc_attn_state_empty();
        float y = 0.0f;
        for (int32_t s = 0; s < ns; s++) {
            struct anc_attn_state ps;
            ps.m = states[s * 3 + 0];
            ps.l = states[s * 3 + 1];
            ps.sink_l = states[s * 3 + 2];
            float fa, fb;
            st = anc_attn_merge(st, ps, &fa, &fb);
            y = y * fa + acc[(size_t)s * D + d] * fb;
        }
        a.out[ih * D + d] = anc_attn_finish(y, st);
        if (d == 0 && a.sink_mass && (int64_t)(ih / a.n_head) == a.n_q - 1)
            a.sink_mass[ih % a.n_head] = anc_attn_sink_share(st);
    }
}

extern "C" size_t anc_cu_attention_work_bytes(int32_t n_q, int32_t n_head, int32_t head_dim,
                                              int32_t n_split)
{
    if (n_q <= 0 || n_head <= 0 || head_dim <= 0 || n_split <= 1) return 0;
    return (size_t)n_q * n_head * n_split * ((size_t)head_dim + 3) * sizeof(float);
}

extern "C" int anc_cu_attention(void *stream, const struct anc_cu_attn *a)
{
    if (!a || a->n_q < 0 || a->n_kv < 0 || a->n_sink < 0) return -1;
    if (a->head_dim <= 0 || a->head_dim > ANC_MAX_HEAD_DIM) return -1;
    if (a->n_head <= 0 || a->n_kv_head <= 0 || a->n_head % a->n_kv_head != 0) return -1;
    if (a->n_head / a->n_kv_head > ANC_MAX_GROUP) return -1;
    if (a->n_split < 1 || (a->n_split > 1 && !a->part)) return -1;
    if (a->kv_type != ANC_DT_F32 && a->kv_type != ANC_DT_F16) return -1;
    if (!(a->softcap >= 0.0f) || isinf(a->softcap)) return -1; /* NaN, < 0 or inf */
    if (a->n_q == 0) return 0;

    struct attn_plan pl;
    pl.group = a->n_head / a->n_kv_head;
    pl.gb = anc_attn_heads_per_block(pl.group, a->head_dim);
    pl.n_hc = (pl.group + pl.gb - 1) / pl.gb;
    pl.tile = anc_attn_tile_entries(a->head_dim);

    int64_t blocks = (int64_t)a->n_q * a->n_kv_head * pl.n_hc * a->n_split;
    int64_t merges = (int64_t)a->n_q * a->n_head;
    if (blocks > INT32_MAX || merges > INT32_MAX) return -1;

    cudaStream_t st = as_stream(stream);
    attn_split_kernel<<<(unsigned)blocks, ANC_ATTN_THREADS, 0, st>>>(*a, pl);
    if (launch_status()) return -1;
    if (a->n_split > 1) {
        attn_merge_kernel<<<(unsigned)merges, MERGE_THREADS, 0, st>>>(*a);
        if (launch_status()) return -1;
    }
    return 0;
}

/* ==== rmsnorm ============================================================= */

/* Sum of v over the block (all ROW_THREADS threads must call it). */
static __device__ double block_sum_double(double v)
{
    __shared__ double part[ROW_THREADS / WARP];
    __shared__ double total;
    const int lane = (int)threadIdx.x % WARP, warp = (int)threadIdx.x / WARP;
    v = warp_sum_double(v);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double w = lane < ROW_THREADS / WARP ? part[lane] : 0.0;
        w = warp_sum_double(w);
        if (lane == 0) total = w;
    }
    __syncthreads();
    return total;
}

/* One block per row: the sum of squares in double (as the CPU reference),
 * then y = x * inv * w. Each element is read and written by the same
 * thread, so y may alias x. */
static __global__ void __launch_bounds__(ROW_THREADS)
rmsnorm_kernel(float *y, const float *x, const float *w, int32_t n, float eps)
{
    const size_t row = (size_t)blockIdx.x * n;
    double ss = 0.0;
    for (int32_t c = (int32_t)threadIdx.x; c < n; c += ROW_THREADS)
        ss += (double)x[row + c] * x[row + c];
    ss = block_sum_double(ss);
    const float inv = (float)(1.0 / sqrt(ss / n + eps));
    for (int32_t c = (int32_t)threadIdx.x; c < n; c += ROW_THREADS)
        y[row + c] = x[row + c] * inv * w[c];
}

extern "C" int anc_cu_rmsnorm(void *stream, float *y, const float *x, const float *w, int32_t n,
                              int32_t n_tok, float eps)
{
    if (n <= 0 || n_tok < 0) return -1;
    if (n_tok == 0) return 0;
    rmsnorm_kernel<<<(unsigned)n_tok, ROW_THREADS, 0, as_stream(stream)>>>(y, x, w, n, eps);
    return launch_status();
}

/* ==== rope ================================================================ */

/* One thread per (token, head, pair): the rotation by angle, or by -angle
 * when inverse (rope's backward, its transpose: sin(-a) = -sin(a)). Negating
 * s is exact and x0·c − x1·(−s) rounds as x0·c + x1·s, so the inverse gives
 * the bits of x0·c + x1·s, −x0·s + x1·c. Products and sums are rounded one
 * by one (no fused multiply-add), as the plain C reference computes them. */
static __global__ void rope_kernel(float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                                   int32_t n_pairs, bool neox, const float *cos_tab,
                                   const float *sin_tab, const int32_t *pos, bool inverse)
{
    const int64_t total = (int64_t)n_tok * n_heads * n_pairs;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int32_t k = (int32_t)(id % n_pairs);
        int64_t th = id / n_pairs; /* token * n_heads + head */
        int32_t t = (int32_t)(th / n_heads);
        float *v = x + th * head_dim;
        size_t tab = (size_t)pos[t] * n_pairs + k;
        float c = cos_tab[tab], s = inverse ? -sin_tab[tab] : sin_tab[tab];
        int32_t i0 = neox ? k : 2 * k, i1 = neox ? k + n_pairs : 2 * k + 1;
        float x0 = v[i0], x1 = v[i1];
        v[i0] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        v[i1] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
    }
}

/* anc_cu_rope (forward) and anc_cu_rope_bwd (inverse). */
static int rope_launch(void *stream, float *x, int32_t n_tok, int32_t n_heads, int32_t head_dim,
                       int32_t n_pairs, bool neox, const float *cos_tab, const float *sin_tab,
                       const int32_t *pos, bool inverse)
{
    if (n_tok < 0 || n_heads < 0 || n_pairs < 0 || head_dim < 2 * n_pairs) return -1;
    int64_t total = (int64_t)n_tok * n_heads * n_pairs;
    if (total == 0) return 0;
    rope_kernel<<<grid_for(total, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(
        x, n_tok, n_heads, head_dim, n_pairs, neox, cos_tab, sin_tab, pos, inverse);
    return launch_status();
}

extern "C" int anc_cu_rope(void *stream, float *x, int32_t n_tok, int32_t n_heads,
                           int32_t head_dim, int32_t n_pairs, bool neox, const float *cos_tab,
                           const float *sin_tab, const int32_t *pos)
{
    return rope_launch(stream, x, n_tok, n_heads, head_dim, n_pairs, neox, cos_tab, sin_tab, pos,
                       false);
}

/* The training ops' rope backward (the rest of them are in kernels_train.cu):
 * here, so that it shares rope_kernel. */
extern "C" int anc_cu_rope_bwd(void *stream, float *x, int32_t n_tok, int32_t n_heads,
                               int32_t head_dim, int32_t n_pairs, bool neox, const float *cos_tab,
                               const float *sin_tab, const int32_t *pos)
{
    return rope_launch(stream, x, n_tok, n_heads, head_dim, n_pairs, neox, cos_tab, sin_tab, pos,
                       true);
}

/* ==== swiglu, add ========================================================= */

static __global__ void swiglu_kernel(float *out, const float *gate, const float *up, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

extern "C" int anc_cu_swiglu(void *stream, float *out, const float *gate, const float *up,
                             int64_t n)
{
    if (n < 0) return -1;
    if (n == 0) return 0;
    swiglu_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(out, gate, up,
                                                                                  n);
    return launch_status();
}

static __global__ void add_kernel(float *y, const float *x, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        y[i] += x[i];
}

extern "C" int anc_cu_add(void *stream, float *y, const float *x, int64_t n)
{
    if (n < 0) return -1;
    if (n == 0) return 0;
    add_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(y, x, n);
    return launch_status();
}

/* ==== geglu, add_rows, scale, softcap ====================================== */

/* GELU in its tanh form times up, in the CPU reference's order of
 * operations (cpu_geglu_ref): 0.5 g (1 + tanh(c (g + 0.044715 g^3))) up. */
static __global__ void geglu_kernel(float *out, const float *gate, const float *up, int64_t n)
{
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        float g = gate[i];
        out[i] = 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g))) * up[i];
    }
}

extern "C" int anc_cu_geglu(void *stream, float *out, const float *gate, const float *up,
                            int64_t n)
{
    if (n < 0) return -1;
    if (n == 0) return 0;
    geglu_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(out, gate, up, n);
    return launch_status();
}

/* Element e of the n_tok x n rows gets b[e % n]. */
static __global__ void add_rows_kernel(float *y, const float *b, int64_t n, int64_t total)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step)
        y[e] += b[e % n];
}

extern "C" int anc_cu_add_rows(void *stream, float *y, const float *b, int64_t n, int32_t n_tok)
{
    if (n < 0 || n_tok < 0) return -1;
    int64_t total = n * n_tok;
    if (total == 0) return 0;
    add_rows_kernel<<<grid_for(total, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(y, b, n,
                                                                                        total);
    return launch_status();
}

static __global__ void scale_kernel(float *x, float s, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) x[i] *= s;
}

extern "C" int anc_cu_scale(void *stream, float *x, float s, int64_t n)
{
    if (n < 0) return -1;
    if (n == 0) return 0;
    scale_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(x, s, n);
    return launch_status();
}

static __global__ void softcap_kernel(float *x, float cap, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        x[i] = anc_attn_softcap(x[i], cap);
}

extern "C" int anc_cu_softcap(void *stream, float *x, float cap, int64_t n)
{
    if (n < 0 || !(cap > 0.0f) || isinf(cap)) return -1;
    if (n == 0) return 0;
    softcap_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(x, cap, n);
    return launch_status();
}

/* ==== cache rows ========================================================== */

/* One block per row i: row rows[i] of base <- src[i]. */
static __global__ void store_rows_kernel(void *base, uint32_t type, const float *src,
                                         const int32_t *rows, int64_t row_len)
{
    const float *x = src + (size_t)blockIdx.x * row_len;
    const size_t dst = (size_t)rows[blockIdx.x] * row_len;
    for (int64_t c = threadIdx.x; c < row_len; c += ROW_THREADS) {
        if (type == ANC_DT_F16)
            ((uint16_t *)base)[dst + c] = anc_dev_f32_to_f16(x[c]);
        else
            ((float *)base)[dst + c] = x[c];
    }
}

/* One block per row i: dst[i] <- row rows[i] of base. */
static __global__ void load_rows_kernel(float *dst, const void *base, uint32_t type,
                                        const int32_t *rows, int64_t row_len)
{
    float *y = dst + (size_t)blockIdx.x * row_len;
    const size_t src = (size_t)rows[blockIdx.x] * row_len;
    for (int64_t c = threadIdx.x; c < row_len; c += ROW_THREADS)
        y[c] = cache_elem(base, type, src + c);
}

static bool rows_args_ok(uint32_t type, int32_t n, int64_t row_len)
{
    return (type == ANC_DT_F32 || type == ANC_DT_F16) && n >= 0 && row_len >= 0;
}

extern "C" int anc_cu_store_rows(void *stream, void *base, uint32_t type, const float *src,
                                 const int32_t *rows, int32_t n, int64_t row_len)
{
    if (!rows_args_ok(type, n, row_len)) return -1;
    if (n == 0 || row_len == 0) return 0;
    store_rows_kernel<<<(unsigned)n, ROW_THREADS, 0, as_stream(stream)>>>(base, type, src, rows,
                                                                          row_len);
    return launch_status();
}

extern "C" int anc_cu_load_rows(void *stream, float *dst, const void *base, uint32_t type,
                                const int32_t *rows, int32_t n, int64_t row_len)
{
    if (!rows_args_ok(type, n, row_len)) return -1;
    if (n == 0 || row_len == 0) return 0;
    load_rows_kernel<<<(unsigned)n, ROW_THREADS, 0, as_stream(stream)>>>(dst, base, type, rows,
                                                                         row_len);
    return launch_status();
}

/* ==== argmax ============================================================== */

/* Is candidate (v, i) better than (bv, bi)? A NaN never is; an index < 0
 * means "no candidate yet"; among equal values the smaller index wins. */
static __device__ __forceinline__ bool argmax_better(float v, int32_t i, float bv, int32_t bi)
{
    if (i < 0 || isnan(v)) return false;
    if (bi < 0) return true;
    return v > bv || (v == bv && i < bi);
}

/* A single block: each thread scans a strided slice, then a tree reduction
 * in shared memory. No candidate at all (n == 0, or all NaN) gives 0, as
 * the CPU backend's argmax does. */
static __global__ void __launch_bounds__(ARGMAX_THREADS)
argmax_kernel(int32_t *out, const float *x, int32_t n)
{
    __shared__ float bv_s[ARGMAX_THREADS];
    __shared__ int32_t bi_s[ARGMAX_THREADS];
    const int tid = (int)threadIdx.x;
    float bv = 0.0f;
    int32_t bi = -1;
    for (int32_t i = tid; i < n; i += ARGMAX_THREADS)
        if (argmax_better(x[i], i, bv, bi)) bv = x[i], bi = i;
    bv_s[tid] = bv;
    bi_s[tid] = bi;
    __syncthreads();
    for (int half = ARGMAX_THREADS / 2; half > 0; half >>= 1) {
        if (tid < half && argmax_better(bv_s[tid + half], bi_s[tid + half], bv_s[tid], bi_s[tid])) {
            bv_s[tid] = bv_s[tid + half];
            bi_s[tid] = bi_s[tid + half];
        }
        __syncthreads();
    }
    if (tid == 0) out[0] = bi_s[0] < 0 ? 0 : bi_s[0];
}

extern "C" int anc_cu_argmax(void *stream, int32_t *out, const float *x, int32_t n)
{
    if (n < 0) return -1;
    argmax_kernel<<<1, ARGMAX_THREADS, 0, as_stream(stream)>>>(out, x, n);
    return launch_status();
}
