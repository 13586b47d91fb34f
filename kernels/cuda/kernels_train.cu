/* kernels_train.cu — CUDA kernels of the training ops (kernels/backend.h,
 * "Training"): the backward of rmsnorm and swiglu, training attention
 * (forward and backward, causal, with S²-Attn groups), the embedding's
 * backward, cross-entropy, the sum of squares and AdamW. The launch
 * functions are declared in cuda_kernels.h; the CPU reference whose
 * contracts they keep is kernels/cpu/cpu_train.c. The matrix products of
 * the backward are cuBLAS calls in cuda_backend.cu; rope's backward is in
 * kernels_attn.cu, where it shares the forward's kernel.
 *
 * Determinism: no atomics. Every output element is summed by one thread
 * (or reduced by one block in a fixed tree) in a fixed order, so the same
 * inputs give the same bits on every run; sums that leave the device (loss,
 * sum of squares) are per-row or per-part values the host adds in order.
 * Where the CPU reference sums in double, so do these kernels.
 *
 * Attention is straightforward rather than fast: one block per (query,
 * head) row in the forward and for dq, one block per (key, kv head) for
 * dk and dv, scores computed a tile of keys (or queries) at a time with one
 * warp per score, and the softmax kept online (running max and sum) so any
 * context length fits in shared memory.
 *
 * Depends on the CUDA runtime, cuda_kernels.h, backend.h (limits) and
 * cuda_launch.cuh; never on core/. Launches only enqueue work on the
 * caller's stream: no allocation, no synchronisation (graph-capturable). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend.h"
#include "cuda_kernels.h"
#include "cuda_launch.cuh"

/* Threads of the attention kernels, keys (or queries) per tile. */
#define AT_THREADS 128
#define AT_WARPS (AT_THREADS / WARP)
#define AT_TILE 64
/* Accumulator elements per thread: head dimensions d = tid + r*AT_THREADS. */
#define AT_ACC ((ANC_MAX_HEAD_DIM + AT_THREADS - 1) / AT_THREADS)

static_assert(ROW_THREADS % WARP == 0 && ROW_THREADS / WARP <= WARP, "one warp sums the warps");
static_assert(AT_THREADS % WARP == 0, "whole warps");

/* The operations of row_reduce. */
struct op_sum {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct op_max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* op over v of a block of ROW_THREADS threads (all must call it): a tree
 * inside each warp, then one warp over the warps' results (none: op's
 * identity, for the lanes past the last warp). The result is the same for
 * every thread. */
template <typename T, typename Op> static __device__ T row_reduce(T v, T none, Op op)
{
    __shared__ T part[ROW_THREADS / WARP];
    __shared__ T total;
    const int lane = (int)threadIdx.x % WARP, warp = (int)threadIdx.x / WARP;
    for (int o = WARP / 2; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(FULL_MASK, v, o));
    __syncthreads(); /* a previous call's readers are done with part/total */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = lane < ROW_THREADS / WARP ? part[lane] : none;
        for (int o = WARP / 2; o > 0; o >>= 1) w = op(w, __shfl_xor_sync(FULL_MASK, w, o));
        if (lane == 0) total = w;
    }
    __syncthreads();
    return total;
}

/* Sum of v over a block of ROW_THREADS threads (all must call it). */
static __device__ double row_sum_double(double v)
{
    return row_reduce(v, 0.0, op_sum());
}

/* Largest v over a block of ROW_THREADS threads (all must call it). */
static __device__ float row_max(float v)
{
    return row_reduce(v, -INFINITY, op_max());
}

/* Sum of v over a block of AT_THREADS threads (all must call it). */
static __device__ float at_block_sum(float v)
{
    __shared__ float part[AT_WARPS];
    __shared__ float total;
    const int lane = (int)threadIdx.x % WARP, warp = (int)threadIdx.x / WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int k = 0; k < AT_WARPS; k++) s += part[k];
        total = s;
    }
    __syncthreads();
    return total;
}

/* ==== rmsnorm backward ===================================================== */

/* y = w·x·r, r = (mean(x²) + eps)^(-1/2). With g = dy·w:
 * dx_j += r·g_j − x_j·r³/n·Σ_i g_i x_i. One block per row; the two sums in
 * double, as the CPU reference; work[t] = r for the weight's gradient. */
static __global__ void __launch_bounds__(ROW_THREADS)
rmsnorm_bwd_x_kernel(float *dx, float *work, const float *dy, const float *x, const float *w,
                     int32_t n, float eps)
{
    const size_t row = (size_t)blockIdx.x * n;
    double ss = 0.0, gx = 0.0;
    for (int32_t i = (int32_t)threadIdx.x; i < n; i += ROW_THREADS) {
        float xv = x[row + i];
        ss += (double)xv * xv;
        gx += (double)dy[row + i] * w[i] * xv;
    }
    ss = row_sum_double(ss);
    gx = row_sum_double(gx);
    const double r = 1.0 / sqrt(ss / n + eps);
    const double c = r * r * r / n * gx;
    if (threadIdx.x == 0) work[blockIdx.x] = (float)r;
    for (int32_t i = (int32_t)threadIdx.x; i < n; i += ROW_THREADS)
        dx[row + i] += (float)(r * dy[row + i] * w[i] - c * x[row + i]);
}

/* dw_i += Σ_t dy[t][i]·x[t][i]·r[t]: one thread per element i, tokens in
 * order, in double (the CPU's order). */
static __global__ void rmsnorm_bwd_w_kernel(float *dw, const float *dy, const float *x,
                                            const float *r, int32_t n, int32_t n_tok)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        double s = 0.0;
        for (int32_t t = 0; t < n_tok; t++) {
            size_t o = (size_t)t * n + i;
            s += (double)dy[o] * x[o] * r[t];
        }
        dw[i] += (float)s;
    }
}

extern "C" int anc_cu_rmsnorm_bwd(void *stream, float *dx, float *dw, const float *dy,
                                  const float *x, const float *w, int32_t n, int32_t n_tok,
                                  float eps, float *work)
{
    if (n <= 0 || n_tok < 0 || !dx || !dy || !x || !w || !work) return -1;
    if (n_tok == 0) return 0;
    cudaStream_t st = as_stream(stream);
    rmsnorm_bwd_x_kernel<<<(unsigned)n_tok, ROW_THREADS, 0, st>>>(dx, work, dy, x, w, n, eps);
    if (launch_status()) return -1;
    if (dw) {
        rmsnorm_bwd_w_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, st>>>(dw, dy, x, work, n,
                                                                                n_tok);
        if (launch_status()) return -1;
    }
    return 0;
}

/* ==== training attention ==================================================== */

/* The first token that token i sees under head h: its group's start (0
 * without groups). Shifted heads' groups start at G/2 + kG (cpu_train.c's
 * group_lo). */
static __device__ __forceinline__ int32_t tr_group_lo(const struct anc_cu_attn_train &a, int32_t h,
                                                      int32_t i)
{
    const int32_t G = a.group;
    if (G <= 0) return 0;
    if (h < a.n_head / 2) return i - i % G;
    const int32_t half = G / 2;
    return i < half ? 0 : half + (i - half) / G * G;
}

/* One past the last token of token i's group under head h (group_hi). */
static __device__ __forceinline__ int32_t tr_group_hi(const struct anc_cu_attn_train &a, int32_t h,
                                                      int32_t i)
{
    const int32_t G = a.group;
    if (G <= 0) return a.n;
    const int32_t end = tr_group_lo(a, h, i) + (h >= a.n_head / 2 && i < G / 2 ? G / 2 : G);
    return end < a.n ? end : a.n;
}

/* Dot product of a shared-memory row with a global row of hd floats, by
 * one warp (every lane gets the sum). */
static __device__ __forceinline__ float warp_dot(const float *s, const float *g, int32_t hd)
{
    const int lane = (int)threadIdx.x % WARP;
    float d = 0.0f;
    for (int32_t e = lane; e < hd; e += WARP) d += s[e] * g[e];
    return warp_sum(d);
}

/* Forward, one block per (query i, head h): scores of the keys
 * [group_lo, i] a tile at a time (one warp per key), an online softmax
 * (running max m and sum l; the tile's weights exp(scale·s − m)), and
 * out = Σ p v / l, lse = m + log l. */
static __global__ void __launch_bounds__(AT_THREADS)
attn_train_fwd_kernel(const struct anc_cu_attn_train a)
{
    __shared__ float q_s[ANC_MAX_HEAD_DIM];
    __shared__ float p_s[AT_TILE];
    __shared__ float m_s, l_s, alpha_s;
    const int tid = (int)threadIdx.x, lane = tid % WARP, warp = tid / WARP;
    const int32_t h = (int32_t)(blockIdx.x % a.n_head), i = (int32_t)(blockIdx.x / a.n_head);
    const int32_t hd = a.head_dim, kvh = h / (a.n_head / a.n_kv_head);
    const size_t kv_dim = (size_t)a.n_kv_head * hd;
    const size_t qo = ((size_t)i * a.n_head + h) * hd;
    const float *kb = a.k + (size_t)kvh * hd, *vb = a.v + (size_t)kvh * hd;
    for (int32_t d = tid; d < hd; d += AT_THREADS) q_s[d] = a.q[qo + d];
    if (tid == 0) {
        m_s = -INFINITY;
        l_s = 0.0f;
    }
    float acc[AT_ACC];
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) acc[r] = 0.0f;
    const int32_t p0 = tr_group_lo(a, h, i), p1 = i + 1;
    __syncthreads();
    for (int32_t j0 = p0; j0 < p1; j0 += AT_TILE) {
        const int32_t nt = min(AT_TILE, p1 - j0);
        for (int32_t t = warp; t < nt; t += AT_WARPS) {
            float s = warp_dot(q_s, kb + (size_t)(j0 + t) * kv_dim, hd);
            if (lane == 0) p_s[t] = s;
        }
        __syncthreads();
        if (warp == 0) {
            float mx = -INFINITY;
            for (int32_t t = lane; t < nt; t += WARP) mx = fmaxf(mx, p_s[t]);
            mx = warp_max(mx) * a.scale; /* scale > 0: the largest scaled score */
            const float m_old = m_s, m_new = fmaxf(m_old, mx);
            float sum = 0.0f;
            for (int32_t t = lane; t < nt; t += WARP) {
                float p = expf(a.scale * p_s[t] - m_new);
                p_s[t] = p;
                sum += p;
            }
            sum = warp_sum(sum);
            __syncwarp(); /* every lane has read m_s before lane 0 rewrites it */
            if (lane == 0) {
                const float alpha = expf(m_old - m_new); /* 0 for the first tile */
                l_s = l_s * alpha + sum;
                m_s = m_new;
                alpha_s = alpha;
            }
        }
        __syncthreads();
        const float alpha = alpha_s;
#pragma unroll
        for (int r = 0; r < AT_ACC; r++) {
            const int32_t d = tid + r * AT_THREADS;
            if (d < hd) {
                float y = acc[r] * alpha;
                for (int32_t t = 0; t < nt; t++) y += p_s[t] * vb[(size_t)(j0 + t) * kv_dim + d];
                acc[r] = y;
            }
        }
        __syncthreads(); /* the next tile overwrites p_s */
    }
    const float l = l_s;
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) {
        const int32_t d = tid + r * AT_THREADS;
        if (d < hd) a.out[qo + d] = acc[r] / l;
    }
    if (tid == 0) a.lse[(size_t)i * a.n_head + h] = m_s + logf(l);
}

/* Backward, pass 1 — one block per (query i, head h): D = dout·out (kept
 * in work for pass 2), and dq_i = scale·Σ_p dS_ip k_p with
 * dS_ip = P_ip (dout_i·v_p − D), P_ip = exp(scale·q_i·k_p − lse_i). */
static __global__ void __launch_bounds__(AT_THREADS)
attn_train_dq_kernel(const struct anc_cu_attn_train a)
{
    __shared__ float q_s[ANC_MAX_HEAD_DIM], g_s[ANC_MAX_HEAD_DIM];
    __shared__ float ds_s[AT_TILE];
    const int tid = (int)threadIdx.x, lane = tid % WARP, warp = tid / WARP;
    const int32_t h = (int32_t)(blockIdx.x % a.n_head), i = (int32_t)(blockIdx.x / a.n_head);
    const int32_t hd = a.head_dim, kvh = h / (a.n_head / a.n_kv_head);
    const size_t kv_dim = (size_t)a.n_kv_head * hd;
    const size_t qo = ((size_t)i * a.n_head + h) * hd, ih = (size_t)i * a.n_head + h;
    const float *kb = a.k + (size_t)kvh * hd, *vb = a.v + (size_t)kvh * hd;
    float part = 0.0f;
    for (int32_t d = tid; d < hd; d += AT_THREADS) {
        q_s[d] = a.q[qo + d];
        g_s[d] = a.dout[qo + d];
        part += g_s[d] * a.out[qo + d];
    }
    const float D = at_block_sum(part); /* synchronises: q_s, g_s are ready */
    if (tid == 0) a.work[ih] = D;
    const float lse = a.lse[ih];
    float acc[AT_ACC];
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) acc[r] = 0.0f;
    const int32_t p0 = tr_group_lo(a, h, i), p1 = i + 1;
    for (int32_t j0 = p0; j0 < p1; j0 += AT_TILE) {
        const int32_t nt = min(AT_TILE, p1 - j0);
        for (int32_t t = warp; t < nt; t += AT_WARPS) {
            float s = warp_dot(q_s, kb + (size_t)(j0 + t) * kv_dim, hd);
            float dp = warp_dot(g_s, vb + (size_t)(j0 + t) * kv_dim, hd);
            if (lane == 0) {
                float p = expf(a.scale * s - lse);
                ds_s[t] = a.scale * p * (dp - D);
            }
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < AT_ACC; r++) {
            const int32_t d = tid + r * AT_THREADS;
            if (d < hd) {
                float y = acc[r];
                for (int32_t t = 0; t < nt; t++) y += ds_s[t] * kb[(size_t)(j0 + t) * kv_dim + d];
                acc[r] = y;
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) {
        const int32_t d = tid + r * AT_THREADS;
        if (d < hd) a.dq[qo + d] = acc[r];
    }
}

/* Backward, pass 2 — one block per (key p, kv head): every query that sees
 * key p, in every query head of the kv head's group, heads and queries in
 * order: dk_p = scale·Σ dS_ip q_i, dv_p = Σ P_ip dout_i. Queries i see p
 * for i in [p, group_hi(h, p)). */
static __global__ void __launch_bounds__(AT_THREADS)
attn_train_dkv_kernel(const struct anc_cu_attn_train a)
{
    __shared__ float k_s[ANC_MAX_HEAD_DIM], v_s[ANC_MAX_HEAD_DIM];
    __shared__ float p_s[AT_TILE], ds_s[AT_TILE];
    const int tid = (int)threadIdx.x, lane = tid % WARP, warp = tid / WARP;
    const int32_t kvh = (int32_t)(blockIdx.x % a.n_kv_head), p = (int32_t)(blockIdx.x / a.n_kv_head);
    const int32_t hd = a.head_dim, grp = a.n_head / a.n_kv_head;
    const size_t q_dim = (size_t)a.n_head * hd;
    const size_t ko = ((size_t)p * a.n_kv_head + kvh) * hd;
    for (int32_t d = tid; d < hd; d += AT_THREADS) {
        k_s[d] = a.k[ko + d];
        v_s[d] = a.v[ko + d];
    }
    float acc_k[AT_ACC], acc_v[AT_ACC];
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) acc_k[r] = acc_v[r] = 0.0f;
    __syncthreads();
    for (int32_t h = kvh * grp; h < (kvh + 1) * grp; h++) {
        const float *qb = a.q + (size_t)h * hd, *gb = a.dout + (size_t)h * hd;
        const int32_t i1 = tr_group_hi(a, h, p);
        for (int32_t i0 = p; i0 < i1; i0 += AT_TILE) {
            const int32_t nt = min(AT_TILE, i1 - i0);
            for (int32_t t = warp; t < nt; t += AT_WARPS) {
                const int32_t i = i0 + t;
                float s = warp_dot(k_s, qb + (size_t)i * q_dim, hd);
                float dp = warp_dot(v_s, gb + (size_t)i * q_dim, hd);
                if (lane == 0) {
                    const size_t ih = (size_t)i * a.n_head + h;
                    float pr = expf(a.scale * s - a.lse[ih]);
                    p_s[t] = pr;
                    ds_s[t] = a.scale * pr * (dp - a.work[ih]);
                }
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < AT_ACC; r++) {
                const int32_t d = tid + r * AT_THREADS;
                if (d < hd) {
                    float yk = acc_k[r], yv = acc_v[r];
                    for (int32_t t = 0; t < nt; t++) {
                        size_t o = (size_t)(i0 + t) * q_dim + d;
                        yk += ds_s[t] * qb[o];
                        yv += p_s[t] * gb[o];
                    }
                    acc_k[r] = yk;
                    acc_v[r] = yv;
                }
            }
            __syncthreads();
        }
    }
#pragma unroll
    for (int r = 0; r < AT_ACC; r++) {
        const int32_t d = tid + r * AT_THREADS;
        if (d < hd) {
            a.dk[ko + d] = acc_k[r];
            a.dv[ko + d] = acc_v[r];
        }
    }
}

static bool attn_train_ok(const struct anc_cu_attn_train *a)
{
    if (!a || a->n < 0 || a->head_dim <= 0 || a->head_dim > ANC_MAX_HEAD_DIM) return false;
    if (a->n_head <= 0 || a->n_kv_head <= 0 || a->n_head % a->n_kv_head != 0) return false;
    if (a->group < 0 || (a->group > 0 && (a->group % 2 || a->n % a->group))) return false;
    if (!(a->scale > 0.0f)) return false; /* the forward's max needs scale > 0 */
    int64_t rows = (int64_t)a->n * a->n_head;
    return rows <= INT32_MAX;
}

extern "C" int anc_cu_attn_train(void *stream, const struct anc_cu_attn_train *a)
{
    if (!attn_train_ok(a) || !a->out || !a->lse || !a->q || !a->k || !a->v) return -1;
    if (a->n == 0) return 0;
    attn_train_fwd_kernel<<<(unsigned)((int64_t)a->n * a->n_head), AT_THREADS, 0, as_stream(stream)>>>(*a);
    return launch_status();
}

extern "C" int anc_cu_attn_train_bwd(void *stream, const struct anc_cu_attn_train *a)
{
    if (!attn_train_ok(a) || !a->out || !a->lse || !a->q || !a->k || !a->v || !a->dout || !a->dq ||
        !a->dk || !a->dv || !a->work)
        return -1;
    if (a->n == 0) return 0;
    cudaStream_t st = as_stream(stream);
    attn_train_dq_kernel<<<(unsigned)((int64_t)a->n * a->n_head), AT_THREADS, 0, st>>>(*a);
    if (launch_status()) return -1;
    attn_train_dkv_kernel<<<(unsigned)((int64_t)a->n * a->n_kv_head), AT_THREADS, 0, st>>>(*a);
    return launch_status();
}

/* ==== swiglu backward ======================================================= */

static __global__ void swiglu_bwd_kernel(float *dgate, float *dup, const float *dy,
                                         const float *gate, const float *up, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        float g = gate[i], u = up[i], d = dy[i];
        float sg = 1.0f / (1.0f + expf(-g));
        dgate[i] = d * u * sg * (1.0f + g * (1.0f - sg));
        dup[i] = d * g * sg;
    }
}

extern "C" int anc_cu_swiglu_bwd(void *stream, float *dgate, float *dup, const float *dy,
                                 const float *gate, const float *up, int64_t n)
{
    if (n < 0) return -1;
    if (n == 0) return 0;
    swiglu_bwd_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(
        dgate, dup, dy, gate, up, n);
    return launch_status();
}

/* ==== embedding backward ==================================================== */

/* One thread per (distinct token u, element c): its table element plus the
 * token's rows of dx in position order. */
static __global__ void embed_bwd_kernel(float *dtable, const float *dx, const int32_t *idx,
                                        int32_t n_uniq, int64_t dim)
{
    const int32_t *start = idx + n_uniq, *pos = start + n_uniq + 1;
    const int64_t total = (int64_t)n_uniq * dim;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += step) {
        const int32_t u = (int32_t)(k / dim);
        const int64_t c = k - (int64_t)u * dim;
        float *e = dtable + (size_t)idx[u] * dim + c;
        float s = *e;
        for (int32_t j = start[u]; j < start[u + 1]; j++) s += dx[(size_t)pos[j] * dim + c];
        *e = s;
    }
}

extern "C" int anc_cu_embed_bwd(void *stream, float *dtable, const float *dx, const int32_t *idx,
                                int32_t n_uniq, int32_t n_tok, int64_t dim)
{
    if (n_uniq < 0 || n_tok < 0 || n_uniq > n_tok || dim < 0 || !dtable || !dx || !idx) return -1;
    int64_t total = (int64_t)n_uniq * dim;
    if (total == 0) return 0;
    embed_bwd_kernel<<<grid_for(total, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(
        dtable, dx, idx, n_uniq, dim);
    return launch_status();
}

/* ==== cross-entropy ========================================================= */

/* One block per row: the max, the sum of exp(x − max) in double, the
 * row's loss, then the gradient in place (as cpu_train.c's ce_worker). */
static __global__ void __launch_bounds__(ROW_THREADS)
cross_entropy_kernel(float *logits, double *loss, const int32_t *targets, int32_t n_vocab,
                     float grad_scale)
{
    const int32_t t = (int32_t)blockIdx.x, tid = (int32_t)threadIdx.x;
    float *x = logits + (size_t)t * n_vocab;
    const int32_t y = targets[t];
    if (y < 0) {
        for (int32_t i = tid; i < n_vocab; i += ROW_THREADS) x[i] = 0.0f;
        if (tid == 0) loss[t] = 0.0;
        return;
    }
    const float xy = x[y];
    float m = -INFINITY;
    for (int32_t i = tid; i < n_vocab; i += ROW_THREADS) m = fmaxf(m, x[i]);
    m = row_max(m);
    double s = 0.0;
    for (int32_t i = tid; i < n_vocab; i += ROW_THREADS) s += exp((double)x[i] - m);
    s = row_sum_double(s); /* every thread has read x[y] and the row: now it may change */
    if (tid == 0) loss[t] = log(s) + m - xy;
    const double inv = 1.0 / s;
    for (int32_t i = tid; i < n_vocab; i += ROW_THREADS)
        x[i] = (float)(exp((double)x[i] - m) * inv) * grad_scale;
    __syncthreads();
    if (tid == 0) x[y] -= grad_scale;
}

extern "C" int anc_cu_cross_entropy(void *stream, float *logits, double *loss,
                                    const int32_t *targets, int32_t n_tok, int32_t n_vocab,
                                    float grad_scale)
{
    if (n_tok < 0 || n_vocab <= 0 || !logits || !loss || !targets) return -1;
    if (n_tok == 0) return 0;
    cross_entropy_kernel<<<(unsigned)n_tok, ROW_THREADS, 0, as_stream(stream)>>>(
        logits, loss, targets, n_vocab, grad_scale);
    return launch_status();
}

/* ==== sum of squares ========================================================= */

/* One block per part: each thread a strided slice in double, then the
 * block's fixed tree. */
static __global__ void __launch_bounds__(ROW_THREADS)
sum_sq_kernel(double *part, const float *x, int64_t n, int64_t chunk)
{
    const int64_t b0 = (int64_t)blockIdx.x * chunk;
    const int64_t b1 = b0 + chunk < n ? b0 + chunk : n;
    double s = 0.0;
    for (int64_t i = b0 + threadIdx.x; i < b1; i += ROW_THREADS) s += (double)x[i] * x[i];
    s = row_sum_double(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

extern "C" int anc_cu_sum_sq(void *stream, double *part, const float *x, int64_t n, int32_t n_parts)
{
    if (n < 0 || n_parts < 1 || !part || (n > 0 && !x)) return -1;
    const int64_t chunk = (n + n_parts - 1) / n_parts;
    sum_sq_kernel<<<(unsigned)n_parts, ROW_THREADS, 0, as_stream(stream)>>>(part, x, n, chunk);
    return launch_status();
}

/* ==== AdamW ================================================================== */

/* The CPU reference's arithmetic: moments in float (each product and sum
 * rounded, no fused multiply-add), the update in double. */
static __global__ void adamw_kernel(float *p, const float *g, float *m, float *v, int64_t n,
                                    float lr, float b1, float b2, float eps, float wd, double c1,
                                    double c2)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        const float gi = g[i];
        const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_b1, gi));
        const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        const double mh = mi / c1, vh = vi / c2;
        const float pi = p[i];
        p[i] = pi - (float)(lr * (mh / (sqrt(vh) + eps) + (double)__fmul_rn(wd, pi)));
    }
}

extern "C" int anc_cu_adamw(void *stream, float *p, const float *g, float *m, float *v, int64_t n,
                            const struct anc_cu_adamw *h)
{
    if (n < 0 || !h || h->t < 1 || !p || !g || !m || !v) return -1;
    if (n == 0) return 0;
    const double c1 = 1.0 - pow(h->beta1, (double)h->t), c2 = 1.0 - pow(h->beta2, (double)h->t);
    adamw_kernel<<<grid_for(n, ROW_THREADS), ROW_THREADS, 0, as_stream(stream)>>>(
        p, g, m, v, n, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, c1, c2);
    return launch_status();
}
